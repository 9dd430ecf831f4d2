#!/bin/bash
# The same scratch build with 0200-tls13-session-export-secrets.patch (this folder) applied:
# $S/tree-p = a copy of $S/tree + that patch, installed into $S/wolfssl-p.
set -e
. "$(dirname "$0")/common.sh"
. "$top/scripts/wolfssl.env"
[ -d "$S/tree-p" ] || { cp -a "$S/tree" "$S/tree-p" &&
    patch -d "$S/tree-p" -p1 <"$here/0200-tls13-session-export-secrets.patch"; }
cd "$S/tree-p"
./configure --prefix="$S/wolfssl-p" "${WOLFSSL_CONFIGURE_COMMON[@]}" "${WOLFSSL_CONFIGURE_X86_64[@]}" \
    --enable-sessionexport CFLAGS="$WOLFSSL_CFLAGS" >"$S/configure-p.log" 2>&1
make -j2 >"$S/make-p.log" 2>&1
make install >"$S/install-p.log" 2>&1
echo done

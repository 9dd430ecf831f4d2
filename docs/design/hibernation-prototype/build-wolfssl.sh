#!/bin/bash
# Scratch wolfSSL 5.9.2 (tern's patched tree, as scripts/bootstrap leaves it in
# .deps/work/src/tree: copy it to $S/tree first) with tern's flags + --enable-sessionexport,
# installed into $S/wolfssl.
set -e
. "$(dirname "$0")/common.sh"
. "$top/scripts/wolfssl.env"
cd "$S/tree"
autoreconf -fi >"$S/autoreconf.log" 2>&1
./configure --prefix="$S/wolfssl" "${WOLFSSL_CONFIGURE_COMMON[@]}" "${WOLFSSL_CONFIGURE_X86_64[@]}" \
    --enable-sessionexport CFLAGS="$WOLFSSL_CFLAGS" >"$S/configure.log" 2>&1
make -j2 >"$S/make.log" 2>&1
make install >"$S/install.log" 2>&1
echo done

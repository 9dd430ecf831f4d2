#!/bin/bash
# Builds and runs the prototype (hib.c). $1: timing iterations (0: none); $2: a wolfSSL prefix
# ($S/wolfssl: stock 5.9.2 + tern's patches + --enable-sessionexport, the default;
#  $S/wolfssl-p: the same + 0200-tls13-session-export-secrets.patch).
set -e
. "$(dirname "$0")/common.sh"
W=${2:-$S/wolfssl}
gcc -O2 -Wall -Wextra -Wno-format-truncation -I"$W/include" -o "$S/hib-$(basename "$W")" \
    "$here/hib.c" "$W/lib/libwolfssl.a" -lm -lpthread
"$S/hib-$(basename "$W")" "${1:-0}"

#!/bin/bash
# RSS of N hibernated server connections (rss.c) against $3 (default: the patched build).
set -e
. "$(dirname "$0")/common.sh"
W=${3:-$S/wolfssl-p}
gcc -O2 -Wno-format-truncation -Wno-unused-function -I"$W/include" -o "$S/rss-$(basename "$W")" \
    "$here/rss.c" "$W/lib/libwolfssl.a" -lm -lpthread
"$S/rss-$(basename "$W")" "${1:-10000}" "${2:-0}"

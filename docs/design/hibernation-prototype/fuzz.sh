#!/bin/bash
# Builds fuzz.c (hib.c's helpers + what a woken connection answers + mutated blobs into
# wolfSSL_tls_import) against $2 (default the patched scratch wolfSSL), with ASan on the
# program. $1: mutations per case.
set -e
. "$(dirname "$0")/common.sh"
W=${2:-$S/wolfssl-p}
gcc -g -O1 -fsanitize=address,undefined -Wall -Wextra -Wno-format-truncation \
    -Wno-unused-function -I"$W/include" -o "$S/fuzz-$(basename "$W")" "$here/fuzz.c" \
    "$W/lib/libwolfssl.a" -lm -lpthread
cd "$here" && "$S/fuzz-$(basename "$W")" "${1:-20000}"

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: OCSP stapling. tern-echo serves a certificate that names an OCSP responder, with
# --ocsp-response (a "good" response signed by the test CA); `openssl s_client -status`
# must receive it over TLS 1.3 and TLS 1.2.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: openssl_ocsp.sh TERN_ECHO CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 2 "TERN_ECHO CERTS_DIR" "$@"
echo_bin=$1
certs=$2
skip_unless_cmd openssl
skip_unless_file "$certs/ocsp-server.resp" "no OCSP test files in $certs"
need_exe "$echo_bin"
interop_workdir ocsp

start_echo server 40 --threads 1 \
    --cert "$certs/ocsp-server.pem" --key "$certs/ocsp-server.key" \
    --ocsp-response "$certs/ocsp-server.resp" --ocsp-issuer "$certs/ca.pem"

for v in tls1_3 tls1_2; do
    { printf 'hello %s\n' "$v"; sleep 1; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
            -CAfile "$certs/ca.pem" -verify_return_error -status "-$v" \
            >"$work/$v.out" 2>&1 || fail "$v: s_client failed: $(tail -n 3 "$work/$v.out")"
    grep -q "OCSP Response Status: successful" "$work/$v.out" || fail "$v: no stapled response"
    grep -q "Cert Status: good" "$work/$v.out" || fail "$v: the stapled response is not 'good'"
    grep -q "hello $v" "$work/$v.out" || fail "$v: the line did not come back"
    echo "ok: $v stapled a good OCSP response"
done
exit 0

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: certificate revocation, with the test PKI's CRL and OCSP responses (made by
# `openssl ca -revoke`, `openssl ca -gencrl` and `openssl ocsp` in tests/certs/gen.sh).
#   server side: tern-echo --verify-client --crl; `openssl s_client` with a revoked client
#                certificate is refused, with a good one is served
#   client side: tern's client (revocation_client) against `openssl s_server`: a revoked
#                server certificate by CRL and by stapled OCSP response (-status_file), a
#                good stapled response, must-staple without one
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: openssl_revocation.sh TERN_ECHO REVOCATION_CLIENT CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 3 "TERN_ECHO REVOCATION_CLIENT CERTS_DIR" "$@"
echo_bin=$1
client_bin=$2
certs=$3
skip_unless_cmd openssl
skip_unless_file "$certs/crl.pem" "no revocation test files in $certs"
need_exe "$echo_bin"
need_exe "$client_bin"
interop_workdir revocation

# ---- a tern server refuses a revoked client certificate ----------------------------------------
start_echo server 60 --threads 1 --log-level debug --cert "$certs/server-ec.pem" --key "$certs/server-ec.key" \
    --client-ca "$certs/ca.pem" --verify-client --crl "$certs/crl.pem"

s_client() { # NAME CERT: one line through tern-echo with CERT as the client certificate
    { printf 'hello %s\n' "$1"; sleep 1; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
            -CAfile "$certs/ca.pem" -cert "$certs/$2.pem" -key "$certs/$2.key" \
            >"$work/$1.out" 2>&1
}
s_client good client
grep -q "hello good" "$work/good.out" || fail "client.pem: not served: $(tail -n 3 "$work/good.out")"
echo "ok: a client certificate the CRL does not list is served"
s_client revoked revoked-client
if grep -q "hello revoked" "$work/revoked.out"; then
    fail "revoked-client.pem was served"
fi
grep -q "CERTIFICATE_REVOKED\|certificate has been revoked" "$work/server.log" ||
    fail "tern-echo's log does not say revoked: $(tail -n 3 "$work/server.log")"
echo "ok: a revoked client certificate is refused (CERTIFICATE_REVOKED)"

# ---- tern's client against openssl s_server ---------------------------------------------------
mkfifo "$work/stdin" || fail "mkfifo"
exec 3<>"$work/stdin"

# s_server NAME CERT [ARGS...]: an openssl server on a free port ($sport)
s_server() {
    name=$1
    cert=$2
    shift 2
    # stdin: a FIFO this shell holds open for reading and writing, so it never ends (s_server
    # stops at its stdin's EOF) and nothing is ever written
    timeout 60 openssl s_server -accept 0 -naccept 1 -cert "$certs/$cert.pem" \
        -key "$certs/$cert.key" "$@" <&3 >"$work/$name.srv" 2>&1 &
    spid=$!
    pids="$pids $spid"
    i=0
    sport=
    while [ $i -lt 100 ] && [ -z "$sport" ]; do
        sport=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$work/$name.srv" | head -n 1)
        [ -n "$sport" ] || sleep 0.1
        i=$((i + 1))
    done
    [ -n "$sport" ] || fail "openssl s_server ($name) did not say its port"
}

# client NAME EXPECT_EXIT ARGS...: runs revocation_client against $sport
client() {
    name=$1
    want=$2
    shift 2
    timeout 20 "$client_bin" "$sport" "$certs/ca.pem" "$@" >"$work/$name.cl" 2>&1
    got=$?
    [ "$got" -eq "$want" ] || fail "$name: exit $got, expected $want: $(cat "$work/$name.cl")"
}

for v in tls1_3 tls1_2; do
    flag=
    [ "$v" = tls1_2 ] && flag=--tls1_2

    s_server "crl-$v" revoked-server
    client "crl-$v" 1 --crl "$certs/crl.pem" $flag
    grep -q "ssl_error CERTIFICATE_REVOKED" "$work/crl-$v.cl" ||
        fail "crl-$v: $(cat "$work/crl-$v.cl")"
    echo "ok: $v: a server certificate the CRL lists is CERTIFICATE_REVOKED"

    s_server "ocsp-revoked-$v" revoked-server -status_file "$certs/revoked-server.resp"
    client "ocsp-revoked-$v" 1 --ocsp request $flag
    grep -q "ssl_error CERTIFICATE_REVOKED" "$work/ocsp-revoked-$v.cl" ||
        fail "ocsp-revoked-$v: $(cat "$work/ocsp-revoked-$v.cl")"
    resp_len=$(wc -c <"$certs/revoked-server.resp" | tr -d ' ')
    grep -q "ocsp_response $resp_len" "$work/ocsp-revoked-$v.cl" ||
        fail "ocsp-revoked-$v: the stapled bytes: $(cat "$work/ocsp-revoked-$v.cl")"
    echo "ok: $v: a stapled OCSP response saying revoked is CERTIFICATE_REVOKED, its bytes kept"

    s_server "ocsp-good-$v" ocsp-server -status_file "$certs/ocsp-server.resp"
    client "ocsp-good-$v" 0 --ocsp require $flag
    good_len=$(wc -c <"$certs/ocsp-server.resp" | tr -d ' ')
    grep -q "ocsp_response $good_len" "$work/ocsp-good-$v.cl" ||
        fail "ocsp-good-$v: $(cat "$work/ocsp-good-$v.cl")"
    echo "ok: $v: must-staple with a good stapled response connects"

    s_server "ocsp-none-$v" ocsp-server
    client "ocsp-none-$v" 1 --ocsp require $flag
    grep -q "ssl_error OCSP_NO_RESPONSE" "$work/ocsp-none-$v.cl" ||
        fail "ocsp-none-$v: $(cat "$work/ocsp-none-$v.cl")"
    echo "ok: $v: must-staple without a stapled response is OCSP_NO_RESPONSE"
done
exit 0

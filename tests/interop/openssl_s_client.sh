#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-echo (TLS, the test PKI's RSA chain) against `openssl s_client`:
#   - TLS 1.3 and TLS 1.2 with -verify_return_error against ca.pem: a line comes back;
#   - a client that offers only RC4 / 3DES / NULL / anonymous suites cannot connect;
#   - the server still serves afterwards.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: openssl_s_client.sh TERN_ECHO CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 2 "TERN_ECHO CERTS_DIR" "$@"
echo_bin=$1
certs=$2
skip_unless_cmd openssl
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$echo_bin"
interop_workdir interop

# Port 0: the kernel picks a free port; tern-echo logs it ("listening addr=127.0.0.1:PORT").
start_echo server 50 --threads 1 --cert "$certs/server-rsa.pem" --key "$certs/server-rsa.key"
echo "tern-echo (pid $pid) listens on 127.0.0.1:$port"

# s_client CASE ARGS...: sends a line, waits 1 s for the echo, then ends (stdin EOF with
# -brief and without -ign_eof: s_client sends close_notify and exits).
s_client() {
    name=$1
    shift
    line="hello tern $name $$"
    { printf '%s\n' "$line"; sleep 1; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
            -brief "$@" >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    echo "---- s_client $name: exit $rc"
    cat "$work/$name.err"
    return "$rc"
}

check_echo() {
    name=$1
    version=$2
    shift 2
    s_client "$name" -CAfile "$certs/ca.pem" -verify_return_error -verify_hostname localhost \
        "$@" || fail "$name: s_client failed"
    grep -q "hello tern $name $$" "$work/$name.out" || fail "$name: the line did not come back"
    grep -q "Protocol version: $version" "$work/$name.err" ||
        fail "$name: not $version"
    grep -q "Verification: OK" "$work/$name.err" || fail "$name: verification not OK"
    echo "ok: $name"
}

check_echo tls13 TLSv1.3 -tls1_3
check_echo tls12 TLSv1.2 -tls1_2

# Weak suites only: the handshake must fail. @SECLEVEL=0 makes OpenSSL really offer them, so
# the refusal is tern's, not a local "no cipher match".
weak='RC4:3DES:NULL:aNULL:@SECLEVEL=0'
if [ -z "$(openssl ciphers -tls1_2 "$weak" 2>/dev/null | tr ':' '\n' | grep -v '^TLS_')" ]; then
    echo "note: this openssl offers none of $weak; the weak-suite check proves little"
fi
if s_client weak -CAfile "$certs/ca.pem" -tls1_2 -cipher "$weak"; then
    fail "weak: a client offering only $weak connected"
fi
if grep -q "Protocol version" "$work/weak.err"; then
    fail "weak: a handshake completed"
fi
echo "ok: weak suites refused"

# Renegotiation (TLS 1.2, s_client's "R" command) is refused with a no_renegotiation warning
# (RFC 5246 7.2.2; tern's wolfSSL patch 0054) instead of a second handshake. The requester
# decides what follows: OpenSSL gives up ("no renegotiation"), so the line sent after it
# never comes back. (tests/conformance/tls12_records.py checks that a client that goes on
# is served.)
{ sleep 0.5; printf 'R\n'; sleep 1; printf 'after renegotiation\n'; sleep 1; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -CAfile "$certs/ca.pem" -tls1_2 >"$work/reneg.out" 2>&1
grep -q "RENEGOTIATING" "$work/reneg.out" || fail "reneg: s_client did not try"
grep -q "no renegotiation" "$work/reneg.out" || fail "reneg: no no_renegotiation alert"
if grep -q "^after renegotiation" "$work/reneg.out"; then
    fail "reneg: data flowed after a renegotiation attempt"
fi
echo "ok: renegotiation refused with a no_renegotiation warning"

kill -0 "$pid" 2>/dev/null || fail "tern-echo died"
check_echo after TLSv1.3 -tls1_3
echo "PASS"

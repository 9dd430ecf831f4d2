#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-echo (TLS, the test PKI's RSA chain) against `gnutls-cli` (GnuTLS):
#   - TLS 1.3 and TLS 1.2 (--priority NORMAL:-VERS-ALL:+VERS-TLS1.x), the chain verified
#     against ca.pem for the name localhost: a line comes back;
#   - a client trusting only an unrelated CA refuses the server;
#   - the server still serves afterwards.
# Exit 0: pass; 77: skipped (no gnutls-cli, no test certificates); anything else: fail.
#
# Usage: gnutls_cli.sh TERN_ECHO CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 2 "TERN_ECHO CERTS_DIR" "$@"
echo_bin=$1
certs=$2
skip_unless_cmd gnutls-cli
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$echo_bin"
interop_workdir gnutls

# Port 0: the kernel picks a free port; tern-echo logs it ("listening addr=127.0.0.1:PORT").
start_echo server 50 --threads 1 --cert "$certs/server-rsa.pem" --key "$certs/server-rsa.key"
echo "tern-echo (pid $pid) listens on 127.0.0.1:$port"

# cli CASE CAFILE ARGS...: sends a line, waits 1 s for the echo, then ends (stdin EOF:
# gnutls-cli sends close_notify and exits). "localhost" names the certificate to verify.
cli() {
    name=$1
    ca=$2
    shift 2
    line="hello tern $name $$"
    { printf '%s\n' "$line"; sleep 1; } |
        timeout 10 gnutls-cli --x509cafile "$ca" -p "$port" "$@" localhost \
            >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    echo "---- gnutls-cli $name: exit $rc"
    grep -hE '^- (Status|Description)|[Ee]rror' "$work/$name.out" "$work/$name.err"
    return "$rc"
}

check_echo() {
    name=$1
    version=$2
    shift 2
    cli "$name" "$certs/ca.pem" "$@" || fail "$name: gnutls-cli failed"
    grep -q "^hello tern $name $$" "$work/$name.out" || fail "$name: the line did not come back"
    grep -q "^- Description: ($version-" "$work/$name.out" || fail "$name: not $version"
    grep -q "^- Status: The certificate is trusted" "$work/$name.out" ||
        fail "$name: the certificate was not trusted"
    echo "ok: $name"
}

check_echo tls13 TLS1.3 --priority NORMAL:-VERS-ALL:+VERS-TLS1.3
check_echo tls12 TLS1.2 --priority NORMAL:-VERS-ALL:+VERS-TLS1.2

# A client that trusts an unrelated CA must refuse the certificate.
if cli untrusted "$certs/other-ca.pem"; then
    fail "untrusted: gnutls-cli accepted a certificate from a CA it does not trust"
fi
if grep -q "^hello tern untrusted" "$work/untrusted.out"; then
    fail "untrusted: data went through"
fi
echo "ok: untrusted CA refused"

kill -0 "$pid" 2>/dev/null || fail "tern-echo died"
check_echo after TLS1.3
echo "PASS"

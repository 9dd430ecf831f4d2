#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-gateway (TLS-PSK in front of a plaintext backend: tern-echo --plain) against
# `openssl s_client` (and `gnutls-cli` when present):
#   - TLS 1.3 external PSK and TLS 1.2 PSK-AES128-GCM-SHA256: a line comes back through the
#     gateway and the backend;
#   - TLS 1.3 with every suite of the key's hash: the SHA-256 suites with -psk, and
#     TLS_AES_256_GCM_SHA384 for a `:sha384` identity through -psk_session (openssl's -psk
#     binds the key with SHA-256 whatever the suites); a suite mismatch gets alert 40
#     (handshake_failure) and the log says "no shared suite for this PSK";
#   - an unknown identity and a wrong key are refused (TLS 1.3: both with alert 51,
#     decrypt_error);
#   - a bad identity file at start: exit 2 naming FILE:LINE;
#   - an identity added to the file + SIGHUP: it connects;
#   - a broken file + SIGHUP: refused (the log names the line), the old identities work;
#   - --max-conn-per-identity: a second connection of one identity refused while the first
#     is open;
#   - the backend down: the device connection is closed, counted; the gateway keeps serving.
# Exit 0: pass; 77: skipped (no openssl); anything else: fail.
#
# Usage: gateway.sh TERN_GATEWAY TERN_ECHO
set -u

if [ "$#" -ne 2 ]; then
    echo "usage: $0 TERN_GATEWAY TERN_ECHO" >&2
    exit 2
fi
gw_bin=$1
echo_bin=$2
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl not found"
    exit 77
fi
for b in "$gw_bin" "$echo_bin"; do
    if [ ! -x "$b" ]; then
        echo "FAIL: $b is not executable"
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-gateway.XXXXXX")
gw_pid=
be_pid=
dog_pid=
gw2_pid=
dog2_pid=
held_pid=
held_writer=

cleanup() {
    [ -n "$dog_pid" ] && kill -TERM "$dog_pid" 2>/dev/null && wait "$dog_pid" 2>/dev/null
    [ -n "$dog2_pid" ] && kill -TERM "$dog2_pid" 2>/dev/null && wait "$dog2_pid" 2>/dev/null
    stop_pid "$held_pid"
    stop_pid "$held_writer"
    stop_pid "$gw2_pid"
    stop_pid "$gw_pid"
    stop_pid "$be_pid"
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    echo "---- tern-gateway log"
    cat "$work/gw.log" 2>/dev/null
    echo "---- backend log"
    cat "$work/be.log" 2>/dev/null
    exit 1
}

# wait_log PATTERN: up to 5 s for the gateway log to show PATTERN.
wait_log() {
    n=0
    while [ "$n" -lt 50 ]; do
        grep -q "$1" "$work/gw.log" && return 0
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}

key1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
key2=0123456789abcdef0123456789abcdef
key3=fedcba9876543210fedcba9876543210fedcba98
key5=5555555555555555555555555555555555555555555555555555555555555555
wrong=ffffffffffffffffffffffffffffffff

# ---- the backend: tern-echo in plaintext
timeout 140 "$echo_bin" --plain --listen 127.0.0.1:0 --threads 1 \
    >/dev/null 2>"$work/be.log" &
be_pid=$!
be_port=$(wait_port "$work/be.log" "$be_pid") || fail "tern-echo did not log its port"
echo "backend tern-echo (pid $be_pid) on 127.0.0.1:$be_port"

# ---- a bad identity file at start: exit 2, "FILE:LINE: reason"
printf 'dev1:%s\nbadline-without-key\n' "$key1" >"$work/bad.psk"
chmod 600 "$work/bad.psk"
timeout 10 "$gw_bin" --listen 127.0.0.1:0 --psk-file "$work/bad.psk" \
    --backend "127.0.0.1:$be_port" >/dev/null 2>"$work/bad.err"
rc=$?
cat "$work/bad.err"
[ "$rc" -eq 2 ] || fail "bad identity file: exit $rc, expected 2"
grep -q "bad.psk:2:" "$work/bad.err" || fail "bad identity file: no FILE:LINE in the message"
echo "ok: bad file at start refused (exit 2, line 2)"

# ---- the gateway
ids="$work/ids.psk"
printf '# devices\ndev1:%s\ndev2:%s\ndev5:%s:sha384\n' "$key1" "$key2" "$key5" >"$ids"
chmod 600 "$ids"
# Not under timeout(1): the test signals the gateway itself (SIGHUP), and timeout forwards
# only the first SIGHUP it gets. A watchdog bounds its life instead.
"$gw_bin" --listen 127.0.0.1:0 --threads 2 --psk-file "$ids" \
    --backend "127.0.0.1:$be_port" --psk-hint tern-test --drain 500 --watch 0 \
    >/dev/null 2>"$work/gw.log" &
gw_pid=$!
(
    trap 'exit 0' TERM
    n=0
    while [ "$n" -lt 1400 ] && kill -0 "$gw_pid" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$gw_pid" 2>/dev/null
) >/dev/null 2>&1 &
dog_pid=$!
port=$(wait_port "$work/gw.log" "$gw_pid") || fail "tern-gateway did not log its port"
echo "tern-gateway (pid $gw_pid) on 127.0.0.1:$port"

# s_client NAME ARGS...: sends a line, waits until the answer came (1 s at most), then ends.
s_client() {
    name=$1
    shift
    line="hello gateway $name $$"
    rm -f "$work/$name.out"
    {
        printf '%s\n' "$line"
        k=0
        while [ "$k" -lt 20 ] && ! grep -q "$line" "$work/$name.out" 2>/dev/null; do
            sleep 0.05
            k=$((k + 1))
        done
    } |
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -brief "$@" \
            >"$work/$name.out" 2>"$work/$name.err"
    rc=$?
    echo "---- s_client $name: exit $rc"
    cat "$work/$name.err"
    return "$rc"
}

# check_echo NAME VERSION ARGS...: the line comes back over VERSION.
check_echo() {
    name=$1
    version=$2
    shift 2
    s_client "$name" "$@" || fail "$name: s_client failed"
    grep -q "hello gateway $name $$" "$work/$name.out" || fail "$name: the line did not come back"
    grep -q "Protocol version: $version" "$work/$name.err" || fail "$name: not $version"
    echo "ok: $name"
}

# check_refused NAME ARGS...: no line comes back.
check_refused() {
    name=$1
    shift
    s_client "$name" "$@"
    if grep -q "hello gateway $name $$" "$work/$name.out"; then
        fail "$name: a refused client got its line back"
    fi
    echo "ok: $name refused"
}

check_echo psk13 TLSv1.3 -tls1_3 -psk "$key1" -psk_identity dev1
check_echo psk12 TLSv1.2 -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$key2" -psk_identity dev2
check_echo ecdhe_psk12 TLSv1.2 -tls1_2 -cipher ECDHE-PSK-CHACHA20-POLY1305 -psk "$key2" \
    -psk_identity dev2
check_echo dhe_psk12 TLSv1.2 -tls1_2 -cipher DHE-PSK-AES128-GCM-SHA256 -psk "$key2" \
    -psk_identity dev2
grep -q 'Server Temp Key: DH, 2048 bits' "$work/dhe_psk12.err" ||
    fail "dhe_psk12: not the 2048-bit ffdhe group"
check_echo psk12_ccm8 TLSv1.2 -tls1_2 -cipher PSK-AES128-CCM8 -psk "$key2" -psk_identity dev2
check_echo psk12_cbc TLSv1.2 -tls1_2 -cipher PSK-AES128-CBC-SHA256 -psk "$key2" -psk_identity dev2
check_echo psk12_chacha TLSv1.2 -tls1_2 -cipher PSK-CHACHA20-POLY1305 -psk "$key2" \
    -psk_identity dev2
check_echo psk13_ke TLSv1.3 -tls1_3 -allow_no_dhe_kex -psk "$key1" -psk_identity dev1

check_refused unknown13 -tls1_3 -psk "$key1" -psk_identity nobody
wait_log 'identity="nobody" reason=unknown' || fail "the unknown identity was not logged"
check_refused unknown12 -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$key1" -psk_identity nobody
check_refused wrongkey13 -tls1_3 -psk "$wrong" -psk_identity dev1
# RFC 8446 6.2: a binder that does not verify gets decrypt_error (51); an unknown identity
# (answered with a random key) the same, so the two look alike
# (scripts/wolfssl-patches/0100-tls13-psk-binder-decrypt-error.patch)
for name in unknown13 wrongkey13; do
    grep -q "alert number 51" "$work/$name.err" || fail "$name: no decrypt_error alert"
done
check_refused wrongkey12 -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$wrong" -psk_identity dev2
wait_log 'psk handshake failed.*identity \\"dev1\\"' ||
    fail "the wrong key was not logged with its identity"
if grep -q "$key1\|$key2" "$work/gw.log"; then
    fail "a key appears in the log"
fi

# ---- TLS 1.3: every suite of the key's hash
differs_before=$(grep -c 'differs' "$work/gw.log")
for cs in TLS_AES_128_GCM_SHA256 TLS_CHACHA20_POLY1305_SHA256 TLS_AES_128_CCM_SHA256 \
    TLS_AES_128_CCM_8_SHA256; do
    check_echo "suite_$cs" TLSv1.3 -tls1_3 -ciphersuites "$cs" -psk "$key1" -psk_identity dev1
    grep -q "Ciphersuite: $cs" "$work/suite_$cs.err" || fail "suite_$cs: another suite was used"
done
# SHA-384: openssl's -psk always binds with SHA-256 (s_client's psk_use_session_cb), so a
# SHA-384 key goes in a session file: TLS 1.3, TLS_AES_256_GCM_SHA384, the key as its
# master key; s_client takes the identity from -psk_identity.
printf '%s\n' 'asn1=SEQUENCE:sess' '[sess]' 'version=INTEGER:1' 'ssl_version=INTEGER:0x0304' \
    'cipher=FORMAT:HEX,OCTETSTRING:1302' 'session_id=OCTETSTRING:' \
    "master_key=FORMAT:HEX,OCTETSTRING:$key5" >"$work/sess384.cnf"
openssl asn1parse -genconf "$work/sess384.cnf" -out "$work/sess384.der" -noout ||
    fail "cannot make the SHA-384 session file"
{
    echo "-----BEGIN SSL SESSION PARAMETERS-----"
    openssl base64 -in "$work/sess384.der"
    echo "-----END SSL SESSION PARAMETERS-----"
} >"$work/sess384.pem"
check_echo suite_sha384 TLSv1.3 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 \
    -psk_session "$work/sess384.pem" -psk_identity dev5
grep -q "Ciphersuite: TLS_AES_256_GCM_SHA384" "$work/suite_sha384.err" ||
    fail "suite_sha384: not TLS_AES_256_GCM_SHA384"
check_echo suite_sha384_all TLSv1.3 -tls1_3 -psk_session "$work/sess384.pem" -psk_identity dev5
grep -q "Ciphersuite: TLS_AES_256_GCM_SHA384" "$work/suite_sha384_all.err" ||
    fail "suite_sha384_all: the SHA-384 key did not pick TLS_AES_256_GCM_SHA384"

# check_no_suite NAME IDENTITY ARGS...: refused with alert 40 (handshake_failure), logged as
# a suite mismatch of IDENTITY, not as a wrong key.
check_no_suite() {
    name=$1
    identity=$2
    shift 2
    check_refused "$name" "$@"
    grep -q "alert number 40" "$work/$name.err" || fail "$name: no handshake_failure alert"
    wait_log "identity ..$identity..: no shared suite for this PSK" ||
        fail "$name: the mismatch was not logged as such"
}
# a SHA-256 key and TLS_AES_256_GCM_SHA384 only (-psk binds it with SHA-256 yet offers no
# SHA-256 suite): what `-ciphersuites TLS_AES_256_GCM_SHA384 -psk` gets
check_no_suite no_suite_256 dev1 -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 -psk "$key1" \
    -psk_identity dev1
# a SHA-384 key and SHA-256 suites only
check_no_suite no_suite_384 dev5 -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256 \
    -psk "$key5" -psk_identity dev5
# an unknown identity fails as a SHA-256 one does on the wire (alert 40 here too)
check_refused no_suite_unknown -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384 -psk "$key1" \
    -psk_identity nobody384
grep -q "alert number 40" "$work/no_suite_unknown.err" || fail "no_suite_unknown: not alert 40"
wait_log 'identity="nobody384" reason=unknown' || fail "no_suite_unknown: not logged"
[ "$(grep -c 'differs' "$work/gw.log")" -eq "$differs_before" ] ||
    fail "a suite mismatch was logged as a wrong key"
if grep -q "$key5" "$work/gw.log"; then
    fail "a key appears in the log"
fi
echo "ok: every TLS 1.3 suite of the key's hash; mismatches refused as such"

# ---- gnutls-cli, when present
if command -v gnutls-cli >/dev/null 2>&1; then
    line="hello gateway gnutls $$"
    { printf '%s\n' "$line"; sleep 1; } |
        timeout 10 gnutls-cli --port "$port" --pskusername dev1 --pskkey "$key1" \
            --priority 'NORMAL:+PSK:+ECDHE-PSK' 127.0.0.1 \
            >"$work/gnutls.out" 2>"$work/gnutls.err"
    echo "---- gnutls-cli: exit $?"
    grep -q "$line" "$work/gnutls.out" || {
        cat "$work/gnutls.err" "$work/gnutls.out"
        fail "gnutls-cli: the line did not come back"
    }
    echo "ok: gnutls-cli"
else
    echo "note: gnutls-cli not found, its check is skipped"
fi

# ---- SIGUSR1: the counters, and the gateway goes on
kill -USR1 "$gw_pid" || fail "cannot signal the gateway"
wait_log 'msg="stats".*bad_key=[1-9]' || fail "SIGUSR1: no stats line with the wrong keys"
kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died on SIGUSR1"
echo "ok: SIGUSR1 stats"

# ---- SIGHUP: a new identity, while dev1 streams 300 lines (none may be lost)
{
    # 30 bursts of 10 lines, 0.1 s apart: ~3 s of streaming, across the reload below
    i=0
    while [ "$i" -lt 300 ]; do
        printf 'stream line %d\n' "$i"
        i=$((i + 1))
        [ $((i % 10)) -ne 0 ] || sleep 0.1
    done
    sleep 1
} | timeout 30 openssl s_client -connect "127.0.0.1:$port" -brief -tls1_3 -psk "$key1" \
    -psk_identity dev1 >"$work/stream.out" 2>"$work/stream.err" &
stream_pid=$!
sleep 0.5
printf '# devices\ndev1:%s\ndev2:%s\ndev3:%s\n' "$key1" "$key2" "$key3" >"$ids.new"
chmod 600 "$ids.new"
mv "$ids.new" "$ids"
check_refused before_reload -tls1_3 -psk "$key3" -psk_identity dev3
kill -HUP "$gw_pid" || fail "cannot signal the gateway"
wait_log 'identities reloaded" trigger=SIGHUP count=3' || fail "SIGHUP: no reload logged"
check_echo reload13 TLSv1.3 -tls1_3 -psk "$key3" -psk_identity dev3
check_echo reload12 TLSv1.2 -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$key3" -psk_identity dev3
wait "$stream_pid"
got=$(grep -c '^stream line' "$work/stream.out")
[ "$got" -eq 300 ] && tail -n 1 "$work/stream.out" | grep -q '^stream line 299$' ||
    fail "the connection streaming across the reload lost lines ($got of 300 back)"
echo "ok: 300 lines streamed across the reload, none lost"

# ---- SIGHUP: a broken file is refused, the old identities stay
printf 'dev1:%s\ndev4:nothex\n' "$key1" >"$ids.new"
chmod 600 "$ids.new"
mv "$ids.new" "$ids"
kill -HUP "$gw_pid" || fail "cannot signal the gateway"
wait_log 'configuration refused' || fail "SIGHUP: the broken file was not refused"
grep 'configuration refused' "$work/gw.log" | grep -q 'ids.psk:2:' ||
    fail "SIGHUP: the log does not name the broken line"
check_echo after_broken_dev3 TLSv1.3 -tls1_3 -psk "$key3" -psk_identity dev3
check_echo after_broken_dev2 TLSv1.2 -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$key2" -psk_identity dev2

# ---- a group/other-readable file: loaded, with a warning
printf 'dev1:%s\n' "$key1" >"$ids.new"
chmod 644 "$ids.new"
mv "$ids.new" "$ids"
kill -HUP "$gw_pid" || fail "cannot signal the gateway"
wait_log 'identities reloaded" trigger=SIGHUP count=1' || fail "SIGHUP: the readable file was not loaded"
grep -q 'psk file permissions' "$work/gw.log" || fail "no warning for a readable file"
check_refused after_shrink -tls1_3 -psk "$key3" -psk_identity dev3
echo "ok: readable file warned about, dev3 gone"

# ---- --max-conn-per-identity 1, on a second gateway: a second connection of dev1 is refused
# while the first is open, and accepted once it closed. This one looks identities up on its
# PSK workers and sends a PROXY v2 header, which the echo backend sends back to the device.
"$gw_bin" --listen 127.0.0.1:0 --threads 2 --psk-file "$ids" --backend "127.0.0.1:$be_port" \
    --max-conn-per-identity 1 --auth-workers 2 --proxy-protocol v2 --drain 0 \
    --watch 1 --close-removed \
    --ciphers TLS13-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305 \
    >/dev/null 2>"$work/gw2.log" &
gw2_pid=$!
(
    trap 'exit 0' TERM
    n=0
    while [ "$n" -lt 1000 ] && kill -0 "$gw2_pid" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$gw2_pid" 2>/dev/null
) >/dev/null 2>&1 &
dog2_pid=$!
port2=$(wait_port "$work/gw2.log" "$gw2_pid") || fail "the second gateway did not log its port"
{ printf 'held\n'; sleep 3; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$port2" -brief -tls1_3 -psk "$key1" \
        -psk_identity dev1 >"$work/held.out" 2>"$work/held.err" &
held_pid=$!
n=0
while ! grep -q held "$work/held.out" 2>/dev/null && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q held "$work/held.out" || fail "limit: the first connection did not get through"
saved_port=$port
port=$port2
check_refused over_limit -tls1_3 -psk "$key1" -psk_identity dev1
grep -q 'reason=connection-limit' "$work/gw2.log" || fail "limit: the refusal was not logged"
wait "$held_pid"
# the slot is released when the gateway sees the close: allow it a moment
n=0
while [ "$n" -lt 5 ]; do
    s_client under_limit -tls1_3 -psk "$key1" -psk_identity dev1 &&
        grep -q "hello gateway under_limit $$" "$work/under_limit.out" && break
    sleep 0.5
    n=$((n + 1))
done
grep -q "hello gateway under_limit $$" "$work/under_limit.out" ||
    fail "limit: dev1 refused after its connection closed"
echo "ok: per-identity limit"
# the PROXY v2 header came back through the echo: its signature, the TLS version, the
# identity TLV (type 0xE0, length 4, "dev1")
grep -aq 'QUIT' "$work/under_limit.out" || fail "proxy v2: no header before the data"
grep -aq 'TLSv1.3' "$work/under_limit.out" || fail "proxy v2: no TLS version TLV"
od -An -tx1 "$work/under_limit.out" | tr -d ' \n' | grep -q 'e0000464657631' ||
    fail "proxy v2: no identity TLV"
echo "ok: proxy v2 header with the identity"
# --ciphers: forward secrecy only on this gateway: plain PSK refused, ECDHE-PSK served (dev1
# is the only identity now; its one slot is free again once under_limit's close was seen)
check_refused plain_psk_off -tls1_2 -cipher PSK-AES128-GCM-SHA256 -psk "$key1" -psk_identity dev1
sleep 0.5
check_echo ecdhe_psk_on TLSv1.2 -tls1_2 -cipher ECDHE-PSK-CHACHA20-POLY1305 -psk "$key1" \
    -psk_identity dev1

# ---- --watch 1 --close-removed: the file loses dev1 while dev1 is connected: the change is
# picked up without a signal and dev1's connection is closed
# (the client reads a fifo that its writer keeps open for 15 s: $held_pid is the client's own)
mkfifo "$work/held2.in" || fail "mkfifo"
timeout 20 openssl s_client -connect "127.0.0.1:$port2" -quiet -tls1_3 -psk "$key1" \
    -psk_identity dev1 <"$work/held2.in" >"$work/held2.out" 2>"$work/held2.err" &
held_pid=$!
{ printf 'held2\n'; sleep 15; } >"$work/held2.in" &
held_writer=$!
n=0
while ! grep -aq held2 "$work/held2.out" 2>/dev/null && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -aq held2 "$work/held2.out" || fail "watch: dev1 did not get through"
printf 'dev2:%s\n' "$key2" >"$ids.new"
chmod 600 "$ids.new"
mv "$ids.new" "$ids"
n=0
while ! grep -q 'identity removed: closing.*identity="dev1"' "$work/gw2.log" && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q 'identities reloaded" trigger=file-change count=1' "$work/gw2.log" ||
    fail "watch: the changed file was not reloaded"
grep -q 'identity removed: closing.*identity="dev1"' "$work/gw2.log" ||
    fail "watch: dev1's connection was not closed"
n=0
while kill -0 "$held_pid" 2>/dev/null && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
kill -0 "$held_pid" 2>/dev/null && fail "watch: dev1's client still connected"
wait "$held_pid" 2>/dev/null
held_pid=
stop_pid "$held_writer"
held_writer=
echo "ok: file change reloaded, the removed identity's connection closed"
port=$saved_port
kill -TERM "$dog2_pid" 2>/dev/null
wait "$dog2_pid" 2>/dev/null
stop_pid "$gw2_pid"
grep 'msg="stopped"' "$work/gw2.log" | grep -q 'identity_limit=1' ||
    fail "limit: not counted in the stats line"

# ---- the backend goes down: refused cleanly, counted, the gateway serves on
stop_pid "$be_pid"
be_pid=
check_refused backend_down -tls1_3 -psk "$key1" -psk_identity dev1
wait_log 'backend unavailable' || fail "backend down: not logged"
kill -0 "$gw_pid" 2>/dev/null || fail "the gateway died with its backend"

# ---- clean stop with the counters
kill -TERM "$gw_pid"
n=0
while kill -0 "$gw_pid" 2>/dev/null && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
kill -0 "$gw_pid" 2>/dev/null && fail "the gateway did not stop on SIGTERM within 10 s"
wait "$gw_pid"
rc=$?
gw_pid=
[ "$rc" -eq 0 ] || fail "the gateway exited $rc after SIGTERM"
stats=$(grep 'msg="stopped"' "$work/gw.log")
[ -n "$stats" ] || fail "no stats line on exit"
echo "$stats"
echo "$stats" | grep -q ' handshakes_ok=[1-9]' || fail "stats: no handshakes counted"
echo "$stats" | grep -q ' unknown_identity=[1-9]' || fail "stats: no unknown identity counted"
echo "$stats" | grep -q ' bad_key=[1-9]' || fail "stats: no wrong key counted"
echo "$stats" | grep -q ' backend_errors=[1-9]' || fail "stats: no backend error counted"
echo "PASS"

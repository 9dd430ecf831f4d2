#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-bench against real servers on loopback:
#   - tern-echo (TLS, the test PKI): --count 200 handshakes, zero errors, strict JSON with the
#     same figures (the group negotiated: X25519 by default); --groups X25519MLKEM768: 300
#     hybrid handshakes, the group in the JSON, the summary and tern-echo's debug lines;
#     handshakes with one request each; echo round trips; --source-addrs
#     (the server sees the connections come from 127.0.0.2 and 127.0.0.3); --mode resume
#     over TLS 1.3 and 1.2 (tern-echo issues tickets by default): zero errors, at least 95%
#     of the offered sessions resumed; --mix full=50,resume=50 over 2,000 handshakes and
#     full=70,resume=30 over 1,000 land within 2% of the ratio;
#   - `openssl s_server`: --count 200 handshakes, TLS 1.3 and 1.2, zero errors; the same
#     with --mode resume (tickets on by default there too), at least 95% resumed; TLS 1.2
#     --resume ticket passes there and --resume session-id fails (exit 1: tickets came),
#     and against `s_server -no_ticket` (its session cache) the other way round;
#   - tern-gateway with a certificate and a PSK file (full and PSK handshakes on one port):
#     --mix full=50,psk=50 over 10,000 handshakes lands within 2% of the ratio, zero errors;
#     --psk-file with a `:sha384` identity (the gateway's file format): TLS 1.3 with
#     TLS13-AES256-GCM-SHA384; --psk-modes ke (TLS 1.3, no group) and dhe_ke (X25519);
#   - the plaintext echo backend with --plain: connects with a 16 B echo each, and echo mode;
#   - a target refusing everything: the run ends (exit 1) and reports the refusals.
# JSON is checked by test_bench_json (a strict checker; python3 and jq are not on a fresh
# Debian), which also reads the figures out of it.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: tern_bench.sh TERN_BENCH TERN_ECHO TERN_GATEWAY JSON_CHECK CERTS_DIR
set -u

if [ "$#" -ne 5 ]; then
    echo "usage: $0 TERN_BENCH TERN_ECHO TERN_GATEWAY JSON_CHECK CERTS_DIR" >&2
    exit 2
fi
bench=$1
echo_bin=$2
gw_bin=$3
json_check=$4
certs=$5
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl not found"
    exit 77
fi
if [ ! -f "$certs/ca.pem" ]; then
    echo "SKIP: no test certificates in $certs"
    exit 77
fi
for b in "$bench" "$echo_bin" "$gw_bin" "$json_check"; do
    if [ ! -x "$b" ]; then
        echo "FAIL: $b is not executable"
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench.XXXXXX")
echo_pid=
ss_pid=
gw_pid=
be_pid=
cleanup() {
    stop_pid "$ss_pid"
    stop_pid "$gw_pid"
    stop_pid "$be_pid"
    stop_pid "$echo_pid"
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    for f in "$work"/*.log "$work"/*.out; do
        [ -f "$f" ] || continue
        echo "---- $(basename "$f") (last 30 lines)"
        tail -n 30 "$f"
    done
    exit 1
}

# json FILE PATH: the value at PATH in FILE (after a strict check of the whole file).
json() {
    "$json_check" "$1" "$2" || fail "$1: no $2 (or not strict JSON)"
}

# check_run NAME COUNT_TYPE EXPECTED: the JSON of run NAME is strict, has zero errors and
# EXPECTED operations of type COUNT_TYPE.
check_run() {
    "$json_check" "$work/$1.json" >/dev/null 2>"$work/$1.check" ||
        fail "$1: JSON: $(cat "$work/$1.check")"
    errors=$(json "$work/$1.json" totals.errors)
    [ "$errors" = 0 ] || fail "$1: $errors errors"
    n=$(json "$work/$1.json" "types.$2.count")
    [ "$n" = "$3" ] || fail "$1: $n $2 operations, expected $3"
    ok=$(json "$work/$1.json" totals.ok)
    series=$(json "$work/$1.json" series)
    [ "$series" -ge 1 ] || fail "$1: no per-second series"
    echo "ok: $1 ($n $2, $ok operations in all, $series seconds in the series)"
}

# check_resume NAME: the JSON of resume run NAME is strict, has zero errors, and at least 95%
# of the sessions it offered were resumed (the others made full handshakes instead).
check_resume() {
    "$json_check" "$work/$1.json" >/dev/null 2>"$work/$1.check" ||
        fail "$1: JSON: $(cat "$work/$1.check")"
    errors=$(json "$work/$1.json" totals.errors)
    [ "$errors" = 0 ] || fail "$1: $errors errors"
    offered=$(json "$work/$1.json" resumption.offered)
    resumed=$(json "$work/$1.json" resumption.resumed)
    instead=$(json "$work/$1.json" resumption.full_instead_of_resumed.count)
    primed=$(json "$work/$1.json" resumption.primed)
    [ "$offered" -gt 0 ] || fail "$1: no session offered"
    [ "$(json "$work/$1.json" types.resume.count)" = "$resumed" ] ||
        fail "$1: types.resume.count is not resumption.resumed"
    [ $((resumed * 100)) -ge $((offered * 95)) ] ||
        fail "$1: only $resumed of $offered offered sessions resumed ($instead full instead)"
    echo "ok: $1 ($resumed of $offered offered sessions resumed, $instead full instead," \
        "$primed priming full handshakes)"
}

# ---- tern-echo ---------------------------------------------------------------------------------
timeout 150 "$echo_bin" --listen 127.0.0.1:0 --threads 1 --log-level debug \
    --cert "$certs/server-ec.pem" --key "$certs/server-ec.key" \
    >"$work/echo.out" 2>"$work/echo.log" &
echo_pid=$!
port=$(wait_port "$work/echo.log" "$echo_pid") || fail "tern-echo did not start"
echo "tern-echo (pid $echo_pid) on 127.0.0.1:$port"

timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --count 200 --connections 4 --json "$work/echo-hs.json" --csv "$work/echo-hs.csv" \
    >"$work/echo-hs.out" 2>&1 || fail "echo-hs: tern-bench exited $?"
check_run echo-hs full 200
grep -q '^full  *200 ' "$work/echo-hs.out" || fail "echo-hs: no summary line for full"
grep -q '^errors: 0$' "$work/echo-hs.out" || fail "echo-hs: the summary shows errors"
head -n 1 "$work/echo-hs.csv" | grep -q '^second,dur_s,warmup,ok_full' ||
    fail "echo-hs: CSV header"
# stdout is not a terminal: the live lines are plain lines, no carriage returns
if tr -d '\n' <"$work/echo-hs.out" | grep -q "$(printf '\r')"; then
    fail "echo-hs: carriage returns in the output of a non-terminal"
fi

# the default offer is X25519 (one key share); the negotiated group is in the JSON
[ "$(json "$work/echo-hs.json" negotiated.group)" = X25519 ] ||
    fail "echo-hs: negotiated $(json "$work/echo-hs.json" negotiated.group), expected X25519"

# post-quantum hybrid key exchange: offered by tern-bench, preferred by tern-echo, and in
# tern-echo's debug line of each connection
timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost --tls 1.3 \
    --groups X25519MLKEM768 --count 300 --connections 4 --quiet --json "$work/echo-pq.json" \
    >"$work/echo-pq.out" 2>&1 || fail "echo-pq: tern-bench exited $?"
check_run echo-pq full 300
got=$(json "$work/echo-pq.json" negotiated.group)
[ "$got" = X25519MLKEM768 ] || fail "echo-pq: negotiated $got, expected X25519MLKEM768"
grep -q 'negotiated (first handshake): TLS 1.3, .*, group X25519MLKEM768' "$work/echo-pq.out" ||
    fail "echo-pq: the summary does not name the group"
n=$(grep -c 'msg="encrypted" .* group=X25519MLKEM768' "$work/echo.log")
[ "$n" -ge 300 ] || fail "echo-pq: tern-echo logged group=X25519MLKEM768 $n times, expected 300"
echo "ok: --groups X25519MLKEM768: 300 hybrid handshakes, tern-echo logged the group"

timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost --tls 1.2 \
    --count 200 --payload 100 --quiet --json "$work/echo-req.json" \
    >"$work/echo-req.out" 2>&1 || fail "echo-req: tern-bench exited $?"
check_run echo-req request 200
[ "$(json "$work/echo-req.json" totals.bytes_in)" = 20000 ] || fail "echo-req: bytes_in"

timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --mode echo --count 500 --payload 512 --connections 3 --quiet --json "$work/echo-rt.json" \
    >"$work/echo-rt.out" 2>&1 || fail "echo-rt: tern-bench exited $?"
check_run echo-rt request 500

timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --count 40 --source-addrs 127.0.0.2-127.0.0.3 --quiet --json "$work/echo-src.json" \
    >"$work/echo-src.out" 2>&1 || fail "echo-src: tern-bench exited $?"
check_run echo-src full 40
grep -q 'msg="accepted" peer=127\.0\.0\.2:' "$work/echo.log" ||
    fail "echo-src: no connection from 127.0.0.2"
grep -q 'msg="accepted" peer=127\.0\.0\.3:' "$work/echo.log" ||
    fail "echo-src: no connection from 127.0.0.3"
echo "ok: --source-addrs (connections from 127.0.0.2 and 127.0.0.3)"

# resumption: every connection slot primes a session once, then offers it
for v in 1.3 1.2; do
    timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
        --tls "$v" --mode resume --count 1000 --connections 4 --json "$work/echo-resume-$v.json" \
        >"$work/echo-resume-$v.out" 2>&1 || fail "echo-resume-$v: tern-bench exited $?"
    check_resume "echo-resume-$v"
    grep -q '^resume  *[0-9]' "$work/echo-resume-$v.out" ||
        fail "echo-resume-$v: no summary line for resume"
    grep -q '^resumption: ' "$work/echo-resume-$v.out" ||
        fail "echo-resume-$v: no resumption figures in the summary"
done
# with a request per connection (the TLS 1.3 ticket arrives before the echo)
timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --mode resume --count 300 --payload 64 --connections 3 --quiet \
    --json "$work/echo-resume-req.json" >"$work/echo-resume-req.out" 2>&1 ||
    fail "echo-resume-req: tern-bench exited $?"
check_resume echo-resume-req
[ "$(json "$work/echo-resume-req.json" types.request.count)" = 300 ] ||
    fail "echo-resume-req: not 300 requests"

# the mix: resume picks are 50% of 2,000; a pick's priming full handshake counts under full
timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --mix full=50,resume=50 --count 2000 --connections 4 --quiet \
    --json "$work/echo-mixr.json" >"$work/echo-mixr.out" 2>&1 ||
    fail "echo-mixr: tern-bench exited $?"
check_resume echo-mixr
full=$(json "$work/echo-mixr.json" types.full.count)
resume=$(json "$work/echo-mixr.json" types.resume.count)
[ $((full + resume)) = 2000 ] || fail "echo-mixr: $full full + $resume resume is not 2000"
# within 2% of 50%: 960..1040 of 2,000
for n in "$full" "$resume"; do
    if [ "$n" -lt 960 ] || [ "$n" -gt 1040 ]; then
        fail "echo-mixr: $full full / $resume resume is not within 2% of 50/50"
    fi
done
echo "ok: mix full=50,resume=50 over 2000 handshakes: $full full, $resume resume"
# an uneven ratio (the round robin's credits go below zero: a wrap-around picked one type
# nearly always)
timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni localhost \
    --mix full=70,resume=30 --count 1000 --connections 2 --quiet \
    --json "$work/echo-mix73.json" >"$work/echo-mix73.out" 2>&1 ||
    fail "echo-mix73: tern-bench exited $?"
full=$(json "$work/echo-mix73.json" types.full.count)
resume=$(json "$work/echo-mix73.json" types.resume.count)
if [ "$full" -lt 680 ] || [ "$full" -gt 720 ] || [ $((full + resume)) != 1000 ]; then
    fail "echo-mix73: $full full / $resume resume is not within 2% of 70/30"
fi
echo "ok: mix full=70,resume=30 over 1000 handshakes: $full full, $resume resume"

# a certificate that does not match the name asked for: verify errors, exit 1
timeout 60 "$bench" --target "127.0.0.1:$port" --ca "$certs/ca.pem" --sni wrong.example \
    --count 5 --quiet --json "$work/echo-verify.json" >"$work/echo-verify.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "echo-verify: exit $rc, expected 1"
[ "$(json "$work/echo-verify.json" errors.verify)" = 5 ] || fail "echo-verify: verify errors"
echo "ok: verify failures counted"
stop_pid "$echo_pid"
echo_pid=

# ---- openssl s_server ----------------------------------------------------------------------------
# It serves one connection at a time; -rev reads nothing from stdin. It prints ACCEPT once
# it listens; a port taken by someone else makes it exit at once: try another.
# start_s_server [ARG...]: sets ss_pid and ss_port
start_s_server() {
    n=0
    ss_port=
    while [ "$n" -lt 5 ]; do
        try=$((20000 + ($$ * 7 + n * 4099) % 40000))
        timeout 100 openssl s_server -accept "127.0.0.1:$try" -cert "$certs/server-ec.pem" \
            -key "$certs/server-ec.key" -rev "$@" >"$work/s_server.log" 2>&1 &
        ss_pid=$!
        k=0
        while [ "$k" -lt 50 ] && kill -0 "$ss_pid" 2>/dev/null &&
            ! grep -q '^ACCEPT' "$work/s_server.log"; do
            sleep 0.1
            k=$((k + 1))
        done
        if kill -0 "$ss_pid" 2>/dev/null && grep -q '^ACCEPT' "$work/s_server.log"; then
            ss_port=$try
            return 0
        fi
        stop_pid "$ss_pid"
        ss_pid=
        n=$((n + 1))
    done
    return 1
}
start_s_server
[ -n "$ss_port" ] || fail "openssl s_server did not start (5 ports tried)"
echo "openssl s_server (pid $ss_pid) on 127.0.0.1:$ss_port"
for v in 1.3 1.2; do
    timeout 60 "$bench" --target "127.0.0.1:$ss_port" --ca "$certs/ca.pem" --sni localhost \
        --tls "$v" --count 200 --connections 2 --quiet --json "$work/ss-$v.json" \
        >"$work/ss-$v.out" 2>&1 || fail "s_server TLS $v: tern-bench exited $?"
    check_run "ss-$v" full 200
    timeout 60 "$bench" --target "127.0.0.1:$ss_port" --ca "$certs/ca.pem" --sni localhost \
        --tls "$v" --mode resume --count 200 --connections 2 --quiet \
        --json "$work/ss-resume-$v.json" >"$work/ss-resume-$v.out" 2>&1 ||
        fail "s_server resume TLS $v: tern-bench exited $?"
    check_resume "ss-resume-$v"
done
# resume_by NAME BY EXPECTED_EXIT: a TLS 1.2 --resume BY run against s_server
resume_by() {
    timeout 60 "$bench" --target "127.0.0.1:$ss_port" --ca "$certs/ca.pem" --sni localhost \
        --tls 1.2 --resume "$2" --count 100 --connections 2 --quiet \
        --json "$work/$1.json" >"$work/$1.out" 2>&1
    rc=$?
    [ "$rc" = "$3" ] || fail "$1: --resume $2 exited $rc, expected $3"
    ok=true
    [ "$3" = 0 ] || ok=false
    [ "$(json "$work/$1.json" resumption.mechanism_ok)" = "$ok" ] ||
        fail "$1: resumption.mechanism_ok is not $ok"
    [ "$(json "$work/$1.json" resumption.by)" = "$2" ] || fail "$1: resumption.by is not $2"
    if [ "$3" = 0 ]; then
        check_resume "$1"
    else
        grep -q "ERROR: --resume $2" "$work/$1.out" || fail "$1: no ERROR line in the summary"
        echo "ok: $1 (--resume $2 refused: $(grep -o 'it resumed by [a-z ]*' "$work/$1.out"))"
    fi
}
resume_by ss-ticket ticket 0
resume_by ss-sid-with-tickets session-id 1
stop_pid "$ss_pid"
start_s_server -no_ticket || fail "openssl s_server -no_ticket did not start (5 ports tried)"
echo "openssl s_server -no_ticket (pid $ss_pid) on 127.0.0.1:$ss_port"
resume_by ss-sid session-id 0
resume_by ss-ticket-without-tickets ticket 1
stop_pid "$ss_pid"
ss_pid=

# ---- tern-gateway: certificate and PSK on one port -----------------------------------------------
key1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
key2=0123456789abcdef0123456789abcdef
key3=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
printf 'dev1:%s\ndev2:%s\ndev3:%s:sha384\n' "$key1" "$key2" "$key3" >"$work/ids.psk"
printf '# dev3 of the gateway file, alone\ndev3:%s:sha384\n' "$key3" >"$work/ids384.psk"
chmod 600 "$work/ids.psk" "$work/ids384.psk"
timeout 150 "$echo_bin" --plain --listen 127.0.0.1:0 --threads 1 \
    >"$work/be.out" 2>"$work/be.log" &
be_pid=$!
be_port=$(wait_port "$work/be.log" "$be_pid") || fail "the backend did not start"
timeout 150 "$gw_bin" --listen 127.0.0.1:0 --backend "127.0.0.1:$be_port" \
    --psk-file "$work/ids.psk" --cert "$certs/server-ec.pem" --key "$certs/server-ec.key" \
    --threads 1 >"$work/gw.out" 2>"$work/gw.log" &
gw_pid=$!
gw_port=$(wait_port "$work/gw.log" "$gw_pid") || fail "tern-gateway did not start"
echo "tern-gateway (pid $gw_pid) on 127.0.0.1:$gw_port, backend 127.0.0.1:$be_port"

timeout 120 "$bench" --target "127.0.0.1:$gw_port" --ca "$certs/ca.pem" --sni localhost \
    --mix full=50,psk=50 --psk-file "$work/ids.psk" --count 10000 --connections 8 \
    --json "$work/mix.json" >"$work/mix.out" 2>&1 || fail "mix: tern-bench exited $?"
"$json_check" "$work/mix.json" >/dev/null 2>"$work/mix.check" ||
    fail "mix: JSON: $(cat "$work/mix.check")"
[ "$(json "$work/mix.json" totals.errors)" = 0 ] || fail "mix: errors"
full=$(json "$work/mix.json" types.full.count)
psk=$(json "$work/mix.json" types.psk.count)
[ $((full + psk)) = 10000 ] || fail "mix: $full full + $psk psk is not 10000"
# within 2% of 50%: 4800..5200 of 10,000
for n in "$full" "$psk"; do
    if [ "$n" -lt 4800 ] || [ "$n" -gt 5200 ]; then
        fail "mix: $full full / $psk psk is not within 2% of 50/50"
    fi
done
echo "ok: mix full=50,psk=50 over 10000 handshakes: $full full, $psk psk"

timeout 60 "$bench" --target "127.0.0.1:$gw_port" --mode psk --tls 1.2 \
    --psk-identity dev2 --psk-key "$key2" --count 200 --payload 64 --quiet \
    --json "$work/psk12.json" >"$work/psk12.out" 2>&1 || fail "psk12: tern-bench exited $?"
check_run psk12 psk 200

# a :sha384 identity from the same file format as the gateway's: TLS 1.3 with the suite of
# that hash (tern-bench passes the hash with tern_socket_set_psk_hash; without it the key is
# bound with SHA-256 and the gateway refuses: no shared suite for this PSK)
timeout 60 "$bench" --target "127.0.0.1:$gw_port" --mode psk --psk-file "$work/ids384.psk" \
    --count 100 --connections 2 --quiet --json "$work/psk384.json" >"$work/psk384.out" 2>&1 ||
    fail "psk384: tern-bench exited $? ($(tail -n 3 "$work/psk384.out"))"
check_run psk384 psk 100
got="$(json "$work/psk384.json" negotiated.protocol) $(json "$work/psk384.json" negotiated.cipher)"
[ "$got" = "TLS 1.3 TLS13-AES256-GCM-SHA384" ] ||
    fail "psk384: negotiated $got, expected TLS 1.3 TLS13-AES256-GCM-SHA384"
echo "ok: a :sha384 identity file: 100 PSK handshakes with $got"

# TLS 1.3 PSK key exchange modes: psk_ke negotiates no group, psk_dhe_ke X25519
for m in ke dhe_ke; do
    timeout 60 "$bench" --target "127.0.0.1:$gw_port" --mode psk --tls 1.3 --psk-modes "$m" \
        --psk-identity dev1 --psk-key "$key1" --count 100 --connections 2 --quiet \
        --json "$work/psk-$m.json" >"$work/psk-$m.out" 2>&1 ||
        fail "psk-$m: tern-bench exited $? ($(tail -n 3 "$work/psk-$m.out"))"
    check_run "psk-$m" psk 100
    group=$(json "$work/psk-$m.json" negotiated.group)
    want=X25519
    [ "$m" = ke ] && want=
    [ "$group" = "$want" ] || fail "psk-$m: negotiated group '$group', expected '$want'"
    echo "ok: --psk-modes $m: group '${group:-none}'"
done

# --plain against the plaintext backend: connect, 16 B echo, close; and echo round trips
timeout 60 "$bench" --target "127.0.0.1:$be_port" --plain --count 300 --payload 16 --quiet \
    --json "$work/plain.json" >"$work/plain.out" 2>&1 || fail "plain: tern-bench exited $?"
check_run plain request 300
[ "$(json "$work/plain.json" config.plain)" = true ] || fail "plain: config.plain is not true"
timeout 60 "$bench" --target "127.0.0.1:$be_port" --plain --mode echo --count 300 \
    --connections 4 --quiet --json "$work/plain-echo.json" >"$work/plain-echo.out" 2>&1 ||
    fail "plain-echo: tern-bench exited $?"
check_run plain-echo request 300

# a wrong key: refused by the gateway, counted, exit 1
timeout 60 "$bench" --target "127.0.0.1:$gw_port" --mode psk --psk-identity dev2 \
    --psk-key "${key2}00" --count 5 --quiet --json "$work/pskbad.json" \
    >"$work/pskbad.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "pskbad: exit $rc, expected 1"
[ "$(json "$work/pskbad.json" totals.errors)" = 5 ] || fail "pskbad: not 5 errors"
echo "ok: a wrong PSK key is counted as errors"

# ---- a target that refuses everything --------------------------------------------------------------
# The backend's port, once it is stopped, refuses (nothing listens there any more).
stop_pid "$be_pid"
be_pid=
start=$(date +%s)
timeout 30 "$bench" --target "127.0.0.1:$be_port" --insecure --duration 2 --connections 2 \
    --json "$work/refused.json" >"$work/refused.out" 2>&1
rc=$?
end=$(date +%s)
[ "$rc" = 1 ] || fail "refused: exit $rc, expected 1"
[ $((end - start)) -le 10 ] || fail "refused: took $((end - start)) s for a 2 s run"
refused=$(json "$work/refused.json" errors.refused)
[ "$refused" -gt 0 ] || fail "refused: no refusals counted"
[ "$(json "$work/refused.json" totals.ok)" = 0 ] || fail "refused: operations succeeded"
grep -q '^  refused ' "$work/refused.out" || fail "refused: no breakdown in the summary"
echo "ok: a refusing target ends with exit 1 ($refused refusals in 2 s)"

timeout 30 "$bench" --target "127.0.0.1:$be_port" --insecure --count 50 --quiet \
    >"$work/refused-count.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "refused (--count): exit $rc, expected 1"
echo "PASS"

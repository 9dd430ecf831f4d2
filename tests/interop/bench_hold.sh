#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-bench --mode hold against tern-echo on loopback:
#   - 50 connections from two source addresses with a 1 s keep-alive held 2 s, the server's
#     memory read (--server-pid): 50 opened and open at the end, 0 failures, every
#     connection's keep-alive answered (at least 50 round trips, none failed), strict JSON
#     with the figures (climb, keepalive percentiles, client, server samples);
#   - 50 connections without keep-alive (the client keeps only the descriptors): the
#     server still sees 50 established connections while they are held (`ss`), and the
#     session tickets that came after the handshakes were read (no byte waits in the held
#     sockets' receive queues), 0 failures;
#   - a port where nothing listens: 5 refused, exit 1;
#   - the server killed while 50 are held as descriptors: all 50 counted as dropped.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: bench_hold.sh TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR
set -u
. "$(dirname "$0")/lib.sh"
interop_args 4 "TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR" "$@"
bench=$1
echo_bin=$2
json_check=$3
certs=$4
skip_unless_cmd openssl
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$bench"
need_exe "$echo_bin"
need_exe "$json_check"
interop_workdir bench-hold

# json FILE PATH: the value at PATH in FILE (after a strict check of the whole file).
json() {
    "$json_check" "$1" "$2" || fail "$1: no $2 (or not strict JSON)"
}
# expect FILE PATH VALUE
expect() {
    v=$(json "$1" "$2")
    [ "$v" = "$3" ] || fail "$(basename "$1"): $2 is '$v', expected '$3'"
}

# hold_50 NAME SECONDS: 50 connections held as descriptors for SECONDS (tern-bench in the
# background: $bench_pid), once all 50 climbed; its JSON and output in $work/NAME.*
hold_50() {
    # shellcheck disable=SC2086 # $tls is split on purpose
    timeout 30 "$bench" --mode hold --target "127.0.0.1:$port" $tls -c 50 -d "$2" \
        --json "$work/$1.json" >"$work/$1.out" 2>&1 &
    bench_pid=$!
    pids="$pids $bench_pid"
    n=0
    while ! grep -q '^climbed: ' "$work/$1.out" && [ "$n" -lt 100 ]; do
        kill -0 "$bench_pid" 2>/dev/null || break
        sleep 0.1
        n=$((n + 1))
    done
    grep -q '^climbed: 50 of 50 open, 0 failed' "$work/$1.out" ||
        fail "$1 run: no climb line ($(cat "$work/$1.out"))"
}

start_echo echo 50 --threads 1 --cert "$certs/server-ec.pem" --key "$certs/server-ec.key"
echo_pid=$(program_pid "$pid") # tern-echo itself, not its timeout
tls="--ca $certs/ca.pem --sni localhost"

# ---- keep-alive, two source addresses, the server's memory --------------------------------
# shellcheck disable=SC2086 # $tls is split on purpose
timeout 30 "$bench" --mode hold --target "127.0.0.1:$port" $tls -c 50 --keepalive 1 -d 2 \
    --source-addrs 127.0.0.2-127.0.0.3 --server-pid "$echo_pid" --json "$work/ka.json" \
    >"$work/ka.out" 2>&1 || fail "keep-alive run: tern-bench exited $? ($(tail -n 5 "$work/ka.out"))"
"$json_check" "$work/ka.json" >/dev/null 2>"$work/ka.check" || fail "JSON: $(cat "$work/ka.check")"
expect "$work/ka.json" mode hold
expect "$work/ka.json" opened 50
expect "$work/ka.json" open_at_end 50
expect "$work/ka.json" failed.total 0
expect "$work/ka.json" climb.attempted 50
expect "$work/ka.json" climb.complete true
expect "$work/ka.json" keepalive.failed 0
expect "$work/ka.json" client.keeps tls_socket
expect "$work/ka.json" server.pid "$echo_pid"
expect "$work/ka.json" config.source_addrs 2
n=$(json "$work/ka.json" keepalive.count)
[ "$n" -ge 50 ] || fail "keep-alive: $n round trips, expected at least 50 (one per connection)"
held=$(json "$work/ka.json" keepalive.held.count)
[ "$held" -gt 0 ] && [ "$held" -le "$n" ] ||
    fail "keep-alive: $held round trips after the climb, of $n (the hold is 2 s after it)"
held_p99=$(json "$work/ka.json" keepalive.held.p99_us)
[ "$held_p99" -gt 0 ] || fail "keep-alive: p99 after the climb is $held_p99 us"
grep -q '^keep-alive after the climb (whole seconds): ' "$work/ka.out" ||
    fail "no 'keep-alive after the climb' line"
p99=$(json "$work/ka.json" keepalive.p99_us)
max=$(json "$work/ka.json" keepalive.max_us)
[ "$p99" -gt 0 ] && [ "$p99" -le "$max" ] || fail "keep-alive: p99 $p99 us, max $max us"
samples=$(json "$work/ka.json" server.samples)
[ "$samples" -ge 3 ] || fail "server: $samples samples (start, the climb, the end expected)"
json "$work/ka.json" server.rss_kib_per_connection_at_end >/dev/null
json "$work/ka.json" server.kernel_whole_machine.slab_kib_per_connection >/dev/null
json "$work/ka.json" series.0.open >/dev/null
grep -q '^opened: 50 of 50 in ' "$work/ka.out" || fail "no 'opened:' line in the summary"
grep -q '^keep-alive: every 1 s, 2 B: ' "$work/ka.out" || fail "no 'keep-alive:' line"
grep -q '^server (pid ' "$work/ka.out" || fail "no 'server' line"
echo "ok: keep-alive ($n round trips, p99 $p99 us, 50 held, $samples server samples)"

# ---- no keep-alive: descriptors only, the server still holds them -------------------------
hold_50 idle 3
if command -v ss >/dev/null 2>&1; then
    sleep 1
    est=$(ss -Htn state established "( sport = :$port )" | wc -l)
    [ "$est" -eq 50 ] || fail "idle run: the server has $est established connections, not 50"
    # the client's ends: every ticket (TLS 1.3, after the handshake) read by the epoll sweep
    queued=$(ss -Htn state established "( dport = :$port )" | awk '$1 > 0' | wc -l)
    [ "$queued" -eq 0 ] || fail "idle run: $queued held connections have unread bytes"
fi
wait "$bench_pid" || fail "idle run: tern-bench exited $?"
expect "$work/idle.json" open_at_end 50
expect "$work/idle.json" failed.total 0
expect "$work/idle.json" client.keeps descriptor
expect "$work/idle.json" keepalive.count 0
echo "ok: 50 held as descriptors only, the server saw them established"

# ---- refused ------------------------------------------------------------------------------
dead=$(free_port)
# shellcheck disable=SC2086
timeout 30 "$bench" --mode hold --target "127.0.0.1:$dead" $tls -c 5 -d 1 \
    --json "$work/refused.json" >"$work/refused.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "refused run: exit $rc, expected 1"
expect "$work/refused.json" failed.refused 5
expect "$work/refused.json" opened 0
echo "ok: 5 refused, exit 1"

# ---- the server killed while connections are held as descriptors ---------------------------
hold_50 killed 4
kill -9 "$echo_pid"
wait "$bench_pid"
rc=$?
[ "$rc" = 1 ] || fail "killed run: exit $rc, expected 1 (connections were lost)"
expect "$work/killed.json" failed.dropped 50
expect "$work/killed.json" open_at_end 0
echo "ok: the server killed, 50 held connections counted as dropped"
echo "PASS"

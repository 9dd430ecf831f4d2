#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The admin listener (apps/common/admin.c) on tern-echo --admin:
#   - a known TLS workload through `openssl s_client` (6 full TLS 1.3 handshakes, 2 full
#     TLS 1.2, 1 resumption, then one failure each: TLS 1.1 only, no shared suite, a client
#     that connects and leaves), after which /metrics passes `promtool check metrics` and
#     holds exactly the counts the workload must have produced (handshakes by type, failures
#     by reason, alerts, the latency histogram's count, connections accepted);
#   - /healthz 200 "ok", /stats.json is JSON with the same counts, HEAD, an unknown path 404,
#     another method 405, garbage 400, a head over 8 KiB 431, each without harm to the server;
#   - slow and malformed admin clients (a dribbled head, a silent one that gets 408, binary
#     bytes) while TLS clients are served meanwhile;
#   - hibernation: off by default (its families there, all zero); a second tern-echo with
#     --hibernate-after 0.2 shows an idle connection hibernated (gauge 1, one hibernation),
#     then woken by its next line (the line still echoed), the wake-up in the histogram.
# Exit 0: pass; 77: skipped (no openssl, curl, promtool or python3; no test certificates).
#
# Usage: admin.sh TERN_ECHO CERTS_DIR
set -u

. "$(dirname "$0")/../interop/lib.sh"
interop_args 2 "TERN_ECHO CERTS_DIR" "$@"
echo_bin=$1
certs=$2
skip_unless_cmd openssl
skip_unless_cmd curl
skip_unless_cmd promtool "promtool not found (Debian: prometheus)"
skip_unless_cmd python3
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$echo_bin"
interop_workdir admin

# Port 0 for both: tern-echo logs them ("admin listening ... admin_port=P", "listening addr=").
start_echo server 110 --threads 2 --cert "$certs/server-rsa.pem" --key "$certs/server-rsa.key" \
    --admin 127.0.0.1:0
echo_pid=$pid
admin_port=$(sed -n 's/.*msg="admin listening".*admin_port=\([0-9][0-9]*\).*/\1/p' \
    "$work/server.log" | head -n 1)
[ -n "$admin_port" ] || fail "no admin port in the log"
echo "tern-echo (pid $echo_pid): TLS on $port, admin on $admin_port"
admin="http://127.0.0.1:$admin_port"

# Admin connections are counted by the runtime too: every request made so far.
requests=0

# scrape: /metrics into $work/metrics.txt.
scrape() {
    requests=$((requests + 1))
    curl -fsS --max-time 5 "$admin/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
}

# value SAMPLE: the value of the sample line SAMPLE (name and labels as written), or "none".
value() {
    v=$(awk -v k="$1" '$1 == k { print $2 }' "$work/metrics.txt" | head -n 1)
    echo "${v:-none}"
}

# expect_metric SAMPLE WANT: scrapes until SAMPLE has the value WANT (the server counts some
# events after the client has moved on: a client leaving, close_notify), 5 s at most.
expect_metric() {
    n=0
    while :; do
        scrape
        [ "$(value "$1")" = "$2" ] && return 0
        n=$((n + 1))
        [ "$n" -lt 50 ] || fail "$1 is $(value "$1"), expected $2"
        sleep 0.1
    done
}

# tls NAME VERSION [ARGS...]: one handshake and one echoed line; prints New/Reused.
tls() {
    name=$1
    version=$2
    shift 2
    line="admin test $name $$"
    { printf '%s\n' "$line"; sleep 0.5; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$port" "-$version" -servername localhost \
            -CAfile "$certs/ca.pem" -verify_return_error "$@" >"$work/$name.out" 2>&1
    grep -q "$line" "$work/$name.out" || {
        cat "$work/$name.out"
        fail "$name: the line did not come back"
    }
    sed -n 's/^\(New\|Reused\), .*/\1/p' "$work/$name.out" | head -n 1
}

# ---- the workload ----------------------------------------------------------------------------
for i in 1 2 3 4 5; do
    [ "$(tls "full13-$i" tls1_3)" = New ] || fail "full13-$i: not a new session"
done
for i in 1 2; do
    [ "$(tls "full12-$i" tls1_2)" = New ] || fail "full12-$i: not a new session"
done
# a TLS 1.3 ticket (stdin stays open: the ticket comes after the handshake), then resumed
{ printf 'ticket\n'; sleep 1; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_3 -servername localhost \
        -CAfile "$certs/ca.pem" -sess_out "$work/sess.pem" >"$work/ticket.out" 2>&1
[ -s "$work/sess.pem" ] || { cat "$work/ticket.out"; fail "no session saved"; }
[ "$(tls resumed tls1_3 -sess_in "$work/sess.pem")" = Reused ] || fail "resumed: not reused"
full13=6 # 5 + the ticket's

# failures: a version tern does not speak, no shared suite, a client that leaves at once
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    </dev/null >"$work/v11.out" 2>&1 && fail "a TLS 1.1 client connected"
timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_2 -cipher 'aNULL:@SECLEVEL=0' \
    </dev/null >"$work/anull.out" 2>&1 && fail "an anonymous-suite client connected"
python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 5).close()" ||
    fail "could not connect"
tls_conns=12 # 6 + 2 + 1 + 3

# ---- /metrics ------------------------------------------------------------------------------
expect_metric 'tern_handshake_failures_total{reason="peer_closed"}' 1
expect_metric 'tern_tls_alerts_total{direction="received",alert="close_notify"}' 9
curl -fsS --max-time 5 -D "$work/metrics.head" "$admin/metrics" >"$work/metrics.txt" ||
    fail "GET /metrics failed"
requests=$((requests + 1))
grep -qi '^content-type: text/plain; version=0.0.4' "$work/metrics.head" ||
    fail "/metrics: wrong content type: $(cat "$work/metrics.head")"
if ! promtool check metrics <"$work/metrics.txt" >"$work/promtool.out" 2>&1; then
    cat "$work/promtool.out"
    fail "promtool check metrics refused /metrics"
fi
[ -s "$work/promtool.out" ] && { cat "$work/promtool.out"; fail "promtool had remarks"; }
echo "ok: promtool check metrics"

check() {
    got=$(value "$1")
    [ "$got" = "$2" ] || { cat "$work/metrics.txt"; fail "$1 is $got, expected $2"; }
}
check 'tern_handshakes_total{type="full13"}' "$full13"
check 'tern_handshakes_total{type="full12"}' 2
check 'tern_handshakes_total{type="resumed"}' 1
check 'tern_handshakes_total{type="psk13"}' 0
check 'tern_handshakes_total{type="psk12"}' 0
check 'tern_handshake_failures_total{reason="version"}' 1
check 'tern_handshake_failures_total{reason="no_shared_cipher"}' 1
check 'tern_handshake_failures_total{reason="peer_closed"}' 1
for r in unknown_identity bad_key timeout certificate protocol other; do
    check "tern_handshake_failures_total{reason=\"$r\"}" 0
done
check 'tern_tls_alerts_total{direction="sent",alert="protocol_version"}' 1
check 'tern_tls_alerts_total{direction="sent",alert="handshake_failure"}' 1
check 'tern_tls_alerts_total{direction="sent",alert="close_notify"}' 9
check tern_handshake_duration_seconds_count 9
check 'tern_handshake_duration_seconds_bucket{le="+Inf"}' 9
check tern_connections_accepted_total $((tls_conns + requests))
check tern_connections_open 1 # this request's
check 'tern_echo_info{tls="on",balance="round-robin"}' 1
# the buckets are cumulative: never decreasing
awk '/^tern_handshake_duration_seconds_bucket/ { if ($2 < last) bad = 1; last = $2 }
     END { exit bad }' "$work/metrics.txt" || fail "the histogram is not cumulative"
for m in process_resident_memory_bytes process_open_fds process_max_fds \
    process_start_time_seconds; do
    [ "$(value "$m")" != none ] || fail "$m is missing"
done
grep -q '^# TYPE tern_handshake_duration_seconds histogram$' "$work/metrics.txt" ||
    fail "no histogram TYPE line"
# hibernation is off by default: the families are there, nothing counted
check tern_hibernated_connections 0
check tern_hibernations_total 0
check tern_wakeups_total 0
check tern_hibernate_failures_total 0
check tern_wake_failures_total 0
check tern_wake_duration_seconds_count 0
check 'tern_wake_duration_seconds_bucket{le="+Inf"}' 0
grep -q '^# TYPE tern_wake_duration_seconds histogram$' "$work/metrics.txt" ||
    fail "no wake-up histogram TYPE line"
grep -q '^# TYPE tern_hibernated_connections gauge$' "$work/metrics.txt" ||
    fail "tern_hibernated_connections is not a gauge"
echo "ok: /metrics holds the workload's counts"

# ---- the other endpoints -----------------------------------------------------------------
[ "$(curl -fsS --max-time 5 "$admin/healthz")" = ok ] || fail "/healthz is not ok"
curl -fsS --max-time 5 "$admin/stats.json" >"$work/stats.json" || fail "GET /stats.json failed"
python3 -m json.tool "$work/stats.json" >/dev/null || fail "/stats.json is not JSON"
python3 - "$work/stats.json" <<'EOF' || fail "/stats.json: wrong values"
import json, sys
d = json.load(open(sys.argv[1]))
r = d["runtime"]
assert r["handshakes_full13"] == 6 and r["handshakes_full12"] == 2, r
assert r["handshakes_resumed"] == 1 and r["handshakes"] == 9, r
assert r["handshake_failures"] == 3 and r["handshake_failures_version"] == 1, r
assert r["alerts_sent"]["protocol_version"] == 1, r["alerts_sent"]
assert sum(r["handshake_duration_buckets"]) == 9, r["handshake_duration_buckets"]
assert d["app"]["program"] == "tern-echo" and d["process"]["pid"] > 0, d
EOF
echo "ok: /healthz, /stats.json"

# status METHOD PATH: the HTTP status code curl saw (no -f: errors are what is tested)
status() {
    curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -X "$1" "$admin$2"
}
[ "$(status GET /nope)" = 404 ] || fail "an unknown path is not 404"
[ "$(status POST /metrics)" = 405 ] || fail "POST is not 405"
[ "$(curl -sS --max-time 5 -o /dev/null -w '%{http_code}' -I "$admin/healthz")" = 200 ] ||
    fail "HEAD /healthz is not 200"

# raw requests through python: garbage, a head over 8 KiB, a slow one, a silent one
cat >"$work/raw.py" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])

def exchange(data, pause=0.0, chunk=0, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(timeout)
    try:
        if chunk:
            for i in range(0, len(data), chunk):
                s.sendall(data[i:i + chunk])
                time.sleep(pause)
        elif data:
            s.sendall(data)
        reply = b""
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            reply += b
        return reply
    finally:
        s.close()

def status(reply):
    line = reply.split(b"\r\n", 1)[0].decode("latin-1")
    return line.split(" ")[1] if line.startswith("HTTP/1.1 ") else "none:" + line

case = sys.argv[2]
if case == "garbage":
    print(status(exchange(b"\x16\x03\x01\x00\x05hello\r\n\r\n")))
elif case == "badline":
    print(status(exchange(b"GET\r\n\r\n")))
elif case == "badversion":
    print(status(exchange(b"GET /metrics HTTP/2.0\r\n\r\n")))
elif case == "big":
    print(status(exchange(b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n")))
elif case == "slow":  # a head dribbled out over about 2 s: still answered
    print(status(exchange(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n", pause=0.05, chunk=1)))
elif case == "silent":  # connects and says nothing: 408 after the head timeout (5 s)
    print(status(exchange(b"GET /metr", timeout=15)))
EOF
raw() {
    python3 "$work/raw.py" "$admin_port" "$1"
}
[ "$(raw garbage)" = 400 ] || fail "garbage is not 400"
[ "$(raw badline)" = 400 ] || fail "a bad request line is not 400"
[ "$(raw badversion)" = 400 ] || fail "HTTP/2.0 is not 400"
[ "$(raw big)" = 431 ] || fail "a head over 8 KiB is not 431"
kill -0 "$echo_pid" 2>/dev/null || fail "tern-echo died"
echo "ok: 404, 405, HEAD, 400, 431"

# slow and silent admin clients while TLS is served: the TLS clients finish long before
raw slow >"$work/slow.txt" 2>&1 &
slow_pid=$!
pids="$pids $slow_pid"
raw silent >"$work/silent.txt" 2>&1 &
silent_pid=$!
pids="$pids $silent_pid"
sleep 0.3
for i in 1 2 3; do
    tls "during-$i" tls1_3 >/dev/null
done
[ "$(curl -fsS --max-time 5 "$admin/healthz")" = ok ] || fail "/healthz during slow clients"
kill -0 "$silent_pid" 2>/dev/null || fail "the silent client was answered too early"
wait "$slow_pid"
wait "$silent_pid"
[ "$(cat "$work/slow.txt")" = 200 ] || fail "slow client: $(cat "$work/slow.txt")"
[ "$(cat "$work/silent.txt")" = 408 ] || fail "silent client: $(cat "$work/silent.txt")"
tls after tls1_2 >/dev/null
kill -0 "$echo_pid" 2>/dev/null || fail "tern-echo died"
echo "ok: slow and silent admin clients did not stop TLS"

# ---- hibernation (--hibernate-after) on a second tern-echo ---------------------------------
start_echo hib 60 --threads 1 --cert "$certs/server-rsa.pem" --key "$certs/server-rsa.key" \
    --admin 127.0.0.1:0 --hibernate-after 0.2
admin_port=$(sed -n 's/.*msg="admin listening".*admin_port=\([0-9][0-9]*\).*/\1/p' \
    "$work/hib.log" | head -n 1)
[ -n "$admin_port" ] || fail "hib: no admin port in the log"
admin="http://127.0.0.1:$admin_port"
grep -q 'hibernate_after_ms=200 ' "$work/hib.log" || fail "hib: hibernate_after_ms=200 not logged"
# a line, 2 s idle (hibernated after 0.2 s), a second line that wakes it, then the client ends
{ printf 'before %s\n' $$; sleep 2; printf 'after %s\n' $$; sleep 0.3; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$port" -tls1_3 -servername localhost \
        -CAfile "$certs/ca.pem" -verify_return_error >"$work/hib.out" 2>&1 &
client_pid=$!
pids="$pids $client_pid"
expect_metric tern_hibernated_connections 1
check tern_hibernations_total 1
check tern_wakeups_total 0
check tern_wake_duration_seconds_count 0
wait "$client_pid"
grep -q "before $$" "$work/hib.out" && grep -q "after $$" "$work/hib.out" ||
    { cat "$work/hib.out"; fail "hib: the lines did not both come back"; }
expect_metric tern_hibernated_connections 0
wakeups=$(value tern_wakeups_total)
hibernations=$(value tern_hibernations_total)
[ "$wakeups" != none ] && [ "$wakeups" -ge 1 ] || fail "hib: tern_wakeups_total is $wakeups"
[ "$hibernations" -ge "$wakeups" ] || fail "hib: $hibernations hibernations, $wakeups wake-ups"
check tern_wake_duration_seconds_count "$wakeups"
check 'tern_wake_duration_seconds_bucket{le="+Inf"}' "$wakeups"
check tern_hibernate_failures_total 0
check tern_wake_failures_total 0
awk '/^tern_wake_duration_seconds_bucket/ { if ($2 < last) bad = 1; last = $2 }
     END { exit bad }' "$work/metrics.txt" || fail "the wake-up histogram is not cumulative"
if ! promtool check metrics <"$work/metrics.txt" >"$work/promtool.out" 2>&1; then
    cat "$work/promtool.out"
    fail "promtool check metrics refused /metrics with hibernation counted"
fi
curl -fsS --max-time 5 "$admin/stats.json" >"$work/hib.json" || fail "GET /stats.json failed"
python3 - "$work/hib.json" "$wakeups" <<'EOF' || fail "hib: /stats.json: wrong values"
import json, sys
r = json.load(open(sys.argv[1]))["runtime"]
w = int(sys.argv[2])
assert r["wakeups"] == w and r["hibernated_now"] == 0 and r["hibernations"] >= w, r
assert sum(r["wake_duration_buckets"]) == w and r["wake_duration_us_sum"] > 0, r
EOF
echo "ok: hibernation: hibernated while idle, woken by data ($hibernations hibernations, $wakeups wake-ups)"
echo PASS

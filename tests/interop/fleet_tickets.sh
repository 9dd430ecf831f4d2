#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: session-ticket keys shared by a fleet through Redis (--ticket-keys redis://...):
# one Redis, two tern-echo A and B (ticket lifetime 30 s: one server rotates every 15 s).
#   - a session from A (openssl s_client -sess_out) resumes on B (-sess_in): TLS 1.3 and 1.2;
#   - tern-bench --mode resume with --target A --target B: offers across targets resume;
#   - after a rotation (`rotated` changed in Redis), the sessions issued before still resume
#     on both, and new ones too;
#   - a `keys` field that is not keys, marked due: replaced by the next rotation (from the
#     set the rotating server had: 4 keys, lifetime/rotate + 2), sessions keep resuming;
#   - Redis killed: sessions still resume across A and B, old and new;
#   - Redis back on the same port (empty: no persistence): one server writes the keys again
#     from the set it had, rotation resumes (`rotated` reappears), and sessions issued before
#     the outage still resume on both;
#   - no key that Redis held appears in any log; /metrics (A's admin) has the families (and
#     passes `promtool check metrics` when installed); both stop cleanly on SIGTERM.
# Exit 0: pass; 77: skipped (no openssl, redis-server, or test certificates).
#
# Usage: fleet_tickets.sh TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR
set -u
. "$(dirname "$0")/lib.sh"
interop_args 4 "TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR" "$@"
bench=$1
echo_bin=$2
json_check=$3
certs=$4
skip_unless_cmd openssl
skip_unless_cmd redis-server
skip_unless_cmd redis-cli
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$bench"
need_exe "$echo_bin"
need_exe "$json_check"
interop_workdir fleet-tickets

start_redis redis
url="redis://127.0.0.1:$redis_port/0"
tls="--cert $certs/server-ec.pem --key $certs/server-ec.key --threads 2 --ticket-lifetime 30"
# shellcheck disable=SC2086 # $tls is split on purpose
start_echo a 115 $tls --ticket-keys "$url" --admin 127.0.0.1:0
port_a=$port
pid_a=$pid
# shellcheck disable=SC2086
start_echo b 115 $tls --ticket-keys "$url"
port_b=$port
pid_b=$pid
echo "redis :$redis_port, tern-echo a:$port_a b:$port_b"

# until SECONDS CMD...: runs CMD every 0.2 s until it succeeds; fails after SECONDS.
until_ok() {
    secs=$1
    shift
    n=0
    until "$@"; do
        [ "$n" -lt $((secs * 5)) ] || return 1
        sleep 0.2
        n=$((n + 1))
    done
}
in_force() {
    grep -q "fleet's keys are in force" "$work/a.log" &&
        grep -q "fleet's keys are in force" "$work/b.log"
}
until_ok 10 in_force || fail "the fleet's keys were not applied on both within 10 s"
# both found no keys at once: exactly one of them made the first set
n=$(cat "$work/a.log" "$work/b.log" | grep -c "rotated for the fleet")
[ "$n" = 1 ] || fail "$n servers made the first set, expected 1"

# Every key Redis held, for the check of the logs at the end.
keep_keys() {
    rcli HGET tern:tls:ticket-keys keys >>"$work/seen-keys" 2>/dev/null
}
keep_keys
[ "$(rcli HGET tern:tls:ticket-keys keys | grep -c .)" = 2 ] ||
    fail "a new fleet's set should hold 2 keys (next, sealing)"

# across STAGE [PREV]: sessions from A resume on B (TLS 1.3 and 1.2), saved as
# $work/STAGE-VERSION.sess; then the sessions of stage PREV resume on both (they are younger
# than the 30 s lifetime).
across() {
    stage=$1
    prev=${2:-}
    for v in tls1_3 tls1_2; do
        expect_eq "$(resume_connect "$stage-$v-new" "$port_a" "$v" - "$work/$stage-$v.sess")" New \
            "$stage: $v first handshake on A"
        expect_eq "$(resume_connect "$stage-$v-b" "$port_b" "$v" "$work/$stage-$v.sess" -)" Reused \
            "$stage: $v session from A resumed on B"
        [ -n "$prev" ] || continue
        for p in "$port_a" "$port_b"; do
            expect_eq "$(resume_connect "$stage-$prev-$v-$p" "$p" "$v" "$work/$prev-$v.sess" -)" Reused \
                "$stage: $v session of stage '$prev' resumed on :$p"
        done
    done
}

across start

# tern-bench: connections alternate between A and B, each offer goes to the other server
timeout 60 "$bench" --ca "$certs/ca.pem" --sni localhost --quiet --json "$work/bench.json" \
    --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" --tls 1.3 --mode resume \
    --count 200 --connections 4 >"$work/bench.out" 2>&1 ||
    fail "tern-bench exited $? ($(tail -n 5 "$work/bench.out"))"
x_offered=$("$json_check" "$work/bench.json" resumption.across_targets.offered) ||
    fail "bench: no resumption.across_targets.offered"
x_resumed=$("$json_check" "$work/bench.json" resumption.across_targets.resumed) ||
    fail "bench: no resumption.across_targets.resumed"
[ "$("$json_check" "$work/bench.json" totals.errors)" = 0 ] || fail "bench: errors"
[ "$x_offered" -gt 0 ] && [ $((x_resumed * 100)) -ge $((x_offered * 95)) ] ||
    fail "bench: $x_resumed of $x_offered offers resumed across A and B"
echo "ok: tern-bench: $x_resumed of $x_offered offers resumed across A and B"

# a rotation: `rotated` changes (one server rotates every 15 s)
r0=$(rcli HGET tern:tls:ticket-keys rotated)
[ -n "$r0" ] || fail "no rotated field in Redis"
changed() { r=$(rcli HGET tern:tls:ticket-keys rotated) && [ -n "$r" ] && [ "$r" != "$r0" ]; }
until_ok 20 changed || fail "no rotation within 20 s (rotated still $r0)"
keep_keys
[ "$(rcli HGET tern:tls:ticket-keys keys | grep -c .)" = 3 ] ||
    fail "after one rotation the set should hold 3 keys"
sleep 1 # the publish reached both
echo "ok: rotated ($r0 -> $r)"
across rotated start

# the admin's /metrics on A
if command -v curl >/dev/null 2>&1; then
    aport=$(sed -n 's/.*msg="admin listening".*admin_port=\([0-9][0-9]*\).*/\1/p' \
        "$work/a.log" | head -n 1)
    curl -fsS "http://127.0.0.1:$aport/metrics" >"$work/metrics.txt" || fail "GET /metrics"
    for m in 'tern_ticket_keys_redis_up 1' 'tern_ticket_keys_rotations_total ' \
        'tern_ticket_keys_applied_total ' 'tern_ticket_keys_sync_age_seconds '; do
        grep -q "^$m" "$work/metrics.txt" || fail "/metrics: no '$m'"
    done
    if command -v promtool >/dev/null 2>&1; then
        promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics"
    fi
    echo "ok: /metrics has the ticket-key families"
fi

# a `keys` field that is not keys (an operator's mistake), marked due: the keys in force stay,
# and the next rotation replaces it, from the set the rotating server had
rcli HSET tern:tls:ticket-keys keys "not keys" rotated 0 >/dev/null || fail "HSET"
rcli PUBLISH tern:tls:ticket-keys:changed x >/dev/null
repaired() {
    k=$(rcli HGET tern:tls:ticket-keys keys) && [ -n "$k" ] && [ "$k" != "not keys" ]
}
until_ok 20 repaired || fail "the bad keys field was not replaced within 20 s"
keep_keys
grep -q "is not 96-hex-digit lines" "$work/a.log" "$work/b.log" ||
    fail "the bad keys field was not logged"
n=$(rcli HGET tern:tls:ticket-keys keys | grep -c .)
[ "$n" = 4 ] || fail "the repaired set holds $n keys, expected 4 (lifetime/rotate + 2)"
sleep 1
echo "ok: a bad keys field is replaced by the next rotation ($n keys)"
across repaired rotated

# Redis gone: the keys stay, sessions keep resuming across the two
stop_pid "$redis_pid"
sleep 1
across outage repaired

# Redis back, empty, on the same port: the set comes back from a server, rotation resumes
redis_port_wanted=$redis_port start_redis redis2
back() { r=$(rcli HGET tern:tls:ticket-keys rotated) && [ -n "$r" ]; }
until_ok 20 back || fail "the keys were not written again within 20 s of Redis's return"
keep_keys
echo "ok: Redis back: the fleet's keys written again (rotated $r)"
sleep 1
across back outage

# no key Redis held appears in a log (names and keys alike, any case)
for k in $(sort -u "$work/seen-keys"); do
    name=$(printf %s "$k" | cut -c1-32)
    key=$(printf %s "$k" | cut -c33-96)
    for l in "$work"/a.log "$work"/b.log "$work"/a.out "$work"/b.out; do
        if grep -qi -e "$name" -e "$key" "$l"; then
            fail "a ticket key from Redis appears in $(basename "$l")"
        fi
    done
done
[ -s "$work/seen-keys" ] || fail "no key seen in Redis"
grep -q "rotated for the fleet" "$work/a.log" "$work/b.log" || fail "no rotation logged"
echo "ok: $(sort -u "$work/seen-keys" | wc -l) keys seen in Redis, none in the logs"

# both stop cleanly (a sanitized build reports in the log)
for s in a b; do
    eval "p=\$pid_$s"
    kill -TERM "$p"
    wait "$p"
    rc=$?
    [ "$rc" = 0 ] || fail "tern-echo $s exited $rc after SIGTERM"
    ! grep -q 'Sanitizer\|runtime error:' "$work/$s.log" || fail "sanitizer report in $s.log"
done
echo "ok: both stopped cleanly"
echo "PASS"

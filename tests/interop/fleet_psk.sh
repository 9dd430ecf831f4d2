#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: two tern-gateways sharing their devices' identities through one real Redis
# (Debian's redis-server on a loopback port of its own, no persistence), `openssl s_client`
# and tern-bench as devices, `tern-echo --plain` as the backend:
#   (a) an identity in Redis at start handshakes on both; an unknown one is refused on both;
#   (b) an identity added (HSET + PUBLISH tern:psk:invalidate) handshakes on both within 1 s,
#       one added with HSET alone (keyspace notifications) too, although both gateways had
#       cached it as unknown;
#   (c) an identity removed (DEL, no PUBLISH) is refused on both within 1 s, and its open
#       connections on both are closed (close_removed);
#   (d) a slow Redis (DEBUG SLEEP 3) does not slow handshakes of cached identities;
#   (h) an identity's own max_conn (1) and backend, on a miss and on a cache hit;
#   (e) Redis killed during a tern-bench run of cached identities: 0 failed handshakes; an
#       unknown identity is refused at once; /healthz says "degraded", tern_gateway_psk_store_up
#       is 0; Redis back (with an identity added and one removed meanwhile): the gateways
#       reconnect by themselves, the added identity handshakes, the removed one is refused
#       and its open connection closed (the revalidation after the outage);
#   (g) Redis back EMPTY: with the store's marker seen before, cached identities are kept
#       (served, their connections left open), the missing marker logged; once the marker is
#       back, a removal applies again;
#   (f) /metrics has every tern_gateway_psk_store_* family and passes `promtool check
#       metrics`; no key appears in any log.
# Exit 0: pass; 77: skipped (no openssl); anything else: fail.
#
# Usage: fleet_psk.sh TERN_GATEWAY TERN_ECHO TERN_BENCH
set -u

. "$(dirname "$0")/lib.sh"
interop_args 3 "TERN_GATEWAY TERN_ECHO TERN_BENCH" "$@"
gw_bin=$1
echo_bin=$2
bench=$3
skip_unless_cmd openssl
skip_unless_cmd curl
need_exe "$gw_bin"
need_exe "$echo_bin"
need_exe "$bench"
command -v redis-cli >/dev/null 2>&1 || fail "redis-cli is not installed (scripts/bootstrap)"
interop_workdir fleet-psk

key_of() { # a distinct 32-byte key per identity, as hex
    printf '%s' "$1" | sha256sum | cut -c1-64
}

# add_id IDENTITY [PUBLISH]: the identity's hash in Redis (and the invalidation message).
add_id() {
    rcli HSET "tern:psk:$1" key "$(key_of "$1")" hash sha256 >/dev/null ||
        fail "HSET $1 failed"
    [ "${2:-}" = publish ] && rcli PUBLISH tern:psk:invalidate "$1" >/dev/null
    return 0
}

start_redis r --notify-keyspace-events Kgh --enable-debug-command local
r_port=$redis_port
r_pid=$redis_pid
add_id dev1
rcli SET tern:psk: fleet-test >/dev/null # the store's marker (contrib/tern-psk-redis sets it)

start_echo be 120 --plain --threads 1
be_port=$port

# start_gw NAME: a gateway on the Redis store, 2 threads, close_removed, an admin port.
start_gw() {
    "$gw_bin" --listen 127.0.0.1:0 --psk-store "redis://127.0.0.1:$r_port/0" \
        --backend "127.0.0.1:$be_port" --close-removed --threads 2 --admin 127.0.0.1:0 \
        --psk-store-negative-ttl 60 --log-level info >/dev/null 2>"$work/$1.log" &
    gpid=$!
    pids="$pids $gpid"
    gport=$(wait_port "$work/$1.log" "$gpid") || fail "gateway $1 did not start"
    n=0
    until grep -q 'msg="admin listening"' "$work/$1.log"; do
        [ "$n" -lt 50 ] || fail "gateway $1: no admin port"
        sleep 0.1
        n=$((n + 1))
    done
    gadmin=$(sed -n 's/.*msg="admin listening".* port=\([0-9]*\).*/\1/p' "$work/$1.log")
}
start_gw A
a_pid=$gpid a_port=$gport a_admin=$gadmin
start_gw B
b_pid=$gpid b_port=$gport b_admin=$gadmin
echo "redis $r_port, backend $be_port, gateway A $a_port (admin $a_admin), B $b_port" \
    "(admin $b_admin)"

# psk NAME PORT IDENTITY: one TLS 1.3 PSK connection sending one line; true when the line
# came back. The client's input stays open until then (5 s at most), or until the client
# ended (refused).
psk() {
    line="fleet $1 $$"
    rm -f "$work/$1.in"
    mkfifo "$work/$1.in" || fail "mkfifo"
    timeout 10 openssl s_client -connect "127.0.0.1:$2" -brief -tls1_3 \
        -psk "$(key_of "$3")" -psk_identity "$3" <"$work/$1.in" >"$work/$1.out" \
        2>"$work/$1.err" &
    sc_pid=$!
    (
        printf '%s\n' "$line"
        k=0
        while [ "$k" -lt 100 ] && ! grep -q "$line" "$work/$1.out" 2>/dev/null; do
            kill -0 "$sc_pid" 2>/dev/null || break
            sleep 0.05
            k=$((k + 1))
        done
    ) >"$work/$1.in"
    wait "$sc_pid"
    grep -q "$line" "$work/$1.out"
}

# until_psk NAME PORT IDENTITY WANT DEADLINE_MS: retries psk until it gives WANT (ok or
# refused), up to DEADLINE_MS after $t0 (ms, set by the caller); prints the ms it took.
now_ms() { date +%s%3N; }
until_psk() {
    while :; do
        if psk "$1" "$2" "$3"; then got=ok; else got=refused; fi
        el=$(($(now_ms) - t0))
        [ "$got" = "$4" ] && { echo "$el"; return 0; }
        [ "$el" -lt "$5" ] || { cat "$work/$1.err" >&2; return 1; }
        sleep 0.05
    done
}

# held NAME PORT IDENTITY: a connection that stays open (its input is a fifo kept open for
# 30 s); sets $held_pid. held_open NAME: whether its s_client still runs.
held() {
    rm -f "$work/$1.in"
    mkfifo "$work/$1.in"
    timeout 40 openssl s_client -connect "127.0.0.1:$2" -brief -tls1_3 \
        -psk "$(key_of "$3")" -psk_identity "$3" <"$work/$1.in" >"$work/$1.out" \
        2>"$work/$1.err" &
    held_pid=$!
    pids="$pids $held_pid"
    (
        printf 'held %s\n' "$1"
        sleep 30
    ) >"$work/$1.in" &
    pids="$pids $!"
    n=0
    until grep -q "held $1" "$work/$1.out" 2>/dev/null; do
        [ "$n" -lt 50 ] || fail "held connection $1 did not echo"
        sleep 0.1
        n=$((n + 1))
    done
}

# closed_within PID MS: the process ends within MS milliseconds.
closed_within() {
    s=$(now_ms)
    while kill -0 "$1" 2>/dev/null; do
        [ $(($(now_ms) - s)) -lt "$2" ] || return 1
        sleep 0.05
    done
    return 0
}

metric() { # metric ADMIN_PORT NAME: the first sample of NAME
    curl -s "http://127.0.0.1:$1/metrics" | sed -n "s/^$2[{ ].* \([0-9.e+]*\)\$/\1/p" |
        head -n 1
}

# ---- (a) ----------------------------------------------------------------------------------
psk a1 "$a_port" dev1 || fail "(a) dev1 on A"
psk a2 "$b_port" dev1 || fail "(a) dev1 on B"
psk a3 "$a_port" dev2 && fail "(a) dev2 (unknown) on A was served"
psk a4 "$b_port" dev2 && fail "(a) dev2 (unknown) on B was served"
echo "ok (a): dev1 served by both, the unknown dev2 refused by both"

# ---- (b) ----------------------------------------------------------------------------------
t0=$(now_ms)
add_id dev2 publish
ms=$(until_psk b1 "$a_port" dev2 ok 1000) || fail "(b) dev2 not served by A within 1 s"
ms2=$(until_psk b2 "$b_port" dev2 ok 1000) || fail "(b) dev2 not served by B within 1 s"
echo "ok (b): dev2 added and published: served by A after $ms ms, by B after $ms2 ms"
psk b3 "$a_port" dev3 && fail "(b) dev3 (unknown) on A was served"
psk b4 "$b_port" dev3 && fail "(b) dev3 (unknown) on B was served"
t0=$(now_ms)
add_id dev3
ms=$(until_psk b5 "$a_port" dev3 ok 1000) ||
    fail "(b) dev3 (HSET alone, keyspace notification) not served by A within 1 s"
ms2=$(until_psk b6 "$b_port" dev3 ok 1000) || fail "(b) dev3 not served by B within 1 s"
echo "ok (b): dev3 added without PUBLISH: served by A after $ms ms, by B after $ms2 ms"

# ---- (c) ----------------------------------------------------------------------------------
held c_heldA "$a_port" dev2
c_a=$held_pid
held c_heldB "$b_port" dev2
c_b=$held_pid
t0=$(now_ms)
rcli DEL tern:psk:dev2 >/dev/null
closed_within "$c_a" 1000 || fail "(c) dev2's connection on A still open 1 s after DEL"
closed_within "$c_b" 1000 || fail "(c) dev2's connection on B still open 1 s after DEL"
ms=$(until_psk c1 "$a_port" dev2 refused 1000) || fail "(c) dev2 still served by A after 1 s"
ms2=$(until_psk c2 "$b_port" dev2 refused 1000) || fail "(c) dev2 still served by B after 1 s"
grep -q 'msg="identity removed: closing its connections".*identity="dev2"' "$work/A.log" ||
    fail "(c) A did not log the closing"
echo "ok (c): dev2 removed: its connections closed on both within 1 s, refused after" \
    "$ms / $ms2 ms"

# ---- (d) ----------------------------------------------------------------------------------
rcli DEBUG SLEEP 3 >/dev/null &
sleeper=$!
pids="$pids $sleeper"
sleep 0.3
s=$(now_ms)
psk d1 "$a_port" dev1 || fail "(d) dev1 on A while Redis sleeps"
psk d2 "$b_port" dev3 || fail "(d) dev3 on B while Redis sleeps"
el=$(($(now_ms) - s))
[ "$el" -lt 1500 ] || fail "(d) two cached handshakes took $el ms while Redis slept 3 s"
wait "$sleeper"
echo "ok (d): Redis asleep for 3 s: two cached handshakes took $el ms in all"

# ---- (h) ----------------------------------------------------------------------------------
# an identity's own fields: max_conn 1 and a backend of its own; the first connection is a
# miss (applied when the handshake completes), the next ones cache hits (applied before the
# key is given)
start_echo be2 120 --plain --threads 1 --log-level debug
be2_port=$port
rcli HSET tern:psk:dev-h key "$(key_of dev-h)" max_conn 1 backend "127.0.0.1:$be2_port" \
    >/dev/null
held h_held "$a_port" dev-h
h_held_pid=$held_pid
[ "$(grep -c 'msg="accepted"' "$work/be2.log")" -ge 1 ] ||
    fail "(h) dev-h was not routed to its own backend"
psk h1 "$a_port" dev-h && fail "(h) a second dev-h connection was served over max_conn 1"
grep -q 'identity="dev-h" reason=connection-limit limit=1' "$work/A.log" ||
    fail "(h) the refusal over max_conn was not logged"
stop_pid "$h_held_pid"
t0=$(now_ms)
ms=$(until_psk h2 "$a_port" dev-h ok 2000) || fail "(h) dev-h refused once its slot was free"
[ "$(grep -c 'msg="accepted"' "$work/be2.log")" -ge 2 ] ||
    fail "(h) the cached dev-h was not routed to its own backend"
echo "ok (h): max_conn 1 and the identity's backend applied (miss and cache hit)"

# ---- (e) ----------------------------------------------------------------------------------
: >"$work/ids.psk"
i=0
while [ "$i" -lt 20 ]; do
    id="plant-1/dev-$i"
    add_id "$id"
    printf '%s:%s\n' "$id" "$(key_of "$id")" >>"$work/ids.psk"
    i=$((i + 1))
done
chmod 600 "$work/ids.psk"
# warm both caches with every identity
for p in "$a_port" "$b_port"; do
    timeout 30 "$bench" --target "127.0.0.1:$p" --mode psk --psk-file "$work/ids.psk" \
        --tls 1.3 --count 40 --connections 2 --quiet >"$work/warm.out" 2>&1 ||
        { cat "$work/warm.out"; fail "(e) warming the cache of port $p"; }
done
held e_held "$a_port" plant-1/dev-5
e_held_pid=$held_pid
# the data Redis will have when it comes back: dev-5 removed, dev-new added; built in a
# scratch Redis and saved, so that the restarted Redis starts with it before any gateway can
# reconnect
start_redis r2
rcli SET tern:psk: fleet-test >/dev/null
for id in dev1 dev3 plant-1/dev-new; do
    add_id "$id"
done
i=0
while [ "$i" -lt 20 ]; do
    [ "$i" -eq 5 ] || add_id "plant-1/dev-$i"
    i=$((i + 1))
done
rcli SAVE >/dev/null || fail "(e) SAVE in the scratch Redis"
stop_pid "$redis_pid"
redis_port=$r_port
# now the outage, under load
timeout 30 "$bench" --target "127.0.0.1:$a_port" --mode psk --psk-file "$work/ids.psk" \
    --tls 1.3 --duration 4 --connections 2 --quiet >"$work/bench-a.out" 2>&1 &
bench_a=$!
timeout 30 "$bench" --target "127.0.0.1:$b_port" --mode psk --psk-file "$work/ids.psk" \
    --tls 1.3 --duration 4 --connections 2 --quiet >"$work/bench-b.out" 2>&1 &
bench_b=$!
pids="$pids $bench_a $bench_b"
sleep 1
stop_pid "$r_pid"
sleep 0.5
s=$(now_ms)
psk e1 "$a_port" plant-1/dev-new && fail "(e) an unknown identity was served while Redis is down"
el=$(($(now_ms) - s))
[ "$el" -lt 1000 ] || fail "(e) refusing an unknown identity took $el ms while Redis is down"
curl -s "http://127.0.0.1:$a_admin/healthz" >"$work/healthz" || fail "(e) /healthz"
grep -q '^ok$' "$work/healthz" && grep -q '^degraded: psk store redis://127.0.0.1' \
    "$work/healthz" || { cat "$work/healthz"; fail "(e) /healthz does not say degraded"; }
[ "$(metric "$a_admin" tern_gateway_psk_store_up)" = 0 ] ||
    fail "(e) tern_gateway_psk_store_up is not 0 while Redis is down"
wait "$bench_a"
rca=$?
wait "$bench_b"
rcb=$?
cat "$work/bench-a.out" "$work/bench-b.out"
[ "$rca" -eq 0 ] && grep -q '^errors: 0$' "$work/bench-a.out" ||
    fail "(e) handshakes of cached identities failed on A while Redis was down"
[ "$rcb" -eq 0 ] && grep -q '^errors: 0$' "$work/bench-b.out" ||
    fail "(e) handshakes of cached identities failed on B while Redis was down"
grep -q '^psk  *[1-9]' "$work/bench-a.out" || fail "(e) no PSK handshakes on A"
[ "$(grep -c 'msg="redis unreachable"' "$work/A.log")" -le 2 ] ||
    fail "(e) the outage was logged more than once per connection to Redis"
echo "ok (e): Redis down: cached identities served with 0 errors, unknown refused in $el ms"
# Redis back on its port, starting from the saved data (its dir is r2's)
redis_port_wanted=$r_port start_redis r2 --notify-keyspace-events Kgh
redis_port_wanted=
t0=$(now_ms)
for adm in "$a_admin" "$b_admin"; do
    n=0
    until [ "$(metric "$adm" tern_gateway_psk_store_up)" = 1 ]; do
        [ "$n" -lt 100 ] || fail "(e) a gateway did not reconnect to Redis within 10 s"
        sleep 0.1
        n=$((n + 1))
    done
done
echo "gateways reconnected after $(($(now_ms) - t0)) ms"
t0=$(now_ms)
ms=$(until_psk e2 "$a_port" plant-1/dev-new ok 1000) ||
    fail "(e) dev-new (added while the gateways were away) not served by A"
ms2=$(until_psk e3 "$b_port" plant-1/dev-new ok 1000) || fail "(e) dev-new not served by B"
closed_within "$e_held_pid" 2000 ||
    fail "(e) dev-5 (removed while the gateways were away) still connected to A"
psk e4 "$b_port" plant-1/dev-5 && fail "(e) dev-5 still served by B"
curl -s "http://127.0.0.1:$a_admin/healthz" | grep -q degraded && fail "(e) still degraded"
echo "ok (e): Redis back: dev-new served after $ms / $ms2 ms, dev-5 refused and closed"

# ---- (g) ----------------------------------------------------------------------------------
# Redis back EMPTY (no persistence): without the marker the gateways must not take every
# cached identity as removed (close_removed would drop every device)
held g_held "$a_port" dev1
g_held_pid=$held_pid
stop_pid "$redis_pid"
redis_port_wanted=$r_port start_redis r3 --notify-keyspace-events Kgh
redis_port_wanted=
for adm in "$a_admin" "$b_admin"; do
    n=0
    until [ "$(metric "$adm" tern_gateway_psk_store_up)" = 1 ]; do
        [ "$n" -lt 100 ] || fail "(g) a gateway did not reconnect to the empty Redis"
        sleep 0.1
        n=$((n + 1))
    done
done
sleep 1
kill -0 "$g_held_pid" 2>/dev/null || fail "(g) dev1's connection was closed by an empty Redis"
psk g1 "$b_port" dev1 || fail "(g) dev1 (cached) refused after Redis came back empty"
psk g2 "$b_port" plant-1/dev-7 || fail "(g) plant-1/dev-7 (cached) refused on B"
psk g3 "$a_port" never-seen && fail "(g) an unknown identity was served"
grep -q 'msg="psk store: the marker key is gone' "$work/A.log" ||
    fail "(g) A did not log the missing marker"
[ "$(metric "$a_admin" tern_gateway_psk_store_removals_ignored_total)" -gt 0 ] ||
    fail "(g) no removal counted as ignored"
# the identities come back, with the marker: a removal applies again
add_id dev1
rcli SET tern:psk: fleet-test >/dev/null
t0=$(now_ms)
rcli DEL tern:psk:plant-1/dev-7 >/dev/null
rcli PUBLISH tern:psk:invalidate plant-1/dev-7 >/dev/null
ms=$(until_psk g4 "$b_port" plant-1/dev-7 refused 2000) ||
    fail "(g) with the marker back, a removal did not apply"
echo "ok (g): Redis back empty: cached identities kept and served, open connections kept;" \
    "marker back: removals apply again ($ms ms)"

# ---- (f) ----------------------------------------------------------------------------------
curl -s "http://127.0.0.1:$a_admin/metrics" >"$work/metrics.txt" || fail "(f) /metrics"
for fam in up down_seconds outages_total cache_total answers_total refusals_total \
    invalidations_total removed_total removals_ignored_total cache_entries inflight; do
    grep -q "^tern_gateway_psk_store_$fam{store=\"redis://127.0.0.1:$r_port\"" \
        "$work/metrics.txt" || fail "(f) /metrics has no tern_gateway_psk_store_$fam"
done
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$work/metrics.txt" >"$work/promtool.out" 2>&1 ||
        { cat "$work/promtool.out"; fail "(f) promtool check metrics"; }
fi
for id in dev1 dev3 plant-1/dev-0; do
    k=$(key_of "$id")
    grep -l "$k" "$work"/*.log && fail "(f) a key appears in a log"
done
stop_pid "$a_pid"
stop_pid "$b_pid"
for l in A B; do
    grep -q 'Sanitizer\|runtime error:' "$work/$l.log" && fail "sanitizer report in $l.log"
done
echo "ok (f): no key in any log"
exit 0

#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: two tern-gateway (certificate services, `tern-echo --plain` as the backend) with
# `ticket_keys = redis://...` in their configuration files, one Redis:
#   - -t accepts the URL without connecting; a bad URL is refused (exit 2, FILE:LINE);
#   - a session from gateway A (openssl s_client -sess_out) resumes on gateway B (-sess_in),
#     TLS 1.3 and 1.2, through both to the backend;
#   - a reload of A whose ticket_keys names another URL logs that the change needs a restart,
#     the rest of the reload applies, and sessions still resume across A and B;
#   - Redis killed: sessions still resume across the two;
#   - /metrics (A) has the ticket-key families and passes `promtool check metrics`;
#   - no key that Redis held appears in a log; both exit 0 on SIGTERM.
# Exit 0: pass; 77: skipped (no openssl, curl, redis-server, or test certificates).
#
# Usage: fleet_tickets_gateway.sh TERN_GATEWAY TERN_ECHO CERTS_DIR
set -u
. "$(dirname "$0")/lib.sh"
interop_args 3 "TERN_GATEWAY TERN_ECHO CERTS_DIR" "$@"
gw_bin=$1
echo_bin=$2
certs=$3
skip_unless_cmd openssl
skip_unless_cmd curl
skip_unless_cmd redis-server
skip_unless_cmd redis-cli
skip_unless_file "$certs/server-ec.pem" "no test certificates in $certs"
need_exe "$gw_bin"
need_exe "$echo_bin"
interop_workdir fleet-tickets-gw

start_redis redis
url="redis://127.0.0.1:$redis_port/0"
start_echo be 90 --plain --threads 1
be_port=$port

# write_conf NAME URL: a gateway configuration, one certificate service on a free port.
write_conf() {
    {
        printf 'threads = 2\nadmin = 127.0.0.1:0\nwatch = 0\nticket_keys = %s\n\n' "$2"
        printf '[web]\nlisten = 127.0.0.1:0\ncert = %s\nkey = %s\nbackend = 127.0.0.1:%s\n' \
            "$certs/server-ec.pem" "$certs/server-ec.key" "$be_port"
    } >"$work/$1.conf.new"
    mv "$work/$1.conf.new" "$work/$1.conf"
}

# -t: the URL is checked, nothing connects; a bad one names its line
write_conf a "$url"
timeout 10 "$gw_bin" -t -c "$work/a.conf" >"$work/t.out" 2>&1 ||
    { cat "$work/t.out"; fail "-t refused a configuration with a Redis URL"; }
write_conf bad "redis://127.0.0.1:99999/0"
timeout 10 "$gw_bin" -t -c "$work/bad.conf" >"$work/t-bad.out" 2>&1
rc=$?
[ "$rc" = 2 ] || { cat "$work/t-bad.out"; fail "-t: a bad Redis URL: exit $rc, expected 2"; }
grep -q "bad.conf:4:" "$work/t-bad.out" || { cat "$work/t-bad.out"; fail "-t: no FILE:LINE"; }
echo "ok: -t accepts a Redis URL and refuses a bad one with its line"

# start_gw NAME: a gateway on NAME.conf; sets gw_NAME (pid) and port_NAME.
start_gw() {
    # not under timeout(1), which forwards only the first SIGHUP; cleanup stops it by PID
    "$gw_bin" -c "$work/$1.conf" >/dev/null 2>"$work/$1.log" &
    eval "gw_$1=$!"
    pids="$pids $!"
    eval "port_$1=\$(wait_port \"$work/$1.log\" $!)" || fail "gateway $1 did not start"
}
write_conf b "$url"
start_gw a
start_gw b
echo "redis :$redis_port, gateways a:$port_a b:$port_b, backend :$be_port"

in_force() {
    grep -q "fleet's keys are in force" "$work/a.log" &&
        grep -q "fleet's keys are in force" "$work/b.log"
}
n=0
until in_force; do
    [ "$n" -lt 50 ] || fail "the fleet's keys were not applied on both within 10 s"
    sleep 0.2
    n=$((n + 1))
done
rcli HGET tern:tls:ticket-keys keys >"$work/seen-keys"

across() {
    for v in tls1_3 tls1_2; do
        expect_eq "$(resume_connect "$1-$v-a" "$port_a" "$v" - "$work/$1-$v.sess")" New \
            "$1: $v first handshake on gateway A"
        expect_eq "$(resume_connect "$1-$v-b" "$port_b" "$v" "$work/$1-$v.sess" -)" Reused \
            "$1: $v session from A resumed on gateway B"
    done
}
across start

# a reload of A naming another Redis: refused for ticket_keys (a restart), the rest applies
write_conf a "redis://127.0.0.1:$(free_port)/1"
kill -HUP "$gw_a"
n=0
until grep -q "a change of Redis URL needs a restart" "$work/a.log"; do
    [ "$n" -lt 50 ] || fail "no 'needs a restart' line within 10 s of SIGHUP"
    sleep 0.2
    n=$((n + 1))
done
grep -q "configuration refused" "$work/a.log" && fail "the reload was refused as a whole"
echo "ok: a change of Redis URL is logged as needing a restart"
across reloaded

# /metrics on A
aport=$(sed -n 's/.*msg="admin listening".* port=\([0-9][0-9]*\).*/\1/p' "$work/a.log" |
    head -n 1)
curl -fsS "http://127.0.0.1:$aport/metrics" >"$work/metrics.txt" || fail "GET /metrics"
for m in 'tern_ticket_keys_redis_up 1' 'tern_ticket_keys_rotations_total ' \
    'tern_ticket_keys_applied_total ' 'tern_ticket_keys_sync_age_seconds ' \
    'tern_ticket_key_age_seconds '; do
    grep -q "^$m" "$work/metrics.txt" || fail "/metrics: no '$m'"
done
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$work/metrics.txt" || fail "promtool check metrics"
fi
echo "ok: /metrics has the ticket-key families"

# Redis gone: sessions still resume across the two
stop_pid "$redis_pid"
sleep 1
across outage

for k in $(sort -u "$work/seen-keys"); do
    name=$(printf %s "$k" | cut -c1-32)
    key=$(printf %s "$k" | cut -c33-96)
    for l in "$work"/a.log "$work"/b.log; do
        if grep -qi -e "$name" -e "$key" "$l"; then
            fail "a ticket key from Redis appears in $(basename "$l")"
        fi
    done
done
[ -s "$work/seen-keys" ] || fail "no key seen in Redis"

for g in a b; do
    eval "p=\$gw_$g"
    kill -TERM "$p"
    n=0
    while kill -0 "$p" 2>/dev/null && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    wait "$p"
    rc=$?
    [ "$rc" = 0 ] || fail "gateway $g exited $rc after SIGTERM"
    ! grep -q 'Sanitizer\|runtime error:' "$work/$g.log" || fail "sanitizer report in $g.log"
done
echo "ok: both gateways stopped cleanly"
echo "PASS"

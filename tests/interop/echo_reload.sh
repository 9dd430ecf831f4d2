#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-echo's SIGHUP rebuilds its whole TLS configuration from its files, seen by
# `openssl s_client` and tern-bench:
#   - certificate A served; its files replaced by certificate B and its key, SIGHUP: a new
#     connection sees B's serial, while a connection opened before the reload still echoes;
#   - a broken key file, then a key that does not match the certificate: each reload is
#     refused with one warning line naming the option, the file and the reason; B is still
#     served and the process lives on;
#   - sessions made before a reload resume after it: TLS 1.3 and TLS 1.2 tickets (one ticket
#     key set across configurations), and TLS 1.2 session IDs with --session-cache (wolfSSL's
#     cache is process-wide);
#   - with --ticket-keys, a broken ticket key file refuses the whole reload: the new
#     certificate on disk is not taken either;
#   - tern-bench making full handshakes through two reloads (A -> B -> A): zero errors.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: echo_reload.sh TERN_ECHO TERN_BENCH CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 3 "TERN_ECHO TERN_BENCH CERTS_DIR" "$@"
echo_bin=$1
bench=$2
certs=$3
skip_unless_cmd openssl
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$echo_bin"
need_exe "$bench"
interop_workdir echo-reload

serial_of() {
    openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'
}
serial_a=$(serial_of "$certs/server-ec.pem")
serial_b=$(serial_of "$certs/server-rsa.pem")
[ -n "$serial_a" ] && [ "$serial_a" != "$serial_b" ] || fail "test certificates: serials '$serial_a' '$serial_b'"

# use A|B DIR: puts certificate A (EC) or B (RSA) and its key in DIR/cert.pem, DIR/key.pem.
use() {
    case $1 in
    A) src=server-ec ;;
    B) src=server-rsa ;;
    esac
    cp "$certs/$src.pem" "$2/cert.pem.new" && mv "$2/cert.pem.new" "$2/cert.pem"
    cp "$certs/$src.key" "$2/key.pem.new" && mv "$2/key.pem.new" "$2/key.pem"
    chmod 600 "$2/key.pem"
}

# start NAME ARGS...: tern-echo on a free port with NAME's files; sets $pid and $port. Not
# under timeout(1), which forwards only the first SIGHUP it gets: a watchdog bounds its life.
start() {
    name=$1
    shift
    "$echo_bin" --listen 127.0.0.1:0 --threads 2 --cert "$work/$name/cert.pem" \
        --key "$work/$name/key.pem" "$@" >/dev/null 2>"$work/$name.log" &
    pid=$!
    pids="$pids $pid"
    (
        trap 'exit 0' TERM
        n=0
        while [ "$n" -lt 1200 ] && kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "$pid" 2>/dev/null
    ) >/dev/null 2>&1 &
    pids="$pids $!"
    port=$(wait_port "$work/$name.log" "$pid") || fail "tern-echo ($name) did not start"
}

# served PORT: the serial of the certificate a new connection sees.
served() {
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -CAfile "$certs/ca.pem" \
        -servername localhost -verify_return_error </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//'
}

# count_log NAME TEXT: how many lines of NAME's log contain TEXT.
count_log() {
    grep -c "$2" "$work/$1.log" 2>/dev/null || true
}

# reload NAME PID TEXT: SIGHUP, then waits (5 s at most) for one more line with TEXT.
reload() {
    before=$(count_log "$1" "$3")
    kill -HUP "$2" || fail "cannot signal tern-echo ($1)"
    n=0
    while [ "$(count_log "$1" "$3")" -le "$before" ] && [ "$n" -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ "$(count_log "$1" "$3")" -gt "$before" ] || fail "$1: no '$3' logged after SIGHUP"
    kill -0 "$2" 2>/dev/null || fail "$1: tern-echo exited on SIGHUP"
}

# connect NAME PORT VERSION IN|- OUT|- [ARGS...]: one handshake and a line; prints New or
# Reused. stdin stays open 1 s: a TLS 1.3 ticket arrives after the handshake.
connect() {
    tag=$1 cport=$2 version=$3 sin=$4 sout=$5
    shift 5
    set -- -connect "127.0.0.1:$cport" "-$version" -CAfile "$certs/ca.pem" \
        -servername localhost -verify_return_error "$@"
    [ "$sin" = - ] || set -- "$@" -sess_in "$sin"
    [ "$sout" = - ] || set -- "$@" -sess_out "$sout"
    { printf 'line %s\n' "$tag"; sleep 1; } | timeout 10 openssl s_client "$@" \
        >"$work/$tag.out" 2>&1
    grep -q "^line $tag" "$work/$tag.out" || fail "$tag: the line did not come back"
    sed -n 's/^\(New\|Reused\), .*/\1/p' "$work/$tag.out" | head -n 1
}

expect() {
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
    echo "ok: $3 ($1)"
}

# ---- certificate A, then B, a connection open across the reload --------------------------------
mkdir "$work/m"
use A "$work/m"
start m
m_pid=$pid m_port=$port
echo "tern-echo (pid $m_pid) on 127.0.0.1:$m_port"
expect "$(served "$m_port")" "$serial_a" "before the reload: certificate A"

for v in tls1_3 tls1_2; do
    expect "$(connect "$v-first" "$m_port" "$v" - "$work/sess-$v")" New "$v session made on A"
done

# A connection opened before the reload: one line now, one after it.
{
    printf 'early one\n'
    n=0
    while [ ! -f "$work/go" ] && [ "$n" -lt 150 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    printf 'early two\n'
    sleep 1
} | timeout 30 openssl s_client -connect "127.0.0.1:$m_port" -CAfile "$certs/ca.pem" \
    -servername localhost -brief >"$work/early.out" 2>"$work/early.err" &
early_pid=$!
pids="$pids $early_pid"
n=0
while ! grep -q '^early one' "$work/early.out" 2>/dev/null && [ "$n" -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q '^early one' "$work/early.out" || fail "the early connection did not echo"

use B "$work/m"
reload m "$m_pid" 'SIGHUP: TLS configuration reloaded'
expect "$(served "$m_port")" "$serial_b" "after the reload: certificate B"
touch "$work/go"
wait "$early_pid"
grep -q '^early two' "$work/early.out" || fail "the connection opened before the reload stopped echoing"
echo "ok: a connection opened before the reload still echoes"

for v in tls1_3 tls1_2; do
    expect "$(connect "$v-after" "$m_port" "$v" "$work/sess-$v" -)" Reused \
        "$v session made before the reload resumes after it"
done

# ---- files that cannot be used: refused, logged, B stays --------------------------------------
printf 'not a key\n' >"$work/m/key.pem"
reload m "$m_pid" 'configuration refused'
line=$(grep 'configuration refused' "$work/m.log" | tail -n 1)
echo "$line" | grep -q 'level=warn' || fail "the refusal is not a warning: $line"
echo "$line" | grep -q 'option=--key' || fail "the refusal does not name --key: $line"
echo "$line" | grep -q "file=\"$work/m/key.pem\"" || fail "the refusal does not name the file: $line"
echo "$line" | grep -q 'reason="[^"]' || fail "the refusal gives no reason: $line"
expect "$(served "$m_port")" "$serial_b" "broken key file refused, B still served"

cp "$certs/server-ec.key" "$work/m/key.pem" # A's key with B's certificate
reload m "$m_pid" 'configuration refused'
grep 'configuration refused' "$work/m.log" | tail -n 1 | grep -q 'option=--key' ||
    fail "a key that does not match the certificate was not refused against --key"
expect "$(served "$m_port")" "$serial_b" "mismatched key refused, B still served"
refusals=$(count_log m 'configuration refused')
[ "$refusals" = 2 ] || fail "$refusals refusal lines for 2 refused reloads"

# ---- tern-bench through two reloads ---------------------------------------------------------------
use B "$work/m"
reload m "$m_pid" 'SIGHUP: TLS configuration reloaded'
timeout 60 "$bench" --target "127.0.0.1:$m_port" --ca "$certs/ca.pem" --sni localhost \
    --duration 5 --connections 4 >"$work/bench.out" 2>&1 &
bench_pid=$!
pids="$pids $bench_pid"
sleep 1.5
use A "$work/m"
reload m "$m_pid" 'SIGHUP: TLS configuration reloaded'
sleep 1
use B "$work/m"
reload m "$m_pid" 'SIGHUP: TLS configuration reloaded'
kill -0 "$bench_pid" 2>/dev/null || fail "tern-bench ended before the second reload"
wait "$bench_pid"
rc=$?
[ "$rc" = 0 ] || fail "tern-bench exited $rc: $(cat "$work/bench.out")"
grep -q '^full  *[1-9]' "$work/bench.out" || fail "tern-bench made no full handshake"
grep -q '^errors: 0$' "$work/bench.out" || fail "tern-bench saw errors: $(cat "$work/bench.out")"
echo "ok: tern-bench through two reloads: $(sed -n 's/^full  *\([0-9]*\) .*/\1/p' "$work/bench.out") handshakes, 0 errors"
expect "$(served "$m_port")" "$serial_b" "after the bench's reloads: certificate B"

# ---- --ticket-keys and --session-cache ----------------------------------------------------------
mkdir "$work/k"
use A "$work/k"
printf '# ticket keys\n%s\n' "$(openssl rand -hex 48)" >"$work/k/keys"
chmod 600 "$work/k/keys"
start k --ticket-keys "$work/k/keys" --session-cache
k_pid=$pid k_port=$port
expect "$(connect sid-first "$k_port" tls1_2 - "$work/sess-sid" -no_ticket)" New \
    "TLS 1.2 session ID made on A"
expect "$(connect k13-first "$k_port" tls1_3 - "$work/sess-k13")" New "TLS 1.3 session made on A"

# a broken ticket key file refuses the whole reload: B's files on disk are not taken
use B "$work/k"
cp "$work/k/keys" "$work/k/keys.good"
printf 'not-a-key\n' >>"$work/k/keys"
reload k "$k_pid" 'ticket key file refused'
grep 'ticket key file refused' "$work/k.log" | grep -q "option=--ticket-keys file=\"$work/k/keys\"" ||
    fail "the ticket key refusal does not name the option and the file"
grep 'ticket key file refused' "$work/k.log" | grep -q 'keys:3:' ||
    fail "the ticket key refusal does not name the line"
expect "$(served "$k_port")" "$serial_a" "broken ticket key file refused, A still served"

mv "$work/k/keys.good" "$work/k/keys"
reload k "$k_pid" 'SIGHUP: TLS configuration reloaded'
expect "$(served "$k_port")" "$serial_b" "ticket key file fixed: B served"
expect "$(connect sid-after "$k_port" tls1_2 "$work/sess-sid" - -no_ticket)" Reused \
    "TLS 1.2 session ID made before the reload resumes after it"
expect "$(connect k13-after "$k_port" tls1_3 "$work/sess-k13" -)" Reused \
    "TLS 1.3 ticket from the key file resumes after the reload"

for p in "$m_pid" "$k_pid"; do
    kill -0 "$p" 2>/dev/null || fail "tern-echo (pid $p) died"
done
echo "PASS"

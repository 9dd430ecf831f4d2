#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-gateway reloading its configuration file on SIGHUP while it serves, with
# `openssl s_client` and `tern-bench` as devices and `tern-echo --plain` as the backend:
#   - a certificate renewed under load: tern-bench makes full TLS 1.3 handshakes (with a
#     request each) for 8 s while the certificate and key files are replaced (mv) twice, each
#     followed by SIGHUP; no handshake fails, a connection opened before keeps streaming, and
#     a new client sees the newest certificate; PSK handshakes meanwhile (the identity
#     store is replaced by each reload too) fail none either;
#   - a broken configuration (a bad line, in a version that would also remove and add a
#     service) is refused with FILE:LINE in the log; nothing changes (the service it would
#     remove still serves, the one it would add does not listen);
#     tern_gateway_reloads_total{result="failed"} is 1;
#   - a service added by a reload accepts on its port as soon as the reload is logged; a
#     removed one refuses new connections at once, while a connection opened before keeps
#     working until the drain time (drain = 1000) ends, and is then closed;
#   - a service whose listen address and backend changed moves: the old port refuses, the
#     new one serves and forwards to the new backend, while a connection opened before
#     keeps its connection and its backend; a removed service added back serves again
#     (its series in /metrics once, the new instance's); in one reload two services swap
#     their ports and a new service takes a removed one's (each port's handshakes counted
#     under its new service); a service moved to a port that is taken keeps serving on its
#     old one (the reload counted failed);
#   - /metrics stays a valid exposition throughout (`promtool check metrics` when installed,
#     and no sample twice).
# Exit 0: pass; 77: skipped (no openssl or curl, no test certificates); anything else: fail.
#
# Usage: gateway_reload.sh TERN_GATEWAY TERN_ECHO TERN_BENCH CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 4 "TERN_GATEWAY TERN_ECHO TERN_BENCH CERTS_DIR" "$@"
gw_bin=$1
echo_bin=$2
bench=$3
certs=$4
skip_unless_cmd openssl
skip_unless_cmd curl
skip_unless_file "$certs/ca.key" "no test certificates in $certs"
need_exe "$gw_bin"
need_exe "$echo_bin"
need_exe "$bench"
interop_workdir gateway-reload

key1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
printf 'dev1:%s\n' "$key1" >"$work/ids.psk"
chmod 600 "$work/ids.psk"

# stop_gw PID LOG: SIGTERM, then the gateway must exit 0 within 10 s, its LOG free of
# sanitizer reports (a sanitized build reports there, and may not change the exit code).
stop_gw() {
    kill -TERM "$1" 2>/dev/null
    n=0
    while kill -0 "$1" 2>/dev/null && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -0 "$1" 2>/dev/null && fail "the gateway did not stop on SIGTERM within 10 s"
    wait "$1"
    rc=$?
    [ "$rc" -eq 0 ] || fail "the gateway exited $rc after SIGTERM"
    if grep -q 'Sanitizer\|runtime error:' "$2"; then
        fail "sanitizer report in $2"
    fi
}

# mkcert NAME SERIAL: a P-256 key and a certificate for localhost signed by the test CA.
mkcert() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key" \
        2>"$work/mkcert.err" &&
        openssl req -new -key "$work/$1.key" -subj "/CN=localhost $1" -out "$work/$1.csr" \
            2>>"$work/mkcert.err" &&
        openssl x509 -req -in "$work/$1.csr" -CA "$certs/ca.pem" -CAkey "$certs/ca.key" \
            -set_serial "$2" -days 30 -extfile "$work/san.ext" -out "$work/$1.pem" \
            2>>"$work/mkcert.err" ||
        { cat "$work/mkcert.err"; fail "cannot make certificate $1"; }
}
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
mkcert first 1001
mkcert second 1002
mkcert third 1003
cp "$work/first.pem" "$work/live.pem"
cp "$work/first.key" "$work/live.key"

# fingerprint FILE: SHA-256 fingerprint of the PEM certificate in FILE.
fingerprint() {
    openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/.*=//'
}

# ---- the backend, free ports, the gateway ------------------------------------------------------
: >"$work/be.log"
start_echo be 90 --plain --threads 1
be_port=$port
# a second backend, logging each connection: for alpha's new settings in (d)
: >"$work/be2.log"
start_echo be2 90 --plain --threads 1 --log-level debug
be2_port=$port
# free ports: a tern-echo's, once it stopped (nothing else binds them in between, normally)
for which in web alpha beta gamma moved; do
    : >"$work/fp.log"
    start_echo fp 10 --plain --threads 1
    stop_pid "$pid"
    eval "p_$which=\$port"
done
rm -f "$work/fp.log" "$work/fp.out"
echo "backend on $be_port; ports: web $p_web, alpha $p_alpha, beta $p_beta," \
    "gamma $p_gamma, moved $p_moved"

# write_conf [SERVICE...]: the configuration with these services: web (certificate and
# PSK), NAME (on port $p_NAME), NAME@PORT, or broken (a line with an unknown key); the
# backend of NAME is $be_NAME's port if set, else $be_port's.
write_conf() {
    {
        printf 'threads = 2\nadmin = 127.0.0.1:0\ndrain = 1000\nwatch = 0\n'
        printf '# services\n'
        for s in "$@"; do
            case $s in
            broken)
                printf 'bogus_key = 1\n'
                continue
                ;;
            web)
                printf '[web]\nlisten = 127.0.0.1:%s\ncert = %s\nkey = %s\n' "$p_web" \
                    "$work/live.pem" "$work/live.key"
                ;;
            *@*) printf '[%s]\nlisten = 127.0.0.1:%s\n' "${s%@*}" "${s#*@}" ;;
            *) eval "printf '[%s]\nlisten = 127.0.0.1:%s\n' $s \$p_$s" ;;
            esac
            eval "bp=\${be_${s%@*}:-\$be_port}"
            printf 'psk_file = %s\nbackend = 127.0.0.1:%s\n\n' "$work/ids.psk" "$bp"
        done
    } >"$work/gw.conf.new"
    mv "$work/gw.conf.new" "$work/gw.conf"
}
write_conf web alpha beta
timeout 10 "$gw_bin" -t -c "$work/gw.conf" >"$work/t.out" 2>&1 ||
    { cat "$work/t.out"; fail "-t refused the first configuration"; }

# Not under timeout(1), which forwards only the first SIGHUP: a watchdog bounds its life.
"$gw_bin" -c "$work/gw.conf" >/dev/null 2>"$work/gw.log" &
gw_pid=$!
pids="$pids $gw_pid"
(
    trap 'exit 0' TERM
    n=0
    while [ "$n" -lt 850 ] && kill -0 "$gw_pid" 2>/dev/null; do
        sleep 0.1
        n=$((n + 1))
    done
    kill -KILL "$gw_pid" 2>/dev/null
) >/dev/null 2>&1 &
pids="$pids $!"

# wait_log PATTERN [COUNT]: up to 10 s for the gateway log to have COUNT (default 1) lines
# matching PATTERN.
wait_log() {
    n=0
    while [ "$n" -lt 100 ]; do
        [ "$(grep -c -- "$1" "$work/gw.log")" -ge "${2:-1}" ] && return 0
        kill -0 "$gw_pid" 2>/dev/null || fail "the gateway exited"
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}
wait_log 'msg="started"' || fail "the gateway did not start"
admin_port=$(sed -n 's/.*msg="admin listening".* port=\([0-9][0-9]*\) .*/\1/p' "$work/gw.log")
[ -n "$admin_port" ] || fail "no admin port logged"
admin="http://127.0.0.1:$admin_port"
echo "tern-gateway (pid $gw_pid), admin on $admin_port"
reloads=0

# hup: SIGHUP, then waits for the reload's outcome (either).
hup() {
    reloads=$((reloads + 1))
    kill -HUP "$gw_pid" || fail "cannot signal the gateway"
    wait_log 'msg="configuration re[lf][ou][as][de]' "$reloads" ||
        fail "reload $reloads: no outcome logged"
}

# psk NAME PORT: one TLS 1.3 PSK connection (dev1) sending one line; true when it came back.
# The client's input stays open until then (5 s at most) or until the client ended.
psk() {
    line="gateway reload $1 $$"
    rm -f "$work/$1.in"
    mkfifo "$work/$1.in" || fail "mkfifo"
    timeout 10 openssl s_client -connect "127.0.0.1:$2" -brief -tls1_3 -psk "$key1" \
        -psk_identity dev1 <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
    sc_pid=$!
    (
        printf '%s\n' "$line"
        k=0
        while [ "$k" -lt 50 ] && kill -0 "$sc_pid" 2>/dev/null &&
            ! grep -q "$line" "$work/$1.out" 2>/dev/null; do
            sleep 0.1
            k=$((k + 1))
        done
    ) >"$work/$1.in"
    wait "$sc_pid"
    grep -q "$line" "$work/$1.out"
}

# serves NAME PORT: a device's line comes back through PORT.
serves() {
    psk "$1" "$2" || { cat "$work/$1.err"; fail "$1: no line back through port $2"; }
}

# refuses NAME PORT: nothing listens on PORT (curl: "couldn't connect", exit 7).
refuses() {
    curl -s --max-time 5 "telnet://127.0.0.1:$2" </dev/null >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 7 ] || fail "$1: port $2 did not refuse the connection (curl exit $rc)"
}

# held NAME PORT COUNT: a background device sending COUNT numbered lines, one every 0.1 s,
# then waiting 1 s; its pid in $held_pid.
held() {
    (
        i=0
        while [ "$i" -lt "$3" ]; do
            printf '%s line %d\n' "$1" "$i"
            i=$((i + 1))
            sleep 0.1
        done
        sleep 1
    ) | timeout 30 openssl s_client -connect "127.0.0.1:$2" -brief -tls1_3 -psk "$key1" \
        -psk_identity dev1 >"$work/$1.out" 2>"$work/$1.err" &
    held_pid=$!
    pids="$pids $held_pid"
}

# lines NAME: lines the held device NAME got back so far (0 before its output file exists).
lines() {
    cat "$work/$1.out" 2>/dev/null | grep -c "^$1 line "
}

# wait_lines NAME COUNT: up to 10 s for NAME to have COUNT lines back.
wait_lines() {
    n=0
    while [ "$(lines "$1")" -lt "$2" ] && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ "$(lines "$1")" -ge "$2" ] ||
        { cat "$work/$1.err"; fail "$1: $(lines "$1") lines back, expected $2 at least"; }
}

scrape() {
    curl -fsS --max-time 5 "$admin/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
}
value() {
    v=$(awk -v k="$1" '$1 == k { print $2 }' "$work/metrics.txt" | head -n 1)
    echo "${v:-none}"
}
# check_metrics: the exposition is valid: promtool (when installed), no sample twice.
check_metrics() {
    scrape
    dup=$(grep -v '^#' "$work/metrics.txt" | awk '{ print $1 }' | sort | uniq -d | head -n 3)
    [ -z "$dup" ] || fail "/metrics has samples twice: $dup"
    if command -v promtool >/dev/null 2>&1; then
        promtool check metrics <"$work/metrics.txt" >"$work/promtool.out" 2>&1 ||
            { cat "$work/promtool.out"; fail "promtool check metrics refused /metrics"; }
    fi
}
# expect SAMPLE WANT: SAMPLE is WANT in a scrape within 5 s.
expect() {
    n=0
    while :; do
        scrape
        [ "$(value "$1")" = "$2" ] && return 0
        n=$((n + 1))
        [ "$n" -lt 50 ] || fail "$1 is $(value "$1"), expected $2"
        sleep 0.1
    done
}

serves web0 "$p_web"
serves alpha0 "$p_alpha"
serves beta0 "$p_beta"
# served_cert PORT: the fingerprint of the certificate a new client gets on PORT.
served_cert() {
    echo | timeout 10 openssl s_client -connect "127.0.0.1:$1" 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256 | sed 's/.*=//'
}
[ "$(served_cert "$p_web")" = "$(fingerprint "$work/first.pem")" ] ||
    fail "web does not serve the first certificate"
echo "ok: three services up, web with the first certificate"

# ---- (a) the certificate renewed under load ----------------------------------------------------
held web_held "$p_web" 70
web_held_pid=$held_pid
timeout 40 "$bench" --target "127.0.0.1:$p_web" --ca "$certs/ca.pem" --sni localhost \
    --tls 1.3 --duration 8 --connections 4 --payload 32 --quiet >"$work/bench.out" 2>&1 &
bench_pid=$!
pids="$pids $bench_pid"
# and PSK handshakes meanwhile: the identity store is replaced by each reload too
timeout 40 "$bench" --target "127.0.0.1:$p_web" --mode psk --psk-identity dev1 \
    --psk-key "$key1" --tls 1.3 --duration 8 --connections 2 --payload 32 --quiet \
    >"$work/bench-psk.out" 2>&1 &
bench_psk_pid=$!
pids="$pids $bench_psk_pid"
sleep 2
cp "$work/second.pem" "$work/live.pem.new"
cp "$work/second.key" "$work/live.key.new"
mv "$work/live.key.new" "$work/live.key"
mv "$work/live.pem.new" "$work/live.pem"
hup
grep -q 'msg="configuration reloaded"' "$work/gw.log" || fail "reload 1 was refused"
sleep 2
cp "$work/third.pem" "$work/live.pem.new"
cp "$work/third.key" "$work/live.key.new"
mv "$work/live.key.new" "$work/live.key"
mv "$work/live.pem.new" "$work/live.pem"
hup
[ "$(grep -c 'msg="configuration reloaded"' "$work/gw.log")" -eq 2 ] ||
    fail "reload 2 was refused"
wait "$bench_pid"
rc=$?
cat "$work/bench.out"
[ "$rc" -eq 0 ] || fail "tern-bench exited $rc across the reloads"
grep -q '^errors: 0$' "$work/bench.out" || fail "tern-bench counted errors across the reloads"
grep -q '^full  *[1-9]' "$work/bench.out" || fail "tern-bench made no full handshakes"
wait "$bench_psk_pid"
rc=$?
cat "$work/bench-psk.out"
[ "$rc" -eq 0 ] && grep -q '^errors: 0$' "$work/bench-psk.out" ||
    fail "tern-bench --mode psk: exit $rc or errors across the reloads"
grep -q '^psk  *[1-9]' "$work/bench-psk.out" || fail "tern-bench made no PSK handshakes"
got=$(served_cert "$p_web")
[ "$got" = "$(fingerprint "$work/third.pem")" ] ||
    fail "after the renewals web serves $got, not the third certificate"
# the connection opened before both reloads kept streaming
wait "$web_held_pid"
[ "$(lines web_held)" -eq 70 ] ||
    fail "web_held: $(lines web_held) of 70 lines came back across the reloads"
expect 'tern_gateway_reloads_total{result="ok"}' 2
check_metrics
[ "$(value tern_gateway_last_reload_timestamp_seconds)" -gt 0 ] ||
    fail "tern_gateway_last_reload_timestamp_seconds is not set"
echo "ok: certificate renewed twice under load: 0 errors, the third certificate served," \
    "a live connection kept streaming"

# ---- (b) a broken configuration is refused; nothing changes ------------------------------------
# it would remove beta and add gamma: neither happens
write_conf web broken alpha gamma
bad_line=$(grep -n '^bogus_key' "$work/gw.conf" | cut -d: -f1)
hup
wait_log 'msg="configuration refused' || fail "the broken configuration was not refused"
grep 'configuration refused' "$work/gw.log" | grep -qF "gw.conf:$bad_line: unknown key" ||
    fail "the refusal does not name gw.conf:$bad_line"
serves alpha_after_broken "$p_alpha"
serves beta_after_broken "$p_beta"
refuses gamma_not_added "$p_gamma"
expect 'tern_gateway_reloads_total{result="failed"}' 1
expect 'tern_gateway_reloads_total{result="ok"}' 2
expect 'tern_gateway_services' 3
echo "ok: a broken configuration refused with gw.conf:$bad_line, the services unchanged"

# ---- (c) beta removed (a connection of its own drains), gamma added -----------------------------
held beta_held "$p_beta" 100
beta_held_pid=$held_pid
wait_lines beta_held 5
write_conf web alpha gamma
hup
wait_log 'msg="configuration reloaded".* added=1 removed=1' ||
    fail "the reload did not add one service and remove one"
at_reload=$(lines beta_held)
serves gamma_added "$p_gamma"
refuses beta_removed "$p_beta"
# the live connection still works during the drain
wait_lines beta_held $((at_reload + 3))
# ... and is closed when it ends (well before its 10 s of lines)
n=0
while kill -0 "$beta_held_pid" 2>/dev/null && [ "$n" -lt 80 ]; do
    sleep 0.1
    n=$((n + 1))
done
kill -0 "$beta_held_pid" 2>/dev/null && fail "beta_held: still connected after the drain"
wait "$beta_held_pid"
got=$(lines beta_held)
[ "$got" -lt 100 ] || fail "beta_held: all 100 lines came back: the drain did not close it"
wait_log 'removed service: connections closed" service=beta ' ||
    fail "the drain's close was not logged"
expect 'tern_gateway_connections_open{service="beta"}' 0
expect 'tern_gateway_services' 3
check_metrics
echo "ok: gamma added and serving, beta removed: refused at once, its connection served" \
    "$((got - at_reload)) more lines during the drain, then closed"

# ---- (d) alpha moves to another port and backend; beta comes back -------------------------------
# a connection of alpha's, opened before, keeps its port's connection and its backend
held alpha_held "$p_alpha" 40
alpha_held_pid=$held_pid
wait_lines alpha_held 5
be_alpha=$be2_port
write_conf web "alpha@$p_moved" gamma beta
hup
wait_log 'msg="configuration reloaded".* added=1 removed=0' ||
    fail "the reload did not add beta back"
at_reload=$(lines alpha_held)
refuses alpha_old_port "$p_alpha"
[ "$(grep -c 'msg="accepted"' "$work/be2.log")" -eq 0 ] || fail "be2 got a connection early"
serves alpha_moved "$p_moved"
[ "$(grep -c 'msg="accepted"' "$work/be2.log")" -eq 1 ] ||
    fail "alpha's new connection did not go to its new backend"
wait "$alpha_held_pid"
[ "$(lines alpha_held)" -eq 40 ] ||
    fail "alpha_held: $(lines alpha_held) of 40 lines back (at the reload: $at_reload)"
[ "$at_reload" -lt 40 ] || fail "alpha_held ended before the reload: nothing checked"
[ "$(grep -c 'msg="accepted"' "$work/be2.log")" -eq 1 ] ||
    fail "alpha_held's connection moved to the new backend"
serves beta_back "$p_beta"
serves gamma_stays "$p_gamma"
expect 'tern_gateway_services' 4
check_metrics
expect 'tern_gateway_reloads_total{result="ok"}' 4
# the series of beta are the new instance's (one handshake), the drained one's are gone
expect 'tern_gateway_handshakes_total{service="beta"}' 1
expect 'tern_gateway_handshakes_total{service="alpha"}' 4
echo "ok: alpha moved from $p_alpha to $p_moved and to a new backend (its live connection" \
    "kept both), beta back on $p_beta, /metrics valid"

# ---- (e) alpha and gamma swap ports, delta takes removed beta's, in one reload -------------------
write_conf web "alpha@$p_gamma" "gamma@$p_moved" "delta@$p_beta"
hup
wait_log 'msg="configuration reloaded".* added=1 removed=1 listen_failed=0' 2 ||
    fail "the swap reload failed (a listener not opened?)"
serves delta_on_beta_port "$p_beta"
expect 'tern_gateway_handshakes_total{service="delta"}' 1
serves swap_alpha "$p_gamma"
expect 'tern_gateway_handshakes_total{service="alpha"}' 5
expect 'tern_gateway_handshakes_total{service="gamma"}' 2
serves swap_gamma "$p_moved"
expect 'tern_gateway_handshakes_total{service="gamma"}' 3
expect 'tern_gateway_handshakes_total{service="alpha"}' 5
check_metrics
expect 'tern_gateway_services' 4
echo "ok: alpha and gamma swapped ports, delta took removed beta's, in one reload"

# ---- (f) alpha moved to a port that is taken: it keeps its old one -----------------------------
write_conf web "alpha@$be_port" "gamma@$p_moved" "delta@$p_beta"
hup
wait_log 'msg="configuration reloaded".* listen_failed=1' ||
    fail "a listener that cannot be opened was not counted"
grep -q "msg=\"listening again on its previous address\" .* service=alpha addr=127.0.0.1:$p_gamma" \
    "$work/gw.log" || fail "alpha did not go back to its previous address"
serves alpha_kept "$p_gamma"
expect 'tern_gateway_handshakes_total{service="alpha"}' 6
expect 'tern_gateway_reloads_total{result="failed"}' 2
check_metrics
echo "ok: a move to a taken port: counted as failed, the service still serves on its old port"

stop_gw "$gw_pid" "$work/gw.log"
grep 'msg="stopped"' "$work/gw.log" | grep -q ' reloads_ok=5 reloads_failed=2 ' ||
    fail "the stats line does not count 5 reloads and 2 failed"
echo "PASS"

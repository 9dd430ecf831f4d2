#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-gateway's configuration file (-c FILE), its check (-t) and its services, with
# `openssl s_client -psk` as the devices and `tern-echo` as the backends (plaintext, and TLS
# for backend_tls):
#   - -t on a good file: exit 0, "FILE: ok"; on a file with one problem each (an unknown key,
#     a service key before any section, a global key in a section, a duplicate key, a
#     duplicate section, threads = 0, a backend without a port, rate_per_identity = x,
#     tls_min = 1.1, neither psk_file nor cert, a PSK file with a bad line, a key that does
#     not match its certificate, a missing PSK file / certificate / CA file, a missing
#     configuration file, several problems at once): exit 2 and "FILE:LINE: ..." naming the
#     line (the PSK file's own FILE:LINE too);
#   - the command line over the file: an option replaces the only service's key (a backend)
#     and a global key (threads); with several services a service option is refused (exit 2);
#   - one gateway, several services on their own ports: each device reaches its own backend
#     and the other service's identity is refused; routes by identity (a prefix, a glob, the
#     default); failover past a closed port; round robin over two backends (both used); no
#     backend reachable (the device is closed, counted); TLS to the backend verified with the
#     test CA and a verify name (data flows), and with a wrong name (closed, counted);
#     without a verify name, the backend's IP address (in its certificate: data flows; not
#     in it: closed); a client certificate for a backend that wants one (and without it:
#     closed);
#   - /metrics (curl) passes `promtool check metrics` (when installed) and its per-service
#     families hold exactly what the workload did;
#   - --hibernate-after 0.2 (the command line over a file without the key): a device idle
#     for 2 s is hibernated (tern_hibernated_connections 1), then its next line wakes it and
#     still reaches the backend and comes back; a bad value is refused naming the option;
#   - --reuseport: a second gateway shares the first one's port (without the option it is
#     refused: the address is taken), devices get through either, and once it stopped the
#     first serves alone.
# Exit 0: pass; 77: skipped (no openssl or curl, no test certificates); anything else: fail.
#
# Usage: gateway_config.sh TERN_GATEWAY TERN_ECHO CERTS_DIR
set -u

. "$(dirname "$0")/lib.sh"
interop_args 3 "TERN_GATEWAY TERN_ECHO CERTS_DIR" "$@"
gw_bin=$1
echo_bin=$2
certs=$3
skip_unless_cmd openssl
skip_unless_cmd curl
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$gw_bin"
need_exe "$echo_bin"
interop_workdir gateway-config

key1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
key2=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
key3=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210
printf '# service one\ndev-one:%s\n' "$key1" >"$work/ids1.psk"
printf '# service two\ndev-two:%s\n' "$key2" >"$work/ids2.psk"
printf 'plant-a/dev:%s\nplant-b/x:%s\nplant-b/xy:%s\nother:%s\n' "$key3" "$key3" "$key3" \
    "$key3" >"$work/ids3.psk"
printf 'dev-one:%s\nno-colon-here\n' "$key1" >"$work/bad.psk"
chmod 600 "$work"/*.psk

# ---- -t: a good file, then one problem per file ------------------------------------------------

# A good service body (lines: listen, psk_file, backend).
good_service() {
    printf 'listen = 127.0.0.1:0\npsk_file = %s\nbackend = 127.0.0.1:1883\n' "$work/ids1.psk"
}

{
    printf '# a good file\nthreads = 2\nlog_level = info\ndrain = 1000\nadmin = 127.0.0.1:0\n'
    printf '\n[one]\n'
    good_service
    # '-' for '_' in a key, a ';' comment, a boolean as 'on'
    printf 'backend-balance = round-robin\nbackend = 127.0.0.1:1884\n; a comment\n'
    printf 'route = plant-a/* -> 127.0.0.1:1885\nrate_per_identity = 2/10\ntls_min = 1.3\n'
    printf 'close_removed = on\n'
    printf '\n[two]\nlisten = 127.0.0.1:0\npsk_file = %s\nbackend = 127.0.0.1:1883\n' \
        "$work/ids2.psk"
    printf 'cert = %s\nkey = %s\n' "$certs/server-ec.pem" "$certs/server-ec.key"
    printf 'backend_tls = yes\nbackend_ca = %s\nbackend_verify_name = localhost\n' \
        "$certs/ca.pem"
} >"$work/good.conf"
timeout 10 "$gw_bin" -t -c "$work/good.conf" >"$work/t-good.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || { cat "$work/t-good.out"; fail "-t on a good file: exit $rc, expected 0"; }
grep -q "^$work/good.conf: ok (2 services, 2 identities)" "$work/t-good.out" ||
    { cat "$work/t-good.out"; fail "-t on a good file: no 'FILE: ok' line"; }
echo "ok: -t on a good file: $(cat "$work/t-good.out")"

# check_t NAME WANT...: `-t -c $work/NAME.conf` exits 2 and prints each WANT (a fixed
# string, 'FILE:LINE: what' with FILE as $f).
check_t() {
    name=$1
    shift
    timeout 10 "$gw_bin" -t -c "$work/$name.conf" >"$work/t-$name.out" 2>&1
    rc=$?
    [ "$rc" -eq 2 ] || { cat "$work/t-$name.out"; fail "-t $name: exit $rc, expected 2"; }
    for want in "$@"; do
        grep -qF -- "$want" "$work/t-$name.out" ||
            { cat "$work/t-$name.out"; fail "-t $name: no line '$want'"; }
    done
    echo "ok: -t $name: $(head -n 1 "$work/t-$name.out")"
}

# conf NAME: the file $work/NAME.conf from stdin; $f is its path.
conf() {
    f="$work/$1.conf"
    cat >"$f"
}

conf unknown_key <<EOF
threads = 1
[one]
$(good_service)
colour = blue
EOF
check_t unknown_key "$f:6: unknown key 'colour'"

conf service_key_global <<EOF
# listen before any section
listen = 127.0.0.1:0
[one]
$(good_service)
EOF
check_t service_key_global "$f:2: 'listen' belongs in a [service] section"

conf global_key_service <<EOF
[one]
$(good_service)
drain = 100
EOF
check_t global_key_service "$f:5: 'drain' is a global key"

conf duplicate_key <<EOF
[one]
$(good_service)
psk_file = $work/ids2.psk
EOF
check_t duplicate_key "$f:5: duplicate key 'psk_file' (first at line 3)"

conf duplicate_section <<EOF
[one]
$(good_service)

[one]
listen = 127.0.0.1:0
EOF
check_t duplicate_section "$f:6: duplicate section [one] (first at line 1)"

conf threads_zero <<EOF
threads = 0
[one]
$(good_service)
EOF
check_t threads_zero "$f:1: threads: '0' is not a number in 1..256"

conf backend_no_port <<EOF
[one]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:1883
backend = 127.0.0.1
EOF
check_t backend_no_port "$f:5: backend: cannot parse '127.0.0.1'"

conf rate_bad <<EOF
[one]
$(good_service)
rate_per_identity = x
EOF
check_t rate_bad "$f:5: rate_per_identity: 'x'"

conf tls_min_bad <<EOF
[one]
$(good_service)
tls_min = 1.1
EOF
check_t tls_min_bad "$f:5: tls_min: '1.1' is not one of: 1.2, 1.3"

conf no_identities <<EOF
drain = 100

[one]
listen = 127.0.0.1:0
backend = 127.0.0.1:1883
EOF
check_t no_identities "$f:3: [one]: the service needs psk_file"

conf psk_bad_line <<EOF
[one]
listen = 127.0.0.1:0
psk_file = $work/bad.psk
backend = 127.0.0.1:1883
EOF
check_t psk_bad_line "$f:3: psk_file: $work/bad.psk:2:"

conf key_mismatch <<EOF
[one]
$(good_service)
cert = $certs/server-ec.pem
key = $certs/server-rsa.key
EOF
check_t key_mismatch "$f:6: key:" "does not match"

conf missing_files <<EOF
[one]
listen = 127.0.0.1:0
psk_file = $work/nope.psk
backend = 127.0.0.1:1883
[two]
$(good_service)
cert = $work/nope.pem
key = $certs/server-ec.key
[three]
$(good_service)
backend_tls = yes
backend_ca = $work/nope-ca.pem
EOF
check_t missing_files "$f:3: psk_file: $work/nope.psk:" "$f:9: cert: " \
    "$f:16: backend_ca: "

# several problems at once: each with its line
conf several <<EOF
threads = 1
colour = red
[one]
$(good_service)
colour = green
[two]
listen = 127.0.0.1:0
EOF
check_t several "$f:2: unknown key 'colour'" "$f:7: unknown key 'colour'"

# one address for two services
conf same_listen <<EOF
[one]
listen = 127.0.0.1:18883
psk_file = $work/ids1.psk
backend = 127.0.0.1:1883
[two]
psk_file = $work/ids2.psk
backend = 127.0.0.1:1883
listen = 127.0.0.2:18883, 127.0.0.1:18883
EOF
check_t same_listen "$f:8: listen: 127.0.0.1:18883 is also [one]'s"

conf empty_value <<EOF
[one]
$(good_service)
psk_hint =
EOF
check_t empty_value "$f:5: 'psk_hint' has no value"

timeout 10 "$gw_bin" -t -c "$work/nope.conf" >"$work/t-nofile.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] || fail "-t on a missing file: exit $rc, expected 2"
grep -qF "$work/nope.conf: cannot open" "$work/t-nofile.out" ||
    { cat "$work/t-nofile.out"; fail "-t on a missing file: no 'FILE: cannot open'"; }
echo "ok: -t on a missing file"

# the command line over the file, checked too: its own name instead of FILE:LINE
conf one <<EOF
[one]
$(good_service)
EOF
timeout 10 "$gw_bin" -t -c "$work/one.conf" --tls-min 1.1 >"$work/t-cli.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "--tls-min: '1.1' is not one of" "$work/t-cli.out" ||
    { cat "$work/t-cli.out"; fail "-t with --tls-min 1.1: exit $rc or no '--tls-min:' line"; }
timeout 10 "$gw_bin" -t -c "$work/good.conf" --backend 127.0.0.1:1 >"$work/t-cli2.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "--backend: the configuration has 2 services" "$work/t-cli2.out" ||
    { cat "$work/t-cli2.out"; fail "-t --backend with 2 services: exit $rc, or no refusal"; }
echo "ok: -t checks the command line over the file; a service option with 2 services refused"
timeout 10 "$gw_bin" -t --psk-file "$work/ids1.psk" --backend 127.0.0.1:1883 \
    >"$work/t-cli3.out" 2>&1 &&
    grep -q '^command line: ok (1 service, 1 identity)' "$work/t-cli3.out" ||
    { cat "$work/t-cli3.out"; fail "-t with the command line alone"; }
echo "ok: -t on the command line alone"

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

# ---- the backends ------------------------------------------------------------------------------

# echo_be NAME ARGS...: a tern-echo backend logging each connection; sets NAME_port.
echo_be() {
    n=$1
    shift
    : >"$work/$n.log"
    start_echo "$n" 90 --threads 1 --log-level debug "$@"
    eval "${n}_port=\$port"
}
echo_be beA --plain
echo_be beB --plain
echo_be beC --plain
echo_be beD --plain
echo_be beE --cert "$certs/server-ec.pem" --key "$certs/server-ec.key"
# F wants a client certificate from the test CA
echo_be beF --cert "$certs/server-ec.pem" --key "$certs/server-ec.key" \
    --client-ca "$certs/ca.pem" --verify-client
# G: the same certificate (DNS:localhost, IP:127.0.0.1) on 127.0.0.2
: >"$work/beG.log"
timeout 90 "$echo_bin" --listen 127.0.0.2:0 --threads 1 --cert "$certs/server-ec.pem" \
    --key "$certs/server-ec.key" >/dev/null 2>"$work/beG.log" &
pids="$pids $!"
n=0
beG_port=
while [ -z "$beG_port" ] && [ "$n" -lt 100 ]; do
    sleep 0.1
    beG_port=$(sed -n 's/.*msg="listening".*addr=127\.0\.0\.2:\([0-9][0-9]*\).*/\1/p' \
        "$work/beG.log")
    n=$((n + 1))
done
[ -n "$beG_port" ] || fail "tern-echo on 127.0.0.2 did not start"
# two closed ports: a tern-echo's, once it stopped
echo_be gone1 --plain
stop_pid "$pid"
echo_be gone2 --plain
stop_pid "$pid"
echo "backends: A $beA_port, B $beB_port, C $beC_port, D $beD_port, E (TLS) $beE_port;" \
    "closed: $gone1_port $gone2_port"

# accepted NAME: connections backend NAME has accepted so far.
accepted() {
    grep -c 'msg="accepted"' "$work/$1.log"
}

# ---- the command line over the file, running ---------------------------------------------------
# The file's backend is a closed port and threads = 2; --backend and --threads replace them.
conf over <<EOF
threads = 2
watch = 0
[one]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$gone1_port
EOF
timeout 10 "$gw_bin" -c "$work/good.conf" --backend "127.0.0.1:$beA_port" \
    >"$work/refused-run.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "--backend: the configuration has 2 services" \
    "$work/refused-run.out" ||
    { cat "$work/refused-run.out"; fail "--backend with 2 services: exit $rc, or no refusal"; }
timeout 60 "$gw_bin" -c "$work/over.conf" --backend "127.0.0.1:$beA_port" --threads 1 \
    >/dev/null 2>"$work/over.log" &
over_pid=$!
pids="$pids $over_pid"
over_port=$(wait_port "$work/over.log" "$over_pid") || fail "the override gateway did not start"
grep -q 'msg="started".* threads=1 ' "$work/over.log" || fail "--threads 1 did not replace threads"

# psk NAME PORT IDENTITY KEY: one TLS 1.3 PSK connection sending one line; true when the line
# came back. The client's input stays open until then (5 s at most), or until the client
# ended: $closed is 1 when it ended first (the gateway closed it, or refused it).
psk() {
    line="gateway config $1 $$"
    rm -f "$work/$1.in"
    mkfifo "$work/$1.in" || fail "mkfifo"
    timeout 10 openssl s_client -connect "127.0.0.1:$2" -brief -tls1_3 -psk "$4" \
        -psk_identity "$3" <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
    sc_pid=$!
    rm -f "$work/$1.closed"
    (
        printf '%s\n' "$line"
        k=0
        while [ "$k" -lt 50 ] && ! grep -q "$line" "$work/$1.out" 2>/dev/null; do
            kill -0 "$sc_pid" 2>/dev/null || { : >"$work/$1.closed"; break; }
            sleep 0.1
            k=$((k + 1))
        done
    ) >"$work/$1.in"
    wait "$sc_pid"
    closed=0
    [ -f "$work/$1.closed" ] && closed=1
    grep -q "$line" "$work/$1.out"
}

# refused NAME PORT IDENTITY KEY: the line does not come back; the gateway ended the
# connection (the client did not wait for its input to end).
refused() {
    if psk "$@"; then
        cat "$work/$1.err"
        fail "$1: the line came back"
    fi
    [ "$closed" = 1 ] ||
        { cat "$work/$1.err"; fail "$1: the gateway did not close the connection"; }
}

a0=$(accepted beA)
psk over "$over_port" dev-one "$key1" || fail "override: the line did not come back"
[ "$(accepted beA)" -eq $((a0 + 1)) ] || fail "override: backend A did not get the connection"
stop_gw "$over_pid" "$work/over.log"
echo "ok: --backend and --threads override the file's keys"

# ---- one gateway, twelve services --------------------------------------------------------------
conf run <<EOF
# one gateway, several services
threads = 2
admin = 127.0.0.1:0
drain = 500
watch = 0

[one]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beA_port

[two]
listen = 127.0.0.1:0
psk_file = $work/ids2.psk
backend = 127.0.0.1:$beB_port

[routed]
listen = 127.0.0.1:0
psk_file = $work/ids3.psk
backend = 127.0.0.1:$beD_port
route = plant-a/* -> 127.0.0.1:$beA_port
route = plant-b/? -> 127.0.0.1:$beB_port

[failover]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$gone1_port, 127.0.0.1:$beC_port

[rr]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beA_port
backend = 127.0.0.1:$beB_port
backend_balance = round-robin

[nobe]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$gone1_port, 127.0.0.1:$gone2_port

[btls]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beE_port
backend_tls = yes
backend_ca = $certs/ca.pem
backend_verify_name = localhost

[btls_bad]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beE_port
backend_tls = yes
backend_ca = $certs/ca.pem
backend_verify_name = wrong.example

# no backend_verify_name: the backend's host, an IP address in the certificate, or not
[btls_ip]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beE_port
backend_tls = yes
backend_ca = $certs/ca.pem

[btls_ip_bad]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.2:$beG_port
backend_tls = yes
backend_ca = $certs/ca.pem

[btls_client]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beF_port
backend_tls = yes
backend_ca = $certs/ca.pem
backend_verify_name = localhost
backend_cert = $certs/client.pem
backend_key = $certs/client.key

[btls_noclient]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beF_port
backend_tls = yes
backend_ca = $certs/ca.pem
backend_verify_name = localhost
EOF
timeout 10 "$gw_bin" -t -c "$f" >"$work/t-run.out" 2>&1 ||
    { cat "$work/t-run.out"; fail "-t on the running configuration failed"; }
timeout 80 "$gw_bin" -c "$f" >/dev/null 2>"$work/gw.log" &
gw_pid=$!
pids="$pids $gw_pid"
wait_port "$work/gw.log" "$gw_pid" >/dev/null || fail "tern-gateway did not start"
n=0
while ! grep -q 'msg="started"' "$work/gw.log" && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q 'msg="started".* services=12 ' "$work/gw.log" ||
    fail "the gateway did not start 12 services"
# svc_port NAME: the port service NAME listens on (from its "listening" line)
svc_port() {
    p=$(sed -n "s/.*msg=\"listening\" service=$1 addr=127\\.0\\.0\\.1:\\([0-9][0-9]*\\) .*/\\1/p" \
        "$work/gw.log" | head -n 1)
    [ -n "$p" ] || fail "no port logged for service $1"
    echo "$p"
}
for s in one two routed failover rr nobe btls btls_bad btls_ip btls_ip_bad btls_client \
    btls_noclient; do
    eval "p_$s=\$(svc_port $s)"
done
admin_port=$(sed -n 's/.*msg="admin listening".* port=\([0-9][0-9]*\) .*/\1/p' "$work/gw.log")
[ -n "$admin_port" ] || fail "no admin port logged"
echo "tern-gateway (pid $gw_pid): one $p_one, two $p_two, routed $p_routed," \
    "failover $p_failover, rr $p_rr, nobe $p_nobe, btls $p_btls, btls_bad $p_btls_bad," \
    "btls_ip $p_btls_ip, btls_ip_bad $p_btls_ip_bad, btls_client $p_btls_client," \
    "btls_noclient $p_btls_noclient," \
    "admin $admin_port"

# -- two services, two identity files, two backends
a0=$(accepted beA)
b0=$(accepted beB)
psk one1 "$p_one" dev-one "$key1" || fail "one: dev-one's line did not come back"
psk one2 "$p_one" dev-one "$key1" || fail "one: dev-one's second line did not come back"
psk two1 "$p_two" dev-two "$key2" || fail "two: dev-two's line did not come back"
refused one_other "$p_one" dev-two "$key2"
refused two_other "$p_two" dev-one "$key1"
[ "$(accepted beA)" -eq $((a0 + 2)) ] || fail "one: backend A did not get 2 connections"
[ "$(accepted beB)" -eq $((b0 + 1)) ] || fail "two: backend B did not get 1 connection"
echo "ok: two services, each device at its own backend, the other's identity refused"

# -- routes: plant-a/* (prefix) to A, plant-b/? (glob) to B, the rest to D
a0=$(accepted beA)
b0=$(accepted beB)
d0=$(accepted beD)
psk route_a "$p_routed" plant-a/dev "$key3" || fail "routed: plant-a/dev"
[ "$(accepted beA)" -eq $((a0 + 1)) ] || fail "routed: plant-a/dev did not go to A"
psk route_b "$p_routed" plant-b/x "$key3" || fail "routed: plant-b/x"
[ "$(accepted beB)" -eq $((b0 + 1)) ] || fail "routed: plant-b/x did not go to B"
psk route_bxy "$p_routed" plant-b/xy "$key3" || fail "routed: plant-b/xy"
psk route_other "$p_routed" other "$key3" || fail "routed: other"
[ "$(accepted beD)" -eq $((d0 + 2)) ] || fail "routed: plant-b/xy and other did not go to D"
[ "$(accepted beA)" -eq $((a0 + 1)) ] && [ "$(accepted beB)" -eq $((b0 + 1)) ] ||
    fail "routed: a default identity went to a routed backend"
echo "ok: routes (prefix to A, glob to B, the rest to the default D)"

# -- failover: the first backend is a closed port
c0=$(accepted beC)
psk failover "$p_failover" dev-one "$key1" || fail "failover: the line did not come back"
[ "$(accepted beC)" -eq $((c0 + 1)) ] || fail "failover: backend C did not get the connection"
echo "ok: failover past a closed port"

# -- round robin over A and B
a0=$(accepted beA)
b0=$(accepted beB)
for i in 1 2 3 4; do
    psk "rr$i" "$p_rr" dev-one "$key1" || fail "rr: connection $i: the line did not come back"
done
da=$(($(accepted beA) - a0))
db=$(($(accepted beB) - b0))
[ "$da" -ge 1 ] && [ "$db" -ge 1 ] && [ $((da + db)) -eq 4 ] ||
    fail "rr: 4 connections went $da to A and $db to B: both should be used"
echo "ok: round robin (4 connections: $da to A, $db to B)"

# -- no backend reachable: the device connection is closed
refused nobe "$p_nobe" dev-one "$key1"
grep -q 'Protocol version: TLSv1.3' "$work/nobe.err" || fail "nobe: the handshake did not finish"
grep -q 'no backend reachable: closing the device connection.* service=nobe tried=2' \
    "$work/gw.log" || fail "nobe: not logged"

# -- TLS to the backend: verified with the CA and the name; a wrong name closes the device
e0=$(accepted beE)
psk btls "$p_btls" dev-one "$key1" || fail "btls: the line did not come back over TLS"
[ "$(accepted beE)" -ge $((e0 + 1)) ] || fail "btls: backend E did not get the connection"
grep -q 'msg="encrypted"' "$work/beE.log" || fail "btls: no TLS handshake at backend E"
refused btls_bad "$p_btls_bad" dev-one "$key1"
echo "ok: TLS to the backend (verified), a wrong verify name closes the device"
psk btls_ip "$p_btls_ip" dev-one "$key1" ||
    fail "btls_ip: the backend's IP address (in its certificate) was not accepted as its name"
refused btls_ip_bad "$p_btls_ip_bad" dev-one "$key1"
grep -q 'backend unavailable" service=btls_ip_bad .*ip address mismatch' "$work/gw.log" ||
    fail "btls_ip_bad: not refused for its address"
echo "ok: without backend_verify_name the backend's address is verified"
# a backend that wants a client certificate: given (backend_cert/key), and not
psk btls_client "$p_btls_client" dev-one "$key1" ||
    fail "btls_client: the line did not come back through a client-certificate backend"
refused btls_noclient "$p_btls_noclient" dev-one "$key1"
echo "ok: a client certificate for the backend (and a backend refusing the gateway without it)"

# ---- /metrics ------------------------------------------------------------------------------------
admin="http://127.0.0.1:$admin_port"
scrape() {
    curl -fsS --max-time 5 "$admin/metrics" >"$work/metrics.txt" || fail "GET /metrics failed"
}
value() {
    v=$(awk -v k="$1" '$1 == k { print $2 }' "$work/metrics.txt" | head -n 1)
    echo "${v:-none}"
}
# expect SAMPLE WANT: scrapes until SAMPLE is WANT (closes are counted after the clients
# left), 5 s at most.
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
# every connection ended: nothing open anywhere
for s in one two routed failover rr nobe btls btls_bad btls_ip btls_ip_bad btls_client \
    btls_noclient; do
    expect "tern_gateway_connections_open{service=\"$s\"}" 0
done
if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$work/metrics.txt" >"$work/promtool.out" 2>&1 ||
        { cat "$work/promtool.out"; fail "promtool check metrics refused /metrics"; }
    echo "ok: promtool check metrics"
else
    echo "note: promtool not found (Debian: prometheus), its check is skipped"
fi
# expect_now SAMPLE WANT: SAMPLE is WANT in the last scrape.
expect_now() {
    [ "$(value "$1")" = "$2" ] || fail "$1 is $(value "$1"), expected $2"
}
expect_now 'tern_gateway_services' 12
for s in one:2 two:1 routed:4 failover:1 rr:4 nobe:1 btls:1 btls_bad:1 btls_ip:1 \
    btls_ip_bad:1 btls_client:1 btls_noclient:1; do
    expect_now "tern_gateway_handshakes_total{service=\"${s%%:*}\"}" "${s#*:}"
done
for s in one:3 two:2 routed:4 failover:1 rr:4 nobe:1 btls:1 btls_bad:1 btls_ip:1 \
    btls_ip_bad:1 btls_client:1 btls_noclient:1; do
    expect_now "tern_gateway_connections_accepted_total{service=\"${s%%:*}\"}" "${s#*:}"
    expect_now "tern_gateway_connections_closed_total{service=\"${s%%:*}\"}" "${s#*:}"
done
expect_now 'tern_gateway_refused_total{service="one",reason="unknown_identity"}' 1
expect_now 'tern_gateway_refused_total{service="two",reason="unknown_identity"}' 1
expect_now 'tern_gateway_handshake_failures_total{service="one"}' 1
expect_now 'tern_gateway_refused_total{service="routed",reason="unknown_identity"}' 0
# backends: connects, errors, failovers, no backend
for s in one:2:0:0:0 two:1:0:0:0 routed:4:0:0:0 failover:1:1:1:0 rr:4:0:0:0 nobe:0:2:1:1 \
    btls:1:0:0:0 btls_bad:0:1:0:1 btls_ip:1:0:0:0 btls_ip_bad:0:1:0:1 btls_client:1:0:0:0; do
    name=${s%%:*}
    rest=${s#*:}
    expect_now "tern_gateway_backend_connects_total{service=\"$name\"}" "${rest%%:*}"
    rest=${rest#*:}
    expect_now "tern_gateway_backend_errors_total{service=\"$name\"}" "${rest%%:*}"
    rest=${rest#*:}
    expect_now "tern_gateway_backend_failovers_total{service=\"$name\"}" "${rest%%:*}"
    expect_now "tern_gateway_no_backend_total{service=\"$name\"}" "${rest#*:}"
done
expect_now 'tern_gateway_backend_connect_duration_seconds_count{service="routed"}' 4
expect_now 'tern_gateway_identities{service="routed"}' 4
# service two forwarded one line (and its newline) up, and the same back
two_line="gateway config two1 $$"
expect_now 'tern_gateway_forwarded_bytes_total{service="two",direction="up"}' $((${#two_line} + 1))
expect_now 'tern_gateway_forwarded_bytes_total{service="two",direction="down"}' \
    $((${#two_line} + 1))
expect_now 'tern_gateway_reloads_total{result="ok"}' 0
expect_now 'tern_gateway_reloads_total{result="failed"}' 0
curl -fsS --max-time 5 "$admin/healthz" | grep -q ok || fail "/healthz is not ok"
curl -fsS --max-time 5 "$admin/stats.json" >"$work/stats.json" || fail "GET /stats.json failed"
grep -q '"name":"btls_bad","draining":false' "$work/stats.json" ||
    fail "/stats.json does not list the services"
echo "ok: /metrics counts every service's workload exactly"

stop_gw "$gw_pid" "$work/gw.log"
grep 'msg="stopped"' "$work/gw.log" | grep -q ' no_backend=3 ' ||
    fail "the stats line does not count the 3 connections without a backend"

# ---- --hibernate-after ----------------------------------------------------------------------------
timeout 10 "$gw_bin" -t -c "$work/over.conf" --hibernate-after 5s >"$work/hib-bad.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -qF -- "--hibernate-after: '5s' is not a duration" "$work/hib-bad.out" ||
    { cat "$work/hib-bad.out"; fail "--hibernate-after 5s: exit $rc, or no refusal naming it"; }
conf hib <<EOF
threads = 1
admin = 127.0.0.1:0
watch = 0
[one]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beA_port
EOF
timeout 60 "$gw_bin" -c "$work/hib.conf" --hibernate-after 0.2 >/dev/null 2>"$work/hib.log" &
hib_pid=$!
pids="$pids $hib_pid"
hib_port=$(wait_port "$work/hib.log" "$hib_pid") || fail "the hibernating gateway did not start"
grep 'msg="listening"' "$work/hib.log" | grep -q ' hibernate_after_ms=200' ||
    fail "hib: the service's line does not say hibernate_after_ms=200"
admin_port=$(sed -n 's/.*msg="admin listening".* port=\([0-9][0-9]*\) .*/\1/p' "$work/hib.log")
[ -n "$admin_port" ] || fail "hib: no admin port in the log"
admin="http://127.0.0.1:$admin_port"
# a line, 2 s idle (asleep after 0.2 s), a second line that wakes the device's connection
{ printf 'hib before %s\n' $$; sleep 2; printf 'hib after %s\n' $$; sleep 0.5; } |
    timeout 10 openssl s_client -connect "127.0.0.1:$hib_port" -brief -tls1_3 -psk "$key1" \
        -psk_identity dev-one >"$work/hib.out" 2>"$work/hib.err" &
hib_client=$!
pids="$pids $hib_client"
expect tern_hibernated_connections 1
expect_now tern_hibernations_total 1
expect_now tern_wakeups_total 0
wait "$hib_client"
grep -q "hib before $$" "$work/hib.out" && grep -q "hib after $$" "$work/hib.out" ||
    { cat "$work/hib.err"; fail "hib: the lines did not both come back through the gateway"; }
expect tern_hibernated_connections 0
expect 'tern_gateway_connections_open{service="one"}' 0
wakeups=$(value tern_wakeups_total)
[ "$wakeups" != none ] && [ "$wakeups" -ge 1 ] || fail "hib: tern_wakeups_total is $wakeups"
expect_now tern_wake_duration_seconds_count "$wakeups"
expect_now tern_hibernate_failures_total 0
expect_now tern_wake_failures_total 0
expect_now 'tern_gateway_handshakes_total{service="one"}' 1
stop_gw "$hib_pid" "$work/hib.log"
echo "ok: --hibernate-after 0.2: an idle device hibernated, woken by its next line ($wakeups wake-ups)"

# ---- --reuseport: two gateways on one port -------------------------------------------------------
conf rp <<EOF
watch = 0
[one]
listen = 127.0.0.1:0
psk_file = $work/ids1.psk
backend = 127.0.0.1:$beA_port
EOF
timeout 60 "$gw_bin" -c "$work/rp.conf" --reuseport --threads 2 >/dev/null 2>"$work/rp1.log" &
rp1_pid=$!
pids="$pids $rp1_pid"
rp_port=$(wait_port "$work/rp1.log" "$rp1_pid") || fail "the first --reuseport gateway did not start"
grep -q 'msg="started".* reuseport=on ' "$work/rp1.log" || fail "rp1: the start line lacks reuseport=on"
# without --reuseport the port is taken: refused, naming the address
timeout 10 "$gw_bin" -c "$work/rp.conf" --listen "127.0.0.1:$rp_port" --threads 1 \
    >"$work/rp-taken.out" 2>&1
rc=$?
[ "$rc" -eq 2 ] && grep -q "127.0.0.1:$rp_port" "$work/rp-taken.out" ||
    { cat "$work/rp-taken.out"; fail "a second gateway without --reuseport: exit $rc, expected 2"; }
timeout 60 "$gw_bin" -c "$work/rp.conf" --listen "127.0.0.1:$rp_port" --reuseport --threads 1 \
    >/dev/null 2>"$work/rp2.log" &
rp2_pid=$!
pids="$pids $rp2_pid"
wait_port "$work/rp2.log" "$rp2_pid" >/dev/null || fail "the second --reuseport gateway did not start"
for i in 1 2 3 4 5 6; do
    psk "rp$i" "$rp_port" dev-one "$key1" || fail "rp: device $i's line did not come back"
done
stop_gw "$rp2_pid" "$work/rp2.log"
psk rp-after "$rp_port" dev-one "$key1" || fail "rp: the first gateway alone did not serve"
stop_gw "$rp1_pid" "$work/rp1.log"
echo "ok: --reuseport: two gateways shared one port (6 devices through), one alone still served"
echo "PASS"

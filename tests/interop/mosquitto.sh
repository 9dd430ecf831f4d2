#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop with a real MQTT broker: `mosquitto` on a loopback plaintext port, tern-gateway in
# front of it, and the mosquitto clients talking TLS-PSK through the gateway:
#   - TLS 1.2 and TLS 1.3: mosquitto_pub publishes (retained) through the gateway and
#     mosquitto_sub, also through the gateway, receives the message;
#   - a wrong key and an unknown identity are refused (the clients fail, nothing published);
#   - the gateway counts them (SIGTERM stats line).
# Exit 0: pass; 77: skipped (mosquitto or its clients missing); anything else: fail.
#
# Usage: mosquitto.sh TERN_GATEWAY
set -u

if [ "$#" -ne 1 ]; then
    echo "usage: $0 TERN_GATEWAY" >&2
    exit 2
fi
gw_bin=$1
. "$(dirname "$0")/lib.sh"

broker=$(command -v mosquitto || { [ -x /usr/sbin/mosquitto ] && echo /usr/sbin/mosquitto; })
if [ -z "$broker" ] || ! command -v mosquitto_pub >/dev/null 2>&1 ||
    ! command -v mosquitto_sub >/dev/null 2>&1; then
    echo "SKIP: mosquitto and mosquitto-clients are needed (scripts/bootstrap installs them)"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-mqtt.XXXXXX")
gw_pid=
mq_pid=
cleanup() {
    stop_pid "$gw_pid"
    stop_pid "$mq_pid"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    echo "---- tern-gateway log"
    cat "$work/gw.log" 2>/dev/null
    echo "---- mosquitto log"
    cat "$work/mq.log" 2>/dev/null
    exit 1
}

# ---- the broker: mosquitto wants a fixed port; try a few in a high range until one binds
mq_port=
try=0
while [ "$try" -lt 10 ] && [ -z "$mq_port" ]; do
    p=$((20000 + ($$ * 7 + try * 1543) % 30000))
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$p" \
        >"$work/mq.conf"
    timeout 60 "$broker" -c "$work/mq.conf" >"$work/mq.log" 2>&1 &
    mq_pid=$!
    n=0
    while [ "$n" -lt 30 ] && kill -0 "$mq_pid" 2>/dev/null &&
        ! grep -q "Opening ipv4 listen socket on port $p" "$work/mq.log"; do
        sleep 0.1
        n=$((n + 1))
    done
    sleep 0.2 # a bind failure is logged after "Opening"
    if kill -0 "$mq_pid" 2>/dev/null && grep -q "on port $p" "$work/mq.log" &&
        ! grep -qi "error" "$work/mq.log"; then
        mq_port=$p
    else
        stop_pid "$mq_pid"
        mq_pid=
    fi
    try=$((try + 1))
done
[ -n "$mq_port" ] || fail "mosquitto did not start on any port tried"
echo "mosquitto (pid $mq_pid) on 127.0.0.1:$mq_port"

# ---- the gateway
key=00112233445566778899aabbccddeeff0011223344556677
printf 'sensor-1:%s\n' "$key" >"$work/ids.psk"
chmod 600 "$work/ids.psk"
timeout 60 "$gw_bin" --listen 127.0.0.1:0 --threads 1 --psk-file "$work/ids.psk" \
    --backend "127.0.0.1:$mq_port" --drain 500 >/dev/null 2>"$work/gw.log" &
gw_pid=$!
port=$(wait_port "$work/gw.log" "$gw_pid") || fail "tern-gateway did not log its port"
echo "tern-gateway (pid $gw_pid) on 127.0.0.1:$port"

# pub VERSION TOPIC MESSAGE KEY IDENTITY: a retained publish through the gateway
pub() {
    timeout 10 mosquitto_pub -h 127.0.0.1 -p "$port" --tls-version "$1" --psk "$4" \
        --psk-identity "$5" -t "$2" -m "$3" -r -q 1 2>>"$work/clients.err"
}
# sub VERSION TOPIC: the first message on TOPIC (the retained one), through the gateway
sub() {
    timeout 10 mosquitto_sub -h 127.0.0.1 -p "$port" --tls-version "$1" --psk "$key" \
        --psk-identity sensor-1 -t "$2" -C 1 -W 8 2>>"$work/clients.err"
}

for v in tlsv1.2 tlsv1.3; do
    msg="temperature 21.5 over $v $$"
    pub "$v" "tern/$v" "$msg" "$key" sensor-1 || fail "$v: mosquitto_pub failed"
    got=$(sub "$v" "tern/$v") || fail "$v: mosquitto_sub failed"
    [ "$got" = "$msg" ] || fail "$v: received '$got', expected '$msg'"
    echo "ok: $v publish and subscribe through the gateway"
done

wrong=ffeeddccbbaa99887766554433221100ffeeddccbbaa9988
if pub tlsv1.3 tern/wrong "must not arrive" "$wrong" sensor-1; then
    fail "a wrong key was accepted"
fi
if pub tlsv1.2 tern/unknown "must not arrive" "$key" sensor-9; then
    fail "an unknown identity was accepted"
fi
got=$(timeout 5 mosquitto_sub -h 127.0.0.1 -p "$port" --psk "$key" --psk-identity sensor-1 \
    -t tern/wrong -t tern/unknown -C 1 -W 2 2>/dev/null)
[ -z "$got" ] || fail "a refused client published '$got'"
echo "ok: wrong key and unknown identity refused"

stop_pid "$gw_pid"
gw_pid=
stats=$(grep 'msg="stopped"' "$work/gw.log")
echo "$stats" | grep -q ' bad_key=1' || fail "stats: the wrong key was not counted"
echo "$stats" | grep -q ' unknown_identity=1' || fail "stats: the unknown identity not counted"
echo "PASS"

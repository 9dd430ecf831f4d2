#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-gateway behind a front that speaks the PROXY protocol (--proxy-protocol-in),
# and its handshake rate limits (--rate-per-identity, --rate-per-source). The front is a
# small Python relay: it takes one connection from `openssl s_client`, connects to the
# gateway, sends a PROXY header naming a made-up device address, then copies bytes both
# ways. The backend is `tern-echo --plain`, and the gateway sends it a PROXY v2 header
# (--proxy-protocol v2), which the echo sends back to the device: so the device sees what
# source address the backend was told.
#   - v2 in: the backend's header carries the front's source and destination (not the
#     relay's 127.0.0.1), with the ClientHello in the header's segment or after it;
#   - a connection without a header (a device straight at the gateway) is refused at its
#     first byte and logged ("proxy header refused"); half a header is refused at the
#     handshake timeout; a bare connect-and-close (a health check) is not an error; LOCAL
#     keeps the connection's own address;
#   - v1 in: the same through a text header; a malformed one is refused;
#   - --rate-per-identity 0.01/3: three quick handshakes of one identity get through, the
#     fourth is refused with the alert an unknown identity gets, another identity is not
#     affected; --rate-per-source 0.01/4: keyed by the PROXY source, the fifth connection of
#     one source is refused before TLS, another source is not affected; both counted
#     (SIGUSR1's stats line).
# Exit 0: pass; 77: skipped (no openssl or python3); anything else: fail.
#
# Usage: gateway_proxy_in.sh TERN_GATEWAY TERN_ECHO
set -u

. "$(dirname "$0")/lib.sh"
interop_args 2 "TERN_GATEWAY TERN_ECHO" "$@"
gw_bin=$1
echo_bin=$2
skip_unless_cmd openssl
skip_unless_cmd python3
need_exe "$gw_bin"
need_exe "$echo_bin"
interop_workdir gateway-proxy-in

key1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
key2=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ids="$work/ids.psk"
printf 'dev1:%s\ndev2:%s\ndev3:%s\ndev4:%s\n' "$key1" "$key2" "$key1" "$key2" >"$ids"
chmod 600 "$ids"

# The front: one connection, a header (hex), then bytes both ways; at most 15 s. "joined":
# the header and the device's first bytes (its ClientHello) go out in one write, so that the
# gateway finds TLS bytes behind the header in the same read.
cat >"$work/front.py" <<'EOF'
import os, select, socket, sys
port_file, gw_port, header = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
joined = len(sys.argv) > 4 and sys.argv[4] == "joined"
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(1)
ls.settimeout(15)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(port_file + ".tmp", port_file)
dev, _ = ls.accept()
gw = socket.create_connection(("127.0.0.1", gw_port), timeout=15)
if joined:
    dev.settimeout(15)
    header += dev.recv(65536)
gw.sendall(header)
socks = [dev, gw]
for _ in range(1000):  # bounded: every turn moves bytes, or 5 s pass and it ends
    r, _, _ = select.select(socks, [], [], 5)
    if not r:
        break
    done = False
    for s in r:
        other = gw if s is dev else dev
        try:
            data = s.recv(65536)
        except OSError:
            data = b""
        if not data:
            done = True
            break
        try:
            other.sendall(data)
        except OSError:
            done = True
            break
    if done:
        break
dev.close()
gw.close()
EOF

# start_gateway NAME ARGS...: a gateway on 127.0.0.1:0 in front of the echo; sets $pid, $port.
# Not under timeout(1), which SIGUSR1 would end: a watchdog bounds its life to 90 s instead.
start_gateway() {
    name=$1
    shift
    "$gw_bin" --listen 127.0.0.1:0 --threads 2 --psk-file "$ids" \
        --backend "127.0.0.1:$be_port" --proxy-protocol v2 --watch 0 --drain 0 "$@" \
        >/dev/null 2>"$work/$name.log" &
    pid=$!
    (
        trap 'exit 0' TERM
        n=0
        while [ "$n" -lt 900 ] && kill -0 "$pid" 2>/dev/null; do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "$pid" 2>/dev/null
    ) >/dev/null 2>&1 &
    pids="$pids $! $pid"
    port=$(wait_port "$work/$name.log" "$pid") || fail "$name did not log its port"
}

# client NAME PORT ARGS...: s_client to PORT, one line, 1 s for the answer.
client() {
    name=$1
    cport=$2
    shift 2
    { printf 'hello %s %s\n' "$name" "$$"; sleep 1; } |
        timeout 10 openssl s_client -connect "127.0.0.1:$cport" -brief -tls1_3 "$@" \
            >"$work/$name.out" 2>"$work/$name.err"
}

# via_front NAME GW_PORT HEADER_HEX ARGS...: client through the front ($joined: "joined" or
# empty, see front.py).
joined=
via_front() {
    name=$1
    gport=$2
    hdr=$3
    shift 3
    rm -f "$work/$name.port"
    timeout 20 python3 "$work/front.py" "$work/$name.port" "$gport" "$hdr" $joined \
        2>"$work/$name.front" &
    fpid=$!
    n=0
    while [ ! -s "$work/$name.port" ] && [ "$n" -lt 100 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ -s "$work/$name.port" ] || fail "$name: the front did not start"
    client "$name" "$(cat "$work/$name.port")" "$@"
    wait "$fpid" 2>/dev/null
}

echoed() {
    grep -q "hello $1 $$" "$work/$1.out"
}

# hex of what came back (the backend's PROXY v2 header, then the line)
hex_of() {
    od -An -tx1 "$work/$1.out" | tr -d ' \n'
}

# v2_header SRC_HEX DST_HEX SPORT_HEX DPORT_HEX: a PROXY v2 TCP4 header (hex), with a TLV.
v2_header() {
    printf '0d0a0d0a000d0a515549540a2111%04x%s%s%s%s' 17 "$1" "$2" "$3" "$4"
    printf '040002abcd' # a NOOP TLV: skipped
}

v1_header() {
    printf '%s\r\n' "$1" | od -An -tx1 | tr -d ' \n'
}

alert_of() {
    sed -n 's/.*alert number \([0-9]*\).*/\1/p' "$work/$1.err" | head -n 1
}

start_echo backend 80 --plain --threads 1
be_port=$port

# ---- PROXY v2 in ----------------------------------------------------------------------------
start_gateway gw_v2 --proxy-protocol-in v2 --handshake-timeout 2
gw_v2=$port
# 192.0.2.77:4242 -> 198.51.100.1:8883; the ClientHello in the header's segment, then apart
joined=joined
via_front v2ok "$gw_v2" "$(v2_header c000024d c6336401 1092 22b3)" -psk "$key1" \
    -psk_identity dev1
joined=
echoed v2ok || fail "v2: the line did not come back (header and ClientHello in one write)"
via_front v2apart "$gw_v2" "$(v2_header c000024d c6336401 1092 22b3)" -psk "$key1" \
    -psk_identity dev1
echoed v2apart || fail "v2: the line did not come back"
# the backend's header: signature, PROXY TCP4, then source, destination, ports as the front said
hex_of v2ok | grep -q '0d0a0d0a000d0a515549540a2111....c000024dc6336401109222b3' ||
    fail "v2: the backend was not told the front's addresses"
echo "ok: v2 header in, the backend told 192.0.2.77:4242"

client v2none "$gw_v2" -psk "$key1" -psk_identity dev1
echoed v2none && fail "v2: a connection without a header got through"
n=0
while ! grep -q 'proxy header refused' "$work/gw_v2.log" && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q 'proxy header refused.*reason="v2: no signature"' "$work/gw_v2.log" ||
    fail "v2: the missing header was not logged with its reason"
echo "ok: v2: no header, refused and logged"

# A front that connects and closes (a TCP health check): closed quietly, not an error. One
# that sends half a header and stops: closed at the handshake timeout (2 s), logged.
python3 - "$gw_v2" <<'EOF2' || fail "v2: the stalled header was not ended within 10 s"
import socket, sys, time
port = int(sys.argv[1])
socket.create_connection(("127.0.0.1", port), timeout=5).close()
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(bytes.fromhex("0d0a0d0a000d0a51"))
start = time.monotonic()
try:
    gone = s.recv(1) == b""
except ConnectionResetError:
    gone = True
sys.exit(0 if gone and time.monotonic() - start < 10 else 1)
EOF2
grep -q 'proxy header refused.*reason="incomplete at the timeout"' "$work/gw_v2.log" ||
    fail "v2: the stalled header was not logged"
[ "$(grep -c 'proxy header refused' "$work/gw_v2.log")" -eq 2 ] ||
    fail "v2: a connection that closed at once was logged as an error"
echo "ok: v2: a stalled header ends at the handshake timeout; a bare connect and close is quiet"

# LOCAL (a health check through the front): the real address stands, TLS goes on
via_front v2local "$gw_v2" 0d0a0d0a000d0a515549540a20000000 -psk "$key1" -psk_identity dev1
echoed v2local || fail "v2 LOCAL: the line did not come back"
hex_of v2local | grep -q '0d0a0d0a000d0a515549540a2111....7f000001' ||
    fail "v2 LOCAL: the backend was not told the real (loopback) address"
echo "ok: v2 LOCAL keeps the connection's own address"

# ---- PROXY v1 in, with rate limits ----------------------------------------------------------
start_gateway gw_v1 --proxy-protocol-in v1 --rate-per-identity 0.01/3 --rate-per-source 0.01/4
gw_v1=$port
joined=joined
via_front v1ok "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.10 198.51.100.1 4242 8883')" \
    -psk "$key1" -psk_identity dev1
joined=
echoed v1ok || fail "v1: the line did not come back"
hex_of v1ok | grep -q '0d0a0d0a000d0a515549540a2111....c000020ac6336401109222b3' ||
    fail "v1: the backend was not told the front's addresses"
echo "ok: v1 header in, the backend told 192.0.2.10:4242"

via_front v1bad "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.10 198.51.100.1 04242 8883')" \
    -psk "$key1" -psk_identity dev1
echoed v1bad && fail "v1: a malformed header got through"
echo "ok: v1: a port with a heading zero refused"

# identity: dev1 had one (v1ok); two more from other sources, then the fourth is refused
via_front id2 "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.11 198.51.100.1 1 8883')" \
    -psk "$key1" -psk_identity dev1
via_front id3 "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.12 198.51.100.1 1 8883')" \
    -psk "$key1" -psk_identity dev1
echoed id2 && echoed id3 || fail "identity rate: the burst was not served"
via_front id4 "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.13 198.51.100.1 1 8883')" \
    -psk "$key1" -psk_identity dev1
echoed id4 && fail "identity rate: the fourth handshake in a burst of 3 got through"
via_front unknown "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.14 198.51.100.1 1 8883')" \
    -psk "$key1" -psk_identity nobody
[ -n "$(alert_of id4)" ] && [ "$(alert_of id4)" = "$(alert_of unknown)" ] ||
    fail "identity rate: alert $(alert_of id4), an unknown identity gets $(alert_of unknown)"
grep -q 'psk identity refused.*peer=192.0.2.13:1 identity="dev1" reason=rate-limit' \
    "$work/gw_v1.log" || fail "identity rate: the refusal was not logged with the peer"
via_front id_other "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.15 198.51.100.1 1 8883')" \
    -psk "$key2" -psk_identity dev2
echoed id_other || fail "identity rate: another identity was refused"
echo "ok: per-identity rate: 3 served, the 4th refused like an unknown identity, dev2 served"

# source: 192.0.2.20 four times (dev3, dev4 in turn), the fifth refused; 192.0.2.21 served
for i in 1 2 3 4; do
    if [ $((i % 2)) -eq 1 ]; then id=dev3 k=$key1; else id=dev4 k=$key2; fi
    via_front "src$i" "$gw_v1" "$(v1_header "PROXY TCP4 192.0.2.20 198.51.100.1 $i 8883")" \
        -psk "$k" -psk_identity "$id"
    echoed "src$i" || fail "source rate: connection $i of a burst of 4 refused"
done
via_front src5 "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.20 198.51.100.1 5 8883')" \
    -psk "$key2" -psk_identity dev4
echoed src5 && fail "source rate: the fifth connection in a burst of 4 got through"
grep -q 'connection refused.*peer=192.0.2.20:5 reason=rate-limit' "$work/gw_v1.log" ||
    fail "source rate: the refusal was not logged with the front's source"
via_front src_other "$gw_v1" "$(v1_header 'PROXY TCP4 192.0.2.21 198.51.100.1 1 8883')" \
    -psk "$key2" -psk_identity dev2
echoed src_other || fail "source rate: another source was refused"
echo "ok: per-source rate keyed by the PROXY source: 4 served, the 5th refused, another served"

# the counters
kill -USR1 "$pid"
n=0
while ! grep -q 'msg="stats"' "$work/gw_v1.log" && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q 'msg="stats".*rate_limited_identity=1 rate_limited_source=1' "$work/gw_v1.log" ||
    fail "the refusals were not counted (rate_limited_identity=1 rate_limited_source=1)"
echo "ok: counted"
exit 0

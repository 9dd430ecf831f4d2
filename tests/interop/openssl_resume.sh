#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: session resumption of tern-echo seen by `openssl s_client -sess_out / -sess_in`:
#   - TLS 1.3 and TLS 1.2: a saved session resumes ("Reused"), twice (any reactor);
#   - TLS 1.2 by session ID (-no_ticket) with --session-cache, and not without it;
#   - two tern-echo instances sharing a --ticket-keys file resume each other's sessions;
#   - a third instance with its own keys does not resume them: a full handshake ("New")
#     that succeeds (the server's fallback, seen by a client that can fall back);
#   - a reload (SIGHUP) with a new first key: sessions sealed with the old key still resume
#     and new ones are sealed with the new key (they resume on a server reloaded the same).
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: openssl_resume.sh TERN_ECHO CERTS_DIR
set -u

if [ "$#" -ne 2 ]; then
    echo "usage: $0 TERN_ECHO CERTS_DIR" >&2
    exit 2
fi
echo_bin=$1
certs=$2
. "$(dirname "$0")/lib.sh"

if ! command -v openssl >/dev/null 2>&1; then
    echo "SKIP: openssl not found"
    exit 77
fi
if [ ! -f "$certs/ca.pem" ]; then
    echo "SKIP: no test certificates in $certs"
    exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-resume.XXXXXX")
pa=
pb=
pc=
pd=
cleanup() {
    stop_pid "$pa"
    stop_pid "$pb"
    stop_pid "$pc"
    stop_pid "$pd"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
    echo "FAIL: $*"
    for n in a b c d; do
        echo "---- tern-echo $n log"
        grep -v 'level=debug' "$work/$n.log" 2>/dev/null
    done
    exit 1
}

old=$(openssl rand -hex 48)
new=$(openssl rand -hex 48)
printf '# shared ticket keys\n%s\n' "$old" >"$work/keys"
chmod 600 "$work/keys"

# start NAME ARGS...: a tern-echo on a free port (2 reactors); sets port_NAME and p<NAME>.
start() {
    name=$1
    shift
    # Not under timeout(1): the test sends SIGHUP; cleanup stops it by PID.
    "$echo_bin" --listen 127.0.0.1:0 --threads 2 --cert "$certs/server-ec.pem" \
        --key "$certs/server-ec.key" "$@" >/dev/null 2>"$work/$name.log" &
    eval "p$name=$!"
    eval "port_$name=\$(wait_port \"$work/$name.log\" \$p$name)" ||
        fail "tern-echo $name did not start"
}
start a --ticket-keys "$work/keys"
start b --ticket-keys "$work/keys"
start c
start d --session-cache

# connect NAME PORT VERSION IN|- OUT|-: one handshake and a line; prints New/Reused.
connect() {
    tag=$1 port=$2 version=$3 sin=$4 sout=$5
    set -- -connect "127.0.0.1:$port" "-$version" -CAfile "$certs/ca.pem" \
        -servername localhost -verify_return_error
    [ "$sin" = - ] || set -- "$@" -sess_in "$sin"
    [ "$sout" = - ] || set -- "$@" -sess_out "$sout"
    [ -z "${no_ticket:-}" ] || set -- "$@" -no_ticket
    # stdin stays open 1 s: a TLS 1.3 ticket arrives after the handshake
    { printf 'resume %s\n' "$tag"; sleep 1; } | timeout 10 openssl s_client "$@" \
        >"$work/$tag.out" 2>&1
    grep -q "resume $tag" "$work/$tag.out" || {
        cat "$work/$tag.out"
        fail "$tag: the line did not come back"
    }
    sed -n 's/^\(New\|Reused\), .*/\1/p' "$work/$tag.out" | head -n 1
}

expect() {
    got=$1 want=$2 what=$3
    [ "$got" = "$want" ] || fail "$what: $got, expected $want"
    echo "ok: $what: $got"
}

for v in tls1_3 tls1_2; do
    expect "$(connect "$v-first" "$port_a" "$v" - "$work/s-$v")" New "$v first handshake"
    expect "$(connect "$v-again1" "$port_a" "$v" "$work/s-$v" -)" Reused "$v resumed"
    expect "$(connect "$v-again2" "$port_a" "$v" "$work/s-$v" -)" Reused "$v resumed again"
    expect "$(connect "$v-other" "$port_b" "$v" "$work/s-$v" -)" Reused \
        "$v resumed on the server sharing the key file"
    expect "$(connect "$v-foreign" "$port_c" "$v" "$work/s-$v" -)" New \
        "$v on a server with other keys: full handshake"
done

# a new first key on both servers; the old key stays second
printf '%s\n%s\n' "$new" "$old" >"$work/keys"
kill -HUP "$pa" "$pb"
n=0
while [ "$(grep -c 'ticket keys reloaded' "$work/a.log" "$work/b.log" | awk -F: '{s+=$2} END {print s}')" -lt 2 ] &&
    [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep -q 'ticket keys reloaded" count=2' "$work/a.log" || fail "a: no reload logged"
for v in tls1_3 tls1_2; do
    expect "$(connect "$v-after" "$port_b" "$v" "$work/s-$v" -)" Reused \
        "$v old-key session after the reload"
    expect "$(connect "$v-fresh" "$port_a" "$v" - "$work/n-$v")" New "$v new session"
    expect "$(connect "$v-fresh-b" "$port_b" "$v" "$work/n-$v" -)" Reused \
        "$v new-key session on the other server"
done

# a broken file is refused with its line; the keys stay
printf '%s\nnot-a-key\n' "$new" >"$work/keys"
kill -HUP "$pa"
n=0
while ! grep -q 'ticket key file refused' "$work/a.log" && [ "$n" -lt 50 ]; do
    sleep 0.1
    n=$((n + 1))
done
grep 'ticket key file refused' "$work/a.log" | grep -q 'keys:2:' ||
    fail "a broken key file was not refused with its line"
expect "$(connect "tls1_3-kept" "$port_a" tls1_3 "$work/n-tls1_3" -)" Reused \
    "keys in force after a refused file"
# the server with tern's own (rotating) keys has a rotation thread: a SIGHUP must reach the
# signal thread, not kill the process
kill -HUP "$pc"
sleep 0.5
kill -0 "$pc" 2>/dev/null || fail "tern-echo with rotating ticket keys died on SIGHUP"
expect "$(connect "tls1_3-c-alive" "$port_c" tls1_3 - -)" New "SIGHUP with rotating keys"
# TLS 1.2 by session ID (a client that asks for no ticket): only the server with
# --session-cache resumes, on either reactor
no_ticket=1
expect "$(connect "sid-first" "$port_d" tls1_2 - "$work/sid-d")" New "session ID first"
expect "$(connect "sid-again1" "$port_d" tls1_2 "$work/sid-d" -)" Reused "session ID resumed"
expect "$(connect "sid-again2" "$port_d" tls1_2 "$work/sid-d" -)" Reused "session ID resumed again"
expect "$(connect "sid-nocache" "$port_c" tls1_2 - -)" New "no cache: a full handshake"
grep -q "Session-ID: *$" "$work/sid-nocache.out" ||
    fail "a server without --session-cache gave a session ID (nothing to resume it by)"
grep -q "Session-ID: *[0-9A-F]\{64\}" "$work/sid-first.out" ||
    fail "the server with --session-cache gave no session ID"
echo "ok: no cache: no session ID given"
no_ticket=
echo "PASS"

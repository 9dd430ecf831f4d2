#!/bin/sh
# SPDX-License-Identifier: MIT
# tern-echo -c FILE (apps/common/conffile.c): a file of 'key = value' lines, each key a long
# option, read before the command line (which overrides it); every problem named FILE:LINE:
# an unknown key, a section, a flag given a value other than yes/no, a duplicate key, a bad
# value found by the option parser, a file named by an option that cannot be used; a missing
# file. Usage: echo_config.sh TERN_ECHO
set -u
echo_bin=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-echo-config.XXXXXX")
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
fail() {
    echo "FAIL: $*"
    exit 1
}

# expect_error NAME 'file text' 'needle' [extra args]: exit 2 and the needle on stderr
expect_error() {
    name=$1 text=$2 needle=$3
    shift 3
    printf '%s' "$text" >"$work/$name.conf"
    "$echo_bin" -c "$work/$name.conf" "$@" >"$work/$name.out" 2>"$work/$name.err" </dev/null
    rc=$?
    [ "$rc" -eq 2 ] || { cat "$work/$name.err"; fail "$name: exit $rc, not 2"; }
    grep -qF -- "$needle" "$work/$name.err" ||
        { cat "$work/$name.err"; fail "$name: no '$needle' in the message"; }
    echo "ok: $name: $(head -n 1 "$work/$name.err")"
}

expect_error unknown 'plain = yes
bogus = 1
' "$work/unknown.conf:2: unknown key 'bogus'"
expect_error section '[svc]
plain = yes
' "$work/section.conf:1: no sections here"
expect_error flag 'plain = maybe
' "$work/flag.conf:1: 'plain' is a flag: yes or no"
expect_error duplicate 'plain = yes
threads = 1
threads = 2
' "$work/duplicate.conf:3: duplicate key 'threads'"
expect_error value 'plain = yes

threads = 0
' "$work/value.conf:3: threads: '0' is out of range"
# a bad value in the file is refused even when the command line gives another
expect_error value_overridden 'plain = yes
threads = 0
' "$work/value_overridden.conf:2: threads:" --threads 1
expect_error cert 'cert = /nonexistent/cert.pem
key = /nonexistent/key.pem
' "$work/cert.conf:1: cert /nonexistent/cert.pem:"
"$echo_bin" -c "$work/none.conf" >/dev/null 2>"$work/none.err"
[ $? -eq 2 ] && grep -q "none.conf: cannot open" "$work/none.err" || fail "missing file"
echo "ok: missing file: $(cat "$work/none.err")"
# --hibernate-after S: seconds with up to 3 decimals; a bad value is blamed on its line (in
# a file) or on the option (on the command line); TLS only
expect_error hibernate_negative 'plain = yes
hibernate_after = -1
' "$work/hibernate_negative.conf:2: hibernate-after: '-1' is not a duration"
expect_error hibernate_garbage 'plain = yes
' "--hibernate-after: '0.2s' is not a duration" --hibernate-after 0.2s
expect_error hibernate_too_fine 'plain = yes
' "--hibernate-after: '0.0001' is not a duration" --hibernate-after 0.0001
expect_error hibernate_range 'plain = yes
' "--hibernate-after: '86401' is out of range (0..86400 seconds)" --hibernate-after 86401
expect_error hibernate_plain 'plain = yes
hibernate_after = 0.2
' "$work/hibernate_plain.conf:1: plain serves plaintext TCP: --hibernate-after cannot be used"
# a value the command line gives again, wrong there: blamed on the option, not the file
expect_error cli_wins 'plain = yes
threads = 1
' "--threads: '0' is out of range" --threads 0

# a good file, and the command line over it: listen comes from --listen, the rest from the file
cat >"$work/good.conf" <<CONF
# tern-echo, plaintext
plain = yes
listen = 127.0.0.1:1
threads = 1
log_level = debug
CONF
"$echo_bin" -c "$work/good.conf" --listen 127.0.0.1:0 2>"$work/good.log" </dev/null &
pid=$!
n=0
while ! grep -q 'msg="listening"' "$work/good.log" && [ $n -lt 100 ]; do
    sleep 0.1
    n=$((n + 1))
done
port=$(sed -n 's/.*msg="listening" addr=127.0.0.1:\([0-9]*\).*/\1/p' "$work/good.log")
[ -n "$port" ] && [ "$port" != 1 ] || { cat "$work/good.log"; fail "good: not listening on a free port"; }
grep -q 'threads=1' "$work/good.log" || fail "good: threads from the file not used"
grep -q 'hibernate_after_ms=0 ' "$work/good.log" || fail "good: hibernation not off by default"
got=$(python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', $port), timeout=5)
s.sendall(b'hello from a file\n')
print(s.recv(100).decode().strip())
")
[ "$got" = "hello from a file" ] || fail "good: echo answered '$got'"
kill "$pid"
wait "$pid"
rc=$?
pid=
[ "$rc" -eq 0 ] || fail "good: exit $rc after SIGTERM"
echo "ok: good file with --listen over it: port $port echoes, exit 0"

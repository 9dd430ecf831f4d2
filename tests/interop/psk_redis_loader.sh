#!/bin/sh
# SPDX-License-Identifier: MIT
#
# contrib/tern-psk-redis against a real Redis (its own redis-server on loopback):
#   - a PSK file with odd identities (blanks inside and leading, ':' inside, quotes, a
#     backslash, UTF-8, an identity that looks like a hash name, CRLF, comments, blank lines,
#     upper-case hex, :SHA384) goes through `redis-cli --pipe` with no error, one reply per
#     command, and HGETALL of each identity is exactly key <hex, lower case> hash <name>;
#   - --publish: a subscriber of tern:psk:invalidate receives "*";
#   - --prefix: the keys land under it; --delete: they are gone again;
#   - bad files (no ':', a short key, md5, a duplicate, an empty or a 129-byte identity, a
#     non-hex key, a directory) are refused: exit 2, FILE:LINE on stderr, nothing on stdout;
#     with TERN_BENCH given, tern's own loader (tern-bench --psk-file) refuses the same line
#     and accepts the good file.
# Exit 0: pass; 77: skipped (no redis-server or redis-cli); anything else: fail.
#
# Usage: psk_redis_loader.sh SCRIPT [TERN_BENCH]
set -u
. "$(dirname "$0")/lib.sh"
[ "$#" -ge 1 ] && [ "$#" -le 2 ] || { echo "usage: $0 SCRIPT [TERN_BENCH]" >&2; exit 2; }
loader=$1
bench=${2:-}
skip_unless_cmd redis-server
skip_unless_cmd redis-cli
need_exe "$loader"
interop_workdir psk-redis
LC_ALL=C
export LC_ALL

k1=00112233445566778899aabbccddeeff
k2=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100
K3=0123456789ABCDEF0123456789ABCDEF01234567
long_id=$(printf '%0129d' 0)

# identity|key as stored|hash, one per line (the expected contents; '|' is in no identity)
cat >"$work/expect" <<EOF
alice|$k1|sha256
bob with spaces|$k2|sha384
  leading blanks|$k1|sha256
a:b:c|$k1|sha256
x:sha384|$k1|sha256
quo"te's|$k2|sha256
back\\slash|$k1|sha384
café ✓|$(echo "$K3" | tr 'A-F' 'a-f')|sha256
tab	inside|$k1|sha256
EOF

{
    echo "# tern PSK file with odd identities"
    echo ""
    echo "alice:$k1"
    echo "bob with spaces:$k2:SHA384   "
    echo "   # an indented comment"
    echo "  leading blanks:$k1"
    printf 'a:b:c:%s\r\n' "$k1"
    echo "x:sha384:$k1"
    echo "quo\"te's:$k2:sha256"
    echo "back\\slash:$k1:sha384"
    echo "café ✓:$K3"
    printf 'tab\tinside:%s' "$k1" # no newline at the end
} >"$work/good.psk"

start_redis store
subscribed=$work/subscribed.out
timeout 20 redis-cli -h 127.0.0.1 -p "$redis_port" SUBSCRIBE tern:psk:invalidate \
    >"$subscribed" 2>&1 &
sub_pid=$!
pids="$pids $sub_pid"
n=0
until [ "$(rcli PUBSUB NUMSUB tern:psk:invalidate | sed -n 2p)" = 1 ]; do
    [ "$n" -lt 100 ] || fail "the subscriber did not subscribe within 10 s"
    sleep 0.1
    n=$((n + 1))
done

"$loader" --publish "$work/good.psk" >"$work/good.resp" 2>"$work/good.err" ||
    fail "the good file: exit $? ($(cat "$work/good.err"))"
[ ! -s "$work/good.err" ] || fail "the good file: stderr: $(cat "$work/good.err")"
rcli --pipe <"$work/good.resp" >"$work/pipe.out" 2>&1 || fail "redis-cli --pipe: $(cat "$work/pipe.out")"
grep -q 'errors: 0, replies: 11' "$work/pipe.out" ||
    fail "redis-cli --pipe did not take 11 commands: $(cat "$work/pipe.out")"
[ "$(rcli DBSIZE)" = 10 ] || fail "$(rcli DBSIZE) keys in Redis, expected 9 and the marker"
[ "$(rcli GET tern:psk:)" = tern-psk-redis ] || fail "no marker key tern:psk:"

# check_identities PREFIX: HGETALL of every identity of $work/expect is exactly its fields
check_identities() {
    while IFS='|' read -r id key hash; do
        got=$(rcli HGETALL "$1$id")
        want=$(printf 'key\n%s\nhash\n%s' "$key" "$hash")
        [ "$got" = "$want" ] || fail "HGETALL '$1$id': got '$got', expected '$want'"
    done <"$work/expect"
}
check_identities tern:psk:
echo "ok: 9 odd identities loaded through redis-cli --pipe, HGETALL exact"

n=0
until grep -qx '\*' "$subscribed"; do
    [ "$n" -lt 50 ] || fail "the subscriber got no '*': $(cat "$subscribed")"
    sleep 0.1
    n=$((n + 1))
done
stop_pid "$sub_pid"
echo "ok: --publish: PUBLISH tern:psk:invalidate * received"

"$loader" --prefix 'fleet\2:' "$work/good.psk" | rcli --pipe >"$work/pipe2.out" 2>&1
grep -q 'errors: 0, replies: 10' "$work/pipe2.out" || fail "--prefix: $(cat "$work/pipe2.out")"
check_identities 'fleet\2:'
"$loader" --delete --prefix='fleet\2:' "$work/good.psk" | rcli --pipe >"$work/pipe3.out" 2>&1
grep -q 'errors: 0, replies: 9' "$work/pipe3.out" || fail "--delete: $(cat "$work/pipe3.out")"
[ "$(rcli DBSIZE)" = 11 ] ||
    fail "--delete left $(rcli DBSIZE) keys, expected the 9 others and two markers"
[ "$(rcli --scan --pattern 'fleet*')" = 'fleet\2:' ] ||
    fail "--delete: fleet keys left besides the marker (--delete keeps it)"
echo "ok: --prefix (a backslash in it) and --delete"

# bad NAME LINE CONTENT: a file whose line LINE is bad is refused as a whole
bad() {
    f=$work/bad-$1.psk
    printf 'ok:%s\n%s\n' "$k1" "$3" >"$f"
    "$loader" "$f" >"$work/bad.out" 2>"$work/bad.err"
    rc=$?
    [ "$rc" = 2 ] || fail "bad-$1: exit $rc, expected 2"
    [ ! -s "$work/bad.out" ] || fail "bad-$1: wrote to stdout"
    grep -q "^tern-psk-redis: $f:$2: " "$work/bad.err" ||
        fail "bad-$1: no '$f:$2:' in: $(cat "$work/bad.err")"
    if [ -n "$bench" ]; then
        "$bench" --target 127.0.0.1:1 --mode psk --psk-file "$f" --count 1 \
            >/dev/null 2>"$work/bench.err"
        rc=$?
        [ "$rc" = 2 ] && grep -q "$f:$2: " "$work/bench.err" ||
            fail "bad-$1: tern-bench --psk-file: exit $rc, $(cat "$work/bench.err")"
    fi
}
bad nocolon 2 "no colon here"
bad short 2 "id:00112233"
bad odd 2 "id:${k1}0"
bad md5 2 "id:$k1:md5"
bad dup 2 "ok:$k2"
bad empty-id 2 ":$k1"
bad long-id 2 "$long_id:$k1"
bad nothex 2 "id:0011223344556677889X"
bad nothex2 2 "id:$(printf '%030dZZ' 0)"
if "$loader" "$work" >/dev/null 2>"$work/bad.err"; then
    fail "a directory was accepted"
fi
grep -q 'not a regular file' "$work/bad.err" || fail "a directory: $(cat "$work/bad.err")"
[ "$(rcli DBSIZE)" = 11 ] || fail "a refused file changed Redis"
echo "ok: bad files refused (exit 2, FILE:LINE, nothing written)"

if [ -n "$bench" ]; then
    # tern's loader takes the good file: the run fails on the refused connection, not on it
    "$bench" --target 127.0.0.1:1 --mode psk --psk-file "$work/good.psk" --count 1 --quiet \
        >/dev/null 2>"$work/bench.err"
    rc=$?
    [ "$rc" = 1 ] || fail "tern-bench --psk-file good.psk: exit $rc, $(cat "$work/bench.err")"
    echo "ok: tern-bench --psk-file agrees on every file"
fi
"$loader" --help | grep -q -- '--publish' || fail "--help"
echo "PASS"

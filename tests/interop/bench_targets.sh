#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Interop: tern-bench with several --target, against two tern-echo on loopback:
#   - full handshakes spread over both (each tern-echo logs connections);
#   - --mode resume, the two sharing one --ticket-keys FILE: every offer goes to the other
#     server than the session's issuer, and it resumes (across_targets.resumed > 0, 0 errors,
#     the same in the summary lines);
#   - the two with different key files: the offers across targets fall back to full
#     handshakes (across_targets.resumed = 0, full_instead_of_resumed > 0, 0 errors);
#   - one target: no offer counts as across targets.
# Exit 0: pass; 77: skipped (no openssl, no test certificates); anything else: fail.
#
# Usage: bench_targets.sh TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR
set -u
. "$(dirname "$0")/lib.sh"
interop_args 4 "TERN_BENCH TERN_ECHO JSON_CHECK CERTS_DIR" "$@"
bench=$1
echo_bin=$2
json_check=$3
certs=$4
skip_unless_cmd openssl
skip_unless_file "$certs/ca.pem" "no test certificates in $certs"
need_exe "$bench"
need_exe "$echo_bin"
need_exe "$json_check"
interop_workdir bench-targets

# json FILE PATH: the value at PATH in FILE (after a strict check of the whole file).
json() {
    "$json_check" "$1" "$2" || fail "$1: no $2 (or not strict JSON)"
}

openssl rand -hex 48 >"$work/shared.keys" || fail "openssl rand"
openssl rand -hex 48 >"$work/other.keys" || fail "openssl rand"
tls="--cert $certs/server-ec.pem --key $certs/server-ec.key --log-level debug"

# shellcheck disable=SC2086 # $tls is split on purpose
start_echo a 90 --threads 1 $tls --ticket-keys "$work/shared.keys"
port_a=$port
# shellcheck disable=SC2086
start_echo b 90 --threads 1 $tls --ticket-keys "$work/shared.keys"
port_b=$port
# shellcheck disable=SC2086
start_echo c 90 --threads 1 $tls --ticket-keys "$work/other.keys"
port_c=$port
echo "tern-echo a:$port_a b:$port_b (shared keys), c:$port_c (other keys)"

# bench NAME ARGS...: tern-bench with the test PKI, its JSON in $work/NAME.json, its output
# in $work/NAME.out; fails unless it exits 0.
bench() {
    name=$1
    shift
    timeout 60 "$bench" --ca "$certs/ca.pem" --sni localhost --quiet \
        --json "$work/$name.json" "$@" >"$work/$name.out" 2>&1 ||
        fail "$name: tern-bench exited $? ($(tail -n 5 "$work/$name.out"))"
    [ "$(json "$work/$name.json" totals.errors)" = 0 ] || fail "$name: errors"
}

# full handshakes: connection i to target i mod 2, so 20 each
bench spread --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" --count 40 \
    --connections 1
na=$(grep -c 'msg="encrypted"' "$work/a.log")
nb=$(grep -c 'msg="encrypted"' "$work/b.log")
[ "$na" -eq 20 ] && [ "$nb" -eq 20 ] || fail "spread: $na and $nb handshakes, expected 20 each"
[ "$(json "$work/spread.json" config.target)" = "127.0.0.1:$port_a,127.0.0.1:$port_b" ] ||
    fail "spread: config.target"
echo "ok: 40 handshakes over two targets, 20 each"

# a shared ticket key: sessions issued by one resume on the other
for v in 1.3 1.2; do
    bench "shared-$v" --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_b" --tls "$v" \
        --mode resume --count 300 --connections 4
    f=$work/shared-$v.json
    offered=$(json "$f" resumption.offered)
    resumed=$(json "$f" resumption.resumed)
    x_offered=$(json "$f" resumption.across_targets.offered)
    x_resumed=$(json "$f" resumption.across_targets.resumed)
    [ "$x_resumed" -gt 0 ] || fail "shared-$v: no resumption across targets"
    [ "$x_offered" = "$offered" ] || fail "shared-$v: $x_offered of $offered offers across"
    [ "$(json "$f" types.resume.count)" = "$resumed" ] ||
        fail "shared-$v: types.resume.count is not resumption.resumed"
    [ $((x_resumed * 100)) -ge $((x_offered * 95)) ] ||
        fail "shared-$v: only $x_resumed of $x_offered resumed across targets"
    grep -q "^  across_targets_resumed  *$x_resumed " "$work/shared-$v.out" ||
        fail "shared-$v: no across_targets_resumed line in the summary"
    echo "ok: TLS $v, shared ticket keys: $x_resumed of $x_offered offers resumed across targets"
done

# different ticket keys: each offer reaches a server that cannot open it, a full handshake
bench other --target "127.0.0.1:$port_a" --target "127.0.0.1:$port_c" --tls 1.3 \
    --mode resume --count 200 --connections 4
x_offered=$(json "$work/other.json" resumption.across_targets.offered)
x_resumed=$(json "$work/other.json" resumption.across_targets.resumed)
instead=$(json "$work/other.json" resumption.full_instead_of_resumed.count)
[ "$x_offered" -gt 0 ] || fail "other: no offer across targets"
[ "$x_resumed" = 0 ] || fail "other: $x_resumed resumed across targets with different keys"
[ "$instead" = "$x_offered" ] || fail "other: $instead full instead of $x_offered offers"
[ "$(json "$work/other.json" resumption.resumed)" = 0 ] || fail "other: resumed handshakes"
echo "ok: different ticket keys: $x_offered offers across targets, all full handshakes instead"

# one target: nothing crosses (and the summary has no across_targets lines)
bench one --target "127.0.0.1:$port_a" --mode resume --count 100 --connections 2
[ "$(json "$work/one.json" resumption.across_targets.offered)" = 0 ] ||
    fail "one: offers across targets with a single target"
[ "$(json "$work/one.json" resumption.resumed)" -gt 0 ] || fail "one: nothing resumed"
! grep -q across_targets "$work/one.out" || fail "one: across_targets in the summary"
echo "ok: one target: resumed, nothing across targets"

echo "PASS"

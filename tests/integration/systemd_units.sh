#!/bin/sh
# SPDX-License-Identifier: MIT
# contrib/systemd's units pass `systemd-analyze verify`: no error and no warning (an unknown
# key or a bad value is only a warning there, with exit 0, so any output fails the test).
# ExecStart= names /usr/bin/tern-*: the copies checked here name the binaries just built.
# Skips (77) without systemd-analyze, or when it cannot verify even a trivial unit here
# (some containers); the reason is printed.
# Usage: systemd_units.sh CONTRIB_SYSTEMD_DIR TERN_ECHO [TERN_GATEWAY]
set -u
[ "$#" -ge 2 ] || { echo "usage: $0 CONTRIB_SYSTEMD_DIR TERN_ECHO [TERN_GATEWAY]" >&2; exit 2; }
src=$1
echo_bin=$2
gateway_bin=${3:-$2}
# not built (or not yet): any executable will do for the check
[ -x "$gateway_bin" ] || gateway_bin=$echo_bin

command -v systemd-analyze >/dev/null 2>&1 || { echo "SKIP: systemd-analyze not found"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/tern-units.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The environment first: a unit that cannot be wrong.
printf '[Unit]\nDescription=probe\n[Service]\nType=notify\nExecStart=/bin/true\n' \
    >"$work/tern-probe.service"
if ! out=$(cd "$work" && systemd-analyze verify --man=no ./tern-probe.service 2>&1) ||
    [ -n "$out" ]; then
    echo "SKIP: systemd-analyze verify does not work here (a trivial unit fails):"
    echo "$out"
    exit 77
fi
rm -f "$work/tern-probe.service"

units=
for f in "$src"/*.service "$src"/*.socket; do
    [ -f "$f" ] || continue
    name=$(basename "$f")
    sed -e "s#/usr/bin/tern-echo#$echo_bin#g" -e "s#/usr/bin/tern-gateway#$gateway_bin#g" \
        "$f" >"$work/$name"
    units="$units ./$name"
done
[ -n "$units" ] || { echo "FAIL: no units in $src"; exit 1; }
# shellcheck disable=SC2086
out=$(cd "$work" && systemd-analyze verify --man=no $units 2>&1)
rc=$?
if [ "$rc" -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify (exit $rc):"
    echo "$out"
    exit 1
fi
echo "ok: systemd-analyze verify:$units"

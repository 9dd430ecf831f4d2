#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian package: cpack builds tern_<version>_<arch>.deb from the build folder into a
# scratch folder; its control fields are checked (name, version, architecture, the run-time
# dependencies, no wolfSSL: it is linked in); it is unpacked with dpkg-deb -x into a scratch
# root, where the programs run (--version), libtern.so.0 finds all it needs, the systemd
# units start a program the package holds, and the example configuration (its file paths
# pointed into the scratch root) passes `tern-gateway -t -c`.
# Usage: deb.sh CPACK BUILD_DIR VERSION
# Exit: 0 pass, 1 fail, 77 skip (no dpkg-deb: not a Debian system).
set -u

cpack=$1 build=$2 version=$3
command -v dpkg-deb >/dev/null 2>&1 || { echo "SKIP: dpkg-deb is not installed"; exit 77; }
arch=$(dpkg --print-architecture)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tern-deb.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# -B: the package and CPack's staging go to the scratch folder, not the build folder
if ! "$cpack" --config "$build/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1; then
    tail -n 40 "$scratch/cpack.log"
    echo "FAIL: cpack"
    exit 1
fi
deb=$scratch/out/tern_${version}_${arch}.deb
if [ ! -f "$deb" ]; then
    ls -l "$scratch/out"
    echo "FAIL: cpack wrote no $(basename "$deb")"
    exit 1
fi
echo "ok: $(basename "$deb") ($(wc -c <"$deb") bytes)"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = tern ] || bad "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || bad "Version: $(field Version)"
[ "$(field Architecture)" = "$arch" ] || bad "Architecture: $(field Architecture)"
[ -n "$(field Maintainer)" ] || bad "no Maintainer"
[ -n "$(field Description)" ] || bad "no Description"
depends=$(field Depends)
for pkg in libc6 libev4 libck0; do
    printf '%s\n' "$depends" | grep -Eq "(^|, )$pkg( |,|$)" || bad "Depends lacks $pkg: $depends"
done
printf '%s\n' "$depends" | grep -qi wolfssl && bad "Depends names wolfSSL (it is linked in): $depends"
echo "ok: Depends: $depends"

root=$scratch/root
dpkg-deb -x "$deb" "$root" || { echo "FAIL: dpkg-deb -x"; exit 1; }
lib=$(cd "$root" && find usr -name libtern.so.0 | head -n 1)
[ -n "$lib" ] || bad "no libtern.so.0 in the package"
libdir=$root/$(dirname "${lib:-usr/lib/x}")
for f in usr/bin/tern-gateway usr/bin/tern-echo usr/bin/tern-bench usr/include/tern/tern.h \
         usr/include/tern/version.h usr/share/doc/tern/examples/tern-gateway.conf.example; do
    [ -f "$root/$f" ] || bad "not in the package: /$f"
done
for f in tern-gateway.8 tern-gateway.conf.5 tern-echo.1 tern-bench.1; do
    [ -f "$root/usr/share/man/man${f##*.}/$f.gz" ] || bad "not in the package: the man page $f"
done
[ -f "$libdir/pkgconfig/tern.pc" ] || bad "no tern.pc beside libtern.so.0"
[ -f "$libdir/cmake/tern/ternConfig.cmake" ] || bad "no ternConfig.cmake beside libtern.so.0"
if [ -n "$lib" ]; then
    missing=$(LD_LIBRARY_PATH=$libdir ldd "$root/$lib" 2>&1 | grep 'not found')
    [ -z "$missing" ] || bad "libtern.so.0 needs what is not there: $missing"
    nm -D --defined-only "$root/$lib" | grep -q ' wolfSSL_' &&
        bad "libtern.so.0 exports wolfSSL's symbols"
fi

gw=$root/usr/bin/tern-gateway
for p in tern-gateway tern-echo tern-bench; do
    if out=$(LD_LIBRARY_PATH=$libdir "$root/usr/bin/$p" --version 2>&1); then
        echo "ok: /usr/bin/$p --version: $out"
    else
        bad "/usr/bin/$p --version: $out"
    fi
done

# systemd units: each ExecStart= starts a program of the package, each man: page of
# Documentation= is in it, and each User= is declared in the package's sysusers.d file
for unit in "$root"/usr/lib/systemd/system/*.service "$root"/usr/lib/systemd/system/*.socket; do
    [ -f "$unit" ] || continue
    name=$(basename "$unit")
    for exe in $(sed -n 's/^ExecStart=[-@:+!]*\([^ ]*\).*/\1/p' "$unit"); do
        case $exe in
        /*) [ -x "$root$exe" ] || bad "$name: ExecStart=$exe is not in the package" ;;
        esac
    done
    for page in $(sed -n 's/^Documentation=//p' "$unit" | tr ' ' '\n' | sed -n 's/^man://p'); do
        sec=$(printf '%s' "$page" | sed 's/.*(\([0-9]\))$/\1/')
        base=${page%"($sec)"}
        [ -f "$root/usr/share/man/man$sec/$base.$sec.gz" ] ||
            bad "$name: Documentation=man:$page is not in the package"
    done
    for user in $(sed -n 's/^User=//p' "$unit"); do
        cat "$root"/usr/lib/sysusers.d/*.conf 2>/dev/null | grep -Eq "^u[!]? +$user( |$)" ||
            bad "$name: User=$user is not declared in the package's sysusers.d"
    done
    echo "checked: $name"
done

# the maintainer scripts: ldconfig, and systemd-sysusers for the units' user
dpkg-deb -e "$deb" "$scratch/control"
for script in postinst postrm; do
    f=$scratch/control/$script
    if [ -x "$f" ] && sh -n "$f"; then
        grep -q ldconfig "$f" || bad "$script does not run ldconfig"
    else
        bad "$script: missing, not executable, or not valid sh"
    fi
done
if [ -f "$root/usr/lib/sysusers.d/tern.conf" ]; then
    grep -q 'systemd-sysusers "/usr/lib/sysusers.d/tern.conf"' "$scratch/control/postinst" ||
        bad "postinst does not create the units' user"
fi

# the example configuration passes -t, its paths pointed at files in the scratch root
printf 'dev1:%s\n' 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
    >"$scratch/devices.psk"
chmod 600 "$scratch/devices.psk"
# a user that exists and is not root (uid 0 needs allow_root); else no user line
runas=nobody
id nobody >/dev/null 2>&1 || runas=
sed -e "s|^psk_file = .*|psk_file = $scratch/devices.psk|" \
    -e "s|^user = .*|${runas:+user = $runas}|" \
    "$root/usr/share/doc/tern/examples/tern-gateway.conf.example" >"$scratch/gateway.conf"
out=$(LD_LIBRARY_PATH=$libdir "$gw" -t -c "$scratch/gateway.conf" 2>&1)
rc=$?
if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -q ": ok"; then
    echo "ok: tern-gateway -t -c the example: $out"
else
    bad "tern-gateway -t -c the example (exit $rc): $out"
fi
# ... and, as shipped (on a machine without its /etc/tern/devices.psk), names the identity
# file it cannot read, with its line
if [ ! -e /etc/tern/devices.psk ]; then
    out=$(LD_LIBRARY_PATH=$libdir "$gw" -t -c \
        "$root/usr/share/doc/tern/examples/tern-gateway.conf.example" 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && printf '%s\n' "$out" | grep -q 'tern-gateway.conf.example:[0-9]*: psk_file'; then
        echo "ok: the example as shipped: exit 2, $out"
    else
        bad "tern-gateway -t -c the example as shipped (exit $rc, expected 2 naming psk_file): $out"
    fi
fi

exit $fail

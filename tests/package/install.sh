#!/bin/sh
# SPDX-License-Identifier: MIT
# `cmake --install` into a scratch prefix: the files a user of the package expects are there
# (programs, both libraries, headers with the generated version.h, tern.pc, the CMake
# package, the man pages, the example configuration), and a small program builds and runs
# against the installed library twice: with pkg-config, and with find_package(tern).
# Usage: install.sh CMAKE CC BUILD_DIR BINDIR LIBDIR INCLUDEDIR MANDIR DOCDIR MAN(ON|OFF)
#                   [CFLAGS...]   (the relative install dirs of GNUInstallDirs; CFLAGS: the
#                   sanitizer flags of the build, which the consumers need too)
# Exit: 0 pass, 1 fail, 77 skip (pkg-config missing).
set -u

cmake=$1 cc=$2 build=$3 bindir=$4 libdir=$5 includedir=$6 mandir=$7 docdir=$8 man=$9
shift 9
cflags="$*"
command -v pkg-config >/dev/null 2>&1 || { echo "SKIP: pkg-config is not installed"; exit 77; }

scratch=$(mktemp -d "${TMPDIR:-/tmp}/tern-install.XXXXXX")
trap 'rm -rf "$scratch"' EXIT INT TERM
prefix=$scratch/prefix
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if ! "$cmake" --install "$build" --prefix "$prefix" >"$scratch/install.log" 2>&1; then
    cat "$scratch/install.log"
    echo "FAIL: cmake --install $build --prefix $prefix"
    exit 1
fi
echo "ok: cmake --install ($(grep -c 'Installing:' "$scratch/install.log") files)"

expect="$bindir/tern-gateway $bindir/tern-echo $bindir/tern-bench
        $libdir/libtern.so $libdir/libtern.so.0 $libdir/libtern.a
        $includedir/tern/tern.h $includedir/tern/version.h $includedir/tern/common.h
        $libdir/pkgconfig/tern.pc
        $libdir/cmake/tern/ternConfig.cmake $libdir/cmake/tern/ternConfigVersion.cmake
        $libdir/cmake/tern/ternTargets.cmake
        $docdir/examples/tern-gateway.conf.example"
if [ "$man" = ON ]; then
    expect="$expect $mandir/man8/tern-gateway.8.gz $mandir/man5/tern-gateway.conf.5.gz
            $mandir/man1/tern-echo.1.gz $mandir/man1/tern-bench.1.gz"
fi
for f in $expect; do
    [ -f "$prefix/$f" ] || bad "not installed: $f"
done
[ -x "$prefix/$bindir/tern-gateway" ] || bad "$bindir/tern-gateway is not executable"
# every public header, as in the source tree (version.h comes from version.h.in)
for h in "$prefix/$includedir"/tern/*.h; do
    [ -f "$h" ] || bad "no headers in $includedir/tern"
done
[ $fail -eq 0 ] && echo "ok: the expected files are installed"

cat >"$scratch/consumer.c" <<'C'
#include <stdio.h>
#include <string.h>

#include <tern/tern.h>

/* Links and runs against the installed libtern: wolfSSL inside it (a TLS configuration),
 * the runtime, and a version that matches the installed header. */
int main(void)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    tern_runtime *rt = tern_runtime_new(NULL);

    if (cfg == NULL || rt == NULL) {
        fprintf(stderr, "consumer: cannot create a configuration or a runtime\n");
        return 1;
    }
    tern_runtime_free(rt);
    tern_ssl_config_unref(cfg);
    if (strcmp(tern_version_string(), TERN_VERSION_STRING) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", tern_version_string(),
                TERN_VERSION_STRING);
        return 1;
    }
    printf("tern %s\n", tern_version_string());
    return 0;
}
C

# pkg-config: the .pc file finds its prefix from its own place (${pcfiledir})
pc_flags=$(PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig" PKG_CONFIG_LIBDIR="$prefix/$libdir/pkgconfig" \
    pkg-config --cflags --libs tern) || { bad "pkg-config --cflags --libs tern"; pc_flags=; }
# shellcheck disable=SC2086 # flags are words
if "$cc" $cflags -o "$scratch/consumer_pc" "$scratch/consumer.c" $pc_flags >"$scratch/cc.log" 2>&1; then
    if out=$(LD_LIBRARY_PATH="$prefix/$libdir" "$scratch/consumer_pc" 2>&1); then
        echo "ok: pkg-config consumer ($pc_flags): $out"
    else
        bad "pkg-config consumer: $out"
    fi
else
    cat "$scratch/cc.log"
    bad "pkg-config consumer: $cc ... $pc_flags"
fi

# find_package(tern): the exported target tern::tern (the shared library)
mkdir -p "$scratch/cmake_consumer"
cp "$scratch/consumer.c" "$scratch/cmake_consumer/"
cat >"$scratch/cmake_consumer/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(tern_consumer LANGUAGES C)
find_package(tern 0.1 REQUIRED)
add_executable(consumer consumer.c)
target_link_libraries(consumer PRIVATE tern::tern)
CM
if "$cmake" -S "$scratch/cmake_consumer" -B "$scratch/cmake_build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$cflags" \
        >"$scratch/cmake.log" 2>&1 &&
    "$cmake" --build "$scratch/cmake_build" >>"$scratch/cmake.log" 2>&1; then
    # CMake puts the library's folder in the build tree's RPATH: no LD_LIBRARY_PATH
    if out=$("$scratch/cmake_build/consumer" 2>&1); then
        echo "ok: find_package(tern) consumer: $out"
    else
        bad "find_package(tern) consumer: $out"
    fi
else
    tail -n 30 "$scratch/cmake.log"
    bad "find_package(tern) consumer did not build"
fi

exit $fail

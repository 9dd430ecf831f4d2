#!/bin/sh
# SPDX-License-Identifier: MIT
#
# The example configurations in the documentation stay valid: every tern-gateway.conf block
# that a Markdown page marks with `<!-- check: tern-gateway -t -->` on the line before its
# code fence (docs/guide/*.md, README.md), and contrib/tern-gateway.conf.example as a whole,
# passes `tern-gateway -t`. The files an example names under /etc/tern/ are made in a scratch
# folder (an identity file, a certificate and its key, a ticket key file, by the key that
# names them) and the paths pointed there; `user = NAME` becomes a user that exists.
# Then, so that the check cannot pass vacuously: a marker with no fence after it is an
# error, operations.md must have marked blocks, and one example with an unknown key added
# must be refused (exit 2, naming the line).
# Exit 0: pass; 77: skipped (no openssl to make the certificate); anything else: fail.
#
# Usage: examples_config.sh TERN_GATEWAY SOURCE_DIR
set -u

if [ "$#" -ne 2 ]; then
    echo "usage: $0 TERN_GATEWAY SOURCE_DIR" >&2
    exit 2
fi
gw=$1
src=$2
marker='<!-- check: tern-gateway -t -->'

command -v openssl >/dev/null 2>&1 || {
    echo "SKIP: openssl is needed to make the examples' certificate"
    exit 77
}

work=$(mktemp -d "${TMPDIR:-/tmp}/tern-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' INT TERM
failures=0
checked=0
bad() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# ---- the files the examples may name, made once
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=gateway.example" -keyout "$work/key.pem" -out "$work/cert.pem" \
    >/dev/null 2>&1 || {
    echo "FAIL: openssl could not make a certificate"
    exit 1
}
# an encrypted copy of the key, for an example that gives key_pass_file
printf 'example passphrase\n' >"$work/pass.txt"
openssl pkey -in "$work/key.pem" -aes256 -passout file:"$work/pass.txt" \
    -out "$work/key-enc.pem" 2>/dev/null || cp "$work/key.pem" "$work/key-enc.pem"
runas=nobody
id nobody >/dev/null 2>&1 || runas=

# make_files CONF ROOT: the files CONF names under ROOT (the example's /etc/tern/), by key
make_files() {
    has_pass=no
    grep -q '^[[:space:]]*key[-_]pass[-_]file[[:space:]]*=' "$1" && has_pass=yes
    sed -n 's/^[[:space:]]*\([A-Za-z_-]*\)[[:space:]]*=[[:space:]]*\([^[:space:];#]*\).*/\1 \2/p' \
        "$1" | while read -r k path; do
        case "$path" in "$2"/*) ;; *) continue ;; esac
        mkdir -p "$(dirname "$path")"
        case "$(printf '%s' "$k" | tr '-' '_')" in
        psk_file)
            {
                echo "# made by examples_config.sh"
                printf 'sensor-0001:%s\n' 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
                printf 'plant-a/press-7:%s\n' 202122232425262728292a2b2c2d2e2f
            } >"$path"
            chmod 600 "$path"
            ;;
        cert | chain | backend_ca | backend_cert) cp "$work/cert.pem" "$path" ;;
        key | backend_key)
            if [ "$k" != backend_key ] && [ "$has_pass" = yes ]; then
                cp "$work/key-enc.pem" "$path"
            else
                cp "$work/key.pem" "$path"
            fi
            chmod 600 "$path"
            ;;
        key_pass_file | key-pass-file) cp "$work/pass.txt" "$path" && chmod 600 "$path" ;;
        ticket_keys) printf '%s\n' "$(printf '%096d' 7)" >"$path" && chmod 600 "$path" ;;
        *)
            echo "examples_config.sh: no placeholder for '$k = $path': teach make_files" >&2
            return 1
            ;;
        esac
    done
}

# check NAME FILE [FIRST]: FILE (an example as written) passes tern-gateway -t in a scratch
# root; NAME is FILE's name in messages, and FIRST the line of NAME on which FILE's first
# line is (a block in a page), so that a problem names the page's line
good=
check() {
    n=$((checked + 1))
    root=$work/ex$n/etc-tern
    mkdir -p "$root"
    sed -e "s|/etc/tern/|$root/|g" \
        -e "s|^\([[:space:]]*user[[:space:]]*=\).*|${runas:+\1 $runas}|" "$2" >"$work/ex$n.conf"
    if ! make_files "$work/ex$n.conf" "$root"; then
        bad "$1: its files could not be made"
        return
    fi
    out=$("$gw" -t -c "$work/ex$n.conf" 2>&1)
    rc=$?
    checked=$n
    if [ "$rc" -eq 0 ] && printf '%s\n' "$out" | grep -q ": ok"; then
        echo "ok: $1: $(printf '%s\n' "$out" | grep ': ok' | sed "s|^$work/||")"
        [ -n "$good" ] || good=$work/ex$n.conf
    else
        bad "$1 (exit $rc):"
        printf '%s\n' "$out" | awk -v f="$work/ex$n.conf:" -v name="${1%%:*}" \
            -v first="${3:-1}" '{
                if (index($0, f) == 1) {
                    rest = substr($0, length(f) + 1)
                    if (match(rest, /^[0-9]+/)) {
                        rest = (substr(rest, 1, RLENGTH) + first - 1) substr(rest, RLENGTH + 1)
                    }
                    $0 = name ":" rest
                }
                print "    " $0
            }'
    fi
}

# ---- the marked blocks of the Markdown pages
md_blocks=0
ops_blocks=0
for md in "$src"/docs/guide/*.md "$src"/README.md; do
    [ -f "$md" ] || continue
    rel=${md#"$src"/}
    # block K of the page goes to $work/md.K; a marker without a fence right after it is
    # reported as "nofence LINE"
    rm -f "$work"/md.*
    awk -v marker="$marker" -v out="$work/md" '
        index($0, marker) == 1 { want = NR; next }
        want && !inblk {
            if ($0 ~ /^```/) { k++; inblk = 1; start[k] = NR + 1; want = 0; next }
            print "nofence " want; want = 0; next
        }
        inblk && /^```/ { inblk = 0; close(out "." k); next }
        inblk { print > (out "." k) }
        END {
            if (want) print "nofence " want
            if (inblk) print "unclosed " start[k]
            for (i = 1; i <= k; i++) print "block " i " " start[i]
        }' "$md" >"$work/index"
    while read -r what a b; do
        case "$what" in
        nofence) bad "$rel:$a: the check marker is not followed by a code fence" ;;
        unclosed) bad "$rel:$a: the marked code block is not closed" ;;
        block)
            [ -f "$work/md.$a" ] || : >"$work/md.$a"
            cp "$work/md.$a" "$work/block.conf"
            check "$rel:$b" "$work/block.conf" "$b"
            md_blocks=$((md_blocks + 1))
            [ "$rel" = docs/guide/operations.md ] && ops_blocks=$((ops_blocks + 1))
            ;;
        esac
    done <"$work/index"
done
[ "$ops_blocks" -ge 1 ] ||
    bad "docs/guide/operations.md has no block marked '$marker' (the markers were lost?)"

# ---- the example the package installs
example=$src/contrib/tern-gateway.conf.example
if [ -f "$example" ]; then
    check contrib/tern-gateway.conf.example "$example"
else
    bad "no contrib/tern-gateway.conf.example"
fi

# ---- the check itself: an unknown key in an example is refused, with its line
if [ -n "$good" ]; then
    cp "$good" "$work/broken.conf"
    printf 'no_such_key = 1\n' >>"$work/broken.conf"
    line=$(wc -l <"$work/broken.conf" | tr -d ' ')
    out=$("$gw" -t -c "$work/broken.conf" 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && printf '%s\n' "$out" | grep -q "broken.conf:$line: .*no_such_key"; then
        echo "ok: an unknown key is refused: $(printf '%s\n' "$out" | sed "s|^$work/||" | head -n 1)"
    else
        bad "an example with an unknown key (line $line) was not refused as expected (exit $rc): $out"
    fi
fi

echo "examples checked: $checked ($md_blocks marked Markdown blocks)"
if [ "$failures" -ne 0 ]; then
    echo "FAIL: $failures problem(s)"
    exit 1
fi
echo "PASS"

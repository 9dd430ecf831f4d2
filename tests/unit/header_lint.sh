#!/bin/sh
# SPDX-License-Identifier: MIT
# The public headers' contract, checked (STYLE.md 2.6, 2.7):
#   - every TERN_API declaration in include/tern/*.h has a /** */ comment right above it that
#     says `@thread setup|owner|any|blocking` (words may follow: "@thread any but a reactor");
#   - a function after which callbacks may follow says `@events` (what follows, or "none"):
#     tern_<object>_<verb> where the verb starts or ends activity (connect_to_host*, start*,
#     write, flush, shutdown_write, close, abort, listen*, complete, reject, stop, run*,
#     send, post) and the object is a socket, server, runtime, reactor, timer, actor or PSK
#     authenticator;
#   - enums are plain tags (`enum tern_x {`), never typedef'd: several getters are named
#     after their enum (tern_socket_state, tern_socket_option, tern_ssl_error_code), and
#     a typedef of the same name cannot coexist with a function;
#   - no stale text in the headers, README.md and docs/ ("comes with the next issue").
# Usage: header_lint.sh <repository root>
set -eu
root=${1:?usage: header_lint.sh <repository root>}
[ -d "$root/include/tern" ] || { echo "header_lint: no $root/include/tern" >&2; exit 2; }

status=0
nfiles=0
for h in "$root"/include/tern/*.h "$root"/include/tern/*.h.in; do
    [ -f "$h" ] || continue
    nfiles=$((nfiles + 1))
    rel=${h#"$root"/}
    awk -v file="$rel" '
    function flush_decl(   name, m) {
        name = decl
        sub(/\(.*/, "", name)
        n = split(name, w, /[ \t*]+/)
        name = w[n]
        ndecl++
        if (!have_doc) {
            printf "%s:%d: %s: no /** */ comment right above the declaration\n", file, declline, name
            bad++
            return
        }
        if (doc !~ /@thread[ \t\n]+(setup|owner|any|blocking)/) {
            printf "%s:%d: %s: the comment says no @thread setup|owner|any|blocking\n", file, declline, name
            bad++
        }
        if (name ~ /^tern_(socket|server|runtime|reactor|timer|actor|psk_authenticator)_(connect_to_host|connect_to_host_encrypted|start_server_encryption|start_client_encryption|write|flush|shutdown_write|close|abort|listen|listen_address|complete|reject|stop|start|run|run_once|send|post)$/ &&
            doc !~ /@events/) {
            printf "%s:%d: %s: callbacks may follow this call: say which with @events (or @events none)\n", file, declline, name
            bad++
        }
    }
    BEGIN { in_comment = 0; have_doc = 0; in_decl = 0; bad = 0; ndecl = 0 }
    {
        line = $0
        if (in_decl) {
            decl = decl " " line
            if (line ~ /;/) { in_decl = 0; flush_decl(); have_doc = 0 }
            next
        }
        if (in_comment) {
            cur = cur "\n" line
            if (line ~ /\*\//) {
                in_comment = 0
                if (cur_doc) { doc = cur; have_doc = 1 } else { have_doc = 0 }
            }
            next
        }
        if (line ~ /^[ \t]*\/\*/) {
            cur = line
            cur_doc = (line ~ /^[ \t]*\/\*\*[^\/]/ || line ~ /^[ \t]*\/\*\*$/)
            if (line ~ /\*\/[ \t]*$/) {
                if (cur_doc) { doc = cur; have_doc = 1 } else { have_doc = 0 }
            } else {
                in_comment = 1
            }
            next
        }
        if (line ~ /^[ \t]*typedef[ \t]+enum([ \t]+[A-Za-z_][A-Za-z_0-9]*)?[ \t]*\{/) {
            printf "%s:%d: a typedef'\''d enum: tern'\''s enums are plain tags (enum tern_x)\n", file, NR
            bad++
        }
        if (line ~ /^TERN_API/) {
            decl = line
            declline = NR
            if (line ~ /;/) { flush_decl(); have_doc = 0 } else { in_decl = 1 }
            next
        }
        have_doc = 0
    }
    END {
        if (in_comment) { printf "%s: unterminated comment\n", file; bad++ }
        exit bad > 0 ? 1 : 0
    }' "$h" || status=1
done

# Stale text: promises about work that is done.
stale='next issue|a later issue|later issues|Fields will be added|and later tern-bench|\(ssl/, later\)'
docs=$(find "$root/include/tern" "$root/docs" -name '*.h' -o -name '*.h.in' -o -name '*.md' 2>/dev/null)
found=$(grep -n -E "$stale" "$root/README.md" $docs 2>/dev/null || true)
if [ -n "$found" ]; then
    printf '%s\n' "$found" | sed "s|^$root/||"
    echo "header_lint: stale text above (it speaks of work that is done)"
    status=1
fi

if [ "$nfiles" -eq 0 ]; then
    echo "header_lint: no public headers found (the check would be vacuous)"
    exit 1
fi
[ "$status" -eq 0 ] && echo "header_lint: ok ($nfiles public headers)"
exit $status

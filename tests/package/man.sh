#!/bin/sh
# SPDX-License-Identifier: MIT
# The man pages (docs/man/*.scd, built by the `man` target into <build>/man):
#   - groff reads each one without a warning (`groff -ww -z -man`: every warning on, no output);
#   - each has the sections a man page has;
#   - each program's page names every long option its --help shows, so the two cannot drift.
#   - the configuration file's page (after -k) has a key for every option of the program.
# Usage: man.sh MANDIR [PROGRAM PAGE]... [-k PROGRAM CONFPAGE]
#        (PAGE: a name in MANDIR, e.g. tern-echo.1)
# Exit: 0 pass, 1 fail, 77 skip (groff missing).
set -u

mandir=$1
shift
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff is not installed"; exit 77; }

fail=0
bad() { echo "FAIL: $*"; fail=1; }

pages=$(cd "$mandir" && ls -- *.[0-9] 2>/dev/null)
[ -n "$pages" ] || { echo "FAIL: no man pages in $mandir (is scdoc installed?)"; exit 1; }
for page in $pages; do
    out=$(groff -ww -z -man "$mandir/$page" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        bad "$page: groff -ww -z -man (rc $rc):"
        printf '%s\n' "$out" | head -n 20
    fi
    # scdoc writes each section as `.SH NAME` (some versions quote the name)
    case $page in
    *.5) sections="NAME|SYNOPSIS|DESCRIPTION|EXAMPLES|FILES|SEE ALSO" ;;
    *) sections="NAME|SYNOPSIS|DESCRIPTION|OPTIONS|SIGNALS|FILES|EXIT STATUS|EXAMPLES|SEE ALSO" ;;
    esac
    IFS='|'
    for section in $sections; do
        grep -Eq "^\.SH \"?$section\"?\$" "$mandir/$page" || bad "$page: no $section section"
    done
    unset IFS
    echo "ok: $page"
done

# The options of each program's --help, each in its page (bold: \fB--name\fR); after -k, each
# option (but -c, -t, -h, -V) as a key of the configuration file's page (\fBname_with_underscores\fR).
keys=0
while [ $# -ge 2 ]; do
    if [ "$1" = -k ]; then
        keys=1
        shift
        continue
    fi
    program=$1 page=$2
    shift 2
    help=$("$program" --help 2>&1) || { bad "$program --help failed"; continue; }
    opts=$(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u)
    [ -n "$opts" ] || { bad "$program --help lists no long option"; continue; }
    # the page as scdoc wrote it, '\-' (if a later scdoc escapes hyphens) read as '-'
    plain=$(sed 's/\\-/-/g' "$mandir/$page")
    n=0
    for opt in $opts; do
        if [ $keys -eq 1 ]; then
            case $opt in --config | --test | --help | --version) continue ;; esac
            key=$(printf '%s' "${opt#--}" | tr - _)
            n=$((n + 1))
            printf '%s\n' "$plain" | grep -q -- "fB$key\\\\fR" ||
                bad "$page does not describe the key $key (for $opt of $(basename "$program") --help)"
            continue
        fi
        n=$((n + 1))
        printf '%s\n' "$plain" | grep -q -- "fB$opt\\\\fR" ||
            bad "$page does not describe $opt (from $(basename "$program") --help)"
    done
    echo "checked: $page against the $n long options of $(basename "$program") --help"
    keys=0
done

exit $fail

# SPDX-License-Identifier: MIT
# Helpers shared by the interop scripts (sourced, POSIX sh).

# stop_pid PID: TERM, up to 5 s, then KILL; always reaped. Only for processes we started.
stop_pid() {
    p=$1
    [ -n "$p" ] || return 0
    if kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p" 2>/dev/null
        n=0
        while kill -0 "$p" 2>/dev/null && [ "$n" -lt 50 ]; do
            sleep 0.1
            n=$((n + 1))
        done
        kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
    return 0
}

# wait_port LOG PID: prints the port of "listening ... addr=127.0.0.1:PORT" in LOG (tern's
# programs log it once bound); fails if PID exits first or after 10 s.
wait_port() {
    n=0
    while [ "$n" -lt 100 ]; do
        p=$(sed -n 's/.*msg="listening".*addr=127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$1" |
            head -n 1)
        if [ -n "$p" ]; then
            echo "$p"
            return 0
        fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
        n=$((n + 1))
    done
    return 1
}

# ---- the preamble every script shares -----------------------------------------------------

# interop_args COUNT "USAGE" "$@": exit 2 with the usage unless exactly COUNT arguments.
interop_args() {
    want=$1
    usage=$2
    shift 2
    [ "$#" -eq "$want" ] || { echo "usage: $0 $usage" >&2; exit 2; }
}

# skip_unless_cmd CMD [WHY]: exit 77 (skipped) when CMD is not on PATH.
skip_unless_cmd() {
    command -v "$1" >/dev/null 2>&1 || { echo "SKIP: ${2:-$1 not found}"; exit 77; }
}

# skip_unless_file FILE [WHY]: exit 77 when FILE is missing (the test PKI was not generated).
skip_unless_file() {
    [ -f "$1" ] || { echo "SKIP: ${2:-$1 is missing}"; exit 77; }
}

# need_exe FILE: a program under test must exist; its absence is a failure, not a skip.
need_exe() {
    [ -x "$1" ] || { echo "FAIL: $1 is not executable"; exit 1; }
}

# interop_workdir NAME: a fresh $work directory; on exit every pid in $pids is stopped and
# $work removed. Logs named $work/*.log are printed by `fail`.
interop_workdir() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/tern-$1.XXXXXX")
    pids=
    trap interop_cleanup EXIT
    trap 'exit 1' INT TERM
}

interop_cleanup() {
    for p in $pids; do
        stop_pid "$p"
    done
    rm -rf "$work"
}

# fail MESSAGE: prints it and the logs of the programs started, then exits 1.
fail() {
    echo "FAIL: $*"
    for l in "$work"/*.log; do
        [ -f "$l" ] || continue
        echo "---- $(basename "$l")"
        cat "$l"
    done
    exit 1
}

# start_echo NAME SECONDS ARGS...: runs tern-echo ($echo_bin) on 127.0.0.1:0 for at most
# SECONDS with ARGS, its log in $work/NAME.log; sets $pid and $port (from the log), or fails.
start_echo() {
    name=$1
    secs=$2
    shift 2
    timeout "$secs" "$echo_bin" --listen 127.0.0.1:0 "$@" \
        >"$work/$name.out" 2>"$work/$name.log" &
    pid=$!
    pids="$pids $pid"
    port=$(wait_port "$work/$name.log" "$pid") ||
        fail "tern-echo ($name) did not log its port within 10 s (or exited)"
}

# program_pid PID: the PID of the program that `timeout` (PID) runs, from /proc; PID itself when
# it has no child (as a program started without timeout).
program_pid() {
    c=$(cat "/proc/$1/task/$1/children" 2>/dev/null | cut -d' ' -f1)
    echo "${c:-$1}"
}

# ---- Redis (the fleet's store) --------------------------------------------------------------

# free_port: prints a TCP port of 127.0.0.1 that nothing listens on now (bound and released
# by python3, or picked from /proc when it is absent; a race with another process is possible
# and shows as a failed start).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' \
        2>/dev/null || echo $((20000 + $$ % 20000))
}

# start_redis NAME [ARGS...]: runs Debian's redis-server on a loopback port of its own, no
# persistence (no RDB, no AOF), its files in $work/NAME; sets $redis_pid and $redis_port, or
# fails. Extra ARGS go to redis-server (e.g. --notify-keyspace-events Kh). Stopped by the
# cleanup with everything in $pids (by its PID).
start_redis() {
    rname=$1
    shift
    command -v redis-server >/dev/null 2>&1 ||
        fail "redis-server is not installed (scripts/bootstrap installs Debian's redis-server)"
    mkdir -p "$work/$rname"
    redis_port=${redis_port_wanted:-$(free_port)}
    redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
        --dir "$work/$rname" --daemonize no --protected-mode yes --loglevel warning \
        --logfile "$work/$rname.log" "$@" &
    redis_pid=$!
    pids="$pids $redis_pid"
    n=0
    until redis-cli -h 127.0.0.1 -p "$redis_port" PING 2>/dev/null | grep -q PONG; do
        kill -0 "$redis_pid" 2>/dev/null || fail "redis-server ($rname) exited at start"
        [ "$n" -lt 100 ] || fail "redis-server ($rname) did not answer PING within 10 s"
        sleep 0.1
        n=$((n + 1))
    done
}

# rcli ARGS...: redis-cli against the Redis that start_redis started last.
rcli() {
    redis-cli -h 127.0.0.1 -p "$redis_port" "$@"
}

# ---- resumption across servers (ticket keys shared by a fleet) -----------------------------

# resume_connect TAG PORT VERSION SESS_IN SESS_OUT: one `openssl s_client` connection to
# 127.0.0.1:PORT (VERSION tls1_3 or tls1_2; $certs/ca.pem, name localhost) that sends a line,
# offers the session in SESS_IN and saves its session to SESS_OUT ("-": neither); prints "New"
# or "Reused"; fails unless the line came back (through the server, or its backend).
resume_connect() {
    tag=$1 port=$2 version=$3 sin=$4 sout=$5
    set -- -connect "127.0.0.1:$port" "-$version" -CAfile "$certs/ca.pem" \
        -servername localhost -verify_return_error
    [ "$sin" = - ] || set -- "$@" -sess_in "$sin"
    [ "$sout" = - ] || set -- "$@" -sess_out "$sout"
    # stdin stays open a moment: a TLS 1.3 ticket arrives after the handshake
    { printf 'resume %s\n' "$tag"; sleep 0.5; } | timeout 10 openssl s_client "$@" \
        >"$work/$tag.out" 2>&1
    grep -q "resume $tag" "$work/$tag.out" || {
        cat "$work/$tag.out"
        fail "$tag: the line did not come back"
    }
    sed -n 's/^\(New\|Reused\), .*/\1/p' "$work/$tag.out" | head -n 1
}

# expect_eq GOT WANT WHAT: fails with WHAT unless GOT is WANT; says ok otherwise.
expect_eq() {
    [ "$1" = "$2" ] || fail "$3: $1, expected $2"
    echo "ok: $3: $1"
}

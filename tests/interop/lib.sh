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

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench --mode hold: open --connections N connections (TLS, PSK or --plain), keep them
 * open and idle for --duration S, optionally with a small round trip per connection every
 * --keepalive K seconds; report the climb once a second, then what was held, what failed by
 * kind, the time to open them all, keep-alive latency percentiles, and, with --server-pid,
 * the server's memory per held connection (VmRSS) beside the machine's kernel memory (Slab,
 * TCP buffers). The load generator for issue 15 (a million idle devices per machine).
 *
 * Threads: as the other modes (load.h): main() builds the configuration, then
 * `bench_hold_run` posts one worker per reactor and only reads what they publish (atomic
 * counters with one writer each; the keep-alive histogram under a lock, once a second);
 * the /proc samples are taken by main().
 */
#ifndef TERN_BENCH_HOLD_H
#define TERN_BENCH_HOLD_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "load.h"

/** Descriptors one tern-bench process keeps for itself (stdio, epoll, wake-ups, output
 * files) beyond one per held connection. */
#define BENCH_HOLD_FD_MARGIN 64

/**
 * The most connections one process may hold: its descriptor hard limit (RLIMIT_NOFILE)
 * less BENCH_HOLD_FD_MARGIN. Raises the soft limit to the hard one first (a process may).
 * @p hard receives the hard limit. @thread main, before the runtime starts
 */
unsigned bench_hold_max_connections(unsigned long long *hard);

/**
 * Runs the hold on the started runtime @p rt (its reactors become the workers): climbs,
 * holds, samples, stops the runtime and joins it, prints the summary to stdout (stderr when
 * @p json is stdout) and writes the JSON document to @p json (NULL: none; closed unless it
 * is stdout). SIGINT/SIGTERM (in @p sigs, blocked by the caller) stop the run early; a
 * second one exits at once.
 * @return the exit code: 0 when every connection opened and was still open at the end,
 *         1 otherwise (or a write error).
 */
int bench_hold_run(tern_runtime *rt, const struct bench_config *cfg, const char *target_text,
                   const char *tls, FILE *json, const char *json_name, bool quiet,
                   const sigset_t *sigs);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The runtime object, struct tern_runtime (runtime.c): set up on one thread before start;
 * afterwards read-only, except `stopping` (atomic) and what the signal thread does through
 * tern_runtime_stop.
 */
#ifndef TERN_RUNTIME_RT_H
#define TERN_RUNTIME_RT_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <tern/runtime.h>
#include <tern/server.h>

#include "counters.h"
#include "pool.h"
#include "util.h"

struct tern_runtime {
    tern_runtime_options opts;
    unsigned nreactors;
    tern_reactor **reactors;
    char errstr[TERN__ERRSTR];
    bool started, joined;
    bool standalone;     /* one reactor driven by its creator's thread */
    _Atomic bool all_exited; /* set by join, read by the signal thread */
    _Atomic int stopping; /* number of stop calls */
    _Atomic uint32_t drain_ms;

    /* servers and the acceptor thread: once started, the list, the listeners' shared fields
     * and the acceptor_* flags below are under servers_lock (servers may come and go while
     * the runtime runs); servers_cond is broadcast whenever a listener closes */
    pthread_mutex_t servers_lock;
    pthread_cond_t servers_cond; /* CLOCK_MONOTONIC */
    tern_server *servers;
    struct ev_loop *acceptor_loop;
    ev_async acceptor_wake;
    pthread_t acceptor_thread;
    bool acceptor_started;
    bool acceptor_exited; /* it closed every listener it had and left its loop */
    tern__counters acceptor_counters __attribute__((aligned(TERN__CACHELINE)));

    /* workers for blocking jobs: name lookups, and PSK store queries */
    tern__pool work;
    tern__pool psk;

    /* signals */
    bool signals;
    pthread_t signal_thread;
    bool signal_thread_started;
    uint32_t signal_drain_ms;
    tern_reload_fn on_reload;
    void *reload_user;
    tern_reload_fn on_usr1;
    void *usr1_user;
};

void tern__runtime_seterr(tern_runtime *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int tern__workers_start(tern_runtime *rt); /* both pools */
void tern__workers_join(tern_runtime *rt);

#endif

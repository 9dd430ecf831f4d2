/* SPDX-License-Identifier: MIT */
/*
 * The runtime: it creates the reactors, the acceptor and the workers, starts and stops their
 * threads, and owns the signal thread of `tern_runtime_stop_on_signals`.
 *
 * Set-up (new, options, signals) happens on one thread before start. After start, the shared
 * mutable state is `stopping`/`drain_ms` (atomics), the rings, and the servers (which may be
 * added and closed while the runtime runs: acceptor.c, under servers_lock).
 */
#include "reactor.h"
#include "rt.h"
#include "server.h"

#include <tern/error.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tern_runtime_options_init(tern_runtime_options *o)
{
    memset(o, 0, sizeof(*o));
    o->reactors = 0;
    o->pin_cpus = false;
    o->mailbox_capacity = 8192;
    o->handoff_capacity = 4096;
    o->workers = 2;
    o->psk_workers = 2;
    o->psk_queue_capacity = 1024;
    o->emfile_backoff_ms = 100;
}

void tern__runtime_seterr(tern_runtime *rt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt->errstr, sizeof(rt->errstr), fmt, ap);
    va_end(ap);
}

const char *tern_runtime_error_string(const tern_runtime *rt)
{
    return rt != NULL ? rt->errstr : "";
}

tern_runtime *tern_runtime_new(const tern_runtime_options *o)
{
    tern_runtime *rt = aligned_alloc(TERN__CACHELINE, (sizeof(*rt) + TERN__CACHELINE - 1) /
                                                          TERN__CACHELINE * TERN__CACHELINE);
    if (rt == NULL) {
        return NULL;
    }
    memset(rt, 0, sizeof(*rt));
    if (o != NULL) {
        rt->opts = *o;
    } else {
        tern_runtime_options_init(&rt->opts);
    }
    if (tern__servers_lock_init(rt) < 0) {
        free(rt);
        return NULL;
    }
    return rt;
}

static int validate(tern_runtime *rt)
{
    const tern_runtime_options *o = &rt->opts;

    if (o->reactors > TERN_MAX_REACTORS) {
        tern__runtime_seterr(rt, "reactors: %u is out of range 1..%d (0 = online CPUs)",
                             o->reactors, TERN_MAX_REACTORS);
        return TERN_EINVAL;
    }
    if (o->mailbox_capacity < 16 || o->mailbox_capacity > (1u << 20)) {
        tern__runtime_seterr(rt, "mailbox_capacity: %u is out of range 16..%u",
                             o->mailbox_capacity, 1u << 20);
        return TERN_EINVAL;
    }
    if (o->handoff_capacity < 16 || o->handoff_capacity > (1u << 20)) {
        tern__runtime_seterr(rt, "handoff_capacity: %u is out of range 16..%u",
                             o->handoff_capacity, 1u << 20);
        return TERN_EINVAL;
    }
    if (o->workers < 1 || o->workers > 64) {
        tern__runtime_seterr(rt, "workers: %u is out of range 1..64", o->workers);
        return TERN_EINVAL;
    }
    if (o->psk_workers > 256) {
        tern__runtime_seterr(rt, "psk_workers: %u is out of range 0..256", o->psk_workers);
        return TERN_EINVAL;
    }
    if (o->psk_queue_capacity < 16 || o->psk_queue_capacity > (1u << 20)) {
        tern__runtime_seterr(rt, "psk_queue_capacity: %u is out of range 16..%u",
                             o->psk_queue_capacity, 1u << 20);
        return TERN_EINVAL;
    }
    if (o->emfile_backoff_ms < 1 || o->emfile_backoff_ms > 60000) {
        tern__runtime_seterr(rt, "emfile_backoff_ms: %u is out of range 1..60000",
                             o->emfile_backoff_ms);
        return TERN_EINVAL;
    }
    return 0;
}

/* ---- workers: blocking jobs off the reactors ------------------------------------------------ */

#define WORK_QUEUE_SIZE 4096

int tern__workers_start(tern_runtime *rt)
{
    int rc = tern__pool_start(&rt->work, rt->opts.workers, WORK_QUEUE_SIZE, rt->errstr,
                              sizeof(rt->errstr));
    if (rc == 0) {
        rc = tern__pool_start(&rt->psk, rt->opts.psk_workers, rt->opts.psk_queue_capacity,
                              rt->errstr, sizeof(rt->errstr));
    }
    return rc;
}

void tern__workers_join(tern_runtime *rt)
{
    tern__pool_join(&rt->psk);
    tern__pool_join(&rt->work);
}

/* ---- signals ------------------------------------------------------------------------------ */

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGUSR1);
}

static void *signal_main(void *arg)
{
    tern_runtime *rt = arg;
    sigset_t set;
    struct timespec tick = {0, 200 * 1000000};

    signal_set(&set);
    while (!atomic_load(&rt->all_exited)) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            tern_runtime_stop(rt, rt->signal_drain_ms);
        } else if (sig == SIGHUP && rt->on_reload != NULL) {
            rt->on_reload(rt, rt->reload_user);
        } else if (sig == SIGUSR1 && rt->on_usr1 != NULL) {
            rt->on_usr1(rt, rt->usr1_user);
        }
    }
    return NULL;
}

int tern_runtime_stop_on_signals(tern_runtime *rt, uint32_t drain_ms, tern_reload_fn on_reload,
                                 void *user)
{
    sigset_t set;

    if (rt == NULL) {
        return TERN_EINVAL;
    }
    if (rt->started) {
        return TERN_EBUSY;
    }
    signal_set(&set);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) {
        return -rc;
    }
    /* An ignored signal is discarded before sigwait could see it (a shell starts background
     * jobs with SIGINT ignored): take the default action back; blocked, it never runs. */
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        struct sigaction sa;
        if (sigaction(sigs[i], NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
            sa.sa_handler = SIG_DFL;
            sigaction(sigs[i], &sa, NULL);
        }
    }
    rt->signals = true;
    rt->signal_drain_ms = drain_ms;
    rt->on_reload = on_reload;
    rt->reload_user = user;
    return 0;
}

int tern_runtime_on_usr1(tern_runtime *rt, tern_reload_fn fn, void *user)
{
    if (rt == NULL) {
        return TERN_EINVAL;
    }
    if (rt->started) {
        return TERN_EBUSY;
    }
    rt->on_usr1 = fn;
    rt->usr1_user = user;
    return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int tern_runtime_start(tern_runtime *rt)
{
    int rc;

    if (rt == NULL) {
        return TERN_EINVAL;
    }
    if (rt->started) {
        tern__runtime_seterr(rt, "already started");
        return TERN_EBUSY;
    }
    if ((rc = validate(rt)) < 0) {
        return rc;
    }
    rt->nreactors = rt->opts.reactors;
    if (rt->nreactors == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        rt->nreactors = n > 0 ? (unsigned)(n > TERN_MAX_REACTORS ? TERN_MAX_REACTORS : n) : 1;
    }
    rt->reactors = calloc(rt->nreactors, sizeof(*rt->reactors));
    if (rt->reactors == NULL) {
        return TERN_ENOMEM;
    }
    for (unsigned i = 0; i < rt->nreactors; i++) {
        if ((rt->reactors[i] = tern__reactor_new(rt, i)) == NULL) {
            tern__runtime_seterr(rt, "reactor %u: out of memory", i);
            rc = TERN_ENOMEM;
            goto fail;
        }
    }
    if ((rc = tern__servers_prepare(rt)) < 0) {
        goto fail;
    }
    rt->started = true;
    if ((rc = tern__workers_start(rt)) < 0) {
        goto fail_threads;
    }
    for (unsigned i = 0; i < rt->nreactors; i++) {
        if ((rc = tern__reactor_start(rt->reactors[i])) < 0) {
            tern__runtime_seterr(rt, "reactor thread %u: %s", i, tern_strerror(rc));
            goto fail_threads;
        }
    }
    if ((rc = tern__acceptor_start(rt)) < 0) {
        goto fail_threads;
    }
    if (rt->signals) {
        rc = pthread_create(&rt->signal_thread, NULL, signal_main, rt);
        if (rc != 0) {
            rc = -rc;
            tern__runtime_seterr(rt, "signal thread: %s", tern_strerror(rc));
            goto fail_threads;
        }
        rt->signal_thread_started = true;
    }
    return 0;

fail_threads:
    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);
    return rc;
fail:
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__reactor_free(rt->reactors[i]);
    }
    free(rt->reactors);
    rt->reactors = NULL;
    rt->nreactors = 0;
    return rc;
}

int tern_runtime_stop(tern_runtime *rt, uint32_t drain_ms)
{
    if (rt == NULL || !rt->started) {
        return TERN_EINVAL;
    }
    /* the first stop sets the deadline; later ones abort at once */
    if (atomic_load(&rt->stopping) == 0) {
        atomic_store(&rt->drain_ms, drain_ms);
    }
    atomic_fetch_add(&rt->stopping, 1);
    tern__acceptor_stop(rt);
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__reactor_wake(rt->reactors[i]);
    }
    return 0;
}

bool tern_runtime_is_stopping(const tern_runtime *rt)
{
    return rt != NULL && atomic_load(&rt->stopping) > 0;
}

int tern_runtime_join(tern_runtime *rt)
{
    if (rt == NULL || !rt->started) {
        return TERN_EINVAL;
    }
    if (rt->joined) {
        return 0;
    }
    tern__acceptor_join(rt);
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__reactor_join(rt->reactors[i]);
    }
    tern__workers_join(rt);
    tern__acceptor_join(rt); /* one a server started while the runtime ran */
    /* jobs handed back may have posted nothing more; run leftovers once again */
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__reactor_join(rt->reactors[i]);
    }
    atomic_store(&rt->all_exited, true);
    if (rt->signal_thread_started) {
        pthread_join(rt->signal_thread, NULL);
        rt->signal_thread_started = false;
    }
    rt->joined = true;
    return 0;
}

int tern_runtime_run(tern_runtime *rt)
{
    int rc = tern_runtime_start(rt);
    if (rc < 0) {
        return rc;
    }
    return tern_runtime_join(rt);
}

void tern_runtime_free(tern_runtime *rt)
{
    if (rt == NULL) {
        return;
    }
    if (rt->started && !rt->joined) {
        tern_runtime_stop(rt, 0);
        tern_runtime_join(rt);
    }
    tern__servers_free(rt);
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__reactor_free(rt->reactors[i]);
    }
    free(rt->reactors);
    tern__pool_destroy(&rt->psk);
    tern__pool_destroy(&rt->work);
    tern__servers_lock_destroy(rt);
    free(rt);
}

unsigned tern_runtime_reactor_count(const tern_runtime *rt)
{
    return rt != NULL ? rt->nreactors : 0;
}

tern_reactor *tern_runtime_reactor(tern_runtime *rt, unsigned i)
{
    if (rt == NULL || i >= rt->nreactors) {
        return NULL;
    }
    return rt->reactors[i];
}

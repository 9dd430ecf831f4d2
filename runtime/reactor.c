/* SPDX-License-Identifier: MIT */
/*
 * A reactor: one libev loop on one thread, and everything it owns (sockets, timers, actors).
 *
 * Each loop turn: libev polls; I/O and timer callbacks run; then the check watcher runs the
 * deferred list (events that must not fire inside the API call that caused them). The wake
 * watcher (ev_async) drains, in order: the stop request, the hand-off ring of accepted
 * descriptors, then up to one mailbox-full of tasks; if tasks remain it wakes itself again,
 * so I/O is never starved by a flood of messages.
 *
 * Stop: `tern_runtime_stop` bumps rt->stopping and wakes every reactor. A reactor then drains
 * (its sockets may finish on their own until the deadline, then are aborted) or, on a second
 * stop / a zero deadline, aborts its sockets at once; the loop exits when no socket is left
 * and no deferred work remains.
 */
#include "reactor.h"
#include "rt.h"
#include "server.h"
#include "socket.h"

#include <malloc.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static _Thread_local tern_reactor *current_reactor;

tern_reactor *tern_reactor_current(void)
{
    return current_reactor;
}

void tern__reactor_set_current(tern_reactor *r)
{
    current_reactor = r;
}

bool tern__on_owner(const tern_reactor *r)
{
    return current_reactor == r;
}

/* ---- the owner check (owner.h) ------------------------------------------------------------- */

bool tern__owner_ok(const tern_reactor *r)
{
    if (current_reactor == r) {
        return true;
    }
    /* A runtime's reactor that stopped for good: its objects belong to the joining thread. The
     * flag is atomic, so asking from a wrong thread is itself no race. */
    return !r->standalone && atomic_load_explicit(&r->mailbox.closed, memory_order_acquire);
}

void tern__owner_fail(const tern_reactor *r, const char *func)
{
    const tern_reactor *cur = current_reactor;
    char here[48];

    if (cur == NULL) {
        snprintf(here, sizeof(here), "a thread that runs no reactor");
    } else {
        snprintf(here, sizeof(here), "the thread of reactor %u", cur->index);
    }
    fprintf(stderr,
            "tern: %s: called on %s, but the object belongs to %sreactor %u: @thread owner "
            "functions must run on the owner's thread (post a task with tern_reactor_post)\n",
            func, here, r->standalone ? "the standalone " : "", r->index);
    fflush(stderr);
    abort();
}

unsigned tern_reactor_index(const tern_reactor *r)
{
    return r->index;
}

tern_runtime *tern_reactor_runtime(const tern_reactor *r)
{
    return r->rt;
}

uint64_t tern_reactor_now_ms(const tern_reactor *r)
{
    TERN_ASSERT_OWNER(r);
    return (uint64_t)(ev_now(r->loop) * 1000.0);
}

/* ---- deferred calls ---------------------------------------------------------------------- */

void tern__reactor_defer(tern_reactor *r, tern__deferred *d)
{
    if (d->queued) {
        return;
    }
    d->queued = true;
    d->next = NULL;
    if (r->deferred_tail != NULL) {
        r->deferred_tail->next = d;
    } else {
        r->deferred_head = d;
    }
    r->deferred_tail = d;
    /* an active idle watcher makes the next poll non-blocking */
    ev_idle_start(r->loop, &r->deferred_idle);
}

static void run_deferred(tern_reactor *r)
{
    /* Calls deferred while running go to the list's end and run in this pass too; each
     * entry is dequeued before it runs so it may re-queue itself. Bounded per pass so a
     * callback that always re-defers cannot freeze the loop. */
    for (unsigned budget = 65536; r->deferred_head != NULL && budget > 0; budget--) {
        tern__deferred *d = r->deferred_head;
        r->deferred_head = d->next;
        if (r->deferred_head == NULL) {
            r->deferred_tail = NULL;
        }
        d->queued = false;
        d->next = NULL;
        d->fn(d);
    }
    if (r->deferred_head == NULL) {
        ev_idle_stop(r->loop, &r->deferred_idle);
        if (r->draining && r->nsockets == 0) {
            ev_break(r->loop, EVBREAK_ALL);
        }
    }
}

static void on_check(struct ev_loop *loop, ev_check *w, int revents)
{
    run_deferred(w->data);
}

static void on_idle(struct ev_loop *loop, ev_idle *w, int revents)
{
    run_deferred(w->data);
}

/* ---- stop and drain ------------------------------------------------------------------------ */

static void on_drain_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    tern_reactor *r = w->data;
    tern__reactor_abort_all(r);
}

void tern__reactor_socket_closed(tern_reactor *r)
{
    r->nsockets--;
    if (r->draining && r->nsockets == 0) {
        /* exit once the deferred events (disconnected...) are delivered */
        ev_idle_start(r->loop, &r->deferred_idle);
    }
}

static void handle_stop(tern_reactor *r, int stops)
{
    uint32_t drain_ms = atomic_load(&r->rt->drain_ms);

    if (!r->draining) {
        r->draining = true;
        tern__server_reactor_stop(r);
    }
    if (stops > 1 || drain_ms == 0) {
        ev_timer_stop(r->loop, &r->drain_timer);
        tern__reactor_abort_all(r);
    } else if (!ev_is_active(&r->drain_timer)) {
        ev_timer_set(&r->drain_timer, drain_ms / 1000.0, 0.0);
        ev_timer_start(r->loop, &r->drain_timer);
    }
    ev_idle_start(r->loop, &r->deferred_idle); /* re-check the exit condition */
}

/* ---- wake-up: stop requests, accepted descriptors, tasks ----------------------------------- */

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    tern_reactor *r = w->data;
    int stops = atomic_load(&r->rt->stopping);
    struct tern__handoff h;
    struct tern__task t;
    uint64_t budget = r->rt->opts.mailbox_capacity;

    if (r->standalone && atomic_load(&r->stop_requested)) {
        ev_break(r->loop, EVBREAK_ALL);
    }
    if (stops > r->seen_stops) {
        r->seen_stops = stops;
        handle_stop(r, stops);
    }
    while (tern__handoff_take_sc(&r->mailbox, &h)) {
        tern__server_adopt(r, &h);
    }
    uint64_t ran = 0;
    while (ran < budget && tern__mailbox_take_sc(&r->mailbox, &t)) {
        tern__task_run(r, &t);
        ran++;
    }
    tern__count(&r->counters.tasks_run, ran);
    if (ran == budget) {
        ev_async_send(r->loop, &r->wake); /* maybe more: continue after this turn's I/O */
    }
    /* Stopped at an empty or not yet published slot: the producer of that slot wakes us
     * once it has published, so there is nothing to poll. */
}

static int post(tern_reactor *r, const struct tern__task *t)
{
    int rc = tern__mailbox_post_mp(&r->mailbox, t);
    if (rc == TERN_E_QUEUE_FULL) {
        atomic_fetch_add_explicit(&r->counters.mailbox_full, 1, memory_order_relaxed);
        return rc;
    }
    if (rc == 0) {
        ev_async_send(r->loop, &r->wake);
    }
    return rc;
}

int tern_reactor_post(tern_reactor *r, tern_task_fn fn, void *arg)
{
    if (r == NULL || fn == NULL) {
        return TERN_EINVAL;
    }
    struct tern__task t = {fn, NULL, arg, NULL};
    return post(r, &t);
}

int tern__reactor_post2(tern_reactor *r, tern__task2_fn fn, void *arg, void *arg2)
{
    struct tern__task t = {NULL, fn, arg, arg2};
    return post(r, &t);
}

void tern__reactor_wake(tern_reactor *r)
{
    ev_async_send(r->loop, &r->wake);
}

/* ---- life cycle -------------------------------------------------------------------------- */

/* glibc keeps the chunks a hibernation frees (9-15 KiB of TLS objects a connection) resident
 * when long-lived objects sit between them, and only trims the top of a heap by itself:
 * malloc_trim releases every whole free page (MADV_DONTNEED). Measured with 5,000 idle
 * tern-echo connections hibernated: see docs/design/hibernation.md, section 10. One call a
 * second at most per reactor, one second after the first release since the last: a wave of
 * hibernations costs one walk of the free chunks, not one per connection. */
static void on_trim(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    (void)malloc_trim(0);
}

void *tern_reactor_mem_alloc(tern_reactor *r, size_t n)
{
    TERN_ASSERT_OWNER(r);
    void *p = r != NULL ? tern__slab_alloc(&r->slab, n) : NULL;
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

void tern_reactor_mem_free(tern_reactor *r, void *p)
{
    TERN_ASSERT_OWNER(r);
    if (r != NULL) {
        tern__slab_free(&r->slab, p);
    }
}

void *tern__reactor_layer_state(tern_reactor *r)
{
    TERN_ASSERT_OWNER(r);
    return r->layer_state;
}

void tern__reactor_set_layer_state(tern_reactor *r, void *state, void (*free_fn)(void *))
{
    TERN_ASSERT_OWNER(r);
    r->layer_state = state;
    r->layer_state_free = free_fn;
}

void tern__reactor_released(tern_reactor *r)
{
    if (!ev_is_active(&r->trim_timer)) {
        ev_timer_set(&r->trim_timer, 1.0, 0.0);
        ev_timer_start(r->loop, &r->trim_timer);
    }
}

tern_reactor *tern__reactor_new(tern_runtime *rt, unsigned index)
{
    tern_reactor *r = aligned_alloc(TERN__CACHELINE, sizeof(*r) + TERN__CACHELINE -
                                                         sizeof(*r) % TERN__CACHELINE);
    if (r == NULL) {
        return NULL;
    }
    memset(r, 0, sizeof(*r));
    r->rt = rt;
    r->index = index;
    tern__list_init(&r->sockets);
    tern__list_init(&r->actors);
    r->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (r->loop == NULL || tern__mailbox_init(&r->mailbox, rt->opts.mailbox_capacity,
                                              rt->opts.handoff_capacity) < 0) {
        tern__reactor_free(r);
        return NULL;
    }
    ev_async_init(&r->wake, on_wake);
    r->wake.data = r;
    ev_async_start(r->loop, &r->wake);
    ev_check_init(&r->deferred_check, on_check);
    r->deferred_check.data = r;
    ev_check_start(r->loop, &r->deferred_check);
    ev_idle_init(&r->deferred_idle, on_idle);
    r->deferred_idle.data = r;
    ev_init(&r->drain_timer, on_drain_deadline);
    r->drain_timer.data = r;
    r->secrets.secret = true;
    ev_init(&r->trim_timer, on_trim);
    r->trim_timer.data = r;
    return r;
}

static void *reactor_main(void *arg)
{
    tern_reactor *r = arg;

    current_reactor = r;
    if (r->rt->opts.pin_cpus) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET((int)(r->index % (unsigned)(ncpu > 0 ? ncpu : 1)), &set);
        (void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set); /* advisory */
    }
    tern__server_reactor_start(r);
    /* a stop that came before this thread ran */
    on_wake(r->loop, &r->wake, 0);
    ev_run(r->loop, 0);

    tern__actors_reactor_stopped(r);
    atomic_store_explicit(&r->mailbox.closed, 1, memory_order_release);
    r->stopped = true;
    current_reactor = NULL;
    return NULL;
}

int tern__reactor_start(tern_reactor *r)
{
    int rc = pthread_create(&r->thread, NULL, reactor_main, r);
    if (rc != 0) {
        return -rc;
    }
    r->thread_started = true;
    return 0;
}

void tern__reactor_join(tern_reactor *r)
{
    struct tern__task t;
    struct tern__handoff h;

    if (r->thread_started) {
        pthread_join(r->thread, NULL);
        r->thread_started = false;
    }
    atomic_store_explicit(&r->mailbox.closed, 1, memory_order_release);
    /* nothing is dropped silently: leftovers release their memory */
    while (tern__handoff_take_sc(&r->mailbox, &h)) {
        close(h.fd);
        tern__server_free_fd(h.srv, r->index);
    }
    while (tern__mailbox_take_sc(&r->mailbox, &t)) {
        tern__task_run(NULL, &t);
    }
}

void tern__reactor_free(tern_reactor *r)
{
    if (r == NULL) {
        return;
    }
    tern__reactor_chunks_free(r);
    if (r->layer_state != NULL && r->layer_state_free != NULL) {
        r->layer_state_free(r->layer_state); /* every socket of the reactor is gone */
    }
    tern__slab_destroy(&r->slab);
    tern__slab_destroy(&r->secrets);
    if (r->loop != NULL) {
        ev_loop_destroy(r->loop);
    }
    tern__mailbox_destroy(&r->mailbox);
    free(r);
}

/* ---- timers ------------------------------------------------------------------------------ */

struct tern_timer {
    ev_timer w;
    tern_reactor *r;
    tern_timer_fn fn;
    void *user;
    bool in_callback;
    bool free_requested;
};

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tern_timer *t = container_of(w, tern_timer, w);

    t->in_callback = true;
    t->fn(t, t->user);
    t->in_callback = false;
    if (t->free_requested) {
        free(t);
    }
}

tern_timer *tern_timer_new(tern_reactor *r, tern_timer_fn fn, void *user)
{
    TERN_ASSERT_OWNER(r);
    if (r == NULL || fn == NULL) {
        return NULL;
    }
    tern_timer *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    ev_init(&t->w, on_timer);
    t->r = r;
    t->fn = fn;
    t->user = user;
    return t;
}

tern_reactor *tern__timer_reactor(const tern_timer *t)
{
    return t != NULL ? t->r : NULL;
}

int tern_timer_start(tern_timer *t, uint64_t after_ms, uint64_t repeat_ms)
{
    TERN_ASSERT_OWNER(t);
    if (t == NULL) {
        return TERN_EINVAL;
    }
    ev_timer_stop(t->r->loop, &t->w);
    ev_timer_set(&t->w, (double)after_ms / 1000.0, (double)repeat_ms / 1000.0);
    ev_timer_start(t->r->loop, &t->w);
    return 0;
}

void tern_timer_stop(tern_timer *t)
{
    TERN_ASSERT_OWNER(t);
    if (t != NULL) {
        ev_timer_stop(t->r->loop, &t->w);
    }
}

void tern_timer_free(tern_timer *t)
{
    TERN_ASSERT_OWNER(t);
    if (t == NULL) {
        return;
    }
    ev_timer_stop(t->r->loop, &t->w);
    if (t->in_callback) {
        t->free_requested = true;
    } else {
        free(t);
    }
}

/* ---- standalone reactors --------------------------------------------------------------------- */

tern_reactor *tern_reactor_new(void)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    o.workers = 1;
    o.psk_workers = 1;
    tern_runtime *rt = tern_runtime_new(&o);
    if (rt == NULL) {
        return NULL;
    }
    rt->standalone = true;
    rt->nreactors = 1;
    rt->reactors = calloc(1, sizeof(*rt->reactors));
    if (rt->reactors == NULL || (rt->reactors[0] = tern__reactor_new(rt, 0)) == NULL) {
        tern_runtime_free(rt);
        return NULL;
    }
    tern_reactor *r = rt->reactors[0];
    r->standalone = true;
    if (tern__workers_start(rt) < 0) {
        tern__workers_join(rt);
        tern_runtime_free(rt);
        return NULL;
    }
    current_reactor = r;
    return r;
}

void tern_reactor_free(tern_reactor *r)
{
    if (r == NULL || !r->standalone) {
        return;
    }
    TERN_ASSERT_OWNER(r);
    tern_runtime *rt = r->rt;
    tern__reactor_abort_all(r);
    run_deferred(r);
    tern__workers_join(rt);    /* lookups in flight come back canceled */
    tern__reactor_join(r);     /* what is still queued runs with a NULL reactor */
    if (current_reactor == r) {
        current_reactor = NULL;
    }
    tern_runtime_free(rt);     /* frees the reactor too */
}

int tern_reactor_run(tern_reactor *r)
{
    TERN_ASSERT_OWNER(r);
    if (r == NULL || !r->standalone || current_reactor != r) {
        return TERN_EINVAL;
    }
    atomic_store(&r->stop_requested, false);
    ev_run(r->loop, 0);
    return 0;
}

static void on_run_once_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
}

int tern_reactor_run_once(tern_reactor *r, uint32_t timeout_ms)
{
    ev_timer t;

    TERN_ASSERT_OWNER(r);
    if (r == NULL || current_reactor != r) {
        return TERN_EINVAL;
    }
    ev_timer_init(&t, on_run_once_timeout, timeout_ms / 1000.0, 0.0);
    ev_timer_start(r->loop, &t);
    ev_run(r->loop, EVRUN_ONCE);
    ev_timer_stop(r->loop, &t);
    return 0;
}

void tern_reactor_stop(tern_reactor *r)
{
    if (r == NULL) {
        return;
    }
    if (r->standalone) {
        atomic_store(&r->stop_requested, true);
        ev_async_send(r->loop, &r->wake);
    }
}

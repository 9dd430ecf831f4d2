/* SPDX-License-Identifier: MIT */
/*
 * Mailboxes, actors and timers (runtime.h, actor.h): many producers into one reactor with
 * exactly-once, per-producer-ordered delivery; the full-mailbox error path and its counter;
 * posts after stop; tasks still queued at stop run with r == NULL; actors receiving from two
 * threads, stopping, and refusing or handing back late messages; timers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

/* ---- fixture --------------------------------------------------------------------------- */

#define PRODUCERS 4
#define MAX_THREADS 8

typedef struct fixture {
    tern_runtime *rt;
    bool started, joined;
    pthread_t threads[MAX_THREADS];
    int nthreads;
    pthread_t main_thread;
} fixture;

/* Consumer-side state of the tests below. Plain fields are touched only on the reactor
 * thread; the test thread reads them after an atomic it waited on. */
static struct consumer {
    uint32_t next_seq[PRODUCERS];
    _Atomic uint64_t delivered;
    _Atomic uint64_t order_errors;
    _Atomic uint64_t wrong_thread;
    _Atomic uint64_t null_runs;
    _Atomic int blocker_entered;
    _Atomic int blocker_release;
    _Atomic uint64_t noop_ran;
    _Atomic int abort;          /* set by teardown: producer threads stop posting */
} g;

static int setup(void **state)
{
    memset(&g, 0, sizeof g);
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    f->main_thread = pthread_self();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    atomic_store(&g.blocker_release, 1); /* never leave a reactor blocked */
    atomic_store(&g.abort, 1);           /* nor a thread posting */
    for (int i = 0; i < f->nthreads; i++) {
        pthread_join(f->threads[i], NULL);
    }
    if (f->rt != NULL) {
        if (f->started && !f->joined) {
            tern_runtime_stop(f->rt, 0);
            tern_runtime_join(f->rt);
        }
        tern_runtime_free(f->rt);
    }
    free(f);
    return 0;
}

static tern_reactor *start_runtime(fixture *f, unsigned reactors, unsigned mailbox)
{
    f->rt = ts_runtime_new(reactors, mailbox);
    assert_non_null(f->rt);
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("tern_runtime_start: %s: %s", tern_err_name(rc),
                 tern_runtime_error_string(f->rt));
    }
    f->started = true;
    assert_int_equal(tern_runtime_reactor_count(f->rt), reactors);
    tern_reactor *r = tern_runtime_reactor(f->rt, 0);
    assert_non_null(r);
    return r;
}

static void stop_and_join(fixture *f, uint32_t drain_ms)
{
    assert_int_equal(tern_runtime_stop(f->rt, drain_ms), 0);
    assert_int_equal(tern_runtime_join(f->rt), 0);
    f->joined = true;
}

static void spawn(fixture *f, void *(*fn)(void *), void *arg)
{
    assert_true(f->nthreads < MAX_THREADS);
    assert_int_equal(pthread_create(&f->threads[f->nthreads], NULL, fn, arg), 0);
    f->nthreads++;
}

static void join_threads(fixture *f)
{
    for (int i = 0; i < f->nthreads; i++) {
        pthread_join(f->threads[i], NULL);
    }
    f->nthreads = 0;
}

/* A task that holds its reactor until the test releases it (10 s at most). */
static void blocker_task(tern_reactor *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_store(&g.blocker_entered, 1);
    uint64_t deadline = ts_now_ms() + 10000;
    while (!atomic_load(&g.blocker_release) && ts_now_ms() < deadline) {
        ts_sleep_ms(1);
    }
}

static void block_reactor(tern_reactor *r)
{
    atomic_store(&g.blocker_entered, 0);
    atomic_store(&g.blocker_release, 0);
    assert_int_equal(tern_reactor_post(r, blocker_task, NULL), 0);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&g.blocker_entered) != 0, 5000);
    assert_true(ok);
}

static void noop_task(tern_reactor *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_fetch_add(&g.noop_ran, 1);
}

/* ---- many producers, one consumer ------------------------------------------------------- */

#define MSG(id, seq) ((void *)(((uintptr_t)(id) + 1) << 32 | (uintptr_t)(seq)))

static void consume_task(tern_reactor *r, void *arg)
{
    if (r == NULL) {
        atomic_fetch_add(&g.null_runs, 1);
        return;
    }
    if (tern_reactor_current() != r || tern_reactor_index(r) != 0) {
        atomic_fetch_add(&g.wrong_thread, 1);
    }
    uintptr_t v = (uintptr_t)arg;
    unsigned id = (unsigned)(v >> 32) - 1;
    uint32_t seq = (uint32_t)v;
    if (id >= PRODUCERS || seq != g.next_seq[id]) {
        atomic_fetch_add(&g.order_errors, 1);
    }
    if (id < PRODUCERS) {
        g.next_seq[id] = seq + 1;
    }
    atomic_fetch_add(&g.delivered, 1);
}

typedef struct producer {
    tern_reactor *r;
    unsigned id;
    uint32_t n;
    _Atomic int *go;
    uint64_t full;     /* TERN_E_QUEUE_FULL answers seen */
    _Atomic uint32_t posted;
    _Atomic int done;
    int error;         /* first unexpected code */
} producer;

static void *producer_main(void *arg)
{
    producer *p = arg;
    while (!atomic_load(p->go)) {
        sched_yield();
    }
    uint64_t deadline = ts_now_ms() + 60000;
    for (uint32_t seq = 0; seq < p->n && !atomic_load(&g.abort); seq++) {
        for (;;) {
            int rc = tern_reactor_post(p->r, consume_task, MSG(p->id, seq));
            if (rc == 0) {
                atomic_fetch_add(&p->posted, 1);
                break;
            }
            if (rc != TERN_E_QUEUE_FULL) {
                p->error = rc;
                goto out;
            }
            p->full++;
            if (ts_now_ms() > deadline || atomic_load(&g.abort)) {
                p->error = -ETIMEDOUT;
                goto out;
            }
            sched_yield();
        }
    }
out:
    atomic_store(&p->done, 1);
    return NULL;
}

/* PRODUCERS threads post @p n tasks each; every task must arrive exactly once, in order per
 * producer, within @p budget_ms: tern_reactor_post "never blocks", so a producer preempted in
 * the middle of a post must not hold up the others. */
static void run_producers(fixture *f, uint32_t n, unsigned budget_ms)
{
    tern_reactor *r = start_runtime(f, 1, 0);
    static _Atomic int go;
    static producer p[PRODUCERS]; /* outlives this function: teardown joins the threads */
    atomic_store(&go, 0);
    for (unsigned i = 0; i < PRODUCERS; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].r = r;
        p[i].id = i;
        p[i].n = n;
        p[i].go = &go;
        spawn(f, producer_main, &p[i]);
    }
    uint64_t t0 = ts_now_ms();
    atomic_store(&go, 1);
    /* tern_reactor_post "never blocks": the producers must be done within the budget */
    bool ok;
    TS_WAIT_UNTIL(ok,
                  atomic_load(&p[0].done) && atomic_load(&p[1].done) && atomic_load(&p[2].done) &&
                      atomic_load(&p[3].done),
                  budget_ms);
    uint64_t took = ts_now_ms() - t0;
    if (!ok) {
        uint64_t posted = 0;
        for (unsigned i = 0; i < PRODUCERS; i++) {
            posted += atomic_load(&p[i].posted);
        }
        atomic_store(&g.abort, 1);
        fail_msg("%u producers posted only %llu of %llu tasks in %llu ms (%.0f posts/s); "
                 "delivered %llu",
                 PRODUCERS, (unsigned long long)posted, (unsigned long long)n * PRODUCERS,
                 (unsigned long long)took, posted * 1000.0 / (double)(took ? took : 1),
                 (unsigned long long)atomic_load(&g.delivered));
    }
    join_threads(f);
    ts_log("%u x %u posts in %llu ms", PRODUCERS, n, (unsigned long long)took);

    uint64_t full = 0;
    for (unsigned i = 0; i < PRODUCERS; i++) {
        if (p[i].error != 0) {
            fail_msg("producer %u: %s after %u posts", i, tern_err_name(p[i].error),
                     p[i].posted);
        }
        assert_int_equal(atomic_load(&p[i].posted), n);
        full += p[i].full;
    }
    const uint64_t total = (uint64_t)n * PRODUCERS;
    assert_true(ts_wait_u64_ge(&g.delivered, total, 30000));
    ts_sleep_ms(20); /* a duplicate would show up now */
    assert_int_equal(atomic_load(&g.delivered), total);
    assert_int_equal(atomic_load(&g.order_errors), 0);
    assert_int_equal(atomic_load(&g.wrong_thread), 0);
    assert_int_equal(atomic_load(&g.null_runs), 0);
    for (unsigned i = 0; i < PRODUCERS; i++) {
        assert_int_equal(g.next_seq[i], n);
    }

    tern_stats st = ts_stats(f->rt);
    ts_log("%llu tasks, %llu full answers, stats: tasks_run=%llu mailbox_full=%llu",
           (unsigned long long)total, (unsigned long long)full,
           (unsigned long long)st.tasks_run, (unsigned long long)st.mailbox_full);
    assert_true(st.tasks_run >= total);
    assert_int_equal(st.mailbox_full, full);
    assert_int_equal(st.mailbox_depth, 0);
    stop_and_join(f, 0);
}

static void test_mailbox__producers_deliver_exactly_once_in_order(void **state)
{
    run_producers(*state, 50000, TS_SCALE(20000, 60000));
}

/* ---- a full mailbox ---------------------------------------------------------------------- */

/* Blocks the only reactor of a runtime made with @p capacity, posts @p tries tasks and checks
 * that exactly @p holds were queued, the rest refused and counted; then lets them run. */
static void fill_blocked_mailbox(fixture *f, unsigned capacity, int holds, int tries)
{
    tern_reactor *r = start_runtime(f, 1, capacity);
    tern_stats before = ts_stats(f->rt);
    block_reactor(r);

    int ok = 0, full = 0, first_full = -1;
    for (int i = 0; i < tries; i++) {
        int rc = tern_reactor_post(r, noop_task, NULL);
        if (rc == 0) {
            assert_int_equal(first_full, -1); /* nothing is consumed: no room comes back */
            ok++;
        } else {
            assert_int_equal(rc, TERN_E_QUEUE_FULL);
            if (first_full < 0) {
                first_full = i;
            }
            full++;
        }
    }
    ts_log("capacity %u: %d posts queued, %d refused", capacity, ok, full);
    assert_int_equal(ok, holds);
    assert_int_equal(ok + full, tries);

    tern_stats st = ts_stats(f->rt);
    assert_int_equal(st.mailbox_full - before.mailbox_full, (uint64_t)full);
    assert_int_equal(st.mailbox_depth, (uint64_t)ok);
    assert_int_equal(atomic_load(&g.noop_ran), 0);

    atomic_store(&g.blocker_release, 1);
    assert_true(ts_wait_u64_ge(&g.noop_ran, (uint64_t)ok, 5000));
    /* room again */
    assert_int_equal(ts_post(r, noop_task, NULL, 2000), 0);
    assert_true(ts_wait_u64_ge(&g.noop_ran, (uint64_t)ok + 1, 5000));
    ts_sleep_ms(10);
    assert_int_equal(atomic_load(&g.noop_ran), (uint64_t)ok + 1); /* refused posts never run */
    st = ts_stats(f->rt);
    assert_int_equal(st.mailbox_depth, 0);
    stop_and_join(f, 0);
}

static void test_mailbox__full_mailbox_is_an_error_the_sender_sees(void **state)
{
    /* mailbox_capacity is the number of tasks a mailbox holds */
    fill_blocked_mailbox(*state, 16, 16, 40);
}

static void test_mailbox__capacity_rounds_up_to_a_power_of_two(void **state)
{
    fill_blocked_mailbox(*state, 20, 32, 50);
}

/* ---- stop ----------------------------------------------------------------------------- */

static void test_mailbox__post_after_join_is_stopped(void **state)
{
    fixture *f = *state;
    tern_reactor *r = start_runtime(f, 2, 0);
    tern_reactor *r1 = tern_runtime_reactor(f->rt, 1);
    assert_non_null(r1);
    assert_null(tern_runtime_reactor(f->rt, 2));
    assert_ptr_equal(tern_reactor_runtime(r), f->rt);
    assert_int_equal(tern_reactor_index(r1), 1);
    assert_null(tern_reactor_current()); /* the test thread is no reactor */
    assert_false(tern_runtime_is_stopping(f->rt));
    stop_and_join(f, 0);
    assert_true(tern_runtime_is_stopping(f->rt));
    assert_int_equal(tern_reactor_post(r, noop_task, NULL), TERN_E_STOPPED);
    assert_int_equal(tern_reactor_post(r1, noop_task, NULL), TERN_E_STOPPED);
    tern_runtime_free(f->rt);
    f->rt = NULL;
    assert_int_equal(atomic_load(&g.noop_ran), 0);
}

typedef struct late_task {
    uint32_t magic;
    unsigned idx;
} late_task;

#define LATE_K 300
#define LATE_M 100
static _Atomic int late_ran[LATE_K + LATE_M];
static _Atomic uint64_t late_bad;
static pthread_t late_main;

static void late_task_fn(tern_reactor *r, void *arg)
{
    late_task *t = arg;
    if (t->magic != 0x7a5c || t->idx >= LATE_K + LATE_M) {
        atomic_fetch_add(&late_bad, 1);
        return;
    }
    if (r == NULL) {
        atomic_fetch_add(&g.null_runs, 1);
        if (!pthread_equal(pthread_self(), late_main)) {
            atomic_fetch_add(&late_bad, 1); /* r == NULL runs on the joining thread */
        }
    } else if (tern_reactor_current() != r) {
        atomic_fetch_add(&late_bad, 1);
    }
    atomic_fetch_add(&late_ran[t->idx], 1);
    t->magic = 0;
    free(t);
}

static void test_mailbox__tasks_queued_at_stop_run_with_null_reactor(void **state)
{
    fixture *f = *state;
    memset(late_ran, 0, sizeof late_ran);
    atomic_store(&late_bad, 0);
    late_main = pthread_self();
    tern_reactor *r = start_runtime(f, 1, 1024);
    block_reactor(r);

    for (unsigned i = 0; i < LATE_K; i++) {
        late_task *t = malloc(sizeof *t);
        assert_non_null(t);
        *t = (late_task){.magic = 0x7a5c, .idx = i};
        assert_int_equal(tern_reactor_post(r, late_task_fn, t), 0);
    }
    assert_int_equal(tern_runtime_stop(f->rt, 0), 0);
    /* posts between stop and join: each is either queued (then it runs once) or refused */
    bool accepted[LATE_M];
    unsigned n_accepted = 0;
    for (unsigned i = 0; i < LATE_M; i++) {
        late_task *t = malloc(sizeof *t);
        assert_non_null(t);
        *t = (late_task){.magic = 0x7a5c, .idx = LATE_K + i};
        int rc = tern_reactor_post(r, late_task_fn, t);
        accepted[i] = rc == 0;
        if (rc == 0) {
            n_accepted++;
        } else {
            assert_int_equal(rc, TERN_E_STOPPED);
            free(t);
        }
    }
    atomic_store(&g.blocker_release, 1);
    assert_int_equal(tern_runtime_join(f->rt), 0);
    f->joined = true;

    for (unsigned i = 0; i < LATE_K; i++) {
        if (atomic_load(&late_ran[i]) != 1) {
            fail_msg("task %u queued before stop ran %d times", i, atomic_load(&late_ran[i]));
        }
    }
    for (unsigned i = 0; i < LATE_M; i++) {
        assert_int_equal(atomic_load(&late_ran[LATE_K + i]), accepted[i] ? 1 : 0);
    }
    assert_int_equal(atomic_load(&late_bad), 0);
    ts_log("%u queued before stop, %u accepted after stop, %llu ran with r == NULL", LATE_K,
           n_accepted, (unsigned long long)atomic_load(&g.null_runs));
    tern_runtime_free(f->rt);
    f->rt = NULL;
}

/* A task that posts itself again each time it runs on its reactor: the runtime must still
 * stop, and the one instance left queued runs on the joining thread with r == NULL (or its
 * last post was refused). */
typedef struct chain {
    _Atomic uint64_t runs, null_runs, refused, other_errors;
    pthread_t joiner;
} chain;

static void chain_task(tern_reactor *r, void *arg)
{
    chain *c = arg;
    if (r == NULL) {
        atomic_fetch_add(&c->null_runs, 1);
        if (!pthread_equal(pthread_self(), c->joiner)) {
            atomic_fetch_add(&c->other_errors, 1);
        }
        return;
    }
    atomic_fetch_add(&c->runs, 1);
    int rc = tern_reactor_post(r, chain_task, c);
    if (rc == TERN_E_STOPPED) {
        atomic_fetch_add(&c->refused, 1);
    } else if (rc != 0) {
        atomic_fetch_add(&c->other_errors, 1);
    }
}

typedef struct joiner {
    tern_runtime *rt;
    chain *c;
    _Atomic int done;
    int rc;
} joiner;

static void *joiner_main(void *arg)
{
    joiner *j = arg;
    j->c->joiner = pthread_self(); /* read by chain_task on this thread only */
    j->rc = tern_runtime_join(j->rt);
    atomic_store(&j->done, 1);
    return NULL;
}

static void test_mailbox__self_posting_task_does_not_keep_the_reactor_alive(void **state)
{
    fixture *f = *state;
    tern_reactor *r = start_runtime(f, 1, 16);
    static chain c;
    static joiner j;
    memset(&c, 0, sizeof c);
    memset(&j, 0, sizeof j);
    assert_int_equal(tern_reactor_post(r, chain_task, &c), 0);
    assert_true(ts_wait_u64_ge(&c.runs, 100, 5000));
    j.rt = f->rt;
    j.c = &c;
    assert_int_equal(tern_runtime_stop(f->rt, 0), 0);
    spawn(f, joiner_main, &j);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&j.done) != 0, 5000);
    if (!ok) {
        fail_msg("join did not return within 5 s while a task kept posting itself (%llu runs)",
                 (unsigned long long)atomic_load(&c.runs));
    }
    join_threads(f);
    f->joined = true;
    assert_int_equal(j.rc, 0);
    ts_log("chain: %llu runs on the reactor, %llu with r == NULL, %llu refused",
           (unsigned long long)atomic_load(&c.runs), (unsigned long long)atomic_load(&c.null_runs),
           (unsigned long long)atomic_load(&c.refused));
    /* exactly one instance was pending at the end: it ran with NULL or was never queued */
    assert_int_equal(atomic_load(&c.null_runs) + atomic_load(&c.refused), 1);
    assert_int_equal(atomic_load(&c.other_errors), 0);
}

/* ---- actors --------------------------------------------------------------------------- */

#define SENDERS 2
#define ACTOR_MSGS 10000

typedef struct actor_msg {
    unsigned sender;
    uint32_t seq;
} actor_msg;

typedef struct actor_state {
    tern_actor *self;
    uint32_t next[SENDERS];       /* owner thread only */
    _Atomic uint64_t messages;
    _Atomic uint64_t order_errors;
    _Atomic uint64_t wrong_thread;
    _Atomic uint64_t stopped;
    _Atomic uint64_t messages_at_stop;
    _Atomic uint64_t undelivered;
    _Atomic uint64_t after_stop;  /* messages delivered after stopped */
} actor_state;

static void actor_on_message(tern_actor *a, void *msg, void *user)
{
    actor_state *st = user;
    actor_msg *m = msg;
    if (tern_reactor_current() == NULL || tern_reactor_current() != tern_actor_reactor(a)) {
        atomic_fetch_add(&st->wrong_thread, 1);
    }
    if (atomic_load(&st->stopped) != 0) {
        atomic_fetch_add(&st->after_stop, 1);
    }
    if (m->sender >= SENDERS || m->seq != st->next[m->sender]) {
        atomic_fetch_add(&st->order_errors, 1);
    } else {
        st->next[m->sender]++;
    }
    free(m);
    atomic_fetch_add(&st->messages, 1);
}

static void actor_on_stopped(tern_actor *a, void *user)
{
    actor_state *st = user;
    if (tern_reactor_current() != tern_actor_reactor(a)) {
        atomic_fetch_add(&st->wrong_thread, 1);
    }
    atomic_store(&st->messages_at_stop, atomic_load(&st->messages));
    atomic_fetch_add(&st->stopped, 1);
}

static void actor_on_undelivered(tern_actor *a, void *msg, void *user)
{
    (void)a;
    actor_state *st = user;
    free(msg);
    atomic_fetch_add(&st->undelivered, 1);
}

static const tern_actor_events actor_events = {
    .message = actor_on_message,
    .stopped = actor_on_stopped,
    .undelivered = actor_on_undelivered,
};

typedef struct sender {
    tern_actor *a;
    unsigned id;
    uint32_t n;
    int error;
    uint64_t full;
} sender;

static void *sender_main(void *arg)
{
    sender *s = arg;
    uint64_t deadline = ts_now_ms() + 60000;
    for (uint32_t seq = 0; seq < s->n && s->error == 0 && !atomic_load(&g.abort); seq++) {
        actor_msg *m = malloc(sizeof *m);
        if (m == NULL) {
            s->error = TERN_ENOMEM;
            break;
        }
        *m = (actor_msg){.sender = s->id, .seq = seq};
        for (;;) {
            int rc = tern_actor_send(s->a, m);
            if (rc == 0) {
                break;
            }
            if (rc != TERN_E_QUEUE_FULL || ts_now_ms() > deadline) {
                s->error = rc == TERN_E_QUEUE_FULL ? -ETIMEDOUT : rc;
                free(m); /* not sent: still ours */
                break;
            }
            s->full++;
            sched_yield();
        }
    }
    tern_actor_unref(s->a); /* the reference this thread was given */
    return NULL;
}

/* Sends one message after the actor stopped: refused, or handed back through undelivered. */
static void send_after_stop(tern_actor *a, actor_state *st)
{
    actor_msg *m = malloc(sizeof *m);
    assert_non_null(m);
    *m = (actor_msg){.sender = 0, .seq = UINT32_MAX};
    uint64_t before = atomic_load(&st->undelivered);
    int rc = tern_actor_send(a, m);
    if (rc == TERN_E_STOPPED) {
        free(m);
    } else {
        assert_int_equal(rc, 0);
        assert_true(ts_wait_u64_ge(&st->undelivered, before + 1, 5000));
    }
}

static void test_actor__messages_from_two_threads_then_stop(void **state)
{
    fixture *f = *state;
    start_runtime(f, 2, 1024);
    actor_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    tern_actor *a = tern_actor_spawn(f->rt, NULL, &actor_events, st);
    assert_non_null(a);
    st->self = a;
    assert_ptr_equal(tern_actor_user(a), st);
    assert_non_null(tern_actor_reactor(a));
    assert_ptr_equal(tern_reactor_runtime(tern_actor_reactor(a)), f->rt);

    sender s[SENDERS];
    for (unsigned i = 0; i < SENDERS; i++) {
        s[i] = (sender){.a = tern_actor_ref(a), .id = i, .n = ACTOR_MSGS / SENDERS};
        spawn(f, sender_main, &s[i]);
    }
    join_threads(f);
    for (unsigned i = 0; i < SENDERS; i++) {
        if (s[i].error != 0) {
            fail_msg("sender %u: %s", i, tern_err_name(s[i].error));
        }
    }
    assert_int_equal(tern_actor_stop(a), 0);
    assert_true(ts_wait_u64_ge(&st->stopped, 1, 10000));
    /* every message sent before stop was handled before `stopped` */
    assert_int_equal(atomic_load(&st->messages_at_stop), ACTOR_MSGS);
    assert_int_equal(atomic_load(&st->messages), ACTOR_MSGS);
    assert_int_equal(atomic_load(&st->order_errors), 0);
    assert_int_equal(atomic_load(&st->wrong_thread), 0);
    assert_int_equal(atomic_load(&st->undelivered), 0);

    assert_int_equal(tern_actor_stop(a), TERN_E_STOPPED);
    send_after_stop(a, st);
    ts_sleep_ms(10);
    assert_int_equal(atomic_load(&st->stopped), 1);
    assert_int_equal(atomic_load(&st->after_stop), 0);
    assert_int_equal(atomic_load(&st->messages), ACTOR_MSGS);
    tern_actor_unref(a);
    stop_and_join(f, 0);
    free(st);
}

static void test_actor__spawn_without_reactor_balances(void **state)
{
    fixture *f = *state;
    start_runtime(f, 2, 0);
    actor_state st[4];
    memset(st, 0, sizeof st);
    tern_actor *a[4];
    unsigned on[2] = {0, 0};
    for (int i = 0; i < 4; i++) {
        a[i] = tern_actor_spawn(f->rt, NULL, &actor_events, &st[i]);
        assert_non_null(a[i]);
        unsigned idx = tern_reactor_index(tern_actor_reactor(a[i]));
        assert_true(idx < 2);
        on[idx]++;
    }
    ts_log("4 actors spawned without a reactor: %u on reactor 0, %u on reactor 1", on[0], on[1]);
    assert_int_equal(on[0], 2);
    assert_int_equal(on[1], 2);
    /* an explicit reactor is honoured */
    tern_reactor *r1 = tern_runtime_reactor(f->rt, 1);
    actor_state extra;
    memset(&extra, 0, sizeof extra);
    tern_actor *b = tern_actor_spawn(f->rt, r1, &actor_events, &extra);
    assert_non_null(b);
    assert_ptr_equal(tern_actor_reactor(b), r1);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tern_actor_stop(a[i]), 0);
    }
    assert_int_equal(tern_actor_stop(b), 0);
    for (int i = 0; i < 4; i++) {
        assert_true(ts_wait_u64_ge(&st[i].stopped, 1, 5000));
        tern_actor_unref(a[i]);
    }
    assert_true(ts_wait_u64_ge(&extra.stopped, 1, 5000));
    tern_actor_unref(b);
    stop_and_join(f, 0);
}

static void test_actor__runtime_stop_stops_actors(void **state)
{
    fixture *f = *state;
    start_runtime(f, 1, 0);
    actor_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    tern_actor *a = tern_actor_spawn(f->rt, tern_runtime_reactor(f->rt, 0), &actor_events, st);
    assert_non_null(a);
    actor_msg *m = malloc(sizeof *m);
    assert_non_null(m);
    *m = (actor_msg){.sender = 0, .seq = 0};
    assert_int_equal(tern_actor_send(a, m), 0);
    assert_true(ts_wait_u64_ge(&st->messages, 1, 5000));
    stop_and_join(f, 0);
    /* the reactor stopped: so did its actor, and later messages are not lost */
    assert_int_equal(atomic_load(&st->stopped), 1);
    send_after_stop(a, st);
    tern_actor_unref(a);
    tern_runtime_free(f->rt);
    f->rt = NULL;
    free(st);
}

/* ---- timers --------------------------------------------------------------------------- */

typedef struct timer_state {
    tern_reactor *r;
    tern_timer *t;
    unsigned limit;
    uint64_t started_ms;          /* tern_reactor_now_ms() when started */
    _Atomic uint64_t fired;
    _Atomic uint64_t first_fire_after_ms;
    _Atomic uint64_t wrong_thread;
    _Atomic int done;
} timer_state;

static void repeating_cb(tern_timer *t, void *user)
{
    timer_state *ts = user;
    if (tern_reactor_current() != ts->r || t != ts->t) {
        atomic_fetch_add(&ts->wrong_thread, 1);
    }
    uint64_t n = atomic_fetch_add(&ts->fired, 1) + 1;
    if (n == 1) {
        atomic_store(&ts->first_fire_after_ms, tern_reactor_now_ms(ts->r) - ts->started_ms);
    }
    if (n == ts->limit) {
        tern_timer_free(t); /* legal inside its own callback */
        ts->t = NULL;
        atomic_store(&ts->done, 1);
    }
}

static void start_repeating(tern_reactor *r, void *arg)
{
    timer_state *ts = arg;
    ts->r = r;
    ts->t = tern_timer_new(r, repeating_cb, ts);
    if (ts->t == NULL) {
        return;
    }
    ts->started_ms = tern_reactor_now_ms(r);
    if (tern_timer_start(ts->t, 20, 2) != 0) {
        tern_timer_free(ts->t);
        ts->t = NULL;
    }
}

static void test_timer__repeating_timer_freed_in_its_callback(void **state)
{
    fixture *f = *state;
    tern_reactor *r = start_runtime(f, 1, 0);
    timer_state ts;
    memset(&ts, 0, sizeof ts);
    ts.limit = 5;
    assert_int_equal(ts_post_wait(r, start_repeating, &ts, 5000), 0);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&ts.done) != 0, 5000);
    assert_true(ok);
    ts_sleep_ms(30); /* freed: it must not fire again */
    assert_int_equal(atomic_load(&ts.fired), 5);
    assert_int_equal(atomic_load(&ts.wrong_thread), 0);
    /* the first fire waits for after_ms, on the loop's clock (timers count from the cached
     * loop time, as libev's do; a wall clock read in the task may be ahead of it) */
    assert_true(atomic_load(&ts.first_fire_after_ms) >= 19);
    stop_and_join(f, 0);
}

static void oneshot_cb(tern_timer *t, void *user)
{
    timer_state *ts = user;
    if (tern_reactor_current() != ts->r || t != ts->t) {
        atomic_fetch_add(&ts->wrong_thread, 1);
    }
    atomic_fetch_add(&ts->fired, 1);
}

static void start_oneshot_and_stopped(tern_reactor *r, void *arg)
{
    timer_state *ts = arg; /* ts[0]: one-shot; ts[1]: started then stopped at once */
    for (int i = 0; i < 2; i++) {
        ts[i].r = r;
        ts[i].t = tern_timer_new(r, oneshot_cb, &ts[i]);
        if (ts[i].t == NULL || tern_timer_start(ts[i].t, 5, 0) != 0) {
            atomic_fetch_add(&ts[i].wrong_thread, 100);
        }
    }
    tern_timer_stop(ts[1].t);
    if (tern_timer_start(NULL, 1, 0) != TERN_EINVAL) {
        atomic_fetch_add(&ts[0].wrong_thread, 1000);
    }
    tern_timer_free(NULL); /* a no-op */
}

static void restart_second(tern_reactor *r, void *arg)
{
    (void)r;
    timer_state *ts = arg;
    tern_timer_start(ts[1].t, 1, 0);
}

static void free_both(tern_reactor *r, void *arg)
{
    (void)r;
    timer_state *ts = arg;
    tern_timer_free(ts[0].t);
    tern_timer_free(ts[1].t);
}

static void read_now(tern_reactor *r, void *arg)
{
    *(uint64_t *)arg = tern_reactor_now_ms(r);
}

static void test_timer__oneshot_stop_restart(void **state)
{
    fixture *f = *state;
    tern_reactor *r = start_runtime(f, 1, 0);
    timer_state ts[2];
    memset(ts, 0, sizeof ts);
    assert_int_equal(ts_post_wait(r, start_oneshot_and_stopped, ts, 5000), 0);
    assert_true(ts_wait_u64_ge(&ts[0].fired, 1, 5000));
    ts_sleep_ms(30);
    assert_int_equal(atomic_load(&ts[0].fired), 1); /* repeat 0: once */
    assert_int_equal(atomic_load(&ts[1].fired), 0); /* stopped before it fired */
    assert_int_equal(ts_post_wait(r, restart_second, ts, 5000), 0);
    assert_true(ts_wait_u64_ge(&ts[1].fired, 1, 5000));
    ts_sleep_ms(10);
    assert_int_equal(atomic_load(&ts[1].fired), 1);
    assert_int_equal(atomic_load(&ts[0].wrong_thread), 0);
    assert_int_equal(atomic_load(&ts[1].wrong_thread), 0);
    assert_int_equal(ts_post_wait(r, free_both, ts, 5000), 0);

    uint64_t t0 = 0, t1 = 0;
    assert_int_equal(ts_post_wait(r, read_now, &t0, 5000), 0);
    ts_sleep_ms(25);
    assert_int_equal(ts_post_wait(r, read_now, &t1, 5000), 0);
    assert_true(t1 >= t0 + 20); /* the loop clock moves with time */
    stop_and_join(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mailbox__producers_deliver_exactly_once_in_order,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox__full_mailbox_is_an_error_the_sender_sees,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox__capacity_rounds_up_to_a_power_of_two,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_mailbox__post_after_join_is_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_mailbox__tasks_queued_at_stop_run_with_null_reactor, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_mailbox__self_posting_task_does_not_keep_the_reactor_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actor__messages_from_two_threads_then_stop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor__spawn_without_reactor_balances, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor__runtime_stop_stops_actors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer__repeating_timer_freed_in_its_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_timer__oneshot_stop_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

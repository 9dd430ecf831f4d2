/* SPDX-License-Identifier: MIT */
/*
 * Mailboxes (runtime.h): many producers into one reactor with exactly-once,
 * per-producer-ordered delivery; the full-mailbox error path and its counter; posts after
 * stop; tasks still queued at stop run with r == NULL. (Actors: test_actor.c; timers:
 * test_timer.c.)
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

#include "fixture.h"
#include "support.h"

/* ---- fixture --------------------------------------------------------------------------- */

#define PRODUCERS 4

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
    return ts_fixture_setup(state);
}

static int teardown(void **state)
{
    atomic_store(&g.blocker_release, 1); /* never leave a reactor blocked */
    atomic_store(&g.abort, 1);           /* nor a thread posting */
    return ts_fixture_teardown(state);
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
static void run_producers(ts_fixture *f, uint32_t n, unsigned budget_ms)
{
    tern_reactor *r = ts_fixture_start(f, 1, 0);
    static _Atomic int go;
    static producer p[PRODUCERS]; /* outlives this function: teardown joins the threads */
    atomic_store(&go, 0);
    for (unsigned i = 0; i < PRODUCERS; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].r = r;
        p[i].id = i;
        p[i].n = n;
        p[i].go = &go;
        ts_fixture_spawn(f, producer_main, &p[i]);
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
    ts_fixture_join_threads(f);
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
    ts_fixture_stop_join(f, 0);
}

static void test_mailbox__producers_deliver_exactly_once_in_order(void **state)
{
    run_producers(*state, 50000, TS_SCALE(20000, 60000));
}

/* ---- a full mailbox ---------------------------------------------------------------------- */

/* Blocks the only reactor of a runtime made with @p capacity, posts @p tries tasks and checks
 * that exactly @p holds were queued, the rest refused and counted; then lets them run. */
static void fill_blocked_mailbox(ts_fixture *f, unsigned capacity, int holds, int tries)
{
    tern_reactor *r = ts_fixture_start(f, 1, capacity);
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
    ts_fixture_stop_join(f, 0);
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
    ts_fixture *f = *state;
    tern_reactor *r = ts_fixture_start(f, 2, 0);
    tern_reactor *r1 = tern_runtime_reactor(f->rt, 1);
    assert_non_null(r1);
    assert_null(tern_runtime_reactor(f->rt, 2));
    assert_ptr_equal(tern_reactor_runtime(r), f->rt);
    assert_int_equal(tern_reactor_index(r1), 1);
    assert_null(tern_reactor_current()); /* the test thread is no reactor */
    assert_false(tern_runtime_is_stopping(f->rt));
    ts_fixture_stop_join(f, 0);
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
    ts_fixture *f = *state;
    memset(late_ran, 0, sizeof late_ran);
    atomic_store(&late_bad, 0);
    late_main = pthread_self();
    tern_reactor *r = ts_fixture_start(f, 1, 1024);
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
    ts_fixture *f = *state;
    tern_reactor *r = ts_fixture_start(f, 1, 16);
    static chain c;
    static joiner j;
    memset(&c, 0, sizeof c);
    memset(&j, 0, sizeof j);
    assert_int_equal(tern_reactor_post(r, chain_task, &c), 0);
    assert_true(ts_wait_u64_ge(&c.runs, 100, 5000));
    j.rt = f->rt;
    j.c = &c;
    assert_int_equal(tern_runtime_stop(f->rt, 0), 0);
    ts_fixture_spawn(f, joiner_main, &j);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&j.done) != 0, 5000);
    if (!ok) {
        fail_msg("join did not return within 5 s while a task kept posting itself (%llu runs)",
                 (unsigned long long)atomic_load(&c.runs));
    }
    ts_fixture_join_threads(f);
    f->joined = true;
    assert_int_equal(j.rc, 0);
    ts_log("chain: %llu runs on the reactor, %llu with r == NULL, %llu refused",
           (unsigned long long)atomic_load(&c.runs), (unsigned long long)atomic_load(&c.null_runs),
           (unsigned long long)atomic_load(&c.refused));
    /* exactly one instance was pending at the end: it ran with NULL or was never queued */
    assert_int_equal(atomic_load(&c.null_runs) + atomic_load(&c.refused), 1);
    assert_int_equal(atomic_load(&c.other_errors), 0);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

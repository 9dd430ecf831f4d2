/* SPDX-License-Identifier: MIT */
/*
 * Actors (actor.h): receiving from two threads in per-sender order, stopping, spawning on the
 * reactor with the fewest actors, stopping with the runtime, and refusing or handing back
 * (undelivered) the messages that come after the stop.
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

static _Atomic int abort_senders; /* set by teardown: sender threads stop sending */

static int setup(void **state)
{
    atomic_store(&abort_senders, 0);
    return ts_fixture_setup(state);
}

static int teardown(void **state)
{
    atomic_store(&abort_senders, 1);
    return ts_fixture_teardown(state);
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
    for (uint32_t seq = 0; seq < s->n && s->error == 0 && !atomic_load(&abort_senders); seq++) {
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
    ts_fixture *f = *state;
    ts_fixture_start(f, 2, 1024);
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
        ts_fixture_spawn(f, sender_main, &s[i]);
    }
    ts_fixture_join_threads(f);
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
    ts_fixture_stop_join(f, 0);
    free(st);
}

static void test_actor__spawn_without_reactor_balances(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_start(f, 2, 0);
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
    ts_fixture_stop_join(f, 0);
}

static void test_actor__runtime_stop_stops_actors(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_start(f, 1, 0);
    actor_state *st = calloc(1, sizeof *st);
    assert_non_null(st);
    tern_actor *a = tern_actor_spawn(f->rt, tern_runtime_reactor(f->rt, 0), &actor_events, st);
    assert_non_null(a);
    actor_msg *m = malloc(sizeof *m);
    assert_non_null(m);
    *m = (actor_msg){.sender = 0, .seq = 0};
    assert_int_equal(tern_actor_send(a, m), 0);
    assert_true(ts_wait_u64_ge(&st->messages, 1, 5000));
    ts_fixture_stop_join(f, 0);
    /* the reactor stopped: so did its actor, and later messages are not lost */
    assert_int_equal(atomic_load(&st->stopped), 1);
    send_after_stop(a, st);
    tern_actor_unref(a);
    tern_runtime_free(f->rt);
    f->rt = NULL;
    free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_actor__messages_from_two_threads_then_stop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor__spawn_without_reactor_balances, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_actor__runtime_stop_stops_actors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

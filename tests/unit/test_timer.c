/* SPDX-License-Identifier: MIT */
/*
 * Timers (runtime.h): a repeating timer freed inside its own callback, one-shot, stop and
 * restart, the loop clock (tern_reactor_now_ms), all on the owner reactor.
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
    ts_fixture *f = *state;
    tern_reactor *r = ts_fixture_start(f, 1, 0);
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
    ts_fixture_stop_join(f, 0);
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
    ts_fixture *f = *state;
    tern_reactor *r = ts_fixture_start(f, 1, 0);
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
    ts_fixture_stop_join(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_timer__repeating_timer_freed_in_its_callback,
                                        ts_fixture_setup, ts_fixture_teardown),
        cmocka_unit_test_setup_teardown(test_timer__oneshot_stop_restart, ts_fixture_setup,
                                        ts_fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

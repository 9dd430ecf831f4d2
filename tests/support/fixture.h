/* SPDX-License-Identifier: MIT */
/*
 * A cmocka fixture for tests that start a runtime and helper threads (test_mailbox,
 * test_actor, test_timer): setup allocates it, teardown joins the threads the test started
 * and stops, joins and frees the runtime, whatever state an early failure left them in.
 * A test file whose threads wait on something (a flag, a blocked reactor) releases that in
 * its own teardown, then calls ts_fixture_teardown.
 */
#ifndef TERN_TEST_FIXTURE_H
#define TERN_TEST_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <tern/tern.h>

#define TS_FIXTURE_THREADS 8

typedef struct ts_fixture {
    tern_runtime *rt;
    bool started, joined;
    pthread_t threads[TS_FIXTURE_THREADS];
    int nthreads;
} ts_fixture;

/* cmocka setup / teardown: *state is the ts_fixture. */
int ts_fixture_setup(void **state);
int ts_fixture_teardown(void **state);

/* Starts a runtime of @p reactors (mailbox capacity @p mailbox, 0: the default); fails the
 * test if it cannot. @return reactor 0. */
tern_reactor *ts_fixture_start(ts_fixture *f, unsigned reactors, unsigned mailbox);
/* The same in two steps, for a test that sets the runtime up in between: makes it (not
 * started; 0 reactors: one per online CPU), then starts it. */
tern_runtime *ts_fixture_runtime(ts_fixture *f, unsigned reactors);
void ts_fixture_run(ts_fixture *f);
/* Stops with @p drain_ms and joins; fails the test on an error. */
void ts_fixture_stop_join(ts_fixture *f, uint32_t drain_ms);
/* Starts a helper thread, joined by ts_fixture_join_threads or the teardown. */
void ts_fixture_spawn(ts_fixture *f, void *(*fn)(void *), void *arg);
void ts_fixture_join_threads(ts_fixture *f);

#endif

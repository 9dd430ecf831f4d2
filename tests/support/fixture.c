/* SPDX-License-Identifier: MIT */
/* The runtime fixture of fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

#include "fixture.h"
#include "support.h"

int ts_fixture_setup(void **state)
{
    ts_fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

int ts_fixture_teardown(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_join_threads(f);
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

tern_runtime *ts_fixture_runtime(ts_fixture *f, unsigned reactors)
{
    f->rt = ts_runtime_new(reactors, 0);
    assert_non_null(f->rt);
    return f->rt;
}

void ts_fixture_run(ts_fixture *f)
{
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("tern_runtime_start: %s: %s", tern_err_name(rc),
                 tern_runtime_error_string(f->rt));
    }
    f->started = true;
}

tern_reactor *ts_fixture_start(ts_fixture *f, unsigned reactors, unsigned mailbox)
{
    f->rt = ts_runtime_new(reactors, mailbox);
    assert_non_null(f->rt);
    ts_fixture_run(f);
    assert_int_equal(tern_runtime_reactor_count(f->rt), reactors);
    tern_reactor *r = tern_runtime_reactor(f->rt, 0);
    assert_non_null(r);
    return r;
}

void ts_fixture_stop_join(ts_fixture *f, uint32_t drain_ms)
{
    assert_int_equal(tern_runtime_stop(f->rt, drain_ms), 0);
    assert_int_equal(tern_runtime_join(f->rt), 0);
    f->joined = true;
}

void ts_fixture_spawn(ts_fixture *f, void *(*fn)(void *), void *arg)
{
    assert_true(f->nthreads < TS_FIXTURE_THREADS);
    assert_int_equal(pthread_create(&f->threads[f->nthreads], NULL, fn, arg), 0);
    f->nthreads++;
}

void ts_fixture_join_threads(ts_fixture *f)
{
    for (int i = 0; i < f->nthreads; i++) {
        pthread_join(f->threads[i], NULL);
    }
    f->nthreads = 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The runtime's set-up (runtime.h, stats.h): option defaults, out-of-range options named in
 * the error string, calls in the wrong state, zero reactors meaning one per online CPU, the
 * statistics' bad arguments and formats.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"
#include "support.h"

/* ---- runtime options --------------------------------------------------------------------- */

static void test_runtime__options_defaults(void **state)
{
    (void)state;
    tern_runtime_options o;
    memset(&o, 0xa5, sizeof o);
    tern_runtime_options_init(&o);
    assert_int_equal(o.reactors, 0);
    assert_false(o.pin_cpus);
    assert_int_equal(o.mailbox_capacity, 8192);
    assert_int_equal(o.handoff_capacity, 4096);
    assert_int_equal(o.workers, 2);
    assert_int_equal(o.emfile_backoff_ms, 100);
}

/* Starts a runtime with one option changed; expects EINVAL naming @p word. */
static void expect_bad_option(void (*tweak)(tern_runtime_options *), const char *word)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    tweak(&o);
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    int rc = tern_runtime_start(rt);
    const char *why = tern_runtime_error_string(rt);
    if (rc != TERN_EINVAL || why == NULL || strstr(why, word) == NULL) {
        if (rc == 0) {
            tern_runtime_stop(rt, 0);
            tern_runtime_join(rt);
        }
        char copy[256];
        snprintf(copy, sizeof copy, "%s", why ? why : "(null)");
        tern_runtime_free(rt);
        fail_msg("bad %s: start gave %s, \"%s\"; expected EINVAL naming it", word,
                 tern_err_name(rc), copy);
    }
    ts_log("bad %s: \"%s\"", word, why);
    tern_runtime_free(rt); /* never started */
}

static void many_reactors(tern_runtime_options *o) { o->reactors = 100000; }
static void tiny_mailbox(tern_runtime_options *o) { o->mailbox_capacity = 8; }
static void huge_mailbox(tern_runtime_options *o) { o->mailbox_capacity = (1u << 20) + 1; }
static void tiny_handoff(tern_runtime_options *o) { o->handoff_capacity = 4; }
static void no_workers(tern_runtime_options *o) { o->workers = 0; }
static void many_workers(tern_runtime_options *o) { o->workers = 65; }
static void no_backoff(tern_runtime_options *o) { o->emfile_backoff_ms = 0; }
static void long_backoff(tern_runtime_options *o) { o->emfile_backoff_ms = 60001; }

static void test_runtime__bad_options_are_named(void **state)
{
    (void)state;
    expect_bad_option(many_reactors, "reactors");
    expect_bad_option(tiny_mailbox, "mailbox");
    expect_bad_option(huge_mailbox, "mailbox");
    expect_bad_option(tiny_handoff, "handoff");
    expect_bad_option(no_workers, "workers");
    expect_bad_option(many_workers, "workers");
    expect_bad_option(no_backoff, "emfile");
    expect_bad_option(long_backoff, "emfile");
}

static void test_runtime__wrong_state(void **state)
{
    ts_fixture *f = *state;
    tern_runtime *rt = ts_fixture_runtime(f, 1);
    assert_int_equal(tern_runtime_stop(rt, 0), TERN_EINVAL); /* never started */
    assert_int_equal(tern_runtime_join(rt), TERN_EINVAL);
    ts_fixture_run(f);
    assert_int_equal(tern_runtime_start(rt), TERN_EBUSY);
    assert_int_equal(tern_runtime_stop_on_signals(rt, 0, NULL, NULL), TERN_EBUSY);
    assert_int_equal(tern_runtime_stop(rt, 0), 0);
    assert_int_equal(tern_runtime_join(rt), 0);
    f->joined = true;
}

static void test_runtime__zero_reactors_means_online_cpus(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_runtime(f, 0);
    ts_fixture_run(f);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cpus > 0);
    unsigned want = cpus > TERN_MAX_REACTORS ? TERN_MAX_REACTORS : (unsigned)cpus;
    assert_int_equal(tern_runtime_reactor_count(f->rt), want);
    assert_non_null(tern_runtime_reactor(f->rt, want - 1));
    assert_null(tern_runtime_reactor(f->rt, want));
}

/* ---- stats ------------------------------------------------------------------------------- */

static void test_stats__bad_arguments_and_format(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_runtime(f, 1);
    ts_fixture_run(f);
    tern_stats st;
    assert_int_equal(tern_runtime_stats(NULL, &st), TERN_EINVAL);
    assert_int_equal(tern_runtime_stats(f->rt, NULL), TERN_EINVAL);
    assert_int_equal(tern_runtime_reactor_stats(f->rt, 1, &st), TERN_EINVAL);
    assert_int_equal(tern_runtime_reactor_stats(f->rt, 0, &st), 0);
    assert_int_equal(tern_runtime_stats(f->rt, &st), 0);

    char buf[2048];
    ssize_t n = tern_stats_format(&st, TERN_STATS_JSON, buf, sizeof buf);
    assert_true(n > 2 && (size_t)n < sizeof buf);
    assert_int_equal(strlen(buf), (size_t)n);
    assert_int_equal(buf[0], '{');
    assert_int_equal(buf[n - 1], '}');
    assert_null(strchr(buf, '\n'));
    assert_non_null(strstr(buf, "connections_accepted"));
    n = tern_stats_format(&st, TERN_STATS_TEXT, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "connections_accepted="));
    assert_null(strchr(buf, '\n'));
    /* cut output: snprintf-like */
    char small[8];
    ssize_t full = tern_stats_format(&st, TERN_STATS_TEXT, small, sizeof small);
    assert_int_equal(full, n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(tern_stats_format(&st, (enum tern_stats_format_kind)9, buf, sizeof buf),
                     TERN_EINVAL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, ts_fixture_setup, ts_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_runtime__options_defaults),
        T(test_runtime__bad_options_are_named),
        T(test_runtime__wrong_state),
        T(test_runtime__zero_reactors_means_online_cpus),
        T(test_stats__bad_arguments_and_format),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

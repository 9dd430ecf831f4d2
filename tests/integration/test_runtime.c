/* SPDX-License-Identifier: MIT */
/*
 * The runtime's set-up (runtime.h, stats.h): option defaults, out-of-range options named in
 * the error string, calls in the wrong state, zero reactors meaning one per online CPU, the
 * statistics' bad arguments and formats, the wake-up histogram's buckets (counted through the
 * runtime's internal counters, as the TLS layer counts them).
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

/* the per-reactor counters the TLS layer writes (internal: tested here as tern__ functions) */
#include "../../runtime/counters.h"

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

/* Each wake-up lands in the first bucket whose bound it does not exceed (bounds 10, 25, 50,
 * 100, 250, 500, 1000, 5000 us, then +inf); the sum and the count follow; the gauge and the
 * failure counters are summed as they are; both formats print all of it. */
static void test_stats__wake_buckets_sum_and_format(void **state)
{
    (void)state;
    tern__counters *c = calloc(1, sizeof(*c));
    tern_stats *st = calloc(1, sizeof(*st));
    assert_non_null(c);
    assert_non_null(st);
    static const uint64_t us[] = {0, 10, 11, 25, 26, 50, 99, 100, 250, 251, 500, 1000, 1001,
                                  5000, 5001, 1000000};
    static const uint64_t want[TERN_STATS_WAKE_BUCKETS] = {2, 2, 2, 2, 1, 2, 1, 2, 2};
    uint64_t sum = 0;
    for (size_t i = 0; i < sizeof(us) / sizeof(us[0]); i++) {
        tern__count(&c->hib_wakeups, 1); /* as ssl/socket_tls.c counts a wake-up */
        tern__count_wake(c, us[i]);
        sum += us[i];
    }
    tern__count(&c->hib_now, 3);
    tern__count(&c->hib_count, 19);
    tern__count(&c->hib_export_failures, 4);
    tern__count(&c->hib_import_failures, 1);
    /* two reactors with the same counts: the snapshot is their sum */
    tern__counters_add(st, c);
    tern__counters_add(st, c);
    for (unsigned i = 0; i < TERN_STATS_WAKE_BUCKETS; i++) {
        assert_int_equal(st->wake_duration_buckets[i], 2 * want[i]);
    }
    assert_int_equal(st->wakeups, 2 * 16);
    assert_int_equal(st->wake_duration_us_sum, 2 * sum);
    assert_int_equal(st->hibernated_now, 6);
    assert_int_equal(st->hibernations, 38);
    assert_int_equal(st->hibernate_failures, 8);
    assert_int_equal(st->wake_failures, 2);

    assert_true(tern_stats_wake_bucket_bound(0) == 0.00001);
    assert_true(tern_stats_wake_bucket_bound(3) == 0.0001);
    assert_true(tern_stats_wake_bucket_bound(TERN_STATS_WAKE_BUCKETS - 2) == 0.005);
    assert_true(tern_stats_wake_bucket_bound(TERN_STATS_WAKE_BUCKETS - 1) > 1e300);
    assert_true(tern_stats_wake_bucket_bound(1000) > 1e300);

    char buf[4096];
    char want_sum[64];
    snprintf(want_sum, sizeof(want_sum), "\"wake_duration_us_sum\":%llu,",
             (unsigned long long)(2 * sum));
    ssize_t n = tern_stats_format(st, TERN_STATS_JSON, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, "\"hibernated_now\":6,\"hibernations\":38,\"wakeups\":32,"
                                "\"hibernate_failures\":8,\"wake_failures\":2,"));
    assert_non_null(strstr(buf, want_sum));
    assert_non_null(strstr(buf, ",\"wake_duration_buckets\":[4,4,4,4,2,4,2,4,4],"));
    n = tern_stats_format(st, TERN_STATS_TEXT, buf, sizeof(buf));
    assert_true(n > 0 && (size_t)n < sizeof(buf));
    assert_non_null(strstr(buf, " hibernated_now=6 hibernations=38 wakeups=32 "
                                "hibernate_failures=8 wake_failures=2 wake_duration_us_sum="));
    assert_non_null(strstr(buf, " wake_duration_buckets=4,4,4,4,2,4,2,4,4 "));
    assert_null(strchr(buf, '\n'));
    free(st);
    free(c);
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
        T(test_stats__wake_buckets_sum_and_format),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text writer (apps/common/prom.c): label values and HELP texts escaped as
 * the 0.0.4 format says, HELP/TYPE once per family, names checked, histograms cumulative with
 * le="+Inf" equal to _count, numbers as Prometheus reads them, and the buffer growing past
 * its first allocation.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/prom.h"

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void test_prom__label_values_are_escaped(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    assert_int_equal(prom_family(&b, "x_total", PROM_COUNTER, "help"), 0);
    struct prom_label l[2] = {{"path", "a\\b\"c\nd"}, {"plain", "ok"}};
    assert_int_equal(prom_sample_u64(&b, "x_total", l, 2, 7), 0);
    assert_false(b.failed);
    /* backslash -> \\, double quote -> \", newline -> \n; nothing else touched */
    assert_non_null(strstr(b.data, "x_total{path=\"a\\\\b\\\"c\\nd\",plain=\"ok\"} 7\n"));
    /* no raw newline inside the sample line: the output has exactly 3 lines */
    assert_int_equal(count_of(b.data, "\n"), 3);
    prom_free(&b);
}

static void test_prom__help_is_escaped_and_written_once(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    assert_int_equal(prom_family(&b, "y", PROM_GAUGE, "two\nlines \\ and \"quotes\""), 0);
    assert_int_equal(prom_family(&b, "y", PROM_GAUGE, "again"), 1); /* not repeated */
    assert_int_equal(prom_sample_double(&b, "y", NULL, 0, 1.5), 0);
    assert_string_equal(b.data, "# HELP y two\\nlines \\\\ and \"quotes\"\n"
                                "# TYPE y gauge\n"
                                "y 1.5\n");
    prom_free(&b);
}

static void test_prom__bad_names_are_refused(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    assert_int_equal(prom_family(&b, "9lives", PROM_COUNTER, ""), -1);
    assert_int_equal(prom_family(&b, "has-dash", PROM_COUNTER, ""), -1);
    assert_int_equal(prom_family(&b, "", PROM_COUNTER, ""), -1);
    struct prom_label reserved = {"__name__", "x"}, dash = {"a-b", "x"}, colon = {"a:b", "x"};
    assert_int_equal(prom_sample_u64(&b, "ok", &reserved, 1, 1), -1);
    assert_int_equal(prom_sample_u64(&b, "ok", &dash, 1, 1), -1);
    assert_int_equal(prom_sample_u64(&b, "ok", &colon, 1, 1), -1); /* colons: metrics only */
    assert_int_equal(b.len, 0);
    assert_true(prom_valid_name("ns:sub_name_total"));
    assert_true(prom_valid_label_name("_x1"));
    prom_free(&b);
}

static void test_prom__histogram_is_cumulative(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    const double bounds[3] = {0.001, 0.25, 1};
    const uint64_t counts[4] = {2, 0, 5, 3}; /* per bucket; the last over 1 s */
    struct prom_label l = {"role", "server"};
    assert_int_equal(prom_family(&b, "d_seconds", PROM_HISTOGRAM, "durations"), 0);
    assert_int_equal(prom_histogram(&b, "d_seconds", &l, 1, bounds, counts, 3, 12.5), 0);
    assert_false(b.failed);
    const char *want = "# HELP d_seconds durations\n"
                       "# TYPE d_seconds histogram\n"
                       "d_seconds_bucket{role=\"server\",le=\"0.001\"} 2\n"
                       "d_seconds_bucket{role=\"server\",le=\"0.25\"} 2\n"
                       "d_seconds_bucket{role=\"server\",le=\"1\"} 7\n"
                       "d_seconds_bucket{role=\"server\",le=\"+Inf\"} 10\n"
                       "d_seconds_sum{role=\"server\"} 12.5\n"
                       "d_seconds_count{role=\"server\"} 10\n";
    assert_string_equal(b.data, want);

    /* bounds must ascend and be finite */
    const double bad[2] = {1, 0.5};
    assert_int_equal(prom_histogram(&b, "d_seconds", NULL, 0, bad, counts, 2, 0), -1);
    const double inf[1] = {INFINITY};
    assert_int_equal(prom_histogram(&b, "d_seconds", NULL, 0, inf, counts, 1, 0), -1);
    assert_string_equal(b.data, want);
    prom_free(&b);
}

static void test_prom__numbers_as_prometheus_reads_them(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    prom_sample_double(&b, "a", NULL, 0, INFINITY);
    prom_sample_double(&b, "b", NULL, 0, -INFINITY);
    prom_sample_double(&b, "c", NULL, 0, NAN);
    prom_sample_double(&b, "d", NULL, 0, 0.1);
    prom_sample_u64(&b, "e", NULL, 0, UINT64_MAX);
    prom_sample_double(&b, "f", NULL, 0, 1.0 / 3.0);
    assert_non_null(strstr(b.data, "a +Inf\n"));
    assert_non_null(strstr(b.data, "b -Inf\n"));
    assert_non_null(strstr(b.data, "c NaN\n"));
    assert_non_null(strstr(b.data, "d 0.1\n"));
    assert_non_null(strstr(b.data, "e 18446744073709551615\n"));
    const char *f = strstr(b.data, "f ");
    assert_non_null(f);
    assert_true(strtod(f + 2, NULL) == 1.0 / 3.0); /* reads back exactly */
    prom_free(&b);
}

static void test_prom__buffer_grows(void **state)
{
    struct prom_buf b;
    prom_init(&b);
    char name[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(name, sizeof(name), "m%d_total", i);
        assert_int_equal(prom_counter(&b, name, "a counter", (uint64_t)i), 0);
    }
    assert_false(b.failed);
    assert_true(b.len > 64 * 1024);
    assert_int_equal(strlen(b.data), b.len);
    assert_non_null(strstr(b.data, "# TYPE m1999_total counter\nm1999_total 1999\n"));
    assert_int_equal(count_of(b.data, "# HELP "), 2000);
    prom_printf(&b, "%s", "");
    prom_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom__label_values_are_escaped),
        cmocka_unit_test(test_prom__help_is_escaped_and_written_once),
        cmocka_unit_test(test_prom__bad_names_are_refused),
        cmocka_unit_test(test_prom__histogram_is_cumulative),
        cmocka_unit_test(test_prom__numbers_as_prometheus_reads_them),
        cmocka_unit_test(test_prom__buffer_grows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's latency histogram (apps/tern-bench/hist.c): percentiles within 1% of the
 * exact ones on known distributions (uniform, exponential, constants, a wide spread up to
 * 100 s), exact below 256 us, merging per-thread histograms equals recording into one.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hist.h"

static const double quantiles[] = {1, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99};

/* The exact percentile of sorted @p v: the value at rank ceil(q/100 * n). */
static uint64_t exact_percentile(const uint64_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q / 100.0 * (double)n);
    if (rank < 1) {
        rank = 1;
    }
    return v[rank - 1];
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* A small deterministic generator (xorshift64*), so runs are reproducible. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static double rng_unit(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545F4914F6CDD1Du;
    return ((double)(r >> 11) + 0.5) / 9007199254740992.0; /* (0, 1) */
}

/* Records @p v into a fresh histogram and checks every quantile within @p tolerance. */
static void check_against_exact(uint64_t *v, size_t n, double tolerance)
{
    bench_hist *h = malloc(sizeof(*h));
    assert_non_null(h);
    bench_hist_reset(h);
    for (size_t i = 0; i < n; i++) {
        bench_hist_record(h, v[i]);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    assert_int_equal(h->count, n);
    assert_int_equal(h->min, v[0]);
    assert_int_equal(h->max, v[n - 1]);
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++) {
        uint64_t want = exact_percentile(v, n, quantiles[i]);
        uint64_t got = bench_hist_percentile(h, quantiles[i]);
        double err = want == 0 ? (double)got : fabs((double)got - (double)want) / (double)want;
        if (err > tolerance) {
            fail_msg("p%g: got %llu, exact %llu (error %.4f%%)", quantiles[i],
                     (unsigned long long)got, (unsigned long long)want, err * 100);
        }
    }
    assert_int_equal(bench_hist_percentile(h, 100), v[n - 1]);
    assert_int_equal(bench_hist_percentile(h, 0), v[0]);
    free(h);
}

static void test_bench_hist__empty(void **state)
{
    bench_hist h;
    bench_hist_reset(&h);
    assert_int_equal(h.count, 0);
    assert_int_equal(bench_hist_percentile(&h, 50), 0);
    assert_int_equal(bench_hist_percentile(&h, 100), 0);
    assert_true(bench_hist_mean(&h) == 0.0);
}

/* Below 256 us every value has its own bucket. */
static void test_bench_hist__exact_small_values(void **state)
{
    bench_hist h;
    bench_hist_reset(&h);
    for (uint64_t v = 0; v < 256; v++) {
        bench_hist_record(&h, v);
    }
    for (unsigned q = 1; q <= 100; q++) {
        uint64_t want = (uint64_t)ceil(q / 100.0 * 256) - 1;
        assert_int_equal(bench_hist_percentile(&h, q), want);
    }
}

/* Every bucket's value is within 1/256 of each value that lands in it, up to 2^36 us. */
static void test_bench_hist__bucket_precision(void **state)
{
    for (uint64_t v = 1; v < (UINT64_C(1) << 36); v = v + 1 + v / 97) {
        unsigned idx = bench_hist_index(v);
        assert_true(idx < BENCH_HIST_BUCKETS);
        uint64_t rep = bench_hist_bucket_value(idx);
        double err = fabs((double)rep - (double)v) / (double)v;
        if (err > 1.0 / 256 + 1e-12) {
            fail_msg("value %llu: bucket %u reports %llu (error %.4f%%)", (unsigned long long)v,
                     idx, (unsigned long long)rep, err * 100);
        }
    }
    /* indexes grow with the value; past the top, the last bucket */
    assert_true(bench_hist_index(1000) < bench_hist_index(1001) ||
                bench_hist_index(1000) == bench_hist_index(1001));
    assert_int_equal(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static void test_bench_hist__uniform(void **state)
{
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = 1 + (uint64_t)(rng_unit() * 1000000.0); /* 1 us .. 1 s */
    }
    check_against_exact(v, n, 0.01);
    free(v);
}

static void test_bench_hist__exponential(void **state)
{
    size_t n = 200000;
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = (uint64_t)llround(-log(rng_unit()) * 5000.0); /* mean 5 ms */
    }
    check_against_exact(v, n, 0.01);
    free(v);
}

/* Log-uniform from 1 us to 100 s: every bucket size is exercised. */
static void test_bench_hist__wide_spread_to_100s(void **state)
{
    size_t n = 100000;
    uint64_t *v = malloc(n * sizeof(*v));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) {
        v[i] = (uint64_t)llround(exp(rng_unit() * log(100e6)));
    }
    check_against_exact(v, n, 0.01);
    free(v);
}

static void test_bench_hist__constants(void **state)
{
    const uint64_t values[] = {0, 1, 255, 256, 12345, 999999, 100000000 /* 100 s */,
                               UINT64_C(1) << 40 /* past the top bucket */};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        bench_hist h;
        bench_hist_reset(&h);
        for (int k = 0; k < 1000; k++) {
            bench_hist_record(&h, values[i]);
        }
        for (size_t q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++) {
            assert_int_equal(bench_hist_percentile(&h, quantiles[q]), values[i]);
        }
        assert_true(fabs(bench_hist_mean(&h) - (double)values[i]) <= 1e-6 * (double)values[i]);
    }
    /* two constants: the median splits them */
    bench_hist h;
    bench_hist_reset(&h);
    for (int k = 0; k < 900; k++) {
        bench_hist_record(&h, 1000);
    }
    for (int k = 0; k < 100; k++) {
        bench_hist_record(&h, 50000);
    }
    assert_true(llabs((long long)bench_hist_percentile(&h, 50) - 1000) <= 10);
    assert_true(llabs((long long)bench_hist_percentile(&h, 90) - 1000) <= 10);
    assert_true(llabs((long long)bench_hist_percentile(&h, 91) - 50000) <= 500);
    assert_int_equal(bench_hist_percentile(&h, 100), 50000);
}

/* One histogram per thread, merged, equals one histogram of everything. */
static void test_bench_hist__merge(void **state)
{
    enum { PARTS = 4 };
    bench_hist *parts = malloc(PARTS * sizeof(*parts));
    bench_hist *all = malloc(sizeof(*all));
    bench_hist *merged = malloc(sizeof(*merged));
    assert_non_null(parts);
    assert_non_null(all);
    assert_non_null(merged);
    bench_hist_reset(all);
    bench_hist_reset(merged);
    for (int p = 0; p < PARTS; p++) {
        bench_hist_reset(&parts[p]);
    }
    for (int i = 0; i < 100000; i++) {
        uint64_t v = (uint64_t)llround(-log(rng_unit()) * 2000.0) + (i % 7 == 0 ? 100000 : 0);
        bench_hist_record(&parts[i % PARTS], v);
        bench_hist_record(all, v);
    }
    bench_hist empty;
    bench_hist_reset(&empty);
    bench_hist_merge(merged, &empty); /* merging nothing changes nothing */
    for (int p = 0; p < PARTS; p++) {
        bench_hist_merge(merged, &parts[p]);
    }
    assert_int_equal(merged->count, all->count);
    assert_int_equal(merged->min, all->min);
    assert_int_equal(merged->max, all->max);
    assert_memory_equal(merged->buckets, all->buckets, sizeof(all->buckets));
    assert_true(fabs(merged->sum - all->sum) < 1e-6 * all->sum);
    for (size_t q = 0; q < sizeof(quantiles) / sizeof(quantiles[0]); q++) {
        assert_int_equal(bench_hist_percentile(merged, quantiles[q]),
                         bench_hist_percentile(all, quantiles[q]));
    }
    free(parts);
    free(all);
    free(merged);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_hist__empty),
        cmocka_unit_test(test_bench_hist__exact_small_values),
        cmocka_unit_test(test_bench_hist__bucket_precision),
        cmocka_unit_test(test_bench_hist__uniform),
        cmocka_unit_test(test_bench_hist__exponential),
        cmocka_unit_test(test_bench_hist__wide_spread_to_100s),
        cmocka_unit_test(test_bench_hist__constants),
        cmocka_unit_test(test_bench_hist__merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

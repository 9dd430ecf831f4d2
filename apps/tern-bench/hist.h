/* SPDX-License-Identifier: MIT */
/*
 * A log-linear latency histogram (the HdrHistogram layout, written for tern-bench).
 *
 * Values are microseconds. 0..255 have a bucket each (exact); above, every power of two
 * [2^e, 2^(e+1)) is cut into 128 equal buckets, so a bucket is at most 1/128 of its lowest
 * value wide and the value reported for it (its middle) is within 1/256 (0.4%) of any value
 * recorded in it. The top power is 2^35 us (about 9.5 hours); larger values land in the last
 * bucket and still count for `max`. 3840 buckets, 30 KiB.
 *
 * Threads: a histogram is plain memory with no lock. tern-bench gives each reactor thread
 * its own, records on that thread only, and merges them (`bench_hist_merge`) on the main
 * thread after the reactors handed them over (under a lock once a second, or after join).
 */
#ifndef TERN_BENCH_HIST_H
#define TERN_BENCH_HIST_H

#include <stdint.h>

/** Bits of the sub-bucket index: 2^7 = 128 buckets per power of two. */
#define BENCH_HIST_SUB_BITS 7
/** Values below this have a bucket each. */
#define BENCH_HIST_EXACT (1u << (BENCH_HIST_SUB_BITS + 1))
/** The highest power of two with buckets of its own: values up to 2^36 - 1 us. */
#define BENCH_HIST_MAX_EXP 35
/** The number of buckets. */
#define BENCH_HIST_BUCKETS                                                                         \
    (BENCH_HIST_EXACT + (BENCH_HIST_MAX_EXP - BENCH_HIST_SUB_BITS) * (1u << BENCH_HIST_SUB_BITS))

typedef struct bench_hist {
    uint64_t count; /* ro: values recorded */
    uint64_t min;   /* ro: smallest value (UINT64_MAX when empty) */
    uint64_t max;   /* ro: largest value (0 when empty) */
    double sum;     /* ro: sum of the values, for the mean */
    uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

/** Empties @p h. */
void bench_hist_reset(bench_hist *h);

/** The bucket of @p value (values past the top land in the last bucket). */
unsigned bench_hist_index(uint64_t value);

/** The value reported for bucket @p idx: its middle (exact for values under 256). */
uint64_t bench_hist_bucket_value(unsigned idx);

/** Records one value. O(1), no allocation. */
void bench_hist_record(bench_hist *h, uint64_t value);

/** Adds every value of @p from to @p into. */
void bench_hist_merge(bench_hist *into, const bench_hist *from);

/**
 * The value at percentile @p q (0..100): the smallest recorded value such that at least
 * q% of the values are at or below it, within the bucket's precision, clamped to [min, max].
 * 0 when empty; q 0 gives min, q 100 gives max.
 */
uint64_t bench_hist_percentile(const bench_hist *h, double q);

/** The mean, or 0 when empty. */
double bench_hist_mean(const bench_hist *h);

#endif

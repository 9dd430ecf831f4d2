/* SPDX-License-Identifier: MIT */
/*
 * The log-linear histogram of hist.h. Bucket index of a value v >= 256: with e the index of
 * its highest set bit (8..35), the 7 bits below it pick one of 128 sub-buckets, after the
 * 256 exact buckets and 128 for each lower power: 256 + (e - 8) * 128 + sub.
 */
#include "hist.h"

#include <math.h>
#include <string.h>

#define SUB_COUNT (1u << BENCH_HIST_SUB_BITS)

void bench_hist_reset(bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned bench_hist_index(uint64_t value)
{
    if (value < BENCH_HIST_EXACT) {
        return (unsigned)value;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(value);
    if (e > BENCH_HIST_MAX_EXP) {
        return BENCH_HIST_BUCKETS - 1;
    }
    unsigned sub = (unsigned)(value >> (e - BENCH_HIST_SUB_BITS)) & (SUB_COUNT - 1);
    return BENCH_HIST_EXACT + (e - BENCH_HIST_SUB_BITS - 1) * SUB_COUNT + sub;
}

uint64_t bench_hist_bucket_value(unsigned idx)
{
    if (idx < BENCH_HIST_EXACT) {
        return idx;
    }
    unsigned rel = idx - BENCH_HIST_EXACT;
    unsigned e = rel / SUB_COUNT + BENCH_HIST_SUB_BITS + 1;
    uint64_t sub = rel % SUB_COUNT;
    unsigned shift = e - BENCH_HIST_SUB_BITS;
    uint64_t low = (SUB_COUNT + sub) << shift;
    return low + ((uint64_t)1 << shift) / 2;
}

void bench_hist_record(bench_hist *h, uint64_t value)
{
    h->buckets[bench_hist_index(value)]++;
    h->count++;
    h->sum += (double)value;
    if (value < h->min) {
        h->min = value;
    }
    if (value > h->max) {
        h->max = value;
    }
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
    if (from->count == 0) {
        return;
    }
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        into->buckets[i] += from->buckets[i];
    }
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min) {
        into->min = from->min;
    }
    if (from->max > into->max) {
        into->max = from->max;
    }
}

uint64_t bench_hist_percentile(const bench_hist *h, double q)
{
    if (h->count == 0) {
        return 0;
    }
    if (q <= 0) {
        return h->min;
    }
    if (q >= 100) {
        return h->max;
    }
    /* the rank of the value asked for, 1-based: at least q% of the values are at or below */
    uint64_t rank = (uint64_t)ceil(q / 100.0 * (double)h->count);
    if (rank < 1) {
        rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bench_hist_bucket_value(i);
            if (v < h->min) {
                v = h->min;
            }
            if (v > h->max) {
                v = h->max;
            }
            return v;
        }
    }
    return h->max;
}

double bench_hist_mean(const bench_hist *h)
{
    return h->count == 0 ? 0.0 : h->sum / (double)h->count;
}

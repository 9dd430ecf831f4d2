/* SPDX-License-Identifier: MIT */
/*
 * Small helpers shared by the benchmarks: clocks and CPU accounting (wall, process and thread
 * CPU clocks, /proc/self/status figures), order statistics over a few runs, and strict number
 * parsing for the command-line flags. Header-only (static functions), so each
 * benchmark stays one self-contained executable. Not part of libtern.
 */
#ifndef TERN_BENCH_UTIL_H
#define TERN_BENCH_UTIL_H

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Monotonic wall clock in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of a clock (CLOCK_PROCESS_CPUTIME_ID, a thread's pthread_getcpuclockid) in ns;
 * 0 if the clock cannot be read (a thread that already exited). */
static inline uint64_t bench_cpu_ns(clockid_t clk)
{
    struct timespec ts;
    if (clock_gettime(clk, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median, min and max of @p n values (n >= 1); @p v is left untouched. */
static inline void bench_summary(const double *v, size_t n, double *median, double *min,
                                 double *max)
{
    double tmp[64];
    double *s = n <= 64 ? tmp : malloc(n * sizeof(*s));
    if (s == NULL) {
        *median = *min = *max = v[0];
        return;
    }
    memcpy(s, v, n * sizeof(*s));
    qsort(s, n, sizeof(*s), bench_cmp_double);
    *min = s[0];
    *max = s[n - 1];
    *median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2.0;
    if (s != tmp) {
        free(s);
    }
}

static inline double bench_median(const double *v, size_t n)
{
    double med, lo, hi;
    bench_summary(v, n, &med, &lo, &hi);
    return med;
}

/* Parses a whole decimal number in [lo, hi]; accepts k/K, m/M suffixes (x1000, x1000000) and
 * Ki/Mi (x1024, x1048576). 0 on success, -1 otherwise. */
static inline int bench_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    if (s == NULL || *s == '\0' || *s == '-') {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s) {
        return -1;
    }
    unsigned long long mul = 1;
    if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0) {
        mul = 1000;
    } else if (strcmp(end, "m") == 0 || strcmp(end, "M") == 0) {
        mul = 1000000;
    } else if (strcmp(end, "Ki") == 0) {
        mul = 1024;
    } else if (strcmp(end, "Mi") == 0) {
        mul = 1048576;
    } else if (*end != '\0') {
        return -1;
    }
    if (v > UINT64_MAX / mul) {
        return -1;
    }
    v *= mul;
    if (v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* An option's whole number in [lo, hi] (as bench_parse_u64); otherwise a one-line message
 * naming @p prog and @p name, and exit status 2 (bad arguments). */
static inline uint64_t bench_opt_u64(const char *prog, const char *name, const char *arg,
                                     uint64_t lo, uint64_t hi)
{
    uint64_t v;
    if (bench_parse_u64(arg, lo, hi, &v) != 0) {
        fprintf(stderr, "%s: %s: expected %llu..%llu (k, M, Ki, Mi suffixes allowed), got '%s'\n",
                prog, name, (unsigned long long)lo, (unsigned long long)hi, arg);
        exit(2);
    }
    return v;
}

/* Parses a decimal fraction in [lo, hi] (seconds, for example). 0 on success, -1 otherwise. */
static inline int bench_parse_double(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    if (s == NULL || *s == '\0') {
        return -1;
    }
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        return -1;
    }
    *out = v;
    return 0;
}

/* A "Name:   value kB" line of /proc/self/status (VmRSS:, RssAnon:) in KiB; -1 if absent. */
static inline long bench_proc_status_kib(const char *name)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(name);

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, name, n) == 0) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's output: the live line once a second, the summary table, JSON and CSV. All of
 * it runs on the main thread, from figures the workers handed over (load.h).
 */
#ifndef TERN_BENCH_REPORT_H
#define TERN_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "load.h"

/** One second of the run (the last one may be shorter: `dur_s`). */
struct bench_second {
    uint64_t t;                     /* seconds since the start, at the end of this one */
    double dur_s;                   /* its length */
    bool warmup;                    /* it ended inside the warm-up */
    struct bench_counts delta;      /* what happened during it */
    uint64_t p50[BENCH_NTYPES];     /* latencies of the operations that ended in it, us */
    uint64_t p99[BENCH_NTYPES];
};

/** What a run measured. */
struct bench_result {
    const struct bench_config *cfg;
    const char *target;           /* as given */
    const char *tls;              /* --tls as given, or NULL */
    double measured_s;            /* the measured time (after the warm-up) */
    bool interrupted;             /* stopped by a signal */
    struct bench_counts total;    /* measured */
    bench_hist hist[BENCH_NTYPES];
    struct bench_detail details[BENCH_MAX_DETAILS];
    size_t ndetails;
    uint64_t details_dropped;
    uint64_t aborted_at_end;
    uint64_t backlog_at_end;      /* open loop: arrivals due, never started */
    struct bench_negotiated negotiated; /* the first handshake of the first worker with one */
    struct bench_second *series;
    size_t nseries;
};

/** The name of @p mode ("handshake", ...). */
const char *bench_mode_name(enum bench_mode mode);

/** Sum of the operations completed / failed in @p c. */
uint64_t bench_counts_ok(const struct bench_counts *c);
uint64_t bench_counts_errors(const struct bench_counts *c);

/**
 * --resume ticket|session-id: why the server's resumption was not by the mechanism asked
 * for (session-id: it sent TLS 1.2 tickets; ticket: a TLS 1.2 run resumed without one), or
 * NULL when it was (or nothing was asked). The summary prints it; the run then fails.
 */
const char *bench_resume_mismatch(const struct bench_result *res);

/**
 * Prints the live line for @p sec; @p so_far holds the measured latencies up to now (the
 * interval's when still warming up). @p tty: rewrite one line in place ("\r"), else one line
 * per second.
 */
void bench_report_live(FILE *out, bool tty, const struct bench_result *res,
                       const struct bench_second *sec, const bench_hist *so_far);

/** Prints the summary table. */
void bench_report_summary(FILE *out, const struct bench_result *res);

/** Writes the JSON document. @return 0, or -1 with errno set (write error). */
int bench_report_json(FILE *out, const struct bench_result *res);

/** Writes the per-second series as CSV. @return 0, or -1 with errno set. */
int bench_report_csv(FILE *out, const struct bench_result *res);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A small writer of the Prometheus text exposition format, version 0.0.4 (what /metrics serves
 * as "text/plain; version=0.0.4"), into a growable buffer.
 *
 * The format, as this writer produces it:
 *   # HELP <name> <text, with \ and newline escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<label>="<value, with \, " and newline escaped>",...} <value>
 * HELP and TYPE come once per family, before its samples (prom_family remembers the families
 * it wrote and writes a repeated one's lines only once). Names follow Prometheus's rules
 * ([a-zA-Z_:][a-zA-Z0-9_:]*; label names [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"); a
 * bad name is refused (the call does nothing and returns -1) rather than written. Counters are
 * named with their `_total` suffix by the caller; a histogram's samples are <name>_bucket with
 * an `le` label (cumulative, ending with le="+Inf"), <name>_sum and <name>_count.
 *
 * Memory: a failed allocation marks the buffer `failed`; later calls do nothing; the caller
 * checks once at the end. One thread at a time per buffer.
 */
#ifndef TERN_APPS_PROM_H
#define TERN_APPS_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The output: data[0..len) (NUL-terminated when len > 0), plus the families written. */
struct prom_buf {
    char *data;
    size_t len, cap;
    bool failed;      /* out of memory: the output is incomplete */
    char **families;  /* names whose HELP/TYPE were written */
    size_t nfamilies, families_cap;
};

/** A family's type, as written in its TYPE line. */
enum prom_type {
    PROM_COUNTER,
    PROM_GAUGE,
    PROM_HISTOGRAM,
};

/** One label: both strings borrowed for the call; the value is escaped as written. */
struct prom_label {
    const char *name;
    const char *value;
};

/** An empty buffer (no allocation yet). */
void prom_init(struct prom_buf *b);

/** Frees what @p b holds and makes it empty again. */
void prom_free(struct prom_buf *b);

/** Appends printf-style text as is (no escaping): for other formats sharing the buffer. */
void prom_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** True if @p name is a valid metric name; label names: `prom_valid_label_name`. */
bool prom_valid_name(const char *name);
bool prom_valid_label_name(const char *name);

/**
 * Starts family @p name: its HELP (@p help escaped) and TYPE lines, unless written already.
 * @return 0; 1 if it was written before (nothing written now); -1 for a bad name.
 */
int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help);

/**
 * One sample line: @p name, the @p nlabels labels (none: no braces), the value.
 * @return 0; -1 for a bad metric or label name (nothing written).
 */
int prom_sample_u64(struct prom_buf *b, const char *name, const struct prom_label *labels,
                    size_t nlabels, uint64_t value);
int prom_sample_double(struct prom_buf *b, const char *name, const struct prom_label *labels,
                       size_t nlabels, double value);

/**
 * A whole histogram family's samples (after prom_family with PROM_HISTOGRAM): from the
 * per-bucket (NOT cumulative) @p counts, @p nbounds + 1 of them, the last one over the
 * highest bound, and the finite upper bounds @p bounds (ascending, @p nbounds of them). Writes
 * the cumulative <name>_bucket{le="..."} lines, le="+Inf", <name>_sum (@p sum) and
 * <name>_count (the total of @p counts), each with @p labels too.
 * @return 0; -1 for a bad name or bounds not ascending (nothing written).
 */
int prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
                   size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
                   double sum);

/** Shorthands: family + one unlabelled sample. @return as prom_family, or -1. */
int prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t value);
int prom_gauge(struct prom_buf *b, const char *name, const char *help, double value);

#endif

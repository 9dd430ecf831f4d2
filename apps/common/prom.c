/* SPDX-License-Identifier: MIT */
/*
 * The Prometheus text format writer (prom.h): everything is appended to one growable buffer;
 * allocation failures are sticky (`failed`), so callers write freely and check once.
 */
#include "prom.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_init(struct prom_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void prom_free(struct prom_buf *b)
{
    for (size_t i = 0; i < b->nfamilies; i++) {
        free(b->families[i]);
    }
    free(b->families);
    free(b->data);
    prom_init(b);
}

/* Room for @n more bytes and the NUL. */
static bool reserve(struct prom_buf *b, size_t n)
{
    if (b->failed) {
        return false;
    }
    if (b->len + n + 1 <= b->cap) {
        return true;
    }
    size_t cap = b->cap > 0 ? b->cap : 1024;
    while (cap < b->len + n + 1) {
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void append(struct prom_buf *b, const char *s, size_t n)
{
    if (reserve(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
        b->data[b->len] = '\0';
    }
}

static void append_str(struct prom_buf *b, const char *s)
{
    append(b, s, strlen(s));
}

void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Escapes for a label value (\, " and newline) or a HELP text (\ and newline only). */
static void append_escaped(struct prom_buf *b, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\') {
            append(b, "\\\\", 2);
        } else if (*s == '\n') {
            append(b, "\\n", 2);
        } else if (*s == '"' && quote) {
            append(b, "\\\"", 2);
        } else {
            append(b, s, 1);
        }
    }
}

static bool name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

bool prom_valid_name(const char *name)
{
    if (name == NULL || name[0] == '\0') {
        return false;
    }
    for (size_t i = 0; name[i] != '\0'; i++) {
        if (!name_char(name[i], i == 0, true)) {
            return false;
        }
    }
    return true;
}

bool prom_valid_label_name(const char *name)
{
    if (name == NULL || name[0] == '\0' || strncmp(name, "__", 2) == 0) {
        return false; /* "__" names are reserved for Prometheus itself */
    }
    for (size_t i = 0; name[i] != '\0'; i++) {
        if (!name_char(name[i], i == 0, false)) {
            return false;
        }
    }
    return true;
}

static bool seen(const struct prom_buf *b, const char *name)
{
    for (size_t i = 0; i < b->nfamilies; i++) {
        if (strcmp(b->families[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void remember(struct prom_buf *b, const char *name)
{
    if (b->failed) {
        return;
    }
    if (b->nfamilies == b->families_cap) {
        size_t cap = b->families_cap > 0 ? b->families_cap * 2 : 32;
        char **p = realloc(b->families, cap * sizeof(*p));
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->families = p;
        b->families_cap = cap;
    }
    char *copy = strdup(name);
    if (copy == NULL) {
        b->failed = true;
        return;
    }
    b->families[b->nfamilies++] = copy;
}

int prom_family(struct prom_buf *b, const char *name, enum prom_type type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};

    if (!prom_valid_name(name) || (unsigned)type > PROM_HISTOGRAM) {
        return -1;
    }
    if (seen(b, name)) {
        return 1;
    }
    remember(b, name);
    append_str(b, "# HELP ");
    append_str(b, name);
    append(b, " ", 1);
    append_escaped(b, help != NULL ? help : "", false);
    append_str(b, "\n# TYPE ");
    append_str(b, name);
    append(b, " ", 1);
    append_str(b, types[type]);
    append(b, "\n", 1);
    return 0;
}

static bool labels_ok(const struct prom_label *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!prom_valid_label_name(labels[i].name) || labels[i].value == NULL) {
            return false;
        }
    }
    return true;
}

/* name{a="x",b="y",<extra>="<extra_value>"} with the extra label (le) last, if any. */
static void append_series(struct prom_buf *b, const char *name, const char *suffix,
                          const struct prom_label *labels, size_t n, const char *extra,
                          const char *extra_value)
{
    append_str(b, name);
    append_str(b, suffix);
    if (n == 0 && extra == NULL) {
        return;
    }
    append(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        append_str(b, i > 0 ? "," : "");
        append_str(b, labels[i].name);
        append(b, "=\"", 2);
        append_escaped(b, labels[i].value, true);
        append(b, "\"", 1);
    }
    if (extra != NULL) {
        append_str(b, n > 0 ? "," : "");
        append_str(b, extra);
        append(b, "=\"", 2);
        append_escaped(b, extra_value, true);
        append(b, "\"", 1);
    }
    append(b, "}", 1);
}

/* A double as Prometheus reads it: +Inf, -Inf, NaN, else the shortest form that reads back. */
static void format_double(char *out, size_t len, double v)
{
    if (isnan(v)) {
        snprintf(out, len, "NaN");
    } else if (isinf(v)) {
        snprintf(out, len, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, len, "%.15g", v);
        if (strtod(out, NULL) != v) {
            snprintf(out, len, "%.17g", v);
        }
    }
}

int prom_sample_u64(struct prom_buf *b, const char *name, const struct prom_label *labels,
                    size_t nlabels, uint64_t value)
{
    if (!prom_valid_name(name) || !labels_ok(labels, nlabels)) {
        return -1;
    }
    char num[32];
    snprintf(num, sizeof(num), " %llu\n", (unsigned long long)value);
    append_series(b, name, "", labels, nlabels, NULL, NULL);
    append_str(b, num);
    return 0;
}

int prom_sample_double(struct prom_buf *b, const char *name, const struct prom_label *labels,
                       size_t nlabels, double value)
{
    if (!prom_valid_name(name) || !labels_ok(labels, nlabels)) {
        return -1;
    }
    char num[48];
    format_double(num, sizeof(num), value);
    append_series(b, name, "", labels, nlabels, NULL, NULL);
    append(b, " ", 1);
    append_str(b, num);
    append(b, "\n", 1);
    return 0;
}

int prom_histogram(struct prom_buf *b, const char *name, const struct prom_label *labels,
                   size_t nlabels, const double *bounds, const uint64_t *counts, size_t nbounds,
                   double sum)
{
    if (!prom_valid_name(name) || !labels_ok(labels, nlabels)) {
        return -1;
    }
    for (size_t i = 0; i < nbounds; i++) {
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
            return -1;
        }
    }
    uint64_t cumulative = 0;
    char le[48], num[32];
    for (size_t i = 0; i <= nbounds; i++) {
        cumulative += counts[i];
        if (i < nbounds) {
            format_double(le, sizeof(le), bounds[i]);
        } else {
            snprintf(le, sizeof(le), "+Inf");
        }
        append_series(b, name, "_bucket", labels, nlabels, "le", le);
        snprintf(num, sizeof(num), " %llu\n", (unsigned long long)cumulative);
        append_str(b, num);
    }
    format_double(le, sizeof(le), sum);
    append_series(b, name, "_sum", labels, nlabels, NULL, NULL);
    append(b, " ", 1);
    append_str(b, le);
    append(b, "\n", 1);
    append_series(b, name, "_count", labels, nlabels, NULL, NULL);
    snprintf(num, sizeof(num), " %llu\n", (unsigned long long)cumulative);
    append_str(b, num);
    return 0;
}

int prom_counter(struct prom_buf *b, const char *name, const char *help, uint64_t value)
{
    int rc = prom_family(b, name, PROM_COUNTER, help);
    return rc < 0 ? rc : prom_sample_u64(b, name, NULL, 0, value);
}

int prom_gauge(struct prom_buf *b, const char *name, const char *help, double value)
{
    int rc = prom_family(b, name, PROM_GAUGE, help);
    return rc < 0 ? rc : prom_sample_double(b, name, NULL, 0, value);
}

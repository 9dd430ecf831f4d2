/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's output (see report.h). JSON is written by hand: numbers with printf, strings
 * through `json_string`, which escapes quotes, backslashes and control bytes (error texts
 * may hold anything the peer sent).
 */
#include "report.h"

#include <math.h>
#include <string.h>

static const char *const mode_names[] = {
    [BENCH_MODE_HANDSHAKE] = "handshake", [BENCH_MODE_RESUME] = "resume",
    [BENCH_MODE_PSK] = "psk",             [BENCH_MODE_MIX] = "mix",
    [BENCH_MODE_THROUGHPUT] = "throughput", [BENCH_MODE_ECHO] = "echo",
    [BENCH_MODE_HOLD] = "hold",
};

const char *bench_mode_name(enum bench_mode mode)
{
    return mode <= BENCH_MODE_HOLD ? mode_names[mode] : "?";
}

uint64_t bench_counts_ok(const struct bench_counts *c)
{
    uint64_t n = 0;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        n += c->ok[t];
    }
    return n;
}

uint64_t bench_counts_errors(const struct bench_counts *c)
{
    uint64_t n = 0;
    for (unsigned k = 0; k < BENCH_NERRS; k++) {
        n += c->errors[k];
    }
    return n;
}

/* "812us", "2.14ms", "1.25s" into @p buf. */
static const char *fmt_us(char *buf, size_t len, uint64_t us)
{
    if (us < 1000) {
        snprintf(buf, len, "%uus", (unsigned)us);
    } else if (us < 1000000) {
        snprintf(buf, len, "%.2fms", (double)us / 1e3);
    } else {
        snprintf(buf, len, "%.2fs", (double)us / 1e6);
    }
    return buf;
}

static double per_s(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0.0;
}

static double pct(uint64_t n, uint64_t of)
{
    return of > 0 ? 100.0 * (double)n / (double)of : 0.0;
}

/* Whether the run makes resume picks (and so has resumption figures). */
static bool resume_used(const struct bench_config *cfg)
{
    return cfg->mode == BENCH_MODE_RESUME ||
           (cfg->mode == BENCH_MODE_MIX && cfg->mix[BENCH_TYPE_RESUME] > 0);
}

const char *bench_resume_mismatch(const struct bench_result *res)
{
    const struct bench_config *cfg = res->cfg;
    const struct bench_counts *c = &res->total;

    if (!cfg->resume_checked) {
        return NULL;
    }
    if (cfg->resume_session_id && c->tls12_tickets > 0) {
        return "the server sent TLS 1.2 session tickets: it resumed by ticket, not by session "
               "ID (turn its tickets off and its session cache on)";
    }
    if (!cfg->resume_session_id && strcmp(res->negotiated.protocol, "TLS 1.2") == 0 &&
        c->ok[BENCH_TYPE_RESUME] > 0 && c->tls12_tickets == 0) {
        return "the server sent no TLS 1.2 session ticket: it resumed by session ID, not by "
               "ticket";
    }
    return NULL;
}

/* Resume handshakes that offered a session and ended: resumed, full instead, refused. */
static uint64_t resume_offered(const struct bench_counts *c)
{
    return c->ok[BENCH_TYPE_RESUME] + c->full_instead + c->errors[BENCH_ERR_RESUME_REFUSED];
}

void bench_report_live(FILE *out, bool tty, const struct bench_result *res,
                       const struct bench_second *sec, const bench_hist *so_far)
{
    char line[512];
    size_t used = 0;

#define ADD(...)                                                                                   \
    do {                                                                                           \
        int n_ = snprintf(line + used, sizeof(line) - used, __VA_ARGS__);                          \
        if (n_ > 0) {                                                                              \
            used += (size_t)n_ < sizeof(line) - used ? (size_t)n_ : sizeof(line) - used - 1;       \
        }                                                                                          \
    } while (0)

    ADD("[%6.1fs%s]", (double)(sec->t - 1) + sec->dur_s, sec->warmup ? " warm-up" : "");
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        if (sec->delta.ok[t] == 0 && so_far[t].count == 0) {
            continue;
        }
        char p50[16], p99[16];
        ADD(" %s %.0f/s p50 %s p99 %s |", bench_type_name((enum bench_type)t),
            per_s(sec->delta.ok[t], sec->dur_s), fmt_us(p50, sizeof(p50),
                                                        bench_hist_percentile(&so_far[t], 50)),
            fmt_us(p99, sizeof(p99), bench_hist_percentile(&so_far[t], 99)));
    }
    if (sec->delta.full_instead > 0) {
        ADD(" not resumed %llu |", (unsigned long long)sec->delta.full_instead);
    }
    if (res->cfg->mode == BENCH_MODE_THROUGHPUT) {
        ADD(" in %.1f MB/s out %.1f MB/s |", per_s(sec->delta.bytes_in, sec->dur_s) / 1e6,
            per_s(sec->delta.bytes_out, sec->dur_s) / 1e6);
    }
    ADD(" errors %llu", (unsigned long long)bench_counts_errors(&sec->delta));
#undef ADD
    if (tty) {
        fprintf(out, "\r%s\033[K", line);
    } else {
        fprintf(out, "%s\n", line);
    }
    fflush(out);
}

/* ---- the summary ------------------------------------------------------------------------- */

void bench_report_summary(FILE *out, const struct bench_result *res)
{
    const struct bench_config *cfg = res->cfg;
    char b1[16], b2[16], b3[16], b4[16], b5[16], b6[16];

    fprintf(out, "\ntern-bench: %s against %s, %u thread%s, %u connection%s, ",
            bench_mode_name(cfg->mode), res->target, cfg->threads, cfg->threads == 1 ? "" : "s",
            cfg->connections, cfg->connections == 1 ? "" : "s");
    if (cfg->rate > 0) {
        fprintf(out, "open loop at %.0f/s\n", cfg->rate);
    } else {
        fprintf(out, "closed loop\n");
    }
    fprintf(out, "measured %.2f s", res->measured_s);
    if (cfg->warmup_us > 0) {
        fprintf(out, " after a %.0f s warm-up", (double)cfg->warmup_us / 1e6);
    }
    if (res->interrupted) {
        fprintf(out, " (interrupted)");
    }
    if (res->negotiated.protocol[0] != '\0') {
        fprintf(out, "\nnegotiated (first handshake): %s, %s, group %s", res->negotiated.protocol,
                res->negotiated.cipher,
                res->negotiated.group[0] != '\0' ? res->negotiated.group : "none");
    }
    fprintf(out, "\n\n");

    fprintf(out, "%-9s %10s %10s %9s %9s %9s %9s %9s %9s\n", "type", "count", "rate/s", "p50",
            "p90", "p99", "p99.9", "max", "mean");
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        const bench_hist *h = &res->hist[t];
        if (res->total.ok[t] == 0) {
            continue;
        }
        fprintf(out, "%-9s %10llu %10.1f %9s %9s %9s %9s %9s %9s\n",
                bench_type_name((enum bench_type)t), (unsigned long long)res->total.ok[t],
                per_s(res->total.ok[t], res->measured_s),
                fmt_us(b1, sizeof(b1), bench_hist_percentile(h, 50)),
                fmt_us(b2, sizeof(b2), bench_hist_percentile(h, 90)),
                fmt_us(b3, sizeof(b3), bench_hist_percentile(h, 99)),
                fmt_us(b4, sizeof(b4), bench_hist_percentile(h, 99.9)),
                fmt_us(b5, sizeof(b5), h->max),
                fmt_us(b6, sizeof(b6), (uint64_t)llround(bench_hist_mean(h))));
    }
    uint64_t ok = bench_counts_ok(&res->total);
    uint64_t errors = bench_counts_errors(&res->total);
    fprintf(out, "%-9s %10llu %10.1f\n", "total", (unsigned long long)ok,
            per_s(ok, res->measured_s));
    if (resume_used(cfg)) {
        const struct bench_counts *c = &res->total;
        uint64_t offered = resume_offered(c);
        uint64_t refused = c->errors[BENCH_ERR_RESUME_REFUSED];
        fprintf(out, "\nresumption: %llu sessions offered, %llu resumed (%.2f%%)\n",
                (unsigned long long)offered, (unsigned long long)c->ok[BENCH_TYPE_RESUME],
                pct(c->ok[BENCH_TYPE_RESUME], offered));
        fprintf(out, "  %-24s %10llu  (%.2f%%, %.1f/s; counted under full)\n",
                "full_instead_of_resumed", (unsigned long long)c->full_instead,
                pct(c->full_instead, offered), per_s(c->full_instead, res->measured_s));
        fprintf(out, "  %-24s %10llu  (errors: resume_refused)\n", "refused",
                (unsigned long long)refused);
        fprintf(out, "  %-24s %10llu  (full handshakes that made a session; under full)\n",
                "primed", (unsigned long long)c->primed);
        fprintf(out, "  %-24s %10llu  (received, warm-up included)\n", "tls12_tickets",
                (unsigned long long)c->tls12_tickets);
        if (cfg->ntargets > 1) {
            fprintf(out, "  %-24s %10llu  (offered to the target after the issuer's)\n",
                    "across_targets_offered", (unsigned long long)c->cross_offered);
            fprintf(out, "  %-24s %10llu  (%.2f%% of those)\n", "across_targets_resumed",
                    (unsigned long long)c->cross_resumed, pct(c->cross_resumed, c->cross_offered));
        }
        const char *mismatch = bench_resume_mismatch(res);
        if (mismatch != NULL) {
            fprintf(out, "ERROR: --resume %s: %s\n",
                    cfg->resume_session_id ? "session-id" : "ticket", mismatch);
        }
        if (pct(c->full_instead + refused, offered) > 1.0) {
            fprintf(out,
                    "WARNING: %.2f%% of the offered sessions were not resumed (%llu full "
                    "handshakes instead, %llu refused):\n         expired tickets, or servers "
                    "behind the target that do not share their ticket keys?\n",
                    pct(c->full_instead + refused, offered), (unsigned long long)c->full_instead,
                    (unsigned long long)refused);
        }
    }
    if (res->total.bytes_in > 0 || res->total.bytes_out > 0) {
        fprintf(out, "\nbytes: in %llu (%.2f MB/s), out %llu (%.2f MB/s)\n",
                (unsigned long long)res->total.bytes_in,
                per_s(res->total.bytes_in, res->measured_s) / 1e6,
                (unsigned long long)res->total.bytes_out,
                per_s(res->total.bytes_out, res->measured_s) / 1e6);
    }
    if (res->aborted_at_end > 0) {
        fprintf(out, "cut by the end of the run (not counted): %llu\n",
                (unsigned long long)res->aborted_at_end);
    }
    if (res->backlog_at_end > 0) {
        fprintf(out,
                "scheduled but never started (the target fell behind the rate): %llu\n",
                (unsigned long long)res->backlog_at_end);
    }
    fprintf(out, "\nerrors: %llu\n", (unsigned long long)errors);
    for (unsigned k = 0; k < BENCH_NERRS; k++) {
        if (res->total.errors[k] == 0) {
            continue;
        }
        fprintf(out, "  %-15s %10llu\n", bench_err_name((enum bench_err)k),
                (unsigned long long)res->total.errors[k]);
        for (size_t i = 0; i < res->ndetails; i++) {
            if (res->details[i].kind == (enum bench_err)k) {
                fprintf(out, "    %8llu  %s\n", (unsigned long long)res->details[i].count,
                        res->details[i].text);
            }
        }
    }
    if (res->details_dropped > 0) {
        fprintf(out, "  (%llu more errors with other texts)\n",
                (unsigned long long)res->details_dropped);
    }
}

/* ---- JSON ---------------------------------------------------------------------------------- */

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(out, "\\u%04x", *p);
            } else {
                fputc(*p, out);
            }
        }
    }
    fputc('"', out);
}

/* A finite number (JSON has no NaN or infinities). */
static void json_number(FILE *out, double v)
{
    fprintf(out, "%.3f", isfinite(v) ? v : 0.0);
}

static void json_latency(FILE *out, const bench_hist *h)
{
    fprintf(out,
            "{\"min\": %llu, \"mean\": ", (unsigned long long)(h->count > 0 ? h->min : 0));
    json_number(out, bench_hist_mean(h));
    fprintf(out,
            ", \"p50\": %llu, \"p90\": %llu, \"p99\": %llu, \"p99_9\": %llu, \"max\": %llu}",
            (unsigned long long)bench_hist_percentile(h, 50),
            (unsigned long long)bench_hist_percentile(h, 90),
            (unsigned long long)bench_hist_percentile(h, 99),
            (unsigned long long)bench_hist_percentile(h, 99.9), (unsigned long long)h->max);
}

/* Resumption figures (zeroes when the run made no resume picks): the sessions offered
 * (resumed + full_instead_of_resumed + refused), full_instead_of_resumed with its rate (per
 * second) and its share of the offered ones, the priming full handshakes, and the offers
 * that went to another target than the session's (several --target). */
static void json_resumption(FILE *out, const struct bench_result *res)
{
    const struct bench_counts *c = &res->total;
    uint64_t offered = resume_offered(c);

    fprintf(out, "  \"resumption\": {\"offered\": %llu, \"resumed\": %llu, \"resumed_pct\": ",
            (unsigned long long)offered, (unsigned long long)c->ok[BENCH_TYPE_RESUME]);
    json_number(out, pct(c->ok[BENCH_TYPE_RESUME], offered));
    fprintf(out, ", \"full_instead_of_resumed\": {\"count\": %llu, \"rate\": ",
            (unsigned long long)c->full_instead);
    json_number(out, per_s(c->full_instead, res->measured_s));
    fputs(", \"pct\": ", out);
    json_number(out, pct(c->full_instead, offered));
    fprintf(out, "}, \"refused\": %llu, \"primed\": %llu, \"tls12_tickets\": %llu, ",
            (unsigned long long)c->errors[BENCH_ERR_RESUME_REFUSED],
            (unsigned long long)c->primed, (unsigned long long)c->tls12_tickets);
    fprintf(out, "\"across_targets\": {\"offered\": %llu, \"resumed\": %llu}, \"by\": ",
            (unsigned long long)c->cross_offered, (unsigned long long)c->cross_resumed);
    json_string(out, !res->cfg->resume_checked    ? "any"
                     : res->cfg->resume_session_id ? "session-id"
                                                   : "ticket");
    fputs(", \"mechanism_ok\": ", out);
    fputs(bench_resume_mismatch(res) == NULL ? "true" : "false", out);
    fputs("},\n", out);
}

static void json_config(FILE *out, const struct bench_result *res)
{
    const struct bench_config *cfg = res->cfg;

    fputs("  \"config\": {\"target\": ", out);
    json_string(out, res->target);
    fputs(", \"mode\": ", out);
    json_string(out, bench_mode_name(cfg->mode));
    fputs(", \"mix\": {", out);
    for (unsigned t = 0; t < BENCH_NHANDSHAKE_TYPES; t++) {
        fprintf(out, "%s\"%s\": %u", t > 0 ? ", " : "", bench_type_name((enum bench_type)t),
                cfg->mode == BENCH_MODE_MIX ? cfg->mix[t] : 0);
    }
    fprintf(out,
            "}, \"threads\": %u, \"connections\": %u, \"count\": %llu, \"duration_s\": ",
            cfg->threads, cfg->connections, (unsigned long long)cfg->count);
    json_number(out, (double)cfg->duration_us / 1e6);
    fputs(", \"warmup_s\": ", out);
    json_number(out, (double)cfg->warmup_us / 1e6);
    fputs(", \"rate\": ", out);
    json_number(out, cfg->rate);
    fprintf(out, ", \"payload\": %zu, \"timeout_ms\": %u, \"tls\": ", cfg->payload,
            (unsigned)cfg->timeout_ms);
    if (res->tls != NULL) {
        json_string(out, res->tls);
    } else {
        fputs("null", out);
    }
    fprintf(out, ", \"source_addrs\": %zu, \"psk_identities\": %zu, \"plain\": %s},\n",
            cfg->nsources, cfg->npsks, cfg->plain ? "true" : "false");
}

static void json_series(FILE *out, const struct bench_result *res)
{
    fputs("  \"series\": [", out);
    for (size_t i = 0; i < res->nseries; i++) {
        const struct bench_second *s = &res->series[i];
        fprintf(out, "%s\n    {\"t\": %llu, \"dur_s\": ", i > 0 ? "," : "",
                (unsigned long long)s->t);
        json_number(out, s->dur_s);
        fprintf(out, ", \"warmup\": %s, \"ok\": {", s->warmup ? "true" : "false");
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            fprintf(out, "%s\"%s\": %llu", t > 0 ? ", " : "", bench_type_name((enum bench_type)t),
                    (unsigned long long)s->delta.ok[t]);
        }
        fputs("}, \"p50_us\": {", out);
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            fprintf(out, "%s\"%s\": %llu", t > 0 ? ", " : "", bench_type_name((enum bench_type)t),
                    (unsigned long long)s->p50[t]);
        }
        fputs("}, \"p99_us\": {", out);
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            fprintf(out, "%s\"%s\": %llu", t > 0 ? ", " : "", bench_type_name((enum bench_type)t),
                    (unsigned long long)s->p99[t]);
        }
        fprintf(out,
                "}, \"errors\": %llu, \"full_instead_of_resumed\": %llu, \"bytes_in\": %llu, "
                "\"bytes_out\": %llu}",
                (unsigned long long)bench_counts_errors(&s->delta),
                (unsigned long long)s->delta.full_instead, (unsigned long long)s->delta.bytes_in,
                (unsigned long long)s->delta.bytes_out);
    }
    fputs(res->nseries > 0 ? "\n  ]\n" : "]\n", out);
}

int bench_report_json(FILE *out, const struct bench_result *res)
{
    uint64_t ok = bench_counts_ok(&res->total);
    uint64_t errors = bench_counts_errors(&res->total);

    fputs("{\n  \"tool\": \"tern-bench\",\n  \"version\": ", out);
    json_string(out, tern_version_string());
    fputs(",\n", out);
    json_config(out, res);
    fputs("  \"negotiated\": {\"protocol\": ", out);
    json_string(out, res->negotiated.protocol);
    fputs(", \"cipher\": ", out);
    json_string(out, res->negotiated.cipher);
    fputs(", \"group\": ", out);
    json_string(out, res->negotiated.group);
    fputs("},\n  \"measured_s\": ", out);
    json_number(out, res->measured_s);
    fprintf(out, ",\n  \"interrupted\": %s,\n", res->interrupted ? "true" : "false");
    fprintf(out,
            "  \"totals\": {\"ok\": %llu, \"errors\": %llu, \"rate\": ", (unsigned long long)ok,
            (unsigned long long)errors);
    json_number(out, per_s(ok, res->measured_s));
    fprintf(out,
            ", \"bytes_in\": %llu, \"bytes_out\": %llu, \"mb_per_s_in\": ",
            (unsigned long long)res->total.bytes_in, (unsigned long long)res->total.bytes_out);
    json_number(out, per_s(res->total.bytes_in, res->measured_s) / 1e6);
    fputs(", \"mb_per_s_out\": ", out);
    json_number(out, per_s(res->total.bytes_out, res->measured_s) / 1e6);
    fprintf(out, ", \"aborted_at_end\": %llu, \"backlog_at_end\": %llu},\n",
            (unsigned long long)res->aborted_at_end, (unsigned long long)res->backlog_at_end);
    json_resumption(out, res);

    fputs("  \"types\": {", out);
    bool first = true;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        if (res->total.ok[t] == 0) {
            continue;
        }
        fprintf(out, "%s\n    \"%s\": {\"count\": %llu, \"rate\": ", first ? "" : ",",
                bench_type_name((enum bench_type)t), (unsigned long long)res->total.ok[t]);
        json_number(out, per_s(res->total.ok[t], res->measured_s));
        fputs(", \"latency_us\": ", out);
        json_latency(out, &res->hist[t]);
        fputc('}', out);
        first = false;
    }
    fputs(first ? "},\n" : "\n  },\n", out);

    fputs("  \"errors\": {", out);
    for (unsigned k = 0; k < BENCH_NERRS; k++) {
        fprintf(out, "%s\"%s\": %llu", k > 0 ? ", " : "", bench_err_name((enum bench_err)k),
                (unsigned long long)res->total.errors[k]);
    }
    fputs("},\n  \"error_details\": [", out);
    for (size_t i = 0; i < res->ndetails; i++) {
        fprintf(out, "%s\n    {\"kind\": \"%s\", \"count\": %llu, \"text\": ", i > 0 ? "," : "",
                bench_err_name(res->details[i].kind), (unsigned long long)res->details[i].count);
        json_string(out, res->details[i].text);
        fputc('}', out);
    }
    fputs(res->ndetails > 0 ? "\n  ],\n" : "],\n", out);
    json_series(out, res);
    fputs("}\n", out);
    return ferror(out) ? -1 : 0;
}

/* ---- CSV ------------------------------------------------------------------------------------ */

int bench_report_csv(FILE *out, const struct bench_result *res)
{
    fputs("second,dur_s,warmup", out);
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        const char *n = bench_type_name((enum bench_type)t);
        fprintf(out, ",ok_%s,p50_us_%s,p99_us_%s", n, n, n);
    }
    fputs(",errors,bytes_in,bytes_out,full_instead_of_resumed\n", out);
    for (size_t i = 0; i < res->nseries; i++) {
        const struct bench_second *s = &res->series[i];
        fprintf(out, "%llu,%.3f,%d", (unsigned long long)s->t, s->dur_s, s->warmup ? 1 : 0);
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            fprintf(out, ",%llu,%llu,%llu", (unsigned long long)s->delta.ok[t],
                    (unsigned long long)s->p50[t], (unsigned long long)s->p99[t]);
        }
        fprintf(out, ",%llu,%llu,%llu,%llu\n", (unsigned long long)bench_counts_errors(&s->delta),
                (unsigned long long)s->delta.bytes_in, (unsigned long long)s->delta.bytes_out,
                (unsigned long long)s->delta.full_instead);
    }
    return ferror(out) ? -1 : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench --mode hold's report: the summary and the JSON (hold_report.h). Main thread,
 * after the run.
 */
#include "hold_report.h"

#include <math.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

const char *const hold_err_names[HOLD_NERRS] = {
    "refused", "emfile", "addrnotavail", "timeout", "tls", "reset", "dropped", "other",
};

/* KiB per open connection between sample 0 and @p s, at @p field's offset; NAN: unknown. */
double hold_per_conn(const struct hold_report *rep, const struct hold_sample *s, size_t field,
                     double unit_kib)
{
    const long long a = *(const long long *)((const char *)&rep->samples[0] + field);
    const long long b = *(const long long *)((const char *)s + field);
    if (a < 0 || b < 0 || s->open == 0) {
        return NAN;
    }
    return (double)(b - a) * unit_kib / (double)s->open;
}

void hold_summary(FILE *out, const struct hold_report *rep)
{
    const struct bench_config *cfg = rep->cfg;
    const struct hold_totals *e = &rep->end;

    fprintf(out, "\ntern-bench: hold against %s, %u thread%s, %u connection%s (%s), at most %u "
                 "handshakes at once",
            rep->target, cfg->threads, cfg->threads == 1 ? "" : "s", cfg->connections,
            cfg->connections == 1 ? "" : "s",
            cfg->plain ? "plain TCP" : cfg->psk_cfg != NULL ? "PSK" : "certificate",
            cfg->concurrency);
    if (cfg->rate > 0) {
        fprintf(out, ", %.0f/s", cfg->rate);
    }
    fprintf(out, "%s\n", rep->interrupted ? " (interrupted)" : "");
    if (rep->climb_us > 0) {
        double s = (double)rep->climb_us / 1e6;
        fprintf(out, "opened: %llu of %u in %.2f s (%.0f/s); held %.1f s; open at the end: %llu\n",
                (unsigned long long)e->opened, cfg->connections, s,
                s > 0 ? (double)e->opened / s : 0.0, rep->held_s,
                (unsigned long long)e->open_now);
    } else {
        fprintf(out, "opened: %llu of %u; the climb did not end; open at the end: %llu\n",
                (unsigned long long)e->opened, cfg->connections, (unsigned long long)e->open_now);
    }
    fprintf(out, "failed: %llu (", (unsigned long long)e->failed);
    for (unsigned k = 0; k < HOLD_NERRS; k++) {
        fprintf(out, "%s%s %llu", k > 0 ? ", " : "", hold_err_names[k],
                (unsigned long long)e->errors[k]);
    }
    fprintf(out, ")\n");
    for (unsigned k = 0; k < HOLD_NERRS; k++) {
        if (rep->texts[k][0] != '\0') {
            fprintf(out, "  %s, first: %s\n", hold_err_names[k], rep->texts[k]);
        }
    }
    if (cfg->keepalive_ms > 0) {
        fprintf(out, "keep-alive: every %.0f s, %zu B: %llu round trips (%llu failed), p50 %.2fms "
                     "p99 %.2fms max %.2fms\n",
                cfg->keepalive_ms / 1e3, cfg->payload, (unsigned long long)rep->hist.count,
                (unsigned long long)e->ka_failed,
                (double)bench_hist_percentile(&rep->hist, 50) / 1e3,
                (double)bench_hist_percentile(&rep->hist, 99) / 1e3,
                (double)rep->hist.max / 1e3);
        fprintf(out, "keep-alive after the climb (whole seconds): %llu round trips, p50 %.2fms "
                     "p99 %.2fms max %.2fms\n",
                (unsigned long long)rep->held_hist.count,
                (double)bench_hist_percentile(&rep->held_hist, 50) / 1e3,
                (double)bench_hist_percentile(&rep->held_hist, 99) / 1e3,
                (double)rep->held_hist.max / 1e3);
    }
    long long d = rep->client_rss1 - rep->client_rss0;
    fprintf(out, "client: keeps %s per held connection; VmRSS %.1f -> %.1f MiB (%.2f KiB per "
                 "connection)\n",
            cfg->keepalive_ms > 0 ? "its tern socket (TLS state, for the keep-alive records)"
                                  : "only the descriptor (the TLS state is freed after the "
                                    "handshake)",
            (double)rep->client_rss0 / 1024, (double)rep->client_rss1 / 1024,
            e->open_now > 0 ? (double)d / (double)e->open_now : 0.0);
    if (cfg->server_pid != 0 && rep->nsamples >= 2) {
        const struct hold_sample *s0 = &rep->samples[0];
        const struct hold_sample *b = rep->burst >= 0 ? &rep->samples[rep->burst] : NULL;
        const struct hold_sample *z = &rep->samples[rep->nsamples - 1];
        fprintf(out, "server (pid %d): VmRSS %.1f MiB at the start", cfg->server_pid,
                (double)s0->rss_kib / 1024);
        if (b != NULL) {
            fprintf(out, "; after the climb %.1f MiB, %llu open: %.2f KiB per connection",
                    (double)b->rss_kib / 1024, (unsigned long long)b->open,
                    hold_per_conn(rep, b, offsetof(struct hold_sample, rss_kib), 1.0));
        }
        fprintf(out, "; at the end (%.1f s held) %.1f MiB, %llu open: %.2f KiB per connection\n",
                rep->held_s, (double)z->rss_kib / 1024, (unsigned long long)z->open,
                hold_per_conn(rep, z, offsetof(struct hold_sample, rss_kib), 1.0));
        double page_kib = (double)sysconf(_SC_PAGESIZE) / 1024.0;
        fprintf(out, "kernel (the whole machine: on loopback the client's sockets count too): "
                     "Slab %+.1f MiB, %.2f KiB per connection; TCP buffers %+.1f MiB, %.2f KiB "
                     "per connection (at the end)\n",
                (double)(z->slab_kib - s0->slab_kib) / 1024,
                hold_per_conn(rep, z, offsetof(struct hold_sample, slab_kib), 1.0),
                (double)(z->tcp_pages - s0->tcp_pages) * page_kib / 1024,
                hold_per_conn(rep, z, offsetof(struct hold_sample, tcp_pages), page_kib));
    }
    if (rep->negotiated.protocol[0] != '\0') {
        fprintf(out, "negotiated: %s %s%s%s\n", rep->negotiated.protocol, rep->negotiated.cipher,
                rep->negotiated.group[0] != '\0' ? " " : "", rep->negotiated.group);
    }
    fprintf(out, "limit: one process holds at most %u connections (descriptor limit %llu)\n",
            rep->max_conns, rep->fd_hard);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20 || ch == 0x7f) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

/* A KiB-per-connection figure, or null when unknown (NAN). */
static void json_kib(FILE *f, double v)
{
    if (isnan(v)) {
        fputs("null", f);
    } else {
        fprintf(f, "%.3f", v);
    }
}

int hold_write_json(FILE *f, const struct hold_report *rep)
{
    const struct bench_config *cfg = rep->cfg;
    const struct hold_totals *e = &rep->end;

    fprintf(f, "{\n  \"mode\": \"hold\",\n  \"target\": ");
    json_str(f, rep->target);
    fprintf(f, ",\n  \"config\": {\"connections\": %u, \"threads\": %u, \"rate\": %.0f, "
               "\"concurrency\": %u, \"duration_s\": %.3f, \"keepalive_s\": %.3f, "
               "\"payload\": %zu, \"timeout_ms\": %u, \"handshake\": \"%s\", \"tls\": ",
            cfg->connections, cfg->threads, cfg->rate, cfg->concurrency,
            (double)cfg->duration_us / 1e6, cfg->keepalive_ms / 1e3,
            cfg->keepalive_ms > 0 ? cfg->payload : 0, cfg->timeout_ms,
            cfg->plain ? "plain" : cfg->psk_cfg != NULL ? "psk" : "certificate");
    if (rep->tls != NULL) {
        json_str(f, rep->tls);
    } else {
        fputs("null", f);
    }
    fprintf(f, ", \"source_addrs\": %zu, \"server_pid\": %d},\n", cfg->nsources,
            cfg->server_pid);
    fprintf(f, "  \"interrupted\": %s,\n", rep->interrupted ? "true" : "false");
    fprintf(f, "  \"opened\": %llu,\n  \"open_at_end\": %llu,\n", (unsigned long long)e->opened,
            (unsigned long long)e->open_now);
    fprintf(f, "  \"failed\": {\"total\": %llu", (unsigned long long)e->failed);
    for (unsigned k = 0; k < HOLD_NERRS; k++) {
        fprintf(f, ", \"%s\": %llu", hold_err_names[k], (unsigned long long)e->errors[k]);
    }
    fprintf(f, "},\n  \"errors\": [");
    bool first = true;
    for (unsigned k = 0; k < HOLD_NERRS; k++) {
        if (rep->texts[k][0] != '\0') {
            fprintf(f, "%s{\"kind\": \"%s\", \"first\": ", first ? "" : ", ", hold_err_names[k]);
            json_str(f, rep->texts[k]);
            fputc('}', f);
            first = false;
        }
    }
    fprintf(f, "],\n  \"climb\": {\"attempted\": %llu, \"complete\": %s, \"seconds\": ",
            (unsigned long long)(e->opened + e->not_opened),
            rep->climb_us > 0 ? "true" : "false");
    if (rep->climb_us > 0) {
        fprintf(f, "%.3f, \"rate\": %.1f", (double)rep->climb_us / 1e6,
                (double)e->opened / ((double)rep->climb_us / 1e6));
    } else {
        fputs("null, \"rate\": null", f);
    }
    fprintf(f, ", \"cut_at_end\": %llu},\n  \"held_s\": %.3f,\n", (unsigned long long)rep->cut,
            rep->held_s);
    fprintf(f, "  \"keepalive\": {\"every_s\": %.3f, \"count\": %llu, \"failed\": %llu, "
               "\"p50_us\": %llu, \"p99_us\": %llu, \"max_us\": %llu, \"mean_us\": %.1f, "
               "\"held\": {\"count\": %llu, \"p50_us\": %llu, \"p99_us\": %llu, "
               "\"max_us\": %llu}},\n",
            cfg->keepalive_ms / 1e3, (unsigned long long)rep->hist.count,
            (unsigned long long)e->ka_failed,
            (unsigned long long)bench_hist_percentile(&rep->hist, 50),
            (unsigned long long)bench_hist_percentile(&rep->hist, 99),
            (unsigned long long)rep->hist.max, bench_hist_mean(&rep->hist),
            (unsigned long long)rep->held_hist.count,
            (unsigned long long)bench_hist_percentile(&rep->held_hist, 50),
            (unsigned long long)bench_hist_percentile(&rep->held_hist, 99),
            (unsigned long long)rep->held_hist.max);
    long long d = rep->client_rss1 - rep->client_rss0;
    fprintf(f, "  \"client\": {\"keeps\": \"%s\", \"kept_sockets\": %llu, \"vmrss_kib_start\": "
               "%lld, \"vmrss_kib_end\": %lld, \"kib_per_connection\": ",
            cfg->keepalive_ms > 0 ? "tls_socket" : "descriptor",
            (unsigned long long)rep->kept_sockets, rep->client_rss0, rep->client_rss1);
    json_kib(f, e->open_now > 0 ? (double)d / (double)e->open_now : NAN);
    fprintf(f, ", \"max_connections\": %u, \"descriptor_limit\": %llu},\n  \"server\": ",
            rep->max_conns, rep->fd_hard);
    if (cfg->server_pid == 0 || rep->nsamples < 2) {
        fputs("null,\n", f);
    } else {
        const struct hold_sample *z = &rep->samples[rep->nsamples - 1];
        const struct hold_sample *b = rep->burst >= 0 ? &rep->samples[rep->burst] : NULL;
        double page_kib = (double)sysconf(_SC_PAGESIZE) / 1024.0;
        fprintf(f, "{\"pid\": %d, \"rss_kib_per_connection_after_climb\": ", cfg->server_pid);
        json_kib(f, b != NULL ? hold_per_conn(rep, b, offsetof(struct hold_sample, rss_kib), 1.0)
                              : NAN);
        fputs(", \"rss_kib_per_connection_at_end\": ", f);
        json_kib(f, hold_per_conn(rep, z, offsetof(struct hold_sample, rss_kib), 1.0));
        fputs(", \"kernel_whole_machine\": {\"slab_kib_per_connection\": ", f);
        json_kib(f, hold_per_conn(rep, z, offsetof(struct hold_sample, slab_kib), 1.0));
        fputs(", \"tcp_mem_kib_per_connection\": ", f);
        json_kib(f, hold_per_conn(rep, z, offsetof(struct hold_sample, tcp_pages), page_kib));
        fputs("},\n    \"samples\": [", f);
        for (unsigned i = 0; i < rep->nsamples; i++) {
            const struct hold_sample *s = &rep->samples[i];
            fprintf(f, "%s\n      {\"label\": \"%s\", \"t\": %.3f, \"open\": %llu, "
                       "\"vmrss_kib\": %lld, \"slab_kib\": %lld, \"tcp_mem_pages\": %lld}",
                    i > 0 ? "," : "", s->label, s->t_s, (unsigned long long)s->open,
                    s->rss_kib, s->slab_kib, s->tcp_pages);
        }
        fputs("]},\n", f);
    }
    /* the negotiated names are wolfSSL's (letters, digits, '-', '_', ' '): no escapes */
    fprintf(f, "  \"negotiated\": {\"protocol\": \"%s\", \"cipher\": \"%s\", \"group\": \"%s\"},\n"
               "  \"series\": [", rep->negotiated.protocol, rep->negotiated.cipher,
            rep->negotiated.group);
    for (size_t i = 0; i < rep->nseries; i++) {
        fprintf(f, "%s\n    {\"t\": %.0f, \"open\": %llu, \"opened\": %llu, \"failed\": %llu, "
                   "\"keepalive\": %llu}",
                i > 0 ? "," : "", rep->series[i].t, (unsigned long long)rep->series[i].open,
                (unsigned long long)rep->series[i].opened,
                (unsigned long long)rep->series[i].failed, (unsigned long long)rep->series[i].ka);
    }
    fputs("]\n}\n", f);
    return ferror(f) ? -1 : 0;
}


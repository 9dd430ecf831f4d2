/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's counters (app.h): the stats line (SIGUSR1, stop) and the admin listener's
 * families and /stats.json.
 */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "common/admin.h"
#include "common/fleet_tickets.h"
#include "common/log.h"
#include "common/setup.h"
#include "stores.h"

/* ---- stats --------------------------------------------------------------------------- */

static uint64_t sum_all(const struct app *app, enum gw_counter which)
{
    uint64_t n = 0;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        n += gw_counter_sum(s, which);
    }
    return n;
}

void log_stats(struct app *app, const char *msg)
{
    tern_stats st;
    char text[4096]; /* ~1.9 KB with every counter in the billions and a few alerts */

    if (tern_runtime_stats(app->rt, &st) < 0) {
        return;
    }
    if (tern_stats_format(&st, TERN_STATS_TEXT, text, sizeof(text)) < 0) {
        return;
    }
    /* the outcomes first, then every runtime counter */
    app_log(APP_LOG_INFO, msg,
            "uptime_s=%.1f heap_kib=%ld handshakes_ok=%llu unknown_identity=%llu bad_key=%llu "
            "lookup_timeouts=%llu identity_limit=%llu rate_limited_identity=%llu "
            "rate_limited_source=%llu proxy_in_errors=%llu backend_connects=%llu "
            "backend_errors=%llu "
            "backend_failovers=%llu no_backend=%llu reloads_ok=%llu reloads_failed=%llu %s",
            app_seconds_since(&app->started), app_heap_in_use_kib(),
            (unsigned long long)st.handshakes, (unsigned long long)st.psk_unknown,
            (unsigned long long)st.psk_bad_key, (unsigned long long)st.psk_timeouts,
            (unsigned long long)sum_all(app, GW_IDENTITY_LIMIT),
            (unsigned long long)sum_all(app, GW_RATE_LIMITED_IDENTITY),
            (unsigned long long)sum_all(app, GW_RATE_LIMITED_SOURCE),
            (unsigned long long)sum_all(app, GW_PROXY_IN_ERRORS),
            (unsigned long long)sum_all(app, GW_BACKEND_CONNECTS),
            (unsigned long long)sum_all(app, GW_BACKEND_ERRORS),
            (unsigned long long)sum_all(app, GW_BACKEND_FAILOVERS),
            (unsigned long long)sum_all(app, GW_NO_BACKEND),
            (unsigned long long)atomic_load(&app->reloads_ok),
            (unsigned long long)atomic_load(&app->reloads_failed), text);
}

/* ---- the admin listener's families (any reactor; reads atomics and published settings) ---- */

/* A service removed by a reload and later added back is a new gw_service of the same name
 * (the old one drains and stays in the list): the series of a name are its newest
 * instance's, or /metrics would hold each sample twice. Its counters start again from zero,
 * as after a restart. */
static bool shadowed(const struct gw_service *s)
{
    for (const struct gw_service *t = next_service(s); t != NULL; t = next_service(t)) {
        if (strcmp(t->name, s->name) == 0) {
            return true;
        }
    }
    return false;
}

/* One counter of a family: which gw_counter, and its label value (when the family has a
 * second label besides `service`). */
struct part {
    enum gw_counter which;
    const char *value;
};

/* A counter family over every service: one sample per service and part. */
static void counter_family(struct prom_buf *out, const struct app *app, const char *name,
                           const char *help, const char *lname, const struct part *parts,
                           size_t n)
{
    prom_family(out, name, PROM_COUNTER, help);
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            struct prom_label l[2] = {{"service", s->name}, {lname, parts[i].value}};
            prom_sample_u64(out, name, l, lname != NULL ? 2 : 1,
                            gw_counter_sum(s, parts[i].which));
        }
    }
}

static void metrics_counter(struct prom_buf *out, const struct app *app, const char *name,
                            const char *help, enum gw_counter which)
{
    const struct part one = {which, NULL};
    counter_family(out, app, name, help, NULL, &one, 1);
}

void gateway_metrics(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    static const struct part refusals[] = {
        {GW_UNKNOWN_IDENTITY, "unknown_identity"},
        {GW_IDENTITY_LIMIT, "identity_limit"},
        {GW_RATE_LIMITED_IDENTITY, "rate_identity"},
        {GW_RATE_LIMITED_SOURCE, "rate_source"},
        {GW_PROXY_IN_ERRORS, "proxy_header"},
    };

    prom_family(out, "tern_gateway_services", PROM_GAUGE,
                "Services configured (draining ones apart).");
    prom_family(out, "tern_gateway_connections_open", PROM_GAUGE,
                "Device connections open now, per service.");
    prom_family(out, "tern_gateway_identities", PROM_GAUGE,
                "Identities in the service's PSK store in force.");
    uint64_t n = 0;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        struct prom_label l[1] = {{"service", s->name}};
        n += !atomic_load(&s->draining);
        prom_sample_u64(out, "tern_gateway_connections_open", l, 1, gw_open_connections(s));
        /* safe on a reactor: published settings outlive every reactor callback that saw them */
        const struct gw_settings *st = atomic_load_explicit(&s->cur, memory_order_acquire);
        prom_sample_u64(out, "tern_gateway_identities", l, 1, identities_of(st));
    }
    prom_sample_u64(out, "tern_gateway_services", NULL, 0, n);
    metrics_counter(out, app, "tern_gateway_connections_accepted_total",
                    "Device connections accepted.", GW_ACCEPTED);
    metrics_counter(out, app, "tern_gateway_connections_closed_total",
                    "Device connections ended.", GW_CLOSED);
    metrics_counter(out, app, "tern_gateway_handshakes_total",
                    "Device TLS handshakes completed.", GW_HANDSHAKES);
    metrics_counter(out, app, "tern_gateway_handshake_failures_total",
                    "Device connections that ended before their handshake completed.",
                    GW_HANDSHAKE_FAILURES);
    counter_family(out, app, "tern_gateway_refused_total",
                   "Device connections refused by the gateway, by reason.", "reason", refusals,
                   sizeof(refusals) / sizeof(refusals[0]));
    static const struct part directions[] = {{GW_BYTES_UP, "up"}, {GW_BYTES_DOWN, "down"}};
    counter_family(out, app, "tern_gateway_forwarded_bytes_total",
                   "Bytes forwarded, device to backend (up) and back (down).", "direction",
                   directions, 2);
    metrics_counter(out, app, "tern_gateway_backend_connects_total",
                    "Backend connections established.", GW_BACKEND_CONNECTS);
    metrics_counter(out, app, "tern_gateway_backend_errors_total",
                    "Backend connection attempts that failed.", GW_BACKEND_ERRORS);
    metrics_counter(out, app, "tern_gateway_backend_failovers_total",
                    "Attempts moved on to the next backend after a failure.",
                    GW_BACKEND_FAILOVERS);
    metrics_counter(out, app, "tern_gateway_no_backend_total",
                    "Device connections closed because no backend could be reached.",
                    GW_NO_BACKEND);
    prom_family(out, "tern_gateway_backend_connect_duration_seconds", PROM_HISTOGRAM,
                "Time to connect to a backend (TCP, and TLS with backend_tls).");
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        double bounds[GW_LATENCY_BUCKETS];
        uint64_t counts[GW_LATENCY_BUCKETS + 1] = {0};
        uint64_t sum_us = 0;
        for (size_t b = 0; b < GW_LATENCY_BUCKETS; b++) {
            bounds[b] = gw_latency_bounds_us[b] / 1e6;
        }
        for (unsigned r = 0; r < TERN_MAX_REACTORS; r++) {
            for (size_t b = 0; b <= GW_LATENCY_BUCKETS; b++) {
                counts[b] += atomic_load_explicit(&s->counters[r].latency[b], memory_order_relaxed);
            }
            sum_us += atomic_load_explicit(&s->counters[r].latency_sum_us, memory_order_relaxed);
        }
        struct prom_label l[1] = {{"service", s->name}};
        prom_histogram(out, "tern_gateway_backend_connect_duration_seconds", l, 1, bounds, counts,
                       GW_LATENCY_BUCKETS, sum_us / 1e6);
    }
    prom_family(out, "tern_gateway_reloads_total", PROM_COUNTER,
                "Configuration reloads, by result (failed: refused, or a listener not opened).");
    struct prom_label ok[1] = {{"result", "ok"}}, failed[1] = {{"result", "failed"}};
    prom_sample_u64(out, "tern_gateway_reloads_total", ok, 1, atomic_load(&app->reloads_ok));
    prom_sample_u64(out, "tern_gateway_reloads_total", failed, 1,
                    atomic_load(&app->reloads_failed));
    static const struct {
        enum gw_id_counter which;
        const char *name, *help;
    } id_families[] = {
        {GW_ID_HANDSHAKES, "tern_gateway_identity_handshakes_total",
         "Handshakes completed by the identities of metrics_identities (the pattern is the "
         "label)."},
        {GW_ID_CLOSED, "tern_gateway_identity_connections_closed_total",
         "Of those, connections ended (open now: handshakes - closed)."},
        {GW_ID_BYTES_UP, "tern_gateway_identity_forwarded_bytes_total", NULL},
    };
    unsigned nrows = TERN_MAX_REACTORS;
    for (size_t f = 0; f < sizeof(id_families) / sizeof(id_families[0]); f++) {
        bool bytes = id_families[f].which == GW_ID_BYTES_UP;
        prom_family(out, id_families[f].name, PROM_COUNTER,
                    bytes ? "Bytes forwarded for the identities of metrics_identities, up "
                            "(device to backend) and down."
                          : id_families[f].help);
        for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
            if (shadowed(s)) {
                continue;
            }
            _Atomic uint64_t(*t)[GW_MAX_ID_METRICS][GW_ID_COUNTERS] =
                atomic_load_explicit(&s->id_counters, memory_order_acquire);
            unsigned names = atomic_load_explicit(&s->n_id_names, memory_order_acquire);
            for (unsigned r = 0; t != NULL && r < names; r++) {
                uint64_t v[GW_ID_COUNTERS] = {0};
                for (unsigned k = 0; k < nrows; k++) {
                    for (int w = 0; w < GW_ID_COUNTERS; w++) {
                        v[w] += atomic_load_explicit(&t[k][r][w], memory_order_relaxed);
                    }
                }
                if (bytes) {
                    struct prom_label up[3] = {
                        {"service", s->name}, {"identity", s->id_names[r]}, {"direction", "up"}};
                    struct prom_label down[3] = {
                        {"service", s->name}, {"identity", s->id_names[r]}, {"direction", "down"}};
                    prom_sample_u64(out, id_families[f].name, up, 3, v[GW_ID_BYTES_UP]);
                    prom_sample_u64(out, id_families[f].name, down, 3, v[GW_ID_BYTES_DOWN]);
                } else {
                    struct prom_label l[2] = {{"service", s->name}, {"identity", s->id_names[r]}};
                    prom_sample_u64(out, id_families[f].name, l, 2, v[id_families[f].which]);
                }
            }
        }
    }
    prom_family(out, "tern_ticket_key_age_seconds", PROM_GAUGE,
                "How long the session ticket sealing key has sealed (rotation or key file).");
    prom_sample_u64(out, "tern_ticket_key_age_seconds", NULL, 0,
                    (uint64_t)(tern_ticket_keys_age(app->tickets) > 0
                                   ? tern_ticket_keys_age(app->tickets) : 0));
    if (app->fleet != NULL) {
        fleet_tickets_metrics(app->fleet, out);
    }
    prom_family(out, "tern_gateway_last_reload_timestamp_seconds", PROM_GAUGE,
                "When the last reload was tried (Unix time; 0: never).");
    prom_sample_u64(out, "tern_gateway_last_reload_timestamp_seconds", NULL, 0,
                    (uint64_t)atomic_load(&app->last_reload));
    stores_metrics(out);
}

size_t gateway_health_detail(char *buf, size_t len, void *user)
{
    (void)user;
    return stores_health(buf, len);
}

void gateway_stats_json(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    prom_printf(out, "{\"reloads_ok\":%llu,\"reloads_failed\":%llu,\"services\":[",
                (unsigned long long)atomic_load(&app->reloads_ok),
                (unsigned long long)atomic_load(&app->reloads_failed));
    bool first = true;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        const struct gw_settings *st = atomic_load_explicit(&s->cur, memory_order_acquire);
        /* service names are [A-Za-z0-9._-]: no escaping needed */
        prom_printf(out,
                    "%s{\"name\":\"%s\",\"draining\":%s,\"identities\":%zu,\"open\":%llu,"
                    "\"accepted\":%llu,\"handshakes\":%llu,\"handshake_failures\":%llu,"
                    "\"backend_connects\":%llu,\"backend_errors\":%llu,\"bytes_up\":%llu,"
                    "\"bytes_down\":%llu}",
                    first ? "" : ",", s->name, atomic_load(&s->draining) ? "true" : "false",
                    identities_of(st), (unsigned long long)gw_open_connections(s),
                    (unsigned long long)gw_counter_sum(s, GW_ACCEPTED),
                    (unsigned long long)gw_counter_sum(s, GW_HANDSHAKES),
                    (unsigned long long)gw_counter_sum(s, GW_HANDSHAKE_FAILURES),
                    (unsigned long long)gw_counter_sum(s, GW_BACKEND_CONNECTS),
                    (unsigned long long)gw_counter_sum(s, GW_BACKEND_ERRORS),
                    (unsigned long long)gw_counter_sum(s, GW_BYTES_UP),
                    (unsigned long long)gw_counter_sum(s, GW_BYTES_DOWN));
        first = false;
    }
    prom_printf(out, "]}");
}

/* SIGUSR1, on the signal thread: the counters are readable from any thread. */
void on_usr1(tern_runtime *rt, void *user)
{
    (void)rt;
    log_stats(user, "stats");
}


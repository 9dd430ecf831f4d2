/* SPDX-License-Identifier: MIT */
/*
 * Counters: summed on read from every reactor's own block and the acceptor's. Readers may
 * run on any thread; each field is read with a relaxed atomic load, so a sum is a close
 * snapshot, not a transaction.
 */
#include "reactor.h"
#include "rt.h"

#include <tern/error.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Upper bounds of the latency buckets, in microseconds (the last bucket has none). */
static const uint64_t bucket_us[TERN_STATS_HANDSHAKE_BUCKETS - 1] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
    10000000,
};

void tern__count_handshake(tern__counters *c, int kind, uint64_t us)
{
    unsigned i = 0;
    while (i < TERN_STATS_HANDSHAKE_BUCKETS - 1 && us > bucket_us[i]) {
        i++;
    }
    tern__count(&c->hs_kind[kind], 1);
    tern__count(&c->hs_bucket[i], 1);
    tern__count(&c->hs_us_sum, us);
}

double tern_stats_handshake_bucket_bound(unsigned i)
{
    return i < TERN_STATS_HANDSHAKE_BUCKETS - 1 ? (double)bucket_us[i] / 1e6 : INFINITY;
}

/* Wake-ups import a few hundred bytes and cost ~10 us of CPU: the buckets sit two to three
 * orders of magnitude below the handshake's, and the last bound catches a stalled reactor. */
static const uint64_t wake_bucket_us[TERN_STATS_WAKE_BUCKETS - 1] = {
    10, 25, 50, 100, 250, 500, 1000, 5000,
};

/* The latency only: the caller counts hib_wakeups itself, next to hib_now. */
void tern__count_wake(tern__counters *c, uint64_t us)
{
    unsigned i = 0;
    while (i < TERN_STATS_WAKE_BUCKETS - 1 && us > wake_bucket_us[i]) {
        i++;
    }
    tern__count(&c->wake_bucket[i], 1);
    tern__count(&c->wake_us_sum, us);
}

double tern_stats_wake_bucket_bound(unsigned i)
{
    return i < TERN_STATS_WAKE_BUCKETS - 1 ? (double)wake_bucket_us[i] / 1e6 : INFINITY;
}

void tern__counters_add(tern_stats *o, const tern__counters *c)
{
    o->connections_open += tern__read(&c->open);
    o->connections_accepted += tern__read(&c->accepted);
    o->connections_outgoing += tern__read(&c->outgoing);
    o->connections_closed += tern__read(&c->closed);
    o->connections_rejected += tern__read(&c->rejected);
    o->handoff_full += tern__read(&c->handoff_full);
    o->bytes_in += tern__read(&c->bytes_in);
    o->bytes_out += tern__read(&c->bytes_out);
    o->tasks_run += tern__read(&c->tasks_run);
    o->mailbox_full += tern__read(&c->mailbox_full);
    o->accept_emfile += tern__read(&c->accept_emfile);
    o->accept_enfile += tern__read(&c->accept_enfile);
    o->accept_enomem += tern__read(&c->accept_enomem);
    o->accept_other += tern__read(&c->accept_other);
    o->accept_paused += tern__read(&c->accept_paused);
    o->timeouts_idle += tern__read(&c->timeouts_idle);
    o->timeouts_connect += tern__read(&c->timeouts_connect);
    o->resets += tern__read(&c->resets);
    o->psk_lookups += tern__read(&c->psk_lookups);
    o->psk_unknown += tern__read(&c->psk_unknown);
    o->psk_bad_key += tern__read(&c->psk_bad_key);
    o->psk_timeouts += tern__read(&c->psk_timeouts);
    o->psk_overload += tern__read(&c->psk_overload);
    o->psk_store_errors += tern__read(&c->psk_store_errors);
    o->psk_pending += tern__read(&c->psk_pending);
    o->psk_no_suite += tern__read(&c->psk_no_suite);

    /* The kinds and reasons are read once each; the totals are their sums, so a snapshot's
     * parts always add up to its total. */
    uint64_t k[TERN__HS_KINDS], f[TERN__HS_FAILS];
    for (unsigned i = 0; i < TERN__HS_KINDS; i++) {
        k[i] = tern__read(&c->hs_kind[i]);
        o->handshakes += k[i];
    }
    o->handshakes_full13 += k[TERN__HS_FULL13];
    o->handshakes_full12 += k[TERN__HS_FULL12];
    o->handshakes_resumed += k[TERN__HS_RESUMED];
    o->handshakes_psk13 += k[TERN__HS_PSK13];
    o->handshakes_psk12 += k[TERN__HS_PSK12];
    o->handshakes_psk += k[TERN__HS_PSK13] + k[TERN__HS_PSK12];
    for (unsigned i = 0; i < TERN__HS_FAILS; i++) {
        f[i] = tern__read(&c->hs_fail[i]);
        o->handshake_failures += f[i];
    }
    o->handshake_failures_unknown_identity += f[TERN__HS_FAIL_UNKNOWN_IDENTITY];
    o->handshake_failures_bad_key += f[TERN__HS_FAIL_BAD_KEY];
    o->handshake_failures_timeout += f[TERN__HS_FAIL_TIMEOUT];
    o->handshake_failures_version += f[TERN__HS_FAIL_VERSION];
    o->handshake_failures_no_shared += f[TERN__HS_FAIL_NO_SHARED];
    o->handshake_failures_certificate += f[TERN__HS_FAIL_CERTIFICATE];
    o->handshake_failures_protocol += f[TERN__HS_FAIL_PROTOCOL];
    o->handshake_failures_peer_closed += f[TERN__HS_FAIL_PEER_CLOSED];
    o->handshake_failures_other += f[TERN__HS_FAIL_OTHER];
    o->handshake_duration_us_sum += tern__read(&c->hs_us_sum);
    for (unsigned i = 0; i < TERN_STATS_HANDSHAKE_BUCKETS; i++) {
        o->handshake_duration_buckets[i] += tern__read(&c->hs_bucket[i]);
    }
    for (unsigned i = 0; i < 256; i++) {
        o->alerts_sent[i] += tern__read(&c->alerts_sent[i]);
        o->alerts_received[i] += tern__read(&c->alerts_received[i]);
    }
    o->hibernated_now += tern__read(&c->hib_now);
    o->hibernations += tern__read(&c->hib_count);
    o->wakeups += tern__read(&c->hib_wakeups);
    o->hibernate_failures += tern__read(&c->hib_export_failures);
    o->wake_failures += tern__read(&c->hib_import_failures);
    o->wake_duration_us_sum += tern__read(&c->wake_us_sum);
    for (unsigned i = 0; i < TERN_STATS_WAKE_BUCKETS; i++) {
        o->wake_duration_buckets[i] += tern__read(&c->wake_bucket[i]);
    }
}

/* RFC 8446 6, RFC 5246 7.2 (and 6066, 7301, 8446's additions): the defined alerts. */
static const char *const alert_names[256] = {
    [0] = "close_notify",
    [10] = "unexpected_message",
    [20] = "bad_record_mac",
    [21] = "decryption_failed",
    [22] = "record_overflow",
    [30] = "decompression_failure",
    [40] = "handshake_failure",
    [41] = "no_certificate",
    [42] = "bad_certificate",
    [43] = "unsupported_certificate",
    [44] = "certificate_revoked",
    [45] = "certificate_expired",
    [46] = "certificate_unknown",
    [47] = "illegal_parameter",
    [48] = "unknown_ca",
    [49] = "access_denied",
    [50] = "decode_error",
    [51] = "decrypt_error",
    [60] = "export_restriction",
    [70] = "protocol_version",
    [71] = "insufficient_security",
    [80] = "internal_error",
    [86] = "inappropriate_fallback",
    [90] = "user_canceled",
    [100] = "no_renegotiation",
    [109] = "missing_extension",
    [110] = "unsupported_extension",
    [111] = "certificate_unobtainable",
    [112] = "unrecognized_name",
    [113] = "bad_certificate_status_response",
    [114] = "bad_certificate_hash_value",
    [115] = "unknown_psk_identity",
    [116] = "certificate_required",
    [120] = "no_application_protocol",
    [121] = "ech_required",
};

const char *tern_stats_alert_name(unsigned alert)
{
    return alert < 256 ? alert_names[alert] : NULL;
}

static void add_reactor(tern_stats *out, const tern_reactor *r)
{
    tern__counters_add(out, &r->counters);
    out->mailbox_depth += tern__queue_size(&r->mailbox.tasks);
}

int tern_runtime_stats(const tern_runtime *rt, tern_stats *out)
{
    if (rt == NULL || out == NULL) {
        return TERN_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < rt->nreactors; i++) {
        add_reactor(out, rt->reactors[i]);
    }
    tern__counters_add(out, &rt->acceptor_counters);
    return 0;
}

int tern_runtime_reactor_stats(const tern_runtime *rt, unsigned i, tern_stats *out)
{
    if (rt == NULL || out == NULL || i >= rt->nreactors) {
        return TERN_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    add_reactor(out, rt->reactors[i]);
    return 0;
}

/* One table drives both formats, so they never disagree. */
#define TERN__STATS_FIELDS(XX)                                                                  \
    XX(connections_open)                                                                       \
    XX(connections_accepted)                                                                   \
    XX(connections_outgoing)                                                                   \
    XX(connections_closed)                                                                     \
    XX(connections_rejected)                                                                   \
    XX(handoff_full)                                                                           \
    XX(bytes_in)                                                                               \
    XX(bytes_out)                                                                              \
    XX(tasks_run)                                                                              \
    XX(mailbox_full)                                                                           \
    XX(mailbox_depth)                                                                          \
    XX(accept_emfile)                                                                          \
    XX(accept_enfile)                                                                          \
    XX(accept_enomem)                                                                          \
    XX(accept_other)                                                                           \
    XX(accept_paused)                                                                          \
    XX(timeouts_idle)                                                                          \
    XX(timeouts_connect)                                                                       \
    XX(resets)                                                                                 \
    XX(handshakes)                                                                             \
    XX(handshake_failures)                                                                     \
    XX(handshakes_resumed)                                                                     \
    XX(handshakes_psk)                                                                         \
    XX(psk_lookups)                                                                            \
    XX(psk_unknown)                                                                            \
    XX(psk_bad_key)                                                                            \
    XX(psk_timeouts)                                                                           \
    XX(psk_overload)                                                                           \
    XX(psk_store_errors)                                                                       \
    XX(psk_pending)                                                                            \
    XX(psk_no_suite)                                                                           \
    XX(handshakes_full13)                                                                      \
    XX(handshakes_full12)                                                                      \
    XX(handshakes_psk13)                                                                       \
    XX(handshakes_psk12)                                                                       \
    XX(handshake_failures_unknown_identity)                                                    \
    XX(handshake_failures_bad_key)                                                             \
    XX(handshake_failures_timeout)                                                             \
    XX(handshake_failures_version)                                                             \
    XX(handshake_failures_no_shared)                                                           \
    XX(handshake_failures_certificate)                                                         \
    XX(handshake_failures_protocol)                                                            \
    XX(handshake_failures_peer_closed)                                                         \
    XX(handshake_failures_other)                                                               \
    XX(handshake_duration_us_sum)                                                              \
    XX(hibernated_now)                                                                         \
    XX(hibernations)                                                                           \
    XX(wakeups)                                                                                \
    XX(hibernate_failures)                                                                     \
    XX(wake_failures)                                                                          \
    XX(wake_duration_us_sum)

ssize_t tern_stats_format(const tern_stats *st, enum tern_stats_format_kind kind, char *buf,
                          size_t len)
{
    size_t off = 0;
    bool json = kind == TERN_STATS_JSON;
    bool first = true;

    if (st == NULL || (buf == NULL && len > 0) ||
        (kind != TERN_STATS_TEXT && kind != TERN_STATS_JSON)) {
        return TERN_EINVAL;
    }
    if (len > 0) {
        buf[0] = '\0';
    }
#define APPEND(...)                                                                             \
    do {                                                                                       \
        int n_ = snprintf(off < len ? buf + off : NULL, off < len ? len - off : 0, __VA_ARGS__); \
        if (n_ > 0) {                                                                          \
            off += (size_t)n_;                                                                 \
        }                                                                                      \
    } while (0)
    if (json) {
        APPEND("{");
    }
#define XX(f)                                                                                   \
    APPEND(json ? "%s\"%s\":%llu" : "%s%s=%llu", first ? "" : (json ? "," : " "), #f,          \
           (unsigned long long)st->f);                                                         \
    first = false;
    TERN__STATS_FIELDS(XX)
#undef XX
    /* the buckets as a list (not cumulative); the alerts by name, the nonzero ones only */
    APPEND(json ? ",\"handshake_duration_buckets\":[" : " handshake_duration_buckets=");
    for (unsigned i = 0; i < TERN_STATS_HANDSHAKE_BUCKETS; i++) {
        APPEND("%s%llu", i > 0 ? "," : "", (unsigned long long)st->handshake_duration_buckets[i]);
    }
    APPEND(json ? "]" : "");
    APPEND(json ? ",\"wake_duration_buckets\":[" : " wake_duration_buckets=");
    for (unsigned i = 0; i < TERN_STATS_WAKE_BUCKETS; i++) {
        APPEND("%s%llu", i > 0 ? "," : "", (unsigned long long)st->wake_duration_buckets[i]);
    }
    APPEND(json ? "]" : "");
    for (int dir = 0; dir < 2; dir++) {
        const uint64_t *a = dir == 0 ? st->alerts_sent : st->alerts_received;
        const char *key = dir == 0 ? "alerts_sent" : "alerts_received";
        bool none = true;
        APPEND(json ? ",\"%s\":{" : " %s=", key);
        for (unsigned i = 0; i < 256; i++) {
            if (a[i] == 0) {
                continue;
            }
            const char *name = tern_stats_alert_name(i);
            char num[16];
            if (name == NULL) {
                snprintf(num, sizeof(num), "alert%u", i);
                name = num;
            }
            APPEND(json ? "%s\"%s\":%llu" : "%s%s:%llu", none ? "" : ",", name,
                   (unsigned long long)a[i]);
            none = false;
        }
        APPEND(json ? "}" : "");
    }
    if (json) {
        APPEND("}");
    }
#undef APPEND
    return (ssize_t)off;
}

/* SPDX-License-Identifier: MIT */
/*
 * Per-reactor counters (tern_stats is their sum). One writer each, the owner, with a relaxed
 * load + store (a plain add on x86, no lock prefix); any thread may read.
 */
#ifndef TERN_RUNTIME_COUNTERS_H
#define TERN_RUNTIME_COUNTERS_H

#include <stdatomic.h>
#include <stdint.h>

#include <tern/stats.h>

/* What a completed handshake was (a partition: each counts in exactly one). */
enum tern__hs_kind {
    TERN__HS_FULL13,  /* TLS 1.3, certificate, no session resumed, no external PSK */
    TERN__HS_FULL12,  /* TLS 1.2, the same */
    TERN__HS_RESUMED, /* a session resumed (ticket or session ID; either version) */
    TERN__HS_PSK13,   /* TLS 1.3 with an external PSK (not a resumption) */
    TERN__HS_PSK12,   /* TLS 1.2 PSK suite */
    TERN__HS_KINDS
};

/* Why a handshake failed (a partition of handshake_failures; see stats.h). */
enum tern__hs_fail {
    TERN__HS_FAIL_UNKNOWN_IDENTITY,
    TERN__HS_FAIL_BAD_KEY,
    TERN__HS_FAIL_TIMEOUT,
    TERN__HS_FAIL_VERSION,
    TERN__HS_FAIL_PROTOCOL,
    TERN__HS_FAIL_NO_SHARED,
    TERN__HS_FAIL_CERTIFICATE,
    TERN__HS_FAIL_PEER_CLOSED,
    TERN__HS_FAIL_OTHER,
    TERN__HS_FAILS
};

typedef struct tern__counters {
    _Atomic uint64_t open, accepted, outgoing, closed, rejected, handoff_full;
    _Atomic uint64_t bytes_in, bytes_out, tasks_run, mailbox_full;
    _Atomic uint64_t accept_emfile, accept_enfile, accept_enomem, accept_other, accept_paused;
    _Atomic uint64_t timeouts_idle, timeouts_connect, resets;
    /* handshakes by kind and failures by reason: each event is one store into one slot;
     * tern_stats' totals (handshakes, handshake_failures, ...) are their sums */
    _Atomic uint64_t hs_kind[TERN__HS_KINDS];
    _Atomic uint64_t hs_fail[TERN__HS_FAILS];
    /* handshake latency: one bucket (not cumulative) + the sum, per completed handshake */
    _Atomic uint64_t hs_bucket[TERN_STATS_HANDSHAKE_BUCKETS];
    _Atomic uint64_t hs_us_sum;
    _Atomic uint64_t psk_lookups, psk_unknown, psk_bad_key, psk_timeouts, psk_overload;
    _Atomic uint64_t psk_store_errors, psk_pending; /* psk_pending: a gauge, +1 and -1 */
    _Atomic uint64_t psk_no_suite;
    /* hibernation (ssl/hibernate.c): hib_now is a gauge (+1, -1); wake-up latency buckets
     * (not cumulative) + the sum */
    _Atomic uint64_t hib_now, hib_count, hib_wakeups, hib_export_failures, hib_import_failures;
    _Atomic uint64_t wake_bucket[TERN_STATS_WAKE_BUCKETS];
    _Atomic uint64_t wake_us_sum;
    /* TLS alerts by description (RFC 8446 6), sent and received; last: rarely touched */
    _Atomic uint64_t alerts_sent[256], alerts_received[256];
} tern__counters;

static inline void tern__count(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}
static inline uint64_t tern__read(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}
/* A failed handshake, counted once, under @reason (enum tern__hs_fail). */
static inline void tern__count_hs_failure(tern__counters *c, int reason)
{
    tern__count(&c->hs_fail[reason], 1);
}
/* A completed handshake of @kind that took @us microseconds since it started. */
void tern__count_handshake(tern__counters *c, int kind, uint64_t us);

/* A wake-up from hibernation that took @us microseconds. */
void tern__count_wake(tern__counters *c, uint64_t us);

void tern__counters_add(tern_stats *out, const tern__counters *c);

#endif

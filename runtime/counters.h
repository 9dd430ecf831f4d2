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

typedef struct tern__counters {
    _Atomic uint64_t open, accepted, outgoing, closed, rejected, handoff_full;
    _Atomic uint64_t bytes_in, bytes_out, tasks_run, mailbox_full;
    _Atomic uint64_t accept_emfile, accept_enfile, accept_enomem, accept_other, accept_paused;
    _Atomic uint64_t timeouts_idle, timeouts_connect, resets;
    _Atomic uint64_t handshakes, handshake_failures, handshakes_resumed, handshakes_psk;
    _Atomic uint64_t psk_lookups, psk_unknown, psk_bad_key, psk_timeouts, psk_overload;
    _Atomic uint64_t psk_store_errors, psk_pending; /* psk_pending: a gauge, +1 and -1 */
    _Atomic uint64_t psk_no_suite;
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
void tern__counters_add(tern_stats *out, const tern__counters *c);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Token buckets for tern-gateway's handshake rate limits (per PSK identity, per source
 * address): a bucket holds up to `burst` tokens, gains `rate` tokens a second, and each
 * handshake attempt takes one; an attempt that finds less than one token is refused.
 *
 * One table is shared by every reactor. It is set-associative: a key's seeded hash picks a
 * set of GW_RATE_WAYS buckets, and the key lives in one of them or nowhere. A set is guarded
 * by one of GW_RATE_STRIPES mutexes (set number modulo the stripe count). A table is touched
 * once per handshake attempt, never on the data path, so a short critical section (a scan of
 * 8 buckets) under a striped lock costs nothing measurable; the alternative, one table per
 * reactor with the rate divided by the reactor count, cannot divide a small burst (3 over 4
 * reactors) and lets a device that lands on an idle reactor through, so exactness won.
 *
 * Memory is fixed at creation. A key not in its set takes a free bucket, or else the bucket
 * of its set that holds the most tokens once refilled (the least recently used among equals):
 * a full bucket is the same as no bucket (a new one starts full), so evicting it loses
 * nothing; evicting a partly used one hands that key a fresh burst, which the table counts
 * (`lost`). A key that drained its bucket is the last its set gives up, so a flood of new keys
 * (a scan of identities) does not reset the limit of the key that is being refused. The hash
 * is seeded from the system's random source at creation, so that keys cannot be chosen to
 * land in one set. Keys are kept as a 128-bit fingerprint (two seeded hashes), not as bytes:
 * entries have one size whatever the key's length.
 *
 * Threads: `gw_rate_take*` and the counters from any thread; new / free on one thread
 * while no other uses the table.
 */
#ifndef TERN_GATEWAY_RATELIMIT_H
#define TERN_GATEWAY_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_RATE_WAYS 8     /* buckets per set */
#define GW_RATE_STRIPES 64 /* mutexes per table */
/* Default capacity: 16384 buckets (about 640 KiB): more distinct identities or sources than
 * one gateway sees in a few seconds of a scan, after which buckets refill and free up. */
#define GW_RATE_DEFAULT_CAPACITY 16384

struct gw_rate_table;

/**
 * A table of at least @p capacity buckets (rounded up to a power of two of sets;
 * 0: GW_RATE_DEFAULT_CAPACITY). @return it, or NULL when out of memory. @thread setup
 */
struct gw_rate_table *gw_rate_table_new(size_t capacity);

/** Frees @p t (NULL: nothing). @thread setup (no other thread uses @p t) */
void gw_rate_table_free(struct gw_rate_table *t);

/**
 * One attempt of @p key (@p len bytes, any content) against a bucket of @p rate tokens a
 * second and at most @p burst tokens (less than 1 counts as 1), at time @p now_ms (a
 * monotonic clock in milliseconds; a time before the bucket's last one counts as no time
 * passed). @p rate <= 0: no limit (nothing is stored).
 * @return true: allowed (a token was taken); false: refused. @thread any
 */
bool gw_rate_take(struct gw_rate_table *t, const void *key, size_t len, double rate,
                  double burst, uint64_t now_ms);

/* The longest address key: a family byte and an IPv6 address. */
#define GW_RATE_ADDR_KEY_MAX 17

/**
 * Writes the key of @p sa's address to @p out: a family byte, then the address (AF_INET or
 * AF_INET6; the port left out; an IPv4-mapped IPv6 address as its IPv4 address), for callers
 * that put it into a longer key of their own. @return its length; 0 for another family.
 * @thread any
 */
size_t gw_rate_addr_key(uint8_t out[GW_RATE_ADDR_KEY_MAX], const struct sockaddr *sa);

/**
 * `gw_rate_take` keyed by the address of @p sa (AF_INET or AF_INET6; the port is ignored; an
 * IPv4-mapped IPv6 address is its IPv4 address). Another family: allowed, nothing stored.
 * @thread any
 */
bool gw_rate_take_addr(struct gw_rate_table *t, const struct sockaddr *sa, double rate,
                       double burst, uint64_t now_ms);

/** Buckets given to another key while in use (all of them), and of those the ones that had
 * not refilled yet (their key got a fresh burst). @thread any */
uint64_t gw_rate_evictions(const struct gw_rate_table *t);
uint64_t gw_rate_evictions_lost(const struct gw_rate_table *t);

/** The number of buckets @p t holds (its capacity, rounded up). @thread any */
size_t gw_rate_capacity(const struct gw_rate_table *t);

#endif

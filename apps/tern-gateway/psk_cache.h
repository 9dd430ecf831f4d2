/* SPDX-License-Identifier: MIT */
/*
 * The identity cache in front of the fleet's Redis store (psk_redis.c): a bounded hash of
 * identity -> record (or "unknown" / "disabled"), shared by the device reactors (readers) and
 * the fleet thread (the writer, and readers).
 *
 * Layout: the table is split into stripes (1..256, a power of two, each holding at least 64
 * entries when the bound allows), each with its own mutex, hash buckets and CLOCK list. A
 * call holds one stripe's lock for a copy of one entry (or a walk of one stripe for the
 * maintenance calls); no lock is held between calls, and no callback runs under a lock.
 * Identities are hashed with SipHash-1-3 under a random key (identities come from devices:
 * a client cannot aim them at one bucket).
 *
 * Each entry is one allocation: a 53-byte header, then the identity, the key and the backend
 * (variable length; no NUL, no padding to the record's 272 bytes). A typical entry (16-byte
 * identity, 32-byte key, no backend) asks malloc for 101 bytes (a 112-byte chunk in glibc),
 * plus 8 to 16 bytes of bucket array: about 120-128 bytes per entry, ~125 MB for a million.
 * A negative entry is the header and the identity (about 80 bytes).
 *
 * Times are monotonic milliseconds (CLOCK_MONOTONIC_COARSE unless a clock is given). A
 * positive entry is fresh until `fresh_until`, then stale (still served, one refresh asked
 * for) until `stale_until`, then a miss. A negative entry is fresh until its TTL, then a miss.
 *
 * Bound: each stripe holds at most max_entries / stripes entries; a new identity in a full
 * stripe evicts one of its entries by CLOCK (second chance: an entry read since the hand last
 * passed is moved to the back once; negative entries get no second chance), so the total
 * never exceeds max_entries and entries that devices use survive a flood of unknown ones.
 *
 * Keys are secret: every entry is wiped (explicit_bzero) before it is freed, on removal,
 * eviction, replacement and psk_cache_free.
 */
#ifndef TERN_GATEWAY_PSK_CACHE_H
#define TERN_GATEWAY_PSK_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tern-gateway/psk_redis.h"

struct psk_cache;

/** A clock for tests: monotonic milliseconds. */
typedef uint64_t (*psk_cache_clock_fn)(void *user);

/** @return a cache of at most @p max_entries (>= 1), or NULL (memory). @p clock NULL:
 * CLOCK_MONOTONIC_COARSE. @thread setup */
struct psk_cache *psk_cache_new(size_t max_entries, psk_cache_clock_fn clock, void *clock_user);

/** Wipes and frees every entry and the cache. NULL is a no-op. @thread setup (no user left) */
void psk_cache_free(struct psk_cache *c);

/** The cache's clock, now. @thread any */
uint64_t psk_cache_now_ms(const struct psk_cache *c);

enum psk_cache_state {
    PSK_CACHE_MISS,     /* not cached, or past its time (stale_until; a negative's TTL) */
    PSK_CACHE_FRESH,    /* positive, within its TTL: @p rec filled */
    PSK_CACHE_STALE,    /* positive, past its TTL, within stale: @p rec filled */
    PSK_CACHE_NEGATIVE, /* unknown or disabled, within its TTL */
};

/** Why a negative entry is negative. */
enum psk_cache_negative {
    PSK_CACHE_UNKNOWN = 0,
    PSK_CACHE_DISABLED = 1,
};

/**
 * Looks @p id up and copies its record out under the stripe's lock.
 * @param rec       receives the record on FRESH and STALE (may be NULL)
 * @param refresh   (may be NULL) on STALE: set true if this call is the one that marked the
 *                  entry "refresh queued" (the caller must then queue the refresh, or call
 *                  psk_cache_clear_refresh if it cannot); false if one was queued before.
 *                  NULL: the flag is left alone.
 * @param negative  (may be NULL) on NEGATIVE: why (enum psk_cache_negative)
 * @thread any
 */
enum psk_cache_state psk_cache_get(struct psk_cache *c, const void *id, size_t len,
                                   struct psk_record *rec, bool *refresh, int *negative);

/**
 * Stores a positive record for @p id (replacing any entry, whose key is wiped): fresh for
 * @p ttl_ms, then stale for @p stale_ms more. Its "refresh queued" flag is clear.
 * @param was_positive  (may be NULL) whether the entry replaced was positive (at any age)
 * @return 0; -1 (@p id or @p rec out of bounds, or out of memory: the old entry stays).
 * @thread any
 */
int psk_cache_put(struct psk_cache *c, const void *id, size_t len, const struct psk_record *rec,
                  uint64_t ttl_ms, uint64_t stale_ms, bool *was_positive);

/** Stores a negative entry (@p why: enum psk_cache_negative) for @p ttl_ms. As psk_cache_put
 * otherwise. @thread any */
int psk_cache_put_negative(struct psk_cache *c, const void *id, size_t len, int why,
                           uint64_t ttl_ms, bool *was_positive);

/** Removes @p id. @p was_positive as in psk_cache_put. @return whether it was cached.
 * @thread any */
bool psk_cache_remove(struct psk_cache *c, const void *id, size_t len, bool *was_positive);

/** Whether @p id is cached (at any age); @p positive (may be NULL) says which kind.
 * @thread any */
bool psk_cache_peek(struct psk_cache *c, const void *id, size_t len, bool *positive);

/** Clears the "refresh queued" flag of @p id (a refresh that could not be sent or failed).
 * @thread any */
void psk_cache_clear_refresh(struct psk_cache *c, const void *id, size_t len);

/** Removes every negative entry. @return how many. @thread any (one stripe locked at once) */
size_t psk_cache_drop_negatives(struct psk_cache *c);

/** One identity, as psk_cache_list_positive copies it out. */
struct psk_cache_ident {
    uint8_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
};

#define PSK_CACHE_CURSOR_END UINT64_MAX

/**
 * Copies out up to @p max identities of positive entries (any age), continuing from
 * *@p cursor (start with 0); *@p cursor becomes PSK_CACHE_CURSOR_END after the last. Each
 * call locks one stripe at a time and holds nothing afterwards. Entries present for the whole
 * walk are listed at least once (an entry may be listed twice if its stripe grew meanwhile),
 * except when a batch ended inside one bucket's chain and that chain changed before the next
 * call (with a @p max of a few dozen, next to never: chains hold one or two entries);
 * entries added during the walk may or may not be. @p max >= 1.
 * @return the number copied (0 with the cursor at the end when there are no more).
 * @thread any
 */
size_t psk_cache_list_positive(struct psk_cache *c, uint64_t *cursor,
                               struct psk_cache_ident *out, size_t max);

/** The cache's keyed hash of @p id (SipHash-1-3 under its random key): for the fleet
 * thread's own table of lookups in flight, safe from identities chosen to collide.
 * @thread any */
uint64_t psk_cache_hash(const struct psk_cache *c, const void *id, size_t len);

/** Entries in the cache now (a relaxed sum over the stripes). @thread any */
size_t psk_cache_count(const struct psk_cache *c);

/** The bound the cache was made with, and its number of stripes. @thread any */
size_t psk_cache_max_entries(const struct psk_cache *c);
unsigned psk_cache_stripes(const struct psk_cache *c);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The fleet's identity store: identities in Redis, a bounded cache in front of it, live
 * invalidation, and no outage when Redis goes.
 *
 * Key layout (one hash per identity, `prefix` from the URL, default "tern:psk:"):
 *   HSET tern:psk:<identity> key <hex, 16..64 bytes> [hash sha256|sha384] [disabled 1]
 *                            [max_conn N] [backend HOST:PORT]
 * read with one HMGET. An identity with no `key` field, a bad key, or `disabled` set to
 * anything but "" / "0" is unknown (the same refusal on the wire: no oracle).
 * Invalidation: PUBLISH <prefix>invalidate <identity> (or "*" for everything), and keyspace
 * notifications when the server has them on (notify-keyspace-events with K and h, g or x:
 * PSUBSCRIBE __keyspace@<db>__:<prefix>*), so a writer that forgets to publish is still seen.
 *
 * Threads: the device reactors call psk_redis_lookup / psk_redis_cached; every Redis
 * connection, timer and reply lives on the fleet thread (app_loop, apps/common/redis.h). The
 * cache is shared by both: striped locks, each held for a copy of one entry.
 *
 * A lookup, on a device reactor:
 *   - fresh positive entry: answered inline (the key); fresh negative entry: refused inline;
 *   - positive entry past its TTL but within `stale_s`: answered inline with it, and one
 *     refresh is queued (stale-while-revalidate; while Redis is down or slow, this is
 *     stale-while-error, bounded by stale_s);
 *   - miss (or past stale_s): Redis up: the authenticator is deferred and a lookup goes to the
 *     fleet thread (at most `max_inflight` at once, the same identity's lookups share one
 *     command); Redis down: refused inline (unknown on the wire, counted as `unavailable`).
 * The fleet thread answers deferred authenticators itself (tern_psk_authenticator_complete /
 * _reject from any thread) and fills the cache.
 * After an outage (the subscriber connection reconnected: invalidations may have been lost),
 * negative entries are dropped and every positive entry is read again in the background;
 * identities found removed or disabled are reported through `on_removed`.
 *
 * The marker: the key <prefix> itself (never an identity's key), set by whoever loads the
 * identities (contrib/tern-psk-redis does). Once a store was seen with it, a known identity
 * answered unknown is removed only if an EXISTS of the marker, sent right after, says it is
 * still there: a Redis that came back empty (or flushed, or the wrong database) does not make
 * every cached identity "removed" (and every device closed with close_removed); the cache is
 * kept as in an outage, logged once, counted (`removals_ignored`).
 */
#ifndef TERN_GATEWAY_PSK_REDIS_H
#define TERN_GATEWAY_PSK_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

struct app_loop;
struct psk_redis;

/** One identity as Redis holds it. */
struct psk_record {
    uint8_t key[TERN_PSK_MAX_KEY];
    size_t key_len;           /* 16..64 */
    enum tern_psk_hash hash;
    uint32_t max_conn;        /* 0: the service's limit */
    char backend[272];        /* "HOST:PORT" to route this identity to; "": the service's */
};

struct psk_redis_options {
    const char *url;          /* redis:// or rediss:// (apps/common/redis.h) */
    struct app_loop *loop;    /* the fleet thread */
    uint32_t ttl_s;           /* positive entries; 0: 300 */
    uint32_t negative_ttl_s;  /* unknown identities; 0: 5 */
    uint32_t stale_s;         /* served past the TTL while refreshing or while Redis is down;
                               * 0: 3600 */
    size_t max_entries;       /* cache bound (oldest evicted first); 0: 1<<20 */
    size_t max_inflight;      /* deferred lookups waiting for Redis; 0: 4096 */
    /* On the fleet thread: an identity that was answered before is now removed or disabled
     * (invalidation, or the revalidation after an outage). May be NULL. */
    void (*on_removed)(const void *identity, size_t len, void *user);
    void *user;
};

/** Creates the store and starts connecting (it does not wait for Redis: a gateway starts
 * while Redis is down and serves once it is up). @return it, or NULL with "why" in @p err (a
 * bad URL, a TLS file, memory). @thread setup (not the fleet thread) */
struct psk_redis *psk_redis_new(const struct psk_redis_options *o, char *err, size_t err_len);

/** Stops its connections (on the fleet thread, waiting for it) and frees it; deferred
 * lookups still pending are refused. NULL is a no-op. @thread setup */
void psk_redis_free(struct psk_redis *s);

enum psk_redis_answer {
    PSK_REDIS_FOUND,     /* @p rec is filled: complete the authenticator with it */
    PSK_REDIS_UNKNOWN,   /* refuse (unknown, disabled, or Redis unreachable and not cached) */
    PSK_REDIS_PENDING,   /* the authenticator was deferred; the fleet thread answers it */
};

/**
 * Looks @p identity up for the handshake of @p a. On PENDING this called
 * tern_psk_authenticator_defer(a): do not answer it yourself. @p why (may be NULL) gets a
 * short reason for UNKNOWN: "unknown", "disabled", "unavailable" (Redis down, not cached),
 * "overload" (max_inflight). @thread a device reactor, inside psk_authentication_required
 */
enum psk_redis_answer psk_redis_lookup(struct psk_redis *s, tern_psk_authenticator *a,
                                       const void *identity, size_t len, struct psk_record *rec,
                                       const char **why);

/** The cached record of @p identity (fresh or stale, positive only), for what a connection
 * needs after its handshake (max_conn, backend). @return true if cached. @thread any */
bool psk_redis_cached(struct psk_redis *s, const void *identity, size_t len,
                      struct psk_record *rec);

/** Whether the store's connections to Redis are up now. @thread any */
bool psk_redis_up(const struct psk_redis *s);

struct psk_redis_stats {
    bool up;                  /* both connections (commands, invalidations) up */
    uint64_t down_since_ms;   /* monotonic ms the current outage began; 0 when up */
    uint64_t outages;
    uint64_t hits;            /* answered from a fresh positive entry */
    uint64_t stale_hits;      /* answered from an entry past its TTL */
    uint64_t negative_hits;   /* refused from a fresh negative entry */
    uint64_t misses;          /* sent to Redis (or refused: unavailable, overload) */
    uint64_t found, unknown;  /* Redis's answers to lookups */
    uint64_t errors;          /* lookups that failed (timeout, connection lost, bad reply) */
    uint64_t unavailable;     /* refused inline: Redis down and not cached */
    uint64_t overload;        /* refused inline: max_inflight lookups waiting */
    uint64_t invalidations;   /* messages received (channel or keyspace) */
    uint64_t removed;         /* identities reported through on_removed */
    uint64_t removals_ignored; /* unknown answers for known identities not applied: the
                                * store's marker key was missing (an empty Redis) */
    uint64_t entries;         /* in the cache now */
    uint64_t inflight;        /* lookups waiting for Redis now */
};

/** @thread any (relaxed counters) */
void psk_redis_get_stats(const struct psk_redis *s, struct psk_redis_stats *out);

/** The URL with its password hidden, for logs and metrics labels. @thread any */
const char *psk_redis_name(const struct psk_redis *s);

#endif

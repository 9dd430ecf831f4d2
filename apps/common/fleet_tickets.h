/* SPDX-License-Identifier: MIT */
/*
 * Session-ticket keys shared by a fleet through Redis, so that a ticket issued by one server
 * resumes on any other, across rotations.
 *
 * What Redis holds (the names are fixed; fleets that share one Redis use different /DB):
 *   HASH tern:tls:ticket-keys   keys     96 hex digits per line (a key: 16-byte name, 32-byte
 *                                        key, the key file's layout): line 1 the NEXT key
 *                                        (opens only: handed out one period before it seals,
 *                                        so a server that has not yet seen a rotation already
 *                                        opens the tickets of one that has), line 2 the
 *                                        SEALING key, then previous keys, kept one lifetime
 *                               rotated  unix seconds of the last rotation
 *   STRING tern:tls:ticket-keys:lease    SET NX PX: the node allowed to rotate now
 *   CHANNEL tern:tls:ticket-keys:changed PUBLISHed after each rotation (the message: the new
 *                                        `rotated`; never a key)
 *
 * Every server reads the hash when its connection comes up, on every message of the channel
 * (a second, subscriber connection) and on a timer (every min(rotate/4, 30 s), and when the
 * next rotation is due): a lost message costs a little delay, never a key. A server that finds
 * `rotated` older than the rotation period (or no hash, or a hash it cannot read) takes the
 * lease; the winner rotates: a new random NEXT key, the old next seals, the old sealing key and
 * the previous ones stay, lifetime/rotate + 2 keys in all (at most 16). The write is a
 * compare-and-set (a short Lua script: HSET of both fields only if `keys` is still what the
 * winner read, then PUBLISH), so two servers can never both rotate, even if a lease expires
 * under a stalled winner (a Redis that runs no scripts gets one HSET under the lease alone,
 * then the PUBLISH). When the hash is gone (Redis restarted without persistence), the
 * winner rotates from the set it last applied, so tickets issued before keep resuming.
 *
 * Redis down: the keys in force stay (every ticket keeps resuming), rotation pauses and
 * resumes when Redis answers. Down at start: the server seals with a random key of its own
 * (logged once), and keeps it as an opener for one lifetime after the fleet's keys arrive, so
 * the tickets it issued alone still resume here.
 *
 * Keys never appear in logs, metrics or errors. They travel in Redis's protocol: use rediss://
 * when Redis is not on a trusted network, and protect Redis (ACL, requirepass) as you would a
 * key file.
 *
 * Threads: fleet_tickets_new / _free on the setup thread; every connection, timer and reply on
 * the fleet thread (app_loop), which calls tern_ticket_keys_set; fleet_tickets_stats and
 * fleet_tickets_metrics on any thread.
 */
#ifndef TERN_APPS_FLEET_TICKETS_H
#define TERN_APPS_FLEET_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

struct app_loop;
struct prom_buf;
struct fleet_tickets;

struct fleet_tickets_options {
    const char *url;        /* redis:// or rediss:// (apps/common/redis.h) */
    struct app_loop *loop;  /* the fleet thread */
    tern_ticket_keys *keys; /* the process's set: its automatic rotation stops from now on */
    uint32_t lifetime_s;    /* the tickets' lifetime (the set's) */
    uint32_t rotate_s;      /* the rotation period; 0: lifetime/2 */
};

/** Seals with a random key of this server at once, then starts connecting (it does not wait
 * for Redis). @return it, or NULL with "why" in @p err (a bad URL, a TLS file, lifetime/rotate
 * needing more than 16 keys, memory). @thread setup (not the fleet thread) */
struct fleet_tickets *fleet_tickets_new(const struct fleet_tickets_options *o, char *err,
                                        size_t err_len);

/** Closes its connections (on the fleet thread, waiting for it) and frees it; the key set in
 * force stays. NULL is a no-op. @thread setup */
void fleet_tickets_free(struct fleet_tickets *f);

struct fleet_tickets_stats {
    bool up;                 /* the command connection is up */
    uint64_t rotations;      /* rotations done by this server */
    uint64_t applied;        /* key sets applied (a new set read from Redis, or rotated here) */
    int64_t last_sync_unix;  /* when the hash was last read (or written); 0: never */
};

/** @thread any */
void fleet_tickets_stats(const struct fleet_tickets *f, struct fleet_tickets_stats *out);

/** Writes the families tern_ticket_keys_redis_up, tern_ticket_keys_rotations_total,
 * tern_ticket_keys_applied_total and tern_ticket_keys_sync_age_seconds (the last only once a
 * sync happened). @thread any */
void fleet_tickets_metrics(const struct fleet_tickets *f, struct prom_buf *out);

/** The URL as logs may show it (password hidden). */
const char *fleet_tickets_url(const struct fleet_tickets *f);

#endif

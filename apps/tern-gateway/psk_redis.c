/* SPDX-License-Identifier: MIT */
/*
 * The fleet's identity store (psk_redis.h): the cache (psk_cache.c) read inline by the
 * device reactors, and everything that talks to Redis on the fleet thread.
 *
 * Threads and ownership:
 * - Device reactors (psk_redis_lookup, psk_redis_cached) read the cache and the atomics
 *   `cmd_up` / `inflight`, bump their own counter slot, and hand work to the fleet thread
 *   through `queue` (a mutex-guarded list of `struct req`, one allocation each): a lookup
 *   (the deferred authenticator, owned by the request from then on) or a refresh of a stale
 *   entry. Only the first request after a drain posts a wake-up task to the fleet reactor;
 *   if that post fails, the fleet thread's 100 ms tick drains the list anyway, so a request
 *   once queued is never lost and no deferred authenticator has to be undone.
 * - The fleet thread owns both Redis connections, the timers, the table of reads in flight
 *   (`struct fetch`, one per identity: concurrent lookups of one identity share one HMGET),
 *   the revalidation walk and the answers: it completes or rejects every deferred
 *   authenticator itself. An answer the device reactor's mailbox cannot take yet
 *   (TERN_E_QUEUE_FULL) waits on the retry list and is tried again every 10 ms: a deferred
 *   reference must be consumed, and the list is bounded by max_inflight.
 * - A read that an invalidation overtakes (the message came while its HMGET was in flight,
 *   so its answer may predate the change) is sent again, up to 3 times.
 * Counters: the device-side ones live in per-reactor slots (64-byte lines, indexed by the
 * reactor's index), summed on read; the fleet-side ones have one writer.
 */
#include "tern-gateway/psk_redis.h"

#include <hiredis/hiredis.h>

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hex.h"
#include "common/log.h"
#include "common/redis.h"
#include "tern-gateway/psk_cache.h"

#define PENDING_BUCKETS 4096u
#define REVAL_WINDOW 256u       /* revalidation reads in flight at once */
#define REVAL_BATCH 32u
#define REVAL_RATE 2000u        /* revalidation reads a second: after a failover, a fleet of
                                 * gateways re-reading whole caches at once must leave Redis
                                 * room for devices' misses (docs/design/fleet.md); the
                                 * entries stay served meanwhile */
#define DIRTY_RETRIES 3         /* reads sent again after an invalidation overtook them */
#define TICK_MS 100u            /* backstop drain of the request list */
#define RETRY_MS 10u            /* answers a full mailbox refused */

/* Device-side counters of one reactor (slot = reactor index % TERN_MAX_REACTORS). */
struct slot {
    _Atomic uint64_t hits, stale_hits, negative_hits, misses, unavailable, overload;
} __attribute__((aligned(64)));

/* A request from a device reactor, then (lookups) a waiter on a fetch or the retry list. */
struct req {
    struct req *next;
    tern_psk_authenticator *a;  /* NULL: a refresh */
    uint8_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
    /* the answer, kept while the device's mailbox is full */
    bool positive;
    uint8_t key_len;
    enum tern_psk_hash hash;
    uint8_t key[TERN_PSK_MAX_KEY];
};

enum fetch_kind { FK_LOOKUP = 1, FK_REFRESH = 2, FK_REVAL = 4, FK_INVALIDATE = 8 };

/* One HMGET in flight for one identity (fleet thread only). */
struct fetch {
    struct fetch *hnext;
    struct psk_redis *s;
    struct req *waiters;
    uint64_t hash;
    unsigned kinds;             /* enum fetch_kind bits */
    bool dirty;                 /* invalidated while in flight: read again */
    uint8_t tries;
    uint8_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
};

struct psk_redis {
    struct slot slots[TERN_MAX_REACTORS];

    /* set up once, read-only afterwards */
    struct psk_redis_options o;
    uint64_t ttl_ms, negative_ttl_ms, stale_ms;
    struct rds_url url;
    char name[1200];
    char channel[160];          /* <prefix>invalidate */
    char pattern[400];          /* __keyspace@<db>__:<prefix, glob-escaped>* */
    char keyspace[200];         /* __keyspace@<db>__:<prefix>: a keyspace channel's start */
    size_t keyspace_len;
    struct psk_cache *cache;
    tern_reactor *fleet;

    /* device reactors -> fleet thread */
    pthread_mutex_t qlock;
    struct req *qhead, *qtail;
    bool wake_posted;

    /* fleet thread only */
    struct rds *cmd, *sub;
    tern_timer *tick, *retry_timer;
    struct fetch *pending[PENDING_BUCKETS];
    struct req *retries;
    bool closing, was_up;
    bool reval_active, in_pump;
    bool marker_used;           /* the marker key was seen: removals are confirmed by it */
    bool marker_missing_logged; /* "the store lost its marker" logged (once until it is back) */
    uint64_t reval_cursor;
    size_t reval_inflight;
    uint64_t reval_tokens, reval_refilled_ms; /* the REVAL_RATE bucket (REVAL_WINDOW deep) */
    struct psk_cache_ident batch[REVAL_WINDOW];

    /* any thread (relaxed) */
    atomic_bool cmd_up, sub_up;
    _Atomic uint64_t inflight;
    _Atomic uint64_t down_since, outages, found, unknown, errors, invalidations, removed;
    _Atomic uint64_t removals_ignored;
};

static void bump(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct slot *my_slot(struct psk_redis *s)
{
    tern_reactor *r = tern_reactor_current();
    return &s->slots[r != NULL ? tern_reactor_index(r) % TERN_MAX_REACTORS : 0];
}

static void req_free(struct req *q)
{
    explicit_bzero(q, sizeof(*q));
    free(q);
}

/* ---- answers (fleet thread) ---------------------------------------------------------------- */

static void retry_arm(struct psk_redis *s)
{
    if (s->retry_timer != NULL) {
        tern_timer_start(s->retry_timer, RETRY_MS, 0);
    }
}

/* Tries to hand @p q's answer to its authenticator. @return false if the device reactor's
 * mailbox was full (the reference is still ours). */
static bool try_answer(struct psk_redis *s, struct req *q)
{
    int rc;
    if (q->positive) {
        tern_psk_authenticator_set_key_hash(q->a, q->hash);
        rc = tern_psk_authenticator_complete(q->a, q->key, q->key_len);
    } else {
        rc = tern_psk_authenticator_reject(q->a);
    }
    if (rc == TERN_E_QUEUE_FULL) {
        return false;
    }
    /* 0, or TERN_ECANCELED (the connection is gone): either way the reference is consumed */
    atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
    return true;
}

/* Answers lookup @p q with @p rec (NULL: refused) and frees it, or parks it on the retry
 * list. */
static void answer(struct psk_redis *s, struct req *q, const struct psk_record *rec)
{
    q->positive = rec != NULL;
    if (rec != NULL) {
        memcpy(q->key, rec->key, rec->key_len);
        q->key_len = (uint8_t)rec->key_len;
        q->hash = rec->hash;
    }
    if (try_answer(s, q)) {
        req_free(q);
        return;
    }
    q->next = s->retries;
    s->retries = q;
    retry_arm(s);
}

static void on_retry(tern_timer *t, void *user)
{
    (void)t;
    struct psk_redis *s = user;
    struct req **link = &s->retries;
    while (*link != NULL) {
        struct req *q = *link;
        if (try_answer(s, q)) {
            *link = q->next;
            req_free(q);
        } else {
            link = &q->next;
        }
    }
    if (s->retries != NULL) {
        retry_arm(s);
    }
}

/* ---- reads in flight (fleet thread) -------------------------------------------------------- */

static struct fetch **fetch_link(struct psk_redis *s, uint64_t h, const void *id, size_t len)
{
    struct fetch **link = &s->pending[h % PENDING_BUCKETS];
    while (*link != NULL &&
           !((*link)->hash == h && (*link)->len == len && memcmp((*link)->id, id, len) == 0)) {
        link = &(*link)->hnext;
    }
    return link;
}

static void fetch_unlink(struct psk_redis *s, struct fetch *f)
{
    struct fetch **link = fetch_link(s, f->hash, f->id, f->len);
    if (*link == f) {
        *link = f->hnext;
    }
}

static int fetch_send(struct fetch *f);
static void reval_pump(struct psk_redis *s);

/* The end of a read: unlinks @p f, hands its waiters to @p rec (NULL: the cache's stale
 * entry if any, else refused) and frees it. */
static void fetch_done(struct psk_redis *s, struct fetch *f, const struct psk_record *rec,
                       bool failed)
{
    fetch_unlink(s, f);
    struct psk_record stale;
    const struct psk_record *give = rec;
    if (failed) {
        if (f->kinds & FK_REFRESH) {
            psk_cache_clear_refresh(s->cache, f->id, f->len);
        }
        /* stale-while-error: a positive entry within stale_s still answers */
        if (f->waiters != NULL && !s->closing) {
            enum psk_cache_state st = psk_cache_get(s->cache, f->id, f->len, &stale, NULL, NULL);
            if (st == PSK_CACHE_FRESH || st == PSK_CACHE_STALE) {
                give = &stale;
            }
        }
    }
    while (f->waiters != NULL) {
        struct req *q = f->waiters;
        f->waiters = q->next;
        answer(s, q, s->closing ? NULL : give);
    }
    explicit_bzero(&stale, sizeof(stale));
    if (f->kinds & FK_REVAL) {
        s->reval_inflight--;
    }
    explicit_bzero(f, sizeof(*f));
    free(f);
    reval_pump(s);
}

/* Hex digits to bytes. @return the byte count, or 0 if not 16..64 bytes of hex. */
static size_t unhex(const char *p, size_t n, uint8_t *out)
{
    size_t got = app_hex_decode(p, n, out, TERN_PSK_MAX_KEY);
    if (got < TERN_PSK_MIN_KEY) {
        explicit_bzero(out, got);
        return 0;
    }
    return got;
}

static bool str_eq(const redisReply *x, const char *s)
{
    return x->len == strlen(s) && strncasecmp(x->str, s, x->len) == 0;
}

/* "HOST:PORT": a host (a name, an address, or [IPv6]) and a port 1..65535. */
static bool backend_ok(const char *p, size_t n)
{
    const char *colon = NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == ':') {
            colon = p + i;
        } else if (p[i] <= ' ' || p[i] == 0x7f) {
            return false;
        }
    }
    if (colon == NULL || colon == p || (size_t)(p + n - colon) < 2 || p + n - colon > 6) {
        return false;
    }
    unsigned long port = 0;
    for (const char *c = colon + 1; c < p + n; c++) {
        if (!isdigit((unsigned char)*c)) {
            return false;
        }
        port = port * 10 + (unsigned long)(*c - '0');
    }
    if (port == 0 || port > 65535) {
        return false;
    }
    if (p[0] == '[') {
        return colon[-1] == ']' && colon - p > 2;
    }
    return memchr(p, ':', (size_t)(colon - p)) == NULL; /* a bare IPv6 address needs [] */
}

enum parsed { P_FOUND, P_UNKNOWN, P_DISABLED };

/* HMGET key hash disabled max_conn backend -> a record. */
static enum parsed parse_record(const redisReply *x, struct psk_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    for (size_t i = 0; i < 5; i++) {
        if (x->element[i]->type != REDIS_REPLY_NIL && x->element[i]->type != REDIS_REPLY_STRING) {
            return P_UNKNOWN;
        }
    }
    const redisReply *key = x->element[0], *hash = x->element[1], *dis = x->element[2];
    const redisReply *mc = x->element[3], *be = x->element[4];
    if (key->type == REDIS_REPLY_NIL) {
        return P_UNKNOWN;
    }
    if (dis->type == REDIS_REPLY_STRING && dis->len > 0 && !str_eq(dis, "0")) {
        return P_DISABLED;
    }
    rec->key_len = unhex(key->str, key->len, rec->key);
    if (rec->key_len == 0) {
        return P_UNKNOWN;
    }
    rec->hash = TERN_PSK_HASH_SHA256;
    if (hash->type == REDIS_REPLY_STRING && hash->len > 0) {
        if (str_eq(hash, "sha384")) {
            rec->hash = TERN_PSK_HASH_SHA384;
        } else if (!str_eq(hash, "sha256")) {
            return P_UNKNOWN;
        }
    }
    if (mc->type == REDIS_REPLY_STRING && mc->len > 0) {
        uint64_t v = 0;
        for (size_t i = 0; i < mc->len; i++) {
            if (!isdigit((unsigned char)mc->str[i]) || i >= 10) {
                return P_UNKNOWN;
            }
            v = v * 10 + (uint64_t)(mc->str[i] - '0');
        }
        if (v > UINT32_MAX) {
            return P_UNKNOWN;
        }
        rec->max_conn = (uint32_t)v;
    }
    if (be->type == REDIS_REPLY_STRING && be->len > 0) {
        if (be->len >= sizeof(rec->backend) || !backend_ok(be->str, be->len)) {
            return P_UNKNOWN;
        }
        memcpy(rec->backend, be->str, be->len);
        rec->backend[be->len] = '\0';
    }
    return P_FOUND;
}

/* ---- the marker: an empty or wrong Redis must not look like every identity removed ----------
 * The key <prefix> itself (never an identity's key: identities are 1..128 bytes) marks a store
 * that holds the fleet's identities; contrib/tern-psk-redis writes it. Once a store has been
 * seen with it, an identity cached as known and now answered unknown is removed only after an
 * EXISTS of the marker (sent after the HMGET on the same connection, so answered after it)
 * says the store still holds it. A Redis that restarted empty, was flushed, or is another
 * database answers 0: the cached identities are kept (served until stale_s, as in an outage),
 * logged once, counted. Without a marker ever seen, removals apply at once (and the first
 * connection logs how to set one). */

/* Stores an unknown (or disabled) answer for @p id; reports a known identity's removal. */
static void apply_removal(struct psk_redis *s, const void *id, size_t len, bool disabled)
{
    bool was_positive = false;
    psk_cache_put_negative(s->cache, id, len, disabled ? PSK_CACHE_DISABLED : PSK_CACHE_UNKNOWN,
                           s->negative_ttl_ms, &was_positive);
    if (was_positive) {
        bump(&s->removed);
        if (s->o.on_removed != NULL) {
            s->o.on_removed(id, len, s->o.user);
        }
    }
}

struct confirm {
    struct psk_redis *s;
    bool disabled;
    uint8_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
};

static void marker_state(struct psk_redis *s, bool present)
{
    if (present) {
        if (!s->marker_used || s->marker_missing_logged) {
            app_log(APP_LOG_INFO, "psk store: marker present: removals are applied",
                    "store=%s marker=%s", s->name, s->url.prefix);
        }
        s->marker_used = true;
        s->marker_missing_logged = false;
    } else if (s->marker_used && !s->marker_missing_logged) {
        s->marker_missing_logged = true;
        app_log(APP_LOG_WARN,
                "psk store: the marker key is gone (Redis empty, flushed or another database?): "
                "cached identities are kept and removals ignored until it is back",
                "store=%s marker=%s", s->name, s->url.prefix);
    }
}

static void on_marker_confirm(struct rds *r, const struct redisReply *x, void *arg)
{
    (void)r;
    struct confirm *c = arg;
    struct psk_redis *s = c->s;
    if (!s->closing && x != NULL && x->type == REDIS_REPLY_INTEGER) {
        marker_state(s, x->integer > 0);
        if (x->integer > 0) {
            apply_removal(s, c->id, c->len, c->disabled);
        } else {
            bump(&s->removals_ignored);
        }
    } else if (!s->closing) {
        bump(&s->removals_ignored); /* no answer: kept, read again later */
    }
    explicit_bzero(c, sizeof(*c));
    free(c);
}

static void confirm_removal(struct psk_redis *s, const void *id, size_t len, bool disabled)
{
    struct confirm *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        bump(&s->removals_ignored);
        return;
    }
    c->s = s;
    c->disabled = disabled;
    c->len = (uint8_t)len;
    memcpy(c->id, id, len);
    if (rds_commandv(s->cmd, on_marker_confirm, c, "EXISTS", s->url.prefix, NULL) < 0) {
        bump(&s->removals_ignored);
        free(c);
    }
}

static void on_marker_check(struct rds *r, const struct redisReply *x, void *arg)
{
    (void)r;
    struct psk_redis *s = arg;
    if (s->closing || x == NULL || x->type != REDIS_REPLY_INTEGER) {
        return;
    }
    if (x->integer == 0 && !s->marker_used) {
        app_log(APP_LOG_INFO,
                "psk store: no marker key: an empty Redis would look like every identity removed "
                "(SET it once the identities are loaded; contrib/tern-psk-redis does)",
                "store=%s marker=%s", s->name, s->url.prefix);
    }
    marker_state(s, x->integer > 0);
}

static void on_hmget(struct rds *r, const struct redisReply *x, void *arg)
{
    (void)r;
    struct fetch *f = arg;
    struct psk_redis *s = f->s;
    if (x == NULL || s->closing || x->type != REDIS_REPLY_ARRAY || x->elements != 5) {
        if (!s->closing) {
            bump(&s->errors);
        }
        fetch_done(s, f, NULL, true);
        return;
    }
    if (f->dirty && f->tries < DIRTY_RETRIES) {
        /* an invalidation came while this was in flight: its answer may be older */
        f->dirty = false;
        f->tries++;
        if (fetch_send(f) == 0) {
            return;
        }
        bump(&s->errors);
        fetch_done(s, f, NULL, true);
        return;
    }
    struct psk_record rec;
    enum parsed p = parse_record(x, &rec);
    if (p == P_FOUND) {
        bump(&s->found);
        psk_cache_put(s->cache, f->id, f->len, &rec, s->ttl_ms, s->stale_ms, NULL);
    } else {
        bump(&s->unknown);
        bool positive = false;
        if (s->marker_used && psk_cache_peek(s->cache, f->id, f->len, &positive) && positive) {
            confirm_removal(s, f->id, f->len, p == P_DISABLED);
        } else {
            apply_removal(s, f->id, f->len, p == P_DISABLED);
        }
    }
    fetch_done(s, f, p == P_FOUND ? &rec : NULL, false);
    explicit_bzero(&rec, sizeof(rec));
}

/* @return 0, or a TERN_E* code (nothing sent). */
static int fetch_send(struct fetch *f)
{
    struct psk_redis *s = f->s;
    char key[sizeof(s->url.prefix) + TERN_PSK_MAX_IDENTITY];
    size_t plen = strlen(s->url.prefix);
    memcpy(key, s->url.prefix, plen);
    memcpy(key + plen, f->id, f->len);
    const char *argv[7] = {"HMGET", key, "key", "hash", "disabled", "max_conn", "backend"};
    size_t lens[7] = {5, plen + f->len, 3, 4, 8, 8, 7};
    return rds_command(s->cmd, on_hmget, f, 7, argv, lens);
}

/* Reads @p id (one read per identity: a read in flight takes @p waiter along). @return
 * false if a new read could not be sent (then it was finished: waiters answered). */
static bool fetch_start(struct psk_redis *s, const void *id, size_t len, struct req *waiter,
                        unsigned kind)
{
    uint64_t h = psk_cache_hash(s->cache, id, len);
    struct fetch **link = fetch_link(s, h, id, len);
    struct fetch *f = *link;
    if (f != NULL) {
        if (waiter != NULL) {
            waiter->next = f->waiters;
            f->waiters = waiter;
        }
        if (kind == FK_INVALIDATE) {
            f->dirty = true;
        }
        f->kinds |= kind & (FK_REFRESH | FK_LOOKUP); /* FK_REVAL counts only a read it sent */
        return true;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        if (waiter != NULL) {
            answer(s, waiter, NULL);
        }
        if (kind == FK_REFRESH) {
            psk_cache_clear_refresh(s->cache, id, len);
        }
        bump(&s->errors);
        return false;
    }
    f->s = s;
    f->hash = h;
    f->len = (uint8_t)len;
    memcpy(f->id, id, len);
    f->kinds = kind;
    f->waiters = waiter;
    if (waiter != NULL) {
        waiter->next = NULL;
    }
    if (kind == FK_REVAL) {
        s->reval_inflight++;
    }
    *link = f;
    if (fetch_send(f) < 0) {
        bump(&s->errors);
        fetch_done(s, f, NULL, true);
        return false;
    }
    return true;
}

/* ---- revalidation after an outage (fleet thread) ------------------------------------------- */

/* Keeps up to REVAL_WINDOW reads of cached positive identities in flight until the walk
 * ends; pauses while the command connection is down (resumed when it is up). */
static void reval_pump(struct psk_redis *s)
{
    if (!s->reval_active || s->in_pump || s->closing) {
        return;
    }
    s->in_pump = true;
    uint64_t now = mono_ms();
    s->reval_tokens += (now - s->reval_refilled_ms) * REVAL_RATE / 1000u;
    if (s->reval_tokens > REVAL_WINDOW) {
        s->reval_tokens = REVAL_WINDOW;
    }
    s->reval_refilled_ms = now;
    /* batches of at least REVAL_BATCH: fewer walks, and batches that end between chains;
     * past the rate, the tick timer pumps again */
    while ((s->reval_inflight == 0 || s->reval_inflight + REVAL_BATCH <= REVAL_WINDOW) &&
           rds_is_up(s->cmd)) {
        if (s->reval_cursor == PSK_CACHE_CURSOR_END) {
            if (s->reval_inflight == 0) {
                s->reval_active = false;
            }
            break;
        }
        size_t room = REVAL_WINDOW - s->reval_inflight;
        if (room > s->reval_tokens) {
            room = (size_t)s->reval_tokens;
        }
        if (room < REVAL_BATCH && s->reval_inflight > 0) {
            break;
        }
        if (room == 0) {
            break;
        }
        size_t n = psk_cache_list_positive(s->cache, &s->reval_cursor, s->batch, room);
        s->reval_tokens -= n;
        bool sent = true;
        for (size_t i = 0; i < n; i++) {
            sent = fetch_start(s, s->batch[i].id, s->batch[i].len, NULL, FK_REVAL) && sent;
        }
        if (!sent) {
            break; /* the connection went: the rest waits for it */
        }
    }
    s->in_pump = false;
}

static void reval_start(struct psk_redis *s)
{
    s->reval_active = true;
    s->reval_cursor = 0;
    reval_pump(s);
}

/* ---- invalidations (fleet thread) ---------------------------------------------------------- */

static void mark_all_dirty(struct psk_redis *s)
{
    for (size_t i = 0; i < PENDING_BUCKETS; i++) {
        for (struct fetch *f = s->pending[i]; f != NULL; f = f->hnext) {
            f->dirty = true;
        }
    }
}

static void invalidate_all(struct psk_redis *s)
{
    mark_all_dirty(s);
    psk_cache_drop_negatives(s->cache);
    reval_start(s);
}

static void invalidate_one(struct psk_redis *s, const void *id, size_t len)
{
    if (len == 0 || len > TERN_PSK_MAX_IDENTITY) {
        return;
    }
    bool positive = false;
    uint64_t h = psk_cache_hash(s->cache, id, len);
    struct fetch *f = *fetch_link(s, h, id, len);
    if (f != NULL) {
        f->dirty = true; /* its answer is read again */
        return;
    }
    if (!psk_cache_peek(s->cache, id, len, &positive)) {
        return;
    }
    if (!positive) {
        psk_cache_remove(s->cache, id, len, NULL); /* the next lookup asks Redis */
        return;
    }
    fetch_start(s, id, len, NULL, FK_INVALIDATE);
}

static void on_message(struct rds *r, const char *channel, size_t channel_len, const char *msg,
                       size_t msg_len, void *user)
{
    (void)r;
    struct psk_redis *s = user;
    bump(&s->invalidations);
    if (channel_len == strlen(s->channel) && memcmp(channel, s->channel, channel_len) == 0) {
        if (msg_len == 1 && msg[0] == '*') {
            invalidate_all(s);
        } else {
            invalidate_one(s, msg, msg_len);
        }
    } else if (channel_len > s->keyspace_len &&
               memcmp(channel, s->keyspace, s->keyspace_len) == 0) {
        invalidate_one(s, channel + s->keyspace_len, channel_len - s->keyspace_len);
    }
}

/* ---- connections (fleet thread) ------------------------------------------------------------ */

static void note_updown(struct psk_redis *s)
{
    bool up = atomic_load(&s->cmd_up) && atomic_load(&s->sub_up);
    if (s->was_up && !up) {
        bump(&s->outages);
        atomic_store_explicit(&s->down_since, mono_ms(), memory_order_relaxed);
    } else if (up) {
        atomic_store_explicit(&s->down_since, 0, memory_order_relaxed);
    }
    s->was_up = up;
}

static void on_cmd_state(struct rds *r, bool up, void *user)
{
    (void)r;
    struct psk_redis *s = user;
    atomic_store(&s->cmd_up, up);
    note_updown(s);
    if (up) {
        /* first on the new connection: answered before any read the pump sends */
        (void)rds_commandv(s->cmd, on_marker_check, s, "EXISTS", s->url.prefix, NULL);
        reval_pump(s);
    }
}

static void on_sub_state(struct rds *r, bool up, void *user)
{
    (void)r;
    struct psk_redis *s = user;
    atomic_store(&s->sub_up, up);
    note_updown(s);
    if (up) {
        /* invalidations may have been lost while it was down */
        invalidate_all(s);
    }
}

/* ---- requests from device reactors --------------------------------------------------------- */

static struct req *take_queue(struct psk_redis *s)
{
    pthread_mutex_lock(&s->qlock);
    struct req *q = s->qhead;
    s->qhead = s->qtail = NULL;
    s->wake_posted = false;
    pthread_mutex_unlock(&s->qlock);
    return q;
}

static void drain(struct psk_redis *s)
{
    struct req *q = take_queue(s);
    while (q != NULL) {
        struct req *next = q->next;
        q->next = NULL;
        if (q->a == NULL) {
            if (s->closing) {
                req_free(q);
            } else {
                fetch_start(s, q->id, q->len, NULL, FK_REFRESH);
                req_free(q);
            }
        } else if (s->closing) {
            answer(s, q, NULL);
        } else {
            /* a read that ended since this was queued may have filled the cache */
            struct psk_record rec;
            int neg = 0;
            switch (psk_cache_get(s->cache, q->id, q->len, &rec, NULL, &neg)) {
            case PSK_CACHE_FRESH:
            case PSK_CACHE_STALE:
                answer(s, q, &rec);
                break;
            case PSK_CACHE_NEGATIVE:
                answer(s, q, NULL);
                break;
            case PSK_CACHE_MISS:
                fetch_start(s, q->id, q->len, q, FK_LOOKUP);
                break;
            }
            explicit_bzero(&rec, sizeof(rec));
        }
        q = next;
    }
}

static void drain_task(tern_reactor *r, void *arg)
{
    (void)r;
    drain(arg);
}

static void on_tick(tern_timer *t, void *user)
{
    (void)t;
    struct psk_redis *s = user;
    pthread_mutex_lock(&s->qlock);
    bool any = s->qhead != NULL;
    pthread_mutex_unlock(&s->qlock);
    if (any) {
        drain(s);
    }
    if (s->reval_active) {
        reval_pump(s); /* paced: the rate's next tokens */
    }
}

static void push(struct psk_redis *s, struct req *q)
{
    q->next = NULL;
    pthread_mutex_lock(&s->qlock);
    if (s->qtail != NULL) {
        s->qtail->next = q;
    } else {
        s->qhead = q;
    }
    s->qtail = q;
    bool wake = !s->wake_posted;
    s->wake_posted = true;
    pthread_mutex_unlock(&s->qlock);
    if (wake && tern_reactor_post(s->fleet, drain_task, s) < 0) {
        /* the tick drains it; the next request tries to wake the thread again */
        pthread_mutex_lock(&s->qlock);
        s->wake_posted = false;
        pthread_mutex_unlock(&s->qlock);
    }
}

static struct req *req_new(tern_psk_authenticator *a, const void *id, size_t len)
{
    struct req *q = malloc(sizeof(*q));
    if (q != NULL) {
        memset(q, 0, offsetof(struct req, id));
        q->a = a;
        q->len = (uint8_t)len;
        memcpy(q->id, id, len);
    }
    return q;
}

enum psk_redis_answer psk_redis_lookup(struct psk_redis *s, tern_psk_authenticator *a,
                                       const void *identity, size_t len, struct psk_record *rec,
                                       const char **why)
{
    const char *dummy;
    if (why == NULL) {
        why = &dummy;
    }
    *why = "unknown";
    if (identity == NULL || len == 0 || len > TERN_PSK_MAX_IDENTITY) {
        return PSK_REDIS_UNKNOWN;
    }
    struct slot *k = my_slot(s);
    bool up = atomic_load_explicit(&s->cmd_up, memory_order_relaxed);
    bool refresh = false;
    int neg = PSK_CACHE_UNKNOWN;
    /* a refresh is asked for only while Redis is up: when it is down, the revalidation
     * after it comes back reads every entry anyway */
    switch (psk_cache_get(s->cache, identity, len, rec, up ? &refresh : NULL, &neg)) {
    case PSK_CACHE_FRESH:
        bump(&k->hits);
        return PSK_REDIS_FOUND;
    case PSK_CACHE_STALE:
        bump(&k->stale_hits);
        if (refresh) {
            struct req *q = req_new(NULL, identity, len);
            if (q != NULL) {
                push(s, q);
            } else {
                psk_cache_clear_refresh(s->cache, identity, len);
            }
        }
        return PSK_REDIS_FOUND;
    case PSK_CACHE_NEGATIVE:
        bump(&k->negative_hits);
        *why = neg == PSK_CACHE_DISABLED ? "disabled" : "unknown";
        return PSK_REDIS_UNKNOWN;
    case PSK_CACHE_MISS:
        break;
    }
    bump(&k->misses);
    if (!up) {
        bump(&k->unavailable);
        *why = "unavailable";
        return PSK_REDIS_UNKNOWN;
    }
    /* everything that can refuse is decided before the authenticator is deferred */
    if (atomic_fetch_add_explicit(&s->inflight, 1, memory_order_relaxed) >= s->o.max_inflight) {
        atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
        bump(&k->overload);
        *why = "overload";
        return PSK_REDIS_UNKNOWN;
    }
    struct req *q = req_new(NULL, identity, len);
    if (q == NULL) {
        atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
        bump(&k->overload);
        *why = "overload";
        return PSK_REDIS_UNKNOWN;
    }
    q->a = tern_psk_authenticator_defer(a);
    push(s, q);
    return PSK_REDIS_PENDING;
}

bool psk_redis_cached(struct psk_redis *s, const void *identity, size_t len,
                      struct psk_record *rec)
{
    enum psk_cache_state st = psk_cache_get(s->cache, identity, len, rec, NULL, NULL);
    return st == PSK_CACHE_FRESH || st == PSK_CACHE_STALE;
}

bool psk_redis_up(const struct psk_redis *s)
{
    struct psk_redis *m = (struct psk_redis *)s; /* atomic loads want a non-const pointer */
    return atomic_load(&m->cmd_up) && atomic_load(&m->sub_up);
}

void psk_redis_get_stats(const struct psk_redis *s, struct psk_redis_stats *out)
{
    struct psk_redis *m = (struct psk_redis *)s;
    memset(out, 0, sizeof(*out));
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    for (unsigned i = 0; i < TERN_MAX_REACTORS; i++) {
        struct slot *k = &m->slots[i];
        out->hits += LOAD(k->hits);
        out->stale_hits += LOAD(k->stale_hits);
        out->negative_hits += LOAD(k->negative_hits);
        out->misses += LOAD(k->misses);
        out->unavailable += LOAD(k->unavailable);
        out->overload += LOAD(k->overload);
    }
    out->up = psk_redis_up(s);
    out->down_since_ms = LOAD(m->down_since);
    out->outages = LOAD(m->outages);
    out->found = LOAD(m->found);
    out->unknown = LOAD(m->unknown);
    out->errors = LOAD(m->errors);
    out->invalidations = LOAD(m->invalidations);
    out->removed = LOAD(m->removed);
    out->removals_ignored = LOAD(m->removals_ignored);
    out->inflight = LOAD(m->inflight);
    out->entries = psk_cache_count(m->cache);
#undef LOAD
}

const char *psk_redis_name(const struct psk_redis *s)
{
    return s->name;
}

/* ---- life ---------------------------------------------------------------------------------- */

struct open_call {
    struct psk_redis *s;
    char *err;
    size_t err_len;
    int rc;
};

static void fleet_open(void *arg)
{
    struct open_call *c = arg;
    struct psk_redis *s = c->s;
    s->tick = tern_timer_new(s->fleet, on_tick, s);
    s->retry_timer = tern_timer_new(s->fleet, on_retry, s);
    if (s->tick == NULL || s->retry_timer == NULL) {
        snprintf(c->err, c->err_len, "redis identity store: out of memory");
        c->rc = -1;
        return;
    }
    tern_timer_start(s->tick, TICK_MS, TICK_MS);
    const char *channels[2] = {s->channel, NULL};
    const char *patterns[2] = {s->pattern, NULL};
    struct rds_options ro = {
        .url = &s->url,
        .reactor = s->fleet,
        .name = "psk-store",
        .on_state = on_cmd_state,
        .user = s,
    };
    s->cmd = rds_new(&ro, c->err, c->err_len);
    if (s->cmd == NULL) {
        c->rc = -1;
        return;
    }
    ro.name = "psk-invalidations";
    ro.on_state = on_sub_state;
    ro.on_message = on_message;
    ro.channels = channels;
    ro.patterns = patterns;
    s->sub = rds_new(&ro, c->err, c->err_len);
    if (s->sub == NULL) {
        c->rc = -1;
    }
}

static void fleet_close(void *arg)
{
    struct psk_redis *s = arg;
    s->closing = true;
    rds_free(s->cmd); /* every read in flight ends here: its waiters are refused */
    rds_free(s->sub);
    s->cmd = s->sub = NULL;
    drain(s);
    tern_timer_free(s->tick);
    tern_timer_free(s->retry_timer);
    s->tick = s->retry_timer = NULL;
    /* answers a full mailbox refused: its reactor empties it as it runs (bounded: 5 s) */
    for (int i = 0; i < 5000 && s->retries != NULL; i++) {
        on_retry(NULL, s);
        if (s->retries != NULL) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
    }
    while (s->retries != NULL) { /* never answered: the handshake's own timeout ends it */
        struct req *q = s->retries;
        s->retries = q->next;
        req_free(q);
    }
}

/* Appends @p p to @p out with the glob characters of PSUBSCRIBE escaped. */
static bool glob_escape(char *out, size_t cap, const char *p)
{
    size_t n = strlen(out);
    for (; *p != '\0'; p++) {
        if (strchr("*?[]\\", *p) != NULL) {
            if (n + 1 >= cap) {
                return false;
            }
            out[n++] = '\\';
        }
        if (n + 1 >= cap) {
            return false;
        }
        out[n++] = *p;
    }
    out[n] = '\0';
    return true;
}

struct psk_redis *psk_redis_new(const struct psk_redis_options *o, char *err, size_t err_len)
{
    char dummy[8];
    if (err == NULL || err_len == 0) {
        err = dummy;
        err_len = sizeof(dummy);
    }
    err[0] = '\0';
    if (o == NULL || o->url == NULL || o->loop == NULL) {
        snprintf(err, err_len, "redis identity store: no URL or fleet thread");
        return NULL;
    }
    struct psk_redis *s = aligned_alloc(64, (sizeof(*s) + 63) / 64 * 64);
    if (s == NULL) {
        snprintf(err, err_len, "redis identity store: out of memory");
        return NULL;
    }
    memset(s, 0, sizeof(*s));
    if (rds_url_parse(o->url, &s->url, err, err_len) < 0) {
        goto fail_url;
    }
    s->o = *o;
    s->o.url = NULL; /* not kept: the parsed copy is */
    s->ttl_ms = (uint64_t)(o->ttl_s != 0 ? o->ttl_s : 300) * 1000u;
    s->negative_ttl_ms = (uint64_t)(o->negative_ttl_s != 0 ? o->negative_ttl_s : 5) * 1000u;
    s->stale_ms = (uint64_t)(o->stale_s != 0 ? o->stale_s : 3600) * 1000u;
    s->o.max_entries = o->max_entries != 0 ? o->max_entries : (size_t)1 << 20;
    s->o.max_inflight = o->max_inflight != 0 ? o->max_inflight : 4096;
    rds_url_redacted(&s->url, s->name, sizeof(s->name));
    snprintf(s->channel, sizeof(s->channel), "%sinvalidate", s->url.prefix);
    snprintf(s->keyspace, sizeof(s->keyspace), "__keyspace@%u__:%s", s->url.db, s->url.prefix);
    s->keyspace_len = strlen(s->keyspace);
    snprintf(s->pattern, sizeof(s->pattern), "__keyspace@%u__:", s->url.db);
    if (!glob_escape(s->pattern, sizeof(s->pattern) - 1, s->url.prefix)) {
        snprintf(err, err_len, "redis identity store: prefix too long");
        goto fail_url;
    }
    strcat(s->pattern, "*");
    s->fleet = app_loop_reactor(o->loop);
    s->cache = psk_cache_new(s->o.max_entries, NULL, NULL);
    if (s->cache == NULL) {
        snprintf(err, err_len, "redis identity store: out of memory (cache of %zu)",
                 s->o.max_entries);
        goto fail_url;
    }
    pthread_mutex_init(&s->qlock, NULL);
    atomic_store(&s->down_since, mono_ms());
    struct open_call c = {.s = s, .err = err, .err_len = err_len};
    int rc = app_loop_call(o->loop, fleet_open, &c);
    if (rc < 0 || c.rc < 0) {
        if (rc < 0) {
            snprintf(err, err_len, "redis identity store: the fleet thread: %s",
                     tern_strerror(rc));
        } else {
            app_loop_call(o->loop, fleet_close, s);
        }
        pthread_mutex_destroy(&s->qlock);
        psk_cache_free(s->cache);
        goto fail_url;
    }
    return s;
fail_url:
    explicit_bzero(&s->url, sizeof(s->url));
    free(s);
    return NULL;
}

void psk_redis_free(struct psk_redis *s)
{
    if (s == NULL) {
        return;
    }
    if (app_loop_call(s->o.loop, fleet_close, s) < 0) {
        fleet_close(s); /* the loop is gone: no thread runs its callbacks any more */
    }
    pthread_mutex_destroy(&s->qlock);
    psk_cache_free(s->cache);
    explicit_bzero(&s->url, sizeof(s->url)); /* the password */
    free(s);
}

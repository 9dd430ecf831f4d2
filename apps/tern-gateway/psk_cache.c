/* SPDX-License-Identifier: MIT */
/*
 * The identity cache (psk_cache.h): striped locks, one allocation per entry, CLOCK eviction
 * per stripe. Invariants, per stripe and under its lock: every entry is on exactly one
 * bucket chain and on the CLOCK list (oldest first); `count` is the length of that list and
 * never exceeds `cap`; the bucket array only grows (which psk_cache_list_positive's cursor
 * relies on: an entry in bucket j moves to j or j + old size).
 */
#include "tern-gateway/psk_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MAX_STRIPES 256u
#define MIN_PER_STRIPE 64u
#define FIRST_BUCKETS 16u

enum {
    F_NEGATIVE = 1u << 0,
    F_DISABLED = 1u << 1,   /* negative because disabled (else unknown) */
    F_REFRESH = 1u << 2,    /* a refresh was queued for this (stale) entry */
    F_REFERENCED = 1u << 3, /* read since the CLOCK hand last passed */
    F_SHA384 = 1u << 4,
};

struct entry {
    struct entry *chain;         /* bucket chain */
    struct entry *prev, *next;   /* the stripe's CLOCK list, oldest first */
    uint64_t fresh_until;        /* monotonic ms */
    uint64_t stale_until;        /* monotonic ms (== fresh_until for negatives) */
    uint32_t hash;               /* low 32 bits of the identity's hash: the bucket */
    uint32_t max_conn;
    uint16_t backend_len;
    uint8_t id_len, key_len, flags;
    uint8_t data[];              /* identity, key, backend */
};

struct stripe {
    pthread_mutex_t lock;
    struct entry **buckets;
    uint32_t nbuckets;           /* a power of two */
    _Atomic uint32_t count;      /* written under the lock, read relaxed by psk_cache_count */
    struct entry *head, *tail;
} __attribute__((aligned(64)));

struct psk_cache {
    struct stripe *stripes;
    unsigned nstripes, stripe_shift;
    uint32_t cap;                /* entries per stripe */
    size_t max_entries;
    uint64_t k0, k1;             /* SipHash key */
    psk_cache_clock_fn clock;
    void *clock_user;
};

/* ---- hashing ------------------------------------------------------------------------------ */

static inline uint64_t rotl(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                \
    do {                                                                                        \
        v0 += v1;                                                                               \
        v1 = rotl(v1, 13);                                                                      \
        v1 ^= v0;                                                                               \
        v0 = rotl(v0, 32);                                                                      \
        v2 += v3;                                                                               \
        v3 = rotl(v3, 16);                                                                      \
        v3 ^= v2;                                                                               \
        v0 += v3;                                                                               \
        v3 = rotl(v3, 21);                                                                      \
        v3 ^= v0;                                                                               \
        v2 += v1;                                                                               \
        v1 = rotl(v1, 17);                                                                      \
        v1 ^= v2;                                                                               \
        v2 = rotl(v2, 32);                                                                      \
    } while (0)

/* SipHash-1-3: keyed, so that devices cannot choose identities that share a bucket. */
static uint64_t siphash13(uint64_t k0, uint64_t k1, const uint8_t *p, size_t len)
{
    uint64_t v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t m = 0;
        for (int b = 0; b < 8; b++) {
            m |= (uint64_t)p[i + (size_t)b] << (8 * b);
        }
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)(len & 0xff) << 56;
    for (int b = 0; i + (size_t)b < len; b++) {
        last |= (uint64_t)p[i + (size_t)b] << (8 * b);
    }
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- entries ------------------------------------------------------------------------------ */

static inline uint8_t *e_id(struct entry *e)
{
    return e->data;
}

static inline uint8_t *e_key(struct entry *e)
{
    return e->data + e->id_len;
}

static inline uint8_t *e_backend(struct entry *e)
{
    return e->data + e->id_len + e->key_len;
}

static inline size_t e_size(const struct entry *e)
{
    return offsetof(struct entry, data) + e->id_len + e->key_len + e->backend_len;
}

/* tests/unit/test_psk_cache.c frees entries through a function that checks the wipe */
#ifdef PSK_CACHE_TEST_FREE
void PSK_CACHE_TEST_FREE(void *p);
#define entry_release PSK_CACHE_TEST_FREE
#else
#define entry_release free
#endif

static void e_free(struct entry *e)
{
    if (e != NULL) {
        explicit_bzero(e, e_size(e)); /* the key, and the identity with it */
        entry_release(e);
    }
}

static struct entry *e_new(const void *id, size_t len, const struct psk_record *rec)
{
    size_t klen = rec != NULL ? rec->key_len : 0;
    size_t blen = rec != NULL ? strnlen(rec->backend, sizeof(rec->backend) - 1) : 0;
    struct entry *e = malloc(offsetof(struct entry, data) + len + klen + blen);
    if (e == NULL) {
        return NULL;
    }
    memset(e, 0, sizeof(*e));
    e->id_len = (uint8_t)len;
    e->key_len = (uint8_t)klen;
    e->backend_len = (uint16_t)blen;
    memcpy(e_id(e), id, len);
    if (rec != NULL) {
        memcpy(e_key(e), rec->key, klen);
        memcpy(e_backend(e), rec->backend, blen);
        e->max_conn = rec->max_conn;
        if (rec->hash == TERN_PSK_HASH_SHA384) {
            e->flags |= F_SHA384;
        }
    }
    return e;
}

static void e_copy_out(struct entry *e, struct psk_record *rec)
{
    memcpy(rec->key, e_key(e), e->key_len);
    rec->key_len = e->key_len;
    rec->hash = (e->flags & F_SHA384) ? TERN_PSK_HASH_SHA384 : TERN_PSK_HASH_SHA256;
    rec->max_conn = e->max_conn;
    memcpy(rec->backend, e_backend(e), e->backend_len);
    rec->backend[e->backend_len] = '\0';
}

/* ---- stripes (every function here: the stripe's lock held) ------------------------------- */

static void list_unlink(struct stripe *st, struct entry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        st->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        st->tail = e->prev;
    }
    e->prev = e->next = NULL;
}

static void list_append(struct stripe *st, struct entry *e)
{
    e->next = NULL;
    e->prev = st->tail;
    if (st->tail != NULL) {
        st->tail->next = e;
    } else {
        st->head = e;
    }
    st->tail = e;
}

/* The link that points at @p id's entry (or at the NULL ending its chain). */
static struct entry **find_link(struct stripe *st, uint32_t h, const void *id, size_t len)
{
    struct entry **link = &st->buckets[h & (st->nbuckets - 1)];
    while (*link != NULL) {
        struct entry *e = *link;
        if (e->hash == h && e->id_len == len && memcmp(e_id(e), id, len) == 0) {
            break;
        }
        link = &e->chain;
    }
    return link;
}

/* Unlinks @p e (found at @p link) from its chain and the list. */
static void stripe_take(struct stripe *st, struct entry **link, struct entry *e)
{
    *link = e->chain;
    e->chain = NULL;
    list_unlink(st, e);
    atomic_store_explicit(&st->count, atomic_load_explicit(&st->count, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static void stripe_remove(struct stripe *st, struct entry *e)
{
    struct entry **link = &st->buckets[e->hash & (st->nbuckets - 1)];
    while (*link != e) {
        link = &(*link)->chain;
    }
    stripe_take(st, link, e);
    e_free(e);
}

/* Doubles the bucket array when the load passes 1 (not past the stripe's bound); keeps the
 * old one if memory is short (chains just get longer). */
static void stripe_grow(struct stripe *st, uint32_t cap)
{
    uint32_t count = atomic_load_explicit(&st->count, memory_order_relaxed);
    if (count < st->nbuckets || st->nbuckets >= cap || st->nbuckets >= (1u << 30)) {
        return;
    }
    uint32_t n = st->nbuckets * 2;
    struct entry **b = calloc(n, sizeof(*b));
    if (b == NULL) {
        return;
    }
    for (uint32_t i = 0; i < st->nbuckets; i++) {
        struct entry *e = st->buckets[i];
        while (e != NULL) {
            struct entry *next = e->chain;
            struct entry **slot = &b[e->hash & (n - 1)];
            e->chain = *slot;
            *slot = e;
            e = next;
        }
    }
    free(st->buckets);
    st->buckets = b;
    st->nbuckets = n;
}

/* CLOCK: the oldest entry not read since the hand last passed it (negatives: at once). */
static void stripe_evict_one(struct stripe *st)
{
    uint32_t steps = atomic_load_explicit(&st->count, memory_order_relaxed) + 1;
    while (st->head != NULL && steps-- > 0) {
        struct entry *e = st->head;
        if ((e->flags & F_REFERENCED) && !(e->flags & F_NEGATIVE) && steps > 0) {
            e->flags &= (uint8_t)~F_REFERENCED;
            list_unlink(st, e);
            list_append(st, e);
            continue;
        }
        stripe_remove(st, e);
        return;
    }
}

/* ---- the cache ---------------------------------------------------------------------------- */

static uint64_t coarse_ms(void *user)
{
    (void)user;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct psk_cache *psk_cache_new(size_t max_entries, psk_cache_clock_fn clock, void *clock_user)
{
    if (max_entries == 0 || max_entries > (size_t)UINT32_MAX * MAX_STRIPES) {
        return NULL;
    }
    struct psk_cache *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return NULL;
    }
    unsigned n = 1;
    while (n < MAX_STRIPES && max_entries / (n * 2u) >= MIN_PER_STRIPE) {
        n *= 2;
    }
    c->nstripes = n;
    c->stripe_shift = 0;
    while ((1u << c->stripe_shift) < n) {
        c->stripe_shift++;
    }
    c->cap = (uint32_t)(max_entries / n);
    c->max_entries = max_entries;
    c->clock = clock != NULL ? clock : coarse_ms;
    c->clock_user = clock_user;
    uint64_t k[2];
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* no entropy yet: still a spread, only not secret */
        k[0] = coarse_ms(NULL) ^ (uint64_t)(uintptr_t)c;
        k[1] = rotl(k[0], 29) ^ 0x9e3779b97f4a7c15ull;
    }
    c->k0 = k[0];
    c->k1 = k[1];
    c->stripes = aligned_alloc(64, sizeof(struct stripe) * n);
    if (c->stripes == NULL) {
        free(c);
        return NULL;
    }
    memset(c->stripes, 0, sizeof(struct stripe) * n);
    for (unsigned i = 0; i < n; i++) {
        struct stripe *st = &c->stripes[i];
        st->nbuckets = FIRST_BUCKETS;
        st->buckets = calloc(FIRST_BUCKETS, sizeof(*st->buckets));
        if (st->buckets == NULL) {
            for (unsigned j = 0; j < i; j++) {
                free(c->stripes[j].buckets);
                pthread_mutex_destroy(&c->stripes[j].lock);
            }
            free(c->stripes);
            free(c);
            return NULL;
        }
        pthread_mutex_init(&st->lock, NULL);
    }
    return c;
}

void psk_cache_free(struct psk_cache *c)
{
    if (c == NULL) {
        return;
    }
    for (unsigned i = 0; i < c->nstripes; i++) {
        struct stripe *st = &c->stripes[i];
        struct entry *e = st->head;
        while (e != NULL) {
            struct entry *next = e->next;
            e_free(e);
            e = next;
        }
        free(st->buckets);
        pthread_mutex_destroy(&st->lock);
    }
    free(c->stripes);
    explicit_bzero(c, sizeof(*c)); /* the hash key */
    free(c);
}

uint64_t psk_cache_now_ms(const struct psk_cache *c)
{
    return c->clock(c->clock_user);
}

/* The stripe of @p id (locked on return) and the low bits of its hash in @p h. */
static struct stripe *lock_stripe(struct psk_cache *c, const void *id, size_t len, uint32_t *h)
{
    uint64_t full = siphash13(c->k0, c->k1, id, len);
    *h = (uint32_t)full;
    struct stripe *st = &c->stripes[c->stripe_shift == 0 ? 0 : full >> (64 - c->stripe_shift)];
    pthread_mutex_lock(&st->lock);
    return st;
}

static bool id_ok(const void *id, size_t len)
{
    return id != NULL && len >= 1 && len <= TERN_PSK_MAX_IDENTITY;
}

enum psk_cache_state psk_cache_get(struct psk_cache *c, const void *id, size_t len,
                                   struct psk_record *rec, bool *refresh, int *negative)
{
    if (refresh != NULL) {
        *refresh = false;
    }
    if (!id_ok(id, len)) {
        return PSK_CACHE_MISS;
    }
    uint64_t now = psk_cache_now_ms(c);
    uint32_t h;
    struct stripe *st = lock_stripe(c, id, len, &h);
    struct entry *e = *find_link(st, h, id, len);
    enum psk_cache_state state = PSK_CACHE_MISS;
    if (e == NULL) {
        /* MISS */
    } else if (e->flags & F_NEGATIVE) {
        if (now < e->fresh_until) {
            state = PSK_CACHE_NEGATIVE;
            e->flags |= F_REFERENCED;
            if (negative != NULL) {
                *negative = (e->flags & F_DISABLED) ? PSK_CACHE_DISABLED : PSK_CACHE_UNKNOWN;
            }
        }
    } else if (now < e->stale_until) {
        state = now < e->fresh_until ? PSK_CACHE_FRESH : PSK_CACHE_STALE;
        e->flags |= F_REFERENCED;
        if (rec != NULL) {
            e_copy_out(e, rec);
        }
        if (state == PSK_CACHE_STALE && refresh != NULL && !(e->flags & F_REFRESH)) {
            e->flags |= F_REFRESH;
            *refresh = true;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return state;
}

/* Puts @p fresh (built outside the lock) in place of any entry for its identity. */
static void insert(struct psk_cache *c, struct entry *fresh, bool *was_positive)
{
    uint32_t h;
    struct stripe *st = lock_stripe(c, e_id(fresh), fresh->id_len, &h);
    fresh->hash = h;
    struct entry **link = find_link(st, h, e_id(fresh), fresh->id_len);
    struct entry *old = *link;
    if (was_positive != NULL) {
        *was_positive = old != NULL && !(old->flags & F_NEGATIVE);
    }
    if (old != NULL) {
        stripe_take(st, link, old);
    } else if (atomic_load_explicit(&st->count, memory_order_relaxed) >= c->cap) {
        stripe_evict_one(st);
    }
    stripe_grow(st, c->cap);
    struct entry **slot = &st->buckets[h & (st->nbuckets - 1)];
    fresh->chain = *slot;
    *slot = fresh;
    list_append(st, fresh);
    atomic_store_explicit(&st->count, atomic_load_explicit(&st->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    pthread_mutex_unlock(&st->lock);
    e_free(old); /* outside the lock: the wipe and free need not hold readers back */
}

int psk_cache_put(struct psk_cache *c, const void *id, size_t len, const struct psk_record *rec,
                  uint64_t ttl_ms, uint64_t stale_ms, bool *was_positive)
{
    if (!id_ok(id, len) || rec == NULL || rec->key_len < TERN_PSK_MIN_KEY ||
        rec->key_len > TERN_PSK_MAX_KEY) {
        return -1;
    }
    struct entry *e = e_new(id, len, rec);
    if (e == NULL) {
        return -1;
    }
    uint64_t now = psk_cache_now_ms(c);
    e->fresh_until = now + ttl_ms;
    e->stale_until = e->fresh_until + stale_ms;
    insert(c, e, was_positive);
    return 0;
}

int psk_cache_put_negative(struct psk_cache *c, const void *id, size_t len, int why,
                           uint64_t ttl_ms, bool *was_positive)
{
    if (!id_ok(id, len)) {
        return -1;
    }
    struct entry *e = e_new(id, len, NULL);
    if (e == NULL) {
        return -1;
    }
    e->flags |= F_NEGATIVE;
    if (why == PSK_CACHE_DISABLED) {
        e->flags |= F_DISABLED;
    }
    e->fresh_until = e->stale_until = psk_cache_now_ms(c) + ttl_ms;
    insert(c, e, was_positive);
    return 0;
}

bool psk_cache_remove(struct psk_cache *c, const void *id, size_t len, bool *was_positive)
{
    if (was_positive != NULL) {
        *was_positive = false;
    }
    if (!id_ok(id, len)) {
        return false;
    }
    uint32_t h;
    struct stripe *st = lock_stripe(c, id, len, &h);
    struct entry **link = find_link(st, h, id, len);
    struct entry *e = *link;
    if (e != NULL) {
        if (was_positive != NULL) {
            *was_positive = !(e->flags & F_NEGATIVE);
        }
        stripe_take(st, link, e);
    }
    pthread_mutex_unlock(&st->lock);
    e_free(e);
    return e != NULL;
}

bool psk_cache_peek(struct psk_cache *c, const void *id, size_t len, bool *positive)
{
    if (positive != NULL) {
        *positive = false;
    }
    if (!id_ok(id, len)) {
        return false;
    }
    uint32_t h;
    struct stripe *st = lock_stripe(c, id, len, &h);
    struct entry *e = *find_link(st, h, id, len);
    if (e != NULL && positive != NULL) {
        *positive = !(e->flags & F_NEGATIVE);
    }
    pthread_mutex_unlock(&st->lock);
    return e != NULL;
}

void psk_cache_clear_refresh(struct psk_cache *c, const void *id, size_t len)
{
    if (!id_ok(id, len)) {
        return;
    }
    uint32_t h;
    struct stripe *st = lock_stripe(c, id, len, &h);
    struct entry *e = *find_link(st, h, id, len);
    if (e != NULL) {
        e->flags &= (uint8_t)~F_REFRESH;
    }
    pthread_mutex_unlock(&st->lock);
}

size_t psk_cache_drop_negatives(struct psk_cache *c)
{
    size_t dropped = 0;
    for (unsigned i = 0; i < c->nstripes; i++) {
        struct stripe *st = &c->stripes[i];
        pthread_mutex_lock(&st->lock);
        struct entry *e = st->head;
        while (e != NULL) {
            struct entry *next = e->next;
            if (e->flags & F_NEGATIVE) {
                stripe_remove(st, e); /* a negative holds no key: the wipe is cheap */
                dropped++;
            }
            e = next;
        }
        pthread_mutex_unlock(&st->lock);
    }
    return dropped;
}

/* The cursor: the stripe in bits 48..63, the bucket in 16..47, and in 0..15 how many
 * positives of that bucket's chain were listed already (a chain longer than @p max is
 * listed over several calls). */
#define CUR(si, bi, skip) (((uint64_t)(si) << 48) | ((uint64_t)(bi) << 16) | (uint64_t)(skip))

size_t psk_cache_list_positive(struct psk_cache *c, uint64_t *cursor,
                               struct psk_cache_ident *out, size_t max)
{
    size_t n = 0;
    if (max == 0) {
        return 0;
    }
    while (*cursor != PSK_CACHE_CURSOR_END && n < max) {
        uint32_t si = (uint32_t)(*cursor >> 48), bi = (uint32_t)(*cursor >> 16);
        size_t skip = (size_t)(*cursor & 0xffff);
        if (si >= c->nstripes) {
            *cursor = PSK_CACHE_CURSOR_END;
            break;
        }
        struct stripe *st = &c->stripes[si];
        pthread_mutex_lock(&st->lock);
        bool full = false;
        while (bi < st->nbuckets && !full) {
            size_t in_bucket = 0;
            for (struct entry *e = st->buckets[bi]; e != NULL; e = e->chain) {
                in_bucket += !(e->flags & F_NEGATIVE);
            }
            size_t left = in_bucket > skip ? in_bucket - skip : 0;
            /* whole (rest of) buckets, unless even an empty batch cannot hold it */
            if (n > 0 && n + left > max) {
                full = true;
                break;
            }
            size_t seen = 0;
            for (struct entry *e = st->buckets[bi]; e != NULL && n < max; e = e->chain) {
                if (!(e->flags & F_NEGATIVE) && seen++ >= skip) {
                    out[n].len = e->id_len;
                    memcpy(out[n].id, e_id(e), e->id_len);
                    n++;
                }
            }
            if (seen < in_bucket && seen <= 0xffff) {
                skip = seen; /* the batch filled inside this chain: on from here next time */
                full = true;
                break;
            }
            bi++;
            skip = 0;
            full = n >= max;
        }
        bool stripe_done = bi >= st->nbuckets;
        pthread_mutex_unlock(&st->lock);
        if (!stripe_done) {
            *cursor = CUR(si, bi, skip);
        } else if (si + 1 < c->nstripes) {
            *cursor = CUR(si + 1, 0, 0);
        } else {
            *cursor = PSK_CACHE_CURSOR_END;
        }
        if (full) {
            break;
        }
    }
    return n;
}

uint64_t psk_cache_hash(const struct psk_cache *c, const void *id, size_t len)
{
    return siphash13(c->k0, c->k1, id, len);
}

size_t psk_cache_count(const struct psk_cache *c)
{
    size_t n = 0;
    for (unsigned i = 0; i < c->nstripes; i++) {
        n += atomic_load_explicit(&c->stripes[i].count, memory_order_relaxed);
    }
    return n;
}

size_t psk_cache_max_entries(const struct psk_cache *c)
{
    return c->max_entries;
}

unsigned psk_cache_stripes(const struct psk_cache *c)
{
    return c->nstripes;
}

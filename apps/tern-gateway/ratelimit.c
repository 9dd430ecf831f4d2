/* SPDX-License-Identifier: MIT */
/* Token buckets in a fixed, set-associative table under striped locks (see ratelimit.h). */
#include "ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* One bucket: the key's fingerprint (both words 0: free), its tokens as of last_ms. */
struct bucket {
    uint64_t fp[2];
    double tokens;
    uint64_t last_ms;
};

struct stripe {
    _Alignas(64) pthread_mutex_t lock;
};

struct gw_rate_table {
    struct bucket *b;     /* n_sets * GW_RATE_WAYS */
    size_t n_sets;        /* a power of two */
    uint64_t seed[2];
    _Atomic uint64_t evictions, evictions_lost;
    struct stripe stripes[GW_RATE_STRIPES];
};

/* A 64-bit finalizer (xor-shift-multiply rounds): every input bit reaches every output bit. */
static uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

/* A seeded hash of @p n bytes, 8 at a time; the length goes in first, so that keys that differ
 * only by trailing zero bytes differ. Not a MAC: the seed is secret, which is what keeps keys
 * from being chosen to fall into one set. */
static uint64_t hash64(const uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t h = mix64(seed ^ (uint64_t)n);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n > 0) {
        memcpy(&w, p, n);
    }
    return mix64(h ^ w ^ ((uint64_t)n << 59));
}

struct gw_rate_table *gw_rate_table_new(size_t capacity)
{
    if (capacity == 0) {
        capacity = GW_RATE_DEFAULT_CAPACITY;
    }
    size_t sets = 1;
    while (sets * GW_RATE_WAYS < capacity) {
        sets *= 2;
    }
    struct gw_rate_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return NULL;
    }
    t->b = calloc(sets * GW_RATE_WAYS, sizeof(*t->b));
    if (t->b == NULL) {
        free(t);
        return NULL;
    }
    t->n_sets = sets;
    if (getrandom(t->seed, sizeof(t->seed), 0) != (ssize_t)sizeof(t->seed)) {
        /* No random source (very early boot): still distinct per process and table. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        t->seed[0] = mix64((uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)t);
        t->seed[1] = mix64(t->seed[0] ^ (uint64_t)ts.tv_sec);
    }
    for (size_t i = 0; i < GW_RATE_STRIPES; i++) {
        pthread_mutex_init(&t->stripes[i].lock, NULL);
    }
    return t;
}

void gw_rate_table_free(struct gw_rate_table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < GW_RATE_STRIPES; i++) {
        pthread_mutex_destroy(&t->stripes[i].lock);
    }
    free(t->b);
    free(t);
}

/* @p b's tokens at @p now_ms (no time passes backwards), at most @p burst. */
static double refilled(const struct bucket *b, double rate, double burst, uint64_t now_ms)
{
    double tokens = b->tokens;
    if (now_ms > b->last_ms) {
        tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
    }
    return tokens < burst ? tokens : burst;
}

bool gw_rate_take(struct gw_rate_table *t, const void *key, size_t len, double rate,
                  double burst, uint64_t now_ms)
{
    if (!(rate > 0)) { /* also NaN */
        return true;
    }
    if (!(burst >= 1)) {
        burst = 1;
    }
    uint64_t fp0 = hash64(key, len, t->seed[0]);
    uint64_t fp1 = hash64(key, len, t->seed[1]) | 1; /* never both 0: that is "free" */
    size_t set = (size_t)fp0 & (t->n_sets - 1);
    struct bucket *ways = t->b + set * GW_RATE_WAYS;
    pthread_mutex_t *lock = &t->stripes[set % GW_RATE_STRIPES].lock;
    bool allowed;

    pthread_mutex_lock(lock);
    struct bucket *hit = NULL, *victim = NULL;
    double victim_tokens = -1;
    for (size_t i = 0; i < GW_RATE_WAYS; i++) {
        struct bucket *b = &ways[i];
        if (b->fp[0] == fp0 && b->fp[1] == fp1) {
            hit = b;
            break;
        }
        if (victim != NULL && victim->fp[1] == 0) {
            continue; /* a free bucket found already: keep it */
        }
        if (b->fp[1] == 0) {
            victim = b;
            continue;
        }
        /* The fullest once refilled; among equals the least recently used. */
        double tk = refilled(b, rate, burst, now_ms);
        if (victim == NULL || tk > victim_tokens ||
            (tk == victim_tokens && b->last_ms < victim->last_ms)) {
            victim = b;
            victim_tokens = tk;
        }
    }
    if (hit != NULL) {
        hit->tokens = refilled(hit, rate, burst, now_ms);
        if (now_ms > hit->last_ms) {
            hit->last_ms = now_ms;
        }
        allowed = hit->tokens >= 1;
        if (allowed) {
            hit->tokens -= 1;
        }
    } else {
        if (victim->fp[1] != 0) {
            atomic_fetch_add_explicit(&t->evictions, 1, memory_order_relaxed);
            if (victim_tokens < burst) {
                atomic_fetch_add_explicit(&t->evictions_lost, 1, memory_order_relaxed);
            }
        }
        victim->fp[0] = fp0;
        victim->fp[1] = fp1;
        victim->tokens = burst - 1; /* a new bucket starts full; this attempt takes one */
        victim->last_ms = now_ms;
        allowed = true;
    }
    pthread_mutex_unlock(lock);
    return allowed;
}

size_t gw_rate_addr_key(uint8_t out[GW_RATE_ADDR_KEY_MAX], const struct sockaddr *sa)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (sa->sa_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 5;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped, sizeof(v4mapped)) == 0) {
            out[0] = 4;
            memcpy(out + 1, a + 12, 4);
            return 5;
        }
        out[0] = 6;
        memcpy(out + 1, a, 16);
        return 17;
    }
    return 0;
}

bool gw_rate_take_addr(struct gw_rate_table *t, const struct sockaddr *sa, double rate,
                       double burst, uint64_t now_ms)
{
    uint8_t key[GW_RATE_ADDR_KEY_MAX];
    size_t len = gw_rate_addr_key(key, sa);

    return len == 0 || gw_rate_take(t, key, len, rate, burst, now_ms);
}

uint64_t gw_rate_evictions(const struct gw_rate_table *t)
{
    return atomic_load_explicit(&t->evictions, memory_order_relaxed);
}

uint64_t gw_rate_evictions_lost(const struct gw_rate_table *t)
{
    return atomic_load_explicit(&t->evictions_lost, memory_order_relaxed);
}

size_t gw_rate_capacity(const struct gw_rate_table *t)
{
    return t->n_sets * GW_RATE_WAYS;
}

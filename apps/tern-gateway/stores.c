/* SPDX-License-Identifier: MIT */
/*
 * The gateway's Redis identity stores (psk_store): one store per URL for the life of the
 * process, all on one fleet thread (apps/common/redis.h app_loop). Services built with the
 * same URL share it, and a reload that keeps the URL keeps its cache warm. Identities removed
 * from Redis close their connections in the services with close_removed; the stores' state
 * goes to /metrics and /healthz.
 */
#include "stores.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/redis.h"
#include "psk_redis.h"

struct store {
    char *url;
    struct psk_redis *s;
    struct store *next;
};

static struct {
    pthread_mutex_t lock;             /* opening (setup and reload threads) */
    struct app_loop *loop;            /* the fleet thread: started by its first user */
    struct store *_Atomic list;       /* append-only until stores_free */
    struct app *app;
    uint32_t ttl_s, negative_ttl_s, stale_s;
    size_t cache_size;
} stores = {.lock = PTHREAD_MUTEX_INITIALIZER};

void stores_init(struct app *app)
{
    stores.app = app;
}

void stores_set_cache(const struct gw_globals *g)
{
    pthread_mutex_lock(&stores.lock);
    stores.ttl_s = g->store_ttl_s;
    stores.negative_ttl_s = g->store_negative_ttl_s;
    stores.stale_s = g->store_stale_s;
    stores.cache_size = (size_t)g->store_cache_size;
    pthread_mutex_unlock(&stores.lock);
}

/* On the fleet thread: an identity answered before is now gone or disabled. Each reactor
 * checks, in its own task, whether a service's settings in force use this store with
 * close_removed (settings are only safe to read on a reactor). */
static void on_removed(const void *id, size_t len, void *user)
{
    struct store *st = user;
    struct app *app = stores.app;
    tern_runtime *rt = app != NULL ? atomic_load_explicit(&app->rt_running, memory_order_acquire)
                                   : NULL;

    if (rt == NULL) {
        return;
    }
    for (struct gw_service *svc = first_service(app); svc != NULL; svc = next_service(svc)) {
        if (!atomic_load(&svc->draining)) {
            gw_close_identity(rt, svc, st->s, id, len);
        }
    }
}

struct psk_redis *stores_open(const char *url, void *ctx, char *err, size_t len)
{
    (void)ctx;
    struct app_loop *loop = gw_fleet_loop();
    pthread_mutex_lock(&stores.lock);
    for (struct store *st = atomic_load(&stores.list); st != NULL; st = st->next) {
        if (strcmp(st->url, url) == 0) {
            pthread_mutex_unlock(&stores.lock);
            return st->s;
        }
    }
    struct store *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->url = strdup(url)) == NULL) {
        snprintf(err, len, "out of memory");
        goto fail;
    }
    if (loop == NULL) {
        snprintf(err, len, "cannot start the fleet thread");
        goto fail;
    }
    const struct psk_redis_options o = {
        .url = url,
        .loop = loop,
        .ttl_s = stores.ttl_s,
        .negative_ttl_s = stores.negative_ttl_s,
        .stale_s = stores.stale_s,
        .max_entries = stores.cache_size,
        .on_removed = on_removed,
        .user = st,
    };
    if ((st->s = psk_redis_new(&o, err, len)) == NULL) {
        goto fail;
    }
    st->next = atomic_load(&stores.list);
    atomic_store_explicit(&stores.list, st, memory_order_release);
    pthread_mutex_unlock(&stores.lock);
    app_log(APP_LOG_INFO, "psk store opened", "store=%s", psk_redis_name(st->s));
    return st->s;

fail:
    if (st != NULL) {
        free(st->url);
        free(st);
    }
    pthread_mutex_unlock(&stores.lock);
    return NULL;
}

void stores_free(void)
{
    struct store *st = atomic_exchange(&stores.list, NULL);
    while (st != NULL) {
        struct store *next = st->next;
        psk_redis_free(st->s);
        free(st->url);
        free(st);
        st = next;
    }
}

struct app_loop *gw_fleet_loop(void)
{
    pthread_mutex_lock(&stores.lock);
    if (stores.loop == NULL) {
        stores.loop = app_loop_start("tern-fleet");
    }
    struct app_loop *l = stores.loop;
    pthread_mutex_unlock(&stores.lock);
    return l;
}

void gw_fleet_loop_stop(void)
{
    pthread_mutex_lock(&stores.lock);
    struct app_loop *l = stores.loop;
    stores.loop = NULL;
    pthread_mutex_unlock(&stores.lock);
    app_loop_stop(l);
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void stores_metrics(struct prom_buf *out)
{
    struct store *first = atomic_load_explicit(&stores.list, memory_order_acquire);
    uint64_t now = monotonic_ms();

    if (first == NULL) {
        return;
    }
    prom_family(out, "tern_gateway_psk_store_up", PROM_GAUGE,
                "1 while the Redis identity store's connections are up.");
    prom_family(out, "tern_gateway_psk_store_down_seconds", PROM_GAUGE,
                "How long the current outage of the store has lasted (0 when up).");
    prom_family(out, "tern_gateway_psk_store_outages_total", PROM_COUNTER,
                "Times the store's connection to Redis was lost (or not made at start).");
    prom_family(out, "tern_gateway_psk_store_cache_total", PROM_COUNTER,
                "Identity lookups by what the cache did: hit (fresh), stale (past the TTL, "
                "served while refreshed or while Redis is unreachable), negative (a fresh "
                "unknown), miss.");
    prom_family(out, "tern_gateway_psk_store_answers_total", PROM_COUNTER,
                "Redis's answers to lookups: found, unknown, error (timeout, lost connection, "
                "bad reply).");
    prom_family(out, "tern_gateway_psk_store_refusals_total", PROM_COUNTER,
                "Handshakes refused without asking Redis: unavailable (Redis down, identity "
                "not cached), overload (too many lookups waiting).");
    prom_family(out, "tern_gateway_psk_store_invalidations_total", PROM_COUNTER,
                "Invalidation messages received (channel or keyspace notification).");
    prom_family(out, "tern_gateway_psk_store_removed_total", PROM_COUNTER,
                "Identities found removed or disabled after being answered.");
    prom_family(out, "tern_gateway_psk_store_removals_ignored_total", PROM_COUNTER,
                "Unknown answers for known identities left unapplied because the store's marker "
                "key was missing (a Redis that came back empty).");
    prom_family(out, "tern_gateway_psk_store_cache_entries", PROM_GAUGE,
                "Identities in the cache now (known and unknown).");
    prom_family(out, "tern_gateway_psk_store_inflight", PROM_GAUGE,
                "Lookups waiting for Redis now.");
    for (struct store *st = first; st != NULL; st = st->next) {
        struct psk_redis_stats s;
        psk_redis_get_stats(st->s, &s);
        const char *name = psk_redis_name(st->s);
        struct prom_label l[2] = {{"store", name}, {NULL, NULL}};
        prom_sample_u64(out, "tern_gateway_psk_store_up", l, 1, s.up ? 1 : 0);
        prom_sample_double(out, "tern_gateway_psk_store_down_seconds", l, 1,
                           s.up || s.down_since_ms == 0 || s.down_since_ms > now
                               ? 0.0
                               : (double)(now - s.down_since_ms) / 1000.0);
        prom_sample_u64(out, "tern_gateway_psk_store_outages_total", l, 1, s.outages);
        const struct {
            const char *lname, *value, *family;
            uint64_t v;
        } rows[] = {
            {"result", "hit", "tern_gateway_psk_store_cache_total", s.hits},
            {"result", "stale", "tern_gateway_psk_store_cache_total", s.stale_hits},
            {"result", "negative", "tern_gateway_psk_store_cache_total", s.negative_hits},
            {"result", "miss", "tern_gateway_psk_store_cache_total", s.misses},
            {"answer", "found", "tern_gateway_psk_store_answers_total", s.found},
            {"answer", "unknown", "tern_gateway_psk_store_answers_total", s.unknown},
            {"answer", "error", "tern_gateway_psk_store_answers_total", s.errors},
            {"reason", "unavailable", "tern_gateway_psk_store_refusals_total", s.unavailable},
            {"reason", "overload", "tern_gateway_psk_store_refusals_total", s.overload},
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
            l[1] = (struct prom_label){rows[i].lname, rows[i].value};
            prom_sample_u64(out, rows[i].family, l, 2, rows[i].v);
        }
        prom_sample_u64(out, "tern_gateway_psk_store_invalidations_total", l, 1,
                        s.invalidations);
        prom_sample_u64(out, "tern_gateway_psk_store_removed_total", l, 1, s.removed);
        prom_sample_u64(out, "tern_gateway_psk_store_removals_ignored_total", l, 1,
                        s.removals_ignored);
        prom_sample_u64(out, "tern_gateway_psk_store_cache_entries", l, 1, s.entries);
        prom_sample_u64(out, "tern_gateway_psk_store_inflight", l, 1, s.inflight);
    }
}

size_t stores_health(char *buf, size_t len)
{
    uint64_t now = monotonic_ms();
    size_t o = 0;

    if (len == 0) {
        return 0;
    }
    buf[0] = '\0';
    for (struct store *st = atomic_load_explicit(&stores.list, memory_order_acquire);
         st != NULL && o < len; st = st->next) {
        struct psk_redis_stats s;
        psk_redis_get_stats(st->s, &s);
        if (s.up) {
            continue;
        }
        int n = snprintf(buf + o, len - o,
                         "degraded: psk store %s unreachable for %llu s (cached identities "
                         "served, unknown ones refused)\n",
                         psk_redis_name(st->s),
                         s.down_since_ms == 0 || s.down_since_ms > now
                             ? 0ull
                             : (unsigned long long)((now - s.down_since_ms) / 1000));
        o = n < 0 ? len : o + (size_t)n >= len ? len - 1 : o + (size_t)n;
        if (o >= len - 1) {
            break;
        }
    }
    return o;
}

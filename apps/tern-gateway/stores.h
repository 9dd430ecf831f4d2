/* SPDX-License-Identifier: MIT */
/*
 * The gateway's Redis identity stores (psk_store), one per URL, on one fleet thread.
 */
#ifndef TERN_GATEWAY_STORES_H
#define TERN_GATEWAY_STORES_H

#include <stddef.h>

#include "app.h"

/** Remembers @p app (removals close connections of its services). @thread setup */
void stores_init(struct app *app);

/** The cache shape of stores opened from now on (psk_store_ttl, _negative_ttl, _stale,
 * _cache_size; a running store keeps its own until a restart). @thread setup, reload */
void stores_set_cache(const struct gw_globals *g);

/** gw_store_open_fn: the store of @p url, opened on first use (it connects in the background:
 * Redis may be down at start). @thread setup, reload */
struct psk_redis *stores_open(const char *url, void *ctx, char *err, size_t len);

/** Frees every store: after the runtime stopped, before gw_fleet_loop_stop. @thread setup */
void stores_free(void);

/** The fleet thread (every connection to Redis: identity stores, ticket keys), started by
 * its first caller. @return it, or NULL (a thread failed). @thread setup, reload */
struct app_loop *gw_fleet_loop(void);

/** Stops the fleet thread, once every user freed its connections. @thread setup */
void gw_fleet_loop_stop(void);

/** The stores' families for /metrics. @thread any */
void stores_metrics(struct prom_buf *out);

/** One "degraded: ..." line per store whose Redis is unreachable, into @p buf (for /healthz,
 * which stays 200: cached identities are still served). @return the length. @thread any */
size_t stores_health(char *buf, size_t len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * From configuration text (conf.h) to what the gateway runs: the global values, and each
 * service's settings (forward.h) with every file it names loaded and checked (identities,
 * certificate, chain, key and their match, passphrase, backend CA and client certificate).
 * Nothing here exits: a start reports the error and exits 2, a reload logs it and keeps the
 * settings in force, `-t` prints it. Errors read "WHERE: key: why", WHERE being "FILE:LINE"
 * or "--option".
 */
#ifndef TERN_GATEWAY_BUILD_H
#define TERN_GATEWAY_BUILD_H

#include "conf.h"
#include "forward.h"

/** The global keys, parsed. */
struct gw_globals {
    unsigned threads;      /* 0: online CPUs */
    unsigned auth_workers;
    uint32_t drain_ms;
    uint32_t watch_s;
    const char *admin;     /* NULL: off (points into the conf) */
    const char *user;      /* NULL: stay who we are */
    const char *group;
    bool allow_root;
    bool reuseport;        /* one SO_REUSEPORT listener per reactor and address */
    int log_level;         /* -1: not given */
    int log_format;        /* -1: not given; 0 text, 1 json */
    const char *ticket_keys; /* the fleet's ticket key file, or a redis:// URL (checked);
                              * NULL: keys of this process */
    /* the Redis identity stores' caches (psk_redis.h; 0: its defaults) */
    uint32_t store_ttl_s, store_negative_ttl_s, store_stale_s;
    uint64_t store_cache_size;
};

struct psk_redis;

/** Opens (or finds) the Redis identity store of @p url for a service being built. @return the
 * store (it lives until the program exits), or NULL with a reason in @p err. */
typedef struct psk_redis *(*gw_store_open_fn)(const char *url, void *ctx, char *err, size_t len);

/** Sets how services open their `psk_store` (the program does, once, before building). Without
 * it (-t, tests) a store URL is only checked. */
void gw_build_set_store_opener(gw_store_open_fn fn, void *ctx);

/** Loads @p path into @p keys (a bad file changes nothing; a Redis URL loads nothing: the
 * fleet's keys come through common/fleet_tickets). @return 0; -1 with "WHERE: ticket_keys:
 * why" in @p err. */
int gw_load_ticket_keys(const struct conf *c, tern_ticket_keys *keys, char *err, size_t len);

/** Parses the global keys of @p c. @return 0; -1 with @p err set. */
int gw_build_globals(const struct conf *c, struct gw_globals *g, char *err, size_t len);

/** The listening addresses of service @p s (default 127.0.0.1:8883), each checked to parse.
 * @return how many (1..GW_MAX_LISTEN); -1 with @p err set. */
int gw_build_listen(const struct conf *c, const struct conf_section *s,
                    char addrs[GW_MAX_LISTEN][280], char *err, size_t len);

/**
 * Builds service @p s's settings: every value checked, every file loaded. @p auth_workers > 0
 * binds the store to the TLS configuration's lookup (the workers ask it). @p tickets (may be
 * NULL) seals the session tickets: one set for every configuration the process builds, so a
 * ticket issued before a reload resumes after it. @p warn receives a
 * warning that does not stop the build (a PSK file readable by others), or "".
 * @return 0 with *@p out holding one reference; -1 with @p err set.
 */
int gw_build_settings(const struct conf *c, const struct conf_section *s, unsigned auth_workers,
                      tern_ticket_keys *tickets, struct gw_settings **out, char *err, size_t len,
                      char *warn, size_t warn_len);

#endif

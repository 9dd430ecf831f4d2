/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's data path: one accepted TLS connection from a device, one plaintext TCP
 * connection to the backend, bytes copied both ways on the reactor that owns both sockets.
 * Everything here runs on that reactor: no locks, except the per-identity connection table
 * (ident_limit_*), which any reactor touches at handshake and close only.
 */
#ifndef TERN_GATEWAY_FORWARD_H
#define TERN_GATEWAY_FORWARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

/* Gateway counters, one padded slot per reactor: each reactor writes only its own slot
 * (relaxed load + store, never a shared read-modify-write), main sums them on exit. */
enum gw_counter {
    /* handshakes, unknown identities, wrong keys and lookup timeouts: tern_stats */
    GW_IDENTITY_LIMIT,    /* refused: the identity has --max-conn-per-identity open */
    GW_BACKEND_CONNECTS,  /* backend connections established */
    GW_BACKEND_ERRORS,    /* backend connections that failed to open */
    GW_COUNTER_COUNT,
};

struct conn;

struct gw_counters {
    _Alignas(64) _Atomic uint64_t v[GW_COUNTER_COUNT];
};

/* What the forwarding code needs from the program; set up by main, read-only afterwards. */
struct gw_config {
    tern_psk_store *store;
    char backend_host[256];
    uint16_t backend_port;
    const char *backend; /* as given, for logs */
    unsigned max_conn_per_identity; /* 0: no limit */
    bool store_on_workers;          /* lookups on the PSK workers, not inline */
    bool proxy_v2;                  /* send a PROXY v2 header to the backend */
    uint32_t backend_connect_timeout_ms;
    size_t buffer_size; /* read and write limit of each side */
    struct gw_counters counters[TERN_MAX_REACTORS];
    struct conn *live[TERN_MAX_REACTORS]; /* each reactor's open device connections */
};

/** The server's `incoming` callback (@p user is the struct gw_config). */
void gw_incoming(tern_server *srv, tern_socket *s, void *user);

/**
 * After an identity reload: closes (gracefully) the device connections whose identity is no
 * longer in the store, on every reactor of @p rt (posted there: each reactor walks its own
 * connections). @thread any
 */
void gw_close_removed(tern_runtime *rt, struct gw_config *gw);

/** Sums counter @p which over every reactor. @thread any */
uint64_t gw_counter_sum(const struct gw_config *gw, enum gw_counter which);

/** Sets up / tears down the per-identity connection table. @thread setup */
int gw_ident_limit_init(void);
void gw_ident_limit_destroy(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's data path: one accepted TLS connection from a device, one TCP (or TLS)
 * connection to a backend, bytes copied both ways on the reactor that owns both sockets.
 *
 * A gateway runs one or more *services* (a `[section]` of the configuration file, or the one
 * service the command line describes). A service has listening servers (one per address), its
 * counters and its open connections; what it does with a connection is its *settings*: an
 * immutable, reference-counted snapshot (TLS configuration, identity store, backends, routes,
 * limits) that a reload replaces as a whole. A connection takes a reference to the settings in
 * force when it was accepted and keeps them until it ends: a reload never changes what a live
 * connection uses.
 *
 * Threads: settings are built on the setup / reload thread and published with
 * `gw_service_publish`; reactors take them with `gw_settings_acquire` (at accept) and drop them
 * with `gw_settings_release`. Everything else in this file runs on the reactor that owns the
 * connection: no locks, except the per-identity tables (connection limit, rate limits), which
 * any reactor touches at handshake and close only.
 */
#ifndef TERN_GATEWAY_FORWARD_H
#define TERN_GATEWAY_FORWARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

/* Gateway counters of a service, one padded slot per reactor: each reactor writes only its
 * own slot (relaxed load + store, never a shared read-modify-write); readers sum them. */
enum gw_counter {
    GW_ACCEPTED,            /* device connections accepted */
    GW_CLOSED,              /* device connections ended */
    GW_HANDSHAKES,          /* device handshakes completed */
    GW_HANDSHAKE_FAILURES,  /* device handshakes that failed (any reason) */
    GW_UNKNOWN_IDENTITY,    /* refused: the identity is not in the store */
    GW_IDENTITY_LIMIT,      /* refused: the identity has max_conn_per_identity open */
    GW_RATE_LIMITED_IDENTITY, /* refused: the identity's handshake bucket is empty */
    GW_RATE_LIMITED_SOURCE, /* refused: the source address's handshake bucket is empty */
    GW_PROXY_IN_ERRORS,     /* closed: a missing or malformed PROXY header from the front */
    GW_BACKEND_CONNECTS,    /* backend connections established */
    GW_BACKEND_ERRORS,      /* backend connection attempts that failed */
    GW_BACKEND_FAILOVERS,   /* attempts moved on to the next backend after a failure */
    GW_NO_BACKEND,          /* device connections closed: no backend could be reached */
    GW_BYTES_UP,            /* bytes forwarded device -> backend */
    GW_BYTES_DOWN,          /* bytes forwarded backend -> device */
    GW_COUNTER_COUNT,
};

/* Backend connect latency: upper bounds in microseconds of the histogram buckets (the last,
 * +Inf, is implicit). */
#define GW_LATENCY_BUCKETS 12
static const uint32_t gw_latency_bounds_us[GW_LATENCY_BUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000,
};

struct gw_counters {
    _Alignas(64) _Atomic uint64_t v[GW_COUNTER_COUNT];
    _Atomic uint64_t latency[GW_LATENCY_BUCKETS + 1]; /* backend connects, by bucket */
    _Atomic uint64_t latency_sum_us;
};

/** One backend address: a host (literal or name, resolved per connection) and a port. */
struct gw_backend {
    char host[256];
    uint16_t port;
    char text[272]; /* "host:port" as configured, for logs and metrics labels */
};

enum gw_balance {
    GW_BALANCE_FAILOVER,    /* the first that accepts, in the order given (default) */
    GW_BALANCE_ROUND_ROBIN, /* each connection starts at the next one; failures move on */
};

/** A list of backends and how a connection picks among them. */
struct gw_backend_set {
    struct gw_backend *v;
    size_t n;
};

/** Identity routing: identities matching @p pattern go to @p backends. A pattern ending in
 * '*' with no other wildcard is a prefix; otherwise it is a glob (fnmatch(3), no flags).
 * Routes are tried in the order configured; the first match wins; no match: the service's
 * own backends. */
struct gw_route {
    char *pattern;
    bool prefix;              /* pattern minus its final '*' is a prefix */
    size_t prefix_len;
    struct gw_backend_set backends;
    unsigned line;            /* where it was configured (for -t and logs) */
};

enum gw_proxy_in {
    GW_PROXY_IN_OFF,
    GW_PROXY_IN_V1, /* the text form: "PROXY TCP4 ..." */
    GW_PROXY_IN_V2, /* the binary form */
};

/** A token bucket's shape: @p rate handshakes per second, up to @p burst at once; rate 0: off. */
struct gw_rate {
    double rate;
    double burst;
};

/** What a service does with a connection: immutable once published. */
struct gw_settings {
    _Atomic unsigned long refs;       /* the service's publication + one per connection */
    char *name;                       /* the service's name */
    tern_ssl_config *ssl;             /* device side (PSK, certificate) */
    bool has_cert;                    /* ssl has a certificate (devices without a PSK) */
    tern_psk_store *store;            /* owned: the identities of this snapshot */
    bool store_on_workers;            /* lookups on the PSK workers (ssl's lookup is bound) */
    struct psk_redis *redis;          /* psk_store: the Redis store (not owned: it lives until
                                       * the program exits); NULL: none */
    struct gw_backend_set backends;   /* owned */
    enum gw_balance balance;
    struct gw_route *routes;          /* owned, n_routes of them */
    size_t n_routes;
    tern_ssl_config *backend_ssl;     /* TLS to the backend; NULL: plaintext */
    char *backend_verify_name;        /* the name the backend's certificate must have; NULL:
                                       * the backend's host */
    bool proxy_v2;                    /* send a PROXY v2 header to the backend */
    enum gw_proxy_in proxy_in;        /* expect a PROXY header from the front */
    unsigned max_conn_per_identity;   /* 0: no limit */
    struct gw_rate rate_identity;     /* handshake attempts per identity */
    struct gw_rate rate_source;       /* handshake attempts per source address */
    uint32_t handshake_timeout_ms;    /* also bounds the wait for a PROXY header */
    uint32_t idle_timeout_ms;         /* device connections idle this long close; 0: never */
    uint32_t hibernate_after_ms;      /* device connections idle this long give their TLS
                                       * state up (tern_socket_set_hibernate_after); 0: never */
    uint32_t backend_connect_timeout_ms;
    size_t buffer_size;               /* read and write limit of each side */
    bool close_removed;               /* after a reload, close connections of removed ids */
    struct gw_id_metric *id_metrics;  /* owned, n_id_metrics of them; the first match counts */
    size_t n_id_metrics;
};

/* Per-identity metrics, for the identities (or patterns) a service lists in
 * metrics_identities: bounded cardinality, whatever the fleet's size. */
#define GW_MAX_ID_METRICS 64
enum gw_id_counter {
    GW_ID_HANDSHAKES, /* handshakes completed by a matching identity */
    GW_ID_CLOSED,     /* of those, connections ended */
    GW_ID_BYTES_UP,
    GW_ID_BYTES_DOWN,
    GW_ID_COUNTERS,
};

/** One entry of metrics_identities: an identity, a prefix ('plant-a/' + '*') or a glob. */
struct gw_id_metric {
    char *pattern;
    bool prefix;
    size_t prefix_len;
    unsigned slot; /* its row in the service's table (gw_service.id_names) */
};

struct conn;
struct psk_redis;

#define GW_MAX_LISTEN 16

/** A service: lives as long as the process, or until a reload removes it and it drained. */
struct gw_service {
    char name[64];
    struct gw_settings *_Atomic cur;  /* the published settings */
    _Atomic bool draining;            /* removed by a reload: no new connections */
    struct gw_counters counters[TERN_MAX_REACTORS];
    struct conn *live[TERN_MAX_REACTORS]; /* each reactor's open device connections */
    unsigned rr_next[TERN_MAX_REACTORS]; /* round robin cursor, per reactor (owner only) */
    /* per-identity metrics: names given a row (by the setup / reload thread, before the
     * settings that use them are published; rows are never reused), and one table of
     * counters per reactor, allocated when the first settings with metrics_identities are */
    char id_names[GW_MAX_ID_METRICS][TERN_PSK_MAX_IDENTITY + 1];
    _Atomic unsigned n_id_names;
    _Atomic uint64_t (*_Atomic id_counters)[GW_MAX_ID_METRICS][GW_ID_COUNTERS];
    tern_server *servers[GW_MAX_LISTEN]; /* listening now (closed ones are dropped) */
    char listen[GW_MAX_LISTEN][280];     /* their addresses as configured */
    size_t n_servers;
    struct gw_service *next; /* appended with a release store; read with acquire loads */
};

/* ---- settings (service.c) ------------------------------------------------------------------ */

/** A new reference to @p svc's published settings. @thread reactor (at accept) */
struct gw_settings *gw_settings_acquire(struct gw_service *svc);

/** Drops a reference; the last frees the settings. @thread any */
void gw_settings_release(struct gw_settings *st);

/**
 * Publishes @p st (whose one reference the service now holds) as @p svc's settings; the
 * previous ones are released once every reactor of @p rt has passed a point where it cannot
 * be inside `gw_settings_acquire` (a task posted to each), or at once when @p rt is not
 * running. @thread setup or reload
 */
void gw_service_publish(tern_runtime *rt, struct gw_service *svc, struct gw_settings *st);

/* ---- the data path (forward.c) ------------------------------------------------------------- */

/** The server's `incoming` callback (@p user is the struct gw_service). Servers are created
 * plaintext (configuration NULL): the connection sets the TLS configuration of its settings
 * on the socket and starts TLS itself (after the PROXY header, when one is expected). */
void gw_incoming(tern_server *srv, tern_socket *s, void *user);

/**
 * After an identity reload of @p svc: closes (gracefully) the device connections whose
 * identity is not in the service's *published* store, on every reactor of @p rt (posted
 * there: each reactor walks its own connections). @thread any
 */
void gw_close_removed(tern_runtime *rt, struct gw_service *svc);

/** Closes (gracefully) every connection of @p svc whose PSK identity is @p id, if the
 * service's settings in force use @p store with close_removed: an identity removed from the
 * Redis store. Posts a task to every reactor (each checks its own). @thread any */
void gw_close_identity(tern_runtime *rt, struct gw_service *svc, const struct psk_redis *store,
                       const void *id, size_t len);

/**
 * Closes (gracefully) every device connection of @p svc (a service removed by a reload, after
 * its drain time), posted to every reactor of @p rt. @thread any
 */
void gw_close_all(tern_runtime *rt, struct gw_service *svc);

/** Sums counter @p which of @p svc over every reactor. @thread any */
uint64_t gw_counter_sum(const struct gw_service *svc, enum gw_counter which);

/** Open device connections of @p svc now (accepted - closed). @thread any */
uint64_t gw_open_connections(const struct gw_service *svc);

/** Sets up / tears down the per-identity tables (connection limit, rate limits).
 * @thread setup */
int gw_ident_limit_init(void);
void gw_ident_limit_destroy(void);

#endif

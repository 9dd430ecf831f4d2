/* SPDX-License-Identifier: MIT */
/*
 * tern-echo's state, shared by main.c (the server) and options.c (the command line and the
 * TLS configuration built from it). Set up on the main thread before the runtime starts;
 * read-only afterwards, except the stats reporter's fields (reactor 0). A reload (the signal
 * thread) reads the options and hands a new configuration to srv; the reactors never read
 * ssl or tickets (the server and its configurations carry them).
 */
#ifndef TERN_ECHO_H
#define TERN_ECHO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <tern/tern.h>

#include "common/opts.h"
#include "common/tls_opts.h"

#define PROGRAM "tern-echo"
#define DEFAULT_LISTEN "127.0.0.1:8443"
#define DEFAULT_DRAIN_MS 5000u
#define EXIT_FAILURE_RUNTIME 1

struct app_loop;
struct fleet_tickets;

struct app {
    /* options */
    struct app_common_opts common; /* --listen, --threads */
    struct app_tls_opts tls;       /* --cert, --key, --key-pass-file, --chain, --tls-min, --ciphers */
    bool reuseport;
    enum tern_balance_policy balance;
    unsigned max_connections;
    uint32_t idle_timeout_ms;
    uint32_t hibernate_after_ms; /* --hibernate-after: idle TLS state exported; 0: never */
    uint32_t drain_ms;
    uint32_t stats_interval_s;
    const char *admin; /* --admin HOST:PORT: the metrics and health listener; NULL: off */
    /* TLS options of tern-echo's own (NULL / false: not given) */
    const char *client_ca;
    const char *crl; /* --crl: revoked client certificates */
    const char *alpn;
    const char *ocsp_response;
    const char *ocsp_issuer;
    const char *ticket_keys_file;  /* shared ticket keys (a file or a Redis URL); else
                                    * tern's own, rotated */
    bool ticket_keys_redis;        /* ticket_keys_file is a redis:// or rediss:// URL */
    struct app_loop *fleet_loop;   /* the fleet thread (common/redis.h), with Redis keys */
    struct fleet_tickets *fleet;   /* the keys shared through Redis (common/fleet_tickets.h) */
    uint32_t ticket_lifetime_s;
    unsigned session_tickets;      /* TLS 1.3 tickets per handshake */
    bool session_cache;            /* TLS 1.2 by session ID: cache on, no TLS 1.2 tickets */
    tern_ticket_keys *tickets;     /* one set for the process: every configuration uses it */
    bool verify_client;
    bool starttls;
    bool plain;
    /* after binding: --user, --group, --allow-root (common/service.h) */
    const char *user;
    const char *group;
    bool allow_root;
    /* state */
    tern_ssl_config *ssl; /* the start's configuration until the server takes it; then NULL */
    tern_server *srv;     /* a reload hands it each new configuration */
    tern_runtime *rt;
    tern_actor *stats_actor;
    tern_timer *stats_timer; /* reactor 0 only */
    struct app_admin *admin_state; /* --admin's listener (common/admin.h) */
    struct timespec started;
};

/** The --balance names, indexed by tern_balance_policy. */
extern const char *const echo_balance_names[];

/** Parses the command line into @p app; a bad argument is one line and exit 2. */
void echo_parse_args(struct app *app, int argc, char **argv);

/**
 * A new TLS configuration from the options, every file read again (certificate, chain, key
 * and passphrase, client CAs, CRL, OCSP response), with app->tickets as its ticket keys; the
 * first call makes app->tickets (loading --ticket-keys), later ones reuse it untouched, so
 * tickets sealed before a reload still open after it. NULL with @p err filled: nothing of
 * @p app changed except, on the first call, app->tickets.
 */
tern_ssl_config *echo_ssl_config_new(struct app *app, struct app_tls_error *err);

/** Builds app->ssl from the options, or exits with one line saying what is wrong. */
void echo_build_ssl_config(struct app *app);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's configuration: an INI file (read with libinih) and the command line, as one
 * set of keys. Every key is the name of a long option (`psk-file` = `psk_file`: '-' and '_'
 * are the same); global keys come before the first `[section]`, each section is a service.
 * Values are kept as text with where they came from ("FILE:LINE", or "--option" for the
 * command line) and checked when the services are built (build.c), so a reload reports a bad
 * value exactly as a start does.
 *
 *   threads = 2
 *   admin = 127.0.0.1:9100
 *   [mqtt]
 *   listen = 0.0.0.0:8883
 *   psk_file = /etc/tern/devices.psk
 *   backend = 127.0.0.1:1883, 127.0.0.1:1884
 */
#ifndef TERN_GATEWAY_CONF_H
#define TERN_GATEWAY_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_scope {
    CONF_GLOBAL,
    CONF_SERVICE,
};

/* The keys, global ones first. */
enum conf_key {
    K_THREADS,
    K_LOG_LEVEL,
    K_LOG_FORMAT,
    K_ADMIN,
    K_USER,
    K_GROUP,
    K_ALLOW_ROOT,
    K_REUSEPORT,
    K_DRAIN,
    K_AUTH_WORKERS,
    K_WATCH,
    K_TICKET_KEYS,
    K_PSK_STORE_TTL,
    K_PSK_STORE_NEGATIVE_TTL,
    K_PSK_STORE_STALE,
    K_PSK_STORE_CACHE_SIZE,
    K_FIRST_SERVICE_KEY,
    K_LISTEN = K_FIRST_SERVICE_KEY,
    K_PSK_FILE,
    K_PSK_STORE,
    K_PSK_HINT,
    K_CERT,
    K_KEY,
    K_KEY_PASS_FILE,
    K_CHAIN,
    K_TLS_MIN,
    K_TLS_MAX,
    K_CIPHERS,
    K_GROUPS,
    K_HANDSHAKE_TIMEOUT,
    K_IDLE_TIMEOUT,
    K_HIBERNATE_AFTER,
    K_MAX_CONN_PER_IDENTITY,
    K_CLOSE_REMOVED,
    K_BACKEND,
    K_BACKEND_BALANCE,
    K_BACKEND_CONNECT_TIMEOUT,
    K_BACKEND_TLS,
    K_BACKEND_CA,
    K_BACKEND_VERIFY_NAME,
    K_BACKEND_CERT,
    K_BACKEND_KEY,
    K_ROUTE,
    K_PROXY_PROTOCOL,
    K_PROXY_PROTOCOL_IN,
    K_RATE_PER_IDENTITY,
    K_RATE_PER_SOURCE,
    K_METRICS_IDENTITIES,
    K_COUNT,
};

/** One value and where it was given. */
struct conf_val {
    char *text;
    unsigned line; /* 0: the command line */
};

/** The values of one key: at most one unless the key is repeatable (listen, backend, route). */
struct conf_list {
    struct conf_val *v;
    size_t n;
};

/** The global keys (name "") or a service. */
struct conf_section {
    char name[64];
    unsigned line;
    struct conf_list keys[K_COUNT];
};

struct conf {
    char *file; /* NULL: command line only */
    struct conf_section global;
    struct conf_section *svc;
    size_t n_svc;
};

/** The key's name as in the file ("psk_file"); its option is the same with '-'. */
const char *conf_key_name(enum conf_key k);

/** The key named @p name ('-' and '_' alike). @return the key or -1. */
int conf_key_find(const char *name);

/** Whether @p k may be given several times (listen, backend, route, metrics_identities). */
bool conf_key_repeatable(enum conf_key k);

/** CONF_GLOBAL or CONF_SERVICE. */
enum conf_scope conf_key_scope(enum conf_key k);

/**
 * Reads @p path into @p c (zeroed first). Every problem is one line "FILE:LINE: what" in
 * @p err (several lines, '\n'-separated, as many as fit). @return 0; -1 with @p err set.
 */
int conf_load(struct conf *c, const char *path, char *err, size_t len);

/**
 * Sets @p k in @p s to @p text from the command line (line 0), replacing what the file gave;
 * a repeatable key given on the command line replaces the file's list on the first use and
 * adds to it afterwards. @return 0; -1 out of memory.
 */
int conf_set_cli(struct conf_section *s, enum conf_key k, const char *text, bool *first_use);

/** The single value of @p k in @p s, or NULL. */
const struct conf_val *conf_get(const struct conf_section *s, enum conf_key k);

/** Where @p v of key @p k was given, to start an error line: "FILE:LINE: key" or "--option".
 * @return buf. */
const char *conf_where(const struct conf *c, enum conf_key k, const struct conf_val *v, char *buf,
                       size_t len);

/** Frees what @p c holds (not @p c itself). */
void conf_free(struct conf *c);

/** Deep copy of section @p from into @p to (zeroed first). @return 0; -1 out of memory. */
int conf_section_copy(struct conf_section *to, const struct conf_section *from);

/** Frees what @p s holds. */
void conf_section_free(struct conf_section *s);

/* Typed readers: each parses the single value of @p k in @p s (or gives @p def when absent)
 * and on a bad value writes "WHERE: KEY: why" into @p err. @return 0; -1 on a bad value. */
int conf_uint(const struct conf *c, const struct conf_section *s, enum conf_key k, uint64_t min,
              uint64_t max, uint64_t def, uint64_t *out, char *err, size_t len);
/** Seconds with up to 3 decimals ("5", "0.2"), in milliseconds, at most @p max_ms. */
int conf_seconds_ms(const struct conf *c, const struct conf_section *s, enum conf_key k,
                    uint64_t max_ms, uint64_t def_ms, uint64_t *out, char *err, size_t len);
int conf_bool(const struct conf *c, const struct conf_section *s, enum conf_key k, bool def,
              bool *out, char *err, size_t len);
/** @p names NULL-terminated; @p out the index. */
int conf_choice(const struct conf *c, const struct conf_section *s, enum conf_key k,
                const char *const *names, unsigned def, unsigned *out, char *err, size_t len);

/** Splits a comma-separated @p text into trimmed items, calling @p fn on each (an empty item
 * is refused). @return what @p fn returned first if negative, -1 on an empty item, else 0. */
int conf_split(const char *text, int (*fn)(const char *item, size_t len, void *user), void *user);

#endif

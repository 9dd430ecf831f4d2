/* SPDX-License-Identifier: MIT */
/*
 * Configuration text -> settings (see build.h).
 */
#include "build.h"

#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"
#include "common/redis.h"
#include "common/tls_opts.h"

#define DEFAULT_LISTEN "127.0.0.1:8883"
#define DEFAULT_DRAIN_MS 5000u
#define DEFAULT_WATCH_S 2u
#define DEFAULT_HANDSHAKE_TIMEOUT_S 10u
#define DEFAULT_BACKEND_CONNECT_TIMEOUT_S 10u
#define BUFFER_SIZE (256u * 1024u)
#define MAX_BACKENDS 64
#define MAX_ROUTES 1024

/* "WHERE: key: why" for key @p k of @p s (its last value, or the section when absent). */
static int fail(const struct conf *c, const struct conf_section *s, enum conf_key k, char *err,
                size_t len, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(const struct conf *c, const struct conf_section *s, enum conf_key k, char *err,
                size_t len, const char *fmt, ...)
{
    char where[300], msg[600];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct conf_val *v = conf_get(s, k);
    if (v == NULL && c->file != NULL && s->line > 0) {
        snprintf(where, sizeof(where), "%s:%u: [%s]", c->file, s->line, s->name);
        snprintf(err, len, "%s: %s", where, msg);
    } else if (v == NULL) {
        snprintf(err, len, "%s", msg);
    } else {
        snprintf(err, len, "%s: %s", conf_where(c, k, v, where, sizeof(where)), msg);
    }
    return -1;
}

/* "WHERE: key FILE: why" from a TLS configuration's error string. */
static int fail_cfg(const struct conf *c, const struct conf_section *s, enum conf_key k,
                    const tern_ssl_config *cfg, int rc, char *err, size_t len)
{
    const char *why = cfg != NULL ? tern_ssl_config_error_string(cfg) : "";
    size_t n = strlen(conf_key_name(k));
    if (strncmp(why, conf_key_name(k), n) == 0 && strncmp(why + n, ": ", 2) == 0) {
        why += n + 2; /* "ciphers: ..." after "ciphers:" once is enough */
    }
    return fail(c, s, k, err, len, "%s", why[0] != '\0' ? why : tern_strerror(rc));
}

static const char *text_of(const struct conf_section *s, enum conf_key k)
{
    const struct conf_val *v = conf_get(s, k);
    return v != NULL ? v->text : NULL;
}

/* ---- globals ------------------------------------------------------------------------------- */

int gw_build_globals(const struct conf *c, struct gw_globals *g, char *err, size_t len)
{
    static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const formats[] = {"text", "json", NULL};
    const struct conf_section *s = &c->global;
    uint64_t v;
    unsigned u;

    memset(g, 0, sizeof(*g));
    if (conf_uint(c, s, K_THREADS, 1, TERN_MAX_REACTORS, 0, &v, err, len) < 0) {
        return -1;
    }
    g->threads = (unsigned)v;
    if (conf_uint(c, s, K_AUTH_WORKERS, 0, 256, 0, &v, err, len) < 0) {
        return -1;
    }
    g->auth_workers = (unsigned)v;
    if (conf_uint(c, s, K_DRAIN, 0, 3600u * 1000, DEFAULT_DRAIN_MS, &v, err, len) < 0) {
        return -1;
    }
    g->drain_ms = (uint32_t)v;
    if (conf_uint(c, s, K_WATCH, 0, 3600, DEFAULT_WATCH_S, &v, err, len) < 0) {
        return -1;
    }
    g->watch_s = (uint32_t)v;
    g->log_level = -1;
    if (conf_get(s, K_LOG_LEVEL) != NULL) {
        if (conf_choice(c, s, K_LOG_LEVEL, levels, 1, &u, err, len) < 0) {
            return -1;
        }
        g->log_level = (int)u;
    }
    g->log_format = -1;
    if (conf_get(s, K_LOG_FORMAT) != NULL) {
        if (conf_choice(c, s, K_LOG_FORMAT, formats, 0, &u, err, len) < 0) {
            return -1;
        }
        g->log_format = (int)u;
    }
    g->admin = text_of(s, K_ADMIN);
    if (g->admin != NULL) {
        char host[256];
        uint16_t port;
        if (tern_parse_host_port(g->admin, host, sizeof(host), &port) < 0) {
            return fail(c, s, K_ADMIN, err, len,
                        "cannot parse '%s' (expected HOST:PORT, e.g. 127.0.0.1:9100)", g->admin);
        }
    }
    g->ticket_keys = text_of(s, K_TICKET_KEYS);
    if (g->ticket_keys != NULL && rds_is_url(g->ticket_keys)) {
        struct rds_url url;
        char why[300];
        int bad = rds_url_parse(g->ticket_keys, &url, why, sizeof(why));
        explicit_bzero(&url, sizeof(url));
        if (bad < 0) {
            return fail(c, s, K_TICKET_KEYS, err, len, "%s", why);
        }
    }
    if (conf_uint(c, s, K_PSK_STORE_TTL, 1, 86400u * 7, 300, &v, err, len) < 0) {
        return -1;
    }
    g->store_ttl_s = (uint32_t)v;
    if (conf_uint(c, s, K_PSK_STORE_NEGATIVE_TTL, 1, 3600, 5, &v, err, len) < 0) {
        return -1;
    }
    g->store_negative_ttl_s = (uint32_t)v;
    if (conf_uint(c, s, K_PSK_STORE_STALE, 1, 86400u * 7, 3600, &v, err, len) < 0) {
        return -1;
    }
    g->store_stale_s = (uint32_t)v;
    if (conf_uint(c, s, K_PSK_STORE_CACHE_SIZE, 1, 1u << 26, 1u << 20, &v, err, len) < 0) {
        return -1;
    }
    g->store_cache_size = v;
    g->user = text_of(s, K_USER);
    g->group = text_of(s, K_GROUP);
    if (g->group != NULL && g->user == NULL) {
        return fail(c, s, K_GROUP, err, len, "needs user (the user to drop to)");
    }
    if (g->user != NULL && getpwnam(g->user) == NULL) {
        return fail(c, s, K_USER, err, len, "no user '%s' on this system", g->user);
    }
    if (g->group != NULL && getgrnam(g->group) == NULL) {
        return fail(c, s, K_GROUP, err, len, "no group '%s' on this system", g->group);
    }
    if (conf_bool(c, s, K_REUSEPORT, false, &g->reuseport, err, len) < 0) {
        return -1;
    }
    return conf_bool(c, s, K_ALLOW_ROOT, false, &g->allow_root, err, len);
}

int gw_load_ticket_keys(const struct conf *c, tern_ticket_keys *keys, char *err, size_t len)
{
    const struct conf_val *v = conf_get(&c->global, K_TICKET_KEYS);
    char ferr[512] = "";
    if (v == NULL || rds_is_url(v->text)) {
        return 0; /* a Redis URL: the fleet's keys come through fleet_tickets (main.c) */
    }
    int rc = tern_ticket_keys_load_file(keys, v->text, ferr, sizeof(ferr));
    if (rc < 0) {
        char where[300];
        /* ferr is "FILE:LINE: reason" or "FILE: reason"; never a key */
        snprintf(err, len, "%s: %s", conf_where(c, K_TICKET_KEYS, v, where, sizeof(where)),
                 ferr[0] != '\0' ? ferr : tern_strerror(rc));
        return -1;
    }
    return 0;
}

/* ---- the Redis identity store ---------------------------------------------------------- */

static gw_store_open_fn store_open;
static void *store_open_ctx;

void gw_build_set_store_opener(gw_store_open_fn fn, void *ctx)
{
    store_open = fn;
    store_open_ctx = ctx;
}

/* psk_store: the URL checked here (so -t reports it with its line), the store opened by the
 * program's opener (it keeps one store per URL for the life of the process: a reload keeps
 * its cache warm). */
static int open_store(const struct conf *c, const struct conf_section *s, struct gw_settings *st,
                      char *err, size_t len)
{
    const char *url = text_of(s, K_PSK_STORE);
    struct rds_url u;
    char why[512] = "";

    if (url == NULL) {
        return 0;
    }
    if (!rds_is_url(url)) {
        return fail(c, s, K_PSK_STORE, err, len,
                    "expected a redis:// or rediss:// URL (a file of identities is psk_file)");
    }
    if (rds_url_parse(url, &u, why, sizeof(why)) < 0) {
        return fail(c, s, K_PSK_STORE, err, len, "%s", why);
    }
    explicit_bzero(&u, sizeof(u));
    if (store_open == NULL) {
        return 0;
    }
    if ((st->redis = store_open(url, store_open_ctx, why, sizeof(why))) == NULL) {
        return fail(c, s, K_PSK_STORE, err, len, "%s", why);
    }
    return 0;
}

/* ---- addresses ------------------------------------------------------------------------------- */

struct addr_list {
    char (*addrs)[280];
    size_t n, cap;
    bool port0_ok; /* listen: port 0 picks a free port */
    bool overflow, bad;
    char first_bad[280];
};

static int add_addr(const char *item, size_t n, void *user)
{
    struct addr_list *l = user;
    char host[256];
    char text[280];
    uint16_t port;

    if (n >= sizeof(text)) {
        n = sizeof(text) - 1;
    }
    memcpy(text, item, n);
    text[n] = '\0';
    if (l->n >= l->cap) {
        l->overflow = true;
        return -2;
    }
    if (tern_parse_host_port(text, host, sizeof(host), &port) < 0 || (port == 0 && !l->port0_ok)) {
        l->bad = true;
        snprintf(l->first_bad, sizeof(l->first_bad), "%s", text);
        return -2;
    }
    memcpy(l->addrs[l->n++], text, sizeof(text));
    return 0;
}

int gw_build_listen(const struct conf *c, const struct conf_section *s,
                    char addrs[GW_MAX_LISTEN][280], char *err, size_t len)
{
    struct addr_list l = {.addrs = addrs, .cap = GW_MAX_LISTEN, .port0_ok = true};
    const struct conf_list *vals = &s->keys[K_LISTEN];

    if (vals->n == 0) {
        snprintf(addrs[0], 280, "%s", DEFAULT_LISTEN);
        return 1;
    }
    for (size_t i = 0; i < vals->n; i++) {
        int rc = conf_split(vals->v[i].text, add_addr, &l);
        if (rc < 0) {
            char where[300];
            conf_where(c, K_LISTEN, &vals->v[i], where, sizeof(where));
            if (l.overflow) {
                snprintf(err, len, "%s: more than %d addresses", where, GW_MAX_LISTEN);
            } else if (l.bad) {
                snprintf(err, len,
                         "%s: cannot parse '%s' (expected HOST:PORT, [IPV6]:PORT or "
                         ":PORT)",
                         where, l.first_bad);
            } else {
                snprintf(err, len, "%s: an empty address in '%s'", where,
                         vals->v[i].text);
            }
            return -1;
        }
    }
    return (int)l.n;
}

/* Backends as "HOST:PORT[, HOST:PORT...]", appended to @p set. */
static int parse_backends(const char *text, struct gw_backend_set *set, char *why, size_t wlen)
{
    char (*tmp)[280] = calloc(MAX_BACKENDS, sizeof(*tmp));
    if (tmp == NULL) {
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    struct addr_list l = {.addrs = tmp, .cap = MAX_BACKENDS};
    int rc = conf_split(text, add_addr, &l);
    if (rc < 0) {
        if (l.overflow) {
            snprintf(why, wlen, "more than %d backends", MAX_BACKENDS);
        } else if (l.bad) {
            snprintf(why, wlen,
                     "cannot parse '%s' (expected HOST:PORT or [IPV6]:PORT, port 1..65535)",
                     l.first_bad);
        } else {
            snprintf(why, wlen, "an empty address in '%s'", text);
        }
        free(tmp);
        return -1;
    }
    if (set->n + l.n > MAX_BACKENDS) {
        snprintf(why, wlen, "more than %d backends", MAX_BACKENDS);
        free(tmp);
        return -1;
    }
    struct gw_backend *v = realloc(set->v, (set->n + l.n) * sizeof(*v));
    if (v == NULL) {
        snprintf(why, wlen, "out of memory");
        free(tmp);
        return -1;
    }
    set->v = v;
    for (size_t i = 0; i < l.n; i++) {
        struct gw_backend *b = &v[set->n++];
        memset(b, 0, sizeof(*b));
        snprintf(b->text, sizeof(b->text), "%s", tmp[i]);
        (void)tern_parse_host_port(tmp[i], b->host, sizeof(b->host), &b->port);
    }
    free(tmp);
    return 0;
}

/* "R" or "R/BURST": R handshakes per second (a decimal, > 0), BURST at once (default R,
 * at least 1). */
static int parse_rate(const char *text, struct gw_rate *r, char *why, size_t wlen)
{
    char *end;
    double rate = strtod(text, &end);
    if (end == text || !isfinite(rate) || rate <= 0 || rate > 1e6 ||
        isspace((unsigned char)*text)) {
        snprintf(why, wlen,
                 "'%s': expected RATE or RATE/BURST (RATE > 0 per second, e.g. 2 or 0.5/10)", text);
        return -1;
    }
    double burst = rate < 1 ? 1 : ceil(rate);
    if (*end == '/') {
        uint64_t b;
        if (app_opt_parse_uint(end + 1, 1, 1000000, &b) < 0) {
            snprintf(why, wlen, "'%s': the burst after '/' must be a number in 1..1000000", text);
            return -1;
        }
        burst = (double)b;
    } else if (*end != '\0') {
        snprintf(why, wlen, "'%s': expected RATE or RATE/BURST", text);
        return -1;
    }
    r->rate = rate;
    r->burst = burst;
    return 0;
}

/* "PATTERN -> HOST:PORT[, HOST:PORT...]" */
static int parse_route(const char *text, struct gw_route *r, char *why, size_t wlen)
{
    const char *arrow = strstr(text, "->");
    if (arrow == NULL) {
        snprintf(why, wlen, "'%s': expected 'PATTERN -> HOST:PORT[, HOST:PORT...]'", text);
        return -1;
    }
    const char *p = text, *e = arrow;
    while (p < e && isspace((unsigned char)*p)) {
        p++;
    }
    while (e > p && isspace((unsigned char)e[-1])) {
        e--;
    }
    if (e == p) {
        snprintf(why, wlen, "'%s': the identity pattern before '->' is empty", text);
        return -1;
    }
    if ((size_t)(e - p) > TERN_PSK_MAX_IDENTITY) {
        snprintf(why, wlen, "the pattern is longer than an identity can be (%d bytes)",
                 TERN_PSK_MAX_IDENTITY);
        return -1;
    }
    if ((r->pattern = strndup(p, (size_t)(e - p))) == NULL) {
        snprintf(why, wlen, "out of memory");
        return -1;
    }
    size_t n = strlen(r->pattern);
    /* "plant-a/ + *": a prefix; anything else with wildcards: a glob */
    r->prefix = n > 0 && r->pattern[n - 1] == '*' && strpbrk(r->pattern, "?[\\") == NULL &&
                memchr(r->pattern, '*', n - 1) == NULL;
    r->prefix_len = r->prefix ? n - 1 : 0; /* else fnmatch: exact without wildcards */
    return parse_backends(arrow + 2, &r->backends, why, wlen);
}

/* metrics_identities: each comma-separated item an identity, a prefix or a glob. */
struct id_list {
    struct gw_settings *st;
    bool overflow, too_long;
};

static int add_id_metric(const char *item, size_t n, void *user)
{
    struct id_list *l = user;
    struct gw_settings *st = l->st;
    if (st->n_id_metrics >= GW_MAX_ID_METRICS) {
        l->overflow = true;
        return -2;
    }
    if (n > TERN_PSK_MAX_IDENTITY) {
        l->too_long = true;
        return -2;
    }
    struct gw_id_metric *m = &st->id_metrics[st->n_id_metrics];
    if ((m->pattern = strndup(item, n)) == NULL) {
        return -2;
    }
    st->n_id_metrics++;
    m->prefix = n > 0 && item[n - 1] == '*' && memchr(item, '*', n - 1) == NULL &&
                memchr(item, '?', n) == NULL && memchr(item, '[', n) == NULL &&
                memchr(item, '\\', n) == NULL;
    m->prefix_len = m->prefix ? n - 1 : 0;
    m->slot = UINT32_MAX; /* given by the service when published */
    return 0;
}

static int build_id_metrics(const struct conf *c, const struct conf_section *s,
                            struct gw_settings *st, char *err, size_t len)
{
    const struct conf_list *vals = &s->keys[K_METRICS_IDENTITIES];
    if (vals->n == 0) {
        return 0;
    }
    if ((st->id_metrics = calloc(GW_MAX_ID_METRICS, sizeof(*st->id_metrics))) == NULL) {
        return fail(c, s, K_COUNT, err, len, "out of memory");
    }
    for (size_t i = 0; i < vals->n; i++) {
        struct id_list l = {.st = st};
        if (conf_split(vals->v[i].text, add_id_metric, &l) < 0) {
            char where[300];
            snprintf(err, len, "%s: %s", conf_where(c, K_METRICS_IDENTITIES, &vals->v[i], where,
                                                    sizeof(where)),
                     l.overflow   ? "more than 64 identities (metrics stay bounded)"
                     : l.too_long ? "an identity longer than 128 bytes"
                                  : "an empty item (or out of memory)");
            return -1;
        }
    }
    return 0;
}

/* ---- settings ------------------------------------------------------------------------------ */

static int check_pairs(const struct conf *c, const struct conf_section *s, char *err, size_t len)
{
    if (conf_get(s, K_CERT) != NULL && conf_get(s, K_KEY) == NULL) {
        return fail(c, s, K_CERT, err, len, "needs key (its private key)");
    }
    if (conf_get(s, K_KEY) != NULL && conf_get(s, K_CERT) == NULL) {
        return fail(c, s, K_KEY, err, len, "needs cert (the certificate it belongs to)");
    }
    if (conf_get(s, K_KEY_PASS_FILE) != NULL && conf_get(s, K_KEY) == NULL) {
        return fail(c, s, K_KEY_PASS_FILE, err, len, "needs key (the key it decrypts)");
    }
    if (conf_get(s, K_CHAIN) != NULL && conf_get(s, K_CERT) == NULL) {
        return fail(c, s, K_CHAIN, err, len, "needs cert (the certificate it follows)");
    }
    if (conf_get(s, K_PSK_FILE) == NULL && conf_get(s, K_PSK_STORE) == NULL &&
        conf_get(s, K_CERT) == NULL) {
        return fail(c, s, K_PSK_FILE, err, len,
                    "the service needs psk_file or psk_store (the devices' identities) or cert "
                    "and key");
    }
    if (conf_get(s, K_PSK_FILE) != NULL && conf_get(s, K_PSK_STORE) != NULL) {
        return fail(c, s, K_PSK_STORE, err, len,
                    "psk_store and psk_file exclude each other (one store of identities)");
    }
    if (s->keys[K_BACKEND].n == 0) {
        return fail(c, s, K_BACKEND, err, len,
                    "the service needs backend (HOST:PORT to forward connections to)");
    }
    if ((conf_get(s, K_BACKEND_CERT) != NULL) != (conf_get(s, K_BACKEND_KEY) != NULL)) {
        return fail(c, s, conf_get(s, K_BACKEND_CERT) != NULL ? K_BACKEND_CERT : K_BACKEND_KEY,
                    err, len, "backend_cert and backend_key go together");
    }
    return 0;
}

/* Certificate, chain, then key (decrypted with the passphrase file) into @p cfg, by the
 * programs' shared loader (apps/common/tls_opts.c); its complaint, made against an option
 * ("--key"), is told against the key of this section that gave that file. */
static int load_credentials(const struct conf *c, const struct conf_section *s,
                            tern_ssl_config *cfg, enum conf_key kcert, enum conf_key kkey,
                            enum conf_key kpass, enum conf_key kchain, char *err, size_t len)
{
    struct app_tls_opts o;
    struct app_tls_error e;

    app_tls_opts_init(&o);
    o.cert = text_of(s, kcert);
    o.key = text_of(s, kkey);
    o.key_pass_file = kpass < K_COUNT ? text_of(s, kpass) : NULL;
    o.chain = kchain < K_COUNT ? text_of(s, kchain) : NULL;
    if (app_tls_try_credentials(cfg, &o, &e) == 0) {
        return 0;
    }
    enum conf_key k = kcert;
    if (e.opt != NULL && strcmp(e.opt, "--key") == 0) {
        k = kkey;
    } else if (e.opt != NULL && strcmp(e.opt, "--key-pass-file") == 0 && kpass < K_COUNT) {
        k = kpass;
    } else if (e.opt != NULL && strcmp(e.opt, "--chain") == 0 && kchain < K_COUNT) {
        k = kchain;
    }
    if (k == kkey && strstr(e.why, "is encrypted") != NULL) {
        return fail(c, s, k, err, len, "%s: the key is encrypted: give its passphrase file%s",
                    o.key, kpass < K_COUNT ? " (key_pass_file)" : "");
    }
    if (e.arg != NULL && e.arg[0] != '\0') {
        return fail(c, s, k, err, len, "%s: %s", e.arg, e.why);
    }
    return fail(c, s, k, err, len, "%s", e.why);
}

static int build_device_tls(const struct conf *c, const struct conf_section *s,
                            struct gw_settings *st, unsigned auth_workers,
                            tern_ticket_keys *tickets, char *err, size_t len)
{
    static const char *const versions[] = {"1.2", "1.3", NULL};
    static const enum tern_ssl_protocol protocols[] = {TERN_SSL_PROTOCOL_TLS1_2,
                                                       TERN_SSL_PROTOCOL_TLS1_3};
    unsigned v, vmax;
    int rc;

    if (conf_choice(c, s, K_TLS_MIN, versions, 0, &v, err, len) < 0 ||
        conf_choice(c, s, K_TLS_MAX, versions, 1, &vmax, err, len) < 0) {
        return -1;
    }
    if (vmax < v) {
        return fail(c, s, K_TLS_MAX, err, len, "below tls_min");
    }
    if ((st->ssl = tern_ssl_config_new()) == NULL) {
        return fail(c, s, K_COUNT, err, len, "out of memory");
    }
    tern_ssl_config *cfg = st->ssl;
    if ((rc = tern_ssl_config_set_protocol_range(cfg, protocols[v], protocols[vmax])) < 0) {
        return fail_cfg(c, s, K_TLS_MIN, cfg, rc, err, len);
    }
    /* the certificate first: enable_psk adds the certificate suites only when there is one */
    if (load_credentials(c, s, cfg, K_CERT, K_KEY, K_KEY_PASS_FILE, K_CHAIN, err, len) < 0) {
        return -1;
    }
    st->has_cert = conf_get(s, K_CERT) != NULL;
    const char *hint = text_of(s, K_PSK_HINT);
    bool psk = conf_get(s, K_PSK_FILE) != NULL || conf_get(s, K_PSK_STORE) != NULL;
    if (hint != NULL && !psk) {
        return fail(c, s, K_PSK_HINT, err, len, "needs psk_file or psk_store");
    }
    if (psk && (rc = tern_ssl_config_enable_psk(cfg, hint)) < 0) {
        return fail_cfg(c, s, hint != NULL ? K_PSK_HINT : K_PSK_FILE, cfg, rc, err, len);
    }
    const char *ciphers = text_of(s, K_CIPHERS);
    if (ciphers != NULL && (rc = tern_ssl_config_set_ciphers(cfg, ciphers)) < 0) {
        return fail_cfg(c, s, K_CIPHERS, cfg, rc, err, len);
    }
    const char *groups = text_of(s, K_GROUPS);
    if (groups != NULL && (rc = tern_ssl_config_set_groups(cfg, groups)) < 0) {
        return fail_cfg(c, s, K_GROUPS, cfg, rc, err, len);
    }
    if (st->store != NULL && auth_workers > 0 &&
        (rc = tern_ssl_config_set_psk_lookup(cfg, tern_psk_store_lookup_fn, st->store)) < 0) {
        return fail_cfg(c, s, K_PSK_FILE, cfg, rc, err, len);
    }
    st->store_on_workers = st->store != NULL && auth_workers > 0;
    if (tickets != NULL && (rc = tern_ssl_config_set_ticket_keys(cfg, tickets)) < 0) {
        return fail_cfg(c, s, K_COUNT, cfg, rc, err, len);
    }
    if ((rc = tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE)) < 0 ||
        (rc = tern_ssl_config_set_handshake_timeout(cfg, st->handshake_timeout_ms)) < 0) {
        return fail_cfg(c, s, K_HANDSHAKE_TIMEOUT, cfg, rc, err, len);
    }
    return 0;
}

static int build_backend_tls(const struct conf *c, const struct conf_section *s,
                             struct gw_settings *st, char *err, size_t len)
{
    bool on;
    int rc;

    if (conf_bool(c, s, K_BACKEND_TLS, false, &on, err, len) < 0) {
        return -1;
    }
    static const enum conf_key tls_only[] = {K_BACKEND_CA, K_BACKEND_VERIFY_NAME, K_BACKEND_CERT,
                                             K_BACKEND_KEY};
    if (!on) {
        for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
            if (conf_get(s, tls_only[i]) != NULL) {
                return fail(c, s, tls_only[i], err, len, "needs backend_tls = yes");
            }
        }
        return 0;
    }
    const char *ca = text_of(s, K_BACKEND_CA);
    if (ca == NULL) {
        return fail(c, s, K_BACKEND_TLS, err, len,
                    "needs backend_ca (the CA file the backend's certificate must chain to)");
    }
    if ((st->backend_ssl = tern_ssl_config_new()) == NULL) {
        return fail(c, s, K_COUNT, err, len, "out of memory");
    }
    tern_ssl_config *cfg = st->backend_ssl;
    if ((rc = tern_ssl_config_add_ca_certificates_file(cfg, ca, TERN_ENCODING_PEM)) < 0) {
        return fail_cfg(c, s, K_BACKEND_CA, cfg, rc, err, len);
    }
    if ((rc = tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_VERIFY_PEER)) < 0) {
        return fail_cfg(c, s, K_BACKEND_TLS, cfg, rc, err, len);
    }
    if (load_credentials(c, s, cfg, K_BACKEND_CERT, K_BACKEND_KEY, K_COUNT, K_COUNT, err, len) <
        0) {
        return -1;
    }
    const char *name = text_of(s, K_BACKEND_VERIFY_NAME);
    if (name != NULL && (st->backend_verify_name = strdup(name)) == NULL) {
        return fail(c, s, K_COUNT, err, len, "out of memory");
    }
    return 0;
}

int gw_build_settings(const struct conf *c, const struct conf_section *s, unsigned auth_workers,
                      tern_ticket_keys *tickets, struct gw_settings **out, char *err, size_t len,
                      char *warn, size_t warn_len)
{
    static const char *const balances[] = {"failover", "round-robin", NULL};
    static const char *const proxy_out[] = {"off", "v2", NULL};
    static const char *const proxy_in[] = {"off", "v1", "v2", NULL};
    struct gw_settings *st = calloc(1, sizeof(*st));
    char why[600];
    uint64_t v;
    unsigned u;

    *out = NULL;
    if (warn_len > 0) {
        warn[0] = '\0';
    }
    if (st == NULL || (st->name = strdup(s->name)) == NULL) {
        free(st);
        return fail(c, s, K_COUNT, err, len, "out of memory");
    }
    atomic_init(&st->refs, 1);
    st->buffer_size = BUFFER_SIZE;
    if (check_pairs(c, s, err, len) < 0) {
        goto fail;
    }
    if (conf_uint(c, s, K_HANDSHAKE_TIMEOUT, 0, 3600, DEFAULT_HANDSHAKE_TIMEOUT_S, &v, err, len) <
        0) {
        goto fail;
    }
    st->handshake_timeout_ms = (uint32_t)v * 1000u;
    if (conf_uint(c, s, K_IDLE_TIMEOUT, 0, 7 * 86400, 0, &v, err, len) < 0) {
        goto fail;
    }
    st->idle_timeout_ms = (uint32_t)v * 1000u;
    if (conf_seconds_ms(c, s, K_HIBERNATE_AFTER, 86400u * 1000, 0, &v, err, len) < 0) {
        goto fail;
    }
    st->hibernate_after_ms = (uint32_t)v;
    if (conf_uint(c, s, K_MAX_CONN_PER_IDENTITY, 0, 100000000, 0, &v, err, len) < 0) {
        goto fail;
    }
    st->max_conn_per_identity = (unsigned)v;
    if (conf_bool(c, s, K_CLOSE_REMOVED, false, &st->close_removed, err, len) < 0) {
        goto fail;
    }
    if (conf_uint(c, s, K_BACKEND_CONNECT_TIMEOUT, 1, 3600, DEFAULT_BACKEND_CONNECT_TIMEOUT_S, &v,
                  err, len) < 0) {
        goto fail;
    }
    st->backend_connect_timeout_ms = (uint32_t)v * 1000u;
    if (conf_choice(c, s, K_BACKEND_BALANCE, balances, 0, &u, err, len) < 0) {
        goto fail;
    }
    st->balance = (enum gw_balance)u;
    if (conf_choice(c, s, K_PROXY_PROTOCOL, proxy_out, 0, &u, err, len) < 0) {
        goto fail;
    }
    st->proxy_v2 = u == 1;
    if (conf_choice(c, s, K_PROXY_PROTOCOL_IN, proxy_in, 0, &u, err, len) < 0) {
        goto fail;
    }
    st->proxy_in = (enum gw_proxy_in)u;
    static const enum conf_key rates[] = {K_RATE_PER_IDENTITY, K_RATE_PER_SOURCE};
    for (size_t i = 0; i < 2; i++) {
        const char *t = text_of(s, rates[i]);
        struct gw_rate *r = i == 0 ? &st->rate_identity : &st->rate_source;
        if (t != NULL && strcmp(t, "off") != 0 && parse_rate(t, r, why, sizeof(why)) < 0) {
            fail(c, s, rates[i], err, len, "%s", why);
            goto fail;
        }
    }
    for (size_t i = 0; i < s->keys[K_BACKEND].n; i++) {
        if (parse_backends(s->keys[K_BACKEND].v[i].text, &st->backends, why, sizeof(why)) < 0) {
            char where[300];
            snprintf(err, len, "%s: %s",
                     conf_where(c, K_BACKEND, &s->keys[K_BACKEND].v[i], where, sizeof(where)), why);
            goto fail;
        }
    }
    const struct conf_list *routes = &s->keys[K_ROUTE];
    if (routes->n > MAX_ROUTES) {
        fail(c, s, K_ROUTE, err, len, "more than %d routes", MAX_ROUTES);
        goto fail;
    }
    if (routes->n > 0 && (st->routes = calloc(routes->n, sizeof(*st->routes))) == NULL) {
        fail(c, s, K_COUNT, err, len, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < routes->n; i++) {
        st->n_routes++;
        st->routes[i].line = routes->v[i].line;
        if (parse_route(routes->v[i].text, &st->routes[i], why, sizeof(why)) < 0) {
            char where[300];
            snprintf(err, len, "%s: %s",
                     conf_where(c, K_ROUTE, &routes->v[i], where, sizeof(where)), why);
            goto fail;
        }
    }
    const char *psk_file = text_of(s, K_PSK_FILE);
    if (psk_file != NULL) {
        char ferr[512] = "";
        if ((st->store = tern_psk_store_new()) == NULL) {
            fail(c, s, K_COUNT, err, len, "out of memory");
            goto fail;
        }
        int rc = tern_psk_store_load_file(st->store, psk_file, ferr, sizeof(ferr));
        if (rc < 0) {
            /* ferr is "FILE:LINE: reason" or "FILE: reason" */
            fail(c, s, K_PSK_FILE, err, len, "%s", ferr[0] != '\0' ? ferr : tern_strerror(rc));
            goto fail;
        }
        if (ferr[0] != '\0') {
            snprintf(warn, warn_len, "%s", ferr);
        }
    }
    if (open_store(c, s, st, err, len) < 0 || build_id_metrics(c, s, st, err, len) < 0 ||
        build_device_tls(c, s, st, auth_workers, tickets, err, len) < 0 ||
        build_backend_tls(c, s, st, err, len) < 0) {
        goto fail;
    }
    *out = st;
    return 0;

fail:
    gw_settings_release(st);
    return -1;
}

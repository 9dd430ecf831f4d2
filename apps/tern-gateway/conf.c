/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's configuration file (see conf.h). libinih does the INI syntax; this file feeds
 * it line by line (so every key and every section is known with its line), keeps the values
 * as text, and refuses unknown keys, keys of the wrong scope, duplicate keys and duplicate
 * sections, each with its line.
 */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ini.h"
#include "common/opts.h"

#define CONF_MAX_SERVICES 64

static const struct {
    const char *name;
    enum conf_scope scope;
    bool repeatable;
} keys[K_COUNT] = {
    [K_THREADS] = {"threads", CONF_GLOBAL, false},
    [K_LOG_LEVEL] = {"log_level", CONF_GLOBAL, false},
    [K_LOG_FORMAT] = {"log_format", CONF_GLOBAL, false},
    [K_ADMIN] = {"admin", CONF_GLOBAL, false},
    [K_USER] = {"user", CONF_GLOBAL, false},
    [K_GROUP] = {"group", CONF_GLOBAL, false},
    [K_ALLOW_ROOT] = {"allow_root", CONF_GLOBAL, false},
    [K_REUSEPORT] = {"reuseport", CONF_GLOBAL, false},
    [K_DRAIN] = {"drain", CONF_GLOBAL, false},
    [K_AUTH_WORKERS] = {"auth_workers", CONF_GLOBAL, false},
    [K_WATCH] = {"watch", CONF_GLOBAL, false},
    [K_TICKET_KEYS] = {"ticket_keys", CONF_GLOBAL, false},
    [K_PSK_STORE_TTL] = {"psk_store_ttl", CONF_GLOBAL, false},
    [K_PSK_STORE_NEGATIVE_TTL] = {"psk_store_negative_ttl", CONF_GLOBAL, false},
    [K_PSK_STORE_STALE] = {"psk_store_stale", CONF_GLOBAL, false},
    [K_PSK_STORE_CACHE_SIZE] = {"psk_store_cache_size", CONF_GLOBAL, false},
    [K_LISTEN] = {"listen", CONF_SERVICE, true},
    [K_PSK_FILE] = {"psk_file", CONF_SERVICE, false},
    [K_PSK_STORE] = {"psk_store", CONF_SERVICE, false},
    [K_PSK_HINT] = {"psk_hint", CONF_SERVICE, false},
    [K_CERT] = {"cert", CONF_SERVICE, false},
    [K_KEY] = {"key", CONF_SERVICE, false},
    [K_KEY_PASS_FILE] = {"key_pass_file", CONF_SERVICE, false},
    [K_CHAIN] = {"chain", CONF_SERVICE, false},
    [K_TLS_MIN] = {"tls_min", CONF_SERVICE, false},
    [K_TLS_MAX] = {"tls_max", CONF_SERVICE, false},
    [K_CIPHERS] = {"ciphers", CONF_SERVICE, false},
    [K_GROUPS] = {"groups", CONF_SERVICE, false},
    [K_HANDSHAKE_TIMEOUT] = {"handshake_timeout", CONF_SERVICE, false},
    [K_IDLE_TIMEOUT] = {"idle_timeout", CONF_SERVICE, false},
    [K_HIBERNATE_AFTER] = {"hibernate_after", CONF_SERVICE, false},
    [K_MAX_CONN_PER_IDENTITY] = {"max_conn_per_identity", CONF_SERVICE, false},
    [K_CLOSE_REMOVED] = {"close_removed", CONF_SERVICE, false},
    [K_BACKEND] = {"backend", CONF_SERVICE, true},
    [K_BACKEND_BALANCE] = {"backend_balance", CONF_SERVICE, false},
    [K_BACKEND_CONNECT_TIMEOUT] = {"backend_connect_timeout", CONF_SERVICE, false},
    [K_BACKEND_TLS] = {"backend_tls", CONF_SERVICE, false},
    [K_BACKEND_CA] = {"backend_ca", CONF_SERVICE, false},
    [K_BACKEND_VERIFY_NAME] = {"backend_verify_name", CONF_SERVICE, false},
    [K_BACKEND_CERT] = {"backend_cert", CONF_SERVICE, false},
    [K_BACKEND_KEY] = {"backend_key", CONF_SERVICE, false},
    [K_ROUTE] = {"route", CONF_SERVICE, true},
    [K_PROXY_PROTOCOL] = {"proxy_protocol", CONF_SERVICE, false},
    [K_PROXY_PROTOCOL_IN] = {"proxy_protocol_in", CONF_SERVICE, false},
    [K_RATE_PER_IDENTITY] = {"rate_per_identity", CONF_SERVICE, false},
    [K_RATE_PER_SOURCE] = {"rate_per_source", CONF_SERVICE, false},
    [K_METRICS_IDENTITIES] = {"metrics_identities", CONF_SERVICE, true},
};

const char *conf_key_name(enum conf_key k)
{
    return k < K_COUNT ? keys[k].name : "?";
}

bool conf_key_repeatable(enum conf_key k)
{
    return k < K_COUNT && keys[k].repeatable;
}

enum conf_scope conf_key_scope(enum conf_key k)
{
    return k < K_FIRST_SERVICE_KEY ? CONF_GLOBAL : CONF_SERVICE;
}

int conf_key_find(const char *name)
{
    for (int k = 0; k < K_COUNT; k++) {
        const char *a = keys[k].name, *b = name;
        while (*a != '\0' && (*a == *b || (*a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return k;
        }
    }
    return -1;
}

/* ---- values -------------------------------------------------------------------------------- */

static int list_add(struct conf_list *l, const char *text, unsigned line)
{
    struct conf_val *v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL) {
        return -1;
    }
    l->v = v;
    if ((v[l->n].text = strdup(text)) == NULL) {
        return -1;
    }
    v[l->n].line = line;
    l->n++;
    return 0;
}

static void list_free(struct conf_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].text);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void conf_section_free(struct conf_section *s)
{
    for (int k = 0; k < K_COUNT; k++) {
        list_free(&s->keys[k]);
    }
}

int conf_section_copy(struct conf_section *to, const struct conf_section *from)
{
    memset(to, 0, sizeof(*to));
    memcpy(to->name, from->name, sizeof(to->name));
    to->line = from->line;
    for (int k = 0; k < K_COUNT; k++) {
        for (size_t i = 0; i < from->keys[k].n; i++) {
            if (list_add(&to->keys[k], from->keys[k].v[i].text, from->keys[k].v[i].line) < 0) {
                conf_section_free(to);
                return -1;
            }
        }
    }
    return 0;
}

void conf_free(struct conf *c)
{
    conf_section_free(&c->global);
    for (size_t i = 0; i < c->n_svc; i++) {
        conf_section_free(&c->svc[i]);
    }
    free(c->svc);
    free(c->file);
    memset(c, 0, sizeof(*c));
}

int conf_set_cli(struct conf_section *s, enum conf_key k, const char *text, bool *first_use)
{
    if (!keys[k].repeatable || first_use == NULL || *first_use) {
        list_free(&s->keys[k]);
        if (first_use != NULL) {
            *first_use = false;
        }
    }
    return list_add(&s->keys[k], text, 0);
}

const struct conf_val *conf_get(const struct conf_section *s, enum conf_key k)
{
    return s->keys[k].n > 0 ? &s->keys[k].v[s->keys[k].n - 1] : NULL;
}

const char *conf_where(const struct conf *c, enum conf_key k, const struct conf_val *v, char *buf,
                       size_t len)
{
    if (v == NULL || v->line == 0 || c->file == NULL) {
        char opt[64];
        snprintf(opt, sizeof(opt), "%s", keys[k].name);
        for (char *p = opt; *p != '\0'; p++) {
            *p = *p == '_' ? '-' : *p;
        }
        snprintf(buf, len, "--%s", opt);
    } else {
        snprintf(buf, len, "%s:%u: %s", c->file, v->line, keys[k].name);
    }
    return buf;
}

/* ---- reading the file (common/ini.h) --------------------------------------------------------- */

struct reader {
    struct conf *out;
    struct conf_section *cur; /* the section of the line being read (NULL: refused) */
};

static bool valid_section_name(const char *s, size_t n)
{
    if (n == 0 || n >= sizeof(((struct conf_section *)0)->name)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') {
            return false;
        }
    }
    return true;
}

static void on_section(struct app_ini *ini, const char *name, size_t n, void *user)
{
    struct reader *r = user;

    r->cur = NULL;
    if (!valid_section_name(name, n)) {
        app_ini_error(ini, ini->line,
                      "bad service name '%.*s' (1..63 of letters, digits, '-', '_', '.')",
                      (int)(n > 80 ? 80 : n), name);
        return;
    }
    for (size_t i = 0; i < r->out->n_svc; i++) {
        if (strcmp(r->out->svc[i].name, name) == 0) {
            app_ini_error(ini, ini->line, "duplicate section [%s] (first at line %u)", name,
                          r->out->svc[i].line);
            return;
        }
    }
    if (r->out->n_svc >= CONF_MAX_SERVICES) {
        app_ini_error(ini, ini->line, "too many services (at most %d)", CONF_MAX_SERVICES);
        return;
    }
    struct conf_section *v = realloc(r->out->svc, (r->out->n_svc + 1) * sizeof(*v));
    if (v == NULL) {
        app_ini_error(ini, ini->line, "out of memory");
        return;
    }
    r->out->svc = v;
    r->cur = &v[r->out->n_svc++];
    memset(r->cur, 0, sizeof(*r->cur));
    memcpy(r->cur->name, name, n);
    r->cur->line = ini->line;
}

static void on_value(struct app_ini *ini, bool in_section, const char *name, const char *value,
                     void *user)
{
    struct reader *r = user;
    int k = conf_key_find(name);

    if (k < 0) {
        app_ini_error(ini, ini->line, "unknown key '%s'", name);
        return;
    }
    struct conf_section *s;
    if (!in_section) {
        s = &r->out->global;
        if (keys[k].scope != CONF_GLOBAL) {
            app_ini_error(ini, ini->line, "'%s' belongs in a [service] section", keys[k].name);
            return;
        }
    } else {
        if (r->cur == NULL) {
            return; /* the section header was refused: its keys are not checked */
        }
        s = r->cur;
        if (keys[k].scope != CONF_SERVICE) {
            app_ini_error(ini, ini->line, "'%s' is a global key: put it before the first section",
                          keys[k].name);
            return;
        }
    }
    struct conf_list *l = &s->keys[k];
    if (l->n > 0 && !keys[k].repeatable) {
        app_ini_error(ini, ini->line, "duplicate key '%s' (first at line %u)", keys[k].name,
                      l->v[0].line);
        return;
    }
    if (value[0] == '\0') {
        app_ini_error(ini, ini->line, "'%s' has no value", keys[k].name);
        return;
    }
    if (list_add(l, value, ini->line) < 0) {
        app_ini_error(ini, ini->line, "out of memory");
    }
}

int conf_load(struct conf *c, const char *path, char *err, size_t len)
{
    static const struct app_ini_callbacks cb = {.section = on_section, .value = on_value};
    struct reader r = {.out = c};

    memset(c, 0, sizeof(*c));
    if ((c->file = strdup(path)) == NULL) {
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    if (app_ini_read(path, &cb, &r, err, len) < 0) {
        return -1;
    }
    if (c->n_svc == 0) {
        snprintf(err, len, "%s: no service: add a [name] section with listen, backend and "
                           "psk_file (or cert and key)", path);
        return -1;
    }
    return 0;
}

/* ---- typed readers ----------------------------------------------------------------------- */

static int bad(const struct conf *c, enum conf_key k, const struct conf_val *v, char *err,
               size_t len, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int bad(const struct conf *c, enum conf_key k, const struct conf_val *v, char *err,
               size_t len, const char *fmt, ...)
{
    char where[300], msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, len, "%s: %s", conf_where(c, k, v, where, sizeof(where)), msg);
    return -1;
}

int conf_uint(const struct conf *c, const struct conf_section *s, enum conf_key k, uint64_t min,
              uint64_t max, uint64_t def, uint64_t *out, char *err, size_t len)
{
    const struct conf_val *v = conf_get(s, k);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    int rc = app_opt_parse_uint(v->text, min, max, out);
    if (rc < 0) {
        return bad(c, k, v, err, len, "'%s' is not a number in %llu..%llu", v->text,
                   (unsigned long long)min, (unsigned long long)max);
    }
    return 0;
}

int conf_seconds_ms(const struct conf *c, const struct conf_section *s, enum conf_key k,
                    uint64_t max_ms, uint64_t def_ms, uint64_t *out, char *err, size_t len)
{
    const struct conf_val *v = conf_get(s, k);
    if (v == NULL) {
        *out = def_ms;
        return 0;
    }
    if (app_opt_parse_seconds_ms(v->text, max_ms, out) < 0) {
        return bad(c, k, v, err, len,
                   "'%s' is not a duration in 0..%llu seconds (e.g. 5 or 0.2, at most 3 decimals)",
                   v->text, (unsigned long long)(max_ms / 1000));
    }
    return 0;
}

int conf_bool(const struct conf *c, const struct conf_section *s, enum conf_key k, bool def,
              bool *out, char *err, size_t len)
{
    static const char *const yes[] = {"yes", "on", "true", "1", NULL};
    static const char *const no[] = {"no", "off", "false", "0", NULL};
    const struct conf_val *v = conf_get(s, k);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcasecmp(v->text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(v->text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return bad(c, k, v, err, len, "'%s' is not yes/no, on/off, true/false or 1/0", v->text);
}

int conf_choice(const struct conf *c, const struct conf_section *s, enum conf_key k,
                const char *const *names, unsigned def, unsigned *out, char *err, size_t len)
{
    const struct conf_val *v = conf_get(s, k);
    if (v == NULL) {
        *out = def;
        return 0;
    }
    char list[256] = "";
    for (unsigned i = 0; names[i] != NULL; i++) {
        if (strcmp(v->text, names[i]) == 0) {
            *out = i;
            return 0;
        }
        size_t used = strlen(list);
        snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", names[i]);
    }
    return bad(c, k, v, err, len, "'%s' is not one of: %s", v->text, list);
}

int conf_split(const char *text, int (*fn)(const char *item, size_t len, void *user), void *user)
{
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *q = p;
        while (n > 0 && isspace((unsigned char)*q)) {
            q++;
            n--;
        }
        while (n > 0 && isspace((unsigned char)q[n - 1])) {
            n--;
        }
        if (n == 0) {
            return -1;
        }
        int rc = fn(q, n, user);
        if (rc < 0) {
            return rc;
        }
        if (end == NULL) {
            return 0;
        }
        p = end + 1;
    }
}

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
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"

#define CONF_MAX_LINE 4096
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
    [K_DRAIN] = {"drain", CONF_GLOBAL, false},
    [K_AUTH_WORKERS] = {"auth_workers", CONF_GLOBAL, false},
    [K_WATCH] = {"watch", CONF_GLOBAL, false},
    [K_TICKET_KEYS] = {"ticket_keys", CONF_GLOBAL, false},
    [K_LISTEN] = {"listen", CONF_SERVICE, true},
    [K_PSK_FILE] = {"psk_file", CONF_SERVICE, false},
    [K_PSK_HINT] = {"psk_hint", CONF_SERVICE, false},
    [K_CERT] = {"cert", CONF_SERVICE, false},
    [K_KEY] = {"key", CONF_SERVICE, false},
    [K_KEY_PASS_FILE] = {"key_pass_file", CONF_SERVICE, false},
    [K_CHAIN] = {"chain", CONF_SERVICE, false},
    [K_TLS_MIN] = {"tls_min", CONF_SERVICE, false},
    [K_CIPHERS] = {"ciphers", CONF_SERVICE, false},
    [K_GROUPS] = {"groups", CONF_SERVICE, false},
    [K_HANDSHAKE_TIMEOUT] = {"handshake_timeout", CONF_SERVICE, false},
    [K_IDLE_TIMEOUT] = {"idle_timeout", CONF_SERVICE, false},
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

/* ---- reading the file -------------------------------------------------------------------------- */

struct reader {
    FILE *f;
    unsigned line;    /* the line inih is working on */
    struct conf *out;
    struct conf_section *cur; /* the section of the line being read (NULL: refused) */
    bool in_section;  /* a [section] header was seen (cur may still be NULL) */
    char buf[CONF_MAX_LINE + 2];
    char *err;
    size_t err_len, err_used;
    unsigned errors;
    unsigned last_error_line;
};

static void add_error(struct reader *r, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_error(struct reader *r, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    r->errors++;
    r->last_error_line = line;
    if (r->err_used + 1 < r->err_len) {
        int n = snprintf(r->err + r->err_used, r->err_len - r->err_used, "%s%s:%u: %s",
                         r->err_used > 0 ? "\n" : "", r->out->file, line, msg);
        if (n > 0) {
            r->err_used += (size_t)n < r->err_len - r->err_used ? (size_t)n
                                                                 : r->err_len - r->err_used - 1;
        }
    }
}

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

/* A section header, seen by the reader before inih: so that an empty section and a
 * duplicate one are known, with their lines. */
static void on_section(struct reader *r, const char *line)
{
    const char *end = strchr(line, ']');
    if (end == NULL) {
        return; /* inih reports the syntax error */
    }
    const char *name = line + 1;
    size_t n = (size_t)(end - name);
    while (n > 0 && isspace((unsigned char)*name)) {
        name++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)name[n - 1])) {
        n--;
    }
    r->cur = NULL;
    r->in_section = true;
    if (!valid_section_name(name, n)) {
        add_error(r, r->line, "bad service name '%.*s' (1..63 of letters, digits, '-', '_', '.')",
                  (int)(n > 80 ? 80 : n), name);
        return;
    }
    for (size_t i = 0; i < r->out->n_svc; i++) {
        if (strlen(r->out->svc[i].name) == n && memcmp(r->out->svc[i].name, name, n) == 0) {
            add_error(r, r->line, "duplicate section [%.*s] (first at line %u)", (int)n, name,
                      r->out->svc[i].line);
            return;
        }
    }
    if (r->out->n_svc >= CONF_MAX_SERVICES) {
        add_error(r, r->line, "too many services (at most %d)", CONF_MAX_SERVICES);
        return;
    }
    struct conf_section *v = realloc(r->out->svc, (r->out->n_svc + 1) * sizeof(*v));
    if (v == NULL) {
        add_error(r, r->line, "out of memory");
        return;
    }
    r->out->svc = v;
    r->cur = &v[r->out->n_svc++];
    memset(r->cur, 0, sizeof(*r->cur));
    memcpy(r->cur->name, name, n);
    r->cur->line = r->line;
}

static int on_value(void *user, const char *section, const char *name, const char *value);

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n')) {
        p[--n] = '\0';
    }
    return p;
}

/* A "key = value" line longer than inih's line buffer (Debian's is built with 200 bytes):
 * read here, with inih's rules (the first '=' or ':' splits, ';' after a space starts a
 * comment), so a long cipher list or route is not refused. */
static void long_value(struct reader *r, char *line)
{
    char *p = trim(line);
    if (*p == '\0' || *p == ';' || *p == '#') {
        return;
    }
    char *eq = strpbrk(p, "=:");
    if (*p == '[' || eq == NULL) {
        add_error(r, r->line, "syntax error: expected 'key = value' or '[service]'");
        return;
    }
    *eq = '\0';
    char *value = eq + 1;
    for (char *q = value; *q != '\0'; q++) {
        if (*q == ';' && q > value && (q[-1] == ' ' || q[-1] == '\t')) {
            *q = '\0';
            break;
        }
    }
    (void)on_value(r, r->in_section ? "-" : "", trim(p), trim(value));
}

/* inih's reader: one line per call, counted; a line over CONF_MAX_LINE is refused here (inih
 * would cut it silently), one over inih's buffer read by long_value; both are replaced by a
 * comment for inih. */
static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;

    if (num < 3 || fgets(r->buf, sizeof(r->buf), r->f) == NULL) {
        return NULL;
    }
    r->line++;
    size_t n = strlen(r->buf);
    if (n > 0 && r->buf[n - 1] != '\n' && !feof(r->f)) {
        add_error(r, r->line, "line longer than %d bytes", CONF_MAX_LINE);
        int ch;
        while ((ch = fgetc(r->f)) != EOF && ch != '\n') {
        }
        snprintf(str, (size_t)num, "#\n");
        return str;
    }
    const char *p = r->buf;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '[') {
        on_section(r, p);
    } else if (n >= (size_t)num - 1) {
        long_value(r, r->buf);
        snprintf(str, (size_t)num, "#\n");
        return str;
    }
    snprintf(str, (size_t)num, "%s", r->buf);
    return str;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    int k = conf_key_find(name);

    (void)section; /* the reader tracks the section, with its line */
    if (k < 0) {
        add_error(r, r->line, "unknown key '%s'", name);
        return 1;
    }
    struct conf_section *s;
    if (section[0] == '\0') {
        s = &r->out->global;
        if (keys[k].scope != CONF_GLOBAL) {
            add_error(r, r->line, "'%s' belongs in a [service] section", keys[k].name);
            return 1;
        }
    } else {
        if (r->cur == NULL) {
            return 1; /* the section header was refused: its keys are not checked */
        }
        s = r->cur;
        if (keys[k].scope != CONF_SERVICE) {
            add_error(r, r->line, "'%s' is a global key: put it before the first section",
                      keys[k].name);
            return 1;
        }
    }
    struct conf_list *l = &s->keys[k];
    if (l->n > 0 && !keys[k].repeatable) {
        add_error(r, r->line, "duplicate key '%s' (first at line %u)", keys[k].name, l->v[0].line);
        return 1;
    }
    if (value[0] == '\0') {
        add_error(r, r->line, "'%s' has no value", keys[k].name);
        return 1;
    }
    if (list_add(l, value, r->line) < 0) {
        add_error(r, r->line, "out of memory");
    }
    return 1;
}

int conf_load(struct conf *c, const char *path, char *err, size_t len)
{
    memset(c, 0, sizeof(*c));
    if (len > 0) {
        err[0] = '\0';
    }
    if ((c->file = strdup(path)) == NULL) {
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, len, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* Debian's libinih has its options as variables: one value per line, no continuation
     * lines (a line starting with spaces is not part of the previous value), ';' comments
     * only at the start of a line or after a space. */
    ini_allow_multiline = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    /* (its line buffer size is fixed when the library is built: long lines are read by
     * read_line itself) */

    struct reader r = {.f = f, .out = c, .err = err, .err_len = len};
    int rc = ini_parse_stream(read_line, &r, on_value, &r);
    bool read_error = ferror(f) != 0;
    fclose(f);
    if (read_error) {
        snprintf(err, len, "%s: read error", path);
        return -1;
    }
    if (rc == -2) {
        add_error(&r, r.line, "out of memory");
    } else if (rc > 0 && (unsigned)rc != r.last_error_line) {
        /* inih's own: a line that is neither "key = value", a comment nor a [section] */
        add_error(&r, (unsigned)rc, "syntax error: expected 'key = value' or '[service]'");
    }
    if (r.errors == 0 && c->n_svc == 0) {
        add_error(&r, r.line, "no service: add a [name] section with listen, backend and "
                               "psk_file (or cert and key)");
    }
    return r.errors > 0 ? -1 : 0;
}

/* ---- typed readers ------------------------------------------------------------------------------ */

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

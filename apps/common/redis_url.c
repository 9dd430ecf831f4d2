/* SPDX-License-Identifier: MIT */
/*
 * Redis URLs (redis.h): parsing, redaction, and telling a URL from a file path. I/O-free
 * except password_file=, which is read here so that the parsed URL is complete (and the
 * password never travels through a command line or a configuration file).
 */
#include "redis.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hex.h"

#define RDS_DEFAULT_PORT 6379
#define RDS_DEFAULT_PREFIX "tern:psk:"
#define RDS_DEFAULT_TIMEOUT_MS 500

/* ---- URLs --------------------------------------------------------------------------------- */

/* Percent-decodes [s, s+n) into out (size cap, NUL-terminated). @return 0, -1 bad escape or
 * NUL, -2 too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                return -1;
            }
            int h = app_hex_digit((unsigned char)s[i + 1]);
            int l = app_hex_digit((unsigned char)s[i + 2]);
            if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                return -1;
            }
            c = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= cap) {
            return -2;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

static bool has_prefix_ci(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

bool rds_is_url(const char *text)
{
    return text != NULL && (has_prefix_ci(text, "redis://") || has_prefix_ci(text, "rediss://"));
}

static bool valid_hostname(const char *h, size_t n)
{
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (!isalnum(c) && c != '.' && c != '-' && c != '_') {
            return false;
        }
    }
    return true;
}

/* Parses an unsigned decimal [s, s+n) no larger than max. */
static bool parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    if (n == 0 || n > 10) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max) {
        return false;
    }
    *out = v;
    return true;
}

#define URL_FAIL(...)                                                                              \
    do {                                                                                           \
        if (err != NULL && err_len > 0) {                                                          \
            snprintf(err, err_len, "redis URL: " __VA_ARGS__);                                     \
        }                                                                                          \
        goto fail;                                                                                 \
    } while (0)

/* One ?key=value option (value already percent-decoded into val). */
static int url_option(struct rds_url *u, const char *key, size_t klen, const char *val,
                      char *pwfile, size_t pwfile_len, bool *has_verify, char *err,
                      size_t err_len)
{
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } strs[] = {
        {"ca", u->ca, sizeof(u->ca)},
        {"verify_name", u->verify_name, sizeof(u->verify_name)},
        {"cert", u->cert, sizeof(u->cert)},
        {"key", u->key, sizeof(u->key)},
        {"prefix", u->prefix, sizeof(u->prefix)},
        {"password_file", pwfile, pwfile_len},
    };
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        if (strlen(strs[i].name) == klen && memcmp(strs[i].name, key, klen) == 0) {
            if (strlen(val) >= strs[i].cap) {
                URL_FAIL("%s= is too long (at most %zu bytes)", strs[i].name, strs[i].cap - 1);
            }
            if (val[0] == '\0' && strcmp(strs[i].name, "prefix") != 0) {
                URL_FAIL("%s= is empty", strs[i].name);
            }
            if (strcmp(strs[i].name, "verify_name") == 0) {
                *has_verify = true;
            }
            strcpy(strs[i].dst, val);
            return 0;
        }
    }
    if (klen == 10 && memcmp(key, "timeout_ms", 10) == 0) {
        unsigned long v;
        if (!parse_uint(val, strlen(val), 600000, &v) || v == 0) {
            URL_FAIL("timeout_ms=%s is not a number of milliseconds in 1..600000", val);
        }
        u->timeout_ms = (uint32_t)v;
        return 0;
    }
    URL_FAIL("unknown option '%.*s' (known: ca, verify_name, cert, key, prefix, timeout_ms, "
             "password_file)",
             (int)(klen > 64 ? 64 : klen), key);
fail:
    return -1;
}

int rds_url_parse(const char *text, struct rds_url *out, char *err, size_t err_len)
{
    struct rds_url u;
    char pwfile[512] = "";
    char val[1024];
    bool has_verify = false;

    memset(&u, 0, sizeof(u));
    u.port = RDS_DEFAULT_PORT;
    u.timeout_ms = RDS_DEFAULT_TIMEOUT_MS;
    strcpy(u.prefix, RDS_DEFAULT_PREFIX);
    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (text == NULL) {
        URL_FAIL("none given");
    }
    const char *p;
    if (has_prefix_ci(text, "redis://")) {
        p = text + 8;
    } else if (has_prefix_ci(text, "rediss://")) {
        p = text + 9;
        u.tls = true;
    } else {
        URL_FAIL("must start with redis:// or rediss://");
    }
    if (strchr(p, '#') != NULL) {
        URL_FAIL("a fragment (#) has no meaning here");
    }
    for (const char *q = p; *q != '\0'; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f) {
            URL_FAIL("a space or control character in the URL (percent-encode it)");
        }
    }
    size_t alen = strcspn(p, "/?");
    const char *auth = p;
    const char *rest = p + alen;

    /* userinfo: up to the last '@' of the authority (a raw '@' in a password is lenient) */
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            at = auth + i;
        }
    }
    if (at != NULL) {
        size_t ulen = (size_t)(at - auth);
        const char *colon = memchr(auth, ':', ulen);
        size_t user_n = colon != NULL ? (size_t)(colon - auth) : ulen;
        int rc = pct_decode(auth, user_n, u.user, sizeof(u.user));
        if (rc == -1) {
            URL_FAIL("bad percent-encoding in the user name");
        } else if (rc == -2) {
            URL_FAIL("the user name is too long (at most %zu bytes)", sizeof(u.user) - 1);
        }
        if (colon != NULL) {
            rc = pct_decode(colon + 1, ulen - user_n - 1, u.password, sizeof(u.password));
            if (rc == -1) {
                URL_FAIL("bad percent-encoding in the password");
            } else if (rc == -2) {
                URL_FAIL("the password is too long (at most %zu bytes)",
                         sizeof(u.password) - 1);
            }
        }
        alen -= ulen + 1;
        auth = at + 1;
    }

    /* host[:port] */
    const char *hp_end = auth + alen;
    const char *host;
    size_t hlen;
    const char *port_s = NULL;
    if (alen > 0 && auth[0] == '[') {
        const char *close = memchr(auth, ']', alen);
        if (close == NULL) {
            URL_FAIL("'[' without ']' around an IPv6 address");
        }
        host = auth + 1;
        hlen = (size_t)(close - host);
        char tmp[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        if (hlen == 0 || hlen >= sizeof(tmp)) {
            URL_FAIL("not an IPv6 address in [ ]");
        }
        memcpy(tmp, host, hlen);
        tmp[hlen] = '\0';
        if (inet_pton(AF_INET6, tmp, &a6) != 1) {
            URL_FAIL("'%s' is not an IPv6 address", tmp);
        }
        if (close + 1 < hp_end) {
            if (close[1] != ':') {
                URL_FAIL("unexpected text after ']'");
            }
            port_s = close + 2;
        }
    } else {
        const char *colon = memchr(auth, ':', alen);
        host = auth;
        hlen = colon != NULL ? (size_t)(colon - auth) : alen;
        if (colon != NULL) {
            port_s = colon + 1;
        }
        if (hlen == 0) {
            URL_FAIL("no host");
        }
        if (!valid_hostname(host, hlen)) {
            URL_FAIL("'%.*s' is not a host name or address (IPv6 goes in [ ])",
                     (int)(hlen > 64 ? 64 : hlen), host);
        }
    }
    if (hlen >= sizeof(u.host)) {
        URL_FAIL("the host is too long");
    }
    memcpy(u.host, host, hlen);
    u.host[hlen] = '\0';
    if (port_s != NULL) {
        unsigned long v;
        if (!parse_uint(port_s, (size_t)(hp_end - port_s), 65535, &v) || v == 0) {
            int plen = (int)(hp_end - port_s);
            URL_FAIL("port '%.*s' is not in 1..65535", plen > 16 ? 16 : plen, port_s);
        }
        u.port = (uint16_t)v;
    }

    /* /db */
    if (*rest == '/') {
        rest++;
        size_t dlen = strcspn(rest, "?");
        if (dlen > 0) {
            unsigned long v;
            if (!parse_uint(rest, dlen, INT_MAX, &v)) {
                URL_FAIL("database '%.*s' is not a number", (int)(dlen > 16 ? 16 : dlen), rest);
            }
            u.db = (unsigned)v;
        }
        rest += dlen;
    }

    /* ?options */
    if (*rest == '?') {
        rest++;
        while (*rest != '\0') {
            size_t n = strcspn(rest, "&");
            const char *eq = memchr(rest, '=', n);
            if (n == 0) {
                rest++;
                continue;
            }
            if (eq == NULL) {
                URL_FAIL("option '%.*s' without '=VALUE'", (int)(n > 64 ? 64 : n), rest);
            }
            size_t klen = (size_t)(eq - rest);
            int rc = pct_decode(eq + 1, n - klen - 1, val, sizeof(val));
            if (rc == -1) {
                URL_FAIL("bad percent-encoding in option %.*s", (int)(klen > 64 ? 64 : klen),
                         rest);
            } else if (rc == -2) {
                URL_FAIL("option %.*s is too long", (int)(klen > 64 ? 64 : klen), rest);
            }
            if (url_option(&u, rest, klen, val, pwfile, sizeof(pwfile), &has_verify, err,
                           err_len) < 0) {
                goto fail;
            }
            rest += n;
            if (*rest == '&') {
                rest++;
            }
        }
    }

    if (!u.tls && (u.ca[0] != '\0' || has_verify || u.cert[0] != '\0' || u.key[0] != '\0')) {
        URL_FAIL("ca=, verify_name=, cert= and key= are for rediss:// (TLS) only");
    }
    if ((u.cert[0] != '\0') != (u.key[0] != '\0')) {
        URL_FAIL("cert= and key= go together");
    }
    if (pwfile[0] != '\0') {
        char buf[TERN_SSL_MAX_PASSPHRASE + 1];
        char why[600];
        if (u.password[0] != '\0') {
            URL_FAIL("a password in the URL and password_file= both given");
        }
        ssize_t n = tern_ssl_read_passphrase_file(pwfile, buf, sizeof(buf), why, sizeof(why));
        if (n < 0) {
            explicit_bzero(buf, sizeof(buf));
            URL_FAIL("password_file %s", why);
        }
        if ((size_t)n >= sizeof(u.password)) {
            explicit_bzero(buf, sizeof(buf));
            URL_FAIL("password_file %s: longer than %zu bytes", pwfile, sizeof(u.password) - 1);
        }
        memcpy(u.password, buf, (size_t)n + 1);
        explicit_bzero(buf, sizeof(buf));
    }
    if (u.user[0] != '\0' && u.password[0] == '\0') {
        URL_FAIL("a user needs a password (USER:PASSWORD@ or password_file=)");
    }
    if (u.tls && !has_verify) {
        strcpy(u.verify_name, u.host);
    }
    *out = u;
    explicit_bzero(&u, sizeof(u));
    explicit_bzero(val, sizeof(val));
    return 0;
fail:
    explicit_bzero(&u, sizeof(u));
    explicit_bzero(val, sizeof(val));
    return -1;
}

const char *rds_url_redacted(const struct rds_url *u, char *buf, size_t len)
{
    size_t o = 0;
    char sep = '?';

#define PUT(...)                                                                                   \
    do {                                                                                           \
        if (o < len) {                                                                             \
            int n_ = snprintf(buf + o, len - o, __VA_ARGS__);                                      \
            o += n_ > 0 ? (size_t)n_ : 0;                                                          \
        }                                                                                          \
    } while (0)

    if (buf == NULL || len == 0) {
        return buf;
    }
    buf[0] = '\0';
    PUT("%s://", u->tls ? "rediss" : "redis");
    if (u->user[0] != '\0' || u->password[0] != '\0') {
        PUT("%s%s@", u->user, u->password[0] != '\0' ? ":***" : "");
    }
    PUT(strchr(u->host, ':') != NULL ? "[%s]:%u" : "%s:%u", u->host, (unsigned)u->port);
    if (u->db != 0) {
        PUT("/%u", u->db);
    }
    if (u->ca[0] != '\0') {
        PUT("%cca=%s", sep, u->ca);
        sep = '&';
    }
    if (u->tls && u->verify_name[0] != '\0' && strcmp(u->verify_name, u->host) != 0) {
        PUT("%cverify_name=%s", sep, u->verify_name);
        sep = '&';
    }
    if (u->cert[0] != '\0') {
        PUT("%ccert=%s&key=%s", sep, u->cert, u->key);
        sep = '&';
    }
    if (strcmp(u->prefix, RDS_DEFAULT_PREFIX) != 0) {
        PUT("%cprefix=%s", sep, u->prefix);
        sep = '&';
    }
    if (u->timeout_ms != RDS_DEFAULT_TIMEOUT_MS) {
        PUT("%ctimeout_ms=%u", sep, (unsigned)u->timeout_ms);
        sep = '&';
    }
#undef PUT
    return buf;
}

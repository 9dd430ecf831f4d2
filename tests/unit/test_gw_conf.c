/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's configuration reader and builder (apps/tern-gateway/conf.c, build.c): keys
 * and their scopes, every refusal with its FILE:LINE, the command line over the file, and
 * the settings a section builds (backends, routes, rates, limits, files loaded), and the
 * durations in seconds with decimals (hibernate_after) that the programs share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/error.h>

#include "common/opts.h"
#include "tern-gateway/build.h"
#include "tern-gateway/conf.h"

static char dir[] = "/tmp/tern-gw-conf-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
    return path;
}

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    char ids[256];
    snprintf(ids, sizeof(ids), "dev1:%064d\nplant-a/x:%032d\n", 1, 2);
    write_file("ids.psk", ids);
    write_file("bad.psk", "dev1:00112233445566778899aabbccddeeff\ndev2:nothex\n");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Loads @p text as a file; @return conf_load's result, @p err its message. */
static int load(struct conf *c, const char *text, char *err, size_t len)
{
    const char *path = write_file("t.conf", text);
    return conf_load(c, path, err, len);
}

static void test_key_names(void **state)
{
    (void)state;
    assert_int_equal(conf_key_find("psk_file"), K_PSK_FILE);
    assert_int_equal(conf_key_find("psk-file"), K_PSK_FILE);
    assert_int_equal(conf_key_find("backend-connect-timeout"), K_BACKEND_CONNECT_TIMEOUT);
    assert_int_equal(conf_key_find("psk"), -1);
    assert_int_equal(conf_key_find("psk_file_x"), -1);
    assert_int_equal(conf_key_scope(K_THREADS), CONF_GLOBAL);
    assert_int_equal(conf_key_scope(K_LISTEN), CONF_SERVICE);
    assert_true(conf_key_repeatable(K_ROUTE));
    assert_false(conf_key_repeatable(K_PSK_FILE));
}

static void test_good_file(void **state)
{
    (void)state;
    struct conf c;
    char err[2048];
    int rc = load(&c,
                  "# comment\n"
                  "threads = 2\n"
                  "; another\n"
                  "admin = 127.0.0.1:9100\n"
                  "\n"
                  "[mqtt]\n"
                  "listen = 127.0.0.1:8883\n"
                  "listen = 127.0.0.1:8884\n"
                  "psk-file = x.psk\n"
                  "route = a/* -> 127.0.0.1:1\n"
                  "route = b/* -> 127.0.0.1:2\n"
                  "[second]\n"
                  "backend = 127.0.0.1:1883\n",
                  err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_int_equal(c.n_svc, 2);
    assert_string_equal(c.svc[0].name, "mqtt");
    assert_int_equal(c.svc[0].line, 6);
    assert_int_equal(c.svc[0].keys[K_LISTEN].n, 2);
    assert_int_equal(c.svc[0].keys[K_ROUTE].n, 2);
    assert_int_equal(c.svc[0].keys[K_ROUTE].v[1].line, 11);
    assert_string_equal(conf_get(&c.svc[0], K_PSK_FILE)->text, "x.psk");
    assert_string_equal(conf_get(&c.global, K_THREADS)->text, "2");
    assert_int_equal(conf_get(&c.global, K_ADMIN)->line, 4);
    assert_string_equal(c.svc[1].name, "second");
    conf_free(&c);
}

/* Each refusal names its line. */
static void expect_error(const char *text, const char *needle)
{
    struct conf c;
    char err[2048];
    int rc = load(&c, text, err, sizeof(err));
    if (rc == 0 || strstr(err, needle) == NULL) {
        fail_msg("expected an error with '%s', got rc %d: %s", needle, rc, err);
    }
    conf_free(&c);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_error("bogus = 1\n[a]\nbackend = x:1\n", "t.conf:1: unknown key 'bogus'");
    expect_error("[a]\nthreads = 2\n", "t.conf:2: 'threads' is a global key");
    expect_error("psk_file = x\n[a]\n", "t.conf:1: 'psk_file' belongs in a [service] section");
    expect_error("[a]\npsk_file = x\npsk_file = y\n", "t.conf:3: duplicate key 'psk_file' (first at line 2)");
    expect_error("[a]\n[b]\n[a]\n", "t.conf:3: duplicate section [a] (first at line 1)");
    expect_error("[a b]\n", "t.conf:1: bad service name");
    expect_error("[a]\nthis is not a key value line\n", "t.conf:2: syntax error");
    expect_error("[a]\npsk_file =\n", "t.conf:2: 'psk_file' has no value");
    expect_error("threads = 2\n", "no service");
    /* several problems: every one is reported */
    struct conf c;
    char err[2048];
    assert_int_equal(load(&c, "x = 1\n[a]\ny = 2\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: unknown key 'x'"));
    assert_non_null(strstr(err, "t.conf:3: unknown key 'y'"));
    conf_free(&c);
    /* an overlong line is refused, not cut */
    char *big = malloc(6000);
    assert_non_null(big);
    strcpy(big, "[a]\nbackend = ");
    memset(big + strlen(big), 'x', 5000);
    strcpy(big + 14 + 5000, "\n");
    expect_error(big, "t.conf:2: line longer than");
    free(big);
}

/* A line longer than libinih's own buffer (Debian builds it with 200 bytes) is read whole. */
static void test_long_line(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    char text[1200] = "threads = 1\n[a]\nroute = plant-a/* -> ";
    for (int i = 0; i < 40; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof(text) - used, "%s10.0.0.%d:1883", i > 0 ? ", " : "", i);
    }
    strcat(text, "   ; a comment after a space\nbackend = 127.0.0.1:1\n");
    assert_int_equal(load(&c, text, err, sizeof(err)), 0);
    const struct conf_val *v = conf_get(&c.svc[0], K_ROUTE);
    assert_non_null(v);
    assert_int_equal(v->line, 3);
    assert_true(strlen(v->text) > 500);
    assert_non_null(strstr(v->text, "10.0.0.39:1883"));
    assert_null(strstr(v->text, "comment"));
    assert_int_equal(conf_get(&c.svc[0], K_BACKEND)->line, 4);
    conf_free(&c);
    /* a long line is checked like any other */
    char bad[600] = "[a]\nnosuchkey = ";
    memset(bad + strlen(bad), 'x', 300);
    expect_error(bad, "t.conf:2: unknown key 'nosuchkey'");
}

static void test_missing_file(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    assert_int_equal(conf_load(&c, "/nonexistent/tern.conf", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/tern.conf: cannot open"));
    conf_free(&c);
}

static void test_cli_over_file(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    assert_int_equal(load(&c, "[a]\nbackend = 127.0.0.1:1\nbackend = 127.0.0.1:2\n", err, sizeof(err)), 0);
    bool first = true;
    assert_int_equal(conf_set_cli(&c.svc[0], K_BACKEND, "127.0.0.1:3", &first), 0);
    assert_int_equal(conf_set_cli(&c.svc[0], K_BACKEND, "127.0.0.1:4", &first), 0);
    /* a repeatable key given on the command line replaces the file's list */
    assert_int_equal(c.svc[0].keys[K_BACKEND].n, 2);
    assert_string_equal(c.svc[0].keys[K_BACKEND].v[0].text, "127.0.0.1:3");
    assert_int_equal(c.svc[0].keys[K_BACKEND].v[0].line, 0);
    char where[300];
    assert_string_equal(conf_where(&c, K_BACKEND, &c.svc[0].keys[K_BACKEND].v[0], where,
                                   sizeof(where)),
                        "--backend");
    conf_free(&c);
}

static void test_typed(void **state)
{
    (void)state;
    struct conf c;
    char err[512];
    assert_int_equal(load(&c, "threads = 0\nallow_root = maybe\nlog_format = xml\n[a]\n", err, sizeof(err)), 0);
    uint64_t v;
    bool b;
    unsigned u;
    static const char *const formats[] = {"text", "json", NULL};
    assert_int_equal(conf_uint(&c, &c.global, K_THREADS, 1, 256, 0, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: threads: '0' is not a number in 1..256"));
    assert_int_equal(conf_bool(&c, &c.global, K_ALLOW_ROOT, false, &b, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:2: allow_root:"));
    assert_int_equal(conf_choice(&c, &c.global, K_LOG_FORMAT, formats, 0, &u, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not one of: text, json"));
    assert_int_equal(conf_uint(&c, &c.global, K_DRAIN, 0, 10, 7, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 7); /* absent: the default */
    conf_free(&c);
}

/* Builds the only service of @p text. */
static int build(const char *text, struct gw_settings **st, char *err, size_t len)
{
    struct conf c;
    char warn[600];
    char full[4096];
    /* "%s" in the text stands for the test's directory */
    size_t o = 0;
    for (const char *p = text; *p != '\0' && o + sizeof(dir) + 1 < sizeof(full); p++) {
        if (p[0] == '%' && p[1] == 's') {
            memcpy(full + o, dir, strlen(dir));
            o += strlen(dir);
            p++;
        } else {
            full[o++] = *p;
        }
    }
    full[o] = '\0';
    if (load(&c, full, err, len) < 0) {
        conf_free(&c);
        return -2;
    }
    int rc = gw_build_settings(&c, &c.svc[0], 0, NULL, st, err, len, warn, sizeof(warn));
    conf_free(&c);
    return rc;
}

static void test_build_settings(void **state)
{
    (void)state;
    struct gw_settings *st;
    char err[1024];
    int rc = build("[m]\npsk_file = %s/ids.psk\n"
                   "backend = 127.0.0.1:1883, [::1]:1884\n"
                   "backend = localhost:1885\n"
                   "backend_balance = round-robin\n"
                   "route = plant-a/* -> 127.0.0.1:2000\n"
                   "route = dev[0-9] -> 127.0.0.1:2001, 127.0.0.1:2002\n"
                   "rate_per_identity = 0.5\n"
                   "rate_per_source = 20/100\n"
                   "max_conn_per_identity = 3\n"
                   "proxy_protocol = v2\n"
                   "proxy_protocol_in = v1\n"
                   "handshake_timeout = 4\n"
                   "hibernate_after = 0.25\n"
                   "metrics_identities = dev1, plant-a/*\n"
                   "metrics_identities = d?v[0-9]\n",
                   &st, err, sizeof(err));
    if (rc != 0) {
        fail_msg("build: %s", err);
    }
    assert_string_equal(st->name, "m");
    assert_int_equal(tern_psk_store_count(st->store), 2);
    assert_int_equal(st->backends.n, 3);
    assert_string_equal(st->backends.v[1].host, "::1");
    assert_int_equal(st->backends.v[1].port, 1884);
    assert_string_equal(st->backends.v[2].text, "localhost:1885");
    assert_int_equal(st->balance, GW_BALANCE_ROUND_ROBIN);
    assert_int_equal(st->n_routes, 2);
    assert_true(st->routes[0].prefix);
    assert_int_equal(st->routes[0].prefix_len, strlen("plant-a/"));
    assert_false(st->routes[1].prefix); /* a glob */
    assert_int_equal(st->routes[1].backends.n, 2);
    assert_true(st->rate_identity.rate == 0.5 && st->rate_identity.burst == 1);
    assert_true(st->rate_source.rate == 20 && st->rate_source.burst == 100);
    assert_int_equal(st->max_conn_per_identity, 3);
    assert_true(st->proxy_v2);
    assert_int_equal(st->proxy_in, GW_PROXY_IN_V1);
    assert_int_equal(st->handshake_timeout_ms, 4000);
    assert_int_equal(st->hibernate_after_ms, 250);
    assert_null(st->backend_ssl);
    assert_int_equal(st->n_id_metrics, 3);
    assert_false(st->id_metrics[0].prefix); /* an exact identity (fnmatch without wildcards) */
    assert_true(st->id_metrics[1].prefix);
    assert_int_equal(st->id_metrics[1].prefix_len, strlen("plant-a/"));
    assert_string_equal(st->id_metrics[2].pattern, "d?v[0-9]");
    assert_false(st->id_metrics[2].prefix);
    gw_settings_release(st);
}

static void expect_build_error(const char *text, const char *needle)
{
    struct gw_settings *st = NULL;
    char err[1024] = "";
    int rc = build(text, &st, err, sizeof(err));
    if (rc != -1 || strstr(err, needle) == NULL) {
        fail_msg("expected a build error with '%s', got rc %d: %s", needle, rc, err);
    }
    assert_null(st);
}

static void test_build_refusals(void **state)
{
    (void)state;
    expect_build_error("[m]\nbackend = 127.0.0.1:1\n", "the service needs psk_file");
    expect_build_error("[m]\npsk_file = %s/ids.psk\n", "the service needs backend");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1\n",
                       "t.conf:3: backend: cannot parse '127.0.0.1'");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1,\n",
                       "t.conf:3: backend: an empty address");
    expect_build_error("[m]\npsk_file = %s/bad.psk\nbackend = 127.0.0.1:1\n", "bad.psk:2:");
    expect_build_error("[m]\npsk_file = %s/none.psk\nbackend = 127.0.0.1:1\n", "t.conf:2: psk_file:");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nroute = x 127.0.0.1:2\n",
                       "t.conf:4: route: 'x 127.0.0.1:2': expected 'PATTERN -> HOST:PORT");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nrate_per_source = 0\n",
                       "t.conf:4: rate_per_source:");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nrate_per_source = 5/0\n",
                       "the burst after '/'");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\ntls_min = 1.1\n",
                       "t.conf:4: tls_min: '1.1' is not one of: 1.2, 1.3");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nbackend_ca = x.pem\n",
                       "t.conf:4: backend_ca: needs backend_tls = yes");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nbackend_tls = yes\n",
                       "t.conf:4: backend_tls: needs backend_ca");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\ncert = c.pem\n",
                       "t.conf:4: cert: needs key");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nciphers = NOPE\n",
                       "t.conf:4: ciphers:");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\ntls_min = 1.3\ntls_max = 1.2\n",
                       "t.conf:5: tls_max: below tls_min");
    /* TLS 1.2 suites alone need tls_max = 1.2 */
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nciphers = ECDHE-PSK-CHACHA20-POLY1305\n",
                       "t.conf:4: ciphers: the list has no TLS 1.3 suite");
    struct gw_settings *st = NULL;
    char err[1024];
    assert_int_equal(build("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\n"
                           "tls_max = 1.2\nciphers = ECDHE-PSK-CHACHA20-POLY1305\n",
                           &st, err, sizeof(err)), 0);
    assert_int_equal(st->hibernate_after_ms, 0); /* absent: never */
    gw_settings_release(st);
    /* hibernate_after: seconds, up to 3 decimals, 0..86400; each refusal names its line */
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nhibernate_after = -1\n",
                       "t.conf:4: hibernate_after: '-1' is not a duration in 0..86400 seconds");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nhibernate_after = 5s\n",
                       "t.conf:4: hibernate_after: '5s' is not a duration");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\n"
                       "hibernate_after = 0.0005\n",
                       "t.conf:4: hibernate_after: '0.0005' is not a duration");
    expect_build_error("[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\n"
                       "hibernate_after = 86401\n",
                       "t.conf:4: hibernate_after: '86401' is not a duration in 0..86400");
    /* psk_store: a Redis URL, checked here (without an opener, as in -t, nothing connects) */
    expect_build_error("[m]\npsk_file = %s/ids.psk\npsk_store = redis://127.0.0.1/0\n"
                       "backend = 127.0.0.1:1\n",
                       "t.conf:3: psk_store: psk_store and psk_file exclude each other");
    expect_build_error("[m]\npsk_store = %s/ids.psk\nbackend = 127.0.0.1:1\n",
                       "t.conf:2: psk_store: expected a redis:// or rediss:// URL");
    expect_build_error("[m]\npsk_store = redis://127.0.0.1:99999/0\nbackend = 127.0.0.1:1\n",
                       "t.conf:2: psk_store: redis URL:");
    assert_int_equal(build("[m]\npsk_store = rediss://tern:secret@127.0.0.1:6380/3?timeout_ms=200\n"
                           "backend = 127.0.0.1:1\npsk_hint = fleet\n",
                           &st, err, sizeof(err)), 0);
    assert_null(st->store);
    assert_null(st->redis); /* no opener in a test: the URL is only checked */
    gw_settings_release(st);
    /* per-identity metrics stay bounded: 65 names are refused */
    char text[2048] = "[m]\npsk_file = %s/ids.psk\nbackend = 127.0.0.1:1\nmetrics_identities = ";
    for (int i = 0; i < 65; i++) {
        size_t used = strlen(text);
        snprintf(text + used, sizeof(text) - used, "%sid%d", i > 0 ? ", " : "", i);
    }
    strcat(text, "\n");
    expect_build_error(text, "t.conf:4: metrics_identities: more than 64 identities");
}

static void test_globals(void **state)
{
    (void)state;
    struct conf c;
    struct gw_globals g;
    char err[1024];
    assert_int_equal(load(&c, "threads = 3\nuser = root\ndrain = 100\nlog_format = json\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), 0);
    assert_int_equal(g.threads, 3);
    assert_int_equal(g.drain_ms, 100);
    assert_int_equal(g.log_format, 1);
    assert_int_equal(g.log_level, -1); /* not given */
    assert_string_equal(g.user, "root");
    assert_false(g.reuseport); /* the default */
    conf_free(&c);
    assert_int_equal(load(&c, "reuseport = on\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), 0);
    assert_true(g.reuseport);
    conf_free(&c);
    assert_int_equal(load(&c, "reuseport = sometimes\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: reuseport:"));
    conf_free(&c);
    expect_error("[a]\nreuseport = on\n", "t.conf:2: 'reuseport' is a global key");
    assert_int_equal(load(&c, "user = no-such-user-tern\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: user: no user 'no-such-user-tern'"));
    conf_free(&c);
    assert_int_equal(load(&c, "group = root\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "group: needs user"));
    conf_free(&c);
    assert_int_equal(load(&c, "psk_store_ttl = 0\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: psk_store_ttl:"));
    conf_free(&c);
    assert_int_equal(load(&c, "psk_store_cache_size = 1000\npsk_store_stale = 60\n[a]\n", err,
                          sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), 0);
    assert_int_equal(g.store_cache_size, 1000);
    assert_int_equal(g.store_stale_s, 60);
    assert_int_equal(g.store_ttl_s, 300); /* the default */
    conf_free(&c);
    assert_int_equal(load(&c, "admin = nonsense\n[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_globals(&c, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:1: admin: cannot parse 'nonsense'"));
    conf_free(&c);
}

static void test_listen(void **state)
{
    (void)state;
    struct conf c;
    char err[1024];
    char addrs[GW_MAX_LISTEN][280];
    assert_int_equal(load(&c, "[a]\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_listen(&c, &c.svc[0], addrs, err, sizeof(err)), 1);
    assert_string_equal(addrs[0], "127.0.0.1:8883"); /* the default */
    conf_free(&c);
    assert_int_equal(load(&c, "[a]\nlisten = 127.0.0.1:0, [::1]:9\nlisten = :10\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_listen(&c, &c.svc[0], addrs, err, sizeof(err)), 3);
    assert_string_equal(addrs[1], "[::1]:9");
    assert_string_equal(addrs[2], ":10");
    conf_free(&c);
    assert_int_equal(load(&c, "[a]\n\nlisten = nonsense\n", err, sizeof(err)), 0);
    assert_int_equal(gw_build_listen(&c, &c.svc[0], addrs, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "t.conf:3: listen: cannot parse 'nonsense'"));
    conf_free(&c);
}

/* app_opt_parse_seconds_ms (apps/common/opts.c), what --hibernate-after and hibernate_after
 * read: whole milliseconds or a refusal, never a rounded guess. */
static void test_seconds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t ms;
    } good[] = {
        {"0", 0},     {"5", 5000},   {"0.2", 200},        {"1.25", 1250},
        {"0.001", 1}, {"007", 7000}, {"86400", 86400000}, {"86399.999", 86399999},
        {"0.000", 0}, {"3.10", 3100},
    };
    static const char *const garbage[] = {
        "",    "-1",   "+1",  " 1", "1 ",   "1e3",   ".5",   "1.",   "0.0001", "inf",
        "nan", "0x10", "1,5", "5s", "1..2", "1.2.3", "1.-2", "0.5 ", "1\n",
    };
    static const char *const too_big[] = {"86401", "86400.001", "99999999999999999999999999"};
    uint64_t v;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = 12345;
        if (app_opt_parse_seconds_ms(good[i].text, 86400000, &v) != 0 || v != good[i].ms) {
            fail_msg("'%s': expected %llu ms, got %llu", good[i].text,
                     (unsigned long long)good[i].ms, (unsigned long long)v);
        }
    }
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        v = 12345;
        if (app_opt_parse_seconds_ms(garbage[i], 86400000, &v) != TERN_EINVAL || v != 12345) {
            fail_msg("'%s' was not refused as garbage", garbage[i]);
        }
    }
    for (size_t i = 0; i < sizeof(too_big) / sizeof(too_big[0]); i++) {
        v = 12345;
        if (app_opt_parse_seconds_ms(too_big[i], 86400000, &v) != TERN_ERANGE || v != 12345) {
            fail_msg("'%s' was not refused as out of range", too_big[i]);
        }
    }
    /* garbage after a huge number is garbage, not "out of range" */
    assert_int_equal(app_opt_parse_seconds_ms("99999999999999999999999x", 86400000, &v),
                     TERN_EINVAL);
    assert_int_equal(app_opt_parse_seconds_ms(NULL, 86400000, &v), TERN_EINVAL);

    /* the command line's value is blamed on the option, not on a file line */
    struct conf c;
    char err[1024];
    assert_int_equal(load(&c, "[a]\nbackend = 127.0.0.1:1\n", err, sizeof(err)), 0);
    bool first = true;
    assert_int_equal(conf_set_cli(&c.svc[0], K_HIBERNATE_AFTER, "-0.5", &first), 0);
    assert_int_equal(conf_seconds_ms(&c, &c.svc[0], K_HIBERNATE_AFTER, 86400000, 0, &v, err,
                                     sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "--hibernate-after: '-0.5' is not a duration"));
    conf_free(&c);
    assert_int_equal(conf_key_find("hibernate-after"), K_HIBERNATE_AFTER);
    assert_int_equal(conf_key_scope(K_HIBERNATE_AFTER), CONF_SERVICE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names),     cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_refusals),      cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_cli_over_file), cmocka_unit_test(test_typed),
        cmocka_unit_test(test_build_settings), cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_globals),       cmocka_unit_test(test_listen),
        cmocka_unit_test(test_seconds),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's Redis identity store (apps/tern-gateway/psk_redis.c) against a real Redis:
 * the test starts its own redis-server on a free loopback port (no persistence, keyspace
 * notifications for hash and generic commands: HSET/HDEL and DEL; DEBUG allowed from
 * loopback), stops it by PID, and starts it again. A PSK server (a runtime of one reactor)
 * answers psk_authentication_required with psk_redis_lookup, as the gateway does; clients on
 * a second runtime handshake with tern_socket_set_psk (a handshake that ends `encrypted`
 * succeeded). Skips (77) without redis-server.
 */
#include <hiredis/hiredis.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#include "common/redis.h"
#include "support.h"
#include "tern-gateway/psk_redis.h"

static const char KEY_HEX[] = "000102030405060708090a0b0c0d0e0f";
static const uint8_t KEY[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const char KEY2_HEX[] = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff0001020304050607";
static const uint8_t KEY2[24] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
                                 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
                                 0, 1, 2, 3, 4, 5, 6, 7};

struct g {
    uint16_t redis_port;
    pid_t redis_pid;
    char dir[64];
    redisContext *ctl;
    struct app_loop *loop;
    tern_runtime *srt, *crt;
    uint16_t port;
    struct psk_redis *_Atomic store;
    tern_runtime *extra_srt;  /* a test's own server, stopped by teardown_store */
    uint16_t saved_port;
    /* what the server's handler saw */
    pthread_mutex_t lock;
    char last_why[32];
    char removed[16][64];
    int nremoved;
};

static struct g G;

/* ---- redis-server --------------------------------------------------------------------- */

/* Starts redis-server on G.redis_port; @p rdb (may be NULL) names a dump in G.dir to load.
 * @return 0, or -1 if it does not answer PING within 5 s. */
static int redis_start(const char *rdb)
{
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)G.redis_port);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0 && getenv("TEST_PSK_REDIS_DEBUG") == NULL) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--notify-keyspace-events", "Kgh",
               "--enable-debug-command", "local", "--dir", G.dir, "--dbfilename",
               rdb != NULL ? rdb : "none.rdb", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    G.redis_pid = pid;
    for (int i = 0; i < 500; i++) {
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", G.redis_port, tv);
        if (c != NULL && c->err == 0) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (ok) {
                redisSetTimeout(c, (struct timeval){5, 0});
                G.ctl = c;
                return 0;
            }
        }
        if (c != NULL) {
            redisFree(c);
        }
        ts_sleep_ms(10);
    }
    return -1;
}

static void redis_kill(void)
{
    if (G.ctl != NULL) {
        redisFree(G.ctl);
        G.ctl = NULL;
    }
    if (G.redis_pid > 0) {
        kill(G.redis_pid, SIGKILL);
        waitpid(G.redis_pid, NULL, 0);
        G.redis_pid = 0;
    }
}

/* One command on the control connection; fails the test on an error reply. */
static long long rcmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(G.ctl, fmt, ap);
    va_end(ap);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        fail_msg("redis: %s: %s", fmt, r != NULL ? r->str : G.ctl->errstr);
    }
    long long v = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return v;
}

/* ---- the PSK server --------------------------------------------------------------------- */

static void on_removed(const void *identity, size_t len, void *user)
{
    assert_ptr_equal(user, &G);
    pthread_mutex_lock(&G.lock);
    if (G.nremoved < 16) {
        snprintf(G.removed[G.nremoved++], sizeof(G.removed[0]), "%.*s", (int)len,
                 (const char *)identity);
    }
    pthread_mutex_unlock(&G.lock);
}

static bool was_removed(const char *identity)
{
    bool found = false;
    pthread_mutex_lock(&G.lock);
    for (int i = 0; i < G.nremoved; i++) {
        found = found || strcmp(G.removed[i], identity) == 0;
    }
    pthread_mutex_unlock(&G.lock);
    return found;
}

static void srv_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    (void)s;
    (void)user;
    tern_buf id = tern_psk_authenticator_identity(a);
    struct psk_record rec;
    const char *why = NULL;
    switch (psk_redis_lookup(atomic_load(&G.store), a, id.base, id.len, &rec, &why)) {
    case PSK_REDIS_FOUND:
        tern_psk_authenticator_set_key_hash(a, rec.hash);
        tern_psk_authenticator_complete(a, rec.key, rec.key_len);
        break;
    case PSK_REDIS_UNKNOWN:
        pthread_mutex_lock(&G.lock);
        snprintf(G.last_why, sizeof(G.last_why), "%s", why != NULL ? why : "(null)");
        pthread_mutex_unlock(&G.lock);
        tern_psk_authenticator_reject(a);
        break;
    case PSK_REDIS_PENDING:
        break;
    }
    explicit_bzero(&rec, sizeof(rec));
}

static void srv_read(tern_socket *s, void *user)
{
    (void)user;
    char buf[256];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static void srv_disconnected(tern_socket *s, int reason, void *user)
{
    (void)user;
    if (!tern_socket_is_encrypted(s) && getenv("TEST_PSK_REDIS_DEBUG") != NULL) {
        ts_log("server: reason %d: %s", reason, tern_socket_error_string(s));
    }
}

static const tern_socket_events server_events = {
    .psk_authentication_required = srv_psk,
    .ready_read = srv_read,
    .disconnected = srv_disconnected,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    (void)user;
    tern_socket_set_events(s, &server_events, NULL);
    tern_socket_start_server_encryption(s);
}

/* ---- clients ------------------------------------------------------------------------------ */

struct client {
    char identity[64];
    const uint8_t *key;
    size_t key_len;
    enum tern_psk_hash hash;
    _Atomic int result; /* 0 running, 1 encrypted, -1 failed */
    _Atomic bool gone;  /* its socket's last event ran: the struct may be reused */
};

/* The handshake is what these tests are about: a client that got `encrypted` succeeded. */
static void cl_encrypted(tern_socket *s, void *user)
{
    struct client *c = user;
    atomic_store(&c->result, 1);
    tern_socket_close(s);
}

static void cl_disconnected(tern_socket *s, int reason, void *user)
{
    struct client *c = user;
    if (atomic_load(&c->result) == 0 && getenv("TEST_PSK_REDIS_DEBUG") != NULL) {
        ts_log("client %s: reason %d, encrypted %d: %s", c->identity, reason,
               (int)tern_socket_is_encrypted(s), tern_socket_error_string(s));
    }
    int zero = 0;
    atomic_compare_exchange_strong(&c->result, &zero, -1);
    tern_socket_free(s);
    atomic_store(&c->gone, true);
}

static const tern_socket_events client_events = {
    .encrypted = cl_encrypted,
    .disconnected = cl_disconnected,
};

static void start_client(tern_reactor *r, void *arg)
{
    struct client *c = arg;
    if (r == NULL) {
        atomic_store(&c->result, -1);
        return;
    }
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    if (c->hash == TERN_PSK_HASH_SHA384) {
        assert_int_equal(tern_ssl_config_set_ciphers(cfg, "TLS13-AES256-GCM-SHA384"), 0);
    }
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_socket_set_psk(s, c->identity, strlen(c->identity), c->key,
                                         c->key_len), 0);
    assert_int_equal(tern_socket_set_psk_hash(s, c->hash), 0);
    tern_socket_set_events(s, &client_events, c);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", G.port, NULL), 0);
}

/* Runs @p n handshakes at once. @return how many succeeded; @p ms (may be NULL): the time until
 * the last ended. */
static int handshakes(struct client *cs, int n, uint64_t *ms)
{
    uint64_t t0 = ts_now_ms();
    for (int i = 0; i < n; i++) {
        atomic_store(&cs[i].result, 0);
        atomic_store(&cs[i].gone, false);
        if (cs[i].key == NULL) {
            cs[i].key = KEY;
            cs[i].key_len = sizeof(KEY);
        }
        assert_int_equal(ts_post(tern_runtime_reactor(G.crt, 0), start_client, &cs[i], 1000),
                         0);
    }
    int ok = 0;
    for (int i = 0; i < n; i++) {
        bool done = false;
        TS_WAIT_UNTIL(done, atomic_load(&cs[i].result) != 0, 10000);
        assert_true(done);
        ok += atomic_load(&cs[i].result) == 1;
    }
    if (ms != NULL) {
        *ms = ts_now_ms() - t0;
    }
    for (int i = 0; i < n; i++) {
        bool gone = false;
        TS_WAIT_UNTIL(gone, atomic_load(&cs[i].gone), 10000);
        assert_true(gone);
    }
    return ok;
}

/* One handshake of @p identity with @p key (NULL: KEY). @return true if it succeeded. */
static bool hs(const char *identity, const uint8_t *key, size_t key_len, uint64_t *ms)
{
    struct client c = {.key = key, .key_len = key_len};
    snprintf(c.identity, sizeof(c.identity), "%s", identity);
    bool ok = handshakes(&c, 1, ms) == 1;
    if (!ok && getenv("TEST_PSK_REDIS_DEBUG") != NULL) {
        struct psk_redis_stats st;
        psk_redis_get_stats(atomic_load(&G.store), &st);
        ts_log("%s failed: why=%s hits=%llu neg=%llu misses=%llu found=%llu unknown=%llu "
               "errors=%llu unavailable=%llu", identity, G.last_why,
               (unsigned long long)st.hits, (unsigned long long)st.negative_hits,
               (unsigned long long)st.misses, (unsigned long long)st.found,
               (unsigned long long)st.unknown, (unsigned long long)st.errors,
               (unsigned long long)st.unavailable);
    }
    return ok;
}

static const char *last_why(char *buf, size_t len)
{
    pthread_mutex_lock(&G.lock);
    snprintf(buf, len, "%s", G.last_why);
    pthread_mutex_unlock(&G.lock);
    return buf;
}

/* ---- the store under test ----------------------------------------------------------------- */

static struct psk_redis *store_new(uint32_t ttl_s, size_t max_inflight, unsigned timeout_ms)
{
    char url[64], err[256];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u?timeout_ms=%u", (unsigned)G.redis_port,
             timeout_ms);
    struct psk_redis_options o = {
        .url = url,
        .loop = G.loop,
        .ttl_s = ttl_s,
        .max_inflight = max_inflight,
        .on_removed = on_removed,
        .user = &G,
    };
    struct psk_redis *s = psk_redis_new(&o, err, sizeof(err));
    if (s == NULL) {
        fail_msg("psk_redis_new: %s", err);
    }
    bool up = false;
    TS_WAIT_UNTIL(up, psk_redis_up(s), 5000);
    assert_true(up);
    atomic_store(&G.store, s);
    pthread_mutex_lock(&G.lock);
    G.nremoved = 0;
    G.last_why[0] = '\0';
    pthread_mutex_unlock(&G.lock);
    return s;
}

static _Atomic bool unblock, blocked; /* test_psk_redis__answer_waits_for_a_full_mailbox */

static struct psk_redis_stats stats(void)
{
    struct psk_redis_stats st;
    psk_redis_get_stats(atomic_load(&G.store), &st);
    return st;
}

static int teardown_store(void **state)
{
    (void)state;
    atomic_store(&unblock, true); /* a reactor a failed test left blocked */
    struct psk_redis *s = atomic_exchange(&G.store, NULL);
    psk_redis_free(s);
    if (G.extra_srt != NULL) {
        G.port = G.saved_port;
        tern_runtime_stop(G.extra_srt, 0);
        tern_runtime_join(G.extra_srt);
        tern_runtime_free(G.extra_srt);
        G.extra_srt = NULL;
    }
    return 0;
}

/* A started PSK server runtime of one reactor (@p mailbox: its capacity, 0: the default). */
static tern_runtime *server_runtime(unsigned mailbox, uint16_t *port)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    if (mailbox != 0) {
        o.mailbox_capacity = mailbox;
    }
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    tern_server *srv = tern_server_new(rt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    *port = tern_server_port(srv);
    assert_int_equal(tern_runtime_start(rt), 0);
    return rt;
}

static int group_setup(void **state)
{
    (void)state;
    if (system("command -v redis-server >/dev/null 2>&1") != 0) {
        fprintf(stderr, "test_psk_redis: no redis-server: skipped\n");
        exit(77);
    }
    pthread_mutex_init(&G.lock, NULL);
    snprintf(G.dir, sizeof(G.dir), "/tmp/tern-psk-redis-XXXXXX");
    assert_non_null(mkdtemp(G.dir));
    G.redis_port = ts_unused_port();
    assert_int_equal(redis_start(NULL), 0);
    G.loop = app_loop_start("fleet");
    assert_non_null(G.loop);

    G.srt = server_runtime(0, &G.port);
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    G.crt = tern_runtime_new(&o);
    assert_non_null(G.crt);
    assert_int_equal(tern_runtime_start(G.crt), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    teardown_store(NULL);
    tern_runtime_stop(G.crt, 0);
    tern_runtime_join(G.crt);
    tern_runtime_stop(G.srt, 0);
    tern_runtime_join(G.srt);
    tern_runtime_free(G.crt);
    tern_runtime_free(G.srt);
    app_loop_stop(G.loop);
    redis_kill();
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", G.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_psk_redis__found_unknown_disabled_sha384(void **state)
{
    (void)state;
    char why[32];
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:dev1 key %s", KEY_HEX);
    rcmd("HSET tern:psk:off key %s disabled 1", KEY_HEX);
    rcmd("HSET tern:psk:on key %s disabled 0 max_conn 3 backend 127.0.0.1:9", KEY_HEX);
    rcmd("HSET tern:psk:big key %s hash sha384", KEY2_HEX);
    rcmd("HSET tern:psk:badkey key 0011");
    rcmd("HSET tern:psk:badhash key %s hash md5", KEY_HEX);
    rcmd("HSET tern:psk:badbe key %s backend nohost", KEY_HEX);
    rcmd("HSET tern:psk:badmc key %s max_conn lots", KEY_HEX);
    rcmd("HSET tern:psk:v6 key %s backend [::1]:1883", KEY_HEX);
    store_new(0, 0, 500);

    assert_true(hs("dev1", NULL, 0, NULL));
    assert_false(hs("nobody", NULL, 0, NULL)); /* refused by the fleet thread: no reason */
    assert_string_equal(last_why(why, sizeof(why)), "");
    assert_false(hs("off", NULL, 0, NULL));
    assert_false(hs("badkey", NULL, 0, NULL));
    assert_false(hs("badhash", NULL, 0, NULL));
    assert_false(hs("badbe", NULL, 0, NULL));
    assert_false(hs("badmc", NULL, 0, NULL));
    assert_true(hs("v6", NULL, 0, NULL));
    assert_true(hs("on", NULL, 0, NULL));
    struct psk_record rec;
    assert_true(psk_redis_cached(atomic_load(&G.store), "on", 2, &rec));
    assert_int_equal(rec.max_conn, 3);
    assert_string_equal(rec.backend, "127.0.0.1:9");
    assert_false(psk_redis_cached(atomic_load(&G.store), "off", 3, &rec));
    /* SHA-384: the key with its hash; the same key offered as SHA-256 fails */
    struct client big = {.identity = "big", .key = KEY2, .key_len = sizeof(KEY2),
                         .hash = TERN_PSK_HASH_SHA384};
    assert_int_equal(handshakes(&big, 1, NULL), 1);
    assert_false(hs("big", KEY2, sizeof(KEY2), NULL));
    /* from the cache now: the refusals inline, with their reasons */
    struct psk_redis_stats before = stats();
    assert_true(hs("dev1", NULL, 0, NULL));
    assert_false(hs("off", NULL, 0, NULL));
    assert_string_equal(last_why(why, sizeof(why)), "disabled");
    assert_false(hs("nobody", NULL, 0, NULL));
    assert_string_equal(last_why(why, sizeof(why)), "unknown");
    struct psk_redis_stats after = stats();
    assert_int_equal(after.hits - before.hits, 1);
    assert_int_equal(after.negative_hits - before.negative_hits, 2);
    assert_int_equal(after.misses, before.misses);
    assert_int_equal(after.found, before.found);

    /* 8 handshakes of one new identity at once: one read of Redis */
    rcmd("HSET tern:psk:crowd key %s", KEY_HEX);
    before = stats();
    struct client cs[8];
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < 8; i++) {
        snprintf(cs[i].identity, sizeof(cs[i].identity), "crowd");
    }
    assert_int_equal(handshakes(cs, 8, NULL), 8);
    after = stats();
    assert_int_equal(after.found - before.found, 1);
    assert_int_equal(after.inflight, 0);
    assert_true(after.entries >= 6);
}

static void test_psk_redis__publish_replaces_a_negative_entry(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    /* no keyspace events: only the PUBLISH can tell the store */
    rcmd("CONFIG SET notify-keyspace-events %s", "");
    store_new(0, 0, 500);
    assert_false(hs("late", NULL, 0, NULL));
    rcmd("HSET tern:psk:late key %s", KEY_HEX);
    struct psk_redis_stats before = stats();
    assert_false(hs("late", NULL, 0, NULL)); /* the negative entry (5 s) */
    assert_int_equal(stats().negative_hits - before.negative_hits, 1);
    rcmd("PUBLISH tern:psk:invalidate late");
    uint64_t t0 = ts_now_ms();
    bool ok = false;
    while (!ok && ts_now_ms() - t0 < 1000) {
        ok = hs("late", NULL, 0, NULL);
    }
    assert_true(ok);
    ts_log("negative entry replaced %llu ms after the PUBLISH",
           (unsigned long long)(ts_now_ms() - t0));
    assert_true(stats().invalidations >= 1);
    /* "*": a changed key is read again */
    assert_true(hs("late", NULL, 0, NULL));
    rcmd("HSET tern:psk:late key %s", KEY2_HEX);
    rcmd("PUBLISH tern:psk:invalidate *");
    t0 = ts_now_ms();
    ok = false;
    while (!ok && ts_now_ms() - t0 < 1000) {
        ok = hs("late", KEY2, sizeof(KEY2), NULL);
    }
    assert_true(ok);
    rcmd("CONFIG SET notify-keyspace-events Kgh");
}

static void test_psk_redis__keyspace_removal_reports_on_removed(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:gone1 key %s", KEY_HEX);
    rcmd("HSET tern:psk:gone2 key %s", KEY_HEX);
    rcmd("HSET tern:psk:stays key %s", KEY_HEX);
    store_new(0, 0, 500);
    assert_true(hs("gone1", NULL, 0, NULL));
    assert_true(hs("gone2", NULL, 0, NULL));
    assert_true(hs("stays", NULL, 0, NULL));
    /* no PUBLISH: the keyspace notifications tell */
    rcmd("HDEL tern:psk:gone1 key");
    rcmd("DEL tern:psk:gone2");
    rcmd("HSET tern:psk:stays max_conn 7");
    bool ok = false;
    TS_WAIT_UNTIL(ok, was_removed("gone1") && was_removed("gone2"), 1000);
    assert_true(ok);
    assert_false(was_removed("stays"));
    assert_false(hs("gone1", NULL, 0, NULL));
    assert_false(hs("gone2", NULL, 0, NULL));
    struct psk_record rec = {0};
    TS_WAIT_UNTIL(ok, psk_redis_cached(atomic_load(&G.store), "stays", 5, &rec) &&
                          rec.max_conn == 7, 1000);
    assert_true(ok);
    assert_true(hs("stays", NULL, 0, NULL));
    assert_int_equal(stats().removed, 2);
    /* disabling counts as removal too */
    rcmd("HSET tern:psk:stays disabled yes");
    TS_WAIT_UNTIL(ok, was_removed("stays"), 1000);
    assert_true(ok);
    assert_false(hs("stays", NULL, 0, NULL));
}

static void test_psk_redis__outage_and_restart(void **state)
{
    (void)state;
    char why[32];
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:kept key %s", KEY_HEX);
    rcmd("HSET tern:psk:dropped key %s", KEY_HEX);
    rcmd("HSET tern:psk:rekeyed key %s", KEY_HEX);
    struct psk_redis *s = store_new(0, 0, 500);
    assert_true(hs("kept", NULL, 0, NULL));
    assert_true(hs("dropped", NULL, 0, NULL));
    assert_true(hs("rekeyed", NULL, 0, NULL));
    assert_false(hs("newcomer", NULL, 0, NULL)); /* a negative entry */

    /* the dataset Redis will come back with, made on a scratch server: "dropped" removed,
     * "rekeyed" with another key, "newcomer" added */
    uint16_t main_port = G.redis_port;
    redisContext *main_ctl = G.ctl;
    pid_t main_pid = G.redis_pid;
    G.redis_port = ts_unused_port();
    assert_int_equal(redis_start("after.rdb"), 0); /* no such file yet: empty */
    rcmd("HSET tern:psk:kept key %s", KEY_HEX);
    rcmd("HSET tern:psk:rekeyed key %s", KEY2_HEX);
    rcmd("HSET tern:psk:newcomer key %s", KEY_HEX);
    rcmd("SAVE");
    redis_kill();
    G.redis_port = main_port;
    G.ctl = main_ctl;
    G.redis_pid = main_pid;

    /* Redis goes: the cache serves what it knows, the rest is refused at once */
    redis_kill();
    bool down = false;
    TS_WAIT_UNTIL(down, !psk_redis_up(s), 3000);
    assert_true(down);
    uint64_t ms = 0;
    assert_true(hs("kept", NULL, 0, &ms));
    struct psk_redis_stats before = stats();
    assert_false(hs("stranger", NULL, 0, &ms));
    ts_log("an unknown identity refused in %llu ms while Redis is down",
           (unsigned long long)ms);
    assert_true(ms < 400); /* the command timeout is 500 ms: nothing waited for it */
    assert_string_equal(last_why(why, sizeof(why)), "unavailable");
    assert_int_equal(stats().unavailable - before.unavailable, 1);
    assert_true(stats().outages >= 1);
    assert_true(stats().down_since_ms > 0);

    /* Redis comes back with the changes: the store reconnects, drops its negatives and reads
     * every identity it holds again */
    assert_int_equal(redis_start("after.rdb"), 0);
    bool ok = false;
    TS_WAIT_UNTIL(ok, psk_redis_up(s), 8000);
    assert_true(ok);
    TS_WAIT_UNTIL(ok, was_removed("dropped"), 2000);
    assert_true(ok);
    assert_false(was_removed("kept"));
    assert_false(was_removed("rekeyed"));
    assert_false(hs("dropped", NULL, 0, NULL));
    assert_true(hs("kept", NULL, 0, NULL));
    assert_true(hs("newcomer", NULL, 0, NULL));
    TS_WAIT_UNTIL(ok, hs("rekeyed", KEY2, sizeof(KEY2), NULL), 2000);
    assert_true(ok);
    assert_int_equal(stats().down_since_ms, 0);
}

struct sleeper {
    pthread_t t;
    uint16_t port;
    int seconds;
};

static void *debug_sleep(void *arg)
{
    struct sleeper *sl = arg;
    redisContext *c = redisConnect("127.0.0.1", sl->port);
    if (c != NULL && c->err == 0) {
        freeReplyObject(redisCommand(c, "DEBUG SLEEP %d", sl->seconds));
    }
    if (c != NULL) {
        redisFree(c);
    }
    return NULL;
}

static void test_psk_redis__slow_redis_does_not_slow_cached_handshakes(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:cached key %s", KEY_HEX);
    store_new(0, 1, 500);
    assert_true(hs("cached", NULL, 0, NULL));
    struct sleeper sl = {.port = G.redis_port, .seconds = 2};
    assert_int_equal(pthread_create(&sl.t, NULL, debug_sleep, &sl), 0);
    ts_sleep_ms(100); /* Redis is asleep now */
    uint64_t t0 = ts_now_ms(), ms = 0;
    assert_true(hs("cached", NULL, 0, &ms));
    ts_log("a cached identity handshook in %llu ms while Redis slept 2 s",
           (unsigned long long)ms);
    assert_true(ms < 500);
    /* a miss waits for the command timeout (500 ms) and is refused; with max_inflight 1, a
     * second miss meanwhile is refused at once as overload */
    struct client cs[2];
    memset(cs, 0, sizeof(cs));
    snprintf(cs[0].identity, sizeof(cs[0].identity), "miss-1");
    snprintf(cs[1].identity, sizeof(cs[1].identity), "miss-2");
    struct psk_redis_stats before = stats();
    assert_int_equal(handshakes(cs, 2, &ms), 0);
    struct psk_redis_stats after = stats();
    assert_int_equal(after.overload - before.overload, 1);
    assert_true(after.errors - before.errors >= 1);
    assert_true(ts_now_ms() - t0 < 1900); /* within the sleep: nothing waited for Redis */
    pthread_join(sl.t, NULL);
    bool ok = false;
    TS_WAIT_UNTIL(ok, psk_redis_up(atomic_load(&G.store)), 8000);
    assert_true(ok);
    assert_int_equal(stats().inflight, 0);
}

/* "*" revalidates every cached identity, REVAL_WINDOW (256) reads at a time. */
static void test_psk_redis__star_revalidates_many_identities(void **state)
{
    (void)state;
    enum { N = 520, BATCH = 40 };
    rcmd("FLUSHALL");
    rcmd("CONFIG SET notify-keyspace-events %s", "");
    for (int i = 0; i < N; i++) {
        rcmd("HSET tern:psk:many-%d key %s", i, KEY_HEX);
    }
    store_new(0, 0, 500);
    static struct client cs[BATCH];
    for (int i = 0; i < N; i += BATCH) {
        int n = N - i < BATCH ? N - i : BATCH;
        memset(cs, 0, sizeof(cs));
        for (int k = 0; k < n; k++) {
            snprintf(cs[k].identity, sizeof(cs[k].identity), "many-%d", i + k);
        }
        assert_int_equal(handshakes(cs, n, NULL), n);
    }
    assert_int_equal(stats().entries, N);
    /* every third removed, unseen (no keyspace events), then "*" */
    int removed = 0;
    for (int i = 0; i < N; i += 3, removed++) {
        rcmd("DEL tern:psk:many-%d", i);
    }
    struct psk_redis_stats before = stats();
    uint64_t t0 = ts_now_ms();
    rcmd("PUBLISH tern:psk:invalidate *");
    bool ok = false;
    TS_WAIT_UNTIL(ok, stats().removed - before.removed == (uint64_t)removed &&
                          stats().found - before.found == (uint64_t)(N - removed), 5000);
    uint64_t took = ts_now_ms() - t0;
    struct psk_redis_stats after = stats();
    ts_log("'*': %llu removed, %llu found again, %llu errors, in %llu ms",
           (unsigned long long)(after.removed - before.removed),
           (unsigned long long)(after.found - before.found),
           (unsigned long long)(after.errors - before.errors), (unsigned long long)took);
    assert_true(ok);
    /* paced at 2,000 reads a second after a burst of 256: 520 reads take at least 132 ms (a
     * lower bound: a slow machine only makes it longer) */
    assert_true(took >= 100);
    assert_int_equal(after.errors, before.errors);
    assert_false(hs("many-0", NULL, 0, NULL));
    assert_true(hs("many-1", NULL, 0, NULL));
    rcmd("CONFIG SET notify-keyspace-events Kgh");
}

static void block_task(tern_reactor *r, void *arg)
{
    (void)r;
    (void)arg;
    atomic_store(&blocked, true);
    for (int i = 0; i < 10000 && !atomic_load(&unblock); i++) {
        ts_sleep_ms(1);
    }
}

static void noop_task(tern_reactor *r, void *arg)
{
    (void)r;
    (void)arg;
}

/* The answer to a deferred lookup meets a full mailbox on the device's reactor: it waits on
 * the retry list and gets through once the reactor runs again. */
static void test_psk_redis__answer_waits_for_a_full_mailbox(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:patient key %s", KEY_HEX);
    store_new(0, 0, 3000); /* commands may wait 3 s */
    G.saved_port = G.port;
    tern_runtime *srt = G.extra_srt = server_runtime(16, &G.port);
    struct sleeper sl = {.port = G.redis_port, .seconds = 1};
    assert_int_equal(pthread_create(&sl.t, NULL, debug_sleep, &sl), 0);
    ts_sleep_ms(100);
    struct client c = {.identity = "patient", .key = KEY, .key_len = sizeof(KEY)};
    assert_int_equal(ts_post(tern_runtime_reactor(G.crt, 0), start_client, &c, 1000), 0);
    bool ok = false;
    TS_WAIT_UNTIL(ok, stats().inflight == 1, 1000);
    assert_true(ok);
    /* the server's reactor stops, and its mailbox fills */
    atomic_store(&unblock, false);
    atomic_store(&blocked, false);
    tern_reactor *r = tern_runtime_reactor(srt, 0);
    assert_int_equal(ts_post(r, block_task, NULL, 1000), 0);
    TS_WAIT_UNTIL(ok, atomic_load(&blocked), 1000); /* taken out of the mailbox: it is full */
    assert_true(ok);
    int posted = 0;
    while (posted < 100000 && tern_reactor_post(r, noop_task, NULL) == 0) {
        posted++;
    }
    assert_true(posted < 100000);
    pthread_join(sl.t, NULL); /* Redis answers now; the mailbox cannot take the answer */
    ts_sleep_ms(200);
    assert_int_equal(atomic_load(&c.result), 0);
    assert_int_equal(stats().inflight, 1);
    assert_int_equal(stats().found, 1);
    atomic_store(&unblock, true);
    TS_WAIT_UNTIL(ok, atomic_load(&c.result) != 0, 3000);
    assert_true(ok);
    assert_int_equal(atomic_load(&c.result), 1);
    TS_WAIT_UNTIL(ok, atomic_load(&c.gone), 2000);
    assert_int_equal(stats().inflight, 0);
}

static void test_psk_redis__free_refuses_pending_lookups(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    struct psk_redis *s = store_new(0, 0, 500);
    struct sleeper sl = {.port = G.redis_port, .seconds = 1};
    assert_int_equal(pthread_create(&sl.t, NULL, debug_sleep, &sl), 0);
    ts_sleep_ms(100);
    struct client c = {.identity = "pending", .key = KEY, .key_len = sizeof(KEY)};
    assert_int_equal(ts_post(tern_runtime_reactor(G.crt, 0), start_client, &c, 1000), 0);
    bool ok = false;
    TS_WAIT_UNTIL(ok, stats().inflight == 1, 1000);
    assert_true(ok);
    /* freed while its HMGET waits for the sleeping Redis: refused now, not at the timeout */
    atomic_store(&G.store, NULL);
    uint64_t t0 = ts_now_ms();
    psk_redis_free(s);
    TS_WAIT_UNTIL(ok, atomic_load(&c.result) != 0, 2000);
    assert_true(ok);
    assert_int_equal(atomic_load(&c.result), -1);
    ts_log("a pending lookup refused %llu ms after psk_redis_free",
           (unsigned long long)(ts_now_ms() - t0));
    assert_true(ts_now_ms() - t0 < 400);
    TS_WAIT_UNTIL(ok, atomic_load(&c.gone), 2000);
    assert_true(ok);
    pthread_join(sl.t, NULL);
}

static void test_psk_redis__stale_entry_served_and_refreshed(void **state)
{
    (void)state;
    rcmd("FLUSHALL");
    rcmd("HSET tern:psk:aging key %s", KEY_HEX);
    store_new(1, 0, 500); /* TTL 1 s */
    assert_true(hs("aging", NULL, 0, NULL));
    struct psk_redis_stats before = stats();
    ts_sleep_ms(1200);
    assert_true(hs("aging", NULL, 0, NULL)); /* stale: answered, one refresh queued */
    bool ok = false;
    TS_WAIT_UNTIL(ok, stats().found - before.found == 1, 1000);
    assert_true(ok);
    struct psk_redis_stats after = stats();
    assert_int_equal(after.stale_hits - before.stale_hits, 1);
    assert_true(hs("aging", NULL, 0, NULL)); /* fresh again */
    assert_int_equal(stats().hits - after.hits, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_psk_redis__found_unknown_disabled_sha384, teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__publish_replaces_a_negative_entry,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__keyspace_removal_reports_on_removed,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__stale_entry_served_and_refreshed,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__slow_redis_does_not_slow_cached_handshakes,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__free_refuses_pending_lookups, teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__answer_waits_for_a_full_mailbox,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__star_revalidates_many_identities,
                                  teardown_store),
        cmocka_unit_test_teardown(test_psk_redis__outage_and_restart, teardown_store),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

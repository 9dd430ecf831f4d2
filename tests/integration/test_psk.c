/* SPDX-License-Identifier: MIT */
/*
 * PSK end to end in one process: a PSK server on one reactor answers identities inline or
 * from another thread; clients on a second runtime connect with tern_socket_set_psk.
 * The ordering case is the point of the design: with one server reactor, handshakes whose
 * lookups are fast complete while slow lookups are still waiting. TLS 1.3 keys carry a hash
 * (tern_psk_hash): every suite of it works, a client without one is told "no shared suite".
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t OTHER_KEY[16] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

#define MAX_CLIENTS 128

typedef struct fixture {
    tern_runtime *srt, *crt;
    uint16_t port;
    tern_runtime *srt2; /* a store on 1 PSK worker, queue 16, 20 pending, 1.5 s timeout */
    uint16_t port2;
    /* the stores' gates: slow lookups wait for the fast handshakes, hanging ones for the end */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_cond;
    int fast_done, fast_expected;
    bool hang_open;
    _Atomic int events, encrypted_server, order_next;
    _Atomic int done, ok, failed;
    _Atomic int slow_answered;
    int order[MAX_CLIENTS]; /* encrypted order on the server: client number */
    _Atomic int first_fast_done_before_slow;
    /* the server's last failed handshake, for the tests that check its message */
    pthread_mutex_t err_lock;
    char server_error[512];
} fixture;

static fixture *F;

/* The threads that answer slow lookups: joined before the runtime goes away (a thread still
 * inside tern_psk_authenticator_complete must not outlive the reactor it posts to). */
static pthread_t slow_threads[MAX_CLIENTS * 4];
static _Atomic int slow_count;

static void join_slow_threads(void)
{
    int n = atomic_exchange(&slow_count, 0);
    for (int i = 0; i < n; i++) {
        pthread_join(slow_threads[i], NULL);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- server ------------------------------------------------------------------------------ */

static void *slow_lookup(void *arg)
{
    tern_psk_authenticator *a = arg;
    usleep(200 * 1000); /* a slow store */
    atomic_fetch_add(&F->slow_answered, 1);
    int rc = tern_psk_authenticator_complete(a, KEY, sizeof(KEY));
    assert_true(rc == 0 || rc == TERN_ECANCELED);
    return NULL;
}

/* "slow384-N": a SHA-384 key from another thread (the hash set there, before completing). */
static void *slow_lookup384(void *arg)
{
    tern_psk_authenticator *a = arg;
    usleep(50 * 1000);
    assert_int_equal(tern_psk_authenticator_set_key_hash(a, TERN_PSK_HASH_SHA384), 0);
    int rc = tern_psk_authenticator_complete(a, KEY, sizeof(KEY));
    assert_true(rc == 0 || rc == TERN_ECANCELED);
    return NULL;
}

/* Waits (bounded: 10 s) until @p open says so. */
static void gate_wait(bool (*open)(void))
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&F->gate_lock);
    while (!open()) {
        if (pthread_cond_timedwait(&F->gate_cond, &F->gate_lock, &until) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&F->gate_lock);
}

static bool fast_all_done(void)
{
    return F->fast_done >= F->fast_expected;
}

static bool hang_released(void)
{
    return F->hang_open;
}

/* The store on the PSK workers, for identities the event leaves unanswered:
 * "store-fast-N" at once; "store-slow-N" only once every fast handshake of the test is done
 * (so the order of completion proves that they never waited behind a slow lookup);
 * "store-hang-N" until the test ends; "store-error-N" fails; "store-short-N" returns an 8-byte
 * key (a store error); anything else is unknown. */
static enum tern_psk_lookup_result store_lookup(void *ctx, const void *identity, size_t len,
                                                uint8_t *key, size_t *key_len)
{
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)len, (const char *)identity);
    assert_ptr_equal(ctx, F);
    if (strncmp(name, "store-slow-", 11) == 0) {
        gate_wait(fast_all_done);
    } else if (strncmp(name, "store-hang-", 11) == 0) {
        gate_wait(hang_released);
    } else if (strncmp(name, "store-error-", 12) == 0) {
        return TERN_PSK_LOOKUP_ERROR;
    } else if (strncmp(name, "store-short-", 12) == 0) {
        memcpy(key, KEY, 8);
        *key_len = 8;
        return TERN_PSK_FOUND;
    } else if (strncmp(name, "store-sha384-", 13) == 0) {
        memcpy(key, KEY, sizeof(KEY));
        *key_len = sizeof(KEY);
        return TERN_PSK_FOUND_SHA384;
    } else if (strncmp(name, "store-fast-", 11) != 0) {
        return TERN_PSK_UNKNOWN;
    }
    memcpy(key, KEY, sizeof(KEY));
    *key_len = sizeof(KEY);
    return TERN_PSK_FOUND;
}

/* Identities: "fast-N" answered inline, "slow-N" by a thread after 200 ms, "unknown-N"
 * never (unknown), "wrong-N" with another key, "sha384-N" inline with a SHA-384 key,
 * "slow384-N" by a thread with one. */
static void on_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    tern_buf id = tern_psk_authenticator_identity(a);
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)id.len, (const char *)id.base);
    atomic_fetch_add(&F->events, 1);
    assert_string_equal(tern_psk_authenticator_identity_hint(a), "tern-test");
    if (strncmp(name, "fast-", 5) == 0) {
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, sizeof(KEY)), 0);
    } else if (strncmp(name, "slow-", 5) == 0) {
        int k = atomic_fetch_add(&slow_count, 1);
        assert_true(k < MAX_CLIENTS * 4);
        assert_int_equal(pthread_create(&slow_threads[k], NULL, slow_lookup,
                                        tern_psk_authenticator_defer(a)), 0);
    } else if (strncmp(name, "sha384-", 7) == 0) {
        assert_int_equal(tern_psk_authenticator_set_key_hash(a, (enum tern_psk_hash)7),
                         TERN_EINVAL);
        assert_int_equal(tern_psk_authenticator_set_key_hash(a, TERN_PSK_HASH_SHA384), 0);
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, sizeof(KEY)), 0);
    } else if (strncmp(name, "slow384-", 8) == 0) {
        int k = atomic_fetch_add(&slow_count, 1);
        assert_true(k < MAX_CLIENTS * 4);
        assert_int_equal(pthread_create(&slow_threads[k], NULL, slow_lookup384,
                                        tern_psk_authenticator_defer(a)), 0);
    } else if (strncmp(name, "wrong-", 6) == 0) {
        assert_int_equal(tern_psk_authenticator_complete(a, OTHER_KEY, sizeof(OTHER_KEY)), 0);
    } else if (strncmp(name, "short-", 6) == 0) {
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, 8), TERN_EINVAL); /* too short */
    }
}

static void on_server_encrypted(tern_socket *s, void *user)
{
    atomic_fetch_add(&F->encrypted_server, 1);
}

static void on_server_read(tern_socket *s, void *user)
{
    char buf[256];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static void on_server_disconnected(tern_socket *s, int reason, void *user)
{
    if (reason < 0 && !tern_socket_is_encrypted(s)) {
        pthread_mutex_lock(&F->err_lock);
        snprintf(F->server_error, sizeof(F->server_error), "%s", tern_socket_error_string(s));
        pthread_mutex_unlock(&F->err_lock);
    }
}

static const tern_socket_events server_events = {
    .psk_authentication_required = on_psk,
    .encrypted = on_server_encrypted,
    .ready_read = on_server_read,
    .disconnected = on_server_disconnected,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &server_events, NULL);
    assert_int_equal(tern_socket_start_server_encryption(s), 0);
}

/* ---- clients ------------------------------------------------------------------------------- */

typedef struct client {
    char identity[32];
    const uint8_t *key;
    bool tls12;
    uint16_t port; /* 0: the first server */
    int number;
    tern_socket *s;
    int result; /* 1 echoed, -1 failed */
    const char *ciphers; /* the client's cipher list, or NULL: the PSK default */
    enum tern_psk_hash hash;  /* the key's TLS 1.3 hash */
    char suite[48];      /* the suite negotiated */
    char error[256];     /* the client's error string, if it failed */
} client;

static void on_client_encrypted(tern_socket *s, void *user)
{
    client *c = user;
    snprintf(c->suite, sizeof(c->suite), "%s", tern_socket_session_cipher(s));
    tern_socket_write(s, "ping\n", 5);
}

static void on_client_read(tern_socket *s, void *user)
{
    client *c = user;
    char line[16];
    if (tern_socket_read_line(s, line, sizeof(line)) > 0 && strcmp(line, "ping\n") == 0) {
        c->result = 1;
        int k = atomic_fetch_add(&F->order_next, 1);
        F->order[k] = c->number;
        if (strncmp(c->identity, "store-fast-", 11) == 0) {
            pthread_mutex_lock(&F->gate_lock);
            F->fast_done++;
            pthread_cond_broadcast(&F->gate_cond);
            pthread_mutex_unlock(&F->gate_lock);
        }
        tern_socket_close(s);
    }
}

static void on_client_disconnected(tern_socket *s, int reason, void *user)
{
    client *c = user;
    if (getenv("TEST_PSK_DEBUG") != NULL && c->result != 1) {
        fprintf(stderr, "%s: %s\n", c->identity, tern_socket_error_string(s));
    }
    if (c->result == 0) {
        c->result = -1;
        snprintf(c->error, sizeof(c->error), "%s", tern_socket_error_string(s));
    }
    atomic_fetch_add(c->result == 1 ? &F->ok : &F->failed, 1);
    atomic_fetch_add(&F->done, 1);
    tern_socket_free(s);
}

static const tern_socket_events client_events = {
    .encrypted = on_client_encrypted,
    .ready_read = on_client_read,
    .disconnected = on_client_disconnected,
};

static void start_client(tern_reactor *r, void *arg)
{
    client *c = arg;
    if (r == NULL) {
        return;
    }
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (c->tls12) {
        assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                            TERN_SSL_PROTOCOL_TLS1_2), 0);
    }
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    if (c->ciphers != NULL) {
        assert_int_equal(tern_ssl_config_set_ciphers(cfg, c->ciphers), 0);
    }
    c->s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(c->s, cfg), 0);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_socket_set_psk_hash(c->s, c->hash), TERN_EINVAL); /* no key yet */
    assert_int_equal(tern_socket_set_psk(c->s, c->identity, strlen(c->identity), c->key, 16), 0);
    assert_int_equal(tern_socket_set_psk_hash(c->s, c->hash), 0);
    tern_socket_set_events(c->s, &client_events, c);
    assert_int_equal(tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1",
                                                           c->port != 0 ? c->port : F->port,
                                                           NULL), 0);
}

static void run_clients(client *cs, int n, unsigned timeout_ms)
{
    atomic_store(&F->done, 0);
    atomic_store(&F->ok, 0);
    atomic_store(&F->failed, 0);
    atomic_store(&F->order_next, 0);
    for (int i = 0; i < n; i++) {
        cs[i].number = i;
        cs[i].result = 0;
        cs[i].suite[0] = cs[i].error[0] = '\0';
        assert_int_equal(tern_reactor_post(tern_runtime_reactor(F->crt, 0), start_client, &cs[i]), 0);
    }
    uint64_t deadline = now_ms() + timeout_ms;
    while (atomic_load(&F->done) < n && now_ms() < deadline) {
        usleep(2000);
    }
    assert_int_equal(atomic_load(&F->done), n);
}

/* ---- fixture ---------------------------------------------------------------------------------- */

static int setup(void **state)
{
    F = calloc(1, sizeof(*F));
    pthread_mutex_init(&F->gate_lock, NULL);
    pthread_mutex_init(&F->err_lock, NULL);
    pthread_cond_init(&F->gate_cond, NULL);
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1; /* one server reactor: a slow lookup must not hold the others */
    o.psk_workers = 16;
    F->srt = tern_runtime_new(&o);
    o.psk_workers = 2;
    F->crt = tern_runtime_new(&o);
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, "tern-test"), 0);
    assert_int_equal(tern_ssl_config_set_psk_lookup(cfg, store_lookup, F), 0);
    tern_server *srv = tern_server_new(F->srt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    F->port = tern_server_port(srv);
    assert_int_equal(tern_runtime_start(F->srt), 0);

    /* the bounded server: 1 PSK worker, 16 queued, 20 pending, lookups time out at 1.5 s */
    o.psk_workers = 1;
    o.psk_queue_capacity = 16;
    F->srt2 = tern_runtime_new(&o);
    cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, "tern-test"), 0);
    assert_int_equal(tern_ssl_config_set_psk_lookup(cfg, store_lookup, F), 0);
    assert_int_equal(tern_ssl_config_set_psk_limits(cfg, 1500, 20), 0);
    assert_int_equal(tern_ssl_config_set_psk_limits(cfg, 1500, 0), TERN_EINVAL);
    srv = tern_server_new(F->srt2, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    F->port2 = tern_server_port(srv);
    assert_int_equal(tern_runtime_start(F->srt2), 0);
    assert_int_equal(tern_runtime_start(F->crt), 0);
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    join_slow_threads();
    pthread_mutex_lock(&F->gate_lock);
    F->hang_open = true; /* lets blocked store calls return: the pools can then join */
    pthread_cond_broadcast(&F->gate_cond);
    pthread_mutex_unlock(&F->gate_lock);
    tern_runtime_stop(F->srt2, 0);
    tern_runtime_join(F->srt2);
    tern_runtime_free(F->srt2);
    tern_runtime_stop(F->crt, 0);
    tern_runtime_join(F->crt);
    tern_runtime_stop(F->srt, 0);
    tern_runtime_join(F->srt);
    tern_runtime_free(F->crt);
    tern_runtime_free(F->srt);
    pthread_cond_destroy(&F->gate_cond);
    pthread_mutex_destroy(&F->gate_lock);
    pthread_mutex_destroy(&F->err_lock);
    free(F);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_psk__tls13_and_tls12_inline_and_deferred(void **state)
{
    client cs[4] = {
        {.identity = "fast-13", .key = KEY, .tls12 = false},
        {.identity = "fast-12", .key = KEY, .tls12 = true},
        {.identity = "slow-13", .key = KEY, .tls12 = false},
        {.identity = "slow-12", .key = KEY, .tls12 = true},
    };
    run_clients(cs, 4, 10000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cs[i].result, 1);
    }
}

static void test_psk__unknown_identity_wrong_key_and_bad_answers_fail(void **state)
{
    tern_stats before, after;
    tern_runtime_stats(F->srt, &before);
    client cs[5] = {
        {.identity = "unknown-13", .key = KEY, .tls12 = false},
        {.identity = "unknown-12", .key = KEY, .tls12 = true},
        {.identity = "wrong-13", .key = KEY, .tls12 = false},
        {.identity = "wrong-12", .key = KEY, .tls12 = true},
        {.identity = "short-13", .key = KEY, .tls12 = false},
    };
    run_clients(cs, 5, 10000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cs[i].result, -1);
    }
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.handshake_failures - before.handshake_failures, 5);
    /* no oracle: the client sees the same failure for an unknown identity and a wrong key */
    assert_string_equal(cs[0].error, cs[2].error);
    assert_string_equal(cs[1].error, cs[3].error);
    assert_null(strstr(cs[0].error, "no shared suite"));
}

/* Waits (bounded: 5 s) until the server's last failed handshake names @p identity, and
 * copies its error string into @p out. */
static void server_error_for(const char *identity, char *out, size_t len)
{
    char quoted[64];
    uint64_t deadline = now_ms() + 5000;
    bool found = false;
    snprintf(quoted, sizeof(quoted), "\"%s\"", identity);
    do {
        pthread_mutex_lock(&F->err_lock);
        snprintf(out, len, "%s", F->server_error);
        pthread_mutex_unlock(&F->err_lock);
        found = strstr(out, quoted) != NULL;
        if (!found) {
            usleep(2000);
        }
    } while (!found && now_ms() < deadline);
    if (!found) {
        fail_msg("the server did not fail %s; its last error: %s", identity, out);
    }
}

static void test_psk__tls13_every_suite_of_the_key_hash(void **state)
{
    static const char *sha256_suites[] = {
        "TLS13-AES128-GCM-SHA256",
        "TLS13-CHACHA20-POLY1305-SHA256",
        "TLS13-AES128-CCM-SHA256",
        "TLS13-AES128-CCM-8-SHA256",
    };
    enum { N = 4 + 6 };
    static client cs[N];
    tern_stats before, after;
    tern_runtime_stats(F->srt, &before);
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < 4; i++) {
        /* SHA-256 keys, inline and from the store, with each SHA-256 suite alone */
        snprintf(cs[i].identity, sizeof(cs[i].identity), "%s-%d", i % 2 ? "store-fast" : "fast",
                 i);
        cs[i].ciphers = sha256_suites[i];
    }
    /* SHA-384 keys: inline, deferred to a thread, and from the store */
    snprintf(cs[4].identity, sizeof(cs[4].identity), "sha384-4");
    cs[4].ciphers = "TLS13-AES256-GCM-SHA384";
    snprintf(cs[5].identity, sizeof(cs[5].identity), "slow384-5");
    cs[5].ciphers = "TLS13-AES256-GCM-SHA384";
    snprintf(cs[6].identity, sizeof(cs[6].identity), "store-sha384-6");
    cs[6].ciphers = "TLS13-AES256-GCM-SHA384";
    /* the client's whole PSK list: the key's hash picks the suite */
    snprintf(cs[7].identity, sizeof(cs[7].identity), "sha384-7");
    snprintf(cs[8].identity, sizeof(cs[8].identity), "fast-8");
    /* the server's order wins among the suites of the hash that the client offers */
    snprintf(cs[9].identity, sizeof(cs[9].identity), "fast-9");
    cs[9].ciphers = "TLS13-AES128-CCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256";
    for (int i = 0; i < N; i++) {
        cs[i].key = KEY;
        cs[i].hash = i >= 4 && i <= 7 ? TERN_PSK_HASH_SHA384 : TERN_PSK_HASH_SHA256;
    }
    run_clients(cs, N, 10000);
    for (int i = 0; i < N; i++) {
        if (cs[i].result != 1) {
            fail_msg("%s (%s): %s", cs[i].identity, cs[i].ciphers ? cs[i].ciphers : "default",
                     cs[i].error);
        }
    }
    for (int i = 0; i < 4; i++) {
        assert_string_equal(cs[i].suite, sha256_suites[i]);
    }
    for (int i = 4; i <= 7; i++) {
        assert_string_equal(cs[i].suite, "TLS13-AES256-GCM-SHA384");
    }
    assert_string_equal(cs[8].suite, "TLS13-AES128-GCM-SHA256");
    assert_string_equal(cs[9].suite, "TLS13-CHACHA20-POLY1305-SHA256");
    join_slow_threads();
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.handshakes_psk - before.handshakes_psk, N);
    assert_int_equal(after.psk_no_suite - before.psk_no_suite, 0);
}

/* The client's error says it received a fatal alert, and when it names the alert, that it is
 * handshake_failure. */
static bool got_handshake_failure(const char *err)
{
    const char *named = strstr(err, "; received alert ");
    return strstr(err, "received alert") != NULL && strstr(err, "decrypt") == NULL &&
           strstr(err, "illegal_parameter") == NULL &&
           (named == NULL || strncmp(named + 17, "handshake_failure", 17) == 0);
}

static void test_psk__suite_mismatch_is_reported_as_such_not_as_a_wrong_key(void **state)
{
    tern_stats before, after;
    char err[512];
    client cs[1];

    static const struct {
        const char *identity, *ciphers;
        enum tern_psk_hash hash;
    } cases[] = {
        /* a SHA-256 key; the client offers (and binds with) SHA-384 only */
        {"fast-m1", "TLS13-AES256-GCM-SHA384", TERN_PSK_HASH_SHA384},
        /* a SHA-384 key; the client offers SHA-256 suites only */
        {"sha384-m2", "TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256",
         TERN_PSK_HASH_SHA256},
        /* a SHA-384 key the client binds with SHA-256 although it offers a SHA-384 suite */
        {"sha384-m3", NULL, TERN_PSK_HASH_SHA256},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tern_runtime_stats(F->srt, &before);
        memset(cs, 0, sizeof(cs));
        snprintf(cs[0].identity, sizeof(cs[0].identity), "%s", cases[i].identity);
        cs[0].key = KEY;
        cs[0].ciphers = cases[i].ciphers;
        cs[0].hash = cases[i].hash;
        run_clients(cs, 1, 10000);
        assert_int_equal(cs[0].result, -1);
        /* the client got an alert: handshake_failure (RFC 8446 4.1.1, 9.1; the interop test
         * reads its number from openssl), never the binder's */
        if (!got_handshake_failure(cs[0].error)) {
            fail_msg("case %zu: client: %s", i, cs[0].error);
        }
        server_error_for(cases[i].identity, err, sizeof(err));
        if (strstr(err, "no shared suite for this PSK") == NULL || strstr(err, "differs") != NULL) {
            fail_msg("case %zu: server: %s", i, err);
        }
        tern_runtime_stats(F->srt, &after);
        assert_int_equal(after.psk_no_suite - before.psk_no_suite, 1);
        assert_int_equal(after.psk_bad_key - before.psk_bad_key, 0);
        assert_int_equal(after.handshake_failures - before.handshake_failures, 1);
    }
    /* an unknown identity passes for a SHA-256 one: against a SHA-384-only client it fails
     * as "fast-m1" did on the wire, and the server still says what it was */
    tern_runtime_stats(F->srt, &before);
    memset(cs, 0, sizeof(cs));
    snprintf(cs[0].identity, sizeof(cs[0].identity), "unknown-m4");
    cs[0].key = KEY;
    cs[0].ciphers = "TLS13-AES256-GCM-SHA384";
    cs[0].hash = TERN_PSK_HASH_SHA384;
    run_clients(cs, 1, 10000);
    assert_int_equal(cs[0].result, -1);
    assert_true(got_handshake_failure(cs[0].error));
    server_error_for("unknown-m4", err, sizeof(err));
    if (strstr(err, "unknown identity") == NULL) {
        fail_msg("server: %s", err);
    }
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.psk_unknown - before.psk_unknown, 1);
    assert_int_equal(after.psk_no_suite - before.psk_no_suite, 0);
}

/* RFC 8446 4.2.11, 6.2: a binder that does not verify ("unable to ... validate a PSK binder")
 * is refused with decrypt_error. An unknown identity is answered with a random key, so it
 * fails the same way: the client reads the same alert and the same error for both, and only
 * the server's message says which it was. wolfSSL 5.9.2 sends illegal_parameter
 * (scripts/wolfssl-patches/0100-tls13-psk-binder-decrypt-error.patch). */
static void test_psk__tls13_wrong_key_and_unknown_identity_get_decrypt_error_alike(void **state)
{
    static const struct {
        const char *identity;
        const uint8_t *key;       /* the client's */
        enum tern_psk_hash hash;       /* the client binds with */
        const char *ciphers;      /* the client's */
        const char *server_says;  /* in the server's error string */
    } cases[] = {
        {"wrong-d1", KEY, TERN_PSK_HASH_SHA256, NULL, "the peer's key differs"},
        {"unknown-d2", KEY, TERN_PSK_HASH_SHA256, NULL, "unknown identity"},
        {"store-fast-d3", OTHER_KEY, TERN_PSK_HASH_SHA256, NULL, "the peer's key differs"},
        {"store-nobody-d4", KEY, TERN_PSK_HASH_SHA256, NULL, "unknown identity"},
        {"sha384-d5", OTHER_KEY, TERN_PSK_HASH_SHA384, "TLS13-AES256-GCM-SHA384",
         "the peer's key differs"},
    };
    enum { N = sizeof(cases) / sizeof(cases[0]) };
    char first[256] = "", err[512];
    client cs[1];
    tern_stats before, after;

    tern_runtime_stats(F->srt, &before);
    for (size_t i = 0; i < N; i++) {
        memset(cs, 0, sizeof(cs));
        snprintf(cs[0].identity, sizeof(cs[0].identity), "%s", cases[i].identity);
        cs[0].key = cases[i].key;
        cs[0].hash = cases[i].hash;
        cs[0].ciphers = cases[i].ciphers;
        run_clients(cs, 1, 10000);
        assert_int_equal(cs[0].result, -1);
        if (strstr(cs[0].error, "received alert decrypt_error") == NULL) {
            fail_msg("%s: client: %s", cases[i].identity, cs[0].error);
        }
        /* no oracle: the same error, word for word, whatever the cause */
        if (i == 0) {
            snprintf(first, sizeof(first), "%s", cs[0].error);
        } else if (strcmp(first, cs[0].error) != 0) {
            fail_msg("%s: client: \"%s\", for %s: \"%s\"", cases[i].identity, cs[0].error,
                     cases[0].identity, first);
        }
        server_error_for(cases[i].identity, err, sizeof(err));
        if (strstr(err, cases[i].server_says) == NULL ||
            strstr(err, "sent alert decrypt_error") == NULL) {
            fail_msg("%s: server: %s", cases[i].identity, err);
        }
    }
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.psk_bad_key - before.psk_bad_key, 3);
    assert_int_equal(after.psk_unknown - before.psk_unknown, 2);
    assert_int_equal(after.psk_no_suite - before.psk_no_suite, 0);
    assert_int_equal(after.handshake_failures - before.handshake_failures, N);
}

static void test_psk__slow_lookups_do_not_stall_fast_ones(void **state)
{
    enum { N = 20 };
    client cs[N];
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < N; i++) {
        /* even: slow (200 ms on a thread), odd: fast (inline) */
        snprintf(cs[i].identity, sizeof(cs[i].identity), "%s-%d", i % 2 == 0 ? "slow" : "fast", i);
        cs[i].key = KEY;
        cs[i].tls12 = i % 4 >= 2;
    }
    atomic_store(&F->slow_answered, 0);
    run_clients(cs, N, 15000);
    assert_int_equal(atomic_load(&F->ok), N);
    /* completion order: every fast handshake before any slow one (order, not wall time) */
    int seen_slow = 0;
    for (int k = 0; k < N; k++) {
        bool slow = F->order[k] % 2 == 0;
        if (slow) {
            seen_slow++;
        } else {
            assert_int_equal(seen_slow, 0);
        }
    }
    assert_int_equal(seen_slow, N / 2);
}

static void test_psk__store_lookups_on_workers_do_not_wait_behind_slow_ones(void **state)
{
    enum { N = 100, SLOW = 12 };
    static client cs[N];
    tern_stats before, after;
    tern_runtime_stats(F->srt, &before);
    memset(cs, 0, sizeof(cs));
    pthread_mutex_lock(&F->gate_lock);
    F->fast_done = 0;
    F->fast_expected = N - SLOW;
    pthread_mutex_unlock(&F->gate_lock);
    for (int i = 0; i < N; i++) {
        /* every 8th is slow (12 of 100), the rest fast; TLS 1.2 and 1.3 mixed */
        bool slow = i % 8 == 0 && i / 8 < SLOW;
        snprintf(cs[i].identity, sizeof(cs[i].identity), "store-%s-%d", slow ? "slow" : "fast", i);
        cs[i].key = KEY;
        cs[i].tls12 = i % 3 == 0;
    }
    run_clients(cs, N, 30000);
    assert_int_equal(atomic_load(&F->ok), N);
    /* every fast handshake completed while the slow lookups were still blocked in the store */
    int seen_slow = 0;
    for (int k = 0; k < N; k++) {
        if (strncmp(cs[F->order[k]].identity, "store-slow-", 11) == 0) {
            seen_slow++;
        } else {
            assert_int_equal(seen_slow, 0);
        }
    }
    assert_int_equal(seen_slow, SLOW);
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.psk_lookups - before.psk_lookups, N);
    assert_int_equal(after.psk_pending, 0);
}

static void test_psk__store_errors_and_unknown_identities_are_counted_apart(void **state)
{
    tern_stats before, after;
    tern_runtime_stats(F->srt, &before);
    client cs[4] = {
        {.identity = "store-error-13", .key = KEY, .tls12 = false},
        {.identity = "store-short-12", .key = KEY, .tls12 = true},
        {.identity = "store-nobody-13", .key = KEY, .tls12 = false},
        {.identity = "store-fast-wrong", .key = OTHER_KEY, .tls12 = true},
    };
    run_clients(cs, 4, 10000);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cs[i].result, -1);
    }
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.psk_store_errors - before.psk_store_errors, 2);
    assert_int_equal(after.psk_unknown - before.psk_unknown, 1);
    assert_int_equal(after.psk_bad_key - before.psk_bad_key, 1);
    assert_int_equal(after.handshake_failures - before.handshake_failures, 4);
}

static void test_psk__full_queue_and_pending_bound_refuse_and_lookups_time_out(void **state)
{
    enum { N = 24 };
    static client cs[N];
    tern_stats before, after;
    tern_runtime_stats(F->srt2, &before);
    memset(cs, 0, sizeof(cs));
    for (int i = 0; i < N; i++) {
        snprintf(cs[i].identity, sizeof(cs[i].identity), "store-hang-%d", i);
        cs[i].key = KEY;
        cs[i].tls12 = i % 2 == 0;
        cs[i].port = F->port2;
    }
    run_clients(cs, N, 20000);
    assert_int_equal(atomic_load(&F->failed), N);
    tern_runtime_stats(F->srt2, &after);
    uint64_t overload = after.psk_overload - before.psk_overload;
    uint64_t timeouts = after.psk_timeouts - before.psk_timeouts;
    /* 20 may wait (4 refused by the bound); of those, 1 is with the worker and 16 queued
     * (3 refused by the full queue; 1 more if the worker had not taken its first yet) */
    assert_true(overload == 7 || overload == 8);
    assert_int_equal(overload + timeouts, N);
    assert_int_equal(after.psk_pending, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psk__tls13_and_tls12_inline_and_deferred),
        cmocka_unit_test(test_psk__unknown_identity_wrong_key_and_bad_answers_fail),
        cmocka_unit_test(test_psk__tls13_every_suite_of_the_key_hash),
        cmocka_unit_test(test_psk__suite_mismatch_is_reported_as_such_not_as_a_wrong_key),
        cmocka_unit_test(test_psk__tls13_wrong_key_and_unknown_identity_get_decrypt_error_alike),
        cmocka_unit_test(test_psk__slow_lookups_do_not_stall_fast_ones),
        cmocka_unit_test(test_psk__store_lookups_on_workers_do_not_wait_behind_slow_ones),
        cmocka_unit_test(test_psk__store_errors_and_unknown_identities_are_counted_apart),
        cmocka_unit_test(test_psk__full_queue_and_pending_bound_refuse_and_lookups_time_out),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

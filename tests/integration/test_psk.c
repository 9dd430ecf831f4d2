/* SPDX-License-Identifier: MIT */
/*
 * PSK end to end in one process: a PSK server on one reactor answers identities inline or
 * from another thread; clients on a second runtime connect with tern_socket_set_psk.
 * The ordering case is the point of the design: with one server reactor, handshakes whose
 * lookups are fast complete while slow lookups are still waiting.
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

#define MAX_CLIENTS 32

typedef struct fixture {
    tern_runtime *srt, *crt;
    uint16_t port;
    _Atomic int events, encrypted_server, order_next;
    _Atomic int done, ok, failed;
    _Atomic int slow_answered;
    int order[MAX_CLIENTS]; /* encrypted order on the server: client number */
    _Atomic int first_fast_done_before_slow;
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

/* Identities: "fast-N" answered inline, "slow-N" by a thread after 200 ms, "unknown-N"
 * never (unknown), "wrong-N" with another key. */
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

static const tern_socket_events server_events = {
    .psk_authentication_required = on_psk,
    .encrypted = on_server_encrypted,
    .ready_read = on_server_read,
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
    int number;
    tern_socket *s;
    int result; /* 1 echoed, -1 failed */
} client;

static void on_client_encrypted(tern_socket *s, void *user)
{
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
        tern_socket_close(s);
    }
}

static void on_client_disconnected(tern_socket *s, int reason, void *user)
{
    client *c = user;
    if (c->result == 0) {
        c->result = -1;
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
    c->s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(c->s, cfg), 0);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_socket_set_psk(c->s, c->identity, strlen(c->identity), c->key, 16), 0);
    tern_socket_set_events(c->s, &client_events, c);
    assert_int_equal(tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1", F->port, NULL), 0);
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
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1; /* one server reactor: a slow lookup must not hold the others */
    F->srt = tern_runtime_new(&o);
    F->crt = tern_runtime_new(&o);
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, "tern-test"), 0);
    tern_server *srv = tern_server_new(F->srt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    F->port = tern_server_port(srv);
    assert_int_equal(tern_runtime_start(F->srt), 0);
    assert_int_equal(tern_runtime_start(F->crt), 0);
    *state = F;
    return 0;
}

static int teardown(void **state)
{
    join_slow_threads();
    tern_runtime_stop(F->crt, 0);
    tern_runtime_join(F->crt);
    tern_runtime_stop(F->srt, 0);
    tern_runtime_join(F->srt);
    tern_runtime_free(F->crt);
    tern_runtime_free(F->srt);
    free(F);
    return 0;
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_psk__tls13_and_tls12_inline_and_deferred(void **state)
{
    client cs[4] = {
        {"fast-13", KEY, false, 0, NULL, 0},
        {"fast-12", KEY, true, 0, NULL, 0},
        {"slow-13", KEY, false, 0, NULL, 0},
        {"slow-12", KEY, true, 0, NULL, 0},
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
        {"unknown-13", KEY, false, 0, NULL, 0},
        {"unknown-12", KEY, true, 0, NULL, 0},
        {"wrong-13", KEY, false, 0, NULL, 0},
        {"wrong-12", KEY, true, 0, NULL, 0},
        {"short-13", KEY, false, 0, NULL, 0},
    };
    run_clients(cs, 5, 10000);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cs[i].result, -1);
    }
    tern_runtime_stats(F->srt, &after);
    assert_int_equal(after.handshake_failures - before.handshake_failures, 5);
}

static void test_psk__slow_lookups_do_not_stall_fast_ones(void **state)
{
    enum { N = 20 };
    client cs[N];
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psk__tls13_and_tls12_inline_and_deferred),
        cmocka_unit_test(test_psk__unknown_identity_wrong_key_and_bad_answers_fail),
        cmocka_unit_test(test_psk__slow_lookups_do_not_stall_fast_ones),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

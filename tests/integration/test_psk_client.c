/* SPDX-License-Identifier: MIT */
/*
 * `psk_authentication_required` on a client (no tern_socket_set_psk): the client gives its
 * identity and key from the event.
 *   1. TLS 1.2: the event carries the server's identity hint "tern-test"; answered inline;
 *   2. TLS 1.2: deferred, answered 100 ms later from another thread;
 *   3. TLS 1.3: no hint, answered inline before the ClientHello;
 *   4. no identity, or a rejection: the handshake fails with TERN_E_TLS_HANDSHAKE and the
 *      server is told.
 *
 * The server (a runtime, one reactor) knows identity "dev1" and answers its key inline. The
 * client runs on a standalone reactor driven by the test thread (wait_for_* helpers); an
 * echo proves the key was right.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define MSG "psk hello\n"

static const uint8_t KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* ---- the server: knows "dev1" --------------------------------------------------------------- */

typedef struct srv {
    tern_runtime *rt;
    tern_server *srv;
    uint16_t port;
    _Atomic uint64_t encrypted, disconnected, failures;
} srv;

static void srv_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    (void)s;
    (void)user;
    tern_buf id = tern_psk_authenticator_identity(a);
    if (id.len == 4 && memcmp(id.base, "dev1", 4) == 0) {
        tern_psk_authenticator_complete(a, KEY, sizeof KEY);
    } else {
        tern_psk_authenticator_reject(a);
    }
}

static void srv_ready_read(tern_socket *s, void *user)
{
    (void)user;
    char buf[1024];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof buf)) > 0) {
        if (tern_socket_write(s, buf, (size_t)n) != 0) {
            tern_socket_abort(s);
            return;
        }
    }
}

static void srv_encrypted(tern_socket *s, void *user)
{
    srv *sv = user;
    atomic_fetch_add(&sv->encrypted, 1);
    srv_ready_read(s, user);
}

static void srv_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    srv *sv = user;
    if (reason < 0) {
        atomic_fetch_add(&sv->failures, 1);
    }
    atomic_fetch_add(&sv->disconnected, 1);
}

static const tern_socket_events srv_events = {
    .psk_authentication_required = srv_psk,
    .ready_read = srv_ready_read,
    .encrypted = srv_encrypted,
    .disconnected = srv_disconnected,
};

static void srv_incoming(tern_server *server, tern_socket *s, void *user)
{
    (void)server;
    tern_socket_set_events(s, &srv_events, user);
    if (tern_socket_start_server_encryption(s) != 0) {
        tern_socket_abort(s);
    }
}

/* ---- the client ------------------------------------------------------------------------------ */

enum answer { ANSWER_INLINE, ANSWER_DEFERRED, ANSWER_NO_IDENTITY, ANSWER_REJECT };

typedef struct cl {
    enum answer how;
    unsigned n_events;
    char hint[160];
    size_t max_id, max_key;
    pthread_t thread;
    bool thread_started;
    tern_psk_authenticator *deferred;
    int answer_rc; /* the other thread's, read after joining */
} cl;

static void *answer_later(void *arg)
{
    cl *c = arg;
    ts_sleep_ms(100);
    int rc = tern_psk_authenticator_set_identity(c->deferred, "dev1", 4);
    if (rc == 0) {
        rc = tern_psk_authenticator_complete(c->deferred, KEY, sizeof KEY);
    }
    c->answer_rc = rc;
    return NULL;
}

static void cl_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    (void)s;
    cl *c = user;
    c->n_events++;
    snprintf(c->hint, sizeof c->hint, "%s", tern_psk_authenticator_identity_hint(a));
    c->max_id = tern_psk_authenticator_maximum_identity_length(a);
    c->max_key = tern_psk_authenticator_maximum_key_length(a);
    switch (c->how) {
    case ANSWER_INLINE:
        assert_int_equal(tern_psk_authenticator_set_identity(a, "", 0), TERN_EINVAL);
        assert_int_equal(tern_psk_authenticator_set_identity(a, "dev1", 4), 0);
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, sizeof KEY), 0);
        break;
    case ANSWER_DEFERRED:
        c->deferred = tern_psk_authenticator_defer(a);
        c->thread_started = pthread_create(&c->thread, NULL, answer_later, c) == 0;
        break;
    case ANSWER_NO_IDENTITY:
        assert_int_equal(tern_psk_authenticator_complete(a, KEY, sizeof KEY), 0);
        break;
    case ANSWER_REJECT:
        assert_int_equal(tern_psk_authenticator_reject(a), 0);
        break;
    }
}

static const tern_socket_events cl_events = {
    .psk_authentication_required = cl_psk,
};

/* ---- fixture ----------------------------------------------------------------------------------- */

typedef struct fixture {
    srv sv;
    tern_reactor *r;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    f->sv.rt = ts_runtime_new(1, 0);
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (f->sv.rt == NULL || cfg == NULL || tern_ssl_config_enable_psk(cfg, "tern-test") != 0) {
        return -1;
    }
    f->sv.srv = tern_server_new(f->sv.rt, cfg, srv_incoming, &f->sv);
    tern_ssl_config_unref(cfg);
    if (f->sv.srv == NULL || tern_server_listen(f->sv.srv, "127.0.0.1", 0) != 0) {
        return -1;
    }
    f->sv.port = tern_server_port(f->sv.srv);
    if (tern_runtime_start(f->sv.rt) != 0) {
        return -1;
    }
    f->r = tern_reactor_new();
    return f->r != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tern_reactor_free(f->r);
    if (f->sv.rt != NULL) {
        tern_runtime_stop(f->sv.rt, 0);
        tern_runtime_join(f->sv.rt);
        tern_runtime_free(f->sv.rt);
    }
    free(f);
    return 0;
}

/* Connects a client of @p max_protocol answering as @p c says; returns the socket. */
static tern_socket *connect_client(fixture *f, cl *c, enum tern_ssl_protocol max_protocol)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                        max_protocol),
                     0);
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    tern_socket *s = tern_socket_new(f->r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    tern_ssl_config_unref(cfg);
    tern_socket_set_events(s, &cl_events, c);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", f->sv.port, NULL), 0);
    return s;
}

/* The handshake completes and an echo comes back: the key was right. */
static void expect_echo(tern_socket *s)
{
    assert_int_equal(tern_socket_write(s, MSG, strlen(MSG)), 0);
    int rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != 0) {
        fail_msg("wait_for_encrypted: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    }
    char buf[64] = {0};
    size_t got = 0;
    uint64_t deadline = ts_now_ms() + 5000;
    while (got < strlen(MSG) && ts_now_ms() < deadline) {
        assert_int_equal(tern_socket_wait_for_ready_read(s, 5000), 0);
        ssize_t n = tern_socket_read(s, buf + got, sizeof buf - 1 - got);
        assert_true(n >= 0);
        got += (size_t)n;
    }
    assert_string_equal(buf, MSG);
}

static void finish(fixture *f, tern_socket *s, uint64_t server_disconnects)
{
    tern_socket_abort(s);
    tern_socket_free(s);
    uint64_t deadline = ts_now_ms() + 5000;
    while (atomic_load(&f->sv.disconnected) < server_disconnects && ts_now_ms() < deadline) {
        ts_sleep_ms(1);
    }
    assert_int_equal(atomic_load(&f->sv.disconnected), server_disconnects);
}

/* ---- 1. TLS 1.2, the server's hint, inline ------------------------------------------------------ */

static void test_psk_client__tls12_hint_answered_inline(void **state)
{
    fixture *f = *state;
    cl c = {.how = ANSWER_INLINE};
    tern_socket *s = connect_client(f, &c, TERN_SSL_PROTOCOL_TLS1_2);
    expect_echo(s);
    assert_int_equal(c.n_events, 1);
    assert_string_equal(c.hint, "tern-test");
    assert_int_equal(c.max_id, TERN_PSK_MAX_IDENTITY);
    assert_int_equal(c.max_key, TERN_PSK_MAX_KEY);
    assert_int_equal(tern_socket_session_protocol(s), TERN_SSL_PROTOCOL_TLS1_2);
    assert_non_null(strstr(tern_socket_session_cipher(s), "PSK"));
    finish(f, s, 1);
}

/* ---- 2. TLS 1.2, deferred to another thread ------------------------------------------------------- */

static void test_psk_client__tls12_deferred_from_another_thread(void **state)
{
    fixture *f = *state;
    cl c = {.how = ANSWER_DEFERRED};
    tern_socket *s = connect_client(f, &c, TERN_SSL_PROTOCOL_TLS1_2);
    uint64_t t0 = ts_now_ms();
    expect_echo(s);
    uint64_t ms = ts_now_ms() - t0;
    if (c.thread_started) {
        pthread_join(c.thread, NULL);
    }
    assert_true(c.thread_started);
    assert_int_equal(c.answer_rc, 0);
    assert_int_equal(c.n_events, 1);
    assert_string_equal(c.hint, "tern-test");
    assert_true(ms >= 95);
    ts_log("deferred client PSK answered, encrypted after %llu ms", (unsigned long long)ms);
    finish(f, s, 1);
}

/* ---- 3. TLS 1.3: no hint, inline before the ClientHello -------------------------------------------- */

static void test_psk_client__tls13_answered_inline(void **state)
{
    fixture *f = *state;
    cl c = {.how = ANSWER_INLINE};
    tern_socket *s = connect_client(f, &c, TERN_SSL_PROTOCOL_TLS1_3);
    expect_echo(s);
    assert_int_equal(c.n_events, 1);
    assert_string_equal(c.hint, "");
    assert_int_equal(tern_socket_session_protocol(s), TERN_SSL_PROTOCOL_TLS1_3);
    finish(f, s, 1);
}

/* ---- 4. no identity, a rejection ------------------------------------------------------------------- */

static void test_psk_client__no_answer_fails_the_handshake(void **state)
{
    fixture *f = *state;
    const struct {
        enum answer how;
        enum tern_ssl_protocol max;
        const char *why;
    } cases[] = {
        {ANSWER_NO_IDENTITY, TERN_SSL_PROTOCOL_TLS1_2, "no identity"},
        {ANSWER_REJECT, TERN_SSL_PROTOCOL_TLS1_2, "no key"},
        {ANSWER_REJECT, TERN_SSL_PROTOCOL_TLS1_3, "no key"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cl c = {.how = cases[k].how};
        tern_socket *s = connect_client(f, &c, cases[k].max);
        int rc = tern_socket_wait_for_encrypted(s, 5000);
        ts_log("case %zu: %s: %s", k, tern_err_name(rc), tern_socket_error_string(s));
        assert_int_equal(rc, TERN_E_TLS_HANDSHAKE);
        assert_int_equal(c.n_events, 1);
        assert_non_null(strstr(tern_socket_error_string(s), cases[k].why));
        finish(f, s, k + 1);
    }
    /* TLS 1.2: the server heard an alert (its handshake failed); TLS 1.3: no ClientHello
     * was sent, the connection just closed */
    assert_true(atomic_load(&f->sv.failures) >= 2);
    assert_int_equal(atomic_load(&f->sv.encrypted), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_psk_client__tls12_hint_answered_inline),
        T(test_psk_client__tls12_deferred_from_another_thread),
        T(test_psk_client__tls13_answered_inline),
        T(test_psk_client__no_answer_fails_the_handshake),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * A deferred `ssl_errors` decision (tern_socket_defer_ssl_errors + tern_socket_resume from
 * another thread), against a server with a self-signed certificate that the client does not
 * trust:
 *   1. decided 200 ms later from another thread, ignoring: `encrypted`, then data both ways;
 *   2. the same, refusing: TERN_E_TLS_VERIFY, and the server hears an alert;
 *   3. a decision that comes after the handshake deadline: TERN_E_TLS_TIMEOUT, and the late
 *      resume says TERN_ECANCELED;
 *   4. misuse: defer outside the event, resume with nothing deferred, resume twice, resume
 *      after the socket was aborted.
 *
 * The server runs on a runtime (one reactor); the client on a standalone reactor driven by
 * the test thread with the wait_for_* helpers. A decider thread sleeps, then calls
 * tern_socket_resume; its results are read by the test thread after joining it.
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

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

#define MSG "deferred hello\n"

static const char *cert(const char *name)
{
    static char bufs[4][512];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", TERN_TEST_CERTS, name);
    return b;
}

/* ---- the server: echo, recording how connections ended ------------------------------- */

typedef struct srv {
    tern_runtime *rt;
    tern_server *srv;
    tern_ssl_config *cfg;
    uint16_t port;
    _Atomic uint64_t encrypted, bytes_in, disconnected;
    _Atomic int last_reason;
    pthread_mutex_t mu;
    char last_error[256]; /* under mu */
} srv;

static void srv_ready_read(tern_socket *s, void *user)
{
    srv *sv = user;
    char buf[4096];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof buf)) > 0) {
        atomic_fetch_add(&sv->bytes_in, (uint64_t)n);
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
    srv *sv = user;
    pthread_mutex_lock(&sv->mu);
    snprintf(sv->last_error, sizeof sv->last_error, "%s", tern_socket_error_string(s));
    pthread_mutex_unlock(&sv->mu);
    atomic_store(&sv->last_reason, reason);
    atomic_fetch_add(&sv->disconnected, 1);
}

static const tern_socket_events srv_events = {
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

/* ---- the client ------------------------------------------------------------------------ */

typedef struct cl {
    /* set by the test before connecting */
    unsigned delay_ms;   /* the decider's sleep; 0: no decider (the test resumes itself) */
    bool ignore;         /* its decision */
    bool resume_twice;   /* the decider calls resume a second time */
    srv *sv;
    tern_socket *s;
    /* client reactor (the test thread) */
    unsigned n_ssl_errors, n_encrypted;
    int defer_rc, defer_again_rc, reason;
    uint64_t deferred_at;
    bool disconnected;
    /* the decider thread, read after joining it */
    pthread_t decider;
    bool decider_started;
    int resume_rc, resume2_rc;
    uint64_t resumed_at;
    uint64_t server_bytes_before; /* what the server had received when the decision came */
} cl;

static void *decide(void *arg)
{
    cl *c = arg;
    ts_sleep_ms(c->delay_ms);
    c->server_bytes_before = atomic_load(&c->sv->bytes_in);
    c->resumed_at = ts_now_ms();
    c->resume_rc = tern_socket_resume(c->s, c->ignore);
    if (c->resume_twice) {
        c->resume2_rc = tern_socket_resume(c->s, !c->ignore);
    }
    return NULL;
}

static void cl_ssl_errors(tern_socket *s, const tern_ssl_error_list *errs, void *user)
{
    cl *c = user;
    c->n_ssl_errors++;
    ts_log("ssl_errors: %zu, first %s", tern_ssl_error_list_count(errs),
           tern_ssl_error_name(tern_ssl_error_list_at(errs, 0)));
    c->defer_rc = tern_socket_defer_ssl_errors(s);
    c->defer_again_rc = tern_socket_defer_ssl_errors(s);
    c->deferred_at = ts_now_ms();
    if (c->defer_rc == 0 && c->delay_ms > 0) {
        c->decider_started = pthread_create(&c->decider, NULL, decide, c) == 0;
    }
}

static void cl_encrypted(tern_socket *s, void *user)
{
    (void)s;
    cl *c = user;
    c->n_encrypted++;
}

static void cl_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    cl *c = user;
    c->disconnected = true;
    c->reason = reason;
}

static const tern_socket_events cl_events = {
    .ssl_errors = cl_ssl_errors,
    .encrypted = cl_encrypted,
    .disconnected = cl_disconnected,
};

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct fixture {
    srv sv;
    tern_reactor *r;
    tern_ssl_config *client_cfg;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    pthread_mutex_init(&f->sv.mu, NULL);
    f->sv.rt = ts_runtime_new(1, 0);
    f->sv.cfg = tern_ssl_config_new();
    if (f->sv.rt == NULL || f->sv.cfg == NULL ||
        tern_ssl_config_set_local_certificate_file(f->sv.cfg, cert("selfsigned.pem"),
                                                   TERN_ENCODING_PEM) != 0 ||
        tern_ssl_config_set_private_key_file(f->sv.cfg, cert("selfsigned.key"),
                                             TERN_ENCODING_PEM, NULL) != 0) {
        return -1;
    }
    f->sv.srv = tern_server_new(f->sv.rt, f->sv.cfg, srv_incoming, &f->sv);
    if (f->sv.srv == NULL || tern_server_listen(f->sv.srv, "127.0.0.1", 0) != 0) {
        return -1;
    }
    f->sv.port = tern_server_port(f->sv.srv);
    if (tern_runtime_start(f->sv.rt) != 0) {
        return -1;
    }
    /* the client trusts the test CA, which did not sign the server's certificate */
    f->client_cfg = tern_ssl_config_new();
    if (f->client_cfg == NULL ||
        tern_ssl_config_add_ca_certificates_file(f->client_cfg, cert("ca.pem"),
                                                 TERN_ENCODING_PEM) != 0 ||
        tern_ssl_config_set_handshake_timeout(f->client_cfg, 2000) != 0) {
        return -1;
    }
    f->r = tern_reactor_new();
    *state = f;
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
    tern_ssl_config_unref(f->sv.cfg);
    tern_ssl_config_unref(f->client_cfg);
    pthread_mutex_destroy(&f->sv.mu);
    free(f);
    return 0;
}

/* A client socket on the test thread's reactor, connecting with @p cfg. */
static tern_socket *connect_client(fixture *f, cl *c, tern_ssl_config *cfg)
{
    c->sv = &f->sv;
    c->s = tern_socket_new(f->r);
    assert_non_null(c->s);
    tern_socket_set_events(c->s, &cl_events, c);
    assert_int_equal(tern_socket_set_ssl_config(c->s, cfg), 0);
    assert_int_equal(
        tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1", f->sv.port, "localhost"), 0);
    return c->s;
}

static void join_decider(cl *c)
{
    if (c->decider_started) {
        pthread_join(c->decider, NULL);
        c->decider_started = false;
    }
}

/* Runs the client reactor until the server counted @p n disconnections. */
static void wait_server_disconnected(fixture *f, uint64_t n)
{
    uint64_t deadline = ts_now_ms() + 5000;
    while (atomic_load(&f->sv.disconnected) < n && ts_now_ms() < deadline) {
        tern_reactor_run_once(f->r, 5);
    }
    assert_int_equal(atomic_load(&f->sv.disconnected), n);
}

/* Lets queued tasks (a resume's) run on the client reactor. */
static void spin(fixture *f, unsigned ms)
{
    uint64_t deadline = ts_now_ms() + ms;
    while (ts_now_ms() < deadline) {
        tern_reactor_run_once(f->r, 5);
    }
}

/* ---- 1. ignore, 200 ms later, from another thread ------------------------------------------ */

static void test_tls_defer__resume_ignoring_from_another_thread(void **state)
{
    fixture *f = *state;
    cl c = {.delay_ms = 200, .ignore = true, .resume_twice = true};
    tern_socket *s = connect_client(f, &c, f->client_cfg);
    /* queued before `encrypted`: must not leave before the decision */
    assert_int_equal(tern_socket_write(s, MSG, strlen(MSG)), 0);

    int rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != 0) {
        fail_msg("wait_for_encrypted: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    }
    join_decider(&c);
    assert_int_equal(c.n_ssl_errors, 1);
    assert_int_equal(c.defer_rc, 0);
    assert_int_equal(c.defer_again_rc, 0);
    assert_int_equal(c.resume_rc, 0);
    assert_int_equal(c.resume2_rc, TERN_EINVAL); /* decided already */
    assert_int_equal(c.n_encrypted, 1);
    assert_true(tern_socket_is_encrypted(s));
    assert_true(c.resumed_at - c.deferred_at >= 190);
    assert_int_equal(c.server_bytes_before, 0); /* nothing flowed while deferred */
    ts_log("decided after %llu ms", (unsigned long long)(c.resumed_at - c.deferred_at));

    /* data flows both ways */
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
    assert_int_equal(atomic_load(&f->sv.encrypted), 1);
    /* the errors stay readable; a resume after the task ran still finds nothing deferred */
    assert_true(tern_ssl_error_list_count(tern_socket_ssl_handshake_errors(s)) > 0);
    assert_int_equal(tern_socket_resume(s, true), TERN_EINVAL);

    assert_int_equal(tern_socket_close(s), 0);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    tern_socket_free(s);
    wait_server_disconnected(f, 1);
}

/* ---- 2. abort, 200 ms later, from another thread --------------------------------------------- */

static void test_tls_defer__resume_refusing_from_another_thread(void **state)
{
    fixture *f = *state;
    cl c = {.delay_ms = 200, .ignore = false};
    tern_socket *s = connect_client(f, &c, f->client_cfg);
    assert_int_equal(tern_socket_write(s, MSG, strlen(MSG)), 0);

    int rc = tern_socket_wait_for_encrypted(s, 5000);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    join_decider(&c);
    ts_log("refused: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    assert_int_equal(rc, TERN_E_TLS_VERIFY);
    assert_int_equal(c.resume_rc, 0);
    assert_true(c.disconnected);
    assert_int_equal(c.reason, TERN_E_TLS_VERIFY);
    assert_int_equal(c.n_encrypted, 0);
    assert_non_null(strstr(tern_socket_error_string(s), "peer certificate"));
    assert_true(c.resumed_at - c.deferred_at >= 190);

    /* the server hears the refusal (user_canceled, then close_notify: its stream ends in
     * order, where a bare FIN would read as a truncation, TERN_E_EOF), and never got the
     * bytes queued before the decision */
    wait_server_disconnected(f, 1);
    pthread_mutex_lock(&f->sv.mu);
    char why[256];
    snprintf(why, sizeof why, "%s", f->sv.last_error);
    pthread_mutex_unlock(&f->sv.mu);
    ts_log("server: reason %s: \"%s\"", tern_err_name(atomic_load(&f->sv.last_reason)), why);
    assert_int_equal(atomic_load(&f->sv.last_reason), 0);
    assert_int_equal(atomic_load(&f->sv.bytes_in), 0);
    tern_socket_free(s);
}

/* ---- 3. the decision comes after the handshake deadline ----------------------------------------- */

static void test_tls_defer__deadline_passes_while_deferred(void **state)
{
    fixture *f = *state;
    tern_ssl_config *quick = tern_ssl_config_new();
    assert_non_null(quick);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(quick, cert("ca.pem"),
                                                              TERN_ENCODING_PEM),
                     0);
    assert_int_equal(tern_ssl_config_set_handshake_timeout(quick, 300), 0);
    cl c = {.delay_ms = 700, .ignore = true};
    tern_socket *s = connect_client(f, &c, quick);
    tern_ssl_config_unref(quick);

    int rc = tern_socket_wait_for_encrypted(s, 5000);
    ts_log("deadline: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    assert_int_equal(rc, TERN_E_TLS_TIMEOUT);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    assert_int_equal(c.reason, TERN_E_TLS_TIMEOUT);
    assert_non_null(strstr(tern_socket_error_string(s), "deferred"));
    uint64_t failed_at = ts_now_ms();
    assert_true(failed_at - c.deferred_at < 700);
    join_decider(&c);
    assert_int_equal(c.resume_rc, TERN_ECANCELED); /* too late: no effect */
    assert_int_equal(c.n_encrypted, 0);
    /* freed before the late decision's task ran: the socket goes once it has */
    tern_socket_free(s);
    spin(f, 50);
    wait_server_disconnected(f, 1);
}

/* ---- 4. misuse --------------------------------------------------------------------------------------- */

static void test_tls_defer__misuse_is_refused(void **state)
{
    fixture *f = *state;
    cl c = {.delay_ms = 0};
    tern_socket *s = connect_client(f, &c, f->client_cfg);
    assert_int_equal(tern_socket_defer_ssl_errors(s), TERN_EINVAL); /* not in ssl_errors */
    assert_int_equal(tern_socket_resume(s, true), TERN_EINVAL);     /* nothing deferred */

    /* deferred, no decider: the handshake waits (the wait times out, the socket is intact) */
    assert_int_equal(tern_socket_wait_for_encrypted(s, 300), TERN_ETIMEDOUT);
    assert_int_equal(c.n_ssl_errors, 1);
    assert_int_equal(c.defer_rc, 0);
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_CONNECTED);
    assert_false(tern_socket_is_encrypted(s));

    /* aborted while deferred: the decision comes too late, a second one finds nothing */
    tern_socket_abort(s);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    assert_int_equal(tern_socket_resume(s, true), TERN_ECANCELED);
    assert_int_equal(tern_socket_resume(s, false), TERN_EINVAL);
    spin(f, 20); /* the task runs and gives the hold back */
    assert_int_equal(tern_socket_resume(s, false), TERN_EINVAL);
    tern_socket_free(s);
    wait_server_disconnected(f, 1);
}

int main(void)
{
    FILE *fp = fopen(cert("selfsigned.pem"), "r");
    if (fp == NULL) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n",
                TERN_TEST_CERTS);
        return 77;
    }
    fclose(fp);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls_defer__resume_ignoring_from_another_thread),
        T(test_tls_defer__resume_refusing_from_another_thread),
        T(test_tls_defer__deadline_passes_while_deferred),
        T(test_tls_defer__misuse_is_refused),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

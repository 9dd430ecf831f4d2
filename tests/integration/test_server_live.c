/* SPDX-License-Identifier: MIT */
/*
 * Live servers (a reload adds, removes or moves a service): a running runtime gets a new
 * server and serves it; tern_server_close refuses new connections at once while the ones
 * accepted before keep being served; the port binds again right after; close is idempotent;
 * many add/close cycles on one port; a close from the server's own incoming callback; a close
 * before the start; listen once the runtime stops; the TLS configuration swapped while
 * connections arrive (later handshakes take the new one, a begun one keeps its own, the old one
 * is released only after every reactor ran past the swap: ASan and TSan watch). Every case
 * runs in the three ways a server accepts: the acceptor thread (2 reactors), a single
 * reactor, SO_REUSEPORT (2 reactors). Clients are plain sockets on the test thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define MAX_FDS 16

typedef struct mode {
    const char *name;
    unsigned reactors;
    bool reuseport;
} mode;

static const mode acceptor_mode = {"acceptor thread", 2, false};
static const mode one_reactor_mode = {"one reactor", 1, false};
static const mode reuseport_mode = {"reuseport", 2, true};

typedef struct fixture {
    const mode *m;
    tern_runtime *rt;
    bool started;
    ts_echo echo;
    int fds[MAX_FDS];
    size_t nfds;
    /* close_in_incoming */
    _Atomic int close_rc;
    _Atomic int closes;
    /* swap_incoming: which configuration each accepted socket sees */
    tern_ssl_config *cfg_a, *cfg_b;
    _Atomic int seen_a, seen_b, seen_other;
    _Atomic bool begin_tls;           /* start the handshake of the next accepted socket */
    tern_socket *_Atomic tls_socket;  /* that socket, and its reactor */
    tern_reactor *_Atomic tls_reactor;
    _Atomic int tls_begin_rc;
    _Atomic int tls_keeps;            /* 1: still has cfg_a after the swap, 0: not */
    uint16_t hammer_port;
    _Atomic bool hammer_stop;
    _Atomic uint64_t hammered;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    f->m = *state;
    ts_echo_init(&f->echo); /* echo.srv stays NULL: one echo for several servers */
    for (size_t i = 0; i < MAX_FDS; i++) {
        f->fds[i] = -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < f->nfds; i++) {
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
        }
    }
    if (f->rt != NULL) {
        if (f->started) {
            tern_runtime_stop(f->rt, 0);
            tern_runtime_join(f->rt);
        }
        tern_runtime_free(f->rt);
    }
    tern_ssl_config_unref(f->cfg_a);
    tern_ssl_config_unref(f->cfg_b);
    free(f);
    return 0;
}

static void start(fixture *f)
{
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
}

static void new_runtime(fixture *f)
{
    ts_log("mode: %s", f->m->name);
    f->rt = ts_runtime_new(f->m->reactors, 0);
    assert_non_null(f->rt);
}

/* A new echo server listening on 127.0.0.1:@p port (0: any), with the mode's reuseport. */
static tern_server *add_server_with(fixture *f, uint16_t port, tern_server_incoming_fn fn,
                                    void *user)
{
    tern_server *srv = tern_server_new(f->rt, NULL, fn, user);
    assert_non_null(srv);
    assert_int_equal(tern_server_set_reuseport(srv, f->m->reuseport), 0);
    int rc = tern_server_listen(srv, "127.0.0.1", port);
    if (rc != 0) {
        fail_msg("listen on port %u: %s: %s", port, tern_err_name(rc),
                 tern_server_error_string(srv));
    }
    assert_int_not_equal(tern_server_port(srv), 0);
    if (port != 0) {
        assert_int_equal(tern_server_port(srv), port);
    }
    return srv;
}

static tern_server *add_server(fixture *f, uint16_t port)
{
    return add_server_with(f, port, ts_echo_incoming, &f->echo);
}

static void echo_check(int fd, const char *what)
{
    int rc = ts_echo_roundtrip(fd, what, strlen(what), 5000);
    if (rc != 0) {
        fail_msg("echo of \"%s\": %s", what, strerror(-rc));
    }
}

/* Connects and waits for the server's incoming; the fd is kept open. */
static int connect_accepted(fixture *f, uint16_t port)
{
    assert_true(f->nfds < MAX_FDS);
    uint64_t before = atomic_load(&f->echo.incoming);
    int fd = ts_connect(port, 5000);
    if (fd < 0) {
        fail_msg("connect to port %u: %s", port, strerror(-fd));
    }
    f->fds[f->nfds++] = fd;
    if (!ts_wait_u64_ge(&f->echo.incoming, before + 1, 5000)) {
        fail_msg("the connection to port %u never reached incoming", port);
    }
    return fd;
}

/* The same, then echoes a few bytes. */
static int connect_served(fixture *f, uint16_t port)
{
    int fd = connect_accepted(f, port);
    echo_check(fd, "hello");
    return fd;
}

static void close_client(fixture *f, int fd)
{
    for (size_t i = 0; i < f->nfds; i++) {
        if (f->fds[i] == fd) {
            close(fd);
            f->fds[i] = f->fds[--f->nfds];
            f->fds[f->nfds] = -1;
            return;
        }
    }
    fail_msg("fd %d is not the test's", fd);
}

static void expect_refused(uint16_t port)
{
    int fd = ts_connect(port, 5000);
    if (fd >= 0) {
        close(fd);
        fail_msg("port %u still accepts connections", port);
    }
    assert_int_equal(fd, -ECONNREFUSED);
}

static void test_server_live__listen_while_running_serves(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    start(f); /* no server at all: no acceptor thread yet */

    tern_server *a = add_server(f, 0);
    int fa = connect_served(f, tern_server_port(a));
    tern_server *b = add_server(f, 0);
    assert_int_not_equal(tern_server_port(a), tern_server_port(b));
    int fb = connect_served(f, tern_server_port(b));
    echo_check(fa, "a again");
    echo_check(fb, "b again");
    assert_ptr_equal(tern_server_runtime(b), f->rt);

    /* the setters of a server created while running still work before its listen */
    tern_server *c = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(c);
    assert_int_equal(tern_server_set_backlog(c, 64), 0);
    assert_int_equal(tern_server_set_max_connections(c, 10), 0);
    assert_int_equal(tern_server_set_reuseport(c, f->m->reuseport), 0);
    assert_int_equal(tern_server_listen_address(c, "127.0.0.1:0"), 0);
    assert_int_equal(tern_server_set_backlog(c, 32), TERN_EBUSY);
    connect_served(f, tern_server_port(c));
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_server_live__close_refuses_new_and_keeps_accepted(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    start(f);

    tern_server *a = add_server(f, 0);
    uint16_t port = tern_server_port(a);
    int kept = connect_served(f, port);

    assert_int_equal(tern_server_close(a), 0);
    assert_int_equal(tern_server_port(a), port); /* the port it had */
    expect_refused(port);
    echo_check(kept, "still served after close");
    assert_int_equal(atomic_load(&f->echo.disconnected), 0);

    /* idempotent; a closed server neither listens again nor takes settings */
    assert_int_equal(tern_server_close(a), 0);
    assert_int_equal(tern_server_listen(a, "127.0.0.1", port), TERN_EBUSY);
    assert_int_equal(tern_server_set_backlog(a, 16), TERN_EBUSY);
    assert_int_equal(tern_server_close(NULL), TERN_EINVAL);

    /* the same port binds again at once, while a connection accepted on it lives on */
    tern_server *b = add_server(f, port);
    int fb = connect_served(f, port);
    echo_check(kept, "still served after rebind");
    echo_check(fb, "the new server");

    /* the kept connection ends as usual */
    close_client(f, kept);
    if (!ts_wait_u64_ge(&f->echo.disconnected, 1, 5000)) {
        fail_msg("the kept connection never disconnected");
    }
    assert_int_equal(tern_server_close(b), 0);
    expect_refused(port);
    echo_check(fb, "served after the second close");
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

/* A reload that moves a service from port A to B and back, then many add/close cycles on one
 * port, some connections left open across the cycles. */
static void test_server_live__add_close_cycles(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    start(f);

    tern_server *s1 = add_server(f, 0);
    uint16_t pa = tern_server_port(s1);
    assert_int_equal(tern_server_close(s1), 0);
    tern_server *s2 = add_server(f, 0);
    uint16_t pb = tern_server_port(s2);
    assert_int_equal(tern_server_close(s2), 0);
    tern_server *s3 = add_server(f, pa);
    connect_served(f, pa);
    assert_int_equal(tern_server_close(s3), 0);
    expect_refused(pa);
    expect_refused(pb);

    const unsigned cycles = TS_SCALE(50, 20);
    for (unsigned i = 0; i < cycles; i++) {
        tern_server *srv = add_server(f, pa);
        int fd = connect_served(f, pa);
        assert_int_equal(tern_server_close(srv), 0);
        if (i % 10 == 0 && f->nfds < MAX_FDS) {
            continue; /* kept open across later cycles */
        }
        close_client(f, fd);
    }
    expect_refused(pa);
    for (size_t i = 0; i < f->nfds; i++) {
        echo_check(f->fds[i], "alive across the cycles");
    }
    tern_stats st = ts_stats(f->rt);
    assert_int_equal(st.connections_accepted, cycles + 1);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

/* The server's own incoming callback closes it: on a reactor, so the call does not wait for
 * the other owners; new connections are refused soon after (at once with one reactor). */
static void close_in_incoming(tern_server *srv, tern_socket *s, void *user)
{
    fixture *f = user;
    ts_echo_incoming(srv, s, &f->echo);
    atomic_store(&f->close_rc, tern_server_close(srv));
    atomic_fetch_add(&f->closes, 1);
}

static void test_server_live__close_from_incoming(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    start(f);

    tern_server *srv = add_server_with(f, 0, close_in_incoming, f);
    uint16_t port = tern_server_port(srv);
    int fd = connect_served(f, port);
    assert_int_equal(atomic_load(&f->close_rc), 0);
    assert_true(atomic_load(&f->closes) >= 1);
    if (f->m->reactors == 1) {
        expect_refused(port);
    } else {
        /* the other owners close within their next loop turn; a connection that reached one
         * before that is served (and closes again: idempotent) */
        bool refused = false;
        for (int i = 0; i < 5000 && !refused; i++) {
            int c = ts_connect(port, 5000);
            if (c < 0) {
                assert_int_equal(c, -ECONNREFUSED);
                refused = true;
            } else {
                close(c);
                ts_sleep_ms(1);
            }
        }
        assert_true(refused);
    }
    echo_check(fd, "served after its server closed itself");
    /* off the reactors, a close waits for every owner: the port is free once it returns */
    assert_int_equal(tern_server_close(srv), 0);
    add_server(f, port);
    connect_served(f, port);
    assert_int_equal(atomic_load(&f->close_rc), 0);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_server_live__close_before_start(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    tern_server *a = add_server(f, 0);
    uint16_t port = tern_server_port(a);
    tern_server *b = add_server(f, 0); /* stays open */
    assert_int_equal(tern_server_close(a), 0);
    assert_int_equal(tern_server_close(a), 0);
    assert_int_equal(tern_server_port(a), port);
    tern_server *never = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(never);
    assert_int_equal(tern_server_close(never), 0); /* never listened: only marked */
    assert_int_equal(tern_server_listen(never, "127.0.0.1", 0), TERN_EBUSY);
    assert_int_equal(tern_server_port(never), 0);
    start(f);

    expect_refused(port);
    connect_served(f, tern_server_port(b));
    add_server(f, port);
    connect_served(f, port);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_server_live__listen_after_stop(void **state)
{
    fixture *f = *state;
    new_runtime(f);
    start(f);
    tern_server *a = add_server(f, 0);
    uint16_t port = tern_server_port(a);
    connect_served(f, port);

    assert_int_equal(tern_runtime_stop(f->rt, 0), 0);
    tern_server *late = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(late);
    assert_int_equal(tern_server_listen(late, "127.0.0.1", 0), TERN_E_STOPPED);
    assert_int_equal(tern_runtime_join(f->rt), 0);
    f->started = false;
    assert_int_equal(tern_server_listen(late, "127.0.0.1", 0), TERN_E_STOPPED);
    /* after the stop, closing is a no-op that succeeds (the stop closed the listeners) */
    assert_int_equal(tern_server_close(a), 0);
    assert_int_equal(tern_server_close(late), 0);
    expect_refused(port);
}

/* Records which configuration the new socket sees; optionally begins its handshake. */
static void swap_incoming(tern_server *srv, tern_socket *s, void *user)
{
    fixture *f = user;
    ts_echo_incoming(srv, s, &f->echo);
    tern_ssl_config *c = tern_socket_ssl_config(s);
    if (c != NULL && c == f->cfg_a) {
        atomic_fetch_add(&f->seen_a, 1);
    } else if (c != NULL && c == f->cfg_b) {
        atomic_fetch_add(&f->seen_b, 1);
    } else {
        atomic_fetch_add(&f->seen_other, 1);
    }
    tern_ssl_config_unref(c);
    if (atomic_exchange(&f->begin_tls, false)) {
        atomic_store(&f->tls_begin_rc, tern_socket_start_server_encryption(s));
        atomic_store(&f->tls_reactor, tern_reactor_current());
        atomic_store(&f->tls_socket, s);
    }
}

static void query_tls_socket(tern_reactor *r, void *arg)
{
    fixture *f = arg;
    tern_ssl_config *c = tern_socket_ssl_config(atomic_load(&f->tls_socket));
    atomic_store(&f->tls_keeps, c != NULL && c == f->cfg_a ? 1 : 0);
    tern_ssl_config_unref(c);
}

/* A configuration with a certificate and key of the test PKI, or an empty one without it. */
static tern_ssl_config *config_with(const char *name, bool *has_cert)
{
    char crt[512], key[512];
    tern_ssl_config *c = tern_ssl_config_new();
    assert_non_null(c);
    snprintf(crt, sizeof crt, "%s/%s.pem", TERN_TEST_CERTS, name);
    snprintf(key, sizeof key, "%s/%s.key", TERN_TEST_CERTS, name);
    *has_cert = access(crt, R_OK) == 0 && access(key, R_OK) == 0;
    if (*has_cert) {
        assert_int_equal(tern_ssl_config_set_local_certificate_file(c, crt, TERN_ENCODING_PEM), 0);
        assert_int_equal(tern_ssl_config_set_private_key_file(c, key, TERN_ENCODING_PEM, NULL),
                         0);
    }
    return c;
}

/* Connects and closes at once, over and over, until told to stop (bounded). */
static void *hammer(void *arg)
{
    fixture *f = arg;
    uint16_t port = f->hammer_port;
    for (int i = 0; i < 5000 && !atomic_load(&f->hammer_stop); i++) {
        int fd = ts_connect(port, 5000);
        if (fd >= 0) {
            close(fd);
            atomic_fetch_add(&f->hammered, 1);
        }
    }
    return NULL;
}

static void test_server_live__ssl_config_swap(void **state)
{
    fixture *f = *state;
    bool certs_a, certs_b;
    new_runtime(f);
    f->cfg_a = config_with("server-rsa", &certs_a);
    f->cfg_b = config_with("alt", &certs_b);
    tern_server *srv = tern_server_new(f->rt, f->cfg_a, swap_incoming, f);
    assert_non_null(srv);
    assert_int_equal(tern_server_set_reuseport(srv, f->m->reuseport), 0);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    uint16_t port = tern_server_port(srv);
    start(f);

    /* a socket whose handshake began under A (the client sends nothing: it stays begun) */
    bool tls = certs_a && certs_b;
    if (!tls) {
        ts_log("no test certificates in %s: the begun handshake is not checked", TERN_TEST_CERTS);
    }
    atomic_store(&f->begin_tls, tls);
    connect_accepted(f, port);
    assert_int_equal(atomic_load(&f->seen_a), 1);

    assert_int_equal(tern_server_set_ssl_config(srv, f->cfg_b), 0);
    connect_served(f, port);
    assert_int_equal(atomic_load(&f->seen_b), 1);
    if (tls) {
        assert_int_equal(atomic_load(&f->tls_begin_rc), 0);
        atomic_store(&f->tls_keeps, -1);
        assert_int_equal(ts_post_wait(atomic_load(&f->tls_reactor), query_tls_socket, f, 5000),
                         0);
        assert_int_equal(atomic_load(&f->tls_keeps), 1);
    }

    /* swaps while connections keep arriving: each old configuration is the server's only
     * reference, freed once every reactor ran past its swap */
    f->hammer_port = port;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, hammer, f), 0);
    const unsigned swaps = TS_SCALE(50, 20);
    for (unsigned i = 0; i < swaps; i++) {
        tern_ssl_config *c = tern_ssl_config_new();
        assert_non_null(c);
        assert_int_equal(tern_server_set_ssl_config(srv, c), 0);
        tern_ssl_config_unref(c);
        ts_sleep_ms(1);
    }
    assert_int_equal(tern_server_set_ssl_config(srv, NULL), 0); /* plaintext: the default */
    atomic_store(&f->hammer_stop, true);
    pthread_join(t, NULL);
    ts_log("%llu connections during %u swaps",
           (unsigned long long)atomic_load(&f->hammered), swaps);
    assert_int_equal(tern_server_set_ssl_config(NULL, NULL), TERN_EINVAL);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

#define LIVE_TESTS(fn)                                                                         \
    cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&acceptor_mode),     \
        cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown,                         \
                                                 (void *)&one_reactor_mode),                   \
        cmocka_unit_test_prestate_setup_teardown(fn, setup, teardown, (void *)&reuseport_mode)

int main(void)
{
    const struct CMUnitTest tests[] = {
        LIVE_TESTS(test_server_live__listen_while_running_serves),
        LIVE_TESTS(test_server_live__close_refuses_new_and_keeps_accepted),
        LIVE_TESTS(test_server_live__add_close_cycles),
        LIVE_TESTS(test_server_live__close_from_incoming),
        LIVE_TESTS(test_server_live__close_before_start),
        LIVE_TESTS(test_server_live__listen_after_stop),
        LIVE_TESTS(test_server_live__ssl_config_swap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

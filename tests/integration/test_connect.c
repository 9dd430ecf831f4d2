/* SPDX-License-Identifier: MIT */
/*
 * Client sockets (socket.h) when things go wrong: a refused connect and a name that does not
 * resolve arrive as `error` + `disconnected` with the code and a message; calls in the wrong
 * state return their code and fire nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"
#include "support.h"

/* ---- client connects that fail ------------------------------------------------------------ */

#define STATE_BIT(s) (1u << (unsigned)(s))

typedef struct client_rec {
    const char *host;
    uint16_t port;
    tern_socket *s;
    int connect_rc;
    _Atomic int in_call;            /* inside an API call on the reactor */
    _Atomic uint64_t called_inside; /* events delivered inside that call */
    _Atomic uint64_t connected, errors, disconnects;
    _Atomic int error_code, reason, sock_error;
    _Atomic unsigned states;
    char errstr[256];               /* written before `disconnects` is bumped */
} client_rec;

static void rec_check(client_rec *c)
{
    if (atomic_load(&c->in_call)) {
        atomic_fetch_add(&c->called_inside, 1);
    }
}

static void rec_connected(tern_socket *s, void *user)
{
    (void)s;
    client_rec *c = user;
    rec_check(c);
    atomic_fetch_add(&c->connected, 1);
}

static void rec_state(tern_socket *s, enum tern_socket_state st, void *user)
{
    (void)s;
    client_rec *c = user;
    rec_check(c);
    atomic_fetch_or(&c->states, STATE_BIT(st));
}

static void rec_error(tern_socket *s, int err, void *user)
{
    (void)s;
    client_rec *c = user;
    rec_check(c);
    atomic_store(&c->error_code, err);
    atomic_fetch_add(&c->errors, 1);
}

static void rec_disconnected(tern_socket *s, int reason, void *user)
{
    client_rec *c = user;
    rec_check(c);
    atomic_store(&c->reason, reason);
    atomic_store(&c->sock_error, tern_socket_error(s));
    snprintf(c->errstr, sizeof c->errstr, "%s", tern_socket_error_string(s));
    tern_socket_free(s); /* legal inside its own callback */
    c->s = NULL;
    atomic_fetch_add(&c->disconnects, 1);
}

static const tern_socket_events rec_events = {
    .connected = rec_connected,
    .state_changed = rec_state,
    .error = rec_error,
    .disconnected = rec_disconnected,
};

static void connect_task(tern_reactor *r, void *arg)
{
    client_rec *c = arg;
    c->s = tern_socket_new(r);
    if (c->s == NULL) {
        c->connect_rc = TERN_ENOMEM;
        return;
    }
    tern_socket_set_events(c->s, &rec_events, c);
    tern_socket_set_connect_timeout(c->s, 20000);
    atomic_store(&c->in_call, 1);
    c->connect_rc = tern_socket_connect_to_host(c->s, c->host, c->port);
    atomic_store(&c->in_call, 0);
    if (c->connect_rc != 0) {
        tern_socket_free(c->s);
        c->s = NULL;
    }
}

static void test_connect__refused(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_runtime(f, 1);
    ts_fixture_run(f);
    client_rec c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = ts_unused_port();
    assert_int_not_equal(c.port, 0);
    assert_int_equal(ts_post_wait(tern_runtime_reactor(f->rt, 0), connect_task, &c, 5000), 0);
    assert_int_equal(c.connect_rc, 0); /* the failure comes later, as events */
    assert_true(ts_wait_u64_ge(&c.disconnects, 1, 10000));
    ts_log("refused: error %s, reason %s, \"%s\"", tern_err_name(atomic_load(&c.error_code)),
           tern_err_name(atomic_load(&c.reason)), c.errstr);
    assert_int_equal(atomic_load(&c.reason), TERN_ECONNREFUSED);
    assert_int_equal(atomic_load(&c.errors), 1);
    assert_int_equal(atomic_load(&c.error_code), TERN_ECONNREFUSED);
    assert_int_equal(atomic_load(&c.sock_error), TERN_ECONNREFUSED);
    assert_true(strlen(c.errstr) > 0);
    assert_int_equal(atomic_load(&c.connected), 0);
    assert_int_equal(atomic_load(&c.called_inside), 0);
    assert_true(atomic_load(&c.states) & STATE_BIT(TERN_SOCKET_STATE_CONNECTING));
    ts_sleep_ms(10);
    assert_int_equal(atomic_load(&c.disconnects), 1);
}

static void test_connect__name_that_does_not_resolve(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_runtime(f, 1);
    ts_fixture_run(f);
    client_rec c;
    memset(&c, 0, sizeof c);
    c.host = "nonexistent.invalid";
    c.port = 80;
    assert_int_equal(ts_post_wait(tern_runtime_reactor(f->rt, 0), connect_task, &c, 5000), 0);
    assert_int_equal(c.connect_rc, 0);
    assert_true(ts_wait_u64_ge(&c.disconnects, 1, 25000));
    ts_log("resolve: error %s, reason %s, \"%s\"", tern_err_name(atomic_load(&c.error_code)),
           tern_err_name(atomic_load(&c.reason)), c.errstr);
    assert_int_equal(atomic_load(&c.reason), TERN_E_RESOLVE);
    assert_int_equal(atomic_load(&c.error_code), TERN_E_RESOLVE);
    assert_true(strlen(c.errstr) > 0);
    assert_int_equal(atomic_load(&c.connected), 0);
    assert_int_equal(atomic_load(&c.called_inside), 0);
    assert_true(atomic_load(&c.states) & STATE_BIT(TERN_SOCKET_STATE_HOST_LOOKUP));
}

typedef struct misuse {
    uint16_t listening_port;
    int rc[16];
    bool ok[8];
    client_rec c;
} misuse;

static void misuse_task(tern_reactor *r, void *arg)
{
    misuse *m = arg;
    m->ok[0] = tern_socket_new(NULL) == NULL;
    tern_socket *s = tern_socket_new(r);
    if (s == NULL) {
        return;
    }
    tern_socket_set_events(s, &rec_events, &m->c);
    m->ok[1] = tern_socket_state(s) == TERN_SOCKET_STATE_UNCONNECTED;
    m->ok[2] = tern_socket_descriptor(s) == -1;
    m->ok[3] = tern_socket_bytes_available(s) == 0 && !tern_socket_can_read_line(s);
    m->ok[4] = tern_socket_reactor(s) == r && tern_socket_server(s) == NULL;
    m->ok[5] = tern_socket_user(s) == &m->c;
    char buf[64];
    atomic_store(&m->c.in_call, 1);
    m->rc[0] = tern_socket_connect_to_host(s, "127.0.0.1", 0);
    m->rc[1] = tern_socket_connect_to_host(s, "", 80);
    m->rc[2] = tern_socket_connect_to_host(s, NULL, 80);
    m->rc[3] = tern_socket_write(s, "x", 1);
    m->rc[4] = tern_socket_shutdown_write(s);
    m->rc[5] = tern_socket_close(s);
    m->rc[6] = (int)tern_socket_read(s, NULL, 4);
    m->rc[7] = (int)tern_socket_read_line(s, buf, 1);
    m->rc[8] = tern_socket_consume(s, 1);
    m->rc[9] = tern_socket_peer_address(s, buf, sizeof buf);
    m->rc[10] = (int)tern_socket_read(s, buf, sizeof buf); /* nothing buffered: 0 */
    m->rc[11] = tern_socket_connect_to_host(s, "127.0.0.1", m->listening_port);
    m->rc[12] = tern_socket_connect_to_host(s, "127.0.0.1", 9); /* already connecting */
    atomic_store(&m->c.in_call, 0);
    tern_socket_free(s); /* aborts the attempt: no events follow */
}

static void test_socket__calls_in_the_wrong_state(void **state)
{
    ts_fixture *f = *state;
    ts_fixture_runtime(f, 1);
    ts_fixture_run(f);
    misuse *m = calloc(1, sizeof *m);
    assert_non_null(m);
    /* a listener nobody accepts on: the kernel completes the connect, so the socket is
     * CONNECTING or CONNECTED when it is asked to connect again */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
    m->listening_port = ntohs(sa.sin_port);
    int post_rc = ts_post_wait(tern_runtime_reactor(f->rt, 0), misuse_task, m, 5000);
    close(lfd);
    assert_int_equal(post_rc, 0);
    for (int i = 0; i < 6; i++) {
        if (!m->ok[i]) {
            fail_msg("check %d of a new socket failed", i);
        }
    }
    assert_int_equal(m->rc[0], TERN_EINVAL);
    assert_int_equal(m->rc[1], TERN_EINVAL);
    assert_int_equal(m->rc[2], TERN_EINVAL);
    assert_int_equal(m->rc[3], TERN_ENOTCONN);
    assert_int_equal(m->rc[4], TERN_ENOTCONN);
    assert_int_equal(m->rc[5], TERN_ENOTCONN);
    assert_int_equal(m->rc[6], TERN_EINVAL);
    assert_int_equal(m->rc[7], TERN_EINVAL);
    assert_int_equal(m->rc[8], TERN_EINVAL);
    assert_int_equal(m->rc[9], TERN_ENOTCONN);
    assert_int_equal(m->rc[10], 0);
    assert_int_equal(m->rc[11], 0);
    assert_int_equal(m->rc[12], TERN_EBUSY);
    ts_sleep_ms(50);
    /* failed calls fire nothing, and a freed socket fires nothing */
    assert_int_equal(atomic_load(&m->c.errors), 0);
    assert_int_equal(atomic_load(&m->c.disconnects), 0);
    assert_int_equal(atomic_load(&m->c.connected), 0);
    assert_int_equal(atomic_load(&m->c.called_inside), 0);
    free(m);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, ts_fixture_setup, ts_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_connect__refused),
        T(test_connect__name_that_does_not_resolve),
        T(test_socket__calls_in_the_wrong_state),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Bad input gets a clear code and a message: unparsable listen addresses, a port in use,
 * out-of-range runtime options, calls in the wrong state, a refused connect and a name that
 * does not resolve.
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

#include "support.h"

typedef struct fixture {
    tern_runtime *rt;
    bool started;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->rt != NULL) {
        if (f->started) {
            tern_runtime_stop(f->rt, 0);
            tern_runtime_join(f->rt);
        }
        tern_runtime_free(f->rt);
    }
    free(f);
    return 0;
}

static void incoming_noop(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    (void)s;
    (void)user; /* left without events: the runtime closes it */
}

static tern_runtime *new_runtime(fixture *f, unsigned reactors)
{
    f->rt = ts_runtime_new(reactors, 0);
    assert_non_null(f->rt);
    return f->rt;
}

static void start(fixture *f)
{
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
}

/* ---- listen ------------------------------------------------------------------------------ */

static void expect_listen_address(tern_server *srv, const char *address, int want)
{
    int rc = tern_server_listen_address(srv, address);
    if (rc != want) {
        fail_msg("listen_address(\"%s\"): %s (%s), expected %s", address, tern_err_name(rc),
                 tern_server_error_string(srv), tern_err_name(want));
    }
    if (want != 0) {
        const char *why = tern_server_error_string(srv);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
}

static void test_listen__unparsable_address(void **state)
{
    fixture *f = *state;
    tern_runtime *rt = new_runtime(f, 1);
    tern_server *srv = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(srv);
    assert_ptr_equal(tern_server_runtime(srv), rt);
    expect_listen_address(srv, "not an address", TERN_E_ADDRESS);
    expect_listen_address(srv, "127.0.0.1", TERN_E_ADDRESS);
    expect_listen_address(srv, "127.0.0.1:99999", TERN_E_ADDRESS);
    expect_listen_address(srv, "[::1:80", TERN_E_ADDRESS);
    expect_listen_address(srv, "a:b", TERN_E_ADDRESS);
    expect_listen_address(srv, "", TERN_E_ADDRESS);
    /* a host that does not resolve */
    int rc = tern_server_listen(srv, "nonexistent.invalid", 0);
    assert_int_equal(rc, TERN_E_ADDRESS);
    assert_true(strlen(tern_server_error_string(srv)) > 0);
    assert_int_equal(tern_server_port(srv), 0);

    /* the server is still usable after the failures */
    expect_listen_address(srv, "127.0.0.1:0", 0);
    assert_int_not_equal(tern_server_port(srv), 0);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), TERN_EBUSY);
    assert_int_equal(tern_server_set_backlog(srv, 16), TERN_EBUSY);
    assert_int_equal(tern_server_set_reuseport(srv, true), TERN_EBUSY);
}

static void test_listen__setters_validate(void **state)
{
    fixture *f = *state;
    tern_runtime *rt = new_runtime(f, 1);
    assert_null(tern_server_new(NULL, NULL, incoming_noop, NULL));
    assert_null(tern_server_new(rt, NULL, NULL, NULL));
    tern_server *srv = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(srv);
    assert_int_equal(tern_server_set_backlog(srv, 0), TERN_EINVAL);
    assert_int_equal(tern_server_set_backlog(srv, 65536), TERN_EINVAL);
    assert_int_equal(tern_server_set_backlog(srv, 1), 0);
    assert_int_equal(tern_server_set_balance_policy(srv, (tern_balance_policy)7), TERN_EINVAL);
    assert_int_equal(tern_server_set_balance_policy(srv, TERN_BALANCE_LEAST_CONNECTIONS), 0);
    assert_int_equal(tern_server_port(srv), 0);
}

static void test_listen__port_in_use(void **state)
{
    fixture *f = *state;
    tern_runtime *rt = new_runtime(f, 1);
    tern_server *a = tern_server_new(rt, NULL, incoming_noop, NULL);
    tern_server *b = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(tern_server_listen(a, "127.0.0.1", 0), 0);
    uint16_t port = tern_server_port(a);
    assert_int_not_equal(port, 0);

    int rc = tern_server_listen(b, "127.0.0.1", port);
    if (rc != TERN_EADDRINUSE) {
        fail_msg("second listen on port %u: %s, expected EADDRINUSE", port, tern_err_name(rc));
    }
    const char *why = tern_server_error_string(b);
    char num[16];
    snprintf(num, sizeof num, "%u", port);
    ts_log("second listen: \"%s\"", why);
    assert_true(strlen(why) > 0);
    assert_non_null(strstr(why, num)); /* it says which address failed */

    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    expect_listen_address(b, addr, TERN_EADDRINUSE);
    assert_int_equal(tern_server_port(b), 0);
}

/* ---- runtime options --------------------------------------------------------------------- */

static void test_runtime__options_defaults(void **state)
{
    (void)state;
    tern_runtime_options o;
    memset(&o, 0xa5, sizeof o);
    tern_runtime_options_init(&o);
    assert_int_equal(o.reactors, 0);
    assert_false(o.pin_cpus);
    assert_int_equal(o.mailbox_capacity, 8192);
    assert_int_equal(o.handoff_capacity, 4096);
    assert_int_equal(o.workers, 2);
    assert_int_equal(o.emfile_backoff_ms, 100);
}

/* Starts a runtime with one option changed; expects EINVAL naming @p word. */
static void expect_bad_option(void (*tweak)(tern_runtime_options *), const char *word)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    tweak(&o);
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    int rc = tern_runtime_start(rt);
    const char *why = tern_runtime_error_string(rt);
    if (rc != TERN_EINVAL || why == NULL || strstr(why, word) == NULL) {
        if (rc == 0) {
            tern_runtime_stop(rt, 0);
            tern_runtime_join(rt);
        }
        char copy[256];
        snprintf(copy, sizeof copy, "%s", why ? why : "(null)");
        tern_runtime_free(rt);
        fail_msg("bad %s: start gave %s, \"%s\"; expected EINVAL naming it", word,
                 tern_err_name(rc), copy);
    }
    ts_log("bad %s: \"%s\"", word, why);
    tern_runtime_free(rt); /* never started */
}

static void many_reactors(tern_runtime_options *o) { o->reactors = 100000; }
static void tiny_mailbox(tern_runtime_options *o) { o->mailbox_capacity = 8; }
static void huge_mailbox(tern_runtime_options *o) { o->mailbox_capacity = (1u << 20) + 1; }
static void tiny_handoff(tern_runtime_options *o) { o->handoff_capacity = 4; }
static void no_workers(tern_runtime_options *o) { o->workers = 0; }
static void many_workers(tern_runtime_options *o) { o->workers = 65; }
static void no_backoff(tern_runtime_options *o) { o->emfile_backoff_ms = 0; }
static void long_backoff(tern_runtime_options *o) { o->emfile_backoff_ms = 60001; }

static void test_runtime__bad_options_are_named(void **state)
{
    (void)state;
    expect_bad_option(many_reactors, "reactors");
    expect_bad_option(tiny_mailbox, "mailbox");
    expect_bad_option(huge_mailbox, "mailbox");
    expect_bad_option(tiny_handoff, "handoff");
    expect_bad_option(no_workers, "workers");
    expect_bad_option(many_workers, "workers");
    expect_bad_option(no_backoff, "emfile");
    expect_bad_option(long_backoff, "emfile");
}

static void test_runtime__wrong_state(void **state)
{
    fixture *f = *state;
    tern_runtime *rt = new_runtime(f, 1);
    assert_int_equal(tern_runtime_stop(rt, 0), TERN_EINVAL); /* never started */
    assert_int_equal(tern_runtime_join(rt), TERN_EINVAL);
    start(f);
    assert_int_equal(tern_runtime_start(rt), TERN_EBUSY);
    assert_int_equal(tern_runtime_stop_on_signals(rt, 0, NULL, NULL), TERN_EBUSY);
    assert_int_equal(tern_runtime_stop(rt, 0), 0);
    assert_int_equal(tern_runtime_join(rt), 0);
    f->started = false;
}

static void test_runtime__zero_reactors_means_online_cpus(void **state)
{
    fixture *f = *state;
    new_runtime(f, 0);
    start(f);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cpus > 0);
    unsigned want = cpus > TERN_MAX_REACTORS ? TERN_MAX_REACTORS : (unsigned)cpus;
    assert_int_equal(tern_runtime_reactor_count(f->rt), want);
    assert_non_null(tern_runtime_reactor(f->rt, want - 1));
    assert_null(tern_runtime_reactor(f->rt, want));
}

/* ---- stats ------------------------------------------------------------------------------- */

static void test_stats__bad_arguments_and_format(void **state)
{
    fixture *f = *state;
    new_runtime(f, 1);
    start(f);
    tern_stats st;
    assert_int_equal(tern_runtime_stats(NULL, &st), TERN_EINVAL);
    assert_int_equal(tern_runtime_stats(f->rt, NULL), TERN_EINVAL);
    assert_int_equal(tern_runtime_reactor_stats(f->rt, 1, &st), TERN_EINVAL);
    assert_int_equal(tern_runtime_reactor_stats(f->rt, 0, &st), 0);
    assert_int_equal(tern_runtime_stats(f->rt, &st), 0);

    char buf[2048];
    ssize_t n = tern_stats_format(&st, TERN_STATS_JSON, buf, sizeof buf);
    assert_true(n > 2 && (size_t)n < sizeof buf);
    assert_int_equal(strlen(buf), (size_t)n);
    assert_int_equal(buf[0], '{');
    assert_int_equal(buf[n - 1], '}');
    assert_null(strchr(buf, '\n'));
    assert_non_null(strstr(buf, "connections_accepted"));
    n = tern_stats_format(&st, TERN_STATS_TEXT, buf, sizeof buf);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    assert_non_null(strstr(buf, "connections_accepted="));
    assert_null(strchr(buf, '\n'));
    /* cut output: snprintf-like */
    char small[8];
    ssize_t full = tern_stats_format(&st, TERN_STATS_TEXT, small, sizeof small);
    assert_int_equal(full, n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(tern_stats_format(&st, (tern_stats_format_kind)9, buf, sizeof buf),
                     TERN_EINVAL);
}

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
    fixture *f = *state;
    new_runtime(f, 1);
    start(f);
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
    fixture *f = *state;
    new_runtime(f, 1);
    start(f);
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
    fixture *f = *state;
    new_runtime(f, 1);
    start(f);
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
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_listen__unparsable_address),
        T(test_listen__setters_validate),
        T(test_listen__port_in_use),
        T(test_runtime__options_defaults),
        T(test_runtime__bad_options_are_named),
        T(test_runtime__wrong_state),
        T(test_runtime__zero_reactors_means_online_cpus),
        T(test_stats__bad_arguments_and_format),
        T(test_connect__refused),
        T(test_connect__name_that_does_not_resolve),
        T(test_socket__calls_in_the_wrong_state),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

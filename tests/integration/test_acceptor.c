/* SPDX-License-Identifier: MIT */
/*
 * The acceptor: a plaintext server on 4 reactors takes 1,000 loopback connections and every
 * reactor serves some (round robin); least connections fills the emptiest reactors; with
 * SO_REUSEPORT every reactor accepts on its own listener; two servers share a runtime.
 * Clients are plain sockets on the test thread.
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

#include "support.h"

#define REACTORS 4
#define MAX_FDS 1200

typedef struct fixture {
    tern_runtime *rt;
    bool started;
    ts_echo echo, echo2;
    int fds[MAX_FDS];
    size_t nfds;
} fixture;

static _Atomic int port_reactor[65536];

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    ts_echo_init(&f->echo);
    ts_echo_init(&f->echo2);
    for (size_t i = 0; i < 65536; i++) {
        atomic_store(&port_reactor[i], -1);
    }
    *state = f;
    return 0;
}

static void close_fds(fixture *f)
{
    for (size_t i = 0; i < f->nfds; i++) {
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
        }
    }
    f->nfds = 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close_fds(f);
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

static void start(fixture *f)
{
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
    assert_int_equal(tern_runtime_reactor_count(f->rt), REACTORS);
}

static int open_client(fixture *f, uint16_t port)
{
    assert_true(f->nfds < MAX_FDS);
    int fd = ts_connect(port, 5000);
    if (fd < 0) {
        fail_msg("connect to port %u: %s", port, strerror(-fd));
    }
    f->fds[f->nfds++] = fd;
    return fd;
}

static void echo_one_byte(int fd, uint8_t b)
{
    int rc = ts_echo_roundtrip(fd, &b, 1, 5000);
    if (rc != 0) {
        fail_msg("echo of one byte: %s", strerror(-rc));
    }
}

static void log_spread(const char *what, const uint64_t *n, unsigned k)
{
    char line[256];
    size_t len = 0;
    for (unsigned i = 0; i < k; i++) {
        len += (size_t)snprintf(line + len, sizeof line - len, " %llu", (unsigned long long)n[i]);
    }
    ts_log("%s:%s", what, line);
}

/* Opens @p total connections in batches, echoes a byte on each, closes each batch. */
static void connect_in_batches(fixture *f, ts_echo *e, uint16_t port, size_t total,
                               size_t batch)
{
    uint64_t base = atomic_load(&e->incoming);
    for (size_t done = 0; done < total; done += batch) {
        size_t n = total - done < batch ? total - done : batch;
        for (size_t i = 0; i < n; i++) {
            open_client(f, port);
        }
        if (!ts_wait_u64_ge(&e->incoming, base + done + n, 10000)) {
            fail_msg("%llu of %zu connections reached incoming",
                     (unsigned long long)(atomic_load(&e->incoming) - base), done + n);
        }
        for (size_t i = 0; i < f->nfds; i++) {
            echo_one_byte(f->fds[i], (uint8_t)(done + i));
        }
        close_fds(f);
    }
    if (!ts_wait_u64_ge(&e->disconnected, base + total, 10000)) {
        fail_msg("only %llu of %zu server sockets disconnected",
                 (unsigned long long)atomic_load(&e->disconnected), total);
    }
}

static void test_acceptor__round_robin_reaches_every_reactor(void **state)
{
    fixture *f = *state;
    f->rt = ts_runtime_new(REACTORS, 0);
    assert_non_null(f->rt);
    tern_server *srv = ts_echo_server(f->rt, &f->echo);
    assert_non_null(srv);
    uint16_t port = tern_server_port(srv);
    assert_int_not_equal(port, 0);
    start(f);

    const size_t total = TS_SCALE(1000, 400);
    connect_in_batches(f, &f->echo, port, total, 100);

    uint64_t n[REACTORS], sum = 0;
    for (unsigned i = 0; i < REACTORS; i++) {
        n[i] = atomic_load(&f->echo.per_reactor[i]);
        sum += n[i];
    }
    log_spread("round robin, connections per reactor", n, REACTORS);
    assert_int_equal(sum, total);
    for (unsigned i = 0; i < REACTORS; i++) {
        /* round robin: each reactor within 10% of the total of its fair share */
        assert_in_range(n[i], total / REACTORS - total / 10, total / REACTORS + total / 10);
        tern_stats rs;
        assert_int_equal(tern_runtime_reactor_stats(f->rt, i, &rs), 0);
        assert_int_equal(rs.connections_accepted, n[i]);
    }
    assert_int_equal(atomic_load(&f->echo.violations), 0);
    assert_int_equal(atomic_load(&f->echo.bytes_echoed), total);

    bool ok;
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).connections_open == 0, 5000);
    tern_stats st = ts_stats(f->rt);
    assert_true(ok);
    assert_int_equal(st.connections_accepted, total);
    assert_int_equal(st.connections_closed, total);
    assert_int_equal(st.connections_rejected, 0);
    assert_int_equal(st.handoff_full, 0);
    assert_int_equal(st.bytes_in, total);
    assert_int_equal(st.bytes_out, total);
}

/* Opens one connection and waits until the server has it; returns its reactor. */
static int open_and_place(fixture *f, ts_echo *e, uint16_t port)
{
    uint64_t before = atomic_load(&e->incoming);
    int fd = open_client(f, port);
    if (!ts_wait_u64_ge(&e->incoming, before + 1, 5000)) {
        fail_msg("connection %zu never reached incoming", f->nfds);
    }
    uint16_t lp = ts_local_port(fd);
    assert_int_not_equal(lp, 0);
    int r = atomic_load(&port_reactor[lp]);
    assert_in_range(r, 0, REACTORS - 1);
    return r;
}

static void open_per_reactor(const fixture *f, uint64_t *open)
{
    for (unsigned i = 0; i < REACTORS; i++) {
        open[i] = atomic_load(&f->echo.per_reactor_open[i]);
    }
}

static uint64_t spread(const uint64_t *n)
{
    uint64_t lo = n[0], hi = n[0];
    for (unsigned i = 1; i < REACTORS; i++) {
        lo = n[i] < lo ? n[i] : lo;
        hi = n[i] > hi ? n[i] : hi;
    }
    return hi - lo;
}

static void test_acceptor__least_connections_fills_the_emptiest(void **state)
{
    fixture *f = *state;
    f->rt = ts_runtime_new(REACTORS, 0);
    assert_non_null(f->rt);
    f->echo.port_reactor = port_reactor;
    tern_server *srv = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(srv);
    f->echo.srv = srv;
    assert_int_equal(tern_server_set_balance_policy(srv, TERN_BALANCE_LEAST_CONNECTIONS), 0);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    uint16_t port = tern_server_port(srv);
    start(f);

    /* 40 long-lived connections, one at a time */
    const unsigned first = 40;
    for (unsigned i = 0; i < first; i++) {
        open_and_place(f, &f->echo, port);
    }
    uint64_t open[REACTORS];
    open_per_reactor(f, open);
    log_spread("least connections, 40 open", open, REACTORS);
    assert_true(spread(open) <= 1);

    /* close everything that reactors 0 and 1 hold */
    size_t closed = 0;
    for (size_t i = 0; i < f->nfds; i++) {
        int r = atomic_load(&port_reactor[ts_local_port(f->fds[i])]);
        if (r == 0 || r == 1) {
            close(f->fds[i]);
            f->fds[i] = -1;
            closed++;
        }
    }
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&f->echo.disconnected) >= closed, 5000);
    assert_true(ok);
    for (unsigned i = 0; i < 2; i++) {
        tern_stats rs;
        TS_WAIT_UNTIL(ok, tern_runtime_reactor_stats(f->rt, i, &rs) == 0 &&
                              rs.connections_open == 0, 5000);
        assert_true(ok);
    }

    /* the next 20 go to the two empty reactors */
    uint64_t placed[REACTORS] = {0};
    for (unsigned i = 0; i < 20; i++) {
        placed[open_and_place(f, &f->echo, port)]++;
    }
    log_spread("least connections, 20 new after emptying reactors 0 and 1", placed, REACTORS);
    assert_true(placed[2] + placed[3] <= 2);
    open_per_reactor(f, open);
    log_spread("least connections, open at the end", open, REACTORS);
    assert_true(spread(open) <= 2);
    for (unsigned i = 0; i < REACTORS; i++) {
        tern_stats rs;
        assert_int_equal(tern_runtime_reactor_stats(f->rt, i, &rs), 0);
        assert_int_equal(rs.connections_open, open[i]);
    }
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_acceptor__reuseport_listeners_accept(void **state)
{
    fixture *f = *state;
    f->rt = ts_runtime_new(REACTORS, 0);
    assert_non_null(f->rt);
    f->echo.port_reactor = port_reactor; /* incoming checks the accept's peer address */
    tern_server *srv = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(srv);
    f->echo.srv = srv;
    assert_int_equal(tern_server_set_reuseport(srv, true), 0);
    int rc = tern_server_listen(srv, "127.0.0.1", 0);
    if (rc != 0) {
        fail_msg("listen with SO_REUSEPORT: %s: %s", tern_err_name(rc),
                 tern_server_error_string(srv));
    }
    uint16_t port = tern_server_port(srv);
    assert_int_not_equal(port, 0);
    start(f);

    const size_t total = TS_SCALE(200, 100);
    connect_in_batches(f, &f->echo, port, total, 50);
    uint64_t n[REACTORS], sum = 0;
    for (unsigned i = 0; i < REACTORS; i++) {
        n[i] = atomic_load(&f->echo.per_reactor[i]);
        sum += n[i];
    }
    log_spread("SO_REUSEPORT, connections per reactor", n, REACTORS);
    assert_int_equal(sum, total);
    for (unsigned i = 0; i < REACTORS; i++) {
        assert_true(n[i] > 0); /* the kernel spreads by hash: each listener gets some */
    }
    assert_int_equal(ts_stats(f->rt).connections_accepted, total);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_acceptor__two_servers_share_a_runtime(void **state)
{
    fixture *f = *state;
    f->rt = ts_runtime_new(2, 0);
    assert_non_null(f->rt);
    tern_server *a = ts_echo_server(f->rt, &f->echo);
    tern_server *b = ts_echo_server(f->rt, &f->echo2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_not_equal(tern_server_port(a), tern_server_port(b));
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->started = true;
    connect_in_batches(f, &f->echo, tern_server_port(a), 20, 10);
    connect_in_batches(f, &f->echo2, tern_server_port(b), 30, 10);
    assert_int_equal(atomic_load(&f->echo.incoming), 20);
    assert_int_equal(atomic_load(&f->echo2.incoming), 30);
    assert_int_equal(ts_stats(f->rt).connections_accepted, 50);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
    assert_int_equal(atomic_load(&f->echo2.violations), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_acceptor__round_robin_reaches_every_reactor),
        T(test_acceptor__least_connections_fills_the_emptiest),
        T(test_acceptor__reuseport_listeners_accept),
        T(test_acceptor__two_servers_share_a_runtime),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

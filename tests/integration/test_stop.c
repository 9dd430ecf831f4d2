/* SPDX-License-Identifier: MIT */
/*
 * Stopping and connection limits: a graceful stop keeps serving open connections until they
 * close (join returns then, well before the deadline); the deadline aborts connections that
 * never close; a second stop, or a stop with drain 0, aborts at once. The idle timeout
 * closes idle connections only; max_connections closes the ones over the limit at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define MAX_FDS 16

typedef struct fixture {
    tern_runtime *rt;
    tern_server *srv;
    uint16_t port;
    bool started, joined;
    ts_echo echo;
    int fds[MAX_FDS];
    size_t nfds;
    pthread_t joiner;
    bool joiner_running;
    _Atomic int join_done;
    _Atomic uint64_t join_at_ms;
    int join_rc;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    ts_echo_init(&f->echo);
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
        if (f->started && !f->joined) {
            tern_runtime_stop(f->rt, 0);
            if (f->joiner_running) {
                pthread_join(f->joiner, NULL);
            } else {
                tern_runtime_join(f->rt);
            }
        }
        tern_runtime_free(f->rt);
    }
    free(f);
    return 0;
}

/* An echo server on 2 reactors; @p configure (may be NULL) runs before listen. */
static void start_server(fixture *f, void (*configure)(tern_server *srv))
{
    f->rt = ts_runtime_new(2, 0);
    assert_non_null(f->rt);
    f->srv = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(f->srv);
    f->echo.srv = f->srv;
    if (configure != NULL) {
        configure(f->srv);
    }
    assert_int_equal(tern_server_listen(f->srv, "127.0.0.1", 0), 0);
    f->port = tern_server_port(f->srv);
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
}

static int client(fixture *f)
{
    assert_true(f->nfds < MAX_FDS);
    int fd = ts_connect(f->port, 5000);
    if (fd < 0) {
        fail_msg("connect: %s", strerror(-fd));
    }
    f->fds[f->nfds++] = fd;
    return fd;
}

static void close_client(fixture *f, size_t i)
{
    close(f->fds[i]);
    f->fds[i] = -1;
}

static void roundtrip(int fd, const char *what)
{
    uint8_t buf[512];
    ts_pattern_fill(buf, sizeof buf, (uint64_t)fd, 0);
    int rc = ts_echo_roundtrip(fd, buf, sizeof buf, 5000);
    if (rc != 0) {
        fail_msg("%s: echo failed: %s", what, strerror(-rc));
    }
}

/* A served client, counted by the server. */
static int served_client(fixture *f)
{
    uint64_t before = atomic_load(&f->echo.incoming);
    int fd = client(f);
    roundtrip(fd, "new client");
    assert_true(ts_wait_u64_ge(&f->echo.incoming, before + 1, 5000));
    return fd;
}

/* The server ended this connection: EOF or a reset, within @p ms. */
static void expect_closed_by_server(int fd, unsigned ms, const char *what)
{
    int rc = ts_wait_eof(fd, ms);
    if (rc != 0 && rc != -ECONNRESET) {
        fail_msg("%s: the connection was not closed by the server (%s)", what,
                 rc == 1 ? "data came" : strerror(-rc));
    }
}

static void *joiner_main(void *arg)
{
    fixture *f = arg;
    f->join_rc = tern_runtime_join(f->rt);
    atomic_store(&f->join_at_ms, ts_now_ms());
    atomic_store(&f->join_done, 1);
    return NULL;
}

static void start_joiner(fixture *f)
{
    assert_int_equal(pthread_create(&f->joiner, NULL, joiner_main, f), 0);
    f->joiner_running = true;
}

static void wait_joiner(fixture *f, unsigned timeout_ms)
{
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&f->join_done) != 0, timeout_ms);
    if (!ok) {
        fail_msg("tern_runtime_join did not return within %u ms", timeout_ms);
    }
    pthread_join(f->joiner, NULL);
    f->joiner_running = false;
    f->joined = true;
    assert_int_equal(f->join_rc, 0);
}

/* ---- graceful stop ------------------------------------------------------------------------ */

static void test_stop__graceful_drain_serves_open_connections(void **state)
{
    fixture *f = *state;
    start_server(f, NULL);
    int fd = served_client(f);

    uint64_t t_stop = ts_now_ms();
    assert_int_equal(tern_runtime_stop(f->rt, 10000), 0);
    assert_true(tern_runtime_is_stopping(f->rt));
    start_joiner(f);

    /* no new connection is served after stop */
    int late = ts_connect(f->port, 1000);
    if (late >= 0) {
        uint8_t b = 1, back;
        int rc = ts_send_all(late, &b, 1, 1000);
        if (rc == 0) {
            rc = ts_recv_exact(late, &back, 1, 300);
            assert_int_not_equal(rc, 0);
        }
        close(late);
    }

    /* the open connection is still served, in both directions, while draining */
    ts_sleep_ms(50);
    assert_int_equal(atomic_load(&f->join_done), 0);
    uint8_t big[65536];
    ts_pattern_fill(big, sizeof big, 77, 0);
    assert_int_equal(ts_echo_roundtrip(fd, big, sizeof big, 5000), 0);
    assert_int_equal(atomic_load(&f->join_done), 0);

    /* it closes on its own: the runtime ends long before the deadline */
    uint64_t t_close = ts_now_ms();
    close_client(f, 0);
    wait_joiner(f, 5000);
    uint64_t join_at = atomic_load(&f->join_at_ms);
    ts_log("stop at 0 ms, client closed at %llu ms, join returned at %llu ms",
           (unsigned long long)(t_close - t_stop), (unsigned long long)(join_at - t_stop));
    assert_true(join_at >= t_close);
    assert_true(join_at - t_close < 3000);
    assert_true(join_at - t_stop < 10000);
    assert_int_equal(atomic_load(&f->echo.incoming), 1);
    assert_int_equal(atomic_load(&f->echo.disconnected_clean), 1);
    assert_int_equal(ts_stats(f->rt).connections_open, 0);
}

static void test_stop__deadline_aborts_stuck_connections(void **state)
{
    fixture *f = *state;
    start_server(f, NULL);
    for (int i = 0; i < 3; i++) {
        served_client(f);
    }
    uint64_t t0 = ts_now_ms();
    assert_int_equal(tern_runtime_stop(f->rt, 300), 0);
    assert_int_equal(tern_runtime_join(f->rt), 0);
    f->joined = true;
    uint64_t took = ts_now_ms() - t0;
    ts_log("drain 300 ms with 3 stuck connections: join after %llu ms",
           (unsigned long long)took);
    assert_true(took >= 250);
    assert_true(took < 3000);
    for (size_t i = 0; i < 3; i++) {
        expect_closed_by_server(f->fds[i], 1000, "stuck connection after the deadline");
    }
    assert_int_equal(atomic_load(&f->echo.disconnected), 3);
    assert_int_equal(ts_stats(f->rt).connections_open, 0);
}

static void test_stop__second_stop_aborts_at_once(void **state)
{
    fixture *f = *state;
    start_server(f, NULL);
    served_client(f);
    served_client(f);
    assert_int_equal(tern_runtime_stop(f->rt, 30000), 0);
    start_joiner(f);
    ts_sleep_ms(50);
    assert_int_equal(atomic_load(&f->join_done), 0); /* draining: 30 s allowed */
    uint64_t t0 = ts_now_ms();
    assert_int_equal(tern_runtime_stop(f->rt, 30000), 0);
    wait_joiner(f, 3000);
    ts_log("second stop: join after %llu ms",
           (unsigned long long)(atomic_load(&f->join_at_ms) - t0));
    assert_true(atomic_load(&f->join_at_ms) - t0 < 2000);
    expect_closed_by_server(f->fds[0], 1000, "after the second stop");
    expect_closed_by_server(f->fds[1], 1000, "after the second stop");
    assert_int_equal(atomic_load(&f->echo.disconnected), 2);
}

static void test_stop__zero_drain_closes_at_once(void **state)
{
    fixture *f = *state;
    start_server(f, NULL);
    served_client(f);
    served_client(f);
    int64_t took = ts_stop_join(f->rt, 0);
    f->joined = true;
    ts_log("stop with drain 0: join after %lld ms", (long long)took);
    assert_true(took >= 0);
    assert_true(took < 2000);
    expect_closed_by_server(f->fds[0], 1000, "after stop(0)");
    expect_closed_by_server(f->fds[1], 1000, "after stop(0)");
    assert_int_equal(atomic_load(&f->echo.disconnected), 2);
}

/* ---- idle timeout -------------------------------------------------------------------------- */

static void idle_400ms(tern_server *srv)
{
    assert_int_equal(tern_server_set_idle_timeout(srv, 400), 0);
}

static void test_stop__idle_timeout_closes_idle_connections(void **state)
{
    fixture *f = *state;
    start_server(f, idle_400ms);
    uint64_t t_a = ts_now_ms();
    int a = served_client(f);
    int b = served_client(f);

    /* b stays busy for 1 s (two and a half idle periods); a says nothing */
    bool a_closed = false;
    uint64_t a_closed_after = 0;
    for (int i = 0; i < 20; i++) {
        roundtrip(b, "busy connection");
        if (!a_closed) {
            int rc = ts_wait_eof(a, 50);
            if (rc == 0 || rc == -ECONNRESET) {
                a_closed = true;
                a_closed_after = ts_now_ms() - t_a;
            } else {
                assert_int_equal(rc, -ETIMEDOUT);
            }
        } else {
            ts_sleep_ms(50);
        }
    }
    if (!a_closed) {
        expect_closed_by_server(a, 2000, "idle connection");
        a_closed_after = ts_now_ms() - t_a;
    }
    ts_log("idle connection closed after %llu ms (timeout 400 ms)",
           (unsigned long long)a_closed_after);
    assert_true(a_closed_after >= 350);
    /* b was never idle long enough: still served */
    roundtrip(b, "busy connection after 1 s");
    /* now b goes idle too */
    uint64_t t_b = ts_now_ms();
    expect_closed_by_server(b, 2000, "connection gone idle");
    assert_true(ts_now_ms() - t_b >= 350);

    assert_true(ts_wait_u64_ge(&f->echo.disconnected, 2, 2000));
    assert_int_equal(atomic_load(&f->echo.disconnected_idle), 2);
    tern_stats st = ts_stats(f->rt);
    assert_int_equal(st.timeouts_idle, 2);
    assert_int_equal(st.connections_open, 0);
}

/* ---- max_connections ------------------------------------------------------------------------ */

static void max_3(tern_server *srv)
{
    assert_int_equal(tern_server_set_max_connections(srv, 3), 0);
}

static void test_stop__max_connections_rejects_the_rest(void **state)
{
    fixture *f = *state;
    start_server(f, max_3);
    for (int i = 0; i < 3; i++) {
        served_client(f);
    }
    /* the fourth is accepted by the kernel, then closed at once, never served */
    int extra = client(f);
    expect_closed_by_server(extra, 2000, "connection over max_connections");
    bool ok;
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).connections_rejected == 1, 2000);
    assert_true(ok);
    assert_int_equal(atomic_load(&f->echo.incoming), 3);
    for (size_t i = 0; i < 3; i++) {
        roundtrip(f->fds[i], "connection under the limit"); /* untouched */
    }

    /* one leaves: room for one more */
    close_client(f, 0);
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).connections_open == 2, 2000);
    assert_true(ok);
    served_client(f);
    assert_int_equal(atomic_load(&f->echo.incoming), 4);
    tern_stats st = ts_stats(f->rt);
    assert_int_equal(st.connections_rejected, 1);
    assert_int_equal(st.connections_open, 3);
    ts_log("max_connections 3: accepted %llu, rejected %llu",
           (unsigned long long)st.connections_accepted,
           (unsigned long long)st.connections_rejected);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_stop__graceful_drain_serves_open_connections),
        T(test_stop__deadline_aborts_stuck_connections),
        T(test_stop__second_stop_aborts_at_once),
        T(test_stop__zero_drain_closes_at_once),
        T(test_stop__idle_timeout_closes_idle_connections),
        T(test_stop__max_connections_rejects_the_rest),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The admin listener (apps/common/admin.c) inside a runtime, over 127.0.0.1: the program's
 * callbacks reach /metrics and /stats.json, /healthz follows the program's `healthy` and the
 * runtime's stop (503 "draining" on a connection opened before the stop), HEAD sends the
 * headers only, HTTP/1.0 and bare-LF heads are served, a client that leaves mid-head costs
 * nothing, at most 64 admin connections are open (the 65th is closed on accept), and a bad
 * address fails app_admin_start with a reason.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#include "common/admin.h"
#include "support.h"

typedef struct fixture {
    tern_runtime *rt;
    struct app_admin *admin;
    uint16_t port;
    atomic_bool healthy;
    _Atomic uint64_t metric_calls;
} fixture;

static void my_metrics(struct prom_buf *out, void *user)
{
    fixture *f = user;
    uint64_t n = atomic_fetch_add(&f->metric_calls, 1) + 1;
    prom_counter(out, "test_admin_scrapes_total", "Scrapes seen by the test's callback.", n);
    struct prom_label l = {"quote", "say \"hi\"\n"};
    prom_family(out, "test_admin_labelled", PROM_GAUGE, "A label that needs escaping.");
    prom_sample_u64(out, "test_admin_labelled", &l, 1, 1);
}

static void my_json(struct prom_buf *out, void *user)
{
    prom_printf(out, "{\"answer\":42}");
}

static bool my_healthy(void *user)
{
    fixture *f = user;
    return atomic_load(&f->healthy);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    atomic_store(&f->healthy, true);
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 2;
    f->rt = tern_runtime_new(&o);
    assert_non_null(f->rt);
    const struct app_admin_source src = {
        .metrics = my_metrics, .stats_json = my_json, .healthy = my_healthy, .user = f};
    char err[256] = "";
    assert_int_equal(app_admin_start(f->rt, "127.0.0.1:0", &src, &f->admin, err, sizeof(err)), 0);
    f->port = (uint16_t)app_admin_port(f->admin);
    assert_true(f->port != 0);
    assert_int_equal(tern_runtime_start(f->rt), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (!tern_runtime_is_stopping(f->rt)) {
        tern_runtime_stop(f->rt, 0);
    }
    tern_runtime_join(f->rt);
    tern_runtime_free(f->rt);
    app_admin_free(f->admin);
    free(f);
    return 0;
}

/* Reads until the server closes (5 s at most) into @p buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t len)
{
    size_t got = 0;
    uint64_t deadline = ts_now_ms() + 5000;
    while (got + 1 < len && ts_now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) {
            continue;
        }
        ssize_t n = read(fd, buf + got, len - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* One request: @p req as is; the whole response into @p resp. */
static void request(const fixture *f, const char *req, char *resp, size_t len)
{
    int fd = ts_connect(f->port, 2000);
    assert_true(fd >= 0);
    assert_int_equal(ts_send_all(fd, req, strlen(req), 2000), 0);
    read_all(fd, resp, len);
    close(fd);
}

static void test_admin__callbacks_reach_metrics_and_json(void **state)
{
    fixture *f = *state;
    static char resp[256 * 1024];
    request(f, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", resp, sizeof(resp));
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4"));
    assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(resp, "\ntern_connections_accepted_total "));
    assert_non_null(strstr(resp, "\n# TYPE tern_handshake_duration_seconds histogram\n"));
    assert_non_null(strstr(resp, "\ntest_admin_scrapes_total 1\n"));
    assert_non_null(strstr(resp, "\ntest_admin_labelled{quote=\"say \\\"hi\\\"\\n\"} 1\n"));
    /* the body is as long as Content-Length says */
    const char *body = strstr(resp, "\r\n\r\n");
    assert_non_null(body);
    unsigned long clen = strtoul(strstr(resp, "Content-Length: ") + 16, NULL, 10);
    assert_int_equal(strlen(body + 4), clen);

    request(f, "GET /stats.json HTTP/1.0\n\n", resp, sizeof(resp)); /* bare LF, HTTP/1.0 */
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(resp, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(resp, "{\"runtime\":{\"connections_open\":"));
    assert_non_null(strstr(resp, ",\"app\":{\"answer\":42}}\n"));

    /* rendered directly as well: the same families */
    struct prom_buf out;
    prom_init(&out);
    app_admin_render_metrics(f->admin, &out);
    assert_false(out.failed);
    assert_non_null(strstr(out.data, "\ntest_admin_scrapes_total 2\n"));
    assert_non_null(strstr(out.data, "# TYPE process_open_fds gauge\n"));
    prom_free(&out);
}

static void test_admin__head_and_query_strings(void **state)
{
    fixture *f = *state;
    char resp[4096];
    request(f, "HEAD /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_non_null(strstr(resp, "\r\nContent-Length: 3\r\n"));
    const char *end = strstr(resp, "\r\n\r\n");
    assert_non_null(end);
    assert_string_equal(end + 4, ""); /* no body */
    request(f, "GET /healthz?verbose=1 HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_non_null(strstr(resp, "\r\n\r\nok\n"));
    request(f, "DELETE /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_true(strncmp(resp, "HTTP/1.1 405 ", 13) == 0);
    assert_non_null(strstr(resp, "\r\nAllow: GET, HEAD\r\n"));
    request(f, "get /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp)); /* methods are uppercase */
    assert_true(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
    request(f, "GET healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_true(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
}

static void test_admin__healthz_follows_the_program_and_the_stop(void **state)
{
    fixture *f = *state;
    char resp[4096];
    request(f, "GET /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_non_null(strstr(resp, "\r\n\r\nok\n"));
    atomic_store(&f->healthy, false);
    request(f, "GET /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_true(strncmp(resp, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0);
    assert_non_null(strstr(resp, "\r\n\r\ndraining\n"));
    atomic_store(&f->healthy, true);

    /* a connection made before the stop is still served while the runtime drains */
    int fd = ts_connect(f->port, 2000);
    assert_true(fd >= 0);
    /* make sure it was accepted (a leftover in the backlog is reset by the stop) */
    int probe = ts_connect(f->port, 2000);
    assert_true(probe >= 0);
    assert_int_equal(ts_send_all(probe, "GET /healthz HTTP/1.1\r\n\r\n", 25, 2000), 0);
    read_all(probe, resp, sizeof(resp));
    close(probe);
    assert_non_null(strstr(resp, "ok\n"));
    assert_int_equal(tern_runtime_stop(f->rt, 3000), 0);
    assert_int_equal(ts_send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n", 25, 2000), 0);
    read_all(fd, resp, sizeof(resp));
    close(fd);
    assert_true(strncmp(resp, "HTTP/1.1 503 ", 13) == 0);
    assert_non_null(strstr(resp, "\r\n\r\ndraining\n"));
}

static void test_admin__a_client_leaving_mid_head_costs_nothing(void **state)
{
    fixture *f = *state;
    char resp[4096];
    for (int i = 0; i < 20; i++) {
        int fd = ts_connect(f->port, 2000);
        assert_true(fd >= 0);
        assert_int_equal(ts_send_all(fd, "GET /metr", 9, 2000), 0);
        close(fd);
    }
    request(f, "GET /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_non_null(strstr(resp, "\r\n\r\nok\n"));
    /* each of them ends: nothing open but the scrape's own connection */
    uint64_t deadline = ts_now_ms() + 5000;
    tern_stats st;
    do {
        tern_runtime_stats(f->rt, &st);
    } while (st.connections_open > 0 && ts_now_ms() < deadline && (ts_sleep_ms(10), true));
    assert_int_equal(st.connections_open, 0);
}

/* Waits (5 s at most) until @p n sockets are open in the runtime. */
static bool open_becomes(const fixture *f, uint64_t n)
{
    uint64_t deadline = ts_now_ms() + 5000;
    tern_stats st;
    for (;;) {
        tern_runtime_stats(f->rt, &st);
        if (st.connections_open == n || ts_now_ms() >= deadline) {
            return st.connections_open == n;
        }
        ts_sleep_ms(5);
    }
}

static void test_admin__at_most_64_connections(void **state)
{
    fixture *f = *state;
    int fds[64];
    for (int i = 0; i < 64; i++) {
        fds[i] = ts_connect(f->port, 2000);
        assert_true(fds[i] >= 0);
        assert_int_equal(ts_send_all(fds[i], "G", 1, 2000), 0); /* and nothing more */
    }
    assert_true(open_becomes(f, 64));
    /* the 65th is closed on accept, and counted */
    int extra = ts_connect(f->port, 2000);
    assert_true(extra >= 0);
    int rc = ts_wait_eof(extra, 3000);
    assert_true(rc == 0 || rc == -ECONNRESET);
    close(extra);
    /* counted by the thread that closed it, maybe just after the close reached us */
    tern_stats st;
    uint64_t deadline = ts_now_ms() + 3000;
    do {
        tern_runtime_stats(f->rt, &st);
    } while (st.connections_rejected == 0 && ts_now_ms() < deadline && (ts_sleep_ms(5), true));
    assert_int_equal(st.connections_rejected, 1);
    /* the silent ones leave: the slots are free again */
    for (int i = 0; i < 64; i++) {
        close(fds[i]);
    }
    assert_true(open_becomes(f, 0));
    char resp[4096];
    request(f, "GET /healthz HTTP/1.1\r\n\r\n", resp, sizeof(resp));
    assert_non_null(strstr(resp, "\r\n\r\nok\n"));
}

static void test_admin__bad_address_is_refused_with_a_reason(void **state)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    tern_runtime *rt = tern_runtime_new(&o);
    struct app_admin *a = (struct app_admin *)1;
    char err[256] = "";
    int rc = app_admin_start(rt, "127.0.0.1:notaport", NULL, &a, err, sizeof(err));
    assert_true(rc < 0);
    assert_null(a);
    assert_true(err[0] != '\0');
    tern_runtime_free(rt);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_admin__callbacks_reach_metrics_and_json),
        T(test_admin__head_and_query_strings),
        T(test_admin__healthz_follows_the_program_and_the_stop),
        T(test_admin__a_client_leaving_mid_head_costs_nothing),
        T(test_admin__at_most_64_connections),
        cmocka_unit_test(test_admin__bad_address_is_refused_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

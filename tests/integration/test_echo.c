/* SPDX-License-Identifier: MIT */
/*
 * Plaintext echo over loopback: 500 concurrent connections with random sizes up to 1 MiB,
 * half of them tern client sockets (the connect path, writes queued while connecting, write
 * limits), half plain poll() clients; every byte is checked in both directions. Then a slow
 * reader against a small server read buffer, read_line / can_read_line, half-close, and the
 * write room.
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
#include <unistd.h>

#include "support.h"

typedef struct fixture {
    tern_runtime *rt;      /* the server's */
    tern_runtime *client;  /* tern client sockets */
    bool started, client_started;
    ts_echo echo;
    pthread_t thread;
    bool thread_running;
    int fd;
    /* state the client reactors touch: freed only after they stopped */
    void *client_state[2];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    ts_echo_init(&f->echo);
    f->fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->thread_running) {
        pthread_join(f->thread, NULL);
    }
    if (f->fd >= 0) {
        close(f->fd);
    }
    tern_runtime *rts[2] = {f->client, f->rt};
    bool started[2] = {f->client_started, f->started};
    for (int i = 0; i < 2; i++) {
        if (rts[i] != NULL) {
            if (started[i]) {
                tern_runtime_stop(rts[i], 0);
                tern_runtime_join(rts[i]);
            }
            tern_runtime_free(rts[i]);
        }
    }
    free(f->client_state[0]);
    free(f->client_state[1]);
    free(f);
    return 0;
}

static uint16_t start_echo_server(fixture *f, unsigned reactors)
{
    f->rt = ts_runtime_new(reactors, 0);
    assert_non_null(f->rt);
    tern_server *srv = ts_echo_server(f->rt, &f->echo);
    assert_non_null(srv);
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
    return tern_server_port(srv);
}

/* ---- tern client sockets ----------------------------------------------------------------- */

#define CLIENT_WRITE_LIMIT 65536
#define CLIENT_CHUNK 16384

typedef struct tclient {
    struct crun *run;
    unsigned idx;
    tern_socket *s;
    size_t size;
    uint64_t seed;
    size_t sent, got;
    bool shut, read_finished, connected;
    int state; /* 0 running, 1 done, 2 failed */
    int last_error;
    uint64_t read_finished_ms, disconnected_ms; /* ts_now_ms() at those events */
    char why[160];
} tclient;

struct crun;
typedef struct slice {
    struct crun *run;
    size_t begin, end;
} slice;

typedef struct crun {
    slice slices[2];
    uint16_t port;
    tclient *c;
    size_t n;
    _Atomic uint64_t finished;   /* clients that reached `disconnected` */
    _Atomic uint64_t failed;
    _Atomic uint64_t enobufs_ok; /* over-limit writes refused as the contract says */
    _Atomic int first_failed;    /* index + 1 */
} crun;

static void client_note(tclient *c, const char *fmt, va_list ap)
{
    c->state = 2;
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    int none = 0;
    atomic_compare_exchange_strong(&c->run->first_failed, &none, (int)c->idx + 1);
    atomic_fetch_add(&c->run->failed, 1);
}

/* Marks @p c failed and aborts it: `disconnected` follows, and frees. */
static void client_fail(tclient *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_fail(tclient *c, const char *fmt, ...)
{
    if (c->state != 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    client_note(c, fmt, ap);
    va_end(ap);
    tern_socket_abort(c->s);
}

/* Marks @p c failed from its `disconnected` event (nothing left to abort). */
static void client_failed(tclient *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void client_failed(tclient *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client_note(c, fmt, ap);
    va_end(ap);
}

static void client_pump(tclient *c)
{
    uint8_t chunk[CLIENT_CHUNK];
    while (c->sent < c->size) {
        size_t room = tern_socket_write_room(c->s);
        if (room == 0) {
            return; /* bytes_written resumes */
        }
        size_t n = c->size - c->sent;
        n = n < room ? n : room;
        n = n < sizeof chunk ? n : sizeof chunk;
        ts_pattern_fill(chunk, n, c->seed, c->sent);
        int rc = tern_socket_write(c->s, chunk, n);
        if (rc == TERN_ENOBUFS) {
            client_fail(c, "write of %zu with a room of %zu: ENOBUFS", n, room);
            return;
        }
        if (rc < 0) {
            client_fail(c, "write: %s", tern_err_name(rc));
            return;
        }
        c->sent += n;
    }
    if (!c->shut && tern_socket_state(c->s) == TERN_SOCKET_STATE_CONNECTED) {
        int rc = tern_socket_shutdown_write(c->s);
        if (rc != 0) {
            client_fail(c, "shutdown_write: %s", tern_err_name(rc));
            return;
        }
        c->shut = true;
        /* writing after our FIN is refused */
        if (tern_socket_write(c->s, "x", 1) != TERN_ENOTCONN) {
            client_fail(c, "write after shutdown_write was accepted");
        }
    }
}

static void client_connected(tern_socket *s, void *user)
{
    tclient *c = user;
    c->connected = true;
    if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED) {
        client_fail(c, "connected in state %d", (int)tern_socket_state(s));
        return;
    }
    if (c->idx % 16 == 0) {
        /* one byte over the write limit: refused, and nothing is queued */
        static const uint8_t zeros[CLIENT_WRITE_LIMIT + 1];
        size_t queued = tern_socket_bytes_to_write(s);
        int rc = tern_socket_write(s, zeros, sizeof zeros);
        if (rc != TERN_ENOBUFS || tern_socket_bytes_to_write(s) != queued) {
            client_fail(c, "write past the limit: %s, queue %zu -> %zu", tern_err_name(rc),
                        queued, tern_socket_bytes_to_write(s));
            return;
        }
        atomic_fetch_add(&c->run->enobufs_ok, 1);
    }
    client_pump(c);
}

static void client_bytes_written(tern_socket *s, size_t n, void *user)
{
    (void)s;
    (void)n;
    client_pump(user);
}

static void client_ready_read(tern_socket *s, void *user)
{
    tclient *c = user;
    while (c->state == 0) {
        tern_buf v;
        if (tern_socket_peek_view(s, &v) != 0) {
            client_fail(c, "peek_view failed");
            return;
        }
        if (v.len == 0) {
            return;
        }
        if (c->got + v.len > c->size) {
            client_fail(c, "%zu bytes back, sent %zu", c->got + v.len, c->size);
            return;
        }
        size_t bad = ts_pattern_check(v.base, v.len, c->seed, c->got);
        if (bad != v.len) {
            client_fail(c, "byte %zu of %zu differs", c->got + bad, c->size);
            return;
        }
        if (tern_socket_consume(s, v.len) != 0) {
            client_fail(c, "consume failed");
            return;
        }
        c->got += v.len;
    }
}

static void client_read_finished(tern_socket *s, void *user)
{
    tclient *c = user;
    c->read_finished = true;
    c->read_finished_ms = ts_now_ms();
    if (!tern_socket_at_end(s)) {
        client_fail(c, "read_finished without at_end");
    } else if (c->got != c->size) {
        client_fail(c, "end of stream after %zu of %zu bytes (sent %zu)", c->got, c->size,
                    c->sent);
    }
}

static void client_error(tern_socket *s, int err, void *user)
{
    (void)s;
    tclient *c = user;
    c->last_error = err;
}

static void client_disconnected(tern_socket *s, int reason, void *user)
{
    tclient *c = user;
    c->disconnected_ms = ts_now_ms();
    if (c->state == 0) {
        if (reason == 0 && c->read_finished && c->got == c->size && c->sent == c->size &&
            c->connected) {
            c->state = 1;
        } else {
            client_failed(c, "disconnected (%s, last error %s) after %zu/%zu sent, %zu back",
                        tern_err_name(reason), tern_err_name(c->last_error), c->sent, c->size,
                        c->got);
        }
    }
    tern_socket_free(s);
    c->s = NULL;
    atomic_fetch_add(&c->run->finished, 1);
}

static const tern_socket_events client_events = {
    .connected = client_connected,
    .ready_read = client_ready_read,
    .bytes_written = client_bytes_written,
    .read_finished = client_read_finished,
    .error = client_error,
    .disconnected = client_disconnected,
};

static void start_slice(tern_reactor *r, void *arg)
{
    slice *sl = arg;
    crun *run = sl->run;
    for (size_t i = sl->begin; i < sl->end; i++) {
        tclient *c = &run->c[i];
        c->s = tern_socket_new(r);
        if (c->s == NULL) {
            c->state = 2;
            snprintf(c->why, sizeof c->why, "tern_socket_new failed");
            atomic_fetch_add(&run->failed, 1);
            atomic_fetch_add(&run->finished, 1);
            continue;
        }
        tern_socket_set_events(c->s, &client_events, c);
        tern_socket_set_write_buffer_size(c->s, CLIENT_WRITE_LIMIT);
        tern_socket_set_connect_timeout(c->s, 20000);
        int rc = tern_socket_connect_to_host(c->s, "127.0.0.1", run->port);
        if (rc != 0) {
            c->state = 2;
            snprintf(c->why, sizeof c->why, "connect_to_host: %s", tern_err_name(rc));
            tern_socket_free(c->s);
            c->s = NULL;
            atomic_fetch_add(&run->failed, 1);
            atomic_fetch_add(&run->finished, 1);
            continue;
        }
        if (i % 2 == 0) {
            client_pump(c); /* queued while CONNECTING, sent once connected */
        }
    }
}

/* ---- plain clients on a thread ------------------------------------------------------------ */

typedef struct raw_run {
    uint16_t port;
    size_t n;
    const size_t *sizes;
    const uint64_t *seeds;
    size_t ok;
    uint64_t took_ms;
    char why[256];
} raw_run;

static void *raw_main(void *arg)
{
    raw_run *rr = arg;
    uint64_t t0 = ts_now_ms();
    rr->ok = ts_exchange_many(rr->port, rr->n, rr->sizes, rr->seeds, rr->n, 90000, rr->why,
                              sizeof rr->why);
    rr->took_ms = ts_now_ms() - t0;
    return NULL;
}

static void test_echo__500_connections_both_directions(void **state)
{
    fixture *f = *state;
    const size_t n = TS_SCALE(500, 100);
    const size_t n_tern = n / 2, n_raw = n - n_tern;
    uint64_t rnd = 0x5eed0001;
    ts_log("seed 0x%llx, %zu connections", (unsigned long long)rnd, n);
    size_t *sizes = calloc(n, sizeof *sizes);
    uint64_t *seeds = calloc(n, sizeof *seeds);
    tclient *tc = calloc(n_tern, sizeof *tc);
    crun *run = calloc(1, sizeof *run);
    f->client_state[0] = tc;
    f->client_state[1] = run;
    assert_non_null(run);
    assert_non_null(sizes);
    assert_non_null(seeds);
    assert_non_null(tc);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t x = ts_rand(&rnd);
        if (i == 0 || i == n_tern) {
            sizes[i] = 1u << 20;
        } else if (i == 1 || i == n_tern + 1) {
            sizes[i] = 0;
        } else if (i % 10 == 0) {
            sizes[i] = (size_t)(x % ((1u << 20) + 1));
        } else {
            sizes[i] = (size_t)(x % (64u * 1024 + 1));
        }
        seeds[i] = i * 7919 + 17;
        total += sizes[i];
    }
    ts_log("%llu bytes each way", (unsigned long long)total);

    uint16_t port = start_echo_server(f, 4);
    f->client = ts_runtime_new(2, 0);
    assert_non_null(f->client);
    assert_int_equal(tern_runtime_start(f->client), 0);
    f->client_started = true;

    run->port = port;
    run->c = tc;
    run->n = n_tern;
    for (size_t i = 0; i < n_tern; i++) {
        tc[i] = (tclient){.run = run, .idx = (unsigned)i, .size = sizes[i], .seed = seeds[i]};
    }
    raw_run rr = {.port = port, .n = n_raw, .sizes = sizes + n_tern, .seeds = seeds + n_tern};
    uint64_t t0 = ts_now_ms();
    assert_int_equal(pthread_create(&f->thread, NULL, raw_main, &rr), 0);
    f->thread_running = true;
    slice *sl = run->slices;
    sl[0] = (slice){run, 0, n_tern / 2};
    sl[1] = (slice){run, n_tern / 2, n_tern};
    for (unsigned k = 0; k < 2; k++) {
        assert_int_equal(ts_post(tern_runtime_reactor(f->client, k), start_slice, &sl[k], 5000),
                         0);
    }

    bool ok = ts_wait_u64_ge(&run->finished, n_tern, 90000);
    uint64_t t_tern = ts_now_ms() - t0;
    pthread_join(f->thread, NULL);
    f->thread_running = false;
    ts_log("tern clients done in %llu ms, plain clients in %llu ms", (unsigned long long)t_tern,
           (unsigned long long)rr.took_ms);
    if (!ok) {
        fail_msg("only %llu of %zu tern clients finished",
                 (unsigned long long)atomic_load(&run->finished), n_tern);
    }
    int ff = atomic_load(&run->first_failed);
    if (ff > 0) {
        fail_msg("%llu tern clients failed; client %d: %s",
                 (unsigned long long)atomic_load(&run->failed), ff - 1, tc[ff - 1].why);
    }
    for (size_t i = 0; i < n_tern; i++) {
        if (tc[i].state != 1) {
            fail_msg("tern client %zu: state %d: %s", i, tc[i].state, tc[i].why);
        }
    }
    uint64_t max_lag = 0;
    for (size_t i = 0; i < n_tern; i++) {
        uint64_t lag = tc[i].disconnected_ms - tc[i].read_finished_ms;
        max_lag = lag > max_lag ? lag : max_lag;
    }
    ts_log("tern clients: longest wait from read_finished to disconnected: %llu ms",
           (unsigned long long)max_lag);
    if (rr.ok != n_raw) {
        fail_msg("%zu of %zu plain clients succeeded: %s", rr.ok, n_raw, rr.why);
    }
    assert_int_equal(atomic_load(&run->enobufs_ok), (n_tern + 15) / 16);

    /* the server saw exactly that */
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).connections_closed >= n, 10000);
    tern_stats st = ts_stats(f->rt);
    assert_true(ok);
    assert_int_equal(st.connections_accepted, n);
    assert_int_equal(st.connections_open, 0);
    assert_int_equal(st.bytes_in, total);
    assert_int_equal(st.bytes_out, total);
    assert_int_equal(atomic_load(&f->echo.bytes_echoed), total);
    assert_int_equal(atomic_load(&f->echo.read_finished), n);
    assert_int_equal(atomic_load(&f->echo.disconnected_clean), n);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
    tern_stats cs = ts_stats(f->client);
    assert_int_equal(cs.connections_outgoing, n_tern);
    uint64_t total_tern = 0;
    for (size_t i = 0; i < n_tern; i++) {
        total_tern += sizes[i];
    }
    assert_int_equal(cs.bytes_out, total_tern);
    assert_int_equal(cs.bytes_in, total_tern);
    free(sizes);
    free(seeds);
}

/* A tern client that ended its side with shutdown_write, then read the peer's FIN: nothing is
 * left to send or to wait for, so `disconnected` must follow `read_finished` at once (not
 * after the 5 s close linger). */
static void test_echo__client_shutdown_write_then_eof_disconnects_promptly(void **state)
{
    fixture *f = *state;
    uint16_t port = start_echo_server(f, 1);
    f->client = ts_runtime_new(1, 0);
    assert_non_null(f->client);
    assert_int_equal(tern_runtime_start(f->client), 0);
    f->client_started = true;
    enum { N = 4 };
    const size_t sizes[N] = {0, 1, 1000, 200000};
    tclient *tc = calloc(N, sizeof *tc);
    crun *run = calloc(1, sizeof *run);
    f->client_state[0] = tc;
    f->client_state[1] = run;
    assert_non_null(tc);
    assert_non_null(run);
    run->port = port;
    run->c = tc;
    run->n = N;
    for (size_t i = 0; i < N; i++) {
        tc[i] = (tclient){.run = run, .idx = (unsigned)i + 1, .size = sizes[i], .seed = i + 99};
    }
    run->slices[0] = (slice){run, 0, N};
    uint64_t t0 = ts_now_ms();
    assert_int_equal(
        ts_post(tern_runtime_reactor(f->client, 0), start_slice, &run->slices[0], 5000), 0);
    if (!ts_wait_u64_ge(&run->finished, N, 15000)) {
        fail_msg("only %llu of %d clients finished",
                 (unsigned long long)atomic_load(&run->finished), N);
    }
    for (size_t i = 0; i < N; i++) {
        if (tc[i].state != 1) {
            fail_msg("client %zu (%zu bytes): %s", i, sizes[i], tc[i].why);
        }
        uint64_t lag = tc[i].disconnected_ms - tc[i].read_finished_ms;
        ts_log("client %zu (%zu bytes): read_finished at %llu ms, disconnected %llu ms later", i,
               sizes[i], (unsigned long long)(tc[i].read_finished_ms - t0),
               (unsigned long long)lag);
        if (lag >= 1000) {
            fail_msg("client %zu: disconnected came %llu ms after read_finished (expected at "
                     "once: our FIN was sent and the peer's received)",
                     i, (unsigned long long)lag);
        }
    }
}

/* ---- backpressure ------------------------------------------------------------------------- */

static void test_echo__slow_reader_against_a_small_read_buffer(void **state)
{
    fixture *f = *state;
    f->rt = ts_runtime_new(2, 0);
    assert_non_null(f->rt);
    tern_server *srv = tern_server_new(f->rt, NULL, ts_echo_incoming, &f->echo);
    assert_non_null(srv);
    f->echo.srv = srv;
    f->echo.write_buffer_size = 16384;
    f->echo.expect_read_buffer_size = 4096;
    f->echo.send_buffer_size = 16384; /* small kernel buffers: the queues fill sooner */
    assert_int_equal(tern_server_set_read_buffer_size(srv, 4096), 0);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->started = true;

    const size_t len = TS_SCALE(4u << 20, 1u << 20);
    uint64_t sum_sent = 0, sum_echoed = 1;
    f->fd = ts_connect_rcvbuf(tern_server_port(srv), 5000, 16384);
    assert_true(f->fd >= 0);
    ts_exchange_opts o = {
        .shutdown_after_send = true,
        .expect_eof = true,
        .read_chunk = 4096,
        .read_pause_us = 100,
        .stall_ms = 300, /* nothing is read at first: every queue on the way fills */
        .timeout_ms = 60000,
        .checksum_sent = &sum_sent,
        .checksum_echoed = &sum_echoed,
    };
    char why[256] = "";
    uint64_t t0 = ts_now_ms();
    int rc = ts_exchange(f->fd, len, 0xb10c, &o, why, sizeof why);
    if (rc != 0) {
        fail_msg("slow reader: %s", why);
    }
    assert_int_equal(sum_echoed, sum_sent); /* and every byte was compared on the way */
    ts_log("%zu bytes through a 4 KiB read buffer in %llu ms; server queue full %llu times, "
           "largest read buffer %llu",
           len, (unsigned long long)(ts_now_ms() - t0),
           (unsigned long long)atomic_load(&f->echo.write_full),
           (unsigned long long)atomic_load(&f->echo.max_buffered));
    assert_true(atomic_load(&f->echo.write_full) > 0); /* the server did have to wait */
    assert_true(atomic_load(&f->echo.max_buffered) <= 4096);
    assert_true(atomic_load(&f->echo.max_buffered) > 0);
    assert_int_equal(atomic_load(&f->echo.bytes_echoed), len);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

/* ---- read_line ------------------------------------------------------------------------------ */

#define LINE_LEN 16
#define MAX_LINES 16

typedef struct line_state {
    pthread_mutex_t lock;
    char lines[MAX_LINES][LINE_LEN];
    _Atomic unsigned nlines;
    _Atomic int partial_seen;   /* "part" waited in the buffer without a '\n' */
    _Atomic uint64_t violations;
    _Atomic int violation_line;
} line_state;

#define LINE_VIOLATION(ls)                                                                     \
    do {                                                                                       \
        atomic_fetch_add(&(ls)->violations, 1);                                                \
        atomic_store(&(ls)->violation_line, __LINE__);                                         \
    } while (0)

static void line_ready_read(tern_socket *s, void *user)
{
    line_state *ls = user;
    char small[2];
    if (tern_socket_read_line(s, small, 1) != TERN_EINVAL) {
        LINE_VIOLATION(ls);
    }
    for (int guard = 0; guard < 64; guard++) {
        bool can = tern_socket_can_read_line(s);
        size_t avail = tern_socket_bytes_available(s);
        char buf[LINE_LEN];
        if (!can && avail < LINE_LEN - 1) {
            /* no line and too few bytes: read_line takes nothing */
            if (tern_socket_read_line(s, buf, sizeof buf) != 0 ||
                tern_socket_bytes_available(s) != avail) {
                LINE_VIOLATION(ls);
            }
            if (avail == 4) {
                char peek[4];
                if (tern_socket_peek(s, peek, 4) == 4 && memcmp(peek, "part", 4) == 0) {
                    atomic_store(&ls->partial_seen, 1);
                }
            }
            return;
        }
        ssize_t n = tern_socket_read_line(s, buf, sizeof buf);
        if (n <= 0 || n > LINE_LEN - 1 || buf[n] != '\0' || strlen(buf) != (size_t)n ||
            tern_socket_bytes_available(s) != avail - (size_t)n) {
            LINE_VIOLATION(ls);
            return;
        }
        if (buf[n - 1] != '\n' && n != LINE_LEN - 1) {
            LINE_VIOLATION(ls); /* a partial line is exactly len - 1 bytes */
        }
        pthread_mutex_lock(&ls->lock);
        unsigned k = atomic_load(&ls->nlines);
        if (k < MAX_LINES) {
            memcpy(ls->lines[k], buf, (size_t)n + 1);
        }
        pthread_mutex_unlock(&ls->lock);
        atomic_store(&ls->nlines, k + 1);
        if (k + 1 == 6 && tern_socket_write(s, "OK\n", 3) != 0) {
            LINE_VIOLATION(ls);
        }
    }
}

static void line_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    static const tern_socket_events ev = {.ready_read = line_ready_read};
    tern_socket_set_events(s, &ev, user);
}

static void test_echo__read_line_and_can_read_line(void **state)
{
    fixture *f = *state;
    line_state *ls = calloc(1, sizeof *ls);
    assert_non_null(ls);
    pthread_mutex_init(&ls->lock, NULL);
    f->rt = ts_runtime_new(1, 0);
    assert_non_null(f->rt);
    tern_server *srv = tern_server_new(f->rt, NULL, line_incoming, ls);
    assert_non_null(srv);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->started = true;

    f->fd = ts_connect(tern_server_port(srv), 5000);
    assert_true(f->fd >= 0);
    const char *part1 = "hello\nworld\npart";
    assert_int_equal(ts_send_all(f->fd, part1, strlen(part1), 5000), 0);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&ls->nlines) == 2 && atomic_load(&ls->partial_seen), 5000);
    assert_true(ok);
    const char *part2 = "ial\nabcdefghijklmnopqrstuvwxyz0123456789\n";
    assert_int_equal(ts_send_all(f->fd, part2, strlen(part2), 5000), 0);
    char reply[3];
    assert_int_equal(ts_recv_exact(f->fd, reply, sizeof reply, 5000), 0);
    assert_memory_equal(reply, "OK\n", 3);

    static const char *want[] = {"hello\n",          "world\n",          "partial\n",
                                 "abcdefghijklmno", "pqrstuvwxyz0123", "456789\n"};
    assert_int_equal(atomic_load(&ls->nlines), 6);
    pthread_mutex_lock(&ls->lock);
    for (unsigned i = 0; i < 6; i++) {
        assert_string_equal(ls->lines[i], want[i]);
    }
    pthread_mutex_unlock(&ls->lock);
    if (atomic_load(&ls->violations) != 0) {
        fail_msg("read_line contract broken (test line %d)", atomic_load(&ls->violation_line));
    }
    close(f->fd);
    f->fd = -1;
    tern_runtime_stop(f->rt, 0);
    tern_runtime_join(f->rt);
    f->started = false;
    pthread_mutex_destroy(&ls->lock);
    free(ls);
}

/* ---- half-close --------------------------------------------------------------------------- */

static void test_echo__half_close_then_eof(void **state)
{
    fixture *f = *state;
    uint16_t port = start_echo_server(f, 2);
    f->fd = ts_connect(port, 5000);
    assert_true(f->fd >= 0);
    ts_exchange_opts o = {.shutdown_after_send = true, .expect_eof = true, .timeout_ms = 20000};
    char why[256] = "";
    const size_t len = 300000;
    if (ts_exchange(f->fd, len, 0x4a1f, &o, why, sizeof why) != 0) {
        fail_msg("half-close: %s", why);
    }
    close(f->fd);
    f->fd = -1;
    assert_true(ts_wait_u64_ge(&f->echo.disconnected, 1, 5000));
    assert_int_equal(atomic_load(&f->echo.read_finished), 1);
    assert_int_equal(atomic_load(&f->echo.disconnected_clean), 1);
    assert_int_equal(atomic_load(&f->echo.bytes_echoed), len);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

static void test_echo__server_half_close_writes_after_peer_fin(void **state)
{
    fixture *f = *state;
    f->echo.half_close = true;
    f->echo.trailer = "END\n";
    uint16_t port = start_echo_server(f, 1);
    f->fd = ts_connect(port, 5000);
    assert_true(f->fd >= 0);
    ts_exchange_opts o = {.shutdown_after_send = true,
                          .expect_eof = true,
                          .trailer = "END\n",
                          .trailer_len = 4,
                          .timeout_ms = 20000};
    char why[256] = "";
    if (ts_exchange(f->fd, 100000, 0x4a20, &o, why, sizeof why) != 0) {
        fail_msg("server half-close: %s", why);
    }
    assert_true(ts_wait_u64_ge(&f->echo.disconnected, 1, 5000));
    assert_int_equal(atomic_load(&f->echo.disconnected_clean), 1);
    assert_int_equal(atomic_load(&f->echo.violations), 0);
}

/* ---- write room ------------------------------------------------------------------------ */

/* The room a write has left, on a client socket driven by this thread: while CONNECTING every
 * write is queued, so the queue is known to the byte; then the kernel takes it. */
static void test_echo__write_room_follows_the_limit_and_the_queue(void **state)
{
    fixture *f = *state;
    static const uint8_t bytes[1000];
    /* The echo server sends the bytes back; the client does not read them (1000 bytes). */
    f->rt = ts_runtime_new(1, 0);
    assert_non_null(f->rt);
    tern_server *srv = ts_echo_server(f->rt, &f->echo);
    assert_non_null(srv);
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->started = true;
    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);

    assert_int_equal(tern_socket_write_room(s), (size_t)4 << 20); /* the default limit */
    assert_int_equal(tern_socket_set_write_buffer_size(s, 0), 0);
    assert_true(tern_socket_write_room(s) == SIZE_MAX); /* no limit: never wraps */
    assert_int_equal(tern_socket_connect_to_host(s, "127.0.0.1", tern_server_port(srv)), 0);
    assert_int_equal(tern_socket_write(s, bytes, 300), 0); /* queued while connecting */
    assert_int_equal(tern_socket_bytes_to_write(s), 300);
    assert_true(tern_socket_write_room(s) == SIZE_MAX);

    assert_int_equal(tern_socket_set_write_buffer_size(s, 1000), 0);
    assert_int_equal(tern_socket_write_room(s), 700);
    assert_int_equal(tern_socket_write(s, bytes, 701), TERN_ENOBUFS); /* one past the room */
    assert_int_equal(tern_socket_write_room(s), 700);
    assert_int_equal(tern_socket_write(s, bytes, 700), 0); /* exactly the room */
    assert_int_equal(tern_socket_write_room(s), 0);
    assert_int_equal(tern_socket_write(s, bytes, 1), TERN_ENOBUFS);
    assert_int_equal(tern_socket_set_write_buffer_size(s, 100), 0); /* below the queue */
    assert_int_equal(tern_socket_write_room(s), 0);

    /* Connected and flushed: the whole limit is free again. */
    assert_int_equal(tern_socket_set_write_buffer_size(s, 1000), 0);
    int rc = tern_socket_wait_for_bytes_written(s, 5000);
    if (rc < 0) {
        fail_msg("wait_for_bytes_written: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    }
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_CONNECTED);
    assert_int_equal(tern_socket_bytes_to_write(s), 0);
    assert_int_equal(tern_socket_write_room(s), 1000);
    assert_int_equal(tern_socket_flush(s), 0);
    assert_int_equal(tern_socket_write_room(s), 1000);

    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_echo__500_connections_both_directions),
        T(test_echo__client_shutdown_write_then_eof_disconnects_promptly),
        T(test_echo__slow_reader_against_a_small_read_buffer),
        T(test_echo__read_line_and_can_read_line),
        T(test_echo__half_close_then_eof),
        T(test_echo__server_half_close_writes_after_peer_fin),
        T(test_echo__write_room_follows_the_limit_and_the_queue),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * bench_echo: a plaintext tern echo server and a load client in one process, over loopback.
 *
 * Server: a tern runtime with --server-threads reactors and one plaintext server
 * (tern_server_new(rt, NULL, ...)) on 127.0.0.1, port 0. Each accepted socket echoes with
 * backpressure: it moves min(bytes buffered, room left in the write queue) from the read
 * buffer to the write queue (zero copy: peek_view + write + consume); when the queue is full
 * (no room, or TERN_ENOBUFS) it stops and resumes on `bytes_written`. Bytes stay in the read
 * buffer meanwhile, so the socket stops reading from the kernel and TCP slows the client.
 *
 * Client: plain POSIX sockets driven by epoll in --client-threads threads of its own (not tern
 * sockets), so the figures measure tern's server side only. Two phases:
 *   conn    C concurrent slots; each connects, sends a --request-size request, reads the echo
 *           back, checks it and closes (orderly FIN), then starts over. Rate: completed
 *           connections/s, plus connect-to-echo latency percentiles.
 *   stream  K long-lived connections; each writes --write-size chunks (at most --window bytes
 *           unanswered) and reads the echo back, checking every byte against the pattern sent.
 *           Rate: MB/s of echo received by the client (1 MB = 10^6 bytes); the server moves
 *           twice that (in + out). With --burst each connection instead writes until its
 *           socket blocks, then reads everything back: the server's write queue fills, which
 *           exercises its backpressure path (counted as "write-queue-full stops").
 * Each phase runs --runs times: --warmup seconds unmeasured, then --duration seconds measured;
 * the line printed per phase gives the median and min/max over the runs.
 *
 * CPU: the process CPU clock (CLOCK_PROCESS_CPUTIME_ID, as getrusage(RUSAGE_SELF)) and each
 * client thread's CPU clock are read at the start and end of the measured window. Server CPU
 * = process - client threads (the main thread sleeps meanwhile): the reactors, the acceptor
 * and tern's workers. The reactors' own CPU clocks are read as well (exact, per thread).
 * Each line gives CPU seconds per wall second (1.0 = one core busy) and the rate per server
 * CPU-second, so runs on different machines or thread counts can be compared per core.
 *
 * Bounds: every phase ends by its deadline plus a grace of --grace seconds; connections
 * unfinished by then are closed and counted. The runtime is stopped and joined before exit.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern/tern.h>

#include "bench_util.h"

#define MAX_RUNS 64
#define MAX_CLIENT_THREADS 64
#define MAX_CHUNK (1u << 20)
#define READ_BUF (256u * 1024u)
#define PATTERN_PERIOD 251u /* prime, so the pattern does not align with any buffer size */
#define MAX_LAT_SAMPLES (1u << 20)

/* ---- server: the echo, on tern's reactors ---------------------------------------------- */

/* Per reactor, single writer (its thread), read by main after a run: how often the echo
 * stopped because the write queue was full (room 0, or TERN_ENOBUFS). */
struct echo_counters {
    _Atomic uint64_t queue_full;
    _Atomic uint64_t enobufs;
} __attribute__((aligned(64)));
static struct echo_counters echo_counters[TERN_MAX_REACTORS];

static void echo_count(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static uint64_t echo_backpressure_total(void)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < TERN_MAX_REACTORS; i++) {
        n += atomic_load_explicit(&echo_counters[i].queue_full, memory_order_relaxed);
        n += atomic_load_explicit(&echo_counters[i].enobufs, memory_order_relaxed);
    }
    return n;
}

/* Moves what the write queue has room for from the read buffer to the write queue. Called on
 * ready_read (new bytes) and bytes_written (room freed); stops at the first of: nothing
 * buffered, queue full. @thread owner */
static void echo_pump(tern_socket *s)
{
    for (;;) {
        size_t room = tern_socket_write_room(s);
        if (room == 0) {
            echo_count(
                &echo_counters[tern_reactor_index(tern_socket_reactor(s)) % TERN_MAX_REACTORS]
                     .queue_full);
            return; /* bytes_written calls us again */
        }
        tern_buf view;
        if (tern_socket_peek_view(s, &view) < 0 || view.len == 0) {
            return;
        }
        size_t n = view.len < room ? view.len : room;
        int rc = tern_socket_write(s, view.base, n);
        if (rc == TERN_ENOBUFS) {
            echo_count(
                &echo_counters[tern_reactor_index(tern_socket_reactor(s)) % TERN_MAX_REACTORS]
                     .enobufs);
            return; /* nothing was queued: wait for bytes_written */
        }
        if (rc == TERN_ENOTCONN) {
            return; /* closing: the runtime discards what comes in */
        }
        if (rc < 0) {
            tern_socket_abort(s);
            return;
        }
        if (tern_socket_consume(s, n) < 0) {
            tern_socket_abort(s);
            return;
        }
    }
}

static void echo_ready_read(tern_socket *s, void *user)
{
    echo_pump(s);
}

static void echo_bytes_written(tern_socket *s, size_t n, void *user)
{
    echo_pump(s);
}

/* read_finished: nothing to do, the socket closes itself once the echo is sent. */
static const tern_socket_events echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &echo_events, user);
    echo_pump(s); /* in case bytes came with the connection */
}

/* Learns each reactor thread's CPU clock, so the main thread can read it. */
struct clock_probe {
    clockid_t clk;
    _Atomic int state; /* 0 pending, 1 ok, -1 failed */
};

static void probe_task(tern_reactor *r, void *arg)
{
    struct clock_probe *p = arg;
    if (r == NULL) {
        return;
    }
    int ok = pthread_getcpuclockid(pthread_self(), &p->clk) == 0;
    atomic_store_explicit(&p->state, ok ? 1 : -1, memory_order_release);
}

/* ---- client: plain epoll ---------------------------------------------------------------- */

enum phase { PHASE_CONN, PHASE_STREAM };
static const char *const phase_names[] = {"conn", "stream"};

enum cstate { C_IDLE, C_CONNECTING, C_READING, C_STREAMING, C_DRAINING, C_CLOSED };

struct conn {
    int fd;
    enum cstate state;
    bool want_out;      /* registered for EPOLLOUT */
    bool burst_reading; /* stream --burst: reading everything back, not writing */
    uint64_t t_start;   /* conn: when connect() was called */
    uint64_t retry_at;  /* conn: C_IDLE until then after a failure */
    size_t got;         /* conn: echo bytes received */
    uint64_t sent;      /* stream */
    uint64_t recvd;     /* stream */
};

struct opts {
    unsigned server_threads;
    unsigned client_threads;
    unsigned clients; /* C */
    unsigned streams; /* K */
    double duration;
    double warmup;
    double grace;
    unsigned runs;
    size_t request;
    size_t chunk;
    size_t window;
    bool do_conn, do_stream;
    bool reuseport;
    bool burst;
    bool json;
};

/* What the main thread sets for one run, read by the client threads after the start barrier. */
struct run_params {
    enum phase phase;
    const struct opts *o;
    struct sockaddr_in addr;
    uint64_t t_begin; /* measured window [t_begin, t_end) */
    uint64_t t_end;
    uint64_t t_hard_end; /* everything closed by then */
    pthread_barrier_t barrier;
};

struct client {
    struct run_params *rp;
    unsigned nconns;
    struct conn *conns;
    int ep;
    pthread_t thread;
    clockid_t cpu_clock;
    bool cpu_clock_ok;
    int setup_error; /* errno of a failed setup (stream connects) */
    /* results */
    uint64_t completed;      /* conn: completed inside the window */
    uint64_t completed_all;  /* conn: completed at any time */
    uint64_t bytes;          /* stream: echo bytes received inside the window */
    uint64_t connect_errors; /* connect() or SO_ERROR failed (retried) */
    uint64_t io_errors;      /* reset, early EOF, send failure */
    uint64_t mismatches;     /* echo differed from what was sent */
    uint64_t unfinished;     /* still open at the hard deadline */
    uint64_t lost;           /* stream: bytes sent and never echoed back */
    uint32_t *lat_us;
    size_t nlat;
};

static uint8_t pattern[MAX_CHUNK + PATTERN_PERIOD];

static void pattern_init(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i % PATTERN_PERIOD);
    }
}

static void conn_close(struct client *cl, struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd); /* also leaves the epoll set */
    }
    c->fd = -1;
    c->state = C_CLOSED;
    c->want_out = false;
}

static int ep_set(struct client *cl, struct conn *c, int op, bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = c};
    c->want_out = out;
    return epoll_ctl(cl->ep, op, c->fd, &ev);
}

static int ep_only(struct client *cl, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    c->want_out = (events & EPOLLOUT) != 0;
    return epoll_ctl(cl->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* conn phase: sends the request on a connected socket. */
static void conn_send_request(struct client *cl, struct conn *c)
{
    size_t len = cl->rp->o->request;
    ssize_t n = send(c->fd, pattern, len, MSG_NOSIGNAL);
    if (n != (ssize_t)len) {
        cl->io_errors++;
        conn_close(cl, c);
        c->state = C_IDLE;
        c->retry_at = 0;
        return;
    }
    c->state = C_READING;
    c->got = 0;
    if (ep_set(cl, c, EPOLL_CTL_MOD, false) != 0) {
        cl->io_errors++;
        conn_close(cl, c);
        c->state = C_IDLE;
    }
}

/* conn phase: starts one connection on slot @p c. */
static void conn_start(struct client *cl, struct conn *c, uint64_t now)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        cl->connect_errors++;
        c->state = C_IDLE;
        c->retry_at = now + 1000000; /* 1 ms */
        return;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t_start = now;
    c->state = C_CONNECTING;
    int rc = connect(c->fd, (const struct sockaddr *)&cl->rp->addr, sizeof(cl->rp->addr));
    if (rc != 0 && errno != EINPROGRESS) {
        cl->connect_errors++; /* EADDRNOTAVAIL: ephemeral ports in TIME_WAIT; back off */
        conn_close(cl, c);
        c->state = C_IDLE;
        c->retry_at = now + 1000000;
        return;
    }
    if (ep_set(cl, c, EPOLL_CTL_ADD, true) != 0) {
        cl->connect_errors++;
        conn_close(cl, c);
        c->state = C_IDLE;
        c->retry_at = now + 1000000;
        return;
    }
    /* rc == 0 (connected at once) is handled like EINPROGRESS: EPOLLOUT fires at once. */
}

static void conn_event(struct client *cl, struct conn *c, uint32_t events, uint64_t now,
                       bool stopping)
{
    const struct run_params *rp = cl->rp;
    if (c->state == C_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            cl->connect_errors++;
            conn_close(cl, c);
            c->state = C_IDLE;
            c->retry_at = now + 1000000;
            return;
        }
        conn_send_request(cl, c);
        return;
    }
    if (c->state != C_READING) {
        return;
    }
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0 || c->got + (size_t)n > rp->o->request) {
            /* reset, EOF before the whole echo, or more bytes than sent */
            if (n > 0) {
                cl->mismatches++;
            } else {
                cl->io_errors++;
            }
            conn_close(cl, c);
            c->state = C_IDLE;
            c->retry_at = 0;
            return;
        }
        if (memcmp(buf, pattern + c->got, (size_t)n) != 0) {
            cl->mismatches++;
            conn_close(cl, c);
            c->state = C_IDLE;
            c->retry_at = 0;
            return;
        }
        c->got += (size_t)n;
        if (c->got == rp->o->request) {
            conn_close(cl, c); /* orderly: FIN, the client side keeps the TIME_WAIT */
            c->state = C_IDLE;
            c->retry_at = 0;
            cl->completed_all++;
            if (now >= rp->t_begin && now < rp->t_end) {
                cl->completed++;
                if (cl->lat_us != NULL && cl->nlat < MAX_LAT_SAMPLES) {
                    uint64_t us = (now - c->t_start) / 1000;
                    cl->lat_us[cl->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
                }
            }
            if (!stopping) {
                conn_start(cl, c, now);
            }
            return;
        }
    }
}

static void run_conn_phase(struct client *cl)
{
    const struct run_params *rp = cl->rp;
    struct epoll_event evs[256];
    bool stopping = false;

    uint64_t now = bench_now_ns();
    for (unsigned i = 0; i < cl->nconns; i++) {
        conn_start(cl, &cl->conns[i], now);
    }
    for (;;) {
        now = bench_now_ns();
        if (now >= rp->t_end) {
            stopping = true; /* no new connections; let the ones in flight finish */
        }
        unsigned active = 0;
        for (unsigned i = 0; i < cl->nconns; i++) {
            struct conn *c = &cl->conns[i];
            if (c->state == C_IDLE && !stopping && now >= c->retry_at) {
                conn_start(cl, c, now);
            }
            if (c->state == C_CONNECTING || c->state == C_READING) {
                active++;
            }
        }
        if (stopping && active == 0) {
            return;
        }
        if (now >= rp->t_hard_end) {
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (c->state == C_CONNECTING || c->state == C_READING) {
                    cl->unfinished++;
                    conn_close(cl, c);
                }
            }
            return;
        }
        int n = epoll_wait(cl->ep, evs, 256, 1);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            conn_event(cl, evs[i].data.ptr, evs[i].events, now, stopping);
        }
    }
}

/* stream phase: reads what is there, checks it, counts it. false if the connection ended. */
static bool stream_read(struct client *cl, struct conn *c, uint64_t now, uint8_t *buf)
{
    const struct run_params *rp = cl->rp;
    for (int rounds = 0; rounds < 4; rounds++) {
        ssize_t n = recv(c->fd, buf, READ_BUF, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return true;
        }
        if (n == 0 && c->state == C_DRAINING) {
            cl->lost += c->sent - c->recvd; /* 0 when every byte came back */
            conn_close(cl, c);
            return false;
        }
        if (n <= 0) {
            cl->io_errors++;
            cl->lost += c->sent - c->recvd;
            conn_close(cl, c);
            return false;
        }
        if ((uint64_t)n > c->sent - c->recvd ||
            memcmp(buf, pattern + c->recvd % PATTERN_PERIOD, (size_t)n) != 0) {
            cl->mismatches++;
            conn_close(cl, c);
            return false;
        }
        c->recvd += (uint64_t)n;
        if (now >= rp->t_begin && now < rp->t_end) {
            cl->bytes += (uint64_t)n;
        }
    }
    return true;
}

static void stream_write(struct client *cl, struct conn *c)
{
    const struct opts *o = cl->rp->o;
    for (;;) {
        uint64_t inflight = c->sent - c->recvd;
        if (inflight >= o->window) {
            if (c->want_out) {
                (void)ep_set(cl, c, EPOLL_CTL_MOD, false);
            }
            return;
        }
        size_t len = o->chunk;
        if (o->window - inflight < len) {
            len = (size_t)(o->window - inflight);
        }
        ssize_t n = send(c->fd, pattern + c->sent % PATTERN_PERIOD, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->want_out) {
                (void)ep_set(cl, c, EPOLL_CTL_MOD, true);
            }
            return;
        }
        if (n < 0) {
            cl->io_errors++;
            cl->lost += c->sent - c->recvd;
            conn_close(cl, c);
            return;
        }
        c->sent += (uint64_t)n;
        if ((size_t)n < len) {
            if (!c->want_out) {
                (void)ep_set(cl, c, EPOLL_CTL_MOD, true);
            }
            return;
        }
    }
}

/* stream --burst: writes without reading until the socket is full (EAGAIN) or the window
 * is, then reads everything back before writing again. The server's write queue fills while
 * the client does not read: this exercises its backpressure (queue full, bytes_written). */
static void stream_write_burst(struct client *cl, struct conn *c)
{
    const struct opts *o = cl->rp->o;
    for (;;) {
        uint64_t inflight = c->sent - c->recvd;
        size_t len = o->chunk;
        if (inflight >= o->window) {
            break;
        }
        if (o->window - inflight < len) {
            len = (size_t)(o->window - inflight);
        }
        ssize_t n = send(c->fd, pattern + c->sent % PATTERN_PERIOD, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (n < 0) {
            cl->io_errors++;
            cl->lost += c->sent - c->recvd;
            conn_close(cl, c);
            return;
        }
        c->sent += (uint64_t)n;
    }
    c->burst_reading = true;
    (void)ep_only(cl, c, EPOLLIN);
}

/* stream phase, before the start barrier: K connected sockets. 0 or an errno value. */
static int stream_setup(struct client *cl)
{
    int one = 1;
    for (unsigned i = 0; i < cl->nconns; i++) {
        struct conn *c = &cl->conns[i];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            return errno;
        }
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* blocking connect: loopback, and the kernel completes it from the backlog even
         * before tern's acceptor runs */
        if (connect(c->fd, (const struct sockaddr *)&cl->rp->addr, sizeof(cl->rp->addr)) != 0) {
            int e = errno;
            conn_close(cl, c);
            return e;
        }
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            ep_set(cl, c, EPOLL_CTL_ADD, true) != 0) {
            int e = errno;
            conn_close(cl, c);
            return e;
        }
        c->state = C_STREAMING;
    }
    return 0;
}

static void run_stream_phase(struct client *cl)
{
    const struct run_params *rp = cl->rp;
    struct epoll_event evs[256];
    bool stopping = false;
    uint8_t *buf = malloc(READ_BUF);

    if (buf == NULL) {
        for (unsigned i = 0; i < cl->nconns; i++) {
            cl->io_errors++;
            conn_close(cl, &cl->conns[i]);
        }
        return;
    }
    for (;;) {
        uint64_t now = bench_now_ns();
        if (!stopping && now >= rp->t_end) {
            /* Stop writing; FIN; read the echo of what is in flight, then the server's FIN. */
            stopping = true;
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (c->state == C_STREAMING) {
                    c->state = C_DRAINING;
                    (void)shutdown(c->fd, SHUT_WR);
                    if (c->want_out || rp->o->burst) {
                        (void)ep_set(cl, c, EPOLL_CTL_MOD, false);
                    }
                }
            }
        }
        unsigned active = 0;
        for (unsigned i = 0; i < cl->nconns; i++) {
            if (cl->conns[i].state == C_STREAMING || cl->conns[i].state == C_DRAINING) {
                active++;
            }
        }
        if (active == 0) {
            break;
        }
        if (now >= rp->t_hard_end) {
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (c->state == C_STREAMING || c->state == C_DRAINING) {
                    cl->unfinished++;
                    cl->lost += c->sent - c->recvd;
                    conn_close(cl, c);
                }
            }
            break;
        }
        int n = epoll_wait(cl->ep, evs, 256, 1);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state != C_STREAMING && c->state != C_DRAINING) {
                continue;
            }
            if (rp->o->burst && c->state == C_STREAMING) {
                if (!c->burst_reading) {
                    stream_write_burst(cl, c);
                } else if (stream_read(cl, c, now, buf) && c->sent == c->recvd) {
                    c->burst_reading = false;
                    (void)ep_only(cl, c, EPOLLOUT);
                }
                continue;
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
                !stream_read(cl, c, now, buf)) {
                continue;
            }
            if (c->state == C_STREAMING && (c->want_out ? (evs[i].events & EPOLLOUT) != 0
                                                        : c->sent - c->recvd < rp->o->window)) {
                stream_write(cl, c);
            }
        }
    }
    free(buf);
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct run_params *rp = cl->rp;

    if (rp->phase == PHASE_STREAM) {
        cl->setup_error = stream_setup(cl);
    }
    pthread_barrier_wait(&rp->barrier); /* 1: set up */
    pthread_barrier_wait(&rp->barrier); /* 2: main has set the times (or an error) */
    if (rp->t_end == 0) {
        return NULL; /* aborted: a client failed to set up */
    }
    if (rp->phase == PHASE_CONN) {
        run_conn_phase(cl);
    } else {
        run_stream_phase(cl);
    }
    return NULL;
}

/* ---- main: runs, CPU accounting, report -------------------------------------------------- */

struct bench {
    struct opts o;
    tern_runtime *rt;
    tern_server *srv;
    uint16_t port;
    unsigned nreactors;
    clockid_t reactor_clock[TERN_MAX_REACTORS];
    bool reactor_clock_ok[TERN_MAX_REACTORS];
};

struct run_result {
    double rate;        /* conn/s or MB/s */
    double wall_s;      /* measured window, by the main thread's clock */
    double proc_cpu;    /* CPU s per wall s */
    double client_cpu;  /* idem, client threads */
    double server_cpu;  /* idem, process - client */
    double reactor_cpu; /* idem, reactor threads only */
    double per_cpu;     /* events (conn or MB) per server CPU-second */
    double p50_ms, p99_ms;
    uint64_t events;
    uint64_t completed_all, connect_errors, io_errors, mismatches, unfinished, lost;
    uint64_t backpressure; /* server: echo stops on a full write queue */
    tern_stats delta;
};

static uint64_t reactors_cpu_ns(const struct bench *b)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < b->nreactors; i++) {
        if (b->reactor_clock_ok[i]) {
            sum += bench_cpu_ns(b->reactor_clock[i]);
        }
    }
    return sum;
}

static uint64_t clients_cpu_ns(const struct client *cl, unsigned n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        if (cl[i].cpu_clock_ok) {
            sum += bench_cpu_ns(cl[i].cpu_clock);
        }
    }
    return sum;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Waits until the server has no connection open (the previous run's closes are done). */
static bool wait_server_idle(const struct bench *b, double timeout_s)
{
    uint64_t limit = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    tern_stats st;
    for (;;) {
        memset(&st, 0, sizeof(st));
        if (tern_runtime_stats(b->rt, &st) == 0 && st.connections_open == 0) {
            return true;
        }
        if (bench_now_ns() > limit) {
            fprintf(stderr,
                    "bench_echo: warning: server still reports %llu connection(s) open %.1f s "
                    "after the run\n",
                    (unsigned long long)st.connections_open, timeout_s);
            return false;
        }
        bench_sleep_ns(1000000);
    }
}

static int run_once(struct bench *b, enum phase phase, struct run_result *res)
{
    const struct opts *o = &b->o;
    unsigned total = phase == PHASE_CONN ? o->clients : o->streams;
    unsigned nthreads = o->client_threads < total ? o->client_threads : total;
    struct client *cl = calloc(nthreads, sizeof(*cl));
    struct run_params *rp = calloc(1, sizeof(*rp));
    int status = 0;

    memset(res, 0, sizeof(*res));
    if (cl == NULL || rp == NULL) {
        free(cl);
        free(rp);
        fprintf(stderr, "bench_echo: out of memory\n");
        return -1;
    }
    rp->phase = phase;
    rp->o = o;
    rp->addr.sin_family = AF_INET;
    rp->addr.sin_port = htons(b->port);
    rp->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pthread_barrier_init(&rp->barrier, NULL, nthreads + 1);

    unsigned started = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        struct client *c = &cl[t];
        c->rp = rp;
        c->nconns = total / nthreads + (t < total % nthreads ? 1 : 0);
        c->conns = calloc(c->nconns, sizeof(*c->conns));
        c->ep = epoll_create1(EPOLL_CLOEXEC);
        if (phase == PHASE_CONN) {
            c->lat_us = malloc(MAX_LAT_SAMPLES * sizeof(*c->lat_us)); /* NULL: no latency */
        }
        if (c->conns == NULL || c->ep < 0) {
            fprintf(stderr, "bench_echo: client setup failed (memory or epoll)\n");
            exit(2); /* the barrier counts every thread: cannot unwind cleanly */
        }
        for (unsigned i = 0; i < c->nconns; i++) {
            c->conns[i].fd = -1;
            c->conns[i].state = C_IDLE;
        }
        if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
            fprintf(stderr, "bench_echo: pthread_create failed\n");
            exit(2);
        }
        c->cpu_clock_ok = pthread_getcpuclockid(c->thread, &c->cpu_clock) == 0;
        started++;
    }

    tern_stats before, after;
    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    (void)tern_runtime_stats(b->rt, &before);
    uint64_t bp_before = echo_backpressure_total();

    pthread_barrier_wait(&rp->barrier); /* 1: clients set up */
    int setup_error = 0;
    for (unsigned t = 0; t < nthreads; t++) {
        if (cl[t].setup_error != 0) {
            setup_error = cl[t].setup_error;
        }
    }
    uint64_t t0 = bench_now_ns();
    if (setup_error == 0) {
        rp->t_begin = t0 + (uint64_t)(o->warmup * 1e9);
        rp->t_end = rp->t_begin + (uint64_t)(o->duration * 1e9);
        rp->t_hard_end = rp->t_end + (uint64_t)(o->grace * 1e9);
    }
    pthread_barrier_wait(&rp->barrier); /* 2: go */

    uint64_t w0 = 0, w1 = 0, p0 = 0, p1 = 0, c0 = 0, c1 = 0, r0 = 0, r1 = 0;
    if (setup_error == 0) {
        uint64_t now = bench_now_ns();
        if (rp->t_begin > now) {
            bench_sleep_ns(rp->t_begin - now);
        }
        w0 = bench_now_ns();
        p0 = bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        c0 = clients_cpu_ns(cl, nthreads);
        r0 = reactors_cpu_ns(b);
        now = bench_now_ns();
        if (rp->t_end > now) {
            bench_sleep_ns(rp->t_end - now);
        }
        w1 = bench_now_ns();
        p1 = bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        c1 = clients_cpu_ns(cl, nthreads);
        r1 = reactors_cpu_ns(b);
    }
    for (unsigned t = 0; t < started; t++) {
        pthread_join(cl[t].thread, NULL);
    }
    pthread_barrier_destroy(&rp->barrier);

    /* close whatever a failed setup left open */
    for (unsigned t = 0; t < nthreads; t++) {
        for (unsigned i = 0; i < cl[t].nconns; i++) {
            conn_close(&cl[t], &cl[t].conns[i]);
        }
    }
    wait_server_idle(b, 5.0);
    (void)tern_runtime_stats(b->rt, &after);
    res->backpressure = echo_backpressure_total() - bp_before;

    if (setup_error != 0) {
        fprintf(stderr, "bench_echo: %s: client connect failed: %s\n", phase_names[phase],
                strerror(setup_error));
        status = -1;
    } else {
        size_t nlat = 0;
        for (unsigned t = 0; t < nthreads; t++) {
            struct client *c = &cl[t];
            res->events += phase == PHASE_CONN ? c->completed : c->bytes;
            res->completed_all += c->completed_all;
            res->connect_errors += c->connect_errors;
            res->io_errors += c->io_errors;
            res->mismatches += c->mismatches;
            res->unfinished += c->unfinished;
            res->lost += c->lost;
            nlat += c->nlat;
        }
        double wall = (double)(w1 - w0) / 1e9;
        double server_cpu_s = (double)((p1 - p0) - (c1 - c0)) / 1e9;
        res->wall_s = wall;
        res->proc_cpu = (double)(p1 - p0) / 1e9 / wall;
        res->client_cpu = (double)(c1 - c0) / 1e9 / wall;
        res->server_cpu = server_cpu_s / wall;
        res->reactor_cpu = (double)(r1 - r0) / 1e9 / wall;
        double units = phase == PHASE_CONN ? (double)res->events : (double)res->events / 1e6;
        res->rate = units / o->duration;
        res->per_cpu = server_cpu_s > 0 ? units / server_cpu_s : 0;
        if (nlat > 0) {
            uint32_t *all = malloc(nlat * sizeof(*all));
            if (all != NULL) {
                size_t k = 0;
                for (unsigned t = 0; t < nthreads; t++) {
                    memcpy(all + k, cl[t].lat_us, cl[t].nlat * sizeof(*all));
                    k += cl[t].nlat;
                }
                qsort(all, nlat, sizeof(*all), cmp_u32);
                res->p50_ms = all[nlat / 2] / 1000.0;
                res->p99_ms = all[(size_t)((double)(nlat - 1) * 0.99)] / 1000.0;
                free(all);
            }
        }
        res->delta.connections_accepted = after.connections_accepted - before.connections_accepted;
        res->delta.connections_closed = after.connections_closed - before.connections_closed;
        res->delta.bytes_in = after.bytes_in - before.bytes_in;
        res->delta.bytes_out = after.bytes_out - before.bytes_out;
        res->delta.resets = after.resets - before.resets;
        res->delta.connections_open = after.connections_open;
        if (res->mismatches != 0 || res->lost != 0) {
            fprintf(stderr,
                    "bench_echo: %s: echo check failed: %llu mismatching reads, %llu bytes "
                    "never echoed\n",
                    phase_names[phase], (unsigned long long)res->mismatches,
                    (unsigned long long)res->lost);
        }
    }

    for (unsigned t = 0; t < nthreads; t++) {
        close(cl[t].ep);
        free(cl[t].conns);
        free(cl[t].lat_us);
    }
    free(cl);
    free(rp);
    return status;
}

#define SUMMARY(field)                                                                             \
    do {                                                                                           \
        for (unsigned i_ = 0; i_ < n; i_++) {                                                      \
            v[i_] = res[i_].field;                                                                 \
        }                                                                                          \
        bench_summary(v, n, &med.field, &lo.field, &hi.field);                                     \
    } while (0)

static void report(const struct bench *b, enum phase phase, const struct run_result *res,
                   unsigned n)
{
    const struct opts *o = &b->o;
    double v[MAX_RUNS];
    struct run_result med, lo, hi;
    memset(&med, 0, sizeof(med));
    memset(&lo, 0, sizeof(lo));
    memset(&hi, 0, sizeof(hi));
    SUMMARY(rate);
    SUMMARY(proc_cpu);
    SUMMARY(client_cpu);
    SUMMARY(server_cpu);
    SUMMARY(reactor_cpu);
    SUMMARY(per_cpu);
    SUMMARY(p50_ms);
    SUMMARY(p99_ms);
    uint64_t cerr = 0, ioerr = 0, mism = 0, unf = 0, lost = 0, resets = 0, bp = 0;
    for (unsigned i = 0; i < n; i++) {
        bp += res[i].backpressure;
        cerr += res[i].connect_errors;
        ioerr += res[i].io_errors;
        mism += res[i].mismatches;
        unf += res[i].unfinished;
        lost += res[i].lost;
        resets += res[i].delta.resets;
    }
    const char *unit = phase == PHASE_CONN ? "conn/s" : "MB/s";
    const char *per = phase == PHASE_CONN ? "conn" : "MB";

    if (o->json) {
        printf("{\"bench\":\"echo\",\"phase\":\"%s\",\"server_threads\":%u,"
               "\"client_threads\":%u,\"%s\":%u,",
               phase_names[phase], o->server_threads, o->client_threads,
               phase == PHASE_CONN ? "clients" : "streams",
               phase == PHASE_CONN ? o->clients : o->streams);
        if (phase == PHASE_CONN) {
            printf("\"request_bytes\":%zu,", o->request);
        } else {
            printf("\"write_bytes\":%zu,\"window_bytes\":%zu,", o->chunk, o->window);
        }
        printf("\"duration_s\":%.3f,\"warmup_s\":%.3f,\"runs\":%u,\"reuseport\":%s,\"burst\":%s,"
               "\"unit\":\"%s\",\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,"
               "\"server_cpu_per_wall_median\":%.3f,\"reactor_cpu_per_wall_median\":%.3f,"
               "\"client_cpu_per_wall_median\":%.3f,\"process_cpu_per_wall_median\":%.3f,"
               "\"per_server_cpu_s_median\":%.3f,",
               o->duration, o->warmup, n, o->reuseport ? "true" : "false",
               o->burst ? "true" : "false", unit, med.rate, lo.rate, hi.rate, med.server_cpu,
               med.reactor_cpu, med.client_cpu, med.proc_cpu, med.per_cpu);
        if (phase == PHASE_CONN) {
            printf("\"latency_p50_ms_median\":%.3f,\"latency_p99_ms_median\":%.3f,", med.p50_ms,
                   med.p99_ms);
        }
        printf("\"connect_errors\":%llu,\"io_errors\":%llu,\"mismatches\":%llu,"
               "\"unfinished\":%llu,\"lost_bytes\":%llu,\"server_resets\":%llu,"
               "\"server_write_queue_full_stops\":%llu,\"runs_detail\":[",
               (unsigned long long)cerr, (unsigned long long)ioerr, (unsigned long long)mism,
               (unsigned long long)unf, (unsigned long long)lost, (unsigned long long)resets,
               (unsigned long long)bp);
        for (unsigned i = 0; i < n; i++) {
            const struct run_result *r = &res[i];
            printf("%s{\"rate\":%.3f,\"wall_s\":%.4f,\"process_cpu\":%.3f,\"client_cpu\":%.3f,"
                   "\"server_cpu\":%.3f,\"reactor_cpu\":%.3f,\"per_server_cpu_s\":%.3f,",
                   i ? "," : "", r->rate, r->wall_s, r->proc_cpu, r->client_cpu, r->server_cpu,
                   r->reactor_cpu, r->per_cpu);
            if (phase == PHASE_CONN) {
                printf("\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"completed_all\":%llu,", r->p50_ms,
                       r->p99_ms, (unsigned long long)r->completed_all);
            }
            printf("\"server_accepted\":%llu,\"server_bytes_in\":%llu,\"server_bytes_out\":%llu,"
                   "\"server_resets\":%llu,\"server_write_queue_full_stops\":%llu}",
                   (unsigned long long)r->delta.connections_accepted,
                   (unsigned long long)r->delta.bytes_in, (unsigned long long)r->delta.bytes_out,
                   (unsigned long long)r->delta.resets, (unsigned long long)r->backpressure);
        }
        printf("]}\n");
    } else {
        if (phase == PHASE_CONN) {
            printf("echo conn   T=%u C=%u req=%zuB D=%.1fs runs=%u: median %.0f %s (min %.0f, "
                   "max %.0f); latency p50 %.3f ms p99 %.3f ms",
                   o->server_threads, o->clients, o->request, o->duration, n, med.rate, unit,
                   lo.rate, hi.rate, med.p50_ms, med.p99_ms);
        } else {
            printf("echo stream%s T=%u K=%u write=%zuB D=%.1fs runs=%u: median %.1f %s (min %.1f, "
                   "max %.1f) echoed",
                   o->burst ? "(burst)" : "", o->server_threads, o->streams, o->chunk, o->duration,
                   n, med.rate, unit, lo.rate, hi.rate);
        }
        printf("; cpu s/s: server %.2f (reactors %.2f) client %.2f process %.2f; "
               "%.0f %s per server CPU-s",
               med.server_cpu, med.reactor_cpu, med.client_cpu, med.proc_cpu, med.per_cpu, per);
        if (phase == PHASE_STREAM) {
            printf("; write-queue-full stops %llu", (unsigned long long)bp);
        }
        if (cerr + ioerr + mism + unf + lost + resets != 0) {
            printf("; errors: connect %llu io %llu mismatch %llu unfinished %llu lost %llu "
                   "server_resets %llu",
                   (unsigned long long)cerr, (unsigned long long)ioerr, (unsigned long long)mism,
                   (unsigned long long)unf, (unsigned long long)lost, (unsigned long long)resets);
        }
        printf("\n");
    }
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_echo [options]\n"
        "  A plaintext tern echo server (in process, 127.0.0.1, port 0) under load from a\n"
        "  plain epoll client (its own threads, not tern sockets). Figures are printed,\n"
        "  not asserted.\n"
        "  -T, --server-threads N  tern reactors (default 1)\n"
        "  -t, --client-threads N  client threads (default 1)\n"
        "  -C, --clients N         conn phase: concurrent connect/echo/close loops (default 8)\n"
        "  -K, --streams N         stream phase: long-lived connections (default 4)\n"
        "  -d, --duration S        measured seconds per run (default 1)\n"
        "  -w, --warmup S          unmeasured seconds before each run (default 0.2)\n"
        "  -g, --grace S           after a run, seconds to finish what is in flight (default 3)\n"
        "  -r, --runs R            runs per phase (default 3)\n"
        "  -q, --request-size B    conn phase request bytes, 1..4096 (default 16)\n"
        "  -s, --write-size B      stream phase bytes per write, 1..1Mi (default 64Ki)\n"
        "  -W, --window B          stream phase bytes unanswered per connection (default 4Mi)\n"
        "  -p, --phase P           conn, stream or both (default both)\n"
        "  -R, --reuseport         one SO_REUSEPORT listener per reactor, no acceptor thread\n"
        "  -B, --burst             stream phase: write until the socket blocks, then read\n"
        "                          all back (exercises the server's backpressure; use a\n"
        "                          large --window, e.g. 64Mi)\n"
        "  -j, --json              one JSON object per phase instead of text\n"
        "  -h, --help\n"
        "  Sizes take k/M (x1000) or Ki/Mi (x1024) suffixes.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"server-threads", required_argument, NULL, 'T'},
        {"client-threads", required_argument, NULL, 't'},
        {"clients", required_argument, NULL, 'C'},
        {"streams", required_argument, NULL, 'K'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"grace", required_argument, NULL, 'g'},
        {"runs", required_argument, NULL, 'r'},
        {"request-size", required_argument, NULL, 'q'},
        {"write-size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'W'},
        {"phase", required_argument, NULL, 'p'},
        {"reuseport", no_argument, NULL, 'R'},
        {"burst", no_argument, NULL, 'B'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double d;
    int opt;

    while ((opt = getopt_long(argc, argv, "T:t:C:K:d:w:g:r:q:s:W:p:RBjh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'T':
            o->server_threads = (unsigned)bench_opt_u64("bench_echo", "--server-threads", optarg, 1, TERN_MAX_REACTORS);
            break;
        case 't':
            o->client_threads = (unsigned)bench_opt_u64("bench_echo", "--client-threads", optarg, 1, MAX_CLIENT_THREADS);
            break;
        case 'C':
            o->clients = (unsigned)bench_opt_u64("bench_echo", "--clients", optarg, 1, 10000);
            break;
        case 'K':
            o->streams = (unsigned)bench_opt_u64("bench_echo", "--streams", optarg, 1, 10000);
            break;
        case 'd':
        case 'w':
        case 'g':
            if (bench_parse_double(optarg, opt == 'd' ? 0.05 : 0.0, 600, &d) != 0) {
                fprintf(stderr, "bench_echo: --%s: expected seconds in %s..600\n",
                        opt == 'd'   ? "duration"
                        : opt == 'w' ? "warmup"
                                     : "grace",
                        opt == 'd' ? "0.05" : "0");
                return 2;
            }
            *(opt == 'd' ? &o->duration : opt == 'w' ? &o->warmup : &o->grace) = d;
            break;
        case 'r':
            o->runs = (unsigned)bench_opt_u64("bench_echo", "--runs", optarg, 1, MAX_RUNS);
            break;
        case 'q':
            o->request = (size_t)bench_opt_u64("bench_echo", "--request-size", optarg, 1, 4096);
            break;
        case 's':
            o->chunk = (size_t)bench_opt_u64("bench_echo", "--write-size", optarg, 1, MAX_CHUNK);
            break;
        case 'W':
            o->window = (size_t)bench_opt_u64("bench_echo", "--window", optarg, 1, UINT64_C(1) << 32);
            break;
        case 'p':
            if (strcmp(optarg, "conn") == 0) {
                o->do_conn = true;
                o->do_stream = false;
            } else if (strcmp(optarg, "stream") == 0) {
                o->do_conn = false;
                o->do_stream = true;
            } else if (strcmp(optarg, "both") == 0) {
                o->do_conn = o->do_stream = true;
            } else {
                fprintf(stderr, "bench_echo: --phase: expected conn, stream or both\n");
                return 2;
            }
            break;
        case 'R':
            o->reuseport = true;
            break;
        case 'B':
            o->burst = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench_echo: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct bench b; /* static: the reactor clock arrays are large-ish */
    struct opts *o = &b.o;

    o->server_threads = 1;
    o->client_threads = 1;
    o->clients = 8;
    o->streams = 4;
    o->duration = 1.0;
    o->warmup = 0.2;
    o->grace = 3.0;
    o->runs = 3;
    o->request = 16;
    o->chunk = 64 * 1024;
    o->window = 4u << 20;
    o->do_conn = o->do_stream = true;
    int prc = parse_opts(argc, argv, o);
    if (prc != 0) {
        return prc == 1 ? 0 : prc;
    }
    pattern_init();

    tern_runtime_options ro;
    tern_runtime_options_init(&ro);
    ro.reactors = o->server_threads;
    ro.workers = 1;
    b.rt = tern_runtime_new(&ro);
    if (b.rt == NULL) {
        fprintf(stderr, "bench_echo: tern_runtime_new: out of memory\n");
        return 2;
    }
    b.srv = tern_server_new(b.rt, NULL, on_incoming, NULL);
    if (b.srv == NULL) {
        fprintf(stderr, "bench_echo: tern_server_new: out of memory\n");
        tern_runtime_free(b.rt);
        return 2;
    }
    int rc = o->reuseport ? tern_server_set_reuseport(b.srv, true) : 0;
    if (rc == 0) {
        rc = tern_server_listen(b.srv, "127.0.0.1", 0);
    }
    if (rc < 0) {
        fprintf(stderr, "bench_echo: listen: %s: %s\n", tern_err_name(rc),
                tern_server_error_string(b.srv));
        tern_runtime_free(b.rt);
        return 2;
    }
    b.port = tern_server_port(b.srv);
    rc = tern_runtime_start(b.rt);
    if (rc < 0) {
        fprintf(stderr, "bench_echo: tern_runtime_start: %s: %s\n", tern_err_name(rc),
                tern_runtime_error_string(b.rt));
        tern_runtime_free(b.rt);
        return 2;
    }
    if (b.port == 0) {
        fprintf(stderr, "bench_echo: tern_server_port returned 0 after listen\n");
        tern_runtime_stop(b.rt, 0);
        tern_runtime_join(b.rt);
        tern_runtime_free(b.rt);
        return 2;
    }

    /* Each reactor's CPU clock, read from its own thread. */
    b.nreactors = tern_runtime_reactor_count(b.rt);
    if (b.nreactors > TERN_MAX_REACTORS) {
        b.nreactors = TERN_MAX_REACTORS;
    }
    struct clock_probe *probes = calloc(b.nreactors ? b.nreactors : 1, sizeof(*probes));
    if (probes == NULL) {
        fprintf(stderr, "bench_echo: out of memory\n");
        return 2;
    }
    for (unsigned i = 0; i < b.nreactors; i++) {
        tern_reactor *r = tern_runtime_reactor(b.rt, i);
        if (r == NULL || tern_reactor_post(r, probe_task, &probes[i]) != 0) {
            atomic_store(&probes[i].state, -1);
        }
    }
    uint64_t limit = bench_now_ns() + 2000000000u;
    for (unsigned i = 0; i < b.nreactors; i++) {
        while (atomic_load_explicit(&probes[i].state, memory_order_acquire) == 0 &&
               bench_now_ns() < limit) {
            bench_sleep_ns(100000);
        }
        b.reactor_clock_ok[i] = atomic_load_explicit(&probes[i].state, memory_order_acquire) == 1;
        b.reactor_clock[i] = probes[i].clk;
        if (!b.reactor_clock_ok[i]) {
            fprintf(stderr, "bench_echo: warning: reactor %u CPU clock unknown (task not run)\n",
                    i);
        }
    }

    int status = 0;
    struct run_result res[MAX_RUNS];
    for (int ph = PHASE_CONN; ph <= PHASE_STREAM && status == 0; ph++) {
        if ((ph == PHASE_CONN && !o->do_conn) || (ph == PHASE_STREAM && !o->do_stream)) {
            continue;
        }
        for (unsigned i = 0; i < o->runs; i++) {
            if (run_once(&b, (enum phase)ph, &res[i]) != 0) {
                status = 1;
                break;
            }
        }
        if (status == 0) {
            report(&b, (enum phase)ph, res, o->runs);
        }
    }

    if (!o->json) {
        tern_stats st;
        char line[1024];
        if (tern_runtime_stats(b.rt, &st) == 0 &&
            tern_stats_format(&st, TERN_STATS_TEXT, line, sizeof(line)) >= 0) {
            fprintf(stderr, "bench_echo: server stats: %s\n", line);
        }
    }
    uint64_t t_stop = bench_now_ns();
    tern_runtime_stop(b.rt, 2000);
    tern_runtime_join(b.rt);
    if (!o->json) {
        fprintf(stderr, "bench_echo: runtime stopped and joined in %.1f ms\n",
                (double)(bench_now_ns() - t_stop) / 1e6);
    }
    tern_runtime_free(b.rt); /* frees the server's listener too */
    free(probes);
    return status;
}

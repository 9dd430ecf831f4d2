/* SPDX-License-Identifier: MIT */
/*
 * Hibernation of idle TLS connections (issue 15) over 127.0.0.1: a tern server on one
 * runtime, tern client sockets on another, in one process. After hibernate_after_ms without
 * I/O a connection's TLS state goes into a sealed blob; peer data, a local write, a close or
 * a query that needs it brings it back, and the program sees no difference.
 *
 * Covered: the server hibernates and wakes on peer data (echo intact, then asleep again);
 * the server wakes on its own write; the client hibernates and wakes on the server's data
 * and on its own write; close while hibernated from either side is an orderly end
 * (close_notify both ways, never TERN_E_EOF), a bare FIN is TERN_E_EOF without a wake-up,
 * an abort wipes the blob; TLS 1.2 with a certificate suite and TLS 1.3 external PSK;
 * protocol, cipher, ALPN and SNI answered while asleep without waking, the client's peer
 * certificate the same as awake; 50 connections asleep and woken at once; the counters of
 * tern_stats consistent throughout.
 *
 * Each socket's state (`conn`) is written on its reactor only; the test thread reads the
 * atomics, the received bytes below `rx_len` (published with release), and what tasks posted
 * with ts_post_wait copied out on the reactor. Every wait polls with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

#define HIB_MS 80u                         /* hibernate_after of every hibernating side */
#define WAIT_MS TS_SCALE(5000u, 20000u)    /* the bound of every wait */
#define RX_MAX 8192
#define MAX_CONN 64
#define MANY 50
#define GREET_LEN 700                      /* what a client writes in `encrypted` */

static const uint8_t KEY[32] = {0x31, 0x41, 0x59, 0x26, 0x53, 0x58, 0x97, 0x93,
                                0x23, 0x84, 0x62, 0x64, 0x33, 0x83, 0x27, 0x95,
                                0x02, 0x88, 0x41, 0x97, 0x16, 0x93, 0x99, 0x37,
                                0x51, 0x05, 0x82, 0x09, 0x74, 0x94, 0x45, 0x92};
static const char IDENTITY[] = "hibernating-device-1";

/* What a socket answers about its session (copied out on its reactor). */
typedef struct answers {
    int protocol;
    char cipher[96];
    char alpn[32];
    char sni[64];
    bool reused;     /* tern_socket_session_reused */
    size_t peer_len; /* DER of the peer certificate; 0: none */
    uint8_t peer[4096];
} answers;

typedef struct world world;

/* One end of a connection: an accepted socket or a client. */
typedef struct conn {
    world *w;
    bool server;
    unsigned index;
    uint8_t greet[GREET_LEN]; /* client: written in `encrypted`, before any idle period */
    tern_reactor *r;          /* ro once `encrypted` is published */
    tern_socket *s;           /* owner reactor only; NULL after `disconnected` */
    answers awake;            /* as `encrypted` saw them (published with `encrypted`) */
    uint8_t rx[RX_MAX];       /* everything read, in order */
    _Atomic size_t rx_len;
    _Atomic int encrypted, read_finished, disconnected, reason, errors, first_error;
    _Atomic int violation_line; /* a contract check on the reactor that failed (0: none) */
    uint8_t session[4096];      /* client: exported in `new_session_ticket`, awake */
    _Atomic size_t session_len;
} conn;

struct world {
    tern_runtime *srt, *crt;
    tern_ssl_config *scfg, *ccfg;
    tern_server *srv;
    uint16_t port;
    bool srt_started, crt_started;
    uint32_t client_hibernate_ms; /* tern_socket_set_hibernate_after on clients (0: no) */
    bool psk;                     /* clients use IDENTITY/KEY; the server answers them */
    const uint8_t *offer;         /* a session new clients offer (tern_socket_set_session) */
    size_t offer_len;
    _Atomic unsigned naccepted;
    /* per runtime (server, client): sleep/wake cycles before a case's first sleep, when a
     * busy reactor let an end fall asleep before the greeting arrived (see first_sleep) */
    uint64_t early[2];
    conn sc[MAX_CONN]; /* accepted, in `incoming` order */
    conn cc[MAX_CONN]; /* clients */
    unsigned nclients;
};

#define VIOLATION(c) atomic_store(&(c)->violation_line, __LINE__)

static const char *cert(const char *name)
{
    static char bufs[4][512];
    static unsigned next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", TERN_TEST_CERTS, name);
    return b;
}

static void ask(tern_socket *s, answers *a)
{
    a->protocol = (int)tern_socket_session_protocol(s);
    snprintf(a->cipher, sizeof a->cipher, "%s", tern_socket_session_cipher(s));
    snprintf(a->alpn, sizeof a->alpn, "%s", tern_socket_alpn_protocol(s));
    snprintf(a->sni, sizeof a->sni, "%s", tern_socket_sni_name(s));
    a->reused = tern_socket_session_reused(s);
}

static void ask_peer(tern_socket *s, answers *a)
{
    const tern_certificate *pc = tern_socket_peer_certificate(s);
    tern_buf der = pc != NULL ? tern_certificate_der(pc) : (tern_buf){0};
    a->peer_len = der.len <= sizeof a->peer ? der.len : 0;
    if (a->peer_len > 0) {
        memcpy(a->peer, der.base, der.len);
    }
}

/* ---- events, the same for both ends ---------------------------------------------------- */

static void on_encrypted(tern_socket *s, void *user)
{
    conn *c = user;
    ask(s, &c->awake);
    ask_peer(s, &c->awake);
    if (tern_socket_is_hibernated(s)) {
        VIOLATION(c);
    }
    /* from the handshake's own loop turn: the first exchange cannot race the idle timer, so
     * every case starts with exactly one hibernation to come on each side */
    if (!c->server && tern_socket_write(s, c->greet, sizeof c->greet) != 0) {
        VIOLATION(c);
    }
    atomic_store_explicit(&c->encrypted, 1, memory_order_release);
}

/* Keeps what came; a server echoes it. The read buffer is left empty: a socket with unread
 * bytes never hibernates. */
static void on_ready_read(tern_socket *s, void *user)
{
    conn *c = user;
    for (int guard = 0; guard < 1000; guard++) {
        size_t have = atomic_load_explicit(&c->rx_len, memory_order_relaxed);
        if (have == RX_MAX) {
            VIOLATION(c); /* more than any case sends */
            tern_socket_abort(s);
            return;
        }
        ssize_t n = tern_socket_read(s, c->rx + have, RX_MAX - have);
        if (n < 0) {
            VIOLATION(c);
            return;
        }
        if (n == 0) {
            return;
        }
        atomic_store_explicit(&c->rx_len, have + (size_t)n, memory_order_release);
        if (c->server && tern_socket_write(s, c->rx + have, (size_t)n) != 0) {
            VIOLATION(c); /* a few KiB never fill the write queue */
        }
    }
}

static void on_read_finished(tern_socket *s, void *user)
{
    conn *c = user;
    if (!tern_socket_at_end(s)) {
        VIOLATION(c);
    }
    atomic_store(&c->read_finished, 1);
}

static void on_error(tern_socket *s, int err, void *user)
{
    (void)s;
    conn *c = user;
    int none = 0;
    atomic_compare_exchange_strong(&c->first_error, &none, err);
    atomic_fetch_add(&c->errors, 1);
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    conn *c = user;
    atomic_store(&c->reason, reason);
    c->s = NULL;
    if (!c->server) {
        tern_socket_free(s);
    }
    atomic_store_explicit(&c->disconnected, 1, memory_order_release);
}

static void on_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    (void)s;
    conn *c = user;
    tern_buf id = tern_psk_authenticator_identity(a);
    if (id.len != strlen(IDENTITY) || memcmp(id.base, IDENTITY, id.len) != 0 ||
        tern_psk_authenticator_complete(a, KEY, sizeof KEY) != 0) {
        VIOLATION(c);
    }
}

static void on_ticket(tern_socket *s, void *user)
{
    conn *c = user;
    ssize_t n = tern_socket_session_export(s, c->session, sizeof c->session);
    if (n <= 0 || (size_t)n > sizeof c->session || tern_socket_is_hibernated(s)) {
        VIOLATION(c);
        return;
    }
    atomic_store_explicit(&c->session_len, (size_t)n, memory_order_release);
}

static const tern_socket_events events = {
    .new_session_ticket = on_ticket,
    .ready_read = on_ready_read,
    .read_finished = on_read_finished,
    .error = on_error,
    .disconnected = on_disconnected,
    .encrypted = on_encrypted,
    .psk_authentication_required = on_psk,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    world *w = user;
    unsigned i = atomic_fetch_add(&w->naccepted, 1);
    if (i >= MAX_CONN) {
        tern_socket_abort(s);
        return;
    }
    conn *c = &w->sc[i];
    c->w = w;
    c->server = true;
    c->index = i;
    c->s = s;
    c->r = tern_socket_reactor(s);
    tern_socket_set_events(s, &events, c);
    if (tern_socket_start_server_encryption(s) != 0) {
        VIOLATION(c);
        tern_socket_abort(s);
    }
}

static void client_start(tern_reactor *r, void *arg)
{
    conn *c = arg;
    if (r == NULL) {
        return;
    }
    world *w = c->w;
    c->r = r;
    c->s = tern_socket_new(r);
    if (c->s == NULL) {
        VIOLATION(c);
        return;
    }
    tern_socket_set_events(c->s, &events, c);
    int rc = tern_socket_set_ssl_config(c->s, w->ccfg);
    if (rc == 0 && w->client_hibernate_ms != 0) {
        rc = tern_socket_set_hibernate_after(c->s, w->client_hibernate_ms);
    }
    if (rc == 0 && w->psk) {
        rc = tern_socket_set_psk(c->s, IDENTITY, strlen(IDENTITY), KEY, sizeof KEY);
    }
    if (rc == 0 && w->offer_len != 0) {
        rc = tern_socket_set_session(c->s, w->offer, w->offer_len);
    }
    if (rc == 0) {
        rc = tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1", w->port, "localhost");
    }
    if (rc != 0) {
        VIOLATION(c);
        tern_socket_free(c->s);
        c->s = NULL;
    }
}

/* ---- operations run on a socket's reactor ---------------------------------------------- */

enum op_kind { OP_WRITE, OP_CLOSE, OP_ABORT, OP_TRUNCATE, OP_QUERY, OP_EXPORT };

typedef struct op {
    conn *c;
    enum op_kind kind;
    const void *data;
    size_t len;
    int rc;
    bool alive;                       /* the socket was still there */
    bool hib_before, hib_mid, hib_after; /* is_hibernated around the call */
    answers a;                        /* OP_QUERY */
    uint8_t session[4096];            /* OP_EXPORT */
} op;

static void op_task(tern_reactor *r, void *arg)
{
    op *o = arg;
    tern_socket *s = o->c->s;
    o->alive = r != NULL && s != NULL;
    if (!o->alive) {
        return;
    }
    o->hib_before = tern_socket_is_hibernated(s);
    switch (o->kind) {
    case OP_WRITE:
        o->rc = tern_socket_write(s, o->data, o->len);
        break;
    case OP_CLOSE:
        o->rc = tern_socket_close(s);
        break;
    case OP_ABORT:
        tern_socket_abort(s);
        break;
    case OP_TRUNCATE:
        /* what an attacker who cuts the connection does: a FIN, no close_notify (the
         * descriptor is tern's; the test borrows it on the owner thread) */
        o->rc = shutdown(tern_socket_descriptor(s), SHUT_WR) == 0 ? 0 : -errno;
        break;
    case OP_EXPORT:
        o->rc = (int)tern_socket_session_export(s, o->session, sizeof o->session);
        break;
    case OP_QUERY:
        ask(s, &o->a);
        o->hib_mid = tern_socket_is_hibernated(s);
        ask_peer(s, &o->a);
        break;
    }
    o->hib_after = o->c->s != NULL && tern_socket_is_hibernated(o->c->s);
}

static op run_op(conn *c, enum op_kind kind, const void *data, size_t len)
{
    assert_non_null(c->r);
    /* on the heap: after a timeout the task may still run, and the op is left to it */
    op *o = calloc(1, sizeof *o);
    assert_non_null(o);
    *o = (op){.c = c, .kind = kind, .data = data, .len = len};
    int rc = ts_post_wait(c->r, op_task, o, WAIT_MS);
    if (rc != 0) {
        fail_msg("post to %s %u: %d", c->server ? "server" : "client", c->index, rc);
    }
    op r = *o;
    free(o);
    assert_true(r.alive);
    return r;
}

static void write_ok(conn *c, const void *data, size_t len, bool asleep)
{
    op o = run_op(c, OP_WRITE, data, len);
    if (o.rc != 0) {
        fail_msg("write on %s %u: %s", c->server ? "server" : "client", c->index,
                 tern_err_name(o.rc));
    }
    assert_int_equal(o.hib_before, asleep);
    assert_false(o.hib_after); /* the write needed the keys */
}

/* ---- waits and checks ------------------------------------------------------------------ */

static void wait_rx(conn *c, size_t n)
{
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load_explicit(&c->rx_len, memory_order_acquire) >= n, WAIT_MS);
    if (!ok) {
        fail_msg("%s %u: %zu bytes received, %zu expected (errors %d, first %s, "
                 "disconnected %d)",
                 c->server ? "server" : "client", c->index, atomic_load(&c->rx_len), n,
                 atomic_load(&c->errors), tern_err_name(atomic_load(&c->first_error)),
                 atomic_load(&c->disconnected));
    }
    assert_int_equal(atomic_load(&c->rx_len), n);
}

static void wait_flag(conn *c, _Atomic int *flag, const char *what)
{
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load_explicit(flag, memory_order_acquire) != 0, WAIT_MS);
    if (!ok) {
        fail_msg("%s %u: no %s (errors %d, first %s)", c->server ? "server" : "client",
                 c->index, what, atomic_load(&c->errors),
                 tern_err_name(atomic_load(&c->first_error)));
    }
}

static uint64_t *early_of(world *w, tern_runtime *rt)
{
    return &w->early[rt == w->crt];
}

/* Waits until @p rt's counters read @p now hibernated with @p count hibernations in this case
 * (after the early ones). */
static tern_stats wait_hib(world *w, tern_runtime *rt, uint64_t now, uint64_t count)
{
    tern_stats st = {0};
    bool ok;
    count += *early_of(w, rt);
    TS_WAIT_UNTIL(ok, (st = ts_stats(rt), st.hibernated_now == now && st.hibernations == count),
                  WAIT_MS);
    if (!ok) {
        fail_msg("hibernated_now %llu (want %llu), hibernations %llu (want %llu), wakeups "
                 "%llu, failures %llu/%llu",
                 (unsigned long long)st.hibernated_now, (unsigned long long)now,
                 (unsigned long long)st.hibernations, (unsigned long long)count,
                 (unsigned long long)st.wakeups, (unsigned long long)st.hibernate_failures,
                 (unsigned long long)st.wake_failures);
    }
    return st;
}

/* The wake-up counters of @p rt: @p wakeups in this case, no failure, each wake-up timed
 * once. */
static void check_wakeups(world *w, tern_runtime *rt, uint64_t wakeups)
{
    tern_stats st = ts_stats(rt);
    wakeups += *early_of(w, rt);
    assert_int_equal(st.wakeups, wakeups);
    assert_int_equal(st.wake_failures, 0);
    assert_int_equal(st.hibernate_failures, 0);
    uint64_t timed = 0;
    for (unsigned i = 0; i < TERN_STATS_WAKE_BUCKETS; i++) {
        timed += st.wake_duration_buckets[i];
    }
    assert_int_equal(timed, wakeups);
    /* a zero sum only if every wake-up took under the first bound */
    assert_true(st.wake_duration_us_sum > 0 || st.wake_duration_buckets[0] == wakeups);
}

/*
 * Waits until @p now connections of @p rt sleep, after every greeting came back: from then on
 * nothing moves until the test acts. The greeting is written in the client's `encrypted`, one
 * loop turn after its Finished; a reactor busy with other handshakes (the 50 of case 7, under
 * a sanitizer) can take longer than the delay, and the server end then sleeps once and wakes
 * for the greeting. Those cycles are counted (hibernations - now, each with its wake-up) and
 * the case's figures are taken after them.
 */
static void first_sleep(world *w, tern_runtime *rt, uint64_t now)
{
    tern_stats st = {0};
    bool ok;
    TS_WAIT_UNTIL(ok, (st = ts_stats(rt), st.hibernated_now == now), WAIT_MS);
    if (!ok) {
        fail_msg("hibernated_now %llu (want %llu), hibernations %llu, wakeups %llu, failures "
                 "%llu/%llu",
                 (unsigned long long)st.hibernated_now, (unsigned long long)now,
                 (unsigned long long)st.hibernations, (unsigned long long)st.wakeups,
                 (unsigned long long)st.hibernate_failures, (unsigned long long)st.wake_failures);
    }
    assert_true(st.hibernations >= now);
    uint64_t early = st.hibernations - now;
    assert_int_equal(st.wakeups, early);
    if (early > 0) {
        ts_log("%s: %llu early sleep/wake cycles before the greeting",
               rt == w->crt ? "clients" : "server", (unsigned long long)early);
    }
    *early_of(w, rt) = early;
}

static void check_clean(conn *c)
{
    if (atomic_load(&c->violation_line) != 0 || atomic_load(&c->errors) != 0) {
        fail_msg("%s %u: violation at line %d, %d errors (first %s)",
                 c->server ? "server" : "client", c->index, atomic_load(&c->violation_line),
                 atomic_load(&c->errors), tern_err_name(atomic_load(&c->first_error)));
    }
}

/* rx[from, from + len) of @p c is @p data. */
static void check_rx(const conn *c, size_t from, const void *data, size_t len)
{
    if (memcmp(c->rx + from, data, len) != 0) {
        fail_msg("%s %u: bytes %zu..%zu differ from what was sent",
                 c->server ? "server" : "client", c->index, from, from + len);
    }
}

/* ---- the world ------------------------------------------------------------------------- */

static int setup(void **state)
{
    world *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return -1;
    }
    *state = w;
    return 0;
}

static void free_clients(tern_reactor *r, void *arg)
{
    world *w = arg;
    if (r == NULL) {
        return;
    }
    for (unsigned i = 0; i < w->nclients; i++) {
        tern_socket_free(w->cc[i].s); /* no events follow */
        w->cc[i].s = NULL;
    }
}

static int teardown(void **state)
{
    world *w = *state;
    if (w->crt_started) {
        ts_post_wait(tern_runtime_reactor(w->crt, 0), free_clients, w, WAIT_MS);
        ts_stop_join(w->crt, 0);
    }
    if (w->srt_started) {
        ts_stop_join(w->srt, 0);
    }
    tern_runtime_free(w->crt);
    tern_runtime_free(w->srt);
    tern_ssl_config_unref(w->scfg);
    tern_ssl_config_unref(w->ccfg);
    free(w);
    return 0;
}

#define CFG_OK(cfg, call)                                                                      \
    do {                                                                                       \
        int rc__ = (call);                                                                     \
        if (rc__ != 0) {                                                                       \
            fail_msg("%s: %s (%s)", #call, tern_err_name(rc__),                                \
                     tern_ssl_config_error_string(cfg));                                       \
        }                                                                                      \
    } while (0)

/* A certificate server (@p certname.pem/.key) and a client trusting ca.pem. */
static void configure_certs(world *w, const char *certname)
{
    char pem[64], key[64];
    snprintf(pem, sizeof pem, "%s.pem", certname);
    snprintf(key, sizeof key, "%s.key", certname);
    w->scfg = tern_ssl_config_new();
    w->ccfg = tern_ssl_config_new();
    assert_non_null(w->scfg);
    assert_non_null(w->ccfg);
    CFG_OK(w->scfg, tern_ssl_config_set_local_certificate_file(w->scfg, cert(pem),
                                                               TERN_ENCODING_PEM));
    CFG_OK(w->scfg, tern_ssl_config_set_private_key_file(w->scfg, cert(key), TERN_ENCODING_PEM,
                                                         NULL));
    CFG_OK(w->ccfg, tern_ssl_config_add_ca_certificates_file(w->ccfg, cert("ca.pem"),
                                                             TERN_ENCODING_PEM));
}

/* Both runtimes (the server's with two reactors), the server listening with
 * @p server_hibernate_ms. */
static void start(world *w, uint32_t server_hibernate_ms)
{
    w->srt = ts_runtime_new(2, 0);
    w->crt = ts_runtime_new(1, 0);
    assert_non_null(w->srt);
    assert_non_null(w->crt);
    w->srv = tern_server_new(w->srt, w->scfg, on_incoming, w);
    assert_non_null(w->srv);
    assert_int_equal(tern_server_set_hibernate_after(w->srv, server_hibernate_ms), 0);
    int rc = tern_server_listen(w->srv, "127.0.0.1", 0);
    if (rc != 0) {
        fail_msg("listen: %s: %s", tern_err_name(rc), tern_server_error_string(w->srv));
    }
    w->port = tern_server_port(w->srv);
    assert_int_equal(tern_runtime_start(w->srt), 0);
    w->srt_started = true;
    assert_int_equal(tern_runtime_start(w->crt), 0);
    w->crt_started = true;
}

/* Starts client i (in order) without waiting. */
static conn *client_begin(world *w)
{
    assert_true(w->nclients < MAX_CONN);
    conn *c = &w->cc[w->nclients];
    c->w = w;
    c->index = w->nclients++;
    ts_pattern_fill(c->greet, sizeof c->greet, 0x41b0000 + c->index, 0);
    assert_int_equal(ts_post(tern_runtime_reactor(w->crt, 0), client_start, c, WAIT_MS), 0);
    return c;
}

/* The greeting of @p c came back: @return the bytes received so far. */
static size_t wait_greeting(conn *c)
{
    wait_rx(c, GREET_LEN);
    check_rx(c, 0, c->greet, GREET_LEN);
    return GREET_LEN;
}

/* One client, connected and encrypted on both ends, its greeting echoed; @return the server's
 * end in *@p sc, the bytes the client received in *@p at. */
static conn *connect_one(world *w, conn **sc, size_t *at)
{
    conn *c = client_begin(w);
    wait_flag(c, &c->encrypted, "encrypted");
    *at = wait_greeting(c);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&w->naccepted) == w->nclients, WAIT_MS);
    assert_true(ok);
    *sc = &w->sc[w->nclients - 1];
    wait_flag(*sc, &(*sc)->encrypted, "encrypted");
    check_clean(c);
    check_clean(*sc);
    return c;
}

/* The client writes @p msg and waits for its echo, received after @p *at bytes. */
static void echo(conn *c, const char *msg, size_t *at, bool client_asleep)
{
    size_t len = strlen(msg);
    write_ok(c, msg, len, client_asleep);
    wait_rx(c, *at + len);
    check_rx(c, *at, msg, len);
    *at += len;
}

/* ---- 1. the server sleeps and wakes on the client's data ------------------------------- */

static void test_hibernate__server_sleeps_when_idle_and_wakes_on_peer_data(void **state)
{
    world *w = *state;
    configure_certs(w, "server-rsa");
    CFG_OK(w->scfg, tern_ssl_config_set_protocol_range(w->scfg, TERN_SSL_PROTOCOL_TLS1_3,
                                                       TERN_SSL_PROTOCOL_TLS1_3));
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at); /* the greeting: the exchange before the sleep */
    assert_int_equal(c->awake.protocol, TERN_SSL_PROTOCOL_TLS1_3);

    first_sleep(w, w->srt, 1);
    assert_true(run_op(sc, OP_QUERY, NULL, 0).hib_before);
    check_wakeups(w, w->srt, 0);

    /* a few records' worth, so the wake-up is followed by real traffic */
    char big[3000];
    for (size_t i = 0; i < sizeof big - 1; i++) {
        big[i] = (char)('a' + ts_pattern_byte(1, i) % 26);
    }
    big[sizeof big - 1] = '\0';
    echo(c, big, &at, false);
    check_wakeups(w, w->srt, 1);
    wait_rx(sc, at);
    check_rx(sc, GREET_LEN, big, strlen(big));

    /* asleep again after another idle period, and once more awake for more data */
    wait_hib(w, w->srt, 1, 2);
    assert_true(run_op(sc, OP_QUERY, NULL, 0).hib_before);
    echo(c, "second wake", &at, false);
    check_wakeups(w, w->srt, 2);
    wait_hib(w, w->srt, 1, 3);
    /* the client, without a delay of its own, never slept */
    tern_stats cs = ts_stats(w->crt);
    assert_int_equal(cs.hibernations, 0);
    assert_int_equal(cs.hibernated_now, 0);
    check_clean(c);
    check_clean(sc);
}

/* ---- 2. the server wakes on its own write ---------------------------------------------- */

static void test_hibernate__server_wakes_on_its_own_write(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    first_sleep(w, w->srt, 1);

    static const char push[] = "pushed by the server while it slept";
    write_ok(sc, push, strlen(push), true);
    wait_rx(c, at + strlen(push));
    check_rx(c, at, push, strlen(push));
    at += strlen(push);
    check_wakeups(w, w->srt, 1);

    /* asleep again; the connection still carries data both ways */
    wait_hib(w, w->srt, 1, 2);
    echo(c, "after the push", &at, false);
    check_wakeups(w, w->srt, 2);
    check_clean(c);
    check_clean(sc);
}

/* ---- 3. the client sleeps and wakes on the server's data and on its own write ---------- */

static void test_hibernate__client_wakes_on_server_data_and_on_its_own_write(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    w->client_hibernate_ms = HIB_MS;
    start(w, 0);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);

    first_sleep(w, w->crt, 1);
    assert_true(run_op(c, OP_QUERY, NULL, 0).hib_before);
    static const char push[] = "data for a sleeping client";
    write_ok(sc, push, strlen(push), false);
    wait_rx(c, at + strlen(push));
    check_rx(c, at, push, strlen(push));
    at += strlen(push);
    check_wakeups(w, w->crt, 1);

    wait_hib(w, w->crt, 1, 2);
    echo(c, "the client's own write wakes it", &at, true);
    check_wakeups(w, w->crt, 2);
    wait_hib(w, w->crt, 1, 3);

    tern_stats ss = ts_stats(w->srt);
    assert_int_equal(ss.hibernations, 0);
    check_clean(c);
    check_clean(sc);
}

/* ---- 4. close while hibernated ---------------------------------------------------------- */

static void test_hibernate__client_close_reaches_a_sleeping_server_as_an_orderly_end(
    void **state)
{
    world *w = *state;
    configure_certs(w, "server-rsa");
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    first_sleep(w, w->srt, 1);

    op o = run_op(c, OP_CLOSE, NULL, 0);
    assert_int_equal(o.rc, 0);
    wait_flag(sc, &sc->disconnected, "disconnected");
    assert_int_equal(atomic_load(&sc->reason), 0);
    assert_int_equal(atomic_load(&sc->read_finished), 1);
    wait_flag(c, &c->disconnected, "disconnected");
    assert_int_equal(atomic_load(&c->reason), 0);
    wait_hib(w, w->srt, 0, 1);
    check_wakeups(w, w->srt, 1); /* it woke to read the close_notify */
    check_clean(c);
    check_clean(sc);
}

static void test_hibernate__sleeping_server_close_sends_close_notify(void **state)
{
    world *w = *state;
    configure_certs(w, "server-rsa");
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    first_sleep(w, w->srt, 1);

    op o = run_op(sc, OP_CLOSE, NULL, 0);
    assert_int_equal(o.rc, 0);
    assert_true(o.hib_before);
    wait_flag(c, &c->disconnected, "disconnected");
    /* close_notify, not a bare FIN: an orderly end, never TERN_E_EOF */
    assert_int_equal(atomic_load(&c->reason), 0);
    assert_int_equal(atomic_load(&c->read_finished), 1);
    wait_flag(sc, &sc->disconnected, "disconnected");
    assert_int_equal(atomic_load(&sc->reason), 0);
    wait_hib(w, w->srt, 0, 1);
    check_wakeups(w, w->srt, 1); /* the close_notify needed the keys */
    check_clean(c);
    check_clean(sc);
}

/* A bare FIN is no orderly end (RFC 8446 6.1), asleep or not; it needs no keys. */
static void test_hibernate__fin_without_close_notify_to_a_sleeping_server_is_no_clean_end(
    void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    first_sleep(w, w->srt, 1);

    assert_int_equal(run_op(c, OP_TRUNCATE, NULL, 0).rc, 0);
    wait_flag(sc, &sc->disconnected, "disconnected");
    assert_int_equal(atomic_load(&sc->reason), TERN_E_EOF); /* never 0 (socket.h) */
    wait_hib(w, w->srt, 0, 1);
    check_wakeups(w, w->srt, 0); /* the design's rule: the truncation needs no keys */
}

/* An abort of a sleeping connection: the blob goes, the peer sees the end. */
static void test_hibernate__abort_of_a_sleeping_server_end(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    first_sleep(w, w->srt, 1);

    op o = run_op(sc, OP_ABORT, NULL, 0);
    assert_true(o.hib_before);
    wait_flag(sc, &sc->disconnected, "disconnected");
    wait_flag(c, &c->disconnected, "disconnected");
    assert_int_not_equal(atomic_load(&c->reason), 0); /* no close_notify: not an orderly end */
    wait_hib(w, w->srt, 0, 1);
    check_wakeups(w, w->srt, 0); /* nothing to encrypt: the blob is wiped asleep */
}

/* ---- 5. TLS 1.2 and TLS 1.3 external PSK ------------------------------------------------ */

/* Both ends sleep; the client's write wakes both; both sleep again; the server's write wakes
 * both. */
static void sleep_wake_both_ways(world *w, conn *c, conn *sc, size_t at)
{
    first_sleep(w, w->srt, 1);
    first_sleep(w, w->crt, 1);

    echo(c, "woken by the client's write", &at, true);
    check_wakeups(w, w->srt, 1);
    check_wakeups(w, w->crt, 1);

    wait_hib(w, w->srt, 1, 2);
    wait_hib(w, w->crt, 1, 2);
    static const char push[] = "woken by the server's write";
    write_ok(sc, push, strlen(push), true);
    wait_rx(c, at + strlen(push));
    check_rx(c, at, push, strlen(push));
    check_wakeups(w, w->srt, 2);
    check_wakeups(w, w->crt, 2);
    check_clean(c);
    check_clean(sc);
}

static void test_hibernate__tls12_certificate_suite_sleeps_and_wakes(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    CFG_OK(w->ccfg, tern_ssl_config_set_protocol_range(w->ccfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                       TERN_SSL_PROTOCOL_TLS1_2));
    CFG_OK(w->ccfg, tern_ssl_config_set_ciphers(w->ccfg, "ECDHE-ECDSA-AES128-GCM-SHA256"));
    w->client_hibernate_ms = HIB_MS;
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    assert_int_equal(c->awake.protocol, TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(sc->awake.protocol, TERN_SSL_PROTOCOL_TLS1_2);
    assert_non_null(strstr(c->awake.cipher, "ECDHE-ECDSA-AES128-GCM"));
    sleep_wake_both_ways(w, c, sc, at);
}

static void test_hibernate__tls13_external_psk_sleeps_and_wakes(void **state)
{
    world *w = *state;
    w->scfg = tern_ssl_config_new();
    w->ccfg = tern_ssl_config_new();
    assert_non_null(w->scfg);
    assert_non_null(w->ccfg);
    CFG_OK(w->scfg, tern_ssl_config_enable_psk(w->scfg, NULL));
    CFG_OK(w->ccfg, tern_ssl_config_enable_psk(w->ccfg, NULL));
    CFG_OK(w->ccfg, tern_ssl_config_set_protocol_range(w->ccfg, TERN_SSL_PROTOCOL_TLS1_3,
                                                       TERN_SSL_PROTOCOL_TLS1_3));
    w->psk = true;
    w->client_hibernate_ms = HIB_MS;
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    assert_int_equal(c->awake.protocol, TERN_SSL_PROTOCOL_TLS1_3);
    assert_int_equal(sc->awake.protocol, TERN_SSL_PROTOCOL_TLS1_3);
    assert_int_equal(c->awake.peer_len, 0); /* no certificate: the key authenticated */
    tern_stats st = ts_stats(w->srt);
    assert_int_equal(st.handshakes_psk13, 1);
    sleep_wake_both_ways(w, c, sc, at);
}

/* ---- 6. queries while hibernated -------------------------------------------------------- */

static void assert_answers_equal(const answers *asleep, const answers *awake)
{
    assert_int_equal(asleep->protocol, awake->protocol);
    assert_string_equal(asleep->cipher, awake->cipher);
    assert_string_equal(asleep->alpn, awake->alpn);
    assert_string_equal(asleep->sni, awake->sni);
    assert_int_equal(asleep->reused, awake->reused);
    assert_int_equal(asleep->peer_len, awake->peer_len);
    assert_memory_equal(asleep->peer, awake->peer, awake->peer_len);
}

static void test_hibernate__queries_answer_the_same_asleep_without_waking(void **state)
{
    world *w = *state;
    configure_certs(w, "server-rsa");
    CFG_OK(w->scfg, tern_ssl_config_set_alpn(w->scfg, "h2,http/1.1"));
    CFG_OK(w->ccfg, tern_ssl_config_set_alpn(w->ccfg, "h2"));
    w->client_hibernate_ms = HIB_MS;
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    /* what they said awake, in `encrypted` */
    assert_int_equal(c->awake.protocol, TERN_SSL_PROTOCOL_TLS1_3);
    assert_true(c->awake.cipher[0] != '\0');
    assert_string_equal(c->awake.alpn, "h2");
    assert_string_equal(sc->awake.alpn, "h2");
    assert_string_equal(sc->awake.sni, "localhost");
    assert_string_equal(c->awake.sni, ""); /* a client has no SNI of its own to report */
    assert_true(c->awake.peer_len > 0);
    first_sleep(w, w->srt, 1);
    first_sleep(w, w->crt, 1);

    for (int side = 0; side < 2; side++) {
        conn *x = side == 0 ? sc : c;
        op q = run_op(x, OP_QUERY, NULL, 0);
        assert_true(q.hib_before);
        /* protocol, cipher, ALPN and SNI are kept outside the blob */
        assert_true(q.hib_mid);
        assert_answers_equal(&q.a, &x->awake);
    }
    /* nothing was woken by the questions */
    check_wakeups(w, w->srt, 0);
    tern_stats cs = ts_stats(w->crt);
    assert_int_equal(cs.wake_failures, 0);
    assert_int_equal(cs.hibernated_now + cs.wakeups, 1); /* the peer certificate may wake */

    /* and the connection goes on */
    echo(c, "still fine", &at, cs.hibernated_now == 1);
    check_clean(c);
    check_clean(sc);
}

/* Until @p c sleeps (its own socket, whatever the others of its runtime do). */
static void wait_asleep(conn *c)
{
    uint64_t deadline = ts_now_ms() + WAIT_MS;
    while (!run_op(c, OP_QUERY, NULL, 0).hib_before) {
        if (ts_now_ms() >= deadline) {
            fail_msg("%s %u never slept", c->server ? "server" : "client", c->index);
        }
        ts_sleep_ms(5);
    }
}

/* A client's session exported while it sleeps is the one it had awake (it resumes); a
 * resumed connection still says so asleep. */
static void test_hibernate__session_export_asleep_resumes_and_reused_is_kept(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    w->client_hibernate_ms = HIB_MS;
    start(w, HIB_MS);
    size_t at;
    conn *sc, *c = connect_one(w, &sc, &at);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load_explicit(&c->session_len, memory_order_acquire) > 0, WAIT_MS);
    assert_true(ok);
    first_sleep(w, w->crt, 1);

    op o = run_op(c, OP_EXPORT, NULL, 0);
    assert_true(o.hib_before);
    assert_int_equal(o.rc, atomic_load(&c->session_len)); /* what `new_session_ticket` got */
    static uint8_t offer[4096];
    memcpy(offer, o.session, (size_t)o.rc);
    w->offer = offer;
    w->offer_len = (size_t)o.rc;
    wait_asleep(c); /* woken by the export, it sleeps again after a new idle period */

    conn *sc2, *c2 = connect_one(w, &sc2, &at);
    assert_true(c2->awake.reused);
    assert_true(sc2->awake.reused);
    for (int side = 0; side < 2; side++) {
        conn *x = side == 0 ? sc2 : c2;
        wait_asleep(x);
        op q = run_op(x, OP_QUERY, NULL, 0);
        assert_true(q.hib_mid);
        assert_answers_equal(&q.a, &x->awake);
    }
    check_clean(c);
    check_clean(c2);
}

/* ---- 7. many connections ---------------------------------------------------------------- */

static void test_hibernate__fifty_connections_sleep_wake_and_echo(void **state)
{
    world *w = *state;
    configure_certs(w, "server-ec");
    start(w, HIB_MS);
    conn *cs[MANY];
    for (unsigned i = 0; i < MANY; i++) {
        cs[i] = client_begin(w);
    }
    for (unsigned i = 0; i < MANY; i++) {
        wait_flag(cs[i], &cs[i]->encrypted, "encrypted");
        wait_greeting(cs[i]);
    }
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&w->naccepted) == MANY, WAIT_MS);
    assert_true(ok);
    first_sleep(w, w->srt, MANY);
    check_wakeups(w, w->srt, 0);

    /* two rounds, each starting with all asleep: each client's own bytes, echoed */
    enum { LEN = 900 };
    static char msg[MANY][2][LEN];
    for (int round = 0; round < 2; round++) {
        size_t at = GREET_LEN + (size_t)round * LEN;
        for (unsigned i = 0; i < MANY; i++) {
            ts_pattern_fill(msg[i][round], LEN, 0x41b0000 + i, at);
            write_ok(cs[i], msg[i][round], LEN, false);
        }
        for (unsigned i = 0; i < MANY; i++) {
            wait_rx(cs[i], at + LEN);
            check_rx(cs[i], at, msg[i][round], LEN);
        }
        check_wakeups(w, w->srt, (uint64_t)(round + 1) * MANY);
        wait_hib(w, w->srt, MANY, (uint64_t)(round + 2) * MANY);
    }

    /* all close; each sleeping server end wakes for the close_notify and ends cleanly */
    for (unsigned i = 0; i < MANY; i++) {
        assert_int_equal(run_op(cs[i], OP_CLOSE, NULL, 0).rc, 0);
    }
    for (unsigned i = 0; i < MANY; i++) {
        conn *sc = &w->sc[i];
        wait_flag(sc, &sc->disconnected, "disconnected");
        assert_int_equal(atomic_load(&sc->reason), 0);
        assert_int_equal(atomic_load(&sc->read_finished), 1);
        assert_int_equal(atomic_load(&sc->rx_len), GREET_LEN + 2 * LEN);
        check_clean(sc);
        wait_flag(cs[i], &cs[i]->disconnected, "disconnected");
        assert_int_equal(atomic_load(&cs[i]->reason), 0);
        check_clean(cs[i]);
    }
    wait_hib(w, w->srt, 0, 3 * MANY);
    check_wakeups(w, w->srt, 3 * MANY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_hibernate__server_sleeps_when_idle_and_wakes_on_peer_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__server_wakes_on_its_own_write, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_hibernate__client_wakes_on_server_data_and_on_its_own_write, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hibernate__client_close_reaches_a_sleeping_server_as_an_orderly_end, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__sleeping_server_close_sends_close_notify,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hibernate__fin_without_close_notify_to_a_sleeping_server_is_no_clean_end, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__abort_of_a_sleeping_server_end, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__tls12_certificate_suite_sleeps_and_wakes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__tls13_external_psk_sleeps_and_wakes,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hibernate__queries_answer_the_same_asleep_without_waking, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_hibernate__session_export_asleep_resumes_and_reused_is_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hibernate__fifty_connections_sleep_wake_and_echo,
                                        setup, teardown),
    };
    if (access(cert("ca.pem"), R_OK) != 0) {
        fprintf(stderr, "SKIP: no test certificates in %s\n", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's load generator: one worker per reactor thread, each driving its share of the
 * connections with libtern's client sockets. Every function below except `bench_load_*`,
 * `bench_worker_take` and the name helpers runs on the worker's own reactor thread.
 *
 * Operations. In the handshake modes (handshake, psk, mix) an operation is a connection: TCP
 * connect, TLS handshake, with --payload one request and its echo, then a graceful close that
 * is no longer timed. In echo mode it is one round trip on a long-lived connection; in
 * throughput mode connections stream until the end and the figure is bytes.
 *
 * Scheduling. Closed loop (no --rate): a worker keeps `max_inflight` operations going and
 * starts the next one as soon as one ends. Open loop (--rate): arrival k of worker w is due
 * at t0 + offset_w + k * period and its latency runs from that time, not from when it could
 * start, so a server that stalls the client (no free connection, a full connection cap) is
 * charged for the wait: coordinated omission is not hidden.
 *
 * Resumption (--mode resume, --mix ...,resume=N). Each worker keeps one session per operation
 * it may have in flight (a slot, struct bench_session); a resume pick takes a free slot, a
 * filled one if there is any. A slot with a session offers it (tern_socket_set_session); the
 * handshake's latency is recorded as "resume" when the server resumed it, else as "full" and
 * counted in `full_instead` (full_instead_of_resumed: reported, not an error), and the new
 * session replaces the old one. An empty slot primes: a full handshake, counted in `primed`,
 * whose session fills the slot. TLS 1.2 tickets come inside the handshake, so the session is
 * taken at `encrypted`; a TLS 1.3 ticket comes after it, so such an operation ends (and
 * closes) only once `new_session_ticket` fired, after its request if it has one, within
 * --timeout (else a `no_ticket` error). A handshake that fails with a session offered drops
 * it; TERN_E_TLS_PROTOCOL there is the wolfSSL 5.7.x client that cannot fall back when a
 * TLS 1.2 server refuses the session (session.h): counted as `resume_refused`.
 *
 * Targets (--target, several times). Connections go to the targets in turn, each worker
 * starting at its own index; a resume pick that offers a session goes instead to the target
 * after the one the session came from (the issuer, or the one that last resumed it), so with
 * two or more targets every offer crosses servers: what a fleet sharing its ticket keys must
 * resume. Those offers are counted apart (`cross_offered`, `cross_resumed`). With one target
 * nothing changes: every offer goes back to it.
 *
 * Plain (--plain): TCP without TLS; `connected` stands for `encrypted`, so a handshake-mode
 * operation is connect (+ request) + close, and echo and throughput run on plaintext.
 *
 * Measuring. An operation counts when it started at or after the warm-up ended; operations
 * cut by the end of the run count as neither success nor error. With --count each worker
 * launches its share of the measured operations, then finishes once they ended (each is
 * bounded by --timeout). With --duration a timer ends the run.
 */
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK_BYTES (64 * 1024)
#define TICK_SLACK_US 2000 /* a tick that fires this early still counts for its second */

struct bench_conn {
    struct bench_worker *w;
    tern_socket *s;
    struct bench_conn *prev, *next; /* w->conns */
    struct bench_conn *next_idle;   /* w->idle (echo) */
    enum bench_type type;           /* the handshake type of this connection */
    uint64_t start_us;              /* the operation's (scheduled) start */
    size_t to_send;                 /* request bytes still to queue */
    size_t to_receive;              /* response bytes still expected */
    bool measured;                  /* the operation started after the warm-up */
    bool in_op;                     /* an operation is in progress (holds an inflight slot) */
    bool handshaken;                /* `encrypted` fired */
    bool closing;                   /* we closed it; waiting for `disconnected` */
    bool has_slot;                  /* resume: holds w->sessions[slot] while in operation */
    bool offered;                   /* resume: offered the slot's session */
    bool want_session;              /* resume: its new session is to fill the slot */
    bool awaiting_ticket;           /* done, but for the TLS 1.3 ticket (want_session) */
    bool cross;                     /* resume: offered to another target than the issuer */
    unsigned slot;
    unsigned target;                /* cfg->targets[target] */
};

static void pump(struct bench_worker *w);
static void finish_worker(struct bench_worker *w);

uint64_t bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char *const type_names[BENCH_NTYPES] = {"full", "psk", "resume", "request"};
static const char *const err_names[BENCH_NERRS] = {
    "refused", "reset",  "timeout", "alert",        "verify", "handshake",
    "closed",  "address", "resolve", "psk_not_used", "resume_refused", "no_ticket", "other",
};

const char *bench_type_name(enum bench_type type)
{
    return type < BENCH_NTYPES ? type_names[type] : "?";
}

const char *bench_err_name(enum bench_err kind)
{
    return kind < BENCH_NERRS ? err_names[kind] : "?";
}

enum bench_err bench_err_classify(int err)
{
    switch (err) {
    case TERN_ECONNREFUSED:
        return BENCH_ERR_REFUSED;
    case TERN_ECONNRESET:
    case TERN_EPIPE:
    case TERN_ECONNABORTED:
        return BENCH_ERR_RESET;
    case TERN_ETIMEDOUT:
    case TERN_E_TLS_TIMEOUT:
    case TERN_E_IDLE_TIMEOUT:
        return BENCH_ERR_TIMEOUT;
    case TERN_E_TLS_ALERT:
        return BENCH_ERR_ALERT;
    case TERN_E_TLS_VERIFY:
        return BENCH_ERR_VERIFY;
    case TERN_E_TLS_HANDSHAKE:
    case TERN_E_TLS_PROTOCOL:
        return BENCH_ERR_HANDSHAKE;
    case 0:
    case TERN_E_EOF:
        return BENCH_ERR_CLOSED;
    case TERN_EADDRNOTAVAIL:
    case TERN_EADDRINUSE:
    case TERN_E_ADDRESS:
        return BENCH_ERR_ADDRESS;
    case TERN_E_RESOLVE:
        return BENCH_ERR_RESOLVE;
    default:
        return BENCH_ERR_OTHER;
    }
}

/* ---- bookkeeping ------------------------------------------------------------------------- */

static bool persistent_mode(const struct bench_config *cfg)
{
    return cfg->mode == BENCH_MODE_ECHO || cfg->mode == BENCH_MODE_THROUGHPUT;
}

static uint64_t warmup_end_us(const struct bench_worker *w)
{
    return w->b->t0_us + w->b->cfg->warmup_us;
}

static void record_ok(struct bench_worker *w, struct bench_conn *c, enum bench_type type,
                      uint64_t start_us, uint64_t now)
{
    uint64_t lat = now > start_us ? now - start_us : 0;

    w->live.ok[type]++;
    bench_hist_record(&w->ihist[type], lat);
    if (c->measured) {
        w->final.ok[type]++;
        bench_hist_record(&w->hist[type], lat);
    }
}

static void add_detail(struct bench_worker *w, enum bench_err kind, const char *text)
{
    if (text == NULL || text[0] == '\0') {
        return;
    }
    for (size_t i = 0; i < w->ndetails; i++) {
        if (w->details[i].kind == kind && strncmp(w->details[i].text, text,
                                                  sizeof(w->details[i].text) - 1) == 0) {
            w->details[i].count++;
            return;
        }
    }
    if (w->ndetails == BENCH_MAX_DETAILS) {
        w->details_dropped++;
        return;
    }
    struct bench_detail *d = &w->details[w->ndetails++];
    d->kind = kind;
    snprintf(d->text, sizeof(d->text), "%s", text);
    d->count = 1;
}

/* A failed attempt. Addresses and ports make refusals and resets differ per connection, so
 * their texts are not kept; TLS failures and the rest keep theirs (the alert's name...). */
static void record_error(struct bench_worker *w, struct bench_conn *c, enum bench_err kind,
                         const char *text)
{
    w->live.errors[kind]++;
    if (c->measured) {
        w->final.errors[kind]++;
        if (kind != BENCH_ERR_REFUSED && kind != BENCH_ERR_RESET && kind != BENCH_ERR_TIMEOUT &&
            kind != BENCH_ERR_CLOSED) {
            add_detail(w, kind, text);
        }
    }
}

static void count_bytes(struct bench_worker *w, bool in, size_t n)
{
    uint64_t *live = in ? &w->live.bytes_in : &w->live.bytes_out;
    *live += n;
    if (bench_now_us() >= warmup_end_us(w)) {
        uint64_t *fin = in ? &w->final.bytes_in : &w->final.bytes_out;
        *fin += n;
    }
}

/* Whether one more measured operation may start (count mode). */
static bool quota_left(const struct bench_worker *w)
{
    return w->quota == 0 || w->launched < w->quota;
}

/* Marks the start of an operation at @p start_us. */
static void op_begin(struct bench_worker *w, struct bench_conn *c, uint64_t start_us)
{
    c->start_us = start_us;
    c->measured = start_us >= warmup_end_us(w);
    c->in_op = true;
    w->inflight++;
    if (c->measured) {
        w->launched++;
    }
}

static void slot_release(struct bench_worker *w, struct bench_conn *c);

static void op_end(struct bench_worker *w, struct bench_conn *c)
{
    if (c->in_op) {
        c->in_op = false;
        w->inflight--;
    }
    slot_release(w, c);
}

static void unlink_conn(struct bench_worker *w, struct bench_conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    for (struct bench_conn **p = &w->idle; *p != NULL; p = &(*p)->next_idle) {
        if (*p == c) {
            *p = c->next_idle;
            break;
        }
    }
    w->nconns--;
}

/* Frees @p c and its socket (legal inside the socket's callbacks). */
static void drop_conn(struct bench_worker *w, struct bench_conn *c)
{
    slot_release(w, c);
    unlink_conn(w, c);
    tern_socket_free(c->s);
    free(c);
}

/* ---- sessions (resume) ------------------------------------------------------------------- */

static void session_clear(struct bench_session *ss)
{
    if (ss->data != NULL) {
        explicit_bzero(ss->data, ss->cap);
    }
    ss->len = 0;
}

/* Takes a free slot for resume pick @p c: one with a session if there is any. */
static void slot_take(struct bench_worker *w, struct bench_conn *c)
{
    if (w->nready > 0) {
        c->slot = w->ready[--w->nready];
    } else if (w->nempty > 0) {
        c->slot = w->empty[--w->nempty];
    } else {
        return; /* more resume picks in flight than max_inflight: cannot happen */
    }
    c->has_slot = true;
}

static void slot_release(struct bench_worker *w, struct bench_conn *c)
{
    if (!c->has_slot) {
        return;
    }
    c->has_slot = false;
    if (w->sessions[c->slot].len > 0) {
        w->ready[w->nready++] = c->slot;
    } else {
        w->empty[w->nempty++] = c->slot;
    }
}

/* Stores the session of @p c's socket in its slot. @return true if stored; on failure the
 * slot keeps what it had. */
static bool slot_store(struct bench_worker *w, struct bench_conn *c)
{
    if (!c->has_slot) {
        return false;
    }
    struct bench_session *ss = &w->sessions[c->slot];
    ssize_t n = tern_socket_session_export(c->s, NULL, 0); /* the size it needs */
    if (n <= 0) {
        return false;
    }
    if ((size_t)n > ss->cap) {
        size_t cap = (size_t)n < 1024 ? 1024 : (size_t)n;
        uint8_t *bigger = malloc(cap);
        if (bigger == NULL) {
            return false;
        }
        session_clear(ss);
        free(ss->data);
        ss->data = bigger;
        ss->cap = cap;
    }
    n = tern_socket_session_export(c->s, ss->data, ss->cap);
    if (n <= 0 || (size_t)n > ss->cap) {
        session_clear(ss);
        return false;
    }
    if ((size_t)n < ss->len) {
        explicit_bzero(ss->data + n, ss->len - (size_t)n); /* the rest of the old session */
    }
    ss->len = (size_t)n;
    ss->target = c->target;
    return true;
}

/* Offers the slot's session on resume pick @p c (before connecting) and points @p c at the
 * target after the session's, or leaves the slot empty for a priming full handshake.
 * @return 0 or the code of a failed set-up. */
static int offer_session(struct bench_worker *w, struct bench_conn *c)
{
    size_t n = w->b->cfg->ntargets;

    slot_take(w, c);
    if (!c->has_slot || w->sessions[c->slot].len == 0) {
        return 0;
    }
    struct bench_session *ss = &w->sessions[c->slot];
    int rc = tern_socket_set_session(c->s, ss->data, ss->len);
    if (rc == TERN_EINVAL) {
        session_clear(ss); /* not a session this build reads: prime a new one */
        return 0;
    }
    c->offered = rc == 0;
    c->target = (unsigned)((ss->target + 1) % n);
    c->cross = c->offered && c->target != ss->target;
    return rc;
}

/* An offer to another target than the session's ended: @p resumed or not (full, refused). */
static void count_cross(struct bench_worker *w, struct bench_conn *c, bool resumed)
{
    if (!c->cross) {
        return;
    }
    w->live.cross_offered++;
    w->final.cross_offered += c->measured ? 1 : 0;
    if (resumed) {
        w->live.cross_resumed++;
        w->final.cross_resumed += c->measured ? 1 : 0;
    }
}

/* Counts a resume pick that made a full handshake: a refused offer or a priming one. */
static void count_resume_full(struct bench_worker *w, struct bench_conn *c)
{
    if (c->offered) {
        w->live.full_instead++;
        w->final.full_instead += c->measured ? 1 : 0;
    } else {
        w->live.primed++;
        w->final.primed += c->measured ? 1 : 0;
    }
}

/*
 * A resume pick's handshake completed: @return the type its latency counts as. Unless the
 * offered session was resumed, the slot is to get the new session: at once in TLS 1.2
 * (the ticket came inside the handshake), after `new_session_ticket` in TLS 1.3.
 */
static enum bench_type resume_outcome(struct bench_worker *w, struct bench_conn *c)
{
    if (c->offered && tern_socket_session_reused(c->s)) {
        count_cross(w, c, true);
        if (c->has_slot) {
            w->sessions[c->slot].target = c->target; /* the next offer moves on from here */
        }
        return BENCH_TYPE_RESUME;
    }
    count_cross(w, c, false);
    count_resume_full(w, c);
    if (c->has_slot) {
        if (tern_socket_session_protocol(c->s) == TERN_SSL_PROTOCOL_TLS1_3) {
            c->want_session = true;
        } else if (!slot_store(w, c)) {
            session_clear(&w->sessions[c->slot]); /* the old one was not resumed either */
        }
    }
    return BENCH_TYPE_FULL;
}

/* ---- connections ------------------------------------------------------------------------- */

static enum bench_type next_type(struct bench_worker *w)
{
    const struct bench_config *cfg = w->b->cfg;

    switch (cfg->mode) {
    case BENCH_MODE_PSK:
        return BENCH_TYPE_PSK;
    case BENCH_MODE_RESUME:
        return BENCH_TYPE_RESUME;
    case BENCH_MODE_MIX: {
        /* smooth weighted round robin: the ratio holds exactly over every 100 picks */
        unsigned best = 0;
        for (unsigned i = 0; i < BENCH_NHANDSHAKE_TYPES; i++) {
            w->wrr[i] += (int)cfg->mix[i];
            if (w->wrr[i] > w->wrr[best]) {
                best = i;
            }
        }
        w->wrr[best] -= 100;
        return (enum bench_type)best;
    }
    case BENCH_MODE_ECHO:
    case BENCH_MODE_THROUGHPUT:
        return cfg->psk_cfg != NULL ? BENCH_TYPE_PSK : BENCH_TYPE_FULL;
    case BENCH_MODE_HANDSHAKE:
    default:
        return BENCH_TYPE_FULL;
    }
}

static void send_request(struct bench_worker *w, struct bench_conn *c);

/* Queues as much of the request, or of the stream, as the write queue takes. */
static void fill(struct bench_worker *w, struct bench_conn *c)
{
    bool stream = w->b->cfg->mode == BENCH_MODE_THROUGHPUT;

    while (stream || c->to_send > 0) {
        size_t room = tern_socket_write_room(c->s);
        size_t n = room < CHUNK_BYTES ? room : CHUNK_BYTES;
        if (!stream && c->to_send < n) {
            n = c->to_send;
        }
        if (n == 0 || tern_socket_write(c->s, w->chunk, n) < 0) {
            return; /* full: bytes_written resumes; a dead socket reports disconnected */
        }
        if (!stream) {
            c->to_send -= n;
        }
    }
}

static void op_done(struct bench_worker *w, struct bench_conn *c, uint64_t now);

/* The connection is ready for its operation: TLS after `encrypted`, --plain after
 * `connected` (nothing negotiated: the "handshake" is the TCP connect). */
static void conn_ready(tern_socket *s, struct bench_conn *c);

static void conn_connected(tern_socket *s, void *user)
{
    struct bench_conn *c = user;

    if (c->w->b->cfg->plain) {
        conn_ready(s, c);
    }
}

static void conn_encrypted(tern_socket *s, void *user)
{
    conn_ready(s, user);
}

static void conn_ready(tern_socket *s, struct bench_conn *c)
{
    struct bench_worker *w = c->w;
    const struct bench_config *cfg = w->b->cfg;
    uint64_t now = bench_now_us();

    c->handshaken = true;
    if (cfg->plain) {
        if (w->negotiated.protocol[0] == '\0') {
            snprintf(w->negotiated.protocol, sizeof(w->negotiated.protocol), "none");
        }
    } else if (c->type == BENCH_TYPE_PSK && tern_socket_peer_certificate(s) != NULL) {
        /* the server chose a certificate handshake: not what was asked to be measured */
        record_error(w, c, BENCH_ERR_PSK_NOT_USED, "PSK offered, certificate handshake made");
        op_end(w, c);
        c->closing = true;
        tern_socket_abort(s);
        pump(w);
        return;
    }
    if (!cfg->plain && w->negotiated.protocol[0] == '\0') {
        struct bench_negotiated *n = &w->negotiated;
        int p = tern_socket_session_protocol(s);
        const char *v = p == TERN_SSL_PROTOCOL_TLS1_3   ? "TLS 1.3"
                        : p == TERN_SSL_PROTOCOL_TLS1_2 ? "TLS 1.2"
                                                        : "?";
        snprintf(n->protocol, sizeof(n->protocol), "%s", v);
        snprintf(n->cipher, sizeof(n->cipher), "%s", tern_socket_session_cipher(s));
        snprintf(n->group, sizeof(n->group), "%s", tern_socket_session_group(s));
    }
    enum bench_type type = c->type == BENCH_TYPE_RESUME ? resume_outcome(w, c) : c->type;
    if (c->in_op || persistent_mode(cfg)) {
        record_ok(w, c, type, c->start_us, now); /* the handshake's latency */
    }
    switch (cfg->mode) {
    case BENCH_MODE_THROUGHPUT:
        fill(w, c); /* the stream runs until the end of the run */
        return;
    case BENCH_MODE_ECHO:
        /* the connection is set up: it now carries round trips */
        c->next_idle = w->idle;
        w->idle = c;
        pump(w);
        return;
    default:
        break;
    }
    if (cfg->payload > 0) {
        c->to_send = cfg->payload;
        c->to_receive = cfg->payload;
        c->start_us = now; /* the request's round trip, after the handshake's */
        fill(w, c);
        return;
    }
    op_done(w, c, now);
}

/* The operation of a handshake-mode connection completed: close it, start the next; a
 * TLS 1.3 resume pick that is to store its session first waits for the ticket (the idle
 * timeout, --timeout, bounds the wait: `disconnected` then counts a no_ticket error). */
static void op_done(struct bench_worker *w, struct bench_conn *c, uint64_t now)
{
    if (c->want_session) {
        c->awaiting_ticket = true;
        return;
    }
    op_end(w, c);
    c->closing = true;
    if (tern_socket_close(c->s) < 0) {
        drop_conn(w, c);
    }
    pump(w);
}

static void conn_ready_read(tern_socket *s, void *user)
{
    struct bench_conn *c = user;
    struct bench_worker *w = c->w;
    tern_buf view;
    size_t got = 0;

    while (tern_socket_peek_view(s, &view) == 0 && view.len > 0) {
        got += view.len;
        tern_socket_consume(s, view.len);
    }
    if (got == 0) {
        return;
    }
    count_bytes(w, true, got);
    if (c->closing || w->b->cfg->mode == BENCH_MODE_THROUGHPUT || c->to_receive == 0) {
        return;
    }
    c->to_receive = got >= c->to_receive ? 0 : c->to_receive - got;
    if (c->to_receive > 0) {
        return;
    }
    uint64_t now = bench_now_us();
    if (c->in_op) {
        record_ok(w, c, BENCH_TYPE_REQUEST, c->start_us, now);
    }
    if (w->b->cfg->mode == BENCH_MODE_ECHO) {
        op_end(w, c);
        tern_socket_set_idle_timeout(s, 0); /* idle between requests is fine */
        c->next_idle = w->idle;
        w->idle = c;
        pump(w);
        return;
    }
    op_done(w, c, now);
}

static void conn_bytes_written(tern_socket *s, size_t n, void *user)
{
    struct bench_conn *c = user;
    struct bench_worker *w = c->w;

    count_bytes(w, false, n);
    if (!c->closing) {
        fill(w, c);
    }
}

/* TLS 1.3 (and any new ticket of a resumed connection): the session can be stored now. */
static void conn_new_session_ticket(tern_socket *s, void *user)
{
    struct bench_conn *c = user;
    struct bench_worker *w = c->w;

    if (c->type == BENCH_TYPE_RESUME &&
        tern_socket_session_protocol(s) == TERN_SSL_PROTOCOL_TLS1_2) {
        /* --resume session-id wants none of these, --resume ticket needs them */
        w->live.tls12_tickets++;
        w->final.tls12_tickets++;
    }
    if (c->closing || !c->has_slot || !c->handshaken) {
        return;
    }
    (void)slot_store(w, c); /* a failure leaves the slot as it was; the next pick will tell */
    if (!c->want_session) {
        return; /* a resumed connection: its slot now has the newer ticket */
    }
    c->want_session = false;
    if (c->awaiting_ticket) {
        c->awaiting_ticket = false;
        op_done(w, c, bench_now_us());
    }
}

static void conn_disconnected(tern_socket *s, int reason, void *user)
{
    struct bench_conn *c = user;
    struct bench_worker *w = c->w;
    bool failed = c->in_op || (!c->closing && persistent_mode(w->b->cfg));

    if (c->awaiting_ticket) {
        /* the handshake (and request) counted; only the session to resume is missing */
        char text[200];
        int err = reason != 0 ? reason : tern_socket_error(s);
        snprintf(text, sizeof(text), "%s: no TLS 1.3 session ticket after the handshake",
                 err != 0 ? tern_err_name(err) : "closed");
        record_error(w, c, BENCH_ERR_NO_TICKET, text);
    } else if (failed) {
        int err = reason != 0 ? reason : tern_socket_error(s);
        enum bench_err kind = bench_err_classify(err);
        char text[200];
        const char *why = tern_socket_error_string(s);
        snprintf(text, sizeof(text), "%s: %s", tern_err_name(err), why[0] != '\0' ? why : "-");
        if (c->offered && !c->handshaken && kind != BENCH_ERR_REFUSED &&
            kind != BENCH_ERR_RESET && kind != BENCH_ERR_TIMEOUT && kind != BENCH_ERR_ADDRESS &&
            kind != BENCH_ERR_RESOLVE) {
            /* the offered session broke the handshake: drop it, the next pick primes */
            session_clear(&w->sessions[c->slot]);
            if (err == TERN_E_TLS_PROTOCOL) {
                kind = BENCH_ERR_RESUME_REFUSED;
                count_cross(w, c, false); /* an offered session that ended: refused */
            }
        }
        if (!c->in_op && c->handshaken) {
            /* a long-lived connection died between operations: one failure, now */
            c->measured = bench_now_us() >= warmup_end_us(w);
        }
        record_error(w, c, kind, text);
        if (!c->in_op && w->b->cfg->mode == BENCH_MODE_ECHO && c->measured) {
            w->launched++; /* a lost connection takes a request's place in --count */
        }
    }
    op_end(w, c);
    drop_conn(w, c);
    pump(w);
}

static const tern_socket_events conn_events = {
    .connected = conn_connected,
    .encrypted = conn_encrypted,
    .ready_read = conn_ready_read,
    .bytes_written = conn_bytes_written,
    .disconnected = conn_disconnected,
    .new_session_ticket = conn_new_session_ticket,
};

/* Opens one connection; its handshake is the operation begun at @p start_us (closed loop:
 * now; open loop: its scheduled time). In echo and throughput modes the connection itself
 * is not an operation unless @p op. @return false if it could not even start (counted). */
static bool open_conn(struct bench_worker *w, uint64_t start_us, bool op)
{
    const struct bench_config *cfg = w->b->cfg;
    struct bench_conn *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        return false;
    }
    c->w = w;
    c->type = next_type(w);
    c->s = tern_socket_new(w->r);
    if (c->s == NULL) {
        free(c);
        return false;
    }
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    if (op) {
        op_begin(w, c, start_us);
    } else {
        c->start_us = start_us;
        c->measured = start_us >= warmup_end_us(w);
    }

    tern_socket_set_events(c->s, &conn_events, c);
    tern_socket_set_connect_timeout(c->s, cfg->timeout_ms);
    if (!persistent_mode(cfg)) {
        tern_socket_set_idle_timeout(c->s, cfg->timeout_ms);
    }
    int rc = 0;
    if (cfg->nsources > 0) {
        rc = tern_socket_set_local_address(c->s, cfg->sources[w->source_next]);
        w->source_next = (w->source_next + 1) % cfg->nsources;
    }
    tern_ssl_config *ssl = c->type == BENCH_TYPE_PSK ? cfg->psk_cfg : cfg->full_cfg;
    if (rc == 0 && !cfg->plain) {
        rc = tern_socket_set_ssl_config(c->s, ssl);
    }
    if (rc == 0 && c->type == BENCH_TYPE_PSK) {
        const struct bench_psk *p = &cfg->psks[w->psk_next];
        w->psk_next = (w->psk_next + 1) % cfg->npsks;
        rc = tern_socket_set_psk(c->s, p->identity, p->identity_len, p->key, p->key_len);
        if (rc == 0) {
            rc = tern_socket_set_psk_hash(c->s, p->hash);
        }
    }
    if (rc == 0 && c->type == BENCH_TYPE_RESUME) {
        rc = offer_session(w, c); /* an offer picks its own target */
    }
    if (!c->offered) {
        c->target = (unsigned)w->target_next;
        w->target_next = (w->target_next + 1) % cfg->ntargets;
    }
    const struct bench_target *t = &cfg->targets[c->target];
    if (rc == 0) {
        rc = cfg->plain ? tern_socket_connect_to_host(c->s, t->host, t->port)
                        : tern_socket_connect_to_host_encrypted(
                              c->s, t->host, t->port, cfg->sni != NULL ? cfg->sni : t->name);
    }
    if (rc < 0) {
        char text[200];
        snprintf(text, sizeof(text), "%s: cannot start: %s", tern_err_name(rc),
                 tern_strerror(rc));
        record_error(w, c, bench_err_classify(rc), text);
        if (!op && cfg->mode == BENCH_MODE_ECHO && c->measured) {
            w->launched++;
        }
        op_end(w, c);
        drop_conn(w, c);
        return false;
    }
    return true;
}

/* Echo: one round trip on idle connection @p c, begun at @p start_us. */
static void start_request(struct bench_worker *w, struct bench_conn *c, uint64_t start_us)
{
    op_begin(w, c, start_us);
    send_request(w, c);
}

static void send_request(struct bench_worker *w, struct bench_conn *c)
{
    const struct bench_config *cfg = w->b->cfg;

    c->to_send = cfg->payload;
    c->to_receive = cfg->payload;
    tern_socket_set_idle_timeout(c->s, cfg->timeout_ms); /* the response's deadline */
    fill(w, c);
}

/* ---- the schedule ------------------------------------------------------------------------ */

static uint64_t arrival_us(const struct bench_worker *w, uint64_t k)
{
    return w->b->t0_us + (w->offset_ns + k * w->period_ns) / 1000u;
}

/* Closed loop: now. Open loop: the next arrival if it is due, else arms the arrival timer
 * and returns 0. */
static uint64_t next_start(struct bench_worker *w, uint64_t now)
{
    if (w->period_ns == 0) {
        return now;
    }
    uint64_t due = arrival_us(w, w->next_arrival);
    if (due > now) {
        uint64_t ms = (due - now + 999) / 1000;
        tern_timer_start(w->arrivals, ms, 0);
        return 0;
    }
    w->next_arrival++;
    return due;
}

/* Starts what the schedule and the caps allow. */
static void pump(struct bench_worker *w)
{
    const struct bench_config *cfg = w->b->cfg;

    if (w->finished) {
        return;
    }
    uint64_t now = bench_now_us();
    if (!w->stopping && cfg->mode == BENCH_MODE_THROUGHPUT) {
        /* keep the streams up (a failed one is replaced) */
        while (w->nconns < w->max_inflight) {
            if (!open_conn(w, now, false)) {
                break;
            }
        }
    } else if (!w->stopping && cfg->mode == BENCH_MODE_ECHO) {
        /* a connection that fails counts as one failed request, so that a target refusing
         * everything still ends a --count run */
        while (w->nconns < w->max_inflight && quota_left(w)) {
            if (!open_conn(w, now, false)) {
                break;
            }
        }
        while (w->idle != NULL && quota_left(w)) {
            uint64_t start = next_start(w, now);
            if (start == 0) {
                break;
            }
            struct bench_conn *c = w->idle;
            w->idle = c->next_idle;
            c->next_idle = NULL;
            start_request(w, c, start);
        }
    } else if (!w->stopping) {
        while (w->inflight < w->max_inflight && quota_left(w)) {
            uint64_t start = next_start(w, now);
            if (start == 0) {
                break;
            }
            open_conn(w, start, true);
        }
    }
    if (!quota_left(w)) {
        w->stopping = true;
    }
    if (w->stopping && w->inflight == 0) {
        finish_worker(w);
    }
}

/* ---- the worker's life ------------------------------------------------------------------- */

static void publish(struct bench_worker *w, uint64_t second, bool done)
{
    pthread_mutex_lock(&w->lock);
    w->pub_counts = w->live;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        bench_hist_merge(&w->pub_hist[t], &w->ihist[t]);
    }
    w->pub_second = second;
    w->pub_done = done;
    pthread_mutex_unlock(&w->lock);
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        if (w->ihist[t].count > 0) {
            bench_hist_reset(&w->ihist[t]);
        }
    }
}

/* Arms the tick for the next whole second since t0. */
static void arm_tick(struct bench_worker *w)
{
    uint64_t next = w->b->t0_us + (w->second + 1) * 1000000u;
    uint64_t now = bench_now_us();
    uint64_t ms = next > now ? (next - now + 999) / 1000 : 0;
    tern_timer_start(w->tick, ms, 0);
}

static void on_tick(tern_timer *t, void *user)
{
    struct bench_worker *w = user;
    uint64_t now = bench_now_us() + TICK_SLACK_US;
    uint64_t second = (now - w->b->t0_us) / 1000000u;

    if (second > w->second) {
        w->second = second;
        publish(w, second, false);
    }
    arm_tick(w);
}

static void on_arrival(tern_timer *t, void *user)
{
    pump(user);
}

/* Cuts what is in progress: the run is over. */
static void abort_all(struct bench_worker *w)
{
    w->stopping = true;
    while (w->conns != NULL) {
        struct bench_conn *c = w->conns;
        if (c->in_op && c->measured) {
            w->aborted_at_end++;
        }
        op_end(w, c);
        tern_socket_set_events(c->s, NULL, NULL);
        drop_conn(w, c);
    }
}

/* Open loop: the arrivals that were due by now and never started (the target fell behind
 * so far that even the connection cap was reached); reported, since their latency is
 * unknown but at least their wait. */
static void count_backlog(struct bench_worker *w)
{
    if (w->period_ns == 0 || w->finished) {
        return;
    }
    uint64_t now = bench_now_us();
    uint64_t elapsed_ns = (now - w->b->t0_us) * 1000u;
    if (elapsed_ns < w->offset_ns) {
        return;
    }
    uint64_t due = (elapsed_ns - w->offset_ns) / w->period_ns + 1; /* arrivals 0..k due */
    if (due > w->next_arrival && (w->quota == 0 || w->launched < w->quota)) {
        w->backlog_at_end += due - w->next_arrival;
    }
}

static void on_end(tern_timer *t, void *user)
{
    struct bench_worker *w = user;

    count_backlog(w);
    abort_all(w);
    finish_worker(w);
}

/* Ends the worker on its thread: frees its sockets and timers, publishes for the last time. */
static void finish_worker(struct bench_worker *w)
{
    if (w->finished) {
        return;
    }
    w->finished = true;
    abort_all(w);
    tern_timer_free(w->tick);
    tern_timer_free(w->arrivals);
    tern_timer_free(w->end);
    w->tick = w->arrivals = w->end = NULL;
    publish(w, UINT64_MAX, true);
    atomic_fetch_add(&w->b->done, 1);
}

static void start_task(tern_reactor *r, void *arg)
{
    struct bench_worker *w = arg;
    const struct bench_config *cfg = w->b->cfg;

    if (r == NULL) {
        return; /* the runtime stopped before the task ran */
    }
    w->r = r;
    w->tick = tern_timer_new(r, on_tick, w);
    w->arrivals = tern_timer_new(r, on_arrival, w);
    w->end = tern_timer_new(r, on_end, w);
    if (w->tick == NULL || w->arrivals == NULL || w->end == NULL) {
        fprintf(stderr, "tern-bench: worker %u: out of memory\n", w->index);
        finish_worker(w);
        return;
    }
    arm_tick(w);
    if (cfg->count == 0) {
        uint64_t end = w->b->t0_us + cfg->warmup_us + cfg->duration_us;
        uint64_t now = bench_now_us();
        tern_timer_start(w->end, end > now ? (end - now + 999) / 1000 : 0, 0);
    }
    pump(w);
}

static void stop_task(tern_reactor *r, void *arg)
{
    struct bench_worker *w = arg;

    if (r == NULL) {
        return;
    }
    count_backlog(w);
    abort_all(w);
    finish_worker(w);
}

/* ---- main's side --------------------------------------------------------------------------- */

int bench_load_init(struct bench *b)
{
    const struct bench_config *cfg = b->cfg;
    unsigned n = tern_runtime_reactor_count(b->rt);

    b->workers = calloc(n, sizeof(*b->workers));
    if (b->workers == NULL) {
        return TERN_ENOMEM;
    }
    b->nworkers = n;
    atomic_init(&b->done, 0);
    bool resume = cfg->mode == BENCH_MODE_RESUME ||
                  (cfg->mode == BENCH_MODE_MIX && cfg->mix[BENCH_TYPE_RESUME] > 0);
    for (unsigned i = 0; i < n; i++) {
        struct bench_worker *w = &b->workers[i];
        w->b = b;
        w->index = i;
        w->r = tern_runtime_reactor(b->rt, i);
        pthread_mutex_init(&w->lock, NULL);
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            bench_hist_reset(&w->hist[t]);
            bench_hist_reset(&w->ihist[t]);
            bench_hist_reset(&w->pub_hist[t]);
        }
        /* shares: connections and --count split as evenly as they go */
        w->max_inflight = cfg->connections / n + (i < cfg->connections % n ? 1 : 0);
        if (cfg->count > 0) {
            w->quota = cfg->count / n + (i < cfg->count % n ? 1 : 0);
            if (w->quota == 0) {
                w->stopping = true; /* more threads than operations */
            }
        }
        if (cfg->rate > 0) {
            double per_worker = cfg->rate / n;
            w->period_ns = (uint64_t)(1e9 / per_worker);
            if (w->period_ns == 0) {
                w->period_ns = 1;
            }
            w->offset_ns = w->period_ns * i / n;
        }
        w->psk_next = cfg->npsks > 0 ? i % cfg->npsks : 0;
        w->source_next = cfg->nsources > 0 ? i % cfg->nsources : 0;
        w->target_next = cfg->ntargets > 0 ? i % cfg->ntargets : 0;
        w->chunk = calloc(1, CHUNK_BYTES);
        if (w->chunk == NULL) {
            return TERN_ENOMEM;
        }
        if (resume && w->max_inflight > 0) {
            unsigned n_slots = w->max_inflight;
            w->sessions = calloc(n_slots, sizeof(*w->sessions));
            w->ready = calloc(n_slots, sizeof(*w->ready));
            w->empty = calloc(n_slots, sizeof(*w->empty));
            if (w->sessions == NULL || w->ready == NULL || w->empty == NULL) {
                return TERN_ENOMEM;
            }
            for (unsigned k = 0; k < n_slots; k++) {
                w->empty[k] = n_slots - 1 - k; /* slot 0 is taken first */
            }
            w->nempty = n_slots;
        }
    }
    return 0;
}

int bench_load_start(struct bench *b)
{
    b->t0_us = bench_now_us();
    for (unsigned i = 0; i < b->nworkers; i++) {
        int rc = tern_reactor_post(b->workers[i].r, start_task, &b->workers[i]);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

void bench_load_stop(struct bench *b)
{
    for (unsigned i = 0; i < b->nworkers; i++) {
        (void)tern_reactor_post(b->workers[i].r, stop_task, &b->workers[i]);
    }
}

uint64_t bench_worker_take(struct bench_worker *w, struct bench_counts *counts,
                           bench_hist *hists)
{
    pthread_mutex_lock(&w->lock);
    *counts = w->pub_counts;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        if (w->pub_hist[t].count > 0) {
            bench_hist_merge(&hists[t], &w->pub_hist[t]);
            bench_hist_reset(&w->pub_hist[t]);
        }
    }
    uint64_t second = w->pub_done ? UINT64_MAX : w->pub_second;
    pthread_mutex_unlock(&w->lock);
    return second;
}

void bench_load_free(struct bench *b)
{
    for (unsigned i = 0; i < b->nworkers; i++) {
        struct bench_worker *w = &b->workers[i];
        pthread_mutex_destroy(&w->lock);
        free(w->chunk);
        if (w->sessions != NULL) {
            for (unsigned k = 0; k < w->max_inflight; k++) {
                session_clear(&w->sessions[k]); /* they hold the sessions' secrets */
                free(w->sessions[k].data);
            }
        }
        free(w->sessions);
        free(w->ready);
        free(w->empty);
    }
    free(b->workers);
    b->workers = NULL;
    b->nworkers = 0;
}

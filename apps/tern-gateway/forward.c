/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's data path (see forward.h).
 *
 * One `struct conn` per device connection, shared by the device socket (accepted, freed by
 * the runtime after its `disconnected`) and the backend socket (ours, freed in its own
 * `disconnected` or when the device goes first). Both sockets live on the same reactor, so
 * the struct is touched by one thread only. It is freed once both sockets are gone.
 *
 * Phases:
 *   accepted (the connection takes a reference to its service's settings) -> TLS handshake
 *   (PSK: the identity is looked up in the settings' store, inline by default: the store is
 *   an in-memory table with lock-free lookups; with --auth-workers on the runtime's PSK
 *   workers) -> `encrypted` -> backend connect (device reads pause: its bytes stay in its
 *   read buffer, and once that is full the runtime stops reading from the kernel) ->
 *   `connected` (or `encrypted` with backend TLS) -> forwarding both ways.
 *
 * Backends: the identity's route (the first whose pattern matches), else the service's list;
 * failover starts at the first, round robin at the reactor's next one; a backend that cannot
 * be reached (refused, timed out, its TLS handshake failed) moves the attempt on to the next,
 * each tried once; when none answers the device is closed (no_backend).
 *
 * Backpressure: `pump` moves at most "write room" of the destination (its write limit minus
 * what is queued) from the source's read buffer, and consumes only what the write took. A
 * full destination stops the pump; its `bytes_written` resumes it. So each direction holds
 * at most read limit + write limit bytes, and TCP flow control slows the sender.
 *
 * Ends of stream (half-close is on for both sockets):
 *   - the device ends its stream (close_notify, `read_finished` once every byte was moved):
 *     the backend gets a FIN after its queue (tern_socket_shutdown_write sends the FIN only
 *     once the queue is empty), and its answer keeps flowing to the device;
 *   - the backend ends its stream (FIN): TLS half-close towards the device (RFC 8446 6.1):
 *     the queued bytes go out, then close_notify and a FIN; the device may go on sending
 *     until it ends its own stream (a TLS 1.2 peer usually answers close_notify with its
 *     own at once).
 *   - both streams ended: both sockets close gracefully.
 *   - an error or an abrupt end on either side: the other side is closed gracefully (its
 *     queue is sent; it does not wait for more input).
 *   - the backend cannot be reached: the device connection is closed gracefully (TLS
 *     close_notify), counted (backend_errors) and logged; the gateway keeps serving.
 */
#include "forward.h"

#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/setup.h"
#include "proxy.h"
#include "psk_redis.h"
#include "ratelimit.h"
#include "conn.h"
#include "identity_limit.h"

/* ---- counters ------------------------------------------------------------------------- */

/* single writer per slot: no read-modify-write needed */
static void add_to(_Atomic uint64_t *slot, uint64_t n)
{
    atomic_store_explicit(slot, atomic_load_explicit(slot, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static void count_n(struct conn *c, enum gw_counter which, uint64_t n)
{
    add_to(&c->svc->counters[c->reactor].v[which], n);
}

static void count(struct conn *c, enum gw_counter which)
{
    count_n(c, which, 1);
}

/* A per-identity counter of the connection's row, if it has one. */
static void count_id(struct conn *c, enum gw_id_counter which, uint64_t n)
{
    if (c->id_slot >= 0) {
        _Atomic uint64_t(*t)[GW_MAX_ID_METRICS][GW_ID_COUNTERS] =
            atomic_load_explicit(&c->svc->id_counters, memory_order_acquire);
        add_to(&t[c->reactor][c->id_slot][which], n);
    }
}

/* Whether identity @p id matches @p pattern (a prefix, or fnmatch's glob; an identity with a
 * NUL byte matches prefixes only). */
static bool ident_matches(const char *pattern, bool prefix, size_t prefix_len, const uint8_t *id,
                          size_t len)
{
    if (prefix) {
        return len >= prefix_len && memcmp(id, pattern, prefix_len) == 0;
    }
    char text[TERN_PSK_MAX_IDENTITY + 1];
    if (len > TERN_PSK_MAX_IDENTITY || memchr(id, '\0', len) != NULL) {
        return false;
    }
    memcpy(text, id, len);
    text[len] = '\0';
    return fnmatch(pattern, text, 0) == 0;
}

/* The backend connect latency of the attempt that just succeeded. */
static void count_latency(struct conn *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t)(now.tv_sec - c->be_started.tv_sec) * 1000000 +
                 (now.tv_nsec - c->be_started.tv_nsec) / 1000;
    if (us < 0) {
        us = 0;
    }
    struct gw_counters *k = &c->svc->counters[c->reactor];
    size_t b = 0;
    while (b < GW_LATENCY_BUCKETS && (uint64_t)us > gw_latency_bounds_us[b]) {
        b++;
    }
    add_to(&k->latency[b], 1);
    add_to(&k->latency_sum_us, (uint64_t)us);
}

uint64_t gw_counter_sum(const struct gw_service *svc, enum gw_counter which)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < TERN_MAX_REACTORS; i++) {
        sum += atomic_load_explicit(&svc->counters[i].v[which], memory_order_relaxed);
    }
    return sum;
}

uint64_t gw_open_connections(const struct gw_service *svc)
{
    uint64_t in = gw_counter_sum(svc, GW_ACCEPTED), out = gw_counter_sum(svc, GW_CLOSED);
    return in > out ? in - out : 0;
}

static struct gw_rate_table *rate_identity_table, *rate_source_table;

int gw_ident_limit_init(void)
{
    rate_identity_table = gw_rate_table_new(0);
    rate_source_table = gw_rate_table_new(0);
    return gw_ident_table_init() < 0 || rate_identity_table == NULL ||
                   rate_source_table == NULL
               ? -1
               : 0;
}

void gw_ident_limit_destroy(void)
{
    gw_rate_table_free(rate_identity_table);
    gw_rate_table_free(rate_source_table);
    rate_identity_table = rate_source_table = NULL;
    gw_ident_table_destroy();
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* Untrusted identity bytes as a quoted log value: printable ASCII as is, '"' and '\\'
 * escaped, anything else as \xHH (NUL bytes included: the identity is not a C string). */
const char *gw_quote_bytes(char *buf, size_t len, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    buf[o++] = '"';
    for (size_t i = 0; i < n && o + 6 < len; i++) {
        uint8_t ch = p[i];
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[ch >> 4];
            buf[o++] = hex[ch & 15];
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* The connection's identity as a log value ("-": a certificate handshake, or none yet). */
static const char *ident_of(const struct conn *c, char *buf, size_t len)
{
    if (c->ident_len == 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    return gw_quote_bytes(buf, len, c->ident, c->ident_len);
}

/* Moves what the destination has room for from @p src's read buffer into @p dst's queue;
 * bytes are consumed only once the write took them. @return 0, or a write error. */
static int pump(tern_socket *src, tern_socket *dst, uint64_t *moved)
{
    for (;;) {
        size_t room = tern_socket_write_room(dst);
        if (room == 0) {
            return 0; /* dst's bytes_written resumes us */
        }
        tern_buf v;
        if (tern_socket_peek_view(src, &v) < 0 || v.len == 0) {
            return 0;
        }
        size_t n = v.len < room ? v.len : room;
        int rc = tern_socket_write(dst, v.base, n);
        if (rc == TERN_ENOBUFS) {
            return 0;
        }
        if (rc < 0) {
            return rc;
        }
        tern_socket_consume(src, n);
        *moved += n;
    }
}

/* The reactor's list of open device connections (touched on that reactor only). */
static void link_live(struct conn *c)
{
    struct conn **head = &c->svc->live[c->reactor];
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL) {
        (*head)->prev = c;
    }
    *head = c;
}

static void unlink_live(struct conn *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else if (c->svc->live[c->reactor] == c) {
        c->svc->live[c->reactor] = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    c->prev = c->next = NULL;
}

static void conn_maybe_free(struct conn *c)
{
    if (c->dev == NULL && c->be == NULL) {
        gw_settings_release(c->st);
        free(c->px);
        if (c->routed != NULL) {
            free(c->routed->v);
            free(c->routed);
        }
        tern_reactor_mem_free(c->home, c);
    }
}

/* Graceful close; a socket already closing or closed is left alone. */
void gw_close_gracefully(tern_socket *s)
{
    if (s != NULL) {
        (void)tern_socket_close(s);
    }
}

/* Device -> backend. */
static void pump_up(struct conn *c)
{
    if (c->dev == NULL || c->be == NULL || !c->be_connected) {
        return; /* before the backend connects the device's bytes wait in its buffer */
    }
    uint64_t moved = 0;
    int rc = pump(c->dev, c->be, &moved);
    if (moved > 0) {
        count_n(c, GW_BYTES_UP, moved);
        count_id(c, GW_ID_BYTES_UP, moved);
    }
    if (rc < 0 && rc != TERN_ENOTCONN) {
        app_log(APP_LOG_WARN, "forward to backend failed", "peer=%s err=%s", c->peer,
                tern_err_name(rc));
        gw_close_gracefully(c->dev);
        gw_close_gracefully(c->be);
    }
}

/* Backend -> device. */
static void pump_down(struct conn *c)
{
    if (c->dev == NULL || c->be == NULL || !c->be_connected) {
        return;
    }
    uint64_t moved = 0;
    int rc = pump(c->be, c->dev, &moved);
    if (moved > 0) {
        count_n(c, GW_BYTES_DOWN, moved);
        count_id(c, GW_ID_BYTES_DOWN, moved);
    }
    if (rc < 0 && rc != TERN_ENOTCONN) {
        app_log(APP_LOG_WARN, "forward to device failed", "peer=%s err=%s", c->peer,
                tern_err_name(rc));
        gw_close_gracefully(c->dev);
        gw_close_gracefully(c->be);
    }
}

/* Both streams ended: close both (each sends what is queued first). */
static void check_done(struct conn *c)
{
    if (c->dev_eof && c->be_eof) {
        gw_close_gracefully(c->dev);
        gw_close_gracefully(c->be);
    }
}

/* The device's stream ended and every byte of it was queued to the backend: FIN towards
 * the backend once that queue is sent (shutdown_write waits for the queue). */
static void device_stream_ended(struct conn *c)
{
    c->dev_eof = true;
    if (c->be != NULL && c->be_connected && !c->be_shut) {
        c->be_shut = true;
        (void)tern_socket_shutdown_write(c->be);
    }
    check_done(c);
}

/* ---- backend socket events ----------------------------------------------------------------- */

/* The PROXY v2 header goes first on the backend connection. @return 0 or a write error. */
static int send_proxy_header(struct conn *c)
{
    struct sockaddr_storage src, dst;
    socklen_t slen = sizeof(src), dlen = sizeof(dst);
    uint8_t hdr[GW_PROXY_V2_MAX];
    int fd = tern_socket_descriptor(c->dev);

    memset(&src, 0, sizeof(src));
    memset(&dst, 0, sizeof(dst));
    if (c->px != NULL) {
        src = c->px->src; /* what the front's PROXY header said */
        dst = c->px->dst;
    } else if (getpeername(fd, (struct sockaddr *)&src, &slen) < 0 ||
               getsockname(fd, (struct sockaddr *)&dst, &dlen) < 0) {
        src.ss_family = AF_UNSPEC; /* LOCAL: the backend sees the gateway's address */
    }
    size_t n = gw_proxy_v2_header(hdr, sizeof(hdr), (struct sockaddr *)&src,
                                  (struct sockaddr *)&dst,
                                  app_protocol_name(tern_socket_session_protocol(c->dev)),
                                  tern_socket_session_cipher(c->dev), c->ident, c->ident_len);
    if (n == 0) {
        return TERN_ENOBUFS;
    }
    return tern_socket_write(c->be, hdr, n);
}

static const struct gw_backend *current_backend(const struct conn *c)
{
    return &c->targets->v[(c->first + c->tried - 1) % c->targets->n];
}

static bool try_backend(struct conn *c);

/* The backend is ready for data: TCP connected, or its TLS handshake done. */
static void be_up(struct conn *c)
{
    c->be_connected = true;
    count(c, GW_BACKEND_CONNECTS);
    count_latency(c);
    if (c->st->proxy_v2 && c->dev != NULL) {
        int rc = send_proxy_header(c);
        if (rc < 0) {
            app_log(APP_LOG_WARN, "PROXY header not sent", "peer=%s err=%s", c->peer,
                    tern_err_name(rc));
            gw_close_gracefully(c->dev);
            gw_close_gracefully(c->be);
            return;
        }
    }
    app_log(APP_LOG_DEBUG, "backend connected", "peer=%s backend=%s", c->peer,
            current_backend(c)->text);
    pump_up(c);   /* what the device sent meanwhile */
    pump_down(c); /* anything the backend already sent */
    if (c->dev_eof) {
        device_stream_ended(c); /* the device ended while we were connecting */
    }
}

static void be_connected(tern_socket *s, void *user)
{
    struct conn *c = user;
    if (c->st->backend_ssl == NULL) {
        be_up(c);
    } /* else: `encrypted` follows */
}

static void be_encrypted(tern_socket *s, void *user)
{
    be_up(user);
}

static void be_ready_read(tern_socket *s, void *user)
{
    pump_down(user);
}

static void be_bytes_written(tern_socket *s, size_t n, void *user)
{
    pump_up(user);
}

static void be_read_finished(tern_socket *s, void *user)
{
    struct conn *c = user;

    c->be_eof = true;
    /* TLS half-close: what the backend sent is queued and goes out before close_notify */
    if (c->dev != NULL && !c->dev_shut) {
        c->dev_shut = true;
        if (tern_socket_shutdown_write(c->dev) < 0) {
            gw_close_gracefully(c->dev);
        }
    }
    check_done(c);
}

static void be_error(tern_socket *s, int err, void *user)
{
    struct conn *c = user;
    char detail[256];

    if (c->be_connected) {
        app_log(APP_LOG_DEBUG, "backend connection error", "peer=%s err=%s detail=%s", c->peer,
                tern_err_name(err),
                app_log_quote(detail, sizeof(detail), tern_socket_error_string(s)));
    }
}

static void be_disconnected(tern_socket *s, int reason, void *user)
{
    struct conn *c = user;

    if (!c->be_connected) {
        char detail[256];
        count(c, GW_BACKEND_ERRORS);
        char id[TERN_PSK_MAX_IDENTITY * 4 + 8];
        app_log(APP_LOG_WARN, "backend unavailable",
                "service=%s peer=%s identity=%s backend=%s err=%s detail=%s", c->svc->name,
                c->peer, ident_of(c, id, sizeof(id)), current_backend(c)->text,
                tern_err_name(reason != 0 ? reason : tern_socket_error(s)),
                app_log_quote(detail, sizeof(detail), tern_socket_error_string(s)));
        tern_socket_free(s); /* legal inside its own callback */
        c->be = NULL;
        if (c->dev != NULL && try_backend(c)) {
            return; /* the next one is being tried */
        }
        gw_close_gracefully(c->dev);
        conn_maybe_free(c);
        return;
    }
    app_log(APP_LOG_DEBUG, "backend disconnected", "peer=%s reason=%s", c->peer,
            tern_err_name(reason));
    gw_close_gracefully(c->dev);
    tern_socket_free(s); /* legal inside its own callback */
    c->be = NULL;
    conn_maybe_free(c);
}

static const tern_socket_events backend_events = {
    .connected = be_connected,
    .encrypted = be_encrypted,
    .ready_read = be_ready_read,
    .bytes_written = be_bytes_written,
    .read_finished = be_read_finished,
    .error = be_error,
    .disconnected = be_disconnected,
};

/* The backends of this connection: the first route whose pattern matches the identity, else
 * the service's own. */
static const struct gw_backend_set *pick_targets(const struct conn *c)
{
    const struct gw_settings *st = c->st;
    for (size_t i = 0; c->ident_len > 0 && i < st->n_routes; i++) {
        const struct gw_route *r = &st->routes[i];
        if (ident_matches(r->pattern, r->prefix, r->prefix_len, c->ident, c->ident_len)) {
            return &r->backends;
        }
    }
    return &st->backends;
}

/* Starts the next untried backend. @return true if one is connecting; false when every
 * backend was tried (counted: no_backend). */
static bool try_backend(struct conn *c)
{
    const struct gw_settings *st = c->st;

    while (c->tried < c->targets->n) {
        if (c->tried > 0) {
            count(c, GW_BACKEND_FAILOVERS);
        }
        c->tried++;
        const struct gw_backend *b = current_backend(c);
        c->be = tern_socket_new(tern_socket_reactor(c->dev));
        if (c->be == NULL) {
            count(c, GW_BACKEND_ERRORS);
            app_log(APP_LOG_WARN, "backend unavailable",
                    "service=%s peer=%s backend=%s err=ENOMEM", c->svc->name, c->peer, b->text);
            break;
        }
        tern_socket_set_events(c->be, &backend_events, c);
        tern_socket_set_half_close(c->be, true);
        (void)tern_socket_set_read_buffer_size(c->be, st->buffer_size);
        (void)tern_socket_set_write_buffer_size(c->be, st->buffer_size);
        (void)tern_socket_set_connect_timeout(c->be, st->backend_connect_timeout_ms);
        clock_gettime(CLOCK_MONOTONIC, &c->be_started);
        int rc;
        if (st->backend_ssl != NULL) {
            rc = tern_socket_set_ssl_config(c->be, st->backend_ssl);
            if (rc == 0) {
                rc = tern_socket_connect_to_host_encrypted(
                    c->be, b->host, b->port,
                    st->backend_verify_name != NULL ? st->backend_verify_name : b->host);
            }
        } else {
            rc = tern_socket_connect_to_host(c->be, b->host, b->port);
        }
        if (rc == 0) {
            return true;
        }
        count(c, GW_BACKEND_ERRORS);
        app_log(APP_LOG_WARN, "backend unavailable", "service=%s peer=%s backend=%s err=%s",
                c->svc->name, c->peer, b->text, tern_err_name(rc));
        tern_socket_free(c->be);
        c->be = NULL;
    }
    count(c, GW_NO_BACKEND);
    char id[TERN_PSK_MAX_IDENTITY * 4 + 8];
    app_log(APP_LOG_WARN, "no backend reachable: closing the device connection",
            "peer=%s identity=%s service=%s tried=%zu", c->peer,
            ident_of(c, id, sizeof(id)), st->name, c->tried);
    return false;
}

/* The identity's own backend from the Redis store (its `backend` field): one target, kept by
 * the connection. @return false when it cannot be parsed or allocated (the service's
 * targets are used, and that is logged). */
static bool route_from_store(struct conn *c, const char *text)
{
    struct gw_backend_set *set = calloc(1, sizeof(*set));
    struct gw_backend *b = calloc(1, sizeof(*b));
    char id[TERN_PSK_MAX_IDENTITY * 4 + 8];

    if (set == NULL || b == NULL ||
        tern_parse_host_port(text, b->host, sizeof(b->host), &b->port) < 0 || b->port == 0) {
        app_log(APP_LOG_WARN, "identity's backend ignored: the service's backends are used",
                "service=%s peer=%s identity=%s reason=%s", c->svc->name, c->peer,
                ident_of(c, id, sizeof(id)),
                set == NULL || b == NULL ? "out-of-memory" : "not HOST:PORT");
        free(set);
        free(b);
        return false;
    }
    snprintf(b->text, sizeof(b->text), "%s", text);
    set->v = b;
    set->n = 1;
    c->routed = set;
    return true;
}

/* The Redis store's per-identity fields of @p rec, once a connection: `max_conn` (a limit of
 * its own, over the service's) and `backend`. @return false when the connection is refused. */
static bool apply_store_fields(struct conn *c, const struct psk_record *rec)
{
    char id[TERN_PSK_MAX_IDENTITY * 4 + 8];

    if (c->store_applied) {
        return true;
    }
    c->store_applied = true;
    if (rec->max_conn > 0) {
        bool over;
        if (!c->counted) {
            int got = gw_ident_acquire(c->ident, c->ident_len, rec->max_conn);
            c->counted = got > 0;
            over = got <= 0;
        } else {
            over = gw_ident_open(c->ident, c->ident_len) > rec->max_conn;
        }
        if (over) {
            count(c, GW_IDENTITY_LIMIT);
            app_log(APP_LOG_INFO, "psk identity refused",
                    "service=%s peer=%s identity=%s reason=connection-limit limit=%u",
                    c->svc->name, c->peer, ident_of(c, id, sizeof(id)), rec->max_conn);
            c->refused = true;
            return false;
        }
    }
    if (rec->backend[0] != '\0') {
        (void)route_from_store(c, rec->backend);
    }
    return true;
}

/* After the handshake, for an answer that came from the fleet thread (a cached answer applied
 * its fields before giving the key): the record, from the cache. @return as above. */
static bool apply_store_record(struct conn *c)
{
    struct psk_record rec;

    if (c->st->redis == NULL || c->ident_len == 0 || c->store_applied ||
        !psk_redis_cached(c->st->redis, c->ident, c->ident_len, &rec)) {
        return true;
    }
    explicit_bzero(rec.key, sizeof(rec.key));
    return apply_store_fields(c, &rec);
}

static void start_backend(struct conn *c)
{
    if (!apply_store_record(c)) {
        gw_close_gracefully(c->dev);
        return;
    }
    c->targets = c->routed != NULL ? c->routed : pick_targets(c);
    c->tried = 0;
    c->first = 0;
    if (c->st->balance == GW_BALANCE_ROUND_ROBIN && c->targets->n > 1) {
        c->first = c->svc->rr_next[c->reactor]++ % c->targets->n;
    }
    if (!try_backend(c)) {
        gw_close_gracefully(c->dev);
    }
}

/* ---- before TLS: the front's PROXY header, handshake rate limits ---------------------------
 * Refusals are logged at info with the peer (and the identity), but at most RATE_LOG_LINES a
 * second per reactor: a scan or a flood must not flood the log too; the counters count every
 * refusal, and the next line logged says how many were left out. Each reactor keeps its own
 * window (touched by that reactor only: no lock). */

#define RATE_LOG_LINES 10

static struct refusal_window {
    uint64_t second;
    unsigned lines;
    uint64_t left_out;
} refusal_log[TERN_MAX_REACTORS];

/* Whether this refusal may be logged; @p left_out: how many were not since the last one. */
static bool refusal_log_take(struct conn *c, uint64_t *left_out)
{
    uint64_t now_s = tern_reactor_now_ms(tern_socket_reactor(c->dev)) / 1000;
    struct refusal_window *w = &refusal_log[c->reactor];

    if (w->second != now_s) {
        w->second = now_s;
        w->lines = 0;
    }
    if (w->lines >= RATE_LOG_LINES) {
        w->left_out++;
        return false;
    }
    w->lines++;
    *left_out = w->left_out;
    w->left_out = 0;
    return true;
}

/* One attempt against the bucket of @p key in @p t, scoped to this connection's service (the
 * same identity or address in two services has two buckets). */
static bool rate_take(struct conn *c, struct gw_rate_table *t, const struct gw_rate *shape,
                      const void *key, size_t len)
{
    uint8_t k[sizeof(c->svc->name) + TERN_PSK_MAX_IDENTITY];
    size_t nl = strnlen(c->svc->name, sizeof(c->svc->name));

    if (t == NULL || shape->rate <= 0 || len > TERN_PSK_MAX_IDENTITY) {
        return true;
    }
    memcpy(k, c->svc->name, nl);
    k[nl] = '\0';
    memcpy(k + nl + 1, key, len);
    return gw_rate_take(t, k, nl + 1 + len, shape->rate, shape->burst,
                        tern_reactor_now_ms(tern_socket_reactor(c->dev)));
}

/* The identity's handshake bucket, before the store is asked (once a connection: a retried
 * ClientHello is not charged twice). A refusal looks to the device like an unknown identity:
 * the same reject, the same alert, so the limit tells nothing about which identities exist.
 * @return true to go on. */
static bool rate_identity_ok(struct conn *c, tern_psk_authenticator *a, tern_buf id)
{
    char quoted[TERN_PSK_MAX_IDENTITY * 4 + 8];
    uint64_t left_out;

    if (c->rate_charged) {
        return true;
    }
    c->rate_charged = true;
    if (rate_take(c, rate_identity_table, &c->st->rate_identity, id.base, id.len)) {
        return true;
    }
    count(c, GW_RATE_LIMITED_IDENTITY);
    if (app_log_enabled(APP_LOG_INFO) && refusal_log_take(c, &left_out)) {
        app_log(APP_LOG_INFO, "psk identity refused",
                "service=%s peer=%s identity=%s reason=rate-limit not_logged=%llu", c->svc->name,
                c->peer, gw_quote_bytes(quoted, sizeof(quoted), id.base, id.len),
                (unsigned long long)left_out);
    }
    c->refused = true;
    (void)tern_psk_authenticator_reject(a);
    return false;
}

/* The source address's handshake bucket (the front's PROXY source when there is one), then
 * TLS on the device socket: the bytes after the PROXY header are its first records. */
static void start_device_tls(struct conn *c)
{
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    uint8_t key[GW_RATE_ADDR_KEY_MAX];
    size_t klen = 0;
    uint64_t left_out;

    bool limited = c->st->rate_source.rate > 0;
    if (limited && c->px != NULL) {
        klen = gw_rate_addr_key(key, (struct sockaddr *)&c->px->src);
    } else if (limited &&
               getpeername(tern_socket_descriptor(c->dev), (struct sockaddr *)&peer, &plen) == 0) {
        klen = gw_rate_addr_key(key, (struct sockaddr *)&peer);
    }
    if (klen > 0 && !rate_take(c, rate_source_table, &c->st->rate_source, key, klen)) {
        count(c, GW_RATE_LIMITED_SOURCE);
        if (app_log_enabled(APP_LOG_INFO) && refusal_log_take(c, &left_out)) {
            app_log(APP_LOG_INFO, "connection refused",
                    "peer=%s reason=rate-limit not_logged=%llu", c->peer,
                    (unsigned long long)left_out);
        }
        tern_socket_abort(c->dev); /* before TLS: nothing to say to it */
        return;
    }
    int rc = tern_socket_set_ssl_config(c->dev, c->st->ssl);
    if (rc == 0) {
        rc = tern_socket_start_server_encryption(c->dev);
    }
    if (rc < 0) {
        app_log(APP_LOG_WARN, "cannot start TLS", "peer=%s err=%s", c->peer, tern_err_name(rc));
        tern_socket_abort(c->dev); /* disconnected follows and frees c */
    }
}

/* No PROXY header, or a malformed one: counted, logged (bounded), the connection aborted. */
static void proxy_in_fail(struct conn *c, const char *why)
{
    uint64_t left_out;
    char quoted[128];

    tern_timer_free(c->proxy_wait);
    c->proxy_wait = NULL;
    count(c, GW_PROXY_IN_ERRORS);
    if (app_log_enabled(APP_LOG_INFO) && refusal_log_take(c, &left_out)) {
        app_log(APP_LOG_INFO, "proxy header refused", "peer=%s reason=%s not_logged=%llu",
                c->peer, app_log_quote(quoted, sizeof(quoted), why),
                (unsigned long long)left_out);
    }
    tern_socket_abort(c->dev);
}

static void proxy_in_timeout(tern_timer *t, void *user)
{
    struct conn *c = user;
    proxy_in_fail(c, tern_socket_bytes_available(c->dev) > 0 ? "incomplete at the timeout"
                                                            : "none within the timeout");
}

/* The device's bytes so far: the header, whole, moves the connection on to TLS. */
static void proxy_in_read(struct conn *c)
{
    uint8_t buf[GW_PROXY_IN_MAX];
    struct gw_proxy_info info;
    ssize_t n = tern_socket_peek(c->dev, buf, sizeof(buf));
    int r = gw_proxy_parse(buf, n > 0 ? (size_t)n : 0, c->st->proxy_in == GW_PROXY_IN_V1 ? 1 : 2,
                           &info);

    if (r == 0) {
        return; /* more to come, within the timer */
    }
    if (r < 0) {
        proxy_in_fail(c, info.reason);
        return;
    }
    (void)tern_socket_consume(c->dev, (size_t)r);
    tern_timer_free(c->proxy_wait);
    c->proxy_wait = NULL;
    tern_socket_set_half_close(c->dev, true);
    if (info.has_addresses) {
        char front[sizeof(c->peer)];
        memcpy(front, c->peer, sizeof(front));
        if ((c->px = malloc(sizeof(*c->px))) == NULL) {
            app_log(APP_LOG_WARN, "out of memory: connection dropped", "peer=%s", c->peer);
            tern_socket_abort(c->dev);
            return;
        }
        c->px->src = info.src;
        c->px->dst = info.dst;
        gw_proxy_format_address(&c->px->src, c->peer, sizeof(c->peer));
        app_log(APP_LOG_DEBUG, "proxy header", "peer=%s front=%s version=%d", c->peer, front,
                info.version);
    }
    start_device_tls(c);
}

/* Expects the front's PROXY header before TLS, within the handshake timeout. Until it ended,
 * the device socket is plaintext and no half-close: a front that connects and closes (a
 * health check) just closes. */
static void proxy_in_wait(struct conn *c)
{
    c->proxy_wait = tern_timer_new(tern_socket_reactor(c->dev), proxy_in_timeout, c);
    if (c->proxy_wait == NULL) {
        app_log_msg(APP_LOG_WARN, "out of memory: connection dropped");
        tern_socket_abort(c->dev);
        return;
    }
    tern_socket_set_half_close(c->dev, false);
    uint32_t ms = c->st->handshake_timeout_ms > 0 ? c->st->handshake_timeout_ms : 10000;
    (void)tern_timer_start(c->proxy_wait, ms, 0);
}

/* ---- device socket events ------------------------------------------------------------------ */

/* Takes a slot of the identity's connection limit (once per connection: a retried
 * ClientHello keeps it). @return true to go on. */
static bool take_identity_slot(struct conn *c, tern_psk_authenticator *a, const char *quoted)
{
    const struct gw_settings *gw = c->st;

    if (gw->max_conn_per_identity == 0 || c->counted) {
        return true;
    }
    int got = gw_ident_acquire(c->ident, c->ident_len, gw->max_conn_per_identity);
    if (got <= 0) {
        if (got == 0) {
            count(c, GW_IDENTITY_LIMIT);
        }
        app_log(APP_LOG_INFO, "psk identity refused",
                "service=%s peer=%s identity=%s reason=%s limit=%u", c->svc->name, c->peer, quoted,
                got == 0 ? "connection-limit" : "out-of-memory", gw->max_conn_per_identity);
        c->refused = true;
        (void)tern_psk_authenticator_reject(a);
        return false;
    }
    c->counted = true;
    return true;
}

/* psk_store: the cache answers inline; a miss is deferred to the fleet thread, which answers
 * the authenticator itself (its failures are logged by dev_error with the identity). */
static void redis_psk(struct conn *c, tern_psk_authenticator *a, tern_buf id, const char *quoted)
{
    struct psk_record rec;
    const char *why = "unknown";

    if (!take_identity_slot(c, a, quoted)) {
        return;
    }
    enum psk_redis_answer ans = psk_redis_lookup(c->st->redis, a, id.base, id.len, &rec, &why);
    if (ans == PSK_REDIS_PENDING) {
        return;
    }
    if (ans == PSK_REDIS_UNKNOWN) {
        count(c, GW_UNKNOWN_IDENTITY);
        app_log(APP_LOG_INFO, "psk identity refused", "service=%s peer=%s identity=%s reason=%s",
                c->svc->name, c->peer, quoted, why);
        c->refused = true;
        (void)tern_psk_authenticator_reject(a);
        return;
    }
    /* a cached answer: its max_conn refuses before the key is given, as the file's limit */
    if (!apply_store_fields(c, &rec)) {
        explicit_bzero(rec.key, sizeof(rec.key));
        (void)tern_psk_authenticator_reject(a);
        return;
    }
    int rc = tern_psk_authenticator_set_key_hash(a, rec.hash);
    if (rc == 0) {
        rc = tern_psk_authenticator_complete(a, rec.key, rec.key_len);
    }
    explicit_bzero(rec.key, sizeof(rec.key));
    if (rc < 0) {
        app_log(APP_LOG_WARN, "psk answer failed", "peer=%s identity=%s err=%s", c->peer, quoted,
                tern_err_name(rc));
    }
}

static void dev_psk(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    struct conn *c = user;
    const struct gw_settings *gw = c->st;
    tern_buf id = tern_psk_authenticator_identity(a);
    uint8_t key[TERN_PSK_MAX_KEY];
    char quoted[TERN_PSK_MAX_IDENTITY * 4 + 8];

    if (id.len == 0 || id.len > TERN_PSK_MAX_IDENTITY) {
        app_log(APP_LOG_INFO, "psk identity refused",
                "service=%s peer=%s reason=bad-length len=%zu", c->svc->name, c->peer, id.len);
        c->refused = true;
        (void)tern_psk_authenticator_reject(a);
        return;
    }
    if (!rate_identity_ok(c, a, id)) {
        return;
    }
    if (!c->counted) {
        c->ident_len = id.len;
        memcpy(c->ident, id.base, id.len);
    }
    gw_quote_bytes(quoted, sizeof(quoted), id.base, id.len);
    if (gw->store_on_workers) {
        /* unanswered: the runtime asks the store on a PSK worker; failures are logged by
         * dev_error with the identity */
        (void)take_identity_slot(c, a, quoted);
        return;
    }
    if (gw->redis != NULL) {
        redis_psk(c, a, id, quoted);
        return;
    }
    enum tern_psk_hash hash = TERN_PSK_HASH_SHA256;
    size_t klen = tern_psk_store_lookup_with_hash(gw->store, id.base, id.len, key, &hash);
    if (klen == 0) {
        count(c, GW_UNKNOWN_IDENTITY);
        app_log(APP_LOG_INFO, "psk identity refused",
                "service=%s peer=%s identity=%s reason=unknown", c->svc->name, c->peer, quoted);
        c->refused = true;
        (void)tern_psk_authenticator_reject(a);
        return;
    }
    if (!take_identity_slot(c, a, quoted)) {
        explicit_bzero(key, sizeof(key));
        return;
    }
    int rc = tern_psk_authenticator_set_key_hash(a, hash);
    if (rc == 0) {
        rc = tern_psk_authenticator_complete(a, key, klen);
    }
    explicit_bzero(key, sizeof(key));
    if (rc < 0) {
        app_log(APP_LOG_WARN, "psk answer failed", "peer=%s identity=%s err=%s", c->peer, quoted,
                tern_err_name(rc));
        return;
    }
    app_log(APP_LOG_DEBUG, "psk identity accepted", "peer=%s identity=%s", c->peer, quoted);
}

static void dev_encrypted(tern_socket *s, void *user)
{
    struct conn *c = user;

    c->encrypted = true;
    count(c, GW_HANDSHAKES);
    for (size_t i = 0; i < c->st->n_id_metrics && c->ident_len > 0; i++) {
        const struct gw_id_metric *m = &c->st->id_metrics[i];
        if (m->slot < GW_MAX_ID_METRICS &&
            ident_matches(m->pattern, m->prefix, m->prefix_len, c->ident, c->ident_len)) {
            c->id_slot = (int)m->slot;
            count_id(c, GW_ID_HANDSHAKES, 1);
            break;
        }
    }
    app_log(APP_LOG_DEBUG, "encrypted", "peer=%s reactor=%u protocol=%s cipher=%s", c->peer,
            tern_reactor_index(tern_socket_reactor(s)),
            app_protocol_name(tern_socket_session_protocol(s)), tern_socket_session_cipher(s));
    start_backend(c);
}

static void dev_ready_read(tern_socket *s, void *user)
{
    struct conn *c = user;

    if (c->proxy_wait != NULL) {
        proxy_in_read(c);
        return;
    }
    pump_up(c);
}

static void dev_bytes_written(tern_socket *s, size_t n, void *user)
{
    pump_down(user);
}

static void dev_read_finished(tern_socket *s, void *user)
{
    device_stream_ended(user);
}

/* Peer-caused failures are routine for a gateway: debug level, except our own faults. */
static void dev_error(tern_socket *s, int err, void *user)
{
    struct conn *c = user;
    enum app_log_level level =
        tern_err_category_of(err) == TERN_ERR_CATEGORY_INTERNAL ? APP_LOG_WARN : APP_LOG_DEBUG;
    char detail[512];

    /* a PSK handshake that failed for a reason not logged yet (a wrong key, a store lookup
     * refused or timed out): the message names the identity, never the key */
    bool psk_failure = !c->encrypted && c->ident_len > 0 && !c->refused;
    if (psk_failure && level < APP_LOG_INFO) {
        level = APP_LOG_INFO;
    }
    if (app_log_enabled(level)) {
        char id[TERN_PSK_MAX_IDENTITY * 4 + 8];
        app_log(level, psk_failure ? "psk handshake failed" : "device connection error",
                "service=%s peer=%s identity=%s err=%s detail=%s", c->svc->name, c->peer,
                ident_of(c, id, sizeof(id)), tern_err_name(err),
                app_log_quote(detail, sizeof(detail), tern_socket_error_string(s)));
    }
}

static void dev_disconnected(tern_socket *s, int reason, void *user)
{
    struct conn *c = user;

    app_log(APP_LOG_DEBUG, "disconnected", "peer=%s reason=%s", c->peer, tern_err_name(reason));
    if (!c->encrypted) {
        count(c, GW_HANDSHAKE_FAILURES);
    }
    count_id(c, GW_ID_CLOSED, 1);
    count(c, GW_CLOSED);
    tern_timer_free(c->proxy_wait); /* the front left before its PROXY header ended */
    c->proxy_wait = NULL;
    if (c->counted) {
        gw_ident_release(c->ident, c->ident_len);
        c->counted = false;
    }
    c->dev = NULL; /* the runtime frees it after we return */
    unlink_live(c);
    if (c->be != NULL) {
        if (c->be_connected) {
            /* what the device sent is queued: let it go out, then close */
            gw_close_gracefully(c->be);
        } else {
            tern_socket_free(c->be); /* still connecting: no events follow */
            c->be = NULL;
        }
    }
    conn_maybe_free(c);
}

static const tern_socket_events device_events = {
    .ready_read = dev_ready_read,
    .bytes_written = dev_bytes_written,
    .read_finished = dev_read_finished,
    .error = dev_error,
    .disconnected = dev_disconnected,
    .encrypted = dev_encrypted,
    .psk_authentication_required = dev_psk,
};

void gw_incoming(tern_server *srv, tern_socket *s, void *user)
{
    struct gw_service *svc = user;
    tern_reactor *home = tern_socket_reactor(s);
    /* from the reactor's slab: an idle device keeps this record, which malloc would put among
     * the handshake's memory (its pages then stay resident after a hibernation) */
    struct conn *c = tern_reactor_mem_alloc(home, sizeof(*c));

    if (c == NULL) {
        app_log_msg(APP_LOG_WARN, "out of memory: connection dropped");
        tern_socket_abort(s);
        return;
    }
    c->home = home;
    c->svc = svc;
    c->st = gw_settings_acquire(svc);
    c->id_slot = -1;
    c->dev = s;
    c->reactor = tern_reactor_index(tern_socket_reactor(s)) % TERN_MAX_REACTORS;
    count(c, GW_ACCEPTED);
    link_live(c);
    if (tern_socket_peer_address(s, c->peer, sizeof(c->peer)) < 0) {
        strcpy(c->peer, "?");
    }
    tern_socket_set_events(s, &device_events, c);
    tern_socket_set_half_close(s, true);
    (void)tern_socket_set_write_buffer_size(s, c->st->buffer_size);
    (void)tern_socket_set_read_buffer_size(s, c->st->buffer_size);
    if (c->st->idle_timeout_ms > 0) {
        (void)tern_socket_set_idle_timeout(s, c->st->idle_timeout_ms);
    }
    if (c->st->hibernate_after_ms > 0) {
        (void)tern_socket_set_hibernate_after(s, c->st->hibernate_after_ms);
    }
    if (c->st->proxy_in != GW_PROXY_IN_OFF) {
        proxy_in_wait(c); /* then start_device_tls */
    } else {
        start_device_tls(c);
    }
}

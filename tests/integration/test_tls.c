/* SPDX-License-Identifier: MIT */
/*
 * TLS over loopback: an in-process TLS echo server (tern_server with a configuration, the
 * incoming callback starts the server handshake, echo with backpressure) and tern client
 * sockets made in tasks on a second runtime (connect_to_host_encrypted). The test PKI comes
 * from tests/certs/gen.sh, in the directory TERN_TEST_CERTS.
 *
 * Covered: TLS 1.3 and 1.2 with RSA and ECDSA certificates, PEM and DER (protocol, cipher,
 * events, mode), writes made before `encrypted`, 16 MiB each way, a slow reader against small
 * buffers, close (close_notify) versus a bare FIN, abort, certificate verification failures
 * and VERIFY_NONE, the configuration's loaders and setters, bad input and the handshake
 * deadline, STARTTLS (answered, and pipelined with the ClientHello).
 *
 * Client state lives in `tcl`, touched only on the client reactor until its `done` flag is
 * set (release), after which the test thread reads it (acquire). Server counters are atomics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

/* A file of the test PKI (test thread only: a ring of static buffers). */
static const char *cert(const char *name)
{
    static char bufs[16][512];
    static unsigned next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s/%s", TERN_TEST_CERTS, name);
    return b;
}

#define P13 TERN_SSL_PROTOCOL_TLS1_3
#define P12 TERN_SSL_PROTOCOL_TLS1_2

/* Whether @p c is a suite name that fits protocol @p proto, and, for TLS 1.2, the key type
 * @p kind ('R' RSA, 'E' ECDSA, 0 either): TLS 1.3 suites are TLS13-... (or IANA TLS_...),
 * TLS 1.2 ones ECDHE-{RSA,ECDSA}-...-{GCM,CHACHA20,CCM}. */
static bool cipher_fits(int proto, const char *c, char kind)
{
    if (c == NULL || c[0] == '\0') {
        return false;
    }
    if (proto == P13) {
        return strncmp(c, "TLS13-", 6) == 0 || strncmp(c, "TLS_AES_", 8) == 0 ||
               strncmp(c, "TLS_CHACHA20_", 13) == 0;
    }
    if (proto != P12) {
        return false;
    }
    if (strncmp(c, "ECDHE-", 6) != 0 && strncmp(c, "TLS_ECDHE_", 10) != 0) {
        return false;
    }
    if (strstr(c, "GCM") == NULL && strstr(c, "CHACHA20") == NULL && strstr(c, "CCM") == NULL) {
        return false;
    }
    if (kind == 'E') {
        return strstr(c, "ECDSA") != NULL;
    }
    if (kind == 'R') {
        return strstr(c, "RSA") != NULL && strstr(c, "ECDSA") == NULL;
    }
    return true;
}

/* ---- the TLS echo server --------------------------------------------------------------- */

typedef struct tsrv {
    /* rw, set before the runtime starts */
    tern_ssl_config *cfg;
    char kind;                /* 'R' or 'E': the certificate's key, checked against suites */
    bool starttls;            /* plaintext until a "STARTTLS\r\n" line ... */
    bool starttls_reply;      /* ... answered with "OK\r\n" before the handshake starts */
    size_t write_buffer_size; /* per accepted socket (0: the default) */
    size_t read_buffer_size;  /* tern_server_set_read_buffer_size (0: the default) */
    int sndbuf;               /* SO_SNDBUF of accepted sockets (0: the default) */
    tern_server *srv;
    uint16_t port;
    /* ro, counters written on reactors */
    _Atomic uint64_t incoming, mode_changed, encrypted, tls13, tls12, ebusy_ok, starttls_lines;
    _Atomic uint64_t ready_read, read_finished, disconnected, disc_clean, disc_tls_timeout;
    _Atomic uint64_t errors, bytes_echoed, write_full, max_buffered;
    _Atomic int last_error, last_reason;
    _Atomic uint64_t violations;
    _Atomic int violation_line;
} tsrv;

#define SV_VIOLATION(sv)                                                                       \
    do {                                                                                       \
        atomic_fetch_add(&(sv)->violations, 1);                                                \
        atomic_store(&(sv)->violation_line, __LINE__);                                         \
    } while (0)

static void atomic_max_u64(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
    }
}

/* Moves min(available, write room) bytes from the read buffer to the write queue. */
static void srv_pump(tern_socket *s, tsrv *sv)
{
    for (int guard = 0; guard < 100000; guard++) {
        size_t avail = tern_socket_bytes_available(s);
        if (avail == 0) {
            return;
        }
        size_t room = tern_socket_write_room(s);
        if (room == 0) {
            atomic_fetch_add_explicit(&sv->write_full, 1, memory_order_relaxed);
            return; /* bytes_written resumes */
        }
        tern_buf v = {0};
        if (tern_socket_peek_view(s, &v) != 0 || v.len == 0 || v.len > avail) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
            return;
        }
        size_t n = v.len < room ? v.len : room;
        int rc = tern_socket_write(s, v.base, n);
        if (rc == TERN_ENOBUFS) {
            SV_VIOLATION(sv); /* the room computed above said it fits */
            atomic_fetch_add_explicit(&sv->write_full, 1, memory_order_relaxed);
            return;
        }
        if (rc < 0) {
            tern_socket_abort(s);
            return;
        }
        if (tern_socket_consume(s, n) != 0) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
            return;
        }
        atomic_fetch_add_explicit(&sv->bytes_echoed, n, memory_order_relaxed);
    }
}

static void srv_ready_read(tern_socket *s, void *user)
{
    tsrv *sv = user;
    atomic_fetch_add(&sv->ready_read, 1);
    atomic_max_u64(&sv->max_buffered, tern_socket_bytes_available(s));
    if (tern_socket_mode(s) == TERN_SSL_MODE_UNENCRYPTED) {
        if (!sv->starttls) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
            return;
        }
        if (!tern_socket_can_read_line(s)) {
            if (tern_socket_bytes_available(s) > 64) {
                SV_VIOLATION(sv);
                tern_socket_abort(s);
            }
            return;
        }
        char line[64];
        ssize_t n = tern_socket_read_line(s, line, sizeof line);
        if (n != 10 || strcmp(line, "STARTTLS\r\n") != 0) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
            return;
        }
        atomic_fetch_add(&sv->starttls_lines, 1);
        if (sv->starttls_reply && tern_socket_write(s, "OK\r\n", 4) != 0) {
            SV_VIOLATION(sv);
        }
        int rc = tern_socket_start_server_encryption(s);
        if (rc != 0) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
        }
        return;
    }
    if (!tern_socket_is_encrypted(s)) {
        SV_VIOLATION(sv); /* plaintext from a TLS connection before `encrypted` */
    }
    srv_pump(s, sv);
}

static void srv_bytes_written(tern_socket *s, size_t n, void *user)
{
    tsrv *sv = user;
    if (n == 0) {
        SV_VIOLATION(sv);
    }
    srv_pump(s, sv);
}

static void srv_read_finished(tern_socket *s, void *user)
{
    tsrv *sv = user;
    atomic_fetch_add(&sv->read_finished, 1);
    if (!tern_socket_at_end(s) || tern_socket_bytes_available(s) != 0) {
        SV_VIOLATION(sv);
    }
}

static void srv_mode_changed(tern_socket *s, enum tern_ssl_mode mode, void *user)
{
    tsrv *sv = user;
    atomic_fetch_add(&sv->mode_changed, 1);
    if (mode != TERN_SSL_MODE_SERVER || tern_socket_mode(s) != TERN_SSL_MODE_SERVER) {
        SV_VIOLATION(sv);
    }
}

static void srv_encrypted(tern_socket *s, void *user)
{
    tsrv *sv = user;
    atomic_fetch_add(&sv->encrypted, 1);
    if (!tern_socket_is_encrypted(s) || tern_socket_mode(s) != TERN_SSL_MODE_SERVER) {
        SV_VIOLATION(sv);
    }
    enum tern_ssl_protocol proto = tern_socket_session_protocol(s);
    if (proto == P13) {
        atomic_fetch_add(&sv->tls13, 1);
    } else if (proto == P12) {
        atomic_fetch_add(&sv->tls12, 1);
    } else {
        SV_VIOLATION(sv);
    }
    if (!cipher_fits(proto, tern_socket_session_cipher(s), sv->kind)) {
        SV_VIOLATION(sv);
    }
    /* a second handshake start on an encrypted socket is refused */
    if (tern_socket_start_server_encryption(s) == TERN_EBUSY &&
        tern_socket_start_client_encryption(s) == TERN_EBUSY) {
        atomic_fetch_add(&sv->ebusy_ok, 1);
    } else {
        SV_VIOLATION(sv);
    }
    srv_pump(s, sv);
}

static void srv_error(tern_socket *s, int err, void *user)
{
    (void)s;
    tsrv *sv = user;
    atomic_fetch_add(&sv->errors, 1);
    atomic_store(&sv->last_error, err);
}

static void srv_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    tsrv *sv = user;
    atomic_store(&sv->last_reason, reason);
    if (reason == 0) {
        atomic_fetch_add(&sv->disc_clean, 1);
    } else if (reason == TERN_E_TLS_TIMEOUT) {
        atomic_fetch_add(&sv->disc_tls_timeout, 1);
    }
    atomic_fetch_add(&sv->disconnected, 1);
}

static const tern_socket_events srv_events = {
    .ready_read = srv_ready_read,
    .bytes_written = srv_bytes_written,
    .read_finished = srv_read_finished,
    .error = srv_error,
    .disconnected = srv_disconnected,
    .mode_changed = srv_mode_changed,
    .encrypted = srv_encrypted,
};

static void srv_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tsrv *sv = user;
    atomic_fetch_add(&sv->incoming, 1);
    if (srv != sv->srv || tern_socket_server(s) != srv ||
        tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED) {
        SV_VIOLATION(sv);
    }
    if (tern_socket_mode(s) != TERN_SSL_MODE_UNENCRYPTED || tern_socket_is_encrypted(s) ||
        tern_socket_session_protocol(s) != TERN_SSL_PROTOCOL_UNKNOWN ||
        tern_socket_session_cipher(s) == NULL || tern_socket_session_cipher(s)[0] != '\0') {
        SV_VIOLATION(sv);
    }
    if (sv->write_buffer_size != 0 &&
        tern_socket_set_write_buffer_size(s, sv->write_buffer_size) != 0) {
        SV_VIOLATION(sv);
    }
    if (sv->sndbuf != 0 &&
        tern_socket_set_option(s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE, sv->sndbuf) != 0) {
        SV_VIOLATION(sv);
    }
    tern_socket_set_events(s, &srv_events, sv);
    if (!sv->starttls) {
        int rc = tern_socket_start_server_encryption(s);
        if (rc != 0) {
            SV_VIOLATION(sv);
            tern_socket_abort(s);
        }
    }
}

/* ---- tern client sockets ----------------------------------------------------------------- */

#define CLIENT_CHUNK 16384
#define SLOW_QUANTUM 4096

typedef struct tcl {
    /* rw, set by the test thread before the client runs */
    tern_ssl_config *cfg;
    uint16_t port;
    const char *peer_name;    /* NULL: the host (127.0.0.1) */
    size_t size;              /* bytes sent, and expected back */
    uint64_t seed;
    bool early;               /* write right after connect_to_host_encrypted */
    bool slow;                /* read SLOW_QUANTUM bytes a millisecond, from a timer */
    size_t read_buffer_size;  /* 0: the default */
    size_t write_buffer_size; /* 0: the default */
    int starttls;             /* 0: no; 1: STARTTLS, wait for OK; 2: STARTTLS pipelined */
    bool close_after_write;   /* close once everything is queued; expect no echo */
    size_t abort_after;       /* after `encrypted`, queue this much, then abort */
    int sndbuf;               /* SO_SNDBUF (0: the default) */
    int rcvbuf;               /* SO_RCVBUF, set before connecting (0: the default) */
    bool truncate;            /* after the echo, FIN without close_notify (shutdown(2)) */
    /* ro: results, written on the client reactor, read after `done` */
    tern_socket *s;
    tern_timer *timer;
    size_t sent, got, max_buffered;
    uint64_t sum_sent, sum_got;
    unsigned n_connected, n_mode_changed, n_encrypted, n_ebusy_ok;
    int mode, protocol;
    char cipher[96];
    int first_error, last_error, reason;
    bool read_finished, in_call, closing;
    bool may_write;           /* STARTTLS: not before start_client_encryption */
    size_t queued_before_abort, records_before_abort, queued_after_abort, records_after_abort;
    int state_after_abort;
    int state; /* 0 running, 1 echo complete and disconnected cleanly, 2 failed (why) */
    char why[256];
    char dump[512]; /* cl_dump's snapshot, for a client that did not finish */
    _Atomic int done;
} tcl;

static void cl_note(tcl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cl_note(tcl *c, const char *fmt, ...)
{
    if (c->state == 2) {
        return;
    }
    c->state = 2;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->why, sizeof c->why, fmt, ap);
    va_end(ap);
}

/* Marks @p c failed and aborts it (disconnected follows). */
#define CL_FAIL(c, ...)                                                                        \
    do {                                                                                       \
        if ((c)->state == 0) {                                                                 \
            cl_note((c), __VA_ARGS__);                                                         \
            tern_socket_abort((c)->s);                                                         \
        }                                                                                      \
    } while (0)

static void cl_finish_if_done(tcl *c)
{
    if (c->state == 0 && !c->closing && !c->close_after_write && c->got == c->size &&
        c->sent == c->size && c->n_encrypted == 1) {
        c->closing = true;
        if (c->truncate) {
            /* what an attacker who cuts the connection does: a FIN, no close_notify. The
             * descriptor is tern's; the test borrows it, on the owner thread. */
            if (shutdown(tern_socket_descriptor(c->s), SHUT_WR) != 0) {
                CL_FAIL(c, "shutdown: %s", strerror(errno));
            }
            return;
        }
        int rc = tern_socket_close(c->s);
        if (rc != 0) {
            CL_FAIL(c, "close: %s", tern_err_name(rc));
        }
    }
}

static void cl_pump(tcl *c)
{
    uint8_t chunk[CLIENT_CHUNK];
    while (c->state == 0 && c->may_write && !c->closing && c->sent < c->size) {
        size_t room = tern_socket_write_room(c->s);
        if (room == 0) {
            return; /* bytes_written resumes */
        }
        size_t n = c->size - c->sent;
        n = n < room ? n : room;
        n = n < sizeof chunk ? n : sizeof chunk;
        ts_pattern_fill(chunk, n, c->seed, c->sent);
        int rc = tern_socket_write(c->s, chunk, n);
        if (rc != 0) {
            CL_FAIL(c, "write of %zu at %zu/%zu (room %zu, state %d, mode %d): %s: %s",
                    n, c->sent, c->size, room, (int)tern_socket_state(c->s),
                    (int)tern_socket_mode(c->s), tern_err_name(rc),
                    tern_socket_error_string(c->s));
            return;
        }
        c->sum_sent = ts_checksum(c->sum_sent, chunk, n);
        c->sent += n;
    }
    if (c->state == 0 && c->close_after_write && !c->closing && c->sent == c->size) {
        c->closing = true;
        int rc = tern_socket_close(c->s);
        if (rc != 0) {
            CL_FAIL(c, "close: %s", tern_err_name(rc));
        }
    }
}

/* Takes up to @p max bytes of echo (all when 0) and checks them. */
static void cl_take(tcl *c, size_t max)
{
    size_t taken = 0;
    while (c->state == 0 && (max == 0 || taken < max)) {
        tern_buf v;
        if (tern_socket_peek_view(c->s, &v) != 0) {
            CL_FAIL(c, "peek_view failed");
            return;
        }
        if (v.len == 0) {
            break;
        }
        size_t n = v.len;
        if (max != 0 && n > max - taken) {
            n = max - taken;
        }
        if (c->got + n > c->size) {
            CL_FAIL(c, "%zu bytes back, sent %zu of %zu", c->got + n, c->sent, c->size);
            return;
        }
        size_t bad = ts_pattern_check(v.base, n, c->seed, c->got);
        if (bad != n) {
            CL_FAIL(c, "echo byte %zu of %zu differs", c->got + bad, c->size);
            return;
        }
        c->sum_got = ts_checksum(c->sum_got, v.base, n);
        if (tern_socket_consume(c->s, n) != 0) {
            CL_FAIL(c, "consume failed");
            return;
        }
        c->got += n;
        taken += n;
    }
    cl_finish_if_done(c);
}

static void cl_slow_tick(tern_timer *t, void *user)
{
    (void)t;
    tcl *c = user;
    if (c->s == NULL || c->state != 0 || !tern_socket_is_encrypted(c->s)) {
        return;
    }
    cl_take(c, SLOW_QUANTUM);
}

static void cl_check_not_in_call(tcl *c, const char *ev)
{
    if (c->in_call) {
        CL_FAIL(c, "%s fired inside the call that caused it", ev);
    }
}

static void cl_connected(tern_socket *s, void *user)
{
    tcl *c = user;
    c->n_connected++;
    cl_check_not_in_call(c, "connected");
    if (c->starttls == 1) {
        if (tern_socket_write(s, "STARTTLS\r\n", 10) != 0) {
            CL_FAIL(c, "write STARTTLS failed");
        }
    } else if (c->starttls == 2) {
        /* the handshake starts right behind the line: the server must keep those bytes */
        int rc = tern_socket_write(s, "STARTTLS\r\n", 10);
        if (rc == 0) {
            rc = tern_socket_start_client_encryption(s);
        }
        c->may_write = rc == 0;
        if (rc != 0) {
            CL_FAIL(c, "STARTTLS pipelined: %s", tern_err_name(rc));
            return;
        }
        cl_pump(c); /* queued until `encrypted` */
    } else if (c->early) {
        cl_pump(c);
    }
}

static void cl_mode_changed(tern_socket *s, enum tern_ssl_mode mode, void *user)
{
    tcl *c = user;
    c->n_mode_changed++;
    c->mode = (int)mode;
    cl_check_not_in_call(c, "mode_changed");
    if (mode != TERN_SSL_MODE_CLIENT || tern_socket_mode(s) != TERN_SSL_MODE_CLIENT) {
        CL_FAIL(c, "mode_changed(%d), mode %d", (int)mode, (int)tern_socket_mode(s));
    } else if (tern_socket_is_encrypted(s) && c->n_encrypted == 0) {
        CL_FAIL(c, "encrypted before the `encrypted` event");
    }
}

static void cl_encrypted(tern_socket *s, void *user)
{
    tcl *c = user;
    c->n_encrypted++;
    cl_check_not_in_call(c, "encrypted");
    if (c->n_mode_changed != 1) {
        CL_FAIL(c, "encrypted after %u mode_changed events", c->n_mode_changed);
        return;
    }
    if (!tern_socket_is_encrypted(s) || tern_socket_mode(s) != TERN_SSL_MODE_CLIENT) {
        CL_FAIL(c, "encrypted: is_encrypted %d, mode %d", (int)tern_socket_is_encrypted(s),
                (int)tern_socket_mode(s));
        return;
    }
    c->protocol = tern_socket_session_protocol(s);
    const char *cipher = tern_socket_session_cipher(s);
    snprintf(c->cipher, sizeof c->cipher, "%s", cipher ? cipher : "(null)");
    if (tern_socket_start_client_encryption(s) == TERN_EBUSY &&
        tern_socket_start_server_encryption(s) == TERN_EBUSY) {
        c->n_ebusy_ok++;
    }
    if (c->abort_after > 0) {
        size_t chunk = 1u << 20;
        uint8_t *big = malloc(chunk);
        if (big == NULL) {
            CL_FAIL(c, "out of memory");
            return;
        }
        while (c->sent < c->abort_after) {
            size_t n = c->abort_after - c->sent < chunk ? c->abort_after - c->sent : chunk;
            ts_pattern_fill(big, n, c->seed, c->sent);
            int rc = tern_socket_write(s, big, n);
            if (rc != 0) {
                free(big);
                CL_FAIL(c, "write before abort at %zu: %s", c->sent, tern_err_name(rc));
                return;
            }
            c->sent += n;
        }
        free(big);
        c->queued_before_abort = tern_socket_bytes_to_write(s);
        c->records_before_abort = tern_socket_encrypted_bytes_to_write(s);
        c->in_call = true;
        tern_socket_abort(s);
        c->in_call = false;
        c->queued_after_abort = tern_socket_bytes_to_write(s);
        c->records_after_abort = tern_socket_encrypted_bytes_to_write(s);
        c->state_after_abort = (int)tern_socket_state(s);
        return;
    }
    cl_pump(c);
    cl_take(c, c->slow ? SLOW_QUANTUM : 0);
}

static void cl_ready_read(tern_socket *s, void *user)
{
    tcl *c = user;
    if (c->state != 0) {
        return;
    }
    cl_check_not_in_call(c, "ready_read");
    size_t avail = tern_socket_bytes_available(s);
    c->max_buffered = avail > c->max_buffered ? avail : c->max_buffered;
    if (tern_socket_mode(s) == TERN_SSL_MODE_UNENCRYPTED) {
        if (c->starttls != 1 || c->n_mode_changed != 0) {
            CL_FAIL(c, "plaintext ready_read");
            return;
        }
        char line[16];
        if (!tern_socket_can_read_line(s)) {
            return;
        }
        ssize_t n = tern_socket_read_line(s, line, sizeof line);
        if (n != 4 || strcmp(line, "OK\r\n") != 0) {
            CL_FAIL(c, "STARTTLS answer: %zd bytes", n);
            return;
        }
        c->in_call = true;
        int rc = tern_socket_start_client_encryption(s);
        c->in_call = false;
        if (rc != 0) {
            CL_FAIL(c, "start_client_encryption: %s", tern_err_name(rc));
            return;
        }
        c->may_write = true;
        if (tern_socket_mode(s) == TERN_SSL_MODE_UNENCRYPTED) {
            /* the mode is CLIENT from now on, mode_changed comes later */
            CL_FAIL(c, "mode still UNENCRYPTED after start_client_encryption");
            return;
        }
        if (tern_socket_start_client_encryption(s) != TERN_EBUSY) {
            CL_FAIL(c, "a second start_client_encryption was not refused");
        }
        return;
    }
    if (!tern_socket_is_encrypted(s)) {
        CL_FAIL(c, "ready_read before `encrypted`");
        return;
    }
    if (c->close_after_write || c->abort_after) {
        tern_socket_consume(s, avail); /* not checked: we closed */
        return;
    }
    if (!c->slow) {
        cl_take(c, 0);
    }
}

static void cl_bytes_written(tern_socket *s, size_t n, void *user)
{
    (void)s;
    tcl *c = user;
    if (n == 0) {
        CL_FAIL(c, "bytes_written(0)");
        return;
    }
    cl_pump(c);
}

static void cl_read_finished(tern_socket *s, void *user)
{
    tcl *c = user;
    c->read_finished = true;
    if (!tern_socket_at_end(s)) {
        CL_FAIL(c, "read_finished without at_end");
    } else if (c->truncate) {
        tern_socket_abort(s); /* our side is half gone: no graceful close to wait for */
    }
}

static void cl_error(tern_socket *s, int err, void *user)
{
    (void)s;
    tcl *c = user;
    if (c->first_error == 0) {
        c->first_error = err;
    }
    c->last_error = err;
}

static void cl_disconnected(tern_socket *s, int reason, void *user)
{
    tcl *c = user;
    c->reason = reason;
    if (c->in_call) {
        cl_note(c, "disconnected inside the call that caused it");
    }
    if (c->state == 0) {
        bool echo_done = c->close_after_write ? c->sent == c->size : c->got == c->size;
        if (c->truncate && echo_done && c->closing) {
            c->state = 1; /* how the server took it is what the test checks */
        } else if (reason == 0 && echo_done && c->sent == c->size && c->n_encrypted == 1 &&
            c->abort_after == 0) {
            c->state = 1;
        } else {
            cl_note(c,
                    "disconnected %s (first error %s, last %s), %u encrypted, sent %zu/%zu, "
                    "got %zu: %s",
                    tern_err_name(reason), tern_err_name(c->first_error),
                    tern_err_name(c->last_error), c->n_encrypted, c->sent, c->size, c->got,
                    tern_socket_error_string(s));
        }
    }
    tern_timer_free(c->timer);
    c->timer = NULL;
    tern_socket_free(s);
    c->s = NULL;
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

static const tern_socket_events client_events = {
    .connected = cl_connected,
    .ready_read = cl_ready_read,
    .bytes_written = cl_bytes_written,
    .read_finished = cl_read_finished,
    .error = cl_error,
    .disconnected = cl_disconnected,
    .mode_changed = cl_mode_changed,
    .encrypted = cl_encrypted,
};

static void cl_start(tern_reactor *r, void *arg)
{
    tcl *c = arg;
    if (r == NULL) {
        return; /* the runtime stopped first */
    }
    int rc = 0;
    c->s = tern_socket_new(r);
    if (c->s == NULL) {
        cl_note(c, "tern_socket_new failed");
        goto failed;
    }
    tern_socket_set_events(c->s, &client_events, c);
    tern_socket_set_connect_timeout(c->s, 10000);
    if (c->read_buffer_size) {
        tern_socket_set_read_buffer_size(c->s, c->read_buffer_size);
    }
    if (c->write_buffer_size) {
        tern_socket_set_write_buffer_size(c->s, c->write_buffer_size);
    }
    if (c->sndbuf) {
        tern_socket_set_option(c->s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE, c->sndbuf);
    }
    if (c->rcvbuf) {
        tern_socket_set_option(c->s, TERN_SOCKET_OPTION_RECEIVE_BUFFER_SIZE, c->rcvbuf);
    }
    if (tern_socket_mode(c->s) != TERN_SSL_MODE_UNENCRYPTED || tern_socket_is_encrypted(c->s)) {
        cl_note(c, "a new socket is not UNENCRYPTED");
        goto failed;
    }
    c->may_write = c->starttls == 0;
    c->in_call = true;
    if (c->starttls) {
        if ((rc = tern_socket_set_ssl_config(c->s, c->cfg)) != 0) {
            cl_note(c, "set_ssl_config: %s", tern_err_name(rc));
            goto failed;
        }
        if ((rc = tern_socket_set_peer_verify_name(c->s, c->peer_name ? c->peer_name
                                                                        : "localhost")) != 0) {
            cl_note(c, "set_peer_verify_name: %s", tern_err_name(rc));
            goto failed;
        }
        /* not connected yet: starting a handshake is refused */
        if (tern_socket_start_client_encryption(c->s) != TERN_EBUSY) {
            cl_note(c, "start_client_encryption on an UNCONNECTED socket was not refused");
            goto failed;
        }
        rc = tern_socket_connect_to_host(c->s, "127.0.0.1", c->port);
    } else {
        if (c->cfg != NULL && (rc = tern_socket_set_ssl_config(c->s, c->cfg)) != 0) {
            cl_note(c, "set_ssl_config: %s", tern_err_name(rc));
            goto failed;
        }
        rc = tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1", c->port, c->peer_name);
    }
    if (rc != 0) {
        cl_note(c, "connect: %s", tern_err_name(rc));
        goto failed;
    }
    if (c->early) {
        cl_pump(c); /* queued while connecting and during the handshake */
    }
    c->in_call = false;
    if (c->slow) {
        c->timer = tern_timer_new(r, cl_slow_tick, c);
        if (c->timer == NULL || tern_timer_start(c->timer, 1, 1) != 0) {
            CL_FAIL(c, "timer");
        }
    }
    return;
failed:
    c->in_call = false;
    c->state = 2;
    tern_socket_free(c->s);
    c->s = NULL;
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

/* ---- fixture --------------------------------------------------------------------------- */

#define MAX_CFG 32
#define MAX_SRV 12
#define MAX_FD 8

typedef struct fixture {
    tern_runtime *rt;     /* servers */
    tern_runtime *client; /* tern client sockets */
    bool started, client_started;
    tern_ssl_config *cfgs[MAX_CFG];
    unsigned ncfg;
    tsrv *srv[MAX_SRV];
    unsigned nsrv;
    tcl *clients[64];     /* freed after the client runtime stopped */
    unsigned nclients;
    int fds[MAX_FD];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    for (int i = 0; i < MAX_FD; i++) {
        f->fds[i] = -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < MAX_FD; i++) {
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
        }
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
    for (unsigned i = 0; i < f->nclients; i++) {
        free(f->clients[i]);
    }
    for (unsigned i = 0; i < f->nsrv; i++) {
        free(f->srv[i]);
    }
    for (unsigned i = 0; i < f->ncfg; i++) {
        tern_ssl_config_unref(f->cfgs[i]);
    }
    free(f);
    return 0;
}

static tern_ssl_config *keep_cfg(fixture *f, tern_ssl_config *cfg)
{
    assert_non_null(cfg);
    assert_true(f->ncfg < MAX_CFG);
    f->cfgs[f->ncfg++] = cfg;
    return cfg;
}

#define CFG_OK(cfg, call)                                                                      \
    do {                                                                                       \
        int rc__ = (call);                                                                     \
        if (rc__ != 0) {                                                                       \
            fail_msg("%s: %s (%s)", #call, tern_err_name(rc__),                                \
                     tern_ssl_config_error_string(cfg));                                       \
        }                                                                                      \
    } while (0)

static tern_ssl_config *server_cfg_enc(fixture *f, const char *certfile, const char *keyfile,
                                       enum tern_encoding enc)
{
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(cfg, tern_ssl_config_set_local_certificate_file(cfg, cert(certfile), enc));
    CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert(keyfile), enc, NULL));
    return cfg;
}

static tern_ssl_config *server_cfg(fixture *f, const char *certfile, const char *keyfile)
{
    return server_cfg_enc(f, certfile, keyfile, TERN_ENCODING_PEM);
}

/* A client configuration trusting @p ca (NULL: nothing), with @p mode, protocols
 * @p min..@p max (0: the defaults). */
static tern_ssl_config *client_cfg(fixture *f, const char *ca, enum tern_verify_mode mode,
                                   int min, int max)
{
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    if (ca != NULL) {
        CFG_OK(cfg, tern_ssl_config_add_ca_certificates_file(cfg, cert(ca), TERN_ENCODING_PEM));
    }
    CFG_OK(cfg, tern_ssl_config_set_peer_verify_mode(cfg, mode));
    if (min != 0) {
        CFG_OK(cfg, tern_ssl_config_set_protocol_range(cfg, (enum tern_ssl_protocol)min,
                                                       (enum tern_ssl_protocol)max));
    }
    return cfg;
}

/* A server on the server runtime (created with 2 reactors on first use). */
static tsrv *add_server(fixture *f, tern_ssl_config *cfg, char kind)
{
    if (f->rt == NULL) {
        f->rt = ts_runtime_new(2, 0);
        assert_non_null(f->rt);
    }
    assert_true(f->nsrv < MAX_SRV);
    tsrv *sv = calloc(1, sizeof *sv);
    assert_non_null(sv);
    f->srv[f->nsrv++] = sv;
    sv->cfg = cfg;
    sv->kind = kind;
    sv->srv = tern_server_new(f->rt, cfg, srv_incoming, sv);
    assert_non_null(sv->srv);
    return sv;
}

/* Listens with every server, starts both runtimes. */
static void start(fixture *f)
{
    for (unsigned i = 0; i < f->nsrv; i++) {
        tsrv *sv = f->srv[i];
        if (sv->read_buffer_size != 0) {
            assert_int_equal(tern_server_set_read_buffer_size(sv->srv, sv->read_buffer_size), 0);
        }
        int rc = tern_server_listen(sv->srv, "127.0.0.1", 0);
        if (rc != 0) {
            fail_msg("listen: %s: %s", tern_err_name(rc), tern_server_error_string(sv->srv));
        }
        sv->port = tern_server_port(sv->srv);
        assert_true(sv->port != 0);
    }
    int rc = tern_runtime_start(f->rt);
    if (rc != 0) {
        fail_msg("start: %s: %s", tern_err_name(rc), tern_runtime_error_string(f->rt));
    }
    f->started = true;
    f->client = ts_runtime_new(1, 0);
    assert_non_null(f->client);
    assert_int_equal(tern_runtime_start(f->client), 0);
    f->client_started = true;
}

static tcl *new_client(fixture *f, tern_ssl_config *cfg, const tsrv *sv, size_t size)
{
    assert_true(f->nclients < 64);
    tcl *c = calloc(1, sizeof *c);
    assert_non_null(c);
    f->clients[f->nclients++] = c;
    c->cfg = cfg;
    c->port = sv->port;
    c->peer_name = "localhost";
    c->size = size;
    c->seed = 0x7e57000 + f->nclients;
    c->sum_sent = TS_FNV_INIT;
    c->sum_got = TS_FNV_INIT;
    return c;
}

/* A task: describes a client that did not finish (on its reactor, so without races). */
static void cl_dump(tern_reactor *r, void *arg)
{
    tcl *c = arg;
    if (r == NULL) {
        return;
    }
    if (c->s == NULL) {
        snprintf(c->dump, sizeof c->dump, "no socket; state %d: %s", c->state, c->why);
        return;
    }
    tern_socket *s = c->s;
    snprintf(c->dump, sizeof c->dump,
             "sent %zu/%zu, got %zu; socket state %d mode %d encrypted %d; read buffer %zu, "
             "write queue %zu, records in %zu, records out %zu; events: connected %u "
             "mode_changed %u encrypted %u; errors %s/%s: %s; why: %s",
             c->sent, c->size, c->got, (int)tern_socket_state(s), (int)tern_socket_mode(s),
             (int)tern_socket_is_encrypted(s), tern_socket_bytes_available(s),
             tern_socket_bytes_to_write(s), tern_socket_encrypted_bytes_available(s),
             tern_socket_encrypted_bytes_to_write(s), c->n_connected, c->n_mode_changed,
             c->n_encrypted, tern_err_name(c->first_error), tern_err_name(c->last_error),
             tern_socket_error_string(s), c->why);
}

static bool clients_done(tcl **c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!atomic_load_explicit(&c[i]->done, memory_order_acquire)) {
            return false;
        }
    }
    return true;
}

static void log_servers(const fixture *f)
{
    for (unsigned i = 0; i < f->nsrv; i++) {
        const tsrv *sv = f->srv[i];
        ts_log("server %u (port %u): incoming %llu, encrypted %llu, echoed %llu bytes, max "
               "buffered %llu, write full %llu, read_finished %llu, disconnected %llu (clean "
               "%llu, last reason %s), errors %llu (last %s), violations %llu (line %d)",
               i, sv->port, (unsigned long long)atomic_load(&sv->incoming),
               (unsigned long long)atomic_load(&sv->encrypted),
               (unsigned long long)atomic_load(&sv->bytes_echoed),
               (unsigned long long)atomic_load(&sv->max_buffered),
               (unsigned long long)atomic_load(&sv->write_full),
               (unsigned long long)atomic_load(&sv->read_finished),
               (unsigned long long)atomic_load(&sv->disconnected),
               (unsigned long long)atomic_load(&sv->disc_clean),
               tern_err_name(atomic_load(&sv->last_reason)),
               (unsigned long long)atomic_load(&sv->errors),
               tern_err_name(atomic_load(&sv->last_error)),
               (unsigned long long)atomic_load(&sv->violations),
               atomic_load(&sv->violation_line));
    }
}

/* Runs the clients on the client reactor and waits until every one disconnected. */
static void run_clients(fixture *f, tcl **c, size_t n, unsigned timeout_ms)
{
    tern_reactor *r = tern_runtime_reactor(f->client, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ts_post(r, cl_start, c[i], 5000), 0);
    }
    bool ok;
    TS_WAIT_UNTIL(ok, clients_done(c, n), timeout_ms);
    if (!ok) {
        for (size_t i = 0; i < n; i++) {
            if (!atomic_load_explicit(&c[i]->done, memory_order_acquire)) {
                log_servers(f);
                if (ts_post_wait(r, cl_dump, c[i], 2000) != 0) {
                    snprintf(c[i]->dump, sizeof c[i]->dump, "(the client reactor is stuck)");
                }
                fail_msg("client %zu (port %u) did not finish in %u ms: %s", i, c[i]->port,
                         timeout_ms, c[i]->dump);
            }
        }
    }
}

static void expect_echo(const tcl *c, const char *what)
{
    if (c->state != 1) {
        fail_msg("%s: %s", what, c->why);
    }
    assert_int_equal(c->n_mode_changed, 1);
    assert_int_equal(c->n_encrypted, 1);
    assert_int_equal(c->n_ebusy_ok, 1);
    assert_int_equal(c->mode, TERN_SSL_MODE_CLIENT);
    assert_int_equal(c->reason, 0);
    if (!c->close_after_write) {
        assert_int_equal(c->got, c->size);
        if (c->sum_got != c->sum_sent) {
            fail_msg("%s: checksums differ", what);
        }
    }
}

/* The client failed its handshake with @p code (as the disconnect reason or an error). */
static void expect_tls_failure(const tcl *c, int code, const char *what)
{
    if (c->state == 1 || c->n_encrypted != 0) {
        fail_msg("%s: the handshake succeeded (%s, %s)", what,
                 c->protocol == P13 ? "TLS 1.3" : "TLS 1.2", c->cipher);
    }
    if (c->reason != code && c->first_error != code && c->last_error != code) {
        fail_msg("%s: expected %s, got reason %s, errors %s / %s (%s)", what,
                 tern_err_name(code), tern_err_name(c->reason), tern_err_name(c->first_error),
                 tern_err_name(c->last_error), c->why);
    }
    assert_int_equal(c->got, 0);
}

static void expect_no_violations(const tsrv *sv)
{
    if (atomic_load(&sv->violations) != 0) {
        fail_msg("server contract check failed (test line %d)", atomic_load(&sv->violation_line));
    }
}

/* Waits until @p n connections of the server are gone. */
static void wait_server_disconnects(const tsrv *sv, uint64_t n, unsigned timeout_ms)
{
    if (!ts_wait_u64_ge(&sv->disconnected, n, timeout_ms)) {
        fail_msg("server: %llu of %llu connections ended",
                 (unsigned long long)atomic_load(&sv->disconnected), (unsigned long long)n);
    }
}

/* ---- 1. versions and key types ----------------------------------------------------------- */

static void test_tls__echo_tls13_tls12_rsa_ecdsa(void **state)
{
    fixture *f = *state;
    tsrv *rsa = add_server(f, server_cfg(f, "server-rsa.pem", "server-rsa.key"), 'R');
    tsrv *ec = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    tsrv *der = add_server(
        f, server_cfg_enc(f, "server-ec.der", "server-ec.key.der", TERN_ENCODING_DER), 'E');
    start(f);
    tern_ssl_config *c13 = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P13, P13);
    tern_ssl_config *c12 = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12);
    tern_ssl_config *cdef = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    struct {
        tsrv *sv;
        tern_ssl_config *cfg;
        int want;
        char kind;
        const char *name;
    } cases[] = {
        {rsa, c13, P13, 'R', "RSA TLS 1.3"},   {rsa, c12, P12, 'R', "RSA TLS 1.2"},
        {ec, c13, P13, 'E', "ECDSA TLS 1.3"},  {ec, c12, P12, 'E', "ECDSA TLS 1.2"},
        {der, c13, P13, 'E', "DER TLS 1.3"},   {der, c12, P12, 'E', "DER TLS 1.2"},
        {rsa, cdef, P13, 'R', "RSA default"},  {ec, cdef, P13, 'E', "ECDSA default"},
    };
    const size_t n = sizeof cases / sizeof cases[0];
    tcl *c[sizeof cases / sizeof cases[0]];
    for (size_t i = 0; i < n; i++) {
        c[i] = new_client(f, cases[i].cfg, cases[i].sv, 100000 + i * 7777);
    }
    run_clients(f, c, n, 20000);
    for (size_t i = 0; i < n; i++) {
        expect_echo(c[i], cases[i].name);
        ts_log("%-14s %s %s", cases[i].name, c[i]->protocol == P13 ? "TLSv1.3" : "TLSv1.2",
               c[i]->cipher);
        if (c[i]->protocol != cases[i].want) {
            fail_msg("%s: protocol 0x%04x, expected 0x%04x", cases[i].name,
                     (unsigned)c[i]->protocol, (unsigned)cases[i].want);
        }
        if (!cipher_fits(c[i]->protocol, c[i]->cipher, cases[i].kind)) {
            fail_msg("%s: cipher '%s' does not fit", cases[i].name, c[i]->cipher);
        }
    }
    wait_server_disconnects(rsa, 3, 5000);
    wait_server_disconnects(ec, 3, 5000);
    wait_server_disconnects(der, 2, 5000);
    tsrv *all[] = {rsa, ec, der};
    uint64_t want13[] = {2, 2, 1}, want12[] = {1, 1, 1};
    for (int i = 0; i < 3; i++) {
        expect_no_violations(all[i]);
        uint64_t conns = want13[i] + want12[i];
        assert_int_equal(atomic_load(&all[i]->mode_changed), conns);
        assert_int_equal(atomic_load(&all[i]->encrypted), conns);
        assert_int_equal(atomic_load(&all[i]->ebusy_ok), conns);
        assert_int_equal(atomic_load(&all[i]->tls13), want13[i]);
        assert_int_equal(atomic_load(&all[i]->tls12), want12[i]);
        /* the client closed: close_notify, then the server's end is orderly */
        assert_int_equal(atomic_load(&all[i]->read_finished), conns);
        assert_int_equal(atomic_load(&all[i]->disc_clean), conns);
    }
    tern_stats st = ts_stats(f->rt), cs = ts_stats(f->client);
    assert_int_equal(st.handshakes, n);
    assert_int_equal(st.handshake_failures, 0);
    assert_int_equal(cs.handshakes, n);
    assert_int_equal(cs.handshake_failures, 0);
}

/* ---- 2. writes before `encrypted` -------------------------------------------------------- */

static void test_tls__writes_before_encrypted_arrive_in_order(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    start(f);
    tern_ssl_config *c13 = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P13, P13);
    tern_ssl_config *c12 = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12);
    tcl *c[4];
    const size_t sizes[4] = {1, 300000, 64 * 1024 + 3, 1000000};
    for (int i = 0; i < 4; i++) {
        c[i] = new_client(f, i % 2 ? c12 : c13, sv, sizes[i]);
        c[i]->early = true; /* everything is written before the handshake ends */
    }
    run_clients(f, c, 4, 20000);
    for (int i = 0; i < 4; i++) {
        char what[64];
        snprintf(what, sizeof what, "early writes, %zu bytes", sizes[i]);
        expect_echo(c[i], what);
    }
    wait_server_disconnects(sv, 4, 5000);
    expect_no_violations(sv);
    assert_int_equal(atomic_load(&sv->disc_clean), 4);
    uint64_t total = 0;
    for (int i = 0; i < 4; i++) {
        total += sizes[i];
    }
    assert_int_equal(atomic_load(&sv->bytes_echoed), total);
}

/* ---- 3. volume --------------------------------------------------------------------------- */

static void test_tls__16mib_each_way(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-rsa.pem", "server-rsa.key"), 'R');
    start(f);
    const size_t len = TS_SCALE((size_t)16 << 20, (size_t)4 << 20);
    tcl *c[2];
    c[0] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P13, P13), sv, len);
    c[1] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12), sv, len);
    uint64_t t0 = ts_now_ms();
    run_clients(f, c, 2, 60000);
    ts_log("%zu bytes each way on 2 connections (TLS 1.3, 1.2) in %llu ms", len,
           (unsigned long long)(ts_now_ms() - t0));
    expect_echo(c[0], "16 MiB TLS 1.3");
    expect_echo(c[1], "16 MiB TLS 1.2");
    wait_server_disconnects(sv, 2, 5000);
    expect_no_violations(sv);
    assert_int_equal(atomic_load(&sv->bytes_echoed), 2 * (uint64_t)len);
    assert_int_equal(atomic_load(&sv->disc_clean), 2);
    /* the runtime counts record bytes: more than the plaintext */
    tern_stats st = ts_stats(f->rt);
    assert_true(st.bytes_in > 2 * (uint64_t)len);
    assert_true(st.bytes_out > 2 * (uint64_t)len);
}

static void test_tls__slow_reader_small_buffers_loses_nothing(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    sv->read_buffer_size = 4096;
    sv->write_buffer_size = 16384;
    sv->sndbuf = 16384; /* small kernel buffers: the megabyte cannot hide in them */
    start(f);
    const size_t len = TS_SCALE((size_t)1 << 20, (size_t)256 << 10);
    tcl *c = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0), sv, len);
    c->slow = true;
    c->rcvbuf = 16384;
    c->read_buffer_size = 4096;
    c->write_buffer_size = 32768;
    uint64_t t0 = ts_now_ms();
    run_clients(f, &c, 1, TS_SCALE(15000, 20000));
    ts_log("slow reader: %zu bytes in %llu ms; largest read buffer: client %zu, server %llu",
           len, (unsigned long long)(ts_now_ms() - t0), c->max_buffered,
           (unsigned long long)atomic_load(&sv->max_buffered));
    expect_echo(c, "slow reader");
    wait_server_disconnects(sv, 1, 5000);
    expect_no_violations(sv);
    assert_int_equal(atomic_load(&sv->bytes_echoed), len);
    /* backpressure was exercised: the read buffers filled to their limit (the server's write
     * queue filling too depends on scheduling, so it is only logged) */
    ts_log("server write queue full %llu times", (unsigned long long)atomic_load(&sv->write_full));
    assert_true(c->max_buffered >= 4096);
    assert_true(atomic_load(&sv->max_buffered) >= 4096);
    /* read buffers hold at most their limit plus one TLS record */
    assert_true(c->max_buffered <= 4096 + 16384);
    assert_true(atomic_load(&sv->max_buffered) <= 4096 + 16384);
}

/* ---- 4. close and abort ------------------------------------------------------------------ */

static void test_tls__close_sends_close_notify_after_queued_data(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    start(f);
    tern_ssl_config *cc = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    /* an echo, then close: the server reads the end of the stream, then disconnects cleanly */
    tcl *a = new_client(f, cc, sv, 1000);
    run_clients(f, &a, 1, 10000);
    expect_echo(a, "echo then close");
    wait_server_disconnects(sv, 1, 5000);
    assert_int_equal(atomic_load(&sv->read_finished), 1);
    assert_int_equal(atomic_load(&sv->disc_clean), 1);
    assert_int_equal(atomic_load(&sv->last_reason), 0);

    /* close right behind 1 MiB of writes: every byte is sent before close_notify */
    tcl *b = new_client(f, cc, sv, (size_t)1 << 20);
    b->close_after_write = true;
    b->write_buffer_size = (size_t)2 << 20;
    run_clients(f, &b, 1, 20000);
    expect_echo(b, "write then close");
    wait_server_disconnects(sv, 2, 5000);
    assert_int_equal(atomic_load(&sv->read_finished), 2);
    assert_int_equal(atomic_load(&sv->disc_clean), 2);
    assert_int_equal(atomic_load(&sv->bytes_echoed), 1000 + ((uint64_t)1 << 20));
    expect_no_violations(sv);
}

/* A FIN without close_notify (a truncation attack, or a crashed peer) is not an orderly end
 * of a TLS stream: the server must not report it as one. */
static void test_tls__fin_without_close_notify_is_not_a_clean_end(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    start(f);
    tcl *c[2];
    c[0] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P13, P13), sv, 3000);
    c[1] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12), sv, 3000);
    c[0]->truncate = c[1]->truncate = true;
    run_clients(f, c, 2, 10000);
    if (c[0]->state != 1 || c[1]->state != 1) {
        fail_msg("truncating clients: %s / %s", c[0]->why, c[1]->why);
    }
    wait_server_disconnects(sv, 2, 5000);
    expect_no_violations(sv);
    ts_log("FIN without close_notify: server read_finished %llu, clean ends %llu, last reason %s",
           (unsigned long long)atomic_load(&sv->read_finished),
           (unsigned long long)atomic_load(&sv->disc_clean),
           tern_err_name(atomic_load(&sv->last_reason)));
    if (atomic_load(&sv->disc_clean) != 0) {
        fail_msg("the server reported %llu truncated TLS streams as orderly ends (reason 0)",
                 (unsigned long long)atomic_load(&sv->disc_clean));
    }
}

static void test_tls__abort_drops_queued_data_at_once(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    sv->read_buffer_size = 16384;
    sv->write_buffer_size = 16384;
    start(f);
    /* far more than loopback's socket buffers take: most of it stays queued */
    const size_t big = (size_t)32 << 20;
    tcl *c = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0), sv, big);
    c->abort_after = big;
    c->write_buffer_size = (size_t)64 << 20;
    c->sndbuf = 65536;
    uint64_t t0 = ts_now_ms();
    run_clients(f, &c, 1, 10000);
    uint64_t took = ts_now_ms() - t0;
    assert_int_equal(c->n_encrypted, 1);
    assert_int_equal(c->sent, big);
    if (c->queued_before_abort + c->records_before_abort == 0) {
        fail_msg("nothing was queued before the abort: the test proves nothing");
    }
    if (c->queued_after_abort != 0 || c->records_after_abort != 0) {
        fail_msg("right after abort: bytes_to_write %zu, encrypted_bytes_to_write %zu (before: "
                 "%zu, %zu)",
                 c->queued_after_abort, c->records_after_abort, c->queued_before_abort,
                 c->records_before_abort);
    }
    assert_int_equal(c->state_after_abort, TERN_SOCKET_STATE_UNCONNECTED);
    if (strstr(c->why, "inside the call") != NULL) {
        fail_msg("abort: %s", c->why);
    }
    wait_server_disconnects(sv, 1, 5000);
    uint64_t got = atomic_load(&sv->bytes_echoed);
    ts_log("abort: dropped bytes_to_write %zu, encrypted_bytes_to_write %zu; the server got "
           "%llu of %zu bytes, reason %s, %llu ms",
           c->queued_before_abort, c->records_before_abort, (unsigned long long)got, big,
           tern_err_name(atomic_load(&sv->last_reason)), (unsigned long long)took);
    assert_true(got < big);
    expect_no_violations(sv);
}

/* ---- 5. verification --------------------------------------------------------------------- */

static void test_tls__verification_failures_and_verify_none(void **state)
{
    fixture *f = *state;
    tsrv *good = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    tsrv *wrong = add_server(f, server_cfg(f, "wronghost.pem", "wronghost.key"), 'E');
    tsrv *expired = add_server(f, server_cfg(f, "expired.pem", "expired.key"), 'E');
    tsrv *notyet = add_server(f, server_cfg(f, "notyet.pem", "notyet.key"), 'E');
    tsrv *self = add_server(f, server_cfg(f, "selfsigned.pem", "selfsigned.key"), 'E');
    start(f);
    tern_ssl_config *trust = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    tern_ssl_config *trust12 = client_cfg(f, "ca.pem", TERN_VERIFY_VERIFY_PEER, P12, P12);
    tern_ssl_config *other = client_cfg(f, "other-ca.pem", TERN_VERIFY_AUTO, 0, 0);
    tern_ssl_config *none = client_cfg(f, NULL, TERN_VERIFY_NONE, 0, 0);
    tern_ssl_config *none_other = client_cfg(f, "other-ca.pem", TERN_VERIFY_NONE, 0, 0);
    struct {
        tsrv *sv;
        tern_ssl_config *cfg;
        const char *peer;
        bool ok;
        const char *name;
    } cases[] = {
        {good, trust, "localhost", true, "trusted CA"},
        {good, other, "localhost", false, "unrelated CA"},
        {good, trust, "wrong.example", false, "peer name wrong.example"},
        {good, trust12, "wrong.example", false, "peer name wrong.example, TLS 1.2"},
        {wrong, trust, "localhost", false, "certificate for wrong.example"},
        {expired, trust, "localhost", false, "expired"},
        {notyet, trust, "localhost", false, "not yet valid"},
        {self, trust, "localhost", false, "self-signed"},
        {expired, trust12, "localhost", false, "expired, TLS 1.2"},
        {good, none_other, "localhost", true, "VERIFY_NONE, unrelated CA"},
        {good, none, "wrong.example", true, "VERIFY_NONE, wrong name"},
        {wrong, none, "localhost", true, "VERIFY_NONE, wrong.example cert"},
        {expired, none, "localhost", true, "VERIFY_NONE, expired"},
        {notyet, none, "localhost", true, "VERIFY_NONE, not yet valid"},
        {self, none, "localhost", true, "VERIFY_NONE, self-signed"},
    };
    const size_t n = sizeof cases / sizeof cases[0];
    tcl *c[sizeof cases / sizeof cases[0]];
    uint64_t n_ok = 0;
    for (size_t i = 0; i < n; i++) {
        c[i] = new_client(f, cases[i].cfg, cases[i].sv, 5000);
        c[i]->peer_name = cases[i].peer;
        n_ok += cases[i].ok;
    }
    run_clients(f, c, n, 20000);
    for (size_t i = 0; i < n; i++) {
        if (cases[i].ok) {
            expect_echo(c[i], cases[i].name);
        } else {
            expect_tls_failure(c[i], TERN_E_TLS_VERIFY, cases[i].name);
        }
    }
    for (unsigned i = 0; i < f->nsrv; i++) {
        expect_no_violations(f->srv[i]);
    }
    /* the server saw each failed handshake fail, and completed the others */
    uint64_t n_fail = n - n_ok;
    bool ok;
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).handshake_failures >= n_fail, 5000);
    (void)ok; /* the asserts below say what is missing */
    tern_stats st = ts_stats(f->rt), cs = ts_stats(f->client);
    ts_log("server: %llu handshakes, %llu failures; client: %llu, %llu",
           (unsigned long long)st.handshakes, (unsigned long long)st.handshake_failures,
           (unsigned long long)cs.handshakes, (unsigned long long)cs.handshake_failures);
    assert_int_equal(cs.handshakes, n_ok);
    assert_int_equal(cs.handshake_failures, n_fail);
    if (st.handshake_failures != n_fail || st.handshakes != n_ok) {
        log_servers(f);
        fail_msg("the server counted %llu handshakes and %llu failures; expected %llu and %llu "
                 "(a client that refuses the certificate must fail the handshake for both "
                 "sides)",
                 (unsigned long long)st.handshakes, (unsigned long long)st.handshake_failures,
                 (unsigned long long)n_ok, (unsigned long long)n_fail);
    }
}

static void test_tls__peer_name_defaults_to_the_host(void **state)
{
    fixture *f = *state;
    tsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    tsrv *wrong = add_server(f, server_cfg(f, "wronghost.pem", "wronghost.key"), 'E');
    start(f);
    tern_ssl_config *trust = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    /* NULL peer name: 127.0.0.1 must match the certificate's IP:127.0.0.1 */
    tcl *c[2];
    c[0] = new_client(f, trust, sv, 1000);
    c[0]->peer_name = NULL;
    c[1] = new_client(f, trust, wrong, 1000);
    c[1]->peer_name = NULL;
    run_clients(f, c, 2, 10000);
    expect_echo(c[0], "peer name NULL: IP SAN 127.0.0.1");
    expect_tls_failure(c[1], TERN_E_TLS_VERIFY, "peer name NULL, certificate for wrong.example");
}

/* ---- 6. configuration -------------------------------------------------------------------- */

static void expect_einval(tern_ssl_config *cfg, int rc, const char *call, const char *naming)
{
    const char *why = tern_ssl_config_error_string(cfg);
    if (rc != TERN_EINVAL) {
        fail_msg("%s: %s, expected EINVAL", call, tern_err_name(rc));
    }
    if (why == NULL || why[0] == '\0') {
        fail_msg("%s: EINVAL without an error string", call);
    }
    if (naming != NULL && strstr(why, naming) == NULL) {
        fail_msg("%s: the error string does not name '%s': \"%s\"", call, naming, why);
    }
}

static void test_tls__config_keys_and_certificates(void **state)
{
    fixture *f = *state;
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    assert_string_equal(tern_ssl_config_error_string(cfg), "");
    CFG_OK(cfg, tern_ssl_config_set_local_certificate_file(cfg, cert("server-rsa.pem"),
                                                           TERN_ENCODING_PEM));
    /* encrypted keys: the right passphrase decrypts them (and the key matches the cert) */
    CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert("server-rsa-enc.key"),
                                                     TERN_ENCODING_PEM, "tern-test"));
    CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert("server-rsa-enc-trad.key"),
                                                     TERN_ENCODING_PEM, "tern-test"));
    /* a wrong passphrase is EINVAL with a reason */
    tern_ssl_config *c2 = keep_cfg(f, tern_ssl_config_new());
    expect_einval(c2, tern_ssl_config_set_private_key_file(c2, cert("server-rsa-enc.key"),
                                                           TERN_ENCODING_PEM, "wrong"),
                  "PKCS#8 key, wrong passphrase", NULL);
    expect_einval(c2, tern_ssl_config_set_private_key_file(c2, cert("server-rsa-enc-trad.key"),
                                                           TERN_ENCODING_PEM, "wrong"),
                  "traditional key, wrong passphrase", NULL);
    /* a missing one has its own code (test_tls_files has the rest) */
    assert_int_equal(tern_ssl_config_set_private_key_file(c2, cert("server-rsa-enc.key"),
                                                          TERN_ENCODING_PEM, NULL),
                     TERN_EACCES);
    /* DER certificate and key */
    tern_ssl_config *c3 = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(c3, tern_ssl_config_set_local_certificate_file(c3, cert("server-ec.der"),
                                                          TERN_ENCODING_DER));
    CFG_OK(c3, tern_ssl_config_set_private_key_file(c3, cert("server-ec.key.der"),
                                                    TERN_ENCODING_DER, NULL));
    /* a key that does not match the certificate; a failed setter changes nothing */
    tern_ssl_config *c4 = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(c4, tern_ssl_config_set_local_certificate_file(c4, cert("server-ec.pem"),
                                                          TERN_ENCODING_PEM));
    expect_einval(c4, tern_ssl_config_set_private_key_file(c4, cert("server-rsa.key"),
                                                           TERN_ENCODING_PEM, NULL),
                  "key that does not match the certificate", NULL);
    CFG_OK(c4, tern_ssl_config_set_private_key_file(c4, cert("server-ec.key"),
                                                    TERN_ENCODING_PEM, NULL));
    /* unreadable, and not a certificate */
    expect_einval(c4, tern_ssl_config_set_local_certificate_file(c4, cert("no-such-file.pem"),
                                                                 TERN_ENCODING_PEM),
                  "missing file", "no-such-file.pem");
    expect_einval(c4, tern_ssl_config_set_local_certificate_file(c4, cert("server-ec.key"),
                                                                 TERN_ENCODING_PEM),
                  "a key as a certificate", NULL);
    expect_einval(c4, tern_ssl_config_add_ca_certificates_file(c4, cert("server-ec.key"),
                                                               TERN_ENCODING_PEM),
                  "a key as a CA", NULL);
    /* the certificate is still server-ec.pem: its key still matches */
    CFG_OK(c4, tern_ssl_config_set_private_key_file(c4, cert("server-ec.key"),
                                                    TERN_ENCODING_PEM, NULL));

    /* from memory */
    FILE *fp = fopen(cert("server-ec.pem"), "rb");
    assert_non_null(fp);
    char pem[8192];
    size_t len = fread(pem, 1, sizeof pem, fp);
    fclose(fp);
    tern_ssl_config *c5 = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(c5, tern_ssl_config_set_local_certificate(c5, pem, len, TERN_ENCODING_PEM));
    CFG_OK(c5, tern_ssl_config_add_ca_certificates(c5, pem, len, TERN_ENCODING_PEM));
    expect_einval(c5, tern_ssl_config_set_local_certificate(c5, "garbage", 7, TERN_ENCODING_PEM),
                  "garbage certificate", NULL);
}

static void test_tls__config_ciphers_protocols_and_freeze(void **state)
{
    fixture *f = *state;
    const char *def = tern_ssl_default_ciphers();
    assert_non_null(def);
    assert_true(def[0] != '\0');
    const char *weak_words[] = {"RC4", "DES", "NULL", "ADH", "AECDH", "EXP", "MD5",
                                "TLS13-SHA256-SHA256"};
    for (size_t i = 0; i < sizeof weak_words / sizeof weak_words[0]; i++) {
        if (strstr(def, weak_words[i]) != NULL) {
            fail_msg("the default cipher list names %s: %s", weak_words[i], def);
        }
    }
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    const char *weak[] = {"RC4-SHA", "DES-CBC3-SHA", "NULL-SHA256", "ECDHE-ECDSA-NULL-SHA",
                          "ADH-AES128-SHA", "TLS13-SHA256-SHA256"};
    for (size_t i = 0; i < sizeof weak / sizeof weak[0]; i++) {
        char call[96];
        snprintf(call, sizeof call, "set_ciphers(\"%s\")", weak[i]);
        expect_einval(cfg, tern_ssl_config_set_ciphers(cfg, weak[i]), call, weak[i]);
    }
    expect_einval(cfg,
                  tern_ssl_config_set_ciphers(cfg, "TLS13-AES128-GCM-SHA256:RC4-SHA"),
                  "set_ciphers(good:RC4-SHA)", "RC4-SHA");
    expect_einval(cfg, tern_ssl_config_set_ciphers(cfg, "NO-SUCH-CIPHER"),
                  "set_ciphers(unknown)", "NO-SUCH-CIPHER");
    expect_einval(cfg,
                  tern_ssl_config_set_ciphers(cfg, "ECDHE-RSA-AES128-GCM-SHA256:BOGUS-SUITE"),
                  "set_ciphers(good:unknown)", "BOGUS-SUITE");
    CFG_OK(cfg, tern_ssl_config_set_ciphers(cfg, def));
    CFG_OK(cfg, tern_ssl_config_set_ciphers(
                    cfg, "TLS13-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384"));
    CFG_OK(cfg, tern_ssl_config_set_ciphers(cfg, "TLS_AES_128_GCM_SHA256")); /* IANA name */
    /* PSK devices' CBC suite may be named; other CBC suites may not */
    CFG_OK(cfg, tern_ssl_config_set_ciphers(cfg, "TLS13-AES128-GCM-SHA256:PSK-AES128-CBC-SHA256"));
    expect_einval(cfg, tern_ssl_config_set_ciphers(cfg, "TLS13-AES128-GCM-SHA256:AES128-SHA256"),
                  "set_ciphers(good:AES128-SHA256)", "AES128-SHA256");

    expect_einval(cfg, tern_ssl_config_set_protocol_range(cfg, P13, P12), "range 1.3..1.2",
                  NULL);
    expect_einval(cfg,
                  tern_ssl_config_set_protocol_range(cfg, (enum tern_ssl_protocol)0x0301, P13),
                  "range from TLS 1.0", NULL);
    CFG_OK(cfg, tern_ssl_config_set_protocol_range(cfg, P12, P13));
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(cfg, -1), TERN_EINVAL);
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(cfg, 101), TERN_EINVAL);
    CFG_OK(cfg, tern_ssl_config_set_peer_verify_depth(cfg, 4));

    /* given to a server, the configuration is frozen */
    CFG_OK(cfg, tern_ssl_config_set_local_certificate_file(cfg, cert("server-ec.pem"),
                                                           TERN_ENCODING_PEM));
    CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert("server-ec.key"),
                                                     TERN_ENCODING_PEM, NULL));
    f->rt = ts_runtime_new(1, 0);
    assert_non_null(f->rt);
    tern_server *srv = tern_server_new(f->rt, cfg, srv_incoming, NULL);
    assert_non_null(srv);
    assert_int_equal(tern_ssl_config_set_ciphers(cfg, def), TERN_EBUSY);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, P12, P13), TERN_EBUSY);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, cert("server-ec.pem"),
                                                                TERN_ENCODING_PEM),
                     TERN_EBUSY);
    assert_int_equal(
        tern_ssl_config_set_private_key_file(cfg, cert("server-ec.key"), TERN_ENCODING_PEM, NULL),
        TERN_EBUSY);
    assert_int_equal(
        tern_ssl_config_add_ca_certificates_file(cfg, cert("ca.pem"), TERN_ENCODING_PEM),
        TERN_EBUSY);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), TERN_EBUSY);
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(cfg, 3), TERN_EBUSY);
    assert_int_equal(tern_ssl_config_set_handshake_timeout(cfg, 1000), TERN_EBUSY);

    /* a server without certificate or key cannot start a server handshake: checked when
     * sockets arrive (start_server_encryption says EINVAL), so nothing to do here */
}

/* The suites set are the suites negotiated; a refused list changes nothing. */
static void test_tls__cipher_list_applies(void **state)
{
    fixture *f = *state;
    tern_ssl_config *scfg = server_cfg(f, "server-ec.pem", "server-ec.key");
    CFG_OK(scfg, tern_ssl_config_set_ciphers(
                     scfg, "TLS13-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384"));
    assert_int_equal(tern_ssl_config_set_ciphers(scfg, "TLS13-AES128-GCM-SHA256:RC4-SHA"),
                     TERN_EINVAL);
    tsrv *sv = add_server(f, scfg, 'E');
    start(f);
    tcl *c[2];
    c[0] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P13, P13), sv, 1000);
    c[1] = new_client(f, client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12), sv, 1000);
    run_clients(f, c, 2, 10000);
    expect_echo(c[0], "restricted suites, TLS 1.3");
    expect_echo(c[1], "restricted suites, TLS 1.2");
    if (strstr(c[0]->cipher, "AES256-GCM-SHA384") == NULL &&
        strcmp(c[0]->cipher, "TLS_AES_256_GCM_SHA384") != 0) {
        fail_msg("TLS 1.3 negotiated %s, not AES-256-GCM", c[0]->cipher);
    }
    if (strstr(c[1]->cipher, "ECDHE-ECDSA-AES256-GCM-SHA384") == NULL &&
        strstr(c[1]->cipher, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384") == NULL) {
        fail_msg("TLS 1.2 negotiated %s, not ECDHE-ECDSA-AES256-GCM-SHA384", c[1]->cipher);
    }
    expect_no_violations(sv);
}

/* ---- 7. bad input on the server ---------------------------------------------------------- */

/* Reads and discards until the peer ends the stream or resets it. @return ms from @p t0 to
 * then, or -1 after @p timeout_ms. */
static int64_t wait_closed(int fd, uint64_t t0, unsigned timeout_ms)
{
    uint64_t deadline = ts_now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        uint64_t now = ts_now_ms();
        if (now >= deadline) {
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(deadline - now));
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (r <= 0) {
            continue;
        }
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            return (int64_t)(ts_now_ms() - t0); /* EOF or reset */
        }
    }
}

/* The start of a TLS ClientHello: a record that announces 512 bytes, then a handshake header
 * and the version; the rest never comes. */
static const uint8_t hello_prefix[] = {
    0x16, 0x03, 0x01, 0x02, 0x00,             /* handshake record, 512 bytes */
    0x01, 0x00, 0x01, 0xfc,                   /* ClientHello, 508 bytes */
    0x03, 0x03,                               /* legacy_version TLS 1.2 */
    0x5a, 0x1e, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, /* random ... */
    0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e,
    0x6f, 0x70, 0x81, 0x92, 0xa3, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09, 0x1a, 0x2b, 0x3c,
};

static int raw_connect(fixture *f, uint16_t port)
{
    int fd = ts_connect(port, 5000);
    if (fd < 0) {
        fail_msg("connect: %s", strerror(-fd));
    }
    for (int i = 0; i < MAX_FD; i++) {
        if (f->fds[i] < 0) {
            f->fds[i] = fd;
            return fd;
        }
    }
    close(fd);
    fail_msg("too many raw sockets");
    return -1;
}

static void raw_close(fixture *f, int fd)
{
    for (int i = 0; i < MAX_FD; i++) {
        if (f->fds[i] == fd) {
            f->fds[i] = -1;
        }
    }
    close(fd);
}

static void test_tls__bad_input_and_the_handshake_deadline(void **state)
{
    fixture *f = *state;
    const unsigned hs_ms = TS_SCALE(300, 1000);
    /* a server with the default deadline (10 s): bad input is refused on its own merits */
    tsrv *normal = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    tern_ssl_config *strict_cfg = server_cfg(f, "server-ec.pem", "server-ec.key");
    CFG_OK(strict_cfg, tern_ssl_config_set_handshake_timeout(strict_cfg, hs_ms));
    tsrv *strict = add_server(f, strict_cfg, 'E');
    start(f);

    /* garbage: an HTTP request */
    int fd = raw_connect(f, normal->port);
    uint64_t t0 = ts_now_ms();
    const char *http = "GET / HTTP/1.0\r\n\r\n";
    assert_int_equal(ts_send_all(fd, http, strlen(http), 2000), 0);
    int64_t ms = wait_closed(fd, t0, 5000);
    ts_log("garbage: closed after %lld ms", (long long)ms);
    if (ms < 0) {
        fail_msg("the server kept a connection that sent an HTTP request");
    }
    raw_close(f, fd);

    /* a truncated ClientHello, then EOF */
    fd = raw_connect(f, normal->port);
    t0 = ts_now_ms();
    assert_int_equal(ts_send_all(fd, hello_prefix, sizeof hello_prefix, 2000), 0);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    ms = wait_closed(fd, t0, 5000);
    ts_log("truncated ClientHello + EOF: closed after %lld ms", (long long)ms);
    if (ms < 0) {
        fail_msg("the server kept a connection that ended in the middle of a ClientHello");
    }
    raw_close(f, fd);
    wait_server_disconnects(normal, 2, 5000);

    /* half a ClientHello, then nothing: the handshake deadline closes it */
    fd = raw_connect(f, strict->port);
    t0 = ts_now_ms();
    assert_int_equal(ts_send_all(fd, hello_prefix, sizeof hello_prefix / 2, 2000), 0);
    ms = wait_closed(fd, t0, 5000);
    ts_log("stalled ClientHello: closed after %lld ms (deadline %u ms)", (long long)ms, hs_ms);
    if (ms < 0) {
        fail_msg("a stalled handshake was not closed");
    }
    assert_true(ms >= (int64_t)hs_ms - 50);
    assert_true(ms <= (int64_t)hs_ms + TS_SCALE(500, 2000));
    raw_close(f, fd);

    /* a byte every 100 ms: the deadline is a total, dripping does not extend it */
    fd = raw_connect(f, strict->port);
    t0 = ts_now_ms();
    int64_t closed_ms = -1;
    for (size_t i = 0; i < sizeof hello_prefix && closed_ms < 0; i++) {
        if (send(fd, &hello_prefix[i], 1, MSG_NOSIGNAL) != 1) {
            closed_ms = (int64_t)(ts_now_ms() - t0); /* reset by the server */
            break;
        }
        uint64_t next = ts_now_ms() + 100;
        while (closed_ms < 0 && ts_now_ms() < next) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int64_t left = (int64_t)(next - ts_now_ms());
            if (poll(&p, 1, left > 0 ? (int)left : 0) > 0) {
                char b[256];
                ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                    closed_ms = (int64_t)(ts_now_ms() - t0);
                }
            }
        }
    }
    if (closed_ms < 0) {
        closed_ms = wait_closed(fd, t0, 3000);
    }
    ts_log("dripping ClientHello: closed after %lld ms (deadline %u ms)", (long long)closed_ms,
           hs_ms);
    if (closed_ms < 0) {
        fail_msg("a client dripping a byte every 100 ms kept its handshake open");
    }
    assert_true(closed_ms >= (int64_t)hs_ms - 50);
    assert_true(closed_ms <= (int64_t)hs_ms + TS_SCALE(500, 2000));
    raw_close(f, fd);
    wait_server_disconnects(strict, 2, 5000);
    assert_int_equal(atomic_load(&strict->disc_tls_timeout), 2);

    /* the servers still serve */
    tern_ssl_config *cc = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    tcl *c[2];
    c[0] = new_client(f, cc, normal, 20000);
    c[1] = new_client(f, cc, strict, 20000);
    run_clients(f, c, 2, 10000);
    expect_echo(c[0], "a TLS client after bad input");
    expect_echo(c[1], "a TLS client after stalled handshakes");
    expect_no_violations(normal);
    expect_no_violations(strict);
    tern_stats st = ts_stats(f->rt);
    ts_log("server: %llu handshakes, %llu failures", (unsigned long long)st.handshakes,
           (unsigned long long)st.handshake_failures);
    assert_int_equal(st.handshake_failures, 4);
    assert_int_equal(st.handshakes, 2);
}

/* ---- 8. STARTTLS ------------------------------------------------------------------------- */

static void test_tls__starttls(void **state)
{
    fixture *f = *state;
    tsrv *reply = add_server(f, server_cfg(f, "server-rsa.pem", "server-rsa.key"), 'R');
    reply->starttls = true;
    reply->starttls_reply = true;
    tsrv *pipelined = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"), 'E');
    pipelined->starttls = true;
    start(f);
    tern_ssl_config *cc = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, 0, 0);
    tern_ssl_config *c12 = client_cfg(f, "ca.pem", TERN_VERIFY_AUTO, P12, P12);
    tcl *c[3];
    c[0] = new_client(f, cc, reply, 200000);
    c[0]->starttls = 1;
    c[1] = new_client(f, c12, reply, 200000);
    c[1]->starttls = 1;
    c[2] = new_client(f, cc, pipelined, 200000);
    c[2]->starttls = 2;
    run_clients(f, c, 3, 10000);
    expect_echo(c[0], "STARTTLS, TLS 1.3");
    expect_echo(c[1], "STARTTLS, TLS 1.2");
    expect_echo(c[2], "STARTTLS pipelined with the ClientHello");
    assert_int_equal(c[0]->protocol, P13);
    assert_int_equal(c[1]->protocol, P12);
    wait_server_disconnects(reply, 2, 5000);
    wait_server_disconnects(pipelined, 1, 5000);
    expect_no_violations(reply);
    expect_no_violations(pipelined);
    assert_int_equal(atomic_load(&reply->starttls_lines), 2);
    assert_int_equal(atomic_load(&pipelined->starttls_lines), 1);
    assert_int_equal(atomic_load(&reply->ebusy_ok), 2);
    assert_int_equal(atomic_load(&pipelined->ebusy_ok), 1);
    assert_int_equal(atomic_load(&reply->mode_changed), 2);
    assert_int_equal(atomic_load(&reply->disc_clean), 2);
}

int main(void)
{
    FILE *fp = fopen(cert("ca.pem"), "r");
    if (fp == NULL) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n",
                TERN_TEST_CERTS);
        return 77;
    }
    fclose(fp);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls__echo_tls13_tls12_rsa_ecdsa),
        T(test_tls__writes_before_encrypted_arrive_in_order),
        T(test_tls__16mib_each_way),
        T(test_tls__slow_reader_small_buffers_loses_nothing),
        T(test_tls__close_sends_close_notify_after_queued_data),
        T(test_tls__fin_without_close_notify_is_not_a_clean_end),
        T(test_tls__abort_drops_queued_data_at_once),
        T(test_tls__verification_failures_and_verify_none),
        T(test_tls__peer_name_defaults_to_the_host),
        T(test_tls__config_keys_and_certificates),
        T(test_tls__config_ciphers_protocols_and_freeze),
        T(test_tls__cipher_list_applies),
        T(test_tls__bad_input_and_the_handshake_deadline),
        T(test_tls__starttls),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

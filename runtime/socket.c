/* SPDX-License-Identifier: MIT */
/*
 * The socket: a TCP connection owned by one reactor. It knows bytes, states and events; a
 * layer (ssl/'s TLS) may transform the stream through the ops table of seam.h, whose
 * functions are in socket_seam.c. Connecting is in socket_connect.c; options,
 * introspection and the blocking helpers in socket_options.c.
 *
 * Invariants:
 * - Everything here runs on the owner reactor's thread.
 * - libev callbacks (I/O, timer) only move bytes and record what happened (pending flags,
 *   state changes); user callbacks run from one place, `deliver`, a deferred call. So no
 *   user callback ever runs inside the API call that caused it, and re-entrancy has one
 *   shape: close/abort/free inside a callback set flags that `deliver` honours.
 * - An idle socket holds no buffer chunk: reads land in chunks from the reactor's pool that
 *   go back as soon as the application has read them.
 * - The watched events follow the state: READ while the read buffer is under its limit
 *   (backpressure), WRITE while bytes are queued or a connect is in progress.
 * - A layered socket receives into `inbuf` and the layer turns it into `rbuf`; the layer
 *   writes its records into `wbuf`. Everything about the layer's protocol (messages,
 *   counters of its own, what its deadline means) stays in the layer.
 */
#include "rt.h"
#include "server.h"
#include "socket_impl.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define DEFAULT_READ_LIMIT (256 * 1024)
#define DEFAULT_WRITE_LIMIT (4 * 1024 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 30000
#define CLOSE_LINGER_MS 5000
#define READS_PER_WAKE 4
#define WRITEV_MAX 16

static void deliver(tern__deferred *d);
static void on_io(struct ev_loop *loop, ev_io *w, int revents);
static void on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void finish(tern_socket *s, int reason);

void tern__socket_seterr(tern_socket *s, int err, const char *fmt, ...)
{
    va_list ap;
    s->err = err;
    if (s->errstr == NULL && (s->errstr = malloc(TERN__ERRSTR)) == NULL) {
        return; /* tern_socket_error_string falls back on the code's text */
    }
    va_start(ap, fmt);
    vsnprintf(s->errstr, TERN__ERRSTR, fmt, ap);
    va_end(ap);
}

static void schedule(tern_socket *s)
{
    tern__reactor_defer(s->r, &s->deferred);
}

void tern__socket_schedule(tern_socket *s)
{
    schedule(s);
}

#define INPUT_CAP (64 * 1024) /* raw input buffered before the layer takes it, at most */

static void set_state(tern_socket *s, enum tern_socket_state st)
{
    if (s->state == st) {
        return;
    }
    s->state = st;
    if (s->ev != NULL && s->ev->state_changed != NULL && s->nstates < sizeof(s->states)) {
        s->states[s->nstates++] = (uint8_t)st;
        schedule(s);
    }
}

/* @slab: from the reactor's slab (runtime/slab.c): the long-lived part of an idle connection
 * packed apart from the memory its handshake and buffers come and go in, so that what they
 * free can go back to the kernel (a hibernated connection keeps little else; a gateway's
 * backend socket, made after the device's handshake, would otherwise sit in its hole). The
 * reactor outlives its sockets (release clears their buffers into its pool already). */
static tern_socket *socket_alloc(tern_reactor *r, size_t size, bool slab)
{
    tern_socket *s = slab ? tern__slab_alloc(&r->slab, size) : malloc(size);
    if (s == NULL) {
        return NULL;
    }
    memset(s, 0, size);
    s->from_slab = slab;
    s->r = r;
    s->fd = -1;
    s->state = TERN_SOCKET_STATE_UNCONNECTED;
    s->read_limit = DEFAULT_READ_LIMIT;
    s->write_limit = DEFAULT_WRITE_LIMIT;
    s->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    s->nodelay = 1;
    s->deferred.fn = deliver;
    tern__list_init(&s->link);
    ev_init(&s->io, on_io);
    ev_init(&s->timer, on_timer);
    return s;
}

/* @p accepted: the descriptor came from a listener, which set TCP_NODELAY for it (Linux
 * copies it to accepted sockets): one system call less per connection. */
static void apply_options(tern_socket *s, bool accepted)
{
    int v = s->nodelay;
    if (!accepted || !v) {
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
    }
    if (s->keepalive) {
        v = 1;
        setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v));
    }
    if (s->sndbuf > 0) {
        setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &s->sndbuf, sizeof(s->sndbuf));
    }
    if (s->rcvbuf > 0) {
        setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &s->rcvbuf, sizeof(s->rcvbuf));
    }
    if (s->tos > 0) {
        tern__socket_set_tos(s->fd, s->tos - 1);
    }
}

/* ---- watching and timers ---------------------------------------------------------------------- */

static void update_watch(tern_socket *s)
{
    int want = 0;

    if (s->fd < 0) {
        return;
    }
    if (s->state == TERN_SOCKET_STATE_CONNECTING) {
        want = EV_WRITE;
    } else if (s->state == TERN_SOCKET_STATE_CONNECTED || s->state == TERN_SOCKET_STATE_CLOSING) {
        bool room = (s->read_limit == 0 || s->rbuf.len < s->read_limit) &&
                    (!s->layered || s->inbuf.len < INPUT_CAP);
        if (!s->peer_eof && (room || s->state == TERN_SOCKET_STATE_CLOSING)) {
            want |= EV_READ;
        }
        if (s->wbuf.len > 0) {
            want |= EV_WRITE;
        }
    }
    if (want == (int)s->watching) {
        return;
    }
    ev_io_stop(s->r->loop, &s->io);
    if (want != 0) {
        ev_io_set(&s->io, s->fd, want);
        ev_io_start(s->r->loop, &s->io);
    }
    s->watching = (unsigned)want & 3u;
}

static void rearm(tern_socket *s)
{
    uint64_t now = tern_reactor_now_ms(s->r), next = UINT32_MAX, idle = now - s->last_io_ms;

    if (s->state != TERN_SOCKET_STATE_CONNECTED) {
        return;
    }
    if (s->idle_timeout_ms != 0) {
        next = idle < s->idle_timeout_ms ? s->idle_timeout_ms - idle : 1;
    }
    if (s->hibernate_after_ms != 0 && !s->hib_tried) {
        uint64_t left = idle < s->hibernate_after_ms ? s->hibernate_after_ms - idle : 1;
        next = left < next ? left : next;
    }
    if (s->deadline_ms != 0) {
        uint64_t left = s->deadline_ms > now ? s->deadline_ms - now : 1;
        next = left < next ? left : next;
    }
    if (next != UINT32_MAX) {
        arm_timer(s, (uint32_t)next);
    }
}

void tern__socket_rearm(tern_socket *s)
{
    rearm(s);
}

/* Nothing for the layer to keep awake for on the socket's side: no bytes either way, no
 * event pending, no end begun. */
static bool quiet(const tern_socket *s)
{
    return s->layered && s->layer != NULL && s->rbuf.len == 0 && s->inbuf.len == 0 &&
           s->wbuf.len == 0 && !s->peer_eof && !s->shut_wr_requested && !s->layer_end &&
           s->in_callback == 0 && s->holds == 0 && !s->deferred.queued && !s->free_requested;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    tern_socket *s = container_of(w, tern_socket, timer);

    switch (s->state) {
    case TERN_SOCKET_STATE_HOST_LOOKUP:
    case TERN_SOCKET_STATE_CONNECTING:
        if (s->state == TERN_SOCKET_STATE_CONNECTING && tern__socket_try_next(s, TERN_ETIMEDOUT)) {
            break; /* this address's share of the time is up: the next one */
        }
        tern__count(&s->r->counters.timeouts_connect, 1);
        tern__socket_seterr(s, TERN_ETIMEDOUT, "connect: no answer within %u ms",
                            s->connect_timeout_ms);
        finish(s, TERN_ETIMEDOUT);
        break;
    case TERN_SOCKET_STATE_CONNECTED: {
        /* lazy idle timer: I/O only updates last_io_ms; re-arm for what is left */
        uint64_t now = tern_reactor_now_ms(s->r), idle = now - s->last_io_ms;
        if (s->deadline_ms != 0 && now + 1 >= s->deadline_ms) {
            s->deadline_ms = 0;
            s->layer_ops->expired(s); /* the layer says why and ends the socket */
            break;
        }
        if (s->idle_timeout_ms != 0 && idle + 1 >= s->idle_timeout_ms) {
            tern__count(&s->r->counters.timeouts_idle, 1);
            tern__socket_seterr(s, TERN_E_IDLE_TIMEOUT, "idle for %u ms", s->idle_timeout_ms);
            finish(s, TERN_E_IDLE_TIMEOUT);
            break;
        }
        if (s->hibernate_after_ms != 0 && !s->hib_tried && idle + 1 >= s->hibernate_after_ms) {
            s->hib_tried = 1; /* once per idle period: the next I/O starts another (touch) */
            if (quiet(s) && s->layer_ops->hibernate(s)) {
                tern__reactor_released(s->r);
            }
        }
        rearm(s);
        break;
    }
    case TERN_SOCKET_STATE_CLOSING:
        if (s->wbuf.len > 0) {
            tern__socket_seterr(s, TERN_ETIMEDOUT, "close: the peer did not read for %d ms",
                                CLOSE_LINGER_MS);
            finish(s, TERN_ETIMEDOUT);
        } else {
            finish(s, 0); /* our FIN went out; the peer did not end in time: enough */
        }
        break;
    default:
        break;
    }
}

/* ---- ending --------------------------------------------------------------------------------- */

static void cancel_resolve(tern_socket *s)
{
    if (s->resolve != NULL) {
        s->resolve->s = NULL; /* the worker's answer will only free it */
        s->resolve = NULL;
    }
}

/* Closes the descriptor and queues `disconnected` (and `error` when reason < 0). */
static void finish(tern_socket *s, int reason)
{
    if (s->state == TERN_SOCKET_STATE_UNCONNECTED) {
        return;
    }
    bool had_fd = s->fd >= 0;
    if (had_fd && reason < 0 && s->layered && s->wbuf.len > 0) {
        /* the layer's last words (a TLS alert) wait in wbuf: a peer must learn why it was
         * refused */
        const tern__chunk *c = s->wbuf.head;
        (void)!send(s->fd, c->data + c->start, c->end - c->start, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    cancel_resolve(s);
    ev_io_stop(s->r->loop, &s->io);
    ev_timer_stop(s->r->loop, &s->timer);
    s->watching = 0;
    if (had_fd) {
        close(s->fd);
        s->fd = -1;
    }
    tern__bufq_clear(s->r, &s->wbuf);
    if (s->layered) {
        s->layer_ops->ended(s); /* what it holds back never goes out now */
    }
    s->layer_plain = 0;
    if (reason < 0) {
        s->err = reason;
        s->pending_error = 1;
        tern__count(&s->r->counters.resets, 1);
    }
    s->disconnect_reason = reason;
    s->pending_disconnected = 1;
    set_state(s, TERN_SOCKET_STATE_UNCONNECTED);
    if (!tern__list_empty(&s->link)) {
        tern__list_remove(&s->link);
        tern__count(&s->r->counters.closed, 1);
        tern__count(&s->r->counters.open, (uint64_t)-1);
        if (s->srv != NULL) {
            tern__server_free_fd(s->srv, s->r->index);
        }
        tern__reactor_socket_closed(s->r);
    }
    schedule(s);
}

static void fail_errno(tern_socket *s, const char *what, int err)
{
    char peer[64] = "";
    tern_socket_peer_address(s, peer, sizeof(peer));
    tern__socket_seterr(s, err, "%s%s%s: %s", what, peer[0] ? " " : "", peer, tern_strerror(err));
    finish(s, err);
}

void tern__socket_fail(tern_socket *s, int reason)
{
    finish(s, reason);
}

static void release(tern_socket *s)
{
    if (s->layer_ops != NULL) {
        s->layer_ops->free(s);
    }
    tern__bufq_clear(s->r, &s->rbuf);
    tern__bufq_clear(s->r, &s->wbuf);
    tern__bufq_clear(s->r, &s->inbuf);
    free(s->addrs);
    free(s->errstr);
    if (s->from_slab) {
        tern__slab_free(&s->r->slab, s);
    } else {
        free(s);
    }
}

/* ---- moving bytes --------------------------------------------------------------------------- */

static void do_write(tern_socket *s)
{
    while (s->wbuf.len > 0) {
        struct iovec iov[WRITEV_MAX];
        int n = 0;
        for (tern__chunk *c = s->wbuf.head; c != NULL && n < WRITEV_MAX; c = c->next) {
            iov[n].iov_base = c->data + c->start;
            iov[n].iov_len = c->end - c->start;
            n++;
        }
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            fail_errno(s, "send", tern__errno());
            return;
        }
        tern__bufq_consume(s->r, &s->wbuf, (size_t)w);
        tern__count(&s->r->counters.bytes_out, (uint64_t)w);
        if (s->layered) {
            s->unreported_raw += (size_t)w;
            if (s->wbuf.len == 0) {
                /* every record out: the plaintext they carried is written */
                s->unreported_written += s->layer_plain;
                s->layer_plain = 0;
            }
        } else {
            s->unreported_written += (size_t)w;
        }
        touch(s);
        if (s->state == TERN_SOCKET_STATE_CLOSING) {
            arm_timer(s, CLOSE_LINGER_MS); /* progress: the peer reads */
        }
    }
    if ((s->unreported_written > 0 || s->unreported_raw > 0) && s->ev != NULL &&
        (s->ev->bytes_written != NULL || s->ev->encrypted_bytes_written != NULL)) {
        schedule(s);
    }
    /* FIN once everything is out; layered, only after the layer's own end (TLS: our
     * close_notify), or when closing a handshake that never completed */
    if (s->wbuf.len == 0 && s->shut_wr_requested && !s->shut_wr_done &&
        (!s->layered || s->layer_end || s->state == TERN_SOCKET_STATE_CLOSING)) {
        shutdown(s->fd, SHUT_WR);
        s->shut_wr_done = 1;
    }
    if (s->state == TERN_SOCKET_STATE_CLOSING && s->wbuf.len == 0 && s->shut_wr_done &&
        s->peer_eof) {
        finish(s, 0); /* both FINs are out: nothing left to wait for */
        return;
    }
    update_watch(s);
}

#define READV_CHUNKS 4

/* One readv into the tail chunk's free space and up to READV_CHUNKS fresh chunks (at most
 * @room bytes): bulk transfers take one syscall per 64 KiB instead of one per chunk. Fresh
 * chunks that got nothing go straight back to the pool. While CLOSING nothing is kept. */
static ssize_t read_into(tern_socket *s, tern__bufq *q, size_t room, size_t *asked)
{
    struct iovec iov[READV_CHUNKS + 1];
    tern__chunk *fresh[READV_CHUNKS];
    tern__chunk *tail = q->tail;
    int ni = 0, nf = 0;
    size_t total = 0;
    bool keep = s->state != TERN_SOCKET_STATE_CLOSING;

    if (tail != NULL && tail->end < TERN__CHUNK_SIZE) {
        size_t n = TERN__CHUNK_SIZE - tail->end;
        iov[ni].iov_base = tail->data + tail->end;
        iov[ni++].iov_len = n < room ? n : room;
        total += iov[ni - 1].iov_len;
    } else {
        tail = NULL;
    }
    while (total < room && nf < READV_CHUNKS) {
        tern__chunk *c = tern__chunk_get(s->r);
        if (c == NULL) {
            break;
        }
        size_t n = room - total < TERN__CHUNK_SIZE ? room - total : TERN__CHUNK_SIZE;
        fresh[nf++] = c;
        iov[ni].iov_base = c->data;
        iov[ni++].iov_len = n;
        total += n;
    }
    *asked = total;
    if (ni == 0) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t got = readv(s->fd, iov, ni);
    size_t left = got > 0 && keep ? (size_t)got : 0;
    int k = 0;
    if (tail != NULL) {
        size_t take = left < iov[0].iov_len ? left : iov[0].iov_len;
        tail->end += (uint32_t)take;
        q->len += take;
        left -= take;
        k = 1;
    }
    for (int f = 0; f < nf; f++, k++) {
        size_t take = left < iov[k].iov_len ? left : iov[k].iov_len;
        if (take == 0) {
            tern__chunk_put(s->r, fresh[f]);
            continue;
        }
        fresh[f]->end = (uint32_t)take;
        if (q->tail == NULL) {
            q->head = fresh[f];
        } else {
            q->tail->next = fresh[f];
        }
        q->tail = fresh[f];
        q->len += take;
        left -= take;
    }
    return got;
}

static void do_read(tern_socket *s)
{
    tern__bufq *q = s->layered ? &s->inbuf : &s->rbuf;

    for (int i = 0; i < READS_PER_WAKE; i++) {
        size_t room = (size_t)READV_CHUNKS * TERN__CHUNK_SIZE;
        if (s->layered) {
            if (s->inbuf.len >= INPUT_CAP || (s->read_limit > 0 && s->rbuf.len >= s->read_limit)) {
                break;
            }
            room = INPUT_CAP - s->inbuf.len;
        } else if (s->state == TERN_SOCKET_STATE_CONNECTED && s->read_limit > 0) {
            if (s->rbuf.len >= s->read_limit) {
                break;
            }
            if (s->read_limit - s->rbuf.len < room) {
                room = s->read_limit - s->rbuf.len;
            }
        }
        size_t want;
        ssize_t n = read_into(s, q, room, &want);
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            if (n < 0 && e == EINTR) {
                continue;
            }
            if (n < 0 && e == EAGAIN) {
                break;
            }
            if (n < 0) {
                errno = e;
                fail_errno(s, "recv", tern__errno());
                return;
            }
            /* end of the peer's stream: orderly for TCP; layered, only after the layer's own
             * end (TLS: close_notify, tern__socket_end_of_stream) */
            s->peer_eof = 1;
            if (!s->layered) {
                s->eof_clean = 1;
            }
            if (s->state == TERN_SOCKET_STATE_CLOSING) {
                if (s->wbuf.len == 0) {
                    finish(s, 0);
                    return;
                }
            } else {
                s->pending_ready_read = 1; /* let the app see at_end */
                schedule(s);
            }
            break;
        }
        touch(s);
        tern__count(&s->r->counters.bytes_in, (uint64_t)n);
        if (q == &s->rbuf && s->state != TERN_SOCKET_STATE_CLOSING) {
            s->pending_ready_read = 1;
            schedule(s);
        }
        if ((size_t)n < want) {
            break; /* the kernel had no more */
        }
    }
    if (s->layered && s->state == TERN_SOCKET_STATE_CONNECTED) {
        s->layer_ops->input(s);
        if (s->state == TERN_SOCKET_STATE_UNCONNECTED) {
            return;
        }
        do_write(s); /* the layer's own records (TLS: handshake messages, alerts, key updates) */
        return;
    }
    update_watch(s);
}

void tern__socket_flush(tern_socket *s)
{
    if (s->fd >= 0 && s->state != TERN_SOCKET_STATE_UNCONNECTED) {
        do_write(s);
    }
}

static void connected(tern_socket *s)
{
    set_state(s, TERN_SOCKET_STATE_CONNECTED);
    tern__count(&s->r->counters.outgoing, 1);
    s->pending_connected = 1;
    schedule(s);
    touch(s);
    arm_timer(s, idle_first_ms(s));
    if (s->layered) {
        s->layer_ops->connected(s); /* starts the layer (a TLS client handshake) */
        return;
    }
    do_write(s); /* what was written while connecting */
}

void tern__socket_set_state(tern_socket *s, enum tern_socket_state st)
{
    set_state(s, st);
}

void tern__socket_update_watch(tern_socket *s)
{
    update_watch(s);
}

void tern__socket_apply_options(tern_socket *s, bool accepted)
{
    apply_options(s, accepted);
}

void tern__socket_connected(tern_socket *s)
{
    connected(s);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    tern_socket *s = container_of(w, tern_socket, io);

    if (s->state == TERN_SOCKET_STATE_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
            err = errno;
        }
        if (err != 0) {
            if (tern__socket_try_next(s, -err)) {
                return; /* the next address of the name */
            }
            fail_errno(s, "connect", -err);
            return;
        }
        connected(s);
        return;
    }
    if ((revents & EV_WRITE) && s->fd >= 0) {
        do_write(s);
    }
    if ((revents & EV_READ) && s->fd >= 0) {
        do_read(s);
    }
}

/* ---- delivering events ------------------------------------------------------------------------ */

static void deliver(tern__deferred *d)
{
    tern_socket *s = container_of(d, tern_socket, deferred);

    if (s->free_requested && s->in_callback == 0 && s->holds == 0) {
        release(s);
        return;
    }
    s->in_callback++;
    while (s->state_head < s->nstates && !s->free_requested) {
        enum tern_socket_state st = s->states[s->state_head++];
        if (s->ev != NULL && s->ev->state_changed != NULL) {
            s->ev->state_changed(s, st, s->user);
        }
    }
    s->state_head = s->nstates = 0;
    if (s->pending_connected && !s->free_requested) {
        s->pending_connected = 0;
        if (s->ev != NULL && s->ev->connected != NULL) {
            s->ev->connected(s, s->user);
        }
    }
    if (s->layered && !s->free_requested) {
        s->layer_ops->deliver(s); /* the layer's events (TLS: mode, verification, encrypted) */
    }
    if (s->pending_ready_read && !s->free_requested) {
        s->pending_ready_read = 0;
        if (s->rbuf.len > 0 && s->ev != NULL && s->ev->ready_read != NULL) {
            s->ev->ready_read(s, s->user);
        }
    }
    if (s->unreported_raw > 0 && !s->free_requested) {
        size_t n = s->unreported_raw;
        s->unreported_raw = 0;
        if (s->ev != NULL && s->ev->encrypted_bytes_written != NULL) {
            s->ev->encrypted_bytes_written(s, n, s->user);
        }
    }
    if (s->unreported_written > 0 && !s->free_requested) {
        size_t n = s->unreported_written;
        s->unreported_written = 0;
        if (s->ev != NULL && s->ev->bytes_written != NULL) {
            s->ev->bytes_written(s, n, s->user);
        }
    }
    if (s->peer_eof && s->rbuf.len == 0 && !s->read_finished_sent && !s->free_requested &&
        s->state != TERN_SOCKET_STATE_CLOSING) {
        s->read_finished_sent = 1;
        if (s->ev != NULL && s->ev->read_finished != NULL) {
            s->ev->read_finished(s, s->user);
        }
    }
    if (s->pending_error && !s->free_requested) {
        s->pending_error = 0;
        if (s->ev != NULL && s->ev->error != NULL) {
            s->ev->error(s, s->err, s->user);
        }
    }
    if (s->pending_disconnected && !s->free_requested) {
        s->pending_disconnected = 0;
        if (s->ev != NULL && s->ev->disconnected != NULL) {
            s->ev->disconnected(s, s->disconnect_reason, s->user);
        }
        if (s->owned_by_runtime && s->state == TERN_SOCKET_STATE_UNCONNECTED) {
            s->free_requested = 1;
        }
    }
    s->in_callback--;
    if (s->free_requested) {
        if (s->in_callback == 0 && !s->deferred.queued && s->holds == 0) {
            release(s);
        }
        return;
    }
    /* after the peer's FIN and the last byte read: close, unless half-close is wanted and
     * our own direction is still open */
    if (s->state == TERN_SOCKET_STATE_CONNECTED && s->peer_eof && s->rbuf.len == 0 &&
        (!s->half_close || !s->eof_clean || (s->shut_wr_done && s->wbuf.len == 0))) {
        /* a layer may see a bare FIN as a truncation (RFC 8446 6.1), not an orderly end */
        if (s->eof_clean || !s->layered || !s->layer_ops->truncated(s)) {
            tern_socket_close(s);
        }
    }
}

/* ---- creating ---------------------------------------------------------------------------------- */

tern_socket *tern_socket_new(tern_reactor *r)
{
    TERN_ASSERT_OWNER(r);
    if (r == NULL) {
        return NULL;
    }
    return socket_alloc(r, sizeof(struct client_socket), true);
}

int tern__socket_adopt(tern_reactor *r, const struct tern__handoff *h)
{
    tern_server *srv = h->srv;
    tern_socket *s = socket_alloc(r, sizeof(*s), true);
    if (s == NULL) {
        return TERN_ENOMEM;
    }
    s->fd = h->fd;
    s->srv = srv;
    s->owned_by_runtime = 1;
    s->state = TERN_SOCKET_STATE_CONNECTED;
    s->read_limit = srv->read_buffer_size;
    s->idle_timeout_ms = srv->idle_timeout_ms;
    s->hibernate_after_ms = srv->hibernate_after_ms;
    apply_options(s, true);
    attach(s);
    tern__count(&r->counters.accepted, 1);
    touch(s);
    arm_timer(s, idle_first_ms(s));

    /* the accept's peer address answers tern_socket_peer_address during `incoming` (where
     * programs ask for it: logs, limits by source), kept by the reactor, not the socket */
    r->accepted = s;
    r->accepted_from = h;
    s->in_callback++;
    srv->incoming(srv, s, srv->user);
    s->in_callback--;
    r->accepted = NULL;
    if (s->ev == NULL && s->state == TERN_SOCKET_STATE_CONNECTED) {
        tern__socket_seterr(s, TERN_EINVAL, "incoming: no events were set");
        finish(s, 0);
    }
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED) {
        update_watch(s);
    }
    return 0;
}

void tern_socket_free(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || s->owned_by_runtime) {
        return;
    }
    s->ev = NULL; /* no events after free */
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED) {
        finish(s, 0);
    }
    s->free_requested = 1;
    if (s->in_callback == 0 && !s->deferred.queued && s->holds == 0) {
        release(s);
    }
    /* else: deliver() releases it once the callback stack unwinds */
}

/* ---- reading ------------------------------------------------------------------------------------ */

static void after_read(tern_socket *s)
{
    if (s->layered && s->state == TERN_SOCKET_STATE_CONNECTED) {
        /* room again: the layer goes on with what waited (in inbuf, or inside the layer) */
        s->layer_ops->input(s);
        if (s->state == TERN_SOCKET_STATE_UNCONNECTED) {
            return;
        }
    }
    update_watch(s); /* below the limit again: resume reading */
    if (s->peer_eof && s->rbuf.len == 0 && !s->read_finished_sent) {
        schedule(s); /* read_finished, then the close */
    }
}

ssize_t tern_socket_read(tern_socket *s, void *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    if (buf == NULL && len > 0) {
        return TERN_EINVAL;
    }
    size_t n = tern__bufq_peek(&s->rbuf, buf, len);
    if (n > 0) {
        tern__bufq_consume(s->r, &s->rbuf, n);
        after_read(s);
    }
    return (ssize_t)n;
}

ssize_t tern_socket_peek(tern_socket *s, void *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    if (buf == NULL && len > 0) {
        return TERN_EINVAL;
    }
    return (ssize_t)tern__bufq_peek(&s->rbuf, buf, len);
}

int tern_socket_peek_view(tern_socket *s, tern_buf *out)
{
    TERN_ASSERT_OWNER(s);
    const tern__chunk *c = s->rbuf.head;
    out->base = c != NULL ? c->data + c->start : NULL;
    out->len = c != NULL ? c->end - c->start : 0;
    return 0;
}

int tern_socket_consume(tern_socket *s, size_t n)
{
    TERN_ASSERT_OWNER(s);
    if (n > s->rbuf.len) {
        return TERN_EINVAL;
    }
    if (n > 0) {
        tern__bufq_consume(s->r, &s->rbuf, n);
        after_read(s);
    }
    return 0;
}

ssize_t tern_socket_read_line(tern_socket *s, char *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    if (buf == NULL || len < 2) {
        return TERN_EINVAL;
    }
    size_t n = tern__bufq_line_len(&s->rbuf);
    if (n == 0) {
        if (s->rbuf.len < len - 1 && !s->peer_eof) {
            buf[0] = '\0';
            return 0;
        }
        n = s->rbuf.len; /* a line longer than buf, or the last line before the end */
    }
    if (n > len - 1) {
        n = len - 1;
    }
    n = tern__bufq_peek(&s->rbuf, buf, n);
    buf[n] = '\0';
    if (n > 0) {
        tern__bufq_consume(s->r, &s->rbuf, n);
        after_read(s);
    }
    return (ssize_t)n;
}

bool tern_socket_can_read_line(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__bufq_line_len(&s->rbuf) > 0;
}

bool tern_socket_at_end(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->peer_eof && s->rbuf.len == 0;
}

size_t tern_socket_bytes_available(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->rbuf.len;
}

size_t tern_socket_bytes_to_write(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    /* plaintext, as QSslSocket::bytesToWrite: held back by the layer (its handshake), or
     * in records that are not all sent yet */
    if (s->layered) {
        return s->layer_ops->held(s) + s->layer_plain;
    }
    return s->wbuf.len;
}

/* ---- writing ------------------------------------------------------------------------------------ */

int tern_socket_write(tern_socket *s, const void *data, size_t len)
{
    TERN_ASSERT_OWNER(s);
    const char *p = data;

    if (data == NULL && len > 0) {
        return TERN_EINVAL;
    }
    switch (s->state) {
    case TERN_SOCKET_STATE_HOST_LOOKUP:
    case TERN_SOCKET_STATE_CONNECTING:
    case TERN_SOCKET_STATE_CONNECTED:
        break;
    default:
        return TERN_ENOTCONN;
    }
    if (s->shut_wr_requested) {
        return TERN_ENOTCONN;
    }
    if (s->write_limit > 0 && tern_socket_bytes_to_write(s) + len > s->write_limit) {
        return TERN_ENOBUFS;
    }
    if (len == 0) {
        return 0;
    }
    if (s->layered) {
        int rc = s->layer_ops->write(s, p, len); /* held back, or records in wbuf */
        if (rc <= 0) {
            return rc;
        }
        s->layer_plain += len;
        do_write(s);
        return 0;
    }
    /* fast path: nothing queued, connected: hand it to the kernel right away */
    if (s->wbuf.len == 0 && s->state == TERN_SOCKET_STATE_CONNECTED) {
        ssize_t w;
        do {
            w = send(s->fd, p, len, MSG_NOSIGNAL);
        } while (w < 0 && errno == EINTR);
        if (w < 0 && errno != EAGAIN) {
            fail_errno(s, "send", tern__errno());
            return 0; /* accepted; the failure arrives as error + disconnected */
        }
        if (w > 0) {
            tern__count(&s->r->counters.bytes_out, (uint64_t)w);
            s->unreported_written += (size_t)w;
            touch(s);
            if (s->ev != NULL && s->ev->bytes_written != NULL) {
                schedule(s);
            }
            p += w;
            len -= (size_t)w;
        }
        if (len == 0) {
            return 0;
        }
    }
    if (tern__bufq_append(s->r, &s->wbuf, p, len) < 0) {
        tern__socket_seterr(s, TERN_ENOMEM, "write: out of memory");
        if (p != data) {
            /* the head of the data is in the kernel already: the stream cannot go on without
             * its tail. Accepted, and the failure arrives as error + disconnected. */
            finish(s, TERN_ENOMEM);
            return 0;
        }
        return TERN_ENOMEM; /* nothing was sent or queued; no event follows */
    }
    update_watch(s);
    return 0;
}

int tern_socket_flush(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s->state != TERN_SOCKET_STATE_CONNECTED && s->state != TERN_SOCKET_STATE_CLOSING) {
        return TERN_ENOTCONN;
    }
    do_write(s);
    return s->err < 0 && s->state == TERN_SOCKET_STATE_UNCONNECTED ? s->err : 0;
}

int tern_socket_set_read_buffer_size(tern_socket *s, size_t bytes)
{
    TERN_ASSERT_OWNER(s);
    s->read_limit = bytes;
    update_watch(s);
    return 0;
}

void tern_socket_set_half_close(tern_socket *s, bool on)
{
    TERN_ASSERT_OWNER(s);
    s->half_close = on;
}

int tern_socket_shutdown_write(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s->state != TERN_SOCKET_STATE_CONNECTED) {
        return TERN_ENOTCONN;
    }
    s->shut_wr_requested = 1;
    if (s->layered && !s->layer_end) {
        s->layer_ops->shutdown(s); /* the layer's end first (TLS: close_notify), then FIN */
    }
    do_write(s);
    return 0;
}

/* ---- closing ------------------------------------------------------------------------------------ */

int tern_socket_close(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    switch (s->state) {
    case TERN_SOCKET_STATE_UNCONNECTED:
        return TERN_ENOTCONN;
    case TERN_SOCKET_STATE_CLOSING:
        return 0;
    case TERN_SOCKET_STATE_HOST_LOOKUP:
    case TERN_SOCKET_STATE_CONNECTING:
        finish(s, 0);
        return 0;
    default:
        break;
    }
    if (s->layered && !s->layer_end) {
        s->layer_ops->shutdown(s); /* its end goes out after the queued records */
    }
    set_state(s, TERN_SOCKET_STATE_CLOSING);
    tern__bufq_clear(s->r, &s->rbuf); /* nobody will read it now */
    s->shut_wr_requested = 1;
    arm_timer(s, CLOSE_LINGER_MS);
    do_write(s);
    return 0;
}

void tern_socket_abort(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s->state == TERN_SOCKET_STATE_UNCONNECTED) {
        return;
    }
    tern__bufq_clear(s->r, &s->rbuf);
    finish(s, 0);
}

void tern__reactor_abort_all(tern_reactor *r)
{
    tern__list *l = r->sockets.next;

    while (l != &r->sockets) {
        tern__list *next = l->next;
        tern_socket *s = container_of(l, tern_socket, link);
        tern__socket_seterr(s, TERN_E_STOPPED, "runtime stopped: connection aborted");
        tern__bufq_clear(r, &s->rbuf);
        finish(s, TERN_E_STOPPED);
        l = next;
    }
}

/* The seam's one call that needs release() (the rest is socket_seam.c). */
void tern__socket_unhold(tern_socket *s)
{
    if (--s->holds == 0 && s->free_requested && s->in_callback == 0 && !s->deferred.queued) {
        release(s); /* freed (or, accepted, ended) while held */
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * The seam (seam.h) on the socket's side: what a layer (TLS, ssl/socket_tls.c) may read and
 * do with the socket it sits on: its raw input and output queues, the plaintext it delivers,
 * the end of the stream, holds, deadlines, the reactor's slabs and counters. Small accessors
 * over struct tern_socket; the machinery they feed (reading, writing, events, ending) is
 * socket.c's. Owner thread only, like the socket.
 */
#include "rt.h"
#include "server.h"
#include "socket_impl.h"

void tern__socket_set_layer(tern_socket *s, const tern__layer_ops *ops, void *layer)
{
    s->layer_ops = ops;
    s->layer = layer;
}

void *tern__socket_layer(const tern_socket *s)
{
    return s->layer;
}

void tern__socket_start_layer(tern_socket *s)
{
    s->layered = 1;
    s->layer_end = 0;
    s->layer_plain = 0;
    /* STARTTLS: bytes that came after the plaintext command are the first raw input; rbuf's
     * chunks move over as they are */
    if (s->rbuf.len > 0) {
        if (s->inbuf.len == 0) {
            s->inbuf = s->rbuf;
        } else {
            s->inbuf.tail->next = s->rbuf.head;
            s->inbuf.tail = s->rbuf.tail;
            s->inbuf.len += s->rbuf.len;
        }
        s->rbuf.head = s->rbuf.tail = NULL;
        s->rbuf.len = 0;
    }
}

bool tern__socket_layered(const tern_socket *s)
{
    return s->layered;
}

const tern__bufq *tern__socket_input(const tern_socket *s)
{
    return &s->inbuf;
}

size_t tern__socket_input_take(tern_socket *s, void *buf, size_t len)
{
    size_t n = tern__bufq_peek(&s->inbuf, buf, len);
    if (n > 0) {
        tern__bufq_consume(s->r, &s->inbuf, n);
    }
    return n;
}

void tern__socket_input_consume(tern_socket *s, size_t n)
{
    tern__bufq_consume(s->r, &s->inbuf, n);
}

bool tern__socket_input_ended(const tern_socket *s)
{
    return s->peer_eof && s->inbuf.len == 0;
}

int tern__socket_output(tern_socket *s, const void *data, size_t len)
{
    return tern__bufq_append(s->r, &s->wbuf, data, len);
}

size_t tern__socket_output_len(const tern_socket *s)
{
    return s->wbuf.len;
}

int tern__socket_plain_reserve(tern_socket *s, tern__chunk **c, size_t *room)
{
    if (s->state != TERN_SOCKET_STATE_CONNECTED ||
        (s->read_limit != 0 && s->rbuf.len >= s->read_limit)) {
        return 0;
    }
    *c = tern__bufq_reserve(s->r, &s->rbuf, room);
    if (*c == NULL) {
        return TERN_ENOMEM;
    }
    if (s->read_limit > 0 && *room > s->read_limit - s->rbuf.len) {
        *room = s->read_limit - s->rbuf.len;
    }
    return 1;
}

void tern__socket_plain_commit(tern_socket *s, tern__chunk *c, size_t n)
{
    tern__bufq_commit(&s->rbuf, c, n);
    s->pending_ready_read = 1;
    tern__socket_schedule(s);
}

void tern__socket_plain_cancel(tern_socket *s, tern__chunk *c)
{
    tern__bufq_cancel(s->r, &s->rbuf, c);
}

void tern__socket_end_of_stream(tern_socket *s)
{
    s->peer_eof = 1;
    s->eof_clean = 1;
    s->pending_ready_read = 1;
    tern__socket_schedule(s);
}

void tern__socket_wrote(tern_socket *s, size_t n)
{
    s->layer_plain += n;
}

void tern__socket_end_queued(tern_socket *s)
{
    s->layer_end = 1;
}

bool tern__socket_write_shut(const tern_socket *s)
{
    return s->shut_wr_requested && !s->layer_end;
}

const tern_socket_events *tern__socket_events(const tern_socket *s)
{
    return s->ev;
}

bool tern__socket_freeing(const tern_socket *s)
{
    return s->free_requested;
}

void tern__socket_hold(tern_socket *s)
{
    s->holds++;
}

void tern__socket_activity(tern_socket *s)
{
    s->hib_tried = 1; /* touch re-arms the timer for the new period */
    touch(s);
}

void *tern__socket_slab_alloc(tern_socket *s, size_t n)
{
    return tern__slab_alloc(&s->r->slab, n);
}

void tern__socket_slab_free(tern_socket *s, void *p)
{
    tern__slab_free(&s->r->slab, p);
}

void *tern__socket_secret_alloc(tern_socket *s, size_t n)
{
    return tern__slab_alloc(&s->r->secrets, n);
}

void tern__socket_secret_free(tern_socket *s, void *p)
{
    tern__slab_free(&s->r->secrets, p);
}

void tern__socket_set_deadline(tern_socket *s, uint64_t at_ms)
{
    s->deadline_ms = at_ms;
    if (at_ms != 0) {
        tern__socket_rearm(s);
    }
}

uint64_t tern__socket_deadline(const tern_socket *s)
{
    return s->deadline_ms;
}

tern__counters *tern__socket_counters(tern_socket *s)
{
    return &s->r->counters;
}

tern__object *tern__socket_server_config(const tern_socket *s)
{
    return s->srv != NULL ? (tern__object *)s->srv->cfg : NULL;
}

uint16_t tern__socket_port(const tern_socket *s)
{
    return s->port;
}

int tern__socket_submit_lookup(tern_socket *s, tern__worker_job *job)
{
    return tern__pool_submit(&s->r->rt->psk, job);
}

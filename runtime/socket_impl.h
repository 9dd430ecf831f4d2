/* SPDX-License-Identifier: MIT */
/*
 * What the files of the socket (socket.c, socket_connect.c, socket_options.c, socket_seam.c)
 * share and no other file needs: the client socket's extra fields, the small helpers the
 * compiler inlines, and the entry points of socket.c that the connect path and the seam
 * call. Owner thread only.
 */
#ifndef TERN_RUNTIME_SOCKET_IMPL_H
#define TERN_RUNTIME_SOCKET_IMPL_H

#include "socket.h"

#include <netinet/in.h>

/*
 * A socket made with `tern_socket_new` carries what only outgoing connections use: the local
 * address bound before connect. Accepted sockets (owned_by_runtime) are a bare tern_socket;
 * the base comes first, so release() frees either kind through the tern_socket pointer.
 */
struct client_socket {
    struct tern_socket base;
    union tern__sockaddr local; /* bound before connect when local_len > 0 (numeric IPv4 or IPv6 only: not a
              * sockaddr_storage, 100 bytes less in every outgoing socket, a gateway's
              * backend connection among them) */
    socklen_t local_len;
};

static inline void arm_timer(tern_socket *s, uint32_t ms)
{
    ev_timer_stop(s->r->loop, &s->timer);
    if (ms > 0) {
        ev_timer_set(&s->timer, ms / 1000.0, 0.0);
        ev_timer_start(s->r->loop, &s->timer);
    }
}

/* socket.c: re-arms the lazy timer for the nearest of the idle timeout, the hibernation delay
 * and the layer's deadline. */
void tern__socket_rearm(tern_socket *s);

static inline void touch(tern_socket *s)
{
    s->last_io_ms = tern_reactor_now_ms(s->r);
    if (s->hib_tried) {
        /* the layer was asked to hibernate (it did, or it could not then): a new idle period
         * starts and the lazy timer must come back for it (rare: once per wake-up) */
        s->hib_tried = 0;
        tern__socket_rearm(s);
    }
}

/* The idle timer's first expiry for a socket that just connected: the idle timeout or the
 * hibernation delay, whichever comes first (0: neither). */
static inline uint32_t idle_first_ms(const tern_socket *s)
{
    uint32_t a = s->idle_timeout_ms, b = s->hibernate_after_ms;
    return a == 0 ? b : b == 0 ? a : a < b ? a : b;
}

static inline void attach(tern_socket *s)
{
    tern__list_insert(&s->r->sockets, &s->link);
    s->r->nsockets++;
    tern__count(&s->r->counters.open, 1);
}

/* socket.c, for socket_connect.c */
void tern__socket_set_state(tern_socket *s, enum tern_socket_state st);
void tern__socket_update_watch(tern_socket *s);
void tern__socket_apply_options(tern_socket *s, bool accepted);
void tern__socket_connected(tern_socket *s);
/* socket_connect.c, for socket.c: after the connect to one address failed with @err (a
 * TERN_E* code), starts the one to the next address of the name. @return true if it did
 * (or that attempt finished the socket); false: no other address, the caller fails. */
bool tern__socket_try_next(tern_socket *s, int err);

#endif

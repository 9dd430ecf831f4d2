/* SPDX-License-Identifier: MIT */
/*
 * The socket object, struct tern_socket (socket.c, socket_connect.c, socket_options.c), and
 * the name lookup of a connect (resolver.c). Owner thread only. ssl/ sees none of this: it
 * goes through seam.h.
 */
#ifndef TERN_RUNTIME_SOCKET_H
#define TERN_RUNTIME_SOCKET_H

#include <ev.h>
#include <stdint.h>
#include <sys/socket.h>

#include <tern/server.h>
#include <tern/socket.h>

#include "buffer.h"
#include "reactor.h"
#include "seam.h"
#include "util.h"
#include "worker.h"

struct tern__handoff;

/* The addresses a connect tries, in order (IPv6 and IPv4 interleaved, RFC 8305 section 4). */
#define TERN__MAX_ADDRS 8
struct tern__addrs {
    unsigned n, next; /* next: the index of the next address to try */
    struct {
        struct sockaddr_storage ss;
        socklen_t len;
    } a[TERN__MAX_ADDRS];
};

/* A name lookup for a connect: runs on a worker, answers on the socket's reactor. */
struct tern__resolve {
    tern__worker_job job;
    tern_socket *s; /* owner thread only; NULL once the socket gave up on it */
    uint16_t port;
    int family; /* AF_UNSPEC, AF_INET or AF_INET6: the socket's address family */
    int err;
    int gai;
    struct tern__addrs addrs;
    char host[]; /* NUL-terminated copy */
};
int tern__resolve_start(tern_socket *s, const char *host, uint16_t port);
void tern__socket_resolved(tern_socket *s, struct tern__resolve *res);

struct tern_socket {
    tern_reactor *r;
    tern__list link;
    const tern_socket_events *ev;
    void *user;
    tern_server *srv;
    int fd;
    enum tern_socket_state state;
    int err;
    ev_io io;
    ev_timer timer;           /* connect deadline, idle timeout, layer deadline, close linger */
    tern__deferred deferred;  /* pending events to deliver */
    tern__bufq rbuf, wbuf;    /* plaintext for the application; bytes for the wire */
    tern__bufq inbuf;         /* layered: received bytes the layer has not taken yet */
    const tern__layer_ops *layer_ops; /* seam.h: set with `layer` */
    void *layer;              /* the layer's per-socket state (ssl/'s), or NULL */
    uint64_t deadline_ms;     /* the layer's deadline (loop ms), 0: none */
    size_t layer_plain;       /* layered: plaintext in records not all sent yet */
    size_t unreported_raw;    /* layered: wire bytes sent, not yet reported */
    size_t read_limit, write_limit;
    size_t unreported_written;
    uint32_t connect_timeout_ms, idle_timeout_ms;
    uint32_t hibernate_after_ms; /* the layer may give its state up after this idle time */
    uint64_t last_io_ms;
    unsigned in_callback;
    unsigned holds;           /* tern__socket_hold: release waits for as many unholds */
    struct tern__resolve *resolve;
    struct tern__addrs *addrs; /* a name's addresses, while connecting to them; or NULL */
    uint64_t connect_deadline_ms; /* loop ms: the end of the whole connect, 0: none */
    uint16_t port;
    uint8_t family;           /* enum tern_address_family */
    /* flags */
    unsigned owned_by_runtime : 1;
    unsigned free_requested : 1;
    unsigned peer_eof : 1;
    unsigned read_finished_sent : 1;
    unsigned half_close : 1;
    unsigned shut_wr_requested : 1;
    unsigned shut_wr_done : 1;
    unsigned reading_paused : 1;
    unsigned pending_ready_read : 1;
    unsigned pending_connected : 1;
    unsigned pending_disconnected : 1;
    unsigned nodelay : 1;
    unsigned keepalive : 1;
    unsigned pending_error : 1;
    unsigned layered : 1;     /* the stream goes through the layer (tern__socket_start_layer) */
    unsigned layer_end : 1;   /* layered: the layer's end of stream is queued (FIN may follow) */
    unsigned eof_clean : 1;   /* the end was orderly: FIN (plain) or the layer's own end */
    unsigned watching : 2;    /* EV_READ | EV_WRITE currently watched */
    unsigned hib_tried : 1;   /* the layer was asked to hibernate in this idle period */
    unsigned from_slab : 1;   /* allocated from the reactor's slab (accepted sockets) */
    uint8_t nstates, state_head;
    uint8_t states[8];        /* state changes not yet delivered */
    int disconnect_reason;
    int sndbuf, rcvbuf;
    int tos;                  /* TYPE_OF_SERVICE + 1; 0: not set */
    char *errstr;             /* TERN__ERRSTR bytes, made by the first error: an idle
                               * connection carries none (NULL: "" or the code's text) */
};

int tern__socket_adopt(tern_reactor *r, const struct tern__handoff *h);
/* IP_TOS or IPV6_TCLASS (by the descriptor's family) on @fd: 0 or a TERN_E* code. */
int tern__socket_set_tos(int fd, int tos);

#endif

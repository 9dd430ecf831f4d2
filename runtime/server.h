/* SPDX-License-Identifier: MIT */
/*
 * Servers and the acceptor (acceptor.c): listeners, and the per-reactor accounting of the
 * connections handed out. A listener belongs to the thread that watches it (the acceptor
 * thread, or a reactor); once the runtime runs, whatever another thread reads of it (its fd,
 * close_sent) and the server list are under rt->servers_lock, and the owner writes them
 * holding it too.
 */
#ifndef TERN_RUNTIME_SERVER_H
#define TERN_RUNTIME_SERVER_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/socket.h>

#include <tern/server.h>

#include "counters.h"
#include "util.h"

struct tern__handoff;

typedef struct tern__listener {
    ev_io io;
    ev_timer backoff;
    tern_server *srv;
    tern_reactor *owner; /* NULL: the acceptor thread */
    tern__counters *counters;
    struct ev_loop *loop; /* set when it is first watched */
    int fd;               /* -1 once closed (under servers_lock while running) */
    bool close_sent;      /* tern_server_close asked its owner to close it (servers_lock) */
} tern__listener;

struct tern_server {
    tern_server *next;
    tern_runtime *rt;
    /* swapped by tern_server_set_ssl_config on any thread, read on the reactors (a handshake
     * starting refs it); an old one is released once every reactor has run past the swap */
    _Atomic(tern_ssl_config *) cfg;
    struct tern__cfg_retire *parked; /* old ones that could not be retired so (servers_lock) */
    tern_server_incoming_fn incoming;
    void *user;
    int backlog;
    enum tern_balance_policy policy;
    bool reuseport;
    unsigned max_connections;
    uint32_t idle_timeout_ms;
    uint32_t hibernate_after_ms;
    size_t read_buffer_size;
    bool listening; /* set once (under servers_lock while running); never cleared */
    bool closed;    /* tern_server_close was called (servers_lock) */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    _Atomic uint16_t port; /* kept after close */
    char errstr[TERN__ERRSTR];
    /* the acceptor's own state (acceptor thread only) */
    tern__listener main;
    unsigned next_rr;
    _Atomic uint64_t *dispatched; /* per reactor: connections handed to it (one writer) */
    _Atomic uint64_t *finished; /* per reactor: those of them now closed (reactor writes) */
    tern__listener *per_reactor; /* reuseport: one listener per reactor */
};

int tern__servers_prepare(tern_runtime *rt); /* at start: per-reactor arrays */
int tern__servers_lock_init(tern_runtime *rt); /* tern_runtime_new */
void tern__servers_lock_destroy(tern_runtime *rt);
int tern__acceptor_start(tern_runtime *rt);
void tern__acceptor_stop(tern_runtime *rt);
void tern__acceptor_join(tern_runtime *rt);
void tern__server_reactor_start(tern_reactor *r); /* reuseport listeners: on the reactor */
void tern__server_reactor_stop(tern_reactor *r);
void tern__servers_free(tern_runtime *rt);
/* A reactor adopts an accepted fd (from the ring or its own listener). */
void tern__server_adopt(tern_reactor *r, const struct tern__handoff *h);
void tern__server_free_fd(tern_server *srv, unsigned reactor_index); /* on close */

#endif

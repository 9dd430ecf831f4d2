/* SPDX-License-Identifier: MIT */
/*
 * The reactor (reactor.c): one libev loop and the objects that live on it. Its loop,
 * deferred list, sockets, timers and counters belong to its own thread; other threads only
 * post to `mailbox` (MPSC) and the acceptor to `handoff` (SPSC), then wake `wake`.
 */
#ifndef TERN_RUNTIME_REACTOR_H
#define TERN_RUNTIME_REACTOR_H

#include "slab.h"
#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <tern/runtime.h>

#include "counters.h"
#include "mailbox.h"
#include "util.h"

/* A deferred call: runs on the owner after the current callback stack unwinds. */
typedef struct tern__deferred {
    struct tern__deferred *next;
    void (*fn)(struct tern__deferred *d);
    bool queued;
} tern__deferred;

typedef struct tern__list {
    struct tern__list *prev, *next;
} tern__list;

static inline void tern__list_init(tern__list *l) { l->prev = l->next = l; }
static inline bool tern__list_empty(const tern__list *l) { return l->next == l; }
static inline void tern__list_insert(tern__list *head, tern__list *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}
static inline void tern__list_remove(tern__list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

struct tern_reactor {
    /* hot, owner-only */
    struct ev_loop *loop;
    tern_runtime *rt;
    unsigned index;
    tern__deferred *deferred_head, *deferred_tail;
    ev_idle deferred_idle;
    ev_check deferred_check;
    ev_async wake;
    int seen_stops;           /* stop requests handled so far */
    tern__list actors;        /* live user actors */
    tern__list sockets;       /* every open socket, for drain and stop */
    uint64_t nsockets;
    _Atomic unsigned nactors; /* advisory, for actor placement */
    bool draining;            /* stop requested: exit when no socket is left */
    bool standalone;          /* driven by tern_reactor_run on its creator's thread */
    _Atomic bool stop_requested; /* standalone: tern_reactor_stop */
    bool stopped;             /* the loop has exited */
    ev_timer drain_timer;
    struct tern__chunk *chunk_pool; /* free buffer chunks (see buffer.c) */
    unsigned chunk_pool_len;
    const tern_socket *accepted;    /* the socket whose `incoming` runs, or NULL ... */
    const struct tern__handoff *accepted_from; /* ... and its accept (the peer's address) */
    void *layer_state;              /* the TLS layer's per-reactor state (seam.h) ... */
    void (*layer_state_free)(void *); /* ... freed with the reactor by this */
    tern__slab slab;                /* accepted sockets' long-lived part (slab.c) */
    tern__slab secrets;             /* hibernated sockets' sealed TLS state (not dumped) */
    ev_timer trim_timer;            /* tern__reactor_released: the heap trimmed once a second */
    pthread_t thread;
    bool thread_started;

    tern__counters counters __attribute__((aligned(TERN__CACHELINE)));

    /* shared with other threads */
    tern__mailbox mailbox __attribute__((aligned(TERN__CACHELINE)));
};

tern_reactor *tern__reactor_new(tern_runtime *rt, unsigned index);
int tern__reactor_start(tern_reactor *r);
void tern__reactor_join(tern_reactor *r);
void tern__reactor_free(tern_reactor *r);
/* A socket gave a large amount of memory back while staying open (a hibernation): within a
 * second the allocator's free pages go back to the kernel. Owner thread. */
void tern__reactor_released(tern_reactor *r);
void tern__reactor_wake(tern_reactor *r); /* any thread: re-check stop requests */
/* Any thread: post a two-argument task, counting a full mailbox. */
int tern__reactor_post2(tern_reactor *r, tern__task2_fn fn, void *arg, void *arg2);
static inline void tern__task_run(tern_reactor *r, const struct tern__task *t)
{
    if (t->fn2 != NULL) {
        t->fn2(r, t->arg, t->arg2);
    } else {
        t->fn(r, t->arg);
    }
}
void tern__reactor_defer(tern_reactor *r, tern__deferred *d);
void tern__reactor_set_current(tern_reactor *r);
void tern__actors_reactor_stopped(tern_reactor *r);
bool tern__on_owner(const tern_reactor *r);
/* Called by socket.c when a socket opens/closes, so drain can finish. */
void tern__reactor_socket_closed(tern_reactor *r);

/* Abort every socket of @r (stop without drain). */
void tern__reactor_abort_all(tern_reactor *r);

#endif

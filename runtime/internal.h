/* SPDX-License-Identifier: MIT */
/*
 * The runtime's private declarations, shared by the files of runtime/ (ssl/ includes only
 * seam.h). Never installed. No wolfSSL here.
 *
 * Who touches what:
 * - tern_reactor: its loop, deferred list, sockets, timers and counters belong to its own
 *   thread. Other threads only post to `mailbox` (MPSC) and the acceptor to `handoff`
 *   (SPSC), then wake `wake`.
 * - tern_runtime: set up on one thread before start; afterwards read-only, except `stopping`
 *   (atomic) and what the signal thread does through tern_runtime_stop.
 * - Counters: one writer each (the owner), relaxed atomic stores; readers sum.
 *
 * Split by object: what ssl/ needs too has its own header (buffer.h, counters.h, object.h,
 * worker.h, tsan.h), and ssl/ reaches the socket only through seam.h.
 */
#ifndef TERN_RUNTIME_INTERNAL_H
#define TERN_RUNTIME_INTERNAL_H

#include <ev.h>
#include <ck_ring.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include <tern/tern.h>

#include "buffer.h"
#include "counters.h"
#include "object.h"
#include "owner.h"
#include "seam.h"
#include "tsan.h"
#include "worker.h"

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define TERN__CACHELINE 64
#define TERN__ERRSTR 160

/* ---- mailbox: MPSC ring of tasks + SPSC ring of accepted fds ---------------------------- */

/* A task: the public form (fn, arg) or the internal two-argument form (fn2, arg, arg2). */
typedef void (*tern__task2_fn)(tern_reactor *r, void *arg, void *arg2);
struct tern__task {
    tern_task_fn fn;
    tern__task2_fn fn2;
    void *arg;
    void *arg2;
};

struct tern__handoff {
    int fd;
    tern_server *srv;
};
CK_RING_PROTOTYPE(tern_handoff, tern__handoff)

/* A bounded multi-producer queue of tasks (runtime/queue.c): producers never wait for one
 * another; one consumer (pop_sc) or several (pop_mc). */
struct tern__cell {
    _Atomic size_t seq;
    struct tern__task task;
};
typedef struct tern__queue {
    struct tern__cell *cells;
    size_t mask;
    _Atomic size_t tail __attribute__((aligned(TERN__CACHELINE))); /* producers */
    _Atomic size_t head __attribute__((aligned(TERN__CACHELINE))); /* consumer(s) */
} tern__queue;

int tern__queue_init(tern__queue *q, unsigned capacity);
void tern__queue_destroy(tern__queue *q);
int tern__queue_push_mp(tern__queue *q, const struct tern__task *t); /* 0 or TERN_E_QUEUE_FULL */
bool tern__queue_pop_sc(tern__queue *q, struct tern__task *out);
bool tern__queue_pop_mc(tern__queue *q, struct tern__task *out);
size_t tern__queue_size(const tern__queue *q); /* approximate from other threads */

typedef struct tern__mailbox {
    tern__queue tasks;
    struct ck_ring handoff;
    struct tern__handoff *handoff_slots;
    _Atomic int closed; /* set by the owner once it stops taking tasks */
} tern__mailbox;

int tern__mailbox_init(tern__mailbox *mb, unsigned capacity, unsigned handoff_capacity);
void tern__mailbox_destroy(tern__mailbox *mb);
/* Any thread. 0, TERN_E_QUEUE_FULL or TERN_E_STOPPED. Does not wake the reactor. */
int tern__mailbox_post_mp(tern__mailbox *mb, const struct tern__task *t);
/* Consumer only. true and *out filled if a task was queued. */
bool tern__mailbox_take_sc(tern__mailbox *mb, struct tern__task *out);
/* The acceptor (the single producer of every handoff ring). 0 or TERN_E_QUEUE_FULL. */
int tern__handoff_put_sp(tern__mailbox *mb, int fd, tern_server *srv);
bool tern__handoff_take_sc(tern__mailbox *mb, struct tern__handoff *out);

/* ---- reactor ---------------------------------------------------------------------------- */

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

/* ---- runtime ---------------------------------------------------------------------------- */

/* A pool of worker threads for blocking jobs (pool.c): a bounded MPMC queue + a semaphore. */
typedef struct tern__pool {
    tern__queue q;
    bool ready;
    unsigned n;
    pthread_t *threads;
    void *sem; /* sem_t, kept opaque here */
    _Atomic int quit;
} tern__pool;
/* Starts @threads threads (0: a pool that refuses every job with TERN_E_UNSUPPORTED). */
int tern__pool_start(tern__pool *p, unsigned threads, unsigned capacity, char *err, size_t len);
/* Runs job->work on a worker, then posts job->done(job->reply_to, job); a job that never ran
 * (the pool joined first) gets job->done(NULL, job). 0; TERN_E_QUEUE_FULL;
 * TERN_E_UNSUPPORTED (no threads). Any thread. */
int tern__pool_submit(tern__pool *p, tern__worker_job *job);
void tern__pool_join(tern__pool *p);    /* stops the threads; queued jobs come back canceled */
void tern__pool_destroy(tern__pool *p); /* after join */

struct tern_runtime {
    tern_runtime_options opts;
    unsigned nreactors;
    tern_reactor **reactors;
    char errstr[TERN__ERRSTR];
    bool started, joined;
    bool standalone;     /* one reactor driven by its creator's thread */
    _Atomic bool all_exited; /* set by join, read by the signal thread */
    _Atomic int stopping; /* number of stop calls */
    _Atomic uint32_t drain_ms;

    /* servers (setup-time list) and the acceptor thread */
    tern_server *servers;
    struct ev_loop *acceptor_loop;
    ev_async acceptor_wake;
    pthread_t acceptor_thread;
    bool acceptor_started;
    tern__counters acceptor_counters __attribute__((aligned(TERN__CACHELINE)));

    /* workers for blocking jobs: name lookups, and PSK store queries */
    tern__pool work;
    tern__pool psk;

    /* signals */
    bool signals;
    pthread_t signal_thread;
    bool signal_thread_started;
    uint32_t signal_drain_ms;
    tern_reload_fn on_reload;
    void *reload_user;
    tern_reload_fn on_usr1;
    void *usr1_user;
};

void tern__runtime_seterr(tern_runtime *rt, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int tern__workers_start(tern_runtime *rt); /* both pools */
void tern__workers_join(tern_runtime *rt);

/* ---- acceptor / servers ----------------------------------------------------------------- */

typedef struct tern__listener {
    ev_io io;
    ev_timer backoff;
    tern_server *srv;
    tern_reactor *owner; /* NULL: the acceptor thread */
    tern__counters *counters;
    struct ev_loop *loop;
    int fd;
} tern__listener;

struct tern_server {
    tern_server *next;
    tern_runtime *rt;
    tern_ssl_config *cfg;
    tern_server_incoming_fn incoming;
    void *user;
    int backlog;
    enum tern_balance_policy policy;
    bool reuseport;
    unsigned max_connections;
    uint32_t idle_timeout_ms;
    size_t read_buffer_size;
    bool listening;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint16_t port;
    char errstr[TERN__ERRSTR];
    /* the acceptor's own state (acceptor thread only) */
    tern__listener main;
    unsigned next_rr;
    _Atomic uint64_t *dispatched; /* per reactor: connections handed to it (one writer) */
    _Atomic uint64_t *finished; /* per reactor: those of them now closed (reactor writes) */
    tern__listener *per_reactor; /* reuseport: one listener per reactor */
};

int tern__servers_prepare(tern_runtime *rt); /* at start: per-reactor arrays */
int tern__acceptor_start(tern_runtime *rt);
void tern__acceptor_stop(tern_runtime *rt);
void tern__acceptor_join(tern_runtime *rt);
void tern__server_reactor_start(tern_reactor *r); /* reuseport listeners: on the reactor */
void tern__server_reactor_stop(tern_reactor *r);
void tern__servers_free(tern_runtime *rt);
/* A reactor adopts an accepted fd (from the ring or its own listener). */
void tern__server_adopt(tern_reactor *r, tern_server *srv, int fd);
void tern__server_free_fd(tern_server *srv, unsigned reactor_index); /* on close */
int tern__socket_adopt(tern_reactor *r, tern_server *srv, int fd);

/* ---- sockets ---------------------------------------------------------------------------- */

/* A name lookup for a connect: runs on a worker, answers on the socket's reactor. */
struct tern__resolve {
    tern__worker_job job;
    tern_socket *s; /* owner thread only; NULL once the socket gave up on it */
    uint16_t port;
    int err;
    int gai;
    struct sockaddr_storage addr;
    socklen_t addrlen;
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
    uint64_t last_io_ms;
    unsigned in_callback;
    struct tern__resolve *resolve;
    uint16_t port;
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
    uint8_t nstates, state_head;
    uint8_t states[8];        /* state changes not yet delivered */
    int disconnect_reason;
    int sndbuf, rcvbuf;
    char errstr[TERN__ERRSTR];
};

/* Abort every socket of @r (stop without drain). */
void tern__reactor_abort_all(tern_reactor *r);

/* ---- misc ------------------------------------------------------------------------------- */

int tern__set_nonblock_cloexec(int fd);
int tern__format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
int tern__errno(void); /* -errno, never 0 */

#endif

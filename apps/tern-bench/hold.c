/* SPDX-License-Identifier: MIT */
/*
 * tern-bench --mode hold (see hold.h): many connections held open and idle.
 *
 * The climb. Each worker (one per reactor) opens its share of --connections: at most its
 * share of --concurrency handshakes in flight, and with --rate on a schedule (attempt k of
 * worker w at t0 + offset_w + k / rate_w). Every attempt is made once: a failure is counted
 * by kind (refused, emfile, addrnotavail, timeout, tls, reset, other) and not retried, so the
 * climb ends after exactly --connections attempts, and its time is the time to open them all.
 * main() then holds for --duration seconds, reads the /proc samples at the end, and stops
 * the workers, which close everything.
 *
 * What a held connection costs this process. Without --keepalive, nothing but its kernel
 * socket: after the handshake the worker duplicates the descriptor and frees the tern
 * socket (and with it the TLS state), which closes its own descriptor only, so no FIN and no
 * alert go out; the connection then lives on as one int in `fds`, registered (edge-
 * triggered) in the worker's own epoll set. Once a second the worker asks that set, without
 * waiting, which of them have something, reads and drops what came after the handshake
 * (TLS 1.3 tickets), and counts the ones the server closed as `dropped`: a quiet connection
 * costs no system call, so 100,000 held ones do not take a core from the keep-alive run
 * beside them (a recv() on each, every second, did). With --keepalive the TLS state is
 * needed to write records, so the connection keeps its tern socket (and a 56-byte struct
 * hold_conn in a list ordered by the next keep-alive, 13 KiB in all with wolfSSL's object,
 * measured): every --keepalive seconds it
 * writes --payload bytes and waits for their echo within --timeout; the round trip goes to
 * the histogram, and from the first whole second after this process's climb ended also to a
 * second one (`keepalive.held`: a steady hold, no handshakes of its own competing for the
 * cores). The summary and the JSON say which of the two it was, with the client's own VmRSS
 * per held connection.
 *
 * The summary and the JSON are written by hold_report.c from the run's struct hold_report.
 *
 * Threads: workers touch their own fields on their reactor thread only; main() reads the
 * atomics they publish (one writer each) and, once a second, takes their keep-alive
 * latencies under the worker's lock; everything else after the runtime was joined.
 */
#include "hold.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hist.h"
#include "hold_report.h"

#define STOP_WAIT_US (30 * 1000000u) /* closing 20,000 connections takes well under that */

struct hold_worker;

struct hold_conn {
    struct hold_worker *w;
    tern_socket *s;
    struct hold_conn *prev, *next; /* w->pending (handshaking) or w->held */
    uint64_t due_us;               /* keep-alive: the next round trip */
    uint64_t sent_us;              /* keep-alive: the one in flight since; 0: none */
    uint32_t to_receive;
    bool psk;
    bool held;          /* the handshake completed */
    bool detach_later;  /* no keep-alive: detach once the last handshake bytes went out */
};

struct hold_list {
    struct hold_conn *head, *tail;
};

struct hold_run;

struct hold_worker {
    struct hold_run *run;
    unsigned index;
    tern_reactor *r;

    /* --- owner thread while the run lasts; main() after join -------------------------- */
    unsigned share, started, inflight, max_inflight;
    uint64_t period_ns, offset_ns; /* --rate: between attempts, this worker's phase */
    size_t psk_next, source_next, target_next;
    struct hold_list pending;      /* handshakes in flight */
    struct hold_list held;         /* tern sockets held: by next keep-alive (or to detach) */
    int *fds;                      /* detached held connections (no --keepalive) */
    size_t nfds;
    int epfd;                      /* fds[i] registered with data.u64 = i; -1: none */
    uint8_t *payload;
    bench_hist hist;               /* keep-alive round trips, us */
    bench_hist ihist;              /* since the last tick */
    tern_timer *tick, *arrivals, *ka;
    bool stopping;
    uint64_t kept_sockets;         /* held as tern sockets although detaching was asked */
    uint64_t cut;                  /* handshakes still in flight when the run stopped */
    char texts[HOLD_NERRS][160];   /* the first error text of each kind */
    struct bench_negotiated negotiated;

    /* --- published: atomics written by this worker only ------------------------------- */
    atomic_uint_fast64_t opened, open_now, ka_done, ka_failed;
    atomic_uint_fast64_t not_opened; /* attempts that failed before the handshake completed */
    atomic_uint_fast64_t errors[HOLD_NERRS];
    atomic_uint_fast64_t climb_end_us; /* 0 until every attempt of the share ended */

    /* --- published under lock ------------------------------------------------------------ */
    pthread_mutex_t lock;
    bench_hist pub_hist;
};

struct hold_run {
    const struct bench_config *cfg;
    uint64_t t0_us;
    struct hold_worker *workers;
    unsigned nworkers;
    atomic_uint done;
};

/* ---- the worker (its reactor thread) ------------------------------------------------------ */

static void pump(struct hold_worker *w);

static void list_push(struct hold_list *l, struct hold_conn *c)
{
    c->next = NULL;
    c->prev = l->tail;
    *(l->tail != NULL ? &l->tail->next : &l->head) = c;
    l->tail = c;
}

static void list_remove(struct hold_list *l, struct hold_conn *c)
{
    *(c->prev != NULL ? &c->prev->next : &l->head) = c->next;
    *(c->next != NULL ? &c->next->prev : &l->tail) = c->prev;
    c->prev = c->next = NULL;
}

static void bump(atomic_uint_fast64_t *a, int64_t by)
{
    atomic_fetch_add_explicit(a, (uint_fast64_t)by, memory_order_relaxed);
}

static enum hold_err classify(int err)
{
    switch (err) {
    case TERN_ECONNREFUSED:
        return HOLD_REFUSED;
    case TERN_EMFILE:
    case TERN_ENFILE:
        return HOLD_EMFILE;
    case TERN_EADDRNOTAVAIL:
    case TERN_EADDRINUSE:
    case TERN_E_ADDRESS:
        return HOLD_ADDRNOTAVAIL;
    case TERN_ETIMEDOUT:
    case TERN_E_TLS_TIMEOUT:
    case TERN_E_IDLE_TIMEOUT:
        return HOLD_TIMEOUT;
    case 0:
    case TERN_E_EOF:
    case TERN_ECONNRESET:
    case TERN_EPIPE:
    case TERN_ECONNABORTED:
        return HOLD_RESET;
    default:
        break;
    }
    enum tern_err_category cat = tern_err_category_of(err);
    if (cat == TERN_ERR_CATEGORY_ALERT || cat == TERN_ERR_CATEGORY_PROTO ||
        cat == TERN_ERR_CATEGORY_VERIFY) {
        return HOLD_TLS;
    }
    return HOLD_OTHER;
}

static void count_error(struct hold_worker *w, enum hold_err kind, const char *text)
{
    bump(&w->errors[kind], 1);
    if (w->texts[kind][0] == '\0' && text != NULL) {
        snprintf(w->texts[kind], sizeof(w->texts[kind]), "%.159s", text);
    }
}

static void error_text(tern_socket *s, int err, char *buf, size_t len)
{
    const char *why = tern_socket_error_string(s);
    if (err == 0) {
        snprintf(buf, len, "closed by the peer");
    } else {
        snprintf(buf, len, "%s: %s", tern_err_name(err), why[0] != '\0' ? why : "-");
    }
}

static void free_conn(struct hold_conn *c)
{
    tern_socket_set_events(c->s, NULL, NULL);
    tern_socket_free(c->s); /* legal inside its callbacks: released when they return */
    free(c);
}

static void check_climbed(struct hold_worker *w)
{
    if (w->started == w->share && w->inflight == 0 &&
        atomic_load_explicit(&w->climb_end_us, memory_order_relaxed) == 0) {
        atomic_store(&w->climb_end_us, bench_now_us());
    }
}

static void arm_ka(struct hold_worker *w, uint64_t now)
{
    struct hold_conn *c = w->held.head;
    if (c != NULL) {
        tern_timer_start(w->ka, c->due_us > now ? (c->due_us - now + 999) / 1000 : 0, 0);
    }
}

/*
 * Without keep-alive: keeps only a duplicate of the descriptor and frees the tern socket,
 * whose close(2) of its own descriptor leaves the connection open (no FIN, no alert). Waits
 * while handshake bytes are still queued (the tick retries). A failed dup keeps the socket.
 */
static void detach(struct hold_worker *w, struct hold_conn *c)
{
    if (tern_socket_encrypted_bytes_to_write(c->s) > 0 || tern_socket_bytes_to_write(c->s) > 0) {
        c->detach_later = true;
        return;
    }
    int fd = fcntl(tern_socket_descriptor(c->s), F_DUPFD_CLOEXEC, 0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = w->nfds};
    if (fd >= 0 && epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        c->detach_later = false;
        w->kept_sockets++;
        return;
    }
    list_remove(&w->held, c);
    w->fds[w->nfds++] = fd;
    free_conn(c);
}

/* `encrypted` (TLS) or `connected` (--plain): the connection is held from now on. */
static void conn_ready(tern_socket *s, struct hold_conn *c)
{
    struct hold_worker *w = c->w;
    const struct bench_config *cfg = w->run->cfg;
    uint64_t now = bench_now_us();

    list_remove(&w->pending, c);
    w->inflight--;
    if (c->psk && tern_socket_peer_certificate(s) != NULL) {
        bump(&w->not_opened, 1);
        count_error(w, HOLD_TLS, "PSK offered, certificate handshake made");
        free_conn(c);
        pump(w);
        return;
    }
    if (!cfg->plain && w->negotiated.protocol[0] == '\0') {
        int p = tern_socket_session_protocol(s);
        snprintf(w->negotiated.protocol, sizeof(w->negotiated.protocol), "%s",
                 p == TERN_SSL_PROTOCOL_TLS1_3   ? "TLS 1.3"
                 : p == TERN_SSL_PROTOCOL_TLS1_2 ? "TLS 1.2"
                                                 : "?");
        snprintf(w->negotiated.cipher, sizeof(w->negotiated.cipher), "%s",
                 tern_socket_session_cipher(s));
        snprintf(w->negotiated.group, sizeof(w->negotiated.group), "%s",
                 tern_socket_session_group(s));
    }
    c->held = true;
    bump(&w->opened, 1);
    bump(&w->open_now, 1);
    c->due_us = now + (uint64_t)cfg->keepalive_ms * 1000u;
    list_push(&w->held, c);
    if (cfg->keepalive_ms > 0) {
        if (w->held.head == c) {
            arm_ka(w, now);
        }
    } else {
        detach(w, c);
    }
    pump(w);
}

static void conn_connected(tern_socket *s, void *user)
{
    struct hold_conn *c = user;
    if (c->w->run->cfg->plain) {
        conn_ready(s, c);
    }
}

static void conn_encrypted(tern_socket *s, void *user)
{
    conn_ready(s, user);
}

static void conn_ready_read(tern_socket *s, void *user)
{
    struct hold_conn *c = user;
    struct hold_worker *w = c->w;
    tern_buf view;
    size_t got = 0;

    while (tern_socket_peek_view(s, &view) == 0 && view.len > 0) {
        got += view.len;
        tern_socket_consume(s, view.len);
    }
    if (got == 0 || !c->held || c->sent_us == 0) {
        return;
    }
    c->to_receive = got >= c->to_receive ? 0 : c->to_receive - (uint32_t)got;
    if (c->to_receive > 0) {
        return;
    }
    uint64_t now = bench_now_us();
    uint64_t lat = now > c->sent_us ? now - c->sent_us : 0;
    bench_hist_record(&w->hist, lat);
    bench_hist_record(&w->ihist, lat);
    bump(&w->ka_done, 1);
    c->sent_us = 0;
    tern_socket_set_idle_timeout(s, 0); /* idle between keep-alives is the point */
}

static void conn_disconnected(tern_socket *s, int reason, void *user)
{
    struct hold_conn *c = user;
    struct hold_worker *w = c->w;
    int err = reason != 0 ? reason : tern_socket_error(s);
    char text[200];

    error_text(s, err, text, sizeof(text));
    if (c->held) {
        list_remove(&w->held, c);
        bump(&w->open_now, -1);
        if (c->sent_us != 0) {
            bump(&w->ka_failed, 1);
        }
        count_error(w, c->sent_us != 0 && classify(err) == HOLD_TIMEOUT ? HOLD_TIMEOUT
                                                                        : HOLD_DROPPED, text);
    } else {
        list_remove(&w->pending, c);
        w->inflight--;
        bump(&w->not_opened, 1);
        count_error(w, classify(err), text);
    }
    free_conn(c);
    pump(w);
}

static const tern_socket_events hold_events = {
    .connected = conn_connected,
    .encrypted = conn_encrypted,
    .ready_read = conn_ready_read,
    .disconnected = conn_disconnected,
};

/* One attempt: the next source address, target and PSK identity in turn. */
static void open_one(struct hold_worker *w)
{
    const struct bench_config *cfg = w->run->cfg;
    struct hold_conn *c = calloc(1, sizeof(*c));
    int rc = 0;

    if (c == NULL || (c->s = tern_socket_new(w->r)) == NULL) {
        free(c);
        bump(&w->not_opened, 1);
        count_error(w, HOLD_OTHER, "out of memory");
        return;
    }
    c->w = w;
    c->psk = !cfg->plain && cfg->psk_cfg != NULL;
    tern_socket_set_events(c->s, &hold_events, c);
    tern_socket_set_connect_timeout(c->s, cfg->timeout_ms);
    if (cfg->nsources > 0) {
        rc = tern_socket_set_local_address(c->s, cfg->sources[w->source_next]);
        w->source_next = (w->source_next + 1) % cfg->nsources;
    }
    if (rc == 0 && !cfg->plain) {
        rc = tern_socket_set_ssl_config(c->s, c->psk ? cfg->psk_cfg : cfg->full_cfg);
    }
    if (rc == 0 && c->psk) {
        const struct bench_psk *p = &cfg->psks[w->psk_next];
        w->psk_next = (w->psk_next + 1) % cfg->npsks;
        rc = tern_socket_set_psk(c->s, p->identity, p->identity_len, p->key, p->key_len);
        if (rc == 0) {
            rc = tern_socket_set_psk_hash(c->s, p->hash);
        }
    }
    const struct bench_target *t = &cfg->targets[w->target_next];
    w->target_next = (w->target_next + 1) % cfg->ntargets;
    if (rc == 0) {
        rc = cfg->plain ? tern_socket_connect_to_host(c->s, t->host, t->port)
                        : tern_socket_connect_to_host_encrypted(
                              c->s, t->host, t->port, cfg->sni != NULL ? cfg->sni : t->name);
    }
    if (rc < 0) {
        char text[200];
        snprintf(text, sizeof(text), "%s: cannot start: %s", tern_err_name(rc),
                 tern_strerror(rc));
        bump(&w->not_opened, 1);
        count_error(w, classify(rc), text);
        free_conn(c);
        return;
    }
    list_push(&w->pending, c);
    w->inflight++;
}

/* Starts the attempts that --concurrency and --rate allow now. */
static void pump(struct hold_worker *w)
{
    if (w->stopping) {
        return;
    }
    uint64_t now = bench_now_us();
    while (w->started < w->share && w->inflight < w->max_inflight) {
        if (w->period_ns > 0) {
            uint64_t due = w->run->t0_us + (w->offset_ns + w->started * w->period_ns) / 1000u;
            if (due > now) {
                tern_timer_start(w->arrivals, (due - now + 999) / 1000, 0);
                break;
            }
        }
        w->started++;
        open_one(w);
    }
    check_climbed(w);
}

static void on_arrival(tern_timer *t, void *user)
{
    pump(user);
}

/* Keep-alive: every held connection due by now writes its payload; the list stays ordered
 * by due time (each goes to the tail with its next time). One still waiting for its last
 * echo skips this one: its --timeout (the idle timeout) decides. */
static void on_keepalive(tern_timer *t, void *user)
{
    struct hold_worker *w = user;
    const struct bench_config *cfg = w->run->cfg;
    uint64_t now = bench_now_us();
    uint64_t every = (uint64_t)cfg->keepalive_ms * 1000u;
    struct hold_conn *c;

    while ((c = w->held.head) != NULL && c->due_us <= now) {
        list_remove(&w->held, c);
        c->due_us = c->due_us + every > now ? c->due_us + every : now + every;
        list_push(&w->held, c);
        if (c->sent_us != 0) {
            continue;
        }
        c->sent_us = now;
        c->to_receive = (uint32_t)cfg->payload;
        tern_socket_set_idle_timeout(c->s, cfg->timeout_ms);
        if (tern_socket_write(c->s, w->payload, cfg->payload) < 0) {
            tern_socket_abort(c->s); /* `disconnected` counts it */
        }
    }
    arm_ka(w, now);
}

/* Closes held descriptor @p i (the only reference: its epoll entry goes with it); its slot
 * stays -1 until compact(), so the indexes of a batch of reports stay valid. */
static void drop_fd(struct hold_worker *w, size_t i, const char *why)
{
    close(w->fds[i]);
    w->fds[i] = -1;
    bump(&w->open_now, -1);
    count_error(w, HOLD_DROPPED, why);
}

/* After a batch: the last descriptors move into the dropped ones' slots, their epoll entries
 * told their new index (epoll_wait reports an entry's data as it is then). */
static void compact(struct hold_worker *w)
{
    for (size_t i = 0; i < w->nfds;) {
        if (w->fds[i] >= 0) {
            i++;
            continue;
        }
        w->fds[i] = w->fds[--w->nfds];
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.u64 = i};
        if (i < w->nfds && w->fds[i] >= 0 &&
            epoll_ctl(w->epfd, EPOLL_CTL_MOD, w->fds[i], &ev) < 0) {
            /* still held, no longer swept (its reports carry an index past the end) */
            count_error(w, HOLD_OTHER, "epoll_ctl(EPOLL_CTL_MOD) failed on a held connection");
        }
    }
}

/* Detached descriptors, once a second: the ones epoll says have something are read to the
 * end and what came is dropped (TLS 1.3 session tickets), so that it holds no kernel memory
 * here and the close at the end is a FIN, not a reset; one the server closed (or reset)
 * counts as dropped. Edge-triggered: a descriptor is reported again only when more comes. */
static void sweep(struct hold_worker *w)
{
    char sink[4096]; /* what is read is never looked at */
    struct epoll_event evs[256];
    int n;

    for (unsigned rounds = 0; rounds < 1024; rounds++) { /* bounded: 256 K reports a tick */
        do {
            n = epoll_wait(w->epfd, evs, (int)(sizeof(evs) / sizeof(evs[0])), 0);
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            return;
        }
        for (int k = 0; k < n; k++) {
            size_t i = (size_t)evs[k].data.u64;
            ssize_t got;
            if (i >= w->nfds || w->fds[i] < 0) {
                continue;
            }
            do {
                got = recv(w->fds[i], sink, sizeof(sink), MSG_DONTWAIT);
            } while (got > 0 || (got < 0 && errno == EINTR));
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                continue;
            }
            drop_fd(w, i, got == 0 ? "the server closed a held connection"
                                   : "a held connection was reset");
        }
        compact(w);
    }
}

static void on_tick(tern_timer *t, void *user)
{
    struct hold_worker *w = user;

    if (w->run->cfg->keepalive_ms == 0) {
        struct hold_conn *next;
        for (struct hold_conn *c = w->held.head; c != NULL; c = next) {
            next = c->next;
            if (c->detach_later) {
                detach(w, c);
            }
        }
        sweep(w);
    }
    pthread_mutex_lock(&w->lock);
    bench_hist_merge(&w->pub_hist, &w->ihist);
    pthread_mutex_unlock(&w->lock);
    bench_hist_reset(&w->ihist);
}

static void start_task(tern_reactor *r, void *arg)
{
    struct hold_worker *w = arg;

    if (r == NULL) {
        return;
    }
    w->r = r;
    w->tick = tern_timer_new(r, on_tick, w);
    w->arrivals = tern_timer_new(r, on_arrival, w);
    w->ka = tern_timer_new(r, on_keepalive, w);
    if (w->tick == NULL || w->arrivals == NULL || w->ka == NULL) {
        count_error(w, HOLD_OTHER, "out of memory");
        w->stopping = true;
        return;
    }
    tern_timer_start(w->tick, 1000, 1000);
    pump(w);
}

/* The end: closes every connection (held or not) and reports done. */
static void stop_task(tern_reactor *r, void *arg)
{
    struct hold_worker *w = arg;

    if (r != NULL) {
        w->stopping = true;
        while (w->pending.head != NULL) {
            struct hold_conn *c = w->pending.head;
            list_remove(&w->pending, c);
            w->cut++;
            free_conn(c);
        }
        while (w->held.head != NULL) {
            struct hold_conn *c = w->held.head;
            list_remove(&w->held, c);
            free_conn(c);
        }
        for (size_t i = 0; i < w->nfds; i++) {
            close(w->fds[i]);
        }
        w->nfds = 0;
        tern_timer_free(w->tick);
        tern_timer_free(w->arrivals);
        tern_timer_free(w->ka);
        w->tick = w->arrivals = w->ka = NULL;
    }
    atomic_fetch_add(&w->run->done, 1);
}

/* ---- /proc samples (main thread) ----------------------------------------------------------- */

/* The number after @p key on its line of @p path ("VmRSS:", "Slab:", "TCP:" + " mem "). */
static long long proc_value(const char *path, const char *key, const char *field)
{
    FILE *f = fopen(path, "r");
    char line[512];
    long long v = -1;

    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, key, strlen(key)) != 0) {
            continue;
        }
        const char *p = line + strlen(key);
        if (field != NULL) {
            p = strstr(p, field);
            if (p == NULL) {
                break;
            }
            p += strlen(field);
        }
        v = strtoll(p, NULL, 10);
        break;
    }
    fclose(f);
    return v;
}

static long long rss_kib(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), pid == 0 ? "/proc/self/status" : "/proc/%d/status", pid);
    return proc_value(path, "VmRSS:", NULL);
}

/* ---- the run (main thread) ----------------------------------------------------------------- */

static void totals(struct hold_run *run, struct hold_totals *t)
{
    memset(t, 0, sizeof(*t));
    t->climb_end_us = 1;
    for (unsigned i = 0; i < run->nworkers; i++) {
        struct hold_worker *w = &run->workers[i];
        t->opened += atomic_load(&w->opened);
        t->open_now += atomic_load(&w->open_now);
        t->ka_done += atomic_load(&w->ka_done);
        t->ka_failed += atomic_load(&w->ka_failed);
        t->not_opened += atomic_load(&w->not_opened);
        for (unsigned k = 0; k < HOLD_NERRS; k++) {
            uint64_t n = atomic_load(&w->errors[k]);
            t->errors[k] += n;
            t->failed += n;
        }
        uint64_t end = atomic_load(&w->climb_end_us);
        if (end == 0 || t->climb_end_us == 0) {
            t->climb_end_us = 0;
        } else if (end > t->climb_end_us) {
            t->climb_end_us = end;
        }
    }
}

static void take_sample(struct hold_run *run, struct hold_report *rep, const char *label)
{
    if (rep->cfg->server_pid == 0 || rep->nsamples == MAX_SAMPLES) {
        return;
    }
    struct hold_totals t;
    totals(run, &t);
    struct hold_sample *s = &rep->samples[rep->nsamples++];
    snprintf(s->label, sizeof(s->label), "%s", label);
    s->t_s = (double)(bench_now_us() - run->t0_us) / 1e6;
    s->open = t.open_now;
    s->rss_kib = rss_kib(rep->cfg->server_pid);
    s->slab_kib = proc_value("/proc/meminfo", "Slab:", NULL);
    s->tcp_pages = proc_value("/proc/net/sockstat", "TCP:", " mem ");
}

static void live_line(FILE *out, const struct hold_report *rep, double t,
                      const struct hold_totals *c, uint64_t opened_before, const bench_hist *ka)
{
    fprintf(out, "[%6.1fs] open %llu (+%llu) failed %llu", t, (unsigned long long)c->open_now,
            (unsigned long long)(c->opened - opened_before), (unsigned long long)c->failed);
    if (c->failed > 0) {
        const char *sep = " (";
        for (unsigned k = 0; k < HOLD_NERRS; k++) {
            if (c->errors[k] > 0) {
                fprintf(out, "%s%s %llu", sep, hold_err_names[k], (unsigned long long)c->errors[k]);
                sep = ", ";
            }
        }
        fputc(')', out);
    }
    if (rep->cfg->keepalive_ms > 0) {
        fprintf(out, " | keep-alive %llu p99 %.2fms", (unsigned long long)ka->count,
                (double)bench_hist_percentile(ka, 99) / 1e3);
    }
    if (rep->cfg->server_pid != 0) {
        long long r = rss_kib(rep->cfg->server_pid);
        fprintf(out, " | server VmRSS %.1f MiB", r < 0 ? -1.0 : (double)r / 1024.0);
    }
    fputc('\n', out);
    fflush(out);
}

static void add_second(struct hold_report *rep, double t, const struct hold_totals *c,
                       uint64_t ka)
{
    if (rep->nseries == rep->cap) {
        size_t cap = rep->cap == 0 ? 64 : rep->cap * 2;
        void *grown = realloc(rep->series, cap * sizeof(*rep->series));
        if (grown == NULL) {
            return;
        }
        rep->series = grown;
        rep->cap = cap;
    }
    rep->series[rep->nseries++] = (struct hold_second){t, c->open_now, c->opened, c->failed, ka};
}

/* Waits @p us for a signal. @return true when one came (a second one exits at once). */
static bool wait_signal(const sigset_t *sigs, uint64_t us, unsigned *signals)
{
    struct timespec ts = {.tv_sec = (time_t)(us / 1000000u),
                          .tv_nsec = (long)(us % 1000000u) * 1000};
    int sig = sigtimedwait(sigs, NULL, &ts);
    if (sig != SIGINT && sig != SIGTERM) {
        return false;
    }
    if (++*signals > 1) {
        fprintf(stderr, "\ntern-bench: stopped at once\n");
        _exit(1);
    }
    return true;
}

/* The climb and the hold, once a second a live line; @return at the end of the hold. */
static void monitor(struct hold_run *run, struct hold_report *rep, FILE *out, bool quiet,
                    const sigset_t *sigs, unsigned *signals)
{
    const struct bench_config *cfg = rep->cfg;
    uint64_t next_sec = 1, opened_before = 0, hold_end = 0;
    unsigned decile = 1;
    bench_hist ka;
    struct hold_totals c;

    bench_hist_reset(&ka);
    for (;;) {
        if (wait_signal(sigs, 20000, signals)) {
            rep->interrupted = true;
            break;
        }
        uint64_t now = bench_now_us();
        totals(run, &c);
        unsigned reached = decile - 1; /* one sample for the last tenth crossed */
        while (reached < 10 && c.opened * 10 >= (uint64_t)cfg->connections * (reached + 1)) {
            reached++;
        }
        if (reached >= decile) {
            char label[8];
            snprintf(label, sizeof(label), "%u%%", reached * 10);
            if (reached == 10) {
                rep->burst = (int)rep->nsamples;
            }
            take_sample(run, rep, label);
            decile = reached + 1;
        }
        if (now >= run->t0_us + next_sec * 1000000u) {
            for (unsigned i = 0; i < run->nworkers; i++) {
                pthread_mutex_lock(&run->workers[i].lock);
                bench_hist_merge(&ka, &run->workers[i].pub_hist);
                bench_hist_reset(&run->workers[i].pub_hist);
                pthread_mutex_unlock(&run->workers[i].lock);
            }
            /* a second that began after this process's last connection opened: the round
             * trips of a steady hold, no handshakes of its own competing for the cores */
            if (c.climb_end_us != 0 && c.climb_end_us <= run->t0_us + (next_sec - 1) * 1000000u) {
                bench_hist_merge(&rep->held_hist, &ka);
            }
            add_second(rep, (double)next_sec, &c, ka.count);
            if (!quiet) {
                live_line(out, rep, (double)next_sec, &c, opened_before, &ka);
            }
            bench_hist_reset(&ka);
            opened_before = c.opened;
            next_sec++;
        }
        if (hold_end == 0 && c.climb_end_us != 0) {
            rep->climb_us = c.climb_end_us > run->t0_us ? c.climb_end_us - run->t0_us : 1;
            if (rep->burst < 0) {
                rep->burst = (int)rep->nsamples;
                take_sample(run, rep, "climbed");
            }
            hold_end = c.climb_end_us + cfg->duration_us;
            fprintf(out, "climbed: %llu of %u open, %llu failed, in %.2f s; holding %.0f s\n",
                    (unsigned long long)c.open_now, cfg->connections,
                    (unsigned long long)c.failed, (double)rep->climb_us / 1e6,
                    (double)cfg->duration_us / 1e6);
            fflush(out);
        }
        if (hold_end != 0 && now >= hold_end) {
            break;
        }
    }
    if (hold_end != 0) {
        uint64_t since = hold_end - cfg->duration_us;
        uint64_t now = bench_now_us();
        rep->held_s = now > since ? (double)(now - since) / 1e6 : 0.0;
    }
}

/* ---- main's entry points ------------------------------------------------------------------- */

unsigned bench_hold_max_connections(unsigned long long *hard)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        *hard = 0;
        return 0;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    *hard = rl.rlim_max == RLIM_INFINITY ? 1000000000ull : (unsigned long long)rl.rlim_max;
    unsigned long long usable = rl.rlim_cur == RLIM_INFINITY ? 1000000000ull : rl.rlim_cur;
    return usable > BENCH_HOLD_FD_MARGIN ? (unsigned)(usable - BENCH_HOLD_FD_MARGIN) : 0;
}

static int init_workers(struct hold_run *run, tern_runtime *rt)
{
    const struct bench_config *cfg = run->cfg;
    unsigned n = tern_runtime_reactor_count(rt);

    run->workers = calloc(n, sizeof(*run->workers));
    if (run->workers == NULL) {
        return TERN_ENOMEM;
    }
    run->nworkers = n;
    atomic_init(&run->done, 0);
    for (unsigned i = 0; i < n; i++) {
        run->workers[i].epfd = -1;
    }
    for (unsigned i = 0; i < n; i++) {
        struct hold_worker *w = &run->workers[i];
        w->run = run;
        w->index = i;
        w->r = tern_runtime_reactor(rt, i);
        pthread_mutex_init(&w->lock, NULL);
        bench_hist_reset(&w->hist);
        bench_hist_reset(&w->ihist);
        bench_hist_reset(&w->pub_hist);
        w->share = cfg->connections / n + (i < cfg->connections % n ? 1 : 0);
        w->max_inflight = cfg->concurrency / n + (i < cfg->concurrency % n ? 1 : 0);
        if (w->max_inflight == 0) {
            w->max_inflight = 1;
        }
        if (cfg->rate > 0) {
            w->period_ns = (uint64_t)(1e9 * n / cfg->rate);
            w->period_ns = w->period_ns > 0 ? w->period_ns : 1;
            w->offset_ns = w->period_ns * i / n;
        }
        w->psk_next = cfg->npsks > 0 ? i % cfg->npsks : 0;
        w->source_next = cfg->nsources > 0 ? i % cfg->nsources : 0;
        w->target_next = cfg->ntargets > 0 ? i % cfg->ntargets : 0;
        w->fds = calloc(w->share > 0 ? w->share : 1, sizeof(*w->fds));
        w->payload = calloc(1, cfg->payload > 0 ? cfg->payload : 1);
        if (w->fds == NULL || w->payload == NULL) {
            return TERN_ENOMEM;
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (w->epfd < 0) {
            return -errno;
        }
        memset(w->payload, 'k', cfg->payload);
        if (w->share == 0) {
            atomic_store(&w->climb_end_us, 1); /* nothing to open */
        }
    }
    return 0;
}

int bench_hold_run(tern_runtime *rt, const struct bench_config *cfg, const char *target_text,
                   const char *tls, FILE *json, const char *json_name, bool quiet,
                   const sigset_t *sigs)
{
    struct hold_run run;
    struct hold_report *rep = calloc(1, sizeof(*rep));
    FILE *out = json == stdout ? stderr : stdout;
    unsigned signals = 0;
    int rc;

    memset(&run, 0, sizeof(run));
    run.cfg = cfg;
    if (rep == NULL || (rc = init_workers(&run, rt)) < 0) {
        fprintf(stderr, "tern-bench: cannot set the workers up: %s\n",
                tern_strerror(rep == NULL ? TERN_ENOMEM : rc));
        tern_runtime_stop(rt, 0);
        tern_runtime_join(rt);
        return 1;
    }
    rep->cfg = cfg;
    rep->target = target_text;
    rep->tls = tls;
    rep->burst = -1;
    rep->max_conns = bench_hold_max_connections(&rep->fd_hard);
    bench_hist_reset(&rep->hist);
    bench_hist_reset(&rep->held_hist);
    rep->client_rss0 = rss_kib(0);
    run.t0_us = bench_now_us();
    take_sample(&run, rep, "start");
    for (unsigned i = 0; i < run.nworkers && rc == 0; i++) {
        rc = tern_reactor_post(run.workers[i].r, start_task, &run.workers[i]);
    }
    if (rc < 0) {
        fprintf(stderr, "tern-bench: cannot start the load: %s\n", tern_strerror(rc));
        rep->interrupted = true;
    } else {
        monitor(&run, rep, out, quiet, sigs, &signals);
    }
    take_sample(&run, rep, "end");
    rep->client_rss1 = rss_kib(0);
    totals(&run, &rep->end);
    for (unsigned i = 0; i < run.nworkers; i++) {
        if (tern_reactor_post(run.workers[i].r, stop_task, &run.workers[i]) < 0) {
            atomic_fetch_add(&run.done, 1); /* its reactor is gone: nothing to close there */
        }
    }
    uint64_t deadline = bench_now_us() + STOP_WAIT_US;
    while (atomic_load(&run.done) < run.nworkers && bench_now_us() < deadline) {
        (void)wait_signal(sigs, 20000, &signals);
    }
    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);

    for (unsigned i = 0; i < run.nworkers; i++) {
        struct hold_worker *w = &run.workers[i];
        bench_hist_merge(&rep->hist, &w->hist);
        rep->kept_sockets += w->kept_sockets;
        rep->cut += w->cut;
        if (rep->negotiated.protocol[0] == '\0') {
            rep->negotiated = w->negotiated;
        }
        for (unsigned k = 0; k < HOLD_NERRS; k++) {
            if (rep->texts[k][0] == '\0') {
                memcpy(rep->texts[k], w->texts[k], sizeof(rep->texts[k]));
            }
        }
    }
    hold_summary(out, rep);
    const struct hold_totals *e = &rep->end;
    int code = e->failed > 0 || e->opened < cfg->connections || rep->interrupted ? 1 : 0;
    if (json != NULL) {
        if (hold_write_json(json, rep) < 0 || (json != stdout && fclose(json) != 0)) {
            fprintf(stderr, "tern-bench: --json %s: %s\n", json_name, strerror(errno));
            code = 1;
        }
    }
    fflush(stdout);
    for (unsigned i = 0; i < run.nworkers; i++) {
        pthread_mutex_destroy(&run.workers[i].lock);
        free(run.workers[i].fds);
        free(run.workers[i].payload);
        if (run.workers[i].epfd >= 0) {
            close(run.workers[i].epfd);
        }
    }
    free(run.workers);
    free(rep->series);
    free(rep);
    return code;
}

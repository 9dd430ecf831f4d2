/* SPDX-License-Identifier: MIT */
/*
 * Servers and the acceptor.
 *
 * Set-up (new, setters, listen) runs on one thread before the runtime starts. At start, each
 * server gets per-reactor counters, and with SO_REUSEPORT one listener per reactor; with a
 * single reactor, that reactor watches the one listener itself (no acceptor thread).
 *
 * Servers are live: while the runtime runs, a server may be created and made to listen (the
 * same preparation, then its listeners are handed to their owners: the acceptor thread is
 * woken through its ev_async, started first if there was none; reactors get a posted task)
 * and closed (each owner stops its watchers and closes its fd on its own thread; a caller
 * off the reactors waits for every owner's confirmation on rt->servers_cond). A server is
 * never unlinked or freed before the runtime: accepted sockets and handed-off descriptors
 * keep pointing at it. rt->servers_lock guards the list and what crosses threads; it is never
 * held while waiting for another thread, and no callback runs under it.
 *
 * The acceptor thread runs its own libev loop with one watcher per (non-reuseport) listener.
 * It accepts with accept4 until EAGAIN (at most a batch per wake-up, for fairness), picks a
 * reactor (round robin, or least connections from its own `dispatched` counts minus the
 * reactors' `finished` counts: exact, no shared read-modify-write), and puts the descriptor
 * on that reactor's SPSC hand-off ring. The reactor adopts it as a socket and calls the
 * server's `incoming` callback.
 *
 * EMFILE/ENFILE/ENOBUFS/ENOMEM: the listener stops watching, counts it, and resumes after
 * emfile_backoff_ms. Pending connections wait in the kernel's backlog; nothing spins.
 */
#include "reactor.h"
#include "rt.h"
#include "server.h"
#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ACCEPT_BATCH 256
#define DEFAULT_READ_BUFFER (256 * 1024)
/* How long a live listen or close off the reactors waits for the listeners' owners (a full
 * mailbox retried, the close confirmed) before it gives up with TERN_E_QUEUE_FULL or
 * TERN_ETIMEDOUT. Owners answer within one loop turn unless a callback blocks them. */
#define LIVE_WAIT_MS 5000

static void seterr(tern_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(tern_server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(srv->errstr, sizeof(srv->errstr), fmt, ap);
    va_end(ap);
}

int tern__servers_lock_init(tern_runtime *rt)
{
    pthread_condattr_t ca;

    if (pthread_mutex_init(&rt->servers_lock, NULL) != 0) {
        return TERN_ENOMEM;
    }
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&rt->servers_lock);
        return TERN_ENOMEM;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&rt->servers_cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&rt->servers_lock);
        return TERN_ENOMEM;
    }
    return 0;
}

void tern__servers_lock_destroy(tern_runtime *rt)
{
    pthread_cond_destroy(&rt->servers_cond);
    pthread_mutex_destroy(&rt->servers_lock);
}

static void lock(tern_runtime *rt)
{
    pthread_mutex_lock(&rt->servers_lock);
}

static void unlock(tern_runtime *rt)
{
    pthread_mutex_unlock(&rt->servers_lock);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The reactor of @p rt this thread runs, or NULL. */
static tern_reactor *self_reactor(const tern_runtime *rt)
{
    tern_reactor *r = tern_reactor_current();
    return r != NULL && r->rt == rt ? r : NULL;
}

/* Whether @p srv's listeners are its reactors' own (SO_REUSEPORT, or a single reactor)
 * rather than the acceptor thread's. Meaningful once the runtime started. */
static bool per_reactor_mode(const tern_server *srv)
{
    return srv->reuseport || srv->rt->nreactors == 1;
}

tern_server *tern_server_new(tern_runtime *rt, tern_ssl_config *cfg,
                             tern_server_incoming_fn incoming, void *user)
{
    if (rt == NULL || incoming == NULL) {
        return NULL;
    }
    tern_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return NULL;
    }
    srv->rt = rt;
    atomic_init(&srv->cfg, cfg);
    if (cfg != NULL) {
        /* tern_ssl_config starts with a tern__object: a reference, and it is frozen now */
        tern__object_ref((tern__object *)cfg);
        atomic_store(&((tern__object *)cfg)->frozen, true);
    }
    srv->incoming = incoming;
    srv->user = user;
    srv->backlog = 1024;
    srv->policy = TERN_BALANCE_ROUND_ROBIN;
    srv->read_buffer_size = DEFAULT_READ_BUFFER;
    srv->main.fd = -1;
    srv->main.srv = srv;
    lock(rt);
    srv->next = rt->servers;
    rt->servers = srv;
    unlock(rt);
    return srv;
}

#define SETUP_CHECK(srv)                                                                        \
    do {                                                                                       \
        if ((srv) == NULL) {                                                                   \
            return TERN_EINVAL;                                                                \
        }                                                                                      \
        if ((srv)->listening || (srv)->closed) {                                               \
            seterr((srv), "settings are frozen once the server listens or is closed");        \
            return TERN_EBUSY;                                                                 \
        }                                                                                      \
    } while (0)

int tern_server_set_backlog(tern_server *srv, int backlog)
{
    SETUP_CHECK(srv);
    if (backlog < 1 || backlog > 65535) {
        seterr(srv, "backlog: %d is out of range 1..65535", backlog);
        return TERN_EINVAL;
    }
    srv->backlog = backlog;
    return 0;
}

int tern_server_set_balance_policy(tern_server *srv, enum tern_balance_policy policy)
{
    SETUP_CHECK(srv);
    if (policy != TERN_BALANCE_ROUND_ROBIN && policy != TERN_BALANCE_LEAST_CONNECTIONS) {
        seterr(srv, "unknown balance policy %d", (int)policy);
        return TERN_EINVAL;
    }
    srv->policy = policy;
    return 0;
}

int tern_server_set_reuseport(tern_server *srv, bool on)
{
    SETUP_CHECK(srv);
    srv->reuseport = on;
    return 0;
}

int tern_server_set_max_connections(tern_server *srv, unsigned n)
{
    SETUP_CHECK(srv);
    srv->max_connections = n;
    return 0;
}

int tern_server_set_idle_timeout(tern_server *srv, uint32_t ms)
{
    SETUP_CHECK(srv);
    srv->idle_timeout_ms = ms;
    return 0;
}

int tern_server_set_hibernate_after(tern_server *srv, uint32_t ms)
{
    SETUP_CHECK(srv);
    srv->hibernate_after_ms = ms;
    return 0;
}

int tern_server_set_read_buffer_size(tern_server *srv, size_t bytes)
{
    SETUP_CHECK(srv);
    srv->read_buffer_size = bytes;
    return 0;
}

uint16_t tern_server_port(const tern_server *srv)
{
    return srv != NULL ? atomic_load_explicit(&srv->port, memory_order_relaxed) : 0;
}

const char *tern_server_error_string(const tern_server *srv)
{
    return srv != NULL ? srv->errstr : "";
}

tern_runtime *tern_server_runtime(const tern_server *srv)
{
    return srv->rt;
}

/* ---- addresses ------------------------------------------------------------------------------ */

int tern_parse_host_port(const char *address, char *host, size_t host_len, uint16_t *port)
{
    const char *colon, *h = address;
    size_t hlen;

    if (address == NULL || host == NULL || port == NULL) {
        return TERN_EINVAL;
    }
    if (address[0] == '[') {
        const char *close = strchr(address, ']');
        if (close == NULL || close[1] != ':') {
            return TERN_E_ADDRESS;
        }
        h = address + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0) {
            return TERN_E_ADDRESS;
        }
    } else {
        colon = strrchr(address, ':');
        if (colon == NULL || memchr(address, ':', (size_t)(colon - address)) != NULL) {
            return TERN_E_ADDRESS; /* no port, or a bare IPv6 literal without brackets */
        }
        hlen = (size_t)(colon - address);
        if (hlen == 1 && address[0] == '*') {
            hlen = 0;
        }
    }
    const char *p = colon + 1;
    if (*p == '\0' || strlen(p) > 5) {
        return TERN_E_ADDRESS;
    }
    unsigned long v = 0;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return TERN_E_ADDRESS;
        }
        v = v * 10 + (unsigned long)(*p - '0');
    }
    if (v > 65535) {
        return TERN_E_ADDRESS;
    }
    if (hlen + 1 > host_len) {
        return TERN_ENOBUFS;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}

static int resolve_listen(tern_server *srv, const char *host, uint16_t port)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];

    if (host == NULL || host[0] == '\0' || strcmp(host, "*") == 0) {
        struct sockaddr_in *in = (struct sockaddr_in *)&srv->addr;
        memset(&srv->addr, 0, sizeof(srv->addr));
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        srv->addrlen = sizeof(*in);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0 || res == NULL) {
        seterr(srv, "listen %s:%u: cannot resolve host: %s", host, port,
               gai != 0 ? gai_strerror(gai) : "no address");
        return TERN_E_ADDRESS;
    }
    memcpy(&srv->addr, res->ai_addr, res->ai_addrlen);
    srv->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int open_listener(tern_server *srv, int *out)
{
    char name[64];
    int one = 1;
    int fd = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc;

    tern__format_sockaddr((struct sockaddr *)&srv->addr, name, sizeof(name));
    if (fd < 0) {
        rc = tern__errno();
        seterr(srv, "listen %s: socket: %s", name, tern_strerror(rc));
        return rc;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited when accepted */
    if (srv->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        rc = tern__errno();
        seterr(srv, "listen %s: SO_REUSEPORT: %s", name, tern_strerror(rc));
        close(fd);
        return rc;
    }
    if (bind(fd, (struct sockaddr *)&srv->addr, srv->addrlen) < 0) {
        rc = tern__errno();
        seterr(srv, "listen %s: bind: %s", name, tern_strerror(rc));
        close(fd);
        return rc;
    }
    if (listen(fd, srv->backlog) < 0) {
        rc = tern__errno();
        seterr(srv, "listen %s: %s", name, tern_strerror(rc));
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static int publish(tern_server *srv, int fd);

/* A listen call while the runtime runs: refused once it stops (nothing would accept). */
static int live_check(tern_server *srv)
{
    if (srv->rt->started && atomic_load(&srv->rt->stopping) > 0) {
        seterr(srv, "the runtime is stopping");
        return TERN_E_STOPPED;
    }
    return 0;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

int tern_server_listen(tern_server *srv, const char *host, uint16_t port)
{
    int rc, fd;

    SETUP_CHECK(srv);
    if ((rc = live_check(srv)) < 0 || (rc = resolve_listen(srv, host, port)) < 0) {
        return rc;
    }
    if ((rc = open_listener(srv, &fd)) < 0) {
        return rc;
    }
    /* with port 0 the kernel chose: later SO_REUSEPORT listeners bind the same one */
    socklen_t len = srv->addrlen;
    getsockname(fd, (struct sockaddr *)&srv->addr, &len);
    if ((rc = publish(srv, fd)) < 0) {
        close(fd);
        return rc;
    }
    return 0;
}

int tern_server_listen_fd(tern_server *srv, int fd)
{
    int type = 0, listening = 0;
    socklen_t tl = sizeof(type), ll = sizeof(listening);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    SETUP_CHECK(srv);
    if (srv->reuseport) {
        seterr(srv, "listen fd %d: not with reuseport (one listener per reactor)", fd);
        return TERN_EINVAL;
    }
    int rc0 = live_check(srv);
    if (rc0 < 0) {
        return rc0;
    }
    int fl = fd >= 0 ? fcntl(fd, F_GETFL) : -1;
    if (fl < 0) {
        seterr(srv, "listen fd %d: not an open descriptor", fd);
        return TERN_EINVAL;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM) {
        seterr(srv, "listen fd %d: not a stream socket", fd);
        return TERN_EINVAL;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || listening == 0) {
        seterr(srv, "listen fd %d: not listening", fd);
        return TERN_EINVAL;
    }
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0 ||
        (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
        seterr(srv, "listen fd %d: not an IPv4 or IPv6 socket", fd);
        return TERN_EINVAL;
    }
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int rc = tern__errno();
        seterr(srv, "listen fd %d: O_NONBLOCK: %s", fd, tern_strerror(rc));
        return rc;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited when accepted */
    srv->addr = ss;
    srv->addrlen = len;
    return publish(srv, fd); /* on failure the fd stays the caller's */
}

int tern_server_listen_address(tern_server *srv, const char *address)
{
    char host[256];
    uint16_t port;

    if (srv == NULL) {
        return TERN_EINVAL;
    }
    int rc = tern_parse_host_port(address, host, sizeof(host), &port);
    if (rc < 0) {
        seterr(srv, "listen address \"%s\": expected host:port, [ipv6]:port or :port",
               address != NULL ? address : "(null)");
        return TERN_E_ADDRESS;
    }
    return tern_server_listen(srv, host, port);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static uint64_t open_on(const tern_server *srv, unsigned k)
{
    return tern__read(&srv->dispatched[k]) - tern__read(&srv->finished[k]);
}

static void pause_listener(tern__listener *l, _Atomic uint64_t *counter)
{
    if (counter != NULL) {
        tern__count(counter, 1);
    }
    tern__count(&l->counters->accept_paused, 1);
    ev_io_stop(l->loop, &l->io);
    ev_timer_set(&l->backoff, l->srv->rt->opts.emfile_backoff_ms / 1000.0, 0.0);
    ev_timer_start(l->loop, &l->backoff);
}

static void on_backoff(struct ev_loop *loop, ev_timer *w, int revents)
{
    tern__listener *l = w->data;
    if (l->fd >= 0) {
        ev_io_start(loop, &l->io);
    }
}

/* A descriptor from the acceptor thread (its peer's address in @p h): pick a reactor and
 * hand it over. */
static void dispatch(tern__listener *l, struct tern__handoff *h)
{
    int fd = h->fd;
    tern_server *srv = h->srv;
    tern_runtime *rt = srv->rt;
    unsigned n = rt->nreactors, k;

    if (srv->max_connections > 0) {
        uint64_t open = 0;
        for (unsigned i = 0; i < n; i++) {
            open += open_on(srv, i);
        }
        if (open >= srv->max_connections) {
            close(fd);
            tern__count(&l->counters->rejected, 1);
            return;
        }
    }
    if (srv->policy == TERN_BALANCE_LEAST_CONNECTIONS) {
        uint64_t best = UINT64_MAX;
        k = 0;
        for (unsigned j = 0; j < n; j++) {
            unsigned i = (srv->next_rr + j) % n; /* rotate the start: spread ties */
            uint64_t o = open_on(srv, i);
            if (o < best) {
                best = o;
                k = i;
            }
        }
        srv->next_rr = (k + 1) % n;
    } else {
        k = srv->next_rr;
        srv->next_rr = (k + 1) % n;
    }
    tern_reactor *r = rt->reactors[k];
    if (tern__handoff_put_sp(&r->mailbox, h) < 0) {
        close(fd);
        tern__count(&l->counters->handoff_full, 1);
        return;
    }
    tern__count(&srv->dispatched[k], 1);
    ev_async_send(r->loop, &r->wake);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    tern__listener *l = container_of(w, tern__listener, io);

    for (int i = 0; i < ACCEPT_BATCH; i++) {
        if (l->fd < 0) {
            return; /* an incoming callback closed the server */
        }
        /* the peer's address comes with the accept, for free: `incoming` asking for it (a
         * gateway logs it) then costs no getpeername */
        struct tern__handoff h;
        h.peer_len = sizeof(h.peer);
        int fd = accept4(l->fd, &h.peer.sa, &h.peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            switch (errno) {
            case EAGAIN:
                return;
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
            case EPERM: /* firewall */
                tern__count(&l->counters->accept_other, 1);
                continue;
            case EMFILE:
                pause_listener(l, &l->counters->accept_emfile);
                return;
            case ENFILE:
                pause_listener(l, &l->counters->accept_enfile);
                return;
            case ENOBUFS:
            case ENOMEM:
                pause_listener(l, &l->counters->accept_enomem);
                return;
            default:
                pause_listener(l, &l->counters->accept_other);
                return;
            }
        }
        h.fd = fd;
        h.srv = l->srv;
        if (h.peer_len > sizeof(h.peer)) {
            h.peer_len = 0; /* not IPv4 or IPv6: asked for when wanted */
        }
        if (l->owner == NULL) {
            dispatch(l, &h);
            continue;
        }
        /* SO_REUSEPORT: this reactor accepted it and keeps it */
        tern_server *srv = l->srv;
        if (srv->max_connections > 0) {
            uint64_t open = 0;
            for (unsigned j = 0; j < srv->rt->nreactors; j++) {
                open += open_on(srv, j);
            }
            if (open >= srv->max_connections) {
                close(fd);
                tern__count(&l->counters->rejected, 1);
                continue;
            }
        }
        tern__count(&srv->dispatched[l->owner->index], 1);
        tern__server_adopt(l->owner, &h);
    }
}

static void listener_init(tern__listener *l, tern_server *srv, tern_reactor *owner,
                          struct ev_loop *loop, tern__counters *counters)
{
    l->srv = srv;
    l->owner = owner;
    l->loop = loop;
    l->counters = counters;
    ev_io_init(&l->io, on_accept, l->fd, EV_READ);
    ev_init(&l->backoff, on_backoff);
    l->backoff.data = l;
}

/* Stops watching and closes: on the listener's owner, or once nothing runs its loop; while
 * the runtime runs, with servers_lock held (another thread may be waiting for the fd). */
static void listener_close(tern__listener *l)
{
    if (l->loop != NULL) {
        ev_io_stop(l->loop, &l->io);
        ev_timer_stop(l->loop, &l->backoff);
    }
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
}

/* ---- preparing and publishing listeners ---------------------------------------------------- */

/* Undoes server_prepare (its extra listeners; not the first fd, which is the caller's). */
static void server_unprepare(tern_server *srv, tern__listener *pr)
{
    if (pr != NULL) {
        for (unsigned i = 1; i < srv->rt->nreactors; i++) {
            if (pr[i].fd >= 0) {
                close(pr[i].fd);
            }
        }
        free(pr);
    }
    free(srv->dispatched);
    free((void *)srv->finished);
    srv->dispatched = NULL;
    srv->finished = NULL;
}

/* The per-reactor counters of @p srv and, when its reactors accept themselves, one listener
 * per reactor in *@p out (the first on @p fd, the others bound to the same address with
 * SO_REUSEPORT). Nothing is visible to other threads yet: the caller publishes. */
static int server_prepare(tern_server *srv, int fd, tern__listener **out)
{
    tern_runtime *rt = srv->rt;
    unsigned n = rt->nreactors;
    int rc;

    *out = NULL;
    srv->dispatched = calloc(n, sizeof(*srv->dispatched));
    srv->finished = calloc(n, sizeof(*srv->finished));
    if (srv->dispatched == NULL || srv->finished == NULL) {
        server_unprepare(srv, NULL);
        seterr(srv, "listen: out of memory");
        return TERN_ENOMEM;
    }
    /* One reactor accepts on the listener itself: no acceptor thread, no hand-off (a
     * thread wake-up and a ring per connection saved); several share the port with
     * SO_REUSEPORT when asked, else the acceptor thread deals connections out. */
    if (!per_reactor_mode(srv)) {
        return 0;
    }
    tern__listener *pr = calloc(n, sizeof(*pr));
    if (pr == NULL) {
        server_unprepare(srv, NULL);
        seterr(srv, "listen: out of memory");
        return TERN_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        pr[i].fd = -1;
    }
    pr[0].fd = fd;
    for (unsigned i = 1; i < n; i++) {
        if ((rc = open_listener(srv, &pr[i].fd)) < 0) {
            server_unprepare(srv, pr);
            return rc;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        tern_reactor *r = rt->reactors[i];
        listener_init(&pr[i], srv, r, r->loop, &r->counters);
    }
    *out = pr;
    return 0;
}

int tern__servers_prepare(tern_runtime *rt)
{
    int rc = 0;

    lock(rt);
    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        tern__listener *pr;
        if (!srv->listening || srv->main.fd < 0) {
            continue; /* not listening, or closed before the start */
        }
        if ((rc = server_prepare(srv, srv->main.fd, &pr)) < 0) {
            tern__runtime_seterr(rt, "%s", srv->errstr);
            break;
        }
        if (pr != NULL) {
            srv->main.fd = -1;
            srv->per_reactor = pr;
        }
    }
    unlock(rt);
    return rc;
}

static void on_acceptor_wake(struct ev_loop *loop, ev_async *w, int revents);
static void *acceptor_main(void *arg);

/* Creates the acceptor's loop and thread unless there are already. With servers_lock held
 * (or before start). */
static int acceptor_spawn_locked(tern_runtime *rt)
{
    if (rt->acceptor_loop != NULL) {
        return 0;
    }
    rt->acceptor_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (rt->acceptor_loop == NULL) {
        return TERN_ENOMEM;
    }
    ev_async_init(&rt->acceptor_wake, on_acceptor_wake);
    rt->acceptor_wake.data = rt;
    ev_async_start(rt->acceptor_loop, &rt->acceptor_wake);
    int rc = pthread_create(&rt->acceptor_thread, NULL, acceptor_main, rt);
    if (rc != 0) {
        ev_loop_destroy(rt->acceptor_loop);
        rt->acceptor_loop = NULL;
        return -rc;
    }
    rt->acceptor_started = true;
    return 0;
}

/* On reactor @p r, with servers_lock held: watch listener @p i of @p srv, unless the reactor
 * drains or the server was closed meanwhile. */
static void listener_start_locked(tern_reactor *r, tern_server *srv, unsigned i)
{
    tern__listener *l = &srv->per_reactor[i];
    if (!r->draining && !l->close_sent && l->fd >= 0) {
        ev_io_start(r->loop, &l->io);
    }
}

static void listener_start_task(tern_reactor *r, void *arg, void *arg2)
{
    tern_server *srv = arg;

    if (r == NULL) {
        return; /* the reactor stopped: its stop closed the listener */
    }
    lock(srv->rt);
    listener_start_locked(r, srv, (unsigned)(uintptr_t)arg2);
    unlock(srv->rt);
}

static void listener_close_task(tern_reactor *r, void *arg, void *arg2)
{
    tern_server *srv = arg;

    /* r == NULL: run by the joining thread after the reactor's loop ended; the close is the
     * same (its stop has closed it already) */
    lock(srv->rt);
    listener_close(&srv->per_reactor[(uintptr_t)arg2]);
    pthread_cond_broadcast(&srv->rt->servers_cond);
    unlock(srv->rt);
}

/* Hands a server's reactor listeners to their reactors (posted; this thread's own at once). */
static int start_on_reactors(tern_server *srv)
{
    tern_runtime *rt = srv->rt;
    tern_reactor *self = self_reactor(rt);
    uint64_t deadline = mono_ms() + LIVE_WAIT_MS;

    for (unsigned i = 0; i < rt->nreactors; i++) {
        if (self != NULL && self->index == i) {
            lock(rt);
            listener_start_locked(self, srv, i);
            unlock(rt);
            continue;
        }
        for (;;) {
            int rc = tern__reactor_post2(rt->reactors[i], listener_start_task, srv,
                                         (void *)(uintptr_t)i);
            if (rc == 0 || rc == TERN_E_STOPPED) {
                break; /* stopped: that reactor's stop closed its listener */
            }
            /* a full mailbox: wait for room, but never on a reactor (it may be ours) */
            if (rc != TERN_E_QUEUE_FULL || self != NULL || mono_ms() >= deadline) {
                tern_server_close(srv);
                seterr(srv, "listen: reactor %u: %s (the server is closed)", i,
                       tern_strerror(rc));
                return rc;
            }
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
    }
    return 0;
}

/* Makes @p fd, listening on srv->addr, the server's: before start, kept for the start; while
 * the runtime runs, prepared and handed to whoever accepts. On failure @p fd stays open. */
static int publish(tern_server *srv, int fd)
{
    tern_runtime *rt = srv->rt;
    tern__listener *pr = NULL;
    int rc;

    if (!rt->started) {
        srv->main.fd = fd;
        atomic_store_explicit(&srv->port, addr_port(&srv->addr), memory_order_relaxed);
        srv->listening = true;
        return 0;
    }
    if ((rc = server_prepare(srv, fd, &pr)) < 0) {
        return rc;
    }
    lock(rt);
    if (srv->closed || atomic_load(&rt->stopping) > 0) {
        rc = srv->closed ? TERN_EBUSY : TERN_E_STOPPED;
        seterr(srv, "listen: %s", srv->closed ? "the server is closed" : "the runtime is stopping");
        goto fail;
    }
    if (pr == NULL && (rc = acceptor_spawn_locked(rt)) < 0) {
        seterr(srv, "listen: acceptor thread: %s", tern_strerror(rc));
        goto fail;
    }
    atomic_store_explicit(&srv->port, addr_port(&srv->addr), memory_order_relaxed);
    srv->per_reactor = pr;
    if (pr == NULL) {
        srv->main.fd = fd;
        ev_async_send(rt->acceptor_loop, &rt->acceptor_wake); /* it picks the listener up */
    }
    srv->listening = true;
    unlock(rt);
    return pr != NULL ? start_on_reactors(srv) : 0;

fail:
    unlock(rt);
    server_unprepare(srv, pr);
    return rc;
}

/* ---- closing --------------------------------------------------------------------------------- */

static bool all_closed_locked(const tern_server *srv)
{
    if (srv->per_reactor == NULL) {
        return srv->main.fd < 0;
    }
    for (unsigned i = 0; i < srv->rt->nreactors; i++) {
        if (srv->per_reactor[i].fd >= 0) {
            return false;
        }
    }
    return true;
}

/* Asks each owner not asked yet to close its listener (this reactor's own: at once).
 * @return 0, or TERN_E_QUEUE_FULL if a mailbox had no room (those are asked next time). */
static int send_closes_locked(tern_server *srv, tern_reactor *self)
{
    tern_runtime *rt = srv->rt;
    int rc = 0;

    if (srv->per_reactor == NULL) {
        tern__listener *l = &srv->main;
        if (!l->close_sent) {
            l->close_sent = true;
            if (rt->acceptor_loop != NULL && !rt->acceptor_exited) {
                ev_async_send(rt->acceptor_loop, &rt->acceptor_wake);
            } else {
                listener_close(l); /* nothing watches it */
            }
        }
        return 0;
    }
    for (unsigned i = 0; i < rt->nreactors; i++) {
        tern__listener *l = &srv->per_reactor[i];
        if (l->close_sent) {
            continue;
        }
        if (self != NULL && self->index == i) {
            listener_close(l);
            l->close_sent = true;
            continue;
        }
        int prc = tern__reactor_post2(rt->reactors[i], listener_close_task, srv,
                                      (void *)(uintptr_t)i);
        if (prc == 0 || prc == TERN_E_STOPPED) {
            l->close_sent = true; /* stopped: that reactor's stop closed it */
        } else {
            rc = prc;
        }
    }
    return rc;
}

int tern_server_close(tern_server *srv)
{
    if (srv == NULL) {
        return TERN_EINVAL;
    }
    tern_runtime *rt = srv->rt;
    tern_reactor *self = self_reactor(rt);
    uint64_t deadline = mono_ms() + LIVE_WAIT_MS;
    int rc = 0;

    lock(rt);
    srv->closed = true;
    if (!srv->listening) {
        unlock(rt);
        return 0;
    }
    if (!rt->started) {
        listener_close(&srv->main); /* set-up: nothing watches it yet */
        unlock(rt);
        return 0;
    }
    for (;;) {
        rc = send_closes_locked(srv, self);
        if (self != NULL) {
            break; /* a reactor never waits for another thread: the rest happens there */
        }
        if (all_closed_locked(srv)) {
            rc = 0;
            break;
        }
        uint64_t now = mono_ms();
        if (now >= deadline) {
            rc = rc < 0 ? rc : TERN_ETIMEDOUT;
            break;
        }
        uint64_t until = rc < 0 ? now + 1 : deadline; /* a full mailbox: ask again soon */
        struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000};
        pthread_cond_timedwait(&rt->servers_cond, &rt->servers_lock, &ts);
    }
    unlock(rt);
    return rc;
}

/* ---- swapping the TLS configuration ---------------------------------------------------------- */

/* An old configuration waiting for every reactor to run past its swap: a reactor reads
 * srv->cfg and refs what it read within one callback, so once each has run a task posted
 * after the swap, none can still hold the old pointer unreferenced. */
struct tern__cfg_retire {
    struct tern__cfg_retire *next; /* srv->parked */
    tern__object *old;
    _Atomic unsigned left; /* reactors to go, plus one held by the swapping call */
};

static void retire_step(struct tern__cfg_retire *x)
{
    if (atomic_fetch_sub_explicit(&x->left, 1, memory_order_acq_rel) == 1) {
        tern__object_unref(x->old);
        free(x);
    }
}

static void retire_task(tern_reactor *r, void *arg, void *arg2)
{
    retire_step(arg); /* r == NULL (run at join) counts too: that reactor reads no more */
}

int tern_server_set_ssl_config(tern_server *srv, tern_ssl_config *cfg)
{
    if (srv == NULL) {
        return TERN_EINVAL;
    }
    tern_runtime *rt = srv->rt;
    struct tern__cfg_retire *ret = calloc(1, sizeof(*ret));
    if (ret == NULL) {
        seterr(srv, "ssl config: out of memory");
        return TERN_ENOMEM;
    }
    if (cfg != NULL) {
        tern__object_ref((tern__object *)cfg);
        atomic_store(&((tern__object *)cfg)->frozen, true);
    }
    ret->old = (tern__object *)atomic_exchange(&srv->cfg, cfg);
    if (ret->old == NULL || !rt->started) {
        tern__object_unref(ret->old); /* nothing runs yet (or there was none) */
        free(ret);
        return 0;
    }
    tern_reactor *self = self_reactor(rt);
    uint64_t deadline = mono_ms() + LIVE_WAIT_MS;
    bool parked = false;
    atomic_init(&ret->left, rt->nreactors + 1);
    for (unsigned i = 0; i < rt->nreactors && !parked; i++) {
        if (self != NULL && self->index == i) {
            retire_step(ret); /* this reactor runs this call: it reads nothing meanwhile */
            continue;
        }
        for (;;) {
            int rc = tern__reactor_post2(rt->reactors[i], retire_task, ret, NULL);
            if (rc == 0) {
                break;
            }
            if (rc == TERN_E_STOPPED) {
                retire_step(ret); /* that reactor runs no more */
                break;
            }
            if (self != NULL || mono_ms() >= deadline) {
                /* a mailbox stays full: keep the old configuration with the runtime; the
                 * hold of this call is never dropped, so the tasks already posted cannot
                 * free it either */
                lock(rt);
                ret->next = srv->parked;
                srv->parked = ret;
                unlock(rt);
                parked = true;
                break;
            }
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
    }
    if (!parked) {
        retire_step(ret);
    }
    return 0;
}

/* ---- reactors' own listeners ----------------------------------------------------------------- */

void tern__server_reactor_start(tern_reactor *r)
{
    lock(r->rt);
    for (tern_server *srv = r->rt->servers; srv != NULL; srv = srv->next) {
        if (srv->per_reactor != NULL) {
            listener_start_locked(r, srv, r->index);
        }
    }
    unlock(r->rt);
}

void tern__server_reactor_stop(tern_reactor *r)
{
    lock(r->rt);
    for (tern_server *srv = r->rt->servers; srv != NULL; srv = srv->next) {
        if (srv->per_reactor != NULL) {
            listener_close(&srv->per_reactor[r->index]);
        }
    }
    pthread_cond_broadcast(&r->rt->servers_cond);
    unlock(r->rt);
}

/* ---- the acceptor thread --------------------------------------------------------------------- */

/* Stop requests, listeners to watch (new servers) and listeners to close (closed servers). */
static void on_acceptor_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    tern_runtime *rt = w->data;
    bool stop = atomic_load(&rt->stopping) > 0;

    lock(rt);
    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        tern__listener *l = &srv->main;
        if (!srv->listening || srv->per_reactor != NULL) {
            continue;
        }
        if (stop || l->close_sent) {
            listener_close(l);
        } else if (l->fd >= 0 && l->loop == NULL) {
            listener_init(l, srv, NULL, loop, &rt->acceptor_counters);
            ev_io_start(loop, &l->io);
        }
    }
    if (stop) {
        rt->acceptor_exited = true;
    }
    pthread_cond_broadcast(&rt->servers_cond);
    unlock(rt);
    if (stop) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *acceptor_main(void *arg)
{
    tern_runtime *rt = arg;

    on_acceptor_wake(rt->acceptor_loop, &rt->acceptor_wake, 0); /* its listeners; an early stop */
    ev_run(rt->acceptor_loop, 0);
    return NULL;
}

int tern__acceptor_start(tern_runtime *rt)
{
    bool needed = false;
    int rc = 0;

    lock(rt);
    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        needed |= srv->listening && srv->per_reactor == NULL && srv->main.fd >= 0;
    }
    if (needed && (rc = acceptor_spawn_locked(rt)) < 0) {
        tern__runtime_seterr(rt, "acceptor thread: %s", tern_strerror(rc));
    }
    unlock(rt);
    return rc;
}

void tern__acceptor_stop(tern_runtime *rt)
{
    lock(rt);
    if (rt->acceptor_loop != NULL) {
        ev_async_send(rt->acceptor_loop, &rt->acceptor_wake);
    }
    unlock(rt);
}

/* Joins the acceptor thread if one runs. Called again after the reactors are joined: a server
 * that listened while the runtime ran may have started it after the first call. */
void tern__acceptor_join(tern_runtime *rt)
{
    lock(rt);
    bool started = rt->acceptor_started;
    rt->acceptor_started = false;
    unlock(rt);
    if (started) {
        pthread_join(rt->acceptor_thread, NULL);
    }
}

/* ---- on the reactors -------------------------------------------------------------------------- */

void tern__server_adopt(tern_reactor *r, const struct tern__handoff *h)
{
    tern_server *srv = h->srv;
    int fd = h->fd;

    if (r->draining) {
        close(fd);
        tern__server_free_fd(srv, r->index);
        return;
    }
    if (tern__socket_adopt(r, h) < 0) {
        close(fd);
        tern__server_free_fd(srv, r->index);
        tern__count(&r->counters.resets, 1);
    }
}

void tern__server_free_fd(tern_server *srv, unsigned reactor_index)
{
    tern__count(&srv->finished[reactor_index], 1);
}

void tern__servers_free(tern_runtime *rt)
{
    tern_server *srv = rt->servers;

    while (srv != NULL) {
        tern_server *next = srv->next;
        listener_close(&srv->main);
        if (srv->per_reactor != NULL) {
            for (unsigned i = 0; i < rt->nreactors; i++) {
                listener_close(&srv->per_reactor[i]);
            }
        }
        tern__object_unref((tern__object *)atomic_load(&srv->cfg));
        while (srv->parked != NULL) {
            struct tern__cfg_retire *p = srv->parked;
            srv->parked = p->next;
            tern__object_unref(p->old);
            free(p);
        }
        free(srv->per_reactor);
        free(srv->dispatched);
        free((void *)srv->finished);
        free(srv);
        srv = next;
    }
    rt->servers = NULL;
    if (rt->acceptor_loop != NULL) {
        ev_loop_destroy(rt->acceptor_loop);
        rt->acceptor_loop = NULL;
    }
}

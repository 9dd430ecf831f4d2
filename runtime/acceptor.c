/* SPDX-License-Identifier: MIT */
/*
 * Servers and the acceptor.
 *
 * Set-up (new, setters, listen) runs on one thread before the runtime starts. At start, each
 * server gets per-reactor counters, and with SO_REUSEPORT one listener per reactor; with a
 * single reactor, that reactor watches the one listener itself (no acceptor thread).
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

#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACCEPT_BATCH 256
#define DEFAULT_READ_BUFFER (256 * 1024)

static void seterr(tern_server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(tern_server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(srv->errstr, sizeof(srv->errstr), fmt, ap);
    va_end(ap);
}

tern_server *tern_server_new(tern_runtime *rt, tern_ssl_config *cfg,
                             tern_server_incoming_fn incoming, void *user)
{
    if (rt == NULL || incoming == NULL || rt->started) {
        return NULL;
    }
    tern_server *srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        return NULL;
    }
    srv->rt = rt;
    srv->cfg = cfg;
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
    srv->next = rt->servers;
    rt->servers = srv;
    return srv;
}

#define SETUP_CHECK(srv)                                                                        \
    do {                                                                                       \
        if ((srv) == NULL) {                                                                   \
            return TERN_EINVAL;                                                                \
        }                                                                                      \
        if ((srv)->listening || (srv)->rt->started) {                                          \
            seterr((srv), "settings are frozen once the server listens");                     \
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

int tern_server_set_read_buffer_size(tern_server *srv, size_t bytes)
{
    SETUP_CHECK(srv);
    srv->read_buffer_size = bytes;
    return 0;
}

uint16_t tern_server_port(const tern_server *srv)
{
    return srv != NULL ? srv->port : 0;
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

int tern_server_listen(tern_server *srv, const char *host, uint16_t port)
{
    int rc;

    SETUP_CHECK(srv);
    if ((rc = resolve_listen(srv, host, port)) < 0) {
        return rc;
    }
    if ((rc = open_listener(srv, &srv->main.fd)) < 0) {
        return rc;
    }
    /* with port 0 the kernel chose: later SO_REUSEPORT listeners bind the same one */
    socklen_t len = srv->addrlen;
    getsockname(srv->main.fd, (struct sockaddr *)&srv->addr, &len);
    srv->port = ntohs(srv->addr.ss_family == AF_INET6
                          ? ((struct sockaddr_in6 *)&srv->addr)->sin6_port
                          : ((struct sockaddr_in *)&srv->addr)->sin_port);
    srv->listening = true;
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
    srv->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    srv->main.fd = fd;
    srv->listening = true;
    return 0;
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

/* A descriptor from the acceptor thread: pick a reactor and hand it over. */
static void dispatch(tern__listener *l, int fd)
{
    tern_server *srv = l->srv;
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
    if (tern__handoff_put_sp(&r->mailbox, fd, srv) < 0) {
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
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
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
        if (l->owner == NULL) {
            dispatch(l, fd);
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
        tern__server_adopt(l->owner, srv, fd);
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

int tern__servers_prepare(tern_runtime *rt)
{
    unsigned n = rt->nreactors;

    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        srv->dispatched = calloc(n, sizeof(*srv->dispatched));
        srv->finished = calloc(n, sizeof(*srv->finished));
        if (srv->dispatched == NULL || srv->finished == NULL) {
            return TERN_ENOMEM;
        }
        /* One reactor accepts on the listener itself: no acceptor thread, no hand-off (a
         * thread wake-up and a ring per connection saved); several share the port with
         * SO_REUSEPORT when asked, else the acceptor thread deals connections out. */
        if (!srv->listening || (!srv->reuseport && n > 1)) {
            continue;
        }
        srv->per_reactor = calloc(n, sizeof(*srv->per_reactor));
        if (srv->per_reactor == NULL) {
            return TERN_ENOMEM;
        }
        for (unsigned i = 0; i < n; i++) {
            srv->per_reactor[i].fd = -1;
        }
        srv->per_reactor[0].fd = srv->main.fd;
        srv->main.fd = -1;
        for (unsigned i = 1; i < n; i++) {
            int rc = open_listener(srv, &srv->per_reactor[i].fd);
            if (rc < 0) {
                tern__runtime_seterr(rt, "%s", srv->errstr);
                return rc;
            }
        }
        for (unsigned i = 0; i < n; i++) {
            tern_reactor *r = rt->reactors[i];
            listener_init(&srv->per_reactor[i], srv, r, r->loop, &r->counters);
        }
    }
    return 0;
}

void tern__server_reactor_start(tern_reactor *r)
{
    for (tern_server *srv = r->rt->servers; srv != NULL; srv = srv->next) {
        if (srv->per_reactor != NULL && srv->per_reactor[r->index].fd >= 0) {
            ev_io_start(r->loop, &srv->per_reactor[r->index].io);
        }
    }
}

void tern__server_reactor_stop(tern_reactor *r)
{
    for (tern_server *srv = r->rt->servers; srv != NULL; srv = srv->next) {
        if (srv->per_reactor != NULL) {
            listener_close(&srv->per_reactor[r->index]);
        }
    }
}

/* ---- the acceptor thread --------------------------------------------------------------------- */

static void on_acceptor_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    tern_runtime *rt = w->data;

    if (atomic_load(&rt->stopping) > 0) {
        for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
            listener_close(&srv->main);
        }
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *acceptor_main(void *arg)
{
    tern_runtime *rt = arg;

    on_acceptor_wake(rt->acceptor_loop, &rt->acceptor_wake, 0); /* an early stop */
    ev_run(rt->acceptor_loop, 0);
    return NULL;
}

int tern__acceptor_start(tern_runtime *rt)
{
    bool needed = false;

    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        needed |= srv->listening && srv->main.fd >= 0;
    }
    if (!needed) {
        return 0;
    }
    rt->acceptor_loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (rt->acceptor_loop == NULL) {
        tern__runtime_seterr(rt, "acceptor: cannot create its event loop");
        return TERN_ENOMEM;
    }
    ev_async_init(&rt->acceptor_wake, on_acceptor_wake);
    rt->acceptor_wake.data = rt;
    ev_async_start(rt->acceptor_loop, &rt->acceptor_wake);
    for (tern_server *srv = rt->servers; srv != NULL; srv = srv->next) {
        if (srv->listening && srv->main.fd >= 0) {
            listener_init(&srv->main, srv, NULL, rt->acceptor_loop, &rt->acceptor_counters);
            ev_io_start(rt->acceptor_loop, &srv->main.io);
        }
    }
    int rc = pthread_create(&rt->acceptor_thread, NULL, acceptor_main, rt);
    if (rc != 0) {
        tern__runtime_seterr(rt, "acceptor thread: %s", strerror(rc));
        return -rc;
    }
    rt->acceptor_started = true;
    return 0;
}

void tern__acceptor_stop(tern_runtime *rt)
{
    if (rt->acceptor_loop != NULL) {
        ev_async_send(rt->acceptor_loop, &rt->acceptor_wake);
    }
}

void tern__acceptor_join(tern_runtime *rt)
{
    if (rt->acceptor_started) {
        pthread_join(rt->acceptor_thread, NULL);
        rt->acceptor_started = false;
    }
}

/* ---- on the reactors -------------------------------------------------------------------------- */

void tern__server_adopt(tern_reactor *r, tern_server *srv, int fd)
{
    if (r->draining) {
        close(fd);
        tern__server_free_fd(srv, r->index);
        return;
    }
    if (tern__socket_adopt(r, srv, fd) < 0) {
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
        tern__object_unref((tern__object *)srv->cfg);
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

/* SPDX-License-Identifier: MIT */
/*
 * The socket, connecting: the host lookup (numeric here, names through resolver.c), the
 * local address bound before connect, the connect itself, and the timeouts set before it.
 * The connection's life after connect() is socket.c's.
 */
#include "socket_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- connecting ---------------------------------------------------------------------------------- */

/*
 * Binds a client socket's descriptor to the address of `tern_socket_set_local_address`, if
 * any. IP_BIND_ADDRESS_NO_PORT defers the choice of the local port to connect(), which then
 * picks one free for this 4-tuple, not one free for the address alone: many source
 * addresses multiply the ephemeral ports available. @return 0; < 0 (the error is set).
 */
static int bind_local(tern_socket *s, const struct sockaddr *peer, const char *name)
{
    if (s->owned_by_runtime) {
        return 0;
    }
    struct client_socket *cs = (struct client_socket *)s;
    if (cs->local_len == 0) {
        return 0;
    }
    char local[64];
    tern__format_sockaddr(&cs->local.sa, local, sizeof(local));
    if (cs->local.sa.sa_family != peer->sa_family) {
        tern__socket_seterr(s, TERN_E_ADDRESS, "connect %s: local address %s: not the same family",
                            name, local);
        return TERN_E_ADDRESS;
    }
#ifdef IP_BIND_ADDRESS_NO_PORT
    int one = 1;
    (void)setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
    if (bind(s->fd, &cs->local.sa, cs->local_len) < 0) {
        int e = tern__errno();
        tern__socket_seterr(s, e, "connect %s: bind %s: %s", name, local, tern_strerror(e));
        return e;
    }
    return 0;
}

int tern_socket_set_local_address(tern_socket *s, const char *ip)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || s->owned_by_runtime) {
        return TERN_EINVAL;
    }
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED) {
        return TERN_EBUSY;
    }
    struct client_socket *cs = (struct client_socket *)s;
    if (ip == NULL || ip[0] == '\0') {
        cs->local_len = 0;
        return 0;
    }
    struct client_socket tmp;
    memset(&tmp.local, 0, sizeof(tmp.local));
    socklen_t len;
    if (inet_pton(AF_INET, ip, &tmp.local.in.sin_addr) == 1) {
        tmp.local.in.sin_family = AF_INET;
        len = sizeof(tmp.local.in);
    } else if (inet_pton(AF_INET6, ip, &tmp.local.in6.sin6_addr) == 1) {
        tmp.local.in6.sin6_family = AF_INET6;
        len = sizeof(tmp.local.in6);
    } else {
        return TERN_E_ADDRESS;
    }
    cs->local = tmp.local;
    cs->local_len = len;
    return 0;
}

static void start_connect(tern_socket *s, const struct sockaddr *sa, socklen_t len);

/* Errors after which another address of the name may still work (not the host's own lack of
 * memory or descriptors). */
static bool worth_another(int err)
{
    return err != TERN_ENOMEM && err != -EMFILE && err != -ENFILE && err != TERN_ENOBUFS;
}

bool tern__socket_try_next(tern_socket *s, int err)
{
    struct tern__addrs *as = s->addrs;

    if (as == NULL || as->next >= as->n || !worth_another(err)) {
        return false;
    }
    if (s->connect_deadline_ms != 0 && tern_reactor_now_ms(s->r) >= s->connect_deadline_ms) {
        return false;
    }
    ev_io_stop(s->r->loop, &s->io);
    s->watching = 0;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    unsigned i = as->next++;
    start_connect(s, (const struct sockaddr *)&as->a[i].ss, as->a[i].len);
    return true;
}

/* One attempt; a failure goes on to the next address of the name, if any. */
static void start_connect(tern_socket *s, const struct sockaddr *sa, socklen_t len)
{
    char name[64];
    int e;

    tern__socket_set_state(s, TERN_SOCKET_STATE_CONNECTING);
    if (s->addrs != NULL && s->connect_deadline_ms != 0) {
        /* an equal share of the time left for this address and each one after it */
        uint64_t now = tern_reactor_now_ms(s->r);
        uint64_t left = s->connect_deadline_ms > now ? s->connect_deadline_ms - now : 1;
        uint64_t share = left / (s->addrs->n - s->addrs->next + 1);
        arm_timer(s, (uint32_t)(share > 0 ? share : 1));
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    tern__format_sockaddr(sa, name, sizeof(name));
    if (fd < 0) {
        e = tern__errno();
        tern__socket_seterr(s, e, "connect %s: socket: %s", name, tern_strerror(e));
        goto failed;
    }
    s->fd = fd;
    tern__socket_apply_options(s, false);
    if ((e = bind_local(s, sa, name)) < 0) {
        goto failed;
    }
    if (connect(fd, sa, len) == 0) {
        tern__socket_connected(s);
        return;
    }
    if (errno != EINPROGRESS) {
        e = tern__errno();
        tern__socket_seterr(s, e, "connect %s: %s", name, tern_strerror(e));
        goto failed;
    }
    tern__socket_update_watch(s);
    return;
failed:
    if (!tern__socket_try_next(s, e)) {
        tern__socket_fail(s, e);
    }
}

void tern__socket_resolved(tern_socket *s, struct tern__resolve *res)
{
    s->resolve = NULL;
    if (s->state != TERN_SOCKET_STATE_HOST_LOOKUP) {
        return;
    }
    if (res->err < 0) {
        tern__socket_seterr(s, TERN_E_RESOLVE, "lookup %s: %s", res->host,
                            res->gai != 0 ? gai_strerror(res->gai) : "no address");
        tern__socket_fail(s, TERN_E_RESOLVE);
        return;
    }
    free(s->addrs);
    s->addrs = malloc(sizeof(*s->addrs));
    if (s->addrs != NULL) {
        *s->addrs = res->addrs;
        s->addrs->next = 1;
    }
    /* out of memory: the first address only */
    start_connect(s, (struct sockaddr *)&res->addrs.a[0].ss, res->addrs.a[0].len);
}

static bool numeric_address(const char *host, uint16_t port, struct sockaddr_storage *ss,
                            socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    char buf[64];
    size_t n = strlen(host);

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        *len = sizeof(*in);
        return true;
    }
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof(*in6);
        return true;
    }
    return false;
}

/* A fresh connection: forget what the previous one left. */
static void fresh_connection(tern_socket *s, bool layered)
{
    if (s->layered && !layered) {
        s->layer_ops->reset(s); /* plain again after a layered connection */
    }
    s->layered = layered;
    tern__bufq_clear(s->r, &s->inbuf);
    tern__bufq_clear(s->r, &s->rbuf);
    s->err = 0;
    if (s->errstr != NULL) {
        s->errstr[0] = '\0';
    }
    s->peer_eof = s->read_finished_sent = s->shut_wr_requested = s->shut_wr_done = 0;
    s->eof_clean = s->layer_end = 0;
    s->deadline_ms = 0;
    s->pending_ready_read = s->pending_connected = s->pending_disconnected = 0;
    s->pending_error = 0;
    free(s->addrs);
    s->addrs = NULL;
    s->connect_deadline_ms = 0;
}

/* A connect, plain or @layered. */
static int connect_to(tern_socket *s, const char *host, uint16_t port, bool layered)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (s == NULL || host == NULL || host[0] == '\0' || port == 0) {
        return TERN_EINVAL;
    }
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED || s->free_requested) {
        return TERN_EBUSY;
    }
    fresh_connection(s, layered);
    s->port = port;

    bool numeric = numeric_address(host, port, &ss, &len);
    if (numeric && ((s->family == TERN_ADDRESS_FAMILY_IPV4 && ss.ss_family != AF_INET) ||
                    (s->family == TERN_ADDRESS_FAMILY_IPV6 && ss.ss_family != AF_INET6))) {
        s->layered = 0;
        return TERN_E_ADDRESS;
    }
    if (!numeric) {
        int rc = tern__resolve_start(s, host, port);
        if (rc < 0) {
            s->layered = 0;
            return rc;
        }
    }
    attach(s);
    arm_timer(s, s->connect_timeout_ms);
    if (s->connect_timeout_ms != 0) {
        s->connect_deadline_ms = tern_reactor_now_ms(s->r) + s->connect_timeout_ms;
    }
    if (numeric) {
        start_connect(s, (struct sockaddr *)&ss, len);
    } else {
        tern__socket_set_state(s, TERN_SOCKET_STATE_HOST_LOOKUP);
    }
    return 0;
}

int tern_socket_connect_to_host(tern_socket *s, const char *host, uint16_t port)
{
    TERN_ASSERT_OWNER(s);
    return connect_to(s, host, port, false);
}

int tern_socket_set_connect_timeout(tern_socket *s, uint32_t ms)
{
    TERN_ASSERT_OWNER(s);
    s->connect_timeout_ms = ms;
    return 0;
}

int tern_socket_set_idle_timeout(tern_socket *s, uint32_t ms)
{
    TERN_ASSERT_OWNER(s);
    s->idle_timeout_ms = ms;
    if (s->state == TERN_SOCKET_STATE_CONNECTED) {
        touch(s);
        arm_timer(s, idle_first_ms(s));
    }
    return 0;
}

int tern_socket_set_hibernate_after(tern_socket *s, uint32_t ms)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL) {
        return TERN_EINVAL;
    }
    s->hibernate_after_ms = ms;
    s->hib_tried = 0;
    if (s->state == TERN_SOCKET_STATE_CONNECTED) {
        tern__socket_rearm(s);
    }
    return 0;
}

/* seam.h: a connect whose stream goes through the layer */
int tern__socket_connect_layered(tern_socket *s, const char *host, uint16_t port)
{
    return connect_to(s, host, port, true);
}

int tern_socket_adopt(tern_socket *s, int fd)
{
    TERN_ASSERT_OWNER(s);
    int type = 0, listening = 0;
    socklen_t tl = sizeof(type), ll = sizeof(listening);
    struct sockaddr_storage peer;
    socklen_t pl = sizeof(peer);

    if (s == NULL || fd < 0 || s->owned_by_runtime) {
        return TERN_EINVAL;
    }
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED || s->free_requested) {
        return TERN_EBUSY;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || listening != 0) {
        tern__socket_seterr(s, TERN_EINVAL, "adopt fd %d: not a connected stream socket", fd);
        return TERN_EINVAL;
    }
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) < 0) {
        int e = tern__errno();
        tern__socket_seterr(s, e, "adopt fd %d: %s", fd, tern_strerror(e));
        return e == TERN_ENOTCONN ? e : TERN_EINVAL;
    }
    if ((fl & O_NONBLOCK) == 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = tern__errno();
        tern__socket_seterr(s, e, "adopt fd %d: O_NONBLOCK: %s", fd, tern_strerror(e));
        return e;
    }
    fresh_connection(s, false);
    s->port = 0;
    s->fd = fd;
    attach(s);
    if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) {
        tern__socket_apply_options(s, false);
    }
    tern__socket_set_state(s, TERN_SOCKET_STATE_CONNECTED);
    touch(s);
    arm_timer(s, idle_first_ms(s));
    tern__socket_update_watch(s);
    return 0;
}

int tern_socket_set_address_family(tern_socket *s, enum tern_address_family family)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || (family != TERN_ADDRESS_FAMILY_ANY && family != TERN_ADDRESS_FAMILY_IPV4 &&
                      family != TERN_ADDRESS_FAMILY_IPV6)) {
        return TERN_EINVAL;
    }
    if (s->state != TERN_SOCKET_STATE_UNCONNECTED) {
        return TERN_EBUSY;
    }
    s->family = (uint8_t)family;
    return 0;
}

enum tern_address_family tern_socket_address_family(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return (enum tern_address_family)s->family;
}

/* SPDX-License-Identifier: MIT */
/*
 * The socket, options and introspection: socket options, errors, addresses, the descriptor,
 * and the blocking helpers (tern_socket_wait_for_*, and the layer's tern__socket_wait).
 */
#include "socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

/* ---- options and introspection ------------------------------------------------------------------- */

static bool is_ipv6(int fd)
{
    int domain = AF_INET;
    socklen_t len = sizeof(domain);
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 && domain == AF_INET6;
}

int tern__socket_set_tos(int fd, int tos)
{
    /* RFC 2474: the former TOS octet (IPv4) and Traffic Class (IPv6) carry DSCP and ECN */
    int rc = is_ipv6(fd) ? setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, sizeof(tos))
                         : setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
    return rc < 0 ? tern__errno() : 0;
}

void tern_socket_set_events(tern_socket *s, const tern_socket_events *events, void *user)
{
    TERN_ASSERT_OWNER(s);
    s->ev = events;
    s->user = user;
}

void *tern_socket_user(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->user;
}

tern_reactor *tern_socket_reactor(const tern_socket *s)
{
    return s->r;
}

tern_reactor *tern__socket_owner(const tern_socket *s)
{
    return s != NULL ? s->r : NULL;
}

tern_server *tern_socket_server(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->srv;
}

enum tern_socket_state tern_socket_state(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->state;
}

int tern_socket_set_option(tern_socket *s, enum tern_socket_option opt, int value)
{
    TERN_ASSERT_OWNER(s);
    switch (opt) {
    case TERN_SOCKET_OPTION_NODELAY:
        s->nodelay = value != 0;
        break;
    case TERN_SOCKET_OPTION_KEEPALIVE:
        s->keepalive = value != 0;
        break;
    case TERN_SOCKET_OPTION_SEND_BUFFER_SIZE:
        if (value <= 0) {
            return TERN_EINVAL;
        }
        s->sndbuf = value;
        break;
    case TERN_SOCKET_OPTION_RECEIVE_BUFFER_SIZE:
        if (value <= 0) {
            return TERN_EINVAL;
        }
        s->rcvbuf = value;
        break;
    case TERN_SOCKET_OPTION_TYPE_OF_SERVICE:
        if (value < 0 || value > 255) {
            return TERN_EINVAL;
        }
        s->tos = value + 1;
        return s->fd >= 0 ? tern__socket_set_tos(s->fd, value) : 0;
    default:
        return TERN_EINVAL; /* PATH_MTU is read only */
    }
    if (s->fd >= 0) {
        int v = value != 0;
        int rc = 0;
        switch (opt) {
        case TERN_SOCKET_OPTION_NODELAY:
            rc = setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v));
            break;
        case TERN_SOCKET_OPTION_KEEPALIVE:
            rc = setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v));
            break;
        case TERN_SOCKET_OPTION_SEND_BUFFER_SIZE:
            rc = setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &value, sizeof(value));
            break;
        case TERN_SOCKET_OPTION_RECEIVE_BUFFER_SIZE:
            rc = setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &value, sizeof(value));
            break;
        default:
            break;
        }
        if (rc < 0) {
            return tern__errno();
        }
    }
    return 0;
}

int tern_socket_option(const tern_socket *s, enum tern_socket_option opt, int *value)
{
    TERN_ASSERT_OWNER(s);
    int level = SOL_SOCKET, name;
    socklen_t len = sizeof(*value);

    if (value == NULL) {
        return TERN_EINVAL;
    }
    switch (opt) {
    case TERN_SOCKET_OPTION_NODELAY:
        level = IPPROTO_TCP;
        name = TCP_NODELAY;
        break;
    case TERN_SOCKET_OPTION_KEEPALIVE:
        name = SO_KEEPALIVE;
        break;
    case TERN_SOCKET_OPTION_SEND_BUFFER_SIZE:
        name = SO_SNDBUF;
        break;
    case TERN_SOCKET_OPTION_RECEIVE_BUFFER_SIZE:
        name = SO_RCVBUF;
        break;
    case TERN_SOCKET_OPTION_TYPE_OF_SERVICE:
    case TERN_SOCKET_OPTION_PATH_MTU:
        if (s->fd < 0) {
            return TERN_ENOTCONN;
        }
        level = is_ipv6(s->fd) ? IPPROTO_IPV6 : IPPROTO_IP;
        name = opt == TERN_SOCKET_OPTION_PATH_MTU ? (level == IPPROTO_IP ? IP_MTU : IPV6_MTU)
                                                   : (level == IPPROTO_IP ? IP_TOS : IPV6_TCLASS);
        break;
    default:
        return TERN_EINVAL;
    }
    if (s->fd < 0) {
        return TERN_ENOTCONN;
    }
    if (getsockopt(s->fd, level, name, value, &len) < 0) {
        return tern__errno();
    }
    if (opt == TERN_SOCKET_OPTION_NODELAY || opt == TERN_SOCKET_OPTION_KEEPALIVE) {
        *value = *value != 0;
    }
    return 0;
}

int tern_socket_error(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->err;
}

const char *tern_socket_error_string(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s->errstr != NULL) {
        return s->errstr;
    }
    return s->err != 0 ? tern_strerror(s->err) : "";
}

static int format_name(const tern_socket *s, bool peer, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (buf == NULL || len == 0) {
        return TERN_EINVAL;
    }
    buf[0] = '\0';
    if (s->fd < 0) {
        return TERN_ENOTCONN;
    }
    if (peer && s->r->accepted == s && s->r->accepted_from->peer_len > 0) {
        return tern__format_sockaddr(&s->r->accepted_from->peer.sa, buf, len); /* no syscall */
    }
    int rc = peer ? getpeername(s->fd, (struct sockaddr *)&ss, &sl)
                  : getsockname(s->fd, (struct sockaddr *)&ss, &sl);
    if (rc < 0) {
        return tern__errno();
    }
    return tern__format_sockaddr((struct sockaddr *)&ss, buf, len);
}

int tern_socket_peer_address(const tern_socket *s, char *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    return format_name(s, true, buf, len);
}

int tern_socket_local_address(const tern_socket *s, char *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    return format_name(s, false, buf, len);
}

int tern_socket_descriptor(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->fd;
}

/* ---- blocking helpers ---------------------------------------------------------------------------- */

enum wait_for { WAIT_CONNECTED, WAIT_READY_READ, WAIT_WRITTEN, WAIT_DISCONNECTED, WAIT_LAYER };

static bool wait_done(const tern_socket *s, enum wait_for what)
{
    switch (what) {
    case WAIT_CONNECTED:
        return s->state == TERN_SOCKET_STATE_CONNECTED || s->state == TERN_SOCKET_STATE_CLOSING;
    case WAIT_READY_READ:
        return s->rbuf.len > 0;
    case WAIT_WRITTEN:
        return s->wbuf.len == 0 && (!s->layered || s->layer_ops->flushed(s));
    case WAIT_DISCONNECTED:
        return s->state == TERN_SOCKET_STATE_UNCONNECTED && !s->pending_disconnected &&
               !s->deferred.queued;
    case WAIT_LAYER:
        break;
    }
    return false;
}

static int wait_for(tern_socket *s, enum wait_for what, bool (*done)(const tern_socket *s),
                    uint32_t timeout_ms)
{
    if (s == NULL) {
        return TERN_EINVAL;
    }
    if (!tern__on_owner(s->r) || s->in_callback > 0) {
        return TERN_EBUSY;
    }
    /* the loop's cached time may be seconds old (a standalone reactor left unrun): the
     * deadline counts from now */
    ev_now_update(s->r->loop);
    uint64_t deadline = tern_reactor_now_ms(s->r) + timeout_ms;
    for (;;) {
        if (done != NULL ? done(s) : wait_done(s, what)) {
            return 0;
        }
        if (what != WAIT_DISCONNECTED && s->state == TERN_SOCKET_STATE_UNCONNECTED &&
            !s->pending_disconnected) {
            return s->err < 0 ? s->err : TERN_ENOTCONN;
        }
        ev_now_update(s->r->loop);
        uint64_t now = tern_reactor_now_ms(s->r);
        if (now >= deadline) {
            return TERN_ETIMEDOUT;
        }
        tern_reactor_run_once(s->r, (uint32_t)(deadline - now));
    }
}

int tern_socket_wait_for_connected(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return wait_for(s, WAIT_CONNECTED, NULL, timeout_ms);
}

int tern_socket_wait_for_ready_read(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return wait_for(s, WAIT_READY_READ, NULL, timeout_ms);
}

int tern_socket_wait_for_bytes_written(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return wait_for(s, WAIT_WRITTEN, NULL, timeout_ms);
}

int tern_socket_wait_for_disconnected(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return wait_for(s, WAIT_DISCONNECTED, NULL, timeout_ms);
}

/* ---- the seam (seam.h): what a layer may do with the socket --------------------------------- */

int tern__socket_wait(tern_socket *s, bool (*done)(const tern_socket *s), uint32_t timeout_ms)
{
    return wait_for(s, WAIT_LAYER, done, timeout_ms);
}

/* ---- buffer limits (the read limit's setter is in socket.c: it re-arms the watcher) ---- */

size_t tern_socket_read_buffer_size(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->read_limit;
}

int tern_socket_set_write_buffer_size(tern_socket *s, size_t bytes)
{
    TERN_ASSERT_OWNER(s);
    s->write_limit = bytes;
    return 0;
}

size_t tern_socket_write_buffer_size(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s->write_limit;
}

size_t tern_socket_write_room(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    if (s->write_limit == 0) {
        return SIZE_MAX;
    }
    size_t queued = tern_socket_bytes_to_write(s);
    return queued < s->write_limit ? s->write_limit - queued : 0;
}

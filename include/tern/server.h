/* SPDX-License-Identifier: MIT */
/**
 * @file server.h
 * A server listens on one address; the runtime's acceptor thread accepts connections and
 * hands each descriptor to a reactor over that reactor's lock-free ring (round robin or
 * least connections), or, with `tern_server_set_reuseport`, every reactor accepts on its own
 * SO_REUSEPORT listener. A runtime with one reactor accepts on that reactor, without the
 * acceptor thread. The `incoming` callback then runs on the reactor that owns the new
 * socket, which starts CONNECTED.
 *
 * Accepted sockets belong to the runtime: they are freed after their `disconnected` event
 * returns. On EMFILE/ENFILE the acceptor pauses (emfile_backoff_ms), counts it, and resumes:
 * it never spins, and open connections keep being served.
 */
#ifndef TERN_SERVER_H
#define TERN_SERVER_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** How accepted connections are spread over reactors. */
enum tern_balance_policy {
    TERN_BALANCE_ROUND_ROBIN,       /**< the next reactor in turn (default) */
    TERN_BALANCE_LEAST_CONNECTIONS, /**< the reactor with the fewest open connections */
};

/**
 * A new connection: @p s is CONNECTED, owned by the calling reactor. Set its events here
 * (`tern_socket_set_events`); a socket left without events is closed.
 */
typedef void (*tern_server_incoming_fn)(tern_server *srv, tern_socket *s, void *user);

/**
 * Creates a server on @p rt. @p cfg is the TLS configuration (ssl_config.h; referenced and
 * frozen); NULL serves plaintext TCP. @return the server or NULL (out of memory, or @p rt / @p incoming
 * NULL). @thread setup (before `tern_runtime_start`)
 */
TERN_API tern_server *tern_server_new(tern_runtime *rt, tern_ssl_config *cfg,
                                      tern_server_incoming_fn incoming, void *user);

/** listen(2) backlog, 1..65535 (default 1024). @return 0; TERN_EINVAL; TERN_EBUSY once
 * listening. @thread setup */
TERN_API int tern_server_set_backlog(tern_server *srv, int backlog);

/** The balance policy (default round robin). @return 0; TERN_EINVAL; TERN_EBUSY. @thread setup */
TERN_API int tern_server_set_balance_policy(tern_server *srv, enum tern_balance_policy policy);

/** One SO_REUSEPORT listener per reactor instead of the acceptor thread (default off).
 * @return 0; TERN_EBUSY once listening. @thread setup */
TERN_API int tern_server_set_reuseport(tern_server *srv, bool on);

/** At most @p n open connections (0: no limit, the default); over it a new connection is
 * closed at once and counted (connections_rejected). @return 0; TERN_EBUSY. @thread setup */
TERN_API int tern_server_set_max_connections(tern_server *srv, unsigned n);

/** Idle timeout given to each accepted socket, in ms (0: none, the default).
 * @return 0; TERN_EBUSY. @thread setup */
TERN_API int tern_server_set_idle_timeout(tern_server *srv, uint32_t ms);

/** Read buffer limit given to each accepted socket (see `tern_socket_set_read_buffer_size`).
 * @return 0; TERN_EBUSY. @thread setup */
TERN_API int tern_server_set_read_buffer_size(tern_server *srv, size_t bytes);

/**
 * Binds and listens on @p host : @p port. @p host is an IPv4 or IPv6 literal, a name
 * (resolved here, blocking: this is setup), or NULL / "" / "*" for all IPv4 addresses;
 * "::" for all IPv6 ones. Port 0 picks a free port (see `tern_server_port`). SO_REUSEADDR
 * is set. @return 0; TERN_E_ADDRESS (unparsable or unresolvable host); TERN_EADDRINUSE;
 * TERN_EACCES; TERN_EBUSY if already listening; with `tern_server_error_string` telling
 * which address failed and why. @thread setup
 * @events `incoming` on a reactor for each accepted connection, once the runtime runs
 */
TERN_API int tern_server_listen(tern_server *srv, const char *host, uint16_t port);

/**
 * Like `tern_server_listen` on "host:port", "[v6]:port", ":port" or "*:port".
 * @return as `tern_server_listen`; TERN_E_ADDRESS if @p address does not parse (a missing
 *         or out-of-range port, unbalanced brackets...). @thread setup
 * @events as `tern_server_listen`
 */
TERN_API int tern_server_listen_address(tern_server *srv, const char *address);

/**
 * Listens on @p fd, a listening TCP socket the program inherited or made itself (systemd
 * socket activation, a listener opened before dropping privileges): the server accepts on it
 * as on its own, on its reactors. @p fd must be an AF_INET or AF_INET6 SOCK_STREAM socket
 * in the listening state (SO_ACCEPTCONN); it is made non-blocking. On success the server owns
 * it and closes it when the runtime frees the server; on failure it stays the caller's.
 * Not with `tern_server_set_reuseport` (each reactor would need its own listener).
 * @return 0; TERN_EINVAL (NULL server, a closed fd, not a socket, not a stream, not
 *         listening, another family, reuseport on); TERN_EBUSY if already listening; with
 *         `tern_server_error_string` saying why. @thread setup
 * @events `incoming` on a reactor for each accepted connection, once the runtime runs
 */
TERN_API int tern_server_listen_fd(tern_server *srv, int fd);

/** The bound port (after listen), or 0. @thread any */
TERN_API uint16_t tern_server_port(const tern_server *srv);

/** Why the last failed call on @p srv failed, or "". @return borrowed. @thread setup */
TERN_API const char *tern_server_error_string(const tern_server *srv);

/** The runtime of @p srv. @thread any */
TERN_API tern_runtime *tern_server_runtime(const tern_server *srv);

/**
 * Parses "host:port", "[v6]:port", ":port" or "*:port" into @p host (NUL-terminated, "" for
 * any) and @p port. @return 0; TERN_E_ADDRESS; TERN_ENOBUFS if @p host_len is too small.
 * @thread any
 */
TERN_API int tern_parse_host_port(const char *address, char *host, size_t host_len,
                                  uint16_t *port);

#ifdef __cplusplus
}
#endif
#endif

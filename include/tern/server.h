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
 *
 * Servers are live objects: besides during set-up, a server may be created, configured and
 * made to listen while the runtime runs (a reload adding a service), and `tern_server_close`
 * stops accepting on it (a reload removing or moving one) while its accepted connections go
 * on. A server is freed with its runtime, never before: a pointer to it stays valid until
 * `tern_runtime_free`, closed or not.
 *
 * Threads: the calls on one server come from one thread at a time (the set-up thread, then
 * for instance the signal thread running a SIGHUP callback). A thread that runs no reactor
 * may wait in `tern_server_listen*` (a name lookup; a full reactor mailbox) and in
 * `tern_server_close` (for the acceptor and the reactors to let go of the port); on a reactor
 * they never wait for another thread.
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
 * frozen); NULL serves plaintext TCP. The server belongs to @p rt, which frees it. Before the
 * runtime starts or while it runs; a server created after a stop can only be closed.
 * @return the server or NULL (out of memory, or @p rt / @p incoming NULL).
 * @thread setup before `tern_runtime_start`; afterwards any (reactors included)
 */
TERN_API tern_server *tern_server_new(tern_runtime *rt, tern_ssl_config *cfg,
                                      tern_server_incoming_fn incoming, void *user);

/** listen(2) backlog, 1..65535 (default 1024). Like every setter below: only before the
 * server listens (the runtime may be running), never once it listens or was closed.
 * @return 0; TERN_EINVAL; TERN_EBUSY once listening or closed.
 * @thread setup (of this server: the thread that creates and listens it) */
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

/** Hibernation delay given to each accepted socket, in ms (see
 * `tern_socket_set_hibernate_after`; 0: never, the default). @return 0; TERN_EBUSY.
 * @thread setup */
TERN_API int tern_server_set_hibernate_after(tern_server *srv, uint32_t ms);

/** Read buffer limit given to each accepted socket (see `tern_socket_set_read_buffer_size`).
 * @return 0; TERN_EBUSY. @thread setup */
TERN_API int tern_server_set_read_buffer_size(tern_server *srv, size_t bytes);

/**
 * Binds and listens on @p host : @p port. @p host is an IPv4 or IPv6 literal, a name
 * (resolved here, blocking), or NULL / "" / "*" for all IPv4 addresses; "::" for all IPv6
 * ones. Port 0 picks a free port (see `tern_server_port`). SO_REUSEADDR is set, so the port of
 * a server closed a moment ago binds again even while its connections live on.
 *
 * While the runtime runs, the listener is bound here, on the calling thread (an address in
 * use fails here, synchronously), then handed to whoever accepts: the acceptor thread (woken,
 * and started if it was not running), or with one reactor or `tern_server_set_reuseport`
 * the reactors (a task posted to each; one listener per reactor). The call does not wait for
 * them: connections that arrive meanwhile wait in the backlog. Off the reactors, a full
 * mailbox is retried for up to 5 s.
 * @return 0; TERN_E_ADDRESS (unparsable or unresolvable host); TERN_EADDRINUSE;
 *         TERN_EACCES; TERN_EBUSY if already listening or closed; TERN_E_STOPPED once the
 *         runtime is stopping; TERN_E_QUEUE_FULL if a reactor's mailbox stayed full (the
 *         server is then closed); with `tern_server_error_string` telling which address
 *         failed and why.
 * @thread setup before `tern_runtime_start`; afterwards any thread (on a reactor, pass a
 *         literal address: a name lookup would block the reactor)
 * @events `incoming` on a reactor for each accepted connection, once the runtime runs
 */
TERN_API int tern_server_listen(tern_server *srv, const char *host, uint16_t port);

/**
 * Like `tern_server_listen` on "host:port", "[v6]:port", ":port" or "*:port".
 * @return as `tern_server_listen`; TERN_E_ADDRESS if @p address does not parse (a missing
 *         or out-of-range port, unbalanced brackets...).
 * @thread setup before `tern_runtime_start`; afterwards any (as `tern_server_listen`)
 * @events as `tern_server_listen`
 */
TERN_API int tern_server_listen_address(tern_server *srv, const char *address);

/**
 * Listens on @p fd, a listening TCP socket the program inherited or made itself (systemd
 * socket activation, a listener opened before dropping privileges): the server accepts on it
 * as on its own, on its reactors. @p fd must be an AF_INET or AF_INET6 SOCK_STREAM socket
 * in the listening state (SO_ACCEPTCONN); it is made non-blocking. On success the server owns
 * it and closes it when the runtime frees the server; on failure it stays the caller's.
 * Not with `tern_server_set_reuseport` (each reactor would need its own listener). While the
 * runtime runs, handed over as by `tern_server_listen`.
 * @return 0; TERN_EINVAL (NULL server, a closed fd, not a socket, not a stream, not
 *         listening, another family, reuseport on); TERN_EBUSY if already listening or
 *         closed; TERN_E_STOPPED, TERN_E_QUEUE_FULL as `tern_server_listen`; with
 *         `tern_server_error_string` saying why.
 * @thread setup before `tern_runtime_start`; afterwards any (as `tern_server_listen`)
 * @events `incoming` on a reactor for each accepted connection, once the runtime runs
 */
TERN_API int tern_server_listen_fd(tern_server *srv, int fd);

/**
 * Stops accepting on @p srv: every listener of the server stops being watched and its fd is
 * closed, each on the thread that owns it (the acceptor thread, or each reactor for one
 * reactor / reuseport), so the address is free to bind again. Connections accepted before
 * are untouched: they keep their reactor, their configuration and their callbacks, and end
 * as they would have (a later `tern_runtime_stop` drains them as usual); a descriptor already
 * accepted and on its way to a reactor still arrives as `incoming`. Connections the kernel
 * had queued but nobody accepted yet are reset. The server object stays valid until the
 * runtime is freed: `tern_server_port` keeps returning the port it had, setters and listen
 * return TERN_EBUSY. A closed server never listens again: create a new one (which may bind
 * the same address as soon as this returns 0). Before the runtime starts, the listener is
 * closed at once; on a server that never listened, close only marks it closed.
 *
 * Synchronous off the reactors: from a thread that runs no reactor of this runtime (main,
 * the signal thread running a reload callback, a worker) the call returns once every owner
 * has closed its listener (bounded: 5 s). From a reactor of this runtime (a callback, a
 * posted task, this server's own `incoming` included) it never waits for another thread: the
 * calling reactor's own listener is closed at once, the others' closes are posted and happen
 * within their next loop turn. So with a single reactor, or from a thread off the reactors,
 * the port is free when it returns 0. Idempotent: a second call returns 0 (off the reactors,
 * after waiting for a close still in progress, and resending a close that found a mailbox
 * full).
 * @return 0; TERN_EINVAL (NULL); TERN_ETIMEDOUT if an owner had not closed its listener
 *         within 5 s (a callback blocking a reactor: the close still happens when that
 *         reactor runs again); TERN_E_QUEUE_FULL if a reactor's mailbox had no room for
 *         the request (call again: what was sent is not resent).
 * @thread any (this server's own callbacks included)
 * @events none (no callback runs because of a close; connections go on as before)
 */
TERN_API int tern_server_close(tern_server *srv);

/**
 * Replaces the TLS configuration of @p srv (a reload with new certificates): handshakes that
 * start after this call returns use @p cfg (an accepted socket takes its server's
 * configuration when `tern_socket_start_server_encryption` begins its handshake, unless it
 * has its own from `tern_socket_set_ssl_config`); sockets whose handshake began keep the
 * configuration they took. @p cfg is referenced and frozen, as by `tern_server_new`; NULL
 * leaves accepted sockets the process default. The previous configuration is released once
 * every reactor has run past the swap (a task posted to each), so a reactor that has just read
 * it can still take its reference; if a reactor's mailbox stays full it is released with the
 * runtime instead. Does not wait for the reactors.
 * @return 0; TERN_EINVAL (NULL server); TERN_ENOMEM (nothing changed).
 * @thread any (reactors included)
 * @events none
 */
TERN_API int tern_server_set_ssl_config(tern_server *srv, tern_ssl_config *cfg);

/** The bound port (after listen), or 0; after `tern_server_close`, still the port it had.
 * @thread any */
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

/* SPDX-License-Identifier: MIT */
/**
 * @file socket.h
 * A connection owned by one reactor: TCP, and TLS on top of it (the functions at the end,
 * implemented in ssl/). As QSslSocket inherits QTcpSocket, UNENCRYPTED mode is a complete
 * socket of its own, and `tern_socket_start_*_encryption` turns it into TLS (STARTTLS).
 *
 * Contracts:
 * - Every function here is @thread owner, except `tern_socket_reactor`: call it on the
 *   reactor that owns the socket. Debug builds check it (TERN_DEBUG_OWNER: a call from
 *   another thread aborts, naming the function).
 * - Callbacks run on the owner reactor, never inside the call that caused them (their
 *   effects arrive on a later loop turn). `tern_socket_close`, `tern_socket_abort` and, for
 *   sockets you created, `tern_socket_free` are legal inside any of the socket's callbacks.
 * - Reads: received bytes wait in the read buffer; `ready_read` fires when new bytes came.
 *   Once the buffer holds `read_buffer_size` bytes, the socket stops reading from the kernel
 *   (backpressure, nothing is lost) until the application reads.
 * - Writes copy into the write queue; past `write_buffer_size` a write returns TERN_ENOBUFS
 *   and queues nothing (wait for `bytes_written`). Queued bytes are sent in order.
 * - The peer's end of stream (FIN) sets `at_end` once the read buffer is empty and fires
 *   `read_finished`; the socket then closes gracefully after its queued data is sent, unless
 *   `tern_socket_set_half_close(s, true)` keeps it open for writing. Under TLS the end of
 *   stream is close_notify; a bare FIN after the handshake may be a truncation (RFC 8446
 *   6.1): the socket then ends with `disconnected(TERN_E_EOF)`, never reason 0.
 * - A socket accepted by a server is freed by the runtime after `disconnected` returns; a
 *   socket made with `tern_socket_new` is freed by its owner with `tern_socket_free`.
 */
#ifndef TERN_SOCKET_H
#define TERN_SOCKET_H

#include <tern/common.h>
#include <tern/ssl_config.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Socket states, as QAbstractSocket's. (An enum tag, not a typedef: the getter has the name.) */
enum tern_socket_state {
    TERN_SOCKET_STATE_UNCONNECTED, /**< no connection */
    TERN_SOCKET_STATE_HOST_LOOKUP, /**< resolving the host name on a worker */
    TERN_SOCKET_STATE_CONNECTING,  /**< TCP connect in progress */
    TERN_SOCKET_STATE_CONNECTED,   /**< connected */
    TERN_SOCKET_STATE_CLOSING,     /**< closing: sending what is queued, then closing */
};

/** TLS modes, as QSslSocket::SslMode. (Protocol enums live in ssl_config.h.) */
enum tern_ssl_mode {
    TERN_SSL_MODE_UNENCRYPTED, /**< plain TCP (also during a STARTTLS exchange) */
    TERN_SSL_MODE_CLIENT,      /**< TLS, client side */
    TERN_SSL_MODE_SERVER,      /**< TLS, server side */
};

/** The address families a connect may use, as QAbstractSocket::NetworkLayerProtocol. */
enum tern_address_family {
    TERN_ADDRESS_FAMILY_ANY,  /**< IPv6 and IPv4 (the default) */
    TERN_ADDRESS_FAMILY_IPV4, /**< IPv4 only */
    TERN_ADDRESS_FAMILY_IPV6, /**< IPv6 only */
};

/** Socket options, as QAbstractSocket::SocketOption. */
enum tern_socket_option {
    TERN_SOCKET_OPTION_NODELAY,             /**< TCP_NODELAY, 0 or 1 (on by default) */
    TERN_SOCKET_OPTION_KEEPALIVE,           /**< SO_KEEPALIVE, 0 or 1 */
    TERN_SOCKET_OPTION_SEND_BUFFER_SIZE,    /**< SO_SNDBUF in bytes */
    TERN_SOCKET_OPTION_RECEIVE_BUFFER_SIZE, /**< SO_RCVBUF in bytes */
    TERN_SOCKET_OPTION_TYPE_OF_SERVICE,     /**< IP_TOS (IPv4) / IPV6_TCLASS (IPv6), 0..255:
                                             *   the DSCP and ECN bits of outgoing packets */
    TERN_SOCKET_OPTION_PATH_MTU,            /**< read only: the path MTU the IP stack knows
                                             *   for the peer (IP_MTU / IPV6_MTU), in bytes */
};

/**
 * The events of a socket. Any entry may be NULL. @p user is the pointer given to
 * `tern_socket_set_events`. New events are added at the end: initialise tables with
 * designated initializers.
 */
typedef struct tern_socket_events {
    /** An outgoing connection is established. */
    void (*connected)(tern_socket *s, void *user);
    /** New bytes are in the read buffer. */
    void (*ready_read)(tern_socket *s, void *user);
    /** @p n queued bytes were handed to the kernel. */
    void (*bytes_written)(tern_socket *s, size_t n, void *user);
    /** The peer ended its stream and every byte before it was read (at_end is true). */
    void (*read_finished)(tern_socket *s, void *user);
    /** The state changed to @p state. */
    void (*state_changed)(tern_socket *s, enum tern_socket_state state, void *user);
    /** A failure; @p err is a TERN_E* code. `disconnected` follows. */
    void (*error)(tern_socket *s, int err, void *user);
    /** The socket is closed: @p reason is 0 for an orderly end, else the TERN_E* code. The
     * last event; an accepted socket is freed after it returns. */
    void (*disconnected)(tern_socket *s, int reason, void *user);
    /** The TLS mode changed (start_*_encryption). */
    void (*mode_changed)(tern_socket *s, enum tern_ssl_mode mode, void *user);
    /** The TLS handshake completed: data written before now is sent from here on. */
    void (*encrypted)(tern_socket *s, void *user);
    /** @p n bytes of TLS records were handed to the kernel. */
    void (*encrypted_bytes_written)(tern_socket *s, size_t n, void *user);
    /** One problem with the peer's identity (before `ssl_errors`); see ssl_error.h. */
    void (*peer_verify_error)(tern_socket *s, const tern_ssl_error *err, void *user);
    /** Every problem with the peer's identity, once. Unless ignored in here
     * (`tern_socket_ignore_all_ssl_errors` / `tern_socket_ignore_ssl_errors`) or deferred
     * (`tern_socket_defer_ssl_errors`, then `tern_socket_resume` from any thread), the
     * connection closes with TERN_E_TLS_VERIFY after it returns. */
    void (*ssl_errors)(tern_socket *s, const tern_ssl_error_list *errs, void *user);
    /** Server: a client offered the PSK identity in @p auth; answer, defer, or ignore (=
     * unknown). Client (PSK enabled, no `tern_socket_set_psk`): give an identity and a key
     * for the server's hint (`tern_psk_authenticator_identity_hint`), inline or deferred;
     * no answer fails the handshake. See psk.h. */
    void (*psk_authentication_required)(tern_socket *s, tern_psk_authenticator *auth, void *user);
    /** Client: the server sent a session ticket (QSslSocket's newSessionTicketReceived): the
     * session can now be exported (`tern_socket_session_export`, session.h) and resumed. */
    void (*new_session_ticket)(tern_socket *s, void *user);
} tern_socket_events;

/**
 * Creates an UNCONNECTED socket owned by @p r; the caller frees it with `tern_socket_free`.
 * @return the socket or NULL (out of memory, or @p r NULL). @thread owner (of @p r)
 */
TERN_API tern_socket *tern_socket_new(tern_reactor *r);

/**
 * Frees a socket made with `tern_socket_new`, aborting its connection first (no events
 * follow). Legal inside the socket's callbacks: the memory goes when they return. NULL is a
 * no-op; sockets accepted by a server are freed by the runtime instead. @thread owner
 */
TERN_API void tern_socket_free(tern_socket *s);

/** Sets the events table (borrowed; it must outlive the socket) and the user pointer: in
 * `incoming` for an accepted socket, before connecting for one of `tern_socket_new`; a later
 * call takes effect for the next event. @thread owner */
TERN_API void tern_socket_set_events(tern_socket *s, const tern_socket_events *events, void *user);

/** The user pointer. @thread owner */
TERN_API void *tern_socket_user(const tern_socket *s);

/** The reactor that owns @p s. @thread any */
TERN_API tern_reactor *tern_socket_reactor(const tern_socket *s);

/** The server that accepted @p s, or NULL. @thread owner */
TERN_API tern_server *tern_socket_server(const tern_socket *s);

/** The current state. @thread owner */
TERN_API enum tern_socket_state tern_socket_state(const tern_socket *s);

/**
 * Connects to @p host : @p port. A numeric address connects at once; a name is resolved on
 * a worker thread, never on the reactor (state HOST_LOOKUP, then CONNECTING, CONNECTED).
 * A name's addresses (of the family of `tern_socket_set_address_family`, up to 8) are tried
 * one after the other, IPv6 and IPv4 alternating from the resolver's first (RFC 8305's
 * order, without racing them): a refused, unreachable or failed attempt goes on to the next
 * address; so does one that got no answer within its share of the connect timeout (the
 * time left, split evenly between it and the addresses after it). The last address's
 * failure is the connect's.
 * @return 0 if the attempt started; TERN_EBUSY unless UNCONNECTED; TERN_EINVAL (NULL or
 *         empty host, port 0); TERN_ENOMEM. Later failures arrive as `error` + `disconnected`
 *         (TERN_E_RESOLVE, TERN_ECONNREFUSED, TERN_ETIMEDOUT...). @thread owner
 * @events state_changed, connected, error, disconnected
 */
TERN_API int tern_socket_connect_to_host(tern_socket *s, const char *host, uint16_t port);

/**
 * The address family of the next connects of @p s (QAbstractSocket's network-layer
 * protocol): a name is resolved for that family only, and a numeric address of another
 * family is refused (TERN_E_ADDRESS from the connect call). Kept across connections.
 * @return 0; TERN_EINVAL (NULL socket, not a value of the enum); TERN_EBUSY unless
 *         UNCONNECTED. @thread owner
 */
TERN_API int tern_socket_set_address_family(tern_socket *s, enum tern_address_family family);

/** The address family of `tern_socket_set_address_family` (default ANY). @thread owner */
TERN_API enum tern_address_family tern_socket_address_family(const tern_socket *s);

/**
 * Adopts @p fd, a connected stream socket the program got elsewhere (its own accept loop, an
 * inherited socket, one end of a socketpair), as QAbstractSocket::setSocketDescriptor: @p s
 * (made with `tern_socket_new`, UNCONNECTED, events set) becomes CONNECTED and unencrypted on
 * its reactor; `tern_socket_start_server_encryption` / `_client_encryption` then start TLS
 * on it. @p fd is made non-blocking; from success on @p s owns it and closes it when the
 * connection ends (on failure it stays the caller's, untouched). No `connected` event (the
 * connection was made elsewhere); `state_changed(CONNECTED)` follows.
 * @return 0; TERN_EINVAL (NULL socket, a socket accepted by a server, a negative or closed
 *         fd, not a socket, not SOCK_STREAM (UDP), a listening socket); TERN_ENOTCONN (a
 *         stream socket with no peer); TERN_EBUSY unless UNCONNECTED. @thread owner
 * @events state_changed, then as any connected socket (ready_read, error, disconnected...)
 */
TERN_API int tern_socket_adopt(tern_socket *s, int fd);

/**
 * The local address that the next connections of @p s are made from (bind before connect),
 * as a numeric IPv4 or IPv6 address; the local port is still chosen by the kernel, at
 * connect time, per destination (so a load generator with many source addresses on loopback,
 * 127.0.0.2..127.0.0.20, gets that many times the ephemeral ports). NULL or "" clears it.
 * Copied; kept across connections of @p s. Only for sockets made with `tern_socket_new`.
 * @return 0; TERN_E_ADDRESS (not a numeric address); TERN_EBUSY unless UNCONNECTED;
 *         TERN_EINVAL (NULL socket, or a socket accepted by a server). A bind that fails at
 *         connect time (address not on this host: TERN_EADDRNOTAVAIL; another family than
 *         the peer's: TERN_E_ADDRESS) arrives as `error` + `disconnected`. @thread owner
 */
TERN_API int tern_socket_set_local_address(tern_socket *s, const char *ip);

/** Deadline for connect (lookup included), in ms; 0: none. Default 30000. @thread owner */
TERN_API int tern_socket_set_connect_timeout(tern_socket *s, uint32_t ms);

/** Closes the socket with TERN_E_IDLE_TIMEOUT after @p ms without I/O; 0: none (default).
 * @thread owner */
TERN_API int tern_socket_set_idle_timeout(tern_socket *s, uint32_t ms);

/**
 * Hibernation of an idle TLS connection: after @p ms with nothing to read, nothing queued to
 * write, no handshake or decision in progress, the connection's TLS state is exported into a
 * sealed blob of a few hundred bytes and the TLS library's objects are freed; the next
 * readable event, write, close or query that needs the state imports it again, and the
 * program sees no difference (same events, same peer certificate, SNI, ALPN, cipher). A
 * connection that cannot be exported stays awake (counted: hibernate_failures); a wake-up that
 * fails closes that connection with TERN_E_INTERNAL. 0: never (the default). Kept across
 * connections of @p s. @return 0; TERN_EINVAL on NULL. @thread owner
 */
TERN_API int tern_socket_set_hibernate_after(tern_socket *s, uint32_t ms);

/** Whether the socket's TLS connection is hibernated now (its state in the sealed blob).
 * @thread owner */
TERN_API bool tern_socket_is_hibernated(const tern_socket *s);

/**
 * Reads up to @p len bytes from the read buffer. @return bytes read (0: nothing buffered);
 * TERN_EINVAL on NULL @p buf with @p len > 0. @thread owner
 */
TERN_API ssize_t tern_socket_read(tern_socket *s, void *buf, size_t len);

/** Like `tern_socket_read` without consuming. @thread owner */
TERN_API ssize_t tern_socket_peek(tern_socket *s, void *buf, size_t len);

/**
 * Lends the first contiguous run of buffered bytes (zero copy); valid until the next call on
 * @p s or the end of the current callback. Pair with `tern_socket_consume`.
 * @return 0 (out->len is 0 when nothing is buffered). @thread owner
 */
TERN_API int tern_socket_peek_view(tern_socket *s, tern_buf *out);

/** Drops @p n buffered bytes. @return 0; TERN_EINVAL if fewer are buffered. @thread owner */
TERN_API int tern_socket_consume(tern_socket *s, size_t n);

/**
 * Reads one line, up to and including '\n', or @p len - 1 bytes if the line is longer (the
 * rest stays buffered), and NUL-terminates @p buf. @return bytes read without the NUL (0: no
 * complete line and fewer than @p len - 1 bytes buffered, nothing read); TERN_EINVAL if
 * @p len < 2. @thread owner
 */
TERN_API ssize_t tern_socket_read_line(tern_socket *s, char *buf, size_t len);

/** Whether a whole line ('\n') is buffered. @thread owner */
TERN_API bool tern_socket_can_read_line(const tern_socket *s);

/** Whether the peer ended its stream and every byte was read. @thread owner */
TERN_API bool tern_socket_at_end(const tern_socket *s);

/** Bytes waiting in the read buffer. @thread owner */
TERN_API size_t tern_socket_bytes_available(const tern_socket *s);

/** Bytes queued and not yet handed to the kernel. @thread owner */
TERN_API size_t tern_socket_bytes_to_write(const tern_socket *s);

/**
 * Queues @p len bytes (copied) for sending; in CONNECTED state they go out at once when the
 * queue is empty. Writes made while HOST_LOOKUP or CONNECTING are sent once connected.
 * @return 0; TERN_ENOBUFS if the queue would pass `write_buffer_size` (nothing queued);
 *         TERN_ENOTCONN if UNCONNECTED or CLOSING, or after `tern_socket_shutdown_write`;
 *         TERN_ENOMEM: no memory for the copy: nothing was sent or queued, no event follows
 *         from this call, the socket goes on (retry later, or abort). Two failures end the
 *         connection instead, after the call: a send error, or no memory for the rest of data
 *         whose head the kernel already took (the call returns 0: the data is accepted, and
 *         `error` + `disconnected` with the send error or TERN_ENOMEM follow); and under TLS
 *         after the handshake, records the TLS library could not make or the runtime could
 *         not queue (the call returns that TERN_ENOMEM or TERN_E_TLS_* code, and `error` +
 *         `disconnected` with it follow: the TLS stream cannot go on without those records).
 * @thread owner @events bytes_written, error, disconnected
 */
TERN_API int tern_socket_write(tern_socket *s, const void *data, size_t len);

/**
 * Sends what it can of the queue now, without waiting for the loop.
 * @return 0; TERN_ENOTCONN unless CONNECTED or CLOSING; the connection's error when the send
 *         failed and ended it (`error` and `disconnected` follow). @thread owner
 * @events bytes_written, error, disconnected
 */
TERN_API int tern_socket_flush(tern_socket *s);

/** Read buffer limit in bytes (0: no limit). Default 256 KiB. @thread owner */
TERN_API int tern_socket_set_read_buffer_size(tern_socket *s, size_t bytes);
/** The read buffer limit. @thread owner */
TERN_API size_t tern_socket_read_buffer_size(const tern_socket *s);
/** Write queue limit in bytes (0: no limit). Default 4 MiB. @thread owner */
TERN_API int tern_socket_set_write_buffer_size(tern_socket *s, size_t bytes);
/** The write queue limit. @thread owner */
TERN_API size_t tern_socket_write_buffer_size(const tern_socket *s);

/**
 * The write room: how many more bytes `tern_socket_write` accepts before the queue reaches
 * `write_buffer_size` (that limit minus `tern_socket_bytes_to_write`; 0 when the queue is at
 * or past it, after the limit was lowered). A relay or an echo moves at most this much from
 * its input, consumes what the write took, and at 0 waits for `bytes_written`: end-to-end
 * backpressure. It says nothing about the socket's state (a write may still return
 * TERN_ENOTCONN).
 * @return the room in bytes; SIZE_MAX when the queue has no limit (`write_buffer_size` 0).
 * @thread owner
 */
TERN_API size_t tern_socket_write_room(const tern_socket *s);

/** After the peer's FIN, keep the socket open for writing (default off). @thread owner */
TERN_API void tern_socket_set_half_close(tern_socket *s, bool on);

/**
 * Ends our stream (FIN; under TLS close_notify, then FIN) once the queued bytes are sent;
 * reading goes on, and writes return TERN_ENOTCONN.
 * @return 0; TERN_ENOTCONN unless CONNECTED. @thread owner
 * @events bytes_written, error; once the peer ends too: read_finished, disconnected
 */
TERN_API int tern_socket_shutdown_write(tern_socket *s);

/**
 * Graceful close: state CLOSING, queued bytes are sent, then FIN, then the descriptor is
 * closed once the peer ends too (or after 5 s). Incoming bytes are discarded meanwhile.
 * @return 0; TERN_ENOTCONN if already UNCONNECTED. @thread owner
 * @events state_changed, bytes_written, disconnected (reason 0, or the error)
 */
TERN_API int tern_socket_close(tern_socket *s);

/** Closes at once, dropping queued bytes. @thread owner @events state_changed, disconnected */
TERN_API void tern_socket_abort(tern_socket *s);

/** Sets a socket option (kept, and applied when the descriptor exists: now, or when it is
 * made). @return 0; TERN_EINVAL (unknown option, a value out of range, PATH_MTU: read only);
 * a system code. @thread owner */
TERN_API int tern_socket_set_option(tern_socket *s, enum tern_socket_option opt, int value);

/** Reads a socket option into @p value, from the descriptor. @return 0; TERN_ENOTCONN (no
 * descriptor; PATH_MTU: no path known: not connected, or a TYPE_OF_SERVICE change dropped the
 * route the IP stack had, until the next packet); TERN_EINVAL. @thread owner */
TERN_API int tern_socket_option(const tern_socket *s, enum tern_socket_option opt, int *value);

/** The last error code on @p s (0 if none). @thread owner */
TERN_API int tern_socket_error(const tern_socket *s);

/** The last error with its context ("connect 127.0.0.1:9: connection refused"), or "".
 * @return borrowed until the next call on @p s. @thread owner */
TERN_API const char *tern_socket_error_string(const tern_socket *s);

/** The peer's address as "ip:port" / "[ip6]:port" into @p buf. In the server's `incoming`
 * callback it is the address the accept gave (no system call); otherwise getpeername(2).
 * @return 0; TERN_ENOTCONN; TERN_ENOBUFS. @thread owner */
TERN_API int tern_socket_peer_address(const tern_socket *s, char *buf, size_t len);

/** The local address, as `tern_socket_peer_address`. @thread owner */
TERN_API int tern_socket_local_address(const tern_socket *s, char *buf, size_t len);

/** The descriptor, or -1. Do not read, write or close it. @thread owner */
TERN_API int tern_socket_descriptor(const tern_socket *s);

/* ---- blocking helpers (QAbstractSocket::waitFor*) ----------------------------------------
 * For simple clients and tests: each runs the owner reactor's loop (other sockets' events
 * fire meanwhile) until the condition holds or @p timeout_ms passes. Call them on the
 * owner thread, outside the socket's own callbacks (TERN_EBUSY otherwise); normally on a
 * standalone reactor (`tern_reactor_new`). Each returns 0 when the condition holds;
 * TERN_ETIMEDOUT; or, when the connection ended first, its error (or TERN_ENOTCONN).
 * @thread owner (blocking)
 */

/** Until CONNECTED (TCP). @thread owner (blocking) */
TERN_API int tern_socket_wait_for_connected(tern_socket *s, uint32_t timeout_ms);
/** Until `encrypted` (the TLS handshake completed and was accepted). @thread owner (blocking) */
TERN_API int tern_socket_wait_for_encrypted(tern_socket *s, uint32_t timeout_ms);
/** Until bytes are available to read (at once if some already are). @thread owner (blocking) */
TERN_API int tern_socket_wait_for_ready_read(tern_socket *s, uint32_t timeout_ms);
/** Until everything written has been handed to the kernel. @thread owner (blocking) */
TERN_API int tern_socket_wait_for_bytes_written(tern_socket *s, uint32_t timeout_ms);
/** Until the socket is UNCONNECTED and `disconnected` was delivered; returns 0 then.
 * @thread owner (blocking) */
TERN_API int tern_socket_wait_for_disconnected(tern_socket *s, uint32_t timeout_ms);

/* ---- TLS (implemented in ssl/) --------------------------------------------------------- */

/**
 * The TLS configuration this socket uses (a reference is taken; it is frozen). Sockets
 * accepted by a server start with the server's. @return 0; TERN_EBUSY once encryption
 * started; TERN_EINVAL on NULL. @thread owner
 */
TERN_API int tern_socket_set_ssl_config(tern_socket *s, tern_ssl_config *cfg);

/**
 * Starts a server-side handshake on a CONNECTED, UNENCRYPTED socket: at once after accept,
 * or later after a plaintext exchange (STARTTLS; bytes the peer sent after its STARTTLS
 * line are kept and fed to TLS). Writes from now on are queued until `encrypted`.
 * @return 0; TERN_EBUSY if not CONNECTED or not UNENCRYPTED (no effect); TERN_EINVAL if
 *         the socket has no configuration or it has no certificate and key; TERN_ENOMEM.
 * @thread owner
 * @events mode_changed, psk_authentication_required, peer_verify_error, ssl_errors,
 *         encrypted, error, disconnected
 */
TERN_API int tern_socket_start_server_encryption(tern_socket *s);

/**
 * Client-side counterpart of `tern_socket_start_server_encryption` (STARTTLS as a client):
 * sends the ClientHello on a CONNECTED, UNENCRYPTED socket. Uses the peer verify name set
 * with `tern_socket_set_peer_verify_name` (SNI and the name the certificate must match), a
 * PSK (`tern_socket_set_psk`) and a session to offer (`tern_socket_set_session`), if any.
 * @return 0; TERN_EBUSY if not CONNECTED or not UNENCRYPTED (no effect); TERN_EINVAL if the
 *         socket has no configuration, or the TLS library refused the peer verify name;
 *         TERN_ENOMEM. @thread owner
 * @events mode_changed, psk_authentication_required, peer_verify_error, ssl_errors, encrypted,
 *         new_session_ticket, error, disconnected
 */
TERN_API int tern_socket_start_client_encryption(tern_socket *s);

/**
 * Connects to @p host : @p port (as `tern_socket_connect_to_host`), then starts a client
 * handshake. @p peer_name is the SNI and the name the certificate must match; NULL means
 * @p host. Copied. @return as `tern_socket_connect_to_host`; TERN_EINVAL without a
 * configuration. @thread owner
 * @events state_changed, connected, mode_changed, psk_authentication_required,
 *         peer_verify_error, ssl_errors, encrypted, new_session_ticket, error, disconnected
 */
TERN_API int tern_socket_connect_to_host_encrypted(tern_socket *s, const char *host, uint16_t port,
                                                   const char *peer_name);

/** The name the peer's certificate must match (and the SNI sent); copied. @thread owner */
TERN_API int tern_socket_set_peer_verify_name(tern_socket *s, const char *name);

/** The peer verify name set with `tern_socket_set_peer_verify_name` (or by
 * `tern_socket_connect_to_host_encrypted`), or "". @return borrowed until the next call that
 * sets it. @thread owner */
TERN_API const char *tern_socket_peer_verify_name(const tern_socket *s);

/**
 * The peer verification mode of this socket's next handshakes (QSslSocket::setPeerVerifyMode),
 * in place of its configuration's, without building another configuration: e.g. a server that
 * asks only some clients for a certificate (VERIFY_PEER on those, in `incoming`). Applied when
 * a handshake starts: a handshake already running keeps the mode it began with.
 * @return 0; TERN_EINVAL (not a mode); TERN_ENOMEM. @thread owner
 */
TERN_API int tern_socket_set_peer_verify_mode(tern_socket *s, enum tern_verify_mode mode);

/** The peer verification mode in effect: the socket's own, else its configuration's (see
 * `tern_socket_ssl_config`), else TERN_VERIFY_AUTO. @thread owner */
TERN_API enum tern_verify_mode tern_socket_peer_verify_mode(const tern_socket *s);

/**
 * The longest peer chain this socket's next handshakes accept (QSslSocket::setPeerVerifyDepth),
 * in place of its configuration's; applied as `tern_socket_set_peer_verify_mode`.
 * @return 0; TERN_EINVAL (outside 0..100, as `tern_ssl_config_set_peer_verify_depth`);
 *         TERN_ENOMEM. @thread owner
 */
TERN_API int tern_socket_set_peer_verify_depth(tern_socket *s, int depth);

/** The peer verify depth in effect: the socket's own, else its configuration's, else 9 (the
 * default). @thread owner */
TERN_API int tern_socket_peer_verify_depth(const tern_socket *s);

/**
 * The configuration the socket's handshakes use (QSslSocket::sslConfiguration): its own
 * (`tern_socket_set_ssl_config`), else its server's (an accepted socket), else the process
 * default (`tern_ssl_config_set_default`, read now; a handshake takes the default in effect
 * when it starts). @return a new reference (release it with `tern_ssl_config_unref`), or NULL
 * when there is none. @thread owner
 */
TERN_API tern_ssl_config *tern_socket_ssl_config(const tern_socket *s);

/**
 * The protocol versions the socket's handshakes may negotiate (QSslSocket::protocol: what is
 * configured, the range of `tern_ssl_config_set_protocol_range`, default TLS 1.2..1.3), from
 * the configuration `tern_socket_ssl_config` names; the version a handshake agreed on is
 * `tern_socket_session_protocol`. @p min, @p max (each may be NULL) get the range, or
 * TERN_SSL_PROTOCOL_UNKNOWN without a configuration.
 * @return 0; TERN_EINVAL when the socket has no configuration. @thread owner
 */
TERN_API int tern_socket_protocol(const tern_socket *s, enum tern_ssl_protocol *min,
                                  enum tern_ssl_protocol *max);

/**
 * The local private key (QSslSocket::privateKey) of the socket's configuration (on a server,
 * of the configuration SNI chose for the connection, as `tern_socket_local_certificate`), as
 * DER: the key as loaded, decrypted if it had a passphrase (handle and zero @p buf as the key
 * it is). @p buf NULL asks only the length.
 * @return the DER length (0: no key); TERN_ENOBUFS if @p len is smaller (nothing written).
 * @thread owner
 */
TERN_API ssize_t tern_socket_private_key(const tern_socket *s, void *buf, size_t len);

/**
 * The local certificate and its chain, the leaf first (QSslSocket::localCertificateChain), of
 * the socket's configuration (or SNI's, as `tern_socket_private_key`): up to @p max new
 * references into @p out (release each with `tern_certificate_unref`; an entry is NULL when
 * out of memory). @p out may be NULL with @p max 0 to count.
 * @return the chain's length (0: no local certificate). @thread owner
 */
TERN_API size_t tern_socket_local_certificate_chain(const tern_socket *s, tern_certificate **out,
                                                    size_t max);

/**
 * Inside `ssl_errors`: postpones the decision on the errors (QSslSocket's sslErrors() and a
 * later continueInterruptedHandshake()), so that the program can decide elsewhere (ask a user,
 * query a pinning service) and answer with `tern_socket_resume` from any thread. The handshake
 * waits without blocking the reactor: no `encrypted`, no data either way (writes stay
 * queued), within the handshake deadline (`tern_ssl_config_set_handshake_timeout`): a deadline
 * that passes first fails the handshake with TERN_E_TLS_TIMEOUT, and so does any other end
 * of the connection meanwhile (the peer closing, `tern_socket_abort`) with its own reason.
 *
 * The deferral holds the socket: it is not freed (neither by the runtime after `disconnected`
 * nor by `tern_socket_free`, which then takes effect later) until `tern_socket_resume` was
 * called once and its task ran. So every successful call MUST be followed by exactly one
 * `tern_socket_resume`, even when the connection ended meanwhile, and no later one.
 * @return 0 (calling it again in the same event changes nothing); TERN_EINVAL outside
 *         `ssl_errors`; TERN_EBUSY when an earlier deferral of @p s was not resumed yet.
 * @thread owner (inside `ssl_errors`)
 * @events none here; see `tern_socket_resume`
 */
TERN_API int tern_socket_defer_ssl_errors(tern_socket *s);

/**
 * The decision on errors deferred with `tern_socket_defer_ssl_errors`: @p ignore_errors true
 * goes on with this handshake's errors ignored (as `tern_socket_ignore_all_ssl_errors` in the
 * event), false refuses the peer (user_canceled and close_notify are sent: the only alerts the
 * TLS library can send once the handshake's records are protected). The decision travels to
 * the socket's reactor; nothing happens inside this call.
 * @return 0; TERN_ECANCELED when the connection ended before the decision (it had no effect,
 *         and the hold is given back) or the reactor is gone; TERN_EINVAL when nothing is
 *         deferred (never deferred, or this deferral was resumed already: only while @p s
 *         still exists, see above); TERN_E_QUEUE_FULL (nothing happened: retry).
 * @thread any (posts to the owner reactor), while @p s exists: until the task of its one
 *         resume ran
 * @events on the owner reactor, never inside this call: `encrypted`, then data flows
 *         (`ready_read`, `bytes_written`...); or `error` + `disconnected` (TERN_E_TLS_VERIFY)
 */
TERN_API int tern_socket_resume(tern_socket *s, bool ignore_errors);

/** The TLS mode. @thread owner */
TERN_API enum tern_ssl_mode tern_socket_mode(const tern_socket *s);

/** Whether the handshake completed and the connection is encrypted. @thread owner */
TERN_API bool tern_socket_is_encrypted(const tern_socket *s);

/** The negotiated protocol (TERN_SSL_PROTOCOL_UNKNOWN before `encrypted`). @thread owner */
TERN_API enum tern_ssl_protocol tern_socket_session_protocol(const tern_socket *s);

/** The negotiated cipher suite's name, or "" before `encrypted`. @return borrowed while the
 * connection lives. @thread owner */
TERN_API const char *tern_socket_session_cipher(const tern_socket *s);

/** The key-exchange group the handshake used, by tern's name (see `tern_ssl_config_set_groups`:
 * "X25519", "P-256", "X25519MLKEM768"...), or "" (before `encrypted`, or none: a TLS 1.2
 * resumption, a TLS 1.3 PSK without (EC)DHE, a static-PSK suite). @return a static string
 * (borrowed while the connection lives). @thread owner */
TERN_API const char *tern_socket_session_group(const tern_socket *s);

/** The ALPN protocol the handshake agreed on, or "" (none, or before `encrypted`).
 * @return borrowed while the connection's TLS state lives. @thread owner */
TERN_API const char *tern_socket_alpn_protocol(const tern_socket *s);

/** On a server: the host name the client asked for with SNI, or "" (none).
 * @return borrowed while the connection's TLS state lives. @thread owner */
TERN_API const char *tern_socket_sni_name(const tern_socket *s);

/**
 * On a client with an OCSP policy: whether the server stapled a response, which the TLS
 * library verified (good, for the peer's certificate, signed by its issuer). When it did,
 * @p produced_at (if not NULL) gets the response's producedAt time (seconds since the
 * epoch). (The response's bytes are not exposed by this build of the TLS library.)
 * @return 1 stapled and good; 0 none; TERN_ENOTCONN before `encrypted`. @thread owner
 */
TERN_API int tern_socket_ocsp_stapled(const tern_socket *s, int64_t *produced_at);

/** TLS record bytes received and not yet decrypted. @thread owner */
TERN_API size_t tern_socket_encrypted_bytes_available(const tern_socket *s);

/** TLS record bytes queued for the kernel. @thread owner */
TERN_API size_t tern_socket_encrypted_bytes_to_write(const tern_socket *s);

#ifdef __cplusplus
}
#endif
#endif

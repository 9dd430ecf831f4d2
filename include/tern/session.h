/* SPDX-License-Identifier: MIT */
/**
 * @file session.h
 * Session resumption: the server's ticket keys (owned by tern, rotated, shared by every
 * reactor and, through a key file or a shared store, by every server of a fleet) and the
 * client's sessions (kept per host:port, offered on the next connect, exported as bytes).
 *
 * A ticket is the session state sealed with ChaCha20-Poly1305 under a ticket key: the key's
 * 16-byte name, a 16-byte IV (a 12-byte nonce unique per ticket and the issue time) and the
 * tag travel with it. A ticket sealed with a key the server does not have, or older than the
 * lifetime, falls back to a full handshake, never to a failure.
 */
#ifndef TERN_SESSION_H
#define TERN_SESSION_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- server: ticket keys ------------------------------------------------------------------ */

/** A set of ticket keys: the first seals new tickets, every key opens tickets. Readers
 * (handshakes on any reactor) never lock; a rotation or a reload swaps the set atomically. */
typedef struct tern_ticket_keys tern_ticket_keys;

/** Default ticket lifetime: 2 hours. */
#define TERN_TICKET_LIFETIME_DEFAULT 7200u
/** `rotate_s` for a set that only rotates when told (`tern_ticket_keys_rotate`). */
#define TERN_TICKET_ROTATE_NEVER 0xFFFFFFFFu

/**
 * A set with one random key.
 * @param lifetime_s  how long a ticket resumes (0: TERN_TICKET_LIFETIME_DEFAULT); 1..604800
 * @param rotate_s    a new random key every @p rotate_s seconds, on a thread of the set's own
 *                    that sleeps in between (0: lifetime/2); TERN_TICKET_ROTATE_NEVER: none.
 *                    A retired key still opens tickets until its last ticket's lifetime has
 *                    passed, then it is zeroed and dropped.
 * @return the set, or NULL (out of memory, bad argument, no randomness). @thread setup
 */
TERN_API tern_ticket_keys *tern_ticket_keys_new(uint32_t lifetime_s, uint32_t rotate_s);

/** Makes a new random key the sealing one now (the others keep opening). @return 0;
 * TERN_ENOMEM; TERN_EINVAL. @thread any but a reactor (waits for readers of the old set) */
TERN_API int tern_ticket_keys_rotate(tern_ticket_keys *k);

/**
 * Replaces the set with the keys of @p path, so that several servers share them: one key per
 * line, 96 hex digits (48 random bytes: `openssl rand -hex 48`: the 16-byte name, then the
 * 32-byte key), `#` comments and blank lines ignored. The first key seals, every key opens.
 * At most 16 keys. Any bad line refuses the whole file (the set in force stays), and the
 * automatic rotation stops: whoever writes the file rotates (write a new first line, keep the
 * old ones for a lifetime, reload).
 * @param err  (may be NULL) "FILE:LINE: reason" or "FILE: reason" on failure; on success a
 *             warning when the file is readable by group or others, else ""
 * @return 0; TERN_EINVAL; TERN_ENOMEM. @thread any but a reactor
 */
TERN_API int tern_ticket_keys_load_file(tern_ticket_keys *k, const char *path, char *err,
                                        size_t err_len);

/**
 * Replaces the set with @p n keys given in memory (a fleet's shared store: Redis, ...): each
 * key is 48 bytes, the key file's layout (the 16-byte name, then the 32-byte key), one after
 * the other in @p keys. Key @p sealing seals new tickets, every key opens them; the order of
 * the others does not matter. As with a key file, the automatic rotation stops (whoever gives
 * the keys rotates: call again with the new set) and a sealing key equal to the one in force
 * keeps its age (`tern_ticket_keys_age`). The keys are copied (@p keys stays the caller's; the
 * copies are zeroed when replaced or freed); nothing is logged.
 * @param n        1..16
 * @param sealing  the index of the sealing key, below @p n
 * @return 0; TERN_EINVAL (NULL, @p n out of range, @p sealing not below @p n, two keys with
 *         the same name: the set in force stays); TERN_ENOMEM.
 * @thread any but a runtime's reactor (blocking: waits until no handshake can still read the
 *         old set; a handshake holds it for microseconds, and a reactor that waits would hold
 *         up its own connections). A standalone reactor (`tern_reactor_new`), such as a
 *         program's fleet thread, may call it from its callbacks: it is never inside a read
 *         section there, so the wait cannot deadlock.
 */
TERN_API int tern_ticket_keys_set(tern_ticket_keys *k, const uint8_t *keys, size_t n,
                                  size_t sealing);

/** The number of keys in the set. @thread any */
TERN_API size_t tern_ticket_keys_count(tern_ticket_keys *k);

/** How long the sealing key has sealed, in seconds (since its rotation, or since a key file
 * made it the sealing key: loading the same file again keeps its age): a metric that tells a
 * fleet whose key writer stopped rotating. @return the age; -1 on NULL. @thread any */
TERN_API int64_t tern_ticket_keys_age(tern_ticket_keys *k);

/** The ticket lifetime in seconds. @thread any */
TERN_API uint32_t tern_ticket_keys_lifetime(const tern_ticket_keys *k);

/** Stops the rotation thread and frees the set (keys are zeroed). Only once no configuration
 * that uses it serves any more. NULL is a no-op. @thread setup (blocking: joins the rotation
 * thread) */
TERN_API void tern_ticket_keys_free(tern_ticket_keys *k);

/**
 * Servers: seal session tickets with @p k (shared by every reactor and every configuration
 * given the same set). Without it a configuration uses wolfSSL's own random key, private to
 * that configuration and never rotated. NULL goes back to that. The caller keeps @p k alive
 * while the configuration is in use.
 * @return 0; TERN_EINVAL; TERN_EBUSY (frozen). @thread setup
 */
TERN_API int tern_ssl_config_set_ticket_keys(tern_ssl_config *cfg, tern_ticket_keys *k);

/**
 * Servers: TLS 1.3 NewSessionTicket messages after each full handshake (@p tls13_count,
 * 0..16, default 1; 0: none) and TLS 1.2 tickets (@p tls12, default true).
 * @return 0; TERN_EINVAL; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_session_tickets(tern_ssl_config *cfg, unsigned tls13_count,
                                                 bool tls12);

/**
 * wolfSSL's session-id cache (TLS 1.2 resumption without tickets, and a client's own cache).
 * It is process-wide and takes a lock per lookup, so it is off by default on servers:
 * tickets resume without server state. @p on true turns it on for this configuration.
 * @return 0; TERN_EINVAL; TERN_EBUSY. @thread setup
 */
TERN_API int tern_ssl_config_set_session_cache(tern_ssl_config *cfg, bool on);

/* ---- both sides ------------------------------------------------------------------------- */

/** Whether the handshake of @p s resumed a session (ticket or session id). @thread owner */
TERN_API bool tern_socket_session_reused(const tern_socket *s);

/* ---- client: sessions -------------------------------------------------------------------- */

/**
 * The session of @p s (after `encrypted`; in TLS 1.3 once `new_session_ticket` fired) as
 * bytes a later connection can offer (`tern_socket_set_session`), also from another process.
 * They hold the session's secret: store them like a key.
 * @return the length the whole session needs; if that is > @p len nothing was written (call
 *         again with a larger buffer). TERN_ENOTCONN (no session yet); TERN_EINVAL.
 * @thread owner
 */
TERN_API ssize_t tern_socket_session_export(tern_socket *s, void *buf, size_t len);

/**
 * Offers the session @p data (from `tern_socket_session_export`) on the next handshake of
 * @p s: before `connect_to_host_encrypted` / `start_client_encryption`. If the server does
 * not resume it, the handshake is a full one; but a wolfSSL 5.7.x client (tern's) cannot fall
 * back when a server refuses its session (fixed in later wolfSSL): that handshake fails with
 * TERN_E_TLS_PROTOCOL, the error string says a session was offered, and connecting again
 * without it works. @return 0; TERN_EINVAL (not a session);
 * TERN_EBUSY (encryption started). @thread owner
 */
TERN_API int tern_socket_set_session(tern_socket *s, const void *data, size_t len);

/**
 * A store of client sessions by peer ("host:port"), so that connections resume without the
 * program's help. `get` copies the session for @p peer into @p buf and returns its length (0:
 * none; more than @p len: too small, nothing copied); `put` stores a copy (replacing the
 * previous one of @p peer), or with @p len 0 forgets @p peer's session (a handshake that
 * offered it failed). Called on the socket's reactor thread: they must not block.
 */
typedef struct tern_session_store_ops {
    size_t (*get)(void *ctx, const char *peer, void *buf, size_t len);
    void (*put)(void *ctx, const char *peer, const void *data, size_t len);
} tern_session_store_ops;

/**
 * Clients of @p cfg keep their sessions in a store: with @p ops NULL, tern's own (in memory,
 * up to @p capacity peers, least recently stored first out, shared by the reactors behind a
 * lock taken once per connect and per ticket); or @p ops on @p ctx. A connect to a peer with
 * a stored session offers it; a new session (after the handshake, or a TLS 1.3 ticket)
 * replaces it. @p capacity 0 with @p ops NULL turns the store off.
 * @return 0; TERN_EINVAL; TERN_EBUSY (frozen); TERN_ENOMEM. @thread setup
 */
TERN_API int tern_ssl_config_set_client_sessions(tern_ssl_config *cfg, size_t capacity,
                                                 const tern_session_store_ops *ops, void *ctx);

#ifdef __cplusplus
}
#endif
#endif

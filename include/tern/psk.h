/* SPDX-License-Identifier: MIT */
/**
 * @file psk.h
 * Pre-shared keys (QSslPreSharedKeyAuthenticator), TLS 1.2 PSK suites and TLS 1.3 external
 * PSK.
 *
 * Server side, asynchronously: the runtime reads the client's PSK identity from the
 * handshake bytes before wolfSSL sees them and fires `psk_authentication_required` with an
 * authenticator. The handler answers at once (`_complete` / `_reject`), or calls `_defer`
 * and answers later from any thread (a database, a file store): the handshake waits without
 * blocking the reactor, and the record that carried the identity is held back until the key
 * is known. Answering none of the three means "unknown identity", unless the configuration
 * has a store (`tern_ssl_config_set_psk_lookup`): then the store answers on a PSK worker
 * thread. The lookup timeout and the handshake deadline bound the wait.
 *
 * Client side: `tern_socket_set_psk` (and `tern_socket_set_psk_hash`) before the handshake,
 * or answer `psk_authentication_required` (QSslSocket's preSharedKeyAuthenticationRequired on
 * a client): a client whose configuration has PSK enabled, with no key of its own and a
 * handler for the event, asks for its identity (`tern_psk_authenticator_set_identity`) and
 * key, inline or deferred as a server does. A client limited to TLS 1.2
 * (`tern_ssl_config_set_protocol_range`) asks once the server's first flight came, with the
 * server's identity hint (RFC 4279 2; "" when the server sent none): tern reads the flight
 * ahead of wolfSSL and holds wolfSSL before the ServerHelloDone, for which wolfSSL needs the
 * key. A client that may speak TLS 1.3 asks before its ClientHello, which carries the PSK
 * (TLS 1.3 has no hint: "").
 *
 * TLS 1.3 binds an external PSK to a hash (`tern_psk_hash`, SHA-256 unless said otherwise):
 * the server answers with a suite of that hash, or refuses with "no shared suite for this
 * PSK".
 */
#ifndef TERN_PSK_H
#define TERN_PSK_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The longest identity and key tern accepts. */
#define TERN_PSK_MAX_IDENTITY 128
#define TERN_PSK_MAX_KEY 64
#define TERN_PSK_MIN_KEY 16

/**
 * The hash a key is bound to in TLS 1.3 (RFC 8446 4.2.11: an external PSK MUST be used only
 * with suites of its hash; it keys the binder). SHA-256 keys serve TLS_AES_128_GCM_SHA256,
 * TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_CCM_SHA256 and TLS_AES_128_CCM_8_SHA256; SHA-384
 * keys serve TLS_AES_256_GCM_SHA384. The server picks, in the order of its cipher list, the
 * first suite of the key's hash that the client offers; a client that offers none, or binds
 * the key with the other hash, is refused with a handshake_failure alert and the error
 * "no shared suite for this PSK" (counted as `psk_no_suite`), never as a wrong key. TLS 1.2
 * PSK suites ignore it (each suite names its own PRF hash).
 */
enum tern_psk_hash {
    TERN_PSK_HASH_SHA256 = 0, /**< the default */
    TERN_PSK_HASH_SHA384 = 1,
};

/** The identity the client sent: untrusted bytes, not a C string. @return a view valid while
 * @p a lives. @thread any (while you hold @p a) */
TERN_API tern_buf tern_psk_authenticator_identity(const tern_psk_authenticator *a);

/** The identity hint: on a server its own, on a client the one the server sent (TLS 1.2),
 * or "". @thread any */
TERN_API const char *tern_psk_authenticator_identity_hint(const tern_psk_authenticator *a);

/** The longest identity accepted (TERN_PSK_MAX_IDENTITY). @thread any */
TERN_API size_t tern_psk_authenticator_maximum_identity_length(const tern_psk_authenticator *a);

/** The longest key accepted (TERN_PSK_MAX_KEY). @thread any */
TERN_API size_t tern_psk_authenticator_maximum_key_length(const tern_psk_authenticator *a);

/**
 * Keeps the handshake waiting after the event returns: the caller now holds a reference and
 * must answer with `_complete` or `_reject` (from any thread), which consume it.
 * @return @p a. @thread owner (inside `psk_authentication_required`)
 */
TERN_API tern_psk_authenticator *tern_psk_authenticator_defer(tern_psk_authenticator *a);

/**
 * Answers with the key (copied; 16..64 bytes). Inside the event it takes effect when the
 * event returns; after `_defer`, from any thread, the answer travels to the socket's reactor
 * and consumes the caller's reference.
 * @return 0; TERN_EINVAL (key length); TERN_E_QUEUE_FULL (nothing happened, the reference is
 *         still yours: retry); TERN_ECANCELED (the connection is gone; the reference was
 *         consumed). @thread any, while the runtime exists: a thread that answers must have
 *         returned from this call before `tern_runtime_free`.
 * @events on the socket's reactor, never inside this call: the handshake goes on
 *         (`encrypted`; `error` + `disconnected` if the client's key differs)
 */
TERN_API int tern_psk_authenticator_complete(tern_psk_authenticator *a, const void *key, size_t len);

/** Refuses: the handshake fails as for an unknown identity. Returns and consumes as
 * `_complete`. @thread any
 * @events on the socket's reactor, never inside this call: `error`, `disconnected` */
TERN_API int tern_psk_authenticator_reject(tern_psk_authenticator *a);

/**
 * A client's identity (copied; 1..TERN_PSK_MAX_IDENTITY bytes without NUL), sent with the key
 * that `_complete` gives next. Call it before `_complete`, on the thread that completes
 * (inside the event, or after `_defer` while you hold the reference). A client that completes
 * without an identity fails its handshake (TERN_E_TLS_HANDSHAKE). Servers ignore it.
 * @return 0; TERN_EINVAL (NULL, empty, too long, or holding a NUL).
 * @thread any (while you hold @p a)
 */
TERN_API int tern_psk_authenticator_set_identity(tern_psk_authenticator *a, const void *identity,
                                                 size_t len);

/**
 * Says the TLS 1.3 hash of the key that `_complete` gives next (default SHA-256; see
 * `tern_psk_hash`). Call it before `_complete`, on the thread that completes: inside the
 * event, or after `_defer` while you hold the reference. Unknown identities (`_reject`) are
 * answered as SHA-256 identities are, so the two cannot be told apart on the wire; the hash
 * of a SHA-384 identity can be learned by a client that offers suites of one hash only (the
 * price of telling a suite mismatch apart from a wrong key).
 * @return 0; TERN_EINVAL (NULL, or not a `tern_psk_hash`). @thread any (while you hold @p a)
 */
TERN_API int tern_psk_authenticator_set_key_hash(tern_psk_authenticator *a,
                                                  enum tern_psk_hash hash);

/**
 * A client's identity and key (copied) for the next handshake of @p s: TLS 1.3 external
 * PSK or a TLS 1.2 PSK suite, whichever the configurations of both sides allow.
 * @return 0; TERN_EINVAL (identity 1..128 bytes, key 16..64 bytes); TERN_EBUSY once
 *         encryption started; TERN_ENOMEM. @thread owner
 */
TERN_API int tern_socket_set_psk(tern_socket *s, const void *identity, size_t identity_len,
                                 const void *key, size_t key_len);

/**
 * The TLS 1.3 hash of the key given to `tern_socket_set_psk` (which resets it to SHA-256).
 * The client offers the key with the suites of its cipher list that have this hash (the
 * configuration needs at least one, e.g. TLS13-AES256-GCM-SHA384 for SHA-384, or the key is
 * not offered in TLS 1.3), and accepts whichever of them the server picks.
 * @return 0; TERN_EINVAL (no key set yet, or not a `tern_psk_hash`); TERN_EBUSY once
 *         encryption started. @thread owner
 */
TERN_API int tern_socket_set_psk_hash(tern_socket *s, enum tern_psk_hash hash);

/* ---- stores: lookups on the runtime's PSK workers ---------------------------------------- */

/** A store's answer. */
enum tern_psk_lookup_result {
    TERN_PSK_FOUND = 0,        /**< the key is in @p key, its length in @p key_len */
    TERN_PSK_UNKNOWN = 1,      /**< no such identity */
    TERN_PSK_LOOKUP_ERROR = 2, /**< the store failed (counted apart; unknown on the wire) */
    TERN_PSK_FOUND_SHA384 = 3, /**< as FOUND, for a key bound to SHA-384 (`tern_psk_hash`) */
};

/**
 * A store: called on one of the runtime's PSK worker threads (`psk_workers`), never on a
 * reactor, so it may block (a database, a file, a remote service). Several workers may call
 * it at once. @p identity is untrusted bytes, not NUL-terminated. On TERN_PSK_FOUND (a
 * SHA-256 key) or TERN_PSK_FOUND_SHA384 it writes 16..TERN_PSK_MAX_KEY bytes into @p key and
 * their number into @p key_len (any other length counts as a store error).
 */
typedef enum tern_psk_lookup_result (*tern_psk_lookup_fn)(void *ctx, const void *identity,
                                                          size_t identity_len, uint8_t *key,
                                                          size_t *key_len);

/**
 * Server configurations with PSK enabled: identities that `psk_authentication_required`
 * leaves unanswered (no handler, or a handler that neither answers nor defers) are queued
 * for @p fn on the PSK workers of the socket's runtime. The handshake waits without
 * blocking its reactor. A full queue (`psk_queue_capacity`) or a runtime with no PSK
 * workers refuses the handshake like an unknown identity, counted as `psk_overload`.
 * @p fn NULL removes the store. @return 0; TERN_EINVAL; TERN_EBUSY (frozen). @thread setup
 */
TERN_API int tern_ssl_config_set_psk_lookup(tern_ssl_config *cfg, tern_psk_lookup_fn fn,
                                            void *ctx);

/**
 * Bounds on waiting for PSK answers (event, deferred answer or store alike).
 * @param lookup_timeout_ms  a lookup not answered within this fails the handshake
 *                           (TERN_E_TLS_TIMEOUT, counted as `psk_timeouts`); the handshake
 *                           timeout still bounds the whole handshake. 0: no separate
 *                           bound. Default 5000.
 * @param max_pending        handshakes of one reactor that may wait for an answer at once;
 *                           one more is refused like an unknown identity (`psk_overload`).
 *                           1..1<<20, default 1024.
 * @return 0; TERN_EINVAL; TERN_EBUSY (frozen). @thread setup
 */
TERN_API int tern_ssl_config_set_psk_limits(tern_ssl_config *cfg, uint32_t lookup_timeout_ms,
                                            uint32_t max_pending);

/* ---- identity tables --------------------------------------------------------------------- */

/** An immutable table of identities and keys, as loaded from a file (stunnel's PSKsecrets
 * format). Immutable once made: any thread may look up concurrently. */
typedef struct tern_psk_table tern_psk_table;

/**
 * Loads @p path: one `identity:hexkey` or `identity:hexkey:hash` per line, `#` comments and
 * blank lines ignored, trailing spaces and CR trimmed. The key is 16..64 bytes as hex; the
 * optional hash is `sha256` (the default) or `sha384` (`tern_psk_hash`, TLS 1.3 only). The
 * identity is everything before the key's ':' (1..128 bytes; it may hold ':'). A last field
 * is the hash when it says sha256/sha384 (any case), or when it is not hexadecimal and follows
 * a field that looks like a key (32+ hex digits). Any bad line (an unknown hash such as `md5`
 * included) refuses the whole file.
 * @param out  the table, on success
 * @param err  (may be NULL) receives "FILE:LINE: reason" or "FILE: reason" on failure, and on
 *             success a warning when the file is readable by group or others ("" otherwise)
 * @return 0; TERN_EINVAL (a bad line, a duplicate identity, an unreadable file); TERN_ENOMEM.
 * @thread any (blocking: reads the file)
 */
TERN_API int tern_psk_table_load_file(const char *path, tern_psk_table **out, char *err,
                                      size_t err_len);

/** The number of identities. @thread any */
TERN_API size_t tern_psk_table_count(const tern_psk_table *t);

/**
 * Looks up @p identity; copies the key into @p key (at least TERN_PSK_MAX_KEY bytes).
 * @return the key length (16..64); 0 if the identity is unknown. @thread any
 */
TERN_API size_t tern_psk_table_lookup(const tern_psk_table *t, const void *identity, size_t len,
                                      uint8_t *key);

/**
 * As `tern_psk_table_lookup`, and stores the key's hash in @p hash when found (@p hash may
 * be NULL). @return the key length, or 0 if unknown. @thread any
 */
TERN_API size_t tern_psk_table_lookup_with_hash(const tern_psk_table *t, const void *identity,
                                                size_t len, uint8_t *key, enum tern_psk_hash *hash);

/**
 * The identity on the file's @p index-th identity line (0 .. count - 1, in the file's order),
 * for a client that takes a table's identities in turn (tern-bench). Copies its key into
 * @p key (at least TERN_PSK_MAX_KEY bytes) and stores its hash in @p hash (may be NULL).
 * @param identity  (may be NULL) receives the identity, borrowed from @p t until it is freed
 * @return the key length (16..64); 0 if @p index is not below the count. @thread any
 */
TERN_API size_t tern_psk_table_entry(const tern_psk_table *t, size_t index, tern_buf *identity,
                                     uint8_t *key, enum tern_psk_hash *hash);

/** Frees @p t (keys are zeroed). NULL is a no-op. @thread any (once no reader uses it) */
TERN_API void tern_psk_table_free(tern_psk_table *t);

/* ---- a reloadable store ------------------------------------------------------------------ */

/** A PSK table that can be replaced while reactors read it: lookups never lock; a reload
 * swaps the table atomically and frees the old one once no reader can hold it (ck_epoch). */
typedef struct tern_psk_store tern_psk_store;

/** An empty store. @return it or NULL (out of memory). @thread setup */
TERN_API tern_psk_store *tern_psk_store_new(void);

/**
 * Loads @p path (as `tern_psk_table_load_file`) and, only if the whole file is good, makes it
 * the store's table; otherwise the previous table stays in force. @p err as there.
 * @return 0; TERN_EINVAL; TERN_ENOMEM. @thread any but a reactor (blocking: reads the file
 *         and waits for readers of the old table to leave)
 */
TERN_API int tern_psk_store_load_file(tern_psk_store *st, const char *path, char *err,
                                      size_t err_len);

/** Looks up @p identity in the current table (as `tern_psk_table_lookup`). Lock-free.
 * @return the key length, or 0 if unknown. @thread any */
TERN_API size_t tern_psk_store_lookup(tern_psk_store *st, const void *identity, size_t len,
                                      uint8_t *key);

/** As `tern_psk_store_lookup`, with the key's hash (`tern_psk_table_lookup_with_hash`), both
 * from the same table. @thread any */
TERN_API size_t tern_psk_store_lookup_with_hash(tern_psk_store *st, const void *identity,
                                                size_t len, uint8_t *key, enum tern_psk_hash *hash);

/** The number of identities in the current table. @thread any */
TERN_API size_t tern_psk_store_count(tern_psk_store *st);

/** A `tern_psk_lookup_fn` over a `tern_psk_store` (pass the store as @p ctx): for a
 * configuration that should look identities up on the PSK workers rather than inline.
 * Answers TERN_PSK_FOUND_SHA384 for `:sha384` identities. @thread any (lock-free) */
TERN_API enum tern_psk_lookup_result tern_psk_store_lookup_fn(void *store, const void *identity,
                                                              size_t identity_len, uint8_t *key,
                                                              size_t *key_len);

/** Frees the store and its table. NULL is a no-op. @thread setup (once no thread uses it) */
TERN_API void tern_psk_store_free(tern_psk_store *st);

#ifdef __cplusplus
}
#endif
#endif

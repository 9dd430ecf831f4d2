/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine: one TLS connection as a function of bytes, with no descriptor, no reactor and
 * no thread (in the spirit of picotls's ptls_handshake(tls, sendbuf, input, &inlen)).
 *
 * Ciphertext in: each call takes a pointer and a length and reports in *inlen how much it
 * consumed; the caller keeps the rest and offers it again with what comes next. The engine keeps
 * a partial record itself (inside wolfSSL), so the input may be split anywhere, down to one byte
 * per call. Ciphertext out: appended through the engine's sink (tls->out), a function and its
 * context: the socket appends to its output queue, a test to a buffer. Plaintext out: into the
 * caller's buffer (tern__tls_engine_read).
 *
 * The engine's state is ssl/'s tern__tls (ssl_internal.h); a socket's (ssl/socket_tls.c, the
 * adapter between runtime/seam.h and this) or a standalone one (tern__tls_engine_new: tests,
 * fuzz targets). Certificate problems are data: collected in tls->errors while the handshake
 * runs, and only fatal when nobody may ignore them (tls->must_verify and not
 * tls->verify_deferred).
 *
 * One thread at a time per engine (the socket's owner); the configuration is shared read-only.
 */
#ifndef TERN_SSL_TLS_ENGINE_H
#define TERN_SSL_TLS_ENGINE_H

#include "ssl_internal.h"

/* What an engine call achieved (negative returns are TERN_E* codes: the connection failed, see
 * tern__tls_engine_failure). */
enum tern__tls_status {
    TERN__TLS_WANT_INPUT = 0, /* more ciphertext is needed (or, reading: no plaintext yet) */
    TERN__TLS_DONE = 1,       /* the handshake completed */
    TERN__TLS_CLOSED = 2,     /* the peer's close_notify: an orderly end of its stream */
    TERN__TLS_WANT_PSK = 3,   /* a server holds on a PSK identity: answer with
                               * tern__tls_engine_psk_answer, then call the handshake again
                               * with the same input (none of it was consumed); a TLS 1.2
                               * client that asks for its key holds before the server's
                               * ServerHelloDone (what came before it was consumed) */
};

/* The I/O and verify callbacks of a wolfSSL context (ssl_config.c calls it for each). */
void tern__tls_ctx_init(WOLFSSL_CTX *ctx);

/* A standalone engine for @cfg (a reference is taken), writing its records through
 * @out(@out_ctx, ...). Not started: set what the connection needs (tern__tls_engine_set_peer_name,
 * tern__tls_set_psk), then tern__tls_engine_start. NULL: out of memory. */
tern__tls *tern__tls_engine_new(tern_ssl_config *cfg, tern__tls_out_fn out, void *out_ctx);
/* A client's SNI and verify name (copied; NULL: none). 0 or TERN_ENOMEM. */
int tern__tls_engine_set_peer_name(tern__tls *tls, const char *name);
/* Starts a standalone engine as a server or a client: tern__tls_engine_setup. */
int tern__tls_engine_start(tern__tls *tls, bool server, char *err, size_t errlen);
void tern__tls_engine_free(tern__tls *tls);

/* Makes @tls's wolfSSL connection for @cfg (tls->cfg, tls->peer_name, tls->psk and the I/O
 * sink already set): verification, SNI, ALPN, OCSP, the PSK callbacks (a server's PSK parser),
 * a client's key shares and ticket callback. 0, or a code with the reason in @err. */
int tern__tls_engine_setup(tern__tls *tls, tern_ssl_config *cfg, bool server, char *err,
                           size_t errlen);

/* Runs the handshake on @in (@*inlen bytes; consumed count written back; @in may be NULL with
 * 0). TERN__TLS_WANT_INPUT, TERN__TLS_DONE (tls->handshake_done is set; the rest of @in is
 * records for tern__tls_engine_read), or a negative code. */
int tern__tls_engine_handshake(tern__tls *tls, const void *in, size_t *inlen);

/* Decrypts from @in (as above) into @buf (@*len bytes of room; written back: plaintext
 * bytes). TERN__TLS_WANT_INPUT (with or without plaintext), TERN__TLS_CLOSED (the peer's
 * close_notify), or a negative code. Call again while it gives plaintext: wolfSSL may hold
 * more of a record than @buf took. */
int tern__tls_engine_read(tern__tls *tls, const void *in, size_t *inlen, void *buf, size_t *len);

/* Seals @len bytes of plaintext into records through the sink. 0 or a negative code. */
int tern__tls_engine_write(tern__tls *tls, const void *data, size_t len);

/* Queues close_notify through the sink (RFC 8446 6.1), if the handshake completed. */
void tern__tls_engine_close(tern__tls *tls);

/* The application refused a completed handshake (its certificate errors): user_canceled and
 * close_notify through the sink (RFC 8446 6.1), the only alerts the TLS library lets a
 * caller send once records are protected. */
void tern__tls_engine_cancel(tern__tls *tls);

/* A fatal plaintext alert @description through the sink, whatever was written: only while
 * records are still plaintext (TLS 1.2 before ChangeCipherSpec). */
void tern__tls_engine_alert_plaintext(tern__tls *tls, int description);

/* A fatal plaintext alert @description through the sink, if no record was written yet. */
void tern__tls_engine_alert(tern__tls *tls, int description);

/* After a negative return: the failure as text in @buf (the wolfSSL error and which alert
 * ended the connection), its code returned. Before the handshake completed, a plaintext alert
 * goes out first when wolfSSL refused the first flight without one (if @may_alert). */
int tern__tls_engine_failure(tern__tls *tls, bool may_alert, char *buf, size_t len);

/* After a failure: the alert the peer sent that caused it (its description), or -1. */
int tern__tls_engine_alert_received(tern__tls *tls);
/* The last fatal alert the TLS library sent (its description), or -1. */
int tern__tls_engine_alert_sent(tern__tls *tls);
/* After a failed handshake: its reason as far as this side found it (enum tern__hs_fail in
 * runtime/counters.h), or -1 when only the peer's alert can tell. */
int tern__tls_engine_failure_kind(const tern__tls *tls);
/* A monotonic clock in microseconds (the handshake latency). */
uint64_t tern__tls_now_us(void);

/* ---- PSK (servers): the identity is read from the stream before wolfSSL sees it ----------- */

/* After TERN__TLS_WANT_PSK: the first identity the client offered (@len set), or NULL. Valid
 * until the answer. */
const uint8_t *tern__tls_engine_psk_identity(const tern__tls *tls, size_t *len);
/* The answer: @key (@len bytes, of @hash: TERN_PSK_HASH_*) or, NULL, a rejection for @reason
 * (enum tern__psk_reason; the handshake then fails as with a wrong key, RFC 4279 2). 0;
 * TERN_EINVAL when no answer is awaited; TERN_E_TLS_HANDSHAKE when TLS 1.3 has no suite of
 * the key's hash that the client offers and no certificate to fall back on (the caller ends
 * the connection with handshake_failure). */
int tern__tls_engine_psk_answer(tern__tls *tls, const void *key, size_t len, int hash,
                                int reason);

/* ---- sessions (clients) -------------------------------------------------------------------- */

/* A session ticket arrived (tls->ticket_due is set until the caller clears it). The session,
 * exported (wolfSSL's DER): its length (if over @len, nothing written), or TERN_ENOTCONN. */
ssize_t tern__tls_engine_session_export(tern__tls *tls, void *buf, size_t len);
/* Offers an exported session to the next handshake (after start, before the first call).
 * 0 or TERN_EINVAL (not a session this library reads). */
int tern__tls_engine_offer_session(tern__tls *tls, const void *data, size_t len);

/* ---- hibernation (hibernate.c) ----------------------------------------------------------------
 * An idle connection gives its TLS state up: wolfSSL's TLS export of its keys, sequence
 * numbers and TLS 1.3 secrets (patch 0200), sealed with AES-256-GCM under a per-process key
 * (the import trusts what it reads: only blobs this process sealed reach it), in tls->hib;
 * the WOLFSSL object is freed. What the program may still ask (peer certificate and chain,
 * SNI, ALPN, cipher, version) stays in tern__tls outside the blob. Waking imports the blob
 * into a fresh WOLFSSL of the same context. */

/* Exports @tls's connection into a sealed blob and frees its WOLFSSL (tls->ssl = NULL).
 * 0; TERN_EBUSY (not idle: a handshake, a decision or an event pending, plaintext or a partial
 * record inside wolfSSL, a close_notify either way: it stays awake); TERN_E_INTERNAL (the library
 * refused the export: it stays awake); TERN_ENOMEM (stays awake). */
int tern__tls_engine_hibernate(tern__tls *tls);
/* A fresh WOLFSSL, the blob opened and imported, the blob wiped and freed. 0; TERN_E_INTERNAL (the
 * blob did not authenticate or import: the connection cannot go on, the caller ends it; the
 * blob is gone, and later calls say so too); TERN_ENOMEM (still hibernated). No-op (0) when
 * awake. */
int tern__tls_engine_wake(tern__tls *tls);
static inline bool tern__tls_hibernated(const tern__tls *tls)
{
    return tls != NULL && tls->hib != NULL;
}
/* A hibernated connection ends without waking: the blob is wiped and freed. */
void tern__tls_engine_forget(tern__tls *tls);
/* A fresh WOLFSSL of @tls gets the engine's callbacks (info, certificate context, a client's
 * ticket callback): tern__tls_engine_setup and the wake-up. */
void tern__tls_engine_wire(tern__tls *tls, WOLFSSL *ssl);
/* Tests: the sealed blob (nonce, tag, ciphertext: all but its length) of a hibernated engine,
 * @len set; NULL if awake. */
uint8_t *tern__tls_engine_blob(tern__tls *tls, size_t *len);

#endif

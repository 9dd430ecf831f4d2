/* SPDX-License-Identifier: MIT */
/*
 * TLS on a tern_socket: the layer of runtime/seam.h, wolfSSL over memory I/O callbacks. The
 * reactor owns the descriptor and does recv/send (runtime/socket.c); wolfSSL reads records
 * from the socket's raw input and writes records into its output, through the seam. So the
 * runtime knows exactly how many encrypted bytes wait each way, applies backpressure, and
 * never blocks in wolfSSL. The TLS state (tern__tls) is this layer's: the socket holds one
 * opaque pointer to it.
 *
 * Owner thread only, like the socket. The configuration's contexts are shared read-only.
 *
 * Fatal errors: wolfSSL writes its alert through the send callback into the output; the
 * runtime sends it before closing (runtime/socket.c finish), so a refused peer learns why.
 */
#include "ssl_internal.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void tls_input(tern_socket *s);
static int tls_write(tern_socket *s, const void *data, size_t len);
static size_t tls_held(const tern_socket *s);
static bool tls_flushed(const tern_socket *s);
static void tls_shutdown(tern_socket *s);
static void tls_connected(tern_socket *s);
static void tls_deliver(tern_socket *s);
static void tls_expired(tern_socket *s);
static bool tls_truncated(tern_socket *s);
static void tls_ended(tern_socket *s);
static void tls_reset(tern_socket *s);
static void tls_free(tern_socket *s);

static const tern__layer_ops tls_ops = {
    .input = tls_input,
    .write = tls_write,
    .held = tls_held,
    .flushed = tls_flushed,
    .shutdown = tls_shutdown,
    .connected = tls_connected,
    .deliver = tls_deliver,
    .expired = tls_expired,
    .truncated = tls_truncated,
    .ended = tls_ended,
    .reset = tls_reset,
    .free = tls_free,
};

tern__tls *tern__tls_get(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL && (tls = calloc(1, sizeof(*tls))) != NULL) {
        tls->sock = s;
        tern__socket_set_layer(s, &tls_ops, tls);
    }
    return tls;
}

/* ---- memory I/O ---------------------------------------------------------------------------- */

/* The I/O contexts of a connection are its tern__tls (NULL in the fuzz harness). */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tern__tls *tls = ctx;
    size_t n = tern__socket_input_take(tls->sock, buf, (size_t)sz);
    if (n == 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ; /* the peer's EOF is handled by tls_input */
    }
    tls->wolf_consumed += n;
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tern__tls *tls = ctx;
    if (tern__socket_output(tls->sock, buf, (size_t)sz) < 0) {
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    tls->sent_any = true;
    return sz;
}

/* Certificate problems are data (QSslError): collect each one with its certificate and let
 * the handshake finish; the application decides in `ssl_errors` (see tls_deliver). */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    tern__tls *tls = store->userCtx; /* wolfSSL_SetCertCbCtx */

    if (tls == NULL) {
        return preverify;
    }
    int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);
    WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
    tern__tls_keep_chain_cert(tls, depth, x); /* called for every certificate */
    if (preverify) {
        return 1;
    }
    int err = wolfSSL_X509_STORE_CTX_get_error(store);
    if (tern__tls_add_verify_error(tls, err, depth, x) < 0) {
        tls->verify_failed = true; /* out of memory: refuse rather than skip a check */
        snprintf(tls->verify_error, sizeof(tls->verify_error), "out of memory");
        return 0;
    }
    const tern_socket_events *ev = tern__socket_events(tls->sock);
    if (!tls->must_verify || (ev != NULL && ev->ssl_errors != NULL)) {
        return 1; /* QUERY_PEER, or the application decides in ssl_errors */
    }
    if (tern__tls_errors_ignored(tls)) {
        return 1; /* ignored beforehand */
    }
    /* Nobody can ignore it: refuse now, so wolfSSL tells the peer with an alert. */
    const tern_ssl_error *e = tern_ssl_error_list_at(tls->errors, tern_ssl_error_list_count(tls->errors) - 1);
    tls->verify_failed = true;
    snprintf(tls->verify_error, sizeof(tls->verify_error), "%s", tern_ssl_error_string(e));
    return 0;
}

void tern__tls_ctx_init(WOLFSSL_CTX *ctx);
void tern__tls_ctx_init(WOLFSSL_CTX *ctx)
{
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
}

/* ---- errors ------------------------------------------------------------------------------------ */

int tern__ssl_map_error(int e, char *buf, size_t len)
{
    char text[80];
    wolfSSL_ERR_error_string_n((unsigned long)(e < 0 ? -e : e), text, sizeof(text));
    snprintf(buf, len, "%s (wolfSSL %d)", text, e);

    switch (e) {
    case FATAL_ERROR:
        return TERN_E_TLS_ALERT;
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
    case VERIFY_CERT_ERROR:
    case ASN_NO_SIGNER_E:
    case ASN_AFTER_DATE_E:
    case ASN_BEFORE_DATE_E:
    case ASN_SELF_SIGNED_E:
    case NO_PEER_CERT:
        return TERN_E_TLS_VERIFY;
    case VERSION_ERROR:
    case PARSE_ERROR:
    case UNKNOWN_RECORD_TYPE:
    case BUFFER_ERROR:
    case LENGTH_ERROR:
    case OUT_OF_ORDER_E:
    case SANITY_MSG_E:
    case DUPLICATE_MSG_E:
    case DECRYPT_ERROR:
    case VERIFY_MAC_ERROR:
        return TERN_E_TLS_PROTOCOL;
    case MEMORY_E:
        return TERN_ENOMEM;
    default:
        return TERN_E_TLS_HANDSHAKE;
    }
}

/* RFC 8446 6.2 / RFC 5246 7.2.2: the alert a malformed first flight deserves. */
static int alert_for(int wolf_err)
{
    switch (wolf_err) {
    case UNKNOWN_RECORD_TYPE:
    case OUT_OF_ORDER_E:
    case SANITY_MSG_E:
        return 10; /* unexpected_message */
    case VERSION_ERROR:
        return 70; /* protocol_version */
    case MATCH_SUITE_ERROR:
    case UNSUPPORTED_SUITE:
        return 40; /* handshake_failure */
    case PARSE_ERROR:
    case BUFFER_ERROR:
    case LENGTH_ERROR:
    case HANDSHAKE_SIZE_ERROR: /* over wolfSSL's MAX_HANDSHAKE_SZ (docs/build.md) */
        return 50; /* decode_error */
    default:
        return 80; /* internal_error */
    }
}

void tern__tls_plain_alert(tern_socket *s, tern__tls *tls, int description)
{
    /* Only before anything was negotiated may an alert go out in plaintext; once wolfSSL
     * wrote records, alerts are its business. */
    if (tls->sent_any || tern__socket_output_len(s) != 0) {
        return;
    }
    unsigned char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (unsigned char)description};
    (void)tern__socket_output(s, alert, sizeof(alert));
}

/* Appends to @p buf which alert ended the connection: the one the peer sent, else the
 * one wolfSSL sent, else the plaintext one tern sent (@p plain, or -1). A log line must say
 * it, and a fatal error without one is a bug to see. The peer's alert is the cause when
 * wolfSSL failed on it (FATAL_ERROR: a fatal alert, or in TLS 1.3 any error alert, RFC 8446
 * 6.2, whatever its level); an alert it refused (an unprotected one after the handshake) is
 * not, and the unexpected_message sent for it is named instead. */
static void alert_note(tern__tls *tls, int wolf_err, int plain, char *buf, size_t len)
{
    WOLFSSL_ALERT_HISTORY h;
    size_t used = strlen(buf);
    if (used >= len) {
        return;
    }
    if (wolfSSL_get_alert_history(tls->ssl, &h) != WOLFSSL_SUCCESS) {
        h.last_rx.code = h.last_rx.level = h.last_tx.code = h.last_tx.level = -1;
    }
    bool sent = h.last_tx.level == alert_fatal && h.last_tx.code >= 0;
    bool received = h.last_rx.code >= 0 &&
                    (wolf_err == FATAL_ERROR || (h.last_rx.level == alert_fatal && !sent));
    if (received) {
        snprintf(buf + used, len - used, "; received alert %s",
                 wolfSSL_alert_desc_string_long(h.last_rx.code));
    } else if (sent) {
        snprintf(buf + used, len - used, "; sent alert %s",
                 wolfSSL_alert_desc_string_long(h.last_tx.code));
    } else if (plain >= 0) {
        snprintf(buf + used, len - used, "; sent alert %s", wolfSSL_alert_desc_string_long(plain));
    } else {
        snprintf(buf + used, len - used, "; no alert sent");
    }
}

static void tls_fail(tern_socket *s, const char *stage, int wolf_err)
{
    tern__tls *tls = tern__tls_of(s);
    char detail[192];
    int code = tern__ssl_map_error(wolf_err, detail, sizeof(detail));
    int plain = -1;

    if (!tls->handshake_done) {
        /* wolfSSL refuses some first flights without a word (an unknown record type) */
        if (!tls->sent_any && tern__socket_output_len(s) == 0) {
            plain = alert_for(wolf_err);
        }
        tern__tls_plain_alert(s, tls, alert_for(wolf_err));
    }
    alert_note(tls, wolf_err, plain, detail, sizeof(detail));
    if (tls->verify_failed) {
        code = TERN_E_TLS_VERIFY;
        tern__socket_seterr(s, code, "%s: peer certificate: %s", stage, tls->verify_error);
    } else if (tern__psk_explain_failure(s, tls, stage, detail)) {
        code = TERN_E_TLS_HANDSHAKE;
    } else if (!tls->handshake_done && tern__session_failed(s, tls)) {
        tern__socket_seterr(s, code,
                            "%s: %s (a session was offered: if the server refused it, this TLS "
                            "library cannot fall back; connect again without it)",
                            stage, detail);
    } else {
        tern__socket_seterr(s, code, "%s: %s", stage, detail);
    }
    if (!tls->handshake_done) {
        tern__count(&tern__socket_counters(s)->handshake_failures, 1);
    }
    tern__socket_fail(s, code);
}

/* ---- the data path ------------------------------------------------------------------------------ */

static void tls_input(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);

    if (tls == NULL || tls->ssl == NULL) {
        return;
    }
    if (!tls->handshake_done) {
        if (tls->server && tern__psk_hold(s, tls)) {
            return; /* the PSK identity is being looked up */
        }
        int rc = tls->server ? wolfSSL_accept(tls->ssl) : wolfSSL_connect(tls->ssl);
        if (rc != WOLFSSL_SUCCESS) {
            int err = wolfSSL_get_error(tls->ssl, rc);
            if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
                if (tern__socket_input_ended(s)) {
                    tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                                        "TLS handshake: the peer closed the connection");
                    tern__count(&tern__socket_counters(s)->handshake_failures, 1);
                    tern__socket_fail(s, TERN_E_TLS_HANDSHAKE);
                }
                return;
            }
            tls_fail(s, "TLS handshake", err);
            return;
        }
        tls->handshake_done = true;
        tern__counters *counters = tern__socket_counters(s);
        if (wolfSSL_session_reused(tls->ssl)) {
            tern__count(&counters->handshakes_resumed, 1);
        } else if (tls->psk_state == TERN__PSK_STATE_KEY || (!tls->server && tls->psk != NULL)) {
            tern__count(&counters->handshakes_psk, 1);
        }
        if (tls->must_verify && tern_ssl_error_list_count(tls->errors) > 0) {
            /* hold: no `encrypted`, no data either way, until ssl_errors is answered */
            tls->verify_pending = true;
            tern__socket_schedule(s);
            return;
        }
        tern__tls_encrypted(s, tls);
        if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED) {
            return;
        }
    }
    if (tls->verify_pending) {
        return;
    }
    /* decrypt while there is room in the read buffer */
    for (;;) {
        size_t room;
        tern__chunk *c;
        int rc = tern__socket_plain_reserve(s, &c, &room);
        if (rc == 0) {
            break; /* full (or no longer connected) */
        }
        if (rc < 0) {
            tern__socket_seterr(s, TERN_ENOMEM, "TLS read: out of memory");
            tern__socket_fail(s, TERN_ENOMEM);
            return;
        }
        int n = wolfSSL_read(tls->ssl, c->data + c->end, (int)room);
        if (n > 0) {
            tern__socket_plain_commit(s, c, (size_t)n);
            continue;
        }
        tern__socket_plain_cancel(s, c);
        int err = wolfSSL_get_error(tls->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
            break;
        }
        if (err == WOLFSSL_ERROR_ZERO_RETURN) {
            tern__socket_end_of_stream(s); /* close_notify: an orderly end of the stream */
            break;
        }
        tls_fail(s, "TLS read", err);
        return;
    }
}

/* ---- the layer's events, run by the socket's deliver() ------------------------------------------ */

/* The socket is still there for more callbacks. */
static bool live(const tern_socket *s)
{
    return !tern__socket_freeing(s) && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED;
}

/* ssl_errors was due: the application answered by ignoring the errors (go on), or not. */
static void verify_deliver(tern_socket *s, tern__tls *tls, const tern_socket_events *ev,
                           void *user)
{
    tls->verify_pending = false;
    const tern_ssl_error_list *errs = tls->errors;
    for (size_t i = 0; i < tern_ssl_error_list_count(errs); i++) {
        if (ev != NULL && ev->peer_verify_error != NULL && live(s)) {
            ev->peer_verify_error(s, tern_ssl_error_list_at(errs, i), user);
        }
    }
    if (ev != NULL && ev->ssl_errors != NULL && live(s)) {
        ev->ssl_errors(s, errs, user);
    }
    if (!live(s)) {
        return; /* closed or aborted in a callback */
    }
    if (!tern__tls_errors_ignored(tls)) {
        const tern_ssl_error *e = tern_ssl_error_list_at(errs, 0);
        tern__socket_seterr(s, TERN_E_TLS_VERIFY, "TLS: peer certificate: %s%s",
                            tern_ssl_error_string(e),
                            tern_ssl_error_list_count(errs) > 1 ? " (and more)" : "");
        tern__count(&tern__socket_counters(s)->handshake_failures, 1);
        tern__socket_fail(s, TERN_E_TLS_VERIFY);
        return;
    }
    tern__tls_encrypted(s, tls);
    tls_input(s); /* records that waited behind the decision */
    tern__socket_flush(s);
}

void tern__tls_input(tern_socket *s)
{
    tls_input(s);
}

static void tls_deliver(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    const tern_socket_events *ev = tern__socket_events(s);
    void *user = tern_socket_user(s);

    if (tls == NULL) {
        return;
    }
    if (tls->mode_due) {
        tls->mode_due = false;
        if (ev != NULL && ev->mode_changed != NULL) {
            ev->mode_changed(s, tern_socket_mode(s), user);
        }
    }
    if (tls->psk_event_due && !tern__socket_freeing(s)) {
        tern__psk_deliver(s, tls);
    } else if (!tern__socket_freeing(s)) {
        if (tls->ticket_due) {
            tern__session_deliver(s, tls);
        }
        if (tls->verify_pending && live(s)) {
            verify_deliver(s, tls, ev, user);
        }
    }
    if (tls->encrypted_due && !tern__socket_freeing(s)) {
        tls->encrypted_due = false;
        if (ev != NULL && ev->encrypted != NULL) {
            ev->encrypted(s, user);
        }
    }
}

/* ---- the data path, the application's side -------------------------------------------------------- */

/* Plaintext into records in the socket's output. 0 or a code (the socket failed). */
static int seal(tern_socket *s, tern__tls *tls, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = wolfSSL_write(tls->ssl, p, chunk);
        if (n <= 0) {
            int err = wolfSSL_get_error(tls->ssl, n);
            tls_fail(s, "TLS write", err);
            int rc = tern_socket_error(s);
            return rc < 0 ? rc : TERN_E_TLS_PROTOCOL;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int tls_write(tern_socket *s, const void *data, size_t len)
{
    tern__tls *tls = tern__tls_of(s);

    if (!tls->encrypted) {
        /* queued until `encrypted` (QSslSocket does the same) */
        if (tern__bufq_append(tern_socket_reactor(s), &tls->held, data, len) < 0) {
            tern__socket_seterr(s, TERN_ENOMEM, "write: out of memory");
            tern__socket_fail(s, TERN_ENOMEM);
            return TERN_ENOMEM;
        }
        return 0;
    }
    int rc = seal(s, tls, data, len);
    return rc < 0 ? rc : 1;
}

static size_t tls_held(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls->held.len;
}

static bool tls_flushed(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls->held.len == 0 && (tls->ssl == NULL || tls->encrypted);
}

/* close_notify into the output (we do not wait for theirs). */
static void send_close_notify(tern_socket *s, tern__tls *tls)
{
    if (tls->handshake_done) {
        (void)wolfSSL_shutdown(tls->ssl);
    }
    tern__socket_end_queued(s);
}

static void tls_shutdown(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls->encrypted) {
        send_close_notify(s, tls); /* RFC 8446 6.1: close_notify, then FIN */
    }
    /* else: tern__tls_encrypted sends it once the handshake completes */
}

void tern__tls_encrypted(tern_socket *s, tern__tls *tls)
{
    tls->encrypted = true;
    tls->encrypted_due = true;
    tern__socket_set_deadline(s, 0);
    tern__count(&tern__socket_counters(s)->handshakes, 1);
    tern__socket_schedule(s);
    /* what the application wrote during the handshake goes out now, in order */
    tern_reactor *r = tern_socket_reactor(s);
    while (tls->held.len > 0 && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        const tern__chunk *c = tls->held.head;
        size_t n = c->end - c->start;
        if (seal(s, tls, c->data + c->start, n) < 0) {
            return;
        }
        tern__socket_wrote(s, n);
        tern__bufq_consume(r, &tls->held, n);
    }
    if (tern__socket_write_shut(s) && tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        send_close_notify(s, tls); /* shutdown_write was asked during the handshake */
    }
}

/* ---- deadlines and ends ------------------------------------------------------------------------------ */

static void tls_expired(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tern__psk_expired(s, tls)) {
        return; /* the PSK lookup's deadline, with its own message */
    }
    tern__count(&tern__socket_counters(s)->handshake_failures, 1);
    tern__socket_seterr(s, TERN_E_TLS_TIMEOUT, "TLS handshake: not done in time");
    tern__socket_fail(s, TERN_E_TLS_TIMEOUT);
}

static bool tls_truncated(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (!tls->encrypted) {
        return false;
    }
    /* RFC 8446 6.1: a TLS stream ends with close_notify; a bare FIN may be a truncation
     * attack, so it is not reported as an orderly end */
    tern__socket_seterr(s, TERN_E_EOF, "TLS: the peer closed without close_notify");
    tern__socket_fail(s, TERN_E_EOF);
    return true;
}

static void tls_ended(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    tern__bufq_clear(tern_socket_reactor(s), &tls->held); /* never to be encrypted now */
}

static void tls_reset(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL) {
        return;
    }
    tern__bufq_clear(tern_socket_reactor(s), &tls->held);
    if (tls->ssl == NULL) {
        return; /* no connection since the last reset: what was set for the next one stays
                 * (tern_socket_ignore_ssl_errors' list) */
    }
    tern__psk_release(s, tls);
    tern__tls_errors_free(tls);
    wolfSSL_free(tls->ssl);
    memset(&tls->ssl, 0, sizeof(*tls) - offsetof(tern__tls, ssl));
}

static void tls_free(tern_socket *s)
{
    tern__tls *tls = tern__tls_of(s);
    tls_reset(s);
    tern__object_unref(tls->cfg);
    free(tls->peer_name);
    tern__client_psk_free(tls->psk);
    tern__offered_free(tls->session);
    free(tls);
}

/* ---- starting ------------------------------------------------------------------------------------ */

static bool is_ip_literal(const char *name)
{
    unsigned char addr[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1;
}

/* wolfSSL_check_ip_address came in wolfSSL 5.9.1; before it, check_domain_name matched an
 * address against the IP SANs too (a system wolfSSL may be older) */
static int check_ip_address(WOLFSSL *ssl, const char *ip)
{
#if defined(LIBWOLFSSL_VERSION_HEX) && LIBWOLFSSL_VERSION_HEX >= 0x05009001
    return wolfSSL_check_ip_address(ssl, ip);
#else
    return wolfSSL_check_domain_name(ssl, ip);
#endif
}

static int tls_begin(tern_socket *s, bool server)
{
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL) {
        return TERN_ENOMEM;
    }
    if (tls->cfg == NULL && (tls->cfg = tern__socket_server_config(s)) != NULL) {
        tern__object_ref(tls->cfg); /* an accepted socket: its server's */
    }
    tern_ssl_config *cfg = tern__tls_config(tls);

    if (cfg == NULL) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the socket has no configuration");
        return TERN_EINVAL;
    }
    if (server && !cfg->psk_enabled && (!cfg->has_cert || !cfg->has_key)) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the configuration has no certificate and key");
        return TERN_EINVAL;
    }
    tern__ssl_config_freeze(cfg);
    WOLFSSL *ssl = wolfSSL_new(server ? cfg->server_ctx : cfg->client_ctx);
    if (ssl == NULL) {
        tern__socket_seterr(s, TERN_ENOMEM, "TLS: the library could not create the connection");
        return TERN_ENOMEM;
    }
    wolfSSL_SetIOReadCtx(ssl, tls);
    wolfSSL_SetIOWriteCtx(ssl, tls);
    wolfSSL_SetCertCbCtx(ssl, tls);

    /* verification per role: AUTO is QUERY_PEER on servers, VERIFY_PEER on clients */
    enum tern_verify_mode mode = cfg->verify_mode;
    if (mode == TERN_VERIFY_AUTO) {
        mode = server ? TERN_VERIFY_QUERY_PEER : TERN_VERIFY_VERIFY_PEER;
    }
    int wmode = WOLFSSL_VERIFY_NONE;
    if (mode == TERN_VERIFY_VERIFY_PEER) {
        wmode = WOLFSSL_VERIFY_PEER | (server ? WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
    } else if (mode == TERN_VERIFY_QUERY_PEER) {
        wmode = server ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE;
    }
    wolfSSL_set_verify(ssl, wmode, wmode == WOLFSSL_VERIFY_NONE ? NULL : verify_cb);
    tls->must_verify = mode == TERN_VERIFY_VERIFY_PEER;
    tls->ignore_all = tls->ignore_all_set;

    if (!server && tls->peer_name != NULL) {
        size_t n = strlen(tls->peer_name);
        /* RFC 6066 section 3: no IP literals in server_name; an address is verified against
         * the certificate's IP addresses (RFC 6125 section 1.7.2), a name against its names */
        bool ip = is_ip_literal(tls->peer_name);
        if ((!ip && wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, tls->peer_name,
                                   (unsigned short)n) != WOLFSSL_SUCCESS) ||
            (mode == TERN_VERIFY_VERIFY_PEER &&
             (ip ? check_ip_address(ssl, tls->peer_name)
                 : wolfSSL_check_domain_name(ssl, tls->peer_name)) != WOLFSSL_SUCCESS)) {
            tern__socket_seterr(s, TERN_EINVAL, "TLS: the TLS library refused the peer name \"%s\"",
                                tls->peer_name);
            wolfSSL_free(ssl);
            return TERN_EINVAL;
        }
    }
    if (!server && cfg->ocsp_policy != TERN_OCSP_OFF &&
        wolfSSL_UseOCSPStapling(ssl, WOLFSSL_CSR_OCSP, 0) != WOLFSSL_SUCCESS) {
        goto fail;
    }
    if (cfg->alpn != NULL) {
        char list[1024];
        snprintf(list, sizeof(list), "%s", cfg->alpn);
        if (wolfSSL_UseALPN(ssl, list, (unsigned)strlen(list),
                            WOLFSSL_ALPN_FAILED_ON_MISMATCH) != WOLFSSL_SUCCESS) {
            goto fail;
        }
    }
    tls->ssl = ssl;
    tls->server = server;
    tern__psk_setup(s, tls, cfg, server);
    tern__session_setup(s, tls, cfg, server);
    tern__socket_start_layer(s); /* STARTTLS: unread bytes are the first records */
    tls->mode_due = true;
    if (cfg->handshake_timeout_ms != 0) {
        tern__socket_set_deadline(s, tern_reactor_now_ms(tern_socket_reactor(s)) +
                                         cfg->handshake_timeout_ms);
    }
    tern__socket_schedule(s);
    tls_input(s);           /* a client's ClientHello; a server's first records, if any */
    tern__socket_flush(s);
    return 0;

fail:
    wolfSSL_free(ssl);
    return TERN_ENOMEM;
}

static int start(tern_socket *s, bool server)
{
    if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED || tern__socket_layered(s)) {
        return TERN_EBUSY;
    }
    return tls_begin(s, server);
}

int tern_socket_start_server_encryption(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return start(s, true);
}

int tern_socket_start_client_encryption(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return start(s, false);
}

static void tls_connected(tern_socket *s)
{
    int rc = tls_begin(s, false);
    if (rc < 0) {
        tern__socket_seterr(s, rc, "TLS: cannot start the handshake: %s", tern_strerror(rc));
        tern__socket_fail(s, rc);
    }
}

int tern_socket_set_ssl_config(tern_socket *s, tern_ssl_config *cfg)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || cfg == NULL) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if (tern__socket_layered(s) || tern__tls_started(tls)) {
        return TERN_EBUSY;
    }
    if ((tls = tern__tls_get(s)) == NULL) {
        return TERN_ENOMEM;
    }
    tern__object_ref(&cfg->base);
    tern__ssl_config_freeze(cfg);
    tern__object_unref(tls->cfg);
    tls->cfg = &cfg->base;
    return 0;
}

int tern_socket_set_peer_verify_name(tern_socket *s, const char *name)
{
    TERN_ASSERT_OWNER(s);
    char *copy = NULL;
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL || (name != NULL && (copy = strdup(name)) == NULL)) {
        return TERN_ENOMEM;
    }
    free(tls->peer_name);
    tls->peer_name = copy;
    return 0;
}

int tern_socket_connect_to_host_encrypted(tern_socket *s, const char *host, uint16_t port,
                                          const char *peer_name)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || host == NULL) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || tls->cfg == NULL) {
        tern__socket_seterr(s, TERN_EINVAL, "TLS: the socket has no configuration");
        return TERN_EINVAL;
    }
    if (tern_socket_state(s) != TERN_SOCKET_STATE_UNCONNECTED) {
        return TERN_EBUSY;
    }
    int rc = tern_socket_set_peer_verify_name(s, peer_name != NULL ? peer_name : host);
    if (rc < 0) {
        return rc;
    }
    tls_reset(s); /* a socket reused after a TLS connection starts clean */
    /* received bytes are records from the start; tls_connected begins the handshake */
    return tern__socket_connect_layered(s, host, port);
}

/* ---- introspection ---------------------------------------------------------------------------- */

enum tern_ssl_mode tern_socket_mode(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || tls->ssl == NULL) {
        return TERN_SSL_MODE_UNENCRYPTED;
    }
    return tls->server ? TERN_SSL_MODE_SERVER : TERN_SSL_MODE_CLIENT;
}

bool tern_socket_is_encrypted(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->encrypted;
}

static bool encrypted_done(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->encrypted && !tls->encrypted_due;
}

int tern_socket_wait_for_encrypted(tern_socket *s, uint32_t timeout_ms)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_wait(s, encrypted_done, timeout_ms);
}

enum tern_ssl_protocol tern_socket_session_protocol(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done) {
        return TERN_SSL_PROTOCOL_UNKNOWN;
    }
    switch (wolfSSL_version(tls->ssl)) {
    case TLS1_3_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_3;
    case TLS1_2_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_2;
    default:
        return TERN_SSL_PROTOCOL_UNKNOWN;
    }
}

const char *tern_socket_session_cipher(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done) {
        return "";
    }
    const char *name = wolfSSL_get_cipher_name(tls->ssl);
    return name != NULL ? name : "";
}

const char *tern_socket_alpn_protocol(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    char *name = NULL;
    unsigned short len = 0;

    if (tls == NULL || !tls->handshake_done) {
        return "";
    }
    if (tls->alpn == NULL && wolfSSL_ALPN_GetProtocol(tls->ssl, &name, &len) == WOLFSSL_SUCCESS &&
        name != NULL && (tls->alpn = malloc((size_t)len + 1)) != NULL) {
        memcpy(tls->alpn, name, len);
        tls->alpn[len] = '\0';
    }
    return tls->alpn != NULL ? tls->alpn : "";
}

const char *tern_socket_sni_name(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->server) {
        return "";
    }
    if (tls->sni == NULL) {
        void *data = NULL;
        unsigned short n = wolfSSL_SNI_GetRequest(tls->ssl, WOLFSSL_SNI_HOST_NAME, &data);
        if (n > 0 && data != NULL && (tls->sni = malloc((size_t)n + 1)) != NULL) {
            memcpy(tls->sni, data, n);
            tls->sni[n] = '\0';
        }
    }
    return tls->sni != NULL ? tls->sni : "";
}

int tern_socket_ocsp_stapled(const tern_socket *s, int64_t *produced_at)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    unsigned char date[64];
    int format = 0;

    if (tls == NULL || !tls->handshake_done) {
        return TERN_ENOTCONN;
    }
    memset(date, 0, sizeof(date));
    if (tls->server ||
        wolfSSL_get_ocsp_producedDate(tls->ssl, date, sizeof(date), &format) != 0) {
        return 0;
    }
    int len = (int)strnlen((const char *)date, sizeof(date));
    int64_t t = tern__asn1_time_parse(date, len, format);
    if (t == 0) {
        return 0; /* no response was stapled (the date is only set by a verified one) */
    }
    if (produced_at != NULL) {
        *produced_at = t;
    }
    return 1;
}

size_t tern_socket_encrypted_bytes_available(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_input(s)->len;
}

size_t tern_socket_encrypted_bytes_to_write(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return tern__socket_layered(s) ? tern__socket_output_len(s) : 0;
}

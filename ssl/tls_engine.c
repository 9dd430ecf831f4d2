/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine (tls_engine.h): wolfSSL over an input window and an output sink. No
 * descriptor, reactor or thread here: ciphertext comes in as a pointer and a length per call
 * (io_recv copies from it and counts what wolfSSL took), records leave through tls->out
 * (io_send), plaintext goes into the caller's buffer. The socket (socket_tls.c) drives it from
 * its raw input queue, tests drive it from memory (tests/unit/test_tls_engine.c).
 *
 * Per record nothing is allocated here: the window is three fields of tern__tls and the sink
 * is one indirect call.
 */
#include "tls_engine.h"

#include "psk_hint.h"
#include "psk_parse.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- memory I/O ---------------------------------------------------------------------------- */

/* Follows the record framing of what wolfSSL read (RFC 8446 5.1: 5-byte header, the length
 * in its last two bytes), so that hibernation knows when no partial record is inside wolfSSL.
 * Two compares per call in the common case: a header, then a body, each read whole. */
static void track_records(tern__tls *tls, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (tls->rec_body_left > 0) {
            size_t k = n < tls->rec_body_left ? n : tls->rec_body_left;
            tls->rec_body_left = (uint16_t)(tls->rec_body_left - k);
            p += k;
            n -= k;
            continue;
        }
        tls->rec_hdr[tls->rec_hdr_got++] = *p++;
        n--;
        if (tls->rec_hdr_got == sizeof(tls->rec_hdr)) {
            tls->rec_body_left = (uint16_t)(tls->rec_hdr[3] << 8 | tls->rec_hdr[4]);
            tls->rec_hdr_got = 0;
        }
    }
}

/* The I/O contexts of a connection are its tern__tls (NULL in the fuzz harness). */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tern__tls *tls = ctx;
    (void)ssl;
    size_t n = tls->in_len - tls->in_used;
    if (n == 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ; /* the peer's EOF is the caller's business */
    }
    if (n > (size_t)sz) {
        n = (size_t)sz;
    }
    memcpy(buf, tls->in + tls->in_used, n);
    tls->in_used += n;
    tls->wolf_consumed += n;
    track_records(tls, (const uint8_t *)buf, n);
    return (int)n;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    tern__tls *tls = ctx;
    (void)ssl;
    if (tls->out(tls->out_ctx, buf, (size_t)sz) < 0) {
        return WOLFSSL_CBIO_ERR_GENERAL;
    }
    tls->sent_any = true;
    return sz;
}

/* Whether the peer's chain is longer than the verify depth (tern_ssl_config_set_peer_verify_depth,
 * wolfSSL's per connection): the CA certificates above the leaf, its trust anchor included
 * whether the peer sent it (a self-signed certificate on top) or the verifier has it, as
 * OpenSSL counts. Asked at the leaf, when the whole chain is known (store->totalCerts). */
static bool chain_too_long(tern__tls *tls, WOLFSSL_X509_STORE_CTX *store)
{
    long limit = tls->ssl != NULL ? wolfSSL_get_verify_depth(tls->ssl) : -1;
    int sent = store->totalCerts;
    if (limit < 0 || sent < 1 || store->certs == NULL || sent - 1 < limit) {
        return false;
    }
    if (sent - 1 > limit) {
        return true;
    }
    /* sent - 1 == limit: too long unless the top certificate is the anchor itself */
    const unsigned char *der = store->certs[sent - 1].buffer;
    WOLFSSL_X509 *top = wolfSSL_X509_d2i(NULL, der, (int)store->certs[sent - 1].length);
    tern_certificate *c = top != NULL ? tern__certificate_from_x509(top) : NULL;
    bool anchor = c != NULL && tern_certificate_is_self_signed(c);
    tern_certificate_unref(c);
    wolfSSL_X509_free(top);
    return !anchor;
}

/* The first certificate above the leaf, among those the peer sent, that is not a CA (RFC 5280
 * 4.2.1.9: basicConstraints cA), which wolfSSL then just does not take as an issuer: its
 * depth, or 0 for none. Asked at the leaf (store->totalCerts). */
static int not_a_ca(WOLFSSL_X509_STORE_CTX *store, tern_certificate **cert)
{
    for (int i = 1; i < store->totalCerts && store->certs != NULL; i++) {
        WOLFSSL_X509 *x = wolfSSL_X509_d2i(NULL, store->certs[i].buffer,
                                           (int)store->certs[i].length);
        if (x != NULL && !wolfSSL_X509_get_isCA(x)) {
            *cert = tern__certificate_from_x509(x);
            wolfSSL_X509_free(x);
            return i;
        }
        wolfSSL_X509_free(x);
    }
    return 0;
}

/* The leaf's extended key usage (RFC 5280 4.2.1.12), when it has one, must allow its role:
 * serverAuth for a server's, clientAuth for a client's (or anyExtendedKeyUsage). The bits are
 * wolfSSL_X509_get_extended_key_usage's (wolfssl/openssl/x509v3.h: WOLFSSL_XKU_*). */
static bool wrong_purpose(const tern__tls *tls, WOLFSSL_X509 *leaf)
{
    enum { XKU_SERVER = 0x1, XKU_CLIENT = 0x2, XKU_ANY = 0x100 };
    unsigned eku = wolfSSL_X509_get_extended_key_usage(leaf);
    unsigned want = tls->server ? XKU_CLIENT : XKU_SERVER;
    return eku != 0 && (eku & (want | XKU_ANY)) == 0;
}

/* Certificate problems are data (QSslError): collect each one with its certificate and let
 * the handshake finish; the application decides (the socket's `ssl_errors`). */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
    tern__tls *tls = store->userCtx; /* wolfSSL_SetCertCbCtx */

    if (tls == NULL) {
        return preverify;
    }
    int depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);
    WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
    int rc = 0;
    bool found = false;
    if (store->totalCerts == 0) {
        /* an empty Certificate message: a server that lets the application decide does not
         * make wolfSSL refuse it (tls_engine_handshake), and hears of it here */
        if (!tls->server || !tls->must_verify) {
            return preverify;
        }
        rc = tern__tls_add_error(tls, TERN_SSL_ERR_NO_PEER_CERTIFICATE, 0, NULL, "");
        found = true;
        x = NULL;
    }
    tern__tls_keep_chain_cert(tls, depth, x); /* called for every certificate */
    /* tern's own checks of the whole chain and of the leaf's purpose, then wolfSSL's verdict */
    if (x != NULL && depth == 0 && chain_too_long(tls, store)) {
        tern_certificate *leaf = x != NULL ? tern__certificate_from_x509(x) : NULL;
        rc = tern__tls_add_error(tls, TERN_SSL_ERR_CHAIN_TOO_LONG, 0, leaf, "");
        found = true;
    }
    if (rc == 0 && depth == 0 && x != NULL && wrong_purpose(tls, x)) {
        rc = tern__tls_add_error(tls, TERN_SSL_ERR_INVALID_PURPOSE, 0,
                                 tern__certificate_from_x509(x), "");
        found = true;
    }
    tern_certificate *bad_ca = NULL;
    int bad_depth = rc == 0 && x != NULL && depth == 0 ? not_a_ca(store, &bad_ca) : 0;
    if (bad_depth > 0) {
        rc = tern__tls_add_error(tls, TERN_SSL_ERR_INVALID_CA_CERTIFICATE, bad_depth, bad_ca, "");
        found = true;
    }
    if (preverify && !found) {
        return 1;
    }
    if (!preverify && rc == 0 && x != NULL) {
        rc = tern__tls_add_verify_error(tls, wolfSSL_X509_STORE_CTX_get_error(store), depth, x);
    }
    if (rc < 0) {
        tls->verify_failed = true; /* out of memory: refuse rather than skip a check */
        tls->verify_error = "out of memory";
        return 0;
    }
    if (!tls->must_verify || tls->verify_deferred) {
        return 1; /* QUERY_PEER, or the application decides */
    }
    if (tern__tls_errors_ignored(tls)) {
        return 1; /* ignored beforehand */
    }
    /* Nobody can ignore it: refuse now, so wolfSSL tells the peer with an alert. */
    const tern_ssl_error *e =
        tern_ssl_error_list_at(tls->errors, tern_ssl_error_list_count(tls->errors) - 1);
    tls->verify_failed = true;
    tls->verify_error = tern_ssl_error_string(e); /* lives with tls->errors */
    return 0;
}

void tern__tls_ctx_init(WOLFSSL_CTX *ctx)
{
    wolfSSL_CTX_SetIORecv(ctx, io_recv);
    wolfSSL_CTX_SetIOSend(ctx, io_send);
}

/* ---- errors -------------------------------------------------------------------------------- */

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

/* A sent alert, in the socket's counters (a standalone engine counts nowhere). */
static void count_sent(const tern__tls *tls, int description)
{
    if (tls->sock != NULL && description >= 0 && description < 256) {
        tern__count(&tern__socket_counters(tls->sock)->alerts_sent[description], 1);
    }
}

/* wolfSSL tells every alert it sends (SendAlert) through the info callback: where is
 * WOLFSSL_CB_ALERT alone, val the description. Alerts it receives are not told this way. */
static void info_cb(const WOLFSSL *ssl, int where, int val)
{
    if (where == WOLFSSL_CB_ALERT) {
        count_sent(wolfSSL_GetIOReadCtx((WOLFSSL *)ssl), val);
    }
}

void tern__tls_engine_alert_plaintext(tern__tls *tls, int description)
{
    unsigned char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (unsigned char)description};
    (void)tls->out(tls->out_ctx, alert, sizeof(alert));
    count_sent(tls, description);
}

void tern__tls_engine_alert(tern__tls *tls, int description)
{
    /* Only before anything was negotiated may an alert go out in plaintext; once wolfSSL
     * wrote records, alerts are its business. */
    if (tls->sent_any) {
        return;
    }
    unsigned char alert[7] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, (unsigned char)description};
    (void)tls->out(tls->out_ctx, alert, sizeof(alert));
    count_sent(tls, description);
}

/* The peer's alert that caused the failure (alert_note's rule), or -1. */
static int received_cause(tern__tls *tls, int wolf_err, bool *sent, WOLFSSL_ALERT_HISTORY *h)
{
    if (tls->ssl == NULL || wolfSSL_get_alert_history(tls->ssl, h) != WOLFSSL_SUCCESS) {
        h->last_rx.code = h->last_rx.level = h->last_tx.code = h->last_tx.level = -1;
    }
    *sent = h->last_tx.level == alert_fatal && h->last_tx.code >= 0;
    bool received = h->last_rx.code >= 0 && h->last_rx.code < 256 &&
                    (wolf_err == FATAL_ERROR || (h->last_rx.level == alert_fatal && !*sent));
    return received ? h->last_rx.code : -1;
}

int tern__tls_engine_alert_received(tern__tls *tls)
{
    WOLFSSL_ALERT_HISTORY h;
    bool sent;
    return received_cause(tls, tls->wolf_err, &sent, &h);
}

int tern__tls_engine_alert_sent(tern__tls *tls)
{
    WOLFSSL_ALERT_HISTORY h;
    bool sent;
    received_cause(tls, tls->wolf_err, &sent, &h);
    return sent && h.last_tx.code < 256 ? h.last_tx.code : -1;
}

int tern__tls_engine_failure_kind(const tern__tls *tls)
{
    if (tls->psk_error != NULL) {
        return TERN__HS_FAIL_PROTOCOL;
    }
    switch (tls->wolf_err) {
    case VERSION_ERROR:
    case UNSUPPORTED_PROTO_VERSION:
        return TERN__HS_FAIL_VERSION;
    case MATCH_SUITE_ERROR:
    case UNSUPPORTED_SUITE:
    case ECC_CURVE_ERROR:
    case BAD_KEY_SHARE_DATA:
        return TERN__HS_FAIL_NO_SHARED;
    case PARSE_ERROR:
    case UNKNOWN_RECORD_TYPE:
    case BUFFER_ERROR:
    case LENGTH_ERROR:
    case OUT_OF_ORDER_E:
    case SANITY_MSG_E:
    case DUPLICATE_MSG_E:
    case HANDSHAKE_SIZE_ERROR:
    case EXT_MISSING:
        return TERN__HS_FAIL_PROTOCOL;
    case MEMORY_E:
        return TERN__HS_FAIL_OTHER;
    default:
        return -1; /* the peer's alert, if any, says more */
    }
}

uint64_t tern__tls_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* the vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
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
    bool sent;
    if (received_cause(tls, wolf_err, &sent, &h) >= 0) {
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

int tern__tls_engine_failure(tern__tls *tls, bool may_alert, char *buf, size_t len)
{
    if (tls->psk_error != NULL) {
        snprintf(buf, len, "%s", tls->psk_error);
        if (may_alert) {
            tern__tls_engine_alert(tls, 50); /* decode_error */
        }
        return TERN_E_TLS_PROTOCOL;
    }
    int code = tern__ssl_map_error(tls->wolf_err, buf, len);
    int plain = -1;

    if (!tls->handshake_done && may_alert) {
        /* wolfSSL refuses some first flights without a word (an unknown record type) */
        if (!tls->sent_any) {
            plain = alert_for(tls->wolf_err);
        }
        tern__tls_engine_alert(tls, alert_for(tls->wolf_err));
    }
    alert_note(tls, tls->wolf_err, plain, buf, len);
    return tls->verify_failed ? TERN_E_TLS_VERIFY : code;
}

/* ---- one call's input window ----------------------------------------------------------------- */

static void window(tern__tls *tls, const void *in, size_t len)
{
    tls->in = in;
    tls->in_len = in != NULL ? len : 0;
    tls->in_used = 0;
}

/* Ends a call: what was consumed into @inlen; the window is not kept past the call. */
static void unwindow(tern__tls *tls, size_t *inlen)
{
    if (inlen != NULL) {
        *inlen = tls->in_used;
    }
    tls->in = NULL;
    tls->in_len = tls->in_used = 0;
}

/* A wolfSSL failure: kept for tern__tls_engine_failure, mapped to a code. */
static int failed(tern__tls *tls, int rc)
{
    char detail[8];
    tls->wolf_err = wolfSSL_get_error(tls->ssl, rc);
    int code = tern__ssl_map_error(tls->wolf_err, detail, sizeof(detail));
    return tls->verify_failed ? TERN_E_TLS_VERIFY : code;
}

static bool would_block(int err)
{
    return err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE;
}

/* Drops the PSK parser: no identity will come (a certificate handshake or a resumption). */
static void psk_parser_drop(tern__tls *tls)
{
    tern__psk_drop(tls);
}

/* A PSK server: wolfSSL's PSK callbacks are synchronous, so the identity is read from the
 * stream (psk_parse.c) before wolfSSL sees the message that carries it, and wolfSSL is held
 * until the answer. The parser sees every byte before wolfSSL does: the window starts at
 * stream offset wolf_consumed, the parser is at psk_fed. 0: let wolfSSL run;
 * TERN__TLS_WANT_PSK: hold; or a negative code (malformed: tls->psk_error says why). */
static int psk_scan(tern__tls *tls)
{
    tern__psk_parser *p = tls->psk_parser;

    if (tls->psk_state == TERN__PSK_STATE_WAITING) {
        return TERN__TLS_WANT_PSK;
    }
    if (p == NULL || tls->psk_state != TERN__PSK_STATE_NONE) {
        return 0;
    }
    if (p->stage == 1) {
        /* TLS 1.2, ClientHello answered: the ClientKeyExchange carries an identity only if
         * the suite chosen is a PSK one (a certificate suite's starts with a key share) */
        const char *suite = wolfSSL_get_cipher_name(tls->ssl);
        if (suite == NULL || strstr(suite, "PSK") == NULL) {
            psk_parser_drop(tls);
            return 0;
        }
    }
    size_t skip = (size_t)(tls->psk_fed - tls->wolf_consumed);
    if (skip >= tls->in_len) {
        return 0; /* nothing new: wolfSSL has what the parser has */
    }
    int rc = tern__psk_parser_feed(p, tls->in + skip, tls->in_len - skip);
    tls->psk_fed += tls->in_len - skip;
    switch (rc) {
    case TERN__PSK_NEED_MORE:
        return 0; /* wolfSSL keeps a partial message and cannot act on it before we can */
    case TERN__PSK_IDENTITIES: {
        const tern_ssl_config *cfg = tern__tls_config(tls);
        tls->psk_hello = !p->from_cke && p->offers_tls13 && cfg->max_version == TLS1_3_VERSION;
        tls->psk_offered13 = p->tls13_suites;
        tls->psk_binder_len = p->binder_len;
        tls->psk_state = TERN__PSK_STATE_WAITING; /* the parser keeps the identity */
        return TERN__TLS_WANT_PSK;
    }
    case TERN__PSK_NO_PSK:
        psk_parser_drop(tls);
        return 0;
    default:
        tls->psk_error = p->error != NULL ? p->error : "malformed handshake";
        return TERN_E_TLS_PROTOCOL;
    }
}

/* A TLS 1.2 client that asks for its key (psk_hint.h): the server's flight is scanned ahead
 * of wolfSSL, which reads only up to the record of the ServerHelloDone until the answer.
 * 0: let wolfSSL run (the window clamped); TERN__TLS_WANT_PSK: hold. */
static int hint_hold(tern__tls *tls)
{
    tern__psk_hint_scan *sc = tls->hint_scan;

    if (tls->psk_state == TERN__PSK_STATE_WAITING) {
        return TERN__TLS_WANT_PSK;
    }
    if (tls->psk_state != TERN__PSK_STATE_NONE) {
        return 0; /* answered */
    }
    size_t skip = (size_t)(tls->psk_fed - tls->wolf_consumed);
    if (sc->state == TERN__PSK_HINT_MORE && skip < tls->in_len) {
        (void)tern__psk_hint_feed(sc, tls->in + skip, tls->in_len - skip);
        tls->psk_fed += tls->in_len - skip;
    }
    if (sc->state != TERN__PSK_HINT_HOLD) {
        return 0;
    }
    if (tls->wolf_consumed >= sc->hold_at) {
        tls->psk_state = TERN__PSK_STATE_WAITING;
        return TERN__TLS_WANT_PSK;
    }
    uint64_t room = sc->hold_at - tls->wolf_consumed;
    if (tls->in_len > room) {
        tls->in_len = (size_t)room;
    }
    return 0;
}

const uint8_t *tern__tls_engine_psk_identity(const tern__tls *tls, size_t *len)
{
    if (tls->psk_state != TERN__PSK_STATE_WAITING || tls->psk_parser == NULL) {
        return NULL;
    }
    *len = tls->psk_parser->identities[0].len;
    return tls->psk_parser->identities[0].bytes;
}

int tern__tls_engine_handshake(tern__tls *tls, const void *in, size_t *inlen)
{
    if (tls->handshake_done) {
        unwindow(tls, inlen);
        return TERN__TLS_DONE;
    }
    window(tls, in, inlen != NULL ? *inlen : 0);
    int held = tls->psk_parser != NULL || tls->psk_state == TERN__PSK_STATE_WAITING
                   ? psk_scan(tls)
                   : 0;
    if (held == 0 && tls->hint_scan != NULL) {
        held = hint_hold(tls);
    }
    if (held != 0) {
        unwindow(tls, inlen); /* nothing consumed */
        return held;
    }
    if (tls->server && tls->must_verify && !tls->no_cert_checked) {
        /* VERIFY_PEER: wolfSSL refuses a client without a certificate during the handshake (its
         * alert says why) unless someone may ignore it, which the first call knows (the
         * socket sets verify_deferred before it); then NO_PEER_CERTIFICATE comes as an ssl
         * error when the handshake completes (tern__tls_verify_done) */
        tls->no_cert_checked = true;
        if (tls->verify_deferred || tls->ignore_all || tls->expected != NULL) {
            wolfSSL_set_verify(tls->ssl, WOLFSSL_VERIFY_PEER, verify_cb);
        }
    }
    int rc = tls->server ? wolfSSL_accept(tls->ssl) : wolfSSL_connect(tls->ssl);
    unwindow(tls, inlen);
    if (rc != WOLFSSL_SUCCESS && tls->hint_scan != NULL &&
        wolfSSL_get_error(tls->ssl, rc) == WOLFSSL_ERROR_WANT_READ && hint_hold(tls) != 0) {
        return TERN__TLS_WANT_PSK; /* wolfSSL read up to the ServerHelloDone's record */
    }
    if (rc == WOLFSSL_SUCCESS) {
        tls->handshake_done = true;
        tls->version = wolfSSL_version(tls->ssl); /* kept: hibernation frees the object */
        tls->cipher_name = wolfSSL_get_cipher_name(tls->ssl); /* a static string */
        tls->reused = wolfSSL_session_reused(tls->ssl) == 1;
        tern__tls_verify_done(tls);
        if (tls->psk_parser != NULL) {
            psk_parser_drop(tls); /* kept until now for the identity psk.c's callback checks */
        }
        tern__psk_handshake_done(tls);
        return TERN__TLS_DONE;
    }
    if (would_block(wolfSSL_get_error(tls->ssl, rc))) {
        return TERN__TLS_WANT_INPUT;
    }
    return failed(tls, rc);
}

int tern__tls_engine_read(tern__tls *tls, const void *in, size_t *inlen, void *buf, size_t *len)
{
    size_t room = *len > INT32_MAX ? INT32_MAX : *len;
    *len = 0;
    window(tls, in, inlen != NULL ? *inlen : 0);
    int n = wolfSSL_read(tls->ssl, buf, (int)room);
    unwindow(tls, inlen);
    if (n > 0) {
        *len = (size_t)n;
        return TERN__TLS_WANT_INPUT;
    }
    int err = wolfSSL_get_error(tls->ssl, n);
    if (would_block(err)) {
        return TERN__TLS_WANT_INPUT;
    }
    if (err == WOLFSSL_ERROR_ZERO_RETURN) {
        return TERN__TLS_CLOSED;
    }
    tls->wolf_err = err;
    char detail[8];
    return tern__ssl_map_error(err, detail, sizeof(detail));
}

int tern__tls_engine_write(tern__tls *tls, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
        int n = wolfSSL_write(tls->ssl, p, chunk);
        if (n <= 0) {
            return failed(tls, n);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void tern__tls_engine_close(tern__tls *tls)
{
    if (tls->handshake_done) {
        (void)wolfSSL_shutdown(tls->ssl); /* ours only: we do not wait for theirs */
    }
}

void tern__tls_engine_cancel(tern__tls *tls)
{
    if (tls->handshake_done) {
        (void)wolfSSL_SendUserCanceled(tls->ssl);
    }
}

void tern__tls_engine_wire(tern__tls *tls, WOLFSSL *ssl)
{
    wolfSSL_set_info_callback(ssl, info_cb); /* the alerts it sends, counted */
    wolfSSL_SetCertCbCtx(ssl, tls);
    if (!tls->server) {
        wolfSSL_set_SessionTicket_cb(ssl, tern__session_on_ticket, tls);
    }
}

/* ---- making a connection ----------------------------------------------------------------------- */

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

int tern__tls_engine_setup(tern__tls *tls, tern_ssl_config *cfg, bool server, char *err,
                           size_t errlen)
{
    tern__ssl_config_freeze(cfg);
    WOLFSSL *ssl = wolfSSL_new(server ? cfg->server_ctx : cfg->client_ctx);
    if (ssl == NULL) {
        snprintf(err, errlen, "TLS: the library could not create the connection");
        return TERN_ENOMEM;
    }
    wolfSSL_SetIOReadCtx(ssl, tls);
    wolfSSL_SetIOWriteCtx(ssl, tls);
    tls->server = server;
    tern__tls_engine_wire(tls, ssl);

    /* verification per role: AUTO is QUERY_PEER on servers, VERIFY_PEER on clients */
    enum tern_verify_mode mode = tern__tls_verify_mode(tls, cfg);
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
    if (tls->has_verify_depth) {
        wolfSSL_set_verify_depth(ssl, tls->verify_depth); /* else the context's */
    }
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
            snprintf(err, errlen, "TLS: the TLS library refused the peer name \"%s\"",
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
    tern__psk_setup(tls->sock, tls, cfg, server);
    if (!server) {
        tern__groups_client_setup(tls, cfg);
    }
    return 0;

fail:
    snprintf(err, errlen, "TLS: out of memory");
    wolfSSL_free(ssl);
    return TERN_ENOMEM;
}

/* ---- standalone engines ------------------------------------------------------------------------- */

tern__tls *tern__tls_engine_new(tern_ssl_config *cfg, tern__tls_out_fn out, void *out_ctx)
{
    tern__tls *tls = calloc(1, sizeof(*tls));
    if (tls == NULL) {
        return NULL;
    }
    tls->out = out;
    tls->out_ctx = out_ctx;
    tern__object_ref(&cfg->base);
    tls->cfg = &cfg->base;
    return tls;
}

int tern__tls_engine_set_peer_name(tern__tls *tls, const char *name)
{
    char *copy = NULL;
    if (name != NULL && (copy = strdup(name)) == NULL) {
        return TERN_ENOMEM;
    }
    free(tls->peer_name);
    tls->peer_name = copy;
    return 0;
}

int tern__tls_engine_start(tern__tls *tls, bool server, char *err, size_t errlen)
{
    if (tern__tls_started(tls)) {
        snprintf(err, errlen, "started already");
        return TERN_EBUSY;
    }
    return tern__tls_engine_setup(tls, tern__tls_config(tls), server, err, errlen);
}

int tern__tls_engine_offer_session(tern__tls *tls, const void *data, size_t len)
{
    if (tls->ssl == NULL || tls->server || data == NULL || len == 0 ||
        !tern__session_offer(tls, data, len)) {
        return TERN_EINVAL;
    }
    tls->offered_session = true;
    return 0;
}

void tern__tls_engine_free(tern__tls *tls)
{
    if (tls == NULL) {
        return;
    }
    if (tls->psk_parser != NULL) {
        psk_parser_drop(tls);
    }
    tern__tls_errors_free(tls);
    tern__tls_engine_forget(tls);
    wolfSSL_free(tls->ssl);
    tern__client_psk_free(tls->psk);
    tern__object_unref(tls->cfg);
    free(tls->peer_name);
    free(tls);
}

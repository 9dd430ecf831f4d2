/* SPDX-License-Identifier: MIT */
/*
 * OCSP on clients: the response a server stapled, kept as bytes (tern_socket_ocsp_response),
 * and its verdict as ssl errors (QSslError's Ocsp* values), collected like certificate
 * problems (tls_engine.c's verify_cb): data the application may ignore, fatal during the
 * handshake only when nobody may.
 *
 * wolfSSL checks the response (signature by the issuer or its delegate, certificate ID,
 * status, dates) and gives its verdict to tern's status callback: 0, OCSP_CERT_REVOKED, or
 * BAD_CERTIFICATE_STATUS_ERROR for everything else. The last one is told apart here by
 * reading the response (RFC 6960 4.2.1): the responder's status, the certificate's status,
 * nextUpdate; what reads as "good" yet failed did not verify (signature, signer, another
 * certificate's ID). "Must staple" (TERN_OCSP_REQUIRE) is checked here too, when the
 * handshake completes, so that a missing response is an ssl error like the others rather
 * than wolfSSL's hard failure.
 *
 * Runs on the connection's owner thread, inside wolfSSL_connect.
 */
#include "ssl_internal.h"

#include <wolfssl/error-ssl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- just enough DER to read a response ------------------------------------------------------- */

typedef struct der {
    const unsigned char *p, *end;
} der;

/* The next TLV of @d (one-byte tags, lengths up to 4 bytes): its tag, its content in @out.
 * False if malformed. */
static bool der_next(der *d, unsigned *tag, der *out)
{
    if (d->end - d->p < 2) {
        return false;
    }
    *tag = d->p[0];
    size_t len = d->p[1];
    const unsigned char *q = d->p + 2;
    if (len & 0x80) {
        size_t n = len & 0x7f;
        if (n == 0 || n > 4 || (size_t)(d->end - q) < n) {
            return false;
        }
        len = 0;
        for (size_t i = 0; i < n; i++) {
            len = (len << 8) | q[i];
        }
        q += n;
    }
    if ((size_t)(d->end - q) < len) {
        return false;
    }
    out->p = q;
    out->end = q + len;
    d->p = q + len;
    return true;
}

static bool der_enter(der *d, unsigned want, der *out)
{
    unsigned tag;
    return der_next(d, &tag, out) && tag == want;
}

int tern__ocsp_verdict(const unsigned char *data, size_t len, int64_t now)
{
    der d = {data, data + len}, resp, f, bytes, basic, tbs, responses, single;
    unsigned tag;

    /* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT } */
    if (data == NULL || !der_enter(&d, 0x30, &resp) || !der_enter(&resp, 0x0a, &f) ||
        f.end - f.p != 1) {
        return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
    }
    switch (f.p[0]) {
    case 0: /* successful */
        break;
    case 1:
        return TERN_SSL_ERR_OCSP_MALFORMED_REQUEST;
    case 2:
        return TERN_SSL_ERR_OCSP_INTERNAL_ERROR;
    case 3:
        return TERN_SSL_ERR_OCSP_TRY_LATER;
    case 5:
        return TERN_SSL_ERR_OCSP_SIG_REQUIRED;
    case 6:
        return TERN_SSL_ERR_OCSP_UNAUTHORIZED;
    default:
        return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
    }
    /* ResponseBytes ::= SEQUENCE { responseType OID, response OCTET STRING (BasicOCSPResponse:
     * SEQUENCE { tbsResponseData SEQUENCE { [0] version, responderID, producedAt,
     * responses SEQUENCE OF SingleResponse, ... }, ... }) } */
    if (!der_enter(&resp, 0xa0, &f) || !der_enter(&f, 0x30, &bytes) ||
        !der_enter(&bytes, 0x06, &f) || !der_enter(&bytes, 0x04, &basic) ||
        !der_enter(&basic, 0x30, &f) || !der_enter(&f, 0x30, &tbs)) {
        return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
    }
    do { /* [0] version, [1]/[2] responderID, producedAt GeneralizedTime, then responses */
        if (!der_next(&tbs, &tag, &responses)) {
            return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
        }
    } while (tag != 0x30);
    /* SingleResponse ::= SEQUENCE { certID SEQUENCE, certStatus CHOICE { good [0] IMPLICIT
     * NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }, thisUpdate,
     * nextUpdate [0] EXPLICIT GeneralizedTime OPTIONAL, ... } */
    if (!der_enter(&responses, 0x30, &single) || !der_enter(&single, 0x30, &f) ||
        !der_next(&single, &tag, &f)) {
        return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
    }
    if (tag == 0xa1) {
        return TERN_SSL_ERR_CERTIFICATE_REVOKED;
    }
    if (tag == 0x82) {
        return TERN_SSL_ERR_OCSP_STATUS_UNKNOWN;
    }
    if (tag != 0x80 || !der_enter(&single, 0x18, &f)) {
        return TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE;
    }
    der next;
    if (der_next(&single, &tag, &next) && tag == 0xa0 && der_enter(&next, 0x18, &f)) {
        int64_t t = tern__asn1_time_parse(f.p, (int)(f.end - f.p), 24);
        if (t != 0 && t < now) {
            return TERN_SSL_ERR_OCSP_RESPONSE_EXPIRED;
        }
    }
    return 0;
}

/* ---- the client's callback ---------------------------------------------------------------------- */

/* Whether a problem found now ends the handshake (nobody may ignore it). */
static bool fatal_now(tern__tls *tls)
{
    return tls->must_verify && !tls->verify_deferred && !tern__tls_errors_ignored(tls);
}

static int on_status(WOLFSSL *ssl, int err, byte *resp, word32 len, word32 idx, void *arg)
{
    tern__tls *tls = wolfSSL_GetIOReadCtx(ssl);
    (void)arg;

    if (tls == NULL || idx != 0) {
        return err; /* only the peer's own certificate is asked about */
    }
    tls->ocsp_seen = true;
    unsigned char *copy = len > 0 ? malloc(len) : NULL;
    if (copy != NULL) {
        memcpy(copy, resp, len);
    }
    free(tls->ocsp_resp);
    tls->ocsp_resp = copy;
    tls->ocsp_resp_len = copy != NULL ? len : 0;
    if (err == 0) {
        return 0;
    }
    int code = err == OCSP_CERT_REVOKED ? TERN_SSL_ERR_CERTIFICATE_REVOKED
                                        : tern__ocsp_verdict(resp, len, (int64_t)time(NULL));
    if (code == 0 || (code == TERN_SSL_ERR_CERTIFICATE_REVOKED && err != OCSP_CERT_REVOKED)) {
        /* reads as good (or revoked), yet wolfSSL refused it: its signature, its signer or
         * its certificate ID (another certificate's response) did not verify */
        code = TERN_SSL_ERR_OCSP_RESPONSE_CANNOT_BE_TRUSTED;
    }
    /* the leaf is known here in TLS 1.2; in TLS 1.3 tern__tls_verify_done names it */
    tern_certificate *leaf = tls->nchain > 0 && tls->chain[0] != NULL
                                 ? tern_certificate_ref(tls->chain[0])
                                 : NULL;
    if (tern__tls_add_error(tls, (enum tern_ssl_error_code)code, 0, leaf, " (OCSP)") < 0) {
        tls->verify_failed = true;
        tls->verify_error = "out of memory";
        return err;
    }
    if (!fatal_now(tls)) {
        return 0; /* data: the application decides */
    }
    tls->verify_failed = true;
    tls->verify_error = tern_ssl_error_string(
        tern_ssl_error_list_at(tls->errors, tern_ssl_error_list_count(tls->errors) - 1));
    return err;
}

void tern__ocsp_client_init(WOLFSSL_CTX *ctx)
{
    wolfSSL_CTX_set_ocsp_status_verify_cb(ctx, on_status, NULL);
}

void tern__ocsp_handshake_done(tern__tls *tls, const tern_ssl_config *cfg)
{
    if (tls->server || cfg == NULL || cfg->ocsp_policy != TERN_OCSP_REQUIRE || tls->ocsp_seen ||
        wolfSSL_session_reused(tls->ssl)) {
        return; /* a resumption repeats no certificate and no status */
    }
    tern_certificate *leaf = tls->nchain > 0 && tls->chain[0] != NULL
                                 ? tern_certificate_ref(tls->chain[0])
                                 : NULL;
    (void)tern__tls_add_error(tls, TERN_SSL_ERR_OCSP_NO_RESPONSE, 0, leaf, "");
}

/* ---- on the socket ------------------------------------------------------------------------------ */

const void *tern_socket_ocsp_response(const tern_socket *s, size_t *len)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (len != NULL) {
        *len = tls != NULL && tls->handshake_done ? tls->ocsp_resp_len : 0;
    }
    return tls != NULL && tls->handshake_done ? tls->ocsp_resp : NULL;
}

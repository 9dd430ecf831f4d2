/* SPDX-License-Identifier: MIT */
/*
 * Certificate verification errors as data (QSslError), the one place where wolfSSL's verify
 * codes become tern's, and the socket calls around them: ignore (all, or an expected list
 * matched by code and certificate), the handshake's error list, the peer's certificates.
 */
#include "ssl_internal.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tern_ssl_error {
    enum tern_ssl_error_code code;
    int depth;
    tern_certificate *cert;
    const char *note; /* static: follows the code's text (" (OCSP)") */
    char text[160];
};

struct tern_ssl_error_list {
    size_t n, cap;
    struct tern_ssl_error *items;
};

static const char *const code_names[] = {
    [TERN_SSL_ERR_UNABLE_TO_GET_ISSUER] = "UNABLE_TO_GET_ISSUER",
    [TERN_SSL_ERR_SELF_SIGNED] = "SELF_SIGNED",
    [TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN] = "SELF_SIGNED_IN_CHAIN",
    [TERN_SSL_ERR_EXPIRED] = "EXPIRED",
    [TERN_SSL_ERR_NOT_YET_VALID] = "NOT_YET_VALID",
    [TERN_SSL_ERR_HOSTNAME_MISMATCH] = "HOSTNAME_MISMATCH",
    [TERN_SSL_ERR_UNTRUSTED_ROOT] = "UNTRUSTED_ROOT",
    [TERN_SSL_ERR_INVALID_PURPOSE] = "INVALID_PURPOSE",
    [TERN_SSL_ERR_CHAIN_TOO_LONG] = "CHAIN_TOO_LONG",
    [TERN_SSL_ERR_NO_PEER_CERTIFICATE] = "NO_PEER_CERTIFICATE",
    [TERN_SSL_ERR_SIGNATURE_FAILURE] = "SIGNATURE_FAILURE",
    [TERN_SSL_ERR_OTHER] = "OTHER",
    [TERN_SSL_ERR_CERTIFICATE_REVOKED] = "CERTIFICATE_REVOKED",
    [TERN_SSL_ERR_INVALID_CA_CERTIFICATE] = "INVALID_CA_CERTIFICATE",
    [TERN_SSL_ERR_UNABLE_TO_VERIFY_FIRST_CERTIFICATE] = "UNABLE_TO_VERIFY_FIRST_CERTIFICATE",
    [TERN_SSL_ERR_INVALID_NOT_BEFORE_FIELD] = "INVALID_NOT_BEFORE_FIELD",
    [TERN_SSL_ERR_INVALID_NOT_AFTER_FIELD] = "INVALID_NOT_AFTER_FIELD",
    [TERN_SSL_ERR_SUBJECT_ISSUER_MISMATCH] = "SUBJECT_ISSUER_MISMATCH",
    [TERN_SSL_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY] = "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
    [TERN_SSL_ERR_UNABLE_TO_GET_CRL] = "UNABLE_TO_GET_CRL",
    [TERN_SSL_ERR_CRL_EXPIRED] = "CRL_EXPIRED",
    [TERN_SSL_ERR_OCSP_NO_RESPONSE] = "OCSP_NO_RESPONSE",
    [TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE] = "OCSP_MALFORMED_RESPONSE",
    [TERN_SSL_ERR_OCSP_MALFORMED_REQUEST] = "OCSP_MALFORMED_REQUEST",
    [TERN_SSL_ERR_OCSP_INTERNAL_ERROR] = "OCSP_INTERNAL_ERROR",
    [TERN_SSL_ERR_OCSP_TRY_LATER] = "OCSP_TRY_LATER",
    [TERN_SSL_ERR_OCSP_SIG_REQUIRED] = "OCSP_SIG_REQUIRED",
    [TERN_SSL_ERR_OCSP_UNAUTHORIZED] = "OCSP_UNAUTHORIZED",
    [TERN_SSL_ERR_OCSP_RESPONSE_CANNOT_BE_TRUSTED] = "OCSP_RESPONSE_CANNOT_BE_TRUSTED",
    [TERN_SSL_ERR_OCSP_RESPONSE_EXPIRED] = "OCSP_RESPONSE_EXPIRED",
    [TERN_SSL_ERR_OCSP_STATUS_UNKNOWN] = "OCSP_STATUS_UNKNOWN",
    [TERN_SSL_ERR_NO_SSL_SUPPORT] = "NO_SSL_SUPPORT",
};

#define NCODES (sizeof(code_names) / sizeof(code_names[0]))

static const char *const code_texts[] = {
    [TERN_SSL_ERR_UNABLE_TO_GET_ISSUER] = "no trusted issuer certificate",
    [TERN_SSL_ERR_SELF_SIGNED] = "self-signed certificate",
    [TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN] = "self-signed certificate in the chain",
    [TERN_SSL_ERR_EXPIRED] = "certificate has expired",
    [TERN_SSL_ERR_NOT_YET_VALID] = "certificate is not yet valid",
    [TERN_SSL_ERR_HOSTNAME_MISMATCH] = "certificate does not match the peer name",
    [TERN_SSL_ERR_UNTRUSTED_ROOT] = "root certificate is not trusted",
    [TERN_SSL_ERR_INVALID_PURPOSE] = "certificate cannot be used for this purpose",
    [TERN_SSL_ERR_CHAIN_TOO_LONG] = "certificate chain is too long",
    [TERN_SSL_ERR_NO_PEER_CERTIFICATE] = "the peer sent no certificate",
    [TERN_SSL_ERR_SIGNATURE_FAILURE] = "certificate signature does not verify",
    [TERN_SSL_ERR_OTHER] = "certificate verification failed",
    [TERN_SSL_ERR_CERTIFICATE_REVOKED] = "certificate has been revoked",
    [TERN_SSL_ERR_INVALID_CA_CERTIFICATE] = "a CA certificate that may not sign certificates",
    [TERN_SSL_ERR_UNABLE_TO_VERIFY_FIRST_CERTIFICATE] = "unable to verify the first certificate",
    [TERN_SSL_ERR_INVALID_NOT_BEFORE_FIELD] = "certificate's notBefore field cannot be read",
    [TERN_SSL_ERR_INVALID_NOT_AFTER_FIELD] = "certificate's notAfter field cannot be read",
    [TERN_SSL_ERR_SUBJECT_ISSUER_MISMATCH] = "issuer name does not match its issuer's subject",
    [TERN_SSL_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY] = "the issuer's public key cannot be read",
    [TERN_SSL_ERR_UNABLE_TO_GET_CRL] = "no CRL of the certificate's issuer",
    [TERN_SSL_ERR_CRL_EXPIRED] = "the issuer's CRL is out of date",
    [TERN_SSL_ERR_OCSP_NO_RESPONSE] = "no OCSP response was stapled (required)",
    [TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE] = "the stapled OCSP response cannot be read",
    [TERN_SSL_ERR_OCSP_MALFORMED_REQUEST] = "OCSP responder: malformed request",
    [TERN_SSL_ERR_OCSP_INTERNAL_ERROR] = "OCSP responder: internal error",
    [TERN_SSL_ERR_OCSP_TRY_LATER] = "OCSP responder: try later",
    [TERN_SSL_ERR_OCSP_SIG_REQUIRED] = "OCSP responder: signed request required",
    [TERN_SSL_ERR_OCSP_UNAUTHORIZED] = "OCSP responder: unauthorized",
    [TERN_SSL_ERR_OCSP_RESPONSE_CANNOT_BE_TRUSTED] = "the stapled OCSP response does not verify",
    [TERN_SSL_ERR_OCSP_RESPONSE_EXPIRED] = "the stapled OCSP response is out of date",
    [TERN_SSL_ERR_OCSP_STATUS_UNKNOWN] = "the OCSP responder does not know the certificate",
    [TERN_SSL_ERR_NO_SSL_SUPPORT] = "the TLS library cannot make this check",
};

const char *tern_ssl_error_code_name(enum tern_ssl_error_code code)
{
    if ((unsigned)code >= NCODES || code_names[code] == NULL) {
        return "UNKNOWN";
    }
    return code_names[code];
}

enum tern_ssl_error_code tern_ssl_error_code(const tern_ssl_error *e)
{
    return e->code;
}

const char *tern_ssl_error_name(const tern_ssl_error *e)
{
    return tern_ssl_error_code_name(e->code);
}

const char *tern_ssl_error_string(const tern_ssl_error *e)
{
    return e->text;
}

const tern_certificate *tern_ssl_error_certificate(const tern_ssl_error *e)
{
    return e->cert;
}

size_t tern_ssl_error_list_count(const tern_ssl_error_list *l)
{
    return l != NULL ? l->n : 0;
}

const tern_ssl_error *tern_ssl_error_list_at(const tern_ssl_error_list *l, size_t i)
{
    return l != NULL && i < l->n ? &l->items[i] : NULL;
}

tern_ssl_error_list *tern_ssl_error_list_new(void)
{
    return calloc(1, sizeof(tern_ssl_error_list));
}

static int list_push(tern_ssl_error_list *l, enum tern_ssl_error_code code, int depth,
                     tern_certificate *cert /* a reference moves in */, const char *note)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct tern_ssl_error *items = realloc(l->items, cap * sizeof(*items));
        if (items == NULL) {
            tern_certificate_unref(cert);
            return TERN_ENOMEM;
        }
        l->items = items;
        l->cap = cap;
    }
    struct tern_ssl_error *e = &l->items[l->n++];
    e->code = code;
    e->depth = depth;
    e->cert = cert;
    e->note = note;
    snprintf(e->text, sizeof(e->text), "%s%s (depth %d)%s%s", code_texts[code], note, depth,
             cert != NULL ? ": " : "", cert != NULL ? tern_certificate_subject(cert) : "");
    return 0;
}

int tern_ssl_error_list_add(tern_ssl_error_list *l, enum tern_ssl_error_code code,
                            const tern_certificate *cert)
{
    if (l == NULL || code < TERN_SSL_ERR_UNABLE_TO_GET_ISSUER || (unsigned)code >= NCODES) {
        return TERN_EINVAL;
    }
    return list_push(l, code, 0, cert != NULL ? tern_certificate_ref((tern_certificate *)cert) : NULL,
                     "");
}

void tern_ssl_error_list_free(tern_ssl_error_list *l)
{
    if (l == NULL) {
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        tern_certificate_unref(l->items[i].cert);
    }
    free(l->items);
    free(l);
}

/* ---- from wolfSSL ------------------------------------------------------------------------------ */

static enum tern_ssl_error_code map_verify(int err, int depth, const tern_certificate *cert)
{
    bool self = cert != NULL && tern_certificate_is_self_signed(cert);

    switch (err) {
    case WOLFSSL_X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case 2: /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
    case ASN_NO_SIGNER_E:
        if (self) {
            return depth == 0 ? TERN_SSL_ERR_SELF_SIGNED : TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN;
        }
        return TERN_SSL_ERR_UNABLE_TO_GET_ISSUER;
    case WOLFSSL_X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return TERN_SSL_ERR_UNABLE_TO_VERIFY_FIRST_CERTIFICATE;
    case WOLFSSL_X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case ASN_SELF_SIGNED_E:
        /* an untrusted self-signed certificate above the leaf is "in the chain" */
        return depth == 0 ? TERN_SSL_ERR_SELF_SIGNED : TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN;
    case 19: /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
        return TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN;
    case WOLFSSL_X509_V_ERR_CERT_HAS_EXPIRED:
    case ASN_AFTER_DATE_E:
        return TERN_SSL_ERR_EXPIRED;
    case WOLFSSL_X509_V_ERR_CERT_NOT_YET_VALID:
    case ASN_BEFORE_DATE_E:
        return TERN_SSL_ERR_NOT_YET_VALID;
    case DOMAIN_NAME_MISMATCH:
    case IPADDR_MISMATCH:
    case 62: /* X509_V_ERR_HOSTNAME_MISMATCH */
    case 64: /* X509_V_ERR_IP_ADDRESS_MISMATCH */
        return TERN_SSL_ERR_HOSTNAME_MISMATCH;
    case 27: /* X509_V_ERR_CERT_UNTRUSTED */
    case WOLFSSL_X509_V_ERR_CERT_REJECTED:
        return TERN_SSL_ERR_UNTRUSTED_ROOT;
    case 26: /* X509_V_ERR_INVALID_PURPOSE */
    case KEYUSAGE_E:
    case EXTKEYUSAGE_E:
    case EXTKEYUSE_AUTH_E: /* no serverAuth (a client's view) / clientAuth (a server's) */
    case KEYUSE_SIGNATURE_E:
        return TERN_SSL_ERR_INVALID_PURPOSE;
    case WOLFSSL_X509_V_ERR_CERT_REVOKED:
    case CRL_CERT_REVOKED:
    case OCSP_CERT_REVOKED:
        return TERN_SSL_ERR_CERTIFICATE_REVOKED;
    case 3: /* X509_V_ERR_UNABLE_TO_GET_CRL */
    case CRL_MISSING:
        return TERN_SSL_ERR_UNABLE_TO_GET_CRL;
    case 11: /* X509_V_ERR_CRL_NOT_YET_VALID */
    case 12: /* X509_V_ERR_CRL_HAS_EXPIRED */
    case CRL_CERT_DATE_ERR:
        return TERN_SSL_ERR_CRL_EXPIRED;
    case 24: /* X509_V_ERR_INVALID_CA */
    case NOT_CA_ERROR:
        return TERN_SSL_ERR_INVALID_CA_CERTIFICATE;
    case 13: /* X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD */
        return TERN_SSL_ERR_INVALID_NOT_BEFORE_FIELD;
    case 14: /* X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD */
        return TERN_SSL_ERR_INVALID_NOT_AFTER_FIELD;
    case 29: /* X509_V_ERR_SUBJECT_ISSUER_MISMATCH */
        return TERN_SSL_ERR_SUBJECT_ISSUER_MISMATCH;
    case 6: /* X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY */
        return TERN_SSL_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY;
    case OCSP_CERT_UNKNOWN:
        return TERN_SSL_ERR_OCSP_STATUS_UNKNOWN;
    case NOT_COMPILED_IN:
        return TERN_SSL_ERR_NO_SSL_SUPPORT;
    case WOLFSSL_X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case WOLFSSL_X509_V_ERR_PATH_LENGTH_EXCEEDED:
    case MAX_CHAIN_ERROR:
        return TERN_SSL_ERR_CHAIN_TOO_LONG;
    case WOLFSSL_X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case ASN_SIG_CONFIRM_E:
    case ASN_SIG_OID_E:
    case ASN_SIG_HASH_E:
    case ASN_SIG_KEY_E:
        return TERN_SSL_ERR_SIGNATURE_FAILURE;
    case NO_PEER_CERT:
        return TERN_SSL_ERR_NO_PEER_CERTIFICATE;
    default:
        return TERN_SSL_ERR_OTHER;
    }
}

int tern__tls_add_verify_error(tern__tls *tls, int err, int depth, WOLFSSL_X509 *x)
{
    tern_certificate *cert = x != NULL ? tern__certificate_from_x509(x) : NULL;
    return tern__tls_add_error(tls, map_verify(err, depth, cert), depth, cert, "");
}

int tern__tls_add_error(tern__tls *tls, enum tern_ssl_error_code code, int depth,
                        tern_certificate *cert, const char *note)
{
    if (tls->errors == NULL && (tls->errors = tern_ssl_error_list_new()) == NULL) {
        tern_certificate_unref(cert);
        return TERN_ENOMEM;
    }
    /* one entry per (code, certificate): wolfSSL may report a problem more than once */
    for (size_t i = 0; i < tls->errors->n; i++) {
        const struct tern_ssl_error *e = &tls->errors->items[i];
        if (e->code == code && tern_certificate_equals(e->cert, cert)) {
            tern_certificate_unref(cert);
            return 0;
        }
    }
    return list_push(tls->errors, code, depth, cert, note);
}

/* The handshake completed: the checks that need all of it. */
void tern__tls_verify_done(tern__tls *tls)
{
    const tern_ssl_config *cfg = tern__tls_config(tls);
    const tern_ssl_config *used = tls->sni_cfg != NULL ? tls->sni_cfg : cfg;

    /* VERIFY_PEER on a server: wolfSSL refuses a client without a certificate itself unless
     * someone may ignore it (tern__tls_engine_setup); then it is an error like the others. A
     * resumption or a PSK handshake carries no certificate. */
    if (tls->server && tls->must_verify && tls->nchain == 0 &&
        tls->psk_state != TERN__PSK_STATE_KEY && !wolfSSL_session_reused(tls->ssl)) {
        (void)tern__tls_add_error(tls, TERN_SSL_ERR_NO_PEER_CERTIFICATE, 0, NULL, "");
    }
    tern__ocsp_handshake_done(tls, used);
    /* errors found before the leaf was known (TLS 1.3 OCSP) name it now */
    tern_certificate *leaf = tls->nchain > 0 ? tls->chain[0] : NULL;
    for (size_t i = 0; leaf != NULL && tls->errors != NULL && i < tls->errors->n; i++) {
        struct tern_ssl_error *e = &tls->errors->items[i];
        if (e->cert == NULL && e->depth == 0 && e->code != TERN_SSL_ERR_NO_PEER_CERTIFICATE) {
            e->cert = tern_certificate_ref(leaf);
            snprintf(e->text, sizeof(e->text), "%s%s (depth 0): %s", code_texts[e->code], e->note,
                     tern_certificate_subject(leaf));
        }
    }
}

/* Whether every error found is ignored (all, or matched by an expected entry). */
bool tern__tls_errors_ignored(const tern__tls *tls)
{
    if (tls->errors == NULL || tls->errors->n == 0 || tls->ignore_all) {
        return true;
    }
    if (tls->expected == NULL) {
        return false;
    }
    for (size_t i = 0; i < tls->errors->n; i++) {
        const struct tern_ssl_error *e = &tls->errors->items[i];
        bool matched = false;
        for (size_t j = 0; j < tls->expected->n && !matched; j++) {
            const struct tern_ssl_error *x = &tls->expected->items[j];
            matched = x->code == e->code && (x->cert == NULL || tern_certificate_equals(x->cert, e->cert));
        }
        if (!matched) {
            return false;
        }
    }
    return true;
}

void tern__tls_errors_free(tern__tls *tls)
{
    tern__tls_forget_session(tls); /* the connection's, not the errors', but it ends with them */
    tern_ssl_error_list_free(tls->errors);
    tern_ssl_error_list_free(tls->expected);
    tern_certificate_unref(tls->peer);

    for (size_t i = 0; i < tls->nchain; i++) {
        tern_certificate_unref(tls->chain[i]);
    }
    free(tls->chain);
    free(tls->ocsp_resp);
    tls->ocsp_resp = NULL;
    tls->ocsp_resp_len = 0;
    tls->ocsp_seen = false;
    tern__tls_free_name(tls, tls->alpn);
    tern__tls_free_name(tls, tls->sni);
    tls->alpn = tls->sni = NULL;
    tls->errors = tls->expected = NULL;
    tls->peer = NULL;
    tls->chain = NULL;
    tls->nchain = 0;
}

/* ---- on the socket -------------------------------------------------------------------------------- */

void tern_socket_ignore_all_ssl_errors(tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_get(s);
    if (tls != NULL) { /* out of memory: nothing ignored, the safe side */
        tls->ignore_all_set = true;
        tls->ignore_all = true;
    }
}

static tern_ssl_error_list *list_copy(const tern_ssl_error_list *from)
{
    tern_ssl_error_list *copy = tern_ssl_error_list_new();
    for (size_t i = 0; copy != NULL && from != NULL && i < from->n; i++) {
        if (tern_ssl_error_list_add(copy, from->items[i].code, from->items[i].cert) < 0) {
            tern_ssl_error_list_free(copy);
            return NULL;
        }
    }
    return copy;
}

int tern_socket_ignore_ssl_errors(tern_socket *s, const tern_ssl_error_list *expected)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_get(s);
    tern_ssl_error_list *copy = tls != NULL ? list_copy(expected) : NULL;

    if (copy == NULL) {
        return TERN_ENOMEM;
    }
    /* before the handshake too: the next handshake uses it */
    tern_ssl_error_list_free(tls->expected);
    tls->expected = copy;
    return 0;
}

const tern_ssl_error_list *tern_socket_ssl_handshake_errors(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL ? tls->errors : NULL;
}

void tern__tls_keep_chain_cert(tern__tls *tls, int depth, WOLFSSL_X509 *x)
{
    if (x == NULL || depth < 0 || depth >= TERN__MAX_CHAIN) {
        return;
    }
    if (tls->chain == NULL && (tls->chain = calloc(TERN__MAX_CHAIN, sizeof(*tls->chain))) == NULL) {
        return;
    }
    if (tls->chain[depth] == NULL) {
        tls->chain[depth] = tern__certificate_from_x509(x);
    }
    if ((size_t)depth + 1 > tls->nchain) {
        tls->nchain = (size_t)depth + 1;
    }
}

/* The peer's certificate, converted once on first use. */
static void load_peer(tern__tls *tls)
{
    if (tls->peer_loaded || !tls->handshake_done) {
        return;
    }
    tls->peer_loaded = true;
#ifdef KEEP_PEER_CERT
    WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(tls->ssl);
#else
    /* tern's own wolfSSL keeps no copy in the connection (NO_KEEP_PEER_CERT): the leaf of
     * the chain the verify callback collected is the peer's certificate */
    WOLFSSL_X509 *x = NULL;
#endif
    if (x != NULL) {
        tls->peer = tern__certificate_from_x509(x);
        wolfSSL_X509_free(x);
    } else if (tls->nchain > 0 && tls->chain[0] != NULL) {
        tls->peer = tern_certificate_ref(tls->chain[0]);
    }
}

const tern_certificate *tern_socket_peer_certificate(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL) {
        return NULL;
    }
    load_peer(tls);
    return tls->peer;
}

const tern_certificate *tern_socket_local_certificate(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (!tern__tls_started(tls)) {
        return NULL;
    }
    const tern_ssl_config *cfg = tls->sni_cfg != NULL ? tls->sni_cfg : tern__tls_config(tls);
    return cfg != NULL ? cfg->local_cert : NULL;
}

size_t tern_socket_peer_certificate_chain_count(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->handshake_done ? tls->nchain : 0;
}

const tern_certificate *tern_socket_peer_certificate_chain_at(const tern_socket *s, size_t i)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->handshake_done && i < tls->nchain ? tls->chain[i] : NULL;
}

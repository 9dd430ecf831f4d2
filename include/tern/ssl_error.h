/* SPDX-License-Identifier: MIT */
/**
 * @file ssl_error.h
 * Problems found while establishing the peer's identity (QSslError): each has a code and the
 * certificate it concerns. They are data, not return codes: the `ssl_errors` event delivers
 * the whole list once; unless the application ignores them (all, or exactly an expected list
 * matching code and certificate), the connection closes after the event returns.
 */
#ifndef TERN_SSL_ERROR_H
#define TERN_SSL_ERROR_H

#include <tern/certificate.h>
#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Certificate verification problems. */
enum tern_ssl_error_code {
    TERN_SSL_ERR_UNABLE_TO_GET_ISSUER = 1, /**< no trusted issuer for a certificate */
    TERN_SSL_ERR_SELF_SIGNED,              /**< the peer's certificate is self-signed, untrusted */
    TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN,     /**< an untrusted self-signed certificate in the chain */
    TERN_SSL_ERR_EXPIRED,                  /**< past its notAfter */
    TERN_SSL_ERR_NOT_YET_VALID,            /**< before its notBefore */
    TERN_SSL_ERR_HOSTNAME_MISMATCH,        /**< does not name the peer verify name */
    TERN_SSL_ERR_UNTRUSTED_ROOT,           /**< the root is not trusted */
    TERN_SSL_ERR_INVALID_PURPOSE,          /**< key usage does not allow this use */
    TERN_SSL_ERR_CHAIN_TOO_LONG,           /**< longer than the verify depth */
    TERN_SSL_ERR_NO_PEER_CERTIFICATE,      /**< the peer sent none (VERIFY_PEER) */
    TERN_SSL_ERR_SIGNATURE_FAILURE,        /**< a signature does not verify */
    TERN_SSL_ERR_OTHER,                    /**< anything else the TLS library reported */
    /* Added after OTHER, so that the values above keep theirs. */
    TERN_SSL_ERR_CERTIFICATE_REVOKED,      /**< revoked: listed in its issuer's CRL
                                            *   (`tern_ssl_config_add_crl_file`), or so says
                                            *   the stapled OCSP response */
    TERN_SSL_ERR_INVALID_CA_CERTIFICATE,   /**< a CA certificate that may not sign
                                            *   certificates (not a CA, bad key usage) */
    TERN_SSL_ERR_UNABLE_TO_VERIFY_FIRST_CERTIFICATE, /**< the leaf cannot be verified: no
                                            *   issuer for it, and the chain is one certificate */
    TERN_SSL_ERR_INVALID_NOT_BEFORE_FIELD, /**< the notBefore date cannot be read */
    TERN_SSL_ERR_INVALID_NOT_AFTER_FIELD,  /**< the notAfter date cannot be read */
    TERN_SSL_ERR_SUBJECT_ISSUER_MISMATCH,  /**< the issuer name is not the subject of the
                                            *   certificate that signed it */
    TERN_SSL_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY, /**< the issuer's key cannot be read */
    TERN_SSL_ERR_UNABLE_TO_GET_CRL,        /**< CRLs are checked, and the issuer has none */
    TERN_SSL_ERR_CRL_EXPIRED,              /**< the issuer's CRL is past its next update (or
                                            *   not yet valid) */
    TERN_SSL_ERR_OCSP_NO_RESPONSE,         /**< TERN_OCSP_REQUIRE, and nothing was stapled */
    TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE,  /**< the stapled response cannot be read */
    TERN_SSL_ERR_OCSP_MALFORMED_REQUEST,   /**< the responder said: malformedRequest */
    TERN_SSL_ERR_OCSP_INTERNAL_ERROR,      /**< the responder said: internalError */
    TERN_SSL_ERR_OCSP_TRY_LATER,           /**< the responder said: tryLater */
    TERN_SSL_ERR_OCSP_SIG_REQUIRED,        /**< the responder said: sigRequired */
    TERN_SSL_ERR_OCSP_UNAUTHORIZED,        /**< the responder said: unauthorized */
    TERN_SSL_ERR_OCSP_RESPONSE_CANNOT_BE_TRUSTED, /**< its signature, signer or certificate
                                            *   ID does not verify */
    TERN_SSL_ERR_OCSP_RESPONSE_EXPIRED,    /**< past its nextUpdate */
    TERN_SSL_ERR_OCSP_STATUS_UNKNOWN,      /**< the responder does not know the certificate */
    TERN_SSL_ERR_NO_SSL_SUPPORT,           /**< the check needs what this TLS library build
                                            *   lacks */
};

/** The error's code. @thread any (errors are read-only; each lives as long as its list) */
TERN_API enum tern_ssl_error_code tern_ssl_error_code(const tern_ssl_error *e);
/** The code's name without prefix ("EXPIRED"). @return a static string. @thread any */
TERN_API const char *tern_ssl_error_name(const tern_ssl_error *e);
/** A sentence for logs ("certificate has expired (depth 0)"). @return borrowed with @p e.
 * @thread any */
TERN_API const char *tern_ssl_error_string(const tern_ssl_error *e);
/** The certificate it is about, or NULL (no peer certificate). @return borrowed with @p e.
 * @thread any */
TERN_API const tern_certificate *tern_ssl_error_certificate(const tern_ssl_error *e);
/** The name of a code without prefix ("HOSTNAME_MISMATCH"). @return a static string.
 * @thread any */
TERN_API const char *tern_ssl_error_code_name(enum tern_ssl_error_code code);

/** The number of errors in @p l (0 for NULL). @thread any (a socket's list: see
 * `tern_socket_ssl_handshake_errors` for how long it lives) */
TERN_API size_t tern_ssl_error_list_count(const tern_ssl_error_list *l);
/** Error @p i, or NULL. @return borrowed with @p l. @thread any */
TERN_API const tern_ssl_error *tern_ssl_error_list_at(const tern_ssl_error_list *l, size_t i);

/** An empty list, to build the expected errors of `tern_socket_ignore_ssl_errors`.
 * @return it or NULL (out of memory). @thread any */
TERN_API tern_ssl_error_list *tern_ssl_error_list_new(void);
/** Appends (@p code, @p cert); the certificate is referenced (NULL: any certificate).
 * @return 0; TERN_ENOMEM. @thread any (one thread at a time: the list is the caller's) */
TERN_API int tern_ssl_error_list_add(tern_ssl_error_list *l, enum tern_ssl_error_code code,
                                     const tern_certificate *cert);
/** Frees a list made with `tern_ssl_error_list_new`. NULL is a no-op. @thread any */
TERN_API void tern_ssl_error_list_free(tern_ssl_error_list *l);

/**
 * Ignore every verification error of the current handshake: the connection proceeds.
 * Dangerous (no identity check): for tests and pinned set-ups. Call it in `ssl_errors` or
 * before the handshake. @thread owner
 */
TERN_API void tern_socket_ignore_all_ssl_errors(tern_socket *s);

/**
 * Ignore exactly these errors: the handshake proceeds only if every error found matches an
 * entry of @p expected by code and by certificate (an entry with a NULL certificate matches
 * any). The list is copied. Call it in `ssl_errors` or before the handshake.
 * @return 0; TERN_ENOMEM. @thread owner
 */
TERN_API int tern_socket_ignore_ssl_errors(tern_socket *s, const tern_ssl_error_list *expected);

/** The errors found by the last handshake (ignored or not), or NULL. @return borrowed while
 * @p s lives or until its next handshake. @thread owner */
TERN_API const tern_ssl_error_list *tern_socket_ssl_handshake_errors(const tern_socket *s);

/** The peer's certificate, or NULL (none, or no handshake yet). @return borrowed while the
 * connection's TLS state lives (until free or the next connect). @thread owner */
TERN_API const tern_certificate *tern_socket_peer_certificate(const tern_socket *s);
/** The local certificate this connection presented (server, or client with a certificate),
 * or NULL. @return borrowed while the connection's TLS state lives. @thread owner */
TERN_API const tern_certificate *tern_socket_local_certificate(const tern_socket *s);

/**
 * The OCSP response the server stapled (DER, RFC 6960 4.2.1) as received, whatever its
 * verdict (see the OCSP errors of `tern_socket_ssl_handshake_errors`), or NULL: none, not a
 * client with an OCSP policy (`tern_ssl_config_set_ocsp_stapling`), no handshake yet.
 * @param len  (may be NULL) its length, 0 with NULL
 * @return borrowed while the connection's TLS state lives (until free or the next connect).
 * @thread owner
 */
TERN_API const void *tern_socket_ocsp_response(const tern_socket *s, size_t *len);

/** The number of certificates the peer sent (leaf first). @thread owner */
TERN_API size_t tern_socket_peer_certificate_chain_count(const tern_socket *s);
/** Certificate @p i of the peer's chain, or NULL. @thread owner */
TERN_API const tern_certificate *tern_socket_peer_certificate_chain_at(const tern_socket *s,
                                                                       size_t i);

#ifdef __cplusplus
}
#endif
#endif

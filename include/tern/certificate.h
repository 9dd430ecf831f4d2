/* SPDX-License-Identifier: MIT */
/**
 * @file certificate.h
 * X.509 certificates as immutable, reference-counted values (QSslCertificate): the peer's
 * certificate and chain, the certificate an ssl error is about, pinning by digest.
 * Immutable once made, so any thread may read one: every function here is @thread any, for
 * as long as the caller holds a reference (or the object it borrowed the certificate from
 * lives).
 */
#ifndef TERN_CERTIFICATE_H
#define TERN_CERTIFICATE_H

#include <tern/common.h>
#include <tern/ssl_config.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Digest algorithms for fingerprints. */
enum tern_digest {
    TERN_DIGEST_SHA256, /**< 32 bytes */
};

/**
 * Parses one certificate (PEM: the first one in @p data; DER). @return a certificate with
 * one reference, or NULL if @p data holds none (or out of memory). @thread any
 */
TERN_API tern_certificate *tern_certificate_new(const void *data, size_t len, enum tern_encoding enc);

/** Adds a reference. @return @p c. @thread any */
TERN_API tern_certificate *tern_certificate_ref(tern_certificate *c);
/** Drops a reference. NULL is a no-op. @thread any */
TERN_API void tern_certificate_unref(tern_certificate *c);

/** The subject as one line ("/C=FR/O=tern/CN=localhost"). @return borrowed while @p c lives.
 * @thread any */
TERN_API const char *tern_certificate_subject(const tern_certificate *c);
/** The issuer, as `tern_certificate_subject`. @thread any */
TERN_API const char *tern_certificate_issuer(const tern_certificate *c);
/** The serial number in hexadecimal ("01:a2:..."). @return borrowed while @p c lives.
 * @thread any */
TERN_API const char *tern_certificate_serial(const tern_certificate *c);
/** Start of validity, seconds since the epoch (UTC). @thread any */
TERN_API int64_t tern_certificate_not_before(const tern_certificate *c);
/** End of validity, seconds since the epoch (UTC). @thread any */
TERN_API int64_t tern_certificate_not_after(const tern_certificate *c);
/** The number of DNS names in the subjectAltName extension. @thread any */
TERN_API size_t tern_certificate_san_count(const tern_certificate *c);
/** DNS name @p i of subjectAltName, or NULL. @return borrowed while @p c lives. @thread any */
TERN_API const char *tern_certificate_san(const tern_certificate *c, size_t i);
/** Whether subject and issuer are the same name. @thread any */
TERN_API bool tern_certificate_is_self_signed(const tern_certificate *c);

/** The DER bytes. @return a borrowed view, valid while @p c lives. @thread any */
TERN_API tern_buf tern_certificate_der(const tern_certificate *c);

/**
 * The certificate in PEM into @p buf (NUL-terminated when @p len > 0). @return the length
 * the PEM needs without the NUL (as snprintf: cut if >= @p len). @thread any
 */
TERN_API ssize_t tern_certificate_to_pem(const tern_certificate *c, char *buf, size_t len);

/** Writes the digest of the DER into @p out. @return its length (32 for SHA-256);
 * TERN_ENOBUFS if @p len is too small; TERN_EINVAL for an unknown algorithm. @thread any */
TERN_API ssize_t tern_certificate_digest(const tern_certificate *c, enum tern_digest alg,
                                         uint8_t *out, size_t len);

/** Whether the digest of @p c equals @p digest (constant time). @thread any */
TERN_API bool tern_certificate_digest_equals(const tern_certificate *c, enum tern_digest alg,
                                             const uint8_t *digest, size_t len);

/** Whether two certificates are the same DER. NULLs are equal only to each other.
 * @thread any */
TERN_API bool tern_certificate_equals(const tern_certificate *a, const tern_certificate *b);

#ifdef __cplusplus
}
#endif
#endif

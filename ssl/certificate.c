/* SPDX-License-Identifier: MIT */
/*
 * tern_certificate: an immutable X.509 certificate. Parsed once at creation (subject,
 * issuer, serial, validity, DNS subjectAltNames); afterwards only read, so any thread may
 * use it. The DER bytes are kept for export, digests and comparison.
 */
#include "ssl_internal.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SANS 64

struct tern_certificate {
    _Atomic int refs;
    unsigned char *der;
    size_t der_len;
    char subject[256];
    char issuer[256];
    char serial[3 * 32];
    int64_t not_before, not_after;
    size_t nsans;
    char *sans[MAX_SANS];
};

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const unsigned char *p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v;
}

/* UTCTime "YYMMDDHHMMSSZ" or GeneralizedTime "YYYYMMDDHHMMSSZ" to seconds since the epoch.
 * Parsed here rather than with wolfSSL_ASN1_TIME_to_tm, whose mktime reads the time zone
 * under a lock of glibc's that ThreadSanitizer cannot see (and needs none: this is UTC). */
int64_t tern__asn1_time_parse(const unsigned char *p, int len, int type)
{
    int year;
    if (len == 13 && type == 23) { /* V_ASN1_UTCTIME, RFC 5280 4.1.2.5.1 */
        year = digits(p, 2);
        year += year < 50 ? 2000 : 1900;
        p += 2;
    } else if (len == 15 && type == 24) { /* V_ASN1_GENERALIZEDTIME */
        year = digits(p, 4);
        p += 4;
    } else {
        return 0;
    }
    int mon = digits(p, 2), day = digits(p + 2, 2), hh = digits(p + 4, 2), mm = digits(p + 6, 2),
        ss = digits(p + 8, 2);
    if (year < 0 || mon < 1 || mon > 12 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 ||
        mm > 59 || ss < 0 || ss > 60 || p[10] != 'Z') {
        return 0;
    }
    return days_from_civil(year, (unsigned)mon, (unsigned)day) * 86400 + hh * 3600 + mm * 60 + ss;
}

static int64_t asn1_time(const WOLFSSL_ASN1_TIME *t)
{
    return t != NULL ? tern__asn1_time_parse(t->data, t->length, t->type) : 0;
}

tern_certificate *tern__certificate_from_x509(WOLFSSL_X509 *x)
{
    int der_len = 0;
    const unsigned char *der = wolfSSL_X509_get_der(x, &der_len);
    if (der == NULL || der_len <= 0) {
        return NULL;
    }
    tern_certificate *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->der = malloc((size_t)der_len)) == NULL) {
        free(c);
        return NULL;
    }
    atomic_init(&c->refs, 1);
    memcpy(c->der, der, (size_t)der_len);
    c->der_len = (size_t)der_len;
    wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), c->subject, sizeof(c->subject));
    wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_issuer_name(x), c->issuer, sizeof(c->issuer));
    unsigned char serial[32];
    int slen = sizeof(serial);
    if (wolfSSL_X509_get_serial_number(x, serial, &slen) == WOLFSSL_SUCCESS) {
        size_t off = 0;
        for (int i = 0; i < slen && off + 4 <= sizeof(c->serial); i++) {
            off += (size_t)snprintf(c->serial + off, sizeof(c->serial) - off, "%s%02x",
                                    i ? ":" : "", serial[i]);
        }
    }
    c->not_before = asn1_time(wolfSSL_X509_get_notBefore(x));
    c->not_after = asn1_time(wolfSSL_X509_get_notAfter(x));
    char *name;
    while ((name = wolfSSL_X509_get_next_altname(x)) != NULL && c->nsans < MAX_SANS) {
        c->sans[c->nsans] = strdup(name);
        if (c->sans[c->nsans] != NULL) {
            c->nsans++;
        }
    }
    return c;
}

tern_certificate *tern_certificate_new(const void *data, size_t len, enum tern_encoding enc)
{
    if (data == NULL || len == 0 || len > INT32_MAX) {
        return NULL;
    }
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(
        data, (int)len, enc == TERN_ENCODING_DER ? WOLFSSL_FILETYPE_ASN1 : WOLFSSL_FILETYPE_PEM);
    if (x == NULL) {
        return NULL;
    }
    tern_certificate *c = tern__certificate_from_x509(x);
    wolfSSL_X509_free(x);
    return c;
}

tern_certificate *tern_certificate_ref(tern_certificate *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void tern_certificate_unref(tern_certificate *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    for (size_t i = 0; i < c->nsans; i++) {
        free(c->sans[i]);
    }
    free(c->der);
    free(c);
}

const char *tern_certificate_subject(const tern_certificate *c)
{
    return c->subject;
}

const char *tern_certificate_issuer(const tern_certificate *c)
{
    return c->issuer;
}

const char *tern_certificate_serial(const tern_certificate *c)
{
    return c->serial;
}

int64_t tern_certificate_not_before(const tern_certificate *c)
{
    return c->not_before;
}

int64_t tern_certificate_not_after(const tern_certificate *c)
{
    return c->not_after;
}

size_t tern_certificate_san_count(const tern_certificate *c)
{
    return c->nsans;
}

const char *tern_certificate_san(const tern_certificate *c, size_t i)
{
    return i < c->nsans ? c->sans[i] : NULL;
}

bool tern_certificate_is_self_signed(const tern_certificate *c)
{
    return strcmp(c->subject, c->issuer) == 0;
}

tern_buf tern_certificate_der(const tern_certificate *c)
{
    tern_buf b = {c->der, c->der_len};
    return b;
}

ssize_t tern_certificate_to_pem(const tern_certificate *c, char *buf, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    static const char head[] = "-----BEGIN CERTIFICATE-----\n";
    static const char tail[] = "-----END CERTIFICATE-----\n";
    size_t off = 0, col = 0;

#define PUT(ch)                                                                                 \
    do {                                                                                       \
        if (off + 1 < len) {                                                                   \
            buf[off] = (ch);                                                                   \
        }                                                                                      \
        off++;                                                                                 \
    } while (0)
    for (const char *p = head; *p != '\0'; p++) {
        PUT(*p);
    }
    for (size_t i = 0; i < c->der_len; i += 3) {
        uint32_t v = (uint32_t)c->der[i] << 16;
        size_t n = c->der_len - i;
        if (n > 1) {
            v |= (uint32_t)c->der[i + 1] << 8;
        }
        if (n > 2) {
            v |= c->der[i + 2];
        }
        PUT(b64[(v >> 18) & 63]);
        PUT(b64[(v >> 12) & 63]);
        PUT(n > 1 ? b64[(v >> 6) & 63] : '=');
        PUT(n > 2 ? b64[v & 63] : '=');
        if ((col += 4) == 64) {
            PUT('\n');
            col = 0;
        }
    }
    if (col != 0) {
        PUT('\n');
    }
    for (const char *p = tail; *p != '\0'; p++) {
        PUT(*p);
    }
#undef PUT
    if (len > 0) {
        buf[off < len ? off : len - 1] = '\0';
    }
    return (ssize_t)off;
}

ssize_t tern_certificate_digest(const tern_certificate *c, enum tern_digest alg, uint8_t *out,
                                size_t len)
{
    if (alg != TERN_DIGEST_SHA256) {
        return TERN_EINVAL;
    }
    if (len < WC_SHA256_DIGEST_SIZE) {
        return TERN_ENOBUFS;
    }
    if (wc_Sha256Hash(c->der, (word32)c->der_len, out) != 0) {
        return TERN_E_INTERNAL;
    }
    return WC_SHA256_DIGEST_SIZE;
}

bool tern_certificate_digest_equals(const tern_certificate *c, enum tern_digest alg,
                                    const uint8_t *digest, size_t len)
{
    uint8_t mine[WC_SHA256_DIGEST_SIZE];
    ssize_t n = tern_certificate_digest(c, alg, mine, sizeof(mine));
    if (n < 0 || (size_t)n != len || digest == NULL) {
        return false;
    }
    uint8_t diff = 0;
    for (size_t i = 0; i < len; i++) {
        diff |= (uint8_t)(mine[i] ^ digest[i]);
    }
    return diff == 0;
}

bool tern_certificate_equals(const tern_certificate *a, const tern_certificate *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    return a->der_len == b->der_len && memcmp(a->der, b->der, a->der_len) == 0;
}

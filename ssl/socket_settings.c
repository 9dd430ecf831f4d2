/* SPDX-License-Identifier: MIT */
/*
 * A TLS socket's settings as QSslSocket shows them: the peer verify mode, depth and name (the
 * socket's own, set without swapping its whole configuration, else its configuration's), the
 * protocol range, the local certificate chain and private key, the configuration in effect;
 * the process default configuration (QSslConfiguration::setDefaultConfiguration); the local
 * certificate set from tern_certificate objects.
 *
 * The socket functions are @thread owner, like the socket. The default configuration is
 * published under a mutex: a reader takes its reference while holding it, so a concurrent
 * replacement can never free the configuration between the load and the reference.
 */
#include "ssl_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the process default configuration ----------------------------------------------------- */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static tern_ssl_config *default_cfg; /* one reference held here; under default_lock */

int tern_ssl_config_set_default(tern_ssl_config *cfg)
{
    if (cfg != NULL) {
        tern__ssl_config_freeze(cfg); /* shared read-only from now on */
        tern_ssl_config_ref(cfg);
    }
    pthread_mutex_lock(&default_lock);
    tern_ssl_config *old = default_cfg;
    default_cfg = cfg;
    pthread_mutex_unlock(&default_lock);
    tern_ssl_config_unref(old); /* outside the lock: the last unref frees */
    return 0;
}

tern_ssl_config *tern__ssl_config_default_ref(void)
{
    pthread_mutex_lock(&default_lock);
    tern_ssl_config *cfg = default_cfg != NULL ? tern_ssl_config_ref(default_cfg) : NULL;
    pthread_mutex_unlock(&default_lock);
    return cfg;
}

tern_ssl_config *tern_ssl_config_default(void)
{
    return tern__ssl_config_default_ref();
}

/* ---- the local certificate from objects ------------------------------------------------------ */

/* The PEM of @n certificates, in order, into a new buffer (*@len bytes, NUL-terminated):
 * wolfSSL takes a chain, or several CA certificates, as one PEM buffer. 0, TERN_EINVAL (no
 * certificate, a NULL one), TERN_ENOMEM. */
static int pem_of(tern_certificate *const *certs, size_t n, char **out, size_t *len)
{
    if (certs == NULL || n == 0) {
        return TERN_EINVAL;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ssize_t one = certs[i] != NULL ? tern_certificate_to_pem(certs[i], NULL, 0) : -1;
        if (one <= 0) {
            return TERN_EINVAL;
        }
        total += (size_t)one;
    }
    char *pem = malloc(total + 1);
    if (pem == NULL) {
        return TERN_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        off += (size_t)tern_certificate_to_pem(certs[i], pem + off, total + 1 - off);
    }
    *out = pem;
    *len = off;
    return 0;
}

int tern_ssl_config_set_local_certificate_chain(tern_ssl_config *cfg,
                                                tern_certificate *const *certs, size_t n)
{
    char *pem;
    size_t len;
    int rc = cfg != NULL ? pem_of(certs, n, &pem, &len) : TERN_EINVAL;
    if (rc < 0) {
        return rc;
    }
    rc = tern_ssl_config_set_local_certificate(cfg, pem, len, TERN_ENCODING_PEM);
    free(pem);
    return rc;
}

int tern_ssl_config_add_ca_certificate_list(tern_ssl_config *cfg, tern_certificate *const *certs,
                                            size_t n)
{
    char *pem;
    size_t len;
    int rc = cfg != NULL ? pem_of(certs, n, &pem, &len) : TERN_EINVAL;
    if (rc < 0) {
        return rc;
    }
    rc = tern_ssl_config_add_ca_certificates(cfg, pem, len, TERN_ENCODING_PEM);
    free(pem);
    return rc;
}

/* ---- the socket's settings -------------------------------------------------------------------- */

int tern_socket_set_peer_verify_mode(tern_socket *s, enum tern_verify_mode mode)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || mode < TERN_VERIFY_AUTO || mode > TERN_VERIFY_VERIFY_PEER) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL) {
        return TERN_ENOMEM;
    }
    tls->verify_mode = mode;
    tls->has_verify_mode = true;
    return 0;
}

int tern_socket_set_peer_verify_depth(tern_socket *s, int depth)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || depth < 0 || depth > 100) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_get(s);
    if (tls == NULL) {
        return TERN_ENOMEM;
    }
    tls->verify_depth = depth;
    tls->has_verify_depth = true;
    return 0;
}

/* A new reference to the configuration @s uses: its own, else its server's (an accepted
 * socket), else the process default. NULL: none. */
static tern_ssl_config *config_ref(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    tern__object *o = tls != NULL && tls->cfg != NULL ? tls->cfg : tern__socket_server_config(s);
    if (o != NULL) {
        tern__object_ref(o);
        return (tern_ssl_config *)o;
    }
    return tern__ssl_config_default_ref();
}

/* As config_ref, for the local certificate and key: on a server whose client asked for
 * another name by SNI, the configuration of that name (as tern_socket_local_certificate). */
static tern_ssl_config *local_ref(const tern_socket *s)
{
    const tern__tls *tls = tern__tls_of(s);
    if (tern__tls_started(tls) && tls->sni_cfg != NULL) {
        return tern_ssl_config_ref((tern_ssl_config *)tls->sni_cfg);
    }
    return config_ref(s);
}

tern_ssl_config *tern_socket_ssl_config(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    return s != NULL ? config_ref(s) : NULL;
}

enum tern_verify_mode tern_socket_peer_verify_mode(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls != NULL && tls->has_verify_mode) {
        return tls->verify_mode;
    }
    tern_ssl_config *cfg = s != NULL ? config_ref(s) : NULL;
    enum tern_verify_mode mode = cfg != NULL ? cfg->verify_mode : TERN_VERIFY_AUTO;
    tern_ssl_config_unref(cfg);
    return mode;
}

int tern_socket_peer_verify_depth(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls != NULL && tls->has_verify_depth) {
        return tls->verify_depth;
    }
    tern_ssl_config *cfg = s != NULL ? config_ref(s) : NULL;
    int depth = cfg != NULL ? cfg->verify_depth : 9; /* a new configuration's */
    tern_ssl_config_unref(cfg);
    return depth;
}

const char *tern_socket_peer_verify_name(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tls->peer_name != NULL ? tls->peer_name : "";
}

static enum tern_ssl_protocol protocol_of(int wolf_version)
{
    switch (wolf_version) {
    case TLS1_2_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_2;
    case TLS1_3_VERSION:
        return TERN_SSL_PROTOCOL_TLS1_3;
    default:
        return TERN_SSL_PROTOCOL_UNKNOWN;
    }
}

int tern_socket_protocol(const tern_socket *s, enum tern_ssl_protocol *min,
                         enum tern_ssl_protocol *max)
{
    TERN_ASSERT_OWNER(s);
    tern_ssl_config *cfg = s != NULL ? config_ref(s) : NULL;
    enum tern_ssl_protocol lo = TERN_SSL_PROTOCOL_UNKNOWN, hi = TERN_SSL_PROTOCOL_UNKNOWN;
    if (cfg != NULL) {
        lo = protocol_of(cfg->min_version);
        hi = protocol_of(cfg->max_version);
        tern_ssl_config_unref(cfg);
    }
    if (min != NULL) {
        *min = lo;
    }
    if (max != NULL) {
        *max = hi;
    }
    return cfg != NULL ? 0 : TERN_EINVAL;
}

ssize_t tern_socket_private_key(const tern_socket *s, void *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    tern_ssl_config *cfg = s != NULL ? local_ref(s) : NULL;
    ssize_t rc = 0;
    if (cfg != NULL && cfg->key_der != NULL) {
        rc = (ssize_t)cfg->key_der_len;
        if (buf != NULL && len < cfg->key_der_len) {
            rc = TERN_ENOBUFS;
        } else if (buf != NULL) {
            memcpy(buf, cfg->key_der, cfg->key_der_len);
        }
    }
    tern_ssl_config_unref(cfg);
    return rc;
}

size_t tern_socket_local_certificate_chain(const tern_socket *s, tern_certificate **out,
                                           size_t max)
{
    TERN_ASSERT_OWNER(s);
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    tern_ssl_config *cfg = s != NULL ? local_ref(s) : NULL;
    size_t n = 0;

    if (cfg == NULL || cfg->cert_buf == NULL) {
        tern_ssl_config_unref(cfg);
        return 0;
    }
    if (cfg->cert_fmt != WOLFSSL_FILETYPE_PEM) { /* DER: the leaf alone */
        if (out != NULL && max > 0) {
            out[0] = tern_certificate_new(cfg->cert_buf, cfg->cert_len, TERN_ENCODING_DER);
        }
        tern_ssl_config_unref(cfg);
        return 1;
    }
    /* the PEM as loaded (frozen: read-only), one certificate per BEGIN..END block */
    const unsigned char *p = cfg->cert_buf, *stop = cfg->cert_buf + cfg->cert_len;
    while ((p = memmem(p, (size_t)(stop - p), begin, sizeof(begin) - 1)) != NULL) {
        const unsigned char *e = memmem(p, (size_t)(stop - p), end, sizeof(end) - 1);
        if (e == NULL) {
            break;
        }
        e += sizeof(end) - 1;
        if (out != NULL && n < max) {
            out[n] = tern_certificate_new(p, (size_t)(e - p), TERN_ENCODING_PEM);
        }
        n++;
        p = e;
    }
    tern_ssl_config_unref(cfg);
    return n;
}

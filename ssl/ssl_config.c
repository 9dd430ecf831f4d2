/* SPDX-License-Identifier: MIT */
/*
 * tern_ssl_config: settings and the two wolfSSL contexts (server, client) built from them.
 *
 * Set up on one thread; frozen at first use (a server took it, or a socket started
 * encryption with it), then shared read-only by every reactor: wolfSSL contexts are safe to
 * share for creating connections. Loaders read files themselves so errors name the file.
 */
#include "ssl_internal.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <sys/stat.h>

#define DEFAULT_CIPHERS                                                                        \
    "TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:"         \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define MAX_FILE (4 * 1024 * 1024)

void tern__tls_ctx_init(WOLFSSL_CTX *ctx); /* socket_tls.c: I/O and verify callbacks */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void library_init(void)
{
    wolfSSL_Init();
#ifdef TERN_WOLFSSL_PATCHED
    /* one RNG per reactor instead of one per connection (a health test, a lock and a
     * getrandom each): see scripts/wolfssl-patches/0300-rng-provider.patch */
    wolfSSL_SetRngProvider(tern__tls_reactor_rng);
#endif
}

static void seterr(tern_ssl_config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void seterr(tern_ssl_config *cfg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cfg->errstr, sizeof(cfg->errstr), fmt, ap);
    va_end(ap);
}

const char *tern_ssl_default_ciphers(void)
{
    return DEFAULT_CIPHERS;
}

static int on_server_name(WOLFSSL *ssl, int *alert, void *arg);

static void destroy(tern__object *o)
{
    tern_ssl_config *cfg = (tern_ssl_config *)o;
    for (size_t i = 0; i < cfg->nsni; i++) {
        free(cfg->sni[i].name);
        tern_ssl_config_unref(cfg->sni[i].cfg);
    }
    free(cfg->sni);
    free(cfg->alpn);
    free(cfg->psk_hint);
    tern__client_sessions_free(cfg->client_sessions);
    free(cfg->cert_buf);
    tern_certificate_unref(cfg->local_cert);
    free(cfg->ocsp_response);
    if (cfg->key_der != NULL) {
        memset(cfg->key_der, 0, cfg->key_der_len);
        free(cfg->key_der);
    }
    wolfSSL_CTX_free(cfg->server_ctx);
    wolfSSL_CTX_free(cfg->client_ctx);
    pthread_mutex_destroy(&cfg->cache_lock);
    memset(cfg, 0, sizeof(*cfg));
    free(cfg);
}

tern_ssl_config *tern_ssl_config_new(void)
{
    pthread_once(&init_once, library_init);
    tern_ssl_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        return NULL;
    }
    atomic_init(&cfg->base.refs, 1);
    pthread_mutex_init(&cfg->cache_lock, NULL);
    cfg->base.destroy = destroy;
    cfg->verify_mode = TERN_VERIFY_AUTO;
    cfg->verify_depth = 9;
    cfg->handshake_timeout_ms = 10000;
    cfg->psk_lookup_timeout_ms = 5000;
    cfg->psk_max_pending = 1024;
    cfg->max_version = TLS1_3_VERSION;
    cfg->min_version = TLS1_2_VERSION;
    cfg->ciphers_have_tls13 = true;
    cfg->server_ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    cfg->client_ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (cfg->server_ctx == NULL || cfg->client_ctx == NULL) {
        destroy(&cfg->base);
        return NULL;
    }
    /* tickets resume without server state; wolfSSL's session-id cache is process-wide and
     * locked: off on servers unless asked for (tern_ssl_config_set_session_cache), decided
     * at the first freeze (cache_lock), since wolfSSL can turn it off but never on again */
#ifdef WOLFSSL_EARLY_DATA
    /* tern accepts no 0-RTT data, so its tickets offer none (RFC 8446 4.6.1), whatever a
     * wolfSSL built with early data would default to (5.7 put 4096 in every ticket) */
    wolfSSL_CTX_set_max_early_data(cfg->server_ctx, 0);
#endif
    wolfSSL_CTX_UseSessionTicket(cfg->client_ctx);
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_SetMinVersion(ctxs[i], WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_cipher_list(ctxs[i], DEFAULT_CIPHERS) != WOLFSSL_SUCCESS) {
            destroy(&cfg->base);
            return NULL;
        }
        tern__tls_ctx_init(ctxs[i]);
    }
    tern__psk_ciphers(cfg, DEFAULT_CIPHERS);
    /* tern's own group lists, not the library's (which changes between releases) */
    if (tern__groups_set_defaults(cfg) < 0) {
        destroy(&cfg->base);
        return NULL;
    }
    /* always: it makes wolfSSL keep the client's SNI name (tern_socket_sni_name) */
    wolfSSL_CTX_set_servername_callback(cfg->server_ctx, on_server_name);
    wolfSSL_CTX_set_servername_arg(cfg->server_ctx, cfg);
    return cfg;
}

tern_ssl_config *tern_ssl_config_ref(tern_ssl_config *cfg)
{
    tern__object_ref(&cfg->base);
    return cfg;
}

void tern_ssl_config_unref(tern_ssl_config *cfg)
{
    if (cfg != NULL) {
        tern__object_unref(&cfg->base);
    }
}

const char *tern_ssl_config_error_string(const tern_ssl_config *cfg)
{
    return cfg != NULL ? cfg->errstr : "";
}

static int check_setup(tern_ssl_config *cfg)
{
    if (cfg == NULL) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        seterr(cfg, "the configuration is in use (frozen): build a new one to change it");
        return TERN_EBUSY;
    }
    cfg->errstr[0] = '\0';
    return 0;
}

void tern__ssl_config_freeze(tern_ssl_config *cfg)
{
    /* Called for every connection: once settled, a load only (no store to the shared cache
     * line from every reactor). The first call decides wolfSSL's session cache, before the
     * configuration's first connection (a server sets `frozen` in tern_server_new, but its
     * first connections may start on several reactors at once). */
    if (atomic_load_explicit(&cfg->cache_mode_set, memory_order_acquire)) {
        return;
    }
    pthread_mutex_lock(&cfg->cache_lock);
    if (!atomic_load_explicit(&cfg->cache_mode_set, memory_order_relaxed)) {
        atomic_store(&cfg->base.frozen, true);
        if (!cfg->session_cache) {
            wolfSSL_CTX_set_session_cache_mode(cfg->server_ctx, WOLFSSL_SESS_CACHE_OFF);
        }
        atomic_store_explicit(&cfg->cache_mode_set, true, memory_order_release);
    }
    pthread_mutex_unlock(&cfg->cache_lock);
}

/* ---- protocols and ciphers ----------------------------------------------------------------- */

static int wolf_version(enum tern_ssl_protocol p)
{
    switch (p) {
    case TERN_SSL_PROTOCOL_TLS1_2:
        return TLS1_2_VERSION;
    case TERN_SSL_PROTOCOL_TLS1_3:
        return TLS1_3_VERSION;
    default:
        return -1;
    }
}

int tern_ssl_config_set_protocol_range(tern_ssl_config *cfg, enum tern_ssl_protocol min,
                                       enum tern_ssl_protocol max)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    int lo = wolf_version(min), hi = wolf_version(max);
    if (lo < 0 || hi < 0 || lo > hi) {
        seterr(cfg, "protocol range 0x%04x..0x%04x: only TLS 1.2 (0x0303) and TLS 1.3 (0x0304), "
                    "min <= max",
               (unsigned)min, (unsigned)max);
        return TERN_EINVAL;
    }
    if (hi == TLS1_3_VERSION && !cfg->ciphers_have_tls13) {
        seterr(cfg, "protocol range: TLS 1.3 allowed but the cipher list has no TLS 1.3 suite");
        return TERN_EINVAL;
    }
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_set_min_proto_version(ctxs[i], lo) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_max_proto_version(ctxs[i], hi) != WOLFSSL_SUCCESS) {
            seterr(cfg, "protocol range: refused by the TLS library");
            return TERN_EINVAL;
        }
    }
    cfg->max_version = hi;
    cfg->min_version = lo;
    return 0;
}

/* Suites that must never be negotiated, whatever the caller asks (FEATURES.md: AEAD only). */
static bool weak_suite(const char *name)
{
    static const char *const bad[] = {"RC4", "DES", "NULL", "ADH", "AECDH", "ANON", "EXP",
                                      "MD5", "IDEA", "SEED", "CAMELLIA"};
    char up[128];
    size_t n = strlen(name);

    if (n >= sizeof(up)) {
        return true;
    }
    for (size_t i = 0; i <= n; i++) {
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strstr(up, bad[i]) != NULL) {
            return true;
        }
    }
    /* integrity-only TLS 1.3 suites (RFC 9150) */
    if (strcmp(up, "TLS13-SHA256-SHA256") == 0 || strcmp(up, "TLS13-SHA384-SHA384") == 0 ||
        strcmp(up, "TLS_SHA256_SHA256") == 0 || strcmp(up, "TLS_SHA384_SHA384") == 0) {
        return true;
    }
    /* the one CBC suite constrained devices use with PSK (the list): allowed when
     * named, never in a default list; other CBC + HMAC suites are refused */
    if (strcmp(up, "PSK-AES128-CBC-SHA256") == 0) {
        return false;
    }
    /* TLS 1.2 suites without AEAD: CBC with HMAC */
    return strstr(up, "CBC") != NULL || (strncmp(up, "TLS13", 5) != 0 &&
                                         strncmp(up, "TLS_", 4) != 0 && strstr(up, "GCM") == NULL &&
                                         strstr(up, "CHACHA20") == NULL && strstr(up, "CCM") == NULL);
}

int tern_ssl_config_set_groups(tern_ssl_config *cfg, const char *list)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    int ids[16];
    int n = tern__groups_parse(list, ids, (int)(sizeof(ids) / sizeof(ids[0])), cfg->errstr,
                               sizeof(cfg->errstr));
    if (n < 0) {
        return n;
    }
    if (wolfSSL_CTX_set_groups(cfg->server_ctx, ids, n) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_groups(cfg->client_ctx, ids, n) != WOLFSSL_SUCCESS) {
        seterr(cfg, "groups: the TLS library refused \"%s\"", list);
        return TERN_E_UNSUPPORTED;
    }
    tern__groups_key_shares(cfg, ids, n);
    return 0;
}

int tern_ssl_config_set_ciphers(tern_ssl_config *cfg, const char *list)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (list == NULL || list[0] == '\0') {
        seterr(cfg, "ciphers: empty list");
        return TERN_EINVAL;
    }
    char *copy = strdup(list);
    WOLFSSL_CTX *probe = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (copy == NULL || probe == NULL) {
        free(copy);
        wolfSSL_CTX_free(probe);
        return TERN_ENOMEM;
    }
    rc = 0;
    bool has13 = false;
    char *save = NULL;
    for (char *name = strtok_r(copy, ":", &save); name != NULL; name = strtok_r(NULL, ":", &save)) {
        if (wolfSSL_CTX_set_cipher_list(probe, name) != WOLFSSL_SUCCESS) {
            seterr(cfg, "ciphers: unknown or unavailable suite %s", name);
            rc = TERN_EINVAL;
            break;
        }
        if (weak_suite(name)) {
            seterr(cfg, "ciphers: %s is weak (not AEAD, or without authentication) and is refused",
                   name);
            rc = TERN_EINVAL;
            break;
        }
        has13 |= strncmp(name, "TLS13", 5) == 0 || strncmp(name, "TLS_", 4) == 0;
    }
    if (rc == 0 && !has13 && cfg->max_version == TLS1_3_VERSION) {
        seterr(cfg, "ciphers: the list has no TLS 1.3 suite while TLS 1.3 is allowed; add one "
                    "(e.g. TLS13-AES128-GCM-SHA256) or limit the protocol range to TLS 1.2");
        rc = TERN_EINVAL;
    }
    free(copy);
    wolfSSL_CTX_free(probe);
    if (rc < 0) {
        return rc;
    }
    if (wolfSSL_CTX_set_cipher_list(cfg->server_ctx, list) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(cfg->client_ctx, list) != WOLFSSL_SUCCESS) {
        seterr(cfg, "ciphers: the TLS library refused \"%s\"", list);
        return TERN_EINVAL;
    }
    cfg->ciphers_have_tls13 = has13;
    tern__psk_ciphers(cfg, list);
    return 0;
}

/* ---- certificates and keys ----------------------------------------------------------------- */

static int read_file(tern_ssl_config *cfg, const char *what, const char *path, unsigned char **out,
                     size_t *len)
{
    if (path == NULL) {
        seterr(cfg, "%s: no file name", what);
        return TERN_EINVAL;
    }
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL) {
        seterr(cfg, "%s %s: %s", what, path, strerror(errno));
        return TERN_EINVAL;
    }
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        seterr(cfg, "%s %s: %s", what, path,
               S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        fclose(f);
        return TERN_EINVAL;
    }
    unsigned char *buf = malloc(MAX_FILE);
    size_t n = buf != NULL ? fread(buf, 1, MAX_FILE, f) : 0;
    bool too_big = buf != NULL && n == MAX_FILE && fgetc(f) != EOF;
    bool failed = buf == NULL || ferror(f);
    fclose(f);
    if (failed || too_big || n == 0) {
        seterr(cfg, "%s %s: %s", what, path,
               buf == NULL ? "out of memory" : too_big ? "larger than 4 MiB" : n == 0 ? "empty file" : "read error");
        free(buf);
        return TERN_EINVAL;
    }
    *out = buf;
    *len = n;
    return 0;
}

static int wolf_format(enum tern_encoding enc)
{
    return enc == TERN_ENCODING_DER ? WOLFSSL_FILETYPE_ASN1 : WOLFSSL_FILETYPE_PEM;
}

static int load_certificate(tern_ssl_config *cfg, const char *name, const void *data, size_t len,
                            enum tern_encoding enc)
{
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        int r = enc == TERN_ENCODING_PEM
                    ? wolfSSL_CTX_use_certificate_chain_buffer_format(ctxs[i], data, (long)len,
                                                                     WOLFSSL_FILETYPE_PEM)
                    : wolfSSL_CTX_use_certificate_buffer(ctxs[i], data, (long)len,
                                                         WOLFSSL_FILETYPE_ASN1);
        if (r != WOLFSSL_SUCCESS) {
            char detail[96];
            tern__ssl_map_error(r, detail, sizeof(detail));
            seterr(cfg, "certificate %s: not a %s certificate (%s)", name,
                   enc == TERN_ENCODING_PEM ? "PEM" : "DER", detail);
            return TERN_EINVAL;
        }
    }
    unsigned char *copy = malloc(len);
    if (copy == NULL) {
        return TERN_ENOMEM;
    }
    memcpy(copy, data, len);
    free(cfg->cert_buf);
    cfg->cert_buf = copy;
    cfg->cert_len = len;
    tern_certificate_unref(cfg->local_cert);
    cfg->local_cert = tern_certificate_new(data, len, enc);
    cfg->cert_fmt = wolf_format(enc);
    cfg->has_cert = true;
    return 0;
}

int tern_ssl_config_set_local_certificate(tern_ssl_config *cfg, const void *data, size_t len,
                                          enum tern_encoding enc)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (data == NULL || len == 0) {
        seterr(cfg, "certificate: empty");
        return TERN_EINVAL;
    }
    return load_certificate(cfg, "(memory)", data, len, enc);
}

int tern_ssl_config_set_local_certificate_file(tern_ssl_config *cfg, const char *path,
                                               enum tern_encoding enc)
{
    unsigned char *buf;
    size_t len;
    int rc = check_setup(cfg);
    if (rc < 0 || (rc = read_file(cfg, "certificate", path, &buf, &len)) < 0) {
        return rc;
    }
    rc = load_certificate(cfg, path, buf, len, enc);
    free(buf);
    return rc;
}

/* The number (from 1) of the first PEM certificate of @p pem that does not parse, or 0 when
 * all do: wolfSSL stores a chain's certificates unparsed, so a broken one would only show
 * when a client gets it. */
static size_t first_bad_certificate(const unsigned char *pem, size_t len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    const unsigned char *p = pem, *stop = pem + len;
    size_t n = 0;

    while ((p = memmem(p, (size_t)(stop - p), begin, sizeof(begin) - 1)) != NULL) {
        n++;
        const unsigned char *e = memmem(p, (size_t)(stop - p), end, sizeof(end) - 1);
        if (e == NULL) {
            return n;
        }
        e += sizeof(end) - 1;
        tern_certificate *c = tern_certificate_new(p, (size_t)(e - p), TERN_ENCODING_PEM);
        if (c == NULL) {
            return n;
        }
        tern_certificate_unref(c);
        p = e;
    }
    return 0;
}

/* The intermediates are appended to the leaf's PEM and the whole loaded again: wolfSSL takes
 * a chain only as one PEM buffer, the leaf first. */
int tern_ssl_config_add_local_certificate_chain_file(tern_ssl_config *cfg, const char *path)
{
    unsigned char *chain;
    size_t chain_len;
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (!cfg->has_cert || cfg->cert_buf == NULL) {
        seterr(cfg, "certificate chain %s: no local certificate to append it to (set it first)",
               path != NULL ? path : "(null)");
        return TERN_EINVAL;
    }
    if (cfg->cert_fmt != WOLFSSL_FILETYPE_PEM) {
        seterr(cfg, "certificate chain %s: the local certificate is DER; a chain needs it in PEM",
               path != NULL ? path : "(null)");
        return TERN_EINVAL;
    }
    if ((rc = read_file(cfg, "certificate chain", path, &chain, &chain_len)) < 0) {
        return rc;
    }
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    if (memmem(chain, chain_len, begin, sizeof(begin) - 1) == NULL) {
        seterr(cfg, "certificate chain %s: no PEM certificate in it (expected %s)", path, begin);
        free(chain);
        return TERN_EINVAL;
    }
    size_t bad = first_bad_certificate(chain, chain_len);
    if (bad > 0) {
        seterr(cfg, "certificate chain %s: certificate %zu in it is not a valid certificate",
               path, bad);
        free(chain);
        return TERN_EINVAL;
    }
    size_t len = cfg->cert_len;
    bool newline = len > 0 && cfg->cert_buf[len - 1] != '\n';
    unsigned char *both = malloc(len + newline + chain_len);
    if (both == NULL) {
        free(chain);
        seterr(cfg, "certificate chain %s: out of memory", path);
        return TERN_ENOMEM;
    }
    memcpy(both, cfg->cert_buf, len);
    if (newline) {
        both[len++] = '\n';
    }
    memcpy(both + len, chain, chain_len);
    len += chain_len;
    free(chain);
    rc = load_certificate(cfg, path, both, len, TERN_ENCODING_PEM);
    free(both);
    return rc;
}

static int passwd_cb(char *buf, int size, int rwflag, void *user)
{
    const char *pass = user;
    if (pass == NULL) {
        return -1;
    }
    size_t n = strlen(pass);
    if (n >= (size_t)size) {
        return -1;
    }
    memcpy(buf, pass, n + 1);
    return (int)n;
}

/* Whether PEM @p data holds an encrypted key: PKCS#8 (RFC 5958 "ENCRYPTED PRIVATE KEY") or
 * OpenSSL's traditional format (RFC 1421 "Proc-Type: 4,ENCRYPTED"). */
static bool pem_key_is_encrypted(const void *data, size_t len)
{
    static const char pkcs8[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    static const char traditional[] = "Proc-Type: 4,ENCRYPTED";
    return memmem(data, len, pkcs8, sizeof(pkcs8) - 1) != NULL ||
           memmem(data, len, traditional, sizeof(traditional) - 1) != NULL;
}

static int load_key(tern_ssl_config *cfg, const char *name, const void *data, size_t len,
                    enum tern_encoding enc, const char *passphrase)
{
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        wolfSSL_CTX_set_default_passwd_cb(ctxs[i], passwd_cb);
        wolfSSL_CTX_set_default_passwd_cb_userdata(ctxs[i], (void *)passphrase);
        int r = wolfSSL_CTX_use_PrivateKey_buffer(ctxs[i], data, (long)len, wolf_format(enc));
        wolfSSL_CTX_set_default_passwd_cb(ctxs[i], NULL);
        wolfSSL_CTX_set_default_passwd_cb_userdata(ctxs[i], NULL);
        if (r != WOLFSSL_SUCCESS && passphrase == NULL && enc == TERN_ENCODING_PEM &&
            pem_key_is_encrypted(data, len)) {
            seterr(cfg, "private key %s: the key is encrypted: give its passphrase", name);
            return TERN_EACCES;
        }
        if (r != WOLFSSL_SUCCESS) {
            seterr(cfg, "private key %s: %s", name,
                   passphrase != NULL ? "wrong passphrase, or not an RSA/EC key"
                                      : "not an RSA/EC key (encrypted keys need a passphrase)");
            return TERN_EINVAL;
        }
        if (cfg->has_cert && wolfSSL_CTX_check_private_key(ctxs[i]) != WOLFSSL_SUCCESS) {
            seterr(cfg, "private key %s: does not match the certificate", name);
            return TERN_EINVAL;
        }
    }
    /* keep the key as plain DER for per-connection use (SNI): decrypted once, here */
    unsigned char *der = malloc(len + 1);
    int der_len = (int)len;
    if (der == NULL) {
        return TERN_ENOMEM;
    }
    if (enc == TERN_ENCODING_PEM) {
        der_len = wc_KeyPemToDer(data, (int)len, der, (int)len, passphrase);
    } else {
        memcpy(der, data, len);
    }
    if (der_len <= 0) {
        free(der);
        seterr(cfg, "private key %s: cannot convert to DER", name);
        return TERN_EINVAL;
    }
    if (cfg->key_der != NULL) {
        memset(cfg->key_der, 0, cfg->key_der_len);
        free(cfg->key_der);
    }
    cfg->key_der = der;
    cfg->key_der_len = (size_t)der_len;
    cfg->has_key = true;
    return 0;
}

int tern_ssl_config_set_private_key(tern_ssl_config *cfg, const void *data, size_t len,
                                    enum tern_encoding enc, const char *passphrase)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (data == NULL || len == 0) {
        seterr(cfg, "private key: empty");
        return TERN_EINVAL;
    }
    return load_key(cfg, "(memory)", data, len, enc, passphrase);
}

int tern_ssl_config_set_private_key_file(tern_ssl_config *cfg, const char *path,
                                         enum tern_encoding enc, const char *passphrase)
{
    unsigned char *buf;
    size_t len;
    int rc = check_setup(cfg);
    if (rc < 0 || (rc = read_file(cfg, "private key", path, &buf, &len)) < 0) {
        return rc;
    }
    rc = load_key(cfg, path, buf, len, enc, passphrase);
    memset(buf, 0, len); /* no key bytes left in freed memory */
    free(buf);
    return rc;
}

static int load_ca(tern_ssl_config *cfg, const char *name, const void *data, size_t len,
                   enum tern_encoding enc)
{
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_load_verify_buffer(ctxs[i], data, (long)len, wolf_format(enc)) !=
            WOLFSSL_SUCCESS) {
            seterr(cfg, "CA certificates %s: no usable %s certificate", name,
                   enc == TERN_ENCODING_PEM ? "PEM" : "DER");
            return TERN_EINVAL;
        }
    }
    cfg->has_ca = true;
    return 0;
}

int tern_ssl_config_add_ca_certificates(tern_ssl_config *cfg, const void *data, size_t len,
                                        enum tern_encoding enc)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (data == NULL || len == 0) {
        seterr(cfg, "CA certificates: empty");
        return TERN_EINVAL;
    }
    return load_ca(cfg, "(memory)", data, len, enc);
}

int tern_ssl_config_add_ca_certificates_file(tern_ssl_config *cfg, const char *path,
                                             enum tern_encoding enc)
{
    unsigned char *buf;
    size_t len;
    int rc = check_setup(cfg);
    if (rc < 0 || (rc = read_file(cfg, "CA certificates", path, &buf, &len)) < 0) {
        return rc;
    }
    rc = load_ca(cfg, path, buf, len, enc);
    free(buf);
    return rc;
}

int tern_ssl_config_add_ca_certificates_dir(tern_ssl_config *cfg, const char *dir)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL) {
        seterr(cfg, "CA directory %s: %s", dir != NULL ? dir : "(null)", strerror(errno));
        return TERN_EINVAL;
    }
    closedir(d);
    /* wolfSSL reads every file of the directory; files that are not certificates are
     * skipped (WOLFSSL_LOAD_FLAG_IGNORE_ERR) */
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_load_verify_locations_ex(ctxs[i], NULL, dir,
                                                 WOLFSSL_LOAD_FLAG_IGNORE_ERR |
                                                     WOLFSSL_LOAD_FLAG_PEM_CA_ONLY) !=
            WOLFSSL_SUCCESS) {
            seterr(cfg, "CA directory %s: no usable PEM CA certificate", dir);
            return TERN_EINVAL;
        }
    }
    cfg->has_ca = true;
    return 0;
}

int tern_ssl_config_add_system_ca_certificates(tern_ssl_config *cfg)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (wolfSSL_CTX_load_system_CA_certs(cfg->server_ctx) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_load_system_CA_certs(cfg->client_ctx) != WOLFSSL_SUCCESS) {
        seterr(cfg, "system CA certificates: none found");
        return TERN_EINVAL;
    }
    cfg->has_ca = true;
    return 0;
}

/* ---- revocation lists -------------------------------------------------------------------------- */

/* wolfSSL checks the peer's certificate (the leaf) against its issuer's CRL once CRLs are on
 * (WOLFSSL_CRL_CHECKALL would want a CRL of every CA up to the root); it verifies a CRL's
 * signature when loading it, so the issuer must be trusted first. */
static int load_crl(tern_ssl_config *cfg, const char *name, const unsigned char *data, size_t len,
                    enum tern_encoding enc)
{
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    if (enc == TERN_ENCODING_PEM && (len < 24 || memmem(data, len, "-----BEGIN X509 CRL-----", 24) == NULL)) {
        seterr(cfg, "CRL %s: no PEM CRL in it (expected -----BEGIN X509 CRL-----)", name);
        return TERN_EINVAL;
    }
    for (int i = 0; i < 2; i++) {
        if (wolfSSL_CTX_EnableCRL(ctxs[i], 0) != WOLFSSL_SUCCESS) {
            seterr(cfg, "CRL %s: revocation lists are not in this build", name);
            return TERN_E_UNSUPPORTED;
        }
        int rc = wolfSSL_CTX_LoadCRLBuffer(ctxs[i], data, (long)len, wolf_format(enc));
        if (rc != WOLFSSL_SUCCESS) {
            seterr(cfg, "CRL %s: %s", name,
                   rc == ASN_CRL_NO_SIGNER_E
                       ? "its issuer is not trusted (add the CA certificates first)"
                       : rc == ASN_CRL_CONFIRM_E ? "its signature does not verify"
                                                 : "not a CRL the TLS library reads");
            return TERN_EINVAL;
        }
    }
    return 0;
}

int tern_ssl_config_add_crl(tern_ssl_config *cfg, const void *data, size_t len,
                            enum tern_encoding enc)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (data == NULL || len == 0) {
        seterr(cfg, "CRL: empty");
        return TERN_EINVAL;
    }
    return load_crl(cfg, "(memory)", data, len, enc);
}

int tern_ssl_config_add_crl_file(tern_ssl_config *cfg, const char *path, enum tern_encoding enc)
{
    unsigned char *buf;
    size_t len;
    int rc = check_setup(cfg);
    if (rc < 0 || (rc = read_file(cfg, "CRL", path, &buf, &len)) < 0) {
        return rc;
    }
    rc = load_crl(cfg, path, buf, len, enc);
    free(buf);
    return rc;
}

int tern_ssl_config_add_crl_dir(tern_ssl_config *cfg, const char *dir)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    DIR *d = dir != NULL ? opendir(dir) : NULL;
    if (d == NULL) {
        seterr(cfg, "CRL directory %s: %s", dir != NULL ? dir : "(null)", strerror(errno));
        return TERN_EINVAL;
    }
    int loaded = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d)) != NULL) {
        char path[4096];
        unsigned char *buf;
        size_t len;
        struct stat st;
        if (ent->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name) >= (int)sizeof(path) ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if ((rc = read_file(cfg, "CRL", path, &buf, &len)) < 0) {
            break;
        }
        /* files that hold no PEM CRL are skipped (a README, a CA certificate); a CRL that
         * does not load is an error naming it */
        if (memmem(buf, len, "-----BEGIN X509 CRL-----", 24) != NULL) {
            rc = load_crl(cfg, path, buf, len, TERN_ENCODING_PEM);
            loaded += rc == 0;
        }
        free(buf);
    }
    closedir(d);
    if (rc == 0 && loaded == 0) {
        seterr(cfg, "CRL directory %s: no PEM CRL in it", dir);
        rc = TERN_EINVAL;
    }
    return rc;
}

/* ---- verification ---------------------------------------------------------------------------- */

int tern_ssl_config_set_peer_verify_mode(tern_ssl_config *cfg, enum tern_verify_mode mode)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (mode < TERN_VERIFY_AUTO || mode > TERN_VERIFY_VERIFY_PEER) {
        seterr(cfg, "peer verify mode %d: unknown", (int)mode);
        return TERN_EINVAL;
    }
    cfg->verify_mode = mode;
    return 0;
}

int tern_ssl_config_set_peer_verify_depth(tern_ssl_config *cfg, int depth)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (depth < 0 || depth > 100) {
        seterr(cfg, "peer verify depth %d: out of range 0..100", depth);
        return TERN_EINVAL;
    }
    cfg->verify_depth = depth;
    wolfSSL_CTX_set_verify_depth(cfg->server_ctx, depth);
    wolfSSL_CTX_set_verify_depth(cfg->client_ctx, depth);
    return 0;
}

int tern_ssl_config_set_handshake_timeout(tern_ssl_config *cfg, uint32_t ms)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    cfg->handshake_timeout_ms = ms;
    return 0;
}

/* ---- ALPN and SNI ---------------------------------------------------------------------------- */

int tern_ssl_config_set_alpn(tern_ssl_config *cfg, const char *list)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (list == NULL || list[0] == '\0') {
        seterr(cfg, "alpn: empty list");
        return TERN_EINVAL;
    }
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n > 255) {
            seterr(cfg, "alpn \"%s\": each protocol name is 1..255 bytes", list);
            return TERN_EINVAL;
        }
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                seterr(cfg, "alpn \"%s\": empty protocol name", list);
                return TERN_EINVAL;
            }
        }
    }
    char *copy = strdup(list);
    if (copy == NULL) {
        return TERN_ENOMEM;
    }
    free(cfg->alpn);
    cfg->alpn = copy;
    return 0;
}

static int on_server_name(WOLFSSL *ssl, int *alert, void *arg)
{
    const tern_ssl_config *cfg = arg;
    void *data = NULL;
    unsigned short n = wolfSSL_SNI_GetRequest(ssl, WOLFSSL_SNI_HOST_NAME, &data);

    if (n == 0 || data == NULL) {
        return 0; /* SSL_TLSEXT_ERR_OK: the default certificate */
    }
    for (size_t i = 0; i < cfg->nsni; i++) {
        const tern_ssl_config *alt = cfg->sni[i].cfg;
        if (strlen(cfg->sni[i].name) == n && strncasecmp(cfg->sni[i].name, data, n) == 0) {
            if (wolfSSL_use_certificate_chain_buffer_format(ssl, alt->cert_buf, (long)alt->cert_len,
                                                            alt->cert_fmt) != WOLFSSL_SUCCESS ||
                wolfSSL_use_PrivateKey_buffer(ssl, alt->key_der, (long)alt->key_der_len,
                                              WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
                *alert = 80; /* internal_error */
                return 2;    /* SSL_TLSEXT_ERR_ALERT_FATAL */
            }
            tern__tls *tls = wolfSSL_GetIOReadCtx(ssl); /* NULL in the fuzz harness */
            if (tls != NULL) {
                tls->sni_cfg = alt;
            }
            break;
        }
    }
    return 0;
}

int tern_ssl_config_add_server_name(tern_ssl_config *cfg, const char *name,
                                    tern_ssl_config *for_name)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (name == NULL || name[0] == '\0' || for_name == NULL || for_name == cfg) {
        seterr(cfg, "server name: a name and another configuration are needed");
        return TERN_EINVAL;
    }
    if (!for_name->has_cert || !for_name->has_key) {
        seterr(cfg, "server name %s: its configuration has no certificate and key", name);
        return TERN_EINVAL;
    }
    struct tern__sni_entry *sni = realloc(cfg->sni, (cfg->nsni + 1) * sizeof(*sni));
    if (sni == NULL) {
        return TERN_ENOMEM;
    }
    cfg->sni = sni;
    if ((sni[cfg->nsni].name = strdup(name)) == NULL) {
        return TERN_ENOMEM;
    }
    sni[cfg->nsni].cfg = tern_ssl_config_ref(for_name);
    tern__ssl_config_freeze(for_name);
    cfg->nsni++;
    return 0;
}

/* ---- OCSP stapling ------------------------------------------------------------------------- */

/* wolfSSL asks its OCSP I/O callback to fetch the server certificate's status from the
 * responder named in the certificate; the configured response answers instead, from memory
 * (a copy: wolfSSL frees it with ocsp_free). wolfSSL verifies and caches it as usual. */
static int ocsp_io(void *ctx, const char *url, int url_len, unsigned char *req, int req_len,
                   unsigned char **resp)
{
    const tern_ssl_config *cfg = ctx;
    if (cfg->ocsp_response == NULL || (*resp = malloc(cfg->ocsp_response_len)) == NULL) {
        return -1;
    }
    memcpy(*resp, cfg->ocsp_response, cfg->ocsp_response_len);
    return (int)cfg->ocsp_response_len;
}

static void ocsp_free(void *ctx, unsigned char *resp)
{
    free(resp);
}

int tern_ssl_config_set_ocsp_response(tern_ssl_config *cfg, const void *der, size_t len)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (der == NULL || len == 0 || len > INT32_MAX) {
        seterr(cfg, "OCSP response: empty");
        return TERN_EINVAL;
    }
    unsigned char *copy = malloc(len);
    if (copy == NULL) {
        return TERN_ENOMEM;
    }
    memcpy(copy, der, len);
    if (wolfSSL_CTX_EnableOCSPStapling(cfg->server_ctx) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_SetOCSP_Cb(cfg->server_ctx, ocsp_io, ocsp_free, cfg) != WOLFSSL_SUCCESS) {
        free(copy);
        seterr(cfg, "OCSP response: stapling is not available in this build");
        return TERN_E_UNSUPPORTED;
    }
    free(cfg->ocsp_response);
    cfg->ocsp_response = copy;
    cfg->ocsp_response_len = len;
    return 0;
}

int tern_ssl_config_set_ocsp_response_file(tern_ssl_config *cfg, const char *path)
{
    unsigned char *buf;
    size_t len;
    int rc = check_setup(cfg);
    if (rc < 0 || (rc = read_file(cfg, "OCSP response", path, &buf, &len)) < 0) {
        return rc;
    }
    rc = tern_ssl_config_set_ocsp_response(cfg, buf, len);
    free(buf);
    return rc;
}

int tern_ssl_config_set_ocsp_stapling(tern_ssl_config *cfg, enum tern_ocsp_policy policy)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (policy != TERN_OCSP_OFF && policy != TERN_OCSP_REQUEST && policy != TERN_OCSP_REQUIRE) {
        seterr(cfg, "OCSP stapling policy %d: unknown", (int)policy);
        return TERN_EINVAL;
    }
    /* "must staple" is tern's check (ocsp.c), not wolfSSL's: a missing response is then an
     * ssl error (OCSP_NO_RESPONSE) that ssl_errors sees, like a revoked one */
    if (policy != TERN_OCSP_OFF &&
        wolfSSL_CTX_EnableOCSPStapling(cfg->client_ctx) != WOLFSSL_SUCCESS) {
        seterr(cfg, "OCSP stapling: not available in this build");
        return TERN_E_UNSUPPORTED;
    }
    if (policy != TERN_OCSP_OFF) {
        tern__ocsp_client_init(cfg->client_ctx);
    }
    cfg->ocsp_policy = policy;
    return 0;
}

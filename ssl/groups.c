/* SPDX-License-Identifier: MIT */
/*
 * Key-exchange groups: tern's names (and OpenSSL's) for wolfSSL's group ids, which of them
 * this build of wolfSSL has, the lists tern sets on every new configuration (so that a newer
 * wolfSSL's own defaults do not change what tern offers), the key shares a client sends, and
 * the group a connection negotiated (tern_socket_session_group).
 *
 * The table is constant; the functions here run on the setup thread (parsing, defaults) or
 * on the socket's reactor (key shares, the negotiated group).
 */
#include "ssl_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* Which groups this wolfSSL has, from its options.h (the same conditions its own group
 * tables use). A hybrid needs ML-KEM on both sides: key generation and decapsulation for a
 * client, encapsulation for a server. */
#if defined(HAVE_CURVE25519)
#define HAVE_X25519_ 1
#else
#define HAVE_X25519_ 0
#endif
#if defined(HAVE_ECC) && !defined(NO_ECC256) && !defined(NO_ECC_SECP)
#define HAVE_P256_ 1
#else
#define HAVE_P256_ 0
#endif
#if defined(HAVE_ECC) && (defined(HAVE_ECC384) || defined(HAVE_ALL_CURVES)) &&                 \
    !defined(NO_ECC_SECP)
#define HAVE_P384_ 1
#else
#define HAVE_P384_ 0
#endif
#if defined(HAVE_ECC) && (defined(HAVE_ECC521) || defined(HAVE_ALL_CURVES)) &&                 \
    !defined(NO_ECC_SECP)
#define HAVE_P521_ 1
#else
#define HAVE_P521_ 0
#endif
#if defined(HAVE_CURVE448)
#define HAVE_X448_ 1
#else
#define HAVE_X448_ 0
#endif
#if defined(HAVE_FFDHE_2048) && !defined(NO_DH)
#define HAVE_FFDHE2048_ 1
#else
#define HAVE_FFDHE2048_ 0
#endif
#if defined(HAVE_FFDHE_3072) && !defined(NO_DH)
#define HAVE_FFDHE3072_ 1
#else
#define HAVE_FFDHE3072_ 0
#endif
#if defined(WOLFSSL_TLS13) && defined(WOLFSSL_HAVE_MLKEM) && defined(WOLFSSL_PQC_HYBRIDS) &&   \
    !defined(WOLFSSL_NO_ML_KEM) && !defined(WOLFSSL_MLKEM_NO_MAKE_KEY) &&                       \
    !defined(WOLFSSL_MLKEM_NO_DECAPSULATE) && !defined(WOLFSSL_MLKEM_NO_ENCAPSULATE)
#define HAVE_HYBRIDS_ 1
#else
#define HAVE_HYBRIDS_ 0
#endif
#if HAVE_HYBRIDS_ && !defined(WOLFSSL_NO_ML_KEM_768)
#define HAVE_MLKEM768_ 1
#else
#define HAVE_MLKEM768_ 0
#endif
#if HAVE_HYBRIDS_ && !defined(WOLFSSL_NO_ML_KEM_1024)
#define HAVE_MLKEM1024_ 1
#else
#define HAVE_MLKEM1024_ 0
#endif

/* IANA code points (RFC 8422, RFC 7919, draft-ietf-tls-ecdhe-mlkem); wolfSSL uses the same
 * numbers. Written out so that the table compiles whatever the build has. */
enum {
    G_P256 = 23,
    G_P384 = 24,
    G_P521 = 25,
    G_X25519 = 29,
    G_X448 = 30,
    G_FFDHE2048 = 256,
    G_FFDHE3072 = 257,
    G_SECP256R1MLKEM768 = 4587,
    G_X25519MLKEM768 = 4588,
    G_SECP384R1MLKEM1024 = 4589,
};

/* The first entry of an id holds tern's name for it (what tern_socket_session_group says);
 * the others are OpenSSL's and wolfSSL's spellings. Names compare without case, '-' or '_'
 * ("SECP256R1", "FFDHE_2048" as wolfSSL writes them find P-256 and ffdhe2048). */
static const struct group {
    const char *name;
    uint16_t id;
    bool built;
    bool hybrid;
} groups[] = {
    {"X25519MLKEM768", G_X25519MLKEM768, HAVE_MLKEM768_ && HAVE_X25519_, true},
    {"SecP256r1MLKEM768", G_SECP256R1MLKEM768, HAVE_MLKEM768_ && HAVE_P256_, true},
    {"SecP384r1MLKEM1024", G_SECP384R1MLKEM1024, HAVE_MLKEM1024_ && HAVE_P384_, true},
    {"X25519", G_X25519, HAVE_X25519_, false},
    {"P-256", G_P256, HAVE_P256_, false},
    {"secp256r1", G_P256, HAVE_P256_, false},
    {"prime256v1", G_P256, HAVE_P256_, false},
    {"P-384", G_P384, HAVE_P384_, false},
    {"secp384r1", G_P384, HAVE_P384_, false},
    {"P-521", G_P521, HAVE_P521_, false},
    {"secp521r1", G_P521, HAVE_P521_, false},
    {"X448", G_X448, HAVE_X448_, false},
    {"ffdhe2048", G_FFDHE2048, HAVE_FFDHE2048_, false},
    {"ffdhe3072", G_FFDHE3072, HAVE_FFDHE3072_, false},
};
#define NGROUPS (sizeof(groups) / sizeof(groups[0]))

/* tern's defaults (see tern_ssl_config_set_groups in ssl_config.h for the reasons). Groups
 * this build lacks are left out. */
static const uint16_t server_default[] = {
    G_X25519MLKEM768, G_SECP256R1MLKEM768, G_SECP384R1MLKEM1024, G_X25519,
    G_P256,           G_P384,              G_P521,               G_FFDHE2048,
};
static const uint16_t client_default[] = {G_X25519, G_P256, G_P384, G_P521, G_FFDHE2048};

static bool same_name(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (;;) {
        while (i < alen && (a[i] == '-' || a[i] == '_')) {
            i++;
        }
        while (*b == '-' || *b == '_') {
            b++;
        }
        if (i == alen || *b == '\0') {
            return i == alen && *b == '\0';
        }
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)*b)) {
            return false;
        }
        i++;
        b++;
    }
}

static const struct group *by_name(const char *name, size_t len)
{
    for (size_t i = 0; i < NGROUPS; i++) {
        if (same_name(name, len, groups[i].name)) {
            return &groups[i];
        }
    }
    return NULL;
}

static const struct group *by_id(uint16_t id)
{
    for (size_t i = 0; i < NGROUPS; i++) {
        if (groups[i].id == id) {
            return &groups[i];
        }
    }
    return NULL;
}

int tern__groups_parse(const char *list, int *ids, int max, char *err, size_t errlen)
{
    if (list == NULL || list[0] == '\0') {
        snprintf(err, errlen, "groups: empty list");
        return TERN_EINVAL;
    }
    int n = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ":");
        const struct group *g = len > 0 ? by_name(p, len) : NULL;
        if (g == NULL) {
            snprintf(err, errlen, "groups: unknown group \"%.*s\"", (int)len, p);
            return TERN_EINVAL;
        }
        if (!g->built) {
            snprintf(err, errlen, "groups: %.*s is not in this build", (int)len, p);
            return TERN_E_UNSUPPORTED;
        }
        bool dup = false;
        for (int i = 0; i < n; i++) {
            dup = dup || ids[i] == g->id;
        }
        if (!dup) {
            if (n == max) {
                snprintf(err, errlen, "groups: more than %d", max);
                return TERN_EINVAL;
            }
            ids[n++] = g->id;
        }
        p += len;
        if (*p == '\0') {
            break;
        }
        p++; /* ':' */
    }
    return n;
}

void tern__groups_key_shares(tern_ssl_config *cfg, const int *ids, int n)
{
    /* A client sends its key share for the first group (wolfSSL's rule). When that is a
     * hybrid, tern adds one for the first classic group of the list too, as browsers do: a
     * server without the hybrid then picks the classic share instead of asking for another
     * with a HelloRetryRequest (a round trip more). */
    cfg->nkey_shares = 0;
    const struct group *first = n > 0 ? by_id((uint16_t)ids[0]) : NULL;
    if (first == NULL || !first->hybrid) {
        return;
    }
    for (int i = 1; i < n; i++) {
        const struct group *g = by_id((uint16_t)ids[i]);
        if (g != NULL && !g->hybrid) {
            cfg->key_shares[0] = first->id;
            cfg->key_shares[1] = g->id;
            cfg->nkey_shares = 2;
            return;
        }
    }
}

static int set_default(WOLFSSL_CTX *ctx, const uint16_t *list, size_t len)
{
    int ids[16];
    int n = 0;
    for (size_t i = 0; i < len && n < (int)(sizeof(ids) / sizeof(ids[0])); i++) {
        const struct group *g = by_id(list[i]);
        if (g != NULL && g->built) {
            ids[n++] = g->id;
        }
    }
    return n == 0 || wolfSSL_CTX_set_groups(ctx, ids, n) == WOLFSSL_SUCCESS ? 0 : TERN_E_INTERNAL;
}

int tern__groups_set_defaults(tern_ssl_config *cfg)
{
    cfg->nkey_shares = 0;
    if (set_default(cfg->server_ctx, server_default,
                    sizeof(server_default) / sizeof(server_default[0])) < 0 ||
        set_default(cfg->client_ctx, client_default,
                    sizeof(client_default) / sizeof(client_default[0])) < 0) {
        return TERN_E_INTERNAL;
    }
    return 0;
}

void tern__groups_client_setup(tern__tls *tls, const tern_ssl_config *cfg)
{
    if (cfg->nkey_shares == 0 || cfg->max_version != TLS1_3_VERSION) {
        return;
    }
    /* Errors leave wolfSSL's own choice (one share, for the first group): still correct. */
    for (int i = 0; i < cfg->nkey_shares; i++) {
        (void)wolfSSL_UseKeyShare(tls->ssl, cfg->key_shares[i]);
    }
}

const char *tern_socket_session_group(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || !tls->handshake_done || !tern__tls_awake(s)) {
        return "";
    }
    const char *name = wolfSSL_get_curve_name(tls->ssl);
    if (name == NULL) {
        return "";
    }
    const struct group *g = by_name(name, strlen(name));
    return g != NULL ? by_id(g->id)->name : name;
}

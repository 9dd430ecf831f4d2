/* SPDX-License-Identifier: MIT */
/*
 * PSK: the asynchronous server-side lookup and the client's identity and key.
 *
 * Server: wolfSSL's PSK callbacks are synchronous, so the identity is read from the stream
 * (psk_parse.c) before wolfSSL sees the message that carries it; the engine holds wolfSSL
 * while the answer is pending (tls_engine.c, psk_scan). The answer comes inline from the event
 * or, after _defer, as a task on the socket's reactor; then wolfSSL runs and its callback returns
 * the key that is already known. The socket and its TLS state are touched on the owner
 * thread only; another thread touches only the authenticator it was handed, before posting.
 */
#include "tls_engine.h"

#include "psk_hint.h"
#include "psk_parse.h"

#include <wolfssl/wolfcrypt/dh.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* TLS 1.3 first, AEADs with full tags before CCM-8 (RFC 8446 B.4, IANA "Recommended": N),
 * which only constrained devices ask for; a PSK takes the first suite of its hash that the
 * client offers (pick_suite). */
#ifdef HAVE_AESCCM
#define PSK13_CCM "TLS13-AES128-CCM-SHA256:TLS13-AES128-CCM-8-SHA256:"
#else
#define PSK13_CCM ""
#endif
#define PSK_CIPHERS                                                                            \
    "TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES256-GCM-SHA384:"          \
    PSK13_CCM                                                                                  \
    "ECDHE-PSK-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305:"                                 \
    "DHE-PSK-AES128-GCM-SHA256:DHE-PSK-CHACHA20-POLY1305:"                                     \
    "PSK-AES128-GCM-SHA256:PSK-AES256-GCM-SHA384:PSK-CHACHA20-POLY1305:"                       \
    "PSK-AES128-CCM-8:PSK-AES128-CBC-SHA256"
#define CERT_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

enum auth_status { AUTH_PENDING, AUTH_KEY, AUTH_REJECTED };

/* The TLS 1.3 suites {0x13, n} (RFC 8446 B.4), by n, with the hash each binds a PSK to. */
static const struct {
    const char *name; /* wolfSSL's */
    uint8_t hash;     /* tern_psk_hash */
} suites13[6] = {
    [1] = {"TLS13-AES128-GCM-SHA256", TERN_PSK_HASH_SHA256},
    [2] = {"TLS13-AES256-GCM-SHA384", TERN_PSK_HASH_SHA384},
    [3] = {"TLS13-CHACHA20-POLY1305-SHA256", TERN_PSK_HASH_SHA256},
    [4] = {"TLS13-AES128-CCM-SHA256", TERN_PSK_HASH_SHA256},
    [5] = {"TLS13-AES128-CCM-8-SHA256", TERN_PSK_HASH_SHA256},
};

static const char *hash_name(int hash)
{
    return hash == TERN_PSK_HASH_SHA384 ? "SHA-384" : "SHA-256";
}

struct tern_psk_authenticator {
    _Atomic int refs;
    tern_socket *s;           /* owner thread only; NULL once the connection is gone */
    tern_reactor *r;
    bool deferred;            /* owner: _defer was called in the event, or a store asked */
    int status;               /* enum auth_status, written before the answer is posted */
    int reason;               /* enum tern__psk_reason, with AUTH_REJECTED */
    int hash;                 /* tern_psk_hash of the key, with AUTH_KEY */
    _Atomic bool gone;        /* the connection ended: a store need not be asked */
    tern__worker_job job;     /* a store lookup on the runtime's PSK workers */
    tern_psk_lookup_fn lookup;
    void *lookup_ctx;
    uint8_t key[TERN_PSK_MAX_KEY];
    size_t key_len;
    char hint[TERN_PSK_MAX_IDENTITY + 1];
    uint16_t identity_len;
    uint8_t identity[TERN__PSK_MAX_IDENTITY];
};

typedef struct tern__client_psk {
    size_t id_len, key_len;
    int hash; /* tern_psk_hash */
    char identity[TERN_PSK_MAX_IDENTITY + 1];
    uint8_t key[TERN_PSK_MAX_KEY];
} client_psk;

static void auth_unref(tern_psk_authenticator *a)
{
    if (a != NULL && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1) {
        memset(a->key, 0, sizeof(a->key));
        free(a);
    }
}

/* ---- configuration ------------------------------------------------------------------------- */

static unsigned int server_key(WOLFSSL *ssl, const char *identity, unsigned char *key,
                               unsigned int max);
static unsigned int server_key13(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                 unsigned int max, const char **suite);
static unsigned int client_key(WOLFSSL *ssl, const char *hint, char *identity,
                               unsigned int id_max, unsigned char *key, unsigned int key_max);
static unsigned int client_key13(WOLFSSL *ssl, const char *hint, char *identity,
                                 unsigned int id_max, unsigned char *key, unsigned int key_max,
                                 const char *suite);

void tern__psk_ciphers(tern_ssl_config *cfg, const char *list)
{
    size_t n = 0;
    memset(cfg->psk13_order, 0, sizeof(cfg->psk13_order));
    for (const char *p = list; p != NULL && *p != '\0' && n + 1 < sizeof(cfg->psk13_order);) {
        const char *end = strchr(p, ':');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char name[64];
        unsigned char b0 = 0, b1 = 0;
        int flags = 0;
        if (len > 0 && len < sizeof(name)) {
            memcpy(name, p, len);
            name[len] = '\0';
            if (wolfSSL_get_cipher_suite_from_name(name, &b0, &b1, &flags) == 0 && b0 == 0x13 &&
                b1 >= 1 && b1 <= 5 && memchr(cfg->psk13_order, b1, n) == NULL) {
                cfg->psk13_order[n++] = b1;
            }
        }
        p = end != NULL ? end + 1 : NULL;
    }
}

int tern_ssl_config_enable_psk(tern_ssl_config *cfg, const char *hint)
{
    if (cfg == NULL) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    if (hint != NULL && strlen(hint) > TERN_PSK_MAX_IDENTITY) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK identity hint: over %d bytes",
                 TERN_PSK_MAX_IDENTITY);
        return TERN_EINVAL;
    }
    const char *list = cfg->has_cert ? PSK_CIPHERS ":" CERT_CIPHERS : PSK_CIPHERS;
    if (wolfSSL_CTX_set_cipher_list(cfg->server_ctx, list) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_cipher_list(cfg->client_ctx, list) != WOLFSSL_SUCCESS) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK: the TLS library has no PSK suites");
        return TERN_E_UNSUPPORTED;
    }
    tern__psk_ciphers(cfg, list);
    char *copy = hint != NULL ? strdup(hint) : NULL;
    if (hint != NULL && copy == NULL) {
        return TERN_ENOMEM;
    }
    free(cfg->psk_hint);
    cfg->psk_hint = copy;
    if (hint != NULL) {
        wolfSSL_CTX_use_psk_identity_hint(cfg->server_ctx, hint);
    }
#if !defined(NO_DH) && defined(HAVE_FFDHE_2048)
    /* DHE-PSK suites: the RFC 7919 ffdhe2048 group (a known safe prime, no generation) */
    const DhParams *dh = wc_Dh_ffdhe2048_Get();
    if (dh == NULL || wolfSSL_CTX_SetTmpDH(cfg->server_ctx, dh->p, (int)dh->p_len, dh->g,
                                           (int)dh->g_len) != WOLFSSL_SUCCESS) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK: cannot set the ffdhe2048 group");
        return TERN_E_UNSUPPORTED;
    }
#endif
    /* on the contexts too: wolfSSL decides there whether a server without a certificate can
     * serve (PSK) and which suites a connection may offer */
    wolfSSL_CTX_set_psk_server_callback(cfg->server_ctx, server_key);
    wolfSSL_CTX_set_psk_server_tls13_callback(cfg->server_ctx, server_key13);
    wolfSSL_CTX_set_psk_client_callback(cfg->client_ctx, client_key);
    /* clients: the callback that is told each suite (the key goes with every suite of its
     * hash, so the server may pick any of them; wolfSSL checks the hash of its pick) */
    wolfSSL_CTX_set_psk_client_cs_callback(cfg->client_ctx, client_key13);
    cfg->psk_enabled = true;
    cfg->ciphers_have_tls13 = true;
    return 0;
}

int tern_ssl_config_set_psk_modes(tern_ssl_config *cfg, enum tern_psk_modes modes)
{
    if (cfg == NULL || (modes != TERN_PSK_MODES_ANY && modes != TERN_PSK_MODES_DHE_KE &&
                        modes != TERN_PSK_MODES_KE)) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    if (modes == TERN_PSK_MODES_ANY) {
        return 0; /* wolfSSL's default; a mode once restricted stays so (build a new one) */
    }
#if defined(WOLFSSL_TLS13) && defined(HAVE_SUPPORTED_CURVES)
    WOLFSSL_CTX *ctxs[2] = {cfg->server_ctx, cfg->client_ctx};
    for (int i = 0; i < 2; i++) {
        int rc = modes == TERN_PSK_MODES_KE ? wolfSSL_CTX_no_dhe_psk(ctxs[i])
                                            : wolfSSL_CTX_only_dhe_psk(ctxs[i]);
        if (rc != 0) {
            snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK modes: the TLS library refused");
            return TERN_E_UNSUPPORTED;
        }
    }
    return 0;
#else
    snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK modes: no TLS 1.3 PSK in this build");
    return TERN_E_UNSUPPORTED;
#endif
}

int tern_ssl_config_set_psk_lookup(tern_ssl_config *cfg, tern_psk_lookup_fn fn, void *ctx)
{
    if (cfg == NULL) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    cfg->psk_lookup = fn;
    cfg->psk_lookup_ctx = ctx;
    return 0;
}

int tern_ssl_config_set_psk_limits(tern_ssl_config *cfg, uint32_t lookup_timeout_ms,
                                   uint32_t max_pending)
{
    if (cfg == NULL) {
        return TERN_EINVAL;
    }
    if (max_pending < 1 || max_pending > (1u << 20)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "PSK: max_pending %u is out of range 1..%u",
                 max_pending, 1u << 20);
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    cfg->psk_lookup_timeout_ms = lookup_timeout_ms;
    cfg->psk_max_pending = max_pending;
    return 0;
}

/* ---- wolfSSL's synchronous callbacks: the answer is already known ---------------------------- */

/* The identity the answer is for: the first the client offered, kept by the engine's parser
 * until the handshake is done (NULL in the fuzz harness, or when none was read). */
static const tern__psk_identity *asked(const tern__tls *tls)
{
    if (tls == NULL || tls->psk_parser == NULL || tls->psk_state == TERN__PSK_STATE_NONE ||
        tls->psk_state == TERN__PSK_STATE_WAITING) {
        return NULL;
    }
    return &tls->psk_parser->identities[0];
}

/* A PSK server's handshake-only state in one allocation: the parser that reads the identity
 * ahead of wolfSSL (first: tls->psk_parser points at it) and the key the answer gave. Made
 * when the handshake starts, wiped and freed when it ends, so an established connection
 * carries neither (72 bytes less in every idle connection's tern__tls). */
struct psk_hs {
    tern__psk_parser parser;
    uint8_t key[64];
    size_t key_len;
};

static struct psk_hs *hs_of(const tern__tls *tls)
{
    return (struct psk_hs *)tls->psk_parser; /* NULL: none (its first member) */
}

void tern__psk_drop(tern__tls *tls)
{
    struct psk_hs *hs = hs_of(tls);
    if (hs != NULL) {
        tern__psk_parser_free(&hs->parser);
        explicit_bzero(hs, sizeof(*hs));
        free(hs);
        tls->psk_parser = NULL;
    }
}

static unsigned int psk_key(WOLFSSL *ssl, const char *identity, unsigned char *key,
                            unsigned int max)
{
    tern__tls *tls = wolfSSL_GetIOReadCtx(ssl); /* NULL in the fuzz harness */
    const tern__psk_identity *id = asked(tls);

    if (id != NULL && tls->psk_state == TERN__PSK_STATE_REJECTED && max >= 32) {
        /* RFC 4279 2: hide that the identity is unknown. A random key makes the handshake fail
         * exactly as a wrong key does (Finished or binder), so the alert is no oracle. */
        if (getrandom(key, 32, 0) == 32) {
            return 32;
        }
        return 0;
    }
    if (id == NULL || tls->psk_state != TERN__PSK_STATE_KEY || identity == NULL ||
        strlen(identity) != id->len || memcmp(identity, id->bytes, id->len) != 0 ||
        hs_of(tls)->key_len > max) {
        return 0; /* not the identity that was looked up: wolfSSL refuses */
    }
    memcpy(key, hs_of(tls)->key, hs_of(tls)->key_len);
    return (unsigned int)hs_of(tls)->key_len;
}

/* TLS 1.2 (RFC 4279). wolfSSL also calls it in TLS 1.3 when server_key13 found no key, and
 * would then use the key with TLS13-AES128-GCM-SHA256 whatever its hash: not in TLS 1.3. */
static unsigned int server_key(WOLFSSL *ssl, const char *identity, unsigned char *key,
                               unsigned int max)
{
    if (wolfSSL_version(ssl) == TLS1_3_VERSION) {
        return 0;
    }
    return psk_key(ssl, identity, key, max);
}

/* TLS 1.3. wolfSSL walks the suites both sides share, in the server's order, and takes the key
 * when the suite named here is the one it is at; so this names the suite that pick_suite
 * chose when the answer came (RFC 8446 4.2.11: a PSK's hash binds its suites), or no key. */
static unsigned int server_key13(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                 unsigned int max, const char **suite)
{
    const tern__tls *tls = wolfSSL_GetIOReadCtx(ssl);

    if (tls == NULL || tls->psk_suite == 0) {
        return 0; /* no suite of the key's hash: no PSK (a certificate, or refused earlier) */
    }
    *suite = suites13[tls->psk_suite].name;
    return psk_key(ssl, identity, key, max);
}

static unsigned int client_key(WOLFSSL *ssl, const char *hint, char *identity,
                               unsigned int id_max, unsigned char *key, unsigned int key_max)
{
    const tern__tls *tls = wolfSSL_GetIOReadCtx(ssl);
    const client_psk *c = tls != NULL ? tls->psk : NULL;
    if (c == NULL || c->id_len >= id_max || c->key_len > key_max) {
        return 0;
    }
    memcpy(identity, c->identity, c->id_len + 1);
    memcpy(key, c->key, c->key_len);
    return (unsigned int)c->key_len;
}

/* TLS 1.3, once per suite of the client's list while it writes its ClientHello, and once with
 * the server's pick: the key for the suites of its hash, none for the others. */
static unsigned int client_key13(WOLFSSL *ssl, const char *hint, char *identity,
                                 unsigned int id_max, unsigned char *key, unsigned int key_max,
                                 const char *suite)
{
    const tern__tls *tls = wolfSSL_GetIOReadCtx(ssl);
    const client_psk *c = tls != NULL ? tls->psk : NULL;
    unsigned char b0 = 0, b1 = 0;
    int flags = 0;

    if (c == NULL || suite == NULL ||
        wolfSSL_get_cipher_suite_from_name(suite, &b0, &b1, &flags) != 0 || b0 != 0x13 ||
        b1 < 1 || b1 > 5 || suites13[b1].hash != c->hash) {
        return 0;
    }
    return client_key(ssl, hint, identity, id_max, key, key_max);
}

void tern__psk_setup(tern_socket *s, tern__tls *tls, const tern_ssl_config *cfg, bool server)
{
    if (server && cfg->psk_enabled) {
        wolfSSL_set_psk_server_callback(tls->ssl, server_key);
        wolfSSL_set_psk_server_tls13_callback(tls->ssl, server_key13);
        struct psk_hs *hs = calloc(1, sizeof(*hs));
        if (hs != NULL) {
            tern__psk_parser_init(&hs->parser);
            tls->psk_parser = &hs->parser;
        }
    } else if (!server && (tls->psk != NULL || tls->psk_ask)) {
        wolfSSL_set_psk_client_callback(tls->ssl, client_key);
        wolfSSL_set_psk_client_cs_callback(tls->ssl, client_key13);
        if (tls->psk == NULL && tls->psk_ask) {
            /* the client asks the application (psk_authentication_required): a TLS 1.2-only
             * client with the server's hint, when the ServerHelloDone comes (psk_hint.h);
             * one that may speak TLS 1.3 before its ClientHello, which carries the PSK (no
             * hint in TLS 1.3) */
            if (cfg->max_version == TLS1_2_VERSION) {
                tls->hint_scan = calloc(1, sizeof(*tls->hint_scan));
            } else {
                tls->psk_ask_first = true;
            }
        }
    }
}

static void settled(tern_socket *s, tern__tls *tls, bool rearm);

/* The authenticator of @p tls goes (an answer still on its way only frees it). */
static void drop_authenticator(tern__tls *tls)
{
    if (tls->psk_auth != NULL) {
        tls->psk_auth->s = NULL;
        atomic_store_explicit(&tls->psk_auth->gone, true, memory_order_relaxed);
        auth_unref(tls->psk_auth);
        tls->psk_auth = NULL;
    }
}

void tern__psk_handshake_done(tern__tls *tls)
{
    if (tls->server && tls->psk_state != TERN__PSK_STATE_WAITING) {
        drop_authenticator(tls);
    }
}

void tern__psk_release(tern_socket *s, tern__tls *tls)
{
    settled(s, tls, false);
    tern__psk_drop(tls);
    free(tls->hint_scan);
    tls->hint_scan = NULL;
    if (tls->psk_from_event) {
        tern__client_psk_free(tls->psk); /* this connection's answer, not a setting */
        tls->psk = NULL;
        tls->psk_from_event = false;
    }
    drop_authenticator(tls);
}

/* ---- holding the handshake ----------------------------------------------------------------- */

static void psk_fail(tern_socket *s, tern__tls *tls, const char *why)
{
    tern__socket_seterr(s, TERN_E_TLS_PROTOCOL, "PSK: %s", why);
    tern__tls_plain_alert(s, tls, 50); /* decode_error */
    tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_OTHER);
    tern__socket_fail(s, TERN_E_TLS_PROTOCOL);
}

/* The handshake starts waiting for an answer: counted in the reactor's gauge, and the lookup
 * timeout stands in for the handshake deadline when it is sooner. */
static void waiting(tern_socket *s, tern__tls *tls, const tern_ssl_config *cfg)
{
    tern__count(&tern__socket_counters(s)->psk_pending, 1);
    tls->psk_pending = true;
    if (cfg->psk_lookup_timeout_ms != 0) {
        uint64_t at = tern_reactor_now_ms(tern_socket_reactor(s)) + cfg->psk_lookup_timeout_ms;
        uint64_t deadline = tern__socket_deadline(s);
        if (deadline == 0 || at < deadline) {
            tls->psk_saved_deadline = deadline;
            tls->psk_deadline_set = true;
            tern__socket_set_deadline(s, at);
        }
    }
}

/* The wait is over (an answer, or the connection ended). */
static void settled(tern_socket *s, tern__tls *tls, bool rearm)
{
    if (tls->psk_pending) {
        tls->psk_pending = false;
        tern__count(&tern__socket_counters(s)->psk_pending, (uint64_t)-1);
    }
    if (tls->psk_deadline_set) {
        tls->psk_deadline_set = false;
        if (rearm) {
            tern__socket_set_deadline(s, tls->psk_saved_deadline);
        }
    }
}

/* The identity for messages: printable ASCII kept, anything else as \xNN, cut at 64 bytes. */
static const char *printable_identity(const tern_psk_authenticator *a, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < a->identity_len && i < 64 && o + 5 < len; i++) {
        uint8_t c = a->identity[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        }
    }
    if (a->identity_len > 64 && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

bool tern__psk_expired(tern_socket *s, tern__tls *tls)
{
    if (tls == NULL || tls->psk_state != TERN__PSK_STATE_WAITING || !tls->psk_deadline_set ||
        tls->psk_auth == NULL) {
        return false;
    }
    char id[300];
    const tern_ssl_config *cfg = tern__tls_config(tls);
    tern__count(&tern__socket_counters(s)->psk_timeouts, 1);
    tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_TIMEOUT);
    if (!tls->server) {
        tern__socket_seterr(s, TERN_E_TLS_TIMEOUT,
                            "PSK: no answer for the server's identity hint \"%s\" within %u ms",
                            tls->psk_auth->hint, cfg->psk_lookup_timeout_ms);
    } else {
        tern__socket_seterr(s, TERN_E_TLS_TIMEOUT,
                            "PSK: no answer for identity \"%s\" within %u ms",
                            printable_identity(tls->psk_auth, id, sizeof(id)),
                            cfg->psk_lookup_timeout_ms);
    }
    tern__tls_plain_alert(s, tls, 40); /* handshake_failure */
    tern__socket_fail(s, TERN_E_TLS_TIMEOUT);
    return true;
}

bool tern__psk_explain_failure(tern_socket *s, tern__tls *tls, const char *stage,
                               const char *detail)
{
    char id[300];
    if (!tls->server || tls->handshake_done || tls->psk_auth == NULL) {
        return false;
    }
    printable_identity(tls->psk_auth, id, sizeof(id));
    if (tls->psk_state == TERN__PSK_STATE_KEY) {
        tern__count(&tern__socket_counters(s)->psk_bad_key, 1);
        tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                            "%s: PSK identity \"%s\": the peer's key differs (%s)", stage, id,
                            detail);
        return true;
    }
    if (tls->psk_state == TERN__PSK_STATE_REJECTED) {
        static const char *why[] = {"unknown identity", "the store failed",
                                    "too many lookups queued", "no shared suite for this PSK"};
        tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE, "%s: PSK identity \"%s\": %s (%s)", stage,
                            id, why[tls->psk_reason], detail);
        return true;
    }
    return false;
}

/* The engine holds the handshake on a PSK identity (tls_engine.c reads it from the stream
 * before wolfSSL sees it): the authenticator is made and the event scheduled, once. */
void tern__psk_identified(tern_socket *s, tern__tls *tls)
{
    size_t len = 0;
    const uint8_t *id = tern__tls_engine_psk_identity(tls, &len);

    if (!tls->server) {
        tern__psk_client_ask(s, tls);
        return;
    }
    if (tls->psk_auth != NULL || id == NULL) {
        return; /* asked already */
    }
    const tern_ssl_config *cfg = tern__tls_config(tls);
    tern__counters *counters = tern__socket_counters(s);
    tern__count(&counters->psk_lookups, 1);
    if (tern__read(&counters->psk_pending) >= cfg->psk_max_pending) {
        tern__count(&counters->psk_overload, 1);
        tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                            "PSK: %u handshakes already wait for a lookup on this reactor",
                            cfg->psk_max_pending);
        tern__tls_plain_alert(s, tls, 40); /* handshake_failure */
        tern__count_hs_failure(counters, TERN__HS_FAIL_OTHER); /* overload */
        tern__socket_fail(s, TERN_E_TLS_HANDSHAKE);
        return;
    }
    tern_psk_authenticator *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        psk_fail(s, tls, "out of memory");
        return;
    }
    atomic_init(&a->refs, 1); /* the socket's */
    a->s = s;
    a->r = tern_socket_reactor(s);
    a->identity_len = len;
    memcpy(a->identity, id, len);
    snprintf(a->hint, sizeof(a->hint), "%s", cfg->psk_hint != NULL ? cfg->psk_hint : "");
    tls->psk_auth = a;
    waiting(s, tls, cfg);
    tls->psk_event_due = true;
    tern__socket_schedule(s);
}

void tern__psk_client_ask(tern_socket *s, tern__tls *tls)
{
    if (tls->psk_auth != NULL) {
        return; /* asked already */
    }
    tern_psk_authenticator *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        psk_fail(s, tls, "out of memory");
        return;
    }
    atomic_init(&a->refs, 1); /* the socket's */
    a->s = s;
    a->r = tern_socket_reactor(s);
    snprintf(a->hint, sizeof(a->hint), "%s", tls->hint_scan != NULL ? tls->hint_scan->hint : "");
    tern__count(&tern__socket_counters(s)->psk_lookups, 1);
    tls->psk_auth = a;
    tls->psk_state = TERN__PSK_STATE_WAITING;
    waiting(s, tls, tern__tls_config(tls));
    tls->psk_event_due = true;
    tern__socket_schedule(s);
}

/* A client's answer: its identity and key become the connection's PSK, and the handshake goes
 * on (the held ServerHelloDone, or the ClientHello); without both, it ends here. */
static void client_apply(tern_socket *s, tern__tls *tls, tern_psk_authenticator *a)
{
    settled(s, tls, true);
    if (a->status == AUTH_KEY && a->identity_len > 0 &&
        tern__tls_set_psk(tls, a->identity, a->identity_len, a->key, a->key_len) == 0) {
        memset(a->key, 0, sizeof(a->key));
        tls->psk->hash = a->hash;
        tls->psk_from_event = true;
        tls->psk_state = TERN__PSK_STATE_KEY;
        tern__tls_input(s); /* the held records (or none: the ClientHello) go to wolfSSL */
        tern__socket_flush(s);
        return;
    }
    memset(a->key, 0, sizeof(a->key));
    tls->psk_state = TERN__PSK_STATE_REJECTED;
    tern__count(&tern__socket_counters(s)->psk_unknown, 1);
    tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                        "PSK: the application gave no %s for the server's identity hint \"%s\"",
                        a->status == AUTH_KEY ? "identity" : "key", a->hint);
    if (tls->hint_scan != NULL) {
        tern__tls_engine_alert_plaintext(tls, 40); /* TLS 1.2, before ChangeCipherSpec */
    }
    tern__count_hs_failure(tern__socket_counters(s), TERN__HS_FAIL_UNKNOWN_IDENTITY);
    tern__socket_fail(s, TERN_E_TLS_HANDSHAKE);
    tern__socket_flush(s);
}

/* TLS 1.3: the suite for a key of @hash (tls->psk_suite), the first of the server's list that
 * the client offers and whose hash the client bound the key with (its binder's length,
 * RFC 8446 4.2.11.2). False if there is none. */
static bool pick_suite(tern__tls *tls, const tern_ssl_config *cfg, int hash)
{
    tls->psk_suite = 0;
    if (tls->psk_binder_len != (hash == TERN_PSK_HASH_SHA384 ? 48 : 32)) {
        return false;
    }
    for (size_t i = 0; i < sizeof(cfg->psk13_order) && cfg->psk13_order[i] != 0; i++) {
        uint8_t n = cfg->psk13_order[i];
        if (suites13[n].hash == hash && (tls->psk_offered13 & (1u << n)) != 0) {
            tls->psk_suite = n;
            return true;
        }
    }
    return false;
}

int tern__tls_engine_psk_answer(tern__tls *tls, const void *key, size_t len, int hash,
                                int reason)
{
    const tern_ssl_config *cfg = tern__tls_config(tls);

    struct psk_hs *hs = hs_of(tls);
    if (tls->psk_state != TERN__PSK_STATE_WAITING || hs == NULL || len > sizeof(hs->key)) {
        return TERN_EINVAL;
    }
    if (key != NULL) {
        memcpy(hs->key, key, len);
        hs->key_len = len;
        tls->psk_state = TERN__PSK_STATE_KEY;
    } else {
        hash = TERN_PSK_HASH_SHA256; /* unknown identities pass for SHA-256 ones */
        tls->psk_state = TERN__PSK_STATE_REJECTED;
        tls->psk_reason = reason;
    }
    if (tls->psk_hello && !pick_suite(tls, cfg, hash)) {
        if (!cfg->has_cert) {
            return TERN_E_TLS_HANDSHAKE; /* no suite for this key and no certificate either */
        }
        if (tls->psk_state == TERN__PSK_STATE_KEY) {
            /* wolfSSL goes on with the certificate, without the PSK (RFC 8446 4.2.11): not a
             * PSK handshake, and if it fails, the suites are why */
            explicit_bzero(hs->key, sizeof(hs->key));
            tls->psk_state = TERN__PSK_STATE_REJECTED;
            tls->psk_reason = TERN__PSK_REASON_NO_SUITE;
        }
    }
    return 0;
}

/* RFC 8446 4.1.1, 9.1: no suite both sides can use with this key: handshake_failure, said as
 * such (not as a wrong key). An unknown identity was answered as a SHA-256 one: its failure
 * looks the same on the wire and its message still says "unknown identity". */
static void no_shared_suite(tern_socket *s, tern__tls *tls, int hash)
{
    char id[300], offered[160] = "";
    size_t o = 0;

    printable_identity(tls->psk_auth, id, sizeof(id));
    for (unsigned n = 1; n <= 5; n++) {
        if ((tls->psk_offered13 & (1u << n)) != 0 && o + 40 < sizeof(offered)) {
            o += (size_t)snprintf(offered + o, sizeof(offered) - o, "%s%s", o > 0 ? "," : "",
                                  suites13[n].name);
        }
    }
    const char *bound = tls->psk_binder_len == 32   ? "SHA-256"
                        : tls->psk_binder_len == 48 ? "SHA-384"
                                                    : "another hash";
    if (tls->psk_state == TERN__PSK_STATE_KEY) {
        tern__count(&tern__socket_counters(s)->psk_no_suite, 1);
        tls->psk_state = TERN__PSK_STATE_REJECTED;
        tls->psk_reason = TERN__PSK_REASON_NO_SUITE;
        tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                            "TLS handshake: PSK identity \"%s\": no shared suite for this PSK "
                            "(a %s key; the client binds it with %s and offers %s); sent alert "
                            "handshake_failure",
                            id, hash_name(hash), bound, o > 0 ? offered : "no TLS 1.3 suite");
    } else {
        tern__socket_seterr(s, TERN_E_TLS_HANDSHAKE,
                            "TLS handshake: PSK identity \"%s\": %s; sent alert handshake_failure", id,
                            tls->psk_reason == TERN__PSK_REASON_STORE_ERROR ? "the store failed"
                            : tls->psk_reason == TERN__PSK_REASON_OVERLOAD
                                ? "too many lookups queued"
                                : "unknown identity");
    }
    if (hs_of(tls) != NULL) {
        explicit_bzero(hs_of(tls)->key, sizeof(hs_of(tls)->key));
    }
    tern__tls_plain_alert(s, tls, 40); /* handshake_failure */
    tern__count_hs_failure(tern__socket_counters(s),
                           tls->psk_reason == TERN__PSK_REASON_NO_SUITE ? TERN__HS_FAIL_NO_SHARED
                           : tls->psk_reason == TERN__PSK_REASON_UNKNOWN
                               ? TERN__HS_FAIL_UNKNOWN_IDENTITY
                               : TERN__HS_FAIL_OTHER);
    tern__socket_fail(s, TERN_E_TLS_HANDSHAKE);
}

/* Applies an answer on the owner thread and lets the handshake go on. */
static void apply(tern_socket *s, tern__tls *tls, tern_psk_authenticator *a)
{
    int hash = TERN_PSK_HASH_SHA256; /* unknown identities pass for SHA-256 ones */

    if (!tls->server) {
        client_apply(s, tls, a);
        return;
    }

    settled(s, tls, true);
    int reason = TERN__PSK_REASON_UNKNOWN;
    if (a->status == AUTH_KEY) {
        hash = a->hash;
    } else {
        reason = a->status == AUTH_REJECTED ? a->reason : TERN__PSK_REASON_UNKNOWN;
        tern__counters *counters = tern__socket_counters(s);
        _Atomic uint64_t *c = reason == TERN__PSK_REASON_OVERLOAD       ? &counters->psk_overload
                              : reason == TERN__PSK_REASON_STORE_ERROR ? &counters->psk_store_errors
                                                                       : &counters->psk_unknown;
        tern__count(c, 1);
    }
    int rc = tern__tls_engine_psk_answer(tls, a->status == AUTH_KEY ? a->key : NULL, a->key_len,
                                         hash, reason);
    memset(a->key, 0, sizeof(a->key));
    if (rc < 0) {
        no_shared_suite(s, tls, hash);
        tern__socket_flush(s);
        return;
    }
    tern__tls_input(s); /* the held records go to wolfSSL now */
    tern__socket_flush(s);
}

static void answer_task(tern_reactor *r, void *arg);

/* On a PSK worker: ask the store; the answer then goes to the socket's reactor. */
static void store_work(tern__worker_job *job)
{
    tern_psk_authenticator *a = (tern_psk_authenticator *)((char *)job -
                                                          offsetof(tern_psk_authenticator, job));
    if (atomic_load_explicit(&a->gone, memory_order_relaxed)) {
        a->status = AUTH_REJECTED;
        a->reason = TERN__PSK_REASON_UNKNOWN;
        return;
    }
    size_t len = 0;
    enum tern_psk_lookup_result rc =
        a->lookup(a->lookup_ctx, a->identity, a->identity_len, a->key, &len);
    if ((rc == TERN_PSK_FOUND || rc == TERN_PSK_FOUND_SHA384) && len >= TERN_PSK_MIN_KEY &&
        len <= TERN_PSK_MAX_KEY) {
        a->key_len = len;
        a->hash = rc == TERN_PSK_FOUND_SHA384 ? TERN_PSK_HASH_SHA384 : TERN_PSK_HASH_SHA256;
        a->status = AUTH_KEY;
        return;
    }
    memset(a->key, 0, sizeof(a->key));
    a->status = AUTH_REJECTED;
    a->reason = rc == TERN_PSK_UNKNOWN ? TERN__PSK_REASON_UNKNOWN : TERN__PSK_REASON_STORE_ERROR;
}

static void store_done(tern_reactor *r, void *arg)
{
    tern__worker_job *job = arg;
    answer_task(r, (char *)job - offsetof(tern_psk_authenticator, job));
}

static void ask_store(tern_socket *s, tern_psk_authenticator *a, const tern_ssl_config *cfg)
{
    a->lookup = cfg->psk_lookup;
    a->lookup_ctx = cfg->psk_lookup_ctx;
    a->job.work = store_work;
    a->job.done = store_done;
    a->job.reply_to = tern_socket_reactor(s);
    a->deferred = true;
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed); /* the worker's */
    if (tern__socket_submit_lookup(s, &a->job) < 0) {
        atomic_fetch_sub_explicit(&a->refs, 1, memory_order_relaxed);
        a->deferred = false;
        a->status = AUTH_REJECTED;
        a->reason = TERN__PSK_REASON_OVERLOAD;
    }
}

void tern__psk_deliver(tern_socket *s, tern__tls *tls)
{
    tern_psk_authenticator *a = tls->psk_auth;

    if (!tls->psk_event_due || a == NULL) {
        return;
    }
    tls->psk_event_due = false;
    const tern_socket_events *ev = tern__socket_events(s);
    if (ev != NULL && ev->psk_authentication_required != NULL) {
        ev->psk_authentication_required(s, a, tern_socket_user(s));
    }
    if (tern__socket_freeing(s) || tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED ||
        tls->psk_auth != a) {
        return;
    }
    if (a->deferred) {
        /* the answer comes as a task, maybe already queued: the answering thread owns
         * a->status until it posts, so it is not read here */
        return;
    }
    const tern_ssl_config *cfg = tern__tls_config(tls);
    if (a->status == AUTH_PENDING && cfg->psk_lookup != NULL && tls->server) {
        ask_store(s, a, cfg);
        if (a->deferred) {
            return;
        }
    }
    apply(s, tls, a);
}

static void answer_task(tern_reactor *r, void *arg)
{
    tern_psk_authenticator *a = arg;
    tern_socket *s = r != NULL ? a->s : NULL;
    tern__tls *tls = tern__tls_of(s);

    if (tls != NULL && tls->psk_auth == a && tls->psk_state == TERN__PSK_STATE_WAITING &&
        tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED) {
        apply(s, tls, a);
    }
    auth_unref(a); /* the answerer's reference */
}

/* ---- the authenticator --------------------------------------------------------------------- */

tern_buf tern_psk_authenticator_identity(const tern_psk_authenticator *a)
{
    tern_buf b = {a->identity, a->identity_len};
    return b;
}

const char *tern_psk_authenticator_identity_hint(const tern_psk_authenticator *a)
{
    return a->hint;
}

size_t tern_psk_authenticator_maximum_identity_length(const tern_psk_authenticator *a)
{
    return TERN_PSK_MAX_IDENTITY;
}

size_t tern_psk_authenticator_maximum_key_length(const tern_psk_authenticator *a)
{
    return TERN_PSK_MAX_KEY;
}

tern_psk_authenticator *tern_psk_authenticator_defer(tern_psk_authenticator *a)
{
    TERN_ASSERT_OWNER(a->r);
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    a->deferred = true;
    return a;
}

static int answer(tern_psk_authenticator *a, int status, const void *key, size_t len)
{
    if (a == NULL) {
        return TERN_EINVAL;
    }
    if (status == AUTH_KEY && (key == NULL || len < TERN_PSK_MIN_KEY || len > TERN_PSK_MAX_KEY)) {
        return TERN_EINVAL;
    }
    if (status == AUTH_KEY) {
        memcpy(a->key, key, len);
        a->key_len = len;
    }
    a->status = status;
    if (!a->deferred) {
        return 0; /* inside the event: applied when it returns */
    }
    int rc = tern_reactor_post(a->r, answer_task, a); /* moves the caller's reference */
    if (rc == TERN_E_QUEUE_FULL) {
        a->status = AUTH_PENDING;
        return rc;
    }
    if (rc < 0) {
        auth_unref(a);
        return TERN_ECANCELED;
    }
    return 0;
}

int tern_psk_authenticator_complete(tern_psk_authenticator *a, const void *key, size_t len)
{
    return answer(a, AUTH_KEY, key, len);
}

int tern_psk_authenticator_reject(tern_psk_authenticator *a)
{
    return answer(a, AUTH_REJECTED, NULL, 0);
}

int tern_psk_authenticator_set_identity(tern_psk_authenticator *a, const void *identity,
                                        size_t len)
{
    if (a == NULL || identity == NULL || len == 0 || len > TERN_PSK_MAX_IDENTITY ||
        memchr(identity, 0, len) != NULL) {
        return TERN_EINVAL;
    }
    memcpy(a->identity, identity, len); /* read by the owner only after the answer */
    a->identity_len = (uint16_t)len;
    return 0;
}

int tern_psk_authenticator_set_key_hash(tern_psk_authenticator *a, enum tern_psk_hash hash)
{
    if (a == NULL || (hash != TERN_PSK_HASH_SHA256 && hash != TERN_PSK_HASH_SHA384)) {
        return TERN_EINVAL;
    }
    a->hash = hash; /* read by the owner only after the answer is applied or posted */
    return 0;
}

/* ---- the client's key ------------------------------------------------------------------------ */

void tern__client_psk_free(client_psk *c)
{
    if (c != NULL) {
        explicit_bzero(c, sizeof(*c));
        free(c);
    }
}

int tern__tls_set_psk(tern__tls *tls, const void *identity, size_t identity_len, const void *key,
                      size_t key_len)
{
    if (identity == NULL || key == NULL || identity_len == 0 ||
        identity_len > TERN_PSK_MAX_IDENTITY || key_len < TERN_PSK_MIN_KEY ||
        key_len > TERN_PSK_MAX_KEY || memchr(identity, 0, identity_len) != NULL) {
        return TERN_EINVAL;
    }
    client_psk *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return TERN_ENOMEM;
    }
    memcpy(c->identity, identity, identity_len);
    c->id_len = identity_len;
    memcpy(c->key, key, key_len);
    c->key_len = key_len;
    c->hash = TERN_PSK_HASH_SHA256;
    tern__client_psk_free(tls->psk);
    tls->psk = c;
    return 0;
}

int tern_socket_set_psk(tern_socket *s, const void *identity, size_t identity_len, const void *key,
                        size_t key_len)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || identity == NULL || key == NULL || identity_len == 0 ||
        identity_len > TERN_PSK_MAX_IDENTITY || key_len < TERN_PSK_MIN_KEY ||
        key_len > TERN_PSK_MAX_KEY || memchr(identity, 0, identity_len) != NULL) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if (tern__tls_started(tls)) {
        return TERN_EBUSY;
    }
    if ((tls = tern__tls_get(s)) == NULL) {
        return TERN_ENOMEM;
    }
    return tern__tls_set_psk(tls, identity, identity_len, key, key_len);
}

int tern_socket_set_psk_hash(tern_socket *s, enum tern_psk_hash hash)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (tls == NULL || tls->psk == NULL ||
        (hash != TERN_PSK_HASH_SHA256 && hash != TERN_PSK_HASH_SHA384)) {
        return TERN_EINVAL;
    }
    if (tern__tls_started(tls)) {
        return TERN_EBUSY;
    }
    tls->psk->hash = hash;
    return 0;
}

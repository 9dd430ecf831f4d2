/* SPDX-License-Identifier: MIT */
/*
 * Hibernation of an idle TLS connection (tls_engine.h; docs/design/hibernation.md): the
 * connection's keys, sequence numbers and TLS 1.3 secrets leave the WOLFSSL object as
 * wolfSSL's TLS export (--enable-sessionexport=nopeer, patch 0200 for TLS 1.3), sealed here
 * with AES-256-GCM under a key of this process, and the object (9-15 KiB) is freed. Waking
 * makes a fresh object from the same context, opens the seal and imports.
 *
 * Why a seal: wolfSSL's import trusts its input (a mutated blob imports more often than not,
 * and crashed the prototype on the first record: hibernation.md section 4). Only blobs this
 * process sealed reach it; a blob that does not authenticate ends its connection and nothing
 * else. It also keeps raw traffic keys out of a stray dump of the heap (the seal key is in
 * memory too: defence in depth, not a guarantee).
 *
 * Nonces: one process-wide 64-bit counter, so no (key, nonce) pair is ever used twice
 * whatever thread seals; one relaxed atomic add per hibernation. The AES key schedule is
 * per thread (no lock, no allocation on the path).
 */
#include "tls_engine.h"

#include <wolfssl/wolfcrypt/aes.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define SEAL_TAG 16
#define SEAL_IV 12
/* wolfSSL's export of one connection: 251-499 bytes measured (hibernation.md section 2); the
 * worst case it announces for this build is checked against this at every export */
#define EXPORT_MAX 1024

/* wolfSSL's TLS export (--enable-sessionexport) with tern's patch 0200 (TLS 1.3 secrets): a
 * system wolfSSL may have neither, or the export alone, which breaks TLS 1.3 KeyUpdate and
 * tickets after a wake-up. Without both no connection hibernates (TERN_E_UNSUPPORTED, counted
 * as hibernate_failures). */
#if defined(WOLFSSL_SESSION_EXPORT) && defined(TERN_WOLFSSL_PATCHED)
#define HIBERNATION 1
#else
#define HIBERNATION 0
#endif

/* The sealed state: what stays of a hibernated connection besides tern__tls. */
struct tern__hib {
    uint32_t len;     /* of data */
    uint8_t nonce[8]; /* from here on: what tern__tls_engine_blob shows a test */
    uint8_t tag[SEAL_TAG];
    uint8_t data[]; /* the export, encrypted */
};

#if HIBERNATION
static uint8_t seal_key[32];
static bool seal_key_ok;
static pthread_once_t seal_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t seal_counter;

static void seal_key_init(void)
{
    size_t got = 0;
    for (int tries = 0; got < sizeof(seal_key) && tries < 8; tries++) {
        ssize_t n = getrandom(seal_key + got, sizeof(seal_key) - got, 0);
        if (n > 0) {
            got += (size_t)n;
        }
    }
    seal_key_ok = got == sizeof(seal_key);
}

/* This thread's key schedule (set once per thread; wolfCrypt allocates nothing for it). */
static Aes *seal_aes(void)
{
    static _Thread_local Aes aes;
    static _Thread_local bool ready;
    pthread_once(&seal_once, seal_key_init);
    if (!seal_key_ok) {
        return NULL;
    }
    if (!ready) {
        if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 ||
            wc_AesGcmSetKey(&aes, seal_key, sizeof(seal_key)) != 0) {
            return NULL;
        }
        ready = true;
    }
    return &aes;
}

/* What the seal binds besides the bytes: their length, the side and the version (a blob can
 * only wake the kind of connection it came from). */
static void seal_aad(const tern__tls *tls, const struct tern__hib *h, uint8_t aad[7])
{
    memcpy(aad, &h->len, 4);
    aad[4] = tls->server ? 1 : 0;
    aad[5] = (uint8_t)(tls->version >> 8);
    aad[6] = (uint8_t)tls->version;
}

static void seal_iv(const uint8_t nonce[8], uint8_t iv[SEAL_IV])
{
    memset(iv, 0, SEAL_IV);
    memcpy(iv + SEAL_IV - 8, nonce, 8);
}
#endif

/* A socket's secrets (the blob, a client's session) live in its reactor's slab for secrets
 * (runtime/slab.c: packed apart from the objects that come and go, left out of core dumps); a
 * standalone engine's in malloc's. Wiped before they are freed. */
#if HIBERNATION
static void *secret_alloc(tern__tls *tls, size_t n)
{
    return tls->sock != NULL ? tern__socket_secret_alloc(tls->sock, n) : malloc(n);
}
#endif

static void secret_free(tern__tls *tls, void *p, size_t n)
{
    if (p == NULL) {
        return;
    }
    explicit_bzero(p, n);
    if (tls->sock != NULL) {
        tern__socket_secret_free(tls->sock, p);
    } else {
        free(p);
    }
}

static void hib_free(tern__tls *tls, struct tern__hib *h)
{
    if (h != NULL) {
        secret_free(tls, h, offsetof(struct tern__hib, data) + h->len);
    }
}

#if HIBERNATION
/* A client's session with its ticket (what tern_socket_session_export gives) is not in the
 * TLS export: kept beside it, for as long as no newer ticket comes. 0 or TERN_ENOMEM. */
static int keep_session(tern__tls *tls)
{
    if (tls->server || !tls->got_ticket || tls->sess_der != NULL) {
        return 0;
    }
    ssize_t n = tern__tls_engine_session_export(tls, NULL, 0);
    if (n <= 0 || n > 0xffff) {
        return 0; /* nothing to keep */
    }
    uint8_t *p = secret_alloc(tls, (size_t)n + 2);
    if (p == NULL) {
        return TERN_ENOMEM;
    }
    if (tern__tls_engine_session_export(tls, p + 2, (size_t)n) != n) {
        secret_free(tls, p, (size_t)n + 2);
        return 0;
    }
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    tls->sess_der = p;
    return 0;
}
#endif

void tern__tls_forget_session(tern__tls *tls)
{
    if (tls->sess_der != NULL) {
        size_t n = (size_t)tls->sess_der[0] << 8 | tls->sess_der[1];
        secret_free(tls, tls->sess_der, n + 2);
        tls->sess_der = NULL;
    }
}

#if HIBERNATION
/* ---- when a connection may hibernate ---------------------------------------------------- */

/* Nothing of the connection would be lost and no event is owed: the handshake and every
 * decision about it are over, wolfSSL holds no plaintext and no part of a record (the record
 * tracker of tls_engine.c's io_recv is at a boundary). */
static bool idle(const tern__tls *tls)
{
    return tls->ssl != NULL && tls->hib == NULL && tls->handshake_done &&
           wolfSSL_is_init_finished(tls->ssl) && !tls->verify_pending && !tls->verify_waiting &&
           !tls->in_ssl_errors && tls->psk_state != TERN__PSK_STATE_WAITING &&
           !tls->psk_pending && !tls->psk_event_due && !tls->ticket_due && !tls->encrypted_due &&
           !tls->mode_due && tls->held.len == 0 && tls->rec_hdr_got == 0 &&
           tls->rec_body_left == 0 && wolfSSL_pending(tls->ssl) == 0 &&
           wolfSSL_get_shutdown(tls->ssl) == 0; /* no close_notify sent or received */
}

int tern__tls_engine_hibernate(tern__tls *tls)
{
    if (!idle(tls)) {
        return TERN_EBUSY;
    }
    Aes *aes = seal_aes();
    if (aes == NULL) {
        return TERN_E_INTERNAL;
    }
    uint8_t plain[EXPORT_MAX];
    unsigned int sz = 0;
    if (wolfSSL_tls_export(tls->ssl, NULL, &sz) != LENGTH_ONLY_E || sz > sizeof(plain)) {
        return TERN_E_INTERNAL; /* a build without the export, or a size this file does not expect */
    }
    sz = sizeof(plain);
    int rc = wolfSSL_tls_export(tls->ssl, plain, &sz);
    if (rc <= 0 || sz == 0 || sz > sizeof(plain)) {
        explicit_bzero(plain, sizeof(plain));
        return TERN_E_INTERNAL;
    }
    struct tern__hib *h = secret_alloc(tls, offsetof(struct tern__hib, data) + sz);
    if (h != NULL) {
        h->len = sz;
    }
    if (h == NULL || keep_session(tls) < 0) {
        hib_free(tls, h);
        explicit_bzero(plain, sz);
        return TERN_ENOMEM;
    }
    tern__tls_keep_names(tls); /* what the program may ask stays outside the blob */
    uint64_t nonce = atomic_fetch_add_explicit(&seal_counter, 1, memory_order_relaxed);
    memcpy(h->nonce, &nonce, sizeof(h->nonce));
    uint8_t iv[SEAL_IV], aad[7];
    seal_iv(h->nonce, iv);
    seal_aad(tls, h, aad);
    rc = wc_AesGcmEncrypt(aes, h->data, plain, sz, iv, sizeof(iv), h->tag, sizeof(h->tag), aad,
                          sizeof(aad));
    explicit_bzero(plain, sz);
    if (rc != 0) {
        hib_free(tls, h);
        return TERN_E_INTERNAL;
    }
    wolfSSL_free(tls->ssl);
    tls->ssl = NULL;
    tls->hib = h;
    return 0;
}

int tern__tls_engine_wake(tern__tls *tls)
{
    struct tern__hib *h = tls->hib;
    if (h == NULL) {
        /* awake; or its blob was refused before and nothing is left to go on with */
        return tls->ssl == NULL && tls->handshake_done ? TERN_E_INTERNAL : 0;
    }
    const tern_ssl_config *cfg = tern__tls_config(tls);
    Aes *aes = seal_aes();
    if (aes == NULL || h->len > EXPORT_MAX) {
        goto corrupt;
    }
    WOLFSSL *ssl = wolfSSL_new(tls->server ? cfg->server_ctx : cfg->client_ctx);
    if (ssl == NULL) {
        return TERN_ENOMEM; /* still hibernated: a later event may try again */
    }
    uint8_t plain[EXPORT_MAX], iv[SEAL_IV], aad[7];
    seal_iv(h->nonce, iv);
    seal_aad(tls, h, aad);
    int rc = wc_AesGcmDecrypt(aes, plain, h->data, h->len, iv, sizeof(iv), h->tag,
                              sizeof(h->tag), aad, sizeof(aad));
    if (rc == 0 && tls->version == TLS1_2_VERSION) {
        /* a version-flexible context makes TLS 1.3 objects; the import wants the blob's */
        rc = wolfSSL_SetVersion(ssl, WOLFSSL_TLSV1_2) == WOLFSSL_SUCCESS ? 0 : -1;
    }
    if (rc == 0) {
        wolfSSL_SetIOReadCtx(ssl, tls);
        wolfSSL_SetIOWriteCtx(ssl, tls);
        tern__tls_engine_wire(tls, ssl);
        rc = wolfSSL_tls_import(ssl, plain, h->len) > 0 ? 0 : -1;
    }
    explicit_bzero(plain, sizeof(plain));
    if (rc != 0) {
        wolfSSL_free(ssl);
        goto corrupt;
    }
    hib_free(tls, h);
    tls->hib = NULL;
    tls->ssl = ssl;
    return 0;

corrupt:
    hib_free(tls, h);
    tls->hib = NULL;
    return TERN_E_INTERNAL;
}

#else
int tern__tls_engine_hibernate(tern__tls *tls)
{
    (void)tls;
    return TERN_E_UNSUPPORTED;
}

int tern__tls_engine_wake(tern__tls *tls)
{
    return tls->hib == NULL && tls->ssl != NULL ? 0 : TERN_E_INTERNAL; /* never made here */
}
#endif

void tern__tls_engine_forget(tern__tls *tls)
{
    hib_free(tls, tls->hib);
    tls->hib = NULL;
}

uint8_t *tern__tls_engine_blob(tern__tls *tls, size_t *len)
{
    if (tls->hib == NULL) {
        return NULL;
    }
    *len = offsetof(struct tern__hib, data) - offsetof(struct tern__hib, nonce) + tls->hib->len;
    return tls->hib->nonce; /* the length stays outside: it sizes the allocation */
}

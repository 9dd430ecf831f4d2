/* SPDX-License-Identifier: MIT */
/*
 * Session ticket keys owned by tern (session.h), and wolfSSL's ticket-encryption callback.
 *
 * The set is an immutable array of keys behind a published pointer (published.h): every
 * reactor seals and opens tickets inside an epoch section, without a lock; a rotation (the
 * set's own thread, or tern_ticket_keys_rotate) or a file reload builds a new array, swaps it
 * in, waits for readers of the old one, zeroes and frees it.
 *
 * Ticket format, in wolfSSL's fields: key_name = the key's 16-byte name; iv = 12-byte nonce
 * (8 random bytes per thread + a 32-bit counter, so nonces never repeat under one key, even
 * across the servers sharing a key file) + the issue time (uint32, seconds, big-endian);
 * mac = the 16-byte Poly1305 tag, then 16 zero bytes. ChaCha20-Poly1305 seals the state with
 * key_name || iv as associated data, so neither the key name nor the time can be altered.
 */
#include "ssl_internal.h"

#include "keyfile.h"
#include "published.h"

#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define NAME_LEN WOLFSSL_TICKET_NAME_SZ /* 16 */
#define KEY_LEN 32
#define MAX_KEYS 16
#define MAX_TICKET 2048  /* wolfSSL's sealed state is a few hundred bytes */
#define CLOCK_SKEW_S 300 /* a ticket issued "in the future" by a peer server's clock */

typedef struct ticket_key {
    uint8_t name[NAME_LEN];
    uint8_t key[KEY_LEN];
    uint64_t retired; /* seconds since the epoch when it stopped sealing; 0: never sealed
                       * (from a file) or still the sealing key */
} ticket_key;

typedef struct key_set {
    unsigned n;
    uint64_t sealing_since; /* seconds since the epoch: when keys[0] began to seal */
    ticket_key keys[MAX_KEYS];
} key_set;

struct tern_ticket_keys {
    tern__published set; /* key_set * */
    uint32_t lifetime, rotate;
    bool external; /* keys from a file or tern_ticket_keys_set: no automatic rotation */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t lock; /* the rotation thread's sleep */
    pthread_cond_t cond;
    bool quit;
};

static void set_free(key_set *s)
{
    if (s != NULL) {
        explicit_bzero(s, sizeof(*s));
        free(s);
    }
}

static bool random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        b += got;
        n -= (size_t)got;
    }
    return true;
}

/* ---- rotation ---------------------------------------------------------------------------------- */

/* The next set: a new random sealing key, then the keys still within a lifetime. */
static void *rotated(void *arg, void *current)
{
    tern_ticket_keys *k = arg;
    const key_set *cur = current;
    uint64_t now = (uint64_t)time(NULL);
    key_set *next = calloc(1, sizeof(*next));

    if (next == NULL || !random_bytes(&next->keys[0], NAME_LEN + KEY_LEN)) {
        set_free(next);
        return current; /* nothing published */
    }
    next->n = 1;
    next->sealing_since = now;
    for (unsigned i = 0; cur != NULL && i < cur->n && next->n < MAX_KEYS; i++) {
        ticket_key key = cur->keys[i];
        if (i == 0 && key.retired == 0) {
            key.retired = now; /* the sealing key retires now */
        }
        if (key.retired != 0 && key.retired + k->lifetime < now) {
            continue; /* its last ticket has expired */
        }
        next->keys[next->n++] = key;
    }
    return next;
}

int tern_ticket_keys_rotate(tern_ticket_keys *k)
{
    if (k == NULL) {
        return TERN_EINVAL;
    }
    key_set *old = tern__published_update(&k->set, rotated, k);
    if (old == NULL) {
        return TERN_ENOMEM; /* rotated() could not make a key: the set in force stays */
    }
    set_free(old);
    return 0;
}

/* The rotation thread's: as rotated(), unless keys were given from outside meanwhile. Decided
 * under the writers' lock, which install() also takes to swap: a file or a fleet's set that
 * comes in while the thread wakes is never replaced by a random key. */
static void *rotated_automatic(void *arg, void *current)
{
    tern_ticket_keys *k = arg;
    pthread_mutex_lock(&k->lock);
    bool external = k->external;
    pthread_mutex_unlock(&k->lock);
    return external ? current : rotated(arg, current);
}

static void *rotation_main(void *arg)
{
    tern_ticket_keys *k = arg;

    pthread_mutex_lock(&k->lock);
    while (!k->quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += k->rotate;
        while (!k->quit && pthread_cond_timedwait(&k->cond, &k->lock, &until) == 0) {
        }
        if (k->quit) {
            break;
        }
        bool external = k->external;
        pthread_mutex_unlock(&k->lock);
        if (!external) {
            set_free(tern__published_update(&k->set, rotated_automatic, k));
        }
        pthread_mutex_lock(&k->lock);
    }
    pthread_mutex_unlock(&k->lock);
    return NULL;
}

tern_ticket_keys *tern_ticket_keys_new(uint32_t lifetime_s, uint32_t rotate_s)
{
    if (lifetime_s == 0) {
        lifetime_s = TERN_TICKET_LIFETIME_DEFAULT;
    }
    if (lifetime_s > 604800) {
        return NULL;
    }
    if (rotate_s == 0) {
        rotate_s = lifetime_s / 2 > 0 ? lifetime_s / 2 : 1;
    }
    tern_ticket_keys *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->lifetime = lifetime_s;
    k->rotate = rotate_s;
    pthread_mutex_init(&k->lock, NULL);
    pthread_cond_init(&k->cond, NULL);
    key_set *first = rotated(k, NULL);
    if (first == NULL || tern__published_init(&k->set, first) < 0) {
        set_free(first);
        pthread_cond_destroy(&k->cond);
        pthread_mutex_destroy(&k->lock);
        free(k);
        return NULL;
    }
    if (rotate_s != TERN_TICKET_ROTATE_NEVER) {
        /* made before a program blocks its signals, maybe: it must never receive one */
        k->thread_started = tern__thread_start_quiet(&k->thread, rotation_main, k) == 0;
        if (!k->thread_started) {
            tern_ticket_keys_free(k);
            return NULL;
        }
    }
    return k;
}

void tern_ticket_keys_free(tern_ticket_keys *k)
{
    if (k == NULL) {
        return;
    }
    if (k->thread_started) {
        pthread_mutex_lock(&k->lock);
        k->quit = true;
        pthread_cond_signal(&k->cond);
        pthread_mutex_unlock(&k->lock);
        pthread_join(k->thread, NULL);
    }
    set_free(tern__published_destroy(&k->set));
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

size_t tern_ticket_keys_count(tern_ticket_keys *k)
{
    void *v;
    tern__published_record *rec = k != NULL ? tern__published_enter(&k->set, &v) : NULL;
    if (rec == NULL) {
        return 0;
    }
    size_t n = v != NULL ? ((const key_set *)v)->n : 0;
    tern__published_leave(&k->set, rec);
    return n;
}

int64_t tern_ticket_keys_age(tern_ticket_keys *k)
{
    void *v;
    tern__published_record *rec = k != NULL ? tern__published_enter(&k->set, &v) : NULL;
    if (rec == NULL) {
        return -1;
    }
    int64_t since = v != NULL ? (int64_t)((const key_set *)v)->sealing_since : 0;
    tern__published_leave(&k->set, rec);
    int64_t age = (int64_t)time(NULL) - since;
    return age > 0 ? age : 0;
}

uint32_t tern_ticket_keys_lifetime(const tern_ticket_keys *k)
{
    return k != NULL ? k->lifetime : 0;
}

/* ---- keys given from outside: a key file, a fleet's store ------------------------------------ */

/* Adds the 48 bytes at @p raw (name, then key) to @p set. @return -1 (full), the index + 1 of
 * a key with the same name, or 0 (added). */
static int add_key(key_set *set, const uint8_t *raw)
{
    if (set->n == MAX_KEYS) {
        return -1;
    }
    for (unsigned i = 0; i < set->n; i++) {
        if (memcmp(set->keys[i].name, raw, NAME_LEN) == 0) {
            return (int)i + 1;
        }
    }
    ticket_key *key = &set->keys[set->n++];
    memcpy(key->name, raw, NAME_LEN);
    memcpy(key->key, raw + NAME_LEN, KEY_LEN);
    key->retired = 0;
    return 0;
}

/* Makes @p set (keys[0] seals) the set in force and stops the automatic rotation: whoever gave
 * the keys rotates from now on. A sealing key equal to the one in force keeps its age. */
static void install(tern_ticket_keys *k, key_set *set)
{
    void *v;
    tern__published_record *rec = tern__published_enter(&k->set, &v);
    const key_set *cur = v;
    set->sealing_since = (uint64_t)time(NULL);
    if (rec != NULL && cur != NULL && cur->n > 0 &&
        memcmp(cur->keys[0].name, set->keys[0].name, NAME_LEN) == 0 &&
        memcmp(cur->keys[0].key, set->keys[0].key, KEY_LEN) == 0) {
        set->sealing_since = cur->sealing_since;
    }
    if (rec != NULL) {
        tern__published_leave(&k->set, rec);
    }
    pthread_mutex_lock(&k->lock);
    k->external = true;
    pthread_mutex_unlock(&k->lock);
    set_free(tern__published_swap(&k->set, set));
}

int tern_ticket_keys_set(tern_ticket_keys *k, const uint8_t *keys, size_t n, size_t sealing)
{
    if (k == NULL || keys == NULL || n == 0 || n > MAX_KEYS || sealing >= n) {
        return TERN_EINVAL;
    }
    key_set *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        return TERN_ENOMEM;
    }
    int rc = add_key(set, keys + sealing * (NAME_LEN + KEY_LEN));
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i != sealing) {
            rc = add_key(set, keys + i * (NAME_LEN + KEY_LEN));
        }
    }
    if (rc != 0) {
        set_free(set); /* two keys with one name: a ticket could not tell them apart */
        return TERN_EINVAL;
    }
    install(k, set);
    return 0;
}

/* The longest line a key file may have (a key is 96 digits; room for comments). */
#define MAX_LINE 510

int tern_ticket_keys_load_file(tern_ticket_keys *k, const char *path, char *err, size_t err_len)
{
    tern__keyfile kf;
    char *line, *p;
    key_set *set = NULL;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (k == NULL || path == NULL) {
        return TERN_EINVAL;
    }
    if ((set = calloc(1, sizeof(*set))) == NULL) {
        return TERN_ENOMEM;
    }
    int rc = tern__keyfile_open(&kf, path, MAX_LINE, false, err, err_len);
    while (rc == 0) {
        int got = tern__keyfile_next(&kf, &line, &p);
        if (got <= 0) {
            rc = got; /* 0 at the end */
            break;
        }
        if (strlen(p) != 2 * (NAME_LEN + KEY_LEN)) {
            rc = tern__keyfile_fail_line(&kf,
                                         "expected %d hex digits (openssl rand -hex %d), found "
                                         "%zu characters",
                                         2 * (NAME_LEN + KEY_LEN), NAME_LEN + KEY_LEN, strlen(p));
            break;
        }
        uint8_t raw[NAME_LEN + KEY_LEN];
        long bad = tern__hex_decode(p, raw, sizeof(raw));
        if (bad >= 0) {
            rc = tern__keyfile_fail_line(&kf, "not a hex digit at column %zu",
                                         (size_t)(p - line) + (size_t)bad + 1);
            break;
        }
        int added = add_key(set, raw);
        explicit_bzero(raw, sizeof(raw));
        if (added < 0) {
            rc = tern__keyfile_fail_line(&kf, "more than %d keys", MAX_KEYS);
        } else if (added > 0) {
            rc = tern__keyfile_fail_line(&kf, "the same key name as line of key %d", added);
        }
    }
    if (rc == 0 && set->n == 0) {
        rc = tern__keyfile_fail(&kf, "no key");
    }
    tern__keyfile_close(&kf, rc == 0);
    if (rc == 0) {
        install(k, set); /* the file's writer rotates from now on */
        return 0;
    }
    set_free(set);
    return rc;
}

/* ---- wolfSSL's ticket callback ------------------------------------------------------------------ */

static _Thread_local struct {
    bool ready;
    uint8_t prefix[8];
    uint32_t counter;
} nonce_state;

static bool next_nonce(uint8_t iv[12])
{
    if (!nonce_state.ready || nonce_state.counter == UINT32_MAX) {
        if (!random_bytes(nonce_state.prefix, sizeof(nonce_state.prefix))) {
            return false;
        }
        nonce_state.counter = 0;
        nonce_state.ready = true;
    }
    uint32_t c = nonce_state.counter++;
    memcpy(iv, nonce_state.prefix, 8);
    iv[8] = (uint8_t)(c >> 24);
    iv[9] = (uint8_t)(c >> 16);
    iv[10] = (uint8_t)(c >> 8);
    iv[11] = (uint8_t)c;
    return true;
}

static int seal(const key_set *set, unsigned char name[NAME_LEN], unsigned char iv[16],
                unsigned char mac[32], unsigned char *ticket, int len, uint32_t now)
{
    const ticket_key *key = &set->keys[0];
    uint8_t aad[NAME_LEN + 16], out[MAX_TICKET], tag[16];

    if (!next_nonce(iv)) {
        return WOLFSSL_TICKET_RET_FATAL;
    }
    iv[12] = (uint8_t)(now >> 24);
    iv[13] = (uint8_t)(now >> 16);
    iv[14] = (uint8_t)(now >> 8);
    iv[15] = (uint8_t)now;
    memcpy(name, key->name, NAME_LEN);
    memcpy(aad, name, NAME_LEN);
    memcpy(aad + NAME_LEN, iv, 16);
    if (wc_ChaCha20Poly1305_Encrypt(key->key, iv, aad, sizeof(aad), ticket, (word32)len, out,
                                    tag) != 0) {
        return WOLFSSL_TICKET_RET_FATAL;
    }
    memcpy(ticket, out, (size_t)len);
    memset(mac, 0, 32);
    memcpy(mac, tag, sizeof(tag));
    explicit_bzero(out, (size_t)len);
    return WOLFSSL_TICKET_RET_OK;
}

static int open_ticket(const key_set *set, const unsigned char name[NAME_LEN],
                       const unsigned char iv[16], const unsigned char mac[32],
                       unsigned char *ticket, int len, uint32_t now, uint32_t lifetime)
{
    static const uint8_t zeros[16];
    unsigned i = 0;
    uint8_t aad[NAME_LEN + 16], out[MAX_TICKET];

    while (i < set->n && memcmp(set->keys[i].name, name, NAME_LEN) != 0) {
        i++;
    }
    if (i == set->n) {
        return WOLFSSL_TICKET_RET_REJECT; /* a key we never had, or one dropped: full handshake */
    }
    uint32_t issued = (uint32_t)iv[12] << 24 | (uint32_t)iv[13] << 16 | (uint32_t)iv[14] << 8 |
                      iv[15];
    if (issued > now + CLOCK_SKEW_S || (issued <= now && now - issued > lifetime)) {
        return WOLFSSL_TICKET_RET_REJECT; /* expired (or from a clock far ahead) */
    }
    if (memcmp(mac + 16, zeros, sizeof(zeros)) != 0) {
        return WOLFSSL_TICKET_RET_REJECT;
    }
    memcpy(aad, name, NAME_LEN);
    memcpy(aad + NAME_LEN, iv, 16);
    if (wc_ChaCha20Poly1305_Decrypt(set->keys[i].key, iv, aad, sizeof(aad), ticket, (word32)len,
                                    mac, out) != 0) {
        return WOLFSSL_TICKET_RET_REJECT; /* altered, or not ours */
    }
    memcpy(ticket, out, (size_t)len);
    explicit_bzero(out, (size_t)len);
    /* sealed with an older key: resume. (wolfSSL 5.7.2 fails TLS 1.3 resumptions answered
     * with RET_CREATE; its TLS 1.3 server sends new tickets, sealed with the current key,
     * after every handshake anyway.) */
    return WOLFSSL_TICKET_RET_OK;
}

static int ticket_cb(WOLFSSL *ssl, unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                     unsigned char mac[WOLFSSL_TICKET_MAC_SZ], int enc, unsigned char *ticket,
                     int in_len, int *out_len, void *ctx)
{
    tern_ticket_keys *k = ctx;
    void *v;
    int rc;

    (void)ssl;
    if (in_len <= 0 || in_len > MAX_TICKET) {
        return enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
    }
    tern__published_record *rec = tern__published_enter(&k->set, &v);
    if (rec == NULL || v == NULL) {
        if (rec != NULL) {
            tern__published_leave(&k->set, rec);
        }
        return enc ? WOLFSSL_TICKET_RET_FATAL : WOLFSSL_TICKET_RET_REJECT;
    }
    uint32_t now = (uint32_t)time(NULL);
    rc = enc ? seal(v, name, iv, mac, ticket, in_len, now)
             : open_ticket(v, name, iv, mac, ticket, in_len, now, k->lifetime);
    tern__published_leave(&k->set, rec);
    if (rc == WOLFSSL_TICKET_RET_OK || rc == WOLFSSL_TICKET_RET_CREATE) {
        *out_len = in_len;
    }
    return rc;
}

/* ---- configuration ------------------------------------------------------------------------------ */

static int check_setup(tern_ssl_config *cfg)
{
    if (cfg == NULL) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    return 0;
}

int tern_ssl_config_set_ticket_keys(tern_ssl_config *cfg, tern_ticket_keys *k)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (k == NULL) {
        snprintf(cfg->errstr, sizeof(cfg->errstr),
                 "ticket keys: build a new configuration to go back to wolfSSL's own key");
        return TERN_EINVAL;
    }
    if (wolfSSL_CTX_set_TicketEncCb(cfg->server_ctx, ticket_cb) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketEncCtx(cfg->server_ctx, k) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_TicketHint(cfg->server_ctx, (int)k->lifetime) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_set_timeout(cfg->server_ctx, k->lifetime) != WOLFSSL_SUCCESS) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "ticket keys: the TLS library refused them");
        return TERN_E_UNSUPPORTED;
    }
    return 0;
}

int tern_ssl_config_set_session_tickets(tern_ssl_config *cfg, unsigned tls13_count, bool tls12)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    if (tls13_count > 16) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "session tickets: %u is over 16",
                 tls13_count);
        return TERN_EINVAL;
    }
    if (wolfSSL_CTX_set_num_tickets(cfg->server_ctx, tls13_count) != WOLFSSL_SUCCESS) {
        return TERN_E_UNSUPPORTED;
    }
    if (!tls12) {
        wolfSSL_CTX_NoTicketTLSv12(cfg->server_ctx);
    }
    return 0;
}

int tern_ssl_config_set_session_cache(tern_ssl_config *cfg, bool on)
{
    int rc = check_setup(cfg);
    if (rc < 0) {
        return rc;
    }
    cfg->session_cache = on; /* applied at the first freeze (tern__ssl_config_freeze) */
    return 0;
}

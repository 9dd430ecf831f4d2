/* SPDX-License-Identifier: MIT */
/*
 * Client sessions (session.h): export/import as bytes (wolfSSL's DER form of a session), the
 * `new_session_ticket` event, and the per-peer store that offers a peer's last session on
 * the next connect. Touched on the socket's reactor; the built-in store is shared by the
 * reactors of every socket using the configuration, behind a mutex taken once per connect
 * and once per ticket (never per record).
 */
#include "tls_engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SESSION 8192 /* bytes of one exported session */

/* ---- the built-in store: peer -> bytes, oldest stored first out ------------------------------- */

typedef struct entry {
    struct entry *next; /* most recently stored first */
    size_t len;
    char peer[TERN__PEER_KEY];
    uint8_t *data;
} entry;

struct tern__client_sessions {
    tern_session_store_ops ops; /* user's, or the built-in one below */
    void *ctx;
    pthread_mutex_t lock;
    size_t capacity, count;
    entry *head;
};

static void entry_free(entry *e)
{
    explicit_bzero(e->data, e->len);
    free(e->data);
    free(e);
}

static void builtin_forget(struct tern__client_sessions *cs, const char *peer)
{
    entry *gone = NULL;
    pthread_mutex_lock(&cs->lock);
    for (entry **p = &cs->head; *p != NULL; p = &(*p)->next) {
        if (strcmp((*p)->peer, peer) == 0) {
            gone = *p;
            *p = gone->next;
            cs->count--;
            break;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    if (gone != NULL) {
        entry_free(gone);
    }
}

static size_t builtin_get(void *ctx, const char *peer, void *buf, size_t len)
{
    struct tern__client_sessions *cs = ctx;
    size_t n = 0;
    pthread_mutex_lock(&cs->lock);
    for (entry *e = cs->head; e != NULL; e = e->next) {
        if (strcmp(e->peer, peer) == 0) {
            n = e->len;
            if (n <= len) {
                memcpy(buf, e->data, n);
            }
            break;
        }
    }
    pthread_mutex_unlock(&cs->lock);
    return n;
}

static void builtin_put(void *ctx, const char *peer, const void *data, size_t len)
{
    struct tern__client_sessions *cs = ctx;
    if (len == 0) {
        builtin_forget(cs, peer);
        return;
    }
    entry *fresh = calloc(1, sizeof(*fresh));
    if (fresh == NULL || (fresh->data = malloc(len)) == NULL) {
        free(fresh);
        return; /* no memory: the next connect is a full handshake */
    }
    memcpy(fresh->data, data, len);
    fresh->len = len;
    snprintf(fresh->peer, sizeof(fresh->peer), "%s", peer);
    pthread_mutex_lock(&cs->lock);
    entry **p = &cs->head;
    while (*p != NULL && strcmp((*p)->peer, peer) != 0) {
        p = &(*p)->next;
    }
    entry *old = *p;
    if (old != NULL) {
        *p = old->next;
        cs->count--;
    }
    fresh->next = cs->head;
    cs->head = fresh;
    cs->count++;
    entry *evicted = NULL;
    if (cs->count > cs->capacity) { /* drop the oldest: the last in the list */
        p = &cs->head;
        while ((*p)->next != NULL) {
            p = &(*p)->next;
        }
        evicted = *p;
        *p = NULL;
        cs->count--;
    }
    pthread_mutex_unlock(&cs->lock);
    if (old != NULL) {
        entry_free(old);
    }
    if (evicted != NULL) {
        entry_free(evicted);
    }
}

void tern__client_sessions_free(struct tern__client_sessions *cs)
{
    if (cs == NULL) {
        return;
    }
    while (cs->head != NULL) {
        entry *next = cs->head->next;
        entry_free(cs->head);
        cs->head = next;
    }
    pthread_mutex_destroy(&cs->lock);
    free(cs);
}

int tern_ssl_config_set_client_sessions(tern_ssl_config *cfg, size_t capacity,
                                        const tern_session_store_ops *ops, void *ctx)
{
    if (cfg == NULL || (ops != NULL && (ops->get == NULL || ops->put == NULL))) {
        return TERN_EINVAL;
    }
    if (atomic_load(&cfg->base.frozen)) {
        snprintf(cfg->errstr, sizeof(cfg->errstr), "the configuration is in use (frozen)");
        return TERN_EBUSY;
    }
    tern__client_sessions_free(cfg->client_sessions);
    cfg->client_sessions = NULL;
    if (ops == NULL && capacity == 0) {
        return 0; /* off */
    }
    struct tern__client_sessions *cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return TERN_ENOMEM;
    }
    pthread_mutex_init(&cs->lock, NULL);
    if (ops != NULL) {
        cs->ops = *ops;
        cs->ctx = ctx;
    } else {
        cs->ops.get = builtin_get;
        cs->ops.put = builtin_put;
        cs->ctx = cs;
        cs->capacity = capacity;
    }
    cfg->client_sessions = cs;
    return 0;
}

/* ---- a socket's session ------------------------------------------------------------------------- */

typedef struct tern__offered {
    size_t len;
    uint8_t data[];
} offered;

void tern__offered_free(offered *o)
{
    if (o != NULL) {
        explicit_bzero(o->data, o->len);
        free(o);
    }
}

/* "host:port" of a client socket, or "" when it has no name to key on. */
static const char *peer_key(const tern_socket *s, char *buf, size_t len)
{
    const tern__tls *tls = tern__tls_of(s);
    uint16_t port = tern__socket_port(s);
    if (tls == NULL || tls->peer_name == NULL || port == 0) {
        return "";
    }
    snprintf(buf, len, "%s:%u", tls->peer_name, (unsigned)port);
    return buf;
}

/* Offers @p data on @p tls. false: not a session wolfSSL can read. */
bool tern__session_offer(tern__tls *tls, const uint8_t *data, size_t len)
{
    const unsigned char *p = data;
    WOLFSSL_SESSION *sess = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
    if (sess == NULL) {
        return false;
    }
    int rc = wolfSSL_set_session(tls->ssl, sess);
    wolfSSL_SESSION_free(sess);
    return rc == WOLFSSL_SUCCESS;
}

int tern__session_on_ticket(WOLFSSL *ssl, const unsigned char *ticket, int len, void *ctx)
{
    tern__tls *tls = ctx;
    (void)ssl;
    (void)ticket;
    (void)len;
    if (tls != NULL) {
        tls->ticket_due = true; /* the event fires once wolfSSL has stored the session */
        tls->got_ticket = true;
        tern__tls_forget_session(tls); /* the TLS object's session is the newer one now */
    }
    return 0;
}

void tern__session_setup(tern_socket *s, tern__tls *tls, const tern_ssl_config *cfg, bool server)
{
    if (server) {
        return;
    }
    /* the ticket callback and the key shares are the engine's (tern__tls_engine_setup) */
    offered *o = tls->session;
    if (o != NULL) {
        tls->offered_session = tern__session_offer(tls, o->data, o->len); /* checked when it was set */
        tern__offered_free(o);
        tls->session = NULL;
        return;
    }
    struct tern__client_sessions *cs = cfg->client_sessions;
    char key[TERN__PEER_KEY];
    const char *peer = peer_key(s, key, sizeof(key));
    if (cs != NULL && peer[0] != '\0') {
        uint8_t buf[MAX_SESSION];
        size_t n = cs->ops.get(cs->ctx, peer, buf, sizeof(buf));
        if (n > 0 && n <= sizeof(buf)) {
            tls->offered_session = tern__session_offer(tls, buf, n);
        }
        explicit_bzero(buf, n < sizeof(buf) ? n : sizeof(buf));
    }
}

void tern__session_deliver(tern_socket *s, tern__tls *tls)
{
    tls->ticket_due = false;
    const tern_ssl_config *cfg = tern__tls_config(tls);
    struct tern__client_sessions *cs = cfg != NULL ? cfg->client_sessions : NULL;
    char key[TERN__PEER_KEY];
    const char *peer = peer_key(s, key, sizeof(key));
    if (cs != NULL && peer[0] != '\0') {
        uint8_t buf[MAX_SESSION];
        ssize_t n = tern_socket_session_export(s, buf, sizeof(buf));
        if (n > 0 && (size_t)n <= sizeof(buf)) {
            cs->ops.put(cs->ctx, peer, buf, (size_t)n);
            explicit_bzero(buf, (size_t)n);
        }
    }
    const tern_socket_events *ev = tern__socket_events(s);
    if (ev != NULL && ev->new_session_ticket != NULL) {
        ev->new_session_ticket(s, tern_socket_user(s));
    }
}

bool tern__session_failed(tern_socket *s, tern__tls *tls)
{
    if (tls->server || !tls->offered_session) {
        return false;
    }
    const tern_ssl_config *cfg = tern__tls_config(tls);
    struct tern__client_sessions *cs = cfg != NULL ? cfg->client_sessions : NULL;
    char key[TERN__PEER_KEY];
    const char *peer = peer_key(s, key, sizeof(key));
    if (cs != NULL && peer[0] != '\0') {
        cs->ops.put(cs->ctx, peer, NULL, 0); /* the next connect is a full handshake */
    }
    return true;
}

bool tern_socket_session_reused(const tern_socket *s)
{
    TERN_ASSERT_OWNER(s);
    const tern__tls *tls = tern__tls_of(s);
    return tls != NULL && tern__socket_layered(s) && tls->handshake_done && tls->reused;
}

ssize_t tern_socket_session_export(tern_socket *s, void *buf, size_t len)
{
    TERN_ASSERT_OWNER(s);
    tern__tls *tls = tern__tls_of(s);
    if (s == NULL || (buf == NULL && len > 0)) {
        return TERN_EINVAL;
    }
    if (tls == NULL || !tern__socket_layered(s) || !tls->handshake_done) {
        return TERN_ENOTCONN;
    }
    if (!tern__tls_awake(s)) {
        return tern_socket_error(s);
    }
    return tern__tls_engine_session_export(tls, buf, len);
}

int tern_socket_set_session(tern_socket *s, const void *data, size_t len)
{
    TERN_ASSERT_OWNER(s);
    if (s == NULL || data == NULL || len == 0 || len > MAX_SESSION) {
        return TERN_EINVAL;
    }
    tern__tls *tls = tern__tls_of(s);
    if (tern__tls_started(tls)) {
        return TERN_EBUSY;
    }
    const unsigned char *p = data;
    WOLFSSL_SESSION *check = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
    if (check == NULL) {
        return TERN_EINVAL;
    }
    wolfSSL_SESSION_free(check);
    offered *o = malloc(sizeof(*o) + len);
    if (o == NULL) {
        return TERN_ENOMEM;
    }
    o->len = len;
    memcpy(o->data, data, len);
    if ((tls = tern__tls_get(s)) == NULL) {
        tern__offered_free(o);
        return TERN_ENOMEM;
    }
    tern__offered_free(tls->session);
    tls->session = o;
    return 0;
}

ssize_t tern__tls_engine_session_export(tern__tls *tls, void *buf, size_t len)
{
    if (!tls->handshake_done) {
        return TERN_ENOTCONN;
    }
    if (tls->sess_der != NULL) {
        /* kept as the connection hibernated: awake again, its TLS object has no ticket */
        size_t n = (size_t)tls->sess_der[0] << 8 | tls->sess_der[1];
        if (n <= len) {
            memcpy(buf, tls->sess_der + 2, n);
        }
        return (ssize_t)n;
    }
    if (tls->ssl == NULL) {
        return TERN_ENOTCONN; /* hibernated without a session worth keeping */
    }
    WOLFSSL_SESSION *sess = wolfSSL_get1_session(tls->ssl);
    if (sess == NULL) {
        return TERN_ENOTCONN;
    }
    int need = wolfSSL_i2d_SSL_SESSION(sess, NULL);
    if (need <= 0) {
        wolfSSL_SESSION_free(sess);
        return TERN_ENOTCONN;
    }
    if ((size_t)need <= len) {
        unsigned char *p = buf;
        if (wolfSSL_i2d_SSL_SESSION(sess, &p) != need) {
            wolfSSL_SESSION_free(sess);
            return TERN_ENOTCONN;
        }
    }
    wolfSSL_SESSION_free(sess);
    return need;
}

/* SPDX-License-Identifier: MIT */
/*
 * ssl/'s private declarations: the only header that includes wolfSSL. Builds on runtime/
 * through its seam (runtime/seam.h: the socket as bytes, states and events); nothing in
 * runtime/ includes this.
 */
#ifndef TERN_SSL_INTERNAL_H
#define TERN_SSL_INTERNAL_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <pthread.h>

#include "../runtime/seam.h"

#define TERN__SSL_ERRSTR 256

#ifdef TERN_WOLFSSL_PATCHED
/* wolfSSL's RNG provider (patch 0300): the calling reactor's generator, made on first use;
 * NULL off the reactors (the object then makes its own). socket_tls.c */
WC_RNG *tern__tls_reactor_rng(WOLFSSL_CTX *ctx);
#endif
#define TERN__PEER_KEY 300 /* "host:port" of a client session */

/* A TLS configuration: the settings, and one wolfSSL context per role built from them.
 * Frozen (read-only, shared by every reactor) once a server or a socket uses it. */
struct tern_ssl_config {
    tern__object base; /* first: runtime/ holds references through it */
    WOLFSSL_CTX *server_ctx;
    WOLFSSL_CTX *client_ctx;
    enum tern_verify_mode verify_mode;
    int verify_depth;
    uint32_t handshake_timeout_ms;
    bool has_cert, has_key, has_ca;
    bool ciphers_have_tls13; /* the cipher list names a TLS 1.3 suite */
    int max_version;         /* wolfSSL's TLS1_x_VERSION */
    int min_version;         /* ... and the lower end (tern_socket_protocol) */
    uint16_t key_shares[2];  /* clients, TLS 1.3: the key shares to send (groups.c) ... */
    int nkey_shares;         /* ... 0: wolfSSL's one share for the first group */
    char *alpn; /* comma-separated, as given */
    /* the certificate and key as loaded, for SNI selection per connection */
    unsigned char *cert_buf, *key_der;
    size_t cert_len, key_der_len;
    int cert_fmt;
    tern_certificate *local_cert; /* the leaf of cert_buf, for tern_socket_local_certificate */
    int ocsp_policy;              /* enum tern_ocsp_policy, clients */
    bool psk_enabled;
    char *psk_hint;
    tern_psk_lookup_fn psk_lookup; /* a store on the runtime's PSK workers, or NULL */
    void *psk_lookup_ctx;
    uint32_t psk_lookup_timeout_ms; /* 0: only the handshake deadline bounds the wait */
    uint32_t psk_max_pending;       /* handshakes waiting for an answer, per reactor */
    uint8_t psk13_order[6];         /* TLS 1.3 suites {0x13, n} of the cipher list, by
                                     * preference: the n, 0-terminated (tern__psk_ciphers) */
    struct tern__client_sessions *client_sessions; /* clients: sessions by peer, or NULL */
    unsigned char *ocsp_response; /* DER, stapled by servers */
    size_t ocsp_response_len;
    struct tern__sni_entry {
        char *name;
        tern_ssl_config *cfg;
    } *sni;
    size_t nsni;
    bool session_cache;            /* servers: wolfSSL's session-id cache (off by default) */
    _Atomic bool cache_mode_set;   /* ... applied to server_ctx at the first freeze */
    pthread_mutex_t cache_lock;
    char errstr[TERN__SSL_ERRSTR];
};

/* A client's PSK (tern_socket_set_psk) and a session to offer (tern_socket_set_session). */
struct tern__client_psk;
struct tern__offered;

/* Where a TLS engine's records go (tls_engine.h): @len bytes appended, 0 or a negative code. */
typedef int (*tern__tls_out_fn)(void *ctx, const void *data, size_t len);

/* A socket's TLS state: the layer of runtime/seam.h, made when the socket first needs it (a
 * setter, or the handshake) and freed with the socket. The settings part lives as long as the
 * socket; the connection part, from `ssl` on, is zeroed when a new connection starts on it
 * (tern__tls_reset). */
typedef struct tern__tls {
    /* settings given to the socket, kept across connections */
    tern_socket *sock;
    tern__object *cfg;      /* tern_socket_set_ssl_config, or at the handshake the server's */
    char *peer_name;        /* a client's SNI + verify name */
    bool has_verify_mode;   /* tern_socket_set_peer_verify_mode: this, not the config's */
    bool has_verify_depth;  /* tern_socket_set_peer_verify_depth: this, not the config's */
    enum tern_verify_mode verify_mode;
    int verify_depth;
    struct tern__client_psk *psk;  /* a client's PSK, or NULL */
    struct tern__offered *session; /* a session to offer, taken by the next handshake */
    bool ignore_all_set;    /* tern_socket_ignore_all_ssl_errors */
    tern__tls_out_fn out;   /* the engine's records go here (tls_engine.h) */
    void *out_ctx;
    bool verify_deferred;   /* certificate problems wait for the application's answer */
    _Atomic int verify_wait; /* a deferred ssl_errors decision (enum tern__verify_wait): the
                              * one field another thread touches (tern_socket_resume) */
    bool verify_held;       /* the socket is held (not freed) until the decision's task ran */
    /* one connection (from here to the end: zeroed by tern__tls_reset) */
    WOLFSSL *ssl;
    uint64_t hs_start_us;   /* when the handshake started (tern__tls_now_us) */
    bool encrypted;         /* `encrypted` is due or delivered: records flow both ways */
    bool encrypted_due;     /* the event is not delivered yet */
    bool mode_due;          /* mode_changed is not delivered yet */
    tern__bufq held;        /* plaintext written before `encrypted` */
    bool server;
    bool handshake_done;
    bool verify_failed;
    bool sent_any;          /* wolfSSL wrote records: alerts are its business then */
    bool ignore_all;        /* tern_socket_ignore_all_ssl_errors */
    bool verify_pending;    /* handshake done; ssl_errors not yet answered */
    bool in_ssl_errors;     /* the ssl_errors event runs: tern_socket_defer_ssl_errors may */
    bool verify_waiting;    /* ssl_errors deferred: the handshake waits for tern_socket_resume */
    bool must_verify;       /* VERIFY_PEER: errors close unless ignored */
    bool peer_loaded;
    char *alpn;             /* cached on first query (idle connections hold no copies) */
    char *sni;
    const char *verify_error; /* why a verification was refused during the handshake: the
                               * text of an error in tls->errors, or a static string */
    tern_ssl_error_list *errors;   /* found during the handshake */
    tern_ssl_error_list *expected; /* tern_socket_ignore_ssl_errors */
    tern_certificate *peer;
    const tern_ssl_config *sni_cfg; /* the configuration SNI chose, if another one */
    tern_certificate **chain; /* by depth, collected by the verify callback */
    size_t nchain;
    unsigned char *ocsp_resp; /* client: the stapled OCSP response as received (ocsp.c) */
    size_t ocsp_resp_len;
    bool ocsp_seen;           /* ... wolfSSL gave it to tern's status callback */
    bool no_cert_checked;     /* a VERIFY_PEER server chose how a missing certificate fails */
    /* PSK, servers: the identity is read from the stream before wolfSSL sees it */
    struct tern__psk_parser *psk_parser; /* with the key the answer gave (psk.c's psk_hs) */
    uint64_t psk_fed;         /* stream bytes given to the parser */
    uint64_t wolf_consumed;   /* stream bytes wolfSSL has read */
    int psk_state;            /* enum tern__psk_state */
    bool psk_event_due;
    struct tern_psk_authenticator *psk_auth;
    uint64_t psk_saved_deadline; /* s->hs_deadline_ms while the lookup deadline stands in */
    bool psk_deadline_set;       /* the lookup timeout is the socket's deadline now */
    bool psk_pending;            /* counted in the reactor's psk_pending gauge */
    int psk_reason;              /* why it was rejected: enum tern__psk_reason */
    bool psk_hello;              /* TLS 1.3: the identity came in the ClientHello */
    uint8_t psk_offered13;       /* its TLS 1.3 suites (psk_parser's tls13_suites) */
    uint8_t psk_binder_len;      /* the first identity's binder length (its hash) */
    uint8_t psk_suite;           /* TLS 1.3: the suite {0x13, n} picked for the key; 0 none */
    bool psk_ask;                /* client: psk_authentication_required gives the key */
    bool psk_ask_first;          /* ... before the ClientHello (TLS 1.3 possible: no hint) */
    bool psk_from_event;         /* ... and tls->psk is its answer (freed with the connection) */
    struct tern__psk_hint_scan *hint_scan; /* ... after the server's hint (TLS 1.2 only) */
    bool ticket_due;             /* client: a session ticket arrived, event not yet fired */
    bool offered_session;        /* client: a session was offered in the ClientHello */
    /* the engine's input window during one call (tls_engine.c) */
    const uint8_t *in;
    size_t in_len, in_used;
    int wolf_err;                /* wolfSSL's error of the last failed engine call */
    const char *psk_error;       /* static: why the PSK parser refused the stream */
    /* where wolfSSL is in the record stream (io_recv): a record's header bytes read, its body
     * bytes still to come; both 0 at a record boundary (no partial record inside wolfSSL,
     * which reads exactly the header, then exactly the body) */
    uint8_t rec_hdr[5];
    uint8_t rec_hdr_got;
    uint16_t rec_body_left;
    /* hibernation (hibernate.c): while hibernated, ssl is NULL and hib holds the sealed state;
     * what the program may ask stays here (peer, chain, sni, alpn, and these two) */
    struct tern__hib *hib;
    const char *cipher_name;     /* wolfSSL's static name of the suite (at the handshake's end) */
    int version;                 /* wolfSSL_version() of the connection (at the handshake's end) */
    bool reused;                 /* a session was resumed (at the handshake's end) */
    bool got_ticket;             /* client: a session ticket arrived on this connection */
    uint8_t *sess_der;           /* client: the session with its ticket, exported as it
                                  * hibernated (a woken connection's TLS object has none): two
                                  * length bytes, then wolfSSL's DER; until a newer ticket */
} tern__tls;

/* The socket's TLS state, or NULL. */
static inline tern__tls *tern__tls_of(const tern_socket *s)
{
    return s != NULL ? (tern__tls *)tern__socket_layer(s) : NULL;
}
/* A query needs the TLS library's object, which a hibernated connection gave up: woken here
 * (the answers kept outside the blob need no wake-up). false: the wake-up failed and the
 * socket with it (its error says why). Owner thread. */
bool tern__tls_awake(const tern_socket *s);
/* The negotiated ALPN protocol and (servers) SNI name copied into tls->alpn / tls->sni, if
 * not yet: what queries answer, and what a hibernated connection keeps. Freed with
 * tern__tls_free_name. */
void tern__tls_keep_names(tern__tls *tls);
void tern__tls_free_name(tern__tls *tls, char *name);
/* hibernate.c: a client's kept session (tls->sess_der) is wiped and freed: a newer ticket
 * came, or the connection ends. */
void tern__tls_forget_session(tern__tls *tls);
/* The socket's TLS state, made if it has none yet (NULL: out of memory). */
tern__tls *tern__tls_get(tern_socket *s);
/* The configuration the socket's handshakes use (NULL: none). */
static inline tern_ssl_config *tern__tls_config(const tern__tls *tls)
{
    return tls != NULL ? (tern_ssl_config *)tls->cfg : NULL;
}
/* A TLS connection runs or ran on the socket (setters of the next handshake: TERN_EBUSY). */
static inline bool tern__tls_started(const tern__tls *tls)
{
    return tls != NULL && (tls->ssl != NULL || tls->hib != NULL);
}
/* The peer verify mode / depth of @tls's next handshake: the socket's own (set with
 * tern_socket_set_peer_verify_mode/_depth), else @cfg's. */
static inline enum tern_verify_mode tern__tls_verify_mode(const tern__tls *tls,
                                                          const tern_ssl_config *cfg)
{
    return tls->has_verify_mode ? tls->verify_mode : cfg->verify_mode;
}
static inline int tern__tls_verify_depth(const tern__tls *tls, const tern_ssl_config *cfg)
{
    return tls->has_verify_depth ? tls->verify_depth : cfg->verify_depth;
}
/* A new reference to the process default configuration (tern_ssl_config_set_default), or
 * NULL. Any thread. */
tern_ssl_config *tern__ssl_config_default_ref(void);
/* Runs the handshake / decrypts with what the socket's raw input holds (after a PSK answer). */
void tern__tls_input(tern_socket *s);
/* The handshake completed: `encrypted` fired or is due, queued plaintext goes out. */
void tern__tls_encrypted(tern_socket *s, tern__tls *tls);
/* A deferred ssl_errors decision (verify_defer.c): tls->verify_wait, written by the owner
 * (defer, cancel, the task) and by the deciding thread (resume: DEFERRED/CANCELLED -> a
 * decision, by compare-and-swap, so that one call wins). */
enum tern__verify_wait {
    TERN__VERIFY_WAIT_NONE,      /* nothing deferred */
    TERN__VERIFY_WAIT_DEFERRED,  /* deferred in ssl_errors: the handshake waits */
    TERN__VERIFY_WAIT_CANCELLED, /* the connection ended first: resume only releases */
    TERN__VERIFY_WAIT_IGNORE,    /* resume(true) was posted */
    TERN__VERIFY_WAIT_ABORT,     /* resume(false) was posted */
};
/* The application's decision on the errors of a completed handshake: go on (`encrypted`, the
 * held records) or refuse (TERN_E_TLS_VERIFY; @alert: tell the peer). */
void tern__tls_verify_decided(tern_socket *s, tern__tls *tls, bool go, bool alert);
/* The connection ends or is reset while a decision is deferred: resume will only release. */
void tern__tls_verify_cancel(tern__tls *tls);
/* Frees the client PSK / the session of tern_socket_set_psk / _set_session. */
void tern__client_psk_free(struct tern__client_psk *c);
void tern__offered_free(struct tern__offered *o);

enum tern__psk_reason {
    TERN__PSK_REASON_UNKNOWN,     /* no such identity (or no answer) */
    TERN__PSK_REASON_STORE_ERROR, /* the store failed: treated as unknown on the wire */
    TERN__PSK_REASON_OVERLOAD,    /* the lookup queue was full or had no workers */
    TERN__PSK_REASON_NO_SUITE,    /* TLS 1.3: the client offers no suite of the key's hash */
};

enum tern__psk_state {
    TERN__PSK_STATE_NONE,      /* no identity seen (yet), or not a PSK server */
    TERN__PSK_STATE_WAITING,   /* the event fired or an answer is awaited: hold wolfSSL */
    TERN__PSK_STATE_KEY,       /* the key is known: wolfSSL's callback returns it */
    TERN__PSK_STATE_REJECTED,  /* unknown identity: wolfSSL's callback returns none */
};

/* A fatal plaintext alert with @description, if nothing was sent in this handshake yet. */
void tern__tls_plain_alert(tern_socket *s, tern__tls *tls, int description);

/* session.c */
/* Offers the exported session @data to @tls's next handshake: false if wolfSSL cannot read it. */
bool tern__session_offer(tern__tls *tls, const uint8_t *data, size_t len);
/* wolfSSL's session ticket callback: tls->ticket_due is set (the socket schedules its event). */
int tern__session_on_ticket(WOLFSSL *ssl, const unsigned char *ticket, int len, void *ctx);
void tern__session_setup(tern_socket *s, tern__tls *tls, const tern_ssl_config *cfg,
                         bool server);
void tern__session_deliver(tern_socket *s, tern__tls *tls);
/* A client handshake failed: true if it had offered a session (then dropped from the store). */
bool tern__session_failed(tern_socket *s, tern__tls *tls);
void tern__client_sessions_free(struct tern__client_sessions *cs);

/* groups.c: key-exchange groups. Parses a ':'-separated list into @ids (at most @max): the
 * count, or TERN_EINVAL (unknown) / TERN_E_UNSUPPORTED (not in this build) with @err set. */
int tern__groups_parse(const char *list, int *ids, int max, char *err, size_t errlen);
/* The key shares a client sends for the list @ids (cfg->key_shares). */
void tern__groups_key_shares(tern_ssl_config *cfg, const int *ids, int n);
/* tern's default lists on a new configuration's two contexts. */
int tern__groups_set_defaults(tern_ssl_config *cfg);
/* A client connection: adds the configuration's key shares. */
void tern__groups_client_setup(tern__tls *tls, const tern_ssl_config *cfg);

/* psk.c */
/* The engine found a PSK identity (TERN__TLS_WANT_PSK): the socket's lookup starts. On a
 * client: the server's hint came (tern__psk_client_ask). */
void tern__psk_identified(tern_socket *s, tern__tls *tls);
/* A client asks the application for its identity and key: the event is scheduled and the
 * handshake held (tls->psk_state WAITING) until the answer. */
void tern__psk_client_ask(tern_socket *s, tern__tls *tls);
/* A client's PSK on @tls (tern_socket_set_psk's checks). 0, TERN_EINVAL, TERN_ENOMEM. */
int tern__tls_set_psk(tern__tls *tls, const void *identity, size_t identity_len, const void *key,
                      size_t key_len);
void tern__psk_setup(tern_socket *s, tern__tls *tls, const tern_ssl_config *cfg, bool server);
void tern__psk_deliver(tern_socket *s, tern__tls *tls);
void tern__psk_release(tern_socket *s, tern__tls *tls);
/* Wipes and frees a server's PSK handshake state (the identity parser and the key). */
void tern__psk_drop(tern__tls *tls);
/* The handshake completed: a server lets its authenticator go (the copy of the identity and
 * of the key it holds, ~560 bytes a connection, is not needed any more). @thread owner */
void tern__psk_handshake_done(tern__tls *tls);
/* The cipher list @list (':'-separated) is now the configuration's: notes its TLS 1.3 suites
 * in order (cfg->psk13_order), from which PSK handshakes pick one of the key's hash. */
void tern__psk_ciphers(tern_ssl_config *cfg, const char *list);
/* The handshake deadline fired: true if it was the PSK lookup's (the socket failed). */
bool tern__psk_expired(tern_socket *s, tern__tls *tls);
/* The handshake failed in wolfSSL: true if a PSK reason explains it (message and counters
 * set on @s), false for the generic message. */
bool tern__psk_explain_failure(tern_socket *s, tern__tls *tls, const char *stage,
                               const char *detail);

#define TERN__MAX_CHAIN 16

tern_certificate *tern__certificate_from_x509(WOLFSSL_X509 *x);
/* ASN.1 UTCTime (type 23) / GeneralizedTime (24) digits to seconds since the epoch, 0 if bad. */
int64_t tern__asn1_time_parse(const unsigned char *data, int len, int type);
int tern__tls_add_verify_error(tern__tls *tls, int err, int depth, WOLFSSL_X509 *x);
/* Adds (@code, @cert: a reference moves in, may be NULL) to tls->errors once; @note follows
 * the code's text (" by OCSP"). 0 or TERN_ENOMEM. */
int tern__tls_add_error(tern__tls *tls, enum tern_ssl_error_code code, int depth,
                        tern_certificate *cert, const char *note);

/* The handshake completed (tls_engine.c): the checks that need all of it (a server's
 * NO_PEER_CERTIFICATE, a client's OCSP_NO_RESPONSE), added to tls->errors. */
void tern__tls_verify_done(tern__tls *tls);

/* ocsp.c (clients): wolfSSL's OCSP status callback for a configuration's client context,
 * which keeps the stapled response and turns its verdict into ssl errors. */
void tern__ocsp_client_init(WOLFSSL_CTX *ctx);
/* The handshake completed: OCSP_NO_RESPONSE under TERN_OCSP_REQUIRE when nothing was
 * stapled, and the leaf named by OCSP errors found before it was known. */
void tern__ocsp_handshake_done(tern__tls *tls, const tern_ssl_config *cfg);
/* The verdict of a DER OCSP response (RFC 6960 4.2.1) for its first certificate: 0 (good), or
 * a TERN_SSL_ERR_OCSP_* code / TERN_SSL_ERR_CERTIFICATE_REVOKED; @now for nextUpdate. */
int tern__ocsp_verdict(const unsigned char *der, size_t len, int64_t now);
void tern__tls_keep_chain_cert(tern__tls *tls, int depth, WOLFSSL_X509 *x);
bool tern__tls_errors_ignored(const tern__tls *tls);
void tern__tls_errors_free(tern__tls *tls);

/* Freezes @cfg (setters return TERN_EBUSY afterwards). */
void tern__ssl_config_freeze(tern_ssl_config *cfg);
/* Maps a wolfSSL error to a tern code and writes the detail into @buf. */
int tern__ssl_map_error(int wolf_err, char *buf, size_t len);

#endif

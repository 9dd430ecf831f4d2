/* SPDX-License-Identifier: MIT */
/*
 * TLS identity and negotiation over loopback, what test_tls does not cover:
 *   1. server verify modes (NONE / QUERY_PEER / VERIFY_PEER) against clients with a good
 *      client certificate, none, and one from an unrelated CA;
 *   2. `ssl_errors` / `peer_verify_error` on the client, ignoring all, ignoring an exact
 *      list (code and certificate) in the handler or before connecting, and lists that must
 *      not match; EXPIRED / NOT_YET_VALID / HOSTNAME_MISMATCH;
 *   3. the peer certificate and chain: names, SANs, validity, serial, digest, PEM;
 *   4. SNI (add_server_name) and 5. ALPN (set_alpn), both sides;
 *   6. the blocking helpers (wait_for_*) on a standalone reactor on the test thread.
 *
 * One in-process TLS echo server per configuration on a runtime; tern client sockets run on
 * a second runtime, one at a time, so what a server records belongs to the client that ran.
 * Client state (`vcl`) is touched only on the client reactor until `done` (release), then
 * by the test thread (acquire). The server's per-connection records are under a mutex.
 * Certificates are immutable and reference counted: a client keeps references for the test
 * thread to inspect.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

static const char *cert(const char *name)
{
    static char bufs[16][512];
    static unsigned next;
    char *b = bufs[next++ % 16];
    snprintf(b, sizeof bufs[0], "%s/%s", TERN_TEST_CERTS, name);
    return b;
}

/* The first certificate of a PEM file of the test PKI (a reference; fails the test). */
static tern_certificate *load_cert(const char *name)
{
    FILE *fp = fopen(cert(name), "rb");
    if (fp == NULL) {
        fail_msg("open %s: %s", cert(name), strerror(errno));
    }
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    tern_certificate *c = tern_certificate_new(buf, n, TERN_ENCODING_PEM);
    if (c == NULL) {
        fail_msg("tern_certificate_new(%s) failed", name);
    }
    return c;
}

#define CFG_OK(cfg, call)                                                                      \
    do {                                                                                       \
        int rc__ = (call);                                                                     \
        if (rc__ != 0) {                                                                       \
            fail_msg("%s: %s (%s)", #call, tern_err_name(rc__),                                \
                     tern_ssl_config_error_string(cfg));                                       \
        }                                                                                      \
    } while (0)

/* ---- the server ------------------------------------------------------------------------ */

#define MAX_REC 16

/* What the server saw of one connection that completed its handshake. */
typedef struct srec {
    bool has_peer;
    char peer_subject[256];
    size_t n_hs_errors;
    char sni[64];
    char alpn[32];
} srec;

typedef struct vsrv {
    tern_server *srv;
    uint16_t port;
    _Atomic uint64_t incoming, encrypted, disconnected, violations;
    pthread_mutex_t mu;
    srec rec[MAX_REC]; /* under mu */
    unsigned nrec;     /* under mu */
} vsrv;

static void srv_ready_read(tern_socket *s, void *user)
{
    vsrv *sv = user;
    char buf[4096];
    for (;;) {
        ssize_t n = tern_socket_read(s, buf, sizeof buf);
        if (n <= 0) {
            return;
        }
        if (tern_socket_write(s, buf, (size_t)n) != 0) {
            atomic_fetch_add(&sv->violations, 1);
            tern_socket_abort(s);
            return;
        }
    }
}

static void srv_encrypted(tern_socket *s, void *user)
{
    vsrv *sv = user;
    atomic_fetch_add(&sv->encrypted, 1);
    srec r = {0};
    const tern_certificate *pc = tern_socket_peer_certificate(s);
    r.has_peer = pc != NULL;
    if (pc != NULL) {
        snprintf(r.peer_subject, sizeof r.peer_subject, "%s", tern_certificate_subject(pc));
    }
    r.n_hs_errors = tern_ssl_error_list_count(tern_socket_ssl_handshake_errors(s));
    snprintf(r.sni, sizeof r.sni, "%s", tern_socket_sni_name(s));
    snprintf(r.alpn, sizeof r.alpn, "%s", tern_socket_alpn_protocol(s));
    pthread_mutex_lock(&sv->mu);
    if (sv->nrec < MAX_REC) {
        sv->rec[sv->nrec++] = r;
    }
    pthread_mutex_unlock(&sv->mu);
    srv_ready_read(s, user);
}

static void srv_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    vsrv *sv = user;
    atomic_fetch_add(&sv->disconnected, 1);
}

static const tern_socket_events srv_events = {
    .ready_read = srv_ready_read,
    .encrypted = srv_encrypted,
    .disconnected = srv_disconnected,
};

static void srv_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    vsrv *sv = user;
    atomic_fetch_add(&sv->incoming, 1);
    tern_socket_set_events(s, &srv_events, sv);
    if (tern_socket_start_server_encryption(s) != 0) {
        atomic_fetch_add(&sv->violations, 1);
        tern_socket_abort(s);
    }
}

/* ---- the client ------------------------------------------------------------------------ */

enum ignore_how {
    IGN_NONE,        /* ssl_errors handler records only */
    IGN_ALL,         /* tern_socket_ignore_all_ssl_errors in ssl_errors */
    IGN_LIST,        /* tern_socket_ignore_ssl_errors(list) in ssl_errors */
    IGN_LIST_BEFORE, /* tern_socket_ignore_ssl_errors(list) before connecting */
};

#define MAX_ERR 8
#define MSG "hello tern verify\n"

typedef struct vcl {
    /* set by the test thread */
    tern_ssl_config *cfg;
    uint16_t port;
    const char *peer_name;
    enum ignore_how ignore;
    const tern_ssl_error_list *list; /* IGN_LIST, IGN_LIST_BEFORE */
    bool no_ssl_errors_handler;      /* leave ssl_errors and peer_verify_error NULL */
    /* results (client reactor until done) */
    tern_socket *s;
    unsigned seq;                                  /* event order counter */
    unsigned n_pve, pve_last_seq;                  /* peer_verify_error */
    int pve_code[MAX_ERR];
    unsigned n_ssl_errors, ssl_errors_seq;         /* ssl_errors */
    size_t n_err;
    int err_code[MAX_ERR];
    tern_certificate *err_cert[MAX_ERR];           /* references */
    unsigned n_encrypted;
    int protocol;
    char alpn[32];
    tern_certificate *peer;                        /* reference */
    size_t chain_count;
    tern_certificate *chain0;                      /* reference */
    size_t n_hs_errors;                            /* after encrypted */
    int hs_err_code0;
    size_t got;
    char echo[64];
    int first_error, reason;
    char why[256];
    _Atomic int done;
} vcl;

static void cl_error(tern_socket *s, int err, void *user)
{
    (void)s;
    vcl *c = user;
    if (c->first_error == 0) {
        c->first_error = err;
    }
}

static void cl_pve(tern_socket *s, const tern_ssl_error *e, void *user)
{
    (void)s;
    vcl *c = user;
    if (c->n_pve < MAX_ERR) {
        c->pve_code[c->n_pve] = (int)tern_ssl_error_code(e);
    }
    c->n_pve++;
    c->pve_last_seq = ++c->seq;
}

static void cl_ssl_errors(tern_socket *s, const tern_ssl_error_list *errs, void *user)
{
    vcl *c = user;
    c->n_ssl_errors++;
    c->ssl_errors_seq = ++c->seq;
    c->n_err = tern_ssl_error_list_count(errs);
    for (size_t i = 0; i < c->n_err && i < MAX_ERR; i++) {
        const tern_ssl_error *e = tern_ssl_error_list_at(errs, i);
        c->err_code[i] = (int)tern_ssl_error_code(e);
        const tern_certificate *ec = tern_ssl_error_certificate(e);
        if (ec != NULL && c->err_cert[i] == NULL) {
            c->err_cert[i] = tern_certificate_ref((tern_certificate *)ec);
        }
        ts_log("ssl_errors[%zu]: %s (%s): %s", i, tern_ssl_error_name(e),
               tern_ssl_error_code_name(tern_ssl_error_code(e)), tern_ssl_error_string(e));
    }
    if (c->ignore == IGN_ALL) {
        tern_socket_ignore_all_ssl_errors(s);
    } else if (c->ignore == IGN_LIST) {
        int rc = tern_socket_ignore_ssl_errors(s, c->list);
        if (rc != 0) {
            snprintf(c->why, sizeof c->why, "ignore_ssl_errors: %s", tern_err_name(rc));
        }
    }
}

static void cl_encrypted(tern_socket *s, void *user)
{
    vcl *c = user;
    c->n_encrypted++;
    c->protocol = tern_socket_session_protocol(s);
    snprintf(c->alpn, sizeof c->alpn, "%s", tern_socket_alpn_protocol(s));
    const tern_certificate *pc = tern_socket_peer_certificate(s);
    if (pc != NULL && c->peer == NULL) {
        c->peer = tern_certificate_ref((tern_certificate *)pc);
    }
    c->chain_count = tern_socket_peer_certificate_chain_count(s);
    const tern_certificate *c0 = tern_socket_peer_certificate_chain_at(s, 0);
    if (c0 != NULL && c->chain0 == NULL) {
        c->chain0 = tern_certificate_ref((tern_certificate *)c0);
    }
    const tern_ssl_error_list *he = tern_socket_ssl_handshake_errors(s);
    c->n_hs_errors = tern_ssl_error_list_count(he);
    if (c->n_hs_errors > 0) {
        c->hs_err_code0 = (int)tern_ssl_error_code(tern_ssl_error_list_at(he, 0));
    }
    int rc = tern_socket_write(s, MSG, strlen(MSG));
    if (rc != 0) {
        snprintf(c->why, sizeof c->why, "write: %s", tern_err_name(rc));
        tern_socket_abort(s);
    }
}

static void cl_ready_read(tern_socket *s, void *user)
{
    vcl *c = user;
    ssize_t n = tern_socket_read(s, c->echo + c->got, sizeof c->echo - 1 - c->got);
    if (n > 0) {
        c->got += (size_t)n;
    }
    if (c->got >= strlen(MSG)) {
        tern_socket_close(s);
    }
}

static void cl_disconnected(tern_socket *s, int reason, void *user)
{
    vcl *c = user;
    c->reason = reason;
    if (reason != 0 && c->why[0] == '\0') {
        snprintf(c->why, sizeof c->why, "%s", tern_socket_error_string(s));
    }
    tern_socket_free(s);
    c->s = NULL;
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

static const tern_socket_events cl_events = {
    .ready_read = cl_ready_read,
    .error = cl_error,
    .disconnected = cl_disconnected,
    .encrypted = cl_encrypted,
    .peer_verify_error = cl_pve,
    .ssl_errors = cl_ssl_errors,
};

static const tern_socket_events cl_events_plain = {
    .ready_read = cl_ready_read,
    .error = cl_error,
    .disconnected = cl_disconnected,
    .encrypted = cl_encrypted,
};

static void cl_start(tern_reactor *r, void *arg)
{
    vcl *c = arg;
    if (r == NULL) {
        return;
    }
    int rc;
    c->s = tern_socket_new(r);
    if (c->s == NULL) {
        snprintf(c->why, sizeof c->why, "tern_socket_new failed");
        goto failed;
    }
    tern_socket_set_events(c->s, c->no_ssl_errors_handler ? &cl_events_plain : &cl_events, c);
    tern_socket_set_connect_timeout(c->s, 10000);
    if ((rc = tern_socket_set_ssl_config(c->s, c->cfg)) != 0) {
        snprintf(c->why, sizeof c->why, "set_ssl_config: %s", tern_err_name(rc));
        goto failed;
    }
    if (c->ignore == IGN_LIST_BEFORE && (rc = tern_socket_ignore_ssl_errors(c->s, c->list)) != 0) {
        snprintf(c->why, sizeof c->why, "ignore_ssl_errors before: %s", tern_err_name(rc));
        goto failed;
    }
    rc = tern_socket_connect_to_host_encrypted(c->s, "127.0.0.1", c->port, c->peer_name);
    if (rc != 0) {
        snprintf(c->why, sizeof c->why, "connect: %s", tern_err_name(rc));
        goto failed;
    }
    return;
failed:
    c->reason = -1;
    tern_socket_free(c->s);
    c->s = NULL;
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

/* ---- fixture --------------------------------------------------------------------------- */

#define MAX_CFG 32
#define MAX_SRV 8
#define MAX_CL 48
#define MAX_CERT 16

typedef struct fixture {
    tern_runtime *rt, *client;
    bool started;
    tern_ssl_config *cfgs[MAX_CFG];
    unsigned ncfg;
    vsrv *srv[MAX_SRV];
    unsigned nsrv;
    vcl *cl[MAX_CL];
    unsigned ncl;
    tern_certificate *certs[MAX_CERT];
    unsigned ncert;
    tern_ssl_error_list *lists[8];
    unsigned nlist;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static void vcl_release(vcl *c)
{
    for (int i = 0; i < MAX_ERR; i++) {
        tern_certificate_unref(c->err_cert[i]);
    }
    tern_certificate_unref(c->peer);
    tern_certificate_unref(c->chain0);
    free(c);
}

static int teardown(void **state)
{
    fixture *f = *state;
    tern_runtime *rts[2] = {f->client, f->rt};
    for (int i = 0; i < 2; i++) {
        if (rts[i] != NULL) {
            if (f->started) {
                tern_runtime_stop(rts[i], 0);
                tern_runtime_join(rts[i]);
            }
            tern_runtime_free(rts[i]);
        }
    }
    for (unsigned i = 0; i < f->ncl; i++) {
        vcl_release(f->cl[i]);
    }
    for (unsigned i = 0; i < f->nsrv; i++) {
        pthread_mutex_destroy(&f->srv[i]->mu);
        free(f->srv[i]);
    }
    for (unsigned i = 0; i < f->ncfg; i++) {
        tern_ssl_config_unref(f->cfgs[i]);
    }
    for (unsigned i = 0; i < f->ncert; i++) {
        tern_certificate_unref(f->certs[i]);
    }
    for (unsigned i = 0; i < f->nlist; i++) {
        tern_ssl_error_list_free(f->lists[i]);
    }
    free(f);
    return 0;
}

static tern_ssl_config *keep_cfg(fixture *f, tern_ssl_config *cfg)
{
    assert_non_null(cfg);
    assert_true(f->ncfg < MAX_CFG);
    f->cfgs[f->ncfg++] = cfg;
    return cfg;
}

static tern_certificate *keep_cert(fixture *f, tern_certificate *c)
{
    assert_non_null(c);
    assert_true(f->ncert < MAX_CERT);
    f->certs[f->ncert++] = c;
    return c;
}

static tern_ssl_error_list *new_list(fixture *f)
{
    assert_true(f->nlist < 8);
    tern_ssl_error_list *l = tern_ssl_error_list_new();
    assert_non_null(l);
    f->lists[f->nlist++] = l;
    return l;
}

static tern_ssl_config *server_cfg(fixture *f, const char *certfile, const char *keyfile)
{
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(cfg, tern_ssl_config_set_local_certificate_file(cfg, cert(certfile),
                                                           TERN_ENCODING_PEM));
    CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert(keyfile), TERN_ENCODING_PEM,
                                                     NULL));
    return cfg;
}

/* A client trusting ca.pem (VERIFY_AUTO), with a client certificate @p name (NULL: none). */
static tern_ssl_config *client_cfg(fixture *f, const char *name)
{
    tern_ssl_config *cfg = keep_cfg(f, tern_ssl_config_new());
    CFG_OK(cfg, tern_ssl_config_add_ca_certificates_file(cfg, cert("ca.pem"), TERN_ENCODING_PEM));
    if (name != NULL) {
        char c[64], k[64];
        snprintf(c, sizeof c, "%s.pem", name);
        snprintf(k, sizeof k, "%s.key", name);
        CFG_OK(cfg, tern_ssl_config_set_local_certificate_file(cfg, cert(c), TERN_ENCODING_PEM));
        CFG_OK(cfg, tern_ssl_config_set_private_key_file(cfg, cert(k), TERN_ENCODING_PEM, NULL));
    }
    return cfg;
}

static vsrv *add_server(fixture *f, tern_ssl_config *cfg)
{
    if (f->rt == NULL) {
        f->rt = ts_runtime_new(2, 0);
        assert_non_null(f->rt);
    }
    assert_true(f->nsrv < MAX_SRV);
    vsrv *sv = calloc(1, sizeof *sv);
    assert_non_null(sv);
    pthread_mutex_init(&sv->mu, NULL);
    f->srv[f->nsrv++] = sv;
    sv->srv = tern_server_new(f->rt, cfg, srv_incoming, sv);
    assert_non_null(sv->srv);
    return sv;
}

static void start(fixture *f)
{
    for (unsigned i = 0; i < f->nsrv; i++) {
        int rc = tern_server_listen(f->srv[i]->srv, "127.0.0.1", 0);
        if (rc != 0) {
            fail_msg("listen: %s", tern_err_name(rc));
        }
        f->srv[i]->port = tern_server_port(f->srv[i]->srv);
    }
    assert_int_equal(tern_runtime_start(f->rt), 0);
    f->client = ts_runtime_new(1, 0);
    assert_non_null(f->client);
    f->started = true;
    assert_int_equal(tern_runtime_start(f->client), 0);
}

static vcl *new_client(fixture *f, tern_ssl_config *cfg, const vsrv *sv, const char *peer)
{
    assert_true(f->ncl < MAX_CL);
    vcl *c = calloc(1, sizeof *c);
    assert_non_null(c);
    f->cl[f->ncl++] = c;
    c->cfg = cfg;
    c->port = sv->port;
    c->peer_name = peer;
    return c;
}

/* Runs @p c to its end, then waits until the server ended every connection it took. */
static void run(fixture *f, vcl *c, vsrv *sv)
{
    assert_int_equal(ts_post(tern_runtime_reactor(f->client, 0), cl_start, c, 5000), 0);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load_explicit(&c->done, memory_order_acquire), 10000);
    if (!ok) {
        fail_msg("the client did not finish in 10 s");
    }
    TS_WAIT_UNTIL(ok, atomic_load(&sv->disconnected) >= atomic_load(&sv->incoming), 5000);
    if (!ok) {
        fail_msg("the server kept %llu connection(s)",
                 (unsigned long long)(atomic_load(&sv->incoming) -
                                      atomic_load(&sv->disconnected)));
    }
}

static void expect_echo(const vcl *c, const char *what)
{
    if (c->reason != 0 || c->n_encrypted != 1 || c->got != strlen(MSG) ||
        strcmp(c->echo, MSG) != 0) {
        fail_msg("%s: expected an echo; reason %s, first error %s, encrypted %u, got %zu: %s",
                 what, tern_err_name(c->reason), tern_err_name(c->first_error), c->n_encrypted,
                 c->got, c->why);
    }
}

static void expect_refused(const vcl *c, const char *what)
{
    if (c->reason == 0 || c->got != 0) {
        fail_msg("%s: expected a refusal; reason %s, encrypted %u, got %zu", what,
                 tern_err_name(c->reason), c->n_encrypted, c->got);
    }
    ts_log("%s: refused: %s (encrypted %u): %s", what, tern_err_name(c->reason),
           c->n_encrypted, c->why);
}

/* The last record of @p sv (copied), failing if it has not @p n records. */
static srec last_rec(vsrv *sv, unsigned n)
{
    pthread_mutex_lock(&sv->mu);
    unsigned got = sv->nrec;
    srec r = got > 0 ? sv->rec[got - 1] : (srec){0};
    pthread_mutex_unlock(&sv->mu);
    if (got != n) {
        fail_msg("the server recorded %u handshakes, expected %u", got, n);
    }
    return r;
}

static uint64_t server_failures(fixture *f, uint64_t at_least)
{
    bool ok;
    TS_WAIT_UNTIL(ok, ts_stats(f->rt).handshake_failures >= at_least, 3000);
    (void)ok;
    return ts_stats(f->rt).handshake_failures;
}

/* ---- 1. server verify modes ------------------------------------------------------------ */

static void test_tls_verify__server_verify_modes(void **state)
{
    fixture *f = *state;
    const enum tern_verify_mode modes[3] = {TERN_VERIFY_NONE, TERN_VERIFY_QUERY_PEER,
                                            TERN_VERIFY_VERIFY_PEER};
    const char *mode_names[3] = {"NONE", "QUERY_PEER", "VERIFY_PEER"};
    vsrv *sv[3];
    for (int m = 0; m < 3; m++) {
        tern_ssl_config *cfg = server_cfg(f, "server-ec.pem", "server-ec.key");
        CFG_OK(cfg, tern_ssl_config_add_ca_certificates_file(cfg, cert("ca.pem"),
                                                             TERN_ENCODING_PEM));
        CFG_OK(cfg, tern_ssl_config_set_peer_verify_mode(cfg, modes[m]));
        sv[m] = add_server(f, cfg);
    }
    start(f);
    tern_ssl_config *good = client_cfg(f, "client");
    tern_ssl_config *none = client_cfg(f, NULL);
    tern_ssl_config *other = client_cfg(f, "other-client");
    struct {
        tern_ssl_config *cfg;
        const char *name;
        const char *cn;
    } clients[3] = {{good, "client certificate", "tern test client"},
                    {none, "no client certificate", NULL},
                    {other, "other-ca client certificate", "tern other client"}};
    uint64_t fails = 0;
    for (int m = 0; m < 3; m++) {
        unsigned nrec = 0;
        for (int k = 0; k < 3; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s, %s", mode_names[m], clients[k].name);
            vcl *c = new_client(f, clients[k].cfg, sv[m], "localhost");
            run(f, c, sv[m]);
            bool refuse = modes[m] == TERN_VERIFY_VERIFY_PEER && k != 0;
            if (refuse) {
                expect_refused(c, what);
                fails++;
                uint64_t got = server_failures(f, fails);
                if (got != fails) {
                    fail_msg("%s: the server counted %llu handshake failures, expected %llu",
                             what, (unsigned long long)got, (unsigned long long)fails);
                }
                continue;
            }
            expect_echo(c, what);
            srec r = last_rec(sv[m], ++nrec);
            ts_log("%s: server sees peer %s, %zu handshake error(s)", what,
                   r.has_peer ? r.peer_subject : "(none)", r.n_hs_errors);
            if (modes[m] == TERN_VERIFY_NONE || clients[k].cn == NULL) {
                if (r.has_peer) {
                    fail_msg("%s: the server sees a peer certificate: %s", what, r.peer_subject);
                }
            } else {
                if (!r.has_peer || strstr(r.peer_subject, clients[k].cn) == NULL) {
                    fail_msg("%s: the server sees %s, expected a subject with CN %s", what,
                             r.has_peer ? r.peer_subject : "no certificate", clients[k].cn);
                }
            }
            if (modes[m] == TERN_VERIFY_QUERY_PEER && k == 2 && r.n_hs_errors == 0) {
                ts_log("%s: note: no handshake error recorded for an untrusted client "
                       "certificate", what);
            }
            if (k == 0 && r.n_hs_errors != 0) {
                fail_msg("%s: %zu handshake errors for a good client certificate", what,
                         r.n_hs_errors);
            }
        }
        assert_int_equal(atomic_load(&sv[m]->violations), 0);
    }
    assert_int_equal(server_failures(f, 2), 2);
    assert_int_equal(ts_stats(f->rt).handshakes, 7);
}

/* ---- 2. ssl_errors on the client ------------------------------------------------------- */

static bool is_code(int got, enum tern_ssl_error_code want)
{
    return got == (int)want;
}

static void test_tls_verify__ssl_errors_and_ignoring_them(void **state)
{
    fixture *f = *state;
    vsrv *self = add_server(f, server_cfg(f, "selfsigned.pem", "selfsigned.key"));
    vsrv *expired = add_server(f, server_cfg(f, "expired.pem", "expired.key"));
    vsrv *notyet = add_server(f, server_cfg(f, "notyet.pem", "notyet.key"));
    vsrv *wrong = add_server(f, server_cfg(f, "wronghost.pem", "wronghost.key"));
    start(f);
    tern_ssl_config *trust = client_cfg(f, NULL);
    tern_certificate *self_cert = keep_cert(f, load_cert("selfsigned.pem"));
    tern_certificate *other_cert = keep_cert(f, load_cert("server-ec.pem"));
    uint64_t cfails = 0;

    /* not ignored: one ssl_errors after every peer_verify_error, then TERN_E_TLS_VERIFY */
    vcl *c = new_client(f, trust, self, "localhost");
    run(f, c, self);
    assert_int_equal(c->n_ssl_errors, 1);
    assert_true(c->n_err >= 1 && c->n_err <= MAX_ERR);
    assert_int_equal(c->n_pve, c->n_err);
    for (size_t i = 0; i < c->n_err; i++) {
        assert_int_equal(c->pve_code[i], c->err_code[i]);
    }
    assert_true(c->pve_last_seq < c->ssl_errors_seq);
    ts_log("self-signed: %zu error(s), first %s", c->n_err,
           tern_ssl_error_code_name((enum tern_ssl_error_code)c->err_code[0]));
    if (!is_code(c->err_code[0], TERN_SSL_ERR_SELF_SIGNED) &&
        !is_code(c->err_code[0], TERN_SSL_ERR_UNABLE_TO_GET_ISSUER)) {
        fail_msg("self-signed: first error %s, expected SELF_SIGNED or UNABLE_TO_GET_ISSUER",
                 tern_ssl_error_code_name((enum tern_ssl_error_code)c->err_code[0]));
    }
    if (!is_code(c->err_code[0], TERN_SSL_ERR_SELF_SIGNED)) {
        ts_log("note: the implementation reports %s, not SELF_SIGNED, for a self-signed leaf",
               tern_ssl_error_code_name((enum tern_ssl_error_code)c->err_code[0]));
    }
    for (size_t i = 0; i < c->n_err; i++) {
        if (!tern_certificate_equals(c->err_cert[i], self_cert)) {
            fail_msg("self-signed: error %zu is about another certificate (%s)", i,
                     c->err_cert[i] ? tern_certificate_subject(c->err_cert[i]) : "NULL");
        }
    }
    assert_int_equal(c->n_encrypted, 0);
    assert_int_equal(c->reason, TERN_E_TLS_VERIFY);
    cfails++;
    const size_t n_err = c->n_err;
    int codes[MAX_ERR];
    memcpy(codes, c->err_code, sizeof codes);

    /* the matching list: every (code, the self-signed certificate) seen */
    tern_ssl_error_list *match = new_list(f);
    for (size_t i = 0; i < n_err; i++) {
        assert_int_equal(tern_ssl_error_list_add(match, (enum tern_ssl_error_code)codes[i],
                                                 self_cert), 0);
    }
    assert_int_equal(tern_ssl_error_list_count(match), n_err);
    tern_ssl_error_list *other_cert_list = new_list(f);
    for (size_t i = 0; i < n_err; i++) {
        assert_int_equal(tern_ssl_error_list_add(other_cert_list,
                                                 (enum tern_ssl_error_code)codes[i], other_cert),
                         0);
    }
    tern_ssl_error_list *other_code = new_list(f);
    assert_int_equal(tern_ssl_error_list_add(other_code, TERN_SSL_ERR_EXPIRED, self_cert), 0);

    struct {
        enum ignore_how how;
        const tern_ssl_error_list *list;
        bool handler;
        bool ok;
        const char *name;
    } cases[] = {
        {IGN_ALL, NULL, true, true, "ignore_all in ssl_errors"},
        {IGN_LIST, match, true, true, "list (code, that certificate) in ssl_errors"},
        {IGN_LIST, other_cert_list, true, false, "list (code, another certificate)"},
        {IGN_LIST, other_code, true, false, "list (EXPIRED, that certificate)"},
        {IGN_LIST_BEFORE, match, true, true, "list before connecting, with a handler"},
        {IGN_LIST_BEFORE, match, false, true, "list before connecting, no handler"},
        {IGN_LIST_BEFORE, other_cert_list, false, false,
         "list (another certificate) before connecting, no handler"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        c = new_client(f, trust, self, "localhost");
        c->ignore = cases[k].how;
        c->list = cases[k].list;
        c->no_ssl_errors_handler = !cases[k].handler;
        run(f, c, self);
        if (cases[k].handler) {
            assert_int_equal(c->n_ssl_errors, 1);
            assert_int_equal(c->n_err, n_err);
        }
        if (cases[k].ok) {
            expect_echo(c, cases[k].name);
            if (c->n_hs_errors != n_err || c->hs_err_code0 != codes[0]) {
                fail_msg("%s: handshake_errors after an ignored handshake: %zu (first %s), "
                         "expected %zu (%s)",
                         cases[k].name, c->n_hs_errors,
                         tern_ssl_error_code_name((enum tern_ssl_error_code)c->hs_err_code0),
                         n_err, tern_ssl_error_code_name((enum tern_ssl_error_code)codes[0]));
            }
            assert_true(tern_certificate_equals(c->peer, self_cert));
        } else {
            if (c->n_encrypted != 0 || c->reason != TERN_E_TLS_VERIFY) {
                fail_msg("%s: expected TERN_E_TLS_VERIFY before encrypted; reason %s, "
                         "encrypted %u: %s",
                         cases[k].name, tern_err_name(c->reason), c->n_encrypted, c->why);
            }
            cfails++;
        }
    }

    /* the other failures, each named in the ssl_errors list */
    struct {
        vsrv *sv;
        const char *peer;
        enum tern_ssl_error_code code;
        const char *file;
    } kinds[] = {
        {expired, "localhost", TERN_SSL_ERR_EXPIRED, "expired.pem"},
        {notyet, "localhost", TERN_SSL_ERR_NOT_YET_VALID, "notyet.pem"},
        {wrong, "localhost", TERN_SSL_ERR_HOSTNAME_MISMATCH, "wronghost.pem"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        tern_certificate *want = keep_cert(f, load_cert(kinds[k].file));
        c = new_client(f, trust, kinds[k].sv, kinds[k].peer);
        run(f, c, kinds[k].sv);
        assert_int_equal(c->n_ssl_errors, 1);
        bool found = false;
        for (size_t i = 0; i < c->n_err && i < MAX_ERR; i++) {
            if (is_code(c->err_code[i], kinds[k].code)) {
                found = true;
                if (!tern_certificate_equals(c->err_cert[i], want)) {
                    fail_msg("%s: the error is about another certificate",
                             tern_ssl_error_code_name(kinds[k].code));
                }
            }
        }
        if (!found) {
            fail_msg("%s: not in the ssl_errors list (%zu errors, first %s)",
                     tern_ssl_error_code_name(kinds[k].code), c->n_err,
                     c->n_err ? tern_ssl_error_code_name(
                                    (enum tern_ssl_error_code)c->err_code[0])
                              : "-");
        }
        assert_int_equal(c->reason, TERN_E_TLS_VERIFY);
        assert_int_equal(c->n_encrypted, 0);
        cfails++;
    }
    tern_stats cs = ts_stats(f->client);
    assert_int_equal(cs.handshake_failures, cfails);
}

/* ---- 3. certificate introspection ------------------------------------------------------ */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

static void test_tls_verify__peer_certificate_introspection(void **state)
{
    fixture *f = *state;
    vsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"));
    vsrv *rsa = add_server(f, server_cfg(f, "server-rsa.pem", "server-rsa.key"));
    start(f);
    vcl *c = new_client(f, client_cfg(f, NULL), sv, "localhost");
    run(f, c, sv);
    expect_echo(c, "server-ec");
    const tern_certificate *p = c->peer;
    assert_non_null(p);
    tern_certificate *file = keep_cert(f, load_cert("server-ec.pem"));
    assert_true(tern_certificate_equals(p, file));
    const char *subj = tern_certificate_subject(p), *iss = tern_certificate_issuer(p);
    ts_log("subject %s, issuer %s, serial %s", subj, iss, tern_certificate_serial(p));
    assert_non_null(strstr(subj, "localhost"));
    assert_non_null(strstr(iss, "tern test CA"));
    assert_false(tern_certificate_is_self_signed(p));
    bool has_localhost = false;
    for (size_t i = 0; i < tern_certificate_san_count(p); i++) {
        const char *san = tern_certificate_san(p, i);
        assert_non_null(san);
        has_localhost |= strcmp(san, "localhost") == 0;
    }
    assert_true(has_localhost);
    assert_null(tern_certificate_san(p, tern_certificate_san_count(p)));
    int64_t now = (int64_t)time(NULL);
    assert_true(tern_certificate_not_before(p) < now);
    assert_true(now < tern_certificate_not_after(p));
    assert_int_equal(tern_certificate_not_before(p), 1704067200); /* 2024-01-01T00:00:00Z */
    assert_int_equal(tern_certificate_not_after(p), 2524607999);  /* 2049-12-31T23:59:59Z */
    assert_true(tern_certificate_serial(p)[0] != '\0');

    /* digest: against gen.sh's `openssl dgst -sha256` of the DER, and the file's */
    uint8_t d[32], small[16];
    assert_int_equal(tern_certificate_digest(p, TERN_DIGEST_SHA256, d, sizeof d), 32);
    assert_int_equal(tern_certificate_digest(p, TERN_DIGEST_SHA256, small, sizeof small),
                     TERN_ENOBUFS);
    uint8_t want[32];
    FILE *fp = fopen(cert("server-ec.sha256"), "r");
    assert_non_null(fp);
    char hex[80] = {0};
    assert_non_null(fgets(hex, sizeof hex, fp));
    fclose(fp);
    for (int i = 0; i < 32; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        want[i] = (uint8_t)(hi << 4 | lo);
    }
    assert_memory_equal(d, want, 32);
    assert_true(tern_certificate_digest_equals(p, TERN_DIGEST_SHA256, want, 32));
    want[31] ^= 1;
    assert_false(tern_certificate_digest_equals(p, TERN_DIGEST_SHA256, want, 32));
    uint8_t fd[32];
    assert_int_equal(tern_certificate_digest(file, TERN_DIGEST_SHA256, fd, sizeof fd), 32);
    assert_memory_equal(d, fd, 32);

    /* DER: the same bytes as gen.sh's server-ec.der */
    tern_buf der = tern_certificate_der(p);
    fp = fopen(cert("server-ec.der"), "rb");
    assert_non_null(fp);
    static uint8_t derfile[8192];
    size_t dn = fread(derfile, 1, sizeof derfile, fp);
    fclose(fp);
    assert_int_equal(der.len, dn);
    assert_memory_equal(der.base, derfile, dn);
    tern_certificate *fromder = keep_cert(f, tern_certificate_new(derfile, dn, TERN_ENCODING_DER));
    assert_true(tern_certificate_equals(fromder, p));

    /* PEM round trip; the length as snprintf */
    ssize_t need = tern_certificate_to_pem(p, NULL, 0);
    assert_true(need > 64);
    char *pem = malloc((size_t)need + 1);
    assert_non_null(pem);
    assert_int_equal(tern_certificate_to_pem(p, pem, (size_t)need + 1), need);
    assert_int_equal(strlen(pem), (size_t)need);
    assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
    char cut[16];
    assert_int_equal(tern_certificate_to_pem(p, cut, sizeof cut), need);
    assert_int_equal(strlen(cut), sizeof cut - 1);
    tern_certificate *back = tern_certificate_new(pem, (size_t)need, TERN_ENCODING_PEM);
    free(pem);
    keep_cert(f, back);
    assert_true(tern_certificate_equals(back, p));
    assert_false(tern_certificate_equals(back, NULL));
    assert_true(tern_certificate_equals(NULL, NULL));

    /* the chain: leaf first */
    assert_true(c->chain_count >= 1);
    assert_true(tern_certificate_equals(c->chain0, p));

    /* RSA: the server sends leaf + CA; the chain starts with the leaf, a different cert */
    vcl *r = new_client(f, client_cfg(f, NULL), rsa, "localhost");
    run(f, r, rsa);
    expect_echo(r, "server-rsa");
    assert_true(r->chain_count >= 1);
    assert_true(tern_certificate_equals(r->chain0, r->peer));
    assert_false(tern_certificate_equals(r->peer, p));
    ts_log("chain counts: ec %zu, rsa %zu", c->chain_count, r->chain_count);
}

/* ---- 4. SNI ---------------------------------------------------------------------------- */

static bool has_san(const tern_certificate *c, const char *name)
{
    for (size_t i = 0; c != NULL && i < tern_certificate_san_count(c); i++) {
        if (strcmp(tern_certificate_san(c, i), name) == 0) {
            return true;
        }
    }
    return false;
}

static void test_tls_verify__sni(void **state)
{
    fixture *f = *state;
    tern_ssl_config *def = server_cfg(f, "server-ec.pem", "server-ec.key");
    tern_ssl_config *alt = server_cfg(f, "alt.pem", "alt.key");
    CFG_OK(def, tern_ssl_config_add_server_name(def, "alt.test", alt));
    vsrv *sv = add_server(f, def);
    start(f);
    tern_ssl_config *trust = client_cfg(f, NULL);
    tern_certificate *altc = keep_cert(f, load_cert("alt.pem"));
    tern_certificate *defc = keep_cert(f, load_cert("server-ec.pem"));

    vcl *a = new_client(f, trust, sv, "alt.test");
    run(f, a, sv);
    expect_echo(a, "SNI alt.test");
    srec ra = last_rec(sv, 1);
    assert_true(tern_certificate_equals(a->peer, altc));
    assert_non_null(strstr(tern_certificate_subject(a->peer), "alt.test"));
    assert_true(has_san(a->peer, "alt.test"));
    assert_string_equal(ra.sni, "alt.test");

    vcl *upper = new_client(f, trust, sv, "ALT.test");
    run(f, upper, sv);
    expect_echo(upper, "SNI ALT.test (case insensitive)");
    last_rec(sv, 2);
    assert_true(tern_certificate_equals(upper->peer, altc));

    vcl *l = new_client(f, trust, sv, "localhost");
    run(f, l, sv);
    expect_echo(l, "SNI localhost");
    srec rl = last_rec(sv, 3);
    assert_true(tern_certificate_equals(l->peer, defc));
    assert_true(has_san(l->peer, "localhost"));
    assert_false(has_san(l->peer, "alt.test"));
    assert_string_equal(rl.sni, "localhost");
}

/* ---- 5. ALPN --------------------------------------------------------------------------- */

static void test_tls_verify__alpn(void **state)
{
    fixture *f = *state;
    tern_ssl_config *scfg = server_cfg(f, "server-ec.pem", "server-ec.key");
    CFG_OK(scfg, tern_ssl_config_set_alpn(scfg, "h2,http/1.1"));
    vsrv *sv = add_server(f, scfg);
    start(f);
    struct {
        const char *offer; /* NULL: no ALPN */
        const char *want;  /* NULL: the handshake fails */
    } cases[] = {
        {"http/1.1", "http/1.1"},
        {"h2,http/1.1", "h2"},
        {"spdy/3", NULL},
        {NULL, ""},
        /* set_alpn: the client's order decides among the protocols both support (wolfSSL's
         * server-side selection callback is not in tern's build) */
        {"http/1.1,h2", "http/1.1"},
    };
    unsigned nrec = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tern_ssl_config *cc = client_cfg(f, NULL);
        if (cases[k].offer != NULL) {
            CFG_OK(cc, tern_ssl_config_set_alpn(cc, cases[k].offer));
        }
        char what[64];
        snprintf(what, sizeof what, "ALPN %s", cases[k].offer ? cases[k].offer : "(none)");
        vcl *c = new_client(f, cc, sv, "localhost");
        run(f, c, sv);
        if (cases[k].want == NULL) {
            expect_refused(c, what);
            if (c->n_encrypted != 0) {
                fail_msg("%s: the client saw `encrypted`", what);
            }
            assert_int_equal(server_failures(f, 1), 1);
            continue;
        }
        expect_echo(c, what);
        srec r = last_rec(sv, ++nrec);
        if (strcmp(c->alpn, cases[k].want) != 0 || strcmp(r.alpn, cases[k].want) != 0) {
            fail_msg("%s: client \"%s\", server \"%s\", expected \"%s\"%s", what, c->alpn,
                     r.alpn, cases[k].want,
                     k == 4 ? " (the server's preference order, as ssl_config.h documents)"
                            : "");
        }
        if (k == 3) {
            assert_int_equal(ts_stats(f->rt).handshakes, 3);
            assert_int_equal(ts_stats(f->rt).handshake_failures, 1);
            assert_int_equal(ts_stats(f->client).handshake_failures, 1);
            assert_int_equal(tern_ssl_config_set_alpn(keep_cfg(f, tern_ssl_config_new()), ""),
                             TERN_EINVAL);
            assert_int_equal(
                tern_ssl_config_set_alpn(keep_cfg(f, tern_ssl_config_new()), "h2,,x"),
                TERN_EINVAL);
        }
    }
}

/* ---- 6. blocking helpers on a standalone reactor --------------------------------------- */

static const tern_socket_events no_events = {0};

static void test_tls_verify__blocking_helpers(void **state)
{
    fixture *f = *state;
    vsrv *sv = add_server(f, server_cfg(f, "server-ec.pem", "server-ec.key"));
    start(f);
    tern_ssl_config *trust = client_cfg(f, NULL);
    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);

    /* the echo, step by step */
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);
    tern_socket_set_events(s, &no_events, NULL);
    assert_int_equal(tern_socket_set_ssl_config(s, trust), 0);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", sv->port, "localhost"),
                     0);
    assert_int_equal(tern_socket_write(s, MSG, strlen(MSG)), 0); /* before `encrypted` */
    int rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != 0) {
        fail_msg("wait_for_encrypted: %s: %s", tern_err_name(rc), tern_socket_error_string(s));
    }
    assert_true(tern_socket_is_encrypted(s));
    assert_int_equal(tern_socket_wait_for_bytes_written(s, 5000), 0);
    assert_int_equal(tern_socket_bytes_to_write(s), 0);
    char buf[64] = {0};
    size_t got = 0;
    uint64_t deadline = ts_now_ms() + 5000;
    while (got < strlen(MSG) && ts_now_ms() < deadline) {
        rc = tern_socket_wait_for_ready_read(s, 5000);
        if (rc != 0) {
            fail_msg("wait_for_ready_read: %s after %zu bytes", tern_err_name(rc), got);
        }
        ssize_t n = tern_socket_read(s, buf + got, sizeof buf - 1 - got);
        assert_true(n >= 0);
        got += (size_t)n;
    }
    assert_string_equal(buf, MSG);
    assert_int_equal(tern_socket_close(s), 0);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_UNCONNECTED);
    tern_socket_free(s);
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&sv->disconnected) == 1, 5000);
    assert_true(ok);

    /* nobody listens */
    s = tern_socket_new(r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_ssl_config(s, trust), 0);
    uint16_t dead = ts_unused_port();
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", dead, "localhost"), 0);
    rc = tern_socket_wait_for_encrypted(s, 5000);
    if (rc != TERN_ECONNREFUSED) {
        fail_msg("wait_for_encrypted to a closed port: %s, expected TERN_ECONNREFUSED",
                 tern_err_name(rc));
    }
    tern_socket_free(s);

    /* a listener that accepts and says nothing: the wait times out */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t slen = sizeof sa;
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &slen), 0);
    s = tern_socket_new(r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_ssl_config(s, trust), 0);
    assert_int_equal(
        tern_socket_connect_to_host_encrypted(s, "127.0.0.1", ntohs(sa.sin_port), "localhost"), 0);
    assert_int_equal(tern_socket_wait_for_connected(s, 5000), 0);
    int afd = accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    uint64_t t0 = ts_now_ms();
    rc = tern_socket_wait_for_encrypted(s, 50);
    uint64_t ms = ts_now_ms() - t0;
    ts_log("wait_for_encrypted(50 ms) on a silent server: %s after %llu ms", tern_err_name(rc),
           (unsigned long long)ms);
    assert_int_equal(rc, TERN_ETIMEDOUT);
    assert_true(ms >= 45);
    assert_true(ms <= (uint64_t)TS_SCALE(500, 1500));
    /* the socket is still connecting its handshake: a timed-out wait changes nothing */
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_CONNECTED);
    assert_false(tern_socket_is_encrypted(s));
    tern_socket_free(s);
    close(afd);
    close(lfd);
    tern_reactor_free(r);
}

int main(void)
{
    FILE *fp = fopen(cert("alt.pem"), "r");
    if (fp == NULL) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n",
                TERN_TEST_CERTS);
        return 77;
    }
    fclose(fp);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls_verify__server_verify_modes),
        T(test_tls_verify__ssl_errors_and_ignoring_them),
        T(test_tls_verify__peer_certificate_introspection),
        T(test_tls_verify__sni),
        T(test_tls_verify__alpn),
        T(test_tls_verify__blocking_helpers),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

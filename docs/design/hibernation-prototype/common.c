/*
 * What hib.c, fuzz.c and rss.c share (#included by each; not built on its own): two WOLFSSL
 * objects joined by memory I/O callbacks, the cases, pairing up, the handshake, export and
 * import.
 */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CERTS
#define CERTS "/tmp/tern-hibernation/tree/certs/" /* wolfSSL's test certificates: -DCERTS=... */
#endif

/* ---- heap accounting through wolfSSL's allocators ---- */
static long heap_now, heap_mark;
static void *a_malloc(size_t n)
{
    void *p = malloc(n);
    if (p)
        heap_now += (long)malloc_usable_size(p);
    return p;
}
static void a_free(void *p)
{
    if (p)
        heap_now -= (long)malloc_usable_size(p);
    free(p);
}
static void *a_realloc(void *p, size_t n)
{
    long old = p ? (long)malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q) {
        heap_now += (long)malloc_usable_size(q) - old;
    }
    return q;
}

/* ---- memory pipes ---- */
struct pipe {
    unsigned char buf[1 << 16];
    size_t len;
};
static struct pipe c2s, s2c;

struct end {
    struct pipe *rx, *tx;
};
static struct end srv_end = {&c2s, &s2c}, cli_end = {&s2c, &c2s};

static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct end *e = ctx;
    (void)ssl;
    if (e->rx->len == 0)
        return WOLFSSL_CBIO_ERR_WANT_READ;
    size_t n = (size_t)sz < e->rx->len ? (size_t)sz : e->rx->len;
    memcpy(buf, e->rx->buf, n);
    memmove(e->rx->buf, e->rx->buf + n, e->rx->len - n);
    e->rx->len -= n;
    return (int)n;
}
static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    struct end *e = ctx;
    (void)ssl;
    if (e->tx->len + (size_t)sz > sizeof(e->tx->buf))
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    memcpy(e->tx->buf + e->tx->len, buf, (size_t)sz);
    e->tx->len += (size_t)sz;
    return sz;
}

/* ---- PSK ---- */
static const unsigned char psk_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                          31, 32};
static unsigned int psk_cli(WOLFSSL *ssl, const char *hint, char *id, unsigned int idlen,
                            unsigned char *key, unsigned int keylen)
{
    (void)ssl; (void)hint;
    snprintf(id, idlen, "device-1");
    if (keylen < sizeof(psk_key))
        return 0;
    memcpy(key, psk_key, sizeof(psk_key));
    return sizeof(psk_key);
}
static unsigned int psk_srv(WOLFSSL *ssl, const char *id, unsigned char *key, unsigned int keylen)
{
    (void)ssl;
    if (strcmp(id, "device-1") != 0 || keylen < sizeof(psk_key))
        return 0;
    memcpy(key, psk_key, sizeof(psk_key));
    return sizeof(psk_key);
}

/* ---- cases ---- */
struct tcase {
    const char *name;
    int tls13;
    int psk;
    const char *ciphers;
};
static const struct tcase cases[] = {
    {"TLS1.3 cert AES128-GCM", 1, 0, "TLS13-AES128-GCM-SHA256"},
    {"TLS1.3 cert AES256-GCM", 1, 0, "TLS13-AES256-GCM-SHA384"},
    {"TLS1.3 cert CHACHA20", 1, 0, "TLS13-CHACHA20-POLY1305-SHA256"},
    {"TLS1.3 PSK (psk_dhe_ke)", 1, 1, "TLS13-AES128-GCM-SHA256"},
    {"TLS1.2 ECDHE-ECDSA-AES128-GCM", 0, 0, "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS1.2 ECDHE-ECDSA-CHACHA20", 0, 0, "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS1.2 ECDHE-ECDSA-AES128-CBC", 0, 0, "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS1.2 PSK-AES128-GCM (static)", 0, 1, "PSK-AES128-GCM-SHA256"},
    {"TLS1.2 ECDHE-PSK-AES128-CBC", 0, 1, "ECDHE-PSK-AES128-CBC-SHA256"},
};

static WOLFSSL_CTX *sctx, *cctx;

/* The default peer callbacks (EmbedGetPeer/EmbedSetPeer) store the fd in the blob and call
 * wolfSSL_set_fd on import, which replaces the I/O context: tern's callbacks say "no peer". */
static int no_get_peer(WOLFSSL *ssl, char *ip, int *ipSz, unsigned short *port, int *fam)
{
    (void)ssl;
    ip[0] = '\0';
    *ipSz = 0;
    *port = 0;
    *fam = 0;
    return WOLFSSL_SUCCESS;
}
static int no_set_peer(WOLFSSL *ssl, char *ip, int ipSz, unsigned short port, int fam)
{
    (void)ssl; (void)ip; (void)ipSz; (void)port; (void)fam;
    return WOLFSSL_SUCCESS;
}
static int default_peer_cbs; /* HIB_DEFAULT_PEER=1: keep wolfSSL's, to show the problem */
static WOLFSSL_SESSION *ticket_sess;

static int new_session_cb(WOLFSSL *ssl, WOLFSSL_SESSION *sess)
{
    (void)ssl;
    if (ticket_sess)
        wolfSSL_SESSION_free(ticket_sess);
    ticket_sess = sess;
    return 1; /* we keep the reference */
}

static void make_ctxs(const struct tcase *tc)
{
    if (getenv("HIB_V23_CLIENT") && !tc->tls13) {
        /* the other way round: a TLS 1.2-only server, tern's version-flexible client */
        sctx = wolfSSL_CTX_new(wolfTLSv1_2_server_method());
        cctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    } else {
        sctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
        cctx = wolfSSL_CTX_new(tc->tls13 ? wolfSSLv23_client_method() : wolfTLSv1_2_client_method());
    }
    wolfSSL_CTX_SetMinVersion(sctx, WOLFSSL_TLSV1_2);
    wolfSSL_CTX_SetMinVersion(cctx, WOLFSSL_TLSV1_2);
    wolfSSL_CTX_SetIORecv(sctx, io_recv);
    wolfSSL_CTX_SetIOSend(sctx, io_send);
    wolfSSL_CTX_SetIORecv(cctx, io_recv);
    wolfSSL_CTX_SetIOSend(cctx, io_send);
    if (!default_peer_cbs) {
        wolfSSL_CTX_SetIOGetPeer(sctx, no_get_peer);
        wolfSSL_CTX_SetIOSetPeer(sctx, no_set_peer);
        wolfSSL_CTX_SetIOGetPeer(cctx, no_get_peer);
        wolfSSL_CTX_SetIOSetPeer(cctx, no_set_peer);
    }
    if (!tc->psk) {
        if (wolfSSL_CTX_use_certificate_file(sctx, CERTS "server-ecc.pem", WOLFSSL_FILETYPE_PEM) != 1 ||
            wolfSSL_CTX_use_PrivateKey_file(sctx, CERTS "ecc-key.pem", WOLFSSL_FILETYPE_PEM) != 1 ||
            wolfSSL_CTX_load_verify_locations(cctx, CERTS "ca-ecc-cert.pem", NULL) != 1) {
            fprintf(stderr, "certs\n");
            exit(1);
        }
        wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_PEER, NULL);
    } else {
        wolfSSL_CTX_set_psk_server_callback(sctx, psk_srv);
        wolfSSL_CTX_set_psk_client_callback(cctx, psk_cli);
        wolfSSL_CTX_set_verify(cctx, WOLFSSL_VERIFY_NONE, NULL);
    }
    wolfSSL_CTX_set_cipher_list(sctx, tc->ciphers);
    wolfSSL_CTX_set_cipher_list(cctx, tc->ciphers);
    wolfSSL_CTX_sess_set_new_cb(cctx, new_session_cb);
    wolfSSL_CTX_UseSessionTicket(cctx);
    wolfSSL_CTX_set_session_cache_mode(cctx, WOLFSSL_SESS_CACHE_OFF);
    wolfSSL_CTX_set_session_cache_mode(sctx, WOLFSSL_SESS_CACHE_OFF);
}

static WOLFSSL *mk(int server)
{
    WOLFSSL *ssl = wolfSSL_new(server ? sctx : cctx);
    wolfSSL_SetIOReadCtx(ssl, server ? &srv_end : &cli_end);
    wolfSSL_SetIOWriteCtx(ssl, server ? &srv_end : &cli_end);
    return ssl;
}

static int handshake(WOLFSSL *s, WOLFSSL *c)
{
    int sd = 0, cd = 0;
    for (int i = 0; i < 50 && !(sd && cd); i++) {
        if (!cd) {
            int r = wolfSSL_connect(c);
            if (r == 1)
                cd = 1;
            else if (wolfSSL_get_error(c, r) != WOLFSSL_ERROR_WANT_READ)
                return wolfSSL_get_error(c, r);
        }
        if (!sd) {
            int r = wolfSSL_accept(s);
            if (r == 1)
                sd = 1;
            else if (wolfSSL_get_error(s, r) != WOLFSSL_ERROR_WANT_READ)
                return wolfSSL_get_error(s, r);
        }
    }
    return sd && cd ? 0 : -1;
}

/* writes msg on a, reads it on b: 0 ok, else the error code */
static int xfer(WOLFSSL *a, WOLFSSL *b, const char *msg)
{
    char buf[256];
    int r = wolfSSL_write(a, msg, (int)strlen(msg));
    if (r != (int)strlen(msg))
        return 1000000 + wolfSSL_get_error(a, r);
    int got = 0;
    for (int i = 0; i < 8 && got < (int)strlen(msg); i++) {
        r = wolfSSL_read(b, buf + got, (int)sizeof(buf) - got);
        if (r > 0)
            got += r;
        else if (wolfSSL_get_error(b, r) != WOLFSSL_ERROR_WANT_READ)
            return wolfSSL_get_error(b, r);
    }
    if (got != (int)strlen(msg) || memcmp(buf, msg, (size_t)got) != 0)
        return -2;
    return 0;
}

/* drains what b has to read (a post-handshake message: KeyUpdate, ticket): WANT_READ is ok */
static int drain(WOLFSSL *b)
{
    char buf[256];
    int r = wolfSSL_read(b, buf, sizeof(buf));
    if (r > 0)
        return -3;
    int e = wolfSSL_get_error(b, r);
    return e == WOLFSSL_ERROR_WANT_READ ? 0 : e;
}

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *ename(int e)
{
    static char b[96];
    if (e == 0)
        return "ok";
    if (e >= 1000000)
        e -= 1000000;
    snprintf(b, sizeof(b), "%d %s", e, wolfSSL_ERR_reason_error_string((unsigned long)e));
    return b;
}

/* hibernates *x (a server when server): export, free, new, import. Fills blob size and
 * heap figures. Returns the import's result (>0 bytes read) or error. */
static int hibernate(WOLFSSL **x, int server, unsigned char *blob, unsigned int *blen,
                     long *heap_conn, int *exp_ret, int fix_version)
{
    unsigned int need = 0;
    int r = wolfSSL_tls_export(*x, NULL, &need);
    (void)r;
    *blen = 2048;
    *exp_ret = wolfSSL_tls_export(*x, blob, blen);
    if (*exp_ret <= 0)
        return -9999;
    if (getenv("HIB_SECTIONS")) {
        /* the blob's sections: header (proto, version, total length), then length-prefixed
         * options, keys, cipher specs (+ AES state unprefixed), peer, [TLS 1.3 secrets] */
        unsigned int i = 4, n = 0;
        printf("SECTIONS %s blob %u: header 4", server ? "server" : "client", *blen);
        const char *names[] = {"options", "keys", "specs", "peer", "tls13"};
        while (i + 2 <= *blen && n < 5) {
            unsigned int l = (unsigned)(blob[i] << 8 | blob[i + 1]);
            printf(", %s 2+%u", names[n], l);
            i += 2 + l;
            if (n == 2 && blob[4 + 2 + 66 + 2 + 0] == 0) {}
            if (n == 2) {
                /* AES state: 32 bytes when the bulk cipher is AES (GCM, CBC) */
                unsigned int rest = *blen - i;
                (void)rest;
            }
            n++;
        }
        printf(" (end at %u)\n", i);
    }
    long before = heap_now;
    unsigned char ver_major = 0, ver_minor = 0;
    int pver = wolfSSL_version(*x);
    (void)ver_major; (void)ver_minor;
    wolfSSL_free(*x);
    *heap_conn = before - heap_now;
    heap_mark = heap_now;
    *x = mk(server);
    if (fix_version && pver == TLS1_2_VERSION)
        wolfSSL_SetVersion(*x, WOLFSSL_TLSV1_2);
    return wolfSSL_tls_import(*x, blob, *blen);
}

/* a pair after handshake and one exchange, with the side under test hibernated and woken */
struct pair {
    WOLFSSL *s, *c;
    WOLFSSL **hib, **peer;
    unsigned int blen;
    long heap_conn;
    long heap_woken; /* heap of the new WOLFSSL after the import */
    int imp;
    int version_fixed;
};

static int pair_up(struct pair *p, int server_side, int hibernate_it, char *err, size_t errlen)
{
    unsigned char blob[2048];
    int exp_ret = 0;
    c2s.len = s2c.len = 0;
    p->s = mk(1);
    p->c = mk(0);
    p->hib = server_side ? &p->s : &p->c;
    p->peer = server_side ? &p->c : &p->s;
    p->version_fixed = 0;
    int r = handshake(p->s, p->c);
    if (r == 0)
        r = xfer(p->c, p->s, "ping-before");
    if (r == 0)
        r = xfer(p->s, p->c, "pong-before");
    if (r) {
        snprintf(err, errlen, "before: %s", ename(r));
        return -1;
    }
    drain(p->c); /* TLS 1.3 tickets of the handshake */
    if (!hibernate_it)
        return 0;
    p->imp = hibernate(p->hib, server_side, blob, &p->blen, &p->heap_conn, &exp_ret, 0);
    p->heap_woken = heap_now - heap_mark;
    if (p->imp <= 0) {
        /* a TLS 1.2 blob into a WOLFSSL of a v23 CTX: set the version first */
        int first = p->imp;
        wolfSSL_free(*p->hib);
        *p->hib = mk(server_side);
        wolfSSL_SetVersion(*p->hib, WOLFSSL_TLSV1_2);
        p->imp = wolfSSL_tls_import(*p->hib, blob, p->blen);
        if (p->imp <= 0) {
            snprintf(err, errlen, "import: %s", ename(p->imp));
            explicit_bzero(blob, sizeof(blob));
            return -1;
        }
        p->version_fixed = first;
    }
    explicit_bzero(blob, sizeof(blob));
    return 0;
}

static void pair_free(struct pair *p)
{
    wolfSSL_free(p->s);
    wolfSSL_free(p->c);
    p->s = p->c = NULL;
}

/* KeyUpdate from a, then data a->b and b->a */
static int keyupdate(WOLFSSL *a, WOLFSSL *b)
{
    int k = wolfSSL_update_keys(a);
    if (k != 1 && wolfSSL_get_error(a, k) != WOLFSSL_ERROR_WANT_WRITE)
        return 2000000 + wolfSSL_get_error(a, k);
    int r = xfer(a, b, "after-keyupdate");
    if (!r)
        r = xfer(b, a, "reply-after-keyupdate");
    /* and once more the other way, so both directions use the new keys */
    if (!r)
        r = xfer(a, b, "again");
    return r;
}

static void run_case(const struct tcase *tc, int server_side, int timing_n)
{
    const char *who = server_side ? "server" : "client";
    char imp_s[200] = "-", data1[120] = "-", data2[120] = "-", ku_self[120] = "-",
         ku_peer[120] = "-", tkt[160] = "-", resume[160] = "-", closing[120] = "-";
    char err[160] = "";
    struct pair p;
    unsigned int blen = 0;
    long heap = 0;

    make_ctxs(tc);
    /* 1. wake by peer data, then local write */
    if (pair_up(&p, server_side, 1, err, sizeof(err)) != 0) {
        printf("| %s | %s | %s |\n", tc->name, who, err);
        pair_free(&p);
        goto out;
    }
    blen = p.blen;
    heap = p.heap_conn;
    long woken = p.heap_woken;
    if (p.version_fixed)
        snprintf(imp_s, sizeof(imp_s), "%s; ok after wolfSSL_SetVersion(TLSv1_2)",
                 ename(p.version_fixed));
    else
        snprintf(imp_s, sizeof(imp_s), "ok");
    int r = xfer(*p.peer, *p.hib, "wake-by-peer-data");
    if (!r)
        r = xfer(*p.hib, *p.peer, "then-local-write");
    snprintf(data1, sizeof(data1), "%s", ename(r));
    pair_free(&p);

    /* 2. wake by local write first */
    if (pair_up(&p, server_side, 1, err, sizeof(err)) == 0) {
        r = xfer(*p.hib, *p.peer, "wake-by-local-write");
        if (!r)
            r = xfer(*p.peer, *p.hib, "then-peer-data");
        snprintf(data2, sizeof(data2), "%s", ename(r));
    }
    pair_free(&p);

    if (tc->tls13) {
        /* 3. KeyUpdate by the woken side */
        if (pair_up(&p, server_side, 1, err, sizeof(err)) == 0)
            snprintf(ku_self, sizeof(ku_self), "%s", ename(keyupdate(*p.hib, *p.peer)));
        pair_free(&p);
        /* 4. KeyUpdate by the peer to the woken side */
        if (pair_up(&p, server_side, 1, err, sizeof(err)) == 0)
            snprintf(ku_peer, sizeof(ku_peer), "%s", ename(keyupdate(*p.peer, *p.hib)));
        pair_free(&p);
        /* 5. a NewSessionTicket from the server after the wake-up, then a resumption */
        if (pair_up(&p, server_side, 1, err, sizeof(err)) == 0) {
            if (ticket_sess) {
                wolfSSL_SESSION_free(ticket_sess);
                ticket_sess = NULL;
            }
            int t = wolfSSL_send_SessionTicket(p.s);
            if (t != 1) {
                snprintf(tkt, sizeof(tkt), "send: %s", ename(wolfSSL_get_error(p.s, t)));
            } else {
                int d = drain(p.c);
                snprintf(tkt, sizeof(tkt), "%s%s", ename(d), ticket_sess ? "" : " (none stored)");
                if (!d && ticket_sess) {
                    c2s.len = s2c.len = 0;
                    WOLFSSL *s2 = mk(1), *c2 = mk(0);
                    wolfSSL_set_session(c2, ticket_sess);
                    int h = handshake(s2, c2);
                    snprintf(resume, sizeof(resume), "%s%s", ename(h),
                             h == 0 ? (wolfSSL_session_reused(c2) ? " (resumed)" : " (full handshake)") : "");
                    wolfSSL_free(s2);
                    wolfSSL_free(c2);
                }
            }
        }
        pair_free(&p);
    }

    /* 6. close_notify while hibernated: the peer closes, then the wake-up reads it */
    {
        unsigned char b2[2048];
        unsigned int b2len = sizeof(b2);
        if (pair_up(&p, server_side, 0, err, sizeof(err)) == 0 &&
            wolfSSL_tls_export(*p.hib, b2, &b2len) > 0) {
            int v12 = wolfSSL_version(*p.hib) == TLS1_2_VERSION;
            wolfSSL_free(*p.hib);
            wolfSSL_shutdown(*p.peer);
            *p.hib = mk(server_side);
            if (v12)
                wolfSSL_SetVersion(*p.hib, WOLFSSL_TLSV1_2);
            int i2 = wolfSSL_tls_import(*p.hib, b2, b2len);
            if (i2 <= 0) {
                snprintf(closing, sizeof(closing), "import: %s", ename(i2));
            } else {
                char buf[64];
                int rr = wolfSSL_read(*p.hib, buf, sizeof(buf));
                int e = wolfSSL_get_error(*p.hib, rr);
                if (e == WOLFSSL_ERROR_ZERO_RETURN) {
                    /* and our close_notify back */
                    int sr = wolfSSL_shutdown(*p.hib);
                    int pr = wolfSSL_shutdown(*p.peer);
                    snprintf(closing, sizeof(closing), "ZERO_RETURN; shutdown back %d, peer sees %d",
                             sr, pr);
                } else {
                    snprintf(closing, sizeof(closing), "%s", ename(e));
                }
            }
            explicit_bzero(b2, sizeof(b2));
        }
        pair_free(&p);
    }
    printf("| %s | %s | %u | %ld | %ld | %s | %s | %s | %s | %s | %s | %s | %s |\n", tc->name, who, blen,
           heap, woken, imp_s, data1, data2, ku_self, ku_peer, tkt, resume, closing);

    if (timing_n > 0 && pair_up(&p, server_side, 0, err, sizeof(err)) == 0) {
        unsigned char blob[2048];
        WOLFSSL *x = *p.hib;
        double *te = malloc(sizeof(double) * (size_t)timing_n);
        double *ti = malloc(sizeof(double) * (size_t)timing_n);
        double *tn = malloc(sizeof(double) * (size_t)timing_n);
        int pv = wolfSSL_version(x);
        int n = 0;
        for (int i = 0; i < timing_n; i++) {
            unsigned int bl = sizeof(blob);
            double t0 = cpu_us();
            wolfSSL_tls_export(x, blob, &bl);
            double t1 = cpu_us();
            WOLFSSL *y = mk(server_side);
            if (pv == TLS1_2_VERSION)
                wolfSSL_SetVersion(y, WOLFSSL_TLSV1_2);
            double t2 = cpu_us();
            int ir = wolfSSL_tls_import(y, blob, bl);
            double t3 = cpu_us();
            if (ir <= 0) {
                printf("timing import failed %d\n", ir);
                wolfSSL_free(y);
                break;
            }
            wolfSSL_free(y);
            double t4 = cpu_us();
            te[i] = t1 - t0;
            ti[i] = t3 - t2;
            tn[i] = t4 - t1;
            n++;
        }
        explicit_bzero(blob, sizeof(blob));
        if (n > 0) {
            qsort(te, (size_t)n, sizeof(double), cmpd);
            qsort(ti, (size_t)n, sizeof(double), cmpd);
            qsort(tn, (size_t)n, sizeof(double), cmpd);
            printf("TIMING | %s | %s | n=%d | export %.2f us | import %.2f us | new+import+free %.2f us | p99 export %.2f import %.2f new+import+free %.2f\n",
                   tc->name, who, n, te[n / 2], ti[n / 2], tn[n / 2], te[n * 99 / 100],
                   ti[n * 99 / 100], tn[n * 99 / 100]);
        }
        free(te);
        free(ti);
        free(tn);
        pair_free(&p);
    }
out:
    wolfSSL_CTX_free(sctx);
    wolfSSL_CTX_free(cctx);
    if (ticket_sess) {
        wolfSSL_SESSION_free(ticket_sess);
        ticket_sess = NULL;
    }
}


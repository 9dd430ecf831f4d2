/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a tern server's record layer after a completed handshake. A wolfSSL
 * client and a server on a tern configuration (fuzz_tls.h) shake hands in memory; then the
 * input is a program of what the client (or a man in the middle) does next. Input layout:
 *   byte 0   bits 0-3  the connection: VARIANTS[] below (configuration, version, suite)
 *            bit 4     resume: one handshake first, then a second one resuming its session
 *                      (TLS 1.3 PSK from a ticket, TLS 1.2 session ticket)
 *            bits 5-6  how the server's reads arrive: CHUNKS[] bytes at most per read, each
 *                      followed by one "would block" (0: whole, no stall)
 *   then operations, one byte each (value % OP_COUNT) with their arguments (missing bytes
 *   read as 0):
 *     APP n16       the client writes n16 % 20001 bytes of application data
 *     RAW n b...    n raw bytes go to the server as they are (plaintext records, garbage)
 *     FLIP o16 x    the byte o16 % pending of the bytes in flight to the server ^= x
 *     DELIVER       the server reads what is in flight, the client reads the answers
 *     KEYUPDATE f   f bit 0: the client sends a KeyUpdate; bit 1: the server does
 *     SERVER n16    the server writes n16 % 20001 bytes; the client reads them
 *     CLOSE         the client sends close_notify
 *     TRUNC n16     the bytes in flight to the server are cut to n16
 *     DUP           the bytes in flight are sent twice (a replay)
 * A final DELIVER, then the server's close_notify, ends the run. A crash, a leak or a sanitizer
 * report is the failure; a handshake that does not complete between the two honest peers
 * aborts (the harness is broken then, not the server).
 */
#include "fuzz_tls.h"

#include "fuzz_cert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct variant {
    enum fuzz_cfg cfg;
    enum fuzz_proto proto;
    const char *ciphers;
    int psk;          /* the client offers the PSK: 1 as "fuzz", 2 as "fuzz-chacha" */
    int client_cert;  /* the client has a certificate */
    int sni_alpn;     /* the client names FUZZ_SNI_NAME and offers h2 */
    uint16_t group;   /* the TLS 1.3 key share, or 0: X25519 */
} variant;

static const variant VARIANTS[16] = {
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS13, "TLS13-AES128-GCM-SHA256", 0, 0, 0, 0},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS13, "TLS13-CHACHA20-POLY1305-SHA256", 0, 0, 0, 0},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS13, "TLS13-AES256-GCM-SHA384", 0, 0, 0, WOLFSSL_ECC_SECP256R1},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS12, "ECDHE-ECDSA-AES128-GCM-SHA256", 0, 0, 0, 0},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS12, "ECDHE-ECDSA-CHACHA20-POLY1305", 0, 0, 0, 0},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS12, "ECDHE-ECDSA-AES256-GCM-SHA384", 0, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS13, "TLS13-AES128-GCM-SHA256", 1, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS12, "PSK-AES128-GCM-SHA256", 1, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS12, "PSK-AES128-CBC-SHA256", 1, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS12, "PSK-AES128-CCM-8", 1, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS12, "ECDHE-PSK-CHACHA20-POLY1305", 1, 0, 0, 0},
    {FUZZ_CFG_PSK, FUZZ_PROTO_TLS13, "TLS13-CHACHA20-POLY1305-SHA256", 2, 0, 0, 0},
    {FUZZ_CFG_FULL, FUZZ_PROTO_TLS13, "TLS13-AES128-GCM-SHA256", 0, 1, 1, 0},
    {FUZZ_CFG_FULL, FUZZ_PROTO_TLS12, "ECDHE-ECDSA-AES128-GCM-SHA256", 0, 1, 1, 0},
    {FUZZ_CFG_FULL, FUZZ_PROTO_TLS13, "TLS13-CHACHA20-POLY1305-SHA256", 0, 1, 1, 0},
    {FUZZ_CFG_CERT, FUZZ_PROTO_TLS13, "TLS13-AES128-GCM-SHA256", 0, 0, 0, WOLFSSL_X25519MLKEM768},
};

static const size_t CHUNKS[4] = {0, 1, 7, 100};

enum op { OP_APP, OP_RAW, OP_FLIP, OP_DELIVER, OP_KEYUPDATE, OP_SERVER, OP_CLOSE, OP_TRUNC,
          OP_DUP, OP_COUNT };

#define MAX_WRITE 20000
#define MAX_IN_FLIGHT (256 * 1024)

/* ---- the client --------------------------------------------------------------------------- */

static fuzz_queue c2s, s2c; /* client to server, server to client */

static int client_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    size_t n = fuzz_queue_pending(&s2c);
    if (n == 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    if (n > (size_t)sz) {
        n = (size_t)sz;
    }
    memcpy(buf, s2c.data + s2c.off, n);
    s2c.off += n;
    return (int)n;
}

static int client_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    fuzz_queue_push(&c2s, buf, (size_t)sz);
    return sz;
}

static unsigned int psk_as(const char *name, char *identity, unsigned int id_max,
                           unsigned char *key, unsigned int key_max)
{
    if (id_max <= strlen(name) || key_max < sizeof(fuzz_psk_key)) {
        return 0;
    }
    strcpy(identity, name);
    memcpy(key, fuzz_psk_key, sizeof(fuzz_psk_key));
    return sizeof(fuzz_psk_key);
}

static unsigned int psk_client(WOLFSSL *ssl, const char *hint, char *identity,
                               unsigned int id_max, unsigned char *key, unsigned int key_max)
{
    (void)ssl;
    (void)hint;
    return psk_as(FUZZ_PSK_IDENTITY, identity, id_max, key, key_max);
}

static unsigned int psk_client13(WOLFSSL *ssl, const char *hint, char *identity,
                                 unsigned int id_max, unsigned char *key, unsigned int key_max,
                                 const char **suite)
{
    *suite = "TLS13-AES128-GCM-SHA256";
    return psk_client(ssl, hint, identity, id_max, key, key_max);
}

static unsigned int psk_client13_chacha(WOLFSSL *ssl, const char *hint, char *identity,
                                        unsigned int id_max, unsigned char *key,
                                        unsigned int key_max, const char **suite)
{
    (void)ssl;
    (void)hint;
    *suite = "TLS13-CHACHA20-POLY1305-SHA256";
    return psk_as(FUZZ_PSK_IDENTITY "-chacha", identity, id_max, key, key_max);
}

static void die(const char *what)
{
    fprintf(stderr, "fuzz_server_records: %s\n", what);
    abort();
}

/* The client context of VARIANTS[i], made on first use and kept. */
static WOLFSSL_CTX *client_ctx(unsigned i)
{
    static WOLFSSL_CTX *ctxs[16];
    const variant *v = &VARIANTS[i];
    if (ctxs[i] != NULL) {
        return ctxs[i];
    }
    fuzz_config(v->cfg); /* initializes wolfSSL */
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(v->proto == FUZZ_PROTO_TLS12 ? wolfTLSv1_2_client_method()
                                                                    : wolfTLSv1_3_client_method());
    if (ctx == NULL || wolfSSL_CTX_set_cipher_list(ctx, v->ciphers) != WOLFSSL_SUCCESS ||
        wolfSSL_CTX_load_verify_buffer(ctx, fuzz_cert_der, sizeof(fuzz_cert_der),
                                       WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
        die("client context");
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
    wolfSSL_CTX_SetIORecv(ctx, client_recv);
    wolfSSL_CTX_SetIOSend(ctx, client_send);
    wolfSSL_CTX_UseSessionTicket(ctx);
    if (v->psk) {
        wolfSSL_CTX_set_psk_client_callback(ctx, psk_client);
        wolfSSL_CTX_set_psk_client_tls13_callback(ctx, v->psk == 2 ? psk_client13_chacha
                                                                   : psk_client13);
    }
    if (v->client_cert &&
        (wolfSSL_CTX_use_certificate_buffer(ctx, fuzz_cert_der, sizeof(fuzz_cert_der),
                                            WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS ||
         wolfSSL_CTX_use_PrivateKey_buffer(ctx, fuzz_key_der, sizeof(fuzz_key_der),
                                           WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)) {
        die("client certificate");
    }
    ctxs[i] = ctx;
    return ctx;
}

static WOLFSSL *client_new(unsigned i)
{
    const variant *v = &VARIANTS[i];
    WOLFSSL *ssl = wolfSSL_new(client_ctx(i));
    if (ssl == NULL) {
        die("wolfSSL_new");
    }
    if (v->sni_alpn) {
        char alpn[] = "h2";
        if (wolfSSL_UseSNI(ssl, WOLFSSL_SNI_HOST_NAME, FUZZ_SNI_NAME,
                           (unsigned short)strlen(FUZZ_SNI_NAME)) != WOLFSSL_SUCCESS ||
            wolfSSL_UseALPN(ssl, alpn, (unsigned)strlen(alpn), WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
                WOLFSSL_SUCCESS) {
            die("SNI/ALPN");
        }
    }
    /* X25519 unless the variant names a group: wolfSSL 5.9.2 clients offer X25519MLKEM768 by
     * default, which costs more per run than the record layer under test (variant 15 has it) */
    uint16_t group = v->group != 0 ? v->group : WOLFSSL_ECC_X25519;
    if (v->proto == FUZZ_PROTO_TLS13 && wolfSSL_UseKeyShare(ssl, group) != WOLFSSL_SUCCESS) {
        die("key share");
    }
    return ssl;
}

/* ---- the two peers -------------------------------------------------------------------------- */

typedef struct peers {
    WOLFSSL *client, *server;
    int client_dead, server_dead;
} peers;

static void peers_free(peers *p)
{
    wolfSSL_free(p->client);
    wolfSSL_free(p->server);
    memset(p, 0, sizeof(*p));
    fuzz_queue_clear(&c2s);
    fuzz_queue_clear(&s2c);
}

/* Seeds for the other targets (tests/fuzz/capture_seeds.sh): with FUZZ_DUMP_DIR set, a resumed
 * run writes its session (fuzz_files' format) and the resuming client's first flight
 * (fuzz_server's format) there. */
static void dump(const char *kind, unsigned i, uint8_t selector, const uint8_t *d, size_t n)
{
    const char *dir = getenv("FUZZ_DUMP_DIR");
    char path[512];
    if (dir == NULL) {
        return;
    }
    snprintf(path, sizeof(path), "%s/%s_v%02u", dir, kind, i);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(&selector, 1, 1, f) != 1 || fwrite(d, 1, n, f) != n || fclose(f) != 0) {
        die("FUZZ_DUMP_DIR");
    }
}

static void dump_session(unsigned i, WOLFSSL_SESSION *session)
{
    int need = wolfSSL_i2d_SSL_SESSION(session, NULL);
    unsigned char *buf = need > 0 ? malloc((size_t)need) : NULL, *w = buf;
    if (buf != NULL && wolfSSL_i2d_SSL_SESSION(session, &w) == need) {
        dump("session", i, 2, buf, (size_t)need); /* fuzz_files: byte 0 % 3 == 2 */
    }
    free(buf);
}

/* A handshake between honest peers; @p session (may be NULL) is offered. */
static void handshake(peers *p, unsigned i, WOLFSSL_SESSION *session)
{
    const variant *v = &VARIANTS[i];
    p->client = client_new(i);
    p->server = fuzz_server_new(v->cfg, v->proto);
    if (session != NULL && wolfSSL_set_session(p->client, session) != WOLFSSL_SUCCESS) {
        die("wolfSSL_set_session");
    }
    int cdone = 0, sdone = 0;
    for (int turn = 0; turn < 10000 && !(cdone && sdone); turn++) {
        if (!cdone) {
            int rc = wolfSSL_connect(p->client);
            if (turn == 0 && session != NULL) {
                /* fuzz_server: configuration | versions << 2 */
                uint8_t sel = (uint8_t)(v->cfg | (v->proto << 2));
                dump("resume_flight", i, sel, c2s.data + c2s.off, fuzz_queue_pending(&c2s));
            }
            cdone = rc == WOLFSSL_SUCCESS;
            if (!cdone && !fuzz_would_block(wolfSSL_get_error(p->client, rc))) {
                break;
            }
        }
        if (!sdone) {
            int rc = wolfSSL_accept(p->server);
            sdone = rc == WOLFSSL_SUCCESS;
            if (!sdone && !fuzz_would_block(wolfSSL_get_error(p->server, rc))) {
                break;
            }
        }
    }
    if (!cdone || !sdone) {
        char e1[80], e2[80];
        wolfSSL_ERR_error_string_n((unsigned long)-wolfSSL_get_error(p->client, 0), e1, sizeof e1);
        wolfSSL_ERR_error_string_n((unsigned long)-wolfSSL_get_error(p->server, 0), e2, sizeof e2);
        fprintf(stderr, "variant %u: client %s, server %s\n", i, e1, e2);
        die("the honest handshake failed");
    }
}

/* The server reads what is in flight; then the client reads what the server sent. */
static void deliver(peers *p)
{
    static char buf[MAX_WRITE + 512];
    if (!p->server_dead) {
        size_t turns = 8 + 2 * fuzz_queue_pending(&c2s);
        for (size_t t = 0; t < turns; t++) {
            int n = wolfSSL_read(p->server, buf, (int)sizeof(buf));
            if (n > 0) {
                continue;
            }
            int err = wolfSSL_get_error(p->server, n);
            if (!fuzz_would_block(err)) {
                p->server_dead = 1;
                break;
            }
            if (fuzz_queue_pending(&c2s) == 0) {
                break;
            }
        }
    }
    if (!p->client_dead) {
        for (int t = 0; t < 64; t++) {
            int n = wolfSSL_read(p->client, buf, (int)sizeof(buf));
            if (n > 0) {
                continue;
            }
            if (!fuzz_would_block(wolfSSL_get_error(p->client, n))) {
                p->client_dead = 1;
            }
            break;
        }
    }
}

/* ---- the program ------------------------------------------------------------------------------ */

typedef struct reader {
    const uint8_t *p;
    size_t n, off;
} reader;

static unsigned u8(reader *r)
{
    return r->off < r->n ? r->p[r->off++] : 0;
}

static unsigned u16(reader *r)
{
    unsigned hi = u8(r);
    return hi << 8 | u8(r);
}

static void write_all(WOLFSSL *ssl, size_t len)
{
    static char zeros[MAX_WRITE];
    if (len > 0) {
        wolfSSL_write(ssl, zeros, (int)len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    unsigned vi = data[0] & 15;
    int resume = (data[0] >> 4) & 1;
    size_t chunk = CHUNKS[(data[0] >> 5) & 3];
    reader r = {data + 1, size - 1, 0};

    fuzz_server_io = (fuzz_io){.in = &c2s, .out = &s2c};
    peers p = {0};
    handshake(&p, vi, NULL);
    if (resume) {
        deliver(&p); /* the client takes its ticket */
        WOLFSSL_SESSION *session = wolfSSL_get1_session(p.client);
        peers_free(&p);
        if (session == NULL) {
            die("no session to resume");
        }
        if (getenv("FUZZ_DUMP_DIR") != NULL) {
            dump_session(vi, session);
        }
        handshake(&p, vi, session);
        wolfSSL_SESSION_free(session);
    }
    fuzz_server_io.chunk = chunk;
    fuzz_server_io.stall = chunk > 0;

    while (r.off < r.n && !p.server_dead) {
        switch (u8(&r) % OP_COUNT) {
        case OP_APP:
            if (fuzz_queue_pending(&c2s) > MAX_IN_FLIGHT) {
                deliver(&p); /* bounded memory per input */
            }
            if (!p.client_dead) {
                write_all(p.client, u16(&r) % (MAX_WRITE + 1));
            }
            break;
        case OP_RAW: {
            size_t n = u8(&r);
            if (n > r.n - r.off) {
                n = r.n - r.off;
            }
            fuzz_queue_push(&c2s, r.p + r.off, n);
            r.off += n;
            break;
        }
        case OP_FLIP: {
            size_t at = u16(&r);
            unsigned x = u8(&r);
            size_t pending = fuzz_queue_pending(&c2s);
            if (pending > 0) {
                c2s.data[c2s.off + at % pending] ^= (uint8_t)x;
            }
            break;
        }
        case OP_DELIVER:
            deliver(&p);
            break;
        case OP_KEYUPDATE: {
            unsigned f = u8(&r);
            if ((f & 1) && !p.client_dead) {
                wolfSSL_update_keys(p.client);
            }
            if (f & 2) {
                wolfSSL_update_keys(p.server);
            }
            break;
        }
        case OP_SERVER:
            write_all(p.server, u16(&r) % (MAX_WRITE + 1));
            deliver(&p);
            break;
        case OP_CLOSE:
            if (!p.client_dead) {
                wolfSSL_shutdown(p.client);
            }
            break;
        case OP_TRUNC: {
            size_t keep = u16(&r);
            if (keep < fuzz_queue_pending(&c2s)) {
                c2s.len = c2s.off + keep;
            }
            break;
        }
        case OP_DUP: {
            size_t pending = fuzz_queue_pending(&c2s);
            if (pending > 0 && pending <= 65536) {
                uint8_t *copy = malloc(pending);
                if (copy == NULL) {
                    abort();
                }
                memcpy(copy, c2s.data + c2s.off, pending);
                fuzz_queue_push(&c2s, copy, pending);
                free(copy);
            }
            break;
        }
        }
    }
    deliver(&p);
    if (!p.server_dead) {
        wolfSSL_shutdown(p.server);
    }
    peers_free(&p);
    fuzz_server_io = (fuzz_io){0};
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The TLS fuzz targets' shared harness (fuzz_tls.h): configurations, server connections and
 * in-memory queues. Configurations are made once and kept for the process (LeakSanitizer sees
 * them through the static pointers); each connection is freed by the target that made it.
 */
#include "fuzz_tls.h"

#include "fuzz_cert.h"

#include <tern/session.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

const uint8_t fuzz_psk_key[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                  11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                  22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

fuzz_io fuzz_server_io;

static void die(const char *what, const tern_ssl_config *cfg)
{
    fprintf(stderr, "fuzz harness: %s: %s\n", what,
            cfg != NULL ? tern_ssl_config_error_string(cfg) : "failed");
    abort();
}

/* ---- queues ------------------------------------------------------------------------------- */

void fuzz_queue_push(fuzz_queue *q, const void *p, size_t n)
{
    if (n == 0) {
        return;
    }
    if (q->off > 0 && q->off == q->len) {
        q->off = q->len = 0;
    }
    if (q->len + n > q->cap) {
        size_t cap = q->cap ? q->cap : 4096;
        while (cap < q->len + n) {
            cap *= 2;
        }
        uint8_t *d = realloc(q->data, cap);
        if (d == NULL) {
            abort();
        }
        q->data = d;
        q->cap = cap;
    }
    memcpy(q->data + q->len, p, n);
    q->len += n;
}

size_t fuzz_queue_pending(const fuzz_queue *q)
{
    return q->len - q->off;
}

void fuzz_queue_clear(fuzz_queue *q)
{
    q->off = q->len = 0;
}

void fuzz_queue_free(fuzz_queue *q)
{
    free(q->data);
    memset(q, 0, sizeof(*q));
}

/* ---- server I/O ------------------------------------------------------------------------------ */

static int server_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    fuzz_io *io = &fuzz_server_io;
    (void)ssl;
    (void)ctx;
    if (io->in == NULL || fuzz_queue_pending(io->in) == 0) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    if (io->stall && io->stalled) {
        io->stalled = 0;
        return WOLFSSL_CBIO_ERR_WANT_READ;
    }
    size_t n = fuzz_queue_pending(io->in);
    if (n > (size_t)sz) {
        n = (size_t)sz;
    }
    if (io->chunk > 0 && n > io->chunk) {
        n = io->chunk;
    }
    memcpy(buf, io->in->data + io->in->off, n);
    io->in->off += n;
    io->stalled = 1;
    return (int)n;
}

static int server_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    (void)ctx;
    if (fuzz_server_io.out != NULL) {
        fuzz_queue_push(fuzz_server_io.out, buf, (size_t)sz);
    }
    return sz;
}

int fuzz_would_block(int err)
{
    return err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE;
}

/* ---- PSK: the harness's own callbacks (tern's look for a tern socket) ------------------------ */

/* The identities the harness knows, all with fuzz_psk_key: wolfSSL takes a TLS 1.3 PSK only
 * for the one suite its callback names, so the identity picks the suite (the fuzzer reaches
 * every suite by changing the identity). */
static const struct {
    const char *identity, *suite;
} PSK_IDS[] = {
    {FUZZ_PSK_IDENTITY, "TLS13-AES128-GCM-SHA256"},
    {FUZZ_PSK_IDENTITY "-chacha", "TLS13-CHACHA20-POLY1305-SHA256"},
    {FUZZ_PSK_IDENTITY "-aes256", "TLS13-AES256-GCM-SHA384"},
    {FUZZ_PSK_IDENTITY "-ccm", "TLS13-AES128-CCM-SHA256"},
};

static int psk_id(const char *identity)
{
    for (size_t i = 0; identity != NULL && i < sizeof(PSK_IDS) / sizeof(PSK_IDS[0]); i++) {
        if (strcmp(identity, PSK_IDS[i].identity) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static unsigned int psk_server(WOLFSSL *ssl, const char *identity, unsigned char *key,
                               unsigned int max)
{
    (void)ssl;
    if (psk_id(identity) < 0 || max < sizeof(fuzz_psk_key)) {
        return 0;
    }
    memcpy(key, fuzz_psk_key, sizeof(fuzz_psk_key));
    return sizeof(fuzz_psk_key);
}

static unsigned int psk_server13(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                 unsigned int max, const char **suite)
{
    int i = psk_id(identity);
    *suite = PSK_IDS[i >= 0 ? i : 0].suite;
    return psk_server(ssl, identity, key, max);
}

/* ---- configurations -------------------------------------------------------------------------- */

/* Fixed ticket keys, loaded through tern's key-file reader from a memory file, so that a
 * ticket sealed in one run opens in another (seeds may carry one). */
static tern_ticket_keys *fixed_ticket_keys(void)
{
    static const char line[] = "# fuzz ticket key\n"
                               "74657266757a7a7469636b65742d3031"                 /* name */
                               "000102030405060708090a0b0c0d0e0f"
                               "101112131415161718191a1b1c1d1e1f\n";              /* key */
    tern_ticket_keys *k = tern_ticket_keys_new(604800, TERN_TICKET_ROTATE_NEVER);
    int fd = memfd_create("fuzz-ticket-keys", 0);
    char path[64], err[256];
    if (k == NULL || fd < 0 || write(fd, line, sizeof(line) - 1) != (ssize_t)sizeof(line) - 1) {
        die("ticket keys", NULL);
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (tern_ticket_keys_load_file(k, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz harness: %s\n", err);
        abort();
    }
    close(fd);
    return k;
}

static void set_cert(tern_ssl_config *cfg)
{
    if (tern_ssl_config_set_local_certificate(cfg, fuzz_cert_der, sizeof(fuzz_cert_der),
                                              TERN_ENCODING_DER) != 0 ||
        tern_ssl_config_set_private_key(cfg, fuzz_key_der, sizeof(fuzz_key_der),
                                        TERN_ENCODING_DER, NULL) != 0) {
        die("certificate", cfg);
    }
}

static tern_ssl_config *make_config(enum fuzz_cfg which)
{
    static tern_ticket_keys *keys;
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (cfg == NULL) {
        die("tern_ssl_config_new", NULL);
    }
    if (keys == NULL) {
        keys = fixed_ticket_keys();
    }
    if (which != FUZZ_CFG_PSK) {
        set_cert(cfg);
    }
    if (which != FUZZ_CFG_CERT && tern_ssl_config_enable_psk(cfg, FUZZ_PSK_HINT) != 0) {
        die("PSK", cfg);
    }
    if (which == FUZZ_CFG_FULL) {
        tern_ssl_config *alt = tern_ssl_config_new();
        if (alt == NULL) {
            die("tern_ssl_config_new", NULL);
        }
        set_cert(alt);
        if (tern_ssl_config_add_ca_certificates(cfg, fuzz_cert_der, sizeof(fuzz_cert_der),
                                                TERN_ENCODING_DER) != 0 ||
            tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_VERIFY_PEER) != 0 ||
            tern_ssl_config_set_alpn(cfg, FUZZ_ALPN) != 0 ||
            tern_ssl_config_add_server_name(cfg, FUZZ_SNI_NAME, alt) != 0) {
            die("full configuration", cfg);
        }
        tern_ssl_config_unref(alt); /* cfg holds it */
    }
    if (tern_ssl_config_set_ticket_keys(cfg, keys) != 0 ||
        tern_ssl_config_set_session_tickets(cfg, 1, true) != 0) {
        die("tickets", cfg);
    }
    tern__ssl_config_freeze(cfg);
    return cfg;
}

tern_ssl_config *fuzz_config(enum fuzz_cfg which)
{
    static tern_ssl_config *cfgs[FUZZ_CFG_COUNT];
    if (cfgs[which] == NULL) {
        cfgs[which] = make_config(which);
    }
    return cfgs[which];
}

WOLFSSL *fuzz_server_new(enum fuzz_cfg which, enum fuzz_proto proto)
{
    tern_ssl_config *cfg = fuzz_config(which);
    WOLFSSL *ssl = wolfSSL_new(cfg->server_ctx);
    if (ssl == NULL) {
        die("wolfSSL_new", NULL);
    }
    wolfSSL_SSLSetIORecv(ssl, server_recv);
    wolfSSL_SSLSetIOSend(ssl, server_send);
    wolfSSL_SetIOReadCtx(ssl, NULL);
    wolfSSL_SetIOWriteCtx(ssl, NULL);
    if (proto == FUZZ_PROTO_TLS13) {
        wolfSSL_set_min_proto_version(ssl, TLS1_3_VERSION);
    } else if (proto == FUZZ_PROTO_TLS12) {
        wolfSSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    }
    /* as ssl/socket_tls.c does per connection: the verify mode, ALPN, PSK callbacks */
    if (which == FUZZ_CFG_FULL) {
        wolfSSL_set_verify(ssl, WOLFSSL_VERIFY_PEER | WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        wolfSSL_set_verify(ssl, WOLFSSL_VERIFY_PEER, NULL); /* tern's AUTO: ask, not require */
    }
    if (cfg->alpn != NULL) {
        char list[64];
        snprintf(list, sizeof(list), "%s", cfg->alpn);
        if (wolfSSL_UseALPN(ssl, list, (unsigned)strlen(list), WOLFSSL_ALPN_FAILED_ON_MISMATCH) !=
            WOLFSSL_SUCCESS) {
            die("ALPN", NULL);
        }
    }
    if (cfg->psk_enabled) {
        wolfSSL_set_psk_server_callback(ssl, psk_server);
        wolfSSL_set_psk_server_tls13_callback(ssl, psk_server13);
    }
    return ssl;
}

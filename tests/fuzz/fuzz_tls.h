/* SPDX-License-Identifier: MIT */
/*
 * What the TLS fuzz targets share: tern configurations built once per process (a certificate
 * server, a PSK server, a server with both that also asks for client certificates, with ALPN
 * and an SNI name), server connections made from their wolfSSL contexts the way
 * ssl/socket_tls.c makes them, and byte queues that stand in for the network. Everything runs
 * on the fuzzer's one thread: no sockets, no reactor, no sleeps.
 *
 * A server connection's read and write contexts stay NULL, as tern's callbacks on the
 * configuration expect when no tern socket is attached (the SNI callback looks for one); its
 * I/O goes through fuzz_server_io, which the target points at its queues.
 */
#ifndef TERN_FUZZ_TLS_H
#define TERN_FUZZ_TLS_H

#include "ssl_internal.h"

#include <stddef.h>
#include <stdint.h>

/* The configurations a server connection can be made from. */
enum fuzz_cfg {
    FUZZ_CFG_CERT,      /* P-256 certificate, tern's default suites, tickets from fixed keys */
    FUZZ_CFG_PSK,       /* PSK only (FUZZ_PSK_IDENTITY), every PSK suite tern enables */
    FUZZ_CFG_FULL,      /* certificate + PSK, client certificates required, ALPN, SNI */
    FUZZ_CFG_COUNT
};

/* Protocol versions a connection allows. */
enum fuzz_proto { FUZZ_PROTO_ANY, FUZZ_PROTO_TLS13, FUZZ_PROTO_TLS12 };

#define FUZZ_PSK_IDENTITY "fuzz" /* TLS 1.3: AES-128-GCM; "fuzz-chacha", "fuzz-aes256" and
                                 * "fuzz-ccm" are the same key for the other suites */
#define FUZZ_PSK_HINT "fuzz-hint"
#define FUZZ_SNI_NAME "alt.test"
#define FUZZ_ALPN "h2,http/1.1"

/* The PSK every side uses: bytes 0x00..0x1f (hex 000102...1f). */
extern const uint8_t fuzz_psk_key[32];

/* A growable byte queue (one direction of a connection). */
typedef struct fuzz_queue {
    uint8_t *data;
    size_t len, cap, off; /* unread bytes: data[off..len) */
} fuzz_queue;

void fuzz_queue_push(fuzz_queue *q, const void *p, size_t n);
size_t fuzz_queue_pending(const fuzz_queue *q);
void fuzz_queue_clear(fuzz_queue *q);
void fuzz_queue_free(fuzz_queue *q);

/* Where the server connections of this process read and write. */
typedef struct fuzz_io {
    fuzz_queue *in;  /* the client's bytes */
    fuzz_queue *out; /* the server's bytes; NULL: dropped */
    size_t chunk;    /* at most this many bytes per read (0: as many as asked) */
    int stall;       /* after each read, one "would block" (wolfSSL's resume path) */
    int stalled;     /* the last read returned data: the next one blocks */
} fuzz_io;

extern fuzz_io fuzz_server_io;

/* The configuration @p which, made on first use (the process keeps it). Aborts on failure. */
tern_ssl_config *fuzz_config(enum fuzz_cfg which);

/* A server connection on @p which's context, limited to @p proto, reading and writing through
 * fuzz_server_io. Aborts on failure. The caller frees it with wolfSSL_free. */
WOLFSSL *fuzz_server_new(enum fuzz_cfg which, enum fuzz_proto proto);

/* True when @p err (wolfSSL_get_error) means "call again when there is more". */
int fuzz_would_block(int err);

#endif

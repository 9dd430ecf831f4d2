/* SPDX-License-Identifier: MIT */
/*
 * Two TLS engines (ssl/tls_engine.h) joined in memory, for the in-memory engine tests
 * (test_tls_engine, test_tls_hibernate): each side's records are appended to its own queue,
 * which is the other side's input; the test pumps ciphertext between them, no socket, no
 * reactor, no thread. A server's PSK identity is answered by the pump (inline, after some
 * rounds, or rejected) as tern's socket layer would.
 *
 * The configurations the tests make are kept here and released by tp_teardown, so a failed
 * assertion leaks nothing the sanitizers would report as the test's own.
 *
 * Needs cmocka (failures are assertions) and TERN_TEST_CERTS (the directory tests/certs/gen.sh
 * wrote), which the build gives this library and its users.
 */
#ifndef TERN_TEST_TLS_PAIR_H
#define TERN_TEST_TLS_PAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tls_engine.h"

/* ---- one direction of the wire --------------------------------------------------------- */

typedef struct tp_queue {
    uint8_t *data;
    size_t len, off; /* unread: data[off..len) */
    size_t cap;
} tp_queue;

/* An engine's sink (tern__tls_out_fn): appends to the tp_queue @ctx. */
int tp_queue_push(void *ctx, const void *p, size_t n);
size_t tp_queue_pending(const tp_queue *q);
const uint8_t *tp_queue_unread(const tp_queue *q);

/* ---- one side -------------------------------------------------------------------------- */

/* How a server side answers the PSK identity its handshake holds on. */
enum tp_psk_answer { TP_PSK_NONE, TP_PSK_INLINE, TP_PSK_DEFERRED, TP_PSK_REJECT };

typedef struct tp_side {
    tern__tls *tls;
    tp_queue out;   /* records it wrote: the other side's input */
    tp_queue plain; /* plaintext it read */
    bool done, closed;
    int err; /* the first failure (negative), 0 */
    enum tp_psk_answer psk;
    const uint8_t *psk_key;
    size_t psk_key_len;
    int psk_hash;
    int psk_waits; /* calls that found the handshake held on the identity */
    int psk_defer; /* TP_PSK_DEFERRED: calls left unanswered before the answer */
    char identity[64];
} tp_side;

/* A 32-byte PSK both sides of the PSK cases know. */
extern const uint8_t tp_key32[32];

/* A standalone engine for @cfg writing into sd->out; @peer: a client's SNI/verify name. */
void tp_side_init(tp_side *sd, tern_ssl_config *cfg, bool server, const char *peer);
void tp_side_start(tp_side *sd, bool server);
void tp_side_free(tp_side *sd);
/* Reads all the plaintext @in gives (up to @max bytes of input) into sd->plain; the peer's
 * close_notify sets sd->closed, a failure sd->err. True if anything moved. */
bool tp_side_read(tp_side *sd, tp_queue *in, size_t max);
/* One step of @sd (handshake, then reads) with at most @max bytes of @in. True if anything
 * moved. A hibernated side does nothing: its input waits until the test wakes it. */
bool tp_side_step(tp_side *sd, tp_queue *in, size_t max);

typedef struct tp_pair {
    tp_side c, s;
} tp_pair;

/* Pumps until neither side moves (bounded); @step: bytes per call (0: all there is). */
void tp_pump(tp_pair *p, size_t step);
/* Starts the server, then the client. */
void tp_start_pair(tp_pair *p);
void tp_pair_free(tp_pair *p);
/* Application data both ways, checked: "ping" from the client, 40,000 bytes from the server. */
void tp_exchange(tp_pair *p, size_t step);
/* Starts @p and pumps the handshake to its end; fails the test with both sides' reasons. */
void tp_handshake_ok(tp_pair *p, size_t step);
/* wolfSSL_version() of an awake side's connection. */
int tp_version_of(const tp_side *sd);

/* ---- configurations -------------------------------------------------------------------- */

/* The ticket keys every server configuration shares (tp_setup makes them). */
extern tern_ticket_keys *tp_ticket_keys;

/* Keeps @cfg until tp_teardown. */
tern_ssl_config *tp_keep(tern_ssl_config *cfg);
/* A server with TERN_TEST_CERTS/@name.pem and .key, TLS 1.2..@max, @ciphers (NULL: the
 * default list), no client certificates asked, tp_ticket_keys. */
tern_ssl_config *tp_server_cfg(const char *name, enum tern_ssl_protocol max, const char *ciphers);
/* A client trusting TERN_TEST_CERTS/@ca, TLS 1.2..@max, @ciphers (NULL: the default). */
tern_ssl_config *tp_client_cfg(const char *ca, enum tern_ssl_protocol max, const char *ciphers);
/* A PSK-enabled configuration for either side, TLS 1.2..@max, @ciphers (NULL: the default). */
tern_ssl_config *tp_psk_cfg(enum tern_ssl_protocol max, const char *ciphers);

/* cmocka per-test setup / teardown: the ticket keys; every configuration kept. */
int tp_setup(void **state);
int tp_teardown(void **state);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The server under test of the conformance tests: an in-process tern TLS server on
 * 127.0.0.1 (one reactor), with the test PKI's ECDSA P-256 certificate, that starts the
 * handshake on every accepted socket and echoes after it. It records, per connection, the
 * error code and error string tern reported, so a test can check what tern says about a
 * refusal as well as what went over the wire.
 *
 * Threads: the server's callbacks run on its reactor; the test thread reads the counters
 * (atomics) and, once `disconnected` has counted a connection (release), its last error
 * string (acquire).
 */
#ifndef TERN_CONF_SERVER_H
#define TERN_CONF_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <tern/tern.h>

#include "tlsbuild.h"

typedef struct cs_options {
    enum tern_ssl_protocol min, max; /* 0: the defaults */
    const char *groups;              /* tern_ssl_config_set_groups (NULL: the default) */
    const char *ciphers;             /* tern_ssl_config_set_ciphers (NULL: the default) */
} cs_options;

typedef struct cs_server {
    tern_runtime *rt;
    tern_ssl_config *cfg;
    tern_server *srv;
    uint16_t port;
    bool started;
    /* ro: written on the reactor */
    _Atomic uint64_t incoming, encrypted, errors, disconnected;
    _Atomic int last_error;
    char last_error_string[512]; /* valid once `disconnected` counted the connection */
} cs_server;

/* Whether the test PKI is in @p certs (tests/certs/gen.sh needs the openssl command): the
 * tests exit 77 (skipped) without it. */
bool cs_have_certs(const char *certs);

/* Starts a server with @p o (NULL: defaults) and the certificates of directory @p certs.
 * @return 0, or a negative code with a message on stderr. */
int cs_start(cs_server *s, const cs_options *o, const char *certs);

/* Stops and frees everything cs_start made. */
void cs_stop(cs_server *s);

/* Waits until @p n connections have been closed in all. @return whether they were. */
bool cs_wait_disconnected(cs_server *s, uint64_t n, unsigned timeout_ms);

/* Connects a blocking-with-deadline client to the server. @return the fd or -errno. */
int cs_connect(const cs_server *s);

/* Connects, sends @p len bytes of @p bytes while reading the answer into @p a (tb_exchange,
 * @p until), closes. @return 0 or a negative code (connect failed, poll/recv error). */
int cs_roundtrip(const cs_server *s, const void *bytes, size_t len, int until,
                 unsigned timeout_ms, tb_answer *a);

/* Fails the test unless @p a is a fatal alert @p alert sent before any ServerHello and
 * followed by the end of the stream; then waits for the server to count @p nth
 * disconnection and checks that its error string names the alert. */
void cs_expect_refusal(cs_server *s, const tb_answer *a, int alert, uint64_t nth);

/* Fails the test unless @p a holds a ServerHello (not a HelloRetryRequest) and no alert
 * before it (saying what the server reported for its @p nth closed connection). */
void cs_expect_server_hello(cs_server *s, const tb_answer *a, uint64_t nth);

#endif

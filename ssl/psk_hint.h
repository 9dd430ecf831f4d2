/* SPDX-License-Identifier: MIT */
/*
 * A TLS 1.2 PSK client's view of the server's first flight, read before wolfSSL sees it: the
 * suite of the ServerHello, the psk_identity_hint that opens a PSK suite's ServerKeyExchange
 * (RFC 4279 2, 3; RFC 5489 2: ECDHE_PSK's too; none when the message is left out), and where
 * the record that completes the ServerHelloDone starts. wolfSSL asks for the client's key
 * synchronously while it answers the ServerHelloDone, so the engine feeds wolfSSL the stream
 * only up to that record, fires `psk_authentication_required` with the hint, and feeds the
 * rest once the answer is known.
 *
 * Untrusted input, fed in pieces of any size (records split anywhere, messages across
 * records). The scanner never fails a connection: anything it does not expect (a record type
 * other than handshake or alert, a malformed message, a suite that is not PSK) makes it stop,
 * and wolfSSL judges the stream as it would without it. Nothing is allocated.
 */
#ifndef TERN_SSL_PSK_HINT_H
#define TERN_SSL_PSK_HINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/psk.h>

enum tern__psk_hint_result {
    TERN__PSK_HINT_MORE = 0, /* feed more */
    TERN__PSK_HINT_HOLD = 1, /* a PSK suite's ServerHelloDone: hold at `hold_at` (hint set) */
    TERN__PSK_HINT_STOP = 2, /* not a PSK suite, or not a stream to read: let wolfSSL judge */
};

typedef struct tern__psk_hint_scan {
    uint64_t off;          /* stream bytes scanned */
    uint64_t rec_start;    /* stream offset of the current record's header */
    uint8_t rhdr[5];       /* the current record's header, as it comes */
    size_t rhdr_have;
    size_t rec_left;       /* body bytes of the current record still to come */
    uint8_t mhdr[4];       /* the current handshake message's header */
    size_t mhdr_have;
    size_t msg_left;       /* body bytes of the current message still to come */
    uint8_t body[2 + TERN_PSK_MAX_IDENTITY]; /* the first bytes of a ServerHello / SKE body */
    size_t body_have;
    int state;             /* enum tern__psk_hint_result once done, else MORE */
    bool psk_suite;        /* the ServerHello chose a PSK suite */
    bool seen_hello;
    uint64_t hold_at;      /* with HOLD: the offset wolfSSL may read up to */
    char hint[TERN_PSK_MAX_IDENTITY + 1]; /* with HOLD: the hint, "" when none (cut to fit) */
} tern__psk_hint_scan;

/* Feeds @len bytes of the server-to-client stream, which follow what was fed before. */
int tern__psk_hint_feed(tern__psk_hint_scan *sc, const uint8_t *data, size_t len);

#endif

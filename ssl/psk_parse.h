/* SPDX-License-Identifier: MIT */
/*
 * Reads PSK identities out of a TLS client's byte stream before wolfSSL sees it, so the
 * runtime can ask an authenticator asynchronously and feed wolfSSL only once the key is
 * known (DESIGN.md, "PSK"). Untrusted input: every length is checked against what contains
 * it, everything is bounded, and the parser is fuzzed (tests/fuzz/fuzz_psk_parse.c).
 *
 * Input is the client-to-server stream from its first byte, fed in pieces of any size:
 * records may be split anywhere and handshake messages may span records. The parser copies
 * what it needs; it never keeps a pointer to the caller's bytes.
 *
 * What it finds:
 * - TLS 1.3: the identities of the ClientHello's pre_shared_key extension (RFC 8446 4.2.11),
 *   the binder length of the first one kept (its hash), the TLS 1.3 suites offered, and
 *   whether the client offers TLS 1.3 (supported_versions, 4.2.1).
 * - TLS 1.2: the psk_identity that opens the ClientKeyExchange (RFC 4279 2, RFC 5489 2):
 *   when the ClientHello did not offer TLS 1.3 (or offered no pre_shared_key), the parser goes
 *   on past the ClientHello and reports the identity of the ClientKeyExchange.
 * A change_cipher_spec record first is an error; one after a TLS 1.2 ClientHello and before any
 * ClientKeyExchange means an abbreviated (resumed) handshake: NO_PSK. Records must carry
 * version 3.x and 1..2^14 bytes; an empty TLS 1.2 psk_identity is refused (RFC 4279 allows
 * it; no deployment uses it, and an empty identity cannot name a key).
 */
#ifndef TERN_SSL_PSK_PARSE_H
#define TERN_SSL_PSK_PARSE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define TERN__PSK_MAX_IDENTITIES 8    /* identities kept from one ClientHello */
#define TERN__PSK_MAX_IDENTITY 255    /* bytes per identity kept; longer is an error */
#define TERN__PSK_MAX_EXTERNAL 128    /* TLS 1.3: a longer identity is a session ticket (ours
                                       * are > 146 bytes): left to wolfSSL, not kept */
#define TERN__PSK_MAX_HANDSHAKE 65536 /* largest handshake message reassembled */

enum tern__psk_result {
    TERN__PSK_NEED_MORE = 0,   /* feed more bytes */
    TERN__PSK_IDENTITIES = 1,  /* `identities` holds what was found (ClientHello or CKE) */
    TERN__PSK_NO_PSK = 2,      /* a TLS 1.3 ClientHello without pre_shared_key or whose
                                * identities are all session tickets, or a TLS 1.2
                                * resumption: no identity to wait for */
    TERN__PSK_ERROR = -1,      /* malformed; `error` says what; the connection must fail */
};

typedef struct tern__psk_identity {
    uint16_t len;
    uint8_t bytes[TERN__PSK_MAX_IDENTITY];
} tern__psk_identity;

typedef struct tern__psk_parser {
    /* record layer */
    uint8_t hdr[5];
    uint8_t hdr_have;
    uint8_t rec_type;
    uint32_t rec_left;      /* bytes of the current record body still to come */
    /* handshake reassembly */
    uint8_t *msg;           /* the message being reassembled, grown to its length */
    uint32_t msg_cap;
    uint32_t msg_have;      /* bytes of the current message (header included) */
    uint32_t msg_need;      /* 4 + length, once the header is in */
    /* progress */
    uint8_t stage;          /* 0: ClientHello expected, 1: ClientKeyExchange, 2: done */
    uint8_t offers_tls13;   /* the ClientHello listed 0x0304 in supported_versions */
    uint8_t from_cke;       /* the identities came from a TLS 1.2 ClientKeyExchange */
    uint8_t count;          /* identities found */
    uint8_t tickets;        /* TLS 1.3 identities skipped as session tickets */
    uint8_t tls13_suites;   /* bit n: the ClientHello offered the TLS 1.3 suite {0x13, n},
                             * n 1..5 (RFC 8446 B.4) */
    uint8_t binder_len;     /* TLS 1.3: the binder length of identities[0] (32: SHA-256,
                             * 48: SHA-384; RFC 8446 4.2.11.2) */
    int8_t result;          /* the result once decided (stage 2) */
    tern__psk_identity identities[TERN__PSK_MAX_IDENTITIES];
    const char *error;      /* static text when TERN__PSK_ERROR was returned */
} tern__psk_parser;

/* Zeroes @p. */
void tern__psk_parser_init(tern__psk_parser *p);
/* Frees the reassembly buffer. */
void tern__psk_parser_free(tern__psk_parser *p);
/* Feeds @len more bytes of the client's stream. Returns a result; once a result other than
 * NEED_MORE was returned, later calls return it again without reading. */
int tern__psk_parser_feed(tern__psk_parser *p, const uint8_t *data, size_t len);

#endif

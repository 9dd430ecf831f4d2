/* SPDX-License-Identifier: MIT */
/*
 * A TLS record and handshake builder for conformance tests: the client side of a plaintext
 * handshake written byte by byte, so a test can send what no TLS library would (a bad key
 * share, a ClientHello in 1-byte records, an alert between two fragments), and a reader that
 * reports what the server answered (the first alert, whether a ServerHello came, the end of
 * the stream) within a time bound.
 *
 * No cryptography: the plaintext phase of a handshake needs none (RFC 8446 5.1: records are
 * unprotected until the keys are set; RFC 5246 6.2: until ChangeCipherSpec).
 *
 * Memory: a tb_buf grows on the heap; an allocation failure is sticky (tb_buf.oom) and every
 * later write is dropped, so callers check once at the end. Test thread only.
 */
#ifndef TERN_TLSBUILD_H
#define TERN_TLSBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- numbers from the RFCs --------------------------------------------------------------- */

/* Content types (RFC 8446 5.1). */
enum { TB_CT_CCS = 20, TB_CT_ALERT = 21, TB_CT_HANDSHAKE = 22, TB_CT_APPDATA = 23 };

/* Handshake types (RFC 8446 4, RFC 5246 7.4). */
enum {
    TB_HT_CLIENT_HELLO = 1,
    TB_HT_SERVER_HELLO = 2,
    TB_HT_CERTIFICATE = 11,
    TB_HT_SERVER_KEY_EXCHANGE = 12,
    TB_HT_CERTIFICATE_REQUEST = 13,
    TB_HT_SERVER_HELLO_DONE = 14,
    TB_HT_CLIENT_KEY_EXCHANGE = 16,
};

/* Alert descriptions (RFC 8446 6). */
enum {
    TB_ALERT_UNEXPECTED_MESSAGE = 10,
    TB_ALERT_BAD_RECORD_MAC = 20,
    TB_ALERT_RECORD_OVERFLOW = 22,
    TB_ALERT_HANDSHAKE_FAILURE = 40,
    TB_ALERT_ILLEGAL_PARAMETER = 47,
    TB_ALERT_DECODE_ERROR = 50,
    TB_ALERT_PROTOCOL_VERSION = 70,
    TB_ALERT_INTERNAL_ERROR = 80,
    TB_ALERT_MISSING_EXTENSION = 109,
};

/* Extension types. */
enum {
    TB_EXT_SUPPORTED_GROUPS = 10,
    TB_EXT_EC_POINT_FORMATS = 11,
    TB_EXT_SIGNATURE_ALGORITHMS = 13,
    TB_EXT_PADDING = 21,
    TB_EXT_EXTENDED_MASTER_SECRET = 23,
    TB_EXT_SUPPORTED_VERSIONS = 43,
    TB_EXT_KEY_SHARE = 51,
    TB_EXT_RENEGOTIATION_INFO = 0xff01,
};

/* Named groups and suites the tests use. The hybrids: draft-ietf-tls-ecdhe-mlkem. */
enum { TB_GROUP_P256 = 0x0017, TB_GROUP_P384 = 0x0018, TB_GROUP_X25519 = 0x001d };
enum {
    TB_GROUP_SECP256R1MLKEM768 = 0x11eb,
    TB_GROUP_X25519MLKEM768 = 0x11ec,
    TB_GROUP_SECP384R1MLKEM1024 = 0x11ed,
};
enum {
    TB_TLS_AES_128_GCM_SHA256 = 0x1301,
    TB_TLS_AES_256_GCM_SHA384 = 0x1302,
    TB_TLS_CHACHA20_POLY1305_SHA256 = 0x1303,
    TB_ECDHE_ECDSA_AES128_GCM_SHA256 = 0xc02b,
    TB_ECDHE_RSA_AES128_GCM_SHA256 = 0xc02f,
};

/* The largest plaintext fragment (RFC 8446 5.1, RFC 5246 6.2.1). */
#define TB_MAX_FRAGMENT 16384u

/* ---- byte buffers ------------------------------------------------------------------------ */

typedef struct tb_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom; /* an allocation failed: the contents are incomplete */
} tb_buf;

void tb_buf_init(tb_buf *b);
void tb_buf_free(tb_buf *b);
void tb_put(tb_buf *b, const void *data, size_t len);
void tb_put_zeros(tb_buf *b, size_t len);
void tb_u8(tb_buf *b, unsigned v);
void tb_u16(tb_buf *b, unsigned v);
void tb_u24(tb_buf *b, uint32_t v);
/* A length prefix of @p bytes (1, 2 or 3) to be filled by tb_close: returns its offset. */
size_t tb_open(tb_buf *b, int bytes);
/* Writes the length of everything after the prefix opened at @p mark (truncated to the
 * prefix's width: the builder writes malformed lengths on purpose only via tb_poke). */
void tb_close(tb_buf *b, size_t mark, int bytes);
/* Overwrites @p bytes (1..3) big-endian at @p off. */
void tb_poke(tb_buf *b, size_t off, uint32_t v, int bytes);

/* ---- records ----------------------------------------------------------------------------- */

/* Appends @p len bytes of @p data as records of content type @p type, each fragment at most
 * @p max_frag bytes (0: TB_MAX_FRAGMENT), with record version @p version (0: 0x0303). An
 * empty @p data gives one empty record. */
void tb_records(tb_buf *out, unsigned type, unsigned version, const void *data, size_t len,
                size_t max_frag);

/* One record whose header claims @p claimed bytes while @p len follow (a lie when they
 * differ). */
void tb_record_raw(tb_buf *out, unsigned type, unsigned version, uint32_t claimed,
                   const void *data, size_t len);

/* ---- handshake messages ------------------------------------------------------------------ */

/* A key share entry (RFC 8446 4.2.8): the named group and the opaque key_exchange bytes,
 * sent as given (a test may name one group and send another's data). */
typedef struct tb_share {
    uint16_t group;
    const uint8_t *data;
    size_t len;
} tb_share;

/* What a ClientHello carries. Zero-initialise, then set what the case needs; tb_hello_tls13
 * and tb_hello_tls12 fill a legal one. Arrays are borrowed. */
typedef struct tb_hello {
    uint16_t legacy_version;      /* ClientHello.legacy_version (0: 0x0303) */
    uint8_t session_id_len;       /* 0..32 (bytes of a fixed pattern) */
    const uint16_t *suites;
    size_t n_suites;
    const uint16_t *versions;     /* supported_versions, omitted when n_versions == 0 */
    size_t n_versions;
    const uint16_t *groups;       /* supported_groups, omitted when n_groups == 0 */
    size_t n_groups;
    const uint16_t *sigalgs;      /* signature_algorithms, omitted when n_sigalgs == 0 */
    size_t n_sigalgs;
    bool key_share;               /* send key_share (with n_shares entries, maybe 0) */
    const tb_share *shares;
    size_t n_shares;
    bool ec_point_formats;        /* TLS 1.2 ECDHE: uncompressed only */
    bool secure_renegotiation;    /* an empty renegotiation_info */
    size_t n_unknown_ext;         /* extra extensions of unassigned types, empty */
    bool padding;                 /* a padding extension (RFC 7685) of padding_len zeros */
    size_t padding_len;           /* at most 65535: the extension's length is 16 bits */
} tb_hello;

/* A legal TLS 1.3 ClientHello offering @p group with @p share (X25519 or P-256). */
void tb_hello_tls13(tb_hello *h, const tb_share *share);
/* A legal TLS 1.2 ClientHello (no supported_versions) for ECDHE-ECDSA/RSA AES-GCM. */
void tb_hello_tls12(tb_hello *h);

/* Appends the ClientHello handshake message (type, 24-bit length, body) for @p h. */
void tb_client_hello(tb_buf *msg, const tb_hello *h);

/* Appends a handshake message header (type, 24-bit length) and @p len bytes of @p body. */
void tb_handshake(tb_buf *msg, unsigned type, const void *body, size_t len);

/* Key shares the tests send: a well-formed X25519 public value (any 32 bytes with the top bit
 * clear) and the P-256 generator point in uncompressed form (a valid public key). */
extern const uint8_t tb_x25519_share[32];
extern const uint8_t tb_p256_generator[65];
/* The P-384 generator point, uncompressed (a valid public key). */
extern const uint8_t tb_p384_generator[97];

/* ML-KEM (FIPS 203): an encapsulation key is ByteEncode12 of k * 256 coefficients followed
 * by the 32-byte seed rho, 384 * k + 32 bytes (k = 3: ML-KEM-768, 1184 bytes; k = 4:
 * ML-KEM-1024, 1568 bytes). */
#define TB_MLKEM_EK_LEN(k) (384u * (k) + 32u)

/* Writes TB_MLKEM_EK_LEN(@p k) bytes to @p out: an encapsulation key whose coefficients are
 * all below q = 3329 (it passes FIPS 203 7.2's modulus check; no decapsulation key belongs
 * to it, which a server encapsulating to it cannot tell). If @p bad is set, coefficient
 * number @p bad_index is @p bad_value (>= 3329: the modulus check fails). */
void tb_mlkem_ek(uint8_t *out, unsigned k, bool bad, size_t bad_index, unsigned bad_value);

/* ---- reading the server's answer ----------------------------------------------------------- */

/* What the server sent, as far as it can be read without keys. */
typedef struct tb_answer {
    bool server_hello;           /* a ServerHello (or HelloRetryRequest) came */
    bool hello_retry;            /* it was a HelloRetryRequest (RFC 8446 4.1.3) */
    uint16_t sh_legacy_version;  /* its legacy_version */
    uint16_t sh_selected;        /* its supported_versions, 0 if absent */
    uint16_t sh_suite;           /* its cipher suite */
    bool server_hello_done;      /* TLS 1.2: a ServerHelloDone came */
    bool key_exchange;           /* TLS 1.2: a ServerKeyExchange came */
    bool cert_request;           /* TLS 1.2: a CertificateRequest came */
    uint16_t ske_group;          /* its named curve (ECDHE) */
    int alert;                   /* the first plaintext alert's description, -1: none */
    int alert_level;             /* its level (1 warning, 2 fatal) */
    bool alert_before_hello;     /* the alert came before any ServerHello */
    bool encrypted_records;      /* records of type 23 came (TLS 1.3 after ServerHello) */
    bool eof;                    /* the server ended the stream (FIN) */
    bool reset;                  /* ... or reset it */
    bool timed_out;              /* the time bound passed first */
    bool garbage;                /* something that does not parse as TLS records */
    size_t bytes;                /* bytes read in all */
    size_t sent;                 /* tb_exchange: bytes of the request sent */
    bool send_failed;            /* ... before the server stopped reading (EPIPE, reset) */
} tb_answer;

/* Stop conditions for tb_read besides an alert, the end of the stream and the time bound. */
enum {
    TB_UNTIL_END = 0,                /* read until EOF, reset or timeout */
    TB_UNTIL_SERVER_HELLO = 1,       /* ... or a ServerHello */
    TB_UNTIL_HELLO_DONE = 2,         /* ... or a ServerHelloDone */
};

/* Reads from @p fd until @p until is met, a fatal alert came and the stream ended after it,
 * or @p timeout_ms passed. Fills @p a (zeroed first). @return 0, or -errno from poll/recv
 * other than a reset. */
int tb_read(int fd, tb_answer *a, int until, unsigned timeout_ms);

/* The same while sending @p out (@p out_len bytes) as the server reads it: a server that
 * refuses a long request stops reading, and its answer must still be seen. */
int tb_exchange(int fd, const void *out, size_t out_len, tb_answer *a, int until,
                unsigned timeout_ms);

/* One line describing @p a, for failure messages. */
const char *tb_answer_str(const tb_answer *a, char *buf, size_t len);

/* The name of an alert description ("illegal_parameter"), or "unknown". */
const char *tb_alert_name(int description);

#endif

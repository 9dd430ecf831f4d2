/* SPDX-License-Identifier: MIT */
/*
 * The record/handshake builder and the answer reader of tlsbuild.h. Test thread only; all
 * reads are bounded by a deadline (poll, then non-blocking recv).
 */
#include "tlsbuild.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* ---- byte buffers ------------------------------------------------------------------------ */

void tb_buf_init(tb_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void tb_buf_free(tb_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static bool reserve(tb_buf *b, size_t more)
{
    if (b->oom) {
        return false;
    }
    if (b->len + more <= b->cap) {
        return true;
    }
    size_t cap = b->cap == 0 ? 256 : b->cap;
    while (cap < b->len + more) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void tb_put(tb_buf *b, const void *data, size_t len)
{
    if (len == 0 || !reserve(b, len)) {
        return;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void tb_put_zeros(tb_buf *b, size_t len)
{
    if (len == 0 || !reserve(b, len)) {
        return;
    }
    memset(b->p + b->len, 0, len);
    b->len += len;
}

void tb_u8(tb_buf *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    tb_put(b, &x, 1);
}

void tb_u16(tb_buf *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    tb_put(b, x, 2);
}

void tb_u24(tb_buf *b, uint32_t v)
{
    uint8_t x[3] = {(uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    tb_put(b, x, 3);
}

void tb_poke(tb_buf *b, size_t off, uint32_t v, int bytes)
{
    if (b->oom || off + (size_t)bytes > b->len) {
        return;
    }
    for (int i = bytes - 1; i >= 0; i--) {
        b->p[off + (size_t)i] = (uint8_t)v;
        v >>= 8;
    }
}

size_t tb_open(tb_buf *b, int bytes)
{
    size_t mark = b->len;
    tb_put_zeros(b, (size_t)bytes);
    return mark;
}

void tb_close(tb_buf *b, size_t mark, int bytes)
{
    if (b->oom) {
        return;
    }
    tb_poke(b, mark, (uint32_t)(b->len - mark - (size_t)bytes), bytes);
}

/* ---- records ----------------------------------------------------------------------------- */

void tb_record_raw(tb_buf *out, unsigned type, unsigned version, uint32_t claimed,
                   const void *data, size_t len)
{
    tb_u8(out, type);
    tb_u16(out, version == 0 ? 0x0303 : version);
    tb_u16(out, claimed);
    tb_put(out, data, len);
}

void tb_records(tb_buf *out, unsigned type, unsigned version, const void *data, size_t len,
                size_t max_frag)
{
    const uint8_t *p = data;
    if (max_frag == 0) {
        max_frag = TB_MAX_FRAGMENT;
    }
    size_t off = 0;
    do {
        size_t n = len - off < max_frag ? len - off : max_frag;
        tb_record_raw(out, type, version, (uint32_t)n, p + off, n);
        off += n;
    } while (off < len);
}

/* ---- handshake messages ------------------------------------------------------------------ */

/* RFC 7748 5.2's test vector: Alice's public value (top bit clear, not of low order). */
const uint8_t tb_x25519_share[32] = {
    0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
    0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
};

/* SEC 2 2.4.2: the base point G of secp256r1, uncompressed (0x04 || x || y). */
const uint8_t tb_p256_generator[65] = {
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63,
    0xa4, 0x40, 0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39,
    0x45, 0xd8, 0x98, 0xc2, 0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e,
    0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e, 0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e,
    0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51, 0xf5,
};

/* SEC 2 2.5.1: the base point G of secp384r1, uncompressed. */
const uint8_t tb_p384_generator[97] = {
    0x04, 0xaa, 0x87, 0xca, 0x22, 0xbe, 0x8b, 0x05, 0x37, 0x8e, 0xb1, 0xc7, 0x1e, 0xf3, 0x20,
    0xad, 0x74, 0x6e, 0x1d, 0x3b, 0x62, 0x8b, 0xa7, 0x9b, 0x98, 0x59, 0xf7, 0x41, 0xe0, 0x82,
    0x54, 0x2a, 0x38, 0x55, 0x02, 0xf2, 0x5d, 0xbf, 0x55, 0x29, 0x6c, 0x3a, 0x54, 0x5e, 0x38,
    0x72, 0x76, 0x0a, 0xb7, 0x36, 0x17, 0xde, 0x4a, 0x96, 0x26, 0x2c, 0x6f, 0x5d, 0x9e, 0x98,
    0xbf, 0x92, 0x92, 0xdc, 0x29, 0xf8, 0xf4, 0x1d, 0xbd, 0x28, 0x9a, 0x14, 0x7c, 0xe9, 0xda,
    0x31, 0x13, 0xb5, 0xf0, 0xb8, 0xc0, 0x0a, 0x60, 0xb1, 0xce, 0x1d, 0x7e, 0x81, 0x9d, 0x7a,
    0x43, 0x1d, 0x7c, 0x90, 0xea, 0x0e, 0x5f,
};

void tb_mlkem_ek(uint8_t *out, unsigned k, bool bad, size_t bad_index, unsigned bad_value)
{
    /* FIPS 203 4.2.1 ByteEncode12: two 12-bit coefficients a, b in three bytes, little
     * endian (a's low 8 bits; a's high 4 bits and b's low 4; b's high 8). The values are a
     * fixed spread over [0, q). */
    size_t n = 256u * k;
    for (size_t i = 0; i < n; i += 2) {
        unsigned a = (unsigned)((i * 1543u + 7u) % 3329u);
        unsigned b = (unsigned)(((i + 1) * 1543u + 7u) % 3329u);
        if (bad && bad_index == i) {
            a = bad_value & 0xfffu;
        }
        if (bad && bad_index == i + 1) {
            b = bad_value & 0xfffu;
        }
        uint8_t *p = out + i / 2 * 3;
        p[0] = (uint8_t)a;
        p[1] = (uint8_t)(a >> 8 | (b & 0x0fu) << 4);
        p[2] = (uint8_t)(b >> 4);
    }
    for (size_t i = 0; i < 32; i++) {
        out[384u * k + i] = (uint8_t)(0x30 + i); /* rho: any 32 bytes */
    }
}

static const uint16_t suites13[] = {TB_TLS_AES_128_GCM_SHA256, TB_TLS_AES_256_GCM_SHA384,
                                    TB_TLS_CHACHA20_POLY1305_SHA256};
static const uint16_t suites12[] = {TB_ECDHE_ECDSA_AES128_GCM_SHA256,
                                    TB_ECDHE_RSA_AES128_GCM_SHA256};
static const uint16_t versions13[] = {0x0304};
/* ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256, ecdsa_secp384r1_sha384,
 * rsa_pss_rsae_sha384 */
static const uint16_t sigalgs[] = {0x0403, 0x0804, 0x0401, 0x0503, 0x0805};
static const uint16_t groups_x25519[] = {TB_GROUP_X25519};
static const uint16_t groups_p256[] = {TB_GROUP_P256};
static const uint16_t groups12[] = {TB_GROUP_P256, TB_GROUP_X25519};

void tb_hello_tls13(tb_hello *h, const tb_share *share)
{
    memset(h, 0, sizeof(*h));
    h->session_id_len = 32; /* RFC 8446 D.4: middlebox compatibility */
    h->suites = suites13;
    h->n_suites = sizeof(suites13) / sizeof(suites13[0]);
    h->versions = versions13;
    h->n_versions = 1;
    h->sigalgs = sigalgs;
    h->n_sigalgs = sizeof(sigalgs) / sizeof(sigalgs[0]);
    h->key_share = true;
    h->shares = share;
    h->n_shares = share != NULL ? 1 : 0;
    if (share != NULL && share->group == TB_GROUP_P256) {
        h->groups = groups_p256;
    } else {
        h->groups = groups_x25519;
    }
    h->n_groups = 1;
}

void tb_hello_tls12(tb_hello *h)
{
    memset(h, 0, sizeof(*h));
    h->suites = suites12;
    h->n_suites = sizeof(suites12) / sizeof(suites12[0]);
    h->sigalgs = sigalgs;
    h->n_sigalgs = sizeof(sigalgs) / sizeof(sigalgs[0]);
    h->groups = groups12;
    h->n_groups = sizeof(groups12) / sizeof(groups12[0]);
    h->ec_point_formats = true;
    h->secure_renegotiation = true;
}

static void u16_list(tb_buf *b, const uint16_t *v, size_t n, int prefix)
{
    size_t m = tb_open(b, prefix);
    for (size_t i = 0; i < n; i++) {
        tb_u16(b, v[i]);
    }
    tb_close(b, m, prefix);
}

void tb_handshake(tb_buf *msg, unsigned type, const void *body, size_t len)
{
    tb_u8(msg, type);
    tb_u24(msg, (uint32_t)len);
    tb_put(msg, body, len);
}

void tb_client_hello(tb_buf *msg, const tb_hello *h)
{
    tb_u8(msg, TB_HT_CLIENT_HELLO);
    size_t body = tb_open(msg, 3);
    tb_u16(msg, h->legacy_version != 0 ? h->legacy_version : 0x0303);
    for (unsigned i = 0; i < 32; i++) {
        tb_u8(msg, 0xa0 + i); /* random: any bytes do, nothing here is secret */
    }
    tb_u8(msg, h->session_id_len);
    for (unsigned i = 0; i < h->session_id_len; i++) {
        tb_u8(msg, 0x50 + i);
    }
    u16_list(msg, h->suites, h->n_suites, 2);
    tb_u8(msg, 1); /* legacy_compression_methods: null only */
    tb_u8(msg, 0);

    size_t exts = tb_open(msg, 2);
    if (h->n_versions > 0) {
        tb_u16(msg, TB_EXT_SUPPORTED_VERSIONS);
        size_t e = tb_open(msg, 2);
        size_t l = tb_open(msg, 1);
        for (size_t i = 0; i < h->n_versions; i++) {
            tb_u16(msg, h->versions[i]);
        }
        tb_close(msg, l, 1);
        tb_close(msg, e, 2);
    }
    if (h->n_groups > 0) {
        tb_u16(msg, TB_EXT_SUPPORTED_GROUPS);
        size_t e = tb_open(msg, 2);
        u16_list(msg, h->groups, h->n_groups, 2);
        tb_close(msg, e, 2);
    }
    if (h->n_sigalgs > 0) {
        tb_u16(msg, TB_EXT_SIGNATURE_ALGORITHMS);
        size_t e = tb_open(msg, 2);
        u16_list(msg, h->sigalgs, h->n_sigalgs, 2);
        tb_close(msg, e, 2);
    }
    if (h->ec_point_formats) {
        tb_u16(msg, TB_EXT_EC_POINT_FORMATS);
        tb_u16(msg, 2);
        tb_u8(msg, 1);
        tb_u8(msg, 0); /* uncompressed */
    }
    if (h->secure_renegotiation) {
        tb_u16(msg, TB_EXT_RENEGOTIATION_INFO);
        tb_u16(msg, 1);
        tb_u8(msg, 0);
    }
    if (h->key_share) {
        tb_u16(msg, TB_EXT_KEY_SHARE);
        size_t e = tb_open(msg, 2);
        size_t l = tb_open(msg, 2);
        for (size_t i = 0; i < h->n_shares; i++) {
            tb_u16(msg, h->shares[i].group);
            tb_u16(msg, (unsigned)h->shares[i].len);
            tb_put(msg, h->shares[i].data, h->shares[i].len);
        }
        tb_close(msg, l, 2);
        tb_close(msg, e, 2);
    }
    for (size_t i = 0; i < h->n_unknown_ext; i++) {
        /* 0x4a4a.. are GREASE (RFC 8701); these are unassigned private-looking numbers in
         * 0xe000.. that no implementation knows */
        tb_u16(msg, 0xe000 + (unsigned)(i % 0x1000));
        tb_u16(msg, 0);
    }
    if (h->padding) {
        tb_u16(msg, TB_EXT_PADDING);
        tb_u16(msg, (unsigned)h->padding_len);
        tb_put_zeros(msg, h->padding_len);
    }
    tb_close(msg, exts, 2);
    tb_close(msg, body, 3);
}

/* ---- reading ----------------------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static unsigned get16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

static uint32_t get24(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* RFC 8446 4.1.3: the random of a HelloRetryRequest. */
static const uint8_t hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

static void parse_server_hello(tb_answer *a, const uint8_t *p, size_t n)
{
    a->server_hello = true;
    if (n < 2 + 32 + 1) {
        return;
    }
    a->sh_legacy_version = (uint16_t)get16(p);
    a->hello_retry = memcmp(p + 2, hrr_random, 32) == 0;
    size_t off = 2 + 32;
    size_t sid = p[off];
    off += 1 + sid;
    if (off + 3 > n) {
        return;
    }
    a->sh_suite = (uint16_t)get16(p + off);
    off += 3; /* suite, compression */
    if (off + 2 > n) {
        return;
    }
    size_t end = off + 2 + get16(p + off);
    off += 2;
    while (off + 4 <= n && off + 4 <= end) {
        unsigned type = get16(p + off);
        size_t len = get16(p + off + 2);
        off += 4;
        if (off + len > n) {
            return;
        }
        if (type == TB_EXT_SUPPORTED_VERSIONS && len == 2) {
            a->sh_selected = (uint16_t)get16(p + off);
        }
        off += len;
    }
}

static void parse_handshake(tb_answer *a, unsigned type, const uint8_t *p, size_t n)
{
    if (type == TB_HT_SERVER_HELLO) {
        parse_server_hello(a, p, n);
    } else if (type == TB_HT_SERVER_KEY_EXCHANGE) {
        a->key_exchange = true;
        if (n >= 3 && p[0] == 3) { /* named_curve */
            a->ske_group = (uint16_t)get16(p + 1);
        }
    } else if (type == TB_HT_CERTIFICATE_REQUEST) {
        a->cert_request = true;
    } else if (type == TB_HT_SERVER_HELLO_DONE) {
        a->server_hello_done = true;
    }
}

typedef struct reader {
    tb_buf in;   /* bytes not yet parsed as records */
    tb_buf hs;   /* handshake bytes not yet parsed as messages */
    bool ccs;    /* the server changed cipher spec: its handshake is no longer readable */
} reader;

/* Parses whole records from r->in. */
static void parse_records(reader *r, tb_answer *a)
{
    size_t off = 0;
    while (r->in.len - off >= 5) {
        const uint8_t *h = r->in.p + off;
        size_t len = get16(h + 3);
        if (h[0] < 20 || h[0] > 24 || h[1] != 3) {
            a->garbage = true;
            off = r->in.len;
            break;
        }
        if (r->in.len - off < 5 + len) {
            break;
        }
        const uint8_t *body = h + 5;
        switch (h[0]) {
        case TB_CT_ALERT:
            if (len >= 2 && a->alert < 0 && !r->ccs) {
                a->alert_level = body[0];
                a->alert = body[1];
                a->alert_before_hello = !a->server_hello;
            }
            break;
        case TB_CT_CCS:
            r->ccs = true;
            break;
        case TB_CT_APPDATA:
            a->encrypted_records = true;
            break;
        case TB_CT_HANDSHAKE:
            if (!r->ccs) {
                tb_put(&r->hs, body, len);
            }
            break;
        default:
            break;
        }
        off += 5 + len;
    }
    memmove(r->in.p, r->in.p + off, r->in.len - off);
    r->in.len -= off;

    size_t hoff = 0;
    while (r->hs.len - hoff >= 4) {
        const uint8_t *m = r->hs.p + hoff;
        size_t len = get24(m + 1);
        if (r->hs.len - hoff < 4 + len) {
            break;
        }
        parse_handshake(a, m[0], m + 4, len);
        hoff += 4 + len;
    }
    if (hoff > 0) {
        memmove(r->hs.p, r->hs.p + hoff, r->hs.len - hoff);
        r->hs.len -= hoff;
    }
}

static bool done(const tb_answer *a, int until)
{
    if (a->eof || a->reset || a->garbage) {
        return true;
    }
    if (a->alert >= 0 && a->alert_level == 1) {
        return true; /* a warning: the caller decides what follows */
    }
    if (a->alert >= 0) {
        return false; /* fatal: read on to see the close that must follow */
    }
    if (until == TB_UNTIL_SERVER_HELLO && a->server_hello) {
        return true;
    }
    if (until == TB_UNTIL_HELLO_DONE && a->server_hello_done) {
        return true;
    }
    return false;
}

int tb_exchange(int fd, const void *out, size_t out_len, tb_answer *a, int until,
                unsigned timeout_ms)
{
    memset(a, 0, sizeof(*a));
    a->alert = -1;
    reader r;
    tb_buf_init(&r.in);
    tb_buf_init(&r.hs);
    r.ccs = false;
    uint64_t deadline = now_ms() + timeout_ms;
    const uint8_t *op = out;
    size_t left = out != NULL ? out_len : 0;
    int rc = 0;

    /* once the answer is complete, what was not sent yet does not matter */
    while (!done(a, until)) {
        uint64_t now = now_ms();
        if (now >= deadline) {
            a->timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN | (left > 0 ? POLLOUT : 0)};
        int n = poll(&pfd, 1, (int)(deadline - now));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rc = -errno;
            break;
        }
        if (n == 0) {
            continue;
        }
        if (left > 0 && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            ssize_t sent = send(fd, op, left, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent > 0) {
                op += sent;
                left -= (size_t)sent;
                a->sent += (size_t)sent;
            } else if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                a->send_failed = true; /* the server stopped reading: its answer tells why */
                left = 0;
            }
        }
        if ((pfd.revents & (POLLIN | POLLERR | POLLHUP)) == 0) {
            continue;
        }
        uint8_t chunk[16384];
        ssize_t got = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                continue;
            }
            if (errno == ECONNRESET || errno == EPIPE) {
                a->reset = true;
                break;
            }
            rc = -errno;
            break;
        }
        if (got == 0) {
            a->eof = true;
            break;
        }
        a->bytes += (size_t)got;
        tb_put(&r.in, chunk, (size_t)got);
        if (r.in.oom || r.hs.oom) {
            rc = -ENOMEM;
            break;
        }
        parse_records(&r, a);
    }
    tb_buf_free(&r.in);
    tb_buf_free(&r.hs);
    return rc;
}

int tb_read(int fd, tb_answer *a, int until, unsigned timeout_ms)
{
    return tb_exchange(fd, NULL, 0, a, until, timeout_ms);
}

const char *tb_alert_name(int d)
{
    switch (d) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 47: return "illegal_parameter";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    default: return "unknown";
    }
}

const char *tb_answer_str(const tb_answer *a, char *buf, size_t len)
{
    snprintf(buf, len,
             "server_hello=%d%s version=0x%04x selected=0x%04x alert=%d (%s, level %d)%s "
             "hello_done=%d encrypted=%d eof=%d reset=%d timeout=%d garbage=%d bytes=%zu "
             "sent=%zu%s",
             a->server_hello, a->hello_retry ? " (HRR)" : "", a->sh_legacy_version,
             a->sh_selected, a->alert, a->alert >= 0 ? tb_alert_name(a->alert) : "none",
             a->alert_level, a->alert >= 0 && !a->alert_before_hello ? " after ServerHello" : "",
             a->server_hello_done, a->encrypted_records, a->eof, a->reset, a->timed_out,
             a->garbage, a->bytes, a->sent, a->send_failed ? " (send failed)" : "");
    return buf;
}

/* SPDX-License-Identifier: MIT */
/*
 * The PSK identity parser (see psk_parse.h). A small state machine over the client's stream:
 * record headers, then handshake bytes reassembled into whole messages, then the one or two
 * messages that carry identities. Every vector is read through `rd`, which never reads past
 * the bytes that contain it.
 */
#include "psk_parse.h"

#include <stdlib.h>
#include <string.h>

#define REC_HANDSHAKE 22
#define REC_CCS 20
#define HS_CLIENT_HELLO 1
#define HS_CERTIFICATE 11
#define HS_CLIENT_KEY_EXCHANGE 16
#define EXT_PRE_SHARED_KEY 41
#define EXT_SUPPORTED_VERSIONS 43
#define MAX_PLAINTEXT 16384 /* RFC 8446 5.1, RFC 5246 6.2.1 */

void tern__psk_parser_init(tern__psk_parser *p)
{
    memset(p, 0, sizeof(*p));
}

void tern__psk_parser_free(tern__psk_parser *p)
{
    free(p->msg);
    p->msg = NULL;
}

/* A bounded reader over one message. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
} rd;

static uint32_t rd_int(rd *r, size_t n)
{
    uint32_t v = 0;
    if (r->bad || r->left < n) {
        r->bad = true;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | r->p[i];
    }
    r->p += n;
    r->left -= n;
    return v;
}

/* A vector with an @n-byte length prefix, as a sub-reader. */
static rd rd_vec(rd *r, size_t n)
{
    rd sub = {NULL, 0, true};
    uint32_t len = rd_int(r, n);
    if (r->bad || r->left < len) {
        r->bad = true;
        return sub;
    }
    sub.p = r->p;
    sub.left = len;
    sub.bad = false;
    r->p += len;
    r->left -= len;
    return sub;
}

static int fail(tern__psk_parser *p, const char *why)
{
    p->error = why;
    p->stage = 2;
    p->result = TERN__PSK_ERROR;
    return TERN__PSK_ERROR;
}

static int decide(tern__psk_parser *p, int result)
{
    p->stage = 2;
    p->result = (int8_t)result;
    return result;
}

static bool keep_identity(tern__psk_parser *p, const uint8_t *id, size_t len)
{
    if (p->count >= TERN__PSK_MAX_IDENTITIES) {
        return true; /* the bound: later identities are not read */
    }
    if (len == 0 || len > TERN__PSK_MAX_IDENTITY) {
        return false;
    }
    p->identities[p->count].len = (uint16_t)len;
    memcpy(p->identities[p->count].bytes, id, len);
    p->count++;
    return true;
}

/* RFC 8446 4.2.11: identities<7..2^16-1>, then binders<33..2^16-1>. */
static int parse_pre_shared_key(tern__psk_parser *p, rd *ext)
{
    rd ids = rd_vec(ext, 2);
    if (ids.bad || ids.left < 7) {
        return fail(p, "pre_shared_key: identities vector too short or truncated");
    }
    unsigned nids = 0, first_kept = ~0u;
    while (ids.left > 0) {
        rd id = rd_vec(&ids, 2);
        (void)rd_int(&ids, 4); /* obfuscated_ticket_age */
        if (id.bad || ids.bad || id.left == 0) {
            return fail(p, "pre_shared_key: malformed identity");
        }
        if (id.left > TERN__PSK_MAX_EXTERNAL) {
            p->tickets = p->tickets < 255 ? p->tickets + 1 : 255; /* resumption: wolfSSL's */
        } else if (!keep_identity(p, id.p, id.left)) {
            return fail(p, "pre_shared_key: identity longer than 255 bytes");
        } else if (first_kept == ~0u && p->count == 1) {
            first_kept = nids; /* identities[0]: its binder tells the client's hash */
        }
        nids++;
    }
    rd binders = rd_vec(ext, 2);
    if (binders.bad || binders.left < 33) {
        return fail(p, "pre_shared_key: binders vector too short or truncated");
    }
    unsigned nbinders = 0;
    while (binders.left > 0) {
        rd b = rd_vec(&binders, 1);
        if (b.bad || binders.bad || b.left < 32) {
            return fail(p, "pre_shared_key: malformed binder");
        }
        if (nbinders == first_kept) {
            p->binder_len = (uint8_t)b.left;
        }
        nbinders++;
    }
    if (ext->left != 0) {
        return fail(p, "pre_shared_key: trailing bytes");
    }
    if (nbinders != nids) {
        return fail(p, "pre_shared_key: one binder per identity is required");
    }
    return TERN__PSK_IDENTITIES;
}

static int parse_client_hello(tern__psk_parser *p, rd *m)
{
    bool psk = false;

    (void)rd_int(m, 2);  /* legacy_version */
    (void)rd_int(m, 32); /* random */
    rd sid = rd_vec(m, 1);
    rd suites = rd_vec(m, 2);
    rd comp = rd_vec(m, 1);
    if (m->bad || sid.left > 32 || suites.left < 2 || suites.left % 2 != 0 || comp.left < 1) {
        return fail(p, "ClientHello: malformed fixed part");
    }
    while (suites.left > 0) {
        uint32_t cs = rd_int(&suites, 2);
        if (cs >= 0x1301 && cs <= 0x1305) {
            p->tls13_suites |= (uint8_t)(1u << (cs & 0xff)); /* RFC 8446 B.4 */
        }
    }
    if (m->left > 0) {
        rd exts = rd_vec(m, 2);
        if (exts.bad || m->left != 0) {
            return fail(p, "ClientHello: extensions length does not match");
        }
        while (exts.left > 0) {
            uint32_t type = rd_int(&exts, 2);
            rd ext = rd_vec(&exts, 2);
            if (exts.bad || ext.bad) {
                return fail(p, "ClientHello: malformed extension");
            }
            if (type == EXT_SUPPORTED_VERSIONS) {
                rd v = rd_vec(&ext, 1);
                if (v.bad || ext.left != 0 || v.left < 2 || v.left % 2 != 0) {
                    return fail(p, "supported_versions: malformed");
                }
                while (v.left > 0) {
                    if (rd_int(&v, 2) == 0x0304) {
                        p->offers_tls13 = 1;
                    }
                }
            } else if (type == EXT_PRE_SHARED_KEY) {
                if (exts.left != 0) {
                    return fail(p, "pre_shared_key: not the last extension");
                }
                int rc = parse_pre_shared_key(p, &ext);
                if (rc < 0) {
                    return rc;
                }
                psk = true;
            }
        }
    }
    if (psk) {
        return decide(p, p->count > 0 ? TERN__PSK_IDENTITIES : TERN__PSK_NO_PSK);
    }
    if (p->offers_tls13) {
        return decide(p, TERN__PSK_NO_PSK);
    }
    p->stage = 1; /* TLS 1.2: the identity comes in the ClientKeyExchange */
    return TERN__PSK_NEED_MORE;
}

/* RFC 4279 2 / RFC 5489 2: the ClientKeyExchange opens with psk_identity<0..2^16-1>. */
static int parse_client_key_exchange(tern__psk_parser *p, rd *m)
{
    rd id = rd_vec(m, 2);
    if (id.bad || id.left == 0) {
        return fail(p, "ClientKeyExchange: missing or empty psk_identity");
    }
    if (!keep_identity(p, id.p, id.left)) {
        return fail(p, "ClientKeyExchange: identity longer than 255 bytes");
    }
    p->from_cke = 1;
    return decide(p, TERN__PSK_IDENTITIES);
}

static int on_message(tern__psk_parser *p)
{
    rd m = {p->msg + 4, p->msg_need - 4, false};
    uint8_t type = p->msg[0];

    if (p->stage == 0) {
        if (type != HS_CLIENT_HELLO) {
            return fail(p, "the first handshake message is not a ClientHello");
        }
        return parse_client_hello(p, &m);
    }
    switch (type) {
    case HS_CERTIFICATE:
        return TERN__PSK_NEED_MORE; /* mutual TLS 1.2: the certificate comes first */
    case HS_CLIENT_KEY_EXCHANGE:
        return parse_client_key_exchange(p, &m);
    default:
        return fail(p, "unexpected handshake message before the ClientKeyExchange");
    }
}

int tern__psk_parser_feed(tern__psk_parser *p, const uint8_t *data, size_t len)
{
    if (p->stage == 2) {
        return p->result;
    }
    while (len > 0) {
        if (p->hdr_have < 5) {
            size_t need = 5u - p->hdr_have;
            size_t n = need < len ? need : len;
            memcpy(p->hdr + p->hdr_have, data, n);
            p->hdr_have += (uint8_t)n;
            data += n;
            len -= n;
            if (p->hdr_have < 5) {
                break;
            }
            p->rec_type = p->hdr[0];
            p->rec_left = (uint32_t)p->hdr[3] << 8 | p->hdr[4];
            if (p->hdr[1] != 3) {
                return fail(p, "record: not a TLS record (version)");
            }
            if (p->rec_type == REC_CCS) {
                if (p->stage == 0 || p->rec_left != 1) {
                    return fail(p, "record: unexpected change_cipher_spec");
                }
                if (p->stage == 1) {
                    /* TLS 1.2 without a ClientKeyExchange: an abbreviated handshake */
                    return decide(p, TERN__PSK_NO_PSK);
                }
            } else if (p->rec_type != REC_HANDSHAKE) {
                return fail(p, "record: expected a handshake record");
            }
            if (p->rec_left == 0 || p->rec_left > MAX_PLAINTEXT) {
                return fail(p, "record: length 0 or over 2^14");
            }
            continue;
        }
        /* only handshake records get here: a change_cipher_spec record decided above */
        size_t n = p->rec_left < len ? p->rec_left : len;
        while (n > 0) {
            /* room for the header, then for the whole message once its length is known: a
             * typical ClientHello needs a few hundred bytes, not the 64 KiB maximum */
            uint32_t need = p->msg_need != 0 ? p->msg_need : 4;
            if (p->msg_cap < need) {
                uint32_t cap = need < 512 ? 512 : need;
                uint8_t *m = realloc(p->msg, cap);
                if (m == NULL) {
                    return fail(p, "out of memory");
                }
                p->msg = m;
                p->msg_cap = cap;
            }
            size_t want = p->msg_have < 4 ? 4 - p->msg_have : p->msg_need - p->msg_have;
            size_t take = want < n ? want : n;
            memcpy(p->msg + p->msg_have, data, take);
            p->msg_have += (uint32_t)take;
            data += take;
            len -= take;
            n -= take;
            p->rec_left -= (uint32_t)take;
            if (p->msg_have == 4 && p->msg_need == 0) {
                uint32_t body = (uint32_t)p->msg[1] << 16 | (uint32_t)p->msg[2] << 8 | p->msg[3];
                if (body > TERN__PSK_MAX_HANDSHAKE) {
                    return fail(p, "handshake: message longer than 64 KiB");
                }
                p->msg_need = 4 + body;
                if (p->msg_cap < p->msg_need) {
                    uint8_t *m = realloc(p->msg, p->msg_need);
                    if (m == NULL) {
                        return fail(p, "out of memory");
                    }
                    p->msg = m;
                    p->msg_cap = p->msg_need;
                }
            }
            if (p->msg_need != 0 && p->msg_have == p->msg_need) {
                int rc = on_message(p);
                p->msg_have = p->msg_need = 0;
                if (rc != TERN__PSK_NEED_MORE) {
                    return rc;
                }
            }
        }
        if (p->rec_left == 0) {
            p->hdr_have = 0; /* next record */
        }
    }
    return TERN__PSK_NEED_MORE;
}

/* SPDX-License-Identifier: MIT */
/*
 * ssl/psk_parse.h: the incremental parser that reads PSK identities out of a TLS client's
 * byte stream. The TLS bytes are built here by hand (record and handshake headers, a
 * ClientHello with extensions, a ClientKeyExchange), so that every length field is known and
 * can be set one off. Valid streams give the same result however they are split (whole, byte
 * by byte, random chunks with a fixed seed, handshake messages spread over many records);
 * malformed ones give TERN__PSK_ERROR with a text, never a crash. Every chunk is fed from a
 * fresh heap copy that is freed right after, so a parser that kept a pointer to the caller's
 * bytes shows under ASan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psk_parse.h"

/* ---- byte buffers ------------------------------------------------------------------------ */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_reserve(bytes *b, size_t more)
{
    if (b->n + more <= b->cap) {
        return;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    assert_non_null(p);
    b->p = p;
    b->cap = cap;
}

static void b_put(bytes *b, const void *d, size_t n)
{
    b_reserve(b, n);
    if (n) {
        memcpy(b->p + b->n, d, n);
    }
    b->n += n;
}

static void b_fill(bytes *b, uint8_t v, size_t n)
{
    b_reserve(b, n);
    memset(b->p + b->n, v, n);
    b->n += n;
}

static void b_u8(bytes *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    b_put(b, &x, 1);
}

static void b_u16(bytes *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    b_put(b, x, 2);
}

static void b_free(bytes *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- length fields, remembered so that a test can set one of them off ------------------- */

enum field {
    F_NONE = -1,
    F_HS_LEN = 0,   /* handshake header length (3) */
    F_SID_LEN,      /* ClientHello legacy_session_id (1) */
    F_SUITES_LEN,   /* cipher_suites (2) */
    F_COMP_LEN,     /* legacy_compression_methods (1) */
    F_EXTS_LEN,     /* extensions (2) */
    F_SNI_EXT_LEN,  /* server_name extension_data (2) */
    F_GROUPS_EXT_LEN,
    F_SIGALGS_EXT_LEN,
    F_SV_EXT_LEN,   /* supported_versions extension_data (2) */
    F_SV_LEN,       /* supported_versions list (1) */
    F_MODES_EXT_LEN,
    F_KS_EXT_LEN,   /* key_share extension_data (2) */
    F_PAD_EXT_LEN,
    F_PSK_EXT_LEN,  /* pre_shared_key extension_data (2) */
    F_IDS_LEN,      /* OfferedPsks.identities (2) */
    F_BINDERS_LEN,  /* OfferedPsks.binders (2) */
    F_CKE_ID_LEN,   /* ClientKeyExchange psk_identity (2) */
    F_ECPOINT_LEN,  /* ClientKeyExchange ECPoint (1) */
    F_ID_LEN,       /* + i: PskIdentity.identity of identity i (2) */
    F_BINDER_LEN = F_ID_LEN + 16, /* + i: PskBinderEntry i (1) */
    F_COUNT = F_BINDER_LEN + 16,
};

static const char *field_name(int f)
{
    static char buf[32];
    static const char *names[] = {
        "handshake length", "session_id length", "cipher_suites length",
        "compression_methods length", "extensions length", "server_name ext length",
        "supported_groups ext length", "signature_algorithms ext length",
        "supported_versions ext length", "supported_versions list length",
        "psk_key_exchange_modes ext length", "key_share ext length", "padding ext length",
        "pre_shared_key ext length", "identities length", "binders length",
        "CKE psk_identity length", "CKE ECPoint length",
    };
    if (f >= 0 && f < F_ID_LEN) {
        return names[f];
    }
    if (f >= F_ID_LEN && f < F_BINDER_LEN) {
        snprintf(buf, sizeof buf, "identity[%d] length", f - F_ID_LEN);
    } else if (f >= F_BINDER_LEN && f < F_COUNT) {
        snprintf(buf, sizeof buf, "binder[%d] length", f - F_BINDER_LEN);
    } else {
        snprintf(buf, sizeof buf, "field %d", f);
    }
    return buf;
}

typedef struct marks {
    size_t pos[F_COUNT];
    uint8_t width[F_COUNT]; /* 0: the field is not in the message */
} marks;

/* Opens a vector with a @p width-byte length, remembered as field @p f. */
static size_t v_open(bytes *b, marks *m, int f, int width)
{
    size_t at = b->n;
    if (m && f != F_NONE) {
        m->pos[f] = at;
        m->width[f] = (uint8_t)width;
    }
    b_fill(b, 0, (size_t)width);
    return at;
}

static void v_close(bytes *b, size_t at, int width)
{
    size_t len = b->n - at - (size_t)width;
    assert_true(width == 4 || len < ((size_t)1 << (8 * width)));
    for (int i = 0; i < width; i++) {
        b->p[at + (size_t)i] = (uint8_t)(len >> (8 * (width - 1 - i)));
    }
}

static size_t ext_open(bytes *b, marks *m, unsigned type, int f)
{
    b_u16(b, type);
    return v_open(b, m, f, 2);
}

/* Adds @p delta to field @p f of @p msg; 0 when the field is absent or would wrap. */
static int bump(bytes *msg, const marks *m, int f, int delta)
{
    int w = m->width[f];
    if (w == 0) {
        return 0;
    }
    size_t at = m->pos[f];
    long v = 0;
    for (int i = 0; i < w; i++) {
        v = (v << 8) | msg->p[at + (size_t)i];
    }
    v += delta;
    if (v < 0 || v >= (1L << (8 * w))) {
        return 0;
    }
    for (int i = 0; i < w; i++) {
        msg->p[at + (size_t)i] = (uint8_t)(v >> (8 * (w - 1 - i)));
    }
    return 1;
}

/* ---- messages ------------------------------------------------------------------------------ */

typedef struct psk_id {
    const uint8_t *p;
    size_t len;
} psk_id;

typedef struct ch_spec {
    uint16_t versions[4]; /* supported_versions; the extension is absent when n_versions is 0 */
    size_t n_versions;
    int no_extensions;    /* a ClientHello without the extensions block (TLS 1.2) */
    int psk;              /* a pre_shared_key extension with the identities below */
    const psk_id *ids;
    size_t n_ids;
    int psk_not_last;     /* an extension after pre_shared_key (RFC 8446 forbids it) */
    size_t padding;       /* padding extension (RFC 7685) with this many bytes; 0: none */
    int with_padding;
} ch_spec;

static int offers(const ch_spec *s, uint16_t v)
{
    for (size_t i = 0; i < s->n_versions; i++) {
        if (s->versions[i] == v) {
            return 1;
        }
    }
    return 0;
}

/* A ClientHello handshake message (header included) in @p m; its length fields in @p mk. */
static void build_client_hello(bytes *m, marks *mk, const ch_spec *s)
{
    static const uint16_t suites[] = {0x1301, 0x1302, 0x1303, 0x00a8, 0xc037, 0x00ff};
    static const char host[] = "localhost";
    size_t v, e;

    b_u8(m, 1); /* client_hello */
    size_t hs = v_open(m, mk, F_HS_LEN, 3);
    b_u16(m, 0x0303);
    for (unsigned i = 0; i < 32; i++) {
        b_u8(m, 0x20 + i); /* random */
    }
    v = v_open(m, mk, F_SID_LEN, 1);
    b_fill(m, 0x5a, 32);
    v_close(m, v, 1);
    v = v_open(m, mk, F_SUITES_LEN, 2);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        b_u16(m, suites[i]);
    }
    v_close(m, v, 2);
    v = v_open(m, mk, F_COMP_LEN, 1);
    b_u8(m, 0);
    v_close(m, v, 1);
    if (s->no_extensions) {
        v_close(m, hs, 3);
        return;
    }

    size_t exts = v_open(m, mk, F_EXTS_LEN, 2);
    /* server_name */
    e = ext_open(m, mk, 0, F_SNI_EXT_LEN);
    v = v_open(m, NULL, F_NONE, 2);
    b_u8(m, 0);
    b_u16(m, sizeof host - 1);
    b_put(m, host, sizeof host - 1);
    v_close(m, v, 2);
    v_close(m, e, 2);
    /* supported_groups */
    e = ext_open(m, mk, 10, F_GROUPS_EXT_LEN);
    v = v_open(m, NULL, F_NONE, 2);
    b_u16(m, 0x001d);
    b_u16(m, 0x0017);
    v_close(m, v, 2);
    v_close(m, e, 2);
    /* extended_master_secret, empty */
    b_u16(m, 23);
    b_u16(m, 0);
    /* signature_algorithms */
    e = ext_open(m, mk, 13, F_SIGALGS_EXT_LEN);
    v = v_open(m, NULL, F_NONE, 2);
    b_u16(m, 0x0804);
    b_u16(m, 0x0403);
    v_close(m, v, 2);
    v_close(m, e, 2);
    if (s->n_versions) {
        e = ext_open(m, mk, 43, F_SV_EXT_LEN);
        v = v_open(m, mk, F_SV_LEN, 1);
        for (size_t i = 0; i < s->n_versions; i++) {
            b_u16(m, s->versions[i]);
        }
        v_close(m, v, 1);
        v_close(m, e, 2);
    }
    if (offers(s, 0x0304)) {
        e = ext_open(m, mk, 45, F_MODES_EXT_LEN); /* psk_key_exchange_modes: psk_dhe_ke */
        b_u8(m, 1);
        b_u8(m, 1);
        v_close(m, e, 2);
        e = ext_open(m, mk, 51, F_KS_EXT_LEN); /* key_share: x25519 */
        v = v_open(m, NULL, F_NONE, 2);
        b_u16(m, 0x001d);
        size_t k = v_open(m, NULL, F_NONE, 2);
        b_fill(m, 0x4b, 32);
        v_close(m, k, 2);
        v_close(m, v, 2);
        v_close(m, e, 2);
    }
    if (s->with_padding) {
        e = ext_open(m, mk, 21, F_PAD_EXT_LEN);
        b_fill(m, 0, s->padding);
        v_close(m, e, 2);
    }
    if (s->psk) {
        e = ext_open(m, mk, 41, F_PSK_EXT_LEN);
        v = v_open(m, mk, F_IDS_LEN, 2);
        for (size_t i = 0; i < s->n_ids; i++) {
            size_t id = v_open(m, mk, i < 16 ? F_ID_LEN + (int)i : F_NONE, 2);
            b_put(m, s->ids[i].p, s->ids[i].len);
            v_close(m, id, 2);
            static const uint8_t age[4] = {0x11, 0x22, 0x33, 0x44}; /* obfuscated_ticket_age */
            b_put(m, age, 4);
        }
        v_close(m, v, 2);
        v = v_open(m, mk, F_BINDERS_LEN, 2);
        for (size_t i = 0; i < s->n_ids; i++) {
            size_t bd = v_open(m, mk, i < 16 ? F_BINDER_LEN + (int)i : F_NONE, 1);
            b_fill(m, 0xb1, 32); /* 0xb1: no record type, should a record start here */
            v_close(m, bd, 1);
        }
        v_close(m, v, 2);
        v_close(m, e, 2);
        if (s->psk_not_last) {
            b_u16(m, 23);
            b_u16(m, 0);
        }
    }
    v_close(m, exts, 2);
    v_close(m, hs, 3);
}

/* A ClientKeyExchange (RFC 4279 2; RFC 5489 2 when @p ecpoint_len > 0). */
static void build_client_key_exchange(bytes *m, marks *mk, psk_id id, size_t ecpoint_len)
{
    b_u8(m, 16);
    size_t hs = v_open(m, mk, F_HS_LEN, 3);
    size_t v = v_open(m, mk, F_CKE_ID_LEN, 2);
    b_put(m, id.p, id.len);
    v_close(m, v, 2);
    if (ecpoint_len) {
        v = v_open(m, mk, F_ECPOINT_LEN, 1);
        b_u8(m, 4);
        b_fill(m, 0xec, ecpoint_len - 1);
        v_close(m, v, 1);
    }
    v_close(m, hs, 3);
}

/* Records of @p type carrying @p msg, at most @p frag bytes each (0: one record). */
static void put_records(bytes *out, uint8_t type, const uint8_t *msg, size_t n, size_t frag)
{
    size_t off = 0;
    if (frag == 0) {
        frag = n ? n : 1;
    }
    do {
        size_t k = n - off < frag ? n - off : frag;
        b_u8(out, type);
        b_u16(out, type == 22 && off == 0 ? 0x0301 : 0x0303);
        b_u16(out, (unsigned)k);
        b_put(out, msg + off, k);
        off += k;
    } while (off < n);
}

static void put_ccs(bytes *out)
{
    static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
    b_put(out, ccs, sizeof ccs);
}

/* ---- whole client streams -------------------------------------------------------------------- */

enum { MSG_NONE, MSG_CH, MSG_CKE };

typedef struct flow {
    ch_spec ch;
    int cke;              /* a TLS 1.2 ClientKeyExchange follows the ClientHello */
    psk_id cke_id;
    size_t ecpoint_len;   /* 0: plain PSK */
    size_t ch_frag, cke_frag; /* record fragment sizes (0: one record) */
    size_t ccs_between;   /* change_cipher_spec records between ClientHello and CKE */
    int ccs_in_ch;        /* a change_cipher_spec record between the ClientHello's records */
    int coalesce;         /* ClientHello and CKE in one record */
} flow;

typedef struct mutation {
    int msg;       /* MSG_CH or MSG_CKE */
    int field;     /* F_NONE: none */
    int delta;
    int rec_delta; /* added to the length of the message's first record */
} mutation;

static void set_record_length(bytes *out, size_t rec, int delta)
{
    unsigned len = (unsigned)out->p[rec + 3] << 8 | out->p[rec + 4];
    len = (unsigned)((int)len + delta);
    out->p[rec + 3] = (uint8_t)(len >> 8);
    out->p[rec + 4] = (uint8_t)len;
}

/* Appends the stream of @p f, with @p mu applied; 0 when @p mu does not apply. */
static int build_stream(bytes *out, const flow *f, const mutation *mu)
{
    bytes ch = {0}, cke = {0};
    marks mch, mcke;
    memset(&mch, 0, sizeof mch);
    memset(&mcke, 0, sizeof mcke);
    int ok = 1;

    build_client_hello(&ch, &mch, &f->ch);
    if (f->cke) {
        build_client_key_exchange(&cke, &mcke, f->cke_id, f->ecpoint_len);
    }
    if (mu && mu->field != F_NONE) {
        if (mu->msg == MSG_CH) {
            ok = bump(&ch, &mch, mu->field, mu->delta);
        } else if (mu->msg == MSG_CKE) {
            ok = f->cke && bump(&cke, &mcke, mu->field, mu->delta);
        }
    }
    if (ok && mu && mu->rec_delta && mu->msg == MSG_CKE && !f->cke) {
        ok = 0;
    }
    if (!ok) {
        b_free(&ch);
        b_free(&cke);
        return 0;
    }

    size_t rec = out->n;
    if (f->coalesce && f->cke) {
        bytes both = {0};
        b_put(&both, ch.p, ch.n);
        b_put(&both, cke.p, cke.n);
        put_records(out, 22, both.p, both.n, 0);
        b_free(&both);
        if (mu && mu->rec_delta) {
            set_record_length(out, rec, mu->rec_delta);
        }
    } else {
        if (f->ccs_in_ch && ch.n > 10) {
            put_records(out, 22, ch.p, 10, 0);
            put_ccs(out);
            put_records(out, 22, ch.p + 10, ch.n - 10, f->ch_frag);
        } else {
            put_records(out, 22, ch.p, ch.n, f->ch_frag);
        }
        if (mu && mu->rec_delta && mu->msg == MSG_CH) {
            set_record_length(out, rec, mu->rec_delta);
        }
        if (f->cke) {
            for (size_t i = 0; i < f->ccs_between; i++) {
                put_ccs(out);
            }
            rec = out->n;
            put_records(out, 22, cke.p, cke.n, f->cke_frag);
            if (mu && mu->rec_delta && mu->msg == MSG_CKE) {
                set_record_length(out, rec, mu->rec_delta);
            }
        }
    }
    b_free(&ch);
    b_free(&cke);
    return 1;
}

/* ---- identities ------------------------------------------------------------------------------ */

static const char *const NAMES[] = {
    "client1", "alice", "bob@example.com", "Zed", "device-0042", "x", "yet another identity",
    "eighth", "ninth", "tenth", "eleventh", "twelfth",
};
#define N_NAMES (sizeof NAMES / sizeof NAMES[0])

static psk_id ID_TABLE[N_NAMES];

static const psk_id *names_ids(void)
{
    for (size_t i = 0; i < N_NAMES; i++) {
        ID_TABLE[i].p = (const uint8_t *)NAMES[i];
        ID_TABLE[i].len = strlen(NAMES[i]);
    }
    return ID_TABLE;
}

static psk_id name_id(const char *s)
{
    psk_id id = {(const uint8_t *)s, strlen(s)};
    return id;
}

static flow tls13_flow(size_t n_ids)
{
    flow f;
    memset(&f, 0, sizeof f);
    f.ch.versions[0] = 0x0a0a; /* GREASE */
    f.ch.versions[1] = 0x0304;
    f.ch.versions[2] = 0x0303;
    f.ch.n_versions = 3;
    f.ch.psk = n_ids > 0;
    f.ch.ids = names_ids();
    f.ch.n_ids = n_ids;
    return f;
}

static flow tls12_flow(const char *identity, size_t ecpoint_len)
{
    flow f;
    memset(&f, 0, sizeof f);
    f.cke = 1;
    f.cke_id = name_id(identity);
    f.ecpoint_len = ecpoint_len;
    return f;
}

/* ---- running the parser ------------------------------------------------------------------- */

typedef struct outcome {
    int r;
    uint8_t count, offers_tls13, from_cke;
    tern__psk_identity ids[TERN__PSK_MAX_IDENTITIES];
    char error[128];
} outcome;

enum mode { WHOLE, BYTES, RANDOM };

static uint64_t rng_state;

static uint32_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 11);
}

/* Feeds a fresh heap copy of @p d that is scribbled over and freed right after. */
static int feed_copy(tern__psk_parser *p, const uint8_t *d, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n) {
        memcpy(c, d, n);
    }
    int r = tern__psk_parser_feed(p, n ? c : NULL, n);
    memset(c, 0xa5, n ? n : 1);
    free(c);
    return r;
}

static void check_invariants(const tern__psk_parser *p, int r)
{
    assert_true(r == TERN__PSK_NEED_MORE || r == TERN__PSK_IDENTITIES || r == TERN__PSK_NO_PSK ||
                r == TERN__PSK_ERROR);
    assert_true(p->count <= TERN__PSK_MAX_IDENTITIES);
    for (unsigned i = 0; i < p->count; i++) {
        assert_true(p->identities[i].len <= TERN__PSK_MAX_IDENTITY);
    }
    if (r == TERN__PSK_ERROR) {
        assert_non_null(p->error);
        assert_true(p->error[0] != '\0');
    }
    if (r == TERN__PSK_IDENTITIES) {
        assert_true(p->count >= 1);
    }
}

/* Feeds @p s (then @p trailer when still NEED_MORE) split per @p mode; checks that a result,
 * once given, is given again for every later feed; frees the parser. */
static outcome run_split(const uint8_t *s, size_t n, const uint8_t *trailer, size_t tn,
                         enum mode mode, uint64_t seed)
{
    tern__psk_parser p;
    outcome o;
    memset(&o, 0, sizeof o);
    tern__psk_parser_init(&p);
    rng_state = seed * 0x9e3779b97f4a7c15ULL + 1;
    int r = TERN__PSK_NEED_MORE, first = TERN__PSK_NEED_MORE;
    for (int part = 0; part < 2; part++) {
        const uint8_t *d = part ? trailer : s;
        size_t len = part ? tn : n;
        size_t off = 0;
        while (off < len) {
            size_t k;
            switch (mode) {
            case WHOLE: k = len - off; break;
            case BYTES: k = 1; break;
            default:
                k = (rng() & 3) ? 1 + rng() % 16 : 1 + rng() % 400;
                if ((rng() & 15) == 0) {
                    r = feed_copy(&p, d + off, 0); /* an empty feed now and then */
                    check_invariants(&p, r);
                    assert_int_equal(r, first);
                }
                break;
            }
            if (k > len - off) {
                k = len - off;
            }
            r = feed_copy(&p, d + off, k);
            check_invariants(&p, r);
            if (first != TERN__PSK_NEED_MORE) {
                assert_int_equal(r, first); /* sticky */
                assert_int_equal(p.count, o.count);
                assert_int_equal(p.from_cke, o.from_cke);
                assert_int_equal(p.offers_tls13, o.offers_tls13);
                assert_memory_equal(p.identities, o.ids, sizeof o.ids);
            } else if (r != TERN__PSK_NEED_MORE) {
                first = r;
                o.count = p.count;
                o.from_cke = p.from_cke;
                o.offers_tls13 = p.offers_tls13;
                memcpy(o.ids, p.identities, sizeof o.ids);
            }
            off += k;
        }
    }
    o.r = r;
    o.count = p.count;
    o.from_cke = p.from_cke;
    o.offers_tls13 = p.offers_tls13;
    memcpy(o.ids, p.identities, sizeof o.ids);
    if (r == TERN__PSK_ERROR) {
        snprintf(o.error, sizeof o.error, "%s", p.error);
    }
    tern__psk_parser_free(&p);
    return o;
}

static outcome run_stream(const bytes *s, enum mode mode, uint64_t seed)
{
    return run_split(s->p, s->n, NULL, 0, mode, seed);
}

static const char *result_name(int r)
{
    switch (r) {
    case TERN__PSK_NEED_MORE: return "NEED_MORE";
    case TERN__PSK_IDENTITIES: return "IDENTITIES";
    case TERN__PSK_NO_PSK: return "NO_PSK";
    case TERN__PSK_ERROR: return "ERROR";
    default: return "?";
    }
}

static int same_outcome(const outcome *a, const outcome *b)
{
    if (a->r != b->r || a->count != b->count || a->from_cke != b->from_cke ||
        a->offers_tls13 != b->offers_tls13) {
        return 0;
    }
    for (unsigned i = 0; i < a->count; i++) {
        if (a->ids[i].len != b->ids[i].len ||
            memcmp(a->ids[i].bytes, b->ids[i].bytes, a->ids[i].len) != 0) {
            return 0;
        }
    }
    return 1;
}

static void assert_ids(const outcome *o, const psk_id *ids, size_t n)
{
    assert_int_equal(o->r, TERN__PSK_IDENTITIES);
    assert_int_equal(o->count, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(o->ids[i].len, ids[i].len);
        assert_memory_equal(o->ids[i].bytes, ids[i].p, ids[i].len);
    }
}

/* The outcome of @p f fed whole, checked against byte by byte and 50 random splits. */
static outcome run_flow_all_splits(const flow *f)
{
    bytes s = {0};
    assert_true(build_stream(&s, f, NULL));
    outcome whole = run_stream(&s, WHOLE, 0);
    outcome one = run_stream(&s, BYTES, 0);
    if (!same_outcome(&whole, &one)) {
        print_error("whole: %s count %u; byte by byte: %s count %u\n", result_name(whole.r),
                    whole.count, result_name(one.r), one.count);
        fail_msg("byte-by-byte feeding gives another result");
    }
    for (uint64_t seed = 1; seed <= 50; seed++) {
        outcome o = run_stream(&s, RANDOM, seed);
        if (!same_outcome(&whole, &o)) {
            print_error("whole: %s count %u; seed %u: %s count %u\n", result_name(whole.r),
                        whole.count, (unsigned)seed, result_name(o.r), o.count);
            fail_msg("random splits give another result");
        }
    }
    b_free(&s);
    return whole;
}

/* ---- TLS 1.3 ------------------------------------------------------------------------------------ */

static void test_psk_parse__tls13_one_identity(void **state)
{
    (void)state;
    flow f = tls13_flow(1);
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, f.ch.ids, 1);
    assert_int_equal(o.offers_tls13, 1);
    assert_int_equal(o.from_cke, 0);
}

static void test_psk_parse__tls13_several_identities_up_to_eight(void **state)
{
    (void)state;
    for (size_t n = 2; n <= TERN__PSK_MAX_IDENTITIES; n++) {
        flow f = tls13_flow(n);
        outcome o = run_flow_all_splits(&f);
        assert_ids(&o, f.ch.ids, n);
        assert_int_equal(o.offers_tls13, 1);
        assert_int_equal(o.from_cke, 0);
    }
}

/* The header: TERN__PSK_MAX_IDENTITIES are "kept"; the ones after are not reported. */
static void test_psk_parse__tls13_identities_after_the_eighth_are_not_kept(void **state)
{
    (void)state;
    for (size_t n = TERN__PSK_MAX_IDENTITIES + 1; n <= N_NAMES; n++) {
        flow f = tls13_flow(n);
        outcome o = run_flow_all_splits(&f);
        if (o.r != TERN__PSK_IDENTITIES) {
            print_error("%zu identities: %s (%s)\n", n, result_name(o.r), o.error);
        }
        assert_ids(&o, f.ch.ids, TERN__PSK_MAX_IDENTITIES);
    }
}

static void test_psk_parse__tls13_identity_of_128_bytes_is_kept(void **state)
{
    (void)state;
    uint8_t big[TERN__PSK_MAX_EXTERNAL];
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 7 + 1);
    }
    psk_id ids[2] = {{big, sizeof big}, {(const uint8_t *)"after", 5}};
    flow f = tls13_flow(0);
    f.ch.psk = 1;
    f.ch.ids = ids;
    f.ch.n_ids = 2;
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, ids, 2);
}

/* Longer TLS 1.3 identities are session tickets: skipped (wolfSSL resumes with them), the
 * external ones around them kept; tickets alone are NO_PSK. */
static void test_psk_parse__tls13_tickets_are_skipped(void **state)
{
    (void)state;
    static uint8_t ticket[1000];
    memset(ticket, 'T', sizeof ticket);
    static const size_t lens[] = {TERN__PSK_MAX_EXTERNAL + 1, 200, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        psk_id with_external[3] = {{ticket, lens[i]}, name_id("device-7"), {ticket, lens[i]}};
        flow f = tls13_flow(0);
        f.ch.psk = 1;
        f.ch.ids = with_external;
        f.ch.n_ids = 3;
        outcome o = run_flow_all_splits(&f);
        psk_id kept[1] = {name_id("device-7")};
        assert_ids(&o, kept, 1);

        psk_id alone[1] = {{ticket, lens[i]}};
        f.ch.ids = alone;
        f.ch.n_ids = 1;
        o = run_flow_all_splits(&f);
        assert_int_equal(o.r, TERN__PSK_NO_PSK);
        assert_int_equal(o.count, 0);
    }
}

static void test_psk_parse__tls13_without_pre_shared_key_is_no_psk(void **state)
{
    (void)state;
    flow f = tls13_flow(0);
    outcome o = run_flow_all_splits(&f);
    assert_int_equal(o.r, TERN__PSK_NO_PSK);
    assert_int_equal(o.count, 0);
    assert_int_equal(o.offers_tls13, 1);

    /* only 0x0304 offered */
    f.ch.versions[0] = 0x0304;
    f.ch.n_versions = 1;
    o = run_flow_all_splits(&f);
    assert_int_equal(o.r, TERN__PSK_NO_PSK);
    assert_int_equal(o.offers_tls13, 1);
}

/* The ClientHello's first handshake record ends exactly at the record limit (2^14 bytes), and
 * a ClientHello of TERN__PSK_MAX_HANDSHAKE bytes (five records) is still reassembled. */
static void test_psk_parse__largest_record_and_handshake_message_are_accepted(void **state)
{
    (void)state;
    flow f = tls13_flow(3);
    bytes m = {0};
    marks mk;
    memset(&mk, 0, sizeof mk);
    f.ch.with_padding = 1;
    f.ch.padding = 0;
    build_client_hello(&m, &mk, &f.ch);
    size_t base = m.n; /* message with an empty padding extension */
    b_free(&m);

    f.ch.padding = 16384 - base;
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, f.ch.ids, 3);

    f.ch.padding = (TERN__PSK_MAX_HANDSHAKE + 4) - base;
    f.ch_frag = 16384;
    o = run_flow_all_splits(&f);
    assert_ids(&o, f.ch.ids, 3);
}

/* ---- TLS 1.2 ------------------------------------------------------------------------------------ */

static void test_psk_parse__tls12_plain_psk_identity_from_cke(void **state)
{
    (void)state;
    flow f = tls12_flow("tls12-client", 0);
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
    assert_int_equal(o.from_cke, 1);
    assert_int_equal(o.offers_tls13, 0);
}

static void test_psk_parse__tls12_ecdhe_psk_identity_from_cke(void **state)
{
    (void)state;
    flow f = tls12_flow("ecdhe-psk-identity", 65);
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
    assert_int_equal(o.from_cke, 1);
    assert_int_equal(o.offers_tls13, 0);

    /* x25519 ECPoint (32 bytes) */
    f.ecpoint_len = 32;
    o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
}

static void test_psk_parse__tls12_identity_of_255_bytes(void **state)
{
    (void)state;
    uint8_t big[TERN__PSK_MAX_IDENTITY];
    memset(big, 'i', sizeof big);
    flow f = tls12_flow("", 0);
    f.cke_id.p = big;
    f.cke_id.len = sizeof big;
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
    f.ecpoint_len = 65;
    o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
}

/* A TLS 1.2 ClientHello may have no extensions block at all (RFC 5246 7.4.1.2). */
static void test_psk_parse__tls12_client_hello_without_extensions(void **state)
{
    (void)state;
    flow f = tls12_flow("no-extensions", 0);
    f.ch.no_extensions = 1;
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
    assert_int_equal(o.from_cke, 1);
    assert_int_equal(o.offers_tls13, 0);
}

/* supported_versions that does not list 0x0304: TLS 1.2, identity from the CKE. */
static void test_psk_parse__tls12_supported_versions_without_tls13(void **state)
{
    (void)state;
    flow f = tls12_flow("sv-1.2-only", 65);
    f.ch.versions[0] = 0x0303;
    f.ch.versions[1] = 0x0302;
    f.ch.n_versions = 2;
    outcome o = run_flow_all_splits(&f);
    assert_ids(&o, &f.cke_id, 1);
    assert_int_equal(o.from_cke, 1);
    assert_int_equal(o.offers_tls13, 0);
}

/* ---- splits, records, change_cipher_spec ----------------------------------------------------- */

static flow valid_flow(int i)
{
    switch (i) {
    case 0: return tls13_flow(1);
    case 1: return tls13_flow(3);
    case 2: return tls13_flow(8);
    case 3: return tls13_flow(0);
    case 4: return tls12_flow("plain-psk", 0);
    default: return tls12_flow("ecdhe-psk", 65);
    }
}
#define N_VALID_FLOWS 6

/* Handshake messages spread over records of 1, 2, 3, 5, 7, 13, 64 and 100 bytes: the same
 * result as in one record each. */
static void test_psk_parse__same_result_when_messages_span_records(void **state)
{
    (void)state;
    static const size_t frags[] = {1, 2, 3, 5, 7, 13, 64, 100};
    for (int i = 0; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        outcome ref = run_flow_all_splits(&f);
        assert_true(ref.r == TERN__PSK_IDENTITIES || ref.r == TERN__PSK_NO_PSK);
        for (size_t j = 0; j < sizeof frags / sizeof frags[0]; j++) {
            f.ch_frag = frags[j];
            f.cke_frag = frags[(j + 3) % (sizeof frags / sizeof frags[0])];
            outcome o = run_flow_all_splits(&f);
            if (!same_outcome(&ref, &o)) {
                print_error("flow %d, records of %zu/%zu: %s (%s), expected %s\n", i, f.ch_frag,
                            f.cke_frag, result_name(o.r), o.error, result_name(ref.r));
                fail();
            }
        }
    }
}

/* TLS 1.2: the client's change_cipher_spec follows its ClientKeyExchange (RFC 5246 7.3), so
 * the identity is in before it; change_cipher_spec records after it change nothing. */
static void test_psk_parse__change_cipher_spec_after_the_cke_changes_nothing(void **state)
{
    (void)state;
    for (int i = 4; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        bytes s = {0};
        assert_true(build_stream(&s, &f, NULL));
        outcome ref = run_stream(&s, WHOLE, 0);
        put_ccs(&s);
        put_ccs(&s);
        outcome o = run_stream(&s, BYTES, 0);
        assert_true(same_outcome(&ref, &o));
        assert_int_equal(o.r, TERN__PSK_IDENTITIES);
        b_free(&s);
    }
}

/* TLS 1.2: a change_cipher_spec after the ClientHello and before any ClientKeyExchange is an
 * abbreviated (resumed) handshake: no identity will come. The parser answers NO_PSK (the
 * header documents NO_PSK only for TLS 1.3 and says change_cipher_spec records are
 * skipped; this is what ssl/psk_parse.c does, and what the protocol means). */
static void test_psk_parse__tls12_change_cipher_spec_before_the_cke_is_a_resumption(void **state)
{
    (void)state;
    for (int i = 4; i < N_VALID_FLOWS; i++) {
        for (size_t ccs = 1; ccs <= 2; ccs++) {
            flow f = valid_flow(i);
            f.ccs_between = ccs;
            outcome o = run_flow_all_splits(&f);
            if (o.r != TERN__PSK_NO_PSK) {
                print_error("flow %d, %zu change_cipher_spec records before the CKE: %s (%s)\n",
                            i, ccs, result_name(o.r), o.error);
                fail();
            }
            assert_int_equal(o.count, 0);
            assert_int_equal(o.offers_tls13, 0);
        }
    }
}

/* TLS 1.2 with a client certificate: Certificate, then ClientKeyExchange. */
static void test_psk_parse__tls12_client_certificate_before_the_cke(void **state)
{
    (void)state;
    for (int i = 4; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        bytes ch = {0}, cert = {0}, cke = {0}, s = {0};
        marks mk;
        memset(&mk, 0, sizeof mk);
        build_client_hello(&ch, &mk, &f.ch);
        build_client_key_exchange(&cke, &mk, f.cke_id, f.ecpoint_len);
        b_u8(&cert, 11);
        size_t hs = v_open(&cert, NULL, F_NONE, 3);
        size_t list = v_open(&cert, NULL, F_NONE, 3);
        size_t one = v_open(&cert, NULL, F_NONE, 3);
        b_fill(&cert, 0x30, 700);
        v_close(&cert, one, 3);
        v_close(&cert, list, 3);
        v_close(&cert, hs, 3);
        put_records(&s, 22, ch.p, ch.n, 0);
        bytes both = {0};
        b_put(&both, cert.p, cert.n);
        b_put(&both, cke.p, cke.n);
        put_records(&s, 22, both.p, both.n, 300); /* the CKE starts inside a record */
        outcome o = run_stream(&s, WHOLE, 0);
        assert_ids(&o, &f.cke_id, 1);
        assert_int_equal(o.from_cke, 1);
        for (uint64_t seed = 1; seed <= 20; seed++) {
            outcome r = run_stream(&s, RANDOM, seed);
            assert_true(same_outcome(&o, &r));
        }
        b_free(&ch);
        b_free(&cert);
        b_free(&cke);
        b_free(&both);
        b_free(&s);
    }
}

/* RFC 8446 5.1 forbids other records between the fragments of a handshake message; the
 * header says change_cipher_spec records are skipped. Either is accepted here: the same
 * identities, or an error - never other identities. */
static void test_psk_parse__change_cipher_spec_inside_a_fragmented_client_hello(void **state)
{
    (void)state;
    for (int i = 0; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        outcome ref = run_flow_all_splits(&f);
        f.ccs_in_ch = 1;
        outcome o = run_flow_all_splits(&f);
        if (!same_outcome(&ref, &o)) {
            assert_int_equal(o.r, TERN__PSK_ERROR);
        }
    }
}

/* A ClientHello and a ClientKeyExchange in one record: handshake messages are not aligned to
 * records. */
static void test_psk_parse__messages_coalesced_in_one_record(void **state)
{
    (void)state;
    for (int i = 4; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        outcome ref = run_flow_all_splits(&f);
        f.coalesce = 1;
        outcome o = run_flow_all_splits(&f);
        if (!same_outcome(&ref, &o)) {
            print_error("flow %d coalesced: %s (%s)\n", i, result_name(o.r), o.error);
            fail();
        }
    }
}

/* After a result, more bytes (and empty feeds) give the same result and change nothing. */
static void test_psk_parse__result_is_given_again_after_more_bytes(void **state)
{
    (void)state;
    static const uint8_t junk[] = {0x17, 0x03, 0x03, 0x00, 0x05, 1, 2, 3, 4, 5, 0xee, 0xee};
    for (int i = 0; i < N_VALID_FLOWS + 1; i++) {
        bytes s = {0};
        if (i < N_VALID_FLOWS) {
            flow f = valid_flow(i);
            assert_true(build_stream(&s, &f, NULL));
        } else {
            b_put(&s, junk, sizeof junk); /* an error */
        }
        tern__psk_parser p;
        tern__psk_parser_init(&p);
        int r = feed_copy(&p, s.p, s.n);
        check_invariants(&p, r);
        assert_int_not_equal(r, TERN__PSK_NEED_MORE);
        tern__psk_parser snap = p;
        for (int k = 0; k < 3; k++) {
            assert_int_equal(feed_copy(&p, junk, sizeof junk), r);
            assert_int_equal(feed_copy(&p, s.p, s.n), r);
            assert_int_equal(feed_copy(&p, NULL, 0), r);
        }
        assert_int_equal(p.count, snap.count);
        assert_int_equal(p.from_cke, snap.from_cke);
        assert_int_equal(p.offers_tls13, snap.offers_tls13);
        assert_memory_equal(p.identities, snap.identities, sizeof p.identities);
        assert_ptr_equal(p.error, snap.error);
        tern__psk_parser_free(&p);
        b_free(&s);
    }
}

static void test_psk_parse__nothing_fed_needs_more(void **state)
{
    (void)state;
    tern__psk_parser p;
    memset(&p, 0x5c, sizeof p);
    tern__psk_parser_init(&p);
    assert_int_equal(p.count, 0);
    assert_null(p.msg);
    tern__psk_parser_free(&p); /* never used */

    tern__psk_parser_init(&p);
    assert_int_equal(tern__psk_parser_feed(&p, NULL, 0), TERN__PSK_NEED_MORE);
    static const uint8_t hdr[] = {22, 3, 1};
    assert_int_equal(feed_copy(&p, hdr, sizeof hdr), TERN__PSK_NEED_MORE);
    tern__psk_parser_free(&p); /* mid-record */
}

/* ---- malformed input --------------------------------------------------------------------------- */

/* Junk fed after a malformed stream that still says NEED_MORE (a length one too long waits for
 * bytes that are not part of the message): 0xee is no record type. */
static const uint8_t TRAILER[16] = {0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee,
                                    0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee};

/* Runs @p s whole, byte by byte and split at random, with TRAILER after; returns 1 when every
 * way gave ERROR, else prints what came and returns 0. */
static int gives_error(const uint8_t *s, size_t n, const char *what)
{
    outcome o[12];
    o[0] = run_split(s, n, TRAILER, sizeof TRAILER, WHOLE, 0);
    o[1] = run_split(s, n, TRAILER, sizeof TRAILER, BYTES, 0);
    for (int i = 2; i < 12; i++) {
        o[i] = run_split(s, n, TRAILER, sizeof TRAILER, RANDOM, (uint64_t)i);
    }
    for (int i = 0; i < 12; i++) {
        if (o[i].r != TERN__PSK_ERROR) {
            print_error("%s: %s (count %u) %s\n", what, result_name(o[i].r), o[i].count,
                        i == 0 ? "fed whole" : i == 1 ? "byte by byte" : "random split");
            return 0;
        }
    }
    return 1;
}

static int stream_gives_error(const bytes *s, const char *what)
{
    return gives_error(s->p, s->n, what);
}

/* The length fields the parser has to read (record and handshake framing, the ClientHello's
 * vectors, extension headers, supported_versions, pre_shared_key; the CKE's psk_identity),
 * each one up and one down, in a TLS 1.3 ClientHello with three identities, in one without
 * pre_shared_key, and in TLS 1.2 flows: every one is an error. A length one too long that only
 * reaches into the next record or message is undecidable for a parser that sees a prefix, so
 * TRAILER follows; the cases that stay undecidable even then have their own tests below. */
static void test_psk_parse__length_fields_off_by_one_are_errors(void **state)
{
    (void)state;
    static const int ch13_fields[] = {
        F_HS_LEN, F_SID_LEN, F_SUITES_LEN, F_COMP_LEN, F_EXTS_LEN, F_SNI_EXT_LEN,
        F_GROUPS_EXT_LEN, F_SIGALGS_EXT_LEN, F_SV_EXT_LEN, F_SV_LEN, F_MODES_EXT_LEN,
        F_KS_EXT_LEN, F_PSK_EXT_LEN, F_IDS_LEN, F_ID_LEN + 0, F_ID_LEN + 1, F_ID_LEN + 2,
        F_BINDERS_LEN, F_BINDER_LEN + 0, F_BINDER_LEN + 1, F_BINDER_LEN + 2,
    };
    static const int ch12_fields[] = {
        F_HS_LEN, F_SID_LEN, F_SUITES_LEN, F_COMP_LEN, F_EXTS_LEN, F_SNI_EXT_LEN,
        F_GROUPS_EXT_LEN, F_SIGALGS_EXT_LEN,
    };
    struct {
        const char *name;
        flow f;
        const int *fields;
        size_t n_fields;
    } cases[] = {
        {"TLS 1.3, 3 identities", tls13_flow(3), ch13_fields,
         sizeof ch13_fields / sizeof ch13_fields[0]},
        {"TLS 1.3, 1 identity", tls13_flow(1), ch13_fields,
         sizeof ch13_fields / sizeof ch13_fields[0]},
        {"TLS 1.3, no pre_shared_key", tls13_flow(0), ch13_fields,
         sizeof ch13_fields / sizeof ch13_fields[0]},
        {"TLS 1.2 plain PSK", tls12_flow("plain", 0), ch12_fields,
         sizeof ch12_fields / sizeof ch12_fields[0]},
        {"TLS 1.2 ECDHE-PSK", tls12_flow("ecdhe", 65), ch12_fields,
         sizeof ch12_fields / sizeof ch12_fields[0]},
    };
    int failures = 0, tried = 0;
    char what[160];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t i = 0; i < cases[c].n_fields; i++) {
            for (int delta = -1; delta <= 1; delta += 2) {
                mutation mu = {MSG_CH, cases[c].fields[i], delta, 0};
                bytes s = {0};
                if (!build_stream(&s, &cases[c].f, &mu)) {
                    continue; /* not in this ClientHello */
                }
                snprintf(what, sizeof what, "%s: ClientHello %s %+d", cases[c].name,
                         field_name(mu.field), delta);
                tried++;
                failures += !stream_gives_error(&s, what);
                b_free(&s);
            }
        }
        /* the ClientHello's record one short: the next record header starts inside the
         * message */
        mutation mu = {MSG_CH, F_NONE, 0, -1};
        bytes s = {0};
        assert_true(build_stream(&s, &cases[c].f, &mu));
        snprintf(what, sizeof what, "%s: ClientHello record length -1", cases[c].name);
        tried++;
        failures += !stream_gives_error(&s, what);
        b_free(&s);
        if (cases[c].f.cke) {
            /* the ClientHello's record one long (it takes the next record's type byte) */
            mutation up = {MSG_CH, F_NONE, 0, +1};
            assert_true(build_stream(&s, &cases[c].f, &up));
            snprintf(what, sizeof what, "%s: ClientHello record length +1", cases[c].name);
            tried++;
            failures += !stream_gives_error(&s, what);
            b_free(&s);
            /* the CKE */
            const mutation cke[] = {
                {MSG_CKE, F_HS_LEN, +1, 0},
                {MSG_CKE, F_NONE, 0, -1},
                {MSG_CKE, F_CKE_ID_LEN, +1, 0},
                {MSG_CKE, F_HS_LEN, -1, 0}, /* plain PSK only: the identity overruns */
            };
            size_t n_cke = cases[c].f.ecpoint_len ? 2 : 4; /* ECDHE: see the undecidable test */
            for (size_t k = 0; k < n_cke; k++) {
                assert_true(build_stream(&s, &cases[c].f, &cke[k]));
                if (cke[k].field == F_NONE) {
                    snprintf(what, sizeof what, "%s: CKE record length %+d", cases[c].name,
                             cke[k].rec_delta);
                } else {
                    snprintf(what, sizeof what, "%s: CKE %s %+d", cases[c].name,
                             field_name(cke[k].field), cke[k].delta);
                }
                tried++;
                failures += !stream_gives_error(&s, what);
                b_free(&s);
            }
        }
    }
    print_message("%d off-by-one streams, %d not rejected\n", tried, failures);
    assert_int_equal(failures, 0);
}

/* Lengths one too long that a correct parser cannot tell from a longer valid stream: the
 * record of a complete TLS 1.3 ClientHello one long (the extra byte may begin the next
 * handshake message), the CKE's record one long, the ECDHE-PSK CKE's identity one long or
 * short, the plain CKE's identity one short (the parser does not know the key exchange, so
 * what follows the identity is opaque). Any result but other identities is accepted, and no
 * crash. */
static void test_psk_parse__undecidable_off_by_one_give_no_other_identities(void **state)
{
    (void)state;
    struct {
        flow f;
        mutation mu;
        size_t id_len_delta_ok; /* the identity one shorter is an acceptable answer */
    } cases[] = {
        {tls13_flow(1), {MSG_CH, F_NONE, 0, +1}, 0},
        {tls13_flow(3), {MSG_CH, F_NONE, 0, +1}, 0},
        {tls12_flow("plain", 0), {MSG_CKE, F_NONE, 0, +1}, 0},
        {tls12_flow("ecdhe", 65), {MSG_CKE, F_NONE, 0, +1}, 0},
        {tls12_flow("plain", 0), {MSG_CKE, F_CKE_ID_LEN, -1, 0}, 1},
        {tls12_flow("ecdhe", 65), {MSG_CKE, F_CKE_ID_LEN, -1, 0}, 1},
        {tls12_flow("ecdhe", 65), {MSG_CKE, F_CKE_ID_LEN, +1, 0}, 1},
        {tls12_flow("ecdhe", 65), {MSG_CKE, F_HS_LEN, -1, 0}, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        bytes s = {0};
        assert_true(build_stream(&s, &cases[c].f, &cases[c].mu));
        outcome o = run_split(s.p, s.n, TRAILER, sizeof TRAILER, WHOLE, 0);
        outcome b = run_split(s.p, s.n, TRAILER, sizeof TRAILER, BYTES, 0);
        assert_true(same_outcome(&o, &b));
        if (o.r == TERN__PSK_IDENTITIES) {
            const psk_id *want = cases[c].f.cke ? &cases[c].f.cke_id : cases[c].f.ch.ids;
            size_t n = cases[c].f.cke ? 1 : cases[c].f.ch.n_ids;
            if (cases[c].id_len_delta_ok) {
                /* the identity as its (changed) length field says: one byte more or less */
                assert_int_equal(o.count, 1);
                int d = cases[c].mu.delta;
                assert_int_equal(o.ids[0].len, (int)want->len + d);
                assert_memory_equal(o.ids[0].bytes, want->p, d < 0 ? want->len - 1 : want->len);
            } else {
                assert_ids(&o, want, n);
            }
        } else {
            assert_int_equal(o.r, TERN__PSK_ERROR);
        }
        b_free(&s);
    }
}

/* The message's one extra byte does come, in a record of its own: a ClientHello with a byte
 * after its extensions is malformed. */
static void test_psk_parse__handshake_length_one_long_completed_by_the_next_record(void **state)
{
    (void)state;
    static const uint8_t one_more[] = {22, 3, 3, 0, 1, 0x00};
    for (size_t n = 0; n <= 3; n++) {
        flow f = tls13_flow(n);
        mutation mu = {MSG_CH, F_HS_LEN, +1, 0};
        bytes s = {0};
        assert_true(build_stream(&s, &f, &mu));
        b_put(&s, one_more, sizeof one_more);
        char what[80];
        snprintf(what, sizeof what, "TLS 1.3 ClientHello (%zu identities) + 1 byte", n);
        assert_true(stream_gives_error(&s, what));
        b_free(&s);
    }
}

/* Every prefix of the ClientHello's body as a whole message (lengths of the handshake header
 * and the record set to match): every vector is cut somewhere. */
static void test_psk_parse__truncated_client_hello_is_an_error(void **state)
{
    (void)state;
    int failures = 0;
    for (int i = 0; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        bytes m = {0};
        marks mk;
        memset(&mk, 0, sizeof mk);
        build_client_hello(&m, &mk, &f.ch);
        size_t body = m.n - 4;
        for (size_t cut = 0; cut < body; cut++) {
            bytes msg = {0}, s = {0};
            b_put(&msg, m.p, 4 + cut);
            msg.p[1] = (uint8_t)(cut >> 16);
            msg.p[2] = (uint8_t)(cut >> 8);
            msg.p[3] = (uint8_t)cut;
            put_records(&s, 22, msg.p, msg.n, 0);
            char what[80];
            snprintf(what, sizeof what, "flow %d ClientHello cut to %zu of %zu bytes", i, cut,
                     body);
            /* TLS 1.2 with the body cut right after compression_methods is a valid
             * ClientHello without extensions: TRAILER makes it an error at the record layer */
            failures += !stream_gives_error(&s, what);
            b_free(&msg);
            b_free(&s);
        }
        b_free(&m);
    }
    assert_int_equal(failures, 0);
}

static void test_psk_parse__truncated_client_key_exchange_is_an_error(void **state)
{
    (void)state;
    flow f = tls12_flow("truncated-identity", 0);
    bytes ch = {0}, cke = {0};
    marks mk;
    memset(&mk, 0, sizeof mk);
    build_client_hello(&ch, &mk, &f.ch);
    build_client_key_exchange(&cke, &mk, f.cke_id, 0);
    for (size_t cut = 0; cut < cke.n - 4; cut++) {
        bytes s = {0}, msg = {0};
        put_records(&s, 22, ch.p, ch.n, 0);
        b_put(&msg, cke.p, 4 + cut);
        msg.p[3] = (uint8_t)cut;
        put_records(&s, 22, msg.p, msg.n, 0);
        char what[64];
        snprintf(what, sizeof what, "CKE cut to %zu bytes", cut);
        assert_true(stream_gives_error(&s, what));
        b_free(&s);
        b_free(&msg);
    }
    b_free(&ch);
    b_free(&cke);
}

static void test_psk_parse__cke_identity_longer_than_255_is_an_error(void **state)
{
    (void)state;
    static uint8_t big[1000];
    memset(big, 'L', sizeof big);
    static const size_t lens[] = {TERN__PSK_MAX_IDENTITY + 1, 300, 1000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char what[80];
        /* TLS 1.3: longer identities are tickets (test_psk_parse__tls13_tickets_are_skipped) */
        /* TLS 1.2 CKE */
        for (size_t ec = 0; ec <= 65; ec += 65) {
            flow f = tls12_flow("", ec);
            f.cke_id.p = big;
            f.cke_id.len = lens[i];
            bytes s = {0};
            assert_true(build_stream(&s, &f, NULL));
            snprintf(what, sizeof what, "CKE identity of %zu bytes (ECPoint %zu)", lens[i], ec);
            assert_true(stream_gives_error(&s, what));
            b_free(&s);
        }
    }
}

/* RFC 8446 4.2.11: PskIdentity.identity<1..2^16-1>. */
static void test_psk_parse__zero_length_identity_is_an_error(void **state)
{
    (void)state;
    for (size_t pos = 0; pos < 3; pos++) {
        psk_id ids[3] = {name_id("first"), name_id("second"), name_id("third")};
        ids[pos].len = 0;
        flow f = tls13_flow(0);
        f.ch.psk = 1;
        f.ch.ids = ids;
        f.ch.n_ids = 3;
        bytes s = {0};
        assert_true(build_stream(&s, &f, NULL));
        char what[64];
        snprintf(what, sizeof what, "TLS 1.3 identity %zu empty", pos);
        assert_true(stream_gives_error(&s, what));
        b_free(&s);
    }
}

/* RFC 4279 writes psk_identity<0..2^16-1>: an empty CKE identity is syntactically valid.
 * Accepted here: ERROR, or IDENTITIES with one empty identity - reported, never a crash. */
static void test_psk_parse__empty_cke_identity(void **state)
{
    (void)state;
    for (size_t ec = 0; ec <= 65; ec += 65) {
        flow f = tls12_flow("", ec);
        outcome o = run_flow_all_splits(&f);
        if (o.r == TERN__PSK_IDENTITIES) {
            assert_int_equal(o.count, 1);
            assert_int_equal(o.ids[0].len, 0);
            assert_int_equal(o.from_cke, 1);
        } else {
            assert_int_equal(o.r, TERN__PSK_ERROR);
        }
        print_message("empty CKE identity (ECPoint %zu): %s\n", ec, result_name(o.r));
    }
}

/* RFC 8446 5.1: a TLSPlaintext length over 2^14 is a record_overflow. */
static void test_psk_parse__record_length_over_the_limit_is_an_error(void **state)
{
    (void)state;
    static const unsigned lens[] = {16385, 16384 + 256 + 1, 16384 + 2048 + 1, 0xffff};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        /* a real ClientHello padded to fill the record */
        flow f = tls13_flow(2);
        bytes m = {0};
        marks mk;
        memset(&mk, 0, sizeof mk);
        f.ch.with_padding = 1;
        build_client_hello(&m, &mk, &f.ch);
        f.ch.padding = lens[i] - m.n;
        b_free(&m);
        bytes s = {0};
        assert_true(build_stream(&s, &f, NULL));
        assert_int_equal(s.n, 5 + lens[i]);
        char what[64];
        snprintf(what, sizeof what, "record of %u bytes", lens[i]);
        assert_true(stream_gives_error(&s, what));

        /* the header alone is enough to know */
        tern__psk_parser p;
        tern__psk_parser_init(&p);
        int r = feed_copy(&p, s.p, 5);
        if (r != TERN__PSK_ERROR) {
            print_message("record of %u bytes: %s after its header alone (error only later)\n",
                          lens[i], result_name(r));
        }
        tern__psk_parser_free(&p);
        b_free(&s);
    }
}

/* A handshake length over TERN__PSK_MAX_HANDSHAKE, followed by that many bytes in full
 * records: an error, and no write past the reassembly buffer. */
static void test_psk_parse__handshake_length_over_the_limit_is_an_error(void **state)
{
    (void)state;
    static const uint32_t lens[] = {TERN__PSK_MAX_HANDSHAKE + 1, 100000, 0xffffff};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint32_t total = lens[i] < 200000 ? lens[i] : 200000;
        bytes msg = {0}, s = {0};
        b_u8(&msg, 1);
        b_u8(&msg, lens[i] >> 16);
        b_u16(&msg, lens[i] & 0xffff);
        b_u16(&msg, 0x0303);
        b_fill(&msg, 0x42, total - 2);
        put_records(&s, 22, msg.p, msg.n, 16384);
        char what[64];
        snprintf(what, sizeof what, "handshake length %u", (unsigned)lens[i]);
        /* whole and random splits (byte by byte is slow for 200 kB under ASan, still fine) */
        assert_true(stream_gives_error(&s, what));
        b_free(&msg);
        b_free(&s);
    }
}

static void test_psk_parse__wrong_first_record_type_is_an_error(void **state)
{
    (void)state;
    flow f = tls13_flow(1);
    bytes good = {0};
    assert_true(build_stream(&good, &f, NULL));
    static const uint8_t types[] = {23, 21, 24, 0, 19, 25, 0xff};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        bytes s = {0};
        b_put(&s, good.p, good.n);
        s.p[0] = types[i];
        char what[64];
        snprintf(what, sizeof what, "first record of type %u", types[i]);
        assert_true(stream_gives_error(&s, what));
        b_free(&s);
    }
    /* a real alert and real application data */
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40};
    assert_true(gives_error(alert, sizeof alert, "alert first"));
    static const uint8_t appdata[] = {23, 3, 3, 0, 4, 'G', 'E', 'T', ' '};
    assert_true(gives_error(appdata, sizeof appdata, "application data first"));
    /* plaintext HTTP, an SSLv2-compatible ClientHello */
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_true(gives_error((const uint8_t *)http, sizeof http - 1, "HTTP request"));
    static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00,
                                    0x00, 0x00, 0x10, 0x00, 0x00, 0x2f, 0x00, 0x00};
    assert_true(gives_error(sslv2, sizeof sslv2, "SSLv2 ClientHello"));
    b_free(&good);
}

static void test_psk_parse__first_message_not_client_hello_is_an_error(void **state)
{
    (void)state;
    /* a well-formed CKE, ServerHello-typed, Certificate-typed, Finished-typed message first */
    static const uint8_t types[] = {16, 2, 11, 20, 0, 4, 0xff};
    flow f = tls13_flow(1);
    bytes m = {0};
    marks mk;
    memset(&mk, 0, sizeof mk);
    build_client_hello(&m, &mk, &f.ch);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        bytes s = {0};
        m.p[0] = types[i];
        put_records(&s, 22, m.p, m.n, 0);
        char what[64];
        snprintf(what, sizeof what, "first handshake message of type %u", types[i]);
        assert_true(stream_gives_error(&s, what));
        b_free(&s);
    }
    b_free(&m);
    /* a TLS 1.2 flow without its ClientHello: the CKE first */
    bytes cke = {0}, s = {0};
    build_client_key_exchange(&cke, &mk, name_id("no-hello"), 0);
    put_records(&s, 22, cke.p, cke.n, 0);
    assert_true(stream_gives_error(&s, "CKE without ClientHello"));
    b_free(&cke);
    b_free(&s);
}

/* RFC 8446 4.2.11: pre_shared_key MUST be the last extension (the server aborts with
 * illegal_parameter otherwise). */
static void test_psk_parse__pre_shared_key_not_last_is_an_error(void **state)
{
    (void)state;
    flow f = tls13_flow(2);
    f.ch.psk_not_last = 1;
    bytes s = {0};
    assert_true(build_stream(&s, &f, NULL));
    assert_true(stream_gives_error(&s, "pre_shared_key before another extension"));
    b_free(&s);
}

/* ---- real clients ------------------------------------------------------------------------------ */

/* What `openssl s_client` (OpenSSL 3.0) sent, recorded on 127.0.0.1 (the TLS 1.2 ones through a
 * relay to `openssl s_server -nocert -psk`):
 *   s_client -tls1_3 -psk 1a2b3c4d5e6f -psk_identity openssl-client-13   (ClientHello only)
 *   s_client -tls1_2 -cipher PSK-AES128-CBC-SHA256 ... -psk_identity openssl-client-12
 *   s_client -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256 ... -psk_identity openssl-client-12
 * The TLS 1.2 streams go on after the CKE: change_cipher_spec, the encrypted Finished. */
static const uint8_t REAL_TLS13[] = {
    0x16, 0x03, 0x01, 0x01, 0x1c, 0x01, 0x00, 0x01, 0x18, 0x03, 0x03, 0x68, 0xe2, 0xef, 0x30, 0xe2,
    0x44, 0x2d, 0x91, 0xfe, 0xa8, 0xf4, 0xe1, 0x92, 0xa2, 0x06, 0x19, 0x7a, 0xab, 0x22, 0x84, 0xbb,
    0xd2, 0xcb, 0x55, 0xb8, 0x38, 0x51, 0x8c, 0x68, 0x85, 0xe4, 0xbf, 0x20, 0xde, 0xbb, 0x2e, 0xa2,
    0xbf, 0xab, 0x0e, 0x10, 0xd1, 0xf0, 0x00, 0x54, 0xa1, 0x80, 0x5b, 0xbc, 0xfd, 0xda, 0x2e, 0xd3,
    0x8c, 0xb5, 0x44, 0x70, 0x9e, 0x83, 0xb2, 0xc7, 0x73, 0xf7, 0xb8, 0x5c, 0x00, 0x08, 0x13, 0x02,
    0x13, 0x03, 0x13, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0xc7, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00,
    0x01, 0x02, 0x00, 0x0a, 0x00, 0x16, 0x00, 0x14, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19,
    0x00, 0x18, 0x01, 0x00, 0x01, 0x01, 0x01, 0x02, 0x01, 0x03, 0x01, 0x04, 0x00, 0x23, 0x00, 0x00,
    0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x1e, 0x00, 0x1c, 0x04, 0x03,
    0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04,
    0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x00, 0x2b, 0x00, 0x03, 0x02, 0x03,
    0x04, 0x00, 0x2d, 0x00, 0x02, 0x01, 0x01, 0x00, 0x33, 0x00, 0x26, 0x00, 0x24, 0x00, 0x1d, 0x00,
    0x20, 0x19, 0xcb, 0x42, 0xa0, 0x7a, 0xad, 0x1c, 0x9c, 0x61, 0x9c, 0xc4, 0x38, 0x96, 0xcd, 0x30,
    0xff, 0xd7, 0x11, 0xf2, 0x75, 0xa7, 0xf9, 0x42, 0x36, 0x45, 0x71, 0x4e, 0x97, 0x13, 0x0a, 0x1f,
    0x15, 0x00, 0x29, 0x00, 0x3c, 0x00, 0x17, 0x00, 0x11, 0x6f, 0x70, 0x65, 0x6e, 0x73, 0x73, 0x6c,
    0x2d, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x2d, 0x31, 0x33, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21,
    0x20, 0x65, 0xc5, 0x27, 0x07, 0x53, 0xf4, 0xe2, 0x92, 0x5e, 0xaa, 0x8e, 0x38, 0xad, 0x8f, 0x04,
    0x6c, 0xc0, 0xa2, 0xc0, 0x81, 0xa7, 0x01, 0xea, 0xc0, 0xce, 0xcc, 0x80, 0xcc, 0xb3, 0xb4, 0xbf,
    0x2b,
};
static const uint8_t REAL_TLS12_PSK[] = {
    0x16, 0x03, 0x01, 0x00, 0x6b, 0x01, 0x00, 0x00, 0x67, 0x03, 0x03, 0x6d, 0xc4, 0x10, 0x0a, 0x2b,
    0x6d, 0x97, 0xd2, 0x14, 0x17, 0x8f, 0x65, 0x97, 0x14, 0x98, 0x9e, 0x2e, 0xf6, 0xef, 0x70, 0x07,
    0x62, 0x86, 0x68, 0x6a, 0x40, 0xfb, 0x4a, 0xe1, 0xdf, 0x6a, 0x67, 0x00, 0x00, 0x04, 0x00, 0xae,
    0x00, 0xff, 0x01, 0x00, 0x00, 0x3a, 0x00, 0x23, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17,
    0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28, 0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07,
    0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01,
    0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01, 0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02,
    0x16, 0x03, 0x03, 0x00, 0x17, 0x10, 0x00, 0x00, 0x13, 0x00, 0x11, 0x6f, 0x70, 0x65, 0x6e, 0x73,
    0x73, 0x6c, 0x2d, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x2d, 0x31, 0x32, 0x14, 0x03, 0x03, 0x00,
    0x01, 0x01, 0x16, 0x03, 0x03, 0x00, 0x50, 0xa9, 0xc4, 0xd9, 0xcd, 0x53, 0xee, 0x50, 0x60, 0xc9,
    0x3c, 0xda, 0x35, 0xfb, 0x2c, 0xb5, 0x81, 0xe6, 0xc7, 0x2b, 0xd7, 0x7f, 0xf3, 0x9e, 0x62, 0x75,
    0x3e, 0xca, 0xdb, 0x8f, 0x2c, 0xcd, 0x8d, 0x65, 0x09, 0x0d, 0x52, 0xfb, 0x8f, 0xd2, 0xdc, 0x22,
    0x66, 0x7c, 0xaf, 0xbb, 0x14, 0x13, 0x5e, 0x51, 0x5f, 0x00, 0xe8, 0x39, 0x76, 0x8d, 0x93, 0x50,
    0xea, 0x4b, 0xe5, 0x64, 0x98, 0xcc, 0x6a, 0x9c, 0xf0, 0x2d, 0x21, 0xad, 0x1c, 0xcc, 0x6a, 0x3f,
    0x47, 0x43, 0x01, 0x47, 0xb9, 0x07, 0x55,
};
static const uint8_t REAL_TLS12_ECDHE_PSK[] = {
    0x16, 0x03, 0x01, 0x00, 0x83, 0x01, 0x00, 0x00, 0x7f, 0x03, 0x03, 0x68, 0x6a, 0xf6, 0x81, 0xe1,
    0x2a, 0x1f, 0xc7, 0x79, 0x54, 0x2f, 0xfe, 0x35, 0x1e, 0x62, 0x63, 0xc2, 0x7e, 0x75, 0x87, 0x72,
    0x74, 0xd7, 0xb3, 0x8a, 0x0b, 0xfa, 0x26, 0xdd, 0x57, 0xaa, 0xd3, 0x00, 0x00, 0x04, 0xc0, 0x37,
    0x00, 0xff, 0x01, 0x00, 0x00, 0x52, 0x00, 0x0b, 0x00, 0x04, 0x03, 0x00, 0x01, 0x02, 0x00, 0x0a,
    0x00, 0x0c, 0x00, 0x0a, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x1e, 0x00, 0x19, 0x00, 0x18, 0x00, 0x23,
    0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x17, 0x00, 0x00, 0x00, 0x0d, 0x00, 0x2a, 0x00, 0x28,
    0x04, 0x03, 0x05, 0x03, 0x06, 0x03, 0x08, 0x07, 0x08, 0x08, 0x08, 0x09, 0x08, 0x0a, 0x08, 0x0b,
    0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x03, 0x03, 0x03, 0x01,
    0x03, 0x02, 0x04, 0x02, 0x05, 0x02, 0x06, 0x02, 0x16, 0x03, 0x03, 0x00, 0x38, 0x10, 0x00, 0x00,
    0x34, 0x00, 0x11, 0x6f, 0x70, 0x65, 0x6e, 0x73, 0x73, 0x6c, 0x2d, 0x63, 0x6c, 0x69, 0x65, 0x6e,
    0x74, 0x2d, 0x31, 0x32, 0x20, 0xa9, 0x3c, 0x69, 0x2b, 0xde, 0x3f, 0x8f, 0x41, 0x82, 0x4d, 0x38,
    0x6a, 0x99, 0x3c, 0x39, 0xc1, 0x82, 0xe6, 0x2c, 0x21, 0x2c, 0x7c, 0xbe, 0xac, 0x0d, 0x20, 0xf3,
    0x27, 0xf8, 0xf0, 0xb7, 0x53, 0x14, 0x03, 0x03, 0x00, 0x01, 0x01, 0x16, 0x03, 0x03, 0x00, 0x50,
    0x6c, 0xcb, 0x27, 0x5e, 0x73, 0x4e, 0xa6, 0x4d, 0x72, 0x28, 0x45, 0xfc, 0xed, 0x26, 0x3a, 0x04,
    0x52, 0xfe, 0x71, 0xcb, 0xf6, 0x34, 0xa8, 0x67, 0xa4, 0x10, 0x7b, 0x58, 0xe5, 0x32, 0x32, 0x98,
    0xf6, 0x81, 0xcf, 0xeb, 0xdf, 0xc3, 0x8d, 0xae, 0x72, 0x6c, 0x35, 0x30, 0xd3, 0x2a, 0xf3, 0xbe,
    0x71, 0x54, 0xef, 0xd4, 0x39, 0x1b, 0x4b, 0x2d, 0x88, 0x80, 0x98, 0xb0, 0x85, 0xc6, 0xf8, 0x30,
    0x66, 0x69, 0x1b, 0x6e, 0xc9, 0xa1, 0x36, 0xae, 0x0b, 0x10, 0x87, 0xff, 0xcc, 0x35, 0x9e, 0xc5,
};

static void test_psk_parse__real_openssl_clients(void **state)
{
    (void)state;
    struct {
        const uint8_t *p;
        size_t n;
        const char *id;
        int tls13;
    } real[] = {
        {REAL_TLS13, sizeof REAL_TLS13, "openssl-client-13", 1},
        {REAL_TLS12_PSK, sizeof REAL_TLS12_PSK, "openssl-client-12", 0},
        {REAL_TLS12_ECDHE_PSK, sizeof REAL_TLS12_ECDHE_PSK, "openssl-client-12", 0},
    };
    for (size_t i = 0; i < sizeof real / sizeof real[0]; i++) {
        psk_id want = name_id(real[i].id);
        outcome o = run_split(real[i].p, real[i].n, NULL, 0, WHOLE, 0);
        assert_ids(&o, &want, 1);
        assert_int_equal(o.offers_tls13, real[i].tls13);
        assert_int_equal(o.from_cke, !real[i].tls13);
        outcome b = run_split(real[i].p, real[i].n, NULL, 0, BYTES, 0);
        assert_true(same_outcome(&o, &b));
        for (uint64_t seed = 1; seed <= 50; seed++) {
            outcome r = run_split(real[i].p, real[i].n, NULL, 0, RANDOM, seed);
            assert_true(same_outcome(&o, &r));
        }
    }
}

/* Seeds for tests/fuzz/corpus/psk_parse: TERN_PSK_WRITE_CORPUS=<dir> writes valid and
 * malformed streams there (with the fuzzer's one-byte prefix, 0: fed whole) instead of
 * running the tests. */
static void write_seed(const char *dir, const char *name, const bytes *s, uint8_t prefix)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputc(prefix, fp);
    fwrite(s->p, 1, s->n, fp);
    fclose(fp);
}

static void write_corpus(void **state)
{
    (void)state;
    const char *dir = getenv("TERN_PSK_WRITE_CORPUS");
    static const char *names[] = {"tls13_1id", "tls13_3ids", "tls13_8ids", "tls13_nopsk",
                                  "tls12_plain_cke", "tls12_ecdhe_cke"};
    for (int i = 0; i < N_VALID_FLOWS; i++) {
        flow f = valid_flow(i);
        bytes s = {0};
        assert_true(build_stream(&s, &f, NULL));
        char name[64];
        snprintf(name, sizeof name, "%s", names[i]);
        write_seed(dir, name, &s, 0x00); /* fed whole */
        b_free(&s);
        f.ch_frag = 7;
        f.cke_frag = 3;
        assert_true(build_stream(&s, &f, NULL));
        snprintf(name, sizeof name, "%s_frag", names[i]);
        write_seed(dir, name, &s, 0x00);
        b_free(&s);
        if (f.cke) {
            f.ccs_between = 1; /* a resumption: change_cipher_spec, no CKE */
            assert_true(build_stream(&s, &f, NULL));
            snprintf(name, sizeof name, "%s_ccs", names[i]);
            write_seed(dir, name, &s, 0x00);
            b_free(&s);
        }
    }
    /* split by the fuzzer's prefix: 3 chunk sizes (5, 1, 0 = an empty feed) */
    {
        flow f = valid_flow(1);
        bytes s = {0};
        assert_true(build_stream(&s, &f, NULL));
        bytes pre = {0};
        static const uint8_t sizes[] = {5, 1, 0};
        b_put(&pre, sizes, sizeof sizes);
        b_put(&pre, s.p, s.n);
        write_seed(dir, "tls13_3ids_chunks", &pre, 0x03);
        b_free(&pre);
        b_free(&s);
    }
    /* malformed */
    struct {
        const char *name;
        int flow;
        mutation mu;
    } bad[] = {
        {"bad_tls13_identity_len_plus1", 1, {MSG_CH, F_ID_LEN + 1, +1, 0}},
        {"bad_tls13_identities_len_minus1", 1, {MSG_CH, F_IDS_LEN, -1, 0}},
        {"bad_tls13_binders_len_plus1", 2, {MSG_CH, F_BINDERS_LEN, +1, 0}},
        {"bad_tls13_exts_len_minus1", 0, {MSG_CH, F_EXTS_LEN, -1, 0}},
        {"bad_tls13_sv_len_minus1", 3, {MSG_CH, F_SV_LEN, -1, 0}},
        {"bad_tls13_record_minus1", 1, {MSG_CH, F_NONE, 0, -1}},
        {"bad_tls12_cke_identity_plus1", 4, {MSG_CKE, F_CKE_ID_LEN, +1, 0}},
        {"bad_tls12_cke_hs_len_minus1", 4, {MSG_CKE, F_HS_LEN, -1, 0}},
        {"bad_tls12_ch_sid_plus1", 5, {MSG_CH, F_SID_LEN, +1, 0}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        flow f = valid_flow(bad[i].flow);
        bytes s = {0};
        assert_true(build_stream(&s, &f, &bad[i].mu));
        write_seed(dir, bad[i].name, &s, 0x00);
        b_free(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psk_parse__tls13_one_identity),
        cmocka_unit_test(test_psk_parse__tls13_several_identities_up_to_eight),
        cmocka_unit_test(test_psk_parse__tls13_identities_after_the_eighth_are_not_kept),
        cmocka_unit_test(test_psk_parse__tls13_identity_of_128_bytes_is_kept),
        cmocka_unit_test(test_psk_parse__tls13_tickets_are_skipped),
        cmocka_unit_test(test_psk_parse__tls13_without_pre_shared_key_is_no_psk),
        cmocka_unit_test(test_psk_parse__largest_record_and_handshake_message_are_accepted),
        cmocka_unit_test(test_psk_parse__tls12_plain_psk_identity_from_cke),
        cmocka_unit_test(test_psk_parse__tls12_ecdhe_psk_identity_from_cke),
        cmocka_unit_test(test_psk_parse__tls12_identity_of_255_bytes),
        cmocka_unit_test(test_psk_parse__tls12_client_hello_without_extensions),
        cmocka_unit_test(test_psk_parse__tls12_supported_versions_without_tls13),
        cmocka_unit_test(test_psk_parse__same_result_when_messages_span_records),
        cmocka_unit_test(test_psk_parse__change_cipher_spec_after_the_cke_changes_nothing),
        cmocka_unit_test(test_psk_parse__tls12_change_cipher_spec_before_the_cke_is_a_resumption),
        cmocka_unit_test(test_psk_parse__tls12_client_certificate_before_the_cke),
        cmocka_unit_test(test_psk_parse__change_cipher_spec_inside_a_fragmented_client_hello),
        cmocka_unit_test(test_psk_parse__messages_coalesced_in_one_record),
        cmocka_unit_test(test_psk_parse__result_is_given_again_after_more_bytes),
        cmocka_unit_test(test_psk_parse__nothing_fed_needs_more),
        cmocka_unit_test(test_psk_parse__length_fields_off_by_one_are_errors),
        cmocka_unit_test(test_psk_parse__undecidable_off_by_one_give_no_other_identities),
        cmocka_unit_test(test_psk_parse__handshake_length_one_long_completed_by_the_next_record),
        cmocka_unit_test(test_psk_parse__truncated_client_hello_is_an_error),
        cmocka_unit_test(test_psk_parse__truncated_client_key_exchange_is_an_error),
        cmocka_unit_test(test_psk_parse__cke_identity_longer_than_255_is_an_error),
        cmocka_unit_test(test_psk_parse__zero_length_identity_is_an_error),
        cmocka_unit_test(test_psk_parse__empty_cke_identity),
        cmocka_unit_test(test_psk_parse__record_length_over_the_limit_is_an_error),
        cmocka_unit_test(test_psk_parse__handshake_length_over_the_limit_is_an_error),
        cmocka_unit_test(test_psk_parse__wrong_first_record_type_is_an_error),
        cmocka_unit_test(test_psk_parse__first_message_not_client_hello_is_an_error),
        cmocka_unit_test(test_psk_parse__pre_shared_key_not_last_is_an_error),
        cmocka_unit_test(test_psk_parse__real_openssl_clients),
    };
    if (getenv("TERN_PSK_WRITE_CORPUS")) {
        /* TERN_PSK_WRITE_CORPUS=<dir>: write the fuzzer's seeds there instead */
        const struct CMUnitTest writer[] = {cmocka_unit_test(write_corpus)};
        return cmocka_run_group_tests(writer, NULL, NULL);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}

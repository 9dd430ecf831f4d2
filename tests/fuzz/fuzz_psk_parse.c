/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for ssl/psk_parse.h. Input layout:
 *   byte 0        low 3 bits: k, how many chunk-size bytes follow (0: the stream in one feed)
 *   bytes 1..k    chunk sizes, used in turn (0: an empty feed, then one byte)
 *   the rest      the client's byte stream
 * The stream is fed three ways - whole, in the chunks above, byte by byte - each from a fresh
 * heap copy freed right after the call (a parser that kept the caller's pointer shows under
 * ASan). Invariants: a valid result code; ERROR has a text; IDENTITIES has 1..MAX identities
 * of at most MAX_IDENTITY bytes (one, from_cke, for a ClientKeyExchange); NO_PSK has none; a
 * result, once given, is given again for every later feed with nothing changed; all three
 * ways give the same result. A violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "psk_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_psk_parse: %s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #c);                                                              \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

typedef struct outcome {
    int r;
    uint8_t count, offers_tls13, from_cke;
    tern__psk_identity ids[TERN__PSK_MAX_IDENTITIES];
} outcome;

static void snap(outcome *o, const tern__psk_parser *p, int r)
{
    memset(o, 0, sizeof *o);
    o->r = r;
    o->count = p->count;
    o->offers_tls13 = p->offers_tls13;
    o->from_cke = p->from_cke;
    for (unsigned i = 0; i < p->count && i < TERN__PSK_MAX_IDENTITIES; i++) {
        o->ids[i].len = p->identities[i].len;
        if (p->identities[i].len <= TERN__PSK_MAX_IDENTITY) {
            memcpy(o->ids[i].bytes, p->identities[i].bytes, p->identities[i].len);
        }
    }
}

static int same(const outcome *a, const outcome *b)
{
    if (a->r != b->r) {
        return 0;
    }
    if (a->r == TERN__PSK_NEED_MORE) {
        return 1;
    }
    return a->count == b->count && a->offers_tls13 == b->offers_tls13 &&
           a->from_cke == b->from_cke && memcmp(a->ids, b->ids, sizeof a->ids) == 0;
}

static void check(const tern__psk_parser *p, int r)
{
    CHECK(r == TERN__PSK_NEED_MORE || r == TERN__PSK_IDENTITIES || r == TERN__PSK_NO_PSK ||
          r == TERN__PSK_ERROR);
    CHECK(p->count <= TERN__PSK_MAX_IDENTITIES);
    for (unsigned i = 0; i < p->count; i++) {
        CHECK(p->identities[i].len <= TERN__PSK_MAX_IDENTITY);
    }
    if (r == TERN__PSK_ERROR) {
        CHECK(p->error != NULL && p->error[0] != '\0');
    }
    if (r == TERN__PSK_IDENTITIES) {
        CHECK(p->count >= 1);
        if (p->from_cke) {
            CHECK(p->count == 1);
        }
    }
    if (r == TERN__PSK_NO_PSK) {
        CHECK(p->count == 0);
    }
}

static int feed(tern__psk_parser *p, const uint8_t *d, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    if (n) {
        memcpy(c, d, n);
    }
    int r = tern__psk_parser_feed(p, n ? c : NULL, n);
    memset(c, 0xa5, n ? n : 1);
    free(c);
    return r;
}

/* Feeds @p s in chunks of sizes[i % k] (k == 0: whole; sizes == NULL: byte by byte). */
static outcome run(const uint8_t *s, size_t n, const uint8_t *sizes, size_t k, int bytewise)
{
    tern__psk_parser p;
    tern__psk_parser_init(&p);
    outcome first;
    int have = 0, r = TERN__PSK_NEED_MORE;
    size_t off = 0, i = 0;
    do {
        size_t len = n - off;
        if (bytewise) {
            len = len ? 1 : 0;
        } else if (k) {
            size_t want = sizes[i++ % k];
            if (want == 0) {
                r = feed(&p, s + off, 0);
                check(&p, r);
                if (have) {
                    CHECK(r == first.r);
                }
                want = 1;
            }
            len = want < len ? want : len;
        }
        r = feed(&p, s + off, len);
        check(&p, r);
        if (have) {
            outcome now;
            snap(&now, &p, r);
            CHECK(same(&first, &now)); /* sticky, nothing changed */
        } else if (r != TERN__PSK_NEED_MORE) {
            snap(&first, &p, r);
            have = 1;
        }
        off += len;
    } while (off < n);
    if (have) {
        /* fed again: the same result, nothing read */
        r = feed(&p, s, n);
        outcome now;
        snap(&now, &p, r);
        CHECK(same(&first, &now));
    }
    outcome o;
    snap(&o, &p, r);
    tern__psk_parser_free(&p);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    size_t k = data[0] & 7;
    if (size < 1 + k) {
        return 0;
    }
    const uint8_t *sizes = data + 1;
    const uint8_t *s = data + 1 + k;
    size_t n = size - 1 - k;

    outcome whole = run(s, n, NULL, 0, 0);
    outcome chunked = run(s, n, sizes, k, 0);
    outcome bytewise = run(s, n, NULL, 0, 1);
    CHECK(same(&whole, &chunked));
    CHECK(same(&whole, &bytewise));
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for tern-gateway's PROXY header reader (apps/tern-gateway/proxy.h,
 * gw_proxy_parse). Input layout:
 *   byte 0     bit 0: the version configured (0: version 1, 1: version 2)
 *   the rest   what the front sent (header, then the device's bytes)
 * The stream is parsed whole, then at every prefix length, each time from a fresh heap copy
 * of exactly that many bytes (a read past the end shows under ASan). Invariants: a result
 * of > 0 is at most the stream's length and the version's bound, comes with the version and
 * sane addresses, and every shorter prefix needs more while every longer one gives the same
 * header; a result < 0 has a reason, and from the first prefix that is refused on, every
 * longer one is refused (nothing is refused that more bytes could mend, and nothing
 * accepted is taken back); a result of 0 means every prefix needs more too. A violation
 * aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                \
    do {                                                                                        \
        if (!(c)) {                                                                             \
            fprintf(stderr, "fuzz_proxy_parse: %s:%d: invariant failed: %s\n", __FILE__,       \
                    __LINE__, #c);                                                              \
            abort();                                                                            \
        }                                                                                       \
    } while (0)

static int parse(const uint8_t *d, size_t n, unsigned version, struct gw_proxy_info *out)
{
    uint8_t *c = malloc(n ? n : 1);
    CHECK(c != NULL);
    if (n) {
        memcpy(c, d, n);
    }
    int r = gw_proxy_parse(n ? c : NULL, n, version, out);
    memset(c, 0xa5, n ? n : 1);
    free(c);
    return r;
}

static void check_one(int r, size_t n, unsigned version, const struct gw_proxy_info *o)
{
    if (r < 0) {
        CHECK(o->reason != NULL && o->reason[0] != '\0');
        return;
    }
    if (r == 0) {
        return;
    }
    CHECK((size_t)r <= n);
    CHECK((size_t)r <= (version == 1 ? GW_PROXY_V1_MAX : GW_PROXY_V2_IN_MAX));
    CHECK(o->version == (int)version);
    if (version == 1) {
        CHECK(r >= 15); /* "PROXY UNKNOWN\r\n" */
    } else {
        CHECK(r >= 16);
    }
    if (o->has_addresses) {
        CHECK(o->src.ss_family == AF_INET || o->src.ss_family == AF_INET6);
        CHECK(o->dst.ss_family == o->src.ss_family);
    }
}

static int same(const struct gw_proxy_info *a, const struct gw_proxy_info *b)
{
    return a->version == b->version && a->has_addresses == b->has_addresses &&
           (!a->has_addresses || (memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
                                  memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        return 0;
    }
    unsigned version = (data[0] & 1) ? 2 : 1;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    if (n > GW_PROXY_IN_MAX + 64) {
        n = GW_PROXY_IN_MAX + 64; /* nothing past the bound changes an answer */
    }

    struct gw_proxy_info whole;
    int r = parse(s, n, version, &whole);
    check_one(r, n, version, &whole);

    int refused_from = -1;
    for (size_t m = 0; m < n; m++) {
        struct gw_proxy_info o;
        int rm = parse(s, m, version, &o);
        check_one(rm, m, version, &o);
        if (r > 0) {
            if (m < (size_t)r) {
                CHECK(rm == 0);
            } else {
                CHECK(rm == r && same(&o, &whole));
            }
        } else if (r == 0) {
            CHECK(rm == 0);
        } else {
            CHECK(rm <= 0);
            if (rm < 0 && refused_from < 0) {
                refused_from = (int)m;
            }
            if (refused_from >= 0) {
                CHECK(rm < 0);
            }
        }
    }
    /* The other version, and none, on the same bytes: no crash, a valid answer. */
    struct gw_proxy_info o;
    int ro = parse(s, n, version == 1 ? 2 : 1, &o);
    check_one(ro, n, version == 1 ? 2 : 1, &o);
    CHECK(parse(s, n, 0, &o) < 0 && o.reason != NULL);
    return 0;
}

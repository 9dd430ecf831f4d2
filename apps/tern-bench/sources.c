/* SPDX-License-Identifier: MIT */
/*
 * --source-addrs (see sources.h). Ranges and blocks expand to one entry per address, so a
 * connection takes the next entry with no arithmetic on the hot path; 65,536 entries of 64
 * bytes are 4 MiB at most.
 */
#include "sources.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "common/opts.h"

static void add_source(struct bench_config *cfg, size_t *cap, const char *addr)
{
    if (cfg->nsources == BENCH_MAX_SOURCES) {
        app_opt_fail("--source-addrs: more than %d addresses", BENCH_MAX_SOURCES);
    }
    if (cfg->nsources == *cap) {
        *cap = *cap == 0 ? 32 : *cap * 2;
        char(*grown)[64] = realloc(cfg->sources, *cap * sizeof(*cfg->sources));
        if (grown == NULL) {
            app_opt_fail("--source-addrs: out of memory");
        }
        cfg->sources = grown;
    }
    /* a numeric address fits (INET6_ADDRSTRLEN is 46); checked rather than truncated */
    size_t len = strlen(addr);
    if (len >= sizeof(cfg->sources[0])) {
        app_opt_fail("--source-addrs: '%s' is too long for an address", addr);
    }
    memcpy(cfg->sources[cfg->nsources++], addr, len + 1);
}

static void add_range(struct bench_config *cfg, size_t *cap, uint32_t a, uint32_t b)
{
    for (uint64_t v = a; v <= b; v++) {
        struct in_addr x = {.s_addr = htonl((uint32_t)v)};
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &x, buf, sizeof(buf));
        add_source(cfg, cap, buf);
    }
}

/* A.B.C.D/LEN: every address of the block. */
static void parse_cidr(struct bench_config *cfg, size_t *cap, char *item, char *slash)
{
    struct in_addr base;
    uint64_t len = 0;

    *slash = '\0';
    if (inet_pton(AF_INET, item, &base) != 1 || app_opt_parse_uint(slash + 1, 0, 32, &len) < 0) {
        app_opt_fail("--source-addrs: '%s/%s' is not an IPv4 block (A.B.C.D/LEN, LEN 0..32)",
                     item, slash + 1);
    }
    if (32 - len > 16) {
        app_opt_fail("--source-addrs: the block %s/%s has more than %d addresses", item,
                     slash + 1, BENCH_MAX_SOURCES);
    }
    uint32_t mask = len == 0 ? 0 : UINT32_MAX << (32 - len);
    uint32_t a = ntohl(base.s_addr);
    if ((a & ~mask) != 0) {
        app_opt_fail("--source-addrs: %s/%s has bits set past the prefix (the block starts "
                     "at a multiple of its size)", item, slash + 1);
    }
    add_range(cfg, cap, a, a | ~mask);
}

void bench_parse_sources(const char *text, struct bench_config *cfg)
{
    size_t cap = 0;
    const char *p = text;

    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        char item[128];
        if (n == 0 || n >= sizeof(item)) {
            app_opt_fail("--source-addrs: cannot parse '%s' (expected addresses, IPv4 ranges "
                         "A-B or blocks A/LEN, comma-separated)", text);
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *dash = strchr(item, '-');
        char *slash = strchr(item, '/');
        if (slash != NULL && dash == NULL) {
            parse_cidr(cfg, &cap, item, slash);
        } else if (dash == NULL) {
            struct in6_addr a6;
            struct in_addr a4;
            if (inet_pton(AF_INET, item, &a4) != 1 && inet_pton(AF_INET6, item, &a6) != 1) {
                app_opt_fail("--source-addrs: '%s' is not a numeric IP address", item);
            }
            add_source(cfg, &cap, item);
        } else {
            *dash = '\0';
            struct in_addr lo, hi;
            if (inet_pton(AF_INET, item, &lo) != 1 || inet_pton(AF_INET, dash + 1, &hi) != 1) {
                app_opt_fail("--source-addrs: '%s-%s' is not an IPv4 range (A.B.C.D-A.B.C.D)",
                             item, dash + 1);
            }
            uint32_t a = ntohl(lo.s_addr), b = ntohl(hi.s_addr);
            if (a > b) {
                app_opt_fail("--source-addrs: the range %s-%s is backwards", item, dash + 1);
            }
            if (b - a >= BENCH_MAX_SOURCES) {
                app_opt_fail("--source-addrs: the range %s-%s has more than %d addresses", item,
                             dash + 1, BENCH_MAX_SOURCES);
            }
            add_range(cfg, &cap, a, b);
        }
        p += n;
        if (*p == ',') {
            p++;
        }
    }
    if (cfg->nsources == 0) {
        app_opt_fail("--source-addrs: no address in '%s'", text);
    }
}

/* SPDX-License-Identifier: MIT */
/* The PROXY protocol: the v2 header sent to backends, the v1 / v2 parser for fronts (proxy.h). */
#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t SIGNATURE[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum {
    CMD_LOCAL = 0x20, /* version 2, LOCAL */
    CMD_PROXY = 0x21, /* version 2, PROXY */
    FAM_UNSPEC = 0x00,
    FAM_TCP4 = 0x11,
    FAM_TCP6 = 0x21,
    PP2_TYPE_SSL = 0x20,
    PP2_SUBTYPE_SSL_VERSION = 0x21,
    PP2_SUBTYPE_SSL_CIPHER = 0x23,
    PP2_CLIENT_SSL = 0x01,
};

/* Appends a TLV; @return the new offset, or 0 when it does not fit. */
static size_t tlv(uint8_t *out, size_t off, size_t cap, uint8_t type, const void *v, size_t n)
{
    if (off == 0 || n > 0xFFFF || off + 3 + n > cap) {
        return 0;
    }
    out[off] = type;
    out[off + 1] = (uint8_t)(n >> 8);
    out[off + 2] = (uint8_t)n;
    if (n > 0) {
        memcpy(out + off + 3, v, n);
    }
    return off + 3 + n;
}

size_t gw_proxy_v2_header(uint8_t *out, size_t cap, const struct sockaddr *src,
                          const struct sockaddr *dst, const char *tls_version, const char *cipher,
                          const uint8_t *identity, size_t identity_len)
{
    size_t off = 16;

    if (cap < 16) {
        return 0;
    }
    memcpy(out, SIGNATURE, sizeof(SIGNATURE));
    if (src->sa_family == AF_INET && dst->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)src;
        const struct sockaddr_in *d4 = (const struct sockaddr_in *)dst;
        if (cap < off + 12) {
            return 0;
        }
        out[12] = CMD_PROXY;
        out[13] = FAM_TCP4;
        memcpy(out + off, &s4->sin_addr, 4);
        memcpy(out + off + 4, &d4->sin_addr, 4);
        memcpy(out + off + 8, &s4->sin_port, 2); /* network order already */
        memcpy(out + off + 10, &d4->sin_port, 2);
        off += 12;
    } else if (src->sa_family == AF_INET6 && dst->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)src;
        const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)dst;
        if (cap < off + 36) {
            return 0;
        }
        out[12] = CMD_PROXY;
        out[13] = FAM_TCP6;
        memcpy(out + off, &s6->sin6_addr, 16);
        memcpy(out + off + 16, &d6->sin6_addr, 16);
        memcpy(out + off + 32, &s6->sin6_port, 2);
        memcpy(out + off + 34, &d6->sin6_port, 2);
        off += 36;
    } else {
        out[12] = CMD_LOCAL;
        out[13] = FAM_UNSPEC;
    }

    /* PP2_TYPE_SSL: client(1) verify(4) then sub-TLVs */
    size_t ssl_at = off;
    if (off + 3 + 5 > cap) {
        return 0;
    }
    out[off + 3] = PP2_CLIENT_SSL;
    memset(out + off + 4, 0, 4); /* verify: 0 = the client presented a valid identity */
    size_t sub = off + 8;
    sub = tlv(out, sub, cap, PP2_SUBTYPE_SSL_VERSION, tls_version, strlen(tls_version));
    sub = tlv(out, sub, cap, PP2_SUBTYPE_SSL_CIPHER, cipher, strlen(cipher));
    if (sub == 0) {
        return 0;
    }
    size_t ssl_len = sub - ssl_at - 3;
    out[ssl_at] = PP2_TYPE_SSL;
    out[ssl_at + 1] = (uint8_t)(ssl_len >> 8);
    out[ssl_at + 2] = (uint8_t)ssl_len;
    off = sub;
    if (identity_len > 0) {
        off = tlv(out, off, cap, GW_PP2_TYPE_PSK_IDENTITY, identity, identity_len);
        if (off == 0) {
            return 0;
        }
    }
    size_t len = off - 16;
    if (len > 0xFFFF) {
        return 0;
    }
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    return off;
}

/* ---- receiving ------------------------------------------------------------------------------ */

static int malformed(struct gw_proxy_info *out, const char *why)
{
    out->reason = why;
    return -1;
}

/* Whether the first min(len, n) bytes of @p buf equal those of @p want. */
static bool prefix_matches(const uint8_t *buf, size_t len, const void *want, size_t n)
{
    size_t k = len < n ? len : n;
    return k == 0 || memcmp(buf, want, k) == 0;
}

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(uint8_t c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A decimal number of @p n digits (1..max_digits), no heading zero unless it is "0", at most
 * @p max. @return it, or -1. */
static long decimal(const uint8_t *p, size_t n, size_t max_digits, long max)
{
    if (n == 0 || n > max_digits || (n > 1 && p[0] == '0')) {
        return -1;
    }
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i])) {
            return -1;
        }
        v = v * 10 + (p[i] - '0');
    }
    return v <= max ? v : -1;
}

/* Spec 2.1: exactly 4 decimal numbers 0..255, no heading zeroes, one dot between each. */
static bool parse_v1_ipv4(const uint8_t *p, size_t n, struct in_addr *a)
{
    uint8_t b[4];
    size_t part = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.') {
            continue;
        }
        long v = part < 4 ? decimal(p + start, i - start, 3, 255) : -1;
        if (v < 0) {
            return false;
        }
        b[part++] = (uint8_t)v;
        start = i + 1;
    }
    if (part != 4) {
        return false;
    }
    memcpy(a, b, 4);
    return true;
}

/* Spec 2.1: hex groups separated by colons, at most one "::", 128 bits. inet_pton decides
 * the grammar once the characters are known to be hex digits and colons only (no dotted
 * IPv4 tail, no zone): a TCP6 address is at most 39 characters. */
static bool parse_v1_ipv6(const uint8_t *p, size_t n, struct in6_addr *a)
{
    char text[40];

    if (n < 2 || n > 39) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_hex(p[i]) && p[i] != ':') {
            return false;
        }
    }
    memcpy(text, p, n);
    text[n] = '\0';
    return inet_pton(AF_INET6, text, a) == 1;
}

static void set_v4(struct sockaddr_storage *ss, const void *addr, uint16_t port_be)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof(*ss));
    sin->sin_family = AF_INET;
    memcpy(&sin->sin_addr, addr, 4);
    sin->sin_port = port_be;
}

static void set_v6(struct sockaddr_storage *ss, const void *addr, uint16_t port_be)
{
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof(*ss));
    sin6->sin6_family = AF_INET6;
    memcpy(&sin6->sin6_addr, addr, 16);
    sin6->sin6_port = port_be;
}

static const char V1_PREFIX[] = "PROXY ";

/* The fields of a complete TCP4 / TCP6 line: @p p .. @p p + @p n is what follows "PROXY TCPx "
 * up to (not including) the CRLF: "src dst sport dport". */
static int parse_v1_fields(const uint8_t *p, size_t n, bool v6, struct gw_proxy_info *out)
{
    const uint8_t *f[4];
    size_t flen[4], k = 0, start = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != ' ') {
            continue;
        }
        if (k == 4) {
            return malformed(out, "v1: more than four fields after the protocol");
        }
        if (i == start) {
            return malformed(out, "v1: an empty field (two spaces, or a space before CRLF)");
        }
        f[k] = p + start;
        flen[k++] = i - start;
        start = i + 1;
    }
    if (k != 4) {
        return malformed(out, "v1: fewer than four fields after the protocol");
    }
    long sport = decimal(f[2], flen[2], 5, 65535);
    long dport = decimal(f[3], flen[3], 5, 65535);
    if (sport < 0 || dport < 0) {
        return malformed(out, "v1: a port is not a number 0..65535 without heading zeroes");
    }
    if (v6) {
        struct in6_addr s6, d6;
        if (!parse_v1_ipv6(f[0], flen[0], &s6) || !parse_v1_ipv6(f[1], flen[1], &d6)) {
            return malformed(out, "v1: TCP6 with an address that is not IPv6");
        }
        set_v6(&out->src, &s6, htons((uint16_t)sport));
        set_v6(&out->dst, &d6, htons((uint16_t)dport));
    } else {
        struct in_addr s4, d4;
        if (!parse_v1_ipv4(f[0], flen[0], &s4) || !parse_v1_ipv4(f[1], flen[1], &d4)) {
            return malformed(out, "v1: TCP4 with an address that is not dotted-decimal IPv4");
        }
        set_v4(&out->src, &s4, htons((uint16_t)sport));
        set_v4(&out->dst, &d4, htons((uint16_t)dport));
    }
    out->has_addresses = true;
    return 0;
}

static int parse_v1(const uint8_t *buf, size_t len, struct gw_proxy_info *out)
{
    static const char *const protos[] = {"TCP4 ", "TCP6 ", "UNKNOWN"};
    const size_t pre = sizeof(V1_PREFIX) - 1;

    if (!prefix_matches(buf, len, V1_PREFIX, pre)) {
        return malformed(out, "v1: does not start with \"PROXY \"");
    }
    /* The line ends at the first CRLF; a CR or LF alone is never an end (spec 2.1). */
    size_t scan = len < GW_PROXY_V1_MAX ? len : GW_PROXY_V1_MAX, end = 0;
    for (size_t i = 0; i < scan && end == 0; i++) {
        if (buf[i] == '\n') {
            return malformed(out, "v1: LF without CR");
        }
        if (buf[i] == '\r' && i + 1 < scan) {
            if (buf[i + 1] != '\n') {
                return malformed(out, "v1: CR without LF");
            }
            end = i + 2;
        }
    }
    /* Which protocol word, as soon as its bytes are there. */
    const uint8_t *w = len > pre ? buf + pre : NULL; /* NULL: nothing yet (buf may be NULL) */
    size_t wlen = len > pre ? len - pre : 0;
    int proto = -1;
    for (int i = 0; i < 3; i++) {
        if (prefix_matches(w, wlen, protos[i], strlen(protos[i]))) {
            proto = i;
            break;
        }
    }
    if (proto < 0) {
        return malformed(out, "v1: the protocol is not TCP4, TCP6 or UNKNOWN");
    }
    size_t head = pre + strlen(protos[proto]); /* "PROXY TCP4 " / "PROXY UNKNOWN" */
    if (proto < 2) {
        /* Addresses and ports: decimal digits, hex digits, dots, colons, spaces. */
        size_t stop = end > 0 ? end - 2 : scan;
        for (size_t i = head; i < stop; i++) {
            if (!is_hex(buf[i]) && buf[i] != '.' && buf[i] != ':' && buf[i] != ' ' &&
                !(buf[i] == '\r' && i + 1 == scan)) {
                return malformed(out, "v1: a character that no address or port has");
            }
        }
    } else if (len > head && buf[head] != ' ' && buf[head] != '\r') {
        return malformed(out, "v1: UNKNOWN followed by something else than a space or CRLF");
    }
    if (end == 0) {
        if (len >= GW_PROXY_V1_MAX) {
            return malformed(out, "v1: no CRLF within 107 bytes");
        }
        return 0;
    }
    out->version = 1;
    if (proto == 2) {
        /* UNKNOWN: the rest of the line is ignored; the real connection's addresses stand. */
        return (int)end;
    }
    int rc = parse_v1_fields(buf + head, end - 2 - head, proto == 1, out);
    return rc < 0 ? rc : (int)end;
}

enum {
    V2_FIXED = 16,
    V2_VERSION = 0x20,
    V2_CMD_LOCAL = 0x0,
    V2_CMD_PROXY = 0x1,
    V2_AF_UNSPEC = 0x0,
    V2_AF_INET = 0x1,
    V2_AF_INET6 = 0x2,
    V2_AF_UNIX = 0x3,
    V2_PROTO_STREAM = 0x1,
    V2_PROTO_DGRAM = 0x2,
};

static int parse_v2(const uint8_t *buf, size_t len, struct gw_proxy_info *out)
{
    if (!prefix_matches(buf, len, SIGNATURE, sizeof(SIGNATURE))) {
        return malformed(out, "v2: no signature");
    }
    if (len > 12 && (buf[12] & 0xF0) != V2_VERSION) {
        return malformed(out, "v2: the version is not 2");
    }
    unsigned cmd = len > 12 ? buf[12] & 0x0F : 0;
    if (len > 12 && cmd != V2_CMD_LOCAL && cmd != V2_CMD_PROXY) {
        return malformed(out, "v2: the command is neither LOCAL nor PROXY");
    }
    unsigned fam = len > 13 ? buf[13] >> 4 : 0, proto = len > 13 ? buf[13] & 0x0F : 0;
    /* A LOCAL header's family is ignored (spec 2.2); a PROXY one's must be known. */
    if (len > 13 && cmd == V2_CMD_PROXY && (fam > V2_AF_UNIX || proto > V2_PROTO_DGRAM)) {
        return malformed(out, "v2: an unknown address family or transport");
    }
    if (len < V2_FIXED) {
        return 0;
    }
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (V2_FIXED + body > GW_PROXY_V2_IN_MAX) {
        return malformed(out, "v2: longer than the gateway accepts (2048 bytes)");
    }
    size_t need = 0; /* the address block's length, by family (no transport: ignored) */
    if (cmd == V2_CMD_PROXY && proto != 0) {
        need = fam == V2_AF_INET ? 12 : fam == V2_AF_INET6 ? 36 : fam == V2_AF_UNIX ? 216 : 0;
    }
    if (body < need) {
        return malformed(out, "v2: the length is shorter than the family's addresses");
    }
    if (len < V2_FIXED + body) {
        return 0;
    }
    out->version = 2;
    /* TCP over IPv4 / IPv6 is relayed; UNSPEC, UDP and AF_UNIX fall back to the real
     * connection's addresses (spec 2.2: only UNSPEC must be implemented, the rest may fall
     * back to it), as LOCAL does. TLVs after the addresses are skipped. */
    const uint8_t *a = buf + V2_FIXED;
    if (cmd == V2_CMD_PROXY && proto == V2_PROTO_STREAM && fam == V2_AF_INET) {
        uint16_t sp, dp;
        memcpy(&sp, a + 8, 2);
        memcpy(&dp, a + 10, 2);
        set_v4(&out->src, a, sp);
        set_v4(&out->dst, a + 4, dp);
        out->has_addresses = true;
    } else if (cmd == V2_CMD_PROXY && proto == V2_PROTO_STREAM && fam == V2_AF_INET6) {
        uint16_t sp, dp;
        memcpy(&sp, a + 32, 2);
        memcpy(&dp, a + 34, 2);
        set_v6(&out->src, a, sp);
        set_v6(&out->dst, a + 16, dp);
        out->has_addresses = true;
    }
    return (int)(V2_FIXED + body);
}

int gw_proxy_parse(const uint8_t *buf, size_t len, unsigned version, struct gw_proxy_info *out)
{
    memset(out, 0, sizeof(*out));
    if (version == 1) {
        return parse_v1(buf, len, out);
    }
    if (version == 2) {
        return parse_v2(buf, len, out);
    }
    return malformed(out, "no PROXY header is expected");
}

void gw_proxy_format_address(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (len == 0) {
        return;
    }
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

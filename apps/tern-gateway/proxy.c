/* SPDX-License-Identifier: MIT */
/* The PROXY protocol v2 header (see proxy.h). */
#include "proxy.h"

#include <netinet/in.h>
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

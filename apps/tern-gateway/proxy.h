/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol (HAProxy's proxy-protocol.txt), both ways.
 *
 * Received from a front (a load balancer that relays the device's TCP connection):
 * `gw_proxy_parse` reads the version 1 (text) or version 2 (binary) header the front puts
 * before the device's first byte. It is I/O-free and incremental in the simplest way: it is
 * given everything received so far and says "need more", "malformed" or "this many bytes";
 * a header split anywhere parses the same as a whole one.
 *
 * Sent to the backend: version 2, before the device's bytes: the device's address and port
 * as source, the gateway's listening address as destination, and TLVs:
 *   PP2_TYPE_SSL (0x20): client flags PP2_CLIENT_SSL, verify 0, sub-TLVs
 *       PP2_SUBTYPE_SSL_VERSION (0x21) "TLSv1.3" / "TLSv1.2" and
 *       PP2_SUBTYPE_SSL_CIPHER (0x23) the suite's name;
 *   0xE0 (the first custom type, PP2_TYPE_MIN_CUSTOM): the PSK identity, as the device
 *       sent it (absent for a certificate handshake).
 */
#ifndef TERN_GATEWAY_PROXY_H
#define TERN_GATEWAY_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_PP2_TYPE_PSK_IDENTITY 0xE0
/* 16 fixed + 36 addresses (IPv6) + SSL TLV (3 + 5 + 2 sub-TLVs) + identity TLV: ample */
#define GW_PROXY_V2_MAX 512

/**
 * Writes the header for a connection from @p src to @p dst (both AF_INET or both AF_INET6;
 * anything else is sent as family UNSPEC, LOCAL command: the backend then uses the real
 * connection's addresses). @return its length, or 0 if @p cap is too small.
 */
size_t gw_proxy_v2_header(uint8_t *out, size_t cap, const struct sockaddr *src,
                          const struct sockaddr *dst, const char *tls_version, const char *cipher,
                          const uint8_t *identity, size_t identity_len);

/* ---- receiving ------------------------------------------------------------------------------ */

/* proxy-protocol.txt 2.1: a version 1 line is at most 107 bytes, CRLF included. */
#define GW_PROXY_V1_MAX 107
/* The most a version 2 header may take here, the 16 fixed bytes included. The format allows
 * 16 + 65535; a front sends its addresses (216 bytes at most, AF_UNIX) and a few TLVs (SSL
 * details, a unique id of up to 128 bytes, an authority): 2 KiB leaves room for all of them
 * and bounds what a connection may make the gateway hold before TLS starts. */
#define GW_PROXY_V2_IN_MAX 2048
/* The most a header of either version may take: what a caller reads ahead, at most. */
#define GW_PROXY_IN_MAX GW_PROXY_V2_IN_MAX

/** What a received PROXY header says. */
struct gw_proxy_info {
    int version;                 /* 1 or 2 */
    /* Whether src and dst hold the connection's original endpoints (TCP over IPv4 or IPv6,
     * command PROXY). false: version 1 UNKNOWN, version 2 LOCAL, or a family / transport the
     * gateway does not relay (UNSPEC, AF_UNIX, UDP): the spec says to keep the real
     * connection's addresses then. */
    bool has_addresses;
    struct sockaddr_storage src; /* AF_INET or AF_INET6, port set; when has_addresses */
    struct sockaddr_storage dst;
    const char *reason;          /* when the header is malformed: why (a static string) */
};

/**
 * Parses the PROXY header at the start of @p buf (the @p len bytes received so far) in
 * version @p version: a receiver is configured for one version and never guesses (spec, 2).
 * Strict: exactly one space between fields, IPv4 as four decimal numbers without heading
 * zeroes, IPv6 as hex groups (no dotted tail: TCP6 lines are at most 39 characters an address),
 * ports 0..65535 without heading zeroes, CRLF (neither CR nor LF alone), version 2 with
 * version nibble 2, command LOCAL or PROXY, a known family and transport, an address block
 * as long as its family needs, at most GW_PROXY_V2_IN_MAX bytes in all. Version 2 TLVs are
 * skipped unread (spec, 2.2: the receiver may ignore them). What is wrong is found as soon
 * as the bytes that show it are there: a TLS ClientHello is refused at its first byte.
 * @param version  1 or 2 (settings' GW_PROXY_IN_V1 / _V2; anything else: malformed). A number
 *                 rather than forward.h's enum so that this file stands alone (fuzz target).
 * @param out   filled when > 0 is returned; out->reason set when < 0 is returned
 * @return the header's length (> 0: the bytes to consume; the rest is the device's);
 *         0: a valid prefix so far, more bytes needed; < 0: malformed (out->reason).
 *         Given more bytes of the same stream, the answer never goes from > 0 or < 0 to
 *         anything else. @thread any (no state)
 */
int gw_proxy_parse(const uint8_t *buf, size_t len, unsigned version, struct gw_proxy_info *out);

/** Writes @p ss (AF_INET: "ip:port", AF_INET6: "[ip]:port", else "?") to @p buf, cut to
 * @p len - 1 characters. @thread any */
void gw_proxy_format_address(const struct sockaddr_storage *ss, char *buf, size_t len);

#endif

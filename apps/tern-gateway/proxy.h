/* SPDX-License-Identifier: MIT */
/*
 * The PROXY protocol, version 2 (HAProxy's proxy-protocol.txt), as tern-gateway sends it to
 * the backend before the device's bytes: the device's address and port as source, the
 * gateway's listening address as destination, and TLVs:
 *   PP2_TYPE_SSL (0x20): client flags PP2_CLIENT_SSL, verify 0, sub-TLVs
 *       PP2_SUBTYPE_SSL_VERSION (0x21) "TLSv1.3" / "TLSv1.2" and
 *       PP2_SUBTYPE_SSL_CIPHER (0x23) the suite's name;
 *   0xE0 (the first custom type, PP2_TYPE_MIN_CUSTOM): the PSK identity, as the device
 *       sent it (absent for a certificate handshake).
 */
#ifndef TERN_GATEWAY_PROXY_H
#define TERN_GATEWAY_PROXY_H

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

#endif

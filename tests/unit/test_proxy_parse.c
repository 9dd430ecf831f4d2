/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's PROXY header reader (apps/tern-gateway/proxy.c, gw_proxy_parse): version 1
 * lines and version 2 headers for IPv4, IPv6, UNKNOWN / LOCAL / UNSPEC, with TLVs and with
 * the device's bytes behind them. Every valid header is also checked at every prefix (each
 * says "need more", from a heap copy of exactly that many bytes, so a read past the end
 * shows under ASan) and with trailing bytes (the length stays the header's). Malformed
 * headers are refused with a reason, as soon as the bytes that show it are there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

/* Parses @p n bytes of @p p from a heap copy of exactly n bytes. */
static int parse(const void *p, size_t n, unsigned version, struct gw_proxy_info *out)
{
    uint8_t *c = malloc(n ? n : 1);
    assert_non_null(c);
    if (n > 0) {
        memcpy(c, p, n);
    }
    int r = gw_proxy_parse(c, n, version, out);
    free(c);
    return r;
}

/* A whole valid header @p h (@p n bytes): each prefix needs more, the whole is n bytes long,
 * and so it is with TLS bytes behind it. @return the parse of the whole. */
static struct gw_proxy_info check_valid(const void *h, size_t n, unsigned version)
{
    struct gw_proxy_info info;
    for (size_t m = 0; m < n; m++) {
        int r = parse(h, m, version, &info);
        if (r != 0) {
            print_error("prefix of %zu of %zu bytes: %d (%s)\n", m, n, r,
                        info.reason ? info.reason : "-");
        }
        assert_int_equal(r, 0);
    }
    uint8_t more[GW_PROXY_IN_MAX + 64];
    assert_true(n + 6 <= sizeof(more));
    memcpy(more, h, n);
    memcpy(more + n, "\x16\x03\x01\x02\x00\x01", 6); /* a ClientHello's record header */
    struct gw_proxy_info with_tail;
    assert_int_equal(parse(more, n + 6, version, &with_tail), (int)n);
    int r = parse(h, n, version, &info);
    if (r < 0) {
        print_error("refused: %s\n", info.reason);
    }
    assert_int_equal(r, (int)n);
    assert_int_equal(info.version, (int)version);
    assert_int_equal(with_tail.has_addresses, info.has_addresses);
    assert_memory_equal(&with_tail.src, &info.src, sizeof(info.src));
    return info;
}

/* @p h is refused (whole); @return the reason. */
static const char *check_refused(const void *h, size_t n, unsigned version)
{
    struct gw_proxy_info info;
    int r = parse(h, n, version, &info);
    assert_true(r < 0);
    assert_non_null(info.reason);
    assert_true(info.reason[0] != '\0');
    return info.reason;
}

static void check_refused_v1(const char *line)
{
    check_refused(line, strlen(line), 1);
}

static void assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
    struct in_addr want;
    assert_int_equal(ss->ss_family, AF_INET);
    assert_int_equal(inet_pton(AF_INET, ip, &want), 1);
    assert_memory_equal(&sin->sin_addr, &want, 4);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
    struct in6_addr want;
    assert_int_equal(ss->ss_family, AF_INET6);
    assert_int_equal(inet_pton(AF_INET6, ip, &want), 1);
    assert_memory_equal(&sin6->sin6_addr, &want, 16);
    assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* ---- version 1 ------------------------------------------------------------------------------ */

static void test_proxy_v1__tcp4(void **state)
{
    const char *h = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    struct gw_proxy_info info = check_valid(h, strlen(h), 1);
    assert_true(info.has_addresses);
    assert_v4(&info.src, "192.168.0.1", 56324);
    assert_v4(&info.dst, "192.168.0.11", 443);

    h = "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
    info = check_valid(h, strlen(h), 1);
    assert_v4(&info.src, "0.0.0.0", 0);
    assert_v4(&info.dst, "255.255.255.255", 65535);
}

static void test_proxy_v1__tcp6(void **state)
{
    const char *h = "PROXY TCP6 2001:db8::1 ::1 65535 8883\r\n";
    struct gw_proxy_info info = check_valid(h, strlen(h), 1);
    assert_true(info.has_addresses);
    assert_v6(&info.src, "2001:db8::1", 65535);
    assert_v6(&info.dst, "::1", 8883);

    /* The longest line the spec allows for TCP6: 104 bytes. */
    h = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n";
    assert_int_equal(strlen(h), 104);
    info = check_valid(h, strlen(h), 1);
    assert_v6(&info.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_proxy_v1__unknown_keeps_the_real_addresses(void **state)
{
    const char *h = "PROXY UNKNOWN\r\n";
    struct gw_proxy_info info = check_valid(h, strlen(h), 1);
    assert_false(info.has_addresses);

    /* Anything before the CRLF is ignored; the worst case is 107 bytes. */
    h = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(h), GW_PROXY_V1_MAX);
    info = check_valid(h, strlen(h), 1);
    assert_false(info.has_addresses);
}

static void test_proxy_v1__garbage_is_refused_at_once(void **state)
{
    struct gw_proxy_info info;
    /* A TLS ClientHello: refused at its first byte. */
    assert_true(parse("\x16", 1, 1, &info) < 0);
    assert_true(parse("PROXZ", 5, 1, &info) < 0);
    assert_true(parse("proxy ", 6, 1, &info) < 0);
    assert_true(parse("PROXY  ", 7, 1, &info) < 0);
    assert_true(parse("PROXY TCP5", 10, 1, &info) < 0);
    assert_true(parse("PROXY TCP4 1.2.3.x", 18, 1, &info) < 0);
    assert_true(parse("PROXY UNKNOWNX", 14, 1, &info) < 0);
    /* A version 2 header where version 1 is configured, and the other way round. */
    uint8_t sig[] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    assert_true(parse(sig, sizeof(sig), 1, &info) < 0);
    assert_true(parse("PROXY ", 6, 2, &info) < 0);
    /* Neither version configured. */
    assert_true(parse("PROXY UNKNOWN\r\n", 15, 0, &info) < 0);
    assert_non_null(info.reason);
}

static void test_proxy_v1__line_endings(void **state)
{
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX");
    check_refused_v1("PROXY UNKNOWN\n");
    check_refused_v1("PROXY UNKNOWN \n\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n");
    check_refused_v1("PROXY TCP4 \r\n");
    check_refused_v1("PROXY TCP4\r\n");
}

static void test_proxy_v1__overlong_line(void **state)
{
    char h[GW_PROXY_V1_MAX + 2];
    struct gw_proxy_info info;

    /* 107 bytes without a CRLF: refused; 106 of them: could still end. */
    memset(h, 'f', sizeof(h));
    memcpy(h, "PROXY UNKNOWN ", 14);
    assert_int_equal(parse(h, GW_PROXY_V1_MAX - 1, 1, &info), 0);
    assert_true(parse(h, GW_PROXY_V1_MAX, 1, &info) < 0);
    /* a CR as the 107th byte: its LF would be the 108th */
    h[GW_PROXY_V1_MAX - 1] = '\r';
    h[GW_PROXY_V1_MAX] = '\n';
    assert_int_equal(parse(h, GW_PROXY_V1_MAX - 1, 1, &info), 0);
    assert_true(parse(h, GW_PROXY_V1_MAX, 1, &info) < 0);
    assert_true(parse(h, GW_PROXY_V1_MAX + 1, 1, &info) < 0);
    /* TCP4 with long runs of digits: the fields fail, or the length does */
    char line[160];
    snprintf(line, sizeof(line), "PROXY TCP4 1.2.3.4 5.6.7.8 %0100d 2\r\n", 1);
    check_refused_v1(line);
}

static void test_proxy_v1__bad_addresses(void **state)
{
    check_refused_v1("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n");
    check_refused_v1("PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"); /* heading zero: octal? */
    check_refused_v1("PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n");
    check_refused_v1("PROXY TCP4 ::1 5.6.7.8 1 2\r\n");        /* family mismatch */
    check_refused_v1("PROXY TCP6 1.2.3.4 ::1 1 2\r\n");
    check_refused_v1("PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n"); /* no dotted tail */
    check_refused_v1("PROXY TCP6 1:::2 ::1 1 2\r\n");
    check_refused_v1("PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n");
    check_refused_v1("PROXY TCP6 12345::1 ::1 1 2\r\n");
    check_refused_v1("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n");
    check_refused_v1("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n");   /* two spaces */
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n");      /* a field missing */
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n");  /* one too many */
}

static void test_proxy_v1__bad_ports(void **state)
{
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 0443 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 123456 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1a 2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 1 .2\r\n");
    check_refused_v1("PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n");
}

/* ---- version 2 ------------------------------------------------------------------------------ */

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A version 2 header: signature, @p ver_cmd, @p fam, then @p body of @p n bytes. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const void *body, size_t n)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    if (n > 0) {
        memcpy(out + 16, body, n);
    }
    return 16 + n;
}

static void test_proxy_v2__tcp4(void **state)
{
    uint8_t body[12] = {10, 1, 2, 3, 127, 0, 0, 1, 0xC3, 0x50, 0x22, 0xB3};
    uint8_t h[64];
    size_t n = v2(h, 0x21, 0x11, body, sizeof(body));
    struct gw_proxy_info info = check_valid(h, n, 2);
    assert_true(info.has_addresses);
    assert_v4(&info.src, "10.1.2.3", 50000);
    assert_v4(&info.dst, "127.0.0.1", 8883);
}

static void test_proxy_v2__tcp6(void **state)
{
    uint8_t body[36] = {0};
    struct in6_addr s6, d6;
    inet_pton(AF_INET6, "2001:db8::7", &s6);
    inet_pton(AF_INET6, "::1", &d6);
    memcpy(body, &s6, 16);
    memcpy(body + 16, &d6, 16);
    body[32] = 0x01; /* 443 */
    body[33] = 0xBB;
    body[34] = 0x00;
    body[35] = 0x01;
    uint8_t h[64];
    size_t n = v2(h, 0x21, 0x21, body, sizeof(body));
    struct gw_proxy_info info = check_valid(h, n, 2);
    assert_true(info.has_addresses);
    assert_v6(&info.src, "2001:db8::7", 443);
    assert_v6(&info.dst, "::1", 1);
    char text[64];
    gw_proxy_format_address(&info.src, text, sizeof(text));
    assert_string_equal(text, "[2001:db8::7]:443");
    struct sockaddr_storage none = {.ss_family = AF_UNIX};
    gw_proxy_format_address(&none, text, sizeof(text));
    assert_string_equal(text, "?");
}

static void test_proxy_v2__tlvs_are_skipped(void **state)
{
    /* TCP4 + an SSL TLV + a NOOP + an authority, as a front may send. */
    uint8_t body[12 + 64] = {192, 0, 2, 9, 192, 0, 2, 10, 0x30, 0x39, 0x01, 0xBB};
    size_t n = 12;
    const uint8_t ssl[] = {0x20, 0x00, 0x0F, 0x01, 0, 0, 0, 0, 0x21, 0x00, 0x07,
                           'T',  'L',  'S',  'v',  '1', '.', '3'};
    memcpy(body + n, ssl, sizeof(ssl));
    n += sizeof(ssl);
    const uint8_t noop[] = {0x04, 0x00, 0x02, 0, 0};
    memcpy(body + n, noop, sizeof(noop));
    n += sizeof(noop);
    const uint8_t auth[] = {0x02, 0x00, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l', 'e', '.', 'n', 'e',
                            't'};
    memcpy(body + n, auth, sizeof(auth));
    n += sizeof(auth);
    uint8_t h[128];
    size_t hn = v2(h, 0x21, 0x11, body, n);
    struct gw_proxy_info info = check_valid(h, hn, 2);
    assert_v4(&info.src, "192.0.2.9", 12345);

    /* The header tern-gateway sends its backends reads back the same. */
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(40000)};
    struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(8883)};
    inet_pton(AF_INET, "198.51.100.4", &s.sin_addr);
    inet_pton(AF_INET, "198.51.100.5", &d.sin_addr);
    uint8_t out[GW_PROXY_V2_MAX];
    size_t on = gw_proxy_v2_header(out, sizeof(out), (struct sockaddr *)&s, (struct sockaddr *)&d,
                                   "TLSv1.3", "TLS_AES_128_GCM_SHA256", (const uint8_t *)"dev-1",
                                   5);
    assert_true(on > 0);
    info = check_valid(out, on, 2);
    assert_v4(&info.src, "198.51.100.4", 40000);
    assert_v4(&info.dst, "198.51.100.5", 8883);
    char text[64];
    gw_proxy_format_address(&info.src, text, sizeof(text));
    assert_string_equal(text, "198.51.100.4:40000");
}

static void test_proxy_v2__local_and_unspec_keep_the_real_addresses(void **state)
{
    uint8_t h[300];
    uint8_t body[216] = {1, 2, 3};

    /* LOCAL: the family and any address block are ignored. */
    size_t n = v2(h, 0x20, 0x00, NULL, 0);
    assert_false(check_valid(h, n, 2).has_addresses);
    n = v2(h, 0x20, 0x11, body, 12);
    assert_false(check_valid(h, n, 2).has_addresses);
    n = v2(h, 0x20, 0xFF, body, 3);
    assert_false(check_valid(h, n, 2).has_addresses);
    /* PROXY with UNSPEC, UDP, AF_UNIX: accepted, nothing relayed. */
    n = v2(h, 0x21, 0x00, body, 5);
    assert_false(check_valid(h, n, 2).has_addresses);
    n = v2(h, 0x21, 0x12, body, 12);
    assert_false(check_valid(h, n, 2).has_addresses);
    n = v2(h, 0x21, 0x31, body, 216);
    assert_false(check_valid(h, n, 2).has_addresses);
}

static void test_proxy_v2__malformed(void **state)
{
    uint8_t h[300];
    uint8_t body[216] = {0};
    size_t n;

    /* the signature, byte by byte: any wrong byte is refused with no more bytes needed */
    for (size_t i = 0; i < 12; i++) {
        memcpy(h, SIG, 12);
        h[i] ^= 0x40;
        check_refused(h, i + 1, 2);
    }
    n = v2(h, 0x11, 0x11, body, 12); /* version 1 in the binary form */
    check_refused(h, 13, 2);
    n = v2(h, 0x31, 0x11, body, 12);
    check_refused(h, n, 2);
    n = v2(h, 0x22, 0x11, body, 12); /* command 2 */
    check_refused(h, 13, 2);
    n = v2(h, 0x21, 0x41, body, 12); /* family 4 */
    check_refused(h, 14, 2);
    n = v2(h, 0x21, 0x13, body, 12); /* transport 3 */
    check_refused(h, 14, 2);
    /* an address block shorter than the family's */
    n = v2(h, 0x21, 0x11, body, 11);
    check_refused(h, 16, 2);
    n = v2(h, 0x21, 0x21, body, 35);
    check_refused(h, n, 2);
    n = v2(h, 0x21, 0x31, body, 215);
    check_refused(h, n, 2);
    (void)n;
}

static void test_proxy_v2__length_over_the_bound(void **state)
{
    uint8_t *h = calloc(1, GW_PROXY_V2_IN_MAX + 1);
    assert_non_null(h);
    uint8_t body[12] = {10, 0, 0, 1, 10, 0, 0, 2, 0, 1, 0, 2};
    struct gw_proxy_info info;

    /* exactly the bound: accepted (the rest as TLVs) */
    size_t n = v2(h, 0x21, 0x11, body, 12);
    h[14] = (uint8_t)((GW_PROXY_V2_IN_MAX - 16) >> 8);
    h[15] = (uint8_t)(GW_PROXY_V2_IN_MAX - 16);
    assert_int_equal(parse(h, n, 2, &info), 0);
    assert_int_equal(parse(h, GW_PROXY_V2_IN_MAX, 2, &info), GW_PROXY_V2_IN_MAX);
    /* one over, and the largest the format allows: refused as soon as the length is read */
    h[15] = (uint8_t)(GW_PROXY_V2_IN_MAX - 15);
    assert_true(parse(h, 16, 2, &info) < 0);
    h[14] = 0xFF;
    h[15] = 0xFF;
    assert_true(parse(h, 16, 2, &info) < 0);
    assert_int_equal(parse(h, 15, 2, &info), 0);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_v1__tcp4),
        cmocka_unit_test(test_proxy_v1__tcp6),
        cmocka_unit_test(test_proxy_v1__unknown_keeps_the_real_addresses),
        cmocka_unit_test(test_proxy_v1__garbage_is_refused_at_once),
        cmocka_unit_test(test_proxy_v1__line_endings),
        cmocka_unit_test(test_proxy_v1__overlong_line),
        cmocka_unit_test(test_proxy_v1__bad_addresses),
        cmocka_unit_test(test_proxy_v1__bad_ports),
        cmocka_unit_test(test_proxy_v2__tcp4),
        cmocka_unit_test(test_proxy_v2__tcp6),
        cmocka_unit_test(test_proxy_v2__tlvs_are_skipped),
        cmocka_unit_test(test_proxy_v2__local_and_unspec_keep_the_real_addresses),
        cmocka_unit_test(test_proxy_v2__malformed),
        cmocka_unit_test(test_proxy_v2__length_over_the_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

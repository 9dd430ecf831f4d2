/* SPDX-License-Identifier: MIT */
/*
 * Conformance: invalid key shares in a TLS 1.3 ClientHello. RFC 8446 4.2.8: the server
 * validates the client's share of the group it selects ("Peers MUST validate each other's
 * public key": 4.2.8.2 for the NIST curves, RFC 7748 6.1 / RFC 8446 7.4.2 for X25519, whose
 * all-zero shared secret must be refused) and answers a bad one with illegal_parameter,
 * before it sends its ServerHello: after the ServerHello the refusal could only be an
 * encrypted alert from a server that has already committed to the handshake.
 *
 * Each case sends one ClientHello offering exactly one group with one share, so the share
 * tested is the one the server must select. Valid shares (any 32 bytes with the top bit
 * clear for X25519, the P-256 generator) get a ServerHello: the builder itself is right.
 *
 * wolfSSL 5.9.2 computes the shared secret only after sending ServerHello (and then fails
 * without an alert): scripts/wolfssl-patches/0001-tls13-validate-key-share-before-server-
 * hello.patch moves the computation before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "conf_server.h"
#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

static cs_server server;
static uint64_t closed; /* connections the server has closed so far */

static int group_setup(void **state)
{
    (void)state;
    return cs_start(&server, NULL, TERN_TEST_CERTS) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cs_stop(&server);
    return 0;
}

/* Sends a TLS 1.3 ClientHello with one key share (@p group, @p len bytes of @p data), the
 * same group alone in supported_groups, and reads the answer. */
static void hello_with_share(uint16_t group, const uint8_t *data, size_t len, tb_answer *a)
{
    tb_share share = {.group = group, .data = data, .len = len};
    tb_hello h;
    tb_hello_tls13(&h, &share);
    tb_buf msg, wire;
    tb_buf_init(&msg);
    tb_buf_init(&wire);
    tb_client_hello(&msg, &h);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p, msg.len, 0);
    assert_false(msg.oom || wire.oom);
    assert_int_equal(cs_roundtrip(&server, wire.p, wire.len, TB_UNTIL_SERVER_HELLO, 3000, a), 0);
    tb_buf_free(&msg);
    tb_buf_free(&wire);
    closed++;
}

static void refused(uint16_t group, const uint8_t *data, size_t len)
{
    tb_answer a;
    hello_with_share(group, data, len, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_ILLEGAL_PARAMETER, closed);
}

static void accepted(uint16_t group, const uint8_t *data, size_t len)
{
    tb_answer a;
    hello_with_share(group, data, len, &a);
    cs_expect_server_hello(&server, &a, closed);
    assert_int_equal(a.sh_selected, 0x0304);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

/* ---- valid shares: the builder's baseline ------------------------------------------------ */

static void test_conf_keyshare__valid_x25519_share_gets_a_server_hello(void **state)
{
    (void)state;
    accepted(TB_GROUP_X25519, tb_x25519_share, sizeof(tb_x25519_share));
}

static void test_conf_keyshare__valid_p256_share_gets_a_server_hello(void **state)
{
    (void)state;
    accepted(TB_GROUP_P256, tb_p256_generator, sizeof(tb_p256_generator));
}

/* ---- P-256 (RFC 8446 4.2.8.2: UncompressedPointRepresentation, validated) ---------------- */

static void test_conf_keyshare__p256_point_at_infinity_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t inf[1] = {0x00}; /* SEC 1 2.3.3: the point at infinity */
    refused(TB_GROUP_P256, inf, sizeof(inf));
}

static void test_conf_keyshare__p256_point_off_the_curve_is_illegal_parameter(void **state)
{
    (void)state;
    uint8_t p[65];
    memcpy(p, tb_p256_generator, sizeof(p));
    p[64] ^= 0x01; /* (Gx, Gy + 1) is not on the curve */
    refused(TB_GROUP_P256, p, sizeof(p));
}

static void test_conf_keyshare__p256_all_zero_coordinates_are_illegal_parameter(void **state)
{
    (void)state;
    uint8_t p[65] = {0x04}; /* (0, 0): not on the curve */
    refused(TB_GROUP_P256, p, sizeof(p));
}

static void test_conf_keyshare__p256_truncated_share_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_P256, tb_p256_generator, 33); /* 0x04 || X, no Y */
}

static void test_conf_keyshare__p256_zero_padded_share_is_illegal_parameter(void **state)
{
    (void)state;
    uint8_t p[66] = {0};
    memcpy(p, tb_p256_generator, sizeof(tb_p256_generator)); /* one zero byte too many */
    refused(TB_GROUP_P256, p, sizeof(p));
}

static void test_conf_keyshare__p256_without_the_format_byte_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_P256, tb_p256_generator + 1, 64); /* X || Y, 64 bytes */
}

static void test_conf_keyshare__p256_compressed_point_is_illegal_parameter(void **state)
{
    (void)state;
    /* RFC 8446 4.2.8.2: only the uncompressed form; Gy is odd, so 0x03 || Gx */
    uint8_t p[33];
    memcpy(p, tb_p256_generator, sizeof(p));
    p[0] = 0x03;
    refused(TB_GROUP_P256, p, sizeof(p));
}

static void test_conf_keyshare__p256_named_with_x25519_data_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_P256, tb_x25519_share, sizeof(tb_x25519_share));
}

/* ---- X25519 (RFC 7748; RFC 8446 7.4.2: an all-zero shared secret is refused) -------------- */

static void test_conf_keyshare__x25519_all_zero_value_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t zero[32] = {0};
    refused(TB_GROUP_X25519, zero, sizeof(zero));
}

static void test_conf_keyshare__x25519_low_order_point_is_illegal_parameter(void **state)
{
    (void)state;
    /* a point of order 8: with a clamped scalar (a multiple of 8) the shared secret is all
     * zeros whatever the server's key (RFC 7748 6.1) */
    const uint8_t order8[32] = {
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
        0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    };
    refused(TB_GROUP_X25519, order8, sizeof(order8));
}

static void test_conf_keyshare__x25519_other_low_order_point_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t order8[32] = {
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
        0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    };
    refused(TB_GROUP_X25519, order8, sizeof(order8));
}

static void test_conf_keyshare__x25519_truncated_share_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_X25519, tb_x25519_share, 31);
}

static void test_conf_keyshare__x25519_zero_padded_share_is_illegal_parameter(void **state)
{
    (void)state;
    uint8_t p[33] = {0};
    memcpy(p, tb_x25519_share, sizeof(tb_x25519_share));
    refused(TB_GROUP_X25519, p, sizeof(p));
}

static void test_conf_keyshare__x25519_named_with_p256_data_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_X25519, tb_p256_generator, sizeof(tb_p256_generator));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_keyshare__valid_x25519_share_gets_a_server_hello),
        cmocka_unit_test(test_conf_keyshare__valid_p256_share_gets_a_server_hello),
        cmocka_unit_test(test_conf_keyshare__p256_point_at_infinity_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_point_off_the_curve_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_all_zero_coordinates_are_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_truncated_share_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_zero_padded_share_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_without_the_format_byte_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_compressed_point_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__p256_named_with_x25519_data_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_all_zero_value_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_low_order_point_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_other_low_order_point_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_truncated_share_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_zero_padded_share_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519_named_with_p256_data_is_illegal_parameter),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

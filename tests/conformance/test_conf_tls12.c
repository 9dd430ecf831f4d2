/* SPDX-License-Identifier: MIT */
/*
 * Conformance: the TLS 1.2 plaintext phase after the server's flight, and oversized records.
 *
 * ClientKeyExchange (ECDHE): the client's point is validated when it arrives (RFC 8422 5.7
 * and 5.11: an invalid point, or an X25519 value giving an all-zero shared secret, is
 * answered with illegal_parameter). The message is plaintext: the test sends a ClientHello,
 * reads the server's flight up to ServerHelloDone, and sends a ClientKeyExchange carrying a
 * bad point; the server must refuse it there, not later with bad_record_mac or
 * decrypt_error at a Finished it cannot have.
 *
 * Records: RFC 8446 5.1 and RFC 5246 6.2.1, a TLSPlaintext fragment is at most 2^14 bytes;
 * RFC 8446 5.2 allows 2^14 + 256 for ciphertext and RFC 5246 6.2.3 2^14 + 2048. A record
 * header claiming more than any of these is answered with record_overflow before the body
 * is waited for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "conf_server.h"
#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

static cs_server server;
static uint64_t closed;

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

/* ---- ClientKeyExchange --------------------------------------------------------------------- */

/* Sends a TLS 1.2 ClientHello offering only @p group, reads the flight up to ServerHelloDone,
 * then sends a ClientKeyExchange with @p len bytes of @p point and reads the answer into
 * @p a (@p wait_ms: how long to wait for it). */
static void key_exchange(uint16_t group, const uint8_t *point, size_t len, unsigned wait_ms,
                         tb_answer *a)
{
    tb_hello h;
    tb_hello_tls12(&h);
    uint16_t groups[1] = {group};
    h.groups = groups;
    h.n_groups = 1;

    tb_buf msg, wire;
    tb_buf_init(&msg);
    tb_buf_init(&wire);
    tb_client_hello(&msg, &h);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p, msg.len, 0);
    assert_false(msg.oom || wire.oom);

    int fd = cs_connect(&server);
    assert_true(fd >= 0);
    closed++;
    tb_answer flight;
    assert_int_equal(tb_exchange(fd, wire.p, wire.len, &flight, TB_UNTIL_HELLO_DONE, 3000), 0);
    char line[384];
    if (!flight.server_hello_done || !flight.key_exchange || flight.ske_group != group) {
        close(fd);
        fail_msg("no ECDHE flight for group 0x%04x: %s (SKE group 0x%04x)", group,
                 tb_answer_str(&flight, line, sizeof(line)), flight.ske_group);
    }

    /* struct { opaque point <1..2^8-1>; } ClientECDiffieHellmanPublic (RFC 8422 5.7) */
    tb_buf body;
    tb_buf_init(&body);
    tb_u8(&body, (unsigned)len);
    tb_put(&body, point, len);
    msg.len = 0;
    if (flight.cert_request) {
        /* RFC 5246 7.4.6: no certificate to send, an empty list */
        const uint8_t empty[3] = {0, 0, 0};
        tb_handshake(&msg, TB_HT_CERTIFICATE, empty, sizeof(empty));
    }
    tb_handshake(&msg, TB_HT_CLIENT_KEY_EXCHANGE, body.p, body.len);
    wire.len = 0;
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0303, msg.p, msg.len, 0);
    assert_false(msg.oom || wire.oom || body.oom);
    assert_int_equal(tb_exchange(fd, wire.p, wire.len, a, TB_UNTIL_END, wait_ms), 0);
    close(fd);
    tb_buf_free(&body);
    tb_buf_free(&msg);
    tb_buf_free(&wire);
}

/* The refusal comes after the ServerHello of the (earlier) flight: check the alert itself. */
static void expect_cke_refused(const tb_answer *a)
{
    char line[384];
    tb_answer_str(a, line, sizeof(line));
    if (a->alert != TB_ALERT_ILLEGAL_PARAMETER || a->alert_level != 2 ||
        (!a->eof && !a->reset)) {
        bool gone = cs_wait_disconnected(&server, closed, 3000);
        fail_msg("expected a fatal illegal_parameter and the close, got: %s; the server says: "
                 "%s", line, gone ? server.last_error_string : "(nothing yet)");
    }
    assert_true(cs_wait_disconnected(&server, closed, 3000));
    if (strstr(server.last_error_string, "illegal_parameter") == NULL) {
        fail_msg("the server's error string does not name the alert: \"%s\"",
                 server.last_error_string);
    }
}

static void test_conf_tls12__valid_p256_key_exchange_is_accepted(void **state)
{
    (void)state;
    tb_answer a;
    key_exchange(TB_GROUP_P256, tb_p256_generator, sizeof(tb_p256_generator), 300, &a);
    /* the server waits for ChangeCipherSpec and Finished: no alert */
    char line[384];
    if (a.alert >= 0 || a.eof || a.reset || !a.timed_out) {
        fail_msg("a valid ClientKeyExchange was refused: %s", tb_answer_str(&a, line, sizeof(line)));
    }
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

static void test_conf_tls12__p256_point_off_the_curve_is_illegal_parameter(void **state)
{
    (void)state;
    uint8_t p[65];
    memcpy(p, tb_p256_generator, sizeof(p));
    p[64] ^= 0x01;
    tb_answer a;
    key_exchange(TB_GROUP_P256, p, sizeof(p), 3000, &a);
    expect_cke_refused(&a);
}

static void test_conf_tls12__p256_point_at_infinity_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t inf[1] = {0x00};
    tb_answer a;
    key_exchange(TB_GROUP_P256, inf, sizeof(inf), 3000, &a);
    expect_cke_refused(&a);
}

static void test_conf_tls12__p256_truncated_point_is_illegal_parameter(void **state)
{
    (void)state;
    tb_answer a;
    key_exchange(TB_GROUP_P256, tb_p256_generator, 33, 3000, &a);
    expect_cke_refused(&a);
}

static void test_conf_tls12__x25519_all_zero_value_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t zero[32] = {0};
    tb_answer a;
    key_exchange(TB_GROUP_X25519, zero, sizeof(zero), 3000, &a);
    expect_cke_refused(&a);
}

static void test_conf_tls12__x25519_low_order_point_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t order8[32] = {
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
        0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    };
    tb_answer a;
    key_exchange(TB_GROUP_X25519, order8, sizeof(order8), 3000, &a);
    expect_cke_refused(&a);
}

/* RFC 8422 5.11 takes X25519 from RFC 7748, whose section 5 says the receiver MUST mask the
 * top bit of the last byte: a valid value with it set is the same valid value
 * (scripts/wolfssl-patches/0008-x25519-mask-top-bit-accept-non-canonical.patch; 5.9.2
 * refused it, with bad_record_mac before patch 0004). */
static void test_conf_tls12__x25519_value_with_top_bit_set_is_accepted(void **state)
{
    (void)state;
    uint8_t v[32];
    memcpy(v, tb_x25519_share, sizeof(v));
    v[31] |= 0x80;
    tb_answer a;
    key_exchange(TB_GROUP_X25519, v, sizeof(v), 300, &a);
    char line[384];
    if (a.alert >= 0 || a.eof || a.reset || !a.timed_out) {
        fail_msg("an X25519 value with its top bit set was refused: %s",
                 tb_answer_str(&a, line, sizeof(line)));
    }
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

static void test_conf_tls12__x25519_low_order_point_with_top_bit_set_is_illegal_parameter(
    void **state)
{
    (void)state;
    /* the order-8 point of the test above, top bit set */
    const uint8_t order8[32] = {
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa,
        0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd,
        0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x80,
    };
    tb_answer a;
    key_exchange(TB_GROUP_X25519, order8, sizeof(order8), 3000, &a);
    expect_cke_refused(&a);
}

/* ---- record sizes --------------------------------------------------------------------------- */

/* A ClientHello (TLS 1.3 if @p tls13) padded to @p total bytes, sent as one record whose
 * header says so. */
static void oversized_record(bool tls13, size_t total, tb_answer *a)
{
    static const tb_share x25519 = {TB_GROUP_X25519, tb_x25519_share, sizeof(tb_x25519_share)};
    tb_hello h;
    if (tls13) {
        tb_hello_tls13(&h, &x25519);
    } else {
        tb_hello_tls12(&h);
    }
    tb_buf msg, wire;
    tb_buf_init(&msg);
    tb_buf_init(&wire);
    tb_client_hello(&msg, &h);
    assert_true(msg.len + 4 <= total);
    h.padding = true;
    h.padding_len = total - msg.len - 4;
    msg.len = 0;
    tb_client_hello(&msg, &h);
    assert_int_equal(msg.len, total);
    tb_record_raw(&wire, TB_CT_HANDSHAKE, 0x0301, (uint32_t)msg.len, msg.p, msg.len);
    assert_false(msg.oom || wire.oom);
    assert_int_equal(cs_roundtrip(&server, wire.p, wire.len, TB_UNTIL_SERVER_HELLO, 3000, a), 0);
    closed++;
    tb_buf_free(&msg);
    tb_buf_free(&wire);
}

static void test_conf_tls12__record_of_2_14_bytes_is_accepted(void **state)
{
    (void)state;
    tb_answer a;
    oversized_record(true, 16384, &a);
    cs_expect_server_hello(&server, &a, closed);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

static void test_conf_tls12__tls13_record_over_2_14_plus_256_is_record_overflow(void **state)
{
    (void)state;
    tb_answer a;
    oversized_record(true, 16384 + 257, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_RECORD_OVERFLOW, closed);
}

static void test_conf_tls12__tls12_record_over_2_14_plus_2048_is_record_overflow(void **state)
{
    (void)state;
    tb_answer a;
    oversized_record(false, 16384 + 2049, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_RECORD_OVERFLOW, closed);
}

static void test_conf_tls12__record_header_claiming_64_kib_is_record_overflow(void **state)
{
    (void)state;
    /* only the header: the server must not wait for 64 KiB to refuse it */
    tb_buf wire;
    tb_buf_init(&wire);
    const uint8_t start[4] = {TB_HT_CLIENT_HELLO, 0x00, 0xff, 0xfb};
    tb_record_raw(&wire, TB_CT_HANDSHAKE, 0x0301, 0xffff, start, sizeof(start));
    tb_answer a;
    assert_int_equal(cs_roundtrip(&server, wire.p, wire.len, TB_UNTIL_SERVER_HELLO, 3000, &a), 0);
    closed++;
    cs_expect_refusal(&server, &a, TB_ALERT_RECORD_OVERFLOW, closed);
    tb_buf_free(&wire);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_tls12__valid_p256_key_exchange_is_accepted),
        cmocka_unit_test(test_conf_tls12__p256_point_off_the_curve_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__p256_point_at_infinity_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__p256_truncated_point_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__x25519_all_zero_value_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__x25519_low_order_point_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__x25519_value_with_top_bit_set_is_accepted),
        cmocka_unit_test(
            test_conf_tls12__x25519_low_order_point_with_top_bit_set_is_illegal_parameter),
        cmocka_unit_test(test_conf_tls12__record_of_2_14_bytes_is_accepted),
        cmocka_unit_test(test_conf_tls12__tls13_record_over_2_14_plus_256_is_record_overflow),
        cmocka_unit_test(test_conf_tls12__tls12_record_over_2_14_plus_2048_is_record_overflow),
        cmocka_unit_test(test_conf_tls12__record_header_claiming_64_kib_is_record_overflow),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

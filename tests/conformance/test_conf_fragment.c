/* SPDX-License-Identifier: MIT */
/*
 * Conformance: a ClientHello fragmented across records, and fragments interleaved with
 * records of another content type.
 *
 * RFC 8446 5.1 / RFC 5246 6.2.1: a handshake message may be split over any number of
 * records (down to one byte each; zero-length handshake fragments are not allowed), and the
 * receiver reassembles it. RFC 8446 5.1: "Handshake messages MUST NOT be interleaved with
 * other record types": an alert, a ChangeCipherSpec (not yet allowed: the first ClientHello
 * has not been received, RFC 8446 D.4 / 5) or application data between two fragments is an
 * unexpected_message. TLS 1.2 has no such sentence, but application data and a
 * ChangeCipherSpec before the first ClientHello is complete are out of order there too
 * (RFC 5246 7.1, 7.4): unexpected_message.
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

static const tb_share x25519 = {TB_GROUP_X25519, tb_x25519_share, sizeof(tb_x25519_share)};

/* The ClientHello message of TLS 1.3 (@p tls13) or 1.2. */
static void hello(tb_buf *msg, bool tls13)
{
    tb_hello h;
    if (tls13) {
        tb_hello_tls13(&h, &x25519);
    } else {
        tb_hello_tls12(&h);
    }
    tb_buf_init(msg);
    tb_client_hello(msg, &h);
    assert_false(msg->oom);
}

static void roundtrip(const tb_buf *wire, int until, tb_answer *a)
{
    assert_false(wire->oom);
    assert_int_equal(cs_roundtrip(&server, wire->p, wire->len, until, 5000, a), 0);
    closed++;
}

/* The ClientHello in records of @p frag bytes: the server answers with its ServerHello. */
static void fragmented(bool tls13, size_t frag)
{
    tb_buf msg, wire;
    hello(&msg, tls13);
    tb_buf_init(&wire);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p, msg.len, frag);
    tb_answer a;
    roundtrip(&wire, tls13 ? TB_UNTIL_SERVER_HELLO : TB_UNTIL_HELLO_DONE, &a);
    cs_expect_server_hello(&server, &a, closed);
    assert_int_equal(a.sh_selected, tls13 ? 0x0304 : 0);
    if (!tls13) {
        assert_int_equal(a.sh_legacy_version, 0x0303);
        assert_true(a.server_hello_done);
    }
    assert_true(cs_wait_disconnected(&server, closed, 3000));
    tb_buf_free(&msg);
    tb_buf_free(&wire);
}

/* The first @p split bytes of the ClientHello, one record of type @p type carrying
 * @p len bytes of @p body, then the rest: unexpected_message. */
static void interleaved(bool tls13, size_t split, unsigned type, const void *body, size_t len)
{
    tb_buf msg, wire;
    hello(&msg, tls13);
    assert_true(split < msg.len);
    tb_buf_init(&wire);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p, split, 0);
    tb_record_raw(&wire, type, 0x0303, (uint32_t)len, body, len);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p + split, msg.len - split, 0);
    tb_answer a;
    roundtrip(&wire, TB_UNTIL_SERVER_HELLO, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_UNEXPECTED_MESSAGE, closed);
    tb_buf_free(&msg);
    tb_buf_free(&wire);
}

static const uint8_t ccs[1] = {0x01};
static const uint8_t warning[2] = {1, 90}; /* user_canceled, a warning */
static const uint8_t appdata[5] = {'h', 'e', 'l', 'l', 'o'};

/* ---- reassembly --------------------------------------------------------------------------- */

static void test_conf_fragment__tls13_hello_in_one_byte_records_is_reassembled(void **state)
{
    (void)state;
    fragmented(true, 1);
}

static void test_conf_fragment__tls13_hello_in_seven_byte_records_is_reassembled(void **state)
{
    (void)state;
    fragmented(true, 7);
}

static void test_conf_fragment__tls13_hello_in_two_records_is_reassembled(void **state)
{
    (void)state;
    fragmented(true, 100);
}

static void test_conf_fragment__tls12_hello_in_one_byte_records_is_reassembled(void **state)
{
    (void)state;
    fragmented(false, 1);
}

static void test_conf_fragment__tls12_hello_in_three_byte_records_is_reassembled(void **state)
{
    (void)state;
    fragmented(false, 3);
}

/* ---- interleaving ------------------------------------------------------------------------- */

static void test_conf_fragment__tls13_alert_between_fragments_is_unexpected_message(void **state)
{
    (void)state;
    interleaved(true, 40, TB_CT_ALERT, warning, sizeof(warning));
}

static void test_conf_fragment__tls13_ccs_between_fragments_is_unexpected_message(void **state)
{
    (void)state;
    interleaved(true, 40, TB_CT_CCS, ccs, sizeof(ccs));
}

static void test_conf_fragment__tls13_appdata_between_fragments_is_unexpected_message(
    void **state)
{
    (void)state;
    interleaved(true, 40, TB_CT_APPDATA, appdata, sizeof(appdata));
}

static void test_conf_fragment__alert_inside_the_handshake_header_is_unexpected_message(
    void **state)
{
    (void)state;
    interleaved(true, 2, TB_CT_ALERT, warning, sizeof(warning));
}

static void test_conf_fragment__tls12_ccs_between_fragments_is_unexpected_message(void **state)
{
    (void)state;
    interleaved(false, 40, TB_CT_CCS, ccs, sizeof(ccs));
}

static void test_conf_fragment__tls12_appdata_between_fragments_is_unexpected_message(
    void **state)
{
    (void)state;
    interleaved(false, 40, TB_CT_APPDATA, appdata, sizeof(appdata));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_fragment__tls13_hello_in_one_byte_records_is_reassembled),
        cmocka_unit_test(test_conf_fragment__tls13_hello_in_seven_byte_records_is_reassembled),
        cmocka_unit_test(test_conf_fragment__tls13_hello_in_two_records_is_reassembled),
        cmocka_unit_test(test_conf_fragment__tls12_hello_in_one_byte_records_is_reassembled),
        cmocka_unit_test(test_conf_fragment__tls12_hello_in_three_byte_records_is_reassembled),
        cmocka_unit_test(test_conf_fragment__tls13_alert_between_fragments_is_unexpected_message),
        cmocka_unit_test(test_conf_fragment__tls13_ccs_between_fragments_is_unexpected_message),
        cmocka_unit_test(
            test_conf_fragment__tls13_appdata_between_fragments_is_unexpected_message),
        cmocka_unit_test(
            test_conf_fragment__alert_inside_the_handshake_header_is_unexpected_message),
        cmocka_unit_test(test_conf_fragment__tls12_ccs_between_fragments_is_unexpected_message),
        cmocka_unit_test(
            test_conf_fragment__tls12_appdata_between_fragments_is_unexpected_message),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

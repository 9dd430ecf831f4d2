/* SPDX-License-Identifier: MIT */
/*
 * Conformance: version negotiation from the ClientHello.
 *
 * Without supported_versions a ClientHello is negotiated by its legacy_version the TLS 1.2
 * way: RFC 5246 Appendix E.1, a server MUST answer a higher client version with the highest
 * it supports (TLS 1.2 here), and RFC 8446 4.2.1 / D.1 repeat it "even if
 * ClientHello.legacy_version is 0x0304 or later". A lower one than the server's minimum gets
 * protocol_version. With supported_versions only that list counts (RFC 8446 4.2.1): unknown
 * values are ignored, and a list with nothing the server speaks gets protocol_version.
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

static cs_server server;   /* TLS 1.2 and 1.3 (the default) */
static cs_server server12; /* TLS 1.2 only */
static uint64_t closed, closed12;

static int group_setup(void **state)
{
    (void)state;
    if (cs_start(&server, NULL, TERN_TEST_CERTS) != 0) {
        return -1;
    }
    cs_options o = {.min = TERN_SSL_PROTOCOL_TLS1_2, .max = TERN_SSL_PROTOCOL_TLS1_2};
    return cs_start(&server12, &o, TERN_TEST_CERTS) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    cs_stop(&server);
    cs_stop(&server12);
    return 0;
}

static const tb_share x25519 = {TB_GROUP_X25519, tb_x25519_share, sizeof(tb_x25519_share)};

static void send_hello(cs_server *s, const tb_hello *h, int until, tb_answer *a)
{
    tb_buf msg, wire;
    tb_buf_init(&msg);
    tb_buf_init(&wire);
    tb_client_hello(&msg, h);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg.p, msg.len, 0);
    assert_false(msg.oom || wire.oom);
    assert_int_equal(cs_roundtrip(s, wire.p, wire.len, until, 3000, a), 0);
    tb_buf_free(&msg);
    tb_buf_free(&wire);
}

/* A TLS 1.2 ClientHello (no supported_versions) with @p legacy: TLS 1.2 is negotiated. */
static void tls12_hello_negotiates_tls12(uint16_t legacy)
{
    tb_hello h;
    tb_hello_tls12(&h);
    h.legacy_version = legacy;
    tb_answer a;
    send_hello(&server, &h, TB_UNTIL_HELLO_DONE, &a);
    closed++;
    cs_expect_server_hello(&server, &a, closed);
    assert_int_equal(a.sh_legacy_version, 0x0303);
    assert_int_equal(a.sh_selected, 0); /* a TLS 1.2 ServerHello has no supported_versions */
    assert_true(a.server_hello_done);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

/* A TLS 1.3 ClientHello with supported_versions @p v (@p n values) to @p s. */
static void tls13_hello(cs_server *s, const uint16_t *v, size_t n, tb_answer *a)
{
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    /* TLS 1.2 suites and curves too, so a TLS 1.2 answer is possible */
    static const uint16_t suites[] = {TB_TLS_AES_128_GCM_SHA256, TB_ECDHE_ECDSA_AES128_GCM_SHA256};
    static const uint16_t groups[] = {TB_GROUP_X25519, TB_GROUP_P256};
    h.suites = suites;
    h.n_suites = 2;
    h.groups = groups;
    h.n_groups = 2;
    h.ec_point_formats = true;
    h.versions = v;
    h.n_versions = n;
    send_hello(s, &h, TB_UNTIL_SERVER_HELLO, a);
}

static void test_conf_version__tls12_hello_with_legacy_0303_negotiates_tls12(void **state)
{
    (void)state;
    tls12_hello_negotiates_tls12(0x0303);
}

static void test_conf_version__tls12_hello_with_legacy_0304_negotiates_tls12(void **state)
{
    (void)state;
    tls12_hello_negotiates_tls12(0x0304); /* RFC 8446 4.2.1: "even if ... 0x0304 or later" */
}

static void test_conf_version__tls12_hello_with_legacy_0401_negotiates_tls12(void **state)
{
    (void)state;
    tls12_hello_negotiates_tls12(0x0401); /* RFC 5246 E.1: a future version */
}

static void test_conf_version__tls12_hello_with_legacy_03ff_negotiates_tls12(void **state)
{
    (void)state;
    tls12_hello_negotiates_tls12(0x03ff);
}

static void test_conf_version__tls11_hello_is_protocol_version(void **state)
{
    (void)state;
    tb_hello h;
    tb_hello_tls12(&h);
    h.legacy_version = 0x0302; /* TLS 1.1: below the server's minimum */
    tb_answer a;
    send_hello(&server, &h, TB_UNTIL_HELLO_DONE, &a);
    closed++;
    cs_expect_refusal(&server, &a, TB_ALERT_PROTOCOL_VERSION, closed);
}

static void test_conf_version__unknown_supported_versions_are_ignored(void **state)
{
    (void)state;
    static const uint16_t v[] = {0x0305, 0x7f1c, 0x0304};
    tb_answer a;
    tls13_hello(&server, v, 3, &a);
    closed++;
    cs_expect_server_hello(&server, &a, closed);
    assert_int_equal(a.sh_selected, 0x0304);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

static void test_conf_version__supported_versions_without_a_known_one_is_protocol_version(
    void **state)
{
    (void)state;
    /* legacy_version 0x0303 must not be used when the extension is there (RFC 8446 4.2.1) */
    static const uint16_t v[] = {0x0305, 0x7f1c};
    tb_answer a;
    tls13_hello(&server, v, 2, &a);
    closed++;
    cs_expect_refusal(&server, &a, TB_ALERT_PROTOCOL_VERSION, closed);
}

static void test_conf_version__legacy_0304_with_supported_versions_negotiates_tls13(
    void **state)
{
    (void)state;
    /* RFC 8446 4.2.1: with supported_versions only the extension counts */
    static const uint16_t v[] = {0x0304, 0x0303};
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    h.legacy_version = 0x0304;
    h.versions = v;
    h.n_versions = 2;
    tb_answer a;
    send_hello(&server, &h, TB_UNTIL_SERVER_HELLO, &a);
    closed++;
    cs_expect_server_hello(&server, &a, closed);
    assert_int_equal(a.sh_selected, 0x0304);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

static void test_conf_version__tls12_server_answers_a_tls13_hello_with_tls12(void **state)
{
    (void)state;
    static const uint16_t v[] = {0x0304, 0x0303};
    tb_answer a;
    tls13_hello(&server12, v, 2, &a);
    closed12++;
    cs_expect_server_hello(&server12, &a, closed12);
    assert_int_equal(a.sh_legacy_version, 0x0303);
    assert_int_equal(a.sh_selected, 0);
    assert_true(cs_wait_disconnected(&server12, closed12, 3000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_version__tls12_hello_with_legacy_0303_negotiates_tls12),
        cmocka_unit_test(test_conf_version__tls12_hello_with_legacy_0304_negotiates_tls12),
        cmocka_unit_test(test_conf_version__tls12_hello_with_legacy_0401_negotiates_tls12),
        cmocka_unit_test(test_conf_version__tls12_hello_with_legacy_03ff_negotiates_tls12),
        cmocka_unit_test(test_conf_version__tls11_hello_is_protocol_version),
        cmocka_unit_test(test_conf_version__unknown_supported_versions_are_ignored),
        cmocka_unit_test(
            test_conf_version__supported_versions_without_a_known_one_is_protocol_version),
        cmocka_unit_test(
            test_conf_version__legacy_0304_with_supported_versions_negotiates_tls13),
        cmocka_unit_test(test_conf_version__tls12_server_answers_a_tls13_hello_with_tls12),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

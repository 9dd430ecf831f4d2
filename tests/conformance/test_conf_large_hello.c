/* SPDX-License-Identifier: MIT */
/*
 * Conformance: very large ClientHellos. A server takes a legal ClientHello up to a documented
 * bound, with bounded memory, and refuses a larger one with an alert, never a silent close
 * (docs/build.md, "The patch series", gives the bounds):
 *
 *   - a handshake message body of at most 18,462 bytes (wolfSSL's MAX_HANDSHAKE_SZ: room
 *     for nine 2 KiB certificates); a larger one is refused with decode_error as soon as its header
 *     is read, before its body arrives (so a header claiming 16 MiB costs nothing);
 *   - at most 150 cipher suites (WOLFSSL_MAX_SUITE_SZ, 300 bytes), more: decode_error;
 *   - extensions, groups, signature schemes: as many as fit in the message;
 *   - key shares: as many as the message holds; the server picks one of the groups it
 *     supports (RFC 8446 4.2.8).
 *
 * Hellos spanning several records are reassembled (RFC 8446 5.1).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "conf_server.h"
#include "support.h"

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

/* wolfSSL's bound on a handshake message body (see the top of the file) */
#define MAX_HANDSHAKE_BODY 18462u
#define MAX_SUITES 150u

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

/* Sends @p msg in records of at most 2^14 bytes and reads the answer. */
static void send_msg(const tb_buf *msg, tb_answer *a)
{
    tb_buf wire;
    tb_buf_init(&wire);
    tb_records(&wire, TB_CT_HANDSHAKE, 0x0301, msg->p, msg->len, 0);
    assert_false(msg->oom || wire.oom);
    assert_int_equal(cs_roundtrip(&server, wire.p, wire.len, TB_UNTIL_SERVER_HELLO, 5000, a), 0);
    closed++;
    tb_buf_free(&wire);
}

static void expect_hello(const tb_answer *a)
{
    cs_expect_server_hello(&server, a, closed);
    assert_int_equal(a->sh_selected, 0x0304);
    assert_true(cs_wait_disconnected(&server, closed, 3000));
}

/* A TLS 1.3 ClientHello whose whole message is @p total bytes (padding extension). */
static void padded_hello(size_t total, tb_buf *msg)
{
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    tb_buf_init(msg);
    tb_client_hello(msg, &h);
    assert_true(msg->len + 4 <= total && total - msg->len - 4 <= 65535);
    h.padding = true;
    h.padding_len = total - msg->len - 4;
    msg->len = 0;
    tb_client_hello(msg, &h);
    assert_int_equal(msg->len, total);
}

/* ---- size of the message ------------------------------------------------------------------ */

static void test_conf_large_hello__16_kib_padding_over_two_records_is_accepted(void **state)
{
    (void)state;
    tb_buf msg;
    padded_hello(16384 + 4 + 300, &msg);
    tb_answer a;
    send_msg(&msg, &a);
    expect_hello(&a);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__hello_at_the_bound_is_accepted(void **state)
{
    (void)state;
    tb_buf msg;
    padded_hello(4 + MAX_HANDSHAKE_BODY, &msg);
    tb_answer a;
    send_msg(&msg, &a);
    expect_hello(&a);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__hello_one_byte_over_the_bound_is_decode_error(void **state)
{
    (void)state;
    tb_buf msg;
    padded_hello(4 + MAX_HANDSHAKE_BODY + 1, &msg);
    tb_answer a;
    send_msg(&msg, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__64_kib_padding_is_decode_error(void **state)
{
    (void)state;
    tb_buf msg;
    padded_hello(65000, &msg); /* a padding extension of about 64 KiB */
    tb_answer a;
    send_msg(&msg, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__header_claiming_16_mib_is_refused_at_once(void **state)
{
    (void)state;
    /* the first 2^14 bytes of a 16 MiB ClientHello: refused without waiting for the rest */
    tb_buf msg;
    padded_hello(16384, &msg);
    tb_poke(&msg, 1, 0xffffff, 3);
    tb_answer a;
    send_msg(&msg, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__16_mib_hello_streamed_is_refused(void **state)
{
    (void)state;
    /* 16 MiB - 1 bytes of handshake in 1024 records: the alert comes while we still send */
    size_t body = 0xffffff;
    tb_buf msg;
    padded_hello(16384, &msg);
    tb_poke(&msg, 1, (uint32_t)body, 3);
    tb_put_zeros(&msg, 4 + body - msg.len);
    tb_answer a;
    send_msg(&msg, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
    assert_true(a.sent < msg.len / 2); /* refused long before the end */
    tb_buf_free(&msg);
}

/* ---- many entries ------------------------------------------------------------------------- */

/* A hello with @p n suites: unassigned values first, then the real ones last. */
static void many_suites(size_t n, tb_answer *a)
{
    uint16_t *suites = calloc(n, sizeof(*suites));
    assert_non_null(suites);
    for (size_t i = 0; i < n; i++) {
        suites[i] = (uint16_t)(0xd000 + i); /* unassigned */
    }
    suites[n - 1] = TB_TLS_AES_128_GCM_SHA256;
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    h.suites = suites;
    h.n_suites = n;
    tb_buf msg;
    tb_buf_init(&msg);
    tb_client_hello(&msg, &h);
    send_msg(&msg, a);
    tb_buf_free(&msg);
    free(suites);
}

static void test_conf_large_hello__150_cipher_suites_are_accepted(void **state)
{
    (void)state;
    tb_answer a;
    many_suites(MAX_SUITES, &a);
    expect_hello(&a);
}

static void test_conf_large_hello__151_cipher_suites_are_decode_error(void **state)
{
    (void)state;
    tb_answer a;
    many_suites(MAX_SUITES + 1, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
}

static void test_conf_large_hello__5000_cipher_suites_are_decode_error(void **state)
{
    (void)state;
    tb_answer a;
    many_suites(5000, &a);
    cs_expect_refusal(&server, &a, TB_ALERT_DECODE_ERROR, closed);
}

static void test_conf_large_hello__4000_unknown_extensions_are_ignored(void **state)
{
    (void)state;
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    h.n_unknown_ext = 4000; /* 16,000 bytes of empty extensions of unassigned types */
    tb_buf msg;
    tb_buf_init(&msg);
    tb_client_hello(&msg, &h);
    tb_answer a;
    send_msg(&msg, &a);
    expect_hello(&a);
    tb_buf_free(&msg);
}

static void test_conf_large_hello__4000_unknown_groups_are_ignored(void **state)
{
    (void)state;
    size_t n = 4000;
    uint16_t *groups = calloc(n, sizeof(*groups));
    assert_non_null(groups);
    for (size_t i = 0; i < n; i++) {
        groups[i] = (uint16_t)(0x2000 + i); /* unassigned */
    }
    groups[n - 1] = TB_GROUP_X25519;
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    h.groups = groups;
    h.n_groups = n;
    tb_buf msg;
    tb_buf_init(&msg);
    tb_client_hello(&msg, &h);
    tb_answer a;
    send_msg(&msg, &a);
    expect_hello(&a);
    tb_buf_free(&msg);
    free(groups);
}

static void test_conf_large_hello__4000_signature_schemes_are_accepted(void **state)
{
    (void)state;
    size_t n = 4000;
    uint16_t *sigalgs = calloc(n, sizeof(*sigalgs));
    assert_non_null(sigalgs);
    for (size_t i = 0; i < n; i++) {
        sigalgs[i] = (uint16_t)(0xe000 + i); /* unassigned */
    }
    sigalgs[0] = 0x0403; /* ecdsa_secp256r1_sha256, the certificate's, first */
    tb_hello h;
    tb_hello_tls13(&h, &x25519);
    h.sigalgs = sigalgs;
    h.n_sigalgs = n;
    tb_buf msg;
    tb_buf_init(&msg);
    tb_client_hello(&msg, &h);
    tb_answer a;
    send_msg(&msg, &a);
    expect_hello(&a);
    tb_buf_free(&msg);
    free(sigalgs);
}

/* @p n key shares for distinct groups, all named in supported_groups, X25519's last. */
static void many_key_shares(size_t n, tb_answer *a)
{
    uint16_t *groups = calloc(n, sizeof(*groups));
    tb_share *shares = calloc(n, sizeof(*shares));
    assert_non_null(groups);
    assert_non_null(shares);
    static const uint8_t one[1] = {0x42};
    for (size_t i = 0; i < n; i++) {
        groups[i] = (uint16_t)(0x2000 + i); /* unassigned: the server skips them */
        shares[i] = (tb_share){groups[i], one, sizeof(one)};
    }
    groups[n - 1] = TB_GROUP_X25519;
    shares[n - 1] = x25519;
    tb_hello h;
    tb_hello_tls13(&h, NULL);
    h.groups = groups;
    h.n_groups = n;
    h.shares = shares;
    h.n_shares = n;
    tb_buf msg;
    tb_buf_init(&msg);
    tb_client_hello(&msg, &h);
    send_msg(&msg, a);
    tb_buf_free(&msg);
    free(groups);
    free(shares);
}

static void test_conf_large_hello__24_key_shares_are_accepted(void **state)
{
    (void)state;
    tb_answer a;
    many_key_shares(24, &a);
    expect_hello(&a);
}

static void test_conf_large_hello__25_key_shares_are_accepted(void **state)
{
    (void)state;
    tb_answer a;
    many_key_shares(25, &a);
    expect_hello(&a);
}

static void test_conf_large_hello__1000_key_shares_are_accepted(void **state)
{
    (void)state;
    tb_answer a;
    many_key_shares(1000, &a);
    expect_hello(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_large_hello__16_kib_padding_over_two_records_is_accepted),
        cmocka_unit_test(test_conf_large_hello__hello_at_the_bound_is_accepted),
        cmocka_unit_test(test_conf_large_hello__hello_one_byte_over_the_bound_is_decode_error),
        cmocka_unit_test(test_conf_large_hello__64_kib_padding_is_decode_error),
        cmocka_unit_test(test_conf_large_hello__header_claiming_16_mib_is_refused_at_once),
        cmocka_unit_test(test_conf_large_hello__16_mib_hello_streamed_is_refused),
        cmocka_unit_test(test_conf_large_hello__150_cipher_suites_are_accepted),
        cmocka_unit_test(test_conf_large_hello__151_cipher_suites_are_decode_error),
        cmocka_unit_test(test_conf_large_hello__5000_cipher_suites_are_decode_error),
        cmocka_unit_test(test_conf_large_hello__4000_unknown_extensions_are_ignored),
        cmocka_unit_test(test_conf_large_hello__4000_unknown_groups_are_ignored),
        cmocka_unit_test(test_conf_large_hello__4000_signature_schemes_are_accepted),
        cmocka_unit_test(test_conf_large_hello__24_key_shares_are_accepted),
        cmocka_unit_test(test_conf_large_hello__25_key_shares_are_accepted),
        cmocka_unit_test(test_conf_large_hello__1000_key_shares_are_accepted),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

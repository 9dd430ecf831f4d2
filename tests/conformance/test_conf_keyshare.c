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
 * tested is the one the server must select. Valid shares (RFC 7748's X25519 test vector, the
 * P-256 generator, well-formed hybrids) get a ServerHello: the builder itself is right.
 *
 * X25519 (RFC 8446 4.2.8.2 takes RFC 7748's encoding): RFC 7748 5 says a receiver MUST mask
 * the top bit of the last byte and MUST accept non-canonical values (p .. 2^255 - 1) as if
 * reduced modulo p, so such values are valid shares; the low-order ones among them (0, 1
 * after masking or reducing) still give an all-zero secret and are refused.
 *
 * ML-KEM hybrids (draft-ietf-tls-ecdhe-mlkem): the client's share is the ML-KEM encapsulation
 * key and the ECDH share concatenated, X25519MLKEM768 as ek(1184) || X25519(32),
 * SecP256r1MLKEM768 as P-256(65) || ek(1184), SecP384r1MLKEM1024 as P-384(97) || ek(1568).
 * A wrong total length, an invalid ECDH part or an encapsulation key failing FIPS 203 7.2's
 * modulus check is refused with illegal_parameter, before the ServerHello.
 *
 * wolfSSL 5.9.2 computes the shared secret only after sending ServerHello (and then fails
 * without an alert): scripts/wolfssl-patches/0001-tls13-validate-key-share-before-server-
 * hello.patch moves the computation before it. The hybrids were already processed before
 * the ServerHello, but their failures closed without an alert: 0007-tls13-hybrid-key-share-
 * refused-with-illegal-parameter.patch. X25519 values with the top bit set or non-canonical
 * were refused: 0008-x25519-mask-top-bit-accept-non-canonical.patch.
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

/* The two X25519 points of order 8 (little endian). With a clamped scalar (a multiple of 8)
 * the shared secret is all zeros whatever the server's key (RFC 7748 6.1). */
static const uint8_t x25519_order8_a[32] = {
    0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
    0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
};
static const uint8_t x25519_order8_b[32] = {
    0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
    0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
};

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
    const uint16_t groups[1] = {group}; /* the named group alone, whatever the data */
    h.groups = groups;
    h.n_groups = 1;
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
    refused(TB_GROUP_X25519, x25519_order8_a, sizeof(x25519_order8_a));
}

static void test_conf_keyshare__x25519_other_low_order_point_is_illegal_parameter(void **state)
{
    (void)state;
    refused(TB_GROUP_X25519, x25519_order8_b, sizeof(x25519_order8_b));
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

/* ---- X25519 values RFC 7748 5 says to accept: top bit masked, non-canonical reduced -------- */

/* Writes the non-canonical u-coordinate p + @p v (@p v <= 18), little endian: p = 2^255 - 19
 * is 0xed, 30 bytes 0xff, 0x7f. */
static void x25519_p_plus(uint8_t out[32], unsigned v)
{
    memset(out, 0xff, 32);
    out[31] = 0x7f;
    out[0] = (uint8_t)(0xed + v);
}

static void test_conf_keyshare__x25519_value_with_top_bit_set_gets_a_server_hello(void **state)
{
    (void)state;
    uint8_t v[32];
    memcpy(v, tb_x25519_share, sizeof(v));
    v[31] |= 0x80; /* RFC 7748 5: masked by the receiver, the same point */
    accepted(TB_GROUP_X25519, v, sizeof(v));
}

static void test_conf_keyshare__x25519_non_canonical_value_gets_a_server_hello(void **state)
{
    (void)state;
    uint8_t v[32];
    x25519_p_plus(v, 9); /* p + 9: the base point u = 9, not reduced */
    accepted(TB_GROUP_X25519, v, sizeof(v));
    x25519_p_plus(v, 9);
    v[31] |= 0x80; /* and with the top bit set as well */
    accepted(TB_GROUP_X25519, v, sizeof(v));
}

static void test_conf_keyshare__x25519_zero_with_top_bit_set_is_illegal_parameter(void **state)
{
    (void)state;
    uint8_t v[32] = {0};
    v[31] = 0x80; /* masks to 0 */
    refused(TB_GROUP_X25519, v, sizeof(v));
}

static void test_conf_keyshare__x25519_low_order_point_with_top_bit_set_is_illegal_parameter(
    void **state)
{
    (void)state;
    uint8_t v[32];
    memcpy(v, x25519_order8_a, sizeof(v));
    v[31] |= 0x80;
    refused(TB_GROUP_X25519, v, sizeof(v));
}

static void test_conf_keyshare__x25519_non_canonical_zero_and_one_are_illegal_parameter(
    void **state)
{
    (void)state;
    uint8_t v[32];
    x25519_p_plus(v, 0); /* p: 0 once reduced */
    refused(TB_GROUP_X25519, v, sizeof(v));
    x25519_p_plus(v, 1); /* p + 1: 1 once reduced, a low-order point */
    refused(TB_GROUP_X25519, v, sizeof(v));
}

/* ---- ML-KEM hybrids (draft-ietf-tls-ecdhe-mlkem) ------------------------------------------- */

/* The largest hybrid share: P-384 (97) + ML-KEM-1024 (1568), plus room for a byte too many. */
#define HYBRID_MAX (97u + TB_MLKEM_EK_LEN(4) + 1u)

typedef struct hybrid {
    uint16_t group;
    unsigned k;           /* ML-KEM-768: 3, ML-KEM-1024: 4 */
    const uint8_t *ecdh;  /* a valid ECDH share */
    size_t ecdh_len;
    bool ecdh_first;      /* the NIST hybrids: ECDH || ek; X25519MLKEM768: ek || X25519 */
} hybrid;

static const hybrid x25519mlkem768 = {TB_GROUP_X25519MLKEM768, 3, tb_x25519_share, 32, false};
static const hybrid p256mlkem768 = {TB_GROUP_SECP256R1MLKEM768, 3, tb_p256_generator, 65, true};
static const hybrid p384mlkem1024 = {TB_GROUP_SECP384R1MLKEM1024, 4, tb_p384_generator, 97, true};

/* Builds @p h's share into @p out from @p ecdh (NULL: the valid one; its length is the
 * group's) and an encapsulation key (@p bad_ek: coefficient @p bad_index is @p bad_value).
 * @return the share's length. */
static size_t hybrid_share(const hybrid *h, const uint8_t *ecdh, bool bad_ek, size_t bad_index,
                           unsigned bad_value, uint8_t out[HYBRID_MAX])
{
    size_t ek_len = TB_MLKEM_EK_LEN(h->k);
    uint8_t *ek = out + (h->ecdh_first ? h->ecdh_len : 0);
    uint8_t *ec = out + (h->ecdh_first ? 0 : ek_len);
    tb_mlkem_ek(ek, h->k, bad_ek, bad_index, bad_value);
    memcpy(ec, ecdh != NULL ? ecdh : h->ecdh, h->ecdh_len);
    return ek_len + h->ecdh_len;
}

static void hybrid_accepted(const hybrid *h, const uint8_t *ecdh)
{
    uint8_t share[HYBRID_MAX];
    size_t n = hybrid_share(h, ecdh, false, 0, 0, share);
    accepted(h->group, share, n);
}

static void hybrid_refused(const hybrid *h, const uint8_t *ecdh)
{
    uint8_t share[HYBRID_MAX];
    size_t n = hybrid_share(h, ecdh, false, 0, 0, share);
    refused(h->group, share, n);
}

static void test_conf_keyshare__valid_hybrid_shares_get_a_server_hello(void **state)
{
    (void)state;
    hybrid_accepted(&x25519mlkem768, NULL);
    hybrid_accepted(&p256mlkem768, NULL);
    hybrid_accepted(&p384mlkem1024, NULL);
}

static void test_conf_keyshare__hybrid_share_of_the_wrong_length_is_illegal_parameter(
    void **state)
{
    (void)state;
    const hybrid *all[] = {&x25519mlkem768, &p256mlkem768, &p384mlkem1024};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        uint8_t share[HYBRID_MAX] = {0};
        size_t n = hybrid_share(all[i], NULL, false, 0, 0, share);
        refused(all[i]->group, share, n - 1);  /* one byte short */
        refused(all[i]->group, share, n + 1);  /* one zero byte too many */
        refused(all[i]->group, share, TB_MLKEM_EK_LEN(all[i]->k)); /* no ECDH part */
        refused(all[i]->group, all[i]->ecdh, all[i]->ecdh_len);    /* the ECDH part alone */
    }
}

static void test_conf_keyshare__x25519mlkem768_all_zero_x25519_is_illegal_parameter(void **state)
{
    (void)state;
    const uint8_t zero[32] = {0};
    hybrid_refused(&x25519mlkem768, zero);
}

static void test_conf_keyshare__x25519mlkem768_low_order_x25519_is_illegal_parameter(
    void **state)
{
    (void)state;
    hybrid_refused(&x25519mlkem768, x25519_order8_b);
}

static void test_conf_keyshare__x25519mlkem768_x25519_with_top_bit_set_gets_a_server_hello(
    void **state)
{
    (void)state;
    uint8_t v[32];
    memcpy(v, tb_x25519_share, sizeof(v));
    v[31] |= 0x80; /* RFC 7748 5, as for X25519 alone */
    hybrid_accepted(&x25519mlkem768, v);
}

static void test_conf_keyshare__secp256r1mlkem768_point_off_the_curve_is_illegal_parameter(
    void **state)
{
    (void)state;
    uint8_t p[65];
    memcpy(p, tb_p256_generator, sizeof(p));
    p[64] ^= 0x01;
    hybrid_refused(&p256mlkem768, p);
}

static void test_conf_keyshare__secp256r1mlkem768_all_zero_point_is_illegal_parameter(
    void **state)
{
    (void)state;
    const uint8_t p[65] = {0x04};
    hybrid_refused(&p256mlkem768, p);
}

static void test_conf_keyshare__secp256r1mlkem768_point_not_uncompressed_is_illegal_parameter(
    void **state)
{
    (void)state;
    uint8_t p[65];
    memcpy(p, tb_p256_generator, sizeof(p));
    p[0] = 0x03; /* a compressed form's prefix, at the uncompressed length */
    hybrid_refused(&p256mlkem768, p);
}

static void test_conf_keyshare__secp384r1mlkem1024_point_off_the_curve_is_illegal_parameter(
    void **state)
{
    (void)state;
    uint8_t p[97];
    memcpy(p, tb_p384_generator, sizeof(p));
    p[96] ^= 0x01;
    hybrid_refused(&p384mlkem1024, p);
}

/* FIPS 203 7.2: ByteEncode12(ByteDecode12(ek)) must give ek back, i.e. every coefficient is
 * below q = 3329; draft-ietf-tls-ecdhe-mlkem: a failing key is refused with
 * illegal_parameter. */
static void ek_modulus_fails(const hybrid *h)
{
    const size_t n = 256u * h->k;
    const struct {
        size_t index;
        unsigned value;
    } bad[] = {{0, 3329}, {n - 1, 4095}, {n / 2 + 1, 3330}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t share[HYBRID_MAX];
        size_t len = hybrid_share(h, NULL, true, bad[i].index, bad[i].value, share);
        refused(h->group, share, len);
    }
}

static void test_conf_keyshare__x25519mlkem768_ek_failing_modulus_check_is_illegal_parameter(
    void **state)
{
    (void)state;
    ek_modulus_fails(&x25519mlkem768);
}

static void
test_conf_keyshare__secp256r1mlkem768_ek_failing_modulus_check_is_illegal_parameter(
    void **state)
{
    (void)state;
    ek_modulus_fails(&p256mlkem768);
}

static void
test_conf_keyshare__secp384r1mlkem1024_ek_failing_modulus_check_is_illegal_parameter(
    void **state)
{
    (void)state;
    ek_modulus_fails(&p384mlkem1024);
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
        cmocka_unit_test(test_conf_keyshare__x25519_value_with_top_bit_set_gets_a_server_hello),
        cmocka_unit_test(test_conf_keyshare__x25519_non_canonical_value_gets_a_server_hello),
        cmocka_unit_test(test_conf_keyshare__x25519_zero_with_top_bit_set_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__x25519_low_order_point_with_top_bit_set_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__x25519_non_canonical_zero_and_one_are_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__valid_hybrid_shares_get_a_server_hello),
        cmocka_unit_test(
            test_conf_keyshare__hybrid_share_of_the_wrong_length_is_illegal_parameter),
        cmocka_unit_test(test_conf_keyshare__x25519mlkem768_all_zero_x25519_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__x25519mlkem768_low_order_x25519_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__x25519mlkem768_x25519_with_top_bit_set_gets_a_server_hello),
        cmocka_unit_test(
            test_conf_keyshare__secp256r1mlkem768_point_off_the_curve_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__secp256r1mlkem768_all_zero_point_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__secp256r1mlkem768_point_not_uncompressed_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__secp384r1mlkem1024_point_off_the_curve_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__x25519mlkem768_ek_failing_modulus_check_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__secp256r1mlkem768_ek_failing_modulus_check_is_illegal_parameter),
        cmocka_unit_test(
            test_conf_keyshare__secp384r1mlkem1024_ek_failing_modulus_check_is_illegal_parameter),
    };
    if (!cs_have_certs(TERN_TEST_CERTS)) {
        ts_log("no test certificates in %s: skipped", TERN_TEST_CERTS);
        return 77;
    }
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* SPDX-License-Identifier: MIT */
/*
 * ssl/psk_hint.c, the TLS 1.2 PSK client's scan of the server's first flight: the hint of a
 * PSK suite's ServerKeyExchange and where the ServerHelloDone's record starts, whatever the
 * framing (one message per record, the whole flight in one record, fed a byte at a time);
 * a certificate suite, an unexpected record or a truncated ServerHello stop it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "psk_hint.h"

/* ---- building flights ------------------------------------------------------------------- */

typedef struct flight {
    uint8_t b[1024];
    size_t n;
} flight;

static void put(flight *f, const void *p, size_t n)
{
    assert_true(f->n + n <= sizeof f->b);
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

/* A handshake message: type, 24-bit length, body. */
static size_t message(uint8_t *out, uint8_t type, const uint8_t *body, size_t len)
{
    out[0] = type;
    out[1] = (uint8_t)(len >> 16);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    if (len > 0) {
        memcpy(out + 4, body, len);
    }
    return 4 + len;
}

static void record(flight *f, uint8_t type, const uint8_t *body, size_t len)
{
    uint8_t h[5] = {type, 3, 3, (uint8_t)(len >> 8), (uint8_t)len};
    put(f, h, 5);
    put(f, body, len);
}

/* ServerHello with @suite; session id of 32 bytes. */
static size_t server_hello(uint8_t *out, uint8_t s0, uint8_t s1)
{
    uint8_t body[2 + 32 + 1 + 32 + 2 + 1];
    size_t n = 0;
    body[n++] = 3;
    body[n++] = 3;
    memset(body + n, 0xaa, 32);
    n += 32;
    body[n++] = 32;
    memset(body + n, 0xbb, 32);
    n += 32;
    body[n++] = s0;
    body[n++] = s1;
    body[n++] = 0; /* compression */
    return message(out, 2, body, n);
}

static size_t key_exchange(uint8_t *out, const char *hint)
{
    uint8_t body[300];
    size_t len = strlen(hint);
    body[0] = (uint8_t)(len >> 8);
    body[1] = (uint8_t)len;
    memcpy(body + 2, hint, len);
    memset(body + 2 + len, 0x11, 40); /* (EC)DHE parameters, for a *DHE_PSK suite */
    return message(out, 12, body, 2 + len + 40);
}

static size_t hello_done(uint8_t *out)
{
    return message(out, 14, NULL, 0);
}

/* TLS_PSK_WITH_AES_128_GCM_SHA256 (RFC 5487) and ECDHE-RSA-AES128-GCM-SHA256 (RFC 5289). */
#define PSK_SUITE 0x00, 0xa8
#define CERT_SUITE 0xc0, 0x2f

/* Feeds @f in pieces of @step bytes (0: all at once); the result and the bytes taken. */
static int feed(tern__psk_hint_scan *sc, const flight *f, size_t step)
{
    int rc = TERN__PSK_HINT_MORE;
    for (size_t i = 0; i < f->n && rc == TERN__PSK_HINT_MORE;) {
        size_t n = step == 0 || f->n - i < step ? f->n - i : step;
        rc = tern__psk_hint_feed(sc, f->b + i, n);
        i += n;
    }
    return rc;
}

/* ---- tests ------------------------------------------------------------------------------------ */

static void test_psk_hint__one_message_per_record(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 7; step++) {
        flight f = {0};
        uint8_t m[512];
        record(&f, 22, m, server_hello(m, PSK_SUITE));
        record(&f, 22, m, key_exchange(m, "tern-test"));
        size_t done_at = f.n;
        record(&f, 22, m, hello_done(m));
        tern__psk_hint_scan sc = {0};
        assert_int_equal(feed(&sc, &f, step), TERN__PSK_HINT_HOLD);
        assert_string_equal(sc.hint, "tern-test");
        assert_int_equal(sc.hold_at, done_at);
    }
}

static void test_psk_hint__whole_flight_in_one_record(void **state)
{
    (void)state;
    for (size_t step = 0; step <= 3; step++) {
        uint8_t body[1024];
        size_t n = server_hello(body, PSK_SUITE);
        n += key_exchange(body + n, "gateway-7");
        n += hello_done(body + n);
        flight f = {0};
        uint8_t alert[2] = {1, 0}; /* a warning alert first: passed over */
        record(&f, 21, alert, 2);
        size_t start = f.n;
        record(&f, 22, body, n);
        tern__psk_hint_scan sc = {0};
        assert_int_equal(feed(&sc, &f, step), TERN__PSK_HINT_HOLD);
        assert_string_equal(sc.hint, "gateway-7");
        assert_int_equal(sc.hold_at, start); /* wolfSSL may read nothing of that record */
    }
}

static void test_psk_hint__messages_across_records(void **state)
{
    (void)state;
    uint8_t body[1024];
    size_t n = server_hello(body, PSK_SUITE);
    n += key_exchange(body + n, "split");
    n += hello_done(body + n);
    flight f = {0};
    size_t cut = 41, cut2 = n - 2; /* inside the ServerHello; inside the ServerHelloDone */
    record(&f, 22, body, cut);
    record(&f, 22, body + cut, cut2 - cut);
    size_t last = f.n;
    record(&f, 22, body + cut2, n - cut2);
    tern__psk_hint_scan sc = {0};
    assert_int_equal(feed(&sc, &f, 1), TERN__PSK_HINT_HOLD);
    assert_string_equal(sc.hint, "split");
    assert_int_equal(sc.hold_at, last); /* the record that completes the ServerHelloDone */
}

static void test_psk_hint__no_key_exchange_means_no_hint(void **state)
{
    (void)state;
    flight f = {0};
    uint8_t m[512];
    record(&f, 22, m, server_hello(m, PSK_SUITE));
    record(&f, 22, m, hello_done(m));
    tern__psk_hint_scan sc = {0};
    assert_int_equal(feed(&sc, &f, 0), TERN__PSK_HINT_HOLD);
    assert_string_equal(sc.hint, "");
}

static void test_psk_hint__what_stops_it(void **state)
{
    (void)state;
    uint8_t m[512];
    /* a certificate suite */
    flight f = {0};
    record(&f, 22, m, server_hello(m, CERT_SUITE));
    record(&f, 22, m, hello_done(m));
    tern__psk_hint_scan sc = {0};
    assert_int_equal(feed(&sc, &f, 0), TERN__PSK_HINT_STOP);
    /* application data, a change_cipher_spec, a bad version, an empty record */
    const uint8_t odd[][5] = {{23, 3, 3, 0, 1}, {20, 3, 3, 0, 1}, {22, 2, 0, 0, 1}, {22, 3, 3, 0, 0}};
    for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
        tern__psk_hint_scan s2 = {0};
        assert_int_equal(tern__psk_hint_feed(&s2, odd[k], 5), TERN__PSK_HINT_STOP);
    }
    /* a ServerHello whose session id claims 200 bytes */
    uint8_t body[40] = {3, 3};
    body[34] = 200;
    flight g = {0};
    record(&g, 22, m, message(m, 2, body, sizeof body));
    tern__psk_hint_scan s3 = {0};
    assert_int_equal(feed(&s3, &g, 0), TERN__PSK_HINT_STOP);
    /* a ServerKeyExchange before any ServerHello */
    flight h = {0};
    record(&h, 22, m, key_exchange(m, "x"));
    tern__psk_hint_scan s4 = {0};
    assert_int_equal(feed(&s4, &h, 0), TERN__PSK_HINT_STOP);
}

static void test_psk_hint__long_hint_is_cut(void **state)
{
    (void)state;
    char hint[201];
    memset(hint, 'h', 200);
    hint[200] = '\0';
    flight f = {0};
    uint8_t m[512];
    record(&f, 22, m, server_hello(m, PSK_SUITE));
    record(&f, 22, m, key_exchange(m, hint));
    record(&f, 22, m, hello_done(m));
    tern__psk_hint_scan sc = {0};
    assert_int_equal(feed(&sc, &f, 0), TERN__PSK_HINT_HOLD);
    assert_int_equal(strlen(sc.hint), TERN_PSK_MAX_IDENTITY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psk_hint__one_message_per_record),
        cmocka_unit_test(test_psk_hint__whole_flight_in_one_record),
        cmocka_unit_test(test_psk_hint__messages_across_records),
        cmocka_unit_test(test_psk_hint__no_key_exchange_means_no_hint),
        cmocka_unit_test(test_psk_hint__what_stops_it),
        cmocka_unit_test(test_psk_hint__long_hint_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The TLS engine (ssl/tls_engine.h) in memory: a client and a server engine, ciphertext pumped
 * between them by the test, no socket, no reactor, no thread, no port. Each case takes a few
 * milliseconds.
 *
 * Covered: every protocol/suite pair tern enables (TLS 1.3 AES-128-GCM, AES-256-GCM, ChaCha20,
 * AES-128-CCM; TLS 1.2 ECDHE-ECDSA and ECDHE-RSA with AES-GCM and ChaCha20); PSK in TLS 1.2 and
 * 1.3 answered inline, deferred (answered after some pump rounds) and rejected; resumption by
 * ticket (TLS 1.3 and 1.2); close_notify and half-close; verification errors as data (untrusted
 * root, name mismatch, expired) and as a refusal; flights fed one byte at a time; records split
 * at every point. Revocation: CRLs (file, DER, directory, memory) on both sides, loading errors;
 * stapled OCSP responses (good, revoked, unknown, another certificate's, not decodable) as ssl
 * errors with their bytes kept, must-staple; the other ssl errors (self-signed in the chain,
 * invalid purpose both ways, a bad signature, no client certificate, the verify depth).
 *
 * The pairing (queues, sides, the pump, the configurations) is tests/support/tls_pair.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tls_pair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TERN_TEST_CERTS
#error "TERN_TEST_CERTS must name the directory tests/certs/gen.sh wrote"
#endif

/* ---- the cases --------------------------------------------------------------------------- */

static void test_tls_engine__every_protocol_and_suite(void **state)
{
    (void)state;
    static const struct {
        enum tern_ssl_protocol max;
        const char *cert;
        const char *suite;
    } cases[] = {
        {TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-AES128-GCM-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-AES256-GCM-SHA384"},
        {TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-CHACHA20-POLY1305-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_3, "server-ec", "TLS13-AES128-CCM-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_3, "server-rsa", "TLS13-AES128-GCM-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-ec", "ECDHE-ECDSA-AES128-GCM-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-ec", "ECDHE-ECDSA-AES256-GCM-SHA384"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-ec", "ECDHE-ECDSA-CHACHA20-POLY1305"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-rsa", "ECDHE-RSA-AES128-GCM-SHA256"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-rsa", "ECDHE-RSA-AES256-GCM-SHA384"},
        {TERN_SSL_PROTOCOL_TLS1_2, "server-rsa", "ECDHE-RSA-CHACHA20-POLY1305"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tp_pair p;
        tern_ssl_config *sc = tp_server_cfg(cases[i].cert, cases[i].max, cases[i].suite);
        tern_ssl_config *cc = tp_client_cfg("ca.pem", cases[i].max, cases[i].suite);
        tp_side_init(&p.s, sc, true, NULL);
        tp_side_init(&p.c, cc, false, "localhost");
        tp_handshake_ok(&p, 0);
        assert_string_equal(wolfSSL_get_cipher_name(p.c.tls->ssl), cases[i].suite);
        assert_string_equal(wolfSSL_get_cipher_name(p.s.tls->ssl), cases[i].suite);
        assert_int_equal(tp_version_of(&p.c), cases[i].max == TERN_SSL_PROTOCOL_TLS1_3
                                                  ? TLS1_3_VERSION
                                                  : TLS1_2_VERSION);
        assert_int_equal(tern_ssl_error_list_count(p.c.tls->errors), 0);
        tp_exchange(&p, 0);
        tp_pair_free(&p);
    }
}

/* A PSK handshake with the server's answer given as @mode. */
static void psk_case(enum tern_ssl_protocol max, enum tp_psk_answer mode, size_t step)
{
    tp_pair p;
    tp_side_init(&p.s, tp_psk_cfg(max, NULL), true, NULL);
    tp_side_init(&p.c, tp_psk_cfg(max, NULL), false, NULL);
    assert_int_equal(tern__tls_set_psk(p.c.tls, "device-7", 8, tp_key32, sizeof(tp_key32)), 0);
    p.s.psk = mode;
    p.s.psk_defer = 3;
    p.s.psk_key = tp_key32;
    p.s.psk_key_len = sizeof(tp_key32);
    p.s.psk_hash = TERN_PSK_HASH_SHA256;
    tp_start_pair(&p);
    tp_pump(&p, step);
    assert_int_equal(p.s.psk_waits, mode == TP_PSK_DEFERRED ? 4 : 1);
    assert_string_equal(p.s.identity, "device-7");
    if (mode == TP_PSK_REJECT) {
        /* unknown identity: a random key, so it fails as a wrong key does (RFC 4279 2) */
        assert_true(p.c.err < 0 || p.s.err < 0);
        assert_false(p.c.done && p.s.done);
        tp_pair_free(&p);
        return;
    }
    if (p.c.err != 0 || p.s.err != 0) {
        char c[256] = "", s[256] = "";
        tern__tls_engine_failure(p.c.tls, false, c, sizeof(c));
        tern__tls_engine_failure(p.s.tls, false, s, sizeof(s));
        fail_msg("PSK %x mode %d step %zu: client %s (%s), server %s (%s)", (unsigned)max, mode,
                 step, tern_err_name(p.c.err), c, tern_err_name(p.s.err), s);
    }
    assert_true(p.c.done && p.s.done);
    assert_int_equal(p.s.tls->psk_state, TERN__PSK_STATE_KEY);
    assert_int_equal(tp_version_of(&p.s),
                     max == TERN_SSL_PROTOCOL_TLS1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
    assert_non_null(strstr(wolfSSL_get_cipher_name(p.s.tls->ssl),
                            max == TERN_SSL_PROTOCOL_TLS1_3 ? "TLS13" : "PSK"));
    tp_exchange(&p, step);
    tp_pair_free(&p);
}

static void test_tls_engine__psk_inline_deferred_rejected(void **state)
{
    (void)state;
    psk_case(TERN_SSL_PROTOCOL_TLS1_3, TP_PSK_INLINE, 0);
    psk_case(TERN_SSL_PROTOCOL_TLS1_3, TP_PSK_DEFERRED, 0);
    psk_case(TERN_SSL_PROTOCOL_TLS1_3, TP_PSK_REJECT, 0);
    psk_case(TERN_SSL_PROTOCOL_TLS1_2, TP_PSK_INLINE, 0);
    psk_case(TERN_SSL_PROTOCOL_TLS1_2, TP_PSK_DEFERRED, 0);
    psk_case(TERN_SSL_PROTOCOL_TLS1_2, TP_PSK_REJECT, 0);
    /* the identity read from a stream that comes one byte at a time */
    psk_case(TERN_SSL_PROTOCOL_TLS1_3, TP_PSK_DEFERRED, 1);
    psk_case(TERN_SSL_PROTOCOL_TLS1_2, TP_PSK_INLINE, 1);
}

static void resume_case(enum tern_ssl_protocol max)
{
    tern_ssl_config *sc = tp_server_cfg("server-ec", max, NULL);
    tern_ssl_config *cc = tp_client_cfg("ca.pem", max, NULL);
    uint8_t session[8192];
    tp_pair p;

    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(&p.c, cc, false, "localhost");
    tp_handshake_ok(&p, 0);
    tp_exchange(&p, 0); /* TLS 1.3: the ticket comes after the handshake, read with the data */
    assert_true(p.c.tls->ticket_due);
    assert_false(wolfSSL_session_reused(p.c.tls->ssl));
    ssize_t n = tern__tls_engine_session_export(p.c.tls, session, sizeof(session));
    assert_true(n > 0 && (size_t)n <= sizeof(session));
    tp_pair_free(&p);

    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(&p.c, cc, false, "localhost");
    tp_side_start(&p.s, true);
    tp_side_start(&p.c, false);
    assert_int_equal(tern__tls_engine_offer_session(p.c.tls, session, (size_t)n), 0);
    tp_pump(&p, 0);
    assert_int_equal(p.c.err, 0);
    assert_int_equal(p.s.err, 0);
    assert_true(p.c.done && p.s.done);
    assert_true(wolfSSL_session_reused(p.c.tls->ssl));
    assert_true(wolfSSL_session_reused(p.s.tls->ssl));
    tp_exchange(&p, 0);
    tp_pair_free(&p);

    /* garbage is refused before the handshake */
    tp_side_init(&p.c, cc, false, "localhost");
    tp_side_start(&p.c, false);
    assert_int_equal(tern__tls_engine_offer_session(p.c.tls, "nonsense", 8), TERN_EINVAL);
    tp_side_free(&p.c);
}

static void test_tls_engine__resumption_by_ticket(void **state)
{
    (void)state;
    resume_case(TERN_SSL_PROTOCOL_TLS1_3);
    resume_case(TERN_SSL_PROTOCOL_TLS1_2);
}

static void test_tls_engine__close_notify_and_half_close(void **state)
{
    (void)state;
    static const enum tern_ssl_protocol protos[] = {TERN_SSL_PROTOCOL_TLS1_3,
                                                    TERN_SSL_PROTOCOL_TLS1_2};
    for (size_t i = 0; i < 2; i++) {
        tp_pair p;
        tp_side_init(&p.s, tp_server_cfg("server-ec", protos[i], NULL), true, NULL);
        tp_side_init(&p.c, tp_client_cfg("ca.pem", protos[i], NULL), false, "localhost");
        tp_handshake_ok(&p, 0);
        /* the client closes its side after a last message */
        assert_int_equal(tern__tls_engine_write(p.c.tls, "bye", 3), 0);
        tern__tls_engine_close(p.c.tls);
        tp_pump(&p, 0);
        assert_true(p.s.closed);
        assert_false(p.c.closed);
        assert_int_equal(p.s.plain.len, 3);
        /* half-close: the server still writes, the client still reads */
        size_t before = p.c.plain.len;
        assert_int_equal(tern__tls_engine_write(p.s.tls, "still here", 10), 0);
        tp_pump(&p, 0);
        assert_int_equal(p.c.plain.len - before, 10);
        assert_memory_equal(p.c.plain.data + before, "still here", 10);
        assert_false(p.c.closed);
        tern__tls_engine_close(p.s.tls);
        tp_pump(&p, 0);
        assert_true(p.c.closed);
        assert_int_equal(p.c.err, 0);
        assert_int_equal(p.s.err, 0);
        tp_pair_free(&p);
    }
}

/* A client of @ca connecting to @cert as "localhost": the certificate problems it collects
 * when the application decides (deferred), and the refusal when nobody may ignore them. */
static void verify_case(const char *cert, const char *ca, enum tern_ssl_error_code want)
{
    tp_pair p;
    tern_ssl_config *sc = tp_server_cfg(cert, TERN_SSL_PROTOCOL_TLS1_3, NULL);
    tern_ssl_config *cc = tp_client_cfg(ca, TERN_SSL_PROTOCOL_TLS1_3, NULL);

    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(&p.c, cc, false, "localhost");
    p.c.tls->verify_deferred = true; /* errors are data: the handshake completes */
    tp_handshake_ok(&p, 0);
    const tern_ssl_error_list *errs = p.c.tls->errors;
    bool found = false;
    for (size_t i = 0; i < tern_ssl_error_list_count(errs); i++) {
        found |= tern_ssl_error_code(tern_ssl_error_list_at(errs, i)) == want;
    }
    if (!found) {
        size_t n = tern_ssl_error_list_count(errs);
        fail_msg("%s: %s not among %zu errors (first: %s)", cert, tern_ssl_error_code_name(want),
                 n, n > 0 ? tern_ssl_error_string(tern_ssl_error_list_at(errs, 0)) : "-");
    }
    tp_pair_free(&p);

    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(&p.c, cc, false, "localhost");
    tp_start_pair(&p);
    tp_pump(&p, 0);
    assert_int_equal(p.c.err, TERN_E_TLS_VERIFY);
    assert_true(p.c.tls->verify_failed);
    assert_true(p.s.err < 0); /* told by an alert */
    char why[256] = "";
    assert_int_equal(tern__tls_engine_failure(p.c.tls, false, why, sizeof(why)),
                     TERN_E_TLS_VERIFY);
    assert_non_null(strstr(why, "sent alert"));
    tp_pair_free(&p);
}

static void test_tls_engine__verification_errors_are_data(void **state)
{
    (void)state;
    verify_case("server-ec", "other-ca.pem", TERN_SSL_ERR_UNABLE_TO_GET_ISSUER);
    verify_case("wronghost", "ca.pem", TERN_SSL_ERR_HOSTNAME_MISMATCH);
    verify_case("expired", "ca.pem", TERN_SSL_ERR_EXPIRED);
}

/* The handshake and the data with every call given one byte. */
static void test_tls_engine__one_byte_at_a_time(void **state)
{
    (void)state;
    static const enum tern_ssl_protocol protos[] = {TERN_SSL_PROTOCOL_TLS1_3,
                                                    TERN_SSL_PROTOCOL_TLS1_2};
    for (size_t i = 0; i < 2; i++) {
        tp_pair p;
        tp_side_init(&p.s, tp_server_cfg("server-ec", protos[i], NULL), true, NULL);
        tp_side_init(&p.c, tp_client_cfg("ca.pem", protos[i], NULL), false, "localhost");
        tp_handshake_ok(&p, 1);
        tp_exchange(&p, 1);
        tern__tls_engine_close(p.c.tls);
        tp_pump(&p, 1);
        assert_true(p.s.closed);
        tp_pair_free(&p);
    }
}

/* One record, fed in two parts, split at each of its bytes in turn. */
static void test_tls_engine__records_split_at_every_point(void **state)
{
    (void)state;
    static const enum tern_ssl_protocol protos[] = {TERN_SSL_PROTOCOL_TLS1_3,
                                                    TERN_SSL_PROTOCOL_TLS1_2};
    for (size_t i = 0; i < 2; i++) {
        tp_pair p;
        tp_side_init(&p.s, tp_server_cfg("server-ec", protos[i], NULL), true, NULL);
        tp_side_init(&p.c, tp_client_cfg("ca.pem", protos[i], NULL), false, "localhost");
        tp_handshake_ok(&p, 0);
        tp_exchange(&p, 0); /* the client has read the tickets: the wire is quiet */
        assert_int_equal(tp_queue_pending(&p.c.out), 0);
        assert_int_equal(tern__tls_engine_write(p.c.tls, "split me", 8), 0);
        size_t rec = tp_queue_pending(&p.c.out);
        assert_true(rec > 8 + 5);
        for (size_t k = 1; k < rec; k++) {
            if (k > 1) {
                assert_int_equal(tern__tls_engine_write(p.c.tls, "split me", 8), 0);
                assert_int_equal(tp_queue_pending(&p.c.out), rec);
            }
            size_t before = p.s.plain.len;
            tp_side_read(&p.s, &p.c.out, k);
            assert_int_equal(p.s.plain.len, before); /* half a record: nothing yet */
            assert_int_equal(tp_queue_pending(&p.c.out), rec - k);
            tp_side_read(&p.s, &p.c.out, SIZE_MAX);
            assert_int_equal(p.s.err, 0);
            assert_int_equal(p.s.plain.len - before, 8);
            assert_memory_equal(p.s.plain.data + before, "split me", 8);
        }
        tp_pair_free(&p);
    }
}

/* ---- revocation and the rest of the ssl error list (QSslError) ------------------------------ */

static char *cert_path(const char *name)
{
    static char path[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof(path[i]), "%s/%s", TERN_TEST_CERTS, name);
    return path[i];
}

static uint8_t *slurp(const char *name, size_t *len)
{
    FILE *f = fopen(cert_path(name), "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    assert_true(*len > 0 && *len < 65536);
    return buf;
}

static bool has_error(const tern__tls *tls, enum tern_ssl_error_code want)
{
    for (size_t i = 0; i < tern_ssl_error_list_count(tls->errors); i++) {
        if (tern_ssl_error_code(tern_ssl_error_list_at(tls->errors, i)) == want) {
            return true;
        }
    }
    return false;
}

static void no_errors(const tp_side *sd, const char *what)
{
    size_t n = tern_ssl_error_list_count(sd->tls->errors);
    if (n != 0) {
        fail_msg("%s: %zu unexpected errors, first: %s", what, n,
                 tern_ssl_error_string(tern_ssl_error_list_at(sd->tls->errors, 0)));
    }
}

enum { CLIENT_SEES, SERVER_SEES };
enum { DATA_ONLY, ALSO_REFUSED };

/* @sc against @cc ("localhost"): with nobody to ignore it (ALSO_REFUSED), the deciding side
 * refuses the handshake with TERN_E_TLS_VERIFY; deferring, the handshake completes and its
 * errors include @want. (Refused first: wolfSSL adds a chain's CA certificate whose error the
 * callback let pass to the configuration's trusted certificates, see the guide.) */
static void expect_error(tern_ssl_config *sc, tern_ssl_config *cc, int who,
                         enum tern_ssl_error_code want, int refused)
{
    tp_pair p;
    tp_side *v;
    if (refused == ALSO_REFUSED) {
        tp_side_init(&p.s, sc, true, NULL);
        tp_side_init(&p.c, cc, false, "localhost");
        v = who == SERVER_SEES ? &p.s : &p.c;
        tp_start_pair(&p);
        tp_pump(&p, 0);
        if (v->err != TERN_E_TLS_VERIFY) {
            fail_msg("%s: the %s did not refuse (%s)", tern_ssl_error_code_name(want),
                     who == SERVER_SEES ? "server" : "client", tern_err_name(v->err));
        }
        tp_pair_free(&p);
    }
    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(&p.c, cc, false, "localhost");
    v = who == SERVER_SEES ? &p.s : &p.c;
    v->tls->verify_deferred = true;
    tp_handshake_ok(&p, 0);
    if (!has_error(v->tls, want)) {
        size_t n = tern_ssl_error_list_count(v->tls->errors);
        fail_msg("%s not among the %s's %zu errors (first: %s)", tern_ssl_error_code_name(want),
                 who == SERVER_SEES ? "server" : "client", n,
                 n > 0 ? tern_ssl_error_string(tern_ssl_error_list_at(v->tls->errors, 0)) : "-");
    }
    tp_pair_free(&p);
}

static tern_ssl_config *with_client_cert(tern_ssl_config *cfg, const char *name)
{
    char pem[64], key[64];
    snprintf(pem, sizeof(pem), "%s.pem", name);
    snprintf(key, sizeof(key), "%s.key", name);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, cert_path(pem),
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, cert_path(key),
                                                          TERN_ENCODING_PEM, NULL), 0);
    return cfg;
}

/* A server asking for a client certificate of ca.pem (and @also). */
static tern_ssl_config *verifying_server(const char *also)
{
    tern_ssl_config *sc = tp_server_cfg("server-ec", TERN_SSL_PROTOCOL_TLS1_3, NULL);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(sc, TERN_VERIFY_VERIFY_PEER), 0);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(sc, cert_path("ca.pem"),
                                                              TERN_ENCODING_PEM), 0);
    if (also != NULL) {
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(sc, cert_path(also),
                                                                  TERN_ENCODING_PEM), 0);
    }
    return sc;
}

static void test_tls_engine__crl_revokes_on_both_sides(void **state)
{
    (void)state;
    /* a client with the CA's CRL (PEM file, DER file, directory, memory) */
    for (int how = 0; how < 4; how++) {
        tern_ssl_config *cc = tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL);
        size_t len;
        uint8_t *der = how == 3 ? slurp("crl.der", &len) : NULL;
        int rc = how == 0   ? tern_ssl_config_add_crl_file(cc, cert_path("crl.pem"), TERN_ENCODING_PEM)
                 : how == 1 ? tern_ssl_config_add_crl_file(cc, cert_path("crl.der"), TERN_ENCODING_DER)
                 : how == 2 ? tern_ssl_config_add_crl_dir(cc, cert_path("crls"))
                            : tern_ssl_config_add_crl(cc, der, len, TERN_ENCODING_DER);
        free(der);
        assert_int_equal(rc, 0);
        expect_error(tp_server_cfg("revoked-server", TERN_SSL_PROTOCOL_TLS1_3, NULL), cc,
                     CLIENT_SEES, TERN_SSL_ERR_CERTIFICATE_REVOKED, ALSO_REFUSED);
        /* a certificate the CRL does not list is fine */
        tp_pair p;
        tp_side_init(&p.s, tp_server_cfg("server-ec", TERN_SSL_PROTOCOL_TLS1_3, NULL), true, NULL);
        tp_side_init(&p.c, cc, false, "localhost");
        tp_handshake_ok(&p, 0);
        no_errors(&p.c, "server-ec with the CRL");
        tp_pair_free(&p);
    }
    /* TLS 1.2 too */
    tern_ssl_config *cc12 = tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_2, NULL);
    assert_int_equal(tern_ssl_config_add_crl_file(cc12, cert_path("crl.pem"), TERN_ENCODING_PEM), 0);
    expect_error(tp_server_cfg("revoked-server", TERN_SSL_PROTOCOL_TLS1_2, NULL), cc12, CLIENT_SEES,
                 TERN_SSL_ERR_CERTIFICATE_REVOKED, ALSO_REFUSED);

    /* a server verifying client certificates */
    tern_ssl_config *sc = verifying_server("other-ca.pem");
    assert_int_equal(tern_ssl_config_add_crl_file(sc, cert_path("crl.pem"), TERN_ENCODING_PEM), 0);
    tern_ssl_config *revoked =
        with_client_cert(tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), "revoked-client");
    expect_error(sc, revoked, SERVER_SEES, TERN_SSL_ERR_CERTIFICATE_REVOKED, ALSO_REFUSED);
    /* a client of a CA without a CRL: the server cannot tell */
    tern_ssl_config *other =
        with_client_cert(tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), "other-client");
    expect_error(sc, other, SERVER_SEES, TERN_SSL_ERR_UNABLE_TO_GET_CRL, ALSO_REFUSED);
    tp_pair p;
    tp_side_init(&p.s, sc, true, NULL);
    tp_side_init(
        &p.c, with_client_cert(tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), "client"),
        false, "localhost");
    tp_handshake_ok(&p, 0);
    no_errors(&p.s, "client.pem with the CRL");
    tp_pair_free(&p);
}

static void test_tls_engine__crl_loading_errors_name_the_file(void **state)
{
    (void)state;
    tern_ssl_config *cfg = tp_keep(tern_ssl_config_new());
    /* the issuer must be trusted first: the CRL's signature is checked */
    assert_int_equal(tern_ssl_config_add_crl_file(cfg, cert_path("crl.pem"), TERN_ENCODING_PEM),
                     TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "crl.pem: its issuer is not trusted"));
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, cert_path("other-ca.pem"),
                                                              TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_add_crl_file(cfg, cert_path("crl.pem"), TERN_ENCODING_PEM),
                     TERN_EINVAL);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, cert_path("ca.pem"),
                                                              TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_add_crl_file(cfg, cert_path("ca.pem"), TERN_ENCODING_PEM),
                     TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "ca.pem: no PEM CRL in it"));
    assert_int_equal(tern_ssl_config_add_crl_file(cfg, cert_path("missing.pem"), TERN_ENCODING_PEM),
                     TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "missing.pem"));
    assert_int_equal(tern_ssl_config_add_crl_dir(cfg, cert_path("no-such-dir")), TERN_EINVAL);
    /* a directory without a CRL (a certificate only) */
    char dir[] = "/tmp/tern-crl-XXXXXX", file[64];
    assert_non_null(mkdtemp(dir));
    snprintf(file, sizeof(file), "%s/ca.pem", dir);
    size_t len;
    uint8_t *pem = slurp("ca.pem", &len);
    FILE *f = fopen(file, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(pem, 1, len, f), len);
    fclose(f);
    free(pem);
    int rc = tern_ssl_config_add_crl_dir(cfg, dir);
    unlink(file);
    rmdir(dir);
    assert_int_equal(rc, TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "no PEM CRL in it"));
    if (tern_ssl_config_add_crl_file(cfg, cert_path("crl.pem"), TERN_ENCODING_PEM) != 0) {
        fail_msg("crl.pem: %s", tern_ssl_config_error_string(cfg));
    }
}

/* The stapled response a test server sends, whatever it says (wolfSSL's OpenSSL-style status
 * callback: nothing checks it, as a misconfigured or lying server would). */
static const uint8_t *staple_data;
static size_t staple_len;

static int staple_cb(WOLFSSL *ssl, void *arg)
{
    (void)arg;
    unsigned char *copy = malloc(staple_len);
    assert_non_null(copy);
    memcpy(copy, staple_data, staple_len);
    assert_int_equal(wolfSSL_set_tlsext_status_ocsp_resp(ssl, copy, (int)staple_len),
                     WOLFSSL_SUCCESS);
    return WOLFSSL_OCSP_STATUS_CB_OK;
}

static tern_ssl_config *stapling_server(const char *cert, enum tern_ssl_protocol max)
{
    tern_ssl_config *sc = tp_server_cfg(cert, max, NULL);
    assert_int_equal(wolfSSL_CTX_set_tlsext_status_cb(sc->server_ctx, staple_cb), WOLFSSL_SUCCESS);
    return sc;
}

static tern_ssl_config *ocsp_client(enum tern_ocsp_policy policy, enum tern_ssl_protocol max)
{
    tern_ssl_config *cc = tp_client_cfg("ca.pem", max, NULL);
    assert_int_equal(tern_ssl_config_set_ocsp_stapling(cc, policy), 0);
    return cc;
}

static void test_tls_engine__ocsp_verdicts_are_ssl_errors(void **state)
{
    (void)state;
    static const enum tern_ssl_protocol protos[] = {TERN_SSL_PROTOCOL_TLS1_3,
                                                    TERN_SSL_PROTOCOL_TLS1_2};
    static const uint8_t try_later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
    size_t good_len, revoked_len, unknown_len;
    uint8_t *good = slurp("ocsp-server.resp", &good_len);
    uint8_t *revoked = slurp("revoked-server.resp", &revoked_len);
    uint8_t *unknown = slurp("ocsp-unknown.resp", &unknown_len);
    /* wolfSSL refuses a response that does not decode as a successful one (decodes false:
     * garbage, a responder's tryLater) before tern sees it: the handshake fails with
     * bad_certificate_status_response, as it does when nobody may ignore the others */
    static const struct {
        const char *cert, *resp;
        enum tern_ssl_error_code want; /* 0: none */
        bool decodes;
    } cases[] = {
        {"ocsp-server", "good", 0, true},
        {"revoked-server", "revoked", TERN_SSL_ERR_CERTIFICATE_REVOKED, true},
        {"ocsp-server", "unknown", TERN_SSL_ERR_OCSP_STATUS_UNKNOWN, true},
        {"ocsp-server", "revoked", TERN_SSL_ERR_OCSP_RESPONSE_CANNOT_BE_TRUSTED, true}, /* another's */
        {"ocsp-server", "try_later", TERN_SSL_ERR_OCSP_TRY_LATER, false},
        {"ocsp-server", "garbage", TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE, false},
    };
    for (size_t v = 0; v < 2; v++) {
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
            const char *r = cases[i].resp;
            staple_data = strcmp(r, "good") == 0      ? good
                          : strcmp(r, "revoked") == 0 ? revoked
                          : strcmp(r, "unknown") == 0 ? unknown
                          : strcmp(r, "try_later") == 0 ? try_later
                                                        : (const uint8_t *)"garbage!";
            staple_len = strcmp(r, "good") == 0      ? good_len
                         : strcmp(r, "revoked") == 0 ? revoked_len
                         : strcmp(r, "unknown") == 0 ? unknown_len
                         : strcmp(r, "try_later") == 0 ? sizeof(try_later)
                                                       : 8;
            tern_ssl_config *sc = stapling_server(cases[i].cert, protos[v]);
            tern_ssl_config *cc = ocsp_client(TERN_OCSP_REQUEST, protos[v]);
            tp_pair p;
            tp_side_init(&p.s, sc, true, NULL);
            tp_side_init(&p.c, cc, false, "localhost");
            p.c.tls->verify_deferred = true;
            if (!cases[i].decodes) {
                tp_start_pair(&p);
                tp_pump(&p, 0);
                assert_int_equal(p.c.err, TERN_E_TLS_HANDSHAKE);
                tp_pair_free(&p);
                continue;
            }
            tp_handshake_ok(&p, 0);
            /* the bytes as stapled, whatever they say */
            assert_non_null(p.c.tls->ocsp_resp);
            assert_int_equal(p.c.tls->ocsp_resp_len, staple_len);
            assert_memory_equal(p.c.tls->ocsp_resp, staple_data, staple_len);
            if (cases[i].want == 0) {
                no_errors(&p.c, r);
            } else {
                if (!has_error(p.c.tls, cases[i].want)) {
                    fail_msg("TLS 1.%d %s/%s: %s missing", 3 - (int)v, cases[i].cert, r,
                             tern_ssl_error_code_name(cases[i].want));
                }
                /* the error names the server's certificate */
                const tern_ssl_error *e = tern_ssl_error_list_at(p.c.tls->errors, 0);
                if (tern_ssl_error_certificate(e) == NULL ||
                    strstr(tern_ssl_error_string(e), "(OCSP)") == NULL) {
                    fail_msg("TLS 1.%d %s/%s: %s", 3 - (int)v, cases[i].cert, r,
                             tern_ssl_error_string(e));
                }
            }
            tp_pair_free(&p);
            if (cases[i].want != 0) { /* nobody may ignore it: refused in the handshake */
                expect_error(sc, cc, CLIENT_SEES, cases[i].want, ALSO_REFUSED);
            }
        }
        /* must staple: nothing stapled is an error; merely asking is fine */
        tern_ssl_config *plain = tp_server_cfg("ocsp-server", protos[v], NULL);
        expect_error(plain, ocsp_client(TERN_OCSP_REQUIRE, protos[v]), CLIENT_SEES,
                     TERN_SSL_ERR_OCSP_NO_RESPONSE, DATA_ONLY);
        tp_pair p;
        tp_side_init(&p.s, plain, true, NULL);
        tp_side_init(&p.c, ocsp_client(TERN_OCSP_REQUEST, protos[v]), false, "localhost");
        tp_handshake_ok(&p, 0);
        no_errors(&p.c, "REQUEST without a staple");
        assert_null(p.c.tls->ocsp_resp);
        tp_pair_free(&p);
        /* a good staple satisfies REQUIRE */
        staple_data = good;
        staple_len = good_len;
        tp_side_init(&p.s, stapling_server("ocsp-server", protos[v]), true, NULL);
        tp_side_init(&p.c, ocsp_client(TERN_OCSP_REQUIRE, protos[v]), false, "localhost");
        tp_handshake_ok(&p, 0);
        no_errors(&p.c, "REQUIRE with a good staple");
        tp_pair_free(&p);
    }
    free(good);
    free(revoked);
    free(unknown);
}

/* The verdict parser alone: responder statuses, and what is not a response. */
static void test_tls_engine__ocsp_verdict_parser(void **state)
{
    (void)state;
    static const struct {
        uint8_t bytes[8];
        size_t len;
        int want;
    } cases[] = {
        {{0x30, 0x03, 0x0a, 0x01, 0x01}, 5, TERN_SSL_ERR_OCSP_MALFORMED_REQUEST},
        {{0x30, 0x03, 0x0a, 0x01, 0x02}, 5, TERN_SSL_ERR_OCSP_INTERNAL_ERROR},
        {{0x30, 0x03, 0x0a, 0x01, 0x03}, 5, TERN_SSL_ERR_OCSP_TRY_LATER},
        {{0x30, 0x03, 0x0a, 0x01, 0x05}, 5, TERN_SSL_ERR_OCSP_SIG_REQUIRED},
        {{0x30, 0x03, 0x0a, 0x01, 0x06}, 5, TERN_SSL_ERR_OCSP_UNAUTHORIZED},
        {{0x30, 0x03, 0x0a, 0x01, 0x04}, 5, TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE},
        {{0x30, 0x03, 0x0a, 0x01, 0x00}, 5, TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE}, /* no bytes */
        {{0x30, 0x04, 0x0a, 0x01, 0x00}, 5, TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE}, /* short */
        {{0x30, 0x84, 0xff, 0xff, 0xff, 0xff}, 6, TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE},
        {{0}, 0, TERN_SSL_ERR_OCSP_MALFORMED_RESPONSE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(tern__ocsp_verdict(cases[i].bytes, cases[i].len, 0), cases[i].want);
    }
    size_t len;
    uint8_t *good = slurp("ocsp-server.resp", &len);
    assert_int_equal(tern__ocsp_verdict(good, len, 0), 0);
    /* ten years on, its nextUpdate is past */
    assert_int_equal(tern__ocsp_verdict(good, len, (int64_t)4102444800), /* 2100 */
                     TERN_SSL_ERR_OCSP_RESPONSE_EXPIRED);
    for (size_t cut = 0; cut < len; cut++) { /* every truncation is refused, none crashes */
        assert_int_not_equal(tern__ocsp_verdict(good, cut, 0), 0);
    }
    free(good);
    uint8_t *revoked = slurp("revoked-server.resp", &len);
    assert_int_equal(tern__ocsp_verdict(revoked, len, 0), TERN_SSL_ERR_CERTIFICATE_REVOKED);
    free(revoked);
    uint8_t *unknown = slurp("ocsp-unknown.resp", &len);
    assert_int_equal(tern__ocsp_verdict(unknown, len, 0), TERN_SSL_ERR_OCSP_STATUS_UNKNOWN);
    free(unknown);
}

/* The ssl errors no test produced before: each from a certificate made for it (gen.sh). */
static void test_tls_engine__the_rest_of_the_ssl_errors(void **state)
{
    (void)state;
    /* the chain ends in a self-signed root the client does not trust */
    expect_error(tp_server_cfg("server-rsa", TERN_SSL_PROTOCOL_TLS1_3, NULL),
                 tp_client_cfg("other-ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), CLIENT_SEES,
                 TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN, ALSO_REFUSED);
    /* a client certificate (clientAuth only) presented by a server, and the reverse */
    expect_error(tp_server_cfg("client", TERN_SSL_PROTOCOL_TLS1_3, NULL),
                 tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), CLIENT_SEES,
                 TERN_SSL_ERR_INVALID_PURPOSE, ALSO_REFUSED);
    expect_error(
        verifying_server(NULL),
        with_client_cert(tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), "server-ec"),
        SERVER_SEES, TERN_SSL_ERR_INVALID_PURPOSE, ALSO_REFUSED);
    /* an issuer that is not a CA (sent in the chain) */
    expect_error(tp_server_cfg("notca-leaf", TERN_SSL_PROTOCOL_TLS1_3, NULL),
                 tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), CLIENT_SEES,
                 TERN_SSL_ERR_INVALID_CA_CERTIFICATE, ALSO_REFUSED);
    /* one bit of the signature flipped */
    expect_error(tp_server_cfg("badsig", TERN_SSL_PROTOCOL_TLS1_3, NULL),
                 tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL), CLIENT_SEES,
                 TERN_SSL_ERR_SIGNATURE_FAILURE, ALSO_REFUSED);
    /* a VERIFY_PEER server, a client without a certificate */
    expect_error(verifying_server(NULL), tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL),
                 SERVER_SEES, TERN_SSL_ERR_NO_PEER_CERTIFICATE, ALSO_REFUSED);
    expect_error(verifying_server(NULL), tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_2, NULL),
                 SERVER_SEES, TERN_SSL_ERR_NO_PEER_CERTIFICATE, ALSO_REFUSED);
}

/* The verify depth is enforced: the CA certificates above the peer's own, the trust anchor
 * included (whether the peer sent it or the client has it). */
static void test_tls_engine__verify_depth_is_enforced(void **state)
{
    (void)state;
    static const char *const servers[] = {"server-ec" /* leaf */, "server-rsa" /* + root */};
    for (size_t i = 0; i < 2; i++) {
        tern_ssl_config *d0 = tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL);
        assert_int_equal(tern_ssl_config_set_peer_verify_depth(d0, 0), 0);
        expect_error(tp_server_cfg(servers[i], TERN_SSL_PROTOCOL_TLS1_3, NULL), d0, CLIENT_SEES,
                     TERN_SSL_ERR_CHAIN_TOO_LONG, ALSO_REFUSED);
        tern_ssl_config *d1 = tp_client_cfg("ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL);
        assert_int_equal(tern_ssl_config_set_peer_verify_depth(d1, 1), 0);
        tp_pair p;
        tp_side_init(&p.s, tp_server_cfg(servers[i], TERN_SSL_PROTOCOL_TLS1_3, NULL), true, NULL);
        tp_side_init(&p.c, d1, false, "localhost");
        tp_handshake_ok(&p, 0);
        no_errors(&p.c, servers[i]);
        tp_pair_free(&p);
    }
}

/* Errors an application lets through are for that connection only: a CA of the chain that
 * did not verify must not become trusted for every later connection of the configuration
 * (wolfSSL added it to the context's shared store: patch 0009). */
static void test_tls_engine__errors_let_through_teach_no_trust(void **state)
{
    (void)state;
    tern_ssl_config *sc = tp_server_cfg("server-rsa", TERN_SSL_PROTOCOL_TLS1_3, NULL);
    tern_ssl_config *cc = tp_client_cfg("other-ca.pem", TERN_SSL_PROTOCOL_TLS1_3, NULL);
    for (int round = 0; round < 2; round++) {
        tp_pair p;
        tp_side_init(&p.s, sc, true, NULL);
        tp_side_init(&p.c, cc, false, "localhost");
        p.c.tls->verify_deferred = true; /* the application looks at the errors, goes on */
        tp_handshake_ok(&p, 0);
        assert_true(has_error(p.c.tls, TERN_SSL_ERR_SELF_SIGNED_IN_CHAIN));
        tp_pair_free(&p);
        /* the next connection on the same configuration, nobody letting errors through */
        tp_side_init(&p.s, sc, true, NULL);
        tp_side_init(&p.c, cc, false, "localhost");
        tp_start_pair(&p);
        tp_pump(&p, 0);
        if (p.c.err != TERN_E_TLS_VERIFY) {
            fail_msg("round %d: the untrusted root became trusted (%s)", round,
                     tern_err_name(p.c.err));
        }
        tp_pair_free(&p);
    }
}

int main(void)
{
    FILE *fp = fopen(TERN_TEST_CERTS "/expired.pem", "r");
    if (fp == NULL) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n",
                TERN_TEST_CERTS);
        return 77;
    }
    fclose(fp);
#define T(fn) cmocka_unit_test_setup_teardown(fn, tp_setup, tp_teardown)
    const struct CMUnitTest tests[] = {
        T(test_tls_engine__every_protocol_and_suite),
        T(test_tls_engine__psk_inline_deferred_rejected),
        T(test_tls_engine__resumption_by_ticket),
        T(test_tls_engine__close_notify_and_half_close),
        T(test_tls_engine__verification_errors_are_data),
        T(test_tls_engine__one_byte_at_a_time),
        T(test_tls_engine__records_split_at_every_point),
        T(test_tls_engine__crl_revokes_on_both_sides),
        T(test_tls_engine__crl_loading_errors_name_the_file),
        T(test_tls_engine__ocsp_verdicts_are_ssl_errors),
        T(test_tls_engine__ocsp_verdict_parser),
        T(test_tls_engine__the_rest_of_the_ssl_errors),
        T(test_tls_engine__verify_depth_is_enforced),
        T(test_tls_engine__errors_let_through_teach_no_trust),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

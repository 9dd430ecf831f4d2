/* SPDX-License-Identifier: MIT */
/*
 * TLS configuration pieces not covered elsewhere: CA certificates from a directory (with a
 * file that is not a certificate beside them), and the local certificate a connection
 * presented, seen from both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#define CERTS TERN_TEST_CERTS

static tern_certificate *server_local_ref; /* taken on the reactor, compared after join */

static void on_encrypted(tern_socket *s, void *user)
{
    const tern_certificate *c = tern_socket_local_certificate(s);
    if (c != NULL && server_local_ref == NULL) {
        server_local_ref = tern_certificate_ref((tern_certificate *)c);
    }
}

static const tern_socket_events server_events = {.encrypted = on_encrypted};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &server_events, NULL);
    tern_socket_start_server_encryption(s);
}

static tern_certificate *load(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    tern_certificate *c = tern_certificate_new(buf, n, TERN_ENCODING_PEM);
    assert_non_null(c);
    return c;
}

static void test_tls_config__ca_directory_and_local_certificates(void **state)
{
    if (access(CERTS "/ca.pem", R_OK) != 0) {
        skip();
    }
    /* a directory with the CA and a file that is not a certificate */
    char dir[] = "/tmp/tern-cadir.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], cmd[600];
    snprintf(cmd, sizeof(cmd), "cp %s/ca.pem %s/ca.pem && echo 'not a certificate' > %s/README",
             CERTS, dir, dir);
    assert_int_equal(system(cmd), 0);

    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    tern_runtime *rt = tern_runtime_new(&o);
    tern_ssl_config *scfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_local_certificate_file(scfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(scfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    tern_server *srv = tern_server_new(rt, scfg, on_incoming, NULL);
    tern_ssl_config_unref(scfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    assert_int_equal(tern_runtime_start(rt), 0);

    tern_reactor *r = tern_reactor_new();
    tern_ssl_config *ccfg = tern_ssl_config_new();
    /* a missing directory is a clear error */
    assert_int_equal(tern_ssl_config_add_ca_certificates_dir(ccfg, "/nonexistent/tern"), TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(ccfg), "/nonexistent/tern"));
    assert_int_equal(tern_ssl_config_add_ca_certificates_dir(ccfg, dir), 0);
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
    tern_ssl_config_unref(ccfg);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", tern_server_port(srv),
                                                           "localhost"), 0);
    /* verification against the directory's CA succeeds (VERIFY_PEER is the client default) */
    assert_int_equal(tern_socket_wait_for_encrypted(s, 5000), 0);
    /* the client presented no certificate; the server presented server-ec.pem */
    assert_null(tern_socket_local_certificate(s));
    tern_certificate *expected = load(CERTS "/server-ec.pem");
    assert_true(tern_certificate_equals(tern_socket_peer_certificate(s), expected));
    tern_socket_close(s);
    assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
    tern_socket_free(s);
    tern_reactor_free(r);

    tern_runtime_stop(rt, 1000);
    tern_runtime_join(rt); /* the server's events ran before: server_local_ref is set */
    assert_non_null(server_local_ref);
    assert_true(tern_certificate_equals(server_local_ref, expected));
    tern_certificate_unref(server_local_ref);
    tern_certificate_unref(expected);
    tern_runtime_free(rt);

    snprintf(path, sizeof(path), "rm -rf %s", dir);
    assert_int_equal(system(path), 0);
}

static void on_psk_unused(tern_socket *s, tern_psk_authenticator *a, void *user)
{
    fail_msg("a certificate client must not reach the PSK lookup");
}

static void on_mixed_incoming(tern_server *srv, tern_socket *s, void *user)
{
    static const tern_socket_events ev = {.psk_authentication_required = on_psk_unused};
    tern_socket_set_events(s, &ev, NULL);
    tern_socket_start_server_encryption(s);
}

/* A server with a certificate AND PSK: clients without a PSK still get the certificate
 * handshake on TLS 1.2 and 1.3 (the PSK parser must not mistake a certificate suite's
 * ClientKeyExchange for a PSK identity). */
/* A server with the EC test certificate on a started 1-reactor runtime; @p configure (may be
 * NULL) adds to its configuration first. */
static tern_server *ec_server(tern_runtime **rt, void (*configure)(tern_ssl_config *cfg))
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    *rt = tern_runtime_new(&o);
    tern_ssl_config *scfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_local_certificate_file(scfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(scfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    if (configure != NULL) {
        configure(scfg);
    }
    tern_server *srv = tern_server_new(*rt, scfg, on_mixed_incoming, NULL);
    tern_ssl_config_unref(scfg);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    assert_int_equal(tern_runtime_start(*rt), 0);
    return srv;
}

static void with_psk(tern_ssl_config *cfg)
{
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
}

static void x25519_only(tern_ssl_config *cfg)
{
    assert_int_equal(tern_ssl_config_set_groups(cfg, "X25519"), 0);
    assert_int_equal(tern_ssl_config_set_groups(cfg, "X25519:brainpool"), TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "brainpool"));
    assert_int_equal(tern_ssl_config_set_groups(cfg, ""), TERN_EINVAL);
}

static void test_tls_config__psk_and_certificate_on_one_server(void **state)
{
    if (access(CERTS "/ca.pem", R_OK) != 0) {
        skip();
    }
    tern_runtime *rt;
    tern_server *srv = ec_server(&rt, with_psk);

    tern_reactor *r = tern_reactor_new();
    for (int v = 0; v < 2; v++) {
        tern_ssl_config *ccfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(ccfg, CERTS "/ca.pem",
                                                                  TERN_ENCODING_PEM), 0);
        enum tern_ssl_protocol p = v == 0 ? TERN_SSL_PROTOCOL_TLS1_2 : TERN_SSL_PROTOCOL_TLS1_3;
        assert_int_equal(tern_ssl_config_set_protocol_range(ccfg, p, p), 0);
        tern_socket *s = tern_socket_new(r);
        assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
        tern_ssl_config_unref(ccfg);
        assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1",
                                                               tern_server_port(srv), "localhost"), 0);
        assert_int_equal(tern_socket_wait_for_encrypted(s, 5000), 0);
        assert_int_equal(tern_socket_session_protocol(s), (int)p);
        assert_null(strstr(tern_socket_session_cipher(s), "PSK"));
        tern_socket_abort(s);
        tern_socket_free(s);
    }
    tern_reactor_free(r);
    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);
    tern_runtime_free(rt);
}

/* Key-exchange groups: a TLS 1.3 server that allows only X25519 serves a client whose list
 * has it (first or not) and refuses one offering P-256 alone; unknown names are refused.
 * (A TLS 1.2 server picks among the client's curves whatever its list: wolfSSL's choice.) */
static void test_tls_config__groups(void **state)
{
    if (access(CERTS "/ca.pem", R_OK) != 0) {
        skip();
    }
    tern_runtime *rt;
    tern_server *srv = ec_server(&rt, x25519_only);

    static const struct {
        const char *groups;
        int tls;
        bool ok;
    } cases[] = {
        {"X25519:P-256", 13, true}, {"P-256:x25519", 13, true}, {"P-256", 13, false},
        {"X25519", 12, true},
    };
    tern_reactor *r = tern_reactor_new();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tern_ssl_config *ccfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(ccfg, CERTS "/ca.pem",
                                                                  TERN_ENCODING_PEM), 0);
        enum tern_ssl_protocol p =
            cases[i].tls == 12 ? TERN_SSL_PROTOCOL_TLS1_2 : TERN_SSL_PROTOCOL_TLS1_3;
        assert_int_equal(tern_ssl_config_set_protocol_range(ccfg, p, p), 0);
        assert_int_equal(tern_ssl_config_set_groups(ccfg, cases[i].groups), 0);
        tern_socket *s = tern_socket_new(r);
        assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
        tern_ssl_config_unref(ccfg);
        assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1",
                                                               tern_server_port(srv), "localhost"), 0);
        int rc = tern_socket_wait_for_encrypted(s, 5000);
        if (cases[i].ok != (rc == 0)) {
            fail_msg("groups %s over TLS 1.%d: %s (%s)", cases[i].groups, cases[i].tls % 10,
                     tern_err_name(rc), tern_socket_error_string(s));
        }
        if (tern_socket_state(s) != TERN_SOCKET_STATE_UNCONNECTED) {
            tern_socket_abort(s);
        }
        tern_socket_free(s);
    }
    tern_reactor_free(r);
    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);
    tern_runtime_free(rt);
}

/* TLS half-close (RFC 8446 6.1): the client sends its data then close_notify with
 * shutdown_write; the server reads to the end, answers, closes; the client reads the answer
 * and both ends finish cleanly. */
static size_t half_got;

static void half_read(tern_socket *s, void *user)
{
    char buf[65536];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        half_got += (size_t)n;
    }
}

static void half_finished(tern_socket *s, void *user)
{
    char msg[64];
    int n = snprintf(msg, sizeof(msg), "got %zu\n", half_got);
    tern_socket_write(s, msg, (size_t)n);
    tern_socket_close(s);
}

static void half_incoming(tern_server *srv, tern_socket *s, void *user)
{
    static const tern_socket_events ev = {.ready_read = half_read, .read_finished = half_finished};
    tern_socket_set_events(s, &ev, NULL);
    tern_socket_set_half_close(s, true);
    tern_socket_start_server_encryption(s);
}

static void test_tls_config__tls_half_close(void **state)
{
    if (access(CERTS "/ca.pem", R_OK) != 0) {
        skip();
    }
    for (int v = 0; v < 2; v++) {
        enum tern_ssl_protocol p = v == 0 ? TERN_SSL_PROTOCOL_TLS1_3 : TERN_SSL_PROTOCOL_TLS1_2;
        tern_runtime_options o;
        tern_runtime_options_init(&o);
        o.reactors = 1;
        tern_runtime *rt = tern_runtime_new(&o);
        tern_ssl_config *scfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_set_local_certificate_file(scfg, CERTS "/server-ec.pem",
                                                                    TERN_ENCODING_PEM), 0);
        assert_int_equal(tern_ssl_config_set_private_key_file(scfg, CERTS "/server-ec.key",
                                                              TERN_ENCODING_PEM, NULL), 0);
        assert_int_equal(tern_ssl_config_set_protocol_range(scfg, p, p), 0);
        tern_server *srv = tern_server_new(rt, scfg, half_incoming, NULL);
        tern_ssl_config_unref(scfg);
        assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
        half_got = 0;
        assert_int_equal(tern_runtime_start(rt), 0);

        tern_reactor *r = tern_reactor_new();
        tern_ssl_config *ccfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(ccfg, CERTS "/ca.pem",
                                                                  TERN_ENCODING_PEM), 0);
        tern_socket *s = tern_socket_new(r);
        assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
        tern_ssl_config_unref(ccfg);
        tern_socket_set_half_close(s, true);
        assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1",
                                                               tern_server_port(srv), "localhost"), 0);
        static char data[300000];
        memset(data, 'x', sizeof(data));
        assert_int_equal(tern_socket_write(s, data, sizeof(data)), 0);
        assert_int_equal(tern_socket_wait_for_encrypted(s, 5000), 0);
        assert_int_equal(tern_socket_shutdown_write(s), 0);
        char line[64] = "";
        for (int i = 0; i < 100 && !tern_socket_can_read_line(s); i++) {
            tern_socket_wait_for_ready_read(s, 100);
        }
        assert_true(tern_socket_read_line(s, line, sizeof(line)) > 0);
        assert_string_equal(line, "got 300000\n");
        assert_int_equal(tern_socket_wait_for_disconnected(s, 5000), 0);
        assert_int_equal(tern_socket_error(s), 0); /* an orderly end both ways */
        tern_socket_free(s);
        tern_reactor_free(r);
        tern_runtime_stop(rt, 1000);
        tern_runtime_join(rt);
        tern_runtime_free(rt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_config__ca_directory_and_local_certificates),
        cmocka_unit_test(test_tls_config__psk_and_certificate_on_one_server),
        cmocka_unit_test(test_tls_config__tls_half_close),
        cmocka_unit_test(test_tls_config__groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

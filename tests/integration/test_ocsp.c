/* SPDX-License-Identifier: MIT */
/*
 * OCSP stapling end to end, in one process: a server on a runtime staples the test PKI's
 * response for ocsp-server.pem; clients on a standalone reactor ask (REQUEST, REQUIRE) or
 * not (OFF), against that server and against one without a response.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include <tern/tern.h>

#define CERTS TERN_TEST_CERTS

typedef struct fixture {
    tern_runtime *rt;
    uint16_t stapling_port, plain_port;
} fixture;

static void on_ready_read(tern_socket *s, void *user)
{
    char buf[4096];
    ssize_t n;
    while ((n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static const tern_socket_events echo_events = {.ready_read = on_ready_read};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &echo_events, NULL);
    tern_socket_start_server_encryption(s);
}

static tern_server *server(tern_runtime *rt, bool staple)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/ocsp-server.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/ocsp-server.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), 0);
    if (staple) {
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, CERTS "/ca.pem",
                                                                  TERN_ENCODING_PEM), 0);
        assert_int_equal(tern_ssl_config_set_ocsp_response_file(cfg, CERTS "/ocsp-server.resp"), 0);
    }
    tern_server *srv = tern_server_new(rt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_non_null(srv);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    return srv;
}

static int setup(void **state)
{
    FILE *f = fopen(CERTS "/ocsp-server.resp", "rb");
    if (f == NULL) {
        fprintf(stderr, "# no OCSP test files in %s\n", CERTS);
        exit(77);
    }
    fclose(f);
    fixture *fx = calloc(1, sizeof(*fx));
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    fx->rt = tern_runtime_new(&o);
    fx->stapling_port = tern_server_port(server(fx->rt, true));
    fx->plain_port = tern_server_port(server(fx->rt, false));
    assert_int_equal(tern_runtime_start(fx->rt), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    tern_runtime_stop(fx->rt, 0);
    tern_runtime_join(fx->rt);
    tern_runtime_free(fx->rt);
    free(fx);
    return 0;
}

/* Connects with @policy (and @tls12 only if asked); returns the wait_for_encrypted code and
 * the stapling result in *stapled. */
static int connect_with(uint16_t port, enum tern_ocsp_policy policy, bool tls12, int *stapled,
                        int64_t *produced)
{
    tern_reactor *r = tern_reactor_new();
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(r);
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, CERTS "/ca.pem",
                                                              TERN_ENCODING_PEM), 0);
    if (tls12) {
        assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                            TERN_SSL_PROTOCOL_TLS1_2), 0);
    }
    assert_int_equal(tern_ssl_config_set_ocsp_stapling(cfg, policy), 0);
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", port, "localhost"), 0);
    int rc = tern_socket_wait_for_encrypted(s, 5000);
    *stapled = rc == 0 ? tern_socket_ocsp_stapled(s, produced) : -1;
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    return rc;
}

static void test_ocsp__stapled_response_reaches_clients_that_ask(void **state)
{
    fixture *fx = *state;
    for (int tls12 = 0; tls12 <= 1; tls12++) {
        int stapled;
        int64_t produced = 0;
        assert_int_equal(connect_with(fx->stapling_port, TERN_OCSP_REQUEST, tls12, &stapled,
                                      &produced), 0);
        assert_int_equal(stapled, 1);
        /* gen.sh made the response minutes ago at most: producedAt is recent and not future */
        int64_t now = (int64_t)time(NULL);
        assert_true(produced > now - 30 * 86400 && produced <= now + 300);
        assert_int_equal(connect_with(fx->stapling_port, TERN_OCSP_REQUIRE, tls12, &stapled,
                                      NULL), 0);
        assert_int_equal(stapled, 1);
        /* a client that does not ask gets nothing stapled */
        assert_int_equal(connect_with(fx->stapling_port, TERN_OCSP_OFF, tls12, &stapled, NULL), 0);
        assert_int_equal(stapled, 0);
    }
}

static void test_ocsp__require_fails_without_a_stapled_response(void **state)
{
    fixture *fx = *state;
    int stapled;
    assert_int_equal(connect_with(fx->plain_port, TERN_OCSP_REQUEST, false, &stapled, NULL), 0);
    assert_int_equal(stapled, 0);
    int rc = connect_with(fx->plain_port, TERN_OCSP_REQUIRE, false, &stapled, NULL);
    assert_true(rc < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ocsp__stapled_response_reaches_clients_that_ask),
        cmocka_unit_test(test_ocsp__require_fails_without_a_stapled_response),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

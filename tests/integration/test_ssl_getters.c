/* SPDX-License-Identifier: MIT */
/*
 * A TLS socket's settings as QSslSocket shows them, end to end in one process: servers on a
 * runtime (one reactor), clients on a standalone reactor driven by the test thread.
 *
 * Covered: the library version functions; the socket's peer verify mode, depth and name, its
 * protocol range, private key, local certificate chain and configuration, before and after a
 * handshake; per-socket verify mode (client and server side) and depth; the process default
 * configuration (and its publication under concurrent readers); the local certificate set
 * from certificate objects; the in-memory private key setter; the system CA store;
 * `encrypted_bytes_written` and `tern_socket_flush`; the PSK authenticator's maximum lengths.
 *
 * Server counters are atomics written on the server reactor and read by the test thread.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern/tern.h>

#define CERTS TERN_TEST_CERTS

typedef struct fixture {
    tern_runtime *rt;
    uint16_t chain_port;  /* server-rsa.pem: the leaf and the CA, from the file */
    uint16_t object_port; /* the same chain, set from certificate objects */
    uint16_t peer_port;   /* TLS 1.2; accepted sockets set VERIFY_PEER on themselves */
    uint16_t psk_port;    /* PSK, answered in the event */
} fixture;

/* counters of the servers (server reactor -> test thread) */
static _Atomic uint64_t srv_encrypted, srv_failed, srv_chain_ok, srv_psk_events;
static _Atomic size_t srv_max_identity, srv_max_key, srv_identity_len;
static _Atomic int srv_complete_too_long;

static void echo_ready_read(tern_socket *s, void *user)
{
    char buf[16384];
    ssize_t n;
    while (tern_socket_write_room(s) >= sizeof(buf) &&
           (n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static void srv_bytes_written(tern_socket *s, size_t n, void *user)
{
    echo_ready_read(s, user);
}

/* counted for the VERIFY_PEER server only (user 1): other servers' events may still arrive
 * from a previous case */
static void srv_on_encrypted(tern_socket *s, void *user)
{
    if (user == (void *)1) {
        atomic_fetch_add(&srv_encrypted, 1);
    }
}

static void srv_on_disconnected(tern_socket *s, int reason, void *user)
{
    if (user == (void *)1 && !tern_socket_is_encrypted(s)) {
        atomic_fetch_add(&srv_failed, 1);
    }
}

static void srv_on_psk(tern_socket *s, tern_psk_authenticator *auth, void *user)
{
    static const uint8_t key64[65] = {7};
    atomic_store(&srv_max_identity, tern_psk_authenticator_maximum_identity_length(auth));
    atomic_store(&srv_max_key, tern_psk_authenticator_maximum_key_length(auth));
    atomic_store(&srv_identity_len, tern_psk_authenticator_identity(auth).len);
    /* one byte over the maximum is refused; the maximum itself is taken */
    atomic_store(&srv_complete_too_long, tern_psk_authenticator_complete(auth, key64, 65));
    tern_psk_authenticator_complete(auth, key64, 64);
    atomic_fetch_add(&srv_psk_events, 1);
}

static const tern_socket_events srv_events = {
    .ready_read = echo_ready_read,
    .bytes_written = srv_bytes_written,
    .encrypted = srv_on_encrypted,
    .disconnected = srv_on_disconnected,
    .psk_authentication_required = srv_on_psk,
};

/* The accepted socket's chain must be the file's: leaf then CA. */
static void check_local_chain(tern_socket *s)
{
    tern_certificate *chain[4] = {0};
    size_t n = tern_socket_local_certificate_chain(s, chain, 4);
    FILE *f = fopen(CERTS "/ca.pem", "rb");
    char pem[8192];
    size_t len = f != NULL ? fread(pem, 1, sizeof(pem), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    tern_certificate *ca = tern_certificate_new(pem, len, TERN_ENCODING_PEM);
    f = fopen(CERTS "/server-rsa.pem", "rb");
    len = f != NULL ? fread(pem, 1, sizeof(pem), f) : 0;
    if (f != NULL) {
        fclose(f);
    }
    tern_certificate *leaf = tern_certificate_new(pem, len, TERN_ENCODING_PEM);
    if (n == 2 && chain[0] != NULL && tern_certificate_equals(chain[0], leaf) &&
        tern_certificate_equals(chain[1], ca)) {
        atomic_fetch_add(&srv_chain_ok, 1);
    }
    tern_certificate_unref(ca);
    tern_certificate_unref(leaf);
    for (size_t i = 0; i < n && i < 4; i++) {
        tern_certificate_unref(chain[i]);
    }
}

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &srv_events, user);
    if (user == (void *)1) {
        tern_socket_set_peer_verify_mode(s, TERN_VERIFY_VERIFY_PEER);
    }
    if (user == (void *)2) {
        check_local_chain(s);
    }
    tern_socket_start_server_encryption(s);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(65536);
    assert_non_null(buf);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    assert_true(*len > 0);
    return buf;
}

static tern_certificate *cert_from(const char *path)
{
    size_t len;
    char *pem = slurp(path, &len);
    tern_certificate *c = tern_certificate_new(pem, len, TERN_ENCODING_PEM);
    free(pem);
    assert_non_null(c);
    return c;
}

static uint16_t server(tern_runtime *rt, tern_ssl_config *cfg, void *user)
{
    tern_server *srv = tern_server_new(rt, cfg, on_incoming, user);
    tern_ssl_config_unref(cfg);
    assert_non_null(srv);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), 0);
    return tern_server_port(srv);
}

static tern_ssl_config *rsa_chain_cfg(void)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-rsa.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-rsa.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), 0);
    return cfg;
}

static int setup(void **state)
{
    FILE *f = fopen(CERTS "/server-rsa.pem", "rb");
    if (f == NULL) {
        fprintf(stderr, "# no test certificates in %s\n", CERTS);
        exit(77);
    }
    fclose(f);
    fixture *fx = calloc(1, sizeof(*fx));
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    fx->rt = tern_runtime_new(&o);
    assert_non_null(fx->rt);

    fx->chain_port = server(fx->rt, rsa_chain_cfg(), NULL);

    /* the same chain from objects: the leaf (the file's first certificate) and the CA */
    tern_ssl_config *cfg = tern_ssl_config_new();
    tern_certificate *chain[2] = {cert_from(CERTS "/server-rsa.pem"), cert_from(CERTS "/ca.pem")};
    assert_int_equal(tern_ssl_config_set_local_certificate_chain(cfg, chain, 2), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-rsa.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE), 0);
    tern_certificate_unref(chain[0]);
    tern_certificate_unref(chain[1]);
    fx->object_port = server(fx->rt, cfg, (void *)2);

    /* default mode (QUERY_PEER on servers); the sockets ask for VERIFY_PEER themselves */
    cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(cfg, CERTS "/server-ec.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, CERTS "/ca.pem",
                                                              TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                        TERN_SSL_PROTOCOL_TLS1_2), 0);
    fx->peer_port = server(fx->rt, cfg, (void *)1);

    cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    fx->psk_port = server(fx->rt, cfg, NULL);

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
    tern_ssl_config_set_default(NULL);
    return 0;
}

/* A client configuration trusting @ca (NULL: nothing). */
static tern_ssl_config *client_cfg(const char *ca)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    if (ca != NULL) {
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, ca, TERN_ENCODING_PEM), 0);
    }
    return cfg;
}

/* Connects @s (configured by the caller) on its reactor; the wait_for_encrypted code. */
static int handshake(tern_socket *s, uint16_t port)
{
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", port, "localhost"), 0);
    return tern_socket_wait_for_encrypted(s, 5000);
}

static bool wait_u64(_Atomic uint64_t *v, uint64_t want)
{
    for (int i = 0; i < 500 && atomic_load(v) < want; i++) {
        usleep(10000);
    }
    return atomic_load(v) >= want;
}

/* ---- the cases ------------------------------------------------------------------------- */

static void test_ssl_getters__library_versions(void **state)
{
    (void)state;
    unsigned long run = tern_ssl_library_version_number();
    unsigned long built = tern_ssl_library_build_version_number();
    /* one static library: what runs is what tern was built against, and it is 5.x */
    assert_int_equal(run, built);
    assert_true(built >= 0x05000000UL && built < 0x06000000UL);
    /* wolfSSL's hex form 0xMMmmmppp written as digits is the version string */
    char want[32];
    snprintf(want, sizeof(want), "%lx.%lx.%lx", built >> 24, (built >> 12) & 0xfffUL,
             built & 0xfffUL);
    assert_string_equal(tern_ssl_library_build_version_string(), want);
    assert_string_equal(tern_ssl_library_version_string(), want);
    assert_true(tern_ssl_supports_ssl());
}

static void test_ssl_getters__socket_settings(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);

    /* nothing set: no configuration, the defaults */
    enum tern_ssl_protocol lo = TERN_SSL_PROTOCOL_TLS1_3, hi = TERN_SSL_PROTOCOL_TLS1_3;
    assert_null(tern_socket_ssl_config(s));
    assert_int_equal(tern_socket_protocol(s, &lo, &hi), TERN_EINVAL);
    assert_int_equal(lo, TERN_SSL_PROTOCOL_UNKNOWN);
    assert_int_equal(hi, TERN_SSL_PROTOCOL_UNKNOWN);
    assert_int_equal(tern_socket_peer_verify_mode(s), TERN_VERIFY_AUTO);
    assert_int_equal(tern_socket_peer_verify_depth(s), 9);
    assert_string_equal(tern_socket_peer_verify_name(s), "");
    assert_int_equal(tern_socket_private_key(s, NULL, 0), 0);
    assert_int_equal(tern_socket_local_certificate_chain(s, NULL, 0), 0);

    /* a client configuration with a certificate and a DER key from memory */
    tern_ssl_config *cfg = client_cfg(CERTS "/ca.pem");
    size_t der_len;
    char *der = slurp(CERTS "/server-ec.key.der", &der_len);
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, der, der_len, TERN_ENCODING_DER, NULL),
                     0);
    assert_int_equal(tern_ssl_config_set_protocol_range(cfg, TERN_SSL_PROTOCOL_TLS1_2,
                                                        TERN_SSL_PROTOCOL_TLS1_2), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(cfg, 7), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_VERIFY_PEER), 0);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);

    tern_ssl_config *got = tern_socket_ssl_config(s);
    assert_ptr_equal(got, cfg);
    tern_ssl_config_unref(got);
    tern_ssl_config_unref(cfg);
    assert_int_equal(tern_socket_protocol(s, &lo, &hi), 0);
    assert_int_equal(lo, TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(hi, TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(tern_socket_peer_verify_depth(s), 7);
    assert_int_equal(tern_socket_peer_verify_mode(s), TERN_VERIFY_VERIFY_PEER);

    /* the key comes back as it was given */
    assert_int_equal(tern_socket_private_key(s, NULL, 0), (ssize_t)der_len);
    uint8_t small[8], key[4096];
    assert_int_equal(tern_socket_private_key(s, small, sizeof(small)), TERN_ENOBUFS);
    assert_int_equal(tern_socket_private_key(s, key, sizeof(key)), (ssize_t)der_len);
    assert_memory_equal(key, der, der_len);
    free(der);

    tern_certificate *chain[2] = {0};
    assert_int_equal(tern_socket_local_certificate_chain(s, chain, 2), 1);
    tern_certificate *ec = cert_from(CERTS "/server-ec.pem");
    assert_true(tern_certificate_equals(chain[0], ec));
    tern_certificate_unref(ec);
    tern_certificate_unref(chain[0]);

    /* the socket's own mode and depth win over the configuration's */
    assert_int_equal(tern_socket_set_peer_verify_depth(s, 101), TERN_EINVAL);
    assert_int_equal(tern_socket_set_peer_verify_depth(s, 3), 0);
    assert_int_equal(tern_socket_peer_verify_depth(s), 3);
    assert_int_equal(tern_socket_set_peer_verify_mode(s, (enum tern_verify_mode)42), TERN_EINVAL);
    assert_int_equal(tern_socket_set_peer_verify_mode(s, TERN_VERIFY_QUERY_PEER), 0);
    assert_int_equal(tern_socket_peer_verify_mode(s), TERN_VERIFY_QUERY_PEER);

    /* after a handshake: the negotiated version beside the configured range */
    assert_int_equal(handshake(s, fx->chain_port), 0);
    assert_string_equal(tern_socket_peer_verify_name(s), "localhost");
    assert_int_equal(tern_socket_session_protocol(s), TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(tern_socket_protocol(s, &lo, &hi), 0);
    assert_int_equal(lo, TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(hi, TERN_SSL_PROTOCOL_TLS1_2);
    assert_int_equal(tern_socket_peer_verify_mode(s), TERN_VERIFY_QUERY_PEER);
    assert_int_equal(tern_socket_peer_verify_depth(s), 3);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
}

/* A client trusting the wrong CA fails verification; the same configuration with the socket's
 * own VERIFY_NONE connects. */
static void test_ssl_getters__per_socket_verify_mode_and_depth_on_clients(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    tern_ssl_config *wrong = client_cfg(CERTS "/other-ca.pem");
    tern_ssl_config *right = client_cfg(CERTS "/ca.pem");

    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, wrong), 0);
    assert_int_equal(handshake(s, fx->chain_port), TERN_E_TLS_VERIFY);
    tern_socket_free(s);

    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, wrong), 0);
    assert_int_equal(tern_socket_set_peer_verify_mode(s, TERN_VERIFY_NONE), 0);
    assert_int_equal(handshake(s, fx->chain_port), 0);
    tern_socket_abort(s);
    tern_socket_free(s);

    /* the socket's VERIFY_PEER on a configuration that says NONE: the wrong CA is refused */
    tern_ssl_config *lax = client_cfg(CERTS "/other-ca.pem");
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(lax, TERN_VERIFY_NONE), 0);
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, lax), 0);
    assert_int_equal(handshake(s, fx->chain_port), 0);
    tern_socket_abort(s);
    tern_socket_free(s);
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, lax), 0);
    assert_int_equal(tern_socket_set_peer_verify_mode(s, TERN_VERIFY_VERIFY_PEER), 0);
    assert_int_equal(handshake(s, fx->chain_port), TERN_E_TLS_VERIFY);
    tern_socket_free(s);
    tern_ssl_config_unref(lax);

    /* a depth of the socket's own with the right CA (the depth limit itself is
     * ssl_error's: here the setting reaches the handshake and reads back) */
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, right), 0);
    assert_int_equal(tern_socket_set_peer_verify_depth(s, 4), 0);
    assert_int_equal(handshake(s, fx->chain_port), 0);
    assert_int_equal(tern_socket_peer_verify_depth(s), 4);
    tern_socket_abort(s);
    tern_socket_free(s);

    tern_ssl_config_unref(wrong);
    tern_ssl_config_unref(right);
    tern_reactor_free(r);
}

/* The server's accepted sockets set VERIFY_PEER on themselves (the configuration only asks):
 * a client without a certificate is refused, one with a certificate of the CA is taken. */
static void test_ssl_getters__per_socket_verify_mode_on_servers(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    uint64_t failed = atomic_load(&srv_failed), ok = atomic_load(&srv_encrypted);

    tern_ssl_config *anon = client_cfg(CERTS "/ca.pem");
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, anon), 0);
    assert_true(handshake(s, fx->peer_port) < 0);
    tern_socket_free(s);
    tern_ssl_config_unref(anon);
    assert_true(wait_u64(&srv_failed, failed + 1));
    assert_int_equal(atomic_load(&srv_encrypted), ok);

    tern_ssl_config *with = client_cfg(CERTS "/ca.pem");
    assert_int_equal(tern_ssl_config_set_local_certificate_file(with, CERTS "/client.pem",
                                                                TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_private_key_file(with, CERTS "/client.key",
                                                          TERN_ENCODING_PEM, NULL), 0);
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, with), 0);
    assert_int_equal(handshake(s, fx->peer_port), 0);
    assert_true(wait_u64(&srv_encrypted, ok + 1));
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_ssl_config_unref(with);
    tern_reactor_free(r);
}

/* The chain set from objects is what the server holds and sends. */
static void test_ssl_getters__local_certificate_chain_from_objects(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    uint64_t chain_ok = atomic_load(&srv_chain_ok);
    tern_ssl_config *cfg = client_cfg(CERTS "/ca.pem");
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    assert_int_equal(handshake(s, fx->object_port), 0);
    assert_true(wait_u64(&srv_chain_ok, chain_ok + 1)); /* checked in incoming */
    tern_certificate *leaf = cert_from(CERTS "/server-rsa.pem");
    assert_true(tern_certificate_equals(tern_socket_peer_certificate(s), leaf));
    tern_certificate_unref(leaf);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_ssl_config_unref(cfg);

    /* the list's checks; the leaf alone (n 1) */
    tern_ssl_config *c2 = tern_ssl_config_new();
    tern_certificate *list[2] = {cert_from(CERTS "/server-ec.pem"), NULL};
    assert_int_equal(tern_ssl_config_set_local_certificate_chain(c2, list, 0), TERN_EINVAL);
    assert_int_equal(tern_ssl_config_set_local_certificate_chain(c2, list, 2), TERN_EINVAL);
    assert_int_equal(tern_ssl_config_set_local_certificate_chain(c2, list, 1), 0);
    tern_socket *s2 = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s2, c2), 0);
    tern_certificate *got[2] = {0};
    assert_int_equal(tern_socket_local_certificate_chain(s2, got, 2), 1);
    assert_true(tern_certificate_equals(got[0], list[0]));
    tern_certificate_unref(got[0]);
    assert_int_equal(tern_ssl_config_set_local_certificate_chain(c2, list, 1), TERN_EBUSY);
    tern_socket_free(s2);
    tern_certificate_unref(list[0]);
    tern_ssl_config_unref(c2);

    /* CA certificates from objects: trusted as from the file */
    tern_ssl_config *c3 = tern_ssl_config_new();
    tern_certificate *cas[2] = {cert_from(CERTS "/other-ca.pem"), NULL};
    assert_int_equal(tern_ssl_config_add_ca_certificate_list(c3, cas, 0), TERN_EINVAL);
    assert_int_equal(tern_ssl_config_add_ca_certificate_list(c3, cas, 2), TERN_EINVAL);
    cas[1] = cert_from(CERTS "/ca.pem");
    assert_int_equal(tern_ssl_config_add_ca_certificate_list(c3, cas, 2), 0);
    tern_certificate_unref(cas[0]);
    tern_certificate_unref(cas[1]);
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, c3), 0);
    assert_int_equal(handshake(s, fx->chain_port), 0);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_ssl_config_unref(c3);
    /* only the other CA: the same server is refused */
    tern_ssl_config *c4 = tern_ssl_config_new();
    tern_certificate *other = cert_from(CERTS "/other-ca.pem");
    assert_int_equal(tern_ssl_config_add_ca_certificate_list(c4, &other, 1), 0);
    tern_certificate_unref(other);
    s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, c4), 0);
    assert_int_equal(handshake(s, fx->chain_port), TERN_E_TLS_VERIFY);
    tern_socket_free(s);
    tern_ssl_config_unref(c4);
    tern_reactor_free(r);
}

static void *default_churn(void *arg)
{
    tern_ssl_config *mine = arg;
    for (int i = 0; i < 2000; i++) {
        tern_ssl_config_set_default((i & 1) != 0 ? mine : NULL);
        tern_ssl_config *d = tern_ssl_config_default();
        tern_ssl_config_unref(d);
    }
    return NULL;
}

static void test_ssl_getters__default_configuration(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    assert_null(tern_ssl_config_default());

    /* no configuration and no default: nothing to connect with */
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", fx->chain_port,
                                                           "localhost"), TERN_EINVAL);
    tern_socket_free(s);

    tern_ssl_config *def = client_cfg(CERTS "/ca.pem");
    assert_int_equal(tern_ssl_config_set_default(def), 0);
    tern_ssl_config *got = tern_ssl_config_default();
    assert_ptr_equal(got, def);
    tern_ssl_config_unref(got);
    /* published: frozen */
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(def, 3), TERN_EBUSY);

    s = tern_socket_new(r);
    got = tern_socket_ssl_config(s);
    assert_ptr_equal(got, def);
    tern_ssl_config_unref(got);
    assert_int_equal(handshake(s, fx->chain_port), 0);

    /* replacing the default leaves a socket that took it alone */
    tern_ssl_config *other = client_cfg(NULL);
    assert_int_equal(tern_ssl_config_set_default(other), 0);
    got = tern_socket_ssl_config(s);
    assert_ptr_equal(got, def);
    tern_ssl_config_unref(got);
    tern_socket_abort(s);
    tern_socket_free(s);

    /* readers and writers on several threads (TSan: the publication is race-free) */
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, default_churn, i == 0 ? def : other), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
    }
    assert_int_equal(tern_ssl_config_set_default(NULL), 0);
    assert_null(tern_ssl_config_default());
    tern_ssl_config_unref(def);
    tern_ssl_config_unref(other);
    tern_reactor_free(r);
}

/* ---- encrypted_bytes_written and flush ------------------------------------------------- */

typedef struct counts {
    size_t written, encrypted_written;
    int encrypted_events_in_flush;
} counts;

static void cl_bytes_written(tern_socket *s, size_t n, void *user)
{
    ((counts *)user)->written += n;
}

static void cl_encrypted_bytes_written(tern_socket *s, size_t n, void *user)
{
    ((counts *)user)->encrypted_written += n;
}

static const tern_socket_events counting = {
    .bytes_written = cl_bytes_written,
    .encrypted_bytes_written = cl_encrypted_bytes_written,
};

static void test_ssl_getters__encrypted_bytes_written_and_flush(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    tern_ssl_config *cfg = client_cfg(CERTS "/ca.pem");
    tern_socket *s = tern_socket_new(r);
    counts c = {0};
    tern_socket_set_events(s, &counting, &c);
    assert_int_equal(tern_socket_flush(s), TERN_ENOTCONN);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE, 4096), 0);
    assert_int_equal(handshake(s, fx->chain_port), 0);
    c.written = c.encrypted_written = 0; /* the handshake's records counted before */

    /* more than the kernel takes at once: records wait in the socket */
    enum { TOTAL = 1 << 20 };
    char *data = calloc(1, TOTAL);
    assert_int_equal(tern_socket_write(s, data, TOTAL), 0);
    size_t queued = tern_socket_encrypted_bytes_to_write(s);
    assert_true(queued > 0);
    /* the server reads meanwhile (it echoes; we do not read: its replies wait) */
    size_t after = queued;
    for (int i = 0; i < 100 && after == queued; i++) {
        usleep(10000);
        size_t ew = c.encrypted_written;
        assert_int_equal(tern_socket_flush(s), 0); /* sends now, without the loop */
        assert_int_equal(c.encrypted_written, ew); /* events come later, never inside */
        after = tern_socket_encrypted_bytes_to_write(s);
    }
    assert_true(after < queued);
    assert_int_equal(tern_socket_wait_for_bytes_written(s, 5000), 0);
    /* drain until every record went out: the events add up to more than the plaintext */
    for (int i = 0; i < 200 && (c.written < TOTAL || tern_socket_encrypted_bytes_to_write(s) > 0);
         i++) {
        char sink[65536];
        while (tern_socket_read(s, sink, sizeof(sink)) > 0) {
        }
        tern_reactor_run_once(r, 10);
    }
    assert_int_equal(tern_socket_encrypted_bytes_to_write(s), 0);
    assert_int_equal(c.written, TOTAL);
    assert_true(c.encrypted_written > TOTAL);           /* record headers and tags */
    assert_true(c.encrypted_written < TOTAL + TOTAL / 50); /* ... and nothing else */
    free(data);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_ssl_config_unref(cfg);
    tern_reactor_free(r);
}

/* ---- configuration loaders -------------------------------------------------------------- */

static void test_ssl_getters__in_memory_private_key(void **state)
{
    (void)state;
    size_t len;
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_private_key(cfg, NULL, 0, TERN_ENCODING_PEM, NULL),
                     TERN_EINVAL);
    char *pem = slurp(CERTS "/server-rsa.key", &len);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, pem, len, TERN_ENCODING_PEM, NULL), 0);
    free(pem);
    /* an encrypted key: refused without its passphrase, with a wrong one; taken with it */
    pem = slurp(CERTS "/server-rsa-enc.key", &len);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, pem, len, TERN_ENCODING_PEM, NULL),
                     TERN_EACCES);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, pem, len, TERN_ENCODING_PEM, "nope"),
                     TERN_EINVAL);
    free(pem);
    /* a key that does not match the certificate */
    assert_int_equal(tern_ssl_config_set_local_certificate_file(cfg, CERTS "/server-ec.pem",
                                                                TERN_ENCODING_PEM), 0);
    pem = slurp(CERTS "/server-rsa.key", &len);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, pem, len, TERN_ENCODING_PEM, NULL),
                     TERN_EINVAL);
    assert_non_null(strstr(tern_ssl_config_error_string(cfg), "does not match"));
    free(pem);
    pem = slurp(CERTS "/server-ec.key", &len);
    assert_int_equal(tern_ssl_config_set_private_key(cfg, pem, len, TERN_ENCODING_PEM, NULL), 0);
    free(pem);
    tern_ssl_config_unref(cfg);
}

static void test_ssl_getters__system_ca_certificates(void **state)
{
    (void)state;
    tern_ssl_config *cfg = tern_ssl_config_new();
    int rc = tern_ssl_config_add_system_ca_certificates(cfg);
    if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) == 0) {
        assert_int_equal(rc, 0); /* Debian's store is there: it must load */
    } else {
        assert_true(rc == 0 || rc == TERN_EINVAL);
    }
    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0); /* frozen now */
    assert_int_equal(tern_ssl_config_add_system_ca_certificates(cfg), TERN_EBUSY);
    tern_socket_free(s);
    tern_reactor_free(r);
    tern_ssl_config_unref(cfg);
}

/* ---- PSK: the authenticator's maximum lengths are the lengths accepted ------------------- */

static void test_ssl_getters__psk_maximum_lengths(void **state)
{
    fixture *fx = *state;
    tern_reactor *r = tern_reactor_new();
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_enable_psk(cfg, NULL), 0);
    uint64_t events = atomic_load(&srv_psk_events);

    tern_socket *s = tern_socket_new(r);
    assert_int_equal(tern_socket_set_ssl_config(s, cfg), 0);
    uint8_t id[TERN_PSK_MAX_IDENTITY + 1], key[TERN_PSK_MAX_KEY + 1] = {7};
    memset(id, 'i', sizeof(id));
    assert_int_equal(tern_socket_set_psk(s, id, sizeof(id), key, 32), TERN_EINVAL);
    assert_int_equal(tern_socket_set_psk(s, id, 1, key, sizeof(key)), TERN_EINVAL);
    assert_int_equal(tern_socket_set_psk(s, id, TERN_PSK_MAX_IDENTITY, key, TERN_PSK_MAX_KEY), 0);
    assert_int_equal(handshake(s, fx->psk_port), 0);
    assert_true(wait_u64(&srv_psk_events, events + 1));
    assert_int_equal(atomic_load(&srv_max_identity), TERN_PSK_MAX_IDENTITY);
    assert_int_equal(atomic_load(&srv_max_key), TERN_PSK_MAX_KEY);
    assert_int_equal(atomic_load(&srv_identity_len), TERN_PSK_MAX_IDENTITY); /* whole */
    assert_int_equal(atomic_load(&srv_complete_too_long), TERN_EINVAL);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_ssl_config_unref(cfg);
    tern_reactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ssl_getters__library_versions),
        cmocka_unit_test(test_ssl_getters__socket_settings),
        cmocka_unit_test(test_ssl_getters__per_socket_verify_mode_and_depth_on_clients),
        cmocka_unit_test(test_ssl_getters__per_socket_verify_mode_on_servers),
        cmocka_unit_test(test_ssl_getters__local_certificate_chain_from_objects),
        cmocka_unit_test(test_ssl_getters__default_configuration),
        cmocka_unit_test(test_ssl_getters__encrypted_bytes_written_and_flush),
        cmocka_unit_test(test_ssl_getters__in_memory_private_key),
        cmocka_unit_test(test_ssl_getters__system_ca_certificates),
        cmocka_unit_test(test_ssl_getters__psk_maximum_lengths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

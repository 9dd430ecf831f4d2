/* SPDX-License-Identifier: MIT */
/*
 * TLS configuration pieces not covered elsewhere: CA certificates from a directory (with a
 * file that is not a certificate beside them), and the local certificate a connection
 * presented, seen from both sides; key-exchange groups: hybrid post-quantum ones, tern's
 * defaults, refused names, and (through a relay counting ClientHellos) no HelloRetryRequest
 * where a key share fits.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#include "support.h"

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

/* The group of the EC server's last handshake, and how many it completed. */
static pthread_mutex_t server_group_lock = PTHREAD_MUTEX_INITIALIZER;
static char server_group[32];
static atomic_int server_handshakes;

static void on_group_encrypted(tern_socket *s, void *user)
{
    pthread_mutex_lock(&server_group_lock);
    snprintf(server_group, sizeof(server_group), "%s", tern_socket_session_group(s));
    pthread_mutex_unlock(&server_group_lock);
    atomic_fetch_add(&server_handshakes, 1);
}

static void on_mixed_incoming(tern_server *srv, tern_socket *s, void *user)
{
    static const tern_socket_events ev = {.psk_authentication_required = on_psk_unused,
                                          .encrypted = on_group_encrypted};
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

/* Groups this build lacks or that nobody knows are refused by name, never offered. */
static void test_tls_config__groups_refused(void **state)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    /* the hybrids are in tern's wolfSSL build (scripts/wolfssl.env: --enable-mlkem) */
    assert_int_equal(tern_ssl_config_set_groups(cfg, "X25519MLKEM768:SecP256r1MLKEM768:"
                                                     "SecP384r1MLKEM1024:X25519:P-256"), 0);
    assert_int_equal(tern_ssl_config_set_groups(cfg, "x25519mlkem768:secp256r1:prime256v1"), 0);
    /* X448 and ffdhe3072 exist in TLS but not in every build: an error naming them, or
     * accepted where the library has them */
    static const char *const maybe[] = {"X448", "ffdhe3072"};
    for (size_t i = 0; i < sizeof(maybe) / sizeof(maybe[0]); i++) {
        char list[64], want[64];
        snprintf(list, sizeof(list), "X25519:%s", maybe[i]);
        int rc = tern_ssl_config_set_groups(cfg, list);
        if (rc != 0) {
            assert_int_equal(rc, TERN_E_UNSUPPORTED);
            snprintf(want, sizeof(want), "groups: %s is not in this build", maybe[i]);
            assert_string_equal(tern_ssl_config_error_string(cfg), want);
        }
        ts_log("%s: %s", maybe[i], rc == 0 ? "in this build" : tern_ssl_config_error_string(cfg));
    }
    static const char *const bad[] = {"brainpoolP256r1", "X25519::P-256", "X25519:", ":X25519",
                                      "X25519MLKEM512", "ML-KEM-768"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tern_ssl_config_set_groups(cfg, bad[i]), TERN_EINVAL);
        assert_non_null(strstr(tern_ssl_config_error_string(cfg), "groups: unknown group"));
    }
    tern_ssl_config_unref(cfg);
}

/* A relay between a client and a server that counts the records of content type handshake
 * (22) the client sends. In TLS 1.3 only ClientHellos travel so (the client's Finished is
 * encrypted, RFC 8446 5.2): 1 is a 1-RTT handshake, 2 means the server answered with a
 * HelloRetryRequest for another key share (4.1.4), a round trip more. */
typedef struct relay {
    int lfd;
    uint16_t port, upstream;
    pthread_t thread;
    atomic_bool stop;
    atomic_int hello_records; /* of the connection being relayed */
} relay;

static void relay_count(relay *rl, const uint8_t *p, size_t n, uint8_t *hdr, size_t *have,
                        size_t *left)
{
    size_t i = 0;
    while (i < n) {
        if (*left > 0) {
            size_t take = *left < n - i ? *left : n - i;
            *left -= take;
            i += take;
            continue;
        }
        hdr[(*have)++] = p[i++];
        if (*have == 5) { /* type, legacy version, length (RFC 8446 5.1) */
            if (hdr[0] == 22) {
                atomic_fetch_add(&rl->hello_records, 1);
            }
            *left = (size_t)hdr[3] << 8 | hdr[4];
            *have = 0;
        }
    }
}

static void relay_pump(relay *rl, int c, int u)
{
    uint8_t hdr[5];
    size_t have = 0, left = 0;
    struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = u, .events = POLLIN}};
    while (!atomic_load(&rl->stop)) {
        if (poll(p, 2, 50) < 0 && errno != EINTR) {
            return;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].revents == 0) {
                continue;
            }
            uint8_t buf[16384];
            ssize_t k = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
                continue;
            }
            if (k <= 0) {
                return;
            }
            if (i == 0) {
                relay_count(rl, buf, (size_t)k, hdr, &have, &left);
            }
            if (ts_send_all(p[1 - i].fd, buf, (size_t)k, 2000) < 0) {
                return;
            }
        }
    }
}

static void *relay_main(void *arg)
{
    relay *rl = arg;
    while (!atomic_load(&rl->stop)) {
        struct pollfd p = {.fd = rl->lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0) {
            continue;
        }
        int c = accept(rl->lfd, NULL, NULL);
        if (c < 0) {
            continue;
        }
        atomic_store(&rl->hello_records, 0);
        int u = ts_connect(rl->upstream, 2000);
        if (u >= 0) {
            relay_pump(rl, c, u);
            close(u);
        }
        close(c);
    }
    return NULL;
}

static void relay_start(relay *rl, uint16_t upstream)
{
    memset(rl, 0, sizeof(*rl));
    rl->upstream = upstream;
    rl->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rl->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);
    assert_int_equal(bind(rl->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(rl->lfd, 8), 0);
    assert_int_equal(getsockname(rl->lfd, (struct sockaddr *)&a, &alen), 0);
    rl->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&rl->thread, NULL, relay_main, rl), 0);
}

static void relay_stop(relay *rl)
{
    atomic_store(&rl->stop, true);
    pthread_join(rl->thread, NULL);
    close(rl->lfd);
}

static const char *server_groups_spec; /* for the next ec_server; NULL: tern's default */

static void with_server_groups(tern_ssl_config *cfg)
{
    if (server_groups_spec != NULL) {
        assert_int_equal(tern_ssl_config_set_groups(cfg, server_groups_spec), 0);
    }
}

/* Hybrid post-quantum key exchange, and what tern offers and accepts by default. Each case: a
 * tern client offering `client` (NULL: its default) to a tern server accepting `server`
 * (NULL: its default), through the relay; the group both ends report, and the ClientHellos
 * the client sent (2: a HelloRetryRequest came; 0: not checked). */
static void test_tls_config__hybrid_and_default_groups(void **state)
{
    static const struct {
        const char *server, *client;
        int tls;
        const char *group; /* NULL: the handshake fails */
        int hellos;
    } cases[] = {
        /* defaults: the client's one key share is X25519, which the server takes at once */
        {NULL, NULL, 13, "X25519", 1},
        /* each hybrid, preferred by the server whenever the client offers it */
        {NULL, "X25519MLKEM768", 13, "X25519MLKEM768", 1},
        {NULL, "SecP256r1MLKEM768", 13, "SecP256r1MLKEM768", 1},
        {NULL, "SecP384r1MLKEM1024", 13, "SecP384r1MLKEM1024", 1},
        {NULL, "X25519MLKEM768:X25519", 13, "X25519MLKEM768", 1},
        {NULL, "X25519:X25519MLKEM768", 13, "X25519", 1},
        /* clients offering classic groups only: no HelloRetryRequest either */
        {NULL, "P-256:X25519", 13, "P-256", 1},
        {NULL, "P-384", 13, "P-384", 1},
        {NULL, NULL, 12, "X25519", 0},
        {NULL, "P-256", 12, "P-256", 0},
        {NULL, "X25519", 12, "X25519", 0},
        /* a hybrid-first client sends a classic share too: a classic server needs no retry */
        {"X25519:P-256", "X25519MLKEM768:X25519", 13, "X25519", 1},
        {"X25519:P-256", "X25519MLKEM768", 13, NULL, 0},
        /* the relay does see a retry: the server lacks the client's first group */
        {"X25519", "P-256:X25519", 13, "X25519", 2},
    };
    tern_reactor *r = tern_reactor_new();
    tern_runtime *rt = NULL;
    tern_server *srv = NULL;
    relay rl;
    const char *running = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *want_server = cases[i].server != NULL ? cases[i].server : "default";
        if (srv == NULL || strcmp(running, want_server) != 0) {
            if (srv != NULL) {
                relay_stop(&rl);
                tern_runtime_stop(rt, 0);
                tern_runtime_join(rt);
                tern_runtime_free(rt);
            }
            server_groups_spec = cases[i].server;
            srv = ec_server(&rt, with_server_groups);
            relay_start(&rl, tern_server_port(srv));
            running = want_server;
        }
        tern_ssl_config *ccfg = tern_ssl_config_new();
        assert_int_equal(tern_ssl_config_add_ca_certificates_file(ccfg, CERTS "/ca.pem",
                                                                  TERN_ENCODING_PEM), 0);
        enum tern_ssl_protocol p =
            cases[i].tls == 12 ? TERN_SSL_PROTOCOL_TLS1_2 : TERN_SSL_PROTOCOL_TLS1_3;
        assert_int_equal(tern_ssl_config_set_protocol_range(ccfg, p, p), 0);
        if (cases[i].client != NULL) {
            assert_int_equal(tern_ssl_config_set_groups(ccfg, cases[i].client), 0);
        }
        tern_socket *s = tern_socket_new(r);
        assert_int_equal(tern_socket_set_ssl_config(s, ccfg), 0);
        tern_ssl_config_unref(ccfg);
        int before = atomic_load(&server_handshakes);
        assert_int_equal(tern_socket_connect_to_host_encrypted(s, "127.0.0.1", rl.port,
                                                               "localhost"), 0);
        int rc = tern_socket_wait_for_encrypted(s, 5000);
        const char *what = cases[i].client != NULL ? cases[i].client : "default";
        if ((cases[i].group != NULL) != (rc == 0)) {
            fail_msg("client %s, server %s, TLS 1.%d: %s (%s)", what, want_server,
                     cases[i].tls % 10, tern_err_name(rc), tern_socket_error_string(s));
        }
        if (rc == 0) {
            bool seen = false;
            TS_WAIT_UNTIL(seen, atomic_load(&server_handshakes) > before, 5000);
            assert_true(seen);
            pthread_mutex_lock(&server_group_lock);
            char sgroup[32];
            snprintf(sgroup, sizeof(sgroup), "%s", server_group);
            pthread_mutex_unlock(&server_group_lock);
            int hellos = atomic_load(&rl.hello_records);
            ts_log("client %s, server %s, TLS 1.%d: %s / %s, %d handshake record(s) sent", what,
                   want_server, cases[i].tls % 10, tern_socket_session_group(s), sgroup, hellos);
            assert_string_equal(tern_socket_session_group(s), cases[i].group);
            assert_string_equal(sgroup, cases[i].group);
            if (cases[i].hellos != 0) {
                assert_int_equal(hellos, cases[i].hellos);
            }
        }
        if (tern_socket_state(s) != TERN_SOCKET_STATE_UNCONNECTED) {
            tern_socket_abort(s);
        }
        tern_socket_free(s);
    }
    relay_stop(&rl);
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
    /* one skip convention: the whole program exits 77 (SKIP_RETURN_CODE), never a cmocka
     * skip() that ctest would count as passed */
    if (access(CERTS "/ca.pem", R_OK) != 0) {
        fprintf(stderr, "# SKIP: no test certificates in %s (is openssl installed?)\n", CERTS);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_config__ca_directory_and_local_certificates),
        cmocka_unit_test(test_tls_config__psk_and_certificate_on_one_server),
        cmocka_unit_test(test_tls_config__tls_half_close),
        cmocka_unit_test(test_tls_config__groups),
        cmocka_unit_test(test_tls_config__groups_refused),
        cmocka_unit_test(test_tls_config__hybrid_and_default_groups),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Descriptors made outside tern (QAbstractSocket::setSocketDescriptor): `tern_socket_adopt`
 * takes a connected stream socket, here both ends of a socketpair, each starting TLS on its
 * side (server and client), data both ways; `tern_server_listen_fd` takes a listener the test
 * opened itself (socket + bind + listen on 127.0.0.1:0) by its number, and a tern TLS client
 * connects to it, with one reactor (accepting itself) and two (the acceptor thread). Bad
 * descriptors are refused and left open: closed, UDP, listening (adopt), unconnected,
 * not listening (listen_fd), and a reuseport server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <tern/tern.h>

#define CERTS TERN_TEST_CERTS

static tern_ssl_config *server_cfg(void)
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

/* trusts the test CA and verifies the server as "localhost" */
static tern_ssl_config *client_cfg(void)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_add_ca_certificates_file(cfg, CERTS "/ca.pem",
                                                              TERN_ENCODING_PEM), 0);
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_VERIFY_PEER), 0);
    return cfg;
}

static int setup(void **state)
{
    (void)state;
    FILE *f = fopen(CERTS "/server-rsa.pem", "rb");
    if (f == NULL) {
        fprintf(stderr, "# no test certificates in %s\n", CERTS);
        exit(77);
    }
    fclose(f);
    return 0;
}

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* A socket of @type on 127.0.0.1 port 0, listening when @listening. */
static int inet_socket(int type, bool listening, uint16_t *port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listening) {
        assert_int_equal(listen(fd, 16), 0);
    }
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    if (port != NULL) {
        *port = ntohs(a.sin_port);
    }
    return fd;
}

/* ---- events ---------------------------------------------------------------------------------- */

typedef struct peer {
    int encrypted, disconnected, connected, states_connected;
} peer;

static void on_encrypted(tern_socket *s, void *user)
{
    (void)s;
    ((peer *)user)->encrypted++;
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    (void)s;
    (void)reason;
    ((peer *)user)->disconnected++;
}

static void on_connected(tern_socket *s, void *user)
{
    (void)s;
    ((peer *)user)->connected++;
}

static void on_state(tern_socket *s, enum tern_socket_state st, void *user)
{
    (void)s;
    if (st == TERN_SOCKET_STATE_CONNECTED) {
        ((peer *)user)->states_connected++;
    }
}

static const tern_socket_events peer_events = {
    .connected = on_connected,
    .state_changed = on_state,
    .encrypted = on_encrypted,
    .disconnected = on_disconnected,
};

/* Reads exactly @len bytes from @s into @buf, running its reactor. */
static void read_exactly(tern_socket *s, char *buf, size_t len)
{
    size_t got = 0;
    for (int i = 0; i < 500 && got < len; i++) {
        if (tern_socket_bytes_available(s) == 0) {
            (void)tern_socket_wait_for_ready_read(s, 10);
        }
        ssize_t n = tern_socket_read(s, buf + got, len - got);
        if (n > 0) {
            got += (size_t)n;
        }
    }
    assert_int_equal(got, len);
}

/* ---- tern_socket_adopt ------------------------------------------------------------------------ */

static void test_adopt__socketpair_tls_both_ways(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);
    tern_socket *a = tern_socket_new(r), *b = tern_socket_new(r);
    peer pa = {0}, pb = {0};
    tern_socket_set_events(a, &peer_events, &pa);
    tern_socket_set_events(b, &peer_events, &pb);

    /* blocking descriptors: made non-blocking */
    assert_int_equal(tern_socket_adopt(a, sv[0]), 0);
    assert_int_equal(tern_socket_adopt(b, sv[1]), 0);
    assert_true((fcntl(sv[0], F_GETFL) & O_NONBLOCK) != 0);
    assert_int_equal(tern_socket_state(a), TERN_SOCKET_STATE_CONNECTED);
    assert_int_equal(tern_socket_descriptor(a), sv[0]);
    assert_int_equal(tern_socket_adopt(a, sv[1]), TERN_EBUSY);

    tern_ssl_config *scfg = server_cfg(), *ccfg = client_cfg();
    assert_int_equal(tern_socket_set_ssl_config(a, scfg), 0);
    assert_int_equal(tern_socket_set_ssl_config(b, ccfg), 0);
    tern_ssl_config_unref(scfg);
    tern_ssl_config_unref(ccfg);
    assert_int_equal(tern_socket_set_peer_verify_name(b, "localhost"), 0);
    assert_int_equal(tern_socket_start_server_encryption(a), 0);
    assert_int_equal(tern_socket_start_client_encryption(b), 0);
    assert_int_equal(tern_socket_wait_for_encrypted(b, 5000), 0);
    assert_int_equal(tern_socket_wait_for_encrypted(a, 5000), 0);
    assert_true(tern_socket_is_encrypted(a));
    assert_true(tern_socket_is_encrypted(b));
    assert_int_equal(tern_socket_mode(a), TERN_SSL_MODE_SERVER);
    assert_int_equal(tern_socket_mode(b), TERN_SSL_MODE_CLIENT);
    assert_int_equal(pa.encrypted, 1);
    assert_int_equal(pb.encrypted, 1);
    /* made elsewhere: the state changed, no `connected` */
    assert_int_equal(pa.states_connected, 1);
    assert_int_equal(pa.connected, 0);

    /* client -> server, server -> client */
    char buf[64];
    assert_int_equal(tern_socket_write(b, "hello over a socketpair", 23), 0);
    read_exactly(a, buf, 23);
    assert_memory_equal(buf, "hello over a socketpair", 23);
    assert_int_equal(tern_socket_write(a, "and back", 8), 0);
    read_exactly(b, buf, 8);
    assert_memory_equal(buf, "and back", 8);

    /* an orderly close reaches the other side; the socket closed its descriptor */
    assert_int_equal(tern_socket_close(b), 0);
    assert_int_equal(tern_socket_wait_for_disconnected(a, 5000), 0);
    assert_int_equal(tern_socket_wait_for_disconnected(b, 5000), 0);
    assert_false(fd_open(sv[1]) && fd_open(sv[0]));
    tern_socket_free(a);
    tern_socket_free(b);
    tern_reactor_free(r);
}

static void test_adopt__bad_descriptors_refused(void **state)
{
    (void)state;
    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);

    assert_int_equal(tern_socket_adopt(s, -1), TERN_EINVAL);
    int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    close(closed);
    assert_int_equal(tern_socket_adopt(s, closed), TERN_EINVAL);

    int udp = inet_socket(SOCK_DGRAM, false, NULL);
    assert_int_equal(tern_socket_adopt(s, udp), TERN_EINVAL);
    assert_true(fd_open(udp));

    int lfd = inet_socket(SOCK_STREAM, true, NULL);
    assert_int_equal(tern_socket_adopt(s, lfd), TERN_EINVAL);
    assert_true(fd_open(lfd));

    int unconnected = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(tern_socket_adopt(s, unconnected), TERN_ENOTCONN);
    assert_true(fd_open(unconnected));

    int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_int_equal(tern_socket_adopt(s, file), TERN_EINVAL);

    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_UNCONNECTED);
    close(udp);
    close(lfd);
    close(unconnected);
    close(file);
    tern_socket_free(s);
    tern_reactor_free(r);
}

/* ---- tern_server_listen_fd ------------------------------------------------------------------- */

static void echo_ready_read(tern_socket *s, void *user)
{
    (void)user;
    char buf[4096];
    ssize_t n;
    while (tern_socket_write_room(s) >= sizeof(buf) &&
           (n = tern_socket_read(s, buf, sizeof(buf))) > 0) {
        tern_socket_write(s, buf, (size_t)n);
    }
}

static const tern_socket_events echo_events = {.ready_read = echo_ready_read};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    tern_socket_set_events(s, &echo_events, user);
    tern_socket_start_server_encryption(s);
}

static void listen_fd_with(unsigned reactors)
{
    uint16_t port = 0;
    int lfd = inet_socket(SOCK_STREAM, true, &port); /* blocking: made non-blocking */
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = reactors;
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    tern_ssl_config *cfg = server_cfg();
    tern_server *srv = tern_server_new(rt, cfg, on_incoming, NULL);
    tern_ssl_config_unref(cfg);
    assert_non_null(srv);
    assert_int_equal(tern_server_listen_fd(srv, lfd), 0);
    assert_int_equal(tern_server_port(srv), port);
    assert_int_equal(tern_server_listen_fd(srv, lfd), TERN_EBUSY);
    assert_true((fcntl(lfd, F_GETFL) & O_NONBLOCK) != 0);
    assert_int_equal(tern_runtime_start(rt), 0);

    tern_reactor *r = tern_reactor_new();
    for (int round = 0; round < 3; round++) {
        tern_socket *c = tern_socket_new(r);
        tern_ssl_config *ccfg = client_cfg();
        assert_int_equal(tern_socket_set_ssl_config(c, ccfg), 0);
        tern_ssl_config_unref(ccfg);
        assert_int_equal(tern_socket_connect_to_host_encrypted(c, "127.0.0.1", port, "localhost"),
                         0);
        assert_int_equal(tern_socket_wait_for_encrypted(c, 5000), 0);
        char buf[32];
        assert_int_equal(tern_socket_write(c, "echo me", 7), 0);
        read_exactly(c, buf, 7);
        assert_memory_equal(buf, "echo me", 7);
        tern_socket_abort(c);
        tern_socket_free(c);
    }
    tern_reactor_free(r);

    tern_runtime_stop(rt, 0);
    tern_runtime_join(rt);
    tern_runtime_free(rt);
    /* the server owned the listener: closed with it */
    assert_false(fd_open(lfd));
}

static void test_adopt__listen_fd_one_reactor(void **state)
{
    (void)state;
    listen_fd_with(1);
}

static void test_adopt__listen_fd_two_reactors(void **state)
{
    (void)state;
    listen_fd_with(2);
}

static void test_adopt__listen_fd_bad_descriptors_refused(void **state)
{
    (void)state;
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = 1;
    tern_runtime *rt = tern_runtime_new(&o);
    assert_non_null(rt);
    tern_server *srv = tern_server_new(rt, NULL, on_incoming, NULL);
    assert_non_null(srv);

    assert_int_equal(tern_server_listen_fd(srv, -1), TERN_EINVAL);
    int closed = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    close(closed);
    assert_int_equal(tern_server_listen_fd(srv, closed), TERN_EINVAL);

    int udp = inet_socket(SOCK_DGRAM, false, NULL);
    assert_int_equal(tern_server_listen_fd(srv, udp), TERN_EINVAL);
    assert_non_null(strstr(tern_server_error_string(srv), "not a stream"));
    assert_true(fd_open(udp));

    int bound = inet_socket(SOCK_STREAM, false, NULL); /* bound, not listening */
    assert_int_equal(tern_server_listen_fd(srv, bound), TERN_EINVAL);
    assert_non_null(strstr(tern_server_error_string(srv), "not listening"));
    assert_true(fd_open(bound));

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(tern_server_listen_fd(srv, sv[0]), TERN_EINVAL);

    /* a listening AF_UNIX socket: not IPv4 or IPv6 */
    int ux = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ux >= 0);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    /* bound with the family alone: the kernel picks an abstract address (autobind) */
    assert_int_equal(bind(ux, (struct sockaddr *)&un, sizeof(sa_family_t)), 0);
    assert_int_equal(listen(ux, 1), 0);
    assert_int_equal(tern_server_listen_fd(srv, ux), TERN_EINVAL);
    assert_non_null(strstr(tern_server_error_string(srv), "IPv4 or IPv6"));

    /* reuseport would need one listener per reactor */
    tern_server *rp = tern_server_new(rt, NULL, on_incoming, NULL);
    assert_int_equal(tern_server_set_reuseport(rp, true), 0);
    int lfd = inet_socket(SOCK_STREAM, true, NULL);
    assert_int_equal(tern_server_listen_fd(rp, lfd), TERN_EINVAL);
    assert_true(fd_open(lfd));

    close(udp);
    close(bound);
    close(sv[0]);
    close(sv[1]);
    close(ux);
    close(lfd);
    tern_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_adopt__socketpair_tls_both_ways, setup),
        cmocka_unit_test(test_adopt__bad_descriptors_refused),
        cmocka_unit_test_setup(test_adopt__listen_fd_one_reactor, setup),
        cmocka_unit_test_setup(test_adopt__listen_fd_two_reactors, setup),
        cmocka_unit_test(test_adopt__listen_fd_bad_descriptors_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Socket options beyond the four first ones: TYPE_OF_SERVICE (IP_TOS / IPV6_TCLASS), set
 * before the connection (applied when the descriptor is made) and on a connected socket, read
 * back through tern and through the descriptor itself; PATH_MTU, read only. A tern client on
 * a standalone reactor connects to a plain listener of the test on 127.0.0.1 (and ::1 when
 * the host has IPv6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <tern/tern.h>

/* A listening socket on @ip port 0: its descriptor (port in *port), or -1 without that family. */
static int listener(const char *ip, uint16_t *port)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    bool v6 = strchr(ip, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof(*a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void type_of_service_and_path_mtu(const char *ip)
{
    uint16_t port = 0;
    int lfd = listener(ip, &port);
    if (lfd < 0) {
        assert_string_not_equal(ip, "127.0.0.1"); /* IPv4 loopback is always there */
        return;                                   /* no IPv6 on this host */
    }
    bool v6 = strchr(ip, ':') != NULL;
    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);
    int v = -1;

    /* no descriptor yet: kept; reading needs one */
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, 256), TERN_EINVAL);
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, -1), TERN_EINVAL);
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, 0x28), 0);
    assert_int_equal(tern_socket_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, &v), TERN_ENOTCONN);
    assert_int_equal(tern_socket_option(s, TERN_SOCKET_OPTION_PATH_MTU, &v), TERN_ENOTCONN);

    assert_int_equal(tern_socket_connect_to_host(s, ip, port), 0);
    assert_int_equal(tern_socket_wait_for_connected(s, 5000), 0);

    /* applied when the descriptor was made: tern and the kernel agree */
    int fd = tern_socket_descriptor(s);
    int raw = -1;
    socklen_t len = sizeof(raw);
    assert_int_equal(getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS,
                                &raw, &len), 0);
    assert_int_equal(raw, 0x28);
    assert_int_equal(tern_socket_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, &v), 0);
    assert_int_equal(v, 0x28);

    /* the path MTU of a connected socket: the loopback's (at least the IPv6 minimum, RFC 8200
     * section 5), the kernel's own figure; read only. (Read before the TOS changes below: a
     * new TOS drops the kernel's cached route, so the MTU is unknown until the next packet.) */
    assert_int_equal(tern_socket_option(s, TERN_SOCKET_OPTION_PATH_MTU, &v), 0);
    len = sizeof(raw);
    assert_int_equal(getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &raw,
                                &len), 0);
    assert_int_equal(v, raw);
    assert_true(v >= 1280);
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_PATH_MTU, 1400), TERN_EINVAL);

    /* changed on the connected socket (DSCP EF, 46 << 2) */
    assert_int_equal(tern_socket_set_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, 0xb8), 0);
    len = sizeof(raw);
    assert_int_equal(getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_TCLASS : IP_TOS,
                                &raw, &len), 0);
    assert_int_equal(raw, 0xb8);
    assert_int_equal(tern_socket_option(s, TERN_SOCKET_OPTION_TYPE_OF_SERVICE, &v), 0);
    assert_int_equal(v, 0xb8);

    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    close(lfd);
}

static void test_socket_options__type_of_service_and_path_mtu_ipv4(void **state)
{
    (void)state;
    type_of_service_and_path_mtu("127.0.0.1");
}

static void test_socket_options__type_of_service_and_path_mtu_ipv6(void **state)
{
    (void)state;
    type_of_service_and_path_mtu("::1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_socket_options__type_of_service_and_path_mtu_ipv4),
        cmocka_unit_test(test_socket_options__type_of_service_and_path_mtu_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

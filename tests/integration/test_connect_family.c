/* SPDX-License-Identifier: MIT */
/*
 * A connect to a name tries each of its addresses (RFC 8305's order: the families
 * alternating, no racing) and honours the socket's address family (Qt's network-layer
 * protocol). The names are the test's own: the executable defines getaddrinfo, which answers
 * "*.tern.test" with fixed loopback lists (in one allocation, as glibc's freeaddrinfo frees
 * them) and hands every other name to the C library's. The addresses that must refuse are
 * bound and not listening (the kernel answers a SYN with a reset), so no stranger's port is
 * ever involved; the one that must not answer listens with a full accept queue (the kernel
 * drops further SYNs). The real "localhost" is tried too when it resolves to both families.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern.h>

/* ---- the test's resolver ---------------------------------------------------------------------- */

/* name -> addresses, in the order a resolver would give them */
static const struct {
    const char *name;
    const char *addrs[4];
} fake[] = {
    /* 127.0.0.2 refuses; ::1 is tried second (interleaved), 127.0.0.3 third */
    {"mixed.tern.test", {"127.0.0.2", "127.0.0.3", "::1", NULL}},
    {"two.tern.test", {"127.0.0.2", "127.0.0.3", NULL}},
    /* 127.0.0.4 never answers (its accept queue is full), 127.0.0.5 does */
    {"slow.tern.test", {"127.0.0.4", "127.0.0.5", NULL}},
};

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    for (size_t k = 0; node != NULL && k < sizeof(fake) / sizeof(fake[0]); k++) {
        if (strcmp(node, fake[k].name) != 0) {
            continue;
        }
        int family = hints != NULL ? hints->ai_family : AF_UNSPEC;
        uint16_t port = (uint16_t)(service != NULL ? atoi(service) : 0);
        struct addrinfo *head = NULL, **tail = &head;
        for (int i = 0; fake[k].addrs[i] != NULL; i++) {
            int fam = strchr(fake[k].addrs[i], ':') != NULL ? AF_INET6 : AF_INET;
            if (family != AF_UNSPEC && family != fam) {
                continue;
            }
            struct addrinfo *ai = calloc(1, sizeof(*ai) + sizeof(struct sockaddr_storage));
            if (ai == NULL) {
                break;
            }
            ai->ai_family = fam;
            ai->ai_socktype = SOCK_STREAM;
            ai->ai_protocol = IPPROTO_TCP;
            ai->ai_addr = (struct sockaddr *)(ai + 1);
            if (fam == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)ai->ai_addr;
                a->sin_family = AF_INET;
                a->sin_port = htons(port);
                inet_pton(AF_INET, fake[k].addrs[i], &a->sin_addr);
                ai->ai_addrlen = sizeof(*a);
            } else {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)ai->ai_addr;
                a->sin6_family = AF_INET6;
                a->sin6_port = htons(port);
                inet_pton(AF_INET6, fake[k].addrs[i], &a->sin6_addr);
                ai->ai_addrlen = sizeof(*a);
            }
            *tail = ai;
            tail = &ai->ai_next;
        }
        *res = head;
        return head != NULL ? 0 : EAI_NONAME;
    }
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return real != NULL ? real(node, service, hints, res) : EAI_FAIL;
}

/* ---- helpers ------------------------------------------------------------------------------------ */

/* A TCP socket bound to @ip : *@port (0: any; the chosen one is written back), listening
 * when @listening; -1 when the address is not on this host (no IPv6). */
static int bound(const char *ip, uint16_t *port, bool listening)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    bool v6 = strchr(ip, ':') != NULL;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(*port);
        inet_pton(AF_INET6, ip, &a->sin6_addr);
        len = sizeof(*a);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(*port);
        inet_pton(AF_INET, ip, &a->sin_addr);
        len = sizeof(*a);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || (listening && listen(fd, 8) < 0)) {
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

/* Connects a new socket of @r with @family to @host : @port; the wait_for_connected code and,
 * when connected, the peer's address in @peer. */
static int connect_with(tern_reactor *r, enum tern_address_family family, const char *host,
                        uint16_t port, char *peer, size_t peer_len)
{
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_address_family(s, family), 0);
    assert_int_equal(tern_socket_address_family(s), family);
    assert_int_equal(tern_socket_connect_to_host(s, host, port), 0);
    int rc = tern_socket_wait_for_connected(s, 5000);
    peer[0] = '\0';
    if (rc == 0) {
        assert_int_equal(tern_socket_peer_address(s, peer, peer_len), 0);
    }
    tern_socket_abort(s);
    tern_socket_free(s);
    return rc;
}

/* ---- tests -------------------------------------------------------------------------------------- */

/* The first address refuses: the second one is connected to. */
static void test_connect_family__next_address_after_a_refusal(void **state)
{
    (void)state;
    uint16_t port = 0;
    int ok = bound("127.0.0.3", &port, true);
    assert_true(ok >= 0);
    int refuse = bound("127.0.0.2", &port, false);
    assert_true(refuse >= 0);
    tern_reactor *r = tern_reactor_new();
    char peer[64];

    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_ANY, "two.tern.test", port, peer,
                                  sizeof(peer)), 0);
    assert_non_null(strstr(peer, "127.0.0.3"));

    /* every address refuses: the last one's error */
    close(ok);
    ok = bound("127.0.0.3", &port, false);
    assert_true(ok >= 0);
    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_ANY, "two.tern.test", port, peer,
                                  sizeof(peer)), TERN_ECONNREFUSED);

    tern_reactor_free(r);
    close(ok);
    close(refuse);
}

/* The first address does not answer: after its share of the connect timeout (half of it, for
 * two addresses), the second is tried and connected to, within the timeout. */
static void test_connect_family__next_address_after_a_timeout(void **state)
{
    (void)state;
    uint16_t port = 0;
    int ok = bound("127.0.0.5", &port, true);
    assert_true(ok >= 0);
    /* backlog 0: one connection fills the accept queue; SYNs after it are dropped */
    int full = bound("127.0.0.4", &port, false);
    assert_true(full >= 0);
    assert_int_equal(listen(full, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.4", &a.sin_addr);
    int fillers[2];
    for (int i = 0; i < 2; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        assert_true(fillers[i] >= 0);
        (void)connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50 * 1000);

    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);
    assert_non_null(s);
    assert_int_equal(tern_socket_set_connect_timeout(s, 1600), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(tern_socket_connect_to_host(s, "slow.tern.test", port), 0);
    assert_int_equal(tern_socket_wait_for_connected(s, 5000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    char peer[64];
    assert_int_equal(tern_socket_peer_address(s, peer, sizeof(peer)), 0);
    assert_non_null(strstr(peer, "127.0.0.5"));
    assert_true(ms >= 700);  /* the first address had its half: 800 ms */
    assert_true(ms < 1600); /* within the whole timeout */
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    close(fillers[0]);
    close(fillers[1]);
    close(full);
    close(ok);
}

/* IPv6 and IPv4 interleaved: 127.0.0.2 (refuses), ::1, 127.0.0.3; ::1 before 127.0.0.3. */
static void test_connect_family__families_interleaved(void **state)
{
    (void)state;
    uint16_t port = 0;
    int v4 = bound("127.0.0.3", &port, true);
    assert_true(v4 >= 0);
    int refuse = bound("127.0.0.2", &port, false);
    assert_true(refuse >= 0);
    int v6 = bound("::1", &port, true); /* -1 without IPv6: that attempt fails, .3 is next */
    tern_reactor *r = tern_reactor_new();
    char peer[64];

    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_ANY, "mixed.tern.test", port, peer,
                                  sizeof(peer)), 0);
    assert_non_null(strstr(peer, v6 >= 0 ? "::1" : "127.0.0.3"));

    /* IPv4 only: ::1 is never asked for (127.0.0.2 refuses, 127.0.0.3 answers) */
    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_IPV4, "mixed.tern.test", port, peer,
                                  sizeof(peer)), 0);
    assert_non_null(strstr(peer, "127.0.0.3"));

    if (v6 >= 0) {
        /* IPv6 only: ::1, even though 127.0.0.3 listens too */
        assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_IPV6, "mixed.tern.test", port,
                                      peer, sizeof(peer)), 0);
        assert_non_null(strstr(peer, "::1"));
        close(v6);
    }
    /* IPv6 only on a name without IPv6 addresses: nothing to resolve */
    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_IPV6, "two.tern.test", port, peer,
                                  sizeof(peer)), TERN_E_RESOLVE);

    tern_reactor_free(r);
    close(v4);
    close(refuse);
}

/* The family against numeric addresses, the setter's checks. */
static void test_connect_family__numeric_and_setter(void **state)
{
    (void)state;
    tern_reactor *r = tern_reactor_new();
    tern_socket *s = tern_socket_new(r);

    assert_int_equal(tern_socket_address_family(s), TERN_ADDRESS_FAMILY_ANY);
    assert_int_equal(tern_socket_set_address_family(s, (enum tern_address_family)7), TERN_EINVAL);
    assert_int_equal(tern_socket_set_address_family(s, TERN_ADDRESS_FAMILY_IPV4), 0);
    assert_int_equal(tern_socket_connect_to_host(s, "::1", 9), TERN_E_ADDRESS);
    assert_int_equal(tern_socket_state(s), TERN_SOCKET_STATE_UNCONNECTED);
    assert_int_equal(tern_socket_set_address_family(s, TERN_ADDRESS_FAMILY_IPV6), 0);
    assert_int_equal(tern_socket_connect_to_host(s, "127.0.0.1", 9), TERN_E_ADDRESS);

    uint16_t port = 0;
    int lfd = bound("127.0.0.1", &port, true);
    assert_true(lfd >= 0);
    assert_int_equal(tern_socket_set_address_family(s, TERN_ADDRESS_FAMILY_IPV4), 0);
    assert_int_equal(tern_socket_connect_to_host(s, "127.0.0.1", port), 0);
    assert_int_equal(tern_socket_set_address_family(s, TERN_ADDRESS_FAMILY_ANY), TERN_EBUSY);
    assert_int_equal(tern_socket_wait_for_connected(s, 5000), 0);
    tern_socket_abort(s);
    tern_socket_free(s);
    tern_reactor_free(r);
    close(lfd);
}

/* The system's "localhost", when it has an address of each family: listen on the one that
 * comes second only. */
static void test_connect_family__localhost(void **state)
{
    (void)state;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    assert_non_null(real);
    if (real("localhost", "1", &hints, &ai) != 0 || ai == NULL) {
        skip();
    }
    int first = ai->ai_family, second = 0;
    for (struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        if (p->ai_family != first && (p->ai_family == AF_INET || p->ai_family == AF_INET6)) {
            second = p->ai_family;
        }
    }
    freeaddrinfo(ai);
    if (second == 0) {
        printf("# \"localhost\" has addresses of one family only here: not tried\n");
        skip();
    }
    uint16_t port = 0;
    int lfd = bound(second == AF_INET ? "127.0.0.1" : "::1", &port, true);
    assert_true(lfd >= 0);
    int refuse = bound(first == AF_INET ? "127.0.0.1" : "::1", &port, false);
    assert_true(refuse >= 0);
    tern_reactor *r = tern_reactor_new();
    char peer[64];
    assert_int_equal(connect_with(r, TERN_ADDRESS_FAMILY_ANY, "localhost", port, peer,
                                  sizeof(peer)), 0);
    assert_int_equal(connect_with(r, first == AF_INET ? TERN_ADDRESS_FAMILY_IPV4
                                                      : TERN_ADDRESS_FAMILY_IPV6,
                                  "localhost", port, peer, sizeof(peer)), TERN_ECONNREFUSED);
    tern_reactor_free(r);
    close(lfd);
    close(refuse);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect_family__next_address_after_a_refusal),
        cmocka_unit_test(test_connect_family__next_address_after_a_timeout),
        cmocka_unit_test(test_connect_family__families_interleaved),
        cmocka_unit_test(test_connect_family__numeric_and_setter),
        cmocka_unit_test(test_connect_family__localhost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Servers (server.h) refusing bad set-up with a code and a message: unparsable listen
 * addresses, setters out of range or in the wrong state, a port in use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fixture.h"
#include "support.h"

static void incoming_noop(tern_server *srv, tern_socket *s, void *user)
{
    (void)srv;
    (void)s;
    (void)user; /* left without events: the runtime closes it */
}

/* ---- listen ------------------------------------------------------------------------------ */

static void expect_listen_address(tern_server *srv, const char *address, int want)
{
    int rc = tern_server_listen_address(srv, address);
    if (rc != want) {
        fail_msg("listen_address(\"%s\"): %s (%s), expected %s", address, tern_err_name(rc),
                 tern_server_error_string(srv), tern_err_name(want));
    }
    if (want != 0) {
        const char *why = tern_server_error_string(srv);
        assert_non_null(why);
        assert_true(strlen(why) > 0);
    }
}

static void test_listen__unparsable_address(void **state)
{
    ts_fixture *f = *state;
    tern_runtime *rt = ts_fixture_runtime(f, 1);
    tern_server *srv = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(srv);
    assert_ptr_equal(tern_server_runtime(srv), rt);
    expect_listen_address(srv, "not an address", TERN_E_ADDRESS);
    expect_listen_address(srv, "127.0.0.1", TERN_E_ADDRESS);
    expect_listen_address(srv, "127.0.0.1:99999", TERN_E_ADDRESS);
    expect_listen_address(srv, "[::1:80", TERN_E_ADDRESS);
    expect_listen_address(srv, "a:b", TERN_E_ADDRESS);
    expect_listen_address(srv, "", TERN_E_ADDRESS);
    /* a host that does not resolve */
    int rc = tern_server_listen(srv, "nonexistent.invalid", 0);
    assert_int_equal(rc, TERN_E_ADDRESS);
    assert_true(strlen(tern_server_error_string(srv)) > 0);
    assert_int_equal(tern_server_port(srv), 0);

    /* the server is still usable after the failures */
    expect_listen_address(srv, "127.0.0.1:0", 0);
    assert_int_not_equal(tern_server_port(srv), 0);
    assert_int_equal(tern_server_listen(srv, "127.0.0.1", 0), TERN_EBUSY);
    assert_int_equal(tern_server_set_backlog(srv, 16), TERN_EBUSY);
    assert_int_equal(tern_server_set_reuseport(srv, true), TERN_EBUSY);
}

static void test_listen__setters_validate(void **state)
{
    ts_fixture *f = *state;
    tern_runtime *rt = ts_fixture_runtime(f, 1);
    assert_null(tern_server_new(NULL, NULL, incoming_noop, NULL));
    assert_null(tern_server_new(rt, NULL, NULL, NULL));
    tern_server *srv = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(srv);
    assert_int_equal(tern_server_set_backlog(srv, 0), TERN_EINVAL);
    assert_int_equal(tern_server_set_backlog(srv, 65536), TERN_EINVAL);
    assert_int_equal(tern_server_set_backlog(srv, 1), 0);
    assert_int_equal(tern_server_set_balance_policy(srv, (enum tern_balance_policy)7), TERN_EINVAL);
    assert_int_equal(tern_server_set_balance_policy(srv, TERN_BALANCE_LEAST_CONNECTIONS), 0);
    assert_int_equal(tern_server_port(srv), 0);
}

static void test_listen__port_in_use(void **state)
{
    ts_fixture *f = *state;
    tern_runtime *rt = ts_fixture_runtime(f, 1);
    tern_server *a = tern_server_new(rt, NULL, incoming_noop, NULL);
    tern_server *b = tern_server_new(rt, NULL, incoming_noop, NULL);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(tern_server_listen(a, "127.0.0.1", 0), 0);
    uint16_t port = tern_server_port(a);
    assert_int_not_equal(port, 0);

    int rc = tern_server_listen(b, "127.0.0.1", port);
    if (rc != TERN_EADDRINUSE) {
        fail_msg("second listen on port %u: %s, expected EADDRINUSE", port, tern_err_name(rc));
    }
    const char *why = tern_server_error_string(b);
    char num[16];
    snprintf(num, sizeof num, "%u", port);
    ts_log("second listen: \"%s\"", why);
    assert_true(strlen(why) > 0);
    assert_non_null(strstr(why, num)); /* it says which address failed */

    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    expect_listen_address(b, addr, TERN_EADDRINUSE);
    assert_int_equal(tern_server_port(b), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, ts_fixture_setup, ts_fixture_teardown)
    const struct CMUnitTest tests[] = {
        T(test_listen__unparsable_address),
        T(test_listen__setters_validate),
        T(test_listen__port_in_use),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}

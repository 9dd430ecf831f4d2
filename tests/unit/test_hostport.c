/* SPDX-License-Identifier: MIT */
/*
 * The address parser of server.h: tern_parse_host_port on good and bad input, and a host
 * buffer too small.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <tern/tern.h>

/* ---- tern_parse_host_port -------------------------------------------------------------- */

static void expect_parse(const char *address, const char *host, uint16_t port)
{
    char h[64];
    memset(h, 'x', sizeof h);
    uint16_t p = 12345;
    int rc = tern_parse_host_port(address, h, sizeof h, &p);
    if (rc != 0) {
        fail_msg("\"%s\": %s, expected host \"%s\" port %u", address, tern_err_name(rc), host,
                 port);
    }
    assert_string_equal(h, host);
    assert_int_equal(p, port);
}

static void expect_bad(const char *address)
{
    char h[64];
    uint16_t p = 0;
    int rc = tern_parse_host_port(address, h, sizeof h, &p);
    if (rc != TERN_E_ADDRESS) {
        fail_msg("\"%s\": got %d (%s), expected E_ADDRESS", address ? address : "(null)", rc,
                 tern_err_name(rc));
    }
}

static void test_parse_host_port__good(void **state)
{
    (void)state;
    expect_parse("127.0.0.1:80", "127.0.0.1", 80);
    expect_parse("[::1]:443", "::1", 443);
    expect_parse("[2001:db8::2]:8443", "2001:db8::2", 8443);
    expect_parse(":8080", "", 8080);
    expect_parse("*:1", "", 1);
    expect_parse("localhost:65535", "localhost", 65535);
    expect_parse("example.invalid:22", "example.invalid", 22);
    /* port 0: "pick a free port", as tern_server_listen takes it */
    expect_parse("host:0", "host", 0);
    expect_parse("0.0.0.0:9", "0.0.0.0", 9);
}

static void test_parse_host_port__bad(void **state)
{
    (void)state;
    expect_bad("host");          /* no port */
    expect_bad("host:");         /* empty port */
    expect_bad("host:99999");    /* out of range */
    expect_bad("host:65536");
    expect_bad("host:-1");
    expect_bad("host:80x");
    expect_bad("[::1:80");       /* unbalanced bracket */
    expect_bad("::1]:80");
    expect_bad("[::1]");         /* no port */
    expect_bad("[::1]80");
    expect_bad("a:b");           /* not a number */
    expect_bad("");
    expect_bad(":");
}

static void test_parse_host_port__host_buffer_too_small(void **state)
{
    (void)state;
    char h[4];
    uint16_t p = 0;
    assert_int_equal(tern_parse_host_port("localhost:80", h, sizeof h, &p), TERN_ENOBUFS);
    /* exactly enough room for "abc" and its NUL */
    assert_int_equal(tern_parse_host_port("abc:80", h, sizeof h, &p), 0);
    assert_string_equal(h, "abc");
    assert_int_equal(p, 80);
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_host_port__good),
        cmocka_unit_test(test_parse_host_port__bad),
        cmocka_unit_test(test_parse_host_port__host_buffer_too_small),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

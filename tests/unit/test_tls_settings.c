/* SPDX-License-Identifier: MIT */
/*
 * A socket's own peer verify mode and depth (tern_socket_set_peer_verify_mode/_depth, kept on
 * the TLS state) reach the TLS library's connection when a handshake is set up, in place of
 * the configuration's: checked on standalone engines (ssl/tls_engine.h), no socket, no I/O.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "tls_engine.h"

static int sink(void *ctx, const void *data, size_t len)
{
    (void)ctx;
    (void)data;
    (void)len;
    return 0;
}

/* A client engine on @cfg with the socket's own settings as given (mode < 0 / depth < 0: not
 * set); its wolfSSL verify mode and depth. */
static void engine_verify(tern_ssl_config *cfg, int mode, int depth, int *wmode, long *wdepth)
{
    tern__tls *tls = tern__tls_engine_new(cfg, sink, NULL);
    assert_non_null(tls);
    if (mode >= 0) {
        tls->has_verify_mode = true;
        tls->verify_mode = (enum tern_verify_mode)mode;
    }
    if (depth >= 0) {
        tls->has_verify_depth = true;
        tls->verify_depth = depth;
    }
    char err[160] = "";
    assert_int_equal(tern__tls_engine_start(tls, false, err, sizeof(err)), 0);
    *wmode = wolfSSL_get_verify_mode(tls->ssl);
    *wdepth = wolfSSL_get_verify_depth(tls->ssl);
    tern__tls_engine_free(tls);
}

static void test_tls_settings__socket_mode_and_depth_replace_the_configuration(void **state)
{
    (void)state;
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    assert_int_equal(tern_ssl_config_set_peer_verify_depth(cfg, 7), 0);
    int wmode;
    long wdepth;

    /* the configuration's: AUTO is VERIFY_PEER on a client, depth 7 */
    engine_verify(cfg, -1, -1, &wmode, &wdepth);
    assert_true((wmode & WOLFSSL_VERIFY_PEER) != 0);
    assert_int_equal(wdepth, 7);

    /* the socket's own */
    engine_verify(cfg, TERN_VERIFY_NONE, 2, &wmode, &wdepth);
    assert_int_equal(wmode, WOLFSSL_VERIFY_NONE);
    assert_int_equal(wdepth, 2);
    engine_verify(cfg, TERN_VERIFY_VERIFY_PEER, 0, &wmode, &wdepth);
    assert_true((wmode & WOLFSSL_VERIFY_PEER) != 0);
    assert_int_equal(wdepth, 0);

    /* the configuration's NONE, the socket's VERIFY_PEER */
    tern_ssl_config *none = tern_ssl_config_new();
    assert_int_equal(tern_ssl_config_set_peer_verify_mode(none, TERN_VERIFY_NONE), 0);
    engine_verify(none, -1, -1, &wmode, &wdepth);
    assert_int_equal(wmode, WOLFSSL_VERIFY_NONE);
    engine_verify(none, TERN_VERIFY_VERIFY_PEER, -1, &wmode, &wdepth);
    assert_true((wmode & WOLFSSL_VERIFY_PEER) != 0);
    assert_int_equal(wdepth, 9); /* the default */

    tern_ssl_config_unref(cfg);
    tern_ssl_config_unref(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_settings__socket_mode_and_depth_replace_the_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

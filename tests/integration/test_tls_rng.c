/* SPDX-License-Identifier: MIT */
/*
 * One RNG per reactor (wolfSSL patch 0300, ssl/socket_tls.c tern__tls_reactor_rng): a
 * WOLFSSL made on a reactor's thread takes that reactor's generator instead of seeding one of
 * its own; another reactor has another; off the reactors each object still makes its own.
 * The generator outlives the objects that used it and keeps working after they are freed.
 * Every TLS test of the suite then runs with it (handshakes, tickets, hibernation wake-ups).
 * Skipped (77) on a wolfSSL without tern's patches (TERN_SYSTEM_WOLFSSL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "support.h"
#include "tls_engine.h"

#include <wolfssl/wolfcrypt/random.h>

#ifdef TERN_WOLFSSL_PATCHED

struct probe {
    WOLFSSL_CTX *ctx;
    WC_RNG *first, *second; /* two asks of the provider on the reactor */
    WC_RNG *used;           /* what a WOLFSSL made there took */
    int generated;          /* wc_RNG_GenerateBlock after the object was freed */
    uint8_t out[2][32];
};

static void probe_task(tern_reactor *r, void *arg)
{
    struct probe *p = arg;
    if (r == NULL) {
        return;
    }
    p->first = tern__tls_reactor_rng(p->ctx);
    p->second = tern__tls_reactor_rng(p->ctx);
    WOLFSSL *ssl = wolfSSL_new(p->ctx);
    p->used = ssl != NULL ? wolfSSL_GetRNG(ssl) : NULL;
    wolfSSL_free(ssl);
    p->generated = p->first == NULL ? -1
                   : wc_RNG_GenerateBlock(p->first, p->out[0], sizeof(p->out[0])) == 0 &&
                           wc_RNG_GenerateBlock(p->first, p->out[1], sizeof(p->out[1])) == 0
                       ? 0
                       : -1;
}

static void test_tls_rng__one_per_reactor(void **state)
{
    (void)state;
    /* the library's first use installs the provider (ssl_config.c, library_init) */
    tern_ssl_config *cfg = tern_ssl_config_new();
    assert_non_null(cfg);
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_server_method());
    assert_non_null(ctx);

    tern_runtime *rt = ts_runtime_new(2, 0);
    assert_non_null(rt);
    assert_int_equal(tern_runtime_start(rt), 0);
    struct probe a = {.ctx = ctx}, a2 = {.ctx = ctx}, b = {.ctx = ctx};
    assert_int_equal(ts_post_wait(tern_runtime_reactor(rt, 0), probe_task, &a, 5000), 0);
    assert_int_equal(ts_post_wait(tern_runtime_reactor(rt, 0), probe_task, &a2, 5000), 0);
    assert_int_equal(ts_post_wait(tern_runtime_reactor(rt, 1), probe_task, &b, 5000), 0);

    /* made once per reactor, kept, and given to the objects made there */
    assert_non_null(a.first);
    assert_ptr_equal(a.first, a.second);
    assert_ptr_equal(a.used, a.first);
    assert_ptr_equal(a2.first, a.first); /* a later task: the same generator */
    assert_ptr_equal(a2.used, a.first);
    /* another reactor, another generator */
    assert_non_null(b.first);
    assert_ptr_not_equal(b.first, a.first);
    assert_ptr_equal(b.used, b.first);
    /* still generating after the objects that used it were freed, and not repeating */
    assert_int_equal(a.generated, 0);
    assert_int_equal(b.generated, 0);
    assert_memory_not_equal(a.out[0], a.out[1], sizeof(a.out[0]));
    assert_memory_not_equal(a.out[0], b.out[0], sizeof(a.out[0]));

    /* off the reactors: no shared generator, the object makes its own */
    assert_null(tern__tls_reactor_rng(ctx));
    WOLFSSL *ssl = wolfSSL_new(ctx);
    assert_non_null(ssl);
    WC_RNG *own = wolfSSL_GetRNG(ssl);
    assert_non_null(own);
    assert_ptr_not_equal(own, a.first);
    assert_ptr_not_equal(own, b.first);
    wolfSSL_free(ssl);

    assert_true(ts_stop_join(rt, 0) >= 0);
    tern_runtime_free(rt); /* frees each reactor's generator (ASan: nothing leaks) */
    wolfSSL_CTX_free(ctx);
    tern_ssl_config_unref(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_rng__one_per_reactor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

int main(void)
{
    printf("skipped: a wolfSSL without tern's patches has no RNG provider (patch 0300)\n");
    return 77;
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's handshake rate limits (apps/tern-gateway/ratelimit.c): a burst, then
 * refusals, then refills over simulated time (the caller's clock: nothing sleeps); keys
 * apart from each other, addresses without their ports; a table under more keys than it
 * holds (bounded, evictions counted, a drained bucket kept, a full one given up for free);
 * and threads taking from one table at once (exact totals: the clock does not move, so
 * every token is taken exactly once; label concurrency, run under TSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

static bool take(struct gw_rate_table *t, const char *key, double rate, double burst,
                 uint64_t now)
{
    return gw_rate_take(t, key, strlen(key), rate, burst, now);
}

/* How many of @p n attempts of @p key at @p now are allowed. */
static unsigned allowed(struct gw_rate_table *t, const char *key, double rate, double burst,
                        uint64_t now, unsigned n)
{
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++) {
        ok += take(t, key, rate, burst, now);
    }
    return ok;
}

static void test_rate__burst_then_refusal_then_refill(void **state)
{
    struct gw_rate_table *t = gw_rate_table_new(64);
    assert_non_null(t);

    /* 2 a second, 3 at once */
    assert_int_equal(allowed(t, "dev-1", 2, 3, 1000, 10), 3);
    assert_false(take(t, "dev-1", 2, 3, 1499));
    assert_true(take(t, "dev-1", 2, 3, 1500)); /* half a second: one token */
    assert_false(take(t, "dev-1", 2, 3, 1500));
    assert_false(take(t, "dev-1", 2, 3, 1749)); /* half a token so far */
    assert_true(take(t, "dev-1", 2, 3, 2000));  /* the two halves make one */
    /* a long pause refills up to the burst, not beyond */
    assert_int_equal(allowed(t, "dev-1", 2, 3, 3600 * 1000, 10), 3);
    /* time going backwards (another reactor's clock) adds nothing */
    assert_false(take(t, "dev-1", 2, 3, 5000));
    assert_false(take(t, "dev-1", 2, 3, 3600 * 1000));
    gw_rate_table_free(t);
}

static void test_rate__slow_rate_and_small_burst(void **state)
{
    struct gw_rate_table *t = gw_rate_table_new(64);
    assert_non_null(t);

    /* one a minute, a burst below 1 counts as 1 */
    assert_int_equal(allowed(t, "k", 1.0 / 60, 0.2, 0, 5), 1);
    assert_false(take(t, "k", 1.0 / 60, 0.2, 59 * 1000));
    assert_true(take(t, "k", 1.0 / 60, 0.2, 61 * 1000));
    /* rate 0: no limit, nothing stored */
    assert_int_equal(allowed(t, "off", 0, 1, 0, 100), 100);
    assert_int_equal(gw_rate_evictions(t), 0);
    gw_rate_table_free(t);
}

static void test_rate__keys_are_independent(void **state)
{
    struct gw_rate_table *t = gw_rate_table_new(256);
    assert_non_null(t);

    assert_int_equal(allowed(t, "dev-1", 1, 5, 0, 20), 5);
    assert_int_equal(allowed(t, "dev-2", 1, 5, 0, 20), 5);
    /* keys that differ in length only, or by a zero byte */
    assert_true(gw_rate_take(t, "ab\0", 3, 1, 1, 0));
    assert_true(gw_rate_take(t, "ab", 2, 1, 1, 0));
    assert_true(gw_rate_take(t, "ab\0\0", 4, 1, 1, 0));
    assert_true(gw_rate_take(t, "", 0, 1, 1, 0));
    assert_false(gw_rate_take(t, "", 0, 1, 1, 0));
    assert_false(gw_rate_take(t, "ab", 2, 1, 1, 0));
    /* long keys (past the hash's 8-byte steps) */
    char a[200], b[200];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[150] = 'y';
    assert_true(gw_rate_take(t, a, sizeof(a), 1, 1, 0));
    assert_true(gw_rate_take(t, b, sizeof(b), 1, 1, 0));
    assert_false(gw_rate_take(t, a, sizeof(a), 1, 1, 0));
    gw_rate_table_free(t);
}

static void test_rate__addresses_ignore_the_port(void **state)
{
    struct gw_rate_table *t = gw_rate_table_new(64);
    assert_non_null(t);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1000)};
    struct sockaddr_in b = a;
    inet_pton(AF_INET, "192.0.2.1", &a.sin_addr);
    inet_pton(AF_INET, "192.0.2.1", &b.sin_addr);
    b.sin_port = htons(2000);
    struct sockaddr_in6 m = {.sin6_family = AF_INET6, .sin6_port = htons(3000)};
    inet_pton(AF_INET6, "::ffff:192.0.2.1", &m.sin6_addr);
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::1", &v6.sin6_addr);
    struct sockaddr_in other = a;
    inet_pton(AF_INET, "192.0.2.2", &other.sin_addr);

    assert_true(gw_rate_take_addr(t, (struct sockaddr *)&a, 1, 2, 0));
    assert_true(gw_rate_take_addr(t, (struct sockaddr *)&b, 1, 2, 0));
    assert_false(gw_rate_take_addr(t, (struct sockaddr *)&a, 1, 2, 0));
    assert_false(gw_rate_take_addr(t, (struct sockaddr *)&m, 1, 2, 0)); /* the same IPv4 */
    assert_true(gw_rate_take_addr(t, (struct sockaddr *)&other, 1, 2, 0));
    assert_true(gw_rate_take_addr(t, (struct sockaddr *)&v6, 1, 2, 0));
    assert_true(gw_rate_take_addr(t, (struct sockaddr *)&v6, 1, 2, 0));
    assert_false(gw_rate_take_addr(t, (struct sockaddr *)&v6, 1, 2, 0));
    /* another family: not limited */
    struct sockaddr u = {.sa_family = AF_UNIX};
    for (int i = 0; i < 5; i++) {
        assert_true(gw_rate_take_addr(t, &u, 1, 2, 0));
    }
    gw_rate_table_free(t);
}

static void test_rate__bounded_under_capacity_pressure(void **state)
{
    /* One set of 8: every key competes with every other. */
    struct gw_rate_table *t = gw_rate_table_new(GW_RATE_WAYS);
    assert_non_null(t);
    assert_int_equal(gw_rate_capacity(t), GW_RATE_WAYS);
    char key[32];

    /* The key being refused drains its bucket... */
    assert_int_equal(allowed(t, "scanner", 1, 2, 0, 5), 2);
    /* ...and a flood of fresh keys (each one attempt: burst - 1 left) passes it by: it holds
     * the fewest tokens of its set, the last to go. */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "fresh-%d", i);
        assert_true(take(t, key, 1, 2, 0));
    }
    assert_int_equal(gw_rate_evictions(t), 1000 - (GW_RATE_WAYS - 1));
    assert_int_equal(gw_rate_evictions_lost(t), 1000 - (GW_RATE_WAYS - 1));
    assert_false(take(t, "scanner", 1, 2, 0));

    /* A minute later every bucket has refilled: the set's 8 are given up for 8 new keys
     * (full ones before the new ones, which hold 1 token) and nothing is lost. */
    uint64_t lost = gw_rate_evictions_lost(t), evicted = gw_rate_evictions(t);
    for (int i = 0; i < GW_RATE_WAYS; i++) {
        snprintf(key, sizeof(key), "later-%d", i);
        assert_true(take(t, key, 1, 2, 60 * 1000));
    }
    assert_int_equal(gw_rate_evictions(t), evicted + GW_RATE_WAYS);
    assert_int_equal(gw_rate_evictions_lost(t), lost);
    /* a key given up while full comes back full, as if it had stayed */
    assert_int_equal(allowed(t, "scanner", 1, 2, 60 * 1000, 5), 2);
    gw_rate_table_free(t);

    /* A bigger table stays at its capacity whatever comes. */
    t = gw_rate_table_new(100);
    assert_non_null(t);
    assert_int_equal(gw_rate_capacity(t), 128);
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_true(take(t, key, 1, 3, 0));
    }
    assert_int_equal(gw_rate_evictions(t), 10000 - 128);
    gw_rate_table_free(t);
}

/* ---- threads ------------------------------------------------------------------------------- */

enum { THREADS = 8, ROUNDS = 2000, SHARED_BURST = 500, OWN_BURST = 50 };

struct worker {
    pthread_t th;
    struct gw_rate_table *t;
    int id;
    unsigned shared_ok, own_ok;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char own[16];
    snprintf(own, sizeof(own), "own-%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        w->shared_ok += take(w->t, "shared", 1, SHARED_BURST, 1000);
        w->own_ok += take(w->t, own, 1, OWN_BURST, 1000);
    }
    return NULL;
}

static void test_rate__threads_take_each_token_once(void **state)
{
    struct gw_rate_table *t = gw_rate_table_new(4096);
    assert_non_null(t);
    struct worker w[THREADS];

    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.t = t, .id = i};
        assert_int_equal(pthread_create(&w[i].th, NULL, hammer, &w[i]), 0);
    }
    unsigned shared = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(w[i].th, NULL), 0);
        shared += w[i].shared_ok;
        assert_int_equal(w[i].own_ok, OWN_BURST);
    }
    assert_int_equal(shared, SHARED_BURST);
    gw_rate_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate__burst_then_refusal_then_refill),
        cmocka_unit_test(test_rate__slow_rate_and_small_burst),
        cmocka_unit_test(test_rate__keys_are_independent),
        cmocka_unit_test(test_rate__addresses_ignore_the_port),
        cmocka_unit_test(test_rate__bounded_under_capacity_pressure),
        cmocka_unit_test(test_rate__threads_take_each_token_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

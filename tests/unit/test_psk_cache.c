/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's identity cache (apps/tern-gateway/psk_cache.c): fresh, stale and negative
 * entries on a clock the test moves; the one refresh a stale entry asks for; the bound and
 * which entries CLOCK evicts; the revalidation cursor; readers on two threads while a writer
 * replaces and removes entries (every record read whole); and keys wiped before their memory
 * goes back (entries are freed through psk_test_free here, which looks for key bytes).
 */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "support.h"
#include "tern-gateway/psk_cache.h"

/* ---- the wipe check: psk_cache.c is built with -DPSK_CACHE_TEST_FREE=psk_test_free ---- */

/* Keys in these tests are filled with bytes 0xA0..0xAF (never in identities or backends);
 * a freed entry that still holds 8 such bytes in a row kept its key. */
static _Atomic uint64_t freed_entries, freed_with_key;

void psk_test_free(void *p);
void psk_test_free(void *p)
{
    if (p == NULL) {
        return;
    }
    const uint8_t *b = p;
    size_t n = malloc_usable_size(p), run = 0;
    bool key = false;
    for (size_t i = 0; i < n && !key; i++) {
        run = (b[i] & 0xf0) == 0xa0 ? run + 1 : 0;
        key = run >= 8;
    }
    atomic_fetch_add(&freed_entries, 1);
    if (key) {
        atomic_fetch_add(&freed_with_key, 1);
    }
    free(p);
}

/* ---- helpers --------------------------------------------------------------------------- */

static _Atomic uint64_t fake_now = 1000000;

static uint64_t fake_clock(void *user)
{
    (void)user;
    return atomic_load(&fake_now);
}

static void advance(uint64_t ms)
{
    atomic_fetch_add(&fake_now, ms);
}

static struct psk_record make_rec(unsigned v, size_t key_len)
{
    struct psk_record r;
    memset(&r, 0, sizeof(r));
    r.key_len = key_len;
    for (size_t i = 0; i < key_len; i++) {
        r.key[i] = (uint8_t)(0xa0 | ((v + i) & 0x0f));
    }
    r.hash = (v & 1) ? TERN_PSK_HASH_SHA384 : TERN_PSK_HASH_SHA256;
    r.max_conn = v;
    if (v % 3 != 0) {
        snprintf(r.backend, sizeof(r.backend), "backend-%u.example:%u", v, 1000 + v % 1000);
    }
    return r;
}

/* Whether @p r is what make_rec(v, len) made, for some v: the parts agree with each other. */
static bool rec_consistent(const struct psk_record *r, unsigned *v_out)
{
    unsigned v = r->max_conn;
    struct psk_record want = make_rec(v, r->key_len);
    *v_out = v;
    return r->key_len >= 16 && memcmp(r->key, want.key, r->key_len) == 0 &&
           r->hash == want.hash && strcmp(r->backend, want.backend) == 0;
}

static size_t ident(char *buf, size_t len, const char *prefix, unsigned i)
{
    return (size_t)snprintf(buf, len, "%s-%u", prefix, i);
}

static int setup(void **state)
{
    (void)state;
    atomic_store(&freed_entries, 0);
    atomic_store(&freed_with_key, 0);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_psk_cache__fresh_then_stale_then_miss(void **state)
{
    (void)state;
    struct psk_cache *c = psk_cache_new(1000, fake_clock, NULL);
    assert_non_null(c);
    struct psk_record in = make_rec(4, 32), out;
    bool was = true, refresh = true;
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_MISS);
    assert_false(refresh);
    assert_int_equal(psk_cache_put(c, "dev", 3, &in, 1000, 5000, &was), 0);
    assert_false(was);
    memset(&out, 0, sizeof(out));
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_FRESH);
    assert_false(refresh);
    assert_memory_equal(&in, &out, sizeof(in));
    assert_string_equal(out.backend, "backend-4.example:1004");

    advance(999);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_FRESH);
    advance(1);
    /* stale: the first reader is told to queue the refresh, the others are not */
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_STALE);
    assert_true(refresh);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_STALE);
    assert_false(refresh);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, NULL, NULL), PSK_CACHE_STALE);
    /* a refresh that could not be sent: the next reader tries again */
    psk_cache_clear_refresh(c, "dev", 3);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_STALE);
    assert_true(refresh);
    /* the refresh's answer: fresh again, flag clear */
    assert_int_equal(psk_cache_put(c, "dev", 3, &in, 1000, 5000, &was), 0);
    assert_true(was);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_FRESH);
    advance(1000);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_STALE);
    assert_true(refresh);
    advance(4999);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_STALE);
    advance(1);
    /* past stale: a miss, though still cached (a later put says it was positive) */
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_MISS);
    bool positive = false;
    assert_true(psk_cache_peek(c, "dev", 3, &positive));
    assert_true(positive);
    assert_int_equal(psk_cache_count(c), 1);
    /* SHA-384 and a 64-byte key, no backend */
    in = make_rec(3, 64);
    assert_int_equal(psk_cache_put(c, "dev", 3, &in, 1000, 0, &was), 0);
    assert_true(was);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, NULL, NULL), PSK_CACHE_FRESH);
    assert_int_equal(out.key_len, 64);
    assert_int_equal(out.hash, TERN_PSK_HASH_SHA384);
    assert_string_equal(out.backend, "");
    /* stale_ms 0: no stale period */
    advance(1000);
    assert_int_equal(psk_cache_get(c, "dev", 3, &out, &refresh, NULL), PSK_CACHE_MISS);
    psk_cache_free(c);
    assert_int_equal(atomic_load(&freed_with_key), 0);
    assert_true(atomic_load(&freed_entries) >= 3);
}

static void test_psk_cache__negative_entries(void **state)
{
    (void)state;
    struct psk_cache *c = psk_cache_new(1000, fake_clock, NULL);
    struct psk_record in = make_rec(2, 16), out;
    bool was = true;
    int why = -1;
    assert_int_equal(psk_cache_put_negative(c, "ghost", 5, PSK_CACHE_UNKNOWN, 5000, &was), 0);
    assert_false(was);
    assert_int_equal(psk_cache_get(c, "ghost", 5, &out, NULL, &why), PSK_CACHE_NEGATIVE);
    assert_int_equal(why, PSK_CACHE_UNKNOWN);
    assert_int_equal(psk_cache_put_negative(c, "off", 3, PSK_CACHE_DISABLED, 5000, NULL), 0);
    assert_int_equal(psk_cache_get(c, "off", 3, &out, NULL, &why), PSK_CACHE_NEGATIVE);
    assert_int_equal(why, PSK_CACHE_DISABLED);
    /* a negative is never stale: past its TTL it is a miss */
    advance(5000);
    bool refresh = true;
    assert_int_equal(psk_cache_get(c, "ghost", 5, &out, &refresh, &why), PSK_CACHE_MISS);
    assert_false(refresh);
    /* positive -> negative reports was_positive; negative -> positive does not */
    assert_int_equal(psk_cache_put(c, "dev", 3, &in, 1000, 1000, NULL), 0);
    assert_int_equal(psk_cache_put_negative(c, "dev", 3, PSK_CACHE_DISABLED, 100, &was), 0);
    assert_true(was);
    assert_int_equal(psk_cache_put(c, "dev", 3, &in, 1000, 1000, &was), 0);
    assert_false(was);
    bool positive = false;
    assert_true(psk_cache_remove(c, "dev", 3, &positive));
    assert_true(positive);
    assert_false(psk_cache_remove(c, "dev", 3, &positive));
    assert_false(positive);
    assert_true(psk_cache_remove(c, "off", 3, &positive));
    assert_false(positive);
    /* drop_negatives leaves positives alone */
    for (unsigned i = 0; i < 50; i++) {
        char id[32];
        size_t n = ident(id, sizeof(id), "neg", i);
        assert_int_equal(psk_cache_put_negative(c, id, n, PSK_CACHE_UNKNOWN, 5000, NULL), 0);
        n = ident(id, sizeof(id), "pos", i);
        struct psk_record r = make_rec(i, 16);
        assert_int_equal(psk_cache_put(c, id, n, &r, 5000, 0, NULL), 0);
    }
    assert_int_equal(psk_cache_count(c), 101); /* + the expired "ghost" */
    assert_int_equal(psk_cache_drop_negatives(c), 51);
    assert_int_equal(psk_cache_count(c), 50);
    assert_int_equal(psk_cache_get(c, "pos-7", 5, &out, NULL, NULL), PSK_CACHE_FRESH);
    assert_int_equal(out.max_conn, 7);
    /* bad arguments */
    char big[TERN_PSK_MAX_IDENTITY + 1];
    memset(big, 'x', sizeof(big));
    assert_int_equal(psk_cache_put(c, big, sizeof(big), &in, 1, 1, NULL), -1);
    assert_int_equal(psk_cache_put(c, "x", 0, &in, 1, 1, NULL), -1);
    in.key_len = 8;
    assert_int_equal(psk_cache_put(c, "x", 1, &in, 1, 1, NULL), -1);
    assert_int_equal(psk_cache_get(c, big, sizeof(big), &out, NULL, NULL), PSK_CACHE_MISS);
    assert_int_equal(psk_cache_put(c, big, TERN_PSK_MAX_IDENTITY, &out, 1, 1, NULL), 0);
    assert_int_equal(psk_cache_get(c, big, TERN_PSK_MAX_IDENTITY, &out, NULL, NULL),
                     PSK_CACHE_FRESH);
    psk_cache_free(c);
    assert_int_equal(atomic_load(&freed_with_key), 0);
}

static void test_psk_cache__bounded_and_clock_keeps_what_is_read(void **state)
{
    (void)state;
    /* 100 entries: one stripe; CLOCK over it */
    struct psk_cache *c = psk_cache_new(100, fake_clock, NULL);
    assert_int_equal(psk_cache_stripes(c), 1);
    char id[32];
    for (unsigned i = 0; i < 100; i++) {
        size_t n = ident(id, sizeof(id), "dev", i);
        struct psk_record r = make_rec(i, 32);
        assert_int_equal(psk_cache_put(c, id, n, &r, 60000, 0, NULL), 0);
    }
    assert_int_equal(psk_cache_count(c), 100);
    /* "dev-0" (the oldest) is read before every insertion: it is never evicted; a flood
     * of unknown identities evicts the unread ones and each other */
    struct psk_record out;
    for (unsigned i = 0; i < 1000; i++) {
        assert_int_equal(psk_cache_get(c, "dev-0", 5, &out, NULL, NULL), PSK_CACHE_FRESH);
        size_t n = ident(id, sizeof(id), "flood", i);
        assert_int_equal(psk_cache_put_negative(c, id, n, PSK_CACHE_UNKNOWN, 5000, NULL), 0);
        assert_true(psk_cache_count(c) <= 100);
    }
    assert_int_equal(psk_cache_count(c), 100);
    assert_int_equal(psk_cache_get(c, "dev-0", 5, &out, NULL, NULL), PSK_CACHE_FRESH);
    assert_int_equal(out.max_conn, 0);
    /* the unread positives went first, then negatives evicted negatives */
    assert_int_equal(psk_cache_get(c, "dev-1", 5, &out, NULL, NULL), PSK_CACHE_MISS);
    assert_int_equal(psk_cache_get(c, "flood-999", 9, &out, NULL, NULL), PSK_CACHE_NEGATIVE);
    psk_cache_free(c);
    assert_int_equal(atomic_load(&freed_with_key), 0);
    assert_true(atomic_load(&freed_entries) >= 1100);

    /* many stripes: 256 x 64; never more than the bound */
    c = psk_cache_new(256 * 64, NULL, NULL);
    assert_int_equal(psk_cache_stripes(c), 256);
    for (unsigned i = 0; i < 40000; i++) {
        size_t n = ident(id, sizeof(id), "many", i);
        struct psk_record r = make_rec(i, 16);
        assert_int_equal(psk_cache_put(c, id, n, &r, 60000, 0, NULL), 0);
    }
    size_t count = psk_cache_count(c);
    assert_true(count <= 256 * 64);
    assert_true(count >= 256 * 64 - 256); /* every stripe full (or one short) */
    psk_cache_free(c);
    /* the default bound: 256 stripes of 4096 */
    c = psk_cache_new(1u << 20, NULL, NULL);
    assert_int_equal(psk_cache_stripes(c), 256);
    assert_int_equal(psk_cache_max_entries(c), 1u << 20);
    psk_cache_free(c);
    assert_null(psk_cache_new(0, NULL, NULL));
}

static int cmp_ident(const void *a, const void *b)
{
    const struct psk_cache_ident *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->id, y->id, n);
    return r != 0 ? r : (int)x->len - (int)y->len;
}

static void test_psk_cache__list_positive_in_batches(void **state)
{
    (void)state;
    struct psk_cache *c = psk_cache_new(1u << 20, fake_clock, NULL);
    enum { N = 3000 };
    char id[32];
    for (unsigned i = 0; i < N; i++) {
        size_t n = ident(id, sizeof(id), "pos", i);
        struct psk_record r = make_rec(i, 16);
        assert_int_equal(psk_cache_put(c, id, n, &r, 60000, 0, NULL), 0);
        n = ident(id, sizeof(id), "neg", i);
        assert_int_equal(psk_cache_put_negative(c, id, n, PSK_CACHE_UNKNOWN, 5000, NULL), 0);
    }
    /* listed in batches of 64 while more positives arrive (stripes grow their buckets) */
    struct psk_cache_ident *all = calloc(4 * N, sizeof(*all));
    struct psk_cache_ident batch[64];
    size_t total = 0, calls = 0, added = 0;
    uint64_t cursor = 0;
    while (cursor != PSK_CACHE_CURSOR_END && calls < 100000) {
        size_t n = psk_cache_list_positive(c, &cursor, batch, 64);
        assert_true(n <= 64);
        assert_true(total + n <= 4 * N);
        memcpy(&all[total], batch, n * sizeof(*batch));
        total += n;
        calls++;
        for (unsigned k = 0; k < 8 && added < N; k++, added++) {
            size_t m = ident(id, sizeof(id), "late", (unsigned)added);
            struct psk_record r = make_rec((unsigned)added, 16);
            assert_int_equal(psk_cache_put(c, id, m, &r, 60000, 0, NULL), 0);
        }
    }
    assert_int_equal(cursor, PSK_CACHE_CURSOR_END);
    assert_int_equal(psk_cache_list_positive(c, &cursor, batch, 64), 0);
    qsort(all, total, sizeof(*all), cmp_ident);
    /* every "pos-" present throughout is listed; no negative is */
    for (unsigned i = 0; i < N; i++) {
        struct psk_cache_ident key = {0};
        key.len = (uint8_t)ident((char *)key.id, sizeof(key.id), "pos", i);
        assert_non_null(bsearch(&key, all, total, sizeof(*all), cmp_ident));
    }
    for (size_t i = 0; i < total; i++) {
        assert_true(memcmp(all[i].id, "neg", 3) != 0);
    }
    /* batches of 1 and 2 on a quiet cache: each positive once, chains of 2+ included */
    for (size_t max = 1; max <= 2; max++) {
        size_t got = 0;
        calls = 0;
        cursor = 0;
        while (cursor != PSK_CACHE_CURSOR_END && calls++ < 100000) {
            size_t n = psk_cache_list_positive(c, &cursor, batch, max);
            assert_true(n <= max);
            assert_true(got + n <= 4 * N);
            memcpy(&all[got], batch, n * sizeof(*batch));
            got += n;
        }
        assert_int_equal(got, N + added);
        qsort(all, got, sizeof(*all), cmp_ident);
        for (size_t i = 1; i < got; i++) {
            assert_true(cmp_ident(&all[i - 1], &all[i]) != 0);
        }
    }
    /* one stripe (a bound under 128), batches of 3 */
    struct psk_cache *one = psk_cache_new(100, fake_clock, NULL);
    assert_int_equal(psk_cache_stripes(one), 1);
    for (unsigned i = 0; i < 100; i++) {
        size_t n = ident(id, sizeof(id), "chain", i);
        struct psk_record r = make_rec(i, 16);
        assert_int_equal(psk_cache_put(one, id, n, &r, 60000, 0, NULL), 0);
    }
    size_t got = 0;
    cursor = 0;
    calls = 0;
    while (cursor != PSK_CACHE_CURSOR_END && calls++ < 10000) {
        got += psk_cache_list_positive(one, &cursor, batch, 3);
    }
    assert_int_equal(got, 100);
    psk_cache_free(one);
    free(all);
    psk_cache_free(c);
}

/* ---- readers on two threads, one writer ------------------------------------------------- */

struct race {
    struct psk_cache *c;
    _Atomic bool stop;
    _Atomic uint64_t reads, found, torn;
};

enum { RACE_IDS = 64 };

static void *reader(void *arg)
{
    struct race *r = arg;
    char id[32];
    struct psk_record out;
    for (unsigned i = 0; i < 2000000 && !atomic_load(&r->stop); i++) {
        size_t n = ident(id, sizeof(id), "race", i % RACE_IDS);
        bool refresh = false;
        enum psk_cache_state st = psk_cache_get(r->c, id, n, &out, &refresh, NULL);
        if (st == PSK_CACHE_FRESH || st == PSK_CACHE_STALE) {
            unsigned v;
            if (!rec_consistent(&out, &v) || v % RACE_IDS != i % RACE_IDS) {
                atomic_fetch_add(&r->torn, 1);
            }
            atomic_fetch_add(&r->found, 1);
        }
        if (refresh) {
            psk_cache_clear_refresh(r->c, id, n);
        }
        atomic_fetch_add(&r->reads, 1);
    }
    return NULL;
}

static void test_psk_cache__two_readers_and_a_writer(void **state)
{
    (void)state;
    struct race r = {.c = psk_cache_new(RACE_IDS / 2, NULL, NULL)}; /* evictions too */
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, reader, &r), 0);
    }
    char id[32];
    uint64_t seed = 42;
    unsigned rounds = TS_SCALE(200000u, 30000u);
    for (unsigned i = 0; i < rounds; i++) {
        unsigned k = (unsigned)(ts_rand(&seed) % RACE_IDS);
        size_t n = ident(id, sizeof(id), "race", k);
        unsigned v = k + RACE_IDS * (unsigned)(ts_rand(&seed) % 1000);
        struct psk_record rec = make_rec(v, 16 + (size_t)(v % 49));
        switch (ts_rand(&seed) % 8) {
        case 0:
            psk_cache_remove(r.c, id, n, NULL);
            break;
        case 1:
            psk_cache_put_negative(r.c, id, n, PSK_CACHE_UNKNOWN, 1000, NULL);
            break;
        case 2:
            psk_cache_put(r.c, id, n, &rec, 0, 60000, NULL); /* stale at once */
            break;
        default:
            assert_int_equal(psk_cache_put(r.c, id, n, &rec, 60000, 0, NULL), 0);
            break;
        }
        assert_true(psk_cache_count(r.c) <= RACE_IDS / 2);
        if (i % 1000 == 0) {
            psk_cache_drop_negatives(r.c);
        }
    }
    atomic_store(&r.stop, true);
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    ts_log("%llu reads, %llu found, %llu torn", (unsigned long long)atomic_load(&r.reads),
           (unsigned long long)atomic_load(&r.found), (unsigned long long)atomic_load(&r.torn));
    assert_int_equal(atomic_load(&r.torn), 0);
    assert_true(atomic_load(&r.found) > 0);
    psk_cache_free(r.c);
    assert_int_equal(atomic_load(&freed_with_key), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_psk_cache__fresh_then_stale_then_miss, setup),
        cmocka_unit_test_setup(test_psk_cache__negative_entries, setup),
        cmocka_unit_test_setup(test_psk_cache__bounded_and_clock_keeps_what_is_read, setup),
        cmocka_unit_test_setup(test_psk_cache__list_positive_in_batches, setup),
        cmocka_unit_test_setup(test_psk_cache__two_readers_and_a_writer, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

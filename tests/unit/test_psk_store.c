/* SPDX-License-Identifier: MIT */
/*
 * The reloadable PSK store: readers on several threads look up without pause while the main
 * thread reloads between two files; every answer is one of the two keys (never freed memory:
 * ASan; never a race: TSan), and a broken file leaves the table in force.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

#include "published.h" /* ssl/'s published pointer, internal (tern_static has it) */

static char path_a[64], path_b[64], path_bad[64];
static tern_psk_store *store;
static _Atomic int stop_readers;
static _Atomic long lookups, bad_answers;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static void *reader(void *arg)
{
    uint8_t key[TERN_PSK_MAX_KEY];
    while (!atomic_load(&stop_readers)) {
        size_t n = tern_psk_store_lookup(store, "dev-1", 5, key);
        /* file A: 0x11..., file B: 0x22...; both 16 bytes */
        if (n != 16 || (key[0] != 0x11 && key[0] != 0x22) || key[15] != key[0]) {
            atomic_fetch_add(&bad_answers, 1);
        }
        atomic_fetch_add(&lookups, 1);
    }
    return NULL;
}

static void test_psk_store__reloads_under_readers(void **state)
{
    int pid = (int)getpid();
    snprintf(path_a, sizeof(path_a), "/tmp/tern-store-a.%d", pid);
    snprintf(path_b, sizeof(path_b), "/tmp/tern-store-b.%d", pid);
    snprintf(path_bad, sizeof(path_bad), "/tmp/tern-store-bad.%d", pid);
    write_file(path_a, "dev-1:11111111111111111111111111111111\n");
    write_file(path_b, "dev-1:22222222222222222222222222222222\ndev-2:33333333333333333333333333333333\n");
    write_file(path_bad, "dev-1:22222222222222222222222222222222\nbroken line\n");

    store = tern_psk_store_new();
    assert_non_null(store);
    uint8_t key[TERN_PSK_MAX_KEY];
    assert_int_equal(tern_psk_store_lookup(store, "dev-1", 5, key), 0); /* empty */
    char err[256];
    assert_int_equal(tern_psk_store_load_file(store, path_a, err, sizeof(err)), 0);
    assert_int_equal(tern_psk_store_count(store), 1);

    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, reader, NULL), 0);
    }
    for (int i = 0; i < 60; i++) {
        assert_int_equal(tern_psk_store_load_file(store, i % 2 ? path_a : path_b, err, sizeof(err)), 0);
        /* a broken file is refused and changes nothing */
        assert_int_equal(tern_psk_store_load_file(store, path_bad, err, sizeof(err)), TERN_EINVAL);
        assert_non_null(strstr(err, ":2:"));
        assert_int_equal(tern_psk_store_count(store), i % 2 ? 1 : 2);
        usleep(1000);
    }
    atomic_store(&stop_readers, 1);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&bad_answers), 0);
    assert_true(atomic_load(&lookups) > 0);
    /* the last good load was file A (i = 59 is odd) */
    assert_int_equal(tern_psk_store_lookup(store, "dev-1", 5, key), 16);
    assert_int_equal(key[0], 0x11);
    assert_int_equal(tern_psk_store_lookup(store, "dev-2", 5, key), 0);
    tern_psk_store_free(store);
    unlink(path_a);
    unlink(path_b);
    unlink(path_bad);
}

/* The store answers with the key's hash: inline lookups and the lookup function alike. */
static void test_psk_store__answers_with_the_key_hash(void **state)
{
    char path[64], err[256];
    uint8_t key[TERN_PSK_MAX_KEY];
    size_t len = 0;
    enum tern_psk_hash hash = TERN_PSK_HASH_SHA256;

    snprintf(path, sizeof(path), "/tmp/tern-store-hash.%d", (int)getpid());
    write_file(path, "dev-256:11111111111111111111111111111111\n"
                     "dev-384:22222222222222222222222222222222:sha384\n");
    tern_psk_store *st = tern_psk_store_new();
    assert_non_null(st);
    assert_int_equal(tern_psk_store_load_file(st, path, err, sizeof(err)), 0);
    assert_int_equal(tern_psk_store_lookup_with_hash(st, "dev-384", 7, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA384);
    assert_int_equal(tern_psk_store_lookup_with_hash(st, "dev-256", 7, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA256);
    assert_int_equal(tern_psk_store_lookup_fn(st, "dev-384", 7, key, &len), TERN_PSK_FOUND_SHA384);
    assert_int_equal(len, 16);
    assert_int_equal(key[0], 0x22);
    assert_int_equal(tern_psk_store_lookup_fn(st, "dev-256", 7, key, &len), TERN_PSK_FOUND);
    assert_int_equal(tern_psk_store_lookup_fn(st, "nobody", 6, key, &len), TERN_PSK_UNKNOWN);
    /* a bad hash refuses the reload with FILE:LINE; the table in force stays */
    write_file(path, "dev-256:11111111111111111111111111111111:md5\n");
    assert_int_equal(tern_psk_store_load_file(st, path, err, sizeof(err)), TERN_EINVAL);
    assert_non_null(strstr(err, ":1: unknown hash"));
    assert_non_null(strstr(err, path));
    assert_int_equal(tern_psk_store_lookup_fn(st, "dev-384", 7, key, &len), TERN_PSK_FOUND_SHA384);
    tern_psk_store_free(st);
    unlink(path);
}

/* A thread reading more published values than its cache holds, in turn, keeps one epoch
 * record per value: records do not pile up with every cache miss. */
static void test_psk_store__many_values_one_record_per_thread(void **state)
{
    enum { VALUES = 12, ROUNDS = 200 };
    tern__published p[VALUES];
    int values[VALUES];
    for (int i = 0; i < VALUES; i++) {
        values[i] = i;
        assert_int_equal(tern__published_init(&p[i], &values[i]), 0);
    }
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < VALUES; i++) {
            void *v;
            tern__published_record *rec = tern__published_enter(&p[i], &v);
            assert_non_null(rec);
            assert_ptr_equal(v, &values[i]);
            tern__published_leave(&p[i], rec);
        }
    }
    for (int i = 0; i < VALUES; i++) {
        assert_int_equal(tern__published_records(&p[i]), 2); /* the writer's and ours */
        assert_ptr_equal(tern__published_destroy(&p[i]), &values[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_psk_store__reloads_under_readers),
        cmocka_unit_test(test_psk_store__answers_with_the_key_hash),
        cmocka_unit_test(test_psk_store__many_values_one_record_per_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

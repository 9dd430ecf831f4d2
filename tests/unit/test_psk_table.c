/* SPDX-License-Identifier: MIT */
/* PSK identity files: the format, every kind of bad line, lookups, the permission warning. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <tern/tern.h>

static char path[64];

static int setup(void **state)
{
    snprintf(path, sizeof(path), "/tmp/tern-psk-table.%d", (int)getpid());
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void write_file(const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_psk_table__loads_and_looks_up(void **state)
{
    write_file("# devices\n"
               "\n"
               "dev-1:000102030405060708090a0b0c0d0e0f\n"
               "  \t\n"
               "site:a:dev-2:FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100\r\n"
               "dev-3:00112233445566778899aabbccddeeff   \n",
               0600);
    tern_psk_table *t = NULL;
    char err[256];
    assert_int_equal(tern_psk_table_load_file(path, &t, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(tern_psk_table_count(t), 3);
    uint8_t key[TERN_PSK_MAX_KEY];
    assert_int_equal(tern_psk_table_lookup(t, "dev-1", 5, key), 16);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[15], 0x0f);
    /* the identity is everything before the last ':' */
    assert_int_equal(tern_psk_table_lookup(t, "site:a:dev-2", 12, key), 32);
    assert_int_equal(key[0], 0xff);
    assert_int_equal(key[31], 0x00);
    assert_int_equal(tern_psk_table_lookup(t, "dev-3", 5, key), 16);
    assert_int_equal(tern_psk_table_lookup(t, "dev-4", 5, key), 0);
    assert_int_equal(tern_psk_table_lookup(t, "dev-", 4, key), 0);
    assert_int_equal(tern_psk_table_lookup(t, "", 0, key), 0);
    tern_psk_table_free(t);
}

static void test_psk_table__bad_lines_refuse_the_file_with_the_line_number(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"ok:000102030405060708090a0b0c0d0e0f\nno colon here\n", ":2: expected identity:hexkey"},
        {":000102030405060708090a0b0c0d0e0f\n", ":1: the identity must be"},
        {"short:0001020304\n", ":1: the key must be"},
        {"odd:000102030405060708090a0b0c0d0e0\n", ":1: the key must be"},
        {"nothex:zz0102030405060708090a0b0c0d0e0f\n", ":1: the key is not hexadecimal"},
        {"d:000102030405060708090a0b0c0d0e0f\nd:000102030405060708090a0b0c0d0e0f\n",
         ":2: duplicate identity"},
        {"ok:000102030405060708090a0b0c0d0e0f:sha384\nmd:000102030405060708090a0b0c0d0e0f:md5\n",
         ":2: unknown hash \"md5\" (sha256 or sha384)"},
        {"sha1:000102030405060708090a0b0c0d0e0f:sha1\n", ":1: unknown hash \"sha1\""},
        {"sha512:000102030405060708090a0b0c0d0e0f:sha512\n", ":1: unknown hash \"sha512\""},
        {"empty:000102030405060708090a0b0c0d0e0f:\n", ":1: the key must be"},
        {":000102030405060708090a0b0c0d0e0f:sha384\n", ":1: the identity must be"},
        {"short:0001020304:sha384\n", ":1: the key must be"},
        {"bad:zz0102030405060708090a0b0c0d0e0f:sha384\n", ":1: the key is not hexadecimal"},
        {"toolong-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:"
         "000102030405060708090a0b0c0d0e0f\n",
         ":1: the identity must be"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_file(cases[i].text, 0600);
        tern_psk_table *t = (tern_psk_table *)0x1;
        char err[256];
        assert_int_equal(tern_psk_table_load_file(path, &t, err, sizeof(err)), TERN_EINVAL);
        assert_ptr_equal(t, (tern_psk_table *)0x1); /* untouched on failure */
        if (strstr(err, cases[i].want) == NULL || strstr(err, path) == NULL) {
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].want);
        }
        /* a key never appears in a message */
        assert_null(strstr(err, "0102030405"));
    }
}

static void test_psk_table__a_third_field_gives_the_key_hash(void **state)
{
    write_file("plain:000102030405060708090a0b0c0d0e0f\n"
               "big:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff:sha384\n"
               "named:000102030405060708090a0b0c0d0e0f:sha256\n"
               "upper:000102030405060708090a0b0c0d0e0f:SHA384  \r\n"
               "site:a:dev:fedcba9876543210fedcba9876543210:sha384\n",
               0600);
    tern_psk_table *t = NULL;
    char err[256];
    assert_int_equal(tern_psk_table_load_file(path, &t, err, sizeof(err)), 0);
    assert_int_equal(tern_psk_table_count(t), 5);
    uint8_t key[TERN_PSK_MAX_KEY];
    enum tern_psk_hash hash = (enum tern_psk_hash)99;
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "plain", 5, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA256); /* the default */
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "big", 3, key, &hash), 32);
    assert_int_equal(hash, TERN_PSK_HASH_SHA384);
    assert_int_equal(key[31], 0xff);
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "named", 5, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA256);
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "upper", 5, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA384);
    /* identities keep their ':'; the key is the field before the hash */
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "site:a:dev", 10, key, &hash), 16);
    assert_int_equal(hash, TERN_PSK_HASH_SHA384);
    assert_int_equal(key[0], 0xfe);
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "big", 3, key, NULL), 32);
    assert_int_equal(tern_psk_table_lookup(t, "big", 3, key), 32); /* the hash is optional */
    hash = (enum tern_psk_hash)99;
    assert_int_equal(tern_psk_table_lookup_with_hash(t, "nobody", 6, key, &hash), 0);
    assert_int_equal(hash, 99); /* untouched when unknown */
    tern_psk_table_free(t);
}

static void test_psk_table__missing_file_and_loose_permissions(void **state)
{
    tern_psk_table *t = NULL;
    char err[256];
    unlink(path);
    assert_int_equal(tern_psk_table_load_file(path, &t, err, sizeof(err)), TERN_EINVAL);
    assert_non_null(strstr(err, "No such file"));
    write_file("dev:000102030405060708090a0b0c0d0e0f\n", 0644);
    assert_int_equal(tern_psk_table_load_file(path, &t, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "readable by group or others"));
    assert_int_equal(tern_psk_table_count(t), 1);
    tern_psk_table_free(t);
}

static void test_psk_table__many_identities(void **state)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++) {
        fprintf(f, "device-%05d:%032x\n", i, i);
    }
    fclose(f);
    chmod(path, 0600);
    tern_psk_table *t = NULL;
    assert_int_equal(tern_psk_table_load_file(path, &t, NULL, 0), 0);
    assert_int_equal(tern_psk_table_count(t), 5000);
    uint8_t key[TERN_PSK_MAX_KEY];
    char id[32];
    for (int i = 0; i < 5000; i += 97) {
        snprintf(id, sizeof(id), "device-%05d", i);
        assert_int_equal(tern_psk_table_lookup(t, id, strlen(id), key), 16);
        assert_int_equal(key[15], i & 0xff);
        assert_int_equal(key[14], (i >> 8) & 0xff);
    }
    assert_int_equal(tern_psk_table_lookup(t, "device-05000", 12, key), 0);
    for (size_t i = 0; i < 5000; i += 499) {
        tern_buf got;
        snprintf(id, sizeof(id), "device-%05zu", i);
        assert_int_equal(tern_psk_table_entry(t, i, &got, key, NULL), 16);
        assert_int_equal(got.len, strlen(id));
        assert_memory_equal(got.base, id, got.len);
    }
    tern_psk_table_free(t);
}

static void test_psk_table__entries_in_the_file_order(void **state)
{
    write_file("# in turn\n"
               "zeta:000102030405060708090a0b0c0d0e0f\n"
               "alpha:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff:sha384\n"
               "\n"
               "site:m:000102030405060708090a0b0c0d0eff:sha256\n",
               0600);
    tern_psk_table *t = NULL;
    assert_int_equal(tern_psk_table_load_file(path, &t, NULL, 0), 0);
    static const struct {
        const char *id;
        size_t key_len;
        uint8_t last;
        enum tern_psk_hash hash;
    } want[] = {
        {"zeta", 16, 0x0f, TERN_PSK_HASH_SHA256},
        {"alpha", 32, 0xff, TERN_PSK_HASH_SHA384},
        {"site:m", 16, 0xff, TERN_PSK_HASH_SHA256},
    };
    uint8_t key[TERN_PSK_MAX_KEY];
    for (size_t i = 0; i < 3; i++) {
        tern_buf id = {NULL, 0};
        enum tern_psk_hash hash = (enum tern_psk_hash)99;
        assert_int_equal(tern_psk_table_entry(t, i, &id, key, &hash), want[i].key_len);
        assert_int_equal(id.len, strlen(want[i].id));
        assert_memory_equal(id.base, want[i].id, id.len);
        assert_int_equal(key[want[i].key_len - 1], want[i].last);
        assert_int_equal(hash, want[i].hash);
    }
    assert_int_equal(tern_psk_table_entry(t, 1, NULL, key, NULL), 32); /* both optional */
    assert_int_equal(tern_psk_table_entry(t, 3, NULL, key, NULL), 0);   /* past the end */
    assert_int_equal(tern_psk_table_entry(NULL, 0, NULL, key, NULL), 0);
    tern_psk_table_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_psk_table__loads_and_looks_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psk_table__bad_lines_refuse_the_file_with_the_line_number,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_psk_table__a_third_field_gives_the_key_hash, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_psk_table__missing_file_and_loose_permissions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_psk_table__many_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_psk_table__entries_in_the_file_order, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

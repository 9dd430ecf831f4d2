/* SPDX-License-Identifier: MIT */
/*
 * error.h: the code table (names, messages, categories), unknown codes. (The address parser
 * of server.h: test_hostport.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <tern/tern.h>

/* ---- the code table ------------------------------------------------------------------- */

static void test_error__system_codes_are_negative_errno(void **state)
{
    (void)state;
    assert_int_equal(TERN_EAGAIN, -EAGAIN);
    assert_int_equal(TERN_ECONNRESET, -ECONNRESET);
    assert_int_equal(TERN_EMFILE, -EMFILE);
    assert_int_equal(TERN_ENOBUFS, -ENOBUFS);
    assert_true(TERN_E_QUEUE_FULL <= -4000);
    assert_true(TERN_E_INTERNAL <= -4000);
}

static void test_error__names_messages_and_categories_follow_the_table(void **state)
{
    (void)state;
    struct row {
        int value;
        const char *name;
        enum tern_err_category cat;
        const char *msg;
    } rows[] = {
#define ROW(name, value, cat, msg) {value, #name, TERN_ERR_CATEGORY_##cat, msg},
        TERN_ERRNO_MAP(ROW)
#undef ROW
    };
    size_t n = sizeof rows / sizeof rows[0];
    assert_true(n > 20);
    for (size_t i = 0; i < n; i++) {
        assert_true(rows[i].value < 0);
        assert_string_equal(tern_err_name(rows[i].value), rows[i].name);
        assert_string_equal(tern_strerror(rows[i].value), rows[i].msg);
        assert_int_equal(tern_err_category_of(rows[i].value), rows[i].cat);
        for (size_t j = i + 1; j < n; j++) {
            assert_int_not_equal(rows[i].value, rows[j].value); /* codes are distinct */
        }
    }
}

static void test_error__known_codes(void **state)
{
    (void)state;
    assert_string_equal(tern_strerror(TERN_ECONNRESET), "connection reset by peer");
    assert_string_equal(tern_err_name(TERN_ECONNRESET), "ECONNRESET");
    assert_int_equal(tern_err_category_of(TERN_ECONNRESET), TERN_ERR_CATEGORY_CLOSED);

    assert_string_equal(tern_err_name(TERN_E_QUEUE_FULL), "E_QUEUE_FULL");
    assert_int_equal(tern_err_category_of(TERN_E_QUEUE_FULL), TERN_ERR_CATEGORY_BLOCKED);
    assert_non_null(strstr(tern_strerror(TERN_E_QUEUE_FULL), "mailbox full"));

    assert_string_equal(tern_err_name(TERN_E_STOPPED), "E_STOPPED");
    assert_int_equal(tern_err_category_of(TERN_E_STOPPED), TERN_ERR_CATEGORY_CLOSED);

    assert_string_equal(tern_err_name(TERN_E_ADDRESS), "E_ADDRESS");
    assert_int_equal(tern_err_category_of(TERN_E_ADDRESS), TERN_ERR_CATEGORY_USAGE);
    assert_string_equal(tern_strerror(TERN_E_ADDRESS), "invalid address");

    assert_string_equal(tern_err_name(TERN_EMFILE), "EMFILE");
    assert_int_equal(tern_err_category_of(TERN_EMFILE), TERN_ERR_CATEGORY_IO);

    assert_string_equal(tern_err_name(TERN_E_INTERNAL), "E_INTERNAL");
    assert_int_equal(tern_err_category_of(TERN_E_INTERNAL), TERN_ERR_CATEGORY_INTERNAL);
    assert_int_equal(tern_err_category_of(TERN_E_IDLE_TIMEOUT), TERN_ERR_CATEGORY_IO);
    assert_int_equal(tern_err_category_of(TERN_E_EOF), TERN_ERR_CATEGORY_CLOSED);
}

static void test_error__zero_and_positive_are_not_errors(void **state)
{
    (void)state;
    assert_string_equal(tern_err_name(0), "OK");
    assert_non_null(tern_strerror(0));
    assert_int_equal(tern_err_category_of(0), TERN_ERR_CATEGORY_NONE);
    assert_int_equal(tern_err_category_of(1), TERN_ERR_CATEGORY_NONE);
    assert_int_equal(tern_err_category_of(4096), TERN_ERR_CATEGORY_NONE);
}

static void test_error__unknown_codes(void **state)
{
    (void)state;
    const int unknown[] = {-3999, -4000, -4098, -4199, -9999, -1000000, -EDOM, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(tern_strerror(unknown[i]), "unknown error");
        assert_string_equal(tern_err_name(unknown[i]), "UNKNOWN");
        const char *cat = tern_err_category_name(tern_err_category_of(unknown[i]));
        assert_non_null(cat);
    }
}

static void test_error__category_names(void **state)
{
    (void)state;
    assert_string_equal(tern_err_category_name(TERN_ERR_CATEGORY_IO), "io");
    assert_string_equal(tern_err_category_name(TERN_ERR_CATEGORY_CLOSED), "closed");
    assert_string_equal(tern_err_category_name(TERN_ERR_CATEGORY_BLOCKED), "blocked");
    assert_string_equal(tern_err_category_name(TERN_ERR_CATEGORY_USAGE), "usage");
    assert_string_equal(tern_err_category_name(TERN_ERR_CATEGORY_INTERNAL), "internal");
    const enum tern_err_category all[] = {TERN_ERR_CATEGORY_NONE,    TERN_ERR_CATEGORY_ALERT,
                                     TERN_ERR_CATEGORY_PROTO,   TERN_ERR_CATEGORY_VERIFY,
                                     (enum tern_err_category)99};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        const char *name = tern_err_category_name(all[i]);
        assert_non_null(name);
        assert_true(strlen(name) > 0);
    }
    /* distinct names for distinct categories */
    assert_string_not_equal(tern_err_category_name(TERN_ERR_CATEGORY_ALERT),
                            tern_err_category_name(TERN_ERR_CATEGORY_VERIFY));
}
int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error__system_codes_are_negative_errno),
        cmocka_unit_test(test_error__names_messages_and_categories_follow_the_table),
        cmocka_unit_test(test_error__known_codes),
        cmocka_unit_test(test_error__zero_and_positive_are_not_errors),
        cmocka_unit_test(test_error__unknown_codes),
        cmocka_unit_test(test_error__category_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

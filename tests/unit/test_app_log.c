/* SPDX-License-Identifier: MIT */
/*
 * The programs' JSON log lines (apps/common/log.c, --log-format json): the key=value fields
 * the callers write, app_log_quote's escapes included, come out as one JSON object per line
 * with every string escaped as JSON wants. stderr is pointed at a temporary file and each
 * line is compared whole, after its timestamp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

static FILE *capture;
static int saved_stderr = -1;
static FILE *saved_stderr_file;
static char line[8192];

static int setup(void **state)
{
    (void)state;
    capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    assert_true(dup2(fileno(capture), STDERR_FILENO) >= 0);
    /* cmocka's own messages go to the real stderr: the FILE, not descriptor 2 */
    saved_stderr_file = stderr;
    stderr = fdopen(saved_stderr, "w");
    assert_non_null(stderr);
    setvbuf(stderr, NULL, _IONBF, 0);
    app_log_set_format(APP_LOG_FORMAT_JSON);
    app_log_set_level(APP_LOG_DEBUG);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    dup2(saved_stderr, STDERR_FILENO);
    fclose(stderr); /* closes saved_stderr */
    stderr = saved_stderr_file;
    fclose(capture);
    app_log_set_format(APP_LOG_FORMAT_TEXT);
    app_log_set_level(APP_LOG_INFO);
    return 0;
}

/* The bytes written to the capture since the last call. Descriptor 2 shares the capture's
 * file offset, which only the program's writes move (reads use pread). */
static size_t read_new(void)
{
    static off_t consumed;
    off_t end = lseek(fileno(capture), 0, SEEK_CUR);
    assert_true(end > consumed && end - consumed < (off_t)sizeof(line));
    ssize_t n = pread(fileno(capture), line, (size_t)(end - consumed), consumed);
    assert_int_equal(n, end - consumed);
    consumed = end;
    line[n] = '\0';
    return (size_t)n;
}

/* The line written since the last call, without its newline, from "level" on (the timestamp
 * checked and cut off). */
static const char *last_line(void)
{
    size_t n = read_new();
    /* exactly one line */
    assert_int_equal(line[n - 1], '\n');
    line[n - 1] = '\0';
    assert_null(strchr(line, '\n'));
    /* {"ts":"YYYY-MM-DDTHH:MM:SS.mmmZ", */
    assert_memory_equal(line, "{\"ts\":\"", 7);
    assert_int_equal(strlen(line) > 7 + 24 + 2, 1);
    assert_int_equal(line[7 + 24], '"');
    assert_int_equal(line[7 + 23], 'Z');
    assert_int_equal(line[7 + 24 + 1], ',');
    return line + 7 + 24 + 2;
}

#define CHECK_LINE(expected) assert_string_equal(last_line(), expected)

static void test_app_log__plain_fields_become_members(void **state)
{
    (void)state;
    app_log(APP_LOG_INFO, "listening", "addr=%s threads=%u", "127.0.0.1:8443", 2u);
    CHECK_LINE("\"level\":\"info\",\"msg\":\"listening\",\"addr\":\"127.0.0.1:8443\","
               "\"threads\":2}");
    app_log_msg(APP_LOG_WARN, "no fields");
    CHECK_LINE("\"level\":\"warn\",\"msg\":\"no fields\"}");
    app_log(APP_LOG_ERROR, "empty format", "%s", "");
    CHECK_LINE("\"level\":\"error\",\"msg\":\"empty format\"}");
}

static void test_app_log__quoted_values_are_unescaped_then_json_escaped(void **state)
{
    (void)state;
    char q1[128], q2[128], q3[128];

    app_log(APP_LOG_INFO, "quotes", "a=%s b=%s c=%s",
            app_log_quote(q1, sizeof(q1), "say \"hi\" \\ back"),
            app_log_quote(q2, sizeof(q2), "tab\there\nnew\x01\x1f\x7f"),
            app_log_quote(q3, sizeof(q3), "x=y z"));
    CHECK_LINE("\"level\":\"info\",\"msg\":\"quotes\",\"a\":\"say \\\"hi\\\" \\\\ back\","
               "\"b\":\"tab\\there\\nnew\\u0001\\u001f\\u007f\",\"c\":\"x=y z\"}");
}

static void test_app_log__empty_values_equals_and_flags(void **state)
{
    (void)state;
    char q[16];

    app_log(APP_LOG_DEBUG, "odd", "empty= quoted=%s k=a=b flag last=1",
            app_log_quote(q, sizeof(q), ""));
    CHECK_LINE("\"level\":\"debug\",\"msg\":\"odd\",\"empty\":\"\",\"quoted\":\"\","
               "\"k\":\"a=b\",\"flag\":true,\"last\":1}");
    /* no closing quote: the value runs to the end */
    app_log(APP_LOG_INFO, "open", "k=\"abc def");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"open\",\"k\":\"abc def\"}");
    /* a backslash that is not one of app_log_quote's escapes stays */
    app_log(APP_LOG_INFO, "escapes", "k=\"a\\qb\\x4\" m=\"\\x41\"");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"escapes\",\"k\":\"a\\\\qb\\\\x4\",\"m\":\"A\"}");
}

static void test_app_log__numbers_only_when_json_numbers(void **state)
{
    (void)state;
    app_log(APP_LOG_INFO, "n", "i=42 z=0 f=1.5 neg=-3 e=1e3 E=2.5E-2 lead=007 dot=1. "
                               "minus=- hex=0x10 inf=inf ver=1.2.3");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"n\",\"i\":42,\"z\":0,\"f\":1.5,\"neg\":-3,"
               "\"e\":1e3,\"E\":2.5E-2,\"lead\":\"007\",\"dot\":\"1.\",\"minus\":\"-\","
               "\"hex\":\"0x10\",\"inf\":\"inf\",\"ver\":\"1.2.3\"}");
    /* a quoted number stays a string */
    app_log(APP_LOG_INFO, "q", "port=\"8443\"");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"q\",\"port\":\"8443\"}");
}

static void test_app_log__message_escaped(void **state)
{
    (void)state;
    app_log_msg(APP_LOG_INFO, "a \"b\"\nc\\d\re");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"a \\\"b\\\"\\nc\\\\d\\re\"}");
}

static void test_app_log__invalid_utf8_bytes_as_code_points(void **state)
{
    (void)state;
    /* é (valid, kept), a lone 0xff, a cut sequence, an overlong '/', a surrogate, U+1F600 */
    app_log(APP_LOG_INFO, "caf\xc3\xa9\xff", "v=%s w=\"\xe2\x82\" o=\xc0\xaf s=\xed\xa0\x80 e=\xf0\x9f\x98\x80",
            "x\xfey");
    CHECK_LINE("\"level\":\"info\",\"msg\":\"caf\xc3\xa9\\u00ff\",\"v\":\"x\\u00fey\","
               "\"w\":\"\\u00e2\\u0082\",\"o\":\"\\u00c0\\u00af\",\"s\":\"\\u00ed\\u00a0\\u0080\","
               "\"e\":\"\xf0\x9f\x98\x80\"}");
}

static void test_app_log__long_lines_cut_whole_members(void **state)
{
    (void)state;
    static char big[6000];

    memset(big, 'x', sizeof(big) - 1);
    app_log(APP_LOG_INFO, "long", "a=1 big=%s c=3", big);
    const char *l = last_line();
    assert_true(strlen(line) < 4096);
    assert_non_null(strstr(l, "\"a\":1"));
    assert_null(strstr(l, "\"big\""));
    assert_null(strstr(l, "\"c\""));
    size_t n = strlen(l);
    assert_string_equal(l + n - 18, ",\"truncated\":true}");

    /* control characters that grow sixfold: still under the limit, still closed */
    static char ctl[3000];
    memset(ctl, '\x01', sizeof(ctl) - 1);
    app_log_msg(APP_LOG_INFO, ctl);
    l = last_line();
    assert_true(strlen(line) < 4096);
    n = strlen(l);
    assert_string_equal(l + n - 19, "\",\"truncated\":true}");
    assert_non_null(strstr(l, "\\u0001\",\"truncated\""));
}

static void test_app_log__text_format_unchanged(void **state)
{
    (void)state;
    char q[64];

    app_log_set_format(APP_LOG_FORMAT_TEXT);
    app_log(APP_LOG_INFO, "listening", "addr=%s why=%s", "127.0.0.1:1",
            app_log_quote(q, sizeof(q), "a \"b\""));
    read_new();
    app_log_set_format(APP_LOG_FORMAT_JSON);
    assert_memory_equal(line, "ts=", 3);
    assert_non_null(
        strstr(line, " level=info msg=\"listening\" addr=127.0.0.1:1 why=\"a \\\"b\\\"\"\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_app_log__plain_fields_become_members),
        cmocka_unit_test(test_app_log__quoted_values_are_unescaped_then_json_escaped),
        cmocka_unit_test(test_app_log__empty_values_equals_and_flags),
        cmocka_unit_test(test_app_log__numbers_only_when_json_numbers),
        cmocka_unit_test(test_app_log__message_escaped),
        cmocka_unit_test(test_app_log__invalid_utf8_bytes_as_code_points),
        cmocka_unit_test(test_app_log__long_lines_cut_whole_members),
        cmocka_unit_test(test_app_log__text_format_unchanged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

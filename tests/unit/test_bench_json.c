/* SPDX-License-Identifier: MIT */
/*
 * A strict JSON checker (RFC 8259: no trailing commas, no leading zeros, no raw control
 * bytes in strings, no duplicate keys, one value then only whitespace), used two ways:
 *
 *   test_bench_json                    cmocka: the checker on good and bad samples, and
 *                                      tern-bench's JSON (apps/tern-bench/report.c) from a
 *                                      made-up result with hostile error texts
 *   test_bench_json FILE [PATH...]     checks FILE (exit 1 and the reason if it is not
 *                                      strict JSON), then prints the value at each PATH
 *                                      ("types.full.count", "series.0.t"; an object or an
 *                                      array prints its size); exit 3 if a PATH is missing
 *
 * The second form is what tests/interop/tern_bench.sh uses: python3 and jq are not on a
 * fresh Debian.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "load.h"
#include "report.h"

#define MAX_DEPTH 64
#define MAX_KEYS 256
#define MAX_PATH 512

struct parser {
    const char *p, *end;
    const char *error; /* the first problem, or NULL */
    size_t error_at;
    const char *base;
    const char *query;  /* the path asked for, or NULL */
    char found[256];    /* its value, as text */
    bool hit;
    int depth;
};

static bool fail_at(struct parser *ps, const char *why)
{
    if (ps->error == NULL) {
        ps->error = why;
        ps->error_at = (size_t)(ps->p - ps->base);
    }
    return false;
}

static void skip_ws(struct parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' ||
                               *ps->p == '\r')) {
        ps->p++;
    }
}

static void match(struct parser *ps, const char *path, const char *start, size_t len)
{
    if (ps->query != NULL && strcmp(ps->query, path) == 0) {
        snprintf(ps->found, sizeof(ps->found), "%.*s", (int)len, start);
        ps->hit = true;
    }
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string; its raw bytes between the quotes go to @p out/@p out_len (for keys). */
static bool parse_string(struct parser *ps, const char **out, size_t *out_len)
{
    if (ps->p >= ps->end || *ps->p != '"') {
        return fail_at(ps, "expected a string");
    }
    ps->p++;
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != '"') {
        unsigned char c = (unsigned char)*ps->p;
        if (c < 0x20) {
            return fail_at(ps, "raw control character in a string");
        }
        if (c == '\\') {
            ps->p++;
            if (ps->p >= ps->end) {
                return fail_at(ps, "unterminated escape");
            }
            char e = *ps->p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (ps->p + i >= ps->end || !is_hex(ps->p[i])) {
                        return fail_at(ps, "bad \\u escape");
                    }
                }
                ps->p += 4;
            } else if (strchr("\"\\/bfnrt", e) == NULL) {
                return fail_at(ps, "unknown escape");
            }
        }
        ps->p++;
    }
    if (ps->p >= ps->end) {
        return fail_at(ps, "unterminated string");
    }
    if (out != NULL) {
        *out = start;
        *out_len = (size_t)(ps->p - start);
    }
    ps->p++;
    return true;
}

static bool parse_number(struct parser *ps)
{
    const char *s = ps->p;
    if (ps->p < ps->end && *ps->p == '-') {
        ps->p++;
    }
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
        return fail_at(ps, "expected a value");
    }
    if (*ps->p == '0') {
        ps->p++;
        if (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            return fail_at(ps, "leading zero in a number");
        }
    } else {
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            ps->p++;
        }
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            return fail_at(ps, "digits expected after '.'");
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            ps->p++;
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
            ps->p++;
        }
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') {
            return fail_at(ps, "digits expected in the exponent");
        }
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            ps->p++;
        }
    }
    (void)s;
    return true;
}

static bool parse_value(struct parser *ps, const char *path);

static bool parse_object(struct parser *ps, const char *path)
{
    const char *keys[MAX_KEYS];
    size_t key_lens[MAX_KEYS];
    size_t n = 0;

    ps->p++; /* '{' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        match(ps, path, "0", 1);
        return true;
    }
    for (;;) {
        const char *key;
        size_t len;
        skip_ws(ps);
        if (!parse_string(ps, &key, &len)) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            if (key_lens[i] == len && memcmp(keys[i], key, len) == 0) {
                return fail_at(ps, "duplicate key");
            }
        }
        if (n == MAX_KEYS) {
            return fail_at(ps, "too many keys for this checker");
        }
        keys[n] = key;
        key_lens[n++] = len;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            return fail_at(ps, "expected ':'");
        }
        ps->p++;
        char sub[MAX_PATH];
        snprintf(sub, sizeof(sub), "%s%s%.*s", path, path[0] != '\0' ? "." : "", (int)len, key);
        if (!parse_value(ps, sub)) {
            return false;
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            char count[24];
            snprintf(count, sizeof(count), "%zu", n);
            match(ps, path, count, strlen(count));
            return true;
        }
        return fail_at(ps, "expected ',' or '}'");
    }
}

static bool parse_array(struct parser *ps, const char *path)
{
    size_t n = 0;

    ps->p++; /* '[' */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        match(ps, path, "0", 1);
        return true;
    }
    for (;;) {
        char sub[MAX_PATH];
        snprintf(sub, sizeof(sub), "%s%s%zu", path, path[0] != '\0' ? "." : "", n);
        if (!parse_value(ps, sub)) {
            return false;
        }
        n++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            char count[24];
            snprintf(count, sizeof(count), "%zu", n);
            match(ps, path, count, strlen(count));
            return true;
        }
        return fail_at(ps, "expected ',' or ']'");
    }
}

static bool parse_value(struct parser *ps, const char *path)
{
    skip_ws(ps);
    if (ps->p >= ps->end) {
        return fail_at(ps, "unexpected end");
    }
    if (++ps->depth > MAX_DEPTH) {
        return fail_at(ps, "nested too deep");
    }
    const char *start = ps->p;
    bool ok;
    switch (*ps->p) {
    case '{':
        ok = parse_object(ps, path);
        break;
    case '[':
        ok = parse_array(ps, path);
        break;
    case '"':
        ok = parse_string(ps, NULL, NULL);
        if (ok) {
            match(ps, path, start + 1, (size_t)(ps->p - start - 2));
        }
        break;
    default:
        if ((size_t)(ps->end - ps->p) >= 4 && memcmp(ps->p, "true", 4) == 0) {
            ps->p += 4;
            ok = true;
        } else if ((size_t)(ps->end - ps->p) >= 5 && memcmp(ps->p, "false", 5) == 0) {
            ps->p += 5;
            ok = true;
        } else if ((size_t)(ps->end - ps->p) >= 4 && memcmp(ps->p, "null", 4) == 0) {
            ps->p += 4;
            ok = true;
        } else {
            ok = parse_number(ps);
        }
        if (ok) {
            match(ps, path, start, (size_t)(ps->p - start));
        }
    }
    ps->depth--;
    return ok;
}

/* Checks @p text; with @p query, fills ps->found. @return true if strict JSON. */
static bool json_check(const char *text, size_t len, const char *query, struct parser *ps)
{
    memset(ps, 0, sizeof(*ps));
    ps->base = ps->p = text;
    ps->end = text + len;
    ps->query = query;
    if (!parse_value(ps, "")) {
        return false;
    }
    skip_ws(ps);
    if (ps->p != ps->end) {
        return fail_at(ps, "text after the value");
    }
    return true;
}

static bool valid(const char *text)
{
    struct parser ps;
    return json_check(text, strlen(text), NULL, &ps);
}

/* ---- self-tests ----------------------------------------------------------------------------- */

static void test_bench_json__checker_accepts(void **state)
{
    assert_true(valid("{}"));
    assert_true(valid(" [ ] "));
    assert_true(valid("{\"a\": [1, -2.5e3, 0, 0.25, true, false, null, \"x\\u00e9\\n\\\"\"]}"));
    assert_true(valid("{\"a\": {\"b\": {}}, \"b\": []}"));
}

static void test_bench_json__checker_refuses(void **state)
{
    const char *bad[] = {
        "",           "{",          "{\"a\":1,}", "[1 2]",        "{\"a\":1,\"a\":2}",
        "\"\x01\"",   "01",         "1.",         "NaN",          "{\"a\"}",
        "{} x",       "[1,]",       "'a'",        "\"\\x41\"",    "{\"a\" 1}",
        "-",          "1e",         "inf",        "[\"a\n\"]",    "{a: 1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i])) {
            fail_msg("accepted bad JSON #%zu: %s", i, bad[i]);
        }
    }
}

static void test_bench_json__query(void **state)
{
    const char *doc = "{\"a\": {\"b\": [10, {\"c\": \"x y\"}]}, \"n\": -1.5}";
    struct parser ps;
    assert_true(json_check(doc, strlen(doc), "a.b.1.c", &ps));
    assert_true(ps.hit);
    assert_string_equal(ps.found, "x y");
    assert_true(json_check(doc, strlen(doc), "a.b", &ps));
    assert_string_equal(ps.found, "2");
    assert_true(json_check(doc, strlen(doc), "n", &ps));
    assert_string_equal(ps.found, "-1.5");
    assert_true(json_check(doc, strlen(doc), "a.x", &ps));
    assert_false(ps.hit);
}

/* tern-bench's document, from a result with every part filled and hostile texts. */
static void test_bench_json__report_is_strict(void **state)
{
    struct bench_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = BENCH_MODE_MIX;
    cfg.mix[BENCH_TYPE_FULL] = 40;
    cfg.mix[BENCH_TYPE_PSK] = 40;
    cfg.mix[BENCH_TYPE_RESUME] = 20;
    cfg.connections = 10;
    cfg.threads = 2;
    cfg.duration_us = 3000000;

    struct bench_result *res = calloc(1, sizeof(*res));
    assert_non_null(res);
    res->cfg = &cfg;
    res->target = "host\"with\\quote:443";
    res->tls = "1.3";
    res->measured_s = 3.0;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        bench_hist_reset(&res->hist[t]);
    }
    for (int i = 1; i <= 600; i++) {
        bench_hist_record(&res->hist[BENCH_TYPE_FULL], (uint64_t)i * 10);
    }
    for (int i = 1; i <= 400; i++) {
        bench_hist_record(&res->hist[BENCH_TYPE_PSK], (uint64_t)i * 5);
    }
    for (int i = 1; i <= 190; i++) {
        bench_hist_record(&res->hist[BENCH_TYPE_RESUME], (uint64_t)i * 3);
    }
    res->total.ok[BENCH_TYPE_FULL] = 600;
    res->total.ok[BENCH_TYPE_PSK] = 400;
    res->total.ok[BENCH_TYPE_RESUME] = 190;
    res->total.full_instead = 6;
    res->total.primed = 10;
    res->total.cross_offered = 150;
    res->total.cross_resumed = 149;
    res->total.errors[BENCH_ERR_ALERT] = 3;
    res->total.errors[BENCH_ERR_RESUME_REFUSED] = 4;
    res->ndetails = 2;
    res->details[0].kind = BENCH_ERR_ALERT;
    res->details[0].count = 2;
    snprintf(res->details[0].text, sizeof(res->details[0].text),
             "alert \"handshake_failure\"\n\ttab\\ \x01\x1f\x7f end");
    res->details[1].kind = BENCH_ERR_OTHER;
    res->details[1].count = 1;
    snprintf(res->details[1].text, sizeof(res->details[1].text), "%s", "plain");
    struct bench_second series[3];
    memset(series, 0, sizeof(series));
    for (int i = 0; i < 3; i++) {
        series[i].t = (uint64_t)i + 1;
        series[i].dur_s = 1.0;
        series[i].warmup = i == 0;
        series[i].delta.ok[BENCH_TYPE_FULL] = 200;
        series[i].p50[BENCH_TYPE_FULL] = 3000;
    }
    res->series = series;
    res->nseries = 3;

    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(bench_report_json(out, res), 0);
    fclose(out);

    struct parser ps;
    if (!json_check(buf, len, "types.full.count", &ps)) {
        fail_msg("not strict JSON: %s at byte %zu:\n%s", ps.error, ps.error_at, buf);
    }
    assert_string_equal(ps.found, "600");
    assert_true(json_check(buf, len, "config.mix.psk", &ps));
    assert_string_equal(ps.found, "40");
    assert_true(json_check(buf, len, "series", &ps));
    assert_string_equal(ps.found, "3");
    assert_true(json_check(buf, len, "series.0.warmup", &ps));
    assert_string_equal(ps.found, "true");
    assert_true(json_check(buf, len, "totals.errors", &ps));
    assert_string_equal(ps.found, "7"); /* 3 alerts, 4 refused resumptions */
    assert_true(json_check(buf, len, "errors.alert", &ps));
    assert_string_equal(ps.found, "3");
    assert_true(json_check(buf, len, "types.resume.count", &ps));
    assert_string_equal(ps.found, "190");
    assert_true(json_check(buf, len, "errors.resume_refused", &ps));
    assert_string_equal(ps.found, "4");
    /* offered: 190 resumed + 6 full instead + 4 refused */
    assert_true(json_check(buf, len, "resumption.offered", &ps));
    assert_string_equal(ps.found, "200");
    assert_true(json_check(buf, len, "resumption.resumed_pct", &ps));
    assert_string_equal(ps.found, "95.000");
    assert_true(json_check(buf, len, "resumption.full_instead_of_resumed.count", &ps));
    assert_string_equal(ps.found, "6");
    assert_true(json_check(buf, len, "resumption.full_instead_of_resumed.rate", &ps));
    assert_string_equal(ps.found, "2.000");
    assert_true(json_check(buf, len, "resumption.full_instead_of_resumed.pct", &ps));
    assert_string_equal(ps.found, "3.000");
    assert_true(json_check(buf, len, "resumption.primed", &ps));
    assert_string_equal(ps.found, "10");
    assert_true(json_check(buf, len, "resumption.across_targets.offered", &ps));
    assert_string_equal(ps.found, "150");
    assert_true(json_check(buf, len, "resumption.across_targets.resumed", &ps));
    assert_string_equal(ps.found, "149");
    assert_true(json_check(buf, len, "series.0.full_instead_of_resumed", &ps));
    assert_string_equal(ps.found, "0");
    assert_true(json_check(buf, len, "config.target", &ps));
    assert_string_equal(ps.found, "host\\\"with\\\\quote:443");

    /* an empty run is strict JSON too */
    memset(&res->total, 0, sizeof(res->total));
    res->ndetails = 0;
    res->nseries = 0;
    res->measured_s = 0;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        bench_hist_reset(&res->hist[t]);
    }
    free(buf);
    buf = NULL;
    out = open_memstream(&buf, &len);
    assert_non_null(out);
    assert_int_equal(bench_report_json(out, res), 0);
    fclose(out);
    if (!json_check(buf, len, "types", &ps)) {
        fail_msg("empty run: not strict JSON: %s at byte %zu:\n%s", ps.error, ps.error_at, buf);
    }
    assert_string_equal(ps.found, "0");
    free(buf);
    free(res);
}

/* ---- the command ------------------------------------------------------------------------------ */

static int check_file(const char *path, int nq, char **queries)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    size_t n;
    while (text != NULL && (n = fread(text + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            char *grown = realloc(text, cap);
            if (grown == NULL) {
                free(text);
                text = NULL;
            } else {
                text = grown;
            }
        }
    }
    fclose(f);
    if (text == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        return 1;
    }
    struct parser ps;
    if (!json_check(text, len, NULL, &ps)) {
        fprintf(stderr, "%s: not strict JSON: %s at byte %zu\n", path, ps.error, ps.error_at);
        free(text);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < nq; i++) {
        json_check(text, len, queries[i], &ps);
        if (!ps.hit) {
            fprintf(stderr, "%s: no %s\n", path, queries[i]);
            rc = 3;
            continue;
        }
        printf("%s\n", ps.found);
    }
    free(text);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        return check_file(argv[1], argc - 2, argv + 2);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_json__checker_accepts),
        cmocka_unit_test(test_bench_json__checker_refuses),
        cmocka_unit_test(test_bench_json__query),
        cmocka_unit_test(test_bench_json__report_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

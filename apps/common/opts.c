/* SPDX-License-Identifier: MIT */
/*
 * Command-line helpers (see opts.h). Used on the main thread, before the runtime starts.
 * Numbers are parsed strictly: strtoull alone would take " 12", "-1" (as a huge value) and
 * "12abc", and every one of those is a typo worth refusing.
 */
#include "opts.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/error.h>

static const char *program = "tern";

void app_opt_set_program(const char *name)
{
    program = name;
}

const char *app_opt_program(void)
{
    return program;
}

_Noreturn void app_opt_fail(const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s; see %s --help\n", program, msg, program);
    exit(APP_EXIT_USAGE);
}

int app_opt_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return TERN_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end != '\0') {
        return TERN_EINVAL;
    }
    if (errno == ERANGE || v < min || v > max) {
        return TERN_ERANGE;
    }
    *out = (uint64_t)v;
    return 0;
}

uint64_t app_opt_uint(const char *opt, const char *arg, uint64_t min, uint64_t max)
{
    uint64_t v;
    int rc = app_opt_parse_uint(arg, min, max, &v);

    if (rc == TERN_ERANGE) {
        app_opt_fail("%s: '%s' is out of range (%llu..%llu)", opt, arg, (unsigned long long)min,
                     (unsigned long long)max);
    }
    if (rc < 0) {
        app_opt_fail("%s: '%s' is not a number (expected an integer in %llu..%llu)", opt, arg,
                     (unsigned long long)min, (unsigned long long)max);
    }
    return v;
}

unsigned app_opt_choice(const char *opt, const char *arg, const char *const *names)
{
    char list[256] = "";
    size_t used = 0;

    for (unsigned i = 0; names[i] != NULL; i++) {
        if (strcmp(arg, names[i]) == 0) {
            return i;
        }
        int n = snprintf(list + used, sizeof(list) - used, "%s%s", i > 0 ? ", " : "", names[i]);
        if (n > 0 && (size_t)n < sizeof(list) - used) {
            used += (size_t)n;
        }
    }
    app_opt_fail("%s: unknown value '%s' (expected one of: %s)", opt, arg, list);
}

_Noreturn void app_opt_getopt_fail(int c, char *const *argv)
{
    /* getopt_long leaves optind past the offending element. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";

    if (c == ':') {
        app_opt_fail("option '%s' needs a value", arg);
    }
    if (strncmp(arg, "--", 2) != 0) {
        app_opt_fail("unknown option '-%c'", optopt);
    }
    /* A known long option sets optopt: the only complaint then is "--flag=value". */
    int len = (int)strcspn(arg, "=");
    if (optopt != 0) {
        app_opt_fail("option '%.*s' takes no value", len, arg);
    }
    app_opt_fail("unknown or ambiguous option '%.*s'", len, arg);
}

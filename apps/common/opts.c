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

#include <tern/tern.h>

#include "conffile.h"
#include "log.h"
#include "tls_opts.h"

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
    /* "--threads: ..." about a value from the configuration file: blame its line */
    char name[64];
    size_t n = strncmp(msg, "--", 2) == 0 ? strcspn(msg + 2, ": '") : 0;
    if (n > 0 && n < sizeof(name)) {
        memcpy(name, msg + 2, n);
        name[n] = '\0';
        const char *where = app_conf_origin(name);
        if (where != NULL) {
            fprintf(stderr, "%s: %s: %s%s\n", program, where, name, msg + 2 + n);
            exit(APP_EXIT_USAGE);
        }
    }
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

int app_opt_parse_seconds_ms(const char *text, uint64_t max_ms, uint64_t *out)
{
    /* By hand rather than strtod: strtod takes "1e3", "inf", "0x10", " 5" and the locale's
     * decimal comma, and rounds; a duration is whole milliseconds or a typo. */
    const char *p = text;
    uint64_t secs = 0, frac = 0;
    bool over = false;

    if (p == NULL || *p < '0' || *p > '9') {
        return TERN_EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        secs = secs * 10 + (uint64_t)(*p - '0');
        if (secs > max_ms / 1000) {
            over = true; /* keep scanning: garbage later is EINVAL, not ERANGE */
            secs = max_ms / 1000 + 1;
        }
    }
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            frac = digits < 3 ? frac * 10 + (uint64_t)(*p - '0') : frac;
        }
        if (digits == 0 || digits > 3) {
            return TERN_EINVAL;
        }
        frac *= digits == 1 ? 100 : digits == 2 ? 10 : 1;
    }
    if (*p != '\0') {
        return TERN_EINVAL;
    }
    uint64_t ms = secs * 1000 + frac;
    if (over || ms > max_ms) {
        return TERN_ERANGE;
    }
    *out = ms;
    return 0;
}

uint64_t app_opt_seconds_ms(const char *opt, const char *arg, uint64_t max_ms)
{
    uint64_t v;
    int rc = app_opt_parse_seconds_ms(arg, max_ms, &v);

    if (rc == TERN_ERANGE) {
        app_opt_fail("%s: '%s' is out of range (0..%llu seconds)", opt, arg,
                     (unsigned long long)(max_ms / 1000));
    }
    if (rc < 0) {
        app_opt_fail("%s: '%s' is not a duration (expected seconds, e.g. 5 or 0.2, at most 3 "
                     "decimals)",
                     opt, arg);
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

bool app_common_option(struct app_common_opts *o, int c, const char *arg,
                       void (*usage)(FILE *out))
{
    switch (c) {
    case 'l':
        o->listen = arg;
        return true;
    case 't':
        o->threads = (unsigned)app_opt_uint("--threads", arg, 1, TERN_MAX_REACTORS);
        return true;
    case APP_OPT_LOG_LEVEL: {
        /* In the order of enum app_log_level. */
        static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
        app_log_set_level((enum app_log_level)app_opt_choice("--log-level", arg, levels));
        return true;
    }
    case APP_OPT_LOG_FORMAT: {
        /* In the order of enum app_log_format. */
        static const char *const formats[] = {"text", "json", NULL};
        app_log_set_format((enum app_log_format)app_opt_choice("--log-format", arg, formats));
        return true;
    }
    case 'h':
        usage(stdout);
        exit(0);
    case 'V':
        printf("%s %s\n", program, tern_version_string());
        exit(0);
    default:
        return false;
    }
}

void app_common_check_listen(const struct app_common_opts *o)
{
    char host[256];
    uint16_t port;
    int rc = tern_parse_host_port(o->listen, host, sizeof(host), &port);

    if (rc == TERN_ENOBUFS) {
        app_opt_fail("--listen: host name too long in '%s'", o->listen);
    }
    if (rc < 0) {
        app_opt_fail("--listen: cannot parse '%s' (expected HOST:PORT, [IPV6]:PORT or :PORT)",
                     o->listen);
    }
}

int app_next_option(int argc, char **argv, const char *shortopts, const struct option *longopts,
                    struct app_common_opts *common, struct app_tls_opts *tls,
                    void (*usage)(FILE *out))
{
    char optstring[64];
    int c;

    snprintf(optstring, sizeof(optstring), ":%s" APP_COMMON_SHORTOPTS, shortopts);
    while ((c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (!app_common_option(common, c, optarg, usage) &&
            (tls == NULL || !app_tls_option(tls, c, optarg))) {
            return c;
        }
    }
    return -1;
}

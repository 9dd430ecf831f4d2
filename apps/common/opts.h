/* SPDX-License-Identifier: MIT */
/*
 * Command-line helpers shared by tern's programs: strict number parsing, choices, and the
 * one way a program reports a bad argument (a single line on stderr, exit code 2).
 *
 *   tern-echo: --threads: '0' is out of range (1..256); see tern-echo --help
 */
#ifndef TERN_APPS_OPTS_H
#define TERN_APPS_OPTS_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/** The exit code for bad arguments, files or addresses. */
#define APP_EXIT_USAGE 2

/** Sets the program name used in messages (default "tern"). Setup only. */
void app_opt_set_program(const char *name);

/** The program name given to `app_opt_set_program`. */
const char *app_opt_program(void);

/**
 * Prints "<program>: <message>; see <program> --help" on stderr and exits with
 * APP_EXIT_USAGE.
 */
_Noreturn void app_opt_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Parses a decimal integer in [@p min, @p max]: digits only (no sign, no spaces, no
 * suffix). @return 0; TERN_EINVAL if @p text is not a number; TERN_ERANGE if it is out of
 * range (or does not fit 64 bits).
 */
int app_opt_parse_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/**
 * `app_opt_parse_uint` for the value @p arg of option @p opt ("--threads"); on a bad value
 * it reports it with `app_opt_fail`.
 */
uint64_t app_opt_uint(const char *opt, const char *arg, uint64_t min, uint64_t max);

/**
 * Parses a duration in seconds with up to three decimals ("5", "0.2", "1.250") into
 * milliseconds, at most @p max_ms: digits, then optionally '.' and 1..3 digits (no sign, no
 * spaces, no exponent, no suffix). @return 0; TERN_EINVAL if @p text is not such a number
 * (a finer value than 1 ms included); TERN_ERANGE if it is over @p max_ms.
 */
int app_opt_parse_seconds_ms(const char *text, uint64_t max_ms, uint64_t *out);

/**
 * `app_opt_parse_seconds_ms` for the value @p arg of option @p opt ("--hibernate-after");
 * on a bad value it reports it with `app_opt_fail`.
 */
uint64_t app_opt_seconds_ms(const char *opt, const char *arg, uint64_t max_ms);

/**
 * The index of @p arg in the NULL-terminated @p names; an unknown value is reported with
 * `app_opt_fail`, listing the accepted ones.
 */
unsigned app_opt_choice(const char *opt, const char *arg, const char *const *names);

/**
 * Reports what getopt_long found wrong and exits: call it when getopt_long (with an
 * optstring starting with ':') returns '?' or ':'. @p c is that return value, @p argv the
 * arguments given to getopt_long.
 */
_Noreturn void app_opt_getopt_fail(int c, char *const *argv);

/*
 * The options every program has, in one table: -l/--listen HOST:PORT, -t/--threads N,
 * --log-level LEVEL, --log-format text|json, -h/--help, -V/--version. A program puts
 * APP_COMMON_LONGOPTS in its getopt_long table and APP_COMMON_SHORTOPTS in its optstring (after
 * the leading ':'), and hands every option to `app_common_option` first.
 */
enum {
    APP_OPT_LOG_LEVEL = 200, /* 200..255: the shared long options (common, TLS) */
    APP_OPT_LOG_FORMAT,
};
#define APP_COMMON_SHORTOPTS "l:t:hV"
#define APP_COMMON_LONGOPTS                                                                     \
    {"listen", required_argument, NULL, 'l'}, {"threads", required_argument, NULL, 't'},       \
        {"log-level", required_argument, NULL, APP_OPT_LOG_LEVEL},                              \
        {"log-format", required_argument, NULL, APP_OPT_LOG_FORMAT},                            \
        {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'}

/** What the common options set; `listen` keeps its default when not given. */
struct app_common_opts {
    const char *listen;
    unsigned threads; /* 0: online CPUs */
};

/**
 * Handles option @p c (a getopt_long return) with value @p arg if it is a common one:
 * --log-level sets the log level, --log-format the line format, --help prints @p usage on
 * stdout and exits 0, --version prints "<program> <version>" and exits 0; a bad value is
 * reported with `app_opt_fail`.
 * @return true if @p c was a common option.
 */
bool app_common_option(struct app_common_opts *o, int c, const char *arg,
                       void (*usage)(FILE *out));

struct app_tls_opts;

/**
 * getopt_long for a program's table @p longopts (holding APP_COMMON_LONGOPTS, and
 * APP_TLS_LONGOPTS when @p tls is not NULL) and its own short options @p shortopts: the
 * common and TLS options are handled on the way (`app_common_option`, `app_tls_option`).
 * A leading ':' is put before @p shortopts, so getopt_long is quiet and tells a missing value
 * (':') from an unknown option ('?'): hand those to `app_opt_getopt_fail`.
 * @return the next option of the program's own, or -1 at the end.
 */
int app_next_option(int argc, char **argv, const char *shortopts, const struct option *longopts,
                    struct app_common_opts *common, struct app_tls_opts *tls,
                    void (*usage)(FILE *out));

/** Checks --listen's HOST:PORT now, so a typo is reported before anything starts. */
void app_common_check_listen(const struct app_common_opts *o);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Command-line helpers shared by tern's programs: strict number parsing, choices, and the
 * one way a program reports a bad argument (a single line on stderr, exit code 2).
 *
 *   tern-echo: --threads: '0' is out of range (1..256); see tern-echo --help
 */
#ifndef TERN_APPS_OPTS_H
#define TERN_APPS_OPTS_H

#include <stdint.h>

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

#endif

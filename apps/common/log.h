/* SPDX-License-Identifier: MIT */
/*
 * Structured one-line logs for tern's programs, on stderr:
 *
 *   ts=2025-11-26T02:24:00.123Z level=info msg="listening" addr=127.0.0.1:8443 threads=2
 *
 * `ts` is UTC with milliseconds, `msg` is always quoted, then come the caller's key=value
 * fields (printf-formatted). Values that may hold spaces or quotes go through
 * `app_log_quote`. Each line is written with a single write(2), so lines from several
 * threads never interleave. Any thread may log; the level is set once, at setup.
 *
 * With `app_log_set_format(APP_LOG_FORMAT_JSON)` (--log-format json) each line is one JSON
 * object instead, for journald, Loki and friends:
 *
 *   {"ts":"2025-11-26T02:24:00.123Z","level":"info","msg":"listening","addr":"127.0.0.1:8443","threads":2}
 *
 * The callers do not change: their key=value fields are read back as logfmt. A quoted value
 * is unescaped (app_log_quote's \" \\ \n \t \xHH) and always stays a JSON string; a bare
 * value that is a JSON number becomes a number, any other one a string (`key=` an empty
 * one); a bare word without '=' is a flag, `"word":true`. Strings are escaped as JSON wants
 * (quotes, backslashes, control characters as \n or \u00XX); a byte that is not part of
 * valid UTF-8 is written as \u00XX, its value as a code point, so every line parses. A line
 * longer than the 4 KiB limit loses its last fields and gets `"truncated":true`.
 */
#ifndef TERN_APPS_LOG_H
#define TERN_APPS_LOG_H

#include <stdbool.h>
#include <stddef.h>

/** Log levels, in increasing severity. */
enum app_log_level {
    APP_LOG_DEBUG,
    APP_LOG_INFO,
    APP_LOG_WARN,
    APP_LOG_ERROR,
};

/** Line formats: key=value text (the default) or one JSON object per line. */
enum app_log_format {
    APP_LOG_FORMAT_TEXT,
    APP_LOG_FORMAT_JSON,
};

/** Sets the format of the lines written from now on. Setup only. */
void app_log_set_format(enum app_log_format format);

/** Sets the lowest level that is written (default APP_LOG_INFO). Setup only. */
void app_log_set_level(enum app_log_level level);

/** Parses "debug", "info", "warn" or "error" into @p out. @return 0, or -1 if unknown. */
int app_log_parse_level(const char *name, enum app_log_level *out);

/** Whether lines of @p level are written (to skip building costly fields). */
bool app_log_enabled(enum app_log_level level);

/**
 * Writes one line: ts, level, msg="@p msg", then @p fields formatted as printf does
 * ("addr=%s threads=%u"). Lines longer than 4 KiB are cut. @thread any
 */
void app_log(enum app_log_level level, const char *msg, const char *fields, ...)
    __attribute__((format(printf, 3, 4)));

/** Writes a line with no fields besides ts, level and msg. @thread any */
void app_log_msg(enum app_log_level level, const char *msg);

/**
 * Writes @p s into @p buf as a quoted log value: surrounded by double quotes, with '"' and
 * '\\' escaped and control characters as \n, \t or \xHH; cut (with "...") to fit @p len.
 * @return @p buf, for use as a printf argument. @p len must be at least 8.
 */
const char *app_log_quote(char *buf, size_t len, const char *s);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Structured logs for the programs (see log.h). The whole line is built in a stack buffer
 * and handed to the kernel with one write(2): stderr is shared by every thread and a
 * single write of less than PIPE_BUF bytes is never interleaved with another one. No locks,
 * no allocation, so reactor threads may log.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

/* Written once at setup, before any thread starts; read-only afterwards. */
static enum app_log_level min_level = APP_LOG_INFO;

static const char *const level_names[] = {
    [APP_LOG_DEBUG] = "debug",
    [APP_LOG_INFO] = "info",
    [APP_LOG_WARN] = "warn",
    [APP_LOG_ERROR] = "error",
};

void app_log_set_level(enum app_log_level level)
{
    min_level = level;
}

int app_log_parse_level(const char *name, enum app_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum app_log_level)i;
            return 0;
        }
    }
    return -1;
}

bool app_log_enabled(enum app_log_level level)
{
    return level >= min_level;
}

const char *app_log_quote(char *buf, size_t len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    /* Keep room for the closing quote, "..." and the NUL. */
    size_t stop = len - 5;
    buf[o++] = '"';
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[4];
        size_t n = 0;

        if (c == '"' || c == '\\') {
            esc[n++] = '\\';
            esc[n++] = (char)c;
        } else if (c == '\n') {
            esc[n++] = '\\';
            esc[n++] = 'n';
        } else if (c == '\t') {
            esc[n++] = '\\';
            esc[n++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            esc[n++] = '\\';
            esc[n++] = 'x';
            esc[n++] = hex[c >> 4];
            esc[n++] = hex[c & 15];
        } else {
            esc[n++] = (char)c;
        }
        if (o + n > stop) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* Appends the timestamp and level; returns the length written. */
static size_t line_start(char *line, size_t len, enum app_log_level level, const char *msg)
{
    struct timespec now;
    struct tm tm;
    char date[32];
    char quoted[512];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    int n = snprintf(line, len, "ts=%s.%03ldZ level=%s msg=%s", date, now.tv_nsec / 1000000,
                     level_names[level], app_log_quote(quoted, sizeof(quoted), msg));
    return n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len - 1);
}

static void line_write(char *line, size_t n)
{
    line[n++] = '\n';
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(STDERR_FILENO, line + off, n - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return; /* nowhere to report it */
        }
        off += (size_t)w;
    }
}

void app_log(enum app_log_level level, const char *msg, const char *fields, ...)
{
    char line[LINE_MAX_BYTES];
    va_list ap;

    if (!app_log_enabled(level)) {
        return;
    }
    /* One byte stays free for the newline. */
    size_t cap = sizeof(line) - 1;
    size_t n = line_start(line, cap, level, msg);
    if (n + 1 < cap) {
        line[n++] = ' ';
        va_start(ap, fields);
        int m = vsnprintf(line + n, cap - n, fields, ap);
        va_end(ap);
        if (m > 0) {
            n += (size_t)m < cap - n ? (size_t)m : cap - n - 1;
        } else {
            n--; /* no fields after all: drop the space */
        }
    }
    line_write(line, n);
}

void app_log_msg(enum app_log_level level, const char *msg)
{
    char line[LINE_MAX_BYTES];

    if (!app_log_enabled(level)) {
        return;
    }
    line_write(line, line_start(line, sizeof(line) - 1, level, msg));
}

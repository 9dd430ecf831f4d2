/* SPDX-License-Identifier: MIT */
/*
 * Structured logs for the programs (see log.h). The whole line is built in a stack buffer
 * and handed to the kernel with one write(2): stderr is shared by every thread and a
 * single write of less than PIPE_BUF bytes is never interleaved with another one. No locks,
 * no allocation, so reactor threads may log.
 */
#include "log.h"
#include "hex.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

/* Written once at setup, before any thread starts; read-only afterwards. */
static enum app_log_level min_level = APP_LOG_INFO;
static enum app_log_format line_format = APP_LOG_FORMAT_TEXT;

static const char *const level_names[] = {
    [APP_LOG_DEBUG] = "debug",
    [APP_LOG_INFO] = "info",
    [APP_LOG_WARN] = "warn",
    [APP_LOG_ERROR] = "error",
};

void app_log_set_format(enum app_log_format format)
{
    line_format = format;
}

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

/* The time now as "2025-11-26T02:24:00.123Z" (UTC, milliseconds). */
static void timestamp(char *out, size_t len)
{
    struct timespec now;
    struct tm tm;
    char date[32];

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%03ldZ", date, now.tv_nsec / 1000000);
}

/* Appends the timestamp and level; returns the length written. */
static size_t line_start(char *line, size_t len, enum app_log_level level, const char *msg)
{
    char ts[48];
    char quoted[512];

    timestamp(ts, sizeof(ts));
    int n = snprintf(line, len, "ts=%s level=%s msg=%s", ts, level_names[level],
                     app_log_quote(quoted, sizeof(quoted), msg));
    return n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len - 1);
}

/* ---- JSON lines ------------------------------------------------------------------------------ */

/*
 * An output buffer that refuses what does not fit: `full` tells the caller to stop. Strings
 * are cut between characters (never inside an escape or a UTF-8 sequence) and always closed,
 * so whatever was written is valid JSON up to the last complete member.
 */
struct jbuf {
    char *p;
    size_t cap;
    size_t n;
    bool full;
};

static void jput(struct jbuf *b, const char *s, size_t n)
{
    if (b->full || n > b->cap - b->n) {
        b->full = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

#define JPUT_LIT(b, lit) jput((b), (lit), sizeof(lit) - 1)

/* The length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0 if invalid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */

    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return len;
}

/* Appends @p s (@p n bytes) as a JSON string; cut (and `full` set) if it does not fit. */
static void jstr(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;

    if (b->full || b->cap - b->n < 2) {
        b->full = true;
        return;
    }
    b->p[b->n++] = '"';
    for (size_t i = 0; i < n;) {
        char esc[8];
        const char *out = esc;
        size_t len = 0, used = 1;
        unsigned char c = u[i];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            len = 2;
        } else if (c == '\n' || c == '\t' || c == '\r') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\t' ? 't' : 'r';
            len = 2;
        } else if (c >= 0x80 && (used = utf8_len(u + i, n - i)) > 0) {
            out = s + i;
            len = used;
        } else if (c < 0x20 || c >= 0x7f) {
            /* a control character, DEL, or a byte of invalid UTF-8 */
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            len = 6;
            used = 1;
        } else {
            esc[0] = (char)c;
            len = 1;
        }
        if (len + 1 > b->cap - b->n) { /* keep room for the closing quote */
            b->full = true;
            break;
        }
        memcpy(b->p + b->n, out, len);
        b->n += len;
        i += used;
    }
    b->p[b->n++] = '"';
}

/* Whether @p s (@p n bytes) is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_json_number(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || n > 32) {
        return false;
    }
    if (s[i] == '-') {
        i++;
    }
    if (i < n && s[i] == '0') {
        i++;
    } else if (i < n && s[i] >= '1' && s[i] <= '9') {
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        return false;
    }
    if (i < n && s[i] == '.') {
        size_t d = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == d) {
            return false;
        }
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        size_t d = i;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == d) {
            return false;
        }
    }
    return i == n;
}

/* Undoes app_log_quote from @p p (just past the opening quote) into @p out; returns where the
 * value ends (past the closing quote, or at the end of the text if there is none). */
static const char *unquote(const char *p, char *out, size_t *out_len)
{
    size_t o = 0;

    while (*p != '\0' && *p != '"') {
        if (*p != '\\' || p[1] == '\0') {
            out[o++] = *p++;
            continue;
        }
        char e = p[1];
        int h1, h2;
        if (e == '"' || e == '\\') {
            out[o++] = e;
            p += 2;
        } else if (e == 'n' || e == 't' || e == 'r') {
            out[o++] = e == 'n' ? '\n' : e == 't' ? '\t' : '\r';
            p += 2;
        } else if (e == 'x' && (h1 = app_hex_digit((unsigned char)p[2])) >= 0 && (h2 = app_hex_digit((unsigned char)p[3])) >= 0) {
            out[o++] = (char)(h1 * 16 + h2);
            p += 4;
        } else {
            out[o++] = *p++; /* not an escape of ours: the backslash stays */
        }
    }
    *out_len = o;
    return *p == '"' ? p + 1 : p;
}

/* Appends the members of the logfmt @p fields ("k=v k2=\"q v\" flag"); stops at the first
 * that does not fit whole. */
static void json_fields(struct jbuf *b, const char *fields)
{
    char value[LINE_MAX_BYTES];
    const char *p = fields;

    for (;;) {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            return;
        }
        const char *key = p;
        size_t key_len = strcspn(p, "= ");
        size_t mark = b->n;
        p += key_len;
        jput(b, ",", 1);
        jstr(b, key, key_len);
        jput(b, ":", 1);
        if (*p != '=') {
            jput(b, "true", 4); /* a bare word: a flag */
        } else if (*++p == '"') {
            size_t n;
            p = unquote(p + 1, value, &n);
            jstr(b, value, n);
        } else {
            size_t n = strcspn(p, " ");
            if (is_json_number(p, n)) {
                jput(b, p, n);
            } else {
                jstr(b, p, n);
            }
            p += n;
        }
        if (b->full) {
            b->n = mark; /* the member that did not fit goes whole */
            return;
        }
    }
}

/* Builds the JSON line into @p line (@p len bytes, newline excluded); returns its length. */
static size_t json_line(char *line, size_t len, enum app_log_level level, const char *msg,
                        const char *fields)
{
    static const char tail[] = ",\"truncated\":true}";
    char ts[48];
    /* The tail's room is kept back until the end. */
    struct jbuf b = {.p = line, .cap = len - sizeof(tail), .n = 0, .full = false};

    timestamp(ts, sizeof(ts));
    JPUT_LIT(&b, "{\"ts\":\"");
    jput(&b, ts, strlen(ts));
    JPUT_LIT(&b, "\",\"level\":\"");
    jput(&b, level_names[level], strlen(level_names[level]));
    JPUT_LIT(&b, "\",\"msg\":");
    jstr(&b, msg, strlen(msg));
    if (!b.full && fields != NULL) {
        json_fields(&b, fields);
    }
    b.cap = len;
    if (b.full) {
        b.full = false;
        jput(&b, tail, sizeof(tail) - 1);
    } else {
        jput(&b, "}", 1);
    }
    return b.n;
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
    if (line_format == APP_LOG_FORMAT_JSON) {
        char fields_text[LINE_MAX_BYTES];
        va_start(ap, fields);
        int m = vsnprintf(fields_text, sizeof(fields_text), fields, ap);
        va_end(ap);
        line_write(line, json_line(line, sizeof(line) - 1, level, msg, m > 0 ? fields_text : NULL));
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
    if (line_format == APP_LOG_FORMAT_JSON) {
        line_write(line, json_line(line, sizeof(line) - 1, level, msg, NULL));
        return;
    }
    line_write(line, line_start(line, sizeof(line) - 1, level, msg));
}

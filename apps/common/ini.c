/* SPDX-License-Identifier: MIT */
/*
 * Line-numbered INI files over libinih (see ini.h).
 */
#include "ini.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reader {
    struct app_ini ini;
    const struct app_ini_callbacks *cb;
    void *user;
    FILE *f;
    bool in_section;
    char buf[APP_INI_MAX_LINE + 2];
};

void app_ini_error(struct app_ini *ini, unsigned line, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ini->errors++;
    ini->last_error_line = line;
    if (ini->err_used + 1 < ini->err_len) {
        size_t room = ini->err_len - ini->err_used;
        int n = snprintf(ini->err + ini->err_used, room, "%s%s:%u: %s",
                         ini->err_used > 0 ? "\n" : "", ini->path, line, msg);
        if (n > 0) {
            ini->err_used += (size_t)n < room ? (size_t)n : room - 1;
        }
    }
}

static char *trim(char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    size_t n = strlen(p);
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r' || p[n - 1] == '\n')) {
        p[--n] = '\0';
    }
    return p;
}

/* A section header, seen before inih: so that an empty section and a duplicate one are
 * known, with their lines. */
static void on_section(struct reader *r, char *line)
{
    char *end = strchr(line, ']');
    if (end == NULL) {
        return; /* inih reports the syntax error */
    }
    *end = '\0';
    char *name = trim(line + 1);
    r->in_section = true;
    r->cb->section(&r->ini, name, strlen(name), r->user);
}

/* A "key = value" line longer than inih's line buffer, read here with inih's rules. */
static void long_value(struct reader *r, char *line)
{
    char *p = trim(line);
    if (*p == '\0' || *p == ';' || *p == '#') {
        return;
    }
    char *eq = strpbrk(p, "=:");
    if (eq == NULL) {
        app_ini_error(&r->ini, r->ini.line, "syntax error: expected 'key = value'");
        return;
    }
    *eq = '\0';
    char *value = eq + 1;
    for (char *q = value; *q != '\0'; q++) {
        if (*q == ';' && q > value && (q[-1] == ' ' || q[-1] == '\t')) {
            *q = '\0';
            break;
        }
    }
    r->cb->value(&r->ini, r->in_section, trim(p), trim(value), r->user);
}

/* inih's reader: one line per call, counted; a line over APP_INI_MAX_LINE is refused, one
 * over inih's buffer read by long_value; both reach inih as a comment. */
static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;

    if (num < 3 || fgets(r->buf, sizeof(r->buf), r->f) == NULL) {
        return NULL;
    }
    r->ini.line++;
    size_t n = strlen(r->buf);
    if (n > 0 && r->buf[n - 1] != '\n' && !feof(r->f)) {
        app_ini_error(&r->ini, r->ini.line, "line longer than %d bytes", APP_INI_MAX_LINE);
        int ch;
        while ((ch = fgetc(r->f)) != EOF && ch != '\n') {
        }
        snprintf(str, (size_t)num, "#\n");
        return str;
    }
    char *p = r->buf;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '[') {
        char copy[APP_INI_MAX_LINE + 2];
        snprintf(copy, sizeof(copy), "%s", p);
        on_section(r, copy);
    } else if (n >= (size_t)num - 1) {
        long_value(r, r->buf);
        snprintf(str, (size_t)num, "#\n");
        return str;
    }
    snprintf(str, (size_t)num, "%s", r->buf);
    return str;
}

static int on_value(void *user, const char *section, const char *name, const char *value)
{
    struct reader *r = user;
    (void)section; /* the reader tracks the sections, with their lines */
    r->cb->value(&r->ini, r->in_section, name, value, r->user);
    return 1;
}

int app_ini_read(const char *path, const struct app_ini_callbacks *cb, void *user, char *err,
                 size_t len)
{
    if (len > 0) {
        err[0] = '\0';
    }
    struct reader *r = calloc(1, sizeof(*r)); /* 4 KiB of line: not on a thread's stack */
    if (r == NULL) {
        snprintf(err, len, "%s: out of memory", path);
        return -1;
    }
    r->ini = (struct app_ini){.path = path, .err = err, .err_len = len};
    r->cb = cb;
    r->user = user;
    if ((r->f = fopen(path, "re")) == NULL) {
        snprintf(err, len, "%s: cannot open: %s", path, strerror(errno));
        free(r);
        return -1;
    }
    /* Debian's libinih has its options as variables: one value per line, no continuation
     * lines (a line starting with spaces is not part of the previous value), a line without
     * '=' is an error, every error reported (not only the first). */
    ini_allow_multiline = false;
    ini_allow_no_value = false;
    ini_stop_on_first_error = false;
    int rc = ini_parse_stream(read_line, r, on_value, r);
    bool read_error = ferror(r->f) != 0;
    fclose(r->f);
    int out;
    if (read_error) {
        snprintf(err, len, "%s: read error", path);
        out = -1;
    } else {
        if (rc == -2) {
            app_ini_error(&r->ini, r->ini.line, "out of memory");
        } else if (rc > 0 && (unsigned)rc != r->ini.last_error_line) {
            /* inih's own: a line that is neither "key = value", a comment nor a [section] */
            app_ini_error(&r->ini, (unsigned)rc,
                          "syntax error: expected 'key = value' or '[section]'");
        }
        out = r->ini.errors > 0 ? -1 : 0;
    }
    free(r);
    return out;
}

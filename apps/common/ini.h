/* SPDX-License-Identifier: MIT */
/*
 * INI files for tern's programs, read with Debian's libinih, every line numbered: the
 * gateway's configuration (sections are services) and the single-section files of the other
 * programs (conffile.h). libinih does the syntax; this reader feeds it line by line, so each
 * key and each [section] is known with its line, refuses lines over APP_INI_MAX_LINE (inih
 * would cut them silently) and reads lines longer than inih's own buffer (Debian builds it
 * with 200 bytes) itself, with inih's rules: the first '=' or ':' splits, ';' after a space
 * starts a comment, '#' or ';' first on a line is a comment, no continuation lines.
 *
 * Problems are collected as "FILE:LINE: what" lines in the caller's buffer, every one of them
 * (as many as fit), so a check (-t) shows them all at once.
 */
#ifndef TERN_APPS_INI_H
#define TERN_APPS_INI_H

#include <stdbool.h>
#include <stddef.h>

#define APP_INI_MAX_LINE 4096

/** The reader's state, as the callbacks see it. */
struct app_ini {
    const char *path;
    unsigned line; /* the line being read */
    char *err;
    size_t err_len, err_used;
    unsigned errors;
    unsigned last_error_line;
};

struct app_ini_callbacks {
    /** A [section] header, its name trimmed (not checked). */
    void (*section)(struct app_ini *ini, const char *name, size_t len, void *user);
    /** A key = value line (both trimmed); @p in_section: after a [section] header. */
    void (*value)(struct app_ini *ini, bool in_section, const char *key, const char *value,
                  void *user);
};

/** Adds "FILE:LINE: message" to the problems. */
void app_ini_error(struct app_ini *ini, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Reads @p path, calling @p cb for each section and value.
 * @return 0; -1 with @p err holding every problem (or why the file could not be read).
 */
int app_ini_read(const char *path, const struct app_ini_callbacks *cb, void *user, char *err,
                 size_t len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The reader of tern's secret text files: PSK identity files (psk_table.c) and session ticket
 * key files (tickets.c). It owns what the two share, so that both say the same things the
 * same way: opening ("FILE: No such file or directory"), line splitting with '#' comments and
 * blank lines skipped, trailing white space (isspace) removed, "FILE: read error", errors as
 * "FILE:LINE: reason" or "FILE: reason", the warning about a file readable by group or others,
 * hex digits, and zeroing every buffer that held a line (keys are never left in freed memory).
 *
 * Not thread-safe: one reader per load, on the loading thread. Internal (tern__), never
 * installed.
 */
#ifndef TERN_SSL_KEYFILE_H
#define TERN_SSL_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

typedef struct tern__keyfile {
    const char *path; /* ro: as given to open */
    unsigned lineno;  /* ro: the number of the line `next` returned last (1-based) */
    struct stat st;   /* ro: the opened file (zeroed if fstat failed) */
    /* private */
    FILE *f;
    char *buf;
    size_t cap;
    size_t max_line;
    char *err;
    size_t err_len;
} tern__keyfile;

/**
 * Opens @p path for reading. @p err (may be NULL) is cleared now and receives the reason of a
 * failure, here or in the calls below, or the permission warning of `tern__keyfile_close`.
 * @param max_line      the longest line accepted, its newline excluded; 0: any length
 * @param regular_only  refuse anything but a regular file ("FILE: not a regular file")
 * @return 0; TERN_EINVAL ("FILE: strerror"). On failure nothing is left open (close is a
 *         no-op then).
 */
int tern__keyfile_open(tern__keyfile *kf, const char *path, size_t max_line, bool regular_only,
                       char *err, size_t err_len);

/**
 * The next line that is neither blank nor a comment ('#' after optional blanks), without its
 * trailing white space. @p line receives the whole line, @p text (may be NULL) the same line
 * after its leading blanks (spaces and tabs); both are valid until the next call or close. A
 * NUL byte ends the line's text.
 * @return 1 with a line; 0 at the end of the file; TERN_EINVAL ("FILE:LINE: line too long",
 *         "FILE: read error").
 */
int tern__keyfile_next(tern__keyfile *kf, char **line, char **text);

/** Says "FILE: <fmt...>" in the error. @return TERN_EINVAL. */
int tern__keyfile_fail(tern__keyfile *kf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** Says "FILE:LINE: <fmt...>" (the line `next` returned last) in the error. @return TERN_EINVAL. */
int tern__keyfile_fail_line(tern__keyfile *kf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * Zeroes the line buffer and closes the file. @p loaded: the file was accepted; then the error
 * string receives "FILE: readable by group or others (chmod 600 recommended)" if its mode
 * lets group or others in, and stays "" otherwise.
 */
void tern__keyfile_close(tern__keyfile *kf, bool loaded);

/** The value of hex digit @p c (either case), or -1. */
int tern__hexval(int c);

/**
 * Decodes @p n bytes from the 2 * @p n hex digits at @p hex into @p out.
 * @return -1 when all were hex digits; else the index in @p hex of the first that is not
 *         (then @p out is zeroed: it may have held part of a key).
 */
long tern__hex_decode(const char *hex, uint8_t *out, size_t n);

#endif

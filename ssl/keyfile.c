/* SPDX-License-Identifier: MIT */
/*
 * The key-file reader (keyfile.h). getline(3) rather than a fixed buffer, so that a line's
 * length is known before anything is parsed and a file's limit ("line too long") is the
 * caller's choice; the buffer is zeroed before it is freed because it held keys.
 *
 * Also the passphrase files of encrypted private keys (tern_ssl_read_passphrase_file), read
 * with read(2) into a stack buffer that is zeroed: no stdio buffer keeps a copy.
 */
#include "keyfile.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <tern/error.h>
#include <tern/ssl_config.h>

static int vfail(tern__keyfile *kf, bool with_line, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static int vfail(tern__keyfile *kf, bool with_line, const char *fmt, va_list ap)
{
    if (kf->err != NULL && kf->err_len > 0) {
        int n = with_line ? snprintf(kf->err, kf->err_len, "%s:%u: ", kf->path, kf->lineno)
                          : snprintf(kf->err, kf->err_len, "%s: ", kf->path);
        if (n >= 0 && (size_t)n < kf->err_len) {
            vsnprintf(kf->err + n, kf->err_len - (size_t)n, fmt, ap);
        }
    }
    return TERN_EINVAL;
}

int tern__keyfile_fail(tern__keyfile *kf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(kf, false, fmt, ap);
    va_end(ap);
    return rc;
}

int tern__keyfile_fail_line(tern__keyfile *kf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(kf, true, fmt, ap);
    va_end(ap);
    return rc;
}

int tern__keyfile_open(tern__keyfile *kf, const char *path, size_t max_line, bool regular_only,
                       char *err, size_t err_len)
{
    memset(kf, 0, sizeof(*kf));
    kf->path = path;
    kf->max_line = max_line;
    kf->err = err;
    kf->err_len = err_len;
    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if ((kf->f = fopen(path, "re")) == NULL) {
        return tern__keyfile_fail(kf, "%s", strerror(errno));
    }
    bool known = fstat(fileno(kf->f), &kf->st) == 0;
    if (!known) {
        memset(&kf->st, 0, sizeof(kf->st));
    }
    if (regular_only && (!known || !S_ISREG(kf->st.st_mode))) {
        fclose(kf->f);
        kf->f = NULL;
        return tern__keyfile_fail(kf, "not a regular file");
    }
    return 0;
}

int tern__keyfile_next(tern__keyfile *kf, char **line, char **text)
{
    for (;;) {
        ssize_t n = getline(&kf->buf, &kf->cap, kf->f);
        if (n < 0) {
            return ferror(kf->f) ? tern__keyfile_fail(kf, "read error") : 0;
        }
        kf->lineno++;
        size_t body = (size_t)n - (n > 0 && kf->buf[n - 1] == '\n' ? 1 : 0);
        if (kf->max_line > 0 && body > kf->max_line) {
            return tern__keyfile_fail_line(kf, "line too long");
        }
        size_t len = strlen(kf->buf);
        while (len > 0 && isspace((unsigned char)kf->buf[len - 1])) {
            kf->buf[--len] = '\0';
        }
        size_t lead = strspn(kf->buf, " \t");
        if (kf->buf[lead] == '\0' || kf->buf[lead] == '#') {
            continue;
        }
        *line = kf->buf;
        if (text != NULL) {
            *text = kf->buf + lead;
        }
        return 1;
    }
}

void tern__keyfile_close(tern__keyfile *kf, bool loaded)
{
    if (kf->buf != NULL) {
        explicit_bzero(kf->buf, kf->cap);
        free(kf->buf);
        kf->buf = NULL;
        kf->cap = 0;
    }
    if (kf->f == NULL) {
        return;
    }
    fclose(kf->f);
    kf->f = NULL;
    if (loaded && (kf->st.st_mode & (S_IRWXG | S_IRWXO)) != 0 && kf->err != NULL) {
        snprintf(kf->err, kf->err_len, "%s: readable by group or others (chmod 600 recommended)",
                 kf->path);
    }
}

int tern__hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

long tern__hex_decode(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = tern__hexval(hex[2 * i]), lo = tern__hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            explicit_bzero(out, n);
            return (long)(2 * i + (hi < 0 ? 0 : 1));
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return -1;
}

/* Reads up to @p cap bytes of @p path into @p buf. @return the length; -1 with errno set;
 * -2 if the file holds more than @p cap bytes. */
static ssize_t read_into(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0) {
        return -1;
    }
    for (;;) {
        char extra;
        ssize_t r = len < cap ? read(fd, buf + len, cap - len) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) {
            break;
        }
        if (len == cap) {
            close(fd);
            return -2;
        }
        len += (size_t)r;
    }
    close(fd);
    return (ssize_t)len;
}

#define TOO_LONG_TEXT(n) "longer than " #n " bytes: not a passphrase file"
#define TOO_LONG(n) TOO_LONG_TEXT(n)

ssize_t tern_ssl_read_passphrase_file(const char *path, char *buf, size_t size, char *err,
                                      size_t err_len)
{
    char pass[TERN_SSL_MAX_PASSPHRASE + 2]; /* one byte more than the longest, and its '\n' */
    const char *why = NULL;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (path == NULL || buf == NULL || size == 0) {
        return TERN_EINVAL;
    }
    ssize_t n = read_into(path, pass, sizeof(pass) - 1);
    size_t len = 0;
    if (n == -2) {
        why = TOO_LONG(TERN_SSL_MAX_PASSPHRASE);
    } else if (n < 0) {
        why = strerror(errno);
    } else {
        len = (size_t)n;
        if (len > 0 && pass[len - 1] == '\n') {
            len--;
            if (len > 0 && pass[len - 1] == '\r') {
                len--;
            }
        }
        if (len > TERN_SSL_MAX_PASSPHRASE) {
            why = TOO_LONG(TERN_SSL_MAX_PASSPHRASE);
        } else if (len == 0) {
            why = "empty (expected the key's passphrase)";
        } else if (memchr(pass, '\0', len) != NULL) {
            why = "holds a NUL byte: not a passphrase file";
        }
    }
    int rc = 0;
    if (why != NULL) {
        if (err != NULL) {
            snprintf(err, err_len, "%s: %s", path, why);
        }
        rc = TERN_EINVAL;
    } else if (len >= size) {
        rc = TERN_ENOBUFS;
    } else {
        memcpy(buf, pass, len);
        buf[len] = '\0';
    }
    explicit_bzero(pass, sizeof(pass));
    if (rc < 0) {
        explicit_bzero(buf, size);
        return rc;
    }
    return (ssize_t)len;
}

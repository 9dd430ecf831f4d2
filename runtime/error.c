/* SPDX-License-Identifier: MIT */
/*
 * The error table's strings and categories, and small helpers shared by runtime/ files.
 * Pure functions: any thread.
 */
#include "util.h"

#include <tern/error.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

const char *tern_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
#define XX(name, value, cat, msg)                                                              \
    case value:                                                                                \
        return msg;
        TERN_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

const char *tern_err_name(int err)
{
    switch (err) {
    case 0:
        return "OK";
#define XX(name, value, cat, msg)                                                              \
    case value:                                                                                \
        return #name;
        TERN_ERRNO_MAP(XX)
#undef XX
    default:
        return "UNKNOWN";
    }
}

enum tern_err_category tern_err_category_of(int err)
{
    if (err >= 0) {
        return TERN_ERR_CATEGORY_NONE;
    }
    switch (err) {
#define XX(name, value, cat, msg)                                                              \
    case value:                                                                                \
        return TERN_ERR_CATEGORY_##cat;
        TERN_ERRNO_MAP(XX)
#undef XX
    default:
        return TERN_ERR_CATEGORY_IO; /* an errno outside the table */
    }
}

const char *tern_err_category_name(enum tern_err_category cat)
{
    static const char *const names[] = {"none",  "io",     "closed", "blocked", "alert",
                                        "proto", "verify", "usage",  "internal"};
    if ((unsigned)cat >= sizeof(names) / sizeof(names[0])) {
        return "unknown";
    }
    return names[cat];
}

int tern__errno(void)
{
    return errno > 0 ? -errno : TERN_E_INTERNAL;
}

int tern__set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        return tern__errno();
    }
    fl = fcntl(fd, F_GETFD);
    if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0) {
        return tern__errno();
    }
    return 0;
}

int tern__format_sockaddr(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        n = snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        n = snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        n = snprintf(buf, len, "(family %d)", sa->sa_family);
    }
    return n < 0 || (size_t)n >= len ? TERN_ENOBUFS : 0;
}

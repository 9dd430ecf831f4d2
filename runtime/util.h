/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every part of the runtime uses: container_of, the cache line and error
 * string sizes, descriptors and addresses (error.c).
 */
#ifndef TERN_RUNTIME_UTIL_H
#define TERN_RUNTIME_UTIL_H

#include <netinet/in.h>
#include <stddef.h>
#include <sys/socket.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define TERN__CACHELINE 64
#define TERN__ERRSTR 160

/* An IPv4 or IPv6 address (28 bytes, where a sockaddr_storage takes 128): what accept(2)
 * gives for a TCP listener, what a client binds before connecting. */
union tern__sockaddr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
};

int tern__set_nonblock_cloexec(int fd);
int tern__format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
int tern__errno(void); /* -errno, never 0 */

#endif

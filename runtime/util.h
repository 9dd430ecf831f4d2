/* SPDX-License-Identifier: MIT */
/*
 * Small helpers every part of the runtime uses: container_of, the cache line and error
 * string sizes, descriptors and addresses (error.c).
 */
#ifndef TERN_RUNTIME_UTIL_H
#define TERN_RUNTIME_UTIL_H

#include <stddef.h>
#include <sys/socket.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))
#define TERN__CACHELINE 64
#define TERN__ERRSTR 160

int tern__set_nonblock_cloexec(int fd);
int tern__format_sockaddr(const struct sockaddr *sa, char *buf, size_t len);
int tern__errno(void); /* -errno, never 0 */

#endif

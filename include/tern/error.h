/* SPDX-License-Identifier: MIT */
/**
 * @file error.h
 * tern's error codes. Every `int` function returns 0 or one of these negative codes; size
 * functions return a `ssize_t` that is a count when >= 0 and a code when < 0.
 *
 * System errors are negative errno values (TERN_EAGAIN == -EAGAIN). Library errors start at
 * -4000. errno itself is never part of tern's contract: read the returned code, and the
 * object's error string (`tern_socket_error_string`, `tern_server_error_string`, ...) for
 * context.
 */
#ifndef TERN_ERROR_H
#define TERN_ERROR_H

#include <errno.h>
#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The one table of codes: XX(NAME, value, category, message). System codes first, then
 * tern's own codes.
 */
#define TERN_ERRNO_MAP(XX)                                                                     \
    XX(EPERM, -EPERM, USAGE, "operation not permitted")                                         \
    XX(EINTR, -EINTR, IO, "interrupted system call")                                            \
    XX(EAGAIN, -EAGAIN, BLOCKED, "resource temporarily unavailable")                            \
    XX(ENOMEM, -ENOMEM, INTERNAL, "out of memory")                                              \
    XX(EACCES, -EACCES, USAGE, "permission denied")                                             \
    XX(EBUSY, -EBUSY, USAGE, "resource busy or in the wrong state")                             \
    XX(EINVAL, -EINVAL, USAGE, "invalid argument")                                              \
    XX(ENFILE, -ENFILE, IO, "file table overflow")                                              \
    XX(EMFILE, -EMFILE, IO, "too many open files")                                              \
    XX(EPIPE, -EPIPE, CLOSED, "broken pipe")                                                    \
    XX(ERANGE, -ERANGE, USAGE, "value out of range")                                            \
    XX(ENOSYS, -ENOSYS, USAGE, "function not implemented")                                      \
    XX(ENOTSOCK, -ENOTSOCK, USAGE, "not a socket")                                              \
    XX(EADDRINUSE, -EADDRINUSE, IO, "address already in use")                                   \
    XX(EADDRNOTAVAIL, -EADDRNOTAVAIL, IO, "address not available")                              \
    XX(ENETUNREACH, -ENETUNREACH, IO, "network is unreachable")                                 \
    XX(ECONNABORTED, -ECONNABORTED, CLOSED, "connection aborted")                               \
    XX(ECONNRESET, -ECONNRESET, CLOSED, "connection reset by peer")                             \
    XX(ENOBUFS, -ENOBUFS, BLOCKED, "no buffer space available")                                 \
    XX(ENOTCONN, -ENOTCONN, USAGE, "socket is not connected")                                   \
    XX(ETIMEDOUT, -ETIMEDOUT, IO, "connection timed out")                                       \
    XX(ECONNREFUSED, -ECONNREFUSED, IO, "connection refused")                                   \
    XX(EHOSTUNREACH, -EHOSTUNREACH, IO, "host is unreachable")                                  \
    XX(EALREADY, -EALREADY, USAGE, "operation already in progress")                             \
    XX(ECANCELED, -ECANCELED, CLOSED, "operation canceled")                                     \
    XX(E_QUEUE_FULL, -4001, BLOCKED, "mailbox full: the receiver is not keeping up")           \
    XX(E_STOPPED, -4002, CLOSED, "runtime or reactor stopped")                                  \
    XX(E_ADDRESS, -4003, USAGE, "invalid address")                                              \
    XX(E_RESOLVE, -4004, IO, "name lookup failed")                                              \
    XX(E_LIMIT, -4005, BLOCKED, "connection limit reached")                                     \
    XX(E_UNSUPPORTED, -4006, USAGE, "not supported by this build")                              \
    XX(E_IDLE_TIMEOUT, -4007, IO, "idle timeout")                                               \
    XX(E_EOF, -4008, CLOSED, "end of stream")                                                   \
    XX(E_TLS_HANDSHAKE, -4100, PROTO, "TLS handshake failed")                                   \
    XX(E_TLS_VERIFY, -4101, VERIFY, "peer certificate verification failed")                     \
    XX(E_TLS_ALERT, -4102, ALERT, "TLS alert received")                                         \
    XX(E_TLS_PROTOCOL, -4103, PROTO, "TLS protocol error")                                      \
    XX(E_TLS_TIMEOUT, -4104, IO, "TLS handshake timed out")                                     \
    XX(E_INTERNAL, -4099, INTERNAL, "internal error")

/** The codes, as an enum, so a `switch` over them gets compiler help. */
enum tern_errno {
#define TERN__ERR_ENUM(name, value, cat, msg) TERN_##name = (value),
    TERN_ERRNO_MAP(TERN__ERR_ENUM)
#undef TERN__ERR_ENUM
};

/** Error categories: what kind of failure a code is, for logging and retry decisions. */
enum tern_err_category {
    TERN_ERR_CATEGORY_NONE = 0,  /**< not an error (>= 0) */
    TERN_ERR_CATEGORY_IO,        /**< the network or the OS failed */
    TERN_ERR_CATEGORY_CLOSED,    /**< the peer or the runtime ended the stream */
    TERN_ERR_CATEGORY_BLOCKED,   /**< try again later (full queue, limit reached) */
    TERN_ERR_CATEGORY_ALERT,     /**< a TLS alert */
    TERN_ERR_CATEGORY_PROTO,     /**< the peer broke the protocol */
    TERN_ERR_CATEGORY_VERIFY,    /**< certificate verification */
    TERN_ERR_CATEGORY_USAGE,     /**< the caller passed something wrong */
    TERN_ERR_CATEGORY_INTERNAL,  /**< out of memory or a bug */
};

/**
 * A human-readable message for @p err ("connection reset by peer"). Unknown negative codes
 * give "unknown error". @return a static string. @thread any
 */
TERN_API const char *tern_strerror(int err);

/**
 * The symbolic name of @p err without the prefix ("ECONNRESET", "E_QUEUE_FULL").
 * @return a static string; "OK" for 0, "UNKNOWN" for codes not in the table. @thread any
 */
TERN_API const char *tern_err_name(int err);

/** The category of @p err; TERN_ERR_CATEGORY_NONE for values >= 0. @thread any */
TERN_API enum tern_err_category tern_err_category_of(int err);

/** The name of a category ("io", "closed", ...). @return a static string. @thread any */
TERN_API const char *tern_err_category_name(enum tern_err_category cat);

#ifdef __cplusplus
}
#endif
#endif

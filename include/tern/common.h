/* SPDX-License-Identifier: MIT */
/**
 * @file common.h
 * What every tern header needs: the export macro, the borrowed-bytes value type and the
 * forward declarations of tern's opaque objects.
 */
#ifndef TERN_COMMON_H
#define TERN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** Borrowed bytes: a pointer and a length. Never owns its memory. */
typedef struct tern_buf {
    const void *base; /* ro */
    size_t len;       /* ro */
} tern_buf;

/** The runtime: reactor threads, the acceptor, workers. See runtime.h. */
typedef struct tern_runtime tern_runtime;
/** One libev loop on one thread; owns its sockets, timers and actors. See runtime.h. */
typedef struct tern_reactor tern_reactor;
/** A listening endpoint whose accepted connections go to reactors. See server.h. */
typedef struct tern_server tern_server;
/** A TCP (and, with ssl/, TLS) connection owned by one reactor. See socket.h. */
typedef struct tern_socket tern_socket;
/** A user actor: a message handler bound to one reactor. See actor.h. */
typedef struct tern_actor tern_actor;
/** A one-shot or repeating timer on one reactor. See runtime.h. */
typedef struct tern_timer tern_timer;
/** A TLS configuration. NULL means plaintext wherever one is taken. See ssl_config.h. */
typedef struct tern_ssl_config tern_ssl_config;
/** An X.509 certificate (immutable, refcounted). See certificate.h. */
typedef struct tern_certificate tern_certificate;
/** One certificate verification problem. See ssl_error.h. */
typedef struct tern_ssl_error tern_ssl_error;
/** A list of certificate verification problems. See ssl_error.h. */
typedef struct tern_ssl_error_list tern_ssl_error_list;
/** A pending PSK lookup (QSslPreSharedKeyAuthenticator). See psk.h. */
typedef struct tern_psk_authenticator tern_psk_authenticator;

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: MIT */
/**
 * @file stats.h
 * Counters. Each reactor (and the acceptor) counts into its own cache line with plain
 * single-writer stores; readers sum them. No shared atomic is touched on the hot path.
 */
#ifndef TERN_STATS_H
#define TERN_STATS_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A snapshot of counters (a value type: fields may be added at the end). */
typedef struct tern_stats {
    uint64_t connections_open;      /* ro: sockets open now (accepted + outgoing) */
    uint64_t connections_accepted;  /* ro: accepted and handed to a reactor */
    uint64_t connections_outgoing;  /* ro: outgoing connects that succeeded */
    uint64_t connections_closed;    /* ro: sockets closed, for any reason */
    uint64_t connections_rejected;  /* ro: accepted then closed at once: over max_connections */
    uint64_t handoff_full;          /* ro: accepted then closed: the reactor's ring was full */
    uint64_t bytes_in;              /* ro: bytes received from sockets */
    uint64_t bytes_out;             /* ro: bytes sent to sockets */
    uint64_t tasks_run;             /* ro: mailbox tasks run */
    uint64_t mailbox_full;          /* ro: posts refused because a mailbox was full */
    uint64_t mailbox_depth;         /* ro: tasks queued now (sum over reactors) */
    uint64_t accept_emfile;         /* ro: accept() failed with EMFILE (then paused) */
    uint64_t accept_enfile;         /* ro: accept() failed with ENFILE (then paused) */
    uint64_t accept_enomem;         /* ro: accept() failed with ENOMEM or ENOBUFS */
    uint64_t accept_other;          /* ro: accept() failed otherwise */
    uint64_t accept_paused;         /* ro: times accepting was paused after an error */
    uint64_t timeouts_idle;         /* ro: sockets closed by the idle timeout */
    uint64_t timeouts_connect;      /* ro: outgoing connects that timed out */
    uint64_t resets;                /* ro: sockets that ended with an error */
    uint64_t handshakes;            /* ro: TLS handshakes completed */
    uint64_t handshake_failures;    /* ro: TLS handshakes that failed (incl. timeouts) */
    uint64_t handshakes_resumed;    /* ro: of `handshakes`, those that resumed a session */
    uint64_t handshakes_psk;        /* ro: of `handshakes`, those with an external PSK */
    uint64_t psk_lookups;           /* ro: PSK identities asked of the event or a store */
    uint64_t psk_unknown;           /* ro: identities refused as unknown (event or store) */
    uint64_t psk_bad_key;           /* ro: handshakes that failed after a key was given */
    uint64_t psk_timeouts;          /* ro: lookups not answered within the lookup timeout */
    uint64_t psk_overload;          /* ro: refused: too many lookups waiting, queue full */
    uint64_t psk_store_errors;      /* ro: a store callback answered "error" */
    uint64_t psk_pending;           /* ro: handshakes waiting for a PSK answer now */
    uint64_t psk_no_suite;          /* ro: TLS 1.3 PSK handshakes refused: the client offered
                                     * no suite of the key's hash (`tern_psk_hash`) */
} tern_stats;

/** Output formats for `tern_stats_format`. */
enum tern_stats_format_kind {
    TERN_STATS_TEXT, /**< one line of key=value pairs */
    TERN_STATS_JSON, /**< one JSON object on one line */
};

/**
 * Sums the counters of every reactor and the acceptor of @p rt into @p out.
 * @return 0; TERN_EINVAL on NULL. @thread any
 */
TERN_API int tern_runtime_stats(const tern_runtime *rt, tern_stats *out);

/**
 * The counters of reactor @p i alone (accept errors belong to the acceptor: they show
 * only in `tern_runtime_stats`). @return 0; TERN_EINVAL if @p i is out of range. @thread any
 */
TERN_API int tern_runtime_reactor_stats(const tern_runtime *rt, unsigned i, tern_stats *out);

/**
 * Writes @p st as text or JSON into @p buf (always NUL-terminated when @p len > 0).
 * @return the length the whole output needs, without the NUL (as snprintf): output was cut
 *         if that is >= @p len; TERN_EINVAL on a bad kind. @thread any
 */
TERN_API ssize_t tern_stats_format(const tern_stats *st, enum tern_stats_format_kind kind,
                                   char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif

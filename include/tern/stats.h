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

/** Latency buckets in `tern_stats.handshake_duration_buckets` (the last: over 10 s). */
#define TERN_STATS_HANDSHAKE_BUCKETS 14

/** Wake-up latency buckets in `tern_stats.wake_duration_buckets` (the last: over 5 ms). */
#define TERN_STATS_WAKE_BUCKETS 9

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
    /*
     * Handshakes by kind: a partition of `handshakes` (each completed handshake, server or
     * client side, counts in exactly one, decided when `encrypted` is due, in this order):
     * resumed if a session was resumed (a ticket or a session ID, TLS 1.2 or 1.3; a TLS 1.3
     * resumption is a PSK on the wire but counts here, not as psk13); else psk13 / psk12 if
     * an external PSK authenticated it (a server answered the identity with a key; a client
     * had one); else full13 / full12 by the version negotiated (certificate-authenticated).
     * The resumed part is `handshakes_resumed` above; `handshakes_psk` is psk13 + psk12.
     */
    uint64_t handshakes_full13;     /* ro: TLS 1.3, certificate, not resumed */
    uint64_t handshakes_full12;     /* ro: TLS 1.2, certificate, not resumed */
    uint64_t handshakes_psk13;      /* ro: TLS 1.3 with an external PSK, not resumed */
    uint64_t handshakes_psk12;      /* ro: TLS 1.2 PSK suite, not resumed */
    /*
     * Failed handshakes by reason: a partition of `handshake_failures` (each failure counts
     * once, under the first reason that applies, in this order).
     */
    uint64_t handshake_failures_unknown_identity; /* ro: PSK identity unknown (either side:
                                                   * a client with no key for the hint) */
    uint64_t handshake_failures_bad_key;     /* ro: a PSK key was given, the peer's differed
                                              * (a client: the server's decrypt_error or
                                              * bad_record_mac, also for an unknown identity) */
    uint64_t handshake_failures_timeout;     /* ro: not done within the handshake timeout, or
                                              * a PSK lookup not answered in time */
    uint64_t handshake_failures_version;     /* ro: no shared protocol version (either side
                                              * found it, or a protocol_version alert came) */
    uint64_t handshake_failures_no_shared;   /* ro: no shared cipher suite, group or PSK
                                              * suite (ours, or the peer's handshake_failure /
                                              * insufficient_security alert) */
    uint64_t handshake_failures_certificate; /* ro: certificate refused (our verification, or
                                              * the peer's certificate alert) */
    uint64_t handshake_failures_protocol;    /* ro: malformed or unexpected messages (ours,
                                              * or the peer's decode/unexpected alert) */
    uint64_t handshake_failures_peer_closed; /* ro: the peer closed during the handshake
                                              * without an alert */
    uint64_t handshake_failures_other;       /* ro: anything else (out of memory, a PSK store
                                              * error or overload, an unexpected alert) */
    /*
     * Handshake latency of completed handshakes: from the start of the TLS handshake (a
     * server: tern_socket_start_server_encryption, normally in `incoming`, just after the
     * accept; a client: once the TCP connection is up) to `encrypted` being due. Buckets are
     * NOT cumulative: bucket i counts durations in (bound(i-1), bound(i)] seconds, see
     * `tern_stats_handshake_bucket_bound`; the last one has no upper bound. Their sum is the
     * number of handshakes timed (equal to `handshakes`).
     */
    uint64_t handshake_duration_us_sum; /* ro: the durations' sum, in microseconds */
    uint64_t handshake_duration_buckets[TERN_STATS_HANDSHAKE_BUCKETS]; /* ro */
    /*
     * TLS alerts by description (RFC 8446 6 / RFC 5246 7.2; index = the alert's number,
     * `tern_stats_alert_name`). Sent: every alert the TLS library sent (close_notify
     * included) and tern's own plaintext alerts on a refused first flight. Received: the
     * alert that ended a connection (a fatal one, or any error alert in TLS 1.3) and the
     * peer's close_notify; warning alerts that do not end the connection are not seen (the
     * TLS library reports only the last alert received) and are not counted.
     */
    uint64_t alerts_sent[256];     /* ro */
    uint64_t alerts_received[256]; /* ro */
    /*
     * Hibernation of idle TLS connections (`tern_socket_set_hibernate_after`). Wake-up
     * latency: the wake-up itself, once the event that needs the state (readable data, a
     * write, a close) reached the TLS layer: a fresh TLS object, the seal opened, the state
     * imported; buckets NOT cumulative, bounds `tern_stats_wake_bucket_bound`.
     */
    uint64_t hibernated_now;     /* ro: TLS connections hibernated now (a gauge) */
    uint64_t hibernations;       /* ro: times a connection's state was exported and freed */
    uint64_t wakeups;            /* ro: times it was imported again */
    uint64_t hibernate_failures; /* ro: idle connections the TLS library could not export
                                  * (they stay awake) */
    uint64_t wake_failures;      /* ro: wake-ups refused (a blob that did not authenticate or
                                  * import, out of memory): that connection closed */
    uint64_t wake_duration_us_sum;                           /* ro */
    uint64_t wake_duration_buckets[TERN_STATS_WAKE_BUCKETS]; /* ro */
} tern_stats;

/**
 * The upper bound, in seconds, of latency bucket @p i of `handshake_duration_buckets`
 * (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, then +infinity).
 * @return the bound; INFINITY for the last bucket and for @p i out of range. @thread any
 */
TERN_API double tern_stats_handshake_bucket_bound(unsigned i);

/**
 * The upper bound, in seconds, of wake-up latency bucket @p i of `wake_duration_buckets`
 * (0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, then +infinity).
 * @return the bound; INFINITY for the last bucket and for @p i out of range. @thread any
 */
TERN_API double tern_stats_wake_bucket_bound(unsigned i);

/**
 * The name of TLS alert @p alert as the RFCs spell it (RFC 8446 6, RFC 5246 7.2, RFC 6066,
 * RFC 7301: "close_notify", "handshake_failure", "no_application_protocol", ...).
 * @return a static string, or NULL for a number no RFC defines. @thread any
 */
TERN_API const char *tern_stats_alert_name(unsigned alert);

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

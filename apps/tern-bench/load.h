/* SPDX-License-Identifier: MIT */
/*
 * tern-bench's load: what a run is asked to do (struct bench_config, read-only once the run
 * starts), and one worker per reactor thread that drives its share of the connections.
 *
 * Threads: main() fills the configuration, starts the runtime and calls `bench_load_start`,
 * which posts one start task to each reactor. From then on a worker's fields are touched
 * only by its reactor thread, except the `pub` block, which the worker publishes under its
 * lock once a second (and once when it finishes) and main() reads with `bench_worker_take`.
 * Every other figure (`final`, the histograms, the error details) is read by main() after
 * tern_runtime_join only. The hot path (one connection or one request) touches no lock and
 * no atomic: the only shared atomic is `done`, counted once per worker at its end.
 */
#ifndef TERN_BENCH_LOAD_H
#define TERN_BENCH_LOAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

#include "hist.h"

/** What each connection (or request) does. */
enum bench_mode {
    BENCH_MODE_HANDSHAKE,  /* full handshake, optional request, close */
    BENCH_MODE_RESUME,     /* resumed handshakes (sessions kept per connection slot), close */
    BENCH_MODE_PSK,        /* PSK handshake, optional request, close */
    BENCH_MODE_MIX,        /* full / psk / resume in the ratio of --mix */
    BENCH_MODE_THROUGHPUT, /* long-lived connections streaming, MB/s */
    BENCH_MODE_ECHO,       /* long-lived connections, request/response round trips */
    BENCH_MODE_HOLD,       /* open N connections, hold them idle (hold.c) */
};

/**
 * What a latency is recorded as. The first three are handshake types (--mix). A resume pick
 * records its latency as "resume" only when the server resumed the offered session; a
 * resume pick that had no session yet (priming) or that the server answered with a full
 * handshake records it as "full", and is counted in `primed` / `full_instead`.
 */
enum bench_type {
    BENCH_TYPE_FULL,
    BENCH_TYPE_PSK,
    BENCH_TYPE_RESUME,
    BENCH_TYPE_REQUEST, /* a request/response round trip (echo, handshake with --payload) */
    BENCH_NTYPES,
};
#define BENCH_NHANDSHAKE_TYPES 3

/** Why an attempt failed, from the socket's TERN_E* code. */
enum bench_err {
    BENCH_ERR_REFUSED,      /* TERN_ECONNREFUSED */
    BENCH_ERR_RESET,        /* ECONNRESET, EPIPE, ECONNABORTED */
    BENCH_ERR_TIMEOUT,      /* connect, handshake or response timeout */
    BENCH_ERR_ALERT,        /* TERN_E_TLS_ALERT (the detail names the alert) */
    BENCH_ERR_VERIFY,       /* TERN_E_TLS_VERIFY */
    BENCH_ERR_HANDSHAKE,    /* TERN_E_TLS_HANDSHAKE, TERN_E_TLS_PROTOCOL */
    BENCH_ERR_CLOSED,       /* the peer ended the connection before the operation completed */
    BENCH_ERR_ADDRESS,      /* local address problems: EADDRNOTAVAIL (ports exhausted)... */
    BENCH_ERR_RESOLVE,      /* TERN_E_RESOLVE */
    BENCH_ERR_PSK_NOT_USED, /* a PSK attempt that ended in a certificate handshake */
    BENCH_ERR_RESUME_REFUSED, /* an offered session made the handshake fail (wolfSSL 5.7.x
                               * clients cannot fall back when a TLS 1.2 server refuses it:
                               * TERN_E_TLS_PROTOCOL); the session is dropped */
    BENCH_ERR_NO_TICKET,    /* a handshake that was to store a session got no TLS 1.3 ticket
                             * within --timeout (the handshake itself counted as done) */
    BENCH_ERR_OTHER,
    BENCH_NERRS,
};

/** One identity and its key (--psk-identity/--psk-key or a line of --psk-file). */
struct bench_psk {
    char identity[TERN_PSK_MAX_IDENTITY + 1];
    size_t identity_len;
    uint8_t key[TERN_PSK_MAX_KEY];
    size_t key_len;
    enum tern_psk_hash hash; /* the key's TLS 1.3 hash (an identity file's :sha384) */
};

/** The most --target options: the servers a run spreads its connections over. */
#define BENCH_MAX_TARGETS 16

/** One --target, resolved once by main() (connections then skip the lookup). */
struct bench_target {
    char host[256]; /* the numeric address */
    uint16_t port;
    char name[256]; /* the host as given: the SNI unless --sni */
};

/** The run, as the options asked for it. Read-only once `bench_load_start` was called. */
struct bench_config {
    struct bench_target targets[BENCH_MAX_TARGETS]; /* connection i goes to target i mod n */
    size_t ntargets;
    const char *sni; /* --sni; NULL: each target's name */
    enum bench_mode mode;
    unsigned mix[BENCH_NHANDSHAKE_TYPES]; /* percent per handshake type; sums to 100 */
    unsigned connections;                 /* closed loop: concurrent; open loop: the cap */
    unsigned threads;
    uint64_t count;       /* operations to measure; 0: run for duration_us */
    uint64_t duration_us; /* measured time, after the warm-up; 0 with count */
    uint64_t warmup_us;
    double rate;        /* open loop: operations per second in all; 0: closed loop */
    size_t payload;     /* bytes per request; 0: none (handshake modes) */
    uint32_t timeout_ms; /* connect, handshake, and response deadline */
    bool plain;          /* --plain: TCP without TLS (handshake: connect and close) */
    bool resume_session_id; /* --resume session-id: TLS 1.2, the server is to send no ticket */
    bool resume_checked;    /* --resume given: the mechanism is checked at the end */
    tern_ssl_config *full_cfg; /* certificate handshakes (NULL if never used) */
    tern_ssl_config *psk_cfg;  /* PSK handshakes (NULL if never used) */
    const struct bench_psk *psks;
    size_t npsks;
    char (*sources)[64]; /* --source-addrs, numeric addresses */
    size_t nsources;
    /* --mode hold (hold.c) */
    uint32_t keepalive_ms; /* --keepalive: a round trip per connection this often; 0: none */
    unsigned concurrency;  /* --concurrency: handshakes in flight at most */
    int server_pid;        /* --server-pid: whose memory to sample; 0: none */
};

/** Counters of one worker (or the sum). */
struct bench_counts {
    uint64_t ok[BENCH_NTYPES];     /* operations completed, per type */
    uint64_t errors[BENCH_NERRS];  /* failed attempts, per kind */
    uint64_t bytes_in, bytes_out;  /* application bytes received / sent */
    uint64_t full_instead;         /* resume handshakes that offered a session and got a full
                                    * handshake (full_instead_of_resumed; not an error) */
    uint64_t primed;               /* resume picks with no session yet: a full handshake */
    uint64_t tls12_tickets;        /* TLS 1.2 session tickets received by resume picks; counted
                                    * from the start (warm-up included) in `final` too */
    uint64_t cross_offered;        /* offered sessions (resumed, full instead or refused) that
                                    * went to another target than the one they came from */
    uint64_t cross_resumed;        /* those of them the other target resumed */
};

/** A distinct error text ("handshake: received alert handshake_failure") and its count. */
struct bench_detail {
    enum bench_err kind;
    char text[160];
    uint64_t count;
};
#define BENCH_MAX_DETAILS 16

/** What a handshake agreed on (a worker's first completed one): "" while none has. */
struct bench_negotiated {
    char protocol[8]; /* "TLS 1.3", "TLS 1.2" */
    char cipher[64];
    char group[32];   /* key exchange ("X25519MLKEM768"); "" without one */
};

struct bench_conn;
struct bench;

/**
 * One session kept for resume handshakes (a connection slot's). A worker has as many as it
 * may have operations in flight; each operation that picked "resume" holds one until it
 * ends. The bytes hold the session's secret: zeroed when replaced or freed.
 */
struct bench_session {
    uint8_t *data;
    size_t len; /* 0: none yet (the next pick primes it with a full handshake) */
    size_t cap;
    unsigned target; /* the target that issued it (or last resumed it): the next offer goes
                      * to the target after this one */
};

/** One reactor's share of the load. */
struct bench_worker {
    struct bench *b;
    unsigned index;
    tern_reactor *r;

    /* --- owner thread only while the run lasts; main() after join ---------------------- */
    struct bench_counts final;          /* measured: started after the warm-up */
    bench_hist hist[BENCH_NTYPES];      /* measured latencies */
    struct bench_detail details[BENCH_MAX_DETAILS];
    size_t ndetails;
    uint64_t details_dropped;           /* errors whose text did not fit the table */
    uint64_t aborted_at_end;            /* measured operations cut by the end of the run */
    uint64_t backlog_at_end;            /* open loop: arrivals due, not started at the end */
    struct bench_negotiated negotiated; /* the first handshake's */

    struct bench_counts live;           /* everything, the warm-up included */
    bench_hist ihist[BENCH_NTYPES];     /* latencies since the last tick */
    struct bench_conn *conns;           /* every connection alive (a list) */
    struct bench_conn *idle;            /* echo: connections waiting for a request */
    unsigned nconns;                    /* connections alive */
    unsigned inflight;                  /* operations in progress */
    unsigned max_inflight;
    uint64_t quota;                     /* count mode: measured operations to launch */
    uint64_t launched;                  /* measured operations launched */
    uint64_t next_arrival;              /* open loop: the next scheduled arrival */
    uint64_t period_ns;                 /* open loop: between two arrivals */
    uint64_t offset_ns;                 /* open loop: this worker's phase */
    int wrr[BENCH_NHANDSHAKE_TYPES];    /* smooth weighted round robin credits (mix):
                                         * signed, a picked type goes below zero */
    size_t psk_next, source_next, target_next;
    bool stopping, finished;
    tern_timer *tick;                   /* once a second */
    tern_timer *arrivals;               /* open loop: the next arrival */
    tern_timer *end;                    /* duration mode: the end */
    uint64_t second;                    /* the last second published */
    uint8_t *chunk;                     /* bytes to write (zeroes) */
    struct bench_session *sessions;     /* resume: max_inflight slots (NULL without resume) */
    unsigned *ready, *empty;            /* resume: free slots with / without a session */
    unsigned nready, nempty;

    /* --- published under `lock` -------------------------------------------------------- */
    pthread_mutex_t lock;
    struct bench_counts pub_counts;     /* `live` as of pub_second */
    bench_hist pub_hist[BENCH_NTYPES];  /* latencies not yet taken by main() */
    uint64_t pub_second;
    bool pub_done;
};

/** The run: its configuration, the runtime, the workers. */
struct bench {
    const struct bench_config *cfg;
    tern_runtime *rt;
    uint64_t t0_us;          /* monotonic start */
    struct bench_worker *workers;
    unsigned nworkers;
    atomic_uint done;        /* workers finished */
};

/** Monotonic microseconds. @thread any */
uint64_t bench_now_us(void);

/** Allocates the workers of @p b (one per reactor of the started runtime). @return 0 or
 * TERN_ENOMEM. @thread main */
int bench_load_init(struct bench *b);

/** Sets t0 and posts the start task to every worker. @return 0 or the posting error. */
int bench_load_start(struct bench *b);

/** Asks every worker to stop now (Ctrl-C): in-flight operations are cut. @thread any */
void bench_load_stop(struct bench *b);

/**
 * Copies worker @p w's published counters into @p counts and moves its published latencies
 * into @p hists (merged, then emptied in the worker). @return the last second it
 * published; UINT64_MAX once it finished. @thread main
 */
uint64_t bench_worker_take(struct bench_worker *w, struct bench_counts *counts,
                           bench_hist *hists);

/** Frees what `bench_load_init` allocated. @thread main, after join */
void bench_load_free(struct bench *b);

/** The name of @p type ("full", "psk", "resume", "request"). */
const char *bench_type_name(enum bench_type type);

/** The name of @p kind ("refused", "reset", ...). */
const char *bench_err_name(enum bench_err kind);

/** The kind of a TERN_E* code (0: the peer closed early). */
enum bench_err bench_err_classify(int err);

#endif

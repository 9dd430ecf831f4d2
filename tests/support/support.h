/* SPDX-License-Identifier: MIT */
/*
 * Test support shared by tests/unit and tests/integration: time and bounded waits, blocking
 * loopback clients built on poll() with deadlines, a deterministic byte pattern with a
 * checksum, mailbox helpers, and a plaintext echo server with backpressure.
 *
 * Every wait here has a deadline; nothing sleeps longer than a millisecond at a time. Only
 * 127.0.0.1 is ever used.
 */
#ifndef TERN_TEST_SUPPORT_H
#define TERN_TEST_SUPPORT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <tern/tern.h>

/* ---- build flavour --------------------------------------------------------------------- */

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define TS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define TS_SANITIZED 1
#endif
#endif
#ifndef TS_SANITIZED
#define TS_SANITIZED 0
#endif

/* @p normal in plain builds, @p sanitized under ASan/TSan (which run 5-20x slower). */
#define TS_SCALE(normal, sanitized) (TS_SANITIZED ? (sanitized) : (normal))

/* ---- time ------------------------------------------------------------------------------ */

uint64_t ts_now_ms(void);
uint64_t ts_now_us(void);
void ts_sleep_ms(unsigned ms);
/* User + system CPU time of the whole process (all threads), in microseconds. */
uint64_t ts_cpu_us(void);

/* Polls @p pred(@p arg) about every millisecond until it is true or @p timeout_ms passed.
 * @return the last value of the predicate. */
bool ts_wait_until(bool (*pred)(void *arg), void *arg, unsigned timeout_ms);

/* The same for an expression: sets @p ok to whether @p cond became true in time. */
#define TS_WAIT_UNTIL(ok, cond, timeout_ms)                                                     \
    do {                                                                                        \
        uint64_t ts__deadline = ts_now_ms() + (timeout_ms);                                     \
        for (;;) {                                                                              \
            if (cond) {                                                                         \
                (ok) = true;                                                                    \
                break;                                                                          \
            }                                                                                   \
            if (ts_now_ms() >= ts__deadline) {                                                  \
                (ok) = (cond);                                                                  \
                break;                                                                          \
            }                                                                                   \
            ts_sleep_ms(1);                                                                     \
        }                                                                                       \
    } while (0)

/* Waits until atomic *@p p >= @p v. */
bool ts_wait_u64_ge(const _Atomic uint64_t *p, uint64_t v, unsigned timeout_ms);

/* ---- pattern and checksum -------------------------------------------------------------- */

/* Byte @p i of the stream named @p seed: deterministic, position dependent. */
uint8_t ts_pattern_byte(uint64_t seed, uint64_t i);
/* Fills @p dst with bytes [offset, offset + len) of stream @p seed. */
void ts_pattern_fill(void *dst, size_t len, uint64_t seed, uint64_t offset);
/* The index of the first byte of @p src that differs from the stream, or @p len if none. */
size_t ts_pattern_check(const void *src, size_t len, uint64_t seed, uint64_t offset);

#define TS_FNV_INIT 0xcbf29ce484222325ull
/* FNV-1a 64 over @p len bytes, continuing from @p h (start with TS_FNV_INIT). */
uint64_t ts_checksum(uint64_t h, const void *data, size_t len);

/* A small PRNG (xorshift64*) for sizes and choices; the tests print their seed. */
uint64_t ts_rand(uint64_t *state);

/* ---- loopback clients (plain blocking-with-deadline sockets) ---------------------------- */

/* A TCP port on 127.0.0.1 nobody listens on (bound then closed). 0 on failure. */
uint16_t ts_unused_port(void);

/* Connects a non-blocking socket to 127.0.0.1:@p port. @return the fd or -errno. */
int ts_connect(uint16_t port, unsigned timeout_ms);
/* The same with SO_RCVBUF set to @p rcvbuf before connecting (0: the default). */
int ts_connect_rcvbuf(uint16_t port, unsigned timeout_ms, int rcvbuf);
/* The local port of a connected fd, or 0. */
uint16_t ts_local_port(int fd);

/* Sends all @p len bytes. @return 0, -ETIMEDOUT or -errno. */
int ts_send_all(int fd, const void *buf, size_t len, unsigned timeout_ms);
/* Receives exactly @p len bytes. @return 0; -EPIPE if the peer ended first; -ETIMEDOUT;
 * -errno. */
int ts_recv_exact(int fd, void *buf, size_t len, unsigned timeout_ms);
/* Waits for the end of the stream. @return 0 on EOF, -ECONNRESET on a reset, 1 if data came
 * instead (it is discarded), -ETIMEDOUT. */
int ts_wait_eof(int fd, unsigned timeout_ms);
/* Whether nothing at all arrives on @p fd (data, EOF or reset) within @p ms. */
bool ts_quiet_for(int fd, unsigned ms);
/* Sends @p len bytes and expects the same bytes back. @return 0 or a negative code. */
int ts_echo_roundtrip(int fd, const void *buf, size_t len, unsigned timeout_ms);

/* One full-duplex exchange over @p fd: sends stream @p seed of @p len bytes while reading the
 * echo, checks every byte, optionally ends our side after sending and expects EOF after the
 * last byte. */
typedef struct ts_exchange_opts {
    bool shutdown_after_send;   /* shutdown(SHUT_WR) once everything is sent */
    bool expect_eof;            /* after the last byte, the peer must end the stream */
    size_t read_chunk;          /* bytes per read (0: 64 KiB) */
    unsigned read_pause_us;     /* sleep between reads: a slow reader */
    unsigned stall_ms;          /* do not read at all for this long at the start */
    const void *trailer;        /* bytes expected after the echo (or NULL) */
    size_t trailer_len;
    unsigned timeout_ms;        /* whole exchange (0: 10 s) */
    uint64_t *checksum_sent;    /* if not NULL: ts_checksum of the bytes sent */
    uint64_t *checksum_echoed;  /* if not NULL: ts_checksum of the echo received */
} ts_exchange_opts;

/* @return 0, or a negative code with a reason in @p why. */
int ts_exchange(int fd, size_t len, uint64_t seed, const ts_exchange_opts *o, char *why,
                size_t why_len);

/* @p n concurrent exchanges from one thread with poll(): connection i sends stream
 * @p seeds[i] of @p sizes[i] bytes, shuts its side, reads and checks the echo and then EOF.
 * Connections are opened in batches of @p batch. @return the number that succeeded; the
 * first failure is described in @p why. */
size_t ts_exchange_many(uint16_t port, size_t n, const size_t *sizes, const uint64_t *seeds,
                        size_t batch, unsigned timeout_ms, char *why, size_t why_len);

/* ---- runtime helpers ------------------------------------------------------------------- */

/* Starts a runtime of @p reactors with the given mailbox capacity (0: default). */
tern_runtime *ts_runtime_new(unsigned reactors, unsigned mailbox_capacity);

/* tern_reactor_post, retried on TERN_E_QUEUE_FULL for up to @p timeout_ms. */
int ts_post(tern_reactor *r, tern_task_fn fn, void *arg, unsigned timeout_ms);

/* Posts @p fn and waits until it has run on @p r. @return 0; -ETIMEDOUT; a post error. */
int ts_post_wait(tern_reactor *r, tern_task_fn fn, void *arg, unsigned timeout_ms);

/* Stops with @p drain_ms and joins; @return the join time in ms, or a negative code. */
int64_t ts_stop_join(tern_runtime *rt, uint32_t drain_ms);

/* A stats snapshot (zeroes on failure). */
tern_stats ts_stats(const tern_runtime *rt);

/* ---- echo server ----------------------------------------------------------------------- */

#define TS_MAX_REACTORS 64

/* Configuration and counters of the echo server. Counters are written on reactors and read
 * by the test thread. */
typedef struct ts_echo {
    /* rw, set before start */
    size_t write_buffer_size;   /* given to each accepted socket (0: leave the default) */
    size_t expect_read_buffer_size; /* if not 0, each accepted socket must report this */
    int send_buffer_size;       /* if not 0, SO_SNDBUF of each accepted socket */
    bool half_close;            /* keep sockets open after the peer's FIN ... */
    const char *trailer;        /* ... and write this after read_finished, then close */
    tern_server *srv;           /* checked against tern_socket_server() */
    /* ro, counters */
    _Atomic uint64_t incoming;
    _Atomic uint64_t per_reactor[TS_MAX_REACTORS];      /* accepted per reactor */
    _Atomic uint64_t per_reactor_open[TS_MAX_REACTORS]; /* open now per reactor */
    _Atomic uint64_t open;
    _Atomic uint64_t disconnected;
    _Atomic uint64_t disconnected_clean;   /* reason 0 */
    _Atomic uint64_t disconnected_idle;    /* reason TERN_E_IDLE_TIMEOUT */
    _Atomic uint64_t read_finished;
    _Atomic uint64_t bytes_echoed;
    _Atomic uint64_t write_full;           /* times the write queue had no room */
    _Atomic uint64_t max_buffered;         /* largest bytes_available seen in ready_read */
    _Atomic uint64_t violations;           /* contract checks that failed on a reactor */
    _Atomic int last_violation_line;
    /* optional: the reactor of each peer port (the client's local port), or -1 */
    _Atomic int *port_reactor;             /* 65536 entries when set */
} ts_echo;

void ts_echo_init(ts_echo *e);
/* The server's incoming callback; the server's user pointer must be the ts_echo. */
void ts_echo_incoming(tern_server *srv, tern_socket *s, void *user);
/* A listening echo server on 127.0.0.1:0 of @p rt (before start). @return it or NULL. */
tern_server *ts_echo_server(tern_runtime *rt, ts_echo *e);

/* ---- messages -------------------------------------------------------------------------- */

/* Prints a line prefixed with the test program's name (to stderr). */
void ts_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif

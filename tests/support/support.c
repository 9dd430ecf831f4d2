/* SPDX-License-Identifier: MIT */
/*
 * Test support: see support.h. Runs on the test thread, except the echo server's callbacks,
 * which run on reactors and only touch the atomics of their ts_echo.
 */
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- time ------------------------------------------------------------------------------ */

uint64_t ts_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ts_now_ms(void)
{
    return ts_now_us() / 1000u;
}

void ts_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t ts_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0;
    }
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

bool ts_wait_until(bool (*pred)(void *arg), void *arg, unsigned timeout_ms)
{
    uint64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        if (pred(arg)) {
            return true;
        }
        if (ts_now_ms() >= deadline) {
            return pred(arg);
        }
        ts_sleep_ms(1);
    }
}

bool ts_wait_u64_ge(const _Atomic uint64_t *p, uint64_t v, unsigned timeout_ms)
{
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(p) >= v, timeout_ms);
    return ok;
}

/* ---- pattern and checksum -------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x)
{
    /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static inline uint64_t pattern_word(uint64_t seed, uint64_t word)
{
    return mix64(seed * 0x9e3779b97f4a7c15ull + word + 1);
}

uint8_t ts_pattern_byte(uint64_t seed, uint64_t i)
{
    return (uint8_t)(pattern_word(seed, i >> 3) >> ((i & 7) * 8));
}

void ts_pattern_fill(void *dst, size_t len, uint64_t seed, uint64_t offset)
{
    uint8_t *p = dst;
    size_t i = 0;
    while (i < len && ((offset + i) & 7) != 0) {
        p[i] = ts_pattern_byte(seed, offset + i);
        i++;
    }
    while (i + 8 <= len) {
        uint64_t w = pattern_word(seed, (offset + i) >> 3);
        for (unsigned k = 0; k < 8; k++) {
            p[i + k] = (uint8_t)(w >> (k * 8));
        }
        i += 8;
    }
    while (i < len) {
        p[i] = ts_pattern_byte(seed, offset + i);
        i++;
    }
}

size_t ts_pattern_check(const void *src, size_t len, uint64_t seed, uint64_t offset)
{
    const uint8_t *p = src;
    uint8_t tmp[4096];
    size_t done = 0;
    while (done < len) {
        size_t n = len - done < sizeof tmp ? len - done : sizeof tmp;
        ts_pattern_fill(tmp, n, seed, offset + done);
        if (memcmp(tmp, p + done, n) != 0) {
            for (size_t k = 0; k < n; k++) {
                if (tmp[k] != p[done + k]) {
                    return done + k;
                }
            }
        }
        done += n;
    }
    return len;
}

uint64_t ts_checksum(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t ts_rand(uint64_t *state)
{
    uint64_t x = *state ? *state : 0x2545f4914f6cdd1dull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* ---- loopback clients ------------------------------------------------------------------ */

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = ts_now_ms();
    if (now >= deadline) {
        return 0;
    }
    uint64_t left = deadline - now;
    return left > 1000000 ? 1000000 : (int)left;
}

uint16_t ts_unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return 0;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd); /* never listened: connecting to it is refused */
    return port;
}

int ts_connect(uint16_t port, unsigned timeout_ms)
{
    return ts_connect_rcvbuf(port, timeout_ms, 0);
}

int ts_connect_rcvbuf(uint16_t port, unsigned timeout_ms, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        return fd;
    }
    if (errno != EINPROGRESS) {
        int e = -errno;
        close(fd);
        return e;
    }
    uint64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            return n == 0 ? -ETIMEDOUT : -errno;
        }
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            close(fd);
            return -err;
        }
        return fd;
    }
}

uint16_t ts_local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        return 0;
    }
    return ntohs(sa.sin_port);
}

int ts_send_all(int fd, const void *buf, size_t len, unsigned timeout_ms)
{
    const uint8_t *p = buf;
    uint64_t deadline = ts_now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&pf, 1, left) == 0) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}

int ts_recv_exact(int fd, void *buf, size_t len, unsigned timeout_ms)
{
    uint8_t *p = buf;
    uint64_t deadline = ts_now_ms() + timeout_ms;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            return -EPIPE;
        }
        if (errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&pf, 1, left) == 0) {
            return -ETIMEDOUT;
        }
    }
    return 0;
}

int ts_wait_eof(int fd, unsigned timeout_ms)
{
    uint64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        char c[256];
        ssize_t n = recv(fd, c, sizeof c, 0);
        if (n == 0) {
            return 0;
        }
        if (n > 0) {
            return 1;
        }
        if (errno == ECONNRESET) {
            return -ECONNRESET;
        }
        if (errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int left = remaining_ms(deadline);
        if (left == 0 || poll(&pf, 1, left) == 0) {
            return -ETIMEDOUT;
        }
    }
}

bool ts_quiet_for(int fd, unsigned ms)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    uint64_t deadline = ts_now_ms() + ms;
    for (;;) {
        int left = remaining_ms(deadline);
        if (left == 0) {
            return true;
        }
        int n = poll(&pf, 1, left);
        if (n > 0) {
            return false;
        }
        if (n == 0) {
            return true;
        }
        if (errno != EINTR) {
            return false;
        }
    }
}

int ts_echo_roundtrip(int fd, const void *buf, size_t len, unsigned timeout_ms)
{
    int rc = ts_send_all(fd, buf, len, timeout_ms);
    if (rc < 0) {
        return rc;
    }
    uint8_t *back = malloc(len ? len : 1);
    if (back == NULL) {
        return -ENOMEM;
    }
    rc = ts_recv_exact(fd, back, len, timeout_ms);
    if (rc == 0 && memcmp(back, buf, len) != 0) {
        rc = -EBADMSG;
    }
    free(back);
    return rc;
}

int ts_exchange(int fd, size_t len, uint64_t seed, const ts_exchange_opts *o, char *why,
                size_t why_len)
{
    static const ts_exchange_opts defaults = {.expect_eof = false};
    if (o == NULL) {
        o = &defaults;
    }
    size_t chunk = o->read_chunk ? o->read_chunk : 65536;
    size_t total_in = len + o->trailer_len;
    unsigned timeout = o->timeout_ms ? o->timeout_ms : 10000;
    uint64_t start = ts_now_ms();
    uint64_t deadline = start + timeout;
    uint64_t read_from = start + o->stall_ms;
    size_t sent = 0, got = 0;
    bool shut = false, eof = false;
    uint64_t sum_sent = TS_FNV_INIT, sum_echoed = TS_FNV_INIT;
    uint8_t *out = malloc(65536), *in = malloc(chunk);
    int rc = 0;
    if (out == NULL || in == NULL) {
        rc = -ENOMEM;
        snprintf(why, why_len, "out of memory");
        goto done;
    }
    for (;;) {
        bool send_done = sent == len && (!o->shutdown_after_send || shut);
        bool recv_done = got == total_in && (!o->expect_eof || eof);
        if (send_done && recv_done) {
            break;
        }
        if (o->shutdown_after_send && sent == len && !shut) {
            if (shutdown(fd, SHUT_WR) != 0) {
                rc = -errno;
                snprintf(why, why_len, "shutdown: %s", strerror(errno));
                goto done;
            }
            shut = true;
            continue;
        }
        uint64_t now = ts_now_ms();
        if (now >= deadline) {
            rc = -ETIMEDOUT;
            snprintf(why, why_len, "timeout after %u ms: sent %zu/%zu, received %zu/%zu%s",
                     timeout, sent, len, got, total_in, eof ? ", eof" : "");
            goto done;
        }
        bool may_read = now >= read_from && !eof;
        struct pollfd pf = {.fd = fd, .events = 0};
        if (sent < len) {
            pf.events |= POLLOUT;
        }
        if (may_read) {
            pf.events |= POLLIN;
        }
        int wait_ms = remaining_ms(deadline);
        if (!may_read && now < read_from && read_from - now < (uint64_t)wait_ms) {
            wait_ms = (int)(read_from - now);
        }
        if (pf.events == 0) {
            ts_sleep_ms(wait_ms > 1 ? 1 : (unsigned)wait_ms);
            continue;
        }
        int n = poll(&pf, 1, wait_ms);
        if (n < 0 && errno != EINTR) {
            rc = -errno;
            snprintf(why, why_len, "poll: %s", strerror(errno));
            goto done;
        }
        if (n <= 0) {
            continue;
        }
        if ((pf.revents & (POLLOUT | POLLERR | POLLHUP)) && sent < len) {
            size_t m = len - sent < 65536 ? len - sent : 65536;
            ts_pattern_fill(out, m, seed, sent);
            ssize_t w = send(fd, out, m, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0) {
                sum_sent = ts_checksum(sum_sent, out, (size_t)w);
                sent += (size_t)w;
            } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                rc = -errno;
                snprintf(why, why_len, "send at %zu/%zu: %s", sent, len, strerror(errno));
                goto done;
            }
        }
        if (may_read && (pf.revents & (POLLIN | POLLERR | POLLHUP))) {
            ssize_t r = recv(fd, in, chunk, MSG_DONTWAIT);
            if (r > 0) {
                size_t m = (size_t)r;
                if (got + m > total_in) {
                    rc = -EBADMSG;
                    snprintf(why, why_len, "received %zu bytes, expected %zu", got + m,
                             total_in);
                    goto done;
                }
                size_t echo_part = got < len ? (len - got < m ? len - got : m) : 0;
                sum_echoed = ts_checksum(sum_echoed, in, echo_part);
                size_t bad = ts_pattern_check(in, echo_part, seed, got);
                if (bad != echo_part) {
                    rc = -EBADMSG;
                    snprintf(why, why_len, "byte %zu of %zu differs", got + bad, len);
                    goto done;
                }
                if (m > echo_part) {
                    const uint8_t *t = o->trailer;
                    size_t toff = got + echo_part - len;
                    if (memcmp(in + echo_part, t + toff, m - echo_part) != 0) {
                        rc = -EBADMSG;
                        snprintf(why, why_len, "trailer differs");
                        goto done;
                    }
                }
                got += m;
                if (o->read_pause_us) {
                    struct timespec ts = {.tv_nsec = (long)o->read_pause_us * 1000L};
                    nanosleep(&ts, NULL);
                }
            } else if (r == 0) {
                eof = true;
                if (got != total_in) {
                    rc = -EPIPE;
                    snprintf(why, why_len, "end of stream after %zu of %zu bytes (sent %zu)",
                             got, total_in, sent);
                    goto done;
                }
            } else if (errno != EAGAIN && errno != EINTR) {
                rc = -errno;
                snprintf(why, why_len, "recv at %zu/%zu: %s", got, total_in, strerror(errno));
                goto done;
            }
        }
    }
done:
    if (o->checksum_sent != NULL) {
        *o->checksum_sent = sum_sent;
    }
    if (o->checksum_echoed != NULL) {
        *o->checksum_echoed = sum_echoed;
    }
    free(out);
    free(in);
    return rc;
}

typedef struct many_conn {
    int fd;
    size_t size, sent, got;
    uint64_t seed;
    bool shut, eof, failed;
} many_conn;

size_t ts_exchange_many(uint16_t port, size_t n, const size_t *sizes, const uint64_t *seeds,
                        size_t batch, unsigned timeout_ms, char *why, size_t why_len)
{
    many_conn *c = calloc(n, sizeof *c);
    struct pollfd *pf = calloc(n, sizeof *pf);
    size_t *map = calloc(n, sizeof *map);
    uint8_t *buf = malloc(65536);
    size_t ok = 0;
    bool noted = false;
#define NOTE(...)                                                                              \
    do {                                                                                       \
        if (!noted) {                                                                          \
            snprintf(why, why_len, __VA_ARGS__);                                               \
            noted = true;                                                                      \
        }                                                                                      \
    } while (0)
    if (c == NULL || pf == NULL || map == NULL || buf == NULL) {
        NOTE("out of memory");
        goto out;
    }
    if (batch == 0) {
        batch = n;
    }
    uint64_t deadline = ts_now_ms() + timeout_ms;
    size_t opened = 0, finished = 0;
    for (size_t i = 0; i < n; i++) {
        c[i].fd = -1;
    }
    while (finished < n) {
        if (ts_now_ms() >= deadline) {
            NOTE("timeout: %zu of %zu exchanges finished", finished, n);
            break;
        }
        /* open the next batch once the previous one is connected */
        if (opened < n && opened - finished < 4 * batch) {
            size_t end = opened + batch < n ? opened + batch : n;
            for (; opened < end; opened++) {
                many_conn *k = &c[opened];
                k->size = sizes[opened];
                k->seed = seeds[opened];
                k->fd = ts_connect(port, 5000);
                if (k->fd < 0) {
                    NOTE("connect %zu: %s", opened, strerror(-k->fd));
                    k->failed = true;
                    finished++;
                }
            }
        }
        size_t np = 0;
        for (size_t i = 0; i < opened; i++) {
            many_conn *k = &c[i];
            if (k->fd < 0) {
                continue;
            }
            short ev = POLLIN;
            if (k->sent < k->size || !k->shut) {
                ev |= POLLOUT;
            }
            pf[np] = (struct pollfd){.fd = k->fd, .events = ev};
            map[np++] = i;
        }
        if (np == 0) {
            continue;
        }
        int r = poll(pf, np, 20);
        if (r < 0 && errno != EINTR) {
            NOTE("poll: %s", strerror(errno));
            break;
        }
        for (size_t j = 0; j < np && r > 0; j++) {
            many_conn *k = &c[map[j]];
            short re = pf[j].revents;
            if (re == 0) {
                continue;
            }
            bool bad = false;
            if ((re & (POLLOUT | POLLERR | POLLHUP)) && k->sent < k->size) {
                size_t m = k->size - k->sent < 65536 ? k->size - k->sent : 65536;
                ts_pattern_fill(buf, m, k->seed, k->sent);
                ssize_t w = send(k->fd, buf, m, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w > 0) {
                    k->sent += (size_t)w;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    NOTE("conn %zu: send at %zu/%zu: %s", map[j], k->sent, k->size,
                         strerror(errno));
                    bad = true;
                }
            }
            if (!bad && k->sent == k->size && !k->shut) {
                if (shutdown(k->fd, SHUT_WR) != 0) {
                    NOTE("conn %zu: shutdown: %s", map[j], strerror(errno));
                    bad = true;
                }
                k->shut = true;
            }
            if (!bad && (re & (POLLIN | POLLERR | POLLHUP))) {
                ssize_t got = recv(k->fd, buf, 65536, MSG_DONTWAIT);
                if (got > 0) {
                    size_t m = (size_t)got;
                    if (k->got + m > k->size) {
                        NOTE("conn %zu: %zu bytes back, sent %zu", map[j], k->got + m, k->size);
                        bad = true;
                    } else {
                        size_t at = ts_pattern_check(buf, m, k->seed, k->got);
                        if (at != m) {
                            NOTE("conn %zu: byte %zu of %zu differs", map[j], k->got + at,
                                 k->size);
                            bad = true;
                        }
                        k->got += m;
                    }
                } else if (got == 0) {
                    k->eof = true;
                    if (k->got != k->size) {
                        NOTE("conn %zu: end of stream after %zu of %zu bytes (sent %zu)",
                             map[j], k->got, k->size, k->sent);
                        bad = true;
                    }
                } else if (errno != EAGAIN && errno != EINTR) {
                    NOTE("conn %zu: recv at %zu/%zu: %s", map[j], k->got, k->size,
                         strerror(errno));
                    bad = true;
                }
            }
            if (bad || (k->eof && k->shut)) {
                if (!bad) {
                    ok++;
                }
                k->failed = bad;
                close(k->fd);
                k->fd = -1;
                finished++;
            }
        }
    }
out:
    if (c != NULL) {
        for (size_t i = 0; i < n; i++) {
            if (c[i].fd >= 0) {
                close(c[i].fd);
            }
        }
    }
    free(c);
    free(pf);
    free(map);
    free(buf);
    return ok;
#undef NOTE
}

/* ---- runtime helpers ------------------------------------------------------------------- */

tern_runtime *ts_runtime_new(unsigned reactors, unsigned mailbox_capacity)
{
    tern_runtime_options o;
    tern_runtime_options_init(&o);
    o.reactors = reactors;
    if (mailbox_capacity) {
        o.mailbox_capacity = mailbox_capacity;
    }
    return tern_runtime_new(&o);
}

int ts_post(tern_reactor *r, tern_task_fn fn, void *arg, unsigned timeout_ms)
{
    uint64_t deadline = ts_now_ms() + timeout_ms;
    for (;;) {
        int rc = tern_reactor_post(r, fn, arg);
        if (rc != TERN_E_QUEUE_FULL || ts_now_ms() >= deadline) {
            return rc;
        }
        sched_yield();
    }
}

typedef struct post_wait {
    tern_task_fn fn;
    void *arg;
    _Atomic int done;
} post_wait;

static void post_wait_task(tern_reactor *r, void *arg)
{
    post_wait *pw = arg;
    pw->fn(r, pw->arg);
    atomic_store(&pw->done, 1);
}

int ts_post_wait(tern_reactor *r, tern_task_fn fn, void *arg, unsigned timeout_ms)
{
    post_wait *pw = calloc(1, sizeof *pw);
    if (pw == NULL) {
        return -ENOMEM;
    }
    pw->fn = fn;
    pw->arg = arg;
    int rc = ts_post(r, post_wait_task, pw, timeout_ms);
    if (rc < 0) {
        free(pw);
        return rc;
    }
    bool ok;
    TS_WAIT_UNTIL(ok, atomic_load(&pw->done) != 0, timeout_ms);
    if (!ok) {
        return -ETIMEDOUT; /* pw is left to the task: it may still run */
    }
    free(pw);
    return 0;
}

int64_t ts_stop_join(tern_runtime *rt, uint32_t drain_ms)
{
    uint64_t t0 = ts_now_ms();
    int rc = tern_runtime_stop(rt, drain_ms);
    if (rc < 0) {
        return rc;
    }
    rc = tern_runtime_join(rt);
    if (rc < 0) {
        return rc;
    }
    return (int64_t)(ts_now_ms() - t0);
}

tern_stats ts_stats(const tern_runtime *rt)
{
    tern_stats st;
    memset(&st, 0, sizeof st);
    if (tern_runtime_stats(rt, &st) != 0) {
        memset(&st, 0, sizeof st);
    }
    return st;
}

/* ---- echo server ----------------------------------------------------------------------- */

#define VIOLATION(e)                                                                           \
    do {                                                                                       \
        atomic_fetch_add(&(e)->violations, 1);                                                 \
        atomic_store(&(e)->last_violation_line, __LINE__);                                     \
    } while (0)

void ts_echo_init(ts_echo *e)
{
    memset(e, 0, sizeof *e);
}

static void atomic_max(_Atomic uint64_t *m, uint64_t v)
{
    uint64_t cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur && !atomic_compare_exchange_weak(m, &cur, v)) {
    }
}

/* Moves min(available, write room) bytes from the read buffer to the write queue. */
static void echo_pump(tern_socket *s, ts_echo *e)
{
    for (;;) {
        size_t avail = tern_socket_bytes_available(s);
        if (avail == 0) {
            return;
        }
        size_t room = tern_socket_write_room(s);
        if (room == 0) {
            atomic_fetch_add_explicit(&e->write_full, 1, memory_order_relaxed);
            return; /* bytes_written resumes */
        }
        tern_buf v = {0};
        if (tern_socket_peek_view(s, &v) != 0 || v.len == 0 || v.len > avail) {
            VIOLATION(e);
            tern_socket_abort(s);
            return;
        }
        size_t n = v.len < room ? v.len : room;
        int rc = tern_socket_write(s, v.base, n);
        if (rc == TERN_ENOBUFS) {
            /* the room computed above said it fits: the limit is not what it claims */
            VIOLATION(e);
            atomic_fetch_add_explicit(&e->write_full, 1, memory_order_relaxed);
            return;
        }
        if (rc < 0) {
            tern_socket_abort(s);
            return;
        }
        if (tern_socket_consume(s, n) != 0) {
            VIOLATION(e);
            tern_socket_abort(s);
            return;
        }
        atomic_fetch_add_explicit(&e->bytes_echoed, n, memory_order_relaxed);
    }
}

static void echo_ready_read(tern_socket *s, void *user)
{
    ts_echo *e = user;
    if (tern_reactor_current() != tern_socket_reactor(s)) {
        VIOLATION(e);
    }
    atomic_max(&e->max_buffered, tern_socket_bytes_available(s));
    echo_pump(s, e);
}

static void echo_bytes_written(tern_socket *s, size_t n, void *user)
{
    ts_echo *e = user;
    if (n == 0) {
        VIOLATION(e);
    }
    echo_pump(s, e);
}

static void echo_read_finished(tern_socket *s, void *user)
{
    ts_echo *e = user;
    atomic_fetch_add(&e->read_finished, 1);
    if (!tern_socket_at_end(s) || tern_socket_bytes_available(s) != 0) {
        VIOLATION(e);
    }
    if (e->half_close) {
        if (e->trailer != NULL &&
            tern_socket_write(s, e->trailer, strlen(e->trailer)) != 0) {
            VIOLATION(e);
        }
        tern_socket_close(s);
    }
}

static void echo_disconnected(tern_socket *s, int reason, void *user)
{
    ts_echo *e = user;
    unsigned i = tern_reactor_index(tern_socket_reactor(s));
    if (i < TS_MAX_REACTORS) {
        atomic_fetch_sub(&e->per_reactor_open[i], 1);
    }
    if (reason == 0) {
        atomic_fetch_add(&e->disconnected_clean, 1);
    } else if (reason == TERN_E_IDLE_TIMEOUT) {
        atomic_fetch_add(&e->disconnected_idle, 1);
    }
    atomic_fetch_sub(&e->open, 1);
    atomic_fetch_add(&e->disconnected, 1);
}

static const tern_socket_events echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
    .read_finished = echo_read_finished,
    .disconnected = echo_disconnected,
};

void ts_echo_incoming(tern_server *srv, tern_socket *s, void *user)
{
    ts_echo *e = user;
    tern_reactor *r = tern_socket_reactor(s);
    if (r == NULL || tern_reactor_current() != r) {
        VIOLATION(e);
    }
    if (tern_socket_state(s) != TERN_SOCKET_STATE_CONNECTED) {
        VIOLATION(e);
    }
    if ((e->srv != NULL && srv != e->srv) || tern_socket_server(s) != srv) {
        VIOLATION(e);
    }
    unsigned i = r ? tern_reactor_index(r) : 0;
    if (i < TS_MAX_REACTORS) {
        atomic_fetch_add(&e->per_reactor[i], 1);
        atomic_fetch_add(&e->per_reactor_open[i], 1);
    }
    if (e->port_reactor != NULL) {
        char addr[64];
        if (tern_socket_peer_address(s, addr, sizeof addr) == 0) {
            const char *colon = strrchr(addr, ':');
            long port = colon ? strtol(colon + 1, NULL, 10) : -1;
            if (port > 0 && port < 65536) {
                atomic_store(&e->port_reactor[port], (int)i);
            } else {
                VIOLATION(e);
            }
            /* in `incoming` the address comes from the accept, not getpeername: the same */
            struct sockaddr_storage ss;
            socklen_t sl = sizeof(ss);
            if (getpeername(tern_socket_descriptor(s), (struct sockaddr *)&ss, &sl) < 0 ||
                (ss.ss_family == AF_INET &&
                 ntohs(((struct sockaddr_in *)&ss)->sin_port) != port) ||
                (ss.ss_family == AF_INET6 &&
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) != port)) {
                VIOLATION(e);
            }
        } else {
            VIOLATION(e);
        }
    }
    if (e->expect_read_buffer_size &&
        tern_socket_read_buffer_size(s) != e->expect_read_buffer_size) {
        VIOLATION(e);
    }
    if (e->write_buffer_size) {
        if (tern_socket_set_write_buffer_size(s, e->write_buffer_size) != 0 ||
            tern_socket_write_buffer_size(s) != e->write_buffer_size) {
            VIOLATION(e);
        }
    }
    if (e->send_buffer_size) {
        int v = 0;
        if (tern_socket_set_option(s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE,
                                   e->send_buffer_size) != 0 ||
            tern_socket_option(s, TERN_SOCKET_OPTION_SEND_BUFFER_SIZE, &v) != 0 ||
            v < e->send_buffer_size) {
            VIOLATION(e); /* Linux reports twice the size asked for */
        }
    }
    /* TCP_NODELAY comes from the listener (accepted sockets inherit it): check the kernel's */
    int nodelay = 0;
    socklen_t nlen = sizeof(nodelay);
    if (getsockopt(tern_socket_descriptor(s), IPPROTO_TCP, TCP_NODELAY, &nodelay, &nlen) != 0 ||
        nodelay == 0) {
        VIOLATION(e);
    }
    if (e->half_close) {
        tern_socket_set_half_close(s, true);
    }
    atomic_fetch_add(&e->open, 1);
    tern_socket_set_events(s, &echo_events, e);
    atomic_fetch_add(&e->incoming, 1);
}

tern_server *ts_echo_server(tern_runtime *rt, ts_echo *e)
{
    tern_server *srv = tern_server_new(rt, NULL, ts_echo_incoming, e);
    if (srv == NULL) {
        return NULL;
    }
    e->srv = srv;
    if (tern_server_listen(srv, "127.0.0.1", 0) != 0) {
        ts_log("listen: %s", tern_server_error_string(srv));
        return NULL;
    }
    return srv;
}

/* ---- messages -------------------------------------------------------------------------- */

void ts_log(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "# %s\n", line);
}

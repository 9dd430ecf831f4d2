/* SPDX-License-Identifier: MIT */
/*
 * bench_tls: tern's TLS server under load from a wolfSSL client, over loopback.
 *
 * Server: a tern runtime with --server-threads reactors (default 1) and one TLS server
 * (tern_server_new(rt, cfg, ...)) on 127.0.0.1, port 0. The certificate is an ECDSA P-256
 * self-signed one made at startup with wolfCrypt (nothing is written to disk, except the PEM
 * files the optional openssl peer reads, in a temporary directory removed at exit). Each
 * accepted socket starts the server handshake in `incoming` and echoes the decrypted bytes
 * with the backpressure of bench_echo (peek_view + write + consume, stop on a full queue,
 * resume on bytes_written). The server does not ask for a client certificate (VERIFY_NONE,
 * as a web server; --server-verify auto keeps tern's default, QUERY_PEER, which sends a
 * CertificateRequest).
 *
 * Client: wolfSSL used directly on non-blocking sockets and epoll, in --client-threads
 * threads of its own: no tern code on the client side. It does not verify the server's
 * certificate (VERIFY_NONE: the chain is not checked; the TLS 1.3 CertificateVerify / the
 * TLS 1.2 ServerKeyExchange signature still is, by the protocol), offers one group (X25519),
 * one suite (TLS13-AES128-GCM-SHA256, or ECDHE-ECDSA-AES128-GCM-SHA256 with --tls 1.2),
 * sends SNI "localhost", keeps no session cache and offers no TLS 1.2 ticket: every
 * handshake is a full one. Phases:
 *
 *   handshake  C concurrent slots; each: connect, full handshake, send --request-size bytes
 *              (default 16), read the echo back and check it, send close_notify + FIN, read
 *              until the server's FIN (its close_notify is discarded, not decrypted), close;
 *              then starts over. Rate: connections completed per second (counted when the
 *              echo is back; with --request-size 0, when the client's handshake is done),
 *              connect-to-echo latency percentiles, and connections per server CPU-second.
 *   bulk       K long-lived connections, handshake before the measured window; each passes
 *              --write-size bytes per wolfSSL_write (default 64 KiB: four 16 KiB records)
 *              with at most --window bytes unanswered, reads the echo back and checks every
 *              byte. Rate: MB/s of echo received (10^6 B; the server decrypts and encrypts
 *              that much each), and MB per server CPU-second.
 *   idle       a fresh server process (this program re-executed with --serve-child), so that
 *              its memory is the server's alone. N connections complete the handshake and
 *              one 16-byte echo, then sit idle; the server's VmRSS (/proc/<pid>/status) is
 *              read before and after, each after --settle seconds: KiB per idle connection
 *              (RssAnon, and the bytes malloc has handed out, mallinfo2 in the child, too).
 *              A warm-up of 100 connections (8 at a time, closed again) comes first, so
 *              one-off allocations (wolfSSL's session cache, malloc arenas, tern's pools) are
 *              not charged to the connections.
 *
 * Why wolfSSL on epoll rather than tern client sockets on a second runtime: the client's cost
 * per handshake is its crypto (X25519 key generation and agreement, the ECDSA verification of
 * CertificateVerify), the same whichever wrapper calls wolfSSL; calling it on the descriptor
 * directly adds nothing to that (no memory-BIO copies, no reactor, no second runtime's
 * threads), so it is the cheapest client per handshake, and it shares no code with the server.
 *
 *   psk        (--mode psk, not part of all) the handshake loop with pre-shared keys against a
 *              PSK-only tern server (tern_ssl_config_enable_psk; psk_authentication_required
 *              answered inline from a fixed identity/key), one run set per --psk-suite
 *              (tls12-psk, tls12-ecdhe-psk, tls13-psk_ke, tls13-psk_dhe_ke); with
 *              --peer stunnel, the same runs against stunnel (PSKsecrets) in front of a
 *              plaintext echo child, stunnel's CPU from /proc/<pid>/stat.
 *
 * CPU (handshake, bulk): as bench_echo. The process CPU clock and each client thread's CPU
 * clock are read at the start and end of the measured window; server = process - client
 * threads (reactors, acceptor, workers; the main thread sleeps). Reactor threads' own clocks
 * are read too. With --peer openssl, the same handshake phase also runs against
 * `openssl s_server -www` (a child process; its CPU is its process CPU clock) with
 * --request-size 0 for both servers (see usage()).
 *
 * Bounds: every run ends by its deadline plus --grace seconds; what is unfinished is closed
 * and counted. Child processes are waited for (SIGKILL after 5 s). Exit status: 0 after a
 * full run, 1 when a run failed, 2 on a bad argument or a setup failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include <tern/tern.h>

#include "bench_util.h"

#define MAX_RUNS 64
#define MAX_CLIENT_THREADS 64
#define MAX_CHUNK (1u << 20)
#define READ_BUF (256u * 1024u)
#define PATTERN_PERIOD 251u /* prime, so the pattern does not align with any buffer size */
#define MAX_LAT_SAMPLES (1u << 20)
#define IDLE_WARMUP 100u
#define IDLE_WARMUP_INFLIGHT 8u
#define IDLE_INFLIGHT 64u
#define FD_RESERVE 64u

static uint8_t pattern[MAX_CHUNK + PATTERN_PERIOD];

static void pattern_init(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++) {
        pattern[i] = (uint8_t)(i % PATTERN_PERIOD);
    }
}

/* ---- options ------------------------------------------------------------------------------ */

struct opts {
    bool do_hs, do_bulk, do_idle;
    int tls; /* 12 or 13 */
    unsigned connections;
    unsigned streams;
    unsigned server_threads;
    unsigned client_threads;
    unsigned runs;
    unsigned idle_runs;
    unsigned idle_n;
    double duration, warmup, grace, settle;
    size_t request, chunk, window;
    bool peer_openssl;
    bool server_verify_auto;
    bool reuseport;
    bool json;
    bool serve_child; /* internal: the idle phase's server process */
    bool do_psk;      /* --mode psk */
    unsigned psk_mask; /* bit i: psk_suites[i] */
    bool peer_stunnel; /* psk: also run against stunnel (started here) */
    uint16_t peer_port; /* psk: also run against a server already listening there */
    int peer_pid;       /* ... whose CPU is read from /proc/<pid>/stat (0: not measured) */
    const char *label;  /* report: the PSK suite of the lines printed */
};

/* ---- certificate ---------------------------------------------------------------------------- */

struct cert_set {
    unsigned char cert[2048];
    int cert_len;
    unsigned char key[256];
    int key_len;
};

/* A self-signed ECDSA P-256 certificate (CN=localhost, SHA-256, 2 days) and its key, DER. */
static int make_cert(struct cert_set *cs, char *err, size_t errlen)
{
    WC_RNG rng;
    ecc_key key;
    Cert cert;
    int rc;

    if ((rc = wc_InitRng(&rng)) != 0) {
        snprintf(err, errlen, "wc_InitRng: %d", rc);
        return -1;
    }
    if ((rc = wc_ecc_init(&key)) != 0) {
        wc_FreeRng(&rng);
        snprintf(err, errlen, "wc_ecc_init: %d", rc);
        return -1;
    }
    rc = wc_ecc_make_key_ex(&rng, 32, &key, ECC_SECP256R1);
    if (rc == 0) {
        rc = wc_InitCert(&cert);
    }
    if (rc == 0) {
        snprintf(cert.subject.commonName, sizeof(cert.subject.commonName), "localhost");
        snprintf(cert.subject.org, sizeof(cert.subject.org), "tern bench_tls");
        cert.sigType = CTC_SHA256wECDSA;
        cert.daysValid = 2;
        cert.isCA = 0;
        rc = wc_MakeCert_ex(&cert, cs->cert, sizeof(cs->cert), ECC_TYPE, &key, &rng);
    }
    if (rc >= 0) {
        rc = wc_SignCert_ex(cert.bodySz, cert.sigType, cs->cert, sizeof(cs->cert), ECC_TYPE, &key,
                            &rng);
        cs->cert_len = rc;
    }
    if (rc >= 0) {
        rc = wc_EccKeyToDer(&key, cs->key, sizeof(cs->key));
        cs->key_len = rc;
    }
    wc_ecc_free(&key);
    wc_FreeRng(&rng);
    if (rc < 0) {
        snprintf(err, errlen, "certificate generation failed (wolfCrypt %d)", rc);
        return -1;
    }
    return 0;
}

/* Writes cert.pem and key.pem into a fresh temporary directory (for openssl s_server). */
static int write_pem_files(const struct cert_set *cs, char *dir, size_t dirlen, char *cert_path,
                           char *key_path, size_t pathlen)
{
    unsigned char pem[4096];
    snprintf(dir, dirlen, "/tmp/bench_tls.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(cert_path, pathlen, "%s/cert.pem", dir);
    snprintf(key_path, pathlen, "%s/key.pem", dir);
    struct {
        const char *path;
        const unsigned char *der;
        int len;
        int type;
    } files[2] = {{cert_path, cs->cert, cs->cert_len, CERT_TYPE},
                  {key_path, cs->key, cs->key_len, ECC_PRIVATEKEY_TYPE}};
    for (int i = 0; i < 2; i++) {
        int n = wc_DerToPem(files[i].der, (word32)files[i].len, pem, sizeof(pem), files[i].type);
        int fd = n > 0 ? open(files[i].path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
        if (fd < 0) {
            return -1;
        }
        bool ok = write(fd, pem, (size_t)n) == n;
        close(fd);
        if (!ok) {
            return -1;
        }
    }
    return 0;
}

/* ---- server: tern TLS echo ---------------------------------------------------------------- */

/* Moves what the write queue has room for from the read buffer to the write queue; stops at
 * the first of: nothing buffered, queue full (bytes_written calls it again). @thread owner */
static void echo_pump(tern_socket *s)
{
    for (;;) {
        size_t room = tern_socket_write_room(s);
        if (room == 0) {
            return;
        }
        tern_buf view;
        if (tern_socket_peek_view(s, &view) < 0 || view.len == 0) {
            return;
        }
        size_t n = view.len < room ? view.len : room;
        int rc = tern_socket_write(s, view.base, n);
        if (rc == TERN_ENOBUFS || rc == TERN_ENOTCONN) {
            return;
        }
        if (rc < 0 || tern_socket_consume(s, n) < 0) {
            tern_socket_abort(s);
            return;
        }
    }
}

static void echo_ready_read(tern_socket *s, void *user)
{
    echo_pump(s);
}

static void echo_bytes_written(tern_socket *s, size_t n, void *user)
{
    echo_pump(s);
}

static const tern_socket_events echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
};

/* ---- PSK: a fixed identity and key ------------------------------------------------------- */

static const char psk_identity[] = "bench-client";
static const uint8_t psk_key[32] = {
    0x8b, 0x1f, 0x3a, 0x52, 0x09, 0xe4, 0x77, 0xc2, 0x5d, 0x90, 0x0e, 0x6a, 0xf3, 0x21, 0xb8, 0x44,
    0x16, 0xcd, 0x6f, 0x3e, 0xa7, 0x58, 0x02, 0x99, 0xd1, 0x4c, 0xbe, 0x73, 0x2a, 0x85, 0xe0, 0x1b};

/* Answered inline: the fixed identity gets the fixed key, anything else is refused. */
static void on_psk_required(tern_socket *s, tern_psk_authenticator *auth, void *user)
{
    tern_buf id = tern_psk_authenticator_identity(auth);
    if (id.len == sizeof(psk_identity) - 1 && memcmp(id.base, psk_identity, id.len) == 0) {
        (void)tern_psk_authenticator_complete(auth, psk_key, sizeof(psk_key));
    } else {
        (void)tern_psk_authenticator_reject(auth);
    }
}

static const tern_socket_events psk_echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
    .psk_authentication_required = on_psk_required,
};

/* @p user: the events table (echo_events, or psk_echo_events). */
static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, user != NULL ? user : &echo_events, NULL);
    if (tern_socket_start_server_encryption(s) < 0) {
        tern_socket_abort(s);
    }
}

struct clock_probe {
    clockid_t clk;
    _Atomic int state; /* 0 pending, 1 ok, -1 failed */
};

static void probe_task(tern_reactor *r, void *arg)
{
    struct clock_probe *p = arg;
    if (r == NULL) {
        return;
    }
    int ok = pthread_getcpuclockid(pthread_self(), &p->clk) == 0;
    atomic_store_explicit(&p->state, ok ? 1 : -1, memory_order_release);
}

struct tserver {
    tern_runtime *rt;
    tern_server *srv;
    tern_ssl_config *cfg;
    uint16_t port;
    unsigned nreactors;
    clockid_t reactor_clock[TERN_MAX_REACTORS];
    bool reactor_clock_ok[TERN_MAX_REACTORS];
};

static void server_free(struct tserver *sv)
{
    if (sv->rt != NULL) {
        tern_runtime_stop(sv->rt, 2000);
        tern_runtime_join(sv->rt);
        tern_runtime_free(sv->rt); /* the server's listener too */
        sv->rt = NULL;
    }
    tern_ssl_config_unref(sv->cfg);
    sv->cfg = NULL;
}

/* @p cs NULL: a PSK-only server (tern_ssl_config_enable_psk, no certificate). */
static int server_start(struct tserver *sv, const struct opts *o, const struct cert_set *cs,
                        char *err, size_t errlen)
{
    memset(sv, 0, sizeof(*sv));
    sv->cfg = tern_ssl_config_new();
    if (sv->cfg == NULL) {
        snprintf(err, errlen, "tern_ssl_config_new: out of memory");
        return -1;
    }
    int rc = cs == NULL ? tern_ssl_config_enable_psk(sv->cfg, "tern-bench")
                        : tern_ssl_config_set_local_certificate(sv->cfg, cs->cert,
                                                                (size_t)cs->cert_len,
                                                                TERN_ENCODING_DER);
    if (rc == 0 && cs != NULL) {
        rc = tern_ssl_config_set_private_key(sv->cfg, cs->key, (size_t)cs->key_len,
                                             TERN_ENCODING_DER, NULL);
    }
    if (rc == 0 && !o->server_verify_auto) {
        rc = tern_ssl_config_set_peer_verify_mode(sv->cfg, TERN_VERIFY_NONE);
    }
    if (rc < 0) {
        snprintf(err, errlen, "TLS configuration: %s: %s", tern_err_name(rc),
                 tern_ssl_config_error_string(sv->cfg));
        server_free(sv);
        return -1;
    }
    tern_runtime_options ro;
    tern_runtime_options_init(&ro);
    ro.reactors = o->server_threads;
    ro.workers = 1;
    sv->rt = tern_runtime_new(&ro);
    if (sv->rt == NULL) {
        snprintf(err, errlen, "tern_runtime_new: out of memory");
        server_free(sv);
        return -1;
    }
    sv->srv = tern_server_new(sv->rt, sv->cfg, on_incoming,
                              cs == NULL ? (void *)&psk_echo_events : NULL);
    if (sv->srv == NULL) {
        snprintf(err, errlen, "tern_server_new: out of memory");
        server_free(sv);
        return -1;
    }
    rc = o->reuseport ? tern_server_set_reuseport(sv->srv, true) : 0;
    if (rc == 0) {
        rc = tern_server_set_backlog(sv->srv, 4096);
    }
    if (rc == 0) {
        rc = tern_server_listen(sv->srv, "127.0.0.1", 0);
    }
    if (rc < 0) {
        snprintf(err, errlen, "listen: %s: %s", tern_err_name(rc),
                 tern_server_error_string(sv->srv));
        server_free(sv);
        return -1;
    }
    sv->port = tern_server_port(sv->srv);
    rc = tern_runtime_start(sv->rt);
    if (rc < 0) {
        snprintf(err, errlen, "tern_runtime_start: %s: %s", tern_err_name(rc),
                 tern_runtime_error_string(sv->rt));
        tern_runtime_free(sv->rt);
        sv->rt = NULL;
        server_free(sv);
        return -1;
    }
    sv->nreactors = tern_runtime_reactor_count(sv->rt);
    if (sv->nreactors > TERN_MAX_REACTORS) {
        sv->nreactors = TERN_MAX_REACTORS;
    }
    struct clock_probe *probes = calloc(sv->nreactors ? sv->nreactors : 1, sizeof(*probes));
    if (probes == NULL) {
        snprintf(err, errlen, "out of memory");
        server_free(sv);
        return -1;
    }
    for (unsigned i = 0; i < sv->nreactors; i++) {
        tern_reactor *r = tern_runtime_reactor(sv->rt, i);
        if (r == NULL || tern_reactor_post(r, probe_task, &probes[i]) != 0) {
            atomic_store(&probes[i].state, -1);
        }
    }
    uint64_t limit = bench_now_ns() + 2000000000u;
    for (unsigned i = 0; i < sv->nreactors; i++) {
        while (atomic_load_explicit(&probes[i].state, memory_order_acquire) == 0 &&
               bench_now_ns() < limit) {
            bench_sleep_ns(100000);
        }
        sv->reactor_clock_ok[i] =
            atomic_load_explicit(&probes[i].state, memory_order_acquire) == 1;
        sv->reactor_clock[i] = probes[i].clk;
    }
    free(probes);
    return 0;
}

/* ---- client: wolfSSL on epoll ---------------------------------------------------------------- */

enum phase { PHASE_HS, PHASE_BULK };

enum cstate {
    C_IDLE,        /* not started, or waiting for retry_at after a failure */
    C_CONNECTING,  /* TCP connect in progress */
    C_HANDSHAKE,   /* wolfSSL_connect in progress */
    C_SENDING,     /* the request's write would block */
    C_READING,     /* waiting for the echo */
    C_DRAINING,    /* close_notify and FIN sent; reading until the server's FIN */
    C_ESTABLISHED, /* idle phase: handshake and echo done, left open */
    C_STREAMING,   /* bulk */
    C_STOPPING,    /* bulk: finishing the last write, close_notify, reading the rest */
    C_CLOSED,      /* done with */
};

struct conn {
    int fd;
    WOLFSSL *ssl;
    enum cstate state;
    uint32_t gen;       /* epoll events carry it: events of a previous fd are ignored */
    uint32_t ev;        /* epoll interest registered (0: not in the set) */
    uint64_t t_start;   /* handshake phase: when connect() was called */
    uint64_t retry_at;  /* C_IDLE until then after a failure */
    size_t got;         /* echo bytes received */
    uint64_t sent;      /* bulk: bytes handed to wolfSSL_write (a pending write included) */
    uint64_t recvd;     /* bulk */
    size_t wpending;    /* bulk: length of the write wolfSSL holds; retried as is */
    const uint8_t *wptr;
    bool close_pending; /* bulk: close_notify waits for room in the socket */
    bool close_sent;
};

/* What one run (or the idle phase's client) needs; read-only for the client threads after
 * the start barrier. */
struct run_params {
    enum phase phase;
    const struct opts *o;
    WOLFSSL_CTX *ctx;
    struct sockaddr_in addr;
    size_t request;
    bool restart;     /* handshake phase: a slot starts over when its connection ends */
    bool keep_open;   /* idle phase: C_ESTABLISHED after the echo, not closed */
    uint64_t t_begin; /* measured window [t_begin, t_end) */
    uint64_t t_end;
    uint64_t t_hard_end;
    pthread_barrier_t barrier;
};

struct client {
    struct run_params *rp;
    unsigned nconns;
    struct conn *conns;
    int ep;
    uint8_t *buf; /* READ_BUF */
    pthread_t thread;
    clockid_t cpu_clock;
    bool cpu_clock_ok;
    int setup_error;        /* bulk: errno or a wolfSSL error of the setup */
    const char *setup_what; /* what failed */
    /* results */
    uint64_t completed;      /* completed inside the window (handshake phase) */
    uint64_t completed_all;  /* completed at any time */
    uint64_t handshakes_all; /* client handshakes that succeeded */
    uint64_t bytes;          /* bulk: echo bytes received inside the window */
    uint64_t connect_errors; /* connect() or SO_ERROR failed (retried) */
    uint64_t hs_errors;      /* wolfSSL_connect failed */
    int last_hs_error;       /* its wolfSSL error code */
    uint64_t io_errors;      /* reset, early EOF, write or read failure after the handshake */
    uint64_t mismatches;     /* echo differed from what was sent */
    uint64_t unfinished;     /* still busy at the hard deadline */
    uint64_t lost;           /* bulk: bytes sent and never echoed back */
    uint64_t drain_resets;   /* the server's FIN came as a reset */
    uint32_t *lat_us;
    size_t nlat;
    char neg_version[16], neg_cipher[64], neg_group[32];
};

static int ep_set(struct client *cl, struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events,
                             .data.u64 = ((uint64_t)c->gen << 32) | (uint64_t)(c - cl->conns)};
    int rc = 0;
    if (events == c->ev) {
        return 0;
    }
    if (events == 0) {
        rc = epoll_ctl(cl->ep, EPOLL_CTL_DEL, c->fd, NULL);
    } else {
        rc = epoll_ctl(cl->ep, c->ev == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev);
    }
    if (rc == 0) {
        c->ev = events;
    }
    return rc;
}

static struct conn *ev_conn(struct client *cl, uint64_t data)
{
    uint32_t idx = (uint32_t)data;
    if (idx >= cl->nconns || cl->conns[idx].gen != (uint32_t)(data >> 32)) {
        return NULL;
    }
    return &cl->conns[idx];
}

/* Frees the TLS state and closes the descriptor (which leaves the epoll set). */
static void conn_reset(struct conn *c)
{
    if (c->ssl != NULL) {
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    c->fd = -1;
    c->ev = 0;
}

static void conn_fail(struct conn *c, uint64_t now)
{
    conn_reset(c);
    c->state = C_IDLE;
    c->retry_at = now + 1000000; /* 1 ms: no hot loop on a persistent failure */
}

static void note_negotiated(struct client *cl, WOLFSSL *ssl)
{
    if (cl->neg_version[0] != '\0') {
        return;
    }
    const char *v = wolfSSL_get_version(ssl);
    const char *ci = wolfSSL_get_cipher_name(ssl);
    const char *g = wolfSSL_get_curve_name(ssl);
    snprintf(cl->neg_version, sizeof(cl->neg_version), "%s", v != NULL ? v : "?");
    snprintf(cl->neg_cipher, sizeof(cl->neg_cipher), "%s", ci != NULL ? ci : "?");
    snprintf(cl->neg_group, sizeof(cl->neg_group), "%s", g != NULL ? g : "?");
}

/* Starts a connection on slot @p c: non-blocking connect. */
static void hs_start(struct client *cl, struct conn *c, uint64_t now)
{
    c->gen++;
    c->got = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        cl->connect_errors++;
        conn_fail(c, now);
        return;
    }
    int one = 1;
    (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->t_start = now;
    c->state = C_CONNECTING;
    int rc = connect(c->fd, (const struct sockaddr *)&cl->rp->addr, sizeof(cl->rp->addr));
    if ((rc != 0 && errno != EINPROGRESS) || ep_set(cl, c, EPOLLIN | EPOLLOUT) != 0) {
        cl->connect_errors++; /* EADDRNOTAVAIL: ephemeral ports in TIME_WAIT; back off */
        conn_fail(c, now);
    }
}

static void hs_completed(struct client *cl, struct conn *c, uint64_t now)
{
    const struct run_params *rp = cl->rp;
    cl->completed_all++;
    if (now >= rp->t_begin && now < rp->t_end) {
        cl->completed++;
        if (cl->lat_us != NULL && cl->nlat < MAX_LAT_SAMPLES) {
            uint64_t us = (now - c->t_start) / 1000;
            cl->lat_us[cl->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        }
    }
}

/* close_notify, FIN; the server's close_notify and FIN are read raw and dropped. */
static void hs_begin_close(struct client *cl, struct conn *c, uint64_t now)
{
    (void)wolfSSL_shutdown(c->ssl); /* one small record into an idle socket: never blocks */
    wolfSSL_free(c->ssl);
    c->ssl = NULL;
    (void)shutdown(c->fd, SHUT_WR);
    c->state = C_DRAINING;
    if (ep_set(cl, c, EPOLLIN) != 0) {
        cl->io_errors++;
        conn_fail(c, now);
    }
}

/* After the echo (or the handshake, with no request). */
static void hs_done(struct client *cl, struct conn *c, uint64_t now)
{
    hs_completed(cl, c, now);
    if (cl->rp->keep_open) {
        c->state = C_ESTABLISHED;
        (void)ep_set(cl, c, 0);
        return;
    }
    hs_begin_close(cl, c, now);
}

static void hs_send_request(struct client *cl, struct conn *c, uint64_t now)
{
    int len = (int)cl->rp->request;
    int n = wolfSSL_write(c->ssl, pattern, len);
    if (n == len) {
        c->state = C_READING;
        c->got = 0;
        if (ep_set(cl, c, EPOLLIN) != 0) {
            cl->io_errors++;
            conn_fail(c, now);
        }
        return;
    }
    int err = wolfSSL_get_error(c->ssl, n);
    c->state = C_SENDING;
    if (err == WOLFSSL_ERROR_WANT_WRITE || err == WOLFSSL_ERROR_WANT_READ) {
        if (ep_set(cl, c, err == WOLFSSL_ERROR_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN) == 0) {
            return;
        }
    }
    cl->io_errors++;
    conn_fail(c, now);
}

static void hs_step(struct client *cl, struct conn *c, uint64_t now)
{
    int rc = wolfSSL_connect(c->ssl);
    if (rc == WOLFSSL_SUCCESS) {
        cl->handshakes_all++;
        note_negotiated(cl, c->ssl);
        if (cl->rp->request == 0) {
            hs_done(cl, c, now);
        } else {
            hs_send_request(cl, c, now);
        }
        return;
    }
    int err = wolfSSL_get_error(c->ssl, rc);
    if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
        if (ep_set(cl, c, err == WOLFSSL_ERROR_WANT_WRITE ? EPOLLIN | EPOLLOUT : EPOLLIN) == 0) {
            return;
        }
    }
    cl->hs_errors++;
    cl->last_hs_error = err;
    conn_fail(c, now);
}

static void hs_read_echo(struct client *cl, struct conn *c, uint64_t now)
{
    size_t want = cl->rp->request;
    for (;;) {
        int n = wolfSSL_read(c->ssl, cl->buf, 4096);
        if (n > 0) {
            if (c->got + (size_t)n > want || memcmp(cl->buf, pattern + c->got, (size_t)n) != 0) {
                cl->mismatches++;
                conn_fail(c, now);
                return;
            }
            c->got += (size_t)n;
            if (c->got == want) {
                hs_done(cl, c, now);
                return;
            }
            continue;
        }
        int err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
            return;
        }
        cl->io_errors++; /* reset, close_notify or EOF before the whole echo */
        conn_fail(c, now);
        return;
    }
}

static void hs_drain(struct client *cl, struct conn *c, uint64_t now, bool stopping)
{
    for (;;) {
        ssize_t n = recv(c->fd, cl->buf, 4096, 0);
        if (n > 0 || (n < 0 && errno == EINTR)) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n < 0) {
            cl->drain_resets++;
        }
        conn_reset(c);
        if (!cl->rp->restart) {
            c->state = C_CLOSED;
            return;
        }
        c->state = C_IDLE;
        c->retry_at = 0;
        if (!stopping) {
            hs_start(cl, c, now);
        }
        return;
    }
}

static void hs_event(struct client *cl, struct conn *c, uint32_t events, uint64_t now,
                     bool stopping)
{
    switch (c->state) {
    case C_CONNECTING: {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
            return;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            cl->connect_errors++;
            conn_fail(c, now);
            return;
        }
        c->ssl = wolfSSL_new(cl->rp->ctx);
        if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
            cl->hs_errors++;
            conn_fail(c, now);
            return;
        }
        c->state = C_HANDSHAKE;
        hs_step(cl, c, now);
        return;
    }
    case C_HANDSHAKE:
        hs_step(cl, c, now);
        return;
    case C_SENDING:
        hs_send_request(cl, c, now);
        return;
    case C_READING:
        hs_read_echo(cl, c, now);
        return;
    case C_DRAINING:
        hs_drain(cl, c, now, stopping);
        return;
    default:
        return;
    }
}

static bool hs_busy(const struct conn *c)
{
    return c->state == C_CONNECTING || c->state == C_HANDSHAKE || c->state == C_SENDING ||
           c->state == C_READING || c->state == C_DRAINING;
}

static void run_hs_phase(struct client *cl)
{
    const struct run_params *rp = cl->rp;
    struct epoll_event evs[256];
    bool stopping = false;

    uint64_t now = bench_now_ns();
    for (unsigned i = 0; i < cl->nconns; i++) {
        hs_start(cl, &cl->conns[i], now);
    }
    for (;;) {
        now = bench_now_ns();
        if (now >= rp->t_end) {
            stopping = true; /* no new connections; let the ones in flight finish */
        }
        unsigned active = 0;
        for (unsigned i = 0; i < cl->nconns; i++) {
            struct conn *c = &cl->conns[i];
            if (c->state == C_IDLE && !stopping && now >= c->retry_at) {
                hs_start(cl, c, now);
            }
            if (hs_busy(c)) {
                active++;
            }
        }
        if (stopping && active == 0) {
            return;
        }
        if (now >= rp->t_hard_end) {
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (hs_busy(c)) {
                    if (c->state != C_DRAINING) {
                        cl->unfinished++;
                    }
                    conn_reset(c);
                    c->state = C_CLOSED;
                }
            }
            return;
        }
        int n = epoll_wait(cl->ep, evs, 256, 1);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = ev_conn(cl, evs[i].data.u64);
            if (c != NULL) {
                hs_event(cl, c, evs[i].events, now, stopping);
            }
        }
    }
}

/* ---- bulk ---------------------------------------------------------------------------------- */

static void bulk_end(struct client *cl, struct conn *c, bool error)
{
    if (error) {
        cl->io_errors++;
    }
    cl->lost += c->sent - c->recvd;
    conn_reset(c);
    c->state = C_CLOSED;
}

/* Reads what is there, checks it, counts it. false if the connection ended. */
static bool bulk_read(struct client *cl, struct conn *c, uint64_t now)
{
    const struct run_params *rp = cl->rp;
    for (;;) {
        int n = wolfSSL_read(c->ssl, cl->buf, (int)READ_BUF);
        if (n > 0) {
            if ((uint64_t)n > c->sent - c->recvd ||
                memcmp(cl->buf, pattern + c->recvd % PATTERN_PERIOD, (size_t)n) != 0) {
                cl->mismatches++;
                bulk_end(cl, c, false);
                return false;
            }
            c->recvd += (uint64_t)n;
            if (now >= rp->t_begin && now < rp->t_end) {
                cl->bytes += (uint64_t)n;
            }
            continue;
        }
        int err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) {
            return true;
        }
        /* the server's close_notify (or FIN) after ours is the orderly end */
        bulk_end(cl, c, !(c->state == C_STOPPING && c->close_sent));
        return false;
    }
}

static void bulk_try_close(struct client *cl, struct conn *c)
{
    if (c->wpending != 0 || c->close_sent) {
        return;
    }
    int r = wolfSSL_shutdown(c->ssl);
    if (r == WOLFSSL_FATAL_ERROR &&
        wolfSSL_get_error(c->ssl, r) == WOLFSSL_ERROR_WANT_WRITE) {
        c->close_pending = true; /* wolfSSL keeps the alert; sent on the next call */
        (void)ep_set(cl, c, EPOLLIN | EPOLLOUT);
        return;
    }
    c->close_pending = false;
    c->close_sent = true;
    (void)shutdown(c->fd, SHUT_WR);
    (void)ep_set(cl, c, EPOLLIN);
}

static void bulk_write(struct client *cl, struct conn *c)
{
    const struct opts *o = cl->rp->o;
    for (;;) {
        if (c->wpending == 0) {
            if (c->state != C_STREAMING) {
                return;
            }
            uint64_t inflight = c->sent - c->recvd;
            if (inflight >= o->window) {
                (void)ep_set(cl, c, EPOLLIN);
                return;
            }
            size_t len = o->chunk;
            if (o->window - inflight < len) {
                len = (size_t)(o->window - inflight);
            }
            c->wptr = pattern + c->sent % PATTERN_PERIOD;
            c->wpending = len;
            c->sent += len;
        }
        int n = wolfSSL_write(c->ssl, c->wptr, (int)c->wpending);
        if (n == (int)c->wpending) {
            c->wpending = 0;
            continue;
        }
        int err = wolfSSL_get_error(c->ssl, n);
        if (err == WOLFSSL_ERROR_WANT_WRITE) {
            (void)ep_set(cl, c, EPOLLIN | EPOLLOUT);
            return;
        }
        if (err == WOLFSSL_ERROR_WANT_READ) {
            (void)ep_set(cl, c, EPOLLIN);
            return;
        }
        bulk_end(cl, c, true);
        return;
    }
}

/* Before the start barrier: K connections with the handshake done. 0 or an errno value. */
static int bulk_setup(struct client *cl)
{
    int one = 1;
    for (unsigned i = 0; i < cl->nconns; i++) {
        struct conn *c = &cl->conns[i];
        c->gen++;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            cl->setup_what = "socket";
            return errno;
        }
        (void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->fd, (const struct sockaddr *)&cl->rp->addr, sizeof(cl->rp->addr)) != 0) {
            cl->setup_what = "connect";
            return errno;
        }
        c->ssl = wolfSSL_new(cl->rp->ctx);
        if (c->ssl == NULL || wolfSSL_set_fd(c->ssl, c->fd) != WOLFSSL_SUCCESS) {
            cl->setup_what = "wolfSSL_new";
            return ENOMEM;
        }
        int rc = wolfSSL_connect(c->ssl); /* blocking socket: the whole handshake */
        if (rc != WOLFSSL_SUCCESS) {
            cl->setup_what = "TLS handshake";
            cl->last_hs_error = wolfSSL_get_error(c->ssl, rc);
            return EPROTO;
        }
        cl->handshakes_all++;
        note_negotiated(cl, c->ssl);
        int fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            ep_set(cl, c, EPOLLIN | EPOLLOUT) != 0) {
            cl->setup_what = "fcntl/epoll";
            return errno;
        }
        c->state = C_STREAMING;
    }
    return 0;
}

static bool bulk_active(const struct conn *c)
{
    return c->state == C_STREAMING || c->state == C_STOPPING;
}

static void run_bulk_phase(struct client *cl)
{
    const struct run_params *rp = cl->rp;
    struct epoll_event evs[256];
    bool stopping = false;

    for (;;) {
        uint64_t now = bench_now_ns();
        if (!stopping && now >= rp->t_end) {
            /* Stop writing; close_notify + FIN once the last write is out; read the rest. */
            stopping = true;
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (c->state == C_STREAMING) {
                    c->state = C_STOPPING;
                    bulk_try_close(cl, c);
                }
            }
        }
        unsigned active = 0;
        for (unsigned i = 0; i < cl->nconns; i++) {
            active += bulk_active(&cl->conns[i]);
        }
        if (active == 0) {
            return;
        }
        if (now >= rp->t_hard_end) {
            for (unsigned i = 0; i < cl->nconns; i++) {
                struct conn *c = &cl->conns[i];
                if (bulk_active(c)) {
                    cl->unfinished++;
                    bulk_end(cl, c, false);
                }
            }
            return;
        }
        int n = epoll_wait(cl->ep, evs, 256, 1);
        now = bench_now_ns();
        for (int i = 0; i < n; i++) {
            struct conn *c = ev_conn(cl, evs[i].data.u64);
            if (c == NULL || !bulk_active(c)) {
                continue;
            }
            uint32_t e = evs[i].events;
            if ((e & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !bulk_read(cl, c, now)) {
                continue;
            }
            if (c->state == C_STREAMING) {
                if (c->wpending != 0 ? (e & EPOLLOUT) != 0
                                     : c->sent - c->recvd < rp->o->window) {
                    bulk_write(cl, c);
                }
            } else if (c->wpending != 0 && (e & EPOLLOUT)) {
                bulk_write(cl, c); /* C_STOPPING: finishes the held write only */
                bulk_try_close(cl, c);
            } else if (c->close_pending && (e & EPOLLOUT)) {
                bulk_try_close(cl, c);
            }
        }
    }
}

static void *client_main(void *arg)
{
    struct client *cl = arg;
    struct run_params *rp = cl->rp;

    if (rp->phase == PHASE_BULK) {
        cl->setup_error = bulk_setup(cl);
    }
    pthread_barrier_wait(&rp->barrier); /* 1: set up */
    pthread_barrier_wait(&rp->barrier); /* 2: main has set the times (or an error) */
    if (rp->t_end == 0) {
        return NULL; /* aborted: a client failed to set up */
    }
    if (rp->phase == PHASE_HS) {
        run_hs_phase(cl);
    } else {
        run_bulk_phase(cl);
    }
    return NULL;
}

static WOLFSSL_CTX *client_ctx_new(const struct opts *o, char *err, size_t errlen)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(o->tls == 13 ? wolfTLSv1_3_client_method()
                                                    : wolfTLSv1_2_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "wolfSSL_CTX_new failed");
        return NULL;
    }
    const char *suite = o->tls == 13 ? "TLS13-AES128-GCM-SHA256" : "ECDHE-ECDSA-AES128-GCM-SHA256";
    int groups[1] = {WOLFSSL_ECC_X25519};
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    const char *what = NULL;
    if (wolfSSL_CTX_set_cipher_list(ctx, suite) != WOLFSSL_SUCCESS) {
        what = "cipher list";
    } else if (wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) {
        what = "supported groups";
    } else if (o->tls == 13 && wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS) {
        what = "key share group";
    } else if (wolfSSL_CTX_UseSNI(ctx, WOLFSSL_SNI_HOST_NAME, "localhost", 9) != WOLFSSL_SUCCESS) {
        what = "SNI";
    }
    if (what != NULL) {
        snprintf(err, errlen, "client context: %s refused", what);
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    (void)wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    (void)wolfSSL_CTX_NoTicketTLSv12(ctx);
    return ctx;
}

/* ---- runs, CPU accounting ------------------------------------------------------------------ */

/* What a run is aimed at: the in-process tern server, or an external process (openssl). */
struct target {
    const char *name;
    uint16_t port;
    struct tserver *sv; /* NULL: external */
    pid_t pid;
    clockid_t clock;
    bool clock_ok;
    pid_t backend_pid; /* stunnel's plaintext echo backend (0: none); CPU reported apart */
};

struct run_result {
    double rate;        /* conn/s or MB/s */
    double wall_s;      /* measured window, by the main thread's clock */
    double proc_cpu;    /* CPU s per wall s, this process */
    double client_cpu;  /* idem, client threads */
    double server_cpu;  /* idem, the server */
    double reactor_cpu; /* idem, reactor threads only (tern) */
    double per_cpu;     /* events (conn or MB) per server CPU-second */
    double server_us;   /* server CPU us per connection (handshake phase) */
    double client_us;   /* client CPU us per connection */
    double p50_ms, p99_ms;
    double backend_cpu; /* CPU s per wall s of target->backend_pid */
    uint64_t events;
    uint64_t completed_all, handshakes_client, connect_errors, hs_errors, io_errors, mismatches,
        unfinished, lost, drain_resets;
    int last_hs_error;
    tern_stats delta; /* tern only */
    char neg_version[16], neg_cipher[64], neg_group[32];
};

static uint64_t reactors_cpu_ns(const struct tserver *sv)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < sv->nreactors; i++) {
        if (sv->reactor_clock_ok[i]) {
            sum += bench_cpu_ns(sv->reactor_clock[i]);
        }
    }
    return sum;
}

static uint64_t clients_cpu_ns(const struct client *cl, unsigned n)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        if (cl[i].cpu_clock_ok) {
            sum += bench_cpu_ns(cl[i].cpu_clock);
        }
    }
    return sum;
}

/* CPU of an external process: its CPU clock, else /proc/<pid>/stat (clock ticks). */
static uint64_t target_cpu_ns(const struct target *t)
{
    if (t->clock_ok) {
        return bench_cpu_ns(t->clock);
    }
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)t->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    char *p = strrchr(line, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2) {
        return 0;
    }
    return (ut + st) * (1000000000ull / (unsigned long long)sysconf(_SC_CLK_TCK));
}

static uint64_t pid_cpu_ns(pid_t pid)
{
    struct target t = {.pid = pid};
    return pid > 0 ? target_cpu_ns(&t) : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static bool wait_server_idle(const struct tserver *sv, double timeout_s)
{
    uint64_t limit = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    tern_stats st;
    for (;;) {
        memset(&st, 0, sizeof(st));
        if (tern_runtime_stats(sv->rt, &st) == 0 && st.connections_open == 0) {
            return true;
        }
        if (bench_now_ns() > limit) {
            fprintf(stderr,
                    "bench_tls: warning: server still reports %llu connection(s) open %.1f s "
                    "after the run\n",
                    (unsigned long long)st.connections_open, timeout_s);
            return false;
        }
        bench_sleep_ns(1000000);
    }
}

static void client_free(struct client *c)
{
    if (c->conns != NULL) {
        for (unsigned i = 0; i < c->nconns; i++) {
            conn_reset(&c->conns[i]);
        }
    }
    if (c->ep >= 0) {
        close(c->ep);
    }
    free(c->conns);
    free(c->lat_us);
    free(c->buf);
    c->conns = NULL;
    c->lat_us = NULL;
    c->buf = NULL;
    c->ep = -1;
}

/* Allocates @p c for @p n connections. 0, or -1 when out of memory / no epoll. */
static int client_init(struct client *c, struct run_params *rp, unsigned n, bool latency)
{
    memset(c, 0, sizeof(*c));
    c->rp = rp;
    c->nconns = n;
    c->conns = calloc(n ? n : 1, sizeof(*c->conns));
    c->ep = epoll_create1(EPOLL_CLOEXEC);
    c->buf = malloc(READ_BUF);
    if (latency) {
        c->lat_us = malloc(MAX_LAT_SAMPLES * sizeof(*c->lat_us)); /* NULL: no latency */
    }
    if (c->conns == NULL || c->ep < 0 || c->buf == NULL) {
        client_free(c);
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        c->conns[i].fd = -1;
        c->conns[i].state = C_IDLE;
    }
    return 0;
}

static int run_once(const struct opts *o, WOLFSSL_CTX *ctx, const struct target *t,
                    enum phase phase, size_t request, struct run_result *res)
{
    unsigned total = phase == PHASE_HS ? o->connections : o->streams;
    unsigned nthreads = o->client_threads < total ? o->client_threads : total;
    struct client *cl = calloc(nthreads, sizeof(*cl));
    struct run_params *rp = calloc(1, sizeof(*rp));
    int status = 0;

    memset(res, 0, sizeof(*res));
    if (cl == NULL || rp == NULL) {
        free(cl);
        free(rp);
        fprintf(stderr, "bench_tls: out of memory\n");
        return -1;
    }
    rp->phase = phase;
    rp->o = o;
    rp->ctx = ctx;
    rp->request = request;
    rp->restart = true;
    rp->addr.sin_family = AF_INET;
    rp->addr.sin_port = htons(t->port);
    rp->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pthread_barrier_init(&rp->barrier, NULL, nthreads + 1);

    for (unsigned i = 0; i < nthreads; i++) {
        struct client *c = &cl[i];
        unsigned n = total / nthreads + (i < total % nthreads ? 1 : 0);
        if (client_init(c, rp, n, phase == PHASE_HS) != 0) {
            fprintf(stderr, "bench_tls: client setup failed (memory or epoll)\n");
            exit(2); /* the barrier counts every thread: cannot unwind cleanly */
        }
        if (pthread_create(&c->thread, NULL, client_main, c) != 0) {
            fprintf(stderr, "bench_tls: pthread_create failed\n");
            exit(2);
        }
        c->cpu_clock_ok = pthread_getcpuclockid(c->thread, &c->cpu_clock) == 0;
    }

    tern_stats before, after;
    memset(&before, 0, sizeof(before));
    memset(&after, 0, sizeof(after));
    if (t->sv != NULL) {
        (void)tern_runtime_stats(t->sv->rt, &before);
    }

    pthread_barrier_wait(&rp->barrier); /* 1: clients set up */
    int setup_error = 0;
    const char *setup_what = "";
    int setup_hs_error = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        if (cl[i].setup_error != 0) {
            setup_error = cl[i].setup_error;
            setup_what = cl[i].setup_what != NULL ? cl[i].setup_what : "";
            setup_hs_error = cl[i].last_hs_error;
        }
    }
    uint64_t t0 = bench_now_ns();
    if (setup_error == 0) {
        rp->t_begin = t0 + (uint64_t)(o->warmup * 1e9);
        rp->t_end = rp->t_begin + (uint64_t)(o->duration * 1e9);
        rp->t_hard_end = rp->t_end + (uint64_t)(o->grace * 1e9);
    }
    pthread_barrier_wait(&rp->barrier); /* 2: go */

    uint64_t w0 = 0, w1 = 0, p0 = 0, p1 = 0, c0 = 0, c1 = 0, r0 = 0, r1 = 0, s0 = 0, s1 = 0;
    uint64_t b0 = 0, b1 = 0;
    if (setup_error == 0) {
        uint64_t now = bench_now_ns();
        if (rp->t_begin > now) {
            bench_sleep_ns(rp->t_begin - now);
        }
        w0 = bench_now_ns();
        p0 = bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        c0 = clients_cpu_ns(cl, nthreads);
        r0 = t->sv != NULL ? reactors_cpu_ns(t->sv) : 0;
        s0 = t->sv != NULL ? 0 : target_cpu_ns(t);
        b0 = pid_cpu_ns(t->backend_pid);
        now = bench_now_ns();
        if (rp->t_end > now) {
            bench_sleep_ns(rp->t_end - now);
        }
        w1 = bench_now_ns();
        p1 = bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        c1 = clients_cpu_ns(cl, nthreads);
        r1 = t->sv != NULL ? reactors_cpu_ns(t->sv) : 0;
        s1 = t->sv != NULL ? 0 : target_cpu_ns(t);
        b1 = pid_cpu_ns(t->backend_pid);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_join(cl[i].thread, NULL);
    }
    pthread_barrier_destroy(&rp->barrier);
    for (unsigned i = 0; i < nthreads; i++) {
        for (unsigned k = 0; k < cl[i].nconns; k++) {
            conn_reset(&cl[i].conns[k]); /* whatever a failed setup left open */
        }
    }
    if (t->sv != NULL) {
        wait_server_idle(t->sv, 5.0);
        (void)tern_runtime_stats(t->sv->rt, &after);
    }

    if (setup_error != 0) {
        fprintf(stderr, "bench_tls: %s: client setup failed: %s: %s", t->name, setup_what,
                strerror(setup_error));
        if (setup_hs_error != 0) {
            char text[80];
            wolfSSL_ERR_error_string_n((unsigned long)-setup_hs_error, text, sizeof(text));
            fprintf(stderr, " (wolfSSL %d: %s)", setup_hs_error, text);
        }
        fprintf(stderr, "\n");
        status = -1;
    } else {
        size_t nlat = 0;
        for (unsigned i = 0; i < nthreads; i++) {
            struct client *c = &cl[i];
            res->events += phase == PHASE_HS ? c->completed : c->bytes;
            res->completed_all += c->completed_all;
            res->handshakes_client += c->handshakes_all;
            res->connect_errors += c->connect_errors;
            res->hs_errors += c->hs_errors;
            res->io_errors += c->io_errors;
            res->mismatches += c->mismatches;
            res->unfinished += c->unfinished;
            res->lost += c->lost;
            res->drain_resets += c->drain_resets;
            if (c->last_hs_error != 0) {
                res->last_hs_error = c->last_hs_error;
            }
            if (res->neg_version[0] == '\0' && c->neg_version[0] != '\0') {
                memcpy(res->neg_version, c->neg_version, sizeof(res->neg_version));
                memcpy(res->neg_cipher, c->neg_cipher, sizeof(res->neg_cipher));
                memcpy(res->neg_group, c->neg_group, sizeof(res->neg_group));
            }
            nlat += c->nlat;
        }
        double wall = (double)(w1 - w0) / 1e9;
        double client_s = (double)(c1 - c0) / 1e9;
        double server_s = t->sv != NULL ? (double)((p1 - p0) - (c1 - c0)) / 1e9
                                        : (double)(s1 - s0) / 1e9;
        res->wall_s = wall;
        res->proc_cpu = (double)(p1 - p0) / 1e9 / wall;
        res->client_cpu = client_s / wall;
        res->server_cpu = server_s / wall;
        res->reactor_cpu = (double)(r1 - r0) / 1e9 / wall;
        res->backend_cpu = (double)(b1 - b0) / 1e9 / wall;
        double units = phase == PHASE_HS ? (double)res->events : (double)res->events / 1e6;
        res->rate = units / wall;
        res->per_cpu = server_s > 0 ? units / server_s : 0;
        if (phase == PHASE_HS && res->events > 0) {
            res->server_us = server_s * 1e6 / (double)res->events;
            res->client_us = client_s * 1e6 / (double)res->events;
        }
        if (nlat > 0) {
            uint32_t *all = malloc(nlat * sizeof(*all));
            if (all != NULL) {
                size_t k = 0;
                for (unsigned i = 0; i < nthreads; i++) {
                    memcpy(all + k, cl[i].lat_us, cl[i].nlat * sizeof(*all));
                    k += cl[i].nlat;
                }
                qsort(all, nlat, sizeof(*all), cmp_u32);
                res->p50_ms = all[nlat / 2] / 1000.0;
                res->p99_ms = all[(size_t)((double)(nlat - 1) * 0.99)] / 1000.0;
                free(all);
            }
        }
        res->delta.connections_accepted = after.connections_accepted - before.connections_accepted;
        res->delta.connections_closed = after.connections_closed - before.connections_closed;
        res->delta.bytes_in = after.bytes_in - before.bytes_in;
        res->delta.bytes_out = after.bytes_out - before.bytes_out;
        res->delta.resets = after.resets - before.resets;
        res->delta.handshakes = after.handshakes - before.handshakes;
        res->delta.handshake_failures = after.handshake_failures - before.handshake_failures;
        res->delta.connections_open = after.connections_open;
        if (res->mismatches != 0 || res->lost != 0) {
            fprintf(stderr,
                    "bench_tls: %s: echo check failed: %llu mismatching reads, %llu bytes never "
                    "echoed\n",
                    t->name, (unsigned long long)res->mismatches, (unsigned long long)res->lost);
        }
    }

    for (unsigned i = 0; i < nthreads; i++) {
        client_free(&cl[i]);
    }
    free(cl);
    free(rp);
    return status;
}

/* ---- report: handshake and bulk ------------------------------------------------------------- */

#define SUMMARY(field)                                                                             \
    do {                                                                                           \
        for (unsigned i_ = 0; i_ < n; i_++) {                                                      \
            v[i_] = res[i_].field;                                                                 \
        }                                                                                          \
        bench_summary(v, n, &med.field, &lo.field, &hi.field);                                     \
    } while (0)

static void report(const struct opts *o, const struct target *t, enum phase phase, size_t request,
                   const struct run_result *res, unsigned n)
{
    double v[MAX_RUNS] = {0};
    struct run_result med, lo, hi;
    memset(&med, 0, sizeof(med));
    memset(&lo, 0, sizeof(lo));
    memset(&hi, 0, sizeof(hi));
    SUMMARY(rate);
    SUMMARY(proc_cpu);
    SUMMARY(client_cpu);
    SUMMARY(server_cpu);
    SUMMARY(reactor_cpu);
    SUMMARY(per_cpu);
    SUMMARY(server_us);
    SUMMARY(client_us);
    SUMMARY(p50_ms);
    SUMMARY(p99_ms);
    SUMMARY(backend_cpu);
    uint64_t cerr = 0, hserr = 0, ioerr = 0, mism = 0, unf = 0, lost = 0, resets = 0, hsfail = 0,
             drst = 0, accepted = 0, shs = 0, chs = 0, bin = 0, bout = 0;
    int last_hs_error = 0;
    const char *ver = "?", *cipher = "?", *group = "?";
    for (unsigned i = 0; i < n; i++) {
        cerr += res[i].connect_errors;
        hserr += res[i].hs_errors;
        ioerr += res[i].io_errors;
        mism += res[i].mismatches;
        unf += res[i].unfinished;
        lost += res[i].lost;
        drst += res[i].drain_resets;
        resets += res[i].delta.resets;
        hsfail += res[i].delta.handshake_failures;
        accepted += res[i].delta.connections_accepted;
        shs += res[i].delta.handshakes;
        chs += res[i].handshakes_client;
        bin += res[i].delta.bytes_in;
        bout += res[i].delta.bytes_out;
        if (res[i].last_hs_error != 0) {
            last_hs_error = res[i].last_hs_error;
        }
        if (res[i].neg_version[0] != '\0') {
            ver = res[i].neg_version;
            cipher = res[i].neg_cipher;
            group = res[i].neg_group;
        }
    }
    bool tern = t->sv != NULL;
    const char *unit = phase == PHASE_HS ? "conn/s" : "MB/s";
    const char *per = phase == PHASE_HS ? "conn" : "MB";

    if (o->json) {
        printf("{\"bench\":\"tls\",\"phase\":\"%s\",\"server\":\"%s\",",
               o->label != NULL ? "psk" : phase == PHASE_HS ? "handshake" : "bulk", t->name);
        if (o->label != NULL) {
            printf("\"psk_suite\":\"%s\",", o->label);
        } else {
            printf("\"tls\":\"1.%d\",", o->tls % 10);
        }
        printf("\"negotiated\":{\"version\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\"},"
               "\"server_threads\":%u,\"client_threads\":%u,",
               ver, cipher, group, tern ? o->server_threads : 1, o->client_threads);
        if (phase == PHASE_HS) {
            printf("\"connections\":%u,\"request_bytes\":%zu,", o->connections, request);
        } else {
            printf("\"streams\":%u,\"write_bytes\":%zu,\"window_bytes\":%zu,", o->streams,
                   o->chunk, o->window);
        }
        printf("\"duration_s\":%.3f,\"warmup_s\":%.3f,\"runs\":%u,\"unit\":\"%s\","
               "\"median\":%.3f,\"min\":%.3f,\"max\":%.3f,"
               "\"server_cpu_per_wall_median\":%.3f,",
               o->duration, o->warmup, n, unit, med.rate, lo.rate, hi.rate, med.server_cpu);
        if (tern) {
            printf("\"reactor_cpu_per_wall_median\":%.3f,", med.reactor_cpu);
        }
        if (t->backend_pid > 0) {
            printf("\"backend_cpu_per_wall_median\":%.3f,", med.backend_cpu);
        }
        printf("\"client_cpu_per_wall_median\":%.3f,\"process_cpu_per_wall_median\":%.3f,"
               "\"per_server_cpu_s_median\":%.3f,",
               med.client_cpu, med.proc_cpu, med.per_cpu);
        if (phase == PHASE_HS) {
            printf("\"server_cpu_us_per_conn_median\":%.2f,\"client_cpu_us_per_conn_median\":%.2f,"
                   "\"latency_p50_ms_median\":%.3f,\"latency_p99_ms_median\":%.3f,",
                   med.server_us, med.client_us, med.p50_ms, med.p99_ms);
        }
        printf("\"connect_errors\":%llu,\"handshake_errors\":%llu,\"io_errors\":%llu,"
               "\"mismatches\":%llu,\"unfinished\":%llu,\"lost_bytes\":%llu,"
               "\"drain_resets\":%llu,\"client_handshakes\":%llu",
               (unsigned long long)cerr, (unsigned long long)hserr, (unsigned long long)ioerr,
               (unsigned long long)mism, (unsigned long long)unf, (unsigned long long)lost,
               (unsigned long long)drst, (unsigned long long)chs);
        if (tern) {
            printf(",\"server_accepted\":%llu,\"server_handshakes\":%llu,"
                   "\"server_handshake_failures\":%llu,\"server_resets\":%llu,"
                   "\"server_bytes_in\":%llu,\"server_bytes_out\":%llu",
                   (unsigned long long)accepted, (unsigned long long)shs,
                   (unsigned long long)hsfail, (unsigned long long)resets,
                   (unsigned long long)bin, (unsigned long long)bout);
        }
        printf(",\"runs_detail\":[");
        for (unsigned i = 0; i < n; i++) {
            const struct run_result *r = &res[i];
            printf("%s{\"rate\":%.3f,\"wall_s\":%.4f,\"process_cpu\":%.3f,\"client_cpu\":%.3f,"
                   "\"server_cpu\":%.3f,\"reactor_cpu\":%.3f,\"per_server_cpu_s\":%.3f",
                   i ? "," : "", r->rate, r->wall_s, r->proc_cpu, r->client_cpu, r->server_cpu,
                   r->reactor_cpu, r->per_cpu);
            if (phase == PHASE_HS) {
                printf(",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"completed_all\":%llu", r->p50_ms,
                       r->p99_ms, (unsigned long long)r->completed_all);
            }
            printf("}");
        }
        printf("]}\n");
    } else {
        if (phase == PHASE_HS) {
            if (o->label != NULL) {
                printf("tls psk %s ", o->label);
            } else {
                printf("tls handshake ");
            }
            printf("[%s] %s %s %s T=%u C=%u req=%zuB D=%.1fs runs=%u: median %.0f "
                   "%s (min %.0f, max %.0f); latency p50 %.2f ms p99 %.2f ms",
                   t->name, ver, cipher, group, tern ? o->server_threads : 1, o->connections,
                   request, o->duration, n, med.rate, unit, lo.rate, hi.rate, med.p50_ms,
                   med.p99_ms);
        } else {
            printf("tls bulk [%s] %s %s T=%u K=%u write=%zuB D=%.1fs runs=%u: median %.1f %s (min "
                   "%.1f, max %.1f) echoed",
                   t->name, ver, cipher, o->server_threads, o->streams, o->chunk, o->duration, n,
                   med.rate, unit, lo.rate, hi.rate);
        }
        printf("; cpu s/s: server %.2f", med.server_cpu);
        if (tern) {
            printf(" (reactors %.2f)", med.reactor_cpu);
        }
        if (t->backend_pid > 0) {
            printf(" (+ its echo backend %.2f, not counted)", med.backend_cpu);
        }
        printf(" client %.2f process %.2f; %.0f %s per server CPU-s", med.client_cpu, med.proc_cpu,
               med.per_cpu, per);
        if (phase == PHASE_HS) {
            printf(" (server %.1f us, client %.1f us CPU per conn)", med.server_us, med.client_us);
        }
        if (cerr + hserr + ioerr + mism + unf + lost + resets + hsfail != 0) {
            printf("; errors: connect %llu handshake %llu io %llu mismatch %llu unfinished %llu "
                   "lost %llu server_resets %llu server_handshake_failures %llu",
                   (unsigned long long)cerr, (unsigned long long)hserr, (unsigned long long)ioerr,
                   (unsigned long long)mism, (unsigned long long)unf, (unsigned long long)lost,
                   (unsigned long long)resets, (unsigned long long)hsfail);
            if (last_hs_error != 0) {
                char text[80];
                wolfSSL_ERR_error_string_n((unsigned long)-last_hs_error, text, sizeof(text));
                printf(" (last client handshake error %d: %s)", last_hs_error, text);
            }
        }
        if (drst != 0) {
            printf("; %llu closes ended by a reset", (unsigned long long)drst);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* ---- idle memory: the server in a child process -------------------------------------------- */

struct child {
    pid_t pid;
    FILE *to;   /* its stdin */
    FILE *from; /* its stdout */
    uint16_t port;
};

/* Reads one line from the child within @p timeout_ms. */
static bool child_line(struct child *ch, char *buf, size_t len, int timeout_ms)
{
    struct pollfd p = {.fd = fileno(ch->from), .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0) {
        return false;
    }
    return fgets(buf, (int)len, ch->from) != NULL;
}

static void child_reap(struct child *ch)
{
    if (ch->to != NULL) {
        fputs("quit\n", ch->to);
        fclose(ch->to); /* EOF also means quit */
        ch->to = NULL;
    }
    if (ch->from != NULL) {
        fclose(ch->from);
        ch->from = NULL;
    }
    if (ch->pid > 0) {
        uint64_t limit = bench_now_ns() + 5000000000ull;
        int st;
        while (waitpid(ch->pid, &st, WNOHANG) == 0) {
            if (bench_now_ns() > limit) {
                fprintf(stderr, "bench_tls: server child %d did not exit; SIGKILL\n",
                        (int)ch->pid);
                kill(ch->pid, SIGKILL);
                waitpid(ch->pid, &st, 0);
                break;
            }
            bench_sleep_ns(5000000);
        }
        ch->pid = -1;
    }
}

/* Starts this program as the idle phase's server: fork + exec of /proc/self/exe, a fresh
 * process image (no heap inherited from this one). It prints "port N". */
static int child_spawn(const struct opts *o, struct child *ch)
{
    int to[2], from[2];
    memset(ch, 0, sizeof(*ch));
    ch->pid = -1;
    if (pipe2(to, O_CLOEXEC) != 0) {
        return -1;
    }
    if (pipe2(from, O_CLOEXEC) != 0) {
        close(to[0]);
        close(to[1]);
        return -1;
    }
    char threads[16];
    snprintf(threads, sizeof(threads), "%u", o->server_threads);
    char *argv[8];
    int k = 0;
    argv[k++] = "bench_tls";
    argv[k++] = "--serve-child";
    argv[k++] = "--server-threads";
    argv[k++] = threads;
    if (o->server_verify_auto) {
        argv[k++] = "--server-verify";
        argv[k++] = "auto";
    }
    if (o->reuseport) {
        argv[k++] = "--reuseport";
    }
    argv[k] = NULL;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        return -1;
    }
    if (pid == 0) {
        /* only async-signal-safe calls until exec */
        if (dup2(to[0], 0) < 0 || dup2(from[1], 1) < 0) {
            _exit(127);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    ch->pid = pid;
    ch->to = fdopen(to[1], "w");
    ch->from = fdopen(from[0], "r");
    if (ch->to == NULL || ch->from == NULL) {
        child_reap(ch);
        return -1;
    }
    setvbuf(ch->to, NULL, _IOLBF, 0);
    char line[128];
    unsigned port = 0;
    if (!child_line(ch, line, sizeof(line), 10000) || sscanf(line, "port %u", &port) != 1 ||
        port == 0 || port > 65535) {
        fprintf(stderr, "bench_tls: the server child did not start (%s)\n",
                line[0] != '\0' ? "bad first line" : "no answer in 10 s");
        child_reap(ch);
        return -1;
    }
    ch->port = (uint16_t)port;
    return 0;
}

struct child_stats {
    unsigned long long open, accepted, handshakes, failures, resets;
    unsigned long long heap; /* bytes in use in the child's malloc (mallinfo2) */
};

static int child_stats(struct child *ch, struct child_stats *st)
{
    char line[256];
    memset(st, 0, sizeof(*st));
    line[0] = '\0';
    if (fputs("stats\n", ch->to) < 0 || fflush(ch->to) != 0 ||
        !child_line(ch, line, sizeof(line), 5000) ||
        sscanf(line, "open %llu accepted %llu handshakes %llu failures %llu resets %llu heap %llu",
               &st->open, &st->accepted, &st->handshakes, &st->failures, &st->resets,
               &st->heap) != 6) {
        return -1;
    }
    return 0;
}

/* Waits until the child reports @p open connections open (or fewer when @p at_most). */
static bool child_wait_open(struct child *ch, unsigned long long open, double timeout_s)
{
    uint64_t limit = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    struct child_stats st;
    for (;;) {
        if (child_stats(ch, &st) == 0 && st.open == open) {
            return true;
        }
        if (bench_now_ns() > limit) {
            return false;
        }
        bench_sleep_ns(10000000);
    }
}

/* A field of /proc/<pid>/status in KiB ("VmRSS:", "RssAnon:"), or -1. */
static long proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    long v = -1;
    size_t flen = strlen(field);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, flen) == 0) {
            v = strtol(line + flen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* The idle phase's client: drives @p n slots of @p cl to C_ESTABLISHED (keep_open) or
 * C_CLOSED, @p inflight at a time. 0, or -1 on the deadline or too many failures. */
static int idle_drive(struct client *cl, unsigned n, unsigned inflight, uint64_t deadline)
{
    struct epoll_event evs[256];
    unsigned next = 0;
    for (;;) {
        uint64_t now = bench_now_ns();
        unsigned busy = 0, done = 0;
        for (unsigned i = 0; i < n; i++) {
            struct conn *c = &cl->conns[i];
            if (c->state == C_ESTABLISHED || c->state == C_CLOSED) {
                done++;
            } else if (hs_busy(c)) {
                busy++;
            } else if (i < next && c->state == C_IDLE && now >= c->retry_at &&
                       busy < inflight) {
                hs_start(cl, c, now); /* a retry after a failure */
                busy++;
            }
        }
        while (next < n && busy < inflight) {
            hs_start(cl, &cl->conns[next++], now);
            busy++;
        }
        if (done == n) {
            return 0;
        }
        uint64_t failures = cl->connect_errors + cl->hs_errors + cl->io_errors + cl->mismatches;
        if (now > deadline || failures > (uint64_t)n + 100) {
            return -1;
        }
        int k = epoll_wait(cl->ep, evs, 256, 2);
        now = bench_now_ns();
        for (int i = 0; i < k; i++) {
            struct conn *c = ev_conn(cl, evs[i].data.u64);
            if (c != NULL) {
                hs_event(cl, c, evs[i].events, now, true);
            }
        }
    }
}

/* Closes every established connection of @p cl as the handshake phase does (close_notify,
 * FIN, read until the server's FIN); what is still open at @p deadline is closed. */
static void idle_close_all(struct client *cl, uint64_t deadline)
{
    struct epoll_event evs[256];
    uint64_t now = bench_now_ns();
    for (unsigned i = 0; i < cl->nconns; i++) {
        struct conn *c = &cl->conns[i];
        if (c->state == C_ESTABLISHED) {
            hs_begin_close(cl, c, now);
        }
    }
    for (;;) {
        unsigned busy = 0;
        for (unsigned i = 0; i < cl->nconns; i++) {
            busy += hs_busy(&cl->conns[i]);
        }
        if (busy == 0 || bench_now_ns() > deadline) {
            break;
        }
        int k = epoll_wait(cl->ep, evs, 256, 2);
        now = bench_now_ns();
        for (int i = 0; i < k; i++) {
            struct conn *c = ev_conn(cl, evs[i].data.u64);
            if (c != NULL) {
                hs_event(cl, c, evs[i].events, now, true);
            }
        }
    }
    for (unsigned i = 0; i < cl->nconns; i++) {
        conn_reset(&cl->conns[i]);
        cl->conns[i].state = C_CLOSED;
    }
}

struct idle_result {
    double kib_per_conn;      /* VmRSS growth / N */
    double anon_kib_per_conn; /* RssAnon growth / N */
    long rss_start, rss_base, rss_open, rss_closed; /* KiB */
    long anon_base, anon_open;
    unsigned long long heap_base, heap_open, heap_closed; /* bytes malloc handed out */
    double heap_kib_per_conn;
    unsigned long long open_seen, handshakes, failures, resets;
    double open_s; /* time to open the N connections */
    uint64_t client_errors;
    char neg_version[16], neg_cipher[64], neg_group[32];
};

static int run_idle_once(const struct opts *o, WOLFSSL_CTX *ctx, unsigned n,
                         struct idle_result *res)
{
    struct child ch;
    struct run_params rp;
    struct client cl, warm;
    struct child_stats st;
    int status = 0;

    memset(res, 0, sizeof(*res));
    if (child_spawn(o, &ch) != 0) {
        fprintf(stderr, "bench_tls: idle: cannot start the server process\n");
        return -1;
    }
    memset(&rp, 0, sizeof(rp));
    rp.phase = PHASE_HS;
    rp.o = o;
    rp.ctx = ctx;
    rp.request = 16;
    rp.restart = false;
    rp.t_begin = 0;
    rp.t_end = UINT64_MAX;
    rp.addr.sin_family = AF_INET;
    rp.addr.sin_port = htons(ch.port);
    rp.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client_init(&cl, &rp, n, false) != 0) {
        fprintf(stderr, "bench_tls: idle: out of memory\n");
        child_reap(&ch);
        return -1;
    }
    if (client_init(&warm, &rp, IDLE_WARMUP, false) != 0) {
        fprintf(stderr, "bench_tls: idle: out of memory\n");
        client_free(&cl);
        child_reap(&ch);
        return -1;
    }
    res->rss_start = proc_status_kib(ch.pid, "VmRSS:");

    /* warm-up: one-off allocations, then back to 0 connections */
    rp.keep_open = false;
    if (idle_drive(&warm, IDLE_WARMUP, IDLE_WARMUP_INFLIGHT, bench_now_ns() + 20000000000ull) !=
            0 ||
        !child_wait_open(&ch, 0, 5.0)) {
        fprintf(stderr, "bench_tls: idle: warm-up failed\n");
        status = -1;
        goto out;
    }
    bench_sleep_ns((uint64_t)(o->settle * 1e9));
    if (child_stats(&ch, &st) != 0) {
        fprintf(stderr, "bench_tls: idle: the server child does not answer\n");
        status = -1;
        goto out;
    }
    res->heap_base = st.heap;
    res->rss_base = proc_status_kib(ch.pid, "VmRSS:");
    res->anon_base = proc_status_kib(ch.pid, "RssAnon:");

    /* N connections: handshake, one 16-byte echo, then idle */
    rp.keep_open = true;
    uint64_t t0 = bench_now_ns();
    uint64_t deadline = t0 + 20000000000ull + (uint64_t)n * 10000000ull; /* 20 s + 10 ms each */
    if (idle_drive(&cl, n, IDLE_INFLIGHT, deadline) != 0) {
        fprintf(stderr,
                "bench_tls: idle: could not open %u connections (connect errors %llu, handshake "
                "errors %llu, io errors %llu)\n",
                n, (unsigned long long)cl.connect_errors, (unsigned long long)cl.hs_errors,
                (unsigned long long)cl.io_errors);
        status = -1;
        goto out;
    }
    res->open_s = (double)(bench_now_ns() - t0) / 1e9;
    bench_sleep_ns((uint64_t)(o->settle * 1e9));
    if (child_stats(&ch, &st) != 0) {
        fprintf(stderr, "bench_tls: idle: the server child does not answer\n");
        status = -1;
        goto out;
    }
    res->open_seen = st.open;
    res->rss_open = proc_status_kib(ch.pid, "VmRSS:");
    res->anon_open = proc_status_kib(ch.pid, "RssAnon:");
    res->kib_per_conn = (double)(res->rss_open - res->rss_base) / (double)n;
    res->anon_kib_per_conn = (double)(res->anon_open - res->anon_base) / (double)n;
    res->heap_open = st.heap;
    res->heap_kib_per_conn = ((double)st.heap - (double)res->heap_base) / 1024.0 / (double)n;
    memcpy(res->neg_version, cl.neg_version, sizeof(res->neg_version));
    memcpy(res->neg_cipher, cl.neg_cipher, sizeof(res->neg_cipher));
    memcpy(res->neg_group, cl.neg_group, sizeof(res->neg_group));
    if (st.open != n) {
        fprintf(stderr, "bench_tls: idle: warning: the server reports %llu open, expected %u\n",
                st.open, n);
    }

    /* close them; what the server keeps afterwards is informative only */
    idle_close_all(&cl, bench_now_ns() + 10000000000ull);
    if (!child_wait_open(&ch, 0, 10.0)) {
        fprintf(stderr, "bench_tls: idle: warning: connections still open on the server after "
                        "the close\n");
    }
    bench_sleep_ns((uint64_t)(o->settle * 1e9));
    res->rss_closed = proc_status_kib(ch.pid, "VmRSS:");
    if (child_stats(&ch, &st) == 0) {
        res->heap_closed = st.heap;
        res->handshakes = st.handshakes;
        res->failures = st.failures;
        res->resets = st.resets;
    }
out:
    res->client_errors = cl.connect_errors + cl.hs_errors + cl.io_errors + cl.mismatches +
                         warm.connect_errors + warm.hs_errors + warm.io_errors + warm.mismatches;
    client_free(&cl);
    client_free(&warm);
    child_reap(&ch);
    return status;
}

static void report_idle(const struct opts *o, unsigned n, bool reduced,
                        const struct idle_result *res, unsigned runs)
{
    double v[MAX_RUNS] = {0}, med, lo, hi, amed, alo, ahi, hmed, hlo, hhi;
    for (unsigned i = 0; i < runs; i++) {
        v[i] = res[i].kib_per_conn;
    }
    bench_summary(v, runs, &med, &lo, &hi);
    for (unsigned i = 0; i < runs; i++) {
        v[i] = res[i].anon_kib_per_conn;
    }
    bench_summary(v, runs, &amed, &alo, &ahi);
    for (unsigned i = 0; i < runs; i++) {
        v[i] = res[i].heap_kib_per_conn;
    }
    bench_summary(v, runs, &hmed, &hlo, &hhi);
    const struct idle_result *r0 = &res[0];
    unsigned long long errs = 0, resets = 0, failures = 0;
    for (unsigned i = 0; i < runs; i++) {
        errs += res[i].client_errors;
        resets += res[i].resets;
        failures += res[i].failures;
    }
    if (o->json) {
        printf("{\"bench\":\"tls\",\"phase\":\"idle\",\"server\":\"tern\",\"tls\":\"1.%d\","
               "\"negotiated\":{\"version\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\"},"
               "\"server_threads\":%u,\"connections\":%u,\"reduced_by_rlimit\":%s,"
               "\"settle_s\":%.3f,\"runs\":%u,\"unit\":\"KiB/conn\",\"median\":%.3f,"
               "\"min\":%.3f,\"max\":%.3f,\"rss_anon_kib_per_conn_median\":%.3f,"
               "\"malloc_in_use_kib_per_conn_median\":%.3f,"
               "\"client_errors\":%llu,\"server_resets\":%llu,"
               "\"server_handshake_failures\":%llu,\"runs_detail\":[",
               o->tls % 10, r0->neg_version, r0->neg_cipher, r0->neg_group, o->server_threads, n,
               reduced ? "true" : "false", o->settle, runs, med, lo, hi, amed, hmed, errs, resets,
               failures);
        for (unsigned i = 0; i < runs; i++) {
            const struct idle_result *r = &res[i];
            printf("%s{\"kib_per_conn\":%.3f,\"anon_kib_per_conn\":%.3f,\"vmrss_start_kib\":%ld,"
                   "\"vmrss_base_kib\":%ld,\"vmrss_open_kib\":%ld,\"vmrss_closed_kib\":%ld,"
                   "\"server_open\":%llu,\"open_s\":%.3f,\"malloc_in_use_base\":%llu,"
                   "\"malloc_in_use_open\":%llu,\"malloc_in_use_closed\":%llu}",
                   i ? "," : "", r->kib_per_conn, r->anon_kib_per_conn, r->rss_start, r->rss_base,
                   r->rss_open, r->rss_closed, r->open_seen, r->open_s, r->heap_base,
                   r->heap_open, r->heap_closed);
        }
        printf("]}\n");
    } else {
        printf("tls idle [tern] %s %s %s T=%u N=%u%s runs=%u: median %.2f KiB VmRSS per idle "
               "connection (min %.2f, max %.2f; RssAnon %.2f; malloc in use %.2f); server VmRSS "
               "%.1f MiB -> %.1f MiB "
               "with %llu open -> %.1f MiB after closing (start %.1f MiB; malloc in use %.1f -> "
               "%.1f -> %.1f MiB); opened in %.2f s",
               r0->neg_version, r0->neg_cipher, r0->neg_group, o->server_threads, n,
               reduced ? " (reduced: RLIMIT_NOFILE)" : "", runs, med, lo, hi, amed, hmed,
               r0->rss_base / 1024.0, r0->rss_open / 1024.0, r0->open_seen,
               r0->rss_closed / 1024.0, r0->rss_start / 1024.0, r0->heap_base / 1048576.0,
               r0->heap_open / 1048576.0, r0->heap_closed / 1048576.0, r0->open_s);
        if (errs + resets + failures != 0) {
            printf("; errors: client %llu server_resets %llu server_handshake_failures %llu",
                   errs, resets, failures);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* The idle phase's server process: prints "port N", then answers "stats" until "quit"/EOF. */
static int serve_child(const struct opts *o)
{
    struct cert_set cs;
    static struct tserver sv;
    char err[256];

    if (make_cert(&cs, err, sizeof(err)) != 0 || server_start(&sv, o, &cs, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls (server child): %s\n", err);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("port %u\n", (unsigned)sv.port);
    char line[64];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strncmp(line, "stats", 5) == 0) {
            tern_stats st;
            memset(&st, 0, sizeof(st));
            (void)tern_runtime_stats(sv.rt, &st);
            struct mallinfo2 mi = mallinfo2(); /* every arena: bytes handed out by malloc */
            printf("open %llu accepted %llu handshakes %llu failures %llu resets %llu heap %zu\n",
                   (unsigned long long)st.connections_open,
                   (unsigned long long)st.connections_accepted,
                   (unsigned long long)st.handshakes, (unsigned long long)st.handshake_failures,
                   (unsigned long long)st.resets, mi.uordblks + mi.hblkhd);
        } else if (strncmp(line, "quit", 4) == 0) {
            break;
        }
    }
    server_free(&sv);
    return 0;
}

/* ---- openssl s_server as a peer -------------------------------------------------------------- */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

static bool port_open(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Starts `openssl s_server -www` on 127.0.0.1; its output goes to /dev/null. */
static pid_t openssl_spawn(uint16_t port, const char *cert, const char *key)
{
    char accept[32];
    snprintf(accept, sizeof(accept), "127.0.0.1:%u", (unsigned)port);
    char *argv[] = {"openssl", "s_server", "-accept", accept, "-cert", (char *)cert,
                    "-key",    (char *)key, "-www",   "-quiet", NULL};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0) {
            _exit(127);
        }
        execvp("openssl", argv);
        _exit(127);
    }
    close(devnull);
    if (pid < 0) {
        return -1;
    }
    uint64_t limit = bench_now_ns() + 5000000000ull;
    while (!port_open(port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return -1; /* exited: not installed, or refused its arguments */
        }
        if (bench_now_ns() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        bench_sleep_ns(20000000);
    }
    return pid;
}

static void openssl_stop(pid_t pid)
{
    int st;
    if (pid <= 0) {
        return;
    }
    kill(pid, SIGTERM);
    uint64_t limit = bench_now_ns() + 5000000000ull;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (bench_now_ns() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        bench_sleep_ns(5000000);
    }
}

/* ---- PSK mode: client contexts, stunnel as a peer ------------------------------------------ */

/* The four PSK configurations; the client offers exactly one suite (and, for TLS 1.3, one
 * psk_key_exchange_modes value), so the negotiated one is the one named. */
struct psk_suite {
    const char *name;
    int tls;              /* 12 or 13 */
    const char *cipher;   /* wolfSSL name, offered alone */
    const char *ossl;     /* OpenSSL name, for stunnel's ciphers / ciphersuites */
    int tls13_mode;       /* 1: psk_ke only (wolfSSL_no_dhe_psk); 2: psk_dhe_ke only */
};

static const struct psk_suite psk_suites[] = {
    {"tls12-psk", 12, "PSK-AES128-GCM-SHA256", "PSK-AES128-GCM-SHA256", 0},
    /* OpenSSL has no ECDHE-PSK AES-GCM suite: ChaCha20-Poly1305 is common to both peers */
    {"tls12-ecdhe-psk", 12, "ECDHE-PSK-CHACHA20-POLY1305", "ECDHE-PSK-CHACHA20-POLY1305", 0},
    {"tls13-psk_ke", 13, "TLS13-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256", 1},
    {"tls13-psk_dhe_ke", 13, "TLS13-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256", 2},
};
#define NPSK_SUITES (sizeof(psk_suites) / sizeof(psk_suites[0]))

static unsigned int psk_client_cb(WOLFSSL *ssl, const char *hint, char *identity,
                                  unsigned int id_max, unsigned char *key, unsigned int key_max)
{
    (void)ssl;
    (void)hint;
    if (id_max < sizeof(psk_identity) || key_max < sizeof(psk_key)) {
        return 0;
    }
    memcpy(identity, psk_identity, sizeof(psk_identity)); /* NUL included */
    memcpy(key, psk_key, sizeof(psk_key));
    return sizeof(psk_key);
}

static unsigned int psk_client_tls13_cb(WOLFSSL *ssl, const char *hint, char *identity,
                                        unsigned int id_max, unsigned char *key,
                                        unsigned int key_max, const char **suite)
{
    *suite = "TLS13-AES128-GCM-SHA256";
    return psk_client_cb(ssl, hint, identity, id_max, key, key_max);
}

static WOLFSSL_CTX *psk_ctx_new(const struct psk_suite *ps, char *err, size_t errlen)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(ps->tls == 13 ? wolfTLSv1_3_client_method()
                                                     : wolfTLSv1_2_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "wolfSSL_CTX_new failed");
        return NULL;
    }
    int groups[1] = {WOLFSSL_ECC_X25519};
    const char *what = NULL;
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
    if (wolfSSL_CTX_set_cipher_list(ctx, ps->cipher) != WOLFSSL_SUCCESS) {
        what = "cipher list";
    } else if (wolfSSL_CTX_UseSupportedCurve(ctx, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS) {
        what = "supported groups";
    } else if (ps->tls == 13 && wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS) {
        what = "key share group";
    } else if (ps->tls13_mode == 1 && wolfSSL_CTX_no_dhe_psk(ctx) != 0) {
        what = "wolfSSL_CTX_no_dhe_psk";
    } else if (ps->tls13_mode == 2 && wolfSSL_CTX_only_dhe_psk(ctx) != 0) {
        what = "wolfSSL_CTX_only_dhe_psk";
    }
    if (what != NULL) {
        snprintf(err, errlen, "PSK client context %s: %s refused", ps->name, what);
        wolfSSL_CTX_free(ctx);
        return NULL;
    }
    wolfSSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
    if (ps->tls == 13) {
        wolfSSL_CTX_set_psk_client_tls13_callback(ctx, psk_client_tls13_cb);
    }
    (void)wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
    (void)wolfSSL_CTX_NoTicketTLSv12(ctx);
    return ctx;
}

/* A plaintext echo for stunnel to forward to: a child process (forked before any thread
 * starts), epoll, non-blocking; it dies with this process (PR_SET_PDEATHSIG). @return its pid
 * (port in *port), or -1. */
static pid_t echo_backend_spawn(uint16_t *port)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &len) != 0) {
        if (lfd >= 0) {
            close(lfd);
        }
        return -1;
    }
    *port = ntohs(a.sin_port);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid != 0) {
        close(lfd);
        return pid;
    }
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        _exit(1);
    }
    static char buf[65536];
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(ep, evs, 64, 1000);
        if (getppid() == 1) {
            _exit(0);
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
                    if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce) != 0) {
                        close(c);
                    }
                }
                continue;
            }
            /* small requests: a blocking-free echo; whatever cannot be written is dropped and
             * the connection closed (it never happens with 16-byte requests) */
            ssize_t r = recv(fd, buf, sizeof(buf), 0);
            if (r > 0) {
                if (send(fd, buf, (size_t)r, MSG_NOSIGNAL) != r) {
                    close(fd);
                }
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
            }
        }
    }
}

/* Starts `stunnel` (foreground) on 127.0.0.1:@p port with a PSKsecrets file, forwarding to
 * @p backend. @p dir: a temporary directory for its configuration, secrets and log. */
static pid_t stunnel_spawn(const char *dir, uint16_t port, uint16_t backend)
{
    char conf[160], secrets[160], logf[160];
    snprintf(conf, sizeof(conf), "%s/stunnel.conf", dir);
    snprintf(secrets, sizeof(secrets), "%s/psk.txt", dir);
    snprintf(logf, sizeof(logf), "%s/stunnel.log", dir);
    FILE *f = fopen(secrets, "w");
    if (f == NULL) {
        return -1;
    }
    (void)fchmod(fileno(f), 0600);
    fprintf(f, "%s:", psk_identity);
    for (size_t i = 0; i < sizeof(psk_key); i++) {
        fprintf(f, "%02x", psk_key[i]);
    }
    fprintf(f, "\n");
    fclose(f);
    f = fopen(conf, "w");
    if (f == NULL) {
        return -1;
    }
    /* every PSK suite the client may ask for; ALLOW_NO_DHE_KEX: OpenSSL accepts TLS 1.3
     * psk_ke (without it an OpenSSL server insists on psk_dhe_ke) */
    fprintf(f,
            "foreground = yes\npid =\ndebug = 3\noutput = %s\n\n[psk]\naccept = 127.0.0.1:%u\n"
            "connect = 127.0.0.1:%u\nPSKsecrets = %s\nPSKidentity = %s\n"
            "ciphers = PSK-AES128-GCM-SHA256:ECDHE-PSK-CHACHA20-POLY1305\n"
            "ciphersuites = TLS_AES_128_GCM_SHA256\noptions = ALLOW_NO_DHE_KEX\n"
            "options = NO_TICKET\n",
            logf, (unsigned)port, (unsigned)backend, secrets, psk_identity);
    fclose(f);
    char *argv[] = {"stunnel", conf, NULL};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0) {
            _exit(127);
        }
        execvp("stunnel", argv);
        _exit(127);
    }
    close(devnull);
    if (pid < 0) {
        return -1;
    }
    uint64_t limit = bench_now_ns() + 5000000000ull;
    while (!port_open(port)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return -1;
        }
        if (bench_now_ns() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        bench_sleep_ns(20000000);
    }
    return pid;
}

static void stunnel_cleanup(const char *dir, bool show_log)
{
    char path[160];
    const char *files[] = {"stunnel.conf", "psk.txt", "stunnel.log"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (show_log && i == 2) {
            FILE *f = fopen(path, "r");
            char line[512];
            while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
                fprintf(stderr, "bench_tls: stunnel log: %s", line);
            }
            if (f != NULL) {
                fclose(f);
            }
        }
        unlink(path);
    }
    rmdir(dir);
}

/* --mode psk: for each selected suite, R runs against tern (a PSK-only server) and, when
 * asked, against stunnel / --peer-port, alternating. @return 0, 1 (a run failed), 2 (setup). */
static int run_psk(struct opts *o, pid_t backend_pid, uint16_t backend_port)
{
    char err[256];
    static struct tserver sv;
    static struct run_result res[MAX_RUNS], pres[MAX_RUNS];
    if (server_start(&sv, o, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls: PSK server: %s\n", err);
        return 2;
    }
    struct target tt = {.name = "tern", .port = sv.port, .sv = &sv};
    struct target pt = {.name = "stunnel", .pid = -1};
    char dir[64] = "";
    bool have_peer = false;
    if (o->peer_stunnel) {
        uint16_t port = free_port();
        snprintf(dir, sizeof(dir), "/tmp/bench_tls_stunnel.XXXXXX");
        if (backend_pid <= 0 || port == 0 || mkdtemp(dir) == NULL) {
            fprintf(stderr, "bench_tls: --peer stunnel: setup failed; skipped\n");
            dir[0] = '\0';
        } else if ((pt.pid = stunnel_spawn(dir, port, backend_port)) <= 0) {
            fprintf(stderr, "bench_tls: --peer stunnel: cannot start `stunnel` (not installed, "
                            "or it refused the configuration); skipped\n");
            stunnel_cleanup(dir, true);
            dir[0] = '\0';
            pt.pid = -1;
        } else {
            have_peer = true;
            pt.port = port;
            pt.clock_ok = false; /* its CPU from /proc/<pid>/stat (utime + stime, all threads) */
            pt.backend_pid = backend_pid;
        }
    } else if (o->peer_port != 0) {
        have_peer = true;
        pt.name = "peer";
        pt.port = o->peer_port;
        pt.pid = o->peer_pid > 0 ? o->peer_pid : 0;
    }
    int status = 0;
    for (size_t k = 0; k < NPSK_SUITES && status == 0; k++) {
        if (!(o->psk_mask & (1u << k))) {
            continue;
        }
        const struct psk_suite *ps = &psk_suites[k];
        WOLFSSL_CTX *ctx = psk_ctx_new(ps, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(stderr, "bench_tls: %s\n", err);
            status = 2;
            break;
        }
        for (unsigned i = 0; i < o->runs && status == 0; i++) {
            if (run_once(o, ctx, &tt, PHASE_HS, o->request, &res[i]) != 0) {
                status = 1;
            }
            if (have_peer && status == 0 &&
                run_once(o, ctx, &pt, PHASE_HS, o->request, &pres[i]) != 0) {
                status = 1;
            }
        }
        if (status == 0) {
            o->label = ps->name;
            report(o, &tt, PHASE_HS, o->request, res, o->runs);
            if (have_peer) {
                report(o, &pt, PHASE_HS, o->request, pres, o->runs);
            }
            o->label = NULL;
        }
        wolfSSL_CTX_free(ctx);
    }
    if (o->peer_stunnel && pt.pid > 0) {
        openssl_stop(pt.pid); /* SIGTERM, then SIGKILL after 5 s */
    }
    if (dir[0] != '\0') {
        stunnel_cleanup(dir, status != 0);
    }
    if (!o->json) {
        tern_stats st;
        char line[1024];
        if (tern_runtime_stats(sv.rt, &st) == 0 &&
            tern_stats_format(&st, TERN_STATS_TEXT, line, sizeof(line)) >= 0) {
            fprintf(stderr, "bench_tls: PSK server stats: %s\n", line);
        }
    }
    server_free(&sv);
    return status;
}

/* ---- command line -------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_tls [options]\n"
        "  tern's TLS server (in process, 127.0.0.1, port 0; ECDSA P-256 certificate made at\n"
        "  startup) under load from a wolfSSL client on epoll (its own threads, no tern code).\n"
        "  Every handshake is a full one (no session cache, no tickets on the client). Figures\n"
        "  are printed, not asserted.\n"
        "  -m, --mode M            handshake, bulk, idle or all (default all)\n"
        "      --tls V             1.3 (TLS13-AES128-GCM-SHA256, X25519) or 1.2\n"
        "                          (ECDHE-ECDSA-AES128-GCM-SHA256, X25519); default 1.3\n"
        "  -C, --connections N     handshake: concurrent connect/handshake/echo/close loops\n"
        "                          (default 16)\n"
        "  -K, --streams N         bulk: long-lived connections (default 4)\n"
        "  -d, --duration S        measured seconds per run (default 0.5)\n"
        "  -w, --warmup S          unmeasured seconds before each run (default 0.2)\n"
        "  -g, --grace S           after a run, seconds to finish what is in flight (default 3)\n"
        "  -r, --runs R            runs of the handshake and bulk phases; medians (default 3)\n"
        "  -T, --server-threads N  tern reactors (default 1)\n"
        "  -t, --client-threads N  client threads (default 1)\n"
        "  -q, --request-size B    handshake: request bytes echoed, 0..4096 (default 16; 0:\n"
        "                          handshake and close only)\n"
        "  -s, --write-size B      bulk: bytes per wolfSSL_write, 1..1Mi (default 64Ki)\n"
        "  -W, --window B          bulk: bytes unanswered per connection (default 4Mi)\n"
        "  -n, --idle N            idle: connections held open (default 2000)\n"
        "      --idle-runs R       idle: runs, each with a fresh server process (default 1)\n"
        "      --settle S          idle: seconds before each memory reading (default 0.5)\n"
        "      --server-verify M   none (default: no CertificateRequest, as a web server) or\n"
        "                          auto (tern's default, QUERY_PEER: asks for a certificate)\n"
        "  -R, --reuseport         one SO_REUSEPORT listener per reactor, no acceptor thread\n"
        "      --peer openssl      handshake phase: also run it against `openssl s_server\n"
        "                          -www` (one process, one connection at a time), alternating\n"
        "                          runs with tern; both with --request-size 0 (handshake,\n"
        "                          close_notify, close: s_server's -www answer is an HTTP\n"
        "                          status page, not an echo)\n"
        "      --mode psk          PSK handshakes instead (not part of all): a PSK-only tern\n"
        "                          server (tern_ssl_config_enable_psk, the identity answered\n"
        "                          inline); each connection: connect, PSK handshake,\n"
        "                          --request-size echo, close\n"
        "      --psk-suite LIST    tls12-psk, tls12-ecdhe-psk, tls13-psk_ke,\n"
        "                          tls13-psk_dhe_ke, comma-separated (default: all four)\n"
        "      --peer stunnel      psk: also run against `stunnel` (started here, foreground,\n"
        "                          PSKsecrets) in front of a plaintext echo child, alternating\n"
        "                          runs; stunnel's CPU from /proc/<pid>/stat\n"
        "      --peer-port P       psk: also run against a server already on 127.0.0.1:P\n"
        "      --peer-pid PID      ... and read its CPU from /proc/PID/stat\n"
        "  -j, --json              one JSON object per phase instead of text\n"
        "  -h, --help\n"
        "  Sizes take k/M (x1000) or Ki/Mi (x1024) suffixes.\n");
}

enum {
    OPT_TLS = 1000,
    OPT_IDLE_RUNS,
    OPT_SETTLE,
    OPT_SERVER_VERIFY,
    OPT_PEER,
    OPT_SERVE_CHILD,
    OPT_PSK_SUITE,
    OPT_PEER_PORT,
    OPT_PEER_PID,
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"mode", required_argument, NULL, 'm'},
        {"tls", required_argument, NULL, OPT_TLS},
        {"connections", required_argument, NULL, 'C'},
        {"streams", required_argument, NULL, 'K'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"grace", required_argument, NULL, 'g'},
        {"runs", required_argument, NULL, 'r'},
        {"server-threads", required_argument, NULL, 'T'},
        {"client-threads", required_argument, NULL, 't'},
        {"request-size", required_argument, NULL, 'q'},
        {"write-size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'W'},
        {"idle", required_argument, NULL, 'n'},
        {"idle-runs", required_argument, NULL, OPT_IDLE_RUNS},
        {"settle", required_argument, NULL, OPT_SETTLE},
        {"server-verify", required_argument, NULL, OPT_SERVER_VERIFY},
        {"reuseport", no_argument, NULL, 'R'},
        {"peer", required_argument, NULL, OPT_PEER},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"serve-child", no_argument, NULL, OPT_SERVE_CHILD},
        {"psk-suite", required_argument, NULL, OPT_PSK_SUITE},
        {"peer-port", required_argument, NULL, OPT_PEER_PORT},
        {"peer-pid", required_argument, NULL, OPT_PEER_PID},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    double d;
    int opt;

    while ((opt = getopt_long(argc, argv, "m:C:K:d:w:g:r:T:t:q:s:W:n:Rjh", longopts, NULL)) !=
           -1) {
        switch (opt) {
        case 'm':
            o->do_hs = strcmp(optarg, "handshake") == 0 || strcmp(optarg, "all") == 0;
            o->do_bulk = strcmp(optarg, "bulk") == 0 || strcmp(optarg, "all") == 0;
            o->do_idle = strcmp(optarg, "idle") == 0 || strcmp(optarg, "all") == 0;
            o->do_psk = strcmp(optarg, "psk") == 0;
            if (!o->do_hs && !o->do_bulk && !o->do_idle && !o->do_psk) {
                fprintf(stderr,
                        "bench_tls: --mode: expected handshake, bulk, idle, all or psk\n");
                return 2;
            }
            break;
        case OPT_TLS:
            if (strcmp(optarg, "1.3") == 0) {
                o->tls = 13;
            } else if (strcmp(optarg, "1.2") == 0) {
                o->tls = 12;
            } else {
                fprintf(stderr, "bench_tls: --tls: expected 1.2 or 1.3\n");
                return 2;
            }
            break;
        case 'C':
        case 'K':
            if (bench_parse_u64(optarg, 1, 10000, &v) != 0) {
                fprintf(stderr, "bench_tls: --%s: expected 1..10000\n",
                        opt == 'C' ? "connections" : "streams");
                return 2;
            }
            *(opt == 'C' ? &o->connections : &o->streams) = (unsigned)v;
            break;
        case 'd':
        case 'w':
        case 'g':
        case OPT_SETTLE:
            if (bench_parse_double(optarg, opt == 'd' ? 0.05 : 0.0, 600, &d) != 0) {
                fprintf(stderr, "bench_tls: --%s: expected seconds in %s..600\n",
                        opt == 'd'   ? "duration"
                        : opt == 'w' ? "warmup"
                        : opt == 'g' ? "grace"
                                     : "settle",
                        opt == 'd' ? "0.05" : "0");
                return 2;
            }
            *(opt == 'd'   ? &o->duration
              : opt == 'w' ? &o->warmup
              : opt == 'g' ? &o->grace
                           : &o->settle) = d;
            break;
        case 'r':
        case OPT_IDLE_RUNS:
            if (bench_parse_u64(optarg, 1, MAX_RUNS, &v) != 0) {
                fprintf(stderr, "bench_tls: --%s: expected 1..%d\n",
                        opt == 'r' ? "runs" : "idle-runs", MAX_RUNS);
                return 2;
            }
            *(opt == 'r' ? &o->runs : &o->idle_runs) = (unsigned)v;
            break;
        case 'T':
            o->server_threads = (unsigned)bench_opt_u64("bench_tls", "--server-threads", optarg, 1, TERN_MAX_REACTORS);
            break;
        case 't':
            o->client_threads = (unsigned)bench_opt_u64("bench_tls", "--client-threads", optarg, 1, MAX_CLIENT_THREADS);
            break;
        case 'q':
            o->request = (size_t)bench_opt_u64("bench_tls", "--request-size", optarg, 0, 4096);
            break;
        case 's':
            o->chunk = (size_t)bench_opt_u64("bench_tls", "--write-size", optarg, 1, MAX_CHUNK);
            break;
        case 'W':
            o->window = (size_t)bench_opt_u64("bench_tls", "--window", optarg, 1, UINT64_C(1) << 32);
            break;
        case 'n':
            o->idle_n = (unsigned)bench_opt_u64("bench_tls", "--idle", optarg, 1, 1000000);
            break;
        case OPT_SERVER_VERIFY:
            if (strcmp(optarg, "none") == 0) {
                o->server_verify_auto = false;
            } else if (strcmp(optarg, "auto") == 0) {
                o->server_verify_auto = true;
            } else {
                fprintf(stderr, "bench_tls: --server-verify: expected none or auto\n");
                return 2;
            }
            break;
        case 'R':
            o->reuseport = true;
            break;
        case OPT_PEER:
            if (strcmp(optarg, "openssl") == 0) {
                o->peer_openssl = true;
            } else if (strcmp(optarg, "stunnel") == 0) {
                o->peer_stunnel = true;
            } else if (strcmp(optarg, "tern") == 0) {
                o->peer_openssl = false;
            } else {
                fprintf(stderr, "bench_tls: --peer: expected openssl, or stunnel with --mode psk (nginx is not supported)\n");
                return 2;
            }
            break;
        case 'j':
            o->json = true;
            break;
        case OPT_SERVE_CHILD:
            o->serve_child = true;
            break;
        case OPT_PSK_SUITE: {
            o->psk_mask = 0;
            char list[256];
            snprintf(list, sizeof(list), "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                size_t k = 0;
                while (k < NPSK_SUITES && strcmp(tok, psk_suites[k].name) != 0) {
                    k++;
                }
                if (k == NPSK_SUITES) {
                    fprintf(stderr, "bench_tls: --psk-suite: expected tls12-psk, "
                                    "tls12-ecdhe-psk, tls13-psk_ke or tls13-psk_dhe_ke (comma-"
                                    "separated)\n");
                    return 2;
                }
                o->psk_mask |= 1u << k;
            }
            break;
        }
        case OPT_PEER_PORT:
        case OPT_PEER_PID:
            if (bench_parse_u64(optarg, 1, opt == OPT_PEER_PORT ? 65535 : 4194304, &v) != 0) {
                fprintf(stderr, "bench_tls: --%s: out of range\n",
                        opt == OPT_PEER_PORT ? "peer-port" : "peer-pid");
                return 2;
            }
            if (opt == OPT_PEER_PORT) {
                o->peer_port = (uint16_t)v;
            } else {
                o->peer_pid = (int)v;
            }
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 2;
        }
    }
    if ((o->peer_stunnel || o->peer_port != 0) && !o->do_psk) {
        fprintf(stderr, "bench_tls: --peer stunnel and --peer-port need --mode psk\n");
        return 2;
    }
    if (o->peer_openssl && o->do_psk) {
        fprintf(stderr, "bench_tls: --peer openssl: not with --mode psk (use stunnel)\n");
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "bench_tls: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    return 0;
}

/* Raises RLIMIT_NOFILE's soft limit to the hard one. @return the soft limit now. */
static rlim_t raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 1024;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t want = rl.rlim_max;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    return rl.rlim_cur;
}

int main(int argc, char **argv)
{
    static struct opts opt;
    struct opts *o = &opt;

    o->do_hs = o->do_bulk = o->do_idle = true;
    o->tls = 13;
    o->connections = 16;
    o->streams = 4;
    o->server_threads = 1;
    o->client_threads = 1;
    o->runs = 3;
    o->idle_runs = 1;
    o->idle_n = 2000;
    o->duration = 0.5;
    o->warmup = 0.2;
    o->grace = 3.0;
    o->settle = 0.5;
    o->request = 16;
    o->chunk = 64 * 1024;
    o->window = 4u << 20;
    o->psk_mask = (1u << NPSK_SUITES) - 1;
    int prc = parse_opts(argc, argv, o);
    if (prc != 0) {
        return prc == 1 ? 0 : prc;
    }
    signal(SIGPIPE, SIG_IGN);
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
        fprintf(stderr, "bench_tls: wolfSSL_Init failed\n");
        return 2;
    }
    if (o->serve_child) {
        int rc = serve_child(o);
        wolfSSL_Cleanup();
        return rc;
    }
    pattern_init();

    if (o->do_psk) {
        /* the echo backend is forked before any thread exists */
        uint16_t bport = 0;
        pid_t bpid = o->peer_stunnel ? echo_backend_spawn(&bport) : -1;
        int rc = run_psk(o, bpid, bport);
        if (bpid > 0) {
            kill(bpid, SIGKILL);
            waitpid(bpid, NULL, 0);
        }
        wolfSSL_Cleanup();
        return rc;
    }

    /* file descriptors: N on each side in the idle phase */
    rlim_t nofile = raise_nofile();
    unsigned idle_n = o->idle_n;
    bool reduced = false;
    if (o->do_idle && (rlim_t)idle_n + FD_RESERVE > nofile) {
        if (nofile <= FD_RESERVE + 1) {
            fprintf(stderr, "bench_tls: RLIMIT_NOFILE is %llu: too low for the idle phase\n",
                    (unsigned long long)nofile);
            return 2;
        }
        idle_n = (unsigned)(nofile - FD_RESERVE);
        reduced = true;
        fprintf(stderr,
                "bench_tls: RLIMIT_NOFILE is %llu (hard limit): idle phase reduced from %u to "
                "%u connections\n",
                (unsigned long long)nofile, o->idle_n, idle_n);
    }

    char err[256];
    struct cert_set cs;
    if (make_cert(&cs, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls: %s\n", err);
        return 2;
    }
    WOLFSSL_CTX *ctx = client_ctx_new(o, err, sizeof(err));
    if (ctx == NULL) {
        fprintf(stderr, "bench_tls: %s\n", err);
        return 2;
    }

    int status = 0;
    static struct tserver sv;
    static struct run_result res[MAX_RUNS], pres[MAX_RUNS];
    char tmpdir[64] = "", cert_path[128] = "", key_path[128] = "";
    struct target tt = {.name = "tern"};
    struct target pt = {.name = "openssl s_server", .pid = -1};
    bool have_sv = false, have_peer = false;

    if (o->do_hs || o->do_bulk) {
        if (server_start(&sv, o, &cs, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_tls: %s\n", err);
            wolfSSL_CTX_free(ctx);
            return 2;
        }
        have_sv = true;
        tt.port = sv.port;
        tt.sv = &sv;
    }
    if (o->do_hs && o->peer_openssl) {
        uint16_t port = free_port();
        if (port == 0 ||
            write_pem_files(&cs, tmpdir, sizeof(tmpdir), cert_path, key_path, sizeof(cert_path)) !=
                0 ||
            (pt.pid = openssl_spawn(port, cert_path, key_path)) <= 0) {
            fprintf(stderr, "bench_tls: --peer openssl: cannot start `openssl s_server` "
                            "(not installed?); skipped\n");
            pt.pid = -1;
        } else {
            have_peer = true;
            pt.port = port;
            pt.clock_ok = clock_getcpuclockid(pt.pid, &pt.clock) == 0;
        }
    }

    if (o->do_hs && status == 0) {
        size_t request = have_peer ? 0 : o->request;
        if (have_peer && o->request != 0) {
            fprintf(stderr, "bench_tls: --peer openssl: handshake phase with --request-size 0 "
                            "for both servers\n");
        }
        for (unsigned i = 0; i < o->runs && status == 0; i++) {
            if (run_once(o, ctx, &tt, PHASE_HS, request, &res[i]) != 0) {
                status = 1;
            }
            if (have_peer && status == 0 &&
                run_once(o, ctx, &pt, PHASE_HS, request, &pres[i]) != 0) {
                status = 1;
            }
        }
        if (status == 0) {
            report(o, &tt, PHASE_HS, request, res, o->runs);
            if (have_peer) {
                report(o, &pt, PHASE_HS, request, pres, o->runs);
            }
        }
    }
    if (have_peer) {
        openssl_stop(pt.pid);
    }
    if (tmpdir[0] != '\0') {
        unlink(cert_path);
        unlink(key_path);
        rmdir(tmpdir);
    }
    if (o->do_bulk && status == 0) {
        for (unsigned i = 0; i < o->runs && status == 0; i++) {
            if (run_once(o, ctx, &tt, PHASE_BULK, o->request, &res[i]) != 0) {
                status = 1;
            }
        }
        if (status == 0) {
            report(o, &tt, PHASE_BULK, o->request, res, o->runs);
        }
    }
    if (have_sv) {
        if (!o->json) {
            tern_stats st;
            char line[1024];
            if (tern_runtime_stats(sv.rt, &st) == 0 &&
                tern_stats_format(&st, TERN_STATS_TEXT, line, sizeof(line)) >= 0) {
                fprintf(stderr, "bench_tls: server stats: %s\n", line);
            }
        }
        server_free(&sv);
    }
    if (o->do_idle && status == 0) {
        static struct idle_result ires[MAX_RUNS];
        for (unsigned i = 0; i < o->idle_runs && status == 0; i++) {
            if (run_idle_once(o, ctx, idle_n, &ires[i]) != 0) {
                status = 1;
            }
        }
        if (status == 0) {
            report_idle(o, idle_n, reduced, ires, o->idle_runs);
        }
    }
    wolfSSL_CTX_free(ctx);
    wolfSSL_Cleanup();
    return status;
}

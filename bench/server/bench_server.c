/* SPDX-License-Identifier: MIT */
/*
 * bench_server: a probe for what a client cannot see. It runs a tern echo server in this
 * process (plaintext, or TLS with --cert/--key) and, while any client drives it (tern-bench,
 * from outside), prints once per --interval and at the end:
 *   - the reactor threads' CPU, exactly (each reactor's pthread CPU clock), and the process's,
 *     as CPU seconds per wall second and as microseconds per accepted connection;
 *   - the heap in use (malloc's own count, mallinfo2: every arena) above the level before
 *     the first connection, per open connection: what the live objects hold, not what the
 *     allocator keeps after a burst (the idle-memory figure of bench/compare is VmRSS; see
 *     bench/README.md, "Idle memory").
 * The echo keeps backpressure: it moves at most the write room from the read buffer to the
 * write queue and resumes on `bytes_written`.
 *
 * Threads: main() parses, starts the runtime, learns each reactor's CPU clock by posting a
 * task to it, then only reads counters (tern_runtime_stats, clocks, mallinfo2) until SIGINT
 * or SIGTERM. The sockets are touched by their reactors only.
 *
 * Exit codes: 0 after a signal, 1 when the server cannot start, 2 on bad arguments.
 */
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#include "bench_util.h"

#define PROG "bench_server"

struct probe {
    tern_runtime *rt;
    unsigned nreactors;
    clockid_t clocks[TERN_MAX_REACTORS];
    atomic_uint clocks_known;
};

/* ---- the echo, with backpressure --------------------------------------------------------- */

static void echo_pump(tern_socket *s)
{
    tern_buf view;

    while (tern_socket_peek_view(s, &view) == 0 && view.len > 0) {
        size_t room = tern_socket_write_room(s);
        size_t n = view.len < room ? view.len : room;
        if (n == 0 || tern_socket_write(s, view.base, n) < 0) {
            return; /* full: bytes_written resumes; the rest stays in the read buffer */
        }
        tern_socket_consume(s, n);
    }
}

static void on_ready_read(tern_socket *s, void *user)
{
    echo_pump(s);
}

static void on_bytes_written(tern_socket *s, size_t n, void *user)
{
    echo_pump(s);
}

static const tern_socket_events echo_events = {
    .ready_read = on_ready_read,
    .bytes_written = on_bytes_written,
};

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    bool tls = user != NULL;

    tern_socket_set_events(s, &echo_events, NULL);
    if (tls) {
        tern_socket_start_server_encryption(s);
    }
}

/* ---- CPU clocks of the reactors ----------------------------------------------------------- */

struct clock_task {
    struct probe *p;
    unsigned i;
};

static void learn_clock(tern_reactor *r, void *arg)
{
    struct clock_task *t = arg;

    if (r != NULL && pthread_getcpuclockid(pthread_self(), &t->p->clocks[t->i]) == 0) {
        atomic_fetch_add(&t->p->clocks_known, 1);
    }
}

static uint64_t reactors_cpu_ns(const struct probe *p)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < p->nreactors; i++) {
        sum += bench_cpu_ns(p->clocks[i]);
    }
    return sum;
}

/* ---- the report ----------------------------------------------------------------------------- */

struct sample {
    uint64_t wall_ns, reactors_ns, process_ns, accepted, handshakes, open;
    size_t heap;
};

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void take(const struct probe *p, struct sample *s)
{
    tern_stats st;

    memset(&st, 0, sizeof(st));
    (void)tern_runtime_stats(p->rt, &st);
    s->wall_ns = bench_now_ns();
    s->reactors_ns = reactors_cpu_ns(p);
    s->process_ns = bench_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    s->accepted = st.connections_accepted;
    s->handshakes = st.handshakes;
    s->open = st.connections_open;
    s->heap = heap_in_use();
}

static void report(bool json, const char *what, const struct sample *a, const struct sample *b,
                   size_t heap0)
{
    double wall = (double)(b->wall_ns - a->wall_ns) / 1e9;
    double rcpu = (double)(b->reactors_ns - a->reactors_ns) / 1e9;
    double pcpu = (double)(b->process_ns - a->process_ns) / 1e9;
    uint64_t conns = b->accepted - a->accepted;
    double us_per_conn = conns > 0 ? rcpu * 1e6 / (double)conns : 0.0;
    double heap_per_open =
        b->open > 0 && b->heap > heap0 ? (double)(b->heap - heap0) / (double)b->open : 0.0;
    long rss = bench_proc_status_kib("VmRSS:");

    if (json) {
        printf("{\"what\": \"%s\", \"wall_s\": %.3f, \"accepted\": %llu, \"handshakes\": %llu, "
               "\"open\": %llu, \"conn_per_s\": %.1f, \"reactors_cpu_per_wall\": %.3f, "
               "\"process_cpu_per_wall\": %.3f, \"reactor_us_per_conn\": %.1f, "
               "\"conn_per_reactor_cpu_s\": %.1f, \"heap_bytes_per_open_conn\": %.0f, "
               "\"heap_kib\": %zu, \"vmrss_kib\": %ld}\n",
               what, wall, (unsigned long long)conns,
               (unsigned long long)(b->handshakes - a->handshakes), (unsigned long long)b->open,
               wall > 0 ? (double)conns / wall : 0.0, wall > 0 ? rcpu / wall : 0.0,
               wall > 0 ? pcpu / wall : 0.0, us_per_conn, rcpu > 0 ? (double)conns / rcpu : 0.0,
               heap_per_open, b->heap / 1024, rss);
    } else {
        printf("%s: %.1f s, %llu conn (%.0f/s), %llu open; reactors %.2f CPU s/s (process "
               "%.2f): %.1f us per conn, %.0f conn per reactor CPU-s; heap %zu KiB, %.0f B per "
               "open conn; VmRSS %ld KiB\n",
               what, wall, (unsigned long long)conns, wall > 0 ? (double)conns / wall : 0.0,
               (unsigned long long)b->open, wall > 0 ? rcpu / wall : 0.0,
               wall > 0 ? pcpu / wall : 0.0, us_per_conn,
               rcpu > 0 ? (double)conns / rcpu : 0.0, b->heap / 1024, heap_per_open, rss);
    }
    fflush(stdout);
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROG " [--cert FILE --key FILE] [OPTION]...\n"
            "A tern echo server in this process (TLS with --cert/--key, else plaintext) that\n"
            "reports its reactors' CPU per connection and its heap per open connection while\n"
            "a client (tern-bench) drives it. Prints 'listening 127.0.0.1:PORT' first.\n"
            "  -p, --port P           port on 127.0.0.1 (default 0: any)\n"
            "  -t, --threads N        reactors (default 1)\n"
            "      --reuseport        a SO_REUSEPORT listener per reactor (no acceptor thread)\n"
            "  -i, --interval S       seconds between reports (default 1; 0: only at the end)\n"
            "      --cert FILE        server certificate (PEM)\n"
            "      --key FILE         its key (PEM)\n"
            "      --json             one JSON object per report\n"
            "Stops on SIGINT or SIGTERM with a report of the whole run.\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},   {"threads", required_argument, NULL, 't'},
        {"interval", required_argument, NULL, 'i'}, {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},    {"json", no_argument, NULL, 'j'},
        {"reuseport", no_argument, NULL, 'r'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    uint64_t port = 0, threads = 1, interval = 1;
    const char *cert = NULL, *key = NULL;
    bool json = false, reuseport = false;
    int c;

    while ((c = getopt_long(argc, argv, "p:t:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': port = bench_opt_u64(PROG, "--port", optarg, 0, 65535); break;
        case 't': threads = bench_opt_u64(PROG, "--threads", optarg, 1, TERN_MAX_REACTORS); break;
        case 'i': interval = bench_opt_u64(PROG, "--interval", optarg, 0, 86400); break;
        case 'c': cert = optarg; break;
        case 'k': key = optarg; break;
        case 'j': json = true; break;
        case 'r': reuseport = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || (cert == NULL) != (key == NULL)) {
        fprintf(stderr, PROG ": %s\n", optind < argc ? "unexpected argument"
                                                     : "--cert and --key go together");
        return 2;
    }
    tern_ssl_config *cfg = NULL;
    if (cert != NULL) {
        cfg = tern_ssl_config_new();
        if (cfg == NULL ||
            tern_ssl_config_set_local_certificate_file(cfg, cert, TERN_ENCODING_PEM) < 0 ||
            tern_ssl_config_set_private_key_file(cfg, key, TERN_ENCODING_PEM, NULL) < 0 ||
            tern_ssl_config_set_peer_verify_mode(cfg, TERN_VERIFY_NONE) < 0) {
            fprintf(stderr, PROG ": TLS: %s\n",
                    cfg != NULL ? tern_ssl_config_error_string(cfg) : "out of memory");
            return 2;
        }
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* the runtime's threads inherit it */
    signal(SIGPIPE, SIG_IGN);

    struct probe p;
    memset(&p, 0, sizeof(p));
    tern_runtime_options ro;
    tern_runtime_options_init(&ro);
    ro.reactors = (unsigned)threads;
    p.rt = tern_runtime_new(&ro);
    tern_server *srv = p.rt != NULL ? tern_server_new(p.rt, cfg, on_incoming, cfg) : NULL;
    int rc = srv == NULL ? TERN_ENOMEM : 0;
    if (rc == 0 && reuseport) {
        rc = tern_server_set_reuseport(srv, true);
    }
    if (rc == 0) {
        rc = tern_server_listen(srv, "127.0.0.1", (uint16_t)port);
    }
    if (rc == 0) {
        rc = tern_runtime_start(p.rt);
    }
    if (rc < 0) {
        fprintf(stderr, PROG ": cannot start: %s\n", tern_strerror(rc));
        return 1;
    }
    p.nreactors = tern_runtime_reactor_count(p.rt);
    struct clock_task tasks[TERN_MAX_REACTORS];
    for (unsigned i = 0; i < p.nreactors; i++) {
        tasks[i] = (struct clock_task){&p, i};
        (void)tern_reactor_post(tern_runtime_reactor(p.rt, i), learn_clock, &tasks[i]);
    }
    for (int k = 0; k < 1000 && atomic_load(&p.clocks_known) < p.nreactors; k++) {
        bench_sleep_ns(1000000);
    }
    printf("listening 127.0.0.1:%u (%s, %u reactor%s)\n", tern_server_port(srv),
           cfg != NULL ? "TLS" : "plaintext", p.nreactors, p.nreactors == 1 ? "" : "s");
    fflush(stdout);

    struct sample first, last, now;
    take(&p, &first);
    size_t heap0 = first.heap; /* the runtime, the listener, the TLS context: before any client */
    last = first;
    for (;;) {
        struct timespec wait = {.tv_sec = interval > 0 ? (time_t)interval : 3600, .tv_nsec = 0};
        int sig = sigtimedwait(&sigs, NULL, &wait);
        take(&p, &now);
        if (sig == SIGINT || sig == SIGTERM) {
            break;
        }
        if (interval > 0 && now.accepted + now.open > 0) {
            report(json, "interval", &last, &now, heap0);
        }
        last = now;
    }
    report(json, "total", &first, &now, heap0);
    tern_runtime_stop(p.rt, 0);
    tern_runtime_join(p.rt);
    tern_runtime_free(p.rt);
    tern_ssl_config_unref(cfg);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-echo: the smallest real server on libtern. It sends every byte back to its sender.
 * Plaintext TCP for now; TLS (--cert/--key) comes with ssl/.
 *
 * Threads: main() sets everything up, starts the runtime and waits in tern_runtime_join.
 * Connections live on the reactor threads; every callback below runs on the reactor that
 * owns its socket, so the per-connection code needs no locks. The optional stats reporter
 * is an actor on reactor 0 that owns a repeating timer there.
 *
 * Backpressure: a connection moves at most "write room" bytes (write_buffer_size minus
 * bytes_to_write) from its read buffer to its write queue, and consumes only what the
 * write took. When the queue is full it stops and waits for `bytes_written`; meanwhile the
 * read buffer fills, the runtime stops reading from the kernel, and TCP flow control slows
 * the client down. Memory per connection stays bounded by the two buffer limits.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

#include "common/log.h"
#include "common/opts.h"

#define PROGRAM "tern-echo"
#define DEFAULT_LISTEN "127.0.0.1:8443"
#define DEFAULT_DRAIN_MS 5000u
#define EXIT_FAILURE_RUNTIME 1
/* Bytes copied per step; the write room bounds each step as well. */
#define ECHO_CHUNK 16384

struct app {
    /* options */
    const char *listen;
    unsigned threads; /* 0: online CPUs */
    bool reuseport;
    tern_balance_policy balance;
    unsigned max_connections;
    uint32_t idle_timeout_ms;
    uint32_t drain_ms;
    uint32_t stats_interval_s;
    /* state */
    tern_runtime *rt;
    tern_actor *stats_actor;
    tern_timer *stats_timer; /* reactor 0 only */
    struct timespec started;
};

static const char *const balance_names[] = {
    [TERN_BALANCE_ROUND_ROBIN] = "round-robin",
    [TERN_BALANCE_LEAST_CONNECTIONS] = "least-connections",
    NULL,
};

/* ---- echo ---------------------------------------------------------------------------- */

/* Free space in the write queue; SIZE_MAX when it has no limit. */
static size_t write_room(const tern_socket *s)
{
    size_t limit = tern_socket_write_buffer_size(s);
    size_t queued = tern_socket_bytes_to_write(s);

    if (limit == 0) {
        return SIZE_MAX;
    }
    return queued < limit ? limit - queued : 0;
}

/*
 * Moves what fits from the read buffer to the write queue. Bytes are peeked, written, and
 * consumed only once the write took them, so a refused write (TERN_ENOBUFS) loses nothing:
 * the bytes stay buffered until `bytes_written` calls this again.
 */
static void echo_pump(tern_socket *s)
{
    char buf[ECHO_CHUNK];

    for (;;) {
        size_t avail = tern_socket_bytes_available(s);
        size_t n = write_room(s);
        if (n > avail) {
            n = avail;
        }
        if (n > sizeof(buf)) {
            n = sizeof(buf);
        }
        if (n == 0) {
            return; /* nothing to echo, or wait for bytes_written */
        }
        ssize_t got = tern_socket_peek(s, buf, n);
        if (got <= 0) {
            return;
        }
        int rc = tern_socket_write(s, buf, (size_t)got);
        if (rc == TERN_ENOBUFS) {
            return; /* the queue is full after all: bytes_written resumes us */
        }
        if (rc == TERN_ENOTCONN) {
            return; /* closing: what is left is discarded by the runtime */
        }
        if (rc < 0) {
            app_log(APP_LOG_WARN, "write failed", "err=%s", tern_err_name(rc));
            tern_socket_abort(s);
            return;
        }
        tern_socket_consume(s, (size_t)got);
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

/* Peer-caused failures are routine for a server: debug level, except our own faults. */
static void echo_error(tern_socket *s, int err, void *user)
{
    enum app_log_level level =
        tern_err_category_of(err) == TERN_ERR_CATEGORY_INTERNAL ? APP_LOG_WARN : APP_LOG_DEBUG;
    char detail[256];

    if (app_log_enabled(level)) {
        app_log(level, "connection error", "err=%s detail=%s", tern_err_name(err),
                app_log_quote(detail, sizeof(detail), tern_socket_error_string(s)));
    }
}

static void echo_disconnected(tern_socket *s, int reason, void *user)
{
    app_log(APP_LOG_DEBUG, "disconnected", "reactor=%u reason=%s",
            tern_reactor_index(tern_socket_reactor(s)), tern_err_name(reason));
}

/* The peer's FIN is handled by the runtime: once every byte was read, the socket closes
 * gracefully after its queue is sent. An echo server needs nothing more. */
static const tern_socket_events echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
    .error = echo_error,
    .disconnected = echo_disconnected,
};

/* Runs on the reactor that owns @p s. */
static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    tern_socket_set_events(s, &echo_events, user);
    if (app_log_enabled(APP_LOG_DEBUG)) {
        char peer[64];
        if (tern_socket_peer_address(s, peer, sizeof(peer)) < 0) {
            strcpy(peer, "?");
        }
        app_log(APP_LOG_DEBUG, "accepted", "peer=%s reactor=%u", peer,
                tern_reactor_index(tern_socket_reactor(s)));
    }
}

/* ---- stats --------------------------------------------------------------------------- */

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Logs "msg" with uptime and every counter (tern_stats_format's key=value line). */
static void log_stats(struct app *app, const char *msg)
{
    tern_stats st;
    char text[2048];

    if (tern_runtime_stats(app->rt, &st) < 0) {
        return;
    }
    ssize_t n = tern_stats_format(&st, TERN_STATS_TEXT, text, sizeof(text));
    if (n < 0) {
        return;
    }
    app_log(APP_LOG_INFO, msg, "uptime_s=%.1f %s", seconds_since(&app->started), text);
}

static void stats_tick(tern_timer *t, void *user)
{
    log_stats(user, "stats");
}

/* The one message the reporter gets: start the timer on its own reactor. */
static void stats_message(tern_actor *a, void *msg, void *user)
{
    struct app *app = user;
    uint64_t every = (uint64_t)app->stats_interval_s * 1000;

    if (app->stats_timer != NULL) {
        return;
    }
    app->stats_timer = tern_timer_new(tern_actor_reactor(a), stats_tick, app);
    if (app->stats_timer == NULL || tern_timer_start(app->stats_timer, every, every) < 0) {
        app_log_msg(APP_LOG_WARN, "cannot start the stats timer");
    }
}

/* The reactor stops: the timer is freed on the thread that owns it. */
static void stats_stopped(tern_actor *a, void *user)
{
    struct app *app = user;

    tern_timer_free(app->stats_timer);
    app->stats_timer = NULL;
}

static const tern_actor_events stats_events = {
    .message = stats_message,
    .stopped = stats_stopped,
};

static void start_stats_reporter(struct app *app)
{
    app->stats_actor =
        tern_actor_spawn(app->rt, tern_runtime_reactor(app->rt, 0), &stats_events, app);
    if (app->stats_actor == NULL) {
        app_log_msg(APP_LOG_WARN, "cannot start the stats reporter");
        return;
    }
    /* The message is only a signal; the actor does not free it. */
    int rc = tern_actor_send(app->stats_actor, app);
    if (rc < 0) {
        app_log(APP_LOG_WARN, "cannot start the stats reporter", "err=%s", tern_err_name(rc));
    }
}

static void on_reload(tern_runtime *rt, void *user)
{
    app_log_msg(APP_LOG_INFO, "SIGHUP: nothing to reload (plaintext server)");
}

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " [OPTION]...\n"
            "An echo server on libtern: every byte a client sends comes back to it.\n"
            "Plaintext TCP for now (TLS is the next milestone).\n"
            "\n"
            "  -l, --listen HOST:PORT     address to listen on (default " DEFAULT_LISTEN ");\n"
            "                             also [IPV6]:PORT, :PORT or *:PORT for all IPv4\n"
            "  -t, --threads N            reactor threads, 1..%d (default: online CPUs)\n"
            "      --reuseport            one SO_REUSEPORT listener per reactor instead of\n"
            "                             the acceptor thread handing connections out\n"
            "      --balance POLICY       round-robin (default) or least-connections\n"
            "      --max-connections N    at most N open connections; 0: no limit (default)\n"
            "      --idle-timeout MS      close connections idle for MS ms; 0: never (default)\n"
            "      --drain MS             on SIGINT/SIGTERM, wait up to MS ms for connections\n"
            "                             to end before closing them (default %u)\n"
            "      --stats-interval S     log the counters every S seconds; 0: off (default)\n"
            "      --log-level LEVEL      debug, info (default), warn or error\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "Logs go to stderr, one key=value line each. SIGINT or SIGTERM stops accepting,\n"
            "drains, prints the counters and exits 0; a second signal closes at once.\n"
            "Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on bad arguments\n"
            "or an address that cannot be used.\n",
            TERN_MAX_REACTORS, DEFAULT_DRAIN_MS);
}

enum {
    OPT_REUSEPORT = 256,
    OPT_BALANCE,
    OPT_MAX_CONNECTIONS,
    OPT_IDLE_TIMEOUT,
    OPT_DRAIN,
    OPT_STATS_INTERVAL,
    OPT_LOG_LEVEL,
};

static void parse_args(struct app *app, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"threads", required_argument, NULL, 't'},
        {"reuseport", no_argument, NULL, OPT_REUSEPORT},
        {"balance", required_argument, NULL, OPT_BALANCE},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    /* A leading ':' makes getopt_long quiet and tell a missing value (':') from an unknown
     * option ('?'), so every complaint has our one-line format. */
    while ((c = getopt_long(argc, argv, ":l:t:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            app->listen = optarg;
            break;
        case 't':
            app->threads = (unsigned)app_opt_uint("--threads", optarg, 1, TERN_MAX_REACTORS);
            break;
        case OPT_REUSEPORT:
            app->reuseport = true;
            break;
        case OPT_BALANCE:
            app->balance = (tern_balance_policy)app_opt_choice("--balance", optarg, balance_names);
            break;
        case OPT_MAX_CONNECTIONS:
            app->max_connections =
                (unsigned)app_opt_uint("--max-connections", optarg, 0, 100000000);
            break;
        case OPT_IDLE_TIMEOUT:
            app->idle_timeout_ms =
                (uint32_t)app_opt_uint("--idle-timeout", optarg, 0, 24u * 3600 * 1000);
            break;
        case OPT_DRAIN:
            app->drain_ms = (uint32_t)app_opt_uint("--drain", optarg, 0, 3600u * 1000);
            break;
        case OPT_STATS_INTERVAL:
            app->stats_interval_s = (uint32_t)app_opt_uint("--stats-interval", optarg, 0, 86400);
            break;
        case OPT_LOG_LEVEL: {
            /* In the order of enum app_log_level. */
            static const char *const levels[] = {"debug", "info", "warn", "error", NULL};
            app_log_set_level((enum app_log_level)app_opt_choice("--log-level", optarg, levels));
            break;
        }
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf(PROGRAM " %s\n", tern_version_string());
            exit(0);
        default: /* '?' or ':' */
            app_opt_getopt_fail(c, argv);
        }
    }
    if (optind < argc) {
        app_opt_fail("unexpected argument '%s'", argv[optind]);
    }

    /* Check the address now, so a typo is reported before anything starts. */
    char host[256];
    uint16_t port;
    int rc = tern_parse_host_port(app->listen, host, sizeof(host), &port);
    if (rc == TERN_ENOBUFS) {
        app_opt_fail("--listen: host name too long in '%s'", app->listen);
    }
    if (rc < 0) {
        app_opt_fail("--listen: cannot parse '%s' (expected HOST:PORT, [IPV6]:PORT or :PORT)",
                     app->listen);
    }
}

/* "host:port" as it will be logged: the bound port (useful with port 0), IPv6 bracketed. */
static void bound_address(const struct app *app, tern_server *srv, char *out, size_t len)
{
    char host[256] = "";
    uint16_t port = 0;

    (void)tern_parse_host_port(app->listen, host, sizeof(host), &port);
    port = tern_server_port(srv);
    if (host[0] == '\0') {
        snprintf(out, len, "*:%u", (unsigned)port);
    } else if (strchr(host, ':') != NULL) {
        snprintf(out, len, "[%s]:%u", host, (unsigned)port);
    } else {
        snprintf(out, len, "%s:%u", host, (unsigned)port);
    }
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct app app = {
        .listen = DEFAULT_LISTEN,
        .balance = TERN_BALANCE_ROUND_ROBIN,
        .drain_ms = DEFAULT_DRAIN_MS,
    };
    tern_runtime_options ro;
    int exit_code = EXIT_FAILURE_RUNTIME;
    int rc;

    app_opt_set_program(PROGRAM);
    parse_args(&app, argc, argv);
    /* A peer that vanishes must cost an error code, never the process. */
    signal(SIGPIPE, SIG_IGN);

    tern_runtime_options_init(&ro);
    ro.reactors = app.threads;
    app.rt = tern_runtime_new(&ro);
    if (app.rt == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        return EXIT_FAILURE_RUNTIME;
    }
    tern_server *srv = tern_server_new(app.rt, NULL, on_incoming, &app);
    if (srv == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        goto out;
    }
    if ((rc = tern_server_set_reuseport(srv, app.reuseport)) < 0 ||
        (rc = tern_server_set_balance_policy(srv, app.balance)) < 0 ||
        (rc = tern_server_set_max_connections(srv, app.max_connections)) < 0 ||
        (rc = tern_server_set_idle_timeout(srv, app.idle_timeout_ms)) < 0) {
        app_log(APP_LOG_ERROR, "server setup failed", "err=%s", tern_err_name(rc));
        goto out;
    }
    if ((rc = tern_server_listen_address(srv, app.listen)) < 0) {
        /* The server's error string names the address ("listen 127.0.0.1:8443: ..."). */
        const char *why = tern_server_error_string(srv);
        if (why[0] != '\0') {
            fprintf(stderr, PROGRAM ": %s\n", why);
        } else {
            fprintf(stderr, PROGRAM ": cannot listen on %s: %s\n", app.listen, tern_strerror(rc));
        }
        exit_code = APP_EXIT_USAGE;
        goto out;
    }
    if ((rc = tern_runtime_stop_on_signals(app.rt, app.drain_ms, on_reload, &app)) < 0) {
        app_log(APP_LOG_ERROR, "cannot handle signals", "err=%s", tern_err_name(rc));
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &app.started);
    if ((rc = tern_runtime_start(app.rt)) < 0) {
        const char *why = tern_runtime_error_string(app.rt);
        fprintf(stderr, PROGRAM ": cannot start: %s\n", why[0] != '\0' ? why : tern_strerror(rc));
        exit_code = rc == TERN_EINVAL ? APP_EXIT_USAGE : EXIT_FAILURE_RUNTIME;
        goto out;
    }

    char addr[300];
    bound_address(&app, srv, addr, sizeof(addr));
    app_log(APP_LOG_INFO, "listening",
            "addr=%s threads=%u balance=%s reuseport=%s max_connections=%u idle_timeout_ms=%u "
            "drain_ms=%u version=%s",
            addr, tern_runtime_reactor_count(app.rt), balance_names[app.balance],
            app.reuseport ? "on" : "off", app.max_connections, (unsigned)app.idle_timeout_ms,
            (unsigned)app.drain_ms, tern_version_string());
    if (app.stats_interval_s > 0) {
        start_stats_reporter(&app);
    }

    rc = tern_runtime_join(app.rt); /* returns after SIGINT/SIGTERM and the drain */
    log_stats(&app, "stopped");
    exit_code = rc < 0 ? EXIT_FAILURE_RUNTIME : 0;

out:
    tern_actor_unref(app.stats_actor);
    tern_runtime_free(app.rt);
    return exit_code;
}

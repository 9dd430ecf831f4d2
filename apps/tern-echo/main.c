/* SPDX-License-Identifier: MIT */
/*
 * tern-echo: the smallest real server on libtern. It sends every byte back to its sender,
 * over TLS (--cert/--key), optionally after a plaintext STARTTLS exchange (--starttls), or
 * over plain TCP (--plain).
 *
 * TLS: main() builds one tern_ssl_config from the options before anything starts; every
 * failure (unreadable file, wrong passphrase, key not matching the certificate, unknown
 * cipher) is one line naming the option and the file, and exit code 2. The server shares
 * the configuration read-only with every reactor; each accepted socket starts its handshake
 * in `on_incoming`, and the echo runs on the decrypted bytes once `encrypted` fired.
 *
 * Threads: main() sets everything up, starts the runtime and waits in tern_runtime_join.
 * Connections live on the reactor threads; every callback below runs on the reactor that
 * owns its socket, so the per-connection code needs no locks. The optional stats reporter
 * is an actor on reactor 0 that owns a repeating timer there.
 *
 * Backpressure: a connection moves at most tern_socket_write_room bytes (write_buffer_size
 * minus bytes_to_write) from its read buffer to its write queue, and consumes only what the
 * write took. When the queue is full it stops and waits for `bytes_written`; meanwhile the
 * read buffer fills, the runtime stops reading from the kernel, and TCP flow control slows
 * the client down. Memory per connection stays bounded by the two buffer limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern.h>

#include "common/log.h"
#include "common/opts.h"
#include "common/setup.h"

#define PROGRAM "tern-echo"
#define DEFAULT_LISTEN "127.0.0.1:8443"
#define DEFAULT_DRAIN_MS 5000u
#define EXIT_FAILURE_RUNTIME 1
/* Bytes copied per step; the write room bounds each step as well. */
#define ECHO_CHUNK 16384
/* Largest certificate or chain file read into memory (to join --cert and --chain). */
#define MAX_PEM_FILE (1024 * 1024)
/* Longest passphrase in --key-pass-file, its newline excluded. */
#define MAX_PASSPHRASE 1023
#define MAX_PASSPHRASE_TEXT "1023"
/* Longest STARTTLS command line accepted, "\r\n" included. */
#define STARTTLS_LINE_MAX 64

struct app {
    /* options */
    const char *listen;
    unsigned threads; /* 0: online CPUs */
    bool reuseport;
    enum tern_balance_policy balance;
    unsigned max_connections;
    uint32_t idle_timeout_ms;
    uint32_t drain_ms;
    uint32_t stats_interval_s;
    /* TLS options (NULL / false: not given) */
    const char *cert;
    const char *key;
    const char *key_pass_file;
    const char *chain;
    const char *ciphers;
    const char *client_ca;
    const char *alpn;
    const char *ocsp_response;
    const char *ocsp_issuer;
    const char *ticket_keys_file;  /* shared ticket keys; else tern's own, rotated */
    uint32_t ticket_lifetime_s;
    unsigned session_tickets;      /* TLS 1.3 tickets per handshake */
    tern_ticket_keys *tickets;
    const char *tls_min_name; /* as given, for the log */
    enum tern_ssl_protocol tls_min;
    bool verify_client;
    bool starttls;
    bool plain;
    /* state */
    tern_ssl_config *ssl; /* NULL with --plain */
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
        size_t n = tern_socket_write_room(s);
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
        /* The address is gone once the descriptor is (a failed handshake): then no peer=. */
        char peer[72] = "";
        char addr[64];
        if (tern_socket_peer_address(s, addr, sizeof(addr)) == 0) {
            snprintf(peer, sizeof(peer), "peer=%s ", addr);
        }
        app_log(level, "connection error", "%serr=%s detail=%s", peer, tern_err_name(err),
                app_log_quote(detail, sizeof(detail), tern_socket_error_string(s)));
    }
}

static void echo_disconnected(tern_socket *s, int reason, void *user)
{
    app_log(APP_LOG_DEBUG, "disconnected", "reactor=%u reason=%s",
            tern_reactor_index(tern_socket_reactor(s)), tern_err_name(reason));
}

static const char *protocol_name(int protocol)
{
    switch (protocol) {
    case TERN_SSL_PROTOCOL_TLS1_2:
        return "TLSv1.2";
    case TERN_SSL_PROTOCOL_TLS1_3:
        return "TLSv1.3";
    default:
        return "unknown";
    }
}

/* The handshake completed: the echo starts (ready_read follows for bytes already there). */
static void echo_encrypted(tern_socket *s, void *user)
{
    if (app_log_enabled(APP_LOG_DEBUG)) {
        char peer[64];
        if (tern_socket_peer_address(s, peer, sizeof(peer)) < 0) {
            strcpy(peer, "?");
        }
        const char *group = tern_socket_session_group(s);
        app_log(APP_LOG_DEBUG, "encrypted", "peer=%s reactor=%u protocol=%s cipher=%s group=%s",
                peer, tern_reactor_index(tern_socket_reactor(s)),
                protocol_name(tern_socket_session_protocol(s)), tern_socket_session_cipher(s),
                group[0] != '\0' ? group : "none");
    }
}

/* The peer's FIN is handled by the runtime: once every byte was read, the socket closes
 * gracefully after its queue is sent (with TLS, close_notify first). An echo server needs
 * nothing more. Over TLS, ready_read sees decrypted bytes only, so the same pump serves. */
static const tern_socket_events echo_events = {
    .ready_read = echo_ready_read,
    .bytes_written = echo_bytes_written,
    .error = echo_error,
    .disconnected = echo_disconnected,
    .encrypted = echo_encrypted,
};

/* Starts the TLS handshake on a CONNECTED plaintext socket; the echo takes over. */
static void start_tls(tern_socket *s)
{
    tern_socket_set_events(s, &echo_events, tern_socket_user(s));
    int rc = tern_socket_start_server_encryption(s);
    if (rc < 0) {
        app_log(APP_LOG_WARN, "cannot start TLS", "err=%s", tern_err_name(rc));
        tern_socket_abort(s);
    }
}

/* ---- STARTTLS -------------------------------------------------------------------------- */

/*
 * With --starttls a connection starts in plaintext and must send one line, "STARTTLS"
 * (CRLF or LF). The server answers "OK\r\n" in plaintext, then the handshake starts. The
 * answer must reach the kernel before the first TLS record is queued, so the switch waits
 * until the write queue is empty: at once if the write went straight out, else in
 * `bytes_written`. Meanwhile the events table has no ready_read: bytes the client sends
 * early (its ClientHello) stay buffered and are handed to TLS by
 * tern_socket_start_server_encryption. Any other first line gets "ERR ..." and a close.
 * The phase is the events table itself, so no per-connection state is allocated.
 */
static void starttls_flushed(tern_socket *s, size_t n, void *user)
{
    if (tern_socket_bytes_to_write(s) == 0) {
        start_tls(s);
    }
}

static const tern_socket_events starttls_flush_events = {
    .bytes_written = starttls_flushed,
    .error = echo_error,
    .disconnected = echo_disconnected,
};

static void starttls_reply(tern_socket *s, const char *text)
{
    int rc = tern_socket_write(s, text, strlen(text));
    if (rc < 0 && rc != TERN_ENOTCONN) {
        app_log(APP_LOG_DEBUG, "STARTTLS: cannot reply", "err=%s", tern_err_name(rc));
        tern_socket_abort(s);
    }
}

static void starttls_line(tern_socket *s, void *user)
{
    char line[STARTTLS_LINE_MAX];

    ssize_t n = tern_socket_read_line(s, line, sizeof(line));
    if (n <= 0) {
        return; /* no whole line yet */
    }
    if (strcmp(line, "STARTTLS\r\n") != 0 && strcmp(line, "STARTTLS\n") != 0) {
        if (app_log_enabled(APP_LOG_DEBUG)) {
            char quoted[96];
            app_log(APP_LOG_DEBUG, "STARTTLS: unexpected line", "line=%s",
                    app_log_quote(quoted, sizeof(quoted), line));
        }
        starttls_reply(s, "ERR expected STARTTLS\r\n");
        tern_socket_close(s);
        return;
    }
    /* Switch tables before writing, so the write schedules `bytes_written`. */
    tern_socket_set_events(s, &starttls_flush_events, user);
    starttls_reply(s, "OK\r\n");
    if (tern_socket_state(s) == TERN_SOCKET_STATE_CONNECTED &&
        tern_socket_bytes_to_write(s) == 0) {
        start_tls(s);
    }
}

static const tern_socket_events starttls_events = {
    .ready_read = starttls_line,
    .error = echo_error,
    .disconnected = echo_disconnected,
};

/* Runs on the reactor that owns @p s. */
static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    struct app *app = user;

    if (app_log_enabled(APP_LOG_DEBUG)) {
        char peer[64];
        if (tern_socket_peer_address(s, peer, sizeof(peer)) < 0) {
            strcpy(peer, "?");
        }
        app_log(APP_LOG_DEBUG, "accepted", "peer=%s reactor=%u", peer,
                tern_reactor_index(tern_socket_reactor(s)));
    }
    if (app->ssl == NULL) {
        tern_socket_set_events(s, &echo_events, user); /* --plain */
    } else if (app->starttls) {
        tern_socket_set_events(s, &starttls_events, user);
    } else {
        tern_socket_set_events(s, &echo_events, user);
        start_tls(s);
    }
}

/* ---- stats --------------------------------------------------------------------------- */

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
    app_log(APP_LOG_INFO, msg, "uptime_s=%.1f heap_kib=%ld %s", app_seconds_since(&app->started),
            app_heap_in_use_kib(), text);
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

/* A server's configuration is frozen once it serves, and the API has no way yet to hand it
 * a new one: say so rather than pretend. */
static void on_reload(tern_runtime *rt, void *user)
{
    struct app *app = user;

    if (app->ssl == NULL) {
        app_log_msg(APP_LOG_INFO, "SIGHUP: nothing to reload (plaintext server)");
        return;
    }
    if (app->ticket_keys_file != NULL) {
        char err[512] = "", quoted[600];
        int rc = tern_ticket_keys_load_file(app->tickets, app->ticket_keys_file, err, sizeof(err));
        if (rc < 0) {
            app_log(APP_LOG_WARN, "SIGHUP: ticket key file refused; the keys in force stay",
                    "reason=%s", app_log_quote(quoted, sizeof(quoted), err));
        } else {
            app_log(APP_LOG_INFO, "SIGHUP: ticket keys reloaded", "count=%zu",
                    tern_ticket_keys_count(app->tickets));
        }
    }
    app_log_msg(APP_LOG_WARN,
                "SIGHUP: reloading the certificate is not supported yet; restart to load it");
}

/* ---- options ------------------------------------------------------------------------- */

/* Prints a ':'-separated list in the help's value column, wrapped at the separators. */
static void print_wrapped_list(FILE *out, const char *list)
{
    const size_t indent = 29, width = 80;
    size_t col = indent;

    fprintf(out, "%*s", (int)indent, "");
    while (*list != '\0') {
        size_t n = strcspn(list, ":");
        bool last = list[n] == '\0';
        if (col > indent && col + n + 1 > width) {
            fprintf(out, "\n%*s", (int)indent, "");
            col = indent;
        }
        fprintf(out, "%.*s%s", (int)n, list, last ? "" : ":");
        col += n + 1;
        list += last ? n : n + 1;
    }
    fputc('\n', out);
}

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --cert FILE --key FILE [OPTION]...\n"
            "  or:  " PROGRAM " --plain [OPTION]...\n"
            "An echo server on libtern: every byte a client sends comes back to it, over TLS\n"
            "(--cert and --key) or, with --plain, over plaintext TCP.\n"
            "\n"
            "TLS:\n"
            "      --cert FILE            the server certificate (PEM); the same file may\n"
            "                             hold its intermediate certificates after it\n"
            "      --key FILE             its private key (PEM, RSA or EC; may be encrypted)\n"
            "      --key-pass-file FILE   the passphrase of an encrypted --key: the file's\n"
            "                             content, one trailing newline removed\n"
            "      --chain FILE           intermediate certificates (PEM), sent after --cert\n"
            "      --tls-min VERSION      lowest TLS version accepted: 1.2 (default) or 1.3;\n"
            "                             the highest is 1.3\n"
            "      --client-ca FILE       CA certificates (PEM) for client certificates;\n"
            "                             alone, clients are asked for one but need not\n"
            "                             send it\n"
            "      --verify-client        require a client certificate that --client-ca\n"
            "                             verifies; otherwise the handshake fails\n"
            "      --starttls             start in plaintext: the client sends the line\n"
            "                             \"STARTTLS\", the server answers \"OK\", then TLS\n"
            "      --alpn LIST            ALPN protocols, comma-separated (the client's\n"
            "                             order decides among common ones)\n"
            "      --ocsp-response FILE   staple this DER OCSP response (with --ocsp-issuer:\n"
            "                             the certificate's issuer, PEM, to check it)\n"
            "      --ocsp-issuer FILE     the issuer of --cert, trusted to check the response\n"
            "      --ticket-keys FILE     seal session tickets with these keys (96 hex digits\n"
            "                             per line, the first seals; openssl rand -hex 48),\n"
            "                             shared with other servers; SIGHUP reloads it.\n"
            "                             Default: tern's own keys, rotated every lifetime/2\n"
            "      --ticket-lifetime S    how long a ticket resumes (default 7200)\n"
            "      --session-tickets N    TLS 1.3 tickets after each handshake (0..16,\n"
            "                             default 1; 0: no resumption by ticket)\n"
            "      --plain                serve plaintext TCP; no TLS option may be given\n"
            "      --ciphers LIST         cipher suites, ':'-separated (OpenSSL or IANA\n"
            "                             names, TLS 1.3 suites included); weak suites are\n"
            "                             refused. Default:\n");
    print_wrapped_list(out, tern_ssl_default_ciphers());
    fprintf(out,
            "\n"
            "Server:\n"
            "  -l, --listen HOST:PORT     address to listen on (default " DEFAULT_LISTEN ");\n"
            "                             also [IPV6]:PORT, :PORT or *:PORT for all IPv4\n"
            "  -t, --threads N            reactor threads, 1..%d (default: online CPUs)\n"
            "      --reuseport            one SO_REUSEPORT listener per reactor instead of\n"
            "                             the acceptor thread handing connections out\n"
            "      --balance POLICY       round-robin (default) or least-connections\n"
            "      --max-connections N    at most N open connections; 0: no limit (default)\n"
            "      --idle-timeout MS      close connections idle for MS ms; 0: never\n"
            "                             (default)\n"
            "      --drain MS             on SIGINT/SIGTERM, wait up to MS ms for connections\n"
            "                             to end before closing them (default %u)\n"
            "      --stats-interval S     log the counters every S seconds; 0: off (default)\n"
            "      --log-level LEVEL      debug, info (default), warn or error; debug logs\n"
            "                             each connection, with its TLS protocol, cipher\n"
            "                             and key-exchange group\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "Try it: " PROGRAM " --cert cert.pem --key key.pem, then\n"
            "  openssl s_client -connect 127.0.0.1:8443 -CAfile cert.pem -quiet\n"
            "and every line typed comes back.\n"
            "\n"
            "Logs go to stderr, one key=value line each. SIGINT or SIGTERM stops accepting,\n"
            "drains, prints the counters and exits 0; a second signal closes at once.\n"
            "Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on bad arguments,\n"
            "a certificate, key or other file that cannot be used, or an address that\n"
            "cannot be used.\n",
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
    OPT_CERT,
    OPT_KEY,
    OPT_KEY_PASS_FILE,
    OPT_CHAIN,
    OPT_TLS_MIN,
    OPT_CIPHERS,
    OPT_CLIENT_CA,
    OPT_VERIFY_CLIENT,
    OPT_STARTTLS,
    OPT_ALPN,
    OPT_OCSP_RESPONSE,
    OPT_TICKET_KEYS,
    OPT_TICKET_LIFETIME,
    OPT_SESSION_TICKETS,
    OPT_OCSP_ISSUER,
    OPT_PLAIN,
};

/* The TLS options that only make sense together; reported before any file is read. */
static void check_tls_options(const struct app *app)
{
    /* Each TLS-only option, for the "needs --cert and --key" complaints. */
    const struct {
        bool given;
        const char *name;
    } tls_only[] = {
        {app->cert != NULL, "--cert"},
        {app->key != NULL, "--key"},
        {app->key_pass_file != NULL, "--key-pass-file"},
        {app->chain != NULL, "--chain"},
        {app->tls_min_name != NULL, "--tls-min"},
        {app->ciphers != NULL, "--ciphers"},
        {app->client_ca != NULL, "--client-ca"},
        {app->verify_client, "--verify-client"},
        {app->starttls, "--starttls"},
        {app->alpn != NULL, "--alpn"},
        {app->ocsp_response != NULL, "--ocsp-response"},
        {app->ocsp_issuer != NULL, "--ocsp-issuer"},
        {app->ticket_keys_file != NULL, "--ticket-keys"},
    };

    if (app->plain) {
        for (size_t i = 0; i < sizeof(tls_only) / sizeof(tls_only[0]); i++) {
            if (tls_only[i].given) {
                app_opt_fail("--plain serves plaintext TCP: %s cannot be used with it",
                             tls_only[i].name);
            }
        }
        return;
    }
    if (app->cert == NULL && app->key == NULL) {
        app_opt_fail("--cert and --key are required (or --plain for plaintext TCP)");
    }
    if (app->cert == NULL) {
        app_opt_fail("--key needs --cert");
    }
    if (app->key == NULL) {
        app_opt_fail("--cert needs --key");
    }
    if ((app->ocsp_response == NULL) != (app->ocsp_issuer == NULL)) {
        app_opt_fail("--ocsp-response and --ocsp-issuer go together (the response is checked "
                     "against the certificate's issuer before it is stapled)");
    }
    if (app->verify_client && app->client_ca == NULL) {
        app_opt_fail("--verify-client needs --client-ca (the CAs that client certificates "
                     "must chain to)");
    }
}

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
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"key-pass-file", required_argument, NULL, OPT_KEY_PASS_FILE},
        {"chain", required_argument, NULL, OPT_CHAIN},
        {"tls-min", required_argument, NULL, OPT_TLS_MIN},
        {"ciphers", required_argument, NULL, OPT_CIPHERS},
        {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
        {"verify-client", no_argument, NULL, OPT_VERIFY_CLIENT},
        {"starttls", no_argument, NULL, OPT_STARTTLS},
        {"alpn", required_argument, NULL, OPT_ALPN},
        {"ocsp-response", required_argument, NULL, OPT_OCSP_RESPONSE},
        {"ticket-keys", required_argument, NULL, OPT_TICKET_KEYS},
        {"ticket-lifetime", required_argument, NULL, OPT_TICKET_LIFETIME},
        {"session-tickets", required_argument, NULL, OPT_SESSION_TICKETS},
        {"ocsp-issuer", required_argument, NULL, OPT_OCSP_ISSUER},
        {"plain", no_argument, NULL, OPT_PLAIN},
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
            app->balance =
                (enum tern_balance_policy)app_opt_choice("--balance", optarg, balance_names);
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
        case OPT_CERT:
            app->cert = optarg;
            break;
        case OPT_KEY:
            app->key = optarg;
            break;
        case OPT_KEY_PASS_FILE:
            app->key_pass_file = optarg;
            break;
        case OPT_CHAIN:
            app->chain = optarg;
            break;
        case OPT_TLS_MIN: {
            static const char *const versions[] = {"1.2", "1.3", NULL};
            static const enum tern_ssl_protocol protocols[] = {TERN_SSL_PROTOCOL_TLS1_2,
                                                               TERN_SSL_PROTOCOL_TLS1_3};
            app->tls_min = protocols[app_opt_choice("--tls-min", optarg, versions)];
            app->tls_min_name = optarg;
            break;
        }
        case OPT_CIPHERS:
            app->ciphers = optarg;
            break;
        case OPT_CLIENT_CA:
            app->client_ca = optarg;
            break;
        case OPT_VERIFY_CLIENT:
            app->verify_client = true;
            break;
        case OPT_STARTTLS:
            app->starttls = true;
            break;
        case OPT_ALPN:
            app->alpn = optarg;
            break;
        case OPT_OCSP_RESPONSE:
            app->ocsp_response = optarg;
            break;
        case OPT_TICKET_KEYS:
            app->ticket_keys_file = optarg;
            break;
        case OPT_TICKET_LIFETIME:
            app->ticket_lifetime_s = (uint32_t)app_opt_uint("--ticket-lifetime", optarg, 1, 604800);
            break;
        case OPT_SESSION_TICKETS:
            app->session_tickets = (unsigned)app_opt_uint("--session-tickets", optarg, 0, 16);
            break;
        case OPT_OCSP_ISSUER:
            app->ocsp_issuer = optarg;
            break;
        case OPT_PLAIN:
            app->plain = true;
            break;
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
    check_tls_options(app);

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

/* ---- TLS configuration ---------------------------------------------------------------- */

/*
 * Reads up to @p cap bytes of @p path into @p buf with read(2): no stdio buffer keeps a copy
 * (the passphrase goes through here). @return the length; -1 with errno set; -2 if the file
 * holds more than @p cap bytes.
 */
static ssize_t read_into(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t len = 0;

    if (fd < 0) {
        return -1;
    }
    for (;;) {
        char extra;
        ssize_t r = len < cap ? read(fd, buf + len, cap - len) : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0) {
            break;
        }
        if (len == cap) {
            close(fd);
            return -2;
        }
        len += (size_t)r;
    }
    close(fd);
    return (ssize_t)len;
}

/* A whole PEM file in memory (malloc'd, NUL-terminated), or a reported failure. */
static char *read_pem_file(const char *opt, const char *path, size_t *len)
{
    char *buf = malloc(MAX_PEM_FILE + 1);

    if (buf == NULL) {
        app_setup_fail(opt, path, "out of memory");
    }
    ssize_t n = read_into(path, buf, MAX_PEM_FILE);
    if (n == -2) {
        app_setup_fail(opt, path, "larger than 1 MiB: not a certificate file");
    }
    if (n < 0) {
        app_setup_fail(opt, path, strerror(errno));
    }
    buf[n] = '\0';
    if (strstr(buf, "-----BEGIN CERTIFICATE-----") == NULL) {
        app_setup_fail(opt, path, "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)");
    }
    *len = (size_t)n;
    return buf;
}

/* The certificate, then the intermediates of --chain: the API wants them in one PEM, the
 * leaf first. --cert alone is loaded first so that its problems are blamed on it. */
static void load_certificate(struct app *app)
{
    int rc = tern_ssl_config_set_local_certificate_file(app->ssl, app->cert, TERN_ENCODING_PEM);
    if (rc < 0) {
        app_config_fail(app->ssl, "--cert", app->cert, rc);
    }
    if (app->chain == NULL) {
        return;
    }
    size_t cert_len, chain_len;
    char *cert = read_pem_file("--cert", app->cert, &cert_len);
    char *chain = read_pem_file("--chain", app->chain, &chain_len);
    char *both = malloc(cert_len + 1 + chain_len);
    if (both == NULL) {
        app_setup_fail("--chain", app->chain, "out of memory");
    }
    size_t len = cert_len;
    memcpy(both, cert, cert_len);
    if (cert_len > 0 && cert[cert_len - 1] != '\n') {
        both[len++] = '\n';
    }
    memcpy(both + len, chain, chain_len);
    len += chain_len;
    rc = tern_ssl_config_set_local_certificate(app->ssl, both, len, TERN_ENCODING_PEM);
    if (rc < 0) {
        app_config_fail(app->ssl, "--chain", app->chain, rc);
    }
    free(both);
    free(chain);
    free(cert);
}

/*
 * Reads the passphrase into @p pass (MAX_PASSPHRASE + 2 bytes): the file's content without
 * one trailing "\n" or "\r\n". On failure @p pass is zeroed and the problem reported.
 */
static void read_passphrase(const char *path, char *pass)
{
    const char *why = NULL;
    ssize_t n = read_into(path, pass, MAX_PASSPHRASE + 1);

    if (n == -2) {
        why = "longer than " MAX_PASSPHRASE_TEXT " bytes: not a passphrase file";
    } else if (n < 0) {
        why = strerror(errno);
    } else {
        size_t len = (size_t)n;
        if (len > 0 && pass[len - 1] == '\n') {
            len--;
            if (len > 0 && pass[len - 1] == '\r') {
                len--;
            }
        }
        if (len > MAX_PASSPHRASE) {
            why = "longer than " MAX_PASSPHRASE_TEXT " bytes: not a passphrase file";
        } else if (len == 0) {
            why = "empty (expected the key's passphrase)";
        } else if (memchr(pass, '\0', len) != NULL) {
            why = "holds a NUL byte: not a passphrase file";
        }
        pass[len] = '\0';
    }
    if (why != NULL) {
        explicit_bzero(pass, MAX_PASSPHRASE + 2);
        app_setup_fail("--key-pass-file", path, why);
    }
}

/* Whether the PEM key at @p path looks encrypted (to suggest --key-pass-file). */
static bool key_looks_encrypted(const char *path)
{
    char head[512];
    ssize_t n = read_into(path, head, sizeof(head) - 1);
    bool enc = false;

    if (n == -2) {
        n = sizeof(head) - 1; /* the headers are at the start */
    }
    if (n > 0) {
        head[n] = '\0';
        enc = strstr(head, "ENCRYPTED") != NULL;
    }
    explicit_bzero(head, sizeof(head));
    return enc;
}

static void load_private_key(struct app *app)
{
    char pass[MAX_PASSPHRASE + 2];

    if (app->key_pass_file != NULL) {
        read_passphrase(app->key_pass_file, pass);
    }
    int rc = tern_ssl_config_set_private_key_file(app->ssl, app->key, TERN_ENCODING_PEM,
                                                  app->key_pass_file != NULL ? pass : NULL);
    explicit_bzero(pass, sizeof(pass));
    if (rc < 0) {
        if (app->key_pass_file == NULL && key_looks_encrypted(app->key)) {
            app_setup_fail("--key", app->key,
                       "the key is encrypted: give its passphrase with --key-pass-file");
        }
        app_config_fail(app->ssl, "--key", app->key, rc);
    }
}

/* Builds app->ssl from the options, or exits with one line saying what is wrong. */
static void build_ssl_config(struct app *app)
{
    int rc;

    app->ssl = tern_ssl_config_new();
    if (app->ssl == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_FAILURE_RUNTIME);
    }
    if (app->tls_min_name != NULL &&
        (rc = tern_ssl_config_set_protocol_range(app->ssl, app->tls_min,
                                                 TERN_SSL_PROTOCOL_TLS1_3)) < 0) {
        app_config_fail(app->ssl, "--tls-min", app->tls_min_name, rc);
    }
    if (app->ciphers != NULL && (rc = tern_ssl_config_set_ciphers(app->ssl, app->ciphers)) < 0) {
        app_config_fail(app->ssl, "--ciphers", app->ciphers, rc);
    }
    if (app->alpn != NULL && (rc = tern_ssl_config_set_alpn(app->ssl, app->alpn)) < 0) {
        app_config_fail(app->ssl, "--alpn", app->alpn, rc);
    }
    load_certificate(app);
    load_private_key(app);
    if (app->client_ca != NULL) {
        rc = tern_ssl_config_add_ca_certificates_file(app->ssl, app->client_ca,
                                                      TERN_ENCODING_PEM);
        if (rc < 0) {
            app_config_fail(app->ssl, "--client-ca", app->client_ca, rc);
        }
    }
    if (app->ocsp_issuer != NULL) {
        rc = tern_ssl_config_add_ca_certificates_file(app->ssl, app->ocsp_issuer,
                                                      TERN_ENCODING_PEM);
        if (rc < 0) {
            app_config_fail(app->ssl, "--ocsp-issuer", app->ocsp_issuer, rc);
        }
        rc = tern_ssl_config_set_ocsp_response_file(app->ssl, app->ocsp_response);
        if (rc < 0) {
            app_config_fail(app->ssl, "--ocsp-response", app->ocsp_response, rc);
        }
    }
    /* Session tickets: keys from the file (shared), or tern's own, rotated. */
    app->tickets = tern_ticket_keys_new(app->ticket_lifetime_s,
                                        app->ticket_keys_file != NULL ? TERN_TICKET_ROTATE_NEVER
                                                                      : 0);
    if (app->tickets == NULL) {
        fprintf(stderr, PROGRAM ": cannot make session ticket keys\n");
        exit(EXIT_FAILURE_RUNTIME);
    }
    if (app->ticket_keys_file != NULL) {
        char err[512] = "";
        rc = tern_ticket_keys_load_file(app->tickets, app->ticket_keys_file, err, sizeof(err));
        if (rc < 0) {
            fprintf(stderr, PROGRAM ": --ticket-keys: %s\n", err[0] != '\0' ? err : tern_strerror(rc));
            exit(APP_EXIT_USAGE);
        }
        if (err[0] != '\0') {
            char quoted[600];
            app_log(APP_LOG_WARN, "ticket key file permissions", "warning=%s",
                    app_log_quote(quoted, sizeof(quoted), err));
        }
    }
    if ((rc = tern_ssl_config_set_ticket_keys(app->ssl, app->tickets)) < 0 ||
        (rc = tern_ssl_config_set_session_tickets(app->ssl, app->session_tickets, true)) < 0) {
        app_config_fail(app->ssl, "--session-tickets", "", rc);
    }
    /* Without --client-ca there is nothing to check a client certificate against: do not
     * ask for one (the default, AUTO, would). */
    enum tern_verify_mode mode = app->client_ca == NULL ? TERN_VERIFY_NONE
                                 : app->verify_client   ? TERN_VERIFY_VERIFY_PEER
                                                        : TERN_VERIFY_QUERY_PEER;
    if ((rc = tern_ssl_config_set_peer_verify_mode(app->ssl, mode)) < 0) {
        const char *why = tern_ssl_config_error_string(app->ssl);
        fprintf(stderr, PROGRAM ": cannot set the client certificate mode: %s\n",
                why[0] != '\0' ? why : tern_strerror(rc));
        exit(APP_EXIT_USAGE);
    }
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct app app = {
        .listen = DEFAULT_LISTEN,
        .balance = TERN_BALANCE_ROUND_ROBIN,
        .drain_ms = DEFAULT_DRAIN_MS,
        .tls_min = TERN_SSL_PROTOCOL_TLS1_2,
        .session_tickets = 1,
    };
    tern_runtime_options ro;
    int exit_code = EXIT_FAILURE_RUNTIME;
    int rc;

    app_opt_set_program(PROGRAM);
    parse_args(&app, argc, argv);
    if (!app.plain) {
        build_ssl_config(&app); /* exits with a one-line reason on any problem */
    }
    /* A peer that vanishes must cost an error code, never the process. */
    signal(SIGPIPE, SIG_IGN);

    tern_runtime_options_init(&ro);
    ro.reactors = app.threads;
    app.rt = tern_runtime_new(&ro);
    if (app.rt == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        tern_ssl_config_unref(app.ssl);
        return EXIT_FAILURE_RUNTIME;
    }
    tern_server *srv = tern_server_new(app.rt, app.ssl, on_incoming, &app);
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
    app_bound_address(app.listen, srv, addr, sizeof(addr));
    char tls[160];
    if (app.ssl == NULL) {
        snprintf(tls, sizeof(tls), "off");
    } else {
        snprintf(tls, sizeof(tls), "%s tls_min=%s client_cert=%s wolfssl=%s",
                 app.starttls ? "starttls" : "on", app.tls_min_name ? app.tls_min_name : "1.2",
                 app.verify_client ? "required" : app.client_ca != NULL ? "optional" : "off",
                 tern_ssl_library_version_string());
    }
    app_log(APP_LOG_INFO, "listening",
            "addr=%s tls=%s threads=%u balance=%s reuseport=%s max_connections=%u "
            "idle_timeout_ms=%u drain_ms=%u version=%s",
            addr, tls, tern_runtime_reactor_count(app.rt), balance_names[app.balance],
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
    tern_ssl_config_unref(app.ssl); /* the server held its own reference */
    tern_ticket_keys_free(app.tickets);
    return exit_code;
}

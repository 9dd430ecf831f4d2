/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: a PSK IoT gateway on libtern. Devices connect over TLS with a pre-shared key
 * (TLS 1.3 external PSK or TLS 1.2 PSK suites; certificate suites too with --cert/--key);
 * each connection is forwarded as plaintext to a TCP backend (an MQTT broker, say).
 *
 * Identities come from a file of `identity:hexkey` lines (stunnel's PSKsecrets format),
 * loaded into a tern_psk_store: lookups are lock-free on the reactors, and SIGHUP reloads
 * the file on the signal thread; a broken file is refused (its line is logged) and the old
 * table stays in force.
 *
 * Threads: main() sets everything up, starts the runtime and waits in tern_runtime_join.
 * Connections live on the reactor threads (forward.c); the backend socket of a connection
 * is created on the reactor that owns the device socket, so each pair needs no locks.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

#include "common/log.h"
#include "common/opts.h"
#include "common/setup.h"
#include "common/tls_opts.h"
#include "forward.h"

#define PROGRAM "tern-gateway"
#define DEFAULT_LISTEN "127.0.0.1:8883"
#define DEFAULT_DRAIN_MS 5000u
#define DEFAULT_HANDSHAKE_TIMEOUT_S 10u
#define DEFAULT_WATCH_S 2u
#define BACKEND_CONNECT_TIMEOUT_MS 10000u
#define BUFFER_SIZE (256u * 1024u)
#define EXIT_FAILURE_RUNTIME 1

struct app {
    /* options */
    struct app_common_opts common; /* --listen, --threads */
    struct app_tls_opts tls;       /* --cert, --key, --key-pass-file, --chain, --tls-min, --ciphers */
    const char *psk_file;
    const char *backend;
    const char *psk_hint;
    unsigned auth_workers; /* 0: lookups inline on the reactors */
    bool close_removed;    /* after a reload, close connections of removed identities */
    uint32_t watch_s;      /* poll --psk-file for changes every watch_s seconds; 0: off */
    uint32_t handshake_timeout_s;
    uint32_t idle_timeout_s;
    uint32_t drain_ms;
    /* state */
    tern_ssl_config *ssl;
    tern_runtime *rt;
    struct timespec started;
    struct gw_config *gw; /* large (counters): on the heap */
    /* reloads come from the signal thread (SIGHUP) and the watcher thread: one at a time */
    pthread_mutex_t reload_lock;
    struct stat loaded; /* the file as last loaded (or refused) */
    pthread_t watcher;
    bool watcher_started;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    bool watch_quit;
};

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --psk-file FILE --backend HOST:PORT [OPTION]...\n"
            "A TLS-PSK gateway on libtern: devices connect over TLS with a pre-shared key\n"
            "(TLS 1.3 external PSK or TLS 1.2 PSK suites) and each connection is forwarded\n"
            "as plaintext to a TCP backend (an MQTT broker, for example).\n"
            "\n"
            "Identities:\n"
            "      --psk-file FILE        one 'identity:hexkey' per line (key 16..64 bytes as\n"
            "                             hex; '#' comments), ':sha384' after the key for a\n"
            "                             TLS 1.3 SHA-384 key; keep it mode 600. SIGHUP\n"
            "                             reloads it; a broken file is refused and the\n"
            "                             identities loaded before stay in force\n"
            "      --psk-hint TEXT        TLS 1.2 identity hint sent to devices (none by\n"
            "                             default)\n"
            "      --max-conn-per-identity N\n"
            "                             at most N open connections per identity; 0: no\n"
            "                             limit (default)\n"
            "      --watch S              reload --psk-file when it changed (checked every S\n"
            "                             seconds, once it stopped changing; default 2; 0:\n"
            "                             only on SIGHUP)\n"
            "      --close-removed        after a reload, close the connections of identities\n"
            "                             that are no longer in the file\n"
            "      --auth-workers N       look identities up on N threads of their own (0..256)\n"
            "                             instead of inline on the reactors (default 0: the\n"
            "                             table is in memory, a lookup never blocks)\n"
            "\n"
            "TLS:\n"
            "      --cert FILE            a certificate (PEM) for devices that do not use a\n"
            "                             PSK; needs --key\n"
            "      --key FILE             its private key (PEM, RSA or EC; may be encrypted)\n"
            "      --key-pass-file FILE   the passphrase of an encrypted --key: the file's\n"
            "                             content, one trailing newline removed\n"
            "      --chain FILE           intermediate certificates (PEM), sent after --cert\n"
            "      --tls-min VERSION      lowest TLS version accepted: 1.2 (default) or 1.3\n"
            "      --ciphers LIST         the suites to allow, ':'-separated, instead of the\n"
            "                             PSK default (TLS 1.3, ECDHE-PSK, DHE-PSK, then the\n"
            "                             plain PSK suites); e.g. TLS13-AES128-GCM-SHA256:\n"
            "                             ECDHE-PSK-CHACHA20-POLY1305 for forward secrecy only\n"
            "      --handshake-timeout S  drop devices that have not finished the handshake\n"
            "                             after S seconds (default %u; 0: never)\n"
            "\n"
            "Gateway:\n"
            "  -l, --listen HOST:PORT     address to listen on (default " DEFAULT_LISTEN ")\n"
            "  -b, --backend HOST:PORT    where to forward each connection (plaintext TCP);\n"
            "                             a name is resolved for each connection\n"
            "  -t, --threads N            reactor threads, 1..%d (default: online CPUs)\n"
            "      --proxy-protocol v2    start each backend connection with a PROXY v2\n"
            "                             header: the device's address, the TLS version and\n"
            "                             cipher, the PSK identity in TLV 0xE0\n"
            "      --idle-timeout S       close device connections idle for S seconds; 0:\n"
            "                             never (default)\n"
            "      --drain MS             on SIGINT/SIGTERM, wait up to MS ms for connections\n"
            "                             to end before closing them (default %u)\n"
            "      --log-level LEVEL      debug, info (default), warn or error\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "Try it: printf 'dev1:%%s\\n' $(openssl rand -hex 32) > ids; chmod 600 ids\n"
            "  " PROGRAM " --psk-file ids --backend 127.0.0.1:1883\n"
            "  openssl s_client -connect 127.0.0.1:8883 -psk HEXKEY -psk_identity dev1\n"
            "\n"
            "Logs go to stderr, one key=value line each; identities are logged, keys never.\n"
            "SIGHUP reloads --psk-file. SIGUSR1 logs the counters. SIGINT or SIGTERM stops\n"
            "accepting, drains, logs the counters and exits 0; a second signal closes at once.\n"
            "Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on bad arguments,\n"
            "an identity, certificate or key file that cannot be used, or an address that\n"
            "cannot be used.\n",
            DEFAULT_HANDSHAKE_TIMEOUT_S, TERN_MAX_REACTORS, DEFAULT_DRAIN_MS);
}

enum {
    OPT_PSK_FILE = 256,
    OPT_PSK_HINT,
    OPT_MAX_PER_IDENTITY,
    OPT_HANDSHAKE_TIMEOUT,
    OPT_IDLE_TIMEOUT,
    OPT_DRAIN,
    OPT_AUTH_WORKERS,
    OPT_PROXY_PROTOCOL,
    OPT_WATCH,
    OPT_CLOSE_REMOVED,
};

static void parse_args(struct app *app, int argc, char **argv)
{
    static const struct option longopts[] = {
        APP_COMMON_LONGOPTS,
        APP_TLS_LONGOPTS,
        {"backend", required_argument, NULL, 'b'},
        {"psk-file", required_argument, NULL, OPT_PSK_FILE},
        {"psk-hint", required_argument, NULL, OPT_PSK_HINT},
        {"max-conn-per-identity", required_argument, NULL, OPT_MAX_PER_IDENTITY},
        {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"auth-workers", required_argument, NULL, OPT_AUTH_WORKERS},
        {"watch", required_argument, NULL, OPT_WATCH},
        {"close-removed", no_argument, NULL, OPT_CLOSE_REMOVED},
        {"proxy-protocol", required_argument, NULL, OPT_PROXY_PROTOCOL},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = app_next_option(argc, argv, "b:", longopts, &app->common, &app->tls, usage)) !=
           -1) {
        switch (c) {
        case 'b':
            app->backend = optarg;
            break;
        case OPT_PSK_FILE:
            app->psk_file = optarg;
            break;
        case OPT_PSK_HINT:
            if (strlen(optarg) > 128) {
                app_opt_fail("--psk-hint: longer than 128 bytes");
            }
            app->psk_hint = optarg;
            break;
        case OPT_MAX_PER_IDENTITY:
            app->gw->max_conn_per_identity =
                (unsigned)app_opt_uint("--max-conn-per-identity", optarg, 0, 100000000);
            break;
        case OPT_AUTH_WORKERS:
            app->auth_workers = (unsigned)app_opt_uint("--auth-workers", optarg, 0, 256);
            app->gw->store_on_workers = app->auth_workers > 0;
            break;
        case OPT_WATCH:
            app->watch_s = (uint32_t)app_opt_uint("--watch", optarg, 0, 3600);
            break;
        case OPT_CLOSE_REMOVED:
            app->close_removed = true;
            break;
        case OPT_PROXY_PROTOCOL: {
            static const char *const versions[] = {"v2", NULL};
            (void)app_opt_choice("--proxy-protocol", optarg, versions);
            app->gw->proxy_v2 = true;
            break;
        }
        case OPT_HANDSHAKE_TIMEOUT:
            app->handshake_timeout_s =
                (uint32_t)app_opt_uint("--handshake-timeout", optarg, 0, 3600);
            break;
        case OPT_IDLE_TIMEOUT:
            app->idle_timeout_s = (uint32_t)app_opt_uint("--idle-timeout", optarg, 0, 7 * 86400);
            break;
        case OPT_DRAIN:
            app->drain_ms = (uint32_t)app_opt_uint("--drain", optarg, 0, 3600u * 1000);
            break;
        default:
            app_opt_getopt_fail(c, argv);
        }
    }
    if (optind < argc) {
        app_opt_fail("unexpected argument '%s'", argv[optind]);
    }
    if (app->psk_file == NULL) {
        app_opt_fail("--psk-file is required (the devices' identities and keys)");
    }
    if (app->backend == NULL) {
        app_opt_fail("--backend is required (HOST:PORT to forward connections to)");
    }
    app_tls_check(&app->tls);
    app_common_check_listen(&app->common);
    struct gw_config *gw = app->gw;
    int rc = tern_parse_host_port(app->backend, gw->backend_host, sizeof(gw->backend_host),
                              &gw->backend_port);
    if (rc < 0 || gw->backend_host[0] == '\0' || gw->backend_port == 0) {
        app_opt_fail("--backend: cannot parse '%s' (expected HOST:PORT or [IPV6]:PORT with a "
                     "host and a port other than 0)",
                     app->backend);
    }
    gw->backend = app->backend;
}

/* ---- setup ----------------------------------------------------------------------------- */

static void load_identities(struct app *app)
{
    char err[512] = "";

    app->gw->store = tern_psk_store_new();
    if (app->gw->store == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_FAILURE_RUNTIME);
    }
    int rc = tern_psk_store_load_file(app->gw->store, app->psk_file, err, sizeof(err));
    if (rc < 0) {
        /* err is "FILE:LINE: reason" or "FILE: reason" */
        fprintf(stderr, PROGRAM ": %s\n",
                err[0] != '\0' ? err : tern_strerror(rc));
        exit(rc == TERN_ENOMEM ? EXIT_FAILURE_RUNTIME : APP_EXIT_USAGE);
    }
    if (err[0] != '\0') {
        char quoted[600];
        app_log(APP_LOG_WARN, "psk file permissions", "warning=%s",
                app_log_quote(quoted, sizeof(quoted), err));
    }
    app_log(APP_LOG_INFO, "identities loaded", "count=%zu", tern_psk_store_count(app->gw->store));
    (void)stat(app->psk_file, &app->loaded);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reloads --psk-file (SIGHUP on the signal thread, or the watcher thread; never a reactor):
 * the store swaps its table only if the whole file is good; reactors keep looking up
 * without a lock meanwhile. */
static void reload(struct app *app, const char *why)
{
    char err[512] = "";
    char quoted[600];

    pthread_mutex_lock(&app->reload_lock);
    struct stat st;
    if (stat(app->psk_file, &st) == 0) {
        app->loaded = st; /* refused or not: this version was seen */
    }
    int rc = tern_psk_store_load_file(app->gw->store, app->psk_file, err, sizeof(err));
    if (rc < 0) {
        app_log(APP_LOG_WARN, "identity file refused; the previous identities stay",
                "trigger=%s err=%s reason=%s", why, tern_err_name(rc),
                app_log_quote(quoted, sizeof(quoted), err[0] != '\0' ? err : tern_strerror(rc)));
        pthread_mutex_unlock(&app->reload_lock);
        return;
    }
    if (err[0] != '\0') {
        app_log(APP_LOG_WARN, "psk file permissions", "warning=%s",
                app_log_quote(quoted, sizeof(quoted), err));
    }
    app_log(APP_LOG_INFO, "identities reloaded", "trigger=%s count=%zu", why,
            tern_psk_store_count(app->gw->store));
    if (app->close_removed) {
        gw_close_removed(app->rt, app->gw);
    }
    pthread_mutex_unlock(&app->reload_lock);
}

static void on_reload(tern_runtime *rt, void *user)
{
    reload(user, "SIGHUP");
}

/* The watcher: polls the file's identity (inode, size, mtime); a change is loaded once two
 * polls agree, so a file being written is not read half way. */
static void *watch_main(void *arg)
{
    struct app *app = arg;
    struct stat last, now;
    bool changed = false;

    memset(&last, 0, sizeof(last));
    pthread_mutex_lock(&app->watch_lock);
    while (!app->watch_quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += app->watch_s;
        pthread_cond_timedwait(&app->watch_cond, &app->watch_lock, &until);
        if (app->watch_quit) {
            break;
        }
        pthread_mutex_unlock(&app->watch_lock);
        if (stat(app->psk_file, &now) == 0) {
            pthread_mutex_lock(&app->reload_lock);
            bool differs = !same_file(&now, &app->loaded);
            pthread_mutex_unlock(&app->reload_lock);
            if (differs && changed && same_file(&now, &last)) {
                reload(app, "file-change");
                changed = false;
            } else {
                changed = differs;
            }
            last = now;
        }
        pthread_mutex_lock(&app->watch_lock);
    }
    pthread_mutex_unlock(&app->watch_lock);
    return NULL;
}

static void build_ssl_config(struct app *app)
{
    int rc;

    app->ssl = app_tls_config_new(&app->tls);
    /* The certificate first: enable_psk adds the certificate suites only when there is one. */
    app_tls_load_credentials(app->ssl, &app->tls);
    if ((rc = tern_ssl_config_enable_psk(app->ssl, app->psk_hint)) < 0) {
        const char *why = tern_ssl_config_error_string(app->ssl);
        fprintf(stderr, PROGRAM ": cannot enable PSK: %s\n",
                why[0] != '\0' ? why : tern_strerror(rc));
        exit(rc == TERN_E_UNSUPPORTED ? EXIT_FAILURE_RUNTIME : APP_EXIT_USAGE);
    }
    app_tls_apply_ciphers(app->ssl, &app->tls);
    if (app->auth_workers > 0 &&
        (rc = tern_ssl_config_set_psk_lookup(app->ssl, tern_psk_store_lookup_fn,
                                             app->gw->store)) < 0) {
        fprintf(stderr, PROGRAM ": PSK store setup failed: %s\n", tern_strerror(rc));
        exit(EXIT_FAILURE_RUNTIME);
    }
    if ((rc = tern_ssl_config_set_peer_verify_mode(app->ssl, TERN_VERIFY_NONE)) < 0 ||
        (rc = tern_ssl_config_set_handshake_timeout(app->ssl,
                                                    app->handshake_timeout_s * 1000u)) < 0) {
        const char *why = tern_ssl_config_error_string(app->ssl);
        fprintf(stderr, PROGRAM ": TLS setup failed: %s\n",
                why[0] != '\0' ? why : tern_strerror(rc));
        exit(EXIT_FAILURE_RUNTIME);
    }
}

/* ---- stats --------------------------------------------------------------------------- */

static void log_stats(struct app *app, const char *msg)
{
    tern_stats st;
    char text[2048];
    const struct gw_config *gw = app->gw;

    if (tern_runtime_stats(app->rt, &st) < 0) {
        return;
    }
    if (tern_stats_format(&st, TERN_STATS_TEXT, text, sizeof(text)) < 0) {
        return;
    }
    /* the outcomes first, then every runtime counter */
    app_log(APP_LOG_INFO, msg,
            "uptime_s=%.1f heap_kib=%ld handshakes_ok=%llu unknown_identity=%llu bad_key=%llu "
            "lookup_timeouts=%llu identity_limit=%llu backend_connects=%llu "
            "backend_errors=%llu %s",
            app_seconds_since(&app->started), app_heap_in_use_kib(), (unsigned long long)st.handshakes,
            (unsigned long long)st.psk_unknown, (unsigned long long)st.psk_bad_key,
            (unsigned long long)st.psk_timeouts,
            (unsigned long long)gw_counter_sum(gw, GW_IDENTITY_LIMIT),
            (unsigned long long)gw_counter_sum(gw, GW_BACKEND_CONNECTS),
            (unsigned long long)gw_counter_sum(gw, GW_BACKEND_ERRORS), text);
}

/* SIGUSR1, on the signal thread: the counters are readable from any thread. */
static void on_usr1(tern_runtime *rt, void *user)
{
    log_stats(user, "stats");
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct app app = {
        .common = {.listen = DEFAULT_LISTEN},
        .handshake_timeout_s = DEFAULT_HANDSHAKE_TIMEOUT_S,
        .drain_ms = DEFAULT_DRAIN_MS,
        .watch_s = DEFAULT_WATCH_S,
        .reload_lock = PTHREAD_MUTEX_INITIALIZER,
        .watch_lock = PTHREAD_MUTEX_INITIALIZER,
        .watch_cond = PTHREAD_COND_INITIALIZER,
    };
    tern_runtime_options ro;
    int exit_code = EXIT_FAILURE_RUNTIME;
    int rc;

    app_opt_set_program(PROGRAM);
    app.gw = calloc(1, sizeof(*app.gw));
    if (app.gw == NULL || gw_ident_limit_init() < 0) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILURE_RUNTIME;
    }
    app.gw->backend_connect_timeout_ms = BACKEND_CONNECT_TIMEOUT_MS;
    app.gw->buffer_size = BUFFER_SIZE;
    app_tls_opts_init(&app.tls);
    parse_args(&app, argc, argv);
    load_identities(&app); /* exits 2 with "FILE:LINE: reason" on a bad file */
    build_ssl_config(&app);
    signal(SIGPIPE, SIG_IGN);

    tern_runtime_options_init(&ro);
    ro.reactors = app.common.threads;
    ro.psk_workers = app.auth_workers;
    app.rt = tern_runtime_new(&ro);
    if (app.rt == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        goto out;
    }
    /* SIGUSR1 logs the counters (the signals are taken over when the server listens) */
    if ((rc = tern_runtime_on_usr1(app.rt, on_usr1, &app)) < 0) {
        app_log(APP_LOG_ERROR, "cannot handle signals", "err=%s", tern_err_name(rc));
        goto out;
    }
    tern_server *srv = tern_server_new(app.rt, app.ssl, gw_incoming, app.gw);
    if (srv == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        goto out;
    }
    char addr[300];
    exit_code = app_listen_and_start(app.rt, srv, app.idle_timeout_s * 1000u, app.common.listen,
                                     app.drain_ms, on_reload, &app, &app.started, addr,
                                     sizeof(addr));
    if (exit_code != 0) {
        goto out;
    }
    char hint[160];
    app_log(APP_LOG_INFO, "listening",
            "addr=%s backend=%s threads=%u auth_workers=%u proxy_protocol=%s tls_min=%s "
            "cert=%s psk_hint=%s identities=%zu max_conn_per_identity=%u "
            "handshake_timeout_s=%u idle_timeout_s=%u drain_ms=%u watch_s=%u close_removed=%s "
            "version=%s",
            addr, app.backend, tern_runtime_reactor_count(app.rt), app.auth_workers,
            app.gw->proxy_v2 ? "v2" : "off",
            app.tls.tls_min_name ? app.tls.tls_min_name : "1.2", app.tls.cert ? "on" : "off",
            app_log_quote(hint, sizeof(hint), app.psk_hint ? app.psk_hint : ""),
            tern_psk_store_count(app.gw->store), app.gw->max_conn_per_identity,
            (unsigned)app.handshake_timeout_s, (unsigned)app.idle_timeout_s,
            (unsigned)app.drain_ms, (unsigned)app.watch_s, app.close_removed ? "on" : "off",
            tern_version_string());

    if (app.watch_s > 0) {
        rc = pthread_create(&app.watcher, NULL, watch_main, &app);
        if (rc != 0) {
            app_log(APP_LOG_WARN, "cannot watch the identity file; SIGHUP reloads it",
                    "err=%s", strerror(rc));
        }
        app.watcher_started = rc == 0;
    }

    rc = tern_runtime_join(app.rt);
    if (app.watcher_started) {
        pthread_mutex_lock(&app.watch_lock);
        app.watch_quit = true;
        pthread_cond_signal(&app.watch_cond);
        pthread_mutex_unlock(&app.watch_lock);
        pthread_join(app.watcher, NULL);
    }
    log_stats(&app, "stopped");
    exit_code = rc < 0 ? EXIT_FAILURE_RUNTIME : 0;

out:
    tern_runtime_free(app.rt);
    tern_ssl_config_unref(app.ssl);
    tern_psk_store_free(app.gw->store);
    gw_ident_limit_destroy();
    free(app.gw);
    return exit_code;
}

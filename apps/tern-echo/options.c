/* SPDX-License-Identifier: MIT */
/*
 * tern-echo's command line: the help, the options (the shared ones through common/opts.h and
 * common/tls_opts.h, then tern-echo's own), the checks made before any file is read, and the
 * tern_ssl_config built from them. Every problem is one line naming the option (and the
 * file), and exit code 2. Runs on the main thread, before the runtime starts; the
 * configuration is built again, without exiting, on every SIGHUP (on the signal thread).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#include "common/conffile.h"
#include "common/redis.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/setup.h"
#include "common/tls_opts.h"
#include "echo.h"

const char *const echo_balance_names[] = {
    [TERN_BALANCE_ROUND_ROBIN] = "round-robin",
    [TERN_BALANCE_LEAST_CONNECTIONS] = "least-connections",
    NULL,
};

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
            "  or:  " PROGRAM " -c FILE [OPTION]...\n"
            "An echo server on libtern: every byte a client sends comes back to it, over TLS\n"
            "(--cert and --key) or, with --plain, over plaintext TCP.\n"
            "\n"
            "  -c, --config FILE          read options from FILE first: one 'key = value' a\n"
            "                             line, each key a long option below ('-' or '_'; a\n"
            "                             flag takes yes or no); the command line overrides it\n"
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
            "      --crl FILE             a CRL (PEM) of --client-ca's CA: the client\n"
            "                             certificates it lists are refused as revoked\n"
            "      --starttls             start in plaintext: the client sends the line\n"
            "                             \"STARTTLS\", the server answers \"OK\", then TLS\n"
            "      --alpn LIST            ALPN protocols, comma-separated (the client's\n"
            "                             order decides among common ones)\n"
            "      --ocsp-response FILE   staple this DER OCSP response (with --ocsp-issuer:\n"
            "                             the certificate's issuer, PEM, to check it)\n"
            "      --ocsp-issuer FILE     the issuer of --cert, trusted to check the response\n"
            "      --ticket-keys FILE|URL seal session tickets with these keys (96 hex digits\n"
            "                             per line, the first seals; openssl rand -hex 48),\n"
            "                             shared with other servers; SIGHUP reloads it.\n"
            "                             A redis:// or rediss:// URL: keys shared by a fleet\n"
            "                             through Redis, rotated every lifetime/2 by one\n"
            "                             server of the fleet.\n"
            "                             Default: tern's own keys, rotated every lifetime/2\n"
            "      --ticket-lifetime S    how long a ticket resumes (default 7200)\n"
            "      --session-tickets N    TLS 1.3 tickets after each handshake (0..16,\n"
            "                             default 1; 0: no resumption by ticket)\n"
            "      --session-cache        TLS 1.2 resumes by session ID: a server-side\n"
            "                             session cache (process-wide, locked) and no\n"
            "                             TLS 1.2 tickets\n"
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
            "      --admin HOST:PORT      serve /metrics (Prometheus), /healthz and\n"
            "                             /stats.json over plain HTTP on HOST:PORT, e.g.\n"
            "                             127.0.0.1:9100 (bound as given: keep it on\n"
            "                             loopback or a management network); off by default\n"
            "      --max-connections N    at most N open connections; 0: no limit (default)\n"
            "      --idle-timeout MS      close connections idle for MS ms; 0: never\n"
            "                             (default)\n"
            "      --hibernate-after S    after S seconds idle (decimals allowed, e.g. 0.2),\n"
            "                             free a connection's TLS state, keeping a sealed\n"
            "                             blob of a few hundred bytes; the next data wakes\n"
            "                             it. 0: never (default)\n"
            "      --drain MS             on SIGINT/SIGTERM, wait up to MS ms for connections\n"
            "                             to end before closing them (default %u)\n"
            "      --stats-interval S     log the counters every S seconds; 0: off (default)\n"
            "      --user USER            once listening, run as USER (and its groups);\n"
            "                             as root without --user a warning is logged\n"
            "      --group GROUP          with --user: run with GROUP instead of USER's\n"
            "                             primary group\n"
            "      --allow-root           keep root: allows --user root, silences the\n"
            "                             warning\n"
            "      --log-level LEVEL      debug, info (default), warn or error; debug logs\n"
            "                             each connection, with its TLS protocol, cipher\n"
            "                             and key-exchange group\n"
            "      --log-format FORMAT    text (key=value, default) or json (one object\n"
            "                             per line)\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "Try it: " PROGRAM " --cert cert.pem --key key.pem, then\n"
            "  openssl s_client -connect 127.0.0.1:8443 -CAfile cert.pem -quiet\n"
            "and every line typed comes back.\n"
            "\n"
            "Logs go to stderr, one key=value line each (a JSON object with --log-format\n"
            "json). SIGINT or SIGTERM stops accepting, drains, prints the counters and\n"
            "exits 0; a second signal closes at once. SIGHUP reads every TLS file again\n"
            "for the handshakes that follow (open connections go on; a file that cannot\n"
            "be used is logged and the configuration in force stays). Under systemd\n"
            "(Type=notify) it reports READY/RELOADING/STOPPING, feeds WatchdogSec= and\n"
            "takes a socket from a .socket unit (LISTEN_FDS) instead of --listen.\n"
            "Exit codes: 0 after a clean stop, 1 on a runtime failure, 2 on bad arguments,\n"
            "a certificate, key or other file that cannot be used, or an address that\n"
            "cannot be used.\n",
            TERN_MAX_REACTORS, DEFAULT_DRAIN_MS);
}

enum {
    OPT_REUSEPORT = 256,
    OPT_ADMIN,
    OPT_BALANCE,
    OPT_MAX_CONNECTIONS,
    OPT_IDLE_TIMEOUT,
    OPT_HIBERNATE_AFTER,
    OPT_DRAIN,
    OPT_STATS_INTERVAL,
    OPT_CLIENT_CA,
    OPT_VERIFY_CLIENT,
    OPT_STARTTLS,
    OPT_ALPN,
    OPT_OCSP_RESPONSE,
    OPT_TICKET_KEYS,
    OPT_TICKET_LIFETIME,
    OPT_SESSION_TICKETS,
    OPT_SESSION_CACHE,
    OPT_OCSP_ISSUER,
    OPT_PLAIN,
    OPT_CRL,
    OPT_USER,
    OPT_GROUP,
    OPT_ALLOW_ROOT,
};

/* The TLS options that only make sense together; reported before any file is read. */
static void check_tls_options(const struct app *app)
{
    /* Each TLS-only option, for the "needs --cert and --key" complaints. */
    const struct {
        bool given;
        const char *name;
    } tls_only[] = {
        {app->tls.cert != NULL, "--cert"},
        {app->tls.key != NULL, "--key"},
        {app->tls.key_pass_file != NULL, "--key-pass-file"},
        {app->tls.chain != NULL, "--chain"},
        {app->tls.tls_min_name != NULL, "--tls-min"},
        {app->tls.ciphers != NULL, "--ciphers"},
        {app->client_ca != NULL, "--client-ca"},
        {app->verify_client, "--verify-client"},
        {app->crl != NULL, "--crl"},
        {app->starttls, "--starttls"},
        {app->alpn != NULL, "--alpn"},
        {app->ocsp_response != NULL, "--ocsp-response"},
        {app->ocsp_issuer != NULL, "--ocsp-issuer"},
        {app->ticket_keys_file != NULL, "--ticket-keys"},
        {app->session_cache, "--session-cache"},
        {app->hibernate_after_ms > 0, "--hibernate-after"},
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
    if (app->tls.cert == NULL && app->tls.key == NULL) {
        app_opt_fail("--cert and --key are required (or --plain for plaintext TCP)");
    }
    app_tls_check(&app->tls);
    if ((app->ocsp_response == NULL) != (app->ocsp_issuer == NULL)) {
        app_opt_fail("--ocsp-response and --ocsp-issuer go together (the response is checked "
                     "against the certificate's issuer before it is stapled)");
    }
    if (app->crl != NULL && app->client_ca == NULL) {
        app_opt_fail("--crl needs --client-ca (the CA that issued the CRL must be trusted)");
    }
    if (app->verify_client && app->client_ca == NULL) {
        app_opt_fail("--verify-client needs --client-ca (the CAs that client certificates "
                     "must chain to)");
    }
}

void echo_parse_args(struct app *app, int argc, char **argv)
{
    static const struct option longopts[] = {
        APP_COMMON_LONGOPTS,
        APP_TLS_LONGOPTS,
        {"reuseport", no_argument, NULL, OPT_REUSEPORT},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"balance", required_argument, NULL, OPT_BALANCE},
        {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
        {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
        {"hibernate-after", required_argument, NULL, OPT_HIBERNATE_AFTER},
        {"drain", required_argument, NULL, OPT_DRAIN},
        {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
        {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
        {"verify-client", no_argument, NULL, OPT_VERIFY_CLIENT},
        {"starttls", no_argument, NULL, OPT_STARTTLS},
        {"alpn", required_argument, NULL, OPT_ALPN},
        {"ocsp-response", required_argument, NULL, OPT_OCSP_RESPONSE},
        {"ticket-keys", required_argument, NULL, OPT_TICKET_KEYS},
        {"ticket-lifetime", required_argument, NULL, OPT_TICKET_LIFETIME},
        {"session-tickets", required_argument, NULL, OPT_SESSION_TICKETS},
        {"session-cache", no_argument, NULL, OPT_SESSION_CACHE},
        {"ocsp-issuer", required_argument, NULL, OPT_OCSP_ISSUER},
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"crl", required_argument, NULL, OPT_CRL},
        {"user", required_argument, NULL, OPT_USER},
        {"group", required_argument, NULL, OPT_GROUP},
        {"allow-root", no_argument, NULL, OPT_ALLOW_ROOT},
        {NULL, 0, NULL, 0},
    };
    int c;

    app_conf_file_apply(&argc, &argv, longopts); /* -c FILE: its options go first */
    while ((c = app_next_option(argc, argv, "", longopts, &app->common, &app->tls, usage)) != -1) {
        switch (c) {
        case OPT_REUSEPORT:
            app->reuseport = true;
            break;
        case OPT_ADMIN:
            app->admin = optarg;
            break;
        case OPT_BALANCE:
            app->balance =
                (enum tern_balance_policy)app_opt_choice("--balance", optarg, echo_balance_names);
            break;
        case OPT_MAX_CONNECTIONS:
            app->max_connections =
                (unsigned)app_opt_uint("--max-connections", optarg, 0, 100000000);
            break;
        case OPT_IDLE_TIMEOUT:
            app->idle_timeout_ms =
                (uint32_t)app_opt_uint("--idle-timeout", optarg, 0, 24u * 3600 * 1000);
            break;
        case OPT_HIBERNATE_AFTER:
            app->hibernate_after_ms =
                (uint32_t)app_opt_seconds_ms("--hibernate-after", optarg, 86400u * 1000);
            break;
        case OPT_DRAIN:
            app->drain_ms = (uint32_t)app_opt_uint("--drain", optarg, 0, 3600u * 1000);
            break;
        case OPT_STATS_INTERVAL:
            app->stats_interval_s = (uint32_t)app_opt_uint("--stats-interval", optarg, 0, 86400);
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
        case OPT_SESSION_CACHE:
            app->session_cache = true;
            break;
        case OPT_OCSP_ISSUER:
            app->ocsp_issuer = optarg;
            break;
        case OPT_PLAIN:
            app->plain = true;
            break;
        case OPT_CRL:
            app->crl = optarg;
            break;
        case OPT_USER:
            app->user = optarg;
            break;
        case OPT_GROUP:
            app->group = optarg;
            break;
        case OPT_ALLOW_ROOT:
            app->allow_root = true;
            break;
        default: /* '?' or ':' */
            app_opt_getopt_fail(c, argv);
        }
    }
    if (optind < argc) {
        app_opt_fail("unexpected argument '%s'", argv[optind]);
    }
    check_tls_options(app);
    if (!app->plain && app->ticket_keys_file != NULL && rds_is_url(app->ticket_keys_file)) {
        struct rds_url url;
        char why[300];
        if (rds_url_parse(app->ticket_keys_file, &url, why, sizeof(why)) < 0) {
            app_opt_fail("--ticket-keys: %s", why);
        }
        explicit_bzero(&url, sizeof(url));
        app->ticket_keys_redis = true;
    }
    if (app->group != NULL && app->user == NULL) {
        app_opt_fail("--group needs --user (the user whose privileges the program takes)");
    }

    app_common_check_listen(&app->common);
}

/* ---- TLS configuration ---------------------------------------------------------------- */

/* The files: certificate, chain, key, client CAs, CRL, OCSP response, each read again. */
static int load_files(const struct app *app, tern_ssl_config *cfg, struct app_tls_error *err)
{
    int rc;

    if ((rc = app_tls_try_ciphers(cfg, &app->tls, err)) < 0) {
        return rc;
    }
    if (app->alpn != NULL && (rc = tern_ssl_config_set_alpn(cfg, app->alpn)) < 0) {
        return app_tls_error_config(err, cfg, "--alpn", app->alpn, rc);
    }
    if ((rc = app_tls_try_credentials(cfg, &app->tls, err)) < 0) {
        return rc;
    }
    if (app->client_ca != NULL &&
        (rc = tern_ssl_config_add_ca_certificates_file(cfg, app->client_ca, TERN_ENCODING_PEM)) <
            0) {
        return app_tls_error_config(err, cfg, "--client-ca", app->client_ca, rc);
    }
    if (app->crl != NULL &&
        (rc = tern_ssl_config_add_crl_file(cfg, app->crl, TERN_ENCODING_PEM)) < 0) {
        return app_tls_error_config(err, cfg, "--crl", app->crl, rc);
    }
    if (app->ocsp_issuer != NULL) {
        rc = tern_ssl_config_add_ca_certificates_file(cfg, app->ocsp_issuer, TERN_ENCODING_PEM);
        if (rc < 0) {
            return app_tls_error_config(err, cfg, "--ocsp-issuer", app->ocsp_issuer, rc);
        }
        rc = tern_ssl_config_set_ocsp_response_file(cfg, app->ocsp_response);
        if (rc < 0) {
            return app_tls_error_config(err, cfg, "--ocsp-response", app->ocsp_response, rc);
        }
    }
    return 0;
}

/* The first build makes the ticket key set: keys from the file (shared), or tern's own,
 * rotated. A reload loads the file into the same set itself, after the build. */
static int make_ticket_keys(struct app *app, struct app_tls_error *err)
{
    app->tickets = tern_ticket_keys_new(app->ticket_lifetime_s,
                                        app->ticket_keys_file != NULL ? TERN_TICKET_ROTATE_NEVER
                                                                      : 0);
    if (app->tickets == NULL) {
        app_tls_error_set(err, NULL, NULL, "cannot make session ticket keys");
        err->exit_code = EXIT_FAILURE_RUNTIME;
        return TERN_ENOMEM;
    }
    if (app->ticket_keys_file == NULL || app->ticket_keys_redis) {
        return 0; /* Redis: the fleet's keys arrive through main's fleet_tickets */
    }
    char why[512] = "";
    int rc = tern_ticket_keys_load_file(app->tickets, app->ticket_keys_file, why, sizeof(why));
    if (rc < 0) {
        app_tls_error_set(err, "--ticket-keys", NULL, why[0] != '\0' ? why : tern_strerror(rc));
        return rc;
    }
    if (why[0] != '\0') {
        char quoted[600];
        app_log(APP_LOG_WARN, "ticket key file permissions", "warning=%s",
                app_log_quote(quoted, sizeof(quoted), why));
    }
    return 0;
}

/* Resumption and client certificates: settings only, the same on every build. */
static int apply_sessions(const struct app *app, tern_ssl_config *cfg, struct app_tls_error *err)
{
    int rc;

    if ((rc = tern_ssl_config_set_ticket_keys(cfg, app->tickets)) < 0 ||
        (rc = tern_ssl_config_set_session_tickets(cfg, app->session_tickets,
                                                  !app->session_cache)) < 0) {
        return app_tls_error_config(err, cfg, "--session-tickets", "", rc);
    }
    if (app->session_cache && (rc = tern_ssl_config_set_session_cache(cfg, true)) < 0) {
        return app_tls_error_config(err, cfg, "--session-cache", "", rc);
    }
    /* Without --client-ca there is nothing to check a client certificate against: do not
     * ask for one (the default, AUTO, would). */
    enum tern_verify_mode mode = app->client_ca == NULL ? TERN_VERIFY_NONE
                                 : app->verify_client   ? TERN_VERIFY_VERIFY_PEER
                                                        : TERN_VERIFY_QUERY_PEER;
    if ((rc = tern_ssl_config_set_peer_verify_mode(cfg, mode)) < 0) {
        const char *why = tern_ssl_config_error_string(cfg);
        char msg[sizeof(err->why)];
        snprintf(msg, sizeof(msg), "cannot set the client certificate mode: %s",
                 why[0] != '\0' ? why : tern_strerror(rc));
        app_tls_error_set(err, NULL, NULL, msg);
        return rc;
    }
    return 0;
}

tern_ssl_config *echo_ssl_config_new(struct app *app, struct app_tls_error *err)
{
    tern_ssl_config *cfg = app_tls_try_config_new(&app->tls, err);
    if (cfg == NULL) {
        return NULL;
    }
    if (load_files(app, cfg, err) < 0 ||
        (app->tickets == NULL && make_ticket_keys(app, err) < 0) ||
        apply_sessions(app, cfg, err) < 0) {
        tern_ssl_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

void echo_build_ssl_config(struct app *app)
{
    struct app_tls_error err;

    app->ssl = echo_ssl_config_new(app, &err);
    if (app->ssl == NULL) {
        app_tls_error_exit(&err);
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: a PSK IoT gateway on libtern. Devices connect over TLS with a pre-shared key
 * (TLS 1.3 external PSK or TLS 1.2 PSK suites; certificate suites too with cert/key); each
 * connection is forwarded to a TCP backend (an MQTT broker, say), plaintext or TLS.
 *
 * The configuration is a file (`-c FILE`, INI: global keys, then one `[section]` per service)
 * and/or the command line (one service, "default"); the command line overrides the file
 * (conf.h). `-t` checks it all, every file it names included, and exits. Each service has its
 * listening addresses, identities, TLS settings, backends, routes and limits (forward.h).
 *
 * Reloads (SIGHUP, or a PSK file that changed, with `watch`): the whole configuration is read
 * again and every service's settings rebuilt from it; if anything is wrong, nothing changes and
 * the problem is logged with its line. Otherwise each service publishes its new settings: new
 * connections use them, live ones keep theirs.
 *
 * Threads: main() sets everything up, starts the runtime and waits in tern_runtime_join.
 * Connections live on the reactor threads (forward.c); reloads run on the signal thread or the
 * watcher thread, one at a time (reload_lock).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "common/admin.h"
#include "common/fleet_tickets.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/redis.h"
#include "common/service.h"
#include "common/setup.h"
#include "stores.h"

/* ---- options ------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " -c FILE [OPTION]...\n"
            "       " PROGRAM " --psk-file FILE --backend HOST:PORT [OPTION]...\n"
            "       " PROGRAM " -t -c FILE\n"
            "A TLS-PSK gateway on libtern: devices connect over TLS with a pre-shared key\n"
            "(TLS 1.3 external PSK or TLS 1.2 PSK suites) and each connection is forwarded\n"
            "to a TCP backend (an MQTT broker, for example), plaintext or TLS.\n"
            "\n"
            "Configuration:\n"
            "  -c, --config FILE          read FILE (INI: global keys, then one [section] per\n"
            "                             service; see tern-gateway.conf(5)); every option below\n"
            "                             is also a key of the same name ('-' or '_'), and an\n"
            "                             option given here overrides the file (service options\n"
            "                             only when the file has one service)\n"
            "  -t, --test                 check the configuration and every file it names, print\n"
            "                             'FILE: ok' or 'FILE:LINE: what is wrong', exit 0 or 2\n"
            "\n"
            "Identities:\n"
            "      --psk-file FILE        one 'identity:hexkey' per line (key 16..64 bytes as\n"
            "                             hex; '#' comments), ':sha384' after the key for a\n"
            "                             TLS 1.3 SHA-384 key; keep it mode 600\n"
            "      --psk-store URL        identities in Redis instead of a file (a fleet):\n"
            "                             redis://[USER:PASS@]HOST[:PORT][/DB] or rediss://\n"
            "                             (TLS; ?ca=FILE&password_file=FILE...); a hash per\n"
            "                             identity, tern:psk:ID key HEX [hash sha384]\n"
            "                             [disabled 1] [max_conn N] [backend HOST:PORT]\n"
            "      --psk-store-ttl S      cache known identities S seconds (default 300)\n"
            "      --psk-store-negative-ttl S\n"
            "                             cache unknown identities S seconds (default 5)\n"
            "      --psk-store-stale S    serve cached identities up to S seconds past their\n"
            "                             TTL while Redis is slow or down (default 3600)\n"
            "      --psk-store-cache-size N\n"
            "                             identities cached at most (default 1048576)\n"
            "      --psk-hint TEXT        TLS 1.2 identity hint sent to devices (none by\n"
            "                             default)\n"
            "      --max-conn-per-identity N\n"
            "                             at most N open connections per identity; 0: no\n"
            "                             limit (default)\n"
            "      --rate-per-identity R[/B]\n"
            "                             at most R handshake attempts per second per identity,\n"
            "                             B at once (default B: R); more are refused and counted\n"
            "      --rate-per-source R[/B]\n"
            "                             the same per source address\n"
            "      --metrics-identities LIST\n"
            "                             identities (or prefixes 'plant-a/*', globs) whose\n"
            "                             handshakes, connections and bytes /metrics shows,\n"
            "                             at most 64 (bounded cardinality)\n"
            "      --ticket-keys FILE|URL session ticket keys shared by a fleet (96 hex digits a\n"
            "                             line, the first seals; reloaded with the rest), or\n"
            "                             a redis:// URL: keys shared and rotated through\n"
            "                             Redis (a change of URL needs a restart); without\n"
            "                             it the process's own keys, rotated\n"
            "      --watch S              reload when a PSK file changed (checked every S\n"
            "                             seconds, once it stopped changing; default 2; 0:\n"
            "                             only on SIGHUP)\n"
            "      --close-removed        after a reload, close the connections of identities\n"
            "                             that are no longer in the file (with --psk-store:\n"
            "                             as soon as Redis says one was removed)\n"
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
            "      --tls-max VERSION      highest: 1.3 (default) or 1.2 (devices whose suites\n"
            "                             are TLS 1.2 only)\n"
            "      --ciphers LIST         the suites to allow, ':'-separated, instead of the\n"
            "                             PSK default (TLS 1.3, ECDHE-PSK, DHE-PSK, then the\n"
            "                             plain PSK suites)\n"
            "      --groups LIST          key exchange groups, ':'-separated (e.g. X25519:P-256)\n"
            "      --handshake-timeout S  drop devices that have not finished the handshake\n"
            "                             after S seconds (default 10; 0: never)\n"
            "\n"
            "Gateway:\n"
            "  -l, --listen HOST:PORT     address to listen on (default 127.0.0.1:8883); may be\n"
            "                             repeated or a comma-separated list\n"
            "  -b, --backend HOST:PORT    where to forward each connection; a comma-separated\n"
            "                             list (or repeated) for several\n"
            "      --backend-balance failover|round-robin\n"
            "                             several backends: the first that answers, in order\n"
            "                             (default), or each connection at the next one\n"
            "      --backend-connect-timeout S\n"
            "                             give up on a backend after S seconds (default 10)\n"
            "      --backend-tls          TLS to the backend (needs --backend-ca)\n"
            "      --backend-ca FILE      CA certificates (PEM) the backend's must chain to\n"
            "      --backend-verify-name NAME\n"
            "                             the name the backend's certificate must carry\n"
            "                             (default: the backend's host)\n"
            "      --backend-cert FILE, --backend-key FILE\n"
            "                             a client certificate for the backend\n"
            "      --route 'PATTERN -> HOST:PORT[,...]'\n"
            "                             identities matching PATTERN (a prefix 'plant-a/*' or\n"
            "                             a glob) go to these backends; repeatable; first match\n"
            "      --proxy-protocol v2    start each backend connection with a PROXY v2\n"
            "                             header: the device's address, the TLS version and\n"
            "                             cipher, the PSK identity in TLV 0xE0\n"
            "      --proxy-protocol-in off|v1|v2\n"
            "                             expect a PROXY header from a front load balancer\n"
            "      --idle-timeout S       close device connections idle for S seconds; 0:\n"
            "                             never (default)\n"
            "      --hibernate-after S    after S seconds idle (decimals allowed, e.g. 0.2),\n"
            "                             free a device connection's TLS state, keeping a\n"
            "                             sealed blob of a few hundred bytes; its next data\n"
            "                             wakes it. 0: never (default)\n"
            "      --threads N            reactor threads, 1..%d (default: online CPUs)\n"
            "      --reuseport            one SO_REUSEPORT listener per reactor (the kernel\n"
            "                             spreads connections) instead of an acceptor thread\n"
            "                             handing them out; also lets several gateways share\n"
            "                             a port\n"
            "      --drain MS             on SIGINT/SIGTERM, wait up to MS ms for connections\n"
            "                             to end before closing them (default 5000)\n"
            "      --admin HOST:PORT      serve GET /metrics, /healthz, /stats.json there\n"
            "                             (default off)\n"
            "      --user NAME, --group NAME\n"
            "                             drop to this user (and group) after binding\n"
            "      --allow-root           keep running as root after binding\n"
            "      --log-level LEVEL      debug, info (default), warn or error\n"
            "      --log-format FORMAT    text (key=value, default) or json\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "Try it: printf 'dev1:%%s\\n' $(openssl rand -hex 32) > ids; chmod 600 ids\n"
            "  " PROGRAM " --psk-file ids --backend 127.0.0.1:1883\n"
            "  openssl s_client -connect 127.0.0.1:8883 -psk HEXKEY -psk_identity dev1\n"
            "\n"
            "Logs go to stderr, one line each; identities are logged, keys never.\n"
            "SIGHUP reloads the configuration and every file it names (a broken one is refused\n"
            "and logged with its line; what was in force stays). SIGUSR1 logs the counters.\n"
            "SIGINT or SIGTERM stops accepting, drains, logs the counters and exits 0; a second\n"
            "signal closes at once.\n"
            "Exit codes: 0 after a clean stop (or a good -t), 1 on a runtime failure, 2 on a bad\n"
            "option, configuration, identity, certificate or key file, or an address that\n"
            "cannot be used.\n",
            TERN_MAX_REACTORS);
}

enum {
    OPT_CONFIG = 'c',
    OPT_KEY_BASE = 1000, /* + enum conf_key: the option of each configuration key */
};

/* The options named after the keys, generated from the key table; flags (no value) for the
 * booleans that were flags before. */
static struct option *build_longopts(void)
{
    static const struct option fixed[] = {
        APP_COMMON_LONGOPTS,
        {"config", required_argument, NULL, OPT_CONFIG},
        {"test", no_argument, NULL, 't'},
    };
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    struct option *o = calloc(nfixed + K_COUNT + 1, sizeof(*o));
    static char names[K_COUNT][64];

    if (o == NULL) {
        return NULL;
    }
    memcpy(o, fixed, sizeof(fixed));
    size_t n = nfixed;
    for (int k = 0; k < K_COUNT; k++) {
        snprintf(names[k], sizeof(names[k]), "%s", conf_key_name((enum conf_key)k));
        for (char *p = names[k]; *p != '\0'; p++) {
            *p = *p == '_' ? '-' : *p;
        }
        bool flag = k == K_CLOSE_REMOVED || k == K_ALLOW_ROOT || k == K_BACKEND_TLS ||
                    k == K_REUSEPORT;
        o[n++] = (struct option){names[k], flag ? no_argument : required_argument, NULL,
                                 OPT_KEY_BASE + k};
    }
    return o;
}

static void cli_set(struct app *app, enum conf_key k, const char *value)
{
    if (conf_set_cli(&app->cli, k, value, &app->cli_first[k]) < 0) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_FAILURE_RUNTIME);
    }
    app->cli_given[k] = true;
}

static void parse_args(struct app *app, int argc, char **argv)
{
    struct option *longopts = build_longopts();
    struct app_common_opts common = {0};
    int c, index;

    if (longopts == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_FAILURE_RUNTIME);
    }
    for (int k = 0; k < K_COUNT; k++) {
        app->cli_first[k] = true;
    }
    for (;;) {
        index = -1;
        c = getopt_long(argc, argv, ":c:tl:b:hV", longopts, &index);
        if (c == -1) {
            break;
        }
        const char *name = index >= 0 ? longopts[index].name : NULL;
        if (c == 't' && (name == NULL || strcmp(name, "test") == 0)) {
            app->test_only = true; /* -t is nginx's "test the configuration" here */
        } else if (c == 't') {
            cli_set(app, K_THREADS, optarg);
        } else if (c == 'l') {
            cli_set(app, K_LISTEN, optarg);
        } else if (c == 'b') {
            cli_set(app, K_BACKEND, optarg);
        } else if (c == OPT_CONFIG) {
            app->conf_path = optarg;
        } else if (c >= OPT_KEY_BASE && c < OPT_KEY_BASE + K_COUNT) {
            enum conf_key k = (enum conf_key)(c - OPT_KEY_BASE);
            cli_set(app, k, optarg != NULL ? optarg : "yes");
        } else if (c == '?' || c == ':') {
            app_opt_getopt_fail(c, argv);
        } else {
            if (c == APP_OPT_LOG_LEVEL) {
                app->cli_log_level = true;
            }
            if (c == APP_OPT_LOG_FORMAT) {
                app->cli_log_format = true;
            }
            if (!app_common_option(&common, c, optarg, usage)) {
                app_opt_getopt_fail('?', argv);
            }
        }
    }
    if (optind < argc) {
        app_opt_fail("unexpected argument '%s'", argv[optind]);
    }
    free(longopts);
    if (app->test_only && app->conf_path == NULL && !app->cli_given[K_PSK_FILE] &&
        !app->cli_given[K_PSK_STORE] && !app->cli_given[K_CERT]) {
        app_opt_fail("-t checks a configuration: give it with -c FILE (or the options)");
    }
    if (app->conf_path == NULL) {
        /* the command line alone: the historical required options, as before */
        if (!app->cli_given[K_PSK_FILE] && !app->cli_given[K_PSK_STORE] &&
            !app->cli_given[K_CERT]) {
            app_opt_fail("--psk-file (or --psk-store) is required (the devices' identities and "
                         "keys), or -c FILE");
        }
        if (!app->cli_given[K_BACKEND]) {
            app_opt_fail("--backend is required (HOST:PORT to forward connections to)");
        }
    }
}

/* ---- the configuration: file + command line -> plan ---------------------------------------- */

void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        gw_settings_release(p->svc[i].st);
    }
    free(p->svc);
    conf_free(&p->conf);
    memset(p, 0, sizeof(*p));
}

/* The file (or an empty one with a "default" service) with the command line over it. */
static int assemble(const struct app *app, struct conf *c, char *err, size_t len)
{
    if (app->conf_path != NULL) {
        if (conf_load(c, app->conf_path, err, len) < 0) {
            conf_free(c);
            return -1;
        }
    } else {
        memset(c, 0, sizeof(*c));
        if ((c->svc = calloc(1, sizeof(*c->svc))) == NULL) {
            snprintf(err, len, "out of memory");
            return -1;
        }
        c->n_svc = 1;
        snprintf(c->svc[0].name, sizeof(c->svc[0].name), "default");
    }
    for (int k = 0; k < K_COUNT; k++) {
        if (!app->cli_given[k]) {
            continue;
        }
        struct conf_section *to;
        if (conf_key_scope((enum conf_key)k) == CONF_GLOBAL) {
            to = &c->global;
        } else if (c->n_svc == 1) {
            to = &c->svc[0];
        } else {
            char opt[64];
            conf_where(c, (enum conf_key)k, NULL, opt, sizeof(opt));
            snprintf(err, len, "%s: the configuration has %zu services: set %s in their sections",
                     opt, c->n_svc, conf_key_name((enum conf_key)k));
            conf_free(c);
            return -1;
        }
        bool first = true;
        for (size_t i = 0; i < app->cli.keys[k].n; i++) {
            if (conf_set_cli(to, (enum conf_key)k, app->cli.keys[k].v[i].text, &first) < 0) {
                snprintf(err, len, "out of memory");
                conf_free(c);
                return -1;
            }
        }
    }
    return 0;
}

/* Appends one line to @p all (errors of several services, for -t and the reload log). */
void add_line(char *all, size_t len, const char *line)
{
    size_t used = strlen(all);
    snprintf(all + used, len - used, "%s%s", used > 0 ? "\n" : "", line);
}

/* Builds everything @p p's configuration says. @return 0; -1 with every problem found, one
 * per line, in @p err. Warnings (PSK files readable by others) are logged. */
int plan_build(const struct app *app, struct plan *p, tern_ticket_keys *tickets, char *err,
                      size_t len)
{
    char one[1024];
    int bad = 0;

    memset(p, 0, sizeof(*p));
    err[0] = '\0';
    if (assemble(app, &p->conf, err, len) < 0) {
        return -1;
    }
    if (gw_build_globals(&p->conf, &p->g, one, sizeof(one)) < 0) {
        add_line(err, len, one);
        bad++;
    } else {
        stores_set_cache(&p->g); /* for stores the services below open */
        if (tickets != NULL && app->fleet == NULL &&
            gw_load_ticket_keys(&p->conf, tickets, one, sizeof(one)) < 0) {
            /* the key file is checked first: a bad one leaves the keys in force untouched */
            add_line(err, len, one);
            bad++;
        }
    }
    if ((p->svc = calloc(p->conf.n_svc, sizeof(*p->svc))) == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    p->n = p->conf.n_svc;
    for (size_t i = 0; i < p->n; i++) {
        const struct conf_section *s = &p->conf.svc[i];
        char warn[600];
        struct plan_svc *ps = &p->svc[i];
        if ((ps->n_addrs = gw_build_listen(&p->conf, s, ps->addrs, one, sizeof(one))) < 0) {
            add_line(err, len, one);
            bad++;
            continue;
        }
        if (gw_build_settings(&p->conf, s, p->g.auth_workers, tickets, &ps->st, one, sizeof(one),
                              warn, sizeof(warn)) < 0) {
            add_line(err, len, one);
            bad++;
            continue;
        }
        if (warn[0] != '\0') {
            char quoted[700];
            app_log(APP_LOG_WARN, "psk file permissions", "service=%s warning=%s", s->name,
                    app_log_quote(quoted, sizeof(quoted), warn));
        }
        /* one address, one service */
        for (size_t j = 0; j < i; j++) {
            for (int a = 0; a < ps->n_addrs; a++) {
                for (int b = 0; b < p->svc[j].n_addrs; b++) {
                    size_t al = strlen(ps->addrs[a]);
                    bool any_port = al >= 2 && strcmp(ps->addrs[a] + al - 2, ":0") == 0;
                    if (!any_port && strcmp(ps->addrs[a], p->svc[j].addrs[b]) == 0) {
                        char where[300];
                        const struct conf_val *v = conf_get(s, K_LISTEN);
                        snprintf(one, sizeof(one), "%s: %s is also [%s]'s",
                                 conf_where(&p->conf, K_LISTEN, v, where, sizeof(where)),
                                 ps->addrs[a], p->conf.svc[j].name);
                        add_line(err, len, one);
                        bad++;
                    }
                }
            }
        }
    }
    return bad > 0 ? -1 : 0;
}

/*
 * ticket_keys = redis://...: the fleet thread and the keys it keeps in step with Redis (one
 * server of the fleet rotates every lifetime/2). Before the runtime, so the first handshake
 * seals with them; the fleet thread is the one the Redis identity stores use too (stores.c).
 * 0, or the exit code.
 */
static int start_fleet_tickets(struct app *app, const char *url)
{
    char err[300];

    if ((app->fleet_url = strdup(url)) == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILURE_RUNTIME;
    }
    if ((app->fleet_loop = gw_fleet_loop()) == NULL) {
        fprintf(stderr, PROGRAM ": cannot start the fleet thread\n");
        return EXIT_FAILURE_RUNTIME;
    }
    const struct fleet_tickets_options o = {
        .url = url,
        .loop = app->fleet_loop,
        .keys = app->tickets,
        .lifetime_s = tern_ticket_keys_lifetime(app->tickets),
        .rotate_s = 0, /* lifetime/2, as the process's own keys */
    };
    if ((app->fleet = fleet_tickets_new(&o, err, sizeof(err))) == NULL) {
        fprintf(stderr, PROGRAM ": ticket_keys: %s\n", err);
        return APP_EXIT_USAGE;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

/* -t: everything checked, nothing bound. */
static int test_config(struct app *app)
{
    static char err[65536];
    struct plan p;
    tern_ticket_keys *scratch = tern_ticket_keys_new(0, TERN_TICKET_ROTATE_NEVER);

    if (scratch == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILURE_RUNTIME;
    }
    int rc = plan_build(app, &p, scratch, err, sizeof(err));
    tern_ticket_keys_free(scratch);
    if (rc < 0) {
        fprintf(stderr, "%s\n", err);
        plan_free(&p);
        return APP_EXIT_USAGE;
    }
    size_t ids = 0;
    for (size_t i = 0; i < p.n; i++) {
        ids += identities_of(p.svc[i].st);
    }
    printf("%s: ok (%zu service%s, %zu identit%s)\n",
           app->conf_path != NULL ? app->conf_path : "command line", p.n, p.n == 1 ? "" : "s",
           ids, ids == 1 ? "y" : "ies");
    plan_free(&p);
    return 0;
}

int main(int argc, char **argv)
{
    static char err[65536];
    struct app app = {
        .reload_lock = PTHREAD_MUTEX_INITIALIZER,
        .watch_lock = PTHREAD_MUTEX_INITIALIZER,
        .watch_cond = PTHREAD_COND_INITIALIZER,
    };
    struct plan p;
    tern_runtime_options ro;
    int exit_code = EXIT_FAILURE_RUNTIME;
    int rc;

    app_opt_set_program(PROGRAM);
    parse_args(&app, argc, argv);
    if (app.test_only) {
        exit_code = test_config(&app);
        conf_section_free(&app.cli);
        return exit_code;
    }
    if (gw_ident_limit_init() < 0 ||
        (app.tickets = tern_ticket_keys_new(0, 0)) == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILURE_RUNTIME;
    }
    stores_init(&app);
    gw_build_set_store_opener(stores_open, &app);
    if (plan_build(&app, &p, app.tickets, err, sizeof(err)) < 0) {
        /* every problem, one line each: "FILE:LINE: ..." or "--option: ..." */
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            fprintf(stderr, PROGRAM ": %s\n", line);
        }
        plan_free(&p);
        conf_section_free(&app.cli);
        gw_ident_limit_destroy();
        stores_free();
        tern_ticket_keys_free(app.tickets);
        return APP_EXIT_USAGE;
    }
    app.g = p.g;
    snprintf(app.admin, sizeof(app.admin), "%s", p.g.admin != NULL ? p.g.admin : "");
    snprintf(app.user, sizeof(app.user), "%s", p.g.user != NULL ? p.g.user : "");
    snprintf(app.group, sizeof(app.group), "%s", p.g.group != NULL ? p.g.group : "");
    if (p.g.log_level >= 0 && !app.cli_log_level) {
        app_log_set_level((enum app_log_level)p.g.log_level);
    }
    if (p.g.log_format >= 0 && !app.cli_log_format) {
        app_log_set_format((enum app_log_format)p.g.log_format);
    }
    signal(SIGPIPE, SIG_IGN);
    if (p.g.ticket_keys != NULL && rds_is_url(p.g.ticket_keys) &&
        (exit_code = start_fleet_tickets(&app, p.g.ticket_keys)) != 0) {
        goto out;
    }
    exit_code = EXIT_FAILURE_RUNTIME;

    tern_runtime_options_init(&ro);
    ro.reactors = p.g.threads;
    ro.psk_workers = p.g.auth_workers;
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
    for (size_t i = 0; i < p.n; i++) {
        struct gw_service *svc = new_service(&app, p.conf.svc[i].name);
        if (svc == NULL) {
            app_log_msg(APP_LOG_ERROR, "out of memory");
            goto out;
        }
        assign_id_rows(&app, svc, p.svc[i].st);
        gw_service_publish(app.rt, svc, p.svc[i].st);
        p.svc[i].st = NULL;
        if ((exit_code = listen_service(&app, svc, p.svc[i].addrs, p.svc[i].n_addrs)) != 0) {
            goto out;
        }
    }
    if (app.admin[0] != '\0') {
        const struct app_admin_source src = {
            .metrics = gateway_metrics,
            .stats_json = gateway_stats_json,
            .health_detail = gateway_health_detail,
            .user = &app,
        };
        char aerr[512];
        if ((rc = app_admin_start(app.rt, app.admin, &src, &app.admin_state, aerr,
                                  sizeof(aerr))) < 0) {
            fprintf(stderr, PROGRAM ": admin %s: %s\n", app.admin, aerr);
            exit_code = rc == TERN_ENOMEM ? EXIT_FAILURE_RUNTIME : APP_EXIT_USAGE;
            goto out;
        }
    }
    exit_code = EXIT_FAILURE_RUNTIME;
    if ((rc = tern_runtime_stop_on_signals(app.rt, p.g.drain_ms, on_reload, &app)) < 0) {
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
    atomic_store_explicit(&app.rt_running, app.rt, memory_order_release);
    /* every listener is bound (reuseport ones by start): root is no longer needed */
    if (app_drop_privileges(app.user[0] != '\0' ? app.user : NULL,
                            app.group[0] != '\0' ? app.group : NULL, p.g.allow_root) < 0) {
        tern_runtime_stop(app.rt, 0);
        tern_runtime_join(app.rt);
        exit_code = APP_EXIT_USAGE;
        goto out;
    }
    if ((rc = app_service_watch_start(app.rt)) < 0) {
        app_log(APP_LOG_WARN, "systemd: no watch thread (no STOPPING=1, no watchdog pings)",
                "err=%s", tern_err_name(rc));
    }
    app.conf = p.conf;
    memset(&p.conf, 0, sizeof(p.conf));
    {
        struct gw_service *svc = app.services;
        for (size_t i = 0; i < p.n && svc != NULL; i++, svc = svc->next) {
            log_service(svc, "listening", NULL);
        }
    }
    if (app.admin_state != NULL) {
        app_log(APP_LOG_INFO, "admin listening", "addr=%s port=%u metrics=/metrics "
                "health=/healthz stats=/stats.json", app.admin, app_admin_port(app.admin_state));
    }
    app_log(APP_LOG_INFO, "started",
            "config=%s services=%zu threads=%u reuseport=%s auth_workers=%u drain_ms=%u "
            "watch_s=%u version=%s",
            app.conf_path != NULL ? app.conf_path : "command-line", p.n,
            tern_runtime_reactor_count(app.rt), p.g.reuseport ? "on" : "off",
            p.g.auth_workers, (unsigned)p.g.drain_ms,
            (unsigned)p.g.watch_s, tern_version_string());
    snprintf(app.status, sizeof(app.status), "%zu service%s, %u threads", p.n,
             p.n == 1 ? "" : "s", tern_runtime_reactor_count(app.rt));
    app_notify_ready(app.status);
    plan_free(&p);
    pthread_mutex_lock(&app.reload_lock);
    note_psk_files(&app);
    pthread_mutex_unlock(&app.reload_lock);

    if (app.g.watch_s > 0 && app.n_psk_files > 0) {
        rc = pthread_create(&app.watcher, NULL, watch_main, &app);
        if (rc != 0) {
            app_log(APP_LOG_WARN, "cannot watch the identity files; SIGHUP reloads them",
                    "err=%s", strerror(rc));
        }
        app.watcher_started = rc == 0;
    }

    rc = app_join(app.rt);
    if (app.watcher_started) {
        pthread_mutex_lock(&app.watch_lock);
        app.watch_quit = true;
        pthread_cond_signal(&app.watch_cond);
        pthread_mutex_unlock(&app.watch_lock);
        pthread_join(app.watcher, NULL);
    }
    drains_free(&app); /* no reload runs any more */
    log_stats(&app, "stopped");
    exit_code = rc < 0 ? EXIT_FAILURE_RUNTIME : 0;

out:
    plan_free(&p);
    atomic_store(&app.rt_running, NULL);
    stores_free(); /* answers the lookups still waiting, before the runtime goes */
    tern_runtime_free(app.rt);
    app_admin_free(app.admin_state);
    services_free(&app);
    conf_free(&app.conf);
    conf_section_free(&app.cli);
    gw_ident_limit_destroy();
    fleet_tickets_free(app.fleet);
    gw_fleet_loop_stop(); /* after every user of the fleet thread */
    free(app.fleet_url);
    tern_ticket_keys_free(app.tickets); /* after every configuration that used it */
    return exit_code;
}

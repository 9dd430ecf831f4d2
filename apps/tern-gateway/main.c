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
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <tern/tern.h>

#include "build.h"
#include "common/admin.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/service.h"
#include "common/setup.h"
#include "conf.h"
#include "forward.h"

#define PROGRAM "tern-gateway"
#define EXIT_FAILURE_RUNTIME 1
#define MAX_PSK_FILES 64

/* What one configuration builds into: checked as a whole before anything uses it. */
struct plan {
    struct conf conf;
    struct gw_globals g;
    size_t n;
    struct plan_svc {
        struct gw_settings *st;
        char addrs[GW_MAX_LISTEN][280];
        int n_addrs;
    } *svc;
};

struct app {
    /* the command line */
    const char *conf_path;        /* -c */
    bool test_only;               /* -t */
    struct conf_section cli;      /* the keys given as options (global and service alike) */
    bool cli_given[K_COUNT];
    bool cli_first[K_COUNT];      /* a repeatable option not seen yet */
    bool cli_log_level;           /* --log-level given: the file's log_level is not used */
    bool cli_log_format;          /* --log-format given: the file's log_format is not used */
    /* what runs */
    struct gw_globals g;          /* as started (changes need a restart) */
    char admin[280], user[64], group[64];
    tern_runtime *rt;
    tern_ticket_keys *tickets;    /* one set for the process: tickets resume across reloads */
    struct app_admin *admin_state;
    struct timespec started;
    struct gw_service *services;  /* append-only list, never freed before exit */
    struct conf conf;             /* the configuration in force */
    char status[256];             /* systemd's STATUS= line */
    /* reloads come from the signal thread (SIGHUP) and the watcher thread: one at a time */
    pthread_mutex_t reload_lock;
    _Atomic uint64_t reloads_ok, reloads_failed;
    _Atomic int64_t last_reload;  /* time(NULL) of the last reload, 0: none */
    char psk_files[MAX_PSK_FILES][256];
    struct stat psk_seen[MAX_PSK_FILES];
    size_t n_psk_files;
    pthread_t watcher;
    bool watcher_started;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    bool watch_quit;
    struct drain_job *drains;     /* removed services' armed drain timers: reactor 0's; the
                                   * joining thread's once the runtime stopped */
};

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
            "      --ticket-keys FILE     session ticket keys shared by a fleet (96 hex digits a\n"
            "                             line, the first seals; reloaded with the rest);\n"
            "                             without it the process's own keys, rotated\n"
            "      --watch S              reload when a PSK file changed (checked every S\n"
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
            "      --threads N            reactor threads, 1..%d (default: online CPUs)\n"
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
        bool flag = k == K_CLOSE_REMOVED || k == K_ALLOW_ROOT || k == K_BACKEND_TLS;
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
        !app->cli_given[K_CERT]) {
        app_opt_fail("-t checks a configuration: give it with -c FILE (or the options)");
    }
    if (app->conf_path == NULL) {
        /* the command line alone: the historical required options, as before */
        if (!app->cli_given[K_PSK_FILE] && !app->cli_given[K_CERT]) {
            app_opt_fail("--psk-file is required (the devices' identities and keys), or -c FILE");
        }
        if (!app->cli_given[K_BACKEND]) {
            app_opt_fail("--backend is required (HOST:PORT to forward connections to)");
        }
    }
}

/* ---- the configuration: file + command line -> plan ---------------------------------------- */

static void plan_free(struct plan *p)
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
static void add_line(char *all, size_t len, const char *line)
{
    size_t used = strlen(all);
    snprintf(all + used, len - used, "%s%s", used > 0 ? "\n" : "", line);
}

/* Builds everything @p p's configuration says. @return 0; -1 with every problem found, one
 * per line, in @p err. Warnings (PSK files readable by others) are logged. */
static int plan_build(const struct app *app, struct plan *p, tern_ticket_keys *tickets, char *err,
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
    } else if (tickets != NULL && gw_load_ticket_keys(&p->conf, tickets, one, sizeof(one)) < 0) {
        /* the key file is checked first: a bad one leaves the keys in force untouched */
        add_line(err, len, one);
        bad++;
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

/* ---- services ------------------------------------------------------------------------------ */

static struct gw_service *next_service(const struct gw_service *s)
{
    return __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
}

static struct gw_service *first_service(const struct app *app)
{
    return __atomic_load_n(&app->services, __ATOMIC_ACQUIRE);
}

static struct gw_service *find_service(struct app *app, const char *name)
{
    for (struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (!atomic_load(&s->draining) && strcmp(s->name, name) == 0) {
            return s;
        }
    }
    return NULL;
}

static struct gw_service *new_service(struct app *app, const char *name)
{
    struct gw_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL) {
        return NULL;
    }
    snprintf(svc->name, sizeof(svc->name), "%s", name);
    /* appended: readers (metrics) walk the list from other threads without a lock */
    struct gw_service **tail = &app->services;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    __atomic_store_n(tail, svc, __ATOMIC_RELEASE);
    return svc;
}

static void services_free(struct app *app)
{
    struct gw_service *s = app->services;
    while (s != NULL) {
        struct gw_service *next = s->next;
        gw_settings_release(atomic_load(&s->cur));
        free((void *)atomic_load(&s->id_counters));
        free(s);
        s = next;
    }
    app->services = NULL;
}

/* Creates a server of @p svc listening on @p addr (at start, a socket systemd passed for the
 * service, by its name or in order, instead: service.h). @return 0; -1 with the reason in
 * @p err. */
static int listen_one(struct app *app, struct gw_service *svc, const char *addr, bool at_start,
                      char *err, size_t len)
{
    if (svc->n_servers >= GW_MAX_LISTEN) {
        snprintf(err, len, "[%s] more than %d listeners", svc->name, GW_MAX_LISTEN);
        return -1;
    }
    tern_server *srv = tern_server_new(app->rt, NULL, gw_incoming, svc);
    if (srv == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    const char *fd_name = NULL;
    int fd = at_start ? app_listen_fd_take(svc->name, &fd_name) : -1;
    int rc = fd >= 0 ? tern_server_listen_fd(srv, fd) : tern_server_listen_address(srv, addr);
    if (rc < 0) {
        const char *why = tern_server_error_string(srv);
        snprintf(err, len, "[%s] %s", svc->name, why[0] != '\0' ? why : tern_strerror(rc));
        (void)tern_server_close(srv); /* freed with the runtime */
        return -1;
    }
    snprintf(svc->listen[svc->n_servers], sizeof(svc->listen[0]), "%s", addr);
    svc->servers[svc->n_servers++] = srv;
    if (fd >= 0) {
        app_log(APP_LOG_INFO, "listening on a socket from systemd", "service=%s fd=%d name=%s",
                svc->name, fd, fd_name != NULL ? fd_name : "");
    }
    return 0;
}

/* Makes @p svc listen on @p addrs. @return 0; 2 (exit code) with the reason on stderr. */
static int listen_service(struct app *app, struct gw_service *svc, char addrs[][280], int n)
{
    char err[600];
    for (int i = 0; i < n; i++) {
        if (listen_one(app, svc, addrs[i], true, err, sizeof(err)) < 0) {
            fprintf(stderr, PROGRAM ": %s\n", err);
            return APP_EXIT_USAGE;
        }
    }
    return 0;
}

/* Stops @p svc's listener @p i (the others move down). */
static void close_listener(struct gw_service *svc, size_t i)
{
    int rc = tern_server_close(svc->servers[i]);
    if (rc < 0) {
        app_log(APP_LOG_WARN, "cannot close a listener", "service=%s addr=%s err=%s", svc->name,
                svc->listen[i], tern_err_name(rc));
    }
    for (size_t j = i + 1; j < svc->n_servers; j++) {
        svc->servers[j - 1] = svc->servers[j];
        memcpy(svc->listen[j - 1], svc->listen[j], sizeof(svc->listen[0]));
    }
    svc->n_servers--;
}

/* Gives each metrics_identities entry of @p st its row in @p svc's table (the same name keeps
 * its row across reloads; at most GW_MAX_ID_METRICS rows ever, further names are not counted)
 * and allocates the counters the first time. Before @p st is published. */
static void assign_id_rows(struct app *app, struct gw_service *svc, struct gw_settings *st)
{
    if (st->n_id_metrics == 0) {
        return;
    }
    if (atomic_load(&svc->id_counters) == NULL) {
        /* a row per possible reactor (512 KiB, only with metrics_identities): the reactor
         * count is not settled before the runtime starts */
        void *t = calloc(TERN_MAX_REACTORS, GW_MAX_ID_METRICS * GW_ID_COUNTERS * sizeof(uint64_t));
        if (t == NULL) {
            app_log(APP_LOG_WARN, "out of memory: no per-identity metrics", "service=%s",
                    svc->name);
            return; /* the rows stay unassigned: nothing is counted */
        }
        atomic_store_explicit(&svc->id_counters, t, memory_order_release);
    }
    for (size_t i = 0; i < st->n_id_metrics; i++) {
        unsigned n = atomic_load(&svc->n_id_names), row = n;
        for (unsigned r = 0; r < n; r++) {
            if (strcmp(svc->id_names[r], st->id_metrics[i].pattern) == 0) {
                row = r;
                break;
            }
        }
        if (row == n && n >= GW_MAX_ID_METRICS) {
            app_log(APP_LOG_WARN, "per-identity metrics full: not counted", "service=%s limit=%d",
                    svc->name, GW_MAX_ID_METRICS);
            continue;
        }
        if (row == n) {
            snprintf(svc->id_names[n], sizeof(svc->id_names[n]), "%s", st->id_metrics[i].pattern);
            atomic_store_explicit(&svc->n_id_names, n + 1, memory_order_release);
        }
        st->id_metrics[i].slot = row;
    }
}

static size_t identities_of(const struct gw_settings *st)
{
    return st->store != NULL ? tern_psk_store_count(st->store) : 0;
}

static void log_service(struct gw_service *svc, const char *msg, const char *why)
{
    const struct gw_settings *st = atomic_load(&svc->cur);
    char list[GW_MAX_LISTEN * 64] = "";
    char backends[1024] = "";

    for (size_t i = 0; i < svc->n_servers; i++) {
        char one[300];
        app_bound_address(svc->listen[i], svc->servers[i], one, sizeof(one));
        add_line(list, sizeof(list), one);
    }
    for (char *p = list; *p != '\0'; p++) {
        *p = *p == '\n' ? ',' : *p;
    }
    for (size_t i = 0; i < st->backends.n; i++) {
        size_t used = strlen(backends);
        snprintf(backends + used, sizeof(backends) - used, "%s%s", i > 0 ? "," : "",
                 st->backends.v[i].text);
    }
    app_log(APP_LOG_INFO, msg,
            "%s%s%sservice=%s addr=%s backend=%s balance=%s backend_tls=%s routes=%zu "
            "proxy_protocol=%s proxy_protocol_in=%s cert=%s identities=%zu "
            "max_conn_per_identity=%u handshake_timeout_s=%u idle_timeout_s=%u",
            why != NULL ? "trigger=" : "", why != NULL ? why : "", why != NULL ? " " : "", svc->name, list, backends,
            st->balance == GW_BALANCE_ROUND_ROBIN ? "round-robin" : "failover",
            st->backend_ssl != NULL ? "on" : "off", st->n_routes, st->proxy_v2 ? "v2" : "off",
            st->proxy_in == GW_PROXY_IN_V1 ? "v1" : st->proxy_in == GW_PROXY_IN_V2 ? "v2" : "off",
            st->has_cert ? "on" : "off", identities_of(st),
            st->max_conn_per_identity, (unsigned)(st->handshake_timeout_ms / 1000),
            (unsigned)(st->idle_timeout_ms / 1000));
}

/* The PSK files to watch: those of the configuration in force. */
static void note_psk_files(struct app *app)
{
    app->n_psk_files = 0;
    for (size_t i = 0; i < app->conf.n_svc && app->n_psk_files < MAX_PSK_FILES; i++) {
        const struct conf_val *v = conf_get(&app->conf.svc[i], K_PSK_FILE);
        if (v == NULL) {
            continue;
        }
        size_t k = app->n_psk_files++;
        snprintf(app->psk_files[k], sizeof(app->psk_files[k]), "%s", v->text);
        if (stat(v->text, &app->psk_seen[k]) < 0) {
            memset(&app->psk_seen[k], 0, sizeof(app->psk_seen[k]));
        }
    }
}

/* ---- reload ---------------------------------------------------------------------------------- */

/* A removed service's connections end after the drain time: a one-shot timer on reactor 0.
 * Armed jobs are listed in app->drains (reactor 0 only), so that the timers of a runtime
 * stopped before they fired are freed after the join (drains_free). */
struct drain_job {
    tern_runtime *rt;
    struct gw_service *svc;
    uint32_t ms;
    tern_timer *timer;
    struct drain_job **head; /* &app->drains */
    struct drain_job *next;
};

static void drain_fire(tern_timer *t, void *user)
{
    struct drain_job *j = user;
    for (struct drain_job **p = j->head; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    gw_close_all(j->rt, j->svc);
    tern_timer_free(t);
    free(j);
}

static void drain_arm(tern_reactor *r, void *arg)
{
    struct drain_job *j = arg;
    if (r == NULL) {
        free(j); /* the runtime stopped: its own drain closes everything */
        return;
    }
    j->timer = tern_timer_new(r, drain_fire, j);
    if (j->timer == NULL || tern_timer_start(j->timer, j->ms, 0) < 0) {
        tern_timer_free(j->timer);
        gw_close_all(j->rt, j->svc);
        free(j);
        return;
    }
    j->next = *j->head;
    *j->head = j;
}

/* After the runtime was joined: the drain timers that never fired. */
static void drains_free(struct app *app)
{
    while (app->drains != NULL) {
        struct drain_job *j = app->drains;
        app->drains = j->next;
        tern_timer_free(j->timer);
        free(j);
    }
}

static void remove_service(struct app *app, struct gw_service *svc, const char *why)
{
    atomic_store(&svc->draining, true);
    while (svc->n_servers > 0) {
        close_listener(svc, svc->n_servers - 1);
    }
    uint64_t open = gw_open_connections(svc);
    app_log(APP_LOG_INFO, "service removed: not accepting; its connections drain",
            "trigger=%s service=%s open=%llu drain_ms=%u", why, svc->name,
            (unsigned long long)open, (unsigned)app->g.drain_ms);
    struct drain_job *j = malloc(sizeof(*j));
    if (j != NULL) {
        *j = (struct drain_job){.rt = app->rt, .svc = svc, .ms = app->g.drain_ms,
                                .head = &app->drains};
        if (tern_reactor_post(tern_runtime_reactor(app->rt, 0), drain_arm, j) == 0) {
            return;
        }
        free(j);
    }
    gw_close_all(app->rt, svc);
}

/* Makes @p svc listen on exactly @p addrs: listeners of addresses that stay are kept (no
 * connection in their backlog is lost), the others closed, new ones opened. @return the
 * number of listeners that could not be opened (logged). */
static int relisten(struct app *app, struct gw_service *svc, char addrs[][280], int n,
                    const char *why)
{
    int failed = 0;
    for (size_t i = svc->n_servers; i-- > 0;) {
        bool keep = false;
        for (int k = 0; k < n && !keep; k++) {
            keep = strcmp(svc->listen[i], addrs[k]) == 0;
        }
        if (!keep) {
            app_log(APP_LOG_INFO, "listener closed", "trigger=%s service=%s addr=%s", why,
                    svc->name, svc->listen[i]);
            close_listener(svc, i);
        }
    }
    for (int k = 0; k < n; k++) {
        bool have = false;
        for (size_t i = 0; i < svc->n_servers && !have; i++) {
            have = strcmp(svc->listen[i], addrs[k]) == 0;
        }
        char err[600], quoted[700];
        if (have) {
            continue;
        }
        if (listen_one(app, svc, addrs[k], false, err, sizeof(err)) < 0) {
            app_log(APP_LOG_ERROR, "cannot listen", "trigger=%s service=%s addr=%s reason=%s",
                    why, svc->name, addrs[k], app_log_quote(quoted, sizeof(quoted), err));
            failed++;
            continue;
        }
        char bound[300];
        app_bound_address(addrs[k], svc->servers[svc->n_servers - 1], bound, sizeof(bound));
        app_log(APP_LOG_INFO, "listener opened", "trigger=%s service=%s addr=%s", why, svc->name,
                bound);
    }
    return failed;
}

static void reload(struct app *app, const char *why)
{
    static char err[16384];
    struct plan p;

    pthread_mutex_lock(&app->reload_lock);
    atomic_store(&app->last_reload, (int64_t)time(NULL));
    if (plan_build(app, &p, app->tickets, err, sizeof(err)) < 0) {
        char quoted[2048];
        atomic_fetch_add(&app->reloads_failed, 1);
        /* one line per problem, each with its line */
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            app_log(APP_LOG_WARN, "configuration refused; the settings in force stay",
                    "trigger=%s reason=%s", why, app_log_quote(quoted, sizeof(quoted), line));
        }
        plan_free(&p);
        note_psk_files(app); /* this version of the files was seen */
        pthread_mutex_unlock(&app->reload_lock);
        return;
    }
    /* what cannot change while running */
    if (p.g.threads != app->g.threads || p.g.auth_workers != app->g.auth_workers ||
        (p.g.admin == NULL) != (app->admin[0] == '\0') ||
        (p.g.admin != NULL && strcmp(p.g.admin, app->admin) != 0) ||
        (p.g.user == NULL) != (app->user[0] == '\0') ||
        (p.g.user != NULL && strcmp(p.g.user, app->user) != 0)) {
        app_log(APP_LOG_WARN, "threads, auth_workers, admin and user take effect at a restart",
                "trigger=%s", why);
    }
    if (p.g.log_level >= 0 && !app->cli_log_level) {
        app_log_set_level((enum app_log_level)p.g.log_level);
    }
    app->g.drain_ms = p.g.drain_ms;
    /* removed services first: a new service may take over their addresses */
    size_t removed = 0, added = 0, listen_failed = 0;
    for (struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        bool found = false;
        for (size_t i = 0; i < p.n && !found; i++) {
            found = strcmp(p.conf.svc[i].name, s->name) == 0;
        }
        if (!found && !atomic_load(&s->draining)) {
            remove_service(app, s, why);
            removed++;
        }
    }
    /* then addresses given up by services that stay, so that another may take them; noted,
     * to be listened on again by a service that then cannot listen where it moves */
    struct given_up {
        struct gw_service *svc;
        char addr[280];
    } *gone = calloc(p.n * GW_MAX_LISTEN, sizeof(*gone));
    size_t n_gone = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct gw_service *svc = find_service(app, p.conf.svc[i].name);
        for (size_t j = svc != NULL ? svc->n_servers : 0; j-- > 0;) {
            bool keep = false;
            for (int k = 0; k < p.svc[i].n_addrs && !keep; k++) {
                keep = strcmp(svc->listen[j], p.svc[i].addrs[k]) == 0;
            }
            if (!keep) {
                app_log(APP_LOG_INFO, "listener closed", "trigger=%s service=%s addr=%s", why,
                        svc->name, svc->listen[j]);
                if (gone != NULL) {
                    gone[n_gone].svc = svc;
                    memcpy(gone[n_gone++].addr, svc->listen[j], sizeof(gone[0].addr));
                }
                close_listener(svc, j);
            }
        }
    }
    struct gw_service **failed = calloc(p.n, sizeof(*failed)); /* services that could not */
    size_t n_failed = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct gw_service *svc = find_service(app, p.conf.svc[i].name);
        bool is_new = svc == NULL;
        if (is_new && (svc = new_service(app, p.conf.svc[i].name)) == NULL) {
            app_log(APP_LOG_ERROR, "out of memory: service not added", "trigger=%s service=%s",
                    why, p.conf.svc[i].name);
            continue;
        }
        bool close_removed = p.svc[i].st->close_removed && !is_new;
        if (p.svc[i].st->store != NULL) {
            app_log(APP_LOG_INFO, "identities reloaded", "trigger=%s count=%zu service=%s", why,
                    identities_of(p.svc[i].st), svc->name);
        }
        assign_id_rows(app, svc, p.svc[i].st);
        gw_service_publish(app->rt, svc, p.svc[i].st);
        p.svc[i].st = NULL; /* the service holds it now */
        int f = relisten(app, svc, p.svc[i].addrs, p.svc[i].n_addrs, why);
        listen_failed += (size_t)f;
        if (f > 0 && failed != NULL) {
            failed[n_failed++] = svc;
        }
        if (is_new) {
            added++;
            log_service(svc, "service added", why);
        }
        if (close_removed) {
            gw_close_removed(app->rt, svc);
        }
    }
    /* a service that could not listen where it moved listens where it did, when it can (its
     * old addresses may have been taken by another service meanwhile): a mistaken address
     * does not take a service off the network */
    for (size_t i = 0; i < n_failed; i++) {
        for (size_t g = 0; g < n_gone; g++) {
            char why_not[600], quoted[700];
            if (gone[g].svc != failed[i]) {
                continue;
            }
            if (listen_one(app, failed[i], gone[g].addr, false, why_not, sizeof(why_not)) == 0) {
                app_log(APP_LOG_WARN, "listening again on its previous address",
                        "trigger=%s service=%s addr=%s", why, failed[i]->name, gone[g].addr);
            } else {
                app_log(APP_LOG_ERROR, "cannot listen", "trigger=%s service=%s addr=%s reason=%s",
                        why, failed[i]->name, gone[g].addr,
                        app_log_quote(quoted, sizeof(quoted), why_not));
            }
        }
    }
    free(failed);
    free(gone);
    /* the configuration in force: the new one */
    conf_free(&app->conf);
    app->conf = p.conf;
    memset(&p.conf, 0, sizeof(p.conf));
    size_t services = p.n;
    plan_free(&p);
    note_psk_files(app);
    if (listen_failed > 0) {
        atomic_fetch_add(&app->reloads_failed, 1);
    } else {
        atomic_fetch_add(&app->reloads_ok, 1);
    }
    app_log(listen_failed > 0 ? APP_LOG_WARN : APP_LOG_INFO, "configuration reloaded",
            "trigger=%s services=%zu added=%zu removed=%zu listen_failed=%zu", why, services,
            added, removed, listen_failed);
    pthread_mutex_unlock(&app->reload_lock);
}

static void on_reload(tern_runtime *rt, void *user)
{
    struct app *app = user;
    (void)rt;
    app_notify_reloading();
    reload(app, "SIGHUP");
    app_notify_ready(app->status);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The watcher: polls the PSK files' identity (inode, size, mtime); a change is loaded once two
 * polls agree, so a file being written is not read half way. */
static void *watch_main(void *arg)
{
    struct app *app = arg;
    struct stat last[MAX_PSK_FILES];
    bool changed = false;

    memset(last, 0, sizeof(last));
    pthread_mutex_lock(&app->watch_lock);
    while (!app->watch_quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += app->g.watch_s;
        pthread_cond_timedwait(&app->watch_cond, &app->watch_lock, &until);
        if (app->watch_quit) {
            break;
        }
        pthread_mutex_unlock(&app->watch_lock);
        bool differs = false, stable = true;
        pthread_mutex_lock(&app->reload_lock);
        for (size_t i = 0; i < app->n_psk_files; i++) {
            struct stat now;
            if (stat(app->psk_files[i], &now) < 0) {
                memset(&now, 0, sizeof(now));
            }
            differs |= !same_file(&now, &app->psk_seen[i]);
            stable &= same_file(&now, &last[i]);
            last[i] = now;
        }
        pthread_mutex_unlock(&app->reload_lock);
        if (differs && changed && stable) {
            reload(app, "file-change");
            changed = false;
        } else {
            changed = differs;
        }
        pthread_mutex_lock(&app->watch_lock);
    }
    pthread_mutex_unlock(&app->watch_lock);
    return NULL;
}

/* ---- stats --------------------------------------------------------------------------- */

static uint64_t sum_all(const struct app *app, enum gw_counter which)
{
    uint64_t n = 0;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        n += gw_counter_sum(s, which);
    }
    return n;
}

static void log_stats(struct app *app, const char *msg)
{
    tern_stats st;
    char text[2048];

    if (tern_runtime_stats(app->rt, &st) < 0) {
        return;
    }
    if (tern_stats_format(&st, TERN_STATS_TEXT, text, sizeof(text)) < 0) {
        return;
    }
    /* the outcomes first, then every runtime counter */
    app_log(APP_LOG_INFO, msg,
            "uptime_s=%.1f heap_kib=%ld handshakes_ok=%llu unknown_identity=%llu bad_key=%llu "
            "lookup_timeouts=%llu identity_limit=%llu rate_limited_identity=%llu "
            "rate_limited_source=%llu proxy_in_errors=%llu backend_connects=%llu "
            "backend_errors=%llu "
            "backend_failovers=%llu no_backend=%llu reloads_ok=%llu reloads_failed=%llu %s",
            app_seconds_since(&app->started), app_heap_in_use_kib(),
            (unsigned long long)st.handshakes, (unsigned long long)st.psk_unknown,
            (unsigned long long)st.psk_bad_key, (unsigned long long)st.psk_timeouts,
            (unsigned long long)sum_all(app, GW_IDENTITY_LIMIT),
            (unsigned long long)sum_all(app, GW_RATE_LIMITED_IDENTITY),
            (unsigned long long)sum_all(app, GW_RATE_LIMITED_SOURCE),
            (unsigned long long)sum_all(app, GW_PROXY_IN_ERRORS),
            (unsigned long long)sum_all(app, GW_BACKEND_CONNECTS),
            (unsigned long long)sum_all(app, GW_BACKEND_ERRORS),
            (unsigned long long)sum_all(app, GW_BACKEND_FAILOVERS),
            (unsigned long long)sum_all(app, GW_NO_BACKEND),
            (unsigned long long)atomic_load(&app->reloads_ok),
            (unsigned long long)atomic_load(&app->reloads_failed), text);
}

/* ---- the admin listener's families (any reactor; reads atomics and published settings) ---- */

/* A service removed by a reload and later added back is a new gw_service of the same name
 * (the old one drains and stays in the list): the series of a name are its newest
 * instance's, or /metrics would hold each sample twice. Its counters start again from zero,
 * as after a restart. */
static bool shadowed(const struct gw_service *s)
{
    for (const struct gw_service *t = next_service(s); t != NULL; t = next_service(t)) {
        if (strcmp(t->name, s->name) == 0) {
            return true;
        }
    }
    return false;
}

static void metrics_counter(struct prom_buf *out, const struct app *app, const char *name,
                            const char *help, enum gw_counter which, const char *lname,
                            const char *lvalue)
{
    prom_family(out, name, PROM_COUNTER, help);
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        struct prom_label l[2] = {{"service", s->name}, {lname, lvalue}};
        prom_sample_u64(out, name, l, lname != NULL ? 2 : 1, gw_counter_sum(s, which));
    }
}

static void gateway_metrics(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    static const struct {
        enum gw_counter which;
        const char *reason;
    } refusals[] = {
        {GW_UNKNOWN_IDENTITY, "unknown_identity"},
        {GW_IDENTITY_LIMIT, "identity_limit"},
        {GW_RATE_LIMITED_IDENTITY, "rate_identity"},
        {GW_RATE_LIMITED_SOURCE, "rate_source"},
        {GW_PROXY_IN_ERRORS, "proxy_header"},
    };

    prom_family(out, "tern_gateway_services", PROM_GAUGE, "Services configured (draining ones apart).");
    prom_family(out, "tern_gateway_connections_open", PROM_GAUGE,
                "Device connections open now, per service.");
    prom_family(out, "tern_gateway_identities", PROM_GAUGE,
                "Identities in the service's PSK store in force.");
    uint64_t n = 0;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        struct prom_label l[1] = {{"service", s->name}};
        n += !atomic_load(&s->draining);
        prom_sample_u64(out, "tern_gateway_connections_open", l, 1, gw_open_connections(s));
        /* safe on a reactor: published settings outlive every reactor callback that saw them */
        const struct gw_settings *st = atomic_load_explicit(&s->cur, memory_order_acquire);
        prom_sample_u64(out, "tern_gateway_identities", l, 1, identities_of(st));
    }
    prom_sample_u64(out, "tern_gateway_services", NULL, 0, n);
    metrics_counter(out, app, "tern_gateway_connections_accepted_total",
                    "Device connections accepted.", GW_ACCEPTED, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_connections_closed_total",
                    "Device connections ended.", GW_CLOSED, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_handshakes_total",
                    "Device TLS handshakes completed.", GW_HANDSHAKES, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_handshake_failures_total",
                    "Device connections that ended before their handshake completed.",
                    GW_HANDSHAKE_FAILURES, NULL, NULL);
    prom_family(out, "tern_gateway_refused_total", PROM_COUNTER,
                "Device connections refused by the gateway, by reason.");
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
            struct prom_label l[2] = {{"service", s->name}, {"reason", refusals[i].reason}};
            prom_sample_u64(out, "tern_gateway_refused_total", l, 2,
                            gw_counter_sum(s, refusals[i].which));
        }
    }
    prom_family(out, "tern_gateway_forwarded_bytes_total", PROM_COUNTER,
                "Bytes forwarded, device to backend (up) and back (down).");
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        struct prom_label up[2] = {{"service", s->name}, {"direction", "up"}};
        struct prom_label down[2] = {{"service", s->name}, {"direction", "down"}};
        prom_sample_u64(out, "tern_gateway_forwarded_bytes_total", up, 2,
                        gw_counter_sum(s, GW_BYTES_UP));
        prom_sample_u64(out, "tern_gateway_forwarded_bytes_total", down, 2,
                        gw_counter_sum(s, GW_BYTES_DOWN));
    }
    metrics_counter(out, app, "tern_gateway_backend_connects_total",
                    "Backend connections established.", GW_BACKEND_CONNECTS, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_backend_errors_total",
                    "Backend connection attempts that failed.", GW_BACKEND_ERRORS, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_backend_failovers_total",
                    "Attempts moved on to the next backend after a failure.",
                    GW_BACKEND_FAILOVERS, NULL, NULL);
    metrics_counter(out, app, "tern_gateway_no_backend_total",
                    "Device connections closed because no backend could be reached.",
                    GW_NO_BACKEND, NULL, NULL);
    prom_family(out, "tern_gateway_backend_connect_duration_seconds", PROM_HISTOGRAM,
                "Time to connect to a backend (TCP, and TLS with backend_tls).");
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (shadowed(s)) {
            continue;
        }
        double bounds[GW_LATENCY_BUCKETS];
        uint64_t counts[GW_LATENCY_BUCKETS + 1] = {0};
        uint64_t sum_us = 0;
        for (size_t b = 0; b < GW_LATENCY_BUCKETS; b++) {
            bounds[b] = gw_latency_bounds_us[b] / 1e6;
        }
        for (unsigned r = 0; r < TERN_MAX_REACTORS; r++) {
            for (size_t b = 0; b <= GW_LATENCY_BUCKETS; b++) {
                counts[b] += atomic_load_explicit(&s->counters[r].latency[b], memory_order_relaxed);
            }
            sum_us += atomic_load_explicit(&s->counters[r].latency_sum_us, memory_order_relaxed);
        }
        struct prom_label l[1] = {{"service", s->name}};
        prom_histogram(out, "tern_gateway_backend_connect_duration_seconds", l, 1, bounds, counts,
                       GW_LATENCY_BUCKETS, sum_us / 1e6);
    }
    prom_family(out, "tern_gateway_reloads_total", PROM_COUNTER,
                "Configuration reloads, by result (failed: refused, or a listener not opened).");
    struct prom_label ok[1] = {{"result", "ok"}}, failed[1] = {{"result", "failed"}};
    prom_sample_u64(out, "tern_gateway_reloads_total", ok, 1, atomic_load(&app->reloads_ok));
    prom_sample_u64(out, "tern_gateway_reloads_total", failed, 1,
                    atomic_load(&app->reloads_failed));
    static const struct {
        enum gw_id_counter which;
        const char *name, *help;
    } id_families[] = {
        {GW_ID_HANDSHAKES, "tern_gateway_identity_handshakes_total",
         "Handshakes completed by the identities of metrics_identities (the pattern is the label)."},
        {GW_ID_CLOSED, "tern_gateway_identity_connections_closed_total",
         "Of those, connections ended (open now: handshakes - closed)."},
        {GW_ID_BYTES_UP, "tern_gateway_identity_forwarded_bytes_total", NULL},
    };
    unsigned nrows = TERN_MAX_REACTORS;
    for (size_t f = 0; f < sizeof(id_families) / sizeof(id_families[0]); f++) {
        bool bytes = id_families[f].which == GW_ID_BYTES_UP;
        prom_family(out, id_families[f].name, PROM_COUNTER,
                    bytes ? "Bytes forwarded for the identities of metrics_identities, up "
                            "(device to backend) and down."
                          : id_families[f].help);
        for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
            if (shadowed(s)) {
                continue;
            }
            _Atomic uint64_t(*t)[GW_MAX_ID_METRICS][GW_ID_COUNTERS] =
                atomic_load_explicit(&s->id_counters, memory_order_acquire);
            unsigned names = atomic_load_explicit(&s->n_id_names, memory_order_acquire);
            for (unsigned r = 0; t != NULL && r < names; r++) {
                uint64_t v[GW_ID_COUNTERS] = {0};
                for (unsigned k = 0; k < nrows; k++) {
                    for (int w = 0; w < GW_ID_COUNTERS; w++) {
                        v[w] += atomic_load_explicit(&t[k][r][w], memory_order_relaxed);
                    }
                }
                if (bytes) {
                    struct prom_label up[3] = {
                        {"service", s->name}, {"identity", s->id_names[r]}, {"direction", "up"}};
                    struct prom_label down[3] = {
                        {"service", s->name}, {"identity", s->id_names[r]}, {"direction", "down"}};
                    prom_sample_u64(out, id_families[f].name, up, 3, v[GW_ID_BYTES_UP]);
                    prom_sample_u64(out, id_families[f].name, down, 3, v[GW_ID_BYTES_DOWN]);
                } else {
                    struct prom_label l[2] = {{"service", s->name}, {"identity", s->id_names[r]}};
                    prom_sample_u64(out, id_families[f].name, l, 2, v[id_families[f].which]);
                }
            }
        }
    }
    prom_family(out, "tern_ticket_key_age_seconds", PROM_GAUGE,
                "How long the session ticket sealing key has sealed (rotation or key file).");
    prom_sample_u64(out, "tern_ticket_key_age_seconds", NULL, 0,
                    (uint64_t)(tern_ticket_keys_age(app->tickets) > 0
                                   ? tern_ticket_keys_age(app->tickets) : 0));
    prom_family(out, "tern_gateway_last_reload_timestamp_seconds", PROM_GAUGE,
                "When the last reload was tried (Unix time; 0: never).");
    prom_sample_u64(out, "tern_gateway_last_reload_timestamp_seconds", NULL, 0,
                    (uint64_t)atomic_load(&app->last_reload));
}

static void gateway_stats_json(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    prom_printf(out, "{\"reloads_ok\":%llu,\"reloads_failed\":%llu,\"services\":[",
                (unsigned long long)atomic_load(&app->reloads_ok),
                (unsigned long long)atomic_load(&app->reloads_failed));
    bool first = true;
    for (const struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        const struct gw_settings *st = atomic_load_explicit(&s->cur, memory_order_acquire);
        /* service names are [A-Za-z0-9._-]: no escaping needed */
        prom_printf(out,
                    "%s{\"name\":\"%s\",\"draining\":%s,\"identities\":%zu,\"open\":%llu,"
                    "\"accepted\":%llu,\"handshakes\":%llu,\"handshake_failures\":%llu,"
                    "\"backend_connects\":%llu,\"backend_errors\":%llu,\"bytes_up\":%llu,"
                    "\"bytes_down\":%llu}",
                    first ? "" : ",", s->name, atomic_load(&s->draining) ? "true" : "false",
                    identities_of(st), (unsigned long long)gw_open_connections(s),
                    (unsigned long long)gw_counter_sum(s, GW_ACCEPTED),
                    (unsigned long long)gw_counter_sum(s, GW_HANDSHAKES),
                    (unsigned long long)gw_counter_sum(s, GW_HANDSHAKE_FAILURES),
                    (unsigned long long)gw_counter_sum(s, GW_BACKEND_CONNECTS),
                    (unsigned long long)gw_counter_sum(s, GW_BACKEND_ERRORS),
                    (unsigned long long)gw_counter_sum(s, GW_BYTES_UP),
                    (unsigned long long)gw_counter_sum(s, GW_BYTES_DOWN));
        first = false;
    }
    prom_printf(out, "]}");
}

/* SIGUSR1, on the signal thread: the counters are readable from any thread. */
static void on_usr1(tern_runtime *rt, void *user)
{
    (void)rt;
    log_stats(user, "stats");
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
    if (plan_build(&app, &p, app.tickets, err, sizeof(err)) < 0) {
        /* every problem, one line each: "FILE:LINE: ..." or "--option: ..." */
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            fprintf(stderr, PROGRAM ": %s\n", line);
        }
        plan_free(&p);
        conf_section_free(&app.cli);
        gw_ident_limit_destroy();
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
            "config=%s services=%zu threads=%u auth_workers=%u drain_ms=%u watch_s=%u version=%s",
            app.conf_path != NULL ? app.conf_path : "command-line", p.n,
            tern_runtime_reactor_count(app.rt), p.g.auth_workers, (unsigned)p.g.drain_ms,
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
    tern_runtime_free(app.rt);
    app_admin_free(app.admin_state);
    services_free(&app);
    conf_free(&app.conf);
    conf_section_free(&app.cli);
    gw_ident_limit_destroy();
    tern_ticket_keys_free(app.tickets); /* after every configuration that used it */
    return exit_code;
}

/* SPDX-License-Identifier: MIT */
/*
 * tern-bench: a TLS load generator on libtern's own client sockets and reactors. It opens
 * full, resumed or PSK handshakes (or a mix of them in a set ratio), request/response round
 * trips, or streams, in a closed loop (N connections) or an open loop (--rate, latency from the
 * scheduled start), and reports rates and latency percentiles per handshake type, errors by
 * kind, a live line once a second, JSON and CSV.
 *
 * Threads: main() parses the options, builds the TLS configurations and the run's
 * configuration (read-only from then on), starts a runtime with --threads reactors and
 * posts each one its worker (load.c). Then main() only reads: once a second it takes what
 * each worker published (under that worker's lock) for the live line and the series; after
 * the workers finished and the runtime was joined it merges their histograms and counters.
 * SIGINT/SIGTERM are blocked in every thread and taken by main() with sigtimedwait: the
 * first stops the run (the summary still prints), the second exits at once.
 *
 * Exit codes: 0 when every operation succeeded, 1 when any failed or none completed, 2 on
 * bad arguments or files.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <tern/tern.h>

#include "common/hex.h"
#include "common/opts.h"
#include "common/setup.h"
#include "hist.h"
#include "hold.h"
#include "load.h"
#include "report.h"
#include "sources.h"

#define PROGRAM "tern-bench"
#define EXIT_FAILED 1
#define DEFAULT_CONNECTIONS 10
#define DEFAULT_OPEN_LOOP_CONNECTIONS 1000
#define DEFAULT_DURATION_S 10
#define DEFAULT_TIMEOUT_S 10
#define DEFAULT_ECHO_PAYLOAD 64
#define DEFAULT_KEEPALIVE_PAYLOAD 2 /* an MQTT PINGREQ */
#define DEFAULT_HOLD_CONCURRENCY 100
#define MAX_PAYLOAD (1024 * 1024)
/* How long main() waits for a slow worker's tick before printing a second without it. */
#define LATE_TICK_US 500000

struct options {
    const char *targets[BENCH_MAX_TARGETS];
    unsigned ntargets;
    const char *mode_name;
    const char *mix;
    const char *tls;
    const char *ciphers;
    const char *groups;
    const char *sni;
    const char *alpn;
    const char *ca;
    const char *psk_identity;
    const char *psk_key;
    const char *psk_file;
    const char *psk_modes;
    const char *resume;
    const char *source_addrs;
    const char *json;
    const char *csv;
    bool insecure, quiet, plain;
    bool connections_given, payload_given, rate_given, concurrency_given;
    uint64_t duration_s, count, warmup_s, rate, timeout_s, keepalive_s;
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: " PROGRAM " --target HOST:PORT [OPTION]...\n"
            "A TLS load generator on libtern: full, resumed and PSK handshakes (or a mix of\n"
            "them), request/response round trips, or streams; rates and latency percentiles\n"
            "per handshake type, errors by kind.\n"
            "\n"
            "Load:\n"
            "      --target HOST:PORT     the TLS server (required); up to %d times:\n"
            "                             connections go to the targets in turn, and a\n"
            "                             resumed one offers its session to the target\n"
            "                             after the one that issued it (a fleet sharing\n"
            "                             ticket keys: across targets offered/resumed)\n"
            "      --mode MODE            handshake (default): connect, full handshake,\n"
            "                               optionally one request (--payload), close;\n"
            "                             psk: the same with a PSK handshake;\n"
            "                             resume: the same with resumed handshakes: each\n"
            "                               connection slot keeps a session (made by a\n"
            "                               first, priming full handshake; in TLS 1.3 it\n"
            "                               waits for the ticket) and offers it; one the\n"
            "                               server does not resume counts as\n"
            "                               full_instead_of_resumed, its new session kept;\n"
            "                             mix: handshake types in the ratio of --mix;\n"
            "                             echo: round trips of --payload bytes on\n"
            "                               long-lived connections;\n"
            "                             throughput: long-lived connections streaming\n"
            "                               both ways, MB/s;\n"
            "                             hold: open --connections, handshake each (PSK\n"
            "                               with a PSK given), hold them idle for\n"
            "                               --duration; the climb once a second, then\n"
            "                               opened, failed by kind, time to open them all\n"
            "                               (see --keepalive, --server-pid). One process\n"
            "                               holds at most its descriptor limit (ulimit -Hn;\n"
            "                               20000 on the reference machine) less %d: run\n"
            "                               several for more (bench/hold does)\n"
            "      --mix LIST             full=N,psk=N,resume=N (percent, summing to 100;\n"
            "                             default full=50,psk=50); implies --mode mix. A\n"
            "                             resume pick without a session yet primes one: a\n"
            "                             full handshake, counted under full\n"
            "  -c, --connections N        concurrent connections (default %d); with --rate,\n"
            "                             the most in progress at once (default %d)\n"
            "  -t, --threads N            reactor threads, 1..%d (default 1)\n"
            "  -d, --duration S           run for S seconds after the warm-up (default %d)\n"
            "  -n, --count N              or: measure N operations, then stop\n"
            "      --rate R               open loop: R operations per second in all, on a\n"
            "                             schedule; latency counts from the scheduled time\n"
            "                             (hold: connections opened per second; 0: as fast\n"
            "                             as --concurrency allows, the default)\n"
            "      --concurrency N        hold: handshakes in flight at most (default %d)\n"
            "      --keepalive K          hold: every K seconds each connection writes\n"
            "                             --payload bytes (default %d) and waits for the\n"
            "                             echo; round trips p50/p99/max. Without it a held\n"
            "                             connection keeps only its descriptor here\n"
            "      --server-pid PID       hold: read PID's VmRSS, /proc/meminfo Slab and\n"
            "                             /proc/net/sockstat TCP mem at the start, every\n"
            "                             10%% of the connections, the climb's end and the\n"
            "                             end: memory per connection\n"
            "      --warmup S             run S seconds first, left out of the figures\n"
            "      --payload BYTES        request size (echo: default %d; handshake modes:\n"
            "                             one request and its echo per connection), up to\n"
            "                             %d\n"
            "      --timeout S            connect, handshake and response deadline\n"
            "                             (default %d)\n"
            "      --source-addrs LIST    local addresses to connect from, in turn:\n"
            "                             127.0.0.2-127.0.0.20 or 127.0.1.0/24 (IPv4\n"
            "                             ranges, blocks and single addresses,\n"
            "                             comma-separated; each has its own ports)\n"
            "      --plain                TCP without TLS (modes handshake: connect, optional\n"
            "                             request, close; echo; throughput; hold); no TLS\n"
            "                             option\n"
            "\n"
            "TLS:\n"
            "      --tls VERSION          1.2 or 1.3 only (default: either)\n"
            "      --groups LIST          key-exchange groups, ':'-separated, first preferred\n"
            "                             (the TLS 1.3 key share; a hybrid first adds one\n"
            "                             for the first classic group): X25519MLKEM768,\n"
            "                             SecP256r1MLKEM768, SecP384r1MLKEM1024, X25519,\n"
            "                             P-256, P-384, P-521, ffdhe2048 (default: X25519:\n"
            "                             P-256:P-384:P-521:ffdhe2048)\n"
            "      --ciphers LIST         cipher suites, ':'-separated\n"
            "      --sni NAME             server name sent and verified (default: the\n"
            "                             target's host)\n"
            "      --alpn LIST            ALPN protocols to offer, comma-separated\n"
            "      --ca FILE              CA certificates (PEM) to verify the server with\n"
            "                             (default: the system's)\n"
            "      --insecure             do not verify the server's certificate\n"
            "      --psk-identity ID      PSK identity (with --psk-key)\n"
            "      --psk-key HEX          its key, 16..64 bytes in hex\n"
            "      --psk-file FILE        identities to use in turn: identity:hexkey lines,\n"
            "                             ':sha384' after the key for a TLS 1.3 SHA-384 key\n"
            "                             (tern-gateway's format), '#' comments\n"
            "      --psk-modes MODE       TLS 1.3 PSK key exchange mode offered: dhe_ke\n"
            "                             (PSK with an (EC)DHE key share) or ke (the PSK\n"
            "                             alone; default: both, the server picks)\n"
            "      --resume BY            implies --mode resume; ticket (default) or\n"
            "                             session-id (TLS 1.2 only). The server decides the\n"
            "                             mechanism; the run fails (exit 1) when it used the\n"
            "                             other one (TLS 1.2 tickets received or missing)\n"
            "\n"
            "Output:\n"
            "      --json FILE            the figures and a per-second series as JSON\n"
            "                             ('-': stdout)\n"
            "      --csv FILE             the per-second series as CSV\n"
            "  -q, --quiet                no live line (the summary still prints)\n"
            "  -h, --help                 show this help and exit\n"
            "  -V, --version              show the version and exit\n"
            "\n"
            "A live line prints once a second (rewritten in place on a terminal), then a\n"
            "summary: per type count, rate, latency p50/p90/p99/p99.9/max (\"resume\": the\n"
            "handshakes that resumed; the others count as \"full\"); with resumption, the\n"
            "sessions offered, resumed, not resumed (a warning above 1%%) and primed; errors\n"
            "by kind (refused, reset, timeout, alert, verify, handshake, closed, address,\n"
            "resume_refused: a TLS 1.2 server refused the offered session, which wolfSSL\n"
            "5.7 clients cannot fall back from, so the session is dropped; no_ticket: no\n"
            "TLS 1.3 ticket within --timeout...).\n"
            "Exit codes: 0 when every operation succeeded, 1 when any failed or none\n"
            "completed, 2 on bad arguments or files.\n",
            BENCH_MAX_TARGETS, BENCH_HOLD_FD_MARGIN, DEFAULT_CONNECTIONS,
            DEFAULT_OPEN_LOOP_CONNECTIONS, TERN_MAX_REACTORS, DEFAULT_DURATION_S,
            DEFAULT_HOLD_CONCURRENCY, DEFAULT_KEEPALIVE_PAYLOAD, DEFAULT_ECHO_PAYLOAD,
            MAX_PAYLOAD, DEFAULT_TIMEOUT_S);
}

enum {
    OPT_TARGET = 256,
    OPT_MODE,
    OPT_MIX,
    OPT_RATE,
    OPT_WARMUP,
    OPT_PAYLOAD,
    OPT_TIMEOUT,
    OPT_SOURCE_ADDRS,
    OPT_TLS,
    OPT_CIPHERS,
    OPT_GROUPS,
    OPT_SNI,
    OPT_ALPN,
    OPT_CA,
    OPT_INSECURE,
    OPT_PSK_IDENTITY,
    OPT_PSK_KEY,
    OPT_PSK_FILE,
    OPT_PSK_MODES,
    OPT_RESUME,
    OPT_PLAIN,
    OPT_JSON,
    OPT_CSV,
    OPT_CONCURRENCY,
    OPT_KEEPALIVE,
    OPT_SERVER_PID,
};

/* ---- option values ------------------------------------------------------------------------ */

static const char *const mode_names[] = {"handshake", "resume", "psk", "mix",
                                         "throughput", "echo", "hold", NULL};

/* --mix full=60,psk=40 into cfg->mix. */
static void parse_mix(const char *text, struct bench_config *cfg)
{
    static const char *const names[] = {"full", "psk", "resume", NULL};
    bool seen[BENCH_NHANDSHAKE_TYPES] = {false};
    unsigned sum = 0;
    const char *p = text;

    memset(cfg->mix, 0, sizeof(cfg->mix));
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        char item[64];
        if (n == 0 || n >= sizeof(item)) {
            app_opt_fail("--mix: cannot parse '%s' (expected TYPE=PERCENT,... with types full, "
                         "psk, resume)", text);
        }
        memcpy(item, p, n);
        item[n] = '\0';
        char *eq = strchr(item, '=');
        if (eq == NULL) {
            app_opt_fail("--mix: '%s' has no '=' (expected TYPE=PERCENT, e.g. full=60)", item);
        }
        *eq = '\0';
        unsigned t = app_opt_choice("--mix", item, names);
        if (seen[t]) {
            app_opt_fail("--mix: %s is given twice", item);
        }
        seen[t] = true;
        cfg->mix[t] = (unsigned)app_opt_uint("--mix", eq + 1, 0, 100);
        sum += cfg->mix[t];
        p += n;
        if (*p == ',') {
            p++;
            if (*p == '\0') {
                app_opt_fail("--mix: trailing ',' in '%s'", text);
            }
        }
    }
    if (sum != 100) {
        app_opt_fail("--mix: the percentages add up to %u, not 100", sum);
    }
}

/* Parses @p len hex digits into @p key. @return the key length, or NULL-ish 0 with @p why. */
static size_t parse_key(const char *hex, size_t len, uint8_t *key, const char **why)
{
    if (len % 2 != 0) {
        *why = "odd number of hex digits";
        return 0;
    }
    if (len / 2 < TERN_PSK_MIN_KEY || len / 2 > TERN_PSK_MAX_KEY) {
        *why = "the key must be 16..64 bytes (32..128 hex digits)";
        return 0;
    }
    for (size_t i = 0; i < len; i += 2) {
        int hi = app_hex_digit((unsigned char)hex[i]), lo = app_hex_digit((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0) {
            *why = "not a hex digit in the key";
            return 0;
        }
        key[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return len / 2;
}

/* --psk-file: read by the library's own parser (tern_psk_table_load_file: identity:hexkey
 * lines with an optional :sha256/:sha384 field, as tern-gateway reads them), so a file that
 * works there works here; the identities are used in the file's order. Errors: FILE:LINE. */
static struct bench_psk *load_psk_file(const char *path, size_t *count)
{
    tern_psk_table *t = NULL;
    char err[512];

    int rc = tern_psk_table_load_file(path, &t, err, sizeof(err));
    if (rc < 0) {
        /* err begins with the file's name: "FILE:LINE: reason" or "FILE: reason" */
        fprintf(stderr, PROGRAM ": --psk-file %s\n", err[0] != '\0' ? err : tern_strerror(rc));
        exit(APP_EXIT_USAGE);
    }
    if (err[0] != '\0') {
        fprintf(stderr, PROGRAM ": warning: --psk-file %s\n", err);
    }
    size_t n = tern_psk_table_count(t);
    if (n == 0) {
        tern_psk_table_free(t);
        app_setup_fail("--psk-file", path, "no identities in it (expected identity:hexkey lines)");
    }
    struct bench_psk *psks = calloc(n, sizeof(*psks));
    if (psks == NULL) {
        tern_psk_table_free(t);
        app_setup_fail("--psk-file", path, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        tern_buf id = {NULL, 0};
        psks[i].key_len = tern_psk_table_entry(t, i, &id, psks[i].key, &psks[i].hash);
        memcpy(psks[i].identity, id.base, id.len);
        psks[i].identity_len = id.len;
    }
    tern_psk_table_free(t); /* zeroes its keys */
    *count = n;
    return psks;
}

/* A target: HOST:PORT, the host resolved once here (connections then skip the lookup). */
static void resolve_target(const char *target, struct bench_target *t)
{
    char *name = t->name;
    uint16_t port = 0;
    int rc = tern_parse_host_port(target, name, sizeof(t->name), &port);
    if (rc < 0 || name[0] == '\0' || port == 0) {
        app_opt_fail("--target: cannot parse '%s' (expected HOST:PORT or [IPV6]:PORT)", target);
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(name, NULL, &hints, &res);
    if (gai != 0 || res == NULL) {
        fprintf(stderr, PROGRAM ": --target %s: cannot resolve %s: %s\n", target, name,
                gai != 0 ? gai_strerror(gai) : "no address");
        exit(APP_EXIT_USAGE);
    }
    const void *addr = res->ai_family == AF_INET6
                           ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
                           : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
    inet_ntop(res->ai_family, addr, t->host, sizeof(t->host));
    freeaddrinfo(res);
    t->port = port;
}

static void parse_args(struct options *o, struct bench_config *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, OPT_TARGET},
        {"mode", required_argument, NULL, OPT_MODE},
        {"mix", required_argument, NULL, OPT_MIX},
        {"connections", required_argument, NULL, 'c'},
        {"threads", required_argument, NULL, 't'},
        {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, OPT_RATE},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"source-addrs", required_argument, NULL, OPT_SOURCE_ADDRS},
        {"tls", required_argument, NULL, OPT_TLS},
        {"ciphers", required_argument, NULL, OPT_CIPHERS},
        {"groups", required_argument, NULL, OPT_GROUPS},
        {"sni", required_argument, NULL, OPT_SNI},
        {"alpn", required_argument, NULL, OPT_ALPN},
        {"ca", required_argument, NULL, OPT_CA},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"psk-identity", required_argument, NULL, OPT_PSK_IDENTITY},
        {"psk-key", required_argument, NULL, OPT_PSK_KEY},
        {"psk-file", required_argument, NULL, OPT_PSK_FILE},
        {"psk-modes", required_argument, NULL, OPT_PSK_MODES},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"plain", no_argument, NULL, OPT_PLAIN},
        {"json", required_argument, NULL, OPT_JSON},
        {"csv", required_argument, NULL, OPT_CSV},
        {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
        {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
        {"server-pid", required_argument, NULL, OPT_SERVER_PID},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, ":c:t:d:n:qhV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TARGET:
            if (o->ntargets == BENCH_MAX_TARGETS) {
                app_opt_fail("--target: at most %d targets", BENCH_MAX_TARGETS);
            }
            o->targets[o->ntargets++] = optarg;
            break;
        case OPT_MODE:
            cfg->mode = (enum bench_mode)app_opt_choice("--mode", optarg, mode_names);
            o->mode_name = optarg;
            break;
        case OPT_MIX:
            o->mix = optarg;
            break;
        case 'c':
            cfg->connections = (unsigned)app_opt_uint("--connections", optarg, 1, 1000000);
            o->connections_given = true;
            break;
        case 't':
            cfg->threads = (unsigned)app_opt_uint("--threads", optarg, 1, TERN_MAX_REACTORS);
            break;
        case 'd':
            o->duration_s = app_opt_uint("--duration", optarg, 1, 7 * 86400);
            break;
        case 'n':
            o->count = app_opt_uint("--count", optarg, 1, UINT64_C(1000000000000));
            break;
        case OPT_RATE:
            o->rate = app_opt_uint("--rate", optarg, 0, 100000000);
            o->rate_given = true;
            break;
        case OPT_CONCURRENCY:
            cfg->concurrency = (unsigned)app_opt_uint("--concurrency", optarg, 1, 1000000);
            o->concurrency_given = true;
            break;
        case OPT_KEEPALIVE:
            o->keepalive_s = app_opt_uint("--keepalive", optarg, 1, 86400);
            break;
        case OPT_SERVER_PID:
            cfg->server_pid = (int)app_opt_uint("--server-pid", optarg, 1, 4194304);
            break;
        case OPT_WARMUP:
            o->warmup_s = app_opt_uint("--warmup", optarg, 0, 86400);
            break;
        case OPT_PAYLOAD:
            cfg->payload = (size_t)app_opt_uint("--payload", optarg, 0, MAX_PAYLOAD);
            o->payload_given = true;
            break;
        case OPT_TIMEOUT:
            o->timeout_s = app_opt_uint("--timeout", optarg, 1, 3600);
            break;
        case OPT_SOURCE_ADDRS:
            o->source_addrs = optarg;
            break;
        case OPT_TLS: {
            static const char *const versions[] = {"1.2", "1.3", NULL};
            (void)app_opt_choice("--tls", optarg, versions);
            o->tls = optarg;
            break;
        }
        case OPT_GROUPS:
            o->groups = optarg;
            break;
        case OPT_CIPHERS:
            o->ciphers = optarg;
            break;
        case OPT_SNI:
            if (optarg[0] == '\0') {
                app_opt_fail("--sni: empty name");
            }
            o->sni = optarg;
            break;
        case OPT_ALPN:
            o->alpn = optarg;
            break;
        case OPT_CA:
            o->ca = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_PSK_IDENTITY:
            o->psk_identity = optarg;
            break;
        case OPT_PSK_KEY:
            o->psk_key = optarg;
            break;
        case OPT_PSK_FILE:
            o->psk_file = optarg;
            break;
        case OPT_PSK_MODES: {
            static const char *const modes[] = {"dhe_ke", "ke", NULL};
            (void)app_opt_choice("--psk-modes", optarg, modes);
            o->psk_modes = optarg;
            break;
        }
        case OPT_RESUME: {
            static const char *const by[] = {"ticket", "session-id", NULL};
            (void)app_opt_choice("--resume", optarg, by);
            o->resume = optarg;
            break;
        }
        case OPT_PLAIN:
            o->plain = true;
            break;
        case OPT_JSON:
            o->json = optarg;
            break;
        case OPT_CSV:
            o->csv = optarg;
            break;
        case 'q':
            o->quiet = true;
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
}

/* --mode hold: what it takes and refuses, and the descriptors one process has. */
static void check_hold(struct options *o, struct bench_config *cfg)
{
    const char *no = o->count > 0     ? "--count: --mode hold holds for a --duration"
                     : o->warmup_s > 0 ? "--warmup: --mode hold reports its climb instead"
                     : o->csv != NULL  ? "--csv: --mode hold writes --json only"
                     : o->payload_given && o->keepalive_s == 0
                         ? "--payload: --mode hold sends one only with --keepalive"
                     : o->payload_given && cfg->payload == 0
                         ? "--payload: a keep-alive needs at least 1 byte"
                         : NULL;
    if (no != NULL) {
        app_opt_fail("%s", no);
    }
    if (!o->payload_given) {
        cfg->payload = DEFAULT_KEEPALIVE_PAYLOAD;
    }
    if (!o->concurrency_given) {
        cfg->concurrency = DEFAULT_HOLD_CONCURRENCY;
    }
    cfg->keepalive_ms = (uint32_t)(o->keepalive_s * 1000u);
    unsigned long long hard = 0;
    unsigned max = bench_hold_max_connections(&hard);
    if (o->connections_given && cfg->connections > max) {
        app_opt_fail("--connections %u: one process holds at most %u here (its descriptor "
                     "limit, ulimit -Hn, is %llu, less %d for itself): run several tern-bench "
                     "processes with a share each, as bench/hold does", cfg->connections, max,
                     hard, BENCH_HOLD_FD_MARGIN);
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", cfg->server_pid);
    if (cfg->server_pid != 0 && access(path, R_OK) != 0) {
        app_opt_fail("--server-pid %d: cannot read %s: %s", cfg->server_pid, path,
                     strerror(errno));
    }
}

/* The checks between options, before any file is read or name resolved. */
static void check_args(struct options *o, struct bench_config *cfg)
{
    if (o->ntargets == 0) {
        app_opt_fail("--target HOST:PORT is required");
    }
    if (o->resume != NULL) {
        if (o->mode_name != NULL && cfg->mode != BENCH_MODE_RESUME) {
            app_opt_fail("--resume needs --mode resume (not --mode %s)", o->mode_name);
        }
        if (o->mix != NULL) {
            app_opt_fail("--resume excludes --mix (it implies --mode resume)");
        }
        cfg->mode = BENCH_MODE_RESUME;
        cfg->resume_checked = true;
        cfg->resume_session_id = strcmp(o->resume, "session-id") == 0;
        if (cfg->resume_session_id) {
            if (o->tls != NULL && strcmp(o->tls, "1.2") != 0) {
                app_opt_fail("--resume session-id: TLS 1.2 only (TLS 1.3 resumes by ticket)");
            }
            o->tls = "1.2";
        }
    }
    if (o->mix != NULL) {
        if (o->mode_name != NULL && cfg->mode != BENCH_MODE_MIX) {
            app_opt_fail("--mix needs --mode mix (not --mode %s)", o->mode_name);
        }
        cfg->mode = BENCH_MODE_MIX;
        parse_mix(o->mix, cfg);
    } else if (cfg->mode == BENCH_MODE_MIX) {
        cfg->mix[BENCH_TYPE_FULL] = 50;
        cfg->mix[BENCH_TYPE_PSK] = 50;
    }
    if (o->count > 0 && o->duration_s > 0) {
        app_opt_fail("--count and --duration exclude each other");
    }
    if (cfg->mode == BENCH_MODE_THROUGHPUT) {
        if (o->count > 0) {
            app_opt_fail("--count: --mode throughput runs for a --duration");
        }
        if (o->rate > 0) {
            app_opt_fail("--rate: --mode throughput streams as fast as it can");
        }
        if (o->payload_given) {
            app_opt_fail("--payload: --mode throughput streams (no requests)");
        }
    }
    if (cfg->mode == BENCH_MODE_HOLD) {
        check_hold(o, cfg);
    } else if (o->keepalive_s > 0 || o->concurrency_given || cfg->server_pid != 0) {
        app_opt_fail("%s: --mode hold only", o->keepalive_s > 0 ? "--keepalive"
                                             : o->concurrency_given ? "--concurrency"
                                                                    : "--server-pid");
    } else if (o->rate_given && o->rate == 0) {
        app_opt_fail("--rate: '0' is out of range (1..100000000; 0 only with --mode hold)");
    }
    if (cfg->mode == BENCH_MODE_ECHO) {
        if (!o->payload_given) {
            cfg->payload = DEFAULT_ECHO_PAYLOAD;
        } else if (cfg->payload == 0) {
            app_opt_fail("--payload: --mode echo needs at least 1 byte");
        }
    }
    if (o->ca != NULL && o->insecure) {
        app_opt_fail("--ca and --insecure exclude each other");
    }
    if (o->psk_file != NULL && (o->psk_identity != NULL || o->psk_key != NULL)) {
        app_opt_fail("--psk-file excludes --psk-identity and --psk-key");
    }
    if ((o->psk_identity == NULL) != (o->psk_key == NULL)) {
        app_opt_fail(o->psk_identity == NULL ? "--psk-key needs --psk-identity"
                                             : "--psk-identity needs --psk-key");
    }
    bool psk_given = o->psk_file != NULL || o->psk_identity != NULL;
    bool psk_used = cfg->mode == BENCH_MODE_PSK ||
                    (cfg->mode == BENCH_MODE_MIX && cfg->mix[BENCH_TYPE_PSK] > 0) ||
                    cfg->mode == BENCH_MODE_ECHO || cfg->mode == BENCH_MODE_THROUGHPUT ||
                    cfg->mode == BENCH_MODE_HOLD;
    if (psk_used && !psk_given && (cfg->mode == BENCH_MODE_PSK || cfg->mode == BENCH_MODE_MIX)) {
        app_opt_fail("--mode %s needs a PSK: --psk-identity ID --psk-key HEX, or --psk-file FILE",
                     cfg->mode == BENCH_MODE_PSK ? "psk" : "mix with psk=");
    }
    if (psk_given && !psk_used) {
        app_opt_fail("a PSK was given but --mode %s makes no PSK handshakes",
                     o->mode_name != NULL ? o->mode_name : "handshake");
    }
    if (o->psk_modes != NULL && !(psk_used && psk_given)) {
        app_opt_fail("--psk-modes needs PSK handshakes (--mode psk, or a PSK)");
    }
    if (o->psk_modes != NULL && o->tls != NULL && strcmp(o->tls, "1.2") == 0) {
        app_opt_fail("--psk-modes: TLS 1.3 only (not with --tls 1.2)");
    }
    if (o->plain) {
        const char *tls_opt = o->tls != NULL            ? "--tls"
                              : o->ciphers != NULL      ? "--ciphers"
                              : o->groups != NULL       ? "--groups"
                              : o->sni != NULL          ? "--sni"
                              : o->alpn != NULL         ? "--alpn"
                              : o->ca != NULL           ? "--ca"
                              : o->insecure             ? "--insecure"
                              : psk_given               ? "a PSK"
                              : o->psk_modes != NULL    ? "--psk-modes"
                              : o->resume != NULL       ? "--resume"
                                                        : NULL;
        if (tls_opt != NULL) {
            app_opt_fail("--plain excludes %s (no TLS)", tls_opt);
        }
        if (cfg->mode != BENCH_MODE_HANDSHAKE && cfg->mode != BENCH_MODE_ECHO &&
            cfg->mode != BENCH_MODE_THROUGHPUT && cfg->mode != BENCH_MODE_HOLD) {
            app_opt_fail("--plain: --mode %s makes TLS handshakes (handshake, echo or "
                         "throughput)", o->mode_name != NULL ? o->mode_name : "mix");
        }
        cfg->plain = true;
    }
    if (o->warmup_s > 0 && cfg->mode == BENCH_MODE_THROUGHPUT && o->duration_s == 0) {
        o->duration_s = DEFAULT_DURATION_S;
    }
    cfg->count = o->count;
    if (o->count == 0) {
        cfg->duration_us = (o->duration_s > 0 ? o->duration_s : DEFAULT_DURATION_S) * 1000000u;
    }
    cfg->warmup_us = o->warmup_s * 1000000u;
    cfg->rate = (double)o->rate;
    cfg->timeout_ms = (uint32_t)((o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S) * 1000u);
    if (!o->connections_given) {
        cfg->connections = o->rate > 0 && cfg->mode != BENCH_MODE_ECHO &&
                                   cfg->mode != BENCH_MODE_HOLD
                               ? DEFAULT_OPEN_LOOP_CONNECTIONS
                               : DEFAULT_CONNECTIONS;
    }
    if (cfg->threads > cfg->connections) {
        cfg->threads = cfg->connections; /* a thread without a connection would idle */
    }
}

/* ---- TLS configurations ------------------------------------------------------------------- */

/* One client configuration: certificate handshakes, or PSK ones (@p psk). */
static tern_ssl_config *make_ssl_config(const struct options *o, bool psk)
{
    tern_ssl_config *ssl = tern_ssl_config_new();
    int rc;

    if (ssl == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        exit(EXIT_FAILED);
    }
    if (o->tls != NULL) {
        enum tern_ssl_protocol v =
            strcmp(o->tls, "1.2") == 0 ? TERN_SSL_PROTOCOL_TLS1_2 : TERN_SSL_PROTOCOL_TLS1_3;
        if ((rc = tern_ssl_config_set_protocol_range(ssl, v, v)) < 0) {
            app_config_fail(ssl, "--tls", o->tls, rc);
        }
    }
    if (psk && (rc = tern_ssl_config_enable_psk(ssl, NULL)) < 0) {
        const char *why = tern_ssl_config_error_string(ssl);
        fprintf(stderr, PROGRAM ": PSK: %s\n", why[0] != '\0' ? why : tern_strerror(rc));
        exit(APP_EXIT_USAGE);
    }
    if (psk && o->psk_modes != NULL) {
        enum tern_psk_modes m =
            strcmp(o->psk_modes, "ke") == 0 ? TERN_PSK_MODES_KE : TERN_PSK_MODES_DHE_KE;
        if ((rc = tern_ssl_config_set_psk_modes(ssl, m)) < 0) {
            app_config_fail(ssl, "--psk-modes", o->psk_modes, rc);
        }
    }
    if (o->groups != NULL && (rc = tern_ssl_config_set_groups(ssl, o->groups)) < 0) {
        app_config_fail(ssl, "--groups", o->groups, rc);
    }
    if (o->ciphers != NULL && (rc = tern_ssl_config_set_ciphers(ssl, o->ciphers)) < 0) {
        app_config_fail(ssl, "--ciphers", o->ciphers, rc);
    }
    if (o->alpn != NULL && (rc = tern_ssl_config_set_alpn(ssl, o->alpn)) < 0) {
        app_config_fail(ssl, "--alpn", o->alpn, rc);
    }
    /* No session store of the library's own: a "full" handshake must stay a full one; resume
     * picks offer the sessions that load.c keeps per connection slot. */
    if ((rc = tern_ssl_config_set_client_sessions(ssl, 0, NULL, NULL)) < 0) {
        app_config_fail(ssl, "sessions", "off", rc);
    }
    uint32_t timeout_ms = (uint32_t)((o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S) * 1000u);
    if ((rc = tern_ssl_config_set_handshake_timeout(ssl, timeout_ms)) < 0) {
        app_config_fail(ssl, "--timeout", "", rc);
    }
    if (o->insecure) {
        rc = tern_ssl_config_set_peer_verify_mode(ssl, TERN_VERIFY_NONE);
        if (rc < 0) {
            app_config_fail(ssl, "--insecure", "", rc);
        }
    } else if (o->ca != NULL) {
        rc = tern_ssl_config_add_ca_certificates_file(ssl, o->ca, TERN_ENCODING_PEM);
        if (rc < 0) {
            app_config_fail(ssl, "--ca", o->ca, rc);
        }
    } else if (!psk) {
        /* PSK handshakes show no certificate; certificate ones are checked against the
         * system's CAs unless told otherwise */
        rc = tern_ssl_config_add_system_ca_certificates(ssl);
        if (rc < 0) {
            fprintf(stderr,
                    PROGRAM ": cannot load the system's CA certificates (%s): give --ca FILE, "
                            "or --insecure\n",
                    tern_strerror(rc));
            exit(APP_EXIT_USAGE);
        }
    }
    return ssl;
}

static void build_ssl(const struct options *o, struct bench_config *cfg,
                      struct bench_psk **psks_out)
{
    bool psk_given = o->psk_file != NULL || o->psk_identity != NULL;
    bool want_psk, want_full;

    if (cfg->plain) {
        return;
    }
    switch (cfg->mode) {
    case BENCH_MODE_PSK:
        want_psk = true, want_full = false;
        break;
    case BENCH_MODE_MIX:
        want_psk = cfg->mix[BENCH_TYPE_PSK] > 0;
        want_full = cfg->mix[BENCH_TYPE_FULL] > 0 || cfg->mix[BENCH_TYPE_RESUME] > 0;
        break;
    case BENCH_MODE_ECHO:
    case BENCH_MODE_THROUGHPUT:
    case BENCH_MODE_HOLD:
        want_psk = psk_given, want_full = !psk_given;
        break;
    default: /* handshake, resume */
        want_psk = false, want_full = true;
    }
    if (want_psk) {
        struct bench_psk *psks;
        size_t n = 1;
        if (o->psk_file != NULL) {
            psks = load_psk_file(o->psk_file, &n);
        } else {
            psks = calloc(1, sizeof(*psks));
            if (psks == NULL) {
                exit(EXIT_FAILED);
            }
            size_t id_len = strlen(o->psk_identity);
            if (id_len == 0 || id_len > TERN_PSK_MAX_IDENTITY) {
                app_opt_fail("--psk-identity: 1..128 bytes");
            }
            memcpy(psks->identity, o->psk_identity, id_len);
            psks->identity_len = id_len;
            const char *why = NULL;
            psks->key_len = parse_key(o->psk_key, strlen(o->psk_key), psks->key, &why);
            psks->hash = TERN_PSK_HASH_SHA256;
            if (why != NULL) {
                app_opt_fail("--psk-key: %s", why);
            }
        }
        cfg->psks = psks;
        cfg->npsks = n;
        *psks_out = psks;
        cfg->psk_cfg = make_ssl_config(o, true);
    }
    if (want_full) {
        cfg->full_cfg = make_ssl_config(o, false);
    }
}

/* ---- the run ------------------------------------------------------------------------------ */

static FILE *open_output(const char *opt, const char *path)
{
    if (path == NULL) {
        return NULL;
    }
    if (strcmp(path, "-") == 0) {
        return stdout;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        app_setup_fail(opt, path, strerror(errno));
    }
    return f;
}

struct monitor {
    struct bench *b;
    struct bench_result *res;
    struct bench_counts prev;     /* the workers' counters at the last second printed */
    bench_hist so_far[BENCH_NTYPES];
    bench_hist interval[BENCH_NTYPES];
    uint64_t last_us;             /* when the last second printed ended */
    size_t cap;
    FILE *out; /* the live line's stream */
    bool live, tty;
};

static void add_counts(struct bench_counts *into, const struct bench_counts *c)
{
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        into->ok[t] += c->ok[t];
    }
    for (unsigned k = 0; k < BENCH_NERRS; k++) {
        into->errors[k] += c->errors[k];
    }
    into->bytes_in += c->bytes_in;
    into->bytes_out += c->bytes_out;
    into->full_instead += c->full_instead;
    into->primed += c->primed;
    into->tls12_tickets += c->tls12_tickets;
    into->cross_offered += c->cross_offered;
    into->cross_resumed += c->cross_resumed;
}

static void sub_counts(struct bench_counts *d, const struct bench_counts *a,
                       const struct bench_counts *b)
{
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        d->ok[t] = a->ok[t] - b->ok[t];
    }
    for (unsigned k = 0; k < BENCH_NERRS; k++) {
        d->errors[k] = a->errors[k] - b->errors[k];
    }
    d->bytes_in = a->bytes_in - b->bytes_in;
    d->bytes_out = a->bytes_out - b->bytes_out;
    d->full_instead = a->full_instead - b->full_instead;
    d->primed = a->primed - b->primed;
    d->tls12_tickets = a->tls12_tickets - b->tls12_tickets;
    d->cross_offered = a->cross_offered - b->cross_offered;
    d->cross_resumed = a->cross_resumed - b->cross_resumed;
}

/* Takes what the workers published and records it as second @p t, ending at @p end_us. */
static void monitor_second(struct monitor *m, uint64_t t, uint64_t end_us)
{
    struct bench *b = m->b;
    struct bench_counts sum, c;

    memset(&sum, 0, sizeof(sum));
    for (unsigned i = 0; i < b->nworkers; i++) {
        bench_worker_take(&b->workers[i], &c, m->interval);
        add_counts(&sum, &c);
    }
    struct bench_second sec;
    memset(&sec, 0, sizeof(sec));
    sec.t = t;
    sec.dur_s = (double)(end_us - m->last_us) / 1e6;
    sec.warmup = end_us <= b->t0_us + b->cfg->warmup_us;
    sub_counts(&sec.delta, &sum, &m->prev);
    m->prev = sum;
    m->last_us = end_us;
    for (unsigned ty = 0; ty < BENCH_NTYPES; ty++) {
        sec.p50[ty] = bench_hist_percentile(&m->interval[ty], 50);
        sec.p99[ty] = bench_hist_percentile(&m->interval[ty], 99);
        if (!sec.warmup) {
            bench_hist_merge(&m->so_far[ty], &m->interval[ty]);
        }
    }
    bool partial = (end_us - b->t0_us) % 1000000u != 0;
    if (partial && sec.dur_s < 0.05 && bench_counts_ok(&sec.delta) == 0 &&
        bench_counts_errors(&sec.delta) == 0 && sec.delta.bytes_in == 0) {
        return; /* the run ended just after a whole second: nothing to add */
    }
    if (m->res->nseries == m->cap) {
        m->cap = m->cap == 0 ? 64 : m->cap * 2;
        struct bench_second *grown = realloc(m->res->series, m->cap * sizeof(*grown));
        if (grown != NULL) {
            m->res->series = grown;
        }
    }
    if (m->res->nseries < m->cap) {
        m->res->series[m->res->nseries++] = sec;
    }
    if (m->live) {
        bench_report_live(m->out, m->tty, m->res, &sec, sec.warmup ? m->interval : m->so_far);
    }
    for (unsigned ty = 0; ty < BENCH_NTYPES; ty++) {
        bench_hist_reset(&m->interval[ty]);
    }
}

/* Whether every worker published second @p t (or finished). */
static bool all_published(struct bench *b, uint64_t t)
{
    for (unsigned i = 0; i < b->nworkers; i++) {
        struct bench_worker *w = &b->workers[i];
        pthread_mutex_lock(&w->lock);
        bool ok = w->pub_done || w->pub_second >= t;
        pthread_mutex_unlock(&w->lock);
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* main()'s loop while the run lasts: seconds, signals. @return when every worker finished. */
static void monitor_run(struct monitor *m, const sigset_t *sigs)
{
    struct bench *b = m->b;
    uint64_t next = 1;
    unsigned signals = 0;

    m->last_us = b->t0_us;
    while (atomic_load(&b->done) < b->nworkers) {
        struct timespec wait = {.tv_sec = 0, .tv_nsec = 20 * 1000 * 1000};
        int sig = sigtimedwait(sigs, NULL, &wait);
        if (sig == SIGINT || sig == SIGTERM) {
            if (++signals > 1) {
                fprintf(stderr, "\n" PROGRAM ": stopped at once\n");
                _exit(EXIT_FAILED);
            }
            m->res->interrupted = true;
            bench_load_stop(b);
        }
        uint64_t due = b->t0_us + next * 1000000u;
        uint64_t now = bench_now_us();
        if (now >= due && (all_published(b, next) || now >= due + LATE_TICK_US)) {
            monitor_second(m, next, due);
            next++;
        }
    }
    /* the last (partial) second: what the workers did since */
    uint64_t now = bench_now_us();
    if (now > m->last_us) {
        monitor_second(m, next, now);
    }
    if (m->live && m->tty) {
        fputc('\n', m->out);
    }
}

/* After join: the measured figures from every worker. */
static void collect(struct bench *b, struct bench_result *res, uint64_t end_us)
{
    const struct bench_config *cfg = b->cfg;

    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        bench_hist_reset(&res->hist[t]);
    }
    for (unsigned i = 0; i < b->nworkers; i++) {
        struct bench_worker *w = &b->workers[i];
        add_counts(&res->total, &w->final);
        for (unsigned t = 0; t < BENCH_NTYPES; t++) {
            bench_hist_merge(&res->hist[t], &w->hist[t]);
        }
        res->aborted_at_end += w->aborted_at_end;
        if (res->negotiated.protocol[0] == '\0') {
            res->negotiated = w->negotiated;
        }
        res->backlog_at_end += w->backlog_at_end;
        res->details_dropped += w->details_dropped;
        for (size_t d = 0; d < w->ndetails; d++) {
            size_t j = 0;
            while (j < res->ndetails && (res->details[j].kind != w->details[d].kind ||
                                         strcmp(res->details[j].text, w->details[d].text) != 0)) {
                j++;
            }
            if (j < res->ndetails) {
                res->details[j].count += w->details[d].count;
            } else if (res->ndetails < BENCH_MAX_DETAILS) {
                res->details[res->ndetails++] = w->details[d];
            } else {
                res->details_dropped += w->details[d].count;
            }
        }
    }
    uint64_t start = b->t0_us + cfg->warmup_us;
    if (cfg->count == 0 && !res->interrupted) {
        res->measured_s = (double)cfg->duration_us / 1e6;
    } else {
        res->measured_s = end_us > start ? (double)(end_us - start) / 1e6 : 0.0;
    }
}

int main(int argc, char **argv)
{
    struct options o;
    struct bench_config cfg;
    struct bench_psk *psks = NULL;
    char targets_text[BENCH_MAX_TARGETS * 272] = ""; /* the --target values, ','-separated */

    memset(&o, 0, sizeof(o));
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = BENCH_MODE_HANDSHAKE;
    cfg.threads = 1;
    app_opt_set_program(PROGRAM);
    parse_args(&o, &cfg, argc, argv);
    check_args(&o, &cfg);
    if (o.source_addrs != NULL) {
        bench_parse_sources(o.source_addrs, &cfg);
    }
    for (unsigned i = 0; i < o.ntargets; i++) {
        resolve_target(o.targets[i], &cfg.targets[i]);
        size_t used = strlen(targets_text);
        snprintf(targets_text + used, sizeof(targets_text) - used, "%s%s", i > 0 ? "," : "",
                 o.targets[i]);
    }
    cfg.ntargets = o.ntargets;
    cfg.sni = o.sni;
    build_ssl(&o, &cfg, &psks);
    FILE *json = open_output("--json", o.json);
    FILE *csv = open_output("--csv", o.csv);

    /* A peer that vanishes must cost an error, never the process; the signals that stop
     * the run are taken by main() alone (every runtime thread inherits this mask). */
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    tern_runtime_options ro;
    tern_runtime_options_init(&ro);
    ro.reactors = cfg.threads;
    struct bench b;
    memset(&b, 0, sizeof(b));
    b.cfg = &cfg;
    b.rt = tern_runtime_new(&ro);
    if (b.rt == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILED;
    }
    int rc = tern_runtime_start(b.rt);
    if (rc < 0) {
        const char *why = tern_runtime_error_string(b.rt);
        fprintf(stderr, PROGRAM ": cannot start: %s\n", why[0] != '\0' ? why : tern_strerror(rc));
        tern_runtime_free(b.rt);
        return EXIT_FAILED;
    }
    if (cfg.mode == BENCH_MODE_HOLD) {
        rc = bench_hold_run(b.rt, &cfg, targets_text, o.tls, json, o.json, o.quiet, &sigs);
        tern_runtime_free(b.rt);
        tern_ssl_config_unref(cfg.full_cfg);
        tern_ssl_config_unref(cfg.psk_cfg);
        if (psks != NULL) {
            explicit_bzero(psks, cfg.npsks * sizeof(*psks));
            free(psks);
        }
        free(cfg.sources);
        return rc;
    }
    struct bench_result *res = calloc(1, sizeof(*res));
    struct monitor *m = calloc(1, sizeof(*m));
    if (res == NULL || m == NULL || bench_load_init(&b) < 0) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_FAILED;
    }
    res->cfg = &cfg;
    res->target = targets_text;
    res->tls = o.tls;
    m->b = &b;
    m->res = res;
    m->live = !o.quiet;
    /* with --json - (or --csv -) the document owns stdout: the rest goes to stderr */
    bool stdout_taken = json == stdout || csv == stdout;
    m->out = stdout_taken ? stderr : stdout;
    m->tty = isatty(fileno(m->out)) == 1;
    for (unsigned t = 0; t < BENCH_NTYPES; t++) {
        bench_hist_reset(&m->so_far[t]);
        bench_hist_reset(&m->interval[t]);
    }
    if ((rc = bench_load_start(&b)) < 0) {
        fprintf(stderr, PROGRAM ": cannot start the load: %s\n", tern_strerror(rc));
        bench_load_stop(&b);
    } else {
        monitor_run(m, &sigs);
    }
    uint64_t end_us = bench_now_us();
    tern_runtime_stop(b.rt, 0);
    tern_runtime_join(b.rt);
    collect(&b, res, end_us);

    bench_report_summary(m->out, res);
    int exit_code = bench_counts_errors(&res->total) > 0 ||
                            (bench_counts_ok(&res->total) == 0 && res->total.bytes_in == 0) ||
                            bench_resume_mismatch(res) != NULL
                        ? EXIT_FAILED
                        : 0;
    if (json != NULL) {
        if (bench_report_json(json, res) < 0 || (json != stdout && fclose(json) != 0)) {
            fprintf(stderr, PROGRAM ": --json %s: %s\n", o.json, strerror(errno));
            exit_code = EXIT_FAILED;
        }
    }
    if (csv != NULL) {
        if (bench_report_csv(csv, res) < 0 || (csv != stdout && fclose(csv) != 0)) {
            fprintf(stderr, PROGRAM ": --csv %s: %s\n", o.csv, strerror(errno));
            exit_code = EXIT_FAILED;
        }
    }
    fflush(stdout);

    bench_load_free(&b);
    tern_runtime_free(b.rt);
    tern_ssl_config_unref(cfg.full_cfg);
    tern_ssl_config_unref(cfg.psk_cfg);
    if (psks != NULL) {
        explicit_bzero(psks, cfg.npsks * sizeof(*psks));
        free(psks);
    }
    free(cfg.sources);
    free(res->series);
    free(res);
    free(m);
    return exit_code;
}

/* SPDX-License-Identifier: MIT */
/*
 * The admin listener (admin.h): a minimal HTTP/1.0 and 1.1 server on the runtime's reactors.
 * Each connection reads one request head (at most ADMIN_HEAD_MAX bytes, within
 * ADMIN_HEAD_TIMEOUT_MS), answers once with `Connection: close` and closes gracefully. No
 * request body is read (GET and HEAD only), no keep-alive, no chunking: a scraper needs none.
 *
 * Threads: app_admin_start runs at setup; everything else runs on the reactor that owns the
 * connection (its events and its timer). The shared state (struct app_admin) is read-only once
 * the runtime runs; the counters are read with tern_runtime_stats (@thread any).
 */
#include "admin.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Longest request head accepted, up to and including the blank line. */
#define ADMIN_HEAD_MAX 8192
/* Time a client has to send its whole head. */
#define ADMIN_HEAD_TIMEOUT_MS 5000
/* Admin connections open at once; more are closed on accept (and counted as rejected). */
#define ADMIN_MAX_CONNECTIONS 64

struct app_admin {
    tern_runtime *rt;
    tern_server *srv; /* the runtime's: freed by tern_runtime_free */
    struct app_admin_source src;
    double start_time; /* process_start_time_seconds, read once at setup */
};

/* One admin connection: owned by its reactor, freed in `disconnected`. */
struct admin_conn {
    struct app_admin *admin;
    tern_timer *timer; /* the head's deadline */
    bool answered;
    size_t len;                   /* bytes in head */
    char head[ADMIN_HEAD_MAX + 1]; /* the request head as it comes (one more: "too large") */
};

/* ---- process metrics (Linux /proc) ------------------------------------------------------- */

/* Fields of /proc/self/stat after the command name (which may hold spaces and parentheses):
 * @n values from field 3 on, as the proc(5) page numbers them. */
static int read_self_stat(unsigned long long *fields, int n)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL) {
        return -1;
    }
    size_t len = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[len] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    p++;
    int got = 0;
    while (got < n) {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        if (got == 0) { /* field 3: the state letter */
            fields[got++] = 0;
            p++;
            continue;
        }
        char *end;
        fields[got++] = strtoull(p, &end, 10);
        if (end == p) {
            break;
        }
        p = end;
    }
    return got == n ? 0 : -1;
}

/* The process's start, in seconds since the epoch: boot time + its start in clock ticks. */
static double process_start_time(void)
{
    unsigned long long f[20]; /* fields 3..22 */
    unsigned long long btime = 0;
    char line[256];
    long tck = sysconf(_SC_CLK_TCK);
    FILE *st = fopen("/proc/stat", "r");

    if (st != NULL) {
        while (fgets(line, sizeof(line), st) != NULL) {
            if (sscanf(line, "btime %llu", &btime) == 1) {
                break;
            }
        }
        fclose(st);
    }
    if (btime == 0 || tck <= 0 || read_self_stat(f, 20) < 0) {
        return (double)time(NULL); /* no /proc: the admin's start is the nearest we know */
    }
    return (double)btime + (double)f[19] / (double)tck;
}

static void process_metrics(const struct app_admin *a, struct prom_buf *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long vsz = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vsz, &rss) != 2) {
            vsz = rss = 0;
        }
        fclose(f);
    }
    prom_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
               (double)rss * (double)page);
    prom_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
               (double)vsz * (double)page);

    unsigned long long fields[13]; /* 3..15: utime is 14, stime 15 */
    long tck = sysconf(_SC_CLK_TCK);
    if (read_self_stat(fields, 13) == 0 && tck > 0) {
        prom_family(out, "process_cpu_seconds_total", PROM_COUNTER,
                    "Total user and system CPU time spent in seconds.");
        prom_sample_double(out, "process_cpu_seconds_total", NULL, 0,
                           (double)(fields[11] + fields[12]) / (double)tck);
    }

    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        long n = 0;
        const struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] != '.') {
                n++;
            }
        }
        closedir(d);
        prom_gauge(out, "process_open_fds", "Number of open file descriptors.",
                   (double)(n > 0 ? n - 1 : 0)); /* not the one opendir held */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        prom_gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
                   rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur);
    }
    prom_gauge(out, "process_start_time_seconds",
               "Start time of the process since unix epoch in seconds.", a->start_time);
}

/* ---- runtime metrics ------------------------------------------------------------------- */

static void counter_labeled(struct prom_buf *out, const char *name, const char *label,
                            const char *value, uint64_t v)
{
    struct prom_label l = {label, value};
    prom_sample_u64(out, name, &l, 1, v);
}

static void runtime_metrics(const struct app_admin *a, struct prom_buf *out)
{
    tern_stats *st = calloc(1, sizeof(*st));
    if (st == NULL || tern_runtime_stats(a->rt, st) < 0) {
        free(st);
        return;
    }
    prom_family(out, "tern_build_info", PROM_GAUGE, "libtern's version, as a label; always 1.");
    counter_labeled(out, "tern_build_info", "version", tern_version_string(), 1);

    prom_gauge(out, "tern_connections_open", "Sockets open now (accepted and outgoing).",
               (double)st->connections_open);
    prom_counter(out, "tern_connections_accepted_total",
                 "Connections accepted and handed to a reactor.", st->connections_accepted);
    prom_counter(out, "tern_connections_outgoing_total", "Outgoing connects that succeeded.",
                 st->connections_outgoing);
    prom_counter(out, "tern_connections_closed_total", "Sockets closed, for any reason.",
                 st->connections_closed);
    prom_counter(out, "tern_connections_rejected_total",
                 "Connections closed on accept: over a server's max_connections.",
                 st->connections_rejected);
    prom_counter(out, "tern_handoff_full_total",
                 "Connections closed on accept: the reactor's hand-off ring was full.",
                 st->handoff_full);
    prom_counter(out, "tern_resets_total", "Sockets that ended with an error.", st->resets);
    prom_family(out, "tern_timeouts_total", PROM_COUNTER,
                "Sockets closed by a timeout, by kind (idle, connect).");
    counter_labeled(out, "tern_timeouts_total", "kind", "idle", st->timeouts_idle);
    counter_labeled(out, "tern_timeouts_total", "kind", "connect", st->timeouts_connect);
    prom_counter(out, "tern_received_bytes_total", "Bytes received from sockets.", st->bytes_in);
    prom_counter(out, "tern_sent_bytes_total", "Bytes sent to sockets.", st->bytes_out);

    prom_counter(out, "tern_mailbox_tasks_total", "Mailbox tasks run by the reactors.",
                 st->tasks_run);
    prom_counter(out, "tern_mailbox_full_total", "Posts refused because a mailbox was full.",
                 st->mailbox_full);
    prom_gauge(out, "tern_mailbox_depth", "Tasks queued in the reactors' mailboxes now.",
               (double)st->mailbox_depth);
    prom_family(out, "tern_accept_errors_total", PROM_COUNTER,
                "accept() failures by errno (emfile, enfile, enomem, other).");
    counter_labeled(out, "tern_accept_errors_total", "reason", "emfile", st->accept_emfile);
    counter_labeled(out, "tern_accept_errors_total", "reason", "enfile", st->accept_enfile);
    counter_labeled(out, "tern_accept_errors_total", "reason", "enomem", st->accept_enomem);
    counter_labeled(out, "tern_accept_errors_total", "reason", "other", st->accept_other);
    prom_counter(out, "tern_accept_paused_total", "Times accepting paused after an error.",
                 st->accept_paused);

    prom_family(out, "tern_handshakes_total", PROM_COUNTER,
                "TLS handshakes completed, by type (full13, full12, resumed, psk13, psk12).");
    counter_labeled(out, "tern_handshakes_total", "type", "full13", st->handshakes_full13);
    counter_labeled(out, "tern_handshakes_total", "type", "full12", st->handshakes_full12);
    counter_labeled(out, "tern_handshakes_total", "type", "resumed", st->handshakes_resumed);
    counter_labeled(out, "tern_handshakes_total", "type", "psk13", st->handshakes_psk13);
    counter_labeled(out, "tern_handshakes_total", "type", "psk12", st->handshakes_psk12);
    static const struct {
        const char *reason;
        size_t off;
    } reasons[] = {
        {"unknown_identity", offsetof(tern_stats, handshake_failures_unknown_identity)},
        {"bad_key", offsetof(tern_stats, handshake_failures_bad_key)},
        {"timeout", offsetof(tern_stats, handshake_failures_timeout)},
        {"version", offsetof(tern_stats, handshake_failures_version)},
        {"no_shared_cipher", offsetof(tern_stats, handshake_failures_no_shared)},
        {"certificate", offsetof(tern_stats, handshake_failures_certificate)},
        {"protocol", offsetof(tern_stats, handshake_failures_protocol)},
        {"peer_closed", offsetof(tern_stats, handshake_failures_peer_closed)},
        {"other", offsetof(tern_stats, handshake_failures_other)},
    };
    prom_family(out, "tern_handshake_failures_total", PROM_COUNTER,
                "TLS handshakes that failed, by reason.");
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)st + reasons[i].off, sizeof(v));
        counter_labeled(out, "tern_handshake_failures_total", "reason", reasons[i].reason, v);
    }

    double bounds[TERN_STATS_HANDSHAKE_BUCKETS - 1];
    for (unsigned i = 0; i < TERN_STATS_HANDSHAKE_BUCKETS - 1; i++) {
        bounds[i] = tern_stats_handshake_bucket_bound(i);
    }
    prom_family(out, "tern_handshake_duration_seconds", PROM_HISTOGRAM,
                "Time from the start of a TLS handshake to its completion, in seconds.");
    prom_histogram(out, "tern_handshake_duration_seconds", NULL, 0, bounds,
                   st->handshake_duration_buckets, TERN_STATS_HANDSHAKE_BUCKETS - 1,
                   (double)st->handshake_duration_us_sum / 1e6);

    prom_family(out, "tern_tls_alerts_total", PROM_COUNTER,
                "TLS alerts sent and received, by description (nonzero ones only).");
    for (int dir = 0; dir < 2; dir++) {
        const uint64_t *v = dir == 0 ? st->alerts_sent : st->alerts_received;
        for (unsigned i = 0; i < 256; i++) {
            if (v[i] == 0) {
                continue;
            }
            char num[16];
            const char *name = tern_stats_alert_name(i);
            if (name == NULL) {
                snprintf(num, sizeof(num), "alert_%u", i);
                name = num;
            }
            struct prom_label l[2] = {{"direction", dir == 0 ? "sent" : "received"},
                                      {"alert", name}};
            prom_sample_u64(out, "tern_tls_alerts_total", l, 2, v[i]);
        }
    }

    prom_gauge(out, "tern_hibernated_connections",
               "TLS connections hibernated now (their state sealed, the TLS objects freed).",
               (double)st->hibernated_now);
    prom_counter(out, "tern_hibernations_total",
                 "Times an idle TLS connection's state was exported and its objects freed.",
                 st->hibernations);
    prom_counter(out, "tern_wakeups_total", "Times a hibernated TLS connection was woken.",
                 st->wakeups);
    prom_counter(out, "tern_hibernate_failures_total",
                 "Idle TLS connections the TLS library could not export (they stay awake).",
                 st->hibernate_failures);
    prom_counter(out, "tern_wake_failures_total",
                 "Wake-ups refused (state that did not authenticate or import, out of memory): "
                 "that connection closed.",
                 st->wake_failures);
    double wake_bounds[TERN_STATS_WAKE_BUCKETS - 1];
    for (unsigned i = 0; i < TERN_STATS_WAKE_BUCKETS - 1; i++) {
        wake_bounds[i] = tern_stats_wake_bucket_bound(i);
    }
    prom_family(out, "tern_wake_duration_seconds", PROM_HISTOGRAM,
                "Time to wake a hibernated TLS connection (import its state), in seconds.");
    prom_histogram(out, "tern_wake_duration_seconds", NULL, 0, wake_bounds,
                   st->wake_duration_buckets, TERN_STATS_WAKE_BUCKETS - 1,
                   (double)st->wake_duration_us_sum / 1e6);

    prom_counter(out, "tern_psk_lookups_total", "PSK identities asked of the event or a store.",
                 st->psk_lookups);
    prom_gauge(out, "tern_psk_pending", "Handshakes waiting for a PSK answer now.",
               (double)st->psk_pending);
    prom_family(out, "tern_psk_refusals_total", PROM_COUNTER,
                "PSK lookups that gave no usable key, by reason.");
    counter_labeled(out, "tern_psk_refusals_total", "reason", "unknown", st->psk_unknown);
    counter_labeled(out, "tern_psk_refusals_total", "reason", "timeout", st->psk_timeouts);
    counter_labeled(out, "tern_psk_refusals_total", "reason", "overload", st->psk_overload);
    counter_labeled(out, "tern_psk_refusals_total", "reason", "store_error",
                    st->psk_store_errors);
    counter_labeled(out, "tern_psk_refusals_total", "reason", "no_suite", st->psk_no_suite);
    prom_counter(out, "tern_psk_bad_key_total",
                 "PSK handshakes that failed after a key was given (the peer's differed).",
                 st->psk_bad_key);
    free(st);
}

void app_admin_render_metrics(struct app_admin *a, struct prom_buf *out)
{
    runtime_metrics(a, out);
    process_metrics(a, out);
    if (a->src.metrics != NULL) {
        a->src.metrics(out, a->src.user);
    }
}

static void render_json(struct app_admin *a, struct prom_buf *out)
{
    tern_stats *st = calloc(1, sizeof(*st));
    if (st == NULL || tern_runtime_stats(a->rt, st) < 0) {
        free(st);
        out->failed = true;
        return;
    }
    ssize_t n = tern_stats_format(st, TERN_STATS_JSON, NULL, 0);
    char *json = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (json == NULL) {
        free(st);
        out->failed = true;
        return;
    }
    tern_stats_format(st, TERN_STATS_JSON, json, (size_t)n + 1);
    free(st);
    prom_printf(out, "{\"runtime\":%s,\"process\":{\"start_time_seconds\":%.3f,\"pid\":%ld}", json,
                a->start_time, (long)getpid());
    free(json);
    if (a->src.stats_json != NULL) {
        prom_printf(out, ",\"app\":");
        a->src.stats_json(out, a->src.user);
    }
    prom_printf(out, "}\n");
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Queues the response and closes after it (graceful: the queue is sent first). */
static void respond(tern_socket *s, struct admin_conn *c, int status, const char *type,
                    const char *body, size_t len, bool head_only)
{
    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                     status, status_text(status), type, len,
                     status == 405 ? "Allow: GET, HEAD\r\n" : "");
    c->answered = true;
    tern_timer_stop(c->timer);
    if (tern_socket_write(s, head, (size_t)n) < 0 ||
        (!head_only && len > 0 && tern_socket_write(s, body, len) < 0)) {
        tern_socket_abort(s); /* the peer gets nothing rather than half */
        return;
    }
    tern_socket_close(s);
}

static void respond_text(tern_socket *s, struct admin_conn *c, int status, const char *text)
{
    respond(s, c, status, "text/plain; charset=utf-8", text, strlen(text), false);
}

static bool is_token_char(char ch)
{
    return ch >= 'A' && ch <= 'Z';
}

/* Parses "METHOD SP TARGET SP HTTP/1.x" (the head's first line, @len bytes without CRLF)
 * and answers. Header lines are not needed: nothing depends on them. */
static void serve(tern_socket *s, struct admin_conn *c, const char *line, size_t len)
{
    struct app_admin *a = c->admin;
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || sp1[1] != '/') {
        respond_text(s, c, 400, "bad request\n");
        return;
    }
    for (const char *p = line; p < sp1; p++) {
        if (!is_token_char(*p)) {
            respond_text(s, c, 400, "bad request\n");
            return;
        }
    }
    size_t vlen = len - (size_t)(sp2 + 1 - line);
    if (!((vlen == 8 && (memcmp(sp2 + 1, "HTTP/1.1", 8) == 0 ||
                         memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)))) {
        respond_text(s, c, 400, "bad request\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - line);
    bool head_only = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
    if (!head_only && !(mlen == 3 && memcmp(line, "GET", 3) == 0)) {
        respond_text(s, c, 405, "method not allowed\n");
        return;
    }
    /* the path, without a query string */
    size_t plen = (size_t)(sp2 - (sp1 + 1));
    const char *q = memchr(sp1 + 1, '?', plen);
    if (q != NULL) {
        plen = (size_t)(q - (sp1 + 1));
    }
    const char *path = sp1 + 1;
#define PATH_IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, plen) == 0)
    if (PATH_IS("/healthz")) {
        bool ok = !tern_runtime_is_stopping(a->rt) &&
                  (a->src.healthy == NULL || a->src.healthy(a->src.user));
        char body[1024] = "ok\n";
        size_t blen = 3;
        if (ok && a->src.health_detail != NULL) {
            blen += a->src.health_detail(body + blen, sizeof(body) - blen, a->src.user);
        }
        respond(s, c, ok ? 200 : 503, "text/plain; charset=utf-8", ok ? body : "draining\n",
                ok ? blen : 9, head_only);
        return;
    }
    if (PATH_IS("/metrics") || PATH_IS("/stats.json")) {
        bool metrics = PATH_IS("/metrics");
        struct prom_buf out;
        prom_init(&out);
        if (metrics) {
            app_admin_render_metrics(a, &out);
        } else {
            render_json(a, &out);
        }
        if (out.failed) {
            respond_text(s, c, 500, "out of memory\n");
        } else {
            respond(s, c, 200,
                    metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json",
                    out.data != NULL ? out.data : "", out.len, head_only);
        }
        prom_free(&out);
        return;
    }
#undef PATH_IS
    respond_text(s, c, 404, "not found\n");
}

/* Takes what arrived into the connection's head buffer; answers once the head is complete,
 * or when what came cannot become one. The bytes are consumed as they come, so the runtime
 * sees the peer's end (read_finished) even when the head never completes. */
static void on_read(tern_socket *s, void *user)
{
    struct admin_conn *c = user;

    if (c->answered) {
        return;
    }
    size_t old = c->len;
    ssize_t n = tern_socket_read(s, c->head + c->len, sizeof(c->head) - c->len);
    if (n <= 0) {
        return;
    }
    c->len += (size_t)n;
    if (!is_token_char(c->head[0])) {
        respond_text(s, c, 400, "bad request\n"); /* not HTTP: a TLS hello, binary, ... */
        return;
    }
    /* the blank line ending the head: "\n\n" or "\n\r\n", looked for in the new bytes */
    size_t head_end = 0;
    for (size_t i = old > 2 ? old - 2 : 0; i + 1 < c->len; i++) {
        if (c->head[i] == '\n' &&
            (c->head[i + 1] == '\n' ||
             (c->head[i + 1] == '\r' && i + 2 < c->len && c->head[i + 2] == '\n'))) {
            head_end = i + (c->head[i + 1] == '\n' ? 2 : 3);
            break;
        }
    }
    if (head_end == 0) {
        if (c->len == sizeof(c->head)) {
            respond_text(s, c, 431, "request head too large\n");
        }
        return; /* wait for more */
    }
    const char *eol = memchr(c->head, '\n', c->len);
    size_t len = (size_t)(eol - c->head);
    if (len > 0 && c->head[len - 1] == '\r') {
        len--;
    }
    serve(s, c, c->head, len);
}

/* The client ended its stream before a whole head: 400 if it sent part of one. */
static void on_read_finished(tern_socket *s, void *user)
{
    struct admin_conn *c = user;
    if (!c->answered) {
        if (c->len > 0) {
            respond_text(s, c, 400, "bad request\n");
        } else {
            tern_socket_close(s);
        }
    }
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    struct admin_conn *c = user;
    tern_timer_free(c->timer);
    free(c);
}

static const tern_socket_events admin_events = {
    .ready_read = on_read,
    .read_finished = on_read_finished,
    .disconnected = on_disconnected,
};

static void on_deadline(tern_timer *t, void *user)
{
    tern_socket *s = user;
    struct admin_conn *c = tern_socket_user(s);
    if (!c->answered) {
        respond_text(s, c, 408, "request timeout\n");
    }
}

static void on_incoming(tern_server *srv, tern_socket *s, void *user)
{
    struct admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tern_socket_abort(s);
        return;
    }
    c->admin = user;
    c->timer = tern_timer_new(tern_socket_reactor(s), on_deadline, s);
    if (c->timer == NULL || tern_timer_start(c->timer, ADMIN_HEAD_TIMEOUT_MS, 0) < 0) {
        tern_timer_free(c->timer);
        free(c);
        tern_socket_abort(s);
        return;
    }
    tern_socket_set_events(s, &admin_events, c);
}

/* ---- setup ---------------------------------------------------------------------------------- */

int app_admin_start(tern_runtime *rt, const char *address, const struct app_admin_source *src,
                    struct app_admin **out, char *err, size_t errlen)
{
    struct app_admin *a = calloc(1, sizeof(*a));
    *out = NULL;
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return TERN_ENOMEM;
    }
    a->rt = rt;
    if (src != NULL) {
        a->src = *src;
    }
    a->start_time = process_start_time();
    a->srv = tern_server_new(rt, NULL, on_incoming, a);
    if (a->srv == NULL) {
        snprintf(err, errlen, "out of memory");
        free(a);
        return TERN_ENOMEM;
    }
    int rc = tern_server_set_max_connections(a->srv, ADMIN_MAX_CONNECTIONS);
    if (rc == 0) {
        rc = tern_server_set_idle_timeout(a->srv, 2 * ADMIN_HEAD_TIMEOUT_MS);
    }
    if (rc == 0) {
        rc = tern_server_listen_address(a->srv, address);
    }
    if (rc < 0) {
        const char *why = tern_server_error_string(a->srv);
        snprintf(err, errlen, "%s", why != NULL && why[0] != '\0' ? why : tern_strerror(rc));
        tern_server_close(a->srv); /* the runtime frees it */
        free(a);
        return rc;
    }
    *out = a;
    return 0;
}

unsigned app_admin_port(const struct app_admin *a)
{
    return a != NULL ? tern_server_port(a->srv) : 0;
}

void app_admin_free(struct app_admin *a)
{
    free(a);
}

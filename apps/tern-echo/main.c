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
 * SIGHUP builds a whole new configuration from the same options (every file read again)
 * and hands it to the server: handshakes that begin later take it, connections keep theirs;
 * any problem keeps the one in force (`on_reload`).
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern/tern.h>

#include "common/admin.h"
#include "common/fleet_tickets.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/redis.h"
#include "common/setup.h"
#include "echo.h"

/* Bytes copied per step; the write room bounds each step as well. */
#define ECHO_CHUNK 16384
/* Longest STARTTLS command line accepted, "\r\n" included. */
#define STARTTLS_LINE_MAX 64

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
                app_protocol_name(tern_socket_session_protocol(s)), tern_socket_session_cipher(s),
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
    if (app->plain) {
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
    char text[8192];

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

/* ---- admin (--admin) --------------------------------------------------------------------- */

/* tern-echo counts nothing of its own (the runtime counts its connections, bytes and
 * handshakes): it adds what it runs with, as an info metric and in /stats.json. */
static const char *echo_tls_mode(const struct app *app)
{
    return app->plain ? "off" : app->starttls ? "starttls" : "on";
}

static void admin_metrics(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    struct prom_label l[2] = {{"tls", echo_tls_mode(app)},
                              {"balance", echo_balance_names[app->balance]}};
    prom_family(out, "tern_echo_info", PROM_GAUGE, "tern-echo's settings, as labels; always 1.");
    prom_sample_u64(out, "tern_echo_info", l, 2, 1);
    if (app->fleet != NULL) {
        fleet_tickets_metrics(app->fleet, out);
    }
}

static void admin_stats_json(struct prom_buf *out, void *user)
{
    const struct app *app = user;
    prom_printf(out, "{\"program\":\"" PROGRAM "\",\"tls\":\"%s\",\"threads\":%u}",
                echo_tls_mode(app), tern_runtime_reactor_count(app->rt));
}

/* Before the runtime starts (app_admin_start is @thread setup). 0, or the exit code. */
static int start_admin(struct app *app)
{
    const struct app_admin_source src = {
        .metrics = admin_metrics,
        .stats_json = admin_stats_json,
        .user = app,
    };
    char err[256], quoted[300];
    int rc = app_admin_start(app->rt, app->admin, &src, &app->admin_state, err, sizeof(err));
    if (rc < 0) {
        app_log(APP_LOG_ERROR, "cannot serve --admin", "addr=%s err=%s reason=%s", app->admin,
                tern_err_name(rc), app_log_quote(quoted, sizeof(quoted), err));
        return rc == TERN_ENOMEM ? EXIT_FAILURE_RUNTIME : 2;
    }
    app_log(APP_LOG_INFO, "admin listening", "admin_addr=%s admin_port=%u", app->admin,
            app_admin_port(app->admin_state));
    return 0;
}

/* Logs why a reload was refused: one warning line, the option, the file and the reason. */
static void reload_refused(const char *msg, const char *opt, const char *file, const char *why)
{
    char qfile[300], qwhy[700];
    app_log(APP_LOG_WARN, msg, "option=%s file=%s reason=%s", opt != NULL ? opt : "-",
            app_log_quote(qfile, sizeof(qfile), file != NULL && file[0] != '\0' ? file : "-"),
            app_log_quote(qwhy, sizeof(qwhy), why));
}

/*
 * SIGHUP (the signal thread, between systemd's RELOADING=1 and READY=1): a whole new TLS
 * configuration from the same options, every file read again, then the ticket key file into
 * the one ticket key set (a bad file leaves the set as it was), then the swap. Any problem
 * before the swap refuses the reload as a whole: the configuration (and keys) in force stay.
 * The ticket key set is the same object in every configuration, so tickets sealed before a
 * reload open after it. wolfSSL's session-ID cache (--session-cache) is process-wide, not
 * the configuration's, so TLS 1.2 session IDs resume across a reload as well.
 */
static void on_reload(tern_runtime *rt, void *user)
{
    struct app *app = user;
    struct app_tls_error err;

    if (app->plain) {
        app_log_msg(APP_LOG_INFO, "SIGHUP: nothing to reload (plaintext server)");
        return;
    }
    tern_ssl_config *cfg = echo_ssl_config_new(app, &err);
    if (cfg == NULL) {
        reload_refused("SIGHUP: configuration refused; the one in force stays", err.opt,
                       err.arg, err.why);
        return;
    }
    if (app->ticket_keys_redis) {
        app_log(APP_LOG_INFO, "SIGHUP: ticket keys come from Redis: nothing to reload", "redis=%s",
                fleet_tickets_url(app->fleet));
    } else if (app->ticket_keys_file != NULL) {
        char why[512] = "";
        int rc = tern_ticket_keys_load_file(app->tickets, app->ticket_keys_file, why, sizeof(why));
        if (rc < 0) {
            reload_refused("SIGHUP: ticket key file refused; the configuration in force stays",
                           "--ticket-keys", app->ticket_keys_file,
                           why[0] != '\0' ? why : tern_strerror(rc));
            tern_ssl_config_unref(cfg);
            return;
        }
        if (why[0] != '\0') {
            char quoted[600];
            app_log(APP_LOG_WARN, "ticket key file permissions", "warning=%s",
                    app_log_quote(quoted, sizeof(quoted), why));
        }
        app_log(APP_LOG_INFO, "SIGHUP: ticket keys reloaded", "count=%zu",
                tern_ticket_keys_count(app->tickets));
    }
    int rc = tern_server_set_ssl_config(app->srv, cfg);
    tern_ssl_config_unref(cfg); /* the server holds its own reference */
    if (rc < 0) {
        reload_refused("SIGHUP: configuration refused; the one in force stays", NULL, NULL,
                       tern_strerror(rc));
        return;
    }
    char qcert[300];
    app_log(APP_LOG_INFO, "SIGHUP: TLS configuration reloaded", "cert=%s",
            app_log_quote(qcert, sizeof(qcert), app->tls.cert));
}

/*
 * --ticket-keys redis://...: the fleet thread and the keys it keeps in step with Redis. Before
 * the runtime, so the first handshake already seals with them (app_loop_start blocks every
 * signal in its thread: the runtime's signal thread takes them). 0, or the exit code.
 */
static int start_fleet_tickets(struct app *app)
{
    char err[300], quoted[400];

    app->fleet_loop = app_loop_start("tern-fleet");
    if (app->fleet_loop == NULL) {
        app_log_msg(APP_LOG_ERROR, "cannot start the fleet thread");
        return EXIT_FAILURE_RUNTIME;
    }
    const struct fleet_tickets_options o = {
        .url = app->ticket_keys_file,
        .loop = app->fleet_loop,
        .keys = app->tickets,
        .lifetime_s = tern_ticket_keys_lifetime(app->tickets),
        .rotate_s = 0, /* lifetime/2, as tern's own keys */
    };
    app->fleet = fleet_tickets_new(&o, err, sizeof(err));
    if (app->fleet == NULL) {
        app_log(APP_LOG_ERROR, "--ticket-keys refused", "reason=%s",
                app_log_quote(quoted, sizeof(quoted), err));
        return 2;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct app app = {
        .common = {.listen = DEFAULT_LISTEN},
        .balance = TERN_BALANCE_ROUND_ROBIN,
        .drain_ms = DEFAULT_DRAIN_MS,
        .session_tickets = 1,
    };
    tern_runtime_options ro;
    int exit_code = EXIT_FAILURE_RUNTIME;
    int rc;

    app_opt_set_program(PROGRAM);
    app_tls_opts_init(&app.tls);
    echo_parse_args(&app, argc, argv);
    if (!app.plain) {
        echo_build_ssl_config(&app); /* exits with a one-line reason on any problem */
    }
    /* A peer that vanishes must cost an error code, never the process. */
    signal(SIGPIPE, SIG_IGN);
    if (app.ticket_keys_redis && (exit_code = start_fleet_tickets(&app)) != 0) {
        fleet_tickets_free(app.fleet);
        app_loop_stop(app.fleet_loop);
        tern_ssl_config_unref(app.ssl);
        tern_ticket_keys_free(app.tickets);
        return exit_code;
    }
    exit_code = EXIT_FAILURE_RUNTIME;

    tern_runtime_options_init(&ro);
    ro.reactors = app.common.threads;
    app.rt = tern_runtime_new(&ro);
    if (app.rt == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        tern_ssl_config_unref(app.ssl);
        fleet_tickets_free(app.fleet);
        app_loop_stop(app.fleet_loop);
        tern_ticket_keys_free(app.tickets);
        return EXIT_FAILURE_RUNTIME;
    }
    tern_server *srv = tern_server_new(app.rt, app.ssl, on_incoming, &app);
    /* The server holds its own reference; a reload replaces it there. */
    tern_ssl_config_unref(app.ssl);
    app.ssl = NULL;
    app.srv = srv;
    if (srv == NULL) {
        app_log_msg(APP_LOG_ERROR, "out of memory");
        goto out;
    }
    if ((rc = tern_server_set_reuseport(srv, app.reuseport)) < 0 ||
        (rc = tern_server_set_balance_policy(srv, app.balance)) < 0 ||
        (rc = tern_server_set_max_connections(srv, app.max_connections)) < 0 ||
        (rc = tern_server_set_hibernate_after(srv, app.hibernate_after_ms)) < 0) {
        app_log(APP_LOG_ERROR, "server setup failed", "err=%s", tern_err_name(rc));
        goto out;
    }
    app_set_run_as(app.user, app.group, app.allow_root);
    if (app.admin != NULL && (exit_code = start_admin(&app)) != 0) {
        goto out;
    }
    char addr[300];
    exit_code = app_listen_and_start(app.rt, srv, app.idle_timeout_ms, app.common.listen,
                                     app.drain_ms, on_reload, &app, &app.started, addr,
                                     sizeof(addr));
    if (exit_code != 0) {
        goto out;
    }
    char tls[160];
    if (app.plain) {
        snprintf(tls, sizeof(tls), "off");
    } else {
        snprintf(tls, sizeof(tls), "%s tls_min=%s client_cert=%s wolfssl=%s",
                 app.starttls ? "starttls" : "on", app.tls.tls_min_name ? app.tls.tls_min_name : "1.2",
                 app.verify_client ? "required" : app.client_ca != NULL ? "optional" : "off",
                 tern_ssl_library_version_string());
    }
    app_log(APP_LOG_INFO, "listening",
            "addr=%s tls=%s threads=%u balance=%s reuseport=%s max_connections=%u "
            "idle_timeout_ms=%u hibernate_after_ms=%u drain_ms=%u version=%s",
            addr, tls, tern_runtime_reactor_count(app.rt), echo_balance_names[app.balance],
            app.reuseport ? "on" : "off", app.max_connections, (unsigned)app.idle_timeout_ms,
            (unsigned)app.hibernate_after_ms, (unsigned)app.drain_ms, tern_version_string());
    if (app.stats_interval_s > 0) {
        start_stats_reporter(&app);
    }

    rc = app_join(app.rt); /* returns after SIGINT/SIGTERM and the drain */
    log_stats(&app, "stopped");
    exit_code = rc < 0 ? EXIT_FAILURE_RUNTIME : 0;

out:
    tern_actor_unref(app.stats_actor);
    tern_runtime_free(app.rt);
    app_admin_free(app.admin_state); /* after the runtime, which freed its server */
    fleet_tickets_free(app.fleet);
    app_loop_stop(app.fleet_loop);
    tern_ticket_keys_free(app.tickets); /* after the runtime, which freed the configurations */
    return exit_code;
}

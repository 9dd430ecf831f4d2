/* SPDX-License-Identifier: MIT */
#include "setup.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conffile.h"
#include "log.h"
#include "opts.h"
#include "service.h"

/* Set up on the main thread before the runtime starts; read by the signal thread after. */
static struct {
    const char *user;
    const char *group;
    bool allow_root;
    tern_reload_fn on_reload;
    void *reload_user;
    char status[360]; /* STATUS= after READY=1 */
} run;

void app_setup_fail(const char *opt, const char *arg, const char *why)
{
    const char *where = app_conf_origin(opt); /* a value from the configuration file */
    if (where != NULL) {
        fprintf(stderr, "%s: %s: %s %s: %s\n", app_opt_program(), where,
                strncmp(opt, "--", 2) == 0 ? opt + 2 : opt, arg, why);
    } else {
        fprintf(stderr, "%s: %s %s: %s\n", app_opt_program(), opt, arg, why);
    }
    exit(APP_EXIT_USAGE);
}

const char *app_config_reason(const tern_ssl_config *cfg, const char *arg, int rc)
{
    const char *why = tern_ssl_config_error_string(cfg);
    size_t n = strlen(arg);

    if (why == NULL || why[0] == '\0') {
        return tern_strerror(rc);
    }
    const char *at = strstr(why, arg);
    if (at != NULL && at[n] == ':' && at[n + 1] == ' ' &&
        memchr(why, ':', (size_t)(at - why)) == NULL) {
        why = at + n + 2;
    }
    return why;
}

void app_config_fail(const tern_ssl_config *cfg, const char *opt, const char *arg, int rc)
{
    app_setup_fail(opt, arg, app_config_reason(cfg, arg, rc));
}

void app_bound_address(const char *listen, const tern_server *srv, char *out, size_t len)
{
    char host[256] = "";
    uint16_t port = 0;

    (void)tern_parse_host_port(listen, host, sizeof(host), &port);
    port = tern_server_port(srv);
    if (host[0] == '\0') {
        snprintf(out, len, "*:%u", (unsigned)port);
    } else if (strchr(host, ':') != NULL) {
        snprintf(out, len, "[%s]:%u", host, (unsigned)port);
    } else {
        snprintf(out, len, "%s:%u", host, (unsigned)port);
    }
}

long app_heap_in_use_kib(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
#else
    return -1;
#endif
}

double app_seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

const char *app_protocol_name(int protocol)
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

void app_set_run_as(const char *user, const char *group, bool allow_root)
{
    run.user = user;
    run.group = group;
    run.allow_root = allow_root;
}

/* "host:port" of a bound socket, IPv6 bracketed; "?" if unknown. */
static void socket_address(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;

    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
            port = ntohs(in6->sin6_port);
        }
    }
    snprintf(out, len, strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u", host, port);
}

/* SIGHUP, on the signal thread: the program's reload between RELOADING=1 and READY=1. */
static void reload_notified(tern_runtime *rt, void *user)
{
    app_notify_reloading();
    run.on_reload(rt, run.reload_user);
    app_notify_ready(run.status);
}

/* Takes an inherited listening socket (systemd socket activation) for @p srv if there is one.
 * @return 1 if @p srv listens on it (its address in @p addr), 0 if there is none, -1 if it
 * cannot (said on stderr). */
static int listen_inherited(tern_server *srv, const char *listen, char *addr, size_t addr_len)
{
    const char *name;
    int fd = app_listen_fd_take(NULL, &name);
    if (fd < 0) {
        return 0;
    }
    socket_address(fd, addr, addr_len);
    int rc = tern_server_listen_fd(srv, fd);
    if (rc < 0) {
        const char *why = tern_server_error_string(srv);
        fprintf(stderr, "%s: socket activation: %s\n", app_opt_program(),
                why[0] != '\0' ? why : tern_strerror(rc));
        return -1;
    }
    char quoted[128];
    app_log(APP_LOG_INFO, "socket activation", "fd=%d name=%s addr=%s listen_ignored=%s", fd,
            app_log_quote(quoted, sizeof(quoted), name), addr, listen);
    return 1;
}

int app_listen_and_start(tern_runtime *rt, tern_server *srv, uint32_t idle_timeout_ms,
                         const char *listen, uint32_t drain_ms, tern_reload_fn on_reload,
                         void *user, struct timespec *started, char *addr, size_t addr_len)
{
    int rc = tern_server_set_idle_timeout(srv, idle_timeout_ms);
    if (rc < 0) {
        app_log(APP_LOG_ERROR, "server setup failed", "err=%s", tern_err_name(rc));
        return 1;
    }
    int inherited = listen_inherited(srv, listen, addr, addr_len);
    if (inherited < 0) {
        return APP_EXIT_USAGE;
    }
    if (inherited == 0 && (rc = tern_server_listen_address(srv, listen)) < 0) {
        /* The server's error string names the address ("listen 127.0.0.1:8443: ..."). */
        const char *why = tern_server_error_string(srv);
        if (why[0] != '\0') {
            fprintf(stderr, "%s: %s\n", app_opt_program(), why);
        } else {
            fprintf(stderr, "%s: cannot listen on %s: %s\n", app_opt_program(), listen,
                    tern_strerror(rc));
        }
        return APP_EXIT_USAGE;
    }
    run.on_reload = on_reload;
    run.reload_user = user;
    rc = tern_runtime_stop_on_signals(rt, drain_ms, on_reload != NULL ? reload_notified : NULL,
                                      NULL);
    if (rc < 0) {
        app_log(APP_LOG_ERROR, "cannot handle signals", "err=%s", tern_err_name(rc));
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, started);
    if ((rc = tern_runtime_start(rt)) < 0) {
        const char *why = tern_runtime_error_string(rt);
        fprintf(stderr, "%s: cannot start: %s\n", app_opt_program(),
                why[0] != '\0' ? why : tern_strerror(rc));
        return rc == TERN_EINVAL ? APP_EXIT_USAGE : 1;
    }
    /* Root is dropped once every listener is bound: start opens the per-reactor ones of
     * SO_REUSEPORT, which must belong to the same user as the first. setuid applies to
     * every thread (glibc). */
    if (app_drop_privileges(run.user, run.group, run.allow_root) < 0) {
        tern_runtime_stop(rt, 0);
        tern_runtime_join(rt);
        return APP_EXIT_USAGE;
    }
    if (inherited == 0) {
        app_bound_address(listen, srv, addr, addr_len);
    }
    if ((rc = app_service_watch_start(rt)) < 0) {
        app_log(APP_LOG_WARN, "systemd: no watch thread (no STOPPING=1, no watchdog pings)",
                "err=%s", tern_err_name(rc));
    }
    snprintf(run.status, sizeof(run.status), "listening on %s, %u threads", addr,
             tern_runtime_reactor_count(rt));
    app_notify_ready(run.status);
    return 0;
}

int app_join(tern_runtime *rt)
{
    int rc = tern_runtime_join(rt);
    app_service_watch_stop();
    return rc;
}

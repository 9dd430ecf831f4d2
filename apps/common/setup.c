/* SPDX-License-Identifier: MIT */
#include "setup.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "opts.h"

void app_setup_fail(const char *opt, const char *arg, const char *why)
{
    fprintf(stderr, "%s: %s %s: %s\n", app_opt_program(), opt, arg, why);
    exit(APP_EXIT_USAGE);
}

void app_config_fail(const tern_ssl_config *cfg, const char *opt, const char *arg, int rc)
{
    const char *why = tern_ssl_config_error_string(cfg);
    size_t n = strlen(arg);

    if (why == NULL || why[0] == '\0') {
        why = tern_strerror(rc);
    } else {
        const char *at = strstr(why, arg);
        if (at != NULL && at[n] == ':' && at[n + 1] == ' ' &&
            memchr(why, ':', (size_t)(at - why)) == NULL) {
            why = at + n + 2;
        }
    }
    app_setup_fail(opt, arg, why);
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

int app_listen_and_start(tern_runtime *rt, tern_server *srv, uint32_t idle_timeout_ms,
                         const char *listen, uint32_t drain_ms, tern_reload_fn on_reload,
                         void *user, struct timespec *started, char *addr, size_t addr_len)
{
    int rc = tern_server_set_idle_timeout(srv, idle_timeout_ms);
    if (rc < 0) {
        app_log(APP_LOG_ERROR, "server setup failed", "err=%s", tern_err_name(rc));
        return 1;
    }
    if ((rc = tern_server_listen_address(srv, listen)) < 0) {
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
    if ((rc = tern_runtime_stop_on_signals(rt, drain_ms, on_reload, user)) < 0) {
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
    app_bound_address(listen, srv, addr, addr_len);
    return 0;
}

/* SPDX-License-Identifier: MIT */
#include "setup.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

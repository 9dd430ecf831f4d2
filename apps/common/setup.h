/* SPDX-License-Identifier: MIT */
/*
 * Set-up helpers shared by tern's programs: reporting a file or TLS configuration problem in
 * one line and exiting with the usage code, and the listening address as it is logged.
 */
#ifndef TERN_APPS_SETUP_H
#define TERN_APPS_SETUP_H

#include <stddef.h>
#include <time.h>

#include <tern/tern.h>

/** Prints "<program>: OPT ARG: WHY" on stderr and exits with APP_EXIT_USAGE. Setup only. */
_Noreturn void app_setup_fail(const char *opt, const char *arg, const char *why);

/** app_setup_fail with @p cfg's reason for @p rc, without repeating "ARG: " when the reason
 * already starts with the file name ("private key key.pem: ..."). */
_Noreturn void app_config_fail(const tern_ssl_config *cfg, const char *opt, const char *arg,
                               int rc);

/** "host:port" as logged: the host of @p listen and the port @p srv bound (useful with port
 * 0); "*:port" for any address, IPv6 hosts bracketed. */
void app_bound_address(const char *listen, const tern_server *srv, char *out, size_t len);

/* Seconds from @p t0 (CLOCK_MONOTONIC) to now: the uptime of the stats lines. */
double app_seconds_since(const struct timespec *t0);

/* Bytes malloc has handed out and not got back, in KiB (glibc's mallinfo2); -1 elsewhere.
 * Beside VmRSS it tells live memory from what the allocator keeps. */
long app_heap_in_use_kib(void);

#endif

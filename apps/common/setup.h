/* SPDX-License-Identifier: MIT */
/*
 * Set-up helpers shared by tern's programs: reporting a file or TLS configuration problem in
 * one line and exiting with the usage code, and the listening address as it is logged.
 */
#ifndef TERN_APPS_SETUP_H
#define TERN_APPS_SETUP_H

#include <stdbool.h>
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

/**
 * Closes @p srv's connections idle for @p idle_timeout_ms (0: never), makes it listen on
 * @p listen, has SIGINT/SIGTERM stop @p rt (draining @p drain_ms; SIGHUP
 * calls @p on_reload with @p user), then starts @p rt, noting the time in @p started (the
 * uptime's origin). Failures are reported on stderr: the address in the server's words, the
 * runtime's as "<program>: cannot start: <why>". @p addr receives the address as logged
 * (`app_bound_address`). Setup only.
 * @return 0; else the exit code: 2 for an address or runtime options that cannot be used, 1
 *         otherwise.
 */
int app_listen_and_start(tern_runtime *rt, tern_server *srv, uint32_t idle_timeout_ms,
                         const char *listen, uint32_t drain_ms, tern_reload_fn on_reload,
                         void *user, struct timespec *started, char *addr, size_t addr_len);

/** "TLSv1.2", "TLSv1.3" or "unknown", as logged. */
const char *app_protocol_name(int protocol);

/* Seconds from @p t0 (CLOCK_MONOTONIC) to now: the uptime of the stats lines. */
double app_seconds_since(const struct timespec *t0);

/* Bytes malloc has handed out and not got back, in KiB (glibc's mallinfo2); -1 elsewhere.
 * Beside VmRSS it tells live memory from what the allocator keeps. */
long app_heap_in_use_kib(void);

#endif

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

/** @p cfg's reason for @p rc (its error string, else tern_strerror), without "ARG: " when the
 * reason already starts with the file name ("private key key.pem: ..."): what follows
 * "OPT ARG: " in a message. Borrowed from @p cfg (or static) until @p cfg changes or is freed. */
const char *app_config_reason(const tern_ssl_config *cfg, const char *arg, int rc);

/** app_setup_fail with `app_config_reason`. */
_Noreturn void app_config_fail(const tern_ssl_config *cfg, const char *opt, const char *arg,
                               int rc);

/** "host:port" as logged: the host of @p listen and the port @p srv bound (useful with port
 * 0); "*:port" for any address, IPv6 hosts bracketed. */
void app_bound_address(const char *listen, const tern_server *srv, char *out, size_t len);

/**
 * The user (and group) to run as once the listeners are bound, for `app_listen_and_start`
 * (`app_drop_privileges` says what each combination does; all NULL/false: stay as started,
 * with a warning when that is root). The strings are borrowed until the runtime stops.
 * Setup only, before `app_listen_and_start`.
 */
void app_set_run_as(const char *user, const char *group, bool allow_root);

/**
 * Closes @p srv's connections idle for @p idle_timeout_ms (0: never), makes it listen on
 * @p listen (or, when systemd passed listening sockets (LISTEN_FDS), on the first one not
 * taken, and @p listen is ignored: service.h), has SIGINT/SIGTERM stop @p rt (draining
 * @p drain_ms; SIGHUP calls @p on_reload with @p user, between the RELOADING=1 and READY=1
 * notifications), then starts @p rt, noting the time in @p started (the uptime's origin),
 * drops privileges (`app_set_run_as`), and tells systemd READY=1 with STATUS="listening on
 * ADDR, N threads"; the watch thread then sends STOPPING=1 and the watchdog pings
 * (`app_service_watch_start`: call `app_join` instead of `tern_runtime_join`). Failures are
 * reported on stderr: the address in the server's words, the runtime's as
 * "<program>: cannot start: <why>". @p addr receives the address as logged
 * (`app_bound_address`). Setup only.
 * @return 0; else the exit code: 2 for an address, runtime options or a user that cannot be
 *         used, 1 otherwise.
 */
int app_listen_and_start(tern_runtime *rt, tern_server *srv, uint32_t idle_timeout_ms,
                         const char *listen, uint32_t drain_ms, tern_reload_fn on_reload,
                         void *user, struct timespec *started, char *addr, size_t addr_len);

/** `tern_runtime_join`, then stops the systemd watch thread (`app_service_watch_stop`): what a
 * program that started with `app_listen_and_start` calls before `tern_runtime_free`.
 * @return as `tern_runtime_join`. @thread blocking */
int app_join(tern_runtime *rt);

/** "TLSv1.2", "TLSv1.3" or "unknown", as logged. */
const char *app_protocol_name(int protocol);

/* Seconds from @p t0 (CLOCK_MONOTONIC) to now: the uptime of the stats lines. */
double app_seconds_since(const struct timespec *t0);

/* Bytes malloc has handed out and not got back, in KiB (glibc's mallinfo2); -1 elsewhere.
 * Beside VmRSS it tells live memory from what the allocator keeps. */
long app_heap_in_use_kib(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The service manager's side of tern's programs (systemd): readiness and state notifications,
 * the watchdog, socket activation and dropping privileges after binding.
 *
 * Notifications go through Debian's libsystemd (sd_notify) when the build found it
 * (TERN_WITH_SYSTEMD, see the top CMakeLists.txt); without it they are no-ops, and
 * `app_service_has_systemd` says so. They are also no-ops when NOTIFY_SOCKET is not set (the
 * program was not started by systemd with Type=notify), so calling them is always safe.
 *
 * The watch thread (`app_service_watch_start`): once the runtime runs, one thread of the
 * program's own wakes every 50 ms (or more often for a short watchdog) and
 *   - sends STOPPING=1 once the runtime begins to stop (SIGINT/SIGTERM started the drain:
 *     `tern_runtime_is_stopping`), so `systemctl stop` shows "deactivating" at once;
 *   - when WatchdogSec= is set (WATCHDOG_USEC, `sd_watchdog_enabled`), sends WATCHDOG=1 every
 *     half interval, but only when every reactor ran the small task posted to it since the
 *     last ping: a reactor stuck in a callback (a busy loop, a blocking call) stops the pings
 *     and systemd restarts the service after WatchdogSec. A timer on one reactor would only
 *     prove that reactor alive; the thread proves them all.
 *
 * Socket activation (`app_listen_fd_take`): LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES are read
 * once (sd_listen_fds_with_names, or parsed here without libsystemd: the descriptors start at
 * 3, LISTEN_PID must be this process) and removed from the environment. Each listener of the
 * program asks for one by name: the descriptor whose name (FileDescriptorName= of the .socket
 * unit) equals it, else the first one no listener took yet, in LISTEN_FDS order. A program
 * with one listener thus takes the first descriptor whatever its name.
 *
 * Privileges (`app_drop_privileges`): see its comment; the rule in one line: a user given is
 * switched to after binding, root without a user is a warning, user=root needs allow_root.
 */
#ifndef TERN_APPS_SERVICE_H
#define TERN_APPS_SERVICE_H

#include <stdbool.h>
#include <stddef.h>

#include <tern/tern.h>

/** Whether the program was built with libsystemd (notifications and the watchdog work). */
bool app_service_has_systemd(void);

/** READY=1 with STATUS=@p status (NULL: no status). After the listeners are bound and the
 * runtime started, and again after a reload. @thread any */
void app_notify_ready(const char *status);

/** RELOADING=1 with MONOTONIC_USEC= (systemd 253's Type=notify-reload wants it; older ones
 * ignore it). Before a reload; `app_notify_ready` follows it. @thread any */
void app_notify_reloading(void);

/** STOPPING=1: the program began to shut down. @thread any */
void app_notify_stopping(void);

/** STATUS=@p line, shown by `systemctl status`. @thread any */
void app_notify_status(const char *line);

/**
 * Starts the watch thread for @p rt (started: its reactors exist): STOPPING=1 when it begins
 * to stop, WATCHDOG=1 pings while every reactor answers (see the top of this file). Nothing is
 * started without libsystemd or outside systemd (no NOTIFY_SOCKET). @return 0, or a negative
 * TERN_E* code if the thread (or its guard actor on reactor 0) could not start. Setup only,
 * after `tern_runtime_start`; one runtime per process.
 */
int app_service_watch_start(tern_runtime *rt);

/** Stops and joins the watch thread (no-op if none), sending STOPPING=1 if the thread had not
 * yet. The thread is also stopped by itself when reactor 0 stops (an actor there joins it),
 * so a program that only calls `tern_runtime_join` is safe too; calling this after the join
 * (`app_join`) is the explicit form. Setup only. */
void app_service_watch_stop(void);

/**
 * The listening socket systemd passed for the listener named @p name (NULL: no name): the
 * descriptor named @p name in LISTEN_FDNAMES, else the first not yet taken, in order. The
 * caller owns it (hand it to `tern_server_listen_fd`). @p name_out (if not NULL) receives a
 * borrowed pointer to the descriptor's name ("" if it has none).
 * @return the descriptor, or -1 when none is left (or the program was not socket-activated).
 * Setup only.
 */
int app_listen_fd_take(const char *name, const char **name_out);

/** How many inherited listening sockets no listener took. Setup only. */
unsigned app_listen_fds_left(void);

/**
 * Parses LISTEN_PID and LISTEN_FDS as the protocol says (exposed for the unit test; used when
 * built without libsystemd): @p pid_text must be @p self in decimal, @p fds_text a count.
 * @return the count of descriptors (they are 3 .. 3+count-1); 0 when either is NULL, the
 *         pid is another process's, or a value is malformed.
 */
int app_listen_env_parse(const char *pid_text, const char *fds_text, long self);

/**
 * Drops root after the listeners are bound (before the runtime starts its threads):
 *   - @p user given: supplementary groups of @p user (initgroups), the group @p group (else the
 *     user's primary group), then the user; afterwards root must be out of reach (setuid(0)
 *     failing is checked). A @p user that is root (uid 0) is refused unless @p allow_root.
 *     When not running as root, @p user must be the current user already (systemd's User=
 *     did the switch): anything else is an error.
 *   - no @p user, running as root: a warning (naming --user and `user =`) unless
 *     @p allow_root, and the program goes on as root: tests and containers run as root.
 *   - @p group without @p user: refused.
 * Problems are one line on stderr. @return 0, or -1 (the program should exit with
 * APP_EXIT_USAGE). Setup only.
 */
int app_drop_privileges(const char *user, const char *group, bool allow_root);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's program state, shared by its parts:
 *   main.c     the command line, the configuration (file + options -> plan), -t, start/stop;
 *   reload.c   the running services (listeners, settings published), reloads, the watcher;
 *   metrics.c  the counters: the stats line and the admin listener's families.
 * Threads: main() sets up and joins; reloads run on the signal or watcher thread under
 * reload_lock; the metrics callbacks run on any reactor and read atomics and published
 * settings only.
 */
#ifndef TERN_GATEWAY_APP_H
#define TERN_GATEWAY_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <tern/tern.h>

#include "build.h"
#include "common/prom.h"
#include "conf.h"
#include "forward.h"

#define PROGRAM "tern-gateway"
#define EXIT_FAILURE_RUNTIME 1
#define MAX_PSK_FILES 64

struct app_admin;
struct app_loop;
struct drain_job;
struct fleet_tickets;

/* What one configuration builds into: checked as a whole before anything uses it. */
struct plan {
    struct conf conf;
    struct gw_globals g;
    size_t n;
    struct plan_svc {
        struct gw_settings *st;
        char addrs[GW_MAX_LISTEN][280];
        int n_addrs;
    } *svc;
};

struct app {
    /* the command line */
    const char *conf_path;        /* -c */
    bool test_only;               /* -t */
    struct conf_section cli;      /* the keys given as options (global and service alike) */
    bool cli_given[K_COUNT];
    bool cli_first[K_COUNT];      /* a repeatable option not seen yet */
    bool cli_log_level;           /* --log-level given: the file's log_level is not used */
    bool cli_log_format;          /* --log-format given: the file's log_format is not used */
    /* what runs */
    struct gw_globals g;          /* as started (changes need a restart) */
    char admin[280], user[64], group[64];
    tern_runtime *rt;
    tern_runtime *_Atomic rt_running; /* rt once started (the fleet thread reads it) */
    tern_ticket_keys *tickets;    /* one set for the process: tickets resume across reloads */
    struct app_loop *fleet_loop;  /* ticket_keys = redis://...: the fleet thread */
    struct fleet_tickets *fleet;  /* ... and the keys it keeps in step with Redis */
    char *fleet_url;              /* ... the URL as started (a change needs a restart) */
    struct app_admin *admin_state;
    struct timespec started;
    struct gw_service *services;  /* append-only list, never freed before exit */
    struct conf conf;             /* the configuration in force */
    char status[256];             /* systemd's STATUS= line */
    /* reloads come from the signal thread (SIGHUP) and the watcher thread: one at a time */
    pthread_mutex_t reload_lock;
    _Atomic uint64_t reloads_ok, reloads_failed;
    _Atomic int64_t last_reload;  /* time(NULL) of the last reload, 0: none */
    char psk_files[MAX_PSK_FILES][256];
    struct stat psk_seen[MAX_PSK_FILES];
    size_t n_psk_files;
    pthread_t watcher;
    bool watcher_started;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    bool watch_quit;
    struct drain_job *drains;     /* removed services' armed drain timers: reactor 0's; the
                                   * joining thread's once the runtime stopped */
};

/* ---- main.c: the configuration ----------------------------------------------------------- */

/** Builds everything the configuration says (file + command line). @return 0; -1 with every
 * problem found, one per line, in @p err. */
int plan_build(const struct app *app, struct plan *p, tern_ticket_keys *tickets, char *err,
               size_t len);
void plan_free(struct plan *p);
/** Appends @p line to the '\n'-separated lines of @p all. */
void add_line(char *all, size_t len, const char *line);

/* ---- reload.c: the running services ----------------------------------------------------- */

/** The service list (append-only; readable from any thread). */
struct gw_service *first_service(const struct app *app);
struct gw_service *next_service(const struct gw_service *s);
struct gw_service *new_service(struct app *app, const char *name);
void services_free(struct app *app);
/** Listens on @p addrs (at start: sockets from systemd first). @return 0 or an exit code. */
int listen_service(struct app *app, struct gw_service *svc, char addrs[][280], int n);
/** Gives @p st's metrics_identities their rows in @p svc. Before @p st is published. */
void assign_id_rows(struct app *app, struct gw_service *svc, struct gw_settings *st);
size_t identities_of(const struct gw_settings *st);
void log_service(struct gw_service *svc, const char *msg, const char *why);
/** Notes the PSK files of the configuration in force, for the watcher. Under reload_lock. */
void note_psk_files(struct app *app);
/** Frees drain timers a stopped runtime never fired. After the join. */
void drains_free(struct app *app);
/** SIGHUP (signal thread). */
void on_reload(tern_runtime *rt, void *user);
/** The PSK files' watcher thread. */
void *watch_main(void *arg);

/* ---- metrics.c ------------------------------------------------------------------------- */

void log_stats(struct app *app, const char *msg);
void on_usr1(tern_runtime *rt, void *user);
/** The admin listener's callbacks. @thread any reactor */
void gateway_metrics(struct prom_buf *out, void *user);
void gateway_stats_json(struct prom_buf *out, void *user);
/** /healthz's detail lines (a store of identities unreachable). */
size_t gateway_health_detail(char *buf, size_t len, void *user);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway's running services (app.h): their listeners, their published settings, and the
 * reloads that replace them (SIGHUP, or the watcher when a PSK file changed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app.h"
#include "common/log.h"
#include "common/opts.h"
#include "common/redis.h"
#include "common/service.h"
#include "common/setup.h"

/* ---- services ------------------------------------------------------------------------------ */

struct gw_service *next_service(const struct gw_service *s)
{
    return __atomic_load_n(&s->next, __ATOMIC_ACQUIRE);
}

struct gw_service *first_service(const struct app *app)
{
    return __atomic_load_n(&app->services, __ATOMIC_ACQUIRE);
}

static struct gw_service *find_service(struct app *app, const char *name)
{
    for (struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        if (!atomic_load(&s->draining) && strcmp(s->name, name) == 0) {
            return s;
        }
    }
    return NULL;
}

struct gw_service *new_service(struct app *app, const char *name)
{
    struct gw_service *svc = calloc(1, sizeof(*svc));
    if (svc == NULL) {
        return NULL;
    }
    snprintf(svc->name, sizeof(svc->name), "%s", name);
    /* appended: readers (metrics) walk the list from other threads without a lock */
    struct gw_service **tail = &app->services;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    __atomic_store_n(tail, svc, __ATOMIC_RELEASE);
    return svc;
}

void services_free(struct app *app)
{
    struct gw_service *s = app->services;
    while (s != NULL) {
        struct gw_service *next = s->next;
        gw_settings_release(atomic_load(&s->cur));
        free((void *)atomic_load(&s->id_counters));
        free(s);
        s = next;
    }
    app->services = NULL;
}

/* Creates a server of @p svc listening on @p addr (at start, a socket systemd passed for the
 * service, by its name or in order, instead: service.h). @return 0; -1 with the reason in
 * @p err. */
static int listen_one(struct app *app, struct gw_service *svc, const char *addr, bool at_start,
                      char *err, size_t len)
{
    if (svc->n_servers >= GW_MAX_LISTEN) {
        snprintf(err, len, "[%s] more than %d listeners", svc->name, GW_MAX_LISTEN);
        return -1;
    }
    tern_server *srv = tern_server_new(app->rt, NULL, gw_incoming, svc);
    if (srv == NULL) {
        snprintf(err, len, "out of memory");
        return -1;
    }
    const char *fd_name = NULL;
    int fd = at_start ? app_listen_fd_take(svc->name, &fd_name) : -1;
    int rc = tern_server_set_reuseport(srv, app->g.reuseport);
    if (rc == 0) {
        rc = fd >= 0 ? tern_server_listen_fd(srv, fd) : tern_server_listen_address(srv, addr);
    }
    if (rc < 0) {
        const char *why = tern_server_error_string(srv);
        snprintf(err, len, "[%s] %s", svc->name, why[0] != '\0' ? why : tern_strerror(rc));
        (void)tern_server_close(srv); /* freed with the runtime */
        return -1;
    }
    snprintf(svc->listen[svc->n_servers], sizeof(svc->listen[0]), "%s", addr);
    svc->servers[svc->n_servers++] = srv;
    if (fd >= 0) {
        app_log(APP_LOG_INFO, "listening on a socket from systemd", "service=%s fd=%d name=%s",
                svc->name, fd, fd_name != NULL ? fd_name : "");
    }
    return 0;
}

/* Makes @p svc listen on @p addrs. @return 0; 2 (exit code) with the reason on stderr. */
int listen_service(struct app *app, struct gw_service *svc, char addrs[][280], int n)
{
    char err[600];
    for (int i = 0; i < n; i++) {
        if (listen_one(app, svc, addrs[i], true, err, sizeof(err)) < 0) {
            fprintf(stderr, PROGRAM ": %s\n", err);
            return APP_EXIT_USAGE;
        }
    }
    return 0;
}

/* Stops @p svc's listener @p i (the others move down). */
static void close_listener(struct gw_service *svc, size_t i)
{
    int rc = tern_server_close(svc->servers[i]);
    if (rc < 0) {
        app_log(APP_LOG_WARN, "cannot close a listener", "service=%s addr=%s err=%s", svc->name,
                svc->listen[i], tern_err_name(rc));
    }
    for (size_t j = i + 1; j < svc->n_servers; j++) {
        svc->servers[j - 1] = svc->servers[j];
        memcpy(svc->listen[j - 1], svc->listen[j], sizeof(svc->listen[0]));
    }
    svc->n_servers--;
}

/* Gives each metrics_identities entry of @p st its row in @p svc's table (the same name keeps
 * its row across reloads; at most GW_MAX_ID_METRICS rows ever, further names are not counted)
 * and allocates the counters the first time. Before @p st is published. */
void assign_id_rows(struct app *app, struct gw_service *svc, struct gw_settings *st)
{
    if (st->n_id_metrics == 0) {
        return;
    }
    if (atomic_load(&svc->id_counters) == NULL) {
        /* a row per possible reactor (512 KiB, only with metrics_identities): the reactor
         * count is not settled before the runtime starts */
        void *t = calloc(TERN_MAX_REACTORS, GW_MAX_ID_METRICS * GW_ID_COUNTERS * sizeof(uint64_t));
        if (t == NULL) {
            app_log(APP_LOG_WARN, "out of memory: no per-identity metrics", "service=%s",
                    svc->name);
            return; /* the rows stay unassigned: nothing is counted */
        }
        atomic_store_explicit(&svc->id_counters, t, memory_order_release);
    }
    for (size_t i = 0; i < st->n_id_metrics; i++) {
        unsigned n = atomic_load(&svc->n_id_names), row = n;
        for (unsigned r = 0; r < n; r++) {
            if (strcmp(svc->id_names[r], st->id_metrics[i].pattern) == 0) {
                row = r;
                break;
            }
        }
        if (row == n && n >= GW_MAX_ID_METRICS) {
            app_log(APP_LOG_WARN, "per-identity metrics full: not counted", "service=%s limit=%d",
                    svc->name, GW_MAX_ID_METRICS);
            continue;
        }
        if (row == n) {
            snprintf(svc->id_names[n], sizeof(svc->id_names[n]), "%s", st->id_metrics[i].pattern);
            atomic_store_explicit(&svc->n_id_names, n + 1, memory_order_release);
        }
        st->id_metrics[i].slot = row;
    }
}

size_t identities_of(const struct gw_settings *st)
{
    return st->store != NULL ? tern_psk_store_count(st->store) : 0;
}

void log_service(struct gw_service *svc, const char *msg, const char *why)
{
    const struct gw_settings *st = atomic_load(&svc->cur);
    char list[GW_MAX_LISTEN * 64] = "";
    char backends[1024] = "";

    for (size_t i = 0; i < svc->n_servers; i++) {
        char one[300];
        app_bound_address(svc->listen[i], svc->servers[i], one, sizeof(one));
        add_line(list, sizeof(list), one);
    }
    for (char *p = list; *p != '\0'; p++) {
        *p = *p == '\n' ? ',' : *p;
    }
    for (size_t i = 0; i < st->backends.n; i++) {
        size_t used = strlen(backends);
        snprintf(backends + used, sizeof(backends) - used, "%s%s", i > 0 ? "," : "",
                 st->backends.v[i].text);
    }
    app_log(APP_LOG_INFO, msg,
            "%s%s%sservice=%s addr=%s backend=%s balance=%s backend_tls=%s routes=%zu "
            "proxy_protocol=%s proxy_protocol_in=%s cert=%s identities=%zu "
            "max_conn_per_identity=%u handshake_timeout_s=%u idle_timeout_s=%u "
            "hibernate_after_ms=%u",
            why != NULL ? "trigger=" : "", why != NULL ? why : "", why != NULL ? " " : "",
            svc->name, list, backends,
            st->balance == GW_BALANCE_ROUND_ROBIN ? "round-robin" : "failover",
            st->backend_ssl != NULL ? "on" : "off", st->n_routes, st->proxy_v2 ? "v2" : "off",
            st->proxy_in == GW_PROXY_IN_V1   ? "v1"
            : st->proxy_in == GW_PROXY_IN_V2 ? "v2"
                                             : "off",
            st->has_cert ? "on" : "off", identities_of(st), st->max_conn_per_identity,
            (unsigned)(st->handshake_timeout_ms / 1000), (unsigned)(st->idle_timeout_ms / 1000),
            (unsigned)st->hibernate_after_ms);
}

/* The PSK files to watch: those of the configuration in force. */
void note_psk_files(struct app *app)
{
    app->n_psk_files = 0;
    for (size_t i = 0; i < app->conf.n_svc && app->n_psk_files < MAX_PSK_FILES; i++) {
        const struct conf_val *v = conf_get(&app->conf.svc[i], K_PSK_FILE);
        if (v == NULL) {
            continue;
        }
        size_t k = app->n_psk_files++;
        snprintf(app->psk_files[k], sizeof(app->psk_files[k]), "%s", v->text);
        if (stat(v->text, &app->psk_seen[k]) < 0) {
            memset(&app->psk_seen[k], 0, sizeof(app->psk_seen[k]));
        }
    }
}


/* ---- reload ---------------------------------------------------------------------------------- */

/* A removed service's connections end after the drain time: a one-shot timer on reactor 0.
 * Armed jobs are listed in app->drains (reactor 0 only), so that the timers of a runtime
 * stopped before they fired are freed after the join (drains_free). */
struct drain_job {
    tern_runtime *rt;
    struct gw_service *svc;
    uint32_t ms;
    tern_timer *timer;
    struct drain_job **head; /* &app->drains */
    struct drain_job *next;
};

static void drain_fire(tern_timer *t, void *user)
{
    struct drain_job *j = user;
    for (struct drain_job **p = j->head; *p != NULL; p = &(*p)->next) {
        if (*p == j) {
            *p = j->next;
            break;
        }
    }
    gw_close_all(j->rt, j->svc);
    tern_timer_free(t);
    free(j);
}

static void drain_arm(tern_reactor *r, void *arg)
{
    struct drain_job *j = arg;
    if (r == NULL) {
        free(j); /* the runtime stopped: its own drain closes everything */
        return;
    }
    j->timer = tern_timer_new(r, drain_fire, j);
    if (j->timer == NULL || tern_timer_start(j->timer, j->ms, 0) < 0) {
        tern_timer_free(j->timer);
        gw_close_all(j->rt, j->svc);
        free(j);
        return;
    }
    j->next = *j->head;
    *j->head = j;
}

/* After the runtime was joined: the drain timers that never fired. */
void drains_free(struct app *app)
{
    while (app->drains != NULL) {
        struct drain_job *j = app->drains;
        app->drains = j->next;
        tern_timer_free(j->timer);
        free(j);
    }
}

static void remove_service(struct app *app, struct gw_service *svc, const char *why)
{
    atomic_store(&svc->draining, true);
    while (svc->n_servers > 0) {
        close_listener(svc, svc->n_servers - 1);
    }
    uint64_t open = gw_open_connections(svc);
    app_log(APP_LOG_INFO, "service removed: not accepting; its connections drain",
            "trigger=%s service=%s open=%llu drain_ms=%u", why, svc->name,
            (unsigned long long)open, (unsigned)app->g.drain_ms);
    struct drain_job *j = malloc(sizeof(*j));
    if (j != NULL) {
        *j = (struct drain_job){.rt = app->rt, .svc = svc, .ms = app->g.drain_ms,
                                .head = &app->drains};
        if (tern_reactor_post(tern_runtime_reactor(app->rt, 0), drain_arm, j) == 0) {
            return;
        }
        free(j);
    }
    gw_close_all(app->rt, svc);
}

/* Opens @p svc's listeners on those of @p addrs it does not listen on yet (reload() closed the
 * ones it gave up first, so that another service may take them; listeners of addresses that
 * stay were kept: nothing in their backlog is lost). @return the number of listeners that
 * could not be opened (logged). */
static int relisten(struct app *app, struct gw_service *svc, char addrs[][280], int n,
                    const char *why)
{
    int failed = 0;
    for (int k = 0; k < n; k++) {
        bool have = false;
        for (size_t i = 0; i < svc->n_servers && !have; i++) {
            have = strcmp(svc->listen[i], addrs[k]) == 0;
        }
        char err[600], quoted[700];
        if (have) {
            continue;
        }
        if (listen_one(app, svc, addrs[k], false, err, sizeof(err)) < 0) {
            app_log(APP_LOG_ERROR, "cannot listen", "trigger=%s service=%s addr=%s reason=%s",
                    why, svc->name, addrs[k], app_log_quote(quoted, sizeof(quoted), err));
            failed++;
            continue;
        }
        char bound[300];
        app_bound_address(addrs[k], svc->servers[svc->n_servers - 1], bound, sizeof(bound));
        app_log(APP_LOG_INFO, "listener opened", "trigger=%s service=%s addr=%s", why, svc->name,
                bound);
    }
    return failed;
}

static void reload(struct app *app, const char *why)
{
    static char err[16384];
    struct plan p;

    pthread_mutex_lock(&app->reload_lock);
    atomic_store(&app->last_reload, (int64_t)time(NULL));
    if (plan_build(app, &p, app->tickets, err, sizeof(err)) < 0) {
        char quoted[2048];
        atomic_fetch_add(&app->reloads_failed, 1);
        /* one line per problem, each with its line */
        for (char *line = strtok(err, "\n"); line != NULL; line = strtok(NULL, "\n")) {
            app_log(APP_LOG_WARN, "configuration refused; the settings in force stay",
                    "trigger=%s reason=%s", why, app_log_quote(quoted, sizeof(quoted), line));
        }
        plan_free(&p);
        note_psk_files(app); /* this version of the files was seen */
        pthread_mutex_unlock(&app->reload_lock);
        return;
    }
    /* what cannot change while running */
    if (p.g.threads != app->g.threads || p.g.auth_workers != app->g.auth_workers ||
        p.g.reuseport != app->g.reuseport ||
        (p.g.admin == NULL) != (app->admin[0] == '\0') ||
        (p.g.admin != NULL && strcmp(p.g.admin, app->admin) != 0) ||
        (p.g.user == NULL) != (app->user[0] == '\0') ||
        (p.g.user != NULL && strcmp(p.g.user, app->user) != 0)) {
        app_log(APP_LOG_WARN,
                "threads, auth_workers, reuseport, admin and user take effect at a restart",
                "trigger=%s", why);
    }
    /* ticket keys from Redis: the connection and the keys stay as started (a file given now
     * is not loaded either); from a file: a URL given now is not used */
    bool now_url = p.g.ticket_keys != NULL && rds_is_url(p.g.ticket_keys);
    if (app->fleet_url != NULL
            ? p.g.ticket_keys == NULL || strcmp(p.g.ticket_keys, app->fleet_url) != 0
            : now_url) {
        app_log(APP_LOG_WARN,
                "ticket_keys: a change of Redis URL needs a restart; the ticket keys in force stay",
                "trigger=%s", why);
    }
    if (p.g.log_level >= 0 && !app->cli_log_level) {
        app_log_set_level((enum app_log_level)p.g.log_level);
    }
    app->g.drain_ms = p.g.drain_ms;
    /* removed services first: a new service may take over their addresses */
    size_t removed = 0, added = 0, listen_failed = 0;
    for (struct gw_service *s = first_service(app); s != NULL; s = next_service(s)) {
        bool found = false;
        for (size_t i = 0; i < p.n && !found; i++) {
            found = strcmp(p.conf.svc[i].name, s->name) == 0;
        }
        if (!found && !atomic_load(&s->draining)) {
            remove_service(app, s, why);
            removed++;
        }
    }
    /* then addresses given up by services that stay, so that another may take them; noted,
     * to be listened on again by a service that then cannot listen where it moves */
    struct given_up {
        struct gw_service *svc;
        char addr[280];
    } *gone = calloc(p.n * GW_MAX_LISTEN, sizeof(*gone));
    size_t n_gone = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct gw_service *svc = find_service(app, p.conf.svc[i].name);
        for (size_t j = svc != NULL ? svc->n_servers : 0; j-- > 0;) {
            bool keep = false;
            for (int k = 0; k < p.svc[i].n_addrs && !keep; k++) {
                keep = strcmp(svc->listen[j], p.svc[i].addrs[k]) == 0;
            }
            if (!keep) {
                app_log(APP_LOG_INFO, "listener closed", "trigger=%s service=%s addr=%s", why,
                        svc->name, svc->listen[j]);
                if (gone != NULL) {
                    gone[n_gone].svc = svc;
                    memcpy(gone[n_gone++].addr, svc->listen[j], sizeof(gone[0].addr));
                }
                close_listener(svc, j);
            }
        }
    }
    struct gw_service **failed = calloc(p.n, sizeof(*failed)); /* services that could not */
    size_t n_failed = 0;
    for (size_t i = 0; i < p.n; i++) {
        struct gw_service *svc = find_service(app, p.conf.svc[i].name);
        bool is_new = svc == NULL;
        if (is_new && (svc = new_service(app, p.conf.svc[i].name)) == NULL) {
            app_log(APP_LOG_ERROR, "out of memory: service not added", "trigger=%s service=%s",
                    why, p.conf.svc[i].name);
            continue;
        }
        bool close_removed = p.svc[i].st->close_removed && !is_new;
        if (p.svc[i].st->store != NULL) {
            app_log(APP_LOG_INFO, "identities reloaded", "trigger=%s count=%zu service=%s", why,
                    identities_of(p.svc[i].st), svc->name);
        }
        assign_id_rows(app, svc, p.svc[i].st);
        gw_service_publish(app->rt, svc, p.svc[i].st);
        p.svc[i].st = NULL; /* the service holds it now */
        int f = relisten(app, svc, p.svc[i].addrs, p.svc[i].n_addrs, why);
        listen_failed += (size_t)f;
        if (f > 0 && failed != NULL) {
            failed[n_failed++] = svc;
        }
        if (is_new) {
            added++;
            log_service(svc, "service added", why);
        }
        if (close_removed) {
            gw_close_removed(app->rt, svc);
        }
    }
    /* a service that could not listen where it moved listens where it did, when it can (its
     * old addresses may have been taken by another service meanwhile): a mistaken address
     * does not take a service off the network */
    for (size_t i = 0; i < n_failed; i++) {
        for (size_t g = 0; g < n_gone; g++) {
            char why_not[600], quoted[700];
            if (gone[g].svc != failed[i]) {
                continue;
            }
            if (listen_one(app, failed[i], gone[g].addr, false, why_not, sizeof(why_not)) == 0) {
                app_log(APP_LOG_WARN, "listening again on its previous address",
                        "trigger=%s service=%s addr=%s", why, failed[i]->name, gone[g].addr);
            } else {
                app_log(APP_LOG_ERROR, "cannot listen", "trigger=%s service=%s addr=%s reason=%s",
                        why, failed[i]->name, gone[g].addr,
                        app_log_quote(quoted, sizeof(quoted), why_not));
            }
        }
    }
    free(failed);
    free(gone);
    /* the configuration in force: the new one */
    conf_free(&app->conf);
    app->conf = p.conf;
    memset(&p.conf, 0, sizeof(p.conf));
    size_t services = p.n;
    plan_free(&p);
    note_psk_files(app);
    if (listen_failed > 0) {
        atomic_fetch_add(&app->reloads_failed, 1);
    } else {
        atomic_fetch_add(&app->reloads_ok, 1);
    }
    app_log(listen_failed > 0 ? APP_LOG_WARN : APP_LOG_INFO, "configuration reloaded",
            "trigger=%s services=%zu added=%zu removed=%zu listen_failed=%zu", why, services,
            added, removed, listen_failed);
    pthread_mutex_unlock(&app->reload_lock);
}

void on_reload(tern_runtime *rt, void *user)
{
    struct app *app = user;
    (void)rt;
    app_notify_reloading();
    reload(app, "SIGHUP");
    app_notify_ready(app->status);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The watcher: polls the PSK files' identity (inode, size, mtime); a change is loaded once two
 * polls agree, so a file being written is not read half way. */
void *watch_main(void *arg)
{
    struct app *app = arg;
    struct stat last[MAX_PSK_FILES];
    bool changed = false;

    memset(last, 0, sizeof(last));
    pthread_mutex_lock(&app->watch_lock);
    while (!app->watch_quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += app->g.watch_s;
        pthread_cond_timedwait(&app->watch_cond, &app->watch_lock, &until);
        if (app->watch_quit) {
            break;
        }
        pthread_mutex_unlock(&app->watch_lock);
        bool differs = false, stable = true;
        pthread_mutex_lock(&app->reload_lock);
        for (size_t i = 0; i < app->n_psk_files; i++) {
            struct stat now;
            if (stat(app->psk_files[i], &now) < 0) {
                memset(&now, 0, sizeof(now));
            }
            differs |= !same_file(&now, &app->psk_seen[i]);
            stable &= same_file(&now, &last[i]);
            last[i] = now;
        }
        pthread_mutex_unlock(&app->reload_lock);
        if (differs && changed && stable) {
            reload(app, "file-change");
            changed = false;
        } else {
            changed = differs;
        }
        pthread_mutex_lock(&app->watch_lock);
    }
    pthread_mutex_unlock(&app->watch_lock);
    return NULL;
}


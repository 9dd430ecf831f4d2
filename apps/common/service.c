/* SPDX-License-Identifier: MIT */
/*
 * systemd integration for the programs (see service.h). libsystemd is optional: with
 * TERN_WITH_SYSTEMD (a build-time define) the notifications and the watchdog go through
 * sd_notify; without it they compile to nothing, and socket activation reads its three
 * environment variables here.
 */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if TERN_WITH_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "log.h"
#include "opts.h"

bool app_service_has_systemd(void)
{
    return TERN_WITH_SYSTEMD != 0;
}

/* ---- notifications ------------------------------------------------------------------------- */

/* The environment is kept (unset_environment 0): every later notification needs NOTIFY_SOCKET. */
#if TERN_WITH_SYSTEMD
static void notify(const char *state)
{
    int rc = sd_notify(0, state);
    if (rc < 0) {
        app_log(APP_LOG_DEBUG, "sd_notify failed", "err=%s", tern_err_name(rc));
    }
}
#else
static void notify(const char *state)
{
    (void)state;
}
#endif

/* Appends STATUS=<line> (one line: a newline would end the assignment) to @p buf. */
static void put_status(char *buf, size_t len, const char *line)
{
    size_t n = strlen(buf);
    int m = snprintf(buf + n, len - n, "STATUS=%s", line);
    if (m < 0) {
        return;
    }
    for (char *p = buf + n; *p != '\0'; p++) {
        if (*p == '\n') {
            *p = ' ';
        }
    }
}

void app_notify_ready(const char *status)
{
    char state[512] = "READY=1\n";

    if (status != NULL) {
        put_status(state, sizeof(state), status);
    }
    notify(state);
}

void app_notify_reloading(void)
{
    char state[96];
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_nsec / 1000);
    notify(state);
}

void app_notify_stopping(void)
{
    notify("STOPPING=1");
}

void app_notify_status(const char *line)
{
    char state[512] = "";

    put_status(state, sizeof(state), line);
    notify(state);
}

/* ---- the watch thread: STOPPING=1 and the watchdog --------------------------------------- */

/* Upper bound on the thread's sleep: how late STOPPING=1 may be. */
#define WATCH_TICK_MS 50u

static struct {
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* on CLOCK_MONOTONIC; made by start, destroyed by stop */
    bool quit;           /* under lock */
    tern_runtime *rt;
    uint64_t ping_every_ms; /* 0: no watchdog */
    bool stopping_sent;     /* the thread's, then the joiner's */
    unsigned nreactors;
    /* One per reactor: set by the task posted to it, read by the thread. A new round is
     * posted only once every task of the last one ran, so a task never answers for a later
     * round. */
    atomic_bool answered[TERN_MAX_REACTORS];
    bool posted[TERN_MAX_REACTORS]; /* thread only */
} watch = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs on reactor @p r (or with NULL once it stopped for good: it answers all the same). */
static void watch_answer(tern_reactor *r, void *arg)
{
    (void)r;
    atomic_store_explicit((atomic_bool *)arg, true, memory_order_release);
}

/* Posts the task to every reactor that has none pending; one the mailbox refused is tried
 * again at the next tick. A reactor that stopped for good counts as answered. */
static void watch_post(void)
{
    for (unsigned i = 0; i < watch.nreactors; i++) {
        if (watch.posted[i]) {
            continue;
        }
        int rc = tern_reactor_post(tern_runtime_reactor(watch.rt, i), watch_answer,
                                   &watch.answered[i]);
        if (rc == 0) {
            watch.posted[i] = true;
        } else if (rc == TERN_E_STOPPED) {
            watch.posted[i] = true;
            atomic_store_explicit(&watch.answered[i], true, memory_order_release);
        }
    }
}

static bool watch_all_answered(void)
{
    for (unsigned i = 0; i < watch.nreactors; i++) {
        if (!atomic_load_explicit(&watch.answered[i], memory_order_acquire)) {
            return false;
        }
    }
    return true;
}

static void watch_new_round(void)
{
    for (unsigned i = 0; i < watch.nreactors; i++) {
        atomic_store_explicit(&watch.answered[i], false, memory_order_relaxed);
        watch.posted[i] = false;
    }
    watch_post();
}

static void *watch_main(void *arg)
{
    (void)arg;
    uint64_t tick = WATCH_TICK_MS;
    uint64_t next_ping = now_ms();

    if (watch.ping_every_ms > 0) {
        if (watch.ping_every_ms / 2 < tick) {
            tick = watch.ping_every_ms / 2 > 0 ? watch.ping_every_ms / 2 : 1;
        }
        watch_new_round();
    }
    pthread_mutex_lock(&watch.lock);
    while (!watch.quit) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(tick % 1000u) * 1000000L;
        until.tv_sec += (time_t)(tick / 1000u) + until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&watch.cond, &watch.lock, &until);
        if (watch.quit) {
            break;
        }
        pthread_mutex_unlock(&watch.lock);

        if (!watch.stopping_sent && tern_runtime_is_stopping(watch.rt)) {
            app_notify_stopping();
            watch.stopping_sent = true;
        }
        if (watch.ping_every_ms > 0) {
            uint64_t now = now_ms();
            if (!watch_all_answered()) {
                watch_post(); /* a reactor that is late, or a mailbox that was full */
            } else if (now >= next_ping) {
                notify("WATCHDOG=1");
                next_ping = now + watch.ping_every_ms;
                watch_new_round();
            }
        }
        pthread_mutex_lock(&watch.lock);
    }
    pthread_mutex_unlock(&watch.lock);
    return NULL;
}

/*
 * The thread must be gone before the runtime is freed. An actor on reactor 0 sees to it
 * without the program's help: its `stopped` runs when that reactor stops, before
 * tern_runtime_join can return, and joins the thread there (the thread never waits on a
 * reactor, so this takes at most one tick).
 */
static void watch_reactor_stopped(tern_actor *a, void *user)
{
    (void)a;
    (void)user;
    app_service_watch_stop();
}

static const tern_actor_events watch_guard_events = {
    .stopped = watch_reactor_stopped,
};

/* WatchdogSec= in microseconds (WATCHDOG_USEC, for this process), or 0. */
static uint64_t watchdog_usec(void)
{
#if TERN_WITH_SYSTEMD
    uint64_t usec = 0;
    return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
#else
    return 0;
#endif
}

int app_service_watch_start(tern_runtime *rt)
{
    int rc;

    /* Nothing to tell without libsystemd, or without a service manager listening. */
    if (!app_service_has_systemd() || watch.started || getenv("NOTIFY_SOCKET") == NULL) {
        return 0;
    }
    uint64_t usec = watchdog_usec();
    watch.rt = rt;
    watch.ping_every_ms = usec / 2000u;
    if (usec > 0 && watch.ping_every_ms == 0) {
        watch.ping_every_ms = 1;
    }
    watch.nreactors = tern_runtime_reactor_count(rt);
    if (watch.nreactors > TERN_MAX_REACTORS) {
        watch.nreactors = TERN_MAX_REACTORS;
    }
    watch.quit = false;
    watch.stopping_sent = false;
    /* The thread's deadlines are monotonic: a clock step must not stop or rush the pings. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&watch.cond, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        return -rc;
    }
    if ((rc = pthread_create(&watch.thread, NULL, watch_main, NULL)) != 0) {
        pthread_cond_destroy(&watch.cond);
        return -rc;
    }
    watch.started = true;
    /* The guard comes after the thread: if reactor 0 already stopped, its `stopped` still
     * runs (and joins), or the spawn fails and the thread is stopped here. */
    tern_actor *guard =
        tern_actor_spawn(rt, tern_runtime_reactor(rt, 0), &watch_guard_events, NULL);
    if (guard == NULL) {
        app_service_watch_stop();
        return TERN_ENOMEM;
    }
    tern_actor_unref(guard); /* it lives until its reactor stops */
    if (usec > 0) {
        app_log(APP_LOG_INFO, "systemd watchdog", "interval_ms=%llu ping_ms=%llu reactors=%u",
                (unsigned long long)(usec / 1000u), (unsigned long long)watch.ping_every_ms,
                watch.nreactors);
    }
    return 0;
}

void app_service_watch_stop(void)
{
    if (!watch.started) {
        return;
    }
    pthread_mutex_lock(&watch.lock);
    watch.quit = true;
    pthread_cond_signal(&watch.cond);
    pthread_mutex_unlock(&watch.lock);
    pthread_join(watch.thread, NULL);
    pthread_cond_destroy(&watch.cond);
    /* A stop too quick for the thread to notice still says so. */
    if (!watch.stopping_sent && tern_runtime_is_stopping(watch.rt)) {
        app_notify_stopping();
    }
    watch.started = false;
    watch.rt = NULL;
}

/* ---- socket activation --------------------------------------------------------------------- */

#define LISTEN_FDS_START 3
#define LISTEN_FDS_MAX 64

static struct {
    bool read;
    unsigned count;
    char *names[LISTEN_FDS_MAX]; /* NULL: no name */
    bool taken[LISTEN_FDS_MAX];
} activation;

static int parse_count(const char *text, long max, long *out)
{
    char *end;

    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return -1;
    }
    errno = 0;
    long v = strtol(text, &end, 10);
    if (*end != '\0' || errno == ERANGE || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int app_listen_env_parse(const char *pid_text, const char *fds_text, long self)
{
    long pid, n;

    if (parse_count(pid_text, INT32_MAX, &pid) < 0 || pid != self ||
        parse_count(fds_text, LISTEN_FDS_MAX, &n) < 0) {
        return 0;
    }
    return (int)n;
}

/* Splits "a:b:c" into the names of the descriptors (a missing or empty one has none). */
static void set_names(const char *list)
{
    const char *p = list;

    for (unsigned i = 0; i < activation.count && p != NULL; i++) {
        size_t n = strcspn(p, ":");
        activation.names[i] = n > 0 ? strndup(p, n) : NULL;
        p = p[n] == ':' ? p + n + 1 : NULL;
    }
}

static void activation_read(void)
{
    if (activation.read) {
        return;
    }
    activation.read = true;
#if TERN_WITH_SYSTEMD
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0) {
        app_log(APP_LOG_WARN, "socket activation: LISTEN_FDS not usable", "err=%s",
                tern_err_name(n));
        n = 0;
    }
    activation.count = n > LISTEN_FDS_MAX ? LISTEN_FDS_MAX : (unsigned)n;
    for (unsigned i = 0; names != NULL && names[i] != NULL; i++) {
        if (i < activation.count && strcmp(names[i], "unknown") != 0) {
            activation.names[i] = names[i]; /* kept: read for the program's lifetime */
        } else {
            free(names[i]);
        }
    }
    free(names);
#else
    int n = app_listen_env_parse(getenv("LISTEN_PID"), getenv("LISTEN_FDS"), (long)getpid());
    activation.count = (unsigned)n;
    if (n > 0 && getenv("LISTEN_FDNAMES") != NULL) {
        set_names(getenv("LISTEN_FDNAMES"));
    }
    for (int i = 0; i < n; i++) {
        /* Ours, not for the programs we might start. */
        int fl = fcntl(LISTEN_FDS_START + i, F_GETFD);
        if (fl >= 0) {
            fcntl(LISTEN_FDS_START + i, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
#endif
    (void)set_names;
}

int app_listen_fd_take(const char *name, const char **name_out)
{
    activation_read();
    unsigned pick = activation.count;
    for (unsigned i = 0; name != NULL && i < activation.count; i++) {
        if (!activation.taken[i] && activation.names[i] != NULL &&
            strcmp(activation.names[i], name) == 0) {
            pick = i;
            break;
        }
    }
    for (unsigned i = 0; pick == activation.count && i < activation.count; i++) {
        if (!activation.taken[i]) {
            pick = i;
            break;
        }
    }
    if (pick >= activation.count) {
        return -1;
    }
    activation.taken[pick] = true;
    if (name_out != NULL) {
        *name_out = activation.names[pick] != NULL ? activation.names[pick] : "";
    }
    return LISTEN_FDS_START + (int)pick;
}

unsigned app_listen_fds_left(void)
{
    unsigned n = 0;

    activation_read();
    for (unsigned i = 0; i < activation.count; i++) {
        n += activation.taken[i] ? 0 : 1;
    }
    return n;
}

/* ---- privileges ---------------------------------------------------------------------------- */

static int privileges_fail(const char *user, const char *why)
{
    fprintf(stderr, "%s: user '%s': %s\n", app_opt_program(), user, why);
    return -1;
}

int app_drop_privileges(const char *user, const char *group, bool allow_root)
{
    char why[256];

    if (user == NULL) {
        if (group != NULL) {
            fprintf(stderr, "%s: group '%s': needs a user as well (--user, user =)\n",
                    app_opt_program(), group);
            return -1;
        }
        if (geteuid() == 0 && !allow_root) {
            app_log_msg(APP_LOG_WARN, "running as root: give --user (or user = in the "
                                      "configuration) to drop privileges after binding, or "
                                      "--allow-root to keep them without this warning");
        }
        return 0;
    }
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        return privileges_fail(user, errno != 0 ? strerror(errno) : "no such user");
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    if (group != NULL) {
        errno = 0;
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            fprintf(stderr, "%s: group '%s': %s\n", app_opt_program(), group,
                    errno != 0 ? strerror(errno) : "no such group");
            return -1;
        }
        gid = gr->gr_gid;
    }
    if (uid == 0 && !allow_root) {
        return privileges_fail(user, "is root (uid 0); add --allow-root (allow_root = yes "
                                     "in a configuration) to run as root on purpose");
    }
    if (geteuid() != 0) {
        /* Started as that user already (systemd's User=): nothing to switch. */
        if (geteuid() == uid && getuid() == uid && getegid() == gid) {
            return 0;
        }
        snprintf(why, sizeof(why), "only root can switch users (running as uid %u gid %u)",
                 (unsigned)geteuid(), (unsigned)getegid());
        return privileges_fail(user, why);
    }
    if (initgroups(pw->pw_name, gid) != 0) {
        snprintf(why, sizeof(why), "initgroups: %s", strerror(errno));
        return privileges_fail(user, why);
    }
    if (setgid(gid) != 0) {
        snprintf(why, sizeof(why), "setgid %u: %s", (unsigned)gid, strerror(errno));
        return privileges_fail(user, why);
    }
    if (setuid(uid) != 0) {
        snprintf(why, sizeof(why), "setuid %u: %s", (unsigned)uid, strerror(errno));
        return privileges_fail(user, why);
    }
    if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid) {
        return privileges_fail(user, "the switch did not take (ids differ afterwards)");
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        return privileges_fail(user, "root could be regained after the switch; refusing to run");
    }
    app_log(APP_LOG_INFO, "dropped privileges", "user=%s uid=%u gid=%u", pw->pw_name,
            (unsigned)uid, (unsigned)gid);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The Redis client of redis.h: the fleet thread (app_loop) and one connection (rds); URLs are
 * in redis_url.c.
 *
 * A connection is a tern_socket owned by the caller's reactor; hiredis only formats commands
 * and parses replies. Its life is a small state machine:
 *
 *   DOWN --(backoff timer)--> CONNECTING --(connected / encrypted)--> HELLO --(last hello
 *   reply)--> UP, and from CONNECTING, HELLO or UP back to DOWN on any failure.
 *
 * HELLO sends AUTH (a password), SELECT (db != 0), then SUBSCRIBE/PSUBSCRIBE (a subscriber)
 * or PING (a command connection: so a server that wants a password we lack, NOAUTH, is a
 * failed connect, not a stream of error replies). Every command sent is one entry of a FIFO
 * ring; replies are matched to its head in order. Pushes of a subscriber ("message",
 * "pmessage") are not replies and never touch the ring.
 *
 * Reentrancy: user callbacks run inside socket and timer callbacks. Every entry from the
 * runtime is bracketed by enter()/leave(); rds_free inside a callback marks the connection
 * dead and tears everything down but the struct and the reader, which leave() frees once the
 * outermost entry returns. After each user callback the code checks `dead` and the
 * connection generation before touching anything else.
 *
 * Thread: everything on the owner reactor, except the stats (relaxed atomics) and app_loop.
 */
#include "redis.h"

#include "log.h"

#include <hiredis/hiredis.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RDS_DEFAULT_TIMEOUT_MS 500
#define RDS_DEFAULT_CONNECT_MS 2000
#define RDS_DEFAULT_MAX_PENDING 4096
#define RDS_BACKOFF_MIN_MS 100
#define RDS_BACKOFF_MAX_MS 5000
#define RDS_KEEPALIVE_MS 10000
/* A reply (or the unparsed part of one) larger than this is taken as a broken stream: an
 * identity store never returns anything near it, and hiredis would buffer it whole. */
#define RDS_MAX_REPLY_BYTES (64u * 1024 * 1024)
/* The elements of all the arrays of one reply: hiredis allocates an array's element vector
 * from its header alone ("*100000000" costs 11 bytes and 800 MB), so the count is bounded
 * before it allocates. */
#define RDS_MAX_REPLY_ELEMENTS ((size_t)1 << 20)

/* ---- the fleet thread --------------------------------------------------------------------- */

struct app_loop {
    pthread_t thread;
    tern_reactor *reactor;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready; /* 0 starting, 1 running, -1 failed */
    atomic_bool stopping;
    char name[16];
};

static void *app_loop_main(void *arg)
{
    struct app_loop *l = arg;
    tern_reactor *r = tern_reactor_new();

    pthread_mutex_lock(&l->mu);
    l->reactor = r;
    l->ready = r != NULL ? 1 : -1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (r == NULL) {
        return NULL;
    }
    /* tern_reactor_run forgets a stop that came before it started: the stop task sets
     * `stopping` on this thread, so the loop ends only once that task ran. */
    while (!atomic_load(&l->stopping)) {
        tern_reactor_run(r);
    }
    tern_reactor_free(r);
    return NULL;
}

struct app_loop *app_loop_start(const char *name)
{
    struct app_loop *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    snprintf(l->name, sizeof(l->name), "%s", name != NULL ? name : "app-loop");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    atomic_init(&l->stopping, false);
    /* the thread starts with every signal blocked: the program's signal thread (the
     * runtime's) takes SIGHUP, SIGTERM and the rest, never the fleet thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&l->thread, NULL, app_loop_main, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        goto fail;
    }
    pthread_setname_np(l->thread, l->name);
    pthread_mutex_lock(&l->mu);
    while (l->ready == 0) {
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    if (l->ready < 0) {
        pthread_join(l->thread, NULL);
        goto fail;
    }
    return l;
fail:
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
    return NULL;
}

tern_reactor *app_loop_reactor(struct app_loop *l)
{
    return l != NULL ? l->reactor : NULL;
}

struct loop_call {
    struct app_loop *l;
    void (*fn)(void *arg);
    void *arg;
    int rc;
    bool done;
};

static void loop_call_task(tern_reactor *r, void *arg)
{
    struct loop_call *c = arg;
    if (r != NULL) {
        c->fn(c->arg);
    } else {
        c->rc = TERN_E_STOPPED;
    }
    pthread_mutex_lock(&c->l->mu);
    c->done = true;
    pthread_cond_broadcast(&c->l->cv);
    pthread_mutex_unlock(&c->l->mu);
}

int app_loop_call(struct app_loop *l, void (*fn)(void *arg), void *arg)
{
    if (l == NULL || fn == NULL) {
        return TERN_EINVAL;
    }
    if (pthread_equal(pthread_self(), l->thread)) {
        fn(arg); /* on the loop already: waiting for itself would never end */
        return 0;
    }
    struct loop_call c = {.l = l, .fn = fn, .arg = arg};
    int rc = tern_reactor_post(l->reactor, loop_call_task, &c);
    if (rc < 0) {
        return rc;
    }
    pthread_mutex_lock(&l->mu);
    while (!c.done) {
        pthread_cond_wait(&l->cv, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return c.rc;
}

static void loop_stop_task(tern_reactor *r, void *arg)
{
    struct app_loop *l = arg;
    atomic_store(&l->stopping, true);
    if (r != NULL) {
        tern_reactor_stop(r);
    }
}

void app_loop_stop(struct app_loop *l)
{
    if (l == NULL) {
        return;
    }
    /* A full mailbox empties as the loop runs: retry for a while (bounded: 10 s). */
    for (int i = 0; i < 10000; i++) {
        int rc = tern_reactor_post(l->reactor, loop_stop_task, l);
        if (rc != TERN_E_QUEUE_FULL) {
            break;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* ---- one connection ----------------------------------------------------------------------- */

enum conn_state { ST_DOWN, ST_CONNECTING, ST_HELLO, ST_UP };

/* What a pending entry waits for: a user's reply, or one of the connection's own. */
enum entry_kind { K_USER, K_HELLO, K_PING, K_SUBSCRIBE, K_KEEPALIVE };

struct entry {
    rds_reply_fn fn;
    void *arg;
    uint64_t sent_ms;
    uint8_t kind;
};

struct rds {
    struct rds_url url;
    char name[64];
    tern_reactor *reactor;
    tern_ssl_config *tls;
    uint32_t connect_timeout_ms;
    uint32_t command_timeout_ms;
    size_t max_pending;
    rds_state_fn on_state;
    rds_message_fn on_message;
    void *user;
    char **subs; /* channels, then patterns */
    size_t nchannels, npatterns;

    tern_socket *sock;
    redisReader *reader;
    enum conn_state state;
    unsigned gen; /* bumped by every drop: stale loops notice it */
    struct entry *ring;
    size_t cap, head, count, user_count;
    size_t hello_left;
    tern_timer *conn_timer;  /* DOWN: the backoff; CONNECTING/HELLO: the connect deadline */
    tern_timer *check_timer; /* command timeouts and keepalive PINGs */
    uint32_t backoff_ms;
    uint64_t rng;
    uint64_t last_send_ms;
    bool ever_up;
    bool in_outage;
    uint64_t outage_start_ms;
    char tls_reason[160];
    char last_hello_error[200];
    size_t reply_elements; /* array elements of the reply being parsed */
    bool too_many_elements;
    unsigned depth;
    bool dead;

    atomic_bool a_up;
    atomic_uint_least64_t a_connects, a_outages, a_commands, a_errors, a_failures, a_timeouts;
    atomic_uint_least64_t a_down_since;
    atomic_size_t a_pending;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void bump(atomic_uint_least64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void enter(struct rds *r)
{
    r->depth++;
}

static void destroy(struct rds *r);

/* @return true when @p r is gone (the caller must not touch it). */
static bool leave(struct rds *r)
{
    if (--r->depth == 0 && r->dead) {
        destroy(r);
        return true;
    }
    return false;
}

static void start_attempt(struct rds *r);
static void conn_failed(struct rds *r, const char *reason, bool timeout);

static bool ring_push(struct rds *r, uint8_t kind, rds_reply_fn fn, void *arg, uint64_t now)
{
    if (r->count == r->cap) {
        return false;
    }
    struct entry *e = &r->ring[(r->head + r->count) % r->cap];
    e->fn = fn;
    e->arg = arg;
    e->sent_ms = now;
    e->kind = kind;
    r->count++;
    if (kind == K_USER) {
        r->user_count++;
        atomic_store_explicit(&r->a_pending, r->user_count, memory_order_relaxed);
    }
    return true;
}

static struct entry ring_pop(struct rds *r)
{
    struct entry e = r->ring[r->head];
    r->head = (r->head + 1) % r->cap;
    r->count--;
    if (e.kind == K_USER) {
        r->user_count--;
        atomic_store_explicit(&r->a_pending, r->user_count, memory_order_relaxed);
    }
    return e;
}

/* Every pending entry gets NULL. A callback may free @p r (then the rest got NULL inside
 * that rds_free) or send (refused: the state is no longer UP). @return false if @p r died. */
static bool fail_pending(struct rds *r, bool timeout)
{
    while (r->count > 0 && !r->dead) {
        struct entry e = ring_pop(r);
        if (e.kind != K_USER) {
            continue;
        }
        bump(&r->a_failures, 1);
        if (timeout) {
            bump(&r->a_timeouts, 1);
        }
        if (e.fn != NULL) {
            e.fn(r, NULL, e.arg);
        }
    }
    return !r->dead;
}

static void log_url(const struct rds *r, char *q, size_t qlen)
{
    char red[1024];
    app_log_quote(q, qlen, rds_url_redacted(&r->url, red, sizeof(red)));
}

/* Closes the connection, if any: no socket events follow. */
static void drop_socket(struct rds *r)
{
    if (r->sock != NULL) {
        tern_socket_free(r->sock);
        r->sock = NULL;
    }
    r->gen++;
}

static uint32_t next_backoff(struct rds *r)
{
    /* xorshift64: jitter only, not secrets */
    r->rng ^= r->rng << 13;
    r->rng ^= r->rng >> 7;
    r->rng ^= r->rng << 17;
    uint32_t base = r->backoff_ms;
    uint32_t span = base * 2 / 5; /* 40 %: -20 % .. +20 % */
    uint32_t d = base - base / 5 + (span > 0 ? (uint32_t)(r->rng % (span + 1)) : 0);
    r->backoff_ms = base * 2 > RDS_BACKOFF_MAX_MS ? RDS_BACKOFF_MAX_MS : base * 2;
    return d;
}

/* The connection failed or was lost (or never came up): drop it, fail what is pending, log
 * the start of an outage, tell the user, and schedule the next attempt. */
static void conn_failed(struct rds *r, const char *reason, bool timeout)
{
    bool was_up = r->state == ST_UP;
    char why[256];

    snprintf(why, sizeof(why), "%s", reason);
    drop_socket(r);
    r->state = ST_DOWN;
    atomic_store_explicit(&r->a_up, false, memory_order_relaxed);
    if (!r->in_outage) {
        char qu[1100], qr[300];
        r->in_outage = true;
        r->outage_start_ms = mono_ms();
        atomic_store_explicit(&r->a_down_since, r->outage_start_ms, memory_order_relaxed);
        bump(&r->a_outages, 1);
        log_url(r, qu, sizeof(qu));
        app_log(APP_LOG_WARN, "redis unreachable", "name=%s url=%s reason=%s", r->name, qu,
                app_log_quote(qr, sizeof(qr), why));
    }
    tern_timer_start(r->conn_timer, next_backoff(r), 0);
    tern_timer_stop(r->check_timer);
    enter(r);
    if (fail_pending(r, timeout) && was_up && r->on_state != NULL) {
        r->on_state(r, false, r->user);
    }
    leave(r);
}

static void became_up(struct rds *r)
{
    char qu[1100];

    r->state = ST_UP;
    r->backoff_ms = RDS_BACKOFF_MIN_MS;
    r->last_hello_error[0] = '\0';
    tern_timer_stop(r->conn_timer);
    bump(&r->a_connects, 1);
    atomic_store_explicit(&r->a_down_since, 0, memory_order_relaxed);
    atomic_store_explicit(&r->a_up, true, memory_order_relaxed);
    log_url(r, qu, sizeof(qu));
    if (r->in_outage) {
        r->in_outage = false;
        app_log(APP_LOG_INFO, "redis connection restored", "name=%s url=%s down_ms=%llu",
                r->name, qu, (unsigned long long)(mono_ms() - r->outage_start_ms));
    } else if (!r->ever_up) {
        app_log(APP_LOG_INFO, "redis connected", "name=%s url=%s", r->name, qu);
    }
    r->ever_up = true;
    if (r->on_state != NULL) {
        r->on_state(r, true, r->user);
    }
}

/* Formats and writes one command. @return 0 or a TERN_E* code (nothing queued). */
static int send_argv(struct rds *r, int argc, const char **argv, const size_t *lens)
{
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (n < 0 || cmd == NULL) {
        return TERN_ENOMEM;
    }
    int rc = tern_socket_write(r->sock, cmd, (size_t)n);
    /* AUTH's bytes hold the password: do not leave them in freed memory */
    explicit_bzero(cmd, (size_t)n);
    free(cmd);
    if (rc == TERN_ENOBUFS) {
        rc = TERN_E_QUEUE_FULL;
    }
    if (rc == 0) {
        r->last_send_ms = mono_ms();
    }
    return rc;
}

static int send_subscribe(struct rds *r, const char *verb, char **names, size_t n,
                          uint64_t now)
{
    const char **argv = calloc(n + 1, sizeof(*argv));
    if (argv == NULL) {
        return TERN_ENOMEM;
    }
    argv[0] = verb;
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = names[i];
    }
    int rc = send_argv(r, (int)(n + 1), argv, NULL);
    free(argv);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        ring_push(r, K_SUBSCRIBE, NULL, NULL, now);
    }
    return rc;
}

/* The connection is open (and encrypted): AUTH, SELECT, then SUBSCRIBE or PING. */
static void send_hello(struct rds *r)
{
    uint64_t now = mono_ms();
    char db[16];
    int rc = 0;

    r->state = ST_HELLO;
    r->hello_left = 0;
    if (r->url.password[0] != '\0') {
        const char *argv[3] = {"AUTH", r->url.user, r->url.password};
        if (r->url.user[0] != '\0') {
            rc = send_argv(r, 3, argv, NULL);
        } else {
            argv[1] = r->url.password;
            rc = send_argv(r, 2, argv, NULL);
        }
        if (rc == 0) {
            ring_push(r, K_HELLO, NULL, NULL, now);
        }
    }
    if (rc == 0 && r->url.db != 0) {
        snprintf(db, sizeof(db), "%u", r->url.db);
        const char *argv[2] = {"SELECT", db};
        if ((rc = send_argv(r, 2, argv, NULL)) == 0) {
            ring_push(r, K_HELLO, NULL, NULL, now);
        }
    }
    if (rc == 0 && r->on_message != NULL) {
        if (r->nchannels > 0) {
            rc = send_subscribe(r, "SUBSCRIBE", r->subs, r->nchannels, now);
        }
        if (rc == 0 && r->npatterns > 0) {
            rc = send_subscribe(r, "PSUBSCRIBE", r->subs + r->nchannels, r->npatterns, now);
        }
    }
    if (rc == 0 && (r->on_message == NULL || r->nchannels + r->npatterns == 0)) {
        const char *argv[1] = {"PING"};
        if ((rc = send_argv(r, 1, argv, NULL)) == 0) {
            ring_push(r, K_PING, NULL, NULL, now);
        }
    }
    if (rc < 0) {
        char why[128];
        snprintf(why, sizeof(why), "sending the connection's first commands: %s",
                 tern_strerror(rc));
        conn_failed(r, why, false);
        return;
    }
    r->hello_left = r->count;
}

static bool str_is(const redisReply *x, const char *s)
{
    return x != NULL && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS) &&
           x->len == strlen(s) && strncasecmp(x->str, s, x->len) == 0;
}

/* A subscriber's push ("message" / "pmessage"), delivered to on_message. @return whether
 * @p x was one. */
static bool deliver_push(struct rds *r, const redisReply *x)
{
    if (r->on_message == NULL || x->type != REDIS_REPLY_ARRAY || x->elements < 3) {
        return false;
    }
    const redisReply *ch, *msg;
    if (x->elements == 3 && str_is(x->element[0], "message")) {
        ch = x->element[1];
        msg = x->element[2];
    } else if (x->elements == 4 && str_is(x->element[0], "pmessage")) {
        ch = x->element[2];
        msg = x->element[3];
    } else {
        return false;
    }
    if (ch->type != REDIS_REPLY_STRING || msg->type != REDIS_REPLY_STRING) {
        return true; /* malformed: nothing to deliver */
    }
    r->on_message(r, ch->str, ch->len, msg->str, msg->len, r->user);
    return true;
}

/* One parsed reply (called inside enter()/leave()). */
static void handle_reply(struct rds *r, const redisReply *x)
{
    if (deliver_push(r, x)) {
        return;
    }
    if (r->count == 0) {
        conn_failed(r, "protocol error: a reply to no command", false);
        return;
    }
    struct entry e = ring_pop(r);
    switch (e.kind) {
    case K_USER:
        if (x->type == REDIS_REPLY_ERROR) {
            bump(&r->a_errors, 1);
        }
        if (e.fn != NULL) {
            e.fn(r, x, e.arg);
        }
        return;
    case K_KEEPALIVE:
        return;
    case K_HELLO:
    case K_PING:
    case K_SUBSCRIBE:
        break;
    }
    bool ok = x->type != REDIS_REPLY_ERROR;
    if (!ok && e.kind == K_PING && x->len >= 6 && strncmp(x->str, "NOPERM", 6) == 0) {
        /* an ACL user that may not PING (only HMGET, say) still got in: NOAUTH is the
         * answer this PING looks for */
        ok = true;
    }
    if (ok && e.kind == K_SUBSCRIBE) {
        ok = x->type == REDIS_REPLY_ARRAY && x->elements == 3 &&
             (str_is(x->element[0], "subscribe") || str_is(x->element[0], "psubscribe"));
    }
    if (!ok) {
        /* Redis's own text ("WRONGPASS invalid username-password pair...", "NOAUTH ...",
         * "ERR DB index is out of range") holds no secret; log each new one once, as an
         * outage may already be under way with another reason. */
        char why[200];
        if (x->type == REDIS_REPLY_ERROR) {
            snprintf(why, sizeof(why), "refused: %.*s", (int)(x->len > 160 ? 160 : x->len),
                     x->str);
        } else {
            snprintf(why, sizeof(why), "protocol error: unexpected reply to SUBSCRIBE");
        }
        if (r->in_outage && strcmp(why, r->last_hello_error) != 0) {
            char qu[1100], qr[300];
            log_url(r, qu, sizeof(qu));
            app_log(APP_LOG_WARN, "redis unreachable", "name=%s url=%s reason=%s", r->name, qu,
                    app_log_quote(qr, sizeof(qr), why));
        }
        snprintf(r->last_hello_error, sizeof(r->last_hello_error), "%s", why);
        conn_failed(r, why, false);
        return;
    }
    if (r->hello_left > 0 && --r->hello_left == 0 && r->state == ST_HELLO) {
        became_up(r);
    }
}

static void on_ready_read(tern_socket *s, void *user)
{
    struct rds *r = user;
    unsigned gen = r->gen;

    enter(r);
    for (;;) {
        tern_buf view;
        if (tern_socket_peek_view(s, &view) < 0 || view.len == 0) {
            break;
        }
        if (redisReaderFeed(r->reader, view.base, view.len) != REDIS_OK) {
            conn_failed(r, "out of memory for a reply", false);
            goto out;
        }
        tern_socket_consume(s, view.len);
        if (r->reader->len - r->reader->pos > RDS_MAX_REPLY_BYTES) {
            conn_failed(r, "protocol error: a reply larger than 64 MiB", false);
            goto out;
        }
    }
    while (!r->dead && r->gen == gen) {
        void *reply = NULL;
        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            char why[200];
            snprintf(why, sizeof(why), "protocol error: %s",
                     r->too_many_elements ? "a reply of more than 2^20 elements"
                                          : r->reader->errstr);
            conn_failed(r, why, false);
            break;
        }
        if (reply == NULL) {
            break;
        }
        r->reply_elements = 0;
        handle_reply(r, reply);
        freeReplyObject(reply);
    }
out:
    leave(r);
}

static void on_connected(tern_socket *s, void *user)
{
    struct rds *r = user;
    if (!r->url.tls && r->state == ST_CONNECTING) {
        enter(r);
        send_hello(r);
        leave(r);
    }
}

static void on_encrypted(tern_socket *s, void *user)
{
    struct rds *r = user;
    if (r->state == ST_CONNECTING) {
        enter(r);
        send_hello(r);
        leave(r);
    }
}

static void on_ssl_errors(tern_socket *s, const tern_ssl_error_list *errs, void *user)
{
    struct rds *r = user;
    /* Not ignored: the socket closes after this returns; keep the first reason for the log. */
    if (tern_ssl_error_list_count(errs) > 0) {
        const tern_ssl_error *e = tern_ssl_error_list_at(errs, 0);
        snprintf(r->tls_reason, sizeof(r->tls_reason), "TLS: %s", tern_ssl_error_string(e));
    }
}

static void on_disconnected(tern_socket *s, int reason, void *user)
{
    struct rds *r = user;
    char why[300];

    if (r->tls_reason[0] != '\0') {
        snprintf(why, sizeof(why), "%s", r->tls_reason);
    } else if (reason == 0) {
        snprintf(why, sizeof(why), "the server closed the connection");
    } else {
        const char *es = tern_socket_error_string(s);
        snprintf(why, sizeof(why), "%s", es != NULL && es[0] != '\0' ? es : tern_strerror(reason));
    }
    enter(r);
    conn_failed(r, why, false);
    leave(r);
}

static const tern_socket_events rds_events = {
    .connected = on_connected,
    .ready_read = on_ready_read,
    .encrypted = on_encrypted,
    .ssl_errors = on_ssl_errors,
    .disconnected = on_disconnected,
};

static redisReplyObjectFunctions bounded_fns;
static void *(*default_create_array)(const redisReadTask *t, int elements);
static pthread_once_t bounded_once = PTHREAD_ONCE_INIT;

static void *bounded_create_array(const redisReadTask *t, int elements)
{
    struct rds *r = t->privdata;
    if (r == NULL || elements < 0 ||
        (size_t)elements > RDS_MAX_REPLY_ELEMENTS - r->reply_elements) {
        if (r != NULL) {
            r->too_many_elements = true;
        }
        return NULL; /* hiredis: "out of memory", a protocol error: the connection drops */
    }
    r->reply_elements += (size_t)elements;
    return default_create_array(t, elements);
}

static void bounded_init(void)
{
    redisReader *probe = redisReaderCreate();
    if (probe != NULL) {
        bounded_fns = *probe->fn;
        default_create_array = bounded_fns.createArray;
        bounded_fns.createArray = bounded_create_array;
        redisReaderFree(probe);
    }
}

/* hiredis's reader with its own reply objects, the array sizes bounded. */
static redisReader *reader_new(struct rds *r)
{
    pthread_once(&bounded_once, bounded_init);
    if (default_create_array == NULL) {
        return NULL;
    }
    redisReader *rd = redisReaderCreateWithFunctions(&bounded_fns);
    if (rd != NULL) {
        rd->privdata = r;
    }
    r->reply_elements = 0;
    r->too_many_elements = false;
    return rd;
}

static void start_attempt(struct rds *r)
{
    char why[300];
    int rc;

    r->tls_reason[0] = '\0';
    if (r->reader != NULL) {
        redisReaderFree(r->reader);
    }
    r->reader = reader_new(r);
    r->sock = r->reader != NULL ? tern_socket_new(r->reactor) : NULL;
    if (r->sock == NULL) {
        conn_failed(r, "out of memory", false);
        return;
    }
    r->state = ST_CONNECTING;
    tern_socket_set_events(r->sock, &rds_events, r);
    tern_socket_set_option(r->sock, TERN_SOCKET_OPTION_KEEPALIVE, 1);
    tern_socket_set_connect_timeout(r->sock, r->connect_timeout_ms);
    if (r->tls != NULL) {
        rc = tern_socket_set_ssl_config(r->sock, r->tls);
        if (rc == 0) {
            rc = tern_socket_connect_to_host_encrypted(r->sock, r->url.host, r->url.port,
                                                       r->url.verify_name[0] != '\0'
                                                           ? r->url.verify_name
                                                           : r->url.host);
        }
    } else {
        rc = tern_socket_connect_to_host(r->sock, r->url.host, r->url.port);
    }
    if (rc < 0) {
        snprintf(why, sizeof(why), "connect %s:%u: %s", r->url.host, (unsigned)r->url.port,
                 tern_strerror(rc));
        conn_failed(r, why, false);
        return;
    }
    /* The deadline covers lookup, connect, TLS and the hello exchange. */
    tern_timer_start(r->conn_timer, r->connect_timeout_ms, 0);
    uint32_t tick = r->command_timeout_ms / 4;
    tick = tick < 5 ? 5 : tick > 250 ? 250 : tick;
    tern_timer_start(r->check_timer, tick, tick);
}

static void on_conn_timer(tern_timer *t, void *user)
{
    struct rds *r = user;
    enter(r);
    if (r->state == ST_DOWN) {
        start_attempt(r);
    } else if (r->state != ST_UP) {
        char why[96];
        snprintf(why, sizeof(why), "no connection within %u ms", (unsigned)r->connect_timeout_ms);
        conn_failed(r, why, false);
    }
    leave(r);
}

static void on_check_timer(tern_timer *t, void *user)
{
    struct rds *r = user;
    if (r->state != ST_UP) {
        return; /* the connect deadline covers the rest */
    }
    uint64_t now = mono_ms();
    enter(r);
    if (r->count > 0 && now - r->ring[r->head].sent_ms >= r->command_timeout_ms) {
        char why[96];
        snprintf(why, sizeof(why), "a command got no reply within %u ms",
                 (unsigned)r->command_timeout_ms);
        conn_failed(r, why, true);
    } else if (r->count == 0 && now - r->last_send_ms >= RDS_KEEPALIVE_MS) {
        /* An idle connection to a host that vanished (no RST) is found by its PING's
         * timeout, not by the first lookup after it. */
        const char *argv[1] = {"PING"};
        if (send_argv(r, 1, argv, NULL) == 0) {
            ring_push(r, K_KEEPALIVE, NULL, NULL, now);
        }
    }
    leave(r);
}

static void destroy(struct rds *r)
{
    if (r->reader != NULL) {
        redisReaderFree(r->reader);
    }
    tern_ssl_config_unref(r->tls);
    if (r->subs != NULL) {
        for (size_t i = 0; i < r->nchannels + r->npatterns; i++) {
            free(r->subs[i]);
        }
        free(r->subs);
    }
    free(r->ring);
    explicit_bzero(&r->url, sizeof(r->url));
    free(r);
}

static int copy_names(struct rds *r, const char *const *ch, const char *const *pat)
{
    size_t nc = 0, np = 0;
    while (ch != NULL && ch[nc] != NULL) {
        nc++;
    }
    while (pat != NULL && pat[np] != NULL) {
        np++;
    }
    if (nc + np == 0) {
        return 0;
    }
    r->subs = calloc(nc + np, sizeof(*r->subs));
    if (r->subs == NULL) {
        return -1;
    }
    r->nchannels = nc;
    r->npatterns = np;
    for (size_t i = 0; i < nc + np; i++) {
        r->subs[i] = strdup(i < nc ? ch[i] : pat[i - nc]);
        if (r->subs[i] == NULL) {
            return -1;
        }
    }
    return 0;
}

static tern_ssl_config *build_tls(const struct rds_url *u, char *err, size_t err_len)
{
    tern_ssl_config *cfg = tern_ssl_config_new();
    if (cfg == NULL) {
        snprintf(err, err_len, "redis TLS: out of memory");
        return NULL;
    }
    int rc = u->ca[0] != '\0'
                 ? tern_ssl_config_add_ca_certificates_file(cfg, u->ca, TERN_ENCODING_PEM)
                 : tern_ssl_config_add_system_ca_certificates(cfg);
    if (rc == 0 && u->cert[0] != '\0') {
        rc = tern_ssl_config_set_local_certificate_file(cfg, u->cert, TERN_ENCODING_PEM);
        if (rc == 0) {
            rc = tern_ssl_config_set_private_key_file(cfg, u->key, TERN_ENCODING_PEM, NULL);
        }
    }
    if (rc < 0) {
        snprintf(err, err_len, "redis TLS: %s", tern_ssl_config_error_string(cfg));
        tern_ssl_config_unref(cfg);
        return NULL;
    }
    return cfg;
}

struct rds *rds_new(const struct rds_options *o, char *err, size_t err_len)
{
    char dummy[8];
    if (err == NULL || err_len == 0) {
        err = dummy;
        err_len = sizeof(dummy);
    }
    err[0] = '\0';
    if (o == NULL || o->url == NULL || o->reactor == NULL) {
        snprintf(err, err_len, "redis: no URL or reactor");
        return NULL;
    }
    struct rds *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, err_len, "redis: out of memory");
        return NULL;
    }
    r->url = *o->url;
    snprintf(r->name, sizeof(r->name), "%s", o->name != NULL ? o->name : "redis");
    r->reactor = o->reactor;
    r->connect_timeout_ms = o->connect_timeout_ms != 0 ? o->connect_timeout_ms
                                                       : RDS_DEFAULT_CONNECT_MS;
    r->command_timeout_ms = o->command_timeout_ms != 0 ? o->command_timeout_ms
                            : r->url.timeout_ms != 0   ? r->url.timeout_ms
                                                       : RDS_DEFAULT_TIMEOUT_MS;
    r->max_pending = o->max_pending != 0 ? o->max_pending : RDS_DEFAULT_MAX_PENDING;
    r->on_state = o->on_state;
    r->on_message = o->on_message;
    r->user = o->user;
    r->backoff_ms = RDS_BACKOFF_MIN_MS;
    r->rng = mono_ms() ^ (uint64_t)(uintptr_t)r ^ 0x9e3779b97f4a7c15ull;
    if (r->on_message != NULL && copy_names(r, o->channels, o->patterns) < 0) {
        snprintf(err, err_len, "redis: out of memory");
        goto fail;
    }
    /* room for the hello commands (AUTH, SELECT, PING or one per subscription) and a
     * keepalive, besides the user's */
    r->cap = r->max_pending + r->nchannels + r->npatterns + 4;
    r->ring = calloc(r->cap, sizeof(*r->ring));
    if (r->ring == NULL) {
        snprintf(err, err_len, "redis: out of memory");
        goto fail;
    }
    if (r->url.tls && (r->tls = build_tls(&r->url, err, err_len)) == NULL) {
        goto fail;
    }
    r->conn_timer = tern_timer_new(r->reactor, on_conn_timer, r);
    r->check_timer = tern_timer_new(r->reactor, on_check_timer, r);
    if (r->conn_timer == NULL || r->check_timer == NULL) {
        snprintf(err, err_len, "redis: out of memory");
        goto fail;
    }
    atomic_store_explicit(&r->a_down_since, mono_ms(), memory_order_relaxed);
    enter(r);
    start_attempt(r); /* no user callback can run here: nothing is pending, nothing was up */
    leave(r);
    return r;
fail:
    tern_timer_free(r->conn_timer);
    tern_timer_free(r->check_timer);
    destroy(r);
    return NULL;
}

int rds_command(struct rds *r, rds_reply_fn fn, void *arg, int argc, const char *const *argv,
                const size_t *argv_len)
{
    if (r == NULL || argc <= 0 || argv == NULL) {
        return TERN_EINVAL;
    }
    if (r->on_message != NULL) {
        return TERN_EINVAL;
    }
    if (r->dead || r->state != ST_UP) {
        return TERN_ENOTCONN;
    }
    if (r->user_count >= r->max_pending || r->count >= r->cap) {
        return TERN_E_QUEUE_FULL;
    }
    int rc = send_argv(r, argc, (const char **)argv, argv_len);
    if (rc < 0) {
        return rc;
    }
    ring_push(r, K_USER, fn, arg, r->last_send_ms);
    bump(&r->a_commands, 1);
    return 0;
}

int rds_commandv(struct rds *r, rds_reply_fn fn, void *arg, ...)
{
    va_list ap;
    int argc = 0;

    va_start(ap, arg);
    while (va_arg(ap, const char *) != NULL) {
        argc++;
    }
    va_end(ap);
    if (argc == 0) {
        return TERN_EINVAL;
    }
    const char **argv = calloc((size_t)argc, sizeof(*argv));
    if (argv == NULL) {
        return TERN_ENOMEM;
    }
    va_start(ap, arg);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    int rc = rds_command(r, fn, arg, argc, argv, NULL);
    free(argv);
    return rc;
}

bool rds_is_up(const struct rds *r)
{
    return r != NULL && !r->dead && r->state == ST_UP;
}

void rds_get_stats(const struct rds *r, struct rds_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL) {
        return;
    }
    /* const only in the interface: atomic loads of C11 want a non-const pointer */
    struct rds *m = (struct rds *)r;
    out->up = atomic_load_explicit(&m->a_up, memory_order_relaxed);
    out->connects = atomic_load_explicit(&m->a_connects, memory_order_relaxed);
    out->outages = atomic_load_explicit(&m->a_outages, memory_order_relaxed);
    out->commands = atomic_load_explicit(&m->a_commands, memory_order_relaxed);
    out->errors = atomic_load_explicit(&m->a_errors, memory_order_relaxed);
    out->failures = atomic_load_explicit(&m->a_failures, memory_order_relaxed);
    out->timeouts = atomic_load_explicit(&m->a_timeouts, memory_order_relaxed);
    out->down_since_ms = atomic_load_explicit(&m->a_down_since, memory_order_relaxed);
    out->pending = atomic_load_explicit(&m->a_pending, memory_order_relaxed);
}

void rds_free(struct rds *r)
{
    if (r == NULL || r->dead) {
        return;
    }
    r->dead = true;
    tern_timer_free(r->conn_timer);
    tern_timer_free(r->check_timer);
    r->conn_timer = NULL;
    r->check_timer = NULL;
    drop_socket(r);
    r->state = ST_DOWN;
    atomic_store_explicit(&r->a_up, false, memory_order_relaxed);
    enter(r);
    /* every pending callback gets NULL here; `dead` stops the loop early, so walk it by hand */
    while (r->count > 0) {
        struct entry e = ring_pop(r);
        if (e.kind == K_USER) {
            bump(&r->a_failures, 1);
            if (e.fn != NULL) {
                e.fn(r, NULL, e.arg);
            }
        }
    }
    leave(r);
}

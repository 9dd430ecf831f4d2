/* SPDX-License-Identifier: MIT */
/*
 * A small asynchronous Redis client for the programs (the fleet's identity store and ticket
 * keys), on a tern reactor.
 *
 * Why not hiredis's own async context and its libev adapter: Debian 12 ships hiredis 0.14,
 * whose async context reads and writes the descriptor itself and has no TLS (hiredis_ssl came
 * with 1.0), and an operator's Redis is often only reachable over TLS. So the connection is a
 * tern_socket (plaintext, or TLS through libtern's own client: the same code, verification and
 * timeouts as everything else tern does) on a reactor that owns it, and hiredis does what it
 * is good at: encoding commands (redisFormatCommandArgv) and parsing replies (redisReader). The
 * reactor is the fleet thread's own standalone reactor (app_loop below), never a reactor that
 * serves devices: a slow Redis cannot delay a handshake that the cache answers.
 *
 * One `struct rds` is one connection. It connects at once and again after every failure, with
 * a backoff (100 ms doubling to 5 s, +-20 % jitter); on each connect it sends AUTH (when the URL
 * has a password) and SELECT (db != 0), then (re)subscribes the channels and patterns given, and
 * only then reports itself up. Commands are pipelined in order; each reply goes to its callback
 * in order. A command not answered within `command_timeout_ms` counts as a timeout: the
 * connection is closed (its replies can no longer be matched), every pending callback gets
 * NULL, and it reconnects. An outage is logged once when it starts (warn) and once when it ends
 * (info, with its length), never per command.
 *
 * Threads: everything here, except app_loop_*, rds_url_* and rds_get_stats, on the owner
 * reactor's thread.
 *
 * Callbacks (replies, on_state, on_message) run on the owner reactor, never inside the call
 * that caused them (except rds_free, which gives pending replies NULL inside itself), and
 * may call anything here: rds_command (from a reply callback, from on_state(true)), rds_free
 * of this or another connection. Order on a loss: every pending reply callback gets NULL
 * (oldest first), then on_state(false) (only if it was up); a connection that never came up
 * gets no on_state(false). A NULL reply while the connection goes down sees rds_is_up false
 * and rds_command TERN_ENOTCONN.
 */
#ifndef TERN_APPS_REDIS_H
#define TERN_APPS_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tern/tern.h>

struct redisReply;

/* ---- URLs --------------------------------------------------------------------------------- */

/**
 * redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTION=VALUE&...]   (plaintext, port 6379)
 * rediss://...                                                      (TLS, port 6379)
 * HOST is a name, an IPv4 address or [IPv6]. Options: `ca=FILE` (CA bundle for rediss; without
 * it the system's), `verify_name=NAME` (the certificate's name; default HOST), `cert=FILE` and
 * `key=FILE` (a client certificate), `prefix=P` (the identity keys' prefix, default "tern:psk:"),
 * `timeout_ms=N` (command timeout, default 500), `password_file=FILE` (the password read from a
 * file: keeps it out of the command line and the configuration file).
 * USER and PASSWORD are percent-decoded. The password never appears in logs: use
 * rds_url_redacted for any text that shows a URL.
 */
struct rds_url {
    char host[256];
    uint16_t port;
    unsigned db;
    bool tls;
    char user[128];
    char password[256];
    char ca[512];
    char verify_name[256];
    char cert[512];
    char key[512];
    char prefix[128];
    uint32_t timeout_ms;
};

/** Parses @p text. @return 0; -1 with a reason in @p err ("redis URL: ..."). */
int rds_url_parse(const char *text, struct rds_url *out, char *err, size_t err_len);

/** @p u as text with the password replaced by "***" (for logs and metrics). @return @p buf. */
const char *rds_url_redacted(const struct rds_url *u, char *buf, size_t len);

/** Whether @p text looks like a Redis URL (redis:// or rediss://), as opposed to a file path. */
bool rds_is_url(const char *text);

/* ---- the fleet thread: a standalone reactor of its own ------------------------------------ */

struct app_loop;

/** Starts a thread that runs a standalone reactor (tern_reactor_new) until app_loop_stop,
 * with every signal blocked (the program's signal thread keeps them).
 * @return the loop, or NULL (a thread or memory failed). @thread setup */
struct app_loop *app_loop_start(const char *name);

/** The loop's reactor: post tasks to it from any thread (tern_reactor_post). */
tern_reactor *app_loop_reactor(struct app_loop *l);

/** Runs @p fn(arg) on the loop's thread and waits for it to return. @return 0, or the error of
 * tern_reactor_post. @thread any but the loop's own */
int app_loop_call(struct app_loop *l, void (*fn)(void *arg), void *arg);

/** Stops the loop and joins its thread (frees the reactor: free your sockets first, with
 * app_loop_call). NULL is a no-op. @thread setup */
void app_loop_stop(struct app_loop *l);

/* ---- one connection ----------------------------------------------------------------------- */

struct rds;

/** A reply to one command: @p reply is hiredis's parsed reply (valid only during the call; it
 * may be a REDIS_REPLY_ERROR), or NULL when the command failed (connection lost, timeout, the
 * client freed). */
typedef void (*rds_reply_fn)(struct rds *r, const struct redisReply *reply, void *arg);

/** The connection came up (ready for commands, subscriptions in place) or went down. */
typedef void (*rds_state_fn)(struct rds *r, bool up, void *user);

/** A message on a subscribed channel or pattern (a subscriber connection only): @p channel is
 * the channel it was published on (for patterns too). Not NUL-terminated. */
typedef void (*rds_message_fn)(struct rds *r, const char *channel, size_t channel_len,
                               const char *msg, size_t msg_len, void *user);

struct rds_options {
    const struct rds_url *url;
    tern_reactor *reactor;        /* the owner: every callback runs on it */
    const char *name;             /* in logs: "psk-store", "ticket-keys", ... */
    uint32_t connect_timeout_ms;  /* 0: 2000 */
    uint32_t command_timeout_ms;  /* 0: the URL's timeout_ms */
    size_t max_pending;           /* commands sent and not answered; 0: 4096 */
    rds_state_fn on_state;        /* may be NULL */
    rds_message_fn on_message;    /* non-NULL: a subscriber connection (no commands) */
    const char *const *channels;  /* SUBSCRIBE on every connect (subscriber only), NULL-ended */
    const char *const *patterns;  /* PSUBSCRIBE on every connect (subscriber only), NULL-ended */
    void *user;
};

/** Creates the connection and starts connecting. @return it, or NULL with a reason in @p err
 * (a TLS file that cannot be used, out of memory). @thread owner */
struct rds *rds_new(const struct rds_options *o, char *err, size_t err_len);

/**
 * Sends one command (argv of @p argc strings of the given lengths). @p fn gets its reply
 * later, never inside this call.
 * @return 0; TERN_ENOTCONN (the connection is not up: nothing sent, @p fn not called);
 *         TERN_E_QUEUE_FULL (max_pending reached); TERN_ENOMEM; TERN_EINVAL (a subscriber).
 */
int rds_command(struct rds *r, rds_reply_fn fn, void *arg, int argc, const char *const *argv,
                const size_t *argv_len);

/** As rds_command, with NUL-terminated arguments, NULL-ended: rds_commandv(r, fn, arg, "GET",
 * key, NULL). */
int rds_commandv(struct rds *r, rds_reply_fn fn, void *arg, ...);

/** Whether the connection is up (connected, authenticated, subscribed). */
bool rds_is_up(const struct rds *r);

/** Counters and state, for metrics and /healthz. @thread any (relaxed atomics inside) */
struct rds_stats {
    bool up;
    uint64_t connects;       /* successful (re)connections */
    uint64_t outages;        /* times it went down (or never came up at start) */
    uint64_t commands;       /* commands sent */
    uint64_t errors;         /* error replies */
    uint64_t failures;       /* commands that got NULL (lost connection, timeout) */
    uint64_t timeouts;       /* of those, timeouts */
    uint64_t down_since_ms;  /* monotonic ms when the current outage began; 0 when up */
    size_t pending;          /* sent, not answered */
};
void rds_get_stats(const struct rds *r, struct rds_stats *out);

/** Closes the connection; pending callbacks get NULL (inside this call). NULL is a no-op.
 * Legal inside any of @p r's own callbacks (a reply, on_state, on_message): the memory goes
 * once that callback returns, and nothing of @p r runs after it; do not use @p r after the
 * call. No on_state(false) follows a free. @thread owner */
void rds_free(struct rds *r);

#endif

/* SPDX-License-Identifier: MIT */
/* Session-ticket keys shared by a fleet through Redis (see fleet_tickets.h). */
#include "fleet_tickets.h"

#include "hex.h"
#include "log.h"
#include "prom.h"
#include "redis.h"

#include <hiredis/hiredis.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define KEY_BYTES 48 /* a 16-byte name, then a 32-byte key */
#define KEY_HEX (2 * KEY_BYTES)
#define MAX_KEYS 16
#define HASH "tern:tls:ticket-keys"
#define LEASE "tern:tls:ticket-keys:lease"
#define CHANNEL "tern:tls:ticket-keys:changed"

/* The compare-and-set write: both fields, only if `keys` is still what the rotating server
 * read (ARGV[1], "" for none), then the notice. */
static const char CAS_SCRIPT[] =
    "local cur = redis.call('HGET', KEYS[1], 'keys')\n"
    "if (cur or '') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'keys', ARGV[2], 'rotated', ARGV[3])\n"
    "redis.call('PUBLISH', ARGV[4], ARGV[3])\n"
    "return 1\n";

/* A set of keys as Redis holds it: keys[0] the next key, keys[1] the sealing one, ... */
struct key_list {
    size_t n;
    uint8_t raw[MAX_KEYS][KEY_BYTES];
};

struct fleet_tickets {
    struct app_loop *loop;
    tern_reactor *r;
    tern_ticket_keys *keys;
    struct rds_url url;
    char url_text[600]; /* redacted */
    uint32_t lifetime, rotate, keep;
    char node[96];

    /* fleet thread only */
    struct rds *cmd, *sub;
    tern_timer *timer;
    bool stopping;
    bool busy, again;          /* a read or a rotation in flight; another asked meanwhile */
    bool told_waiting;         /* "fleet resumption waits for Redis" logged */
    bool told_bad;             /* "unreadable keys in Redis" logged (until a good read) */
    bool no_scripts;           /* EVAL refused: write with HSET under the lease alone */
    bool have_applied;
    struct key_list applied;   /* the set last applied, as Redis held it */
    uint8_t local[KEY_BYTES];  /* this server's own key, sealing until Redis answers */
    int64_t local_until;       /* unix s: it keeps opening until then; 0: never used/over */
    struct key_list read;      /* the set read before a rotation (its base) */
    char *read_text;           /* ... and its text, for the compare-and-set */
    struct key_list next;      /* the rotation's result, until written */
    char *next_text;
    char stamp[24];

    _Atomic uint64_t rotations, applied_count;
    _Atomic int64_t last_sync;
};

static bool random_bytes(void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        b += got;
        n -= (size_t)got;
    }
    return true;
}

static void wipe_text(char **t)
{
    if (*t != NULL) {
        explicit_bzero(*t, strlen(*t));
        free(*t);
        *t = NULL;
    }
}

/* ---- the keys field: hex lines ------------------------------------------------------------ */

/* Parses @p len bytes of @p text. @return true with @p out filled (2..16 keys of distinct
 * names; 1 is accepted too: it seals); false (nothing usable: the reason is never logged with
 * the text). */
static bool parse_keys(const char *text, size_t len, struct key_list *out)
{
    size_t i = 0;
    out->n = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && text[end] != '\n') {
            end++;
        }
        size_t l = end - i;
        if (l > 0 && text[end - 1] == '\r') {
            l--;
        }
        if (l > 0) {
            if (l != KEY_HEX || out->n == MAX_KEYS) {
                return false;
            }
            for (size_t j = 0; j < KEY_BYTES; j++) {
                int hi = app_hex_digit((unsigned char)text[i + 2 * j]),
                    lo = app_hex_digit((unsigned char)text[i + 2 * j + 1]);
                if (hi < 0 || lo < 0) {
                    return false;
                }
                out->raw[out->n][j] = (uint8_t)(hi << 4 | lo);
            }
            for (size_t k = 0; k < out->n; k++) {
                if (memcmp(out->raw[k], out->raw[out->n], 16) == 0) {
                    return false;
                }
            }
            out->n++;
        }
        i = end + 1;
    }
    return out->n > 0;
}

/* The field's text for @p l (malloc'd; the caller wipes it), or NULL. */
static char *format_keys(const struct key_list *l)
{
    static const char digits[] = "0123456789abcdef";
    char *t = malloc(l->n * (KEY_HEX + 1) + 1), *p = t;
    if (t == NULL) {
        return NULL;
    }
    for (size_t k = 0; k < l->n; k++) {
        for (size_t j = 0; j < KEY_BYTES; j++) {
            *p++ = digits[l->raw[k][j] >> 4];
            *p++ = digits[l->raw[k][j] & 15];
        }
        *p++ = '\n';
    }
    *p = '\0';
    return t;
}

/* ---- applying a set ------------------------------------------------------------------------- */

/* Makes @p l the keys in force: line 2 seals (line 1 when alone), every line opens, and this
 * server's own start-up key too while tickets it sealed may live. */
static void apply(struct fleet_tickets *f, const struct key_list *l)
{
    uint8_t buf[(MAX_KEYS + 1) * KEY_BYTES];
    int64_t now = (int64_t)time(NULL);
    size_t n = l->n;

    atomic_store_explicit(&f->last_sync, now, memory_order_relaxed);
    if (f->have_applied && f->applied.n == l->n &&
        memcmp(f->applied.raw, l->raw, l->n * KEY_BYTES) == 0) {
        return; /* nothing new */
    }
    memcpy(buf, l->raw, n * KEY_BYTES);
    if (f->local_until != 0 && now > f->local_until) {
        f->local_until = 0;
        explicit_bzero(f->local, sizeof(f->local));
    }
    if (f->local_until != 0 && n < MAX_KEYS) {
        bool known = false;
        for (size_t k = 0; k < n && !known; k++) {
            known = memcmp(l->raw[k], f->local, 16) == 0;
        }
        if (!known) {
            memcpy(buf + n * KEY_BYTES, f->local, KEY_BYTES);
            n++;
        }
    }
    int rc = tern_ticket_keys_set(f->keys, buf, n, l->n >= 2 ? 1 : 0);
    explicit_bzero(buf, sizeof(buf));
    if (rc < 0) {
        app_log(APP_LOG_WARN, "ticket keys: the set from Redis was refused; the keys in force stay",
                "err=%s", tern_err_name(rc));
        return;
    }
    if (!f->have_applied) {
        app_log(APP_LOG_INFO, "ticket keys: the fleet's keys are in force", "redis=%s keys=%zu",
                f->url_text, l->n);
        if (f->local_until != 0) {
            /* tickets sealed alone stay good for one lifetime from now */
            f->local_until = now + (int64_t)f->lifetime;
        }
    }
    f->applied = *l;
    f->have_applied = true;
    atomic_fetch_add_explicit(&f->applied_count, 1, memory_order_relaxed);
}

/* An error reply (ACL, a read-only replica, a script refused), quoted: it is Redis's text.
 * Of a write, only its code ("NOPERM", "READONLY", ...): Redis may quote a command's
 * arguments in its errors ("unknown command ..., with args beginning with: ..."), and a
 * write's arguments are keys. */
static void log_refusal(const char *msg, const redisReply *reply, bool code_only)
{
    char text[201], quoted[420];
    size_t n = reply->len < sizeof(text) - 1 ? (size_t)reply->len : sizeof(text) - 1;
    memcpy(text, reply->str, n);
    text[n] = '\0';
    if (code_only) {
        text[strcspn(text, " ")] = '\0';
    }
    app_log(APP_LOG_WARN, msg, "err=%s", app_log_quote(quoted, sizeof(quoted), text));
}

/* ---- the timer: polls, and wakes up when a rotation is due ---------------------------------- */

static void sync_now(struct fleet_tickets *f);

static uint64_t poll_ms(const struct fleet_tickets *f)
{
    uint64_t ms = (uint64_t)f->rotate * 1000 / 4;
    return ms > 30000 ? 30000 : ms < 250 ? 250 : ms;
}

/* Next read: at the usual poll, or sooner when the next rotation falls due (plus up to 0.5 s
 * of jitter, so that the fleet does not race for the lease at the same instant). */
static void arm(struct fleet_tickets *f, int64_t rotated)
{
    uint64_t after = poll_ms(f);
    if (rotated > 0) {
        int64_t due_ms = (rotated + (int64_t)f->rotate - (int64_t)time(NULL)) * 1000;
        uint16_t jitter = 0;
        (void)random_bytes(&jitter, sizeof(jitter));
        due_ms += 50 + jitter % 500;
        if (due_ms < 50) {
            due_ms = 50;
        }
        if ((uint64_t)due_ms < after) {
            after = (uint64_t)due_ms;
        }
    }
    tern_timer_start(f->timer, after, 0);
}

static void on_timer(tern_timer *t, void *user)
{
    struct fleet_tickets *f = user;
    (void)t;
    if (!f->told_waiting && !f->have_applied && !rds_is_up(f->cmd)) {
        f->told_waiting = true;
        app_log(APP_LOG_WARN,
                "ticket keys: Redis does not answer; this server seals with a key of its own "
                "and fleet resumption waits for Redis",
                "redis=%s", f->url_text);
    }
    if (rds_is_up(f->cmd)) {
        sync_now(f);
    }
    if (!f->busy) {
        arm(f, 0);
    }
}

/* ---- read, and rotate when due ---------------------------------------------------------------- */

static void done(struct fleet_tickets *f, int64_t rotated)
{
    f->busy = false;
    wipe_text(&f->read_text);
    wipe_text(&f->next_text);
    explicit_bzero(&f->read, sizeof(f->read));
    explicit_bzero(&f->next, sizeof(f->next));
    if (f->stopping) {
        return;
    }
    arm(f, rotated);
    if (f->again) {
        f->again = false;
        sync_now(f);
    }
}

/* The new set is in Redis: in force here too. */
static void rotated_ok(struct fleet_tickets *f)
{
    atomic_fetch_add_explicit(&f->rotations, 1, memory_order_relaxed);
    app_log(APP_LOG_INFO, "ticket keys: rotated for the fleet", "node=%s keys=%zu rotated=%s",
            f->node, f->next.n, f->stamp);
    if (!f->stopping) {
        apply(f, &f->next);
    }
    done(f, (int64_t)strtoll(f->stamp, NULL, 10));
}

static void on_published(struct rds *r, const redisReply *reply, void *arg)
{
    (void)r, (void)reply, (void)arg; /* a lost notice costs a poll period, nothing more */
}

static void on_hset(struct rds *r, const redisReply *reply, void *arg)
{
    struct fleet_tickets *f = arg;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER) {
        if (!f->stopping) {
            (void)rds_commandv(f->cmd, on_published, f, "PUBLISH", CHANNEL, f->stamp, NULL);
        }
        rotated_ok(f);
        return;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        log_refusal("ticket keys: Redis refused the rotation", reply, true);
    }
    done(f, 0);
}

/* Without scripting: both fields in one HSET, under the lease alone (two writers are then
 * possible only if a winner stalls for longer than the lease). */
static void write_plain(struct fleet_tickets *f)
{
    if (rds_commandv(f->cmd, on_hset, f, "HSET", HASH, "keys", f->next_text, "rotated",
                     f->stamp, NULL) < 0) {
        done(f, 0);
    }
}

static void on_written(struct rds *r, const redisReply *reply, void *arg)
{
    struct fleet_tickets *f = arg;
    (void)r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        rotated_ok(f);
        return;
    }
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        bool no_scripts = (reply->len >= 6 && strncmp(reply->str, "NOPERM", 6) == 0) ||
                          strstr(reply->str, "unknown command") != NULL;
        if (no_scripts && !f->stopping) {
            /* a Redis with EVAL renamed away, or an ACL user without scripting */
            f->no_scripts = true;
            log_refusal("ticket keys: Redis runs no scripts; rotating with HSET under the lease "
                        "alone", reply, true);
            write_plain(f);
            return;
        }
        log_refusal("ticket keys: Redis refused the rotation", reply, true);
    }
    /* another server changed the set first (0), or Redis went away: read again */
    f->again = reply != NULL && reply->type == REDIS_REPLY_INTEGER;
    done(f, 0);
}

/* The new set from @p base (Redis's, or the one applied here): a new next key, the old next
 * seals, the others follow, `keep` keys at most. */
static bool rotate_from(struct fleet_tickets *f, const struct key_list *base)
{
    struct key_list *n = &f->next;
    n->n = 0;
    if (!random_bytes(n->raw[n->n++], KEY_BYTES)) {
        return false;
    }
    if (base->n == 0 && !random_bytes(n->raw[n->n++], KEY_BYTES)) {
        return false;
    }
    for (size_t k = 0; k < base->n && n->n < f->keep; k++) {
        if (memcmp(base->raw[k], n->raw[0], 16) != 0) {
            memcpy(n->raw[n->n++], base->raw[k], KEY_BYTES);
        }
    }
    return true;
}

static void on_lease(struct rds *r, const redisReply *reply, void *arg)
{
    struct fleet_tickets *f = arg;
    (void)r;
    if (f->stopping || reply == NULL || reply->type != REDIS_REPLY_STATUS) {
        /* nil: another server holds the lease and rotates; its notice (or the next poll)
         * brings the new set */
        done(f, 0);
        return;
    }
    /* Redis's set; none (Redis lost its data, or never had one): the set applied here, if
     * any, so the tickets issued under it keep resuming; else a fresh set */
    const struct key_list *base = f->read.n > 0 ? &f->read : &f->applied;
    snprintf(f->stamp, sizeof(f->stamp), "%" PRId64, (int64_t)time(NULL));
    if (!rotate_from(f, base) || (f->next_text = format_keys(&f->next)) == NULL) {
        app_log_msg(APP_LOG_WARN, "ticket keys: cannot make a key (randomness or memory)");
        done(f, 0);
        return;
    }
    if (f->no_scripts) {
        write_plain(f);
        return;
    }
    int rc = rds_commandv(f->cmd, on_written, f, "EVAL", CAS_SCRIPT, "1", HASH,
                          f->read_text != NULL ? f->read_text : "", f->next_text, f->stamp,
                          CHANNEL, NULL);
    if (rc < 0) {
        done(f, 0);
    }
}

static void try_rotate(struct fleet_tickets *f)
{
    char ms[24];
    uint64_t lease = (uint64_t)f->rotate * 1000 / 2;
    lease = lease > 10000 ? 10000 : lease < 1000 ? 1000 : lease;
    snprintf(ms, sizeof(ms), "%" PRIu64, lease);
    if (rds_commandv(f->cmd, on_lease, f, "SET", LEASE, f->node, "NX", "PX", ms, NULL) < 0) {
        done(f, 0);
    }
}

static void on_read(struct rds *r, const redisReply *reply, void *arg)
{
    struct fleet_tickets *f = arg;
    (void)r;
    if (f->stopping || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            log_refusal("ticket keys: Redis refused the read", reply, false);
        }
        done(f, 0);
        return;
    }
    const redisReply *keys = reply->element[0], *stamp = reply->element[1];
    bool have = keys->type == REDIS_REPLY_STRING;
    bool good = have && parse_keys(keys->str, keys->len, &f->read);
    int64_t rotated = stamp->type == REDIS_REPLY_STRING ? strtoll(stamp->str, NULL, 10) : 0;
    if (have && !good) {
        f->read.n = 0;
        if (!f->told_bad) {
            f->told_bad = true; /* never the text: it may hold keys */
            app_log(APP_LOG_WARN,
                    "ticket keys: the `keys` field in Redis is not 96-hex-digit lines; the keys "
                    "in force stay, the next rotation replaces it",
                    "hash=" HASH);
        }
    } else if (good) {
        f->told_bad = false;
        apply(f, &f->read);
    }
    int64_t now = (int64_t)time(NULL);
    /* not due; a `rotated` more than a period ahead of this clock (a writer's clock far off)
     * counts as due, or the fleet would never rotate again until then */
    if (good && rotated > 0 && rotated + (int64_t)f->rotate > now &&
        rotated <= now + (int64_t)f->rotate) {
        done(f, rotated);
        return;
    }
    /* due, or nothing usable: whoever gets the lease rotates (compare-and-set on this text) */
    if (have) {
        f->read_text = strndup(keys->str, keys->len);
        if (f->read_text == NULL) {
            done(f, 0);
            return;
        }
    }
    try_rotate(f);
}

static void sync_now(struct fleet_tickets *f)
{
    if (f->stopping) {
        return;
    }
    if (f->busy) {
        f->again = true;
        return;
    }
    f->busy = true;
    tern_timer_stop(f->timer);
    if (rds_commandv(f->cmd, on_read, f, "HMGET", HASH, "keys", "rotated", NULL) < 0) {
        f->busy = false;
        arm(f, 0);
    }
}

/* ---- connections ------------------------------------------------------------------------------ */

static void on_cmd_state(struct rds *r, bool up, void *user)
{
    struct fleet_tickets *f = user;
    (void)r;
    if (up) {
        sync_now(f);
    }
}

static void on_message(struct rds *r, const char *channel, size_t channel_len, const char *msg,
                       size_t msg_len, void *user)
{
    (void)r, (void)channel, (void)channel_len, (void)msg, (void)msg_len;
    struct fleet_tickets *f = user;
    if (rds_is_up(f->cmd)) {
        sync_now(f);
    }
}

static void on_sub_state(struct rds *r, bool up, void *user)
{
    struct fleet_tickets *f = user;
    (void)r;
    if (up && rds_is_up(f->cmd)) {
        sync_now(f); /* notices may have been missed while it was down */
    }
}

struct start_call {
    struct fleet_tickets *f;
    char err[256];
    bool ok;
};

static void start_on_loop(void *arg)
{
    static const char *const channels[] = {CHANNEL, NULL};
    struct start_call *c = arg;
    struct fleet_tickets *f = c->f;
    f->r = tern_reactor_current();
    f->timer = tern_timer_new(f->r, on_timer, f);
    if (f->timer == NULL) {
        snprintf(c->err, sizeof(c->err), "out of memory");
        return;
    }
    struct rds_options o = {
        .url = &f->url, .reactor = f->r, .name = "ticket-keys", .on_state = on_cmd_state,
        .user = f,
    };
    if ((f->cmd = rds_new(&o, c->err, sizeof(c->err))) == NULL) {
        return;
    }
    struct rds_options so = {
        .url = &f->url, .reactor = f->r, .name = "ticket-keys-sub", .on_state = on_sub_state,
        .on_message = on_message, .channels = channels, .user = f,
    };
    if ((f->sub = rds_new(&so, c->err, sizeof(c->err))) == NULL) {
        return;
    }
    /* the first look: 2.5 s, a little more than a connect's timeout, then the usual poll */
    tern_timer_start(f->timer, poll_ms(f) < 2500 ? poll_ms(f) : 2500, 0);
    c->ok = true;
}

static void stop_on_loop(void *arg)
{
    struct fleet_tickets *f = arg;
    f->stopping = true;
    tern_timer_free(f->timer);
    f->timer = NULL;
    rds_free(f->sub); /* pending callbacks get NULL now: they see `stopping` */
    rds_free(f->cmd);
    f->sub = f->cmd = NULL;
}

struct fleet_tickets *fleet_tickets_new(const struct fleet_tickets_options *o, char *err,
                                        size_t err_len)
{
    struct fleet_tickets *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    if (rds_url_parse(o->url, &f->url, err, err_len) < 0) {
        free(f);
        return NULL;
    }
    f->loop = o->loop;
    f->keys = o->keys;
    f->lifetime = o->lifetime_s;
    f->rotate = o->rotate_s != 0 ? o->rotate_s : (o->lifetime_s / 2 > 0 ? o->lifetime_s / 2 : 1);
    /* previous keys must open for a lifetime after they stop sealing */
    uint64_t prev = ((uint64_t)f->lifetime + f->rotate - 1) / f->rotate;
    if (prev + 2 > MAX_KEYS) {
        snprintf(err, err_len,
                 "ticket keys: a lifetime of %" PRIu32 " s with a rotation every %" PRIu32
                 " s needs %" PRIu64 " keys (at most %d): rotate less often",
                 f->lifetime, f->rotate, prev + 2, MAX_KEYS);
        free(f);
        return NULL;
    }
    f->keep = (uint32_t)prev + 2;
    rds_url_redacted(&f->url, f->url_text, sizeof(f->url_text));
    char host[64] = "";
    uint32_t tag = 0;
    (void)gethostname(host, sizeof(host) - 1);
    if (!random_bytes(&tag, sizeof(tag)) || !random_bytes(f->local, sizeof(f->local))) {
        snprintf(err, err_len, "ticket keys: no randomness");
        free(f);
        return NULL;
    }
    snprintf(f->node, sizeof(f->node), "%s:%d:%08" PRIx32, host, (int)getpid(), tag);
    /* until Redis answers: a key of this server's own (kept as an opener afterwards) */
    int rc = tern_ticket_keys_set(f->keys, f->local, 1, 0);
    if (rc < 0) {
        snprintf(err, err_len, "ticket keys: %s", tern_strerror(rc));
        explicit_bzero(f, sizeof(*f));
        free(f);
        return NULL;
    }
    f->local_until = INT64_MAX; /* until the fleet's keys arrive, then one lifetime */

    struct start_call c = {.f = f};
    rc = app_loop_call(f->loop, start_on_loop, &c);
    if (rc < 0 || !c.ok) {
        snprintf(err, err_len, "ticket keys: %s", rc < 0 ? tern_strerror(rc) : c.err);
        if (rc == 0) {
            app_loop_call(f->loop, stop_on_loop, f);
        }
        explicit_bzero(f, sizeof(*f));
        free(f);
        return NULL;
    }
    app_log(APP_LOG_INFO, "ticket keys: shared through Redis", "redis=%s node=%s rotate_s=%" PRIu32
            " lifetime_s=%" PRIu32 " keys=%" PRIu32, f->url_text, f->node, f->rotate,
            f->lifetime, f->keep);
    return f;
}

void fleet_tickets_free(struct fleet_tickets *f)
{
    if (f == NULL) {
        return;
    }
    (void)app_loop_call(f->loop, stop_on_loop, f);
    wipe_text(&f->read_text);
    wipe_text(&f->next_text);
    explicit_bzero(f, sizeof(*f));
    free(f);
}

void fleet_tickets_stats(const struct fleet_tickets *f, struct fleet_tickets_stats *out)
{
    struct rds_stats rs;
    rds_get_stats(f->cmd, &rs);
    out->up = rs.up;
    out->rotations = atomic_load_explicit(&f->rotations, memory_order_relaxed);
    out->applied = atomic_load_explicit(&f->applied_count, memory_order_relaxed);
    out->last_sync_unix = atomic_load_explicit(&f->last_sync, memory_order_relaxed);
}

void fleet_tickets_metrics(const struct fleet_tickets *f, struct prom_buf *out)
{
    struct fleet_tickets_stats st;
    fleet_tickets_stats(f, &st);
    prom_gauge(out, "tern_ticket_keys_redis_up",
               "1 while the connection to the Redis that holds the fleet's ticket keys is up.",
               st.up ? 1 : 0);
    prom_counter(out, "tern_ticket_keys_rotations_total",
                 "Rotations of the fleet's ticket keys done by this server.", st.rotations);
    prom_counter(out, "tern_ticket_keys_applied_total",
                 "New ticket key sets put in force here (read from Redis, or rotated here).",
                 st.applied);
    if (st.last_sync_unix > 0) {
        int64_t age = (int64_t)time(NULL) - st.last_sync_unix;
        prom_gauge(out, "tern_ticket_keys_sync_age_seconds",
                   "Seconds since the fleet's ticket keys were last read from Redis.",
                   (double)(age > 0 ? age : 0));
    }
}

const char *fleet_tickets_url(const struct fleet_tickets *f)
{
    return f->url_text;
}

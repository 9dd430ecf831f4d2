/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: closing device connections on their reactors: those of identities a reload
 * removed from the file store, of a removed service, of one identity removed from the Redis
 * store. Each sweep is a task posted to every reactor, which walks its own connections.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "conn.h"

/* ---- closing connections: of removed identities, of a removed service ------------------------ */

/* On reactor @p r, inside a task: the published settings cannot be released before this task
 * returns (their release waits for a task posted to every reactor after the swap). */
static void sweep_removed(tern_reactor *r, void *arg)
{
    struct gw_service *svc = arg;
    uint8_t key[TERN_PSK_MAX_KEY];
    char quoted[TERN_PSK_MAX_IDENTITY * 4 + 8];
    unsigned closed = 0;

    if (r == NULL) {
        return; /* the runtime stopped first */
    }
    const struct gw_settings *now = atomic_load_explicit(&svc->cur, memory_order_acquire);
    if (now->store == NULL) {
        return; /* psk_store: removals come one by one from Redis (gw_close_identity) */
    }
    for (struct conn *c = svc->live[tern_reactor_index(r) % TERN_MAX_REACTORS]; c != NULL;
         c = c->next) {
        if (c->dev == NULL || c->ident_len == 0 || !c->encrypted) {
            continue; /* certificate clients, handshakes still running */
        }
        if (tern_psk_store_lookup(now->store, c->ident, c->ident_len, key) != 0) {
            continue;
        }
        app_log(APP_LOG_INFO, "identity removed: closing its connection",
                "service=%s peer=%s identity=%s", svc->name, c->peer,
                gw_quote_bytes(quoted, sizeof(quoted), c->ident, c->ident_len));
        gw_close_gracefully(c->dev);
        closed++;
    }
    explicit_bzero(key, sizeof(key));
    if (closed > 0) {
        app_log(APP_LOG_INFO, "connections of removed identities closed",
                "service=%s reactor=%u count=%u", svc->name, tern_reactor_index(r), closed);
    }
}

static void sweep_all(tern_reactor *r, void *arg)
{
    struct gw_service *svc = arg;
    unsigned closed = 0;

    if (r == NULL) {
        return;
    }
    for (struct conn *c = svc->live[tern_reactor_index(r) % TERN_MAX_REACTORS]; c != NULL;
         c = c->next) {
        if (c->dev != NULL) {
            gw_close_gracefully(c->dev);
            closed++;
        }
    }
    if (closed > 0) {
        app_log(APP_LOG_INFO, "removed service: connections closed",
                "service=%s reactor=%u count=%u", svc->name, tern_reactor_index(r), closed);
    }
}

static void post_all(tern_runtime *rt, tern_task_fn fn, struct gw_service *svc, const char *what)
{
    for (unsigned i = 0; i < tern_runtime_reactor_count(rt); i++) {
        int rc = tern_reactor_post(tern_runtime_reactor(rt, i), fn, svc);
        if (rc < 0) {
            app_log(APP_LOG_WARN, what, "service=%s reactor=%u err=%s", svc->name, i,
                    tern_err_name(rc));
        }
    }
}

void gw_close_removed(tern_runtime *rt, struct gw_service *svc)
{
    post_all(rt, sweep_removed, svc, "cannot close connections of removed identities");
}

void gw_close_all(tern_runtime *rt, struct gw_service *svc)
{
    post_all(rt, sweep_all, svc, "cannot close the connections of a removed service");
}

/* ---- closing the connections of one identity removed from the Redis store ------------------ */

struct close_ident {
    struct gw_service *svc;
    const struct psk_redis *store;
    size_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
};

static void sweep_identity(tern_reactor *r, void *arg)
{
    struct close_ident *job = arg;
    char quoted[TERN_PSK_MAX_IDENTITY * 4 + 8];
    unsigned closed = 0;

    /* settings are read on a reactor only: their release waits for a task on each */
    const struct gw_settings *now =
        r != NULL ? atomic_load_explicit(&job->svc->cur, memory_order_acquire) : NULL;
    if (now != NULL && now->close_removed && now->redis == job->store) {
        for (struct conn *c = job->svc->live[tern_reactor_index(r) % TERN_MAX_REACTORS];
             c != NULL; c = c->next) {
            if (c->dev == NULL || c->ident_len != job->len ||
                memcmp(c->ident, job->id, job->len) != 0) {
                continue;
            }
            gw_close_gracefully(c->dev);
            closed++;
        }
    }
    if (closed > 0) {
        app_log(APP_LOG_INFO, "identity removed: closing its connections",
                "service=%s identity=%s reactor=%u count=%u", job->svc->name,
                gw_quote_bytes(quoted, sizeof(quoted), job->id, job->len), tern_reactor_index(r),
                closed);
    }
    free(job);
}

/* A mass removal (thousands of identities at once) that fills a reactor's mailbox must not
 * flood the log: the first failure is logged, then one line per 1,000 (with the count). */
static _Atomic unsigned long close_failures;

static void close_failed(const struct gw_service *svc, unsigned reactor, const char *err)
{
    unsigned long n = atomic_fetch_add_explicit(&close_failures, 1, memory_order_relaxed) + 1;
    if (n == 1 || n % 1000 == 0) {
        app_log(APP_LOG_WARN, "cannot close connections of a removed identity (they stay open)",
                "service=%s reactor=%u err=%s failures=%lu", svc->name, reactor, err, n);
    }
}

void gw_close_identity(tern_runtime *rt, struct gw_service *svc, const struct psk_redis *store,
                       const void *id, size_t len)
{
    if (len == 0 || len > TERN_PSK_MAX_IDENTITY) {
        return;
    }
    for (unsigned i = 0; i < tern_runtime_reactor_count(rt); i++) {
        struct close_ident *job = malloc(sizeof(*job));
        if (job == NULL) {
            close_failed(svc, i, "ENOMEM");
            continue;
        }
        job->svc = svc;
        job->store = store;
        job->len = len;
        memcpy(job->id, id, len);
        int rc = tern_reactor_post(tern_runtime_reactor(rt, i), sweep_identity, job);
        if (rc < 0) {
            free(job);
            close_failed(svc, i, tern_err_name(rc));
        }
    }
}

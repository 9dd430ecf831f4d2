/* SPDX-License-Identifier: MIT */
/*
 * A service's settings: reference counted, replaced as a whole by a reload (see forward.h).
 *
 * Publishing new settings swaps the service's pointer; a reactor may have loaded the old
 * pointer in `gw_settings_acquire` and not yet taken its reference, so the publication's own
 * reference to the old settings is dropped only after every reactor ran a task posted after
 * the swap (a reactor runs its tasks between callbacks, in order: once it ran that task, it
 * is not inside an acquire that saw the old pointer). Connections hold their own references,
 * so settings live until the last connection that uses them ends.
 */
#include "forward.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

struct gw_settings *gw_settings_acquire(struct gw_service *svc)
{
    struct gw_settings *st = atomic_load_explicit(&svc->cur, memory_order_acquire);
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
    return st;
}

static void settings_free(struct gw_settings *st)
{
    tern_ssl_config_unref(st->ssl);
    tern_ssl_config_unref(st->backend_ssl);
    tern_psk_store_free(st->store);
    free(st->backends.v);
    for (size_t i = 0; i < st->n_routes; i++) {
        free(st->routes[i].pattern);
        free(st->routes[i].backends.v);
    }
    free(st->routes);
    for (size_t i = 0; i < st->n_id_metrics; i++) {
        free(st->id_metrics[i].pattern);
    }
    free(st->id_metrics);
    free(st->backend_verify_name);
    free(st->name);
    free(st);
}

void gw_settings_release(struct gw_settings *st)
{
    if (st != NULL && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1) {
        settings_free(st);
    }
}

/* The old settings of one publication, released by the last reactor to run its task. */
struct retire {
    struct gw_settings *old;
    _Atomic unsigned pending;
};

static void retire_task(tern_reactor *r, void *arg)
{
    struct retire *rt = arg;
    (void)r; /* NULL when the runtime stopped before running it: still a quiescent point */
    if (atomic_fetch_sub_explicit(&rt->pending, 1, memory_order_acq_rel) == 1) {
        gw_settings_release(rt->old);
        free(rt);
    }
}

void gw_service_publish(tern_runtime *rt, struct gw_service *svc, struct gw_settings *st)
{
    struct gw_settings *old = atomic_exchange_explicit(&svc->cur, st, memory_order_acq_rel);
    if (old == NULL) {
        return;
    }
    unsigned n = rt != NULL ? tern_runtime_reactor_count(rt) : 0;
    struct retire *r = n > 0 ? malloc(sizeof(*r)) : NULL;
    if (r == NULL) {
        if (n > 0) {
            /* cannot wait for the reactors: keep the old settings rather than risk them */
            app_log(APP_LOG_WARN, "out of memory: the previous settings stay allocated",
                    "service=%s", svc->name);
        } else {
            gw_settings_release(old);
        }
        return;
    }
    r->old = old;
    atomic_init(&r->pending, n);
    for (unsigned i = 0; i < n; i++) {
        if (tern_reactor_post(tern_runtime_reactor(rt, i), retire_task, r) < 0) {
            /* a full mailbox: this reactor never confirms, so the old settings stay */
            app_log(APP_LOG_WARN, "reactor busy: the previous settings stay allocated",
                    "service=%s reactor=%u", svc->name, i);
        }
    }
}

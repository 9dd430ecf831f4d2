/* SPDX-License-Identifier: MIT */
/*
 * User actors. An actor lives on one reactor; every handler runs there. Sends, stops and
 * spawns travel as mailbox tasks, so an actor's state needs no lock.
 *
 * References: the caller's (from spawn), one for being alive (dropped when it stops), and
 * one per message in flight, so the memory outlives every task that names it.
 */
#include "reactor.h"
#include "rt.h"

#include <tern/actor.h>
#include <tern/error.h>

#include <stdlib.h>

struct tern_actor {
    tern_reactor *r;
    const tern_actor_events *ev;
    void *user;
    _Atomic int refs;
    _Atomic int stop_requested; /* any thread: no more sends */
    bool stopped;               /* owner: `stopped` ran */
    bool registered;            /* owner: in r->actors */
    tern__list link;
};

tern_actor *tern_actor_ref(tern_actor *a)
{
    atomic_fetch_add_explicit(&a->refs, 1, memory_order_relaxed);
    return a;
}

void tern_actor_unref(tern_actor *a)
{
    if (a != NULL && atomic_fetch_sub_explicit(&a->refs, 1, memory_order_acq_rel) == 1) {
        free(a);
    }
}

tern_reactor *tern_actor_reactor(const tern_actor *a)
{
    return a->r;
}

void *tern_actor_user(const tern_actor *a)
{
    return a->user;
}

/* Owner (or the joining thread when r is NULL): the actor ends. */
static void end(tern_actor *a)
{
    if (a->stopped) {
        return;
    }
    a->stopped = true;
    atomic_store(&a->stop_requested, 1);
    if (a->registered) {
        tern__list_remove(&a->link);
        a->registered = false;
        atomic_fetch_sub_explicit(&a->r->nactors, 1, memory_order_relaxed);
    }
    if (a->ev->stopped != NULL) {
        a->ev->stopped(a, a->user);
    }
    tern_actor_unref(a); /* the "alive" reference */
}

static void spawn_task(tern_reactor *r, void *arg, void *unused)
{
    tern_actor *a = arg;

    if (r == NULL) {
        end(a); /* the reactor stopped before the actor could start */
    } else if (!a->stopped) {
        tern__list_insert(&r->actors, &a->link);
        a->registered = true;
    }
    tern_actor_unref(a); /* this task's reference */
}

static void message_task(tern_reactor *r, void *arg, void *msg)
{
    tern_actor *a = arg;

    if (r != NULL && !a->stopped) {
        if (a->ev->message != NULL) {
            a->ev->message(a, msg, a->user);
        }
    } else if (a->ev->undelivered != NULL) {
        a->ev->undelivered(a, msg, a->user);
    }
    tern_actor_unref(a);
}

static void stop_task(tern_reactor *r, void *arg, void *unused)
{
    tern_actor *a = arg;
    end(a);
    tern_actor_unref(a);
}

void tern__actors_reactor_stopped(tern_reactor *r)
{
    while (!tern__list_empty(&r->actors)) {
        end(container_of(r->actors.next, tern_actor, link));
    }
}

tern_actor *tern_actor_spawn(tern_runtime *rt, tern_reactor *r, const tern_actor_events *events,
                             void *user)
{
    if (events == NULL || (r == NULL && (rt == NULL || rt->nreactors == 0))) {
        return NULL;
    }
    if (r == NULL) {
        unsigned best = UINT32_MAX;
        for (unsigned i = 0; i < rt->nreactors; i++) {
            unsigned n = atomic_load_explicit(&rt->reactors[i]->nactors, memory_order_relaxed);
            if (n < best) {
                best = n;
                r = rt->reactors[i];
            }
        }
    }
    tern_actor *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    a->r = r;
    a->ev = events;
    a->user = user;
    tern__list_init(&a->link);
    atomic_init(&a->refs, 3); /* the caller's, "alive", and the spawn task's */
    atomic_fetch_add_explicit(&r->nactors, 1, memory_order_relaxed);
    if (tern__reactor_post2(r, spawn_task, a, NULL) < 0) {
        atomic_fetch_sub_explicit(&r->nactors, 1, memory_order_relaxed);
        free(a);
        return NULL;
    }
    return a;
}

int tern_actor_send(tern_actor *a, void *msg)
{
    if (a == NULL) {
        return TERN_EINVAL;
    }
    if (atomic_load(&a->stop_requested)) {
        return TERN_E_STOPPED;
    }
    tern_actor_ref(a);
    int rc = tern__reactor_post2(a->r, message_task, a, msg);
    if (rc < 0) {
        tern_actor_unref(a);
    }
    return rc;
}

int tern_actor_stop(tern_actor *a)
{
    int expected = 0;

    if (a == NULL) {
        return TERN_EINVAL;
    }
    if (!atomic_compare_exchange_strong(&a->stop_requested, &expected, 1)) {
        return TERN_E_STOPPED;
    }
    tern_actor_ref(a);
    int rc = tern__reactor_post2(a->r, stop_task, a, NULL);
    if (rc < 0) {
        atomic_store(&a->stop_requested, 0);
        tern_actor_unref(a);
    }
    return rc;
}

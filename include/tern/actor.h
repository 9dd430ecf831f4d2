/* SPDX-License-Identifier: MIT */
/**
 * @file actor.h
 * User actors: a message handler that lives on one reactor, beside that reactor's sockets.
 * Any thread may send it messages (pointers the receiver then owns); it handles them one at
 * a time on its reactor, in per-sender order, and may use timers on that reactor.
 *
 * Lifetime: an actor holds one reference for being alive; `tern_actor_ref` adds one for each
 * thread that keeps the pointer to send to it. `tern_actor_stop` ends it: `on_stop` runs on
 * the owner, messages that arrive afterwards go to `on_undelivered` (so their memory can be
 * released: nothing is dropped silently), and the memory is freed after the last unref.
 */
#ifndef TERN_ACTOR_H
#define TERN_ACTOR_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The handlers of an actor. Any entry may be NULL. All run on the owner reactor. */
typedef struct tern_actor_events {
    /** A message; the actor now owns @p msg. */
    void (*message)(tern_actor *a, void *msg, void *user);
    /** The actor stopped (by `tern_actor_stop` or because its reactor stopped). */
    void (*stopped)(tern_actor *a, void *user);
    /** A message that reached the actor after it stopped; release @p msg. May run with the
     * runtime stopped, on the joining thread. */
    void (*undelivered)(tern_actor *a, void *msg, void *user);
} tern_actor_events;

/**
 * Creates an actor on @p r, or, when @p r is NULL, on the reactor of @p rt with the fewest
 * actors. The events table is borrowed and must outlive the actor.
 * @return the actor (one reference, the caller's), or NULL when out of memory or @p r and
 *         @p rt are both NULL. @thread any (the runtime must be started)
 */
TERN_API tern_actor *tern_actor_spawn(tern_runtime *rt, tern_reactor *r,
                                      const tern_actor_events *events, void *user);

/**
 * Sends @p msg to @p a. Ownership of @p msg passes to the actor only when this returns 0.
 * @return 0; TERN_E_QUEUE_FULL (retry or shed); TERN_E_STOPPED if the actor or its reactor
 *         stopped. @thread any @events message (or undelivered)
 */
TERN_API int tern_actor_send(tern_actor *a, void *msg);

/**
 * Stops @p a: `stopped` runs on its reactor after the messages sent before this call.
 * @return 0; TERN_E_QUEUE_FULL; TERN_E_STOPPED if already stopped. @thread any
 * @events stopped; then `undelivered` for each message that arrives afterwards
 */
TERN_API int tern_actor_stop(tern_actor *a);

/** Adds a reference. @return @p a. @thread any */
TERN_API tern_actor *tern_actor_ref(tern_actor *a);

/** Drops a reference; the last one frees the actor. NULL is a no-op. @thread any */
TERN_API void tern_actor_unref(tern_actor *a);

/** The reactor that owns @p a. @thread any */
TERN_API tern_reactor *tern_actor_reactor(const tern_actor *a);

/** The user pointer given to spawn. @thread any */
TERN_API void *tern_actor_user(const tern_actor *a);

#ifdef __cplusplus
}
#endif
#endif

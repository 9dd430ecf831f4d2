/* SPDX-License-Identifier: MIT */
/*
 * The "@thread owner" contract, checked. Every socket and timer belongs to one reactor and may
 * be touched only on that reactor's thread (runtime.h). A call from another thread is a data
 * race that only ThreadSanitizer would notice, and only when it happens to interleave; here
 * each owner-only entry point states it with `TERN_ASSERT_OWNER(obj)` at its top, so that a
 * debug build stops at the first wrong call, naming the function.
 *
 * When it is compiled in: with TERN_DEBUG_OWNER defined, which the CMake option of that name
 * does (on by default for Debug and sanitizer builds, off for Release and RelWithDebInfo).
 * Otherwise the macro expands to nothing, its argument is not evaluated, and Release pays
 * nothing. NDEBUG is not the switch because the sanitizer builds (RelWithDebInfo under TSan)
 * define it, and those are the builds that should check the contract the hardest.
 *
 * The check: the reactor whose thread is running (a thread-local pointer that reactor.c sets
 * when a reactor thread starts, or when `tern_reactor_new` makes the caller a standalone
 * reactor's owner) must be the object's reactor. Once a runtime's reactor has stopped for good
 * (its loop exited and it takes no more tasks), its objects pass to the thread that joins the
 * runtime: tasks still queued then run there with a NULL reactor to release their memory
 * (runtime.h), and freeing a socket there is not a race. On a mismatch it prints the function
 * and both reactors to stderr and calls abort().
 *
 * Usable from runtime/ and ssl/ alike: it needs no socket or timer fields, only the public
 * `tern_socket_reactor` and a timer getter of reactor.c.
 */
#ifndef TERN_RUNTIME_OWNER_H
#define TERN_RUNTIME_OWNER_H

#include <tern/common.h>

/* True if the calling thread runs @r (or @r stopped for good; see above). Any thread. */
bool tern__owner_ok(const tern_reactor *r);
/* Prints "tern: FUNC: called off the owner reactor's thread ..." and aborts. */
void tern__owner_fail(const tern_reactor *r, const char *func)
    __attribute__((noreturn, cold));
/* The reactor of @t, or NULL for a NULL timer (reactor.c). */
tern_reactor *tern__timer_reactor(const tern_timer *t);
/* The reactor of @s, or NULL for a NULL socket (socket.c). */
tern_reactor *tern__socket_owner(const tern_socket *s);

static inline tern_reactor *tern__reactor_self(const tern_reactor *r)
{
    return (tern_reactor *)r;
}

/* The owning reactor of a socket, a timer or a reactor (itself). */
#define TERN__OWNER_OF(obj)                                                                     \
    _Generic((obj),                                                                             \
        tern_socket *: tern__socket_owner,                                                      \
        const tern_socket *: tern__socket_owner,                                                \
        tern_timer *: tern__timer_reactor,                                                      \
        const tern_timer *: tern__timer_reactor,                                                \
        tern_reactor *: tern__reactor_self,                                                     \
        const tern_reactor *: tern__reactor_self)(obj)

#ifdef TERN_DEBUG_OWNER
/* A NULL object passes: the function's own argument check answers it. */
#define TERN_ASSERT_OWNER(obj)                                                                  \
    do {                                                                                        \
        const tern_reactor *owner_ = TERN__OWNER_OF(obj);                                      \
        if (owner_ != NULL && !tern__owner_ok(owner_)) {                                        \
            tern__owner_fail(owner_, __func__);                                                 \
        }                                                                                       \
    } while (0)
#else
#define TERN_ASSERT_OWNER(obj) ((void)0)
#endif

#endif

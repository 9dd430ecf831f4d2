/* SPDX-License-Identifier: MIT */
/**
 * @file runtime.h
 * The runtime: N reactor threads (one libev loop each), an acceptor thread, a few worker
 * threads for blocking work, and the messages between them.
 *
 * Thread contract (the actor rules of DESIGN.md). Every socket, timer and actor belongs to
 * one reactor for its whole life and is touched only on that reactor's thread ("@thread
 * owner"). Other threads reach it by posting a task to the owner's mailbox
 * (`tern_reactor_post`, "@thread any"): a bounded multi-producer single-consumer ring woken
 * with `ev_async`. A full mailbox is an error the sender sees (TERN_E_QUEUE_FULL), never a
 * silent drop; tasks from one sender run in the order that sender posted them. Blocking
 * calls ("@thread blocking") must never run on a reactor thread. Debug builds check "@thread
 * owner" (TERN_DEBUG_OWNER: a call from another thread aborts, naming the function).
 */
#ifndef TERN_RUNTIME_H
#define TERN_RUNTIME_H

#include <tern/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Caller-owned options; fill with `tern_runtime_options_init`, then override. */
typedef struct tern_runtime_options {
    unsigned reactors;           /* rw: reactor threads, 1..TERN_MAX_REACTORS; 0 = online CPUs */
    bool pin_cpus;               /* rw: pin reactor i to CPU (i mod online CPUs) */
    unsigned mailbox_capacity;   /* rw: tasks per reactor mailbox, 16..1<<20, rounded up to 2^n */
    unsigned handoff_capacity;   /* rw: accepted fds in flight per reactor, 16..1<<20 */
    unsigned workers;            /* rw: threads for blocking work (name lookups), 1..64 */
    unsigned psk_workers;        /* rw: threads that call a PSK lookup callback, 0..256 */
    unsigned psk_queue_capacity; /* rw: PSK lookups queued for them, 16..1<<20 (2^n) */
    uint32_t emfile_backoff_ms;  /* rw: pause of accepting after EMFILE/ENFILE, 1..60000 */
} tern_runtime_options;

/** The most reactor threads one runtime runs. */
#define TERN_MAX_REACTORS 256

/**
 * A task run on a reactor thread. @p r is the reactor it runs on, or NULL when the task was
 * still queued as its reactor stopped for good: then it runs on the thread that joins the
 * runtime, only to release @p arg.
 */
typedef void (*tern_task_fn)(tern_reactor *r, void *arg);

/**
 * Fills @p o with the defaults: reactors 0 (online CPUs), no pinning, mailbox 8192, handoff
 * 4096, workers 2, PSK workers 2 with a queue of 1024, EMFILE backoff 100 ms. @thread any
 */
TERN_API void tern_runtime_options_init(tern_runtime_options *o);

/**
 * Creates a runtime. Options are copied; NULL means the defaults. Nothing runs yet.
 * Options are validated by `tern_runtime_start`, which says what is wrong.
 * @return the runtime, or NULL when out of memory. @thread setup
 */
TERN_API tern_runtime *tern_runtime_new(const tern_runtime_options *o);

/**
 * Validates the options, opens the reactors' loops and starts every thread; servers that
 * listen already begin accepting. Returns once all threads run.
 * @return 0; TERN_EINVAL with `tern_runtime_error_string` saying which option is wrong;
 *         TERN_EBUSY if already started; TERN_ENOMEM; a system code if a thread failed.
 * @thread setup
 * @events each server's `incoming` (on the reactors); tasks posted before now begin to run
 */
TERN_API int tern_runtime_start(tern_runtime *rt);

/**
 * Asks the runtime to stop: servers stop accepting, every reactor waits up to @p drain_ms for
 * its connections to close on their own, then aborts the rest, and the threads exit. A
 * second call, or @p drain_ms 0, aborts the open connections at once.
 * @return 0; TERN_EINVAL if the runtime was never started. @thread any (signal handlers: no;
 *         use `tern_runtime_stop_on_signals`)
 * @events on each reactor: `disconnected` of every open socket (once it closed, or when the
 *         drain ends and it is aborted), then `stopped` of every actor
 */
TERN_API int tern_runtime_stop(tern_runtime *rt, uint32_t drain_ms);

/**
 * Waits until every thread of a started runtime has exited after `tern_runtime_stop`. Tasks
 * still queued for a reactor then run with a NULL reactor, so their memory is released.
 * @return 0; TERN_EINVAL if not started. @thread blocking
 */
TERN_API int tern_runtime_join(tern_runtime *rt);

/** `tern_runtime_start`, then `tern_runtime_join`. @thread blocking
 * @events as `tern_runtime_start`, then, once stopped, as `tern_runtime_stop` */
TERN_API int tern_runtime_run(tern_runtime *rt);

/**
 * Frees a runtime that is joined (or was never started), with its servers' listeners.
 * NULL is a no-op. @thread setup
 */
TERN_API void tern_runtime_free(tern_runtime *rt);

/** Why the last failed call on @p rt failed, or "". @return borrowed until the next call.
 * @thread setup (the thread that made the call) */
TERN_API const char *tern_runtime_error_string(const tern_runtime *rt);

/** The number of reactors (valid after start). @thread any */
TERN_API unsigned tern_runtime_reactor_count(const tern_runtime *rt);

/** Reactor @p i (0-based) or NULL when out of range; valid after start. @thread any */
TERN_API tern_reactor *tern_runtime_reactor(tern_runtime *rt, unsigned i);

/** Whether `tern_runtime_stop` was called. @thread any */
TERN_API bool tern_runtime_is_stopping(const tern_runtime *rt);

/** Called on the signal thread when SIGHUP arrives (reload certificates, identities...). */
typedef void (*tern_reload_fn)(tern_runtime *rt, void *user);

/**
 * For programs: SIGINT and SIGTERM stop the runtime with a drain of @p drain_ms, a second
 * one stops at once; SIGHUP calls @p on_reload (if not NULL), SIGUSR1 the function of
 * `tern_runtime_on_usr1` (if any; otherwise it is ignored). Blocks those signals in the
 * calling thread and in every thread the runtime starts, and waits for them on a thread
 * of its own (sigwait), so no async-signal-safety traps. Call before `tern_runtime_start`.
 * @return 0; TERN_EBUSY if the runtime already started; a system code. @thread setup
 */
TERN_API int tern_runtime_stop_on_signals(tern_runtime *rt, uint32_t drain_ms,
                                          tern_reload_fn on_reload, void *user);

/**
 * With `tern_runtime_stop_on_signals`: SIGUSR1 calls @p fn on the signal thread (print
 * statistics, rotate a log). NULL removes it. @return 0; TERN_EINVAL; TERN_EBUSY once
 * started. @thread setup
 */
TERN_API int tern_runtime_on_usr1(tern_runtime *rt, tern_reload_fn fn, void *user);

/**
 * Posts @p fn(@p r, @p arg) to @p r's mailbox and wakes it. Never blocks, never allocates.
 * @return 0; TERN_E_QUEUE_FULL if the mailbox is full (nothing was queued: retry later or
 *         shed the work); TERN_E_STOPPED if the reactor no longer runs tasks.
 * @thread any
 * @events @p fn on @p r's thread (with a NULL reactor if @p r stops for good first)
 */
TERN_API int tern_reactor_post(tern_reactor *r, tern_task_fn fn, void *arg);

/** The reactor whose thread calls this, or NULL off reactor threads. @thread any */
TERN_API tern_reactor *tern_reactor_current(void);

/** The index of @p r in its runtime (0-based). @thread any */
TERN_API unsigned tern_reactor_index(const tern_reactor *r);

/** The runtime that @p r belongs to. @thread any */
TERN_API tern_runtime *tern_reactor_runtime(const tern_reactor *r);

/** The loop's cached time in milliseconds (monotonic, updated once per loop turn). @thread owner */
TERN_API uint64_t tern_reactor_now_ms(const tern_reactor *r);

/**
 * A reactor driven by the calling thread instead of a runtime thread: for simple blocking
 * clients, tools and tests (with `tern_socket_wait_for_*`). The calling thread becomes its
 * owner; it has its own worker thread for name lookups. Tasks may be posted to it from any
 * thread; they run while the owner runs the loop (`tern_reactor_run`, `_run_once` or a
 * `wait_for_*`). @return the reactor or NULL (out of memory, or a thread failed).
 * @thread setup (the calling thread owns it from now on)
 */
TERN_API tern_reactor *tern_reactor_new(void);

/**
 * Small long-lived memory for per-connection state (a proxy's connection record), zeroed,
 * from @p r's slab: packed apart from the memory TLS handshakes and buffers come and go in,
 * so that what those free can go back to the kernel. An idle connection, hibernated above all
 * (`tern_socket_set_hibernate_after`), then costs what it keeps and no more: malloc would put
 * a record made at accept time among the handshake's memory and keep its pages resident
 * (docs/design/hibernation.md). Any size; over 640 bytes it is malloc's. Free it with
 * `tern_reactor_mem_free` on the same reactor before the reactor ends.
 * @return the memory, or NULL (out of memory, or @p r NULL). @thread owner
 */
TERN_API void *tern_reactor_mem_alloc(tern_reactor *r, size_t n);
/** Frees memory of `tern_reactor_mem_alloc` (NULL: nothing). @thread owner */
TERN_API void tern_reactor_mem_free(tern_reactor *r, void *p);

/** Frees a reactor made with `tern_reactor_new`, aborting its sockets (no events follow;
 * free your own sockets first). NULL is a no-op. @thread owner */
TERN_API void tern_reactor_free(tern_reactor *r);

/**
 * Runs a standalone reactor's loop until `tern_reactor_stop`. @return 0; TERN_EINVAL if
 * @p r belongs to a runtime or the caller is not its owner. @thread owner (blocking)
 * @events every callback of the reactor (sockets, timers, tasks) runs inside this call
 */
TERN_API int tern_reactor_run(tern_reactor *r);

/** Runs one turn of a standalone reactor's loop, waiting at most @p timeout_ms for an
 * event. @return 0; TERN_EINVAL as `tern_reactor_run`. @thread owner (blocking)
 * @events as `tern_reactor_run`, for one turn */
TERN_API int tern_reactor_run_once(tern_reactor *r, uint32_t timeout_ms);

/** Makes `tern_reactor_run` return after the current turn. @thread any @events none */
TERN_API void tern_reactor_stop(tern_reactor *r);

/** A timer callback. Stopping or freeing @p t inside it is allowed. */
typedef void (*tern_timer_fn)(tern_timer *t, void *user);

/** Creates a stopped timer on @p r. @return the timer or NULL (out of memory). @thread owner */
TERN_API tern_timer *tern_timer_new(tern_reactor *r, tern_timer_fn fn, void *user);

/**
 * (Re)starts @p t: fires after @p after_ms, then every @p repeat_ms (0: once).
 * @return 0; TERN_EINVAL if @p t is NULL. @thread owner @events the timer callback
 */
TERN_API int tern_timer_start(tern_timer *t, uint64_t after_ms, uint64_t repeat_ms);

/** Stops @p t; it will not fire until started again. @thread owner @events none */
TERN_API void tern_timer_stop(tern_timer *t);

/** Stops and frees @p t (also legal inside its own callback); NULL is a no-op. @thread owner */
TERN_API void tern_timer_free(tern_timer *t);

#ifdef __cplusplus
}
#endif
#endif

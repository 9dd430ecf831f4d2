/* SPDX-License-Identifier: MIT */
/*
 * Blocking work off the reactors: a job for the runtime's worker pools (name lookups, PSK
 * store queries), and the helper threads of the library.
 */
#ifndef TERN_RUNTIME_WORKER_H
#define TERN_RUNTIME_WORKER_H

#include <pthread.h>

#include <tern/runtime.h>

typedef struct tern__worker_job {
    void (*work)(struct tern__worker_job *job); /* runs on a worker: may block */
    tern_reactor *reply_to;
    tern_task_fn done; /* then posted to reply_to with the job as arg */
} tern__worker_job;

/* Starts a helper thread of the library (a worker, a ticket-key rotation) with every signal
 * blocked: signals belong to the program's threads (or the runtime's signal thread), never
 * to a thread it does not know about, whatever the creating thread's mask. 0 or -errno. */
int tern__thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A pool of worker threads for blocking jobs (pool.c).
 */
#ifndef TERN_RUNTIME_POOL_H
#define TERN_RUNTIME_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "queue.h"
#include "worker.h"

/* A pool of worker threads for blocking jobs (pool.c): a bounded MPMC queue + a semaphore. */
typedef struct tern__pool {
    tern__queue q;
    bool ready;
    unsigned n;
    pthread_t *threads;
    void *sem; /* sem_t, kept opaque here */
    _Atomic int quit;
} tern__pool;
/* Starts @threads threads (0: a pool that refuses every job with TERN_E_UNSUPPORTED). */
int tern__pool_start(tern__pool *p, unsigned threads, unsigned capacity, char *err, size_t len);
/* Runs job->work on a worker, then posts job->done(job->reply_to, job); a job that never ran
 * (the pool joined first) gets job->done(NULL, job). 0; TERN_E_QUEUE_FULL;
 * TERN_E_UNSUPPORTED (no threads). Any thread. */
int tern__pool_submit(tern__pool *p, tern__worker_job *job);
void tern__pool_join(tern__pool *p);    /* stops the threads; queued jobs come back canceled */
void tern__pool_destroy(tern__pool *p); /* after join */

#endif

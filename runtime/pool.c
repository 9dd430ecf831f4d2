/* SPDX-License-Identifier: MIT */
/*
 * Worker pools: threads that run blocking jobs (name lookups, PSK store queries) off the
 * reactors. A bounded MPMC queue (queue.c) and a semaphore; the answer goes back to the
 * job's reactor as a message, never by touching the socket from here.
 */
#include "pool.h"

#include <tern/error.h>

#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int tern__thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(t, NULL, fn, arg); /* the new thread inherits `all` */
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -rc;
}

static void run_job(tern__worker_job *job)
{
    job->work(job);
    /* The answer goes back as a message. A full mailbox makes the worker wait: it may
     * block, the reactor may not. A stopped reactor gets the job back as canceled. */
    for (;;) {
        int rc = tern_reactor_post(job->reply_to, job->done, job);
        if (rc != TERN_E_QUEUE_FULL) {
            if (rc < 0) {
                job->done(NULL, job);
            }
            return;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void *pool_main(void *arg)
{
    tern__pool *p = arg;
    sem_t *sem = p->sem;
    struct tern__task t;

    for (;;) {
        while (sem_wait(sem) != 0) {
        }
        if (atomic_load(&p->quit)) {
            return NULL;
        }
        /* Drain: a wake-up may have been spent on a slot that was claimed but not yet
         * published; its producer posts again once it is, and whoever wakes takes all. */
        while (tern__queue_pop_mc(&p->q, &t)) {
            run_job(t.arg);
        }
    }
}

int tern__pool_start(tern__pool *p, unsigned threads, unsigned capacity, char *err, size_t len)
{
    if (threads == 0) {
        return 0; /* submit answers TERN_E_UNSUPPORTED */
    }
    p->sem = malloc(sizeof(sem_t));
    p->threads = calloc(threads, sizeof(pthread_t));
    if (p->sem == NULL || p->threads == NULL || tern__queue_init(&p->q, capacity) < 0) {
        snprintf(err, len, "worker pool: out of memory");
        return TERN_ENOMEM;
    }
    sem_init(p->sem, 0, 0);
    p->ready = true;
    for (unsigned i = 0; i < threads; i++) {
        int rc = tern__thread_start_quiet(&p->threads[i], pool_main, p);
        if (rc != 0) {
            snprintf(err, len, "worker thread: %s", strerror(-rc));
            return rc;
        }
        p->n++;
    }
    return 0;
}

int tern__pool_submit(tern__pool *p, tern__worker_job *job)
{
    if (!p->ready || p->n == 0) {
        return TERN_E_UNSUPPORTED;
    }
    struct tern__task t = {NULL, NULL, job, NULL};
    int rc = tern__queue_push_mp(&p->q, &t);
    if (rc < 0) {
        return rc;
    }
    sem_post(p->sem);
    return 0;
}

void tern__pool_join(tern__pool *p)
{
    atomic_store(&p->quit, 1);
    for (unsigned i = 0; i < p->n; i++) {
        sem_post(p->sem);
    }
    for (unsigned i = 0; i < p->n; i++) {
        pthread_join(p->threads[i], NULL);
    }
    p->n = 0;
    /* jobs never run: hand them back as canceled */
    struct tern__task t;
    while (p->ready && tern__queue_pop_mc(&p->q, &t)) {
        tern__worker_job *job = t.arg;
        job->done(NULL, job);
    }
}

void tern__pool_destroy(tern__pool *p)
{
    if (p->ready) {
        sem_destroy(p->sem);
        tern__queue_destroy(&p->q);
        p->ready = false;
    }
    free(p->sem);
    free(p->threads);
    p->sem = NULL;
    p->threads = NULL;
}

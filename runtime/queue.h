/* SPDX-License-Identifier: MIT */
/*
 * A task (a function and its arguments, run on a reactor) and the bounded multi-producer
 * queue of tasks (queue.c) that mailboxes and worker pools are built on.
 */
#ifndef TERN_RUNTIME_QUEUE_H
#define TERN_RUNTIME_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <tern/runtime.h>

#include "util.h"

/* A task: the public form (fn, arg) or the internal two-argument form (fn2, arg, arg2). */
typedef void (*tern__task2_fn)(tern_reactor *r, void *arg, void *arg2);
struct tern__task {
    tern_task_fn fn;
    tern__task2_fn fn2;
    void *arg;
    void *arg2;
};

/* A bounded multi-producer queue of tasks (runtime/queue.c): producers never wait for one
 * another; one consumer (pop_sc) or several (pop_mc). */
struct tern__cell {
    _Atomic size_t seq;
    struct tern__task task;
};
typedef struct tern__queue {
    struct tern__cell *cells;
    size_t mask;
    _Atomic size_t tail __attribute__((aligned(TERN__CACHELINE))); /* producers */
    _Atomic size_t head __attribute__((aligned(TERN__CACHELINE))); /* consumer(s) */
} tern__queue;

int tern__queue_init(tern__queue *q, unsigned capacity);
void tern__queue_destroy(tern__queue *q);
int tern__queue_push_mp(tern__queue *q, const struct tern__task *t); /* 0 or TERN_E_QUEUE_FULL */
bool tern__queue_pop_sc(tern__queue *q, struct tern__task *out);
bool tern__queue_pop_mc(tern__queue *q, struct tern__task *out);
size_t tern__queue_size(const tern__queue *q); /* approximate from other threads */

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A bounded multi-producer queue of tasks with a sequence number per slot (the scheme
 * D. Vyukov published for bounded MPMC queues), in C11 atomics.
 *
 * Why not ck_ring's multi-producer enqueue: it claims a slot, then waits until every earlier
 * producer has committed. A producer preempted between the two makes every other producer
 * spin for the rest of its time slice; bench_mailbox measured 10-90 ms stalls per post and
 * throughput falling from ~14 M to ~0.1 M messages/s with more producers than cores. Here a
 * producer claims a slot with one CAS, fills it and publishes it with a release store of the
 * slot's sequence: producers never wait for one another. A consumer that meets a claimed but
 * unpublished slot reports "empty"; the late producer's own wake-up brings it back.
 *
 * Being plain C11 atomics, ThreadSanitizer understands it without annotations.
 */
#include "queue.h"

#include <tern/error.h>

#include <stdlib.h>

int tern__queue_init(tern__queue *q, unsigned capacity)
{
    unsigned size = 1;
    while (size < capacity) {
        size <<= 1;
    }
    q->cells = calloc(size, sizeof(*q->cells));
    if (q->cells == NULL) {
        return TERN_ENOMEM;
    }
    q->mask = size - 1;
    for (unsigned i = 0; i < size; i++) {
        atomic_init(&q->cells[i].seq, i);
    }
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void tern__queue_destroy(tern__queue *q)
{
    free(q->cells);
    q->cells = NULL;
}

int tern__queue_push_mp(tern__queue *q, const struct tern__task *t)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);

    for (;;) {
        struct tern__cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                c->task = *t;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 0;
            }
            /* pos was reloaded by the failed CAS */
        } else if (dif < 0) {
            return TERN_E_QUEUE_FULL; /* the slot one lap back is not consumed yet */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

bool tern__queue_pop_sc(tern__queue *q, struct tern__task *out)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    struct tern__cell *c = &q->cells[pos & q->mask];

    if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1) {
        return false; /* empty, or the next slot is claimed but not yet published */
    }
    *out = c->task;
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    atomic_store_explicit(&q->head, pos + 1, memory_order_relaxed);
    return true;
}

bool tern__queue_pop_mc(tern__queue *q, struct tern__task *out)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);

    for (;;) {
        struct tern__cell *c = &q->cells[pos & q->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *out = c->task;
                atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
                return true;
            }
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

size_t tern__queue_size(const tern__queue *q)
{
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    return tail > head ? tail - head : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * A reactor's inbox: a bounded MPSC queue of tasks (any thread posts, the owner takes;
 * runtime/queue.c) and a bounded SPSC Concurrency Kit ring of accepted descriptors (the
 * acceptor thread puts, the owner takes). Posting never allocates and never blocks; a full
 * queue is reported to the sender, nothing is dropped.
 *
 * Ordering: each producer claims slots in increasing order and the consumer takes slots in
 * order, so tasks from one thread come out in the order that thread posted them.
 */
#include "mailbox.h"
#include "tsan.h"

#include <tern/error.h>

#include <stdlib.h>

static unsigned round_pow2(unsigned n)
{
    unsigned p = 1;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

int tern__mailbox_init(tern__mailbox *mb, unsigned capacity, unsigned handoff_capacity)
{
    /* a ck_ring of size 2^n holds 2^n - 1 entries */
    unsigned hsize = round_pow2(handoff_capacity + 1);

    mb->handoff_slots = calloc(hsize, sizeof(*mb->handoff_slots));
    if (mb->handoff_slots == NULL || tern__queue_init(&mb->tasks, capacity) < 0) {
        tern__mailbox_destroy(mb);
        return TERN_ENOMEM;
    }
    ck_ring_init(&mb->handoff, hsize);
    atomic_store(&mb->closed, 0);
    return 0;
}

void tern__mailbox_destroy(tern__mailbox *mb)
{
    tern__queue_destroy(&mb->tasks);
    free(mb->handoff_slots);
    mb->handoff_slots = NULL;
}

int tern__mailbox_post_mp(tern__mailbox *mb, const struct tern__task *t)
{
    if (atomic_load_explicit(&mb->closed, memory_order_acquire)) {
        return TERN_E_STOPPED;
    }
    return tern__queue_push_mp(&mb->tasks, t);
}

bool tern__mailbox_take_sc(tern__mailbox *mb, struct tern__task *out)
{
    return tern__queue_pop_sc(&mb->tasks, out);
}

int tern__handoff_put_sp(tern__mailbox *mb, struct tern__handoff *h)
{
    TERN__TSAN_RELEASE(&mb->handoff);
    return ck_ring_enqueue_spsc_tern_handoff(&mb->handoff, mb->handoff_slots, h)
               ? 0
               : TERN_E_QUEUE_FULL;
}

bool tern__handoff_take_sc(tern__mailbox *mb, struct tern__handoff *out)
{
    if (!ck_ring_dequeue_spsc_tern_handoff(&mb->handoff, mb->handoff_slots, out)) {
        return false;
    }
    TERN__TSAN_ACQUIRE(&mb->handoff);
    return true;
}

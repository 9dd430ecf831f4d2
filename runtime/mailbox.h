/* SPDX-License-Identifier: MIT */
/*
 * A reactor's mailbox (mailbox.c): the MPSC queue of tasks other threads post to it, and
 * the SPSC ring of descriptors the acceptor hands it.
 */
#ifndef TERN_RUNTIME_MAILBOX_H
#define TERN_RUNTIME_MAILBOX_H

#include <ck_ring.h>
#include <stdatomic.h>

#include <tern/server.h>

#include "queue.h"
#include "util.h"

struct tern__handoff {
    int fd;
    socklen_t peer_len;          /* 0: the accept did not say */
    tern_server *srv;
    union tern__sockaddr peer;   /* the accept's: `incoming` asks for it without a syscall */
};
CK_RING_PROTOTYPE(tern_handoff, tern__handoff)

typedef struct tern__mailbox {
    tern__queue tasks;
    struct ck_ring handoff;
    struct tern__handoff *handoff_slots;
    _Atomic int closed; /* set by the owner once it stops taking tasks */
} tern__mailbox;

int tern__mailbox_init(tern__mailbox *mb, unsigned capacity, unsigned handoff_capacity);
void tern__mailbox_destroy(tern__mailbox *mb);
/* Any thread. 0, TERN_E_QUEUE_FULL or TERN_E_STOPPED. Does not wake the reactor. */
int tern__mailbox_post_mp(tern__mailbox *mb, const struct tern__task *t);
/* Consumer only. true and *out filled if a task was queued. */
bool tern__mailbox_take_sc(tern__mailbox *mb, struct tern__task *out);
/* The acceptor (the single producer of every handoff ring). 0 or TERN_E_QUEUE_FULL. */
int tern__handoff_put_sp(tern__mailbox *mb, struct tern__handoff *h);
bool tern__handoff_take_sc(tern__mailbox *mb, struct tern__handoff *out);

#endif

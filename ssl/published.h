/* SPDX-License-Identifier: MIT */
/*
 * A published pointer (DESIGN.md rule 3): shared, read-mostly data that readers use without
 * locks while a writer replaces it. Readers run inside a ck_epoch section; a writer swaps the
 * pointer atomically and waits (ck_epoch_synchronize) until no reader can still hold the old
 * value, which it then owns. Each reading thread gets an epoch record of its own, registered
 * once (a mutex guards that rare step and the writers, never a read).
 *
 * Used by tern_psk_store (identity tables) and tern_ticket_keys (session ticket keys).
 */
#ifndef TERN_SSL_PUBLISHED_H
#define TERN_SSL_PUBLISHED_H

#include <ck_epoch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tern__published_record tern__published_record;

typedef struct tern__published {
    _Atomic(void *) ptr;
    ck_epoch_t epoch;
    pthread_mutex_t lock;
    tern__published_record *records;
    tern__published_record *writer;
    uint64_t id;
} tern__published;

/* 0 or TERN_ENOMEM. */
int tern__published_init(tern__published *p, void *initial);
/* Frees the records; returns the pointer in force (the caller frees it). No reader may run. */
void *tern__published_destroy(tern__published *p);

/* A read section: the value stays valid until _leave. NULL record: out of memory. */
tern__published_record *tern__published_enter(tern__published *p, void **value);
void tern__published_leave(tern__published *p, tern__published_record *rec);

/* Publishes @p value and waits until no reader can hold the previous one. @return the
 * previous value, now the caller's. Blocking: any thread but a reader inside a section. */
void *tern__published_swap(tern__published *p, void *value);

/* Runs @p fn(@p arg, current) under the writers' lock and publishes what it returns (it may
 * return current itself: nothing is published). @return the previous value when replaced
 * (the caller's to free), else NULL. Blocking, as _swap. */
void *tern__published_update(tern__published *p, void *(*fn)(void *arg, void *current),
                             void *arg);

/* Epoch records registered (the writer's included): for tests. */
size_t tern__published_records(tern__published *p);

#endif

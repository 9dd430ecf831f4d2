/* SPDX-License-Identifier: MIT */
/* A published pointer: lock-free reads, blocking replacement (see published.h). */
#include "published.h"

#include "ssl_internal.h"

#include <stdlib.h>

struct tern__published_record {
    ck_epoch_record_t r;
    struct tern__published_record *next;
    const void *owner; /* the reading thread (the address of its thread-local cache) */
};

static _Atomic uint64_t next_id = 1;

/* A few (published, record) pairs per thread: a reactor usually reads one or two. */
#define CACHE 8
static _Thread_local struct {
    uint64_t id;
    tern__published_record *rec;
} cache[CACHE];
static _Thread_local unsigned cache_next;

static tern__published_record *new_record(tern__published *p, const void *owner)
{
    tern__published_record *rec = calloc(1, sizeof(*rec));
    if (rec == NULL) {
        return NULL;
    }
    rec->owner = owner;
    ck_epoch_register(&p->epoch, &rec->r, NULL);
    rec->next = p->records;
    p->records = rec;
    return rec;
}

int tern__published_init(tern__published *p, void *initial)
{
    ck_epoch_init(&p->epoch);
    pthread_mutex_init(&p->lock, NULL);
    p->records = NULL;
    p->id = atomic_fetch_add(&next_id, 1);
    atomic_init(&p->ptr, initial);
    if ((p->writer = new_record(p, NULL)) == NULL) {
        pthread_mutex_destroy(&p->lock);
        return TERN_ENOMEM;
    }
    return 0;
}

void *tern__published_destroy(tern__published *p)
{
    while (p->records != NULL) {
        tern__published_record *next = p->records->next;
        free(p->records);
        p->records = next;
    }
    pthread_mutex_destroy(&p->lock);
    return atomic_load(&p->ptr);
}

tern__published_record *tern__published_enter(tern__published *p, void **value)
{
    tern__published_record *rec = NULL;
    for (unsigned i = 0; i < CACHE; i++) {
        if (cache[i].id == p->id) {
            rec = cache[i].rec;
            break;
        }
    }
    if (rec == NULL) {
        /* not cached (first read by this thread, or pushed out by others): this thread's
         * record if it has one, so a thread reading many published values in turn never
         * registers more than one record per value */
        pthread_mutex_lock(&p->lock);
        for (tern__published_record *r = p->records; r != NULL && rec == NULL; r = r->next) {
            if (r->owner == (const void *)cache) {
                rec = r;
            }
        }
        if (rec == NULL) {
            rec = new_record(p, cache);
        }
        pthread_mutex_unlock(&p->lock);
        if (rec == NULL) {
            *value = NULL;
            return NULL;
        }
        unsigned k = cache_next++ % CACHE;
        cache[k].id = p->id;
        cache[k].rec = rec;
    }
    ck_epoch_begin(&rec->r, NULL);
    *value = atomic_load_explicit(&p->ptr, memory_order_acquire);
    return rec;
}

void tern__published_leave(tern__published *p, tern__published_record *rec)
{
    TERN__TSAN_RELEASE(p); /* ck_epoch's fences are invisible to ThreadSanitizer */
    ck_epoch_end(&rec->r, NULL);
}

static void *swap_locked(tern__published *p, void *value)
{
    void *old = atomic_exchange_explicit(&p->ptr, value, memory_order_acq_rel);
    ck_epoch_synchronize(&p->writer->r); /* every reader that could see `old` has left */
    TERN__TSAN_ACQUIRE(p);
    return old;
}

void *tern__published_swap(tern__published *p, void *value)
{
    pthread_mutex_lock(&p->lock);
    void *old = swap_locked(p, value);
    pthread_mutex_unlock(&p->lock);
    return old;
}

void *tern__published_update(tern__published *p, void *(*fn)(void *arg, void *current),
                             void *arg)
{
    pthread_mutex_lock(&p->lock);
    void *cur = atomic_load_explicit(&p->ptr, memory_order_acquire);
    void *next = fn(arg, cur);
    void *old = next != cur ? swap_locked(p, next) : NULL;
    pthread_mutex_unlock(&p->lock);
    return old;
}

size_t tern__published_records(tern__published *p)
{
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    for (tern__published_record *r = p->records; r != NULL; r = r->next) {
        n++;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* SPDX-License-Identifier: MIT */
/*
 * tern_psk_store: a PSK table readers use without locks while a reload replaces it
 * (DESIGN.md rule 3). The current table is an atomic pointer; readers run inside a ck_epoch
 * section; a reload publishes the new table, waits with ck_epoch_synchronize until no reader
 * can still hold the old one, then frees it. Each reading thread gets its own epoch record,
 * registered once (a mutex guards that rare step and the reloads, never a lookup).
 */
#include "ssl_internal.h"

#include <ck_epoch.h>

#include <stdlib.h>
#include <string.h>

typedef struct record {
    ck_epoch_record_t r;
    struct record *next;
} record;

struct tern_psk_store {
    _Atomic(tern_psk_table *) table;
    ck_epoch_t epoch;
    pthread_mutex_t lock;
    record *records;
    record *writer;
    uint64_t id;
};

static _Atomic uint64_t next_id = 1;

/* A few (store, record) pairs per thread: a reactor usually reads one store. */
#define CACHE 4
static _Thread_local struct {
    uint64_t id;
    record *rec;
} cache[CACHE];
static _Thread_local unsigned cache_next;

static record *new_record(tern_psk_store *st)
{
    record *rec = calloc(1, sizeof(*rec));
    if (rec == NULL) {
        return NULL;
    }
    ck_epoch_register(&st->epoch, &rec->r, NULL);
    rec->next = st->records;
    st->records = rec;
    return rec;
}

static record *reader_record(tern_psk_store *st)
{
    for (unsigned i = 0; i < CACHE; i++) {
        if (cache[i].id == st->id) {
            return cache[i].rec;
        }
    }
    pthread_mutex_lock(&st->lock);
    record *rec = new_record(st);
    pthread_mutex_unlock(&st->lock);
    if (rec != NULL) {
        unsigned k = cache_next++ % CACHE;
        cache[k].id = st->id;
        cache[k].rec = rec;
    }
    return rec;
}

tern_psk_store *tern_psk_store_new(void)
{
    tern_psk_store *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    ck_epoch_init(&st->epoch);
    pthread_mutex_init(&st->lock, NULL);
    st->id = atomic_fetch_add(&next_id, 1);
    if ((st->writer = new_record(st)) == NULL) {
        pthread_mutex_destroy(&st->lock);
        free(st);
        return NULL;
    }
    return st;
}

int tern_psk_store_load_file(tern_psk_store *st, const char *path, char *err, size_t err_len)
{
    tern_psk_table *t = NULL;

    if (st == NULL) {
        return TERN_EINVAL;
    }
    int rc = tern_psk_table_load_file(path, &t, err, err_len);
    if (rc < 0) {
        return rc; /* the table in force stays */
    }
    pthread_mutex_lock(&st->lock);
    tern_psk_table *old = atomic_exchange_explicit(&st->table, t, memory_order_acq_rel);
    ck_epoch_synchronize(&st->writer->r); /* every reader that could see `old` has left */
    TERN__TSAN_ACQUIRE(st);
    pthread_mutex_unlock(&st->lock);
    tern_psk_table_free(old);
    return 0;
}

size_t tern_psk_store_lookup(tern_psk_store *st, const void *identity, size_t len, uint8_t *key)
{
    record *rec = st != NULL ? reader_record(st) : NULL;
    if (rec == NULL) {
        return 0;
    }
    ck_epoch_begin(&rec->r, NULL);
    const tern_psk_table *t = atomic_load_explicit(&st->table, memory_order_acquire);
    size_t n = t != NULL ? tern_psk_table_lookup(t, identity, len, key) : 0;
    TERN__TSAN_RELEASE(st); /* ck_epoch's fences are invisible to ThreadSanitizer */
    ck_epoch_end(&rec->r, NULL);
    return n;
}

tern_psk_lookup_result tern_psk_store_lookup_fn(void *store, const void *identity,
                                                size_t identity_len, uint8_t *key,
                                                size_t *key_len)
{
    *key_len = tern_psk_store_lookup(store, identity, identity_len, key);
    return *key_len != 0 ? TERN_PSK_FOUND : TERN_PSK_UNKNOWN;
}

size_t tern_psk_store_count(tern_psk_store *st)
{
    record *rec = st != NULL ? reader_record(st) : NULL;
    if (rec == NULL) {
        return 0;
    }
    ck_epoch_begin(&rec->r, NULL);
    size_t n = tern_psk_table_count(atomic_load_explicit(&st->table, memory_order_acquire));
    TERN__TSAN_RELEASE(st);
    ck_epoch_end(&rec->r, NULL);
    return n;
}

void tern_psk_store_free(tern_psk_store *st)
{
    if (st == NULL) {
        return;
    }
    tern_psk_table_free(atomic_load(&st->table));
    while (st->records != NULL) {
        record *next = st->records->next;
        free(st->records);
        st->records = next;
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}

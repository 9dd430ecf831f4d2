/* SPDX-License-Identifier: MIT */
/*
 * tern-gateway: the per-identity connection limit (max_conn_per_identity, and a Redis
 * identity's own max_conn).
 *
 * A chained hash table of identity -> open connections, behind one mutex. It is touched twice
 * per connection (PSK handshake, device close), never on the data path, so a lock is
 * acceptable here; entries whose count drops to zero are removed, so the table holds only
 * identities with open connections.
 */
#include "identity_limit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#define IDENT_BUCKETS 4096

struct ident_entry {
    struct ident_entry *next;
    unsigned open;
    size_t len;
    uint8_t id[TERN_PSK_MAX_IDENTITY];
};

static pthread_mutex_t ident_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ident_entry **ident_table;

int gw_ident_table_init(void)
{
    ident_table = calloc(IDENT_BUCKETS, sizeof(*ident_table));
    return ident_table == NULL ? -1 : 0;
}

void gw_ident_table_destroy(void)
{
    if (ident_table == NULL) {
        return;
    }
    for (size_t i = 0; i < IDENT_BUCKETS; i++) {
        struct ident_entry *e = ident_table[i];
        while (e != NULL) {
            struct ident_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(ident_table);
    ident_table = NULL;
}

/* FNV-1a: identities are short. */
static size_t ident_hash(const uint8_t *id, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ id[i]) * 16777619u;
    }
    return h % IDENT_BUCKETS;
}

static struct ident_entry **ident_find(const uint8_t *id, size_t len)
{
    struct ident_entry **p = &ident_table[ident_hash(id, len)];
    while (*p != NULL && ((*p)->len != len || memcmp((*p)->id, id, len) != 0)) {
        p = &(*p)->next;
    }
    return p;
}

/* Takes a slot for @p id. @return 1 taken; 0 over the limit; -1 out of memory. */
int gw_ident_acquire(const uint8_t *id, size_t len, unsigned limit)
{
    int rc = 1;

    pthread_mutex_lock(&ident_lock);
    struct ident_entry **p = ident_find(id, len);
    if (*p == NULL) {
        struct ident_entry *e = calloc(1, sizeof(*e));
        if (e == NULL) {
            rc = -1;
        } else {
            e->len = len;
            memcpy(e->id, id, len);
            e->open = 1;
            *p = e;
        }
    } else if ((*p)->open >= limit) {
        rc = 0;
    } else {
        (*p)->open++;
    }
    pthread_mutex_unlock(&ident_lock);
    return rc;
}

/* The connections @p id holds now (slots taken). */
unsigned gw_ident_open(const uint8_t *id, size_t len)
{
    pthread_mutex_lock(&ident_lock);
    struct ident_entry **p = ident_find(id, len);
    unsigned n = *p != NULL ? (*p)->open : 0;
    pthread_mutex_unlock(&ident_lock);
    return n;
}

void gw_ident_release(const uint8_t *id, size_t len)
{
    pthread_mutex_lock(&ident_lock);
    struct ident_entry **p = ident_find(id, len);
    if (*p != NULL && --(*p)->open == 0) {
        struct ident_entry *e = *p;
        *p = e->next;
        free(e);
    }
    pthread_mutex_unlock(&ident_lock);
}

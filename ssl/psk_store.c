/* SPDX-License-Identifier: MIT */
/*
 * tern_psk_store: a PSK table readers use without locks while a reload replaces it
 * (DESIGN.md rule 3): a published pointer (published.h) to an immutable tern_psk_table.
 */
#include "ssl_internal.h"

#include "published.h"

#include <stdlib.h>
#include <string.h>

struct tern_psk_store {
    tern__published table; /* tern_psk_table * */
};

tern_psk_store *tern_psk_store_new(void)
{
    tern_psk_store *st = calloc(1, sizeof(*st));
    if (st == NULL || tern__published_init(&st->table, NULL) < 0) {
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
    tern_psk_table_free(tern__published_swap(&st->table, t));
    return 0;
}

size_t tern_psk_store_lookup_with_hash(tern_psk_store *st, const void *identity, size_t len,
                                       uint8_t *key, enum tern_psk_hash *hash)
{
    void *t;
    tern__published_record *rec = st != NULL ? tern__published_enter(&st->table, &t) : NULL;
    if (rec == NULL) {
        return 0;
    }
    size_t n = t != NULL ? tern_psk_table_lookup_with_hash(t, identity, len, key, hash) : 0;
    tern__published_leave(&st->table, rec);
    return n;
}

size_t tern_psk_store_lookup(tern_psk_store *st, const void *identity, size_t len, uint8_t *key)
{
    return tern_psk_store_lookup_with_hash(st, identity, len, key, NULL);
}

enum tern_psk_lookup_result tern_psk_store_lookup_fn(void *store, const void *identity,
                                                     size_t identity_len, uint8_t *key,
                                                     size_t *key_len)
{
    enum tern_psk_hash hash = TERN_PSK_HASH_SHA256;
    *key_len = tern_psk_store_lookup_with_hash(store, identity, identity_len, key, &hash);
    if (*key_len == 0) {
        return TERN_PSK_UNKNOWN;
    }
    return hash == TERN_PSK_HASH_SHA384 ? TERN_PSK_FOUND_SHA384 : TERN_PSK_FOUND;
}

size_t tern_psk_store_count(tern_psk_store *st)
{
    void *t;
    tern__published_record *rec = st != NULL ? tern__published_enter(&st->table, &t) : NULL;
    if (rec == NULL) {
        return 0;
    }
    size_t n = tern_psk_table_count(t);
    tern__published_leave(&st->table, rec);
    return n;
}

void tern_psk_store_free(tern_psk_store *st)
{
    if (st == NULL) {
        return;
    }
    tern_psk_table_free(tern__published_destroy(&st->table));
    free(st);
}

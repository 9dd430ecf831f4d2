/* SPDX-License-Identifier: MIT */
/*
 * PSK identity tables from files (`identity:hexkey` lines, as stunnel's PSKsecrets, with an
 * optional `:sha256` / `:sha384` field: the key's TLS 1.3 hash). A table
 * is built once and never changed, so lookups from any thread need no lock; a reload builds a
 * new table and swaps it (the caller's job, with ck_epoch, in the gateway). Open addressing
 * with FNV-1a: one probe sequence per lookup, no allocation.
 */
#include "ssl_internal.h"

#include "keyfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct entry {
    uint16_t id_len;
    uint8_t key_len; /* 0: empty slot */
    uint8_t hash;    /* tern_psk_hash */
    uint8_t key[TERN_PSK_MAX_KEY];
    uint8_t id[TERN_PSK_MAX_IDENTITY];
} entry;

struct tern_psk_table {
    size_t count, mask;
    entry *slots;
    size_t *order; /* the slot of each identity, in the file's order */
};

static uint64_t hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 1099511628211ull;
    }
    return h;
}

static entry *find(const tern_psk_table *t, const uint8_t *id, size_t len)
{
    for (size_t i = hash(id, len) & t->mask;; i = (i + 1) & t->mask) {
        entry *e = &t->slots[i];
        if (e->key_len == 0 || (e->id_len == len && memcmp(e->id, id, len) == 0)) {
            return e;
        }
    }
}

size_t tern_psk_table_count(const tern_psk_table *t)
{
    return t != NULL ? t->count : 0;
}

size_t tern_psk_table_lookup_with_hash(const tern_psk_table *t, const void *identity, size_t len,
                                       uint8_t *key, enum tern_psk_hash *hash)
{
    if (t == NULL || identity == NULL || len == 0 || len > TERN_PSK_MAX_IDENTITY) {
        return 0;
    }
    const entry *e = find(t, identity, len);
    if (e->key_len == 0) {
        return 0;
    }
    memcpy(key, e->key, e->key_len);
    if (hash != NULL) {
        *hash = (enum tern_psk_hash)e->hash;
    }
    return e->key_len;
}

size_t tern_psk_table_lookup(const tern_psk_table *t, const void *identity, size_t len,
                             uint8_t *key)
{
    return tern_psk_table_lookup_with_hash(t, identity, len, key, NULL);
}

size_t tern_psk_table_entry(const tern_psk_table *t, size_t index, tern_buf *identity,
                            uint8_t *key, enum tern_psk_hash *hash)
{
    if (t == NULL || index >= t->count || key == NULL) {
        return 0;
    }
    const entry *e = &t->slots[t->order[index]];
    if (identity != NULL) {
        identity->base = e->id;
        identity->len = e->id_len;
    }
    memcpy(key, e->key, e->key_len);
    if (hash != NULL) {
        *hash = (enum tern_psk_hash)e->hash;
    }
    return e->key_len;
}

static bool all_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (tern__hexval(p[i]) < 0) {
            return false;
        }
    }
    return true;
}

void tern_psk_table_free(tern_psk_table *t)
{
    if (t == NULL) {
        return;
    }
    if (t->slots != NULL) {
        memset(t->slots, 0, (t->mask + 1) * sizeof(entry));
        free(t->slots);
    }
    free(t->order);
    free(t);
}

int tern_psk_table_load_file(const char *path, tern_psk_table **out, char *err, size_t err_len)
{
    tern__keyfile kf;
    char *line;
    tern_psk_table *t = NULL;

    if (err != NULL && err_len > 0) {
        err[0] = '\0';
    }
    if (path == NULL || out == NULL) {
        return TERN_EINVAL;
    }
    int rc = tern__keyfile_open(&kf, path, 0, true, err, err_len);
    if (rc < 0) {
        return rc;
    }
    /* size the table from the file: at most one identity per 34 bytes (1 + ':' + 32 hex) */
    size_t cap_ids = (size_t)kf.st.st_size / 34 + 1, size = 16;
    while (size < cap_ids * 2) {
        size <<= 1;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->slots = calloc(size, sizeof(entry))) == NULL ||
        (t->order = calloc(size / 2, sizeof(*t->order))) == NULL) {
        rc = TERN_ENOMEM;
        goto out;
    }
    t->mask = size - 1;
    /* the identity is the whole line up to its key: leading blanks belong to it */
    while ((rc = tern__keyfile_next(&kf, &line, NULL)) == 1) {
        char *colon = strrchr(line, ':');
        if (colon == NULL) {
            rc = tern__keyfile_fail_line(&kf, "expected identity:hexkey");
            goto out;
        }
        /* identity:hexkey[:hash] (identities may hold ':', keys and hash names never do): a
         * last field that is not hex is the hash if it names one or follows what looks like a
         * key, so that a typo in either is reported as such */
        uint8_t hash = TERN_PSK_HASH_SHA256;
        if (!all_hex(colon + 1, strlen(colon + 1)) && colon > line) {
            char *prev = colon - 1;
            while (prev > line && *prev != ':') {
                prev--;
            }
            size_t prev_len = (size_t)(colon - prev - 1);
            bool named = strcasecmp(colon + 1, "sha256") == 0 || strcasecmp(colon + 1, "sha384") == 0;
            if (*prev == ':' && (named || (prev_len >= 2 * TERN_PSK_MIN_KEY &&
                                           all_hex(prev + 1, prev_len)))) {
                const char *name = colon + 1;
                if (strcasecmp(name, "sha256") == 0) {
                    hash = TERN_PSK_HASH_SHA256;
                } else if (strcasecmp(name, "sha384") == 0) {
                    hash = TERN_PSK_HASH_SHA384;
                } else {
                    rc = tern__keyfile_fail_line(&kf, "unknown hash \"%.16s\" (sha256 or sha384)",
                                                 name);
                    goto out;
                }
                *colon = '\0';
                colon = prev;
            }
        }
        size_t id_len = (size_t)(colon - line);
        const char *hex = colon + 1;
        size_t hex_len = strlen(hex);
        if (id_len == 0 || id_len > TERN_PSK_MAX_IDENTITY) {
            rc = tern__keyfile_fail_line(&kf, "the identity must be 1..%d bytes",
                                         TERN_PSK_MAX_IDENTITY);
            goto out;
        }
        if (hex_len % 2 != 0 || hex_len / 2 < TERN_PSK_MIN_KEY || hex_len / 2 > TERN_PSK_MAX_KEY) {
            rc = tern__keyfile_fail_line(&kf, "the key must be %d..%d bytes of hex",
                                         TERN_PSK_MIN_KEY, TERN_PSK_MAX_KEY);
            goto out;
        }
        uint8_t key[TERN_PSK_MAX_KEY];
        if (tern__hex_decode(hex, key, hex_len / 2) >= 0) {
            rc = tern__keyfile_fail_line(&kf, "the key is not hexadecimal"); /* never echo keys */
            goto out;
        }
        if (t->count + 1 > size / 2) {
            memset(key, 0, sizeof(key));
            rc = tern__keyfile_fail_line(&kf, "too many identities for the file's size");
            goto out;
        }
        entry *e = find(t, (const uint8_t *)line, id_len);
        if (e->key_len != 0) {
            memset(key, 0, sizeof(key));
            rc = tern__keyfile_fail_line(&kf, "duplicate identity");
            goto out;
        }
        e->id_len = (uint16_t)id_len;
        memcpy(e->id, line, id_len);
        memcpy(e->key, key, hex_len / 2);
        e->key_len = (uint8_t)(hex_len / 2);
        e->hash = hash;
        memset(key, 0, sizeof(key));
        t->order[t->count++] = (size_t)(e - t->slots);
    }
out:
    tern__keyfile_close(&kf, rc == 0);
    if (rc < 0) {
        tern_psk_table_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

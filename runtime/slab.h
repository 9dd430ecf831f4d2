/* SPDX-License-Identifier: MIT */
/*
 * A reactor's slab for small long-lived objects (slab.c): hibernated connections' sealed TLS
 * state. Owner thread only.
 */
#ifndef TERN_RUNTIME_SLAB_H
#define TERN_RUNTIME_SLAB_H

#include <stdbool.h>
#include <stddef.h>

#define TERN__SLAB_CLASSES 10

struct tern__slab_page;
typedef struct tern__slab {
    struct tern__slab_page *room[TERN__SLAB_CLASSES]; /* pages with a free slot */
    struct tern__slab_page *full[TERN__SLAB_CLASSES];
    bool secret; /* pages left out of core dumps (MADV_DONTDUMP): key material */
} tern__slab;

/* @n bytes (any size: those over the largest class come from malloc). NULL: out of memory. */
void *tern__slab_alloc(tern__slab *sl, size_t n);
void tern__slab_free(tern__slab *sl, void *p); /* NULL: nothing */
/* Returns every page (the reactor ends: nothing allocated from it may be used after). */
void tern__slab_destroy(tern__slab *sl);

#endif

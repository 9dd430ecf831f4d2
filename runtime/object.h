/* SPDX-License-Identifier: MIT */
/*
 * A reference-counted object that runtime/ can hold without knowing its type: the TLS
 * configuration of ssl/ starts with one, so a server keeps a reference without runtime/
 * depending on ssl/. References may be taken and dropped on any thread.
 */
#ifndef TERN_RUNTIME_OBJECT_H
#define TERN_RUNTIME_OBJECT_H

#include <stdatomic.h>
#include <stdbool.h>

typedef struct tern__object {
    _Atomic int refs;
    _Atomic bool frozen;
    void (*destroy)(struct tern__object *o);
} tern__object;

static inline void tern__object_ref(tern__object *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}
static inline void tern__object_unref(tern__object *o)
{
    if (o != NULL && atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
        o->destroy(o);
    }
}

#endif

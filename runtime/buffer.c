/* SPDX-License-Identifier: MIT */
/*
 * Byte queues made of 16 KiB chunks. Chunks come from a small per-reactor free list, so a
 * busy socket reuses memory without malloc on every read, and an idle socket holds no
 * buffer at all (the ≤ 10 KiB per idle connection target). Owner thread only.
 */
#include "buffer.h"
#include "reactor.h"

#include <tern/error.h>

#include <stdlib.h>
#include <string.h>

#define POOL_MAX 64 /* chunks kept per reactor: 1 MiB */

tern__chunk *tern__chunk_get(tern_reactor *r)
{
    tern__chunk *c = r->chunk_pool;
    if (c != NULL) {
        r->chunk_pool = c->next;
        r->chunk_pool_len--;
    } else if ((c = malloc(sizeof(*c))) == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->start = c->end = 0;
    return c;
}

void tern__chunk_put(tern_reactor *r, tern__chunk *c)
{
    if (r->chunk_pool_len >= POOL_MAX) {
        free(c);
        return;
    }
    c->next = r->chunk_pool;
    r->chunk_pool = c;
    r->chunk_pool_len++;
}

void tern__reactor_chunks_free(tern_reactor *r)
{
    while (r->chunk_pool != NULL) {
        tern__chunk *c = r->chunk_pool;
        r->chunk_pool = c->next;
        free(c);
    }
    r->chunk_pool_len = 0;
}

int tern__bufq_append(tern_reactor *r, tern__bufq *q, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;
    size_t room = q->tail != NULL ? TERN__CHUNK_SIZE - q->tail->end : 0;
    tern__chunk *spare = NULL; /* the chunks it needs, taken first: all or nothing */

    for (size_t need = len > room ? len - room : 0; need > 0;) {
        tern__chunk *c = tern__chunk_get(r);
        if (c == NULL) {
            while (spare != NULL) {
                tern__chunk *n = spare->next;
                tern__chunk_put(r, spare);
                spare = n;
            }
            return TERN_ENOMEM; /* nothing appended */
        }
        c->next = spare;
        spare = c;
        need = need > TERN__CHUNK_SIZE ? need - TERN__CHUNK_SIZE : 0;
    }
    while (done < len) {
        tern__chunk *t = q->tail;
        if (t == NULL || t->end == TERN__CHUNK_SIZE) {
            tern__chunk *c = spare;
            spare = c->next;
            c->next = NULL;
            if (t == NULL) {
                q->head = c;
            } else {
                t->next = c;
            }
            q->tail = t = c;
        }
        size_t n = TERN__CHUNK_SIZE - t->end;
        if (n > len - done) {
            n = len - done;
        }
        memcpy(t->data + t->end, p + done, n);
        t->end += (uint32_t)n;
        q->len += n;
        done += n;
    }
    return 0;
}

size_t tern__bufq_peek(const tern__bufq *q, void *out, size_t len)
{
    char *o = out;
    size_t done = 0;

    for (const tern__chunk *c = q->head; c != NULL && done < len; c = c->next) {
        size_t n = c->end - c->start;
        if (n > len - done) {
            n = len - done;
        }
        memcpy(o + done, c->data + c->start, n);
        done += n;
    }
    return done;
}

void tern__bufq_consume(tern_reactor *r, tern__bufq *q, size_t n)
{
    while (n > 0 && q->head != NULL) {
        tern__chunk *c = q->head;
        size_t avail = c->end - c->start;
        if (n < avail) {
            c->start += (uint32_t)n;
            q->len -= n;
            return;
        }
        n -= avail;
        q->len -= avail;
        q->head = c->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        tern__chunk_put(r, c);
    }
}

void tern__bufq_clear(tern_reactor *r, tern__bufq *q)
{
    tern__bufq_consume(r, q, q->len);
}

size_t tern__bufq_line_len(const tern__bufq *q)
{
    size_t off = 0;

    for (const tern__chunk *c = q->head; c != NULL; c = c->next) {
        const char *nl = memchr(c->data + c->start, '\n', c->end - c->start);
        if (nl != NULL) {
            return off + (size_t)(nl - (c->data + c->start)) + 1;
        }
        off += c->end - c->start;
    }
    return 0;
}

tern__chunk *tern__bufq_reserve(tern_reactor *r, tern__bufq *q, size_t *room)
{
    tern__chunk *c = q->tail;
    if (c == NULL || c->end == TERN__CHUNK_SIZE) {
        if ((c = tern__chunk_get(r)) == NULL) {
            return NULL;
        }
    }
    *room = TERN__CHUNK_SIZE - c->end;
    return c;
}

void tern__bufq_commit(tern__bufq *q, tern__chunk *c, size_t n)
{
    if (n == 0) {
        return;
    }
    if (c != q->tail) {
        if (q->tail == NULL) {
            q->head = c;
        } else {
            q->tail->next = c;
        }
        q->tail = c;
    }
    c->end += (uint32_t)n;
    q->len += n;
}

void tern__bufq_cancel(tern_reactor *r, tern__bufq *q, tern__chunk *c)
{
    if (c != q->tail) {
        tern__chunk_put(r, c);
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * Byte queues of fixed-size chunks taken from the owner reactor's pool (buffer.c): an idle
 * socket holds none. Owner thread only.
 */
#ifndef TERN_RUNTIME_BUFFER_H
#define TERN_RUNTIME_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include <tern/common.h>

#define TERN__CHUNK_SIZE 16384
typedef struct tern__chunk {
    struct tern__chunk *next;
    uint32_t start, end;
    char data[TERN__CHUNK_SIZE];
} tern__chunk;

/* A FIFO byte queue. */
typedef struct tern__bufq {
    tern__chunk *head, *tail;
    size_t len;
} tern__bufq;

tern__chunk *tern__chunk_get(tern_reactor *r);
void tern__chunk_put(tern_reactor *r, tern__chunk *c);
void tern__reactor_chunks_free(tern_reactor *r);
/* All or nothing: TERN_ENOMEM leaves @q as it was. */
int tern__bufq_append(tern_reactor *r, tern__bufq *q, const void *data, size_t len);
size_t tern__bufq_peek(const tern__bufq *q, void *out, size_t len);
void tern__bufq_consume(tern_reactor *r, tern__bufq *q, size_t n);
void tern__bufq_clear(tern_reactor *r, tern__bufq *q);
/* Position of the first '\n' + 1, or 0 if none. */
size_t tern__bufq_line_len(const tern__bufq *q);
/* Zero-copy filling: a chunk with room (the tail, or a fresh one not yet linked), then
 * commit what was written into it, or cancel (a fresh chunk goes back to the pool). */
tern__chunk *tern__bufq_reserve(tern_reactor *r, tern__bufq *q, size_t *room);
void tern__bufq_commit(tern__bufq *q, tern__chunk *c, size_t n);
void tern__bufq_cancel(tern_reactor *r, tern__bufq *q, tern__chunk *c);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A reactor's slab for small long-lived objects that come and go apart from the others: the
 * sealed state of hibernated TLS connections (ssl/hibernate.c). Why not malloc: a blob is
 * allocated just as its connection frees 9-15 KiB of TLS objects, so glibc puts it in the hole
 * they leave, and one 400-byte blob then keeps a whole page of that hole resident; measured on
 * the prototype, 2,970 bytes of RSS per hibernated connection with malloc against 642 with
 * blobs packed in pages of their own (docs/design/hibernation.md section 2).
 *
 * A reactor has two: one for the long-lived part of accepted connections (socket, TLS state,
 * names) and one for sealed TLS state, whose pages are left out of core dumps.
 *
 * Pages of 64 KiB from mmap, one size class per page, a free list per page; a page that
 * empties goes back to the kernel unless it is the class's last one. Each slot starts with its
 * page's address (8 bytes), so a free finds its page without alignment tricks. Owner thread
 * only, like everything else of the reactor: no lock.
 */
#include "rt.h"
#include "slab.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define PAGE_SIZE (64 * 1024)

struct tern__slab_page {
    struct tern__slab_page *prev, *next; /* in its class's list: with room, or full */
    void *free;                          /* free slots, linked through their first bytes */
    unsigned used, slot;                 /* slots given out; slot size, header included */
};

/* Slot sizes, header included: sealed TLS exports are 279-591 bytes (TLS 1.2 to TLS 1.3
 * SHA-384 with SNI and ALPN ticket bindings; 415 for TLS 1.3 AES-128-GCM), an accepted
 * tern_socket (416 bytes on x86-64; 448 made by tern_socket_new) and its tern__tls (416),
 * the negotiated SNI and ALPN names they keep (mostly short); programs' connection records
 * (tern_reactor_mem_alloc: tern-gateway's is 336). */
static const unsigned class_size[TERN__SLAB_CLASSES] = {64, 128, 256, 344, 392, 424, 456, 520, 576, 648};

/* Under AddressSanitizer every block is malloc's: the sanitizer sees no overflow or use after
 * free inside pages of its own, and the sockets live here (the layout is an optimisation). */
#if defined(__SANITIZE_ADDRESS__)
#define SLAB_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLAB_BYPASS 1
#endif
#endif
#ifndef SLAB_BYPASS
#define SLAB_BYPASS 0
#endif

static int class_of(size_t n)
{
    if (SLAB_BYPASS) {
        return -1;
    }
    for (int i = 0; i < TERN__SLAB_CLASSES; i++) {
        if (n + sizeof(void *) <= class_size[i]) {
            return i;
        }
    }
    return -1;
}

static void unlink_page(struct tern__slab_page **head, struct tern__slab_page *p)
{
    if (p->prev != NULL) {
        p->prev->next = p->next;
    } else {
        *head = p->next;
    }
    if (p->next != NULL) {
        p->next->prev = p->prev;
    }
    p->prev = p->next = NULL;
}

static void push_page(struct tern__slab_page **head, struct tern__slab_page *p)
{
    p->prev = NULL;
    p->next = *head;
    if (*head != NULL) {
        (*head)->prev = p;
    }
    *head = p;
}

static struct tern__slab_page *new_page(unsigned slot, bool secret)
{
    void *m = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        return NULL;
    }
    if (secret) {
        (void)madvise(m, PAGE_SIZE, MADV_DONTDUMP); /* advisory: a failure dumps them sealed */
    }
    struct tern__slab_page *p = m;
    memset(p, 0, sizeof(*p));
    p->slot = slot;
    /* the slots after the header, linked lazily from the end so the first used come first */
    char *base = (char *)m + ((sizeof(*p) + 15) & ~(size_t)15);
    size_t n = ((char *)m + PAGE_SIZE - base) / slot;
    for (size_t i = n; i-- > 0;) {
        void **s = (void **)(base + i * slot);
        *s = p->free;
        p->free = s;
    }
    return p;
}

void *tern__slab_alloc(tern__slab *sl, size_t n)
{
    int c = class_of(n);
    if (c < 0) {
        void **m = malloc(n + sizeof(void *)); /* a size no class holds: rare, malloc's */
        if (m == NULL) {
            return NULL;
        }
        m[0] = NULL;
        return m + 1;
    }
    struct tern__slab_page *p = sl->room[c];
    if (p == NULL) {
        if ((p = new_page(class_size[c], sl->secret)) == NULL) {
            return NULL;
        }
        push_page(&sl->room[c], p);
    }
    void **s = p->free;
    p->free = *s;
    p->used++;
    if (p->free == NULL) {
        unlink_page(&sl->room[c], p);
        push_page(&sl->full[c], p);
    }
    s[0] = p;
    return s + 1;
}

void tern__slab_free(tern__slab *sl, void *ptr)
{
    if (ptr == NULL) {
        return;
    }
    void **s = (void **)ptr - 1;
    struct tern__slab_page *p = s[0];
    if (p == NULL) {
        free(s);
        return;
    }
    int c = class_of(p->slot - sizeof(void *));
    if (p->free == NULL) {
        unlink_page(&sl->full[c], p);
        push_page(&sl->room[c], p);
    }
    *s = p->free;
    p->free = s;
    if (--p->used == 0 && (p->prev != NULL || p->next != NULL)) {
        unlink_page(&sl->room[c], p); /* empty and not the class's only page with room */
        munmap(p, PAGE_SIZE);
    }
}

void tern__slab_destroy(tern__slab *sl)
{
    for (int c = 0; c < TERN__SLAB_CLASSES; c++) {
        struct tern__slab_page **lists[2] = {&sl->room[c], &sl->full[c]};
        for (int l = 0; l < 2; l++) {
            while (*lists[l] != NULL) {
                struct tern__slab_page *p = *lists[l];
                unlink_page(lists[l], p);
                munmap(p, PAGE_SIZE);
            }
        }
    }
}

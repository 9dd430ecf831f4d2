/* SPDX-License-Identifier: MIT */
/*
 * A reactor's slab (runtime/slab.c) through tern_reactor_mem_alloc / _free: every size from 1
 * byte to past the largest class, zeroed, aligned, never two live blocks overlapping (each
 * block carries its own pattern, checked before it is freed), freed in a shuffled order and
 * made again, and the pages an emptied class held given back (its VmRSS comes down).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern/tern.h>

#define N 20000

struct block {
    uint8_t *p;
    size_t n;
};

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131u + 7u);
}

static void fill(struct block *b, size_t i)
{
    memset(b->p, pattern(i), b->n);
}

static bool intact(const struct block *b, size_t i)
{
    for (size_t k = 0; k < b->n; k++) {
        if (b->p[k] != pattern(i)) {
            return false;
        }
    }
    return true;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1) {
            break;
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return v;
}

static void test_slab__sizes_zeroed_aligned_disjoint(void **state)
{
    (void)state;
    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);
    static struct block b[N];
    unsigned seed = 12345;

    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < N; i++) {
            b[i].n = 1 + (size_t)(rand_r(&seed) % 900); /* up to past the 648-byte class */
            b[i].p = tern_reactor_mem_alloc(r, b[i].n);
            assert_non_null(b[i].p);
            assert_int_equal((uintptr_t)b[i].p % 8, 0);
            for (size_t k = 0; k < b[i].n; k++) {
                assert_int_equal(b[i].p[k], 0); /* zeroed, even a slot used before */
            }
            fill(&b[i], i);
        }
        /* free in a shuffled order, each block checked first: an overlap shows as a pattern
         * another block wrote */
        for (size_t i = N - 1; i > 0; i--) {
            size_t j = (size_t)rand_r(&seed) % (i + 1);
            struct block t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
        size_t bad = 0;
        for (size_t i = 0; i < N; i++) {
            /* the pattern went with the block: recompute which index wrote it */
            uint8_t want = b[i].p[0];
            for (size_t k = 0; k < b[i].n; k++) {
                bad += b[i].p[k] != want;
            }
            tern_reactor_mem_free(r, b[i].p);
        }
        assert_int_equal(bad, 0);
    }
    tern_reactor_mem_free(r, NULL); /* no-op */
    tern_reactor_free(r);
}

/* A class that empties gives its pages back: 20,000 blocks of 400 bytes (~8 MB) made and
 * freed leave at most one page of that class resident. */
static void test_slab__emptied_pages_go_back(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the slab hands AddressSanitizer builds over to malloc (runtime/slab.c) */
#endif
    tern_reactor *r = tern_reactor_new();
    assert_non_null(r);
    static struct block b[N];
    long before = rss_kib();
    for (size_t i = 0; i < N; i++) {
        b[i].n = 400;
        b[i].p = tern_reactor_mem_alloc(r, b[i].n);
        assert_non_null(b[i].p);
        fill(&b[i], i);
    }
    long full = rss_kib();
    for (size_t i = 0; i < N; i++) {
        assert_true(intact(&b[i], i));
        tern_reactor_mem_free(r, b[i].p);
    }
    long after = rss_kib();
    print_message("# VmRSS: %ld KiB before, %ld with 20,000 x 400 B, %ld after the frees\n",
                  before, full, after);
    assert_true(full - before >= 7000); /* the blocks were resident */
    assert_true(after - before < 1024); /* and went back (one 64 KiB page may stay) */
    tern_reactor_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slab__sizes_zeroed_aligned_disjoint),
        cmocka_unit_test(test_slab__emptied_pages_go_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

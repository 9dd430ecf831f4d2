/* SPDX-License-Identifier: MIT */
/*
 * Telling ThreadSanitizer about hand-offs it cannot see: Concurrency Kit's rings and epochs
 * publish with fences TSan does not model. Compiled to nothing outside TSan builds.
 */
#ifndef TERN_RUNTIME_TSAN_H
#define TERN_RUNTIME_TSAN_H

#ifdef TERN_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define TERN__TSAN_RELEASE(p) __tsan_release(p)
#define TERN__TSAN_ACQUIRE(p) __tsan_acquire(p)
#else
#define TERN__TSAN_RELEASE(p) ((void)(p))
#define TERN__TSAN_ACQUIRE(p) ((void)(p))
#endif

#endif

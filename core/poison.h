/* SPDX-License-Identifier: MIT */
/*
 * Memory a module keeps for reuse (a freed message block, a settled delivery
 * record) is poisoned under AddressSanitizer, so a use after its release is
 * still reported; elsewhere these compile to nothing.
 */
#ifndef WR_CORE_POISON_H
#define WR_CORE_POISON_H

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define WR_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define WR_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define WR_POISON(p, n)   ((void)(p), (void)(n))
#define WR_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#endif

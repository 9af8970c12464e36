/* SPDX-License-Identifier: MIT */
/*
 * The monotonic clock in nanoseconds (CLOCK_MONOTONIC, read through the
 * vDSO: no syscall), and the step of an exponential back-off.
 */
#ifndef WR_CORE_CLOCK_H
#define WR_CORE_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t wr_mono_ns(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Failed disk work (a storage batch's leftovers, a topology snapshot) is
 * tried again after WR_RETRY_MIN_NS, twice as long after each further
 * failure in a row, up to WR_RETRY_MAX_NS. */
#define WR_RETRY_MIN_NS (1000ull * 1000 * 1000)
#define WR_RETRY_MAX_NS (32ull * 1000 * 1000 * 1000)

/* The next wait of a back-off: min after none (last == 0), else twice the last, at most max. */
static inline uint64_t wr_backoff_next(uint64_t last, uint64_t min, uint64_t max)
{
    if (last == 0)
        return min;
    return last > max / 2 ? max : last * 2;
}

#endif

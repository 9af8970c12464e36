/* SPDX-License-Identifier: MIT */
/*
 * Log-linear latency histogram. A value's bucket is found with one count of
 * leading zeros and a shift, so recording costs a few instructions on the
 * consumer's hot path.
 */
#include "hist.h"

#include <math.h>
#include <stdlib.h>

/* Values below EXACT get a bucket each; above, each power of two [2^e, 2^e+1)
 * is split into SUB equal buckets. EXACT = 2 * SUB keeps the two regimes
 * contiguous: 2^8 is the first value that needs a shift. */
#define SUB_BITS 7
#define SUB      (1u << SUB_BITS)
#define EXACT    (2u * SUB)
#define NBUCKETS (EXACT + (64 - SUB_BITS - 1) * SUB)

struct wr_hist_s {
    uint64_t count;
    uint64_t sum;
    uint64_t min;
    uint64_t max;
    uint64_t buckets[NBUCKETS];
};

static size_t bucket_of(uint64_t v)
{
    if (v < EXACT)
        return (size_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS + 1 */
    unsigned shift = e - SUB_BITS;
    uint64_t sub = v >> shift; /* in [SUB, 2 * SUB) */
    return EXACT + (size_t)(e - SUB_BITS - 1) * SUB + (size_t)(sub - SUB);
}

/* Highest value that maps to bucket i. For the last power of two the
 * shift wraps to 0 and the subtraction yields UINT64_MAX, which is right. */
static uint64_t bucket_high(size_t i)
{
    if (i < EXACT)
        return (uint64_t)i;
    size_t e = (i - EXACT) / SUB + SUB_BITS + 1;
    uint64_t sub = (uint64_t)((i - EXACT) % SUB) + SUB;
    unsigned shift = (unsigned)e - SUB_BITS;
    return ((sub + 1) << shift) - 1;
}

wr_hist_t *wr_hist_new(void)
{
    return calloc(1, sizeof(wr_hist_t));
}

void wr_hist_free(wr_hist_t *h)
{
    free(h);
}

void wr_hist_record(wr_hist_t *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->buckets[bucket_of(v)]++;
}

uint64_t wr_hist_count(const wr_hist_t *h)
{
    return h->count;
}

uint64_t wr_hist_min(const wr_hist_t *h)
{
    return h->min;
}

uint64_t wr_hist_max(const wr_hist_t *h)
{
    return h->max;
}

double wr_hist_mean(const wr_hist_t *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}

uint64_t wr_hist_percentile(const wr_hist_t *h, double pct)
{
    if (h->count == 0)
        return 0;
    /* The rank of the pct-th value, 1-based: p50 of 4 values is the 2nd. */
    double want = ceil(pct / 100.0 * (double)h->count);
    uint64_t rank = want < 1.0 ? 1 : (uint64_t)want;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < NBUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t high = bucket_high(i);
            return high < h->max ? high : h->max;
        }
    }
    return h->max;
}

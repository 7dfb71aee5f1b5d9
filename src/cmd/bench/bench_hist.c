/* The latency histogram of `tlsresume bench` (see bench_hist.h). */
#include "bench_hist.h"

/* Bucket of v: values below HIST_SUB map one to one; above, the top 5 bits select the bucket
 * within their power of two. */
static unsigned bucket_of(uint64_t v)
{
    if (v < HIST_SUB) {
        return (unsigned)v;
    }
    unsigned p = 63u - (unsigned)__builtin_clzll(v); /* v in [2^p, 2^(p+1)) */
    unsigned sub = (unsigned)((v >> (p - 4)) & (HIST_SUB - 1));
    unsigned b = (p - 3) * HIST_SUB + sub;
    return b < HIST_POW * HIST_SUB ? b : HIST_POW * HIST_SUB - 1;
}

/* The upper edge of bucket b. */
static uint64_t bucket_value(unsigned b)
{
    if (b < HIST_SUB) {
        return b;
    }
    unsigned p = b / HIST_SUB + 3;
    uint64_t sub = b % HIST_SUB;
    return ((uint64_t)HIST_SUB + sub + 1) << (p - 4);
}

void hist_add(struct hist *h, uint64_t us)
{
    h->n[bucket_of(us)]++;
    h->count++;
    if (us > h->max_us) {
        h->max_us = us;
    }
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_POW * HIST_SUB; i++) {
        into->n[i] += from->n[i];
    }
    into->count += from->count;
    if (from->max_us > into->max_us) {
        into->max_us = from->max_us;
    }
}

uint64_t hist_percentile(const struct hist *h, double p)
{
    if (h->count == 0) {
        return 0;
    }
    /* Nearest rank: the smallest value with at least p% of the samples at or below it. */
    double exact = (p / 100.0) * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    rank += (double)rank < exact;
    rank = rank < 1 ? 1 : (rank > h->count ? h->count : rank);
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_POW * HIST_SUB; i++) {
        seen += h->n[i];
        if (seen >= rank) {
            uint64_t v = bucket_value(i);
            return v < h->max_us ? v : h->max_us;
        }
    }
    return h->max_us;
}

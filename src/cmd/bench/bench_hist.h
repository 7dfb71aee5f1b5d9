/* A log-linear latency histogram (HDR-style): 16 buckets per power of two of microseconds,
 * so any percentile is within about 6% of the truth, in fixed memory. */
#ifndef TLSR_BENCH_HIST_H
#define TLSR_BENCH_HIST_H

#include <stdint.h>

#define HIST_SUB 16
#define HIST_POW 32

struct hist {
    uint64_t n[HIST_POW * HIST_SUB];
    uint64_t count;
    uint64_t max_us;
};

void hist_add(struct hist *h, uint64_t us);
void hist_merge(struct hist *into, const struct hist *from);
/* The value at percentile p (0..100), in microseconds; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double p);

#endif

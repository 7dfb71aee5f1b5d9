/* The last hour of handshake counters, sampled by the master every HISTORY_INTERVAL_S, for the
 * status page's graphs (served in /status). Bounded: the oldest sample makes room. */
#ifndef TLSR_SERVE_HISTORY_H
#define TLSR_SERVE_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "serve_metrics.h"

#define HISTORY_INTERVAL_S 5
#define HISTORY_SAMPLES 720 /* an hour */

/* The sampled counters: completed handshakes by version and how they resumed. */
enum history_column {
    H_TLS12_FULL,
    H_TLS12_ID,
    H_TLS12_TICKET,
    H_TLS13_FULL,
    H_TLS13_PSK,
    H_COUNT
};

struct history_sample {
    int64_t time_s; /* wall clock */
    uint64_t v[H_COUNT];
};

struct history {
    struct history_sample s[HISTORY_SAMPLES];
    size_t next; /* where the next sample goes */
    size_t n;    /* samples held */
};

extern const char *const HISTORY_COLUMNS[H_COUNT];

void history_add(struct history *h, int64_t time_s, const struct metrics_slot *sum);
/* The i-th sample held, oldest first (i < h->n). */
const struct history_sample *history_at(const struct history *h, size_t i);

#endif

/* The admin endpoint of `tlsresume serve`: GET /metrics (Prometheus text), GET /status (JSON). */
#ifndef TLSR_SERVE_ADMIN_H
#define TLSR_SERVE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tlsresume.h>

#include "serve_metrics.h"

struct admin_view {
    const struct metrics *metrics;
    struct tlsr_cache *cache;
    struct tlsr_keyring *ring; /* NULL when stateless tickets are off */
    unsigned workers;
    double started; /* wall-clock seconds */
    unsigned long reloads;
    const struct tlsr_fleet_ring *fleet_ring; /* NULL without --redis, or without tickets */
    bool is_fleet;                            /* --redis: the fleet session cache runs */
};

/* Writes the response for one request line into out; returns its length (0: no room). */
size_t admin_respond(const struct admin_view *v, const char *request, char *out, size_t cap);

#endif

/*
 * Counters of `tlsresume serve`, kept per worker in one shared mapping the master creates
 * before forking. Workers add with atomic operations; the master sums them for /metrics and
 * folds the slot of an exited worker into `retired`, so totals never go backwards.
 */
#ifndef TLSR_SERVE_METRICS_H
#define TLSR_SERVE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/ssl.h>

#include "../cli/value.h"

#define METRICS_SLOTS 512

enum metric {
    /* Handshakes: M_HS + version (0 = TLS 1.2, 1 = TLS 1.3) * 4 + enum tlsr_resumption. */
    M_HS = 0,
    M_HS_END = 8,
    M_HS_FAILED = M_HS_END,
    M_HS_TIMEOUT,
    M_IDLE_TIMEOUT,
    M_BACKEND_FAILED,
    M_BACKEND_TIMEOUT,
    M_REFUSED,
    M_CONN_TOTAL,
    M_CONN_OPEN, /* a gauge: not folded into retired */
    M_BYTES_C2B,
    M_BYTES_B2C,
    M_PROXY_ERRORS,
    M_PROXY_IN_BAD,     /* accept_proxy: no valid PROXY header from the balancer */
    M_PROXY_IN_TIMEOUT, /* accept_proxy: the header did not come within handshake_timeout */
    /* The fleet cache's counters, copied from the library (same order as in on_fleet_stats). */
    M_FLEET_LOOKUPS,
    M_FLEET_HITS,
    M_FLEET_MISSES,
    M_FLEET_TIMEOUTS,
    M_FLEET_UNAVAILABLE,
    M_FLEET_REJECTED,
    M_FLEET_STORED,
    M_FLEET_REMOVED,
    M_FLEET_DOWN, /* a gauge: endpoints this worker cannot reach */
    M_FLEET_EARLY_FRESH,
    M_FLEET_EARLY_REPLAYS,
    M_FLEET_EARLY_UNAVAILABLE,
    M_FLEET_EARLY_LOST,
    M_FLEET_EARLY_CLOCK,
    /* 0-RTT: offered, then one outcome each; bytes accepted; flights over the limit. */
    M_EARLY_OFFERED,
    M_EARLY_ACCEPTED,
    M_EARLY_REPLAY,
    M_EARLY_UNAVAILABLE,
    M_EARLY_STARTING,
    M_EARLY_OTHER,
    M_EARLY_TOO_LARGE,
    M_EARLY_BYTES,
    /* --backend-tls: the backend leg's handshakes, why a full one, and those that failed. */
    M_UP_FULL,
    M_UP_RESUMED,
    M_UP_MISS_NO_SESSION,
    M_UP_MISS_REFUSED,
    M_UP_MISS_UNREADABLE,
    M_UP_MISS_DISABLED,
    M_UP_FAIL_VERIFY,
    M_UP_FAIL_ALPN,
    M_UP_FAIL_HANDSHAKE,
    /* Resumption accounting: handshakes whose client offered a session, by what it offered
     * (M_OFFER + enum tlsr_offer - 1), and those of them that got a full handshake, by reason
     * (M_MISS + enum tlsr_miss - 1): offered = resumed + the reasons. */
    M_OFFER,
    M_OFFER_END = M_OFFER + 3,
    M_MISS = M_OFFER_END,
    M_MISS_END = M_MISS + TLSR_MISS_COUNT - 1,
    /* Per backend (M_BK_* + its index): connects started, and those that failed or timed out. */
    M_BK_CONNECTS = M_MISS_END,
    M_BK_FAILURES = M_BK_CONNECTS + CLI_LIST_MAX,
    M_COUNT = M_BK_FAILURES + CLI_LIST_MAX
};

struct metrics_slot {
    uint64_t v[M_COUNT];
};

struct metrics {
    uint64_t open_total; /* client connections open over all workers, for max_connections */
    struct metrics_slot retired;
    struct metrics_slot slots[METRICS_SLOTS];
    uint8_t is_used[METRICS_SLOTS];
};

/* The label value of each counter of a labelled family, shared by /metrics and /status. */
struct metric_row {
    enum metric m;
    const char *value;
};
struct metric_rows {
    const struct metric_row *v;
    size_t n;
};
extern const struct metric_rows METRIC_ERRORS;        /* kind */
extern const struct metric_rows METRIC_EARLY;         /* result */
extern const struct metric_rows METRIC_OFFERS;        /* kind */
extern const struct metric_rows METRIC_FLEET_LOOKUPS; /* result */
extern const struct metric_rows METRIC_FLEET_EARLY;   /* answer */
extern const struct metric_rows METRIC_UPSTREAM;      /* result */
extern const struct metric_rows METRIC_UPSTREAM_MISS; /* reason */
extern const struct metric_rows METRIC_UPSTREAM_FAIL; /* reason */
/* A ticket key's state as /metrics and /status name it. */
const char *metric_key_state(enum tlsr_key_state st);
/* The reasons an offered session got a full handshake (reason), named by the library. */
const struct metric_rows *metric_reasons(void);

/* Maps the shared counters (zeroed); NULL on failure. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* A free slot index for a new worker, or -1. */
int metrics_claim(struct metrics *m);
/* Folds an exited worker's slot into retired and frees it. */
void metrics_retire(struct metrics *m, int slot);
void metrics_sum(const struct metrics *m, struct metrics_slot *out);

static inline void metrics_add(struct metrics_slot *s, enum metric which, uint64_t n)
{
    __atomic_add_fetch(&s->v[which], n, __ATOMIC_RELAXED);
}

static inline void metrics_sub(struct metrics_slot *s, enum metric which, uint64_t n)
{
    __atomic_sub_fetch(&s->v[which], n, __ATOMIC_RELAXED);
}

static inline enum metric metrics_handshake(int tls_version, enum tlsr_resumption kind)
{
    int v = tls_version == TLS1_3_VERSION ? 1 : 0;
    return (enum metric)(M_HS + v * 4 + (int)kind);
}

#endif

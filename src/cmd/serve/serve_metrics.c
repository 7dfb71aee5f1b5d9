/* Shared counters of `tlsresume serve` (see serve_metrics.h). Not secret: plain shared memory. */
#include "serve_metrics.h"

#include <string.h>
#include <sys/mman.h>

#define ROWS(r)                                                                                    \
    {                                                                                              \
        (r), sizeof(r) / sizeof((r)[0])                                                            \
    }

static const struct metric_row errors[] = {{M_HS_FAILED, "handshake_failed"},
                                           {M_HS_TIMEOUT, "handshake_timeout"},
                                           {M_IDLE_TIMEOUT, "idle_timeout"},
                                           {M_BACKEND_FAILED, "backend_connect"},
                                           {M_BACKEND_TIMEOUT, "backend_timeout"},
                                           {M_REFUSED, "max_connections"},
                                           {M_PROXY_ERRORS, "proxy_io"},
                                           {M_PROXY_IN_BAD, "proxy_header"},
                                           {M_PROXY_IN_TIMEOUT, "proxy_header_timeout"}};
static const struct metric_row early[] = {{M_EARLY_OFFERED, "offered"},
                                          {M_EARLY_ACCEPTED, "accepted"},
                                          {M_EARLY_REPLAY, "rejected_replay"},
                                          {M_EARLY_UNAVAILABLE, "rejected_unavailable"},
                                          {M_EARLY_STARTING, "rejected_starting"},
                                          {M_EARLY_OTHER, "rejected_stale"},
                                          {M_EARLY_TOO_LARGE, "too_large"}};
static const struct metric_row offers[] = {{M_OFFER + TLSR_OFFER_ID - 1, "id"},
                                           {M_OFFER + TLSR_OFFER_TICKET - 1, "ticket"},
                                           {M_OFFER + TLSR_OFFER_PSK - 1, "psk"}};
static const struct metric_row lookups[] = {{M_FLEET_HITS, "hit"},
                                            {M_FLEET_MISSES, "miss"},
                                            {M_FLEET_TIMEOUTS, "timeout"},
                                            {M_FLEET_UNAVAILABLE, "unavailable"},
                                            {M_FLEET_REJECTED, "rejected"}};
static const struct metric_row answers[] = {{M_FLEET_EARLY_FRESH, "first"},
                                            {M_FLEET_EARLY_REPLAYS, "replay"},
                                            {M_FLEET_EARLY_UNAVAILABLE, "unavailable"},
                                            {M_FLEET_EARLY_LOST, "lost"},
                                            {M_FLEET_EARLY_CLOCK, "clock"}};
static const struct metric_row upstream[] = {{M_UP_FULL, "full"}, {M_UP_RESUMED, "resumed"}};
static const struct metric_row upstream_miss[] = {{M_UP_MISS_NO_SESSION, "no_session"},
                                                  {M_UP_MISS_REFUSED, "refused"},
                                                  {M_UP_MISS_UNREADABLE, "unreadable"},
                                                  {M_UP_MISS_DISABLED, "disabled"}};
static const struct metric_row upstream_fail[] = {
    {M_UP_FAIL_VERIFY, "verify"}, {M_UP_FAIL_ALPN, "alpn"}, {M_UP_FAIL_HANDSHAKE, "handshake"}};
const struct metric_rows METRIC_ERRORS = ROWS(errors);
const struct metric_rows METRIC_UPSTREAM = ROWS(upstream);
const struct metric_rows METRIC_UPSTREAM_MISS = ROWS(upstream_miss);
const struct metric_rows METRIC_UPSTREAM_FAIL = ROWS(upstream_fail);
const struct metric_rows METRIC_EARLY = ROWS(early);
const struct metric_rows METRIC_OFFERS = ROWS(offers);
const struct metric_rows METRIC_FLEET_LOOKUPS = ROWS(lookups);
const struct metric_rows METRIC_FLEET_EARLY = ROWS(answers);

const char *metric_key_state(enum tlsr_key_state st)
{
    return st == TLSR_KEY_CURRENT ? "current" : st == TLSR_KEY_NEXT ? "next" : "decrypt_only";
}

const struct metric_rows *metric_reasons(void)
{
    static struct metric_row reasons[TLSR_MISS_COUNT - 1];
    static struct metric_rows rows = {reasons, TLSR_MISS_COUNT - 1};
    for (int i = 1; i < TLSR_MISS_COUNT; i++) {
        reasons[i - 1].m = (enum metric)(M_MISS + i - 1);
        reasons[i - 1].value = tlsr_miss_name((enum tlsr_miss)i);
    }
    return &rows;
}

struct metrics *metrics_new(void)
{
    void *p = mmap(NULL, sizeof(struct metrics), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void metrics_free(struct metrics *m)
{
    if (m != NULL) {
        munmap(m, sizeof(*m));
    }
}

int metrics_claim(struct metrics *m)
{
    for (int i = 0; i < METRICS_SLOTS; i++) {
        if (!m->is_used[i]) {
            memset(&m->slots[i], 0, sizeof(m->slots[i]));
            m->is_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void metrics_retire(struct metrics *m, int slot)
{
    if (slot < 0 || slot >= METRICS_SLOTS || !m->is_used[slot]) {
        return;
    }
    /* A worker that died with connections open leaves them in the shared count. */
    __atomic_sub_fetch(&m->open_total,
                       __atomic_load_n(&m->slots[slot].v[M_CONN_OPEN], __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
    for (int k = 0; k < M_COUNT; k++) {
        if (k != M_CONN_OPEN && k != M_FLEET_DOWN) {
            m->retired.v[k] += __atomic_load_n(&m->slots[slot].v[k], __ATOMIC_RELAXED);
        }
    }
    memset(&m->slots[slot], 0, sizeof(m->slots[slot]));
    m->is_used[slot] = 0;
}

void metrics_sum(const struct metrics *m, struct metrics_slot *out)
{
    *out = m->retired;
    for (int i = 0; i < METRICS_SLOTS; i++) {
        if (!m->is_used[i]) {
            continue;
        }
        for (int k = 0; k < M_COUNT; k++) {
            out->v[k] += __atomic_load_n(&m->slots[i].v[k], __ATOMIC_RELAXED);
        }
    }
}

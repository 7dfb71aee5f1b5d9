/* Shared counters of `tlsresume serve` (see serve_metrics.h). Not secret: plain shared memory. */
#include "serve_metrics.h"

#include <string.h>
#include <sys/mman.h>

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

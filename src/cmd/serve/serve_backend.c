/*
 * Which backend a connection goes to, per worker: round-robin or least-connections over the
 * backends that are up, skipping those already tried for the connection. A backend whose
 * connect failed or timed out is down for backend_down and then tried again; when every
 * untried backend is down, the one that went down longest ago is tried rather than none (a
 * backend that came back is found at once, and a client is refused only when all failed).
 */
#include "serve_conn.h"

#include "../cli/log.h"

int backend_pick(struct worker *w, uint32_t tried)
{
    const struct worker_args *a = w->a;
    ev_tstamp now = ev_now(w->loop);
    bool is_least = a->cfg->backend_balance[0] == 'l';
    int best = -1;
    int oldest_down = -1;
    for (size_t k = 0; k < a->n_backends; k++) {
        size_t i = (w->backend_next + k) % a->n_backends;
        if ((tried & (1u << i)) != 0) {
            continue;
        }
        if (w->backend_down_until[i] > now) {
            if (oldest_down < 0 || w->backend_down_until[i] < w->backend_down_until[oldest_down]) {
                oldest_down = (int)i;
            }
            continue;
        }
        if (best < 0 || (is_least && w->backend_open[i] < w->backend_open[best])) {
            best = (int)i;
        }
        if (!is_least) {
            break;
        }
    }
    int pick = best >= 0 ? best : oldest_down;
    if (pick >= 0) {
        w->backend_next = ((size_t)pick + 1) % a->n_backends;
    }
    return pick;
}

void backend_attach(struct conn *c, int i)
{
    backend_detach(c);
    c->backend = i;
    c->backends_tried |= 1u << i;
    c->w->backend_open[i]++;
}

void backend_detach(struct conn *c)
{
    if (c->backend >= 0) {
        c->w->backend_open[c->backend]--;
        c->backend = -1;
    }
}

void backend_mark_down(struct conn *c, const char *error)
{
    struct worker *w = c->w;
    int i = c->backend;
    log_msg(LOG_ERROR, "backend", "backend=%s error=\"%s\"", i >= 0 ? w->a->backends[i].name : "-",
            error);
    if (i < 0) {
        return;
    }
    metrics_add(w->a->metrics, (enum metric)(M_BK_FAILURES + i), 1);
    ev_tstamp now = ev_now(w->loop);
    if (w->backend_down_until[i] <= now) {
        log_msg(LOG_WARN, "backend", "worker=%d backend=%s event=backend_down for_s=%llu", w->a->id,
                w->a->backends[i].name, (unsigned long long)w->a->cfg->backend_down_s);
    }
    w->backend_down_until[i] = now + (ev_tstamp)w->a->cfg->backend_down_s;
}

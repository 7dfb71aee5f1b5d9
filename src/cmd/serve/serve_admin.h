/* The admin endpoint of `tlsresume serve`: GET / (the status page), GET /metrics (Prometheus
 * text), GET /status (JSON, docs/status-json.md). */
#ifndef TLSR_SERVE_ADMIN_H
#define TLSR_SERVE_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tlsresume.h>

#include "serve_history.h"
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
    const struct history *history;            /* the status page's samples */
    const struct cli_list *backends;          /* as configured, in the counters' order */
    bool is_backend_tls;                      /* --backend-tls */
};

#define ADMIN_BODY_MAX (512 * 1024)

/* The whole HTTP response to one request line, allocated (free it), its length in len; NULL
 * when it does not fit ADMIN_BODY_MAX or memory is short. */
char *admin_respond(const struct admin_view *v, const char *request, size_t *len);

/* The endpoint's sockets (serve_admin_io.c). view() fills the view each request answers from. */
typedef void (*admin_view_fn)(void *arg, struct admin_view *out);

struct admin_conn;

struct admin_server {
    struct ev_loop *loop;
    ev_io io;
    admin_view_fn view;
    void *arg;
    struct admin_conn *conns;
    unsigned open;
    bool is_running;
};

/* Serves the listening socket fd (not owned: the caller closes it) on loop. */
void admin_server_start(struct admin_server *s, struct ev_loop *loop, int fd, admin_view_fn view,
                        void *arg);
/* Stops accepting and closes the connections open now. */
void admin_server_stop(struct admin_server *s);
/* In a forked child: closes the inherited connections and drops every watcher, so the child
 * holds no admin socket open (the parent's loop still owns them). */
void admin_server_forget(struct admin_server *s);

#endif

/* A worker process of `tlsresume serve`: accepts, terminates TLS, proxies to the backend. */
#ifndef TLSR_SERVE_WORKER_H
#define TLSR_SERVE_WORKER_H

#include <stddef.h>
#include <sys/socket.h>

#include "serve_config.h"
#include "serve_metrics.h"
#include "serve_tls.h"

struct worker_args {
    const struct serve_config *cfg;
    struct tls_set *tls;
    const int *listen_fds;
    size_t n_listen;
    struct sockaddr_storage backend;
    socklen_t backend_len;
    struct metrics_slot *metrics;
    uint64_t *open_total;                /* connections open over all workers (shared, atomic) */
    const struct tlsr_fleet_opts *fleet; /* NULL without --redis */
    int id;
};

/* Runs the worker's event loop until it has drained after SIGTERM; returns the exit code. */
int worker_run(const struct worker_args *args);

#endif

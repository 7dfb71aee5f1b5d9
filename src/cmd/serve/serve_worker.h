/* A worker process of `tlsresume serve`: accepts, terminates TLS, proxies to the backend. */
#ifndef TLSR_SERVE_WORKER_H
#define TLSR_SERVE_WORKER_H

#include "serve_conn.h"

/* Runs the worker's event loop until it has drained after SIGTERM; returns the exit code. */
int worker_run(const struct worker_args *args);

#endif

/* The master's sockets: listeners bound, backends resolved, the descriptor limit raised. */
#ifndef TLSR_SERVE_LISTEN_H
#define TLSR_SERVE_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "serve_config.h"
#include "serve_conn.h"
#include "serve_upstream.h"

/* Every backend of cfg, resolved into out (with its TLS name and session key when up is not
 * NULL); false (err says which) when one does not resolve. */
bool resolve_backends(const struct serve_config *cfg, const struct upstream *up,
                      struct backend_addr *out, size_t *n, char *err, size_t cap);

/* A non-blocking listening socket on addr (TCP_NODELAY, which accepted sockets inherit);
 * -1 with the address and the reason in err. */
int bind_listener(const char *addr, int backlog, char *err, size_t cap);

/* Raises RLIMIT_NOFILE toward what max_connections needs (two descriptors a connection);
 * logs when it cannot. */
void raise_nofile(const struct serve_config *cfg);

#endif

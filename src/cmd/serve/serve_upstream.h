/*
 * The backend leg over TLS (--backend-tls) of `tlsresume serve`: the client SSL_CTX (trust,
 * client certificate), each backend's name and session key, the upstream session store, and a
 * connection's TLS handshake with its backend. serve_proxy.c drives it; relaying over the
 * finished SSL is serve_proxy.c's own.
 */
#ifndef TLSR_SERVE_UPSTREAM_H
#define TLSR_SERVE_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/cache.h>

#include "serve_conn.h"

/* TLS 1.3 tickets kept per backend (each used once), beside one TLS 1.2 session. */
#define UPSTREAM_TICKETS 8

struct upstream {
    SSL_CTX *ctx;
    struct tlsr_cache *store; /* borrowed from the master; NULL: sessions are not reused */
    uint8_t trust[32];        /* digest of what verifies a backend (CA bytes, name, client cert) */
    bool is_insecure;
};

/* Builds the client context from cfg (store NULL: no reuse). On error writes "option: what"
 * into err and returns false; *up is then empty. */
bool upstream_build(const struct serve_config *cfg, struct tlsr_cache *store, struct upstream *up,
                    char *err, size_t cap);
void upstream_free(struct upstream *up);
/* The backend leg for cfg, allocated, into *out (NULL without --backend-tls), with *store, the
 * session cache, made the first time it is needed (the master keeps it for its life, as it does
 * the server-side cache); a warning logged for --backend-insecure. False: err says why. */
bool upstream_new(const struct serve_config *cfg, struct tlsr_cache **store, struct upstream **out,
                  char *err, size_t cap);
/* Frees what upstream_new made (the store stays). Accepts NULL. */
void upstream_delete(struct upstream *up);
/* Fills b's TLS name and session key from cfg and its configured address (b->name). */
void upstream_endpoint(const struct upstream *up, const struct serve_config *cfg,
                       struct backend_addr *b);

/* After the TCP connect to c's backend: c->bssl on c->bfd, with a stored session offered when
 * one is there. False (err says why) when the SSL could not be made. */
bool upstream_start(struct conn *c, char *err, size_t cap);
/* Steps the handshake: 1 done (counted, its session stored), 0 to wait (c->b_read_wants says
 * for what), -1 failed (counted; err says why, naming a certificate problem as such). */
int upstream_handshake(struct conn *c, char *err, size_t cap);

#endif

/* The upstream session store of `tlsresume serve --backend-tls` (serve_upstream_store.c): what
 * resumes the handshakes with each backend, shared by the workers. */
#ifndef TLSR_SERVE_UPSTREAM_STORE_H
#define TLSR_SERVE_UPSTREAM_STORE_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "serve_conn.h"

/* A session for c's backend: one of this worker's TLS 1.3 tickets, the TLS 1.2 session, or
 * another worker's ticket, in that order (a ticket is taken: no one else gets it). The caller
 * owns it. NULL when there is none (*miss: UP_MISS_NO_SESSION) or what was there did not decode
 * (UP_MISS_UNREADABLE). */
SSL_SESSION *upstream_store_take(struct conn *c, enum upstream_miss *miss);
/* The client context's new-session callback: stores a TLS 1.3 ticket of the backend (borrowed). */
int upstream_store_on_ticket(SSL *ssl, SSL_SESSION *sess);
/* Stores the TLS 1.2 session (borrowed) of c's finished handshake. */
void upstream_store_put_tls12(struct conn *c, SSL_SESSION *sess);
/* Drops what c's backend refused or broke: every TLS 1.3 ticket stored for it (is_tls13: it
 * refused one, so it lost its keys), else its TLS 1.2 session. */
void upstream_store_forget(struct conn *c, bool is_tls13);
/* Frees what the worker holds (at its exit). */
void upstream_store_release(struct worker *w);

#endif

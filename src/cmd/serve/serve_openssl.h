/* OpenSSL helpers that serve's TLS rooms share (serve_tls.c, serve_client_auth.c,
 * serve_upstream.c): error text and file digests. They call nothing of serve's. */
#ifndef SERVE_OPENSSL_H
#define SERVE_OPENSSL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

/* "what: the first queued OpenSSL error" into err; the queue is emptied. */
void tls_error(char *err, size_t cap, const char *what);
/* Adds the bytes of the file at path to md (what a context trusts, bound into session keys);
 * false when it cannot be read. */
bool tls_digest_file(EVP_MD_CTX *md, const char *path);

#endif

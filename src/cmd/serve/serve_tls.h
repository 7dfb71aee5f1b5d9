/* The TLS side of `tlsresume serve`: one SSL_CTX per certificate, chosen by SNI. */
#ifndef TLSR_SERVE_TLS_H
#define TLSR_SERVE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/ssl.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tlsresume.h>

#include "serve_config.h"

/* An OCSP response stapled to the handshakes that present cert (serve_ocsp.c). */
struct staple {
    X509 *cert;
    unsigned char *der;
    size_t len;
    time_t next_update_s; /* not stapled after this (0: no nextUpdate) */
};

struct tls_set {
    SSL_CTX *ctx[CLI_LIST_MAX]; /* ctx[0] is the default; every one is attached */
    size_t n;
    struct staple staples[CLI_LIST_MAX];
    size_t n_staples;
    unsigned char alpn[CLI_STR]; /* wire format */
    size_t alpn_len;
    struct tlsr_fleet_cache *fleet;    /* a worker's fleet cache, or NULL */
    tlsr_fleet_resume_fn fleet_resume; /* resumes a handshake paused for the fleet cache */
};

/*
 * Builds the contexts from cfg: certificates (or a self-signed one), versions, ciphers, groups,
 * ALPN, resumption through cache and ring (either may be NULL), and 0-RTT with early_register
 * as its strike register (NULL when early data is off). On error writes a message
 * naming the file or setting into err and returns false; *set is then empty.
 */
bool tls_set_build(const struct serve_config *cfg, struct tlsr_cache *cache,
                   struct tlsr_keyring *ring, struct tlsr_cache *early_register,
                   struct tls_set *set, char *err, size_t cap);
void tls_set_free(struct tls_set *set);

#endif

/* OCSP stapling for `tlsresume serve` (serve_ocsp.c): --ocsp files checked against the
 * certificates and stapled to full handshakes. */
#ifndef TLSR_SERVE_OCSP_H
#define TLSR_SERVE_OCSP_H

#include <stdbool.h>
#include <stddef.h>

#include "serve_tls.h"

/* Reads every --ocsp file of cfg, matches each to the certificate of set it covers and checks
 * it (good, current, signed by the issuer), and staples them; false with "ocsp: FILE: why" in
 * err. Call with every certificate of set loaded. */
bool ocsp_load(const struct serve_config *cfg, struct tls_set *set, char *err, size_t cap);
/* Frees the staples of set. */
void ocsp_free(struct tls_set *set);

#endif

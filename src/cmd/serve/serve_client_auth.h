/* Client certificates for `tlsresume serve` (serve_client_auth.c): asked for, verified, and
 * sessions bound to the trust that verified them. */
#ifndef TLSR_SERVE_CLIENT_AUTH_H
#define TLSR_SERVE_CLIENT_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "serve_config.h"

/* Whether cfg asks clients for certificates (client_verify optional or require). */
bool client_auth_is_on(const struct serve_config *cfg);
/* Sets ctx to ask for and verify client certificates as cfg says (nothing when off); false with
 * "option: what" in err. */
bool client_auth_configure(SSL_CTX *ctx, const struct serve_config *cfg, char *err, size_t cap);
/* The session ID context bound to cfg's client trust, over base (session_context's bytes; when
 * base_len is 0, ctx's certificates). False with err set. */
bool client_auth_sid_ctx(SSL_CTX *ctx, const struct serve_config *cfg, const uint8_t *base,
                         size_t base_len, uint8_t out[32], char *err, size_t cap);
/* The PROXY v2 TLVs of the client's identity (proxy-protocol.txt §2.2.5) into p (cap bytes):
 * PP2_TYPE_SSL with the client flags (a certificate on this connection, and in its session:
 * a resumed connection has only the latter), the verify result and the version, CN and cipher
 * subtypes (the CN as UTF-8, left out when it holds a NUL); then tlsresume's custom range: 0xE1
 * the certificate's SHA-256 (32 bytes), 0xE2 its subject (RFC 2253), 0xE3 its subjectAltName
 * (the extension's DER, GeneralNames), each left out rather than cut. At most about 1.4 KiB
 * (PROXY_HEADER_MAX). Returns the bytes written; 0 without a certificate or room. */
size_t client_auth_tlvs(SSL *ssl, uint8_t *p, size_t cap);
/* The client's certificate for the access log: "\"SUBJECT (RFC 2253)\" san=\"SAN\"
 * sha256=FIRST8BYTES verify=ok", or
 * "-" without one; a resumed connection shows the certificate its session was verified with. */
void client_auth_identity(SSL *ssl, char *out, size_t cap);

#endif

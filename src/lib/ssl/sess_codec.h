/*
 * The compact encoding of a server-side SSL_SESSION for the session cache (listed in
 * docs/DESIGN.md: the fuzz target of this parser includes it).
 */
#ifndef TLSR_SESS_CODEC_H
#define TLSR_SESS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/error.h>

/* Encodes sess into out (cap bytes) and sets *out_len. out then holds the master secret: the
 * caller wipes it. Errors: TLSR_E_TOOBIG, TLSR_E_CRYPTO, TLSR_E_INVALID. */
TLSR_MUST_CHECK tlsr_status tlsr__sess_encode(const SSL_SESSION *sess, uint8_t *out, size_t cap,
                                              size_t *out_len);

/*
 * Rebuilds a session from len bytes of an encoding, giving it the session ID and session ID
 * context it was stored under (both borrowed). On success *out is a new session the caller
 * owns. Errors: TLSR_E_FORMAT (truncated, tampered, foreign or trailing bytes; the message
 * says which).
 */
TLSR_MUST_CHECK tlsr_status tlsr__sess_decode(const uint8_t *in, size_t len, const uint8_t *id,
                                              size_t id_len, const uint8_t *ctx, size_t ctx_len,
                                              SSL_SESSION **out);

#endif

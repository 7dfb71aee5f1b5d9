/*
 * HKDF-SHA256 (RFC 5869), the one key derivation of the library: fleet keys, 48-byte key
 * files, GnuTLS ticket keys (listed in docs/DESIGN.md as a shared internal header).
 */
#ifndef TLSR_KDF_H
#define TLSR_KDF_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/error.h>

/* Derives out_len bytes from ikm with salt (may be NULL/0) and an info label. On failure the
 * output is wiped. Errors: TLSR_E_CRYPTO (the message names what: `what`). */
TLSR_MUST_CHECK tlsr_status tlsr__hkdf_sha256(const char *what, const uint8_t *ikm, size_t ikm_len,
                                              const uint8_t *salt, size_t salt_len,
                                              const char *info, uint8_t *out, size_t out_len);

#endif

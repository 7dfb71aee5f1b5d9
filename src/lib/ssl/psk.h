/* The pre_shared_key extension parser (listed in docs/DESIGN.md: its fuzz target includes it). */
#ifndef TLSR_PSK_H
#define TLSR_PSK_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/error.h>

/*
 * Parses the body of a ClientHello pre_shared_key extension (RFC 8446 §4.2.11) and points
 * *id at the first identity (borrowed from ext). Checks the whole structure: identities and
 * binders lists, each entry within bounds, nothing left over.
 * Errors: TLSR_E_FORMAT.
 */
TLSR_MUST_CHECK tlsr_status tlsr__psk_first_identity(const uint8_t *ext, size_t len,
                                                     const uint8_t **id, size_t *id_len);
/* The same, pointing *binder at the first binder (32 to 255 bytes; borrowed from ext). */
TLSR_MUST_CHECK tlsr_status tlsr__psk_first_binder(const uint8_t *ext, size_t len,
                                                   const uint8_t **binder, size_t *binder_len);

/* Whether a supported_versions extension body (client side) lists TLS 1.3. */
int tlsr__versions_has_tls13(const uint8_t *ext, size_t len);

#endif

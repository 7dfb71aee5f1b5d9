/* The server_name extension parser (listed in docs/DESIGN.md: its fuzz target includes it). */
#ifndef TLSR_SNI_H
#define TLSR_SNI_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/ssl.h>

/* Parses the body of a server_name extension; see tlsr_ssl_client_hello_servername. */
TLSR_MUST_CHECK tlsr_status tlsr__sni_parse(const uint8_t *ext, size_t len,
                                            char out[TLSR_SNI_MAX + 1]);

#endif

/* Private to the client module, and its fuzz target (listed in docs/DESIGN.md). */
#ifndef TLSR_CLIENT_INT_H
#define TLSR_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/client.h>

#define CLIENT_HOST_MAX 255

struct client_entry {
    char host[CLIENT_HOST_MAX + 1];
    uint16_t port;
    char sni[CLIENT_HOST_MAX + 1]; /* "" for none */
    uint64_t expires_s;
    SSL_SESSION *sess; /* owned */
};

struct client_file {
    struct client_entry *e; /* TLSR_CLIENT_MAX_ENTRIES */
    size_t n;
};

/* Parses a whole file (len bytes) into f, which must be empty; `name` is used in messages.
 * On error f holds nothing. */
TLSR_MUST_CHECK tlsr_status tlsr__client_parse(const uint8_t *data, size_t len, const char *name,
                                               struct client_file *f);
void tlsr__client_file_clear(struct client_file *f);

#endif

/* `tlsresume check --early-data`: 0-RTT acceptance and a replay probe. */
#ifndef TLSR_CHECK_EARLY_H
#define TLSR_CHECK_EARLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "check_probe.h"

#define EARLY_MAX_TARGETS 8
#define EARLY_REPLAYS_PER_TARGET 3

struct early_report {
    bool is_tested;
    bool is_offered;  /* the server's ticket allows early data */
    bool is_accepted; /* our early data was accepted */
    unsigned long max_early_data;
    unsigned replays;          /* the recorded first flight, sent again */
    unsigned replays_accepted; /* accepted again: a security failure */
    unsigned replays_refused;
    unsigned replays_unknown; /* no answer to compare (connection refused, closed) */
    /* Whether the replay probe ran: "ran", "not_offered" (the tickets allow no early data),
     * "refused" (the original's early data was refused, so there is nothing to replay: a
     * server refuses 0-RTT for a while after it starts, or while its register cannot answer),
     * or "failed" (no TLS 1.3 session, or the attempt broke). */
    const char *probe;
    char error[256];
};

/*
 * Resumes a TLS 1.3 session of t with early data (an HTTP HEAD request), records the first
 * flight byte for byte, and sends it again EARLY_REPLAYS_PER_TARGET times to t and to each of
 * the n others. A replay counts as accepted when the server's EncryptedExtensions record has the
 * length it had when the original's early data was accepted (the early_data extension makes it
 * 4 bytes longer); the replayer cannot decrypt it, but the length is visible.
 */
void check_early(SSL_CTX *ctx13, const struct probe_target *t, const struct probe_target *others,
                 size_t n, struct early_report *out);

/*
 * The length of the first application_data record (the encrypted EncryptedExtensions) in the
 * bytes a TLS 1.3 server sent, or -1 when they do not hold one (yet). A parser of bytes from the
 * network (see fuzz/fuzz_server_flight.c).
 */
long early_first_app_record(const uint8_t *data, size_t len);

#endif

/*
 * TLS record framing of what a server sends, for `check --early-data` (a parser of bytes from
 * the network: fuzz/fuzz_server_flight.c).
 *
 * A record is type (1 byte), legacy version (2), length (2, at most 2^14 + 256 for TLS 1.3
 * ciphertext, RFC 8446 §5.2), then that many bytes. Only complete records are considered.
 */
#include "check_early.h"

#define MAX_RECORD (16384 + 256)
#define TYPE_APPLICATION_DATA 23

long early_first_app_record(const uint8_t *data, size_t len)
{
    size_t at = 0;
    while (len - at >= 5) {
        uint8_t type = data[at];
        size_t body = ((size_t)data[at + 3] << 8) | data[at + 4];
        if (type < 20 || type > 24 || body > MAX_RECORD) {
            return -1; /* not TLS */
        }
        if (type == TYPE_APPLICATION_DATA) {
            return (long)body;
        }
        if (body > len - at - 5) {
            return -1; /* incomplete: wait for more */
        }
        at += 5 + body;
    }
    return -1;
}

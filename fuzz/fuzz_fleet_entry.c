/* Fuzz target: sealed session entries read from Redis (src/lib/fleet/entry.c, secret.c).
 * The first byte picks the mode: 0 opens the rest as a Redis value (it must never open, as
 * nobody can forge the tag, and never crash); otherwise the rest is sealed as a session
 * encoding and must open to the same bytes, and fail to open under any other AAD. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/fleet/fleet_int.h"

static const char key_file[] = "tlsresume-fleet-key 1\n"
                               "INyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\n";

static struct tlsr_fleet_secret *secret(void)
{
    static struct tlsr_fleet_secret *s;
    if (s == NULL && tlsr_fleet_secret_parse("fuzz", (const uint8_t *)key_file,
                                             sizeof(key_file) - 1, &s) != TLSR_OK) {
        abort();
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    struct tlsr_fleet_secret *s = secret();
    const uint8_t id[32] = {1};
    const uint8_t ctx[32] = {2};
    uint8_t aad[128];
    size_t aad_len = tlsr__fleet_entry_aad(ctx, sizeof(ctx), id, sizeof(id), 0, aad, sizeof(aad));
    uint8_t out[ENTRY_MAX_VALUE];
    size_t out_len = 0;
    uint64_t expires = 0;
    if (data[0] == 0) {
        if (tlsr__fleet_entry_open(s, aad, aad_len, data + 1, size - 1, 0, out, sizeof(out),
                                   &out_len, &expires) == TLSR_OK) {
            abort(); /* a forged entry opened */
        }
        return 0;
    }
    uint8_t blob[ENTRY_MAX_VALUE + 64];
    size_t blob_len = 0;
    if (tlsr__fleet_entry_seal(s, aad, aad_len, 100, data + 1, size - 1, blob, sizeof(blob),
                               &blob_len) != TLSR_OK) {
        if (size - 1 <= ENTRY_MAX_VALUE) {
            abort(); /* anything that fits must seal */
        }
        return 0;
    }
    tlsr_status rc = tlsr__fleet_entry_open(s, aad, aad_len, blob, blob_len, 99, out, sizeof(out),
                                            &out_len, &expires);
    if (size == 1) {
        if (rc == TLSR_OK) {
            abort(); /* an empty session is refused */
        }
        return 0;
    }
    if (rc != TLSR_OK || out_len != size - 1 || memcmp(out, data + 1, out_len) != 0 ||
        expires != 100) {
        abort();
    }
    aad[aad_len - 1] ^= data[0];
    if (tlsr__fleet_entry_open(s, aad, aad_len, blob, blob_len, 99, out, sizeof(out), &out_len,
                               &expires) == TLSR_OK) {
        abort(); /* opened under another session ID */
    }
    return 0;
}

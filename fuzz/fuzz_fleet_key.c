/* Fuzz target: the fleet key file parser (src/lib/fleet/secret.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <tlsresume/fleet.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlsr_fleet_secret *s = NULL;
    tlsr_status rc = tlsr_fleet_secret_parse("fuzz", data, size, &s);
    if ((rc == TLSR_OK) != (s != NULL)) {
        abort();
    }
    /* A valid file is the magic line and one line of base64: 67 bytes, 66 without the last
     * newline, up to 69 with CRLF line ends. */
    if (rc == TLSR_OK && (size < 66 || size > 69)) {
        abort();
    }
    tlsr_fleet_secret_free(s);
    return 0;
}

/* Fuzz target: the TLS record framing `check --early-data` reads from a server
 * (src/cmd/check/check_records.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/cmd/check/check_early.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long n = early_first_app_record(data, size);
    /* A length found is a record length: at most 2^14 + 256. */
    if (n < -1 || n > 16384 + 256) {
        abort();
    }
    return 0;
}

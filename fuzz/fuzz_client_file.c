/* Fuzz target: the client session file parser (src/lib/client). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/lib/client/client_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct client_entry entries[TLSR_CLIENT_MAX_ENTRIES];
    struct client_file f = {entries, 0};
    if (tlsr__client_parse(data, size, "fuzz", &f) == TLSR_OK) {
        tlsr__client_file_clear(&f);
    }
    return 0;
}

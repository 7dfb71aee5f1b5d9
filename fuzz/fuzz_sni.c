/* Fuzz target: the server_name extension parser (src/lib/ssl/sni.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/lib/ssl/sni.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[TLSR_SNI_MAX + 1];
    if (tlsr__sni_parse(data, size, out) == TLSR_OK) {
        size_t n = strlen(out);
        /* A parsed name is 1 to 255 lower-case host-name bytes. */
        if (n == 0 || n > TLSR_SNI_MAX) {
            abort();
        }
        for (size_t i = 0; i < n; i++) {
            if (out[i] >= 'A' && out[i] <= 'Z') {
                abort();
            }
        }
    }
    return 0;
}

/* Fuzz target: the ClientHello pre_shared_key and supported_versions parsers
 * (src/lib/ssl/psk.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../src/lib/ssl/psk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *id = NULL;
    size_t id_len = 0;
    if (tlsr__psk_first_identity(data, size, &id, &id_len) == TLSR_OK) {
        /* The identity lies inside the input and is not empty. */
        if (id == NULL || id_len == 0 || id < data || id_len > size ||
            (size_t)(id - data) > size - id_len) {
            abort();
        }
    }
    (void)tlsr__versions_has_tls13(data, size);
    return 0;
}

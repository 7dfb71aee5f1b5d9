/* Fuzz target: the session codec's decoder, which reads cache entries (src/lib/ssl). */
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "../src/lib/ssl/sess_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t id[32] = {1};
    static const uint8_t ctx[32] = {2};
    SSL_SESSION *s = NULL;
    if (tlsr__sess_decode(data, size, id, sizeof(id), ctx, sizeof(ctx), &s) == TLSR_OK) {
        /* Whatever decodes must be usable: encode it again. */
        uint8_t out[16384];
        size_t len = 0;
        tlsr_status rc = tlsr__sess_encode(s, out, sizeof(out), &len);
        (void)rc;
        SSL_SESSION_free(s);
    }
    return 0;
}

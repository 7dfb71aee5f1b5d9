/* Fuzz target: the PROXY protocol header parser (src/lib/proxy/proxy.c). Any bytes: a whole
 * header within the input, a request for more that never asks past what a header can be, or a
 * refusal; and every prefix of a whole header asks for more, never claims a header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tlsresume/proxy.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tlsr_proxy_addr a;
    size_t used = 0;
    size_t want = 0;
    tlsr_status rc = tlsr_proxy_parse(data, size, &a, &used, &want);
    if (rc != TLSR_OK) {
        return 0;
    }
    if (used > size || used > TLSR_PROXY_MAX ||
        (used == 0 && (want <= size || want > TLSR_PROXY_MAX))) {
        abort();
    }
    if (used > 0 && !a.is_local && a.src.ss_family != a.dst.ss_family) {
        abort();
    }
    for (size_t n = 0; used > 0 && n < used; n++) {
        size_t u = 0;
        size_t w = 0;
        if (tlsr_proxy_parse(data, n, &a, &u, &w) == TLSR_OK && (u != 0 || w > used)) {
            abort();
        }
    }
    return 0;
}

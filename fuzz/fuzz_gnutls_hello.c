/* Fuzz target: the ClientHello reader of the GnuTLS adapter (src/lib/gnutls/gnutls.c), which
 * finds the ticket a ClientHello offers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <tlsresume/gnutls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *ticket = NULL;
    size_t len = 0;
    tlsr_status rc = tlsr_gnutls_hello_ticket(data, size, &ticket, &len);
    if (rc == TLSR_OK && (ticket < data || len > size || ticket + len > data + size)) {
        abort();
    }
    if (rc != TLSR_OK && rc != TLSR_E_NOTFOUND && rc != TLSR_E_FORMAT) {
        abort();
    }
    return 0;
}

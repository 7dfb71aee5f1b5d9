/* Fuzz target: the ticket-key file readers (src/lib/tickets/keyfile.c). The first byte picks
 * the format (the text formats, written only, must refuse); whatever reads back is written
 * again in that format and must read the same, and is written in every text format
 * (keyfile_text.c), which must succeed whenever the encrypting key is an 80-byte one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tlsresume/tickets.h>

#define MAX_KEYS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    enum tlsr_key_format fmt = (enum tlsr_key_format)(data[0] % (TLSR_KEYFMT_K8S_SECRET + 1));
    struct tlsr_key_material keys[MAX_KEYS];
    size_t n = 0;
    tlsr_status rc = tlsr_keyfile_read(fmt, "fuzz", data + 1, size - 1, keys, MAX_KEYS, &n);
    if (rc != TLSR_OK) {
        return 0;
    }
    if (n == 0 || n > MAX_KEYS) {
        abort();
    }
    for (size_t i = 0; i < n; i++) {
        if (keys[i].len != 48 && keys[i].len != 80) {
            abort();
        }
        /* One key in the format's layout reads back as the same key (48-byte formats hold
         * 48-byte keys as they are). */
        uint8_t one[80];
        size_t len = 0;
        if (fmt == TLSR_KEYFMT_HAPROXY || (tlsr_key_format_is_48(fmt) && keys[i].len != 48)) {
            continue;
        }
        struct tlsr_key_material back[1];
        size_t m = 0;
        if (tlsr_keyfile_key_bytes(fmt, &keys[i], one, &len) != TLSR_OK ||
            tlsr_keyfile_read(fmt, "again", one, len, back, 1, &m) != TLSR_OK || m != 1 ||
            back[0].len != keys[i].len || memcmp(back[0].bytes, keys[i].bytes, keys[i].len) != 0) {
            abort();
        }
    }
    if (tlsr_key_format_is_text(fmt)) {
        abort(); /* a text format read something */
    }
    static uint8_t out[8192];
    size_t out_len = 0;
    if (tlsr_keyfile_write(fmt, keys, n, n > 1, out, sizeof(out), &out_len) != TLSR_OK &&
        fmt != TLSR_KEYFMT_RAW) {
        abort();
    }
    static const enum tlsr_key_format text[] = {TLSR_KEYFMT_H2O, TLSR_KEYFMT_GO, TLSR_KEYFMT_ENVOY,
                                                TLSR_KEYFMT_K8S_SECRET};
    for (size_t t = 0; t < sizeof(text) / sizeof(text[0]); t++) {
        rc = tlsr_keyfile_write_named(text[t], NULL, keys, n, n > 1, out, sizeof(out), &out_len);
        if ((rc == TLSR_OK) != (keys[0].len == 80)) {
            abort();
        }
    }
    return 0;
}

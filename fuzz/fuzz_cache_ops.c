/*
 * Fuzz target: sequences of cache operations read from the input, with the full consistency
 * check after each sequence. Each 4-byte record is: op, key, value length / 4, clock step.
 * Aborts when an invariant breaks or a value comes back different from what was stored.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <tlsresume/cache.h>

#include "../src/lib/cache/cache_test.h"

static uint64_t now_s = 1000000;

static uint64_t fuzz_clock(void *arg)
{
    (void)arg;
    return now_s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct tlsr_cache *cache;
    if (cache == NULL) {
        if (tlsr_cache_new(TLSR_CACHE_MIN_BYTES, &cache) != TLSR_OK) {
            abort();
        }
        tlsr_cache_set_clock(cache, fuzz_clock, NULL);
    }
    for (size_t i = 0; i + 4 <= size; i += 4) {
        uint8_t op = data[i];
        uint8_t id[8] = {data[i + 1], 0x5a};
        uint8_t ctx[1] = {(uint8_t)(op >> 4)};
        struct tlsr_cache_key key = {ctx, 1, id, sizeof(id)};
        size_t len = (size_t)data[i + 2] * 4u + 1u;
        uint8_t value[1100];
        memset(value, data[i + 1], len);
        uint8_t out[1100];
        size_t out_len = 0;
        now_s += data[i + 3] % 8;
        switch (op & 3u) {
        case 0:
        case 1: {
            unsigned flags = (op & 4u) ? TLSR_CACHE_SINGLE_USE : 0;
            tlsr_status rc = tlsr_cache_insert(cache, &key, value, len, 1 + (op >> 3), flags);
            (void)rc;
            break;
        }
        case 2:
            if (tlsr_cache_lookup(cache, &key, out, sizeof(out), &out_len) == TLSR_OK &&
                (out_len == 0 || out[0] != data[i + 1] || out[out_len - 1] != data[i + 1])) {
                abort();
            }
            break;
        default: {
            tlsr_status rc = tlsr_cache_remove(cache, &key);
            (void)rc;
        }
        }
    }
    if (tlsr__cache_check(cache) != TLSR_OK) {
        abort();
    }
    return 0;
}

/*
 * Session size and cache density: what one server-side session costs.
 *
 * Makes real TLS 1.2 and TLS 1.3 handshakes in memory, prints the size of OpenSSL's own
 * serialization (i2d_SSL_SESSION) and of the cache's encoding, then fills caches of 1 MiB and
 * 64 MiB with real encoded sessions (distinct IDs) until the first eviction and reports the
 * sessions held per MiB. Output is a Markdown table for docs/BENCHMARKS.md.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

#include "../src/lib/ssl/sess_codec.h"
#include "../tests/lib/helpers.h"

struct sizes {
    int der;
    size_t encoded;
    uint8_t buf[1024];
};

static int measure(int version, const char *sni, struct sizes *out)
{
    SSL_CTX *s = th_server_ctx(version, version, "localhost");
    SSL_CTX *c = th_client_ctx(version, version);
    static const uint8_t sid_ctx[32] = {7};
    SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx));
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
    (void)sni;
    struct th_result r = th_handshake(s, c, NULL);
    int rc = -1;
    if (r.is_ok) {
        out->der = i2d_SSL_SESSION(r.server_session, NULL);
        if (tlsr__sess_encode(r.server_session, out->buf, sizeof(out->buf), &out->encoded) ==
            TLSR_OK) {
            rc = 0;
        }
    }
    th_result_free(&r);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return rc;
}

/* Inserts copies of value under fresh IDs until the cache first evicts; returns how many fit. */
static unsigned long fill(size_t cache_bytes, const uint8_t *value, size_t len)
{
    struct tlsr_cache *cache = NULL;
    if (tlsr_cache_new(cache_bytes, &cache) != TLSR_OK) {
        fprintf(stderr, "session_size: %s\n", tlsr_last_error());
        return 0;
    }
    static const uint8_t ctx[32] = {7};
    uint8_t id[32] = {0};
    unsigned long n = 0;
    for (;; n++) {
        memcpy(id, &n, sizeof(n));
        struct tlsr_cache_key key = {ctx, sizeof(ctx), id, sizeof(id)};
        if (tlsr_cache_insert(cache, &key, value, len, 3600, 0) != TLSR_OK) {
            break;
        }
        struct tlsr_cache_stats st;
        if (tlsr_cache_get_stats(cache, &st) != TLSR_OK || st.evictions > 0) {
            break;
        }
    }
    tlsr_cache_free(cache);
    return n;
}

int main(void)
{
    const struct {
        const char *name;
        int version;
    } rows[] = {{"TLS 1.2", TLS1_2_VERSION}, {"TLS 1.3 (stateful ticket)", TLS1_3_VERSION}};
    printf("| session | i2d_SSL_SESSION bytes | cache encoding bytes | 1 MiB cache holds | "
           "64 MiB cache holds | sessions per MiB |\n");
    printf("|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct sizes sz;
        if (measure(rows[i].version, NULL, &sz) != 0) {
            fprintf(stderr, "session_size: handshake failed\n");
            return 1;
        }
        unsigned long small = fill((size_t)1 << 20, sz.buf, sz.encoded);
        unsigned long large = fill((size_t)64 << 20, sz.buf, sz.encoded);
        printf("| %s | %d | %zu | %lu | %lu | %lu |\n", rows[i].name, sz.der, sz.encoded, small,
               large, large / 64);
    }
    return 0;
}

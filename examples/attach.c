/*
 * The smallest complete use of libtlsresume: an OpenSSL server context that resumes sessions
 * across forked workers. docs/API.md walks through it; the build compiles it so it stays true.
 *
 *     cc attach.c $(pkg-config --cflags --libs tlsresume) -o attach
 *     ./attach cert.pem key.pem
 */
#include <stdio.h>

#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: attach CERT KEY\n");
        return 2;
    }
    /* 1. Before fork(): one cache and one key ring for every worker. */
    struct tlsr_cache *cache = NULL;
    struct tlsr_keyring *ring = NULL;
    if (tlsr_cache_new((size_t)64 << 20, &cache) != TLSR_OK ||
        tlsr_keyring_new(3600, 12 * 3600, &ring) != TLSR_OK) {
        fprintf(stderr, "tlsresume: %s\n", tlsr_last_error());
        return 1;
    }
    /* 2. Your SSL_CTX as usual; load the certificate before attaching. */
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, argv[1]) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1) {
        fprintf(stderr, "cannot load %s / %s\n", argv[1], argv[2]);
        return 1;
    }
    /* 3. Attach. */
    struct tlsr_ssl_opts opts;
    tlsr_ssl_opts_init(&opts);
    opts.cache = cache;
    opts.keyring = ring;
    if (tlsr_ssl_attach(ctx, &opts) != TLSR_OK) {
        fprintf(stderr, "tlsresume: %s\n", tlsr_last_error());
        return 1;
    }
    /* 4. fork() your workers and serve; after each handshake, tlsr_ssl_resumption(ssl) says
     * how it resumed. Counters come from tlsr_cache_get_stats / tlsr_keyring_get_stats. */
    struct tlsr_cache_stats st;
    if (tlsr_cache_get_stats(cache, &st) == TLSR_OK) {
        printf("cache ready: %llu slots of 128 bytes\n", (unsigned long long)st.slots_total);
    }
    SSL_CTX_free(ctx);
    tlsr_keyring_free(ring);
    tlsr_cache_free(cache);
    return 0;
}

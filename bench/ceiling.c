/*
 * The ceiling: what a handshake costs the server inside OpenSSL with libtlsresume attached,
 * with no sockets, no event loop and no proxying. Client and server talk over memory BIOs in
 * one thread; only the server's SSL_do_handshake calls are timed, in thread CPU time. Every
 * terminator in the suite is reported as a percentage of this.
 *
 * usage: ceiling [--count N] [--rsa]      prints a Markdown table (and --json for the suite)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

#include "../tests/lib/helpers.h"

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static SSL_CTX *server_ctx(int version, bool is_rsa, struct tlsr_cache *cache,
                           struct tlsr_keyring *ring)
{
    SSL_CTX *ctx = th_server_ctx_key(version, version, "localhost", is_rsa);
    if (ctx == NULL) {
        fprintf(stderr, "ceiling: cannot make a server context\n");
        exit(1);
    }
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = cache;
    o.keyring = ring;
    if (tlsr_ssl_attach(ctx, &o) != TLSR_OK) {
        fprintf(stderr, "ceiling: %s\n", tlsr_last_error());
        exit(1);
    }
    return ctx;
}

/* One handshake; returns the server's CPU time in microseconds, or -1. */
static double handshake(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION **sess, bool *is_reused)
{
    SSL *s = NULL;
    SSL *c = NULL;
    BIO *bs = NULL;
    BIO *bc = NULL;
    th_pair(sctx, cctx, *sess, &s, &c, &bs, &bc);
    double server_us = 0;
    int rs = 0;
    int rc = 0;
    for (int i = 0; i < 20 && (rs != 1 || rc != 1); i++) {
        rc = SSL_do_handshake(c);
        double t0 = cpu_us();
        rs = SSL_do_handshake(s);
        server_us += cpu_us() - t0;
    }
    double out = -1;
    if (rs == 1 && rc == 1) {
        unsigned char b = 0;
        double t0 = cpu_us();
        SSL_write(s, &b, 1); /* TLS 1.3 tickets go out here */
        server_us += cpu_us() - t0;
        SSL_read(c, &b, 1);
        *is_reused = SSL_session_reused(c) == 1;
        if (*sess == NULL) {
            *sess = SSL_get1_session(c);
        }
        SSL_shutdown(s);
        SSL_shutdown(c); /* a client freed before shutdown marks its session not resumable */
        out = server_us;
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    return out;
}

int main(int argc, char **argv)
{
    int count = 2000;
    bool is_rsa = false;
    bool is_json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            count = (int)strtol(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rsa") == 0) {
            is_rsa = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            is_json = true;
        }
    }
    if (count < 1 || count > 1000000) {
        fprintf(stderr, "ceiling: --count 1 to 1000000\n");
        return 2;
    }
    struct tlsr_cache *cache = NULL;
    struct tlsr_keyring *ring = NULL;
    if (tlsr_cache_new((size_t)16 << 20, &cache) != TLSR_OK ||
        tlsr_keyring_new(3600, 43200, &ring) != TLSR_OK) {
        fprintf(stderr, "ceiling: %s\n", tlsr_last_error());
        return 1;
    }
    const int versions[2] = {TLS1_2_VERSION, TLS1_3_VERSION};
    if (!is_json) {
        printf("| %s | full: server CPU per handshake | resumed: server CPU per handshake |\n",
               is_rsa ? "RSA-2048" : "ECDSA P-256");
        printf("|---|---|---|\n");
    }
    for (int v = 0; v < 2; v++) {
        SSL_CTX *sctx = server_ctx(versions[v], is_rsa, cache, ring);
        SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(cctx, versions[v]);
        SSL_CTX_set_max_proto_version(cctx, versions[v]);
        double full = 0;
        double resumed = 0;
        int n_full = 0;
        int n_resumed = 0;
        SSL_SESSION *keep = NULL;
        for (int i = 0; i < count; i++) {
            SSL_SESSION *none = NULL;
            bool is_reused = false;
            double us = handshake(sctx, cctx, &none, &is_reused);
            SSL_SESSION_free(none);
            if (us >= 0 && !is_reused) {
                full += us;
                n_full++;
            }
            if (keep == NULL) {
                handshake(sctx, cctx, &keep, &is_reused);
            }
            us = handshake(sctx, cctx, &keep, &is_reused);
            if (us >= 0 && is_reused) {
                resumed += us;
                n_resumed++;
            }
        }
        const char *name = versions[v] == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
        if (is_json) {
            printf("{\"cert\":\"%s\",\"version\":\"%s\",\"full_us\":%.1f,\"resumed_us\":%.1f}\n",
                   is_rsa ? "rsa2048" : "p256", name, full / n_full, resumed / n_resumed);
        } else {
            printf("| %s | %.0f us (%.0f/s per core) | %.0f us (%.0f/s per core) |\n", name,
                   full / n_full, 1e6 / (full / n_full), resumed / n_resumed,
                   1e6 / (resumed / n_resumed));
        }
        SSL_SESSION_free(keep);
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    tlsr_keyring_free(ring);
    tlsr_cache_free(cache);
    return 0;
}

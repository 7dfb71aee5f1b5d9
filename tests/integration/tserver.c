/*
 * The integration test server: a small TLS server built on the public API of libtlsresume the
 * way a C developer would use it. The parent creates the shared cache and key ring, then forks
 * two workers, each listening on its own loopback port, so a test can make a full handshake
 * on one worker and resume on the other. Each connection gets one line back:
 *
 *     worker=<0|1> resumed=<full|id|ticket|psk> version=<TLSv1.2|TLSv1.3>
 *
 * Signals to the parent: SIGUSR1 rotates the ticket keys now; SIGTERM stops the workers,
 * prints the counters as key=value lines on stdout, and exits.
 *
 * usage: tserver --cert C --key K --port-a P --port-b P
 *                [--tls 1.2|1.3|any] [--mode ids|tickets|stateful] [--rotate S] [--lifetime S]
 *                [--cache-kib N]
 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

struct config {
    const char *cert;
    const char *key;
    unsigned long port[2];
    int min_version;
    int max_version;
    const char *mode;
    unsigned long rotate_s;
    unsigned long lifetime_s;
    unsigned long cache_kib;
};

static volatile sig_atomic_t want_rotate;
static volatile sig_atomic_t want_stop;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        want_rotate = 1;
    } else {
        want_stop = 1;
    }
}

static unsigned long number(const char *flag, const char *text)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        fprintf(stderr, "tserver: %s: not a number: %s\n", flag, text);
        exit(2);
    }
    return v;
}

static void parse(int argc, char **argv, struct config *c)
{
    memset(c, 0, sizeof(*c));
    c->min_version = TLS1_2_VERSION;
    c->max_version = TLS1_3_VERSION;
    c->mode = "tickets";
    c->rotate_s = 3600;
    c->lifetime_s = 12 * 3600;
    c->cache_kib = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *f = argv[i];
        const char *v = argv[i + 1];
        if (strcmp(f, "--cert") == 0) {
            c->cert = v;
        } else if (strcmp(f, "--key") == 0) {
            c->key = v;
        } else if (strcmp(f, "--port-a") == 0) {
            c->port[0] = number(f, v);
        } else if (strcmp(f, "--port-b") == 0) {
            c->port[1] = number(f, v);
        } else if (strcmp(f, "--tls") == 0) {
            int ver = strcmp(v, "1.2") == 0 ? TLS1_2_VERSION
                                            : (strcmp(v, "1.3") == 0 ? TLS1_3_VERSION : 0);
            c->min_version = ver != 0 ? ver : TLS1_2_VERSION;
            c->max_version = ver != 0 ? ver : TLS1_3_VERSION;
        } else if (strcmp(f, "--mode") == 0) {
            c->mode = v;
        } else if (strcmp(f, "--rotate") == 0) {
            c->rotate_s = number(f, v);
        } else if (strcmp(f, "--lifetime") == 0) {
            c->lifetime_s = number(f, v);
        } else if (strcmp(f, "--cache-kib") == 0) {
            c->cache_kib = number(f, v);
        } else {
            fprintf(stderr, "tserver: unknown flag %s\n", f);
            exit(2);
        }
    }
    if (c->cert == NULL || c->key == NULL || c->port[0] == 0 || c->port[1] == 0) {
        fprintf(stderr, "usage: tserver --cert C --key K --port-a P --port-b P [...]\n");
        exit(2);
    }
}

static int listen_on(unsigned long port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0) {
        fprintf(stderr, "tserver: cannot listen on 127.0.0.1:%lu: %s\n", port, strerror(errno));
        exit(1);
    }
    return fd;
}

static void serve_one(SSL_CTX *ctx, int fd, int worker)
{
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        char line[128];
        int n = snprintf(line, sizeof(line), "worker=%d resumed=%s version=%s\n", worker,
                         tlsr_resumption_name(tlsr_ssl_resumption(ssl)), SSL_get_version(ssl));
        if (n > 0 && SSL_write(ssl, line, n) == n) {
            char buf[4096];
            while (SSL_read(ssl, buf, sizeof(buf)) > 0) {
            }
        }
        /* A clean close keeps the session resumable. */
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

static void worker_loop(SSL_CTX *ctx, int lfd, int worker)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_IGN);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            serve_one(ctx, fd, worker);
        }
    }
}

static SSL_CTX *make_ctx(const struct config *c, struct tlsr_cache *cache,
                         struct tlsr_keyring *ring)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate_chain_file(ctx, c->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, c->key, SSL_FILETYPE_PEM) != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    SSL_CTX_set_min_proto_version(ctx, c->min_version);
    SSL_CTX_set_max_proto_version(ctx, c->max_version);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = cache;
    o.keyring = strcmp(c->mode, "tickets") == 0 ? ring : NULL;
    o.tls13_tickets = strcmp(c->mode, "stateful") == 0 ? TLSR_TLS13_STATEFUL : TLSR_TLS13_STATELESS;
    if (tlsr_ssl_attach(ctx, &o) != TLSR_OK) {
        fprintf(stderr, "tserver: attach: %s\n", tlsr_last_error());
        exit(1);
    }
    return ctx;
}

static void print_stats(struct tlsr_cache *cache, struct tlsr_keyring *ring)
{
    struct tlsr_cache_stats cs;
    struct tlsr_keyring_stats ks;
    if (tlsr_cache_get_stats(cache, &cs) != TLSR_OK ||
        tlsr_keyring_get_stats(ring, &ks) != TLSR_OK) {
        fprintf(stderr, "tserver: stats: %s\n", tlsr_last_error());
        return;
    }
    printf("cache_entries=%llu\ncache_hits=%llu\ncache_misses=%llu\ncache_inserts=%llu\n"
           "cache_taken=%llu\n",
           (unsigned long long)cs.entries, (unsigned long long)cs.hits,
           (unsigned long long)cs.misses, (unsigned long long)cs.inserts,
           (unsigned long long)cs.taken);
    printf("tickets_issued=%llu\ntickets_decrypted=%llu\ntickets_renewed=%llu\n"
           "tickets_rotations=%llu\ntickets_unknown_key=%llu\n",
           (unsigned long long)ks.issued, (unsigned long long)ks.decrypted,
           (unsigned long long)ks.renewed, (unsigned long long)ks.rotations,
           (unsigned long long)ks.rejected_unknown_key);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    struct config c;
    parse(argc, argv, &c);
    struct tlsr_cache *cache = NULL;
    struct tlsr_keyring *ring = NULL;
    if (tlsr_cache_new((size_t)c.cache_kib * 1024, &cache) != TLSR_OK ||
        tlsr_keyring_new((uint32_t)c.rotate_s, (uint32_t)c.lifetime_s, &ring) != TLSR_OK) {
        fprintf(stderr, "tserver: %s\n", tlsr_last_error());
        return 1;
    }
    SSL_CTX *ctx = make_ctx(&c, cache, ring);
    signal(SIGPIPE, SIG_IGN);
    pid_t pids[2];
    for (int w = 0; w < 2; w++) {
        int lfd = listen_on(c.port[w]);
        pids[w] = fork();
        if (pids[w] == 0) {
            worker_loop(ctx, lfd, w);
        }
        close(lfd);
    }
    sigset_t block;
    sigset_t orig;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready ports=%lu,%lu\n", c.port[0], c.port[1]);
    fflush(stdout);
    while (!want_stop) {
        sigsuspend(&orig);
        if (want_rotate) {
            want_rotate = 0;
            if (tlsr_keyring_rotate(ring) != TLSR_OK) {
                fprintf(stderr, "tserver: rotate: %s\n", tlsr_last_error());
            } else {
                fprintf(stderr, "tserver: rotated ticket keys\n");
            }
        }
    }
    for (int w = 0; w < 2; w++) {
        kill(pids[w], SIGTERM);
        waitpid(pids[w], NULL, 0);
    }
    print_stats(cache, ring);
    SSL_CTX_free(ctx);
    tlsr_cache_free(cache);
    tlsr_keyring_free(ring);
    return 0;
}

/*
 * A GnuTLS echo server with libtlsresume-gnutls: forked workers share one session cache and
 * one ticket key ring; with --redis and --fleet-key the ring follows the fleet's (the same
 * keys as every `tlsresume serve` and `keys sync` of the fleet), so its tickets resume on any
 * server of the fleet that runs this adapter. 0-RTT is accepted once (a strike register).
 *
 *     gnutls_server --port 8444 --cert cert.pem --key key.pem [--workers 2]
 *         [--redis redis://127.0.0.1:6379 --fleet-key fleet.key] [--ticket-rotate 3600]
 *         [--ticket-lifetime 43200] [--early-data [--no-anti-replay]] [--plain]
 *         [--redis-tls-ca F] [--redis-tls-cert F] [--redis-tls-key F] [--redis-tls-name N]
 *         [--redis-timeout-ms 5]
 *
 * --redis takes every endpoint kind serve takes: redis://, rediss:// (TLS, verified against
 * --redis-tls-ca, with a client certificate if given), sentinel://, redis-cluster:// and
 * rediss-cluster://.
 *
 * --plain runs GnuTLS without the adapter: no shared cache, no tickets (the tests' control).
 * --no-anti-replay takes every 0-RTT ClientHello as new (the replay tests' control: never in
 * production).
 *
 * Each worker serves one connection at a time (an example, not a proxy): it echoes what it
 * reads and logs one line per handshake: `handshake version=... resumed=yes|no early=yes|no`,
 * or `handshake_failed early=yes|no error=...` (early: 0-RTT data was accepted, which a
 * replayed first flight shows although its handshake never finishes).
 */
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include <tlsresume/fleet.h>
#include <tlsresume/gnutls.h>

#define MAX_WORKERS 16

struct options {
    int port;
    const char *cert;
    const char *key;
    int workers;
    const char *redis;
    const char *fleet_key;
    struct tlsr_fleet_tls redis_tls;
    unsigned redis_timeout_ms;
    unsigned rotate_s;
    unsigned lifetime_s;
    int early_data;
    int is_replay_allowed; /* --no-anti-replay (a control) */
    int is_plain;          /* --plain: GnuTLS alone, no adapter (a control) */
};

static volatile sig_atomic_t stopping;

/* --no-anti-replay: the register says every ClientHello is new. */
static int every_hello_is_new(void *db, time_t exp_time, const gnutls_datum_t *key,
                              const gnutls_datum_t *data)
{
    (void)db;
    (void)exp_time;
    (void)key;
    (void)data;
    return 0;
}

static void on_term(int sig)
{
    (void)sig;
    stopping = 1;
}

/* A whole decimal number in [min, max], or -1. */
static long number(const char *v, long min, long max)
{
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    return errno == 0 && end != v && *end == '\0' && n >= min && n <= max ? n : -1;
}

static int parse(int argc, char **argv, struct options *o)
{
    *o = (struct options){.port = 8444, .workers = 2, .rotate_s = 3600, .lifetime_s = 43200};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--early-data") == 0) {
            o->early_data = 1;
            continue;
        }
        if (strcmp(a, "--plain") == 0) {
            o->is_plain = 1;
            continue;
        }
        if (strcmp(a, "--no-anti-replay") == 0) {
            o->is_replay_allowed = 1;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "error gnutls_server: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (strcmp(a, "--port") == 0) {
            o->port = (int)number(v, 1, 65535);
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--workers") == 0) {
            o->workers = (int)number(v, 1, MAX_WORKERS);
        } else if (strcmp(a, "--redis") == 0) {
            o->redis = v;
        } else if (strcmp(a, "--fleet-key") == 0) {
            o->fleet_key = v;
        } else if (strcmp(a, "--redis-tls-ca") == 0) {
            o->redis_tls.ca_file = v;
        } else if (strcmp(a, "--redis-tls-cert") == 0) {
            o->redis_tls.cert_file = v;
        } else if (strcmp(a, "--redis-tls-key") == 0) {
            o->redis_tls.key_file = v;
        } else if (strcmp(a, "--redis-tls-name") == 0) {
            o->redis_tls.server_name = v;
        } else if (strcmp(a, "--redis-timeout-ms") == 0) {
            o->redis_timeout_ms = (unsigned)number(v, 1, 1000);
        } else if (strcmp(a, "--ticket-rotate") == 0) {
            o->rotate_s = (unsigned)number(v, 10, 7 * 86400);
        } else if (strcmp(a, "--ticket-lifetime") == 0) {
            o->lifetime_s = (unsigned)number(v, 1, 7 * 86400);
        } else {
            fprintf(stderr, "error gnutls_server: unknown option %s\n", a);
            return -1;
        }
    }
    if (o->cert == NULL || o->key == NULL || o->port <= 0 || o->port > 65535 || o->workers < 1 ||
        o->workers > MAX_WORKERS || (o->redis == NULL) != (o->fleet_key == NULL) ||
        o->redis_timeout_ms > 1000) {
        fprintf(stderr, "usage: gnutls_server --port N --cert F --key F [--workers 1..16] "
                        "[--redis URL --fleet-key F] [--ticket-rotate S] [--ticket-lifetime S] "
                        "[--early-data [--no-anti-replay]] [--plain] [--redis-tls-ca F] "
                        "[--redis-tls-cert F] [--redis-tls-key F] [--redis-tls-name N] "
                        "[--redis-timeout-ms 1..1000]\n");
        return -1;
    }
    return 0;
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
        fprintf(stderr, "error gnutls_server: port %d: %s\n", port, strerror(errno));
        return -1;
    }
    return fd;
}

/* One connection: handshake, log how it resumed, echo until the client closes. */
static void serve_one(int fd, gnutls_certificate_credentials_t creds,
                      const struct tlsr_gnutls_opts *ro, gnutls_anti_replay_t ar, int early_data)
{
    gnutls_session_t s;
    unsigned flags = GNUTLS_SERVER | (early_data ? GNUTLS_ENABLE_EARLY_DATA : 0);
    if (gnutls_init(&s, flags) != GNUTLS_E_SUCCESS) {
        close(fd);
        return;
    }
    gnutls_set_default_priority(s);
    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds);
    if (ro != NULL && tlsr_gnutls_session_attach(s, ro) != TLSR_OK) {
        fprintf(stderr, "error gnutls_server: %s\n", tlsr_last_error());
    }
    if (early_data) {
        gnutls_anti_replay_enable(s, ar);
        gnutls_record_set_max_early_data_size(s, 16384);
    }
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, 10000);
    int rc;
    do {
        rc = gnutls_handshake(s);
    } while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
    if (rc < 0) {
        int was_early = (gnutls_session_get_flags(s) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
        fprintf(stderr, "info gnutls_server event=handshake_failed early=%s error=\"%s\"\n",
                was_early ? "yes" : "no", gnutls_strerror(rc));
    } else {
        int is_early = (gnutls_session_get_flags(s) & GNUTLS_SFLAGS_EARLY_DATA) != 0;
        fprintf(stderr,
                "info gnutls_server event=handshake pid=%d version=%s resumed=%s "
                "early=%s\n",
                (int)getpid(), gnutls_protocol_get_name(gnutls_protocol_get_version(s)),
                gnutls_session_is_resumed(s) ? "yes" : "no", is_early ? "yes" : "no");
        char buf[4096];
        ssize_t n;
        while ((n = gnutls_record_recv(s, buf, sizeof(buf))) > 0 || n == GNUTLS_E_AGAIN ||
               n == GNUTLS_E_INTERRUPTED) {
            if (n > 0 && gnutls_record_send(s, buf, (size_t)n) < 0) {
                break;
            }
        }
        gnutls_bye(s, GNUTLS_SHUT_WR);
    }
    gnutls_deinit(s);
    close(fd);
}

static void worker(int lfd, gnutls_certificate_credentials_t creds, struct tlsr_gnutls_opts *ro,
                   gnutls_anti_replay_t ar, int early_data, const struct tlsr_fleet_opts *fo)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    /* With a fleet: this worker's own blocking Redis connection behind the shared cache. */
    if (ro != NULL && fo != NULL && tlsr_fleet_store_new(fo, &ro->store) != TLSR_OK) {
        fprintf(stderr, "error gnutls_server: %s\n", tlsr_last_error());
    }
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd >= 0) {
            struct timeval tv = {.tv_sec = 10};
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            serve_one(fd, creds, ro, ar, early_data);
        }
    }
}

static void on_stop_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    if (stopping) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void lib_log(void *arg, enum tlsr_log_level level, const char *component, const char *msg)
{
    (void)arg;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    fprintf(stderr, "%s %s %s\n", names[level], component, msg);
}

int main(int argc, char **argv)
{
    struct options o;
    if (parse(argc, argv, &o) != 0) {
        return 2;
    }
    struct tlsr_cache *cache = NULL;
    struct tlsr_cache *strikes = NULL;
    struct tlsr_keyring *ring = NULL;
    if (tlsr_cache_new((size_t)16 << 20, &cache) != TLSR_OK ||
        tlsr_cache_new((size_t)4 << 20, &strikes) != TLSR_OK ||
        tlsr_keyring_new(o.rotate_s, o.lifetime_s, &ring) != TLSR_OK) {
        fprintf(stderr, "error gnutls_server: %s\n", tlsr_last_error());
        return 1;
    }
    gnutls_certificate_credentials_t creds;
    gnutls_anti_replay_t ar;
    if (gnutls_certificate_allocate_credentials(&creds) != GNUTLS_E_SUCCESS ||
        gnutls_certificate_set_x509_key_file(creds, o.cert, o.key, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_anti_replay_init(&ar) != GNUTLS_E_SUCCESS) {
        fprintf(stderr, "error gnutls_server: cannot load %s / %s\n", o.cert, o.key);
        return 1;
    }
    tlsr_gnutls_anti_replay_attach(ar, strikes);
    if (o.is_replay_allowed) {
        gnutls_anti_replay_set_add_function(ar, every_hello_is_new);
    }
    struct tlsr_gnutls_opts ro;
    tlsr_gnutls_opts_init(&ro);
    ro.cache = cache;
    ro.keyring = ring;
    int lfd = listen_on(o.port);
    if (lfd < 0) {
        return 1;
    }
    /* The fleet key and options, before fork(): workers open their stores, the master the
     * ring. */
    struct tlsr_fleet_secret *secret = NULL;
    struct tlsr_fleet_ring *fr = NULL;
    struct tlsr_fleet_opts fo;
    const char *endpoints[1] = {o.redis};
    tlsr_fleet_opts_init(&fo);
    fo.endpoints = endpoints;
    fo.n_endpoints = 1;
    fo.log = lib_log;
    fo.tls = o.redis_tls;
    if (o.redis_timeout_ms > 0) {
        fo.lookup_timeout_ms = o.redis_timeout_ms;
    }
    if (o.redis != NULL) {
        if (tlsr_fleet_secret_load(o.fleet_key, &secret) != TLSR_OK) {
            fprintf(stderr, "error gnutls_server: %s\n", tlsr_last_error());
            return 1;
        }
        fo.secret = secret;
    }
    pid_t pids[MAX_WORKERS];
    for (int i = 0; i < o.workers; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            worker(lfd, creds, o.is_plain ? NULL : &ro, ar, o.early_data,
                   o.redis != NULL ? &fo : NULL);
        }
    }
    fprintf(stderr, "info gnutls_server event=started port=%d workers=%d fleet=%s\n", o.port,
            o.workers, o.redis != NULL ? "redis" : "off");
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    /* The master follows the fleet's ring (the workers share it) until told to stop. */
    if (o.redis != NULL) {
        struct tlsr_fleet_ring_opts fro;
        tlsr_fleet_ring_opts_init(&fro);
        fro.poll_ms = 200;
        if (tlsr_fleet_ring_new(EV_DEFAULT, &fo, &fro, ring, &fr) != TLSR_OK) {
            fprintf(stderr, "error gnutls_server: %s\n", tlsr_last_error());
            stopping = 1;
        }
    }
    ev_timer stop_poll;
    ev_timer_init(&stop_poll, on_stop_poll, 0.1, 0.1);
    ev_timer_start(EV_DEFAULT, &stop_poll);
    if (!stopping) {
        ev_run(EV_DEFAULT, 0);
    }
    for (int i = 0; i < o.workers; i++) {
        kill(pids[i], SIGTERM);
        waitpid(pids[i], NULL, 0);
    }
    tlsr_fleet_ring_free(fr);
    tlsr_fleet_secret_free(secret);
    gnutls_anti_replay_deinit(ar);
    gnutls_certificate_free_credentials(creds);
    tlsr_keyring_free(ring);
    tlsr_cache_free(strikes);
    tlsr_cache_free(cache);
    return 0;
}

/*
 * `tlsresume bench HOST:PORT`: a handshake load generator. Each thread runs one libev loop
 * with its share of --concurrency connections, each doing connect, handshake, optional data
 * (--data BYTES written, as many read back), close, and again, until --count or --duration.
 * Resumed mode offers the session of one warm-up handshake (so a server whose tickets are
 * single use shows up as failed resumptions); a connection that was meant to resume but made a
 * full handshake counts as a failure to resume (reported), never as a resumption. Every
 * connection has a 5 s deadline for connect and handshake, and each thread stops at --duration
 * even if connections hang: the run is bounded.
 */
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_hist.h"
#include "../cli/cli.h"
#include "../cli/opts.h"
#include "../check/check_probe.h"

#define MAX_THREADS 64
#define MAX_CONC 10000

enum err_kind { E_CONNECT, E_HANDSHAKE, E_DATA, E_NKINDS };
static const char *const err_names[E_NKINDS] = {"connect", "handshake", "data"};

struct bench_opts {
    char host[256];
    char port[16];
    char servername[256];
    int version;
    int resume_pct; /* 0 full, 100 resume, else mixed */
    unsigned concurrency;
    unsigned threads;
    uint64_t duration_s;
    uint64_t count; /* 0: by duration */
    size_t data_bytes;
    bool is_json;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

struct thread_stats {
    struct hist full;
    struct hist resumed;
    uint64_t done;
    uint64_t resume_wanted;
    uint64_t resume_failed;
    uint64_t errors[E_NKINDS];
};

struct bench_thread;

struct bconn {
    struct bench_thread *t;
    int fd;
    SSL *ssl;
    ev_io io;
    ev_timer retry;   /* after an error, the next attempt waits 10 ms (no tight loop) */
    ev_timer timeout; /* connect + handshake + data must finish within 5 s */
    double started;
    bool wants_resume;
    size_t sent;
    size_t got;
};

struct bench_thread {
    pthread_t tid;
    const struct bench_opts *o;
    struct ev_loop *loop;
    SSL_CTX *ctx;
    SSL_SESSION *session; /* newest, for resumption */
    unsigned conns;
    struct bconn *c;
    struct thread_stats st;
    uint64_t quota; /* handshakes this thread may start (count mode) */
    uint64_t started;
    double deadline;
    unsigned active;
    uint8_t *payload;
    unsigned seed; /* this thread's random state (mixed mode) */
    ev_timer stop; /* --duration reached: stop even if connections hang */
};

static volatile uint64_t progress_done;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void conn_begin(struct bconn *c);

static bool should_continue(struct bench_thread *t)
{
    if (t->o->count > 0) {
        return t->started < t->quota;
    }
    return now_s() < t->deadline;
}

static void conn_end(struct bconn *c, int err)
{
    struct bench_thread *t = c->t;
    ev_io_stop(t->loop, &c->io);
    ev_timer_stop(t->loop, &c->timeout);
    if (c->ssl != NULL) {
        if (err < 0) {
            SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (err >= 0) {
        t->st.errors[err]++;
    }
    ERR_clear_error();
    if (!should_continue(t)) {
        if (--t->active == 0) {
            ev_break(t->loop, EVBREAK_ALL);
        }
    } else if (err >= 0) {
        ev_timer_set(&c->retry, 0.01, 0.0);
        ev_timer_start(t->loop, &c->retry);
    } else {
        conn_begin(c);
    }
}

static void on_retry(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    conn_begin(timer->data);
}

static void on_conn_timeout(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct bconn *c = timer->data;
    conn_end(c, c->ssl == NULL ? E_CONNECT : (SSL_is_init_finished(c->ssl) ? E_DATA : E_HANDSHAKE));
}

static void on_stop(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)timer;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void finish(struct bconn *c)
{
    struct bench_thread *t = c->t;
    uint64_t us = (uint64_t)((now_s() - c->started) * 1e6);
    bool is_reused = SSL_session_reused(c->ssl) == 1;
    hist_add(is_reused ? &t->st.resumed : &t->st.full, us);
    t->st.done++;
    __atomic_add_fetch(&progress_done, 1, __ATOMIC_RELAXED);
    if (c->wants_resume) {
        t->st.resume_wanted++;
        t->st.resume_failed += !is_reused;
    }
    conn_end(c, -1);
}

/* After an SSL call failed with e: re-arms the watcher for what OpenSSL wants and returns true,
 * or returns false for a real error. */
static bool rearm(struct bconn *c, int e)
{
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        return false;
    }
    ev_io_stop(c->t->loop, &c->io);
    ev_io_set(&c->io, c->fd, e == SSL_ERROR_WANT_WRITE ? EV_WRITE : EV_READ);
    ev_io_start(c->t->loop, &c->io);
    return true;
}

/* Data phase: write data_bytes, read as many back. */
static void data_step(struct bconn *c)
{
    size_t total = c->t->o->data_bytes;
    while (c->sent < total) {
        size_t n = total - c->sent < 16384 ? total - c->sent : 16384;
        int w = SSL_write(c->ssl, c->t->payload, (int)n);
        if (w <= 0) {
            if (!rearm(c, SSL_get_error(c->ssl, w))) {
                conn_end(c, E_DATA);
            }
            return;
        }
        c->sent += (size_t)w;
    }
    char buf[16384];
    while (c->got < total) {
        int r = SSL_read(c->ssl, buf, sizeof(buf));
        if (r <= 0) {
            if (!rearm(c, SSL_get_error(c->ssl, r))) {
                conn_end(c, E_DATA);
            }
            return;
        }
        c->got += (size_t)r;
    }
    finish(c);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct bconn *c = io->data;
    if (c->ssl == NULL) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            conn_end(c, E_CONNECT);
            return;
        }
        c->ssl = SSL_new(c->t->ctx);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
            conn_end(c, E_HANDSHAKE);
            return;
        }
        if (c->t->o->servername[0] != '\0') {
            SSL_set_tlsext_host_name(c->ssl, c->t->o->servername);
        }
        if (c->wants_resume && c->t->session != NULL) {
            SSL_set_session(c->ssl, c->t->session);
        }
        SSL_set_connect_state(c->ssl);
    }
    if (!SSL_is_init_finished(c->ssl)) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            if (!rearm(c, SSL_get_error(c->ssl, r))) {
                conn_end(c, E_HANDSHAKE);
            }
            return;
        }
    }
    if (c->t->o->data_bytes > 0) {
        data_step(c);
        return;
    }
    finish(c);
}

static void conn_begin(struct bconn *c)
{
    struct bench_thread *t = c->t;
    t->started++;
    c->sent = 0;
    c->got = 0;
    c->started = now_s();
    int pct = t->o->resume_pct;
    c->wants_resume =
        t->session != NULL && pct > 0 && (pct >= 100 || (int)(rand_r(&t->seed) % 100) < pct);
    c->fd = socket(t->o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || (connect(c->fd, (const struct sockaddr *)&t->o->addr, t->o->addr_len) != 0 &&
                      errno != EINPROGRESS)) {
        conn_end(c, E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev_io_init(&c->io, on_io, c->fd, EV_WRITE);
    c->io.data = c;
    ev_io_start(t->loop, &c->io);
    ev_timer_set(&c->timeout, 5.0, 0.0);
    ev_timer_start(t->loop, &c->timeout);
}

static void *thread_main(void *arg)
{
    struct bench_thread *t = arg;
    t->loop = ev_loop_new(EVFLAG_AUTO);
    t->active = t->conns;
    for (unsigned i = 0; i < t->conns; i++) {
        t->c[i].t = t;
        t->c[i].fd = -1;
        ev_init(&t->c[i].retry, on_retry);
        t->c[i].retry.data = &t->c[i];
        ev_init(&t->c[i].timeout, on_conn_timeout);
        t->c[i].timeout.data = &t->c[i];
        if (should_continue(t)) {
            conn_begin(&t->c[i]);
        } else {
            t->active--;
        }
    }
    if (t->o->count == 0) {
        ev_timer_init(&t->stop, on_stop, t->deadline - now_s() + 1.0, 0.0);
        ev_timer_start(t->loop, &t->stop);
    }
    if (t->active > 0) {
        ev_run(t->loop, 0);
    }
    /* Connections still open after the stop (a hung server) are closed without counting. */
    for (unsigned i = 0; i < t->conns; i++) {
        struct bconn *c = &t->c[i];
        ev_timer_stop(t->loop, &c->retry);
        ev_timer_stop(t->loop, &c->timeout);
        ev_io_stop(t->loop, &c->io);
        SSL_free(c->ssl);
        c->ssl = NULL;
        if (c->fd >= 0) {
            close(c->fd);
            c->fd = -1;
        }
    }
    ev_loop_destroy(t->loop);
    return NULL;
}

static bool parse_mode(const char *v, int *pct)
{
    uint64_t p = 0;
    if (strcmp(v, "full") == 0) {
        *pct = 0;
    } else if (strcmp(v, "resume") == 0) {
        *pct = 100;
    } else if (strncmp(v, "mixed:", 6) == 0 && cli_uint(v + 6, 0, 100, &p)) {
        *pct = (int)p;
    } else {
        return false;
    }
    return true;
}

static bool resolve_target(const char *arg, struct bench_opts *o)
{
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || colon == arg) {
        return false;
    }
    size_t hlen = (size_t)(colon - arg);
    const char *h = arg;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(o->host)) {
        return false;
    }
    memcpy(o->host, h, hlen);
    o->host[hlen] = '\0';
    snprintf(o->port, sizeof(o->port), "%.15s", colon + 1);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *res = NULL;
    if (getaddrinfo(o->host, o->port, &hints, &res) != 0) {
        return false;
    }
    memcpy(&o->addr, res->ai_addr, res->ai_addrlen);
    o->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

enum { O_MODE = 1, O_TLS12, O_TLS13 };

#define BENCH_AT(F) CLI_AT(bench_opts, F)
static const struct cli_opt bench_options[] = {
    {.name = "mode",
     .type = CLI_CUSTOM,
     .choices = "full|resume|mixed:P",
     .def = "full",
     .id = O_MODE,
     .help = "full handshakes, resumptions, or P% resumptions (a resumption the server turned "
             "into a full handshake counts as failed, never as resumed)"},
    {.name = "tls1_2",
     .alias = "--tls1_2",
     .type = CLI_CUSTOM,
     .id = O_TLS12,
     .help = "TLS 1.2 only"},
    {.name = "tls1_3",
     .alias = "--tls1_3",
     .type = CLI_CUSTOM,
     .id = O_TLS13,
     .help = "TLS 1.3 only (the default)"},
    {.name = "concurrency",
     .alias = "-C",
     .type = CLI_INT,
     .def = "8",
     .min = 1,
     .max = MAX_CONC,
     .choices = "C",
     .offset = BENCH_AT(concurrency),
     .help = "connections open at once"},
    {.name = "threads",
     .alias = "-T",
     .type = CLI_INT,
     .def = "1",
     .min = 1,
     .max = MAX_THREADS,
     .choices = "T",
     .offset = BENCH_AT(threads),
     .help = "threads making them (at most --concurrency)"},
    {.name = "duration",
     .type = CLI_DURATION,
     .def = "10s",
     .min = 1,
     .max = 3600,
     .offset = BENCH_AT(duration_s),
     .help = "how long to run"},
    {.name = "count",
     .type = CLI_INT,
     .min = 1,
     .max = 100000000,
     .offset = BENCH_AT(count),
     .help = "stop after this many handshakes instead"},
    {.name = "data",
     .type = CLI_SIZE,
     .def = "0",
     .min = 0,
     .max = 1 << 30,
     .offset = BENCH_AT(data_bytes),
     .help = "bytes to send and read back on each connection (an echo server)"},
    {.name = "servername",
     .type = CLI_STRING,
     .choices = "NAME",
     .offset = BENCH_AT(servername),
     .help = "the name sent as SNI (certificates are not verified)"},
    {.name = "json",
     .type = CLI_BOOL,
     .def = "no",
     .offset = BENCH_AT(is_json),
     .help = "one JSON document instead of text"},
};

static bool set_custom(void *dst, const struct cli_opt *opt, const char *v, char *why, size_t cap)
{
    (void)why;
    (void)cap;
    struct bench_opts *o = dst;
    if (opt->id == O_MODE) {
        return parse_mode(v, &o->resume_pct);
    }
    o->version = opt->id == O_TLS12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    return true;
}

static bool set_target(void *arg, const char *word, char *why, size_t cap)
{
    struct bench_opts *o = arg;
    if (o->host[0] != '\0') {
        snprintf(why, cap, "one server at a time (the target is %s)", o->host);
        return false;
    }
    if (!resolve_target(word, o)) {
        snprintf(why, cap, "expected HOST:PORT that resolves");
        return false;
    }
    return true;
}

static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->version = TLS1_3_VERSION;
    struct cli_table t;
    memset(&t, 0, sizeof(t));
    t.opts = bench_options;
    t.n = sizeof(bench_options) / sizeof(bench_options[0]);
    t.dst = o;
    t.custom = set_custom;
    struct cli_cmd c;
    memset(&c, 0, sizeof(c));
    c.name = "bench";
    c.summary = "load a TLS server with full or resumed handshakes, bounded";
    c.usage = "bench HOST:PORT [options]";
    c.about = "Makes TLS handshakes as fast as the server takes them and reports handshakes "
              "per\nsecond, latency percentiles (full and resumed), the resumed fraction and "
              "errors.\nAlways bounded: by --duration or --count.";
    c.tables = &t;
    c.n_tables = 1;
    c.positional = set_target;
    c.arg = o;
    int rc = cli_read(&c, argc, argv);
    if (rc >= 0) {
        return rc;
    }
    if (o->host[0] == '\0') {
        fprintf(stderr, "error bench: which server? (tlsresume bench HOST:PORT; see tlsresume "
                        "bench --help)\n");
        return 2;
    }
    if (o->threads > o->concurrency) {
        o->threads = o->concurrency;
    }
    return -1;
}

/* One blocking full handshake that waits for tickets: the session resumed connections offer. */
static SSL_SESSION *warm_up(const struct bench_opts *o)
{
    char err[256];
    SSL_CTX *ctx = probe_ctx(o->version, true, NULL, true, err, sizeof(err));
    if (ctx == NULL) {
        return NULL;
    }
    struct probe_target target;
    memset(&target, 0, sizeof(target));
    snprintf(target.host, sizeof(target.host), "%s", o->host);
    snprintf(target.port, sizeof(target.port), "%s", o->port);
    snprintf(target.servername, sizeof(target.servername), "%s", o->servername);
    target.timeout_ms = 5000;
    struct probe_result r;
    probe_run(ctx, &target, NULL, &r);
    SSL_SESSION *s = NULL;
    if (r.is_ok && r.session != NULL) {
        s = r.session;
        r.session = NULL;
    } else {
        fprintf(stderr, "error bench: %s:%s: %s\n", o->host, o->port,
                r.is_ok ? "no session to resume" : r.error);
    }
    probe_result_free(&r);
    SSL_CTX_free(ctx);
    return s;
}

static void print_lat(FILE *out, const char *name, const struct hist *h, bool is_json)
{
    if (is_json) {
        fprintf(out, "\"%s\":{\"count\":%llu,\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"max\":%llu}",
                name, (unsigned long long)h->count, (unsigned long long)hist_percentile(h, 50),
                (unsigned long long)hist_percentile(h, 90),
                (unsigned long long)hist_percentile(h, 99), (unsigned long long)h->max_us);
        return;
    }
    if (h->count == 0) {
        return;
    }
    fprintf(out,
            "  %-8s %10llu handshakes  p50 %6llu us  p90 %6llu us  p99 %6llu us  max %llu us\n",
            name, (unsigned long long)h->count, (unsigned long long)hist_percentile(h, 50),
            (unsigned long long)hist_percentile(h, 90), (unsigned long long)hist_percentile(h, 99),
            (unsigned long long)h->max_us);
}

static void report(const struct bench_opts *o, const struct thread_stats *st, double elapsed)
{
    double rate = (double)st->done / elapsed;
    uint64_t resumed = st->resumed.count;
    double frac = st->done > 0 ? (double)resumed / (double)st->done : 0;
    const char *ver = o->version == TLS1_3_VERSION ? "TLSv1.3" : "TLSv1.2";
    if (o->is_json) {
        printf("{\"target\":\"%s:%s\",\"version\":\"%s\",\"resume_percent\":%d,\"concurrency\":%u,"
               "\"threads\":%u,\"data_bytes\":%zu,\"elapsed_s\":%.3f,\"handshakes\":%llu,"
               "\"per_second\":%.1f,\"resumed_fraction\":%.4f,\"resume_wanted\":%llu,"
               "\"resume_failed\":%llu,\"latency_us\":{",
               o->host, o->port, ver, o->resume_pct, o->concurrency, o->threads, o->data_bytes,
               elapsed, (unsigned long long)st->done, rate, frac,
               (unsigned long long)st->resume_wanted, (unsigned long long)st->resume_failed);
        print_lat(stdout, "full", &st->full, true);
        printf(",");
        print_lat(stdout, "resumed", &st->resumed, true);
        printf("},\"errors\":{");
        for (int k = 0; k < E_NKINDS; k++) {
            printf("%s\"%s\":%llu", k ? "," : "", err_names[k], (unsigned long long)st->errors[k]);
        }
        printf("}}\n");
        return;
    }
    printf("tlsresume bench %s:%s %s, %d%% resumed wanted, %u connections, %u threads, %.1f s\n",
           o->host, o->port, ver, o->resume_pct, o->concurrency, o->threads, elapsed);
    printf("  %.1f handshakes/s, %llu in all, %.1f%% resumed", rate, (unsigned long long)st->done,
           frac * 100.0);
    if (st->resume_wanted > 0) {
        printf(" (%llu of %llu wanted resumptions were full handshakes)",
               (unsigned long long)st->resume_failed, (unsigned long long)st->resume_wanted);
    }
    printf("\n");
    print_lat(stdout, "full", &st->full, false);
    print_lat(stdout, "resumed", &st->resumed, false);
    printf("  errors: connect %llu, handshake %llu, data %llu\n",
           (unsigned long long)st->errors[E_CONNECT], (unsigned long long)st->errors[E_HANDSHAKE],
           (unsigned long long)st->errors[E_DATA]);
}

static SSL_CTX *client_ctx(const struct bench_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, o->version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, o->version) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    return ctx;
}

int bench_main(int argc, char **argv)
{
    struct bench_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    static struct bench_thread threads[MAX_THREADS];
    memset(threads, 0, sizeof(threads));
    uint8_t *payload = calloc(1, o.data_bytes < 16384 ? 16384 : o.data_bytes);
    SSL_SESSION *session = o.resume_pct > 0 ? warm_up(&o) : NULL;
    if (payload == NULL || (o.resume_pct > 0 && session == NULL)) {
        free(payload);
        return 2;
    }
    double start = now_s();
    for (unsigned i = 0; i < o.threads; i++) {
        struct bench_thread *t = &threads[i];
        t->o = &o;
        t->ctx = client_ctx(&o);
        t->conns = o.concurrency / o.threads + (i < o.concurrency % o.threads);
        t->c = calloc(t->conns, sizeof(*t->c));
        t->quota = o.count / o.threads + (i < o.count % o.threads);
        t->deadline = start + (double)o.duration_s;
        t->payload = payload;
        t->seed = 12345u + i;
        if (session != NULL) {
            SSL_SESSION_up_ref(session);
            t->session = session;
        }
        if (t->ctx == NULL || t->c == NULL || pthread_create(&t->tid, NULL, thread_main, t) != 0) {
            fprintf(stderr, "error bench: cannot start thread %u\n", i);
            /* Let the threads already running finish their (bounded) share, then stop. */
            for (unsigned j = 0; j < i; j++) {
                pthread_join(threads[j].tid, NULL);
                SSL_SESSION_free(threads[j].session);
                SSL_CTX_free(threads[j].ctx);
                free(threads[j].c);
            }
            SSL_SESSION_free(t->session);
            SSL_CTX_free(t->ctx);
            free(t->c);
            SSL_SESSION_free(session);
            free(payload);
            return 2;
        }
    }
    bool is_tty = isatty(STDERR_FILENO) == 1 && !o.is_json;
    struct thread_stats total;
    memset(&total, 0, sizeof(total));
    for (unsigned i = 0; i < o.threads; i++) {
        while (is_tty && pthread_tryjoin_np(threads[i].tid, NULL) == EBUSY) {
            usleep(500 * 1000);
            double el = now_s() - start;
            fprintf(stderr, "\r%.0f s: %llu handshakes, %.0f/s   ", el,
                    (unsigned long long)__atomic_load_n(&progress_done, __ATOMIC_RELAXED),
                    (double)__atomic_load_n(&progress_done, __ATOMIC_RELAXED) / el);
        }
        if (!is_tty) {
            pthread_join(threads[i].tid, NULL);
        }
    }
    if (is_tty) {
        fprintf(stderr, "\r%60s\r", "");
    }
    double elapsed = now_s() - start;
    uint64_t errors = 0;
    for (unsigned i = 0; i < o.threads; i++) {
        struct bench_thread *t = &threads[i];
        hist_merge(&total.full, &t->st.full);
        hist_merge(&total.resumed, &t->st.resumed);
        total.done += t->st.done;
        total.resume_wanted += t->st.resume_wanted;
        total.resume_failed += t->st.resume_failed;
        for (int k = 0; k < E_NKINDS; k++) {
            total.errors[k] += t->st.errors[k];
            errors += t->st.errors[k];
        }
        SSL_SESSION_free(t->session);
        SSL_CTX_free(t->ctx);
        free(t->c);
    }
    SSL_SESSION_free(session);
    free(payload);
    report(&o, &total, elapsed);
    if (total.done == 0) {
        return 2;
    }
    return total.resume_failed > 0 || errors > 0 ? 1 : 0;
}

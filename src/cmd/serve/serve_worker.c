/*
 * The worker: one libev loop, no thread per connection. This file accepts, runs handshakes
 * (with early data and fleet lookups), keeps timers and drains; serve_proxy.c relays. Each
 * connection owns two fixed 16 KiB buffers (client to backend, backend to client); a side is
 * read only while its buffer has room, so a slow reader slows its writer instead of growing
 * memory (back-pressure). An end of stream on one side is passed on as a half-close (SHUT_WR to
 * the backend, close_notify to the client) once its buffer has drained; the connection closes
 * when both directions are done.
 *
 * Timeouts: the handshake must finish within handshake_timeout, the backend must accept within
 * backend_connect_timeout, and a connection idle both ways for idle_timeout is closed, so a
 * slow or silent client cannot pin a worker. Beyond max_connections a new client is accepted
 * and closed at once (refused cleanly) while the others keep being served.
 *
 * SIGTERM drains: the worker closes its listeners, finishes its connections, then exits.
 */
#include "serve_worker.h"

#include "serve_upstream_store.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "../cli/log.h"

#include "serve_conn.h"

#define ACCEPT_BATCH 64

static void handshake_failed(struct conn *c)
{
    unsigned long code = ERR_peek_error();
    char peer[INET6_ADDRSTRLEN + 8];
    conn_peer_text(&c->peer, peer, sizeof(peer));
    log_msg(LOG_DEBUG, "tls", "client=%s error=\"handshake: %s\"", peer,
            code != 0 ? ERR_reason_error_string(code) : "connection closed");
    if (ERR_GET_REASON(code) == SSL_R_TOO_MUCH_EARLY_DATA) {
        metrics_add(c->w->a->metrics, M_EARLY_TOO_LARGE, 1);
    }
    metrics_add(c->w->a->metrics, M_HS_FAILED, 1);
    conn_close(c, "handshake_failed");
}

/* Waits for what SSL_get_error() says the handshake needs; false when it failed. */
static bool handshake_wait(struct conn *c, int e)
{
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        set_events(c->w, &c->cio, c->cfd, e == SSL_ERROR_WANT_READ ? EV_READ : EV_WRITE);
        return true;
    }
    if (e == SSL_ERROR_WANT_CLIENT_HELLO_CB) {
        /* Paused while the fleet cache asks Redis; on_fleet_resume() goes on. */
        set_events(c->w, &c->cio, c->cfd, 0);
        return true;
    }
    return false;
}

/* Early data accepted: on its way to the backend at once, behind the PROXY header. False when
 * the backend cannot be reached and the connection is closed. */
static bool early_data(struct conn *c, const uint8_t *data, size_t n)
{
    if (c->early_bytes == 0) {
        if (c->w->a->cfg->proxy_protocol) {
            proxy_header(c, true);
        }
        if (c->bfd < 0 && !backend_connect(c, true)) {
            return false;
        }
    }
    c->early_bytes += n;
    memcpy(c->c2b.data + c->c2b.end, data, n);
    c->c2b.end += n;
    c->c2b.high = c->c2b.end > c->c2b.high ? c->c2b.end : c->c2b.high;
    if (c->is_backend_up) {
        early_flush(c);
    }
    return true;
}

/* Reads 0-RTT data (OpenSSL requires it before the rest of the handshake); true when done. */
static bool read_early(struct conn *c)
{
    uint8_t data[TLSR_EARLY_DATA_MAX];
    for (;;) {
        if (!buf_ensure(&c->c2b)) {
            conn_close(c, "no_memory");
            return false;
        }
        size_t room = buf_room(&c->c2b);
        if (!c->is_header_sent && c->w->a->cfg->proxy_protocol) {
            /* The header goes in front of the first early bytes: room for it is kept. */
            room = room > PROXY_HEADER_MAX ? room - PROXY_HEADER_MAX : 0;
        }
        if (room == 0) {
            /* c2b is full until the backend takes it: early_flush() brings us back. */
            c->is_early_blocked = true;
            set_events(c->w, &c->cio, c->cfd, 0);
            return false;
        }
        size_t n = 0;
        ERR_clear_error();
        int r = SSL_read_early_data(c->ssl, data, room < sizeof(data) ? room : sizeof(data), &n);
        if (n > 0) {
            bool is_open = early_data(c, data, n);
            OPENSSL_cleanse(data, n);
            if (!is_open) {
                return false;
            }
        }
        if (r == SSL_READ_EARLY_DATA_FINISH) {
            c->is_reading_early = false;
            return true;
        }
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            continue;
        }
        if (!handshake_wait(c, SSL_get_error(c->ssl, 0))) {
            handshake_failed(c);
        }
        return false;
    }
}

/* Counts a finished handshake: how it resumed, what was offered, and why an offer missed. */
static void count_handshake(struct conn *c)
{
    struct metrics_slot *m = c->w->a->metrics;
    metrics_add(m, metrics_handshake(SSL_version(c->ssl), tlsr_ssl_resumption(c->ssl)), 1);
    enum tlsr_offer offer = tlsr_ssl_offer(c->ssl);
    if (offer == TLSR_OFFER_NONE) {
        return;
    }
    metrics_add(m, (enum metric)(M_OFFER + (int)offer - 1), 1);
    enum tlsr_miss miss = tlsr_ssl_miss(c->ssl);
    if (miss != TLSR_MISS_NONE) {
        metrics_add(m, (enum metric)(M_MISS + (int)miss - 1), 1);
    }
}

static void handshake(struct conn *c)
{
    if (c->is_reading_early && !read_early(c)) {
        return;
    }
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        c->is_handshake_done = true;
        count_handshake(c);
        count_early(c);
        if (c->w->a->cfg->proxy_protocol) {
            proxy_header(c, false);
        }
        c->read_wants = 0;
        if (c->bfd < 0) {
            if (backend_connect(c, false)) {
                backend_first_send(c);
            }
        } else if (c->is_backend_up) {
            c->state = ST_PROXY;
            c->timer.repeat = (ev_tstamp)c->w->a->cfg->idle_timeout_s;
            ev_timer_again(c->w->loop, &c->timer);
            proxy(c, PUMP_CLIENT | PUMP_BACKEND);
        } else {
            set_events(c->w, &c->cio, c->cfd, EV_READ); /* on_client() fills c2b meanwhile */
            c->state = ST_CONNECTING; /* started for early data, not connected yet */
            set_events(c->w, &c->bio, c->bfd, EV_WRITE);
            c->timer.repeat = (ev_tstamp)c->w->a->cfg->backend_connect_timeout_s;
            ev_timer_again(c->w->loop, &c->timer);
        }
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    if (!handshake_wait(c, e)) {
        handshake_failed(c);
    }
}

/* The fleet cache has an answer (or gave up waiting): the paused handshake goes on. */
static void on_fleet_resume(SSL *ssl, void *arg)
{
    (void)arg;
    struct conn *c = SSL_get_app_data(ssl);
    if (c != NULL && c->state == ST_HANDSHAKE) {
        handshake(c);
    }
}

/* Copies the fleet cache's counters into this worker's metrics slot. */
static void on_fleet_stats(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = t->data;
    struct tlsr_fleet_cache_stats st;
    tlsr_fleet_cache_get_stats(w->fleet, &st);
    const uint64_t v[] = {st.lookups,        st.hits,        st.misses,        st.timeouts,
                          st.unavailable,    st.rejected,    st.stored,        st.removed,
                          st.endpoints_down, st.early_fresh, st.early_replays, st.early_unavailable,
                          st.early_lost,     st.early_clock};
    _Static_assert(sizeof(v) / sizeof(v[0]) == M_FLEET_EARLY_CLOCK - M_FLEET_LOOKUPS + 1,
                   "every fleet counter has its metric, in order");
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        __atomic_store_n(&w->a->metrics->v[M_FLEET_LOOKUPS + i], v[i], __ATOMIC_RELAXED);
    }
}

static bool fleet_start(struct worker *w)
{
    if (w->a->fleet == NULL) {
        return true;
    }
    if (tlsr_fleet_cache_new(w->loop, w->a->fleet, &w->fleet) != TLSR_OK) {
        log_msg(LOG_ERROR, "fleet", "worker=%d error=\"%s\"", w->a->id, tlsr_last_error());
        return false;
    }
    for (size_t i = 0; i < w->a->tls->n; i++) {
        if (tlsr_fleet_cache_bind(w->fleet, w->a->tls->ctx[i]) != TLSR_OK) {
            log_msg(LOG_ERROR, "fleet", "worker=%d error=\"%s\"", w->a->id, tlsr_last_error());
            return false;
        }
    }
    w->a->tls->fleet = w->fleet;
    w->a->tls->fleet_resume = on_fleet_resume;
    /* The first report at once: until Redis answers, the gauge says the endpoints are down. */
    ev_timer_init(&w->fleet_stats, on_fleet_stats, 0.0, 0.5);
    w->fleet_stats.data = w;
    ev_timer_start(w->loop, &w->fleet_stats);
    return true;
}

/* accept_proxy: the balancer's header first, then the handshake. */
static void proxy_in(struct conn *c)
{
    int r = proxy_in_read(c);
    if (r < 0) {
        conn_close(c, "proxy_header");
    } else if (r == 0) {
        set_events(c->w, &c->cio, c->cfd, EV_READ);
    } else {
        c->state = ST_HANDSHAKE;
        handshake(c);
    }
}

static void on_client(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct conn *c = io->data;
    if (c->state == ST_PROXY_IN) {
        proxy_in(c);
    } else if (c->state == ST_HANDSHAKE) {
        handshake(c);
    } else if (c->state == ST_PROXY) {
        /* Writable only: read too when a read waits for writability (SSL_ERROR_WANT_WRITE). */
        bool is_read = (revents & EV_READ) != 0 || c->read_wants == SSL_ERROR_WANT_WRITE;
        proxy(c, is_read ? PUMP_CLIENT : 0);
    } else {
        /* Connecting: take client bytes already (they wait in c2b). */
        bool progress = false;
        if (!client_read(c, &progress)) {
            conn_close(c, "error");
            return;
        }
        buf_release(&c->c2b, false); /* nothing came: no buffer held while connecting */
        set_events(c->w, &c->cio, c->cfd,
                   !c->is_client_eof && buf_room(&c->c2b) > 0 ? want_events(c->read_wants, EV_READ)
                                                              : 0);
    }
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct conn *c = t->data;
    const struct worker_args *a = c->w->a;
    char peer[INET6_ADDRSTRLEN + 8];
    conn_peer_text(&c->peer, peer, sizeof(peer));
    switch (c->state) {
    case ST_PROXY_IN:
        log_msg(LOG_INFO, "serve", "client=%s event=proxy_header_timeout after_s=%llu", peer,
                (unsigned long long)a->cfg->handshake_timeout_s);
        metrics_add(a->metrics, M_PROXY_IN_TIMEOUT, 1);
        conn_close(c, "proxy_header_timeout");
        break;
    case ST_HANDSHAKE:
        log_msg(LOG_INFO, "tls", "client=%s event=handshake_timeout after_s=%llu", peer,
                (unsigned long long)a->cfg->handshake_timeout_s);
        metrics_add(a->metrics, M_HS_TIMEOUT, 1);
        conn_close(c, "handshake_timeout");
        break;
    case ST_CONNECTING:
    case ST_UPSTREAM: {
        char why[96];
        snprintf(why, sizeof(why), "%s timed out after %llu s",
                 c->state == ST_UPSTREAM ? "connect and tls handshake" : "connect",
                 (unsigned long long)a->cfg->backend_connect_timeout_s);
        if (__builtin_popcount(c->backends_tried) < (int)a->n_backends) {
            (void)backend_retry(c, why); /* another backend is left */
            break;
        }
        backend_mark_down(c, why);
        metrics_add(a->metrics, M_BACKEND_TIMEOUT, 1);
        conn_close(c, "backend_timeout");
        break;
    }
    case ST_PROXY:
        metrics_add(a->metrics, M_IDLE_TIMEOUT, 1);
        conn_close(c, "idle_timeout");
        break;
    }
}

static void refuse(struct worker *w, int fd)
{
    close(fd);
    metrics_add(w->a->metrics, M_REFUSED, 1);
    ev_tstamp now = ev_now(w->loop);
    if (now - w->last_refusal_log >= 1.0) {
        w->last_refusal_log = now;
        log_msg(LOG_WARN, "serve", "worker=%d event=refused reason=max_connections limit=%llu",
                w->a->id, (unsigned long long)w->a->cfg->max_connections);
    }
}

static void accept_watchers(struct worker *w, bool is_on)
{
    for (size_t i = 0; i < w->a->n_listen; i++) {
        if (is_on) {
            ev_io_start(w->loop, &w->accept_w[i]);
        } else {
            ev_io_stop(w->loop, &w->accept_w[i]);
        }
    }
}

static void on_accept_resume(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = t->data;
    if (!w->is_draining) {
        accept_watchers(w, true);
    }
}

/* Out of descriptors or memory: stop accepting for 100 ms instead of spinning on a listener
 * that stays readable. */
static void pause_accepting(struct worker *w, int err)
{
    accept_watchers(w, false);
    ev_timer_set(&w->accept_pause, 0.1, 0.0);
    ev_timer_start(w->loop, &w->accept_pause);
    ev_tstamp now = ev_now(w->loop);
    if (now - w->last_accept_error_log >= 1.0) {
        w->last_accept_error_log = now;
        log_msg(LOG_ERROR, "serve", "worker=%d event=accept_paused error=\"accept: %s\" open=%lu",
                w->a->id, strerror(err), w->open);
    }
}

static void conn_start(struct worker *w, int fd, const struct sockaddr_storage *peer,
                       socklen_t peer_len)
{
    struct conn *c = calloc(1, sizeof(*c));
    SSL *ssl = c != NULL ? SSL_new(w->a->tls->ctx[0]) : NULL;
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        log_msg(LOG_ERROR, "serve", "error=\"out of memory for a connection\"");
        SSL_free(ssl);
        free(c);
        close(fd);
        __atomic_sub_fetch(w->a->open_total, 1, __ATOMIC_RELAXED);
        return;
    }
    c->w = w;
    c->cfd = fd;
    c->bfd = -1;
    c->backend = -1;
    c->ssl = ssl;
    SSL_set_app_data(ssl, c);
    c->peer = *peer;
    c->peer_len = peer_len;
    c->started = ev_now(w->loop);
    SSL_set_accept_state(ssl);
    c->is_reading_early = w->a->cfg->early_data;
    c->next = w->conns;
    if (w->conns != NULL) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->open++;
    metrics_add(w->a->metrics, M_CONN_TOTAL, 1);
    metrics_add(w->a->metrics, M_CONN_OPEN, 1);
    ev_io_init(&c->cio, on_client, fd, EV_READ);
    c->cio.data = c;
    ev_init(&c->timer, on_timer);
    c->timer.data = c;
    c->timer.repeat = (ev_tstamp)w->a->cfg->handshake_timeout_s;
    ev_timer_again(w->loop, &c->timer);
    if (w->a->cfg->accept_proxy) {
        c->state = ST_PROXY_IN;
        proxy_in(c);
    } else {
        c->state = ST_HANDSHAKE;
        handshake(c);
    }
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = io->data;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd = accept4(io->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause_accepting(w, errno);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                log_msg(LOG_WARN, "serve", "worker=%d error=\"accept: %s\"", w->a->id,
                        strerror(errno));
            }
            return;
        }
        /* One limit over all workers: a shared counter, taken before the connection starts. */
        if (__atomic_add_fetch(w->a->open_total, 1, __ATOMIC_RELAXED) >
            w->a->cfg->max_connections) {
            __atomic_sub_fetch(w->a->open_total, 1, __ATOMIC_RELAXED);
            refuse(w, fd);
            continue;
        }
        conn_start(w, fd, &peer, len); /* TCP_NODELAY comes from the listener */
    }
}

static void on_drain_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = t->data;
    log_msg(LOG_WARN, "serve", "worker=%d event=drain_timeout closing=%lu", w->a->id, w->open);
    while (w->conns != NULL) {
        conn_close(w->conns, "drain_timeout");
    }
    ev_break(w->loop, EVBREAK_ALL);
}

static void on_drain(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)revents;
    struct worker *w = s->data;
    if (w->is_draining) {
        return;
    }
    w->is_draining = true;
    accept_watchers(w, false);
    ev_timer_stop(w->loop, &w->accept_pause);
    for (size_t i = 0; i < w->a->n_listen; i++) {
        close(w->a->listen_fds[i]);
    }
    ev_timer_init(&w->drain_timer, on_drain_timeout, (ev_tstamp)w->a->cfg->drain_timeout_s, 0.0);
    w->drain_timer.data = w;
    ev_timer_start(w->loop, &w->drain_timer);
    log_msg(LOG_DEBUG, "serve", "worker=%d event=draining open=%lu", w->a->id, w->open);
    maybe_exit(w);
}

int worker_run(const struct worker_args *a)
{
    struct worker w;
    memset(&w, 0, sizeof(w));
    w.a = a;
    w.loop = EV_DEFAULT;
    if (w.loop == NULL) {
        log_msg(LOG_ERROR, "serve", "worker=%d error=\"no event loop\"", a->id);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    ev_init(&w.accept_pause, on_accept_resume);
    w.accept_pause.data = &w;
    for (size_t i = 0; i < a->n_listen; i++) {
        ev_io_init(&w.accept_w[i], on_accept, a->listen_fds[i], EV_READ);
        w.accept_w[i].data = &w;
        ev_io_start(w.loop, &w.accept_w[i]);
    }
    if (!fleet_start(&w)) {
        return 1;
    }
    ev_signal_init(&w.sig_term, on_drain, SIGTERM);
    w.sig_term.data = &w;
    ev_signal_start(w.loop, &w.sig_term);
    ev_signal_init(&w.sig_int, on_drain, SIGINT);
    w.sig_int.data = &w;
    ev_signal_start(w.loop, &w.sig_int);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    ev_run(w.loop, 0);
    while (w.conns != NULL) {
        conn_close(w.conns, "shutdown");
    }
    if (w.fleet != NULL) {
        ev_timer_stop(w.loop, &w.fleet_stats);
        tlsr_fleet_cache_free(w.fleet);
    }
    upstream_store_release(&w);
    return 0;
}

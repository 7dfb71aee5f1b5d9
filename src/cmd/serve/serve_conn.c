/*
 * A connection's life in `tlsresume serve`'s worker, shared by serve_worker.c (accepting,
 * handshakes, timers) and serve_proxy.c (relaying): its two buffers, its watchers, its close
 * (the access log line, close_notify, lingering, the counters) and the accounting of its
 * early data.
 */
#include "serve_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "../cli/log.h"
#include "serve_client_auth.h"
#include "serve_upstream_store.h"

size_t buf_len(const struct buf *b)
{
    return b->end - b->start;
}

/* Makes sure the buffer has its memory before bytes are written into it. */
bool buf_ensure(struct buf *b)
{
    if (b->data == NULL) {
        b->data = malloc(BUF_SIZE);
    }
    return b->data != NULL;
}

/* Gives the memory back once the buffer is empty (or unconditionally when closing). */
void buf_release(struct buf *b, bool is_final)
{
    if (b->data != NULL && (is_final || b->start == b->end)) {
        OPENSSL_cleanse(b->data, b->high);
        free(b->data);
        b->data = NULL;
        b->start = 0;
        b->end = 0;
        b->high = 0;
    }
}

size_t buf_room(struct buf *b)
{
    if (b->data == NULL) {
        return BUF_SIZE;
    }
    if (b->start == b->end) {
        b->start = 0;
        b->end = 0;
    } else if (b->start > 0 && b->end == BUF_SIZE) {
        memmove(b->data, b->data + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
    }
    return BUF_SIZE - b->end;
}

void set_events(struct worker *w, ev_io *io, int fd, int events)
{
    if (events == 0) {
        ev_io_stop(w->loop, io);
        return;
    }
    if (ev_is_active(io) && io->events == events) {
        return;
    }
    ev_io_stop(w->loop, io);
    ev_io_set(io, fd, events);
    ev_io_start(w->loop, io);
}

void conn_peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
        port = ntohs(s4->sin_port);
        snprintf(out, cap, "%s:%u", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
        port = ntohs(s6->sin6_port);
        snprintf(out, cap, "[%s]:%u", host, port);
    } else {
        snprintf(out, cap, "unknown");
    }
}

/* The backend leg's handshake for the access log: resumed, full:WHY, or - (none, or plain). */
static const char *upstream_text(const struct conn *c)
{
    static const char *const full[] = {[UP_MISS_NONE] = "full",
                                       [UP_MISS_NO_SESSION] = "full:no_session",
                                       [UP_MISS_REFUSED] = "full:refused",
                                       [UP_MISS_UNREADABLE] = "full:unreadable",
                                       [UP_MISS_DISABLED] = "full:disabled"};
    return c->upstream == UP_RESUMED ? "resumed"
           : c->upstream == UP_FULL  ? full[c->upstream_miss]
                                     : "-";
}

/* Who issued the session a connection resumed: this fleet's serve ("self"), or another kind
 * of server on the ring's keys ("other": a 48-byte variant key, an accepted session context). */
static const char *issuer_text(const struct conn *c)
{
    if (!c->is_handshake_done || !SSL_session_reused(c->ssl)) {
        return "-";
    }
    return tlsr_ssl_resumed_foreign(c->ssl) ? "other" : "self";
}

static void access_log(struct conn *c, const char *end)
{
    if (!c->w->a->cfg->access_log) {
        return;
    }
    char peer[INET6_ADDRSTRLEN + 8];
    conn_peer_text(&c->peer, peer, sizeof(peer));
    const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
    char who[1200] = "-";
    if (c->is_handshake_done) {
        client_auth_identity(c->ssl, who, sizeof(who));
    }
    bool is_done = c->is_handshake_done;
    log_msg(LOG_INFO, "access",
            "worker=%d client=%s sni=%s proto=%s cipher=%s resumed=%s offered=%s miss=%s "
            "issuer=%s backend=%s "
            "upstream=%s client_cert=%s bytes_in=%llu bytes_out=%llu duration_ms=%.0f end=%s",
            c->w->a->id, peer, sni != NULL ? sni : "-", is_done ? SSL_get_version(c->ssl) : "-",
            is_done ? SSL_get_cipher_name(c->ssl) : "-",
            is_done ? tlsr_resumption_name(tlsr_ssl_resumption(c->ssl)) : "-",
            is_done ? tlsr_offer_name(tlsr_ssl_offer(c->ssl)) : "-",
            is_done ? tlsr_miss_name(tlsr_ssl_miss(c->ssl)) : "-", issuer_text(c),
            c->backend >= 0 ? c->w->a->backends[c->backend].name : "-", upstream_text(c), who,
            (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
            (ev_now(c->w->loop) - c->started) * 1000.0, end);
}

/* A closed connection's client socket, kept a moment: closing a socket with unread input sends
 * a reset, and a reset can destroy the last bytes we sent (an early answer to an upload). So
 * the socket is half-closed and its input discarded until the client closes, or 2 s pass. */
struct lingering {
    ev_io io;
    ev_timer timer;
    int fd;
};

static void linger_end(struct ev_loop *loop, struct lingering *l)
{
    ev_io_stop(loop, &l->io);
    ev_timer_stop(loop, &l->timer);
    close(l->fd);
    free(l);
}

static void on_linger_read(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct lingering *l = io->data;
    char sink[16384];
    for (int i = 0; i < 8; i++) {
        ssize_t n = recv(l->fd, sink, sizeof(sink), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            linger_end(loop, l);
            return;
        }
        if (n < 0) {
            return;
        }
    }
}

static void on_linger_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    linger_end(loop, t->data);
}

static void linger_close(struct worker *w, int fd)
{
    struct lingering *l = w->is_draining ? NULL : malloc(sizeof(*l));
    if (shutdown(fd, SHUT_WR) != 0 || l == NULL) {
        free(l);
        close(fd);
        return;
    }
    l->fd = fd;
    ev_io_init(&l->io, on_linger_read, fd, EV_READ);
    l->io.data = l;
    ev_io_start(w->loop, &l->io);
    ev_timer_init(&l->timer, on_linger_timeout, 2.0, 0.0);
    l->timer.data = l;
    ev_timer_start(w->loop, &l->timer);
}

void maybe_exit(struct worker *w)
{
    if (w->is_draining && w->open == 0) {
        ev_break(w->loop, EVBREAK_ALL);
    }
}

void conn_close(struct conn *c, const char *why)
{
    struct worker *w = c->w;
    if (!c->is_handshake_done) {
        count_early(c); /* a replayed flight never finishes its handshake */
    }
    access_log(c, why);
    ev_io_stop(w->loop, &c->cio);
    ev_io_stop(w->loop, &c->bio);
    ev_timer_stop(w->loop, &c->timer);
    if (c->is_handshake_done && !c->is_client_shut) {
        /* One non-blocking close_notify, best effort, whatever ended the connection (the
         * backend, a reset, a timeout). The session stays resumable either way: the library
         * refuses OpenSSL's removal of a session whose handshake finished. */
        if (SSL_shutdown(c->ssl) < 0) {
            SSL_set_shutdown(c->ssl, SSL_get_shutdown(c->ssl) | SSL_SENT_SHUTDOWN);
        }
    }
    if (c->bssl != NULL && c->upstream != UP_NONE) {
        if (c->is_backend_failed) {
            /* A fatal TLS error: its session is known bad (RFC 5246 §7.2.2). */
            upstream_store_forget(c, SSL_version(c->bssl) == TLS1_3_VERSION);
        } else {
            if (!c->is_backend_shut) {
                (void)SSL_shutdown(c->bssl); /* one close_notify to the backend, best effort */
            }
            /* However else it ended, its session stays good (OpenSSL would mark a session not
             * resumable when its SSL is freed without a close_notify sent). */
            SSL_set_shutdown(c->bssl, SSL_get_shutdown(c->bssl) | SSL_SENT_SHUTDOWN);
        }
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    SSL_free(c->bssl);
    SSL_SESSION_free(c->offered);
    /* Linger only when client bytes may still be unread: after the client's own end of
     * stream, or its reset, nothing is left to turn into a reset, and the common close stays
     * cheap. */
    if (!c->is_handshake_done || c->is_client_reset ||
        (c->is_client_eof && !c->is_upload_dropped)) {
        close(c->cfd);
    } else {
        linger_close(w, c->cfd);
    }
    if (c->bfd >= 0) {
        close(c->bfd);
    }
    metrics_add(w->a->metrics, M_BYTES_C2B, c->bytes_in);
    metrics_add(w->a->metrics, M_BYTES_B2C, c->bytes_out);
    metrics_sub(w->a->metrics, M_CONN_OPEN, 1);
    __atomic_sub_fetch(w->a->open_total, 1, __ATOMIC_RELAXED);
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    w->open--;
    backend_detach(c);
    /* Plaintext passed through the buffers: wipe what was used (wiping all 32 KiB of every
     * connection showed as the top user-space cost of a resumed handshake). */
    buf_release(&c->c2b, true);
    buf_release(&c->b2c, true);
    free(c);
    maybe_exit(w);
}

/* Counts what became of early data on a finished handshake. */
void count_early(struct conn *c)
{
    static const enum metric by_outcome[] = {
        [TLSR_EARLY_ACCEPTED] = M_EARLY_ACCEPTED,
        [TLSR_EARLY_REJECTED_REPLAY] = M_EARLY_REPLAY,
        [TLSR_EARLY_REJECTED_UNAVAILABLE] = M_EARLY_UNAVAILABLE,
        [TLSR_EARLY_REJECTED_STARTING] = M_EARLY_STARTING,
        [TLSR_EARLY_REJECTED_OTHER] = M_EARLY_OTHER,
    };
    enum tlsr_early_outcome o = tlsr_ssl_early_outcome(c->ssl);
    if (o == TLSR_EARLY_NOT_OFFERED || c->is_early_counted) {
        return;
    }
    c->is_early_counted = true;
    metrics_add(c->w->a->metrics, M_EARLY_OFFERED, 1);
    metrics_add(c->w->a->metrics, by_outcome[o], 1);
    metrics_add(c->w->a->metrics, M_EARLY_BYTES, c->early_bytes);
}

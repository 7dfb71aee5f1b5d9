/*
 * Relaying for `tlsresume serve`'s worker: the two fixed 16 KiB buffers of a connection, the
 * backend connection (started during the handshake when early data arrives), the pump that
 * moves bytes both ways with back-pressure and half-closes, and the PROXY v2 header.
 */
#include "serve_conn.h"
#include "serve_client_auth.h"
#include "serve_upstream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "../cli/log.h"

/* Reads decrypted client bytes into c2b while there is room; false on a fatal error. */
bool client_read(struct conn *c, bool *progress)
{
    c->is_client_full = false;
    while (!c->is_client_eof) {
        if (buf_room(&c->c2b) == 0) {
            c->is_client_full = true;
            break;
        }
        if (!buf_ensure(&c->c2b)) {
            return false;
        }
        size_t room = buf_room(&c->c2b);
        int n = SSL_read(c->ssl, c->c2b.data + c->c2b.end, (int)room);
        if (n > 0) {
            c->c2b.end += (size_t)n;
            c->c2b.high = c->c2b.end > c->c2b.high ? c->c2b.end : c->c2b.high;
            c->bytes_in += (uint64_t)n;
            c->read_wants = 0;
            *progress = true;
            if (!SSL_has_pending(c->ssl)) {
                /* OpenSSL reads ahead: with nothing buffered, its last read(2) took all the
                 * socket held, and another would find nothing (the watcher says when). */
                return true;
            }
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c->read_wants = e;
            return true;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->is_client_eof = true;
            *progress = true;
            return true;
        }
        if (e == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE)) {
            c->is_client_reset = true;
        }
        return false;
    }
    return true;
}

/* Writes b2c to the client; false on a fatal error. */
static bool client_write(struct conn *c, bool *progress)
{
    while (buf_len(&c->b2c) > 0) {
        int n = SSL_write(c->ssl, c->b2c.data + c->b2c.start, (int)buf_len(&c->b2c));
        if (n > 0) {
            c->b2c.start += (size_t)n;
            c->write_wants = 0;
            *progress = true;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c->write_wants = e;
            return true;
        }
        return false;
    }
    if (c->is_backend_eof && !c->is_client_shut && c->is_backend_no_close_notify) {
        c->is_client_shut = true; /* no close_notify: the client sees the truncation too */
        return true;
    }
    if (c->is_backend_eof && !c->is_client_shut) {
        int r = SSL_shutdown(c->ssl);
        if (r >= 0) {
            c->is_client_shut = true;
            *progress = true;
        } else if (SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_WRITE) {
            c->write_wants = SSL_ERROR_WANT_WRITE;
        } else {
            c->is_client_shut = true;
        }
    }
    return true;
}

/* What one backend send or receive did, over TCP or the backend's TLS alike. */
enum io { IO_OK, IO_AGAIN, IO_EOF, IO_RESET, IO_FATAL };

static enum io tls_io(struct conn *c, int n, int *wants)
{
    int e = SSL_get_error(c->bssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *wants = e;
        return IO_AGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return IO_EOF; /* its close_notify (a write after it also reports this) */
    }
    if (e == SSL_ERROR_SYSCALL && (errno == EPIPE || errno == ECONNRESET)) {
        return IO_RESET;
    }
    unsigned long err = ERR_peek_last_error();
    if (e == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        /* The backend's stream ended without close_notify: what came is delivered, and the
         * client sees the same end (no close_notify either), never a clean one. */
        ERR_clear_error();
        c->is_backend_no_close_notify = true;
        return IO_RESET;
    }
    char why[256];
    snprintf(why, sizeof(why), "%s", errno != 0 ? strerror(errno) : "connection lost");
    if (err != 0) {
        ERR_error_string_n(err, why, sizeof(why));
    }
    ERR_clear_error();
    log_msg(LOG_WARN, "backend", "backend=%s error=\"tls: %s\"", c->w->a->backends[c->backend].name,
            why);
    c->is_backend_failed = true;
    return IO_FATAL;
}

static enum io backend_send(struct conn *c, size_t *n)
{
    size_t len = buf_len(&c->c2b);
    const uint8_t *p = c->c2b.data + c->c2b.start;
    if (c->bssl != NULL) {
        ERR_clear_error();
        int r = SSL_write(c->bssl, p, (int)len);
        if (r > 0) {
            *n = (size_t)r;
            c->b_write_wants = 0;
            return IO_OK;
        }
        return tls_io(c, r, &c->b_write_wants);
    }
    ssize_t r = send(c->bfd, p, len, MSG_NOSIGNAL);
    if (r > 0) {
        *n = (size_t)r;
        return IO_OK;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return IO_AGAIN;
    }
    return r < 0 && (errno == EPIPE || errno == ECONNRESET) ? IO_RESET : IO_FATAL;
}

static enum io backend_recv(struct conn *c, size_t *n)
{
    uint8_t *p = c->b2c.data + c->b2c.end;
    size_t room = buf_room(&c->b2c);
    if (c->bssl != NULL) {
        ERR_clear_error();
        int r = SSL_read(c->bssl, p, (int)room);
        if (r > 0) {
            *n = (size_t)r;
            c->b_read_wants = 0;
            return IO_OK;
        }
        return tls_io(c, r, &c->b_read_wants);
    }
    ssize_t r = recv(c->bfd, p, room, 0);
    if (r > 0) {
        *n = (size_t)r;
        return IO_OK;
    }
    if (r == 0) {
        return IO_EOF;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return IO_AGAIN;
    }
    return errno == ECONNRESET ? IO_RESET : IO_FATAL;
}

/* The client ended its stream: the backend's ends too (TCP half-close, or close_notify). */
static void backend_shut(struct conn *c, bool *progress)
{
    if (c->bssl == NULL) {
        shutdown(c->bfd, SHUT_WR);
        c->is_backend_shut = true;
        *progress = true;
        return;
    }
    ERR_clear_error();
    int r = SSL_shutdown(c->bssl);
    if (r < 0 && SSL_get_error(c->bssl, r) == SSL_ERROR_WANT_WRITE) {
        c->b_write_wants = SSL_ERROR_WANT_WRITE;
        return;
    }
    c->is_backend_shut = true;
    *progress = true;
}

/* Moves c2b to the backend and, when is_read, the backend into b2c; false on a fatal error. */
static bool backend_io(struct conn *c, bool *progress, bool is_read)
{
    while (buf_len(&c->c2b) > 0) {
        size_t n = 0;
        enum io r = backend_send(c, &n);
        if (r == IO_OK) {
            c->c2b.start += n;
            c->is_backend_blocked = false;
            *progress = true;
            continue;
        }
        if (r == IO_AGAIN) {
            c->is_backend_blocked = true;
            break;
        }
        if (r == IO_RESET || r == IO_EOF) {
            /* The backend stopped reading (e.g. it answered an upload early): drop the
             * client's bytes but still deliver everything the backend sends. */
            c->is_upload_dropped = true;
            c->is_client_eof = true;
            c->is_backend_shut = true;
            c->c2b.start = c->c2b.end = 0;
            *progress = true;
            break;
        }
        return false;
    }
    if (c->is_client_eof && buf_len(&c->c2b) == 0 && !c->is_backend_shut) {
        backend_shut(c, progress);
    }
    if (!is_read) {
        return true;
    }
    c->is_backend_full = false;
    while (!c->is_backend_eof) {
        if (buf_room(&c->b2c) == 0) {
            c->is_backend_full = true;
            break;
        }
        if (!buf_ensure(&c->b2c)) {
            return false;
        }
        size_t n = 0;
        enum io r = backend_recv(c, &n);
        if (r == IO_OK) {
            c->b2c.end += n;
            c->b2c.high = c->b2c.end > c->b2c.high ? c->b2c.end : c->b2c.high;
            c->bytes_out += (uint64_t)n;
            *progress = true;
            if (c->bssl != NULL && !SSL_has_pending(c->bssl)) {
                break; /* as in client_read: read ahead took all the socket held */
            }
            continue;
        }
        if (r == IO_AGAIN) {
            break;
        }
        if (r == IO_EOF || r == IO_RESET) {
            /* What came before a reset is delivered; then the connection ends. */
            c->is_backend_eof = true;
            *progress = true;
            break;
        }
        return false;
    }
    return true;
}

int want_events(int wants, int dflt)
{
    if (wants == SSL_ERROR_WANT_READ) {
        return EV_READ;
    }
    if (wants == SSL_ERROR_WANT_WRITE) {
        return EV_WRITE;
    }
    return dflt;
}

/* Whether a connection that failed on the client's side had in fact ended: the client reset
 * after our close_notify, with everything delivered (clients such as `openssl s_time` close
 * that way). */
static bool is_client_done(const struct conn *c)
{
    return c->is_client_reset && c->is_client_shut && c->is_backend_eof && buf_len(&c->b2c) == 0;
}

void proxy(struct conn *c, int sides)
{
    bool progress = true;
    bool any = false;
    for (int rounds = 0; progress && rounds < 64; rounds++) {
        progress = false;
        if (c->is_client_full) {
            sides |= PUMP_CLIENT;
        }
        if (c->is_backend_full) {
            sides |= PUMP_BACKEND;
        }
        if (((sides & PUMP_CLIENT) != 0 && !client_read(c, &progress)) ||
            !backend_io(c, &progress, (sides & PUMP_BACKEND) != 0) || !client_write(c, &progress)) {
            if (is_client_done(c)) {
                conn_close(c, "done");
                return;
            }
            metrics_add(c->w->a->metrics, M_PROXY_ERRORS, 1);
            conn_close(c, "error");
            return;
        }
        sides = 0; /* read again only a side that stopped at a full buffer */
        any = any || progress;
    }
    if (c->is_backend_no_close_notify && buf_len(&c->b2c) == 0) {
        conn_close(c,
                   "backend_no_close_notify"); /* all delivered; the client sees a FIN, no more */
        return;
    }
    if (c->is_client_eof && c->is_backend_eof && buf_len(&c->c2b) == 0 && buf_len(&c->b2c) == 0 &&
        c->is_client_shut) {
        conn_close(c, "done");
        return;
    }
    if (any) {
        ev_timer_again(c->w->loop, &c->timer);
    }
    buf_release(&c->c2b, false);
    buf_release(&c->b2c, false);
    int cev = 0;
    if (!c->is_client_eof && buf_room(&c->c2b) > 0) {
        cev |= want_events(c->read_wants, EV_READ);
    }
    if (buf_len(&c->b2c) > 0 || (c->is_backend_eof && !c->is_client_shut)) {
        cev |= want_events(c->write_wants, EV_WRITE);
    }
    int bev = 0;
    if (!c->is_backend_eof && buf_room(&c->b2c) > 0) {
        bev |= want_events(c->b_read_wants, EV_READ);
    }
    if (buf_len(&c->c2b) > 0 || (c->is_client_eof && !c->is_backend_shut)) {
        bev |= want_events(c->b_write_wants, EV_WRITE);
    }
    set_events(c->w, &c->cio, c->cfd, cev);
    set_events(c->w, &c->bio, c->bfd, bev);
    if (c->bssl != NULL && !c->is_backend_eof && buf_room(&c->b2c) > 0 && c->b_read_wants == 0 &&
        SSL_has_pending(c->bssl)) {
        ev_feed_event(c->w->loop, &c->bio, EV_READ); /* as for the client, below */
    }
    if (!c->is_client_eof && buf_room(&c->c2b) > 0 && c->read_wants == 0 &&
        SSL_has_pending(c->ssl)) {
        /* Decrypted bytes wait inside OpenSSL and the socket may never become readable
         * again: come back on the next loop iteration (stopping the watcher cancels this). */
        ev_feed_event(c->w->loop, &c->cio, EV_READ);
    }
}

/* The PROXY v2 TLV that marks a connection whose first bytes were TLS 1.3 early data (a type in
 * the custom range of proxy-protocol.txt §2.2.7), so that an HTTP backend can answer 425 Too
 * Early (RFC 8470) to requests that are not safe to replay. */
#define PP2_TYPE_EARLY_DATA 0xE0

/* PROXY protocol v2 header (haproxy's proxy-protocol.txt §2.2): client and our address, and
 * the early data TLV when is_early. */
void proxy_header(struct conn *c, bool is_early)
{
    if (c->is_header_sent) {
        return;
    }
    c->is_header_sent = true;
    static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
    struct sockaddr_storage local = c->local;
    socklen_t local_len = sizeof(local);
    if ((!c->has_local && getsockname(c->cfd, (struct sockaddr *)&local, &local_len) != 0) ||
        local.ss_family != c->peer.ss_family) {
        return;
    }
    if (!buf_ensure(&c->c2b) || buf_room(&c->c2b) < PROXY_HEADER_MAX) {
        return; /* callers keep the room: this is never met */
    }
    uint8_t *p = c->c2b.data + c->c2b.end;
    memcpy(p, sig, sizeof(sig));
    p[12] = 0x21; /* version 2, PROXY */
    size_t n = 16;
    if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *src = (const struct sockaddr_in *)&c->peer;
        const struct sockaddr_in *dst = (const struct sockaddr_in *)&local;
        p[13] = 0x11; /* TCP over IPv4 */
        memcpy(p + n, &src->sin_addr, 4);
        memcpy(p + n + 4, &dst->sin_addr, 4);
        memcpy(p + n + 8, &src->sin_port, 2);
        memcpy(p + n + 10, &dst->sin_port, 2);
        n += 12;
    } else {
        const struct sockaddr_in6 *src = (const struct sockaddr_in6 *)&c->peer;
        const struct sockaddr_in6 *dst = (const struct sockaddr_in6 *)&local;
        p[13] = 0x21; /* TCP over IPv6 */
        memcpy(p + n, &src->sin6_addr, 16);
        memcpy(p + n + 16, &dst->sin6_addr, 16);
        memcpy(p + n + 32, &src->sin6_port, 2);
        memcpy(p + n + 34, &dst->sin6_port, 2);
        n += 36;
    }
    if (is_early) {
        p[n] = PP2_TYPE_EARLY_DATA;
        p[n + 1] = 0;
        p[n + 2] = 1;
        p[n + 3] = 1;
        n += 4;
    }
    if (client_auth_is_on(c->w->a->cfg)) {
        n += client_auth_tlvs(c->ssl, p + n, BUF_SIZE - c->c2b.end - n); /* the identity */
    }
    p[14] = (uint8_t)((n - 16) >> 8);
    p[15] = (uint8_t)(n - 16);
    c->c2b.end += n;
    c->c2b.high = c->c2b.end;
}

static void on_backend(struct ev_loop *loop, ev_io *io, int revents);

/* Connects to the backend picked for c (or the next untried one); false when none could be
 * connected to and the connection is closed. */
bool backend_connect(struct conn *c, bool is_early)
{
    const struct worker_args *a = c->w->a;
    for (;;) {
        int i = backend_pick(c->w, c->backends_tried);
        if (i < 0) {
            metrics_add(a->metrics, M_BACKEND_FAILED, 1);
            conn_close(c, "backend_error");
            return false;
        }
        backend_attach(c, i);
        metrics_add(a->metrics, (enum metric)(M_BK_CONNECTS + i), 1);
        const struct backend_addr *b = &a->backends[i];
        c->bfd = socket(b->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->bfd < 0) {
            log_msg(LOG_ERROR, "backend", "backend=%s error=\"socket: %s\"", b->name,
                    strerror(errno));
            metrics_add(a->metrics, M_BACKEND_FAILED, 1);
            conn_close(c, "backend_error");
            return false;
        }
        int one = 1;
        setsockopt(c->bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c->bfd, (const struct sockaddr *)&b->addr, b->len) == 0 ||
            errno == EINPROGRESS) {
            break;
        }
        char why[160];
        snprintf(why, sizeof(why), "connect: %s", strerror(errno));
        backend_mark_down(c, why);
        close(c->bfd);
        c->bfd = -1;
    }
    ev_io_init(&c->bio, on_backend, c->bfd, EV_WRITE);
    c->bio.data = c;
    ev_io_start(c->w->loop, &c->bio);
    if (is_early) {
        return true; /* the handshake goes on under its own timer */
    }
    c->state = ST_CONNECTING;
    c->timer.repeat = (ev_tstamp)a->cfg->backend_connect_timeout_s;
    ev_timer_again(c->w->loop, &c->timer);
    return true;
}

bool backend_retry(struct conn *c, const char *error)
{
    backend_mark_down(c, error);
    ev_io_stop(c->w->loop, &c->bio);
    SSL_free(c->bssl); /* the TLS leg never carried a byte of the client's */
    c->bssl = NULL;
    if (c->bfd >= 0) {
        close(c->bfd);
        c->bfd = -1;
    }
    /* Nothing reached the backend yet (the connect never finished): c2b, with the PROXY
     * header and the client's first bytes, goes to the next one whole. */
    bool is_early = c->state == ST_HANDSHAKE;
    if (!backend_connect(c, is_early)) {
        return false;
    }
    if (!is_early) {
        backend_first_send(c);
    }
    return true;
}

/* The connect failed (err): the next backend, or the connection closed. */
static void backend_failed(struct conn *c, int err)
{
    char why[160];
    snprintf(why, sizeof(why), "connect: %s", strerror(err));
    (void)backend_retry(c, why);
}

/* Sends what c2b holds (early data) to the backend while the handshake goes on. */
void early_flush(struct conn *c)
{
    while (buf_len(&c->c2b) > 0) {
        ssize_t n = send(c->bfd, c->c2b.data + c->c2b.start, buf_len(&c->c2b), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        c->c2b.start += (size_t)n;
    }
    set_events(c->w, &c->bio, c->bfd, buf_len(&c->c2b) > 0 ? EV_WRITE : 0);
    if (c->is_early_blocked && buf_len(&c->c2b) == 0) {
        c->is_early_blocked = false;
        ev_feed_event(c->w->loop, &c->cio, EV_READ); /* read the rest of the early data */
    }
}

/* Whether the backend connect has finished well; closes the connection when it failed. */
static bool backend_connected(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        backend_failed(c, err != 0 ? err : errno);
        return false;
    }
    c->is_backend_up = true;
    return true;
}

static void upstream_begin(struct conn *c);

void backend_first_send(struct conn *c)
{
    if (c->w->a->up != NULL) {
        /* The TLS handshake starts at once: a backend on this host has often accepted within
         * connect(), and a ClientHello that cannot go yet waits for writability. */
        upstream_begin(c);
        return;
    }
    bool progress = false;
    if (!client_read(c, &progress)) {
        conn_close(c, "error");
        return;
    }
    ssize_t n = -1;
    errno = EAGAIN;
    if (buf_len(&c->c2b) > 0) {
        n = send(c->bfd, c->c2b.data + c->c2b.start, buf_len(&c->c2b), MSG_NOSIGNAL);
    }
    if (n > 0) {
        c->c2b.start += (size_t)n;
        c->is_backend_up = true;
        c->state = ST_PROXY;
        c->timer.repeat = (ev_tstamp)c->w->a->cfg->idle_timeout_s;
        ev_timer_again(c->w->loop, &c->timer);
        proxy(c, c->is_client_full ? PUMP_CLIENT : 0);
        return;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        backend_failed(c, errno); /* refused: send() reports what the connect met */
        return;
    }
    /* Still connecting (or nothing to send yet): the backend watcher waits for writability;
     * client bytes go on into c2b meanwhile. An empty buffer is not held while waiting. */
    buf_release(&c->c2b, false);
    set_events(c->w, &c->cio, c->cfd,
               !c->is_client_eof && buf_room(&c->c2b) > 0 ? want_events(c->read_wants, EV_READ)
                                                          : 0);
}

/* --backend-tls: steps the backend's handshake; relays once it is done, goes to the next
 * backend (or closes) when it failed. */
static void upstream_step(struct conn *c)
{
    char why[512];
    int r = upstream_handshake(c, why, sizeof(why));
    if (r == -2) {
        /* Refused for what this client asked (its ALPN protocol), not for what the backend
         * is: the backend stays up, and this connection ends. */
        log_msg(LOG_WARN, "backend", "backend=%s error=\"%s\"", c->w->a->backends[c->backend].name,
                why);
        conn_close(c, "backend_refused");
        return;
    }
    if (r < 0) {
        (void)backend_retry(c, why);
        return;
    }
    if (r == 0) {
        set_events(c->w, &c->bio, c->bfd, want_events(c->b_read_wants, EV_READ));
        return;
    }
    c->state = ST_PROXY;
    c->timer.repeat = (ev_tstamp)c->w->a->cfg->idle_timeout_s;
    ev_timer_again(c->w->loop, &c->timer);
    proxy(c, PUMP_CLIENT | PUMP_BACKEND); /* the client's bytes waited in c2b */
}

/* --backend-tls: the backend's SSL on the connected (or connecting) socket, then its
 * handshake. */
static void upstream_begin(struct conn *c)
{
    char why[512];
    if (!upstream_start(c, why, sizeof(why))) {
        (void)backend_retry(c, why);
        return;
    }
    c->state = ST_UPSTREAM; /* still under the connect timeout */
    upstream_step(c);
}

static void on_backend(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    struct conn *c = io->data;
    if (c->state == ST_HANDSHAKE) {
        /* Connected for early data before the handshake finished. */
        if (!c->is_backend_up && !backend_connected(c)) {
            return;
        }
        early_flush(c);
        return;
    }
    if (c->state == ST_UPSTREAM) {
        upstream_step(c);
        return;
    }
    /* Writable only: read too when a read waits for writability (SSL_ERROR_WANT_WRITE). */
    int sides =
        (revents & EV_READ) != 0 || c->b_read_wants == SSL_ERROR_WANT_WRITE ? PUMP_BACKEND : 0;
    if (c->state == ST_CONNECTING) {
        if (!c->is_backend_up && !backend_connected(c)) {
            return;
        }
        if (c->w->a->up != NULL) {
            upstream_begin(c);
            return;
        }
        c->state = ST_PROXY;
        c->timer.repeat = (ev_tstamp)c->w->a->cfg->idle_timeout_s;
        ev_timer_again(c->w->loop, &c->timer);
        sides = PUMP_CLIENT | PUMP_BACKEND; /* both may hold bytes from the wait */
    }
    proxy(c, sides);
}

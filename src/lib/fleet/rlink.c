/*
 * One Redis connection's byte stream: TCP, a Unix socket, or TLS over TCP (rediss://), non-
 * blocking on a libev loop, with hiredis's reply reader and command formatter (fleet_int.h).
 *
 * Why not hiredis's own asynchronous context: Debian 12's hiredis 0.14 reads and writes its
 * socket itself and has no TLS (that came with hiredis 1.0), and managed Redis offerings keep
 * TLS always on. Its reader and formatter are the protocol; this file is the transport that
 * redis.c drives (connect, TLS handshake, write queue, replies to callbacks in order).
 *
 * TLS: the server's certificate is always verified (the CA file given, or the system's), and
 * its name checked against the server name (the endpoint's host unless another is given); a
 * client certificate is sent when one is configured. A failed verification is an error that
 * names the reason, and the connection is not used (redis.c logs it and retries with backoff).
 *
 * Callbacks run in the order commands were sent; each gets its reply (freed after it returns)
 * or NULL when the link closes first. A callback may send commands or close the link: closing
 * from a callback is deferred until the callbacks of that read have run.
 *
 * Threat: a Redis endpoint that is not who it claims (verified TLS), a hostile reply stream
 * (hiredis's reader; replies are checked by their users), a link that stops (redis.c's stall
 * timer closes it).
 */
#include "fleet_int.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define READ_CHUNK 16384

struct rlink_call {
    struct rlink_call *next;
    redisCallbackFn *fn;
    void *priv;
};

enum { PHASE_TCP = 0, PHASE_TLS, PHASE_UP };

struct rlink {
    struct ev_loop *loop;
    int fd;
    SSL *ssl;
    int phase;         /* connecting, TLS handshake, up */
    bool is_connected; /* phase == PHASE_UP */
    bool wants_write;  /* TLS: the last operation needs the socket writable */
    int in_callback;   /* depth of calls into this link: a close inside one is deferred */
    bool is_closed;    /* failed or closed: nothing more is sent or read */
    bool is_released;  /* the owner closed it: freed once no call is inside */
    ev_io rio;
    ev_io wio;
    redisReader *reader;
    char *out; /* formatted commands not yet written */
    size_t out_len;
    size_t out_cap;
    struct rlink_call *head; /* waiting for their replies, oldest first */
    struct rlink_call *tail;
    tlsr__rlink_event_fn on_event;
    void *arg;
};

static void fail_link(struct rlink *l, const char *why);

static void link_events(struct rlink *l)
{
    /* Writable: connecting (the connect's end shows as writable); a TLS operation that needs
     * it; or, once up, commands to write. Not otherwise: an idle writable socket would spin. */
    bool want_w = l->phase == PHASE_TCP || l->wants_write || (l->is_connected && l->out_len > 0);
    if (want_w && !ev_is_active(&l->wio)) {
        ev_io_start(l->loop, &l->wio);
    } else if (!want_w && ev_is_active(&l->wio)) {
        ev_io_stop(l->loop, &l->wio);
    }
    if (l->is_connected && !ev_is_active(&l->rio)) {
        ev_io_start(l->loop, &l->rio);
    }
}

/* The reason of the last TLS failure, for a log line. */
static void tls_reason(SSL *ssl, int rc, char *out, size_t cap)
{
    long verify = SSL_get_verify_result(ssl);
    unsigned long e = ERR_peek_last_error();
    if (verify != X509_V_OK) {
        snprintf(out, cap, "TLS: the server's certificate did not verify: %s",
                 X509_verify_cert_error_string(verify));
    } else if (e != 0) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(out, cap, "TLS: %s", buf);
    } else {
        snprintf(out, cap, "TLS: handshake failed (%d)", SSL_get_error(ssl, rc));
    }
    ERR_clear_error();
}

/* One TLS step (handshake, read or write): 1 done, 0 wait, -1 failed (why filled). */
static int tls_step(struct rlink *l, int rc, char *why, size_t cap)
{
    if (rc > 0) {
        l->wants_write = false;
        return 1;
    }
    int err = SSL_get_error(l->ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
        l->wants_write = false;
        return 0;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
        l->wants_write = true;
        return 0;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
        snprintf(why, cap, "connection closed");
    } else if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        snprintf(why, cap, "%s", rc == 0 ? "connection closed" : strerror(errno));
    } else {
        tls_reason(l->ssl, rc, why, cap);
    }
    return -1;
}

/* One TLS read or write of up to len bytes: the bytes moved, 0 when it must wait for the
 * socket, -1 when the link failed (fail_link has run). */
static ssize_t tls_io(struct rlink *l, bool is_write, void *buf, size_t len)
{
    ERR_clear_error();
    int cap = len > INT32_MAX ? INT32_MAX : (int)len;
    int rc = is_write ? SSL_write(l->ssl, buf, cap) : SSL_read(l->ssl, buf, cap);
    char why[256];
    int st = tls_step(l, rc, why, sizeof(why));
    if (st < 0) {
        fail_link(l, why);
        return -1;
    }
    return st == 0 ? 0 : rc;
}

/* Connected at the TCP level: on to TLS, or ready. */
static void established(struct rlink *l)
{
    l->phase = l->ssl != NULL ? PHASE_TLS : PHASE_UP;
    if (l->ssl != NULL) {
        ERR_clear_error();
        char why[256];
        int st = tls_step(l, SSL_connect(l->ssl), why, sizeof(why));
        if (st < 0) {
            fail_link(l, why);
            return;
        }
        if (st == 0) {
            ev_io_start(l->loop, &l->rio); /* the handshake reads too */
            link_events(l);
            return;
        }
    }
    l->phase = PHASE_UP;
    l->is_connected = true;
    link_events(l);
}

static void flush_out(struct rlink *l)
{
    while (l->out_len > 0) {
        ssize_t n;
        if (l->ssl != NULL) {
            n = tls_io(l, true, l->out, l->out_len);
            if (n < 0) {
                return;
            }
            if (n == 0) {
                break;
            }
        } else {
            n = send(l->fd, l->out, l->out_len, MSG_NOSIGNAL);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                break;
            }
            if (n < 0) {
                fail_link(l, strerror(errno));
                return;
            }
        }
        memmove(l->out, l->out + n, l->out_len - (size_t)n);
        l->out_len -= (size_t)n;
    }
    link_events(l);
}

static void free_link(struct rlink *l)
{
    if (l->ssl != NULL) {
        SSL_free(l->ssl);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    if (l->reader != NULL) {
        redisReaderFree(l->reader);
    }
    tlsr__free(l->out);
    tlsr__free(l);
}

/* Runs every waiting callback with NULL and stops the watchers; the caller frees. */
static void cancel_all(struct rlink *l)
{
    ev_io_stop(l->loop, &l->rio);
    ev_io_stop(l->loop, &l->wio);
    l->in_callback++;
    while (l->head != NULL) {
        struct rlink_call *c = l->head;
        l->head = c->next;
        c->fn(NULL, NULL, c->priv);
        tlsr__free(c);
    }
    l->tail = NULL;
    l->in_callback--;
}

/* Called inside a guarded call (enter/leave): the owner's close frees nothing until leave. */
static void fail_link(struct rlink *l, const char *why)
{
    if (l->is_closed) {
        return;
    }
    l->is_closed = true; /* nothing more is sent or read */
    cancel_all(l);
    if (l->on_event != NULL) {
        l->on_event(l->arg, why); /* redis.c closes it (tlsr__rlink_close) */
    }
}

static void enter(struct rlink *l)
{
    l->in_callback++;
}

/* Leaves a guarded call; false when the link was freed (the owner closed it inside). */
static bool leave(struct rlink *l)
{
    if (--l->in_callback == 0 && l->is_released) {
        free_link(l);
        return false;
    }
    return true;
}

static void read_replies(struct rlink *l)
{
    char buf[READ_CHUNK];
    for (;;) {
        ssize_t n;
        if (l->ssl != NULL) {
            n = tls_io(l, false, buf, sizeof(buf));
            if (n < 0) {
                return;
            }
            if (n == 0) {
                break;
            }
        } else {
            n = recv(l->fd, buf, sizeof(buf), 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                break;
            }
            if (n <= 0) {
                fail_link(l, n == 0 ? "connection closed" : strerror(errno));
                return;
            }
        }
        if (redisReaderFeed(l->reader, buf, (size_t)n) != REDIS_OK) {
            fail_link(l, "bad reply from Redis");
            return;
        }
    }
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
            fail_link(l, "malformed reply from Redis");
            return;
        }
        if (reply == NULL) {
            break;
        }
        struct rlink_call *c = l->head;
        if (c == NULL) {
            freeReplyObject(reply); /* a reply nothing asked for */
            fail_link(l, "unexpected reply from Redis");
            return;
        }
        l->head = c->next;
        if (l->head == NULL) {
            l->tail = NULL;
        }
        c->fn(NULL, reply, c->priv);
        freeReplyObject(reply);
        tlsr__free(c);
        if (l->is_closed) {
            break;
        }
    }
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct rlink *l = w->data;
    enter(l);
    if (l->is_closed) {
        /* nothing: the owner closes it */
    } else if (l->phase == PHASE_TLS) {
        established(l); /* a TLS handshake waiting to read */
    } else if (l->phase == PHASE_UP) {
        read_replies(l);
        if (!l->is_closed && l->wants_write) {
            flush_out(l);
        }
    }
    (void)leave(l);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct rlink *l = w->data;
    enter(l);
    if (!l->is_closed && l->phase == PHASE_TCP) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            fail_link(l, strerror(err != 0 ? err : errno));
        } else {
            established(l);
        }
    } else if (!l->is_closed && l->phase == PHASE_TLS) {
        established(l);
    } else if (!l->is_closed && l->phase == PHASE_UP) {
        bool was_waiting = l->wants_write;
        flush_out(l);
        if (!l->is_closed && was_waiting && !l->wants_write) {
            read_replies(l); /* a TLS read that needed a write */
        }
    }
    (void)leave(l);
}

static int connect_socket(const struct endpoint *ep, char *why, size_t cap)
{
    if (ep->path[0] != '\0') {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ep->path);
        if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 &&
                       errno != EINPROGRESS && errno != EAGAIN)) {
            snprintf(why, cap, "%s", strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            return -1;
        }
        return fd;
    }
    char port[8];
    snprintf(port, sizeof(port), "%d", ep->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(ep->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(why, cap, "%s: %s", ep->host, gai_strerror(gai));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            continue;
        }
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
            break;
        }
        snprintf(why, cap, "%s", strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

struct rlink *tlsr__rlink_open(struct ev_loop *loop, const struct endpoint *ep, SSL_CTX *tls,
                               const char *tls_name, tlsr__rlink_event_fn on_event, void *arg,
                               char *why, size_t cap)
{
    struct rlink *l = tlsr__calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(why, cap, "out of memory");
        return NULL;
    }
    l->loop = loop;
    l->on_event = on_event;
    l->arg = arg;
    l->fd = connect_socket(ep, why, cap);
    l->reader = redisReaderCreate();
    if (l->fd < 0 || l->reader == NULL) {
        if (l->reader == NULL) {
            snprintf(why, cap, "out of memory");
        }
        free_link(l);
        return NULL;
    }
    if (tls != NULL) {
        const char *name = tls_name != NULL ? tls_name : ep->host;
        unsigned char ip[16];
        bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
        l->ssl = SSL_new(tls);
        /* A name is sent (SNI) and must be in the certificate; an address (never sent: SNI
         * carries names only) must be among its IP addresses. */
        if (l->ssl == NULL || SSL_set_fd(l->ssl, l->fd) != 1 ||
            (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(l->ssl), name) != 1
                   : SSL_set_tlsext_host_name(l->ssl, name) != 1 ||
                         SSL_set1_host(l->ssl, name) != 1)) {
            snprintf(why, cap, "TLS: cannot set up the connection");
            ERR_clear_error();
            free_link(l);
            return NULL;
        }
        SSL_set_mode(l->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_connect_state(l->ssl);
    }
    l->phase = PHASE_TCP;
    ev_io_init(&l->rio, on_readable, l->fd, EV_READ);
    ev_io_init(&l->wio, on_writable, l->fd, EV_WRITE);
    l->rio.data = l;
    l->wio.data = l;
    ev_io_start(loop, &l->wio); /* writable: connected (or failed) */
    return l;
}

int tlsr__rlink_send(struct rlink *l, char *cmd, int len, redisCallbackFn *fn, void *priv)
{
    if (l == NULL || l->is_closed || len < 0) {
        redisFreeCommand(cmd);
        return -1;
    }
    struct rlink_call *c = tlsr__malloc(sizeof(*c));
    size_t need = l->out_len + (size_t)len;
    if (c != NULL && need > l->out_cap) {
        size_t cap = l->out_cap > 0 ? l->out_cap : 4096;
        while (cap < need) {
            cap *= 2;
        }
        char *grown = tlsr__malloc(cap);
        if (grown != NULL) {
            if (l->out_len > 0) {
                memcpy(grown, l->out, l->out_len);
            }
            tlsr__free(l->out);
            l->out = grown;
            l->out_cap = cap;
        }
    }
    if (c == NULL || need > l->out_cap) {
        tlsr__free(c);
        redisFreeCommand(cmd);
        return -1;
    }
    memcpy(l->out + l->out_len, cmd, (size_t)len);
    l->out_len = need;
    redisFreeCommand(cmd);
    c->fn = fn;
    c->priv = priv;
    c->next = NULL;
    if (l->tail != NULL) {
        l->tail->next = c;
    } else {
        l->head = c;
    }
    l->tail = c;
    link_events(l);
    return 0;
}

void tlsr__rlink_flush(struct rlink *l)
{
    if (l != NULL && l->is_connected && !l->is_closed && l->in_callback == 0) {
        enter(l);
        flush_out(l);
        (void)leave(l);
    }
}

void tlsr__rlink_close(struct rlink *l)
{
    if (l == NULL || l->is_released) {
        return;
    }
    l->on_event = NULL;
    l->is_released = true;
    enter(l);
    if (!l->is_closed) {
        l->is_closed = true;
        cancel_all(l);
    }
    (void)leave(l); /* frees it, unless a call into the link is running: then it frees it */
}

tlsr_status tlsr__fleet_tls_for(const struct tlsr_fleet_opts *o, SSL_CTX **out)
{
    *out = NULL;
    bool is_tls = false;
    for (size_t i = 0; i < o->n_endpoints; i++) {
        const char *e = o->endpoints[i];
        is_tls |= e != NULL &&
                  (strncmp(e, "rediss://", 9) == 0 || strncmp(e, "rediss-cluster://", 17) == 0);
    }
    if (!is_tls) {
        return TLSR_OK;
    }
    char why[300];
    *out = tlsr__rlink_tls_ctx(&o->tls, why, sizeof(why));
    ENSURE(*out != NULL, TLSR_E_INVALID, "fleet: %s", why);
    return TLSR_OK;
}

SSL_CTX *tlsr__rlink_tls_ctx(const struct tlsr_fleet_tls *t, char *why, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(why, cap, "TLS: no context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int ok = t->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                                : SSL_CTX_set_default_verify_paths(ctx);
    const char *what = t->ca_file != NULL ? t->ca_file : "the system's CA certificates";
    if (ok == 1 && t->cert_file != NULL) {
        what = t->cert_file;
        ok = SSL_CTX_use_certificate_chain_file(ctx, t->cert_file);
        if (ok == 1) {
            what = t->key_file != NULL ? t->key_file : t->cert_file;
            ok = SSL_CTX_use_PrivateKey_file(ctx, what, SSL_FILETYPE_PEM) == 1 &&
                 SSL_CTX_check_private_key(ctx) == 1;
        }
    }
    if (ok != 1) {
        char buf[200];
        ERR_error_string_n(ERR_peek_last_error(), buf, sizeof(buf));
        snprintf(why, cap, "TLS: %s: %s", what, buf);
        ERR_clear_error();
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

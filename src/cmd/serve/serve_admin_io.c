/*
 * The admin endpoint's sockets in the master: accepts at most ADMIN_CONNS_MAX connections at a
 * time, reads one request line (bounded, within ADMIN_TIMEOUT_S), writes the response built by
 * admin_respond() without ever blocking the master's loop, and closes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve_admin.h"

#define ADMIN_CONNS_MAX 16
#define ADMIN_TIMEOUT_S 2.0

struct admin_conn {
    struct admin_server *s;
    struct admin_conn *next;
    int fd;
    ev_io io;
    ev_timer timer;
    char req[1024];
    size_t req_len;
    char *resp; /* owned; NULL until the request line is complete */
    size_t resp_len;
    size_t resp_sent;
};

static void conn_close(struct admin_conn *a)
{
    struct admin_server *s = a->s;
    ev_io_stop(s->loop, &a->io);
    ev_timer_stop(s->loop, &a->timer);
    close(a->fd);
    for (struct admin_conn **p = &s->conns; *p != NULL; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            break;
        }
    }
    s->open--;
    free(a->resp);
    free(a);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(t->data);
}

/* Reads the request line, then writes the response. */
static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct admin_conn *a = io->data;
    if (a->resp == NULL) {
        ssize_t n = recv(a->fd, a->req + a->req_len, sizeof(a->req) - 1 - a->req_len, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                return;
            }
            conn_close(a);
            return;
        }
        a->req_len += (size_t)n;
        a->req[a->req_len] = '\0';
        char *eol = strpbrk(a->req, "\r\n");
        if (eol == NULL && a->req_len < sizeof(a->req) - 1) {
            return;
        }
        if (eol != NULL) {
            *eol = '\0';
        }
        struct admin_view v;
        a->s->view(a->s->arg, &v);
        a->resp = admin_respond(&v, a->req, &a->resp_len);
        if (a->resp == NULL) {
            conn_close(a);
            return;
        }
        ev_io_stop(loop, &a->io);
        ev_io_set(&a->io, a->fd, EV_WRITE);
        ev_io_start(loop, &a->io);
        return;
    }
    ssize_t w = send(a->fd, a->resp + a->resp_sent, a->resp_len - a->resp_sent, MSG_NOSIGNAL);
    if (w > 0) {
        a->resp_sent += (size_t)w;
    }
    if ((w < 0 && errno != EAGAIN && errno != EINTR) || a->resp_sent == a->resp_len) {
        conn_close(a);
    }
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct admin_server *s = io->data;
    int fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        return;
    }
    struct admin_conn *a = s->open < ADMIN_CONNS_MAX ? calloc(1, sizeof(*a)) : NULL;
    if (a == NULL) {
        close(fd);
        return;
    }
    s->open++;
    a->s = s;
    a->fd = fd;
    a->next = s->conns;
    s->conns = a;
    ev_io_init(&a->io, on_io, fd, EV_READ);
    a->io.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_init(&a->timer, on_timeout, ADMIN_TIMEOUT_S, 0.0);
    a->timer.data = a;
    ev_timer_start(loop, &a->timer);
}

void admin_server_start(struct admin_server *s, struct ev_loop *loop, int fd, admin_view_fn view,
                        void *arg)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->view = view;
    s->arg = arg;
    s->is_running = true;
    ev_io_init(&s->io, on_accept, fd, EV_READ);
    s->io.data = s;
    ev_io_start(loop, &s->io);
}

void admin_server_stop(struct admin_server *s)
{
    if (!s->is_running) {
        return;
    }
    while (s->conns != NULL) {
        conn_close(s->conns);
    }
    ev_io_stop(s->loop, &s->io);
    s->is_running = false;
}

void admin_server_forget(struct admin_server *s)
{
    if (!s->is_running) {
        return;
    }
    ev_io_stop(s->loop, &s->io);
    for (struct admin_conn *a = s->conns, *next; a != NULL; a = next) {
        next = a->next;
        ev_io_stop(s->loop, &a->io);
        ev_timer_stop(s->loop, &a->timer);
        close(a->fd);
        free(a->resp);
        free(a);
    }
    s->conns = NULL;
    s->open = 0;
    s->is_running = false;
}

/*
 * Redis connections for the fleet: endpoint syntax, and one asynchronous connection on a libev
 * loop that reconnects by itself (its byte stream, plain or TLS, is rlink.c's).
 *
 * States: DOWN (waiting out a backoff of 0.1 s doubling to 5 s), CONNECTING (at most 1 s, then
 * abandoned; it ends with the reply to a PING, so a server that accepts connections but does
 * not answer, such as a paused one, never counts as up), UP. Redis commands have no timeouts,
 * so a connection that stops answering (a paused server, a cut link) would hold its callbacks
 * forever: a connection with commands outstanding and no reply for STALL_S is dropped, which runs
 * every pending callback with a NULL reply, and reconnected. Each change between up and down is
 * logged once.
 *
 * Threat: a password in logs (endpoints are logged without one; passwords come from a file or
 * the environment, never from an endpoint) and a hung Redis stalling handshakes (callers never
 * wait on a reply: they pause a handshake with their own deadline).
 */
#include "fleet_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define BACKOFF_MIN_S 0.1
#define BACKOFF_MAX_S 5.0
#define CONNECT_DEADLINE_S 1.0
#define STALL_S 1.0
#define CHECK_EVERY_S 0.25
#define MAX_HOPS 3 /* redirects a Cluster command may follow */

void tlsr__fleet_log(tlsr_log_fn log, void *arg, enum tlsr_log_level level, const char *fmt, ...)
{
    if (log == NULL) {
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log(arg, level, "fleet", msg);
}

static tlsr_status parse_int(const char *s, size_t len, long lo, long hi, const char *what,
                             const char *text, int *out)
{
    char buf[16];
    ENSURE(len > 0 && len < sizeof(buf), TLSR_E_INVALID, "redis endpoint \"%s\": bad %s", text,
           what);
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    long v = strtol(buf, &end, 10);
    ENSURE(errno == 0 && *end == '\0' && v >= lo && v <= hi && buf[0] != '-' && buf[0] != '+',
           TLSR_E_INVALID, "redis endpoint \"%s\": %s must be %ld to %ld", text, what, lo, hi);
    *out = (int)v;
    return TLSR_OK;
}

/* The ?db=N that may end a unix: or sentinel:// endpoint (q: from the '?', or NULL). */
static tlsr_status parse_db_param(const char *q, const char *text, struct endpoint *out)
{
    if (q == NULL) {
        return TLSR_OK;
    }
    ENSURE(strncmp(q, "?db=", 4) == 0, TLSR_E_INVALID,
           "redis endpoint \"%s\": the only parameter is ?db=N", text);
    return parse_int(q + 4, strlen(q + 4), 0, 15, "db", text, &out->db);
}

static tlsr_status parse_unix(const char *text, struct endpoint *out)
{
    const char *path = text + strlen("unix:");
    const char *q = strchr(path, '?');
    size_t len = q != NULL ? (size_t)(q - path) : strlen(path);
    ENSURE(len > 1 && path[0] == '/' && len < sizeof(out->path), TLSR_E_INVALID,
           "redis endpoint \"%s\": expected unix:/absolute/path", text);
    memcpy(out->path, path, len);
    out->path[len] = '\0';
    return parse_db_param(q, text, out);
}

/* HOST:PORT[,HOST:PORT...] from s to end, into out->hosts. */
static tlsr_status parse_hosts(const char *s, const char *end, const char *text, const char *what,
                               struct endpoint *out)
{
    ENSURE(memchr(s, '@', (size_t)(end - s)) == NULL, TLSR_E_INVALID,
           "redis endpoint \"%s\": no credentials in the endpoint; use a password file", text);
    const char *p = s;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma != NULL ? comma : end;
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        ENSURE(out->n_hosts < MAX_HOSTS, TLSR_E_INVALID, "redis endpoint \"%s\": at most %d %ss",
               text, MAX_HOSTS, what);
        ENSURE(colon != NULL && colon > p && (size_t)(colon - p) < sizeof(out->hosts[0].host),
               TLSR_E_INVALID, "redis endpoint \"%s\": each %s is HOST:PORT", text, what);
        memcpy(out->hosts[out->n_hosts].host, p, (size_t)(colon - p));
        out->hosts[out->n_hosts].host[colon - p] = '\0';
        TRY(parse_int(colon + 1, (size_t)(stop - colon - 1), 1, 65535, "port", text,
                      &out->hosts[out->n_hosts].port));
        out->n_hosts++;
        p = comma != NULL ? comma + 1 : stop;
    }
    ENSURE(out->n_hosts > 0, TLSR_E_INVALID, "redis endpoint \"%s\": no %s", text, what);
    return TLSR_OK;
}

/* sentinel://H:P[,H:P...]/MASTER[?db=N] */
static tlsr_status parse_sentinel(const char *text, struct endpoint *out)
{
    const char *s = text + strlen("sentinel://");
    const char *slash = strchr(s, '/');
    ENSURE(slash != NULL && slash > s, TLSR_E_INVALID,
           "redis endpoint \"%s\": expected sentinel://HOST:PORT[,HOST:PORT...]/MASTER", text);
    TRY(parse_hosts(s, slash, text, "sentinel", out));
    const char *name = slash + 1;
    const char *q = strchr(name, '?');
    size_t len = q != NULL ? (size_t)(q - name) : strlen(name);
    ENSURE(len > 0 && len < sizeof(out->master) && memchr(name, '/', len) == NULL, TLSR_E_INVALID,
           "redis endpoint \"%s\": the master's name, 1 to %zu bytes", text,
           sizeof(out->master) - 1);
    memcpy(out->master, name, len);
    out->master[len] = '\0';
    return parse_db_param(q, text, out);
}

/* redis-cluster://H:P[,H:P...] and rediss-cluster:// (TLS): seed nodes; database 0 only. */
static tlsr_status parse_cluster(const char *text, size_t scheme_len, struct endpoint *out)
{
    const char *s = text + scheme_len;
    ENSURE(strpbrk(s, "/?") == NULL, TLSR_E_INVALID,
           "redis endpoint \"%s\": a cluster has database 0 only: no /DB or parameters", text);
    out->is_cluster = true;
    TRY(parse_hosts(s, s + strlen(s), text, "seed node", out));
    snprintf(out->host, sizeof(out->host), "%s", out->hosts[0].host);
    out->port = out->hosts[0].port;
    return TLSR_OK;
}

tlsr_status tlsr__fleet_endpoint_parse(const char *text, struct endpoint *out)
{
    ENSURE(text != NULL && out != NULL, TLSR_E_INVALID, "redis endpoint: NULL argument");
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    ENSURE(strlen(text) < sizeof(out->text), TLSR_E_INVALID, "redis endpoint: too long");
    snprintf(out->text, sizeof(out->text), "%s", text);
    if (strncmp(text, "unix:", 5) == 0) {
        return parse_unix(text, out);
    }
    if (strncmp(text, "sentinel://", 11) == 0) {
        return parse_sentinel(text, out);
    }
    if (strncmp(text, "redis-cluster://", 16) == 0) {
        return parse_cluster(text, 16, out);
    }
    if (strncmp(text, "rediss-cluster://", 17) == 0) {
        out->is_tls = true;
        return parse_cluster(text, 17, out);
    }
    out->is_tls = strncmp(text, "rediss://", 9) == 0;
    ENSURE(out->is_tls || strncmp(text, "redis://", 8) == 0, TLSR_E_INVALID,
           "redis endpoint \"%s\": expected redis://HOST[:PORT][/DB], rediss:// (TLS), "
           "sentinel://HOST:PORT[,...]/MASTER, redis-cluster://HOST:PORT[,...] (rediss-cluster:// "
           "for TLS) or unix:/path",
           text);
    const char *h = text + (out->is_tls ? 9 : 8);
    ENSURE(strchr(h, '@') == NULL, TLSR_E_INVALID,
           "redis endpoint \"%s\": no credentials in the endpoint; use a password file", text);
    const char *slash = strchr(h, '/');
    size_t hp_len = slash != NULL ? (size_t)(slash - h) : strlen(h);
    const char *host = h;
    size_t host_len = hp_len;
    const char *port = NULL;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', hp_len);
        ENSURE(close != NULL, TLSR_E_INVALID, "redis endpoint \"%s\": unclosed [", text);
        host = h + 1;
        host_len = (size_t)(close - host);
        if ((size_t)(close + 1 - h) < hp_len) {
            ENSURE(close[1] == ':', TLSR_E_INVALID, "redis endpoint \"%s\": bad port", text);
            port = close + 2;
        }
    } else {
        const char *colon = memchr(h, ':', hp_len);
        if (colon != NULL) {
            host_len = (size_t)(colon - h);
            port = colon + 1;
        }
    }
    ENSURE(host_len > 0 && host_len < sizeof(out->host), TLSR_E_INVALID,
           "redis endpoint \"%s\": no host", text);
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    if (port != NULL) {
        TRY(parse_int(port, (size_t)(h + hp_len - port), 1, 65535, "port", text, &out->port));
    }
    if (slash != NULL) {
        TRY(parse_int(slash + 1, strlen(slash + 1), 0, 15, "db", text, &out->db));
    }
    return TLSR_OK;
}

tlsr_status tlsr_fleet_endpoint_check(const char *endpoint)
{
    struct endpoint ep;
    return tlsr__fleet_endpoint_parse(endpoint, &ep);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents);

static void arm(struct rconn *rc, double after_s, double repeat_s)
{
    ev_timer_stop(rc->loop, &rc->timer);
    ev_timer_set(&rc->timer, after_s, repeat_s);
    ev_timer_start(rc->loop, &rc->timer);
}

static void went_down(struct rconn *rc, const char *why)
{
    if (rc->ep.n_hosts > 0) {
        rc->sentinel_i = (rc->sentinel_i + 1) % rc->ep.n_hosts; /* the next one, next time */
    }
    rc->state = RCONN_DOWN;
    rc->pending = 0;
    rc->downs++;
    if (rc->was_up || !rc->is_logged) {
        tlsr__fleet_log(rc->log, rc->log_arg, TLSR_LOG_WARN,
                        "event=redis_down part=%s redis=%s error=\"%s\" retry_s=%.1f", rc->who,
                        rc->ep.text, why, rc->backoff_s);
        rc->is_logged = true;
    }
    rc->was_up = false;
    arm(rc, rc->backoff_s, 0.0);
    rc->backoff_s = rc->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : rc->backoff_s * 2;
}

/* Closes the link (its pending callbacks run with NULL) and waits out a backoff. */
static void drop(struct rconn *rc, const char *why)
{
    struct rlink *link = rc->link;
    rc->link = NULL;
    if (link != NULL) {
        tlsr__rlink_close(link);
    }
    went_down(rc, why);
}

static void became_up(struct rconn *rc)
{
    rc->state = RCONN_UP;
    rc->backoff_s = BACKOFF_MIN_S;
    rc->pending = 0;
    rc->last_reply = ev_now(rc->loop);
    if (!rc->was_up) {
        tlsr__fleet_log(rc->log, rc->log_arg, TLSR_LOG_INFO, "event=redis_up part=%s redis=%s",
                        rc->who, rc->ep.text);
    }
    rc->was_up = true;
    rc->is_logged = false;
    arm(rc, CHECK_EVERY_S, CHECK_EVERY_S);
    if (rc->on_up != NULL) {
        rc->on_up(rc, rc->on_up_arg);
    }
}

/* The reply to the PING sent after AUTH and SELECT: the server answers, so it is up. */
static void on_ping(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    redisReply *reply = r;
    if (rc->link == NULL || rc->state != RCONN_CONNECTING) {
        return;
    }
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        return; /* the connect deadline drops it */
    }
    became_up(rc);
}

/* The link failed (refused, closed, a TLS error): its callbacks have run with NULL. */
static void on_link_event(void *arg, const char *why)
{
    struct rconn *rc = arg;
    drop(rc, why);
}

/* Formats and queues a command on the link; the callback gets its reply. */
static int send_v(struct rconn *rc, redisCallbackFn *fn, void *priv, const char *fmt, va_list ap)
{
    char *cmd = NULL;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0 || cmd == NULL) {
        return -1;
    }
    return tlsr__rlink_send(rc->link, cmd, len, fn, priv);
}

static int send_f(struct rconn *rc, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc_ = send_v(rc, fn, priv, fmt, ap);
    va_end(ap);
    return rc_;
}

static void on_setup_reply(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        tlsr__fleet_log(rc->log, rc->log_arg, TLSR_LOG_ERROR,
                        "event=redis_setup_failed part=%s redis=%s error=\"%.200s\"", rc->who,
                        rc->ep.text, reply->str);
    }
}

/* The reply to ROLE (behind sentinels, at connect and as the heartbeat): anything but a master
 * makes the connection go, and the sentinels are asked again. */
static void on_role(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    redisReply *reply = r;
    if (reply == NULL || rc->link == NULL) {
        return;
    }
    bool is_master = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
                     reply->element[0]->type == REDIS_REPLY_STRING &&
                     strcmp(reply->element[0]->str, "master") == 0;
    if (!is_master) {
        rc->must_drop = true;
        arm(rc, 0.0, CHECK_EVERY_S);
    }
}

static void connect_master(struct rconn *rc);

/* A sentinel's answer to get-master-addr-by-name: the master's address, or nil. */
static void on_master_addr(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    redisReply *reply = r;
    if (reply == NULL || rc->link == NULL || rc->state != RCONN_CONNECTING) {
        return; /* the link failed: on_link_event goes on */
    }
    int port = 0;
    bool is_ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
                 reply->element[0]->type == REDIS_REPLY_STRING &&
                 reply->element[1]->type == REDIS_REPLY_STRING && reply->element[0]->len > 0 &&
                 reply->element[0]->len < sizeof(rc->ep.host) &&
                 parse_int(reply->element[1]->str, reply->element[1]->len, 1, 65535, "port",
                           rc->ep.text, &port) == TLSR_OK;
    struct rlink *sentinel = rc->link;
    rc->link = NULL;
    tlsr__rlink_close(sentinel); /* safe from its own callback */
    const char *asked = rc->ep.hosts[rc->sentinel_i].host;
    int asked_port = rc->ep.hosts[rc->sentinel_i].port;
    if (!is_ok) {
        char why[200];
        snprintf(why, sizeof(why), "sentinel %s:%d does not name a master %s", asked, asked_port,
                 rc->ep.master);
        went_down(rc, why);
        return;
    }
    memcpy(rc->ep.host, reply->element[0]->str, reply->element[0]->len);
    rc->ep.host[reply->element[0]->len] = '\0';
    rc->ep.port = port;
    char at[300];
    snprintf(at, sizeof(at), "%s:%d", rc->ep.host, port);
    if (strcmp(at, rc->master_at) != 0) {
        tlsr__fleet_log(rc->log, rc->log_arg, TLSR_LOG_INFO,
                        "event=redis_master part=%s redis=%s master=%s sentinel=%s:%d", rc->who,
                        rc->ep.text, at, asked, asked_port);
        snprintf(rc->master_at, sizeof(rc->master_at), "%s", at);
    }
    connect_master(rc);
}

/* Behind sentinels, every connection starts by asking one where the master is. */
static void connect_now(struct rconn *rc)
{
    if (rc->ep.master[0] == '\0') {
        connect_master(rc);
        return;
    }
    struct endpoint s;
    memset(&s, 0, sizeof(s));
    snprintf(s.host, sizeof(s.host), "%s", rc->ep.hosts[rc->sentinel_i].host);
    s.port = rc->ep.hosts[rc->sentinel_i].port;
    char why[256] = "";
    rc->link = tlsr__rlink_open(rc->loop, &s, NULL, NULL, on_link_event, rc, why, sizeof(why));
    if (rc->link == NULL) {
        went_down(rc, why[0] != '\0' ? why : "sentinel: connect failed");
        return;
    }
    rc->state = RCONN_CONNECTING;
    (void)send_f(rc, on_master_addr, rc, "SENTINEL get-master-addr-by-name %s", rc->ep.master);
    arm(rc, CONNECT_DEADLINE_S, 0.0);
}

static void connect_master(struct rconn *rc)
{
    char why[256] = "";
    if (rc->ep.is_tls && rc->tls == NULL) {
        went_down(rc, "rediss:// needs TLS settings (no TLS context)");
        return;
    }
    rc->link = tlsr__rlink_open(rc->loop, &rc->ep, rc->ep.is_tls ? rc->tls : NULL, rc->tls_name,
                                on_link_event, rc, why, sizeof(why));
    if (rc->link == NULL) {
        went_down(rc, why[0] != '\0' ? why : "connect failed");
        return;
    }
    rc->state = RCONN_CONNECTING;
    /* Queued now, sent first once connected: nothing else goes before them. */
    if (rc->password != NULL && rc->username != NULL) {
        (void)send_f(rc, on_setup_reply, rc, "AUTH %s %s", rc->username, rc->password);
    } else if (rc->password != NULL) {
        (void)send_f(rc, on_setup_reply, rc, "AUTH %s", rc->password);
    }
    if (rc->ep.db != 0) {
        (void)send_f(rc, on_setup_reply, rc, "SELECT %d", rc->ep.db);
    }
    if (rc->ep.master[0] != '\0') {
        (void)send_f(rc, on_role, rc, "ROLE"); /* a sentinel may name a master just demoted */
    }
    (void)send_f(rc, on_ping, rc, "PING");
    arm(rc, CONNECT_DEADLINE_S, 0.0);
}

static void on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)reply;
    (void)priv;
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct rconn *rc = t->data;
    if (rc->must_drop && rc->state != RCONN_DOWN) {
        rc->must_drop = false;
        drop(rc, "the server is no longer the master (a failover); asking the sentinels again");
    } else if (rc->state == RCONN_DOWN) {
        connect_now(rc);
    } else if (rc->state == RCONN_CONNECTING) {
        drop(rc, "no answer within 1 s of connecting");
    } else if (rc->pending > 0 && ev_now(rc->loop) - rc->last_reply > STALL_S) {
        drop(rc, "no reply for 1 s");
    } else if (rc->pending == 0 && ev_now(rc->loop) - rc->last_reply > STALL_S) {
        /* Idle: a PING now and then, so that a dead link shows without traffic; behind
         * sentinels, ROLE, so that a master turned replica by a failover shows too. */
        if (rc->ep.master[0] != '\0') {
            (void)tlsr__rconn_command(rc, on_role, rc, "ROLE");
        } else {
            (void)tlsr__rconn_command(rc, on_heartbeat, NULL, "PING");
        }
    }
}

void tlsr__rconn_start(struct rconn *rc, struct ev_loop *loop, const struct endpoint *ep,
                       const struct rconn_auth *auth, const char *who, tlsr_log_fn log,
                       void *log_arg)
{
    memset(rc, 0, sizeof(*rc));
    rc->loop = loop;
    rc->ep = *ep;
    rc->username = auth->username;
    rc->password = auth->password;
    rc->tls = auth->tls;
    rc->tls_name = auth->tls_name;
    rc->who = who;
    rc->log = log;
    rc->log_arg = log_arg;
    rc->backoff_s = BACKOFF_MIN_S;
    ev_init(&rc->timer, on_timer);
    rc->timer.data = rc;
    connect_now(rc);
}

void tlsr__rconn_stop(struct rconn *rc)
{
    if (rc->loop == NULL) {
        return;
    }
    ev_timer_stop(rc->loop, &rc->timer);
    struct rlink *link = rc->link;
    rc->link = NULL;
    rc->state = RCONN_DOWN;
    if (link != NULL) {
        tlsr__rlink_close(link);
    }
    rc->loop = NULL;
}

struct rcall {
    struct rconn *rc;
    redisCallbackFn *fn;
    void *priv;
    char *cmd; /* a Cluster node's: the command's bytes, for a redirect */
    int len;
    int hops;
};

static void free_call(struct rcall *call)
{
    tlsr__free(call->cmd);
    tlsr__free(call);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);
static int sent(struct rconn *rc, struct rcall *call, int status);

/* Sends call's command again to the node a MOVED or ASK named; -1 when it cannot go. */
static int redirect(struct rcall *call, const redisReply *r)
{
    struct rconn *to = call->rc->on_redirect(call->rc, call->rc->on_redirect_arg, r->str);
    if (to == NULL || to->state != RCONN_UP || to->link == NULL) {
        return -1;
    }
    if (r->str[0] == 'A') {
        (void)tlsr__rconn_command(to, on_heartbeat, NULL, "ASKING"); /* for the next command */
    }
    char *copy = tlsr__malloc((size_t)call->len);
    if (copy == NULL) {
        return -1;
    }
    memcpy(copy, call->cmd, (size_t)call->len);
    call->rc = to;
    call->hops++;
    int status = tlsr__rlink_send(to->link, copy, call->len, on_reply, call);
    if (status != 0) {
        return -1; /* the caller still owns call: its callback runs with the error */
    }
    if (to->pending++ == 0) {
        to->last_reply = ev_now(to->loop);
    }
    return 0;
}

static bool is_redirect(const redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR &&
           (strncmp(r->str, "MOVED ", 6) == 0 || strncmp(r->str, "ASK ", 4) == 0);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rcall *call = priv;
    struct rconn *rc = call->rc;
    if (rc->pending > 0) {
        rc->pending--;
    }
    rc->last_reply = ev_now(rc->loop);
    const redisReply *r = reply;
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "READONLY", 8) == 0 &&
        rc->ep.master[0] != '\0') {
        rc->must_drop = true; /* writes reach a replica: the master moved */
        arm(rc, 0.0, CHECK_EVERY_S);
    }
    if (is_redirect(r) && call->cmd != NULL && call->hops < MAX_HOPS && rc->loop != NULL &&
        redirect(call, r) == 0) {
        return; /* the node it names answers */
    }
    call->fn(ac, reply, call->priv);
    free_call(call);
}

static struct rcall *new_call(struct rconn *rc, redisCallbackFn *fn, void *priv)
{
    if (rc == NULL || rc->state != RCONN_UP || rc->link == NULL) {
        return NULL;
    }
    struct rcall *call = tlsr__calloc(1, sizeof(*call));
    if (call != NULL) {
        call->rc = rc;
        call->fn = fn;
        call->priv = priv;
    }
    return call;
}

/* Queues a formatted command for call (cmd is freed here); a Cluster node's keeps a copy. */
static int send_call(struct rconn *rc, struct rcall *call, char *cmd, int len)
{
    if (len < 0 || cmd == NULL) {
        return -1;
    }
    if (rc->on_redirect != NULL && (call->cmd = tlsr__malloc((size_t)len)) != NULL) {
        memcpy(call->cmd, cmd, (size_t)len);
        call->len = len;
    }
    return tlsr__rlink_send(rc->link, cmd, len, on_reply, call);
}

static int sent(struct rconn *rc, struct rcall *call, int status)
{
    if (status != 0) {
        free_call(call);
        return -1;
    }
    if (rc->pending++ == 0) {
        rc->last_reply = ev_now(rc->loop); /* the stall clock starts with the first command */
    }
    return 0;
}

int tlsr__rconn_command(struct rconn *rc, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    struct rcall *call = new_call(rc, fn, priv);
    if (call == NULL) {
        return -1;
    }
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    return sent(rc, call, send_call(rc, call, cmd, len));
}

void tlsr__rconn_flush(struct rconn *rc)
{
    if (rc == NULL || rc->state != RCONN_UP || rc->link == NULL) {
        return;
    }
    /* A non-blocking write of what is queued: no reply callback runs here. */
    tlsr__rlink_flush(rc->link);
}

int tlsr__rconn_argv(struct rconn *rc, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *argvlen)
{
    struct rcall *call = new_call(rc, fn, priv);
    if (call == NULL) {
        return -1;
    }
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    return sent(rc, call, send_call(rc, call, cmd, len));
}

/*
 * Redis Cluster for the fleet: the slot map, and one connection (redis.c's rconn) per master.
 *
 * A key's slot is CRC16 (XMODEM) of the key, or of its hash tag (what lies between the first
 * '{' and the next '}', when not empty), mod 16384. The map comes from CLUSTER SLOTS, asked of a
 * node that is up: at start, after a MOVED, every REFRESH_S, and every DOWN_REFRESH_S while a
 * master in the map is not up (so a replica promoted after its master died is found within that
 * time of the promotion). A MOVED or ASK reply is followed by redis.c, which sends the command
 * again to the node this file names (ASKING first for ASK). A slot whose master is unknown or not
 * up is a miss for the caller (the command is not sent), as an endpoint down is in the sharded
 * mode.
 *
 * Nodes: the seeds of the endpoint are asked first; every master the map names gets a
 * connection, and a connection whose node serves no slot in a map that covers some is closed
 * (on the timer, never from inside a reply). When no node is up, the seeds are tried again.
 *
 * Threat: a reply that lies about the map (checked whole before use: ranges within 0..16383,
 * ports 1..65535, host names bounded; a bad reply keeps the old map), a node that does not
 * answer (redis.c's stall check drops it), a redirect loop (bounded hops in redis.c).
 */
#include "fleet_int.h"

#include <stdio.h>
#include <string.h>

#include "../buf/tlsr_buf.h"

#define TIMER_S 0.25
#define REFRESH_S 10.0
#define DOWN_REFRESH_S 0.5

static unsigned crc16(const uint8_t *p, size_t n)
{
    unsigned crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (unsigned)p[i] << 8;
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) != 0 ? ((crc << 1) ^ 0x1021u) & 0xffffu : (crc << 1) & 0xffffu;
        }
    }
    return crc;
}

unsigned tlsr__fleet_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t rest = len - (size_t)(open + 1 - key);
        const char *close = memchr(open + 1, '}', rest);
        if (close != NULL && close > open + 1) {
            key = open + 1;
            len = (size_t)(close - key);
        }
    }
    return crc16((const uint8_t *)key, len) & (CLUSTER_SLOTS - 1);
}

/* A short tag whose slot is slot (decimal numbers hit every slot well before 10^6). */
static void tag_for_slot(unsigned slot, char out[8])
{
    for (unsigned n = 0; n < 1000000u; n++) {
        int len = snprintf(out, 8, "%u", n);
        if (tlsr__fleet_key_slot(out, (size_t)len) == slot) {
            return;
        }
    }
    out[0] = '\0';
}

static bool is_int_in(const redisReply *r, long long lo, long long hi)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

/* One range: {start, end, {host, port, ...}, replicas...}. */
static bool range_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        !is_int_in(e->element[0], 0, CLUSTER_SLOTS - 1) ||
        !is_int_in(e->element[1], e->element[0]->integer, CLUSTER_SLOTS - 1)) {
        return false;
    }
    const redisReply *m = e->element[2];
    return m->type == REDIS_REPLY_ARRAY && m->elements >= 2 &&
           m->element[0]->type == REDIS_REPLY_STRING && m->element[0]->len < 64 &&
           strlen(m->element[0]->str) == m->element[0]->len && is_int_in(m->element[1], 1, 65535);
}

bool tlsr__fleet_cluster_slots_parse(const void *r, tlsr__slot_range_fn each, void *arg)
{
    const redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return false;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        if (!range_ok(reply->element[i])) {
            return false;
        }
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        const redisReply *m = e->element[2];
        each(arg, (unsigned)e->element[0]->integer, (unsigned)e->element[1]->integer,
             m->element[0]->str, (int)m->element[1]->integer);
    }
    return true;
}

static void on_node_up(struct rconn *rc, void *arg);
static struct rconn *on_redirect(struct rconn *rc, void *arg, const char *error);

/* The node at host:port, started if new; -1 when the table is full (logged once). */
static int node_at(struct rcluster *cl, const char *host, int port)
{
    int free_i = -1;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (!cl->is_used[i]) {
            free_i = free_i < 0 ? i : free_i;
        } else if (cl->nodes[i].ep.port == port && strcmp(cl->nodes[i].ep.host, host) == 0) {
            return i;
        }
    }
    if (free_i < 0) {
        if (!cl->is_full_logged) {
            tlsr__fleet_log(cl->log, cl->log_arg, TLSR_LOG_ERROR,
                            "event=redis_cluster_full part=%s redis=%s max_nodes=%d note=\"more "
                            "masters than connections: their slots are misses\"",
                            cl->who, cl->ep.text, CLUSTER_MAX_NODES);
            cl->is_full_logged = true;
        }
        return -1;
    }
    struct endpoint ep;
    memset(&ep, 0, sizeof(ep));
    snprintf(ep.host, sizeof(ep.host), "%s", host);
    ep.port = port;
    ep.is_tls = cl->ep.is_tls;
    bool is_v6 = strchr(host, ':') != NULL;
    snprintf(ep.text, sizeof(ep.text), "%s://%s%s%s:%d", ep.is_tls ? "rediss" : "redis",
             is_v6 ? "[" : "", host, is_v6 ? "]" : "", port);
    struct rconn *rc = &cl->nodes[free_i];
    cl->is_used[free_i] = true;
    cl->is_mapped[free_i] = false;
    cl->tag[free_i][0] = '\0';
    tlsr__rconn_start(rc, cl->loop, &ep, &cl->auth, cl->who, cl->log, cl->log_arg);
    rc->on_up = on_node_up;
    rc->on_up_arg = cl;
    rc->on_redirect = on_redirect;
    rc->on_redirect_arg = cl;
    return free_i;
}

static void on_slots(redisAsyncContext *ac, void *r, void *priv);

/* Asks rc's node for the map, unless a question is out already. */
static void ask_map(struct rcluster *cl, struct rconn *rc)
{
    if (cl->is_asking || rc->state != RCONN_UP) {
        return;
    }
    if (tlsr__rconn_command(rc, on_slots, rc, "CLUSTER SLOTS") == 0) {
        cl->is_asking = true;
        cl->last_refresh = ev_now(cl->loop);
    }
}

static void on_node_up(struct rconn *rc, void *arg)
{
    struct rcluster *cl = arg;
    size_t i = (size_t)(rc - cl->nodes);
    if (!cl->has_map || cl->want_refresh) {
        ask_map(cl, rc);
    }
    if (cl->is_mapped[i] && cl->on_node_up != NULL) {
        cl->on_node_up(rc, cl->on_node_up_arg);
    }
}

struct map_build {
    struct rcluster *cl;
    const struct rconn *asked;
    unsigned slots;
};

static void map_range(void *arg, unsigned lo, unsigned hi, const char *host, int port)
{
    struct map_build *b = arg;
    struct rcluster *cl = b->cl;
    if (strcmp(host, "?") == 0) {
        return; /* the node does not know its address: those slots stay unknown */
    }
    int i = node_at(cl, host[0] != '\0' ? host : b->asked->ep.host, port);
    if (i < 0) {
        return;
    }
    memset(cl->next_map + lo, i + 1, hi - lo + 1);
    b->slots += hi - lo + 1;
}

/* Takes the new map: nodes newly serving slots get a tag (and the up hook, if up). */
static void apply_map(struct rcluster *cl, unsigned slots)
{
    memcpy(cl->slot_node, cl->next_map, sizeof(cl->slot_node));
    bool had_map = cl->has_map;
    cl->has_map = true;
    bool was_mapped[CLUSTER_MAX_NODES];
    memcpy(was_mapped, cl->is_mapped, sizeof(was_mapped));
    memset(cl->is_mapped, 0, sizeof(cl->is_mapped));
    unsigned nodes = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        unsigned i = cl->slot_node[s];
        if (i == 0 || cl->is_mapped[i - 1]) {
            continue;
        }
        cl->is_mapped[i - 1] = true;
        nodes++;
        /* The tag names this node's first slot, unless the one it had is still the node's. */
        const char *t = cl->tag[i - 1];
        if (t[0] == '\0' || cl->slot_node[tlsr__fleet_key_slot(t, strlen(t))] != i) {
            tag_for_slot(s, cl->tag[i - 1]);
        }
    }
    if (nodes != cl->map_nodes || slots != cl->map_slots) {
        tlsr__fleet_log(cl->log, cl->log_arg,
                        slots == CLUSTER_SLOTS ? TLSR_LOG_INFO : TLSR_LOG_WARN,
                        "event=redis_cluster_map part=%s redis=%s masters=%u slots_served=%u",
                        cl->who, cl->ep.text, nodes, slots);
        cl->map_nodes = nodes;
        cl->map_slots = slots;
    }
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (!cl->is_mapped[i] || was_mapped[i]) {
            continue;
        }
        if (had_map) { /* a failover or a resharding: say who serves now */
            tlsr__fleet_log(cl->log, cl->log_arg, TLSR_LOG_INFO,
                            "event=redis_cluster_master part=%s master=%s", cl->who,
                            cl->nodes[i].ep.text);
        }
        if (cl->nodes[i].state == RCONN_UP && cl->on_node_up != NULL) {
            cl->on_node_up(&cl->nodes[i], cl->on_node_up_arg);
        }
    }
}

static void on_slots(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *asked = priv;
    struct rcluster *cl = asked->on_up_arg;
    cl->is_asking = false;
    const redisReply *reply = r;
    if (reply == NULL) {
        cl->want_refresh = true;
        return;
    }
    memset(cl->next_map, 0, sizeof(cl->next_map));
    struct map_build b = {cl, asked, 0};
    if (!tlsr__fleet_cluster_slots_parse(reply, map_range, &b)) {
        tlsr__fleet_log(cl->log, cl->log_arg, TLSR_LOG_ERROR,
                        "event=redis_cluster_bad_map part=%s redis=%s error=\"%.200s\"", cl->who,
                        asked->ep.text,
                        reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : "not a CLUSTER SLOTS reply");
        cl->want_refresh = true;
        return;
    }
    cl->want_refresh = false;
    apply_map(cl, b.slots);
}

/* "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>" (an IPv6 host has colons). */
static struct rconn *on_redirect(struct rconn *rc, void *arg, const char *error)
{
    (void)rc;
    struct rcluster *cl = arg;
    bool is_moved = strncmp(error, "MOVED ", 6) == 0;
    const char *p = strchr(error, ' ');
    const char *sp = p != NULL ? strchr(p + 1, ' ') : NULL;
    const char *addr = sp != NULL ? sp + 1 : NULL;
    const char *colon = addr != NULL ? strrchr(addr, ':') : NULL;
    uint64_t slot = CLUSTER_SLOTS;
    uint64_t port = 0;
    if (colon == NULL || tlsr_dec_u64(p + 1, (size_t)(sp - p - 1), &slot) != TLSR_OK ||
        tlsr_dec_u64(colon + 1, strlen(colon + 1), &port) != TLSR_OK || slot >= CLUSTER_SLOTS ||
        colon == addr || (size_t)(colon - addr) >= 64 || port < 1 || port > 65535) {
        cl->want_refresh = true;
        return NULL;
    }
    char host[64];
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    int i = node_at(cl, host, (int)port);
    if (i < 0) {
        return NULL;
    }
    if (is_moved) {
        cl->slot_node[slot] = (uint8_t)(i + 1); /* and the whole map, soon */
        cl->want_refresh = true;
    }
    return &cl->nodes[i];
}

/* Any node that is up, those in the map first. */
static struct rconn *any_up(struct rcluster *cl)
{
    struct rconn *other = NULL;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (!cl->is_used[i] || cl->nodes[i].state != RCONN_UP) {
            continue;
        }
        if (cl->is_mapped[i]) {
            return &cl->nodes[i];
        }
        other = other != NULL ? other : &cl->nodes[i];
    }
    return other;
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct rcluster *cl = t->data;
    bool is_mapped_down = false;
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (!cl->is_used[i]) {
            continue;
        }
        if (cl->has_map && cl->map_slots > 0 && !cl->want_refresh && !cl->is_mapped[i]) {
            tlsr__rconn_stop(&cl->nodes[i]); /* serves no slot: a master replaced, a replica */
            cl->is_used[i] = false;
            cl->tag[i][0] = '\0';
        } else if (cl->is_mapped[i] && cl->nodes[i].state != RCONN_UP) {
            is_mapped_down = true;
        }
    }
    struct rconn *up = any_up(cl);
    if (up == NULL) {
        for (size_t s = 0; s < cl->ep.n_hosts; s++) {
            (void)node_at(cl, cl->ep.hosts[s].host, cl->ep.hosts[s].port);
        }
        return;
    }
    ev_tstamp since = ev_now(cl->loop) - cl->last_refresh;
    if (((cl->want_refresh || is_mapped_down) && since >= DOWN_REFRESH_S) || since >= REFRESH_S) {
        ask_map(cl, up);
    }
}

void tlsr__rcluster_start(struct rcluster *cl, struct ev_loop *loop, const struct endpoint *ep,
                          const struct rconn_auth *auth, const char *who, tlsr_log_fn log,
                          void *log_arg)
{
    memset(cl, 0, sizeof(*cl));
    cl->loop = loop;
    cl->ep = *ep;
    cl->auth = *auth;
    cl->who = who;
    cl->log = log;
    cl->log_arg = log_arg;
    cl->want_refresh = true;
    for (size_t s = 0; s < ep->n_hosts; s++) {
        (void)node_at(cl, ep->hosts[s].host, ep->hosts[s].port);
    }
    ev_timer_init(&cl->timer, on_timer, TIMER_S, TIMER_S);
    cl->timer.data = cl;
    ev_timer_start(loop, &cl->timer);
}

void tlsr__rcluster_stop(struct rcluster *cl)
{
    if (cl->loop == NULL) {
        return;
    }
    ev_timer_stop(cl->loop, &cl->timer);
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (cl->is_used[i]) {
            tlsr__rconn_stop(&cl->nodes[i]); /* completes every pending command */
            cl->is_used[i] = false;
        }
    }
    cl->loop = NULL;
}

struct rconn *tlsr__rcluster_route(struct rcluster *cl, const char *key, size_t len)
{
    unsigned i = cl->slot_node[tlsr__fleet_key_slot(key, len)];
    return i == 0 ? NULL : &cl->nodes[i - 1];
}

const char *tlsr__rcluster_tag(const struct rcluster *cl, const struct rconn *rc)
{
    return cl->tag[rc - cl->nodes];
}

void tlsr__rcluster_count(const struct rcluster *cl, uint64_t *up, uint64_t *down)
{
    for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
        if (cl->is_mapped[i]) {
            *up += cl->nodes[i].state == RCONN_UP;
            *down += cl->nodes[i].state != RCONN_UP;
        }
    }
}

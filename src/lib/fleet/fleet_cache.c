/*
 * The fleet session cache: a second-level store on Redis behind the shared-memory cache
 * (tlsresume/fleet.h).
 *
 * Writes: every session stored in the shared cache is sealed (entry.c) and sent with SET ...
 * PX lifetime, fire and forget. Reads: the client-hello callback asks tlsr_ssl_client_hello_
 * lookup() which session the handshake wants; when the shared cache lacks it, one GET (GETDEL
 * for a single-use TLS 1.3 ticket, so that a ticket resumes once in the whole fleet) goes to
 * the endpoint chosen by rendezvous hashing and the handshake pauses. The reply, or the
 * deadline, whichever comes first, resumes it; a late reply is dropped.
 *
 * A pending lookup is a struct lookup hung on the SSL's ex_data; a finished one is replaced by
 * a marker so that the callback, called again when the handshake resumes, lets it go on. The
 * lookup lives until hiredis calls back (always: with a reply, or NULL on disconnect); freeing
 * the SSL first only detaches it.
 *
 * Threat: Redis contents (sealed, hashed names), a slow or dead Redis (the deadline; down
 * endpoints are not asked), tampered entries (do not open: counted, miss).
 */
#include "fleet_int.h"

#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include <tlsresume/ssl.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define MAX_PENDING 4096u
#define AAD_MAX 128
#define NAME_MAX_LEN 96

struct lookup;

struct tlsr_fleet_cache {
    struct ev_loop *loop;
    const struct tlsr_fleet_secret *secret;
    char prefix[48];
    double timeout_s;
    tlsr_log_fn log;
    void *log_arg;
    size_t n;
    struct rconn *conns; /* own, or the cluster's nodes (n: CLUSTER_MAX_NODES) */
    struct rconn own[TLSR_FLEET_MAX_ENDPOINTS];
    uint64_t seeds[TLSR_FLEET_MAX_ENDPOINTS];
    struct rcluster *cl;       /* a redis-cluster:// endpoint, or NULL */
    SSL_CTX *tls;              /* for rediss:// endpoints, or NULL */
    bool is_early;             /* 0-RTT is on: strike records go to Redis */
    uint32_t early_ttl_ms;     /* how long Redis keeps a strike record */
    uint32_t early_max_off_ms; /* farthest this server's clock may be from Redis's */
    bool early_lost[TLSR_FLEET_MAX_ENDPOINTS];      /* for logging changes once */
    bool early_clock_off[TLSR_FLEET_MAX_ENDPOINTS]; /* likewise (indexes of conns) */
    struct tlsr_fleet_cache_stats st;
    struct lookup *pending; /* doubly linked */
    uint32_t n_pending;
    bool is_closing;
};

struct lookup {
    struct tlsr_fleet_cache *fc;
    struct lookup *prev;
    struct lookup *next;
    SSL *ssl; /* NULL once finished or once the SSL is freed */
    tlsr_fleet_resume_fn resume;
    void *arg;
    struct tlsr_ssl_lookup lk;
    uint8_t aad[AAD_MAX];
    size_t aad_len;
    ev_timer deadline;
    int refs;            /* hiredis callbacks still due: the lookup lives until none */
    bool is_session_due; /* the session GET has not answered yet */
    bool is_strike_due;  /* the 0-RTT register SET NX has not answered yet */
    size_t strike_ep;    /* the endpoint asked */
};

static int ssl_index = -1;
static char done_marker;

static void ssl_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (ptr != NULL && ptr != &done_marker) {
        struct lookup *l = ptr;
        l->ssl = NULL;
        ev_timer_stop(l->fc->loop, &l->deadline);
    }
}

/* Rendezvous hashing over the endpoints (entry.c): the same choice as every other server. */
static struct rconn *pick(struct tlsr_fleet_cache *fc, const uint8_t hash[NAME_HASH_LEN])
{
    return &fc->conns[tlsr__fleet_entry_shard(fc->seeds, fc->n, hash)];
}

/* Where a key goes: its slot's master on a Cluster (NULL: none known), else the endpoint
 * rendezvous hashing picks for hash. */
static struct rconn *route(struct tlsr_fleet_cache *fc, const char *name,
                           const uint8_t hash[NAME_HASH_LEN])
{
    return fc->cl != NULL ? tlsr__rcluster_route(fc->cl, name, strlen(name)) : pick(fc, hash);
}

/* The Redis key name and endpoint of a session: a keyed hash of its ID and context. */
static tlsr_status name_of(struct tlsr_fleet_cache *fc, const uint8_t *ctx, size_t ctx_len,
                           const uint8_t *id, size_t id_len, char name[NAME_MAX_LEN],
                           struct rconn **conn)
{
    uint8_t h[NAME_HASH_LEN];
    TRY(tlsr__fleet_entry_name(fc->secret, fc->prefix, ctx, ctx_len, id, id_len, name, NAME_MAX_LEN,
                               h));
    *conn = route(fc, name, h);
    return TLSR_OK;
}

/* The name of the 0-RTT register's state hash on conn's Redis: one per Redis server, so on a
 * Cluster one per master, in a slot of that master's (the strike script reaches it there);
 * false when no slot of the node is known. */
static bool state_name(const struct tlsr_fleet_cache *fc, const struct rconn *conn, char *out,
                       size_t cap)
{
    if (fc->cl == NULL) {
        snprintf(out, cap, "%searly", fc->prefix);
        return true;
    }
    const char *tag = tlsr__rcluster_tag(fc->cl, conn);
    snprintf(out, cap, "%searly:{%s}", fc->prefix, tag);
    return tag[0] != '\0';
}

static void on_ignored_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    (void)reply;
    (void)priv;
}

static void l2_store(void *arg, const struct tlsr_cache_key *key, const uint8_t *value,
                     size_t value_len, uint32_t lifetime_s, unsigned flags)
{
    struct tlsr_fleet_cache *fc = arg;
    uint8_t aad[AAD_MAX];
    size_t aad_len = tlsr__fleet_entry_aad(key->ctx, key->ctx_len, key->id, key->id_len, flags, aad,
                                           sizeof(aad));
    char name[NAME_MAX_LEN];
    struct rconn *conn = NULL;
    if (aad_len == 0 ||
        name_of(fc, key->ctx, key->ctx_len, key->id, key->id_len, name, &conn) != TLSR_OK ||
        conn == NULL || conn->state != RCONN_UP) {
        return;
    }
    uint8_t blob[ENTRY_MAX_VALUE + 8 + SEAL_OVERHEAD];
    size_t blob_len = 0;
    uint64_t expires = (uint64_t)time(NULL) + lifetime_s;
    if (tlsr__fleet_entry_seal(fc->secret, aad, aad_len, expires, value, value_len, blob,
                               sizeof(blob), &blob_len) != TLSR_OK) {
        return;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)lifetime_s * 1000ull);
    const char *argv[] = {"SET", name, (const char *)blob, "PX", ttl};
    size_t lens[] = {3, strlen(name), blob_len, 2, strlen(ttl)};
    if (tlsr__rconn_argv(conn, on_ignored_reply, NULL, 5, argv, lens) == 0) {
        fc->st.stored++;
        tlsr__rconn_flush(conn);
    }
}

static void l2_remove(void *arg, const struct tlsr_cache_key *key)
{
    struct tlsr_fleet_cache *fc = arg;
    char name[NAME_MAX_LEN];
    struct rconn *conn = NULL;
    if (name_of(fc, key->ctx, key->ctx_len, key->id, key->id_len, name, &conn) != TLSR_OK) {
        return;
    }
    if (tlsr__rconn_command(conn, on_ignored_reply, NULL, "DEL %s", name) == 0) {
        fc->st.removed++;
    }
}

static void unlink_lookup(struct lookup *l)
{
    struct tlsr_fleet_cache *fc = l->fc;
    if (l->prev != NULL) {
        l->prev->next = l->next;
    } else {
        fc->pending = l->next;
    }
    if (l->next != NULL) {
        l->next->prev = l->prev;
    }
    fc->n_pending--;
}

/* Lets the handshake go on (once). */
static void finish(struct lookup *l)
{
    SSL *ssl = l->ssl;
    if (ssl == NULL) {
        return;
    }
    l->ssl = NULL;
    ev_timer_stop(l->fc->loop, &l->deadline);
    if (l->is_strike_due) {
        l->is_strike_due = false;
        l->fc->st.early_unavailable++;
        tlsr_ssl_early_verdict(ssl, TLSR_EARLY_UNAVAILABLE);
    }
    l->is_session_due = false;
    SSL_set_ex_data(ssl, ssl_index, &done_marker);
    if (!l->fc->is_closing) {
        l->resume(ssl, l->arg);
    }
}

static void use_entry(struct lookup *l, const redisReply *reply)
{
    struct tlsr_fleet_cache *fc = l->fc;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        fc->st.unavailable++;
        tlsr_ssl_l2_result(l->ssl, TLSR_L2_DOWN);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        fc->st.misses++;
        tlsr_ssl_l2_result(l->ssl, TLSR_L2_MISS);
        return;
    }
    uint8_t value[ENTRY_MAX_VALUE];
    size_t value_len = 0;
    uint64_t expires = 0;
    uint64_t now = (uint64_t)time(NULL);
    tlsr_status rc =
        tlsr__fleet_entry_open(fc->secret, l->aad, l->aad_len, (const uint8_t *)reply->str,
                               reply->len, now, value, sizeof(value), &value_len, &expires);
    if (rc == TLSR_OK) {
        uint64_t left = expires - now;
        rc = tlsr_ssl_prime(l->ssl, &l->lk, value, value_len,
                            (uint32_t)(left > UINT32_MAX ? UINT32_MAX : left));
        OPENSSL_cleanse(value, sizeof(value));
    }
    if (rc == TLSR_OK) {
        fc->st.hits++;
        tlsr_ssl_l2_result(l->ssl, TLSR_L2_HIT);
    } else {
        fc->st.rejected++;
        tlsr_ssl_l2_result(l->ssl, TLSR_L2_REJECTED);
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_DEBUG, "event=entry_rejected error=\"%s\"",
                        tlsr_last_error());
    }
}

/* One hiredis callback came: resume the handshake once nothing more is awaited; free the lookup
 * once no callback is due. */
static void answered(struct lookup *l)
{
    if (l->ssl != NULL && !l->is_session_due && !l->is_strike_due) {
        finish(l);
    }
    if (--l->refs > 0) {
        return;
    }
    unlink_lookup(l);
    OPENSSL_cleanse(&l->lk, sizeof(l->lk));
    tlsr__free(l);
}

static void on_get(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct lookup *l = priv;
    if (l->ssl != NULL && l->is_session_due) {
        l->is_session_due = false;
        use_entry(l, r);
    }
    answered(l);
}

/*
 * The fleet's strike register, one script per 0-RTT ClientHello on the endpoint its hash picks.
 * It records the flight (SET NX PX) and answers {verdict, Redis's clock minus ours in ms}:
 *   1 first seen; 0 seen before (a replay);
 *   3 this Redis lost records just now: it is not the one that took the last records (its run
 *     id changed: a restart or a failover), was flushed (the state hash is gone), or evicted
 *     keys (evicted_keys moved), any of which may have dropped a live record;
 *   2 a loss was found less than a record's lifetime ago: a replay of a lost record would look
 *     first seen, so first sightings are refused until every lost record would have expired;
 *   4 this server's clock is farther from Redis's than the fleet's skew allows: the record
 *     lifetime below would not cover the flights it may find fresh.
 * Everything but 1 refuses early data. The state hash P early has no TTL (volatile eviction
 * policies never drop it; any other loss of it reads as a loss of records, and so does a Redis
 * the fleet has never used: it cannot be told from a flushed one). With no strike key (ARGV[2]
 * empty) the script only checks, as each connection comes up, so that a loss is found, and
 * its refusal period starts, before the first 0-RTT ClientHello.
 */
static const char strike_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local off = now - tonumber(ARGV[4])\n"
    "local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)') or '?'\n"
    "local ev = string.match(redis.call('INFO', 'stats'), 'evicted_keys:(%d+)') or '?'\n"
    "local st = redis.call('HMGET', ARGV[1], 'run', 'evicted', 'lost_at')\n"
    "local lost, is_new = tonumber(st[3]) or 0, false\n"
    "if st[1] ~= run or st[2] ~= ev then\n"
    "  lost, is_new = now, true\n"
    "  redis.call('HSET', ARGV[1], 'run', run, 'evicted', ev, 'lost_at', tostring(now))\n"
    "end\n"
    "local first = ARGV[2] == '' or redis.call('SET', ARGV[2], '1', 'NX', 'PX', ARGV[3])\n"
    "if not first then return {0, off} end\n"
    "if is_new then return {3, off} end\n"
    "if now < lost + tonumber(ARGV[3]) then return {2, off} end\n"
    "if math.abs(off) > tonumber(ARGV[5]) then return {4, off} end\n"
    "return {1, off}\n";

/* This server's wall clock in ms, for the script's clock check. */
static unsigned long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

/* Logs a change of an endpoint's 0-RTT state once: lost records, a clock too far off. */
static void early_state(struct tlsr_fleet_cache *fc, size_t ep, long long code, long long off)
{
    bool is_lost = code == 2 || code == 3;
    const char *redis = fc->conns[ep].ep.text;
    if (is_lost && !fc->early_lost[ep]) {
        tlsr__fleet_log(
            fc->log, fc->log_arg, TLSR_LOG_WARN,
            "event=early_register_lost redis=%s refusing_s=%u note=\"Redis is new to the "
            "fleet, restarted, failed over, was flushed or evicted keys: 0-RTT is "
            "refused until every strike record it may have lost has expired\"",
            redis, fc->early_ttl_ms / 1000);
    } else if (!is_lost && fc->early_lost[ep]) {
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_INFO,
                        "event=early_register_trusted redis=%s", redis);
    }
    fc->early_lost[ep] = is_lost;
    bool is_off = code == 4;
    if (is_off && !fc->early_clock_off[ep]) {
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_WARN,
                        "event=early_clock_off redis=%s offset_ms=%lld max_ms=%u note=\"this "
                        "server's clock is too far from Redis's: 0-RTT refused here\"",
                        redis, off, fc->early_max_off_ms);
    } else if (!is_off && code == 1 && fc->early_clock_off[ep]) {
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_INFO,
                        "event=early_clock_ok redis=%s offset_ms=%lld", redis, off);
    }
    if (code == 1 || is_off) {
        fc->early_clock_off[ep] = is_off;
    }
}

static void on_strike(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct lookup *l = priv;
    redisReply *reply = r;
    if (l->ssl != NULL && l->is_strike_due) {
        l->is_strike_due = false;
        struct tlsr_fleet_cache *fc = l->fc;
        enum tlsr_early_verdict v = TLSR_EARLY_UNAVAILABLE;
        bool is_refused = false; /* answered, but neither first seen nor a replay */
        long long code = -1;
        long long off = 0;
        if (tlsr__fleet_strike_parse(reply, &code, &off)) {
            v = code == 1 ? TLSR_EARLY_FRESH : code == 0 ? TLSR_EARLY_REPLAY : v;
            is_refused = code >= 2 && code <= 4;
            fc->st.early_lost += code == 2 || code == 3;
            fc->st.early_clock += code == 4;
            early_state(fc, l->strike_ep, code, off);
        } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_ERROR,
                            "event=early_register_failed redis=%s error=\"%.200s\"",
                            fc->conns[l->strike_ep].ep.text, reply->str);
        }
        fc->st.early_fresh += v == TLSR_EARLY_FRESH;
        fc->st.early_replays += v == TLSR_EARLY_REPLAY;
        fc->st.early_unavailable += v == TLSR_EARLY_UNAVAILABLE && !is_refused;
        tlsr_ssl_early_verdict(l->ssl, v);
    }
    answered(l);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct lookup *l = t->data;
    if (l->is_session_due && l->ssl != NULL) {
        l->fc->st.timeouts++;
        tlsr_ssl_l2_result(l->ssl, TLSR_L2_TIMEOUT);
    }
    finish(l); /* the lookup stays until hiredis calls back */
}

/* Sends GET (GETDEL for single-use) for the session the ClientHello asks for, if any. */
static void ask_session(struct tlsr_fleet_cache *fc, struct lookup *l, SSL *ssl)
{
    if (tlsr_ssl_client_hello_lookup(ssl, &l->lk) != TLSR_OK) {
        return; /* nothing to fetch: most handshakes */
    }
    fc->st.lookups++;
    char name[NAME_MAX_LEN];
    struct rconn *conn = NULL;
    l->aad_len = tlsr__fleet_entry_aad(l->lk.sid_ctx, l->lk.sid_ctx_len, l->lk.id, l->lk.id_len,
                                       l->lk.flags, l->aad, sizeof(l->aad));
    const char *cmd = (l->lk.flags & TLSR_CACHE_SINGLE_USE) != 0 ? "GETDEL %s" : "GET %s";
    if (l->aad_len == 0 ||
        name_of(fc, l->lk.sid_ctx, l->lk.sid_ctx_len, l->lk.id, l->lk.id_len, name, &conn) !=
            TLSR_OK ||
        tlsr__rconn_command(conn, on_get, l, cmd, name) != 0) {
        fc->st.unavailable++;
        tlsr_ssl_l2_result(ssl, TLSR_L2_DOWN);
        return;
    }
    l->refs++;
    l->is_session_due = true;
}

/* Records a 0-RTT ClientHello in the fleet's register (after the local one said "first"). */
static void ask_strike(struct tlsr_fleet_cache *fc, struct lookup *l, SSL *ssl)
{
    uint8_t key[32];
    if (tlsr_ssl_client_hello_early(ssl, key) != TLSR_OK) {
        return; /* no early data, or refused here already */
    }
    tlsr_ssl_early_require_verdict(ssl);
    char name[NAME_MAX_LEN];
    int n = snprintf(name, sizeof(name), "%se:", fc->prefix);
    for (size_t i = 0; i < 16 && n > 0 && (size_t)n + 2 < sizeof(name); i++) {
        n += snprintf(name + n, sizeof(name) - (size_t)n, "%02x", key[i]);
    }
    uint8_t h[NAME_HASH_LEN];
    memcpy(h, key + 16, sizeof(h));
    struct rconn *conn = route(fc, name, h);
    char state[NAME_MAX_LEN];
    if (conn == NULL || !state_name(fc, conn, state, sizeof(state)) ||
        tlsr__rconn_command(conn, on_strike, l, "EVAL %s 1 %s %s %s %u %llu %u", strike_lua, name,
                            state, name, fc->early_ttl_ms, now_ms(), fc->early_max_off_ms) != 0) {
        fc->st.early_unavailable++;
        tlsr_ssl_early_verdict(ssl, TLSR_EARLY_UNAVAILABLE);
        return;
    }
    l->strike_ep = (size_t)(conn - fc->conns);
    l->refs++;
    l->is_strike_due = true;
}

int tlsr_fleet_cache_client_hello(struct tlsr_fleet_cache *fc, SSL *ssl,
                                  tlsr_fleet_resume_fn resume, void *arg)
{
    void *state = SSL_get_ex_data(ssl, ssl_index);
    if (state == &done_marker) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    if (state != NULL) {
        return SSL_CLIENT_HELLO_RETRY;
    }
    struct lookup *l = NULL;
    if (fc->n_pending >= MAX_PENDING || (l = tlsr__calloc(1, sizeof(*l))) == NULL) {
        fc->st.unavailable++;
        tlsr_ssl_l2_result(ssl, TLSR_L2_DOWN);
        uint8_t key[32];
        if (tlsr_ssl_client_hello_early(ssl, key) == TLSR_OK) {
            tlsr_ssl_early_require_verdict(ssl); /* no fleet answer: refuse early data */
        }
        SSL_set_ex_data(ssl, ssl_index, &done_marker);
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    l->fc = fc;
    ask_session(fc, l, ssl);
    ask_strike(fc, l, ssl);
    SSL_set_ex_data(ssl, ssl_index, &done_marker); /* asked once, even when nothing was sent */
    if (l->refs == 0) {
        OPENSSL_cleanse(&l->lk, sizeof(l->lk));
        tlsr__free(l);
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    l->ssl = ssl;
    l->resume = resume;
    l->arg = arg;
    l->next = fc->pending;
    if (fc->pending != NULL) {
        fc->pending->prev = l;
    }
    fc->pending = l;
    fc->n_pending++;
    ev_timer_init(&l->deadline, on_deadline, fc->timeout_s, 0.0);
    l->deadline.data = l;
    ev_timer_start(fc->loop, &l->deadline);
    SSL_set_ex_data(ssl, ssl_index, l);
    return SSL_CLIENT_HELLO_RETRY;
}

static tlsr_status check_opts(const struct tlsr_fleet_opts *o)
{
    ENSURE(o != NULL && o->secret != NULL, TLSR_E_INVALID, "fleet: a fleet key is required");
    ENSURE(o->n_endpoints >= 1 && o->n_endpoints <= TLSR_FLEET_MAX_ENDPOINTS, TLSR_E_INVALID,
           "fleet: 1 to %d Redis endpoints, not %zu", TLSR_FLEET_MAX_ENDPOINTS, o->n_endpoints);
    ENSURE(o->lookup_timeout_ms >= 1 && o->lookup_timeout_ms <= 1000, TLSR_E_INVALID,
           "fleet: lookup timeout %u ms is outside 1 to 1000 ms", o->lookup_timeout_ms);
    ENSURE(o->prefix != NULL && strlen(o->prefix) < 40, TLSR_E_INVALID,
           "fleet: the key prefix is limited to 39 bytes");
    ENSURE(o->username == NULL || (o->username[0] != '\0' && strlen(o->username) < 128 &&
                                   strpbrk(o->username, " \t\r\n") == NULL && o->password != NULL),
           TLSR_E_INVALID, "fleet: a Redis ACL user needs a name (no spaces) and a password");
    for (size_t i = 0; i < o->n_endpoints; i++) {
        struct endpoint ep;
        TRY(tlsr__fleet_endpoint_parse(o->endpoints[i], &ep));
        ENSURE(!ep.is_cluster || o->n_endpoints == 1, TLSR_E_INVALID,
               "fleet: %s: a Redis Cluster is the only endpoint (the cluster shards by itself)",
               ep.text);
    }
    return TLSR_OK;
}

void tlsr_fleet_opts_init(struct tlsr_fleet_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->prefix = "tlsr:";
    opts->lookup_timeout_ms = 5;
    opts->early_clock_skew_s = 30;
}

bool tlsr__fleet_strike_parse(const void *r, long long *code, long long *off)
{
    const redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        return false;
    }
    *code = reply->element[0]->integer;
    *off = reply->element[1]->integer;
    return true;
}

bool tlsr__fleet_may_evict(const void *r, unsigned long long *maxmemory, char policy[32])
{
    const redisReply *reply = r;
    *maxmemory = 0;
    policy[0] = '\0';
    if (reply == NULL || reply->type != REDIS_REPLY_STRING || reply->str == NULL) {
        return false;
    }
    /* hiredis ends every string with a NUL; a field missing, or another shape: no warning. */
    const char *m = strstr(reply->str, "\nmaxmemory:");
    const char *p = strstr(reply->str, "\nmaxmemory_policy:");
    if (m == NULL || p == NULL || sscanf(m, "\nmaxmemory:%llu", maxmemory) != 1 ||
        sscanf(p, "\nmaxmemory_policy:%31[a-z-]", policy) != 1) {
        return false;
    }
    return *maxmemory != 0 && strcmp(policy, "noeviction") != 0;
}

/* The cache a connection's up hook belongs to (a Cluster node's hook is the cluster's). */
static struct tlsr_fleet_cache *cache_of(const struct rconn *rc)
{
    if (rc->on_redirect != NULL) {
        const struct rcluster *cl = rc->on_up_arg;
        return cl->on_node_up_arg;
    }
    return rc->on_up_arg;
}

/* The reply to INFO memory: a Redis that may evict keys may evict strike records, each
 * eviction then refuses 0-RTT for a record's lifetime (strike_lua). Said once per connect. */
static void on_memory_info(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    struct tlsr_fleet_cache *fc = cache_of(rc);
    redisReply *reply = r;
    unsigned long long maxmemory = 0;
    char policy[32] = "";
    if (tlsr__fleet_may_evict(reply, &maxmemory, policy)) {
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_WARN,
                        "event=redis_may_evict redis=%s maxmemory=%llu policy=%s note=\"when "
                        "Redis evicts a key, 0-RTT is refused for %u s on that Redis; set "
                        "maxmemory-policy noeviction for 0-RTT (docs/EARLY_DATA.md)\"",
                        rc->ep.text, maxmemory, policy, fc->early_ttl_ms / 1000);
    }
}

static void on_state(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct rconn *rc = priv;
    struct tlsr_fleet_cache *fc = cache_of(rc);
    redisReply *reply = r;
    long long code = -1;
    long long off = 0;
    if (tlsr__fleet_strike_parse(reply, &code, &off)) {
        early_state(fc, (size_t)(rc - fc->conns), code, off);
    } else if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        tlsr__fleet_log(fc->log, fc->log_arg, TLSR_LOG_ERROR,
                        "event=early_register_failed redis=%s error=\"%.200s\"", rc->ep.text,
                        reply->str);
    }
}

/* As a connection comes up: is Redis set to evict, and has it lost strike records? */
static void early_check(struct rconn *rc, void *arg)
{
    struct tlsr_fleet_cache *fc = arg;
    (void)tlsr__rconn_command(rc, on_memory_info, rc, "INFO memory");
    char state[NAME_MAX_LEN];
    if (state_name(fc, rc, state, sizeof(state))) {
        (void)tlsr__rconn_command(rc, on_state, rc, "EVAL %s 1 %s %s %s %u %llu %u", strike_lua,
                                  state, state, "", fc->early_ttl_ms, now_ms(),
                                  fc->early_max_off_ms);
    }
}

/* The session cache on a Redis Cluster: the cluster's nodes are the connections. */
static tlsr_status start_cluster(struct tlsr_fleet_cache *fc, const struct endpoint *ep,
                                 const struct rconn_auth *auth, const struct tlsr_fleet_opts *o)
{
    fc->cl = tlsr__calloc(1, sizeof(*fc->cl));
    ENSURE(fc->cl != NULL, TLSR_E_NOMEM, "fleet: out of memory");
    tlsr__rcluster_start(fc->cl, fc->loop, ep, auth, "cache", o->log, o->log_arg);
    fc->cl->on_node_up = fc->is_early ? early_check : NULL;
    fc->cl->on_node_up_arg = fc;
    fc->conns = fc->cl->nodes;
    return TLSR_OK;
}

tlsr_status tlsr_fleet_cache_new(struct ev_loop *loop, const struct tlsr_fleet_opts *o,
                                 struct tlsr_fleet_cache **out)
{
    ENSURE(loop != NULL && out != NULL, TLSR_E_INVALID, "fleet: NULL argument");
    *out = NULL;
    TRY(check_opts(o));
    if (ssl_index < 0) {
        ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_free_cb);
        ENSURE(ssl_index >= 0, TLSR_E_NOMEM, "fleet: no SSL ex_data index");
    }
    struct tlsr_fleet_cache *fc = tlsr__calloc(1, sizeof(*fc));
    ENSURE(fc != NULL, TLSR_E_NOMEM, "fleet: out of memory");
    fc->loop = loop;
    fc->secret = o->secret;
    snprintf(fc->prefix, sizeof(fc->prefix), "%s", o->prefix);
    fc->timeout_s = o->lookup_timeout_ms / 1000.0;
    /* A flight's record outlives the last moment any server may find it fresh: OpenSSL finds
     * it fresh up to 10 s after it was sent by the clock of the server that issued the ticket,
     * and the server it is replayed to may run up to the skew behind that one. Each server
     * checks its own clock against Redis's (half the skew, plus 1 s of measurement), so the
     * skew holds between any two (docs/EARLY_DATA.md). */
    uint32_t window = o->early_window_s != 0 ? o->early_window_s : 10;
    fc->is_early = o->is_early_data;
    fc->early_ttl_ms = (window + o->early_clock_skew_s + 2u) * 1000u;
    fc->early_max_off_ms = o->early_clock_skew_s * 500u + 1000u;
    fc->log = o->log;
    fc->log_arg = o->log_arg;
    if (tlsr__fleet_tls_for(o, &fc->tls) != TLSR_OK) {
        tlsr__free(fc);
        return TLSR_E_INVALID; /* the message names the file */
    }
    struct rconn_auth auth = {o->username, o->password, fc->tls, o->tls.server_name};
    fc->conns = fc->own;
    for (size_t i = 0; i < o->n_endpoints; i++) {
        struct endpoint ep;
        tlsr_status rc = tlsr__fleet_endpoint_parse(o->endpoints[i], &ep);
        if (rc == TLSR_OK && ep.is_cluster) {
            rc = start_cluster(fc, &ep, &auth, o);
        }
        if (rc != TLSR_OK) {
            tlsr_fleet_cache_free(fc);
            return rc;
        }
        if (ep.is_cluster) {
            break;
        }
        fc->seeds[i] = tlsr__fleet_endpoint_seed(ep.text);
        tlsr__rconn_start(&fc->own[i], loop, &ep, &auth, "cache", o->log, o->log_arg);
        fc->own[i].on_up = fc->is_early ? early_check : NULL;
        fc->own[i].on_up_arg = fc;
        fc->n++;
    }
    *out = fc;
    return TLSR_OK;
}

void tlsr_fleet_cache_free(struct tlsr_fleet_cache *fc)
{
    if (fc == NULL) {
        return;
    }
    fc->is_closing = true;
    for (size_t i = 0; i < fc->n; i++) {
        tlsr__rconn_stop(&fc->own[i]); /* completes every pending lookup */
    }
    if (fc->cl != NULL) {
        tlsr__rcluster_stop(fc->cl);
        tlsr__free(fc->cl);
    }
    SSL_CTX_free(fc->tls);
    tlsr__free(fc);
}

tlsr_status tlsr_fleet_cache_bind(struct tlsr_fleet_cache *fc, SSL_CTX *ctx)
{
    ENSURE(fc != NULL && ctx != NULL, TLSR_E_INVALID, "fleet: NULL argument");
    struct tlsr_ssl_l2 l2 = {l2_store, l2_remove, fc};
    return tlsr_ssl_set_l2(ctx, &l2);
}

void tlsr_fleet_cache_get_stats(const struct tlsr_fleet_cache *fc,
                                struct tlsr_fleet_cache_stats *out)
{
    *out = fc->st;
    out->endpoints_up = 0;
    out->endpoints_down = 0;
    if (fc->cl != NULL) {
        tlsr__rcluster_count(fc->cl, &out->endpoints_up, &out->endpoints_down);
    }
    for (size_t i = 0; i < fc->n; i++) {
        if (fc->conns[i].state == RCONN_UP) {
            out->endpoints_up++;
        } else {
            out->endpoints_down++;
        }
    }
}

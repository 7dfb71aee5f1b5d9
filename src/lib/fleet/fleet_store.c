/*
 * A blocking second-level session store on Redis, for servers without an event loop: GnuTLS
 * asks for a session from inside its handshake (gnutls_db_set_retrieve_function) and waits for
 * the answer, so the lookup must be synchronous. Entries are the fleet cache's (sealed, named
 * by a keyed hash, with a TTL, on the endpoint rendezvous hashing picks, or the slot's master
 * on a Cluster), so the data in Redis looks the same whoever wrote it.
 *
 * The connections are serve's (redis.c, cluster.c: TCP, Unix socket or TLS, ACL users,
 * Sentinel, Cluster with MOVED and ASK) on a private libev loop run by a thread of the store's
 * own, so reconnects, heartbeats, failovers and slot maps go on between handshakes. A call
 * takes the loop's lock (released by the loop thread while it waits for events: libev's
 * ev_set_loop_release_cb), queues its command, wakes the loop, and waits on a condition
 * variable until the reply comes or the lookup timeout passes. A command whose reply comes
 * too late is left to its callback, which frees it. A connection that is not up is a miss at
 * once: a dead Redis costs no wait. The store waits up to 1 s at creation for its connections
 * (off the handshake path).
 *
 * Threat: a hung or dead Redis stalling handshakes (bounded waits, then misses), a forged or
 * foreign entry (sealed: it does not open), the password in logs (never logged), a Redis that
 * is not who it claims (rediss://: verified as serve verifies it).
 */
#include "fleet_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ev.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define NAME_LEN 96
#define START_WAIT_S 1.0

struct tlsr_fleet_store {
    const struct tlsr_fleet_secret *secret;
    char prefix[48];
    char password[512];
    char username[128];
    char tls_name[256];
    SSL_CTX *tls;
    struct ev_loop *loop;
    struct rconn conns[TLSR_FLEET_MAX_ENDPOINTS]; /* standalone or Sentinel endpoints */
    uint64_t seeds[TLSR_FLEET_MAX_ENDPOINTS];
    size_t n;
    struct rcluster *cl; /* or a Cluster */
    uint32_t timeout_ms;
    pthread_mutex_t lock; /* the loop's: held by its thread except while it waits for events */
    pthread_cond_t replied;
    pthread_t thread;
    bool has_thread;
    bool is_stopping;
    ev_async wake;
};

/* One command waiting for its reply. Freed by whoever comes last: the call that gave up
 * (is_abandoned) leaves it to the callback. */
struct wait {
    struct tlsr_fleet_store *fs;
    bool is_done;
    bool is_abandoned;
    int type;          /* of the reply (0: none, the link failed) */
    long long integer; /* an integer reply */
    size_t len;        /* a string reply's */
    uint8_t str[ENTRY_MAX_VALUE + 8 + SEAL_OVERHEAD];
    bool is_too_long;
};

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    struct wait *w = priv;
    const redisReply *r = reply;
    if (w->is_abandoned) {
        tlsr__free(w);
        return;
    }
    w->is_done = true;
    pthread_cond_broadcast(&w->fs->replied);
    if (r == NULL) {
        return;
    }
    w->type = r->type;
    w->integer = r->integer;
    if (r->type == REDIS_REPLY_STRING) {
        w->is_too_long = r->len > sizeof(w->str);
        w->len = w->is_too_long ? 0 : r->len;
        memcpy(w->str, r->str, w->len);
    }
}

static void release_loop(struct ev_loop *loop)
{
    struct tlsr_fleet_store *fs = ev_userdata(loop);
    pthread_mutex_unlock(&fs->lock);
}

static void acquire_loop(struct ev_loop *loop)
{
    struct tlsr_fleet_store *fs = ev_userdata(loop);
    pthread_mutex_lock(&fs->lock);
}

/* A call queued a command (the loop rearms its watchers), or the store is closing. */
static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)revents;
    struct tlsr_fleet_store *fs = a->data;
    if (fs->is_stopping) {
        ev_break(loop, EVBREAK_ALL);
    }
}

static void *run_loop(void *arg)
{
    struct tlsr_fleet_store *fs = arg;
    pthread_mutex_lock(&fs->lock);
    ev_run(fs->loop, 0);
    pthread_mutex_unlock(&fs->lock);
    return NULL;
}

static struct timespec deadline_after(uint32_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000u);
    ts.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* The connection of the entry named name (hash: its name hash); NULL when none is known. */
static struct rconn *route(struct tlsr_fleet_store *fs, const char *name,
                           const uint8_t hash[NAME_HASH_LEN])
{
    if (fs->cl != NULL) {
        return tlsr__rcluster_route(fs->cl, name, strlen(name));
    }
    return &fs->conns[tlsr__fleet_entry_shard(fs->seeds, fs->n, hash)];
}

/* Sends argv to the connection of name and waits, bounded, for the reply: a wait to free with
 * tlsr__free, or NULL (no connection up, out of memory, or too late). */
static struct wait *call(struct tlsr_fleet_store *fs, const char *name,
                         const uint8_t hash[NAME_HASH_LEN], int argc, const char **argv,
                         const size_t *lens)
{
    struct wait *w = tlsr__calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    w->fs = fs;
    struct timespec until = deadline_after(fs->timeout_ms);
    pthread_mutex_lock(&fs->lock);
    struct rconn *rc = route(fs, name, hash);
    if (rc == NULL || tlsr__rconn_argv(rc, on_reply, w, argc, argv, lens) != 0) {
        pthread_mutex_unlock(&fs->lock);
        tlsr__free(w);
        return NULL;
    }
    tlsr__rconn_flush(rc);
    ev_async_send(fs->loop, &fs->wake);
    while (!w->is_done) {
        if (pthread_cond_timedwait(&fs->replied, &fs->lock, &until) == ETIMEDOUT) {
            break;
        }
    }
    if (!w->is_done) {
        w->is_abandoned = true; /* its callback frees it */
        w = NULL;
    }
    pthread_mutex_unlock(&fs->lock);
    return w;
}

/* Whether every connection that matters is up: the endpoints, or a Cluster's mapped masters. */
static bool all_up(const struct tlsr_fleet_store *fs)
{
    if (fs->cl != NULL) {
        uint64_t up = 0;
        uint64_t down = 0;
        tlsr__rcluster_count(fs->cl, &up, &down);
        return fs->cl->has_map && up > 0 && down == 0;
    }
    for (size_t i = 0; i < fs->n; i++) {
        if (fs->conns[i].state != RCONN_UP) {
            return false;
        }
    }
    return true;
}

tlsr_status tlsr_fleet_store_new(const struct tlsr_fleet_opts *o, struct tlsr_fleet_store **out)
{
    ENSURE(o != NULL && out != NULL && o->secret != NULL && o->n_endpoints >= 1 &&
               o->n_endpoints <= TLSR_FLEET_MAX_ENDPOINTS && o->prefix != NULL &&
               strlen(o->prefix) < 40,
           TLSR_E_INVALID, "fleet store: needs 1 to %d endpoints, a fleet key and a prefix",
           TLSR_FLEET_MAX_ENDPOINTS);
    ENSURE(o->username == NULL ||
               (o->username[0] != '\0' && strlen(o->username) < 128 && o->password != NULL),
           TLSR_E_INVALID, "fleet store: a Redis ACL user needs a name and a password");
    ENSURE(o->password == NULL || strlen(o->password) < 512, TLSR_E_INVALID,
           "fleet store: the Redis password is longer than 511 bytes");
    ENSURE(o->tls.server_name == NULL || strlen(o->tls.server_name) < 256, TLSR_E_INVALID,
           "fleet store: the Redis TLS name is longer than 255 bytes");
    *out = NULL;
    struct endpoint eps[TLSR_FLEET_MAX_ENDPOINTS];
    for (size_t i = 0; i < o->n_endpoints; i++) {
        TRY(tlsr__fleet_endpoint_parse(o->endpoints[i], &eps[i]));
        ENSURE(!eps[i].is_cluster || o->n_endpoints == 1, TLSR_E_INVALID,
               "fleet store: %s: a Redis Cluster is the only endpoint (the cluster shards by "
               "itself)",
               eps[i].text);
    }
    struct tlsr_fleet_store *fs = tlsr__calloc(1, sizeof(*fs));
    ENSURE(fs != NULL, TLSR_E_NOMEM, "fleet store: out of memory");
    fs->secret = o->secret;
    snprintf(fs->prefix, sizeof(fs->prefix), "%s", o->prefix);
    if (o->password != NULL) {
        snprintf(fs->password, sizeof(fs->password), "%s", o->password);
    }
    if (o->username != NULL) {
        snprintf(fs->username, sizeof(fs->username), "%s", o->username);
    }
    if (o->tls.server_name != NULL) {
        snprintf(fs->tls_name, sizeof(fs->tls_name), "%s", o->tls.server_name);
    }
    fs->timeout_ms = o->lookup_timeout_ms > 0 ? o->lookup_timeout_ms : 5;
    pthread_condattr_t ca;
    bool is_sync = pthread_mutex_init(&fs->lock, NULL) == 0;
    if (is_sync &&
        (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
         pthread_cond_init(&fs->replied, &ca) != 0)) {
        pthread_mutex_destroy(&fs->lock);
        is_sync = false;
    }
    fs->loop = is_sync ? ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK) : NULL;
    if (fs->loop == NULL) {
        if (is_sync) {
            pthread_cond_destroy(&fs->replied);
            pthread_mutex_destroy(&fs->lock);
        }
        tlsr__free(fs);
        return tlsr__err_set(TLSR_E_SYSTEM, "fleet store: no event loop");
    }
    ev_set_userdata(fs->loop, fs);
    ev_set_loop_release_cb(fs->loop, release_loop, acquire_loop);
    ev_async_init(&fs->wake, on_wake);
    fs->wake.data = fs;
    ev_async_start(fs->loop, &fs->wake);
    if (tlsr__fleet_tls_for(o, &fs->tls) != TLSR_OK) {
        tlsr_fleet_store_free(fs);
        return TLSR_E_INVALID; /* the message names the file */
    }
    struct rconn_auth auth = {fs->username[0] != '\0' ? fs->username : NULL,
                              o->password != NULL ? fs->password : NULL, fs->tls,
                              fs->tls_name[0] != '\0' ? fs->tls_name : NULL};
    if (eps[0].is_cluster) {
        fs->cl = tlsr__calloc(1, sizeof(*fs->cl));
        if (fs->cl == NULL) {
            tlsr_fleet_store_free(fs);
            return tlsr__err_set(TLSR_E_NOMEM, "fleet store: out of memory");
        }
        tlsr__rcluster_start(fs->cl, fs->loop, &eps[0], &auth, "store", o->log, o->log_arg);
    } else {
        for (size_t i = 0; i < o->n_endpoints; i++) {
            fs->seeds[i] = tlsr__fleet_endpoint_seed(eps[i].text);
            tlsr__rconn_start(&fs->conns[i], fs->loop, &eps[i], &auth, "store", o->log, o->log_arg);
            fs->n++;
        }
    }
    if (pthread_create(&fs->thread, NULL, run_loop, fs) != 0) {
        tlsr_fleet_store_free(fs);
        return tlsr__err_set(TLSR_E_SYSTEM, "fleet store: cannot start its thread");
    }
    fs->has_thread = true;
    /* Give the connections a moment (off the handshake path): the first handshakes find
     * Redis rather than miss while it connects. */
    for (int i = 0; i < (int)(START_WAIT_S * 100); i++) {
        pthread_mutex_lock(&fs->lock);
        bool up = all_up(fs);
        pthread_mutex_unlock(&fs->lock);
        if (up) {
            break;
        }
        struct timespec ten_ms = {0, 10000000L};
        nanosleep(&ten_ms, NULL);
    }
    *out = fs;
    return TLSR_OK;
}

void tlsr_fleet_store_free(struct tlsr_fleet_store *fs)
{
    if (fs == NULL) {
        return;
    }
    if (fs->has_thread) {
        pthread_mutex_lock(&fs->lock);
        fs->is_stopping = true;
        ev_async_send(fs->loop, &fs->wake);
        pthread_mutex_unlock(&fs->lock);
        pthread_join(fs->thread, NULL);
    }
    /* The loop's thread is gone: pending callbacks run here, and free the abandoned waits.
     * (The lock is taken as the loop's thread took it: the loop releases it while polling.) */
    pthread_mutex_lock(&fs->lock);
    for (size_t i = 0; i < fs->n; i++) {
        tlsr__rconn_stop(&fs->conns[i]);
    }
    if (fs->cl != NULL) {
        tlsr__rcluster_stop(fs->cl);
        tlsr__free(fs->cl);
    }
    ev_async_stop(fs->loop, &fs->wake);
    ev_run(fs->loop, EVRUN_NOWAIT);
    pthread_mutex_unlock(&fs->lock);
    ev_loop_destroy(fs->loop);
    pthread_cond_destroy(&fs->replied);
    pthread_mutex_destroy(&fs->lock);
    if (fs->tls != NULL) {
        SSL_CTX_free(fs->tls);
    }
    OPENSSL_cleanse(fs->password, sizeof(fs->password));
    tlsr__free(fs);
}

void tlsr_fleet_store_put(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key,
                          const uint8_t *value, size_t value_len, uint32_t lifetime_s)
{
    uint8_t aad[256];
    size_t aad_len =
        tlsr__fleet_entry_aad(key->ctx, key->ctx_len, key->id, key->id_len, 0, aad, sizeof(aad));
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    uint8_t blob[ENTRY_MAX_VALUE + 8 + SEAL_OVERHEAD];
    size_t blob_len = 0;
    if (aad_len == 0 || value_len > ENTRY_MAX_VALUE || lifetime_s == 0 ||
        tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK ||
        tlsr__fleet_entry_seal(fs->secret, aad, aad_len, (uint64_t)time(NULL) + lifetime_s, value,
                               value_len, blob, sizeof(blob), &blob_len) != TLSR_OK) {
        return;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)lifetime_s * 1000ull);
    const char *argv[] = {"SET", name, (const char *)blob, "PX", ttl};
    size_t lens[] = {3, strlen(name), blob_len, 2, strlen(ttl)};
    tlsr__free(call(fs, name, h, 5, argv, lens));
    OPENSSL_cleanse(blob, sizeof(blob));
}

tlsr_status tlsr_fleet_store_get(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key,
                                 uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t aad[256];
    size_t aad_len =
        tlsr__fleet_entry_aad(key->ctx, key->ctx_len, key->id, key->id_len, 0, aad, sizeof(aad));
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    if (aad_len == 0 ||
        tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK) {
        return TLSR_E_NOTFOUND;
    }
    const char *argv[] = {"GET", name};
    size_t lens[] = {3, strlen(name)};
    struct wait *w = call(fs, name, h, 2, argv, lens);
    tlsr_status rc = TLSR_E_NOTFOUND;
    if (w != NULL && w->type == REDIS_REPLY_STRING && !w->is_too_long) {
        uint64_t expires = 0;
        rc = tlsr__fleet_entry_open(fs->secret, aad, aad_len, w->str, w->len, (uint64_t)time(NULL),
                                    out, cap, out_len, &expires);
    }
    tlsr__free(w);
    return rc == TLSR_OK ? TLSR_OK : TLSR_E_NOTFOUND;
}

void tlsr_fleet_store_del(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key)
{
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    if (tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK) {
        return;
    }
    const char *argv[] = {"DEL", name};
    size_t lens[] = {3, strlen(name)};
    tlsr__free(call(fs, name, h, 2, argv, lens));
}

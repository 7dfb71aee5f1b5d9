/* Private to the fleet module: sealing, Redis connections and shared declarations. */
#ifndef TLSR_FLEET_INT_H
#define TLSR_FLEET_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <tlsresume/fleet.h>

#define SEAL_NONCE_LEN 12
#define SEAL_TAG_LEN 16
#define SEAL_OVERHEAD (1 + SEAL_NONCE_LEN + SEAL_TAG_LEN)
#define NAME_HASH_LEN 16

/* What a fleet key yields (HKDF-SHA256, one label each). */
struct tlsr_fleet_secret {
    uint8_t fleet_key[TLSR_FLEET_KEY_LEN];
    uint8_t session_key[32]; /* AES-256-GCM over session entries */
    uint8_t name_key[32];    /* HMAC-SHA256 over session IDs, for Redis key names */
    uint8_t wrap_key[32];    /* AES-256-GCM over ticket keys */
    size_t map_size;
};

/*
 * Seals plain (plain_len bytes) with AES-256-GCM under key: out gets a version byte, a random
 * nonce, the ciphertext and the tag (plain_len + SEAL_OVERHEAD bytes); aad is authenticated.
 * Errors: TLSR_E_TOOBIG, TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_seal(const uint8_t key[32], const uint8_t *aad,
                                             size_t aad_len, const uint8_t *plain, size_t plain_len,
                                             uint8_t *out, size_t cap, size_t *out_len);
/* Opens what tlsr__fleet_seal made. Errors: TLSR_E_FORMAT (short, foreign version, or the tag
 * did not verify: tampered, or sealed under another key or aad), TLSR_E_TOOBIG. */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_open(const uint8_t key[32], const uint8_t *aad,
                                             size_t aad_len, const uint8_t *in, size_t in_len,
                                             uint8_t *out, size_t cap, size_t *out_len);
/* out = the first NAME_HASH_LEN bytes of HMAC-SHA256(key, data). */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_name_hash(const uint8_t key[32], const uint8_t *data,
                                                  size_t len, uint8_t out[NAME_HASH_LEN]);

/* Session entries (fleet_entry.c, a parser of bytes from Redis: see its fuzz target). */
#define ENTRY_MAX_VALUE 2048
/* Builds the AAD of a session entry: a label, the session ID context and the ID. */
size_t tlsr__fleet_entry_aad(const uint8_t *sid_ctx, size_t sid_ctx_len, const uint8_t *id,
                             size_t id_len, unsigned flags, uint8_t *out, size_t cap);
TLSR_MUST_CHECK tlsr_status tlsr__fleet_entry_seal(const struct tlsr_fleet_secret *s,
                                                   const uint8_t *aad, size_t aad_len,
                                                   uint64_t expires_s, const uint8_t *value,
                                                   size_t value_len, uint8_t *out, size_t cap,
                                                   size_t *out_len);
/* Opens an entry: value gets the session encoding and *expires_s its expiry. Errors:
 * TLSR_E_FORMAT, TLSR_E_EXPIRED (expired at now_s). The caller wipes value. */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_entry_open(const struct tlsr_fleet_secret *s,
                                                   const uint8_t *aad, size_t aad_len,
                                                   const uint8_t *in, size_t in_len, uint64_t now_s,
                                                   uint8_t *value, size_t cap, size_t *value_len,
                                                   uint64_t *expires_s);

/* The Redis key name of a session, prefix "s:" hex(HMAC(name key, its AAD)), into name (cap
 * bytes); hash gets the HMAC (for sharding). Errors: TLSR_E_INVALID (ID or context too long). */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_entry_name(const struct tlsr_fleet_secret *s,
                                                   const char *prefix, const uint8_t *ctx,
                                                   size_t ctx_len, const uint8_t *id, size_t id_len,
                                                   char *name, size_t cap,
                                                   uint8_t hash[NAME_HASH_LEN]);
/* Which of n endpoints (their seeds: tlsr__fleet_endpoint_seed of each endpoint's text) holds
 * the entry whose name hash is hash: rendezvous hashing, the same on every server. */
size_t tlsr__fleet_entry_shard(const uint64_t *seeds, size_t n, const uint8_t hash[NAME_HASH_LEN]);
uint64_t tlsr__fleet_endpoint_seed(const char *text);

/* A parsed endpoint. */
#define MAX_HOSTS 5
struct endpoint {
    char host[256]; /* for sentinel://, the master's, once a sentinel has named it */
    char path[108]; /* unix socket; empty for TCP */
    int port;
    int db;
    bool is_tls;     /* rediss://, rediss-cluster:// */
    bool is_cluster; /* redis-cluster://H:P[,H:P...]: hosts are seed nodes (cluster.c) */
    char text[300];  /* for logs: the endpoint without any password */
    /* sentinel://H:P[,H:P...]/MASTER[?db=N]: the master is asked of the sentinels in hosts. */
    char master[64]; /* empty: not a sentinel endpoint */
    size_t n_hosts;  /* the sentinels, or a cluster's seed nodes */
    struct {
        char host[64];
        int port;
    } hosts[MAX_HOSTS];
};
TLSR_MUST_CHECK tlsr_status tlsr__fleet_endpoint_parse(const char *text, struct endpoint *out);

/* One Redis connection on a loop, reconnecting with backoff. */
struct rconn {
    struct ev_loop *loop;
    struct endpoint ep;
    const char *password; /* borrowed */
    const char *username; /* borrowed; NULL: the default user */
    tlsr_log_fn log;
    void *log_arg;
    const char *who;      /* "cache" or "ring", for logs */
    SSL_CTX *tls;         /* borrowed; for rediss:// endpoints */
    const char *tls_name; /* borrowed; the name to verify (NULL: the endpoint's host) */
    struct rlink *link;
    int state;           /* RCONN_DOWN, RCONN_CONNECTING, RCONN_UP */
    size_t sentinel_i;   /* the sentinel asked next (sentinel:// endpoints) */
    bool must_drop;      /* a reply said this is no longer the master: reconnect */
    char master_at[300]; /* the master last named by the sentinels, for logs */
    bool was_up;         /* for logging state changes once */
    bool is_logged;      /* the current down state was logged */
    uint64_t downs;      /* connects that failed and connections lost */
    ev_timer timer;      /* backoff, connect deadline and stall check */
    double backoff_s;
    uint32_t pending;    /* commands without a reply yet */
    ev_tstamp last_sent; /* when the oldest unanswered command was sent */
    ev_tstamp last_reply;
    /* Called each time the connection comes up (NULL: nothing), after tlsr__rconn_start. */
    void (*on_up)(struct rconn *rc, void *arg);
    void *on_up_arg;
    /* A Cluster node's (NULL otherwise): given a MOVED or ASK error, the node it names (NULL:
     * none known). The command is then sent there again (ASKING first for ASK), at most
     * MAX_HOPS times; so each command's bytes are kept until its reply. */
    struct rconn *(*on_redirect)(struct rconn *rc, void *arg, const char *error);
    void *on_redirect_arg;
};
enum { RCONN_DOWN = 0, RCONN_CONNECTING, RCONN_UP };

/* How a fleet part reaches Redis: credentials and TLS, all borrowed. */
struct rconn_auth {
    const char *username;
    const char *password;
    SSL_CTX *tls;         /* NULL: rediss:// endpoints are refused */
    const char *tls_name; /* NULL: the endpoint's host */
};

/* Starts connecting. who and everything in auth are borrowed. */
void tlsr__rconn_start(struct rconn *rc, struct ev_loop *loop, const struct endpoint *ep,
                       const struct rconn_auth *auth, const char *who, tlsr_log_fn log,
                       void *log_arg);

/* One connection's byte stream (rlink.c): TCP, Unix socket or TLS, with hiredis's reader.
 * on_event is called once, with why, when the link fails (its callbacks have run with NULL);
 * the owner then closes it. */
struct rlink;
typedef void (*tlsr__rlink_event_fn)(void *arg, const char *why);
/* Starts connecting (tls: a client context for rediss://, else NULL). NULL on an immediate
 * failure, with why filled. */
struct rlink *tlsr__rlink_open(struct ev_loop *loop, const struct endpoint *ep, SSL_CTX *tls,
                               const char *tls_name, tlsr__rlink_event_fn on_event, void *arg,
                               char *why, size_t cap);
/* Queues a command formatted by hiredis (cmd, len; freed here) whose reply goes to fn. -1 when
 * the link is closed or memory ran out (fn is not called). */
int tlsr__rlink_send(struct rlink *l, char *cmd, int len, redisCallbackFn *fn, void *priv);
void tlsr__rlink_flush(struct rlink *l);
/* Closes and frees (waiting callbacks run with NULL); safe from inside a callback. */
void tlsr__rlink_close(struct rlink *l);
/* A TLS client context for Redis from t: verifies the server always; NULL with why on a bad
 * file. */
SSL_CTX *tlsr__rlink_tls_ctx(const struct tlsr_fleet_tls *t, char *why, size_t cap);
/* The TLS context a fleet part needs for o's endpoints (free with SSL_CTX_free): NULL when
 * none is rediss://. Errors: TLSR_E_INVALID (a CA, certificate or key file that does not
 * load), naming the file. */
TLSR_MUST_CHECK tlsr_status tlsr__fleet_tls_for(const struct tlsr_fleet_opts *o, SSL_CTX **out);
/* Disconnects for good: pending callbacks run with a NULL reply. */
void tlsr__rconn_stop(struct rconn *rc);

/* A Redis Cluster (cluster.c): the slot map and one rconn per master. */
#define CLUSTER_SLOTS 16384
#define CLUSTER_MAX_NODES TLSR_FLEET_MAX_ENDPOINTS
struct rcluster {
    struct ev_loop *loop;
    struct endpoint ep; /* the seeds */
    struct rconn_auth auth;
    const char *who;
    tlsr_log_fn log;
    void *log_arg;
    struct rconn nodes[CLUSTER_MAX_NODES];
    bool is_used[CLUSTER_MAX_NODES];   /* started */
    bool is_mapped[CLUSTER_MAX_NODES]; /* serves slots in the current map */
    char tag[CLUSTER_MAX_NODES][8];    /* a hash tag of a slot the node serves ("" unknown) */
    uint8_t slot_node[CLUSTER_SLOTS];  /* node index + 1; 0: no master known */
    uint8_t next_map[CLUSTER_SLOTS];
    bool has_map;
    bool want_refresh;
    bool is_asking; /* a CLUSTER SLOTS is out */
    bool is_full_logged;
    unsigned map_nodes; /* for logging changes of the map once */
    unsigned map_slots;
    ev_tstamp last_refresh;
    ev_timer timer;
    /* Called as a node that serves slots comes up, or starts serving them while up. */
    void (*on_node_up)(struct rconn *rc, void *arg);
    void *on_node_up_arg;
};
/* Starts with the seed nodes of ep (a redis-cluster:// endpoint); every string borrowed. */
void tlsr__rcluster_start(struct rcluster *cl, struct ev_loop *loop, const struct endpoint *ep,
                          const struct rconn_auth *auth, const char *who, tlsr_log_fn log,
                          void *log_arg);
void tlsr__rcluster_stop(struct rcluster *cl);
/* The connection to the master of key's slot; NULL when no master is known for it. */
struct rconn *tlsr__rcluster_route(struct rcluster *cl, const char *key, size_t len);
/* A hash tag whose slot rc's node serves ("" when unknown): a key "...{tag}" lives there. */
const char *tlsr__rcluster_tag(const struct rcluster *cl, const struct rconn *rc);
/* Counts the nodes that serve slots, up and not up. */
void tlsr__rcluster_count(const struct rcluster *cl, uint64_t *up, uint64_t *down);
/* A key's slot: CRC16 of the key, or of its hash tag ({...}, not empty), mod 16384. */
unsigned tlsr__fleet_key_slot(const char *key, size_t len);
/* Reads a CLUSTER SLOTS reply (also fed by fuzz/fuzz_redis_reply.c): calls each for every
 * range with its master (host "" means the node asked; "?" an unknown address), after the
 * whole reply was checked; false (each never called) for any other shape. */
typedef void (*tlsr__slot_range_fn)(void *arg, unsigned lo, unsigned hi, const char *host,
                                    int port);
bool tlsr__fleet_cluster_slots_parse(const void *reply, tlsr__slot_range_fn each, void *arg);
/* Sends a command (redisvAsyncCommand format) when up; fn gets the reply or NULL (failure or
 * disconnect). Returns -1 (fn not called) when the connection is not up. */
int tlsr__rconn_command(struct rconn *rc, redisCallbackFn *fn, void *priv, const char *fmt, ...);
/* Sends a command given as argv (binary-safe). As tlsr__rconn_command. */
int tlsr__rconn_argv(struct rconn *rc, redisCallbackFn *fn, void *priv, int argc, const char **argv,
                     const size_t *argvlen);

/* Writes queued commands to the socket now, rather than on the next loop iteration: a session
 * stored during a handshake reaches Redis before the handshake's last flight reaches the
 * client, so the client's next connection, on whatever server, finds it. */
void tlsr__rconn_flush(struct rconn *rc);

void tlsr__fleet_log(tlsr_log_fn log, void *arg, enum tlsr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Hands a poll reply (a redisReply, or NULL) to the ring as Redis would: the fuzz target of
 * the ring's reply parsing (fuzz/fuzz_redis_reply.c) uses it. */
void tlsr__fleet_ring_reply(struct tlsr_fleet_ring *fr, void *reply);
/* The fleet cache's parsers of Redis replies, also fed by fuzz/fuzz_redis_reply.c: a strike
 * script's {verdict, clock offset} (false for any other shape), and INFO memory (true when
 * Redis has a maxmemory and an eviction policy other than noeviction; fills both). */
bool tlsr__fleet_strike_parse(const void *reply, long long *code, long long *off);
bool tlsr__fleet_may_evict(const void *reply, unsigned long long *maxmemory, char policy[32]);

/* Test hook: the ring's schedule reads Redis's clock plus offset_ms (default 0), so a unit test
 * can move the fleet's time through rotation periods and acknowledgement waits in seconds. */
void tlsr__fleet_ring_set_clock_offset(struct tlsr_fleet_ring *fr, int64_t offset_ms);

#endif

/*
 * Fleet resumption on Redis: a sealed second-level session cache shared by every server of a
 * fleet, and a fleet-wide ticket key ring that promotes a key only once every server holds it.
 *
 * Every server of a fleet is given the same fleet key (32 random bytes in a file made by
 * `tlsresume keys init`, provisioned like a certificate key). From it each derives, with HKDF:
 * the AEAD key that seals session entries, the key that hashes session IDs into Redis key
 * names, and the key that wraps ticket keys. Redis holds only sealed blobs and hashed names.
 *
 * Both parts run on a libev loop with hiredis's asynchronous API: nothing here blocks. Redis
 * unreachable means misses for the cache (no error reaches a client) and, for the ring, the
 * current key encrypting on past its period for a bounded time; both reconnect with backoff and
 * log each change of state.
 *
 * Thread and process safety: an object belongs to the loop (thread) it was made on. Make the
 * cache in each worker after fork(); the ring in one process per host (it drives the shared
 * tlsr_keyring every worker uses).
 */
#ifndef TLSRESUME_FLEET_H
#define TLSRESUME_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/cache.h>
#include <tlsresume/error.h>
#include <tlsresume/log.h>
#include <tlsresume/tickets.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ev_loop;

#define TLSR_FLEET_KEY_LEN 32
#define TLSR_FLEET_MAX_ENDPOINTS 16

/* The fleet key and the keys derived from it, in locked, non-dumpable memory. */
struct tlsr_fleet_secret;

/*
 * Writes a new fleet key file at path (mode 0600; refuses to replace an existing file). The
 * file is two lines: "tlsresume-fleet-key 1" and the key in base64. Errors: TLSR_E_SYSTEM
 * (the file exists or cannot be written), TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_secret_generate(const char *path);
/* Reads a fleet key file. Errors: TLSR_E_SYSTEM (unreadable, or readable by group or others),
 * TLSR_E_FORMAT (the message names the file and line), TLSR_E_NOMEM, TLSR_E_CRYPTO. */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_secret_load(const char *path,
                                                   struct tlsr_fleet_secret **out);
/* Parses the bytes of a fleet key file (path names it in messages). As tlsr_fleet_secret_load. */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_secret_parse(const char *path, const uint8_t *data,
                                                    size_t len, struct tlsr_fleet_secret **out);
/* Wipes and frees. Accepts NULL. */
void tlsr_fleet_secret_free(struct tlsr_fleet_secret *secret);

/* TLS to Redis (rediss:// endpoints). The server's certificate is always verified. */
struct tlsr_fleet_tls {
    const char *ca_file;     /* PEM CA certificates to verify Redis by; NULL: the system's */
    const char *cert_file;   /* a client certificate (PEM, chain), or NULL */
    const char *key_file;    /* its private key; NULL: in cert_file */
    const char *server_name; /* the name to verify and send (SNI); NULL: the endpoint's host */
};

/* Where the fleet's Redis servers are and how to talk to them. */
struct tlsr_fleet_opts {
    /* "redis://HOST[:PORT][/DB]" (port 6379, db 0 by default), "rediss://..." for TLS (see
     * tls), or "unix:/path[?db=N]";
     * several shard the session cache by rendezvous hashing (the ticket ring uses one of them,
     * the same on every server). Borrowed. */
    const char *const *endpoints;
    size_t n_endpoints;
    const char *password;      /* borrowed; NULL for none */
    const char *username;      /* ACL user (AUTH username password); NULL: the default user */
    struct tlsr_fleet_tls tls; /* for rediss:// endpoints; borrowed strings */
    const char *prefix;        /* Redis key prefix; default "tlsr:" */
    const struct tlsr_fleet_secret *secret; /* borrowed; required */
    uint32_t lookup_timeout_ms;             /* cache: a slower reply is a miss; default 5 */
    /* 0-RTT (docs/EARLY_DATA.md): is_early_data checks at connect that Redis cannot evict
     * strike records (logged if it can). Redis keeps each record early_window_s (default 10)
     * + early_clock_skew_s + 2 s, where early_clock_skew_s (default 30) is the most any two
     * servers' clocks differ; a server more than half of it + 1 s away from Redis's clock
     * refuses 0-RTT. After Redis loses records (restart, failover, flush, eviction), 0-RTT
     * through it is refused for one record lifetime. */
    bool is_early_data;
    uint32_t early_window_s;
    uint32_t early_clock_skew_s;
    tlsr_log_fn log; /* NULL: silent */
    void *log_arg;
};
/* Fills *opts with the defaults. */
void tlsr_fleet_opts_init(struct tlsr_fleet_opts *opts);
/* Checks an endpoint's syntax. Errors: TLSR_E_INVALID with a message saying what is wrong. */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_endpoint_check(const char *endpoint);

/* The second-level session cache of one worker. */
struct tlsr_fleet_cache;

/* Counters of a fleet cache. */
struct tlsr_fleet_cache_stats {
    uint64_t lookups;      /* handshakes paused to ask Redis */
    uint64_t hits;         /* a valid entry came back in time */
    uint64_t misses;       /* Redis had nothing */
    uint64_t timeouts;     /* no reply within lookup_timeout_ms: counted as a miss */
    uint64_t unavailable;  /* the endpoint was down: a miss without asking */
    uint64_t rejected;     /* tampered, foreign, expired or undecryptable entries */
    uint64_t stored;       /* sessions written to Redis */
    uint64_t removed;      /* single-use sessions deleted from Redis */
    uint64_t endpoints_up; /* a gauge */
    uint64_t endpoints_down;
    uint64_t early_fresh;       /* 0-RTT ClientHellos the Redis register had not seen */
    uint64_t early_replays;     /* ... had seen before: refused */
    uint64_t early_unavailable; /* no answer in time, or the endpoint down: refused */
    uint64_t early_lost;        /* Redis had lost records within a record lifetime: refused */
    uint64_t early_clock;       /* this server's clock was too far from Redis's: refused */
};

/* Creates the cache on loop and starts connecting (in the background). Errors: TLSR_E_INVALID
 * (bad options or endpoint), TLSR_E_NOMEM, TLSR_E_CRYPTO. */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_cache_new(struct ev_loop *loop,
                                                 const struct tlsr_fleet_opts *opts,
                                                 struct tlsr_fleet_cache **out);
/* Disconnects and frees; lookups still pending complete as misses first. Accepts NULL. */
void tlsr_fleet_cache_free(struct tlsr_fleet_cache *fc);
/* Makes ctx (attached with a cache) store into and fetch from fc in this process. */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_cache_bind(struct tlsr_fleet_cache *fc, SSL_CTX *ctx);

/* Called once a paused handshake may continue: call SSL_do_handshake() (or SSL_accept()) on
 * ssl again. Never called for an SSL freed meanwhile. */
typedef void (*tlsr_fleet_resume_fn)(SSL *ssl, void *arg);
/*
 * Call from the client-hello callback, after choosing the SSL_CTX (instead of, not beside,
 * tlsr_ssl_client_hello_early(): this calls it, then records the ClientHello in Redis too, so
 * that 0-RTT is accepted at most once in the fleet; no answer in time refuses early data).
 * Returns
 * SSL_CLIENT_HELLO_SUCCESS when the handshake can go on (nothing to fetch, or the fetch is
 * done) or SSL_CLIENT_HELLO_RETRY when it asked Redis; resume(ssl, arg) is then called from
 * the loop within lookup_timeout_ms, and SSL_do_handshake() then reports the callback again,
 * which returns SUCCESS. SSL_do_handshake() reports the pause as SSL_ERROR_WANT_CLIENT_HELLO_CB.
 */
int tlsr_fleet_cache_client_hello(struct tlsr_fleet_cache *fc, SSL *ssl,
                                  tlsr_fleet_resume_fn resume, void *arg);
void tlsr_fleet_cache_get_stats(const struct tlsr_fleet_cache *fc,
                                struct tlsr_fleet_cache_stats *out);

/*
 * A blocking second-level session store, for servers without an event loop (the GnuTLS
 * adapter: GnuTLS asks for a session from inside its handshake). Entries are the fleet
 * cache's: sealed, named by a keyed hash, with a TTL, on the endpoint the cache would use (or
 * the slot's master on a Cluster). Every endpoint kind works (rediss://, ACL users, Sentinel,
 * Cluster). Each call waits at most lookup_timeout_ms; a slow or dead Redis is a miss. The
 * connections are kept up by a thread the store starts. One per process, made after fork()
 * (a child does not inherit the thread); calls are serialized by the store's lock, so they may
 * come from several threads.
 */
struct tlsr_fleet_store;
/* opts is copied (its secret borrowed). Connects, waiting up to 1 s for the connections to
 * come up (a store whose Redis is down is still made: its calls miss until it is up). Errors:
 * TLSR_E_INVALID (an endpoint, or a TLS file that does not load), TLSR_E_NOMEM,
 * TLSR_E_SYSTEM (no thread or event loop). */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_store_new(const struct tlsr_fleet_opts *opts,
                                                 struct tlsr_fleet_store **out);
void tlsr_fleet_store_free(struct tlsr_fleet_store *fs);
/* Seals value and stores it under key for lifetime_s; best effort (a failure is silent). */
void tlsr_fleet_store_put(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key,
                          const uint8_t *value, size_t value_len, uint32_t lifetime_s);
/* Fetches and opens the entry of key into out. TLSR_E_NOTFOUND for a miss, a timeout, Redis
 * unavailable, or an entry that does not open (tampered, foreign, expired). */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_store_get(struct tlsr_fleet_store *fs,
                                                 const struct tlsr_cache_key *key, uint8_t *out,
                                                 size_t cap, size_t *out_len);
/* Deletes the entry of key; best effort. */
void tlsr_fleet_store_del(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key);

/* The fleet ticket key ring of one server. */
struct tlsr_fleet_ring;

struct tlsr_fleet_ring_opts {
    const char *member;    /* this server's name in the fleet; default hostname-random */
    uint32_t poll_ms;      /* how often it talks to Redis; default 1000 */
    uint32_t ack_wait_s;   /* promote without every acknowledgement after this; default 30 */
    uint32_t clock_skew_s; /* tolerated clock difference between servers; default 30 */
    /* Reads the fleet's keys without taking part: not a member, never creates, promotes or
     * acknowledges a key (status and export tools). */
    bool is_observer;
    /* Called after each poll has installed the fleet's keys into the ring, before the next key
     * is acknowledged; the acknowledgement is sent only when it returns TLSR_OK, so the fleet
     * waits (up to ack_wait_s) for whatever apply feeds (`keys sync`: nginx, HAProxy). */
    tlsr_status (*apply)(void *arg, struct tlsr_keyring *ring);
    void *apply_arg;
    /* Called after each poll: is_ok false when Redis did not answer. */
    void (*polled)(void *arg, bool is_ok);
    void *polled_arg;
};
void tlsr_fleet_ring_opts_init(struct tlsr_fleet_ring_opts *opts);

struct tlsr_fleet_ring_stats {
    bool is_redis_up;
    bool is_joined;            /* ring keys come from the fleet */
    uint64_t generation;       /* the fleet's encrypting generation (0: none yet) */
    uint64_t members;          /* live servers seen in the last poll */
    uint64_t unacked;          /* of those, not yet holding the next key */
    uint64_t keys_created;     /* keys this server made for the fleet */
    uint64_t promotions;       /* promotions this server made */
    uint64_t promotions_early; /* of those, made after ack_wait_s without every ack */
    uint64_t rejected;         /* fleet key blobs that did not unseal */
    bool is_foreign_key;       /* none of the fleet's keys opens: this server's fleet key file
                                  is another fleet's; the ring only observes meanwhile */
    uint64_t polls_failed;
    uint64_t redis_downs;   /* the ring's connects that failed and connections lost (one Redis;
                               0 on a Cluster) */
    uint64_t polls;         /* polls answered */
    bool is_rotation_asked; /* a rotation was requested and is not done yet */
    uint64_t imported;      /* keys imported from files, held in Redis now */
    /* rotations on demand refused: this server's ring had no room without wiping a key whose
     * tickets are still valid (at most 8 on demand within one ticket lifetime) */
    uint64_t rotations_refused;
};

/* One key as the fleet holds it in Redis (never its bytes). */
struct tlsr_fleet_key_status {
    uint64_t generation;    /* 0: a key imported from another server's file */
    uint8_t name_prefix[4]; /* the first bytes of its name */
    enum tlsr_key_state state;
    uint8_t size;       /* 80, or 48 for an imported AES-128 key */
    uint64_t age_s;     /* since it was promoted (0: never encrypted) */
    uint64_t expires_s; /* until Redis drops it (0: no expiry set yet) */
    uint64_t acks;      /* servers that acknowledged it */
    uint64_t issued;    /* tickets issued under it, summed over the servers' reports */
    uint64_t presented; /* tickets presented with it, likewise */
};

/*
 * Joins the fleet's key ring through ring (created by tlsr_keyring_new with the fleet's
 * rotation period and lifetime, the same on every server). Until Redis answers, ring keeps its
 * local keys; on joining, the fleet's keys are installed and its encrypting key promoted, and
 * the local keys stay decrypt-only for their lifetime. Errors: as tlsr_fleet_cache_new.
 */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_ring_new(struct ev_loop *loop,
                                                const struct tlsr_fleet_opts *opts,
                                                const struct tlsr_fleet_ring_opts *ring_opts,
                                                struct tlsr_keyring *ring,
                                                struct tlsr_fleet_ring **out);
void tlsr_fleet_ring_free(struct tlsr_fleet_ring *fr);
/* Asks the fleet to rotate now: the next key is promoted as soon as every server holds it. */
void tlsr_fleet_ring_rotate(struct tlsr_fleet_ring *fr);
void tlsr_fleet_ring_get_stats(const struct tlsr_fleet_ring *fr, struct tlsr_fleet_ring_stats *out);
/* The fleet's keys as of the last poll, newest generation first, imported keys last. The
 * array is the ring's; valid until the next poll. */
void tlsr_fleet_ring_keys(const struct tlsr_fleet_ring *fr,
                          const struct tlsr_fleet_key_status **out, size_t *n);
/*
 * Adds a key from another server's file to the fleet: sealed into Redis, decrypt-only on every
 * server for ttl_s seconds (each installs it on its next poll), so tickets that server issued
 * keep resuming through a migration. Queued on the ring's connection; the next poll shows it.
 * Errors: TLSR_E_INVALID (a key of neither 48 nor 80 bytes, ttl_s 0), TLSR_E_SYSTEM (Redis not
 * connected), TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr_fleet_ring_import(struct tlsr_fleet_ring *fr,
                                                   const struct tlsr_key_material *key,
                                                   uint32_t ttl_s);

#ifdef __cplusplus
}
#endif

#endif

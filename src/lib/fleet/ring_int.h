/*
 * Internals of the fleet key ring shared by its files: fleet_ring.c (polling, following,
 * promoting) calls ring_store.c (what the ring writes to Redis besides its polls: new keys, and
 * the keys written back after Redis forgot them); both stand on ring_schema.c (the Redis schema
 * and its Lua scripts) and ring_blob.c (keys sealed for Redis). No call goes the other way.
 */
#ifndef TLSR_RING_INT_H
#define TLSR_RING_INT_H

#include "fleet_int.h"

#include <string.h>

#include <tlsresume/tickets.h>

#define KEY_LABEL "tlsresume ticket key v1"
#define KEY_PLAIN_LEN (TLSR_TICKET_NAME_LEN + TLSR_TICKET_AES_LEN + TLSR_TICKET_HMAC_LEN)
#define KEY_BLOB_LEN (KEY_PLAIN_LEN + SEAL_OVERHEAD)
#define IMPORT_LABEL "tlsresume imported key v1"
#define ROTATE_AT_FIRST_POLL UINT64_MAX /* rotate_asked_at: set at the first poll */
/* Every key a ring can hold: a joining server reads them all. */
#define MAX_KEYS_READ TLSR_KEYRING_MAX_KEYS
#define MAX_IMPORTS TLSR_KEYRING_MAX_IMPORTS

struct tlsr_fleet_ring {
    struct ev_loop *loop;
    const struct tlsr_fleet_secret *secret;
    struct tlsr_keyring *ring;
    char prefix[48];
    char member[128];
    struct tlsr_fleet_ring_opts o;
    uint64_t rotate_ms;
    uint64_t lifetime_ms;
    tlsr_log_fn log;
    void *log_arg;
    struct rconn conn;   /* standalone Redis */
    struct rcluster *cl; /* or a Cluster */
    char route_key[64];  /* P cur: names the ring's slot on a Cluster, KEYS[1] of its scripts */
    SSL_CTX *tls;        /* for a rediss:// endpoint, or NULL */
    ev_timer poll;
    unsigned fast_polls_left; /* polls at JOIN_POLL_S before joining; then poll_ms */
    bool is_busy;
    bool want_rotate;
    uint64_t rotate_asked_at; /* the fleet's generation when want_rotate was set, or
                                 ROTATE_AT_FIRST_POLL when it was set before any poll */
    bool was_overdue;
    bool was_bad_force;    /* an unsigned or stale rotation request was logged */
    uint64_t refused_at;   /* generation + 1 whose rotation on demand was refused (0: none) */
    char clock_offset[24]; /* added to Redis's clock in the scripts: "0" but in tests */
    uint8_t promoted[TLSR_TICKET_NAME_LEN];
    char rejected_why[192]; /* the first key of the last poll that did not open, and why */
    struct tlsr_fleet_ring_stats st;
    struct tlsr_fleet_key_status keys[MAX_KEYS_READ + MAX_IMPORTS];
    size_t n_keys;
    /* The last use report of each key (P use:<gen>): sent again only when its counts change,
     * or to refresh its TTL; forgotten when the ring is written back. */
    struct ring_use_report {
        uint64_t gen, issued, presented, at_ms;
    } reported[TLSR_KEYRING_MAX_KEYS];
    size_t n_reported;
};

/* Where the ring's commands go: the master of its slot on a Cluster (NULL: none known). */
static inline struct rconn *tlsr__ring_conn(struct tlsr_fleet_ring *fr)
{
    return fr->cl != NULL ? tlsr__rcluster_route(fr->cl, fr->route_key, strlen(fr->route_key))
                          : &fr->conn;
}

/* The Lua scripts of the ring (ring_schema.c, which documents the Redis schema). */
extern const char tlsr__ring_tick_lua[];
extern const char tlsr__ring_promote_lua[];
extern const char tlsr__ring_create_lua[];
extern const char tlsr__ring_republish_lua[];

/* Ring keys sealed for Redis (ring_blob.c): a ring key of generation gen (len must be
 * KEY_PLAIN_LEN), an imported key of 48 or 80 bytes under its id; and opened again. Opening
 * fails (TLSR_E_FORMAT) on a tampered, moved or wrongly sized blob; nothing partial is kept. */
TLSR_MUST_CHECK tlsr_status tlsr__ring_seal_key(const struct tlsr_fleet_secret *s, uint64_t gen,
                                                const uint8_t *plain, size_t len,
                                                uint8_t blob[KEY_BLOB_LEN], size_t *blob_len);
TLSR_MUST_CHECK tlsr_status tlsr__ring_seal_import(const struct tlsr_fleet_secret *s,
                                                   const char *id,
                                                   const struct tlsr_key_material *key,
                                                   uint8_t blob[1 + KEY_BLOB_LEN],
                                                   size_t *blob_len);
TLSR_MUST_CHECK tlsr_status tlsr__ring_open_key(const struct tlsr_fleet_secret *s, uint64_t gen,
                                                const uint8_t *blob, size_t len,
                                                struct tlsr_ticket_key *out);
TLSR_MUST_CHECK tlsr_status tlsr__ring_open_import(const struct tlsr_fleet_secret *s,
                                                   const char *id, const uint8_t *blob, size_t len,
                                                   struct tlsr_key_material *out);

/* Makes key gen and offers it to the fleet as the next key (SET NX in a script: one server
 * wins); counted and logged when this server's key is the one. */
void tlsr__ring_create_next(struct tlsr_fleet_ring *fr, uint64_t gen);

/* Redis holds no encrypting key while this server follows the fleet at generation gen:
 * writes the fleet's keys back from this server's ring (see ring_store.c). */
void tlsr__ring_republish(struct tlsr_fleet_ring *fr, uint64_t gen);

#endif

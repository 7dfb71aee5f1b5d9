/*
 * What the fleet key ring writes to Redis besides its polls (ring_int.h): a new next key, a key
 * imported from another server's file (tlsr_fleet_ring_import), and, when Redis has forgotten
 * the ring (restarted empty, flushed, failed over to an empty replica),
 * the keys this server holds, so that the fleet goes on with the same sequence.
 *
 * Why write them back rather than start a new sequence at generation 1: the servers still hold
 * every key whose tickets are valid, and a new sequence would make a server that joins later
 * miss them (its tickets from before: full handshakes), and would leave an old next key with a
 * higher generation than the new current one (`keys sync` must never write that one as next).
 * The current and the next key go back as ring keys with their generations; the keys already
 * retired go back as imports (decrypt-only on every server until their tickets expire), so a
 * server that joins gets every live key. The script writes nothing when Redis has a current key
 * again: one server wins, the others follow it on their next poll.
 *
 * Threat: as fleet_ring.c; the keys go back sealed under the wrap key, with the same AAD.
 */
#include "ring_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

static void on_created(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct tlsr_fleet_ring *fr = priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        fr->st.keys_created++;
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_INFO, "event=key_created generation=%llu",
                        (unsigned long long)fr->st.generation + 1);
    }
}

void tlsr__ring_create_next(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    uint8_t plain[KEY_PLAIN_LEN];
    uint8_t blob[KEY_BLOB_LEN];
    size_t blob_len = 0;
    if (RAND_bytes(plain, sizeof(plain)) != 1 ||
        tlsr__ring_seal_key(fr->secret, gen, plain, sizeof(plain), blob, &blob_len) != TLSR_OK) {
        OPENSSL_cleanse(plain, sizeof(plain));
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                        "event=key_create_failed error=\"%s\"", tlsr_last_error());
        return;
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    uint64_t ttl = 2 * fr->rotate_ms + fr->o.ack_wait_s * 1000ull + fr->lifetime_ms +
                   fr->o.clock_skew_s * 1000ull;
    char gen_s[24];
    char ttl_s[24];
    snprintf(gen_s, sizeof(gen_s), "%llu", (unsigned long long)gen);
    snprintf(ttl_s, sizeof(ttl_s), "%llu", (unsigned long long)ttl);
    const char *argv[] = {"EVAL", tlsr__ring_create_lua, "1",   fr->route_key,   fr->prefix,
                          gen_s,  (const char *)blob,    ttl_s, fr->clock_offset};
    size_t lens[] = {4,
                     strlen(tlsr__ring_create_lua),
                     1,
                     strlen(fr->route_key),
                     strlen(fr->prefix),
                     strlen(gen_s),
                     blob_len,
                     strlen(ttl_s),
                     strlen(fr->clock_offset)};
    (void)tlsr__rconn_argv(tlsr__ring_conn(fr), on_created, fr, 9, argv, lens);
}

/* A write whose answer changes nothing (a failure shows at the next poll). */
static void on_written(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)r;
    (void)priv;
}

/* This server's fleet keys, in key memory (free with tlsr__secmem_unmap(*m, *size), which
 * wipes): [0] the current one, [1] the next one if *has_next, then the decrypt-only ones. */
static tlsr_status held_keys(struct tlsr_fleet_ring *fr, struct tlsr_key_material **m, size_t *size,
                             size_t *n, bool *has_next)
{
    TRY(tlsr__secmem_map_keys(sizeof(**m) * MAX_KEYS_READ, (void **)m, size));
    tlsr_status rc = tlsr_keyring_export(fr->ring, true, *m, MAX_KEYS_READ, n, has_next);
    if (rc != TLSR_OK) {
        tlsr__secmem_unmap(*m, *size);
        *m = NULL;
    }
    return rc;
}

/* The winner writes the retired keys back as imports, for as long as their tickets may live. */
static void on_republished(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct tlsr_fleet_ring *fr = priv;
    redisReply *reply = r;
    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
        return; /* another server wrote them back first, or Redis is gone again */
    }
    struct tlsr_key_material *m = NULL;
    size_t size = 0;
    size_t n = 0;
    bool has_next = false;
    size_t imported = 0;
    if (held_keys(fr, &m, &size, &n, &has_next) == TLSR_OK) {
        uint32_t ttl_s = (uint32_t)((fr->lifetime_ms + fr->o.clock_skew_s * 1000ull) / 1000);
        for (size_t i = has_next ? 2 : 1; i < n; i++) {
            imported += tlsr_fleet_ring_import(fr, &m[i], ttl_s) == TLSR_OK;
        }
        tlsr__secmem_unmap(m, size);
    }
    tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_WARN,
                    "event=ring_republished generation=%llu retired_keys=%zu note=\"Redis had "
                    "lost the fleet's keys (restart, flush or failover); this server wrote back "
                    "the keys it holds\"",
                    (unsigned long long)fr->st.generation, imported);
}

void tlsr__ring_republish(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    struct tlsr_key_material *m = NULL;
    size_t size = 0;
    size_t n = 0;
    bool has_next = false;
    uint8_t cur[KEY_BLOB_LEN];
    uint8_t next[KEY_BLOB_LEN];
    size_t cur_len = 0;
    size_t next_len = 0;
    fr->n_reported = 0; /* the use reports went with the rest */
    tlsr_status rc = held_keys(fr, &m, &size, &n, &has_next);
    if (rc == TLSR_OK) {
        rc = n > 0 ? tlsr__ring_seal_key(fr->secret, gen, m[0].bytes, m[0].len, cur, &cur_len)
                   : TLSR_E_NOTFOUND;
        if (rc == TLSR_OK && has_next) {
            rc = tlsr__ring_seal_key(fr->secret, gen + 1, m[1].bytes, m[1].len, next, &next_len);
        }
        tlsr__secmem_unmap(m, size);
    }
    if (rc != TLSR_OK) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                        "event=ring_republish_failed generation=%llu error=\"%s\"",
                        (unsigned long long)gen, tlsr_last_error());
        return;
    }
    uint64_t skew_ms = fr->o.clock_skew_s * 1000ull;
    uint64_t cur_ttl = fr->rotate_ms + fr->o.ack_wait_s * 1000ull + fr->lifetime_ms + skew_ms;
    uint64_t next_ttl = 2 * fr->rotate_ms + fr->o.ack_wait_s * 1000ull + fr->lifetime_ms + skew_ms;
    char gen_s[24];
    char cur_ttl_s[24];
    char next_ttl_s[24];
    snprintf(gen_s, sizeof(gen_s), "%llu", (unsigned long long)gen);
    snprintf(cur_ttl_s, sizeof(cur_ttl_s), "%llu", (unsigned long long)cur_ttl);
    snprintf(next_ttl_s, sizeof(next_ttl_s), "%llu", (unsigned long long)next_ttl);
    const char *argv[] = {"EVAL",     tlsr__ring_republish_lua, "1",       fr->route_key,
                          fr->prefix, fr->clock_offset,         gen_s,     (const char *)cur,
                          cur_ttl_s,  (const char *)next,       next_ttl_s};
    size_t lens[] = {4,
                     strlen(tlsr__ring_republish_lua),
                     1,
                     strlen(fr->route_key),
                     strlen(fr->prefix),
                     strlen(fr->clock_offset),
                     strlen(gen_s),
                     cur_len,
                     strlen(cur_ttl_s),
                     next_len,
                     strlen(next_ttl_s)};
    (void)tlsr__rconn_argv(tlsr__ring_conn(fr), on_republished, fr, 11, argv, lens);
    OPENSSL_cleanse(cur, sizeof(cur));
    OPENSSL_cleanse(next, sizeof(next));
}

tlsr_status tlsr_fleet_ring_import(struct tlsr_fleet_ring *fr, const struct tlsr_key_material *key,
                                   uint32_t ttl_s)
{
    ENSURE(fr != NULL && key != NULL && (key->len == 48 || key->len == 80) && ttl_s > 0,
           TLSR_E_INVALID, "fleet: import: a 48- or 80-byte key and a TTL");
    struct rconn *conn = tlsr__ring_conn(fr);
    ENSURE(conn != NULL && conn->state == RCONN_UP, TLSR_E_SYSTEM, "fleet: Redis is not connected");
    /* The id names the key without revealing it: a hash of its name under the name key. */
    uint8_t hash[NAME_HASH_LEN];
    TRY(tlsr__fleet_name_hash(fr->secret->name_key, key->bytes, TLSR_TICKET_NAME_LEN, hash));
    char id[2 * NAME_HASH_LEN + 1];
    tlsr__hex(hash, NAME_HASH_LEN, id);
    uint8_t blob[1 + KEY_BLOB_LEN];
    size_t blob_len = 0;
    tlsr_status rc = tlsr__ring_seal_import(fr->secret, id, key, blob, &blob_len);
    TRY(rc);
    char name[96];
    char set[96];
    char ttl[24];
    snprintf(name, sizeof(name), "%simp:%s", fr->prefix, id);
    snprintf(set, sizeof(set), "%simports", fr->prefix);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)ttl_s * 1000ull);
    const char *argv[] = {"SET", name, (const char *)blob, "PX", ttl};
    size_t lens[] = {3, strlen(name), blob_len, 2, strlen(ttl)};
    ENSURE(tlsr__rconn_argv(conn, on_written, NULL, 5, argv, lens) == 0 &&
               tlsr__rconn_command(conn, on_written, NULL, "SADD %s %s", set, id) == 0,
           TLSR_E_SYSTEM, "fleet: Redis is not connected");
    return TLSR_OK;
}

/*
 * Session entries as stored in Redis (a parser of bytes from Redis: fuzz/fuzz_fleet_entry.c).
 *
 * Redis key:   <prefix>s:<hex of HMAC-SHA256(name_key, AAD)[0..16]>
 * Redis value: a sealed blob (secret.c) under session_key whose plaintext is
 *                  expires_s u64 (Unix seconds) | the session encoding (src/lib/ssl/sess_codec)
 *              and whose AAD is
 *                  "tlsresume session v1" | flags u8 | ctx_len u8 | sid_ctx | id_len u8 | id
 * The AAD binds an entry to its session ID and context: an entry copied under another key, or
 * made for another virtual host, does not open. The expiry inside the seal backs up Redis's TTL.
 *
 * With several endpoints (not a Cluster), an entry lives on the endpoint of the highest score
 * mix64(seed(endpoint text) ^ first 8 bytes of the name hash): rendezvous hashing, so losing one
 * endpoint moves only its share, and every server (serve's cache, the blocking store) agrees.
 */
#include "fleet_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

#define LABEL "tlsresume session v1"

size_t tlsr__fleet_entry_aad(const uint8_t *sid_ctx, size_t sid_ctx_len, const uint8_t *id,
                             size_t id_len, unsigned flags, uint8_t *out, size_t cap)
{
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, cap);
    if (sid_ctx_len > 255 || id_len > 255 ||
        tlsr_wr_bytes(&wr, (const uint8_t *)LABEL, strlen(LABEL)) != TLSR_OK ||
        tlsr_wr_u8(&wr, (uint8_t)flags) != TLSR_OK ||
        tlsr_wr_u8(&wr, (uint8_t)sid_ctx_len) != TLSR_OK ||
        tlsr_wr_bytes(&wr, sid_ctx, sid_ctx_len) != TLSR_OK ||
        tlsr_wr_u8(&wr, (uint8_t)id_len) != TLSR_OK || tlsr_wr_bytes(&wr, id, id_len) != TLSR_OK) {
        return 0;
    }
    return wr.used;
}

tlsr_status tlsr__fleet_entry_seal(const struct tlsr_fleet_secret *s, const uint8_t *aad,
                                   size_t aad_len, uint64_t expires_s, const uint8_t *value,
                                   size_t value_len, uint8_t *out, size_t cap, size_t *out_len)
{
    ENSURE(value_len <= ENTRY_MAX_VALUE, TLSR_E_TOOBIG, "fleet entry: session of %zu bytes",
           value_len);
    uint8_t plain[8 + ENTRY_MAX_VALUE];
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, plain, sizeof(plain));
    tlsr_status rc = tlsr_wr_u64(&wr, expires_s);
    if (rc == TLSR_OK) {
        rc = tlsr_wr_bytes(&wr, value, value_len);
    }
    if (rc == TLSR_OK) {
        rc = tlsr__fleet_seal(s->session_key, aad, aad_len, plain, wr.used, out, cap, out_len);
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

tlsr_status tlsr__fleet_entry_open(const struct tlsr_fleet_secret *s, const uint8_t *aad,
                                   size_t aad_len, const uint8_t *in, size_t in_len, uint64_t now_s,
                                   uint8_t *value, size_t cap, size_t *value_len,
                                   uint64_t *expires_s)
{
    uint8_t plain[8 + ENTRY_MAX_VALUE];
    size_t plain_len = 0;
    TRY(tlsr__fleet_open(s->session_key, aad, aad_len, in, in_len, plain, sizeof(plain),
                         &plain_len));
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, plain, plain_len);
    uint64_t expires = 0;
    const uint8_t *body = NULL;
    size_t body_len = 0;
    tlsr_status rc = tlsr_rd_u64(&rd, &expires);
    if (rc == TLSR_OK) {
        tlsr_rd_rest(&rd, &body, &body_len);
        if (body_len == 0 || body_len > cap) {
            rc = tlsr__err_set(TLSR_E_FORMAT, "fleet entry: session of %zu bytes", body_len);
        } else if (expires <= now_s) {
            rc = tlsr__err_set(TLSR_E_EXPIRED, "fleet entry: expired");
        } else {
            memcpy(value, body, body_len);
            *value_len = body_len;
            *expires_s = expires;
        }
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

tlsr_status tlsr__fleet_entry_name(const struct tlsr_fleet_secret *s, const char *prefix,
                                   const uint8_t *ctx, size_t ctx_len, const uint8_t *id,
                                   size_t id_len, char *name, size_t cap,
                                   uint8_t hash[NAME_HASH_LEN])
{
    uint8_t what[256];
    size_t what_len = tlsr__fleet_entry_aad(ctx, ctx_len, id, id_len, 0, what, sizeof(what));
    ENSURE(what_len > 0, TLSR_E_INVALID, "fleet: session ID or context too long");
    TRY(tlsr__fleet_name_hash(s->name_key, what, what_len, hash));
    int n = snprintf(name, cap, "%ss:", prefix);
    ENSURE(n > 0 && (size_t)n + 2 * NAME_HASH_LEN < cap, TLSR_E_INVALID,
           "fleet: key prefix too long");
    tlsr__hex(hash, NAME_HASH_LEN, name + n);
    return TLSR_OK;
}

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

uint64_t tlsr__fleet_endpoint_seed(const char *text)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *text != '\0'; text++) {
        h = (h ^ (uint8_t)*text) * 0x100000001b3ull;
    }
    return h;
}

size_t tlsr__fleet_entry_shard(const uint64_t *seeds, size_t n, const uint8_t hash[NAME_HASH_LEN])
{
    uint64_t h = 0;
    memcpy(&h, hash, sizeof(h));
    size_t best = 0;
    uint64_t best_score = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t score = mix64(seeds[i] ^ h);
        if (i == 0 || score > best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

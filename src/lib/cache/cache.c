/*
 * Session cache operations: insert, lookup (with take-once for single-use entries), remove,
 * eviction and the consistency check. The layout and its invariants are described in arena.c.
 *
 * Every operation hashes the key outside the lock, then works on one shard under its lock in
 * O(1) expected time: a bucket chain holds two entries on average, and the CLOCK hand finds a
 * victim after a bounded sweep. Chain walks are bounded by the slot count and every link is
 * range-checked, so a corrupted shard is detected and reset instead of looped over.
 */
#include "cache_int.h"
#include "cache_test.h"

#include <string.h>

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"

#define MAX_LIFETIME_S (7u * 24 * 3600)

struct located {
    struct shard *sh;
    uint8_t fp[FP_LEN];
    uint32_t bucket;
};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static tlsr_status check_key(const struct tlsr_cache_key *key)
{
    ENSURE(key != NULL, TLSR_E_INVALID, "cache: key is NULL");
    ENSURE(key->ctx_len <= TLSR_CACHE_MAX_CTX && (key->ctx != NULL || key->ctx_len == 0),
           TLSR_E_INVALID, "cache: session ID context of %zu bytes (max %d)", key->ctx_len,
           TLSR_CACHE_MAX_CTX);
    ENSURE(key->id_len >= 1 && key->id_len <= TLSR_CACHE_MAX_ID && key->id != NULL, TLSR_E_INVALID,
           "cache: session ID of %zu bytes (1 to %d)", key->id_len, TLSR_CACHE_MAX_ID);
    return TLSR_OK;
}

/* Fingerprint = first 16 bytes of SHA-256(hash_key | ctx_len | ctx | id_len | id). */
static tlsr_status locate(struct tlsr_cache *c, const struct tlsr_cache_key *key,
                          struct located *loc)
{
    TRY(check_key(key));
    uint8_t in[HASH_KEY_LEN + 2 + TLSR_CACHE_MAX_CTX + TLSR_CACHE_MAX_ID];
    size_t n = 0;
    memcpy(in, c->arena->hash_key, HASH_KEY_LEN);
    n += HASH_KEY_LEN;
    in[n++] = (uint8_t)key->ctx_len;
    if (key->ctx_len > 0) {
        memcpy(in + n, key->ctx, key->ctx_len);
        n += key->ctx_len;
    }
    in[n++] = (uint8_t)key->id_len;
    memcpy(in + n, key->id, key->id_len);
    n += key->id_len;
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    int ok = EVP_Digest(in, n, md, &md_len, c->sha256, NULL);
    OPENSSL_cleanse(in, sizeof(in));
    if (ok != 1 || md_len < FP_LEN) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cache: hashing the key failed");
    }
    memcpy(loc->fp, md, FP_LEN);
    loc->sh = shard_at(c, le32(md) % c->arena->nshards);
    loc->bucket = le32(md + 4) % loc->sh->nbuckets;
    return TLSR_OK;
}

/* Puts one slot back on the free list, wiped. */
static void slot_release(struct shard *sh, struct slot *s, uint32_t link)
{
    OPENSSL_cleanse(s, sizeof(*s));
    s->more = sh->free_head;
    sh->free_head = link;
    sh->free_count++;
}

/*
 * Finds the head with fingerprint fp in its bucket chain. On return *link is its link (0 when
 * absent) and *prev_link the link of the head before it (0 when it is first). Returns false
 * when the chain is corrupt.
 */
static bool chain_find(struct shard *sh, uint32_t bucket, const uint8_t *fp, uint32_t *link,
                       uint32_t *prev_link)
{
    uint32_t prev = 0;
    uint32_t cur = shard_buckets(sh)[bucket];
    for (uint32_t steps = 0; cur != 0; steps++) {
        struct slot *s = shard_slot(sh, cur);
        if (s == NULL || s->kind != SLOT_HEAD || steps >= sh->nslots) {
            return false;
        }
        if (memcmp(s->fp, fp, FP_LEN) == 0) {
            break;
        }
        prev = cur;
        cur = s->next;
    }
    *link = cur;
    *prev_link = prev;
    return true;
}

/* Unlinks the entry whose head is `link` from its chain and frees all its slots. */
static bool entry_drop(struct shard *sh, uint32_t link)
{
    struct slot *head = shard_slot(sh, link);
    uint32_t bucket = le32(head->fp + 4) % sh->nbuckets;
    uint32_t found;
    uint32_t prev;
    if (!chain_find(sh, bucket, head->fp, &found, &prev) || found != link) {
        return false;
    }
    if (prev == 0) {
        shard_buckets(sh)[bucket] = head->next;
    } else {
        shard_slot(sh, prev)->next = head->next;
    }
    uint32_t cur = link;
    for (uint32_t steps = 0; cur != 0; steps++) {
        struct slot *s = shard_slot(sh, cur);
        if (s == NULL || steps >= sh->nslots) {
            return false;
        }
        uint32_t more = s->more;
        slot_release(sh, s, cur);
        cur = more;
    }
    sh->entries--;
    return true;
}

/* Evicts entries by CLOCK (expired ones first in passing) until need slots are free. With
 * is_live_kept, only expired entries are reclaimed. */
static bool make_room(struct shard *sh, uint32_t need, uint32_t now, bool is_live_kept)
{
    uint64_t budget = 2u * (uint64_t)sh->nslots + 2u;
    while (sh->free_count < need && budget-- > 0) {
        uint32_t link = sh->hand + 1;
        sh->hand = (sh->hand + 1) % sh->nslots;
        struct slot *s = shard_slot(sh, link);
        if (s->kind != SLOT_HEAD) {
            continue;
        }
        bool is_expired = s->expire_s <= now;
        if (!is_expired && is_live_kept) {
            continue;
        }
        if (!is_expired && (s->bits & SLOT_BIT_REF) != 0) {
            s->bits &= (uint8_t)~SLOT_BIT_REF;
            continue;
        }
        if (!entry_drop(sh, link)) {
            return false;
        }
        if (is_expired) {
            sh->expirations++;
        } else {
            sh->evictions++;
        }
    }
    return sh->free_count >= need;
}

/* Takes one slot off the free list. The caller made room first. */
static uint32_t slot_take(struct shard *sh)
{
    uint32_t link = sh->free_head;
    struct slot *s = shard_slot(sh, link);
    sh->free_head = s->more;
    sh->free_count--;
    s->more = 0;
    return link;
}

/* Writes a new entry; room for it exists. */
static void entry_write(struct shard *sh, const struct located *loc, const uint8_t *value,
                        size_t len, uint32_t expire_s, unsigned flags)
{
    uint32_t head_link = slot_take(sh);
    struct slot *head = shard_slot(sh, head_link);
    struct slot *s = head;
    size_t done = 0;
    while (1) {
        size_t n = len - done < SLOT_DATA ? len - done : SLOT_DATA;
        memcpy(s->data, value + done, n);
        done += n;
        if (done == len) {
            break;
        }
        uint32_t next = slot_take(sh);
        s->more = next;
        s = shard_slot(sh, next);
        s->kind = SLOT_CONT;
    }
    memcpy(head->fp, loc->fp, FP_LEN);
    head->expire_s = expire_s;
    head->len = (uint16_t)len;
    head->kind = SLOT_HEAD;
    head->bits = (flags & TLSR_CACHE_SINGLE_USE) != 0 ? SLOT_BIT_SINGLE_USE : 0;
    uint32_t *bucket = &shard_buckets(sh)[loc->bucket];
    head->next = *bucket;
    *bucket = head_link;
    sh->entries++;
}

static uint32_t now_s(struct tlsr_cache *c)
{
    return (uint32_t)c->clock(c->clock_arg);
}

/* Resets a shard found corrupt; the caller holds its lock. */
static void shard_fault(struct shard *sh)
{
    tlsr__cache_shard_reset(sh);
}

/* The link of the entry at loc, or 0; a corrupt chain resets the shard (and finds nothing). */
static uint32_t find_or_reset(struct shard *sh, const struct located *loc)
{
    uint32_t link;
    uint32_t prev;
    if (!chain_find(sh, loc->bucket, loc->fp, &link, &prev)) {
        shard_fault(sh);
        return 0;
    }
    return link;
}

/* Drops the entry at link; a corrupt chain resets the shard (which drops it too). */
static void drop_or_reset(struct shard *sh, uint32_t link)
{
    if (!entry_drop(sh, link)) {
        shard_fault(sh);
    }
}

tlsr_status tlsr_cache_insert(struct tlsr_cache *c, const struct tlsr_cache_key *key,
                              const uint8_t *value, size_t value_len, uint32_t lifetime_s,
                              unsigned flags)
{
    ENSURE(c != NULL && value != NULL, TLSR_E_INVALID, "cache: insert: NULL argument");
    ENSURE(lifetime_s >= 1 && lifetime_s <= MAX_LIFETIME_S, TLSR_E_INVALID,
           "cache: lifetime %u s is outside 1 s to 7 days", lifetime_s);
    ENSURE(value_len >= 1, TLSR_E_INVALID, "cache: empty value");
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    struct shard *sh = loc.sh;
    size_t need = (value_len + SLOT_DATA - 1) / SLOT_DATA;
    uint32_t now = now_s(c);
    TRY(tlsr__cache_shard_lock(sh));
    tlsr_status rc = TLSR_OK;
    if (value_len > TLSR_CACHE_MAX_VALUE || need > sh->nslots / 2) {
        sh->too_large++;
        rc = tlsr__err_set(TLSR_E_TOOBIG, "cache: value of %zu bytes can never fit (max %u)",
                           value_len, TLSR_CACHE_MAX_VALUE);
        goto out;
    }
    uint32_t link = find_or_reset(sh, &loc);
    if (link != 0) {
        drop_or_reset(sh, link);
        sh->replaced++;
    }
    if (!make_room(sh, (uint32_t)need, now, false)) {
        shard_fault(sh);
    }
    entry_write(sh, &loc, value, value_len, now + lifetime_s, flags);
    sh->inserts++;
out:
    tlsr__cache_shard_unlock(sh);
    return rc;
}

/* Copies the entry at head into out; false when its continuation chain is corrupt. */
static bool entry_read(struct shard *sh, struct slot *head, uint8_t *out)
{
    size_t len = head->len;
    size_t done = 0;
    struct slot *s = head;
    while (1) {
        size_t n = len - done < SLOT_DATA ? len - done : SLOT_DATA;
        memcpy(out + done, s->data, n);
        done += n;
        if (done == len) {
            return true;
        }
        s = shard_slot(sh, s->more);
        if (s == NULL || s->kind != SLOT_CONT) {
            return false;
        }
    }
}

tlsr_status tlsr_cache_lookup(struct tlsr_cache *c, const struct tlsr_cache_key *key, uint8_t *out,
                              size_t out_cap, size_t *out_len)
{
    ENSURE(c != NULL && out != NULL && out_len != NULL, TLSR_E_INVALID,
           "cache: lookup: NULL argument");
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    struct shard *sh = loc.sh;
    uint32_t now = now_s(c);
    TRY(tlsr__cache_shard_lock(sh));
    tlsr_status rc = TLSR_E_NOTFOUND;
    uint32_t link = find_or_reset(sh, &loc);
    struct slot *head = shard_slot(sh, link);
    if (head != NULL && head->expire_s <= now) {
        drop_or_reset(sh, link);
        sh->expirations++;
        head = NULL;
    }
    if (head == NULL) {
        sh->misses++;
        goto out;
    }
    if (head->len > out_cap) {
        rc = tlsr__err_set(TLSR_E_TOOBIG, "cache: entry of %u bytes, buffer of %zu", head->len,
                           out_cap);
        goto out;
    }
    if (!entry_read(sh, head, out)) {
        OPENSSL_cleanse(out, out_cap);
        shard_fault(sh);
        sh->misses++;
        goto out;
    }
    *out_len = head->len;
    head->bits |= SLOT_BIT_REF;
    sh->hits++;
    rc = TLSR_OK;
    if ((head->bits & SLOT_BIT_SINGLE_USE) != 0) {
        drop_or_reset(sh, link);
        sh->taken++;
    }
out:
    tlsr__cache_shard_unlock(sh);
    return rc;
}

tlsr_status tlsr_cache_record(struct tlsr_cache *c, const struct tlsr_cache_key *key,
                              uint32_t lifetime_s)
{
    ENSURE(c != NULL, TLSR_E_INVALID, "cache: record: NULL cache");
    ENSURE(lifetime_s >= 1 && lifetime_s <= MAX_LIFETIME_S, TLSR_E_INVALID,
           "cache: lifetime %u s is outside 1 s to 7 days", lifetime_s);
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    struct shard *sh = loc.sh;
    uint32_t now = now_s(c);
    static const uint8_t mark = 1;
    TRY(tlsr__cache_shard_lock(sh));
    tlsr_status rc = TLSR_OK;
    uint32_t link = find_or_reset(sh, &loc);
    struct slot *head = shard_slot(sh, link);
    if (head != NULL && head->expire_s > now) {
        sh->hits++;
        rc = TLSR_E_EXISTS; /* seen within its lifetime */
        goto out;
    }
    if (head != NULL) {
        drop_or_reset(sh, link);
        sh->expirations++;
    }
    if (!make_room(sh, 1, now, true)) {
        /* Every slot holds a live record: forgetting one could let a replay through. */
        sh->too_large++;
        rc = tlsr__err_set(TLSR_E_TOOBIG, "cache: register full of live records");
        goto out;
    }
    entry_write(sh, &loc, &mark, sizeof(mark), now + lifetime_s, 0);
    sh->misses++;
    sh->inserts++;
    if (now + lifetime_s > sh->record_horizon) {
        sh->record_horizon = now + lifetime_s;
    }
    if (now < sh->distrust_until) {
        /* Recorded, so that a replay is known once the shard is trusted again; refused now. */
        sh->distrusted++;
        rc = tlsr__err_set(TLSR_E_SYSTEM,
                           "cache: register shard recovered from a dead lock holder; its "
                           "records may be lost for %u s more",
                           sh->distrust_until - now);
    }
out:
    tlsr__cache_shard_unlock(sh);
    return rc;
}

tlsr_status tlsr_cache_contains(struct tlsr_cache *c, const struct tlsr_cache_key *key)
{
    ENSURE(c != NULL, TLSR_E_INVALID, "cache: contains: NULL cache");
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    struct shard *sh = loc.sh;
    uint32_t now = now_s(c);
    TRY(tlsr__cache_shard_lock(sh));
    struct slot *head = shard_slot(sh, find_or_reset(sh, &loc));
    tlsr_status rc = head != NULL && head->expire_s > now ? TLSR_OK : TLSR_E_NOTFOUND;
    tlsr__cache_shard_unlock(sh);
    return rc;
}

tlsr_status tlsr_cache_remove(struct tlsr_cache *c, const struct tlsr_cache_key *key)
{
    ENSURE(c != NULL, TLSR_E_INVALID, "cache: remove: NULL cache");
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    struct shard *sh = loc.sh;
    TRY(tlsr__cache_shard_lock(sh));
    tlsr_status rc = TLSR_E_NOTFOUND;
    uint32_t link = find_or_reset(sh, &loc);
    if (link != 0) {
        drop_or_reset(sh, link);
        sh->removals++;
        rc = TLSR_OK;
    }
    tlsr__cache_shard_unlock(sh);
    return rc;
}

tlsr_status tlsr__cache_hold_lock(struct tlsr_cache *c, const struct tlsr_cache_key *key)
{
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    return tlsr__cache_shard_lock(loc.sh);
}

tlsr_status tlsr__cache_shard_of(struct tlsr_cache *c, const struct tlsr_cache_key *key,
                                 unsigned *out)
{
    struct located loc = {0};
    TRY(locate(c, key, &loc));
    for (unsigned i = 0; i < c->arena->nshards; i++) {
        if (shard_at(c, i) == loc.sh) {
            *out = i;
        }
    }
    return TLSR_OK;
}

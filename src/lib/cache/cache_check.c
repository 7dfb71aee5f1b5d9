/*
 * The cache's consistency check (tlsr__cache_check), used by the unit tests after concurrent
 * hammering and by the cache fuzz target after every operation. It walks each shard under its
 * lock and verifies every invariant listed in arena.c, using a scratch bitmap per shard.
 */
#include "cache_int.h"
#include "cache_test.h"

#include <string.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

/* Marks link as owned; false when it is out of range or already owned. */
static bool mark(uint8_t *seen, const struct shard *sh, uint32_t link)
{
    if (link == 0 || link > sh->nslots || seen[link - 1] != 0) {
        return false;
    }
    seen[link - 1] = 1;
    return true;
}

static tlsr_status check_free_list(struct shard *sh, uint8_t *seen, unsigned i)
{
    uint32_t n = 0;
    for (uint32_t link = sh->free_head; link != 0; link = shard_slot(sh, link)->more) {
        ENSURE(mark(seen, sh, link), TLSR_E_FORMAT, "shard %u: free list reuses slot %u", i, link);
        ENSURE(shard_slot(sh, link)->kind == SLOT_FREE, TLSR_E_FORMAT,
               "shard %u: slot %u on the free list is in use", i, link);
        n++;
    }
    ENSURE(n == sh->free_count, TLSR_E_FORMAT, "shard %u: free list has %u slots, count says %u", i,
           n, sh->free_count);
    return TLSR_OK;
}

static tlsr_status check_entry(struct shard *sh, uint8_t *seen, unsigned i, uint32_t head_link,
                               uint32_t *slots)
{
    struct slot *head = shard_slot(sh, head_link);
    uint32_t need = (head->len + SLOT_DATA - 1) / SLOT_DATA;
    ENSURE(head->len > 0 && need >= 1, TLSR_E_FORMAT, "shard %u: empty entry at %u", i, head_link);
    uint32_t n = 1;
    for (uint32_t link = head->more; link != 0; link = shard_slot(sh, link)->more) {
        ENSURE(mark(seen, sh, link), TLSR_E_FORMAT, "shard %u: slot %u owned twice", i, link);
        ENSURE(shard_slot(sh, link)->kind == SLOT_CONT, TLSR_E_FORMAT,
               "shard %u: slot %u is not a continuation", i, link);
        n++;
    }
    ENSURE(n == need, TLSR_E_FORMAT, "shard %u: entry at %u has %u slots for %u bytes", i,
           head_link, n, head->len);
    *slots += n;
    return TLSR_OK;
}

static tlsr_status check_shard(struct shard *sh, uint8_t *seen, unsigned i)
{
    memset(seen, 0, sh->nslots);
    TRY(check_free_list(sh, seen, i));
    uint32_t heads = 0;
    uint32_t used = 0;
    for (uint32_t b = 0; b < sh->nbuckets; b++) {
        for (uint32_t link = shard_buckets(sh)[b]; link != 0; link = shard_slot(sh, link)->next) {
            ENSURE(mark(seen, sh, link), TLSR_E_FORMAT, "shard %u: head %u owned twice", i, link);
            struct slot *s = shard_slot(sh, link);
            ENSURE(s->kind == SLOT_HEAD, TLSR_E_FORMAT, "shard %u: chain %u holds a non-head", i,
                   b);
            uint32_t want = ((uint32_t)s->fp[4] | (uint32_t)s->fp[5] << 8 |
                             (uint32_t)s->fp[6] << 16 | (uint32_t)s->fp[7] << 24) %
                            sh->nbuckets;
            ENSURE(want == b, TLSR_E_FORMAT, "shard %u: head %u in bucket %u, belongs in %u", i,
                   link, b, want);
            TRY(check_entry(sh, seen, i, link, &used));
            heads++;
        }
    }
    ENSURE(heads == sh->entries, TLSR_E_FORMAT, "shard %u: %u heads, count says %u", i, heads,
           sh->entries);
    ENSURE(used + sh->free_count == sh->nslots, TLSR_E_FORMAT,
           "shard %u: %u used + %u free != %u slots", i, used, sh->free_count, sh->nslots);
    return TLSR_OK;
}

tlsr_status tlsr__cache_check(struct tlsr_cache *c)
{
    struct shard *first = shard_at(c, 0);
    uint8_t *seen = tlsr__malloc(first->nslots);
    ENSURE(seen != NULL, TLSR_E_NOMEM, "cache check: out of memory");
    tlsr_status rc = TLSR_OK;
    for (unsigned i = 0; i < c->arena->nshards && rc == TLSR_OK; i++) {
        struct shard *sh = shard_at(c, i);
        rc = tlsr__cache_shard_lock(sh);
        if (rc != TLSR_OK) {
            break;
        }
        rc = check_shard(sh, seen, i);
        tlsr__cache_shard_unlock(sh);
    }
    tlsr__free(seen);
    return rc;
}

unsigned tlsr__cache_corrupt_heads(struct tlsr_cache *c, size_t at)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->arena->nshards && at < SLOT_DATA; i++) {
        struct shard *sh = shard_at(c, i);
        if (tlsr__cache_shard_lock(sh) != TLSR_OK) {
            continue;
        }
        for (uint32_t link = 1; link <= sh->nslots; link++) {
            struct slot *slot = shard_slot(sh, link);
            if (slot->kind == SLOT_HEAD) {
                slot->data[at] ^= 0xff;
                n++;
            }
        }
        tlsr__cache_shard_unlock(sh);
    }
    return n;
}

/*
 * Private to the cache module: the shared-memory layout (see arena.c for the description) and
 * the functions arena.c and cache.c share.
 */
#ifndef TLSR_CACHE_INT_H
#define TLSR_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include <tlsresume/cache.h>

#define ARENA_MAGIC 0x544c5352u /* "TLSR" */
#define ARENA_VERSION 1u
#define SLOT_SIZE 128u
#define SLOT_DATA 96u
#define FP_LEN 16u
#define HASH_KEY_LEN 32u

enum slot_kind { SLOT_FREE = 0, SLOT_HEAD = 1, SLOT_CONT = 2 };
#define SLOT_BIT_REF 0x1u        /* CLOCK reference bit: looked up since the hand passed */
#define SLOT_BIT_SINGLE_USE 0x2u /* removed by the first lookup */

/* One 128-byte slot. Links are slot indexes plus one; 0 means none. */
struct slot {
    uint8_t fp[FP_LEN]; /* keyed hash of (ctx, id): the entry's identity */
    uint32_t next;      /* head: next head in the bucket chain */
    uint32_t more;      /* next slot of the same entry, or next free slot */
    uint32_t expire_s;  /* head: wall-clock second at which the entry expires */
    uint16_t len;       /* head: value bytes in the whole entry */
    uint8_t kind;       /* enum slot_kind */
    uint8_t bits;       /* SLOT_BIT_* */
    uint8_t data[SLOT_DATA];
};
_Static_assert(sizeof(struct slot) == SLOT_SIZE, "slot layout");
_Static_assert(offsetof(struct slot, data) == SLOT_SIZE - SLOT_DATA, "slot header layout");

struct shard {
    pthread_mutex_t lock; /* process-shared, robust */
    uint32_t nslots;
    uint32_t nbuckets;
    uint32_t free_head;
    uint32_t free_count;
    uint32_t hand; /* CLOCK hand: next slot index to look at */
    uint32_t entries;
    uint64_t buckets_off; /* from the start of this shard */
    uint64_t slots_off;   /* from the start of this shard */
    uint64_t hits, misses, inserts, replaced, removals, taken, evictions, expirations, too_large,
        resets;
    /* Strike registers (tlsr_cache_record): the latest expiry of any record written here, and,
     * after a reset that lost records, until when this shard cannot tell a replay from a first
     * sighting (the old horizon). */
    uint32_t record_horizon;
    uint32_t distrust_until;
    uint64_t distrusted; /* records refused for that reason */
};

struct arena {
    uint32_t magic;
    uint32_t version;
    uint32_t nshards;
    uint32_t records_since; /* atomic: strike registers, the first tlsr_cache_records_since() */
    uint64_t size_bytes;
    uint64_t shards_off;   /* from the start of the arena */
    uint64_t shard_stride; /* bytes from one shard to the next */
    uint64_t corrupt;      /* atomic */
    uint64_t chain;        /* atomic: sessions past the resumption chain cap */
    uint8_t hash_key[HASH_KEY_LEN];
};
_Static_assert(sizeof(struct arena) == 88, "arena header layout");

struct tlsr_cache {
    struct arena *arena; /* shared mapping */
    size_t map_size;
    int fd;        /* the memory file holding the arena (close-on-exec) */
    pid_t creator; /* only the creator (or the adopter) wipes the arena when freeing; 0: none */
    EVP_MD *sha256;
    tlsr_clock_fn clock;
    void *clock_arg;
};

static inline struct shard *shard_at(const struct tlsr_cache *c, uint32_t i)
{
    uint8_t *base = (uint8_t *)c->arena;
    return (struct shard *)(base + c->arena->shards_off + (uint64_t)i * c->arena->shard_stride);
}

static inline uint32_t *shard_buckets(struct shard *sh)
{
    return (uint32_t *)((uint8_t *)sh + sh->buckets_off);
}

/* The slot with link value `link` (index + 1), or NULL for 0 or out of range. */
static inline struct slot *shard_slot(struct shard *sh, uint32_t link)
{
    if (link == 0 || link > sh->nslots) {
        return NULL;
    }
    return (struct slot *)((uint8_t *)sh + sh->slots_off) + (link - 1);
}

/* Empties the shard: wipes every slot, rebuilds the free list, keeps the counters. */
void tlsr__cache_shard_reset(struct shard *sh);
/* Locks the shard; a dead holder's shard is reset and made consistent. */
tlsr_status tlsr__cache_shard_lock(struct shard *sh);
void tlsr__cache_shard_unlock(struct shard *sh);

#endif

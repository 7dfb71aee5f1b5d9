/*
 * Session cache arena: creation, layout, locking and recovery.
 *
 * Layout (one MAP_SHARED mapping of a memory file, locked and excluded from core dumps; all
 * links are offsets or slot indexes, never pointers, so every process can map it anywhere, and
 * a process that receives the file's descriptor across exec adopts the cache whole):
 *
 *     [struct arena, padded to 64]                    magic, geometry, hash key
 *     [shard 0][shard 1] ... [shard n-1]              each shard_stride bytes
 *     shard = [struct shard, padded to 64]            robust mutex, free list, CLOCK hand,
 *                                                     counters
 *             [uint32_t buckets[nbuckets], padded]    heads of the hash chains (link or 0)
 *             [struct slot slots[nslots]]             128 bytes each
 *
 * An entry is one head slot plus continuation slots for values over 96 bytes. A serialized
 * TLS session stripped of what the key already holds is 79-83 bytes (docs/BENCHMARKS.md), so a
 * session takes one slot: with one bucket per two slots, 130 bytes of arena per session.
 *
 * Invariants (checked by tlsr__cache_check): every slot is on the free list or owned by exactly
 * one entry; free_count counts the free list; a head is in the chain of the bucket its
 * fingerprint hashes to; entries counts the heads.
 *
 * Threat: a worker killed while holding a shard lock (the robust mutex hands the lock to the
 * next taker with EOWNERDEAD, who resets that shard: lose its sessions, never hang or walk a
 * half-written chain; a strike register's shard then refuses until the records it lost would
 * have expired, so a replay is never taken for a first sighting), and hash flooding by
 * client-chosen session IDs (the bucket hash is keyed with a random secret).
 */
#include "cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define ALIGN64(x) (((x) + 63u) & ~(uint64_t)63u)
#define SHARD_TARGET_BYTES ((size_t)256 * 1024)
#define MAX_SHARDS 16u

/* Bytes a shard of nslots slots needs. */
static uint64_t shard_bytes(uint32_t nslots)
{
    uint64_t nbuckets = (nslots + 1u) / 2u;
    return ALIGN64(sizeof(struct shard)) + ALIGN64(nbuckets * 4u) + (uint64_t)nslots * SLOT_SIZE;
}

static void shard_init(struct shard *sh, uint32_t nslots)
{
    sh->nslots = nslots;
    sh->nbuckets = (nslots + 1u) / 2u;
    sh->buckets_off = ALIGN64(sizeof(struct shard));
    sh->slots_off = sh->buckets_off + ALIGN64((uint64_t)sh->nbuckets * 4u);
    tlsr__cache_shard_reset(sh);
    sh->resets = 0;
    sh->record_horizon = 0;
    sh->distrust_until = 0;
    sh->distrusted = 0;
}

void tlsr__cache_shard_reset(struct shard *sh)
{
    uint32_t *buckets = shard_buckets(sh);
    memset(buckets, 0, (size_t)sh->nbuckets * sizeof(*buckets));
    struct slot *slots = shard_slot(sh, 1);
    OPENSSL_cleanse(slots, (size_t)sh->nslots * SLOT_SIZE);
    for (uint32_t i = 0; i < sh->nslots; i++) {
        slots[i].more = (i + 1 < sh->nslots) ? i + 2 : 0;
    }
    sh->free_head = sh->nslots > 0 ? 1 : 0;
    sh->free_count = sh->nslots;
    sh->hand = 0;
    sh->entries = 0;
    sh->resets++;
    /* Sessions are simply lost; a strike register lost records that may still be live, so it
     * refuses until the last of them would have expired (tlsr_cache_record). */
    sh->distrust_until = sh->record_horizon;
}

tlsr_status tlsr__cache_shard_lock(struct shard *sh)
{
    bool owner_died = false;
    TRY(tlsr__shm_mutex_lock(&sh->lock, &owner_died, "cache"));
    if (owner_died) {
        /* The holder died mid-operation: nothing in this shard can be trusted. */
        tlsr__cache_shard_reset(sh);
        int r = pthread_mutex_consistent(&sh->lock);
        if (r != 0) {
            pthread_mutex_unlock(&sh->lock);
            return tlsr__err_sys(TLSR_E_SYSTEM, r, "cache: shard lock recovery");
        }
    }
    return TLSR_OK;
}

void tlsr__cache_shard_unlock(struct shard *sh)
{
    pthread_mutex_unlock(&sh->lock);
}

/* Picks the shard count and slots per shard for an arena of size bytes. */
static tlsr_status plan(size_t size, uint32_t *nshards, uint32_t *nslots, uint64_t *stride)
{
    uint64_t n = size / SHARD_TARGET_BYTES;
    n = n < 1 ? 1 : (n > MAX_SHARDS ? MAX_SHARDS : n);
    uint64_t avail = (size - ALIGN64(sizeof(struct arena))) / n;
    avail &= ~(uint64_t)63u;
    uint64_t fixed = ALIGN64(sizeof(struct shard)) + 64u;
    uint64_t slots = (avail - fixed) * 2u / (2u * SLOT_SIZE + 4u);
    while (slots > 0 && shard_bytes((uint32_t)slots) > avail) {
        slots--;
    }
    ENSURE(slots >= 8 && slots <= UINT32_MAX / 2, TLSR_E_INVALID,
           "cache: size %zu bytes gives an unusable geometry", size);
    *nshards = (uint32_t)n;
    *nslots = (uint32_t)slots;
    *stride = avail;
    return TLSR_OK;
}

static tlsr_status arena_init(struct tlsr_cache *c, size_t size)
{
    uint32_t nshards = 0;
    uint32_t nslots = 0;
    uint64_t stride = 0;
    TRY(plan(size, &nshards, &nslots, &stride));
    struct arena *a = c->arena;
    a->magic = ARENA_MAGIC;
    a->version = ARENA_VERSION;
    a->nshards = nshards;
    a->size_bytes = size;
    a->shards_off = ALIGN64(sizeof(struct arena));
    a->shard_stride = stride;
    if (RAND_bytes(a->hash_key, sizeof(a->hash_key)) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cache: no randomness for the hash key");
    }
    for (uint32_t i = 0; i < nshards; i++) {
        struct shard *sh = shard_at(c, i);
        TRY(tlsr__shm_mutex_init(&sh->lock, "cache"));
        shard_init(sh, nslots);
    }
    return TLSR_OK;
}

/* The per-process part of a handle. */
static tlsr_status handle_init(struct tlsr_cache *c)
{
    c->fd = -1;
    c->clock = tlsr_clock_wall;
    c->creator = getpid();
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    ENSURE(c->sha256 != NULL, TLSR_E_CRYPTO, "cache: SHA-256 unavailable");
    return TLSR_OK;
}

/* Checks an arena made elsewhere before it is used: its version, and geometry that stays
 * inside the map_size bytes mapped (every later access trusts it). */
static tlsr_status arena_check(const struct tlsr_cache *c)
{
    const struct arena *a = c->arena;
    ENSURE(a->magic == ARENA_MAGIC, TLSR_E_FORMAT, "cache: the memory file holds no cache");
    ENSURE(a->version == ARENA_VERSION, TLSR_E_VERSION,
           "cache: layout version %u, this build reads version %u", a->version, ARENA_VERSION);
    ENSURE(a->nshards >= 1 && a->nshards <= MAX_SHARDS && a->shard_stride % 64 == 0 &&
               a->shard_stride <= a->size_bytes && a->size_bytes <= c->map_size,
           TLSR_E_FORMAT, "cache: the memory file's geometry does not fit its size");
    uint64_t end = (uint64_t)a->shards_off + (uint64_t)a->nshards * a->shard_stride;
    ENSURE(a->shards_off == ALIGN64(sizeof(*a)) && end <= a->size_bytes, TLSR_E_FORMAT,
           "cache: the memory file's geometry does not fit its size");
    for (uint32_t i = 0; i < a->nshards; i++) {
        const struct shard *sh = shard_at(c, i);
        ENSURE(sh->nslots >= 8 && sh->nbuckets == (sh->nslots + 1u) / 2u &&
                   sh->buckets_off == ALIGN64(sizeof(struct shard)) &&
                   sh->slots_off == sh->buckets_off + ALIGN64((uint64_t)sh->nbuckets * 4u) &&
                   shard_bytes(sh->nslots) <= a->shard_stride,
               TLSR_E_FORMAT, "cache: shard %u's geometry does not fit", i);
    }
    return TLSR_OK;
}

tlsr_status tlsr_cache_adopt(int fd, struct tlsr_cache **out)
{
    ENSURE(out != NULL, TLSR_E_INVALID, "cache: out is NULL");
    *out = NULL;
    struct tlsr_cache *c = tlsr__calloc(1, sizeof(*c));
    ENSURE(c != NULL, TLSR_E_NOMEM, "cache: out of memory");
    tlsr_status rc = handle_init(c);
    void *mem = NULL;
    if (rc == TLSR_OK) {
        rc = tlsr__secmem_adopt(fd, &mem, &c->map_size);
    }
    if (rc == TLSR_OK) {
        c->arena = mem;
        c->creator = 0; /* not wiped on a failed adoption: it is still the other process's */
        rc = c->map_size >= sizeof(struct arena) ? arena_check(c)
                                                 : tlsr__err_set(TLSR_E_FORMAT, "cache: too small");
    }
    if (rc == TLSR_OK) {
        c->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        rc = c->fd >= 0 ? TLSR_OK : tlsr__err_sys(TLSR_E_SYSTEM, errno, "cache: dup");
    }
    if (rc != TLSR_OK) {
        tlsr_cache_free(c);
        return rc;
    }
    c->creator = getpid();
    *out = c;
    return TLSR_OK;
}

int tlsr_cache_fd(const struct tlsr_cache *c)
{
    return c != NULL ? c->fd : -1;
}

void tlsr_cache_disown(struct tlsr_cache *c)
{
    if (c != NULL) {
        c->creator = 0;
    }
}

size_t tlsr_cache_size(const struct tlsr_cache *c)
{
    return c != NULL ? (size_t)c->arena->size_bytes : 0;
}

tlsr_status tlsr_cache_new(size_t size_bytes, struct tlsr_cache **out)
{
    ENSURE(out != NULL, TLSR_E_INVALID, "cache: out is NULL");
    *out = NULL;
    ENSURE(size_bytes >= TLSR_CACHE_MIN_BYTES && size_bytes <= TLSR_CACHE_MAX_BYTES, TLSR_E_INVALID,
           "cache: size %zu bytes is outside %zu to %zu", size_bytes, TLSR_CACHE_MIN_BYTES,
           TLSR_CACHE_MAX_BYTES);
    tlsr_status rc;
    struct tlsr_cache *c = tlsr__calloc(1, sizeof(*c));
    if (c == NULL) {
        return tlsr__err_set(TLSR_E_NOMEM, "cache: out of memory");
    }
    rc = handle_init(c);
    if (rc != TLSR_OK) {
        goto out;
    }
    void *mem;
    rc = tlsr__secmem_map_file(size_bytes, false, &mem, &c->map_size, &c->fd);
    if (rc != TLSR_OK) {
        goto out;
    }
    c->arena = mem;
    rc = arena_init(c, size_bytes);
out:
    if (rc != TLSR_OK) {
        tlsr_cache_free(c);
        return rc;
    }
    *out = c;
    return TLSR_OK;
}

void tlsr_cache_free(struct tlsr_cache *c)
{
    if (c == NULL) {
        return;
    }
    if (c->arena != NULL) {
        tlsr__secmem_release(c->arena, c->map_size, c->creator);
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    EVP_MD_free(c->sha256);
    tlsr__free(c);
}

void tlsr_cache_set_clock(struct tlsr_cache *c, tlsr_clock_fn clock, void *arg)
{
    c->clock = clock != NULL ? clock : tlsr_clock_wall;
    c->clock_arg = arg;
}

unsigned tlsr__cache_nshards(const struct tlsr_cache *c)
{
    return c->arena->nshards;
}

void tlsr_cache_count_corrupt(struct tlsr_cache *c)
{
    __atomic_add_fetch(&c->arena->corrupt, 1, __ATOMIC_RELAXED);
}

void tlsr_cache_count_chain(struct tlsr_cache *c)
{
    __atomic_add_fetch(&c->arena->chain, 1, __ATOMIC_RELAXED);
}

uint64_t tlsr_cache_records_since(struct tlsr_cache *c)
{
    uint32_t zero = 0;
    uint32_t now = (uint32_t)c->clock(c->clock_arg);
    now = now != 0 ? now : 1;
    (void)__atomic_compare_exchange_n(&c->arena->records_since, &zero, now, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST);
    return __atomic_load_n(&c->arena->records_since, __ATOMIC_SEQ_CST);
}

uint64_t tlsr_cache_now(const struct tlsr_cache *c)
{
    return c->clock(c->clock_arg);
}

tlsr_status tlsr_cache_get_stats(struct tlsr_cache *c, struct tlsr_cache_stats *out)
{
    ENSURE(c != NULL && out != NULL, TLSR_E_INVALID, "cache: stats: NULL argument");
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < c->arena->nshards; i++) {
        struct shard *sh = shard_at(c, i);
        TRY(tlsr__cache_shard_lock(sh));
        out->entries += sh->entries;
        out->slots_used += sh->nslots - sh->free_count;
        out->slots_total += sh->nslots;
        out->hits += sh->hits;
        out->misses += sh->misses;
        out->inserts += sh->inserts;
        out->replaced += sh->replaced;
        out->removals += sh->removals;
        out->taken += sh->taken;
        out->evictions += sh->evictions;
        out->expirations += sh->expirations;
        out->too_large += sh->too_large;
        out->shard_resets += sh->resets;
        out->register_distrusted += sh->distrusted;
        tlsr__cache_shard_unlock(sh);
    }
    out->bytes_used = out->slots_used * SLOT_SIZE;
    out->bytes_total = c->arena->size_bytes;
    out->corrupt = __atomic_load_n(&c->arena->corrupt, __ATOMIC_RELAXED);
    out->rejected_chain = __atomic_load_n(&c->arena->chain, __ATOMIC_RELAXED);
    return TLSR_OK;
}

/*
 * The shared-memory session cache.
 *
 * One cache serves every worker process of a server: create it in the parent before fork(), and
 * the children inherit the mapping. It holds TLS 1.2 sessions (looked up by session ID) and
 * TLS 1.3 stateful tickets as opaque byte strings, each bound to a session ID context so that
 * sessions never cross virtual hosts or certificate policies. The arena is sized once, never
 * grows, lives in locked memory excluded from core dumps, and is wiped when freed.
 *
 * Process and thread safety: every operation takes the lock of one shard (a process-shared,
 * robust mutex). A process killed while holding it costs that shard its entries, nothing else.
 * A tlsr_cache handle may be used by several threads of one process at once.
 */
#ifndef TLSRESUME_CACHE_H
#define TLSRESUME_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/clock.h>
#include <tlsresume/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Smallest and largest cache, in bytes. */
#define TLSR_CACHE_MIN_BYTES ((size_t)64 * 1024)
#define TLSR_CACHE_MAX_BYTES ((size_t)64 * 1024 * 1024 * 1024)
/* Largest value one entry may hold, in bytes. */
#define TLSR_CACHE_MAX_VALUE 8192
/* Largest session ID context and session ID, as in TLS. */
#define TLSR_CACHE_MAX_CTX 32
#define TLSR_CACHE_MAX_ID 32
/* Insert flag: the entry is removed by the first lookup that finds it (TLS 1.3 tickets). */
#define TLSR_CACHE_SINGLE_USE 0x1u

struct tlsr_cache;

/* The key of an entry: a session ID within a session ID context. Both are borrowed. */
struct tlsr_cache_key {
    const uint8_t *ctx;
    size_t ctx_len; /* 0 to TLSR_CACHE_MAX_CTX */
    const uint8_t *id;
    size_t id_len; /* 1 to TLSR_CACHE_MAX_ID */
};

/* A snapshot of the cache's counters, summed over shards. */
struct tlsr_cache_stats {
    uint64_t entries;     /* live entries now */
    uint64_t slots_used;  /* 128-byte slots in use now */
    uint64_t slots_total; /* slots in the arena */
    uint64_t bytes_used;  /* slots_used * slot size */
    uint64_t bytes_total; /* size of the arena */
    uint64_t hits;
    uint64_t misses;
    uint64_t inserts;
    uint64_t replaced;       /* inserts that replaced an entry with the same key */
    uint64_t removals;       /* explicit removes that found an entry */
    uint64_t taken;          /* single-use entries removed by their first lookup */
    uint64_t evictions;      /* live entries dropped to make room */
    uint64_t expirations;    /* entries dropped because their lifetime ended */
    uint64_t too_large;      /* inserts refused because the value could never fit */
    uint64_t shard_resets;   /* shards emptied after a holder died or corruption was found */
    uint64_t corrupt;        /* entries whose bytes did not decode (counted by the caller) */
    uint64_t rejected_chain; /* sessions past the resumption chain cap (counted by the caller) */
    /* strike register: first sightings refused because a reset shard may have lost them */
    uint64_t register_distrusted;
};

/*
 * Creates a cache of size_bytes (TLSR_CACHE_MIN_BYTES to TLSR_CACHE_MAX_BYTES) in shared,
 * locked, non-dumpable memory. Call before fork(). On success *out owns the cache; free it with
 * tlsr_cache_free() in every process that holds it. Errors: TLSR_E_INVALID (size out of range),
 * TLSR_E_NOMEM (no memory, or the memory could not be locked: see RLIMIT_MEMLOCK),
 * TLSR_E_CRYPTO (no randomness for the hash key).
 */
TLSR_MUST_CHECK tlsr_status tlsr_cache_new(size_t size_bytes, struct tlsr_cache **out);

/* Unmaps this process's view; the last process to unmap wipes nothing more (the kernel drops
 * the pages). The creating process wipes the whole arena. Accepts NULL. */
void tlsr_cache_free(struct tlsr_cache *cache);

/*
 * Handing a cache to a new program (a binary upgrade): the cache lives in a memory file whose
 * descriptor tlsr_cache_fd() returns (close-on-exec; clear FD_CLOEXEC on it, or a dup, in the
 * child that execs). The new program maps it with tlsr_cache_adopt() and finds every entry;
 * both programs may use it at once. The old one then calls tlsr_cache_disown() before
 * tlsr_cache_free(), so that it leaves the arena unwiped for the adopter, who wipes it when it
 * frees it in turn.
 *
 * tlsr_cache_adopt checks the layout header first. Errors: TLSR_E_VERSION (a layout this build
 * does not read: start a fresh cache), TLSR_E_FORMAT (no cache, or a geometry that does not fit
 * the file), TLSR_E_INVALID (fd is not a memory file), TLSR_E_NOMEM (cannot be mapped or
 * locked). fd stays the caller's; the cache keeps a duplicate.
 */
TLSR_MUST_CHECK tlsr_status tlsr_cache_adopt(int fd, struct tlsr_cache **out);
/* The memory file's descriptor, owned by the cache; -1 for NULL. */
int tlsr_cache_fd(const struct tlsr_cache *cache);
/* This process no longer wipes the arena when freeing it (another one adopted it). */
void tlsr_cache_disown(struct tlsr_cache *cache);
/* Strike registers: the second (on the cache's clock) at which this register began keeping
 * records, set by the first call and kept in the cache's memory, so across reloads and
 * adoption. A register younger than its window may lack a flight another server accepted. */
uint64_t tlsr_cache_records_since(struct tlsr_cache *cache);
/* The size the cache was created with (tlsr_cache_new's size_bytes); 0 for NULL. */
size_t tlsr_cache_size(const struct tlsr_cache *cache);

/* Sets the clock of this handle (default tlsr_clock_wall). Not thread-safe against use. */
void tlsr_cache_set_clock(struct tlsr_cache *cache, tlsr_clock_fn clock, void *arg);

/*
 * Stores value (value_len bytes, 1 to TLSR_CACHE_MAX_VALUE) under key, replacing any entry with
 * the same key, for lifetime_s seconds (1 to 7 days). Evicts the least recently used entries of
 * the shard when it is full. flags: 0 or TLSR_CACHE_SINGLE_USE. The value is copied.
 * Errors: TLSR_E_INVALID (bad key, length or lifetime), TLSR_E_TOOBIG (larger than a shard can
 * ever hold), TLSR_E_SYSTEM (the shard lock failed).
 */
TLSR_MUST_CHECK tlsr_status tlsr_cache_insert(struct tlsr_cache *cache,
                                              const struct tlsr_cache_key *key,
                                              const uint8_t *value, size_t value_len,
                                              uint32_t lifetime_s, unsigned flags);

/*
 * Copies the value stored under key into out (out_cap bytes) and sets *out_len. An entry
 * inserted with TLSR_CACHE_SINGLE_USE is removed in the same locked step, so two processes can
 * never both get it. Errors: TLSR_E_NOTFOUND (miss or expired; no message set, cheap),
 * TLSR_E_TOOBIG (out_cap too small; the entry stays), TLSR_E_INVALID, TLSR_E_SYSTEM.
 * The caller owns out and should wipe it: values are session secrets.
 */
TLSR_MUST_CHECK tlsr_status tlsr_cache_lookup(struct tlsr_cache *cache,
                                              const struct tlsr_cache_key *key, uint8_t *out,
                                              size_t out_cap, size_t *out_len);

/*
 * A strike register on the cache: records key for lifetime_s seconds unless a live record of
 * it exists. TLSR_OK: first seen (recorded now); TLSR_E_EXISTS: seen within its lifetime (no
 * message). It never evicts a live entry to make room: when a shard is full of them it fails
 * with TLSR_E_TOOBIG, so that a caller can fail closed. Use a cache of its own for this.
 * A shard that a dead process left locked is emptied; until the records it held would have
 * expired, a first sighting there is recorded but answered TLSR_E_SYSTEM (it may be a replay).
 * Errors: also TLSR_E_INVALID, TLSR_E_SYSTEM.
 */
TLSR_MUST_CHECK tlsr_status tlsr_cache_record(struct tlsr_cache *cache,
                                              const struct tlsr_cache_key *key,
                                              uint32_t lifetime_s);
/* TLSR_OK when a live entry is stored under key, TLSR_E_NOTFOUND when not (no message); takes
 * nothing and counts nothing. Errors: TLSR_E_INVALID, TLSR_E_SYSTEM. */
TLSR_MUST_CHECK tlsr_status tlsr_cache_contains(struct tlsr_cache *cache,
                                                const struct tlsr_cache_key *key);
/* Removes the entry under key. Errors: TLSR_E_NOTFOUND, TLSR_E_INVALID, TLSR_E_SYSTEM. */
TLSR_MUST_CHECK tlsr_status tlsr_cache_remove(struct tlsr_cache *cache,
                                              const struct tlsr_cache_key *key);

/* Fills *out with the counters summed over all shards (locking each in turn). */
TLSR_MUST_CHECK tlsr_status tlsr_cache_get_stats(struct tlsr_cache *cache,
                                                 struct tlsr_cache_stats *out);

/* Counts one entry whose bytes did not decode (the cache stores opaque bytes; its user decodes
 * them). Lock-free. */
void tlsr_cache_count_corrupt(struct tlsr_cache *cache);
/* Counts a session refused by the resumption chain cap (tlsr_ssl_opts.max_chain_s). */
void tlsr_cache_count_chain(struct tlsr_cache *cache);
/* The time by this handle's clock (seconds since the epoch). */
uint64_t tlsr_cache_now(const struct tlsr_cache *cache);

#ifdef __cplusplus
}
#endif

#endif

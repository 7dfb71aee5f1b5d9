/*
 * Test and fuzz hooks of the cache module (listed in docs/DESIGN.md). Not for production code.
 */
#ifndef TLSR_CACHE_TEST_H
#define TLSR_CACHE_TEST_H

#include <tlsresume/cache.h>

/* Walks every shard and checks every invariant of the layout (free list, chains, counts, no
 * slot owned twice). TLSR_OK, or TLSR_E_FORMAT with the first violation in tlsr_last_error(). */
TLSR_MUST_CHECK tlsr_status tlsr__cache_check(struct tlsr_cache *cache);

/* Takes the lock of the shard that holds key and never releases it (for the test that kills
 * a process holding a lock). */
TLSR_MUST_CHECK tlsr_status tlsr__cache_hold_lock(struct tlsr_cache *cache,
                                                  const struct tlsr_cache_key *key);

/* Number of shards, for tests that want keys in one shard. */
unsigned tlsr__cache_nshards(const struct tlsr_cache *cache);
/* The shard a key falls in. */
TLSR_MUST_CHECK tlsr_status tlsr__cache_shard_of(struct tlsr_cache *cache,
                                                 const struct tlsr_cache_key *key, unsigned *out);
/* Flips byte `at` of the first slot of every entry (a corrupt cache, for the test that such an
 * entry is a counted miss); returns how many entries it touched. */
unsigned tlsr__cache_corrupt_heads(struct tlsr_cache *cache, size_t at);

#endif

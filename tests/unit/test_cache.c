/* Unit tests of the shared-memory session cache (src/lib/cache). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tlsresume/cache.h>

#include "../../src/lib/cache/cache_int.h"
#include "../../src/lib/cache/cache_test.h"
#include "../../src/lib/mem/tlsr_mem.h"
#include "../lib/helpers.h"

static const uint8_t CTX_A[] = "context-a";
static const uint8_t CTX_B[] = "context-b";

static struct tlsr_cache_key key_of(const uint8_t *ctx, uint8_t *id, uint32_t n)
{
    memset(id, 0, 32);
    memcpy(id, &n, sizeof(n));
    struct tlsr_cache_key k = {ctx, sizeof(CTX_A) - 1, id, 32};
    return k;
}

static void fill(uint8_t *v, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        v[i] = (uint8_t)(seed * 31u + i * 7u);
    }
}

static struct tlsr_cache *new_cache(size_t size)
{
    struct tlsr_cache *c = NULL;
    assert_int_equal(tlsr_cache_new(size, &c), TLSR_OK);
    return c;
}

static void test_roundtrip_small_and_multislot(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(256 * 1024);
    uint8_t id[32];
    uint8_t v[700];
    uint8_t out[1024];
    size_t len = 0;
    for (uint32_t n = 0; n < 3; n++) {
        size_t vlen = n == 0 ? 88 : (n == 1 ? 96 : 700);
        fill(v, vlen, n);
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        assert_int_equal(tlsr_cache_insert(c, &k, v, vlen, 60, 0), TLSR_OK);
        assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
        assert_int_equal(len, vlen);
        assert_memory_equal(out, v, vlen);
    }
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.slots_used, 1 + 1 + 8);
    assert_int_equal(st.hits, 3);
    assert_int_equal(tlsr__cache_check(c), TLSR_OK);
    tlsr_cache_free(c);
}

static void test_miss_remove_replace(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    uint8_t id[32];
    uint8_t v[50] = {1};
    uint8_t out[64];
    size_t len = 0;
    struct tlsr_cache_key k = key_of(CTX_A, id, 7);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_cache_remove(c, &k), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 60, 0), TLSR_OK);
    v[0] = 2;
    assert_int_equal(tlsr_cache_insert(c, &k, v, 10, 60, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
    assert_int_equal(len, 10);
    assert_int_equal(out[0], 2);
    assert_int_equal(tlsr_cache_remove(c, &k), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.replaced, 1);
    assert_int_equal(st.removals, 1);
    assert_int_equal(st.misses, 2);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.slots_used, 0);
    tlsr_cache_free(c);
}

static void test_expiry_follows_clock(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    struct th_clock clk = {1000000};
    tlsr_cache_set_clock(c, th_clock_fn, &clk);
    uint8_t id[32];
    uint8_t v[20] = {0};
    uint8_t out[64];
    size_t len = 0;
    struct tlsr_cache_key k = key_of(CTX_A, id, 1);
    assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 10, 0), TLSR_OK);
    clk.now += 9;
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
    clk.now += 1;
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.expirations, 1);
    assert_int_equal(st.entries, 0);
    tlsr_cache_free(c);
}

static void test_context_separates_sessions(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    uint8_t id[32];
    uint8_t v[20] = {9};
    uint8_t out[64];
    size_t len = 0;
    struct tlsr_cache_key a = key_of(CTX_A, id, 1);
    struct tlsr_cache_key b = key_of(CTX_B, id, 1);
    struct tlsr_cache_key none = {NULL, 0, id, 32};
    assert_int_equal(tlsr_cache_insert(c, &a, v, sizeof(v), 60, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &b, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_cache_lookup(c, &none, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_cache_lookup(c, &a, out, sizeof(out), &len), TLSR_OK);
    tlsr_cache_free(c);
}

static void test_single_use_is_taken_once(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    uint8_t id[32];
    uint8_t v[20] = {3};
    uint8_t out[64];
    size_t len = 0;
    struct tlsr_cache_key k = key_of(CTX_A, id, 5);
    assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 60, TLSR_CACHE_SINGLE_USE), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.taken, 1);
    assert_int_equal(st.entries, 0);
    tlsr_cache_free(c);
}

static void test_full_cache_evicts_unreferenced_first(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    uint32_t slots = (uint32_t)st.slots_total;
    uint8_t id[32];
    uint8_t v[90];
    uint8_t out[128];
    size_t len = 0;
    for (uint32_t n = 0; n < slots; n++) {
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        fill(v, sizeof(v), n);
        assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 600, 0), TLSR_OK);
    }
    for (uint32_t n = 0; n < 10; n++) {
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
    }
    for (uint32_t n = slots; n < slots + slots / 2; n++) {
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        fill(v, sizeof(v), n);
        assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 600, 0), TLSR_OK);
    }
    for (uint32_t n = 0; n < 10; n++) {
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_OK);
        fill(v, sizeof(v), n);
        assert_memory_equal(out, v, sizeof(v));
    }
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.evictions, slots / 2);
    assert_int_equal(st.entries, slots);
    assert_int_equal(tlsr__cache_check(c), TLSR_OK);
    tlsr_cache_free(c);
}

static void test_oversized_and_bad_arguments(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    static uint8_t big[TLSR_CACHE_MAX_VALUE + 1];
    uint8_t id[32];
    uint8_t out[16];
    size_t len = 0;
    struct tlsr_cache_key k = key_of(CTX_A, id, 1);
    assert_int_equal(tlsr_cache_insert(c, &k, big, sizeof(big), 60, 0), TLSR_E_TOOBIG);
    assert_non_null(strstr(tlsr_last_error(), "never fit"));
    assert_int_equal(tlsr_cache_insert(c, &k, big, 100, 60, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &k, out, sizeof(out), &len), TLSR_E_TOOBIG);
    assert_int_equal(tlsr_cache_insert(c, &k, big, 10, 0, 0), TLSR_E_INVALID);
    assert_int_equal(tlsr_cache_insert(c, &k, big, 10, 8 * 86400, 0), TLSR_E_INVALID);
    assert_int_equal(tlsr_cache_insert(c, &k, big, 0, 60, 0), TLSR_E_INVALID);
    struct tlsr_cache_key no_id = {CTX_A, 9, id, 0};
    struct tlsr_cache_key long_id = {CTX_A, 9, id, 33};
    struct tlsr_cache_key long_ctx = {big, 33, id, 32};
    assert_int_equal(tlsr_cache_insert(c, &no_id, big, 10, 60, 0), TLSR_E_INVALID);
    assert_int_equal(tlsr_cache_insert(c, &long_id, big, 10, 60, 0), TLSR_E_INVALID);
    assert_int_equal(tlsr_cache_lookup(c, &long_ctx, out, sizeof(out), &len), TLSR_E_INVALID);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.too_large, 1);
    struct tlsr_cache *none = NULL;
    assert_int_equal(tlsr_cache_new(TLSR_CACHE_MIN_BYTES - 1, &none), TLSR_E_INVALID);
    assert_null(none);
    tlsr_cache_free(c);
}

static void test_arena_locked_and_not_dumped(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(1024 * 1024);
    assert_true(th_is_locked_nodump(c->arena));
    tlsr_cache_free(c);
}

static void test_removed_entry_is_wiped(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    uint8_t id[32];
    uint8_t v[90];
    memset(v, 0xA5, sizeof(v));
    struct tlsr_cache_key k = key_of(CTX_A, id, 1);
    assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 60, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_remove(c, &k), TLSR_OK);
    struct shard *sh = shard_at(c, 0);
    for (uint32_t i = 1; i <= sh->nslots; i++) {
        struct slot *s = shard_slot(sh, i);
        assert_null(memchr(s->data, 0xA5, sizeof(s->data)));
    }
    tlsr_cache_free(c);
}

/* Each child works on its own keys and on a shared set, checking every value it reads. */
static uint32_t fnv32(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static void put32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v = 0;
    memcpy(&v, p, 4);
    return v;
}

/* A value that names its writer, its sequence number and its key, with a length and bytes that
 * depend on all three and a checksum last: a torn or mixed write (two writers on one key)
 * cannot pass stamp_ok(). */
static size_t stamp(uint8_t *v, uint32_t n, uint32_t writer, uint32_t seq)
{
    size_t len = 16 + (size_t)((seq * 7u + n + writer) % 184u);
    put32(v, writer);
    put32(v + 4, seq);
    put32(v + 8, n);
    for (size_t i = 12; i < len - 4; i++) {
        v[i] = (uint8_t)(writer * 31u + seq * 7u + i);
    }
    put32(v + len - 4, fnv32(v, len - 4));
    return len;
}

static bool stamp_ok(const uint8_t *v, size_t len, uint32_t n)
{
    if (len < 16 || get32(v + 8) != n) {
        return false;
    }
    uint32_t writer = get32(v);
    uint32_t seq = get32(v + 4);
    return len == 16 + (size_t)((seq * 7u + n + writer) % 184u) &&
           get32(v + len - 4) == fnv32(v, len - 4);
}

static int hammer(struct tlsr_cache *c, uint32_t child, uint32_t ops)
{
    uint8_t id[32];
    uint8_t v[200];
    uint8_t out[256];
    size_t len = 0;
    uint32_t rng = child * 2654435761u + 1;
    for (uint32_t i = 0; i < ops; i++) {
        rng = rng * 1103515245u + 12345u;
        uint32_t n = (rng >> 8) % 512;
        n = (rng & 1) ? n : (child << 16) | n;
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        switch ((rng >> 4) % 4) {
        case 0:
        case 1: {
            size_t vlen = stamp(v, n, child, i);
            if (tlsr_cache_insert(c, &k, v, vlen, 600, 0) != TLSR_OK) {
                return 1;
            }
            break;
        }
        case 2: {
            tlsr_status rc = tlsr_cache_lookup(c, &k, out, sizeof(out), &len);
            if (rc == TLSR_OK && !stamp_ok(out, len, n)) {
                return 2;
            }
            if (rc != TLSR_OK && rc != TLSR_E_NOTFOUND) {
                return 3;
            }
            break;
        }
        default: {
            tlsr_status rc = tlsr_cache_remove(c, &k);
            if (rc != TLSR_OK && rc != TLSR_E_NOTFOUND) {
                return 4;
            }
        }
        }
    }
    return 0;
}

static void test_processes_hammer_one_cache(void **state)
{
    (void)state;
    /* The checker catches what the old key-only values could not: two writers' bytes mixed. */
    uint8_t a[200];
    uint8_t b[200];
    size_t la = stamp(a, 7, 1, 10);
    size_t lb = stamp(b, 7, 2, 10);
    assert_true(stamp_ok(a, la, 7) && stamp_ok(b, lb, 7));
    memcpy(a + la / 2, b + la / 2, (la < lb ? la : lb) - la / 2);
    assert_false(stamp_ok(a, la, 7));
    /* Small enough to evict constantly, so every path runs concurrently. */
    struct tlsr_cache *c = new_cache(256 * 1024);
    enum { CHILDREN = 4, OPS = 20000 };
    pid_t pids[CHILDREN];
    for (uint32_t i = 0; i < CHILDREN; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            _exit(hammer(c, i + 1, OPS));
        }
    }
    for (int i = 0; i < CHILDREN; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(tlsr__cache_check(c), TLSR_OK);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_true(st.inserts > CHILDREN * OPS / 4);
    assert_true(st.hits > 0);
    assert_true(st.evictions > 0);
    assert_int_equal(st.shard_resets, 0);
    tlsr_cache_free(c);
}

/* The first key from n on whose shard is (is_in) or is not (!is_in) shard. */
static struct tlsr_cache_key in_shard(struct tlsr_cache *c, uint8_t *id, uint32_t n, unsigned shard,
                                      bool is_in)
{
    for (;; n++) {
        struct tlsr_cache_key k = key_of(CTX_A, id, n);
        unsigned sk = 0;
        assert_int_equal(tlsr__cache_shard_of(c, &k, &sk), TLSR_OK);
        if ((sk == shard) == is_in) {
            return k;
        }
    }
}

/* Kills a child while it holds the lock of key's shard. */
static void kill_holding(struct tlsr_cache *c, const struct tlsr_cache_key *key)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char ok = tlsr__cache_hold_lock(c, key) == TLSR_OK ? 'L' : 'E';
        ssize_t w = write(fds[1], &ok, 1);
        (void)w;
        raise(SIGKILL);
        _exit(1);
    }
    char got = 0;
    assert_int_equal(read(fds[0], &got, 1), 1);
    assert_int_equal(got, 'L');
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    close(fds[0]);
    close(fds[1]);
}

static void test_killed_lock_holder_costs_one_shard(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(1024 * 1024);
    assert_true(tlsr__cache_nshards(c) > 1);
    uint8_t id[32];
    uint8_t id2[32];
    uint8_t v[40] = {7};
    uint8_t out[64];
    size_t len = 0;
    /* Find two keys in different shards. */
    struct tlsr_cache_key victim = key_of(CTX_A, id, 1);
    unsigned victim_shard = 0;
    assert_int_equal(tlsr__cache_shard_of(c, &victim, &victim_shard), TLSR_OK);
    struct tlsr_cache_key other;
    unsigned other_shard = victim_shard;
    for (uint32_t n = 2; other_shard == victim_shard; n++) {
        other = key_of(CTX_A, id2, n);
        assert_int_equal(tlsr__cache_shard_of(c, &other, &other_shard), TLSR_OK);
    }
    assert_int_equal(tlsr_cache_insert(c, &victim, v, sizeof(v), 600, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_insert(c, &other, v, sizeof(v), 600, 0), TLSR_OK);
    kill_holding(c, &victim);
    /* The dead holder's shard is reset; the other shard keeps its entry. */
    assert_int_equal(tlsr_cache_lookup(c, &victim, out, sizeof(out), &len), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_cache_lookup(c, &other, out, sizeof(out), &len), TLSR_OK);
    assert_int_equal(tlsr_cache_insert(c, &victim, v, sizeof(v), 600, 0), TLSR_OK);
    assert_int_equal(tlsr_cache_lookup(c, &victim, out, sizeof(out), &len), TLSR_OK);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.shard_resets, 1);
    assert_int_equal(tlsr__cache_check(c), TLSR_OK);
    tlsr_cache_free(c);
}

/* A strike register's shard left locked by a dead process loses its records, like a session
 * shard; but it must not take a replay of a lost record for a first sighting, so it refuses
 * first sightings there until the lost records would have expired. */
static void test_killed_lock_holder_register_refuses(void **state)
{
    (void)state;
    struct th_clock clk = {1000000};
    struct tlsr_cache *c = new_cache(1024 * 1024);
    tlsr_cache_set_clock(c, th_clock_fn, &clk);
    uint8_t id[32];
    uint8_t id2[32];
    uint8_t id3[32];
    struct tlsr_cache_key flight = key_of(CTX_A, id, 1);
    unsigned shard = 0;
    assert_int_equal(tlsr__cache_shard_of(c, &flight, &shard), TLSR_OK);
    struct tlsr_cache_key later = in_shard(c, id2, 2, shard, true);
    struct tlsr_cache_key other = in_shard(c, id3, 2, shard, false);
    assert_int_equal(tlsr_cache_record(c, &flight, 10), TLSR_OK);
    assert_int_equal(tlsr_cache_record(c, &flight, 10), TLSR_E_EXISTS);
    clk.now += 3;
    kill_holding(c, &flight);
    /* The record is gone (the control: this is what let a replay through before) ... */
    assert_int_equal(tlsr_cache_contains(c, &flight), TLSR_E_NOTFOUND);
    /* ... and its replay is refused, not taken for a first sighting; so is any first sighting
     * in that shard, while a lost record could be live. Other shards answer as before. */
    assert_int_equal(tlsr_cache_record(c, &flight, 10), TLSR_E_SYSTEM);
    assert_int_equal(tlsr_cache_record(c, &flight, 10), TLSR_E_EXISTS);
    assert_int_equal(tlsr_cache_record(c, &other, 10), TLSR_OK);
    clk.now += 6; /* 9 s after the lost record was made: it could still be live */
    assert_int_equal(tlsr_cache_record(c, &later, 10), TLSR_E_SYSTEM);
    clk.now += 1; /* 10 s: every lost record has expired */
    uint8_t id4[32];
    struct tlsr_cache_key fresh = in_shard(c, id4, 100000, shard, true);
    assert_int_equal(tlsr_cache_record(c, &fresh, 10), TLSR_OK);
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    assert_int_equal(st.shard_resets, 1);
    assert_int_equal(st.register_distrusted, 2);
    assert_int_equal(tlsr__cache_check(c), TLSR_OK);
    tlsr_cache_free(c);
}

static void test_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    unsigned long failures = 0;
    for (unsigned long n = 1; n < 50; n++) {
        tlsr__mem_fail_at(n);
        struct tlsr_cache *c = NULL;
        tlsr_status rc = tlsr_cache_new(TLSR_CACHE_MIN_BYTES, &c);
        unsigned long made = tlsr__mem_fail_at(0);
        if (rc == TLSR_OK) {
            tlsr_cache_free(c);
            assert_true(made < n);
            break;
        }
        assert_int_equal(rc, TLSR_E_NOMEM);
        assert_null(c);
        assert_true(strlen(tlsr_last_error()) > 0);
        failures++;
    }
    assert_true(failures >= 2);
}

/* The strike register: first sighting recorded, a second refused until the record expires;
 * when full of live records it refuses (fail closed) instead of forgetting one. */
static void test_record_is_a_strike_register(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(TLSR_CACHE_MIN_BYTES);
    struct th_clock clk = {1000000};
    tlsr_cache_set_clock(c, th_clock_fn, &clk);
    uint8_t id[32];
    struct tlsr_cache_key k = key_of(CTX_A, id, 1);
    assert_int_equal(tlsr_cache_record(c, &k, 10), TLSR_OK);
    assert_int_equal(tlsr_cache_record(c, &k, 10), TLSR_E_EXISTS);
    clk.now += 9;
    assert_int_equal(tlsr_cache_record(c, &k, 10), TLSR_E_EXISTS);
    clk.now += 1;
    assert_int_equal(tlsr_cache_record(c, &k, 10), TLSR_OK);
    assert_int_equal(tlsr_cache_record(c, &k, 0), TLSR_E_INVALID);
    /* Fill it: eventually a record cannot be made without forgetting a live one. */
    tlsr_status rc = TLSR_OK;
    uint32_t n = 2;
    for (; n < 100000 && rc == TLSR_OK; n++) {
        struct tlsr_cache_key kn = key_of(CTX_A, id, n);
        rc = tlsr_cache_record(c, &kn, 60);
    }
    assert_int_equal(rc, TLSR_E_TOOBIG);
    /* Every record made is still refused as a replay: none was evicted. */
    for (uint32_t i = 2; i < n - 1; i++) {
        struct tlsr_cache_key ki = key_of(CTX_A, id, i);
        assert_int_equal(tlsr_cache_record(c, &ki, 60), TLSR_E_EXISTS);
    }
    /* Once they expire, room comes back. */
    clk.now += 61;
    struct tlsr_cache_key kn = key_of(CTX_A, id, n + 1);
    assert_int_equal(tlsr_cache_record(c, &kn, 60), TLSR_OK);
    tlsr_cache_free(c);
}

/* A cache handed to another handle through its memory file (as across exec): the adopter
 * finds every entry; after the maker disowns and frees it the entries are still there (the
 * control: freeing without disowning wipes them); another layout version is refused as such;
 * descriptors that are not memory files are refused. */
static void test_adopt_through_the_memory_file(void **state)
{
    (void)state;
    struct tlsr_cache *c = new_cache(256 * 1024);
    uint8_t id[32];
    uint8_t v[88];
    uint8_t out[128];
    size_t len = 0;
    fill(v, sizeof(v), 7);
    struct tlsr_cache_key k = key_of(CTX_A, id, 7);
    assert_int_equal(tlsr_cache_insert(c, &k, v, sizeof(v), 60, 0), TLSR_OK);
    assert_true(tlsr_cache_fd(c) >= 0);
    struct tlsr_cache *a = NULL;
    assert_int_equal(tlsr_cache_adopt(tlsr_cache_fd(c), &a), TLSR_OK);
    assert_int_equal(tlsr_cache_size(a), 256 * 1024);
    tlsr_cache_disown(c);
    tlsr_cache_free(c);
    assert_int_equal(tlsr_cache_lookup(a, &k, out, sizeof(out), &len), TLSR_OK);
    assert_memory_equal(out, v, sizeof(v));
    assert_int_equal(tlsr__cache_check(a), TLSR_OK);
    /* Another layout: refused as a version mismatch, the memory left as it was. */
    a->arena->version++;
    struct tlsr_cache *b = NULL;
    assert_int_equal(tlsr_cache_adopt(tlsr_cache_fd(a), &b), TLSR_E_VERSION);
    assert_null(b);
    a->arena->version--;
    assert_int_equal(tlsr_cache_adopt(tlsr_cache_fd(a), &b), TLSR_OK);
    /* The control: the adopter that frees without disowning wipes what the other still maps. */
    tlsr_cache_free(a);
    assert_int_equal(tlsr_cache_adopt(tlsr_cache_fd(b), &a), TLSR_E_FORMAT);
    tlsr_cache_free(b);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(tlsr_cache_adopt(p[0], &a), TLSR_E_INVALID);
    assert_int_equal(tlsr_cache_adopt(-1, &a), TLSR_E_INVALID);
    close(p[0]);
    close(p[1]);
}

/* The strike register's age lives in its memory: set by the first call, kept after. */
static void test_records_since_is_kept(void **state)
{
    (void)state;
    struct th_clock clk = {5000};
    struct tlsr_cache *c = new_cache(256 * 1024);
    tlsr_cache_set_clock(c, th_clock_fn, &clk);
    assert_int_equal(tlsr_cache_records_since(c), 5000);
    clk.now = 9000;
    assert_int_equal(tlsr_cache_records_since(c), 5000);
    struct tlsr_cache *a = NULL;
    assert_int_equal(tlsr_cache_adopt(tlsr_cache_fd(c), &a), TLSR_OK);
    assert_int_equal(tlsr_cache_records_since(a), 5000);
    tlsr_cache_disown(a);
    tlsr_cache_free(a);
    tlsr_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_small_and_multislot),
        cmocka_unit_test(test_miss_remove_replace),
        cmocka_unit_test(test_expiry_follows_clock),
        cmocka_unit_test(test_context_separates_sessions),
        cmocka_unit_test(test_single_use_is_taken_once),
        cmocka_unit_test(test_full_cache_evicts_unreferenced_first),
        cmocka_unit_test(test_oversized_and_bad_arguments),
        cmocka_unit_test(test_arena_locked_and_not_dumped),
        cmocka_unit_test(test_removed_entry_is_wiped),
        cmocka_unit_test(test_record_is_a_strike_register),
        cmocka_unit_test(test_processes_hammer_one_cache),
        cmocka_unit_test(test_killed_lock_holder_costs_one_shard),
        cmocka_unit_test(test_killed_lock_holder_register_refuses),
        cmocka_unit_test(test_every_allocation_failure_is_clean),
        cmocka_unit_test(test_adopt_through_the_memory_file),
        cmocka_unit_test(test_records_since_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

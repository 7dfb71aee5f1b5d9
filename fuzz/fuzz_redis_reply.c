/* Fuzz target: what the fleet makes of Redis replies: the ticket key ring's poll reply (src/lib/
 * fleet/fleet_ring.c), the fleet cache's strike verdict and INFO memory parsers (fleet_
 * cache.c), and the Cluster slot map's (cluster.c). The bytes are RESP, parsed by hiredis's reader
 * as a reply from Redis would be, then handed to each. Any reply, however shaped, must leave the
 * ring consistent. */
#include <ev.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include <tlsresume/fleet.h>

#include "../src/lib/fleet/fleet_int.h"

static struct tlsr_fleet_ring *ring_under_test(void)
{
    static struct tlsr_fleet_ring *fr;
    static struct tlsr_fleet_secret *secret;
    static struct tlsr_keyring *ring;
    if (fr != NULL) {
        return fr;
    }
    static const char key_file[] = "tlsresume-fleet-key 1\n"
                                   "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
    static const char *const endpoints[] = {"redis://127.0.0.1:1"};
    struct tlsr_fleet_opts o;
    struct tlsr_fleet_ring_opts ro;
    tlsr_fleet_opts_init(&o);
    tlsr_fleet_ring_opts_init(&ro);
    o.endpoints = endpoints;
    o.n_endpoints = 1;
    if (tlsr_fleet_secret_parse("fuzz", (const uint8_t *)key_file, strlen(key_file), &secret) !=
            TLSR_OK ||
        tlsr_keyring_new(3600, 43200, &ring) != TLSR_OK) {
        abort();
    }
    o.secret = secret;
    /* The loop never runs: the ring never connects, so commands it would send are refused. */
    if (tlsr_fleet_ring_new(ev_loop_new(0), &o, &ro, ring, &fr) != TLSR_OK) {
        abort();
    }
    return fr;
}

/* hiredis 0.14's reader allocates as many elements as an array header declares (1.0 added a
 * limit): that is hiredis's, not ours, and Redis is trusted that far. Skip such inputs. */
static int declares_huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*' || (i > 0 && data[i - 1] != '\n')) {
            continue;
        }
        unsigned long n = 0;
        for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9' && n < 100000; j++) {
            n = n * 10 + (unsigned long)(data[j] - '0');
        }
        if (n > 4096) {
            return 1;
        }
    }
    return 0;
}

/* Each range a CLUSTER SLOTS reply names must lie within the 16384 slots, its port valid. */
static void count_range(void *arg, unsigned lo, unsigned hi, const char *host, int port)
{
    unsigned *slots = arg;
    if (lo > hi || hi >= 16384 || port < 1 || port > 65535 || strlen(host) >= 64) {
        abort();
    }
    *slots += hi - lo + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (declares_huge_array(data, size)) {
        return 0;
    }
    struct tlsr_fleet_ring *fr = ring_under_test();
    redisReader *rd = redisReaderCreate();
    if (rd == NULL || redisReaderFeed(rd, (const char *)data, size) != REDIS_OK) {
        redisReaderFree(rd);
        return 0;
    }
    void *reply = NULL;
    while (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
        tlsr__fleet_ring_reply(fr, reply);
        long long code = 0;
        long long off = 0;
        (void)tlsr__fleet_strike_parse(reply, &code, &off);
        unsigned long long maxmemory = 0;
        char policy[32];
        (void)tlsr__fleet_may_evict(reply, &maxmemory, policy);
        unsigned slots = 0;
        (void)tlsr__fleet_cluster_slots_parse(reply, count_range, &slots);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
    const struct tlsr_fleet_key_status *keys;
    size_t n = 0;
    tlsr_fleet_ring_keys(fr, &keys, &n);
    if (n > 128) {
        abort();
    }
    return 0;
}

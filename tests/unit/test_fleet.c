/* Unit tests of the fleet module's parsers and sealing (src/lib/fleet) and of the ClientHello
 * pre_shared_key parser it relies on (src/lib/ssl/psk.c). Redis itself is exercised by
 * tests/integration/test_fleet.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <tlsresume/fleet.h>

#include "../../src/lib/fleet/fleet_int.h"
#include "../../src/lib/ssl/psk.h"
#include "../lib/helpers.h"

static const char good_file[] = "tlsresume-fleet-key 1\n"
                                "INyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\n";

static struct tlsr_fleet_secret *parse(const char *text)
{
    struct tlsr_fleet_secret *s = NULL;
    tlsr_status rc = tlsr_fleet_secret_parse("k.key", (const uint8_t *)text, strlen(text), &s);
    if (rc != TLSR_OK) {
        assert_null(s);
    }
    return s;
}

static void test_key_file(void **state)
{
    (void)state;
    struct tlsr_fleet_secret *s = parse(good_file);
    assert_non_null(s);
    assert_true(th_is_locked_nodump(s));
    /* Derived keys differ from each other and from the fleet key. */
    assert_memory_not_equal(s->session_key, s->name_key, 32);
    assert_memory_not_equal(s->session_key, s->wrap_key, 32);
    assert_memory_not_equal(s->fleet_key, s->wrap_key, 32);
    tlsr_fleet_secret_free(s);

    static const char *const bad[] = {
        "",
        "tlsresume-fleet-key 1\n",
        "tlsresume-fleet-key 2\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\n",
        "tlsresume-fleet-key 1\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd5=\n",
        "tlsresume-fleet-key 1\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54==\n",
        "tlsresume-fleet-key 1\nINyWwodqiKD3eGGmk5UjPQbQydYxqh*8KsL5y6OPd54=\n",
        "tlsresume-fleet-key 1\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\nextra\n",
        "tlsresume-fleet-key 1\r\r\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\n",
        "tlsresume-fleet-key 1\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_null(parse(bad[i]));
        assert_non_null(strstr(tlsr_last_error(), "k.key:"));
    }
    /* The same key with CRLF line ends, or without the last newline (editors make both): read,
     * and the same key (its derived keys match). */
    static const char *const also[] = {
        "tlsresume-fleet-key 1\r\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=\r\n",
        "tlsresume-fleet-key 1\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=",
        "tlsresume-fleet-key 1\r\nINyWwodqiKD3eGGmk5UjPQbQydYxqh+8KsL5y6OPd54=",
    };
    struct tlsr_fleet_secret *ref = parse(good_file);
    assert_non_null(ref);
    for (size_t i = 0; i < sizeof(also) / sizeof(also[0]); i++) {
        struct tlsr_fleet_secret *t = parse(also[i]);
        assert_non_null(t);
        assert_memory_equal(t->session_key, ref->session_key, 32);
        tlsr_fleet_secret_free(t);
    }
    tlsr_fleet_secret_free(ref);
}

static void test_key_file_generate_and_load(void **state)
{
    (void)state;
    char path[] = "/tmp/tlsr-fleet-key-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    /* An existing file is never replaced. */
    assert_int_equal(tlsr_fleet_secret_generate(path), TLSR_E_SYSTEM);
    unlink(path);
    assert_int_equal(tlsr_fleet_secret_generate(path), TLSR_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    struct tlsr_fleet_secret *s = NULL;
    assert_int_equal(tlsr_fleet_secret_load(path, &s), TLSR_OK);
    tlsr_fleet_secret_free(s);
    /* Readable by others: refused, with the file named. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(tlsr_fleet_secret_load(path, &s), TLSR_E_SYSTEM);
    assert_non_null(strstr(tlsr_last_error(), path));
    unlink(path);
    assert_int_equal(tlsr_fleet_secret_load(path, &s), TLSR_E_SYSTEM);
}

static void test_seal_open_and_tamper(void **state)
{
    (void)state;
    uint8_t key[32];
    memset(key, 7, sizeof(key));
    const uint8_t aad[] = "associated";
    const uint8_t msg[] = "the session secret";
    uint8_t box[64];
    size_t box_len = 0;
    assert_int_equal(
        tlsr__fleet_seal(key, aad, sizeof(aad), msg, sizeof(msg), box, sizeof(box), &box_len),
        TLSR_OK);
    assert_int_equal(box_len, sizeof(msg) + SEAL_OVERHEAD);
    assert_null(memmem(box, box_len, msg, 8)); /* nothing in the clear */
    uint8_t out[64];
    size_t out_len = 0;
    assert_int_equal(
        tlsr__fleet_open(key, aad, sizeof(aad), box, box_len, out, sizeof(out), &out_len), TLSR_OK);
    assert_int_equal(out_len, sizeof(msg));
    assert_memory_equal(out, msg, sizeof(msg));
    /* Every flipped byte, a wrong AAD, a wrong key, every truncation: refused. */
    for (size_t i = 0; i < box_len; i++) {
        box[i] ^= 0x01;
        assert_int_not_equal(
            tlsr__fleet_open(key, aad, sizeof(aad), box, box_len, out, sizeof(out), &out_len),
            TLSR_OK);
        box[i] ^= 0x01;
    }
    assert_int_equal(
        tlsr__fleet_open(key, aad, sizeof(aad) - 1, box, box_len, out, sizeof(out), &out_len),
        TLSR_E_FORMAT);
    key[0] ^= 1;
    assert_int_equal(
        tlsr__fleet_open(key, aad, sizeof(aad), box, box_len, out, sizeof(out), &out_len),
        TLSR_E_FORMAT);
    key[0] ^= 1;
    for (size_t n = 0; n < box_len; n++) {
        assert_int_not_equal(
            tlsr__fleet_open(key, aad, sizeof(aad), box, n, out, sizeof(out), &out_len), TLSR_OK);
    }
    /* Too small an output buffer is an error, not an overflow. */
    assert_int_equal(tlsr__fleet_open(key, aad, sizeof(aad), box, box_len, out, 4, &out_len),
                     TLSR_E_TOOBIG);
}

static void test_entry_binds_id_and_expiry(void **state)
{
    (void)state;
    struct tlsr_fleet_secret *s = parse(good_file);
    assert_non_null(s);
    const uint8_t ctx[4] = {1, 2, 3, 4};
    uint8_t id[32];
    memset(id, 0x55, sizeof(id));
    uint8_t aad[128];
    size_t aad_len = tlsr__fleet_entry_aad(ctx, sizeof(ctx), id, sizeof(id), 0, aad, sizeof(aad));
    assert_true(aad_len > 0);
    const uint8_t value[88] = {9};
    uint8_t blob[256];
    size_t blob_len = 0;
    assert_int_equal(tlsr__fleet_entry_seal(s, aad, aad_len, 2000, value, sizeof(value), blob,
                                            sizeof(blob), &blob_len),
                     TLSR_OK);
    uint8_t out[ENTRY_MAX_VALUE];
    size_t out_len = 0;
    uint64_t expires = 0;
    assert_int_equal(tlsr__fleet_entry_open(s, aad, aad_len, blob, blob_len, 1999, out, sizeof(out),
                                            &out_len, &expires),
                     TLSR_OK);
    assert_int_equal(out_len, sizeof(value));
    assert_int_equal(expires, 2000);
    assert_int_equal(tlsr__fleet_entry_open(s, aad, aad_len, blob, blob_len, 2000, out, sizeof(out),
                                            &out_len, &expires),
                     TLSR_E_EXPIRED);
    /* Under another ID, another context or as single-use: it does not open. */
    uint8_t other[128];
    id[0] ^= 1;
    size_t other_len =
        tlsr__fleet_entry_aad(ctx, sizeof(ctx), id, sizeof(id), 0, other, sizeof(other));
    assert_int_equal(tlsr__fleet_entry_open(s, other, other_len, blob, blob_len, 1, out,
                                            sizeof(out), &out_len, &expires),
                     TLSR_E_FORMAT);
    id[0] ^= 1;
    other_len = tlsr__fleet_entry_aad(ctx, 3, id, sizeof(id), 0, other, sizeof(other));
    assert_int_equal(tlsr__fleet_entry_open(s, other, other_len, blob, blob_len, 1, out,
                                            sizeof(out), &out_len, &expires),
                     TLSR_E_FORMAT);
    other_len = tlsr__fleet_entry_aad(ctx, sizeof(ctx), id, sizeof(id), TLSR_CACHE_SINGLE_USE,
                                      other, sizeof(other));
    assert_int_equal(tlsr__fleet_entry_open(s, other, other_len, blob, blob_len, 1, out,
                                            sizeof(out), &out_len, &expires),
                     TLSR_E_FORMAT);
    /* Too long an ID or context cannot even be named. */
    uint8_t big[300] = {0};
    assert_int_equal(tlsr__fleet_entry_aad(big, sizeof(big), id, 32, 0, other, sizeof(other)), 0);
    /* A keyed name: the same under the same key, different under another fleet key. */
    uint8_t h1[NAME_HASH_LEN];
    uint8_t h2[NAME_HASH_LEN];
    assert_int_equal(tlsr__fleet_name_hash(s->name_key, aad, aad_len, h1), TLSR_OK);
    assert_int_equal(tlsr__fleet_name_hash(s->session_key, aad, aad_len, h2), TLSR_OK);
    assert_memory_not_equal(h1, h2, sizeof(h1));
    assert_null(memmem(h1, sizeof(h1), id, 4));
    tlsr_fleet_secret_free(s);
}

static void test_endpoints(void **state)
{
    (void)state;
    struct endpoint ep;
    assert_int_equal(tlsr__fleet_endpoint_parse("redis://10.0.0.1", &ep), TLSR_OK);
    assert_string_equal(ep.host, "10.0.0.1");
    assert_int_equal(ep.port, 6379);
    assert_int_equal(ep.db, 0);
    assert_int_equal(tlsr__fleet_endpoint_parse("redis://cache.internal:6380/3", &ep), TLSR_OK);
    assert_string_equal(ep.host, "cache.internal");
    assert_int_equal(ep.port, 6380);
    assert_int_equal(ep.db, 3);
    assert_int_equal(tlsr__fleet_endpoint_parse("redis://[::1]:7000", &ep), TLSR_OK);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 7000);
    assert_int_equal(tlsr__fleet_endpoint_parse("rediss://cache.internal:6380/1", &ep), TLSR_OK);
    assert_true(ep.is_tls);
    assert_int_equal(ep.port, 6380);
    assert_int_equal(
        tlsr__fleet_endpoint_parse("sentinel://10.0.0.1:26379,s2.internal:26380/fleet?db=4", &ep),
        TLSR_OK);
    assert_string_equal(ep.master, "fleet");
    assert_int_equal(ep.n_hosts, 2);
    assert_string_equal(ep.hosts[1].host, "s2.internal");
    assert_int_equal(ep.hosts[1].port, 26380);
    assert_int_equal(ep.db, 4);
    assert_int_equal(tlsr__fleet_endpoint_parse("redis-cluster://10.0.0.1:7000,10.0.0.2:7001", &ep),
                     TLSR_OK);
    assert_true(ep.is_cluster);
    assert_false(ep.is_tls);
    assert_int_equal(ep.n_hosts, 2);
    assert_int_equal(ep.hosts[1].port, 7001);
    assert_int_equal(tlsr__fleet_endpoint_parse("rediss-cluster://c.internal:6380", &ep), TLSR_OK);
    assert_true(ep.is_cluster && ep.is_tls);
    assert_int_equal(tlsr__fleet_endpoint_parse("unix:/run/redis.sock?db=2", &ep), TLSR_OK);
    assert_string_equal(ep.path, "/run/redis.sock");
    assert_int_equal(ep.db, 2);
    static const char *const bad[] = {
        "",
        "10.0.0.1:6379",
        "redis://",
        "redis://:6379",
        "redis://h:0",
        "redis://h:65536",
        "redis://h:12x",
        "redis://h/16",
        "redis://h/-1",
        "redis://user:secret@h",
        "sentinel://",
        "sentinel://h:26379",
        "sentinel://h:26379/",
        "sentinel://h/fleet",
        "sentinel://h:0/fleet",
        "sentinel://u:p@h:26379/fleet",
        "sentinel://a:1,b:2,c:3,d:4,e:5,f:6/fleet",
        "sentinel://h:26379/fleet?db=99",
        "redis-cluster://",
        "redis-cluster://h",
        "redis-cluster://h:7000/1",
        "redis-cluster://h:7000?db=1",
        "redis-cluster://u:p@h:7000",
        "redis://[::1",
        "unix:relative.sock",
        "unix:/x?database=1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tlsr_fleet_endpoint_check(bad[i]), TLSR_E_INVALID);
    }
    /* A password never reaches a message. */
    assert_int_equal(tlsr_fleet_endpoint_check("redis://u:hunter2@h"), TLSR_E_INVALID);
    assert_non_null(strstr(tlsr_last_error(), "password file"));
}

static void test_psk_identity(void **state)
{
    (void)state;
    /* identities: one of 4 bytes + age; binders: one of 32 bytes. */
    uint8_t ext[2 + 2 + 4 + 4 + 2 + 1 + 32] = {0x00, 0x0a, 0x00, 0x04, 'a',  'b',  'c', 'd',
                                               0,    0,    0,    1,    0x00, 0x21, 32};
    const uint8_t *id = NULL;
    size_t id_len = 0;
    assert_int_equal(tlsr__psk_first_identity(ext, sizeof(ext), &id, &id_len), TLSR_OK);
    assert_int_equal(id_len, 4);
    assert_memory_equal(id, "abcd", 4);
    for (size_t n = 0; n < sizeof(ext); n++) {
        assert_int_not_equal(tlsr__psk_first_identity(ext, n, &id, &id_len), TLSR_OK);
    }
    uint8_t longer[sizeof(ext) + 1];
    memcpy(longer, ext, sizeof(ext));
    longer[sizeof(ext)] = 0;
    assert_int_equal(tlsr__psk_first_identity(longer, sizeof(longer), &id, &id_len), TLSR_E_FORMAT);
    ext[14] = 31; /* a binder shorter than 32 bytes */
    assert_int_not_equal(tlsr__psk_first_identity(ext, sizeof(ext), &id, &id_len), TLSR_OK);

    const uint8_t v13[] = {4, 0x03, 0x04, 0x03, 0x03};
    const uint8_t v12[] = {2, 0x03, 0x03};
    const uint8_t odd[] = {3, 0x03, 0x04, 0x03};
    assert_true(tlsr__versions_has_tls13(v13, sizeof(v13)));
    assert_false(tlsr__versions_has_tls13(v12, sizeof(v12)));
    assert_false(tlsr__versions_has_tls13(odd, sizeof(odd)));
    assert_false(tlsr__versions_has_tls13(v13, 2));
}

/* CRC16 (XMODEM) and hash tags, against Redis's own figures (CLUSTER KEYSLOT). */
static void test_cluster_slots(void **state)
{
    (void)state;
    assert_int_equal(tlsr__fleet_key_slot("foo", 3), 12182);
    assert_int_equal(tlsr__fleet_key_slot("bar", 3), 5061);
    assert_int_equal(tlsr__fleet_key_slot("123456789", 9), 0x31c3 % 16384);
    assert_int_equal(tlsr__fleet_key_slot("x{foo}y", 7), 12182);
    assert_int_equal(tlsr__fleet_key_slot("{tlsr:}cur", 10), tlsr__fleet_key_slot("tlsr:", 5));
    assert_int_equal(tlsr__fleet_key_slot("{tlsr:}tk:7", 11), tlsr__fleet_key_slot("tlsr:", 5));
    /* An empty tag, or one not closed, is no tag: the whole key is hashed (an empty tag would
     * give CRC16("") = 0; "{foo" would give foo's slot). */
    assert_int_not_equal(tlsr__fleet_key_slot("{}foo", 5), 0);
    assert_int_not_equal(tlsr__fleet_key_slot("{foo", 4), 12182);
}

struct ranges {
    unsigned n;
    unsigned lo[4];
    unsigned hi[4];
    char host[4][64];
    int port[4];
};

static void take_range(void *arg, unsigned lo, unsigned hi, const char *host, int port)
{
    struct ranges *r = arg;
    if (r->n < 4) {
        r->lo[r->n] = lo;
        r->hi[r->n] = hi;
        snprintf(r->host[r->n], sizeof(r->host[0]), "%s", host);
        r->port[r->n] = port;
    }
    r->n++;
}

/* RESP bytes as Redis would send them, read by hiredis's reader. */
static redisReply *resp(const char *bytes)
{
    redisReader *rd = redisReaderCreate();
    void *reply = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, bytes, strlen(bytes)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    redisReaderFree(rd);
    return reply;
}

/* A CLUSTER SLOTS reply is taken whole or not at all. */
static void test_cluster_map_reply(void **state)
{
    (void)state;
    struct ranges r;
    memset(&r, 0, sizeof(r));
    redisReply *ok = resp("*2\r\n"
                          "*4\r\n:0\r\n:8191\r\n*3\r\n$8\r\n10.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
                          "*3\r\n$8\r\n10.0.0.4\r\n:7003\r\n$2\r\nid\r\n"
                          "*3\r\n:8192\r\n:16383\r\n*2\r\n$0\r\n\r\n:7001\r\n");
    assert_true(tlsr__fleet_cluster_slots_parse(ok, take_range, &r));
    assert_int_equal(r.n, 2);
    assert_int_equal(r.hi[0], 8191);
    assert_string_equal(r.host[0], "10.0.0.1");
    assert_int_equal(r.port[0], 7000);
    assert_string_equal(r.host[1], "");
    assert_int_equal(r.port[1], 7001);
    freeReplyObject(ok);
#define RESP(x)                                                                                    \
    {                                                                                              \
        x, sizeof(x) - 1                                                                           \
    }
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        RESP("-CLUSTERDOWN The cluster is down\r\n"),
        RESP("$2\r\nok\r\n"),
        /* a good range, then one past the last slot: nothing of it is taken */
        RESP("*2\r\n*3\r\n:0\r\n:10\r\n*2\r\n$1\r\nh\r\n:7000\r\n"
             "*3\r\n:11\r\n:16384\r\n*2\r\n$1\r\nh\r\n:7000\r\n"),
        RESP("*1\r\n*3\r\n:10\r\n:9\r\n*2\r\n$1\r\nh\r\n:7000\r\n"),
        RESP("*1\r\n*3\r\n:0\r\n:9\r\n*2\r\n$1\r\nh\r\n:0\r\n"),
        RESP("*1\r\n*3\r\n:0\r\n:9\r\n*2\r\n$1\r\nh\r\n:65536\r\n"),
        RESP("*1\r\n*3\r\n:0\r\n:9\r\n*1\r\n$1\r\nh\r\n"),
        RESP("*1\r\n*2\r\n:0\r\n:9\r\n"),
        RESP("*1\r\n*3\r\n:0\r\n:9\r\n*2\r\n$3\r\nh\0h\r\n:7000\r\n"),
    };
#undef RESP
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0, sizeof(r));
        redisReader *rd = redisReaderCreate();
        void *reply = NULL;
        assert_int_equal(redisReaderFeed(rd, bad[i].bytes, bad[i].len), REDIS_OK);
        assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
        redisReaderFree(rd);
        assert_non_null(reply);
        assert_false(tlsr__fleet_cluster_slots_parse(reply, take_range, &r));
        assert_int_equal(r.n, 0);
        freeReplyObject(reply);
    }
    assert_false(tlsr__fleet_cluster_slots_parse(NULL, take_range, &r));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_key_file_generate_and_load),
        cmocka_unit_test(test_seal_open_and_tamper),
        cmocka_unit_test(test_entry_binds_id_and_expiry),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_cluster_slots),
        cmocka_unit_test(test_cluster_map_reply),
        cmocka_unit_test(test_psk_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

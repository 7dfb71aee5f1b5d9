/* Unit tests of the ticket key ring (src/lib/tickets), driven by a test clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <tlsresume/memory.h>
#include <tlsresume/tickets.h>

#include "../../src/lib/mem/tlsr_mem.h"
#include "../../src/lib/tickets/keyring_int.h"
#include "../lib/helpers.h"

#define HOUR 3600u
#define T0 ((uint64_t)1000 * HOUR + 100)

static struct tlsr_keyring *new_ring(struct th_clock *clk, uint32_t rotate_s, uint32_t life_s)
{
    struct tlsr_keyring *ring = NULL;
    assert_int_equal(tlsr_keyring_new(rotate_s, life_s, &ring), TLSR_OK);
    tlsr_keyring_set_clock(ring, th_clock_fn, clk);
    /* Rebuild under the test clock. */
    struct tlsr_key_source src = {ring->source.make_key, NULL};
    assert_int_equal(tlsr_keyring_set_source(ring, &src), TLSR_OK);
    return ring;
}

static struct tlsr_keyring_stats stats(struct tlsr_keyring *ring)
{
    struct tlsr_keyring_stats st;
    assert_int_equal(tlsr_keyring_get_stats(ring, &st), TLSR_OK);
    return st;
}

/* Seals a message under the current key, then opens it by name; returns the match. */
static enum tlsr__key_match seal_open(struct tlsr_keyring *ring, const uint8_t *name_in,
                                      uint8_t name_out[16])
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h1 = EVP_MAC_CTX_new(mac);
    EVP_MAC_CTX *h2 = EVP_MAC_CTX_new(mac);
    EVP_CIPHER_CTX *c1 = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX *c2 = EVP_CIPHER_CTX_new();
    uint8_t iv[16];
    enum tlsr__key_match match = TLSR__KEY_UNKNOWN;
    if (name_in == NULL) {
        assert_int_equal(tlsr__keyring_seal_setup(ring, name_out, iv, c1, h1), TLSR_OK);
        const uint8_t msg[32] = "a session that must come back..";
        uint8_t ct[64];
        uint8_t pt[64];
        int n1 = 0;
        int n2 = 0;
        int n3 = 0;
        int n4 = 0;
        assert_int_equal(EVP_EncryptUpdate(c1, ct, &n1, msg, sizeof(msg)), 1);
        assert_int_equal(EVP_EncryptFinal_ex(c1, ct + n1, &n2), 1);
        assert_int_equal(tlsr__keyring_open_setup(ring, name_out, iv, c2, h2, &match), TLSR_OK);
        assert_int_equal(EVP_DecryptUpdate(c2, pt, &n3, ct, n1 + n2), 1);
        assert_int_equal(EVP_DecryptFinal_ex(c2, pt + n3, &n4), 1);
        assert_int_equal(n3 + n4, sizeof(msg));
        assert_memory_equal(pt, msg, sizeof(msg));
    } else {
        memset(iv, 0, sizeof(iv));
        assert_int_equal(tlsr__keyring_open_setup(ring, name_in, iv, c2, h2, &match), TLSR_OK);
    }
    EVP_CIPHER_CTX_free(c1);
    EVP_CIPHER_CTX_free(c2);
    EVP_MAC_CTX_free(h1);
    EVP_MAC_CTX_free(h2);
    EVP_MAC_free(mac);
    return match;
}

/* A ticket body sealed under the ring's current key, kept to be opened later. */
struct sealed {
    uint8_t name[16];
    uint8_t iv[16];
    uint8_t ct[64];
    int ct_len;
    uint8_t tag[32];
};

static const uint8_t SESSION_MSG[32] = "a session that must come back..";

static void seal_ticket(struct tlsr_keyring *ring, struct sealed *t)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(tlsr__keyring_seal_setup(ring, t->name, t->iv, c, h), TLSR_OK);
    int n1 = 0;
    int n2 = 0;
    assert_int_equal(EVP_EncryptUpdate(c, t->ct, &n1, SESSION_MSG, sizeof(SESSION_MSG)), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, t->ct + n1, &n2), 1);
    t->ct_len = n1 + n2;
    size_t tag_len = 0;
    assert_int_equal(EVP_MAC_update(h, t->ct, (size_t)t->ct_len), 1);
    assert_int_equal(EVP_MAC_final(h, t->tag, &tag_len, sizeof(t->tag)), 1);
    assert_int_equal(tag_len, sizeof(t->tag));
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(mac);
}

/* Opens t as OpenSSL would: the key its name designates, the MAC, then the plaintext. */
static enum tlsr__key_match open_ticket(struct tlsr_keyring *ring, const struct sealed *t)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    enum tlsr__key_match match = TLSR__KEY_UNKNOWN;
    assert_int_equal(tlsr__keyring_open_setup(ring, t->name, t->iv, c, h, &match), TLSR_OK);
    if (match != TLSR__KEY_UNKNOWN) {
        uint8_t tag[32];
        size_t tag_len = 0;
        uint8_t pt[64];
        int n1 = 0;
        int n2 = 0;
        assert_int_equal(EVP_MAC_update(h, t->ct, (size_t)t->ct_len), 1);
        assert_int_equal(EVP_MAC_final(h, tag, &tag_len, sizeof(tag)), 1);
        assert_memory_equal(tag, t->tag, sizeof(tag));
        assert_int_equal(EVP_DecryptUpdate(c, pt, &n1, t->ct, t->ct_len), 1);
        assert_int_equal(EVP_DecryptFinal_ex(c, pt + n1, &n2), 1);
        assert_int_equal(n1 + n2, sizeof(SESSION_MSG));
        assert_memory_equal(pt, SESSION_MSG, sizeof(SESSION_MSG));
    }
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(mac);
    return match;
}

static void test_schedule_rotates_and_retires(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 12 * HOUR);
    struct tlsr_keyring_stats st = stats(ring);
    assert_int_equal(st.keys_held, 2);
    assert_int_equal(st.current_generation, 1000);
    assert_int_equal(st.current_key_age_s, 100);
    assert_int_equal(st.rotations, 0);
    uint8_t first[16];
    assert_int_equal(tlsr_keyring_current_name(ring, first), TLSR_OK);

    clk.now += HOUR;
    st = stats(ring);
    assert_int_equal(st.current_generation, 1001);
    assert_int_equal(st.rotations, 1);
    assert_int_equal(st.keys_held, 3);
    uint8_t name[16];
    assert_int_equal(tlsr_keyring_current_name(ring, name), TLSR_OK);
    assert_memory_not_equal(name, first, 16);
    /* The first key is decrypt-only now: resume and renew. */
    assert_int_equal(seal_open(ring, first, NULL), TLSR__KEY_OLD);

    /* Used every period, the ring holds lifetime / period + 2 keys, never more. */
    for (int i = 0; i < 30; i++) {
        clk.now += HOUR;
        st = stats(ring);
        assert_true(st.keys_held <= 12 + 2);
    }
    assert_int_equal(st.keys_held, 12 + 2);
    assert_int_equal(st.rotations, 31);
    assert_int_equal(seal_open(ring, first, NULL), TLSR__KEY_UNKNOWN);
    assert_true(st.keys_wiped >= 17);
    tlsr_keyring_free(ring);
}

/* tlsr_keyring_prepare() (serve's master calls it every second) makes the keys ahead, so that
 * no handshake makes one: across rotations, scheduled and on demand, keys_made_inline stays 0
 * and the generations follow each other. The control, without prepare, makes a key in the
 * first ticket operation of each new period. */
static void test_prepare_keeps_key_making_off_handshakes(void **state)
{
    (void)state;
    for (int is_prepared = 0; is_prepared <= 1; is_prepared++) {
        struct th_clock clk = {T0};
        struct tlsr_keyring *ring = new_ring(&clk, HOUR, 12 * HOUR);
        struct sealed t;
        for (int period = 0; period < 6; period++) {
            if (is_prepared) {
                assert_int_equal(tlsr_keyring_prepare(ring), TLSR_OK);
            }
            if (period == 3) {
                assert_int_equal(tlsr_keyring_rotate(ring), TLSR_OK);
                if (is_prepared) {
                    assert_int_equal(tlsr_keyring_prepare(ring), TLSR_OK);
                }
            }
            clk.now += HOUR; /* the handshake comes before the master's next prepare */
            seal_ticket(ring, &t);
            assert_int_equal(open_ticket(ring, &t), TLSR__KEY_CURRENT);
        }
        struct tlsr_keyring_stats st = stats(ring);
        assert_int_equal(st.rotations, 7); /* 6 periods and one on demand */
        assert_int_equal(st.current_generation, 1007);
        assert_int_equal(st.keys_made_inline, is_prepared ? 0 : 6); /* one per period */
        tlsr_keyring_free(ring);
    }
}

static void test_lapsed_chain_restarts_aligned(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    clk.now += 100 * HOUR;
    struct tlsr_keyring_stats st = stats(ring);
    assert_int_equal(st.keys_held, 2);
    assert_int_equal(st.current_generation, 1100);
    assert_int_equal(st.current_key_age_s, 100);
    assert_int_equal(st.keys_wiped, 2);
    tlsr_keyring_free(ring);
}

static void test_rotate_now_keeps_old_tickets(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 12 * HOUR);
    uint8_t before[16];
    assert_int_equal(seal_open(ring, NULL, before), TLSR__KEY_CURRENT);
    struct sealed old_ticket;
    seal_ticket(ring, &old_ticket);
    /* The next key already decrypts before it encrypts. */
    struct kr_key *cur = tlsr__keyring_current(ring->sh, clk.now);
    struct kr_key *next = NULL;
    for (uint32_t i = 0; i < ring->sh->capacity; i++) {
        if (ring->sh->keys[i].state == KEY_LIVE && &ring->sh->keys[i] != cur) {
            next = &ring->sh->keys[i];
        }
    }
    assert_non_null(next);
    uint8_t next_name[16];
    memcpy(next_name, next->k.name, 16);
    assert_int_equal(seal_open(ring, next_name, NULL), TLSR__KEY_CURRENT);

    assert_int_equal(tlsr_keyring_rotate(ring), TLSR_OK);
    uint8_t after[16];
    assert_int_equal(tlsr_keyring_current_name(ring, after), TLSR_OK);
    assert_memory_equal(after, next_name, 16);
    assert_int_equal(seal_open(ring, before, NULL), TLSR__KEY_OLD);
    /* A ticket sealed before the rotation opens after it: the old key's bytes are intact. */
    assert_int_equal(open_ticket(ring, &old_ticket), TLSR__KEY_OLD);
    struct sealed new_ticket;
    seal_ticket(ring, &new_ticket);
    assert_memory_equal(new_ticket.name, next_name, 16);
    assert_int_equal(open_ticket(ring, &new_ticket), TLSR__KEY_CURRENT);
    struct tlsr_keyring_stats st = stats(ring);
    assert_int_equal(st.rotations, 1);
    assert_int_equal(st.keys_held, 3);
    assert_int_equal(st.issued, 3);
    assert_true(st.rejected_unknown_key == 0);
    tlsr_keyring_free(ring);
}

static void test_forced_rotations_keep_old_tickets(void **state)
{
    (void)state;
    /* A long period, so the schedule alone needs few keys: the room is for rotations on demand. */
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, 7 * 24 * HOUR, 12 * HOUR);
    uint8_t first[16];
    assert_int_equal(seal_open(ring, NULL, first), TLSR__KEY_CURRENT);
    for (int i = 0; i < 8; i++) {
        clk.now += 60;
        assert_int_equal(tlsr_keyring_rotate(ring), TLSR_OK);
    }
    assert_int_equal(seal_open(ring, first, NULL), TLSR__KEY_OLD);
    assert_int_equal(stats(ring).rotations, 8);
    assert_int_equal(stats(ring).keys_wiped, 0);
    /* 32 more, as a script or an attacker with a rotation trigger would: once the room is used
     * up they are refused and counted; the first key's tickets still open (before, the oldest
     * decrypt-only key was wiped to make room). */
    int done = 8;
    for (int i = 0; i < 32; i++) {
        clk.now += 1;
        tlsr_status rc = tlsr_keyring_rotate(ring);
        assert_true(rc == TLSR_OK || rc == TLSR_E_TOOBIG);
        done += rc == TLSR_OK;
    }
    struct tlsr_keyring_stats st = stats(ring);
    assert_true(done >= 8 && done < 40);
    assert_int_equal(st.rotations_refused, 40 - done);
    assert_int_equal(st.rotation_room, 0);
    assert_int_equal(st.keys_wiped, 0);
    assert_int_equal(seal_open(ring, first, NULL), TLSR__KEY_OLD);
    /* Once the old keys' tickets expire, rotations are possible again. */
    clk.now += 12 * HOUR + 1;
    assert_true(stats(ring).rotation_room > 0);
    assert_int_equal(tlsr_keyring_rotate(ring), TLSR_OK);
    tlsr_keyring_free(ring);
}

static void test_retired_key_is_wiped(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    uint8_t name[16];
    assert_int_equal(tlsr_keyring_current_name(ring, name), TLSR_OK);
    assert_true(th_is_locked_nodump(ring->sh));
    clk.now += 3 * HOUR;
    (void)stats(ring);
    for (uint32_t i = 0; i < ring->sh->capacity; i++) {
        struct kr_key *k = &ring->sh->keys[i];
        assert_memory_not_equal(k->k.name, name, 16);
        if (k->state != KEY_LIVE) {
            const uint8_t *bytes = (const uint8_t *)k;
            for (size_t j = 0; j < sizeof(*k); j++) {
                assert_int_equal(bytes[j], 0);
            }
        }
    }
    assert_int_equal(seal_open(ring, name, NULL), TLSR__KEY_UNKNOWN);
    assert_int_equal(stats(ring).rejected_unknown_key, 1);
    tlsr_keyring_free(ring);
}

static int source_calls;
static int source_fail_after;

static tlsr_status flaky_source(void *arg, uint64_t generation, struct tlsr_ticket_key *out)
{
    (void)arg;
    if (++source_calls > source_fail_after) {
        return TLSR_E_SYSTEM;
    }
    memset(out, (int)(generation & 0xff), sizeof(*out));
    return TLSR_OK;
}

static void test_failing_source_keeps_keys_held(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 12 * HOUR);
    source_calls = 0;
    source_fail_after = 2;
    struct tlsr_key_source src = {flaky_source, NULL};
    assert_int_equal(tlsr_keyring_set_source(ring, &src), TLSR_OK);
    uint8_t first[16];
    assert_int_equal(seal_open(ring, NULL, first), TLSR__KEY_CURRENT);
    assert_int_equal(first[0], 1000 & 0xff);
    /* The next key takes over; making the one after it fails, counted. */
    clk.now += HOUR;
    uint8_t second[16];
    assert_int_equal(seal_open(ring, NULL, second), TLSR__KEY_CURRENT);
    assert_int_equal(second[0], 1001 & 0xff);
    assert_true(stats(ring).source_errors >= 1);
    /* No key covers the next period: no new tickets, but old ones still open. */
    clk.now += HOUR;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t name[16];
    uint8_t iv[16];
    assert_int_equal(tlsr__keyring_seal_setup(ring, name, iv, c, h), TLSR_E_NOTFOUND);
    EVP_CIPHER_CTX_free(c);
    EVP_MAC_CTX_free(h);
    EVP_MAC_free(mac);
    assert_int_equal(seal_open(ring, first, NULL), TLSR__KEY_OLD);
    assert_int_equal(seal_open(ring, second, NULL), TLSR__KEY_OLD);
    tlsr_keyring_free(ring);
}

static void test_bad_schedules_are_refused(void **state)
{
    (void)state;
    struct tlsr_keyring *ring = NULL;
    assert_int_equal(tlsr_keyring_new(5, 3600, &ring), TLSR_E_INVALID);
    assert_int_equal(tlsr_keyring_new(3600, 0, &ring), TLSR_E_INVALID);
    assert_int_equal(tlsr_keyring_new(3600, 8 * 86400, &ring), TLSR_E_INVALID);
    assert_int_equal(tlsr_keyring_new(60, 7 * 86400, &ring), TLSR_E_INVALID);
    assert_non_null(strstr(tlsr_last_error(), "rotate less often"));
    assert_null(ring);
}

static void test_every_allocation_failure_is_clean(void **state)
{
    (void)state;
    unsigned long failures = 0;
    for (unsigned long n = 1; n < 50; n++) {
        tlsr__mem_fail_at(n);
        struct tlsr_keyring *ring = NULL;
        tlsr_status rc = tlsr_keyring_new(HOUR, HOUR, &ring);
        unsigned long made = tlsr__mem_fail_at(0);
        if (rc == TLSR_OK) {
            tlsr_keyring_free(ring);
            assert_true(made < n);
            break;
        }
        assert_int_equal(rc, TLSR_E_NOMEM);
        assert_null(ring);
        failures++;
    }
    assert_true(failures >= 2);
}

static struct tlsr_ticket_key fleet_key(uint8_t tag)
{
    struct tlsr_ticket_key k;
    memset(&k, tag, sizeof(k));
    return k;
}

/* A fleet key installed decrypt-only resumes its tickets; promoted, it encrypts; the key it
 * replaces decrypts for the lifetime, then is wiped. */
static void test_fleet_install_promote_retire(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    uint8_t local[16];
    assert_int_equal(tlsr_keyring_current_name(ring, local), TLSR_OK);
    struct tlsr_ticket_key a = fleet_key(0xa1);
    struct tlsr_ticket_key b = fleet_key(0xb2);
    assert_int_equal(tlsr_keyring_install(ring, 1, &a, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_install(ring, 1, &a, 0), TLSR_OK); /* idempotent */
    assert_true(tlsr_keyring_has_key(ring, a.name));
    /* Pending: it decrypts (another server may encrypt with it already) but does not encrypt. */
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_CURRENT);
    uint8_t name[16];
    assert_int_equal(tlsr_keyring_current_name(ring, name), TLSR_OK);
    assert_memory_equal(name, local, 16);
    assert_false(stats(ring).is_fleet);

    assert_int_equal(tlsr_keyring_promote(ring, a.name), TLSR_OK);
    assert_int_equal(tlsr_keyring_current_name(ring, name), TLSR_OK);
    assert_memory_equal(name, a.name, 16);
    assert_true(stats(ring).is_fleet);
    assert_int_equal(seal_open(ring, local, NULL), TLSR__KEY_OLD);
    /* The local schedule makes no key while the fleet drives the ring. */
    size_t held = (size_t)stats(ring).keys_held;
    clk.now += HOUR / 2;
    assert_int_equal(stats(ring).keys_held, held);
    assert_int_equal(tlsr_keyring_rotate(ring), TLSR_E_INVALID);

    assert_int_equal(tlsr_keyring_install(ring, 2, &b, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, b.name), TLSR_OK);
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_OLD);
    struct tlsr_key_info keys[16];
    size_t n = 0;
    assert_int_equal(tlsr_keyring_list(ring, keys, 16, &n), TLSR_OK);
    assert_true(n >= 2);
    assert_int_equal(keys[n - 1].generation, 2);
    assert_int_equal(keys[n - 1].state, TLSR_KEY_CURRENT);
    assert_true(keys[n - 1].is_fleet);
    assert_int_equal(keys[n - 2].state, TLSR_KEY_DECRYPT_ONLY);
    assert_int_equal(keys[n - 1].presented, 0);
    assert_int_equal(keys[n - 2].presented, 2); /* a was presented twice (above) */
    /* Past the lifetime (and the default skew of 0), a and the local key are gone. */
    clk.now += 2 * HOUR + 1;
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_UNKNOWN);
    assert_int_equal(seal_open(ring, local, NULL), TLSR__KEY_UNKNOWN);
    assert_int_equal(seal_open(ring, b.name, NULL), TLSR__KEY_CURRENT);
    /* Unknown names are refused. */
    struct tlsr_ticket_key c = fleet_key(0xc3);
    assert_int_equal(tlsr_keyring_promote(ring, c.name), TLSR_E_NOTFOUND);
    tlsr_keyring_free(ring);
}

/* With the fleet silent, the promoted key encrypts past its period up to the overdue bound,
 * then the ring falls back to local keys (counted); the next promotion takes over again. */
static void test_fleet_overdue_falls_back_to_local(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    assert_int_equal(tlsr_keyring_set_fleet_timing(ring, 30, 3 * HOUR), TLSR_OK);
    assert_int_equal(tlsr_keyring_set_fleet_timing(ring, 30, 10), TLSR_E_INVALID);
    assert_int_equal(tlsr_keyring_set_fleet_timing(ring, 7200, HOUR), TLSR_E_INVALID);
    struct tlsr_ticket_key a = fleet_key(0xa1);
    assert_int_equal(tlsr_keyring_install(ring, 7, &a, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, a.name), TLSR_OK);
    clk.now += 2 * HOUR;
    struct tlsr_keyring_stats st = stats(ring);
    assert_true(st.is_fleet);
    assert_int_equal(st.current_overdue_s, HOUR);
    assert_int_equal(st.current_generation, 7);
    clk.now += 2 * HOUR + 1; /* past period + overdue bound */
    st = stats(ring);
    assert_false(st.is_fleet);
    assert_int_equal(st.fleet_lapses, 1);
    uint8_t name[16];
    assert_int_equal(tlsr_keyring_current_name(ring, name), TLSR_OK);
    assert_memory_not_equal(name, a.name, 16);
    /* a still decrypts its tickets for the lifetime plus the skew. */
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_OLD);
    tlsr_keyring_free(ring);
}

/* A key the fleet retired already is kept only for what is left of its tickets' life. */
static void test_fleet_retired_install(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    struct tlsr_ticket_key a = fleet_key(0xa1);
    assert_int_equal(tlsr_keyring_install(ring, 3, &a, 600), TLSR_OK);
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_OLD);
    clk.now += 601;
    assert_int_equal(seal_open(ring, a.name, NULL), TLSR__KEY_UNKNOWN);
    tlsr_keyring_free(ring);
}

/* A key whose bytes say where they are: name 0x1n, AES 0xAn, HMAC 0x5n. */
static struct tlsr_key_material marked(size_t len)
{
    struct tlsr_key_material m;
    memset(&m, 0, sizeof(m));
    if (len < 16 || len > sizeof(m.bytes)) {
        abort(); /* a test's own mistake */
    }
    m.len = (uint8_t)len;
    size_t half = (len - 16) / 2;
    for (size_t i = 0; i < 16; i++) {
        m.bytes[i] = (uint8_t)(0x10 + i);
    }
    for (size_t i = 0; i < half; i++) {
        m.bytes[16 + i] = (uint8_t)(0xa0 + i);
        m.bytes[16 + half + i] = (uint8_t)(0x50 + i);
    }
    return m;
}

/* Each format's byte order, both ways: nginx 80 and Apache/Node put the HMAC key first. */
static void test_keyfile_layouts(void **state)
{
    (void)state;
    static const struct {
        enum tlsr_key_format fmt;
        size_t len;
        uint8_t second; /* the first byte after the name */
    } cases[] = {
        {TLSR_KEYFMT_NGINX80, 80, 0x50}, {TLSR_KEYFMT_RAW, 80, 0xa0},
        {TLSR_KEYFMT_NGINX48, 48, 0xa0}, {TLSR_KEYFMT_APACHE, 48, 0x50},
        {TLSR_KEYFMT_NODE, 48, 0x50},    {TLSR_KEYFMT_NGHTTPX, 80, 0xa0},
        {TLSR_KEYFMT_NGHTTPX, 48, 0xa0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tlsr_key_material m = marked(cases[i].len);
        uint8_t file[80];
        size_t len = 0;
        /* A 48-byte key is written as is (no derivation) in every format. */
        assert_int_equal(tlsr_keyfile_key_bytes(cases[i].fmt, &m, file, &len), TLSR_OK);
        assert_int_equal(len, cases[i].len);
        assert_memory_equal(file, m.bytes, 16);
        assert_int_equal(file[16], cases[i].second);
        struct tlsr_key_material back[2];
        size_t n = 0;
        assert_int_equal(tlsr_keyfile_read(cases[i].fmt, "k", file, len, back, 2, &n), TLSR_OK);
        assert_int_equal(n, 1);
        assert_int_equal(back[0].len, cases[i].len);
        assert_memory_equal(back[0].bytes, m.bytes, cases[i].len);
    }
    enum tlsr_key_format f;
    assert_int_equal(tlsr_key_format_from_name("haproxy", &f), TLSR_OK);
    assert_int_equal(f, TLSR_KEYFMT_HAPROXY);
    assert_string_equal(tlsr_key_format_name(TLSR_KEYFMT_NGINX48), "nginx48");
    assert_int_equal(tlsr_key_format_from_name("nginx", &f), TLSR_E_INVALID);
}

/* Three 80-byte keys with names of their own, as tlsr_keyring_export gives them: the
 * encrypting key, the next, an older one. */
static void three_keys(struct tlsr_key_material keys[3])
{
    for (int i = 0; i < 3; i++) {
        keys[i] = marked(80);
        keys[i].bytes[0] = (uint8_t)(0xe0 + i);
        keys[i].bytes[20] = (uint8_t)(0xe0 + i);
    }
}

static void write_text(enum tlsr_key_format fmt, const char *name,
                       const struct tlsr_key_material *keys, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    assert_true(tlsr_key_format_is_text(fmt));
    assert_int_equal(
        tlsr_keyfile_write_named(fmt, name, keys, n, true, (uint8_t *)out, cap - 1, &len), TLSR_OK);
    out[len] = '\0';
}

/* The base64 value after the i-th occurrence of tag, decoded into out; its decoded length. */
static size_t b64_after(const char *text, const char *tag, int i, uint8_t *out)
{
    const char *at = text;
    for (int k = 0; k <= i; k++) {
        at = strstr(at, tag);
        assert_non_null(at);
        at += strlen(tag);
    }
    size_t n = strcspn(at, "\n");
    char b64[256];
    assert_true(n < sizeof(b64));
    memcpy(b64, at, n);
    b64[n] = '\0';
    int got = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    assert_true(got > 0);
    return (size_t)got - (n > 1 && b64[n - 1] == '=') - (n > 2 && b64[n - 2] == '=');
}

/* Envoy's and Kubernetes' 80-byte layout as documented: name | HMAC key | AES key. */
static void assert_envoy_layout(const uint8_t *got, size_t len, const struct tlsr_key_material *k)
{
    assert_int_equal(len, 80);
    assert_memory_equal(got, k->bytes, 16);
    assert_memory_equal(got + 16, k->bytes + 48, 32);
    assert_memory_equal(got + 48, k->bytes + 16, 32);
}

/* The text formats, byte by byte against their documented layouts, computed here on their own:
 * h2o's YAML (hex of AES | HMAC padded to 64, the encrypting key with the newest past
 * not_before, the next one in 2100), Go's seeds (HKDF-SHA256, the encrypting key first),
 * Envoy's SDS file and a Kubernetes Secret (name | HMAC | AES, the encrypting key first). */
static void test_keyfile_text_formats(void **state)
{
    (void)state;
    struct tlsr_key_material keys[3];
    three_keys(keys);
    static char out[8192];
    /* h2o */
    write_text(TLSR_KEYFMT_H2O, NULL, keys, 3, out, sizeof(out));
    unsigned long long nb[3] = {0};
    const char *at = out;
    for (int i = 0; i < 3; i++) {
        char want[64];
        char hexname[33];
        for (int b = 0; b < 16; b++) {
            snprintf(hexname + 2 * b, 3, "%02x", keys[i].bytes[b]);
        }
        snprintf(want, sizeof(want), "- name: %s\n", hexname);
        at = strstr(at, want);
        assert_non_null(at);
        const char *key = strstr(at, "  key: ");
        assert_non_null(key);
        key += 7;
        assert_int_equal(strcspn(key, "\n"), 192);
        for (int b = 0; b < 96; b++) {
            char two[3];
            snprintf(two, sizeof(two), "%02x", b < 64 ? keys[i].bytes[16 + b] : 0);
            assert_memory_equal(key + 2 * b, two, 2);
        }
        assert_non_null(strstr(at, "  cipher: aes-256-cbc\n  hash: sha256\n"));
        const char *t = strstr(at, "  not_before: ");
        assert_non_null(t);
        nb[i] = strtoull(t + 14, NULL, 10);
        at = t;
    }
    assert_int_equal(nb[1], 4102444800ull); /* the next key: decrypt only until promoted */
    assert_true(nb[0] > nb[2]);             /* the encrypting key is the newest past one */
    assert_true(nb[0] < 4102444800ull);
    /* go */
    write_text(TLSR_KEYFMT_GO, NULL, keys, 3, out, sizeof(out));
    for (int i = 0; i < 3; i++) {
        uint8_t want[32];
        size_t want_len = sizeof(want);
        EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
        assert_int_equal(EVP_PKEY_derive_init(kdf), 1);
        assert_int_equal(EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()), 1);
        assert_int_equal(EVP_PKEY_CTX_set1_hkdf_salt(kdf, keys[i].bytes, 16), 1);
        assert_int_equal(EVP_PKEY_CTX_set1_hkdf_key(kdf, keys[i].bytes + 16, 64), 1);
        assert_int_equal(
            EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)"tlsresume go ticket key", 23),
            1);
        assert_int_equal(EVP_PKEY_derive(kdf, want, &want_len), 1);
        EVP_PKEY_CTX_free(kdf);
        const char *line = out;
        for (int k = 0; k < i; k++) {
            line = strchr(line, '\n') + 1;
        }
        uint8_t got[48];
        size_t n = strcspn(line, "\n");
        assert_int_equal(n, 44);
        assert_int_equal(EVP_DecodeBlock(got, (const unsigned char *)line, (int)n), 33);
        assert_memory_equal(got, want, 32);
    }
    /* envoy */
    write_text(TLSR_KEYFMT_ENVOY, "gw-keys", keys, 3, out, sizeof(out));
    assert_non_null(strstr(out, "envoy.extensions.transport_sockets.tls.v3.Secret\n"
                                "  name: gw-keys\n  session_ticket_keys:\n    keys:\n"));
    for (int i = 0; i < 3; i++) {
        uint8_t got[96];
        size_t n = b64_after(out, "- inline_bytes: ", i, got);
        assert_envoy_layout(got, n, &keys[i]);
    }
    /* k8s-secret */
    write_text(TLSR_KEYFMT_K8S_SECRET, NULL, keys, 3, out, sizeof(out));
    assert_non_null(strstr(out, "kind: Secret\nmetadata:\n  name: tlsresume-ticket-keys\n"));
    static const char *const tags[] = {
        "tls.sessionticket.key: ", "tls.sessionticket.key.1: ", "tls.sessionticket.key.2: "};
    for (int i = 0; i < 3; i++) {
        uint8_t got[96];
        size_t n = b64_after(out, tags[i], 0, got);
        assert_envoy_layout(got, n, &keys[i]);
    }
    assert_null(strstr(out, "tls.sessionticket.key.3"));
    /* Written, never read; a resource name that is no Kubernetes name is refused. */
    struct tlsr_key_material back[4];
    size_t n = 0;
    assert_int_equal(
        tlsr_keyfile_read(TLSR_KEYFMT_H2O, "k", (const uint8_t *)out, strlen(out), back, 4, &n),
        TLSR_E_INVALID);
    size_t len = 0;
    assert_int_equal(tlsr_keyfile_write_named(TLSR_KEYFMT_ENVOY, "Bad Name", keys, 3, true,
                                              (uint8_t *)out, sizeof(out), &len),
                     TLSR_E_INVALID);
    assert_false(tlsr_key_format_is_text(TLSR_KEYFMT_NGINX80));
    OPENSSL_cleanse(keys, sizeof(keys));
    OPENSSL_cleanse(out, sizeof(out));
}

/* 80-byte ring keys in 48-byte formats: derived, the same every time, under a new name. */
static void test_keyfile_derives_48(void **state)
{
    (void)state;
    struct tlsr_key_material m = marked(80);
    struct tlsr_key_material a;
    struct tlsr_key_material b;
    assert_int_equal(tlsr_key_material_to48(&m, &a), TLSR_OK);
    assert_int_equal(tlsr_key_material_to48(&m, &b), TLSR_OK);
    assert_int_equal(a.len, 48);
    assert_memory_equal(a.bytes, b.bytes, 48);
    assert_memory_not_equal(a.bytes, m.bytes, 16);
    m.bytes[79] ^= 1;
    assert_int_equal(tlsr_key_material_to48(&m, &b), TLSR_OK);
    assert_memory_not_equal(a.bytes, b.bytes, 48);
    uint8_t file[80];
    size_t len = 0;
    assert_int_equal(tlsr_keyfile_key_bytes(TLSR_KEYFMT_NODE, &m, file, &len), TLSR_OK);
    assert_int_equal(len, 48);
    assert_memory_equal(file, b.bytes, 16);
}

/* HAProxy: previous, encrypting, next; a missing one repeats the encrypting key. */
static void test_keyfile_haproxy_order(void **state)
{
    (void)state;
    struct tlsr_key_material keys[3];
    for (size_t i = 0; i < 3; i++) {
        keys[i] = marked(80);
        keys[i].bytes[0] = (uint8_t)i; /* 0: encrypting, 1: next, 2: previous */
    }
    uint8_t out[512];
    size_t len = 0;
    struct tlsr_key_material back[4];
    size_t n = 0;
    assert_int_equal(tlsr_keyfile_write(TLSR_KEYFMT_HAPROXY, keys, 3, true, out, sizeof(out), &len),
                     TLSR_OK);
    assert_int_equal(len, 3 * 109); /* 108 base64 characters and a newline each */
    assert_int_equal(tlsr_keyfile_read(TLSR_KEYFMT_HAPROXY, "h", out, len, back, 4, &n), TLSR_OK);
    assert_int_equal(n, 3);
    assert_int_equal(back[0].bytes[0], 2);
    assert_int_equal(back[1].bytes[0], 0);
    assert_int_equal(back[2].bytes[0], 1);
    assert_memory_equal(back[1].bytes, keys[0].bytes, 80);
    assert_int_equal(
        tlsr_keyfile_write(TLSR_KEYFMT_HAPROXY, keys, 1, false, out, sizeof(out), &len), TLSR_OK);
    assert_int_equal(tlsr_keyfile_read(TLSR_KEYFMT_HAPROXY, "h", out, len, back, 4, &n), TLSR_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(back[0].bytes, keys[0].bytes, 80);
    assert_memory_equal(back[2].bytes, keys[0].bytes, 80);
    /* Too small a buffer fails and leaves nothing behind. */
    assert_int_equal(tlsr_keyfile_write(TLSR_KEYFMT_HAPROXY, keys, 3, true, out, 200, &len),
                     TLSR_E_TOOBIG);
    /* Raw: every 80-byte key, encrypting first. */
    assert_int_equal(tlsr_keyfile_write(TLSR_KEYFMT_RAW, keys, 3, true, out, sizeof(out), &len),
                     TLSR_OK);
    assert_int_equal(len, 240);
    assert_int_equal(out[80], 1);
}

/* Malformed files: wrong length, bad base64, empty; each message names the file and line. */
static void test_keyfile_rejects_malformed(void **state)
{
    (void)state;
    struct tlsr_key_material out[4];
    size_t n = 0;
    static const uint8_t bytes[81] = {0};
    static const struct {
        enum tlsr_key_format fmt;
        const char *data;
        size_t len;
        const char *says;
    } cases[] = {
        {TLSR_KEYFMT_NGINX80, "", 0, "k.key: empty"},
        {TLSR_KEYFMT_NGINX80, (const char *)bytes, 79, "k.key: 79 bytes"},
        {TLSR_KEYFMT_NGINX48, (const char *)bytes, 81, "k.key: 81 bytes"},
        {TLSR_KEYFMT_APACHE, (const char *)bytes, 80, "k.key: 80 bytes"},
        {TLSR_KEYFMT_NODE, (const char *)bytes, 47, "k.key: 47 bytes"},
        {TLSR_KEYFMT_RAW, (const char *)bytes, 81, "not a whole number"},
        {TLSR_KEYFMT_HAPROXY, "\n# only a comment\n", 18, "k.key: no key"},
        {TLSR_KEYFMT_HAPROXY, "AAAA\n", 5, "k.key:1: a key of 3 bytes"},
        {TLSR_KEYFMT_HAPROXY, "\nAA*A\n", 6, "k.key:2: byte 3 (0x2a) is not base64"},
        {TLSR_KEYFMT_HAPROXY, "AAA\n", 4, "k.key:1: 3 base64 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tlsr_status rc = tlsr_keyfile_read(cases[i].fmt, "k.key", (const uint8_t *)cases[i].data,
                                           cases[i].len, out, 4, &n);
        assert_int_equal(rc, TLSR_E_FORMAT);
        assert_non_null(strstr(tlsr_last_error(), cases[i].says));
    }
    /* More keys than room. */
    uint8_t raw[400] = {0};
    assert_int_equal(tlsr_keyfile_read(TLSR_KEYFMT_RAW, "r", raw, 400, out, 4, &n), TLSR_E_TOOBIG);
}

/* Export order (encrypting, next, older) and an imported 48-byte key that decrypts tickets
 * sealed the way nginx seals them with it (AES-128-CBC). */
/* After Redis restarted empty the fleet's generations start again at 1, while a member still
 * holds the old sequence's next key (generation 57, never promoted). The key exported as next
 * (written to nginx or HAProxy, then acknowledged) must be the one the fleet will promote,
 * generation current + 1, not the highest generation held. */
static void test_keyring_export_next_after_restart(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    struct tlsr_ticket_key old_cur = fleet_key(0x56);
    struct tlsr_ticket_key old_next = fleet_key(0x57);
    struct tlsr_ticket_key cur = fleet_key(0x01);
    struct tlsr_ticket_key next = fleet_key(0x02);
    struct tlsr_key_material out[8];
    size_t n = 0;
    bool has_next = false;
    assert_int_equal(tlsr_keyring_install(ring, 56, &old_cur, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, old_cur.name), TLSR_OK);
    assert_int_equal(tlsr_keyring_install(ring, 57, &old_next, 0), TLSR_OK);
    /* Redis forgets; the new sequence's first key is promoted. */
    assert_int_equal(tlsr_keyring_install(ring, 1, &cur, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, cur.name), TLSR_OK);
    /* Its next key is not made yet: there is no next key to write, not the stale one. */
    assert_int_equal(tlsr_keyring_export(ring, true, out, 8, &n, &has_next), TLSR_OK);
    assert_false(has_next);
    assert_memory_equal(out[0].bytes, cur.name, 16);
    for (size_t i = 1; i < n; i++) {
        assert_memory_not_equal(out[i].bytes, old_next.name, 16);
    }
    assert_int_equal(tlsr_keyring_install(ring, 2, &next, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_export(ring, true, out, 8, &n, &has_next), TLSR_OK);
    assert_true(has_next);
    assert_memory_equal(out[1].bytes, next.name, 16);
    tlsr_keyring_free(ring);
}

static void test_keyring_export_import(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    struct tlsr_ticket_key a = fleet_key(0xa1);
    struct tlsr_ticket_key b = fleet_key(0xb2);
    struct tlsr_ticket_key c = fleet_key(0xc3);
    struct tlsr_key_material out[8];
    size_t n = 0;
    bool has_next = false;
    assert_int_equal(tlsr_keyring_export(ring, true, out, 8, &n, &has_next), TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_keyring_install(ring, 1, &a, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, a.name), TLSR_OK);
    assert_int_equal(tlsr_keyring_install(ring, 2, &b, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, b.name), TLSR_OK);
    assert_int_equal(tlsr_keyring_install(ring, 3, &c, 0), TLSR_OK);
    struct tlsr_key_material legacy = marked(48);
    assert_int_equal(tlsr_keyring_import(ring, &legacy, 600), TLSR_OK);
    assert_int_equal(tlsr_keyring_export(ring, true, out, 8, &n, &has_next), TLSR_OK);
    assert_int_equal(n, 4);
    assert_true(has_next);
    assert_memory_equal(out[0].bytes, b.name, 16);
    assert_memory_equal(out[1].bytes, c.name, 16);
    assert_memory_equal(out[2].bytes, a.name, 16);
    assert_int_equal(out[3].len, 48);
    assert_memory_equal(out[0].bytes + 16, b.aes_key, 32);
    assert_memory_equal(out[0].bytes + 48, b.hmac_key, 32);

    /* Seal as nginx does with a 48-byte key, then open through the ring. */
    uint8_t iv[16] = {7};
    const uint8_t msg[32] = "a ticket issued by another one..";
    uint8_t ct[64];
    uint8_t pt[64];
    int n1 = 0;
    int n2 = 0;
    EVP_CIPHER_CTX *c1 = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c1, EVP_aes_128_cbc(), NULL, legacy.bytes + 16, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c1, ct, &n1, msg, sizeof(msg)), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c1, ct + n1, &n2), 1);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *h2 = EVP_MAC_CTX_new(mac);
    EVP_CIPHER_CTX *c2 = EVP_CIPHER_CTX_new();
    enum tlsr__key_match match = TLSR__KEY_UNKNOWN;
    assert_int_equal(tlsr__keyring_open_setup(ring, legacy.bytes, iv, c2, h2, &match), TLSR_OK);
    assert_int_equal(match, TLSR__KEY_OLD);
    int n3 = 0;
    int n4 = 0;
    assert_int_equal(EVP_DecryptUpdate(c2, pt, &n3, ct, n1 + n2), 1);
    assert_int_equal(EVP_DecryptFinal_ex(c2, pt + n3, &n4), 1);
    assert_memory_equal(pt, msg, sizeof(msg));
    /* The HMAC key is the 16 bytes the file gave. */
    size_t mac_len = 0;
    uint8_t tag1[32];
    uint8_t tag2[32];
    assert_int_equal(EVP_MAC_init(h2, NULL, 0, NULL), 1);
    assert_int_equal(EVP_MAC_update(h2, msg, sizeof(msg)), 1);
    assert_int_equal(EVP_MAC_final(h2, tag1, &mac_len, sizeof(tag1)), 1);
    assert_non_null(HMAC(EVP_sha256(), legacy.bytes + 32, 16, msg, sizeof(msg), tag2, NULL));
    assert_memory_equal(tag1, tag2, 32);
    EVP_CIPHER_CTX_free(c1);
    EVP_CIPHER_CTX_free(c2);
    EVP_MAC_CTX_free(h2);
    EVP_MAC_free(mac);
    /* Imported keys decrypt for the time given, then are wiped. */
    clk.now += 601;
    assert_int_equal(seal_open(ring, legacy.bytes, NULL), TLSR__KEY_UNKNOWN);
    tlsr_keyring_free(ring);
}

/* Seals msg as an OpenSSL server does with a 48-byte key file in nginx48's order (name | aes |
 * hmac): AES-128-CBC, then HMAC-SHA256 under the 16-byte HMAC key; returns the length. */
static int seal48(const uint8_t file[48], const uint8_t iv[16], const uint8_t *msg, int len,
                  uint8_t *ct, uint8_t tag[32])
{
    int n1 = 0;
    int n2 = 0;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_cbc(), NULL, file + 16, iv), 1);
    assert_int_equal(EVP_EncryptUpdate(c, ct, &n1, msg, len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, ct + n1, &n2), 1);
    EVP_CIPHER_CTX_free(c);
    assert_non_null(HMAC(EVP_sha256(), file + 32, 16, ct, (size_t)(n1 + n2), tag, NULL));
    return n1 + n2;
}

/* A ticket that nginx48, Apache or Node issued under the 48-byte variant `keys export` wrote for
 * one of the ring's keys opens through the ring (decrypt-only: renewed), and is counted; once
 * the key is retired it no longer does. */
static void test_variant_tickets_open(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    uint8_t name[16];
    assert_int_equal(seal_open(ring, NULL, name), TLSR__KEY_CURRENT); /* the key exists */
    struct tlsr_key_material keys[8];
    size_t n = 0;
    bool has_next = false;
    assert_int_equal(tlsr_keyring_export(ring, false, keys, 8, &n, &has_next), TLSR_OK);
    uint8_t file[80];
    size_t len = 0;
    assert_int_equal(tlsr_keyfile_key_bytes(TLSR_KEYFMT_NGINX48, &keys[0], file, &len), TLSR_OK);
    assert_int_equal(len, 48);
    assert_memory_not_equal(file, name, 16); /* the variant has a name of its own */
    const uint8_t iv[16] = {9};
    const uint8_t msg[40] = "a session that another server sealed...";
    uint8_t ct[64];
    uint8_t tag[32];
    int ct_len = seal48(file, iv, msg, sizeof(msg), ct, tag);
    for (int round = 0; round < 2; round++) { /* the second finds the name already known */
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *h = EVP_MAC_CTX_new(mac);
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        enum tlsr__key_match match = TLSR__KEY_UNKNOWN;
        assert_int_equal(tlsr__keyring_open_setup(ring, file, iv, c, h, &match), TLSR_OK);
        assert_int_equal(match, TLSR__KEY_VARIANT);
        uint8_t pt[64];
        int n3 = 0;
        int n4 = 0;
        assert_int_equal(EVP_DecryptUpdate(c, pt, &n3, ct, ct_len), 1);
        assert_int_equal(EVP_DecryptFinal_ex(c, pt + n3, &n4), 1);
        assert_int_equal(n3 + n4, sizeof(msg));
        assert_memory_equal(pt, msg, sizeof(msg));
        uint8_t got[32];
        size_t got_len = 0;
        assert_int_equal(EVP_MAC_init(h, NULL, 0, NULL), 1);
        assert_int_equal(EVP_MAC_update(h, ct, (size_t)ct_len), 1);
        assert_int_equal(EVP_MAC_final(h, got, &got_len, sizeof(got)), 1);
        assert_memory_equal(got, tag, 32);
        EVP_CIPHER_CTX_free(c);
        EVP_MAC_CTX_free(h);
        EVP_MAC_free(mac);
    }
    assert_int_equal(stats(ring).variants_opened, 2);
    /* The control: a name that is no key's and no variant's is unknown. */
    uint8_t other[16];
    memcpy(other, file, 16);
    other[0] ^= 1;
    assert_int_equal(seal_open(ring, other, NULL), TLSR__KEY_UNKNOWN);
    /* Past the key's decrypt-only time its variant is gone too. */
    clk.now += 3 * HOUR;
    assert_int_equal(seal_open(ring, file, NULL), TLSR__KEY_UNKNOWN);
    assert_int_equal(stats(ring).variants_opened, 2);
    OPENSSL_cleanse(keys, sizeof(keys));
    OPENSSL_cleanse(file, sizeof(file));
    tlsr_keyring_free(ring);
}

/* Imported keys come last in exports (never HAProxy's "previous" key), and a ring holds at
 * most TLSR_KEYRING_MAX_IMPORTS of them, in room of their own. */
static void test_imports_last_and_bounded(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    struct tlsr_ticket_key a = fleet_key(0xa1);
    struct tlsr_ticket_key b = fleet_key(0xb2);
    assert_int_equal(tlsr_keyring_install(ring, 1, &a, 600), TLSR_OK); /* already retired */
    assert_int_equal(tlsr_keyring_install(ring, 2, &b, 0), TLSR_OK);
    assert_int_equal(tlsr_keyring_promote(ring, b.name), TLSR_OK);
    struct tlsr_key_material imp = marked(80);
    assert_int_equal(tlsr_keyring_import(ring, &imp, 3000), TLSR_OK); /* lives longer than a */
    struct tlsr_key_material out[8];
    size_t n = 0;
    bool has_next = true;
    assert_int_equal(tlsr_keyring_export(ring, true, out, 8, &n, &has_next), TLSR_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out[0].bytes, b.name, 16);
    assert_memory_equal(out[1].bytes, a.name, 16);
    assert_memory_equal(out[2].bytes, imp.bytes, 16);
    size_t order[3];
    tlsr_keyfile_haproxy_order(out, n, has_next, order);
    assert_int_equal(order[0], 1);
    /* Fill the import room; one more is refused, and the fleet keys are all still held. */
    for (uint8_t i = 1; i < TLSR_KEYRING_MAX_IMPORTS; i++) {
        imp.bytes[0] = i;
        assert_int_equal(tlsr_keyring_import(ring, &imp, 3000), TLSR_OK);
    }
    imp.bytes[0] = 0xee;
    assert_int_equal(tlsr_keyring_import(ring, &imp, 3000), TLSR_E_TOOBIG);
    assert_true(tlsr_keyring_has_key(ring, a.name));
    assert_true(tlsr_keyring_has_key(ring, b.name));
    tlsr_keyring_free(ring);
}

/* Imports made at once by several processes (workers, `keys import` beside a server) never hold
 * more than TLSR_KEYRING_MAX_IMPORTS together: the limit is counted under the lock of the add. */
static void test_concurrent_imports_stay_bounded(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, HOUR);
    enum { PROCS = 4 };
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            char c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0) { /* released together when the pipe closes */
                _exit(2);
            }
            struct tlsr_key_material imp = marked(80);
            for (int i = 0; i < (int)TLSR_KEYRING_MAX_IMPORTS; i++) {
                imp.bytes[0] = (uint8_t)(p * 64 + i);
                tlsr_status rc = tlsr_keyring_import(ring, &imp, 3000);
                if (rc != TLSR_OK && rc != TLSR_E_TOOBIG) { /* TLSR_E_TOOBIG once full */
                    _exit(3);
                }
            }
            _exit(0);
        }
    }
    close(go[0]);
    close(go[1]);
    for (int p = 0; p < PROCS; p++) {
        int st = 0;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    struct tlsr_key_info info[TLSR_KEYRING_MAX_KEYS];
    size_t n = 0;
    assert_int_equal(tlsr_keyring_list(ring, info, TLSR_KEYRING_MAX_KEYS, &n), TLSR_OK);
    size_t imported = 0;
    for (size_t i = 0; i < n; i++) {
        imported += info[i].is_fleet && info[i].generation == 0;
    }
    assert_int_equal(imported, TLSR_KEYRING_MAX_IMPORTS);
    tlsr_keyring_free(ring);
}

/* A ring handed to another handle through its two memory files: a ticket sealed by one opens
 * with the other, with the same schedule; the maker disowns it and the keys stay; another
 * layout version is refused. Where the kernel offers secret memory the key slots are there,
 * and the head (with the lock) is not. */
static void test_adopt_through_the_memory_files(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    int fds[2];
    tlsr_keyring_fds(ring, fds);
    assert_true(fds[0] >= 0);
    if (tlsr_key_memory_used(NULL) == TLSR_KEY_MEMORY_SECRET) {
        struct statfs head;
        struct statfs keys;
        assert_int_equal(fstatfs(fds[0], &head), 0);
        assert_int_equal(fstatfs(fds[1], &keys), 0);
        assert_int_equal((unsigned)keys.f_type, 0x5345434du); /* SECRETMEM_MAGIC */
        assert_int_equal((unsigned)head.f_type, (unsigned)TMPFS_MAGIC);
    }
    struct sealed t;
    seal_ticket(ring, &t);
    struct tlsr_keyring *a = NULL;
    assert_int_equal(tlsr_keyring_adopt(fds, &a), TLSR_OK);
    tlsr_keyring_set_clock(a, th_clock_fn, &clk);
    uint32_t r = 0;
    uint32_t l = 0;
    tlsr_keyring_schedule(a, &r, &l);
    assert_int_equal(r, HOUR);
    assert_int_equal(l, 2 * HOUR);
    tlsr_keyring_disown(ring);
    tlsr_keyring_free(ring);
    assert_int_equal(open_ticket(a, &t), TLSR__KEY_CURRENT);
    a->sh->version++;
    int afds[2];
    tlsr_keyring_fds(a, afds);
    struct tlsr_keyring *b = NULL;
    assert_int_equal(tlsr_keyring_adopt(afds, &b), TLSR_E_VERSION);
    assert_null(b);
    a->sh->version--;
    int p[2] = {-1, -1};
    assert_int_equal(pipe(p), 0);
    assert_int_equal(tlsr_keyring_adopt(p, &b), TLSR_E_INVALID);
    close(p[0]);
    close(p[1]);
    tlsr_keyring_free(a);
}

/* --key-memory locked: the keys go to ordinary locked memory, and a ticket still seals. */
static void test_locked_key_memory(void **state)
{
    (void)state;
    struct th_clock clk = {T0};
    tlsr_key_memory_set(TLSR_KEY_MEMORY_LOCKED);
    struct tlsr_keyring *ring = new_ring(&clk, HOUR, 2 * HOUR);
    assert_int_equal(tlsr_key_memory_used(NULL), TLSR_KEY_MEMORY_LOCKED);
    int fds[2];
    tlsr_keyring_fds(ring, fds);
    struct statfs keys;
    assert_int_equal(fstatfs(fds[1], &keys), 0);
    assert_int_equal((unsigned)keys.f_type, (unsigned)TMPFS_MAGIC);
    struct sealed t;
    seal_ticket(ring, &t);
    assert_int_equal(open_ticket(ring, &t), TLSR__KEY_CURRENT);
    tlsr_keyring_free(ring);
    tlsr_key_memory_set(TLSR_KEY_MEMORY_AUTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_rotates_and_retires),
        cmocka_unit_test(test_lapsed_chain_restarts_aligned),
        cmocka_unit_test(test_rotate_now_keeps_old_tickets),
        cmocka_unit_test(test_forced_rotations_keep_old_tickets),
        cmocka_unit_test(test_retired_key_is_wiped),
        cmocka_unit_test(test_failing_source_keeps_keys_held),
        cmocka_unit_test(test_bad_schedules_are_refused),
        cmocka_unit_test(test_every_allocation_failure_is_clean),
        cmocka_unit_test(test_fleet_install_promote_retire),
        cmocka_unit_test(test_fleet_overdue_falls_back_to_local),
        cmocka_unit_test(test_fleet_retired_install),
        cmocka_unit_test(test_keyfile_layouts),
        cmocka_unit_test(test_keyfile_derives_48),
        cmocka_unit_test(test_keyfile_haproxy_order),
        cmocka_unit_test(test_keyfile_rejects_malformed),
        cmocka_unit_test(test_keyring_export_import),
        cmocka_unit_test(test_variant_tickets_open),
        cmocka_unit_test(test_keyfile_text_formats),
        cmocka_unit_test(test_keyring_export_next_after_restart),
        cmocka_unit_test(test_prepare_keeps_key_making_off_handshakes),
        cmocka_unit_test(test_imports_last_and_bounded),
        cmocka_unit_test(test_concurrent_imports_stay_bounded),
        cmocka_unit_test(test_adopt_through_the_memory_files),
        cmocka_unit_test(test_locked_key_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

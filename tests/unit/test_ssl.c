/*
 * Unit tests of the OpenSSL glue (src/lib/ssl): real OpenSSL handshakes over memory BIOs
 * through the shared cache and the key ring, and the session codec on real sessions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

#include "../../src/lib/cache/cache_test.h"
#include "../../src/lib/mem/tlsr_mem.h"
#include "../../src/lib/ssl/sess_codec.h"
#include "../../src/lib/ssl/sni.h"
#include "../lib/helpers.h"

struct fixture {
    struct th_clock clk;
    struct tlsr_cache *cache;
    struct tlsr_keyring *ring;
};

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof(f));
    f.clk.now = (uint64_t)time(NULL);
    if (tlsr_cache_new(1024 * 1024, &f.cache) != TLSR_OK ||
        tlsr_keyring_new(3600, 12 * 3600, &f.ring) != TLSR_OK) {
        return -1;
    }
    tlsr_keyring_set_clock(f.ring, th_clock_fn, &f.clk);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tlsr_cache_free(f->cache);
    tlsr_keyring_free(f->ring);
    return 0;
}

/* A server for one TLS version with the given cache and ring attached. */
static SSL_CTX *server(int version, struct tlsr_cache *cache, struct tlsr_keyring *ring,
                       enum tlsr_tls13_tickets mode)
{
    SSL_CTX *ctx = th_server_ctx(version, version, "localhost");
    assert_non_null(ctx);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = cache;
    o.keyring = ring;
    o.tls13_tickets = mode;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_OK);
    return ctx;
}

static struct tlsr_cache_stats cache_stats(struct tlsr_cache *c)
{
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(c, &st), TLSR_OK);
    return st;
}

static struct tlsr_keyring_stats ring_stats(struct tlsr_keyring *r)
{
    struct tlsr_keyring_stats st;
    assert_int_equal(tlsr_keyring_get_stats(r, &st), TLSR_OK);
    return st;
}

/* A full handshake, then one offering its session; returns the second result. */
static struct th_result resume(SSL_CTX *s, SSL_CTX *c, struct th_result *first)
{
    *first = th_handshake(s, c, NULL);
    assert_true(first->is_ok);
    assert_false(first->is_reused);
    assert_int_equal(first->kind, TLSR_RESUMED_NONE);
    struct th_result second = th_handshake(s, c, first->session);
    assert_true(second.is_ok);
    return second;
}

/* A server with the certificates (and keys) of the given contexts, in that order, attached. */
static SSL_CTX *server_with(SSL_CTX *const *from, size_t n, struct tlsr_cache *cache)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION), 1);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(SSL_CTX_use_certificate(ctx, SSL_CTX_get0_certificate(from[i])), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, SSL_CTX_get0_privatekey(from[i])), 1);
    }
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = cache;
    o.tls13_tickets = TLSR_TLS13_STATEFUL;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_OK);
    return ctx;
}

/* The session ID context of a full handshake whose client takes only sigalgs. */
static void context_of(SSL_CTX *server, const char *sigalgs, uint8_t out[32])
{
    SSL_CTX *client = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    assert_int_equal(SSL_CTX_set1_sigalgs_list(client, sigalgs), 1);
    struct th_result r = th_handshake(server, client, NULL);
    assert_true(r.is_ok);
    unsigned int len = 0;
    const unsigned char *ctx = SSL_SESSION_get0_id_context(r.server_session, &len);
    assert_int_equal(len, 32);
    memcpy(out, ctx, 32);
    th_result_free(&r);
    SSL_CTX_free(client);
}

/* An RSA and an ECDSA certificate in one context (serve's two --cert for one name): either
 * client gets its own, both under one derived session ID context, whatever the order they were
 * loaded in, and not the context of either certificate alone. */
static void test_two_certificates_one_context(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *ec = th_server_ctx(TLS1_3_VERSION, TLS1_3_VERSION, "localhost");
    SSL_CTX *rsa = th_server_ctx_key(TLS1_3_VERSION, TLS1_3_VERSION, "localhost", true);
    SSL_CTX *both[2] = {ec, rsa};
    SSL_CTX *swapped[2] = {rsa, ec};
    SSL_CTX *a = server_with(both, 2, f->cache);
    SSL_CTX *b = server_with(swapped, 2, f->cache);
    SSL_CTX *alone = server_with(both, 1, f->cache);
    uint8_t via_rsa[32], via_ec[32], other_order[32], ec_alone[32];
    context_of(a, "rsa_pss_rsae_sha256", via_rsa);
    context_of(a, "ecdsa_secp256r1_sha256", via_ec);
    context_of(b, "rsa_pss_rsae_sha256", other_order);
    context_of(alone, "ecdsa_secp256r1_sha256", ec_alone);
    assert_memory_equal(via_rsa, via_ec, 32);
    assert_memory_equal(via_rsa, other_order, 32);
    assert_memory_not_equal(via_rsa, ec_alone, 32);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(alone);
    SSL_CTX_free(ec);
    SSL_CTX_free(rsa);
}

static void test_tls12_session_id(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_2_VERSION, f->cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct tlsr_cache_stats before = cache_stats(f->cache);
    struct th_result first;
    struct th_result second = resume(s, c, &first);
    assert_true(second.is_reused);
    assert_int_equal(second.kind, TLSR_RESUMED_ID);
    struct tlsr_cache_stats after = cache_stats(f->cache);
    assert_int_equal(after.inserts - before.inserts, 1);
    assert_int_equal(after.hits - before.hits, 1);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static int user_info_calls;

static void user_info(const SSL *ssl, int where, int ret)
{
    (void)ssl;
    (void)ret;
    user_info_calls += (where & SSL_CB_HANDSHAKE_DONE) != 0;
}

/* The library's info callback (early TLS 1.2 store) chains to the application's own. */
static void test_info_callback_is_chained(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = th_server_ctx(TLS1_2_VERSION, TLS1_2_VERSION, "localhost");
    SSL_CTX_set_info_callback(s, user_info);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = f->cache;
    assert_int_equal(tlsr_ssl_attach(s, &o), TLSR_OK);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    user_info_calls = 0;
    struct tlsr_cache_stats before = cache_stats(f->cache);
    struct th_result first;
    struct th_result second = resume(s, c, &first);
    assert_true(second.is_reused);
    assert_int_equal(user_info_calls, 2);
    assert_int_equal(cache_stats(f->cache).inserts - before.inserts, 1);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_tls12_ticket(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_2_VERSION, NULL, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct tlsr_keyring_stats before = ring_stats(f->ring);
    struct th_result first;
    struct th_result second = resume(s, c, &first);
    assert_true(second.is_reused);
    assert_int_equal(second.kind, TLSR_RESUMED_TICKET);
    struct tlsr_keyring_stats after = ring_stats(f->ring);
    assert_int_equal(after.decrypted - before.decrypted, 1);
    assert_true(after.issued > before.issued);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_tls13_stateless_stores_nothing(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_3_VERSION, f->cache, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct tlsr_cache_stats before = cache_stats(f->cache);
    struct th_result first;
    struct th_result second = resume(s, c, &first);
    assert_true(second.is_reused);
    assert_int_equal(second.kind, TLSR_RESUMED_PSK);
    assert_int_equal(cache_stats(f->cache).inserts, before.inserts);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_tls13_stateful_ticket_is_single_use(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_3_VERSION, f->cache, NULL, TLSR_TLS13_STATEFUL);
    SSL_CTX *c = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct tlsr_cache_stats before = cache_stats(f->cache);
    struct th_result first;
    struct th_result second = resume(s, c, &first);
    assert_true(second.is_reused);
    assert_int_equal(second.kind, TLSR_RESUMED_PSK);
    /* Replaying the same ticket fails: it was taken. */
    struct th_result replay = th_handshake(s, c, first.session);
    assert_true(replay.is_ok);
    assert_false(replay.is_reused);
    /* The ticket issued on resumption works once. */
    struct th_result third = th_handshake(s, c, second.session);
    assert_true(third.is_reused);
    struct tlsr_cache_stats after = cache_stats(f->cache);
    assert_int_equal(after.taken - before.taken, 2);
    th_result_free(&first);
    th_result_free(&second);
    th_result_free(&replay);
    th_result_free(&third);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

/* The first 16 bytes of the client's ticket: the key name. */
static void ticket_name(SSL_SESSION *sess, uint8_t name[16])
{
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(sess, &tick, &len);
    assert_true(len > 16);
    memcpy(name, tick, 16);
}

static void old_key_renews(struct fixture *f, int version, enum tlsr_resumption kind)
{
    SSL_CTX *s = server(version, NULL, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(version, version);
    struct th_result first = th_handshake(s, c, NULL);
    uint8_t old_name[16];
    ticket_name(first.session, old_name);
    struct tlsr_keyring_stats before = ring_stats(f->ring);
    f->clk.now += 3600;
    struct th_result second = th_handshake(s, c, first.session);
    assert_true(second.is_reused);
    assert_int_equal(second.kind, kind);
    uint8_t new_name[16];
    uint8_t current[16];
    ticket_name(second.session, new_name);
    assert_int_equal(tlsr_keyring_current_name(f->ring, current), TLSR_OK);
    assert_memory_not_equal(new_name, old_name, 16);
    assert_memory_equal(new_name, current, 16);
    struct tlsr_keyring_stats after = ring_stats(f->ring);
    assert_int_equal(after.renewed - before.renewed, 1);
    assert_int_equal(after.rotations - before.rotations, 1);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_old_key_resumes_and_renews_tls12(void **state)
{
    old_key_renews(*state, TLS1_2_VERSION, TLSR_RESUMED_TICKET);
}

static void test_old_key_resumes_and_renews_tls13(void **state)
{
    old_key_renews(*state, TLS1_3_VERSION, TLSR_RESUMED_PSK);
}

static void test_unknown_key_is_a_full_handshake(void **state)
{
    struct fixture *f = *state;
    struct tlsr_keyring *other = NULL;
    assert_int_equal(tlsr_keyring_new(3600, 3600, &other), TLSR_OK);
    SSL_CTX *s1 = server(TLS1_2_VERSION, NULL, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *s2 = server(TLS1_2_VERSION, NULL, other, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(s1, c, NULL);
    struct th_result second = th_handshake(s2, c, first.session);
    assert_true(second.is_ok);
    assert_false(second.is_reused);
    assert_int_equal(ring_stats(other).rejected_unknown_key, 1);
    assert_int_equal(second.offer, TLSR_OFFER_TICKET);
    assert_int_equal(second.miss, TLSR_MISS_UNKNOWN_KEY);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s1);
    SSL_CTX_free(s2);
    SSL_CTX_free(c);
    tlsr_keyring_free(other);
}

/* Flips one byte of the ticket inside a client session (through its DER). */
static SSL_SESSION *tamper(SSL_SESSION *sess, size_t offset)
{
    const unsigned char *tick = NULL;
    size_t tick_len = 0;
    SSL_SESSION_get0_ticket(sess, &tick, &tick_len);
    unsigned char der[4096];
    unsigned char *p = der;
    int len = i2d_SSL_SESSION(sess, &p);
    assert_true(len > 0 && (size_t)len <= sizeof(der));
    unsigned char *at = memmem(der, (size_t)len, tick, tick_len);
    assert_non_null(at);
    at[offset] ^= 0x01;
    const unsigned char *q = der;
    SSL_SESSION *out = d2i_SSL_SESSION(NULL, &q, len);
    assert_non_null(out);
    return out;
}

static void test_tampered_ticket_is_rejected(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_2_VERSION, NULL, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(s, c, NULL);
    struct tlsr_keyring_stats before = ring_stats(f->ring);
    SSL_SESSION *bad = tamper(first.session, 40);
    struct th_result second = th_handshake(s, c, bad);
    assert_true(second.is_ok);
    assert_false(second.is_reused);
    struct tlsr_keyring_stats after = ring_stats(f->ring);
    assert_int_equal(after.rejected_bad_mac - before.rejected_bad_mac, 1);
    assert_int_equal(after.decrypted, before.decrypted);
    assert_int_equal(second.offer, TLSR_OFFER_TICKET);
    assert_int_equal(second.miss, TLSR_MISS_BAD_TICKET);
    SSL_SESSION_free(bad);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_expired_ticket_is_rejected(void **state)
{
    struct fixture *f = *state;
    struct tlsr_keyring *ring = NULL;
    /* A week-long period keeps the key alive past the ticket's lifetime (the key would
     * otherwise be wiped, an unknown key, when the ticket came late in a short period). */
    assert_int_equal(tlsr_keyring_new(7 * 86400, 60, &ring), TLSR_OK);
    struct th_clock clk = {(uint64_t)time(NULL)};
    tlsr_keyring_set_clock(ring, th_clock_fn, &clk);
    (void)f;
    SSL_CTX *s = server(TLS1_3_VERSION, NULL, ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct th_result first = th_handshake(s, c, NULL);
    /* From now, not from the clock's start: the session's time is the wall clock's at the
     * handshake, which may be a second later than the start under load (it resumed then). */
    clk.now = (uint64_t)time(NULL) + 61;
    struct th_result second = th_handshake(s, c, first.session);
    assert_true(second.is_ok);
    assert_false(second.is_reused);
    assert_int_equal(ring_stats(ring).rejected_expired, 1);
    assert_int_equal(second.offer, TLSR_OFFER_PSK);
    assert_int_equal(second.miss, TLSR_MISS_EXPIRED);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    tlsr_keyring_free(ring);
}

/* A server of the ring whose session ID context is ctx (len bytes), accepting the n contexts
 * of acc. */
static SSL_CTX *server_in(int version, struct tlsr_keyring *ring, const char *ctx,
                          const struct tlsr_sid_ctx *acc, size_t n)
{
    SSL_CTX *s = th_server_ctx(version, version, "localhost");
    assert_non_null(s);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.keyring = ring;
    o.sid_ctx = (const uint8_t *)ctx;
    o.sid_ctx_len = strlen(ctx);
    o.accept_contexts = acc;
    o.n_accept_contexts = n;
    assert_int_equal(tlsr_ssl_attach(s, &o), TLSR_OK);
    return s;
}

/* Tickets of another server's session ID context (as nginx or Apache issue them under the
 * ring's keys) resume where that context is accepted, re-stamped with ours, and nowhere else:
 * the same server without accept_contexts refuses them (context_mismatch), and so does one
 * accepting a context that is not the ticket's. Both TLS versions. */
static void test_accepted_contexts_resume(void **state)
{
    struct fixture *f = *state;
    struct tlsr_sid_ctx acc[2] = {{.len = 6}, {.len = 4}};
    memcpy(acc[0].bytes, "theirs", 6);
    memcpy(acc[1].bytes, "them", 4);
    for (int version = TLS1_2_VERSION; version <= TLS1_3_VERSION; version++) {
        SSL_CTX *other = server_in(version, f->ring, "theirs", NULL, 0);
        SSL_CTX *ours = server_in(version, f->ring, "ours", acc, 2);
        SSL_CTX *strict = server_in(version, f->ring, "ours", NULL, 0);
        SSL_CTX *wrong = server_in(version, f->ring, "ours", acc + 1, 1);
        SSL_CTX *c = th_client_ctx(version, version);
        struct th_result first = th_handshake(other, c, NULL);
        assert_true(first.is_ok);
        assert_non_null(first.session);
        struct th_result no = th_handshake(strict, c, first.session);
        assert_true(no.is_ok);
        assert_false(no.is_reused);
        assert_int_equal(no.miss, TLSR_MISS_CONTEXT);
        struct th_result no2 = th_handshake(wrong, c, first.session);
        assert_false(no2.is_reused);
        assert_int_equal(no2.miss, TLSR_MISS_CONTEXT);
        /* Never where client certificates are verified: the other server's checks are not
         * ours. */
        SSL_CTX *verifying = server_in(version, f->ring, "ours", acc, 2);
        SSL_CTX_set_verify(verifying, SSL_VERIFY_PEER, NULL);
        struct th_result no3 = th_handshake(verifying, c, first.session);
        assert_true(no3.is_ok);
        assert_false(no3.is_reused);
        assert_int_equal(no3.miss, TLSR_MISS_CONTEXT);
        th_result_free(&no3);
        SSL_CTX_free(verifying);
        struct th_result yes = th_handshake(ours, c, first.session);
        assert_true(yes.is_ok);
        assert_true(yes.is_reused);
        assert_int_equal(yes.kind,
                         version == TLS1_3_VERSION ? TLSR_RESUMED_PSK : TLSR_RESUMED_TICKET);
        unsigned int len = 0;
        const unsigned char *got = SSL_SESSION_get0_id_context(yes.server_session, &len);
        assert_int_equal(len, 4);
        assert_memory_equal(got, "ours", 4); /* re-stamped: it lives on as ours */
        /* The ticket it renewed under ours resumes on the strict server. */
        struct th_result again = th_handshake(strict, c, yes.session);
        assert_true(again.is_reused);
        th_result_free(&first);
        th_result_free(&no);
        th_result_free(&no2);
        th_result_free(&yes);
        th_result_free(&again);
        SSL_CTX_free(other);
        SSL_CTX_free(ours);
        SSL_CTX_free(strict);
        SSL_CTX_free(wrong);
        SSL_CTX_free(c);
    }
}

static void test_sessions_do_not_cross_certificates(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *a = server(TLS1_2_VERSION, f->cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *b = server(TLS1_2_VERSION, f->cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(a, c, NULL);
    struct th_result other = th_handshake(b, c, first.session);
    assert_true(other.is_ok);
    assert_false(other.is_reused);
    assert_int_equal(other.offer, TLSR_OFFER_ID);
    assert_int_equal(other.miss, TLSR_MISS_CACHE); /* the cache is keyed by the context */
    struct th_result same = th_handshake(a, c, first.session);
    assert_true(same.is_reused);
    assert_int_equal(same.offer, TLSR_OFFER_ID);
    assert_int_equal(same.miss, TLSR_MISS_NONE);
    th_result_free(&first);
    th_result_free(&other);
    th_result_free(&same);
    SSL_CTX_free(a);
    SSL_CTX_free(b);
    SSL_CTX_free(c);
}

static void test_corrupt_cache_entry_is_a_counted_miss(void **state)
{
    (void)state;
    struct tlsr_cache *cache = NULL;
    assert_int_equal(tlsr_cache_new(TLSR_CACHE_MIN_BYTES, &cache), TLSR_OK);
    SSL_CTX *s = server(TLS1_2_VERSION, cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(s, c, NULL);
    assert_int_equal(tlsr__cache_corrupt_heads(cache, 20), 1);
    struct th_result second = th_handshake(s, c, first.session);
    assert_true(second.is_ok);
    assert_false(second.is_reused);
    assert_int_equal(cache_stats(cache).corrupt, 1);
    assert_int_equal(second.miss, TLSR_MISS_REJECTED);
    th_result_free(&first);
    th_result_free(&second);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    tlsr_cache_free(cache);
}

static void test_attach_refuses_bad_options(void **state)
{
    struct fixture *f = *state;
    struct tlsr_ssl_opts o;
    SSL_CTX *bare = SSL_CTX_new(TLS_server_method());
    tlsr_ssl_opts_init(&o);
    o.cache = f->cache;
    assert_int_equal(tlsr_ssl_attach(bare, &o), TLSR_E_INVALID);
    assert_non_null(strstr(tlsr_last_error(), "no certificate"));
    SSL_CTX *ctx = th_server_ctx(TLS1_2_VERSION, TLS1_3_VERSION, "localhost");
    o.tls13_tickets = TLSR_TLS13_STATEFUL;
    o.cache = NULL;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    o.cache = f->cache;
    o.keyring = f->ring;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    tlsr_ssl_opts_init(&o);
    o.session_timeout_s = 0;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    o.session_timeout_s = 8 * 86400;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    tlsr_ssl_opts_init(&o);
    o.num_tickets = 17;
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    tlsr_ssl_opts_init(&o);
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_OK);
    assert_int_equal(tlsr_ssl_attach(ctx, &o), TLSR_E_INVALID);
    assert_non_null(strstr(tlsr_last_error(), "already attached"));
    SSL_CTX_free(bare);
    SSL_CTX_free(ctx);
}

static void test_attach_survives_every_allocation_failure(void **state)
{
    struct fixture *f = *state;
    unsigned long failures = 0;
    for (unsigned long n = 1; n < 20; n++) {
        SSL_CTX *ctx = th_server_ctx(TLS1_2_VERSION, TLS1_3_VERSION, "localhost");
        struct tlsr_ssl_opts o;
        tlsr_ssl_opts_init(&o);
        o.cache = f->cache;
        o.keyring = f->ring;
        tlsr__mem_fail_at(n);
        tlsr_status rc = tlsr_ssl_attach(ctx, &o);
        unsigned long made = tlsr__mem_fail_at(0);
        SSL_CTX_free(ctx);
        if (rc == TLSR_OK) {
            assert_true(made < n);
            break;
        }
        assert_int_equal(rc, TLSR_E_NOMEM);
        failures++;
    }
    assert_true(failures >= 1);
}

static void test_sni_parser(void **state)
{
    (void)state;
    char out[TLSR_SNI_MAX + 1];
    static const uint8_t good[] = {0,   14,  0,   0,   11,  'E', 'x', 'a',
                                   'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'};
    assert_int_equal(tlsr__sni_parse(good, sizeof(good), out), TLSR_OK);
    assert_string_equal(out, "example.com");
    /* Every truncation fails; so do a wrong list length, a NUL, a trailing dot, no host_name. */
    for (size_t cut = 0; cut < sizeof(good); cut++) {
        assert_int_equal(tlsr__sni_parse(good, cut, out), TLSR_E_FORMAT);
    }
    static const uint8_t long_list[] = {0,   15,  0,   0,   11,  'e', 'x', 'a',
                                        'm', 'p', 'l', 'e', '.', 'c', 'o', 'm'};
    static const uint8_t nul[] = {0, 6, 0, 0, 3, 'a', 0, 'b'};
    static const uint8_t dot[] = {0, 6, 0, 0, 3, 'a', 'b', '.'};
    static const uint8_t other[] = {0, 6, 1, 0, 3, 'a', 'b', 'c'};
    assert_int_equal(tlsr__sni_parse(long_list, sizeof(long_list), out), TLSR_E_FORMAT);
    assert_int_equal(tlsr__sni_parse(nul, sizeof(nul), out), TLSR_E_FORMAT);
    assert_non_null(strstr(tlsr_last_error(), "0x00"));
    assert_int_equal(tlsr__sni_parse(dot, sizeof(dot), out), TLSR_E_FORMAT);
    assert_int_equal(tlsr__sni_parse(other, sizeof(other), out), TLSR_E_FORMAT);
}

static void codec_roundtrip(int version, size_t max_len)
{
    SSL_CTX *s = th_server_ctx(version, version, "localhost");
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
    static const uint8_t sid_ctx[32] = {1, 2, 3};
    SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx));
    SSL_CTX *c = th_client_ctx(version, version);
    struct th_result r = th_handshake(s, c, NULL);
    assert_true(r.is_ok);
    uint8_t buf[1024];
    size_t len = 0;
    assert_int_equal(tlsr__sess_encode(r.server_session, buf, sizeof(buf), &len), TLSR_OK);
    /* The density of the cache rests on this: one session, one 96-byte slot. */
    assert_true(len <= max_len);
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(r.server_session, &id_len);
    SSL_SESSION *back = NULL;
    assert_int_equal(tlsr__sess_decode(buf, len, id, id_len, sid_ctx, 32, &back), TLSR_OK);
    unsigned char mk1[64];
    unsigned char mk2[64];
    size_t n1 = SSL_SESSION_get_master_key(r.server_session, mk1, sizeof(mk1));
    size_t n2 = SSL_SESSION_get_master_key(back, mk2, sizeof(mk2));
    assert_int_equal(n1, n2);
    assert_memory_equal(mk1, mk2, n1);
    assert_int_equal(SSL_SESSION_get_time(back), SSL_SESSION_get_time(r.server_session));
    assert_int_equal(SSL_SESSION_get_timeout(back), SSL_SESSION_get_timeout(r.server_session));
    unsigned int back_ctx_len = 0;
    SSL_SESSION_get0_id_context(back, &back_ctx_len);
    assert_int_equal(back_ctx_len, 32);
    SSL_SESSION_free(back);
    /* Every truncation, a trailing byte and a foreign format are refused. */
    for (size_t cut = 0; cut < len; cut++) {
        assert_int_equal(tlsr__sess_decode(buf, cut, id, id_len, sid_ctx, 32, &back),
                         TLSR_E_FORMAT);
    }
    buf[len] = 0;
    assert_int_equal(tlsr__sess_decode(buf, len + 1, id, id_len, sid_ctx, 32, &back),
                     TLSR_E_FORMAT);
    buf[0] = 2;
    assert_int_equal(tlsr__sess_decode(buf, len, id, id_len, sid_ctx, 32, &back), TLSR_E_FORMAT);
    assert_non_null(strstr(tlsr_last_error(), "unknown format"));
    th_result_free(&r);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_codec_tls12_fits_one_slot(void **state)
{
    (void)state;
    codec_roundtrip(TLS1_2_VERSION, 96);
}

static void test_codec_tls13_fits_one_slot(void **state)
{
    (void)state;
    codec_roundtrip(TLS1_3_VERSION, 96);
}

/* The resumption chain cap: each resumption hands the client a fresh session, but all of them
 * descend from the first full handshake and stop resuming max_chain_s after it. */
static void chain(struct fixture *f, int version, enum tlsr_tls13_tickets mode,
                  uint32_t max_chain_s, bool is_last_reused)
{
    SSL_CTX *s = th_server_ctx(version, version, "localhost");
    assert_non_null(s);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = f->cache;
    o.keyring = mode == TLSR_TLS13_STATEFUL ? NULL : f->ring;
    o.tls13_tickets = mode;
    o.max_chain_s = max_chain_s;
    assert_int_equal(tlsr_ssl_attach(s, &o), TLSR_OK);
    SSL_CTX *c = th_client_ctx(version, version);
    tlsr_cache_set_clock(f->cache, th_clock_fn, &f->clk);
    uint64_t refused = ring_stats(f->ring).rejected_chain + cache_stats(f->cache).rejected_chain;
    struct th_result r = th_handshake(s, c, NULL);
    assert_true(r.is_ok);
    assert_false(r.is_reused);
    for (int step = 1; step <= 3; step++) {
        f->clk.now += step < 3 ? 100 : 200; /* T+100, T+200: within; T+400: past 300 */
        struct th_result next = th_handshake(s, c, r.session);
        assert_true(next.is_ok);
        assert_int_equal(next.is_reused, step < 3 || is_last_reused);
        assert_int_equal(next.miss, next.is_reused ? TLSR_MISS_NONE : TLSR_MISS_CHAIN);
        th_result_free(&r);
        r = next;
    }
    assert_int_equal(ring_stats(f->ring).rejected_chain + cache_stats(f->cache).rejected_chain,
                     refused + (is_last_reused ? 0 : 1));
    th_result_free(&r);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_chain_cap_tls13_stateless(void **state)
{
    chain(*state, TLS1_3_VERSION, TLSR_TLS13_STATELESS, 300, false);
}

static void test_chain_cap_tls13_stateful(void **state)
{
    chain(*state, TLS1_3_VERSION, TLSR_TLS13_STATEFUL, 300, false);
}

static void test_chain_cap_tls12_ticket(void **state)
{
    chain(*state, TLS1_2_VERSION, TLSR_TLS13_STATELESS, 300, false);
}

/* The control: without a cap the same chain goes on resuming. */
static void test_chain_without_cap_resumes(void **state)
{
    chain(*state, TLS1_3_VERSION, TLSR_TLS13_STATELESS, 0, true);
}

/* A browser-like client: each TLS 1.3 ticket once, always the newest. */
static int browser_resumptions(struct fixture *f, unsigned resume_tickets, int rounds)
{
    SSL_CTX *s = th_server_ctx(TLS1_3_VERSION, TLS1_3_VERSION, "localhost");
    assert_non_null(s);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.keyring = f->ring;
    o.num_tickets = 1;
    o.resume_tickets = resume_tickets;
    assert_int_equal(tlsr_ssl_attach(s, &o), TLSR_OK);
    SSL_CTX *c = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct th_result r = th_handshake_abrupt(s, c, NULL);
    assert_true(r.is_ok);
    SSL_SESSION *unused = r.session; /* the one ticket the client holds */
    r.session = NULL;
    int reused = 0;
    for (int i = 0; i < rounds && unused != NULL; i++) {
        struct th_result next = th_handshake_abrupt(s, c, unused);
        assert_true(next.is_ok);
        assert_int_equal(next.offer, TLSR_OFFER_PSK);
        reused += next.is_reused;
        bool is_new = next.session != NULL && !tlsr_client_same_ticket(next.session, unused);
        SSL_SESSION_free(unused);
        unused = NULL;
        if (is_new) {
            unused = next.session; /* a fresh ticket: the client keeps it for next time */
            next.session = NULL;
        }
        th_result_free(&next);
    }
    SSL_SESSION_free(unused);
    th_result_free(&r);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return reused;
}

static void test_tls13_resumption_renews_the_ticket(void **state)
{
    struct tlsr_keyring_stats before = ring_stats(((struct fixture *)*state)->ring);
    assert_int_equal(browser_resumptions(*state, 1, 5), 5);
    struct tlsr_keyring_stats after = ring_stats(((struct fixture *)*state)->ring);
    assert_int_equal(after.issued - before.issued, 1 + 5); /* one per handshake */
}

/* The control: without renewal, a client that uses each ticket once runs dry. */
static void test_tls13_without_renewal_runs_dry(void **state)
{
    assert_int_equal(browser_resumptions(*state, 0, 5), 1);
}

/* Connections freed without close_notify (after a finished handshake) keep their session:
 * OpenSSL asks to remove it, and the library refuses. */
static void abrupt_keeps(struct fixture *f, int version, struct tlsr_keyring *ring,
                         enum tlsr_resumption kind)
{
    SSL_CTX *s = server(version, f->cache, ring, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(version, version);
    struct th_result first = th_handshake_abrupt(s, c, NULL);
    assert_true(first.is_ok);
    for (int i = 0; i < 5; i++) {
        struct th_result again = th_handshake_abrupt(s, c, first.session);
        assert_true(again.is_ok);
        assert_true(again.is_reused);
        assert_int_equal(again.kind, kind);
        th_result_free(&again);
    }
    th_result_free(&first);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
}

static void test_abrupt_close_keeps_the_session_id(void **state)
{
    abrupt_keeps(*state, TLS1_2_VERSION, NULL, TLSR_RESUMED_ID);
}

static void test_abrupt_close_keeps_the_ticket(void **state)
{
    abrupt_keeps(*state, TLS1_2_VERSION, ((struct fixture *)*state)->ring, TLSR_RESUMED_TICKET);
}

static void test_offer_accounting(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *s = server(TLS1_2_VERSION, f->cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(s, c, NULL);
    assert_int_equal(first.offer, TLSR_OFFER_NONE);
    assert_int_equal(first.miss, TLSR_MISS_NONE);
    /* A server with a cache of its own has never seen the session. */
    struct tlsr_cache *other = NULL;
    assert_int_equal(tlsr_cache_new(TLSR_CACHE_MIN_BYTES, &other), TLSR_OK);
    SSL_CTX *s2 = th_server_ctx(TLS1_2_VERSION, TLS1_2_VERSION, "localhost");
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = other;
    o.sid_ctx = (const uint8_t *)"x";
    o.sid_ctx_len = 1;
    assert_int_equal(tlsr_ssl_attach(s2, &o), TLSR_OK);
    struct th_result miss = th_handshake(s2, c, first.session);
    assert_false(miss.is_reused);
    assert_int_equal(miss.offer, TLSR_OFFER_ID);
    assert_int_equal(miss.miss, TLSR_MISS_CACHE);
    /* TLS 1.3 stateless: a ticket of another ring names no key of ours. */
    struct tlsr_keyring *ring2 = NULL;
    assert_int_equal(tlsr_keyring_new(3600, 3600, &ring2), TLSR_OK);
    SSL_CTX *a = server(TLS1_3_VERSION, NULL, f->ring, TLSR_TLS13_STATELESS);
    SSL_CTX *b = server(TLS1_3_VERSION, NULL, ring2, TLSR_TLS13_STATELESS);
    SSL_CTX *c13 = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct th_result t1 = th_handshake(a, c13, NULL);
    struct th_result t2 = th_handshake(b, c13, t1.session);
    assert_false(t2.is_reused);
    assert_int_equal(t2.offer, TLSR_OFFER_PSK);
    assert_int_equal(t2.miss, TLSR_MISS_UNKNOWN_KEY);
    /* The same ticket at a server of another certificate: decrypted, other context. */
    SSL_CTX *d = server(TLS1_3_VERSION, NULL, f->ring, TLSR_TLS13_STATELESS);
    struct th_result t3 = th_handshake(d, c13, t1.session);
    assert_false(t3.is_reused);
    assert_int_equal(t3.miss, TLSR_MISS_CONTEXT);
    /* A stateful server does not know a stateless ticket. */
    SSL_CTX *st = server(TLS1_3_VERSION, f->cache, NULL, TLSR_TLS13_STATEFUL);
    struct th_result t4 = th_handshake(st, c13, t1.session);
    assert_false(t4.is_reused);
    assert_int_equal(t4.offer, TLSR_OFFER_PSK);
    assert_int_equal(t4.miss, TLSR_MISS_UNKNOWN_KEY);
    struct th_result *all[] = {&first, &miss, &t1, &t2, &t3, &t4};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        th_result_free(all[i]);
    }
    SSL_CTX *ctxs[] = {s, s2, a, b, d, st, c, c13};
    for (size_t i = 0; i < sizeof(ctxs) / sizeof(ctxs[0]); i++) {
        SSL_CTX_free(ctxs[i]);
    }
    tlsr_cache_free(other);
    tlsr_keyring_free(ring2);
}

/* A TLS 1.2 connection resumed, then ended by a fatal alert: the client's (it gets a forged
 * record and answers bad_record_mac) drops the session, as RFC 5246 §7.2.2 requires of an
 * authenticated alert; ours (the server gets the forged record) does not, since anyone on the
 * path can send garbage. */
static bool resumes_after_alert(struct fixture *f, bool is_client_alert)
{
    SSL_CTX *s = server(TLS1_2_VERSION, f->cache, NULL, TLSR_TLS13_STATELESS);
    SSL_CTX *c = th_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
    struct th_result first = th_handshake(s, c, NULL);
    SSL *ss = NULL;
    SSL *cs = NULL;
    BIO *sb = NULL;
    BIO *cb = NULL;
    /* A copy: OpenSSL marks the client's own session object not resumable after an alert. */
    SSL_SESSION *copy = SSL_SESSION_dup(first.session);
    assert_non_null(copy);
    assert_true(th_open(s, c, copy, &ss, &cs, &sb, &cb));
    assert_true(SSL_session_reused(ss));
    static const uint8_t forged[5 + 48] = {23, 3, 3, 0, 48, 0x55};
    uint8_t byte = 0;
    if (is_client_alert) {
        assert_int_equal(BIO_write(sb, forged, sizeof(forged)), sizeof(forged)); /* to client */
        assert_true(SSL_read(cs, &byte, 1) <= 0); /* bad_record_mac, sent to the server */
        assert_true(SSL_read(ss, &byte, 1) <= 0); /* the server reads the fatal alert */
    } else {
        assert_int_equal(BIO_write(cb, forged, sizeof(forged)), sizeof(forged)); /* to server */
        assert_true(SSL_read(ss, &byte, 1) <= 0); /* the server sends a fatal alert */
    }
    ERR_clear_error();
    SSL_free(ss);
    SSL_set_shutdown(cs, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(cs);
    SSL_SESSION_free(copy);
    struct th_result again = th_handshake(s, c, first.session);
    bool is_reused = again.is_reused;
    th_result_free(&first);
    th_result_free(&again);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return is_reused;
}

static void test_fatal_alert_from_the_client_drops_the_session(void **state)
{
    assert_false(resumes_after_alert(*state, true));
}

static void test_fatal_alert_from_the_server_keeps_the_session(void **state)
{
    assert_true(resumes_after_alert(*state, false));
}

/* 0-RTT glue (early.c) on memory BIOs: a server whose strike register runs on a test clock. */
struct early_fixture {
    struct th_clock clk;
    struct tlsr_cache *reg;
    SSL_CTX *server;
    SSL_CTX *client;
    SSL_SESSION *ticket; /* a ticket that allows early data */
};

static int early_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    (void)arg;
    uint8_t key[32];
    tlsr_status rc = tlsr_ssl_client_hello_early(ssl, key);
    (void)rc; /* the outcome is kept on the connection */
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* A TLS 1.3 server with 0-RTT on e's register; under session ID context ctx (NULL: the
 * default) accepting the n contexts acc. */
static SSL_CTX *early_server(struct fixture *f, struct early_fixture *e, bool is_checked,
                             const char *ctx, const struct tlsr_sid_ctx *acc, size_t n)
{
    SSL_CTX *s = th_server_ctx(TLS1_3_VERSION, TLS1_3_VERSION, "localhost");
    assert_non_null(s);
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.keyring = f->ring;
    o.max_early_data = 1024;
    o.early_register = e->reg;
    o.is_early_replay_checked = is_checked;
    if (ctx != NULL) {
        o.sid_ctx = (const uint8_t *)ctx;
        o.sid_ctx_len = strlen(ctx);
    }
    o.accept_contexts = acc;
    o.n_accept_contexts = n;
    assert_int_equal(tlsr_ssl_attach(s, &o), TLSR_OK);
    SSL_CTX_set_client_hello_cb(s, early_hello, NULL);
    return s;
}

static void early_setup(struct fixture *f, struct early_fixture *e, size_t register_bytes,
                        bool is_checked)
{
    memset(e, 0, sizeof(*e));
    e->clk.now = f->clk.now;
    assert_int_equal(tlsr_cache_new(register_bytes, &e->reg), TLSR_OK);
    tlsr_cache_set_clock(e->reg, th_clock_fn, &e->clk);
    e->server = early_server(f, e, is_checked, NULL, NULL, 0);
    e->client = th_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION);
    struct th_result r = th_handshake(e->server, e->client, NULL);
    assert_true(r.is_ok);
    assert_true(SSL_SESSION_get_max_early_data(r.session) > 0);
    e->ticket = r.session;
    r.session = NULL;
    th_result_free(&r);
}

static void early_teardown(struct early_fixture *e)
{
    SSL_SESSION_free(e->ticket);
    SSL_CTX_free(e->server);
    SSL_CTX_free(e->client);
    tlsr_cache_free(e->reg);
}

/* The client's first flight (ClientHello and early data), as a recording relay keeps it. */
static size_t first_flight(struct early_fixture *e, uint8_t *out, size_t cap)
{
    SSL *c = SSL_new(e->client);
    BIO *bs = NULL;
    BIO *bc = NULL;
    BIO_new_bio_pair(&bs, 0, &bc, 0);
    SSL_set_bio(c, bc, bc);
    SSL_set_connect_state(c);
    assert_int_equal(SSL_set_session(c, e->ticket), 1);
    size_t written = 0;
    assert_int_equal(SSL_write_early_data(c, "GET /\n", 6, &written), 1);
    int n = BIO_read(bs, out, (int)cap);
    assert_true(n > 0);
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(c);
    BIO_free(bs);
    return (size_t)n;
}

/* Offers a recorded flight to a new server connection; the outcome and the early bytes read. */
static enum tlsr_early_outcome offer_flight(struct early_fixture *e, const uint8_t *flight,
                                            size_t len, size_t *early_bytes)
{
    SSL *s = SSL_new(e->server);
    BIO *bs = NULL;
    BIO *bc = NULL;
    BIO_new_bio_pair(&bs, 0, &bc, 0);
    SSL_set_bio(s, bs, bs);
    SSL_set_accept_state(s);
    assert_int_equal(BIO_write(bc, flight, (int)len), (int)len);
    *early_bytes = 0;
    uint8_t buf[256];
    for (int i = 0; i < 8; i++) {
        size_t n = 0;
        int r = SSL_read_early_data(s, buf, sizeof(buf), &n);
        *early_bytes += n;
        if (r != SSL_READ_EARLY_DATA_SUCCESS) {
            break; /* finished (rejected or all read), or waiting for the client's Finished */
        }
    }
    enum tlsr_early_outcome o = tlsr_ssl_early_outcome(s);
    ERR_clear_error();
    SSL_set_shutdown(s, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(s);
    BIO_free(bc);
    return o;
}

static void test_early_data_once_then_replay_refused(void **state)
{
    struct early_fixture e;
    early_setup(*state, &e, TLSR_CACHE_MIN_BYTES, true);
    uint8_t flight[4096];
    size_t len = first_flight(&e, flight, sizeof(flight));
    size_t got = 0;
    /* Within the start window the register's memory is young: refused. */
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_REJECTED_STARTING);
    assert_int_equal(got, 0);
    e.clk.now += TLSR_EARLY_WINDOW_MIN_S + 1;
    len = first_flight(&e, flight, sizeof(flight));
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_ACCEPTED);
    assert_int_equal(got, 6);
    /* The same flight again, byte for byte: refused, nothing read. */
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_REJECTED_REPLAY);
    assert_int_equal(got, 0);
    /* A new flight from the same client is new. */
    len = first_flight(&e, flight, sizeof(flight));
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_ACCEPTED);
    early_teardown(&e);
}

/* The control: with the replay check off, the same flight is accepted twice. */
static void test_early_data_replay_accepted_without_the_check(void **state)
{
    struct early_fixture e;
    early_setup(*state, &e, TLSR_CACHE_MIN_BYTES, false);
    uint8_t flight[4096];
    size_t len = first_flight(&e, flight, sizeof(flight));
    size_t got = 0;
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_ACCEPTED);
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_ACCEPTED);
    assert_int_equal(got, 6);
    early_teardown(&e);
}

/* A ticket of another server (an accepted context) resumes, never with 0-RTT: that server's
 * flights are not in our register, so one flight could be accepted at both. The control: a
 * ticket of our own on the same server has its flight accepted. */
static void test_early_data_refused_on_another_servers_ticket(void **state)
{
    struct fixture *f = *state;
    struct early_fixture e;
    early_setup(f, &e, TLSR_CACHE_MIN_BYTES, true);
    e.clk.now += TLSR_EARLY_WINDOW_MIN_S + 1;
    struct tlsr_sid_ctx theirs = {.len = 6};
    memcpy(theirs.bytes, "theirs", 6);
    SSL_CTX *other = early_server(f, &e, true, "theirs", NULL, 0);
    SSL_CTX_free(e.server);
    e.server = early_server(f, &e, true, "ours", &theirs, 1);
    struct th_result from_other = th_handshake(other, e.client, NULL);
    assert_true(SSL_SESSION_get_max_early_data(from_other.session) > 0);
    struct th_result from_ours = th_handshake(e.server, e.client, NULL);
    assert_true(SSL_SESSION_get_max_early_data(from_ours.session) > 0);
    uint8_t flight[4096];
    size_t got = 0;
    SSL_SESSION_free(e.ticket);
    e.ticket = SSL_SESSION_dup(from_other.session);
    size_t len = first_flight(&e, flight, sizeof(flight));
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_REJECTED_OTHER);
    assert_int_equal(got, 0);
    struct th_result resumed = th_handshake(e.server, e.client, from_other.session);
    assert_true(resumed.is_reused); /* the session itself is welcome */
    SSL_SESSION_free(e.ticket);
    e.ticket = SSL_SESSION_dup(from_ours.session);
    len = first_flight(&e, flight, sizeof(flight));
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_ACCEPTED);
    assert_int_equal(got, 6);
    th_result_free(&from_other);
    th_result_free(&from_ours);
    th_result_free(&resumed);
    SSL_CTX_free(other);
    early_teardown(&e);
}

/* An SNI switch, made where serve makes it (the ClientHello callback, before any session is
 * looked at): the lists of the context the connection ends up in decide, not those of the one
 * it arrived on (a session of one virtual host never becomes another's). */
static int switch_ctx(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    return SSL_set_SSL_CTX(ssl, arg) != NULL ? SSL_CLIENT_HELLO_SUCCESS : SSL_CLIENT_HELLO_ERROR;
}

static void test_accepted_contexts_follow_the_sni_context(void **state)
{
    struct fixture *f = *state;
    struct tlsr_sid_ctx theirs = {.len = 6};
    memcpy(theirs.bytes, "theirs", 6);
    for (int version = TLS1_2_VERSION; version <= TLS1_3_VERSION; version++) {
        SSL_CTX *other = server_in(version, f->ring, "theirs", NULL, 0);
        SSL_CTX *front = server_in(version, f->ring, "front", &theirs, 1);
        SSL_CTX *strict = server_in(version, f->ring, "back", NULL, 0);
        SSL_CTX *open = server_in(version, f->ring, "back", &theirs, 1);
        SSL_CTX *c = th_client_ctx(version, version);
        struct th_result first = th_handshake(other, c, NULL);
        assert_non_null(first.session);
        SSL_CTX_set_client_hello_cb(front, switch_ctx, strict);
        struct th_result no = th_handshake(front, c, first.session);
        assert_true(no.is_ok);
        assert_false(no.is_reused);
        assert_int_equal(no.miss, TLSR_MISS_CONTEXT);
        /* The control: the context switched to accepts it. */
        SSL_CTX_set_client_hello_cb(front, switch_ctx, open);
        struct th_result yes = th_handshake(front, c, first.session);
        assert_true(yes.is_reused);
        unsigned int len = 0;
        const unsigned char *got = SSL_SESSION_get0_id_context(yes.server_session, &len);
        assert_int_equal(len, 4);
        assert_memory_equal(got, "back", 4);
        th_result_free(&first);
        th_result_free(&no);
        th_result_free(&yes);
        SSL_CTX_free(other);
        SSL_CTX_free(front);
        SSL_CTX_free(strict);
        SSL_CTX_free(open);
        SSL_CTX_free(c);
    }
}

static void test_early_data_full_register_refuses(void **state)
{
    struct early_fixture e;
    early_setup(*state, &e, TLSR_CACHE_MIN_BYTES, true);
    e.clk.now += TLSR_EARLY_WINDOW_MIN_S + 1;
    /* Fill the register with live records until it refuses one. */
    static const uint8_t label[] = "0-RTT";
    uint8_t key[32] = {0};
    tlsr_status rc = TLSR_OK;
    for (uint32_t i = 0; i < 1000000 && rc == TLSR_OK; i++) {
        memcpy(key, &i, sizeof(i));
        struct tlsr_cache_key k = {label, sizeof(label) - 1, key, sizeof(key)};
        rc = tlsr_cache_record(e.reg, &k, 3600);
    }
    assert_int_equal(rc, TLSR_E_TOOBIG);
    uint8_t flight[4096];
    size_t len = first_flight(&e, flight, sizeof(flight));
    size_t got = 0;
    assert_int_equal(offer_flight(&e, flight, len, &got), TLSR_EARLY_REJECTED_UNAVAILABLE);
    assert_int_equal(got, 0);
    early_teardown(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_certificates_one_context),
        cmocka_unit_test(test_tls12_session_id),
        cmocka_unit_test(test_info_callback_is_chained),
        cmocka_unit_test(test_tls12_ticket),
        cmocka_unit_test(test_tls13_stateless_stores_nothing),
        cmocka_unit_test(test_tls13_stateful_ticket_is_single_use),
        cmocka_unit_test(test_old_key_resumes_and_renews_tls12),
        cmocka_unit_test(test_old_key_resumes_and_renews_tls13),
        cmocka_unit_test(test_unknown_key_is_a_full_handshake),
        cmocka_unit_test(test_tampered_ticket_is_rejected),
        cmocka_unit_test(test_expired_ticket_is_rejected),
        cmocka_unit_test(test_sessions_do_not_cross_certificates),
        cmocka_unit_test(test_accepted_contexts_resume),
        cmocka_unit_test(test_corrupt_cache_entry_is_a_counted_miss),
        cmocka_unit_test(test_attach_refuses_bad_options),
        cmocka_unit_test(test_attach_survives_every_allocation_failure),
        cmocka_unit_test(test_sni_parser),
        cmocka_unit_test(test_codec_tls12_fits_one_slot),
        cmocka_unit_test(test_codec_tls13_fits_one_slot),
        cmocka_unit_test(test_chain_cap_tls13_stateless),
        cmocka_unit_test(test_chain_cap_tls13_stateful),
        cmocka_unit_test(test_chain_cap_tls12_ticket),
        cmocka_unit_test(test_chain_without_cap_resumes),
        cmocka_unit_test(test_tls13_resumption_renews_the_ticket),
        cmocka_unit_test(test_tls13_without_renewal_runs_dry),
        cmocka_unit_test(test_abrupt_close_keeps_the_session_id),
        cmocka_unit_test(test_abrupt_close_keeps_the_ticket),
        cmocka_unit_test(test_offer_accounting),
        cmocka_unit_test(test_fatal_alert_from_the_client_drops_the_session),
        cmocka_unit_test(test_fatal_alert_from_the_server_keeps_the_session),
        cmocka_unit_test(test_early_data_once_then_replay_refused),
        cmocka_unit_test(test_early_data_replay_accepted_without_the_check),
        cmocka_unit_test(test_early_data_full_register_refuses),
        cmocka_unit_test(test_early_data_refused_on_another_servers_ticket),
        cmocka_unit_test(test_accepted_contexts_follow_the_sni_context),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

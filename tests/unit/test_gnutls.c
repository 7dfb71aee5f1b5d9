/*
 * Unit tests of the GnuTLS adapter (src/lib/gnutls): its ClientHello reader, its key derivation,
 * and when it stores a session, on real GnuTLS handshakes over a socket pair.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <gnutls/x509.h>

#include <tlsresume/gnutls.h>

/* A ClientHello body: version, random, session ID, suites, compression, then `ext`. */
static size_t hello(uint8_t *out, const uint8_t *ext, size_t ext_len, int has_ext_block)
{
    size_t n = 0;
    out[n++] = 3;
    out[n++] = 3;
    memset(out + n, 0x11, 32);
    n += 32;
    out[n++] = 0; /* no session ID */
    out[n++] = 0;
    out[n++] = 2;
    out[n++] = 0x13;
    out[n++] = 0x01;
    out[n++] = 1;
    out[n++] = 0;
    if (has_ext_block) {
        out[n++] = (uint8_t)(ext_len >> 8);
        out[n++] = (uint8_t)ext_len;
        memcpy(out + n, ext, ext_len);
        n += ext_len;
    }
    return n;
}

static void test_finds_the_ticket(void **state)
{
    (void)state;
    uint8_t msg[256];
    const uint8_t *t = NULL;
    size_t len = 0;
    /* A TLS 1.2 session_ticket extension (35) after another extension. */
    const uint8_t ext12[] = {0, 10, 0, 2, 0, 0, 0, 35, 0, 4, 't', 'i', 'c', 'k'};
    size_t n = hello(msg, ext12, sizeof(ext12), 1);
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n, &t, &len), TLSR_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(t, "tick", 4);
    /* A TLS 1.3 pre_shared_key (41): identities {"abc", age}, binders {32 bytes}. */
    uint8_t psk[4 + 46] = {0, 41, 0, 46, 0, 9, 0, 3, 'a', 'b', 'c', 0, 0, 0, 1, 0, 33, 32};
    n = hello(msg, psk, sizeof(psk), 1);
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n, &t, &len), TLSR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(t, "abc", 3);
    /* A binder too short for any hash: the PSK parser refuses the ClientHello. */
    psk[17] = 8;
    psk[16] = 9;
    psk[3] = 22;
    n = hello(msg, psk, 4 + 22, 1);
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n, &t, &len), TLSR_E_FORMAT);
    /* An empty session_ticket extension offers nothing. */
    const uint8_t empty[] = {0, 35, 0, 0};
    n = hello(msg, empty, sizeof(empty), 1);
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n, &t, &len), TLSR_E_NOTFOUND);
    /* No extensions at all. */
    n = hello(msg, NULL, 0, 0);
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n, &t, &len), TLSR_E_NOTFOUND);
}

/* Every truncation of a valid ClientHello is refused or finds nothing; never a read past it. */
static void test_truncations(void **state)
{
    (void)state;
    uint8_t msg[256];
    const uint8_t ext12[] = {0, 35, 0, 4, 't', 'i', 'c', 'k'};
    size_t n = hello(msg, ext12, sizeof(ext12), 1);
    for (size_t cut = 0; cut < n; cut++) {
        const uint8_t *t = NULL;
        size_t len = 0;
        tlsr_status rc = tlsr_gnutls_hello_ticket(msg, cut, &t, &len);
        assert_true(rc == TLSR_E_FORMAT || rc == TLSR_E_NOTFOUND);
    }
    /* Trailing bytes after the extensions are malformed. */
    msg[n] = 0;
    const uint8_t *t = NULL;
    size_t len = 0;
    assert_int_equal(tlsr_gnutls_hello_ticket(msg, n + 1, &t, &len), TLSR_E_FORMAT);
}

static void test_ticket_key_is_stable(void **state)
{
    (void)state;
    struct tlsr_key_material k = {.len = 80};
    memset(k.bytes, 0x5a, sizeof(k.bytes));
    uint8_t a[64];
    uint8_t b[64];
    assert_int_equal(tlsr_gnutls_ticket_key(&k, a), TLSR_OK);
    assert_int_equal(tlsr_gnutls_ticket_key(&k, b), TLSR_OK);
    assert_memory_equal(a, b, 64);
    k.bytes[0] ^= 1; /* the name is the salt */
    assert_int_equal(tlsr_gnutls_ticket_key(&k, b), TLSR_OK);
    assert_memory_not_equal(a, b, 64);
    k.len = 48;
    assert_int_equal(tlsr_gnutls_ticket_key(&k, b), TLSR_E_INVALID);
}

/*
 * Handshakes: a GnuTLS client and server over a non-blocking socket pair. The server's writes
 * can be held (EAGAIN), which stops it where its last flight (ChangeCipherSpec, Finished) is
 * queued but not sent: the moment a client could already reconnect elsewhere.
 */
struct end {
    int fd;
    int is_held;
};

struct pair {
    gnutls_session_t c;
    gnutls_session_t s;
    struct end ce;
    struct end se;
};

static gnutls_certificate_credentials_t server_creds;
static gnutls_certificate_credentials_t client_creds;

static ssize_t end_push(gnutls_transport_ptr_t p, const void *buf, size_t len)
{
    struct end *e = p;
    if (e->is_held) {
        errno = EAGAIN;
        return -1;
    }
    return send(e->fd, buf, len, MSG_NOSIGNAL);
}

static ssize_t end_pull(gnutls_transport_ptr_t p, void *buf, size_t len)
{
    struct end *e = p;
    return recv(e->fd, buf, len, 0);
}

/* A self-signed ECDSA certificate for the server, made in memory. */
static int setup_creds(void **state)
{
    (void)state;
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    time_t now = time(NULL);
    const uint8_t serial[] = {1};
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(
                         key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
    assert_int_equal(gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, now + 3600), 0);
    assert_int_equal(
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9), 0);
    assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
    assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&server_creds), 0);
    assert_int_equal(gnutls_certificate_set_x509_key(server_creds, &crt, 1, key), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&client_creds), 0);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return 0;
}

static int teardown_creds(void **state)
{
    (void)state;
    gnutls_certificate_free_credentials(server_creds);
    gnutls_certificate_free_credentials(client_creds);
    return 0;
}

static void end_open(gnutls_session_t s, struct end *e, int fd)
{
    e->fd = fd;
    e->is_held = 0;
    gnutls_transport_set_ptr(s, e);
    gnutls_transport_set_push_function(s, end_push);
    gnutls_transport_set_pull_function(s, end_pull);
}

/* A TLS 1.2 client (tickets as is_ticket says, resuming `resume` when given) and a server
 * attached to o (NULL: GnuTLS alone). */
static void pair_open(struct pair *p, const struct tlsr_gnutls_opts *o, int is_ticket,
                      const gnutls_datum_t *resume)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    unsigned flags = GNUTLS_NONBLOCK | (is_ticket ? 0 : GNUTLS_NO_TICKETS);
    assert_int_equal(gnutls_init(&p->c, GNUTLS_CLIENT | flags), 0);
    assert_int_equal(gnutls_priority_set_direct(p->c, "NORMAL:-VERS-ALL:+VERS-TLS1.2", NULL), 0);
    assert_int_equal(gnutls_credentials_set(p->c, GNUTLS_CRD_CERTIFICATE, client_creds), 0);
    if (resume != NULL) {
        assert_int_equal(gnutls_session_set_data(p->c, resume->data, resume->size), 0);
    }
    end_open(p->c, &p->ce, fds[0]);
    assert_int_equal(gnutls_init(&p->s, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_set_default_priority(p->s), 0);
    assert_int_equal(gnutls_credentials_set(p->s, GNUTLS_CRD_CERTIFICATE, server_creds), 0);
    if (o != NULL) {
        assert_int_equal(tlsr_gnutls_session_attach(p->s, o), TLSR_OK);
    }
    end_open(p->s, &p->se, fds[1]);
}

static void pair_close(struct pair *p)
{
    gnutls_deinit(p->c);
    gnutls_deinit(p->s);
    close(p->ce.fd);
    close(p->se.fd);
}

static int step(gnutls_session_t s)
{
    int rc;
    do {
        rc = gnutls_handshake(s);
    } while (rc == GNUTLS_E_INTERRUPTED);
    return rc;
}

/* Runs both ends until both have finished; fails on any error. */
static void pair_finish(struct pair *p)
{
    int c_rc = GNUTLS_E_AGAIN;
    int s_rc = GNUTLS_E_AGAIN;
    for (int i = 0; i < 50 && (c_rc != 0 || s_rc != 0); i++) {
        if (c_rc != 0) {
            c_rc = step(p->c);
            assert_true(c_rc == 0 || c_rc == GNUTLS_E_AGAIN);
        }
        if (s_rc != 0) {
            s_rc = step(p->s);
            assert_true(s_rc == 0 || s_rc == GNUTLS_E_AGAIN);
        }
    }
    assert_int_equal(c_rc, 0);
    assert_int_equal(s_rc, 0);
}

/* Full TLS 1.2 handshake up to the server's last flight, queued but held back. */
static void pair_hold_server_finished(struct pair *p)
{
    assert_int_equal(step(p->c), GNUTLS_E_AGAIN); /* ClientHello */
    assert_int_equal(step(p->s), GNUTLS_E_AGAIN); /* ServerHello ... ServerHelloDone */
    assert_int_equal(step(p->c), GNUTLS_E_AGAIN); /* key exchange, Finished */
    p->se.is_held = 1;
    assert_int_equal(step(p->s), GNUTLS_E_AGAIN);
    assert_int_equal(gnutls_record_get_direction(p->s), 1); /* stuck writing its Finished */
    p->se.is_held = 0;
}

/* Closes p, then resumes its client's session on a new server session attached to o. */
static void pair_close_and_resume(struct pair *p, const struct tlsr_gnutls_opts *o, int is_ticket)
{
    gnutls_datum_t data;
    assert_int_equal(gnutls_session_get_data2(p->c, &data), 0);
    pair_close(p);
    struct pair again;
    pair_open(&again, o, is_ticket, &data);
    pair_finish(&again);
    assert_true(gnutls_session_is_resumed(again.s));
    pair_close(&again);
    gnutls_free(data.data);
}

static uint64_t cache_inserts(struct tlsr_cache *cache)
{
    struct tlsr_cache_stats st;
    assert_int_equal(tlsr_cache_get_stats(cache, &st), TLSR_OK);
    return st.inserts + st.replaced;
}

/* The session ID is in the cache before the server's Finished leaves, stored once, and
 * resumes on another server session. */
static void test_stores_before_its_finished(void **state)
{
    (void)state;
    struct tlsr_cache *cache = NULL;
    assert_int_equal(tlsr_cache_new(1 << 20, &cache), TLSR_OK);
    struct tlsr_gnutls_opts o;
    tlsr_gnutls_opts_init(&o);
    o.cache = cache;
    struct pair p;
    pair_open(&p, &o, 0, NULL);
    pair_hold_server_finished(&p);
    assert_int_equal(cache_inserts(cache), 1);
    pair_finish(&p);
    assert_int_equal(cache_inserts(cache), 1); /* GnuTLS's own store had nothing to do */
    pair_close_and_resume(&p, &o, 0);
    tlsr_cache_free(cache);
}

static int count_store(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
    (void)key;
    (void)data;
    (*(int *)ptr)++;
    return 0;
}

static gnutls_datum_t no_retrieve(void *ptr, gnutls_datum_t key)
{
    (void)ptr;
    (void)key;
    gnutls_datum_t none = {NULL, 0};
    return none;
}

static int no_remove(void *ptr, gnutls_datum_t key)
{
    (void)ptr;
    (void)key;
    return 0;
}

/* The control: GnuTLS alone stores the session only once its Finished is out. */
static void test_gnutls_alone_stores_after_its_finished(void **state)
{
    (void)state;
    int stored = 0;
    struct pair p;
    pair_open(&p, NULL, 0, NULL);
    gnutls_db_set_ptr(p.s, &stored);
    gnutls_db_set_store_function(p.s, count_store);
    gnutls_db_set_retrieve_function(p.s, no_retrieve); /* GnuTLS stores only with all three */
    gnutls_db_set_remove_function(p.s, no_remove);
    pair_hold_server_finished(&p);
    assert_int_equal(stored, 0);
    pair_finish(&p);
    assert_int_equal(stored, 1);
    pair_close(&p);
}

/* A TLS 1.2 ticket is the session: nothing goes to the cache, as with GnuTLS alone, and the
 * ticket resumes. */
static void test_ticket_sessions_are_not_cached(void **state)
{
    (void)state;
    struct tlsr_cache *cache = NULL;
    struct tlsr_keyring *ring = NULL;
    assert_int_equal(tlsr_cache_new(1 << 20, &cache), TLSR_OK);
    assert_int_equal(tlsr_keyring_new(3600, 3600, &ring), TLSR_OK);
    struct tlsr_gnutls_opts o;
    tlsr_gnutls_opts_init(&o);
    o.cache = cache;
    o.keyring = ring;
    struct pair p;
    pair_open(&p, &o, 1, NULL);
    pair_finish(&p);
    assert_int_equal(cache_inserts(cache), 0);
    pair_close_and_resume(&p, &o, 1);
    tlsr_keyring_free(ring);
    tlsr_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_the_ticket),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_ticket_key_is_stable),
        cmocka_unit_test(test_stores_before_its_finished),
        cmocka_unit_test(test_gnutls_alone_stores_after_its_finished),
        cmocka_unit_test(test_ticket_sessions_are_not_cached),
    };
    return cmocka_run_group_tests(tests, setup_creds, teardown_creds);
}

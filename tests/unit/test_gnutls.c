/* Unit tests of the GnuTLS adapter's ClientHello reader and key derivation (src/lib/gnutls). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_the_ticket),
        cmocka_unit_test(test_truncations),
        cmocka_unit_test(test_ticket_key_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

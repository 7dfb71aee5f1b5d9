/* Unit tests of the error record (src/lib/err) and secure memory (src/lib/mem). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "../../src/lib/err/tlsr_err.h"
#include "../../src/lib/mem/tlsr_mem.h"
#include "../lib/helpers.h"

static void test_message_is_recorded_and_truncated(void **state)
{
    (void)state;
    assert_int_equal(tlsr__err_set(TLSR_E_INVALID, "config.ini:%d: %s", 12, "bad"), TLSR_E_INVALID);
    assert_string_equal(tlsr_last_error(), "config.ini:12: bad");
    char longer[2000];
    memset(longer, 'x', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(tlsr__err_set(TLSR_E_FORMAT, "%s", longer), TLSR_E_FORMAT);
    assert_true(strlen(tlsr_last_error()) < sizeof(longer));
    assert_string_equal(tlsr_strerror(TLSR_E_NOMEM), "out of memory");
    assert_string_equal(tlsr_strerror((tlsr_status)-99), "unknown error");
}

static void test_openssl_queue_is_drained_into_message(void **state)
{
    (void)state;
    ERR_clear_error();
    assert_null(EVP_get_digestbyname("no-such-digest"));
    ERR_raise(ERR_LIB_EVP, EVP_R_UNSUPPORTED_ALGORITHM);
    ERR_raise(ERR_LIB_EVP, EVP_R_BAD_DECRYPT);
    assert_int_equal(tlsr__err_ssl(TLSR_E_CRYPTO, "hashing"), TLSR_E_CRYPTO);
    assert_non_null(strstr(tlsr_last_error(), "hashing: "));
    assert_non_null(strstr(tlsr_last_error(), "unsupported"));
    assert_int_equal(ERR_peek_error(), 0);
}

static void test_secure_memory_locked_nodump_zeroed(void **state)
{
    (void)state;
    void *p = NULL;
    size_t size = 0;
    assert_int_equal(tlsr__secmem_map(100, false, &p, &size), TLSR_OK);
    assert_true(size >= 100);
    assert_true(th_is_locked_nodump(p));
    const uint8_t *bytes = p;
    for (size_t i = 0; i < size; i++) {
        assert_int_equal(bytes[i], 0);
    }
    tlsr__secmem_unmap(p, size);
    assert_int_equal(tlsr__secmem_map(0, false, &p, &size), TLSR_E_INVALID);
}

static void test_failure_injection_counts_and_fails_nth(void **state)
{
    (void)state;
    tlsr__mem_fail_at(2);
    void *a = tlsr__malloc(8);
    void *b = tlsr__malloc(8);
    void *c = tlsr__calloc(1, 8);
    assert_int_equal(tlsr__mem_fail_at(0), 3);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    tlsr__free(a);
    tlsr__free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_is_recorded_and_truncated),
        cmocka_unit_test(test_openssl_queue_is_drained_into_message),
        cmocka_unit_test(test_secure_memory_locked_nodump_zeroed),
        cmocka_unit_test(test_failure_injection_counts_and_fails_nth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

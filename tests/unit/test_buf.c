/* Unit tests of the bounded reader and writer (src/lib/buf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/lib/buf/tlsr_buf.h"

static void test_reads_big_endian_fields(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 9, 9};
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, in, sizeof(in));
    uint8_t a = 0;
    uint16_t b = 0;
    uint32_t c = 0;
    uint64_t d = 0;
    const uint8_t *rest = NULL;
    assert_int_equal(tlsr_rd_u8(&rd, &a), TLSR_OK);
    assert_int_equal(tlsr_rd_u16(&rd, &b), TLSR_OK);
    assert_int_equal(tlsr_rd_u32(&rd, &c), TLSR_OK);
    assert_int_equal(tlsr_rd_u64(&rd, &d), TLSR_OK);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    assert_int_equal(c, 3);
    assert_int_equal(d, 4);
    assert_int_equal(tlsr_rd_left(&rd), 2);
    assert_int_equal(tlsr_rd_bytes(&rd, 2, &rest), TLSR_OK);
    assert_int_equal(rest[1], 9);
    assert_int_equal(tlsr_rd_left(&rd), 0);
}

static void test_short_input_fails_and_consumes_nothing(void **state)
{
    (void)state;
    const uint8_t in[] = {1, 2, 3};
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, in, sizeof(in));
    uint32_t v = 0;
    uint64_t w = 0;
    const uint8_t *p = NULL;
    assert_int_equal(tlsr_rd_u32(&rd, &v), TLSR_E_FORMAT);
    assert_int_equal(tlsr_rd_u64(&rd, &w), TLSR_E_FORMAT);
    assert_int_equal(tlsr_rd_bytes(&rd, 4, &p), TLSR_E_FORMAT);
    assert_int_equal(tlsr_rd_bytes(&rd, SIZE_MAX, &p), TLSR_E_FORMAT);
    assert_int_equal(tlsr_rd_left(&rd), 3);
    assert_non_null(strstr(tlsr_last_error(), "truncated"));
}

static void test_writer_refuses_overflow(void **state)
{
    (void)state;
    uint8_t out[7];
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, sizeof(out));
    uint8_t *p = NULL;
    assert_int_equal(tlsr_wr_u16(&wr, 0x0102), TLSR_OK);
    assert_int_equal(tlsr_wr_u32(&wr, 0x03040506), TLSR_OK);
    assert_int_equal(tlsr_wr_u16(&wr, 1), TLSR_E_TOOBIG);
    assert_int_equal(tlsr_wr_reserve(&wr, SIZE_MAX, &p), TLSR_E_TOOBIG);
    assert_int_equal(tlsr_wr_u8(&wr, 7), TLSR_OK);
    assert_int_equal(tlsr_wr_u8(&wr, 8), TLSR_E_TOOBIG);
    assert_int_equal(tlsr_wr_bytes(&wr, out, 1), TLSR_E_TOOBIG);
    const uint8_t want[] = {1, 2, 3, 4, 5, 6, 7};
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(wr.used, 7);
}

/* Numbers from Redis: digits only, no sign, space or overflow (a PTTL of "-1" is not 2^64 - 1). */
static void test_decimal_reader_is_strict(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(tlsr_dec_u64("0", 1, &v), TLSR_OK);
    assert_int_equal(v, 0);
    assert_int_equal(tlsr_dec_u64("18446744073709551615", 20, &v), TLSR_OK);
    assert_true(v == UINT64_MAX);
    assert_int_equal(tlsr_dec_u64("1234x", 4, &v), TLSR_OK); /* only len bytes are read */
    assert_int_equal(v, 1234);
    const char *bad[] = {"18446744073709551616",
                         "99999999999999999999",
                         "-1",
                         "+1",
                         " 1",
                         "1 ",
                         "1a",
                         "",
                         "123456789012345678901",
                         "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 7;
        assert_int_equal(tlsr_dec_u64(bad[i], strlen(bad[i]), &v), TLSR_E_FORMAT);
        assert_int_equal(v, 7); /* untouched */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_big_endian_fields),
        cmocka_unit_test(test_short_input_fails_and_consumes_nothing),
        cmocka_unit_test(test_writer_refuses_overflow),
        cmocka_unit_test(test_decimal_reader_is_strict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Bounded readers and writers (see tlsr_buf.h). The invariant of a reader is p <= end; of a
 * writer, used <= cap. Every check is in subtraction form so no length can overflow a pointer.
 */
#include "tlsr_buf.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../err/tlsr_err.h"

void tlsr_rd_init(struct tlsr_rd *rd, const uint8_t *data, size_t len)
{
    rd->p = data;
    rd->end = data + len;
}

size_t tlsr_rd_left(const struct tlsr_rd *rd)
{
    return (size_t)(rd->end - rd->p);
}

static tlsr_status rd_uint(struct tlsr_rd *rd, size_t n, uint64_t *out)
{
    if (n > tlsr_rd_left(rd)) {
        return tlsr__err_set(TLSR_E_FORMAT, "truncated input: need %zu bytes, %zu left", n,
                             tlsr_rd_left(rd));
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | rd->p[i];
    }
    rd->p += n;
    *out = v;
    return TLSR_OK;
}

tlsr_status tlsr_rd_u8(struct tlsr_rd *rd, uint8_t *out)
{
    uint64_t v = 0;
    TRY(rd_uint(rd, 1, &v));
    *out = (uint8_t)v;
    return TLSR_OK;
}

tlsr_status tlsr_rd_u16(struct tlsr_rd *rd, uint16_t *out)
{
    uint64_t v = 0;
    TRY(rd_uint(rd, 2, &v));
    *out = (uint16_t)v;
    return TLSR_OK;
}

tlsr_status tlsr_rd_u32(struct tlsr_rd *rd, uint32_t *out)
{
    uint64_t v = 0;
    TRY(rd_uint(rd, 4, &v));
    *out = (uint32_t)v;
    return TLSR_OK;
}

tlsr_status tlsr_rd_u64(struct tlsr_rd *rd, uint64_t *out)
{
    return rd_uint(rd, 8, out);
}

tlsr_status tlsr_rd_bytes(struct tlsr_rd *rd, size_t n, const uint8_t **out)
{
    if (n > tlsr_rd_left(rd)) {
        return tlsr__err_set(TLSR_E_FORMAT, "truncated input: need %zu bytes, %zu left", n,
                             tlsr_rd_left(rd));
    }
    *out = rd->p;
    rd->p += n;
    return TLSR_OK;
}

tlsr_status tlsr_rd_until(struct tlsr_rd *rd, uint8_t delim, const uint8_t **out, size_t *len)
{
    const uint8_t *hit = memchr(rd->p, delim, tlsr_rd_left(rd));
    if (hit == NULL) {
        return tlsr__err_set(TLSR_E_FORMAT, "truncated input: no delimiter 0x%02x", delim);
    }
    *out = rd->p;
    *len = (size_t)(hit - rd->p);
    rd->p = hit + 1;
    return TLSR_OK;
}

void tlsr_rd_rest(struct tlsr_rd *rd, const uint8_t **out, size_t *len)
{
    *out = rd->p;
    *len = tlsr_rd_left(rd);
    rd->p = rd->end;
}

void tlsr_wr_init(struct tlsr_wr *wr, uint8_t *buf, size_t cap)
{
    wr->base = buf;
    wr->used = 0;
    wr->cap = cap;
}

tlsr_status tlsr_wr_reserve(struct tlsr_wr *wr, size_t n, uint8_t **out)
{
    if (n > wr->cap - wr->used) {
        return tlsr__err_set(TLSR_E_TOOBIG, "output full: need %zu bytes, %zu free", n,
                             wr->cap - wr->used);
    }
    *out = wr->base + wr->used;
    wr->used += n;
    return TLSR_OK;
}

static tlsr_status wr_uint(struct tlsr_wr *wr, size_t n, uint64_t v)
{
    uint8_t *p;
    TRY(tlsr_wr_reserve(wr, n, &p));
    for (size_t i = 0; i < n; i++) {
        p[n - 1 - i] = (uint8_t)(v >> (8 * i));
    }
    return TLSR_OK;
}

tlsr_status tlsr_wr_u8(struct tlsr_wr *wr, uint8_t v)
{
    return wr_uint(wr, 1, v);
}

tlsr_status tlsr_wr_u16(struct tlsr_wr *wr, uint16_t v)
{
    return wr_uint(wr, 2, v);
}

tlsr_status tlsr_wr_u32(struct tlsr_wr *wr, uint32_t v)
{
    return wr_uint(wr, 4, v);
}

tlsr_status tlsr_wr_u64(struct tlsr_wr *wr, uint64_t v)
{
    return wr_uint(wr, 8, v);
}

tlsr_status tlsr_wr_bytes(struct tlsr_wr *wr, const uint8_t *data, size_t n)
{
    uint8_t *p;
    TRY(tlsr_wr_reserve(wr, n, &p));
    if (n > 0) {
        memcpy(p, data, n);
    }
    return TLSR_OK;
}

tlsr_status tlsr_dec_u64(const char *s, size_t len, uint64_t *out)
{
    ENSURE(s != NULL && len >= 1 && len <= 20, TLSR_E_FORMAT, "a number of %zu digits", len);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned d = (unsigned)(uint8_t)s[i] - '0';
        ENSURE(d <= 9, TLSR_E_FORMAT, "a number with byte 0x%02x at %zu", (uint8_t)s[i], i);
        ENSURE(v <= (UINT64_MAX - d) / 10, TLSR_E_FORMAT, "a number over 2^64 - 1");
        v = v * 10 + d;
    }
    *out = v;
    return TLSR_OK;
}

void tlsr__hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

tlsr_status tlsr__b64_decode(const uint8_t *b64, size_t len, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    ENSURE(len >= 4 && len % 4 == 0 && len <= INT_MAX, TLSR_E_FORMAT,
           "%zu base64 bytes: not a whole number of 4-byte groups", len);
    ENSURE(len / 4 * 3 <= cap + 2, TLSR_E_TOOBIG, "%zu base64 bytes: too long", len);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = b64[i];
        /* '=' only as the last byte, or as the last two. */
        bool is_pad = c == '=' && (i == len - 1 || (i == len - 2 && b64[len - 1] == '='));
        bool is_alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        ENSURE(is_alnum || c == '+' || c == '/' || is_pad, TLSR_E_FORMAT,
               "byte %zu (0x%02x) is not base64", i + 1, c);
    }
    size_t n = len / 4 * 3 - (b64[len - 1] == '=') - (b64[len - 2] == '=');
    ENSURE(n <= cap, TLSR_E_TOOBIG, "%zu decoded bytes: too long", n);
    uint8_t tmp[3];
    for (size_t i = 0; i < len; i += 4) {
        /* Quantum by quantum, so the output never needs the padding's room. */
        if (EVP_DecodeBlock(tmp, b64 + i, 4) != 3) {
            OPENSSL_cleanse(tmp, sizeof(tmp));
            return tlsr__err_set(TLSR_E_FORMAT, "bad base64");
        }
        size_t at = i / 4 * 3;
        size_t take = n - at < 3 ? n - at : 3;
        memcpy(out + at, tmp, take);
    }
    OPENSSL_cleanse(tmp, sizeof(tmp));
    *out_len = n;
    return TLSR_OK;
}

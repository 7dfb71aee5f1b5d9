/*
 * Bounded readers and writers: the only way library code reads bytes that came from outside
 * (peers, tickets, cache slots, files) or writes into a fixed buffer. Shared by every module
 * (listed in docs/DESIGN.md).
 *
 * A reader is a [p, end) window. Each tlsr_rd_* call checks the remaining length first and
 * fails with TLSR_E_FORMAT on short input, leaving the reader unchanged. Integers are big-endian
 * (network order). A writer carries a capacity and fails with TLSR_E_TOOBIG when full.
 */
#ifndef TLSR_BUF_H
#define TLSR_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <tlsresume/error.h>

struct tlsr_rd {
    const uint8_t *p;
    const uint8_t *end;
};

struct tlsr_wr {
    uint8_t *base;
    size_t used;
    size_t cap;
};

void tlsr_rd_init(struct tlsr_rd *rd, const uint8_t *data, size_t len);
size_t tlsr_rd_left(const struct tlsr_rd *rd);
TLSR_MUST_CHECK tlsr_status tlsr_rd_u8(struct tlsr_rd *rd, uint8_t *out);
TLSR_MUST_CHECK tlsr_status tlsr_rd_u16(struct tlsr_rd *rd, uint16_t *out);
TLSR_MUST_CHECK tlsr_status tlsr_rd_u32(struct tlsr_rd *rd, uint32_t *out);
TLSR_MUST_CHECK tlsr_status tlsr_rd_u64(struct tlsr_rd *rd, uint64_t *out);
/* Borrows n bytes: *out points into the reader's buffer. */
TLSR_MUST_CHECK tlsr_status tlsr_rd_bytes(struct tlsr_rd *rd, size_t n, const uint8_t **out);
/* Borrows the bytes up to the first `delim` (excluded) and consumes the delimiter too.
 * TLSR_E_FORMAT when no delimiter is left. */
TLSR_MUST_CHECK tlsr_status tlsr_rd_until(struct tlsr_rd *rd, uint8_t delim, const uint8_t **out,
                                          size_t *len);
/* Borrows everything left. */
void tlsr_rd_rest(struct tlsr_rd *rd, const uint8_t **out, size_t *len);

void tlsr_wr_init(struct tlsr_wr *wr, uint8_t *buf, size_t cap);
TLSR_MUST_CHECK tlsr_status tlsr_wr_u8(struct tlsr_wr *wr, uint8_t v);
TLSR_MUST_CHECK tlsr_status tlsr_wr_u16(struct tlsr_wr *wr, uint16_t v);
TLSR_MUST_CHECK tlsr_status tlsr_wr_u32(struct tlsr_wr *wr, uint32_t v);
TLSR_MUST_CHECK tlsr_status tlsr_wr_u64(struct tlsr_wr *wr, uint64_t v);
TLSR_MUST_CHECK tlsr_status tlsr_wr_bytes(struct tlsr_wr *wr, const uint8_t *data, size_t n);
/*
 * Reads a decimal number of 1 to 20 ASCII digits (s, len: not NUL-terminated), as Redis and
 * its scripts return them: no sign, space or other byte, no overflow. TLSR_E_FORMAT else.
 */
TLSR_MUST_CHECK tlsr_status tlsr_dec_u64(const char *s, size_t len, uint64_t *out);
/*
 * Decodes strict base64 (RFC 4648 §4: whole quanta, '=' only as the last one or two bytes, no
 * white space) into out (cap bytes) and sets *out_len. TLSR_E_FORMAT names the first bad byte;
 * TLSR_E_TOOBIG when it does not fit. Wipes its scratch copy (callers decode secrets).
 */
TLSR_MUST_CHECK tlsr_status tlsr__b64_decode(const uint8_t *b64, size_t len, uint8_t *out,
                                             size_t cap, size_t *out_len);
/* n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
void tlsr__hex(const uint8_t *in, size_t n, char *out);
/* Reserves n bytes and returns where to write them (for encoders that write in place). */
TLSR_MUST_CHECK tlsr_status tlsr_wr_reserve(struct tlsr_wr *wr, size_t n, uint8_t **out);

#endif

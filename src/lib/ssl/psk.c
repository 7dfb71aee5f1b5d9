/*
 * Parsers of the two ClientHello extensions the fleet lookup reads before OpenSSL does:
 * pre_shared_key (RFC 8446 §4.2.11) and supported_versions (§4.2.1).
 *
 * Layout of pre_shared_key in a ClientHello:
 *     identities<7..2^16-1>  = { identity<1..2^16-1>, obfuscated_ticket_age u32 }+
 *     binders<33..2^16-1>    = { binder<32..255> }+
 * Threat: these bytes come from an unauthenticated peer; every length is checked against
 * what is left, and the binders are only walked, never used (OpenSSL verifies them).
 */
#include "psk.h"

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

/* Walks the whole extension; sets the first identity and the first binder. */
static tlsr_status parse(const uint8_t *ext, size_t len, const uint8_t **id, size_t *id_len,
                         const uint8_t **binder, size_t *binder_len)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, ext, len);
    uint16_t ids_len = 0;
    const uint8_t *ids = NULL;
    TRY(tlsr_rd_u16(&rd, &ids_len));
    ENSURE(ids_len >= 7, TLSR_E_FORMAT, "pre_shared_key: identities of %u bytes", ids_len);
    TRY(tlsr_rd_bytes(&rd, ids_len, &ids));
    uint16_t binders_len = 0;
    const uint8_t *binders = NULL;
    TRY(tlsr_rd_u16(&rd, &binders_len));
    ENSURE(binders_len >= 33, TLSR_E_FORMAT, "pre_shared_key: binders of %u bytes", binders_len);
    TRY(tlsr_rd_bytes(&rd, binders_len, &binders));
    ENSURE(tlsr_rd_left(&rd) == 0, TLSR_E_FORMAT, "pre_shared_key: %zu trailing bytes",
           tlsr_rd_left(&rd));

    struct tlsr_rd brd;
    tlsr_rd_init(&brd, binders, binders_len);
    size_t n_binders = 0;
    while (tlsr_rd_left(&brd) > 0) {
        uint8_t blen = 0;
        const uint8_t *b = NULL;
        TRY(tlsr_rd_u8(&brd, &blen));
        ENSURE(blen >= 32, TLSR_E_FORMAT, "pre_shared_key: binder of %u bytes", blen);
        TRY(tlsr_rd_bytes(&brd, blen, &b));
        if (n_binders == 0) {
            *binder = b;
            *binder_len = blen;
        }
        n_binders++;
    }

    struct tlsr_rd ird;
    tlsr_rd_init(&ird, ids, ids_len);
    size_t n_ids = 0;
    while (tlsr_rd_left(&ird) > 0) {
        uint16_t l = 0;
        const uint8_t *p = NULL;
        uint32_t age = 0;
        TRY(tlsr_rd_u16(&ird, &l));
        ENSURE(l >= 1, TLSR_E_FORMAT, "pre_shared_key: empty identity");
        TRY(tlsr_rd_bytes(&ird, l, &p));
        TRY(tlsr_rd_u32(&ird, &age));
        if (n_ids == 0) {
            *id = p;
            *id_len = l;
        }
        n_ids++;
    }
    ENSURE(n_ids == n_binders, TLSR_E_FORMAT, "pre_shared_key: %zu identities, %zu binders", n_ids,
           n_binders);
    return TLSR_OK;
}

tlsr_status tlsr__psk_first_identity(const uint8_t *ext, size_t len, const uint8_t **id,
                                     size_t *id_len)
{
    const uint8_t *binder = NULL;
    size_t binder_len = 0;
    return parse(ext, len, id, id_len, &binder, &binder_len);
}

tlsr_status tlsr__psk_first_binder(const uint8_t *ext, size_t len, const uint8_t **binder,
                                   size_t *binder_len)
{
    const uint8_t *id = NULL;
    size_t id_len = 0;
    return parse(ext, len, &id, &id_len, binder, binder_len);
}

int tlsr__versions_has_tls13(const uint8_t *ext, size_t len)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, ext, len);
    uint8_t list_len = 0;
    if (tlsr_rd_u8(&rd, &list_len) != TLSR_OK || list_len != tlsr_rd_left(&rd) ||
        list_len % 2 != 0) {
        return 0;
    }
    while (tlsr_rd_left(&rd) > 0) {
        uint16_t v = 0;
        if (tlsr_rd_u16(&rd, &v) != TLSR_OK) {
            return 0;
        }
        if (v == 0x0304) {
            return 1;
        }
    }
    return 0;
}

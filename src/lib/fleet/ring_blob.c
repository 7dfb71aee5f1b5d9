/*
 * Ring keys as Redis holds them: sealed (AES-256-GCM, secret.c) under the wrap key derived from
 * the fleet key, with an AAD that binds each blob to its place, so that a blob moved to another
 * generation or import id does not open.
 *
 *     ring key   AAD "tlsresume ticket key v1" | u64 generation; plain: name(16) | AES(32) |
 *                HMAC(32) = 80 bytes
 *     import     AAD "tlsresume imported key v1|" id; plain: size byte (48 or 80) | the key
 *
 * Threat: keys readable in Redis (sealed), blobs swapped between places (the AAD), a blob of
 * the wrong size (refused, never truncated); plaintext copies are wiped before return.
 */
#include "ring_int.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

static size_t key_aad(uint64_t gen, uint8_t out[64])
{
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, 64);
    if (tlsr_wr_bytes(&wr, (const uint8_t *)KEY_LABEL, strlen(KEY_LABEL)) != TLSR_OK ||
        tlsr_wr_u64(&wr, gen) != TLSR_OK) {
        return 0;
    }
    return wr.used;
}

static size_t import_aad(const char *id, uint8_t out[96])
{
    int n = snprintf((char *)out, 96, "%s|%s", IMPORT_LABEL, id);
    return n > 0 && n < 96 ? (size_t)n : 0;
}

tlsr_status tlsr__ring_seal_key(const struct tlsr_fleet_secret *s, uint64_t gen,
                                const uint8_t *plain, size_t len, uint8_t blob[KEY_BLOB_LEN],
                                size_t *blob_len)
{
    ENSURE(len == KEY_PLAIN_LEN, TLSR_E_FORMAT, "fleet: a ring key of %zu bytes", len);
    uint8_t aad[64];
    size_t aad_len = key_aad(gen, aad);
    return tlsr__fleet_seal(s->wrap_key, aad, aad_len, plain, len, blob, KEY_BLOB_LEN, blob_len);
}

tlsr_status tlsr__ring_seal_import(const struct tlsr_fleet_secret *s, const char *id,
                                   const struct tlsr_key_material *key,
                                   uint8_t blob[1 + KEY_BLOB_LEN], size_t *blob_len)
{
    ENSURE(key->len == 48 || key->len == 80, TLSR_E_INVALID, "fleet: import: a 48- or 80-byte key");
    uint8_t aad[96];
    size_t aad_len = import_aad(id, aad);
    uint8_t plain[1 + KEY_PLAIN_LEN];
    plain[0] = key->len;
    memcpy(plain + 1, key->bytes, key->len);
    tlsr_status rc = tlsr__fleet_seal(s->wrap_key, aad, aad_len, plain, 1u + key->len, blob,
                                      1 + KEY_BLOB_LEN, blob_len);
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

/* Opens a sealed key: a generation's (80 bytes) or an import's (48 or 80, after a size byte). */
static tlsr_status open_blob(const struct tlsr_fleet_secret *s, const uint8_t *aad, size_t aad_len,
                             const uint8_t *blob, size_t len, struct tlsr_key_material *out)
{
    uint8_t plain[1 + KEY_PLAIN_LEN];
    size_t plain_len = 0;
    TRY(tlsr__fleet_open(s->wrap_key, aad, aad_len, blob, len, plain, sizeof(plain), &plain_len));
    tlsr_status rc = TLSR_OK;
    memset(out, 0, sizeof(*out));
    if (plain_len == KEY_PLAIN_LEN) {
        out->len = KEY_PLAIN_LEN;
        memcpy(out->bytes, plain, KEY_PLAIN_LEN);
    } else if (plain_len >= 1 && (plain[0] == 48 || plain[0] == 80) && plain_len - 1 == plain[0]) {
        out->len = plain[0];
        memcpy(out->bytes, plain + 1, plain[0]);
    } else {
        rc = tlsr__err_set(TLSR_E_FORMAT, "fleet ticket key: %zu bytes", plain_len);
    }
    OPENSSL_cleanse(plain, sizeof(plain));
    return rc;
}

tlsr_status tlsr__ring_open_key(const struct tlsr_fleet_secret *s, uint64_t gen,
                                const uint8_t *blob, size_t len, struct tlsr_ticket_key *out)
{
    uint8_t aad[64];
    size_t aad_len = key_aad(gen, aad);
    struct tlsr_key_material m;
    TRY(open_blob(s, aad, aad_len, blob, len, &m));
    tlsr_status rc = TLSR_OK;
    if (m.len != KEY_PLAIN_LEN) {
        rc = tlsr__err_set(TLSR_E_FORMAT, "fleet ticket key: %u bytes", m.len);
    } else {
        memcpy(out->name, m.bytes, TLSR_TICKET_NAME_LEN);
        memcpy(out->aes_key, m.bytes + TLSR_TICKET_NAME_LEN, TLSR_TICKET_AES_LEN);
        memcpy(out->hmac_key, m.bytes + TLSR_TICKET_NAME_LEN + TLSR_TICKET_AES_LEN,
               TLSR_TICKET_HMAC_LEN);
    }
    OPENSSL_cleanse(&m, sizeof(m));
    return rc;
}

tlsr_status tlsr__ring_open_import(const struct tlsr_fleet_secret *s, const char *id,
                                   const uint8_t *blob, size_t len, struct tlsr_key_material *out)
{
    uint8_t aad[96];
    size_t aad_len = import_aad(id, aad);
    return open_blob(s, aad, aad_len, blob, len, out);
}

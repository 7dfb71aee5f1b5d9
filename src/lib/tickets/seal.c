/*
 * The cipher side of the ticket key ring: sets up OpenSSL's cipher and MAC contexts for the
 * RFC 5077 ticket layout (key_name[16] | IV[16] | AES-256-CBC(session) | HMAC-SHA256), which
 * OpenSSL 3.0 then applies. Only a CBC cipher works here (OpenSSL computes the ticket length
 * from the block size), hence AES-256-CBC with encrypt-then-MAC.
 *
 * Key material is read under the ring lock and handed straight to OpenSSL, which copies it into
 * the contexts and wipes them when the handshake frees them. The one other copy: a ticket under
 * a key's 48-byte variant copies that key to the stack, derives the variant outside the lock and
 * wipes both.
 */
#include "keyring_int.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "../err/tlsr_err.h"

static tlsr_status setup(struct tlsr_keyring *ring, const struct kr_key *k, const uint8_t *iv,
                         int is_enc, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    /* A key imported from a 48-byte format: AES-128 and a 16-byte HMAC key, as its server. */
    size_t hmac_len = k->is_48 ? 16 : sizeof(k->k.hmac_key);
    const EVP_CIPHER *cipher = k->is_48 ? ring->aes128_cbc : ring->aes_cbc;
    OSSL_PARAM params[3];
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->k.hmac_key, hmac_len);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    ERR_clear_error();
    if (EVP_CipherInit_ex(cctx, cipher, NULL, k->k.aes_key, iv, is_enc) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "ticket keys: cipher setup failed");
    }
    if (EVP_MAC_CTX_set_params(hctx, params) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "ticket keys: MAC setup failed");
    }
    return TLSR_OK;
}

tlsr_status tlsr__keyring_seal_setup(struct tlsr_keyring *ring, uint8_t name[TLSR_TICKET_NAME_LEN],
                                     uint8_t iv[16], EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx)
{
    if (RAND_bytes(iv, 16) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "ticket keys: no randomness for the IV");
    }
    TRY(tlsr__keyring_lock(ring));
    uint64_t now = ring->clock(ring->clock_arg);
    tlsr_status rc = tlsr__keyring_maintain(ring, now, KR_FOR_HANDSHAKE);
    struct kr_key *k = tlsr__keyring_current(ring->sh, now);
    if (k == NULL) {
        /* The source failed and no key covers now: issue no ticket rather than a weak one. */
        rc = tlsr__err_set(TLSR_E_NOTFOUND, "ticket keys: no current key");
        goto out;
    }
    memcpy(name, k->k.name, TLSR_TICKET_NAME_LEN);
    rc = setup(ring, k, iv, 1, cctx, hctx);
    if (rc == TLSR_OK) {
        __atomic_add_fetch(&ring->sh->counters[KR_ISSUED], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&k->issued, 1, __ATOMIC_RELAXED);
    }
out:
    tlsr__keyring_unlock(ring);
    return rc;
}

/* The 48-byte variant of an 80-byte key, as `keys export` writes it for nginx48, Apache and Node
 * (tlsr_key_material_to48), in a slot of its own kind. */
static tlsr_status variant_of(const struct kr_key *k, struct kr_key *out)
{
    struct tlsr_key_material m = {.len = 80};
    struct tlsr_key_material d;
    _Static_assert(sizeof(k->k) == 80, "name | aes | hmac, as the material's order");
    memcpy(m.bytes, &k->k, 80);
    tlsr_status rc = tlsr_key_material_to48(&m, &d);
    memset(out, 0, sizeof(*out));
    if (rc == TLSR_OK) {
        out->state = KEY_LIVE;
        out->is_48 = 1;
        memcpy(out->k.name, d.bytes, TLSR_TICKET_NAME_LEN);
        memcpy(out->k.aes_key, d.bytes + 16, 16);
        memcpy(out->k.hmac_key, d.bytes + 32, 16);
    }
    OPENSSL_cleanse(&m, sizeof(m));
    OPENSSL_cleanse(&d, sizeof(d));
    return rc;
}

/* The live 80-byte key whose 48-byte variant is called name, or NULL. Every slot's variant name
 * is compared, in constant time; a name not yet known for a slot is derived once. */
static struct kr_key *find_variant(struct tlsr_keyring *ring, const uint8_t *name)
{
    struct kr_shared *sh = ring->sh;
    struct kr_key *found = NULL;
    for (uint32_t i = 0; i < sh->capacity && i < TLSR_KEYRING_MAX_KEYS; i++) {
        struct kr_key *k = &sh->keys[i];
        struct kr_variant *v = &ring->variants[i];
        if (k->state != KEY_LIVE || k->is_48) {
            continue;
        }
        if (!v->is_set || CRYPTO_memcmp(v->of, k->k.name, TLSR_TICKET_NAME_LEN) != 0) {
            struct kr_key tmp;
            v->is_set = variant_of(k, &tmp) == TLSR_OK;
            memcpy(v->of, k->k.name, TLSR_TICKET_NAME_LEN);
            memcpy(v->name, tmp.k.name, TLSR_TICKET_NAME_LEN);
            OPENSSL_cleanse(&tmp, sizeof(tmp));
        }
        if (v->is_set && CRYPTO_memcmp(v->name, name, TLSR_TICKET_NAME_LEN) == 0) {
            found = k;
        }
    }
    return found;
}

tlsr_status tlsr__keyring_open_setup(struct tlsr_keyring *ring,
                                     const uint8_t name[TLSR_TICKET_NAME_LEN], const uint8_t iv[16],
                                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
                                     enum tlsr__key_match *match)
{
    *match = TLSR__KEY_UNKNOWN;
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    /* A maintenance failure (key source down) must not stop decryption with the keys held. */
    (void)tlsr__keyring_maintain(ring, now, KR_FOR_HANDSHAKE);
    struct kr_key *found = NULL;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        /* Compare every name, in constant time, without stopping at the first match. */
        int is_same = CRYPTO_memcmp(k->k.name, name, TLSR_TICKET_NAME_LEN) == 0;
        if (is_same && k->state == KEY_LIVE) {
            found = k;
        }
    }
    tlsr_status rc = TLSR_OK;
    if (found == NULL) {
        /* A ticket another server issued under the 48-byte variant of one of our keys: opened
         * (decrypt-only, so renewed under our current key). */
        struct kr_key *of = find_variant(ring, name);
        if (of == NULL) {
            __atomic_add_fetch(&sh->counters[KR_UNKNOWN], 1, __ATOMIC_RELAXED);
            goto out;
        }
        __atomic_add_fetch(&of->presented, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&sh->counters[KR_VARIANTS], 1, __ATOMIC_RELAXED);
        /* The derivation (an HKDF) runs outside the lock every worker's handshakes take. */
        struct kr_key src = *of;
        tlsr__keyring_unlock(ring);
        struct kr_key variant;
        rc = variant_of(&src, &variant);
        OPENSSL_cleanse(&src, sizeof(src));
        if (rc == TLSR_OK) {
            rc = setup(ring, &variant, iv, 0, cctx, hctx);
        }
        OPENSSL_cleanse(&variant, sizeof(variant));
        if (rc == TLSR_OK) {
            *match = TLSR__KEY_VARIANT;
        }
        return rc;
    }
    __atomic_add_fetch(&found->presented, 1, __ATOMIC_RELAXED);
    rc = setup(ring, found, iv, 0, cctx, hctx);
    if (rc == TLSR_OK) {
        /* Keys still encrypting or about to: resume as is. Older ones: renew the ticket. */
        *match = found->enc_until > now ? TLSR__KEY_CURRENT : TLSR__KEY_OLD;
    }
out:
    tlsr__keyring_unlock(ring);
    return rc;
}

/*
 * What the ssl module needs from the key ring to run OpenSSL's ticket key callback (listed in
 * docs/DESIGN.md). Everything else about the ring is private to src/lib/tickets.
 */
#ifndef TLSR_KEYRING_GLUE_H
#define TLSR_KEYRING_GLUE_H

#include <stdint.h>

#include <openssl/evp.h>

#include <tlsresume/tickets.h>

/* Which key a decrypting ticket named. */
enum tlsr__key_match {
    TLSR__KEY_UNKNOWN = 0, /* no live key has that name */
    TLSR__KEY_CURRENT = 1, /* the encrypting key or the next one: resume as is */
    TLSR__KEY_OLD = 2,     /* a decrypt-only key: resume and renew */
    TLSR__KEY_VARIANT = 3, /* the 48-byte variant of a key (another server's): renew */
};

/*
 * Sets up cctx/hctx to seal a new ticket under the current key: writes the key name and a
 * fresh IV. Errors: TLSR_E_NOTFOUND (no current key: the key source failed; issue no ticket),
 * TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr__keyring_seal_setup(struct tlsr_keyring *ring,
                                                     uint8_t name[TLSR_TICKET_NAME_LEN],
                                                     uint8_t iv[16], EVP_CIPHER_CTX *cctx,
                                                     EVP_MAC_CTX *hctx);

/*
 * Sets up cctx/hctx to open a ticket whose key name and IV are given. *match says which key
 * matched; for TLSR__KEY_UNKNOWN nothing is set up and the call returns TLSR_OK.
 * Errors: TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr__keyring_open_setup(struct tlsr_keyring *ring,
                                                     const uint8_t name[TLSR_TICKET_NAME_LEN],
                                                     const uint8_t iv[16], EVP_CIPHER_CTX *cctx,
                                                     EVP_MAC_CTX *hctx,
                                                     enum tlsr__key_match *match);

enum tlsr__keyring_counter {
    TLSR__KEYRING_DECRYPTED,
    TLSR__KEYRING_RENEWED,
    TLSR__KEYRING_BAD_MAC,
    TLSR__KEYRING_EXPIRED,
    TLSR__KEYRING_CHAIN, /* refused by the resumption chain cap */
    TLSR__KEYRING_NCOUNTERS_GLUE
};

/* Counts one event of the ticket path (lock-free). */
void tlsr__keyring_count(struct tlsr_keyring *ring, enum tlsr__keyring_counter which);

/* The ring's ticket lifetime and clock, for the age check after decryption. */
uint32_t tlsr__keyring_lifetime_s(const struct tlsr_keyring *ring);
/* The ring's rotation period (the fleet module uses it for its schedule). */
uint32_t tlsr__keyring_rotate_s(const struct tlsr_keyring *ring);
uint64_t tlsr__keyring_now(const struct tlsr_keyring *ring);

#endif

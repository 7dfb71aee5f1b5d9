/*
 * OpenSSL ticket callbacks over the key ring.
 *
 * The key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb) picks the key: for a new ticket the
 * ring's current key; for a received one the key its name designates. It returns 1 to resume,
 * 2 to resume and renew (the key is decrypt-only), 0 for a full handshake (unknown key name),
 * and -1 on a crypto failure (fail closed). In TLS 1.3, OpenSSL sends a new ticket on a
 * callback-driven resumption only when the callback returns 2.
 *
 * The decrypt callback (SSL_CTX_set_session_ticket_cb) sees the outcome of the MAC check and
 * the decrypted session: it counts each rejection by reason and refuses sessions older than the
 * ring's ticket lifetime (RFC 8446 §4.6.1, RFC 5077 §4), so expiry follows the ring's clock.
 */
#include "ssl_int.h"

#include "../err/tlsr_err.h"
#include "../tickets/keyring_glue.h"

static int ticket_key(SSL *ssl, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                      EVP_MAC_CTX *hctx, int enc)
{
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->keyring == NULL) {
        return 0;
    }
    if (enc) {
        tlsr_status rc = tlsr__keyring_seal_setup(b->keyring, name, iv, cctx, hctx);
        if (rc == TLSR_E_NOTFOUND) {
            return 0;
        }
        return rc == TLSR_OK ? 1 : -1;
    }
    enum tlsr__key_match match;
    if (tlsr__keyring_open_setup(b->keyring, name, iv, cctx, hctx, &match) != TLSR_OK) {
        return -1;
    }
    unsigned flags = tlsr__ssl_conn_flags(ssl);
    if (match == TLSR__KEY_UNKNOWN) {
        tlsr__ssl_conn_set_flags(ssl, flags | CONN_KEY_UNKNOWN);
        return 0;
    }
    tlsr__ssl_conn_set_flags(ssl, flags | CONN_KEY_FOUND);
    return match == TLSR__KEY_OLD ? 2 : 1;
}

static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                          size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname;
    (void)keyname_len;
    struct binding *b = arg;
    unsigned flags = tlsr__ssl_conn_flags(ssl);
    /* Flags describe one ticket; a TLS 1.3 client may offer several. */
    tlsr__ssl_conn_set_flags(ssl, flags & ~(CONN_KEY_UNKNOWN | CONN_KEY_FOUND));
    switch (status) {
    case SSL_TICKET_EMPTY:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    case SSL_TICKET_NO_DECRYPT:
        if ((flags & CONN_KEY_UNKNOWN) == 0) {
            /* A known key whose MAC or padding failed, or a ticket too short to name one. */
            tlsr__keyring_count(b->keyring, TLSR__KR_BAD_MAC);
        }
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW: {
        uint64_t now = tlsr__keyring_now(b->keyring);
        long created = SSL_SESSION_get_time(sess);
        if (created < 0 || now > (uint64_t)created + tlsr__keyring_lifetime_s(b->keyring)) {
            tlsr__keyring_count(b->keyring, TLSR__KR_EXPIRED);
            return SSL_TICKET_RETURN_IGNORE_RENEW;
        }
        tlsr__keyring_count(b->keyring, TLSR__KR_DECRYPTED);
        tlsr__ssl_conn_set_flags(ssl, tlsr__ssl_conn_flags(ssl) | CONN_TICKET_RESUMED);
        if (status == SSL_TICKET_SUCCESS_RENEW) {
            tlsr__keyring_count(b->keyring, TLSR__KR_RENEWED);
            return SSL_TICKET_RETURN_USE_RENEW;
        }
        return SSL_TICKET_RETURN_USE;
    }
    case SSL_TICKET_NONE:
    default:
        return SSL_TICKET_RETURN_IGNORE;
    }
}

void tlsr__ssl_install_tickets(SSL_CTX *ctx, struct binding *b)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
    SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_decrypted, b);
}

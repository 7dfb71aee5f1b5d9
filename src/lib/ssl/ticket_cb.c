/*
 * OpenSSL ticket callbacks over the key ring.
 *
 * The key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb) picks the key: for a new ticket the
 * ring's current key; for a received one the key its name designates. It returns 1 to resume,
 * 2 to resume and renew (the key is decrypt-only), 0 for a full handshake (unknown key name),
 * and -1 on a crypto failure (fail closed).
 *
 * The decrypt callback (SSL_CTX_set_session_ticket_cb) sees the outcome of the MAC check and
 * the decrypted session: it counts each rejection by reason and refuses sessions older than the
 * ring's ticket lifetime (RFC 8446 §4.6.1, RFC 5077 §4), so expiry follows the ring's clock.
 * Its answer also decides TLS 1.3 renewal: OpenSSL 3.0 sends a ticket after a resumption only
 * when it returns USE_RENEW, so it does for every TLS 1.3 resumption (resume_tickets).
 * Each outcome is noted on the connection as its resumption reason (tlsr_ssl_miss()).
 *
 * The resumption chain cap (binding.c): the generate callback writes, into every session about
 * to become a ticket that has none yet, its origin; past max_chain_s a session is refused (a
 * full handshake, counted), however fresh its latest ticket.
 */
#include "ssl_int.h"

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "../tickets/keyring_glue.h"

static enum tlsr_offer offer_kind(const SSL *ssl)
{
    return SSL_version(ssl) == TLS1_3_VERSION ? TLSR_OFFER_PSK : TLSR_OFFER_TICKET;
}

/* Whether sess belongs to the session ID context of ssl's current SSL_CTX (OpenSSL refuses it
 * otherwise, after this callback). */
static bool is_other_context(const SSL *ssl, const SSL_SESSION *sess)
{
    const struct binding *cur = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    unsigned int len = 0;
    const unsigned char *ctx = SSL_SESSION_get0_id_context(sess, &len);
    return cur != NULL &&
           (len != cur->sid_ctx_len || CRYPTO_memcmp(ctx, cur->sid_ctx, cur->sid_ctx_len) != 0);
}

/* Whether sess carries one of the other servers' contexts that b accepts. */
static bool is_accepted_context(const struct binding *b, const SSL_SESSION *sess)
{
    unsigned int len = 0;
    const unsigned char *ctx = SSL_SESSION_get0_id_context(sess, &len);
    for (size_t i = 0; i < b->n_accepted; i++) {
        if (len == b->accepted[i].len &&
            (len == 0 || CRYPTO_memcmp(ctx, b->accepted[i].bytes, len) == 0)) {
            return true;
        }
    }
    return false;
}

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
        tlsr__ssl_note_offer(ssl, offer_kind(ssl), TLSR_MISS_UNKNOWN_KEY);
        return 0;
    }
    flags |= CONN_KEY_FOUND | (match == TLSR__KEY_VARIANT ? CONN_FOREIGN_KEY : 0);
    tlsr__ssl_conn_set_flags(ssl, flags);
    return match == TLSR__KEY_CURRENT ? 1 : 2;
}

/* Before a ticket is made: a session without an origin descends from this full handshake. */
static int ticket_generating(SSL *ssl, void *arg)
{
    struct binding *b = arg;
    SSL_SESSION *sess = SSL_get0_session(ssl);
    if (b->max_chain_s == 0 || sess == NULL || tlsr__ssl_has_origin(sess)) {
        return 1;
    }
    /* A resumed session without an origin (a TLS 1.2 session ID from the cache, whose copy
     * was stored before its first ticket) descends from its own creation, not from now. */
    uint64_t origin = tlsr__ssl_now(b);
    long created = SSL_SESSION_get_time(sess);
    if (SSL_session_reused(ssl) == 1 && created > 0 && (uint64_t)created < origin) {
        origin = (uint64_t)created;
    }
    uint8_t buf[TLSR_ORIGIN_LEN];
    if (!tlsr__ssl_origin_encode(origin, buf)) {
        return 0;
    }
    /* Failing here (out of memory only) fails the handshake in OpenSSL 3: fail closed. */
    return SSL_SESSION_set1_ticket_appdata(sess, buf, sizeof(buf));
}

enum ctx_verdict {
    CTX_OURS,      /* the session is of the connection's context */
    CTX_OTHER,     /* of another context, not accepted: OpenSSL will refuse it */
    CTX_RESTAMPED, /* of an accepted context, now ours */
    CTX_FAILED,    /* accepted, but could not be re-stamped (out of memory) */
};

/*
 * Another server's ticket under a context accepted where the connection is (after an SNI
 * switch, not where it arrived) is re-stamped with ours, since OpenSSL compares the contexts
 * after the decrypt callback. Never with client certificates: that server's checks are not
 * ours.
 */
static enum ctx_verdict adopt_context(SSL *ssl, SSL_SESSION *sess)
{
    if (!is_other_context(ssl, sess)) {
        return CTX_OURS;
    }
    const struct binding *cur = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (!is_accepted_context(cur, sess) || (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0) {
        return CTX_OTHER;
    }
    if (SSL_SESSION_set1_id_context(sess, cur->sid_ctx, (unsigned)cur->sid_ctx_len) != 1) {
        return CTX_FAILED;
    }
    tlsr__ssl_conn_set_flags(ssl, tlsr__ssl_conn_flags(ssl) | CONN_FOREIGN_CONTEXT);
    return CTX_RESTAMPED;
}

/* A ticket that decrypted and whose MAC held; flags: the connection's before this ticket. */
static SSL_TICKET_RETURN ticket_opened(SSL *ssl, struct binding *b, SSL_SESSION *sess,
                                       SSL_TICKET_STATUS status, unsigned flags)
{
    uint64_t now = tlsr__keyring_now(b->keyring);
    long created = SSL_SESSION_get_time(sess);
    if (created < 0 || now > (uint64_t)created + tlsr__keyring_lifetime_s(b->keyring)) {
        tlsr__keyring_count(b->keyring, TLSR__KEYRING_EXPIRED);
        tlsr__ssl_note_offer(ssl, offer_kind(ssl), TLSR_MISS_EXPIRED);
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    if (tlsr__ssl_chain_expired(b, sess, now)) {
        tlsr__keyring_count(b->keyring, TLSR__KEYRING_CHAIN);
        tlsr__ssl_note_offer(ssl, offer_kind(ssl), TLSR_MISS_CHAIN);
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    enum ctx_verdict v = adopt_context(ssl, sess);
    if (v == CTX_FAILED) {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    }
    /* From here OpenSSL may still decline the session (another context, version or cipher);
     * the reason stands only if it does. */
    tlsr__ssl_note_offer(ssl, offer_kind(ssl),
                         v == CTX_OTHER ? TLSR_MISS_CONTEXT : TLSR_MISS_PARAMS);
    tlsr__keyring_count(b->keyring, TLSR__KEYRING_DECRYPTED);
    tlsr__ssl_conn_set_flags(ssl, tlsr__ssl_conn_flags(ssl) | CONN_TICKET_RESUMED |
                                      (flags & CONN_FOREIGN_KEY));
    /* A ticket of another context is renewed in ours (TLS 1.2 too), so the client moves to a
     * ticket of this server's. */
    if (status == SSL_TICKET_SUCCESS_RENEW || v == CTX_RESTAMPED) {
        tlsr__keyring_count(b->keyring, TLSR__KEYRING_RENEWED);
        return SSL_TICKET_RETURN_USE_RENEW;
    }
    /* In TLS 1.3, USE tells OpenSSL to send no new ticket; clients use each ticket once
     * (RFC 8446 Appendix C.4), so a resumption renews under the current key. TLS 1.2 clients
     * reuse their ticket and need none. */
    if (SSL_version(ssl) == TLS1_3_VERSION && b->resume_tickets > 0) {
        return SSL_TICKET_RETURN_USE_RENEW;
    }
    return SSL_TICKET_RETURN_USE;
}

static SSL_TICKET_RETURN ticket_decrypted(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                          size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    (void)keyname;
    (void)keyname_len;
    struct binding *b = arg;
    unsigned flags = tlsr__ssl_conn_flags(ssl);
    /* Flags describe one ticket; a TLS 1.3 client may offer several. */
    tlsr__ssl_conn_set_flags(ssl, flags & ~(CONN_KEY_UNKNOWN | CONN_KEY_FOUND | CONN_FOREIGN_KEY |
                                            CONN_FOREIGN_CONTEXT));
    switch (status) {
    case SSL_TICKET_EMPTY:
        return SSL_TICKET_RETURN_IGNORE_RENEW; /* tickets welcome, none offered */
    case SSL_TICKET_NO_DECRYPT:
        if ((flags & CONN_KEY_UNKNOWN) == 0) {
            /* A known key whose MAC or padding failed, or a ticket too short to name one. */
            tlsr__keyring_count(b->keyring, TLSR__KEYRING_BAD_MAC);
            tlsr__ssl_note_offer(ssl, offer_kind(ssl), TLSR_MISS_BAD_TICKET);
        }
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        return ticket_opened(ssl, b, sess, status, flags);
    case SSL_TICKET_NONE:
    default:
        return SSL_TICKET_RETURN_IGNORE;
    }
}

void tlsr__ssl_install_tickets(SSL_CTX *ctx, struct binding *b)
{
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
    SSL_CTX_set_session_ticket_cb(ctx, ticket_generating, ticket_decrypted, b);
}

void tlsr__ssl_install_chain(SSL_CTX *ctx, struct binding *b)
{
    SSL_CTX_set_session_ticket_cb(ctx, ticket_generating, NULL, b);
}

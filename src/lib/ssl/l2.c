/*
 * The second-level store hooks and the ClientHello lookup that lets a server fetch a session
 * from a fleet store before OpenSSL looks it up (tlsresume/ssl.h).
 *
 * OpenSSL 3 has no asynchronous session lookup, but its client-hello callback may pause the
 * handshake (SSL_CLIENT_HELLO_RETRY). The caller works out here which key the handshake will
 * ask for, fetches it, primes the shared cache with tlsr_ssl_prime(), and resumes; OpenSSL's get
 * callback then finds the session in the shared cache as usual.
 *
 * Which key: OpenSSL 3.0 looks up the legacy session ID only when it negotiates TLS 1.2 and no
 * ticket is being used; in TLS 1.3 it looks up a PSK identity of at most 32 bytes (a stateful
 * ticket) and ignores the legacy session ID. Asking for anything else would add a round trip
 * to the store on full handshakes for nothing.
 */
#include "ssl_int.h"

#include <string.h>

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "psk.h"
#include "sess_codec.h"

tlsr_status tlsr_ssl_set_l2(SSL_CTX *ctx, const struct tlsr_ssl_l2 *l2)
{
    struct binding *b = tlsr__ssl_binding(ctx);
    ENSURE(b != NULL && b->cache != NULL, TLSR_E_INVALID,
           "fleet store: the SSL_CTX is not attached with a cache");
    if (l2 == NULL) {
        memset(&b->l2, 0, sizeof(b->l2));
        return TLSR_OK;
    }
    ENSURE(l2->store != NULL && l2->remove != NULL, TLSR_E_INVALID,
           "fleet store: store and remove hooks are required");
    b->l2 = *l2;
    return TLSR_OK;
}

static int will_be_tls13(SSL *ssl)
{
    const unsigned char *ext = NULL;
    size_t len = 0;
    long max = SSL_get_max_proto_version(ssl);
    if (max != 0 && max < TLS1_3_VERSION) {
        return 0;
    }
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len) != 1) {
        return 0;
    }
    return tlsr__versions_has_tls13(ext, len);
}

/* Fills the id of out with the key OpenSSL will look up; TLSR_E_NOTFOUND when none. */
static tlsr_status requested_id(SSL *ssl, struct tlsr_ssl_lookup *out)
{
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (will_be_tls13(ssl)) {
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) != 1 ||
            (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0) {
            return TLSR_E_NOTFOUND; /* no PSK, or stateless tickets that carry their session */
        }
        const uint8_t *id = NULL;
        size_t id_len = 0;
        TRY(tlsr__psk_first_identity(ext, len, &id, &id_len));
        if (id_len > sizeof(out->id)) {
            return TLSR_E_NOTFOUND;
        }
        memcpy(out->id, id, id_len);
        out->id_len = id_len;
        out->flags = TLSR_CACHE_SINGLE_USE;
        return TLSR_OK;
    }
    if ((SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0 &&
        SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_session_ticket, &ext, &len) == 1 && len > 0) {
        return TLSR_E_NOTFOUND; /* OpenSSL uses the ticket and does not look the ID up */
    }
    const unsigned char *sid = NULL;
    size_t sid_len = SSL_client_hello_get0_session_id(ssl, &sid);
    if (sid_len == 0 || sid_len > sizeof(out->id)) {
        return TLSR_E_NOTFOUND;
    }
    memcpy(out->id, sid, sid_len);
    out->id_len = sid_len;
    out->flags = 0;
    return TLSR_OK;
}

tlsr_status tlsr_ssl_client_hello_lookup(SSL *ssl, struct tlsr_ssl_lookup *out)
{
    ENSURE(ssl != NULL && out != NULL, TLSR_E_INVALID, "fleet store: lookup: NULL argument");
    memset(out, 0, sizeof(*out));
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->cache == NULL || b->l2.store == NULL) {
        return TLSR_E_NOTFOUND;
    }
    TRY(requested_id(ssl, out));
    memcpy(out->sid_ctx, b->sid_ctx, b->sid_ctx_len);
    out->sid_ctx_len = b->sid_ctx_len;
    struct tlsr_cache_key key = {out->sid_ctx, out->sid_ctx_len, out->id, out->id_len};
    if (tlsr_cache_contains(b->cache, &key) == TLSR_OK) {
        return TLSR_E_NOTFOUND; /* here already */
    }
    return TLSR_OK;
}

tlsr_status tlsr_ssl_prime(SSL *ssl, const struct tlsr_ssl_lookup *lk, const uint8_t *value,
                           size_t value_len, uint32_t lifetime_s)
{
    ENSURE(ssl != NULL && lk != NULL && value != NULL, TLSR_E_INVALID,
           "fleet store: prime: NULL argument");
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    ENSURE(b != NULL && b->cache != NULL, TLSR_E_INVALID,
           "fleet store: the SSL_CTX is not attached with a cache");
    SSL_SESSION *sess = NULL;
    tlsr_status rc = tlsr__sess_decode(value, value_len, lk->id, lk->id_len, lk->sid_ctx,
                                       lk->sid_ctx_len, &sess);
    if (rc != TLSR_OK) {
        tlsr_cache_count_corrupt(b->cache);
        return rc;
    }
    SSL_SESSION_free(sess);
    struct tlsr_cache_key key = {lk->sid_ctx, lk->sid_ctx_len, lk->id, lk->id_len};
    return tlsr_cache_insert(b->cache, &key, value, value_len, lifetime_s, lk->flags);
}

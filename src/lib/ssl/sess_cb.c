/*
 * OpenSSL session cache callbacks over the shared cache.
 *
 * OpenSSL's internal cache is off (SSL_SESS_CACHE_NO_INTERNAL), so these are the only store and
 * every worker sees every session. Facts of OpenSSL 3.0 this relies on:
 * - the new-session callback also fires for every stateless TLS 1.3 ticket (2 per full
 *   handshake, 1 per resumption); those carry their own state and are not stored;
 * - TLS 1.2 full handshakes call the get callback with the client's random ID, so a miss must be
 *   cheap (one hash, one lock, no allocation, no message);
 * - a session the get callback builds must be handed over with *copy = 0 or it leaks;
 * - TLS 1.3 stateful tickets are not single-use by default: they are stored single-use, so the
 *   first lookup removes them under the shard lock and a replayed ticket misses everywhere
 *   (RFC 8446 §8.1);
 * - the remove callback fires on fatal alerts and when a connection is freed before
 *   SSL_shutdown; servers that want to keep such sessions call SSL_shutdown first.
 */
#include "ssl_int.h"

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "sess_codec.h"

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->cache == NULL) {
        return 0;
    }
    int is_tls13 = SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION;
    if (is_tls13 && (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0) {
        return 0;
    }
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    unsigned int ctx_len = 0;
    const unsigned char *ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
    if (id_len == 0) {
        return 0;
    }
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    if (tlsr__sess_encode(sess, buf, sizeof(buf), &len) == TLSR_OK) {
        struct tlsr_cache_key key = {ctx, ctx_len, id, id_len};
        /* A failed insert (too large, lock error) costs one resumption, nothing else. */
        tlsr_status rc = tlsr_cache_insert(b->cache, &key, buf, len, b->session_timeout_s,
                                           is_tls13 ? TLSR_CACHE_SINGLE_USE : 0);
        (void)rc;
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

static SSL_SESSION *get_session(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    *copy = 0;
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->cache == NULL || id_len <= 0) {
        return NULL;
    }
    struct tlsr_cache_key key = {b->sid_ctx, b->sid_ctx_len, id, (size_t)id_len};
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    SSL_SESSION *sess = NULL;
    if (tlsr_cache_lookup(b->cache, &key, buf, sizeof(buf), &len) == TLSR_OK) {
        if (tlsr__sess_decode(buf, len, id, (size_t)id_len, b->sid_ctx, b->sid_ctx_len, &sess) !=
            TLSR_OK) {
            tlsr_cache_count_corrupt(b->cache);
            sess = NULL;
        }
        OPENSSL_cleanse(buf, len);
    }
    return sess;
}

static void remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    struct binding *b = tlsr__ssl_binding(ctx);
    if (b == NULL || b->cache == NULL) {
        return;
    }
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    unsigned int ctx_len = 0;
    const unsigned char *sid_ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
    if (id_len == 0) {
        return;
    }
    struct tlsr_cache_key key = {sid_ctx, ctx_len, id, id_len};
    /* Not finding it is the common case (a session already expired or taken). */
    tlsr_status rc = tlsr_cache_remove(b->cache, &key);
    (void)rc;
}

void tlsr__ssl_install_cache(SSL_CTX *ctx)
{
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    SSL_CTX_sess_set_get_cb(ctx, get_session);
    SSL_CTX_sess_set_remove_cb(ctx, remove_session);
}

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
 *   SSL_shutdown; servers that want to keep such sessions call SSL_shutdown first;
 * - a TLS 1.2 server calls the new-session callback only after its Finished has gone out, so a
 *   client that reconnects at once can reach another worker before the session is stored. The
 *   info callback therefore stores a full TLS 1.2 session as soon as the client's Finished is
 *   in, before the server's Finished is written, and the new-session callback skips it.
 */
#include "ssl_int.h"

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "sess_codec.h"

/* Encodes and stores sess; a failure costs one resumption, nothing else. */
static void store(struct binding *b, const SSL_SESSION *sess, int is_tls13)
{
    unsigned int id_len = 0;
    const unsigned char *id = SSL_SESSION_get_id(sess, &id_len);
    unsigned int ctx_len = 0;
    const unsigned char *ctx = SSL_SESSION_get0_id_context(sess, &ctx_len);
    if (id_len == 0) {
        return;
    }
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    tlsr_status rc = tlsr__sess_encode(sess, buf, sizeof(buf), &len);
    if (rc == TLSR_OK) {
        struct tlsr_cache_key key = {ctx, ctx_len, id, id_len};
        /* A failed insert (too large, lock error) costs one resumption, nothing else. */
        unsigned flags = is_tls13 ? TLSR_CACHE_SINGLE_USE : 0;
        rc = tlsr_cache_insert(b->cache, &key, buf, len, b->session_timeout_s, flags);
        (void)rc;
        if (b->l2.store != NULL) {
            b->l2.store(b->l2.arg, &key, buf, len, b->session_timeout_s, flags);
        }
    } else {
        len = sizeof(buf); /* a failed encoding may have written part of the secret */
    }
    OPENSSL_cleanse(buf, len);
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->cache == NULL || (tlsr__ssl_conn_flags(ssl) & CONN_STORED) != 0) {
        return 0;
    }
    int is_tls13 = SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION;
    if (is_tls13 && (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0) {
        return 0;
    }
    store(b, sess, is_tls13);
    return 0;
}

/* Stores a full TLS 1.2 session once the client's Finished has been read (see above). */
static void on_info(const SSL *cssl, int where, int ret)
{
    SSL *ssl = (SSL *)cssl;
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL) {
        return;
    }
    if (b->prev_info_cb != NULL) {
        b->prev_info_cb(ssl, where, ret);
    }
    if ((where & SSL_CB_ACCEPT_LOOP) == 0 || b->cache == NULL ||
        SSL_get_state(ssl) != TLS_ST_SR_FINISHED || SSL_session_reused(ssl) ||
        SSL_version(ssl) != TLS1_2_VERSION || (tlsr__ssl_conn_flags(ssl) & CONN_STORED) != 0) {
        return;
    }
    SSL_SESSION *sess = SSL_get_session(ssl);
    unsigned int id_len = 0;
    if (sess == NULL || SSL_SESSION_get_id(sess, &id_len) == NULL || id_len == 0) {
        return;
    }
    store(b, sess, 0);
    tlsr__ssl_conn_set_flags(ssl, tlsr__ssl_conn_flags(ssl) | CONN_STORED);
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
        if (b->l2.remove != NULL && SSL_version(ssl) == TLS1_3_VERSION) {
            /* A TLS 1.3 stateful ticket is single-use fleet-wide, not only here. */
            b->l2.remove(b->l2.arg, &key);
        }
        if (tlsr__sess_decode(buf, len, id, (size_t)id_len, b->sid_ctx, b->sid_ctx_len, &sess) !=
            TLSR_OK) {
            tlsr_cache_count_corrupt(b->cache);
            sess = NULL;
        } else if (tlsr__ssl_chain_expired(b, sess, tlsr_cache_now(b->cache))) {
            tlsr_cache_count_chain(b->cache);
            SSL_SESSION_free(sess);
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
    if (rc == TLSR_OK && b->l2.remove != NULL) {
        b->l2.remove(b->l2.arg, &key);
    }
}

void tlsr__ssl_install_cache(SSL_CTX *ctx, struct binding *b)
{
    b->prev_info_cb = SSL_CTX_get_info_callback(ctx);
    SSL_CTX_set_info_callback(ctx, on_info);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
    SSL_CTX_sess_set_new_cb(ctx, new_session);
    SSL_CTX_sess_set_get_cb(ctx, get_session);
    SSL_CTX_sess_set_remove_cb(ctx, remove_session);
}

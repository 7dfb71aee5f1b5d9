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
 *   SSL_shutdown; it removes only what is known bad (see remove_session());
 * - a TLS 1.2 server calls the new-session callback only after its Finished has gone out, so a
 *   client that reconnects at once can reach another worker before the session is stored. The
 *   info callback therefore stores a full TLS 1.2 session as soon as the client's Finished is
 *   in, before the server's Finished is written, and the new-session callback skips it.
 */
#include "ssl_int.h"

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "psk.h"
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

/* Stores a full TLS 1.2 session once the client's Finished has been read (see above), and
 * marks the session of a finished handshake as one to keep. */
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
    if ((where & SSL_CB_HANDSHAKE_DONE) != 0) {
        tlsr__ssl_keep_session(SSL_get_session(ssl));
        return;
    }
    if ((where & SSL_CB_READ_ALERT) != 0 && (ret >> 8) == SSL3_AL_FATAL &&
        SSL_version(ssl) != TLS1_3_VERSION && SSL_is_init_finished(ssl)) {
        /* After the handshake the peer's fatal alert is authenticated (during it, a plaintext
         * alert could be anyone's): RFC 5246 §7.2.2 has the session forgotten, and OpenSSL asks
         * for that right after this callback. */
        tlsr__ssl_unkeep_session(SSL_get_session(ssl));
        return;
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

/* Whether the client of this ClientHello offers TLS 1.3 (then its legacy session ID may be the
 * random one of RFC 8446 Appendix D.4, not a session). */
static bool offers_tls13(SSL *ssl)
{
    const unsigned char *ext = NULL;
    size_t len = 0;
    return SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &ext, &len) == 1 &&
           tlsr__versions_has_tls13(ext, len);
}

/* The reason of a miss in the shared cache: what the second-level store said, if asked. */
static enum tlsr_miss miss_reason(const SSL *ssl)
{
    switch ((tlsr__ssl_conn_flags(ssl) & CONN_L2_MASK) >> CONN_L2_SHIFT) {
    case TLSR_L2_MISS:
        return TLSR_MISS_FLEET;
    case TLSR_L2_TIMEOUT:
        return TLSR_MISS_FLEET_TIMEOUT;
    case TLSR_L2_DOWN:
        return TLSR_MISS_FLEET_DOWN;
    case TLSR_L2_REJECTED:
        return TLSR_MISS_REJECTED;
    default:
        return TLSR_MISS_CACHE;
    }
}

static SSL_SESSION *get_session(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
    *copy = 0;
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    if (b == NULL || b->cache == NULL || id_len <= 0) {
        return NULL;
    }
    bool is_tls13 = SSL_version(ssl) == TLS1_3_VERSION;
    enum tlsr_offer offer = is_tls13 ? TLSR_OFFER_PSK : TLSR_OFFER_ID;
    struct tlsr_cache_key key = {b->sid_ctx, b->sid_ctx_len, id, (size_t)id_len};
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    SSL_SESSION *sess = NULL;
    if (tlsr_cache_lookup(b->cache, &key, buf, sizeof(buf), &len) != TLSR_OK) {
        if (is_tls13 || !offers_tls13(ssl)) {
            tlsr__ssl_note_offer(ssl, offer, miss_reason(ssl));
        }
        return NULL;
    }
    if (b->l2.remove != NULL && is_tls13) {
        /* A TLS 1.3 stateful ticket is single-use fleet-wide, not only here. */
        b->l2.remove(b->l2.arg, &key);
    }
    if (tlsr__sess_decode(buf, len, id, (size_t)id_len, b->sid_ctx, b->sid_ctx_len, &sess) !=
        TLSR_OK) {
        tlsr_cache_count_corrupt(b->cache);
        tlsr__ssl_note_offer(ssl, offer, TLSR_MISS_REJECTED);
        sess = NULL;
    } else if (tlsr__ssl_chain_expired(b, sess, tlsr_cache_now(b->cache))) {
        tlsr_cache_count_chain(b->cache);
        tlsr__ssl_note_offer(ssl, offer, TLSR_MISS_CHAIN);
        SSL_SESSION_free(sess);
        sess = NULL;
    } else {
        /* OpenSSL may still decline it (version, cipher): the reason stands only then. A
         * resumption that fails half-way (a peer that has the ID but not the secret) says
         * nothing bad of the session: it is kept. */
        tlsr__ssl_note_offer(ssl, offer, TLSR_MISS_PARAMS);
        tlsr__ssl_keep_session(sess);
    }
    OPENSSL_cleanse(buf, len);
    return sess;
}

/*
 * OpenSSL 3.0 asks to remove a session (see docs/DESIGN.md, "How a session lives"):
 *  1. from SSL_free()/SSL_clear() when a finished handshake never sent close_notify;
 *  2. on a fatal alert sent or received, during or after the handshake;
 *  3. when a session from the cache turns out to be past its timeout.
 * Removed: a session that never finished a handshake and is not being resumed (a TLS 1.2
 * session stored when the client's Finished arrived, whose handshake then failed), and a TLS
 * 1.2 session whose peer sent a fatal alert (authenticated, so only the real peer can; RFC 5246
 * §7.2.2). Every other request is refused: a reset, a timeout or a missing close_notify after the
 * handshake says nothing bad of the session (TLS 1.1 and later no longer require dropping it), and
 * a failed resumption may be a peer that knows the ID but not the secret. Expiry is the cache's own
 * TTL, which ends with the session's timeout; the single-use TLS 1.3 tickets are taken by the
 * lookup itself.
 */
static void remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
    struct binding *b = tlsr__ssl_binding(ctx);
    if (b == NULL || b->cache == NULL || tlsr__ssl_is_kept(sess)) {
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

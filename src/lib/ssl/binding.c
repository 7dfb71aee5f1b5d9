/*
 * The ssl module's state on OpenSSL objects, shared by attach.c and the callbacks.
 *
 * ex_data slots: one on SSL_CTX holding the binding (struct binding, freed with the SSL_CTX),
 * one on SSL holding the connection's flags and resumption accounting as an integer (nothing
 * to free), one on SSL_SESSION marking sessions kept against OpenSSL's removal requests.
 *
 * The resumption chain cap: a session's origin is the time of the full handshake it descends
 * from, written into every session about to become a ticket that has none yet (ticket
 * appdata: "tlsr-origin" and the time, u64 big-endian). OpenSSL carries appdata into the
 * ticket, into sessions renewed from it (TLS 1.3 resumptions copy the session) and into the
 * DER the cache stores, so every session descending from one full handshake keeps its origin.
 * Without one, a session's own time stands in.
 */
#include "ssl_int.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"
#include "../tickets/keyring_glue.h"

#define ORIGIN_TAG "tlsr-origin"

static int ctx_index = -1;
static int conn_index = -1;
static int sess_index = -1;
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static void binding_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    tlsr__free(ptr);
}

static void make_indexes(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, binding_free);
    conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    sess_index = SSL_SESSION_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

tlsr_status tlsr__ssl_indexes(void)
{
    ENSURE(pthread_once(&index_once, make_indexes) == 0 && ctx_index >= 0 && conn_index >= 0 &&
               sess_index >= 0,
           TLSR_E_NOMEM, "attach: no OpenSSL ex_data index");
    return TLSR_OK;
}

tlsr_status tlsr__ssl_bind(SSL_CTX *ctx, struct binding *b)
{
    ERR_clear_error();
    if (SSL_CTX_set_ex_data(ctx, ctx_index, b) != 1) {
        return tlsr__err_ssl(TLSR_E_NOMEM, "attach: cannot store the binding");
    }
    return TLSR_OK;
}

void tlsr__ssl_keep_session(SSL_SESSION *sess)
{
    /* A failure (no memory for the ex_data array) leaves OpenSSL's removal in force: the
     * old behaviour, never a wrong resumption. */
    if (sess != NULL && sess_index >= 0) {
        (void)SSL_SESSION_set_ex_data(sess, sess_index, (void *)(uintptr_t)1);
    }
}

void tlsr__ssl_unkeep_session(SSL_SESSION *sess)
{
    if (sess != NULL && sess_index >= 0) {
        (void)SSL_SESSION_set_ex_data(sess, sess_index, NULL);
    }
}

bool tlsr__ssl_is_kept(SSL_SESSION *sess)
{
    return sess != NULL && sess_index >= 0 && SSL_SESSION_get_ex_data(sess, sess_index) != NULL;
}

struct binding *tlsr__ssl_binding(const SSL_CTX *ctx)
{
    if (ctx == NULL || ctx_index < 0) {
        return NULL;
    }
    return SSL_CTX_get_ex_data(ctx, ctx_index);
}

unsigned tlsr__ssl_conn_flags(const SSL *ssl)
{
    if (conn_index < 0) {
        return 0;
    }
    return (unsigned)(uintptr_t)SSL_get_ex_data(ssl, conn_index);
}

void tlsr__ssl_conn_set_flags(SSL *ssl, unsigned flags)
{
    /* A failure (no memory to grow the ex_data array) only loses a counter's detail. */
    (void)SSL_set_ex_data(ssl, conn_index, (void *)(uintptr_t)flags);
}
void tlsr__ssl_note_offer(SSL *ssl, enum tlsr_offer offer, enum tlsr_miss miss)
{
    unsigned f = tlsr__ssl_conn_flags(ssl);
    f = (f & ~CONN_OFFER_MASK) | ((unsigned)offer << CONN_OFFER_SHIFT);
    if (miss != TLSR_MISS_NONE) {
        f = (f & ~CONN_MISS_MASK) | ((unsigned)miss << CONN_MISS_SHIFT);
    }
    tlsr__ssl_conn_set_flags(ssl, f);
}

uint64_t tlsr__ssl_now(const struct binding *b)
{
    return b->keyring != NULL ? tlsr__keyring_now(b->keyring)
           : b->cache != NULL ? tlsr_cache_now(b->cache)
                              : (uint64_t)time(NULL);
}

bool tlsr__ssl_origin_encode(uint64_t origin, uint8_t out[TLSR_ORIGIN_LEN])
{
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, TLSR_ORIGIN_LEN);
    return tlsr_wr_bytes(&wr, (const uint8_t *)ORIGIN_TAG, sizeof(ORIGIN_TAG) - 1) == TLSR_OK &&
           tlsr_wr_u64(&wr, origin) == TLSR_OK;
}

/* The origin of sess written by tlsr__ssl_origin_encode, if it has one. */
static bool origin_of(const SSL_SESSION *sess, uint64_t *origin)
{
    void *data = NULL;
    size_t len = 0;
    if (SSL_SESSION_get0_ticket_appdata((SSL_SESSION *)sess, &data, &len) != 1 ||
        len != TLSR_ORIGIN_LEN || memcmp(data, ORIGIN_TAG, sizeof(ORIGIN_TAG) - 1) != 0) {
        return false;
    }
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, (const uint8_t *)data + sizeof(ORIGIN_TAG) - 1, 8);
    return tlsr_rd_u64(&rd, origin) == TLSR_OK;
}

bool tlsr__ssl_has_origin(const SSL_SESSION *sess)
{
    uint64_t origin = 0;
    return origin_of(sess, &origin);
}

bool tlsr__ssl_chain_expired(const struct binding *b, const SSL_SESSION *sess, uint64_t now)
{
    if (b->max_chain_s == 0) {
        return false;
    }
    long t = SSL_SESSION_get_time(sess);
    uint64_t origin = t > 0 ? (uint64_t)t : 0;
    (void)origin_of(sess, &origin);
    return now > origin + b->max_chain_s;
}

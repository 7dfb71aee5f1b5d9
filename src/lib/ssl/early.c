/*
 * TLS 1.3 early data (0-RTT) with anti-replay (tlsresume/ssl.h).
 *
 * RFC 8446 §8 asks a server to accept a 0-RTT flight at most once. OpenSSL's own check
 * (single-use tickets through its internal cache) does not work with an external cache and
 * runs before the binder is verified, so it is turned off (SSL_OP_NO_ANTI_REPLAY) and replaced:
 * - ClientHello recording (§8.2): the client-hello callback records SHA-256(label | random |
 *   first binder) in a strike register (a tlsr_cache of its own, in shared memory: every
 *   worker sees it) for early_window_s; a second sighting is a replay. A fleet adds a register
 *   in Redis (tlsresume/fleet.h) and must give its verdict before early data is allowed;
 * - freshness (§8.3): OpenSSL accepts early data only when the client's and the server's ticket
 *   ages agree within 10 s, so a flight older than the window cannot be accepted once its
 *   record is gone;
 * - a fresh start (§8.2): for early_window_s after the register began recording (its first
 *   attach; a register kept across reloads or handed to an upgraded binary keeps its age) it
 *   may have missed a flight a previous server accepted, so early data is refused meanwhile;
 * - another server's ticket (under a 48-byte variant key or an accepted session ID context):
 *   its flights went to that server's register, not ours, so it resumes at 1-RTT.
 * OpenSSL's allow-early-data callback, which runs after the PSK binder is verified, makes the
 * decision from what the client-hello step recorded in the connection's flags. Anything
 * missing (no recording, register full, fleet silent) refuses early data: the handshake goes
 * on as 1-RTT and the client sends its data again.
 */
#include "ssl_int.h"

#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "../err/tlsr_err.h"
#include "psk.h"

#define LABEL "tlsresume 0-RTT v1"

/* The start window follows the register's clock (injectable: tlsr_cache_set_clock()). */
static uint64_t early_now(const struct tlsr_cache *reg)
{
    return reg != NULL ? tlsr_cache_now(reg) : (uint64_t)time(NULL);
}

static int allow_early(SSL *ssl, void *arg)
{
    (void)arg;
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    unsigned f = tlsr__ssl_conn_flags(ssl);
    /* Another server's ticket: that server's flights are not in our register. */
    if (b == NULL || (f & (CONN_FOREIGN_KEY | CONN_FOREIGN_CONTEXT)) != 0) {
        return 0;
    }
    if (!b->is_early_replay_checked) {
        return 1;
    }
    if ((f & CONN_EARLY_WAIT) != 0) {
        tlsr__ssl_conn_set_flags(ssl, f | CONN_EARLY_NO_ANSWER);
        return 0;
    }
    return (f & CONN_EARLY_FRESH) != 0 &&
           (f & (CONN_EARLY_REPLAY | CONN_EARLY_NO_ANSWER | CONN_EARLY_STARTING)) == 0;
}

tlsr_status tlsr__ssl_install_early(SSL_CTX *ctx, const struct tlsr_ssl_opts *o, struct binding *b)
{
    if (o->max_early_data == 0) {
        return TLSR_OK;
    }
    ENSURE(o->max_early_data <= TLSR_EARLY_DATA_MAX, TLSR_E_INVALID,
           "early data of %u bytes (max %u)", o->max_early_data, TLSR_EARLY_DATA_MAX);
    ENSURE(o->early_register != NULL || !o->is_early_replay_checked, TLSR_E_INVALID,
           "early data needs a strike register (early_register)");
    uint32_t window = o->early_window_s != 0 ? o->early_window_s : TLSR_EARLY_WINDOW_MIN_S;
    /* A record must outlive every flight OpenSSL still finds fresh, or a replay sent after the
     * record expired would be accepted. */
    ENSURE(window >= TLSR_EARLY_WINDOW_MIN_S && window <= 3600, TLSR_E_INVALID,
           "early data window %u s is outside %u s (OpenSSL's ticket age allowance) to 1 h", window,
           TLSR_EARLY_WINDOW_MIN_S);
    b->early_register = o->early_register;
    b->early_window_s = window;
    b->early_not_before = o->early_register != NULL
                              ? tlsr_cache_records_since(o->early_register) + window
                              : early_now(NULL) + window;
    b->is_early_replay_checked = o->is_early_replay_checked;
    ERR_clear_error();
    if (SSL_CTX_set_max_early_data(ctx, o->max_early_data) != 1 ||
        SSL_CTX_set_recv_max_early_data(ctx, o->max_early_data) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot set the early data limit");
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_ANTI_REPLAY);
    SSL_CTX_set_allow_early_data_cb(ctx, allow_early, NULL);
    return TLSR_OK;
}

/* key = SHA-256(label | ClientHello.random | first binder). */
static tlsr_status strike_key(SSL *ssl, uint8_t key[32])
{
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &ext, &len) != 1) {
        return TLSR_E_NOTFOUND; /* early data without a PSK is never accepted anyway */
    }
    const uint8_t *binder = NULL;
    size_t binder_len = 0;
    TRY(tlsr__psk_first_binder(ext, len, &binder, &binder_len));
    const unsigned char *random = NULL;
    size_t random_len = SSL_client_hello_get0_random(ssl, &random);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int out_len = 0;
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, LABEL, sizeof(LABEL)) == 1 &&
             EVP_DigestUpdate(md, random, random_len) == 1 &&
             EVP_DigestUpdate(md, binder, binder_len) == 1 &&
             EVP_DigestFinal_ex(md, key, &out_len) == 1 && out_len == 32;
    EVP_MD_CTX_free(md);
    if (!ok) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "0-RTT: cannot hash the ClientHello");
    }
    return TLSR_OK;
}

tlsr_status tlsr_ssl_client_hello_early(SSL *ssl, uint8_t key[32])
{
    ENSURE(ssl != NULL && key != NULL, TLSR_E_INVALID, "0-RTT: NULL argument");
    struct binding *b = tlsr__ssl_binding(SSL_get_SSL_CTX(ssl));
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (b == NULL || SSL_get_max_early_data(ssl) == 0 ||
        SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_early_data, &ext, &len) != 1) {
        return TLSR_E_NOTFOUND;
    }
    unsigned f = tlsr__ssl_conn_flags(ssl) | CONN_EARLY_OFFERED;
    tlsr__ssl_conn_set_flags(ssl, f);
    if (!b->is_early_replay_checked) {
        return TLSR_E_NOTFOUND;
    }
    tlsr_status rc = strike_key(ssl, key);
    if (rc != TLSR_OK) {
        return rc;
    }
    if (early_now(b->early_register) < b->early_not_before) {
        f |= CONN_EARLY_STARTING;
    }
    static const uint8_t ctx_label[] = "0-RTT";
    struct tlsr_cache_key k = {ctx_label, sizeof(ctx_label) - 1, key, 32};
    rc = tlsr_cache_record(b->early_register, &k, b->early_window_s);
    if (rc == TLSR_OK) {
        f |= CONN_EARLY_FRESH;
    } else if (rc == TLSR_E_EXISTS) {
        f |= CONN_EARLY_REPLAY;
    } else {
        f |= CONN_EARLY_NO_ANSWER;
    }
    tlsr__ssl_conn_set_flags(ssl, f);
    return rc;
}

void tlsr_ssl_early_require_verdict(SSL *ssl)
{
    tlsr__ssl_conn_set_flags(ssl, tlsr__ssl_conn_flags(ssl) | CONN_EARLY_WAIT);
}

void tlsr_ssl_early_verdict(SSL *ssl, enum tlsr_early_verdict verdict)
{
    unsigned f = tlsr__ssl_conn_flags(ssl) & ~CONN_EARLY_WAIT;
    if (verdict == TLSR_EARLY_REPLAY) {
        f |= CONN_EARLY_REPLAY;
    } else if (verdict != TLSR_EARLY_FRESH) {
        f |= CONN_EARLY_NO_ANSWER;
    }
    tlsr__ssl_conn_set_flags(ssl, f);
}

enum tlsr_early_outcome tlsr_ssl_early_outcome(const SSL *ssl)
{
    unsigned f = tlsr__ssl_conn_flags(ssl);
    if ((f & CONN_EARLY_OFFERED) == 0) {
        return TLSR_EARLY_NOT_OFFERED;
    }
    if (SSL_get_early_data_status(ssl) == SSL_EARLY_DATA_ACCEPTED) {
        return TLSR_EARLY_ACCEPTED;
    }
    if ((f & CONN_EARLY_REPLAY) != 0) {
        return TLSR_EARLY_REJECTED_REPLAY;
    }
    if ((f & CONN_EARLY_NO_ANSWER) != 0) {
        return TLSR_EARLY_REJECTED_UNAVAILABLE;
    }
    if ((f & CONN_EARLY_STARTING) != 0) {
        return TLSR_EARLY_REJECTED_STARTING;
    }
    return TLSR_EARLY_REJECTED_OTHER;
}

const char *tlsr_early_outcome_name(enum tlsr_early_outcome outcome)
{
    switch (outcome) {
    case TLSR_EARLY_NOT_OFFERED:
        return "not_offered";
    case TLSR_EARLY_ACCEPTED:
        return "accepted";
    case TLSR_EARLY_REJECTED_REPLAY:
        return "replay";
    case TLSR_EARLY_REJECTED_UNAVAILABLE:
        return "unavailable";
    case TLSR_EARLY_REJECTED_STARTING:
        return "starting";
    case TLSR_EARLY_REJECTED_OTHER:
        return "stale_or_full";
    }
    return "unknown";
}

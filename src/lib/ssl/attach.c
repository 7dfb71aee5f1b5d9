/*
 * Attaching the cache and the key ring to an SSL_CTX (tlsresume/ssl.h): checks the options,
 * makes the binding (binding.c) and installs the callbacks of sess_cb.c, ticket_cb.c and
 * early.c; and the public readers of a connection's resumption accounting.
 *
 * Session ID context. OpenSSL decides whether to resume before the SNI callback runs, so a
 * session made under one certificate could resume under another virtual host (nginx's
 * CVE-2025-23419). Every cache entry is keyed by the SSL_CTX's session ID context, and the
 * default context is a hash of the certificate and the verify mode: sessions never cross
 * certificates or client-certificate policies. OpenSSL checks the context of a ticket's
 * session too.
 */
#include "ssl_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"
#include "../tickets/keyring_glue.h"

#define MAX_TICKETS 16u
#define MAX_TIMEOUT_S (7u * 24 * 3600)

void tlsr_ssl_opts_init(struct tlsr_ssl_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->session_timeout_s = 3600;
    opts->tls13_tickets = TLSR_TLS13_STATELESS;
    opts->num_tickets = 2;
    opts->resume_tickets = 1;
    opts->keep_on_unexpected_eof = true;
    opts->early_window_s = 10;
    opts->is_early_replay_checked = true;
}

static tlsr_status check_opts(const struct tlsr_ssl_opts *o)
{
    ENSURE(o->session_timeout_s >= 1 && o->session_timeout_s <= MAX_TIMEOUT_S, TLSR_E_INVALID,
           "session timeout %u s is outside 1 s to 7 days", o->session_timeout_s);
    ENSURE(o->max_chain_s <= TLSR_MAX_CHAIN_S, TLSR_E_INVALID,
           "resumption chain cap %u s is over 30 days", o->max_chain_s);
    ENSURE(o->num_tickets <= MAX_TICKETS, TLSR_E_INVALID, "%u tickets per handshake (max %u)",
           o->num_tickets, MAX_TICKETS);
    ENSURE(o->resume_tickets <= 1, TLSR_E_INVALID,
           "%u tickets per resumption: OpenSSL sends 0 or 1", o->resume_tickets);
    ENSURE(o->sid_ctx_len <= SSL_MAX_SID_CTX_LENGTH && (o->sid_ctx != NULL || o->sid_ctx_len == 0),
           TLSR_E_INVALID, "session ID context of %zu bytes (max %d)", o->sid_ctx_len,
           SSL_MAX_SID_CTX_LENGTH);
    ENSURE(o->n_accept_contexts <= TLSR_ACCEPT_CONTEXTS_MAX &&
               (o->accept_contexts != NULL || o->n_accept_contexts == 0),
           TLSR_E_INVALID, "%zu accepted session ID contexts (max %u)", o->n_accept_contexts,
           TLSR_ACCEPT_CONTEXTS_MAX);
    for (size_t i = 0; i < o->n_accept_contexts; i++) {
        ENSURE(o->accept_contexts[i].len <= SSL_MAX_SID_CTX_LENGTH, TLSR_E_INVALID,
               "accepted session ID context %zu: %zu bytes (max %d)", i + 1,
               o->accept_contexts[i].len, SSL_MAX_SID_CTX_LENGTH);
    }
    ENSURE(o->n_accept_contexts == 0 || o->keyring != NULL, TLSR_E_INVALID,
           "accepted session ID contexts apply to tickets: pass a key ring");
    if (o->tls13_tickets == TLSR_TLS13_STATEFUL) {
        ENSURE(o->cache != NULL, TLSR_E_INVALID, "stateful TLS 1.3 tickets need a session cache");
        ENSURE(o->keyring == NULL, TLSR_E_INVALID,
               "stateful TLS 1.3 tickets turn TLS 1.2 tickets off too: pass no key ring");
    } else {
        ENSURE(o->tls13_tickets == TLSR_TLS13_STATELESS, TLSR_E_INVALID,
               "unknown TLS 1.3 ticket mode %d", (int)o->tls13_tickets);
    }
    return TLSR_OK;
}

/* The certificates' part of the derived context (ssl.h): the order they were loaded in does not
 * matter. */
tlsr_status tlsr_ssl_certificates_digest(SSL_CTX *ctx, uint8_t out[32])
{
    ENSURE(ctx != NULL, TLSR_E_INVALID, "certificates digest: NULL context");
    uint8_t fps[8][32];
    size_t n = 0;
    unsigned int fp_len = 0;
    ERR_clear_error();
    for (long more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); more == 1 && n < 8;
         more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        X509 *cert = SSL_CTX_get0_certificate(ctx);
        if (cert != NULL &&
            (X509_digest(cert, EVP_sha256(), fps[n], &fp_len) != 1 || fp_len != 32)) {
            return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot hash the certificate");
        }
        n += cert != NULL ? 1 : 0;
    }
    (void)SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
    ERR_clear_error();
    ENSURE(n > 0, TLSR_E_INVALID,
           "no certificate loaded: load it before tlsr_ssl_attach(), or pass sid_ctx");
    if (n == 1) {
        memcpy(out, fps[0], 32);
        return TLSR_OK;
    }
    unsigned int md_len = 0;
    if (EVP_Digest(fps, n * 32, out, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot hash the certificates");
    }
    return TLSR_OK;
}

/* SHA-256("tlsresume sid_ctx v1" | certificates_digest | verify mode). */
static tlsr_status derive_sid_ctx(SSL_CTX *ctx, uint8_t out[SSL_MAX_SID_CTX_LENGTH])
{
    uint8_t in[20 + 32 + 4] = "tlsresume sid_ctx v1";
    TRY(tlsr_ssl_certificates_digest(ctx, in + 20));
    uint32_t mode = (uint32_t)SSL_CTX_get_verify_mode(ctx);
    for (int i = 0; i < 4; i++) {
        in[52 + i] = (uint8_t)(mode >> (24 - 8 * i));
    }
    unsigned int md_len = 0;
    if (EVP_Digest(in, sizeof(in), out, &md_len, EVP_sha256(), NULL) != 1 ||
        md_len != SSL_MAX_SID_CTX_LENGTH) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot derive the session ID context");
    }
    return TLSR_OK;
}

/* With stateful tickets, OpenSSL ignores a PSK identity that is not 32 bytes long (a ticket of
 * another server) before any callback of ours; this callback, which OpenSSL calls for every
 * identity first, records the offer so that it is counted (unknown key, unless a later step
 * finds a better reason). We hold no external PSKs: *sess stays NULL and OpenSSL goes on. With
 * stateless tickets every identity reaches the ticket callbacks, so it is not installed: it
 * would replace an application's own external-PSK callback and make OpenSSL treat the server as
 * TLS 1.3 capable whatever its certificates. */
static int psk_offered(SSL *ssl, const unsigned char *identity, size_t identity_len,
                       SSL_SESSION **sess)
{
    (void)identity;
    (void)identity_len;
    *sess = NULL;
    if (tlsr_ssl_offer(ssl) == TLSR_OFFER_NONE) {
        tlsr__ssl_note_offer(ssl, TLSR_OFFER_PSK, TLSR_MISS_UNKNOWN_KEY);
    }
    return 1;
}

/* Applies the options to ctx once the binding is in place. */
static tlsr_status configure(SSL_CTX *ctx, const struct tlsr_ssl_opts *o, struct binding *b)
{
    ERR_clear_error();
    if (SSL_CTX_set_session_id_context(ctx, b->sid_ctx, (unsigned int)b->sid_ctx_len) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot set the session ID context");
    }
    if (o->cache != NULL) {
        tlsr__ssl_install_cache(ctx, b);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (o->keep_on_unexpected_eof) {
        SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    }
    uint32_t timeout = o->session_timeout_s;
    if (o->keyring != NULL) {
        SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
        tlsr__ssl_install_tickets(ctx, b);
        uint32_t lifetime = tlsr__keyring_lifetime_s(o->keyring);
        timeout = lifetime > timeout ? lifetime : timeout;
    } else {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        /* Stateful TLS 1.3 tickets still need their origin for the chain cap. */
        tlsr__ssl_install_chain(ctx, b);
    }
    bool can_resume_13 = o->keyring != NULL || o->tls13_tickets == TLSR_TLS13_STATEFUL;
    if (o->tls13_tickets == TLSR_TLS13_STATEFUL) {
        SSL_CTX_set_psk_find_session_callback(ctx, psk_offered);
    }
    if (SSL_CTX_set_num_tickets(ctx, can_resume_13 ? o->num_tickets : 0) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "cannot set the number of tickets");
    }
    /* The lifetime hint of tickets; OpenSSL caps TLS 1.3 ticket lifetimes at 7 days. */
    SSL_CTX_set_timeout(ctx, (long)timeout);
    return tlsr__ssl_install_early(ctx, o, b);
}

tlsr_status tlsr_ssl_attach(SSL_CTX *ctx, const struct tlsr_ssl_opts *opts)
{
    ENSURE(ctx != NULL && opts != NULL, TLSR_E_INVALID, "attach: NULL argument");
    TRY(check_opts(opts));
    TRY(tlsr__ssl_indexes());
    ENSURE(tlsr__ssl_binding(ctx) == NULL, TLSR_E_INVALID, "attach: SSL_CTX already attached");
    uint8_t sid_ctx[SSL_MAX_SID_CTX_LENGTH];
    size_t sid_ctx_len = opts->sid_ctx_len;
    if (sid_ctx_len > 0) {
        memcpy(sid_ctx, opts->sid_ctx, sid_ctx_len);
    } else {
        TRY(derive_sid_ctx(ctx, sid_ctx));
        sid_ctx_len = sizeof(sid_ctx);
    }
    struct binding *b = tlsr__calloc(1, sizeof(*b));
    ENSURE(b != NULL, TLSR_E_NOMEM, "attach: out of memory");
    b->cache = opts->cache;
    b->keyring = opts->keyring;
    b->session_timeout_s = opts->session_timeout_s;
    b->max_chain_s = opts->max_chain_s;
    b->resume_tickets = opts->resume_tickets;
    memcpy(b->sid_ctx, sid_ctx, sid_ctx_len);
    b->sid_ctx_len = sid_ctx_len;
    for (size_t i = 0; i < opts->n_accept_contexts; i++) {
        b->accepted[i] = opts->accept_contexts[i];
    }
    b->n_accepted = opts->n_accept_contexts;
    if (tlsr__ssl_bind(ctx, b) != TLSR_OK) {
        tlsr__free(b);
        return TLSR_E_NOMEM;
    }
    /* From here the SSL_CTX owns b and frees it; a failure leaves ctx unusable for resumption,
     * and the caller is told. */
    return configure(ctx, opts, b);
}

enum tlsr_resumption tlsr_ssl_resumption(const SSL *ssl)
{
    if (!SSL_session_reused(ssl)) {
        return TLSR_RESUMED_NONE;
    }
    if (SSL_version(ssl) == TLS1_3_VERSION) {
        return TLSR_RESUMED_PSK;
    }
    return (tlsr__ssl_conn_flags(ssl) & CONN_TICKET_RESUMED) != 0 ? TLSR_RESUMED_TICKET
                                                                  : TLSR_RESUMED_ID;
}

bool tlsr_ssl_resumed_foreign(const SSL *ssl)
{
    return SSL_session_reused(ssl) &&
           (tlsr__ssl_conn_flags(ssl) & (CONN_FOREIGN_KEY | CONN_FOREIGN_CONTEXT)) != 0;
}

void tlsr_ssl_l2_result(SSL *ssl, enum tlsr_l2_result result)
{
    unsigned f = tlsr__ssl_conn_flags(ssl) & ~CONN_L2_MASK;
    tlsr__ssl_conn_set_flags(ssl, f | ((unsigned)result << CONN_L2_SHIFT));
}

enum tlsr_offer tlsr_ssl_offer(const SSL *ssl)
{
    return (enum tlsr_offer)((tlsr__ssl_conn_flags(ssl) & CONN_OFFER_MASK) >> CONN_OFFER_SHIFT);
}

enum tlsr_miss tlsr_ssl_miss(const SSL *ssl)
{
    if (SSL_session_reused(ssl) || tlsr_ssl_offer(ssl) == TLSR_OFFER_NONE) {
        return TLSR_MISS_NONE;
    }
    unsigned m = (tlsr__ssl_conn_flags(ssl) & CONN_MISS_MASK) >> CONN_MISS_SHIFT;
    return m == TLSR_MISS_NONE || m >= TLSR_MISS_COUNT ? TLSR_MISS_OTHER : (enum tlsr_miss)m;
}

const char *tlsr_offer_name(enum tlsr_offer offer)
{
    static const char *const names[] = {"none", "id", "ticket", "psk"};
    return (unsigned)offer < 4 ? names[offer] : "none";
}

const char *tlsr_miss_name(enum tlsr_miss miss)
{
    static const char *const names[TLSR_MISS_COUNT] = {"-",
                                                       "unknown_key",
                                                       "bad_mac",
                                                       "expired",
                                                       "chain_expired",
                                                       "cache_miss",
                                                       "fleet_miss",
                                                       "fleet_timeout",
                                                       "fleet_down",
                                                       "entry_rejected",
                                                       "context_mismatch",
                                                       "version_or_cipher",
                                                       "other"};
    return (unsigned)miss < TLSR_MISS_COUNT ? names[miss] : "other";
}

const char *tlsr_resumption_name(enum tlsr_resumption kind)
{
    switch (kind) {
    case TLSR_RESUMED_ID:
        return "id";
    case TLSR_RESUMED_TICKET:
        return "ticket";
    case TLSR_RESUMED_PSK:
        return "psk";
    case TLSR_RESUMED_NONE:
    default:
        return "full";
    }
}

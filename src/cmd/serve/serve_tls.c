/*
 * SSL_CTX construction for `tlsresume serve`.
 *
 * Every certificate gets its own SSL_CTX, attached to the shared cache and key ring with a
 * session ID context derived from that certificate. The certificate is chosen by SNI in the
 * client-hello callback, which runs before OpenSSL decides whether to resume, so a session or
 * ticket made for one virtual host never resumes on another.
 */
#include "serve_tls.h"

#include <errno.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "../cli/log.h"
#include "serve_client_auth.h"
#include "serve_key.h"
#include "serve_ocsp.h"
#include "serve_openssl.h"

/* Picks the SSL_CTX whose certificate matches the client's SNI. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    struct tls_set *set = arg;
    char name[TLSR_SNI_MAX + 1];
    if (set->n >= 2 && tlsr_ssl_client_hello_servername(ssl, name) == TLSR_OK) {
        for (size_t i = 0; i < set->n; i++) {
            X509 *cert = SSL_CTX_get0_certificate(set->ctx[i]);
            if (cert != NULL && X509_check_host(cert, name, 0, 0, NULL) == 1) {
                if (i > 0 && SSL_set_SSL_CTX(ssl, set->ctx[i]) == NULL) {
                    return SSL_CLIENT_HELLO_ERROR;
                }
                break;
            }
        }
    }
    /* With the certificate chosen, the session ID context is known: ask the fleet (which
     * also records a 0-RTT ClientHello), or record it here. */
    if (set->fleet != NULL) {
        return tlsr_fleet_cache_client_hello(set->fleet, ssl, set->fleet_resume, NULL);
    }
    uint8_t key[32];
    tlsr_status rc = tlsr_ssl_client_hello_early(ssl, key);
    (void)rc; /* the outcome is kept on the connection; refused early data is no error */
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    struct tls_set *set = arg;
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, set->alpn, (unsigned int)set->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static bool alpn_wire(const char *list, struct tls_set *set, char *err, size_t cap)
{
    set->alpn_len = 0;
    for (const char *p = list; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > 255 || len + 1 > sizeof(set->alpn) - set->alpn_len) {
            snprintf(err, cap, "alpn: bad protocol list '%s'", list);
            return false;
        }
        set->alpn[set->alpn_len++] = (unsigned char)len;
        memcpy(set->alpn + set->alpn_len, p, len);
        set->alpn_len += len;
        p = comma != NULL ? comma + 1 : p + len;
    }
    return true;
}

/* An ephemeral P-256 certificate for localhost, 127.0.0.1 and ::1, valid for a day. */
static bool self_signed(SSL_CTX *ctx, char *err, size_t cap)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509V3_CTX v3;
    X509_EXTENSION *san = NULL;
    bool ok = key != NULL && x != NULL && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -300) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), 86400) != NULL &&
              X509_set_pubkey(x, key) == 1 &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                         (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
              X509_set_issuer_name(x, X509_get_subject_name(x)) == 1;
    if (ok) {
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name,
                                  "DNS:localhost,IP:127.0.0.1,IP:::1");
        ok = san != NULL && X509_add_ext(x, san, -1) == 1 && X509_sign(x, key, EVP_sha256()) > 0 &&
             SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    }
    if (!ok) {
        tls_error(err, cap, "self_signed: cannot make a certificate");
    }
    X509_EXTENSION_free(san);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

static bool load_pair(SSL_CTX *ctx, const char *cert, const char *key, const char *password_file,
                      char *err, size_t cap)
{
    char what[600];
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(what, sizeof(what), "cert: %s", cert);
        tls_error(err, cap, what);
        return false;
    }
    EVP_PKEY *pkey = NULL;
    if (!serve_key_load(key, password_file, &pkey, err, cap)) {
        return false;
    }
    int is_used = SSL_CTX_use_PrivateKey(ctx, pkey);
    EVP_PKEY_free(pkey);
    if (is_used != 1) {
        snprintf(what, sizeof(what), "key: %s (for cert %s)", key, cert);
        tls_error(err, cap, what);
        return false;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "key: %s does not match %s", key, cert);
        tls_error(err, cap, what);
        return false;
    }
    return true;
}

static bool configure(SSL_CTX *ctx, const struct serve_config *cfg, char *err, size_t cap)
{
    int min = strcmp(cfg->min_tls, "1.3") == 0 ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
        tls_error(err, cap, "min_tls");
        return false;
    }
    if (SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1) {
        tls_error(err, cap, "ciphers");
        return false;
    }
    if (SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1) {
        tls_error(err, cap, "ciphersuites");
        return false;
    }
    if (SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1) {
        tls_error(err, cap, "groups");
        return false;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* One read(2) per flight instead of one per record header and one per body: a resumed
     * TLS 1.2 handshake reads its client's CCS and Finished together. The relay loop checks
     * SSL_has_pending() for bytes read ahead. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return true;
}

static bool attach(SSL_CTX *ctx, const struct serve_config *cfg, struct tlsr_cache *cache,
                   struct tlsr_keyring *ring, struct tlsr_cache *early_register, char *err,
                   size_t cap)
{
    struct tlsr_ssl_opts o;
    tlsr_ssl_opts_init(&o);
    o.cache = cache;
    o.keyring = ring;
    o.session_timeout_s = (uint32_t)cfg->session_timeout_s;
    o.num_tickets = (unsigned)cfg->num_tickets;
    o.resume_tickets = (unsigned)cfg->resume_tickets;
    o.max_chain_s = (uint32_t)cfg->max_resumption_chain_s;
    struct tlsr_sid_ctx sid;
    struct tlsr_sid_ctx accepted[TLSR_ACCEPT_CONTEXTS_MAX];
    size_t n_accepted = 0;
    if (!serve_session_context(cfg, ctx, &sid, err, cap) ||
        !serve_accepted_contexts(cfg, ctx, accepted, &n_accepted, err, cap)) {
        return false;
    }
    uint8_t sid_ctx[32];
    size_t sid_ctx_len = sid.len;
    memcpy(sid_ctx, sid.bytes, sid.len);
    if (client_auth_is_on(cfg)) {
        /* Sessions bound to the client trust too (serve_client_auth.c). */
        uint8_t base[32];
        memcpy(base, sid_ctx, sid_ctx_len);
        if (!client_auth_sid_ctx(ctx, cfg, base, sid_ctx_len, sid_ctx, err, cap)) {
            return false;
        }
        sid_ctx_len = 32;
    }
    if (sid_ctx_len > 0) {
        o.sid_ctx = sid_ctx;
        o.sid_ctx_len = sid_ctx_len;
    }
    o.accept_contexts = accepted;
    o.n_accept_contexts = n_accepted;
    o.tls13_tickets =
        strcmp(cfg->tls13_tickets, "stateful") == 0 ? TLSR_TLS13_STATEFUL : TLSR_TLS13_STATELESS;
    if (cfg->early_data) {
        if (early_register == NULL && cfg->early_data_anti_replay) {
            snprintf(err, cap, "early_data: turned on by a reload; restart to enable it");
            return false;
        }
        o.max_early_data = (uint32_t)cfg->max_early_data;
        o.early_register = early_register;
        o.early_window_s = (uint32_t)cfg->early_data_window_s;
        o.is_early_replay_checked = cfg->early_data_anti_replay;
    }
    if (tlsr_ssl_attach(ctx, &o) != TLSR_OK) {
        snprintf(err, cap, "resumption: %s", tlsr_last_error());
        return false;
    }
    return true;
}

/* The leaf certificate of a PEM file (the caller frees it); NULL with err set. */
static X509 *read_leaf(const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, cap, "cert: %s: %s", path, strerror(errno));
        return NULL;
    }
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x == NULL) {
        char what[600];
        snprintf(what, sizeof(what), "cert: %s", path);
        tls_error(err, cap, what);
    }
    return x;
}

/* Whether two certificates are for the same names: the same subject and the same
 * subjectAltName extension, byte for byte (both absent counts as the same). */
static bool same_names(X509 *a, X509 *b)
{
    if (X509_NAME_cmp(X509_get_subject_name(a), X509_get_subject_name(b)) != 0) {
        return false;
    }
    int ia = X509_get_ext_by_NID(a, NID_subject_alt_name, -1);
    int ib = X509_get_ext_by_NID(b, NID_subject_alt_name, -1);
    if (ia < 0 || ib < 0) {
        return ia < 0 && ib < 0;
    }
    return ASN1_STRING_cmp(X509_EXTENSION_get_data(X509_get_ext(a, ia)),
                           X509_EXTENSION_get_data(X509_get_ext(b, ib))) == 0;
}

/* The context certificate i goes into: an earlier one for the same names with another key type
 * (RSA beside ECDSA: OpenSSL picks per client by its signature algorithms and ciphers), else a
 * new one (-1). False when an earlier one has the same names and the same key type too. */
static bool group_of(const struct serve_config *cfg, X509 *const *leaf, const int *ctx_of, size_t i,
                     int *out, char *err, size_t cap)
{
    *out = -1;
    for (size_t j = 0; j < i; j++) {
        if (!same_names(leaf[j], leaf[i])) {
            continue;
        }
        if (EVP_PKEY_get_base_id(X509_get0_pubkey(leaf[j])) ==
            EVP_PKEY_get_base_id(X509_get0_pubkey(leaf[i]))) {
            snprintf(err, cap,
                     "cert: %s and %s are for the same names with the same key type; only one of "
                     "them could ever be served",
                     cfg->cert.v[j], cfg->cert.v[i]);
            return false;
        }
        *out = ctx_of[j];
    }
    return true;
}

bool tls_set_build(const struct serve_config *cfg, struct tlsr_cache *cache,
                   struct tlsr_keyring *ring, struct tlsr_cache *early_register,
                   struct tls_set *set, char *err, size_t cap)
{
    memset(set, 0, sizeof(*set));
    ERR_clear_error();
    if (!alpn_wire(cfg->alpn, set, err, cap)) {
        return false;
    }
    size_t n = cfg->self_signed ? 1 : cfg->cert.n;
    X509 *leaf[CLI_LIST_MAX] = {NULL};
    int ctx_of[CLI_LIST_MAX];
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        int g = -1;
        ok = cfg->self_signed || ((leaf[i] = read_leaf(cfg->cert.v[i], err, cap)) != NULL &&
                                  group_of(cfg, leaf, ctx_of, i, &g, err, cap));
        if (ok && g < 0) {
            SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
            if (ctx == NULL) {
                tls_error(err, cap, "SSL_CTX_new");
                ok = false;
                break;
            }
            g = (int)set->n;
            set->ctx[set->n++] = ctx;
            ok = configure(ctx, cfg, err, cap) && client_auth_configure(ctx, cfg, err, cap);
        }
        ctx_of[i] = g;
        ok = ok &&
             (cfg->self_signed
                  ? self_signed(set->ctx[g], err, cap)
                  : load_pair(set->ctx[g], cfg->cert.v[i], cfg->key.v[i],
                              cfg->key_password_file[0] != '\0' ? cfg->key_password_file : NULL,
                              err, cap));
    }
    for (size_t i = 0; i < n; i++) {
        X509_free(leaf[i]);
    }
    ok = ok && ocsp_load(cfg, set, err, cap);
    /* Attached once every certificate of a context is in: the derived session ID context
     * covers them all. */
    for (size_t g = 0; ok && g < set->n; g++) {
        ok = attach(set->ctx[g], cfg, cache, ring, early_register, err, cap);
        if (ok && set->alpn_len > 0) {
            SSL_CTX_set_alpn_select_cb(set->ctx[g], on_alpn, set);
        }
    }
    if (!ok) {
        tls_set_free(set);
        return false;
    }
    if (set->n > 1 || cfg->redis.n > 0 || cfg->early_data) {
        SSL_CTX_set_client_hello_cb(set->ctx[0], on_client_hello, set);
    }
    return true;
}

void tls_set_free(struct tls_set *set)
{
    ocsp_free(set);
    for (size_t i = 0; i < set->n; i++) {
        SSL_CTX_free(set->ctx[i]);
    }
    set->n = 0;
}

/*
 * The backend leg over TLS (--backend-tls), and its session store.
 *
 * Each backend's name is --backend-servername, else its configured host; an IP address is
 * verified against the certificate's IP addresses and sends no SNI. Its session key, under
 * which serve_upstream_store.c keeps its sessions, is
 *
 *   SHA-256("tlsresume upstream 1" || trust || backend address (sockaddr bytes) || its name)
 *   trust = SHA-256(insecure flag || CA file bytes, or the system's || backend_servername ||
 *                   client certificate file bytes)
 *
 * The handshake runs after the TCP connect; ALPN offers the backend the protocol the client
 * chose with us. What it did is counted (full, resumed, why full, failures) and logged.
 */
#include "serve_upstream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <tlsresume/client.h>

#include "../cli/log.h"
#include "serve_key.h"
#include "serve_upstream_store.h"
#include "serve_openssl.h"

/* The system's CA certificates as OpenSSL finds them: the bytes of its default file, if any
 * (a CA removed from it changes the trust), and the name of its directory. */
static bool digest_system(EVP_MD_CTX *md)
{
    const char *dir = X509_get_default_cert_dir();
    return EVP_DigestUpdate(md, "system", 6) == 1 &&
           (access(X509_get_default_cert_file(), R_OK) != 0 ||
            tls_digest_file(md, X509_get_default_cert_file())) &&
           EVP_DigestUpdate(md, dir, strlen(dir)) == 1;
}

static bool trust_digest(const struct serve_config *cfg, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t flag = cfg->backend_insecure ? 1 : 0;
    bool ok =
        md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(md, &flag, 1) == 1 &&
        (cfg->backend_ca[0] != '\0' ? tls_digest_file(md, cfg->backend_ca) : digest_system(md)) &&
        EVP_DigestUpdate(md, cfg->backend_servername, strlen(cfg->backend_servername) + 1) == 1 &&
        (cfg->backend_cert[0] == '\0' || tls_digest_file(md, cfg->backend_cert)) &&
        EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

static bool client_cert(SSL_CTX *ctx, const struct serve_config *cfg, char *err, size_t cap)
{
    char what[600];
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->backend_cert) != 1) {
        snprintf(what, sizeof(what), "backend_cert: %s", cfg->backend_cert);
        tls_error(err, cap, what);
        return false;
    }
    const char *key = cfg->backend_key[0] != '\0' ? cfg->backend_key : cfg->backend_cert;
    EVP_PKEY *pkey = NULL;
    if (!serve_key_load(key, cfg->key_password_file[0] != '\0' ? cfg->key_password_file : NULL,
                        &pkey, err, cap)) {
        return false;
    }
    int is_used = SSL_CTX_use_PrivateKey(ctx, pkey);
    EVP_PKEY_free(pkey);
    if (is_used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "backend_key: %s does not fit %s", key, cfg->backend_cert);
        tls_error(err, cap, what);
        return false;
    }
    return true;
}

bool upstream_build(const struct serve_config *cfg, struct tlsr_cache *store, struct upstream *up,
                    char *err, size_t cap)
{
    memset(up, 0, sizeof(*up));
    ERR_clear_error();
    if (!trust_digest(cfg, up->trust)) {
        snprintf(err, cap, "backend_ca/backend_cert: cannot read the files");
        return false;
    }
    up->ctx = SSL_CTX_new(TLS_client_method());
    if (up->ctx == NULL || SSL_CTX_set_min_proto_version(up->ctx, TLS1_2_VERSION) != 1) {
        tls_error(err, cap, "backend_tls");
        upstream_free(up);
        return false;
    }
    /* No SSL_OP_IGNORE_UNEXPECTED_EOF: a backend's stream that ends without close_notify is
     * told apart (serve_proxy.c passes the truncation on to the client). */
    SSL_CTX_set_options(up->ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(up->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(up->ctx, 1);
    up->is_insecure = cfg->backend_insecure;
    SSL_CTX_set_verify(up->ctx, up->is_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    bool ok = true;
    if (cfg->backend_ca[0] != '\0') {
        if (SSL_CTX_load_verify_locations(up->ctx, cfg->backend_ca, NULL) != 1) {
            char what[600];
            snprintf(what, sizeof(what), "backend_ca: %s", cfg->backend_ca);
            tls_error(err, cap, what);
            ok = false;
        }
    } else if (!up->is_insecure && SSL_CTX_set_default_verify_paths(up->ctx) != 1) {
        tls_error(err, cap, "backend_ca: the system's CA certificates");
        ok = false;
    }
    if (ok && cfg->backend_cert[0] != '\0') {
        ok = client_cert(up->ctx, cfg, err, cap);
    }
    if (!ok) {
        upstream_free(up);
        return false;
    }
    up->store = cfg->backend_session_reuse ? store : NULL;
    if (up->store != NULL) {
        SSL_CTX_set_session_cache_mode(up->ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(up->ctx, upstream_store_on_ticket);
    } else {
        SSL_CTX_set_session_cache_mode(up->ctx, SSL_SESS_CACHE_OFF);
    }
    return true;
}

void upstream_free(struct upstream *up)
{
    SSL_CTX_free(up->ctx);
    up->ctx = NULL;
}

bool upstream_new(const struct serve_config *cfg, struct tlsr_cache **store, struct upstream **out,
                  char *err, size_t cap)
{
    *out = NULL;
    if (!cfg->backend_tls) {
        return true;
    }
    if (cfg->backend_session_reuse && *store == NULL &&
        tlsr_cache_new((size_t)cfg->backend_session_cache_bytes, store) != TLSR_OK) {
        snprintf(err, cap, "backend_session_cache: %s", tlsr_last_error());
        return false;
    }
    struct upstream *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        snprintf(err, cap, "out of memory");
        return false;
    }
    if (!upstream_build(cfg, *store, up, err, cap)) {
        free(up);
        return false;
    }
    if (cfg->backend_insecure) {
        log_msg(LOG_WARN, "serve",
                "event=backend_insecure note=\"the backends' certificates are not verified: "
                "anyone on the path can read and change the traffic\"");
    }
    *out = up;
    return true;
}

void upstream_delete(struct upstream *up)
{
    if (up != NULL) {
        upstream_free(up);
        free(up);
    }
}

void upstream_endpoint(const struct upstream *up, const struct serve_config *cfg,
                       struct backend_addr *b)
{
    if (cfg->backend_servername[0] != '\0') {
        snprintf(b->tls_name, sizeof(b->tls_name), "%s", cfg->backend_servername);
    } else if (b->name[0] == '[') {
        size_t n = strcspn(b->name + 1, "]");
        snprintf(b->tls_name, sizeof(b->tls_name), "%.*s", (int)n, b->name + 1);
    } else {
        const char *colon = strrchr(b->name, ':');
        size_t n = colon != NULL ? (size_t)(colon - b->name) : strlen(b->name);
        snprintf(b->tls_name, sizeof(b->tls_name), "%.*s", (int)n, b->name);
    }
    uint8_t ip[16];
    b->is_tls_name_ip =
        inet_pton(AF_INET, b->tls_name, ip) == 1 || inet_pton(AF_INET6, b->tls_name, ip) == 1;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, "tlsresume upstream 1", 20) == 1 &&
              EVP_DigestUpdate(md, up->trust, sizeof(up->trust)) == 1 &&
              EVP_DigestUpdate(md, &b->addr, b->len) == 1 &&
              EVP_DigestUpdate(md, b->tls_name, strlen(b->tls_name)) == 1 &&
              EVP_DigestFinal_ex(md, b->session_key, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) {
        /* No digest: a key of zeros would be shared by every backend; use the address. */
        memset(b->session_key, 0, sizeof(b->session_key));
        memcpy(b->session_key, &b->addr, b->len < 32 ? b->len : 32);
    }
}

/* The name c's backend must prove: SNI unless an IP address, and the verified identity. */
static bool set_name(SSL *s, const struct backend_addr *b, bool is_insecure)
{
    if (!b->is_tls_name_ip && SSL_set_tlsext_host_name(s, b->tls_name) != 1) {
        return false;
    }
    if (is_insecure) {
        return true;
    }
    if (b->is_tls_name_ip) {
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), b->tls_name) == 1;
    }
    SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(s, b->tls_name) == 1;
}

bool upstream_start(struct conn *c, char *err, size_t cap)
{
    const struct upstream *up = c->w->a->up;
    const struct backend_addr *b = &c->w->a->backends[c->backend];
    ERR_clear_error();
    SSL *s = SSL_new(up->ctx);
    if (s == NULL || SSL_set_fd(s, c->bfd) != 1 || !set_name(s, b, up->is_insecure)) {
        tls_error(err, cap, "tls: cannot make the backend's SSL");
        SSL_free(s);
        return false;
    }
    SSL_set_app_data(s, c);
    SSL_set_connect_state(s);
    /* The protocol the client chose is the one its bytes speak: offer the backend that one. */
    const unsigned char *proto = NULL;
    unsigned proto_len = 0;
    SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
    if (proto_len > 0) {
        unsigned char wire[256];
        wire[0] = (unsigned char)proto_len;
        memcpy(wire + 1, proto, proto_len);
        (void)SSL_set_alpn_protos(s, wire, proto_len + 1); /* 0 on success; none is no error */
    }
    c->upstream_miss = up->store != NULL ? UP_MISS_NO_SESSION : UP_MISS_DISABLED;
    SSL_SESSION_free(c->offered);
    c->offered = up->store != NULL ? upstream_store_take(c, &c->upstream_miss) : NULL;
    if (c->offered != NULL && SSL_set_session(s, c->offered) != 1) {
        SSL_SESSION_free(c->offered);
        c->offered = NULL;
    }
    c->bssl = s;
    c->b_read_wants = 0;
    c->b_write_wants = 0;
    return true;
}

/* Counts the finished handshake and stores what resumes the next one. */
static void finished(struct conn *c)
{
    struct metrics_slot *m = c->w->a->metrics;
    bool is_reused = SSL_session_reused(c->bssl) == 1;
    c->upstream = is_reused ? UP_RESUMED : UP_FULL;
    metrics_add(m, is_reused ? M_UP_RESUMED : M_UP_FULL, 1);
    if (is_reused) {
        c->upstream_miss = UP_MISS_NONE;
    } else {
        if (c->offered != NULL) {
            /* Refused: a TLS 1.3 ticket says the backend lost its keys (its other tickets are
             * as dead); a TLS 1.2 session is replaced below, or dropped if none replaces it. */
            c->upstream_miss = UP_MISS_REFUSED;
            upstream_store_forget(c,
                                  SSL_SESSION_get_protocol_version(c->offered) == TLS1_3_VERSION);
        }
        static const enum metric by_miss[] = {[UP_MISS_NO_SESSION] = M_UP_MISS_NO_SESSION,
                                              [UP_MISS_REFUSED] = M_UP_MISS_REFUSED,
                                              [UP_MISS_UNREADABLE] = M_UP_MISS_UNREADABLE,
                                              [UP_MISS_DISABLED] = M_UP_MISS_DISABLED};
        metrics_add(m, by_miss[c->upstream_miss], 1);
    }
    SSL_SESSION *now = SSL_get0_session(c->bssl);
    if (c->w->a->up->store != NULL && now != NULL && SSL_version(c->bssl) != TLS1_3_VERSION &&
        (!is_reused ||
         (SSL_SESSION_has_ticket(now) && !tlsr_client_same_ticket(c->offered, now)))) {
        upstream_store_put_tls12(c, now);
    }
    SSL_SESSION_free(c->offered);
    c->offered = NULL;
}

int upstream_handshake(struct conn *c, char *err, size_t cap)
{
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(c->bssl);
    if (r == 1) {
        finished(c);
        return 1;
    }
    int e = SSL_get_error(c->bssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        c->b_read_wants = e;
        return 0;
    }
    const struct backend_addr *b = &c->w->a->backends[c->backend];
    long v = c->w->a->up->is_insecure ? X509_V_OK : SSL_get_verify_result(c->bssl);
    int rc = -1;
    if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL) {
        /* This client's protocol, which the backend does not speak: not the backend's fault. */
        const unsigned char *proto = NULL;
        unsigned proto_len = 0;
        SSL_get0_alpn_selected(c->ssl, &proto, &proto_len);
        snprintf(err, cap, "tls: the backend does not speak %.*s, the client's ALPN protocol",
                 (int)proto_len, proto != NULL ? (const char *)proto : "");
        ERR_clear_error();
        metrics_add(c->w->a->metrics, M_UP_FAIL_ALPN, 1);
        rc = -2;
    } else if (v != X509_V_OK) {
        snprintf(err, cap, "tls: the backend's certificate is refused: %s (%s %s)",
                 X509_verify_cert_error_string(v), b->is_tls_name_ip ? "address" : "name",
                 b->tls_name);
        ERR_clear_error();
        metrics_add(c->w->a->metrics, M_UP_FAIL_VERIFY, 1);
    } else if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0 && errno != 0 &&
               SSL_get_state(c->bssl) == TLS_ST_CW_CLNT_HELLO) {
        /* The ClientHello went out right after connect(): its failure is the connect's. */
        snprintf(err, cap, "connect: %s", strerror(errno));
    } else if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
        snprintf(err, cap, "tls: the backend closed during the handshake%s%s",
                 errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
        metrics_add(c->w->a->metrics, M_UP_FAIL_HANDSHAKE, 1);
    } else {
        tls_error(err, cap, "tls: handshake with the backend failed");
        metrics_add(c->w->a->metrics, M_UP_FAIL_HANDSHAKE, 1);
    }
    SSL_SESSION_free(c->offered);
    c->offered = NULL;
    return rc;
}

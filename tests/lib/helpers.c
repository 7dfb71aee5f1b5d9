/* Shared helpers of the unit tests (see helpers.h). */
#include "helpers.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

uint64_t th_clock_fn(void *arg)
{
    return ((struct th_clock *)arg)->now;
}

static X509 *self_signed(EVP_PKEY *key, const char *cn)
{
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, name);
    if (X509_sign(x, key, EVP_sha256()) <= 0) {
        X509_free(x);
        return NULL;
    }
    return x;
}

SSL_CTX *th_server_ctx(int min_version, int max_version, const char *cn)
{
    return th_server_ctx_key(min_version, max_version, cn, false);
}

SSL_CTX *th_server_ctx_key(int min_version, int max_version, const char *cn, bool is_rsa)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = is_rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *cert = key != NULL ? self_signed(key, cn) : NULL;
    if (ctx == NULL || cert == NULL || SSL_CTX_use_certificate(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    if (ctx != NULL) {
        SSL_CTX_set_min_proto_version(ctx, min_version);
        SSL_CTX_set_max_proto_version(ctx, max_version);
    }
    return ctx;
}

SSL_CTX *th_client_ctx(int min_version, int max_version)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, max_version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* Drives both sides until neither makes progress; returns true when both finished. */
static bool pump(SSL *c, SSL *s)
{
    for (int i = 0; i < 50; i++) {
        int rc_c = SSL_do_handshake(c);
        int rc_s = SSL_do_handshake(s);
        if (rc_c == 1 && rc_s == 1) {
            return true;
        }
        int e_c = SSL_get_error(c, rc_c);
        int e_s = SSL_get_error(s, rc_s);
        if ((rc_c != 1 && e_c != SSL_ERROR_WANT_READ && e_c != SSL_ERROR_WANT_WRITE) ||
            (rc_s != 1 && e_s != SSL_ERROR_WANT_READ && e_s != SSL_ERROR_WANT_WRITE)) {
            return false;
        }
    }
    return false;
}

void th_pair(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer, SSL **s, SSL **c, BIO **s_bio,
             BIO **c_bio)
{
    *s = SSL_new(server);
    *c = SSL_new(client);
    BIO_new_bio_pair(s_bio, 0, c_bio, 0);
    SSL_set_bio(*s, *s_bio, *s_bio);
    SSL_set_bio(*c, *c_bio, *c_bio);
    SSL_set_accept_state(*s);
    SSL_set_connect_state(*c);
    if (offer != NULL) {
        SSL_set_session(*c, offer);
    }
}

bool th_open(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer, SSL **s, SSL **c, BIO **s_bio,
             BIO **c_bio)
{
    th_pair(server, client, offer, s, c, s_bio, c_bio);
    return pump(*c, *s);
}

static struct th_result handshake(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer,
                                  bool is_clean)
{
    struct th_result r;
    memset(&r, 0, sizeof(r));
    SSL *s = NULL;
    SSL *c = NULL;
    BIO *bs = NULL;
    BIO *bc = NULL;
    th_pair(server, client, offer, &s, &c, &bs, &bc);
    r.is_ok = pump(c, s);
    if (r.is_ok) {
        unsigned char byte = 'x';
        unsigned char got = 0;
        /* Server speaks first so that TLS 1.3 tickets travel before the data. */
        SSL_write(s, &byte, 1);
        SSL_read(c, &got, 1);
        SSL_write(c, &byte, 1);
        SSL_read(s, &got, 1);
        r.is_reused = SSL_session_reused(c) == 1;
        r.kind = tlsr_ssl_resumption(s);
        r.version = SSL_version(c);
        r.session = SSL_get1_session(c);
        r.server_session = SSL_get1_session(s);
        r.offer = tlsr_ssl_offer(s);
        r.miss = tlsr_ssl_miss(s);
        if (is_clean) {
            SSL_shutdown(s);
            SSL_shutdown(c);
        } else {
            /* The client closes its socket without close_notify but keeps its session (as
             * browsers do); the server side is freed as after a reset. */
            SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        }
    }
    ERR_clear_error();
    SSL_free(s);
    SSL_free(c);
    return r;
}

struct th_result th_handshake(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer)
{
    return handshake(server, client, offer, true);
}

struct th_result th_handshake_abrupt(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer)
{
    return handshake(server, client, offer, false);
}

void th_result_free(struct th_result *r)
{
    SSL_SESSION_free(r->session);
    SSL_SESSION_free(r->server_session);
    r->session = NULL;
    r->server_session = NULL;
}

bool th_is_locked_nodump(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) {
        return false;
    }
    char line[512];
    bool in_range = false;
    bool result = false;
    uintptr_t addr = (uintptr_t)p;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo;
        unsigned long hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in_range = addr >= lo && addr < hi;
            continue;
        }
        if (in_range && strncmp(line, "VmFlags:", 8) == 0) {
            result = strstr(line, " lo") != NULL && strstr(line, " dd") != NULL;
            break;
        }
    }
    fclose(f);
    return result;
}

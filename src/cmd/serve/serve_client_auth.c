/*
 * Client certificates for `tlsresume serve` (--client-verify optional|require, --client-ca,
 * --client-crl, --client-verify-depth): each server context asks for a certificate, verifies it
 * against the CAs (and the CRLs, leaf certificates checked), and binds its sessions to that
 * trust. A resumed session carries the certificate its full handshake verified, so the session
 * ID context of a context with client verification is
 *
 *   SHA-256("tlsresume client trust 1" || base || verify mode (4 bytes) || depth (4 bytes) ||
 *           SHA-256(CA file bytes) || SHA-256(CRL file bytes, or nothing))
 *   base = session_context when set, else tlsr_ssl_certificates_digest()
 *
 * and a reload that changes the CAs or the CRL (or the mode) resumes no session verified under
 * the old trust: those clients make a full handshake, verified again (counted as
 * context_mismatch). Without client verification the context is the library's, as before.
 */
#include "serve_client_auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <tlsresume/ssl.h>

#include "../cli/cli.h"
#include "../cli/log.h"
#include "serve_openssl.h"

bool client_auth_is_on(const struct serve_config *cfg)
{
    return strcmp(cfg->client_verify, "off") != 0;
}

/* Adds the bytes of the file at path to md; false (err set, naming the option) when it cannot be
 * read. */
static bool digest_file(EVP_MD_CTX *md, const char *what, const char *path, char *err, size_t cap)
{
    if (!tls_digest_file(md, path)) {
        snprintf(err, cap, "%s: %s: cannot be read", what, path);
        return false;
    }
    return true;
}

/* Every CRL of the PEM file into the context's store, leaf certificates checked against them. */
static bool load_crls(SSL_CTX *ctx, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, cap, "client_crl: %s: %s", path, strerror(errno));
        return false;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    size_t n = 0;
    X509_CRL *crl;
    char what[600];
    ERR_clear_error();
    while ((crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)) != NULL) {
        const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
        if (next != NULL && X509_cmp_current_time(next) < 0) {
            log_msg(LOG_WARN, "tls",
                    "client_crl=%s note=\"a CRL is past its nextUpdate: client certificates of "
                    "its CA are refused until a current one is loaded\"",
                    path);
        }
        int is_added = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (is_added != 1) {
            fclose(f);
            snprintf(what, sizeof(what), "client_crl: %s", path);
            tls_error(err, cap, what);
            return false;
        }
        n++;
    }
    fclose(f);
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        /* Not the end of the file: a damaged block after the good ones. */
        snprintf(what, sizeof(what), "client_crl: %s (after %zu CRLs)", path, n);
        tls_error(err, cap, what);
        return false;
    }
    ERR_clear_error(); /* the end of the file */
    if (n == 0) {
        snprintf(err, cap, "client_crl: %s: no CRL in it (PEM, -----BEGIN X509 CRL-----)", path);
        return false;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    return true;
}

bool client_auth_configure(SSL_CTX *ctx, const struct serve_config *cfg, char *err, size_t cap)
{
    if (!client_auth_is_on(cfg)) {
        return true;
    }
    ERR_clear_error();
    char what[600];
    snprintf(what, sizeof(what), "client_ca: %s", cfg->client_ca);
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
    if (SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1 || names == NULL) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        tls_error(err, cap, what);
        return false;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* the names a client chooses its certificate by */
    if (cfg->client_crl[0] != '\0' && !load_crls(ctx, cfg->client_crl, err, cap)) {
        return false;
    }
    bool is_required = strcmp(cfg->client_verify, "require") == 0;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (is_required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       NULL);
    SSL_CTX_set_verify_depth(ctx, (int)cfg->client_verify_depth);
    return true;
}

bool client_auth_sid_ctx(SSL_CTX *ctx, const struct serve_config *cfg, const uint8_t *base,
                         size_t base_len, uint8_t out[32], char *err, size_t cap)
{
    uint8_t certs[32];
    if (base_len == 0) {
        if (tlsr_ssl_certificates_digest(ctx, certs) != TLSR_OK) {
            snprintf(err, cap, "client_verify: %s", tlsr_last_error());
            return false;
        }
        base = certs;
        base_len = sizeof(certs);
    }
    uint8_t ca[32], crl[32] = {0};
    uint8_t fields[8];
    uint32_t mode = (uint32_t)SSL_CTX_get_verify_mode(ctx);
    uint32_t depth = (uint32_t)cfg->client_verify_depth;
    for (int i = 0; i < 4; i++) {
        fields[i] = (uint8_t)(mode >> (24 - 8 * i));
        fields[4 + i] = (uint8_t)(depth >> (24 - 8 * i));
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              digest_file(md, "client_ca", cfg->client_ca, err, cap) &&
              EVP_DigestFinal_ex(md, ca, NULL) == 1;
    if (ok && cfg->client_crl[0] != '\0') {
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             digest_file(md, "client_crl", cfg->client_crl, err, cap) &&
             EVP_DigestFinal_ex(md, crl, NULL) == 1;
    }
    ok = ok && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, "tlsresume client trust 1", 24) == 1 &&
         EVP_DigestUpdate(md, base, base_len) == 1 &&
         EVP_DigestUpdate(md, fields, sizeof(fields)) == 1 &&
         EVP_DigestUpdate(md, ca, sizeof(ca)) == 1 && EVP_DigestUpdate(md, crl, sizeof(crl)) == 1 &&
         EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!ok && err[0] == '\0') {
        snprintf(err, cap, "client_verify: cannot derive the session ID context");
    }
    return ok;
}

/* The certificate's subjectAltName as text ("DNS:a, email:b@c"), "" without one; printable
 * ASCII only ('?' for the rest), since it goes into log lines. */
static void san_text(X509 *cert, char *out, size_t cap)
{
    out[0] = '\0';
    int i = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
    BIO *bio = i >= 0 ? BIO_new(BIO_s_mem()) : NULL;
    if (bio != NULL && X509V3_EXT_print(bio, X509_get_ext(cert, i), 0, 0) == 1) {
        int n = BIO_read(bio, out, (int)cap - 1);
        out[n > 0 ? n : 0] = '\0';
    }
    BIO_free(bio);
    ERR_clear_error();
    for (char *p = out; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            *p = '?';
        }
    }
}

/* One TLV at p (type, 2-byte length, value); the bytes written, 0 when it does not fit. */
static size_t put_tlv(uint8_t *p, size_t cap, uint8_t type, const void *value, size_t len)
{
    if (len > 0xffff || 3 + len > cap) {
        return 0;
    }
    p[0] = type;
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    memcpy(p + 3, value, len);
    return 3 + len;
}

/* The certificate's first CN as UTF-8 into out; 0 (left out) when absent, longer than cap, or
 * holding a NUL that a backend would cut at. */
static size_t cn_utf8(X509 *cert, char *out, size_t cap)
{
    X509_NAME *name = X509_get_subject_name(cert);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    unsigned char *utf8 = NULL;
    int len =
        i >= 0 ? ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)))
               : -1;
    size_t n = 0;
    if (len > 0 && (size_t)len <= cap && memchr(utf8, 0, (size_t)len) == NULL) {
        memcpy(out, utf8, (size_t)len);
        n = (size_t)len;
    }
    OPENSSL_free(utf8);
    return n;
}

/* The subject as RFC 2253 text (its special characters escaped: one reading only) into out;
 * 0 (left out) when it does not fit cap. */
static size_t subject_rfc2253(X509 *cert, char *out, size_t cap)
{
    BIO *bio = BIO_new(BIO_s_mem());
    size_t n = 0;
    if (bio != NULL &&
        X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
        int len = BIO_read(bio, out, (int)cap);
        n = len > 0 && (size_t)len < cap ? (size_t)len : 0;
    }
    BIO_free(bio);
    ERR_clear_error();
    return n;
}

size_t client_auth_tlvs(SSL *ssl, uint8_t *p, size_t cap)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL || cap < 8) {
        return 0;
    }
    uint8_t ssl_tlv[600];
    size_t n = 5;
    bool is_resumed = SSL_session_reused(ssl) == 1;
    ssl_tlv[0] = (uint8_t)(0x01 | (is_resumed ? 0 : 0x02) | 0x04); /* SSL, CERT_CONN, CERT_SESS */
    uint32_t verify = (uint32_t)SSL_get_verify_result(ssl);
    for (int i = 0; i < 4; i++) {
        ssl_tlv[1 + i] = (uint8_t)(verify >> (24 - 8 * i));
    }
    const char *version = SSL_get_version(ssl);
    const char *cipher = SSL_get_cipher_name(ssl);
    char cn[256];
    size_t cn_len = cn_utf8(peer, cn, sizeof(cn));
    n += put_tlv(ssl_tlv + n, sizeof(ssl_tlv) - n, 0x21, version, strlen(version));
    if (cn_len > 0) {
        n += put_tlv(ssl_tlv + n, sizeof(ssl_tlv) - n, 0x22, cn, cn_len);
    }
    n += put_tlv(ssl_tlv + n, sizeof(ssl_tlv) - n, 0x23, cipher, strlen(cipher));
    size_t out = put_tlv(p, cap, 0x20, ssl_tlv, n);
    unsigned char fp[32];
    unsigned int fp_len = 0;
    if (out > 0 && X509_digest(peer, EVP_sha256(), fp, &fp_len) == 1) {
        out += put_tlv(p + out, cap - out, 0xE1, fp, fp_len);
    }
    char subject[512];
    size_t subject_len = subject_rfc2253(peer, subject, sizeof(subject));
    if (out > 0 && subject_len > 0) {
        out += put_tlv(p + out, cap - out, 0xE2, subject, subject_len);
    }
    /* The subjectAltName as its DER (GeneralNames): names may hold any separator. */
    int i = X509_get_ext_by_NID(peer, NID_subject_alt_name, -1);
    const ASN1_OCTET_STRING *san = i >= 0 ? X509_EXTENSION_get_data(X509_get_ext(peer, i)) : NULL;
    if (out > 0 && san != NULL && ASN1_STRING_length(san) <= 512) {
        out += put_tlv(p + out, cap - out, 0xE3, ASN1_STRING_get0_data(san),
                       (size_t)ASN1_STRING_length(san));
    }
    return out;
}

void client_auth_identity(SSL *ssl, char *out, size_t cap)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    if (peer == NULL) {
        snprintf(out, cap, "-");
        return;
    }
    unsigned char fp[32];
    unsigned int fp_len = 0;
    char subject[512] = "?";
    size_t len = subject_rfc2253(peer, subject, sizeof(subject) - 1);
    subject[len > 0 ? len : 1] = '\0';
    for (char *p = subject; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) {
            *p = '?'; /* it goes into a log line between quotes */
        }
    }
    char hex[17] = "";
    if (X509_digest(peer, EVP_sha256(), fp, &fp_len) == 1) {
        cli_hex(fp, 8, hex);
    }
    char san[256];
    san_text(peer, san, sizeof(san));
    long v = SSL_get_verify_result(ssl);
    snprintf(out, cap, "\"%s\" san=\"%s\" sha256=%s verify=%s", subject, san, hex,
             v == X509_V_OK ? "ok" : X509_verify_cert_error_string(v));
}

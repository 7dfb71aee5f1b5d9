/*
 * Session ID context specs (serve_context.h). OpenSSL resumes a session only under the context
 * it was made in, and each server sets its own: nginx hashes its certificates, mod_ssl its
 * virtual host, HAProxy and nghttpx use fixed words, h2o none. Naming them here lets serve
 * issue tickets another server resumes (--session-context) and resume the tickets other
 * servers issue (--accept-session-context).
 */
#include "serve_context.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "../cli/cli.h"

static bool fail(char *err, size_t cap, const char *what, const char *spec, const char *why)
{
    snprintf(err, cap, "%s: '%.64s': %s", what, spec, why);
    return false;
}

static bool set_bytes(struct tlsr_sid_ctx *out, const void *p, size_t n)
{
    if (n > sizeof(out->bytes)) {
        return false;
    }
    memcpy(out->bytes, p, n);
    out->len = n;
    return true;
}

/* nginx's ngx_ssl_session_id_context: SHA-1 over the module's name and each certificate's
 * SHA-1, in the order the context holds them. */
static bool nginx_context(SSL_CTX *ctx, const char *module, struct tlsr_sid_ctx *out)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(md, module, strlen(module)) == 1;
    size_t n_certs = 0;
    const X509 *was = SSL_CTX_get0_certificate(ctx);
    for (long r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); ok && r == 1;
         r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        X509 *x = SSL_CTX_get0_certificate(ctx);
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int d_len = 0;
        if (x == NULL) {
            continue;
        }
        ok = X509_digest(x, EVP_sha1(), d, &d_len) == 1 && EVP_DigestUpdate(md, d, d_len) == 1;
        n_certs++;
    }
    /* Back to the certificate that was current (the SNI match and OCSP read it). */
    for (long r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
         r == 1 && SSL_CTX_get0_certificate(ctx) != was;
         r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
    }
    unsigned int len = 0;
    ok = ok && n_certs > 0 && EVP_DigestFinal_ex(md, out->bytes, &len) == 1;
    out->len = ok ? len : 0;
    EVP_MD_CTX_free(md);
    return ok;
}

static bool hex_bytes(const char *hex, struct tlsr_sid_ctx *out)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n > 64 || strspn(hex, "0123456789abcdefABCDEF") != n) {
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out->bytes[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
    out->len = n / 2;
    return true;
}

/* mod_ssl: ap_md5_binary over ssl_util_vhostid's "ServerName:port", the hex digits as bytes. */
static bool apache_context(const char *vhost, struct tlsr_sid_ctx *out)
{
    const char *colon = strrchr(vhost, ':');
    if (colon == NULL || colon == vhost || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5 ||
        atoi(colon + 1) < 1 || atoi(colon + 1) > 65535) {
        return false;
    }
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int d_len = 0;
    if (EVP_Digest(vhost, strlen(vhost), d, &d_len, EVP_md5(), NULL) != 1 || d_len != 16) {
        return false;
    }
    char hex[33];
    cli_hex(d, 16, hex);
    memcpy(out->bytes, hex, 32);
    out->len = 32;
    return true;
}

/* A bare word that starts as a server's name or a prefix does (nginx, Apache, hex...) is a
 * typo far more likely than a context of those bytes: refused, text: says otherwise. */
static bool looks_like_a_name(const char *spec)
{
    static const char *const starts[] = {"nginx", "apache", "haproxy", "nghttpx", "hex", "text"};
    for (size_t i = 0; i < sizeof(starts) / sizeof(starts[0]); i++) {
        if (strncasecmp(spec, starts[i], strlen(starts[i])) == 0) {
            return true;
        }
    }
    return false;
}

bool session_context_read(const char *what, const char *spec, SSL_CTX *ctx,
                          struct tlsr_sid_ctx *out, char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(spec, "none") == 0) {
        return true;
    }
    if (strcmp(spec, "nghttpx") == 0) {
        return set_bytes(out, "shrpx", 5);
    }
    if (strcmp(spec, "nginx-stream") == 0 || strcmp(spec, "nginx-http") == 0) {
        if (ctx == NULL) {
            return true;
        }
        return nginx_context(ctx, strcmp(spec, "nginx-stream") == 0 ? "STREAM" : "HTTP", out) ||
               fail(err, cap, what, spec, "no certificate to hash as nginx does");
    }
    if (strncmp(spec, "apache:", 7) == 0) {
        return apache_context(spec + 7, out) ||
               fail(err, cap, what, spec, "expected apache:SERVERNAME:PORT (mod_ssl's vhost)");
    }
    if (strncmp(spec, "hex:", 4) == 0) {
        return hex_bytes(spec + 4, out) ||
               fail(err, cap, what, spec, "expected hex: and 2 to 64 hex digits, in pairs");
    }
    if (strcmp(spec, "haproxy") == 0) {
        return set_bytes(out, "haproxy", 7); /* HAProxy sets this one */
    }
    bool is_text = strncmp(spec, "text:", 5) == 0;
    if (is_text && spec[5] == '\0') {
        return fail(err, cap, what, spec,
                    "empty text (an empty context is 'none'; leave the option out to derive one "
                    "from the certificate)");
    }
    if (!is_text && looks_like_a_name(spec)) {
        return fail(err, cap, what, spec,
                    "not a server's name (nginx-stream, nginx-http, apache:NAME:PORT, haproxy, "
                    "nghttpx, none); for these bytes as they are, write text:");
    }
    const char *text = is_text ? spec + 5 : spec;
    return set_bytes(out, text, strlen(text)) ||
           fail(err, cap, what, spec, "more than 32 bytes (OpenSSL's limit)");
}

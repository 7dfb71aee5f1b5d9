/*
 * OCSP stapling for `tlsresume serve` (--ocsp FILE, repeatable): each file holds one DER OCSP
 * response, as `openssl ocsp -respout` writes it or a CA's responder returns it. At start and at
 * every reload each one is matched to the certificate it covers (any of the --cert ones, by its
 * certificate ID under the issuer found in that certificate's chain), and must be a successful
 * response, signed by that issuer or a responder it delegated to, saying "good", and current
 * (between its thisUpdate and nextUpdate, five minutes of clock skew allowed); otherwise
 * start-up (or the reload) fails naming the file. One past half its life (between thisUpdate
 * and nextUpdate) is logged as a warning: responders publish the next one by then. Staples go out
 * on full handshakes only: a resumed one shows no certificate. One whose nextUpdate has passed
 * is no longer stapled (clients refuse a stale staple; none is better): fetch one and reload.
 */
#include "serve_ocsp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "../cli/log.h"

/* Largest response file read. */
#define OCSP_MAX_BYTES (64 * 1024)

static bool read_file(const char *path, unsigned char **out, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "ocsp: %s: %s", path, strerror(errno));
        return false;
    }
    unsigned char *buf = OPENSSL_malloc(OCSP_MAX_BYTES + 1);
    size_t n = buf != NULL ? fread(buf, 1, OCSP_MAX_BYTES + 1, f) : 0;
    bool is_error = ferror(f) != 0;
    fclose(f);
    if (buf == NULL || is_error || n == 0 || n > OCSP_MAX_BYTES) {
        snprintf(err, cap, "ocsp: %s: %s", path,
                 buf == NULL ? "out of memory"
                 : is_error  ? "read error"
                 : n == 0    ? "empty"
                             : "larger than 64 KiB");
        OPENSSL_free(buf);
        return false;
    }
    *out = buf;
    *len = n;
    return true;
}

/* The issuer of cert among its chain (or cert itself when self-issued); NULL when absent. */
static X509 *issuer_of(X509 *cert, STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);
        if (X509_check_issued(c, cert) == X509_V_OK) {
            return c;
        }
    }
    return X509_check_issued(cert, cert) == X509_V_OK ? cert : NULL;
}

/* What the response says of cert (issued by issuer): 1 it covers cert and passed every check
 * (*next_update_s set, 0 without one), 0 it does not cover cert, -1 it covers cert and fails
 * (err says why). */
static int check_for(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer, const char *path,
                     time_t *next_update_s, char *err, size_t cap)
{
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, cert, issuer);
    int status = -1, reason = 0;
    ASN1_GENERALIZEDTIME *rev = NULL, *this_upd = NULL, *next_upd = NULL;
    int found = id != NULL &&
                OCSP_resp_find_status(bs, id, &status, &reason, &rev, &this_upd, &next_upd) == 1;
    OCSP_CERTID_free(id);
    if (!found) {
        return 0;
    }
    STACK_OF(X509) *signers = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    /* The issuer is the anchor, an intermediate as often as not: OCSP_PARTIAL_CHAIN. */
    bool is_signed = signers != NULL && store != NULL && sk_X509_push(signers, issuer) > 0 &&
                     X509_STORE_add_cert(store, issuer) == 1 &&
                     OCSP_basic_verify(bs, signers, store, OCSP_PARTIAL_CHAIN) > 0;
    sk_X509_free(signers);
    X509_STORE_free(store);
    ERR_clear_error();
    if (!is_signed) {
        snprintf(err, cap, "ocsp: %s: not signed by the certificate's issuer", path);
        return -1;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        snprintf(err, cap, "ocsp: %s: the certificate's status is %s", path,
                 OCSP_cert_status_str(status));
        return -1;
    }
    if (OCSP_check_validity(this_upd, next_upd, 300, -1) != 1) {
        ERR_clear_error();
        snprintf(err, cap, "ocsp: %s: not current (outside its thisUpdate and nextUpdate)", path);
        return -1;
    }
    int days = 0, secs = 0, life_days = 0, life_secs = 0;
    struct tm tm;
    *next_update_s = next_upd != NULL && ASN1_TIME_to_tm(next_upd, &tm) == 1 ? timegm(&tm) : 0;
    if (next_upd == NULL) {
        log_msg(LOG_WARN, "tls", "ocsp=%s note=\"the response has no nextUpdate\"", path);
    } else if (ASN1_TIME_diff(&days, &secs, NULL, next_upd) == 1 &&
               ASN1_TIME_diff(&life_days, &life_secs, this_upd, next_upd) == 1 &&
               2 * ((long)days * 86400 + secs) < (long)life_days * 86400 + life_secs) {
        /* Past half its life: responders publish the next one by then. */
        log_msg(LOG_WARN, "tls",
                "ocsp=%s event=ocsp_expiring in_s=%d note=\"fetch a new response and reload\"",
                path, days * 86400 + secs);
    }
    return 1;
}

/* The certificate of ctx's slots that the response covers, checked; into *out (a reference). */
static int cover(SSL_CTX *ctx, OCSP_BASICRESP *bs, const char *path, X509 **out,
                 time_t *next_update_s, char *err, size_t cap)
{
    int found = 0;
    for (long more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); more == 1 && found == 0;
         more = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        X509 *cert = SSL_CTX_get0_certificate(ctx);
        STACK_OF(X509) *chain = NULL;
        SSL_CTX_get0_chain_certs(ctx, &chain);
        X509 *issuer = cert != NULL ? issuer_of(cert, chain) : NULL;
        if (issuer == NULL) {
            continue;
        }
        found = check_for(bs, cert, issuer, path, next_update_s, err, cap);
        if (found == 1 && X509_up_ref(cert) == 1) {
            *out = cert;
        }
    }
    (void)SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST);
    ERR_clear_error();
    return found;
}

static bool load_one(struct tls_set *set, const char *path, char *err, size_t cap)
{
    unsigned char *der = NULL;
    size_t len = 0;
    if (!read_file(path, &der, &len, err, cap)) {
        return false;
    }
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_BASICRESP *bs = NULL;
    bool ok = false;
    if (resp == NULL || p != der + len) {
        snprintf(err, cap, "ocsp: %s: not a DER OCSP response", path);
    } else if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        snprintf(err, cap, "ocsp: %s: the responder answered %s", path,
                 OCSP_response_status_str(OCSP_response_status(resp)));
    } else if ((bs = OCSP_response_get1_basic(resp)) == NULL) {
        snprintf(err, cap, "ocsp: %s: no basic response in it", path);
    } else {
        X509 *cert = NULL;
        time_t next_update_s = 0;
        int found = 0;
        for (size_t i = 0; i < set->n && found == 0; i++) {
            found = cover(set->ctx[i], bs, path, &cert, &next_update_s, err, cap);
        }
        if (found == 0) {
            snprintf(err, cap,
                     "ocsp: %s: covers none of the certificates (or a certificate's issuer is "
                     "not in its --cert chain)",
                     path);
        }
        ok = found == 1 && cert != NULL;
        if (ok) {
            struct staple *st = &set->staples[set->n_staples++];
            st->cert = cert;
            st->der = der;
            st->len = len;
            st->next_update_s = next_update_s;
            der = NULL;
        } else {
            X509_free(cert);
        }
    }
    ERR_clear_error();
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
    return ok;
}

/* The status request callback: the staple of the certificate this handshake presents. */
static int on_status(SSL *ssl, void *arg)
{
    const struct tls_set *set = arg;
    X509 *cert = SSL_get_certificate(ssl);
    for (size_t i = 0; cert != NULL && i < set->n_staples; i++) {
        const struct staple *st = &set->staples[i];
        if (X509_cmp(st->cert, cert) != 0) {
            continue;
        }
        if (st->next_update_s != 0 && time(NULL) > st->next_update_s) {
            return SSL_TLSEXT_ERR_NOACK; /* expired: no staple rather than a stale one */
        }
        unsigned char *copy = OPENSSL_memdup(st->der, st->len);
        if (copy == NULL || SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)st->len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

bool ocsp_load(const struct serve_config *cfg, struct tls_set *set, char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->ocsp.n; i++) {
        if (!load_one(set, cfg->ocsp.v[i], err, cap)) {
            return false;
        }
    }
    for (size_t i = 0; set->n_staples > 0 && i < set->n; i++) {
        SSL_CTX_set_tlsext_status_cb(set->ctx[i], on_status);
        SSL_CTX_set_tlsext_status_arg(set->ctx[i], set);
    }
    return true;
}

void ocsp_free(struct tls_set *set)
{
    for (size_t i = 0; i < set->n_staples; i++) {
        X509_free(set->staples[i].cert);
        OPENSSL_free(set->staples[i].der);
    }
    set->n_staples = 0;
}

/*
 * Session codec: what the cache stores for one session.
 *
 * Storage format, version 1 (all integers big-endian):
 *
 *     u8   format         1
 *     u32  created_s      the session's creation time (SSL_SESSION_get_time)
 *     u32  timeout_s      the session's timeout (SSL_SESSION_get_timeout)
 *     ...  der            i2d_SSL_SESSION of a copy of the session with the fields the cache
 *                         key already holds removed: session ID and session ID context (put
 *                         back from the key on decode), time and timeout (above), and, unless
 *                         the session allows early data, the SNI host name and ALPN protocol
 *                         (only early data needs them; RFC 8446 §4.2.10)
 *
 * Keeping the DER rather than our own field list keeps every flag OpenSSL needs to resume
 * (extended master secret above all) without reaching into OpenSSL's internals; stripping the
 * key fields brings a TLS 1.2 session from 158 to 88 bytes, so it fits one 96-byte cache slot.
 *
 * Threat: cache bytes are treated as untrusted (a corrupted arena, later a shared store). The
 * decoder reads through the bounded reader, requires the DER to consume exactly the rest,
 * accepts only TLS 1.2 and 1.3 sessions with a master secret, and returns TLSR_E_FORMAT for
 * anything else: a miss, never a crash.
 */
#include "sess_codec.h"

#include <string.h>

#include <openssl/err.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

#define FORMAT_V1 1
#define HEADER_LEN 9

/* A copy of sess without the fields the cache key or the header hold. */
static tlsr_status strip(const SSL_SESSION *sess, SSL_SESSION **out)
{
    static const unsigned char none[1] = {0};
    SSL_SESSION *dup = SSL_SESSION_dup(sess);
    if (dup == NULL) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "session codec: SSL_SESSION_dup failed");
    }
    int ok =
        SSL_SESSION_set1_id(dup, none, 0) == 1 && SSL_SESSION_set1_id_context(dup, none, 0) == 1;
    /* Both return their argument or 0 only for a NULL session, which dup is not. */
    (void)SSL_SESSION_set_time(dup, 0);
    (void)SSL_SESSION_set_timeout(dup, 0);
    if (ok && SSL_SESSION_get_max_early_data(dup) == 0) {
        ok = SSL_SESSION_set1_hostname(dup, NULL) == 1 &&
             SSL_SESSION_set1_alpn_selected(dup, NULL, 0) == 1;
    }
    if (!ok) {
        SSL_SESSION_free(dup);
        return tlsr__err_ssl(TLSR_E_CRYPTO, "session codec: cannot strip the session");
    }
    *out = dup;
    return TLSR_OK;
}

tlsr_status tlsr__sess_encode(const SSL_SESSION *sess, uint8_t *out, size_t cap, size_t *out_len)
{
    ENSURE(sess != NULL && out != NULL && out_len != NULL, TLSR_E_INVALID,
           "session codec: NULL argument");
    long created = SSL_SESSION_get_time(sess);
    long timeout = SSL_SESSION_get_timeout(sess);
    ENSURE(created >= 0 && (unsigned long)created <= UINT32_MAX && timeout >= 0 &&
               (unsigned long)timeout <= UINT32_MAX,
           TLSR_E_INVALID, "session codec: session time %ld or timeout %ld out of range", created,
           timeout);
    ERR_clear_error();
    SSL_SESSION *dup = NULL;
    TRY(strip(sess, &dup));
    tlsr_status rc = TLSR_OK;
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, cap);
    int der_len = i2d_SSL_SESSION(dup, NULL);
    uint8_t *der = NULL;
    if (der_len <= 0) {
        rc = tlsr__err_ssl(TLSR_E_CRYPTO, "session codec: i2d_SSL_SESSION failed");
        goto out;
    }
    if ((rc = tlsr_wr_u8(&wr, FORMAT_V1)) != TLSR_OK ||
        (rc = tlsr_wr_u32(&wr, (uint32_t)created)) != TLSR_OK ||
        (rc = tlsr_wr_u32(&wr, (uint32_t)timeout)) != TLSR_OK ||
        (rc = tlsr_wr_reserve(&wr, (size_t)der_len, &der)) != TLSR_OK) {
        goto out;
    }
    if (i2d_SSL_SESSION(dup, &der) != der_len) {
        rc = tlsr__err_ssl(TLSR_E_CRYPTO, "session codec: i2d_SSL_SESSION changed length");
        goto out;
    }
    *out_len = wr.used;
out:
    SSL_SESSION_free(dup);
    return rc;
}

/* Puts back what strip() removed. */
static tlsr_status restore(SSL_SESSION *s, uint32_t created, uint32_t timeout, const uint8_t *id,
                           size_t id_len, const uint8_t *ctx, size_t ctx_len)
{
    static const unsigned char none[1] = {0};
    if (SSL_SESSION_set1_id(s, id, (unsigned int)id_len) != 1 ||
        SSL_SESSION_set1_id_context(s, ctx_len > 0 ? ctx : none, (unsigned int)ctx_len) != 1) {
        return tlsr__err_ssl(TLSR_E_FORMAT, "session codec: cannot restore the session key");
    }
    (void)SSL_SESSION_set_time(s, (long)created);
    (void)SSL_SESSION_set_timeout(s, (long)timeout);
    return TLSR_OK;
}

static tlsr_status check_session(const SSL_SESSION *s)
{
    int version = SSL_SESSION_get_protocol_version(s);
    ENSURE(version == TLS1_2_VERSION || version == TLS1_3_VERSION, TLSR_E_FORMAT,
           "session codec: protocol version 0x%04x is not TLS 1.2 or 1.3", (unsigned)version);
    ENSURE(SSL_SESSION_get0_cipher(s) != NULL, TLSR_E_FORMAT, "session codec: unknown cipher");
    ENSURE(SSL_SESSION_get_master_key(s, NULL, 0) > 0, TLSR_E_FORMAT,
           "session codec: no master secret");
    return TLSR_OK;
}

tlsr_status tlsr__sess_decode(const uint8_t *in, size_t len, const uint8_t *id, size_t id_len,
                              const uint8_t *ctx, size_t ctx_len, SSL_SESSION **out)
{
    ENSURE(in != NULL && id != NULL && out != NULL, TLSR_E_INVALID, "session codec: NULL argument");
    ENSURE(id_len <= SSL_MAX_SSL_SESSION_ID_LENGTH && ctx_len <= SSL_MAX_SID_CTX_LENGTH,
           TLSR_E_INVALID, "session codec: key of %zu/%zu bytes", id_len, ctx_len);
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, in, len);
    uint8_t format;
    uint32_t created;
    uint32_t timeout;
    TRY(tlsr_rd_u8(&rd, &format));
    ENSURE(format == FORMAT_V1, TLSR_E_FORMAT, "session codec: unknown format %u", format);
    TRY(tlsr_rd_u32(&rd, &created));
    TRY(tlsr_rd_u32(&rd, &timeout));
    const uint8_t *der;
    size_t der_len;
    tlsr_rd_rest(&rd, &der, &der_len);
    ENSURE(der_len > 0 && der_len <= 65536, TLSR_E_FORMAT, "session codec: DER of %zu bytes",
           der_len);
    ERR_clear_error();
    const unsigned char *p = der;
    SSL_SESSION *s = d2i_SSL_SESSION(NULL, &p, (long)der_len);
    if (s == NULL) {
        return tlsr__err_ssl(TLSR_E_FORMAT, "session codec: DER does not decode");
    }
    tlsr_status rc = TLSR_OK;
    if (p != der + der_len) {
        rc = tlsr__err_set(TLSR_E_FORMAT, "session codec: %zu trailing bytes",
                           (size_t)(der + der_len - p));
        goto out;
    }
    rc = check_session(s);
    if (rc == TLSR_OK) {
        rc = restore(s, created, timeout, id, id_len, ctx, ctx_len);
    }
out:
    if (rc != TLSR_OK) {
        SSL_SESSION_free(s);
        return rc;
    }
    *out = s;
    return TLSR_OK;
}

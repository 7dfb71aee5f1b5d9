/*
 * Ticket-key files written as text, for servers that read keys from YAML or base64 lines:
 *     h2o         its ticket file (ssl-session-resumption: ticket-store: file): a YAML list,
 *                 each key's name, cipher aes-256-cbc, hash sha256, key (hex of the AES key
 *                 and a 64-byte HMAC key: ours padded with zeros, which HMAC does anyway), and
 *                 not_before/not_after. h2o encrypts with the newest not_before that has come:
 *                 the encrypting key gets the newest past one, older keys older ones, and the
 *                 next key one in 2100, so it only decrypts until a later write promotes it.
 *                 The times are made from the keys' order, never from the clock, so the same
 *                 keys give the same bytes (a sync writes only when the keys change).
 *     go          base64 lines of 32-byte keys for tls.Config.SetSessionTicketKeys, the
 *                 encrypting key first (Go encrypts with the first, decrypts with all). Each is
 *                 HKDF-SHA256 of a ring key (info "tlsresume go ticket key"): Go derives its own
 *                 name and keys from it, and seals its own session format, so Go servers resume
 *                 each other's tickets, not other servers'.
 *     envoy       an SDS resource file: a Secret whose session_ticket_keys hold the 80-byte keys
 *                 in Envoy's layout (name | hmac | aes), the encrypting key first.
 *     k8s-secret  a Kubernetes Secret (Opaque) with the same 80-byte keys as data entries
 *                 tls.sessionticket.key (encrypting) and tls.sessionticket.key.1 to .9 (decrypt
 *                 only: the next key first), as Cilium maps a Secret to Envoy's keys.
 * Keys imported from 48-byte formats are not written (these formats hold 80-byte keys).
 */
#include "keyring_int.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../kdf/tlsr_kdf.h"

#define NAME 16
#define H2O_NEXT_NOT_BEFORE 4102444800ull /* 2100-01-01: decrypt-only until promoted */
#define H2O_NOT_AFTER 4102444800ull
#define H2O_FIRST 1000000000ull /* older keys count up from here, one second apart */
#define K8S_MAX_KEYS 10u

static tlsr_status put(struct tlsr_wr *wr, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ENSURE(n >= 0 && (size_t)n < sizeof(line), TLSR_E_TOOBIG, "key file: a line too long");
    tlsr_status rc = tlsr_wr_bytes(wr, (const uint8_t *)line, (size_t)n);
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

/* Envoy's and nginx's 80-byte layout, name | hmac | aes, as base64. */
static void b64_hmac_first(const struct tlsr_key_material *k, char out[112])
{
    uint8_t b[80];
    memcpy(b, k->bytes, NAME);
    memcpy(b + NAME, k->bytes + NAME + 32, 32);
    memcpy(b + NAME + 32, k->bytes + NAME, 32);
    EVP_EncodeBlock((unsigned char *)out, b, 80);
    OPENSSL_cleanse(b, sizeof(b));
}

/* The keys' order for formats where the first encrypts: the encrypting key, the next (decrypt
 * only until promoted), then older ones; tlsr_keyring_export gives them so already. */

static tlsr_status write_h2o(struct tlsr_wr *wr, const struct tlsr_key_material *keys, size_t n,
                             bool has_next)
{
    tlsr_status rc = TLSR_OK;
    size_t n80 = 0;
    for (size_t i = 0; i < n; i++) {
        n80 += keys[i].len == 80;
    }
    size_t older = 0;
    for (size_t i = 0; i < n && rc == TLSR_OK; i++) {
        const struct tlsr_key_material *k = &keys[i];
        if (k->len != 80) {
            continue;
        }
        /* i 0: encrypting (the newest past time); 1 with has_next: the next key (2100);
         * then older keys, each a second before the one after it. */
        uint64_t not_before = i == 0               ? H2O_FIRST + n80
                              : i == 1 && has_next ? H2O_NEXT_NOT_BEFORE
                                                   : H2O_FIRST + n80 - 1 - ++older;
        char name[2 * NAME + 1];
        char key[2 * 96 + 1];
        uint8_t raw[96] = {0};
        memcpy(raw, k->bytes + NAME, 64); /* aes(32) | hmac(32) | 32 zeros */
        tlsr__hex(k->bytes, NAME, name);
        tlsr__hex(raw, sizeof(raw), key);
        rc = put(wr,
                 "- name: %s\n  cipher: aes-256-cbc\n  hash: sha256\n  key: %s\n"
                 "  not_before: %llu\n  not_after: %llu\n",
                 name, key, (unsigned long long)not_before, H2O_NOT_AFTER);
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(key, sizeof(key));
    }
    return rc;
}

static tlsr_status write_go(struct tlsr_wr *wr, const struct tlsr_key_material *keys, size_t n)
{
    tlsr_status rc = TLSR_OK;
    for (size_t i = 0; i < n && rc == TLSR_OK; i++) {
        if (keys[i].len != 80) {
            continue;
        }
        uint8_t seed[32];
        char b64[48];
        rc = tlsr__hkdf_sha256("go key", keys[i].bytes + NAME, 64, keys[i].bytes, NAME,
                               "tlsresume go ticket key", seed, sizeof(seed));
        if (rc == TLSR_OK) {
            EVP_EncodeBlock((unsigned char *)b64, seed, sizeof(seed));
            rc = put(wr, "%s\n", b64);
        }
        OPENSSL_cleanse(seed, sizeof(seed));
        OPENSSL_cleanse(b64, sizeof(b64));
    }
    return rc;
}

/* The 80-byte keys in Envoy's layout, one line each: an SDS list entry, or a Secret's data
 * entries (tls.sessionticket.key, then .1, .2...), at most max. */
static tlsr_status put_envoy_keys(struct tlsr_wr *wr, const struct tlsr_key_material *keys,
                                  size_t n, unsigned max, bool is_secret)
{
    tlsr_status rc = TLSR_OK;
    unsigned written = 0;
    for (size_t i = 0; i < n && rc == TLSR_OK && written < max; i++) {
        if (keys[i].len != 80) {
            continue;
        }
        char b64[112];
        b64_hmac_first(&keys[i], b64);
        if (!is_secret) {
            rc = put(wr, "    - inline_bytes: %s\n", b64);
        } else if (written == 0) {
            rc = put(wr, "  tls.sessionticket.key: %s\n", b64);
        } else {
            rc = put(wr, "  tls.sessionticket.key.%u: %s\n", written, b64);
        }
        written++;
        OPENSSL_cleanse(b64, sizeof(b64));
    }
    return rc;
}

static tlsr_status write_envoy(struct tlsr_wr *wr, const char *name,
                               const struct tlsr_key_material *keys, size_t n)
{
    tlsr_status rc = put(wr,
                         "resources:\n"
                         "- \"@type\": type.googleapis.com/"
                         "envoy.extensions.transport_sockets.tls.v3.Secret\n"
                         "  name: %s\n  session_ticket_keys:\n    keys:\n",
                         name);
    return rc != TLSR_OK ? rc : put_envoy_keys(wr, keys, n, UINT_MAX, false);
}

static tlsr_status write_k8s(struct tlsr_wr *wr, const char *name,
                             const struct tlsr_key_material *keys, size_t n)
{
    tlsr_status rc = put(wr,
                         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n"
                         "  labels:\n    app.kubernetes.io/managed-by: tlsresume\n"
                         "type: Opaque\ndata:\n",
                         name);
    return rc != TLSR_OK ? rc : put_envoy_keys(wr, keys, n, K8S_MAX_KEYS, true);
}

tlsr_status tlsr__keyfile_write_text(enum tlsr_key_format fmt, const char *name,
                                     const struct tlsr_key_material *keys, size_t n, bool has_next,
                                     struct tlsr_wr *wr)
{
    ENSURE(keys[0].len == 80, TLSR_E_INVALID,
           "key file: the encrypting key is not an 80-byte key (an imported 48-byte one)");
    ENSURE(name == NULL ||
               (strlen(name) > 0 && strlen(name) <= 253 &&
                strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-._") == strlen(name)),
           TLSR_E_INVALID,
           "resource name '%.64s': lowercase letters, digits, '-', '.' and '_', up to 253",
           name != NULL ? name : "");
    switch (fmt) {
    case TLSR_KEYFMT_H2O:
        return write_h2o(wr, keys, n, has_next);
    case TLSR_KEYFMT_GO:
        return write_go(wr, keys, n);
    case TLSR_KEYFMT_ENVOY:
        return write_envoy(wr, name != NULL ? name : "session_ticket_keys", keys, n);
    case TLSR_KEYFMT_K8S_SECRET:
        return write_k8s(wr, name != NULL ? name : "tlsresume-ticket-keys", keys, n);
    default:
        return tlsr__err_set(TLSR_E_INVALID, "key format %d is not a text format", (int)fmt);
    }
}

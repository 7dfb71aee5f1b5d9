/*
 * Ticket-key files of the servers we do not replace: their byte layouts, read and written.
 *
 * Layouts (every key: a 16-byte name, an AES-CBC key, an HMAC-SHA256 key):
 *     nginx48   48 bytes: name | aes(16) | hmac(16)           one key a file
 *     nginx80   80 bytes: name | hmac(32) | aes(32)           one key a file
 *     haproxy   lines of base64(name | aes | hmac), 48 or 80 bytes each; HAProxy keeps the
 *               last three, encrypts with the penultimate and holds the last as the next key
 *     apache    48 bytes: name | hmac(16) | aes(16)           one key
 *     node      48 bytes: name | hmac(16) | aes(16)           one key (setTicketKeys)
 *     raw       80-byte records: name | aes(32) | hmac(32)    the encrypting key first (keys
 *               imported from 48-byte formats are not written)
 *     nghttpx   80 bytes: name | aes(32) | hmac(32)           one key a file (48: 16 | 16 | 16)
 *     h2o, go, envoy, k8s-secret: text, written by keyfile_text.c
 * Our own order (struct tlsr_key_material) is name | aes | hmac.
 *
 * Our ring's keys are 80 bytes. A 48-byte format gets a key derived from each (HKDF-SHA256 of
 * the AES and HMAC keys, salted with the name, info "tlsresume 48-byte ticket key"), so every
 * host that exports the same ring writes the same bytes; the derived key has its own name.
 *
 * Threat: a malformed or foreign key file (every length checked, a clear message, nothing
 * half-read), key bytes left in scratch memory (wiped).
 */
#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <tlsresume/tickets.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../kdf/tlsr_kdf.h"
#include "keyring_int.h"

#define NAME 16
#define HAPROXY_LINES 3
#define DERIVE_INFO "tlsresume 48-byte ticket key"

static const char *const names[] = {"nginx48", "nginx80", "haproxy", "apache", "node",      "raw",
                                    "nghttpx", "h2o",     "go",      "envoy",  "k8s-secret"};
#define FORMAT_LIST                                                                                \
    "nginx48, nginx80, haproxy, apache, node, raw, nghttpx, h2o, go, envoy or k8s-secret"

tlsr_status tlsr_key_format_from_name(const char *name, enum tlsr_key_format *out)
{
    for (size_t i = 0; name != NULL && i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum tlsr_key_format)i;
            return TLSR_OK;
        }
    }
    return tlsr__err_set(TLSR_E_INVALID, "key format '%s': expected " FORMAT_LIST,
                         name != NULL ? name : "");
}

const char *tlsr_key_format_name(enum tlsr_key_format fmt)
{
    return (size_t)fmt < sizeof(names) / sizeof(names[0]) ? names[fmt] : "unknown";
}

bool tlsr_key_format_is_text(enum tlsr_key_format fmt)
{
    return fmt == TLSR_KEYFMT_H2O || fmt == TLSR_KEYFMT_GO || fmt == TLSR_KEYFMT_ENVOY ||
           fmt == TLSR_KEYFMT_K8S_SECRET;
}

bool tlsr_key_format_is_48(enum tlsr_key_format fmt)
{
    return fmt == TLSR_KEYFMT_NGINX48 || fmt == TLSR_KEYFMT_APACHE || fmt == TLSR_KEYFMT_NODE;
}

/* Whether fmt stores the HMAC key before the AES key. */
static bool is_hmac_first(enum tlsr_key_format fmt, size_t len)
{
    return fmt == TLSR_KEYFMT_APACHE || fmt == TLSR_KEYFMT_NODE ||
           (fmt == TLSR_KEYFMT_NGINX80 && len == 80);
}

/* Moves one key between fmt's layout and ours (the same swap both ways). */
static void reorder(enum tlsr_key_format fmt, const uint8_t *in, size_t len, uint8_t *out)
{
    size_t half = (len - NAME) / 2;
    memcpy(out, in, NAME);
    if (is_hmac_first(fmt, len)) {
        memcpy(out + NAME, in + NAME + half, half);
        memcpy(out + NAME + half, in + NAME, half);
    } else {
        memcpy(out + NAME, in + NAME, 2 * half);
    }
}

static tlsr_status take(enum tlsr_key_format fmt, const uint8_t *bytes, size_t len,
                        struct tlsr_key_material *out, size_t cap, size_t *n)
{
    ENSURE(*n < cap, TLSR_E_TOOBIG, "more than %zu keys", cap);
    struct tlsr_key_material *k = &out[*n];
    memset(k, 0, sizeof(*k));
    k->len = (uint8_t)len;
    reorder(fmt, bytes, len, k->bytes);
    (*n)++;
    return TLSR_OK;
}

static tlsr_status read_haproxy(const char *what, const uint8_t *data, size_t len,
                                struct tlsr_key_material *out, size_t cap, size_t *n)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, data, len);
    uint8_t key[80];
    tlsr_status rc = TLSR_OK;
    for (size_t line_no = 1; tlsr_rd_left(&rd) > 0 && rc == TLSR_OK; line_no++) {
        const uint8_t *line;
        size_t line_len;
        if (tlsr_rd_until(&rd, '\n', &line, &line_len) != TLSR_OK) {
            tlsr_rd_rest(&rd, &line, &line_len); /* a last line without a newline */
        }
        if (line_len > 0 && line[line_len - 1] == '\r') {
            line_len--;
        }
        if (line_len == 0 || line[0] == '#') {
            continue;
        }
        size_t key_len = 0;
        rc = tlsr__b64_decode(line, line_len, key, sizeof(key), &key_len);
        if (rc != TLSR_OK) {
            char why[128];
            snprintf(why, sizeof(why), "%s", tlsr_last_error());
            rc = tlsr__err_set(TLSR_E_FORMAT, "%s:%zu: %s", what, line_no, why);
        } else if (key_len != 48 && key_len != 80) {
            rc = tlsr__err_set(TLSR_E_FORMAT, "%s:%zu: a key of %zu bytes (expected 48 or 80)",
                               what, line_no, key_len);
        } else {
            rc = take(TLSR_KEYFMT_HAPROXY, key, key_len, out, cap, n);
        }
    }
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

tlsr_status tlsr_keyfile_read(enum tlsr_key_format fmt, const char *what, const uint8_t *data,
                              size_t len, struct tlsr_key_material *out, size_t cap, size_t *n)
{
    ENSURE(what != NULL && (data != NULL || len == 0) && out != NULL && n != NULL, TLSR_E_INVALID,
           "key file: NULL argument");
    *n = 0;
    ENSURE(len > 0, TLSR_E_FORMAT, "%s: empty (a %s key file holds %s)", what,
           tlsr_key_format_name(fmt),
           fmt == TLSR_KEYFMT_HAPROXY   ? "base64 lines"
           : fmt == TLSR_KEYFMT_RAW     ? "80-byte keys"
           : fmt == TLSR_KEYFMT_NGINX80 ? "80 bytes"
                                        : "48 bytes");
    tlsr_status rc = TLSR_OK;
    switch (fmt) {
    case TLSR_KEYFMT_HAPROXY:
        rc = read_haproxy(what, data, len, out, cap, n);
        ENSURE(rc != TLSR_OK || *n > 0, TLSR_E_FORMAT, "%s: no key in it", what);
        return rc;
    case TLSR_KEYFMT_RAW:
        ENSURE(len % 80 == 0, TLSR_E_FORMAT, "%s: %zu bytes is not a whole number of 80-byte keys",
               what, len);
        for (size_t at = 0; at < len && rc == TLSR_OK; at += 80) {
            rc = take(fmt, data + at, 80, out, cap, n);
        }
        return rc;
    case TLSR_KEYFMT_NGINX80:
        /* nginx itself takes either size in one file. */
        ENSURE(len == 80 || len == 48, TLSR_E_FORMAT, "%s: %zu bytes (a key file holds 80)", what,
               len);
        return take(fmt, data, len, out, cap, n);
    case TLSR_KEYFMT_NGINX48:
        ENSURE(len == 48 || len == 80, TLSR_E_FORMAT, "%s: %zu bytes (a key file holds 48)", what,
               len);
        return take(len == 80 ? TLSR_KEYFMT_NGINX80 : fmt, data, len, out, cap, n);
    case TLSR_KEYFMT_APACHE:
    case TLSR_KEYFMT_NODE:
        ENSURE(len == 48, TLSR_E_FORMAT, "%s: %zu bytes (a %s key holds 48)", what, len,
               tlsr_key_format_name(fmt));
        return take(fmt, data, len, out, cap, n);
    case TLSR_KEYFMT_NGHTTPX:
        ENSURE(len == 48 || len == 80, TLSR_E_FORMAT,
               "%s: %zu bytes (an nghttpx key file holds 48 or 80)", what, len);
        return take(fmt, data, len, out, cap, n);
    case TLSR_KEYFMT_H2O:
    case TLSR_KEYFMT_GO:
    case TLSR_KEYFMT_ENVOY:
    case TLSR_KEYFMT_K8S_SECRET:
        return tlsr__err_set(TLSR_E_INVALID,
                             "%s: %s keys are written, not read (import another format: raw, "
                             "or the 48/80-byte file the server was given)",
                             what, tlsr_key_format_name(fmt));
    }
    return tlsr__err_set(TLSR_E_INVALID, "%s: unknown key format %d", what, (int)fmt);
}

tlsr_status tlsr_key_material_to48(const struct tlsr_key_material *in,
                                   struct tlsr_key_material *out)
{
    ENSURE(in != NULL && out != NULL && (in->len == 48 || in->len == 80), TLSR_E_INVALID,
           "key: 48 or 80 bytes");
    if (in->len == 48) {
        *out = *in;
        return TLSR_OK;
    }
    memset(out, 0, sizeof(*out));
    TRY(tlsr__hkdf_sha256("key", in->bytes + NAME, 80 - NAME, in->bytes, NAME, DERIVE_INFO,
                          out->bytes, 48));
    out->len = 48;
    return TLSR_OK;
}

tlsr_status tlsr_keyfile_key_bytes(enum tlsr_key_format fmt, const struct tlsr_key_material *key,
                                   uint8_t out[80], size_t *len)
{
    ENSURE(key != NULL && out != NULL && len != NULL, TLSR_E_INVALID, "key: NULL argument");
    ENSURE(!tlsr_key_format_is_text(fmt), TLSR_E_INVALID,
           "key: %s files are text: write them whole (tlsr_keyfile_write_named)",
           tlsr_key_format_name(fmt));
    struct tlsr_key_material k = *key;
    tlsr_status rc = TLSR_OK;
    if (tlsr_key_format_is_48(fmt)) {
        rc = tlsr_key_material_to48(key, &k);
    }
    if (rc == TLSR_OK && k.len != 48 && k.len != 80) {
        rc = tlsr__err_set(TLSR_E_INVALID, "key: 48 or 80 bytes");
    }
    if (rc == TLSR_OK) {
        reorder(fmt, k.bytes, k.len, out);
        *len = k.len;
    }
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

void tlsr_keyfile_haproxy_order(const struct tlsr_key_material *keys, size_t n, bool has_next,
                                size_t order[3])
{
    size_t next = has_next && n > 1 ? 1 : 0;
    size_t prev = n > 1 + (next != 0) ? 1 + (next != 0) : 0;
    /* One key size per HAProxy key file: a 48-byte imported key cannot join 80-byte ones. */
    prev = keys[prev].len == keys[0].len ? prev : 0;
    order[0] = prev;
    order[1] = 0;
    order[2] = next;
}

static tlsr_status write_b64_line(struct tlsr_wr *wr, const struct tlsr_key_material *key)
{
    uint8_t bin[80];
    size_t len = 0;
    char b64[112];
    TRY(tlsr_keyfile_key_bytes(TLSR_KEYFMT_HAPROXY, key, bin, &len));
    int n = EVP_EncodeBlock((unsigned char *)b64, bin, (int)len);
    OPENSSL_cleanse(bin, sizeof(bin));
    tlsr_status rc = tlsr_wr_bytes(wr, (const uint8_t *)b64, (size_t)n);
    if (rc == TLSR_OK) {
        rc = tlsr_wr_u8(wr, '\n');
    }
    OPENSSL_cleanse(b64, sizeof(b64));
    return rc;
}

tlsr_status tlsr_keyfile_write(enum tlsr_key_format fmt, const struct tlsr_key_material *keys,
                               size_t n, bool has_next, uint8_t *out, size_t cap, size_t *len)
{
    return tlsr_keyfile_write_named(fmt, NULL, keys, n, has_next, out, cap, len);
}

tlsr_status tlsr_keyfile_write_named(enum tlsr_key_format fmt, const char *name,
                                     const struct tlsr_key_material *keys, size_t n, bool has_next,
                                     uint8_t *out, size_t cap, size_t *len)
{
    ENSURE(keys != NULL && n > 0 && out != NULL && len != NULL, TLSR_E_INVALID,
           "key file: no key to write");
    struct tlsr_wr wr;
    tlsr_wr_init(&wr, out, cap);
    uint8_t one[80];
    size_t one_len = 0;
    tlsr_status rc = TLSR_OK;
    if (tlsr_key_format_is_text(fmt)) {
        rc = tlsr__keyfile_write_text(fmt, name, keys, n, has_next, &wr);
    } else if (fmt == TLSR_KEYFMT_HAPROXY) {
        /* Previous, encrypting, next: HAProxy encrypts with the penultimate line. */
        size_t order[HAPROXY_LINES];
        tlsr_keyfile_haproxy_order(keys, n, has_next, order);
        for (size_t i = 0; i < HAPROXY_LINES && rc == TLSR_OK; i++) {
            rc = write_b64_line(&wr, &keys[order[i]]);
        }
    } else if (fmt == TLSR_KEYFMT_RAW) {
        /* Records are 80 bytes: keys imported from 48-byte formats are left out. */
        for (size_t i = 0; i < n && rc == TLSR_OK; i++) {
            if (keys[i].len != 80) {
                continue;
            }
            rc = tlsr_keyfile_key_bytes(fmt, &keys[i], one, &one_len);
            if (rc == TLSR_OK) {
                rc = tlsr_wr_bytes(&wr, one, one_len);
            }
        }
    } else {
        rc = tlsr_keyfile_key_bytes(fmt, &keys[0], one, &one_len);
        if (rc == TLSR_OK) {
            rc = tlsr_wr_bytes(&wr, one, one_len);
        }
    }
    OPENSSL_cleanse(one, sizeof(one));
    if (rc != TLSR_OK) {
        OPENSSL_cleanse(out, cap);
        return rc;
    }
    *len = wr.used;
    return TLSR_OK;
}

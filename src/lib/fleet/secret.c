/*
 * The fleet key: its file, the keys derived from it, and the sealing primitives.
 *
 * File format (a parser of untrusted bytes; see fuzz/fuzz_fleet_key.c):
 *     tlsresume-fleet-key 1\n   (read also with CRLF line ends, or without the last newline)
 *     <44 characters: the 32-byte key in base64, one '=' of padding>\n
 * Nothing else is accepted; the file must not be readable by group or others.
 *
 * Derivation: HKDF-SHA256 (RFC 5869) with the fleet key as input keying material, no salt, and
 * one info label per use, so that the session cache, the Redis key names and the ticket key
 * wrapping never share a key. Sealed blobs are: version byte (1) | nonce (12) | ciphertext |
 * GCM tag (16); the version byte is authenticated with the caller's AAD.
 *
 * Threat: a stolen Redis dump (holds only sealed blobs and hashed names), a tampered or foreign
 * blob (the tag fails: a miss, never a crash), the key reaching disk or a core dump (locked,
 * non-dumpable memory, wiped on free).
 */
#include "fleet_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../kdf/tlsr_kdf.h"
#include "../mem/tlsr_mem.h"

#define MAGIC_LINE "tlsresume-fleet-key 1"
#define B64_LEN 44
#define MAX_FILE 256
#define SEAL_VERSION 1

static tlsr_status hkdf(const uint8_t *ikm, const char *label, uint8_t out[32])
{
    return tlsr__hkdf_sha256("fleet key", ikm, TLSR_FLEET_KEY_LEN, NULL, 0, label, out, 32);
}

static tlsr_status derive(struct tlsr_fleet_secret *s)
{
    TRY(hkdf(s->fleet_key, "tlsresume session entry v1", s->session_key));
    TRY(hkdf(s->fleet_key, "tlsresume session name v1", s->name_key));
    TRY(hkdf(s->fleet_key, "tlsresume ticket key wrap v1", s->wrap_key));
    return TLSR_OK;
}

/* Decodes exactly one line of 44 base64 characters into 32 bytes. */
static tlsr_status decode_key(const char *path, const uint8_t *b64, size_t len,
                              uint8_t out[TLSR_FLEET_KEY_LEN])
{
    ENSURE(len == B64_LEN && b64[B64_LEN - 1] == '=' && b64[B64_LEN - 2] != '=', TLSR_E_FORMAT,
           "%s:2: expected the 32-byte key as 44 base64 characters", path);
    for (size_t i = 0; i + 1 < len; i++) {
        uint8_t c = b64[i];
        bool is_b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '/';
        ENSURE(is_b64, TLSR_E_FORMAT, "%s:2: byte %zu is not base64", path, i + 1);
    }
    uint8_t tmp[36];
    int n = EVP_DecodeBlock(tmp, b64, (int)len);
    tlsr_status rc = TLSR_OK;
    if (n != 33) {
        rc = tlsr__err_set(TLSR_E_FORMAT, "%s:2: bad base64", path);
    } else {
        memcpy(out, tmp, TLSR_FLEET_KEY_LEN);
    }
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}

tlsr_status tlsr_fleet_secret_parse(const char *path, const uint8_t *data, size_t len,
                                    struct tlsr_fleet_secret **out)
{
    ENSURE(path != NULL && data != NULL && out != NULL, TLSR_E_INVALID, "fleet key: NULL argument");
    *out = NULL;
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, data, len);
    const uint8_t *line = NULL;
    size_t line_len = 0;
    ENSURE(tlsr_rd_until(&rd, '\n', &line, &line_len) == TLSR_OK, TLSR_E_FORMAT,
           "%s:1: not a fleet key file (no first line)", path);
    line_len -= line_len > 0 && line[line_len - 1] == '\r'; /* a copy with CRLF line ends */
    ENSURE(line_len == strlen(MAGIC_LINE) && memcmp(line, MAGIC_LINE, line_len) == 0, TLSR_E_FORMAT,
           "%s:1: expected \"%s\"", path, MAGIC_LINE);
    if (tlsr_rd_until(&rd, '\n', &line, &line_len) != TLSR_OK) {
        /* The last line without its newline (an editor that drops it): the rest of the file. */
        tlsr_rd_rest(&rd, &line, &line_len);
        ENSURE(line_len > 0, TLSR_E_FORMAT, "%s:2: missing the key line", path);
    }
    line_len -= line_len > 0 && line[line_len - 1] == '\r';
    ENSURE(tlsr_rd_left(&rd) == 0, TLSR_E_FORMAT, "%s:3: unexpected bytes after the key", path);
    void *mem = NULL;
    size_t map_size = 0;
    TRY(tlsr__secmem_map_keys(sizeof(struct tlsr_fleet_secret), &mem, &map_size));
    struct tlsr_fleet_secret *s = mem;
    s->map_size = map_size;
    tlsr_status rc = decode_key(path, line, line_len, s->fleet_key);
    if (rc == TLSR_OK) {
        rc = derive(s);
    }
    if (rc != TLSR_OK) {
        tlsr_fleet_secret_free(s);
        return rc;
    }
    *out = s;
    return TLSR_OK;
}

tlsr_status tlsr_fleet_secret_load(const char *path, struct tlsr_fleet_secret **out)
{
    ENSURE(path != NULL && out != NULL, TLSR_E_INVALID, "fleet key: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", path);
    }
    struct stat st;
    uint8_t buf[MAX_FILE];
    tlsr_status rc = TLSR_OK;
    ssize_t n = 0;
    if (fstat(fd, &st) != 0) {
        rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", path);
    } else if ((st.st_mode & 077) != 0) {
        rc = tlsr__err_set(TLSR_E_SYSTEM,
                           "%s: readable by group or others (mode %03o); chmod 600 it", path,
                           (unsigned)(st.st_mode & 0777));
    } else if ((n = read(fd, buf, sizeof(buf))) < 0) {
        rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", path);
    } else if ((size_t)n == sizeof(buf)) {
        rc = tlsr__err_set(TLSR_E_FORMAT, "%s: too large for a fleet key file", path);
    } else {
        rc = tlsr_fleet_secret_parse(path, buf, (size_t)n, out);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return rc;
}

tlsr_status tlsr_fleet_secret_generate(const char *path)
{
    ENSURE(path != NULL, TLSR_E_INVALID, "fleet key: NULL path");
    uint8_t key[TLSR_FLEET_KEY_LEN];
    char text[sizeof(MAGIC_LINE) + B64_LEN + 8];
    if (RAND_bytes(key, sizeof(key)) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet key: no randomness");
    }
    size_t head = strlen(MAGIC_LINE);
    memcpy(text, MAGIC_LINE "\n", head + 1);
    EVP_EncodeBlock((unsigned char *)text + head + 1, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    size_t len = head + 1 + B64_LEN;
    text[len++] = '\n';
    tlsr_status rc = TLSR_OK;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", path);
    } else {
        ssize_t n = write(fd, text, len);
        if (n != (ssize_t)len || fsync(fd) != 0) {
            rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s: write", path);
        }
        if (close(fd) != 0 && rc == TLSR_OK) {
            rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s: close", path);
        }
        if (rc != TLSR_OK) {
            unlink(path);
        }
    }
    OPENSSL_cleanse(text, sizeof(text));
    return rc;
}

void tlsr_fleet_secret_free(struct tlsr_fleet_secret *s)
{
    if (s != NULL) {
        tlsr__secmem_unmap(s, s->map_size);
    }
}

static tlsr_status gcm(int is_enc, const uint8_t key[32], const uint8_t nonce[SEAL_NONCE_LEN],
                       const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len,
                       uint8_t *out, uint8_t tag[SEAL_TAG_LEN])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (c == NULL) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet seal: no cipher context");
    }
    int n = 0;
    int ok = EVP_CipherInit_ex2(c, EVP_aes_256_gcm(), key, nonce, is_enc, NULL) == 1 &&
             EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) == 1 &&
             EVP_CipherUpdate(c, out, &n, in, (int)in_len) == 1;
    if (ok && !is_enc) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG_LEN, tag) == 1;
    }
    ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
    if (ok && is_enc) {
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG_LEN, tag) == 1;
    }
    EVP_CIPHER_CTX_free(c);
    if (!ok) {
        OPENSSL_cleanse(out, in_len);
        if (is_enc) {
            return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet seal: AES-256-GCM failed");
        }
        ERR_clear_error();
        return tlsr__err_set(TLSR_E_FORMAT, "fleet seal: tag mismatch (tampered or foreign)");
    }
    return TLSR_OK;
}

tlsr_status tlsr__fleet_seal(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                             const uint8_t *plain, size_t plain_len, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    ENSURE(cap >= SEAL_OVERHEAD && plain_len <= cap - SEAL_OVERHEAD && aad_len <= 1024,
           TLSR_E_TOOBIG, "fleet seal: %zu bytes do not fit", plain_len);
    uint8_t full_aad[1025];
    full_aad[0] = SEAL_VERSION;
    memcpy(full_aad + 1, aad, aad_len);
    out[0] = SEAL_VERSION;
    if (RAND_bytes(out + 1, SEAL_NONCE_LEN) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet seal: no randomness");
    }
    uint8_t *ct = out + 1 + SEAL_NONCE_LEN;
    TRY(gcm(1, key, out + 1, full_aad, aad_len + 1, plain, plain_len, ct, ct + plain_len));
    *out_len = plain_len + SEAL_OVERHEAD;
    return TLSR_OK;
}

tlsr_status tlsr__fleet_open(const uint8_t key[32], const uint8_t *aad, size_t aad_len,
                             const uint8_t *in, size_t in_len, uint8_t *out, size_t cap,
                             size_t *out_len)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, in, in_len);
    uint8_t version = 0;
    const uint8_t *nonce = NULL;
    ENSURE(tlsr_rd_u8(&rd, &version) == TLSR_OK && version == SEAL_VERSION, TLSR_E_FORMAT,
           "fleet seal: unknown version");
    ENSURE(tlsr_rd_bytes(&rd, SEAL_NONCE_LEN, &nonce) == TLSR_OK &&
               tlsr_rd_left(&rd) >= SEAL_TAG_LEN,
           TLSR_E_FORMAT, "fleet seal: %zu bytes are too short", in_len);
    size_t ct_len = tlsr_rd_left(&rd) - SEAL_TAG_LEN;
    const uint8_t *ct = NULL;
    const uint8_t *tag = NULL;
    TRY(tlsr_rd_bytes(&rd, ct_len, &ct));
    TRY(tlsr_rd_bytes(&rd, SEAL_TAG_LEN, &tag));
    ENSURE(ct_len <= cap, TLSR_E_TOOBIG, "fleet seal: %zu bytes do not fit", ct_len);
    ENSURE(aad_len <= 1024, TLSR_E_TOOBIG, "fleet seal: AAD too long");
    uint8_t full_aad[1025];
    full_aad[0] = SEAL_VERSION;
    memcpy(full_aad + 1, aad, aad_len);
    uint8_t tag_copy[SEAL_TAG_LEN];
    memcpy(tag_copy, tag, sizeof(tag_copy));
    TRY(gcm(0, key, nonce, full_aad, aad_len + 1, ct, ct_len, out, tag_copy));
    *out_len = ct_len;
    return TLSR_OK;
}

tlsr_status tlsr__fleet_name_hash(const uint8_t key[32], const uint8_t *data, size_t len,
                                  uint8_t out[NAME_HASH_LEN])
{
    uint8_t mac[32];
    size_t mac_len = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, 32, data, len, mac, sizeof(mac),
                  &mac_len) == NULL ||
        mac_len != sizeof(mac)) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet: HMAC-SHA256 failed");
    }
    memcpy(out, mac, NAME_HASH_LEN);
    return TLSR_OK;
}

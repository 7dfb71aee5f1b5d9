/*
 * HKDF-SHA256 through OpenSSL's EVP_KDF (tlsr_kdf.h). One place, so that every derived key of
 * the library uses the same, checked construction.
 */
#include "tlsr_kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "../err/tlsr_err.h"

tlsr_status tlsr__hkdf_sha256(const char *what, const uint8_t *ikm, size_t ikm_len,
                              const uint8_t *salt, size_t salt_len, const char *info, uint8_t *out,
                              size_t out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (kctx == NULL) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "%s: HKDF unavailable", what);
    }
    OSSL_PARAM params[5];
    size_t i = 0;
    params[i++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[i++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ikm, ikm_len);
    if (salt_len > 0) {
        params[i++] =
            OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    }
    params[i++] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info));
    params[i] = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(kctx, out, out_len, params);
    EVP_KDF_CTX_free(kctx);
    if (ok != 1) {
        OPENSSL_cleanse(out, out_len);
        return tlsr__err_ssl(TLSR_E_CRYPTO, "%s: HKDF failed", what);
    }
    return TLSR_OK;
}

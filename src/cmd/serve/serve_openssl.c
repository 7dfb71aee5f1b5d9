/* OpenSSL helpers of serve's TLS rooms (serve_openssl.h). */
#include "serve_openssl.h"

#include <stdint.h>
#include <stdio.h>

#include <openssl/err.h>

void tls_error(char *err, size_t cap, const char *what)
{
    char buf[256] = "unknown error";
    unsigned long e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    ERR_clear_error();
    snprintf(err, cap, "%s: %s", what, buf);
}

bool tls_digest_file(EVP_MD_CTX *md, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    uint8_t chunk[4096];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        ok = EVP_DigestUpdate(md, chunk, n) == 1;
    }
    ok = ok && ferror(f) == 0;
    fclose(f);
    return ok;
}

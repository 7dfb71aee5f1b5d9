/* Private keys for `tlsresume serve`: read from PEM files, with pass phrases from a file, never
 * from a prompt. */
#ifndef TLSR_SERVE_KEY_H
#define TLSR_SERVE_KEY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

/*
 * Reads the private key in the PEM file at path. An encrypted key is opened with the first
 * line of password_file (may be NULL: none) that opens it; without one it is refused. Nothing
 * ever reads the terminal. On success *out is the key (the caller frees it); else err names the
 * file and the reason.
 */
bool serve_key_load(const char *path, const char *password_file, EVP_PKEY **out, char *err,
                    size_t cap);

#endif

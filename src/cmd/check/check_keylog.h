/* `check --keylog FILE`: the connections' secrets in the NSS key log format (what
 * SSLKEYLOGFILE means to curl and browsers), so that a capture of a check can be decrypted. */
#ifndef TLSR_CHECK_KEYLOG_H
#define TLSR_CHECK_KEYLOG_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/* Opens FILE for appending: created with mode 0600; an existing file must be a regular file
 * that only its owner can read or write. False with the reason in err. */
bool keylog_open(const char *path, char *err, size_t cap);
/* Every connection made from ctx writes its secrets to the open key log (none: no-op). */
void keylog_attach(SSL_CTX *ctx);
void keylog_close(void);

#endif

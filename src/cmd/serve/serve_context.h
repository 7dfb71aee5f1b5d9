/* Session ID contexts named the way operators know them: serve's own (--session-context) and
 * the other servers' whose tickets serve accepts (--accept-session-context). */
#ifndef TLSR_SERVE_CONTEXT_H
#define TLSR_SERVE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <tlsresume/ssl.h>

/*
 * Reads one context spec into out:
 *   hex:BYTES                 the bytes (1 to 32)
 *   text:STRING, or STRING    the string's bytes (up to 32); Node's sessionIdContext
 *   haproxy                   HAProxy's ("haproxy")
 *   nghttpx                   nghttpx's ("shrpx")
 *   nginx-stream, nginx-http  nginx's: SHA-1 of "STREAM" (or "HTTP") and the SHA-1 of each of
 *                             ctx's certificates (so: the same certificates as nginx)
 *   apache:NAME:PORT          mod_ssl's: the MD5 of "NAME:PORT" (its ServerName and port) in
 *                             32 lowercase hex characters
 *   none                      the empty context (h2o sets none); only as an accepted one
 * what names the option in errors. ctx may be NULL for a check of the spec alone: nginx's are
 * then left empty. False with "what: why" in err.
 */
bool session_context_read(const char *what, const char *spec, SSL_CTX *ctx,
                          struct tlsr_sid_ctx *out, char *err, size_t cap);

#endif

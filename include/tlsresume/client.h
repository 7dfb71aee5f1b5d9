/*
 * Client-side session store: what a client keeps so it can resume across process restarts
 * (as curl's --ssl-sessions file or GnuTLS's session data do).
 *
 * Sessions are kept in a file the user names, keyed by host, port and SNI. The file holds
 * session secrets: it is created with mode 0600 and written only by these calls, atomically
 * (a temporary file renamed over it) under an exclusive lock on PATH.lock, so two processes
 * never corrupt it. Expired sessions are dropped; a TLS 1.3 ticket is handed out once and
 * removed (RFC 8446 §C.4: clients should not reuse a ticket); a TLS 1.2 session stays until it
 * expires. A corrupt or foreign file is an error naming the file and line, never a crash.
 */
#ifndef TLSRESUME_CLIENT_H
#define TLSRESUME_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/error.h>

/* Most entries a file keeps (oldest dropped first), and per host/port/SNI. */
#define TLSR_CLIENT_MAX_ENTRIES 1024
#define TLSR_CLIENT_MAX_PER_KEY 8
/* Largest file accepted. */
#define TLSR_CLIENT_MAX_FILE (4 * 1024 * 1024)

/*
 * Adds sess (borrowed; not changed) for host/port/sni (sni may be NULL) to the file at path,
 * creating it if needed. Errors: TLSR_E_INVALID (bad host or session), TLSR_E_SYSTEM (lock,
 * read or write failed: the message names the file), TLSR_E_FORMAT (the existing file is
 * corrupt or foreign: it is left alone).
 */
TLSR_MUST_CHECK tlsr_status tlsr_client_session_save(const char *path, const char *host,
                                                     uint16_t port, const char *sni,
                                                     const SSL_SESSION *sess);

/*
 * Finds the newest unexpired session for host/port/sni. On success *out is a new session the
 * caller owns (hand it to SSL_set_session). A TLS 1.3 ticket is removed from the file.
 * Errors: TLSR_E_NOTFOUND (none, or no file; no message), TLSR_E_FORMAT, TLSR_E_SYSTEM.
 */
TLSR_MUST_CHECK tlsr_status tlsr_client_session_load(const char *path, const char *host,
                                                     uint16_t port, const char *sni,
                                                     SSL_SESSION **out);

/* Whether two sessions (borrowed) carry the same ticket: both have one, byte for byte equal. A
 * client tells by it whether a resumption renewed its ticket. */
bool tlsr_client_same_ticket(const SSL_SESSION *a, const SSL_SESSION *b);

#endif

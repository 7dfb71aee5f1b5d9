/*
 * The GnuTLS adapter (library libtlsresume-gnutls): a GnuTLS server gets the same shared
 * session cache, ticket key ring (fleet-wide when the ring follows a fleet) and 0-RTT strike
 * register as an OpenSSL server attached with tlsr_ssl_attach().
 *
 * - Session IDs (TLS 1.2): gnutls_db_set_store/retrieve/remove_function on a tlsr_cache,
 *   under a session ID context of their own, so GnuTLS and OpenSSL sessions never mix; with a
 *   fleet store, Redis behind it (sealed entries, bounded waits). A full handshake's session
 *   is stored when the server's Finished is queued, before it is sent (GnuTLS alone stores it
 *   after), so a client that reconnects at once to another worker finds it; the fleet's
 *   copy follows once the Finished is out (Redis is a round trip).
 * - Tickets (TLS 1.2 and 1.3): GnuTLS takes one 64-byte ticket key per session. Each ring key
 *   stands for one such key (HKDF-SHA256 of it). A hook on the ClientHello reads the key name
 *   of the ticket offered (a TLS 1.2 session_ticket extension or the first TLS 1.3 PSK
 *   identity), finds the ring key whose GnuTLS key GnuTLS would name so, and gives the session
 *   that key, else the encrypting one; so tickets keep resuming through rotations, and across
 *   every server that follows the same fleet ring. A ticket resumed under an older key is
 *   reissued under the same key (GnuTLS uses one key per session); it still dies with it.
 *   GnuTLS 3.7 itself seals under SHA3-512(period | key) and changes period every three
 *   session timeouts; a ticket from the previous period is a full handshake (GnuTLS's limit).
 * - 0-RTT: gnutls_anti_replay_set_add_function on a strike register (a tlsr_cache used with
 *   tlsr_cache_record(): never evicts a live record; full means refuse).
 *
 * Process safety: as the cache and the ring (create them before fork()).
 */
#ifndef TLSRESUME_GNUTLS_H
#define TLSRESUME_GNUTLS_H

#include <stddef.h>
#include <stdint.h>

#include <gnutls/gnutls.h>

#include <tlsresume/cache.h>
#include <tlsresume/error.h>
#include <tlsresume/tickets.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tlsr_fleet_store;

struct tlsr_gnutls_opts {
    struct tlsr_cache *cache; /* TLS 1.2 session IDs; NULL: not cached */
    /* A fleet's Redis behind the cache (tlsr_fleet_store_new, one per process): sessions the
     * cache lacks are fetched from it (a bounded wait) and every session stored goes to it,
     * so session IDs resume across the fleet's GnuTLS servers. NULL: this host only. */
    struct tlsr_fleet_store *store;
    uint32_t session_timeout_s;   /* cache entries' lifetime; default 3600 */
    struct tlsr_keyring *keyring; /* tickets; NULL: no tickets */
};

/* Fills *o with the defaults (nothing attached). */
void tlsr_gnutls_opts_init(struct tlsr_gnutls_opts *o);

/*
 * Attaches o to a server session: call after gnutls_init(), before the handshake. o is
 * borrowed and must outlive the session. Uses the session's db functions, db pointer and
 * handshake hook (GnuTLS keeps one per session: a hook set before is replaced); the
 * application keeps gnutls_session_set_ptr(). Errors: TLSR_E_INVALID.
 */
TLSR_MUST_CHECK tlsr_status tlsr_gnutls_session_attach(gnutls_session_t session,
                                                       const struct tlsr_gnutls_opts *o);

/*
 * Makes anti_replay record 0-RTT ClientHellos in reg (a cache of its own): a ClientHello seen
 * before, or a full register, refuses early data (GnuTLS goes on at 1-RTT). reg is borrowed.
 */
void tlsr_gnutls_anti_replay_attach(gnutls_anti_replay_t anti_replay, struct tlsr_cache *reg);

/*
 * The 64-byte GnuTLS ticket key that stands for a ring key (80 bytes), written to out. Its
 * first 16 bytes are the name GnuTLS's tickets carry. Errors: TLSR_E_INVALID, TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr_gnutls_ticket_key(const struct tlsr_key_material *ring_key,
                                                   uint8_t out[64]);

/*
 * Finds the ticket a ClientHello body offers (msg: the message without its 4-byte header):
 * the session_ticket extension, else the first pre_shared_key identity. Points *ticket into
 * msg. Errors: TLSR_E_NOTFOUND (none offered), TLSR_E_FORMAT (a malformed ClientHello).
 */
TLSR_MUST_CHECK tlsr_status tlsr_gnutls_hello_ticket(const uint8_t *msg, size_t len,
                                                     const uint8_t **ticket, size_t *ticket_len);

#ifdef __cplusplus
}
#endif

#endif

/* Private to the ssl module: the per-SSL_CTX binding and the per-connection flags (binding.c). */
#ifndef TLSR_SSL_INT_H
#define TLSR_SSL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/ssl.h>

/* What tlsr_ssl_attach() hangs on an SSL_CTX (ex_data; freed with the SSL_CTX). */
struct binding {
    struct tlsr_cache *cache;     /* borrowed */
    struct tlsr_keyring *keyring; /* borrowed */
    uint32_t session_timeout_s;
    uint8_t sid_ctx[SSL_MAX_SID_CTX_LENGTH];
    size_t sid_ctx_len;
    void (*prev_info_cb)(const SSL *ssl, int where, int ret); /* chained, may be NULL */
    struct tlsr_ssl_l2 l2; /* second-level store of this process; l2.store NULL when none */
    struct tlsr_cache *early_register; /* borrowed; NULL without 0-RTT */
    uint32_t early_window_s;
    uint64_t early_not_before; /* no 0-RTT before this time (the register's memory is young) */
    bool is_early_replay_checked;
    uint32_t max_chain_s;    /* 0: no resumption chain cap */
    unsigned resume_tickets; /* TLS 1.3 tickets per stateless resumption: 0 or 1 */
    struct tlsr_sid_ctx accepted[TLSR_ACCEPT_CONTEXTS_MAX]; /* other servers' contexts */
    size_t n_accepted;
};

/* binding.c: the ex_data slots (made once; TLSR_E_NOMEM when OpenSSL has none), and ctx's
 * binding set (ctx owns b from then on). */
TLSR_MUST_CHECK tlsr_status tlsr__ssl_indexes(void);
TLSR_MUST_CHECK tlsr_status tlsr__ssl_bind(SSL_CTX *ctx, struct binding *b);

/* The chain cap's clock: the ring's; with stateful tickets (no ring) the cache's. */
uint64_t tlsr__ssl_now(const struct binding *b);
/* A session's origin as ticket appdata: "tlsr-origin" | u64 big-endian. */
#define TLSR_ORIGIN_LEN (sizeof("tlsr-origin") - 1 + 8)
bool tlsr__ssl_origin_encode(uint64_t origin, uint8_t out[TLSR_ORIGIN_LEN]);
bool tlsr__ssl_has_origin(const SSL_SESSION *sess);
/* Whether sess descends from a full handshake more than max_chain_s before now: its origin is
 * the ticket appdata our ticket generation callback wrote, else its time. */
bool tlsr__ssl_chain_expired(const struct binding *b, const SSL_SESSION *sess, uint64_t now);

/* Per-connection flags, kept in the SSL's ex_data as an integer. */
#define CONN_KEY_UNKNOWN 0x1u       /* the ticket named no key of the ring */
#define CONN_KEY_FOUND 0x2u         /* the ticket named a key of the ring */
#define CONN_TICKET_RESUMED 0x4u    /* a ticket decrypted and is being used */
#define CONN_STORED 0x8u            /* the TLS 1.2 session went to the cache before Finished */
#define CONN_EARLY_OFFERED 0x10u    /* the ClientHello offered early data */
#define CONN_EARLY_FRESH 0x20u      /* the local register had not seen it */
#define CONN_EARLY_REPLAY 0x40u     /* a register had seen it */
#define CONN_EARLY_NO_ANSWER 0x80u  /* a register could not answer (full, down, slow) */
#define CONN_EARLY_STARTING 0x100u  /* within the window after start */
#define CONN_EARLY_WAIT 0x200u      /* a fleet verdict is still due */
#define CONN_FOREIGN_KEY 0x400u     /* the ticket named a 48-byte variant of a ring key */
#define CONN_FOREIGN_CONTEXT 0x800u /* the ticket carried an accepted context of another server */

/* The resumption accounting of a connection, in the same integer: what was offered (enum
 * tlsr_offer), the reason it did not resume (enum tlsr_miss, the latest seen), and what a
 * second-level store answered (enum tlsr_l2_result). */
#define CONN_OFFER_SHIFT 12
#define CONN_OFFER_MASK (0x3u << CONN_OFFER_SHIFT)
#define CONN_MISS_SHIFT 16
#define CONN_MISS_MASK (0xfu << CONN_MISS_SHIFT)
#define CONN_L2_SHIFT 20
#define CONN_L2_MASK (0x7u << CONN_L2_SHIFT)

/* Records on ssl that offer was made and, unless TLSR_MISS_NONE, why it has not resumed so
 * far (a later call replaces the reason: a TLS 1.3 client may offer several tickets). */
void tlsr__ssl_note_offer(SSL *ssl, enum tlsr_offer offer, enum tlsr_miss miss);

/* The binding of ctx, or NULL when tlsr_ssl_attach() was not called on it. */
struct binding *tlsr__ssl_binding(const SSL_CTX *ctx);
unsigned tlsr__ssl_conn_flags(const SSL *ssl);
void tlsr__ssl_conn_set_flags(SSL *ssl, unsigned flags);

/* Marks sess as one that completed or began a resumption on a live connection: OpenSSL's
 * later removal requests for it (a connection freed without close_notify, a fatal alert after
 * the handshake) are then refused, because they say nothing bad of the session (sess_cb.c). */
void tlsr__ssl_keep_session(SSL_SESSION *sess);
/* Lifts the mark: OpenSSL's next removal of sess goes through (a fatal alert from the peer). */
void tlsr__ssl_unkeep_session(SSL_SESSION *sess);
bool tlsr__ssl_is_kept(SSL_SESSION *sess);

/* Installs the session cache callbacks (sess_cb.c) and the ticket callbacks (ticket_cb.c). */
void tlsr__ssl_install_cache(SSL_CTX *ctx, struct binding *b);
void tlsr__ssl_install_tickets(SSL_CTX *ctx, struct binding *b);
/* Without a ring: only the callback that records a session's origin (the chain cap). */
void tlsr__ssl_install_chain(SSL_CTX *ctx, struct binding *b);
/* Sets up 0-RTT on ctx (early.c). */
tlsr_status tlsr__ssl_install_early(SSL_CTX *ctx, const struct tlsr_ssl_opts *o, struct binding *b);

#endif

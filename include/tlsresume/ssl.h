/*
 * Attaching the session cache and the ticket key ring to an OpenSSL 3 SSL_CTX.
 *
 *     struct tlsr_ssl_opts opts;
 *     tlsr_ssl_opts_init(&opts);
 *     opts.cache = cache;      // from tlsr_cache_new(), or NULL for no server-side cache
 *     opts.keyring = ring;     // from tlsr_keyring_new(), or NULL for no stateless tickets
 *     if (tlsr_ssl_attach(ctx, &opts) != TLSR_OK) { fprintf(stderr, "%s\n", tlsr_last_error()); }
 *
 * After attach, OpenSSL's internal per-process cache is off and every worker sees every session
 * through the shared cache; tickets are sealed with the ring's current key. The cache and the
 * ring are borrowed: they must outlive the SSL_CTX. Attach every SSL_CTX a connection may be
 * switched to (SNI): a connection whose SSL_CTX is not attached resumes nothing.
 */
#ifndef TLSRESUME_SSL_H
#define TLSRESUME_SSL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/cache.h>
#include <tlsresume/error.h>
#include <tlsresume/tickets.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How TLS 1.3 resumes. */
enum tlsr_tls13_tickets {
    /* Tickets carry the sealed session (needs a key ring); no server state. */
    TLSR_TLS13_STATELESS = 0,
    /* Tickets are cache keys (needs a cache); each is used once. This also turns TLS 1.2 tickets
     * off (OpenSSL's SSL_OP_NO_TICKET covers both), leaving TLS 1.2 session IDs. */
    TLSR_TLS13_STATEFUL = 1,
};

/* Options of tlsr_ssl_attach(). Initialise with tlsr_ssl_opts_init(), then change fields. */
struct tlsr_ssl_opts {
    struct tlsr_cache *cache;     /* borrowed; NULL: no session-ID or stateful-ticket cache */
    struct tlsr_keyring *keyring; /* borrowed; NULL: no stateless tickets */
    uint32_t session_timeout_s;   /* cache lifetime of a session; default 3600, max 7 days */
    enum tlsr_tls13_tickets tls13_tickets; /* default TLSR_TLS13_STATELESS */
    unsigned num_tickets; /* TLS 1.3 tickets per full handshake; default 2, max 16 */
    /* TLS 1.3 tickets sent on each resumption with a stateless ticket: 1 (the default) or 0.
     * Browsers, Java, curl and OpenSSL clients use each TLS 1.3 ticket once (RFC 8446
     * Appendix C.4), so with 0 a client runs dry after num_tickets resumptions and pays a full
     * handshake. OpenSSL sends at most one ticket on a resumption. The new ticket is sealed
     * under the current key and keeps the session's origin (max_chain_s). Stateful tickets are
     * single use and always renewed. */
    unsigned resume_tickets;
    /* Session ID context: sessions resume only under the same one. When sid_ctx_len is 0 the
     * library derives it from the SSL_CTX's certificate and verify mode, so load the certificate
     * first. Borrowed (copied by attach). */
    const uint8_t *sid_ctx;
    size_t sid_ctx_len; /* 0 to 32 */
    /* Default true: a peer that closes TCP without close_notify keeps its session. OpenSSL 3
     * otherwise treats that EOF as a fatal error and removes the session from the cache, so
     * every browser or Python client that just closes would lose resumption (TLS 1.1 and
     * later no longer require that). Sets SSL_OP_IGNORE_UNEXPECTED_EOF: SSL_read() then
     * reports such an EOF as a clean close (SSL_ERROR_ZERO_RETURN). */
    bool keep_on_unexpected_eof;
    /* TLS 1.3 early data (0-RTT): the most bytes accepted before the handshake completes, 0
     * (the default) for none, at most TLSR_EARLY_DATA_MAX. Accepted only for a ClientHello that
     * the strike register has not seen (see tlsr_ssl_client_hello_early()), fresh by OpenSSL's
     * ticket age check (RFC 8446 §8.3, 10 s), and not within early_window_s of attach. */
    uint32_t max_early_data;
    struct tlsr_cache *early_register; /* borrowed: a cache of its own; required for 0-RTT */
    uint32_t early_window_s; /* how long records are kept; TLSR_EARLY_WINDOW_MIN_S (default) to
                              * 3600 */
    /* Default true. false turns the replay check off (for tests that show a replay): never in
     * production. */
    bool is_early_replay_checked;
    /* The resumption chain cap: a session resumes only within this many seconds of the full
     * handshake it descends from, however often its tickets were renewed (each TLS 1.3
     * resumption issues fresh tickets, so without a cap one authentication can live forever).
     * The origin travels in the ticket (OpenSSL's ticket appdata) and in cached sessions.
     * 0 (the default): no cap; at most TLSR_MAX_CHAIN_S. */
    uint32_t max_chain_s;
    /* Other servers' session ID contexts whose tickets resume here (nginx, Apache, HAProxy,
     * nghttpx, Node, h2o: each sets its own and cannot be told another): a ticket that opens
     * under a key of the ring and carries one of these contexts resumes as if it carried ours,
     * and is renewed under ours. At most TLSR_ACCEPT_CONTEXTS_MAX; borrowed (copied by attach).
     * A context binds a session to what authenticated it: accept only contexts of servers that
     * serve the same names. Each SSL_CTX's own list applies (after an SNI switch, the list of
     * the context switched to). Never applied to a connection that verifies client
     * certificates (SSL_VERIFY_PEER), and such tickets never carry 0-RTT: the other server's
     * checks and replay register are not ours. */
    const struct tlsr_sid_ctx *accept_contexts;
    size_t n_accept_contexts;
};

/* A session ID context (0 to 32 bytes). */
struct tlsr_sid_ctx {
    uint8_t bytes[32];
    size_t len;
};

#define TLSR_ACCEPT_CONTEXTS_MAX 8u
#define TLSR_MAX_CHAIN_S (30u * 24 * 3600)

#define TLSR_EARLY_DATA_MAX 16384u
/* OpenSSL accepts early data when the client's and the server's ticket ages agree within 10 s
 * (RFC 8446 §8.3): records must be kept at least that long. */
#define TLSR_EARLY_WINDOW_MIN_S 10u

/* Fills *opts with the defaults. */
void tlsr_ssl_opts_init(struct tlsr_ssl_opts *opts);

/*
 * Installs the session callbacks, the ticket key callback and the options on ctx. Call once per
 * SSL_CTX, before it serves. Errors: TLSR_E_INVALID (inconsistent options, e.g. stateful
 * tickets without a cache, or no certificate to derive the session ID context from),
 * TLSR_E_NOMEM, TLSR_E_CRYPTO.
 */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_attach(SSL_CTX *ctx, const struct tlsr_ssl_opts *opts);

/* The certificates' part of the session ID context the library derives: SHA-256 of ctx's one
 * certificate, or with several (one per key type) SHA-256 over each one's, in OpenSSL's order
 * of key types. For a caller that binds its own context (sid_ctx) to more than the
 * certificates, as serve does to its client-certificate trust. Errors: TLSR_E_INVALID (no
 * certificate loaded), TLSR_E_CRYPTO. */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_certificates_digest(SSL_CTX *ctx, uint8_t out[32]);

/* How a finished handshake was made. */
enum tlsr_resumption {
    TLSR_RESUMED_NONE = 0,   /* full handshake */
    TLSR_RESUMED_ID = 1,     /* TLS 1.2 session ID */
    TLSR_RESUMED_TICKET = 2, /* TLS 1.2 session ticket */
    TLSR_RESUMED_PSK = 3,    /* TLS 1.3 PSK (ticket) */
};

/* Tells how the handshake of ssl (finished, server side, attached SSL_CTX) resumed. */
enum tlsr_resumption tlsr_ssl_resumption(const SSL *ssl);
/* Whether a resumed handshake used another server's ticket: one sealed under the 48-byte
 * variant of a ring key (as nginx48, Apache and Node issue them after `keys export`), or one
 * carrying an accepted context of another server (accept_contexts). */
bool tlsr_ssl_resumed_foreign(const SSL *ssl);

/* Returns "full", "id", "ticket" or "psk". */
const char *tlsr_resumption_name(enum tlsr_resumption kind);

/* What the client offered to resume with. */
enum tlsr_offer {
    TLSR_OFFER_NONE = 0,   /* nothing: a first visit */
    TLSR_OFFER_ID = 1,     /* a TLS 1.2 session ID */
    TLSR_OFFER_TICKET = 2, /* a TLS 1.2 session ticket */
    TLSR_OFFER_PSK = 3,    /* a TLS 1.3 PSK identity (ticket) */
};

/* Why an offered session did not resume: exactly one reason per such handshake. */
enum tlsr_miss {
    TLSR_MISS_NONE = 0,      /* resumed, or nothing offered */
    TLSR_MISS_UNKNOWN_KEY,   /* the ticket names no key of the ring (or is not ours) */
    TLSR_MISS_BAD_TICKET,    /* a known key, but the MAC or the decryption failed */
    TLSR_MISS_EXPIRED,       /* older than the ticket lifetime */
    TLSR_MISS_CHAIN,         /* past the resumption chain cap (max_chain_s) */
    TLSR_MISS_CACHE,         /* no such session in the shared cache (never, expired, taken) */
    TLSR_MISS_FLEET,         /* not here, and the fleet store had none either */
    TLSR_MISS_FLEET_TIMEOUT, /* not here, and the fleet store did not answer in time */
    TLSR_MISS_FLEET_DOWN,    /* not here, and the fleet store is unreachable */
    TLSR_MISS_REJECTED,      /* a stored entry that did not open or decode */
    TLSR_MISS_CONTEXT,       /* a session of another session ID context (certificate, vhost) */
    TLSR_MISS_PARAMS,        /* found, but OpenSSL declined it: version, cipher, SNI, mode */
    TLSR_MISS_OTHER,         /* offered, not resumed, and none of the above was seen */
    TLSR_MISS_COUNT
};

/* What the client of ssl (server side, attached SSL_CTX, handshake finished) offered. A TLS 1.2
 * session ID sent by a client that also offers TLS 1.3 is counted only when it is found: such
 * clients send a random ID for middlebox compatibility (RFC 8446 Appendix D.4). */
enum tlsr_offer tlsr_ssl_offer(const SSL *ssl);
/* Why the offer did not resume (TLSR_MISS_NONE when it did, or when nothing was offered). */
enum tlsr_miss tlsr_ssl_miss(const SSL *ssl);
/* "none", "id", "ticket", "psk". */
const char *tlsr_offer_name(enum tlsr_offer offer);
/* "-", "unknown_key", "bad_mac", "expired", "chain_expired", "cache_miss", "fleet_miss",
 * "fleet_timeout", "fleet_down", "entry_rejected", "context_mismatch", "version_or_cipher",
 * "other". */
const char *tlsr_miss_name(enum tlsr_miss miss);

/* Longest host name in a server_name extension (RFC 6066 §3), without the terminating NUL. */
#define TLSR_SNI_MAX 255

/*
 * From a client-hello callback (SSL_CTX_set_client_hello_cb), copies the host name the client
 * asked for, lower-cased and NUL-terminated, into out (TLSR_SNI_MAX + 1 bytes). Choosing the
 * SSL_CTX here, before OpenSSL decides on resumption, keeps sessions of different virtual hosts
 * apart. Errors: TLSR_E_NOTFOUND (no server_name extension; no message set), TLSR_E_FORMAT
 * (malformed extension or a name that is not a DNS host name).
 */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_client_hello_servername(SSL *ssl, char out[TLSR_SNI_MAX + 1]);

/*
 * A second-level session store behind the shared cache: a fleet-wide store such as Redis
 * (tlsresume/fleet.h implements one). The hooks run on the thread doing the handshake and must
 * not block; they copy what they keep.
 */
struct tlsr_ssl_l2 {
    /* A session went into the shared cache under key; value (value_len bytes) is its encoding
     * and holds its secret: copy it into protected memory or seal it, never keep it as is.
     * flags is 0 or TLSR_CACHE_SINGLE_USE (a TLS 1.3 stateful ticket). */
    void (*store)(void *arg, const struct tlsr_cache_key *key, const uint8_t *value,
                  size_t value_len, uint32_t lifetime_s, unsigned flags);
    /* The session under key was used up (a single-use ticket) or invalidated: drop it. */
    void (*remove)(void *arg, const struct tlsr_cache_key *key);
    void *arg;
};

/* What a second-level store answered for the lookup of ssl's ClientHello; the store tells
 * the library so that a miss is counted with its cause (tlsr_ssl_miss()). */
enum tlsr_l2_result {
    TLSR_L2_HIT = 1,
    TLSR_L2_MISS = 2,
    TLSR_L2_TIMEOUT = 3,
    TLSR_L2_DOWN = 4,
    TLSR_L2_REJECTED = 5,
};
void tlsr_ssl_l2_result(SSL *ssl, enum tlsr_l2_result result);

/* Sets ctx's second-level store for this process (copied; NULL clears it). The store is not
 * shared across fork(): set it in each worker after forking. Errors: TLSR_E_INVALID (ctx not
 * attached, or attached without a cache). */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_set_l2(SSL_CTX *ctx, const struct tlsr_ssl_l2 *l2);

/* The session a ClientHello asks for. */
struct tlsr_ssl_lookup {
    uint8_t sid_ctx[TLSR_CACHE_MAX_CTX];
    size_t sid_ctx_len;
    uint8_t id[TLSR_CACHE_MAX_ID];
    size_t id_len;
    unsigned flags; /* TLSR_CACHE_SINGLE_USE for a TLS 1.3 stateful ticket */
};

/*
 * From a client-hello callback, after any SSL_set_SSL_CTX(): fills *out with the cache key the
 * handshake is about to look up when the shared cache does not hold it, so that the caller can
 * fetch it from a second-level store first (returning SSL_CLIENT_HELLO_RETRY meanwhile). That is
 * a TLS 1.2 session ID (unless a session ticket is offered and tickets are on) or, when TLS 1.3
 * will be negotiated, a PSK identity short enough to be a stateful ticket.
 * Errors: TLSR_E_NOTFOUND (nothing to fetch; no message), TLSR_E_FORMAT (malformed extension).
 */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_client_hello_lookup(SSL *ssl, struct tlsr_ssl_lookup *out);

/*
 * Puts a session fetched from a second-level store (value: an encoding the store hook was
 * given) into the shared cache under lk for lifetime_s more seconds, where the handshake of ssl
 * will find it. The bytes are decoded first: bytes that do not decode are refused.
 * Errors: TLSR_E_FORMAT, TLSR_E_INVALID, TLSR_E_SYSTEM.
 */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_prime(SSL *ssl, const struct tlsr_ssl_lookup *lk,
                                           const uint8_t *value, size_t value_len,
                                           uint32_t lifetime_s);

/*
 * Anti-replay for 0-RTT (RFC 8446 §8.2: ClientHello recording). From a client-hello callback,
 * after choosing the SSL_CTX: when the ClientHello offers early data, records the hash of its
 * random and its first PSK binder in the strike register and writes that 32-byte hash to key
 * (for a fleet-wide register). The binder is part of the key so that a forged ClientHello
 * reusing an observed random cannot burn the genuine one; an exact replay matches.
 * Returns TLSR_OK (first seen: early data may be accepted), TLSR_E_EXISTS (a replay: early data
 * is refused), TLSR_E_NOTFOUND (no early data offered, or 0-RTT off) or TLSR_E_TOOBIG (the
 * register is full: refused, fail closed). Without this call early data is always refused.
 */
TLSR_MUST_CHECK tlsr_status tlsr_ssl_client_hello_early(SSL *ssl, uint8_t key[32]);

/* What a second, fleet-wide register says of the key of tlsr_ssl_client_hello_early(). */
enum tlsr_early_verdict {
    TLSR_EARLY_FRESH = 0,       /* first seen fleet-wide */
    TLSR_EARLY_REPLAY = 1,      /* seen before */
    TLSR_EARLY_UNAVAILABLE = 2, /* could not tell (down, slow): refuse */
};
/* Makes early data on ssl wait for tlsr_ssl_early_verdict() (a fleet register is asked). */
void tlsr_ssl_early_require_verdict(SSL *ssl);
void tlsr_ssl_early_verdict(SSL *ssl, enum tlsr_early_verdict verdict);

/* What became of early data on a finished handshake. */
enum tlsr_early_outcome {
    TLSR_EARLY_NOT_OFFERED = 0,
    TLSR_EARLY_ACCEPTED = 1,
    TLSR_EARLY_REJECTED_REPLAY = 2,      /* the ClientHello was seen before */
    TLSR_EARLY_REJECTED_UNAVAILABLE = 3, /* a register could not answer, or is full */
    TLSR_EARLY_REJECTED_STARTING = 4,    /* within early_window_s of start */
    TLSR_EARLY_REJECTED_OTHER = 5, /* stale ticket age, no resumption, another server's ticket,
                                    * or 0-RTT off */
};
enum tlsr_early_outcome tlsr_ssl_early_outcome(const SSL *ssl);
/* "not_offered", "accepted", "replay", "unavailable", "starting", "stale_or_full". */
const char *tlsr_early_outcome_name(enum tlsr_early_outcome outcome);

#ifdef __cplusplus
}
#endif

#endif

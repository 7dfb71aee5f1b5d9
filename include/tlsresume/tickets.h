/*
 * The session-ticket key ring (RFC 5077 ticket keys that rotate themselves).
 *
 * A ring holds the keys that encrypt and decrypt session tickets for every worker process of a
 * server: create it in the parent before fork(). Keys live only in locked memory excluded from
 * core dumps; nothing writes them to disk; a retired key is wiped.
 *
 * Schedule. Time is cut into rotation periods of rotate_s seconds aligned on the Unix epoch
 * (so that hosts with synchronised clocks agree). The key of period g encrypts new tickets
 * during [g * rotate_s, (g + 1) * rotate_s); it is created one period earlier, when it already
 * decrypts (a host whose clock runs ahead may issue with it); after its period it stays
 * decrypt-only for lifetime_s more seconds, until no ticket it made can still be valid, and is
 * then wiped. A ticket under a decrypt-only key resumes and is renewed under the current key.
 * Rotation happens lazily on the first ticket operation of a new period, with no restart and
 * no timer; tlsr_keyring_rotate() forces one. A key is made ahead of its period: by the first
 * ticket operation that needs it, or, off the handshake path, by tlsr_keyring_prepare().
 *
 * Process and thread safety: a process-shared robust mutex guards the ring.
 */
#ifndef TLSRESUME_TICKETS_H
#define TLSRESUME_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tlsresume/clock.h>
#include <tlsresume/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TLSR_TICKET_NAME_LEN 16
#define TLSR_TICKET_AES_LEN 32
#define TLSR_TICKET_HMAC_LEN 32
/* Longest ticket lifetime (RFC 8446 §4.6.1: seven days). */
#define TLSR_TICKET_MAX_LIFETIME_S (7u * 24 * 3600)
#define TLSR_TICKET_MIN_ROTATE_S 10u
/* Most keys a ring holds at once: lifetime_s / rotate_s + 3 must not exceed it. */
#define TLSR_KEYRING_MAX_KEYS 256u
/* Keys imported from other servers a ring holds at most (tlsr_keyring_import), in room of
 * their own: they never push out the ring's own keys. */
#define TLSR_KEYRING_MAX_IMPORTS 16u

struct tlsr_keyring;

/* The material of one ticket key. Callers of a key source write into library-owned locked
 * memory; they must not keep copies. */
struct tlsr_ticket_key {
    uint8_t name[TLSR_TICKET_NAME_LEN];
    uint8_t aes_key[TLSR_TICKET_AES_LEN];
    uint8_t hmac_key[TLSR_TICKET_HMAC_LEN];
};

/*
 * Where new keys come from. make_key fills *out with the key of rotation period `generation`;
 * it runs under the ring lock in whichever process rotates, and must not block for long.
 * The default source draws every byte from RAND_bytes. A fleet source (later: Redis) returns
 * the same key for the same generation on every host. A failure keeps the current key and is
 * retried on the next ticket operation.
 */
struct tlsr_key_source {
    tlsr_status (*make_key)(void *arg, uint64_t generation, struct tlsr_ticket_key *out);
    void *arg;
};

/* A snapshot of the ring's counters. */
struct tlsr_keyring_stats {
    uint64_t keys_held; /* live keys now, the next one included */
    uint64_t current_generation;
    uint64_t current_key_age_s;    /* seconds since the current key started encrypting */
    uint64_t rotations;            /* times a new key became the encrypting key */
    uint64_t keys_wiped;           /* keys retired and wiped */
    uint64_t issued;               /* tickets encrypted */
    uint64_t decrypted;            /* tickets that decrypted and resumed */
    uint64_t renewed;              /* of those, renewed under a newer key */
    uint64_t rejected_unknown_key; /* key name not in the ring: full handshake */
    uint64_t rejected_bad_mac;     /* known key, but the MAC or padding did not verify */
    uint64_t rejected_expired;     /* decrypted, but older than the ticket lifetime */
    uint64_t rejected_chain;       /* past the resumption chain cap (tickets and cached) */
    uint64_t source_errors;        /* the key source failed; the current key stayed */
    uint64_t keys_made_inline;     /* keys a handshake had to make (the lock held): none while
                                      tlsr_keyring_prepare() runs on a timer */
    bool is_fleet;                 /* a fleet promoted the encrypting key */
    uint64_t current_overdue_s;    /* fleet key encrypting this long past its period */
    uint64_t fleet_lapses;         /* fleet keys that outlived their bound: local keys took over */
    uint64_t rotation_room;        /* rotations on demand the ring can still take (a gauge) */
    uint64_t rotations_refused;    /* asked with no room: refused, since one would wipe a key
                                      whose tickets are still valid */
    uint64_t variants_opened;      /* tickets opened under the 48-byte variant of a key, as
                                      nginx48, Apache or Node issue them after `keys export` */
};

/* Where a key stands. */
enum tlsr_key_state {
    TLSR_KEY_NEXT = 0,         /* decrypts; will encrypt later (or when the fleet promotes it) */
    TLSR_KEY_CURRENT = 1,      /* encrypts new tickets */
    TLSR_KEY_DECRYPT_ONLY = 2, /* retired from encrypting; decrypts until its tickets expire */
};

/* What tlsr_keyring_list() tells of one key: never its bytes. */
struct tlsr_key_info {
    uint64_t generation;
    uint8_t name_prefix[4]; /* the first bytes of the key name, for logs and status */
    enum tlsr_key_state state;
    bool is_fleet;      /* installed from a fleet rather than made locally */
    uint64_t age_s;     /* since it started encrypting (0 for a next key) */
    uint64_t expires_s; /* seconds until it is wiped */
    uint64_t issued;    /* tickets sealed under it */
    uint64_t presented; /* tickets that came back naming it */
};

/*
 * Creates a ring in shared, locked, non-dumpable memory with the given rotation period
 * (TLSR_TICKET_MIN_ROTATE_S or more) and ticket lifetime (1 s to TLSR_TICKET_MAX_LIFETIME_S),
 * and makes its first two keys from the default source. Call before fork().
 * Errors: TLSR_E_INVALID (a value out of range, or too many keys needed), TLSR_E_NOMEM (no
 * locked memory: see RLIMIT_MEMLOCK), TLSR_E_CRYPTO (no randomness).
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_new(uint32_t rotate_s, uint32_t lifetime_s,
                                             struct tlsr_keyring **out);

/* Unmaps this process's view; in the creating process, wipes every key first. Accepts NULL. */
void tlsr_keyring_free(struct tlsr_keyring *ring);

/*
 * Handing a ring to a new program (a binary upgrade), as with caches (tlsresume/cache.h): the
 * ring lives in two memory files, its head (lock, schedule, counters) and its keys (in secret
 * memory where the kernel offers it: tlsresume/memory.h), whose descriptors tlsr_keyring_fds()
 * gives (fds[1] is -1 where one file holds both); the new program maps them with
 * tlsr_keyring_adopt()
 * and holds every key, with its schedule (tlsr_keyring_schedule tells it); the old one calls
 * tlsr_keyring_disown() before tlsr_keyring_free() so that it does not wipe the keys.
 * Errors of adopt: TLSR_E_VERSION (a layout this build does not read), TLSR_E_FORMAT (no ring,
 * or one that does not fit the files), TLSR_E_INVALID, TLSR_E_NOMEM. fds stay the caller's.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_adopt(const int fds[2], struct tlsr_keyring **out);
void tlsr_keyring_fds(const struct tlsr_keyring *ring, int fds[2]);
void tlsr_keyring_disown(struct tlsr_keyring *ring);
void tlsr_keyring_schedule(const struct tlsr_keyring *ring, uint32_t *rotate_s,
                           uint32_t *lifetime_s);

/* Sets this handle's clock (default tlsr_clock_wall). Set it before the ring is used. */
void tlsr_keyring_set_clock(struct tlsr_keyring *ring, tlsr_clock_fn clock, void *arg);

/*
 * Replaces the key source (the struct is copied) and rebuilds the ring from it: existing keys
 * are wiped. Call before fork() and before serving. Errors: as tlsr_keyring_new.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_set_source(struct tlsr_keyring *ring,
                                                    const struct tlsr_key_source *source);

/*
 * Rotates now: the next key starts encrypting, the current one becomes decrypt-only for
 * lifetime_s, and a new next key is made. Tickets already issued keep resuming. The ring keeps
 * room for 8 such rotations within one ticket lifetime on top of its schedule; beyond that a
 * rotation is refused with TLSR_E_TOOBIG (counted in rotations_refused), never done by wiping a
 * key whose tickets are still valid. Safe from any process; not async-signal-safe (call it
 * from the main loop after a signal).
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_rotate(struct tlsr_keyring *ring);

/* Fills *out (applying any rotation or retirement that is due first). */
/*
 * Makes the keys of the next two periods now (the next one and the one after, where the ring
 * has room), so that no handshake has to: call it from a timer in one process (serve's master
 * calls it every second), and key generation (RAND_bytes, or the key source, under the ring's
 * lock) never runs in a handshake. Without it the ring still works: a ticket operation makes
 * the next key when it is missing (counted in keys_made_inline). Errors: the key source's.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_prepare(struct tlsr_keyring *ring);
TLSR_MUST_CHECK tlsr_status tlsr_keyring_get_stats(struct tlsr_keyring *ring,
                                                   struct tlsr_keyring_stats *out);

/*
 * Fleet control (used by tlsr_fleet_ring; see tlsresume/fleet.h). tlsr_keyring_install() adds
 * a key made elsewhere as decrypt-only under the given generation; a key with the same name
 * already held is left alone. With retired_for_s 0 it is a next key: decrypt-only until
 * tlsr_keyring_promote() names it, and never promoted, wiped after two rotation periods plus
 * the lifetime and skew. With retired_for_s > 0 it is a key the fleet has already retired,
 * kept that many seconds (at most lifetime_s + skew_s).
 * tlsr_keyring_promote() makes that key encrypt from now: the key encrypting so far turns
 * decrypt-only for lifetime_s + skew_s, keys the local schedule had prepared are wiped, and
 * the ring stops making keys on its own. A promoted key keeps encrypting past its period while
 * no newer key is promoted (the fleet store is unreachable), for at most overdue_s more; then
 * the ring goes back to local keys (counted in fleet_lapses) until the next promotion.
 * Errors: TLSR_E_TOOBIG (no slot: every key still encrypts), TLSR_E_NOTFOUND (promote: no
 * such key), TLSR_E_INVALID, TLSR_E_SYSTEM.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_install(struct tlsr_keyring *ring, uint64_t generation,
                                                 const struct tlsr_ticket_key *key,
                                                 uint32_t retired_for_s);
TLSR_MUST_CHECK tlsr_status tlsr_keyring_promote(struct tlsr_keyring *ring,
                                                 const uint8_t name[TLSR_TICKET_NAME_LEN]);
/* Sets the fleet timing: skew_s (0 to 1 h) and overdue_s (rotate_s to 7 days). Before fork. */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_set_fleet_timing(struct tlsr_keyring *ring,
                                                          uint32_t skew_s, uint32_t overdue_s);
/* Whether a live key has this name. */
bool tlsr_keyring_has_key(struct tlsr_keyring *ring, const uint8_t name[TLSR_TICKET_NAME_LEN]);
/* Describes up to cap keys, oldest first, into out and sets *n. */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_list(struct tlsr_keyring *ring, struct tlsr_key_info *out,
                                              size_t cap, size_t *n);

/* Copies the name of the key that encrypts now into name_out. */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_current_name(struct tlsr_keyring *ring,
                                                      uint8_t name_out[TLSR_TICKET_NAME_LEN]);

/*
 * Ticket-key files of other servers (docs/KEYS.md). Every format below is what the server
 * named reads with OpenSSL's ticket callback: AES-CBC and HMAC-SHA256 over a 16-byte key
 * name; 48-byte keys use AES-128 and a 16-byte HMAC key, 80-byte keys AES-256 and 32 bytes.
 */
enum tlsr_key_format {
    TLSR_KEYFMT_NGINX48 = 0, /* one key a file: 48 bytes, name | aes | hmac */
    TLSR_KEYFMT_NGINX80,     /* one key a file: 80 bytes, name | hmac | aes */
    TLSR_KEYFMT_HAPROXY,     /* base64 lines of name | aes | hmac (48 or 80 bytes); the
                              * penultimate line encrypts, the last is the next key */
    TLSR_KEYFMT_APACHE,      /* one 48-byte key: name | hmac | aes */
    TLSR_KEYFMT_NODE,        /* one 48-byte key: name | hmac | aes (tls.Server setTicketKeys) */
    TLSR_KEYFMT_RAW,         /* 80-byte records name | aes | hmac, the encrypting key first */
    TLSR_KEYFMT_NGHTTPX,     /* one key a file: 80 bytes, name | aes | hmac (the first file
                              * given encrypts; --tls-ticket-key-cipher=aes-256-cbc) */
    TLSR_KEYFMT_H2O,         /* h2o's YAML ticket file (ticket-store: file) */
    TLSR_KEYFMT_GO,          /* base64 lines of 32-byte keys for SetSessionTicketKeys, the
                              * encrypting key first */
    TLSR_KEYFMT_ENVOY,       /* an SDS resource file: a Secret's session_ticket_keys */
    TLSR_KEYFMT_K8S_SECRET,  /* a Kubernetes Secret manifest (tls.sessionticket.key[.N]) */
};

/* A key as files carry it, in our canonical order name | aes | hmac. */
struct tlsr_key_material {
    uint8_t len; /* 48 (AES-128) or 80 (AES-256) */
    uint8_t bytes[80];
};

/* The format called name ("nginx48", "nginx80", "haproxy", "apache", "node", "raw"). */
TLSR_MUST_CHECK tlsr_status tlsr_key_format_from_name(const char *name, enum tlsr_key_format *out);
const char *tlsr_key_format_name(enum tlsr_key_format fmt);
/* Whether fmt holds 48-byte keys only (nginx48, apache, node). */
bool tlsr_key_format_is_48(enum tlsr_key_format fmt);

/*
 * Reads the keys of a file in fmt (what names it in messages: "keys.txt") into out (cap
 * entries) and sets *n, oldest first for HAProxy, as stored otherwise. Errors: TLSR_E_FORMAT
 * naming the file, the line or key, and what is wrong (wrong length, bad base64, empty);
 * TLSR_E_TOOBIG (more than cap keys). Wipes its scratch copies.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyfile_read(enum tlsr_key_format fmt, const char *what,
                                              const uint8_t *data, size_t len,
                                              struct tlsr_key_material *out, size_t cap, size_t *n);

/*
 * The 48-byte key that stands for an 80-byte one in 48-byte formats: HKDF-SHA256 of its AES
 * and HMAC keys, salted with its name, so every host derives the same bytes. A 48-byte key is
 * copied.
 */
TLSR_MUST_CHECK tlsr_status tlsr_key_material_to48(const struct tlsr_key_material *in,
                                                   struct tlsr_key_material *out);

/*
 * Writes one key in fmt's byte layout (48-byte formats derive it with tlsr_key_material_to48)
 * into out (80 bytes) and sets *len: the content of one nginx or Apache key file, or Node's
 * setTicketKeys() buffer, or one HAProxy line before base64.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyfile_key_bytes(enum tlsr_key_format fmt,
                                                   const struct tlsr_key_material *key,
                                                   uint8_t out[80], size_t *len);

/*
 * Writes a whole file in fmt from keys ordered as tlsr_keyring_export() gives them (the
 * encrypting key, then the next key when has_next, then decrypt-only keys, newest first):
 * nginx, Apache and Node files hold the encrypting key; HAProxy three lines (previous,
 * encrypting, next: a missing one repeats the encrypting key); raw every key. Errors:
 * TLSR_E_INVALID (no key), TLSR_E_TOOBIG (cap too small).
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyfile_write(enum tlsr_key_format fmt,
                                               const struct tlsr_key_material *keys, size_t n,
                                               bool has_next, uint8_t *out, size_t cap,
                                               size_t *len);
/*
 * As tlsr_keyfile_write, with the resource name an Envoy SDS file or a Kubernetes Secret
 * carries (NULL: "session_ticket_keys", "tlsresume-ticket-keys"; ignored by other formats).
 * h2o, go, envoy and k8s-secret hold every 80-byte key, the encrypting key first (or, for h2o,
 * with the newest past not_before) and the next key decrypt-only; a Secret holds up to 10.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyfile_write_named(enum tlsr_key_format fmt, const char *name,
                                                     const struct tlsr_key_material *keys, size_t n,
                                                     bool has_next, uint8_t *out, size_t cap,
                                                     size_t *len);
/* Whether fmt is one of the text formats only written, never read (h2o, go, envoy,
 * k8s-secret). */
bool tlsr_key_format_is_text(enum tlsr_key_format fmt);

/*
 * HAProxy's three keys from keys ordered as tlsr_keyring_export() gives them: order[] gets the
 * indexes of the previous, encrypting and next keys (HAProxy encrypts with the penultimate). A
 * missing one is the encrypting key; so is a previous key of another size (HAProxy holds one
 * key size a file). n must be at least 1.
 */
void tlsr_keyfile_haproxy_order(const struct tlsr_key_material *keys, size_t n, bool has_next,
                                size_t order[3]);

/*
 * Copies the ring's keys (fleet keys only when fleet_only) into out (cap entries, which the
 * caller wipes with OPENSSL_cleanse after use): the encrypting key first, then the next key
 * (*has_next), then decrypt-only keys newest first. Errors: TLSR_E_NOTFOUND (no encrypting
 * key yet: a fleet not joined), TLSR_E_INVALID.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_export(struct tlsr_keyring *ring, bool fleet_only,
                                                struct tlsr_key_material *out, size_t cap,
                                                size_t *n, bool *has_next);

/*
 * Adds a key from another server (48 or 80 bytes) as decrypt-only for retired_for_s seconds
 * (at most lifetime_s + skew), so tickets it issued keep resuming after a migration. A key
 * already held is left alone. Errors: as tlsr_keyring_install.
 */
TLSR_MUST_CHECK tlsr_status tlsr_keyring_import(struct tlsr_keyring *ring,
                                                const struct tlsr_key_material *key,
                                                uint32_t retired_for_s);

#ifdef __cplusplus
}
#endif

#endif

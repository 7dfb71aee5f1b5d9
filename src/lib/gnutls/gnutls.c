/*
 * The GnuTLS adapter: our session cache, ticket key ring and strike register behind GnuTLS's
 * db, ticket and anti-replay interfaces (tlsresume/gnutls.h).
 *
 * Cache entries: key = (GNUTLS_CTX, session ID), value = GnuTLS's packed session as it gives
 * it (at most TLSR_CACHE_MAX_VALUE bytes; larger ones are not cached). The context keeps
 * GnuTLS and OpenSSL sessions apart in one cache. A full handshake's entry is written when the
 * server's Finished is queued (the session's one handshake hook), not after it is flushed as
 * GnuTLS would: a client that reconnects at once to another worker must find it. The fleet's
 * copy (a blocking Redis round trip) waits until the Finished is out.
 *
 * Tickets: GnuTLS 3.7 seals every ticket of a session under a key made from the 64-byte key the
 * session was given (gnutls_session_ticket_enable_server, once per session): SHA3-512(T | key)
 * with T the current period of STEK_PERIODS session timeouts; its first 16 bytes name the
 * ticket. So the key is chosen when the ClientHello arrives (a PRE hook, before GnuTLS parses
 * it): the ring key whose name for this period the offered ticket carries, else the encrypting
 * one. Each ring key stands for the GnuTLS key HKDF-SHA256(ikm = its AES and HMAC keys, salt =
 * its name, info = GNUTLS_INFO). Tested against Debian 12's GnuTLS 3.7.9; a GnuTLS that names
 * tickets otherwise gets the encrypting key: older tickets become full handshakes, not errors.
 *
 * Threat: attacker-chosen ClientHello bytes (parsed through the bounded reader, see
 * fuzz/fuzz_gnutls_hello.c), key material left in memory (wiped), a crypto failure (the
 * session gets no tickets: a full handshake, never a weak key).
 */
#include <tlsresume/gnutls.h>

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <tlsresume/fleet.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../kdf/tlsr_kdf.h"
#include "../ssl/psk.h"

#define GNUTLS_CTX "tlsresume gnutls"
#define GNUTLS_INFO "tlsresume gnutls ticket key"
#define EXT_SESSION_TICKET 35
#define EXT_PRE_SHARED_KEY 41
#define NAME_LEN 16
#define MAX_KEYS 64
#define STRIKE_CTX "tlsresume gnutls 0-RTT"
/* GnuTLS rotates its ticket key every STEK_PERIODS ticket lifetimes (lib/stek.c). */
#define STEK_PERIODS 3u

void tlsr_gnutls_opts_init(struct tlsr_gnutls_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->session_timeout_s = 3600;
}

static struct tlsr_cache_key cache_key(const gnutls_datum_t *id)
{
    struct tlsr_cache_key k = {(const uint8_t *)GNUTLS_CTX, strlen(GNUTLS_CTX), id->data, id->size};
    return k;
}

static bool is_storable(gnutls_datum_t key, gnutls_datum_t data)
{
    return key.size > 0 && key.size <= TLSR_CACHE_MAX_ID && data.size > 0 &&
           data.size <= TLSR_CACHE_MAX_VALUE;
}

static bool cache_put(const struct tlsr_gnutls_opts *o, gnutls_datum_t key, gnutls_datum_t data)
{
    struct tlsr_cache_key k = cache_key(&key);
    return tlsr_cache_insert(o->cache, &k, data.data, data.size, o->session_timeout_s, 0) ==
           TLSR_OK;
}

/* To the fleet's Redis: a blocking round trip, so never before the server's Finished. */
static void fleet_put(const struct tlsr_gnutls_opts *o, gnutls_datum_t key, gnutls_datum_t data)
{
    if (o->store != NULL) {
        struct tlsr_cache_key k = cache_key(&key);
        tlsr_fleet_store_put(o->store, &k, data.data, data.size, o->session_timeout_s);
    }
}

static int db_store(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
    const struct tlsr_gnutls_opts *o = ptr;
    if (!is_storable(key, data)) {
        return -1;
    }
    fleet_put(o, key, data);
    return cache_put(o, key, data) ? 0 : -1;
}

/* GnuTLS's own store, once its Finished is out, after the cache took the session before it:
 * only the fleet is left. */
static int db_store_fleet(void *ptr, gnutls_datum_t key, gnutls_datum_t data)
{
    if (is_storable(key, data)) {
        fleet_put(ptr, key, data);
    }
    return 0;
}

static gnutls_datum_t db_retrieve(void *ptr, gnutls_datum_t key)
{
    const struct tlsr_gnutls_opts *o = ptr;
    gnutls_datum_t out = {NULL, 0};
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    if (key.size == 0 || key.size > TLSR_CACHE_MAX_ID) {
        return out;
    }
    struct tlsr_cache_key k = cache_key(&key);
    bool is_found = tlsr_cache_lookup(o->cache, &k, buf, sizeof(buf), &len) == TLSR_OK;
    if (!is_found && o->store != NULL &&
        tlsr_fleet_store_get(o->store, &k, buf, sizeof(buf), &len) == TLSR_OK) {
        /* From the fleet: keep it here too, for the next resumption on this host (a failure
         * only costs that; the cache counts it). */
        tlsr_status kept = tlsr_cache_insert(o->cache, &k, buf, len, o->session_timeout_s, 0);
        (void)kept;
        is_found = true;
    }
    if (is_found) {
        out.data = gnutls_malloc(len);
        if (out.data != NULL) {
            memcpy(out.data, buf, len);
            out.size = (unsigned)len;
        }
    }
    OPENSSL_cleanse(buf, len);
    return out;
}

static int db_remove(void *ptr, gnutls_datum_t key)
{
    const struct tlsr_gnutls_opts *o = ptr;
    if (key.size == 0 || key.size > TLSR_CACHE_MAX_ID) {
        return -1;
    }
    struct tlsr_cache_key k = cache_key(&key);
    if (o->store != NULL) {
        tlsr_fleet_store_del(o->store, &k);
    }
    return tlsr_cache_remove(o->cache, &k) == TLSR_OK ? 0 : -1;
}

tlsr_status tlsr_gnutls_ticket_key(const struct tlsr_key_material *ring_key, uint8_t out[64])
{
    ENSURE(ring_key != NULL && out != NULL && ring_key->len == 80, TLSR_E_INVALID,
           "gnutls: a ticket key comes from an 80-byte ring key");
    return tlsr__hkdf_sha256("gnutls ticket key", ring_key->bytes + NAME_LEN, 80 - NAME_LEN,
                             ring_key->bytes, NAME_LEN, GNUTLS_INFO, out, 64);
}

/* Skips a vector with a length prefix of n bytes (1 or 2). */
static tlsr_status skip_vec(struct tlsr_rd *rd, int n)
{
    uint8_t l8 = 0;
    uint16_t l16 = 0;
    const uint8_t *p;
    TRY(n == 1 ? tlsr_rd_u8(rd, &l8) : tlsr_rd_u16(rd, &l16));
    return tlsr_rd_bytes(rd, n == 1 ? l8 : l16, &p);
}

tlsr_status tlsr_gnutls_hello_ticket(const uint8_t *msg, size_t len, const uint8_t **ticket,
                                     size_t *ticket_len)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, msg, len);
    uint16_t version;
    const uint8_t *random;
    ENSURE(tlsr_rd_u16(&rd, &version) == TLSR_OK && tlsr_rd_bytes(&rd, 32, &random) == TLSR_OK &&
               skip_vec(&rd, 1) == TLSR_OK && skip_vec(&rd, 2) == TLSR_OK &&
               skip_vec(&rd, 1) == TLSR_OK,
           TLSR_E_FORMAT, "ClientHello: truncated before its extensions");
    if (tlsr_rd_left(&rd) == 0) {
        return TLSR_E_NOTFOUND;
    }
    uint16_t ext_len;
    const uint8_t *exts;
    ENSURE(tlsr_rd_u16(&rd, &ext_len) == TLSR_OK && tlsr_rd_bytes(&rd, ext_len, &exts) == TLSR_OK &&
               tlsr_rd_left(&rd) == 0,
           TLSR_E_FORMAT, "ClientHello: bad extensions length");
    struct tlsr_rd er;
    tlsr_rd_init(&er, exts, ext_len);
    const uint8_t *psk = NULL;
    size_t psk_len = 0;
    while (tlsr_rd_left(&er) > 0) {
        uint16_t type;
        uint16_t elen;
        const uint8_t *data;
        ENSURE(tlsr_rd_u16(&er, &type) == TLSR_OK && tlsr_rd_u16(&er, &elen) == TLSR_OK &&
                   tlsr_rd_bytes(&er, elen, &data) == TLSR_OK,
               TLSR_E_FORMAT, "ClientHello: truncated extension");
        if (type == EXT_SESSION_TICKET && elen > 0) {
            *ticket = data;
            *ticket_len = elen;
            return TLSR_OK;
        }
        if (type == EXT_PRE_SHARED_KEY) {
            TRY(tlsr__psk_first_identity(data, elen, &psk, &psk_len));
        }
    }
    if (psk == NULL) {
        return TLSR_E_NOTFOUND;
    }
    *ticket = psk;
    *ticket_len = psk_len;
    return TLSR_OK;
}

/*
 * The name GnuTLS gives tickets sealed under master key m now: GnuTLS 3.7 seals under
 * SHA3-512(T | m), T = now / (STEK_PERIODS * expiration) as a 64-bit big-endian number, whose
 * first 16 bytes are the name (lib/stek.c). Only this period's name is accepted by GnuTLS.
 */
static tlsr_status gnutls_name(const uint8_t m[64], uint32_t expire_s, uint8_t name[NAME_LEN])
{
    uint64_t t = (uint64_t)time(NULL) / ((uint64_t)STEK_PERIODS * expire_s);
    uint8_t be[8];
    for (size_t i = 0; i < sizeof(be); i++) {
        be[i] = (uint8_t)(t >> (56 - 8 * i));
    }
    uint8_t h[64];
    unsigned h_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool is_ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha3_512(), NULL) == 1 &&
                 EVP_DigestUpdate(md, be, sizeof(be)) == 1 && EVP_DigestUpdate(md, m, 64) == 1 &&
                 EVP_DigestFinal_ex(md, h, &h_len) == 1;
    EVP_MD_CTX_free(md);
    if (is_ok) {
        memcpy(name, h, NAME_LEN);
    }
    OPENSSL_cleanse(h, sizeof(h));
    return is_ok ? TLSR_OK : tlsr__err_ssl(TLSR_E_CRYPTO, "gnutls: SHA3-512 failed");
}

/* Names GnuTLS gives each ring key in a period, remembered per thread: a ClientHello costs a
 * comparison per key, not a derivation per key (a forged ticket stays cheap). Names are not
 * secret (every ticket carries one). */
struct name_memo {
    uint8_t ring_name[NAME_LEN];
    uint64_t period;
    uint32_t expire_s;
    uint8_t name[NAME_LEN];
    bool is_used;
};
static _Thread_local struct name_memo memo[MAX_KEYS];
static _Thread_local size_t memo_next;

/* The GnuTLS name of ring key k now; derives (and remembers) it when not known. */
static tlsr_status name_of(const struct tlsr_key_material *k, uint32_t expire_s,
                           uint8_t name[NAME_LEN])
{
    uint64_t period = (uint64_t)time(NULL) / ((uint64_t)STEK_PERIODS * expire_s);
    for (size_t i = 0; i < MAX_KEYS; i++) {
        const struct name_memo *m = &memo[i];
        if (m->is_used && m->period == period && m->expire_s == expire_s &&
            memcmp(m->ring_name, k->bytes, NAME_LEN) == 0) {
            memcpy(name, m->name, NAME_LEN);
            return TLSR_OK;
        }
    }
    uint8_t master[64];
    tlsr_status rc = tlsr_gnutls_ticket_key(k, master);
    if (rc == TLSR_OK) {
        rc = gnutls_name(master, expire_s, name);
    }
    OPENSSL_cleanse(master, sizeof(master));
    if (rc == TLSR_OK) {
        struct name_memo *m = &memo[memo_next];
        memo_next = (memo_next + 1) % MAX_KEYS;
        memcpy(m->ring_name, k->bytes, NAME_LEN);
        memcpy(m->name, name, NAME_LEN);
        m->period = period;
        m->expire_s = expire_s;
        m->is_used = true;
    }
    return rc;
}

/* The GnuTLS key for this session: the one the offered ticket names, else the encrypting. */
static tlsr_status choose_key(const struct tlsr_gnutls_opts *o, const gnutls_datum_t *hello,
                              uint8_t out[64])
{
    struct tlsr_key_material keys[MAX_KEYS];
    size_t n = 0;
    bool has_next = false;
    TRY(tlsr_keyring_export(o->keyring, false, keys, MAX_KEYS, &n, &has_next));
    const uint8_t *ticket = NULL;
    size_t ticket_len = 0;
    bool has_ticket =
        hello != NULL &&
        tlsr_gnutls_hello_ticket(hello->data, hello->size, &ticket, &ticket_len) == TLSR_OK &&
        ticket_len >= NAME_LEN;
    size_t chosen = 0;
    uint8_t name[NAME_LEN];
    tlsr_status rc = TLSR_OK;
    for (size_t i = 0; has_ticket && chosen == 0 && rc == TLSR_OK && i < n; i++) {
        if (keys[i].len != 80) {
            continue;
        }
        rc = name_of(&keys[i], o->session_timeout_s, name);
        if (rc == TLSR_OK && CRYPTO_memcmp(name, ticket, NAME_LEN) == 0) {
            chosen = i;
        }
    }
    if (rc == TLSR_OK) {
        rc = tlsr_gnutls_ticket_key(&keys[chosen], out);
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    if (rc != TLSR_OK) {
        OPENSSL_cleanse(out, 64);
    }
    return rc;
}

/* The ClientHello picks the session's ticket key. */
static void pick_ticket_key(gnutls_session_t session, const struct tlsr_gnutls_opts *o,
                            const gnutls_datum_t *hello)
{
    uint8_t key[64];
    if (choose_key(o, hello, key) != TLSR_OK) {
        return; /* no tickets for this session: a full handshake, never a weak key */
    }
    gnutls_datum_t k = {key, sizeof(key)};
    (void)gnutls_session_ticket_enable_server(session, &k);
    OPENSSL_cleanse(key, sizeof(key));
}

/*
 * A full TLS 1.2 handshake's server Finished, about to be queued: puts the session in the cache
 * now, not after the Finished is flushed as GnuTLS would (the same gnutls_session_get_data2()
 * bytes, under the same ID), so that a client reconnecting at once to another worker finds it.
 * The client's Finished is verified by then. GnuTLS's own store then only feeds the fleet; if
 * this fails, it does everything.
 */
static void store_before_finished(gnutls_session_t session, const struct tlsr_gnutls_opts *o)
{
    gnutls_datum_t id = {NULL, 0};
    gnutls_datum_t data = {NULL, 0};
    if (gnutls_session_is_resumed(session) || gnutls_session_get_id2(session, &id) < 0 ||
        gnutls_session_get_data2(session, &data) < 0) {
        return;
    }
    if (is_storable(id, data) && cache_put(o, id, data)) {
        gnutls_db_set_store_function(session, db_store_fleet);
    }
    gnutls_memset(data.data, 0, data.size);
    gnutls_free(data.data);
}

/*
 * GnuTLS keeps one hook per session, so one hook sees every message before it is handled or
 * queued. A TLS 1.2 ticket sent means GnuTLS stores nothing (the ticket is the session): the
 * hook then narrows to ClientHellos, leaving the Finished alone; a renegotiation's ClientHello
 * widens it again and gives the session back its plain store.
 */
static int on_message(gnutls_session_t session, unsigned int htype, unsigned when,
                      unsigned int incoming, const gnutls_datum_t *msg)
{
    const struct tlsr_gnutls_opts *o = gnutls_db_get_ptr(session);
    if (when != GNUTLS_HOOK_PRE || o == NULL) {
        return 0;
    }
    if (incoming) {
        if (htype != GNUTLS_HANDSHAKE_CLIENT_HELLO) {
            return 0;
        }
        if (o->keyring != NULL) {
            pick_ticket_key(session, o, msg);
        }
        if (o->cache != NULL) { /* a new handshake (a renegotiation): all over again */
            gnutls_db_set_store_function(session, db_store);
            gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_PRE,
                                               on_message);
        }
        return 0;
    }
    if (o->cache == NULL || gnutls_protocol_get_version(session) == GNUTLS_TLS1_3) {
        return 0;
    }
    if (htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET) {
        gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
                                           on_message);
    } else if (htype == GNUTLS_HANDSHAKE_FINISHED) {
        store_before_finished(session, o);
    }
    return 0;
}

tlsr_status tlsr_gnutls_session_attach(gnutls_session_t session, const struct tlsr_gnutls_opts *o)
{
    ENSURE(session != NULL && o != NULL && o->session_timeout_s > 0, TLSR_E_INVALID,
           "gnutls: NULL argument or a zero session timeout");
    gnutls_db_set_ptr(session, (void *)o);
    if (o->cache != NULL) {
        gnutls_db_set_retrieve_function(session, db_retrieve);
        gnutls_db_set_store_function(session, db_store);
        gnutls_db_set_remove_function(session, db_remove);
    }
    /* Always set: GnuTLS's ticket key period follows it, and choose_key() must know it. */
    gnutls_db_set_cache_expiration(session, (int)o->session_timeout_s);
    if (o->cache != NULL) {
        gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_PRE,
                                           on_message);
    } else if (o->keyring != NULL) {
        gnutls_handshake_set_hook_function(session, GNUTLS_HANDSHAKE_CLIENT_HELLO, GNUTLS_HOOK_PRE,
                                           on_message);
    }
    return TLSR_OK;
}

static int anti_replay_add(void *ptr, time_t exp_time, const gnutls_datum_t *key,
                           const gnutls_datum_t *data)
{
    (void)data;
    struct tlsr_cache *reg = ptr;
    time_t now = time(NULL);
    uint32_t life = exp_time > now ? (uint32_t)(exp_time - now) : 1;
    /* The key can be longer than a cache ID: record its hash. */
    uint8_t id[32];
    unsigned id_len = 0;
    if (EVP_Digest(key->data, key->size, id, &id_len, EVP_sha256(), NULL) != 1) {
        return GNUTLS_E_DB_ERROR;
    }
    struct tlsr_cache_key k = {(const uint8_t *)STRIKE_CTX, strlen(STRIKE_CTX), id, id_len};
    tlsr_status rc = tlsr_cache_record(reg, &k, life);
    return rc == TLSR_OK ? 0 : rc == TLSR_E_EXISTS ? GNUTLS_E_DB_ENTRY_EXISTS : GNUTLS_E_DB_ERROR;
}

void tlsr_gnutls_anti_replay_attach(gnutls_anti_replay_t anti_replay, struct tlsr_cache *reg)
{
    gnutls_anti_replay_set_ptr(anti_replay, reg);
    gnutls_anti_replay_set_add_function(anti_replay, anti_replay_add);
}

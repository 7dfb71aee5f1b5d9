/*
 * The upstream session store of `tlsresume serve --backend-tls`: the sessions its handshakes
 * with the backends resume, kept in a tlsr_cache of its own (shared, locked memory excluded
 * from core dumps, made by the master before the workers fork, so a session one worker made
 * resumes in every other; bounded by backend_session_cache; wiped slot by slot on eviction;
 * never on disk).
 *
 * Entries live under a session ID context that is the backend's session key (serve_upstream.c:
 * a digest of the trust settings, the backend's address and its name), so sessions never cross
 * backends and a reload that changes what is trusted never offers a session verified under the
 * old trust. Under that context:
 *
 *   "s"          the last TLS 1.2 session (ID or ticket), offered until it expires or the
 *                backend refuses it; replaced by each full handshake and each renewed ticket
 *   "t" W N      TLS 1.3 tickets that worker W received, N = 0..7, single-use: a lookup takes
 *                one in one locked step, so no two connections of any worker ever send the
 *                same ticket (RFC 8446 §C.4). A worker takes its own first, then another's.
 *
 * A value is: version (1 byte, 1) | owner (8 random bytes, one per worker process) | serial
 * (4 bytes, big-endian, per owner) | i2d_SSL_SESSION bytes. Decoding a session costs about
 * 150 us in OpenSSL 3.0 (it parses the backend's certificate), more than resuming saves; so the
 * worker that stored a value keeps the session object it stored (at most one TLS 1.2 session
 * and 8 tickets per backend) and uses it when the value it finds is the one it stored (owner
 * and serial match). Those few live in OpenSSL's heap, as the session of every handshake under
 * way does, and OpenSSL wipes their secrets when they are freed; the store holds the rest.
 */
#include "serve_upstream_store.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "serve_upstream.h"

#define WEEK_S (7u * 24 * 3600)
#define VALUE_VERSION 1
#define HEADER_LEN 13 /* version, owner, serial */
/* Other workers' ticket slots a take looks at when this worker's own are empty. */
#define OTHERS_LOOKED_AT 24

/* A session this worker stored, and the value that stands for it in the store. */
struct held {
    SSL_SESSION *sess;
    uint32_t serial;
};

struct upstream_held {
    uint8_t owner[8];
    uint32_t serial;
    unsigned next_slot[CLI_LIST_MAX]; /* where this worker stores its next ticket */
    struct held tickets[CLI_LIST_MAX][UPSTREAM_TICKETS];
    struct held tls12[CLI_LIST_MAX]; /* the "s" value last stored or decoded here */
    uint8_t tls12_owner[CLI_LIST_MAX][8];
};

static struct upstream_held *held_of(struct worker *w)
{
    if (w->upstream_held == NULL) {
        struct upstream_held *h = calloc(1, sizeof(*h));
        if (h == NULL || RAND_bytes(h->owner, sizeof(h->owner)) != 1) {
            free(h);
            return NULL;
        }
        w->upstream_held = h;
    }
    return w->upstream_held;
}

static void held_set(struct held *h, SSL_SESSION *sess, uint32_t serial)
{
    SSL_SESSION_free(h->sess);
    h->sess = sess;
    h->serial = serial;
}

void upstream_store_release(struct worker *w)
{
    struct upstream_held *h = w->upstream_held;
    if (h == NULL) {
        return;
    }
    for (size_t b = 0; b < CLI_LIST_MAX; b++) {
        for (size_t i = 0; i < UPSTREAM_TICKETS; i++) {
            SSL_SESSION_free(h->tickets[b][i].sess);
        }
        SSL_SESSION_free(h->tls12[b].sess);
    }
    OPENSSL_cleanse(h, sizeof(*h));
    free(h);
    w->upstream_held = NULL;
}

static struct tlsr_cache_key key_of(const struct conn *c, const uint8_t *id, size_t id_len)
{
    const struct backend_addr *b = &c->w->a->backends[c->backend];
    return (struct tlsr_cache_key){b->session_key, sizeof(b->session_key), id, id_len};
}

/* Writes sess under id, stamped with this worker and serial; false when it was not stored (a
 * full store or an oversized session costs a later resumption, nothing else). */
static bool put(struct conn *c, SSL_SESSION *sess, const uint8_t *id, size_t id_len,
                bool is_single_use, const struct upstream_held *h, uint32_t serial)
{
    struct tlsr_cache *store = c->w->a->up->store;
    int len = i2d_SSL_SESSION(sess, NULL);
    if (len <= 0 || len > TLSR_CACHE_MAX_VALUE - HEADER_LEN || !SSL_SESSION_is_resumable(sess)) {
        return false;
    }
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    buf[0] = VALUE_VERSION;
    memcpy(buf + 1, h->owner, 8);
    buf[9] = (uint8_t)(serial >> 24);
    buf[10] = (uint8_t)(serial >> 16);
    buf[11] = (uint8_t)(serial >> 8);
    buf[12] = (uint8_t)serial;
    uint8_t *p = buf + HEADER_LEN;
    uint64_t now = tlsr_cache_now(store);
    /* A ticket lives as long as the backend said (its lifetime hint), if that is shorter. */
    uint64_t life = (uint64_t)SSL_SESSION_get_timeout(sess);
    unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(sess);
    if (SSL_SESSION_has_ticket(sess) && hint > 0 && hint < life) {
        life = hint;
    }
    uint64_t end = (uint64_t)SSL_SESSION_get_time(sess) + life;
    uint64_t left = end > now ? end - now : 0;
    bool is_stored = false;
    if (i2d_SSL_SESSION(sess, &p) == len && left > 0) {
        struct tlsr_cache_key k = key_of(c, id, id_len);
        is_stored = tlsr_cache_insert(store, &k, buf, HEADER_LEN + (size_t)len,
                                      left > WEEK_S ? WEEK_S : (uint32_t)left,
                                      is_single_use ? TLSR_CACHE_SINGLE_USE : 0) == TLSR_OK;
    }
    OPENSSL_cleanse(buf, HEADER_LEN + (size_t)len);
    return is_stored;
}

int upstream_store_on_ticket(SSL *ssl, SSL_SESSION *sess)
{
    struct conn *c = SSL_get_app_data(ssl);
    if (c == NULL || SSL_version(ssl) != TLS1_3_VERSION || c->backend < 0) {
        return 0; /* TLS 1.2 sessions are stored when the handshake ends */
    }
    struct upstream_held *h = held_of(c->w);
    if (h == NULL) {
        return 0;
    }
    int b = c->backend;
    uint8_t id[3] = {'t', (uint8_t)c->w->a->id, 0};
    unsigned start = h->next_slot[b];
    unsigned slot = start % UPSTREAM_TICKETS; /* all full: over the oldest */
    for (unsigned i = 0; i < UPSTREAM_TICKETS; i++) {
        id[2] = (uint8_t)((start + i) % UPSTREAM_TICKETS);
        struct tlsr_cache_key k = key_of(c, id, sizeof(id));
        if (tlsr_cache_contains(c->w->a->up->store, &k) == TLSR_E_NOTFOUND) {
            slot = id[2];
            break;
        }
    }
    id[2] = (uint8_t)slot;
    h->next_slot[b] = slot + 1;
    uint32_t serial = ++h->serial;
    if (put(c, sess, id, sizeof(id), true, h, serial) && SSL_SESSION_up_ref(sess) == 1) {
        held_set(&h->tickets[b][slot], sess, serial);
    }
    return 0; /* OpenSSL keeps its own reference */
}

void upstream_store_put_tls12(struct conn *c, SSL_SESSION *sess)
{
    struct upstream_held *h = held_of(c->w);
    static const uint8_t id[1] = {'s'};
    if (h == NULL) {
        return;
    }
    uint32_t serial = ++h->serial;
    if (put(c, sess, id, sizeof(id), false, h, serial) && SSL_SESSION_up_ref(sess) == 1) {
        held_set(&h->tls12[c->backend], sess, serial);
        memcpy(h->tls12_owner[c->backend], h->owner, 8);
    }
}

/* Decodes the session of a value; NULL when it does not decode or cannot resume. */
static SSL_SESSION *decode(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    SSL_SESSION *s = d2i_SSL_SESSION(NULL, &p, (long)len);
    if (s != NULL && (p != der + len || SSL_SESSION_is_resumable(s) != 1)) {
        SSL_SESSION_free(s);
        s = NULL;
    }
    return s;
}

static uint32_t serial_of(const uint8_t *v)
{
    return (uint32_t)v[9] << 24 | (uint32_t)v[10] << 16 | (uint32_t)v[11] << 8 | v[12];
}

/* The session a value stands for: the one held (a reference, and out of the table when
 * is_taken) if this worker stored it, else decoded. NULL: unreadable. */
static SSL_SESSION *session_of(const uint8_t *v, size_t len, const uint8_t *held_owner,
                               struct held *held, bool is_taken)
{
    if (len <= HEADER_LEN || v[0] != VALUE_VERSION) {
        return NULL;
    }
    if (held != NULL && held->sess != NULL && held->serial == serial_of(v) &&
        CRYPTO_memcmp(v + 1, held_owner, 8) == 0) {
        if (SSL_SESSION_is_resumable(held->sess) != 1) {
            held_set(held, NULL, 0); /* OpenSSL found it bad: so is the value */
            return NULL;
        }
        SSL_SESSION *s = held->sess;
        if (is_taken) {
            held->sess = NULL;
        } else if (SSL_SESSION_up_ref(s) != 1) {
            return NULL;
        }
        return s;
    }
    return decode(v + HEADER_LEN, len - HEADER_LEN);
}

/* Looks up id; *s the session it holds (taken if single-use), NULL when none or unreadable
 * (then *miss says so); owner and *serial (may be NULL) the value's stamp. */
static bool lookup(struct conn *c, const uint8_t *id, size_t id_len, struct held *held,
                   const uint8_t *held_owner, SSL_SESSION **s, enum upstream_miss *miss,
                   uint8_t owner[8], uint32_t *serial)
{
    struct tlsr_cache *store = c->w->a->up->store;
    uint8_t buf[TLSR_CACHE_MAX_VALUE];
    size_t len = 0;
    struct tlsr_cache_key k = key_of(c, id, id_len);
    *s = NULL;
    if (tlsr_cache_lookup(store, &k, buf, sizeof(buf), &len) != TLSR_OK) {
        return false;
    }
    *s = session_of(buf, len, held_owner, held, id_len == 3);
    if (*s != NULL && owner != NULL) {
        memcpy(owner, buf + 1, 8);
        *serial = serial_of(buf);
    }
    OPENSSL_cleanse(buf, len);
    if (*s == NULL) {
        tlsr_cache_count_corrupt(store);
        *miss = UP_MISS_UNREADABLE;
        if (id_len == 1) {
            tlsr_status rc = tlsr_cache_remove(store, &k);
            (void)rc; /* gone or not, it is not offered again */
        }
    }
    return *s != NULL;
}

SSL_SESSION *upstream_store_take(struct conn *c, enum upstream_miss *miss)
{
    struct upstream_held *h = held_of(c->w);
    int b = c->backend;
    int self = c->w->a->id;
    SSL_SESSION *s = NULL;
    *miss = UP_MISS_NO_SESSION;
    /* This worker's tickets, newest first: their sessions are at hand. */
    for (unsigned i = 0; h != NULL && i < UPSTREAM_TICKETS; i++) {
        unsigned slot = (h->next_slot[b] + 2 * UPSTREAM_TICKETS - 1 - i) % UPSTREAM_TICKETS;
        uint8_t id[3] = {'t', (uint8_t)self, (uint8_t)slot};
        if (lookup(c, id, sizeof(id), &h->tickets[b][slot], h->owner, &s, miss, NULL, NULL)) {
            return s;
        }
    }
    static const uint8_t s12[1] = {'s'};
    uint8_t owner[8];
    uint32_t serial = 0;
    if (lookup(c, s12, sizeof(s12), h != NULL ? &h->tls12[b] : NULL,
               h != NULL ? h->tls12_owner[b] : NULL, &s, miss, owner, &serial)) {
        if (h != NULL && h->tls12[b].sess != s && SSL_SESSION_up_ref(s) == 1) {
            /* Decoded here: kept for the next connections, which find the same value. */
            held_set(&h->tls12[b], s, serial);
            memcpy(h->tls12_owner[b], owner, 8);
        }
        return s;
    }
    /* Another worker's tickets (one that just started has none of its own yet). */
    unsigned n = (unsigned)c->w->a->cfg->workers;
    unsigned looked = 0;
    for (unsigned k = 1; k < n && looked < OTHERS_LOOKED_AT; k++) {
        for (unsigned slot = 0; slot < UPSTREAM_TICKETS && looked < OTHERS_LOOKED_AT; slot++) {
            uint8_t id[3] = {'t', (uint8_t)(((unsigned)self + k) % n), (uint8_t)slot};
            looked++;
            if (lookup(c, id, sizeof(id), NULL, NULL, &s, miss, NULL, NULL)) {
                return s;
            }
        }
    }
    return NULL;
}

void upstream_store_forget(struct conn *c, bool is_tls13)
{
    struct upstream_held *h = held_of(c->w);
    if (c->backend < 0 || c->w->a->up->store == NULL) {
        return;
    }
    if (!is_tls13) {
        static const uint8_t s12[1] = {'s'};
        struct tlsr_cache_key k = key_of(c, s12, sizeof(s12));
        tlsr_status rc = tlsr_cache_remove(c->w->a->up->store, &k);
        (void)rc; /* another connection may have replaced or removed it already */
        if (h != NULL) {
            held_set(&h->tls12[c->backend], NULL, 0);
        }
        return;
    }
    unsigned n = (unsigned)c->w->a->cfg->workers;
    for (unsigned w = 0; w < n && w < 256; w++) {
        for (unsigned slot = 0; slot < UPSTREAM_TICKETS; slot++) {
            uint8_t id[3] = {'t', (uint8_t)w, (uint8_t)slot};
            struct tlsr_cache_key k = key_of(c, id, sizeof(id));
            tlsr_status rc = tlsr_cache_remove(c->w->a->up->store, &k);
            (void)rc; /* most slots are empty */
        }
    }
    for (unsigned slot = 0; h != NULL && slot < UPSTREAM_TICKETS; slot++) {
        held_set(&h->tickets[c->backend][slot], NULL, 0);
    }
}

/*
 * A blocking second-level session store on Redis, for servers without an event loop: GnuTLS
 * asks for a session from inside its handshake (gnutls_db_set_retrieve_function) and waits for
 * the answer, so the lookup must be synchronous. Entries are the fleet cache's (sealed, named
 * by a keyed hash, with a TTL), so the data in Redis looks the same whoever wrote it.
 *
 * Every call is bounded by the lookup timeout (connect, send, receive: SO_SNDTIMEO and
 * SO_RCVTIMEO through hiredis). A failure drops the connection; a new one is tried at most
 * once a second (monotonic clock), so a dead Redis costs one bounded attempt a second, not one
 * per handshake; the host name is resolved once, when the store is made, so no connect waits on
 * DNS. The store uses the first endpoint only (no sharding).
 *
 * Threat: a hung or dead Redis stalling handshakes (bounded waits, then misses), a forged or
 * foreign entry (sealed: it does not open), the password in logs (never logged).
 */
#include "fleet_int.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define RETRY_S 1
#define NAME_LEN 96

struct tlsr_fleet_store {
    const struct tlsr_fleet_secret *secret;
    struct endpoint ep;
    char prefix[48];
    char password[512];
    char username[128];
    bool has_password;
    struct timeval timeout;
    redisContext *c;
    char addr[64];        /* the host resolved once, so no connect waits on DNS */
    int64_t last_attempt; /* monotonic seconds */
    tlsr_log_fn log;
    void *log_arg;
    bool was_up;
};

static void drop(struct tlsr_fleet_store *fs)
{
    if (fs->c != NULL) {
        redisFree(fs->c);
        fs->c = NULL;
        if (fs->was_up) {
            tlsr__fleet_log(fs->log, fs->log_arg, TLSR_LOG_WARN,
                            "event=redis_down part=store "
                            "redis=%s",
                            fs->ep.text);
        }
        fs->was_up = false;
    }
}

/* A reply of the given type, or NULL (and the connection dropped). */
static redisReply *command(struct tlsr_fleet_store *fs, int type, int argc, const char **argv,
                           const size_t *lens)
{
    redisReply *r = redisCommandArgv(fs->c, argc, argv, lens);
    if (r == NULL) {
        drop(fs);
        return NULL;
    }
    if (r->type != type && !(type == REDIS_REPLY_STRING && r->type == REDIS_REPLY_NIL)) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Whether a connection is up now: connects (at most once a second) when it is not. */
static bool ensure(struct tlsr_fleet_store *fs)
{
    if (fs->c != NULL) {
        return true;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    if (fs->last_attempt != 0 && now - fs->last_attempt < RETRY_S) {
        return false;
    }
    fs->last_attempt = now;
    fs->c = fs->ep.path[0] != '\0' ? redisConnectUnixWithTimeout(fs->ep.path, fs->timeout)
                                   : redisConnectWithTimeout(fs->addr, fs->ep.port, fs->timeout);
    if (fs->c == NULL || fs->c->err != 0 || redisSetTimeout(fs->c, fs->timeout) != REDIS_OK) {
        drop(fs);
        return false;
    }
    char db[16];
    snprintf(db, sizeof(db), "%d", fs->ep.db);
    const char *auth[] = {"AUTH", fs->username, fs->password};
    size_t auth_lens[] = {4, strlen(fs->username), strlen(fs->password)};
    int auth_n = fs->username[0] != '\0' ? 3 : 2;
    if (auth_n == 2) {
        auth[1] = fs->password;
        auth_lens[1] = strlen(fs->password);
    }
    const char *sel[] = {"SELECT", db};
    size_t sel_lens[] = {6, strlen(db)};
    redisReply *r = NULL;
    if (fs->has_password) {
        r = command(fs, REDIS_REPLY_STATUS, auth_n, auth, auth_lens);
        if (r == NULL) {
            drop(fs);
            return false;
        }
        freeReplyObject(r);
    }
    r = command(fs, REDIS_REPLY_STATUS, 2, sel, sel_lens);
    if (r == NULL) {
        drop(fs);
        return false;
    }
    freeReplyObject(r);
    if (!fs->was_up) {
        tlsr__fleet_log(fs->log, fs->log_arg, TLSR_LOG_INFO, "event=redis_up part=store redis=%s",
                        fs->ep.text);
    }
    fs->was_up = true;
    return true;
}

tlsr_status tlsr_fleet_store_new(const struct tlsr_fleet_opts *o, struct tlsr_fleet_store **out)
{
    ENSURE(o != NULL && out != NULL && o->secret != NULL && o->n_endpoints >= 1 &&
               o->prefix != NULL && strlen(o->prefix) < 40,
           TLSR_E_INVALID, "fleet store: needs an endpoint, a fleet key and a prefix");
    *out = NULL;
    struct endpoint ep;
    TRY(tlsr__fleet_endpoint_parse(o->endpoints[0], &ep));
    ENSURE(ep.master[0] == '\0', TLSR_E_INVALID,
           "fleet store: %s: sentinel:// is not supported by the blocking store yet (the GnuTLS "
           "adapter); name the master with redis://",
           ep.text);
    ENSURE(!ep.is_cluster, TLSR_E_INVALID,
           "fleet store: %s: a Redis Cluster is not supported by the blocking store yet (the "
           "GnuTLS adapter); use a standalone Redis, or serve",
           ep.text);
    ENSURE(!ep.is_tls, TLSR_E_INVALID,
           "fleet store: %s: rediss:// (TLS) is not supported by the blocking store yet (the "
           "GnuTLS adapter); use redis:// on a private network, or serve",
           ep.text);
    struct tlsr_fleet_store *fs = tlsr__calloc(1, sizeof(*fs));
    ENSURE(fs != NULL, TLSR_E_NOMEM, "fleet store: out of memory");
    fs->secret = o->secret;
    fs->ep = ep;
    snprintf(fs->prefix, sizeof(fs->prefix), "%s", o->prefix);
    if (o->password != NULL && o->password[0] != '\0') {
        snprintf(fs->password, sizeof(fs->password), "%s", o->password);
        fs->has_password = true;
        if (o->username != NULL) {
            snprintf(fs->username, sizeof(fs->username), "%s", o->username);
        }
    }
    uint32_t ms = o->lookup_timeout_ms > 0 ? o->lookup_timeout_ms : 5;
    fs->timeout.tv_sec = (time_t)(ms / 1000);
    fs->timeout.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    fs->log = o->log;
    fs->log_arg = o->log_arg;
    if (ep.path[0] == '\0') {
        /* Resolve now, once: hiredis would resolve at every connect, without a timeout. */
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(ep.host, NULL, &hints, &res);
        if (rc != 0 || res == NULL ||
            getnameinfo(res->ai_addr, res->ai_addrlen, fs->addr, sizeof(fs->addr), NULL, 0,
                        NI_NUMERICHOST) != 0) {
            if (res != NULL) {
                freeaddrinfo(res);
            }
            tlsr__free(fs);
            return tlsr__err_set(TLSR_E_INVALID, "fleet store: cannot resolve %s: %s", ep.host,
                                 rc != 0 ? gai_strerror(rc) : "no address");
        }
        freeaddrinfo(res);
    }
    *out = fs;
    return TLSR_OK;
}

void tlsr_fleet_store_free(struct tlsr_fleet_store *fs)
{
    if (fs == NULL) {
        return;
    }
    if (fs->c != NULL) {
        redisFree(fs->c);
    }
    OPENSSL_cleanse(fs->password, sizeof(fs->password));
    tlsr__free(fs);
}

void tlsr_fleet_store_put(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key,
                          const uint8_t *value, size_t value_len, uint32_t lifetime_s)
{
    uint8_t aad[256];
    size_t aad_len =
        tlsr__fleet_entry_aad(key->ctx, key->ctx_len, key->id, key->id_len, 0, aad, sizeof(aad));
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    uint8_t blob[ENTRY_MAX_VALUE + 8 + SEAL_OVERHEAD];
    size_t blob_len = 0;
    if (aad_len == 0 || value_len > ENTRY_MAX_VALUE || lifetime_s == 0 || !ensure(fs) ||
        tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK ||
        tlsr__fleet_entry_seal(fs->secret, aad, aad_len, (uint64_t)time(NULL) + lifetime_s, value,
                               value_len, blob, sizeof(blob), &blob_len) != TLSR_OK) {
        return;
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)lifetime_s * 1000ull);
    const char *argv[] = {"SET", name, (const char *)blob, "PX", ttl};
    size_t lens[] = {3, strlen(name), blob_len, 2, strlen(ttl)};
    redisReply *r = command(fs, REDIS_REPLY_STATUS, 5, argv, lens);
    if (r != NULL) {
        freeReplyObject(r);
    }
}

tlsr_status tlsr_fleet_store_get(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key,
                                 uint8_t *out, size_t cap, size_t *out_len)
{
    uint8_t aad[256];
    size_t aad_len =
        tlsr__fleet_entry_aad(key->ctx, key->ctx_len, key->id, key->id_len, 0, aad, sizeof(aad));
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    if (aad_len == 0 || !ensure(fs) ||
        tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK) {
        return TLSR_E_NOTFOUND;
    }
    const char *argv[] = {"GET", name};
    size_t lens[] = {3, strlen(name)};
    redisReply *r = command(fs, REDIS_REPLY_STRING, 2, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r != NULL) {
            freeReplyObject(r);
        }
        return TLSR_E_NOTFOUND;
    }
    uint64_t expires = 0;
    tlsr_status rc =
        tlsr__fleet_entry_open(fs->secret, aad, aad_len, (const uint8_t *)r->str, r->len,
                               (uint64_t)time(NULL), out, cap, out_len, &expires);
    freeReplyObject(r);
    return rc == TLSR_OK ? TLSR_OK : TLSR_E_NOTFOUND;
}

void tlsr_fleet_store_del(struct tlsr_fleet_store *fs, const struct tlsr_cache_key *key)
{
    char name[NAME_LEN];
    uint8_t h[NAME_HASH_LEN];
    if (!ensure(fs) ||
        tlsr__fleet_entry_name(fs->secret, fs->prefix, key->ctx, key->ctx_len, key->id, key->id_len,
                               name, sizeof(name), h) != TLSR_OK) {
        return;
    }
    const char *argv[] = {"DEL", name};
    size_t lens[] = {3, strlen(name)};
    redisReply *r = command(fs, REDIS_REPLY_INTEGER, 2, argv, lens);
    if (r != NULL) {
        freeReplyObject(r);
    }
}

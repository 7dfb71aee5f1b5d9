/*
 * The fleet ticket key ring: every server's tlsr_keyring follows one sequence of keys kept in
 * Redis, and a key starts encrypting only once every live server holds it.
 *
 * The Redis schema and the scripts that change it: ring_schema.c.
 *
 * Each poll, one script records this member and returns the state and the sealed keys; the
 * server installs what it lacks, applies them where they go (the apply hook: `keys sync`
 * writes them to nginx or HAProxy), acknowledges the next key once applied, promotes locally the
 * key the fleet promoted, and then, if needed, either creates the next key (SET NX in a script:
 * exactly one server wins) or promotes it (a compare-and-set on P cur: exactly one server wins)
 * when its period is over or a rotation was asked and every live member acknowledged it, or when
 * the acknowledgement wait ran out (logged). A poll runs 9 commands plus 5 per live key, whatever
 * the number of members: the acknowledgements of all members are one SMISMEMBER (Redis 6.2 and
 * later; older servers get one SISMEMBER per member).
 *
 * An observer (tlsresume keys status, export, rotate, import) reads the same state without
 * registering: it neither counts as a member nor creates, promotes or acknowledges.
 *
 * When Redis has no encrypting key while a member followed the fleet (Redis restarted empty,
 * was flushed, failed over to an empty replica), that member writes the keys back
 * (ring_store.c) and the fleet goes on with the same sequence.
 *
 * Threat: ticket keys readable in Redis (sealed with the wrap key derived from the fleet key),
 * keys outliving their tickets (TTLs in Redis, schedule wipes in memory), a server that lacks
 * the encrypting key (promotion waits for every acknowledgement), Redis down (the current key
 * encrypts on, bounded by the ring's overdue limit; loud).
 */
#include "ring_int.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"
#include "../tickets/keyring_glue.h"

#define TICK_FIELDS 8
#define KEY_FIELDS 5
#define IMPORT_FIELDS 3

/* A number in a reply: a non-negative integer, or the decimal string the scripts return; false
 * for anything else (a negative PTTL such as "-1" for no TTL, a sign, spaces, overflow). */
static bool num_of(const redisReply *r, uint64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = (uint64_t)r->integer;
        return r->integer >= 0;
    }
    return r->type == REDIS_REPLY_STRING && tlsr_dec_u64(r->str, r->len, out) == TLSR_OK;
}

/* A number for display only (key status): 0 when the reply holds none. */
static uint64_t num(const redisReply *r)
{
    uint64_t v = 0;
    return num_of(r, &v) ? v : 0;
}

/* How long a key of the reply has left (its PTTL), or, when Redis gives none (no TTL, or not
 * a number), the longest a key of this ring can still be needed: its lifetime and the skew. */
static uint64_t left_ms_of(const struct tlsr_fleet_ring *fr, const redisReply *r)
{
    uint64_t v = 0;
    return num_of(r, &v) ? v : fr->lifetime_ms + fr->o.clock_skew_s * 1000ull;
}

static void on_simple(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)r;
    (void)priv;
}

static void on_promoted(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct tlsr_fleet_ring *fr = priv;
    redisReply *reply = r;
    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) {
        fr->st.promotions++;
        fr->want_rotate = false;
        if (fr->st.unacked > 0) {
            fr->st.promotions_early++;
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_WARN,
                            "event=key_promoted_unacked generation=%llu unacked=%llu wait_s=%u",
                            (unsigned long long)fr->st.generation + 1,
                            (unsigned long long)fr->st.unacked, fr->o.ack_wait_s);
        }
    }
}

static void promote_next(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    uint64_t skew_ms = fr->o.clock_skew_s * 1000ull;
    uint64_t old_ttl = fr->lifetime_ms + skew_ms;
    uint64_t new_ttl = fr->rotate_ms + fr->o.ack_wait_s * 1000ull + fr->lifetime_ms + skew_ms;
    char a[24];
    char b[24];
    char c[24];
    char d[24];
    snprintf(a, sizeof(a), "%llu", (unsigned long long)gen);
    snprintf(b, sizeof(b), "%llu", (unsigned long long)gen + 1);
    snprintf(c, sizeof(c), "%llu", (unsigned long long)old_ttl);
    snprintf(d, sizeof(d), "%llu", (unsigned long long)new_ttl);
    (void)tlsr__rconn_command(tlsr__ring_conn(fr), on_promoted, fr,
                              "EVAL %s 1 %s %s %s %s %s %s %s", tlsr__ring_promote_lua,
                              fr->route_key, fr->prefix, a, b, c, d, fr->clock_offset);
}

/* Says this server holds key gen. Sent every poll (SADD is idempotent), so an acknowledgement
 * lost with a connection, or with a Redis restart, is made again. */
static void acknowledge(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    char set[96];
    snprintf(set, sizeof(set), "%sack:%llu", fr->prefix, (unsigned long long)gen);
    uint64_t ttl = 2 * fr->rotate_ms + fr->o.ack_wait_s * 1000ull;
    struct rconn *conn = tlsr__ring_conn(fr);
    if (tlsr__rconn_command(conn, on_simple, NULL, "SADD %s %s", set, fr->member) == 0) {
        (void)tlsr__rconn_command(conn, on_simple, NULL, "PEXPIRE %s %llu", set,
                                  (unsigned long long)ttl);
    }
}

/* Installs key gen of the reply; true when the ring holds it afterwards. */
enum held { HELD, NOT_HELD, REJECTED };

/* Installs key gen of the reply into key; REJECTED when its blob does not open (the reason in
 * tlsr_last_error()), NOT_HELD when there is none or the ring refused it. */
static enum held install(struct tlsr_fleet_ring *fr, uint64_t gen, const redisReply *blob,
                         uint64_t left_ms, bool is_old, struct tlsr_ticket_key *key)
{
    if (blob->type != REDIS_REPLY_STRING || blob->len == 0) {
        return NOT_HELD;
    }
    if (tlsr__ring_open_key(fr->secret, gen, (const uint8_t *)blob->str, blob->len, key) !=
        TLSR_OK) {
        fr->st.rejected++;
        return REJECTED;
    }
    uint32_t retired_for = 0;
    if (is_old) {
        uint64_t s = left_ms / 1000 + 1;
        retired_for = (uint32_t)(s > UINT32_MAX ? UINT32_MAX : s);
    }
    if (tlsr_keyring_install(fr->ring, gen, key, retired_for) != TLSR_OK) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                        "event=key_install_failed generation=%llu error=\"%s\"",
                        (unsigned long long)gen, tlsr_last_error());
        return NOT_HELD;
    }
    return HELD;
}

/* Installs the imported keys (id, blob, pttl triples from element `at`). */
static void install_imports(struct tlsr_fleet_ring *fr, const redisReply *r, size_t at)
{
    fr->st.imported = 0;
    for (size_t i = at; i + IMPORT_FIELDS <= r->elements; i += IMPORT_FIELDS) {
        const redisReply *id = r->element[i];
        const redisReply *blob = r->element[i + 1];
        uint64_t left_ms = left_ms_of(fr, r->element[i + 2]);
        char ids[40];
        struct tlsr_key_material m;
        if (id->type != REDIS_REPLY_STRING || id->len == 0 || id->len >= sizeof(ids) ||
            blob->type != REDIS_REPLY_STRING ||
            fr->n_keys >= sizeof(fr->keys) / sizeof(fr->keys[0])) {
            continue;
        }
        memcpy(ids, id->str, id->len);
        ids[id->len] = '\0';
        if (tlsr__ring_open_import(fr->secret, ids, (const uint8_t *)blob->str, blob->len, &m) !=
            TLSR_OK) {
            fr->st.rejected++;
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                            "event=key_rejected import=%s error=\"%s\"", ids, tlsr_last_error());
            continue;
        }
        uint64_t s = left_ms / 1000 + 1;
        if (tlsr_keyring_import(fr->ring, &m, (uint32_t)(s > UINT32_MAX ? UINT32_MAX : s)) !=
            TLSR_OK) {
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                            "event=key_install_failed import=%s error=\"%s\"", ids,
                            tlsr_last_error());
        }
        struct tlsr_fleet_key_status *ks = &fr->keys[fr->n_keys++];
        memset(ks, 0, sizeof(*ks));
        memcpy(ks->name_prefix, m.bytes, sizeof(ks->name_prefix));
        ks->state = TLSR_KEY_DECRYPT_ONLY;
        ks->size = m.len;
        ks->expires_s = left_ms / 1000;
        fr->st.imported++;
        OPENSSL_cleanse(&m, sizeof(m));
    }
}

/* Records what the reply says of key gen, for tlsr_fleet_ring_keys(). */
static void describe(struct tlsr_fleet_ring *fr, uint64_t gen, uint64_t cur, uint64_t now,
                     redisReply *const *f, const struct tlsr_ticket_key *key, bool is_open)
{
    if (fr->n_keys >= sizeof(fr->keys) / sizeof(fr->keys[0])) {
        return;
    }
    struct tlsr_fleet_key_status *ks = &fr->keys[fr->n_keys++];
    memset(ks, 0, sizeof(*ks));
    ks->generation = gen;
    if (is_open) {
        memcpy(ks->name_prefix, key->name, sizeof(ks->name_prefix));
    }
    ks->state = gen > cur ? TLSR_KEY_NEXT : gen == cur ? TLSR_KEY_CURRENT : TLSR_KEY_DECRYPT_ONLY;
    ks->size = KEY_PLAIN_LEN;
    uint64_t pttl = num(f[1]);
    ks->expires_s = pttl / 1000;
    ks->acks = num(f[2]);
    const char *sp = f[3]->type == REDIS_REPLY_STRING ? memchr(f[3]->str, ' ', f[3]->len) : NULL;
    if (sp == NULL || tlsr_dec_u64(f[3]->str, (size_t)(sp - f[3]->str), &ks->issued) != TLSR_OK ||
        tlsr_dec_u64(sp + 1, f[3]->len - (size_t)(sp - f[3]->str) - 1, &ks->presented) != TLSR_OK) {
        ks->issued = 0; /* "issued presented", summed by the script: else nothing to show */
        ks->presented = 0;
    }
    uint64_t at = num(f[4]);
    ks->age_s = at > 0 && now > at ? (now - at) / 1000 : 0;
}

/* Reports this server's per-key counts, summed by `keys status`: a key's when they changed
 * since its last report, or when that report is half its TTL old (now: Redis's clock, ms). */
static void report_use(struct tlsr_fleet_ring *fr, uint64_t now)
{
    struct tlsr_key_info info[TLSR_KEYRING_MAX_KEYS];
    struct ring_use_report next[TLSR_KEYRING_MAX_KEYS];
    size_t n = 0;
    size_t m = 0;
    if (tlsr_keyring_list(fr->ring, info, TLSR_KEYRING_MAX_KEYS, &n) != TLSR_OK) {
        return;
    }
    uint64_t ttl = 2 * fr->rotate_ms + fr->lifetime_ms + fr->o.clock_skew_s * 1000ull;
    for (size_t i = 0; i < n; i++) {
        if (!info[i].is_fleet || info[i].generation == 0 ||
            (info[i].issued == 0 && info[i].presented == 0)) {
            continue;
        }
        const struct ring_use_report *last = NULL;
        for (size_t j = 0; j < fr->n_reported && last == NULL; j++) {
            if (fr->reported[j].gen == info[i].generation) {
                last = &fr->reported[j];
            }
        }
        if (last != NULL && last->issued == info[i].issued &&
            last->presented == info[i].presented && now >= last->at_ms &&
            now - last->at_ms < ttl / 2) {
            next[m++] = *last;
            continue;
        }
        char key[96];
        char use[48];
        snprintf(key, sizeof(key), "%suse:%llu", fr->prefix,
                 (unsigned long long)info[i].generation);
        snprintf(use, sizeof(use), "%llu %llu", (unsigned long long)info[i].issued,
                 (unsigned long long)info[i].presented);
        if (tlsr__rconn_command(tlsr__ring_conn(fr), on_simple, NULL, "HSET %s %s %s", key,
                                fr->member, use) == 0) {
            (void)tlsr__rconn_command(tlsr__ring_conn(fr), on_simple, NULL, "PEXPIRE %s %llu", key,
                                      (unsigned long long)ttl);
            next[m++] = (struct ring_use_report){info[i].generation, info[i].issued,
                                                 info[i].presented, now};
        }
    }
    memcpy(fr->reported, next, m * sizeof(next[0]));
    fr->n_reported = m;
}

/* The value of P force that asks the fleet to rotate away from generation gen: a keyed hash,
 * so that only holders of the fleet key can ask (anyone else who can write to Redis is
 * ignored), and one that goes stale with the generation it names. */
static bool force_value(const struct tlsr_fleet_ring *fr, uint64_t gen,
                        char out[2 * NAME_HASH_LEN + 1])
{
    char msg[64];
    int n =
        snprintf(msg, sizeof(msg), "tlsresume rotation request v1|%llu", (unsigned long long)gen);
    uint8_t h[NAME_HASH_LEN];
    if (n <= 0 || tlsr__fleet_name_hash(fr->secret->name_key, (const uint8_t *)msg, (size_t)n, h) !=
                      TLSR_OK) {
        return false;
    }
    tlsr__hex(h, NAME_HASH_LEN, out);
    return true;
}

static bool is_force_for(struct tlsr_fleet_ring *fr, uint64_t gen, const redisReply *v)
{
    char want[2 * NAME_HASH_LEN + 1];
    if (v->type != REDIS_REPLY_STRING || v->len == 0) {
        fr->was_bad_force = false;
        return false;
    }
    bool is_ok = v->len == 2 * NAME_HASH_LEN && force_value(fr, gen, want) &&
                 CRYPTO_memcmp(v->str, want, 2 * NAME_HASH_LEN) == 0;
    if (!is_ok && !fr->was_bad_force) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_WARN,
                        "event=rotation_request_ignored generation=%llu note=\"%sforce holds "
                        "no request made with the fleet key for this generation\"",
                        (unsigned long long)gen, fr->prefix);
    }
    fr->was_bad_force = !is_ok;
    return is_ok;
}

/* Asks the fleet to rotate away from generation gen (every member sees it on its next poll). */
static void ask_rotation(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    char force[96];
    char value[2 * NAME_HASH_LEN + 1];
    snprintf(force, sizeof(force), "%sforce", fr->prefix);
    if (force_value(fr, gen, value)) {
        (void)tlsr__rconn_command(tlsr__ring_conn(fr), on_simple, NULL, "SET %s %s PX 60000", force,
                                  value);
    }
}

/* Whether this server's ring can take one more key without wiping one whose tickets are
 * still valid: what a rotation on demand needs (the schedule's own are sized for). */
static bool has_room(struct tlsr_fleet_ring *fr)
{
    struct tlsr_keyring_stats ks;
    return tlsr_keyring_get_stats(fr->ring, &ks) == TLSR_OK && ks.rotation_room > 0;
}

/* A rotation on demand with no room: refused (once per generation), counted, logged. */
static void refuse_rotation(struct tlsr_fleet_ring *fr, uint64_t gen)
{
    fr->want_rotate = false;
    if (fr->refused_at == gen + 1) {
        return;
    }
    fr->refused_at = gen + 1;
    fr->st.rotations_refused++;
    tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_WARN,
                    "event=rotation_refused generation=%llu note=\"the key ring is full of keys "
                    "whose tickets are still valid: too many rotations on demand within one "
                    "ticket lifetime\"",
                    (unsigned long long)gen);
}

/* What a poll's reply says of the fleet (the tick script's first fields). */
struct tick {
    uint64_t now_ms;
    uint64_t gen;
    uint64_t promoted_at_ms;
    uint64_t next_at_ms;
    bool is_forced;
    size_t n_keys;
};

/* Reads the fields of the reply into t; false (counted, logged) when one is not a number. */
static bool read_tick(struct tlsr_fleet_ring *fr, const redisReply *r, struct tick *t)
{
    static const size_t numbers[] = {0, 1, 2, 3, 4, 5, 7}; /* element 6 is the force value */
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++) {
        uint64_t v = 0;
        if (!num_of(r->element[numbers[i]], &v)) {
            fr->st.polls_failed++;
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                            "event=ring_bad_reply field=%zu note=\"not a number: the poll is "
                            "ignored\"",
                            numbers[i]);
            return false;
        }
    }
    t->now_ms = num(r->element[0]);
    t->gen = num(r->element[1]);
    t->promoted_at_ms = num(r->element[2]);
    fr->st.members = num(r->element[3]);
    fr->st.unacked = num(r->element[4]);
    t->next_at_ms = num(r->element[5]);
    t->is_forced = is_force_for(fr, t->gen, r->element[6]);
    t->n_keys = (size_t)num(r->element[7]);
    if (t->n_keys > (r->elements - TICK_FIELDS) / KEY_FIELDS) {
        t->n_keys = (r->elements - TICK_FIELDS) / KEY_FIELDS;
    }
    if (t->n_keys > MAX_KEYS_READ) {
        t->n_keys = MAX_KEYS_READ; /* what the script was asked for, whatever Redis says */
    }
    return true;
}

/*
 * Says what the keys that did not open mean. When none of the fleet's keys opens, this server's
 * fleet key is another fleet's (the keys in Redis are sealed under a different one): said once,
 * in words, and the server then only observes (it neither counts as a member that never
 * acknowledges nor offers keys the fleet cannot open). Otherwise each rejected key is logged.
 */
static void note_rejections(struct tlsr_fleet_ring *fr, size_t n_blobs, size_t n_rejected)
{
    bool is_foreign = n_blobs > 0 && n_rejected == n_blobs;
    if (is_foreign && !fr->st.is_foreign_key) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                        "event=fleet_key_mismatch keys=%zu error=\"%s\" note=\"none of the "
                        "fleet's keys in Redis opens with this fleet key: this server's fleet key "
                        "file is not the one the fleet uses (give every server the same file)\"",
                        n_blobs, fr->rejected_why);
    } else if (!is_foreign && fr->st.is_foreign_key) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_INFO, "event=fleet_key_matches");
    } else if (!is_foreign && n_rejected > 0) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                        "event=key_rejected keys=%zu of=%zu error=\"%s\"", n_rejected, n_blobs,
                        fr->rejected_why);
    }
    fr->st.is_foreign_key = is_foreign;
}

/* Installs the keys of the reply, promotes locally the one the fleet promoted; true when the
 * ring holds the next key. */
static bool follow_keys(struct tlsr_fleet_ring *fr, const redisReply *r, const struct tick *t,
                        bool was_joined)
{
    fr->n_keys = 0;
    bool has_next = false;
    size_t n_blobs = 0;
    size_t n_rejected = 0;
    struct tlsr_ticket_key key;
    for (size_t i = 0; i < t->n_keys; i++) {
        uint64_t g = t->gen + 1 - i;
        redisReply *const *f = &r->element[TICK_FIELDS + KEY_FIELDS * i];
        /* An older key is installed (if missing: a server that joins, or comes back after
         * missing rotations) only for the time Redis keeps it, which is when the fleet retires
         * it: a wiped key never comes back for longer than that. */
        bool is_old = g < t->gen;
        enum held h = install(fr, g, f[0], left_ms_of(fr, f[1]), is_old, &key);
        bool has_blob = f[0]->type == REDIS_REPLY_STRING && f[0]->len > 0;
        n_blobs += has_blob;
        n_rejected += h == REJECTED;
        if (h == REJECTED && n_rejected == 1) {
            snprintf(fr->rejected_why, sizeof(fr->rejected_why), "generation %llu: %s",
                     (unsigned long long)g, tlsr_last_error());
        }
        if (has_blob) {
            describe(fr, g, t->gen, t->now_ms, f, &key, h == HELD);
        }
        if (h != HELD) {
            continue;
        }
        if (i == 0) {
            has_next = true;
        } else if (g == t->gen && CRYPTO_memcmp(fr->promoted, key.name, sizeof(key.name)) != 0 &&
                   tlsr_keyring_promote(fr->ring, key.name) == TLSR_OK) {
            memcpy(fr->promoted, key.name, sizeof(key.name));
            fr->st.is_joined = true;
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_INFO,
                            "event=%s generation=%llu key=%02x%02x%02x%02x",
                            was_joined ? "key_encrypting" : "joined_fleet_ring",
                            (unsigned long long)t->gen, key.name[0], key.name[1], key.name[2],
                            key.name[3]);
        }
    }
    OPENSSL_cleanse(&key, sizeof(key));
    note_rejections(fr, n_blobs, n_rejected);
    return has_next;
}

/* A member's part once it follows the fleet: the next key made, acknowledged, promoted when
 * due and acknowledged by every live member (or the wait ran out), a rotation asked. */
static void advance(struct tlsr_fleet_ring *fr, const struct tick *t, bool has_next)
{
    if (!has_next) {
        tlsr__ring_create_next(fr, t->gen + 1);
        return;
    }
    /* Acknowledged only once whatever the apply hook feeds holds the key too. */
    if (fr->o.apply == NULL || fr->o.apply(fr->o.apply_arg, fr->ring) == TLSR_OK) {
        acknowledge(fr, t->gen + 1);
    }
    bool is_scheduled = t->gen == 0 || t->now_ms >= t->promoted_at_ms + fr->rotate_ms;
    bool is_due = is_scheduled || t->is_forced || fr->want_rotate;
    bool is_acked = fr->st.unacked == 0 ||
                    (t->next_at_ms > 0 && t->now_ms >= t->next_at_ms + fr->o.ack_wait_s * 1000ull);
    if (is_due && !is_scheduled && !has_room(fr)) {
        refuse_rotation(fr, t->gen);
    } else if (is_due && is_acked) {
        promote_next(fr, t->gen);
    } else if (fr->want_rotate && !t->is_forced) {
        ask_rotation(fr, t->gen);
    }
}

static void follow(struct tlsr_fleet_ring *fr, const redisReply *r)
{
    struct tick t;
    if (!read_tick(fr, r, &t)) {
        return;
    }
    fr->st.is_rotation_asked = t.is_forced;
    fr->st.polls++;
    uint64_t known_gen = fr->st.generation; /* the fleet's generation at the last poll */
    bool was_joined = fr->st.is_joined;
    bool has_next = follow_keys(fr, r, &t, was_joined);
    if (!fr->st.is_foreign_key) {
        install_imports(fr, r, TICK_FIELDS + KEY_FIELDS * t.n_keys);
    }
    fr->st.generation = t.gen;
    if (fr->want_rotate && fr->rotate_asked_at == ROTATE_AT_FIRST_POLL) {
        fr->rotate_asked_at = t.gen;
    }
    if (fr->want_rotate && t.gen > fr->rotate_asked_at) {
        fr->want_rotate = false; /* another member made the rotation asked of this one */
    }
    if (fr->o.is_observer || fr->st.is_foreign_key) {
        if (fr->want_rotate && !fr->st.is_foreign_key) {
            fr->want_rotate = false;
            ask_rotation(fr, t.gen);
        }
        return;
    }
    report_use(fr, t.now_ms);
    if (t.gen == 0 && was_joined && known_gen > 0) {
        /* Redis forgot the ring (restarted empty, flushed, failed over): this server holds the
         * fleet's keys; it writes them back rather than start a new sequence. */
        tlsr__ring_republish(fr, known_gen);
        fr->st.generation = known_gen;
        return;
    }
    advance(fr, &t, has_next);
}

static void check_overdue(struct tlsr_fleet_ring *fr)
{
    struct tlsr_keyring_stats ks;
    if (tlsr_keyring_get_stats(fr->ring, &ks) != TLSR_OK) {
        return;
    }
    /* Servers see a promotion up to one poll late: only a real stall is worth a warning. */
    uint64_t grace_s = 3ull * fr->o.poll_ms / 1000 + 5;
    bool is_overdue = ks.current_overdue_s > grace_s;
    if (is_overdue && !fr->was_overdue) {
        tlsr__fleet_log(
            fr->log, fr->log_arg, TLSR_LOG_WARN,
            "event=key_overdue generation=%llu overdue_s=%llu note=\"the fleet cannot rotate; "
            "the current key keeps encrypting\"",
            (unsigned long long)ks.current_generation, (unsigned long long)ks.current_overdue_s);
    } else if (!is_overdue && fr->was_overdue) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_INFO, "event=key_rotation_resumed");
    }
    fr->was_overdue = is_overdue;
}

static void on_tick(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    struct tlsr_fleet_ring *fr = priv;
    redisReply *reply = r;
    fr->is_busy = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < TICK_FIELDS) {
        fr->st.polls_failed++;
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_ERROR,
                            "event=poll_failed error=\"%.200s\"", reply->str);
        }
        fr->st.is_redis_up = false;
        if (fr->o.polled != NULL) {
            fr->o.polled(fr->o.polled_arg, false);
        }
        return;
    }
    fr->st.is_redis_up = true;
    follow(fr, reply);
    if (fr->o.polled != NULL) {
        fr->o.polled(fr->o.polled_arg, true);
    }
}

void tlsr__fleet_ring_reply(struct tlsr_fleet_ring *fr, void *reply)
{
    on_tick(NULL, reply, fr);
}

/* Until it has joined, a member polls every JOIN_POLL_S for at most JOIN_FAST_POLLS polls
 * (5 s): a new fleet's first key is made, acknowledged and promoted in three polls, and a
 * server should hold the fleet's keys before it serves (tlsresume serve waits for this) rather
 * than issue tickets under keys of its own. After that (joined, or a ring that cannot join: a
 * wrong fleet key, a promotion waiting for a silent member) it polls every poll_ms. */
#define JOIN_POLL_S 0.05
#define JOIN_FAST_POLLS 100u

static void set_poll_rate(struct tlsr_fleet_ring *fr)
{
    bool is_fast = !fr->st.is_joined && fr->fast_polls_left > 0;
    if (is_fast) {
        fr->fast_polls_left--;
    }
    double repeat = is_fast ? JOIN_POLL_S : fr->o.poll_ms / 1000.0;
    if (fr->poll.repeat != repeat) {
        fr->poll.repeat = repeat;
        ev_timer_again(fr->loop, &fr->poll);
    }
}

static void on_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct tlsr_fleet_ring *fr = t->data;
    set_poll_rate(fr);
    check_overdue(fr);
    struct rconn *conn = tlsr__ring_conn(fr);
    if (conn == NULL || conn->state != RCONN_UP) {
        fr->st.is_redis_up = false;
        return;
    }
    if (fr->is_busy) {
        return;
    }
    char dead[24];
    char max[8];
    snprintf(dead, sizeof(dead), "%llu", (unsigned long long)fr->o.poll_ms * 3ull + 2000ull);
    snprintf(max, sizeof(max), "%u", MAX_KEYS_READ);
    if (tlsr__rconn_command(tlsr__ring_conn(fr), on_tick, fr, "EVAL %s 1 %s %s %s %s %s %s %s",
                            tlsr__ring_tick_lua, fr->route_key, fr->prefix, fr->member, dead, max,
                            fr->o.is_observer || fr->st.is_foreign_key ? "1" : "0",
                            fr->clock_offset) == 0) {
        fr->is_busy = true;
    } else {
        fr->st.polls_failed++;
    }
}

void tlsr_fleet_ring_opts_init(struct tlsr_fleet_ring_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->poll_ms = 1000;
    opts->ack_wait_s = 30;
    opts->clock_skew_s = 30;
}

static tlsr_status make_member(struct tlsr_fleet_ring *fr, const char *given)
{
    if (given != NULL) {
        ENSURE(given[0] != '\0' && strlen(given) < 64 && strpbrk(given, " \t\r\n") == NULL,
               TLSR_E_INVALID, "fleet: member name must be 1 to 63 bytes without spaces");
        snprintf(fr->member, sizeof(fr->member), "%s", given);
        return TLSR_OK;
    }
    char host[64] = "host";
    (void)gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    uint8_t rnd[4];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "fleet: no randomness");
    }
    snprintf(fr->member, sizeof(fr->member), "%s-%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2],
             rnd[3]);
    return TLSR_OK;
}

tlsr_status tlsr_fleet_ring_new(struct ev_loop *loop, const struct tlsr_fleet_opts *o,
                                const struct tlsr_fleet_ring_opts *ro, struct tlsr_keyring *ring,
                                struct tlsr_fleet_ring **out)
{
    ENSURE(loop != NULL && o != NULL && ro != NULL && ring != NULL && out != NULL, TLSR_E_INVALID,
           "fleet: NULL argument");
    *out = NULL;
    ENSURE(o->secret != NULL, TLSR_E_INVALID, "fleet: a fleet key is required");
    ENSURE(o->n_endpoints >= 1 && o->n_endpoints <= TLSR_FLEET_MAX_ENDPOINTS, TLSR_E_INVALID,
           "fleet: 1 to %d Redis endpoints", TLSR_FLEET_MAX_ENDPOINTS);
    ENSURE(o->prefix != NULL && strlen(o->prefix) < 40, TLSR_E_INVALID,
           "fleet: the key prefix is limited to 39 bytes");
    ENSURE(ro->poll_ms >= 100 && ro->poll_ms <= 60000, TLSR_E_INVALID,
           "fleet: poll interval %u ms is outside 100 ms to 60 s", ro->poll_ms);
    ENSURE(ro->ack_wait_s >= 1 && ro->ack_wait_s <= 3600, TLSR_E_INVALID,
           "fleet: acknowledgement wait %u s is outside 1 s to 1 h", ro->ack_wait_s);
    /* The ring is driven by the endpoint every server picks the same way: the first listed (on
     * a Cluster, the master of the ring's slot). */
    struct endpoint ep;
    TRY(tlsr__fleet_endpoint_parse(o->endpoints[0], &ep));
    struct tlsr_fleet_ring *fr = tlsr__calloc(1, sizeof(*fr));
    ENSURE(fr != NULL, TLSR_E_NOMEM, "fleet: out of memory");
    tlsr_status rc = make_member(fr, ro->member);
    if (rc == TLSR_OK) {
        /* Redis unreachable: the current key encrypts on for up to a ticket lifetime. */
        uint32_t life = tlsr__keyring_lifetime_s(ring);
        uint32_t rotate = tlsr__keyring_rotate_s(ring);
        rc = tlsr_keyring_set_fleet_timing(ring, ro->clock_skew_s, life > rotate ? life : rotate);
    }
    if (rc != TLSR_OK) {
        tlsr__free(fr);
        return rc;
    }
    fr->loop = loop;
    fr->secret = o->secret;
    fr->ring = ring;
    fr->o = *ro;
    fr->o.member = NULL;
    /* On a Cluster every key of the ring shares one slot: the prefix is a hash tag. */
    snprintf(fr->prefix, sizeof(fr->prefix), ep.is_cluster ? "{%s}" : "%s", o->prefix);
    snprintf(fr->route_key, sizeof(fr->route_key), "%scur", fr->prefix);
    fr->rotate_ms = tlsr__keyring_rotate_s(ring) * 1000ull;
    fr->lifetime_ms = tlsr__keyring_lifetime_s(ring) * 1000ull;
    fr->log = o->log;
    fr->log_arg = o->log_arg;
    snprintf(fr->clock_offset, sizeof(fr->clock_offset), "0");
    if (tlsr__fleet_tls_for(o, &fr->tls) != TLSR_OK) {
        tlsr__free(fr);
        return TLSR_E_INVALID; /* the message names the file */
    }
    struct rconn_auth auth = {o->username, o->password, fr->tls, o->tls.server_name};
    if (ep.is_cluster) {
        fr->cl = tlsr__calloc(1, sizeof(*fr->cl));
        if (fr->cl == NULL) {
            SSL_CTX_free(fr->tls);
            tlsr__free(fr);
            return TLSR_E_NOMEM;
        }
        tlsr__rcluster_start(fr->cl, loop, &ep, &auth, "ring", o->log, o->log_arg);
    } else {
        tlsr__rconn_start(&fr->conn, loop, &ep, &auth, "ring", o->log, o->log_arg);
    }
    fr->fast_polls_left = ro->is_observer ? 0 : JOIN_FAST_POLLS;
    ev_timer_init(&fr->poll, on_poll, JOIN_POLL_S,
                  ro->is_observer ? ro->poll_ms / 1000.0 : JOIN_POLL_S);
    fr->poll.data = fr;
    ev_timer_start(loop, &fr->poll);
    if (ro->is_observer) {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_DEBUG, "event=ring_observe redis=%s",
                        ep.text);
    } else {
        tlsr__fleet_log(fr->log, fr->log_arg, TLSR_LOG_INFO, "event=ring_start member=%s redis=%s",
                        fr->member, ep.text);
    }
    *out = fr;
    return TLSR_OK;
}

void tlsr_fleet_ring_free(struct tlsr_fleet_ring *fr)
{
    if (fr == NULL) {
        return;
    }
    ev_timer_stop(fr->loop, &fr->poll);
    if (fr->cl != NULL) {
        tlsr__rcluster_stop(fr->cl);
        tlsr__free(fr->cl);
    } else {
        tlsr__rconn_stop(&fr->conn);
    }
    SSL_CTX_free(fr->tls);
    tlsr__free(fr);
}

void tlsr__fleet_ring_set_clock_offset(struct tlsr_fleet_ring *fr, int64_t offset_ms)
{
    snprintf(fr->clock_offset, sizeof(fr->clock_offset), "%lld", (long long)offset_ms);
}

void tlsr_fleet_ring_rotate(struct tlsr_fleet_ring *fr)
{
    fr->want_rotate = true;
    /* Before the first poll the fleet's generation is not known yet: the first poll's is the
     * one to rotate away from (not 0, which every generation is past). */
    fr->rotate_asked_at = fr->st.polls > 0 ? fr->st.generation : ROTATE_AT_FIRST_POLL;
}

void tlsr_fleet_ring_get_stats(const struct tlsr_fleet_ring *fr, struct tlsr_fleet_ring_stats *out)
{
    *out = fr->st;
    out->redis_downs = fr->cl == NULL ? fr->conn.downs : 0;
}

void tlsr_fleet_ring_keys(const struct tlsr_fleet_ring *fr,
                          const struct tlsr_fleet_key_status **out, size_t *n)
{
    *out = fr->keys;
    *n = fr->n_keys;
}

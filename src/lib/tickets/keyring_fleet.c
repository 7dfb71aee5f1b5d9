/*
 * Fleet control of the key ring: keys made by one server of a fleet are installed on every
 * other as decrypt-only, then promoted when the fleet says so (tlsresume/tickets.h).
 *
 * A fleet key is marked is_fleet. Until promoted its enc_from is KR_PENDING, which the local
 * schedule ignores (it is neither current nor next), so a ring that has not joined a fleet yet
 * keeps its own chain and merely decrypts the fleet's tickets. Promotion sets the windows from
 * the local clock: the fleet decides when, each host decides nothing. While is_external is set
 * the local schedule makes no keys; tlsr__keyring_maintain() clears it when the promoted key runs
 * past its overdue bound, and the ring falls back to local keys.
 *
 * Threat: a fleet key outliving its tickets (every key has a dec_until, pending ones too) and
 * a stalled fleet freezing one key forever (the overdue bound).
 */
#include "keyring_int.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../err/tlsr_err.h"

static struct kr_key *find_name(struct kr_shared *sh, const uint8_t name[TLSR_TICKET_NAME_LEN])
{
    struct kr_key *found = NULL;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state == KEY_LIVE && CRYPTO_memcmp(k->k.name, name, TLSR_TICKET_NAME_LEN) == 0) {
            found = k;
        }
    }
    return found;
}

tlsr_status tlsr_keyring_set_fleet_timing(struct tlsr_keyring *ring, uint32_t skew_s,
                                          uint32_t overdue_s)
{
    ENSURE(ring != NULL, TLSR_E_INVALID, "ticket keys: ring is NULL");
    ENSURE(skew_s <= 3600, TLSR_E_INVALID, "ticket keys: clock skew %u s is over 1 h", skew_s);
    ENSURE(overdue_s >= ring->sh->rotate_s && overdue_s <= TLSR_TICKET_MAX_LIFETIME_S,
           TLSR_E_INVALID, "ticket keys: overdue bound %u s is outside %u s to 7 days", overdue_s,
           ring->sh->rotate_s);
    ring->sh->skew_s = skew_s;
    ring->sh->overdue_s = overdue_s;
    return TLSR_OK;
}

/* Adds a key made elsewhere (is_48: an imported AES-128 key) unless its name is held. */
/* Adds a key (nothing when its name is held already). An import (generation 0) is refused when
 * TLSR_KEYRING_MAX_IMPORTS are held: counted under the same lock as the add, so that imports
 * made at once by several processes cannot pass the limit together. */
static tlsr_status add_key(struct tlsr_keyring *ring, uint64_t generation,
                           const struct tlsr_ticket_key *key, bool is_48, uint32_t retired_for_s)
{
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    tlsr_status rc = TLSR_OK;
    if (find_name(sh, key->name) != NULL) {
        goto out;
    }
    if (generation == 0 && tlsr__keyring_imports_held(sh) >= TLSR_KEYRING_MAX_IMPORTS) {
        rc = tlsr__err_set(TLSR_E_TOOBIG, "ticket keys: %u imported keys held already",
                           TLSR_KEYRING_MAX_IMPORTS);
        goto out;
    }
    struct kr_key *k = tlsr__keyring_free_slot(sh, now);
    if (k == NULL) {
        rc = tlsr__err_set(TLSR_E_TOOBIG, "ticket keys: ring full");
        goto out;
    }
    k->k = *key;
    k->generation = generation;
    k->is_fleet = 1;
    k->is_48 = is_48;
    if (retired_for_s == 0) {
        k->enc_from = KR_PENDING;
        k->enc_until = KR_PENDING;
        k->dec_until = now + 2u * (uint64_t)sh->rotate_s + sh->lifetime_s + sh->skew_s;
    } else {
        /* Already retired by the fleet: decrypt-only for what is left of its tickets' life. */
        uint64_t left = sh->lifetime_s + sh->skew_s;
        k->enc_from = 0;
        k->enc_until = 0;
        k->dec_until = now + (retired_for_s < left ? retired_for_s : left);
    }
    __atomic_store_n(&k->state, KEY_LIVE, __ATOMIC_RELEASE);
out:
    tlsr__keyring_unlock(ring);
    return rc;
}

tlsr_status tlsr_keyring_install(struct tlsr_keyring *ring, uint64_t generation,
                                 const struct tlsr_ticket_key *key, uint32_t retired_for_s)
{
    ENSURE(ring != NULL && key != NULL, TLSR_E_INVALID, "ticket keys: install: NULL argument");
    return add_key(ring, generation, key, false, retired_for_s);
}

tlsr_status tlsr_keyring_promote(struct tlsr_keyring *ring,
                                 const uint8_t name[TLSR_TICKET_NAME_LEN])
{
    ENSURE(ring != NULL && name != NULL, TLSR_E_INVALID, "ticket keys: promote: NULL argument");
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    tlsr_status rc = TLSR_OK;
    struct kr_key *k = find_name(sh, name);
    if (k == NULL) {
        rc = tlsr__err_set(TLSR_E_NOTFOUND, "ticket keys: promote: no such key");
        goto out;
    }
    struct kr_key *cur = tlsr__keyring_current(sh, now);
    if (cur == k) {
        goto out;
    }
    uint64_t retire_at = now + sh->lifetime_s + sh->skew_s;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *o = &sh->keys[i];
        if (o->state != KEY_LIVE || o == k) {
            continue;
        }
        if (!o->is_fleet && o->enc_from > now) {
            tlsr__keyring_wipe(sh, o); /* a local next key that never encrypted */
        } else if (o->enc_from <= now && o->enc_until > now) {
            o->enc_until = now;
            o->dec_until = retire_at;
        }
    }
    k->enc_from = now;
    k->enc_until = now + sh->rotate_s + sh->overdue_s;
    k->dec_until = k->enc_until + sh->lifetime_s + sh->skew_s;
    sh->is_external = 1;
    if (sh->current_generation != k->generation) {
        __atomic_add_fetch(&sh->counters[KR_ROTATIONS], 1, __ATOMIC_RELAXED);
        sh->current_generation = k->generation;
    }
out:
    tlsr__keyring_unlock(ring);
    return rc;
}

bool tlsr_keyring_has_key(struct tlsr_keyring *ring, const uint8_t name[TLSR_TICKET_NAME_LEN])
{
    if (ring == NULL || name == NULL || tlsr__keyring_lock(ring) != TLSR_OK) {
        return false;
    }
    bool has = find_name(ring->sh, name) != NULL;
    tlsr__keyring_unlock(ring);
    return has;
}

static void describe(const struct kr_shared *sh, const struct kr_key *k, uint64_t now,
                     struct tlsr_key_info *out)
{
    memset(out, 0, sizeof(*out));
    out->generation = k->generation;
    memcpy(out->name_prefix, k->k.name, sizeof(out->name_prefix));
    out->is_fleet = k->is_fleet != 0;
    if (k->enc_from == KR_PENDING || k->enc_from > now) {
        out->state = TLSR_KEY_NEXT;
    } else {
        out->state = now < k->enc_until ? TLSR_KEY_CURRENT : TLSR_KEY_DECRYPT_ONLY;
        out->age_s = k->enc_from > 0 ? now - k->enc_from : 0;
    }
    out->expires_s = k->dec_until > now ? k->dec_until - now : 0;
    out->issued = __atomic_load_n(&k->issued, __ATOMIC_RELAXED);
    out->presented = __atomic_load_n(&k->presented, __ATOMIC_RELAXED);
    (void)sh;
}

static int by_age(const void *a, const void *b)
{
    const struct kr_key *x = *(const struct kr_key *const *)a;
    const struct kr_key *y = *(const struct kr_key *const *)b;
    if (x->enc_from != y->enc_from) {
        return x->enc_from < y->enc_from ? -1 : 1;
    }
    return x->generation < y->generation ? -1 : x->generation > y->generation;
}

tlsr_status tlsr_keyring_list(struct tlsr_keyring *ring, struct tlsr_key_info *out, size_t cap,
                              size_t *n)
{
    ENSURE(ring != NULL && n != NULL && (out != NULL || cap == 0), TLSR_E_INVALID,
           "ticket keys: list: NULL argument");
    *n = 0;
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    (void)tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    /* Oldest first: by when each started encrypting; next keys last. */
    struct kr_key *live[TLSR_KEYRING_MAX_KEYS];
    size_t n_live = 0;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        if (sh->keys[i].state == KEY_LIVE) {
            live[n_live++] = &sh->keys[i];
        }
    }
    qsort(live, n_live, sizeof(live[0]), by_age);
    for (size_t i = 0; i < n_live && i < cap; i++) {
        describe(sh, live[i], now, &out[i]);
        (*n)++;
    }
    tlsr__keyring_unlock(ring);
    return TLSR_OK;
}

tlsr_status tlsr_keyring_import(struct tlsr_keyring *ring, const struct tlsr_key_material *key,
                                uint32_t retired_for_s)
{
    ENSURE(ring != NULL && key != NULL && (key->len == 48 || key->len == 80) && retired_for_s > 0,
           TLSR_E_INVALID, "ticket keys: import: a 48- or 80-byte key and a retirement time");
    size_t half = (key->len - TLSR_TICKET_NAME_LEN) / 2u;
    struct tlsr_ticket_key k;
    memset(&k, 0, sizeof(k));
    memcpy(k.name, key->bytes, TLSR_TICKET_NAME_LEN);
    memcpy(k.aes_key, key->bytes + TLSR_TICKET_NAME_LEN, half);
    memcpy(k.hmac_key, key->bytes + TLSR_TICKET_NAME_LEN + half, half);
    /* Generation 0: not in the fleet's sequence; always decrypt-only. At most
     * TLSR_KEYRING_MAX_IMPORTS at once (add_key), so imports never push the ring's own keys
     * out. */
    tlsr_status rc = add_key(ring, 0, &k, key->len == 48, retired_for_s);
    OPENSSL_cleanse(&k, sizeof(k));
    return rc;
}

static void to_material(const struct kr_key *k, struct tlsr_key_material *out)
{
    size_t half = k->is_48 ? 16 : TLSR_TICKET_AES_LEN;
    memset(out, 0, sizeof(*out));
    out->len = (uint8_t)(TLSR_TICKET_NAME_LEN + 2 * half);
    memcpy(out->bytes, k->k.name, TLSR_TICKET_NAME_LEN);
    memcpy(out->bytes + TLSR_TICKET_NAME_LEN, k->k.aes_key, half);
    memcpy(out->bytes + TLSR_TICKET_NAME_LEN + half, k->k.hmac_key, half);
}

/* Decrypt-only keys newest first: imported ones (generation 0) last; then by when they stopped
 * encrypting, then by generation (a fleet key installed already retired has no end time). */
static int by_retirement(const void *a, const void *b)
{
    const struct kr_key *x = *(const struct kr_key *const *)a;
    const struct kr_key *y = *(const struct kr_key *const *)b;
    bool x_imported = x->is_fleet && x->generation == 0;
    bool y_imported = y->is_fleet && y->generation == 0;
    if (x_imported != y_imported) {
        return x_imported ? 1 : -1;
    }
    if (x->enc_until != y->enc_until) {
        return x->enc_until > y->enc_until ? -1 : 1;
    }
    if (x->generation != y->generation) {
        return x->generation > y->generation ? -1 : 1;
    }
    return x->dec_until > y->dec_until ? -1 : x->dec_until < y->dec_until;
}

tlsr_status tlsr_keyring_export(struct tlsr_keyring *ring, bool fleet_only,
                                struct tlsr_key_material *out, size_t cap, size_t *n,
                                bool *has_next)
{
    ENSURE(ring != NULL && out != NULL && n != NULL && has_next != NULL && cap >= 2, TLSR_E_INVALID,
           "ticket keys: export: NULL argument or fewer than 2 entries");
    *n = 0;
    *has_next = false;
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    (void)tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    tlsr_status rc = TLSR_OK;
    struct kr_key *cur = tlsr__keyring_current(sh, now);
    if (cur == NULL || (fleet_only && !cur->is_fleet)) {
        rc = tlsr__err_set(TLSR_E_NOTFOUND, "ticket keys: no %skey encrypts yet",
                           fleet_only ? "fleet " : "");
        goto out;
    }
    struct kr_key *next = NULL;
    struct kr_key *old[TLSR_KEYRING_MAX_KEYS];
    size_t n_old = 0;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state != KEY_LIVE || k == cur || (fleet_only && !k->is_fleet)) {
            continue;
        }
        bool is_next = k->enc_from == KR_PENDING || k->enc_from > now;
        if (is_next && k->generation == cur->generation + 1) {
            /* The key that will be promoted next. Not simply the newest: after Redis forgot
             * the fleet's keys the generations start again at 1, and a next key of the old
             * sequence, never to be promoted, has a higher generation. */
            next = k;
        } else if (!is_next) {
            old[n_old++] = k;
        }
    }
    qsort(old, n_old, sizeof(old[0]), by_retirement);
    to_material(cur, &out[(*n)++]);
    if (next != NULL) {
        to_material(next, &out[(*n)++]);
        *has_next = true;
    }
    for (size_t i = 0; i < n_old && *n < cap; i++) {
        to_material(old[i], &out[(*n)++]);
    }
out:
    tlsr__keyring_unlock(ring);
    return rc;
}

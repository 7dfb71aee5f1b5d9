/*
 * Ticket key ring: the shared array of keys and the rotation schedule (described in
 * tlsresume/tickets.h).
 *
 * Layout: one MAP_SHARED mapping of a memory file (secret memory where the kernel offers it,
 * else mlock'ed and MADV_DONTDUMP), holding struct kr_shared and `capacity` 144-byte key slots.
 * A process that receives the file's descriptor across exec adopts the ring, keys and all. A key's
 * role is derived from its times, never stored: current = the live key with enc_from <= now <
 * enc_until; next = a live key whose enc_from is later; the rest are decrypt-only until dec_until.
 * There is no pointer to corrupt, so after a process dies holding the lock the next taker only
 * wipes half-written (KEY_FREE) slots and re-applies the schedule.
 *
 * Windows chain: a new next key starts encrypting when the current one stops. If the chain
 * lapses (no ticket operation for over a period), a new chain starts at the period of now,
 * aligned on the epoch. A key's dec_until is enc_until + lifetime_s: after that no ticket it
 * sealed can be valid, so it is wiped.
 *
 * Threat: ticket keys reaching disk (they live only here and in OpenSSL's per-call cipher
 * contexts, which OpenSSL wipes), keys outliving their tickets (wiped on schedule; early if
 * the ring is full, counted), and a broken key source (the current key keeps encrypting and
 * the failure is counted).
 */
#include "keyring_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define NO_GENERATION UINT64_MAX
#define FORCED_ROTATION_ROOM 8u

static tlsr_status default_make_key(void *arg, uint64_t generation, struct tlsr_ticket_key *out)
{
    (void)arg;
    (void)generation;
    if (RAND_bytes((unsigned char *)out, (int)sizeof(*out)) != 1) {
        return tlsr__err_ssl(TLSR_E_CRYPTO, "ticket keys: RAND_bytes failed");
    }
    return TLSR_OK;
}

static void count(struct kr_shared *sh, enum kr_counter which)
{
    __atomic_add_fetch(&sh->counters[which], 1, __ATOMIC_RELAXED);
}

void tlsr__keyring_count(struct tlsr_keyring *ring, enum tlsr__keyring_counter which)
{
    count(ring->sh, (enum kr_counter)which);
}

void tlsr__keyring_wipe(struct kr_shared *sh, struct kr_key *k)
{
    OPENSSL_cleanse(k, sizeof(*k));
    count(sh, KR_WIPED);
}

struct kr_key *tlsr__keyring_current(struct kr_shared *sh, uint64_t now)
{
    struct kr_key *best = NULL;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state == KEY_LIVE && k->enc_from <= now && now < k->enc_until &&
            (best == NULL || k->enc_from > best->enc_from)) {
            best = k;
        }
    }
    return best;
}

/* The live key that starts encrypting after `after`, earliest first, or NULL. */
static struct kr_key *find_next(struct kr_shared *sh, uint64_t after)
{
    struct kr_key *best = NULL;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state == KEY_LIVE && k->enc_from >= after && k->enc_from != KR_PENDING &&
            (best == NULL || k->enc_from < best->enc_from)) {
            best = k;
        }
    }
    return best;
}

/* A free slot, or NULL. A live key is never wiped to make room: its tickets are still valid
 * (tlsr__keyring_maintain wipes keys once they are not), so a ring that is full refuses. */
struct kr_key *tlsr__keyring_free_slot(struct kr_shared *sh, uint64_t now)
{
    (void)now;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        if (sh->keys[i].state == KEY_FREE) {
            return &sh->keys[i];
        }
    }
    return NULL;
}

uint32_t tlsr__keyring_imports_held(const struct kr_shared *sh)
{
    uint32_t held = 0;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        const struct kr_key *k = &sh->keys[i];
        held += k->state == KEY_LIVE && k->is_fleet && k->generation == 0;
    }
    return held;
}

uint32_t tlsr__keyring_room(const struct kr_shared *sh)
{
    uint32_t free_slots = 0;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        free_slots += sh->keys[i].state == KEY_FREE;
    }
    uint32_t imports = tlsr__keyring_imports_held(sh);
    uint32_t reserve = imports < TLSR_KEYRING_MAX_IMPORTS ? TLSR_KEYRING_MAX_IMPORTS - imports : 0;
    return free_slots > reserve ? free_slots - reserve : 0;
}

static tlsr_status make_key(struct tlsr_keyring *ring, uint64_t now, uint64_t generation,
                            uint64_t enc_from)
{
    struct kr_shared *sh = ring->sh;
    struct kr_key *k = tlsr__keyring_free_slot(sh, now);
    ENSURE(k != NULL, TLSR_E_TOOBIG, "ticket keys: ring full");
    tlsr_status rc = ring->source.make_key(ring->source.arg, generation, &k->k);
    if (rc != TLSR_OK) {
        OPENSSL_cleanse(k, sizeof(*k));
        count(sh, KR_SOURCE_ERRORS);
        return rc;
    }
    k->generation = generation;
    k->enc_from = enc_from;
    k->enc_until = enc_from + sh->rotate_s;
    k->dec_until = k->enc_until + sh->lifetime_s;
    __atomic_store_n(&k->state, KEY_LIVE, __ATOMIC_RELEASE);
    return TLSR_OK;
}

/* The live key with the latest window, or NULL. */
static struct kr_key *find_last(struct kr_shared *sh)
{
    struct kr_key *best = NULL;
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state == KEY_LIVE && k->enc_from != KR_PENDING &&
            (best == NULL || k->enc_from > best->enc_from)) {
            best = k;
        }
    }
    return best;
}

tlsr_status tlsr__keyring_maintain(struct tlsr_keyring *ring, uint64_t now, enum kr_maintain who)
{
    struct kr_shared *sh = ring->sh;
    /* The shared head is checked at creation and adoption; a period of 0 here means the memory
     * was overwritten under us: issue nothing rather than divide by it. */
    ENSURE(sh->rotate_s > 0, TLSR_E_FORMAT, "ticket keys: the shared ring's head is damaged");
    for (uint32_t i = 0; i < sh->capacity; i++) {
        struct kr_key *k = &sh->keys[i];
        if (k->state == KEY_LIVE && k->dec_until <= now) {
            tlsr__keyring_wipe(sh, k);
        }
    }
    struct kr_key *cur = tlsr__keyring_current(sh, now);
    if (sh->is_external) {
        if (cur != NULL) {
            return TLSR_OK; /* the fleet makes and promotes the keys */
        }
        /* The fleet key outlived its overdue bound (the fleet store is unreachable): go back
         * to local keys until the fleet promotes one again. */
        sh->is_external = 0;
        count(sh, KR_FLEET_LAPSES);
    }
    if (cur == NULL) {
        /* The chain lapsed (or this is the first key): start a new one at now's period. */
        struct kr_key *last = find_last(sh);
        uint64_t gen = now / sh->rotate_s;
        if (last != NULL && gen <= last->generation) {
            gen = last->generation + 1;
        }
        TRY(make_key(ring, now, gen, now / sh->rotate_s * sh->rotate_s));
        cur = tlsr__keyring_current(sh, now);
        ENSURE(cur != NULL, TLSR_E_CRYPTO, "ticket keys: no current key after rotation");
    }
    if (cur->generation != sh->current_generation) {
        if (sh->current_generation != NO_GENERATION) {
            count(sh, KR_ROTATIONS);
        }
        sh->current_generation = cur->generation;
    }
    struct kr_key *last = cur;
    unsigned ahead = who == KR_FOR_PREPARE ? 2 : 1;
    for (unsigned i = 0; i < ahead; i++) {
        struct kr_key *next = find_next(sh, last->enc_until);
        if (next == NULL) {
            /* The next key is needed; keys further ahead only where they leave rotation room. */
            if (i > 0 && tlsr__keyring_room(sh) <= 1) {
                break;
            }
            TRY(make_key(ring, now, last->generation + 1, last->enc_until));
            if (who == KR_FOR_HANDSHAKE) {
                count(sh, KR_KEYS_INLINE);
            }
            next = find_next(sh, last->enc_until);
            ENSURE(next != NULL, TLSR_E_CRYPTO, "ticket keys: no next key after making one");
        }
        last = next;
    }
    return TLSR_OK;
}

tlsr_status tlsr_keyring_prepare(struct tlsr_keyring *ring)
{
    ENSURE(ring != NULL, TLSR_E_INVALID, "ticket keys: ring is NULL");
    TRY(tlsr__keyring_lock(ring));
    tlsr_status rc = tlsr__keyring_maintain(ring, ring->clock(ring->clock_arg), KR_FOR_PREPARE);
    tlsr__keyring_unlock(ring);
    return rc;
}

tlsr_status tlsr__keyring_lock(struct tlsr_keyring *ring)
{
    struct kr_shared *sh = ring->sh;
    bool owner_died = false;
    TRY(tlsr__shm_mutex_lock(&sh->lock, &owner_died, "ticket keys"));
    if (owner_died) {
        /* Only a slot still being written can be inconsistent; wipe those. */
        for (uint32_t i = 0; i < sh->capacity; i++) {
            if (sh->keys[i].state != KEY_LIVE) {
                OPENSSL_cleanse(&sh->keys[i], sizeof(sh->keys[i]));
            }
        }
        int r = pthread_mutex_consistent(&sh->lock);
        if (r != 0) {
            pthread_mutex_unlock(&sh->lock);
            return tlsr__err_sys(TLSR_E_SYSTEM, r, "ticket keys: lock recovery");
        }
    }
    return TLSR_OK;
}

void tlsr__keyring_unlock(struct tlsr_keyring *ring)
{
    pthread_mutex_unlock(&ring->sh->lock);
}

static tlsr_status check_schedule(uint32_t rotate_s, uint32_t lifetime_s, uint32_t *capacity)
{
    ENSURE(rotate_s >= TLSR_TICKET_MIN_ROTATE_S && rotate_s <= TLSR_TICKET_MAX_LIFETIME_S,
           TLSR_E_INVALID, "ticket keys: rotation period %u s is outside %u s to 7 days", rotate_s,
           TLSR_TICKET_MIN_ROTATE_S);
    ENSURE(lifetime_s >= 1 && lifetime_s <= TLSR_TICKET_MAX_LIFETIME_S, TLSR_E_INVALID,
           "ticket keys: ticket lifetime %u s is outside 1 s to 7 days", lifetime_s);
    uint64_t need = (uint64_t)(lifetime_s + rotate_s - 1) / rotate_s + 3;
    ENSURE(need <= TLSR_KEYRING_MAX_KEYS, TLSR_E_INVALID,
           "ticket keys: a %u s lifetime with a %u s rotation needs %llu keys (max %u); "
           "rotate less often",
           lifetime_s, rotate_s, (unsigned long long)need, TLSR_KEYRING_MAX_KEYS);
    /* Room for FORCED_ROTATION_ROOM rotations on demand within one lifetime on top of the
     * schedule; beyond that a rotation on demand is refused (counted), never made by wiping a
     * key whose tickets are valid. */
    need += FORCED_ROTATION_ROOM + TLSR_KEYRING_MAX_IMPORTS;
    *capacity = (uint32_t)(need < TLSR_KEYRING_MAX_KEYS ? need : TLSR_KEYRING_MAX_KEYS);
    return TLSR_OK;
}

/* Wipes every key and builds the first two from the source. */
static tlsr_status rebuild(struct tlsr_keyring *ring)
{
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    OPENSSL_cleanse(sh->keys, (size_t)sh->capacity * sizeof(sh->keys[0]));
    sh->current_generation = NO_GENERATION;
    tlsr_status rc = tlsr__keyring_maintain(ring, ring->clock(ring->clock_arg), KR_FOR_USE);
    tlsr__keyring_unlock(ring);
    return rc;
}

/* The per-process part of a handle. */
static tlsr_status handle_init(struct tlsr_keyring *ring)
{
    ring->fds[0] = ring->fds[1] = -1;
    ring->creator = getpid();
    ring->clock = tlsr_clock_wall;
    ring->source.make_key = default_make_key;
    ring->aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    ring->aes128_cbc = EVP_CIPHER_fetch(NULL, "AES-128-CBC", NULL);
    ENSURE(ring->aes_cbc != NULL && ring->aes128_cbc != NULL, TLSR_E_CRYPTO,
           "ticket keys: AES-CBC unavailable");
    return TLSR_OK;
}

tlsr_status tlsr_keyring_new(uint32_t rotate_s, uint32_t lifetime_s, struct tlsr_keyring **out)
{
    ENSURE(out != NULL, TLSR_E_INVALID, "ticket keys: out is NULL");
    *out = NULL;
    uint32_t capacity = 0;
    TRY(check_schedule(rotate_s, lifetime_s, &capacity));
    struct tlsr_keyring *ring = tlsr__calloc(1, sizeof(*ring));
    ENSURE(ring != NULL, TLSR_E_NOMEM, "ticket keys: out of memory");
    tlsr_status rc = handle_init(ring);
    if (rc != TLSR_OK) {
        goto out;
    }
    void *mem;
    rc = tlsr__secmem_map_pair(KR_HEAD_BYTES, (size_t)capacity * sizeof(struct kr_key), &mem,
                               &ring->map_size, ring->fds);
    if (rc != TLSR_OK) {
        goto out;
    }
    ring->sh = mem;
    ring->sh->magic = KR_MAGIC;
    ring->sh->version = KR_VERSION;
    ring->sh->capacity = capacity;
    ring->sh->rotate_s = rotate_s;
    ring->sh->lifetime_s = lifetime_s;
    ring->sh->overdue_s = lifetime_s > rotate_s ? lifetime_s : rotate_s;
    rc = tlsr__shm_mutex_init(&ring->sh->lock, "ticket keys");
    if (rc == TLSR_OK) {
        rc = rebuild(ring);
    }
out:
    if (rc != TLSR_OK) {
        tlsr_keyring_free(ring);
        return rc;
    }
    *out = ring;
    return TLSR_OK;
}

/* Checks a ring made elsewhere before it is used: its version, and a capacity that fits the
 * bytes mapped. */
static tlsr_status ring_check(const struct tlsr_keyring *ring)
{
    const struct kr_shared *sh = ring->sh;
    ENSURE(ring->map_size >= sizeof(*sh) && sh->magic == KR_MAGIC, TLSR_E_FORMAT,
           "ticket keys: the memory file holds no key ring");
    ENSURE(sh->version == KR_VERSION, TLSR_E_VERSION,
           "ticket keys: layout version %u, this build reads version %u", sh->version, KR_VERSION);
    uint32_t capacity = 0;
    TRY(check_schedule(sh->rotate_s, sh->lifetime_s, &capacity));
    ENSURE(sh->capacity >= 2 && sh->capacity <= TLSR_KEYRING_MAX_KEYS &&
               sizeof(*sh) + (size_t)sh->capacity * sizeof(sh->keys[0]) <= ring->map_size,
           TLSR_E_FORMAT, "ticket keys: the memory file's capacity does not fit its size");
    return TLSR_OK;
}

tlsr_status tlsr_keyring_adopt(const int fds[2], struct tlsr_keyring **out)
{
    ENSURE(out != NULL, TLSR_E_INVALID, "ticket keys: out is NULL");
    *out = NULL;
    struct tlsr_keyring *ring = tlsr__calloc(1, sizeof(*ring));
    ENSURE(ring != NULL, TLSR_E_NOMEM, "ticket keys: out of memory");
    tlsr_status rc = handle_init(ring);
    void *mem = NULL;
    if (rc == TLSR_OK) {
        rc = tlsr__secmem_adopt_pair(fds, &mem, &ring->map_size);
    }
    if (rc == TLSR_OK) {
        ring->sh = mem;
        ring->creator = 0; /* a failed adoption leaves the other process's keys alone */
        rc = ring_check(ring);
    }
    for (int i = 0; i < 2 && rc == TLSR_OK && fds[i] >= 0; i++) {
        ring->fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        rc = ring->fds[i] >= 0 ? TLSR_OK : tlsr__err_sys(TLSR_E_SYSTEM, errno, "ticket keys: dup");
    }
    if (rc != TLSR_OK) {
        tlsr_keyring_free(ring);
        return rc;
    }
    ring->creator = getpid();
    *out = ring;
    return TLSR_OK;
}

void tlsr_keyring_fds(const struct tlsr_keyring *ring, int fds[2])
{
    fds[0] = ring != NULL ? ring->fds[0] : -1;
    fds[1] = ring != NULL ? ring->fds[1] : -1;
}

void tlsr_keyring_disown(struct tlsr_keyring *ring)
{
    if (ring != NULL) {
        ring->creator = 0;
    }
}

void tlsr_keyring_schedule(const struct tlsr_keyring *ring, uint32_t *rotate_s,
                           uint32_t *lifetime_s)
{
    *rotate_s = ring->sh->rotate_s;
    *lifetime_s = ring->sh->lifetime_s;
}

void tlsr_keyring_free(struct tlsr_keyring *ring)
{
    if (ring == NULL) {
        return;
    }
    if (ring->sh != NULL) {
        tlsr__secmem_release(ring->sh, ring->map_size, ring->creator);
    }
    for (int i = 0; i < 2; i++) {
        if (ring->fds[i] >= 0) {
            close(ring->fds[i]);
        }
    }
    EVP_CIPHER_free(ring->aes_cbc);
    EVP_CIPHER_free(ring->aes128_cbc);
    tlsr__free(ring);
}

void tlsr_keyring_set_clock(struct tlsr_keyring *ring, tlsr_clock_fn clock, void *arg)
{
    ring->clock = clock != NULL ? clock : tlsr_clock_wall;
    ring->clock_arg = arg;
}

tlsr_status tlsr_keyring_set_source(struct tlsr_keyring *ring, const struct tlsr_key_source *source)
{
    ENSURE(ring != NULL && source != NULL && source->make_key != NULL, TLSR_E_INVALID,
           "ticket keys: key source without make_key");
    ring->source = *source;
    return rebuild(ring);
}

tlsr_status tlsr_keyring_rotate(struct tlsr_keyring *ring)
{
    ENSURE(ring != NULL, TLSR_E_INVALID, "ticket keys: ring is NULL");
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    tlsr_status rc = tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    if (rc == TLSR_OK && sh->is_external) {
        rc = tlsr__err_set(TLSR_E_INVALID, "ticket keys: a fleet drives this ring; rotate the "
                                           "fleet instead");
    } else if (rc == TLSR_OK && tlsr__keyring_room(sh) == 0) {
        /* Every slot holds a key whose tickets are valid (or is kept for imports): a rotation
         * would have to wipe one of them. Refused, counted. */
        count(sh, KR_ROTATIONS_REFUSED);
        rc = tlsr__err_set(TLSR_E_TOOBIG,
                           "ticket keys: rotation refused: the ring is full of keys whose tickets "
                           "are still valid (at most %u rotations on demand within one ticket "
                           "lifetime)",
                           FORCED_ROTATION_ROOM);
    } else if (rc == TLSR_OK) {
        struct kr_key *cur = tlsr__keyring_current(sh, now);
        struct kr_key *next = find_next(sh, cur->enc_until);
        struct kr_key *later = find_next(sh, next->enc_until); /* prepared ahead, or NULL */
        cur->enc_until = now;
        cur->dec_until = now + sh->lifetime_s;
        next->enc_from = now;
        next->enc_until = now + sh->rotate_s;
        next->dec_until = next->enc_until + sh->lifetime_s;
        if (later != NULL) {
            /* It follows the next key without a gap, as the schedule would have made it. */
            later->enc_from = next->enc_until;
            later->enc_until = later->enc_from + sh->rotate_s;
            later->dec_until = later->enc_until + sh->lifetime_s;
        }
        rc = tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    }
    tlsr__keyring_unlock(ring);
    return rc;
}

tlsr_status tlsr_keyring_get_stats(struct tlsr_keyring *ring, struct tlsr_keyring_stats *out)
{
    ENSURE(ring != NULL && out != NULL, TLSR_E_INVALID, "ticket keys: stats: NULL argument");
    memset(out, 0, sizeof(*out));
    TRY(tlsr__keyring_lock(ring));
    struct kr_shared *sh = ring->sh;
    uint64_t now = ring->clock(ring->clock_arg);
    /* A failing key source shows in source_errors; the snapshot is still worth having. */
    (void)tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    for (uint32_t i = 0; i < sh->capacity; i++) {
        out->keys_held += sh->keys[i].state == KEY_LIVE;
    }
    out->rotation_room = tlsr__keyring_room(sh);
    struct kr_key *cur = tlsr__keyring_current(sh, now);
    if (cur != NULL) {
        out->current_generation = cur->generation;
        out->current_key_age_s = now - cur->enc_from;
        if (sh->is_external && now > cur->enc_from + sh->rotate_s) {
            out->current_overdue_s = now - cur->enc_from - sh->rotate_s;
        }
    }
    out->is_fleet = sh->is_external != 0;
    tlsr__keyring_unlock(ring);
    uint64_t *c = sh->counters;
    out->rotations = __atomic_load_n(&c[KR_ROTATIONS], __ATOMIC_RELAXED);
    out->keys_wiped = __atomic_load_n(&c[KR_WIPED], __ATOMIC_RELAXED);
    out->issued = __atomic_load_n(&c[KR_ISSUED], __ATOMIC_RELAXED);
    out->decrypted = __atomic_load_n(&c[KR_DECRYPTED], __ATOMIC_RELAXED);
    out->renewed = __atomic_load_n(&c[KR_RENEWED], __ATOMIC_RELAXED);
    out->rejected_unknown_key = __atomic_load_n(&c[KR_UNKNOWN], __ATOMIC_RELAXED);
    out->rejected_bad_mac = __atomic_load_n(&c[KR_BAD_MAC], __ATOMIC_RELAXED);
    out->rejected_expired = __atomic_load_n(&c[KR_EXPIRED], __ATOMIC_RELAXED);
    out->rejected_chain = __atomic_load_n(&c[KR_CHAIN], __ATOMIC_RELAXED);
    out->source_errors = __atomic_load_n(&c[KR_SOURCE_ERRORS], __ATOMIC_RELAXED);
    out->keys_made_inline = __atomic_load_n(&c[KR_KEYS_INLINE], __ATOMIC_RELAXED);
    out->fleet_lapses = __atomic_load_n(&c[KR_FLEET_LAPSES], __ATOMIC_RELAXED);
    out->rotations_refused = __atomic_load_n(&c[KR_ROTATIONS_REFUSED], __ATOMIC_RELAXED);
    out->variants_opened = __atomic_load_n(&c[KR_VARIANTS], __ATOMIC_RELAXED);
    return TLSR_OK;
}

uint32_t tlsr__keyring_lifetime_s(const struct tlsr_keyring *ring)
{
    return ring->sh->lifetime_s;
}

uint32_t tlsr__keyring_rotate_s(const struct tlsr_keyring *ring)
{
    return ring->sh->rotate_s;
}

uint64_t tlsr__keyring_now(const struct tlsr_keyring *ring)
{
    return ring->clock(ring->clock_arg);
}

tlsr_status tlsr_keyring_current_name(struct tlsr_keyring *ring,
                                      uint8_t name_out[TLSR_TICKET_NAME_LEN])
{
    ENSURE(ring != NULL && name_out != NULL, TLSR_E_INVALID, "ticket keys: NULL argument");
    TRY(tlsr__keyring_lock(ring));
    uint64_t now = ring->clock(ring->clock_arg);
    (void)tlsr__keyring_maintain(ring, now, KR_FOR_USE);
    struct kr_key *cur = tlsr__keyring_current(ring->sh, now);
    tlsr_status rc = TLSR_OK;
    if (cur != NULL) {
        memcpy(name_out, cur->k.name, TLSR_TICKET_NAME_LEN);
    } else {
        rc = tlsr__err_set(TLSR_E_NOTFOUND, "ticket keys: no current key");
    }
    tlsr__keyring_unlock(ring);
    return rc;
}

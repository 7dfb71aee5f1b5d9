/* Private to the tickets module: the shared layout of the key ring (see keyring.c). */
#ifndef TLSR_KEYRING_INT_H
#define TLSR_KEYRING_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include <tlsresume/tickets.h>

#include "keyring_glue.h"

#define KR_MAGIC 0x544b5952u /* "TKYR" */
#define KR_VERSION 1u        /* of the layout below: raise it when it changes */

enum kr_state { KEY_FREE = 0, KEY_LIVE = 1 };

enum kr_counter {
    KR_DECRYPTED = TLSR__KEYRING_DECRYPTED,
    KR_RENEWED = TLSR__KEYRING_RENEWED,
    KR_BAD_MAC = TLSR__KEYRING_BAD_MAC,
    KR_EXPIRED = TLSR__KEYRING_EXPIRED,
    KR_CHAIN = TLSR__KEYRING_CHAIN,
    KR_ISSUED = TLSR__KEYRING_NCOUNTERS_GLUE,
    KR_UNKNOWN,
    KR_ROTATIONS,
    KR_WIPED,
    KR_SOURCE_ERRORS,
    KR_FLEET_LAPSES,
    KR_ROTATIONS_REFUSED,
    KR_KEYS_INLINE,
    KR_VARIANTS, /* tickets opened under the 48-byte variant of a key (another server's) */
    KR_NCOUNTERS
};

/* enc_from of a fleet key installed but not promoted yet: it only decrypts. */
#define KR_PENDING UINT64_MAX

/* One key. A key is written while its state is KEY_FREE and published by setting KEY_LIVE. */
struct kr_key {
    uint8_t state;
    uint8_t is_fleet; /* installed by tlsr_keyring_install(), not made by the schedule */
    uint8_t is_48;    /* imported 48-byte key: AES-128, 16-byte HMAC key, decrypt-only */
    uint8_t reserved[5];
    uint64_t generation;
    uint64_t enc_from;  /* encrypts from this second (KR_PENDING: not yet) ... */
    uint64_t enc_until; /* ... until this one (exclusive) */
    uint64_t dec_until; /* decrypts until this one (exclusive), then is wiped */
    struct tlsr_ticket_key k;
    uint64_t issued;    /* tickets sealed under this key (atomic) */
    uint64_t presented; /* tickets that came back naming this key (atomic) */
    uint8_t pad[8];
};
_Static_assert(sizeof(struct kr_key) == 144, "key slot layout");

/* The first KR_HEAD_BYTES (lock, schedule, counters: nothing secret) live in ordinary shared
 * memory, since a futex cannot wait on secret memory; the key slots follow at once, in secret
 * memory where it is used (tlsr__secmem_map_pair). */
#define KR_HEAD_BYTES 4096u
struct kr_shared {
    union {
        struct {
            pthread_mutex_t lock; /* process-shared, robust */
            uint32_t magic;
            uint32_t capacity;
            uint32_t rotate_s;
            uint32_t lifetime_s;
            uint32_t is_external;        /* a fleet promoted the current key: no local schedule */
            uint32_t skew_s;             /* extra decrypt-only time for clocks that disagree */
            uint32_t overdue_s;          /* how long a fleet key may encrypt past its period */
            uint32_t version;            /* KR_VERSION */
            uint64_t current_generation; /* to count rotations */
            uint64_t counters[KR_NCOUNTERS]; /* atomic */
        };
        uint8_t head[KR_HEAD_BYTES];
    };
    struct kr_key keys[];
};
_Static_assert(offsetof(struct kr_shared, keys) == KR_HEAD_BYTES, "key ring head layout");

struct tlsr_keyring {
    struct kr_shared *sh;
    size_t map_size;
    int fds[2];    /* the memory files of the head and of the key slots (close-on-exec) */
    pid_t creator; /* only the creator (or the adopter) wipes the keys when freeing; 0: none */
    tlsr_clock_fn clock;
    void *clock_arg;
    struct tlsr_key_source source;
    EVP_CIPHER *aes_cbc;
    EVP_CIPHER *aes128_cbc; /* for keys imported from 48-byte formats */
    /* Per process, per slot: the name of the 48-byte variant of the 80-byte key last seen in
     * that slot (seal.c), so that a ticket naming a variant is found without deriving every
     * key again. Names only: the variant's keys are derived when a ticket needs them. */
    struct kr_variant {
        uint8_t of[TLSR_TICKET_NAME_LEN];   /* the 80-byte key's name */
        uint8_t name[TLSR_TICKET_NAME_LEN]; /* its variant's name */
        uint8_t is_set;
    } variants[TLSR_KEYRING_MAX_KEYS];
};

/* keyfile_text.c: the text formats (tlsr_key_format_is_text) into wr. */
struct tlsr_wr;
tlsr_status tlsr__keyfile_write_text(enum tlsr_key_format fmt, const char *name,
                                     const struct tlsr_key_material *keys, size_t n, bool has_next,
                                     struct tlsr_wr *wr);

/* Who maintains the ring, and so how far ahead keys are made: a handshake and other uses need
 * the next key (a handshake that has to make it counts in KR_KEYS_INLINE); tlsr_keyring_prepare()
 * makes one more, so that no handshake ever makes a key. */
enum kr_maintain { KR_FOR_HANDSHAKE, KR_FOR_USE, KR_FOR_PREPARE };
/* Applies the schedule at time now: wipes expired keys, makes sure a current key and the next
 * one exist (for KR_FOR_PREPARE one more, where the ring has room). Called with the lock held. */
tlsr_status tlsr__keyring_maintain(struct tlsr_keyring *ring, uint64_t now, enum kr_maintain who);
/* The live key encrypting at now, or NULL. */
struct kr_key *tlsr__keyring_current(struct kr_shared *sh, uint64_t now);
tlsr_status tlsr__keyring_lock(struct tlsr_keyring *ring);
/* Wipes a key slot and counts it. */
void tlsr__keyring_wipe(struct kr_shared *sh, struct kr_key *k);
/* A free slot, or NULL when every slot holds a live key (none is wiped to make room). */
struct kr_key *tlsr__keyring_free_slot(struct kr_shared *sh, uint64_t now);
/* Keys that can still be added beyond the reserve kept for imports without wiping one whose
 * tickets are valid: what rotations on demand may still use. Call with the lock held. */
uint32_t tlsr__keyring_room(const struct kr_shared *sh);
/* Imported keys held (live, generation 0). Call with the lock held. */
uint32_t tlsr__keyring_imports_held(const struct kr_shared *sh);
void tlsr__keyring_unlock(struct tlsr_keyring *ring);

#endif

/*
 * Memory. Owns the allocation wrapper (with its failure-injection counter) and the locked,
 * non-dumpable mappings that hold session secrets and ticket keys.
 *
 * Threat: key material or master secrets reaching disk through swap or a core dump, or
 * lingering in freed memory. Defence: mlock + MADV_DONTDUMP, refused outright if either fails
 * (fail closed), and OPENSSL_cleanse over the whole mapping before it is returned. Key material
 * also faces a reader of /proc/PID/mem or ptrace (a debugger, a compromised process of the same
 * user): secret memory (memfd_secret) takes its pages out of the kernel's direct map, so that
 * no one but the mapping processes can read them.
 */
#include "tlsr_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <tlsresume/memory.h>

#include "../err/tlsr_err.h"

/*
 * The one sanitizer switch: AddressSanitizer turns mlock() into a no-op that reports success,
 * which would let the tests pass on unlocked memory. Under ASan the same system call is made
 * directly, so sanitizer builds lock exactly what release builds lock.
 */
#if defined(__SANITIZE_ADDRESS__)
#define MLOCK(p, len) ((int)syscall(SYS_mlock, (p), (len)))
#define MUNLOCK(p, len) ((int)syscall(SYS_munlock, (p), (len)))
#else
#define MLOCK(p, len) mlock((p), (len))
#define MUNLOCK(p, len) munlock((p), (len))
#endif

#ifndef SECRETMEM_MAGIC
#define SECRETMEM_MAGIC 0x5345434d
#endif

static unsigned long alloc_count;
static unsigned long alloc_fail_at;

unsigned long tlsr__mem_fail_at(unsigned long nth)
{
    unsigned long made = __atomic_exchange_n(&alloc_count, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&alloc_fail_at, nth, __ATOMIC_SEQ_CST);
    return made;
}

/* True when the failure-injection hook says this allocation must fail. */
static bool should_fail(void)
{
    unsigned long n = __atomic_add_fetch(&alloc_count, 1, __ATOMIC_SEQ_CST);
    unsigned long at = __atomic_load_n(&alloc_fail_at, __ATOMIC_SEQ_CST);
    return at != 0 && n == at;
}

void *tlsr__malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size);
}

void *tlsr__calloc(size_t count, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(count, size);
}

void tlsr__free(void *p)
{
    free(p);
}

static size_t page_round(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (size > SIZE_MAX - (page - 1)) {
        return 0;
    }
    return (size + page - 1) / page * page;
}

/* Excludes p from core dumps and locks it (fail closed: unmapped on failure). Secret memory
 * is locked by the kernel itself (and refuses mlock, which would pin its pages). */
static tlsr_status protect(void *p, size_t len, bool is_secret)
{
    if (madvise(p, len, MADV_DONTDUMP) != 0) {
        int e = errno;
        munmap(p, len);
        return tlsr__err_sys(TLSR_E_NOMEM, e, "secure memory: madvise(MADV_DONTDUMP)");
    }
    if (!is_secret && MLOCK(p, len) != 0) {
        int e = errno;
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_MEMLOCK, &rl);
        munmap(p, len);
        return tlsr__err_sys(TLSR_E_NOMEM, e,
                             "secure memory: cannot lock %zu KiB in RAM (RLIMIT_MEMLOCK is %llu "
                             "KiB; raise it with 'ulimit -l' or LimitMEMLOCK=, or use less)",
                             len / 1024, (unsigned long long)(rl.rlim_cur / 1024));
    }
    return TLSR_OK;
}

/* size rounded up to whole pages into *len; refuses a bad size and an injected failure. */
static tlsr_status sized(size_t size, size_t *len)
{
    *len = page_round(size);
    ENSURE(size > 0 && *len > 0, TLSR_E_INVALID, "secure memory: bad size %zu", size);
    if (should_fail()) {
        return tlsr__err_set(TLSR_E_NOMEM,
                             "secure memory: allocation of %zu bytes failed "
                             "(injected)",
                             *len);
    }
    return TLSR_OK;
}

tlsr_status tlsr__secmem_map(size_t size, bool is_shared, void **out, size_t *out_size)
{
    size_t len = 0;
    TRY(sized(size, &len));
    int flags = MAP_ANONYMOUS | (is_shared ? MAP_SHARED : MAP_PRIVATE);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
        return tlsr__err_sys(TLSR_E_NOMEM, errno, "secure memory: mmap of %zu bytes", len);
    }
    TRY(protect(p, len, false));
    *out = p;
    *out_size = len;
    return TLSR_OK;
}

/* Key memory: the mode asked for, what key allocations used, and why secret memory was
 * refused. Written by the thread that sets up (before serving), read by anyone. */
static enum tlsr_key_memory key_mode = TLSR_KEY_MEMORY_AUTO;
static enum tlsr_key_memory key_used = TLSR_KEY_MEMORY_AUTO;
static int key_refused_errno;

void tlsr_key_memory_set(enum tlsr_key_memory mode)
{
    key_mode = mode;
}

enum tlsr_key_memory tlsr_key_memory_used(int *refused_errno)
{
    if (refused_errno != NULL) {
        *refused_errno = key_refused_errno;
    }
    return key_used;
}

const char *tlsr_key_memory_name(enum tlsr_key_memory mode)
{
    switch (mode) {
    case TLSR_KEY_MEMORY_SECRET:
        return "secret";
    case TLSR_KEY_MEMORY_LOCKED:
        return "locked";
    default:
        return "auto";
    }
}

/* A memory file of len bytes: secret memory for keys when the mode allows and the kernel
 * offers it, else memfd_create. */
static tlsr_status memory_file(size_t len, bool is_keys, int *out_fd, bool *is_secret)
{
    int fd = -1;
    if (is_keys && key_mode != TLSR_KEY_MEMORY_LOCKED) {
#ifdef SYS_memfd_secret
        fd = (int)syscall(SYS_memfd_secret, (unsigned)O_CLOEXEC);
        key_refused_errno = fd < 0 ? errno : 0;
#else
        key_refused_errno = ENOSYS;
#endif
        if (fd >= 0 && ftruncate(fd, (off_t)len) != 0) {
            key_refused_errno = errno;
            close(fd);
            fd = -1;
        }
        if (fd < 0 && key_mode == TLSR_KEY_MEMORY_SECRET) {
            return tlsr__err_sys(TLSR_E_NOMEM, key_refused_errno,
                                 "secure memory: secret memory (memfd_secret) was required and "
                                 "refused");
        }
    }
    if (is_keys) {
        key_used = fd >= 0 ? TLSR_KEY_MEMORY_SECRET : TLSR_KEY_MEMORY_LOCKED;
    }
    *is_secret = fd >= 0;
    if (fd < 0) {
        fd = memfd_create(is_keys ? "tlsresume-keys" : "tlsresume-cache", MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)len) != 0) {
            int e = errno;
            if (fd >= 0) {
                close(fd);
            }
            return tlsr__err_sys(TLSR_E_NOMEM, e, "secure memory: memory file of %zu bytes", len);
        }
    }
    *out_fd = fd;
    return TLSR_OK;
}

tlsr_status tlsr__secmem_map_file(size_t size, bool is_keys, void **out, size_t *out_size,
                                  int *out_fd)
{
    size_t len = 0;
    TRY(sized(size, &len));
    int fd = -1;
    bool is_secret = false;
    TRY(memory_file(len, is_keys, &fd, &is_secret));
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return tlsr__err_sys(TLSR_E_NOMEM, e, "secure memory: mmap of %zu bytes", len);
    }
    tlsr_status rc = protect(p, len, is_secret);
    if (rc != TLSR_OK) {
        close(fd);
        return rc;
    }
    *out = p;
    *out_size = len;
    *out_fd = fd;
    return TLSR_OK;
}

/* The size of a memory file; 0 (error set) when fd is not one or its size is not whole pages. */
static size_t file_size(int fd, bool *is_secret)
{
    struct stat st;
    struct statfs fs;
    if (fd < 0 || fstat(fd, &st) != 0 || fstatfs(fd, &fs) != 0) {
        tlsr__err_set(TLSR_E_INVALID, "secure memory: descriptor %d is not open", fd);
        return 0;
    }
    bool is_memory = fs.f_type == TMPFS_MAGIC || fs.f_type == SECRETMEM_MAGIC;
    size_t len = (size_t)st.st_size;
    if (!S_ISREG(st.st_mode) || !is_memory || len == 0 || page_round(len) != len) {
        tlsr__err_set(TLSR_E_INVALID,
                      "secure memory: descriptor %d is not a memory file of whole pages", fd);
        return 0;
    }
    *is_secret = fs.f_type == SECRETMEM_MAGIC;
    return len;
}

tlsr_status tlsr__secmem_adopt(int fd, void **out, size_t *out_size)
{
    bool is_secret = false;
    size_t len = file_size(fd, &is_secret);
    if (len == 0) {
        return TLSR_E_INVALID;
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        return tlsr__err_sys(TLSR_E_NOMEM, errno, "secure memory: mmap of %zu bytes", len);
    }
    TRY(protect(p, len, is_secret));
    if (is_secret) {
        key_used = TLSR_KEY_MEMORY_SECRET;
    }
    *out = p;
    *out_size = len;
    return TLSR_OK;
}

/* Maps fds[0] (head bytes) and fds[1] (tail bytes, secret memory or not) back to back, so that
 * one structure spans both; *out receives the start. */
static tlsr_status map_pair(const int fds[2], size_t head, size_t tail, bool is_secret, void **out)
{
    uint8_t *base = mmap(NULL, head + tail, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        return tlsr__err_sys(TLSR_E_NOMEM, errno, "secure memory: mmap of %zu bytes", head + tail);
    }
    tlsr_status rc = TLSR_OK;
    if (mmap(base, head, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fds[0], 0) == MAP_FAILED ||
        mmap(base + head, tail, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fds[1], 0) ==
            MAP_FAILED) {
        rc = tlsr__err_sys(TLSR_E_NOMEM, errno, "secure memory: mmap of %zu bytes", head + tail);
    }
    if (rc == TLSR_OK) {
        rc = protect(base, head, false);
    }
    if (rc == TLSR_OK) {
        rc = protect(base + head, tail, is_secret);
    }
    if (rc != TLSR_OK) {
        (void)MUNLOCK(base, head + tail);
        munmap(base, head + tail);
        return rc;
    }
    *out = base;
    return TLSR_OK;
}

tlsr_status tlsr__secmem_map_pair(size_t head, size_t tail, void **out, size_t *out_size,
                                  int fds[2])
{
    size_t tail_len = page_round(tail);
    ENSURE(head > 0 && tail > 0 && tail_len > 0, TLSR_E_INVALID,
           "secure memory: bad sizes %zu + %zu", head, tail);
    if (head != page_round(head)) {
        /* Pages larger than the head: one ordinary memory file for both (fds[1] = -1). */
        key_used = TLSR_KEY_MEMORY_LOCKED;
        key_refused_errno = EINVAL;
        fds[1] = -1;
        if (key_mode == TLSR_KEY_MEMORY_SECRET) {
            return tlsr__err_set(TLSR_E_NOMEM, "secure memory: secret memory (memfd_secret) "
                                               "was required and pages are larger than 4 KiB");
        }
        return tlsr__secmem_map_file(head + tail, false, out, out_size, &fds[0]);
    }
    if (should_fail()) {
        return tlsr__err_set(TLSR_E_NOMEM, "secure memory: allocation failed (injected)");
    }
    bool is_secret = false;
    bool ignored = false;
    fds[0] = fds[1] = -1;
    tlsr_status rc = memory_file(head, false, &fds[0], &ignored);
    if (rc == TLSR_OK) {
        rc = memory_file(tail_len, true, &fds[1], &is_secret);
    }
    if (rc == TLSR_OK) {
        rc = map_pair(fds, head, tail_len, is_secret, out);
    }
    if (rc != TLSR_OK) {
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) {
                close(fds[i]);
                fds[i] = -1;
            }
        }
        return rc;
    }
    *out_size = head + tail_len;
    return TLSR_OK;
}

tlsr_status tlsr__secmem_adopt_pair(const int fds[2], void **out, size_t *out_size)
{
    if (fds[1] < 0) {
        return tlsr__secmem_adopt(fds[0], out, out_size);
    }
    bool head_secret = false;
    bool is_secret = false;
    size_t head = file_size(fds[0], &head_secret);
    size_t tail = head > 0 ? file_size(fds[1], &is_secret) : 0;
    if (head == 0 || tail == 0) {
        return TLSR_E_INVALID;
    }
    ENSURE(!head_secret, TLSR_E_INVALID, "secure memory: the head is in secret memory");
    ENSURE(is_secret || key_mode != TLSR_KEY_MEMORY_SECRET, TLSR_E_NOMEM,
           "secure memory: secret memory (memfd_secret) was required and the keys handed over "
           "are in locked memory");
    TRY(map_pair(fds, head, tail, is_secret, out));
    key_used = is_secret ? TLSR_KEY_MEMORY_SECRET : TLSR_KEY_MEMORY_LOCKED;
    *out_size = head + tail;
    return TLSR_OK;
}

/* Private key mappings in secret memory, with the process that made each (only it wipes). */
#define MAX_SECRET_MAPS 32
static struct {
    void *p;
    pid_t creator;
} secret_maps[MAX_SECRET_MAPS];
static pthread_mutex_t secret_maps_lock = PTHREAD_MUTEX_INITIALIZER;

/* Records p; false when the table is full. */
static bool secret_map_add(void *p)
{
    bool is_added = false;
    pthread_mutex_lock(&secret_maps_lock);
    for (size_t i = 0; i < MAX_SECRET_MAPS && !is_added; i++) {
        if (secret_maps[i].p == NULL) {
            secret_maps[i].p = p;
            secret_maps[i].creator = getpid();
            is_added = true;
        }
    }
    pthread_mutex_unlock(&secret_maps_lock);
    return is_added;
}

/* Forgets p; true when this process must wipe it (it made it, or it is not a secret map). */
static bool secret_map_remove(void *p)
{
    bool is_ours = true;
    pthread_mutex_lock(&secret_maps_lock);
    for (size_t i = 0; i < MAX_SECRET_MAPS; i++) {
        if (secret_maps[i].p == p) {
            is_ours = secret_maps[i].creator == getpid();
            secret_maps[i].p = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&secret_maps_lock);
    return is_ours;
}

tlsr_status tlsr__secmem_map_keys(size_t size, void **out, size_t *out_size)
{
    if (key_mode == TLSR_KEY_MEMORY_LOCKED) {
        key_used = TLSR_KEY_MEMORY_LOCKED;
        return tlsr__secmem_map(size, false, out, out_size);
    }
    int fd = -1;
    TRY(tlsr__secmem_map_file(size, true, out, out_size, &fd));
    close(fd); /* the mapping keeps the memory */
    if (key_used == TLSR_KEY_MEMORY_SECRET && secret_map_add(*out)) {
        return TLSR_OK;
    }
    /* Locked memory after all (or no room to record who wipes): a private mapping, as before. */
    tlsr__secmem_detach(*out, *out_size);
    return tlsr__secmem_map(size, false, out, out_size);
}

void tlsr__secmem_unmap(void *p, size_t size)
{
    if (p == NULL) {
        return;
    }
    if (!secret_map_remove(p)) {
        tlsr__secmem_detach(p, size);
        return;
    }
    OPENSSL_cleanse(p, size);
    tlsr__secmem_detach(p, size);
}

void tlsr__secmem_detach(void *p, size_t size)
{
    if (p == NULL) {
        return;
    }
    (void)MUNLOCK(p, size);
    munmap(p, size);
}

void tlsr__secmem_release(void *p, size_t size, pid_t creator)
{
    if (getpid() == creator) {
        tlsr__secmem_unmap(p, size);
    } else {
        tlsr__secmem_detach(p, size);
    }
}

tlsr_status tlsr__shm_mutex_init(pthread_mutex_t *m, const char *what)
{
    pthread_mutexattr_t attr;
    int r = pthread_mutexattr_init(&attr);
    if (r == 0) {
        r = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (r == 0) {
            r = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        }
        if (r == 0) {
            r = pthread_mutex_init(m, &attr);
        }
        pthread_mutexattr_destroy(&attr);
    }
    if (r != 0) {
        return tlsr__err_sys(TLSR_E_SYSTEM, r, "%s: cannot make a process-shared robust lock",
                             what);
    }
    return TLSR_OK;
}

tlsr_status tlsr__shm_mutex_lock(pthread_mutex_t *m, bool *owner_died, const char *what)
{
    int r = pthread_mutex_lock(m);
    *owner_died = r == EOWNERDEAD;
    if (r != 0 && r != EOWNERDEAD) {
        return tlsr__err_sys(TLSR_E_SYSTEM, r, "%s: lock", what);
    }
    return TLSR_OK;
}

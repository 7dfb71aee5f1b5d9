/*
 * Memory. Owns the allocation wrapper (with its failure-injection counter) and the locked,
 * non-dumpable mappings that hold session secrets and ticket keys.
 *
 * Threat: key material or master secrets reaching disk through swap or a core dump, or
 * lingering in freed memory. Defence: mlock + MADV_DONTDUMP, refused outright if either fails
 * (fail closed), and OPENSSL_cleanse over the whole mapping before it is returned.
 */
#include "tlsr_mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>

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

tlsr_status tlsr__secmem_map(size_t size, bool is_shared, void **out, size_t *out_size)
{
    size_t len = page_round(size);
    ENSURE(size > 0 && len > 0, TLSR_E_INVALID, "secure memory: bad size %zu", size);
    if (should_fail()) {
        return tlsr__err_set(TLSR_E_NOMEM,
                             "secure memory: allocation of %zu bytes failed "
                             "(injected)",
                             len);
    }
    int flags = MAP_ANONYMOUS | (is_shared ? MAP_SHARED : MAP_PRIVATE);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) {
        return tlsr__err_sys(TLSR_E_NOMEM, errno, "secure memory: mmap of %zu bytes", len);
    }
    if (madvise(p, len, MADV_DONTDUMP) != 0) {
        int e = errno;
        munmap(p, len);
        return tlsr__err_sys(TLSR_E_NOMEM, e, "secure memory: madvise(MADV_DONTDUMP)");
    }
    if (MLOCK(p, len) != 0) {
        int e = errno;
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_MEMLOCK, &rl);
        munmap(p, len);
        return tlsr__err_sys(TLSR_E_NOMEM, e,
                             "secure memory: cannot lock %zu KiB in RAM (RLIMIT_MEMLOCK is %llu "
                             "KiB; raise it with 'ulimit -l' or LimitMEMLOCK=, or use less)",
                             len / 1024, (unsigned long long)(rl.rlim_cur / 1024));
    }
    *out = p;
    *out_size = len;
    return TLSR_OK;
}

void tlsr__secmem_unmap(void *p, size_t size)
{
    if (p == NULL) {
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

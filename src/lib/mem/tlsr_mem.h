/*
 * Memory: the allocator wrapper every module uses, and locked secret memory. Shared by every
 * module (listed in docs/DESIGN.md).
 *
 * tlsr__malloc/tlsr__calloc/tlsr__free wrap the C allocator so that tests can make the Nth
 * allocation fail (tlsr__mem_fail_at) and prove every error path releases what it took.
 *
 * tlsr__secmem_map returns zeroed, page-aligned memory that is mlock'ed (never swapped) and
 * marked MADV_DONTDUMP (left out of core dumps). If either call fails the allocation fails:
 * secrets never live in memory that could reach disk. is_shared maps it MAP_SHARED so children
 * forked afterwards see the same bytes. tlsr__secmem_unmap wipes, unlocks and unmaps.
 *
 * Memory files: tlsr__secmem_map_file maps a memory file instead (memfd_create, or for keys
 * memfd_secret when tlsr_key_memory_set allows it), MAP_SHARED, with the same locking and dump
 * exclusion, and returns its descriptor (close-on-exec): another process that receives the
 * descriptor across exec maps the same bytes with tlsr__secmem_adopt. tlsr__secmem_map_keys is
 * the private allocation for key material: secret memory when allowed (then MAP_SHARED over a
 * descriptor closed at once; a process forked afterwards sees the bytes but only the process
 * that made the mapping wipes it), else tlsr__secmem_map(size, false).
 */
#ifndef TLSR_MEM_H
#define TLSR_MEM_H

#include <stdbool.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#include <tlsresume/error.h>

void *tlsr__malloc(size_t size);
void *tlsr__calloc(size_t count, size_t size);
void tlsr__free(void *p);

/* *out_size receives the mapped size (size rounded up to whole pages). */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_map(size_t size, bool is_shared, void **out,
                                             size_t *out_size);
/* Shared memory in a memory file; is_keys selects secret memory (tlsr_key_memory_set).
 * *out_fd receives the file's descriptor (close-on-exec), owned by the caller. */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_map_file(size_t size, bool is_keys, void **out,
                                                  size_t *out_size, int *out_fd);
/* Maps the memory file fd (made by tlsr__secmem_map_file, here or in another process) whole;
 * *out_size receives its size. The descriptor stays the caller's. Errors: TLSR_E_INVALID (not
 * a memory file of a usable size), TLSR_E_NOMEM (cannot be mapped or locked). */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_adopt(int fd, void **out, size_t *out_size);
/* A shared structure in two memory files back to back: head bytes (whole pages) of ordinary
 * memory (a process-shared mutex must be there: a futex cannot wait on secret memory), then
 * tail bytes of key memory. fds[0] and fds[1] receive the two files' descriptors. */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_map_pair(size_t head, size_t tail, void **out,
                                                  size_t *out_size, int fds[2]);
/* Maps such a pair made elsewhere (the descriptors stay the caller's). */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_adopt_pair(const int fds[2], void **out, size_t *out_size);
/* Private memory for key material (see above). Free with tlsr__secmem_unmap. */
TLSR_MUST_CHECK tlsr_status tlsr__secmem_map_keys(size_t size, void **out, size_t *out_size);
/* Wipes the whole mapping, then unlocks and unmaps it; a key mapping made by another process
 * (before fork) is only unmapped. Accepts NULL. */
void tlsr__secmem_unmap(void *p, size_t size);
/* Unlocks and unmaps without wiping (a child process leaving memory its siblings still use). */
void tlsr__secmem_detach(void *p, size_t size);

/* Releases a shared mapping: the process that created it (creator) wipes it first; any other
 * process (a forked worker) only detaches, since its siblings may still use it. */
void tlsr__secmem_release(void *p, size_t size, pid_t creator);

/* Initialises a process-shared, robust mutex in shared memory. */
TLSR_MUST_CHECK tlsr_status tlsr__shm_mutex_init(pthread_mutex_t *m, const char *what);
/* Locks it. When the previous holder died holding it, *owner_died is set and the caller must
 * repair the data it guards, then call pthread_mutex_consistent() before unlocking. */
TLSR_MUST_CHECK tlsr_status tlsr__shm_mutex_lock(pthread_mutex_t *m, bool *owner_died,
                                                 const char *what);

/* Test hook: fail the nth allocation from now on (1 = the next one); 0 turns it off. Counts
 * tlsr__malloc, tlsr__calloc and tlsr__secmem_map calls. Returns the number of allocations
 * made since the previous call. */
unsigned long tlsr__mem_fail_at(unsigned long nth);

#endif

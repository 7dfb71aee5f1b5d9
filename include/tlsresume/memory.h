/*
 * Where secrets live. Ticket keys, the fleet key and the keys derived from it go to secret
 * memory where the kernel offers it (memfd_secret(2): the pages leave the kernel's direct map,
 * so neither /proc/PID/mem, ptrace nor a core dump can read them, and they are never swapped);
 * otherwise, and for the session cache, to memory that is locked (mlock) and left out of core
 * dumps (MADV_DONTDUMP). Either way nothing secret is written to disk.
 */
#ifndef TLSRESUME_MEMORY_H
#define TLSRESUME_MEMORY_H

#include <tlsresume/error.h>

enum tlsr_key_memory {
    TLSR_KEY_MEMORY_AUTO = 0, /* secret memory if the kernel offers it, else locked (default) */
    TLSR_KEY_MEMORY_SECRET,   /* secret memory or nothing: key allocations fail without it */
    TLSR_KEY_MEMORY_LOCKED,   /* locked memory only */
};

/* Chooses the memory of key allocations made from now on (process-wide; call before creating
 * key rings or loading fleet keys). */
void tlsr_key_memory_set(enum tlsr_key_memory mode);

/* The memory key allocations actually use: TLSR_KEY_MEMORY_SECRET or TLSR_KEY_MEMORY_LOCKED
 * (AUTO before the first one). When secret memory was wanted and refused, *refused_errno (if
 * not NULL) receives the kernel's reason (ENOSYS: a kernel without it; others: disabled, or the
 * locked-memory limit), else 0. */
enum tlsr_key_memory tlsr_key_memory_used(int *refused_errno);

/* The name of a mode: "auto", "secret", "locked". */
const char *tlsr_key_memory_name(enum tlsr_key_memory mode);

#endif

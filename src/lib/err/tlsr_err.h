/*
 * Internal error reporting, shared by every library module (listed in docs/DESIGN.md).
 *
 * tlsr__err_set() records a formatted message in the thread-local record and returns the code,
 * so a failing path reads `return tlsr__err_set(TLSR_E_INVALID, "...")`. tlsr__err_ssl() also
 * drains OpenSSL's error queue into the message. The three macros are the only ones that hide
 * control flow; they return, so use them only before a function acquires anything.
 */
#ifndef TLSR_ERR_H
#define TLSR_ERR_H

#include <tlsresume/error.h>

tlsr_status tlsr__err_set(tlsr_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tlsr_status tlsr__err_ssl(tlsr_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records errno's text after the message. */
tlsr_status tlsr__err_sys(tlsr_status code, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tlsr__err_clear(void);

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        tlsr_status tlsr__try_rc = (expr);                                                         \
        if (tlsr__try_rc != TLSR_OK) {                                                             \
            return tlsr__try_rc;                                                                   \
        }                                                                                          \
    } while (0)

#define ENSURE(cond, code, ...)                                                                    \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            return tlsr__err_set((code), __VA_ARGS__);                                             \
        }                                                                                          \
    } while (0)

#define FAIL(code, ...) return tlsr__err_set((code), __VA_ARGS__)

#endif

/*
 * tlsresume error codes.
 *
 * Every fallible library function returns a tlsr_status: TLSR_OK (0) on success, a negative code
 * on failure. The detail of the last failure on the calling thread (what failed, which input,
 * the OpenSSL error) is kept in a thread-local record and read with tlsr_last_error(). The
 * library never prints.
 */
#ifndef TLSRESUME_ERROR_H
#define TLSRESUME_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define TLSR_MUST_CHECK __attribute__((warn_unused_result))
#else
#define TLSR_MUST_CHECK
#endif

typedef enum tlsr_status {
    TLSR_OK = 0,
    TLSR_E_INVALID = -1,  /* a bad argument or configuration value */
    TLSR_E_NOMEM = -2,    /* memory (or locked memory) could not be had */
    TLSR_E_SYSTEM = -3,   /* an operating system call failed */
    TLSR_E_CRYPTO = -4,   /* OpenSSL failed; fail closed */
    TLSR_E_NOTFOUND = -5, /* a lookup found nothing (a cache miss); no message is set */
    TLSR_E_TOOBIG = -6,   /* the input or the result does not fit */
    TLSR_E_FORMAT = -7,   /* malformed, truncated or foreign bytes */
    TLSR_E_EXPIRED = -8,  /* the item exists but is past its lifetime */
    TLSR_E_EXISTS = -9,   /* the item is recorded already (a replay); no message is set */
    TLSR_E_VERSION = -10, /* memory handed over in a layout this build does not read */
} tlsr_status;

/*
 * Returns a static, human-readable name for a status code ("invalid argument" ...). Never NULL;
 * an unknown code gives "unknown error".
 */
const char *tlsr_strerror(tlsr_status status);

/*
 * Returns the message recorded by the last failing call on this thread, or "" when none. The
 * string is owned by the library and valid until the next library call on this thread.
 */
const char *tlsr_last_error(void);

#ifdef __cplusplus
}
#endif

#endif

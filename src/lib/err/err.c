/*
 * Error record. Owns the thread-local record behind tlsr_last_error(): one fixed buffer per
 * thread, so recording an error never allocates and never fails. Messages may name inputs
 * (file, line, field) but never secrets: callers pass lengths and hash prefixes, not bytes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "tlsr_err.h"

#define MSG_CAP 512

static _Thread_local char last_msg[MSG_CAP];

const char *tlsr_strerror(tlsr_status status)
{
    switch (status) {
    case TLSR_OK:
        return "ok";
    case TLSR_E_INVALID:
        return "invalid argument";
    case TLSR_E_NOMEM:
        return "out of memory";
    case TLSR_E_SYSTEM:
        return "system error";
    case TLSR_E_CRYPTO:
        return "crypto error";
    case TLSR_E_NOTFOUND:
        return "not found";
    case TLSR_E_TOOBIG:
        return "too big";
    case TLSR_E_FORMAT:
        return "malformed input";
    case TLSR_E_EXPIRED:
        return "expired";
    case TLSR_E_EXISTS:
        return "already recorded";
    case TLSR_E_VERSION:
        return "layout version mismatch";
    }
    return "unknown error";
}

const char *tlsr_last_error(void)
{
    return last_msg;
}

void tlsr__err_clear(void)
{
    last_msg[0] = '\0';
}

__attribute__((format(printf, 1, 0))) static size_t vrecord(const char *fmt, va_list ap)
{
    int n = vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    if (n < 0) {
        last_msg[0] = '\0';
        return 0;
    }
    if ((size_t)n >= sizeof(last_msg)) {
        return sizeof(last_msg) - 1;
    }
    return (size_t)n;
}

/* Appends text at used; silently truncates (the message is advice, not data). */
static size_t append(size_t used, const char *text)
{
    if (used >= sizeof(last_msg) - 1) {
        return used;
    }
    int n = snprintf(last_msg + used, sizeof(last_msg) - used, "%s", text);
    if (n < 0) {
        return used;
    }
    if ((size_t)n >= sizeof(last_msg) - used) {
        return sizeof(last_msg) - 1;
    }
    return used + (size_t)n;
}

tlsr_status tlsr__err_set(tlsr_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vrecord(fmt, ap);
    va_end(ap);
    return code;
}

tlsr_status tlsr__err_sys(tlsr_status code, int errnum, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t used = vrecord(fmt, ap);
    va_end(ap);
    used = append(used, ": ");
    append(used, strerror(errnum));
    return code;
}

tlsr_status tlsr__err_ssl(tlsr_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t used = vrecord(fmt, ap);
    va_end(ap);
    /* Drain the whole queue so the next call starts clean; keep the first (root cause). */
    unsigned long first = ERR_get_error();
    while (ERR_get_error() != 0) {
    }
    if (first != 0) {
        char buf[256];
        ERR_error_string_n(first, buf, sizeof(buf));
        used = append(used, ": ");
        append(used, buf);
    }
    return code;
}

/* How the library reports events to the application: one callback, a level and key=value text. */
#ifndef TLSRESUME_LOG_H
#define TLSRESUME_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels of tlsr_log_fn. */
enum tlsr_log_level { TLSR_LOG_ERROR = 0, TLSR_LOG_WARN, TLSR_LOG_INFO, TLSR_LOG_DEBUG };
/* Receives one event: a component ("fleet") and a message of key=value pairs. */
typedef void (*tlsr_log_fn)(void *arg, enum tlsr_log_level level, const char *component,
                            const char *msg);

#ifdef __cplusplus
}
#endif

#endif

/* Program logging: one line per event on stderr, as `level component key=value ...`. */
#ifndef TLSR_CMD_LOG_H
#define TLSR_CMD_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the least severe level printed from its name (error, warn, info, debug). */
void log_set_level(const char *name);
void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

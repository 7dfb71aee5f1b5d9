/* `tlsresume check --watch`: ticket key rotation observed over time. */
#ifndef TLSR_CHECK_WATCH_H
#define TLSR_CHECK_WATCH_H

#include <stdbool.h>

#include "check_probe.h"

/* Runs rounds every interval_s for duration_s; prints a line per round (or one JSON object)
 * and returns the exit code: 0 fine, 1 an old ticket stopped resuming, 2 no round worked. */
int check_watch(SSL_CTX *tickets12, const struct probe_target *t, unsigned duration_s,
                unsigned interval_s, bool is_json);

#endif

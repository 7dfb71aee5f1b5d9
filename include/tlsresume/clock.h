/*
 * The injectable clock. All lifetimes (session timeout, ticket lifetime, key rotation) are
 * measured in wall-clock seconds since the Unix epoch, read through a tlsr_clock_fn, so that
 * tests can drive expiry and rotation without sleeping and hosts of a fleet agree on schedules.
 */
#ifndef TLSRESUME_CLOCK_H
#define TLSRESUME_CLOCK_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the current wall-clock time in seconds since the Unix epoch. Must be thread-safe. */
typedef uint64_t (*tlsr_clock_fn)(void *arg);

/* The default clock: time(NULL). arg is ignored. */
uint64_t tlsr_clock_wall(void *arg);

#ifdef __cplusplus
}
#endif

#endif

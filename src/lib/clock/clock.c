/* The default clock (see tlsresume/clock.h): wall time, whole seconds. */
#include <time.h>

#include <tlsresume/clock.h>

uint64_t tlsr_clock_wall(void *arg)
{
    (void)arg;
    time_t t = time(NULL);
    return t < 0 ? 0 : (uint64_t)t;
}

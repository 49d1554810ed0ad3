/* Monotonic time helpers. */
#ifndef KVX_UTIL_TIME_H
#define KVX_UTIL_TIME_H

#include <stdint.h>
#include <time.h>

static inline uint64_t kvx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t kvx_deadline_ns(unsigned timeout_ms)
{
    return kvx_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

/* CLOCK_MONOTONIC absolute time for pthread_cond_timedwait on a condvar set
 * up with pthread_condattr_setclock(CLOCK_MONOTONIC). */
static inline struct timespec kvx_ns_to_timespec(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    return ts;
}

#endif

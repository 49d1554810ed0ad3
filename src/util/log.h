/* Internal logging macros. Arguments are evaluated only when the level is on. */
#ifndef KVX_UTIL_LOG_H
#define KVX_UTIL_LOG_H

#include <kvx/log.h>

extern int kvx_log_level_current; /* -2 until read from the environment */

int kvx_log_level_init(void);
void kvx_log_emit(kvx_log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int kvx_log_enabled(kvx_log_level_t level)
{
    int cur = __atomic_load_n(&kvx_log_level_current, __ATOMIC_RELAXED);
    if (cur == -2) {
        cur = kvx_log_level_init();
    }
    return (int)level <= cur;
}

#define KVX_LOG(level, ...)                                                                        \
    do {                                                                                           \
        if (kvx_log_enabled(level)) {                                                              \
            kvx_log_emit(level, __FILE__, __LINE__, __VA_ARGS__);                                  \
        }                                                                                          \
    } while (0)

#define kvx_error(...) KVX_LOG(KVX_LOG_ERROR, __VA_ARGS__)
#define kvx_warn(...)  KVX_LOG(KVX_LOG_WARN, __VA_ARGS__)
#define kvx_info(...)  KVX_LOG(KVX_LOG_INFO, __VA_ARGS__)
#define kvx_debug(...) KVX_LOG(KVX_LOG_DEBUG, __VA_ARGS__)
#define kvx_trace(...) KVX_LOG(KVX_LOG_TRACE, __VA_ARGS__)

#endif

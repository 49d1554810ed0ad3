#include "util/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int kvx_log_level_current = -2;

static kvx_log_sink_t log_sink;
static void *log_sink_data;
static pthread_mutex_t log_sink_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace", "data"};

const char *kvx_log_level_name(kvx_log_level_t level)
{
    if (level < KVX_LOG_ERROR || level > KVX_LOG_DATA) {
        return "off";
    }
    return level_names[level];
}

static int parse_level(const char *s)
{
    if (s == NULL || *s == '\0') {
        return KVX_LOG_WARN;
    }
    for (int i = 0; i <= KVX_LOG_DATA; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0) {
        return KVX_LOG_OFF;
    }
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end != s && *end == '\0' && v >= -1 && v <= KVX_LOG_DATA) {
        return (int)v;
    }
    return KVX_LOG_WARN;
}

int kvx_log_level_init(void)
{
    int level = parse_level(getenv("KVX_LOG_LEVEL"));
    int expected = -2;
    /* A level set explicitly before first use wins over the environment. */
    if (!__atomic_compare_exchange_n(&kvx_log_level_current, &expected, level, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED)) {
        return expected;
    }
    return level;
}

void kvx_log_set_level(kvx_log_level_t level)
{
    if (level < KVX_LOG_OFF) {
        level = KVX_LOG_OFF;
    }
    if (level > KVX_LOG_DATA) {
        level = KVX_LOG_DATA;
    }
    __atomic_store_n(&kvx_log_level_current, (int)level, __ATOMIC_RELAXED);
}

kvx_log_level_t kvx_log_get_level(void)
{
    int cur = __atomic_load_n(&kvx_log_level_current, __ATOMIC_RELAXED);
    if (cur == -2) {
        cur = kvx_log_level_init();
    }
    return (kvx_log_level_t)cur;
}

void kvx_log_set_sink(kvx_log_sink_t sink, void *user_data)
{
    pthread_mutex_lock(&log_sink_lock);
    log_sink = sink;
    log_sink_data = user_data;
    pthread_mutex_unlock(&log_sink_lock);
}

void kvx_log_emit(kvx_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    const char *base = strrchr(file, '/');
    base = (base != NULL) ? base + 1 : file;

    /* The lock keeps a sink from being swapped out while it runs. */
    pthread_mutex_lock(&log_sink_lock);
    if (log_sink != NULL) {
        log_sink(level, base, line, msg, log_sink_data);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(stderr, "[%lld.%06ld] kvx %-5s %s:%d %s\n", (long long)ts.tv_sec, ts.tv_nsec / 1000,
                kvx_log_level_name(level), base, line, msg);
    }
    pthread_mutex_unlock(&log_sink_lock);
}

/*
 * Helpers shared by every example: error reporting, deadlines, "ip:port"
 * names, the port file a launcher waits for (see run_pair.sh), and for the
 * engine examples (client_server_h2d, server_server_d2d) connect with retry
 * and the remote memory table. kv_example_common.h builds on it for the KV
 * cache examples. Header-only (static inline), so each example builds from
 * one .c file; set ex_prog in main() first.
 */
#ifndef KVX_ENGINE_EXAMPLE_COMMON_H
#define KVX_ENGINE_EXAMPLE_COMMON_H

#include <kvx/kvx.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EX_CONNECT_DEADLINE_MS 10000
#define EX_CONNECT_ATTEMPT_MS  1000
#define EX_RETRY_PAUSE_MS      50
#define EX_ADDR_MAX            128

static const char *ex_prog = "kvx_example";

#if defined(__GNUC__)
#define EX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define EX_PRINTF(f, a)
#endif

/* Report a failed call: what, the status and the library's detail. Returns 1
 * so that callers can write `return ex_fail(...)` or `rc = ex_fail(...)`. */
static inline int ex_fail(kvx_status_t st, const char *fmt, ...) EX_PRINTF(2, 3);
static inline int ex_fail(kvx_status_t st, const char *fmt, ...)
{
    const char *detail = kvx_last_error();
    va_list ap;
    fprintf(stderr, "%s: ", ex_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, ": %s%s%s\n", kvx_status_string(st), detail[0] != '\0' ? "\n  " : "", detail);
    return 1;
}

static inline int64_t ex_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int ex_ms_left(int64_t deadline)
{
    int64_t left = deadline - ex_now_ms();
    return left <= 0 ? 0 : (left > INT_MAX ? INT_MAX : (int)left);
}

static inline void ex_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Device id argument: a decimal number >= 0. Returns 0 or -1. */
static inline int ex_parse_device(const char *arg, int *dev_p)
{
    char *end = NULL;
    errno = 0;
    long dev = strtol(arg, &end, 10);
    if (end == arg || *end != '\0' || errno != 0 || dev < 0 || dev > INT_MAX) {
        return -1;
    }
    *dev_p = (int)dev;
    return 0;
}

/* Split "ip:port" or "[ip6]:port" into the host ("ip", "[ip6]") and the port
 * text; without a port *port_p is NULL. Returns 0, or -1 if the host does not
 * fit. IPv6 addresses must be bracketed, as in engine names. */
static inline int ex_split_host_port(const char *name, char *host, size_t host_len,
                                     const char **port_p)
{
    const char *colon = NULL;
    if (name[0] == '[') {
        const char *close = strchr(name, ']');
        colon = close != NULL && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strchr(name, ':');
    }
    size_t n = colon != NULL ? (size_t)(colon - name) : strlen(name);
    if (n >= host_len) {
        return -1;
    }
    memcpy(host, name, n);
    host[n] = '\0';
    *port_p = colon != NULL ? colon + 1 : NULL;
    return 0;
}

static inline int ex_has_port(const char *name)
{
    char host[EX_ADDR_MAX];
    const char *port = NULL;
    return ex_split_host_port(name, host, sizeof(host), &port) == 0 && port != NULL;
}

/* Write @p bound's port to @p path atomically (PATH.tmp, then rename), so a
 * reader never sees a partly written number. Returns 0 or 1. */
static inline int ex_write_port_file(const char *path, const char *bound)
{
    char host[EX_ADDR_MAX], tmp[PATH_MAX];
    const char *port = NULL;
    if (ex_split_host_port(bound, host, sizeof(host), &port) != 0 || port == NULL ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
        fprintf(stderr, "%s: port file '%s': name too long or no port in '%s'\n", ex_prog, path,
                bound);
        return 1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "%s: port file '%s': %s\n", ex_prog, tmp, strerror(errno));
        return 1;
    }
    int bad = fprintf(f, "%s\n", port) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        fprintf(stderr, "%s: port file '%s': %s\n", ex_prog, path, strerror(errno));
        remove(tmp);
        return 1;
    }
    return 0;
}

/* Publish the bound port in the file named by environment variable @p env,
 * if set (a launcher waits for it instead of sleeping; see run_pair.sh). */
static inline int ex_publish_port(const char *env, const char *bound)
{
    const char *path = getenv(env);
    return path == NULL || path[0] == '\0' ? 0 : ex_write_port_file(path, bound);
}

/* Statuses of a connect or link attempt worth another try before the
 * deadline: nobody listens there yet (the peer may still be starting). */
static inline int ex_transient(kvx_status_t st)
{
    return st == KVX_ERR_CONNECTION_REFUSED || st == KVX_ERR_TIMEOUT ||
           st == KVX_ERR_CONNECTION_LOST;
}

/* Connect, retrying transient failures (ex_transient()) until
 * EX_CONNECT_DEADLINE_MS; other errors are final at once. */
static inline kvx_status_t ex_connect(kvx_engine_h engine, const char *remote)
{
    int64_t deadline = ex_now_ms() + EX_CONNECT_DEADLINE_MS;
    for (;;) {
        int left = ex_ms_left(deadline);
        int attempt = left < EX_CONNECT_ATTEMPT_MS ? left : EX_CONNECT_ATTEMPT_MS;
        /* 0 would mean "the engine's default", not "no time". */
        kvx_status_t st = kvx_engine_connect(engine, remote, attempt > 0 ? attempt : 1);
        if (st == KVX_OK) {
            return KVX_OK;
        }
        if (!ex_transient(st) || ex_ms_left(deadline) <= EX_RETRY_PAUSE_MS) {
            return st;
        }
        ex_sleep_ms(EX_RETRY_PAUSE_MS);
    }
}

/* The memory @p remote registered: *mems_p (to free; NULL if none) and
 * *count_p entries. The table is sized by a first call, and fetched again
 * if the remote registered more in between. */
static inline kvx_status_t ex_remote_mem(kvx_engine_h engine, const char *remote,
                                         kvx_remote_mem_t **mems_p, size_t *count_p)
{
    kvx_remote_mem_t *mems = NULL;
    size_t max = 0, count = 0;
    kvx_status_t st;
    while ((st = kvx_engine_remote_mem(engine, remote, mems, max, &count, 0)) == KVX_OK &&
           count > max) {
        free(mems);
        max = count;
        if ((mems = malloc(max * sizeof(*mems))) == NULL) {
            fprintf(stderr, "%s: out of memory\n", ex_prog);
            return KVX_ERR_NO_MEMORY;
        }
    }
    if (st != KVX_OK) {
        free(mems);
        return st;
    }
    *mems_p = mems;
    *count_p = count;
    return KVX_OK;
}

#endif /* KVX_ENGINE_EXAMPLE_COMMON_H */

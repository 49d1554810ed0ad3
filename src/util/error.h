/* Per-thread error detail behind kvx_last_error(). */
#ifndef KVX_UTIL_ERROR_H
#define KVX_UTIL_ERROR_H

#include <kvx/status.h>
#include <stdio.h>

#include "util/log.h"

void kvx_error_clear(void);

/* Put back a detail saved from kvx_last_error() (verbatim). */
void kvx_error_restore(const char *saved);

/* Run a cleanup call that goes through the public API (which resets the
 * detail) without losing the detail of the failure being reported. */
#define KVX_KEEP_ERROR(stmt)                                                                       \
    do {                                                                                           \
        char kvx_saved_error_[512];                                                                \
        snprintf(kvx_saved_error_, sizeof(kvx_saved_error_), "%s", kvx_last_error());              \
        stmt;                                                                                      \
        kvx_error_restore(kvx_saved_error_);                                                       \
    } while (0)

/* True if @p status is in the status table (peers may send anything). */
int kvx_status_known(int status);

/* Record what failed for kvx_last_error(); returns @p status for chaining. */
kvx_status_t kvx_error_set(kvx_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the detail, log it at debug level (caller errors are the caller's to
 * report), and return the status. */
#define KVX_FAIL(status, ...)                                                                      \
    (kvx_error_set((status), __VA_ARGS__),                                                         \
     kvx_log_enabled(KVX_LOG_DEBUG)                                                                \
         ? kvx_log_emit(KVX_LOG_DEBUG, __FILE__, __LINE__, "%s", kvx_last_error())                 \
         : (void)0,                                                                                \
     (status))

#endif

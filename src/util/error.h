/* Per-thread error detail behind kvx_last_error(). */
#ifndef KVX_UTIL_ERROR_H
#define KVX_UTIL_ERROR_H

#include <kvx/status.h>

#include "util/log.h"

void kvx_error_clear(void);

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

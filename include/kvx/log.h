/**
 * @file log.h
 * @brief Levelled logging with a replaceable sink.
 *
 * The level comes from KVX_LOG_LEVEL (error, warn, info, debug, trace or
 * 0-5) at first use, and can be changed with kvx_log_set_level(). Messages
 * below the level cost one integer compare: their arguments are not
 * evaluated.
 */
#ifndef KVX_LOG_H
#define KVX_LOG_H

#include <kvx/common.h>

KVX_BEGIN_DECLS

typedef enum kvx_log_level {
    KVX_LOG_OFF = -1,
    KVX_LOG_ERROR = 0,
    KVX_LOG_WARN = 1,
    KVX_LOG_INFO = 2,
    KVX_LOG_DEBUG = 3,
    KVX_LOG_TRACE = 4,
    KVX_LOG_DATA = 5
} kvx_log_level_t;

/**
 * A log sink. @p file and @p line name the kvx source that logged; @p msg is
 * one line without a trailing newline. Called from any kvx thread, possibly
 * concurrently; must not call back into kvx.
 */
typedef void (*kvx_log_sink_t)(kvx_log_level_t level, const char *file, int line, const char *msg,
                               void *user_data);

/** Set the level; messages above it are dropped. */
KVX_API void kvx_log_set_level(kvx_log_level_t level);

/** Current level. */
KVX_API kvx_log_level_t kvx_log_get_level(void);

/** Replace the sink (NULL restores the default, which writes to stderr). */
KVX_API void kvx_log_set_sink(kvx_log_sink_t sink, void *user_data);

/** Name of a level ("error", "warn", ...). */
KVX_API const char *kvx_log_level_name(kvx_log_level_t level);

KVX_END_DECLS

#endif /* KVX_LOG_H */

/**
 * @file status.h
 * @brief Status codes of every kvx call, and the per-thread error detail.
 *
 * Values are stable: a code is never renumbered or reused. 0 is success,
 * 1 is "in progress", negative values are errors. Codes from -100 to -199
 * are peer-scoped: the link to one remote is broken or refused the request,
 * the engine itself stays usable (drop and reconnect that peer). Codes from
 * -200 to -299 come from the KV cache layer (kv.h).
 */
#ifndef KVX_STATUS_H
#define KVX_STATUS_H

#include <kvx/common.h>

KVX_BEGIN_DECLS

/* X(name, value, description). The one table: enum and strings come from it. */
#define KVX_STATUS_MAP(X)                                                                          \
    X(OK, 0, "success")                                                                            \
    X(INPROGRESS, 1, "operation in progress")                                                      \
    X(ERR_INVALID_PARAM, -1, "invalid parameter")                                                  \
    X(ERR_NO_MEMORY, -2, "out of memory")                                                          \
    X(ERR_TIMEOUT, -3, "timed out")                                                                \
    X(ERR_RESOURCE_EXHAUSTED, -4, "resource limit reached")                                        \
    X(ERR_UNSUPPORTED, -5, "operation or option not supported")                                    \
    X(ERR_BUSY, -6, "resource in use by a pending operation")                                      \
    X(ERR_NOT_FOUND, -7, "no such object")                                                         \
    X(ERR_ALREADY_EXISTS, -8, "object already exists")                                             \
    X(ERR_INVALID_ADDRESS, -9, "address range not inside registered memory")                       \
    X(ERR_OVERLAP, -10, "memory range overlaps an existing registration")                          \
    X(ERR_IO, -11, "operating system I/O error")                                                   \
    X(ERR_DEVICE, -12, "device error")                                                             \
    X(ERR_SHUTDOWN, -13, "object is shutting down")                                                \
    X(ERR_CANCELED, -14, "operation canceled")                                                     \
    X(ERR_INTERNAL, -15, "internal error")                                                         \
    X(ERR_DEVICE_OUT_OF_MEMORY, -16, "device out of memory")                                       \
    X(ERR_NOT_CONNECTED, -100, "not connected to that remote")                                     \
    X(ERR_ALREADY_CONNECTED, -101, "already connected to that remote")                             \
    X(ERR_CONNECTION_REFUSED, -102, "remote refused the connection")                               \
    X(ERR_CONNECTION_LOST, -103, "connection to the remote was lost")                              \
    X(ERR_PROTOCOL, -104, "malformed or unexpected message from the remote")                       \
    X(ERR_REMOTE_ACCESS, -105, "remote refused access to that memory")                             \
    X(ERR_REMOTE_FULL, -106, "remote queue is full")                                               \
    X(ERR_VERSION_MISMATCH, -107, "remote speaks an incompatible protocol")                        \
    X(ERR_PEER_UNRESPONSIVE, -108, "remote stopped answering (peer_timeout_ms)")                   \
    X(ERR_AUTH, -109, "authentication failed: the shared secrets differ or one side has none")     \
    X(ERR_CHECKSUM, -110, "data changed between source and destination (checksum mismatch)")       \
    X(ERR_NOT_LINKED, -200, "not linked to that cluster")                                          \
    X(ERR_ALREADY_LINKED, -201, "already linked to that cluster")                                  \
    X(ERR_LINK_EXISTS, -202, "refused while links exist")                                          \
    X(ERR_TOO_MANY_CLUSTERS, -203, "too many clusters in one call")                                \
    X(ERR_CLUSTER_MISMATCH, -204, "remote has another cluster id")                                 \
    X(ERR_CACHE_NOT_FOUND, -205, "no local cache with that id")                                    \
    X(ERR_REMOTE_CACHE_NOT_FOUND, -206, "no remote cache with that id")                            \
    X(ERR_CACHE_MISMATCH, -207, "caches differ in dtype or entry shape")                           \
    X(ERR_BLOCK_OUT_OF_RANGE, -208, "block index outside the cache")                               \
    X(ERR_BLOCK_LIST_MISMATCH, -209, "block lists differ in length")                               \
    X(ERR_BATCH_OUT_OF_RANGE, -210, "batch index outside the cache")                               \
    X(ERR_LAYER_RANGE, -211, "bad layer range or tensors per layer")                               \
    X(ERR_SIZE_OUT_OF_RANGE, -212, "size larger than a cache entry")

#define KVX_STATUS_ENUM_ENTRY(name, value, text) KVX_##name = (value),

/** Status of a kvx call. */
typedef enum kvx_status { KVX_STATUS_MAP(KVX_STATUS_ENUM_ENTRY) } kvx_status_t;

#undef KVX_STATUS_ENUM_ENTRY

/** True for errors that concern one remote rather than the whole engine. */
#define KVX_IS_PEER_ERROR(s) ((s) <= -100 && (s) > -200)

/** Human-readable description; never NULL ("unknown status" if unknown). */
KVX_API const char *kvx_status_string(kvx_status_t status);

/** Symbolic name ("KVX_ERR_TIMEOUT"); never NULL. */
KVX_API const char *kvx_status_name(kvx_status_t status);

/**
 * Detail of the latest failure of a kvx call on the calling thread: what
 * failed, where and which peer. Empty string if none. The string stays
 * valid until the next kvx call on this thread.
 */
KVX_API const char *kvx_last_error(void);

KVX_END_DECLS

#endif /* KVX_STATUS_H */

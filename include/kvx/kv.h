/**
 * @file kv.h
 * @brief The KV cache layer: instances with a cluster id and a role, links
 *        between clusters, caches of N equally shaped tensors, and pulls and
 *        pushes of whole cache entries or lists of blocks.
 *
 * A cache is N tensors of one dtype and shape [d0, d1, ...]. Dimension 0 is
 * the batch index of contiguous calls (kvx_kv_pull_cache, ...) and the block
 * index of paged calls (kvx_kv_pull_blocks, ...): entry k of tensor i is the
 * S = size(tensor) / d0 bytes at tensor_addr[i] + k * S. Tensors are ordered
 * layer by layer: with tensors_per_layer = 2, tensor 2L is layer L's K and
 * tensor 2L+1 its V.
 *
 * A link is directed: the instance that calls kvx_kv_link() reads (pull) and
 * writes (push) caches of the linked cluster; the linked one does nothing
 * and needs to listen. Each instance publishes a table of its caches that
 * linked peers read one-sidedly; a cache registered after a link was made is
 * found by the peer on first use (the table is re-read when an id is missing).
 *
 * Every transfer checks both sides before any byte moves: cache ids, dtype
 * and per-entry shape, batch and block indices, layer ranges and sizes. Each
 * rule has its own status (status.h, -200 ... -299) and leaves the instance
 * usable.
 *
 * Timeouts are in milliseconds as in engine.h: 0 is the instance's default,
 * negative values and values over one hour (3600000) are refused with
 * KVX_ERR_INVALID_PARAM. Local copies take no timeout (timeout_ms is not
 * used by them).
 *
 * Thread safety: all calls may be made from any thread, concurrently, except
 * kvx_kv_destroy(). Transfers to one cluster may run in parallel.
 */
#ifndef KVX_KV_H
#define KVX_KV_H

#include <kvx/common.h>
#include <kvx/engine.h>
#include <kvx/status.h>

KVX_BEGIN_DECLS

/** An instance (opaque). */
typedef struct kvx_kv *kvx_kv_h;

/** Role of an instance: a label for the application; it does not restrict
 *  which calls are allowed. */
typedef enum kvx_kv_role {
    KVX_KV_ROLE_PROMPT = 1,
    KVX_KV_ROLE_DECODER = 2,
    KVX_KV_ROLE_MIX = 3
} kvx_kv_role_t;

/** Element types. Values are stable. */
typedef enum kvx_dtype {
    KVX_DTYPE_FP16 = 1,
    KVX_DTYPE_BF16 = 2,
    KVX_DTYPE_FP32 = 3,
    KVX_DTYPE_FP64 = 4,
    KVX_DTYPE_INT8 = 5,
    KVX_DTYPE_UINT8 = 6,
    KVX_DTYPE_INT16 = 7,
    KVX_DTYPE_UINT16 = 8,
    KVX_DTYPE_INT32 = 9,
    KVX_DTYPE_UINT32 = 10,
    KVX_DTYPE_INT64 = 11,
    KVX_DTYPE_UINT64 = 12,
    KVX_DTYPE_BOOL = 13,
    KVX_DTYPE_FP8_E4M3 = 14,
    KVX_DTYPE_FP8_E5M2 = 15
} kvx_dtype_t;

/** Bytes per element of a dtype; 0 for an unknown one. */
KVX_API size_t kvx_dtype_size(kvx_dtype_t dtype);

/** Most clusters in one kvx_kv_link() or kvx_kv_unlink() call. */
#define KVX_KV_MAX_CLUSTERS_PER_CALL 16
/** Most dimensions of a cache's shape. */
#define KVX_KV_MAX_DIMS 8
/** Most tensors in one cache. */
#define KVX_KV_MAX_TENSORS 4096

enum kvx_kv_param_field {
    KVX_KV_PARAM_FIELD_CLUSTER_ID = KVX_BIT(0),     /**< cluster_id (required) */
    KVX_KV_PARAM_FIELD_ROLE = KVX_BIT(1),           /**< role */
    KVX_KV_PARAM_FIELD_LISTEN = KVX_BIT(2),         /**< listen */
    KVX_KV_PARAM_FIELD_LOCAL_IP = KVX_BIT(3),       /**< local_ip */
    KVX_KV_PARAM_FIELD_DEVICE_ID = KVX_BIT(4),      /**< device_id */
    KVX_KV_PARAM_FIELD_SYNC_TIMEOUT = KVX_BIT(5),   /**< sync_timeout_ms */
    KVX_KV_PARAM_FIELD_STAGING_POOL = KVX_BIT(6),   /**< staging_buffers, staging_buffer_size */
    KVX_KV_PARAM_FIELD_SWITCH_ROLE = KVX_BIT(7),    /**< switch_role_enable */
    KVX_KV_PARAM_FIELD_TABLE_CAPACITY = KVX_BIT(8), /**< table_capacity */
    KVX_KV_PARAM_FIELD_IO_THREADS = KVX_BIT(9),     /**< io_threads */
    KVX_KV_PARAM_FIELD_BUSY_POLL = KVX_BIT(10),     /**< busy_poll_us */
    KVX_KV_PARAM_FIELD_PEER_TIMEOUT = KVX_BIT(11),  /**< peer_timeout_ms */
    KVX_KV_PARAM_FIELD_AUTH_SECRET = KVX_BIT(12)    /**< auth_secret, auth_secret_len */
};

/** Options of kvx_kv_create(). Fields count only if their bit is set;
 *  unknown bits are refused. */
typedef struct kvx_kv_params {
    uint64_t field_mask;
    /** This instance's cluster id; unique among the clusters that link. */
    uint64_t cluster_id;
    /** Default KVX_KV_ROLE_MIX. */
    kvx_kv_role_t role;
    /** "ip:port" or "[ip6]:port" to listen on (port 0: any; see
     *  kvx_kv_listen_name()). Without it the instance only links out. */
    const char *listen;
    /** Address of a non-listening instance ("ip"), default "0.0.0.0". */
    const char *local_ip;
    /** Device of allocated device caches (default 0). */
    int device_id;
    /** Deadline of every pull, push and notification (default 10000 ms). */
    unsigned sync_timeout_ms;
    /** Staging buffers for device memory the CPU cannot reach. The host
     *  device backend needs none, so they are only reserved (default 0 x 0). */
    unsigned staging_buffers;
    size_t staging_buffer_size;
    /** 0 makes kvx_kv_set_role() fail with KVX_ERR_UNSUPPORTED (default 1). */
    int switch_role_enable;
    /** Bytes of the published cache table (default 1 MiB, 4 KiB .. 64 MiB). */
    size_t table_capacity;
    /** I/O threads of the underlying engine (default 1). */
    unsigned io_threads;
    /** Reply polling of sync transfers of the underlying engine, in µs
     *  (see kvx_engine_params_t::busy_poll_us; default 50). */
    unsigned busy_poll_us;
    /** Silence after which a link is declared dead (see
     *  kvx_engine_params_t::peer_timeout_ms; default 5000). */
    unsigned peer_timeout_ms;
    /** Shared secret of every link (16..1024 bytes, copied; see
     *  kvx_engine_params_t::auth_secret). Linked instances need the same. */
    const void *auth_secret;
    size_t auth_secret_len;
} kvx_kv_params_t;

/**
 * Create an instance (and its engine; listening if params->listen is set).
 * @return KVX_OK, KVX_ERR_INVALID_PARAM, KVX_ERR_UNSUPPORTED, KVX_ERR_IO
 */
KVX_API kvx_status_t kvx_kv_create(const kvx_kv_params_t *params, kvx_kv_h *kv_p);

/** Unlink everything, free allocated caches, drop registrations, destroy. */
KVX_API void kvx_kv_destroy(kvx_kv_h kv);

/** The instance's engine name: "ip:port" when listening, else "ip". */
KVX_API const char *kvx_kv_listen_name(kvx_kv_h kv);

KVX_API uint64_t kvx_kv_cluster_id(kvx_kv_h kv);
KVX_API kvx_kv_role_t kvx_kv_role(kvx_kv_h kv);

/* ------------------------------------------------------------------ links */

/** A cluster to link to. */
typedef struct kvx_kv_cluster {
    uint64_t remote_cluster_id;
    /** The remote instance's listen name, "ip:port". */
    const char *remote;
} kvx_kv_cluster_t;

/**
 * Link to each cluster (at most KVX_KV_MAX_CLUSTERS_PER_CALL). Each gets its
 * own status in @p statuses (may be NULL): KVX_OK, KVX_ERR_ALREADY_LINKED,
 * KVX_ERR_CLUSTER_MISMATCH (someone else listens there), KVX_ERR_TIMEOUT,
 * KVX_ERR_CONNECTION_REFUSED, ...
 * @return KVX_OK if every cluster linked, else the first failing status;
 *         KVX_ERR_TOO_MANY_CLUSTERS / KVX_ERR_INVALID_PARAM before any work.
 */
KVX_API kvx_status_t kvx_kv_link(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                                 int timeout_ms, kvx_status_t *statuses);

/**
 * Unlink clusters. Transfers still running on a link end with
 * KVX_ERR_CANCELED. @p force drops the local link even when the remote
 * cannot be reached; an unknown cluster gives KVX_ERR_NOT_LINKED (KVX_OK
 * with force). Only remote_cluster_id of each entry is used.
 */
KVX_API kvx_status_t kvx_kv_unlink(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                                   int timeout_ms, int force, kvx_status_t *statuses);

/**
 * Links of this instance: @p outgoing made by kvx_kv_link(), @p incoming
 * made by other instances to this one. Either may be NULL.
 */
KVX_API kvx_status_t kvx_kv_link_count(kvx_kv_h kv, size_t *outgoing, size_t *incoming);

/**
 * Change role and listen address. Refused with KVX_ERR_LINK_EXISTS while any
 * link exists, outgoing or incoming. Waits for calls running on the
 * instance in other threads (e.g. kvx_kv_notify_fetch) to return. @p listen: new "ip:port" to
 * listen on, or NULL to stop listening. Caches stay registered and keep their ids.
 */
KVX_API kvx_status_t kvx_kv_set_role(kvx_kv_h kv, kvx_kv_role_t role, const char *listen);

/* ----------------------------------------------------------------- caches */

enum kvx_kv_cache_desc_field {
    KVX_KV_CACHE_FIELD_PLACEMENT = KVX_BIT(0),   /**< placement */
    KVX_KV_CACHE_FIELD_NUM_TENSORS = KVX_BIT(1), /**< num_tensors (required) */
    KVX_KV_CACHE_FIELD_DTYPE = KVX_BIT(2),       /**< dtype (required) */
    KVX_KV_CACHE_FIELD_SHAPE = KVX_BIT(3)        /**< ndims, dims (required) */
};

/** Shape of a cache. */
typedef struct kvx_kv_cache_desc {
    uint64_t field_mask;
    /** Where the tensors live (default KVX_MEM_DEVICE). */
    kvx_mem_type_t placement;
    uint32_t num_tensors;
    kvx_dtype_t dtype;
    uint32_t ndims;
    int64_t dims[KVX_KV_MAX_DIMS];
} kvx_kv_cache_desc_t;

/**
 * Allocate a cache (device memory on the instance's device, or host memory)
 * and register it. Ids start at 1 and are never reused by an instance.
 * @param [out] tensor_addrs room for desc->num_tensors addresses; may be NULL
 */
KVX_API kvx_status_t kvx_kv_cache_allocate(kvx_kv_h kv, const kvx_kv_cache_desc_t *desc,
                                           int64_t *cache_id_p, void **tensor_addrs);

/** Free a cache from kvx_kv_cache_allocate() (KVX_ERR_BUSY while a transfer
 *  uses it). */
KVX_API kvx_status_t kvx_kv_cache_deallocate(kvx_kv_h kv, int64_t cache_id);

/** Register a cache over existing memory: @p tensor_addrs holds
 *  desc->num_tensors tensor addresses, each of the full tensor size. */
KVX_API kvx_status_t kvx_kv_cache_register(kvx_kv_h kv, const kvx_kv_cache_desc_t *desc,
                                           void *const *tensor_addrs, int64_t *cache_id_p);

/** Unregister a cache from kvx_kv_cache_register(); the memory stays the
 *  caller's. */
KVX_API kvx_status_t kvx_kv_cache_unregister(kvx_kv_h kv, int64_t cache_id);

/** Tensor addresses of a local cache (@p max entries of @p addrs). */
KVX_API kvx_status_t kvx_kv_cache_tensors(kvx_kv_h kv, int64_t cache_id, void **addrs, size_t max);

/* -------------------------------------------------------------- transfers */

/** A cache of a linked cluster, and an entry of it (batch index; 0 for
 *  block calls). */
typedef struct kvx_kv_remote_cache {
    uint64_t cluster_id;
    int64_t cache_id;
    uint32_t batch_index;
} kvx_kv_remote_cache_t;

enum kvx_kv_xfer_field {
    KVX_KV_XFER_FIELD_LAYERS = KVX_BIT(0),            /**< src/dst layer ranges */
    KVX_KV_XFER_FIELD_TENSORS_PER_LAYER = KVX_BIT(1), /**< tensors_per_layer */
    KVX_KV_XFER_FIELD_SIZE = KVX_BIT(2),              /**< size (contiguous calls) */
    KVX_KV_XFER_FIELD_TIMEOUT = KVX_BIT(3),           /**< timeout_ms */
    KVX_KV_XFER_FIELD_CHECKSUM = KVX_BIT(4)           /**< checksum */
};

/** Options of a transfer or copy (NULL: whole entries, all tensors). */
typedef struct kvx_kv_xfer_params {
    uint64_t field_mask;
    /** Inclusive layer ranges of the source and the destination; both the
     *  same length. Without the LAYERS bit every tensor moves, and both
     *  caches must have as many. */
    uint32_t src_layer_first, src_layer_last;
    uint32_t dst_layer_first, dst_layer_last;
    /** Tensors per layer (default 2: K and V); > 0, and with layer ranges it
     *  must divide both caches' num_tensors. */
    uint32_t tensors_per_layer;
    /** Bytes from the start of each entry (contiguous calls; default the
     *  whole entry; larger is KVX_ERR_SIZE_OUT_OF_RANGE). */
    uint64_t size;
    /** Deadline (default the instance's sync_timeout_ms). */
    int timeout_ms;
    /** Non-zero: pulls and pushes check their data end to end and fail with
     *  KVX_ERR_CHECKSUM on a difference (see kvx_xfer_params_t::checksum);
     *  local copies ignore it. */
    int checksum;
} kvx_kv_xfer_params_t;

/** Copy entry src->batch_index of a remote cache into entry @p batch_index
 *  of local cache @p cache_id. Every pull and push is one engine transfer of
 *  at most KVX_XFER_MAX_DESCS spans (tensors x block runs); a larger one is
 *  refused with KVX_ERR_RESOURCE_EXHAUSTED before any byte moves. */
KVX_API kvx_status_t kvx_kv_pull_cache(kvx_kv_h kv, const kvx_kv_remote_cache_t *src,
                                       int64_t cache_id, uint32_t batch_index,
                                       const kvx_kv_xfer_params_t *params);

/** Copy remote blocks src_blocks[k] into local blocks dst_blocks[k]. Runs of
 *  consecutive blocks on both sides move as one piece. The lists must have
 *  the same length (else KVX_ERR_BLOCK_LIST_MISMATCH). */
KVX_API kvx_status_t kvx_kv_pull_blocks(kvx_kv_h kv, const kvx_kv_remote_cache_t *src,
                                        int64_t cache_id, const uint64_t *src_blocks,
                                        size_t src_count, const uint64_t *dst_blocks,
                                        size_t dst_count, const kvx_kv_xfer_params_t *params);

/** Copy entry @p batch_index of local cache @p cache_id into the remote
 *  entry dst->batch_index. */
KVX_API kvx_status_t kvx_kv_push_cache(kvx_kv_h kv, int64_t cache_id, uint32_t batch_index,
                                       const kvx_kv_remote_cache_t *dst,
                                       const kvx_kv_xfer_params_t *params);

/** Copy local blocks src_blocks[k] into remote blocks dst_blocks[k]. */
KVX_API kvx_status_t kvx_kv_push_blocks(kvx_kv_h kv, int64_t cache_id,
                                        const kvx_kv_remote_cache_t *dst,
                                        const uint64_t *src_blocks, size_t src_count,
                                        const uint64_t *dst_blocks, size_t dst_count,
                                        const kvx_kv_xfer_params_t *params);

/** Local copy of one entry between caches of this instance. */
KVX_API kvx_status_t kvx_kv_copy_cache(kvx_kv_h kv, int64_t src_cache_id, uint32_t src_batch,
                                       int64_t dst_cache_id, uint32_t dst_batch,
                                       const kvx_kv_xfer_params_t *params);

/**
 * Local copy of blocks: src_blocks[k] of @p src_cache_id goes to
 * dst_lists[j][k] of @p dst_cache_id for every list j (one source list to
 * several destination lists, e.g. to fork a prefix). Every dst_counts[j]
 * must equal @p src_count; 1 <= @p num_lists <= KVX_KV_MAX_COPY_LISTS
 * (else KVX_ERR_INVALID_PARAM).
 */
#define KVX_KV_MAX_COPY_LISTS 65536
KVX_API kvx_status_t kvx_kv_copy_blocks(kvx_kv_h kv, int64_t src_cache_id, int64_t dst_cache_id,
                                        const uint64_t *src_blocks, size_t src_count,
                                        const uint64_t *const *dst_lists, const size_t *dst_counts,
                                        size_t num_lists, const kvx_kv_xfer_params_t *params);

/* ---------------------------------------------------------- notifications */

/** Send a notification to a linked cluster (after the data of every earlier
 *  push to it). */
KVX_API kvx_status_t kvx_kv_notify(kvx_kv_h kv, uint64_t cluster_id, const char *name,
                                   const void *msg, size_t msg_len);

/** Wait up to @p timeout_ms for a notification, then take all queued ones
 *  (free with kvx_notify_free()). KVX_ERR_TIMEOUT if none came. Those from
 *  an earlier process at an address this instance is linked to are left
 *  out, as by kvx_notify_fetch(). */
KVX_API kvx_status_t kvx_kv_notify_fetch(kvx_kv_h kv, int timeout_ms, kvx_notification_t **list_p,
                                         size_t *count_p);

KVX_END_DECLS

#endif /* KVX_KV_H */

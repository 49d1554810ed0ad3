/**
 * @file engine.h
 * @brief The transfer engine: one-sided READ/WRITE between registered memory
 *        of two processes, connections, notifications.
 *
 * An engine is named by where it lives: "ip" (client only) or "ip:port"
 * (also listens; port 0 picks a free port, see kvx_engine_name()). IPv6
 * addresses are written "[addr]" or "[addr]:port". Host names are refused:
 * kvx never blocks on name resolution.
 *
 * A link is directed: the engine that calls kvx_engine_connect() (the
 * initiator) reads and writes the memory of the remote (the target) and sends
 * it notifications. The target serves those requests on its own I/O threads,
 * without any call from its application, and checks every address against its
 * own registrations whatever the initiator claims.
 *
 * Timeouts are in milliseconds. KVX_TIMEOUT_DEFAULT (0) means "the engine's
 * default" (see kvx_engine_params_t). Negative values, and values over one
 * hour (3600000), are refused with KVX_ERR_INVALID_PARAM, so that no call can
 * be made to wait for ever by mistake; the same range holds for the timeouts
 * in kvx_engine_params_t (1..3600000). kvx_xfer_wait() and kvx_notify_wait()
 * take any non-negative wait, as they only wait and never hold anything.
 *
 * Thread safety: every function may be called from any thread, concurrently,
 * except kvx_engine_destroy(), which must be the last call on an engine.
 */
#ifndef KVX_ENGINE_H
#define KVX_ENGINE_H

#include <kvx/common.h>
#include <kvx/status.h>

KVX_BEGIN_DECLS

/** An engine (opaque). */
typedef struct kvx_engine *kvx_engine_h;

/** A memory registration (opaque; checked by lookup, so a stale handle is
 *  reported, not dereferenced). */
typedef struct kvx_mem *kvx_mem_h;

/** An asynchronous transfer. An id names one transfer: a slot is reused only
 *  with a new generation, so a stale id is reported, never confused. */
typedef uint64_t kvx_xfer_id_t;

/** Longest engine name, including the terminating NUL. */
#define KVX_ENGINE_NAME_MAX 64

/** Default limits; each can be changed in kvx_engine_params_t. */
#define KVX_DEFAULT_CONNECT_TIMEOUT_MS  3000
#define KVX_DEFAULT_TRANSFER_TIMEOUT_MS 10000
#define KVX_DEFAULT_NOTIFY_TIMEOUT_MS   3000
#define KVX_DEFAULT_MAX_OUTSTANDING     4096
#define KVX_DEFAULT_MAX_NOTIFY_QUEUE    4096
#define KVX_DEFAULT_BUSY_POLL_US        50
#define KVX_DEFAULT_PEER_TIMEOUT_MS     5000

/** Bounds of a shared secret (kvx_engine_params_t::auth_secret), in bytes. */
#define KVX_AUTH_SECRET_MIN 16
#define KVX_AUTH_SECRET_MAX 1024

/** Bounds of notifications (bytes, without NUL). */
#define KVX_NOTIFY_NAME_MAX 1024
#define KVX_NOTIFY_MSG_MAX  1024

enum kvx_engine_param_field {
    KVX_ENGINE_PARAM_FIELD_NAME = KVX_BIT(0),             /**< name */
    KVX_ENGINE_PARAM_FIELD_IO_THREADS = KVX_BIT(1),       /**< io_threads */
    KVX_ENGINE_PARAM_FIELD_CONNECT_TIMEOUT = KVX_BIT(2),  /**< connect_timeout_ms */
    KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT = KVX_BIT(3), /**< transfer_timeout_ms */
    KVX_ENGINE_PARAM_FIELD_NOTIFY_TIMEOUT = KVX_BIT(4),   /**< notify_timeout_ms */
    KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING = KVX_BIT(5),  /**< max_outstanding */
    KVX_ENGINE_PARAM_FIELD_MAX_NOTIFY_QUEUE = KVX_BIT(6), /**< max_notify_queue */
    KVX_ENGINE_PARAM_FIELD_BUSY_POLL = KVX_BIT(7),        /**< busy_poll_us */
    KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT = KVX_BIT(8),     /**< peer_timeout_ms */
    KVX_ENGINE_PARAM_FIELD_AUTH_SECRET = KVX_BIT(9)       /**< auth_secret, auth_secret_len */
};

/**
 * Creation parameters. Set a field's bit in @c field_mask to use it; unset
 * fields take their defaults. Unknown bits are refused (KVX_ERR_UNSUPPORTED),
 * so a program built for a newer kvx fails clearly on an older one.
 */
typedef struct kvx_engine_params {
    uint64_t field_mask;
    /** Required. "ip", "ip:port", "[ip6]" or "[ip6]:port". */
    const char *name;
    /** I/O threads serving this engine's connections (1..64, default 1). */
    unsigned io_threads;
    /** Default for kvx_engine_connect() (default 3000 ms). */
    unsigned connect_timeout_ms;
    /** Default deadline of a transfer, sync or async (default 10000 ms). */
    unsigned transfer_timeout_ms;
    /** Default for kvx_notify_send() (default 3000 ms). */
    unsigned notify_timeout_ms;
    /** Async transfers not yet reported finished (default 4096). */
    unsigned max_outstanding;
    /** Received notifications not yet fetched (default 4096). */
    unsigned max_notify_queue;
    /**
     * How long a sync transfer over tcp polls its socket for the reply before
     * it sleeps (0..10000 µs, default 50). Polling saves the cost of waking
     * a sleeping thread (tens of µs on a VM) on small transfers; 0 never
     * polls, for callers that must not spend CPU while they wait.
     */
    unsigned busy_poll_us;
    /**
     * A link whose remote has sent nothing for this long is closed, in
     * either direction (500..3600000 ms, default 5000); each end states its
     * value in the handshake and a link uses the smaller. Both ends send a
     * heartbeat when a link is quiet, so only a remote that crashed, was
     * stopped, or lost its network stays silent. Pending transfers on such a
     * link end FAILED with KVX_ERR_PEER_UNRESPONSIVE (or TIMEOUT if their
     * own deadline came first); a target drops what an unresponsive
     * initiator had pinned, and never writes data that reaches it after
     * the link was declared dead.
     */
    unsigned peer_timeout_ms;
    /**
     * A shared secret (KVX_AUTH_SECRET_MIN..MAX = 16..1024 bytes; copied). Every link to or from
     * this engine then starts with a challenge-response (HMAC-SHA256 over fresh nonces, both ways):
     * a remote that does not prove the same secret is refused before it can touch memory, and so is
     * a remote that does not ask for it. Links fail with KVX_ERR_AUTH. The secret authenticates the
     * link; it does not encrypt data.
     */
    const void *auth_secret;
    size_t auth_secret_len;
} kvx_engine_params_t;

/**
 * Create an engine. A name with a port binds and listens at once.
 * @return KVX_OK; KVX_ERR_INVALID_PARAM (bad name or values; see
 *         kvx_last_error()); KVX_ERR_UNSUPPORTED (unknown field bit);
 *         KVX_ERR_IO (bind/listen failed, e.g. port in use).
 */
KVX_API kvx_status_t kvx_engine_create(const kvx_engine_params_t *params, kvx_engine_h *engine_p);

/**
 * Destroy an engine: fails every pending transfer (KVX_ERR_SHUTDOWN), closes
 * every connection, joins the I/O threads. Registrations are dropped.
 */
KVX_API void kvx_engine_destroy(kvx_engine_h engine);

/**
 * The engine's name in canonical form. For a listening engine created with
 * port 0 this holds the port actually bound. Valid until destroy.
 */
KVX_API const char *kvx_engine_name(kvx_engine_h engine);

/* ---------------------------------------------------------------- memory */

typedef enum kvx_mem_type {
    KVX_MEM_HOST = 0,  /**< ordinary process memory */
    KVX_MEM_DEVICE = 1 /**< memory from kvx_device_malloc() */
} kvx_mem_type_t;

/** Access a remote peer has to a registration. */
typedef enum kvx_mem_access {
    KVX_MEM_ACCESS_READ_WRITE = 0,
    KVX_MEM_ACCESS_READ_ONLY = 1
} kvx_mem_access_t;

enum kvx_mem_param_field {
    KVX_MEM_PARAM_FIELD_ADDRESS = KVX_BIT(0), /**< address */
    KVX_MEM_PARAM_FIELD_LENGTH = KVX_BIT(1),  /**< length */
    KVX_MEM_PARAM_FIELD_TYPE = KVX_BIT(2),    /**< mem_type */
    KVX_MEM_PARAM_FIELD_TAG = KVX_BIT(3),     /**< tag */
    KVX_MEM_PARAM_FIELD_ACCESS = KVX_BIT(4)   /**< access */
};

/** What to register. address and length are required. */
typedef struct kvx_mem_params {
    uint64_t field_mask;
    void *address;
    size_t length;
    /** Default KVX_MEM_HOST. Device memory must come from the device API. */
    kvx_mem_type_t mem_type;
    /** Opaque value shown to peers by kvx_engine_remote_mem() (default 0). */
    uint64_t tag;
    /** What peers may do (default read-write). */
    kvx_mem_access_t access;
} kvx_mem_params_t;

/**
 * Register memory for transfers. Registering the same (address, length,
 * type) again returns the same handle and counts one more reference; each
 * reference needs its own kvx_mem_deregister(); with another tag or access
 * it is refused (KVX_ERR_ALREADY_EXISTS). Any other overlap with an
 * existing registration is refused (KVX_ERR_OVERLAP). Peers see a
 * registration as soon as this returns, also over links made earlier.
 */
KVX_API kvx_status_t kvx_mem_register(kvx_engine_h engine, const kvx_mem_params_t *params,
                                      kvx_mem_h *mem_p);

/**
 * Drop one reference to a registration. Refused with KVX_ERR_BUSY while a
 * pending transfer, local or served for a peer, uses the memory. A peer's
 * READ holds the memory until its last byte went into the socket, which can
 * be just after the peer saw it complete: retry BUSY briefly. An unknown
 * handle is KVX_ERR_NOT_FOUND.
 */
KVX_API kvx_status_t kvx_mem_deregister(kvx_engine_h engine, kvx_mem_h mem);

/** A registration of a remote engine, as it reported it. */
typedef struct kvx_remote_mem {
    uint64_t address;
    uint64_t length;
    uint64_t tag;
    kvx_mem_type_t mem_type;
    kvx_mem_access_t access;
} kvx_remote_mem_t;

/**
 * Fetch the current registrations of a connected remote, in address order.
 * @param [out] mems     array of @p max entries (may be NULL if max is 0)
 * @param [out] count_p  total number reported (may exceed @p max; a remote
 *                       reports at most 65536)
 */
KVX_API kvx_status_t kvx_engine_remote_mem(kvx_engine_h engine, const char *remote,
                                           kvx_remote_mem_t *mems, size_t max, size_t *count_p,
                                           int timeout_ms);

/* ----------------------------------------------------------- connections */

/** State of the link from this engine to one remote. */
typedef enum kvx_peer_state {
    KVX_PEER_NOT_CONNECTED = 0,  /**< no link (also after disconnect) */
    KVX_PEER_CONNECTING = 1,     /**< connect in progress */
    KVX_PEER_CONNECTED = 2,      /**< usable */
    KVX_PEER_CONNECT_FAILED = 3, /**< connect ended in error; see error */
    KVX_PEER_DISCONNECTING = 4,  /**< disconnect in progress */
    KVX_PEER_BROKEN = 5          /**< was connected, then the link failed; transfers
                                      fail until kvx_engine_connect() again */
} kvx_peer_state_t;

/** One remote, as reported by kvx_engine_peers(). */
typedef struct kvx_peer_info {
    char name[KVX_ENGINE_NAME_MAX];
    kvx_peer_state_t state;
    /** Why the link is in CONNECT_FAILED or BROKEN (else KVX_OK). */
    kvx_status_t error;
} kvx_peer_info_t;

/**
 * Connect to a listening remote and wait until the link is usable.
 * Connecting to an engine already connected gives KVX_ERR_ALREADY_CONNECTED
 * (the link stays usable); connecting to a BROKEN or CONNECT_FAILED remote
 * replaces the old link. Connecting to itself is KVX_ERR_INVALID_PARAM.
 * @return KVX_OK, KVX_ERR_TIMEOUT, KVX_ERR_CONNECTION_REFUSED (nobody
 *         listens), KVX_ERR_VERSION_MISMATCH, ...
 */
KVX_API kvx_status_t kvx_engine_connect(kvx_engine_h engine, const char *remote, int timeout_ms);

/**
 * Start connecting and return at once; follow it with kvx_engine_peer_state().
 * The attempt ends within @p timeout_ms. Connect and disconnect requests for
 * one remote take effect in the order they are made.
 */
KVX_API kvx_status_t kvx_engine_connect_async(kvx_engine_h engine, const char *remote,
                                              int timeout_ms);

/**
 * Close the link to a remote. Pending transfers on it end FAILED
 * (KVX_ERR_CANCELED) before this returns.
 * @return KVX_OK, KVX_ERR_NOT_CONNECTED, KVX_ERR_TIMEOUT
 */
KVX_API kvx_status_t kvx_engine_disconnect(kvx_engine_h engine, const char *remote, int timeout_ms);

/** Start disconnecting and return at once. */
KVX_API kvx_status_t kvx_engine_disconnect_async(kvx_engine_h engine, const char *remote,
                                                 int timeout_ms);

/**
 * State of the link to one remote (KVX_PEER_NOT_CONNECTED if unknown).
 * @param [out] error_p reason of a failed state; may be NULL
 */
KVX_API kvx_status_t kvx_engine_peer_state(kvx_engine_h engine, const char *remote,
                                           kvx_peer_state_t *state_p, kvx_status_t *error_p);

/**
 * The epoch of the current link to @p remote: a number that is different for
 * every link this engine makes (a reconnect after BROKEN gets a new one), and
 * the random instance id of the remote engine at the other end, which changes
 * when the remote process restarts. Transfers and notifications belong to the
 * link they were made on and never cross to a newer one.
 * @param [out] epoch_p link epoch (0 if there is no link); may be NULL
 * @param [out] remote_instance_p remote's instance id (0 if not connected);
 *              may be NULL
 * @return KVX_OK, KVX_ERR_NOT_CONNECTED (no link was ever made to it)
 */
KVX_API kvx_status_t kvx_engine_peer_epoch(kvx_engine_h engine, const char *remote,
                                           uint64_t *epoch_p, uint64_t *remote_instance_p);

/**
 * Snapshot of all remotes this engine tracks.
 * @param [out] count_p number tracked (may exceed @p max; only @p max are written)
 */
KVX_API kvx_status_t kvx_engine_peers(kvx_engine_h engine, kvx_peer_info_t *infos, size_t max,
                                      size_t *count_p);

/**
 * Number of remotes currently linked to this engine (links they made with
 * kvx_engine_connect(), handshake done). Drops when a remote disconnects or
 * its link fails.
 */
KVX_API kvx_status_t kvx_engine_incoming_links(kvx_engine_h engine, size_t *count_p);

/* ------------------------------------------------------------- transfers */

typedef enum kvx_op {
    KVX_OP_READ = 0, /**< remote memory -> local memory */
    KVX_OP_WRITE = 1 /**< local memory -> remote memory */
} kvx_op_t;

/** One contiguous piece of a transfer. */
typedef struct kvx_xfer_desc {
    void *local_addr;     /**< inside a local registration */
    uint64_t remote_addr; /**< inside a registration of the remote */
    size_t length;        /**< > 0 */
} kvx_xfer_desc_t;

/** Longest descriptor list of one transfer. */
#define KVX_XFER_MAX_DESCS (1u << 20)

enum kvx_xfer_param_field {
    KVX_XFER_PARAM_FIELD_TIMEOUT = KVX_BIT(0),    /**< timeout_ms */
    KVX_XFER_PARAM_FIELD_USER_DATA = KVX_BIT(1),  /**< user_data */
    KVX_XFER_PARAM_FIELD_REMOTE_TAG = KVX_BIT(2), /**< remote_tag */
    KVX_XFER_PARAM_FIELD_CHECKSUM = KVX_BIT(3)    /**< checksum */
};

/** Optional per-transfer parameters (NULL = all defaults). */
typedef struct kvx_xfer_params {
    uint64_t field_mask;
    /** Deadline (default: the engine's transfer timeout). */
    int timeout_ms;
    /** Echoed by kvx_xfer_query(). */
    void *user_data;
    /** Every remote range must lie in registrations made with this tag;
     *  the target refuses others (KVX_ERR_REMOTE_ACCESS). Lets a caller name
     *  "the memory registered as X", so memory re-registered for something
     *  else in between is never touched. */
    uint64_t remote_tag;
    /**
     * Non-zero: check the data end to end. The side that holds the source
     * hashes it (xxHash XXH3-64) as it sends, the destination hashes what
     * it received, and a difference fails the transfer with KVX_ERR_CHECKSUM
     * (the destination then holds bytes that must not be used; the link
     * stays up). Costs one extra read of the data on each side. On the
     * same host such transfers go over the socket, so that a second party
     * checks the copy.
     */
    int checksum;
} kvx_xfer_params_t;

/** Where an asynchronous transfer stands. */
typedef enum kvx_xfer_state {
    KVX_XFER_WAITING = 0,
    KVX_XFER_COMPLETED = 1,
    KVX_XFER_FAILED = 2,
    KVX_XFER_TIMEOUT = 3
} kvx_xfer_state_t;

/**
 * Transfer and wait. Every descriptor is checked against the local and the
 * remote registrations before any byte moves.
 * @return KVX_OK; KVX_ERR_INVALID_PARAM (empty list, zero length, NULL);
 *         KVX_ERR_INVALID_ADDRESS (a local range not registered);
 *         KVX_ERR_REMOTE_ACCESS (the remote refused a range);
 *         KVX_ERR_NOT_CONNECTED; KVX_ERR_TIMEOUT (the link is then BROKEN,
 *         since bytes may still be in flight); KVX_ERR_CONNECTION_LOST.
 */
KVX_API kvx_status_t kvx_xfer_sync(kvx_engine_h engine, const char *remote, kvx_op_t op,
                                   const kvx_xfer_desc_t *descs, size_t count,
                                   const kvx_xfer_params_t *params);

/**
 * Start a transfer and return without waiting for its data. The descriptor
 * array may be reused when this returns; the memory it names may not until
 * the transfer ends. The same checks as kvx_xfer_sync() run before it is
 * queued: when the remote's registration table is not cached yet (first
 * transfer on a link) or does not cover a remote range, it is fetched first,
 * a round trip bounded by the transfer's deadline.
 * @return as kvx_xfer_sync(), plus KVX_ERR_RESOURCE_EXHAUSTED when
 *         max_outstanding transfers are not yet reported finished.
 */
KVX_API kvx_status_t kvx_xfer_submit(kvx_engine_h engine, const char *remote, kvx_op_t op,
                                     const kvx_xfer_desc_t *descs, size_t count,
                                     const kvx_xfer_params_t *params, kvx_xfer_id_t *id_p);

/**
 * State of one transfer. Once a finished state (COMPLETED, FAILED, TIMEOUT)
 * has been reported, the id is released: asking again gives
 * KVX_ERR_NOT_FOUND, with *state_p set to KVX_XFER_FAILED so that a caller
 * that ignores the status does not wait on the id. Every transfer reaches a
 * finished state by its deadline.
 * @param [out] error_p why it FAILED (KVX_OK otherwise); may be NULL
 */
KVX_API kvx_status_t kvx_xfer_status(kvx_engine_h engine, kvx_xfer_id_t id,
                                     kvx_xfer_state_t *state_p, kvx_status_t *error_p);

/** Wait up to @p timeout_ms for a transfer to finish, then as kvx_xfer_status().
 *  Returns KVX_OK with state WAITING if it did not finish in time. */
KVX_API kvx_status_t kvx_xfer_wait(kvx_engine_h engine, kvx_xfer_id_t id, int timeout_ms,
                                   kvx_xfer_state_t *state_p, kvx_status_t *error_p);

/**
 * Cancel an async transfer, and wait until none of its bytes can move any
 * more, here or at the remote: when this returns KVX_OK, the memory the
 * transfer named may be reused at once, on both sides.
 *
 * A transfer whose frames were not sent yet, and a READ, end at once; other
 * transfers on the link go on. A WRITE that began to send waits (at most
 * @p timeout_ms) until the remote confirms the frames that began, then the
 * rest is dropped. If that confirmation does not come in time, the link is
 * closed and becomes BROKEN, and this returns KVX_ERR_TIMEOUT: the remote's
 * memory may still be written by bytes already sent, until the remote
 * notices the link is gone (its peer_timeout_ms).
 *
 * The transfer then reports FAILED with KVX_ERR_CANCELED, unless it finished
 * first (its own state is kept); either way its id stays valid until it is
 * reported, as for any transfer.
 * @return KVX_OK; KVX_ERR_NOT_FOUND (no such live id); KVX_ERR_TIMEOUT
 */
KVX_API kvx_status_t kvx_xfer_cancel(kvx_engine_h engine, kvx_xfer_id_t id, int timeout_ms);

/** One entry of kvx_xfer_query(). */
typedef struct kvx_xfer_result {
    kvx_xfer_id_t id;
    void *user_data;
    kvx_xfer_state_t state;
    kvx_status_t error;
} kvx_xfer_result_t;

/** Flags of kvx_xfer_query(). */
#define KVX_XFER_QUERY_SKIP_WAITING KVX_BIT(0)

/**
 * Report live transfers in submission order, at most @p max. Finished ones
 * are released as they are reported. With KVX_XFER_QUERY_SKIP_WAITING,
 * waiting ones are left out of @p results.
 */
KVX_API kvx_status_t kvx_xfer_query(kvx_engine_h engine, kvx_xfer_result_t *results, size_t max,
                                    size_t *count_p, uint64_t flags);

/* --------------------------------------------------------- notifications */

/** A received notification. Strings are NUL-terminated. */
typedef struct kvx_notification {
    char *name;
    char *msg;
    size_t msg_len;
    /** Name the sending engine gave in its handshake (its own engine name,
     *  e.g. "10.0.0.5" or "10.0.0.5:26000"); informative, not authenticated. */
    char *sender;
    /** The sending engine's random instance id: it changes when the sender
     *  restarts. It is what kvx_engine_peer_epoch() reports as the remote
     *  instance of a link to that sender. */
    uint64_t sender_instance;
} kvx_notification_t;

/**
 * Send a notification over the link to @p remote and wait for its receipt.
 * The remote processes it after every request submitted before it on that
 * link: the data of earlier WRITEs is in its memory when the notification
 * is queued there (earlier READs were checked and started, but their bytes
 * are copied as they are sent). @p name is a string of at most KVX_NOTIFY_NAME_MAX bytes;
 * @p msg has at most KVX_NOTIFY_MSG_MAX bytes.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM, KVX_ERR_NOT_CONNECTED,
 *         KVX_ERR_TIMEOUT, KVX_ERR_REMOTE_FULL (remote queue full; nothing queued)
 */
KVX_API kvx_status_t kvx_notify_send(kvx_engine_h engine, const char *remote, const char *name,
                                     const void *msg, size_t msg_len, int timeout_ms);

/**
 * Take every queued notification, in arrival order, and clear the queue.
 * Epochs: a notification whose sender name is a remote this engine is
 * linked to now (see kvx_engine_peer_epoch), but whose sender_instance is
 * not that link's remote instance, is left out (and freed, with a log line):
 * it was sent by an earlier process at that address, or by one that only
 * claims the name. Notifications from senders this engine has no link to
 * are all returned; compare sender_instance to tell processes apart.
 * @param [out] list_p array to free with kvx_notify_free() (NULL if none)
 */
KVX_API kvx_status_t kvx_notify_fetch(kvx_engine_h engine, kvx_notification_t **list_p,
                                      size_t *count_p);

/** Wait up to @p timeout_ms until at least one notification is queued.
 *  @return KVX_OK or KVX_ERR_TIMEOUT. */
KVX_API kvx_status_t kvx_notify_wait(kvx_engine_h engine, int timeout_ms);

/** Free what kvx_notify_fetch() returned. */
KVX_API void kvx_notify_free(kvx_notification_t *list, size_t count);

/* ------------------------------------------------------------ capability */

typedef enum kvx_feature {
    KVX_FEATURE_AUTO_CONNECT = 0,  /**< transfers connect on demand (no) */
    KVX_FEATURE_CLIENT_SERVER = 1, /**< client-only engines (yes) */
    KVX_FEATURE_ASYNC_CONNECT = 2, /**< kvx_engine_connect_async (yes) */
    KVX_FEATURE_BATCH_STATUS = 3,  /**< kvx_xfer_query (yes) */
    KVX_FEATURE_IPV6 = 4,          /**< IPv6 engine names (yes) */
    KVX_FEATURE_TRANSPORT_TCP = 5, /**< tcp transport (yes) */
    KVX_FEATURE_TRANSPORT_SHM = 6, /**< same-host path (KVX_TRANSPORT) */
    KVX_FEATURE_DEVICE_CUDA = 7,   /**< built with CUDA */
    KVX_FEATURE_LIVE_MEM_TABLE = 8 /**< late registrations visible to peers (yes) */
} kvx_feature_t;

/**
 * Whether this build supports a feature. Needs no engine.
 * @param [out] supported_p 1 or 0; unknown features are 0 with KVX_OK
 * @return KVX_OK, or KVX_ERR_INVALID_PARAM for a negative feature
 */
KVX_API kvx_status_t kvx_capability(int feature, int *supported_p);

KVX_END_DECLS

#endif /* KVX_ENGINE_H */

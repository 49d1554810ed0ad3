/*
 * The seam between the engine and a transport. A transport is one ops table
 * (kvx_tcp_transport today; shm and UCX later). The engine owns names,
 * registrations, request ids and states; a transport owns connections and
 * threads and moves bytes. It reports back through the upcalls, which it
 * calls from its own threads without holding any of its locks that the
 * engine could need.
 */
#ifndef KVX_TRANSPORT_H
#define KVX_TRANSPORT_H

#include <kvx/engine.h>

#include "transport/wire.h"
#include "util/addr.h"

typedef struct kvx_tp kvx_tp_t;           /* one transport instance per engine */
typedef struct kvx_tp_conn kvx_tp_conn_t; /* one outgoing link */

typedef enum kvx_tp_op_kind {
    KVX_TP_OP_READ = 0,
    KVX_TP_OP_WRITE = 1,
    KVX_TP_OP_NOTIFY = 2,
    KVX_TP_OP_MEM_QUERY = 3
} kvx_tp_op_kind_t;

/* One operation on an outgoing link. Owned by the engine; the transport
 * calls done() exactly once, from one of its threads, by the deadline. After
 * done() the transport no longer touches the op or any memory it names. */
typedef struct kvx_tp_op {
    kvx_tp_op_kind_t kind;
    uint64_t deadline_ns;
    /* READ / WRITE: descriptors, already checked against registrations. */
    const kvx_xfer_desc_t *descs;
    size_t count;
    /* READ / WRITE: the target refuses ranges outside registrations with
     * this tag (if has_remote_tag). */
    uint64_t remote_tag;
    int has_remote_tag;
    /* READ / WRITE: verify an XXH3-64 of the data end to end. */
    int checksum;
    /* NOTIFY */
    const char *name;
    size_t name_len;
    const void *msg;
    size_t msg_len;
    /* MEM_QUERY result: array allocated by the transport (free()), count. */
    kvx_wire_mem_entry_t *mem_entries;
    uint32_t mem_count;
    void (*done)(struct kvx_tp_op *op, kvx_status_t status);
    void *user;
    /* The submitting thread waits for done() (a sync transfer): the
     * transport may use that thread to receive the reply itself. */
    int caller_waits;
    /* transport private */
    struct kvx_tp_op *tp_next, *tp_prev;
    size_t tp_frames_left;
    kvx_status_t tp_status;
} kvx_tp_op_t;

/* What the engine does for the transport. Every one may be called from a
 * transport thread; @p ctx is the engine. */
typedef struct kvx_tp_upcalls {
    void *ctx;
    /* Check an access a remote asks for and pin the memory (deregistration is
     * refused while pinned). On success *pin_p is released by unpin(). */
    kvx_status_t (*pin)(void *ctx, int write, const kvx_wire_desc_t *descs, uint32_t count,
                        const uint64_t *tag, void **pin_p);
    void (*unpin)(void *ctx, void *pin);
    /* Queue a received notification, with the sender's instance id.
     * KVX_ERR_REMOTE_FULL if the queue is full. */
    kvx_status_t (*deliver_notify)(void *ctx, const char *sender, uint64_t sender_instance,
                                   const char *name, size_t name_len, const char *msg,
                                   size_t msg_len);
    /* Snapshot the registration table; malloc()ed array, caller frees. */
    kvx_status_t (*mem_table)(void *ctx, kvx_wire_mem_entry_t **entries_p, uint32_t *count_p);
    /* An outgoing link changed: connected (status OK, up=1), or failed or
     * closed (up=0, status says why). @p peer_ctx is what connect() got. */
    void (*link_event)(void *ctx, void *peer_ctx, kvx_tp_conn_t *conn, int up, kvx_status_t status);
    /* A remote's link to this engine finished its handshake (up=1) or
     * closed after it (up=0). */
    void (*incoming_event)(void *ctx, int up);
} kvx_tp_upcalls_t;

typedef struct kvx_tp_params {
    const kvx_addr_t *listen; /* NULL: client only */
    unsigned io_threads;
    unsigned busy_poll_us;    /* sync callers poll this long before sleeping */
    unsigned peer_timeout_ms; /* silence after which a link is dead */
    const void *secret;       /* shared secret (copied), or NULL */
    size_t secret_len;
    uint64_t instance; /* random id of this engine, to detect self-connects */
} kvx_tp_params_t;

typedef struct kvx_transport_ops {
    const char *name;
    kvx_status_t (*create)(const kvx_tp_params_t *params, const kvx_tp_upcalls_t *up,
                           kvx_tp_t **tp_p);
    /* Stops threads; every pending op is done() with KVX_ERR_SHUTDOWN first. */
    void (*destroy)(kvx_tp_t *tp);
    /* Bound listen address (valid if listening). */
    kvx_status_t (*local_addr)(kvx_tp_t *tp, kvx_addr_t *addr);
    /* Start connecting; link_event() reports the end by @p deadline_ns.
     * @p local_name is sent to the remote in the handshake. */
    kvx_status_t (*connect)(kvx_tp_t *tp, const kvx_addr_t *remote, const char *local_name,
                            uint64_t deadline_ns, void *peer_ctx, kvx_tp_conn_t **conn_p);
    /* Close a link: pending ops end with @p reason, then link_event(up=0). */
    void (*close)(kvx_tp_conn_t *conn, kvx_status_t reason);
    /* References: connect() returns one; every retain() needs a release(). */
    void (*retain)(kvx_tp_conn_t *conn);
    void (*release)(kvx_tp_conn_t *conn);
    /* Queue an op; KVX_OK means done() will be called. */
    kvx_status_t (*submit)(kvx_tp_conn_t *conn, kvx_tp_op_t *op);
    /* Cancel a submitted op. KVX_OK: it has ended (done() was called, here
     * or before) and none of its bytes moves any more. KVX_INPROGRESS: a
     * WRITE whose frames began to leave ends with done(KVX_ERR_CANCELED) once
     * the target acknowledged them; close() the link to give up on that. */
    kvx_status_t (*cancel)(kvx_tp_conn_t *conn, kvx_tp_op_t *op);
    /* The remote engine's instance id, from its handshake (0 before). */
    uint64_t (*peer_instance)(kvx_tp_conn_t *conn);
    /* A registration appears / goes (for paths where peers reach memory
     * without this side's CPU). mem_add returns a handle, 0 for none;
     * mem_remove may refuse with KVX_ERR_BUSY while a peer uses it. */
    uint32_t (*mem_add)(kvx_tp_t *tp, uint64_t addr, uint64_t len, uint64_t tag, int read_only);
    kvx_status_t (*mem_remove)(kvx_tp_t *tp, uint32_t handle);
} kvx_transport_ops_t;

extern const kvx_transport_ops_t kvx_tcp_transport;

#endif

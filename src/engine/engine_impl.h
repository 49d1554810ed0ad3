/* Engine internals shared by engine.c, memreg.c, xfer.c and notify.c. */
#ifndef KVX_ENGINE_IMPL_H
#define KVX_ENGINE_IMPL_H

#include <kvx/engine.h>
#include <pthread.h>

#include "transport/transport.h"
#include "util/addr.h"
#include "util/error.h"
#include "util/time.h"

struct kvx_mem {
    uint64_t id; /* the handle users hold: never reused, so a stale one misses */
    uintptr_t addr;
    size_t len;
    kvx_mem_type_t type;
    kvx_mem_access_t access;
    uint64_t tag;
    unsigned user_refs; /* kvx_mem_register() calls not yet deregistered */
    unsigned pins;      /* transfers in flight that touch it */
    uint32_t tp_handle; /* the transport's handle (same-host path), 0 if none */
};

/* Registrations a transfer pinned. */
typedef struct kvx_pin {
    size_t count;
    struct kvx_mem *mems[];
} kvx_pin_t;

typedef struct kvx_peer {
    struct kvx_peer *next;
    char name[KVX_ENGINE_NAME_MAX];
    kvx_addr_t addr;
    kvx_peer_state_t state;
    kvx_status_t error;
    kvx_tp_conn_t *conn; /* while CONNECTING, CONNECTED, DISCONNECTING */
    int connect_queued;  /* connect asked for while DISCONNECTING */
    unsigned queued_timeout_ms;
    kvx_wire_mem_entry_t *rtable; /* last memory table the remote sent */
    uint32_t rcount;
    int rtable_valid;
    uint64_t epoch;           /* of the current link, 0 while there is none */
    uint64_t remote_instance; /* the remote engine's id, from the handshake */
} kvx_peer_t;

typedef struct kvx_xfer {
    kvx_tp_op_t op;
    struct kvx_engine *engine;
    kvx_xfer_id_t id;
    uint32_t slot;
    int async;
    kvx_xfer_state_t state;
    kvx_status_t error;
    void *user_data;
    kvx_pin_t *local_pin;
    kvx_xfer_desc_t *desc_copy;
    struct kvx_xfer *next, *prev; /* submission order (async only) */
    kvx_tp_conn_t *conn;          /* async: its link (a reference), for cancel */
    unsigned holders;             /* threads using it outside the lock (submit, cancel) */
    int submitting;               /* published, not yet handed to the transport */
    int released;                 /* reported and forgotten while holders > 0 */
} kvx_xfer_t;

typedef struct kvx_notify_entry {
    struct kvx_notify_entry *next;
    kvx_notification_t n;
} kvx_notify_entry_t;

struct kvx_engine {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; broadcast on every state change */
    char name[KVX_ENGINE_NAME_MAX];
    uint64_t instance;

    unsigned io_threads;
    unsigned connect_timeout_ms;
    unsigned transfer_timeout_ms;
    unsigned notify_timeout_ms;
    unsigned max_outstanding;
    unsigned max_notify_queue;

    const kvx_transport_ops_t *tp_ops;
    kvx_tp_t *tp;

    /* registrations, sorted by address, never overlapping */
    struct kvx_mem **mems;
    size_t mem_count, mem_cap;

    kvx_peer_t *peers;
    size_t incoming_links; /* remotes linked to this engine */
    uint64_t last_epoch;   /* of the newest link made */

    /* async transfers: slot table (id = generation << 32 | slot) and the
     * submission-ordered list */
    kvx_xfer_t **slots;
    uint32_t *slot_gen;
    uint32_t *free_slots;
    uint32_t free_count;
    kvx_xfer_t *xfer_head, *xfer_tail;

    kvx_notify_entry_t *notify_head, *notify_tail;
    size_t notify_count;
};

typedef struct kvx_engine kvx_engine_t;

/* timeout argument: 0 -> default, < 0 -> invalid */
kvx_status_t kvx_engine_timeout(int timeout_ms, unsigned dflt, unsigned *out);

/* Wait on engine->cond until @p deadline_ns; engine->lock held. 0 on wake,
 * ETIMEDOUT when the deadline passed. */
int kvx_engine_wait(kvx_engine_t *engine, uint64_t deadline_ns);

/* Whether an async transfer on @p conn is still WAITING; engine->lock held. */
int kvx_xfer_pending_on(kvx_engine_t *engine, const kvx_tp_conn_t *conn);

/* Find a peer by canonical name; engine->lock held. */
kvx_peer_t *kvx_peer_find(kvx_engine_t *engine, const char *canonical);

/* Resolve @p remote to a CONNECTED peer and take a reference on its link.
 * engine->lock NOT held. */
kvx_status_t kvx_peer_acquire_link(kvx_engine_t *engine, const char *remote, kvx_peer_t **peer_p,
                                   kvx_tp_conn_t **conn_p);

/* Run one op on a link and wait for it; used by memory queries and notify. */
kvx_status_t kvx_engine_run_op(kvx_engine_t *engine, kvx_tp_conn_t *conn, kvx_tp_op_t *op);

/* memreg.c */
kvx_status_t kvx_mem_pin_local(kvx_engine_t *engine, const kvx_xfer_desc_t *descs, size_t count,
                               kvx_pin_t **pin_p);
kvx_status_t kvx_mem_pin_remote_access(void *ctx, int write, const kvx_wire_desc_t *descs,
                                       uint32_t count, const uint64_t *tag, void **pin_p);
void kvx_mem_unpin(kvx_engine_t *engine, kvx_pin_t *pin); /* engine->lock held */
void kvx_mem_unpin_upcall(void *ctx, void *pin);
kvx_status_t kvx_mem_table_upcall(void *ctx, kvx_wire_mem_entry_t **entries_p, uint32_t *count_p);
void kvx_mem_destroy_all(kvx_engine_t *engine);
/* Check descriptors against a peer's cached table; refresh once on a miss. */
kvx_status_t kvx_mem_check_remote(kvx_engine_t *engine, kvx_peer_t *peer, kvx_tp_conn_t *conn,
                                  kvx_op_t op, const kvx_xfer_desc_t *descs, size_t count,
                                  const uint64_t *tag, uint64_t deadline_ns);

/* xfer.c */
kvx_status_t kvx_xfer_engine_init(kvx_engine_t *engine);
void kvx_xfer_engine_cleanup(kvx_engine_t *engine);

/* notify.c */
kvx_status_t kvx_notify_deliver_upcall(void *ctx, const char *sender, uint64_t sender_instance,
                                       const char *name, size_t name_len, const char *msg,
                                       size_t msg_len);
void kvx_notify_cleanup(kvx_engine_t *engine);

#endif

/* Transfers: checks, ids, states, sync waits and the batch query. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"

#define KVX_XFER_PARAM_FIELDS_ALL                                                                  \
    (KVX_XFER_PARAM_FIELD_TIMEOUT | KVX_XFER_PARAM_FIELD_USER_DATA |                               \
     KVX_XFER_PARAM_FIELD_REMOTE_TAG | KVX_XFER_PARAM_FIELD_CHECKSUM)

kvx_status_t kvx_xfer_engine_init(kvx_engine_t *engine)
{
    uint32_t n = engine->max_outstanding;
    engine->slots = calloc(n, sizeof(*engine->slots));
    engine->slot_gen = calloc(n, sizeof(*engine->slot_gen));
    engine->free_slots = malloc(n * sizeof(*engine->free_slots));
    if (engine->slots == NULL || engine->slot_gen == NULL || engine->free_slots == NULL) {
        kvx_xfer_engine_cleanup(engine);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "engine: no memory for %u transfer slots", n);
    }
    /* Hand out low slots first: pop from the end. Generations start from
     * the engine's random instance id, so an id given to another engine
     * almost surely names nothing there. */
    uint32_t first_gen = (uint32_t)(engine->instance >> 32) | 1u;
    for (uint32_t i = 0; i < n; i++) {
        engine->free_slots[i] = n - 1 - i;
        engine->slot_gen[i] = first_gen;
    }
    engine->free_count = n;
    return KVX_OK;
}

static void xfer_free(kvx_xfer_t *xfer)
{
    if (xfer->conn != NULL) {
        xfer->engine->tp_ops->release(xfer->conn);
    }
    free(xfer->desc_copy);
    free(xfer);
}

/* A thread stops using @p xfer outside the lock; engine->lock held. */
static void xfer_unhold(kvx_xfer_t *xfer)
{
    if (--xfer->holders == 0 && xfer->released) {
        xfer_free(xfer);
    }
}

void kvx_xfer_engine_cleanup(kvx_engine_t *engine)
{
    for (kvx_xfer_t *x = engine->xfer_head, *next; x != NULL; x = next) {
        next = x->next;
        xfer_free(x);
    }
    engine->xfer_head = engine->xfer_tail = NULL;
    free(engine->slots);
    free(engine->slot_gen);
    free(engine->free_slots);
    engine->slots = NULL;
    engine->slot_gen = NULL;
    engine->free_slots = NULL;
}

/* Called by the transport when the last byte moved or the op failed. */
static void xfer_done(kvx_tp_op_t *op, kvx_status_t status)
{
    kvx_xfer_t *xfer = op->user;
    kvx_engine_t *engine = xfer->engine;
    pthread_mutex_lock(&engine->lock);
    kvx_mem_unpin(engine, xfer->local_pin);
    xfer->local_pin = NULL;
    xfer->error = status;
    xfer->state = (status == KVX_OK)            ? KVX_XFER_COMPLETED
                  : (status == KVX_ERR_TIMEOUT) ? KVX_XFER_TIMEOUT
                                                : KVX_XFER_FAILED;
    if (status != KVX_OK) {
        kvx_debug("engine %s: transfer %llu ended: %s", engine->name, (unsigned long long)xfer->id,
                  kvx_status_string(status));
    }
    pthread_cond_broadcast(&engine->cond);
    pthread_mutex_unlock(&engine->lock);
}

/* A checksummed frame carries at most KVX_WIRE_MAX_CSUM_PAYLOAD bytes, so
 * longer descriptors are cut into pieces of that size: how many in all. */
static kvx_status_t checksum_pieces(const kvx_xfer_desc_t *descs, size_t count, size_t *pieces_p)
{
    size_t pieces = 0;
    for (size_t i = 0; i < count; i++) {
        uint64_t n = (descs[i].length + KVX_WIRE_MAX_CSUM_PAYLOAD - 1) / KVX_WIRE_MAX_CSUM_PAYLOAD;
        if (n > SIZE_MAX / sizeof(*descs) - pieces) {
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "transfer: too many checksummed pieces");
        }
        pieces += (size_t)n;
    }
    *pieces_p = pieces;
    return KVX_OK;
}

/* Copy @p descs into @p out, cutting each into pieces of at most @p piece. */
static void split_descs(const kvx_xfer_desc_t *descs, size_t count, uint64_t piece,
                        kvx_xfer_desc_t *out)
{
    for (size_t i = 0; i < count; i++) {
        for (uint64_t off = 0; off < descs[i].length; off += piece) {
            uint64_t left = descs[i].length - off;
            *out++ = (kvx_xfer_desc_t){.local_addr = (uint8_t *)descs[i].local_addr + off,
                                       .remote_addr = descs[i].remote_addr + off,
                                       .length = left < piece ? left : piece};
        }
    }
}

/* Everything both kinds of transfer check before a byte moves. On success
 * the caller owns *xfer_p (pinned, not yet submitted) and a link reference. */
static kvx_status_t xfer_prepare(kvx_engine_t *engine, const char *remote, kvx_op_t op,
                                 const kvx_xfer_desc_t *descs, size_t count,
                                 const kvx_xfer_params_t *params, int async, kvx_xfer_t **xfer_p,
                                 kvx_tp_conn_t **conn_p)
{
    kvx_status_t status;
    unsigned timeout = engine->transfer_timeout_ms;
    void *user_data = NULL;
    int has_tag = 0, checksum = 0;
    uint64_t tag = 0;
    if (op != KVX_OP_READ && op != KVX_OP_WRITE) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "transfer: unknown op %d", op);
    }
    if (descs == NULL || count == 0 || count > KVX_XFER_MAX_DESCS) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "transfer: %zu descriptors (need 1..%u)", count,
                        KVX_XFER_MAX_DESCS);
    }
    if (params != NULL) {
        if (params->field_mask & ~(uint64_t)KVX_XFER_PARAM_FIELDS_ALL) {
            return KVX_FAIL(KVX_ERR_UNSUPPORTED, "transfer: unknown field_mask bits");
        }
        if ((params->field_mask & KVX_XFER_PARAM_FIELD_TIMEOUT) &&
            (status = kvx_engine_timeout(params->timeout_ms, engine->transfer_timeout_ms,
                                         &timeout)) != KVX_OK) {
            return status;
        }
        if (params->field_mask & KVX_XFER_PARAM_FIELD_USER_DATA) {
            user_data = params->user_data;
        }
        if (params->field_mask & KVX_XFER_PARAM_FIELD_REMOTE_TAG) {
            has_tag = 1;
            tag = params->remote_tag;
        }
        if (params->field_mask & KVX_XFER_PARAM_FIELD_CHECKSUM) {
            checksum = params->checksum != 0;
        }
    }
    for (size_t i = 0; i < count; i++) {
        if (descs[i].local_addr == NULL || descs[i].remote_addr == 0 || descs[i].length == 0) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                            "transfer: descriptor %zu has a NULL address or zero length", i);
        }
        if (descs[i].length > KVX_WIRE_MAX_PAYLOAD) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "transfer: descriptor %zu longer than 1 TiB", i);
        }
    }
    uint64_t deadline = kvx_deadline_ns(timeout);

    kvx_xfer_t *xfer = calloc(1, sizeof(*xfer));
    if (xfer == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "transfer: out of memory");
    }
    xfer->engine = engine;
    xfer->async = async;
    xfer->user_data = user_data;
    xfer->state = KVX_XFER_WAITING;
    /* Checks run on the caller's list, so that errors name its indexes. */
    const kvx_xfer_desc_t *caller_descs = descs;
    size_t caller_count = count;
    size_t pieces = count;
    if (checksum && (status = checksum_pieces(descs, count, &pieces)) != KVX_OK) {
        xfer_free(xfer);
        return status;
    }
    if (async || pieces > count) {
        /* The caller may reuse its array as soon as submit returns. */
        xfer->desc_copy = malloc(pieces * sizeof(*descs));
        if (xfer->desc_copy == NULL) {
            xfer_free(xfer);
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "transfer: out of memory for %zu descriptors",
                            pieces);
        }
        if (pieces > count) {
            split_descs(descs, count, KVX_WIRE_MAX_CSUM_PAYLOAD, xfer->desc_copy);
        } else {
            memcpy(xfer->desc_copy, descs, count * sizeof(*descs));
        }
        descs = xfer->desc_copy;
        count = pieces;
    }
    xfer->op = (kvx_tp_op_t){.kind = (op == KVX_OP_READ) ? KVX_TP_OP_READ : KVX_TP_OP_WRITE,
                             .deadline_ns = deadline,
                             .descs = descs,
                             .count = count,
                             .remote_tag = tag,
                             .has_remote_tag = has_tag,
                             .done = xfer_done,
                             .user = xfer,
                             .caller_waits = !async,
                             .checksum = checksum};

    kvx_peer_t *peer;
    kvx_tp_conn_t *conn;
    if ((status = kvx_peer_acquire_link(engine, remote, &peer, &conn)) != KVX_OK) {
        xfer_free(xfer);
        return status;
    }
    if ((status = kvx_mem_pin_local(engine, caller_descs, caller_count, &xfer->local_pin)) !=
            KVX_OK ||
        (status = kvx_mem_check_remote(engine, peer, conn, op, caller_descs, caller_count,
                                       has_tag ? &tag : NULL, deadline)) != KVX_OK) {
        pthread_mutex_lock(&engine->lock);
        kvx_mem_unpin(engine, xfer->local_pin);
        pthread_mutex_unlock(&engine->lock);
        engine->tp_ops->release(conn);
        xfer_free(xfer);
        return status;
    }
    *xfer_p = xfer;
    *conn_p = conn;
    return KVX_OK;
}

kvx_status_t kvx_xfer_sync(kvx_engine_h engine, const char *remote, kvx_op_t op,
                           const kvx_xfer_desc_t *descs, size_t count,
                           const kvx_xfer_params_t *params)
{
    kvx_error_clear();
    if (engine == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "transfer: NULL engine");
    }
    kvx_xfer_t *xfer;
    kvx_tp_conn_t *conn;
    kvx_status_t status = xfer_prepare(engine, remote, op, descs, count, params, 0, &xfer, &conn);
    if (status != KVX_OK) {
        return status;
    }
    status = engine->tp_ops->submit(conn, &xfer->op);
    engine->tp_ops->release(conn);
    pthread_mutex_lock(&engine->lock);
    if (status != KVX_OK) {
        kvx_mem_unpin(engine, xfer->local_pin);
    } else {
        /* The transport ends every op by its deadline, so this wait ends. */
        while (xfer->state == KVX_XFER_WAITING) {
            pthread_cond_wait(&engine->cond, &engine->lock);
        }
        status = xfer->error;
    }
    pthread_mutex_unlock(&engine->lock);
    xfer_free(xfer);
    if (status != KVX_OK) {
        return KVX_FAIL(status, "engine %s: %s of %zu descriptor(s) with %s failed", engine->name,
                        op == KVX_OP_READ ? "read" : "write", count, remote);
    }
    return KVX_OK;
}

kvx_status_t kvx_xfer_submit(kvx_engine_h engine, const char *remote, kvx_op_t op,
                             const kvx_xfer_desc_t *descs, size_t count,
                             const kvx_xfer_params_t *params, kvx_xfer_id_t *id_p)
{
    kvx_error_clear();
    if (engine == NULL || id_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "transfer: NULL engine or id_p");
    }
    /* Reserve a slot first so a full table fails before any work. */
    pthread_mutex_lock(&engine->lock);
    if (engine->free_count == 0) {
        pthread_mutex_unlock(&engine->lock);
        return KVX_FAIL(KVX_ERR_RESOURCE_EXHAUSTED,
                        "engine %s: %u transfers not yet reported finished", engine->name,
                        engine->max_outstanding);
    }
    uint32_t slot = engine->free_slots[--engine->free_count];
    pthread_mutex_unlock(&engine->lock);

    kvx_xfer_t *xfer;
    kvx_tp_conn_t *conn;
    kvx_status_t status = xfer_prepare(engine, remote, op, descs, count, params, 1, &xfer, &conn);
    if (status != KVX_OK) {
        pthread_mutex_lock(&engine->lock);
        engine->free_slots[engine->free_count++] = slot;
        pthread_mutex_unlock(&engine->lock);
        return status;
    }
    pthread_mutex_lock(&engine->lock);
    xfer->slot = slot;
    xfer->id = ((uint64_t)engine->slot_gen[slot] << 32) | slot;
    engine->slots[slot] = xfer;
    xfer->prev = engine->xfer_tail;
    if (engine->xfer_tail != NULL) {
        engine->xfer_tail->next = xfer;
    } else {
        engine->xfer_head = xfer;
    }
    engine->xfer_tail = xfer;
    /* The link reference moves to the transfer, for kvx_xfer_cancel(); a
     * cancel that comes before the transport has the op waits for it. */
    xfer->conn = conn;
    xfer->submitting = 1;
    xfer->holders++;
    kvx_xfer_id_t id = xfer->id;
    pthread_mutex_unlock(&engine->lock);

    status = engine->tp_ops->submit(conn, &xfer->op);
    if (status != KVX_OK) {
        /* Not queued: report it like any failed transfer would be. */
        xfer_done(&xfer->op, status);
    }
    pthread_mutex_lock(&engine->lock);
    xfer->submitting = 0;
    pthread_cond_broadcast(&engine->cond);
    xfer_unhold(xfer);
    pthread_mutex_unlock(&engine->lock);
    *id_p = id;
    return KVX_OK;
}

/* Forget a finished async transfer; engine->lock held. */
static void xfer_release(kvx_engine_t *engine, kvx_xfer_t *xfer)
{
    if (xfer->prev != NULL) {
        xfer->prev->next = xfer->next;
    } else {
        engine->xfer_head = xfer->next;
    }
    if (xfer->next != NULL) {
        xfer->next->prev = xfer->prev;
    } else {
        engine->xfer_tail = xfer->prev;
    }
    engine->slots[xfer->slot] = NULL;
    engine->slot_gen[xfer->slot]++;
    if (engine->slot_gen[xfer->slot] == 0) {
        engine->slot_gen[xfer->slot] = 1;
    }
    engine->free_slots[engine->free_count++] = xfer->slot;
    if (xfer->holders > 0) {
        xfer->released = 1; /* the last holder frees it */
    } else {
        xfer_free(xfer);
    }
}

int kvx_xfer_pending_on(kvx_engine_t *engine, const kvx_tp_conn_t *conn)
{
    for (const kvx_xfer_t *x = engine->xfer_head; x != NULL; x = x->next) {
        if (x->conn == conn && x->state == KVX_XFER_WAITING) {
            return 1;
        }
    }
    return 0;
}

static kvx_xfer_t *xfer_lookup(kvx_engine_t *engine, kvx_xfer_id_t id)
{
    uint32_t slot = (uint32_t)id;
    uint32_t gen = (uint32_t)(id >> 32);
    if (slot >= engine->max_outstanding || gen == 0 || engine->slot_gen[slot] != gen) {
        return NULL;
    }
    return engine->slots[slot];
}

kvx_status_t kvx_xfer_wait(kvx_engine_h engine, kvx_xfer_id_t id, int timeout_ms,
                           kvx_xfer_state_t *state_p, kvx_status_t *error_p)
{
    kvx_error_clear();
    if (engine == NULL || state_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "xfer_status: NULL engine or state_p");
    }
    if (timeout_ms < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "xfer_wait: negative timeout");
    }
    uint64_t deadline = kvx_deadline_ns((unsigned)timeout_ms);
    kvx_status_t status = KVX_OK;
    pthread_mutex_lock(&engine->lock);
    kvx_xfer_t *xfer = xfer_lookup(engine, id);
    while (xfer != NULL && xfer->state == KVX_XFER_WAITING && timeout_ms > 0) {
        int rc = kvx_engine_wait(engine, deadline);
        /* Look again whatever woke us: another thread may have reaped it. */
        xfer = xfer_lookup(engine, id);
        if (rc == ETIMEDOUT) {
            break;
        }
    }
    if (xfer == NULL) {
        status = KVX_FAIL(KVX_ERR_NOT_FOUND, "transfer %llu unknown or already reported finished",
                          (unsigned long long)id);
        *state_p = KVX_XFER_FAILED;
    } else {
        *state_p = xfer->state;
        if (error_p != NULL) {
            *error_p = xfer->error;
        }
        if (xfer->state != KVX_XFER_WAITING) {
            xfer_release(engine, xfer);
        }
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_xfer_cancel(kvx_engine_h engine, kvx_xfer_id_t id, int timeout_ms)
{
    kvx_error_clear();
    if (engine == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "xfer_cancel: NULL engine");
    }
    unsigned timeout;
    kvx_status_t status = kvx_engine_timeout(timeout_ms, engine->transfer_timeout_ms, &timeout);
    if (status != KVX_OK) {
        return status;
    }
    uint64_t deadline = kvx_deadline_ns(timeout);
    pthread_mutex_lock(&engine->lock);
    kvx_xfer_t *xfer = xfer_lookup(engine, id);
    if (xfer == NULL) {
        pthread_mutex_unlock(&engine->lock);
        return KVX_FAIL(KVX_ERR_NOT_FOUND, "xfer_cancel: transfer %llu unknown or already reported",
                        (unsigned long long)id);
    }
    if (xfer->state != KVX_XFER_WAITING) {
        pthread_mutex_unlock(&engine->lock);
        return KVX_OK;
    }
    xfer->holders++;
    while (xfer->submitting && kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    kvx_tp_conn_t *conn = xfer->conn;
    int queued = !xfer->submitting;
    pthread_mutex_unlock(&engine->lock);

    if (queued) {
        engine->tp_ops->cancel(conn, &xfer->op);
    }
    pthread_mutex_lock(&engine->lock);
    while (xfer->state == KVX_XFER_WAITING && kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    if (xfer->state == KVX_XFER_WAITING) {
        /* The target did not confirm the frames already sent: give up the
         * link, which ends the transfer (its bytes may still land there). */
        pthread_mutex_unlock(&engine->lock);
        kvx_warn("engine %s: cancel of transfer %llu not confirmed in %u ms; closing its link",
                 engine->name, (unsigned long long)id, timeout);
        engine->tp_ops->close(conn, KVX_ERR_CONNECTION_LOST); /* at once, no drain */
        pthread_mutex_lock(&engine->lock);
        while (xfer->state == KVX_XFER_WAITING) {
            pthread_cond_wait(&engine->cond, &engine->lock); /* a closed link ends its ops */
        }
        status =
            KVX_FAIL(KVX_ERR_TIMEOUT, "xfer_cancel: the remote did not confirm in %u ms", timeout);
    } else {
        status = KVX_OK;
    }
    xfer_unhold(xfer);
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_xfer_status(kvx_engine_h engine, kvx_xfer_id_t id, kvx_xfer_state_t *state_p,
                             kvx_status_t *error_p)
{
    return kvx_xfer_wait(engine, id, 0, state_p, error_p);
}

kvx_status_t kvx_xfer_query(kvx_engine_h engine, kvx_xfer_result_t *results, size_t max,
                            size_t *count_p, uint64_t flags)
{
    kvx_error_clear();
    if (engine == NULL || count_p == NULL || (results == NULL && max > 0)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "xfer_query: NULL argument");
    }
    if (flags & ~(uint64_t)KVX_XFER_QUERY_SKIP_WAITING) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "xfer_query: unknown flags");
    }
    size_t n = 0;
    pthread_mutex_lock(&engine->lock);
    for (kvx_xfer_t *x = engine->xfer_head, *next; x != NULL && n < max; x = next) {
        next = x->next;
        if (x->state == KVX_XFER_WAITING && (flags & KVX_XFER_QUERY_SKIP_WAITING)) {
            continue;
        }
        results[n++] = (kvx_xfer_result_t){
            .id = x->id, .user_data = x->user_data, .state = x->state, .error = x->error};
        if (x->state != KVX_XFER_WAITING) {
            xfer_release(engine, x);
        }
    }
    pthread_mutex_unlock(&engine->lock);
    *count_p = n;
    return KVX_OK;
}

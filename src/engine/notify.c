/* Notifications: sending over a link, and the bounded receive queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_impl.h"

kvx_status_t kvx_notify_send(kvx_engine_h engine, const char *remote, const char *name,
                             const void *msg, size_t msg_len, int timeout_ms)
{
    kvx_error_clear();
    if (engine == NULL || name == NULL || (msg == NULL && msg_len > 0)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "notify_send: NULL argument");
    }
    size_t name_len = strnlen(name, KVX_NOTIFY_NAME_MAX + 1);
    if (name_len > KVX_NOTIFY_NAME_MAX || msg_len > KVX_NOTIFY_MSG_MAX) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "notify_send: name (%zu) or message (%zu) over %d bytes", name_len, msg_len,
                        KVX_NOTIFY_MSG_MAX);
    }
    unsigned timeout = 0;
    kvx_status_t status = kvx_engine_timeout(timeout_ms, engine->notify_timeout_ms, &timeout);
    if (status != KVX_OK) {
        return status;
    }
    kvx_peer_t *peer;
    kvx_tp_conn_t *conn;
    if ((status = kvx_peer_acquire_link(engine, remote, &peer, &conn)) != KVX_OK) {
        return status;
    }
    kvx_tp_op_t op = {.kind = KVX_TP_OP_NOTIFY,
                      .deadline_ns = kvx_deadline_ns(timeout),
                      .name = name,
                      .name_len = name_len,
                      .msg = msg,
                      .msg_len = msg_len};
    status = kvx_engine_run_op(engine, conn, &op);
    engine->tp_ops->release(conn);
    if (status != KVX_OK) {
        return KVX_FAIL(status, "engine %s: notification '%.64s' to %s failed", engine->name, name,
                        remote);
    }
    return KVX_OK;
}

kvx_status_t kvx_notify_deliver_upcall(void *ctx, const char *sender, uint64_t sender_instance,
                                       const char *name, size_t name_len, const char *msg,
                                       size_t msg_len)
{
    kvx_engine_t *engine = ctx;
    size_t sender_len = strlen(sender);
    /* One allocation: entry, then name, message and sender, each NUL-ended. */
    kvx_notify_entry_t *e = malloc(sizeof(*e) + name_len + msg_len + sender_len + 3);
    if (e == NULL) {
        return KVX_ERR_NO_MEMORY;
    }
    char *p = (char *)(e + 1);
    e->next = NULL;
    e->n.name = p;
    memcpy(p, name, name_len);
    p[name_len] = '\0';
    p += name_len + 1;
    e->n.msg = p;
    memcpy(p, msg, msg_len);
    p[msg_len] = '\0';
    e->n.msg_len = msg_len;
    p += msg_len + 1;
    e->n.sender = p;
    memcpy(p, sender, sender_len + 1);
    e->n.sender_instance = sender_instance;

    pthread_mutex_lock(&engine->lock);
    if (engine->notify_count >= engine->max_notify_queue) {
        pthread_mutex_unlock(&engine->lock);
        free(e);
        kvx_warn("engine %s: notification queue full (%u), refused one from %s", engine->name,
                 engine->max_notify_queue, sender);
        return KVX_ERR_REMOTE_FULL;
    }
    if (engine->notify_tail != NULL) {
        engine->notify_tail->next = e;
    } else {
        engine->notify_head = e;
    }
    engine->notify_tail = e;
    engine->notify_count++;
    pthread_cond_broadcast(&engine->cond);
    pthread_mutex_unlock(&engine->lock);
    return KVX_OK;
}

/* Is @p e from an earlier process at an address this engine is linked to
 * now? The link's instance id is that of whoever listens there today (we
 * dialled it), so a notification named after that address but from another
 * instance was sent by a process that has since been replaced (or by one
 * that only claims the name). engine->lock held. */
static int from_old_epoch(kvx_engine_t *engine, const kvx_notify_entry_t *e)
{
    const kvx_peer_t *peer = kvx_peer_find(engine, e->n.sender);
    return peer != NULL &&
           (peer->state == KVX_PEER_CONNECTED || peer->state == KVX_PEER_DISCONNECTING) &&
           peer->remote_instance != 0 && peer->remote_instance != e->n.sender_instance;
}

kvx_status_t kvx_notify_fetch(kvx_engine_h engine, kvx_notification_t **list_p, size_t *count_p)
{
    kvx_error_clear();
    if (engine == NULL || list_p == NULL || count_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "notify_fetch: NULL argument");
    }
    pthread_mutex_lock(&engine->lock);
    size_t count = engine->notify_count, stale = 0;
    kvx_notify_entry_t *head = engine->notify_head;
    engine->notify_head = engine->notify_tail = NULL;
    engine->notify_count = 0;
    for (kvx_notify_entry_t **link = &head; *link != NULL;) {
        kvx_notify_entry_t *e = *link;
        if (from_old_epoch(engine, e)) {
            *link = e->next;
            free(e);
            stale++;
        } else {
            link = &e->next;
        }
    }
    count -= stale;
    pthread_mutex_unlock(&engine->lock);
    if (stale > 0) {
        kvx_warn("engine %s: left out %zu notifications from earlier processes at addresses "
                 "linked to again since",
                 engine->name, stale);
    }

    *list_p = NULL;
    *count_p = 0;
    if (count == 0) {
        return KVX_OK;
    }
    /* Copy into one array of self-contained entries the caller frees. */
    kvx_notification_t *list = calloc(count, sizeof(*list));
    if (list == NULL) {
        /* Put them back rather than lose them. */
        pthread_mutex_lock(&engine->lock);
        kvx_notify_entry_t *tail = head;
        while (tail->next != NULL) {
            tail = tail->next;
        }
        tail->next = engine->notify_head;
        if (engine->notify_head == NULL) {
            engine->notify_tail = tail;
        }
        engine->notify_head = head;
        engine->notify_count += count;
        pthread_mutex_unlock(&engine->lock);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "notify_fetch: out of memory");
    }
    /* Each entry block stays allocated: its strings live in it, and
     * kvx_notify_free() finds it again from name (just past the header). */
    size_t i = 0;
    for (kvx_notify_entry_t *e = head; e != NULL; e = e->next, i++) {
        list[i] = e->n;
    }
    *list_p = list;
    *count_p = count;
    return KVX_OK;
}

void kvx_notify_free(kvx_notification_t *list, size_t count)
{
    if (list == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        if (list[i].name != NULL) {
            free((kvx_notify_entry_t *)list[i].name - 1);
        }
    }
    free(list);
}

kvx_status_t kvx_notify_wait(kvx_engine_h engine, int timeout_ms)
{
    kvx_error_clear();
    if (engine == NULL || timeout_ms < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "notify_wait: NULL engine or negative timeout");
    }
    uint64_t deadline = kvx_deadline_ns((unsigned)timeout_ms);
    pthread_mutex_lock(&engine->lock);
    while (engine->notify_count == 0 && kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    kvx_status_t status =
        (engine->notify_count > 0)
            ? KVX_OK
            : KVX_FAIL(KVX_ERR_TIMEOUT, "no notification within %d ms", timeout_ms);
    pthread_mutex_unlock(&engine->lock);
    return status;
}

void kvx_notify_cleanup(kvx_engine_t *engine)
{
    for (kvx_notify_entry_t *e = engine->notify_head, *next; e != NULL; e = next) {
        next = e->next;
        free(e);
    }
    engine->notify_head = engine->notify_tail = NULL;
    engine->notify_count = 0;
}

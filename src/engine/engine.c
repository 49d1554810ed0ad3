/* Engine lifetime, peers and links. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "engine/engine_impl.h"

#define KVX_ENGINE_PARAM_FIELDS_ALL                                                                \
    (KVX_ENGINE_PARAM_FIELD_NAME | KVX_ENGINE_PARAM_FIELD_IO_THREADS |                             \
     KVX_ENGINE_PARAM_FIELD_CONNECT_TIMEOUT | KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT |            \
     KVX_ENGINE_PARAM_FIELD_NOTIFY_TIMEOUT | KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING |              \
     KVX_ENGINE_PARAM_FIELD_MAX_NOTIFY_QUEUE | KVX_ENGINE_PARAM_FIELD_BUSY_POLL |                  \
     KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT | KVX_ENGINE_PARAM_FIELD_AUTH_SECRET)

/* Upper bound of every configurable timeout: one hour. */
#define KVX_TIMEOUT_MAX_MS 3600000u
_Static_assert(KVX_WIRE_SILENCE_MAX_MS == KVX_TIMEOUT_MAX_MS, "a peer timeout must fit HELLO");

kvx_status_t kvx_engine_timeout(int timeout_ms, unsigned dflt, unsigned *out)
{
    if (timeout_ms < 0 || (unsigned)timeout_ms > KVX_TIMEOUT_MAX_MS) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "timeout %d ms outside 0..%u (0 = default)",
                        timeout_ms, KVX_TIMEOUT_MAX_MS);
    }
    *out = (timeout_ms == 0) ? dflt : (unsigned)timeout_ms;
    return KVX_OK;
}

int kvx_engine_wait(kvx_engine_t *engine, uint64_t deadline_ns)
{
    struct timespec ts = kvx_ns_to_timespec(deadline_ns);
    return pthread_cond_timedwait(&engine->cond, &engine->lock, &ts);
}

static kvx_status_t param_u32(const kvx_engine_params_t *p, uint64_t bit, unsigned value,
                              unsigned lo, unsigned hi, unsigned dflt, const char *what,
                              unsigned *out)
{
    if (!(p->field_mask & bit)) {
        *out = dflt;
        return KVX_OK;
    }
    if (value < lo || value > hi) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine parameter %s = %u outside %u..%u", what,
                        value, lo, hi);
    }
    *out = value;
    return KVX_OK;
}

static void link_event(void *ctx, void *peer_ctx, kvx_tp_conn_t *conn, int up, kvx_status_t status);

static void incoming_event(void *ctx, int up)
{
    kvx_engine_t *engine = ctx;
    pthread_mutex_lock(&engine->lock);
    if (up) {
        engine->incoming_links++;
    } else if (engine->incoming_links > 0) {
        engine->incoming_links--;
    }
    pthread_cond_broadcast(&engine->cond);
    pthread_mutex_unlock(&engine->lock);
}

kvx_status_t kvx_engine_incoming_links(kvx_engine_h engine, size_t *count_p)
{
    kvx_error_clear();
    if (engine == NULL || count_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "incoming_links: NULL argument");
    }
    pthread_mutex_lock(&engine->lock);
    *count_p = engine->incoming_links;
    pthread_mutex_unlock(&engine->lock);
    return KVX_OK;
}

kvx_status_t kvx_engine_create(const kvx_engine_params_t *params, kvx_engine_h *engine_p)
{
    kvx_error_clear();
    if (params == NULL || engine_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine_create: NULL params or engine_p");
    }
    if (params->field_mask & ~(uint64_t)KVX_ENGINE_PARAM_FIELDS_ALL) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "engine_create: unknown field_mask bits 0x%llx",
                        (unsigned long long)(params->field_mask & ~KVX_ENGINE_PARAM_FIELDS_ALL));
    }
    if (!(params->field_mask & KVX_ENGINE_PARAM_FIELD_NAME)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine_create: name is required");
    }
    kvx_addr_t addr;
    kvx_status_t status = kvx_addr_parse(params->name, &addr);
    if (status != KVX_OK) {
        return status;
    }

    const void *secret = NULL;
    size_t secret_len = 0;
    if (params->field_mask & KVX_ENGINE_PARAM_FIELD_AUTH_SECRET) {
        secret = params->auth_secret;
        secret_len = params->auth_secret_len;
        if (secret == NULL || secret_len < KVX_AUTH_SECRET_MIN ||
            secret_len > KVX_AUTH_SECRET_MAX) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                            "engine_create: auth_secret must be %d..%d bytes (got %zu%s)",
                            KVX_AUTH_SECRET_MIN, KVX_AUTH_SECRET_MAX, secret_len,
                            secret == NULL ? ", NULL" : "");
        }
    }
    kvx_engine_t *engine = calloc(1, sizeof(*engine));
    if (engine == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "engine_create: out of memory");
    }
    unsigned busy_poll_us = 0, peer_timeout_ms = 0;
    if ((status = param_u32(params, KVX_ENGINE_PARAM_FIELD_IO_THREADS, params->io_threads, 1, 64, 1,
                            "io_threads", &engine->io_threads)) != KVX_OK ||
        (status =
             param_u32(params, KVX_ENGINE_PARAM_FIELD_CONNECT_TIMEOUT, params->connect_timeout_ms,
                       1, KVX_TIMEOUT_MAX_MS, KVX_DEFAULT_CONNECT_TIMEOUT_MS, "connect_timeout_ms",
                       &engine->connect_timeout_ms)) != KVX_OK ||
        (status =
             param_u32(params, KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT, params->transfer_timeout_ms,
                       1, KVX_TIMEOUT_MAX_MS, KVX_DEFAULT_TRANSFER_TIMEOUT_MS,
                       "transfer_timeout_ms", &engine->transfer_timeout_ms)) != KVX_OK ||
        (status =
             param_u32(params, KVX_ENGINE_PARAM_FIELD_NOTIFY_TIMEOUT, params->notify_timeout_ms, 1,
                       KVX_TIMEOUT_MAX_MS, KVX_DEFAULT_NOTIFY_TIMEOUT_MS, "notify_timeout_ms",
                       &engine->notify_timeout_ms)) != KVX_OK ||
        (status = param_u32(params, KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING, params->max_outstanding,
                            1, 1u << 20, KVX_DEFAULT_MAX_OUTSTANDING, "max_outstanding",
                            &engine->max_outstanding)) != KVX_OK ||
        (status = param_u32(params, KVX_ENGINE_PARAM_FIELD_MAX_NOTIFY_QUEUE,
                            params->max_notify_queue, 1, 1u << 20, KVX_DEFAULT_MAX_NOTIFY_QUEUE,
                            "max_notify_queue", &engine->max_notify_queue)) != KVX_OK ||
        (status = param_u32(params, KVX_ENGINE_PARAM_FIELD_BUSY_POLL, params->busy_poll_us, 0,
                            10000, KVX_DEFAULT_BUSY_POLL_US, "busy_poll_us", &busy_poll_us)) !=
            KVX_OK ||
        (status = param_u32(params, KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT, params->peer_timeout_ms,
                            KVX_WIRE_SILENCE_MIN_MS, KVX_WIRE_SILENCE_MAX_MS,
                            KVX_DEFAULT_PEER_TIMEOUT_MS, "peer_timeout_ms", &peer_timeout_ms)) !=
            KVX_OK) {
        free(engine);
        return status;
    }

    pthread_mutex_init(&engine->lock, NULL);
    pthread_condattr_t cattr;
    pthread_condattr_init(&cattr);
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    pthread_cond_init(&engine->cond, &cattr);
    pthread_condattr_destroy(&cattr);

    if (getrandom(&engine->instance, sizeof(engine->instance), 0) != sizeof(engine->instance)) {
        engine->instance = kvx_now_ns() ^ ((uint64_t)getpid() << 32);
    }

    status = kvx_xfer_engine_init(engine);
    if (status != KVX_OK) {
        goto err_sync;
    }

    static const kvx_tp_upcalls_t upcalls_template = {
        .pin = kvx_mem_pin_remote_access,
        .unpin = kvx_mem_unpin_upcall,
        .deliver_notify = kvx_notify_deliver_upcall,
        .mem_table = kvx_mem_table_upcall,
        .link_event = link_event,
        .incoming_event = incoming_event,
    };
    kvx_tp_upcalls_t upcalls = upcalls_template;
    upcalls.ctx = engine;
    kvx_tp_params_t tp_params = {
        .listen = addr.has_port ? &addr : NULL,
        .io_threads = engine->io_threads,
        .busy_poll_us = busy_poll_us,
        .peer_timeout_ms = peer_timeout_ms,
        .secret = secret,
        .secret_len = secret_len,
        .instance = engine->instance,
    };
    engine->tp_ops = &kvx_tcp_transport;
    status = engine->tp_ops->create(&tp_params, &upcalls, &engine->tp);
    if (status != KVX_OK) {
        goto err_xfer;
    }
    if (addr.has_port) {
        engine->tp_ops->local_addr(engine->tp, &addr);
    }
    kvx_addr_format(&addr, engine->name, sizeof(engine->name));
    kvx_info("engine %s created (%u I/O thread%s)", engine->name, engine->io_threads,
             engine->io_threads == 1 ? "" : "s");
    *engine_p = engine;
    return KVX_OK;

err_xfer:
    kvx_xfer_engine_cleanup(engine);
err_sync:
    pthread_cond_destroy(&engine->cond);
    pthread_mutex_destroy(&engine->lock);
    free(engine);
    return status;
}

void kvx_engine_destroy(kvx_engine_h engine)
{
    if (engine == NULL) {
        return;
    }
    /* The transport fails every pending op first; their done() upcalls take
     * engine->lock, so it must not be held here. */
    engine->tp_ops->destroy(engine->tp);
    engine->tp = NULL;

    pthread_mutex_lock(&engine->lock);
    for (kvx_peer_t *peer = engine->peers, *next; peer != NULL; peer = next) {
        next = peer->next;
        if (peer->conn != NULL) {
            engine->tp_ops->release(peer->conn);
        }
        free(peer->rtable);
        free(peer);
    }
    engine->peers = NULL;
    pthread_mutex_unlock(&engine->lock);

    kvx_xfer_engine_cleanup(engine);
    kvx_notify_cleanup(engine);
    kvx_mem_destroy_all(engine);
    kvx_info("engine %s destroyed", engine->name);
    pthread_cond_destroy(&engine->cond);
    pthread_mutex_destroy(&engine->lock);
    free(engine);
}

const char *kvx_engine_name(kvx_engine_h engine)
{
    return (engine != NULL) ? engine->name : "";
}

/* ------------------------------------------------------------------ peers */

kvx_peer_t *kvx_peer_find(kvx_engine_t *engine, const char *canonical)
{
    for (kvx_peer_t *peer = engine->peers; peer != NULL; peer = peer->next) {
        if (strcmp(peer->name, canonical) == 0) {
            return peer;
        }
    }
    return NULL;
}

/* Parse a remote name into canonical form; it must have a port. */
static kvx_status_t remote_name(kvx_engine_t *engine, const char *remote, kvx_addr_t *addr,
                                char canonical[KVX_ENGINE_NAME_MAX])
{
    kvx_status_t status = kvx_addr_parse(remote, addr);
    if (status != KVX_OK) {
        return status;
    }
    if (!addr->has_port || addr->port == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "remote '%s' has no port: only listening engines can be connected to",
                        remote);
    }
    kvx_addr_format(addr, canonical, KVX_ENGINE_NAME_MAX);
    if (strcmp(canonical, engine->name) == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "engine %s cannot connect to itself", engine->name);
    }
    return KVX_OK;
}

static kvx_status_t lookup_peer(kvx_engine_t *engine, const char *remote, kvx_peer_t **peer_p)
{
    kvx_addr_t addr;
    char canonical[KVX_ENGINE_NAME_MAX];
    kvx_status_t status = remote_name(engine, remote, &addr, canonical);
    if (status != KVX_OK) {
        return status;
    }
    *peer_p = kvx_peer_find(engine, canonical);
    return KVX_OK;
}

/* Start a link attempt; engine->lock held. */
static kvx_status_t start_connect(kvx_engine_t *engine, kvx_peer_t *peer, unsigned timeout_ms)
{
    free(peer->rtable);
    peer->rtable = NULL;
    peer->rcount = 0;
    peer->rtable_valid = 0;
    kvx_tp_conn_t *conn = NULL;
    kvx_status_t status = engine->tp_ops->connect(engine->tp, &peer->addr, engine->name,
                                                  kvx_deadline_ns(timeout_ms), peer, &conn);
    if (status != KVX_OK) {
        peer->state = KVX_PEER_CONNECT_FAILED;
        peer->error = status;
        return status;
    }
    peer->conn = conn;
    peer->state = KVX_PEER_CONNECTING;
    peer->error = KVX_OK;
    kvx_debug("engine %s: connecting to %s (timeout %u ms)", engine->name, peer->name, timeout_ms);
    return KVX_OK;
}

static void link_event(void *ctx, void *peer_ctx, kvx_tp_conn_t *conn, int up, kvx_status_t status)
{
    kvx_engine_t *engine = ctx;
    kvx_peer_t *peer = peer_ctx;
    pthread_mutex_lock(&engine->lock);
    if (peer->conn != conn) {
        /* An event of a link already replaced: nothing to update. */
        pthread_mutex_unlock(&engine->lock);
        return;
    }
    if (up && peer->state == KVX_PEER_DISCONNECTING) {
        /* Disconnect was asked for during the handshake; the close that
         * follows reports the link down. */
    } else if (up) {
        peer->state = KVX_PEER_CONNECTED;
        peer->error = KVX_OK;
        peer->epoch = ++engine->last_epoch;
        uint64_t instance = engine->tp_ops->peer_instance(conn);
        if (peer->remote_instance != 0 && instance != peer->remote_instance) {
            kvx_info("engine %s: %s is a new process (instance %016llx, was %016llx)", engine->name,
                     peer->name, (unsigned long long)instance,
                     (unsigned long long)peer->remote_instance);
        }
        peer->remote_instance = instance;
        kvx_info("engine %s: connected to %s (epoch %llu)", engine->name, peer->name,
                 (unsigned long long)peer->epoch);
    } else {
        kvx_peer_state_t old = peer->state;
        engine->tp_ops->release(conn);
        peer->conn = NULL;
        peer->epoch = 0;
        if (old == KVX_PEER_DISCONNECTING) {
            peer->state = KVX_PEER_NOT_CONNECTED;
            peer->error = KVX_OK;
            kvx_debug("engine %s: disconnected from %s", engine->name, peer->name);
            if (peer->connect_queued && status != KVX_ERR_SHUTDOWN) {
                peer->connect_queued = 0;
                start_connect(engine, peer, peer->queued_timeout_ms);
            }
        } else if (old == KVX_PEER_CONNECTING) {
            peer->state = KVX_PEER_CONNECT_FAILED;
            peer->error = status;
            kvx_info("engine %s: connect to %s failed: %s", engine->name, peer->name,
                     kvx_status_string(status));
        } else if (status == KVX_ERR_SHUTDOWN) {
            peer->state = KVX_PEER_BROKEN;
            peer->error = status;
        } else {
            peer->state = KVX_PEER_BROKEN;
            peer->error = status;
            kvx_warn("engine %s: link to %s lost: %s", engine->name, peer->name,
                     kvx_status_string(status));
        }
    }
    pthread_cond_broadcast(&engine->cond);
    pthread_mutex_unlock(&engine->lock);
}

static kvx_status_t connect_start(kvx_engine_t *engine, const char *remote, int timeout_ms,
                                  kvx_peer_t **peer_p, unsigned *timeout_p)
{
    kvx_addr_t addr;
    char canonical[KVX_ENGINE_NAME_MAX];
    kvx_status_t status;
    if (engine == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "connect: NULL engine");
    }
    if ((status = kvx_engine_timeout(timeout_ms, engine->connect_timeout_ms, timeout_p)) !=
            KVX_OK ||
        (status = remote_name(engine, remote, &addr, canonical)) != KVX_OK) {
        return status;
    }
    pthread_mutex_lock(&engine->lock);
    kvx_peer_t *peer = kvx_peer_find(engine, canonical);
    if (peer == NULL) {
        peer = calloc(1, sizeof(*peer));
        if (peer == NULL) {
            pthread_mutex_unlock(&engine->lock);
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "connect: out of memory");
        }
        memcpy(peer->name, canonical, sizeof(peer->name));
        peer->addr = addr;
        peer->next = engine->peers;
        engine->peers = peer;
    }
    *peer_p = peer;
    switch (peer->state) {
    case KVX_PEER_CONNECTED:
        status = KVX_FAIL(KVX_ERR_ALREADY_CONNECTED, "engine %s is already connected to %s",
                          engine->name, canonical);
        break;
    case KVX_PEER_CONNECTING:
        status = KVX_INPROGRESS;
        break;
    case KVX_PEER_DISCONNECTING:
        peer->connect_queued = 1;
        peer->queued_timeout_ms = *timeout_p;
        status = KVX_INPROGRESS;
        break;
    default:
        status = start_connect(engine, peer, *timeout_p);
        break;
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_connect_async(kvx_engine_h engine, const char *remote, int timeout_ms)
{
    kvx_error_clear();
    kvx_peer_t *peer;
    unsigned timeout = 0;
    kvx_status_t status = connect_start(engine, remote, timeout_ms, &peer, &timeout);
    return (status == KVX_INPROGRESS) ? KVX_OK : status;
}

kvx_status_t kvx_engine_connect(kvx_engine_h engine, const char *remote, int timeout_ms)
{
    kvx_error_clear();
    kvx_peer_t *peer;
    unsigned timeout = 0;
    uint64_t start = kvx_now_ns();
    kvx_status_t status = connect_start(engine, remote, timeout_ms, &peer, &timeout);
    if (status != KVX_OK && status != KVX_INPROGRESS) {
        return status;
    }
    /* The transport ends the attempt by its deadline; the margin only
     * covers scheduling delays, it is not a second timeout. */
    uint64_t deadline = start + (uint64_t)timeout * 1000000ull + 2000000000ull;
    pthread_mutex_lock(&engine->lock);
    while ((peer->state == KVX_PEER_CONNECTING || peer->state == KVX_PEER_DISCONNECTING) &&
           kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    kvx_peer_state_t state = peer->state;
    kvx_status_t error = peer->error;
    pthread_mutex_unlock(&engine->lock);
    switch (state) {
    case KVX_PEER_CONNECTED:
        return KVX_OK;
    case KVX_PEER_CONNECTING:
    case KVX_PEER_DISCONNECTING:
        kvx_error("engine %s: connect to %s overran its deadline", engine->name, peer->name);
        return KVX_FAIL(KVX_ERR_TIMEOUT, "connect to %s did not finish", peer->name);
    default:
        return KVX_FAIL(error != KVX_OK ? error : KVX_ERR_NOT_CONNECTED,
                        "engine %s: connect to %s failed", engine->name, peer->name);
    }
}

static kvx_status_t disconnect_start(kvx_engine_t *engine, const char *remote, int timeout_ms,
                                     kvx_peer_t **peer_p, kvx_tp_conn_t **conn_p,
                                     unsigned *timeout_p)
{
    kvx_status_t status;
    if (engine == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "disconnect: NULL engine");
    }
    if ((status = kvx_engine_timeout(timeout_ms, engine->connect_timeout_ms, timeout_p)) !=
        KVX_OK) {
        return status;
    }
    pthread_mutex_lock(&engine->lock);
    kvx_peer_t *peer = NULL;
    status = lookup_peer(engine, remote, &peer);
    if (status == KVX_OK) {
        *peer_p = peer;
        if (peer == NULL || peer->state == KVX_PEER_NOT_CONNECTED) {
            status = KVX_FAIL(KVX_ERR_NOT_CONNECTED, "engine %s is not connected to %s",
                              engine->name, remote);
        } else if (peer->conn == NULL) {
            /* CONNECT_FAILED or BROKEN: only the record is left. */
            peer->state = KVX_PEER_NOT_CONNECTED;
            peer->error = KVX_OK;
        } else if (peer->state == KVX_PEER_DISCONNECTING) {
            peer->connect_queued = 0;
            status = KVX_INPROGRESS;
        } else {
            peer->state = KVX_PEER_DISCONNECTING;
            engine->tp_ops->close(peer->conn, KVX_ERR_CANCELED);
            status = KVX_INPROGRESS;
        }
        if (status == KVX_INPROGRESS && conn_p != NULL) {
            *conn_p = peer->conn; /* compared only: the link being closed */
        }
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_disconnect_async(kvx_engine_h engine, const char *remote, int timeout_ms)
{
    kvx_error_clear();
    kvx_peer_t *peer;
    unsigned timeout = 0;
    kvx_status_t status = disconnect_start(engine, remote, timeout_ms, &peer, NULL, &timeout);
    return (status == KVX_INPROGRESS) ? KVX_OK : status;
}

kvx_status_t kvx_engine_disconnect(kvx_engine_h engine, const char *remote, int timeout_ms)
{
    kvx_error_clear();
    kvx_peer_t *peer;
    kvx_tp_conn_t *conn = NULL;
    unsigned timeout = 0;
    kvx_status_t status = disconnect_start(engine, remote, timeout_ms, &peer, &conn, &timeout);
    if (status != KVX_INPROGRESS) {
        return status;
    }
    uint64_t deadline = kvx_deadline_ns(timeout);
    pthread_mutex_lock(&engine->lock);
    while (peer->state == KVX_PEER_DISCONNECTING &&
           kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    /* The peer leaves DISCONNECTING just before the link's transfers are
     * ended; the API promises they have ended when this returns. */
    while (peer->state != KVX_PEER_DISCONNECTING && kvx_xfer_pending_on(engine, conn) &&
           kvx_engine_wait(engine, deadline) != ETIMEDOUT) {
    }
    status = (peer->state == KVX_PEER_DISCONNECTING || kvx_xfer_pending_on(engine, conn))
                 ? KVX_FAIL(KVX_ERR_TIMEOUT, "disconnect from %s did not finish", peer->name)
                 : KVX_OK;
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_peer_state(kvx_engine_h engine, const char *remote,
                                   kvx_peer_state_t *state_p, kvx_status_t *error_p)
{
    kvx_error_clear();
    if (engine == NULL || state_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "peer_state: NULL engine or state_p");
    }
    pthread_mutex_lock(&engine->lock);
    kvx_peer_t *peer = NULL;
    kvx_status_t status = lookup_peer(engine, remote, &peer);
    if (status == KVX_OK) {
        *state_p = (peer != NULL) ? peer->state : KVX_PEER_NOT_CONNECTED;
        if (error_p != NULL) {
            *error_p = (peer != NULL) ? peer->error : KVX_OK;
        }
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_peer_epoch(kvx_engine_h engine, const char *remote, uint64_t *epoch_p,
                                   uint64_t *remote_instance_p)
{
    kvx_error_clear();
    if (engine == NULL || remote == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "peer_epoch: NULL engine or remote");
    }
    pthread_mutex_lock(&engine->lock);
    kvx_peer_t *peer = NULL;
    kvx_status_t status = lookup_peer(engine, remote, &peer);
    if (status == KVX_OK && peer == NULL) {
        status = KVX_FAIL(KVX_ERR_NOT_CONNECTED, "peer_epoch: no link was made to %s", remote);
    }
    if (status == KVX_OK) {
        int linked = peer->state == KVX_PEER_CONNECTED || peer->state == KVX_PEER_DISCONNECTING;
        if (epoch_p != NULL) {
            *epoch_p = linked ? peer->epoch : 0;
        }
        if (remote_instance_p != NULL) {
            *remote_instance_p = linked ? peer->remote_instance : 0;
        }
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_peers(kvx_engine_h engine, kvx_peer_info_t *infos, size_t max,
                              size_t *count_p)
{
    kvx_error_clear();
    if (engine == NULL || count_p == NULL || (infos == NULL && max > 0)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "peers: NULL argument");
    }
    size_t n = 0;
    pthread_mutex_lock(&engine->lock);
    for (kvx_peer_t *peer = engine->peers; peer != NULL; peer = peer->next) {
        if (peer->state == KVX_PEER_NOT_CONNECTED) {
            continue;
        }
        if (n < max) {
            memcpy(infos[n].name, peer->name, sizeof(infos[n].name));
            infos[n].state = peer->state;
            infos[n].error = peer->error;
        }
        n++;
    }
    pthread_mutex_unlock(&engine->lock);
    *count_p = n;
    return KVX_OK;
}

kvx_status_t kvx_peer_acquire_link(kvx_engine_t *engine, const char *remote, kvx_peer_t **peer_p,
                                   kvx_tp_conn_t **conn_p)
{
    pthread_mutex_lock(&engine->lock);
    kvx_peer_t *peer = NULL;
    kvx_status_t status = lookup_peer(engine, remote, &peer);
    if (status == KVX_OK) {
        if (peer == NULL || peer->state != KVX_PEER_CONNECTED) {
            if (peer != NULL && peer->state == KVX_PEER_BROKEN) {
                status = KVX_FAIL(KVX_ERR_CONNECTION_LOST,
                                  "engine %s: link to %s is broken (%s); connect again",
                                  engine->name, peer->name, kvx_status_string(peer->error));
            } else {
                status = KVX_FAIL(KVX_ERR_NOT_CONNECTED, "engine %s is not connected to %s",
                                  engine->name, remote);
            }
        } else {
            engine->tp_ops->retain(peer->conn);
            *peer_p = peer;
            *conn_p = peer->conn;
        }
    }
    pthread_mutex_unlock(&engine->lock);
    return status;
}

static void run_op_done(kvx_tp_op_t *op, kvx_status_t status)
{
    kvx_engine_t *engine = op->user;
    pthread_mutex_lock(&engine->lock);
    op->tp_status = status;
    op->user = NULL; /* marks the op finished for the waiter */
    pthread_cond_broadcast(&engine->cond);
    pthread_mutex_unlock(&engine->lock);
}

kvx_status_t kvx_engine_run_op(kvx_engine_t *engine, kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    op->done = run_op_done;
    op->user = engine;
    kvx_status_t status = engine->tp_ops->submit(conn, op);
    if (status != KVX_OK) {
        return status;
    }
    /* The transport finishes the op by its deadline; wait for that. */
    pthread_mutex_lock(&engine->lock);
    while (op->user != NULL) {
        pthread_cond_wait(&engine->cond, &engine->lock);
    }
    status = op->tp_status;
    pthread_mutex_unlock(&engine->lock);
    return status;
}

kvx_status_t kvx_engine_remote_mem(kvx_engine_h engine, const char *remote, kvx_remote_mem_t *mems,
                                   size_t max, size_t *count_p, int timeout_ms)
{
    kvx_error_clear();
    unsigned timeout = 0;
    kvx_status_t status;
    if (engine == NULL || count_p == NULL || (mems == NULL && max > 0)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "remote_mem: NULL argument");
    }
    if ((status = kvx_engine_timeout(timeout_ms, engine->transfer_timeout_ms, &timeout)) !=
        KVX_OK) {
        return status;
    }
    kvx_peer_t *peer;
    kvx_tp_conn_t *conn;
    if ((status = kvx_peer_acquire_link(engine, remote, &peer, &conn)) != KVX_OK) {
        return status;
    }
    kvx_tp_op_t op = {.kind = KVX_TP_OP_MEM_QUERY, .deadline_ns = kvx_deadline_ns(timeout)};
    status = kvx_engine_run_op(engine, conn, &op);
    engine->tp_ops->release(conn);
    if (status != KVX_OK) {
        free(op.mem_entries);
        return KVX_FAIL(status, "engine %s: memory query to %s failed", engine->name, remote);
    }
    for (uint32_t i = 0; i < op.mem_count && i < max; i++) {
        mems[i].address = op.mem_entries[i].addr;
        mems[i].length = op.mem_entries[i].len;
        mems[i].tag = op.mem_entries[i].tag;
        mems[i].mem_type = (kvx_mem_type_t)op.mem_entries[i].mem_type;
        mems[i].access = (kvx_mem_access_t)op.mem_entries[i].access;
    }
    *count_p = op.mem_count;
    /* Keep it as the peer's cached table for transfer checks. */
    pthread_mutex_lock(&engine->lock);
    if (peer->conn == conn) {
        free(peer->rtable);
        peer->rtable = op.mem_entries;
        peer->rcount = op.mem_count;
        peer->rtable_valid = 1;
        op.mem_entries = NULL;
    }
    pthread_mutex_unlock(&engine->lock);
    free(op.mem_entries);
    return KVX_OK;
}

kvx_status_t kvx_capability(int feature, int *supported_p)
{
    kvx_error_clear();
    if (feature < 0 || supported_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "capability: feature %d invalid or NULL output",
                        feature);
    }
    switch (feature) {
    case KVX_FEATURE_CLIENT_SERVER:
    case KVX_FEATURE_ASYNC_CONNECT:
    case KVX_FEATURE_BATCH_STATUS:
    case KVX_FEATURE_IPV6:
    case KVX_FEATURE_TRANSPORT_TCP:
    case KVX_FEATURE_TRANSPORT_SHM:
    case KVX_FEATURE_LIVE_MEM_TABLE:
        *supported_p = 1;
        break;
    default:
        *supported_p = 0;
        break;
    }
    return KVX_OK;
}

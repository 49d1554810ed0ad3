/*
 * The KV cache layer. Built only on the public engine API: caches are
 * engine registrations, links are engine connections, the published cache
 * table is a registered region that peers READ, and pulls and pushes are
 * engine transfers planned by plan.c.
 */
#include <errno.h>
#include <kvx/device.h>
#include <kvx/engine.h>
#include <kvx/kv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kv/plan.h"
#include "kv/table.h"
#include "util/error.h"

#define KVX_KV_PARAM_FIELDS_ALL (KVX_BIT(13) - 1)
#define DEFAULT_SYNC_TIMEOUT_MS 10000u
#define DEFAULT_TABLE_CAPACITY  (1u << 20)
#define TABLE_READ_TRIES        8

typedef struct kv_cache {
    struct kv_cache *next;
    int64_t id;
    kvx_mem_type_t placement;
    kvx_kv_geom_t geom;
    uint64_t *addrs;
    kvx_mem_h *mems; /* one engine registration per tensor */
    int allocated;
    int host_shared; /* host tensors from kvx_host_malloc() */
    int device;
    unsigned busy; /* transfers and copies using it */
} kv_cache_t;

typedef struct kv_link {
    struct kv_link *next;
    uint64_t cluster_id;
    char remote[KVX_ENGINE_NAME_MAX];
    uint64_t table_addr;
    size_t table_len;
    kvx_kv_table_entry_t *caches; /* last snapshot of the remote table */
    size_t ncaches;
    unsigned refs;
    int unlinked;
} kv_link_t;

struct kvx_kv {
    pthread_mutex_t lock;
    pthread_rwlock_t engine_lock; /* see kvx_kv_set_role() */
    kvx_engine_h engine;
    char name[KVX_ENGINE_NAME_MAX]; /* the engine's name, kept across swaps */
    uint64_t cluster_id;
    kvx_kv_role_t role;
    char local_ip[KVX_ENGINE_NAME_MAX];
    int device_id;
    unsigned sync_timeout_ms;
    unsigned io_threads;
    unsigned busy_poll_us;
    unsigned peer_timeout_ms;
    uint8_t *auth_secret; /* a copy, for every engine this instance makes */
    size_t auth_secret_len;
    int switch_role_enable;
    uint8_t *table;
    size_t table_cap;
    kvx_mem_h table_mem;
    kv_cache_t *caches;
    int64_t next_cache_id;
    kv_link_t *links;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Milliseconds left until @p deadline (CLOCK_MONOTONIC ms): one deadline
 * covers every step of a call. */
static kvx_status_t left_ms(uint64_t deadline, int *left_p)
{
    uint64_t now = now_ms();
    if (now >= deadline) {
        return KVX_FAIL(KVX_ERR_TIMEOUT, "kv: deadline passed");
    }
    *left_p = (int)(deadline - now);
    return KVX_OK;
}

/* ----------------------------------------------------------- instance */

/* Whether an engine name carries a port ("ip:port", "[ip6]:port"); the
 * engine parses the rest. */
static int name_has_port(const char *name)
{
    return name[0] == '[' ? strstr(name, "]:") != NULL : strchr(name, ':') != NULL;
}

static kvx_status_t make_engine(kvx_kv_h kv, const char *name, kvx_engine_h *engine_p)
{
    kvx_engine_params_t ep = {
        .field_mask = KVX_ENGINE_PARAM_FIELD_NAME | KVX_ENGINE_PARAM_FIELD_IO_THREADS |
                      KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT |
                      KVX_ENGINE_PARAM_FIELD_NOTIFY_TIMEOUT | KVX_ENGINE_PARAM_FIELD_BUSY_POLL |
                      KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT,
        .name = name,
        .io_threads = kv->io_threads,
        .busy_poll_us = kv->busy_poll_us,
        .peer_timeout_ms = kv->peer_timeout_ms,
        .transfer_timeout_ms = kv->sync_timeout_ms,
        .notify_timeout_ms = kv->sync_timeout_ms};
    if (kv->auth_secret != NULL) {
        ep.field_mask |= KVX_ENGINE_PARAM_FIELD_AUTH_SECRET;
        ep.auth_secret = kv->auth_secret;
        ep.auth_secret_len = kv->auth_secret_len;
    }
    return kvx_engine_create(&ep, engine_p);
}

static kvx_status_t register_region(kvx_engine_h engine, void *addr, size_t len,
                                    kvx_mem_type_t type, uint64_t tag, kvx_mem_access_t access,
                                    kvx_mem_h *mem_p)
{
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                         KVX_MEM_PARAM_FIELD_TYPE | KVX_MEM_PARAM_FIELD_TAG |
                                         KVX_MEM_PARAM_FIELD_ACCESS,
                           .address = addr,
                           .length = len,
                           .mem_type = type,
                           .tag = tag,
                           .access = access};
    return kvx_mem_register(engine, &mp, mem_p);
}

/* Republish the cache table; kv->lock held. */
static kvx_status_t publish(kvx_kv_h kv)
{
    size_t n = 0;
    for (kv_cache_t *c = kv->caches; c != NULL; c = c->next) {
        n++;
    }
    kvx_kv_table_entry_t *entries = calloc(n ? n : 1, sizeof(*entries));
    if (entries == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory publishing the cache table");
    }
    size_t i = 0;
    for (kv_cache_t *c = kv->caches; c != NULL; c = c->next, i++) {
        entries[i] = (kvx_kv_table_entry_t){
            .cache_id = c->id, .placement = c->placement, .geom = c->geom, .addrs = c->addrs};
    }
    kvx_status_t status =
        kvx_kv_table_publish(kv->table, kv->table_cap, kv->cluster_id, entries, n);
    free(entries);
    return status;
}

/* Register the table and every cache with @p engine, and only on success
 * switch the handles over to it. kv->lock held. */
static kvx_status_t register_all(kvx_kv_h kv, kvx_engine_h engine)
{
    size_t total = 1;
    for (kv_cache_t *c = kv->caches; c != NULL; c = c->next) {
        total += c->geom.num_tensors;
    }
    kvx_mem_h *handles = calloc(total, sizeof(*handles));
    if (handles == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory");
    }
    kvx_status_t status = register_region(engine, kv->table, kv->table_cap, KVX_MEM_HOST,
                                          KVX_KV_TABLE_TAG, KVX_MEM_ACCESS_READ_ONLY, &handles[0]);
    size_t k = 1;
    for (kv_cache_t *c = kv->caches; c != NULL && status == KVX_OK; c = c->next) {
        for (uint32_t t = 0; t < c->geom.num_tensors && status == KVX_OK; t++, k++) {
            status = register_region(engine, (void *)(uintptr_t)c->addrs[t], c->geom.tensor_size,
                                     c->placement, (uint64_t)c->id, KVX_MEM_ACCESS_READ_WRITE,
                                     &handles[k]);
        }
    }
    if (status == KVX_OK) {
        /* A failed attempt leaves the handles of the current engine alone
         * (the caller destroys the new engine, which drops its own). */
        kv->table_mem = handles[0];
        k = 1;
        for (kv_cache_t *c = kv->caches; c != NULL; c = c->next) {
            for (uint32_t t = 0; t < c->geom.num_tensors; t++, k++) {
                c->mems[t] = handles[k];
            }
        }
    }
    free(handles);
    return status;
}

kvx_status_t kvx_kv_create(const kvx_kv_params_t *params, kvx_kv_h *kv_p)
{
    kvx_error_clear();
    if (params == NULL || kv_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: NULL argument");
    }
    uint64_t mask = params->field_mask;
    if (mask & ~(uint64_t)KVX_KV_PARAM_FIELDS_ALL) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "kv_create: unknown field_mask bits");
    }
    if (!(mask & KVX_KV_PARAM_FIELD_CLUSTER_ID)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: cluster_id is required");
    }
    kvx_kv_role_t role = (mask & KVX_KV_PARAM_FIELD_ROLE) ? params->role : KVX_KV_ROLE_MIX;
    if (role < KVX_KV_ROLE_PROMPT || role > KVX_KV_ROLE_MIX) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: unknown role %d", role);
    }
    const char *local_ip = (mask & KVX_KV_PARAM_FIELD_LOCAL_IP) ? params->local_ip : "0.0.0.0";
    const char *listen = (mask & KVX_KV_PARAM_FIELD_LISTEN) ? params->listen : NULL;
    if (local_ip == NULL || strlen(local_ip) >= KVX_ENGINE_NAME_MAX || name_has_port(local_ip)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: bad local_ip (an \"ip\", no port)");
    }
    if ((mask & KVX_KV_PARAM_FIELD_LISTEN) && (listen == NULL || !name_has_port(listen))) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kv_create: listen must be \"ip:port\" or \"[ip6]:port\"");
    }
    int device = (mask & KVX_KV_PARAM_FIELD_DEVICE_ID) ? params->device_id : 0;
    int ndev = 0;
    if (kvx_device_count(&ndev) != KVX_OK || device < 0 || device >= ndev) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: device %d outside 0..%d", device,
                        ndev - 1);
    }
    size_t cap = (mask & KVX_KV_PARAM_FIELD_TABLE_CAPACITY) ? params->table_capacity
                                                            : DEFAULT_TABLE_CAPACITY;
    if (cap < 4096 || cap > (64u << 20)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kv_create: table_capacity %zu outside 4 KiB..64 MiB", cap);
    }
    if ((mask & KVX_KV_PARAM_FIELD_STAGING_POOL) &&
        ((params->staging_buffers == 0) != (params->staging_buffer_size == 0) ||
         params->staging_buffers > 1024)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kv_create: staging pool needs both a count (1..1024) and a size, or "
                        "neither");
    }
    unsigned timeout = (mask & KVX_KV_PARAM_FIELD_SYNC_TIMEOUT) ? params->sync_timeout_ms
                                                                : DEFAULT_SYNC_TIMEOUT_MS;
    if (timeout == 0 || timeout > 3600000u) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: sync_timeout_ms %u outside 1..3600000",
                        timeout);
    }

    if ((mask & KVX_KV_PARAM_FIELD_AUTH_SECRET) &&
        (params->auth_secret == NULL || params->auth_secret_len < KVX_AUTH_SECRET_MIN ||
         params->auth_secret_len > KVX_AUTH_SECRET_MAX)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_create: auth_secret must be %d..%d bytes",
                        KVX_AUTH_SECRET_MIN, KVX_AUTH_SECRET_MAX);
    }

    kvx_kv_h kv = calloc(1, sizeof(*kv));
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv_create: out of memory");
    }
    if (mask & KVX_KV_PARAM_FIELD_AUTH_SECRET) {
        kv->auth_secret = malloc(params->auth_secret_len);
        if (kv->auth_secret == NULL) {
            free(kv);
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv_create: out of memory");
        }
        memcpy(kv->auth_secret, params->auth_secret, params->auth_secret_len);
        kv->auth_secret_len = params->auth_secret_len;
    }
    kv->cluster_id = params->cluster_id;
    kv->role = role;
    snprintf(kv->local_ip, sizeof(kv->local_ip), "%s", local_ip);
    kv->device_id = device;
    kv->sync_timeout_ms = timeout;
    kv->io_threads = (mask & KVX_KV_PARAM_FIELD_IO_THREADS) ? params->io_threads : 1;
    kv->busy_poll_us =
        (mask & KVX_KV_PARAM_FIELD_BUSY_POLL) ? params->busy_poll_us : KVX_DEFAULT_BUSY_POLL_US;
    kv->peer_timeout_ms = (mask & KVX_KV_PARAM_FIELD_PEER_TIMEOUT) ? params->peer_timeout_ms
                                                                   : KVX_DEFAULT_PEER_TIMEOUT_MS;
    kv->switch_role_enable =
        (mask & KVX_KV_PARAM_FIELD_SWITCH_ROLE) ? params->switch_role_enable : 1;
    kv->next_cache_id = 1;
    kv->table_cap = cap;
    kv->table = calloc(1, cap);
    pthread_mutex_init(&kv->lock, NULL);
    pthread_rwlock_init(&kv->engine_lock, NULL);
    kvx_status_t status = (kv->table == NULL) ? KVX_ERR_NO_MEMORY : KVX_OK;
    if (status == KVX_OK) {
        status = make_engine(kv, listen != NULL ? listen : kv->local_ip, &kv->engine);
    }
    if (status == KVX_OK) {
        publish(kv);
        status = register_all(kv, kv->engine);
    }
    if (status != KVX_OK) {
        if (kv->engine != NULL) {
            kvx_engine_destroy(kv->engine);
        }
        free(kv->table);
        free(kv->auth_secret);
        pthread_mutex_destroy(&kv->lock);
        pthread_rwlock_destroy(&kv->engine_lock);
        free(kv);
        return status;
    }
    snprintf(kv->name, sizeof(kv->name), "%s", kvx_engine_name(kv->engine));
    kvx_info("kv: cluster %llu (%s) at %s", (unsigned long long)kv->cluster_id,
             role == KVX_KV_ROLE_PROMPT    ? "prompt"
             : role == KVX_KV_ROLE_DECODER ? "decoder"
                                           : "mix",
             kvx_engine_name(kv->engine));
    *kv_p = kv;
    return KVX_OK;
}

static void cache_free(kv_cache_t *c)
{
    if (c->allocated) {
        for (uint32_t t = 0; t < c->geom.num_tensors; t++) {
            void *p = (void *)(uintptr_t)c->addrs[t];
            if (c->placement == KVX_MEM_DEVICE) {
                kvx_device_free(c->device, p);
            } else if (!c->host_shared || kvx_host_free(p) != KVX_OK) {
                free(p); /* a tensor that fell back to the C allocator */
            }
        }
    }
    free(c->addrs);
    free(c->mems);
    free(c);
}

void kvx_kv_destroy(kvx_kv_h kv)
{
    if (kv == NULL) {
        return;
    }
    /* The engine goes first: it ends every transfer and drops every
     * registration, so the memory below is no longer reachable. */
    kvx_engine_destroy(kv->engine);
    for (kv_link_t *l = kv->links, *next; l != NULL; l = next) {
        next = l->next;
        kvx_kv_table_free(l->caches, l->ncaches);
        free(l);
    }
    for (kv_cache_t *c = kv->caches, *next; c != NULL; c = next) {
        next = c->next;
        cache_free(c);
    }
    free(kv->table);
    if (kv->auth_secret != NULL) {
        explicit_bzero(kv->auth_secret, kv->auth_secret_len); /* not optimised away */
        free(kv->auth_secret);
    }
    pthread_mutex_destroy(&kv->lock);
    pthread_rwlock_destroy(&kv->engine_lock);
    free(kv);
}

const char *kvx_kv_listen_name(kvx_kv_h kv)
{
    return kv != NULL ? kv->name : "";
}

uint64_t kvx_kv_cluster_id(kvx_kv_h kv)
{
    return kv != NULL ? kv->cluster_id : 0;
}

kvx_kv_role_t kvx_kv_role(kvx_kv_h kv)
{
    return kv != NULL ? kv->role : KVX_KV_ROLE_MIX;
}

/* ------------------------------------------------------------- caches */

static kv_cache_t *cache_find(kvx_kv_h kv, int64_t id)
{
    for (kv_cache_t *c = kv->caches; c != NULL; c = c->next) {
        if (c->id == id) {
            return c;
        }
    }
    return NULL;
}

static kvx_status_t cache_add(kvx_kv_h kv, const kvx_kv_cache_desc_t *desc,
                              void *const *given_addrs, int64_t *cache_id_p, void **out_addrs)
{
    kvx_kv_geom_t geom;
    kvx_status_t status = kvx_kv_geom_init(&geom, desc);
    if (status != KVX_OK) {
        return status;
    }
    kvx_mem_type_t placement =
        (desc->field_mask & KVX_KV_CACHE_FIELD_PLACEMENT) ? desc->placement : KVX_MEM_DEVICE;
    if (placement != KVX_MEM_HOST && placement != KVX_MEM_DEVICE) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache: unknown placement %d", placement);
    }
    kv_cache_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->addrs = calloc(geom.num_tensors, sizeof(uint64_t))) == NULL ||
        (c->mems = calloc(geom.num_tensors, sizeof(kvx_mem_h))) == NULL) {
        if (c != NULL) {
            free(c->addrs);
        }
        free(c);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "cache: out of memory");
    }
    c->placement = placement;
    c->device = kv->device_id;
    c->allocated = given_addrs == NULL;
    c->geom = geom;
    for (uint32_t t = 0; t < geom.num_tensors; t++) {
        void *p = NULL;
        if (given_addrs != NULL) {
            p = given_addrs[t];
            if (p == NULL) {
                status = KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache: tensor %u address is NULL", t);
            }
        } else if (placement == KVX_MEM_DEVICE) {
            status = kvx_device_malloc(c->device, geom.tensor_size, &p);
        } else if (geom.tensor_size >= (2u << 20) &&
                   kvx_host_malloc(geom.tensor_size, &p) == KVX_OK) {
            c->host_shared = 1; /* same-host peers map it and use memcpy */
        } else if (posix_memalign(&p, geom.tensor_size >= (2u << 20) ? (2u << 20) : 4096,
                                  geom.tensor_size) != 0) {
            p = NULL;
            status = KVX_FAIL(KVX_ERR_NO_MEMORY, "cache: out of host memory for %llu bytes",
                              (unsigned long long)geom.tensor_size);
        } else if (geom.tensor_size >= (2u << 20)) {
            madvise(p, geom.tensor_size, MADV_HUGEPAGE); /* see device_host.c */
        }
        if (status != KVX_OK) {
            break;
        }
        c->addrs[t] = (uintptr_t)p;
    }
    c->geom.addrs = c->addrs;

    pthread_mutex_lock(&kv->lock);
    if (status == KVX_OK) {
        c->id = kv->next_cache_id;
        for (uint32_t t = 0; t < geom.num_tensors && status == KVX_OK; t++) {
            status =
                register_region(kv->engine, (void *)(uintptr_t)c->addrs[t], geom.tensor_size,
                                placement, (uint64_t)c->id, KVX_MEM_ACCESS_READ_WRITE, &c->mems[t]);
        }
        if (status == KVX_OK) {
            c->next = kv->caches;
            kv->caches = c;
            status = publish(kv);
            if (status != KVX_OK) {
                kv->caches = c->next;
            }
        }
        if (status != KVX_OK) {
            for (uint32_t t = 0; t < geom.num_tensors; t++) {
                if (c->mems[t] != NULL) {
                    /* Keep the detail of the failure, not of the rollback. */
                    KVX_KEEP_ERROR(kvx_mem_deregister(kv->engine, c->mems[t]));
                }
            }
        } else {
            kv->next_cache_id++;
        }
    }
    /* Copy out before unlocking: once published, another thread may
     * remove the cache. */
    if (status == KVX_OK) {
        *cache_id_p = c->id;
        for (uint32_t t = 0; out_addrs != NULL && t < geom.num_tensors; t++) {
            out_addrs[t] = (void *)(uintptr_t)c->addrs[t];
        }
        kvx_debug("kv: cache %lld: %u tensors of %llu bytes (%s)", (long long)c->id,
                  geom.num_tensors, (unsigned long long)geom.tensor_size,
                  c->allocated ? "allocated" : "registered");
    }
    pthread_mutex_unlock(&kv->lock);
    if (status != KVX_OK) {
        cache_free(c);
        return status;
    }
    return KVX_OK;
}

kvx_status_t kvx_kv_cache_allocate(kvx_kv_h kv, const kvx_kv_cache_desc_t *desc,
                                   int64_t *cache_id_p, void **tensor_addrs)
{
    kvx_error_clear();
    if (kv == NULL || desc == NULL || cache_id_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache_allocate: NULL argument");
    }
    return cache_add(kv, desc, NULL, cache_id_p, tensor_addrs);
}

kvx_status_t kvx_kv_cache_register(kvx_kv_h kv, const kvx_kv_cache_desc_t *desc,
                                   void *const *tensor_addrs, int64_t *cache_id_p)
{
    kvx_error_clear();
    if (kv == NULL || desc == NULL || tensor_addrs == NULL || cache_id_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache_register: NULL argument");
    }
    return cache_add(kv, desc, tensor_addrs, cache_id_p, NULL);
}

static kvx_status_t cache_remove(kvx_kv_h kv, int64_t id, int allocated)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache: NULL instance");
    }
    /* Shared engine lock: the engine stays while kv->lock is dropped below. */
    pthread_rwlock_rdlock(&kv->engine_lock);
    pthread_mutex_lock(&kv->lock);
    kv_cache_t **pp = &kv->caches;
    while (*pp != NULL && (*pp)->id != id) {
        pp = &(*pp)->next;
    }
    kv_cache_t *c = *pp;
    kvx_status_t status = KVX_OK;
    if (c == NULL) {
        status = KVX_FAIL(KVX_ERR_CACHE_NOT_FOUND, "no cache %lld", (long long)id);
    } else if (c->allocated != allocated) {
        status = KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache %lld was %s: use %s", (long long)id,
                          c->allocated ? "allocated" : "registered",
                          c->allocated ? "kvx_kv_cache_deallocate" : "kvx_kv_cache_unregister");
    } else if (c->busy > 0) {
        status =
            KVX_FAIL(KVX_ERR_BUSY, "cache %lld is used by %u transfer(s)", (long long)id, c->busy);
    } else {
        /* Unpublish first so peers stop finding it; unlinked, no local call
         * can reach it either. */
        *pp = c->next;
        publish(kv);
    }
    pthread_mutex_unlock(&kv->lock);
    if (status != KVX_OK) {
        pthread_rwlock_unlock(&kv->engine_lock);
        return status;
    }
    /* A peer's READ holds the memory until its last byte is sent, which can
     * be just after the peer saw it finish: allow that 200 ms in all. */
    uint64_t give_up = now_ms() + 200;
    uint32_t t = 0;
    for (; t < c->geom.num_tensors && status == KVX_OK; t++) {
        status = kvx_mem_deregister(kv->engine, c->mems[t]);
        while (status == KVX_ERR_BUSY && now_ms() < give_up) {
            usleep(1000);
            status = kvx_mem_deregister(kv->engine, c->mems[t]);
        }
    }
    if (status != KVX_OK) {
        /* Still in use by a peer: put back what was dropped and report it;
         * never free memory a peer may still touch. */
        for (uint32_t u = 0; u + 1 < t; u++) {
            KVX_KEEP_ERROR(register_region(kv->engine, (void *)(uintptr_t)c->addrs[u],
                                           c->geom.tensor_size, c->placement, (uint64_t)c->id,
                                           KVX_MEM_ACCESS_READ_WRITE, &c->mems[u]));
        }
        pthread_mutex_lock(&kv->lock);
        c->next = kv->caches;
        kv->caches = c;
        publish(kv);
        pthread_mutex_unlock(&kv->lock);
        status = KVX_FAIL(status, "cache %lld is in use by a peer; retry", (long long)id);
    } else {
        cache_free(c);
    }
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_cache_deallocate(kvx_kv_h kv, int64_t cache_id)
{
    return cache_remove(kv, cache_id, 1);
}

kvx_status_t kvx_kv_cache_unregister(kvx_kv_h kv, int64_t cache_id)
{
    return cache_remove(kv, cache_id, 0);
}

kvx_status_t kvx_kv_cache_tensors(kvx_kv_h kv, int64_t cache_id, void **addrs, size_t max)
{
    kvx_error_clear();
    if (kv == NULL || (addrs == NULL && max > 0)) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache_tensors: NULL argument");
    }
    pthread_mutex_lock(&kv->lock);
    kv_cache_t *c = cache_find(kv, cache_id);
    kvx_status_t status = KVX_OK;
    if (c == NULL) {
        status = KVX_FAIL(KVX_ERR_CACHE_NOT_FOUND, "no cache %lld", (long long)cache_id);
    } else {
        for (size_t t = 0; t < max && t < c->geom.num_tensors; t++) {
            addrs[t] = (void *)(uintptr_t)c->addrs[t];
        }
    }
    pthread_mutex_unlock(&kv->lock);
    return status;
}

/* -------------------------------------------------------------- links */

static kv_link_t *link_find(kvx_kv_h kv, uint64_t cluster_id)
{
    for (kv_link_t *l = kv->links; l != NULL; l = l->next) {
        if (l->cluster_id == cluster_id) {
            return l;
        }
    }
    return NULL;
}

/* Read a remote's cache table (retrying torn copies). */
static kvx_status_t read_table(kvx_engine_h engine, const char *remote, uint64_t addr, size_t len,
                               uint64_t deadline, uint64_t *cluster_p,
                               kvx_kv_table_entry_t **entries_p, size_t *count_p)
{
    size_t want = len < KVX_KV_TABLE_FIRST_READ ? len : KVX_KV_TABLE_FIRST_READ;
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory for a %zu-byte table", len);
    }
    kvx_mem_h mem;
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = buf,
                           .length = len};
    kvx_status_t status = kvx_mem_register(engine, &mp, &mem);
    if (status != KVX_OK) {
        free(buf);
        return status;
    }
    kvx_xfer_params_t xp = {.field_mask =
                                KVX_XFER_PARAM_FIELD_TIMEOUT | KVX_XFER_PARAM_FIELD_REMOTE_TAG,
                            .remote_tag = KVX_KV_TABLE_TAG};
    for (int tries = 0; tries < TABLE_READ_TRIES; tries++) {
        kvx_xfer_desc_t d = {buf, addr, want};
        if ((status = left_ms(deadline, &xp.timeout_ms)) != KVX_OK) {
            break;
        }
        status = kvx_xfer_sync(engine, remote, KVX_OP_READ, &d, 1, &xp);
        if (status != KVX_OK) {
            break;
        }
        size_t need = 0;
        status = kvx_kv_table_parse(buf, want, cluster_p, entries_p, count_p, &need);
        if (status != KVX_INPROGRESS) {
            break;
        }
        if (need > want) {
            want = need <= len ? need : len;
        } else {
            usleep(100u << tries); /* the owner is rewriting it */
        }
        status = KVX_FAIL(KVX_ERR_PROTOCOL, "kv: cache table of %s stayed inconsistent", remote);
    }
    KVX_KEEP_ERROR(kvx_mem_deregister(engine, mem));
    free(buf);
    return status;
}

/* Re-read a link's table and swap it in. */
static kvx_status_t link_refresh(kvx_kv_h kv, kv_link_t *link, uint64_t deadline)
{
    uint64_t cluster;
    kvx_kv_table_entry_t *entries;
    size_t count;
    kvx_status_t status = read_table(kv->engine, link->remote, link->table_addr, link->table_len,
                                     deadline, &cluster, &entries, &count);
    if (status != KVX_OK) {
        return status;
    }
    pthread_mutex_lock(&kv->lock);
    kvx_kv_table_entry_t *old = link->caches;
    size_t nold = link->ncaches;
    link->caches = entries;
    link->ncaches = count;
    pthread_mutex_unlock(&kv->lock);
    kvx_kv_table_free(old, nold);
    return KVX_OK;
}

static void link_put(kvx_kv_h kv, kv_link_t *link)
{
    pthread_mutex_lock(&kv->lock);
    int last = --link->refs == 0 && link->unlinked;
    pthread_mutex_unlock(&kv->lock);
    if (last) {
        kvx_kv_table_free(link->caches, link->ncaches);
        free(link);
    }
}

/* Find the table region of a connected remote and check its cluster id. */
static kvx_status_t link_setup(kvx_kv_h kv, const kvx_kv_cluster_t *cl, int timeout_ms,
                               kv_link_t **link_p)
{
    /* The table can sit anywhere among many tensor registrations. */
    size_t room = 256, n = 0;
    kvx_remote_mem_t *mems = NULL;
    kvx_status_t status;
    for (;;) {
        kvx_remote_mem_t *grown = realloc(mems, room * sizeof(*mems));
        if (grown == NULL) {
            free(mems);
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory");
        }
        mems = grown;
        status = kvx_engine_remote_mem(kv->engine, cl->remote, mems, room, &n, timeout_ms);
        if (status != KVX_OK || n <= room) {
            break;
        }
        room = n;
    }
    kv_link_t *link = status == KVX_OK ? calloc(1, sizeof(*link)) : NULL;
    if (link == NULL) {
        free(mems);
        return status != KVX_OK ? status : KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory");
    }
    for (size_t i = 0; i < n && i < room; i++) {
        if (mems[i].tag == KVX_KV_TABLE_TAG) {
            link->table_addr = mems[i].address;
            link->table_len = mems[i].length;
        }
    }
    free(mems);
    if (link->table_addr == 0 || link->table_len > (64u << 20)) {
        free(link);
        return KVX_FAIL(KVX_ERR_CLUSTER_MISMATCH, "%s is a kvx engine but not a KV instance",
                        cl->remote);
    }
    link->cluster_id = cl->remote_cluster_id;
    snprintf(link->remote, sizeof(link->remote), "%s", cl->remote);
    uint64_t cluster = 0;
    status = read_table(kv->engine, cl->remote, link->table_addr, link->table_len,
                        now_ms() + (uint64_t)timeout_ms, &cluster, &link->caches, &link->ncaches);
    if (status == KVX_OK && cluster != cl->remote_cluster_id) {
        status = KVX_FAIL(KVX_ERR_CLUSTER_MISMATCH, "%s is cluster %llu, not %llu", cl->remote,
                          (unsigned long long)cluster, (unsigned long long)cl->remote_cluster_id);
    }
    if (status != KVX_OK) {
        kvx_kv_table_free(link->caches, link->ncaches);
        free(link);
        return status;
    }
    *link_p = link;
    return KVX_OK;
}

static kvx_status_t link_impl(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                              int timeout_ms, kvx_status_t *statuses)
{
    kvx_error_clear();
    if (kv == NULL || clusters == NULL || count == 0 || timeout_ms < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_link: NULL, empty or negative argument");
    }
    if (count > KVX_KV_MAX_CLUSTERS_PER_CALL) {
        return KVX_FAIL(KVX_ERR_TOO_MANY_CLUSTERS, "kv_link: %zu clusters, at most %d per call",
                        count, KVX_KV_MAX_CLUSTERS_PER_CALL);
    }
    unsigned timeout = timeout_ms ? (unsigned)timeout_ms : kv->sync_timeout_ms;
    uint64_t deadline = now_ms() + timeout;
    kvx_status_t first_error = KVX_OK;
    kvx_status_t st[KVX_KV_MAX_CLUSTERS_PER_CALL];
    int connected_here[KVX_KV_MAX_CLUSTERS_PER_CALL] = {0};
    /* Start every connection, then finish them one by one: the total wait
     * is one timeout, not one per cluster. */
    for (size_t i = 0; i < count; i++) {
        st[i] = KVX_OK;
        if (clusters[i].remote == NULL) {
            st[i] = KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_link: cluster %zu has no remote", i);
            continue;
        }
        pthread_mutex_lock(&kv->lock);
        int linked = link_find(kv, clusters[i].remote_cluster_id) != NULL;
        pthread_mutex_unlock(&kv->lock);
        if (linked) {
            st[i] = KVX_FAIL(KVX_ERR_ALREADY_LINKED, "already linked to cluster %llu",
                             (unsigned long long)clusters[i].remote_cluster_id);
            continue;
        }
        kvx_status_t s = kvx_engine_connect_async(kv->engine, clusters[i].remote, (int)timeout);
        if (s != KVX_OK && s != KVX_ERR_ALREADY_CONNECTED) {
            st[i] = s;
        }
        /* A connection that already existed belongs to another link. */
        connected_here[i] = s == KVX_OK;
    }
    for (size_t i = 0; i < count; i++) {
        if (st[i] == KVX_OK) {
            uint64_t now = now_ms();
            int left = now < deadline ? (int)(deadline - now) : 1;
            kvx_status_t s = kvx_engine_connect(kv->engine, clusters[i].remote, left);
            if (s == KVX_ERR_ALREADY_CONNECTED) {
                s = KVX_OK;
            }
            kv_link_t *link = NULL;
            if (s == KVX_OK) {
                now = now_ms();
                s = link_setup(kv, &clusters[i], now < deadline ? (int)(deadline - now) : 1, &link);
            }
            if (s == KVX_OK) {
                pthread_mutex_lock(&kv->lock);
                if (link_find(kv, link->cluster_id) != NULL) {
                    s = KVX_FAIL(KVX_ERR_ALREADY_LINKED, "already linked to cluster %llu",
                                 (unsigned long long)link->cluster_id);
                } else {
                    link->next = kv->links;
                    kv->links = link;
                }
                pthread_mutex_unlock(&kv->lock);
                if (s != KVX_OK) {
                    kvx_kv_table_free(link->caches, link->ncaches);
                    free(link);
                } else {
                    kvx_info("kv: cluster %llu linked to cluster %llu at %s",
                             (unsigned long long)kv->cluster_id,
                             (unsigned long long)clusters[i].remote_cluster_id, clusters[i].remote);
                }
            } else if (s != KVX_ERR_ALREADY_LINKED && connected_here[i]) {
                KVX_KEEP_ERROR(kvx_engine_disconnect(kv->engine, clusters[i].remote, 1000));
            }
            st[i] = s;
        }
        if (statuses != NULL) {
            statuses[i] = st[i];
        }
        if (st[i] != KVX_OK && first_error == KVX_OK) {
            first_error = st[i];
        }
    }
    return first_error;
}

static kvx_status_t unlink_impl(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                                int timeout_ms, int force, kvx_status_t *statuses)
{
    kvx_error_clear();
    if (kv == NULL || clusters == NULL || count == 0 || timeout_ms < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_unlink: NULL, empty or negative argument");
    }
    if (count > KVX_KV_MAX_CLUSTERS_PER_CALL) {
        return KVX_FAIL(KVX_ERR_TOO_MANY_CLUSTERS, "kv_unlink: %zu clusters, at most %d per call",
                        count, KVX_KV_MAX_CLUSTERS_PER_CALL);
    }
    kvx_status_t first_error = KVX_OK;
    for (size_t i = 0; i < count; i++) {
        pthread_mutex_lock(&kv->lock);
        kv_link_t **pp = &kv->links;
        while (*pp != NULL && (*pp)->cluster_id != clusters[i].remote_cluster_id) {
            pp = &(*pp)->next;
        }
        kv_link_t *link = *pp;
        if (link != NULL) {
            *pp = link->next;
            link->unlinked = 1;
            link->refs++; /* ours, for the disconnect below */
        }
        pthread_mutex_unlock(&kv->lock);
        kvx_status_t s = KVX_OK;
        if (link == NULL) {
            s = force ? KVX_OK
                      : KVX_FAIL(KVX_ERR_NOT_LINKED, "not linked to cluster %llu",
                                 (unsigned long long)clusters[i].remote_cluster_id);
        } else {
            /* Transfers still running on the link end with KVX_ERR_CANCELED. */
            s = kvx_engine_disconnect(kv->engine, link->remote, timeout_ms);
            if (s == KVX_ERR_NOT_CONNECTED || force) {
                s = KVX_OK;
            }
            link_put(kv, link);
        }
        if (statuses != NULL) {
            statuses[i] = s;
        }
        if (s != KVX_OK && first_error == KVX_OK) {
            first_error = s;
        }
    }
    return first_error;
}

static kvx_status_t link_count_impl(kvx_kv_h kv, size_t *outgoing, size_t *incoming)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "link_count: NULL instance");
    }
    if (outgoing != NULL) {
        size_t n = 0;
        pthread_mutex_lock(&kv->lock);
        for (kv_link_t *l = kv->links; l != NULL; l = l->next) {
            n++;
        }
        pthread_mutex_unlock(&kv->lock);
        *outgoing = n;
    }
    if (incoming != NULL) {
        return kvx_engine_incoming_links(kv->engine, incoming);
    }
    return KVX_OK;
}

static kvx_status_t set_role_locked(kvx_kv_h kv, kvx_kv_role_t role, const char *listen);

kvx_status_t kvx_kv_set_role(kvx_kv_h kv, kvx_kv_role_t role, const char *listen)
{
    kvx_error_clear();
    if (kv == NULL || role < KVX_KV_ROLE_PROMPT || role > KVX_KV_ROLE_MIX) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "set_role: NULL instance or unknown role");
    }
    if (!kv->switch_role_enable) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "set_role: switching roles was disabled");
    }
    /* Exclusive: no other call may use the engine while it is replaced. */
    pthread_rwlock_wrlock(&kv->engine_lock);
    kvx_status_t status = set_role_locked(kv, role, listen);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

static kvx_status_t set_role_locked(kvx_kv_h kv, kvx_kv_role_t role, const char *listen)
{
    size_t out = 0, in = 0;
    link_count_impl(kv, &out, &in);
    if (out > 0 || in > 0) {
        return KVX_FAIL(KVX_ERR_LINK_EXISTS,
                        "set_role: %zu outgoing and %zu incoming link(s) exist; unlink first", out,
                        in);
    }
    const char *cur = kvx_engine_name(kv->engine);
    int listening = strchr(cur, ':') != NULL && cur[0] != '[' ? 1 : strstr(cur, "]:") != NULL;
    int same = (listen == NULL) ? !listening : (listening && strcmp(listen, cur) == 0);
    if (!same) {
        /* A new engine with the new address; caches keep their ids and
         * memory, the table and tensors are registered with it. */
        kvx_engine_h engine;
        kvx_status_t status = make_engine(kv, listen != NULL ? listen : kv->local_ip, &engine);
        if (status != KVX_OK) {
            return status;
        }
        pthread_mutex_lock(&kv->lock);
        status = register_all(kv, engine);
        if (status != KVX_OK) {
            pthread_mutex_unlock(&kv->lock);
            kvx_engine_destroy(engine);
            return status;
        }
        kvx_engine_h old = kv->engine;
        kv->engine = engine;
        snprintf(kv->name, sizeof(kv->name), "%s", kvx_engine_name(engine));
        pthread_mutex_unlock(&kv->lock);
        kvx_engine_destroy(old);
    }
    pthread_mutex_lock(&kv->lock);
    kv->role = role;
    pthread_mutex_unlock(&kv->lock);
    kvx_info("kv: cluster %llu is now %s at %s", (unsigned long long)kv->cluster_id,
             role == KVX_KV_ROLE_PROMPT    ? "prompt"
             : role == KVX_KV_ROLE_DECODER ? "decoder"
                                           : "mix",
             kvx_engine_name(kv->engine));
    return KVX_OK;
}

/* ---------------------------------------------------------- transfers */

static kvx_status_t xfer_timeout(kvx_kv_h kv, const kvx_kv_xfer_params_t *params, int *out)
{
    *out = (int)kv->sync_timeout_ms;
    if (params != NULL && (params->field_mask & KVX_KV_XFER_FIELD_TIMEOUT)) {
        if (params->timeout_ms < 0) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "negative timeout");
        }
        if (params->timeout_ms > 0) {
            *out = params->timeout_ms;
        }
    }
    return KVX_OK;
}

static const kvx_kv_table_entry_t *remote_find(kv_link_t *link, int64_t id)
{
    for (size_t i = 0; i < link->ncaches; i++) {
        if (link->caches[i].cache_id == id) {
            return &link->caches[i];
        }
    }
    return NULL;
}

typedef struct kv_xfer {
    int pull; /* remote is the source */
    int blocks;
    const kvx_kv_remote_cache_t *remote;
    int64_t local_id;
    uint64_t local_entry;
    const uint64_t *src_blocks, *dst_blocks;
    size_t src_count, dst_count;
    const kvx_kv_xfer_params_t *params;
} kv_xfer_t;

/* Plan against the current remote snapshot and run one engine transfer. */
static kvx_status_t remote_xfer_impl(kvx_kv_h kv, const kv_xfer_t *x)
{
    int timeout;
    kvx_status_t status = xfer_timeout(kv, x->params, &timeout);
    if (status != KVX_OK) {
        return status;
    }
    uint64_t deadline = now_ms() + (uint64_t)timeout;
    if (x->remote == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "remote cache index is NULL");
    }
    if (x->remote->cluster_id == kv->cluster_id) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "cluster %llu is this instance; use kvx_kv_copy_* for local copies",
                        (unsigned long long)kv->cluster_id);
    }
    pthread_mutex_lock(&kv->lock);
    kv_cache_t *local = cache_find(kv, x->local_id);
    kv_link_t *link = link_find(kv, x->remote->cluster_id);
    if (local == NULL || link == NULL) {
        pthread_mutex_unlock(&kv->lock);
        return local == NULL ? KVX_FAIL(KVX_ERR_CACHE_NOT_FOUND, "no local cache %lld",
                                        (long long)x->local_id)
                             : KVX_FAIL(KVX_ERR_NOT_LINKED, "not linked to cluster %llu",
                                        (unsigned long long)x->remote->cluster_id);
    }
    local->busy++;
    link->refs++;
    for (int attempt = 0;; attempt++) {
        const kvx_kv_table_entry_t *rc = remote_find(link, x->remote->cache_id);
        if (rc == NULL) {
            if (attempt > 0) {
                status = KVX_FAIL(KVX_ERR_REMOTE_CACHE_NOT_FOUND, "cluster %llu has no cache %lld",
                                  (unsigned long long)x->remote->cluster_id,
                                  (long long)x->remote->cache_id);
                break;
            }
            /* Registered after our last look: read the table again. */
            pthread_mutex_unlock(&kv->lock);
            status = link_refresh(kv, link, deadline);
            pthread_mutex_lock(&kv->lock);
            if (status != KVX_OK) {
                break;
            }
            continue;
        }
        kvx_kv_geom_t rgeom = rc->geom;
        kvx_kv_plan_req_t req = {.src = x->pull ? &rgeom : &local->geom,
                                 .dst = x->pull ? &local->geom : &rgeom,
                                 .blocks = x->blocks,
                                 .src_entry = x->pull ? x->remote->batch_index : x->local_entry,
                                 .dst_entry = x->pull ? x->local_entry : x->remote->batch_index,
                                 .src_blocks = x->src_blocks,
                                 .src_count = x->src_count,
                                 .dst_blocks = x->dst_blocks,
                                 .dst_count = x->dst_count,
                                 .params = x->params};
        if (x->blocks && x->remote->batch_index != 0) {
            status = KVX_FAIL(KVX_ERR_BATCH_OUT_OF_RANGE,
                              "block calls take batch_index 0 in the remote index");
            break;
        }
        kvx_kv_span_t *spans = NULL;
        size_t n = 0;
        status = kvx_kv_plan(&req, &spans, &n);
        if (status == KVX_OK && n > KVX_XFER_MAX_DESCS) {
            status = KVX_FAIL(KVX_ERR_RESOURCE_EXHAUSTED,
                              "%zu spans exceed one transfer (%u); split the request", n,
                              KVX_XFER_MAX_DESCS);
        }
        pthread_mutex_unlock(&kv->lock);
        if (status == KVX_OK) {
            kvx_xfer_desc_t *descs = malloc(n * sizeof(*descs));
            if (descs == NULL) {
                status = KVX_FAIL(KVX_ERR_NO_MEMORY, "kv: out of memory for %zu spans", n);
            } else {
                for (size_t i = 0; i < n; i++) {
                    uint64_t l = x->pull ? spans[i].dst : spans[i].src;
                    uint64_t r = x->pull ? spans[i].src : spans[i].dst;
                    descs[i] = (kvx_xfer_desc_t){(void *)(uintptr_t)l, r, spans[i].len};
                }
                /* The tag makes the target refuse memory that is no longer
                 * this cache's, even if it was registered again since. */
                kvx_xfer_params_t xp = {
                    .field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT | KVX_XFER_PARAM_FIELD_REMOTE_TAG |
                                  KVX_XFER_PARAM_FIELD_CHECKSUM,
                    .timeout_ms = 0,
                    .remote_tag = (uint64_t)x->remote->cache_id,
                    .checksum = x->params != NULL &&
                                (x->params->field_mask & KVX_KV_XFER_FIELD_CHECKSUM) &&
                                x->params->checksum != 0};
                /* One engine transfer: every span checked before any moves. */
                status = left_ms(deadline, &xp.timeout_ms);
                if (status == KVX_OK) {
                    status = kvx_xfer_sync(kv->engine, link->remote,
                                           x->pull ? KVX_OP_READ : KVX_OP_WRITE, descs, n, &xp);
                }
                free(descs);
            }
            free(spans);
        }
        if (status == KVX_ERR_REMOTE_ACCESS && attempt == 0) {
            /* Maybe unregistered since our snapshot: look again. */
            kvx_status_t refreshed;
            KVX_KEEP_ERROR(refreshed = link_refresh(kv, link, deadline));
            if (refreshed == KVX_OK) {
                pthread_mutex_lock(&kv->lock);
                if (remote_find(link, x->remote->cache_id) == NULL) {
                    status = KVX_FAIL(
                        KVX_ERR_REMOTE_CACHE_NOT_FOUND, "cluster %llu no longer has cache %lld",
                        (unsigned long long)x->remote->cluster_id, (long long)x->remote->cache_id);
                }
                pthread_mutex_unlock(&kv->lock);
            }
        }
        pthread_mutex_lock(&kv->lock);
        int unlinked = link->unlinked;
        pthread_mutex_unlock(&kv->lock);
        if (status == KVX_ERR_CANCELED || (status != KVX_OK && unlinked)) {
            status = KVX_FAIL(KVX_ERR_CANCELED, "cluster %llu was unlinked during the transfer",
                              (unsigned long long)x->remote->cluster_id);
        }
        pthread_mutex_lock(&kv->lock);
        break;
    }
    local->busy--;
    pthread_mutex_unlock(&kv->lock);
    link_put(kv, link);
    return status;
}

static kvx_status_t notify_impl(kvx_kv_h kv, uint64_t cluster_id, const char *name, const void *msg,
                                size_t msg_len);
static kvx_status_t notify_fetch_impl(kvx_kv_h kv, int timeout_ms, kvx_notification_t **list_p,
                                      size_t *count_p);

/* --------------------------------------------- engine swaps (set_role) */

/* Calls that use kv->engine outside kv->lock hold engine_lock shared;
 * kvx_kv_set_role() takes it exclusively to replace the engine. */
kvx_status_t kvx_kv_link(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                         int timeout_ms, kvx_status_t *statuses)
{
    if (kv == NULL) {
        return link_impl(kv, clusters, count, timeout_ms, statuses);
    }
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = link_impl(kv, clusters, count, timeout_ms, statuses);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_unlink(kvx_kv_h kv, const kvx_kv_cluster_t *clusters, size_t count,
                           int timeout_ms, int force, kvx_status_t *statuses)
{
    if (kv == NULL) {
        return unlink_impl(kv, clusters, count, timeout_ms, force, statuses);
    }
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = unlink_impl(kv, clusters, count, timeout_ms, force, statuses);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_link_count(kvx_kv_h kv, size_t *outgoing, size_t *incoming)
{
    if (kv == NULL) {
        return link_count_impl(kv, outgoing, incoming);
    }
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = link_count_impl(kv, outgoing, incoming);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_notify(kvx_kv_h kv, uint64_t cluster_id, const char *name, const void *msg,
                           size_t msg_len)
{
    if (kv == NULL) {
        return notify_impl(kv, cluster_id, name, msg, msg_len);
    }
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = notify_impl(kv, cluster_id, name, msg, msg_len);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_notify_fetch(kvx_kv_h kv, int timeout_ms, kvx_notification_t **list_p,
                                 size_t *count_p)
{
    if (kv == NULL) {
        return notify_fetch_impl(kv, timeout_ms, list_p, count_p);
    }
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = notify_fetch_impl(kv, timeout_ms, list_p, count_p);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

static kvx_status_t remote_xfer(kvx_kv_h kv, const kv_xfer_t *x)
{
    pthread_rwlock_rdlock(&kv->engine_lock);
    kvx_status_t status = remote_xfer_impl(kv, x);
    pthread_rwlock_unlock(&kv->engine_lock);
    return status;
}

kvx_status_t kvx_kv_pull_cache(kvx_kv_h kv, const kvx_kv_remote_cache_t *src, int64_t cache_id,
                               uint32_t batch_index, const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "pull_cache: NULL instance");
    }
    kv_xfer_t x = {.pull = 1,
                   .remote = src,
                   .local_id = cache_id,
                   .local_entry = batch_index,
                   .params = params};
    return remote_xfer(kv, &x);
}

kvx_status_t kvx_kv_pull_blocks(kvx_kv_h kv, const kvx_kv_remote_cache_t *src, int64_t cache_id,
                                const uint64_t *src_blocks, size_t src_count,
                                const uint64_t *dst_blocks, size_t dst_count,
                                const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "pull_blocks: NULL instance");
    }
    kv_xfer_t x = {.pull = 1,
                   .blocks = 1,
                   .remote = src,
                   .local_id = cache_id,
                   .src_blocks = src_blocks,
                   .src_count = src_count,
                   .dst_blocks = dst_blocks,
                   .dst_count = dst_count,
                   .params = params};
    return remote_xfer(kv, &x);
}

kvx_status_t kvx_kv_push_cache(kvx_kv_h kv, int64_t cache_id, uint32_t batch_index,
                               const kvx_kv_remote_cache_t *dst, const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "push_cache: NULL instance");
    }
    kv_xfer_t x = {.pull = 0,
                   .remote = dst,
                   .local_id = cache_id,
                   .local_entry = batch_index,
                   .params = params};
    return remote_xfer(kv, &x);
}

kvx_status_t kvx_kv_push_blocks(kvx_kv_h kv, int64_t cache_id, const kvx_kv_remote_cache_t *dst,
                                const uint64_t *src_blocks, size_t src_count,
                                const uint64_t *dst_blocks, size_t dst_count,
                                const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "push_blocks: NULL instance");
    }
    kv_xfer_t x = {.pull = 0,
                   .blocks = 1,
                   .remote = dst,
                   .local_id = cache_id,
                   .src_blocks = src_blocks,
                   .src_count = src_count,
                   .dst_blocks = dst_blocks,
                   .dst_count = dst_count,
                   .params = params};
    return remote_xfer(kv, &x);
}

/* ------------------------------------------------------- local copies */

static kvx_copy_kind_t copy_kind(kvx_mem_type_t src, kvx_mem_type_t dst)
{
    if (src == KVX_MEM_DEVICE) {
        return dst == KVX_MEM_DEVICE ? KVX_COPY_D2D : KVX_COPY_D2H;
    }
    return dst == KVX_MEM_DEVICE ? KVX_COPY_H2D : KVX_COPY_H2H;
}

/* Plan one local copy per request and run them; both caches held busy. */
static kvx_status_t local_copy(kvx_kv_h kv, int64_t src_id, int64_t dst_id,
                               const kvx_kv_plan_req_t *reqs, size_t nreqs)
{
    pthread_mutex_lock(&kv->lock);
    kv_cache_t *src = cache_find(kv, src_id);
    kv_cache_t *dst = cache_find(kv, dst_id);
    if (src == NULL || dst == NULL) {
        pthread_mutex_unlock(&kv->lock);
        return KVX_FAIL(KVX_ERR_CACHE_NOT_FOUND, "no local cache %lld",
                        (long long)(src == NULL ? src_id : dst_id));
    }
    src->busy++;
    dst->busy++;
    pthread_mutex_unlock(&kv->lock);
    /* Plan and check every request before the first byte is copied. */
    kvx_status_t status = KVX_OK;
    kvx_kv_span_t **spans = calloc(nreqs, sizeof(*spans));
    size_t *counts = calloc(nreqs, sizeof(*counts));
    if (spans == NULL || counts == NULL) {
        status = KVX_FAIL(KVX_ERR_NO_MEMORY, "copy: out of memory");
    }
    for (size_t r = 0; r < nreqs && status == KVX_OK; r++) {
        kvx_kv_plan_req_t req = reqs[r];
        req.src = &src->geom;
        req.dst = &dst->geom;
        status = kvx_kv_plan(&req, &spans[r], &counts[r]);
        for (size_t i = 0; i < counts[r] && status == KVX_OK; i++) {
            const kvx_kv_span_t *s = &spans[r][i];
            if (src == dst && s->src < s->dst + s->len && s->dst < s->src + s->len) {
                status = KVX_FAIL(KVX_ERR_INVALID_PARAM, "copy: source and destination overlap");
            }
        }
    }
    for (size_t r = 0; r < nreqs && status == KVX_OK; r++) {
        for (size_t i = 0; i < counts[r] && status == KVX_OK; i++) {
            const kvx_kv_span_t *s = &spans[r][i];
            status =
                kvx_device_memcpy((void *)(uintptr_t)s->dst, (const void *)(uintptr_t)s->src,
                                  s->len, copy_kind(src->placement, dst->placement), dst->device);
        }
    }
    for (size_t r = 0; spans != NULL && r < nreqs; r++) {
        free(spans[r]);
    }
    free(spans);
    free(counts);
    pthread_mutex_lock(&kv->lock);
    src->busy--;
    dst->busy--;
    pthread_mutex_unlock(&kv->lock);
    return status;
}

kvx_status_t kvx_kv_copy_cache(kvx_kv_h kv, int64_t src_cache_id, uint32_t src_batch,
                               int64_t dst_cache_id, uint32_t dst_batch,
                               const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "copy_cache: NULL instance");
    }
    kvx_kv_plan_req_t req = {.src_entry = src_batch, .dst_entry = dst_batch, .params = params};
    return local_copy(kv, src_cache_id, dst_cache_id, &req, 1);
}

kvx_status_t kvx_kv_copy_blocks(kvx_kv_h kv, int64_t src_cache_id, int64_t dst_cache_id,
                                const uint64_t *src_blocks, size_t src_count,
                                const uint64_t *const *dst_lists, const size_t *dst_counts,
                                size_t num_lists, const kvx_kv_xfer_params_t *params)
{
    kvx_error_clear();
    if (kv == NULL || dst_lists == NULL || dst_counts == NULL || num_lists == 0 ||
        num_lists > KVX_KV_MAX_COPY_LISTS) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "copy_blocks: NULL destination lists, or not 1..%u of them",
                        KVX_KV_MAX_COPY_LISTS);
    }
    kvx_kv_plan_req_t *reqs = calloc(num_lists, sizeof(*reqs));
    if (reqs == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "copy_blocks: out of memory");
    }
    for (size_t j = 0; j < num_lists; j++) {
        reqs[j] = (kvx_kv_plan_req_t){.blocks = 1,
                                      .src_blocks = src_blocks,
                                      .src_count = src_count,
                                      .dst_blocks = dst_lists[j],
                                      .dst_count = dst_counts[j],
                                      .params = params};
    }
    kvx_status_t status = local_copy(kv, src_cache_id, dst_cache_id, reqs, num_lists);
    free(reqs);
    return status;
}

/* ------------------------------------------------------ notifications */

static kvx_status_t notify_impl(kvx_kv_h kv, uint64_t cluster_id, const char *name, const void *msg,
                                size_t msg_len)
{
    kvx_error_clear();
    if (kv == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_notify: NULL instance");
    }
    pthread_mutex_lock(&kv->lock);
    kv_link_t *link = link_find(kv, cluster_id);
    if (link != NULL) {
        link->refs++;
    }
    pthread_mutex_unlock(&kv->lock);
    if (link == NULL) {
        return KVX_FAIL(KVX_ERR_NOT_LINKED, "not linked to cluster %llu",
                        (unsigned long long)cluster_id);
    }
    kvx_status_t status = kvx_notify_send(kv->engine, link->remote, name, msg, msg_len, 0);
    link_put(kv, link);
    return status;
}

static kvx_status_t notify_fetch_impl(kvx_kv_h kv, int timeout_ms, kvx_notification_t **list_p,
                                      size_t *count_p)
{
    kvx_error_clear();
    if (kv == NULL || list_p == NULL || count_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_notify_fetch: NULL argument");
    }
    if (timeout_ms < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kv_notify_fetch: negative timeout");
    }
    *list_p = NULL;
    *count_p = 0;
    /* Another thread may take what the wait saw: wait again until ours. */
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t now = now_ms();
        int left = now < deadline ? (int)(deadline - now) : 0;
        kvx_status_t status = kvx_notify_wait(kv->engine, left);
        if (status != KVX_OK) {
            return status;
        }
        status = kvx_notify_fetch(kv->engine, list_p, count_p);
        if (status != KVX_OK || *count_p > 0) {
            return status;
        }
    }
}

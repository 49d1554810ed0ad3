/* Public device API: picks the backend once, checks arguments that do not
 * depend on the backend, and forwards to the backend's ops table. */
#include <kvx/device.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "device/backend.h"
#include "device/device_internal.h"
#include "util/error.h"

#define KNOWN_PARAM_FIELDS                                                                         \
    (KVX_DEVICE_PARAM_FIELD_BACKEND | KVX_DEVICE_PARAM_FIELD_NUM_DEVICES |                         \
     KVX_DEVICE_PARAM_FIELD_CAPACITY)

/* A CUDA backend plugs in here: build device_cuda.c, define KVX_HAVE_CUDA,
 * and backend_by_name() / select_default_locked() pick it up. */
#ifdef KVX_HAVE_CUDA
extern const kvx_device_ops_t kvx_device_cuda_ops;
#endif

/* Serialises choosing and (re)configuring the backend. */
static pthread_mutex_t select_lock = PTHREAD_MUTEX_INITIALIZER;
/* Goes from NULL to a backend once and never changes after, so readers need
 * only an acquire load. A failed choice is not remembered: a later
 * kvx_device_init() can still fix the configuration. */
static const kvx_device_ops_t *active_ops;
static int warned_default_failure;

static kvx_status_t backend_by_name(const char *name, const char *origin,
                                    const kvx_device_ops_t **ops_p)
{
    if (strcmp(name, "host") == 0) {
        *ops_p = &kvx_device_host_ops;
        return KVX_OK;
    }
    if (strcmp(name, "cuda") == 0) {
#ifdef KVX_HAVE_CUDA
        *ops_p = &kvx_device_cuda_ops;
        return KVX_OK;
#else
        return KVX_FAIL(KVX_ERR_UNSUPPORTED,
                        "device backend 'cuda' (%s) is not available: this kvx was built "
                        "without CUDA support; use 'host'",
                        origin);
#endif
    }
    return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                    "unknown device backend '%s' (%s): expected 'host' or 'cuda'", name, origin);
}

static void publish_locked(const kvx_device_ops_t *ops)
{
    __atomic_store_n(&active_ops, ops, __ATOMIC_RELEASE);
    kvx_debug("device backend: %s", ops->name);
}

/* No backend yet and none named by the caller: KVX_DEVICE, else a GPU if
 * there is one, else host. Caller holds select_lock. */
static kvx_status_t select_default_locked(const kvx_device_params_t *params)
{
    const kvx_device_ops_t *ops = &kvx_device_host_ops;
    const char *env = getenv("KVX_DEVICE");
    kvx_status_t status;
    if (env != NULL && *env != '\0') {
        status = backend_by_name(env, "from env KVX_DEVICE", &ops);
        if (status != KVX_OK) {
            return status;
        }
    } else {
#ifdef KVX_HAVE_CUDA
        /* Built with CUDA: use it when a GPU is there; UNSUPPORTED means none. */
        status = kvx_device_cuda_ops.init(params);
        if (status == KVX_OK) {
            publish_locked(&kvx_device_cuda_ops);
            return KVX_OK;
        }
        if (status != KVX_ERR_UNSUPPORTED) {
            return status;
        }
#endif
    }
    status = ops->init(params);
    if (status == KVX_OK) {
        publish_locked(ops);
    }
    return status;
}

/* The backend in use, choosing the default on first use. */
static kvx_status_t get_ops(const kvx_device_ops_t **ops_p)
{
    const kvx_device_ops_t *ops = __atomic_load_n(&active_ops, __ATOMIC_ACQUIRE);
    if (ops != NULL) {
        *ops_p = ops;
        return KVX_OK;
    }
    static const kvx_device_params_t defaults = {.field_mask = 0};
    pthread_mutex_lock(&select_lock);
    kvx_status_t status = KVX_OK;
    if (active_ops == NULL) {
        status = select_default_locked(&defaults);
        /* Callers may only see a status; say once why every call fails. */
        if (status != KVX_OK && !warned_default_failure) {
            warned_default_failure = 1;
            kvx_warn("no device backend: %s", kvx_last_error());
        }
    }
    ops = active_ops;
    pthread_mutex_unlock(&select_lock);
    if (status == KVX_OK) {
        *ops_p = ops;
    }
    return status;
}

kvx_status_t kvx_device_init(const kvx_device_params_t *params)
{
    static const kvx_device_params_t defaults = {.field_mask = 0};
    if (params == NULL) {
        params = &defaults;
    }
    uint64_t unknown = params->field_mask & ~(uint64_t)KNOWN_PARAM_FIELDS;
    if (unknown != 0) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED,
                        "kvx_device_init: unknown field_mask bits 0x%llx (built for a newer kvx?)",
                        (unsigned long long)unknown);
    }
    int named = (params->field_mask & KVX_DEVICE_PARAM_FIELD_BACKEND) != 0;
    if (named && params->backend == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_init: KVX_DEVICE_PARAM_FIELD_BACKEND set but backend is NULL");
    }

    pthread_mutex_lock(&select_lock);
    const kvx_device_ops_t *current = active_ops;
    kvx_status_t status = KVX_OK;
    if (named) {
        const kvx_device_ops_t *wanted = NULL;
        status = backend_by_name(params->backend, "from kvx_device_init()", &wanted);
        if (status == KVX_OK && current != NULL && wanted != current) {
            status = KVX_FAIL(KVX_ERR_BUSY,
                              "kvx_device_init: backend '%s' is already in use; choose '%s' "
                              "before any other device call",
                              current->name, params->backend);
        }
        if (status == KVX_OK) {
            status = wanted->init(params);
        }
        if (status == KVX_OK && current == NULL) {
            publish_locked(wanted);
        }
    } else if (current != NULL) {
        status = current->init(params); /* reconfigure the backend in use */
    } else {
        status = select_default_locked(params);
    }
    pthread_mutex_unlock(&select_lock);
    return status;
}

const char *kvx_device_backend(void)
{
    const kvx_device_ops_t *ops = NULL;
    if (get_ops(&ops) != KVX_OK) {
        return "none";
    }
    return ops->name;
}

kvx_status_t kvx_device_count(int *count_p)
{
    if (count_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_count: count_p is NULL");
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->count(count_p) : status;
}

int kvx_device_host_accessible(void)
{
    const kvx_device_ops_t *ops = NULL;
    if (get_ops(&ops) != KVX_OK) {
        return 0;
    }
    return ops->host_accessible();
}

kvx_status_t kvx_device_malloc(int device, size_t size, void **ptr_p)
{
    if (ptr_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_malloc(device %d, %zu bytes): ptr_p is NULL", device, size);
    }
    if (size == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_malloc(device %d): size is 0", device);
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->malloc_fn(device, size, ptr_p) : status;
}

kvx_status_t kvx_device_free(int device, void *ptr)
{
    /* NULL is passed on: the backend still checks the device id. */
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->free_fn(device, ptr) : status;
}

/* A range whose end wraps past the top of the address space is never valid,
 * and backends may then compute ptr + size safely. */
static int range_wraps(const void *ptr, size_t size)
{
    return size > UINTPTR_MAX - (uintptr_t)ptr;
}

kvx_status_t kvx_device_memset(int device, void *ptr, int value, size_t size)
{
    if (ptr == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_memset(device %d, %zu bytes): ptr is NULL", device, size);
    }
    if (size == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_memset(device %d, %p): size is 0",
                        device, ptr);
    }
    if (range_wraps(ptr, size)) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "kvx_device_memset(device %d): range %p (%zu bytes) wraps around the "
                        "address space",
                        device, ptr, size);
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->memset_fn(device, ptr, value, size) : status;
}

static const char *copy_kind_name(int kind)
{
    static const char *const names[] = {"H2H", "H2D", "D2H", "D2D"};
    return names[kind];
}

kvx_status_t kvx_device_memcpy(void *dst, const void *src, size_t size, kvx_copy_kind_t kind,
                               int device)
{
    int kind_value = (int)kind;
    if (kind_value < KVX_COPY_H2H || kind_value > KVX_COPY_D2D) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_memcpy(device %d, %zu bytes): unknown copy kind %d", device,
                        size, kind_value);
    }
    const char *kind_name = copy_kind_name(kind_value);
    if (dst == NULL || src == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_memcpy %s(device %d, dst %p, src %p, %zu bytes): NULL "
                        "pointer",
                        kind_name, device, dst, src, size);
    }
    if (size == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_memcpy %s(device %d, dst %p, src %p): size is 0", kind_name,
                        device, dst, src);
    }
    if (range_wraps(dst, size) || range_wraps(src, size)) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "kvx_device_memcpy %s(device %d, dst %p, src %p, %zu bytes): a range "
                        "wraps around the address space",
                        kind_name, device, dst, src, size);
    }
    uintptr_t d = (uintptr_t)dst;
    uintptr_t s = (uintptr_t)src;
    if (d < s + size && s < d + size) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "kvx_device_memcpy %s(device %d, dst %p, src %p, %zu bytes): source and "
                        "destination overlap",
                        kind_name, device, dst, src, size);
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->memcpy_fn(dst, src, size, kind, device) : status;
}

kvx_status_t kvx_device_locate(const void *ptr, size_t size, int *device_p)
{
    if (ptr == NULL || device_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_locate(%p, %zu bytes): %s is NULL", ptr,
                        size, ptr == NULL ? "ptr" : "device_p");
    }
    if (size == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_locate(%p): size is 0", ptr);
    }
    if (range_wraps(ptr, size)) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "kvx_device_locate: range %p (%zu bytes) wraps around the address space",
                        ptr, size);
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->locate(ptr, size, device_p) : status;
}

kvx_status_t kvx_host_malloc(size_t size, void **ptr_p)
{
    if (size == 0 || ptr_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_host_malloc: size 0 or NULL ptr_p");
    }
    void *p = kvx_host_shared_alloc(size);
    if (p == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "kvx_host_malloc(%zu bytes): no memory", size);
    }
    *ptr_p = p;
    return KVX_OK;
}

kvx_status_t kvx_host_free(void *ptr)
{
    if (ptr == NULL) {
        return KVX_OK;
    }
    return kvx_host_shared_free(ptr) == 0
               ? KVX_OK
               : KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_host_free(%p): not from kvx_host_malloc",
                          ptr);
}

int kvx_device_find_memfd(const void *ptr, size_t size, int *fd_p, uint64_t *offset_p)
{
    const kvx_device_ops_t *ops = NULL;
    if (ptr == NULL || size == 0 || range_wraps(ptr, size) || get_ops(&ops) != KVX_OK ||
        ops->memfd == NULL) {
        return 0;
    }
    return ops->memfd(ptr, size, fd_p, offset_p);
}

kvx_status_t kvx_device_used(int device, size_t *bytes_p)
{
    if (bytes_p == NULL) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "kvx_device_used(device %d): bytes_p is NULL",
                        device);
    }
    const kvx_device_ops_t *ops = NULL;
    kvx_status_t status = get_ops(&ops);
    return (status == KVX_OK) ? ops->used(device, bytes_p) : status;
}

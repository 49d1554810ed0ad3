/* Host backend: ordinary process memory standing in for accelerator memory.
 *
 * Each device id owns its allocations and may have a capacity limit. Every
 * call checks that pointers really belong to the device they are said to be
 * on, so code that mixes up devices or directions fails here the way it would
 * on a GPU, instead of silently working on a single address space. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "device/backend.h"
#include "util/error.h"

#define HOST_MAX_DEVICES     1024
#define HOST_DEFAULT_DEVICES 8
/* Matches what GPU allocators give at least, so alignment bugs show here. */
#define HOST_ALIGNMENT 64

typedef struct host_alloc {
    uintptr_t base;
    size_t len;
    int device;
    int memfd; /* >= 0: a shared mapping of this memfd (large allocations) */
} host_alloc_t;

/* Allocations this large come from a memfd, so same-host peers can map them
 * once and copy with memcpy; smaller ones are not worth an fd each. */
#define HOST_MEMFD_MIN (2u << 20)

/* One lock guards everything: lookups are a binary search, and the copies
 * themselves run outside the lock. */
static struct {
    pthread_mutex_t lock;
    int configured;
    int num_devices;
    size_t capacity; /* bytes per device; 0 = no limit */
    /* Sorted by base. Allocations from the C allocator never overlap, so the
     * one that may contain an address is the last one starting at or before
     * it. One array for all devices keeps locate() O(log n); the owner is
     * recorded in each entry. */
    host_alloc_t *allocs;
    size_t num_allocs;
    size_t max_allocs;
    size_t used[HOST_MAX_DEVICES];
} host = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ configuration */

/* Reads a decimal env value; returns 0 if unset or empty, 1 if set, -1 if not
 * a plain unsigned number (with an optional binary suffix if allowed). */
static int read_env_u64(const char *name, int allow_suffix, uint64_t *value_p)
{
    const char *text = getenv(name);
    if (text == NULL || *text == '\0') {
        return 0;
    }
    if (*text < '0' || *text > '9') {
        return -1; /* strtoull would accept spaces and a sign */
    }
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0) {
        return -1;
    }
    if (allow_suffix && *end != '\0' && end[1] == '\0') {
        unsigned shift = 0;
        switch (*end) {
        case 'k':
        case 'K':
            shift = 10;
            break;
        case 'm':
        case 'M':
            shift = 20;
            break;
        case 'g':
        case 'G':
            shift = 30;
            break;
        case 't':
        case 'T':
            shift = 40;
            break;
        default:
            return -1;
        }
        if (value > (UINT64_MAX >> shift)) {
            return -1;
        }
        value <<= shift;
        end++;
    }
    if (*end != '\0') {
        return -1;
    }
    *value_p = value;
    return 1;
}

static kvx_status_t resolve_num_devices(const kvx_device_params_t *params, int *num_p)
{
    if (params->field_mask & KVX_DEVICE_PARAM_FIELD_NUM_DEVICES) {
        if (params->num_devices < 1 || params->num_devices > HOST_MAX_DEVICES) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                            "kvx_device_init: num_devices %d is out of range 1..%d",
                            params->num_devices, HOST_MAX_DEVICES);
        }
        *num_p = params->num_devices;
        return KVX_OK;
    }
    uint64_t value = HOST_DEFAULT_DEVICES;
    int found = read_env_u64("KVX_HOST_DEVICES", 0, &value);
    if (found < 0 || value < 1 || value > HOST_MAX_DEVICES) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "KVX_HOST_DEVICES='%s': expected a number 1..%d",
                        getenv("KVX_HOST_DEVICES"), HOST_MAX_DEVICES);
    }
    *num_p = (int)value;
    return KVX_OK;
}

static kvx_status_t resolve_capacity(const kvx_device_params_t *params, size_t *capacity_p)
{
    if (params->field_mask & KVX_DEVICE_PARAM_FIELD_CAPACITY) {
        *capacity_p = params->capacity;
        return KVX_OK;
    }
    uint64_t value = 0;
    int found = read_env_u64("KVX_HOST_DEVICE_CAPACITY", 1, &value);
    if (found < 0 || value > SIZE_MAX) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "KVX_HOST_DEVICE_CAPACITY='%s': expected bytes, optionally with a "
                        "K, M, G or T suffix (0 = no limit)",
                        getenv("KVX_HOST_DEVICE_CAPACITY"));
    }
    *capacity_p = (size_t)value;
    return KVX_OK;
}

static kvx_status_t host_init(const kvx_device_params_t *params)
{
    int num_devices = 0;
    size_t capacity = 0;
    kvx_status_t status = resolve_num_devices(params, &num_devices);
    if (status != KVX_OK) {
        return status;
    }
    status = resolve_capacity(params, &capacity);
    if (status != KVX_OK) {
        return status;
    }

    pthread_mutex_lock(&host.lock);
    /* Only device memory ties the configuration down; kvx_host_malloc()
     * memory (device -1) is host memory and may live on across it. */
    size_t device_allocs = 0;
    const host_alloc_t *first = NULL;
    for (size_t i = 0; i < host.num_allocs; i++) {
        if (host.allocs[i].device >= 0) {
            first = first != NULL ? first : &host.allocs[i];
            device_allocs++;
        }
    }
    if (device_allocs > 0) {
        status = KVX_FAIL(KVX_ERR_BUSY,
                          "kvx_device_init: %zu device allocation(s) still exist, e.g. %p "
                          "(%zu bytes) on device %d; free them before reconfiguring",
                          device_allocs, (void *)first->base, first->len, first->device);
        pthread_mutex_unlock(&host.lock);
        return status;
    }
    host.num_devices = num_devices;
    host.capacity = capacity;
    host.configured = 1;
    pthread_mutex_unlock(&host.lock);

    kvx_debug("host device backend: %d devices, capacity %zu bytes each%s", num_devices, capacity,
              capacity == 0 ? " (no limit)" : "");
    return KVX_OK;
}

static int host_host_accessible(void)
{
    return 1;
}

static kvx_status_t host_count(int *count_p)
{
    pthread_mutex_lock(&host.lock);
    *count_p = host.num_devices;
    pthread_mutex_unlock(&host.lock);
    return KVX_OK;
}

/* --------------------------------------------------------------- lookups */

/* All *_locked helpers expect host.lock held. */

/* @p ptr and @p size (either may be NULL / 0 when the call has none) only
 * make the message say which call failed. */
static kvx_status_t check_device_locked(const char *op, int device, const void *ptr, size_t size)
{
    if (!host.configured) {
        return KVX_FAIL(KVX_ERR_INTERNAL, "%s: host device backend used before init", op);
    }
    if (device < 0 || device >= host.num_devices) {
        char args[64] = "";
        if (ptr != NULL && size != 0) {
            snprintf(args, sizeof(args), ", %p, %zu bytes", ptr, size);
        } else if (ptr != NULL) {
            snprintf(args, sizeof(args), ", %p", ptr);
        } else if (size != 0) {
            snprintf(args, sizeof(args), ", %zu bytes", size);
        }
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "%s(device %d%s): no such device (devices are 0..%d)", op, device, args,
                        host.num_devices - 1);
    }
    return KVX_OK;
}

/* Number of allocations whose base is <= addr. */
static size_t count_starting_at_or_below_locked(uintptr_t addr)
{
    size_t lo = 0;
    size_t hi = host.num_allocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (host.allocs[mid].base <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static const host_alloc_t *find_containing_locked(uintptr_t addr)
{
    size_t n = count_starting_at_or_below_locked(addr);
    if (n == 0) {
        return NULL;
    }
    const host_alloc_t *alloc = &host.allocs[n - 1];
    return (addr - alloc->base < alloc->len) ? alloc : NULL;
}

/* @p device of check_range_locked(): memory of any device. kvx_host_malloc()
 * memory is recorded with device -1: it is host memory, not of any device. */
#define ANY_DEVICE (-2)

/* Checks that [ptr, ptr+size) lies inside one allocation of @p device (-1:
 * one from kvx_host_malloc), or of any device if @p device is ANY_DEVICE.
 * The caller has ruled out address wrap. */
static kvx_status_t check_range_locked(const char *op, const char *role, int device,
                                       const void *ptr, size_t size)
{
    uintptr_t start = (uintptr_t)ptr;
    const host_alloc_t *alloc = find_containing_locked(start);
    if (alloc != NULL && device == ANY_DEVICE && alloc->device < 0) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "%s: %s %p (%zu bytes) is not device memory of any device (it is "
                        "host memory from kvx_host_malloc)",
                        op, role, ptr, size);
    }
    if (alloc == NULL) {
        if (device == ANY_DEVICE) {
            return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                            "%s: %s %p (%zu bytes) is not device memory of any device", op, role,
                            ptr, size);
        }
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "%s: %s %p (%zu bytes) is not memory of device %d (it is host memory)", op,
                        role, ptr, size, device);
    }
    if (device != ANY_DEVICE && alloc->device != device) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "%s: %s %p (%zu bytes) is not memory of device %d (it is in allocation "
                        "%p of device %d)",
                        op, role, ptr, size, device, (void *)alloc->base, alloc->device);
    }
    size_t room = alloc->len - (size_t)(start - alloc->base);
    if (size > room) {
        return KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                        "%s: %s %p (%zu bytes) runs past the end of allocation %p (%zu bytes) "
                        "of device %d by %zu bytes",
                        op, role, ptr, size, (void *)alloc->base, alloc->len, alloc->device,
                        size - room);
    }
    return KVX_OK;
}

/* ------------------------------------------------------------- allocation */

static kvx_status_t insert_alloc_locked(uintptr_t base, size_t len, int device)
{
    if (host.num_allocs == host.max_allocs) {
        size_t grown = host.max_allocs ? host.max_allocs * 2 : 64;
        host_alloc_t *allocs = realloc(host.allocs, grown * sizeof(*allocs));
        if (allocs == NULL) {
            return KVX_FAIL(KVX_ERR_NO_MEMORY,
                            "kvx_device_malloc(device %d, %zu bytes): cannot grow the "
                            "allocation table to %zu entries",
                            device, len, grown);
        }
        host.allocs = allocs;
        host.max_allocs = grown;
    }
    size_t at = count_starting_at_or_below_locked(base);
    memmove(&host.allocs[at + 1], &host.allocs[at],
            (host.num_allocs - at) * sizeof(host.allocs[0]));
    host.allocs[at] = (host_alloc_t){.base = base, .len = len, .device = device, .memfd = -1};
    host.num_allocs++;
    return KVX_OK;
}

/* A memfd mapping of @p size bytes, or NULL. */
static void *memfd_map(size_t size, int *fd_p)
{
    int fd = memfd_create("kvx-mem", MFD_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0) {
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (p == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    madvise(p, size, MADV_HUGEPAGE); /* advice only: shmem may not take it */
    *fd_p = fd;
    return p;
}

void *kvx_host_shared_alloc(size_t size)
{
    int fd;
    void *p = memfd_map(size, &fd);
    if (p == NULL) {
        return NULL;
    }
    /* Recorded as host memory (device -1), so kvx_device_find_memfd sees it
     * and kvx_device_locate still calls it host memory. */
    pthread_mutex_lock(&host.lock);
    kvx_status_t status = insert_alloc_locked((uintptr_t)p, size, -1);
    if (status == KVX_OK) {
        host.allocs[count_starting_at_or_below_locked((uintptr_t)p) - 1].memfd = fd;
    }
    pthread_mutex_unlock(&host.lock);
    if (status != KVX_OK) {
        munmap(p, size);
        close(fd);
        return NULL;
    }
    return p;
}

int kvx_host_shared_free(void *ptr)
{
    pthread_mutex_lock(&host.lock);
    size_t n = count_starting_at_or_below_locked((uintptr_t)ptr);
    host_alloc_t *a = (n > 0) ? &host.allocs[n - 1] : NULL;
    if (a == NULL || a->base != (uintptr_t)ptr || a->device != -1 || a->memfd < 0) {
        pthread_mutex_unlock(&host.lock);
        return -1;
    }
    int fd = a->memfd;
    size_t len = a->len;
    memmove(a, a + 1, (host.num_allocs - n) * sizeof(*a));
    host.num_allocs--;
    pthread_mutex_unlock(&host.lock);
    munmap(ptr, len);
    close(fd);
    return 0;
}

static kvx_status_t host_malloc(int device, size_t size, void **ptr_p)
{
    pthread_mutex_lock(&host.lock);
    kvx_status_t status = check_device_locked("kvx_device_malloc", device, NULL, size);
    if (status != KVX_OK) {
        goto out;
    }
    size_t used = host.used[device];
    if (host.capacity != 0 && size > host.capacity - used) {
        status = KVX_FAIL(KVX_ERR_DEVICE_OUT_OF_MEMORY,
                          "kvx_device_malloc(device %d, %zu bytes): %zu of %zu bytes already in "
                          "use",
                          device, size, used, host.capacity);
        goto out;
    }
    void *ptr = NULL;
    int memfd = -1;
    int rc = 0;
    if (size >= HOST_MEMFD_MIN) {
        /* Large buffers: a memfd mapping (same-host peers map it and use
         * memcpy), with huge pages where the kernel gives them to shmem. */
        ptr = memfd_map(size, &memfd);
        if (ptr == NULL) {
            memfd = -1;
        }
    }
    if (ptr == NULL) {
        /* Large ones on 2 MiB boundaries with transparent huge pages: the
         * cross-process copy pins pages, and huge pages halve that cost. */
        int huge = size >= (2u << 20);
        rc = posix_memalign(&ptr, huge ? (2u << 20) : HOST_ALIGNMENT, size);
        if (rc == 0 && huge) {
            madvise(ptr, size, MADV_HUGEPAGE); /* advice only: ignore failure */
        }
    }
    if (rc != 0) {
        status =
            KVX_FAIL(KVX_ERR_DEVICE_OUT_OF_MEMORY, "kvx_device_malloc(device %d, %zu bytes): %s",
                     device, size, strerror(rc));
        goto out;
    }
    status = insert_alloc_locked((uintptr_t)ptr, size, device);
    if (status != KVX_OK) {
        if (memfd >= 0) {
            munmap(ptr, size);
            close(memfd);
        } else {
            free(ptr);
        }
        goto out;
    }
    host.allocs[count_starting_at_or_below_locked((uintptr_t)ptr) - 1].memfd = memfd;
    host.used[device] = used + size;
    *ptr_p = ptr;
out:
    pthread_mutex_unlock(&host.lock);
    return status;
}

static kvx_status_t host_free(int device, void *ptr)
{
    pthread_mutex_lock(&host.lock);
    kvx_status_t status = check_device_locked("kvx_device_free", device, ptr, 0);
    if (status != KVX_OK || ptr == NULL) {
        pthread_mutex_unlock(&host.lock);
        return status;
    }
    size_t n = count_starting_at_or_below_locked((uintptr_t)ptr);
    host_alloc_t *alloc = (n > 0) ? &host.allocs[n - 1] : NULL;
    if (alloc == NULL || alloc->base != (uintptr_t)ptr || alloc->device != device) {
        const host_alloc_t *container = find_containing_locked((uintptr_t)ptr);
        if (container == NULL) {
            status = KVX_FAIL(KVX_ERR_INVALID_PARAM,
                              "kvx_device_free(device %d, %p): not device memory (never "
                              "allocated, or already freed)",
                              device, ptr);
        } else if (container->base != (uintptr_t)ptr) {
            status = KVX_FAIL(KVX_ERR_INVALID_PARAM,
                              "kvx_device_free(device %d, %p): points %zu bytes into allocation "
                              "%p of device %d, not at its start",
                              device, ptr, (size_t)((uintptr_t)ptr - container->base),
                              (void *)container->base, container->device);
        } else {
            status = KVX_FAIL(KVX_ERR_INVALID_PARAM,
                              "kvx_device_free(device %d, %p): allocation (%zu bytes) belongs "
                              "to device %d",
                              device, ptr, container->len, container->device);
        }
        pthread_mutex_unlock(&host.lock);
        return status;
    }
    host.used[device] -= alloc->len;
    int memfd = alloc->memfd;
    size_t len = alloc->len;
    memmove(alloc, alloc + 1, (host.num_allocs - n) * sizeof(*alloc));
    host.num_allocs--;
    pthread_mutex_unlock(&host.lock);
    if (memfd >= 0) {
        munmap(ptr, len);
        close(memfd);
    } else {
        free(ptr);
    }
    return KVX_OK;
}

/* ---------------------------------------------------------- memset, memcpy */

static kvx_status_t host_memset(int device, void *ptr, int value, size_t size)
{
    pthread_mutex_lock(&host.lock);
    kvx_status_t status = check_device_locked("kvx_device_memset", device, ptr, size);
    if (status == KVX_OK) {
        status = check_range_locked("kvx_device_memset", "range", device, ptr, size);
    }
    pthread_mutex_unlock(&host.lock);
    /* Outside the lock: like a GPU, freeing memory that is in use is the
     * caller's bug, and big fills must not stall other devices. */
    if (status == KVX_OK) {
        memset(ptr, value, size);
    }
    return status;
}

static kvx_status_t host_memcpy(void *dst, const void *src, size_t size, kvx_copy_kind_t kind,
                                int device)
{
    kvx_status_t status = KVX_OK;
    pthread_mutex_lock(&host.lock);
    switch (kind) {
    case KVX_COPY_H2H:
        break; /* plain memory on both sides; no device involved */
    case KVX_COPY_H2D:
        status = check_device_locked("kvx_device_memcpy H2D", device, dst, size);
        if (status == KVX_OK) {
            status = check_range_locked("kvx_device_memcpy H2D", "destination", device, dst, size);
        }
        break;
    case KVX_COPY_D2H:
        status = check_device_locked("kvx_device_memcpy D2H", device, src, size);
        if (status == KVX_OK) {
            status = check_range_locked("kvx_device_memcpy D2H", "source", device, src, size);
        }
        break;
    case KVX_COPY_D2D:
        status = check_device_locked("kvx_device_memcpy D2D", device, dst, size);
        if (status == KVX_OK) {
            status = check_range_locked("kvx_device_memcpy D2D", "destination", device, dst, size);
        }
        if (status == KVX_OK) {
            status = check_range_locked("kvx_device_memcpy D2D", "source", ANY_DEVICE, src, size);
        }
        break;
    default:
        status = KVX_FAIL(KVX_ERR_INTERNAL, "kvx_device_memcpy: unchecked copy kind %d", (int)kind);
        break;
    }
    pthread_mutex_unlock(&host.lock);
    if (status == KVX_OK) {
        memcpy(dst, src, size);
    }
    return status;
}

/* ---------------------------------------------------------- locate, used */

static int host_memfd(const void *ptr, size_t size, int *fd_p, uint64_t *offset_p)
{
    pthread_mutex_lock(&host.lock);
    const host_alloc_t *a = find_containing_locked((uintptr_t)ptr);
    int found = a != NULL && a->memfd >= 0 && size <= a->len - ((uintptr_t)ptr - a->base);
    if (found) {
        *fd_p = a->memfd;
        *offset_p = (uintptr_t)ptr - a->base;
    }
    pthread_mutex_unlock(&host.lock);
    return found;
}

static kvx_status_t host_locate(const void *ptr, size_t size, int *device_p)
{
    uintptr_t start = (uintptr_t)ptr;
    kvx_status_t status = KVX_OK;
    int device = -1;

    pthread_mutex_lock(&host.lock);
    size_t n = count_starting_at_or_below_locked(start);
    const host_alloc_t *before = (n > 0) ? &host.allocs[n - 1] : NULL;
    const host_alloc_t *after = (n < host.num_allocs) ? &host.allocs[n] : NULL;
    if (before != NULL && start - before->base < before->len) {
        status = check_range_locked("kvx_device_locate", "range", before->device, ptr, size);
        device = before->device;
    } else if (after != NULL && size > after->base - start) {
        /* Half host, half device memory: no single owner. */
        status = KVX_FAIL(KVX_ERR_INVALID_ADDRESS,
                          "kvx_device_locate: range %p (%zu bytes) starts in host memory but "
                          "runs into allocation %p of device %d",
                          ptr, size, (void *)after->base, after->device);
    }
    pthread_mutex_unlock(&host.lock);
    if (status == KVX_OK) {
        *device_p = device;
    }
    return status;
}

static kvx_status_t host_used(int device, size_t *bytes_p)
{
    pthread_mutex_lock(&host.lock);
    kvx_status_t status = check_device_locked("kvx_device_used", device, NULL, 0);
    if (status == KVX_OK) {
        *bytes_p = host.used[device];
    }
    pthread_mutex_unlock(&host.lock);
    return status;
}

const kvx_device_ops_t kvx_device_host_ops = {
    .name = "host",
    .init = host_init,
    .host_accessible = host_host_accessible,
    .count = host_count,
    .malloc_fn = host_malloc,
    .free_fn = host_free,
    .memset_fn = host_memset,
    .memcpy_fn = host_memcpy,
    .locate = host_locate,
    .memfd = host_memfd,
    .used = host_used,
};

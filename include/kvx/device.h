/**
 * @file device.h
 * @brief Accelerator memory: allocation, memset and copies in all directions.
 *
 * A process uses one device backend, chosen at first use: the one named by
 * kvx_device_init(), else the one in KVX_DEVICE (host or cuda), else cuda if
 * kvx was built with it and a GPU is present, else host. The host backend
 * stands in for accelerator memory: each device id has its own allocations
 * and an optional capacity limit, and every call checks that a pointer really
 * belongs to the device it is said to be on, as a real device API would.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef KVX_DEVICE_H
#define KVX_DEVICE_H

#include <kvx/common.h>
#include <kvx/status.h>

KVX_BEGIN_DECLS

/** Direction of a copy. H = host memory, D = device memory. */
typedef enum kvx_copy_kind {
    KVX_COPY_H2H = 0,
    KVX_COPY_H2D = 1,
    KVX_COPY_D2H = 2,
    KVX_COPY_D2D = 3
} kvx_copy_kind_t;

enum kvx_device_param_field {
    KVX_DEVICE_PARAM_FIELD_BACKEND = KVX_BIT(0),     /**< backend */
    KVX_DEVICE_PARAM_FIELD_NUM_DEVICES = KVX_BIT(1), /**< num_devices */
    KVX_DEVICE_PARAM_FIELD_CAPACITY = KVX_BIT(2)     /**< capacity */
};

/** Options of kvx_device_init(). Fields count only if their bit is set. */
typedef struct kvx_device_params {
    uint64_t field_mask;
    /** "host" or "cuda". Default: see the file comment. */
    const char *backend;
    /** host backend: number of devices (default 8, env KVX_HOST_DEVICES). */
    int num_devices;
    /** host backend: bytes each device may hold, 0 = no limit (default;
     *  env KVX_HOST_DEVICE_CAPACITY, in bytes or with a K, M, G or T suffix,
     *  powers of 1024). */
    size_t capacity;
} kvx_device_params_t;

/**
 * Choose and configure the backend. Optional; must come before any other
 * device call. Calling it again with the same backend reconfigures the host
 * backend's limits (only while no device memory is allocated); fields left
 * unset take their defaults again, not their previous values. Without
 * KVX_DEVICE_PARAM_FIELD_BACKEND it configures the backend in use, or the
 * default one. @p params may be NULL: all defaults.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM (unknown backend name, num_devices
 *         out of 1..1024, bad KVX_HOST_* environment value),
 *         KVX_ERR_UNSUPPORTED (unknown field bit, backend not built in or no
 *         such hardware), KVX_ERR_BUSY (memory still allocated, or another
 *         backend already in use).
 */
KVX_API kvx_status_t kvx_device_init(const kvx_device_params_t *params);

/** Name of the backend in use ("host" or "cuda"); initialises it if needed.
 *  "none" if no backend could be started (see kvx_last_error()). */
KVX_API const char *kvx_device_backend(void);

/** Number of devices; ids are 0 .. count-1. */
KVX_API kvx_status_t kvx_device_count(int *count_p);

/**
 * True (1) if the CPU can load and store device memory directly (the host
 * backend), 0 otherwise. Transports use it to decide whether to stage.
 */
KVX_API int kvx_device_host_accessible(void);

/**
 * Allocate @p size bytes on @p device.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM (bad id, size 0, NULL out pointer),
 *         KVX_ERR_DEVICE_OUT_OF_MEMORY (capacity reached).
 */
KVX_API kvx_status_t kvx_device_malloc(int device, size_t size, void **ptr_p);

/** Free memory from kvx_device_malloc() on the same device. Freeing NULL
 *  does nothing (the device id is still checked).
 *  @return KVX_OK, KVX_ERR_INVALID_PARAM (bad id, or @p ptr is not the start
 *          of an allocation of that device). */
KVX_API kvx_status_t kvx_device_free(int device, void *ptr);

/** Set @p size bytes of device memory at @p ptr to (unsigned char)@p value.
 *  The range must lie inside one allocation of @p device.
 *  @return KVX_OK, KVX_ERR_INVALID_PARAM (bad id, NULL, size 0),
 *          KVX_ERR_INVALID_ADDRESS (range not inside such an allocation). */
KVX_API kvx_status_t kvx_device_memset(int device, void *ptr, int value, size_t size);

/**
 * Copy @p size bytes. For H2D the destination, for D2H the source, for D2D
 * both must lie inside allocations of @p device (D2D: @p device is the
 * destination's; the source may be on any device). For H2H @p device is
 * ignored. Returns once the copy is complete.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM (bad id or kind, NULL, size 0,
 *         overlapping ranges), KVX_ERR_INVALID_ADDRESS (a device-side range
 *         not inside an allocation of the right device).
 */
KVX_API kvx_status_t kvx_device_memcpy(void *dst, const void *src, size_t size,
                                       kvx_copy_kind_t kind, int device);

/**
 * Which device, if any, owns [ptr, ptr+size).
 * @param [out] device_p device id, or -1 if the range is host memory.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM (NULL, size 0), or
 *         KVX_ERR_INVALID_ADDRESS if the range is only partly inside one
 *         device allocation (runs past its end, or from host memory into it).
 */
KVX_API kvx_status_t kvx_device_locate(const void *ptr, size_t size, int *device_p);

/**
 * Allocate host memory that same-host peers of an engine can map and copy
 * with memcpy (a memfd mapping; like pinned host memory of a GPU runtime, it
 * is the kind to use for buffers that are transferred often). Register it
 * with an engine like any host memory.
 * @return KVX_OK, KVX_ERR_INVALID_PARAM (size 0, NULL), KVX_ERR_NO_MEMORY
 */
KVX_API kvx_status_t kvx_host_malloc(size_t size, void **ptr_p);

/** Free memory from kvx_host_malloc(); KVX_ERR_INVALID_PARAM for any other. */
KVX_API kvx_status_t kvx_host_free(void *ptr);

/** Bytes currently allocated on @p device (sizes as requested). */
KVX_API kvx_status_t kvx_device_used(int device, size_t *bytes_p);

KVX_END_DECLS

#endif /* KVX_DEVICE_H */

/* A device backend is one ops table; device.c picks one and forwards the
 * public calls after checking arguments. A CUDA backend is one more file
 * (device_cuda.c) providing kvx_device_cuda_ops. */
#ifndef KVX_DEVICE_BACKEND_H
#define KVX_DEVICE_BACKEND_H

#include <kvx/device.h>

typedef struct kvx_device_ops {
    const char *name;
    /* Configure; params already checked for unknown bits. */
    kvx_status_t (*init)(const kvx_device_params_t *params);
    int (*host_accessible)(void);
    kvx_status_t (*count)(int *count_p);
    kvx_status_t (*malloc_fn)(int device, size_t size, void **ptr_p);
    kvx_status_t (*free_fn)(int device, void *ptr);
    kvx_status_t (*memset_fn)(int device, void *ptr, int value, size_t size);
    kvx_status_t (*memcpy_fn)(void *dst, const void *src, size_t size, kvx_copy_kind_t kind,
                              int device);
    kvx_status_t (*locate)(const void *ptr, size_t size, int *device_p);
    kvx_status_t (*used)(int device, size_t *bytes_p);
    /* 1 if [ptr, ptr+size) lies in an allocation backed by a memfd (fd and
     * offset out), else 0. NULL when the backend has none. */
    int (*memfd)(const void *ptr, size_t size, int *fd_p, uint64_t *offset_p);
} kvx_device_ops_t;

extern const kvx_device_ops_t kvx_device_host_ops;

#endif

/* What lower layers (transports) may ask the device layer beyond device.h. */
#ifndef KVX_DEVICE_INTERNAL_H
#define KVX_DEVICE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* 1 if [ptr, ptr+size) lies in device memory backed by a memfd (its fd and
 * the offset of ptr in it out), else 0. Same-host peers map such memory. */
int kvx_device_find_memfd(const void *ptr, size_t size, int *fd_p, uint64_t *offset_p);

/* Host memory in a memfd (for caches kvx allocates in host memory), so
 * same-host peers can map it too. NULL on failure; free with the second. */
void *kvx_host_shared_alloc(size_t size);
/* 0, or -1 if @p ptr is not such an allocation. */
int kvx_host_shared_free(void *ptr);

#endif

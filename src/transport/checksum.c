/* XXH3-64 over scattered ranges; xxHash is used header-only (inlined). */
#include "transport/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t kvx_checksum_local(const kvx_xfer_desc_t *descs, size_t count)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (size_t i = 0; i < count; i++) {
        XXH3_64bits_update(&st, descs[i].local_addr, descs[i].length);
    }
    return XXH3_64bits_digest(&st);
}

uint64_t kvx_checksum_wire(const kvx_wire_desc_t *descs, size_t count)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    for (size_t i = 0; i < count; i++) {
        XXH3_64bits_update(&st, (const void *)(uintptr_t)descs[i].addr, (size_t)descs[i].len);
    }
    return XXH3_64bits_digest(&st);
}

/*
 * End-to-end checksums of transfers (KVX_XFER_PARAM_FIELD_CHECKSUM): one
 * XXH3-64 (xxHash, seed 0) over the bytes of a frame's ranges, in order.
 */
#ifndef KVX_TRANSPORT_CHECKSUM_H
#define KVX_TRANSPORT_CHECKSUM_H

#include <kvx/engine.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/wire.h"

/* Ranges of this process named by the caller's descriptors. */
uint64_t kvx_checksum_local(const kvx_xfer_desc_t *descs, size_t count);
/* Ranges of this process named by a peer's (checked) wire descriptors. */
uint64_t kvx_checksum_wire(const kvx_wire_desc_t *descs, size_t count);

#endif

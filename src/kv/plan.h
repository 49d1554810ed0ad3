/*
 * Byte-range arithmetic of the KV layer: from two cache geometries and a
 * request (entries or block lists, layer ranges, size) to a list of
 * (source address, destination address, length) spans. Pure functions: no
 * I/O, no engine; every rule of kv.h is checked here, with its own status.
 */
#ifndef KVX_KV_PLAN_H
#define KVX_KV_PLAN_H

#include <kvx/kv.h>

typedef struct kvx_kv_geom {
    uint32_t num_tensors;
    kvx_dtype_t dtype;
    uint32_t ndims;
    int64_t dims[KVX_KV_MAX_DIMS];
    uint64_t tensor_size;  /* bytes of one tensor */
    uint64_t entries;      /* dims[0]: batch entries or blocks */
    uint64_t entry_size;   /* tensor_size / entries */
    const uint64_t *addrs; /* num_tensors tensor addresses */
} kvx_kv_geom_t;

/* Check a descriptor (required fields, dtype, 1..8 dims all > 0, tensor
 * count 1..KVX_KV_MAX_TENSORS, no overflow) and derive the sizes. addrs is
 * left NULL. */
kvx_status_t kvx_kv_geom_init(kvx_kv_geom_t *geom, const kvx_kv_cache_desc_t *desc);

typedef struct kvx_kv_span {
    uint64_t src;
    uint64_t dst;
    uint64_t len;
} kvx_kv_span_t;

typedef struct kvx_kv_plan_req {
    const kvx_kv_geom_t *src;
    const kvx_kv_geom_t *dst;
    int blocks; /* 0: one entry each side; 1: block lists */
    /* entries */
    uint64_t src_entry;
    uint64_t dst_entry;
    /* blocks */
    const uint64_t *src_blocks;
    size_t src_count;
    const uint64_t *dst_blocks;
    size_t dst_count;
    const kvx_kv_xfer_params_t *params; /* may be NULL */
} kvx_kv_plan_req_t;

/* Spans, tensor pair by tensor pair, runs of consecutive blocks merged.
 * *spans_p is malloc()ed; the caller frees it. */
kvx_status_t kvx_kv_plan(const kvx_kv_plan_req_t *req, kvx_kv_span_t **spans_p, size_t *count_p);

#endif

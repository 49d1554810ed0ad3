#include "kv/plan.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define KVX_KV_XFER_FIELDS_ALL                                                                     \
    (KVX_KV_XFER_FIELD_LAYERS | KVX_KV_XFER_FIELD_TENSORS_PER_LAYER | KVX_KV_XFER_FIELD_SIZE |     \
     KVX_KV_XFER_FIELD_TIMEOUT | KVX_KV_XFER_FIELD_CHECKSUM)

size_t kvx_dtype_size(kvx_dtype_t dtype)
{
    switch (dtype) {
    case KVX_DTYPE_INT8:
    case KVX_DTYPE_UINT8:
    case KVX_DTYPE_BOOL:
    case KVX_DTYPE_FP8_E4M3:
    case KVX_DTYPE_FP8_E5M2:
        return 1;
    case KVX_DTYPE_FP16:
    case KVX_DTYPE_BF16:
    case KVX_DTYPE_INT16:
    case KVX_DTYPE_UINT16:
        return 2;
    case KVX_DTYPE_FP32:
    case KVX_DTYPE_INT32:
    case KVX_DTYPE_UINT32:
        return 4;
    case KVX_DTYPE_FP64:
    case KVX_DTYPE_INT64:
    case KVX_DTYPE_UINT64:
        return 8;
    }
    return 0;
}

kvx_status_t kvx_kv_geom_init(kvx_kv_geom_t *geom, const kvx_kv_cache_desc_t *desc)
{
    uint64_t need =
        KVX_KV_CACHE_FIELD_NUM_TENSORS | KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE;
    uint64_t all = need | KVX_KV_CACHE_FIELD_PLACEMENT;
    if (desc->field_mask & ~all) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "cache desc: unknown field_mask bits");
    }
    if ((desc->field_mask & need) != need) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM,
                        "cache desc: num_tensors, dtype and shape are required");
    }
    size_t esize = kvx_dtype_size(desc->dtype);
    if (esize == 0) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache desc: unknown dtype %d", desc->dtype);
    }
    if (desc->num_tensors == 0 || desc->num_tensors > KVX_KV_MAX_TENSORS) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache desc: %u tensors (need 1..%d)",
                        desc->num_tensors, KVX_KV_MAX_TENSORS);
    }
    if (desc->ndims == 0 || desc->ndims > KVX_KV_MAX_DIMS) {
        return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache desc: %u dimensions (need 1..%d)",
                        desc->ndims, KVX_KV_MAX_DIMS);
    }
    uint64_t size = esize;
    for (uint32_t i = 0; i < desc->ndims; i++) {
        int64_t d = desc->dims[i];
        /* 2^48 bytes per tensor is far beyond any memory; it keeps every
         * later product free of overflow. */
        if (d <= 0 || (uint64_t)d > (1ull << 48) / size) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "cache desc: dimension %u = %lld invalid", i,
                            (long long)d);
        }
        size *= (uint64_t)d;
    }
    memset(geom, 0, sizeof(*geom));
    geom->num_tensors = desc->num_tensors;
    geom->dtype = desc->dtype;
    geom->ndims = desc->ndims;
    memcpy(geom->dims, desc->dims, desc->ndims * sizeof(desc->dims[0]));
    geom->tensor_size = size;
    geom->entries = (uint64_t)desc->dims[0];
    geom->entry_size = size / geom->entries;
    return KVX_OK;
}

/* Tensor index ranges of both sides: [src_first, src_first + n) and
 * [dst_first, dst_first + n). */
static kvx_status_t select_tensors(const kvx_kv_plan_req_t *req, uint32_t *src_first,
                                   uint32_t *dst_first, uint32_t *n)
{
    const kvx_kv_xfer_params_t *p = req->params;
    uint64_t mask = p ? p->field_mask : 0;
    uint32_t tnpl = 2;
    if (mask & KVX_KV_XFER_FIELD_TENSORS_PER_LAYER) {
        tnpl = p->tensors_per_layer;
        if (tnpl == 0) {
            return KVX_FAIL(KVX_ERR_LAYER_RANGE, "tensors_per_layer must be > 0");
        }
    }
    if (!(mask & KVX_KV_XFER_FIELD_LAYERS)) {
        if (req->src->num_tensors != req->dst->num_tensors) {
            return KVX_FAIL(KVX_ERR_CACHE_MISMATCH,
                            "source has %u tensors, destination %u (give layer ranges to move "
                            "part of them)",
                            req->src->num_tensors, req->dst->num_tensors);
        }
        *src_first = *dst_first = 0;
        *n = req->src->num_tensors;
        return KVX_OK;
    }
    const char *side[2] = {"source", "destination"};
    const kvx_kv_geom_t *g[2] = {req->src, req->dst};
    uint32_t first[2] = {p->src_layer_first, p->dst_layer_first};
    uint32_t last[2] = {p->src_layer_last, p->dst_layer_last};
    for (int i = 0; i < 2; i++) {
        if (g[i]->num_tensors % tnpl != 0) {
            return KVX_FAIL(KVX_ERR_LAYER_RANGE,
                            "%s has %u tensors, not a multiple of %u tensors per layer", side[i],
                            g[i]->num_tensors, tnpl);
        }
        uint32_t layers = g[i]->num_tensors / tnpl;
        if (first[i] > last[i] || last[i] >= layers) {
            return KVX_FAIL(KVX_ERR_LAYER_RANGE, "%s layer range [%u, %u] outside 0..%u", side[i],
                            first[i], last[i], layers - 1);
        }
    }
    if (last[0] - first[0] != last[1] - first[1]) {
        return KVX_FAIL(KVX_ERR_LAYER_RANGE, "layer ranges differ in length: [%u, %u] vs [%u, %u]",
                        first[0], last[0], first[1], last[1]);
    }
    *src_first = first[0] * tnpl;
    *dst_first = first[1] * tnpl;
    *n = (last[0] - first[0] + 1) * tnpl;
    return KVX_OK;
}

static kvx_status_t check_blocks(const char *side, const uint64_t *blocks, size_t count,
                                 uint64_t entries)
{
    for (size_t k = 0; k < count; k++) {
        if (blocks[k] >= entries) {
            return KVX_FAIL(KVX_ERR_BLOCK_OUT_OF_RANGE,
                            "%s block %llu (list position %zu) outside 0..%llu", side,
                            (unsigned long long)blocks[k], k, (unsigned long long)entries - 1);
        }
    }
    return KVX_OK;
}

kvx_status_t kvx_kv_plan(const kvx_kv_plan_req_t *req, kvx_kv_span_t **spans_p, size_t *count_p)
{
    const kvx_kv_geom_t *src = req->src, *dst = req->dst;
    const kvx_kv_xfer_params_t *p = req->params;
    kvx_status_t status;
    if (p != NULL && (p->field_mask & ~(uint64_t)KVX_KV_XFER_FIELDS_ALL)) {
        return KVX_FAIL(KVX_ERR_UNSUPPORTED, "transfer params: unknown field_mask bits");
    }
    /* Same element type and entry shape: only the entry count may differ. */
    if (src->dtype != dst->dtype || src->ndims != dst->ndims ||
        memcmp(src->dims + 1, dst->dims + 1, (src->ndims - 1) * sizeof(src->dims[0])) != 0) {
        return KVX_FAIL(KVX_ERR_CACHE_MISMATCH,
                        "source and destination caches differ in dtype or entry shape");
    }
    uint32_t src_first, dst_first, ntensors;
    if ((status = select_tensors(req, &src_first, &dst_first, &ntensors)) != KVX_OK) {
        return status;
    }
    uint64_t S = src->entry_size; /* equal on both sides now */
    uint64_t len = S;
    size_t runs = 1;
    if (!req->blocks) {
        if (req->src_entry >= src->entries || req->dst_entry >= dst->entries) {
            int s = req->src_entry >= src->entries;
            return KVX_FAIL(KVX_ERR_BATCH_OUT_OF_RANGE, "%s batch index %llu outside 0..%llu",
                            s ? "source" : "destination",
                            (unsigned long long)(s ? req->src_entry : req->dst_entry),
                            (unsigned long long)(s ? src->entries : dst->entries) - 1);
        }
        if (p != NULL && (p->field_mask & KVX_KV_XFER_FIELD_SIZE)) {
            if (p->size == 0 || p->size > S) {
                return KVX_FAIL(KVX_ERR_SIZE_OUT_OF_RANGE,
                                "size %llu outside 1..%llu (one cache entry)",
                                (unsigned long long)p->size, (unsigned long long)S);
            }
            len = p->size;
        }
    } else {
        if (req->src_blocks == NULL || req->dst_blocks == NULL || req->src_count == 0) {
            return KVX_FAIL(KVX_ERR_INVALID_PARAM, "block lists are empty or NULL");
        }
        if (req->src_count != req->dst_count) {
            return KVX_FAIL(KVX_ERR_BLOCK_LIST_MISMATCH,
                            "%zu source blocks but %zu destination blocks", req->src_count,
                            req->dst_count);
        }
        if ((status = check_blocks("source", req->src_blocks, req->src_count, src->entries)) !=
                KVX_OK ||
            (status = check_blocks("destination", req->dst_blocks, req->dst_count, dst->entries)) !=
                KVX_OK) {
            return status;
        }
        runs = 1;
        for (size_t k = 1; k < req->src_count; k++) {
            if (req->src_blocks[k] != req->src_blocks[k - 1] + 1 ||
                req->dst_blocks[k] != req->dst_blocks[k - 1] + 1) {
                runs++;
            }
        }
    }

    size_t count = (size_t)ntensors * runs;
    kvx_kv_span_t *spans = malloc(count * sizeof(*spans));
    if (spans == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "plan: out of memory for %zu spans", count);
    }
    size_t n = 0;
    for (uint32_t t = 0; t < ntensors; t++) {
        uint64_t sbase = src->addrs[src_first + t];
        uint64_t dbase = dst->addrs[dst_first + t];
        if (!req->blocks) {
            spans[n++] =
                (kvx_kv_span_t){sbase + req->src_entry * S, dbase + req->dst_entry * S, len};
            continue;
        }
        size_t k = 0;
        while (k < req->src_count) {
            size_t run = 1;
            while (k + run < req->src_count &&
                   req->src_blocks[k + run] == req->src_blocks[k] + run &&
                   req->dst_blocks[k + run] == req->dst_blocks[k] + run) {
                run++;
            }
            spans[n++] = (kvx_kv_span_t){sbase + req->src_blocks[k] * S,
                                         dbase + req->dst_blocks[k] * S, run * S};
            k += run;
        }
    }
    *spans_p = spans;
    *count_p = n;
    return KVX_OK;
}

/* The shared fixture of the KV layer tests: see kv_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kv_fixture.h"

/* ------------------------------------------------------------ ownership */

#define MAX_KVS  64
#define MAX_MEMS 512
static kvx_kv_h g_kvs[MAX_KVS];
static struct {
    void *p;
    int device;
} g_mems[MAX_MEMS];

void own_kv(kvx_kv_h kv)
{
    for (size_t i = 0; i < MAX_KVS; i++) {
        if (g_kvs[i] == NULL) {
            g_kvs[i] = kv;
            return;
        }
    }
    fail_msg("more than %d instances", MAX_KVS);
}

void kv_free(kvx_kv_h kv)
{
    for (size_t i = 0; i < MAX_KVS; i++) {
        if (g_kvs[i] == kv) {
            g_kvs[i] = NULL;
        }
    }
    kvx_kv_destroy(kv);
}

void *own_mem(void *p, int device)
{
    assert_non_null(p);
    for (size_t i = 0; i < MAX_MEMS; i++) {
        if (g_mems[i].p == NULL) {
            g_mems[i].p = p;
            g_mems[i].device = device;
            return p;
        }
    }
    fail_msg("more than %d buffers", MAX_MEMS);
    return NULL;
}

void mem_free(void *p)
{
    for (size_t i = 0; p != NULL && i < MAX_MEMS; i++) {
        if (g_mems[i].p == p) {
            if (g_mems[i].device) {
                kvx_device_free(0, p);
            } else {
                free(p);
            }
            g_mems[i].p = NULL;
            return;
        }
    }
}

void free_all(void)
{
    for (size_t i = MAX_KVS; i-- > 0;) {
        if (g_kvs[i] != NULL) {
            kv_free(g_kvs[i]);
        }
    }
    for (size_t i = 0; i < MAX_MEMS; i++) {
        mem_free(g_mems[i].p);
    }
}

/* ------------------------------------------------------------ test caches */

kvx_kv_cache_desc_t desc_of(uint32_t nt, kvx_dtype_t dtype, kvx_mem_type_t placement,
                            uint32_t ndims, const int64_t *dims)
{
    kvx_kv_cache_desc_t d = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                           KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                           KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                             .placement = placement,
                             .num_tensors = nt,
                             .dtype = dtype,
                             .ndims = ndims};
    memcpy(d.dims, dims, ndims * sizeof(dims[0]));
    return d;
}

kvx_status_t mem_put(const tc_t *c, void *dst, const void *src, size_t n)
{
    if (c->device) {
        return kvx_device_memcpy(dst, src, n, KVX_COPY_H2D, c->dev_id);
    }
    memcpy(dst, src, n);
    return KVX_OK;
}

kvx_status_t mem_get(const tc_t *c, void *dst, const void *src, size_t n)
{
    if (c->device) {
        return kvx_device_memcpy(dst, src, n, KVX_COPY_D2H, c->dev_id);
    }
    memcpy(dst, src, n);
    return KVX_OK;
}

void tc_geometry(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, int dev_id)
{
    memset(c, 0, sizeof(*c));
    c->kv = kv;
    c->desc = *d;
    c->device = d->placement == KVX_MEM_DEVICE;
    c->dev_id = dev_id;
    c->nt = d->num_tensors;
    assert_true(c->nt <= MAXT);
    size_t size = kvx_dtype_size(d->dtype);
    assert_true(size > 0);
    for (uint32_t i = 0; i < d->ndims; i++) {
        size *= (size_t)d->dims[i];
    }
    c->tsize = size;
    c->entries = (size_t)d->dims[0];
    c->esize = size / c->entries;
    c->total = GUARD + c->nt * c->tsize + GUARD;
    c->model = own_mem(malloc(c->total), 0);
    c->scratch = own_mem(malloc(c->total), 0);
    memset(c->model, SENT, c->total);
}

void tc_store(tc_t *c)
{
    if (c->buf != NULL) {
        OK(mem_put(c, c->buf, c->model, c->total));
        return;
    }
    for (size_t i = 0; i < c->nt; i++) {
        OK(mem_put(c, c->t[i], c->model + GUARD + i * c->tsize, c->tsize));
    }
}

void tc_fill(tc_t *c, uint64_t seed)
{
    memset(c->model, SENT, c->total);
    if (seed != 0) {
        test_fill(c->model + GUARD, c->nt * c->tsize, seed, 0);
    }
    tc_store(c);
}

void tc_memory(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d)
{
    tc_geometry(c, kv, d, 0);
    if (c->device) {
        OK(kvx_device_malloc(0, c->total, (void **)&c->buf));
        own_mem(c->buf, 1);
    } else {
        c->buf = own_mem(malloc(c->total), 0);
    }
    for (size_t i = 0; i < c->nt; i++) {
        c->t[i] = c->buf + GUARD + i * c->tsize;
    }
}

void tc_register(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, uint64_t seed)
{
    tc_memory(c, kv, d);
    tc_fill(c, seed);
    OK(kvx_kv_cache_register(kv, d, c->t, &c->id));
    assert_true(c->id >= 1);
}

void tc_allocate(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, int dev_id, uint64_t seed)
{
    tc_geometry(c, kv, d, dev_id);
    c->allocated = 1;
    OK(kvx_kv_cache_allocate(kv, d, &c->id, c->t));
    tc_fill(c, seed);
}

kvx_status_t tc_read(tc_t *c)
{
    if (c->buf != NULL) {
        return mem_get(c, c->scratch, c->buf, c->total);
    }
    memcpy(c->scratch, c->model, c->total);
    for (size_t i = 0; i < c->nt; i++) {
        kvx_status_t s = mem_get(c, c->scratch + GUARD + i * c->tsize, c->t[i], c->tsize);
        if (s != KVX_OK) {
            return s;
        }
    }
    return KVX_OK;
}

size_t tc_compare(const tc_t *c, char *why, size_t why_len)
{
    size_t bad = 0;
    for (size_t i = 0; i < c->total; i++) {
        if (c->scratch[i] == c->model[i]) {
            continue;
        }
        if (bad++ == 0) {
            if (i < GUARD || i >= GUARD + c->nt * c->tsize) {
                snprintf(why, why_len, "guard byte %zu is 0x%02x, want 0x%02x", i, c->scratch[i],
                         c->model[i]);
            } else {
                size_t o = i - GUARD;
                snprintf(why, why_len, "tensor %zu entry %zu byte %zu is 0x%02x, want 0x%02x",
                         o / c->tsize, o % c->tsize / c->esize, o % c->esize, c->scratch[i],
                         c->model[i]);
            }
        }
    }
    return bad;
}

size_t tc_diff_quiet(tc_t *c, char *why, size_t why_len)
{
    if (tc_read(c) != KVX_OK) {
        snprintf(why, why_len, "read-back failed");
        return SIZE_MAX;
    }
    return tc_compare(c, why, why_len);
}

uint8_t *tc_at(tc_t *c, size_t tensor, size_t entry)
{
    return c->model + GUARD + tensor * c->tsize + entry * c->esize;
}

void tc_release(tc_t *c)
{
    mem_free(c->buf);
    mem_free(c->model);
    mem_free(c->scratch);
    memset(c, 0, sizeof(*c));
}

/* ------------------------------------------------------------ transfers */

kvx_kv_xfer_params_t layers(uint32_t sf, uint32_t sl, uint32_t df, uint32_t dl)
{
    kvx_kv_xfer_params_t xp = {.field_mask = KVX_KV_XFER_FIELD_LAYERS,
                               .src_layer_first = sf,
                               .src_layer_last = sl,
                               .dst_layer_first = df,
                               .dst_layer_last = dl};
    return xp;
}

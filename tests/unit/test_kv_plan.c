/*
 * Unit tests for the KV byte-range planner (src/kv/plan.c).
 *
 * Every successful plan is checked against an independent reference: a
 * byte-level map that says, for each byte of each destination tensor, which
 * source bytes (tensor, offset) must land there, built by walking the rules of
 * kv.h literally. The planner's spans are "executed" over fake address spaces
 * (tensor i of the source at (i + 1) << 32, of the destination at (i + 1) << 40)
 * and the resulting map must equal the reference byte for byte. A destination
 * byte written several times (duplicate destination blocks) is compared as a
 * multiset of sources (count, sum, sum of squares), so no write order is
 * assumed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv/plan.h"
#include "kv/table.h"
#include "util/error.h"

#define MAX_T      64            /* tensors per cache in the planner tests */
#define MAX_LIST   128           /* block list length */
#define MAP_BUDGET (64u * 1024u) /* destination bytes of one random case */

#define SRC_BASE(i) (((uint64_t)(i) + 1) << 32)
#define DST_BASE(i) (((uint64_t)(i) + 1) << 40)

#define F_NT    KVX_KV_CACHE_FIELD_NUM_TENSORS
#define F_DT    KVX_KV_CACHE_FIELD_DTYPE
#define F_SHAPE KVX_KV_CACHE_FIELD_SHAPE
#define F_REQ   (F_NT | F_DT | F_SHAPE)

#define X_LAYERS KVX_KV_XFER_FIELD_LAYERS
#define X_TNPL   KVX_KV_XFER_FIELD_TENSORS_PER_LAYER
#define X_SIZE   KVX_KV_XFER_FIELD_SIZE
#define X_TMO    KVX_KV_XFER_FIELD_TIMEOUT

/* ------------------------------------------------------------------ PRNG */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform-ish in [0, n), n > 0. */
static uint64_t rng_below(uint64_t n)
{
    return rng_next() % n;
}

/* In [lo, hi]. */
static uint64_t rng_range(uint64_t lo, uint64_t hi)
{
    return lo + rng_below(hi - lo + 1);
}

/* ------------------------------------------------- independent dtype table */

static const struct {
    kvx_dtype_t dtype;
    size_t size;
} dtype_table[] = {
    {KVX_DTYPE_FP16, 2},  {KVX_DTYPE_BF16, 2},     {KVX_DTYPE_FP32, 4},     {KVX_DTYPE_FP64, 8},
    {KVX_DTYPE_INT8, 1},  {KVX_DTYPE_UINT8, 1},    {KVX_DTYPE_INT16, 2},    {KVX_DTYPE_UINT16, 2},
    {KVX_DTYPE_INT32, 4}, {KVX_DTYPE_UINT32, 4},   {KVX_DTYPE_INT64, 8},    {KVX_DTYPE_UINT64, 8},
    {KVX_DTYPE_BOOL, 1},  {KVX_DTYPE_FP8_E4M3, 1}, {KVX_DTYPE_FP8_E5M2, 1},
};
#define NUM_DTYPES (sizeof(dtype_table) / sizeof(dtype_table[0]))

static uint64_t ref_elem_size(kvx_dtype_t dtype)
{
    for (size_t i = 0; i < NUM_DTYPES; i++) {
        if (dtype_table[i].dtype == dtype) {
            return dtype_table[i].size;
        }
    }
    fail_msg("dtype %d not in the test's table", (int)dtype);
    return 0;
}

/* Bytes of one entry: element size times dims[1..]. */
static uint64_t ref_entry_size(kvx_dtype_t dtype, uint32_t ndims, const int64_t *dims)
{
    uint64_t s = ref_elem_size(dtype);
    for (uint32_t i = 1; i < ndims; i++) {
        s *= (uint64_t)dims[i];
    }
    return s;
}

/* --------------------------------------------------------------- caches */

typedef struct cache {
    kvx_kv_geom_t g;
    uint64_t addrs[MAX_T];
} cache_t;

static void cache_init(cache_t *c, int dst_side, uint32_t nt, kvx_dtype_t dtype, uint32_t ndims,
                       const int64_t *dims)
{
    kvx_kv_cache_desc_t d;
    memset(&d, 0, sizeof(d));
    d.field_mask = F_REQ;
    d.num_tensors = nt;
    d.dtype = dtype;
    d.ndims = ndims;
    memcpy(d.dims, dims, ndims * sizeof(dims[0]));
    kvx_status_t st = kvx_kv_geom_init(&c->g, &d);
    if (st != KVX_OK) {
        print_error("geom_init: %s\n", kvx_last_error());
    }
    assert_int_equal(st, KVX_OK);
    uint64_t es = ref_entry_size(dtype, ndims, dims);
    assert_int_equal(c->g.entry_size, es);
    assert_int_equal(c->g.entries, (uint64_t)dims[0]);
    assert_int_equal(c->g.tensor_size, es * (uint64_t)dims[0]);
    assert_true(nt <= MAX_T);
    for (uint32_t i = 0; i < nt; i++) {
        c->addrs[i] = dst_side ? DST_BASE(i) : SRC_BASE(i);
    }
    c->g.addrs = c->addrs;
}

/* ------------------------------------------------------------ test cases */

typedef struct tcase {
    kvx_dtype_t dtype;
    uint32_t ndims;
    int64_t src_dims[KVX_KV_MAX_DIMS];
    int64_t dst_dims[KVX_KV_MAX_DIMS];
    uint32_t src_nt, dst_nt;
    int use_params;
    kvx_kv_xfer_params_t params;
    int blocks;
    uint64_t src_entry, dst_entry;
    size_t count;
    uint64_t src_blocks[MAX_LIST];
    uint64_t dst_blocks[MAX_LIST];
} tcase_t;

/* Byte map over all destination tensors: per byte, how many writes and the
 * sum and sum of squares of the encoded sources ((tensor + 1) << 32 | offset). */
typedef struct bytemap {
    size_t n;
    uint64_t tsize; /* destination tensor size */
    uint32_t *cnt;
    uint64_t *sum;
    uint64_t *sq;
} bytemap_t;

static void map_init(bytemap_t *m, uint32_t nt, uint64_t tsize)
{
    m->n = (size_t)nt * tsize;
    m->tsize = tsize;
    m->cnt = calloc(m->n, sizeof(*m->cnt));
    m->sum = calloc(m->n, sizeof(*m->sum));
    m->sq = calloc(m->n, sizeof(*m->sq));
    assert_non_null(m->cnt);
    assert_non_null(m->sum);
    assert_non_null(m->sq);
}

static void map_free(bytemap_t *m)
{
    free(m->cnt);
    free(m->sum);
    free(m->sq);
}

static void map_put(bytemap_t *m, uint32_t dt, uint64_t doff, uint32_t st, uint64_t soff)
{
    size_t i = (size_t)dt * m->tsize + doff;
    uint64_t v = ((uint64_t)(st + 1) << 32) | soff;
    m->cnt[i]++;
    m->sum[i] += v;
    m->sq[i] += v * v;
}

/* Tensor selection, straight from kv.h: no layer range -> every tensor (the
 * counts are equal); else [first * tnpl, (last + 1) * tnpl) on each side. */
static void ref_select(const tcase_t *c, uint32_t *sf, uint32_t *df, uint32_t *n)
{
    const kvx_kv_xfer_params_t *p = c->use_params ? &c->params : NULL;
    if (p != NULL && (p->field_mask & X_LAYERS)) {
        uint32_t tnpl = (p->field_mask & X_TNPL) ? p->tensors_per_layer : 2;
        *sf = p->src_layer_first * tnpl;
        *df = p->dst_layer_first * tnpl;
        *n = (p->src_layer_last + 1) * tnpl - *sf;
        assert_int_equal(*n, (p->dst_layer_last + 1) * tnpl - *df);
    } else {
        assert_int_equal(c->src_nt, c->dst_nt);
        *sf = *df = 0;
        *n = c->src_nt;
    }
}

/* The reference: walk the request byte by byte. */
static void ref_build(const tcase_t *c, bytemap_t *m)
{
    uint64_t S = ref_entry_size(c->dtype, c->ndims, c->src_dims);
    uint32_t sf, df, n;
    ref_select(c, &sf, &df, &n);
    for (uint32_t t = 0; t < n; t++) {
        if (!c->blocks) {
            uint64_t size = S;
            if (c->use_params && (c->params.field_mask & X_SIZE)) {
                size = c->params.size;
            }
            for (uint64_t b = 0; b < size; b++) {
                map_put(m, df + t, c->dst_entry * S + b, sf + t, c->src_entry * S + b);
            }
            continue;
        }
        for (size_t k = 0; k < c->count; k++) {
            for (uint64_t b = 0; b < S; b++) {
                map_put(m, df + t, c->dst_blocks[k] * S + b, sf + t, c->src_blocks[k] * S + b);
            }
        }
    }
}

/* Maximal runs where both lists step by +1. */
static size_t ref_runs(const tcase_t *c)
{
    if (!c->blocks) {
        return 1;
    }
    size_t runs = 1;
    for (size_t k = 1; k < c->count; k++) {
        int merged = c->src_blocks[k] == c->src_blocks[k - 1] + 1 &&
                     c->dst_blocks[k] == c->dst_blocks[k - 1] + 1;
        runs += !merged;
    }
    return runs;
}

static int dst_has_duplicates(const tcase_t *c)
{
    if (!c->blocks) {
        return 0;
    }
    for (size_t i = 0; i < c->count; i++) {
        for (size_t j = i + 1; j < c->count; j++) {
            if (c->dst_blocks[i] == c->dst_blocks[j]) {
                return 1;
            }
        }
    }
    return 0;
}

static int span_cmp_dst(const void *a, const void *b)
{
    const kvx_kv_span_t *x = a, *y = b;
    return x->dst < y->dst ? -1 : x->dst > y->dst;
}

static void build_req(tcase_t *c, cache_t *src, cache_t *dst, kvx_kv_plan_req_t *req)
{
    cache_init(src, 0, c->src_nt, c->dtype, c->ndims, c->src_dims);
    cache_init(dst, 1, c->dst_nt, c->dtype, c->ndims, c->dst_dims);
    memset(req, 0, sizeof(*req));
    req->src = &src->g;
    req->dst = &dst->g;
    req->blocks = c->blocks;
    req->src_entry = c->src_entry;
    req->dst_entry = c->dst_entry;
    if (c->blocks) {
        req->src_blocks = c->src_blocks;
        req->dst_blocks = c->dst_blocks;
        req->src_count = c->count;
        req->dst_count = c->count;
    }
    req->params = c->use_params ? &c->params : NULL;
}

/* Plan @p c, check it against the reference. Returns the spans (caller frees)
 * so that hand-written cases can look at them too. */
static kvx_kv_span_t *check_case(tcase_t *c, const char *label, size_t *count_p)
{
    cache_t src, dst;
    kvx_kv_plan_req_t req;
    build_req(c, &src, &dst, &req);

    kvx_kv_span_t *spans = NULL;
    size_t count = 0;
    kvx_status_t st = kvx_kv_plan(&req, &spans, &count);
    if (st != KVX_OK) {
        print_error("%s: plan failed: %s\n", label, kvx_last_error());
    }
    assert_int_equal(st, KVX_OK);
    assert_non_null(spans);

    uint32_t sf, df, n;
    ref_select(c, &sf, &df, &n);
    size_t want_count = (size_t)n * ref_runs(c);
    if (count != want_count) {
        print_error("%s: %zu spans, want %u tensors x %zu runs\n", label, count, n, ref_runs(c));
    }
    assert_int_equal(count, want_count);

    bytemap_t ref, got;
    map_init(&ref, c->dst_nt, dst.g.tensor_size);
    map_init(&got, c->dst_nt, dst.g.tensor_size);
    ref_build(c, &ref);

    uint32_t prev_dt = 0;
    for (size_t i = 0; i < count; i++) {
        const kvx_kv_span_t *s = &spans[i];
        assert_true(s->len > 0);
        /* Source: inside one source tensor. */
        assert_true(s->src >= SRC_BASE(0) && s->src < ((uint64_t)1 << 40));
        uint32_t st_i = (uint32_t)((s->src >> 32) - 1);
        assert_true(st_i < c->src_nt);
        uint64_t soff = s->src - SRC_BASE(st_i);
        if (soff + s->len > src.g.tensor_size) {
            print_error("%s: span %zu reads [%llu, +%llu) of source tensor %u (%llu bytes)\n",
                        label, i, (unsigned long long)soff, (unsigned long long)s->len, st_i,
                        (unsigned long long)src.g.tensor_size);
        }
        assert_true(soff + s->len <= src.g.tensor_size);
        /* Destination: inside one destination tensor. */
        assert_true(s->dst >= DST_BASE(0));
        uint32_t dt_i = (uint32_t)((s->dst >> 40) - 1);
        assert_true(dt_i < c->dst_nt);
        uint64_t doff = s->dst - DST_BASE(dt_i);
        if (doff + s->len > dst.g.tensor_size) {
            print_error("%s: span %zu writes [%llu, +%llu) of dest tensor %u (%llu bytes)\n", label,
                        i, (unsigned long long)doff, (unsigned long long)s->len, dt_i,
                        (unsigned long long)dst.g.tensor_size);
        }
        assert_true(doff + s->len <= dst.g.tensor_size);
        /* Tensor pair by tensor pair. */
        assert_true(dt_i >= prev_dt);
        prev_dt = dt_i;
        for (uint64_t b = 0; b < s->len; b++) {
            map_put(&got, dt_i, doff + b, st_i, soff + b);
        }
    }

    for (size_t i = 0; i < ref.n; i++) {
        if (ref.cnt[i] != got.cnt[i] || ref.sum[i] != got.sum[i] || ref.sq[i] != got.sq[i]) {
            uint64_t t = i / ref.tsize, off = i % ref.tsize;
            print_error("%s: dest tensor %llu byte %llu: want %u writes (sum %#llx), got %u "
                        "(sum %#llx)\n",
                        label, (unsigned long long)t, (unsigned long long)off, ref.cnt[i],
                        (unsigned long long)ref.sum[i], got.cnt[i], (unsigned long long)got.sum[i]);
            fail();
        }
    }

    /* No two spans write the same destination byte (unless the destination
     * list itself names a block twice). */
    if (!dst_has_duplicates(c)) {
        kvx_kv_span_t *sorted = malloc(count * sizeof(*sorted));
        assert_non_null(sorted);
        memcpy(sorted, spans, count * sizeof(*sorted));
        qsort(sorted, count, sizeof(*sorted), span_cmp_dst);
        for (size_t i = 1; i < count; i++) {
            assert_true(sorted[i - 1].dst + sorted[i - 1].len <= sorted[i].dst);
        }
        free(sorted);
    }

    map_free(&ref);
    map_free(&got);
    *count_p = count;
    return spans;
}

static void check_case_only(tcase_t *c, const char *label)
{
    size_t count;
    free(check_case(c, label, &count));
}

/* A plain case: @p nt tensors each side, same shape. */
static void tcase_simple(tcase_t *c, uint32_t nt, kvx_dtype_t dtype, uint32_t ndims,
                         const int64_t *dims)
{
    memset(c, 0, sizeof(*c));
    c->dtype = dtype;
    c->ndims = ndims;
    memcpy(c->src_dims, dims, ndims * sizeof(dims[0]));
    memcpy(c->dst_dims, dims, ndims * sizeof(dims[0]));
    c->src_nt = c->dst_nt = nt;
}

static void tcase_blocks(tcase_t *c, const uint64_t *src, const uint64_t *dst, size_t n)
{
    assert_true(n <= MAX_LIST);
    c->blocks = 1;
    c->count = n;
    memcpy(c->src_blocks, src, n * sizeof(src[0]));
    memcpy(c->dst_blocks, dst, n * sizeof(dst[0]));
}

/* -------------------------------------------------------- hand-written OK */

/* Upstream example: 4 tensors int32 {8, 16} (64-byte rows), blocks {1,2,3}
 * -> {1,2,3}: one span of 192 bytes per tensor. */
static void test_upstream_example(void **state)
{
    (void)state;
    tcase_t c;
    const int64_t dims[] = {8, 16};
    const uint64_t b[] = {1, 2, 3};
    tcase_simple(&c, 4, KVX_DTYPE_INT32, 2, dims);
    tcase_blocks(&c, b, b, 3);
    size_t n;
    kvx_kv_span_t *s = check_case(&c, "upstream", &n);
    assert_int_equal(n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(s[i].src, SRC_BASE(i) + 64);
        assert_int_equal(s[i].dst, DST_BASE(i) + 64);
        assert_int_equal(s[i].len, 192);
    }
    free(s);
}

static void test_hand_blocks(void **state)
{
    (void)state;
    const int64_t dims[] = {16, 4, 8};
    tcase_t c;
    size_t n;
    kvx_kv_span_t *s;

    /* Reversed: three spans per tensor. */
    tcase_simple(&c, 2, KVX_DTYPE_FP16, 3, dims);
    tcase_blocks(&c, (const uint64_t[]){3, 2, 1}, (const uint64_t[]){1, 2, 3}, 3);
    s = check_case(&c, "reversed", &n);
    assert_int_equal(n, 6);
    free(s);

    /* Source steps, destination breaks: (1,5)+(2,6) merge, (3,8) alone. */
    tcase_simple(&c, 2, KVX_DTYPE_FP16, 3, dims);
    tcase_blocks(&c, (const uint64_t[]){1, 2, 3}, (const uint64_t[]){5, 6, 8}, 3);
    s = check_case(&c, "dst break", &n);
    assert_int_equal(n, 4);
    assert_int_equal(s[0].src, SRC_BASE(0) + 1 * 64);
    assert_int_equal(s[0].dst, DST_BASE(0) + 5 * 64);
    assert_int_equal(s[0].len, 128);
    assert_int_equal(s[1].src, SRC_BASE(0) + 3 * 64);
    assert_int_equal(s[1].dst, DST_BASE(0) + 8 * 64);
    assert_int_equal(s[1].len, 64);
    free(s);

    /* Whole cache in one run: one span per tensor, the whole tensor. */
    uint64_t all[16];
    for (uint64_t i = 0; i < 16; i++) {
        all[i] = i;
    }
    tcase_simple(&c, 3, KVX_DTYPE_FP16, 3, dims);
    tcase_blocks(&c, all, all, 16);
    s = check_case(&c, "whole", &n);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(s[i].len, 16 * 64);
    }
    free(s);

    /* One source block broadcast to three destination blocks. */
    tcase_simple(&c, 1, KVX_DTYPE_INT8, 1, (const int64_t[]){4});
    tcase_blocks(&c, (const uint64_t[]){2, 2, 2}, (const uint64_t[]){0, 1, 3}, 3);
    s = check_case(&c, "broadcast", &n);
    assert_int_equal(n, 3);
    free(s);

    /* Last blocks of a 128-block source into the last of a 64-block one. */
    tcase_simple(&c, 2, KVX_DTYPE_BF16, 2, (const int64_t[]){128, 8});
    c.dst_dims[0] = 64;
    tcase_blocks(&c, (const uint64_t[]){125, 126, 127}, (const uint64_t[]){61, 62, 63}, 3);
    s = check_case(&c, "edges", &n);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].src, SRC_BASE(0) + 125 * 16);
    assert_int_equal(s[0].dst, DST_BASE(0) + 61 * 16);
    assert_int_equal(s[0].len, 48);
    free(s);

    /* Single block, with layers: 8 tensors, layers [1, 2] -> [0, 1]. */
    tcase_simple(&c, 8, KVX_DTYPE_FP32, 2, (const int64_t[]){4, 3});
    c.use_params = 1;
    c.params.field_mask = X_LAYERS;
    c.params.src_layer_first = 1;
    c.params.src_layer_last = 2;
    c.params.dst_layer_first = 0;
    c.params.dst_layer_last = 1;
    tcase_blocks(&c, (const uint64_t[]){3}, (const uint64_t[]){0}, 1);
    s = check_case(&c, "layers", &n);
    assert_int_equal(n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(s[i].src, SRC_BASE(2 + i) + 3 * 12);
        assert_int_equal(s[i].dst, DST_BASE(i));
        assert_int_equal(s[i].len, 12);
    }
    free(s);

    /* size only concerns contiguous calls: block calls move whole blocks. */
    tcase_simple(&c, 2, KVX_DTYPE_FP16, 3, dims);
    c.use_params = 1;
    c.params.field_mask = X_SIZE;
    c.params.size = 10;
    tcase_blocks(&c, (const uint64_t[]){4, 5}, (const uint64_t[]){0, 1}, 2);
    s = check_case(&c, "size ignored", &n);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].len, 128);
    free(s);
}

static void test_hand_entries(void **state)
{
    (void)state;
    tcase_t c;
    size_t n;
    kvx_kv_span_t *s;

    /* Whole entry, params NULL. */
    tcase_simple(&c, 4, KVX_DTYPE_FP16, 3, (const int64_t[]){4, 2, 8});
    c.dst_dims[0] = 9;
    c.src_entry = 3;
    c.dst_entry = 8;
    s = check_case(&c, "entry", &n);
    assert_int_equal(n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(s[i].src, SRC_BASE(i) + 3 * 32);
        assert_int_equal(s[i].dst, DST_BASE(i) + 8 * 32);
        assert_int_equal(s[i].len, 32);
    }
    free(s);

    /* Prefix of an entry, size 1 and size = entry. */
    uint64_t sizes[] = {1, 7, 32};
    for (size_t k = 0; k < 3; k++) {
        tcase_simple(&c, 2, KVX_DTYPE_FP16, 3, (const int64_t[]){4, 2, 8});
        c.use_params = 1;
        c.params.field_mask = X_SIZE | X_TMO;
        c.params.size = sizes[k];
        c.params.timeout_ms = 5;
        c.src_entry = 1;
        c.dst_entry = 2;
        s = check_case(&c, "entry size", &n);
        assert_int_equal(n, 2);
        assert_int_equal(s[1].len, sizes[k]);
        assert_int_equal(s[1].src, SRC_BASE(1) + 32);
        assert_int_equal(s[1].dst, DST_BASE(1) + 64);
        free(s);
    }

    /* Layers with tnpl 4 and different tensor counts: src 3 layers, dst 2. */
    tcase_simple(&c, 12, KVX_DTYPE_INT8, 2, (const int64_t[]){2, 5});
    c.dst_nt = 8;
    c.use_params = 1;
    c.params.field_mask = X_LAYERS | X_TNPL;
    c.params.tensors_per_layer = 4;
    c.params.src_layer_first = c.params.src_layer_last = 2;
    c.params.dst_layer_first = c.params.dst_layer_last = 1;
    c.src_entry = 1;
    s = check_case(&c, "entry layers", &n);
    assert_int_equal(n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_int_equal(s[i].src, SRC_BASE(8 + i) + 5);
        assert_int_equal(s[i].dst, DST_BASE(4 + i));
        assert_int_equal(s[i].len, 5);
    }
    free(s);
}

/* Offsets past 4 GiB must not be truncated. */
static void test_large_offsets(void **state)
{
    (void)state;
    cache_t src, dst;
    const int64_t sd[] = {1 << 20, 1 << 20}, dd[] = {1 << 21, 1 << 20};
    cache_init(&src, 0, 2, KVX_DTYPE_INT8, 2, sd);
    cache_init(&dst, 1, 2, KVX_DTYPE_INT8, 2, dd);
    assert_int_equal(src.g.tensor_size, (uint64_t)1 << 40);
    assert_int_equal(dst.g.tensor_size, (uint64_t)1 << 41);
    uint64_t sb[] = {(1u << 20) - 2, (1u << 20) - 1}, db[] = {(1u << 21) - 2, (1u << 21) - 1};
    kvx_kv_plan_req_t req = {.src = &src.g,
                             .dst = &dst.g,
                             .blocks = 1,
                             .src_blocks = sb,
                             .src_count = 2,
                             .dst_blocks = db,
                             .dst_count = 2};
    kvx_kv_span_t *s = NULL;
    size_t n = 0;
    assert_int_equal(kvx_kv_plan(&req, &s, &n), KVX_OK);
    assert_int_equal(n, 2);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(s[i].src, SRC_BASE(i) + (((uint64_t)1 << 40) - ((uint64_t)2 << 20)));
        assert_int_equal(s[i].dst, DST_BASE(i) + (((uint64_t)1 << 41) - ((uint64_t)2 << 20)));
        assert_int_equal(s[i].len, (uint64_t)2 << 20);
    }
    free(s);

    kvx_kv_plan_req_t ereq = {
        .src = &src.g, .dst = &dst.g, .src_entry = (1u << 20) - 1, .dst_entry = (1u << 21) - 1};
    assert_int_equal(kvx_kv_plan(&ereq, &s, &n), KVX_OK);
    assert_int_equal(n, 2);
    assert_int_equal(s[1].src, SRC_BASE(1) + (((uint64_t)1 << 40) - ((uint64_t)1 << 20)));
    assert_int_equal(s[1].dst, DST_BASE(1) + (((uint64_t)1 << 41) - ((uint64_t)1 << 20)));
    assert_int_equal(s[1].len, (uint64_t)1 << 20);
    free(s);
}

/* ------------------------------------------------------------- randomized */

static void gen_list(uint64_t *l, size_t n, uint64_t entries, int kind)
{
    switch (kind) {
    case 0: /* random */
        for (size_t k = 0; k < n; k++) {
            l[k] = rng_below(entries);
        }
        break;
    case 1: /* sorted (duplicates possible) */
        for (size_t k = 0; k < n; k++) {
            l[k] = rng_below(entries);
        }
        for (size_t i = 1; i < n; i++) {
            for (size_t j = i; j > 0 && l[j - 1] > l[j]; j--) {
                uint64_t t = l[j];
                l[j] = l[j - 1];
                l[j - 1] = t;
            }
        }
        break;
    case 2: { /* duplicates from a small pool */
        uint64_t pool[3] = {rng_below(entries), rng_below(entries), rng_below(entries)};
        for (size_t k = 0; k < n; k++) {
            l[k] = pool[rng_below(3)];
        }
        break;
    }
    case 3: { /* reversed, consecutive */
        uint64_t start = rng_below(entries);
        for (size_t k = 0; k < n; k++) {
            l[k] = (start + entries * n - k) % entries;
        }
        break;
    }
    case 4: { /* long runs with random starts */
        size_t k = 0;
        while (k < n) {
            uint64_t start = rng_below(entries);
            size_t len = (size_t)rng_range(1, 24);
            for (size_t j = 0; j < len && k < n; j++, k++) {
                l[k] = (start + j) % entries;
            }
        }
        break;
    }
    default: { /* one consecutive run (wrapping) */
        uint64_t start = rng_below(entries);
        for (size_t k = 0; k < n; k++) {
            l[k] = (start + k) % entries;
        }
        break;
    }
    }
}

/* @p n distinct indices below @p entries (n <= entries <= 64), shuffled. */
static void gen_distinct(uint64_t *l, size_t n, uint64_t entries)
{
    uint64_t perm[64];
    assert_true(entries <= 64 && n <= entries);
    for (uint64_t i = 0; i < entries; i++) {
        perm[i] = i;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)rng_below(entries - i);
        uint64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        l[i] = perm[i];
    }
}

/* Both lists with the same run structure, so that long runs merge. */
static void gen_paired_runs(tcase_t *c, uint64_t se, uint64_t de)
{
    size_t k = 0;
    while (k < c->count) {
        uint64_t s0 = rng_below(se), d0 = rng_below(de);
        size_t len = (size_t)rng_range(1, 32);
        for (size_t j = 0; j < len && k < c->count; j++, k++) {
            c->src_blocks[k] = (s0 + j) % se;
            c->dst_blocks[k] = (d0 + j) % de;
        }
    }
}

static void gen_case(tcase_t *c)
{
    static const kvx_dtype_t common[] = {KVX_DTYPE_FP16, KVX_DTYPE_INT8, KVX_DTYPE_BF16,
                                         KVX_DTYPE_FP32};
    memset(c, 0, sizeof(*c));
    c->dtype = rng_below(2) ? common[rng_below(4)] : dtype_table[rng_below(NUM_DTYPES)].dtype;
    c->ndims = (uint32_t)rng_range(1, 4);
    uint64_t es = ref_elem_size(c->dtype);
    for (uint32_t i = 1; i < c->ndims; i++) {
        int64_t d = (int64_t)rng_range(1, 9);
        if (es * (uint64_t)d > 512) {
            d = 1;
        }
        es *= (uint64_t)d;
        c->src_dims[i] = c->dst_dims[i] = d;
    }

    static const uint32_t tnpls[] = {1, 2, 4};
    uint32_t tnpl = tnpls[rng_below(3)];
    int layers = rng_below(10) < 7;
    uint64_t mask = 0;
    if (layers) {
        uint32_t ls = (uint32_t)rng_range(1, MAX_T / tnpl);
        uint32_t ld = (uint32_t)rng_range(1, MAX_T / tnpl);
        if (rng_below(4) == 0) {
            ld = (uint32_t)rng_range(1, ls); /* fewer, often small */
        }
        c->src_nt = ls * tnpl;
        c->dst_nt = ld * tnpl;
        uint32_t len = (uint32_t)rng_range(1, ls < ld ? ls : ld);
        c->params.src_layer_first = (uint32_t)rng_below(ls - len + 1);
        c->params.dst_layer_first = (uint32_t)rng_below(ld - len + 1);
        c->params.src_layer_last = c->params.src_layer_first + len - 1;
        c->params.dst_layer_last = c->params.dst_layer_first + len - 1;
        mask |= X_LAYERS;
        if (tnpl != 2 || rng_below(2)) {
            mask |= X_TNPL;
            c->params.tensors_per_layer = tnpl;
        }
    } else {
        c->src_nt = c->dst_nt = (uint32_t)rng_range(1, MAX_T);
        if (c->src_nt % tnpl == 0 && rng_below(3) == 0) {
            mask |= X_TNPL;
            c->params.tensors_per_layer = tnpl;
        }
    }

    /* Entry counts differ between the sides; keep the destination map small. */
    uint64_t dmax = MAP_BUDGET / (c->dst_nt * es);
    dmax = dmax < 1 ? 1 : dmax > 48 ? 48 : dmax;
    c->dst_dims[0] = (int64_t)rng_range(1, dmax);
    c->src_dims[0] = rng_below(4) == 0 ? c->dst_dims[0] : (int64_t)rng_range(1, 64);
    uint64_t se = (uint64_t)c->src_dims[0], de = (uint64_t)c->dst_dims[0];

    c->blocks = rng_below(10) < 6;
    if (!c->blocks) {
        c->src_entry = rng_below(se);
        c->dst_entry = rng_below(de);
        if (rng_below(2)) {
            mask |= X_SIZE;
            uint64_t r = rng_below(4);
            c->params.size = r == 0 ? 1 : r == 1 ? es : rng_range(1, es);
        }
    } else {
        uint64_t r = rng_below(10);
        c->count = r == 0 ? 1 : (size_t)rng_range(1, r < 5 ? 16 : MAX_LIST);
        uint64_t mode = rng_below(4);
        if (mode == 0) {
            gen_paired_runs(c, se, de);
        } else if (mode == 1) {
            /* Distinct on both sides, in random order. */
            c->count = c->count < se ? c->count : (size_t)se;
            c->count = c->count < de ? c->count : (size_t)de;
            gen_distinct(c->src_blocks, c->count, se);
            gen_distinct(c->dst_blocks, c->count, de);
        } else {
            gen_list(c->src_blocks, c->count, se, (int)rng_below(6));
            gen_list(c->dst_blocks, c->count, de, (int)rng_below(6));
        }
    }
    if (rng_below(4) == 0) {
        mask |= X_TMO;
        c->params.timeout_ms = (int)rng_below(1000);
    }
    c->params.field_mask = mask;
    /* Without any field, sometimes no params at all. */
    c->use_params = mask != 0 || rng_below(2);
}

static void test_random(void **state)
{
    (void)state;
    rng_state = 0x6b76785f706c616eull; /* fixed seed */
    char label[64];
    for (int i = 0; i < 3000; i++) {
        tcase_t c;
        gen_case(&c);
        snprintf(label, sizeof(label), "random case %d", i);
        check_case_only(&c, label);
    }
}

/* ------------------------------------------------------------------ errors */

static void expect_fail(tcase_t *c, kvx_status_t want, const char *label)
{
    cache_t src, dst;
    kvx_kv_plan_req_t req;
    build_req(c, &src, &dst, &req);
    if (!c->blocks) {
        req.src_blocks = req.dst_blocks = NULL;
    }
    kvx_kv_span_t *spans = NULL;
    size_t count = 12345;
    kvx_error_clear();
    kvx_status_t st = kvx_kv_plan(&req, &spans, &count);
    if (st != want) {
        print_error("%s: got %s, want %s (%s)\n", label, kvx_status_name(st), kvx_status_name(want),
                    kvx_last_error());
    }
    assert_int_equal(st, want);
    assert_null(spans);
    assert_true(count == 12345 || count == 0);
    assert_true(kvx_last_error()[0] != '\0');
}

/* A valid base: 8 tensors fp16 {128, 4, 8} -> {64, 4, 8}. */
static void err_base(tcase_t *c, int blocks)
{
    tcase_simple(c, 8, KVX_DTYPE_FP16, 3, (const int64_t[]){128, 4, 8});
    c->dst_dims[0] = 64;
    if (blocks) {
        tcase_blocks(c, (const uint64_t[]){1, 2, 3}, (const uint64_t[]){4, 5, 6}, 3);
    } else {
        c->src_entry = 127;
        c->dst_entry = 63;
    }
}

static void test_err_mismatch(void **state)
{
    (void)state;
    for (int blocks = 0; blocks < 2; blocks++) {
        tcase_t c;
        cache_t src, dst;
        kvx_kv_plan_req_t req;

        err_base(&c, blocks);
        check_case_only(&c, "base");

        /* dtype differs, same element size. */
        err_base(&c, blocks);
        build_req(&c, &src, &dst, &req);
        cache_init(&dst, 1, 8, KVX_DTYPE_BF16, 3, (const int64_t[]){64, 4, 8});
        kvx_kv_span_t *spans = NULL;
        size_t n = 7;
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);

        /* dtype differs, different element size, same entry bytes. */
        cache_init(&dst, 1, 8, KVX_DTYPE_INT8, 3, (const int64_t[]){64, 8, 8});
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);

        /* Entry shape differs, same entry bytes. */
        cache_init(&dst, 1, 8, KVX_DTYPE_FP16, 3, (const int64_t[]){64, 8, 4});
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);

        /* Entry shape differs in size. */
        cache_init(&dst, 1, 8, KVX_DTYPE_FP16, 3, (const int64_t[]){64, 4, 9});
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);

        /* ndims differs: {4, 8} vs {4, 8, 1}, and {32} flattened. */
        cache_init(&dst, 1, 8, KVX_DTYPE_FP16, 4, (const int64_t[]){64, 4, 8, 1});
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);
        cache_init(&dst, 1, 8, KVX_DTYPE_FP16, 2, (const int64_t[]){64, 32});
        assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_CACHE_MISMATCH);
        assert_null(spans);
        assert_int_equal(n, 7);

        /* Tensor counts differ without layers (params NULL, or no LAYERS). */
        err_base(&c, blocks);
        c.dst_nt = 6;
        expect_fail(&c, KVX_ERR_CACHE_MISMATCH, "nt differ");
        c.use_params = 1;
        c.params.field_mask = X_TNPL;
        c.params.tensors_per_layer = 2;
        expect_fail(&c, KVX_ERR_CACHE_MISMATCH, "nt differ, tnpl");
        /* ... and fine with layers. */
        c.params.field_mask = X_LAYERS;
        c.params.src_layer_first = 1;
        c.params.src_layer_last = 3;
        c.params.dst_layer_first = 0;
        c.params.dst_layer_last = 2;
        check_case_only(&c, "nt differ, layers");
    }
}

static void set_layers(tcase_t *c, uint32_t tnpl, uint32_t sf, uint32_t sl, uint32_t df,
                       uint32_t dl)
{
    c->use_params = 1;
    c->params.field_mask = X_LAYERS | X_TNPL;
    c->params.tensors_per_layer = tnpl;
    c->params.src_layer_first = sf;
    c->params.src_layer_last = sl;
    c->params.dst_layer_first = df;
    c->params.dst_layer_last = dl;
}

static void test_err_layers(void **state)
{
    (void)state;
    for (int blocks = 0; blocks < 2; blocks++) {
        tcase_t c;
        /* 8 tensors, tnpl 2: layers 0..3 on both sides. */
        err_base(&c, blocks);
        set_layers(&c, 2, 0, 3, 0, 3);
        check_case_only(&c, "all layers");
        set_layers(&c, 2, 3, 3, 0, 0);
        check_case_only(&c, "one layer");

        set_layers(&c, 2, 2, 1, 2, 1);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "reversed");
        set_layers(&c, 2, 2, 1, 1, 2);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "src reversed");
        set_layers(&c, 2, 1, 2, 2, 1);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "dst reversed");
        set_layers(&c, 2, 1, 4, 0, 3);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "src past end");
        set_layers(&c, 2, 0, 3, 1, 4);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "dst past end");
        set_layers(&c, 2, 4, 4, 0, 0);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "src first past end");
        set_layers(&c, 2, 0, 0, 4, 4);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "dst first past end");
        set_layers(&c, 2, 0, UINT32_MAX, 0, UINT32_MAX);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "huge last");
        set_layers(&c, 2, 0, 1, 0, 2);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "lengths differ");
        set_layers(&c, 2, 0, 2, 1, 2);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "lengths differ 2");
        set_layers(&c, 3, 0, 0, 0, 0);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "8 mod 3");
        set_layers(&c, 16, 0, 0, 0, 0);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "tnpl > nt");
        set_layers(&c, 0, 0, 0, 0, 0);
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "tnpl 0");
        c.params.field_mask = X_TNPL;
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "tnpl 0 without layers");

        /* Only one side not a multiple of tnpl. */
        err_base(&c, blocks);
        c.src_nt = 12;
        set_layers(&c, 4, 1, 2, 0, 1);
        check_case_only(&c, "12 vs 8 by 4");
        c.src_nt = 10;
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "src 10 mod 4");
        c.src_nt = 8;
        c.dst_nt = 6;
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "dst 6 mod 4");

        /* Default tnpl is 2: 5 tensors cannot be split into layers. */
        err_base(&c, blocks);
        c.src_nt = c.dst_nt = 5;
        c.use_params = 1;
        c.params.field_mask = X_LAYERS;
        expect_fail(&c, KVX_ERR_LAYER_RANGE, "default tnpl, 5 tensors");
    }
}

static void test_err_entries(void **state)
{
    (void)state;
    tcase_t c;
    err_base(&c, 0);
    c.src_entry = 128;
    expect_fail(&c, KVX_ERR_BATCH_OUT_OF_RANGE, "src entry");
    c.src_entry = UINT64_MAX;
    expect_fail(&c, KVX_ERR_BATCH_OUT_OF_RANGE, "src entry max");
    err_base(&c, 0);
    c.dst_entry = 64;
    expect_fail(&c, KVX_ERR_BATCH_OUT_OF_RANGE, "dst entry");
    c.dst_entry = UINT64_MAX;
    expect_fail(&c, KVX_ERR_BATCH_OUT_OF_RANGE, "dst entry max");

    err_base(&c, 0);
    c.use_params = 1;
    c.params.field_mask = X_SIZE;
    c.params.size = 0;
    expect_fail(&c, KVX_ERR_SIZE_OUT_OF_RANGE, "size 0");
    c.params.size = 65;
    expect_fail(&c, KVX_ERR_SIZE_OUT_OF_RANGE, "size entry + 1");
    c.params.size = UINT64_MAX;
    expect_fail(&c, KVX_ERR_SIZE_OUT_OF_RANGE, "size max");
    c.params.size = 64;
    check_case_only(&c, "size entry");
    c.params.size = 1;
    check_case_only(&c, "size 1");
    /* Without the SIZE bit the field is ignored. */
    c.params.field_mask = 0;
    c.params.size = 0;
    check_case_only(&c, "size without bit");
}

static void test_err_blocks(void **state)
{
    (void)state;
    tcase_t c;
    /* Upstream: 128-block source, 64-block destination. */
    err_base(&c, 1);
    tcase_blocks(&c, (const uint64_t[]){125, 126, 127, 128}, (const uint64_t[]){0, 1, 2, 3}, 4);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "src 128");
    tcase_blocks(&c, (const uint64_t[]){0, 1, 2, 3}, (const uint64_t[]){61, 62, 63, 64}, 4);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "dst 64");
    tcase_blocks(&c, (const uint64_t[]){125, 126, 127, 128}, (const uint64_t[]){61, 62, 63, 64}, 4);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "both");
    /* A source index valid for the source but not the destination size. */
    tcase_blocks(&c, (const uint64_t[]){100}, (const uint64_t[]){100}, 1);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "dst 100");
    tcase_blocks(&c, (const uint64_t[]){UINT64_MAX}, (const uint64_t[]){0}, 1);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "src max");
    tcase_blocks(&c, (const uint64_t[]){0}, (const uint64_t[]){UINT64_MAX}, 1);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "dst max");
    /* Bad index in the middle of a long list. */
    uint64_t s[64], d[64];
    for (uint64_t i = 0; i < 64; i++) {
        s[i] = i;
        d[i] = 63 - i;
    }
    tcase_blocks(&c, s, d, 64);
    check_case_only(&c, "64 reversed");
    d[40] = 64;
    tcase_blocks(&c, s, d, 64);
    expect_fail(&c, KVX_ERR_BLOCK_OUT_OF_RANGE, "dst middle");

    /* Unequal lengths. */
    cache_t src, dst;
    kvx_kv_plan_req_t req;
    kvx_kv_span_t *spans = NULL;
    size_t n = 7;
    err_base(&c, 1);
    build_req(&c, &src, &dst, &req);
    req.dst_count = 2;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_BLOCK_LIST_MISMATCH);
    assert_null(spans);
    req.dst_count = 4;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_BLOCK_LIST_MISMATCH);
    assert_null(spans);
    req.src_count = 1;
    req.dst_count = 3;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_BLOCK_LIST_MISMATCH);
    assert_null(spans);

    /* Empty or missing lists. */
    req.src_count = req.dst_count = 0;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_INVALID_PARAM);
    assert_null(spans);
    req.src_blocks = req.dst_blocks = NULL;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_INVALID_PARAM);
    assert_null(spans);
    req.src_count = req.dst_count = 3;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_INVALID_PARAM);
    assert_null(spans);
    req.src_blocks = c.src_blocks;
    assert_int_equal(kvx_kv_plan(&req, &spans, &n), KVX_ERR_INVALID_PARAM);
    assert_null(spans);
    assert_int_equal(n, 7);
}

static void test_err_params(void **state)
{
    (void)state;
    for (int blocks = 0; blocks < 2; blocks++) {
        tcase_t c;
        err_base(&c, blocks);
        c.use_params = 1;
        c.params.field_mask = KVX_BIT(5);
        expect_fail(&c, KVX_ERR_UNSUPPORTED, "bit 5");
        c.params.field_mask = X_LAYERS | X_TNPL | X_SIZE | X_TMO | KVX_BIT(63);
        c.params.tensors_per_layer = 2;
        c.params.size = 1;
        expect_fail(&c, KVX_ERR_UNSUPPORTED, "bit 63");
        c.params.field_mask = X_LAYERS | X_TNPL | X_SIZE | X_TMO;
        check_case_only(&c, "all known bits");
    }
}

/* ---------------------------------------------------------- geometry init */

static kvx_kv_cache_desc_t desc_of(uint32_t nt, kvx_dtype_t dtype, uint32_t ndims,
                                   const int64_t *dims)
{
    kvx_kv_cache_desc_t d;
    memset(&d, 0, sizeof(d));
    d.field_mask = F_REQ;
    d.num_tensors = nt;
    d.dtype = dtype;
    d.ndims = ndims;
    if (ndims > 0) {
        memcpy(d.dims, dims, (ndims < KVX_KV_MAX_DIMS ? ndims : KVX_KV_MAX_DIMS) * 8);
    }
    return d;
}

static void expect_geom(const kvx_kv_cache_desc_t *d, kvx_status_t want, const char *label)
{
    kvx_kv_geom_t g;
    kvx_error_clear();
    kvx_status_t st = kvx_kv_geom_init(&g, d);
    if (st != want) {
        print_error("%s: got %s, want %s (%s)\n", label, kvx_status_name(st), kvx_status_name(want),
                    kvx_last_error());
    }
    assert_int_equal(st, want);
    if (want != KVX_OK) {
        assert_true(kvx_last_error()[0] != '\0');
    }
}

static void test_dtype_size(void **state)
{
    (void)state;
    for (size_t i = 0; i < NUM_DTYPES; i++) {
        assert_int_equal(kvx_dtype_size(dtype_table[i].dtype), dtype_table[i].size);
    }
    assert_int_equal(kvx_dtype_size((kvx_dtype_t)0), 0);
    assert_int_equal(kvx_dtype_size((kvx_dtype_t)16), 0);
    assert_int_equal(kvx_dtype_size((kvx_dtype_t)-1), 0);
    assert_int_equal(kvx_dtype_size((kvx_dtype_t)1000), 0);
}

static void test_geom_valid(void **state)
{
    (void)state;
    static const struct {
        uint32_t nt;
        kvx_dtype_t dtype;
        uint32_t ndims;
        int64_t dims[KVX_KV_MAX_DIMS];
        uint64_t tensor_size, entry_size;
    } ok[] = {
        {1, KVX_DTYPE_INT8, 1, {1}, 1, 1},
        {4, KVX_DTYPE_INT32, 2, {8, 16}, 512, 64},
        {64, KVX_DTYPE_FP16, 4, {128, 16, 8, 64}, 2097152, 16384},
        {3, KVX_DTYPE_FP64, 3, {3, 5, 7}, 840, 280},
        {2, KVX_DTYPE_BOOL, 8, {2, 1, 2, 1, 2, 1, 2, 3}, 48, 24},
        {KVX_KV_MAX_TENSORS, KVX_DTYPE_UINT64, 1, {5}, 40, 8},
        {2, KVX_DTYPE_INT8, 2, {1 << 20, 1 << 20}, 1ull << 40, 1ull << 20},
        {2, KVX_DTYPE_BF16, 2, {1 << 30, 16}, 1ull << 35, 32},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        kvx_kv_cache_desc_t d = desc_of(ok[i].nt, ok[i].dtype, ok[i].ndims, ok[i].dims);
        if (i % 2) {
            d.field_mask |= KVX_KV_CACHE_FIELD_PLACEMENT;
            d.placement = KVX_MEM_HOST;
        }
        kvx_kv_geom_t g;
        memset(&g, 0xa5, sizeof(g));
        assert_int_equal(kvx_kv_geom_init(&g, &d), KVX_OK);
        assert_int_equal(g.num_tensors, ok[i].nt);
        assert_int_equal(g.dtype, ok[i].dtype);
        assert_int_equal(g.ndims, ok[i].ndims);
        for (uint32_t k = 0; k < ok[i].ndims; k++) {
            assert_int_equal(g.dims[k], ok[i].dims[k]);
        }
        assert_int_equal(g.tensor_size, ok[i].tensor_size);
        assert_int_equal(g.entry_size, ok[i].entry_size);
        assert_int_equal(g.entries, (uint64_t)ok[i].dims[0]);
        assert_int_equal(g.tensor_size,
                         ref_entry_size(ok[i].dtype, ok[i].ndims, ok[i].dims) * g.entries);
        assert_null(g.addrs);
    }
}

static void test_geom_invalid(void **state)
{
    (void)state;
    const int64_t dims[] = {8, 16};
    kvx_kv_cache_desc_t d;

    /* Missing required fields. */
    uint64_t req_bits[] = {F_NT, F_DT, F_SHAPE};
    for (size_t i = 0; i < 3; i++) {
        d = desc_of(4, KVX_DTYPE_FP16, 2, dims);
        d.field_mask &= ~req_bits[i];
        expect_geom(&d, KVX_ERR_INVALID_PARAM, "missing field");
        d.field_mask |= KVX_KV_CACHE_FIELD_PLACEMENT;
        expect_geom(&d, KVX_ERR_INVALID_PARAM, "missing field + placement");
    }
    d = desc_of(4, KVX_DTYPE_FP16, 2, dims);
    d.field_mask = 0;
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "no fields");

    /* Unknown field bits. */
    d = desc_of(4, KVX_DTYPE_FP16, 2, dims);
    d.field_mask |= KVX_BIT(4);
    expect_geom(&d, KVX_ERR_UNSUPPORTED, "unknown bit");
    d.field_mask = F_REQ | KVX_BIT(63);
    expect_geom(&d, KVX_ERR_UNSUPPORTED, "bit 63");

    /* Bad dtype. */
    kvx_dtype_t bad_dt[] = {(kvx_dtype_t)0, (kvx_dtype_t)16, (kvx_dtype_t)-1};
    for (size_t i = 0; i < 3; i++) {
        d = desc_of(4, bad_dt[i], 2, dims);
        expect_geom(&d, KVX_ERR_INVALID_PARAM, "bad dtype");
    }

    /* 0 or 9 dimensions. */
    d = desc_of(4, KVX_DTYPE_FP16, 0, dims);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "0 dims");
    const int64_t nine[KVX_KV_MAX_DIMS] = {2, 2, 2, 2, 2, 2, 2, 2};
    d = desc_of(4, KVX_DTYPE_FP16, 8, nine);
    expect_geom(&d, KVX_OK, "8 dims");
    d.ndims = KVX_KV_MAX_DIMS + 1;
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "9 dims");
    d.ndims = UINT32_MAX;
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "max dims");

    /* Zero or negative dimensions, first and later. */
    const int64_t badv[] = {0, -1, INT64_MIN};
    for (size_t i = 0; i < 3; i++) {
        for (uint32_t pos = 0; pos < 3; pos++) {
            int64_t dd[3] = {8, 4, 2};
            dd[pos] = badv[i];
            d = desc_of(4, KVX_DTYPE_FP16, 3, dd);
            expect_geom(&d, KVX_ERR_INVALID_PARAM, "bad dim");
        }
    }

    /* Tensor count. */
    d = desc_of(0, KVX_DTYPE_FP16, 2, dims);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "0 tensors");
    d = desc_of(KVX_KV_MAX_TENSORS + 1, KVX_DTYPE_FP16, 2, dims);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "too many tensors");
    d = desc_of(UINT32_MAX, KVX_DTYPE_FP16, 2, dims);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "max tensors");

    /* Sizes that overflow (64 bits, or any sane bound). */
    const int64_t of1[] = {INT64_MAX};
    d = desc_of(1, KVX_DTYPE_INT8, 1, of1);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "INT64_MAX");
    const int64_t of2[] = {1ll << 32, 1ll << 32};
    d = desc_of(1, KVX_DTYPE_INT8, 2, of2);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "2^64 bytes");
    const int64_t of3[] = {1ll << 31, 1ll << 31, 4};
    d = desc_of(1, KVX_DTYPE_INT8, 3, of3);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "2^64 bytes, 3 dims");
    const int64_t of4[] = {1ll << 62};
    d = desc_of(1, KVX_DTYPE_FP64, 1, of4);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "2^65 bytes by dtype");
    const int64_t of5[] = {3, 1ll << 62, 1ll << 62, 5};
    d = desc_of(1, KVX_DTYPE_FP16, 4, of5);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "wraps to small");
    const int64_t of6[] = {1ll << 16, 1ll << 16, 1ll << 16, 1ll << 16};
    d = desc_of(1, KVX_DTYPE_INT8, 4, of6);
    expect_geom(&d, KVX_ERR_INVALID_PARAM, "2^64 bytes, wraps to 0");
}

/* ------------------------------------------------------------ cache table */

/* The published table parses back; a table that is not canonical (spare
 * bytes after the entries, one id twice, a reserved word set) is refused. */
static void test_table_canonical(void **state)
{
    (void)state;
    kvx_kv_cache_desc_t desc = {.field_mask = F_REQ,
                                .num_tensors = 2,
                                .dtype = KVX_DTYPE_FP16,
                                .ndims = 2,
                                .dims = {4, 64}};
    uint64_t addrs[2][2] = {{0x1000, 0x2000}, {0x3000, 0x4000}};
    kvx_kv_table_entry_t e[2] = {{.cache_id = 1, .placement = KVX_MEM_HOST, .addrs = addrs[0]},
                                 {.cache_id = 2, .placement = KVX_MEM_HOST, .addrs = addrs[1]}};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kvx_kv_geom_init(&e[i].geom, &desc), KVX_OK);
        e[i].geom.addrs = e[i].addrs;
    }
    uint8_t region[4096];
    uint64_t cluster = 0;
    kvx_kv_table_entry_t *out = NULL;
    size_t count = 0, need = 0;

    memset(region, 0, sizeof(region));
    assert_int_equal(kvx_kv_table_publish(region, sizeof(region), 77, e, 2), KVX_OK);
    assert_int_equal(kvx_kv_table_parse(region, sizeof(region), &cluster, &out, &count, &need),
                     KVX_OK);
    assert_int_equal(cluster, 77);
    assert_int_equal(count, 2);
    assert_int_equal(out[1].cache_id, 2);
    assert_int_equal(out[1].addrs[1], 0x4000);
    kvx_kv_table_free(out, count);

    /* The count says one entry; the payload holds two (the checksum covers
     * only the payload, so it still matches). */
    region[24] = 1;
    assert_int_equal(kvx_kv_table_parse(region, sizeof(region), &cluster, &out, &count, &need),
                     KVX_ERR_PROTOCOL);
    assert_non_null(strstr(kvx_last_error(), "after the last entry"));
    region[24] = 2;
    region[28] = 1;
    assert_int_equal(kvx_kv_table_parse(region, sizeof(region), &cluster, &out, &count, &need),
                     KVX_ERR_PROTOCOL);
    assert_non_null(strstr(kvx_last_error(), "reserved"));

    e[1].cache_id = 1;
    assert_int_equal(kvx_kv_table_publish(region, sizeof(region), 77, e, 2), KVX_OK);
    assert_int_equal(kvx_kv_table_parse(region, sizeof(region), &cluster, &out, &count, &need),
                     KVX_ERR_PROTOCOL);
    assert_non_null(strstr(kvx_last_error(), "appears twice"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_size),    cmocka_unit_test(test_geom_valid),
        cmocka_unit_test(test_geom_invalid),  cmocka_unit_test(test_upstream_example),
        cmocka_unit_test(test_hand_blocks),   cmocka_unit_test(test_hand_entries),
        cmocka_unit_test(test_large_offsets), cmocka_unit_test(test_random),
        cmocka_unit_test(test_err_mismatch),  cmocka_unit_test(test_err_layers),
        cmocka_unit_test(test_err_entries),   cmocka_unit_test(test_err_blocks),
        cmocka_unit_test(test_err_params),    cmocka_unit_test(test_table_canonical),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

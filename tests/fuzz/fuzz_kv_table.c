/*
 * kvx_kv_table_parse: the cache table a linked peer publishes, as read from
 * its memory (src/kv/table.c). Each input is parsed as it is, then again
 * with its sequence pair and checksum made consistent, so that mutated
 * entries get past the tear detection and reach the entry parser.
 */
/* fuzz.sh: -max_len=16384 */
#include "fuzz.h"
#include "kv/table.h"
#include "util/error.h"

#define HDR         KVX_KV_TABLE_HDR
#define ENTRY_FIXED (24 + 8 * KVX_KV_MAX_DIMS)

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

static int same_entry(const kvx_kv_table_entry_t *a, const kvx_kv_table_entry_t *b)
{
    if (a->cache_id != b->cache_id || a->placement != b->placement ||
        a->geom.num_tensors != b->geom.num_tensors || a->geom.dtype != b->geom.dtype ||
        a->geom.ndims != b->geom.ndims || a->geom.tensor_size != b->geom.tensor_size) {
        return 0;
    }
    return memcmp(a->geom.dims, b->geom.dims, a->geom.ndims * sizeof(a->geom.dims[0])) == 0 &&
           memcmp(a->addrs, b->addrs, a->geom.num_tensors * sizeof(a->addrs[0])) == 0;
}

/* Publishing what was parsed and parsing that again gives the same table
 * (the bytes may differ in dims past ndims). */
static void republish(uint64_t cluster, const kvx_kv_table_entry_t *e, size_t count, size_t used)
{
    size_t cap = HDR + used + 8;
    uint8_t *region = calloc(1, cap);
    FUZZ_CHECK(region != NULL);
    FUZZ_CHECK(kvx_kv_table_publish(region, cap, cluster, e, count) == KVX_OK);
    uint64_t cluster2 = 0;
    kvx_kv_table_entry_t *e2 = NULL;
    size_t count2 = 0, need = 1;
    FUZZ_CHECK(kvx_kv_table_parse(region, cap, &cluster2, &e2, &count2, &need) == KVX_OK);
    FUZZ_CHECK(cluster2 == cluster && count2 == count && need == 0);
    for (size_t i = 0; i < count; i++) {
        FUZZ_CHECK(same_entry(&e[i], &e2[i]));
    }
    kvx_kv_table_free(e2, count2);
    free(region);
}

static void parse(const uint8_t *buf, size_t len)
{
    uint64_t cluster = 0;
    kvx_kv_table_entry_t *entries = NULL;
    size_t count = 0, need = 1;
    kvx_error_clear();
    kvx_status_t st = kvx_kv_table_parse(buf, len, &cluster, &entries, &count, &need);
    if (st == KVX_INPROGRESS) {
        /* Read again, larger if need says so; need never asks for less. */
        FUZZ_CHECK(entries == NULL);
        FUZZ_CHECK(need == 0 || (need > len && need == HDR + fuzz_le(buf + 32, 8) + 8));
        return;
    }
    FUZZ_CHECK(need == 0);
    if (st != KVX_OK) {
        FUZZ_CHECK(st == KVX_ERR_PROTOCOL || st == KVX_ERR_NO_MEMORY);
        FUZZ_CHECK(entries == NULL && kvx_last_error()[0] != '\0');
        return;
    }
    uint64_t payload = fuzz_le(buf + 32, 8);
    FUZZ_CHECK(len >= HDR + 8 && payload <= len - HDR - 8);
    FUZZ_CHECK(fuzz_le(buf + 8, 8) % 2 == 0 &&
               fuzz_le(buf + HDR + payload, 8) == fuzz_le(buf + 8, 8));
    FUZZ_CHECK(cluster == fuzz_le(buf + 16, 8) && count == fuzz_le(buf + 24, 4));
    FUZZ_CHECK(fuzz_le(buf + 28, 4) == 0); /* the reserved word */
    /* A decoded count never exceeds what the payload can hold. */
    FUZZ_CHECK(count <= payload / ENTRY_FIXED);
    FUZZ_CHECK(entries != NULL);
    const uint8_t *p = buf + HDR;
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        const kvx_kv_table_entry_t *e = &entries[i];
        const kvx_kv_geom_t *g = &e->geom;
        FUZZ_CHECK(e->cache_id > 0 && (uint64_t)e->cache_id == fuzz_le(p, 8));
        FUZZ_CHECK((uint32_t)g->dtype == fuzz_le(p + 8, 4));
        FUZZ_CHECK(e->placement == KVX_MEM_HOST || e->placement == KVX_MEM_DEVICE);
        FUZZ_CHECK((uint32_t)e->placement == fuzz_le(p + 12, 4));
        FUZZ_CHECK(g->num_tensors >= 1 && g->num_tensors <= KVX_KV_MAX_TENSORS);
        FUZZ_CHECK(g->num_tensors == fuzz_le(p + 16, 4));
        FUZZ_CHECK(g->ndims >= 1 && g->ndims <= KVX_KV_MAX_DIMS && g->ndims == fuzz_le(p + 20, 4));
        uint64_t size = kvx_dtype_size(g->dtype);
        FUZZ_CHECK(size > 0);
        for (uint32_t d = 0; d < g->ndims; d++) {
            FUZZ_CHECK(g->dims[d] > 0 && (uint64_t)g->dims[d] == fuzz_le(p + 24 + 8 * d, 8));
            size *= (uint64_t)g->dims[d];
            FUZZ_CHECK(size <= (1ull << 48)); /* the bound that keeps sizes exact */
        }
        FUZZ_CHECK(g->tensor_size == size && g->entries == (uint64_t)g->dims[0]);
        FUZZ_CHECK(g->entry_size * g->entries == g->tensor_size);
        FUZZ_CHECK(g->addrs == e->addrs && e->addrs != NULL);
        for (uint32_t t = 0; t < g->num_tensors; t++) {
            FUZZ_CHECK(e->addrs[t] == fuzz_le(p + ENTRY_FIXED + 8 * t, 8));
        }
        size_t n = kvx_kv_table_entry_size(g->num_tensors);
        FUZZ_CHECK(n == ENTRY_FIXED + 8 * (size_t)g->num_tensors);
        used += n;
        FUZZ_CHECK(used <= payload); /* entries stay inside the payload */
        for (size_t j = 0; j < i; j++) {
            FUZZ_CHECK(entries[j].cache_id != e->cache_id); /* each id once */
        }
        p += n;
    }
    FUZZ_CHECK(used == payload); /* canonical: nothing after the last entry */
    republish(cluster, entries, count, used);
    kvx_kv_table_free(entries, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse(data, size);
    if (size < HDR + 8) {
        return 0;
    }
    uint64_t payload = fuzz_le(data + 32, 8);
    if (payload > size - HDR - 8) {
        return 0;
    }
    uint8_t *fixed = fuzz_dup(data, size);
    uint64_t seq = fuzz_le(fixed + 8, 8) & ~1ull;
    fuzz_put_le(fixed + 8, seq, 8);
    fuzz_put_le(fixed + HDR + payload, seq, 8);
    fuzz_put_le(fixed + 40, fnv1a(fixed + HDR, (size_t)payload), 8);
    parse(fixed, size);
    free(fixed);
    return 0;
}

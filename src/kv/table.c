#include "kv/table.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the cache table layout assumes a little-endian host"
#endif

#define TABLE_MAGIC 0x313054564b58564bull /* "KVXKVT01" as little-endian bytes */
#define ENTRY_FIXED (8 + 4 + 4 + 4 + 4 + 8 * KVX_KV_MAX_DIMS)

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Sequence words are written with release stores so a reader never sees
 * new content with an old, even sequence. */
static void store_seq(uint8_t *p, uint64_t v)
{
    /* p is 8-byte aligned (the region is, and payloads are multiples of 8);
     * kvx runs on little-endian hosts, so this stores put64()'s bytes. */
    __atomic_store_n((uint64_t *)(void *)p, v, __ATOMIC_SEQ_CST);
}

size_t kvx_kv_table_entry_size(uint32_t num_tensors)
{
    return ENTRY_FIXED + 8 * (size_t)num_tensors;
}

kvx_status_t kvx_kv_table_publish(uint8_t *region, size_t cap, uint64_t cluster_id,
                                  const kvx_kv_table_entry_t *entries, size_t count)
{
    size_t payload = 0;
    for (size_t i = 0; i < count; i++) {
        payload += kvx_kv_table_entry_size(entries[i].geom.num_tensors);
    }
    if (KVX_KV_TABLE_HDR + payload + 8 > cap) {
        return KVX_FAIL(KVX_ERR_RESOURCE_EXHAUSTED,
                        "cache table: %zu caches need %zu bytes, the table holds %zu "
                        "(raise table_capacity)",
                        count, KVX_KV_TABLE_HDR + payload + 8, cap);
    }
    uint64_t seq = get64(region + 8);
    if (get64(region) != TABLE_MAGIC) {
        seq = 0;
    }
    uint64_t old_payload = get64(region + 32);
    /* Mark both ends dirty before touching the content. */
    store_seq(region + 8, seq + 1);
    if (get64(region) == TABLE_MAGIC && KVX_KV_TABLE_HDR + old_payload + 8 <= cap) {
        store_seq(region + KVX_KV_TABLE_HDR + old_payload, seq + 1);
    }
    uint8_t *p = region + KVX_KV_TABLE_HDR;
    for (size_t i = 0; i < count; i++) {
        const kvx_kv_table_entry_t *e = &entries[i];
        put64(p, (uint64_t)e->cache_id);
        put32(p + 8, (uint32_t)e->geom.dtype);
        put32(p + 12, (uint32_t)e->placement);
        put32(p + 16, e->geom.num_tensors);
        put32(p + 20, e->geom.ndims);
        for (int d = 0; d < KVX_KV_MAX_DIMS; d++) {
            put64(p + 24 + 8 * d, d < (int)e->geom.ndims ? (uint64_t)e->geom.dims[d] : 0);
        }
        for (uint32_t t = 0; t < e->geom.num_tensors; t++) {
            put64(p + ENTRY_FIXED + 8 * t, e->addrs[t]);
        }
        p += kvx_kv_table_entry_size(e->geom.num_tensors);
    }
    put64(region, TABLE_MAGIC);
    put64(region + 16, cluster_id);
    put32(region + 24, (uint32_t)count);
    put32(region + 28, 0);
    put64(region + 32, payload);
    put64(region + 40, fnv1a(region + KVX_KV_TABLE_HDR, payload));
    store_seq(region + KVX_KV_TABLE_HDR + payload, seq + 2);
    store_seq(region + 8, seq + 2);
    return KVX_OK;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* A table names each cache once: a peer's table with two entries of one id
 * would make lookups depend on the order we search in. */
static kvx_status_t check_unique_ids(const kvx_kv_table_entry_t *entries, size_t count)
{
    if (count < 2) {
        return KVX_OK;
    }
    int64_t *ids = malloc(count * sizeof(*ids));
    if (ids == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "cache table: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        ids[i] = entries[i].cache_id;
    }
    qsort(ids, count, sizeof(*ids), cmp_id);
    kvx_status_t status = KVX_OK;
    for (size_t i = 1; i < count && status == KVX_OK; i++) {
        if (ids[i] == ids[i - 1]) {
            status = KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: cache id %lld appears twice",
                              (long long)ids[i]);
        }
    }
    free(ids);
    return status;
}

void kvx_kv_table_free(kvx_kv_table_entry_t *entries, size_t count)
{
    if (entries == NULL) {
        return;
    }
    for (size_t i = 0; i < count; i++) {
        free(entries[i].addrs);
    }
    free(entries);
}

kvx_status_t kvx_kv_table_parse(const uint8_t *buf, size_t len, uint64_t *cluster_id_p,
                                kvx_kv_table_entry_t **entries_p, size_t *count_p, size_t *need_p)
{
    *need_p = 0;
    if (len < KVX_KV_TABLE_HDR + 8) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: %zu bytes is too short", len);
    }
    if (get64(buf) != TABLE_MAGIC) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: bad magic");
    }
    uint64_t seq = get64(buf + 8);
    uint64_t payload = get64(buf + 32);
    if (payload > (1ull << 32)) {
        return KVX_INPROGRESS; /* torn header; a stable one has a sane length */
    }
    size_t total = KVX_KV_TABLE_HDR + (size_t)payload + 8;
    if (total > len) {
        *need_p = total;
        return KVX_INPROGRESS;
    }
    if ((seq & 1) || get64(buf + KVX_KV_TABLE_HDR + payload) != seq ||
        fnv1a(buf + KVX_KV_TABLE_HDR, payload) != get64(buf + 40)) {
        return KVX_INPROGRESS;
    }
    uint32_t count = get32(buf + 24);
    if (get32(buf + 28) != 0) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: reserved word is not zero");
    }
    if (count > payload / ENTRY_FIXED) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: %u entries cannot fit %llu bytes", count,
                        (unsigned long long)payload);
    }
    kvx_kv_table_entry_t *entries = calloc(count ? count : 1, sizeof(*entries));
    if (entries == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "cache table: out of memory");
    }
    const uint8_t *p = buf + KVX_KV_TABLE_HDR;
    const uint8_t *end = p + payload;
    kvx_status_t status = KVX_OK;
    size_t i = 0;
    for (; i < count; i++) {
        if ((size_t)(end - p) < ENTRY_FIXED) {
            status = KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: entry %zu truncated", i);
            break;
        }
        kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                                  KVX_KV_CACHE_FIELD_DTYPE |
                                                  KVX_KV_CACHE_FIELD_SHAPE,
                                    .num_tensors = get32(p + 16),
                                    .dtype = (kvx_dtype_t)get32(p + 8),
                                    .ndims = get32(p + 20)};
        for (int d = 0; d < KVX_KV_MAX_DIMS; d++) {
            desc.dims[d] = (int64_t)get64(p + 24 + 8 * d);
        }
        uint32_t placement = get32(p + 12);
        kvx_kv_table_entry_t *e = &entries[i];
        e->cache_id = (int64_t)get64(p);
        if (placement > KVX_MEM_DEVICE || e->cache_id <= 0 ||
            kvx_kv_geom_init(&e->geom, &desc) != KVX_OK ||
            (size_t)(end - p) < kvx_kv_table_entry_size(desc.num_tensors)) {
            status = KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: entry %zu is malformed", i);
            break;
        }
        e->placement = (kvx_mem_type_t)placement;
        e->addrs = malloc(desc.num_tensors * sizeof(uint64_t));
        if (e->addrs == NULL) {
            status = KVX_FAIL(KVX_ERR_NO_MEMORY, "cache table: out of memory");
            break;
        }
        for (uint32_t t = 0; t < desc.num_tensors; t++) {
            e->addrs[t] = get64(p + ENTRY_FIXED + 8 * t);
        }
        e->geom.addrs = e->addrs;
        p += kvx_kv_table_entry_size(desc.num_tensors);
    }
    if (status == KVX_OK && p != end) {
        status = KVX_FAIL(KVX_ERR_PROTOCOL, "cache table: %zu bytes after the last entry",
                          (size_t)(end - p));
    }
    if (status == KVX_OK) {
        status = check_unique_ids(entries, count);
    }
    if (status != KVX_OK) {
        kvx_kv_table_free(entries, count);
        return status;
    }
    *cluster_id_p = get64(buf + 16);
    *entries_p = entries;
    *count_p = count;
    return KVX_OK;
}

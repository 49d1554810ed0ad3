/*
 * The cache table an instance publishes in a registered host region, which
 * linked peers READ one-sidedly. Little-endian, guarded by a begin/end
 * sequence pair and a checksum, so a reader that copies it while the owner
 * rewrites it sees the tear and reads again.
 *
 *   0  u64 magic "KVXKVT01"     8  u64 seq_begin     16 u64 cluster_id
 *   24 u32 num_caches, u32 0    32 u64 payload_len   40 u64 checksum (FNV-1a)
 *   48 entries (payload_len bytes), then u64 seq_end
 *   entry: i64 cache_id, u32 dtype, u32 placement, u32 num_tensors,
 *          u32 ndims, i64 dims[8], u64 addrs[num_tensors]
 */
#ifndef KVX_KV_TABLE_H
#define KVX_KV_TABLE_H

#include <kvx/kv.h>

#include "kv/plan.h"

/* Registration tag of the table region ("KVXTABLE"). */
#define KVX_KV_TABLE_TAG 0x454c42415458564bull
#define KVX_KV_TABLE_HDR 48
/* Bytes a reader asks for first; larger tables take a second read. */
#define KVX_KV_TABLE_FIRST_READ 65536

typedef struct kvx_kv_table_entry {
    int64_t cache_id;
    kvx_mem_type_t placement;
    kvx_kv_geom_t geom; /* geom.addrs points into the entry's own array */
    uint64_t *addrs;
} kvx_kv_table_entry_t;

size_t kvx_kv_table_entry_size(uint32_t num_tensors);

/* Rewrite the whole table in place. KVX_ERR_RESOURCE_EXHAUSTED if the
 * entries do not fit @p cap. */
kvx_status_t kvx_kv_table_publish(uint8_t *region, size_t cap, uint64_t cluster_id,
                                  const kvx_kv_table_entry_t *entries, size_t count);

/* Parse a copy read from a peer (untrusted). KVX_INPROGRESS: torn by a
 * concurrent rewrite, read again; with @p need_p > len: read that many
 * bytes. KVX_ERR_PROTOCOL: malformed. On KVX_OK *entries_p is malloc()ed
 * (free with kvx_kv_table_free). */
kvx_status_t kvx_kv_table_parse(const uint8_t *buf, size_t len, uint64_t *cluster_id_p,
                                kvx_kv_table_entry_t **entries_p, size_t *count_p, size_t *need_p);

void kvx_kv_table_free(kvx_kv_table_entry_t *entries, size_t count);

#endif

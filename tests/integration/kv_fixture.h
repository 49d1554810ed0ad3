/*
 * Shared fixture of the KV layer tests (test_kv_behaviour.c,
 * test_kv_validation.c), in kv_fixture.c.
 *
 * Every instance and buffer a test creates is recorded (own_kv, own_mem),
 * so that a failing test (cmocka jumps out of it) leaves nothing behind:
 * teardown calls free_all().
 *
 * A test cache (tc_t) keeps a model of its whole layout: its tensors back to
 * back between two guard zones of GUARD bytes. Registered caches lay their
 * tensors out that way in one buffer, so an unchecked block or batch index
 * writes into a neighbour tensor or a guard and the content check sees it.
 */
#ifndef KVX_TEST_KV_FIXTURE_H
#define KVX_TEST_KV_FIXTURE_H

#include <kvx/kvx.h>
#include <stddef.h>
#include <stdint.h>

#define GUARD     256  /* bytes before and after the tensors of a registered cache */
#define SENT      0xA5 /* content of destinations and guards */
#define MAXT      8
#define P_CLUSTER 1
#define D_CLUSTER 2
#define LINK_MS   5000
#define WAIT_MS   5000

/* Fails the test with the status name and kvx_last_error() unless @p call
 * gives KVX_OK. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        kvx_status_t s_ = (call);                                                                  \
        if (s_ != KVX_OK) {                                                                        \
            char d_[512];                                                                          \
            snprintf(d_, sizeof(d_), "%s", kvx_last_error());                                      \
            fail_msg("%s:%d: %s: %s (%s)", __FILE__, __LINE__, #call, kvx_status_name(s_), d_);    \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ ownership */

/* Record an instance, to be destroyed by free_all(). */
void own_kv(kvx_kv_h kv);
/* Destroy it now and forget it. */
void kv_free(kvx_kv_h kv);
/* Record @p p (non-NULL: asserted) from malloc, or from kvx_device_malloc
 * on device 0 if @p device; returns it. */
void *own_mem(void *p, int device);
/* Free a recorded buffer now (NULL or unknown: nothing). */
void mem_free(void *p);
/* Instances first (newest first), then the memory they used. */
void free_all(void);

/* ------------------------------------------------------------ test caches */

typedef struct tc {
    kvx_kv_h kv;
    int64_t id;
    kvx_kv_cache_desc_t desc;
    int device;       /* placement KVX_MEM_DEVICE */
    int dev_id;       /* its device */
    int allocated;    /* from kvx_kv_cache_allocate */
    size_t nt;        /* tensors */
    size_t tsize;     /* bytes of one tensor */
    size_t entries;   /* dims[0] */
    size_t esize;     /* bytes of one entry */
    uint8_t *buf;     /* registered: GUARD + nt * tsize + GUARD bytes */
    size_t total;     /* layout size, guards included */
    void *t[MAXT];    /* tensor addresses */
    uint8_t *model;   /* expected content of the layout */
    uint8_t *scratch; /* read-back buffer */
} tc_t;

kvx_kv_cache_desc_t desc_of(uint32_t nt, kvx_dtype_t dtype, kvx_mem_type_t placement,
                            uint32_t ndims, const int64_t *dims);

/* Copies to and from the memory of @p c that do not assert (usable from any
 * thread). */
kvx_status_t mem_put(const tc_t *c, void *dst, const void *src, size_t n);
kvx_status_t mem_get(const tc_t *c, void *dst, const void *src, size_t n);

/* Sizes of a cache of @p d on device @p dev_id (if a device placement), its
 * model (all SENT) and scratch buffer; no cache memory yet. */
void tc_geometry(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, int dev_id);
/* Write the model to the cache memory. */
void tc_store(tc_t *c);
/* Model and memory: tensor bytes a pattern of @p seed (0: the sentinel),
 * guards SENT. */
void tc_fill(tc_t *c, uint64_t seed);
/* Memory over a fresh buffer (device 0 or host), not yet registered. */
void tc_memory(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d);
/* tc_memory, tc_fill(@p seed), then register it with @p kv. */
void tc_register(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, uint64_t seed);
/* Allocate it in @p kv, then tc_fill(@p seed). */
void tc_allocate(tc_t *c, kvx_kv_h kv, const kvx_kv_cache_desc_t *d, int dev_id, uint64_t seed);
/* Read the memory into c->scratch (guards of allocated caches from the
 * model). */
kvx_status_t tc_read(tc_t *c);
/* Bytes of c->scratch that differ from the model; the first one described
 * in @p why. */
size_t tc_compare(const tc_t *c, char *why, size_t why_len);
/* tc_read, then tc_compare; SIZE_MAX if the read fails. */
size_t tc_diff_quiet(tc_t *c, char *why, size_t why_len);
/* The model of entry @p entry of tensor @p tensor. */
uint8_t *tc_at(tc_t *c, size_t tensor, size_t entry);
/* Free the memory (the instance is gone or the cache was dropped). */
void tc_release(tc_t *c);

/* ------------------------------------------------------------ transfers */

/* Transfer parameters: inclusive layer ranges @p sf..@p sl of the source
 * and @p df..@p dl of the destination (KVX_KV_XFER_FIELD_LAYERS only). */
kvx_kv_xfer_params_t layers(uint32_t sf, uint32_t sl, uint32_t df, uint32_t dl);

#endif

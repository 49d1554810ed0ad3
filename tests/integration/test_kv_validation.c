/*
 * KV layer validation: every rule of kv.h gets its exact status, no byte of
 * any cache (nor the guard bytes around its tensors) changes, and the
 * instances stay usable: a valid pull, push and copy right after succeed
 * byte-exact.
 *
 * Two instances in this process on 127.0.0.1: a prompt P (cluster 1,
 * listening on port 0) and a decoder D (cluster 2) linked to it. Registered
 * caches lay their tensors back to back in one buffer between two guard
 * zones, so an unchecked block or batch index writes into a neighbour tensor
 * or a guard and the content check sees it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "kv_fixture.h"

#define NO_CLUSTER   77
#define NO_CACHE     9999
#define NOT_A_STATUS ((kvx_status_t)12345)

/* ------------------------------------------------------------ test caches */

/* Bytes of the cache memory that differ from the model (reports the first). */
static size_t tc_diff(tc_t *c, const char *name)
{
    assert_int_equal(tc_read(c), KVX_OK);
    char why[160] = "";
    size_t bad = tc_compare(c, why, sizeof(why));
    if (bad != 0) {
        print_error("%s: %s\n", name, why);
    }
    return bad;
}

/* -------------------------------------------------------------- instances */

static kvx_kv_h kv_new_with(uint64_t cluster, kvx_kv_role_t role, int listen,
                            const kvx_kv_params_t *extra)
{
    kvx_kv_params_t p = {0};
    if (extra != NULL) {
        p = *extra;
    }
    p.field_mask |=
        KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE | KVX_KV_PARAM_FIELD_SYNC_TIMEOUT;
    p.cluster_id = cluster;
    p.role = role;
    p.sync_timeout_ms = 10000;
    if (listen) {
        p.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        p.listen = "127.0.0.1:0";
    } else {
        p.field_mask |= KVX_KV_PARAM_FIELD_LOCAL_IP;
        p.local_ip = "127.0.0.1";
    }
    kvx_kv_h kv = NULL;
    kvx_status_t s = kvx_kv_create(&p, &kv);
    if (s != KVX_OK) {
        fail_msg("kvx_kv_create(cluster %llu): %s (%s)", (unsigned long long)cluster,
                 kvx_status_name(s), kvx_last_error());
    }
    assert_non_null(kv);
    own_kv(kv);
    return kv;
}

static kvx_kv_h kv_new(uint64_t cluster, kvx_kv_role_t role, int listen)
{
    return kv_new_with(cluster, role, listen, NULL);
}

static kvx_status_t link_one(kvx_kv_h kv, uint64_t cluster, const char *remote,
                             kvx_status_t *status_p)
{
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster, .remote = remote};
    kvx_status_t st = NOT_A_STATUS;
    kvx_status_t s = kvx_kv_link(kv, &c, 1, LINK_MS, &st);
    if (status_p != NULL) {
        *status_p = st;
    }
    return s;
}

static kvx_status_t unlink_one(kvx_kv_h kv, uint64_t cluster, int force, kvx_status_t *status_p)
{
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster, .remote = NULL};
    kvx_status_t st = NOT_A_STATUS;
    kvx_status_t s = kvx_kv_unlink(kv, &c, 1, LINK_MS, force, &st);
    if (status_p != NULL) {
        *status_p = st;
    }
    return s;
}

/* Wait until the instance has @p out outgoing and @p in incoming links. */
static int wait_links(kvx_kv_h kv, size_t out, size_t in)
{
    uint64_t deadline = test_now_ms() + WAIT_MS;
    size_t o = 0, i = 0;
    do {
        assert_int_equal(kvx_kv_link_count(kv, &o, &i), KVX_OK);
        if (o == out && i == in) {
            return 1;
        }
        usleep(2000);
    } while (test_now_ms() < deadline);
    print_error("links: %zu outgoing, %zu incoming; want %zu, %zu\n", o, i, out, in);
    return 0;
}

/* ---------------------------------------------------------------- fixture */

typedef struct fx {
    kvx_kv_h p, d;
    char p_name[KVX_ENGINE_NAME_MAX];
    tc_t psrc;   /* P, host, pattern 1 */
    tc_t pdst;   /* P, device, sentinel: destination of pushes */
    tc_t dsrc;   /* D, device, pattern 2 */
    tc_t ddst;   /* D, host, sentinel: destination of pulls and copies */
    tc_t dbf16;  /* D, bf16 [8,4,16] */
    tc_t dshape; /* D, fp16 [8,8,8]: same entry bytes, other shape */
    tc_t dndims; /* D, fp16 [8,64]: same entry bytes, other rank */
    tc_t drank;  /* D, fp16 [8,4,16,1]: the same dims plus a trailing 1 */
    tc_t dsix;   /* D, 6 tensors */
    tc_t dthree; /* D, 3 tensors */
} fx_t;

static const int64_t DIMS[3] = {8, 4, 16}; /* fp16: entry 128 B, tensor 1 KiB */
#define ENTRIES 8

static tc_t *fx_caches(fx_t *f, size_t i, const char **name)
{
    static const char *names[] = {"psrc",   "pdst",   "dsrc",  "ddst", "dbf16",
                                  "dshape", "dndims", "drank", "dsix", "dthree"};
    tc_t *all[] = {&f->psrc,   &f->pdst,   &f->dsrc,  &f->ddst, &f->dbf16,
                   &f->dshape, &f->dndims, &f->drank, &f->dsix, &f->dthree};
    if (i >= sizeof(all) / sizeof(all[0])) {
        return NULL;
    }
    *name = names[i];
    return all[i];
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->p = kv_new(P_CLUSTER, KVX_KV_ROLE_PROMPT, 1);
    f->d = kv_new(D_CLUSTER, KVX_KV_ROLE_DECODER, 0);
    snprintf(f->p_name, sizeof(f->p_name), "%s", kvx_kv_listen_name(f->p));
    assert_non_null(strchr(f->p_name, ':'));

    kvx_kv_cache_desc_t host = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    kvx_kv_cache_desc_t dev = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, DIMS);
    tc_register(&f->psrc, f->p, &host, 1);
    tc_register(&f->pdst, f->p, &dev, 0);
    tc_register(&f->dsrc, f->d, &dev, 2);
    tc_register(&f->ddst, f->d, &host, 0);

    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_BF16, KVX_MEM_HOST, 3, DIMS);
    tc_register(&f->dbf16, f->d, &d, 0);
    d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){8, 8, 8});
    tc_register(&f->dshape, f->d, &d, 0);
    d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 2, (const int64_t[]){8, 64});
    tc_register(&f->dndims, f->d, &d, 0);
    d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 4, (const int64_t[]){8, 4, 16, 1});
    tc_register(&f->drank, f->d, &d, 0);
    d = desc_of(6, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    tc_register(&f->dsix, f->d, &d, 0);
    d = desc_of(3, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    tc_register(&f->dthree, f->d, &d, 0);

    kvx_status_t st;
    assert_int_equal(link_one(f->d, P_CLUSTER, f->p_name, &st), KVX_OK);
    assert_int_equal(st, KVX_OK);
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(f->p, 0, 1));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free_all(); /* the fixture's and whatever a failed test left */
    free(*state);
    return 0;
}

/* Every cache of the fixture holds what the model says, guards included. */
static void fx_untouched(fx_t *f, int line)
{
    const char *name;
    tc_t *c;
    size_t bad = 0;
    for (size_t i = 0; (c = fx_caches(f, i, &name)) != NULL; i++) {
        bad += tc_diff(c, name);
    }
    if (bad != 0) {
        fail_msg("line %d: %zu bytes changed by a refused call", line, bad);
    }
}

/* A valid pull, push and copy succeed byte-exact; then the destinations are
 * reset to the sentinel. */
static void fx_usable(fx_t *f, int line)
{
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id, .batch_index = 5};
    OK(kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 2, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&f->ddst, t, 2), tc_at(&f->psrc, t, 5), f->ddst.esize);
    }
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    const uint64_t sb[3] = {1, 2, 7}, db[3] = {6, 7, 0};
    OK(kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, sb, 3, db, 3, NULL));
    for (size_t t = 0; t < 4; t++) {
        for (size_t k = 0; k < 3; k++) {
            memcpy(tc_at(&f->pdst, t, db[k]), tc_at(&f->dsrc, t, sb[k]), f->pdst.esize);
        }
    }
    const uint64_t csb[1] = {3}, cdb[1] = {4};
    const uint64_t *lists[1] = {cdb};
    const size_t counts[1] = {1};
    OK(kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, csb, 1, lists, counts, 1, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&f->ddst, t, 4), tc_at(&f->dsrc, t, 3), f->ddst.esize);
    }
    fx_untouched(f, line);
    tc_fill(&f->ddst, 0);
    tc_fill(&f->pdst, 0);
}

static void expect_at(fx_t *f, kvx_status_t got, kvx_status_t want, const char *what, int line)
{
    if (got != want) {
        char detail[512];
        snprintf(detail, sizeof(detail), "%s", kvx_last_error());
        fail_msg("line %d: %s: got %s (%s), want %s", line, what, kvx_status_name(got), detail,
                 kvx_status_name(want));
    }
    fx_untouched(f, line);
    fx_usable(f, line);
}

#define EXPECT(f, call, want) expect_at((f), (call), (want), #call, __LINE__)

/* Pulls, pushes and copies with one local cache replaced by @p other: it is
 * the destination of the pulls, the source of the pushes, and each side of
 * the copies in turn. */
static void local_ops(fx_t *f, int64_t other, const kvx_kv_xfer_params_t *xp, kvx_status_t want,
                      int line)
{
    /* Entry 1 on the remote side of the contiguous calls; block calls take
     * batch_index 0. */
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id, .batch_index = 1};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id, .batch_index = 1};
    kvx_kv_remote_cache_t rsb = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rdb = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    const uint64_t sb[2] = {0, 1}, db[2] = {2, 3};
    const uint64_t *lists[1] = {db};
    const size_t counts[1] = {2};
    expect_at(f, kvx_kv_pull_cache(f->d, &rs, other, 0, xp), want, "pull_cache", line);
    expect_at(f, kvx_kv_pull_blocks(f->d, &rsb, other, sb, 2, db, 2, xp), want, "pull_blocks",
              line);
    expect_at(f, kvx_kv_push_cache(f->d, other, 0, &rd, xp), want, "push_cache", line);
    expect_at(f, kvx_kv_push_blocks(f->d, other, &rdb, sb, 2, db, 2, xp), want, "push_blocks",
              line);
    expect_at(f, kvx_kv_copy_cache(f->d, f->dsrc.id, 0, other, 1, xp), want, "copy_cache to", line);
    expect_at(f, kvx_kv_copy_cache(f->d, other, 0, f->ddst.id, 1, xp), want, "copy_cache from",
              line);
    expect_at(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, other, sb, 2, lists, counts, 1, xp), want,
              "copy_blocks to", line);
    expect_at(f, kvx_kv_copy_blocks(f->d, other, f->ddst.id, sb, 2, lists, counts, 1, xp), want,
              "copy_blocks from", line);
}

/* The six calls between the fixture's matching caches, with @p xp. */
static void six_ops(fx_t *f, const kvx_kv_xfer_params_t *xp, kvx_status_t want, int line)
{
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    const uint64_t sb[2] = {0, 1}, db[2] = {2, 3};
    const uint64_t *lists[1] = {db};
    const size_t counts[1] = {2};
    expect_at(f, kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 0, xp), want, "pull_cache", line);
    expect_at(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, sb, 2, db, 2, xp), want, "pull_blocks",
              line);
    expect_at(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, &rd, xp), want, "push_cache", line);
    expect_at(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, sb, 2, db, 2, xp), want, "push_blocks",
              line);
    expect_at(f, kvx_kv_copy_cache(f->d, f->dsrc.id, 0, f->ddst.id, 0, xp), want, "copy_cache",
              line);
    expect_at(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, sb, 2, lists, counts, 1, xp),
              want, "copy_blocks", line);
}

/* ------------------------------------------------------------------ tests */

/* The fixture itself: what every other test relies on. */
static void test_fixture_sane(void **state)
{
    fx_t *f = *state;
    fx_untouched(f, __LINE__);
    fx_usable(f, __LINE__);
    assert_int_equal(kvx_kv_cluster_id(f->p), P_CLUSTER);
    assert_int_equal(kvx_kv_cluster_id(f->d), D_CLUSTER);
    assert_int_equal(kvx_kv_role(f->p), KVX_KV_ROLE_PROMPT);
    assert_int_equal(kvx_kv_role(f->d), KVX_KV_ROLE_DECODER);
}

/* Unknown local cache id: every call that names a local cache. */
static void test_local_cache_not_found(void **state)
{
    fx_t *f = *state;
    local_ops(f, NO_CACHE, NULL, KVX_ERR_CACHE_NOT_FOUND, __LINE__);
    local_ops(f, 0, NULL, KVX_ERR_CACHE_NOT_FOUND, __LINE__);
    local_ops(f, -1, NULL, KVX_ERR_CACHE_NOT_FOUND, __LINE__);
    void *addrs[MAXT];
    EXPECT(f, kvx_kv_cache_tensors(f->d, NO_CACHE, addrs, MAXT), KVX_ERR_CACHE_NOT_FOUND);
    EXPECT(f, kvx_kv_cache_unregister(f->d, NO_CACHE), KVX_ERR_CACHE_NOT_FOUND);
    EXPECT(f, kvx_kv_cache_deallocate(f->d, NO_CACHE), KVX_ERR_CACHE_NOT_FOUND);
}

/* Unknown remote cache id: pulls (source) and pushes (destination). The
 * decoder's own ids 5..9 exist locally but not on the prompt. */
static void test_remote_cache_not_found(void **state)
{
    fx_t *f = *state;
    const int64_t ids[] = {NO_CACHE, 0, -1, f->dthree.id};
    const uint64_t sb[2] = {0, 1}, db[2] = {2, 3};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = ids[i]};
        EXPECT(f, kvx_kv_pull_cache(f->d, &r, f->ddst.id, 0, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
        EXPECT(f, kvx_kv_pull_blocks(f->d, &r, f->ddst.id, sb, 2, db, 2, NULL),
               KVX_ERR_REMOTE_CACHE_NOT_FOUND);
        EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, &r, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
        EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &r, sb, 2, db, 2, NULL),
               KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    }
}

static void test_dtype_mismatch(void **state)
{
    fx_t *f = *state;
    local_ops(f, f->dbf16.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
}

/* Same bytes per entry, other shape; and other rank. Only dims[0] may differ. */
static void test_entry_shape_mismatch(void **state)
{
    fx_t *f = *state;
    local_ops(f, f->dshape.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
    local_ops(f, f->dndims.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
    local_ops(f, f->drank.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
}

/* 4 against 6 and 3 tensors without layer ranges. */
static void test_tensor_count_mismatch(void **state)
{
    fx_t *f = *state;
    local_ops(f, f->dsix.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
    local_ops(f, f->dthree.id, NULL, KVX_ERR_CACHE_MISMATCH, __LINE__);
    /* The size or timeout bits alone are no layer range. */
    kvx_kv_xfer_params_t xp = {.field_mask = KVX_KV_XFER_FIELD_TIMEOUT, .timeout_ms = 5000};
    local_ops(f, f->dsix.id, &xp, KVX_ERR_CACHE_MISMATCH, __LINE__);
}

/* Block indices outside the cache, local and remote side, after valid ones
 * in the same list (a call that moved blocks one by one would already have
 * written them). 2^57 blocks of 128 bytes wrap to offset 0. */
static void test_block_out_of_range(void **state)
{
    fx_t *f = *state;
    const uint64_t bad_values[] = {ENTRIES, ENTRIES + 1, UINT64_MAX, 1ull << 57};
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        const uint64_t good[3] = {0, 1, 2};
        const uint64_t bad[3] = {3, 4, bad_values[i]};
        const uint64_t *lists_bad[2] = {good, bad};
        const uint64_t *lists_good[1] = {good};
        const size_t counts[2] = {3, 3};
        /* pull: remote source, local destination */
        EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, bad, 3, good, 3, NULL),
               KVX_ERR_BLOCK_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, good, 3, bad, 3, NULL),
               KVX_ERR_BLOCK_OUT_OF_RANGE);
        /* push: local source, remote destination */
        EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, bad, 3, good, 3, NULL),
               KVX_ERR_BLOCK_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, good, 3, bad, 3, NULL),
               KVX_ERR_BLOCK_OUT_OF_RANGE);
        /* copy: source, and the second of two destination lists */
        EXPECT(
            f,
            kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, bad, 3, lists_good, counts, 1, NULL),
            KVX_ERR_BLOCK_OUT_OF_RANGE);
        EXPECT(
            f,
            kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, good, 3, lists_bad, counts, 2, NULL),
            KVX_ERR_BLOCK_OUT_OF_RANGE);
    }
    /* Entry counts may differ: block 7 is valid in an 8-block source, not in
     * a 4-block destination. */
    tc_t small;
    kvx_kv_cache_desc_t d =
        desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){4, 4, 16});
    tc_register(&small, f->d, &d, 0);
    const uint64_t s7[1] = {7}, d3[1] = {3}, d4[1] = {4};
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, small.id, s7, 1, d4, 1, NULL),
           KVX_ERR_BLOCK_OUT_OF_RANGE);
    assert_int_equal(tc_diff(&small, "small"), 0);
    OK(kvx_kv_pull_blocks(f->d, &rs, small.id, s7, 1, d3, 1, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&small, t, 3), tc_at(&f->psrc, t, 7), small.esize);
    }
    assert_int_equal(tc_diff(&small, "small"), 0);
    OK(kvx_kv_cache_unregister(f->d, small.id));
    tc_release(&small);
}

static void test_block_list_mismatch(void **state)
{
    fx_t *f = *state;
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    const uint64_t a[3] = {0, 1, 2}, b[3] = {5, 6, 7};
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 3, b, 2, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 2, b, 3, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 3, b, 1, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 1, b, 3, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    const uint64_t *lists[2] = {b, b};
    const size_t first_short[2] = {2, 3}, second_short[2] = {3, 2}, second_long[2] = {2, 3};
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 3, lists, first_short, 2, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 3, lists, second_short, 2, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 2, lists, second_long, 2, NULL),
           KVX_ERR_BLOCK_LIST_MISMATCH);
}

/* Empty or missing block lists. */
static void test_empty_lists(void **state)
{
    fx_t *f = *state;
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    const uint64_t a[2] = {0, 1};
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 0, a, 0, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, NULL, 0, NULL, 0, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, NULL, 2, a, 2, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 2, NULL, 2, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 0, a, 0, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, NULL, 2, a, 2, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 2, NULL, 2, NULL),
           KVX_ERR_INVALID_PARAM);
    const uint64_t *lists[1] = {a};
    const uint64_t *null_list[1] = {NULL};
    const size_t zero[1] = {0}, two[1] = {2};
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 0, lists, zero, 1, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, NULL, 2, lists, two, 1, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 2, null_list, two, 1, NULL),
           KVX_ERR_INVALID_PARAM);
    /* No destination list at all. */
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 2, lists, two, 0, NULL),
           KVX_ERR_INVALID_PARAM);
}

static void test_batch_out_of_range(void **state)
{
    fx_t *f = *state;
    const uint32_t bad_values[] = {ENTRIES, ENTRIES + 1, UINT32_MAX};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        uint32_t bad = bad_values[i];
        kvx_kv_remote_cache_t rs = {
            .cluster_id = P_CLUSTER, .cache_id = f->psrc.id, .batch_index = bad};
        kvx_kv_remote_cache_t rs0 = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
        kvx_kv_remote_cache_t rd = {
            .cluster_id = P_CLUSTER, .cache_id = f->pdst.id, .batch_index = bad};
        kvx_kv_remote_cache_t rd0 = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
        EXPECT(f, kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 0, NULL), KVX_ERR_BATCH_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_pull_cache(f->d, &rs0, f->ddst.id, bad, NULL), KVX_ERR_BATCH_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, bad, &rd0, NULL), KVX_ERR_BATCH_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, &rd, NULL), KVX_ERR_BATCH_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_copy_cache(f->d, f->dsrc.id, bad, f->ddst.id, 0, NULL),
               KVX_ERR_BATCH_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_copy_cache(f->d, f->dsrc.id, 0, f->ddst.id, bad, NULL),
               KVX_ERR_BATCH_OUT_OF_RANGE);
    }
}

/* 4 tensors, 2 per layer: layers 0 and 1. */
static void test_layer_range_out_of_range(void **state)
{
    fx_t *f = *state;
    kvx_kv_xfer_params_t xp = layers(1, 2, 0, 1); /* source */
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(0, 1, 1, 2); /* destination */
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(2, 2, 0, 0);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(0, 0, UINT32_MAX, UINT32_MAX);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    /* 3 layers of 1 tensor would fit 4 tensors; 2 layers of 2 do not reach 2. */
    xp = layers(0, 0, 2, 2);
    xp.field_mask |= KVX_KV_XFER_FIELD_TENSORS_PER_LAYER;
    xp.tensors_per_layer = 2;
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
}

static void test_layer_range_reversed(void **state)
{
    fx_t *f = *state;
    kvx_kv_xfer_params_t xp = layers(1, 0, 1, 0);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(1, 0, 0, 1);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(0, 1, 1, 0);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
}

static void test_layer_range_unequal(void **state)
{
    fx_t *f = *state;
    kvx_kv_xfer_params_t xp = layers(0, 1, 0, 0);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    xp = layers(1, 1, 0, 1);
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
}

/* num_tensors not a multiple of tensors_per_layer, on either side. */
static void test_layer_range_not_multiple(void **state)
{
    fx_t *f = *state;
    kvx_kv_xfer_params_t xp = layers(0, 0, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_TENSORS_PER_LAYER;
    xp.tensors_per_layer = 3;
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
    /* The 3-tensor cache with the default 2 per layer, as destination of the
     * pulls, source of the pushes, both sides of the copies. */
    xp = layers(0, 0, 0, 0);
    local_ops(f, f->dthree.id, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
}

static void test_tensors_per_layer_zero(void **state)
{
    fx_t *f = *state;
    kvx_kv_xfer_params_t xp = layers(0, 0, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_TENSORS_PER_LAYER;
    xp.tensors_per_layer = 0;
    six_ops(f, &xp, KVX_ERR_LAYER_RANGE, __LINE__);
}

/* size larger than an entry (128 bytes) or 0, contiguous calls. */
static void test_size_out_of_range(void **state)
{
    fx_t *f = *state;
    const uint64_t sizes[] = {129, 4096, UINT64_MAX, 0};
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        kvx_kv_xfer_params_t xp = {.field_mask = KVX_KV_XFER_FIELD_SIZE, .size = sizes[i]};
        EXPECT(f, kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 0, &xp), KVX_ERR_SIZE_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, &rd, &xp), KVX_ERR_SIZE_OUT_OF_RANGE);
        EXPECT(f, kvx_kv_copy_cache(f->d, f->dsrc.id, 0, f->ddst.id, 0, &xp),
               KVX_ERR_SIZE_OUT_OF_RANGE);
    }
    /* The entry size itself is allowed; only the last entry, so a size
     * larger than allowed would run past the tensor into the guard. */
    kvx_kv_xfer_params_t xp = {.field_mask = KVX_KV_XFER_FIELD_SIZE, .size = 128};
    rs.batch_index = 7;
    OK(kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 7, &xp));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&f->ddst, t, 7), tc_at(&f->psrc, t, 7), 128);
    }
    fx_untouched(f, __LINE__);
}

/* Pulls, pushes and notifications to clusters this instance has no link to. */
static void test_not_linked(void **state)
{
    fx_t *f = *state;
    const uint64_t a[2] = {0, 1};
    kvx_kv_remote_cache_t rs = {.cluster_id = NO_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = NO_CLUSTER, .cache_id = f->pdst.id};
    EXPECT(f, kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 0, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 2, a, 2, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, &rd, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 2, a, 2, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_notify(f->d, NO_CLUSTER, "n", "m", 1), KVX_ERR_NOT_LINKED);

    /* An incoming link is no outgoing one: P cannot pull from or push to D. */
    kvx_kv_remote_cache_t ds = {.cluster_id = D_CLUSTER, .cache_id = f->dsrc.id};
    kvx_kv_remote_cache_t dd = {.cluster_id = D_CLUSTER, .cache_id = f->ddst.id};
    EXPECT(f, kvx_kv_pull_cache(f->p, &ds, f->pdst.id, 0, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_pull_blocks(f->p, &ds, f->pdst.id, a, 2, a, 2, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_push_cache(f->p, f->psrc.id, 0, &dd, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_push_blocks(f->p, f->psrc.id, &dd, a, 2, a, 2, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_notify(f->p, D_CLUSTER, "n", "m", 1), KVX_ERR_NOT_LINKED);

    /* After unlink: every call fails cleanly until the link is made again. */
    kvx_status_t st;
    assert_int_equal(unlink_one(f->d, P_CLUSTER, 0, &st), KVX_OK);
    assert_int_equal(st, KVX_OK);
    assert_true(wait_links(f->d, 0, 0));
    rs.cluster_id = rd.cluster_id = P_CLUSTER;
    const kvx_status_t got[5] = {
        kvx_kv_pull_cache(f->d, &rs, f->ddst.id, 0, NULL),
        kvx_kv_pull_blocks(f->d, &rs, f->ddst.id, a, 2, a, 2, NULL),
        kvx_kv_push_cache(f->d, f->dsrc.id, 0, &rd, NULL),
        kvx_kv_push_blocks(f->d, f->dsrc.id, &rd, a, 2, a, 2, NULL),
        kvx_kv_notify(f->d, P_CLUSTER, "n", "m", 1),
    };
    for (size_t i = 0; i < 5; i++) {
        if (got[i] != KVX_ERR_NOT_LINKED) {
            fail_msg("call %zu after unlink: %s", i, kvx_status_name(got[i]));
        }
    }
    fx_untouched(f, __LINE__);
    assert_int_equal(link_one(f->d, P_CLUSTER, f->p_name, &st), KVX_OK);
    fx_usable(f, __LINE__);
}

static void test_already_linked(void **state)
{
    fx_t *f = *state;
    kvx_status_t st = NOT_A_STATUS;
    assert_int_equal(link_one(f->d, P_CLUSTER, f->p_name, &st), KVX_ERR_ALREADY_LINKED);
    assert_int_equal(st, KVX_ERR_ALREADY_LINKED);
    assert_true(wait_links(f->d, 1, 0));
    fx_usable(f, __LINE__);

    /* Per-cluster statuses: a new cluster links, the known one is refused,
     * and the call returns the first failing status. */
    kvx_kv_h p2 = kv_new(3, KVX_KV_ROLE_PROMPT, 1);
    kvx_kv_cluster_t cl[2] = {{.remote_cluster_id = 3, .remote = kvx_kv_listen_name(p2)},
                              {.remote_cluster_id = P_CLUSTER, .remote = f->p_name}};
    kvx_status_t sts[2] = {NOT_A_STATUS, NOT_A_STATUS};
    assert_int_equal(kvx_kv_link(f->d, cl, 2, LINK_MS, sts), KVX_ERR_ALREADY_LINKED);
    assert_int_equal(sts[0], KVX_OK);
    assert_int_equal(sts[1], KVX_ERR_ALREADY_LINKED);
    assert_true(wait_links(f->d, 2, 0));
    /* The same cluster twice in one call. */
    kvx_kv_h p3 = kv_new(4, KVX_KV_ROLE_PROMPT, 1);
    kvx_kv_cluster_t twice[2] = {{.remote_cluster_id = 4, .remote = kvx_kv_listen_name(p3)},
                                 {.remote_cluster_id = 4, .remote = kvx_kv_listen_name(p3)}};
    sts[0] = sts[1] = NOT_A_STATUS;
    assert_int_equal(kvx_kv_link(f->d, twice, 2, LINK_MS, sts), KVX_ERR_ALREADY_LINKED);
    assert_int_equal(sts[0], KVX_OK);
    assert_int_equal(sts[1], KVX_ERR_ALREADY_LINKED);
    assert_true(wait_links(f->d, 3, 0));
    assert_true(wait_links(p3, 0, 1));
    fx_usable(f, __LINE__);
    kv_free(p3);
    kv_free(p2);
}

static void test_too_many_clusters(void **state)
{
    fx_t *f = *state;
    kvx_kv_h p2 = kv_new(3, KVX_KV_ROLE_PROMPT, 1);
    enum { N = KVX_KV_MAX_CLUSTERS_PER_CALL + 1 };
    kvx_kv_cluster_t cl[N];
    kvx_status_t sts[N];
    for (size_t i = 0; i < N; i++) {
        cl[i].remote_cluster_id = 100 + i;
        cl[i].remote = "127.0.0.1:1";
    }
    /* The first entry would link fine: nothing may happen to it. */
    cl[0].remote_cluster_id = 3;
    cl[0].remote = kvx_kv_listen_name(p2);
    assert_int_equal(kvx_kv_link(f->d, cl, N, LINK_MS, sts), KVX_ERR_TOO_MANY_CLUSTERS);
    usleep(50000);
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(p2, 0, 0));
    kvx_kv_remote_cache_t r = {.cluster_id = 3, .cache_id = 1};
    EXPECT(f, kvx_kv_pull_cache(f->d, &r, f->ddst.id, 0, NULL), KVX_ERR_NOT_LINKED);

    /* Unlink: the first entry is the linked prompt; it must stay linked. */
    cl[0].remote_cluster_id = P_CLUSTER;
    assert_int_equal(kvx_kv_unlink(f->d, cl, N, LINK_MS, 0, sts), KVX_ERR_TOO_MANY_CLUSTERS);
    assert_int_equal(kvx_kv_unlink(f->d, cl, N, LINK_MS, 1, sts), KVX_ERR_TOO_MANY_CLUSTERS);
    assert_true(wait_links(f->d, 1, 0));
    fx_usable(f, __LINE__);
    kv_free(p2);
}

/* Linking to a listener with another cluster id links nothing. */
static void test_cluster_mismatch(void **state)
{
    fx_t *f = *state;
    kvx_kv_h d2 = kv_new(5, KVX_KV_ROLE_DECODER, 0);
    kvx_status_t st = NOT_A_STATUS;
    assert_int_equal(link_one(d2, 999, f->p_name, &st), KVX_ERR_CLUSTER_MISMATCH);
    assert_int_equal(st, KVX_ERR_CLUSTER_MISMATCH);
    assert_true(wait_links(d2, 0, 0));
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(f->p, 0, 1));
    tc_t c;
    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    tc_register(&c, d2, &d, 0);
    kvx_kv_remote_cache_t bad = {.cluster_id = 999, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t good = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    assert_int_equal(kvx_kv_pull_cache(d2, &bad, c.id, 0, NULL), KVX_ERR_NOT_LINKED);
    assert_int_equal(kvx_kv_pull_cache(d2, &good, c.id, 0, NULL), KVX_ERR_NOT_LINKED);
    EXPECT(f, kvx_kv_pull_cache(f->d, &bad, f->ddst.id, 0, NULL), KVX_ERR_NOT_LINKED);
    assert_int_equal(tc_diff(&c, "d2 cache"), 0);
    /* The right id links. */
    assert_int_equal(link_one(d2, P_CLUSTER, f->p_name, &st), KVX_OK);
    assert_int_equal(st, KVX_OK);
    good.batch_index = 3;
    OK(kvx_kv_pull_cache(d2, &good, c.id, 6, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&c, t, 6), tc_at(&f->psrc, t, 3), c.esize);
    }
    assert_int_equal(tc_diff(&c, "d2 cache"), 0);
    assert_true(wait_links(f->p, 0, 2));
    kv_free(d2);
    tc_release(&c);
    fx_usable(f, __LINE__);
}

/* A mismatching link attempt from an instance already linked to that
 * listener under the right id leaves the existing link working. */
static void test_cluster_mismatch_keeps_link(void **state)
{
    fx_t *f = *state;
    kvx_status_t st = NOT_A_STATUS;
    assert_int_equal(link_one(f->d, 999, f->p_name, &st), KVX_ERR_CLUSTER_MISMATCH);
    assert_int_equal(st, KVX_ERR_CLUSTER_MISMATCH);
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(f->p, 0, 1));
    kvx_kv_remote_cache_t bad = {.cluster_id = 999, .cache_id = f->psrc.id};
    EXPECT(f, kvx_kv_pull_cache(f->d, &bad, f->ddst.id, 0, NULL), KVX_ERR_NOT_LINKED);
}

/* set_role is refused while a link exists, outgoing (D) or incoming (P);
 * nothing changes. */
static void test_set_role_link_exists(void **state)
{
    fx_t *f = *state;
    char d_name[KVX_ENGINE_NAME_MAX];
    snprintf(d_name, sizeof(d_name), "%s", kvx_kv_listen_name(f->d));
    EXPECT(f, kvx_kv_set_role(f->d, KVX_KV_ROLE_PROMPT, "127.0.0.1:0"), KVX_ERR_LINK_EXISTS);
    EXPECT(f, kvx_kv_set_role(f->d, KVX_KV_ROLE_DECODER, NULL), KVX_ERR_LINK_EXISTS);
    assert_int_equal(kvx_kv_role(f->d), KVX_KV_ROLE_DECODER);
    assert_string_equal(kvx_kv_listen_name(f->d), d_name);
    EXPECT(f, kvx_kv_set_role(f->p, KVX_KV_ROLE_DECODER, NULL), KVX_ERR_LINK_EXISTS);
    EXPECT(f, kvx_kv_set_role(f->p, KVX_KV_ROLE_PROMPT, "127.0.0.1:0"), KVX_ERR_LINK_EXISTS);
    assert_int_equal(kvx_kv_role(f->p), KVX_KV_ROLE_PROMPT);
    assert_string_equal(kvx_kv_listen_name(f->p), f->p_name);
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(f->p, 0, 1));
    /* A second decoder linking still finds P where it was. */
    kvx_kv_h d2 = kv_new(5, KVX_KV_ROLE_DECODER, 0);
    assert_int_equal(link_one(d2, P_CLUSTER, f->p_name, NULL), KVX_OK);
    kv_free(d2);
    /* Once the links are gone, the same calls succeed. */
    assert_int_equal(unlink_one(f->d, P_CLUSTER, 0, NULL), KVX_OK);
    assert_true(wait_links(f->p, 0, 0));
    OK(kvx_kv_set_role(f->p, KVX_KV_ROLE_MIX, "127.0.0.1:0"));
    assert_int_equal(kvx_kv_role(f->p), KVX_KV_ROLE_MIX);
    snprintf(f->p_name, sizeof(f->p_name), "%s", kvx_kv_listen_name(f->p));
    assert_int_equal(link_one(f->d, P_CLUSTER, f->p_name, NULL), KVX_OK);
    fx_usable(f, __LINE__);
}

/* switch_role_enable = 0: set_role is unsupported even without links. */
static void test_set_role_disabled(void **state)
{
    fx_t *f = *state;
    kvx_kv_params_t extra = {.field_mask = KVX_KV_PARAM_FIELD_SWITCH_ROLE, .switch_role_enable = 0};
    kvx_kv_h p2 = kv_new_with(3, KVX_KV_ROLE_PROMPT, 1, &extra);
    char name[KVX_ENGINE_NAME_MAX];
    snprintf(name, sizeof(name), "%s", kvx_kv_listen_name(p2));
    assert_int_equal(kvx_kv_set_role(p2, KVX_KV_ROLE_DECODER, NULL), KVX_ERR_UNSUPPORTED);
    assert_int_equal(kvx_kv_set_role(p2, KVX_KV_ROLE_PROMPT, "127.0.0.1:0"), KVX_ERR_UNSUPPORTED);
    assert_int_equal(kvx_kv_role(p2), KVX_KV_ROLE_PROMPT);
    assert_string_equal(kvx_kv_listen_name(p2), name);
    /* Still serves. */
    tc_t c;
    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    tc_register(&c, p2, &d, 9);
    assert_int_equal(link_one(f->d, 3, name, NULL), KVX_OK);
    kvx_kv_remote_cache_t r = {.cluster_id = 3, .cache_id = c.id, .batch_index = 4};
    OK(kvx_kv_pull_cache(f->d, &r, f->ddst.id, 1, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&f->ddst, t, 1), tc_at(&c, t, 4), f->ddst.esize);
    }
    fx_untouched(f, __LINE__);
    tc_fill(&f->ddst, 0);
    /* With the default (enabled) an unlinked instance switches. */
    kvx_kv_h m = kv_new(6, KVX_KV_ROLE_MIX, 0);
    OK(kvx_kv_set_role(m, KVX_KV_ROLE_PROMPT, "127.0.0.1:0"));
    assert_int_equal(kvx_kv_role(m), KVX_KV_ROLE_PROMPT);
    assert_non_null(strchr(kvx_kv_listen_name(m), ':'));
    kv_free(m);
    assert_int_equal(unlink_one(f->d, 3, 0, NULL), KVX_OK);
    kv_free(p2);
    tc_release(&c);
    fx_usable(f, __LINE__);
}

/* Unknown bits of kvx_kv_params_t, kvx_kv_cache_desc_t, kvx_kv_xfer_params_t. */
static void test_unknown_field_bits(void **state)
{
    fx_t *f = *state;
    const uint64_t bits[] = {KVX_BIT(13), KVX_BIT(31), KVX_BIT(63)};
    for (size_t i = 0; i < 3; i++) {
        kvx_kv_params_t p = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID | bits[i],
                             .cluster_id = 9};
        kvx_kv_h kv = (kvx_kv_h)(uintptr_t)0x1;
        assert_int_equal(kvx_kv_create(&p, &kv), KVX_ERR_UNSUPPORTED);
    }
    size_t used0 = 0, used1 = 0;
    assert_int_equal(kvx_device_used(0, &used0), KVX_OK);
    const uint64_t dbits[] = {KVX_BIT(4), KVX_BIT(63)};
    for (size_t i = 0; i < 2; i++) {
        kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, DIMS);
        d.field_mask |= dbits[i];
        int64_t id = -42;
        void *addrs[4] = {0};
        EXPECT(f, kvx_kv_cache_allocate(f->d, &d, &id, addrs), KVX_ERR_UNSUPPORTED);
        EXPECT(f, kvx_kv_cache_register(f->d, &d, f->ddst.t, &id), KVX_ERR_UNSUPPORTED);
        assert_int_equal(id, -42);
    }
    assert_int_equal(kvx_device_used(0, &used1), KVX_OK);
    assert_int_equal(used0, used1);
    const uint64_t xbits[] = {KVX_BIT(5), KVX_BIT(40)};
    for (size_t i = 0; i < 2; i++) {
        kvx_kv_xfer_params_t xp = {.field_mask = xbits[i]};
        six_ops(f, &xp, KVX_ERR_UNSUPPORTED, __LINE__);
    }
}

/* Malformed cache descriptions, for register and allocate. */
static void test_bad_desc(void **state)
{
    fx_t *f = *state;
    kvx_kv_cache_desc_t good = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    enum { NBAD = 14 };
    kvx_kv_cache_desc_t bad[NBAD];
    for (size_t i = 0; i < NBAD; i++) {
        bad[i] = good;
    }
    bad[0].num_tensors = 0;
    bad[1].num_tensors = KVX_KV_MAX_TENSORS + 1;
    bad[2].dtype = (kvx_dtype_t)0;
    bad[3].dtype = (kvx_dtype_t)16;
    bad[4].dtype = (kvx_dtype_t)-3;
    bad[5].ndims = 0;
    bad[6].ndims = KVX_KV_MAX_DIMS + 1;
    bad[7].dims[0] = -8;
    bad[8].dims[2] = -1;
    bad[9].dims[1] = 0;
    bad[10].dims[0] = 0;
    bad[11].field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_DTYPE;
    bad[12].field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_NUM_TENSORS;
    bad[13].field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_SHAPE;
    /* Room for as many tensor addresses as any of them claims. */
    static void *many[KVX_KV_MAX_TENSORS + 1];
    for (size_t i = 0; i < KVX_KV_MAX_TENSORS + 1; i++) {
        many[i] = f->ddst.t[i % 4];
    }
    size_t used0 = 0, used1 = 0;
    assert_int_equal(kvx_device_used(0, &used0), KVX_OK);
    for (size_t i = 0; i < NBAD; i++) {
        int64_t id = -42;
        static void *addrs[KVX_KV_MAX_TENSORS + 1];
        kvx_status_t s = kvx_kv_cache_register(f->d, &bad[i], many, &id);
        if (s != KVX_ERR_INVALID_PARAM) {
            fail_msg("bad desc %zu: register gave %s", i, kvx_status_name(s));
        }
        bad[i].placement = KVX_MEM_DEVICE;
        s = kvx_kv_cache_allocate(f->d, &bad[i], &id, addrs);
        if (s != KVX_ERR_INVALID_PARAM) {
            fail_msg("bad desc %zu: allocate gave %s", i, kvx_status_name(s));
        }
        assert_int_equal(id, -42);
        fx_untouched(f, __LINE__);
    }
    assert_int_equal(kvx_device_used(0, &used1), KVX_OK);
    assert_int_equal(used0, used1);
    /* The same memory registers once the description is right (so the
     * refusals above did not hold on to it). */
    void *mem = malloc(good.num_tensors * 1024);
    assert_non_null(mem);
    void *addrs[4] = {mem, (char *)mem + 1024, (char *)mem + 2048, (char *)mem + 3072};
    int64_t id = 0;
    OK(kvx_kv_cache_register(f->d, &good, addrs, &id));
    OK(kvx_kv_cache_unregister(f->d, id));
    free(mem);
    fx_usable(f, __LINE__);
}

/* NULL where the header requires an object. */
static void test_null_args(void **state)
{
    fx_t *f = *state;
    kvx_kv_params_t p = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID, .cluster_id = 9};
    kvx_kv_h kv = NULL;
    assert_int_equal(kvx_kv_create(NULL, &kv), KVX_ERR_INVALID_PARAM);
    assert_null(kv);
    assert_int_equal(kvx_kv_create(&p, NULL), KVX_ERR_INVALID_PARAM);
    kvx_kv_params_t no_id = {.field_mask = KVX_KV_PARAM_FIELD_ROLE, .role = KVX_KV_ROLE_MIX};
    assert_int_equal(kvx_kv_create(&no_id, &kv), KVX_ERR_INVALID_PARAM);
    kvx_kv_params_t bad_role = {.field_mask =
                                    KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE,
                                .cluster_id = 9,
                                .role = (kvx_kv_role_t)7};
    assert_int_equal(kvx_kv_create(&bad_role, &kv), KVX_ERR_INVALID_PARAM);
    kvx_kv_params_t null_listen = {
        .field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_LISTEN, .cluster_id = 9};
    assert_int_equal(kvx_kv_create(&null_listen, &kv), KVX_ERR_INVALID_PARAM);
    assert_null(kv);

    kvx_status_t sts[1];
    kvx_kv_cluster_t null_remote = {.remote_cluster_id = 3, .remote = NULL};
    EXPECT(f, kvx_kv_link(f->d, NULL, 1, LINK_MS, sts), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_link(f->d, &null_remote, 1, LINK_MS, sts), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_link(NULL, &null_remote, 1, LINK_MS, sts), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_unlink(f->d, NULL, 1, LINK_MS, 0, sts), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_set_role(NULL, KVX_KV_ROLE_MIX, NULL), KVX_ERR_INVALID_PARAM);

    int64_t id = -42;
    void *addrs[MAXT];
    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, DIMS);
    void *const null_tensors[4] = {NULL, NULL, NULL, NULL};
    EXPECT(f, kvx_kv_cache_register(f->d, NULL, f->ddst.t, &id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_register(f->d, &d, NULL, &id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_register(f->d, &d, null_tensors, &id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_register(f->d, &d, f->ddst.t, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_register(NULL, &d, f->ddst.t, &id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_allocate(f->d, NULL, &id, addrs), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_allocate(f->d, &d, NULL, addrs), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_allocate(NULL, &d, &id, addrs), KVX_ERR_INVALID_PARAM);
    assert_int_equal(id, -42);
    EXPECT(f, kvx_kv_cache_tensors(f->d, f->ddst.id, NULL, 4), KVX_ERR_INVALID_PARAM);

    const uint64_t a[1] = {0};
    const uint64_t *lists[1] = {a};
    const size_t counts[1] = {1};
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id};
    kvx_kv_remote_cache_t rd = {.cluster_id = P_CLUSTER, .cache_id = f->pdst.id};
    EXPECT(f, kvx_kv_pull_cache(f->d, NULL, f->ddst.id, 0, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_pull_cache(NULL, &rs, f->ddst.id, 0, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_pull_blocks(f->d, NULL, f->ddst.id, a, 1, a, 1, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_cache(f->d, f->dsrc.id, 0, NULL, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_blocks(f->d, f->dsrc.id, NULL, a, 1, a, 1, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_push_blocks(NULL, f->dsrc.id, &rd, a, 1, a, 1, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_copy_cache(NULL, f->dsrc.id, 0, f->ddst.id, 0, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 1, NULL, counts, 1, NULL),
           KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_copy_blocks(f->d, f->dsrc.id, f->ddst.id, a, 1, lists, NULL, 1, NULL),
           KVX_ERR_INVALID_PARAM);

    EXPECT(f, kvx_kv_notify(f->d, P_CLUSTER, NULL, "m", 1), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_notify(f->d, P_CLUSTER, "n", NULL, 4), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_notify(NULL, P_CLUSTER, "n", "m", 1), KVX_ERR_INVALID_PARAM);
    kvx_notification_t *list = NULL;
    size_t count = 0;
    EXPECT(f, kvx_kv_notify_fetch(f->p, 10, NULL, &count), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_notify_fetch(f->p, 10, &list, NULL), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_notify_fetch(NULL, 10, &list, &count), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_link_count(NULL, NULL, NULL), KVX_ERR_INVALID_PARAM);
    /* Nothing was queued on P by the refused notifications. */
    assert_int_equal(kvx_kv_notify_fetch(f->p, 10, &list, &count), KVX_ERR_TIMEOUT);
}

/* A registered cache is not deallocated, an allocated one not unregistered
 * (kv.h pairs them; it names no status for the crossed calls, so
 * KVX_ERR_INVALID_PARAM is expected). Both stay registered and usable. */
static void test_dealloc_unregister_crossed(void **state)
{
    fx_t *f = *state;
    size_t used0 = 0, used1 = 0;
    assert_int_equal(kvx_device_used(0, &used0), KVX_OK);
    tc_t a;
    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, DIMS);
    tc_allocate(&a, f->d, &d, 0, 0);
    assert_int_equal(kvx_device_used(0, &used1), KVX_OK);
    assert_true(used1 >= used0 + 4 * 1024);

    EXPECT(f, kvx_kv_cache_deallocate(f->d, f->ddst.id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_deallocate(f->d, f->dsrc.id), KVX_ERR_INVALID_PARAM);
    EXPECT(f, kvx_kv_cache_unregister(f->d, a.id), KVX_ERR_INVALID_PARAM);
    assert_int_equal(tc_diff(&a, "allocated"), 0);
    assert_int_equal(kvx_device_used(0, &used0), KVX_OK);
    assert_int_equal(used0, used1);
    /* The allocated cache is still registered, its memory still valid. */
    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = f->psrc.id, .batch_index = 6};
    OK(kvx_kv_pull_cache(f->d, &rs, a.id, 0, NULL));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&a, t, 0), tc_at(&f->psrc, t, 6), a.esize);
    }
    assert_int_equal(tc_diff(&a, "allocated"), 0);
    void *addrs[MAXT] = {0};
    OK(kvx_kv_cache_tensors(f->d, a.id, addrs, MAXT));
    assert_memory_equal(addrs, a.t, 4 * sizeof(void *));
    /* The right calls, then both ids are gone. */
    OK(kvx_kv_cache_deallocate(f->d, a.id));
    EXPECT(f, kvx_kv_cache_deallocate(f->d, a.id), KVX_ERR_CACHE_NOT_FOUND);
    EXPECT(f, kvx_kv_cache_unregister(f->d, a.id), KVX_ERR_CACHE_NOT_FOUND);
    assert_int_equal(kvx_device_used(0, &used1), KVX_OK);
    assert_true(used1 + 4 * 1024 <= used0);
    tc_release(&a);
}

/* Unlinking a cluster that is not linked. */
static void test_unlink_unknown(void **state)
{
    fx_t *f = *state;
    kvx_status_t st = NOT_A_STATUS;
    EXPECT(f, unlink_one(f->d, NO_CLUSTER, 0, &st), KVX_ERR_NOT_LINKED);
    assert_int_equal(st, KVX_ERR_NOT_LINKED);
    st = NOT_A_STATUS;
    EXPECT(f, unlink_one(f->d, NO_CLUSTER, 1, &st), KVX_OK);
    assert_int_equal(st, KVX_OK);
    /* The incoming side is no link of P's own to unlink. */
    EXPECT(f, unlink_one(f->p, D_CLUSTER, 0, &st), KVX_ERR_NOT_LINKED);
    assert_true(wait_links(f->d, 1, 0));
    assert_true(wait_links(f->p, 0, 1));
    /* Unlink twice: the second is unknown. */
    assert_int_equal(unlink_one(f->d, P_CLUSTER, 0, &st), KVX_OK);
    assert_int_equal(unlink_one(f->d, P_CLUSTER, 0, &st), KVX_ERR_NOT_LINKED);
    assert_int_equal(st, KVX_ERR_NOT_LINKED);
    assert_int_equal(unlink_one(f->d, P_CLUSTER, 1, &st), KVX_OK);
    assert_true(wait_links(f->p, 0, 0));
    assert_int_equal(link_one(f->d, P_CLUSTER, f->p_name, &st), KVX_OK);
    fx_usable(f, __LINE__);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixture_sane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_cache_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote_cache_not_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dtype_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_shape_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tensor_count_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_list_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_range_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_range_reversed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_range_unequal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layer_range_not_multiple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tensors_per_layer_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_out_of_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_linked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_already_linked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many_clusters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_mismatch_keeps_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_role_link_exists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_role_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_field_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_desc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dealloc_unregister_crossed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

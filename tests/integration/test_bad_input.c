/*
 * Bad input to every public function, table-driven.
 *
 * Each row of TABLE is {public function, case function, expected status}:
 * the case calls the function once with a NULL, zero, negative, huge or
 * out-of-range argument (or a stale or foreign id or handle) and checks its
 * out-parameters (left untouched, or set as the header documents). For each
 * row the runner asserts the exact status, that a failing call left a
 * non-empty kvx_last_error() (cleared just before the call) that names the
 * status returned, and that no byte of the fixture's memory (buffers, device
 * memory, KV caches, device bytes in use) changed. After the whole table the engines
 * and KV instances used are checked to be fully usable: a transfer between
 * two engines of this process over 127.0.0.1 moves the right bytes, and a KV
 * pull of blocks works.
 *
 * Functions that return no status (void, a string, a number) have "NS" rows:
 * the case checks the value itself and returns KVX_OK.
 *
 * Rows marked FINDING pin behaviour found here that the headers did not
 * state; most were fixed or documented since. Change such a row together
 * with the library if it changes again.
 *
 * The program runs in well under a second; all traffic is on 127.0.0.1.
 *
 * Coverage: every KVX_API function of include/kvx/ (the *.h files and
 * version.h.in), 68 in all, with the cases of its rows (TABLE lists them
 * grouped the same way; 587 rows). test_coverage() checks that PUBLIC (the
 * same list) and TABLE agree: every function has rows, every row names a
 * listed function. To check the list against the headers:
 *   grep -rh -A2 '^KVX_API' include/kvx
 *
 *   header     function                     cases                              rows
 *   status.h   kvx_status_string            status_string_*                      3
 *              kvx_status_name              status_name_*                        2
 *              kvx_last_error               last_error_*                         2
 *   log.h      kvx_log_set_level            log_set_level_too_*                  2
 *              kvx_log_get_level            log_get_level_in_range               1
 *              kvx_log_set_sink             log_set_sink_null_restores_default   1
 *              kvx_log_level_name           log_level_name_*                     2
 *   version.h  kvx_version                  version_matches_header               1
 *   device.h   kvx_device_init              dev_init_*                          14
 *              kvx_device_backend           dev_backend_is_host                  1
 *              kvx_device_count             dev_count_null                       1
 *              kvx_device_host_accessible   dev_host_accessible_host             1
 *              kvx_device_malloc            dev_malloc_*                         7
 *              kvx_device_free              dev_free_*                           9
 *              kvx_device_memset            dev_memset_*                        10
 *              kvx_device_memcpy            dev_memcpy_*                        18
 *              kvx_device_locate            dev_locate_*                         8
 *              kvx_host_malloc              host_malloc_*                        5
 *              kvx_host_free                host_free_*                          6
 *              kvx_device_used              dev_used_*                           4
 *   engine.h   kvx_engine_create            engine_create_*                     41
 *              kvx_engine_destroy           engine_destroy_null                  1
 *              kvx_engine_name              engine_name_null                     1
 *              kvx_mem_register             mem_register_*                      22
 *              kvx_mem_deregister           mem_deregister_*                     6
 *              kvx_engine_remote_mem        remote_mem_*                        14
 *              kvx_engine_connect           connect_* (not _async)              12
 *              kvx_engine_connect_async     connect_async_*                      8
 *              kvx_engine_disconnect        disconnect_* (not _async)            8
 *              kvx_engine_disconnect_async  disconnect_async_*                   5
 *              kvx_engine_peer_state        peer_state_*                         7
 *              kvx_engine_peer_epoch        peer_epoch_*                         6
 *              kvx_engine_peers             peers_*                              5
 *              kvx_engine_incoming_links    incoming_links_null_*                2
 *              kvx_xfer_sync                xfer_sync_*                         30
 *              kvx_xfer_submit              xfer_submit_*                       15
 *              kvx_xfer_status              xfer_status_*                        9
 *              kvx_xfer_wait                xfer_wait_*                          7
 *              kvx_xfer_cancel              xfer_cancel_*                        9
 *              kvx_xfer_query               xfer_query_*                         6
 *              kvx_notify_send              notify_send_*                       14
 *              kvx_notify_fetch             notify_fetch_*                       4
 *              kvx_notify_wait              notify_wait_*                        4
 *              kvx_notify_free              notify_free_null_list                1
 *              kvx_capability               capability_*                         6
 *   kv.h       kvx_dtype_size               dtype_size_unknown                   1
 *              kvx_kv_create                kv_create_*                         40
 *              kvx_kv_destroy               kv_destroy_null                      1
 *              kvx_kv_listen_name           kv_listen_name_null                  1
 *              kvx_kv_cluster_id            kv_cluster_id_null                   1
 *              kvx_kv_role                  kv_role_null                         1
 *              kvx_kv_link                  kv_link_* (not _count)              17
 *              kvx_kv_unlink                kv_unlink_*                          9
 *              kvx_kv_link_count            kv_link_count_null_*                 3
 *              kvx_kv_set_role              kv_set_role_*                       10
 *              kvx_kv_cache_allocate        cache_allocate_*                    26
 *              kvx_kv_cache_deallocate      cache_deallocate_*                   7
 *              kvx_kv_cache_register        cache_register_*                    12
 *              kvx_kv_cache_unregister      cache_unregister_*                   5
 *              kvx_kv_cache_tensors         cache_tensors_*                      6
 *              kvx_kv_pull_cache            pull_cache_*                        25
 *              kvx_kv_pull_blocks           pull_blocks_*                       17
 *              kvx_kv_push_cache            push_cache_*                        12
 *              kvx_kv_push_blocks           push_blocks_*                       12
 *              kvx_kv_copy_cache            copy_cache_*                        11
 *              kvx_kv_copy_blocks           copy_blocks_*                       15
 *              kvx_kv_notify                kv_notify_* (not _fetch)             8
 *              kvx_kv_notify_fetch          kv_notify_fetch_*                    6
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvx/kvx.h>

#include "harness.h"
#include "kv_fixture.h"

/* Huge allocation requests are part of the table: let ASan's allocator
 * return NULL for them as glibc does, instead of aborting the program. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

/* ------------------------------------------------------------ checks */

/* Checks that failed in the current row. */
static int g_bad;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            char m_[256];                                                                          \
            snprintf(m_, sizeof(m_), __VA_ARGS__);                                                 \
            print_error("    %s:%d: check '%s' failed: %s\n", __FILE__, __LINE__, #cond, m_);      \
            g_bad++;                                                                               \
        }                                                                                          \
    } while (0)

/* Out-parameter sentinels: never dereferenced. */
#define SENT_PTR   ((void *)(uintptr_t)0x5e5e5e40u)
#define SENT_SIZE  ((size_t)0x5e5e5e5eu)
#define SENT_INT   0x5e5e5e5e
#define SENT_U64   0x5e5e5e5e5e5e5e5eull
#define SENT_I64   ((int64_t)0x5e5e5e5e5e5e5e5ell)
#define SENT_STATE ((kvx_xfer_state_t)77)
#define SENT_ST    ((kvx_status_t)12345)

/* The first field bit past the highest one each header defines. */
#define ENGINE_NEXT_BIT ((uint64_t)KVX_ENGINE_PARAM_FIELD_AUTH_SECRET << 1)
#define MEM_NEXT_BIT    ((uint64_t)KVX_MEM_PARAM_FIELD_ACCESS << 1)
#define XFER_NEXT_BIT   ((uint64_t)KVX_XFER_PARAM_FIELD_CHECKSUM << 1)
#define DEVICE_NEXT_BIT ((uint64_t)KVX_DEVICE_PARAM_FIELD_CAPACITY << 1)
#define KV_NEXT_BIT     ((uint64_t)KVX_KV_PARAM_FIELD_AUTH_SECRET << 1)
#define CACHE_NEXT_BIT  ((uint64_t)KVX_KV_CACHE_FIELD_SHAPE << 1)
#define KVXFER_NEXT_BIT ((uint64_t)KVX_KV_XFER_FIELD_CHECKSUM << 1)

/* An address near the top of the address space: adding a length wraps. */
#define TOP_ADDR ((void *)(UINTPTR_MAX - 15))

/* ------------------------------------------------------------ fixture */

#define BUF_LEN    ((size_t)256 << 10) /* server and client buffers */
#define RO_LEN     4096                /* server's read-only region */
#define DBUF_LEN   ((size_t)64 << 10)  /* device buffer on device 0 */
#define HBUF_LEN   ((size_t)64 << 10)  /* kvx_host_malloc buffer */
#define SCRATCH    (BUF_LEN - 4096)    /* client: destination of setup reads */
#define MAX_OUT    8                   /* client's max_outstanding */
#define SERVER_TAG 7

static const int64_t KV_DIMS[3] = {8, 4, 16}; /* fp16: 8 blocks of 128 B per tensor */
#define KV_BLOCKS 8

typedef struct ctx {
    /* Engines: a listening server, a client connected to it, and another
     * listening engine nobody connects to. */
    kvx_engine_h s, c, o;
    char s_name[KVX_ENGINE_NAME_MAX], o_name[KVX_ENGINE_NAME_MAX];
    char dead_name[KVX_ENGINE_NAME_MAX]; /* a port where nobody listens */
    uint8_t *sbuf, *sro, *cbuf;
    kvx_mem_h smem, sromem, cmem;
    kvx_mem_h stale_mem;       /* registered with the client, then deregistered */
    uint8_t *stale_buf;        /* its memory (still allocated) */
    kvx_xfer_id_t reported_id; /* a client transfer already reported finished */
    kvx_xfer_id_t live_id;     /* a client transfer finished, not yet reported */
    void *dbuf, *dbuf1;        /* device 0 and device 1 */
    void *hbuf;                /* kvx_host_malloc */
    /* KV: prompt P (cluster 1, listening), decoder D (cluster 2) linked to P. */
    kvx_kv_h p, d;
    char p_name[KVX_ENGINE_NAME_MAX];
    tc_t psrc;         /* P, host, registered, pattern 1 */
    tc_t ddst;         /* D, host, registered, sentinel */
    tc_t dsrc;         /* D, device, registered, pattern 2 */
    int64_t d_alloc;   /* D, allocated (device) */
    int64_t d_removed; /* D, allocated then deallocated */
    /* Copies of every buffer taken after setup: no row may change a byte. */
    uint8_t *model_s, *model_ro, *model_c, *model_d, *model_h;
    uint8_t *tmp;
    size_t used0, used1; /* kvx_device_used of devices 0 and 1 */
    /* Set by a case: runs after the row's status and detail are checked. */
    void (*after)(struct ctx *c);
    kvx_xfer_id_t pend[MAX_OUT]; /* transfers for reap_pending() */
    size_t npend;
} ctx_t;

static ctx_t g_ctx;

static char g_long[4096]; /* 'n' * 4095 then NUL: names and messages cut from it */

#define OKS(call)                                                                                  \
    do {                                                                                           \
        kvx_status_t s_ = (call);                                                                  \
        if (s_ != KVX_OK) {                                                                        \
            char d_[512];                                                                          \
            snprintf(d_, sizeof(d_), "%s", kvx_last_error());                                      \
            fail_msg("%s:%d: %s: %s (%s)", __FILE__, __LINE__, #call, kvx_status_name(s_), d_);    \
        }                                                                                          \
    } while (0)

static kvx_engine_h engine_new(const char *name, const kvx_engine_params_t *extra)
{
    kvx_engine_params_t p = {0};
    if (extra != NULL) {
        p = *extra;
    }
    p.field_mask |= KVX_ENGINE_PARAM_FIELD_NAME;
    p.name = name;
    kvx_engine_h e = NULL;
    OKS(kvx_engine_create(&p, &e));
    assert_non_null(e);
    return e;
}

static kvx_mem_h reg(kvx_engine_h e, void *addr, size_t len, kvx_mem_access_t access, uint64_t tag)
{
    kvx_mem_params_t p = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                        KVX_MEM_PARAM_FIELD_ACCESS | KVX_MEM_PARAM_FIELD_TAG,
                          .address = addr,
                          .length = len,
                          .access = access,
                          .tag = tag};
    kvx_mem_h h = NULL;
    OKS(kvx_mem_register(e, &p, &h));
    assert_non_null(h);
    return h;
}

static uint64_t raddr(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static kvx_kv_h kv_new(uint64_t cluster, kvx_kv_role_t role, int listen)
{
    kvx_kv_params_t p = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE,
                         .cluster_id = cluster,
                         .role = role};
    if (listen) {
        p.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        p.listen = "127.0.0.1:0";
    } else {
        p.field_mask |= KVX_KV_PARAM_FIELD_LOCAL_IP;
        p.local_ip = "127.0.0.1";
    }
    kvx_kv_h kv = NULL;
    OKS(kvx_kv_create(&p, &kv));
    own_kv(kv);
    return kv;
}

static void snapshot(ctx_t *c)
{
    memcpy(c->model_s, c->sbuf, BUF_LEN);
    memcpy(c->model_ro, c->sro, RO_LEN);
    memcpy(c->model_c, c->cbuf, BUF_LEN);
    OKS(kvx_device_memcpy(c->model_d, c->dbuf, DBUF_LEN, KVX_COPY_D2H, 0));
    memcpy(c->model_h, c->hbuf, HBUF_LEN);
    OKS(kvx_device_used(0, &c->used0));
    OKS(kvx_device_used(1, &c->used1));
}

static int setup(void **state)
{
    ctx_t *c = &g_ctx;
    memset(c, 0, sizeof(*c));
    memset(g_long, 'n', sizeof(g_long) - 1);

    /* Memory first: a valid kvx_device_init() is then refused with BUSY. */
    OKS(kvx_device_malloc(0, DBUF_LEN, &c->dbuf));
    OKS(kvx_device_malloc(1, 4096, &c->dbuf1));
    OKS(kvx_host_malloc(HBUF_LEN, &c->hbuf));
    c->tmp = own_mem(malloc(BUF_LEN), 0);
    test_fill(c->tmp, DBUF_LEN, 14, 0);
    OKS(kvx_device_memcpy(c->dbuf, c->tmp, DBUF_LEN, KVX_COPY_H2D, 0));
    test_fill(c->hbuf, HBUF_LEN, 15, 0);

    kvx_engine_params_t cp = {.field_mask = KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING,
                              .max_outstanding = MAX_OUT};
    c->s = engine_new("127.0.0.1:0", NULL);
    c->c = engine_new("127.0.0.1", &cp);
    c->o = engine_new("127.0.0.1:0", NULL);
    snprintf(c->s_name, sizeof(c->s_name), "%s", kvx_engine_name(c->s));
    snprintf(c->o_name, sizeof(c->o_name), "%s", kvx_engine_name(c->o));
    kvx_engine_h dead = engine_new("127.0.0.1:0", NULL);
    snprintf(c->dead_name, sizeof(c->dead_name), "%s", kvx_engine_name(dead));
    kvx_engine_destroy(dead);

    c->sbuf = own_mem(malloc(BUF_LEN + RO_LEN), 0);
    c->sro = c->sbuf + BUF_LEN;
    c->cbuf = own_mem(malloc(BUF_LEN), 0);
    c->stale_buf = own_mem(malloc(4096), 0);
    test_fill(c->sbuf, BUF_LEN, 11, 0);
    test_fill(c->sro, RO_LEN, 13, 0);
    test_fill(c->cbuf, BUF_LEN, 12, 0);
    c->smem = reg(c->s, c->sbuf, BUF_LEN, KVX_MEM_ACCESS_READ_WRITE, SERVER_TAG);
    c->sromem = reg(c->s, c->sro, RO_LEN, KVX_MEM_ACCESS_READ_ONLY, SERVER_TAG + 1);
    c->cmem = reg(c->c, c->cbuf, BUF_LEN, KVX_MEM_ACCESS_READ_WRITE, 0);
    c->stale_mem = reg(c->c, c->stale_buf, 4096, KVX_MEM_ACCESS_READ_WRITE, 0);
    OKS(kvx_mem_deregister(c->c, c->stale_mem));
    OKS(kvx_engine_connect(c->c, c->s_name, 5000));

    /* One transfer reported finished, one finished but not reported. */
    kvx_xfer_desc_t d = {
        .local_addr = c->cbuf + SCRATCH, .remote_addr = raddr(c->sbuf), .length = 64};
    kvx_xfer_state_t st = KVX_XFER_WAITING;
    kvx_status_t err = KVX_ERR_INTERNAL;
    OKS(kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL, &c->reported_id));
    OKS(kvx_xfer_wait(c->c, c->reported_id, 5000, &st, &err));
    assert_int_equal(st, KVX_XFER_COMPLETED);
    d.local_addr = c->cbuf + SCRATCH + 64;
    OKS(kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL, &c->live_id));
    /* A sync transfer after it on the same link: the async one is done. */
    d.local_addr = c->cbuf + SCRATCH + 128;
    OKS(kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL));
    assert_int_not_equal(c->live_id, c->reported_id);

    /* KV instances. */
    c->p = kv_new(P_CLUSTER, KVX_KV_ROLE_PROMPT, 1);
    c->d = kv_new(D_CLUSTER, KVX_KV_ROLE_DECODER, 0);
    snprintf(c->p_name, sizeof(c->p_name), "%s", kvx_kv_listen_name(c->p));
    kvx_kv_cache_desc_t host = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, KV_DIMS);
    kvx_kv_cache_desc_t dev = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, KV_DIMS);
    tc_register(&c->psrc, c->p, &host, 1);
    tc_register(&c->ddst, c->d, &host, 0);
    tc_register(&c->dsrc, c->d, &dev, 2);
    OKS(kvx_kv_cache_allocate(c->d, &dev, &c->d_alloc, NULL));
    OKS(kvx_kv_cache_allocate(c->d, &dev, &c->d_removed, NULL));
    OKS(kvx_kv_cache_deallocate(c->d, c->d_removed));
    kvx_kv_cluster_t cl = {.remote_cluster_id = P_CLUSTER, .remote = c->p_name};
    OKS(kvx_kv_link(c->d, &cl, 1, LINK_MS, NULL));

    c->model_s = own_mem(malloc(BUF_LEN), 0);
    c->model_ro = own_mem(malloc(RO_LEN), 0);
    c->model_c = own_mem(malloc(BUF_LEN), 0);
    c->model_d = own_mem(malloc(DBUF_LEN), 0);
    c->model_h = own_mem(malloc(HBUF_LEN), 0);
    snapshot(c);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx_t *c = &g_ctx;
    (void)state;
    kvx_engine_destroy(c->c);
    kvx_engine_destroy(c->o);
    kvx_engine_destroy(c->s);
    free_all(); /* KV instances first, then the buffers (the engines' too) */
    if (c->dbuf != NULL) {
        kvx_device_free(0, c->dbuf);
    }
    if (c->dbuf1 != NULL) {
        kvx_device_free(1, c->dbuf1);
    }
    kvx_host_free(c->hbuf);
    /* free_all() freed the buffers of ctx; forget them. */
    memset(c, 0, sizeof(*c));
    return 0;
}

/* Bytes of the fixture's memory that differ from the snapshot (0: none). */
static size_t fixture_changed(ctx_t *c, char *why, size_t why_len)
{
    struct {
        const char *name;
        const uint8_t *mem, *model;
        size_t len;
    } bufs[] = {{"server buffer", c->sbuf, c->model_s, BUF_LEN},
                {"server read-only region", c->sro, c->model_ro, RO_LEN},
                {"client buffer", c->cbuf, c->model_c, BUF_LEN},
                {"host_malloc buffer", c->hbuf, c->model_h, HBUF_LEN},
                {"device buffer", c->tmp, c->model_d, DBUF_LEN}};
    if (kvx_device_memcpy(c->tmp, c->dbuf, DBUF_LEN, KVX_COPY_D2H, 0) != KVX_OK) {
        snprintf(why, why_len, "device buffer unreadable: %s", kvx_last_error());
        return 1;
    }
    for (size_t b = 0; b < sizeof(bufs) / sizeof(bufs[0]); b++) {
        if (memcmp(bufs[b].mem, bufs[b].model, bufs[b].len) != 0) {
            size_t i = 0;
            while (bufs[b].mem[i] == bufs[b].model[i]) {
                i++;
            }
            snprintf(why, why_len, "%s byte %zu changed", bufs[b].name, i);
            return 1;
        }
    }
    tc_t *caches[] = {&c->psrc, &c->ddst, &c->dsrc};
    for (size_t i = 0; i < 3; i++) {
        size_t n = tc_diff_quiet(caches[i], why, why_len);
        if (n != 0) {
            return n;
        }
    }
    size_t u0 = 0, u1 = 0;
    if (kvx_device_used(0, &u0) != KVX_OK || kvx_device_used(1, &u1) != KVX_OK || u0 != c->used0 ||
        u1 != c->used1) {
        snprintf(why, why_len, "device memory in use changed: %zu, %zu (was %zu, %zu)", u0, u1,
                 c->used0, c->used1);
        return 1;
    }
    return 0;
}

/* ============================================================ cases */

#define CASE(name) static kvx_status_t name(ctx_t *c __attribute__((unused)))

/* ------------------------------------------------------------ status.h */

CASE(status_string_unknown)
{
    CHECK(strcmp(kvx_status_string(SENT_ST), "unknown status") == 0, "got '%s'",
          kvx_status_string(SENT_ST));
    return KVX_OK;
}

CASE(status_string_int_min)
{
    const char *s = kvx_status_string((kvx_status_t)INT_MIN);
    CHECK(s != NULL && strcmp(s, "unknown status") == 0, "got '%s'", s ? s : "(null)");
    return KVX_OK;
}

CASE(status_string_gap)
{
    /* Between the last engine code and the first peer code. */
    const char *s = kvx_status_string((kvx_status_t)-17);
    CHECK(s != NULL && strcmp(s, "unknown status") == 0, "got '%s'", s ? s : "(null)");
    return KVX_OK;
}

CASE(status_name_unknown)
{
    const char *s = kvx_status_name(SENT_ST);
    CHECK(s != NULL && strcmp(s, "KVX_UNKNOWN") == 0, "got '%s'", s ? s : "(null)");
    return KVX_OK;
}

CASE(status_name_int_max)
{
    const char *s = kvx_status_name((kvx_status_t)INT_MAX);
    CHECK(s != NULL && strcmp(s, "KVX_UNKNOWN") == 0, "got '%s'", s ? s : "(null)");
    return KVX_OK;
}

CASE(last_error_after_failure)
{
    /* A refused call leaves a detail that names its status, and the detail
     * stays the same when read again. */
    kvx_status_t st = kvx_device_count(NULL);
    const char *a = kvx_last_error();
    CHECK(st == KVX_ERR_INVALID_PARAM, "kvx_device_count(NULL) -> %s", kvx_status_name(st));
    CHECK(a != NULL && strstr(a, "KVX_ERR_INVALID_PARAM") != NULL, "detail '%s'", a ? a : "");
    CHECK(kvx_last_error() == a && strcmp(kvx_last_error(), a) == 0, "detail changed");
    return KVX_OK;
}

CASE(last_error_cleared_by_success)
{
    kvx_device_count(NULL);
    int v = 0;
    kvx_status_t st = kvx_capability(KVX_FEATURE_IPV6, &v);
    CHECK(st == KVX_OK && kvx_last_error()[0] == '\0', "detail '%s' after a successful call",
          kvx_last_error());
    return KVX_OK;
}

/* ------------------------------------------------------------ log.h */

CASE(log_set_level_too_high)
{
    kvx_log_level_t old = kvx_log_get_level();
    kvx_log_set_level((kvx_log_level_t)99);
    kvx_log_level_t now = kvx_log_get_level();
    kvx_log_set_level(old);
    CHECK(now == KVX_LOG_DATA, "level %d after setting 99", (int)now);
    return KVX_OK;
}

CASE(log_set_level_too_low)
{
    kvx_log_level_t old = kvx_log_get_level();
    kvx_log_set_level((kvx_log_level_t)INT_MIN);
    kvx_log_level_t now = kvx_log_get_level();
    kvx_log_set_level(old);
    CHECK(now == KVX_LOG_OFF, "level %d after setting INT_MIN", (int)now);
    return KVX_OK;
}

CASE(log_get_level_in_range)
{
    kvx_log_level_t l = kvx_log_get_level();
    CHECK(l >= KVX_LOG_OFF && l <= KVX_LOG_DATA, "level %d", (int)l);
    return KVX_OK;
}

static int g_sink_calls;

static void count_sink(kvx_log_level_t level, const char *file, int line, const char *msg,
                       void *user_data)
{
    (void)level;
    (void)file;
    (void)line;
    (void)msg;
    (void)user_data;
    __atomic_add_fetch(&g_sink_calls, 1, __ATOMIC_RELAXED);
}

CASE(log_set_sink_null_restores_default)
{
    /* A sink with NULL user_data gets messages; NULL then restores the
     * default sink (the counter no longer moves). */
    kvx_log_level_t old = kvx_log_get_level();
    __atomic_store_n(&g_sink_calls, 0, __ATOMIC_RELAXED);
    kvx_log_set_sink(count_sink, NULL);
    kvx_log_set_level(KVX_LOG_DEBUG);
    kvx_device_count(NULL); /* a refused call is logged at debug level */
    kvx_log_set_sink(NULL, SENT_PTR);
    kvx_log_set_level(KVX_LOG_OFF);
    int calls = __atomic_load_n(&g_sink_calls, __ATOMIC_RELAXED);
    kvx_device_count(NULL);
    int after = __atomic_load_n(&g_sink_calls, __ATOMIC_RELAXED);
    kvx_log_set_level(old);
    CHECK(calls >= 1, "sink got %d messages", calls);
    CHECK(after == calls, "sink still called after kvx_log_set_sink(NULL)");
    return KVX_OK;
}

CASE(log_level_name_out_of_range)
{
    const int bad[] = {6, 99, INT_MAX, -2, INT_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *s = kvx_log_level_name((kvx_log_level_t)bad[i]);
        CHECK(s != NULL && strcmp(s, "off") == 0, "level %d named '%s'", bad[i], s ? s : "(null)");
    }
    return KVX_OK;
}

CASE(log_level_name_off)
{
    const char *s = kvx_log_level_name(KVX_LOG_OFF);
    CHECK(s != NULL && strcmp(s, "off") == 0, "got '%s'", s ? s : "(null)");
    return KVX_OK;
}

/* ------------------------------------------------------------ version.h */

CASE(version_matches_header)
{
    const char *v = kvx_version();
    CHECK(v != NULL && strcmp(v, KVX_VERSION_STRING) == 0, "library %s, header %s",
          v ? v : "(null)", KVX_VERSION_STRING);
    return KVX_OK;
}

/* ------------------------------------------------------------ device.h */

static kvx_status_t dev_init(uint64_t mask, const char *backend, int num, size_t cap)
{
    kvx_device_params_t p = {
        .field_mask = mask, .backend = backend, .num_devices = num, .capacity = cap};
    return kvx_device_init(&p);
}

CASE(dev_init_next_bit)
{
    return dev_init(DEVICE_NEXT_BIT, NULL, 0, 0);
}

CASE(dev_init_bit63)
{
    return dev_init(KVX_BIT(63) | KVX_DEVICE_PARAM_FIELD_BACKEND, "host", 0, 0);
}

CASE(dev_init_backend_null)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_BACKEND, NULL, 0, 0);
}

CASE(dev_init_backend_unknown)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_BACKEND, "tpu", 0, 0);
}

CASE(dev_init_backend_empty)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_BACKEND, "", 0, 0);
}

CASE(dev_init_backend_cuda)
{
    /* Not built with CUDA here: see kvx_capability(KVX_FEATURE_DEVICE_CUDA). */
    int cuda = 1;
    OKS(kvx_capability(KVX_FEATURE_DEVICE_CUDA, &cuda));
    if (cuda) {
        return KVX_ERR_UNSUPPORTED; /* the row does not apply */
    }
    return dev_init(KVX_DEVICE_PARAM_FIELD_BACKEND, "cuda", 0, 0);
}

CASE(dev_init_num_devices_zero)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_NUM_DEVICES, NULL, 0, 0);
}

CASE(dev_init_num_devices_negative)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_NUM_DEVICES, NULL, -1, 0);
}

CASE(dev_init_num_devices_1025)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_NUM_DEVICES, NULL, 1025, 0);
}

CASE(dev_init_num_devices_int_max)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_NUM_DEVICES | KVX_DEVICE_PARAM_FIELD_BACKEND, "host",
                    INT_MAX, 0);
}

CASE(dev_init_env_devices_bad)
{
    const char *old = getenv("KVX_HOST_DEVICES");
    char saved[64] = "";
    if (old != NULL) {
        snprintf(saved, sizeof(saved), "%s", old);
    }
    setenv("KVX_HOST_DEVICES", "-3", 1);
    kvx_status_t st = kvx_device_init(NULL);
    if (old != NULL) {
        setenv("KVX_HOST_DEVICES", saved, 1);
    } else {
        unsetenv("KVX_HOST_DEVICES");
    }
    return st;
}

CASE(dev_init_env_capacity_bad)
{
    const char *old = getenv("KVX_HOST_DEVICE_CAPACITY");
    char saved[64] = "";
    if (old != NULL) {
        snprintf(saved, sizeof(saved), "%s", old);
    }
    setenv("KVX_HOST_DEVICE_CAPACITY", "99999999999999999999T", 1);
    kvx_status_t st = kvx_device_init(NULL);
    if (old != NULL) {
        setenv("KVX_HOST_DEVICE_CAPACITY", saved, 1);
    } else {
        unsetenv("KVX_HOST_DEVICE_CAPACITY");
    }
    return st;
}

CASE(dev_init_null_while_allocated)
{
    return kvx_device_init(NULL);
}

CASE(dev_init_huge_capacity_while_allocated)
{
    return dev_init(KVX_DEVICE_PARAM_FIELD_BACKEND | KVX_DEVICE_PARAM_FIELD_CAPACITY, "host", 0,
                    SIZE_MAX);
}

CASE(dev_backend_is_host)
{
    const char *b = kvx_device_backend();
    CHECK(b != NULL && strcmp(b, "host") == 0, "backend '%s'", b ? b : "(null)");
    return KVX_OK;
}

CASE(dev_count_null)
{
    return kvx_device_count(NULL);
}

CASE(dev_host_accessible_host)
{
    CHECK(kvx_device_host_accessible() == 1, "host backend not host-accessible");
    return KVX_OK;
}

static kvx_status_t dev_malloc_untouched(int device, size_t size)
{
    void *p = SENT_PTR;
    kvx_status_t st = kvx_device_malloc(device, size, &p);
    if (st == KVX_OK) {
        kvx_device_free(device, p);
    } else {
        CHECK(p == SENT_PTR, "ptr_p written on failure");
    }
    return st;
}

CASE(dev_malloc_null_out)
{
    return kvx_device_malloc(0, 64, NULL);
}

CASE(dev_malloc_size_zero)
{
    return dev_malloc_untouched(0, 0);
}

CASE(dev_malloc_device_negative)
{
    return dev_malloc_untouched(-1, 64);
}

CASE(dev_malloc_device_count)
{
    int n = 0;
    OKS(kvx_device_count(&n));
    return dev_malloc_untouched(n, 64);
}

CASE(dev_malloc_device_int_min)
{
    return dev_malloc_untouched(INT_MIN, 64);
}

CASE(dev_malloc_size_max)
{
    return dev_malloc_untouched(0, SIZE_MAX);
}

CASE(dev_malloc_size_half)
{
    return dev_malloc_untouched(1, SIZE_MAX / 2 + 1);
}

CASE(dev_free_null_bad_device)
{
    return kvx_device_free(-1, NULL);
}

CASE(dev_free_null_ok)
{
    return kvx_device_free(0, NULL);
}

CASE(dev_free_device_int_max)
{
    return kvx_device_free(INT_MAX, c->dbuf);
}

CASE(dev_free_interior)
{
    return kvx_device_free(0, (uint8_t *)c->dbuf + 64);
}

CASE(dev_free_wrong_device)
{
    return kvx_device_free(1, c->dbuf);
}

CASE(dev_free_host_pointer)
{
    return kvx_device_free(0, c->cbuf);
}

CASE(dev_free_host_malloc_pointer)
{
    return kvx_device_free(0, c->hbuf);
}

CASE(dev_free_top_address)
{
    return kvx_device_free(0, TOP_ADDR);
}

CASE(dev_free_twice)
{
    /* The host backend finds pointers in its table, never dereferences
     * them: a second free is reported. */
    void *p = NULL;
    OKS(kvx_device_malloc(0, 256, &p));
    OKS(kvx_device_free(0, p));
    return kvx_device_free(0, p);
}

CASE(dev_memset_null)
{
    return kvx_device_memset(0, NULL, 0, 16);
}

CASE(dev_memset_size_zero)
{
    return kvx_device_memset(0, c->dbuf, 0, 0);
}

CASE(dev_memset_size_max)
{
    return kvx_device_memset(0, c->dbuf, 0, SIZE_MAX);
}

CASE(dev_memset_wraps)
{
    return kvx_device_memset(0, TOP_ADDR, 0, 64);
}

CASE(dev_memset_past_end)
{
    return kvx_device_memset(0, c->dbuf, 0, DBUF_LEN + 1);
}

CASE(dev_memset_host_memory)
{
    return kvx_device_memset(0, c->cbuf, 0, 16);
}

CASE(dev_memset_host_malloc_memory)
{
    return kvx_device_memset(0, c->hbuf, 0, 16);
}

CASE(dev_memset_wrong_device)
{
    return kvx_device_memset(1, c->dbuf, 0, 16);
}

CASE(dev_memset_device_negative)
{
    return kvx_device_memset(-1, c->dbuf, 0, 16);
}

CASE(dev_memset_device_1024)
{
    return kvx_device_memset(1024, c->dbuf, 0, 16);
}

CASE(dev_memcpy_kind_4)
{
    return kvx_device_memcpy(c->tmp, c->dbuf, 16, (kvx_copy_kind_t)4, 0);
}

CASE(dev_memcpy_kind_negative)
{
    return kvx_device_memcpy(c->tmp, c->dbuf, 16, (kvx_copy_kind_t)-1, 0);
}

CASE(dev_memcpy_null_dst)
{
    return kvx_device_memcpy(NULL, c->dbuf, 16, KVX_COPY_D2H, 0);
}

CASE(dev_memcpy_null_src)
{
    return kvx_device_memcpy(c->dbuf, NULL, 16, KVX_COPY_H2D, 0);
}

CASE(dev_memcpy_size_zero)
{
    return kvx_device_memcpy(c->tmp, c->dbuf, 0, KVX_COPY_D2H, 0);
}

CASE(dev_memcpy_size_max)
{
    return kvx_device_memcpy(c->tmp, c->dbuf, SIZE_MAX, KVX_COPY_D2H, 0);
}

CASE(dev_memcpy_src_wraps)
{
    return kvx_device_memcpy(c->tmp, TOP_ADDR, 64, KVX_COPY_H2H, 0);
}

CASE(dev_memcpy_overlap_h2h)
{
    return kvx_device_memcpy(c->tmp + 8, c->tmp, 64, KVX_COPY_H2H, 0);
}

CASE(dev_memcpy_overlap_d2d)
{
    return kvx_device_memcpy(c->dbuf, (uint8_t *)c->dbuf + 32, 64, KVX_COPY_D2D, 0);
}

CASE(dev_memcpy_h2d_host_dst)
{
    return kvx_device_memcpy(c->tmp + 4096, c->tmp, 16, KVX_COPY_H2D, 0);
}

CASE(dev_memcpy_h2d_past_end)
{
    return kvx_device_memcpy((uint8_t *)c->dbuf + DBUF_LEN - 8, c->tmp, 16, KVX_COPY_H2D, 0);
}

CASE(dev_memcpy_h2d_wrong_device)
{
    return kvx_device_memcpy(c->dbuf, c->tmp, 16, KVX_COPY_H2D, 1);
}

CASE(dev_memcpy_h2d_bad_device)
{
    return kvx_device_memcpy(c->dbuf, c->tmp, 16, KVX_COPY_H2D, -1);
}

CASE(dev_memcpy_h2d_host_malloc_dst)
{
    return kvx_device_memcpy(c->hbuf, c->tmp, 16, KVX_COPY_H2D, 0);
}

CASE(dev_memcpy_d2h_host_src)
{
    return kvx_device_memcpy(c->tmp, c->cbuf, 16, KVX_COPY_D2H, 0);
}

CASE(dev_memcpy_d2d_host_src)
{
    return kvx_device_memcpy(c->dbuf, c->cbuf, 16, KVX_COPY_D2D, 0);
}

CASE(dev_memcpy_d2d_host_malloc_src)
{
    /* kvx_host_malloc memory is host memory (kvx_device_locate says -1),
     * not memory of any device. */
    return kvx_device_memcpy(c->dbuf, c->hbuf, 16, KVX_COPY_D2D, 0);
}

CASE(dev_memcpy_h2h_device_ignored)
{
    /* H2H ignores the device id, even an invalid one. */
    return kvx_device_memcpy(c->tmp + 4096, c->tmp, 16, KVX_COPY_H2H, -7);
}

static kvx_status_t locate_untouched(const void *ptr, size_t size)
{
    int dev = SENT_INT;
    kvx_status_t st = kvx_device_locate(ptr, size, &dev);
    if (st != KVX_OK) {
        CHECK(dev == SENT_INT, "device_p written on failure (%d)", dev);
    }
    return st;
}

CASE(dev_locate_null_ptr)
{
    return locate_untouched(NULL, 16);
}

CASE(dev_locate_null_out)
{
    return kvx_device_locate(c->dbuf, 16, NULL);
}

CASE(dev_locate_size_zero)
{
    return locate_untouched(c->dbuf, 0);
}

CASE(dev_locate_size_max)
{
    return locate_untouched(c->dbuf, SIZE_MAX);
}

CASE(dev_locate_wraps)
{
    return locate_untouched(TOP_ADDR, 64);
}

CASE(dev_locate_past_end)
{
    return locate_untouched((uint8_t *)c->dbuf + DBUF_LEN - 1, 2);
}

CASE(dev_locate_host_into_device)
{
    return locate_untouched((uint8_t *)c->dbuf - 1, 2);
}

CASE(dev_locate_host_malloc_is_host)
{
    int dev = SENT_INT;
    kvx_status_t st = kvx_device_locate(c->hbuf, HBUF_LEN, &dev);
    CHECK(st != KVX_OK || dev == -1, "device %d for kvx_host_malloc memory", dev);
    return st;
}

static kvx_status_t host_malloc_untouched(size_t size)
{
    void *p = SENT_PTR;
    kvx_status_t st = kvx_host_malloc(size, &p);
    if (st == KVX_OK) {
        kvx_host_free(p);
    } else {
        CHECK(p == SENT_PTR, "ptr_p written on failure");
    }
    return st;
}

CASE(host_malloc_size_zero)
{
    return host_malloc_untouched(0);
}

CASE(host_malloc_null_out)
{
    return kvx_host_malloc(64, NULL);
}

CASE(host_malloc_size_max)
{
    return host_malloc_untouched(SIZE_MAX);
}

CASE(host_malloc_size_2_63)
{
    return host_malloc_untouched((size_t)1 << 63);
}

CASE(host_malloc_size_2_62)
{
    return host_malloc_untouched((size_t)1 << 62);
}

CASE(host_free_null)
{
    return kvx_host_free(NULL);
}

CASE(host_free_malloc_pointer)
{
    return kvx_host_free(c->cbuf);
}

CASE(host_free_device_pointer)
{
    return kvx_host_free(c->dbuf);
}

CASE(host_free_interior)
{
    return kvx_host_free((uint8_t *)c->hbuf + 64);
}

CASE(host_free_top_address)
{
    return kvx_host_free(TOP_ADDR);
}

CASE(host_free_twice)
{
    void *p = NULL;
    OKS(kvx_host_malloc(4096, &p));
    OKS(kvx_host_free(p));
    return kvx_host_free(p);
}

static kvx_status_t used_untouched(int device)
{
    size_t n = SENT_SIZE;
    kvx_status_t st = kvx_device_used(device, &n);
    if (st != KVX_OK) {
        CHECK(n == SENT_SIZE, "bytes_p written on failure");
    }
    return st;
}

CASE(dev_used_null)
{
    return kvx_device_used(0, NULL);
}

CASE(dev_used_negative)
{
    return used_untouched(-1);
}

CASE(dev_used_device_count)
{
    int n = 0;
    OKS(kvx_device_count(&n));
    return used_untouched(n);
}

CASE(dev_used_int_min)
{
    return used_untouched(INT_MIN);
}

/* ------------------------------------------------------------ engine.h */

static kvx_engine_params_t ep(uint64_t mask)
{
    return (kvx_engine_params_t){.field_mask = KVX_ENGINE_PARAM_FIELD_NAME | mask,
                                 .name = "127.0.0.1"};
}

static kvx_status_t create_case(const kvx_engine_params_t *p)
{
    kvx_engine_h e = (kvx_engine_h)SENT_PTR;
    kvx_status_t st = kvx_engine_create(p, &e);
    if (st == KVX_OK) {
        kvx_engine_destroy(e);
    } else {
        CHECK(e == (kvx_engine_h)SENT_PTR, "engine_p written on failure");
    }
    return st;
}

static kvx_status_t create_named(const char *name)
{
    kvx_engine_params_t p = ep(0);
    p.name = name;
    return create_case(&p);
}

static kvx_status_t create_u32(uint64_t bit, unsigned value)
{
    kvx_engine_params_t p = ep(bit);
    p.io_threads = p.connect_timeout_ms = p.transfer_timeout_ms = p.notify_timeout_ms = value;
    p.max_outstanding = p.max_notify_queue = p.busy_poll_us = p.peer_timeout_ms = value;
    return create_case(&p);
}

static kvx_status_t create_secret(const void *secret, size_t len)
{
    kvx_engine_params_t p = ep(KVX_ENGINE_PARAM_FIELD_AUTH_SECRET);
    p.auth_secret = secret;
    p.auth_secret_len = len;
    return create_case(&p);
}

static const char SECRET[2048] = "0123456789abcdef0123456789abcdef";

CASE(engine_create_null_params)
{
    kvx_engine_h e = (kvx_engine_h)SENT_PTR;
    kvx_status_t st = kvx_engine_create(NULL, &e);
    CHECK(e == (kvx_engine_h)SENT_PTR, "engine_p written on failure");
    return st;
}

CASE(engine_create_null_out)
{
    kvx_engine_params_t p = ep(0);
    return kvx_engine_create(&p, NULL);
}

CASE(engine_create_no_name_bit)
{
    kvx_engine_params_t p = ep(0);
    p.field_mask = 0;
    return create_case(&p);
}

CASE(engine_create_name_null)
{
    return create_named(NULL);
}

CASE(engine_create_next_bit)
{
    return create_case(&(kvx_engine_params_t){
        .field_mask = KVX_ENGINE_PARAM_FIELD_NAME | ENGINE_NEXT_BIT, .name = "127.0.0.1"});
}

CASE(engine_create_bit63)
{
    return create_case(&(kvx_engine_params_t){
        .field_mask = KVX_ENGINE_PARAM_FIELD_NAME | KVX_BIT(63), .name = "127.0.0.1"});
}

CASE(engine_create_name_empty)
{
    return create_named("");
}

CASE(engine_create_name_too_long)
{
    char name[KVX_ENGINE_NAME_MAX + 1];
    memset(name, '1', KVX_ENGINE_NAME_MAX);
    name[KVX_ENGINE_NAME_MAX] = '\0';
    kvx_status_t st = create_named(name);
    CHECK(strstr(kvx_last_error(), "longer than") != NULL, "detail '%s'", kvx_last_error());
    return st;
}

CASE(engine_create_name_unterminated)
{
    /* KVX_ENGINE_NAME_MAX bytes and no NUL: refused without reading on. */
    char *name = malloc(KVX_ENGINE_NAME_MAX);
    assert_non_null(name);
    memset(name, '7', KVX_ENGINE_NAME_MAX);
    kvx_status_t st = create_named(name);
    free(name);
    return st;
}

CASE(engine_create_ip_octet_256)
{
    return create_named("256.0.0.1:0");
}

CASE(engine_create_ip_three_octets)
{
    return create_named("127.0.1");
}

CASE(engine_create_host_name)
{
    return create_named("localhost:0");
}

CASE(engine_create_port_65536)
{
    return create_named("127.0.0.1:65536");
}

CASE(engine_create_port_negative)
{
    return create_named("127.0.0.1:-1");
}

CASE(engine_create_ipv6_unbracketed)
{
    return create_named("::1");
}

CASE(engine_create_ipv6_unterminated)
{
    return create_named("[::1:0");
}

CASE(engine_create_ipv4_in_brackets)
{
    return create_named("[127.0.0.1]:0");
}

CASE(engine_create_io_threads_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_IO_THREADS, 0);
}

CASE(engine_create_io_threads_65)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_IO_THREADS, 65);
}

CASE(engine_create_io_threads_uint_max)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_IO_THREADS, UINT_MAX);
}

CASE(engine_create_connect_timeout_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_CONNECT_TIMEOUT, 0);
}

CASE(engine_create_connect_timeout_over_1h)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_CONNECT_TIMEOUT, 3600001);
}

CASE(engine_create_transfer_timeout_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT, 0);
}

CASE(engine_create_transfer_timeout_uint_max)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_TRANSFER_TIMEOUT, UINT_MAX);
}

CASE(engine_create_notify_timeout_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_NOTIFY_TIMEOUT, 0);
}

CASE(engine_create_max_outstanding_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING, 0);
}

CASE(engine_create_max_outstanding_huge)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_MAX_OUTSTANDING, (1u << 20) + 1);
}

CASE(engine_create_max_notify_queue_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_MAX_NOTIFY_QUEUE, 0);
}

CASE(engine_create_max_notify_queue_uint_max)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_MAX_NOTIFY_QUEUE, UINT_MAX);
}

CASE(engine_create_busy_poll_10001)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_BUSY_POLL, 10001);
}

CASE(engine_create_busy_poll_uint_max)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_BUSY_POLL, UINT_MAX);
}

CASE(engine_create_peer_timeout_0)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT, 0);
}

CASE(engine_create_peer_timeout_99)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT, 99);
}

CASE(engine_create_peer_timeout_499)
{
    /* engine.h: 500..3600000 ms */
    return create_u32(KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT, 499);
}

CASE(engine_create_peer_timeout_over_1h)
{
    return create_u32(KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT, 3600001);
}

CASE(engine_create_secret_null)
{
    return create_secret(NULL, 32);
}

CASE(engine_create_secret_empty)
{
    return create_secret(SECRET, 0);
}

CASE(engine_create_secret_15)
{
    return create_secret(SECRET, 15);
}

CASE(engine_create_secret_1025)
{
    return create_secret(SECRET, 1025);
}

CASE(engine_create_secret_size_max)
{
    return create_secret(SECRET, SIZE_MAX);
}

CASE(engine_create_port_in_use)
{
    return create_named(c->s_name);
}

CASE(engine_destroy_null)
{
    kvx_engine_destroy(NULL);
    return KVX_OK;
}

CASE(engine_name_null)
{
    const char *n = kvx_engine_name(NULL);
    CHECK(n != NULL && n[0] == '\0', "name '%s'", n ? n : "(null)");
    return KVX_OK;
}

/* kvx_mem_register */

#define MEM_AL (KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH)

static kvx_status_t mreg_case(kvx_engine_h e, const kvx_mem_params_t *p)
{
    kvx_mem_h h = (kvx_mem_h)SENT_PTR;
    kvx_status_t st = kvx_mem_register(e, p, &h);
    if (st == KVX_OK) {
        kvx_mem_deregister(e, h);
    } else {
        CHECK(h == (kvx_mem_h)SENT_PTR, "mem_p written on failure");
    }
    return st;
}

static kvx_status_t mreg(void *addr, size_t len, uint64_t extra, kvx_mem_type_t type,
                         kvx_mem_access_t access, uint64_t tag)
{
    kvx_mem_params_t p = {.field_mask = MEM_AL | extra,
                          .address = addr,
                          .length = len,
                          .mem_type = type,
                          .access = access,
                          .tag = tag};
    return mreg_case(g_ctx.c, &p);
}

CASE(mem_register_null_engine)
{
    kvx_mem_params_t p = {.field_mask = MEM_AL, .address = c->tmp, .length = 64};
    return mreg_case(NULL, &p);
}

CASE(mem_register_null_params)
{
    return mreg_case(c->c, NULL);
}

CASE(mem_register_null_out)
{
    kvx_mem_params_t p = {.field_mask = MEM_AL, .address = c->tmp, .length = 64};
    return kvx_mem_register(c->c, &p, NULL);
}

CASE(mem_register_next_bit)
{
    return mreg(c->tmp, 64, MEM_NEXT_BIT, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_bit63)
{
    return mreg(c->tmp, 64, KVX_BIT(63), KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_no_address_bit)
{
    kvx_mem_params_t p = {
        .field_mask = KVX_MEM_PARAM_FIELD_LENGTH, .address = c->tmp, .length = 64};
    return mreg_case(c->c, &p);
}

CASE(mem_register_no_length_bit)
{
    kvx_mem_params_t p = {
        .field_mask = KVX_MEM_PARAM_FIELD_ADDRESS, .address = c->tmp, .length = 64};
    return mreg_case(c->c, &p);
}

CASE(mem_register_address_null)
{
    return mreg(NULL, 64, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_length_zero)
{
    return mreg(c->tmp, 0, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_wraps)
{
    return mreg(TOP_ADDR, 64, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_length_size_max)
{
    return mreg(c->tmp, SIZE_MAX, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_type_2)
{
    return mreg(c->tmp, 64, KVX_MEM_PARAM_FIELD_TYPE, (kvx_mem_type_t)2, KVX_MEM_ACCESS_READ_WRITE,
                0);
}

CASE(mem_register_type_negative)
{
    return mreg(c->tmp, 64, KVX_MEM_PARAM_FIELD_TYPE, (kvx_mem_type_t)-1, KVX_MEM_ACCESS_READ_WRITE,
                0);
}

CASE(mem_register_access_2)
{
    return mreg(c->tmp, 64, KVX_MEM_PARAM_FIELD_ACCESS, KVX_MEM_HOST, (kvx_mem_access_t)2, 0);
}

CASE(mem_register_access_int_min)
{
    return mreg(c->tmp, 64, KVX_MEM_PARAM_FIELD_ACCESS, KVX_MEM_HOST, (kvx_mem_access_t)INT_MIN, 0);
}

CASE(mem_register_device_type_host_memory)
{
    return mreg(c->tmp, 64, KVX_MEM_PARAM_FIELD_TYPE, KVX_MEM_DEVICE, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_device_past_end)
{
    return mreg(c->dbuf, DBUF_LEN + 1, KVX_MEM_PARAM_FIELD_TYPE, KVX_MEM_DEVICE,
                KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_device_type_host_malloc)
{
    return mreg(c->hbuf, 64, KVX_MEM_PARAM_FIELD_TYPE, KVX_MEM_DEVICE, KVX_MEM_ACCESS_READ_WRITE,
                0);
}

CASE(mem_register_overlap)
{
    return mreg(c->cbuf + 8, 16, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_overlap_start)
{
    return mreg(c->cbuf - 8, 16, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE, 0);
}

CASE(mem_register_same_other_tag)
{
    return mreg(c->cbuf, BUF_LEN, KVX_MEM_PARAM_FIELD_TAG, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE,
                5);
}

CASE(mem_register_same_other_access)
{
    return mreg(c->cbuf, BUF_LEN, KVX_MEM_PARAM_FIELD_ACCESS, KVX_MEM_HOST,
                KVX_MEM_ACCESS_READ_ONLY, 0);
}

/* kvx_mem_deregister */

CASE(mem_deregister_null_engine)
{
    return kvx_mem_deregister(NULL, c->cmem);
}

CASE(mem_deregister_null_mem)
{
    return kvx_mem_deregister(c->c, NULL);
}

CASE(mem_deregister_stale)
{
    return kvx_mem_deregister(c->c, c->stale_mem);
}

CASE(mem_deregister_never_issued)
{
    return kvx_mem_deregister(c->c, (kvx_mem_h)(uintptr_t)0xdeadbeefu);
}

CASE(mem_deregister_other_engine)
{
    return kvx_mem_deregister(c->c, c->smem);
}

CASE(mem_deregister_max)
{
    return kvx_mem_deregister(c->c, (kvx_mem_h)UINTPTR_MAX);
}

/* kvx_engine_remote_mem */

static kvx_status_t rmem(kvx_engine_h e, const char *remote, int max, int timeout)
{
    kvx_remote_mem_t mems[4];
    memset(mems, 0x5e, sizeof(mems));
    size_t n = SENT_SIZE;
    kvx_status_t st = kvx_engine_remote_mem(e, remote, max < 0 ? NULL : mems,
                                            max < 0 ? 1 : (size_t)max, &n, timeout);
    if (st != KVX_OK) {
        CHECK(n == SENT_SIZE, "count_p written on failure");
        CHECK(((uint8_t *)mems)[0] == 0x5e, "mems written on failure");
    }
    return st;
}

CASE(remote_mem_null_engine)
{
    return rmem(NULL, c->s_name, 4, 1000);
}

CASE(remote_mem_null_count)
{
    kvx_remote_mem_t mems[4];
    return kvx_engine_remote_mem(c->c, c->s_name, mems, 4, NULL, 1000);
}

CASE(remote_mem_null_mems_max1)
{
    return rmem(c->c, c->s_name, -1, 1000);
}

CASE(remote_mem_null_remote)
{
    return rmem(c->c, NULL, 4, 1000);
}

CASE(remote_mem_timeout_negative)
{
    return rmem(c->c, c->s_name, 4, -1);
}

CASE(remote_mem_timeout_int_min)
{
    return rmem(c->c, c->s_name, 4, INT_MIN);
}

CASE(remote_mem_timeout_int_max)
{
    /* engine.h: timeouts over one hour are refused */
    return rmem(c->c, c->s_name, 4, INT_MAX);
}

CASE(remote_mem_never_connected)
{
    return rmem(c->c, c->o_name, 4, 1000);
}

CASE(remote_mem_nobody_there)
{
    return rmem(c->c, c->dead_name, 4, 1000);
}

CASE(remote_mem_no_port)
{
    return rmem(c->c, "127.0.0.1", 4, 1000);
}

CASE(remote_mem_port_zero)
{
    return rmem(c->c, "127.0.0.1:0", 4, 1000);
}

CASE(remote_mem_self)
{
    return rmem(c->s, c->s_name, 4, 1000);
}

CASE(remote_mem_bad_ip)
{
    return rmem(c->c, "127.0.0.256:1", 4, 1000);
}

CASE(remote_mem_count_only)
{
    /* mems may be NULL when max is 0: only the count. */
    size_t n = SENT_SIZE;
    kvx_status_t st = kvx_engine_remote_mem(c->c, c->s_name, NULL, 0, &n, 1000);
    CHECK(st != KVX_OK || n == 2, "count %zu, the server has 2 registrations", n);
    return st;
}

/* kvx_engine_connect, _async, disconnect, _async */

CASE(connect_null_engine)
{
    return kvx_engine_connect(NULL, c->s_name, 1000);
}

CASE(connect_null_remote)
{
    return kvx_engine_connect(c->c, NULL, 1000);
}

CASE(connect_timeout_negative)
{
    return kvx_engine_connect(c->o, c->s_name, -1);
}

CASE(connect_timeout_int_max)
{
    /* engine.h: over one hour is refused */
    return kvx_engine_connect(c->o, c->s_name, INT_MAX);
}

CASE(connect_no_port)
{
    return kvx_engine_connect(c->c, "127.0.0.1", 1000);
}

CASE(connect_port_zero)
{
    return kvx_engine_connect(c->c, "127.0.0.1:0", 1000);
}

CASE(connect_self)
{
    return kvx_engine_connect(c->s, c->s_name, 1000);
}

CASE(connect_bad_ip)
{
    return kvx_engine_connect(c->c, "1.2.3.4.5:80", 1000);
}

CASE(connect_host_name)
{
    return kvx_engine_connect(c->c, "localhost:80", 1000);
}

CASE(connect_name_too_long)
{
    char name[200];
    memset(name, '9', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    return kvx_engine_connect(c->c, name, 1000);
}

CASE(connect_already_connected)
{
    return kvx_engine_connect(c->c, c->s_name, 1000);
}

CASE(connect_refused)
{
    /* From the other engine: a failed attempt leaves a record there. */
    return kvx_engine_connect(c->o, c->dead_name, 2000);
}

CASE(connect_async_null_engine)
{
    return kvx_engine_connect_async(NULL, c->s_name, 1000);
}

CASE(connect_async_null_remote)
{
    return kvx_engine_connect_async(c->c, NULL, 1000);
}

CASE(connect_async_timeout_negative)
{
    return kvx_engine_connect_async(c->o, c->s_name, -5);
}

CASE(connect_async_timeout_int_max)
{
    return kvx_engine_connect_async(c->o, c->s_name, INT_MAX);
}

CASE(connect_async_no_port)
{
    return kvx_engine_connect_async(c->c, "127.0.0.1", 1000);
}

CASE(connect_async_self)
{
    return kvx_engine_connect_async(c->s, c->s_name, 1000);
}

CASE(connect_async_bad_ip)
{
    return kvx_engine_connect_async(c->c, "[::g]:80", 1000);
}

CASE(connect_async_already_connected)
{
    return kvx_engine_connect_async(c->c, c->s_name, 1000);
}

CASE(disconnect_null_engine)
{
    return kvx_engine_disconnect(NULL, c->s_name, 1000);
}

CASE(disconnect_null_remote)
{
    return kvx_engine_disconnect(c->c, NULL, 1000);
}

CASE(disconnect_timeout_negative)
{
    /* Checked before the link is looked up: the link stays. */
    return kvx_engine_disconnect(c->c, c->s_name, -1);
}

CASE(disconnect_timeout_int_max)
{
    return kvx_engine_disconnect(c->c, c->s_name, INT_MAX);
}

CASE(disconnect_never_connected)
{
    return kvx_engine_disconnect(c->c, c->o_name, 1000);
}

CASE(disconnect_no_port)
{
    return kvx_engine_disconnect(c->c, "127.0.0.1", 1000);
}

CASE(disconnect_self)
{
    return kvx_engine_disconnect(c->s, c->s_name, 1000);
}

CASE(disconnect_bad_ip)
{
    return kvx_engine_disconnect(c->c, "", 1000);
}

CASE(disconnect_async_null_engine)
{
    return kvx_engine_disconnect_async(NULL, c->s_name, 1000);
}

CASE(disconnect_async_null_remote)
{
    return kvx_engine_disconnect_async(c->c, NULL, 1000);
}

CASE(disconnect_async_timeout_negative)
{
    return kvx_engine_disconnect_async(c->c, c->s_name, INT_MIN);
}

CASE(disconnect_async_never_connected)
{
    return kvx_engine_disconnect_async(c->c, c->o_name, 1000);
}

CASE(disconnect_async_bad_ip)
{
    return kvx_engine_disconnect_async(c->c, "127.0.0.1:99999", 1000);
}

/* kvx_engine_peer_state */

static kvx_status_t pstate(kvx_engine_h e, const char *remote, int null_state,
                           kvx_peer_state_t *state_out, kvx_status_t *err_out)
{
    kvx_peer_state_t st = (kvx_peer_state_t)SENT_INT;
    kvx_status_t er = SENT_ST;
    kvx_status_t s = kvx_engine_peer_state(e, remote, null_state ? NULL : &st, &er);
    if (s != KVX_OK) {
        CHECK(st == (kvx_peer_state_t)SENT_INT && er == SENT_ST, "outputs written on failure");
    }
    if (state_out != NULL) {
        *state_out = st;
        *err_out = er;
    }
    return s;
}

CASE(peer_state_null_engine)
{
    return pstate(NULL, c->s_name, 0, NULL, NULL);
}

CASE(peer_state_null_state)
{
    return pstate(c->c, c->s_name, 1, NULL, NULL);
}

CASE(peer_state_null_remote)
{
    return pstate(c->c, NULL, 0, NULL, NULL);
}

CASE(peer_state_bad_ip)
{
    return pstate(c->c, "300.0.0.1:5", 0, NULL, NULL);
}

CASE(peer_state_no_port)
{
    return pstate(c->c, "127.0.0.1", 0, NULL, NULL);
}

CASE(peer_state_unknown_remote)
{
    kvx_peer_state_t st;
    kvx_status_t er;
    kvx_status_t s = pstate(c->c, c->o_name, 0, &st, &er);
    CHECK(st == KVX_PEER_NOT_CONNECTED && er == KVX_OK, "state %d error %s", (int)st,
          kvx_status_name(er));
    return s;
}

CASE(peer_state_null_error)
{
    kvx_peer_state_t st = (kvx_peer_state_t)SENT_INT;
    kvx_status_t s = kvx_engine_peer_state(c->c, c->s_name, &st, NULL);
    CHECK(st == KVX_PEER_CONNECTED, "state %d", (int)st);
    return s;
}

/* kvx_engine_peer_epoch */

static kvx_status_t pepoch(kvx_engine_h e, const char *remote)
{
    uint64_t ep1 = SENT_U64, inst = SENT_U64;
    kvx_status_t s = kvx_engine_peer_epoch(e, remote, &ep1, &inst);
    if (s != KVX_OK) {
        CHECK(ep1 == SENT_U64 && inst == SENT_U64, "outputs written on failure");
    }
    return s;
}

CASE(peer_epoch_null_engine)
{
    return pepoch(NULL, c->s_name);
}

CASE(peer_epoch_null_remote)
{
    return pepoch(c->c, NULL);
}

CASE(peer_epoch_never_connected)
{
    return pepoch(c->c, c->o_name);
}

CASE(peer_epoch_bad_ip)
{
    return pepoch(c->c, "1.1.1.1:x");
}

CASE(peer_epoch_self)
{
    return pepoch(c->s, c->s_name);
}

CASE(peer_epoch_null_outputs)
{
    return kvx_engine_peer_epoch(c->c, c->s_name, NULL, NULL);
}

/* kvx_engine_peers, kvx_engine_incoming_links */

CASE(peers_null_engine)
{
    kvx_peer_info_t infos[2];
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_engine_peers(NULL, infos, 2, &n);
    CHECK(n == SENT_SIZE, "count_p written on failure");
    return s;
}

CASE(peers_null_count)
{
    kvx_peer_info_t infos[2];
    return kvx_engine_peers(c->c, infos, 2, NULL);
}

CASE(peers_null_infos_max1)
{
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_engine_peers(c->c, NULL, 1, &n);
    CHECK(n == SENT_SIZE, "count_p written on failure");
    return s;
}

CASE(peers_count_only)
{
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_engine_peers(c->c, NULL, 0, &n);
    CHECK(n == 1, "count %zu, want 1", n);
    return s;
}

CASE(peers_max_huge)
{
    /* max larger than the array: only the peers that exist are written. */
    kvx_peer_info_t infos[4];
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_engine_peers(c->c, infos, SIZE_MAX, &n);
    CHECK(n == 1 && strcmp(infos[0].name, c->s_name) == 0 && infos[0].state == KVX_PEER_CONNECTED,
          "count %zu", n);
    return s;
}

CASE(incoming_links_null_engine)
{
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_engine_incoming_links(NULL, &n);
    CHECK(n == SENT_SIZE, "count_p written on failure");
    return s;
}

CASE(incoming_links_null_count)
{
    return kvx_engine_incoming_links(c->s, NULL);
}

/* kvx_xfer_sync */

static kvx_xfer_desc_t desc(void *local, uint64_t remote, size_t len)
{
    return (kvx_xfer_desc_t){.local_addr = local, .remote_addr = remote, .length = len};
}

static kvx_status_t sync1(kvx_engine_h e, const char *remote, kvx_op_t op, void *local, uint64_t r,
                          size_t len, const kvx_xfer_params_t *xp)
{
    kvx_xfer_desc_t d = desc(local, r, len);
    return kvx_xfer_sync(e, remote, op, &d, 1, xp);
}

/* A valid read from the server into the client buffer (never issued as is:
 * each case breaks one thing). */
#define GOOD_LOCAL  (c->cbuf + 4096)
#define GOOD_REMOTE raddr(c->sbuf + 4096)

CASE(xfer_sync_null_engine)
{
    return sync1(NULL, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_null_remote)
{
    return sync1(c->c, NULL, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_op_2)
{
    return sync1(c->c, c->s_name, (kvx_op_t)2, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_op_negative)
{
    return sync1(c->c, c->s_name, (kvx_op_t)-1, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_null_descs)
{
    return kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, NULL, 1, NULL);
}

CASE(xfer_sync_count_zero)
{
    kvx_xfer_desc_t d = desc(GOOD_LOCAL, GOOD_REMOTE, 64);
    return kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, &d, 0, NULL);
}

CASE(xfer_sync_count_over_max)
{
    /* Refused on the count alone, before the array is read. */
    kvx_xfer_desc_t d = desc(GOOD_LOCAL, GOOD_REMOTE, 64);
    return kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, &d, (size_t)KVX_XFER_MAX_DESCS + 1, NULL);
}

CASE(xfer_sync_count_size_max)
{
    kvx_xfer_desc_t d = desc(GOOD_LOCAL, GOOD_REMOTE, 64);
    return kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, &d, SIZE_MAX, NULL);
}

CASE(xfer_sync_local_null)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, NULL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_remote_zero)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, 0, 64, NULL);
}

CASE(xfer_sync_length_zero)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 0, NULL);
}

CASE(xfer_sync_length_size_max)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, SIZE_MAX, NULL);
}

CASE(xfer_sync_length_over_1tib)
{
    return sync1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, GOOD_REMOTE, ((size_t)1 << 40) + 1,
                 NULL);
}

CASE(xfer_sync_local_wraps)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, TOP_ADDR, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_local_unregistered)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, c->tmp, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_local_device_unregistered)
{
    return sync1(c->c, c->s_name, KVX_OP_WRITE, c->dbuf, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_local_past_end)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, c->cbuf + BUF_LEN - 8, GOOD_REMOTE, 16, NULL);
}

CASE(xfer_sync_local_deregistered)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, c->stale_buf, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_remote_unregistered)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, raddr(c->tmp), 64, NULL);
}

CASE(xfer_sync_remote_past_end)
{
    /* The server's read-write region ends where its read-only one starts. */
    return sync1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, raddr(c->sro + RO_LEN - 8), 16, NULL);
}

CASE(xfer_sync_remote_wraps)
{
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, UINT64_MAX - 15, 64, NULL);
}

CASE(xfer_sync_write_read_only)
{
    return sync1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, raddr(c->sro), 64, NULL);
}

CASE(xfer_sync_remote_tag_wrong)
{
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_REMOTE_TAG,
                            .remote_tag = SERVER_TAG + 100};
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_sync_second_desc_bad)
{
    /* A WRITE whose second descriptor is refused moves no byte at all. */
    kvx_xfer_desc_t d[2] = {desc(GOOD_LOCAL, GOOD_REMOTE, 4096),
                            desc(GOOD_LOCAL, raddr(c->tmp), 64)};
    return kvx_xfer_sync(c->c, c->s_name, KVX_OP_WRITE, d, 2, NULL);
}

CASE(xfer_sync_next_bit)
{
    kvx_xfer_params_t xp = {.field_mask = XFER_NEXT_BIT};
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_sync_timeout_negative)
{
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = -1};
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_sync_timeout_int_max)
{
    /* engine.h: over one hour is refused */
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = INT_MAX};
    return sync1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_sync_never_connected)
{
    return sync1(c->c, c->o_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_bad_remote)
{
    return sync1(c->c, "127.0.0.1", KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_sync_self)
{
    return sync1(c->s, c->s_name, KVX_OP_READ, c->sbuf, GOOD_REMOTE, 64, NULL);
}

/* kvx_xfer_submit */

static kvx_status_t submit1(kvx_engine_h e, const char *remote, kvx_op_t op, void *local,
                            uint64_t r, size_t len, const kvx_xfer_params_t *xp)
{
    kvx_xfer_desc_t d = desc(local, r, len);
    kvx_xfer_id_t id = SENT_U64;
    kvx_status_t st = kvx_xfer_submit(e, remote, op, &d, 1, xp, &id);
    if (st == KVX_OK) {
        kvx_xfer_state_t s;
        kvx_xfer_wait(e, id, 5000, &s, NULL);
    } else {
        CHECK(id == SENT_U64, "id_p written on failure");
    }
    return st;
}

CASE(xfer_submit_null_engine)
{
    return submit1(NULL, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_submit_null_id)
{
    kvx_xfer_desc_t d = desc(GOOD_LOCAL, GOOD_REMOTE, 64);
    return kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL, NULL);
}

CASE(xfer_submit_null_remote)
{
    return submit1(c->c, NULL, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_submit_op_2)
{
    return submit1(c->c, c->s_name, (kvx_op_t)2, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_submit_null_descs)
{
    kvx_xfer_id_t id = SENT_U64;
    kvx_status_t st = kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, NULL, 1, NULL, &id);
    CHECK(id == SENT_U64, "id_p written on failure");
    return st;
}

CASE(xfer_submit_count_size_max)
{
    kvx_xfer_desc_t d = desc(GOOD_LOCAL, GOOD_REMOTE, 64);
    kvx_xfer_id_t id = SENT_U64;
    kvx_status_t st = kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, SIZE_MAX, NULL, &id);
    CHECK(id == SENT_U64, "id_p written on failure");
    return st;
}

CASE(xfer_submit_length_zero)
{
    return submit1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 0, NULL);
}

CASE(xfer_submit_length_size_max)
{
    return submit1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, GOOD_REMOTE, SIZE_MAX, NULL);
}

CASE(xfer_submit_local_unregistered)
{
    return submit1(c->c, c->s_name, KVX_OP_READ, c->tmp, GOOD_REMOTE, 64, NULL);
}

CASE(xfer_submit_remote_unregistered)
{
    return submit1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, raddr(c->tmp), 64, NULL);
}

CASE(xfer_submit_write_read_only)
{
    return submit1(c->c, c->s_name, KVX_OP_WRITE, GOOD_LOCAL, raddr(c->sro), 64, NULL);
}

CASE(xfer_submit_bit63)
{
    kvx_xfer_params_t xp = {.field_mask = KVX_BIT(63)};
    return submit1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_submit_timeout_negative)
{
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = INT_MIN};
    return submit1(c->c, c->s_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, &xp);
}

CASE(xfer_submit_never_connected)
{
    return submit1(c->c, c->o_name, KVX_OP_READ, GOOD_LOCAL, GOOD_REMOTE, 64, NULL);
}

static void reap_pending(ctx_t *c)
{
    for (size_t i = 0; i < c->npend; i++) {
        kvx_xfer_state_t s = KVX_XFER_WAITING;
        CHECK(kvx_xfer_wait(c->c, c->pend[i], 5000, &s, NULL) == KVX_OK && s == KVX_XFER_COMPLETED,
              "transfer %zu state %d", i, (int)s);
    }
    c->npend = 0;
}

CASE(xfer_submit_exhausted)
{
    /* live_id holds one of the client's MAX_OUT slots; fill the rest with
     * reads that copy what the setup copied to the same place. They are
     * reaped after the row's checks (reap_pending). */
    kvx_status_t st = KVX_OK;
    kvx_xfer_desc_t d = desc(c->cbuf + SCRATCH, raddr(c->sbuf), 64);
    c->after = reap_pending;
    while (c->npend < MAX_OUT && st == KVX_OK) {
        kvx_xfer_id_t id = SENT_U64;
        st = kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL, &id);
        if (st == KVX_OK) {
            c->pend[c->npend++] = id;
        } else {
            CHECK(id == SENT_U64, "id_p written on failure");
        }
    }
    CHECK(c->npend == MAX_OUT - 1, "%zu submitted before the table was full", c->npend);
    return st;
}

/* kvx_xfer_status, kvx_xfer_wait */

static kvx_status_t xstatus(kvx_engine_h e, kvx_xfer_id_t id, int use_wait, int timeout,
                            int null_state)
{
    kvx_xfer_state_t st = SENT_STATE;
    kvx_status_t er = SENT_ST;
    kvx_status_t s = use_wait ? kvx_xfer_wait(e, id, timeout, null_state ? NULL : &st, &er)
                              : kvx_xfer_status(e, id, null_state ? NULL : &st, &er);
    if (s != KVX_OK) {
        /* engine.h: on NOT_FOUND the state is set to KVX_XFER_FAILED;
         * untouched is accepted as well. */
        CHECK(st == SENT_STATE || (s == KVX_ERR_NOT_FOUND && st == KVX_XFER_FAILED),
              "state_p set to %d on failure", (int)st);
        CHECK(er == SENT_ST, "error_p set to %s on failure", kvx_status_name(er));
    }
    return s;
}

#define NEVER_ISSUED ((5ull << 32) | 3u)

CASE(xfer_status_null_engine)
{
    return xstatus(NULL, c->live_id, 0, 0, 0);
}

CASE(xfer_status_null_state)
{
    return xstatus(c->c, c->live_id, 0, 0, 1);
}

CASE(xfer_status_id_zero)
{
    return xstatus(c->c, 0, 0, 0, 0);
}

CASE(xfer_status_never_issued)
{
    return xstatus(c->c, NEVER_ISSUED, 0, 0, 0);
}

CASE(xfer_status_id_max)
{
    return xstatus(c->c, UINT64_MAX, 0, 0, 0);
}

CASE(xfer_status_slot_out_of_range)
{
    return xstatus(c->c, (1ull << 32) | MAX_OUT, 0, 0, 0);
}

CASE(xfer_status_generation_zero)
{
    return xstatus(c->c, (uint32_t)c->live_id, 0, 0, 0);
}

CASE(xfer_status_already_reported)
{
    return xstatus(c->c, c->reported_id, 0, 0, 0);
}

CASE(xfer_status_other_engine)
{
    /* The client's id asked of the server, which has no transfer. */
    return xstatus(c->s, c->live_id, 0, 0, 0);
}

CASE(xfer_wait_null_engine)
{
    return xstatus(NULL, c->live_id, 1, 10, 0);
}

CASE(xfer_wait_null_state)
{
    return xstatus(c->c, c->live_id, 1, 10, 1);
}

CASE(xfer_wait_timeout_negative)
{
    return xstatus(c->c, c->live_id, 1, -1, 0);
}

CASE(xfer_wait_timeout_int_min)
{
    return xstatus(c->c, c->live_id, 1, INT_MIN, 0);
}

CASE(xfer_wait_already_reported)
{
    return xstatus(c->c, c->reported_id, 1, 1000, 0);
}

CASE(xfer_wait_never_issued)
{
    return xstatus(c->c, NEVER_ISSUED, 1, INT_MAX, 0);
}

CASE(xfer_wait_other_engine)
{
    return xstatus(c->o, c->live_id, 1, 1000, 0);
}

/* kvx_xfer_cancel */

CASE(xfer_cancel_null_engine)
{
    return kvx_xfer_cancel(NULL, c->live_id, 1000);
}

CASE(xfer_cancel_unknown_id)
{
    return kvx_xfer_cancel(c->c, NEVER_ISSUED, 1000);
}

CASE(xfer_cancel_id_zero)
{
    return kvx_xfer_cancel(c->c, 0, 1000);
}

CASE(xfer_cancel_timeout_negative)
{
    return kvx_xfer_cancel(c->c, c->live_id, -1);
}

CASE(xfer_cancel_timeout_int_min)
{
    return kvx_xfer_cancel(c->c, c->live_id, INT_MIN);
}

CASE(xfer_cancel_timeout_int_max)
{
    /* engine.h: over one hour is refused */
    return kvx_xfer_cancel(c->c, c->live_id, INT_MAX);
}

CASE(xfer_cancel_already_reported)
{
    return kvx_xfer_cancel(c->c, c->reported_id, 1000);
}

CASE(xfer_cancel_other_engine)
{
    return kvx_xfer_cancel(c->s, c->live_id, 1000);
}

CASE(xfer_cancel_finished_unreported)
{
    /* It finished first: KVX_OK, and it keeps its state (checked after the
     * table, where live_id is reported COMPLETED). */
    return kvx_xfer_cancel(c->c, c->live_id, 1000);
}

/* kvx_xfer_query */

static kvx_status_t xquery(kvx_engine_h e, int null_results, size_t max, int null_count,
                           uint64_t flags)
{
    kvx_xfer_result_t res[2];
    memset(res, 0x5e, sizeof(res));
    size_t n = SENT_SIZE;
    kvx_status_t s =
        kvx_xfer_query(e, null_results ? NULL : res, max, null_count ? NULL : &n, flags);
    if (s != KVX_OK) {
        CHECK(n == SENT_SIZE, "count_p written on failure");
        CHECK(((uint8_t *)res)[0] == 0x5e, "results written on failure");
    }
    return s;
}

CASE(xfer_query_null_engine)
{
    return xquery(NULL, 0, 2, 0, 0);
}

CASE(xfer_query_null_count)
{
    return xquery(c->c, 0, 2, 1, 0);
}

CASE(xfer_query_null_results_max1)
{
    return xquery(c->c, 1, 1, 0, 0);
}

CASE(xfer_query_unknown_flag)
{
    /* Refused before anything is reported: live_id is not released. */
    return xquery(c->c, 0, 2, 0, KVX_BIT(1));
}

CASE(xfer_query_flag63)
{
    return xquery(c->c, 0, 2, 0, KVX_BIT(63) | KVX_XFER_QUERY_SKIP_WAITING);
}

CASE(xfer_query_max_zero)
{
    /* Nothing reported, nothing released. */
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_xfer_query(c->c, NULL, 0, &n, 0);
    CHECK(n == 0, "count %zu", n);
    return s;
}

/* kvx_notify_send */

static kvx_status_t nsend(kvx_engine_h e, const char *remote, const char *name, const void *msg,
                          size_t len, int timeout)
{
    return kvx_notify_send(e, remote, name, msg, len, timeout);
}

static const char *longstr(size_t len)
{
    return g_long + sizeof(g_long) - 1 - len;
}

CASE(notify_send_null_engine)
{
    return nsend(NULL, c->s_name, "n", "m", 1, 1000);
}

CASE(notify_send_null_remote)
{
    return nsend(c->c, NULL, "n", "m", 1, 1000);
}

CASE(notify_send_null_name)
{
    return nsend(c->c, c->s_name, NULL, "m", 1, 1000);
}

CASE(notify_send_null_msg_len1)
{
    return nsend(c->c, c->s_name, "n", NULL, 1, 1000);
}

CASE(notify_send_name_too_long)
{
    return nsend(c->c, c->s_name, longstr(KVX_NOTIFY_NAME_MAX + 1), "m", 1, 1000);
}

CASE(notify_send_name_unterminated)
{
    /* KVX_NOTIFY_NAME_MAX + 1 bytes and no NUL: refused without reading on. */
    char *name = malloc(KVX_NOTIFY_NAME_MAX + 1);
    assert_non_null(name);
    memset(name, 'u', KVX_NOTIFY_NAME_MAX + 1);
    kvx_status_t st = nsend(c->c, c->s_name, name, "m", 1, 1000);
    free(name);
    return st;
}

CASE(notify_send_msg_too_long)
{
    return nsend(c->c, c->s_name, "n", longstr(KVX_NOTIFY_MSG_MAX + 1), KVX_NOTIFY_MSG_MAX + 1,
                 1000);
}

CASE(notify_send_msg_len_size_max)
{
    return nsend(c->c, c->s_name, "n", "m", SIZE_MAX, 1000);
}

CASE(notify_send_timeout_negative)
{
    return nsend(c->c, c->s_name, "n", "m", 1, -1);
}

CASE(notify_send_timeout_int_max)
{
    /* engine.h: over one hour is refused */
    return nsend(c->c, c->s_name, "n", "m", 1, INT_MAX);
}

CASE(notify_send_never_connected)
{
    return nsend(c->c, c->o_name, "n", "m", 1, 1000);
}

CASE(notify_send_bad_remote)
{
    return nsend(c->c, "[::1]:", "n", "m", 1, 1000);
}

CASE(notify_send_self)
{
    return nsend(c->s, c->s_name, "n", "m", 1, 1000);
}

CASE(notify_send_at_limits)
{
    /* The longest name and message are fine, and arrive whole. */
    kvx_status_t st = nsend(c->c, c->s_name, longstr(KVX_NOTIFY_NAME_MAX),
                            longstr(KVX_NOTIFY_MSG_MAX), KVX_NOTIFY_MSG_MAX, 1000);
    kvx_notification_t *list = NULL;
    size_t n = 0;
    CHECK(kvx_notify_fetch(c->s, &list, &n) == KVX_OK && n == 1, "%zu notifications", n);
    if (n == 1) {
        CHECK(strlen(list[0].name) == KVX_NOTIFY_NAME_MAX && list[0].msg_len == KVX_NOTIFY_MSG_MAX,
              "name %zu, message %zu bytes", strlen(list[0].name), list[0].msg_len);
    }
    kvx_notify_free(list, n);
    return st;
}

/* kvx_notify_fetch, kvx_notify_wait, kvx_notify_free */

CASE(notify_fetch_null_engine)
{
    kvx_notification_t *list = SENT_PTR;
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_notify_fetch(NULL, &list, &n);
    CHECK(list == SENT_PTR && n == SENT_SIZE, "outputs written on failure");
    return s;
}

CASE(notify_fetch_null_list)
{
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_notify_fetch(c->s, NULL, &n);
    CHECK(n == SENT_SIZE, "count_p written on failure");
    return s;
}

CASE(notify_fetch_null_count)
{
    kvx_notification_t *list = SENT_PTR;
    kvx_status_t s = kvx_notify_fetch(c->s, &list, NULL);
    CHECK(list == SENT_PTR, "list_p written on failure");
    return s;
}

CASE(notify_fetch_empty)
{
    kvx_notification_t *list = SENT_PTR;
    size_t n = SENT_SIZE;
    kvx_status_t s = kvx_notify_fetch(c->s, &list, &n);
    CHECK(list == NULL && n == 0, "list %p, count %zu for an empty queue", (void *)list, n);
    return s;
}

CASE(notify_wait_null_engine)
{
    return kvx_notify_wait(NULL, 10);
}

CASE(notify_wait_timeout_negative)
{
    return kvx_notify_wait(c->s, -1);
}

CASE(notify_wait_timeout_int_min)
{
    return kvx_notify_wait(c->s, INT_MIN);
}

CASE(notify_wait_empty)
{
    return kvx_notify_wait(c->s, 1);
}

CASE(notify_free_null_list)
{
    kvx_notify_free(NULL, 5);
    kvx_notify_free(NULL, SIZE_MAX);
    kvx_notify_free(NULL, 0);
    return KVX_OK;
}

/* kvx_capability */

static kvx_status_t capability(int feature, int want_supported)
{
    int v = SENT_INT;
    kvx_status_t s = kvx_capability(feature, &v);
    if (s != KVX_OK) {
        CHECK(v == SENT_INT, "supported_p written on failure");
    } else {
        CHECK(v == want_supported, "feature %d supported %d", feature, v);
    }
    return s;
}

CASE(capability_negative)
{
    return capability(-1, 0);
}

CASE(capability_int_min)
{
    return capability(INT_MIN, 0);
}

CASE(capability_null_out)
{
    return kvx_capability(KVX_FEATURE_IPV6, NULL);
}

CASE(capability_unknown_9)
{
    return capability(KVX_FEATURE_LIVE_MEM_TABLE + 1, 0);
}

CASE(capability_int_max)
{
    return capability(INT_MAX, 0);
}

CASE(capability_auto_connect)
{
    return capability(KVX_FEATURE_AUTO_CONNECT, 0);
}

/* ------------------------------------------------------------ kv.h */

CASE(dtype_size_unknown)
{
    const int bad[] = {0, KVX_DTYPE_FP8_E5M2 + 1, -1, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = kvx_dtype_size((kvx_dtype_t)bad[i]);
        CHECK(n == 0, "dtype %d has size %zu", bad[i], n);
    }
    return KVX_OK;
}

/* kvx_kv_create */

static kvx_kv_params_t kp(uint64_t mask)
{
    return (kvx_kv_params_t){.field_mask =
                                 KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_LOCAL_IP | mask,
                             .cluster_id = 9,
                             .local_ip = "127.0.0.1"};
}

static kvx_status_t kv_create_case(const kvx_kv_params_t *p)
{
    kvx_kv_h kv = (kvx_kv_h)SENT_PTR;
    kvx_status_t st = kvx_kv_create(p, &kv);
    if (st == KVX_OK) {
        kvx_kv_destroy(kv);
    } else {
        CHECK(kv == (kvx_kv_h)SENT_PTR, "kv_p written on failure");
    }
    return st;
}

static kvx_status_t kv_listen(const char *listen)
{
    kvx_kv_params_t p = kp(KVX_KV_PARAM_FIELD_LISTEN);
    p.listen = listen;
    return kv_create_case(&p);
}

static kvx_status_t kv_local_ip(const char *ip)
{
    kvx_kv_params_t p = kp(0);
    p.local_ip = ip;
    return kv_create_case(&p);
}

static kvx_status_t kv_u(uint64_t bit, unsigned value)
{
    kvx_kv_params_t p = kp(bit);
    p.sync_timeout_ms = p.io_threads = p.busy_poll_us = p.peer_timeout_ms = value;
    return kv_create_case(&p);
}

static kvx_status_t kv_int(uint64_t bit, int value)
{
    kvx_kv_params_t p = kp(bit);
    p.device_id = value;
    p.role = (kvx_kv_role_t)value;
    return kv_create_case(&p);
}

static kvx_status_t kv_size(uint64_t bit, unsigned count, size_t size)
{
    kvx_kv_params_t p = kp(bit);
    p.table_capacity = size;
    p.staging_buffers = count;
    p.staging_buffer_size = size;
    return kv_create_case(&p);
}

static kvx_status_t kv_secret(const void *secret, size_t len)
{
    kvx_kv_params_t p = kp(KVX_KV_PARAM_FIELD_AUTH_SECRET);
    p.auth_secret = secret;
    p.auth_secret_len = len;
    return kv_create_case(&p);
}

CASE(kv_create_null_params)
{
    kvx_kv_h kv = (kvx_kv_h)SENT_PTR;
    kvx_status_t st = kvx_kv_create(NULL, &kv);
    CHECK(kv == (kvx_kv_h)SENT_PTR, "kv_p written on failure");
    return st;
}

CASE(kv_create_null_out)
{
    kvx_kv_params_t p = kp(0);
    return kvx_kv_create(&p, NULL);
}

CASE(kv_create_next_bit)
{
    kvx_kv_params_t p = kp(KV_NEXT_BIT);
    return kv_create_case(&p);
}

CASE(kv_create_bit63)
{
    kvx_kv_params_t p = kp(KVX_BIT(63));
    return kv_create_case(&p);
}

CASE(kv_create_no_cluster_bit)
{
    kvx_kv_params_t p = kp(0);
    p.field_mask &= ~(uint64_t)KVX_KV_PARAM_FIELD_CLUSTER_ID;
    return kv_create_case(&p);
}

CASE(kv_create_role_0)
{
    return kv_int(KVX_KV_PARAM_FIELD_ROLE, 0);
}

CASE(kv_create_role_4)
{
    return kv_int(KVX_KV_PARAM_FIELD_ROLE, 4);
}

CASE(kv_create_role_int_min)
{
    return kv_int(KVX_KV_PARAM_FIELD_ROLE, INT_MIN);
}

CASE(kv_create_listen_null)
{
    return kv_listen(NULL);
}

CASE(kv_create_listen_bad_port)
{
    return kv_listen("127.0.0.1:abc");
}

CASE(kv_create_listen_bad_ip)
{
    return kv_listen("127.0.0.1.1:0");
}

CASE(kv_create_listen_too_long)
{
    char name[KVX_ENGINE_NAME_MAX + 8];
    memset(name, '2', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    return kv_listen(name);
}

CASE(kv_create_listen_port_in_use)
{
    return kv_listen(c->p_name);
}

CASE(kv_create_listen_no_port)
{
    /* kv.h asks for "ip:port". */
    kvx_kv_params_t p = kp(KVX_KV_PARAM_FIELD_LISTEN);
    p.listen = "127.0.0.1";
    kvx_kv_h kv = NULL;
    kvx_status_t st = kvx_kv_create(&p, &kv);
    if (st == KVX_OK) {
        CHECK(strchr(kvx_kv_listen_name(kv), ':') == NULL, "listens at %s", kvx_kv_listen_name(kv));
        kvx_kv_destroy(kv);
    }
    return st;
}

CASE(kv_create_local_ip_with_port)
{
    /* local_ip is the "ip" of a non-listening instance (kv.h). */
    kvx_kv_params_t p = kp(0);
    p.local_ip = "127.0.0.1:0";
    kvx_kv_h kv = NULL;
    kvx_status_t st = kvx_kv_create(&p, &kv);
    if (st == KVX_OK) {
        CHECK(strchr(kvx_kv_listen_name(kv), ':') != NULL, "does not listen: %s",
              kvx_kv_listen_name(kv));
        kvx_kv_destroy(kv);
    }
    return st;
}

CASE(kv_create_local_ip_null)
{
    return kv_local_ip(NULL);
}

CASE(kv_create_local_ip_too_long)
{
    return kv_local_ip(longstr(KVX_ENGINE_NAME_MAX));
}

CASE(kv_create_local_ip_bad)
{
    return kv_local_ip("127.0.0.1x");
}

CASE(kv_create_device_negative)
{
    return kv_int(KVX_KV_PARAM_FIELD_DEVICE_ID, -1);
}

CASE(kv_create_device_count)
{
    int n = 0;
    OKS(kvx_device_count(&n));
    return kv_int(KVX_KV_PARAM_FIELD_DEVICE_ID, n);
}

CASE(kv_create_device_int_max)
{
    return kv_int(KVX_KV_PARAM_FIELD_DEVICE_ID, INT_MAX);
}

CASE(kv_create_table_capacity_0)
{
    return kv_size(KVX_KV_PARAM_FIELD_TABLE_CAPACITY, 0, 0);
}

CASE(kv_create_table_capacity_4095)
{
    return kv_size(KVX_KV_PARAM_FIELD_TABLE_CAPACITY, 0, 4095);
}

CASE(kv_create_table_capacity_over_64m)
{
    return kv_size(KVX_KV_PARAM_FIELD_TABLE_CAPACITY, 0, (64u << 20) + 1);
}

CASE(kv_create_table_capacity_size_max)
{
    return kv_size(KVX_KV_PARAM_FIELD_TABLE_CAPACITY, 0, SIZE_MAX);
}

CASE(kv_create_staging_count_no_size)
{
    return kv_size(KVX_KV_PARAM_FIELD_STAGING_POOL, 1, 0);
}

CASE(kv_create_staging_size_no_count)
{
    return kv_size(KVX_KV_PARAM_FIELD_STAGING_POOL, 0, 4096);
}

CASE(kv_create_staging_count_1025)
{
    return kv_size(KVX_KV_PARAM_FIELD_STAGING_POOL, 1025, 4096);
}

CASE(kv_create_sync_timeout_0)
{
    return kv_u(KVX_KV_PARAM_FIELD_SYNC_TIMEOUT, 0);
}

CASE(kv_create_sync_timeout_over_1h)
{
    return kv_u(KVX_KV_PARAM_FIELD_SYNC_TIMEOUT, 3600001);
}

CASE(kv_create_sync_timeout_uint_max)
{
    return kv_u(KVX_KV_PARAM_FIELD_SYNC_TIMEOUT, UINT_MAX);
}

CASE(kv_create_io_threads_0)
{
    return kv_u(KVX_KV_PARAM_FIELD_IO_THREADS, 0);
}

CASE(kv_create_io_threads_65)
{
    return kv_u(KVX_KV_PARAM_FIELD_IO_THREADS, 65);
}

CASE(kv_create_busy_poll_10001)
{
    return kv_u(KVX_KV_PARAM_FIELD_BUSY_POLL, 10001);
}

CASE(kv_create_peer_timeout_0)
{
    return kv_u(KVX_KV_PARAM_FIELD_PEER_TIMEOUT, 0);
}

CASE(kv_create_peer_timeout_499)
{
    /* engine.h: 500..3600000 ms */
    return kv_u(KVX_KV_PARAM_FIELD_PEER_TIMEOUT, 499);
}

CASE(kv_create_secret_null)
{
    return kv_secret(NULL, 32);
}

CASE(kv_create_secret_15)
{
    return kv_secret(SECRET, 15);
}

CASE(kv_create_secret_1025)
{
    return kv_secret(SECRET, 1025);
}

CASE(kv_create_secret_size_max)
{
    return kv_secret(SECRET, SIZE_MAX);
}

CASE(kv_destroy_null)
{
    kvx_kv_destroy(NULL);
    return KVX_OK;
}

CASE(kv_listen_name_null)
{
    const char *n = kvx_kv_listen_name(NULL);
    CHECK(n != NULL && n[0] == '\0', "name '%s'", n ? n : "(null)");
    return KVX_OK;
}

CASE(kv_cluster_id_null)
{
    CHECK(kvx_kv_cluster_id(NULL) == 0, "cluster id %llu",
          (unsigned long long)kvx_kv_cluster_id(NULL));
    return KVX_OK;
}

CASE(kv_role_null)
{
    /* kv.h does not say; kv.c answers the default role. */
    CHECK(kvx_kv_role(NULL) == KVX_KV_ROLE_MIX, "role %d", (int)kvx_kv_role(NULL));
    return KVX_OK;
}

/* kvx_kv_link, kvx_kv_unlink, kvx_kv_link_count */

#define NCL (KVX_KV_MAX_CLUSTERS_PER_CALL + 1)

/* Links @p count clusters, each @p cluster at @p remote; @p early: refused
 * before any work, so statuses stays untouched; else statuses[0] is the
 * returned status. */
static kvx_status_t klink(kvx_kv_h kv, uint64_t cluster, const char *remote, size_t count,
                          int timeout, int early, int null_clusters)
{
    kvx_kv_cluster_t cl[NCL];
    kvx_status_t sts[NCL];
    for (size_t i = 0; i < NCL; i++) {
        cl[i] = (kvx_kv_cluster_t){.remote_cluster_id = cluster, .remote = remote};
        sts[i] = SENT_ST;
    }
    kvx_status_t st = kvx_kv_link(kv, null_clusters ? NULL : cl, count, timeout, sts);
    if (early) {
        CHECK(sts[0] == SENT_ST, "statuses written by a call refused before any work");
    } else {
        CHECK(sts[0] == st, "statuses[0] %s, returned %s", kvx_status_name(sts[0]),
              kvx_status_name(st));
    }
    return st;
}

static kvx_status_t kunlink(kvx_kv_h kv, uint64_t cluster, size_t count, int timeout, int force,
                            int early, int null_clusters)
{
    kvx_kv_cluster_t cl[NCL];
    kvx_status_t sts[NCL];
    for (size_t i = 0; i < NCL; i++) {
        cl[i] = (kvx_kv_cluster_t){.remote_cluster_id = cluster, .remote = NULL};
        sts[i] = SENT_ST;
    }
    kvx_status_t st = kvx_kv_unlink(kv, null_clusters ? NULL : cl, count, timeout, force, sts);
    if (early) {
        CHECK(sts[0] == SENT_ST, "statuses written by a call refused before any work");
    } else {
        CHECK(sts[0] == st, "statuses[0] %s, returned %s", kvx_status_name(sts[0]),
              kvx_status_name(st));
    }
    return st;
}

CASE(kv_link_null_kv)
{
    return klink(NULL, 77, c->p_name, 1, LINK_MS, 1, 0);
}

CASE(kv_link_null_clusters)
{
    return klink(c->d, 77, c->p_name, 1, LINK_MS, 1, 1);
}

CASE(kv_link_zero_clusters)
{
    return klink(c->d, 77, c->p_name, 0, LINK_MS, 1, 0);
}

CASE(kv_link_17_clusters)
{
    return klink(c->d, 77, c->p_name, NCL, LINK_MS, 1, 0);
}

CASE(kv_link_size_max_clusters)
{
    return klink(c->d, 77, c->p_name, SIZE_MAX, LINK_MS, 1, 0);
}

CASE(kv_link_timeout_negative)
{
    return klink(c->d, 77, c->p_name, 1, -1, 1, 0);
}

CASE(kv_link_timeout_int_min)
{
    return klink(c->d, 77, c->p_name, 1, INT_MIN, 1, 0);
}

CASE(kv_link_remote_null)
{
    return klink(c->d, 77, NULL, 1, LINK_MS, 0, 0);
}

CASE(kv_link_already_linked)
{
    return klink(c->d, P_CLUSTER, c->p_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_already_linked_other_address)
{
    /* Checked by cluster id, before anything is connected. */
    return klink(c->d, P_CLUSTER, c->o_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_self)
{
    return klink(c->p, 77, c->p_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_bad_ip)
{
    return klink(c->d, 77, "1.2.3.4.5:6", 1, LINK_MS, 0, 0);
}

CASE(kv_link_no_port)
{
    return klink(c->d, 77, "127.0.0.1", 1, LINK_MS, 0, 0);
}

CASE(kv_link_cluster_mismatch)
{
    /* P answers as cluster 1, not 77; D's existing link to P stays. */
    return klink(c->d, 77, c->p_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_not_a_kv_instance)
{
    return klink(c->d, 77, c->o_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_nobody_listens)
{
    return klink(c->d, 77, c->dead_name, 1, LINK_MS, 0, 0);
}

CASE(kv_link_timeout_int_max)
{
    /* kv.h: over one hour is refused (the bound comes from the engine). */
    return klink(c->d, 77, c->o_name, 1, INT_MAX, 0, 0);
}

CASE(kv_unlink_null_kv)
{
    return kunlink(NULL, 77, 1, LINK_MS, 0, 1, 0);
}

CASE(kv_unlink_null_clusters)
{
    return kunlink(c->d, 77, 1, LINK_MS, 0, 1, 1);
}

CASE(kv_unlink_count_zero)
{
    return kunlink(c->d, 77, 0, LINK_MS, 0, 1, 0);
}

CASE(kv_unlink_count_17)
{
    return kunlink(c->d, 77, NCL, LINK_MS, 0, 1, 0);
}

CASE(kv_unlink_count_size_max)
{
    return kunlink(c->d, 77, SIZE_MAX, LINK_MS, 1, 1, 0);
}

CASE(kv_unlink_timeout_negative)
{
    /* Refused before the link is looked up: D stays linked to P. */
    return kunlink(c->d, P_CLUSTER, 1, -1, 0, 1, 0);
}

CASE(kv_unlink_unknown_cluster)
{
    return kunlink(c->d, 77, 1, LINK_MS, 0, 0, 0);
}

CASE(kv_unlink_own_cluster)
{
    return kunlink(c->d, D_CLUSTER, 1, LINK_MS, 0, 0, 0);
}

CASE(kv_unlink_unknown_force)
{
    return kunlink(c->d, UINT64_MAX, 1, LINK_MS, 1, 0, 0);
}

CASE(kv_link_count_null_kv)
{
    size_t out = SENT_SIZE, in = SENT_SIZE;
    kvx_status_t st = kvx_kv_link_count(NULL, &out, &in);
    CHECK(out == SENT_SIZE && in == SENT_SIZE, "outputs written on failure");
    return st;
}

CASE(kv_link_count_null_outputs)
{
    return kvx_kv_link_count(c->d, NULL, NULL);
}

CASE(kv_link_count_null_incoming)
{
    size_t out = SENT_SIZE;
    kvx_status_t st = kvx_kv_link_count(c->d, &out, NULL);
    CHECK(out == 1, "%zu outgoing links", out);
    return st;
}

/* kvx_kv_set_role */

/* A fresh instance with no link (listening if @p listen), for the calls
 * that would replace the engine of a fixture instance. */
static kvx_kv_h scratch_kv(int switch_enable)
{
    kvx_kv_params_t p = kp(KVX_KV_PARAM_FIELD_SWITCH_ROLE);
    p.switch_role_enable = switch_enable;
    kvx_kv_h kv = NULL;
    OKS(kvx_kv_create(&p, &kv));
    return kv;
}

static kvx_status_t set_role_scratch(int switch_enable, kvx_kv_role_t role, const char *listen)
{
    kvx_kv_h kv = scratch_kv(switch_enable);
    char before[KVX_ENGINE_NAME_MAX];
    snprintf(before, sizeof(before), "%s", kvx_kv_listen_name(kv));
    kvx_kv_role_t old = kvx_kv_role(kv);
    kvx_status_t st = kvx_kv_set_role(kv, role, listen);
    char detail[512];
    snprintf(detail, sizeof(detail), "%s", kvx_last_error());
    if (st != KVX_OK) {
        CHECK(strcmp(kvx_kv_listen_name(kv), before) == 0 && kvx_kv_role(kv) == old,
              "instance changed by a refused set_role: %s", kvx_kv_listen_name(kv));
    }
    kvx_kv_destroy(kv);
    return st;
}

CASE(kv_set_role_null_kv)
{
    return kvx_kv_set_role(NULL, KVX_KV_ROLE_MIX, NULL);
}

CASE(kv_set_role_role_0)
{
    return kvx_kv_set_role(c->d, (kvx_kv_role_t)0, NULL);
}

CASE(kv_set_role_role_4)
{
    return kvx_kv_set_role(c->d, (kvx_kv_role_t)4, NULL);
}

CASE(kv_set_role_role_int_min)
{
    return kvx_kv_set_role(c->p, (kvx_kv_role_t)INT_MIN, c->p_name);
}

CASE(kv_set_role_outgoing_link)
{
    return kvx_kv_set_role(c->d, KVX_KV_ROLE_PROMPT, "127.0.0.1:0");
}

CASE(kv_set_role_incoming_link)
{
    return kvx_kv_set_role(c->p, KVX_KV_ROLE_DECODER, NULL);
}

CASE(kv_set_role_listen_bad_ip)
{
    return set_role_scratch(1, KVX_KV_ROLE_PROMPT, "127.0.0:0");
}

CASE(kv_set_role_listen_too_long)
{
    return set_role_scratch(1, KVX_KV_ROLE_PROMPT, longstr(KVX_ENGINE_NAME_MAX + 10));
}

CASE(kv_set_role_listen_port_in_use)
{
    return set_role_scratch(1, KVX_KV_ROLE_PROMPT, c->p_name);
}

CASE(kv_set_role_disabled)
{
    return set_role_scratch(0, KVX_KV_ROLE_PROMPT, "127.0.0.1:0");
}

/* kvx_kv_cache_allocate, _deallocate, _register, _unregister, _tensors */

static kvx_kv_cache_desc_t good_desc(kvx_mem_type_t placement)
{
    return desc_of(4, KVX_DTYPE_FP16, placement, 3, KV_DIMS);
}

static kvx_status_t kalloc(kvx_kv_h kv, const kvx_kv_cache_desc_t *d)
{
    int64_t id = SENT_I64;
    void *addrs[KVX_KV_MAX_TENSORS];
    addrs[0] = SENT_PTR;
    kvx_status_t st = kvx_kv_cache_allocate(kv, d, &id, addrs);
    if (st == KVX_OK) {
        kvx_kv_cache_deallocate(kv, id);
    } else {
        CHECK(id == SENT_I64 && addrs[0] == SENT_PTR, "outputs written on failure");
    }
    return st;
}

static kvx_status_t kalloc_d(kvx_kv_cache_desc_t d)
{
    return kalloc(g_ctx.d, &d);
}

CASE(cache_allocate_null_kv)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    return kalloc(NULL, &d);
}

CASE(cache_allocate_null_desc)
{
    return kalloc(c->d, NULL);
}

CASE(cache_allocate_null_id)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    return kvx_kv_cache_allocate(c->d, &d, NULL, NULL);
}

CASE(cache_allocate_next_bit)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.field_mask |= CACHE_NEXT_BIT;
    return kalloc_d(d);
}

CASE(cache_allocate_bit63)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.field_mask |= KVX_BIT(63);
    return kalloc_d(d);
}

CASE(cache_allocate_no_dtype_bit)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_DTYPE;
    return kalloc_d(d);
}

CASE(cache_allocate_no_shape_bit)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_SHAPE;
    return kalloc_d(d);
}

CASE(cache_allocate_no_num_tensors_bit)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.field_mask &= ~(uint64_t)KVX_KV_CACHE_FIELD_NUM_TENSORS;
    return kalloc_d(d);
}

CASE(cache_allocate_dtype_0)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.dtype = (kvx_dtype_t)0;
    return kalloc_d(d);
}

CASE(cache_allocate_dtype_16)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    d.dtype = (kvx_dtype_t)(KVX_DTYPE_FP8_E5M2 + 1);
    return kalloc_d(d);
}

CASE(cache_allocate_dtype_negative)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    d.dtype = (kvx_dtype_t)-1;
    return kalloc_d(d);
}

CASE(cache_allocate_num_tensors_0)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.num_tensors = 0;
    return kalloc_d(d);
}

CASE(cache_allocate_num_tensors_4097)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.num_tensors = KVX_KV_MAX_TENSORS + 1;
    return kalloc_d(d);
}

CASE(cache_allocate_num_tensors_uint32_max)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    d.num_tensors = UINT32_MAX;
    return kalloc_d(d);
}

CASE(cache_allocate_ndims_0)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.ndims = 0;
    return kalloc_d(d);
}

CASE(cache_allocate_ndims_9)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.ndims = KVX_KV_MAX_DIMS + 1;
    return kalloc_d(d);
}

CASE(cache_allocate_ndims_uint32_max)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.ndims = UINT32_MAX;
    return kalloc_d(d);
}

CASE(cache_allocate_dim_zero)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.dims[1] = 0;
    return kalloc_d(d);
}

CASE(cache_allocate_dim_negative)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.dims[0] = -8;
    return kalloc_d(d);
}

CASE(cache_allocate_dim_int64_max)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.dims[2] = INT64_MAX;
    return kalloc_d(d);
}

CASE(cache_allocate_dim_int64_min)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.dims[2] = INT64_MIN;
    return kalloc_d(d);
}

CASE(cache_allocate_dims_product_overflow)
{
    /* Each dimension is small enough alone; the product overflows 64 bits. */
    const int64_t dims[4] = {1ll << 20, 1ll << 20, 1ll << 20, 1ll << 20};
    return kalloc_d(desc_of(1, KVX_DTYPE_FP64, KVX_MEM_DEVICE, 4, dims));
}

CASE(cache_allocate_placement_2)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.placement = (kvx_mem_type_t)2;
    return kalloc_d(d);
}

CASE(cache_allocate_placement_negative)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    d.placement = (kvx_mem_type_t)-1;
    return kalloc_d(d);
}

CASE(cache_allocate_huge_device)
{
    /* 2^48 bytes per tensor: the largest shape allowed, more than any
     * device holds. */
    const int64_t dims[2] = {1ll << 24, 1ll << 23};
    return kalloc_d(desc_of(2, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 2, dims));
}

CASE(cache_allocate_huge_host)
{
    const int64_t dims[2] = {1ll << 24, 1ll << 23};
    return kalloc_d(desc_of(2, KVX_DTYPE_FP16, KVX_MEM_HOST, 2, dims));
}

static kvx_status_t kdealloc(kvx_kv_h kv, int64_t id)
{
    return kvx_kv_cache_deallocate(kv, id);
}

CASE(cache_deallocate_null_kv)
{
    return kdealloc(NULL, c->d_alloc);
}

CASE(cache_deallocate_unknown)
{
    return kdealloc(c->d, 9999);
}

CASE(cache_deallocate_zero)
{
    return kdealloc(c->d, 0);
}

CASE(cache_deallocate_negative)
{
    return kdealloc(c->d, -1);
}

CASE(cache_deallocate_int64_min)
{
    return kdealloc(c->d, INT64_MIN);
}

CASE(cache_deallocate_removed)
{
    return kdealloc(c->d, c->d_removed);
}

CASE(cache_deallocate_registered)
{
    return kdealloc(c->d, c->ddst.id);
}

static kvx_status_t kreg(kvx_kv_h kv, const kvx_kv_cache_desc_t *d, void *const *addrs)
{
    int64_t id = SENT_I64;
    kvx_status_t st = kvx_kv_cache_register(kv, d, addrs, &id);
    if (st == KVX_OK) {
        kvx_kv_cache_unregister(kv, id);
    } else {
        CHECK(id == SENT_I64, "cache_id_p written on failure");
    }
    return st;
}

/* Four host tensors of the good shape (1 KiB each) in c->tmp, which no
 * engine registers. */
#define TMP_TENSORS                                                                                \
    {                                                                                              \
        c->tmp, c->tmp + 1024, c->tmp + 2048, c->tmp + 3072                                        \
    }

CASE(cache_register_null_kv)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = TMP_TENSORS;
    return kreg(NULL, &d, t);
}

CASE(cache_register_null_desc)
{
    void *t[4] = TMP_TENSORS;
    return kreg(c->d, NULL, t);
}

CASE(cache_register_null_addrs)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    return kreg(c->d, &d, NULL);
}

CASE(cache_register_null_id)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = TMP_TENSORS;
    return kvx_kv_cache_register(c->d, &d, t, NULL);
}

CASE(cache_register_null_tensor)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = TMP_TENSORS;
    t[3] = NULL;
    return kreg(c->d, &d, t);
}

CASE(cache_register_next_bit)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    d.field_mask |= CACHE_NEXT_BIT;
    void *t[4] = TMP_TENSORS;
    return kreg(c->d, &d, t);
}

CASE(cache_register_dtype_unknown)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    d.dtype = (kvx_dtype_t)99;
    void *t[4] = TMP_TENSORS;
    return kreg(c->d, &d, t);
}

CASE(cache_register_tensor_wraps)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = TMP_TENSORS;
    t[2] = TOP_ADDR;
    return kreg(c->d, &d, t);
}

CASE(cache_register_device_placement_host_memory)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_DEVICE);
    void *t[4] = TMP_TENSORS;
    return kreg(c->d, &d, t);
}

CASE(cache_register_tensors_overlap)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = {c->tmp, c->tmp + 512, c->tmp + 2048, c->tmp + 3072};
    return kreg(c->d, &d, t);
}

CASE(cache_register_memory_of_another_cache)
{
    /* The same tensors as ddst: the engine refuses the same range with
     * another tag (kv.h names no status for it). */
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    return kreg(c->d, &d, c->ddst.t);
}

CASE(cache_register_overlaps_another_cache)
{
    kvx_kv_cache_desc_t d = good_desc(KVX_MEM_HOST);
    void *t[4] = TMP_TENSORS;
    t[1] = (uint8_t *)c->ddst.t[3] + 512;
    return kreg(c->d, &d, t);
}

CASE(cache_unregister_null_kv)
{
    return kvx_kv_cache_unregister(NULL, c->ddst.id);
}

CASE(cache_unregister_unknown)
{
    return kvx_kv_cache_unregister(c->d, INT64_MAX);
}

CASE(cache_unregister_zero)
{
    return kvx_kv_cache_unregister(c->d, 0);
}

CASE(cache_unregister_removed)
{
    return kvx_kv_cache_unregister(c->d, c->d_removed);
}

CASE(cache_unregister_allocated)
{
    return kvx_kv_cache_unregister(c->d, c->d_alloc);
}

static kvx_status_t ktensors(kvx_kv_h kv, int64_t id, int null_addrs, size_t max)
{
    void *addrs[4] = {SENT_PTR, SENT_PTR, SENT_PTR, SENT_PTR};
    kvx_status_t st = kvx_kv_cache_tensors(kv, id, null_addrs ? NULL : addrs, max);
    if (st != KVX_OK) {
        CHECK(addrs[0] == SENT_PTR, "addrs written on failure");
    }
    return st;
}

CASE(cache_tensors_null_kv)
{
    return ktensors(NULL, c->ddst.id, 0, 4);
}

CASE(cache_tensors_null_addrs_max1)
{
    return ktensors(c->d, c->ddst.id, 1, 1);
}

CASE(cache_tensors_unknown)
{
    return ktensors(c->d, -5, 0, 4);
}

CASE(cache_tensors_removed)
{
    return ktensors(c->d, c->d_removed, 0, 4);
}

CASE(cache_tensors_null_addrs_max0)
{
    return ktensors(c->d, c->ddst.id, 1, 0);
}

CASE(cache_tensors_max_huge)
{
    /* max larger than the array: only num_tensors entries are written. */
    void *addrs[4] = {SENT_PTR, SENT_PTR, SENT_PTR, SENT_PTR};
    kvx_status_t st = kvx_kv_cache_tensors(c->d, c->ddst.id, addrs, SIZE_MAX);
    for (size_t i = 0; i < 4; i++) {
        CHECK(addrs[i] == c->ddst.t[i], "tensor %zu at %p, want %p", i, addrs[i],
              (void *)c->ddst.t[i]);
    }
    return st;
}

/* Pulls, pushes and copies. The valid forms: D pulls entries or blocks of
 * P's psrc into ddst, pushes dsrc into P's psrc, copies dsrc into ddst;
 * each case breaks one thing. */

static kvx_kv_remote_cache_t rc(uint64_t cluster, int64_t id, uint32_t batch)
{
    return (kvx_kv_remote_cache_t){.cluster_id = cluster, .cache_id = id, .batch_index = batch};
}

static kvx_kv_xfer_params_t xpm(uint64_t mask)
{
    return (kvx_kv_xfer_params_t){.field_mask = mask,
                                  .tensors_per_layer = 2,
                                  .src_layer_first = 0,
                                  .src_layer_last = 1,
                                  .dst_layer_first = 0,
                                  .dst_layer_last = 1,
                                  .size = 64,
                                  .timeout_ms = 5000};
}

static const uint64_t SB[2] = {0, 1}, DB[2] = {2, 3};

static kvx_status_t pullc(uint64_t cluster, int64_t rid, uint32_t rbatch, int64_t lid,
                          uint32_t lbatch, const kvx_kv_xfer_params_t *xp)
{
    kvx_kv_remote_cache_t r = rc(cluster, rid, rbatch);
    return kvx_kv_pull_cache(g_ctx.d, &r, lid, lbatch, xp);
}

CASE(pull_cache_null_kv)
{
    kvx_kv_remote_cache_t r = rc(P_CLUSTER, c->psrc.id, 0);
    return kvx_kv_pull_cache(NULL, &r, c->ddst.id, 0, NULL);
}

CASE(pull_cache_null_src)
{
    return kvx_kv_pull_cache(c->d, NULL, c->ddst.id, 0, NULL);
}

CASE(pull_cache_own_cluster)
{
    return pullc(D_CLUSTER, c->dsrc.id, 0, c->ddst.id, 0, NULL);
}

CASE(pull_cache_unknown_local)
{
    return pullc(P_CLUSTER, c->psrc.id, 0, 9999, 0, NULL);
}

CASE(pull_cache_removed_local)
{
    return pullc(P_CLUSTER, c->psrc.id, 0, c->d_removed, 0, NULL);
}

CASE(pull_cache_not_linked)
{
    return pullc(77, c->psrc.id, 0, c->ddst.id, 0, NULL);
}

CASE(pull_cache_remote_unknown)
{
    return pullc(P_CLUSTER, 9999, 0, c->ddst.id, 0, NULL);
}

CASE(pull_cache_remote_negative)
{
    return pullc(P_CLUSTER, -1, 0, c->ddst.id, 0, NULL);
}

CASE(pull_cache_local_batch_8)
{
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, KV_BLOCKS, NULL);
}

CASE(pull_cache_local_batch_uint32_max)
{
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, UINT32_MAX, NULL);
}

CASE(pull_cache_remote_batch_uint32_max)
{
    return pullc(P_CLUSTER, c->psrc.id, UINT32_MAX, c->ddst.id, 0, NULL);
}

CASE(pull_cache_next_bit)
{
    kvx_kv_xfer_params_t xp = xpm(KVXFER_NEXT_BIT);
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_bit63)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_BIT(63));
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_timeout_negative)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = -1;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_timeout_int_min)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = INT_MIN;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_size_zero)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_SIZE);
    xp.size = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_size_entry_plus_1)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_SIZE);
    xp.size = c->psrc.esize + 1;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_size_uint64_max)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_SIZE);
    xp.size = UINT64_MAX;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_tensors_per_layer_0)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TENSORS_PER_LAYER);
    xp.tensors_per_layer = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_tensors_per_layer_3)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TENSORS_PER_LAYER | KVX_KV_XFER_FIELD_LAYERS);
    xp.tensors_per_layer = 3;
    xp.src_layer_last = xp.dst_layer_last = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_tensors_per_layer_uint32_max)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TENSORS_PER_LAYER | KVX_KV_XFER_FIELD_LAYERS);
    xp.tensors_per_layer = UINT32_MAX;
    xp.src_layer_last = xp.dst_layer_last = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_layers_reversed)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_LAYERS);
    xp.src_layer_first = xp.dst_layer_first = 1;
    xp.src_layer_last = xp.dst_layer_last = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_layers_out_of_range)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_LAYERS);
    xp.src_layer_first = xp.dst_layer_first = UINT32_MAX;
    xp.src_layer_last = xp.dst_layer_last = UINT32_MAX;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_layers_unequal)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_LAYERS);
    xp.dst_layer_last = 0;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(pull_cache_timeout_int_max)
{
    /* kv.h: over one hour is refused */
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = INT_MAX;
    return pullc(P_CLUSTER, c->psrc.id, 0, c->ddst.id, 0, &xp);
}

static kvx_status_t pullb(uint64_t cluster, int64_t rid, uint32_t rbatch, int64_t lid,
                          const uint64_t *sb, size_t sn, const uint64_t *db, size_t dn,
                          const kvx_kv_xfer_params_t *xp)
{
    kvx_kv_remote_cache_t r = rc(cluster, rid, rbatch);
    return kvx_kv_pull_blocks(g_ctx.d, &r, lid, sb, sn, db, dn, xp);
}

CASE(pull_blocks_null_kv)
{
    kvx_kv_remote_cache_t r = rc(P_CLUSTER, c->psrc.id, 0);
    return kvx_kv_pull_blocks(NULL, &r, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_null_src)
{
    return kvx_kv_pull_blocks(c->d, NULL, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_null_src_blocks)
{
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, NULL, 2, DB, 2, NULL);
}

CASE(pull_blocks_null_dst_blocks)
{
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 2, NULL, 2, NULL);
}

CASE(pull_blocks_counts_zero)
{
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 0, DB, 0, NULL);
}

CASE(pull_blocks_count_mismatch)
{
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 2, DB, 1, NULL);
}

CASE(pull_blocks_src_count_size_max)
{
    /* Refused on the counts alone, before the lists are read. */
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, SIZE_MAX, DB, 2, NULL);
}

CASE(pull_blocks_src_block_8)
{
    const uint64_t sb[2] = {0, KV_BLOCKS};
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, sb, 2, DB, 2, NULL);
}

CASE(pull_blocks_src_block_uint64_max)
{
    const uint64_t sb[2] = {UINT64_MAX, 1};
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, sb, 2, DB, 2, NULL);
}

CASE(pull_blocks_dst_block_huge)
{
    /* A block index whose byte offset (index * 128) would wrap 64 bits. */
    const uint64_t db[2] = {2, 1ull << 58};
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 2, db, 2, NULL);
}

CASE(pull_blocks_remote_batch_1)
{
    return pullb(P_CLUSTER, c->psrc.id, 1, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_not_linked)
{
    return pullb(77, c->psrc.id, 0, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_own_cluster)
{
    return pullb(D_CLUSTER, c->dsrc.id, 0, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_remote_unknown)
{
    return pullb(P_CLUSTER, INT64_MIN, 0, c->ddst.id, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_local_unknown)
{
    return pullb(P_CLUSTER, c->psrc.id, 0, 0, SB, 2, DB, 2, NULL);
}

CASE(pull_blocks_timeout_negative)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = -1;
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 2, DB, 2, &xp);
}

CASE(pull_blocks_next_bit)
{
    kvx_kv_xfer_params_t xp = xpm(KVXFER_NEXT_BIT);
    return pullb(P_CLUSTER, c->psrc.id, 0, c->ddst.id, SB, 2, DB, 2, &xp);
}

static kvx_status_t pushc(int64_t lid, uint32_t lbatch, uint64_t cluster, int64_t rid,
                          uint32_t rbatch, const kvx_kv_xfer_params_t *xp)
{
    kvx_kv_remote_cache_t r = rc(cluster, rid, rbatch);
    return kvx_kv_push_cache(g_ctx.d, lid, lbatch, &r, xp);
}

CASE(push_cache_null_kv)
{
    kvx_kv_remote_cache_t r = rc(P_CLUSTER, c->psrc.id, 0);
    return kvx_kv_push_cache(NULL, c->dsrc.id, 0, &r, NULL);
}

CASE(push_cache_null_dst)
{
    return kvx_kv_push_cache(c->d, c->dsrc.id, 0, NULL, NULL);
}

CASE(push_cache_own_cluster)
{
    return pushc(c->dsrc.id, 0, D_CLUSTER, c->ddst.id, 0, NULL);
}

CASE(push_cache_unknown_local)
{
    return pushc(-7, 0, P_CLUSTER, c->psrc.id, 0, NULL);
}

CASE(push_cache_removed_local)
{
    return pushc(c->d_removed, 0, P_CLUSTER, c->psrc.id, 0, NULL);
}

CASE(push_cache_not_linked)
{
    return pushc(c->dsrc.id, 0, UINT64_MAX, c->psrc.id, 0, NULL);
}

CASE(push_cache_remote_unknown)
{
    return pushc(c->dsrc.id, 0, P_CLUSTER, 2, 0, NULL);
}

CASE(push_cache_local_batch_8)
{
    return pushc(c->dsrc.id, KV_BLOCKS, P_CLUSTER, c->psrc.id, 0, NULL);
}

CASE(push_cache_remote_batch_uint32_max)
{
    return pushc(c->dsrc.id, 0, P_CLUSTER, c->psrc.id, UINT32_MAX, NULL);
}

CASE(push_cache_size_too_big)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_SIZE);
    xp.size = 1ull << 40;
    return pushc(c->dsrc.id, 0, P_CLUSTER, c->psrc.id, 0, &xp);
}

CASE(push_cache_timeout_negative)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = -2;
    return pushc(c->dsrc.id, 0, P_CLUSTER, c->psrc.id, 0, &xp);
}

CASE(push_cache_layers_out_of_range)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_LAYERS);
    xp.dst_layer_first = 1;
    xp.dst_layer_last = 2;
    return pushc(c->dsrc.id, 0, P_CLUSTER, c->psrc.id, 0, &xp);
}

static kvx_status_t pushb(int64_t lid, uint64_t cluster, int64_t rid, uint32_t rbatch,
                          const uint64_t *sb, size_t sn, const uint64_t *db, size_t dn,
                          const kvx_kv_xfer_params_t *xp)
{
    kvx_kv_remote_cache_t r = rc(cluster, rid, rbatch);
    return kvx_kv_push_blocks(g_ctx.d, lid, &r, sb, sn, db, dn, xp);
}

CASE(push_blocks_null_kv)
{
    kvx_kv_remote_cache_t r = rc(P_CLUSTER, c->psrc.id, 0);
    return kvx_kv_push_blocks(NULL, c->dsrc.id, &r, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_null_dst)
{
    return kvx_kv_push_blocks(c->d, c->dsrc.id, NULL, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_null_src_blocks)
{
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, NULL, 2, DB, 2, NULL);
}

CASE(push_blocks_count_mismatch)
{
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, SB, 1, DB, 2, NULL);
}

CASE(push_blocks_src_block_8)
{
    const uint64_t sb[2] = {KV_BLOCKS, 0};
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, sb, 2, DB, 2, NULL);
}

CASE(push_blocks_dst_block_uint64_max)
{
    const uint64_t db[2] = {0, UINT64_MAX};
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, SB, 2, db, 2, NULL);
}

CASE(push_blocks_remote_batch_nonzero)
{
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, UINT32_MAX, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_not_linked)
{
    return pushb(c->dsrc.id, 0, c->psrc.id, 0, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_remote_unknown)
{
    return pushb(c->dsrc.id, P_CLUSTER, 0, 0, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_local_removed)
{
    return pushb(c->d_removed, P_CLUSTER, c->psrc.id, 0, SB, 2, DB, 2, NULL);
}

CASE(push_blocks_timeout_negative)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = INT_MIN;
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, SB, 2, DB, 2, &xp);
}

CASE(push_blocks_next_bit)
{
    kvx_kv_xfer_params_t xp = xpm(KVXFER_NEXT_BIT | KVX_KV_XFER_FIELD_TIMEOUT);
    return pushb(c->dsrc.id, P_CLUSTER, c->psrc.id, 0, SB, 2, DB, 2, &xp);
}

static kvx_status_t copyc(int64_t sid, uint32_t sb, int64_t did, uint32_t db,
                          const kvx_kv_xfer_params_t *xp)
{
    return kvx_kv_copy_cache(g_ctx.d, sid, sb, did, db, xp);
}

CASE(copy_cache_null_kv)
{
    return kvx_kv_copy_cache(NULL, c->dsrc.id, 0, c->ddst.id, 0, NULL);
}

CASE(copy_cache_unknown_src)
{
    return copyc(9999, 0, c->ddst.id, 0, NULL);
}

CASE(copy_cache_unknown_dst)
{
    return copyc(c->dsrc.id, 0, -1, 0, NULL);
}

CASE(copy_cache_removed_dst)
{
    return copyc(c->dsrc.id, 0, c->d_removed, 0, NULL);
}

CASE(copy_cache_src_batch_8)
{
    return copyc(c->dsrc.id, KV_BLOCKS, c->ddst.id, 0, NULL);
}

CASE(copy_cache_dst_batch_uint32_max)
{
    return copyc(c->dsrc.id, 0, c->ddst.id, UINT32_MAX, NULL);
}

CASE(copy_cache_same_entry)
{
    return copyc(c->dsrc.id, 3, c->dsrc.id, 3, NULL);
}

CASE(copy_cache_next_bit)
{
    kvx_kv_xfer_params_t xp = xpm(KVXFER_NEXT_BIT);
    return copyc(c->dsrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(copy_cache_size_zero)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_SIZE);
    xp.size = 0;
    return copyc(c->dsrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(copy_cache_tensors_per_layer_0)
{
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TENSORS_PER_LAYER);
    xp.tensors_per_layer = 0;
    return copyc(c->dsrc.id, 0, c->ddst.id, 0, &xp);
}

CASE(copy_cache_timeout_negative)
{
    /* kv.h: local copies do not use timeout_ms, so a negative one passes
     * (pulls and pushes refuse it). The copy is between two entries of the
     * sentinel-filled ddst, so it changes no byte. */
    kvx_kv_xfer_params_t xp = xpm(KVX_KV_XFER_FIELD_TIMEOUT);
    xp.timeout_ms = -1;
    return copyc(c->ddst.id, 0, c->ddst.id, 1, &xp);
}

static kvx_status_t copyb(int64_t sid, int64_t did, const uint64_t *sb, size_t sn,
                          const uint64_t *const *lists, const size_t *counts, size_t nl,
                          const kvx_kv_xfer_params_t *xp)
{
    return kvx_kv_copy_blocks(g_ctx.d, sid, did, sb, sn, lists, counts, nl, xp);
}

static const uint64_t *const LISTS[2] = {DB, DB};
static const size_t COUNTS[2] = {2, 2};

CASE(copy_blocks_null_kv)
{
    return kvx_kv_copy_blocks(NULL, c->dsrc.id, c->ddst.id, SB, 2, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_null_lists)
{
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, NULL, COUNTS, 1, NULL);
}

CASE(copy_blocks_null_counts)
{
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, LISTS, NULL, 1, NULL);
}

CASE(copy_blocks_num_lists_zero)
{
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, LISTS, COUNTS, 0, NULL);
}

CASE(copy_blocks_null_src_blocks)
{
    return copyb(c->dsrc.id, c->ddst.id, NULL, 2, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_src_count_zero)
{
    return copyb(c->dsrc.id, c->ddst.id, SB, 0, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_count_mismatch)
{
    return copyb(c->dsrc.id, c->ddst.id, SB, 1, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_second_list_mismatch)
{
    const size_t counts[2] = {2, 1};
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, LISTS, counts, 2, NULL);
}

CASE(copy_blocks_block_out_of_range)
{
    const uint64_t sb[2] = {0, KV_BLOCKS};
    return copyb(c->dsrc.id, c->ddst.id, sb, 2, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_second_list_out_of_range)
{
    /* The first list is valid: nothing of it is copied either. */
    const uint64_t bad[2] = {4, UINT64_MAX};
    const uint64_t *const lists[2] = {DB, bad};
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, lists, COUNTS, 2, NULL);
}

CASE(copy_blocks_same_blocks)
{
    return copyb(c->ddst.id, c->ddst.id, SB, 2, (const uint64_t *const[]){SB}, COUNTS, 1, NULL);
}

CASE(copy_blocks_unknown_src)
{
    return copyb(12345, c->ddst.id, SB, 2, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_removed_dst)
{
    return copyb(c->dsrc.id, c->d_removed, SB, 2, LISTS, COUNTS, 1, NULL);
}

CASE(copy_blocks_next_bit)
{
    kvx_kv_xfer_params_t xp = xpm(KVXFER_NEXT_BIT);
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, LISTS, COUNTS, 1, &xp);
}

CASE(copy_blocks_num_lists_size_max)
{
    /* kv.h: 1..KVX_KV_MAX_COPY_LISTS lists */
    return copyb(c->dsrc.id, c->ddst.id, SB, 2, LISTS, COUNTS, SIZE_MAX, NULL);
}

/* kvx_kv_notify, kvx_kv_notify_fetch */

CASE(kv_notify_null_kv)
{
    return kvx_kv_notify(NULL, P_CLUSTER, "n", "m", 1);
}

CASE(kv_notify_unknown_cluster)
{
    return kvx_kv_notify(c->d, 77, "n", "m", 1);
}

CASE(kv_notify_own_cluster)
{
    return kvx_kv_notify(c->d, D_CLUSTER, "n", "m", 1);
}

CASE(kv_notify_null_name)
{
    return kvx_kv_notify(c->d, P_CLUSTER, NULL, "m", 1);
}

CASE(kv_notify_null_msg_len4)
{
    return kvx_kv_notify(c->d, P_CLUSTER, "n", NULL, 4);
}

CASE(kv_notify_name_too_long)
{
    return kvx_kv_notify(c->d, P_CLUSTER, longstr(KVX_NOTIFY_NAME_MAX + 1), "m", 1);
}

CASE(kv_notify_msg_too_long)
{
    return kvx_kv_notify(c->d, P_CLUSTER, "n", longstr(KVX_NOTIFY_MSG_MAX + 1),
                         KVX_NOTIFY_MSG_MAX + 1);
}

CASE(kv_notify_msg_len_size_max)
{
    return kvx_kv_notify(c->d, P_CLUSTER, "n", "m", SIZE_MAX);
}

static kvx_status_t kfetch(kvx_kv_h kv, int timeout, int null_list, int null_count)
{
    kvx_notification_t *list = SENT_PTR;
    size_t n = SENT_SIZE;
    kvx_status_t st =
        kvx_kv_notify_fetch(kv, timeout, null_list ? NULL : &list, null_count ? NULL : &n);
    if (st != KVX_OK) {
        CHECK(list == SENT_PTR && n == SENT_SIZE, "outputs %p, %zu on failure", (void *)list, n);
    }
    return st;
}

CASE(kv_notify_fetch_null_kv)
{
    return kfetch(NULL, 10, 0, 0);
}

CASE(kv_notify_fetch_null_list)
{
    return kfetch(c->p, 10, 1, 0);
}

CASE(kv_notify_fetch_null_count)
{
    return kfetch(c->p, 10, 0, 1);
}

CASE(kv_notify_fetch_timeout_negative)
{
    return kfetch(c->p, -1, 0, 0);
}

CASE(kv_notify_fetch_timeout_int_min)
{
    return kfetch(c->p, INT_MIN, 0, 0);
}

CASE(kv_notify_fetch_none)
{
    kvx_notification_t *list = SENT_PTR;
    size_t n = SENT_SIZE;
    kvx_status_t st = kvx_kv_notify_fetch(c->p, 0, &list, &n);
    CHECK(list == NULL && n == 0, "list %p, count %zu when none came", (void *)list, n);
    return st;
}

/* ============================================================ the table */

/* ST: returns a status. NS: returns none (the case checks the value).
 * LOST: the call returns the right status but may leave kvx_last_error()
 * empty; kept for findings of that kind (none at present: kv.c's cache
 * rollback keeps the detail since it was found here). */
enum { ST, NS, LOST };

typedef struct row {
    const char *fn;   /* public function */
    const char *name; /* case */
    kvx_status_t (*run)(ctx_t *c);
    kvx_status_t want;
    int kind;
} row_t;

/* The function name must exist: the + 0 * sizeof(&fn) does not compile
 * otherwise. */
// clang-format off
#define ROW(fn, cs, want, kind) {#fn + 0 * sizeof(&fn), #cs, cs, want, kind}
// clang-format on
#define R(fn, cs, want) ROW(fn, cs, want, ST)
#define N(fn, cs)       ROW(fn, cs, KVX_OK, NS)
#define L(fn, cs, want) ROW(fn, cs, want, LOST)

#define E_PARAM   KVX_ERR_INVALID_PARAM
#define E_ADDR    KVX_ERR_INVALID_ADDRESS
#define E_UNSUPP  KVX_ERR_UNSUPPORTED
#define E_NOTFND  KVX_ERR_NOT_FOUND
#define E_NOTCONN KVX_ERR_NOT_CONNECTED

static const row_t TABLE[] = {
    /* status.h */
    N(kvx_status_string, status_string_unknown),
    N(kvx_status_string, status_string_int_min),
    N(kvx_status_string, status_string_gap),
    N(kvx_status_name, status_name_unknown),
    N(kvx_status_name, status_name_int_max),
    N(kvx_last_error, last_error_after_failure),
    N(kvx_last_error, last_error_cleared_by_success),
    /* log.h */
    N(kvx_log_set_level, log_set_level_too_high),
    N(kvx_log_set_level, log_set_level_too_low),
    N(kvx_log_get_level, log_get_level_in_range),
    N(kvx_log_set_sink, log_set_sink_null_restores_default),
    N(kvx_log_level_name, log_level_name_out_of_range),
    N(kvx_log_level_name, log_level_name_off),
    /* version.h */
    N(kvx_version, version_matches_header),
    /* device.h */
    R(kvx_device_init, dev_init_next_bit, E_UNSUPP),
    R(kvx_device_init, dev_init_bit63, E_UNSUPP),
    R(kvx_device_init, dev_init_backend_null, E_PARAM),
    R(kvx_device_init, dev_init_backend_unknown, E_PARAM),
    R(kvx_device_init, dev_init_backend_empty, E_PARAM),
    R(kvx_device_init, dev_init_backend_cuda, E_UNSUPP),
    R(kvx_device_init, dev_init_num_devices_zero, E_PARAM),
    R(kvx_device_init, dev_init_num_devices_negative, E_PARAM),
    R(kvx_device_init, dev_init_num_devices_1025, E_PARAM),
    R(kvx_device_init, dev_init_num_devices_int_max, E_PARAM),
    R(kvx_device_init, dev_init_env_devices_bad, E_PARAM),
    R(kvx_device_init, dev_init_env_capacity_bad, E_PARAM),
    R(kvx_device_init, dev_init_null_while_allocated, KVX_ERR_BUSY),
    R(kvx_device_init, dev_init_huge_capacity_while_allocated, KVX_ERR_BUSY),
    N(kvx_device_backend, dev_backend_is_host),
    R(kvx_device_count, dev_count_null, E_PARAM),
    N(kvx_device_host_accessible, dev_host_accessible_host),
    R(kvx_device_malloc, dev_malloc_null_out, E_PARAM),
    R(kvx_device_malloc, dev_malloc_size_zero, E_PARAM),
    R(kvx_device_malloc, dev_malloc_device_negative, E_PARAM),
    R(kvx_device_malloc, dev_malloc_device_count, E_PARAM),
    R(kvx_device_malloc, dev_malloc_device_int_min, E_PARAM),
    R(kvx_device_malloc, dev_malloc_size_max, KVX_ERR_DEVICE_OUT_OF_MEMORY),
    R(kvx_device_malloc, dev_malloc_size_half, KVX_ERR_DEVICE_OUT_OF_MEMORY),
    R(kvx_device_free, dev_free_null_bad_device, E_PARAM),
    R(kvx_device_free, dev_free_null_ok, KVX_OK),
    R(kvx_device_free, dev_free_device_int_max, E_PARAM),
    R(kvx_device_free, dev_free_interior, E_PARAM),
    R(kvx_device_free, dev_free_wrong_device, E_PARAM),
    R(kvx_device_free, dev_free_host_pointer, E_PARAM),
    R(kvx_device_free, dev_free_host_malloc_pointer, E_PARAM),
    R(kvx_device_free, dev_free_top_address, E_PARAM),
    R(kvx_device_free, dev_free_twice, E_PARAM),
    R(kvx_device_memset, dev_memset_null, E_PARAM),
    R(kvx_device_memset, dev_memset_size_zero, E_PARAM),
    R(kvx_device_memset, dev_memset_size_max, E_ADDR),
    R(kvx_device_memset, dev_memset_wraps, E_ADDR),
    R(kvx_device_memset, dev_memset_past_end, E_ADDR),
    R(kvx_device_memset, dev_memset_host_memory, E_ADDR),
    R(kvx_device_memset, dev_memset_host_malloc_memory, E_ADDR),
    R(kvx_device_memset, dev_memset_wrong_device, E_ADDR),
    R(kvx_device_memset, dev_memset_device_negative, E_PARAM),
    R(kvx_device_memset, dev_memset_device_1024, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_kind_4, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_kind_negative, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_null_dst, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_null_src, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_size_zero, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_size_max, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_src_wraps, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_overlap_h2h, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_overlap_d2d, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_h2d_host_dst, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_h2d_past_end, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_h2d_wrong_device, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_h2d_bad_device, E_PARAM),
    R(kvx_device_memcpy, dev_memcpy_h2d_host_malloc_dst, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_d2h_host_src, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_d2d_host_src, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_d2d_host_malloc_src, E_ADDR),
    R(kvx_device_memcpy, dev_memcpy_h2h_device_ignored, KVX_OK),
    R(kvx_device_locate, dev_locate_null_ptr, E_PARAM),
    R(kvx_device_locate, dev_locate_null_out, E_PARAM),
    R(kvx_device_locate, dev_locate_size_zero, E_PARAM),
    R(kvx_device_locate, dev_locate_size_max, E_ADDR),
    R(kvx_device_locate, dev_locate_wraps, E_ADDR),
    R(kvx_device_locate, dev_locate_past_end, E_ADDR),
    R(kvx_device_locate, dev_locate_host_into_device, E_ADDR),
    R(kvx_device_locate, dev_locate_host_malloc_is_host, KVX_OK),
    R(kvx_host_malloc, host_malloc_size_zero, E_PARAM),
    R(kvx_host_malloc, host_malloc_null_out, E_PARAM),
    R(kvx_host_malloc, host_malloc_size_max, KVX_ERR_NO_MEMORY),
    R(kvx_host_malloc, host_malloc_size_2_63, KVX_ERR_NO_MEMORY),
    R(kvx_host_malloc, host_malloc_size_2_62, KVX_ERR_NO_MEMORY),
    R(kvx_host_free, host_free_null, KVX_OK),
    R(kvx_host_free, host_free_malloc_pointer, E_PARAM),
    R(kvx_host_free, host_free_device_pointer, E_PARAM),
    R(kvx_host_free, host_free_interior, E_PARAM),
    R(kvx_host_free, host_free_top_address, E_PARAM),
    R(kvx_host_free, host_free_twice, E_PARAM),
    R(kvx_device_used, dev_used_null, E_PARAM),
    R(kvx_device_used, dev_used_negative, E_PARAM),
    R(kvx_device_used, dev_used_device_count, E_PARAM),
    R(kvx_device_used, dev_used_int_min, E_PARAM),
    /* engine.h */
    R(kvx_engine_create, engine_create_null_params, E_PARAM),
    R(kvx_engine_create, engine_create_null_out, E_PARAM),
    R(kvx_engine_create, engine_create_no_name_bit, E_PARAM),
    R(kvx_engine_create, engine_create_name_null, E_PARAM),
    R(kvx_engine_create, engine_create_next_bit, E_UNSUPP),
    R(kvx_engine_create, engine_create_bit63, E_UNSUPP),
    R(kvx_engine_create, engine_create_name_empty, E_PARAM),
    R(kvx_engine_create, engine_create_name_too_long, E_PARAM),
    R(kvx_engine_create, engine_create_name_unterminated, E_PARAM),
    R(kvx_engine_create, engine_create_ip_octet_256, E_PARAM),
    R(kvx_engine_create, engine_create_ip_three_octets, E_PARAM),
    R(kvx_engine_create, engine_create_host_name, E_PARAM),
    R(kvx_engine_create, engine_create_port_65536, E_PARAM),
    R(kvx_engine_create, engine_create_port_negative, E_PARAM),
    R(kvx_engine_create, engine_create_ipv6_unbracketed, E_PARAM),
    R(kvx_engine_create, engine_create_ipv6_unterminated, E_PARAM),
    R(kvx_engine_create, engine_create_ipv4_in_brackets, E_PARAM),
    R(kvx_engine_create, engine_create_io_threads_0, E_PARAM),
    R(kvx_engine_create, engine_create_io_threads_65, E_PARAM),
    R(kvx_engine_create, engine_create_io_threads_uint_max, E_PARAM),
    R(kvx_engine_create, engine_create_connect_timeout_0, E_PARAM),
    R(kvx_engine_create, engine_create_connect_timeout_over_1h, E_PARAM),
    R(kvx_engine_create, engine_create_transfer_timeout_0, E_PARAM),
    R(kvx_engine_create, engine_create_transfer_timeout_uint_max, E_PARAM),
    R(kvx_engine_create, engine_create_notify_timeout_0, E_PARAM),
    R(kvx_engine_create, engine_create_max_outstanding_0, E_PARAM),
    R(kvx_engine_create, engine_create_max_outstanding_huge, E_PARAM),
    R(kvx_engine_create, engine_create_max_notify_queue_0, E_PARAM),
    R(kvx_engine_create, engine_create_max_notify_queue_uint_max, E_PARAM),
    R(kvx_engine_create, engine_create_busy_poll_10001, E_PARAM),
    R(kvx_engine_create, engine_create_busy_poll_uint_max, E_PARAM),
    R(kvx_engine_create, engine_create_peer_timeout_0, E_PARAM),
    R(kvx_engine_create, engine_create_peer_timeout_99, E_PARAM),
    R(kvx_engine_create, engine_create_peer_timeout_499, E_PARAM),
    R(kvx_engine_create, engine_create_peer_timeout_over_1h, E_PARAM),
    R(kvx_engine_create, engine_create_secret_null, E_PARAM),
    R(kvx_engine_create, engine_create_secret_empty, E_PARAM),
    R(kvx_engine_create, engine_create_secret_15, E_PARAM),
    R(kvx_engine_create, engine_create_secret_1025, E_PARAM),
    R(kvx_engine_create, engine_create_secret_size_max, E_PARAM),
    R(kvx_engine_create, engine_create_port_in_use, KVX_ERR_IO),
    N(kvx_engine_destroy, engine_destroy_null),
    N(kvx_engine_name, engine_name_null),
    R(kvx_mem_register, mem_register_null_engine, E_PARAM),
    R(kvx_mem_register, mem_register_null_params, E_PARAM),
    R(kvx_mem_register, mem_register_null_out, E_PARAM),
    R(kvx_mem_register, mem_register_next_bit, E_UNSUPP),
    R(kvx_mem_register, mem_register_bit63, E_UNSUPP),
    R(kvx_mem_register, mem_register_no_address_bit, E_PARAM),
    R(kvx_mem_register, mem_register_no_length_bit, E_PARAM),
    R(kvx_mem_register, mem_register_address_null, E_PARAM),
    R(kvx_mem_register, mem_register_length_zero, E_PARAM),
    R(kvx_mem_register, mem_register_wraps, E_PARAM),
    R(kvx_mem_register, mem_register_length_size_max, E_PARAM),
    R(kvx_mem_register, mem_register_type_2, E_PARAM),
    R(kvx_mem_register, mem_register_type_negative, E_PARAM),
    R(kvx_mem_register, mem_register_access_2, E_PARAM),
    R(kvx_mem_register, mem_register_access_int_min, E_PARAM),
    R(kvx_mem_register, mem_register_device_type_host_memory, E_ADDR),
    R(kvx_mem_register, mem_register_device_past_end, E_ADDR),
    R(kvx_mem_register, mem_register_device_type_host_malloc, E_ADDR),
    R(kvx_mem_register, mem_register_overlap, KVX_ERR_OVERLAP),
    R(kvx_mem_register, mem_register_overlap_start, KVX_ERR_OVERLAP),
    R(kvx_mem_register, mem_register_same_other_tag, KVX_ERR_ALREADY_EXISTS),
    R(kvx_mem_register, mem_register_same_other_access, KVX_ERR_ALREADY_EXISTS),
    R(kvx_mem_deregister, mem_deregister_null_engine, E_PARAM),
    R(kvx_mem_deregister, mem_deregister_null_mem, E_PARAM),
    R(kvx_mem_deregister, mem_deregister_stale, E_NOTFND),
    R(kvx_mem_deregister, mem_deregister_never_issued, E_NOTFND),
    R(kvx_mem_deregister, mem_deregister_other_engine, E_NOTFND),
    R(kvx_mem_deregister, mem_deregister_max, E_NOTFND),
    R(kvx_engine_remote_mem, remote_mem_null_engine, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_null_count, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_null_mems_max1, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_null_remote, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_timeout_negative, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_timeout_int_min, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_timeout_int_max, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_never_connected, E_NOTCONN),
    R(kvx_engine_remote_mem, remote_mem_nobody_there, E_NOTCONN),
    R(kvx_engine_remote_mem, remote_mem_no_port, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_port_zero, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_self, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_bad_ip, E_PARAM),
    R(kvx_engine_remote_mem, remote_mem_count_only, KVX_OK),
    R(kvx_engine_connect, connect_null_engine, E_PARAM),
    R(kvx_engine_connect, connect_null_remote, E_PARAM),
    R(kvx_engine_connect, connect_timeout_negative, E_PARAM),
    R(kvx_engine_connect, connect_timeout_int_max, E_PARAM),
    R(kvx_engine_connect, connect_no_port, E_PARAM),
    R(kvx_engine_connect, connect_port_zero, E_PARAM),
    R(kvx_engine_connect, connect_self, E_PARAM),
    R(kvx_engine_connect, connect_bad_ip, E_PARAM),
    R(kvx_engine_connect, connect_host_name, E_PARAM),
    R(kvx_engine_connect, connect_name_too_long, E_PARAM),
    R(kvx_engine_connect, connect_already_connected, KVX_ERR_ALREADY_CONNECTED),
    R(kvx_engine_connect, connect_refused, KVX_ERR_CONNECTION_REFUSED),
    R(kvx_engine_connect_async, connect_async_null_engine, E_PARAM),
    R(kvx_engine_connect_async, connect_async_null_remote, E_PARAM),
    R(kvx_engine_connect_async, connect_async_timeout_negative, E_PARAM),
    R(kvx_engine_connect_async, connect_async_timeout_int_max, E_PARAM),
    R(kvx_engine_connect_async, connect_async_no_port, E_PARAM),
    R(kvx_engine_connect_async, connect_async_self, E_PARAM),
    R(kvx_engine_connect_async, connect_async_bad_ip, E_PARAM),
    R(kvx_engine_connect_async, connect_async_already_connected, KVX_ERR_ALREADY_CONNECTED),
    R(kvx_engine_disconnect, disconnect_null_engine, E_PARAM),
    R(kvx_engine_disconnect, disconnect_null_remote, E_PARAM),
    R(kvx_engine_disconnect, disconnect_timeout_negative, E_PARAM),
    R(kvx_engine_disconnect, disconnect_timeout_int_max, E_PARAM),
    R(kvx_engine_disconnect, disconnect_never_connected, E_NOTCONN),
    R(kvx_engine_disconnect, disconnect_no_port, E_PARAM),
    R(kvx_engine_disconnect, disconnect_self, E_PARAM),
    R(kvx_engine_disconnect, disconnect_bad_ip, E_PARAM),
    R(kvx_engine_disconnect_async, disconnect_async_null_engine, E_PARAM),
    R(kvx_engine_disconnect_async, disconnect_async_null_remote, E_PARAM),
    R(kvx_engine_disconnect_async, disconnect_async_timeout_negative, E_PARAM),
    R(kvx_engine_disconnect_async, disconnect_async_never_connected, E_NOTCONN),
    R(kvx_engine_disconnect_async, disconnect_async_bad_ip, E_PARAM),
    R(kvx_engine_peer_state, peer_state_null_engine, E_PARAM),
    R(kvx_engine_peer_state, peer_state_null_state, E_PARAM),
    R(kvx_engine_peer_state, peer_state_null_remote, E_PARAM),
    R(kvx_engine_peer_state, peer_state_bad_ip, E_PARAM),
    R(kvx_engine_peer_state, peer_state_no_port, E_PARAM),
    R(kvx_engine_peer_state, peer_state_unknown_remote, KVX_OK),
    R(kvx_engine_peer_state, peer_state_null_error, KVX_OK),
    R(kvx_engine_peer_epoch, peer_epoch_null_engine, E_PARAM),
    R(kvx_engine_peer_epoch, peer_epoch_null_remote, E_PARAM),
    R(kvx_engine_peer_epoch, peer_epoch_never_connected, E_NOTCONN),
    R(kvx_engine_peer_epoch, peer_epoch_bad_ip, E_PARAM),
    R(kvx_engine_peer_epoch, peer_epoch_self, E_PARAM),
    R(kvx_engine_peer_epoch, peer_epoch_null_outputs, KVX_OK),
    R(kvx_engine_peers, peers_null_engine, E_PARAM),
    R(kvx_engine_peers, peers_null_count, E_PARAM),
    R(kvx_engine_peers, peers_null_infos_max1, E_PARAM),
    R(kvx_engine_peers, peers_count_only, KVX_OK),
    R(kvx_engine_peers, peers_max_huge, KVX_OK),
    R(kvx_engine_incoming_links, incoming_links_null_engine, E_PARAM),
    R(kvx_engine_incoming_links, incoming_links_null_count, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_null_engine, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_null_remote, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_op_2, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_op_negative, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_null_descs, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_count_zero, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_count_over_max, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_count_size_max, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_local_null, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_remote_zero, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_length_zero, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_length_size_max, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_length_over_1tib, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_local_wraps, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_local_unregistered, E_ADDR),
    R(kvx_xfer_sync, xfer_sync_local_device_unregistered, E_ADDR),
    R(kvx_xfer_sync, xfer_sync_local_past_end, E_ADDR),
    R(kvx_xfer_sync, xfer_sync_local_deregistered, E_ADDR),
    R(kvx_xfer_sync, xfer_sync_remote_unregistered, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_remote_past_end, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_remote_wraps, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_write_read_only, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_remote_tag_wrong, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_second_desc_bad, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_sync, xfer_sync_next_bit, E_UNSUPP),
    R(kvx_xfer_sync, xfer_sync_timeout_negative, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_timeout_int_max, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_never_connected, E_NOTCONN),
    R(kvx_xfer_sync, xfer_sync_bad_remote, E_PARAM),
    R(kvx_xfer_sync, xfer_sync_self, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_null_engine, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_null_id, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_null_remote, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_op_2, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_null_descs, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_count_size_max, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_length_zero, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_length_size_max, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_local_unregistered, E_ADDR),
    R(kvx_xfer_submit, xfer_submit_remote_unregistered, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_submit, xfer_submit_write_read_only, KVX_ERR_REMOTE_ACCESS),
    R(kvx_xfer_submit, xfer_submit_bit63, E_UNSUPP),
    R(kvx_xfer_submit, xfer_submit_timeout_negative, E_PARAM),
    R(kvx_xfer_submit, xfer_submit_never_connected, E_NOTCONN),
    R(kvx_xfer_submit, xfer_submit_exhausted, KVX_ERR_RESOURCE_EXHAUSTED),
    R(kvx_xfer_status, xfer_status_null_engine, E_PARAM),
    R(kvx_xfer_status, xfer_status_null_state, E_PARAM),
    R(kvx_xfer_status, xfer_status_id_zero, E_NOTFND),
    R(kvx_xfer_status, xfer_status_never_issued, E_NOTFND),
    R(kvx_xfer_status, xfer_status_id_max, E_NOTFND),
    R(kvx_xfer_status, xfer_status_slot_out_of_range, E_NOTFND),
    R(kvx_xfer_status, xfer_status_generation_zero, E_NOTFND),
    R(kvx_xfer_status, xfer_status_already_reported, E_NOTFND),
    R(kvx_xfer_status, xfer_status_other_engine, E_NOTFND),
    R(kvx_xfer_wait, xfer_wait_null_engine, E_PARAM),
    R(kvx_xfer_wait, xfer_wait_null_state, E_PARAM),
    R(kvx_xfer_wait, xfer_wait_timeout_negative, E_PARAM),
    R(kvx_xfer_wait, xfer_wait_timeout_int_min, E_PARAM),
    R(kvx_xfer_wait, xfer_wait_already_reported, E_NOTFND),
    R(kvx_xfer_wait, xfer_wait_never_issued, E_NOTFND),
    R(kvx_xfer_wait, xfer_wait_other_engine, E_NOTFND),
    R(kvx_xfer_cancel, xfer_cancel_null_engine, E_PARAM),
    R(kvx_xfer_cancel, xfer_cancel_unknown_id, E_NOTFND),
    R(kvx_xfer_cancel, xfer_cancel_id_zero, E_NOTFND),
    R(kvx_xfer_cancel, xfer_cancel_timeout_negative, E_PARAM),
    R(kvx_xfer_cancel, xfer_cancel_timeout_int_min, E_PARAM),
    R(kvx_xfer_cancel, xfer_cancel_timeout_int_max, E_PARAM),
    R(kvx_xfer_cancel, xfer_cancel_already_reported, E_NOTFND),
    R(kvx_xfer_cancel, xfer_cancel_other_engine, E_NOTFND),
    R(kvx_xfer_cancel, xfer_cancel_finished_unreported, KVX_OK),
    R(kvx_xfer_query, xfer_query_null_engine, E_PARAM),
    R(kvx_xfer_query, xfer_query_null_count, E_PARAM),
    R(kvx_xfer_query, xfer_query_null_results_max1, E_PARAM),
    R(kvx_xfer_query, xfer_query_unknown_flag, E_UNSUPP),
    R(kvx_xfer_query, xfer_query_flag63, E_UNSUPP),
    R(kvx_xfer_query, xfer_query_max_zero, KVX_OK),
    R(kvx_notify_send, notify_send_null_engine, E_PARAM),
    R(kvx_notify_send, notify_send_null_remote, E_PARAM),
    R(kvx_notify_send, notify_send_null_name, E_PARAM),
    R(kvx_notify_send, notify_send_null_msg_len1, E_PARAM),
    R(kvx_notify_send, notify_send_name_too_long, E_PARAM),
    R(kvx_notify_send, notify_send_name_unterminated, E_PARAM),
    R(kvx_notify_send, notify_send_msg_too_long, E_PARAM),
    R(kvx_notify_send, notify_send_msg_len_size_max, E_PARAM),
    R(kvx_notify_send, notify_send_timeout_negative, E_PARAM),
    R(kvx_notify_send, notify_send_timeout_int_max, E_PARAM),
    R(kvx_notify_send, notify_send_never_connected, E_NOTCONN),
    R(kvx_notify_send, notify_send_bad_remote, E_PARAM),
    R(kvx_notify_send, notify_send_self, E_PARAM),
    R(kvx_notify_send, notify_send_at_limits, KVX_OK),
    R(kvx_notify_fetch, notify_fetch_null_engine, E_PARAM),
    R(kvx_notify_fetch, notify_fetch_null_list, E_PARAM),
    R(kvx_notify_fetch, notify_fetch_null_count, E_PARAM),
    R(kvx_notify_fetch, notify_fetch_empty, KVX_OK),
    R(kvx_notify_wait, notify_wait_null_engine, E_PARAM),
    R(kvx_notify_wait, notify_wait_timeout_negative, E_PARAM),
    R(kvx_notify_wait, notify_wait_timeout_int_min, E_PARAM),
    R(kvx_notify_wait, notify_wait_empty, KVX_ERR_TIMEOUT),
    N(kvx_notify_free, notify_free_null_list),
    R(kvx_capability, capability_negative, E_PARAM),
    R(kvx_capability, capability_int_min, E_PARAM),
    R(kvx_capability, capability_null_out, E_PARAM),
    R(kvx_capability, capability_unknown_9, KVX_OK),
    R(kvx_capability, capability_int_max, KVX_OK),
    R(kvx_capability, capability_auto_connect, KVX_OK),
    /* kv.h */
    N(kvx_dtype_size, dtype_size_unknown),
    R(kvx_kv_create, kv_create_null_params, E_PARAM),
    R(kvx_kv_create, kv_create_null_out, E_PARAM),
    R(kvx_kv_create, kv_create_next_bit, E_UNSUPP),
    R(kvx_kv_create, kv_create_bit63, E_UNSUPP),
    R(kvx_kv_create, kv_create_no_cluster_bit, E_PARAM),
    R(kvx_kv_create, kv_create_role_0, E_PARAM),
    R(kvx_kv_create, kv_create_role_4, E_PARAM),
    R(kvx_kv_create, kv_create_role_int_min, E_PARAM),
    R(kvx_kv_create, kv_create_listen_null, E_PARAM),
    R(kvx_kv_create, kv_create_listen_bad_port, E_PARAM),
    R(kvx_kv_create, kv_create_listen_bad_ip, E_PARAM),
    R(kvx_kv_create, kv_create_listen_too_long, E_PARAM),
    R(kvx_kv_create, kv_create_listen_port_in_use, KVX_ERR_IO),
    R(kvx_kv_create, kv_create_listen_no_port, E_PARAM),
    R(kvx_kv_create, kv_create_local_ip_with_port, E_PARAM),
    R(kvx_kv_create, kv_create_local_ip_null, E_PARAM),
    R(kvx_kv_create, kv_create_local_ip_too_long, E_PARAM),
    R(kvx_kv_create, kv_create_local_ip_bad, E_PARAM),
    R(kvx_kv_create, kv_create_device_negative, E_PARAM),
    R(kvx_kv_create, kv_create_device_count, E_PARAM),
    R(kvx_kv_create, kv_create_device_int_max, E_PARAM),
    R(kvx_kv_create, kv_create_table_capacity_0, E_PARAM),
    R(kvx_kv_create, kv_create_table_capacity_4095, E_PARAM),
    R(kvx_kv_create, kv_create_table_capacity_over_64m, E_PARAM),
    R(kvx_kv_create, kv_create_table_capacity_size_max, E_PARAM),
    R(kvx_kv_create, kv_create_staging_count_no_size, E_PARAM),
    R(kvx_kv_create, kv_create_staging_size_no_count, E_PARAM),
    R(kvx_kv_create, kv_create_staging_count_1025, E_PARAM),
    R(kvx_kv_create, kv_create_sync_timeout_0, E_PARAM),
    R(kvx_kv_create, kv_create_sync_timeout_over_1h, E_PARAM),
    R(kvx_kv_create, kv_create_sync_timeout_uint_max, E_PARAM),
    R(kvx_kv_create, kv_create_io_threads_0, E_PARAM),
    R(kvx_kv_create, kv_create_io_threads_65, E_PARAM),
    R(kvx_kv_create, kv_create_busy_poll_10001, E_PARAM),
    R(kvx_kv_create, kv_create_peer_timeout_0, E_PARAM),
    R(kvx_kv_create, kv_create_peer_timeout_499, E_PARAM),
    R(kvx_kv_create, kv_create_secret_null, E_PARAM),
    R(kvx_kv_create, kv_create_secret_15, E_PARAM),
    R(kvx_kv_create, kv_create_secret_1025, E_PARAM),
    R(kvx_kv_create, kv_create_secret_size_max, E_PARAM),
    N(kvx_kv_destroy, kv_destroy_null),
    N(kvx_kv_listen_name, kv_listen_name_null),
    N(kvx_kv_cluster_id, kv_cluster_id_null),
    N(kvx_kv_role, kv_role_null),
    R(kvx_kv_link, kv_link_null_kv, E_PARAM),
    R(kvx_kv_link, kv_link_null_clusters, E_PARAM),
    R(kvx_kv_link, kv_link_zero_clusters, E_PARAM),
    R(kvx_kv_link, kv_link_17_clusters, KVX_ERR_TOO_MANY_CLUSTERS),
    R(kvx_kv_link, kv_link_size_max_clusters, KVX_ERR_TOO_MANY_CLUSTERS),
    R(kvx_kv_link, kv_link_timeout_negative, E_PARAM),
    R(kvx_kv_link, kv_link_timeout_int_min, E_PARAM),
    R(kvx_kv_link, kv_link_remote_null, E_PARAM),
    R(kvx_kv_link, kv_link_already_linked, KVX_ERR_ALREADY_LINKED),
    R(kvx_kv_link, kv_link_already_linked_other_address, KVX_ERR_ALREADY_LINKED),
    R(kvx_kv_link, kv_link_self, E_PARAM),
    R(kvx_kv_link, kv_link_bad_ip, E_PARAM),
    R(kvx_kv_link, kv_link_no_port, E_PARAM),
    R(kvx_kv_link, kv_link_cluster_mismatch, KVX_ERR_CLUSTER_MISMATCH),
    R(kvx_kv_link, kv_link_not_a_kv_instance, KVX_ERR_CLUSTER_MISMATCH),
    R(kvx_kv_link, kv_link_nobody_listens, KVX_ERR_CONNECTION_REFUSED),
    R(kvx_kv_link, kv_link_timeout_int_max, E_PARAM),
    R(kvx_kv_unlink, kv_unlink_null_kv, E_PARAM),
    R(kvx_kv_unlink, kv_unlink_null_clusters, E_PARAM),
    R(kvx_kv_unlink, kv_unlink_count_zero, E_PARAM),
    R(kvx_kv_unlink, kv_unlink_count_17, KVX_ERR_TOO_MANY_CLUSTERS),
    R(kvx_kv_unlink, kv_unlink_count_size_max, KVX_ERR_TOO_MANY_CLUSTERS),
    R(kvx_kv_unlink, kv_unlink_timeout_negative, E_PARAM),
    R(kvx_kv_unlink, kv_unlink_unknown_cluster, KVX_ERR_NOT_LINKED),
    R(kvx_kv_unlink, kv_unlink_own_cluster, KVX_ERR_NOT_LINKED),
    R(kvx_kv_unlink, kv_unlink_unknown_force, KVX_OK),
    R(kvx_kv_link_count, kv_link_count_null_kv, E_PARAM),
    R(kvx_kv_link_count, kv_link_count_null_outputs, KVX_OK),
    R(kvx_kv_link_count, kv_link_count_null_incoming, KVX_OK),
    R(kvx_kv_set_role, kv_set_role_null_kv, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_role_0, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_role_4, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_role_int_min, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_outgoing_link, KVX_ERR_LINK_EXISTS),
    R(kvx_kv_set_role, kv_set_role_incoming_link, KVX_ERR_LINK_EXISTS),
    R(kvx_kv_set_role, kv_set_role_listen_bad_ip, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_listen_too_long, E_PARAM),
    R(kvx_kv_set_role, kv_set_role_listen_port_in_use, KVX_ERR_IO),
    R(kvx_kv_set_role, kv_set_role_disabled, E_UNSUPP),
    R(kvx_kv_cache_allocate, cache_allocate_null_kv, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_null_desc, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_null_id, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_next_bit, E_UNSUPP),
    R(kvx_kv_cache_allocate, cache_allocate_bit63, E_UNSUPP),
    R(kvx_kv_cache_allocate, cache_allocate_no_dtype_bit, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_no_shape_bit, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_no_num_tensors_bit, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dtype_0, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dtype_16, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dtype_negative, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_num_tensors_0, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_num_tensors_4097, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_num_tensors_uint32_max, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_ndims_0, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_ndims_9, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_ndims_uint32_max, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dim_zero, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dim_negative, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dim_int64_max, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dim_int64_min, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_dims_product_overflow, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_placement_2, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_placement_negative, E_PARAM),
    R(kvx_kv_cache_allocate, cache_allocate_huge_device, KVX_ERR_DEVICE_OUT_OF_MEMORY),
    R(kvx_kv_cache_allocate, cache_allocate_huge_host, KVX_ERR_NO_MEMORY),
    R(kvx_kv_cache_deallocate, cache_deallocate_null_kv, E_PARAM),
    R(kvx_kv_cache_deallocate, cache_deallocate_unknown, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_deallocate, cache_deallocate_zero, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_deallocate, cache_deallocate_negative, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_deallocate, cache_deallocate_int64_min, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_deallocate, cache_deallocate_removed, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_deallocate, cache_deallocate_registered, E_PARAM),
    R(kvx_kv_cache_register, cache_register_null_kv, E_PARAM),
    R(kvx_kv_cache_register, cache_register_null_desc, E_PARAM),
    R(kvx_kv_cache_register, cache_register_null_addrs, E_PARAM),
    R(kvx_kv_cache_register, cache_register_null_id, E_PARAM),
    R(kvx_kv_cache_register, cache_register_null_tensor, E_PARAM),
    R(kvx_kv_cache_register, cache_register_next_bit, E_UNSUPP),
    R(kvx_kv_cache_register, cache_register_dtype_unknown, E_PARAM),
    R(kvx_kv_cache_register, cache_register_tensor_wraps, E_PARAM),
    R(kvx_kv_cache_register, cache_register_device_placement_host_memory, E_ADDR),
    R(kvx_kv_cache_register, cache_register_tensors_overlap, KVX_ERR_OVERLAP),
    R(kvx_kv_cache_register, cache_register_memory_of_another_cache, KVX_ERR_ALREADY_EXISTS),
    R(kvx_kv_cache_register, cache_register_overlaps_another_cache, KVX_ERR_OVERLAP),
    R(kvx_kv_cache_unregister, cache_unregister_null_kv, E_PARAM),
    R(kvx_kv_cache_unregister, cache_unregister_unknown, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_unregister, cache_unregister_zero, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_unregister, cache_unregister_removed, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_unregister, cache_unregister_allocated, E_PARAM),
    R(kvx_kv_cache_tensors, cache_tensors_null_kv, E_PARAM),
    R(kvx_kv_cache_tensors, cache_tensors_null_addrs_max1, E_PARAM),
    R(kvx_kv_cache_tensors, cache_tensors_unknown, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_tensors, cache_tensors_removed, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_cache_tensors, cache_tensors_null_addrs_max0, KVX_OK),
    R(kvx_kv_cache_tensors, cache_tensors_max_huge, KVX_OK),
    R(kvx_kv_pull_cache, pull_cache_null_kv, E_PARAM),
    R(kvx_kv_pull_cache, pull_cache_null_src, E_PARAM),
    R(kvx_kv_pull_cache, pull_cache_own_cluster, E_PARAM),
    R(kvx_kv_pull_cache, pull_cache_unknown_local, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_pull_cache, pull_cache_removed_local, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_pull_cache, pull_cache_not_linked, KVX_ERR_NOT_LINKED),
    R(kvx_kv_pull_cache, pull_cache_remote_unknown, KVX_ERR_REMOTE_CACHE_NOT_FOUND),
    R(kvx_kv_pull_cache, pull_cache_remote_negative, KVX_ERR_REMOTE_CACHE_NOT_FOUND),
    R(kvx_kv_pull_cache, pull_cache_local_batch_8, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_local_batch_uint32_max, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_remote_batch_uint32_max, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_next_bit, E_UNSUPP),
    R(kvx_kv_pull_cache, pull_cache_bit63, E_UNSUPP),
    R(kvx_kv_pull_cache, pull_cache_timeout_negative, E_PARAM),
    R(kvx_kv_pull_cache, pull_cache_timeout_int_min, E_PARAM),
    R(kvx_kv_pull_cache, pull_cache_size_zero, KVX_ERR_SIZE_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_size_entry_plus_1, KVX_ERR_SIZE_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_size_uint64_max, KVX_ERR_SIZE_OUT_OF_RANGE),
    R(kvx_kv_pull_cache, pull_cache_tensors_per_layer_0, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_tensors_per_layer_3, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_tensors_per_layer_uint32_max, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_layers_reversed, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_layers_out_of_range, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_layers_unequal, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_pull_cache, pull_cache_timeout_int_max, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_null_kv, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_null_src, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_null_src_blocks, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_null_dst_blocks, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_counts_zero, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_count_mismatch, KVX_ERR_BLOCK_LIST_MISMATCH),
    R(kvx_kv_pull_blocks, pull_blocks_src_count_size_max, KVX_ERR_BLOCK_LIST_MISMATCH),
    R(kvx_kv_pull_blocks, pull_blocks_src_block_8, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_pull_blocks, pull_blocks_src_block_uint64_max, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_pull_blocks, pull_blocks_dst_block_huge, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_pull_blocks, pull_blocks_remote_batch_1, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_pull_blocks, pull_blocks_not_linked, KVX_ERR_NOT_LINKED),
    R(kvx_kv_pull_blocks, pull_blocks_own_cluster, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_remote_unknown, KVX_ERR_REMOTE_CACHE_NOT_FOUND),
    R(kvx_kv_pull_blocks, pull_blocks_local_unknown, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_pull_blocks, pull_blocks_timeout_negative, E_PARAM),
    R(kvx_kv_pull_blocks, pull_blocks_next_bit, E_UNSUPP),
    R(kvx_kv_push_cache, push_cache_null_kv, E_PARAM),
    R(kvx_kv_push_cache, push_cache_null_dst, E_PARAM),
    R(kvx_kv_push_cache, push_cache_own_cluster, E_PARAM),
    R(kvx_kv_push_cache, push_cache_unknown_local, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_push_cache, push_cache_removed_local, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_push_cache, push_cache_not_linked, KVX_ERR_NOT_LINKED),
    R(kvx_kv_push_cache, push_cache_remote_unknown, KVX_ERR_REMOTE_CACHE_NOT_FOUND),
    R(kvx_kv_push_cache, push_cache_local_batch_8, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_push_cache, push_cache_remote_batch_uint32_max, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_push_cache, push_cache_size_too_big, KVX_ERR_SIZE_OUT_OF_RANGE),
    R(kvx_kv_push_cache, push_cache_timeout_negative, E_PARAM),
    R(kvx_kv_push_cache, push_cache_layers_out_of_range, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_push_blocks, push_blocks_null_kv, E_PARAM),
    R(kvx_kv_push_blocks, push_blocks_null_dst, E_PARAM),
    R(kvx_kv_push_blocks, push_blocks_null_src_blocks, E_PARAM),
    R(kvx_kv_push_blocks, push_blocks_count_mismatch, KVX_ERR_BLOCK_LIST_MISMATCH),
    R(kvx_kv_push_blocks, push_blocks_src_block_8, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_push_blocks, push_blocks_dst_block_uint64_max, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_push_blocks, push_blocks_remote_batch_nonzero, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_push_blocks, push_blocks_not_linked, KVX_ERR_NOT_LINKED),
    R(kvx_kv_push_blocks, push_blocks_remote_unknown, KVX_ERR_REMOTE_CACHE_NOT_FOUND),
    R(kvx_kv_push_blocks, push_blocks_local_removed, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_push_blocks, push_blocks_timeout_negative, E_PARAM),
    R(kvx_kv_push_blocks, push_blocks_next_bit, E_UNSUPP),
    R(kvx_kv_copy_cache, copy_cache_null_kv, E_PARAM),
    R(kvx_kv_copy_cache, copy_cache_unknown_src, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_copy_cache, copy_cache_unknown_dst, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_copy_cache, copy_cache_removed_dst, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_copy_cache, copy_cache_src_batch_8, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_copy_cache, copy_cache_dst_batch_uint32_max, KVX_ERR_BATCH_OUT_OF_RANGE),
    R(kvx_kv_copy_cache, copy_cache_same_entry, E_PARAM),
    R(kvx_kv_copy_cache, copy_cache_next_bit, E_UNSUPP),
    R(kvx_kv_copy_cache, copy_cache_size_zero, KVX_ERR_SIZE_OUT_OF_RANGE),
    R(kvx_kv_copy_cache, copy_cache_tensors_per_layer_0, KVX_ERR_LAYER_RANGE),
    R(kvx_kv_copy_cache, copy_cache_timeout_negative, KVX_OK), /* FINDING */
    R(kvx_kv_copy_blocks, copy_blocks_null_kv, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_null_lists, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_null_counts, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_num_lists_zero, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_null_src_blocks, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_src_count_zero, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_count_mismatch, KVX_ERR_BLOCK_LIST_MISMATCH),
    R(kvx_kv_copy_blocks, copy_blocks_second_list_mismatch, KVX_ERR_BLOCK_LIST_MISMATCH),
    R(kvx_kv_copy_blocks, copy_blocks_block_out_of_range, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_copy_blocks, copy_blocks_second_list_out_of_range, KVX_ERR_BLOCK_OUT_OF_RANGE),
    R(kvx_kv_copy_blocks, copy_blocks_same_blocks, E_PARAM),
    R(kvx_kv_copy_blocks, copy_blocks_unknown_src, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_copy_blocks, copy_blocks_removed_dst, KVX_ERR_CACHE_NOT_FOUND),
    R(kvx_kv_copy_blocks, copy_blocks_next_bit, E_UNSUPP),
    R(kvx_kv_copy_blocks, copy_blocks_num_lists_size_max, E_PARAM),
    R(kvx_kv_notify, kv_notify_null_kv, E_PARAM),
    R(kvx_kv_notify, kv_notify_unknown_cluster, KVX_ERR_NOT_LINKED),
    R(kvx_kv_notify, kv_notify_own_cluster, KVX_ERR_NOT_LINKED),
    R(kvx_kv_notify, kv_notify_null_name, E_PARAM),
    R(kvx_kv_notify, kv_notify_null_msg_len4, E_PARAM),
    R(kvx_kv_notify, kv_notify_name_too_long, E_PARAM),
    R(kvx_kv_notify, kv_notify_msg_too_long, E_PARAM),
    R(kvx_kv_notify, kv_notify_msg_len_size_max, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_null_kv, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_null_list, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_null_count, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_timeout_negative, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_timeout_int_min, E_PARAM),
    R(kvx_kv_notify_fetch, kv_notify_fetch_none, KVX_ERR_TIMEOUT),
};

#define NROWS (sizeof(TABLE) / sizeof(TABLE[0]))

/* Every KVX_API function of include/kvx (see the comment at the top). */
static const char *const PUBLIC[] = {
    /* status.h */
    "kvx_status_string",
    "kvx_status_name",
    "kvx_last_error",
    /* log.h */
    "kvx_log_set_level",
    "kvx_log_get_level",
    "kvx_log_set_sink",
    "kvx_log_level_name",
    /* version.h */
    "kvx_version",
    /* device.h */
    "kvx_device_init",
    "kvx_device_backend",
    "kvx_device_count",
    "kvx_device_host_accessible",
    "kvx_device_malloc",
    "kvx_device_free",
    "kvx_device_memset",
    "kvx_device_memcpy",
    "kvx_device_locate",
    "kvx_host_malloc",
    "kvx_host_free",
    "kvx_device_used",
    /* engine.h */
    "kvx_engine_create",
    "kvx_engine_destroy",
    "kvx_engine_name",
    "kvx_mem_register",
    "kvx_mem_deregister",
    "kvx_engine_remote_mem",
    "kvx_engine_connect",
    "kvx_engine_connect_async",
    "kvx_engine_disconnect",
    "kvx_engine_disconnect_async",
    "kvx_engine_peer_state",
    "kvx_engine_peer_epoch",
    "kvx_engine_peers",
    "kvx_engine_incoming_links",
    "kvx_xfer_sync",
    "kvx_xfer_submit",
    "kvx_xfer_status",
    "kvx_xfer_wait",
    "kvx_xfer_cancel",
    "kvx_xfer_query",
    "kvx_notify_send",
    "kvx_notify_fetch",
    "kvx_notify_wait",
    "kvx_notify_free",
    "kvx_capability",
    /* kv.h */
    "kvx_dtype_size",
    "kvx_kv_create",
    "kvx_kv_destroy",
    "kvx_kv_listen_name",
    "kvx_kv_cluster_id",
    "kvx_kv_role",
    "kvx_kv_link",
    "kvx_kv_unlink",
    "kvx_kv_link_count",
    "kvx_kv_set_role",
    "kvx_kv_cache_allocate",
    "kvx_kv_cache_deallocate",
    "kvx_kv_cache_register",
    "kvx_kv_cache_unregister",
    "kvx_kv_cache_tensors",
    "kvx_kv_pull_cache",
    "kvx_kv_pull_blocks",
    "kvx_kv_push_cache",
    "kvx_kv_push_blocks",
    "kvx_kv_copy_cache",
    "kvx_kv_copy_blocks",
    "kvx_kv_notify",
    "kvx_kv_notify_fetch",
};

#define NPUBLIC (sizeof(PUBLIC) / sizeof(PUBLIC[0]))

/* ============================================================ tests */

static void test_table(void **state)
{
    ctx_t *c = *state;
    int failed = 0;
    for (size_t i = 0; i < NROWS; i++) {
        const row_t *r = &TABLE[i];
        /* A successful kvx call clears the detail, so a detail seen after
         * the row's call was left by that call. */
        int v = 0;
        OKS(kvx_capability(KVX_FEATURE_IPV6, &v));
        assert_string_equal(kvx_last_error(), "");
        g_bad = 0;
        kvx_status_t got = r->run(c);
        char detail[512];
        snprintf(detail, sizeof(detail), "%s", kvx_last_error());
        if (c->after != NULL) {
            c->after(c);
            c->after = NULL;
        }
        if (got != r->want) {
            print_error("row %zu %s / %s: got %s, want %s [%s]\n", i, r->fn, r->name,
                        kvx_status_name(got), kvx_status_name(r->want), detail);
            g_bad++;
        } else if (r->kind == LOST && detail[0] == '\0') {
            print_message("[  NOTE    ] row %zu %s / %s: %s with an empty kvx_last_error() "
                          "(known)\n",
                          i, r->fn, r->name, kvx_status_name(got));
        } else if (r->kind != NS && r->want != KVX_OK && detail[0] == '\0') {
            print_error("row %zu %s / %s: %s with an empty kvx_last_error()\n", i, r->fn, r->name,
                        kvx_status_name(got));
            g_bad++;
        } else if (r->kind != NS && r->want != KVX_OK &&
                   strstr(detail, kvx_status_name(got)) == NULL) {
            /* The detail ends with the name of the status it goes with. */
            print_error("row %zu %s / %s: %s, but the detail is '%s'\n", i, r->fn, r->name,
                        kvx_status_name(got), detail);
            g_bad++;
        }
        char why[256] = "";
        if (fixture_changed(c, why, sizeof(why)) != 0) {
            print_error("row %zu %s / %s: %s\n", i, r->fn, r->name, why);
            g_bad++;
            snapshot(c); /* report each change once */
        }
        if (g_bad != 0) {
            if (got == r->want) {
                print_error("row %zu %s / %s: failed checks above\n", i, r->fn, r->name);
            }
            failed++;
        }
    }
    print_message("[  TABLE   ] %zu rows, %zu public functions, %d failed\n", NROWS, NPUBLIC,
                  failed);
    if (failed != 0) {
        fail_msg("%d of %zu rows failed", failed, NROWS);
    }
}

/* The table names only public functions, and every one of them. */
static void test_coverage(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t p = 0; p < NPUBLIC; p++) {
        size_t rows = 0;
        for (size_t i = 0; i < NROWS; i++) {
            rows += strcmp(TABLE[i].fn, PUBLIC[p]) == 0;
        }
        if (rows == 0) {
            print_error("%s has no row\n", PUBLIC[p]);
            bad++;
        }
    }
    for (size_t i = 0; i < NROWS; i++) {
        size_t p = 0;
        while (p < NPUBLIC && strcmp(TABLE[i].fn, PUBLIC[p]) != 0) {
            p++;
        }
        if (p == NPUBLIC) {
            print_error("row %zu names %s, not in the list of public functions\n", i, TABLE[i].fn);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

/* After the whole table: the engines and KV instances used by it still work
 * (the transfers use both transports' paths, whichever KVX_TRANSPORT picks). */
static void test_still_usable(void **state)
{
    ctx_t *c = *state;
    kvx_xfer_state_t xs = KVX_XFER_WAITING;
    kvx_status_t err = KVX_ERR_INTERNAL;

    /* The transfer left finished but unreported (and "canceled" by a row)
     * kept its own state, and is then released. */
    OKS(kvx_xfer_wait(c->c, c->live_id, 5000, &xs, &err));
    assert_int_equal(xs, KVX_XFER_COMPLETED);
    assert_int_equal(err, KVX_OK);
    assert_int_equal(kvx_xfer_status(c->c, c->live_id, &xs, NULL), KVX_ERR_NOT_FOUND);

    /* The link: still the one made by the setup. */
    kvx_peer_state_t ps = KVX_PEER_BROKEN;
    OKS(kvx_engine_peer_state(c->c, c->s_name, &ps, &err));
    assert_int_equal(ps, KVX_PEER_CONNECTED);
    kvx_peer_info_t infos[4];
    size_t n = 0;
    OKS(kvx_engine_peers(c->c, infos, 4, &n));
    assert_int_equal(n, 1);
    uint64_t epoch = 0, inst = 0;
    OKS(kvx_engine_peer_epoch(c->c, c->s_name, &epoch, &inst));
    assert_true(epoch != 0 && inst != 0);
    OKS(kvx_engine_incoming_links(c->s, &n));
    assert_int_equal(n, 1);

    /* WRITE 64 KiB to the server, READ it back elsewhere: the right bytes. */
    const size_t len = 64 << 10;
    uint8_t *src = c->cbuf + 8192, *back = c->cbuf + 8192 + len;
    test_fill(src, len, 21, 0);
    memset(back, 0, len);
    kvx_xfer_desc_t d = {.local_addr = src, .remote_addr = raddr(c->sbuf + 8192), .length = len};
    OKS(kvx_xfer_sync(c->c, c->s_name, KVX_OP_WRITE, &d, 1, NULL));
    assert_int_equal(test_check(c->sbuf + 8192, len, 21, 0), 0);
    d.local_addr = back;
    OKS(kvx_xfer_sync(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL));
    assert_int_equal(test_check(back, len, 21, 0), 0);

    /* Asynchronously, with every parameter (checksum included). */
    memset(back, 0, len);
    kvx_xfer_params_t xp = {.field_mask =
                                KVX_XFER_PARAM_FIELD_TIMEOUT | KVX_XFER_PARAM_FIELD_USER_DATA |
                                KVX_XFER_PARAM_FIELD_REMOTE_TAG | KVX_XFER_PARAM_FIELD_CHECKSUM,
                            .timeout_ms = 5000,
                            .user_data = c,
                            .remote_tag = SERVER_TAG,
                            .checksum = 1};
    kvx_xfer_id_t id = 0;
    OKS(kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, &xp, &id));
    kvx_xfer_result_t res[MAX_OUT];
    uint64_t deadline = test_now_ms() + 5000;
    size_t got = 0;
    do {
        OKS(kvx_xfer_query(c->c, res, MAX_OUT, &n, KVX_XFER_QUERY_SKIP_WAITING));
        got += n;
    } while (got == 0 && test_now_ms() < deadline);
    assert_int_equal(got, 1);
    assert_true(res[0].id == id && res[0].user_data == c && res[0].state == KVX_XFER_COMPLETED);
    assert_int_equal(test_check(back, len, 21, 0), 0);

    /* Every slot is free again: MAX_OUT transfers fit. */
    kvx_xfer_id_t ids[MAX_OUT];
    for (size_t i = 0; i < MAX_OUT; i++) {
        OKS(kvx_xfer_submit(c->c, c->s_name, KVX_OP_READ, &d, 1, NULL, &ids[i]));
    }
    for (size_t i = 0; i < MAX_OUT; i++) {
        OKS(kvx_xfer_wait(c->c, ids[i], 5000, &xs, &err));
        assert_int_equal(xs, KVX_XFER_COMPLETED);
    }

    /* Registrations, both sides. */
    size_t nmem = 0;
    OKS(kvx_engine_remote_mem(c->c, c->s_name, NULL, 0, &nmem, 1000));
    assert_int_equal(nmem, 2);
    kvx_mem_h h = reg(c->c, c->stale_buf, 4096, KVX_MEM_ACCESS_READ_WRITE, 0);
    OKS(kvx_mem_deregister(c->c, h));

    /* A notification arrives whole, from the client. */
    OKS(kvx_notify_send(c->c, c->s_name, "done", "payload", 7, 1000));
    OKS(kvx_notify_wait(c->s, 1000));
    kvx_notification_t *list = NULL;
    OKS(kvx_notify_fetch(c->s, &list, &n));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "done");
    assert_int_equal(list[0].msg_len, 7);
    assert_memory_equal(list[0].msg, "payload", 7);
    kvx_notify_free(list, n);

    /* KV: a pull of scattered blocks moves the right bytes, and only them. */
    const uint64_t sb[3] = {5, 6, 1}, db[3] = {0, 1, 7};
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = c->psrc.id};
    OKS(kvx_kv_pull_blocks(c->d, &r, c->ddst.id, sb, 3, db, 3, NULL));
    for (size_t t = 0; t < 4; t++) {
        for (size_t k = 0; k < 3; k++) {
            memcpy(tc_at(&c->ddst, t, db[k]), tc_at(&c->psrc, t, sb[k]), c->ddst.esize);
        }
    }
    char why[256] = "";
    assert_int_equal(tc_diff_quiet(&c->ddst, why, sizeof(why)), 0);
    assert_int_equal(tc_diff_quiet(&c->psrc, why, sizeof(why)), 0);
    /* ... a pull of an entry with a checksum, and a push of device blocks. */
    kvx_kv_xfer_params_t kxp = {.field_mask = KVX_KV_XFER_FIELD_CHECKSUM, .checksum = 1};
    r.batch_index = 4;
    OKS(kvx_kv_pull_cache(c->d, &r, c->ddst.id, 3, &kxp));
    for (size_t t = 0; t < 4; t++) {
        memcpy(tc_at(&c->ddst, t, 3), tc_at(&c->psrc, t, 4), c->ddst.esize);
    }
    assert_int_equal(tc_diff_quiet(&c->ddst, why, sizeof(why)), 0);
    r.batch_index = 0;
    const uint64_t psb[2] = {2, 3}, pdb[2] = {6, 7};
    OKS(kvx_kv_push_blocks(c->d, c->dsrc.id, &r, psb, 2, pdb, 2, NULL));
    for (size_t t = 0; t < 4; t++) {
        for (size_t k = 0; k < 2; k++) {
            memcpy(tc_at(&c->psrc, t, pdb[k]), tc_at(&c->dsrc, t, psb[k]), c->psrc.esize);
        }
    }
    assert_int_equal(tc_diff_quiet(&c->psrc, why, sizeof(why)), 0);

    /* KV notification, links and caches. */
    OKS(kvx_kv_notify(c->d, P_CLUSTER, "kv-done", "x", 1));
    OKS(kvx_kv_notify_fetch(c->p, 1000, &list, &n));
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "kv-done");
    kvx_notify_free(list, n);
    size_t out = 9, in = 9;
    OKS(kvx_kv_link_count(c->d, &out, &in));
    assert_true(out == 1 && in == 0);
    OKS(kvx_kv_link_count(c->p, &out, &in));
    assert_true(out == 0 && in == 1);
    int64_t cid = 0;
    kvx_kv_cache_desc_t dd = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, KV_DIMS);
    OKS(kvx_kv_cache_allocate(c->d, &dd, &cid, NULL));
    assert_true(cid > c->d_removed); /* ids are never reused */
    OKS(kvx_kv_cache_deallocate(c->d, cid));

    /* Device memory: as much in use as after the setup. */
    size_t used = 0;
    OKS(kvx_device_used(0, &used));
    assert_int_equal(used, c->used0);
    OKS(kvx_device_used(1, &used));
    assert_int_equal(used, c->used1);
}

static int group_setup(void **state)
{
    if (getenv("KVX_LOG_LEVEL") == NULL) {
        /* Refused calls may log warnings; they are expected here. */
        kvx_log_set_level(KVX_LOG_ERROR);
    }
    return setup(state);
}

int main(void)
{
    /* One fixture for all: the table, then the check that it is still
     * usable. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_still_usable),
    };
    return cmocka_run_group_tests(tests, group_setup, teardown);
}

/*
 * kvx-demo: two processes on one host moving data with kvx.
 *
 *   kvx-demo server 127.0.0.1:0 --port-file FILE
 *   kvx-demo client 127.0.0.1 127.0.0.1:PORT
 *
 * Engine demo. The server puts a 64 MiB source (a known pattern) and a
 * 64 MiB destination in device memory (the host backend stands in for a
 * GPU), registers both and waits. The client finds them through the remote
 * memory table, READs the source as 16 x 4 MiB and as 16384 scattered 4 KiB
 * pieces, WRITEs it back into the destination, checks every byte it read,
 * and tells the server it is done; the server checks every byte it received.
 *
 *   kvx-demo kv-prompt 127.0.0.1:0 --port-file FILE
 *   kvx-demo kv-decoder 127.0.0.1 127.0.0.1:PORT
 *
 * KV demo (kv.h). The prompt allocates a paged KV cache shaped like a real
 * model in device memory: 32 layers x (K, V) = 64 fp16 tensors of
 * [256 blocks, 16 tokens, 8 KV heads, 128 dims], 32 KiB per block per tensor,
 * 512 MiB in all, filled with a pattern of (tensor, block, byte). The decoder
 * allocates its own pool, links to the prompt and pulls the 128 blocks of a
 * 2,048-token request, scattered on both sides, several times; it checks
 * every byte of its pool after each pull and compares the time with memcpy
 * of the same spans between two local buffers. It then notifies the prompt
 * and unlinks. Both exit 0 only if every byte matched.
 */
#include <kvx/kvx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REGION  (64u << 20)
#define TAG_SRC 1
#define TAG_DST 2

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)((i * 131u) ^ (i >> 12));
}

static int fail(const char *what, kvx_status_t st)
{
    fprintf(stderr, "kvx-demo: %s: %s\n  %s\n", what, kvx_status_string(st), kvx_last_error());
    return 1;
}

/* Write the port of @p bound ("ip:port") to @p port_file atomically: the
 * reader sees either no file or the whole number. */
static int publish_port(const char *bound, const char *port_file)
{
    const char *colon = strrchr(bound, ':');
    if (colon == NULL) {
        fprintf(stderr, "kvx-demo: %s has no port\n", bound);
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", colon + 1) < 0 || fclose(f) != 0 ||
        rename(tmp, port_file)) {
        perror("kvx-demo: port file");
        return 1;
    }
    return 0;
}

static kvx_status_t make_engine(const char *name, kvx_engine_h *engine)
{
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = name};
    return kvx_engine_create(&params, engine);
}

static int server(const char *name, const char *port_file)
{
    kvx_engine_h engine;
    kvx_status_t st = make_engine(name, &engine);
    if (st != KVX_OK) {
        return fail("create engine", st);
    }
    uint8_t *src, *dst, *check;
    if ((st = kvx_device_malloc(0, REGION, (void **)&src)) != KVX_OK ||
        (st = kvx_device_malloc(0, REGION, (void **)&dst)) != KVX_OK) {
        return fail("device malloc", st);
    }
    check = malloc(REGION);
    for (size_t i = 0; i < REGION; i++) {
        check[i] = pattern(i);
    }
    kvx_device_memcpy(src, check, REGION, KVX_COPY_H2D, 0);
    kvx_device_memset(0, dst, 0, REGION);

    kvx_mem_h msrc, mdst;
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                         KVX_MEM_PARAM_FIELD_TYPE | KVX_MEM_PARAM_FIELD_TAG,
                           .length = REGION,
                           .mem_type = KVX_MEM_DEVICE};
    mp.address = src;
    mp.tag = TAG_SRC;
    if ((st = kvx_mem_register(engine, &mp, &msrc)) != KVX_OK) {
        return fail("register source", st);
    }
    mp.address = dst;
    mp.tag = TAG_DST;
    if ((st = kvx_mem_register(engine, &mp, &mdst)) != KVX_OK) {
        return fail("register destination", st);
    }

    /* Publish the bound port only now that everything is registered. */
    const char *bound = kvx_engine_name(engine);
    if (publish_port(bound, port_file) != 0) {
        return 1;
    }
    printf("server %s: 2 x %u MiB of device memory registered, waiting for the client\n", bound,
           REGION >> 20);
    fflush(stdout);

    if ((st = kvx_notify_wait(engine, 60000)) != KVX_OK) {
        return fail("wait for the client", st);
    }
    kvx_notification_t *list;
    size_t count;
    kvx_notify_fetch(engine, &list, &count);
    printf("server: notification '%s' from %s: %s\n", list[0].name, list[0].sender, list[0].msg);
    kvx_notify_free(list, count);

    uint8_t *got = malloc(REGION);
    kvx_device_memcpy(got, dst, REGION, KVX_COPY_D2H, 0);
    size_t bad = 0;
    for (size_t i = 0; i < REGION; i++) {
        bad += got[i] != check[i];
    }
    printf("server: destination holds %s (%zu bad bytes of %u)\n",
           bad ? "CORRUPT data" : "the exact pattern", bad, REGION);
    kvx_mem_deregister(engine, msrc);
    kvx_mem_deregister(engine, mdst);
    kvx_engine_destroy(engine);
    kvx_device_free(0, src);
    kvx_device_free(0, dst);
    free(got);
    free(check);
    return bad ? 1 : 0;
}

static kvx_status_t timed(kvx_engine_h engine, const char *remote, kvx_op_t op,
                          kvx_xfer_desc_t *descs, size_t n, const char *what)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        bytes += descs[i].length;
    }
    double t0 = now_s();
    kvx_status_t st = kvx_xfer_sync(engine, remote, op, descs, n, NULL);
    double dt = now_s() - t0;
    if (st == KVX_OK) {
        printf("client: %-5s %-24s %6zu descriptors %6.1f MiB in %7.2f ms = %5.2f GB/s\n",
               op == KVX_OP_READ ? "READ" : "WRITE", what, n, (double)bytes / (1 << 20), dt * 1e3,
               (double)bytes / dt / 1e9);
    }
    return st;
}

static int client(const char *name, const char *remote)
{
    kvx_engine_h engine;
    kvx_status_t st = make_engine(name, &engine);
    if (st != KVX_OK) {
        return fail("create engine", st);
    }
    /* Rendezvous: retry until the server listens, within 10 s. */
    double deadline = now_s() + 10;
    while ((st = kvx_engine_connect(engine, remote, 1000)) != KVX_OK && now_s() < deadline) {
        usleep(50000);
    }
    if (st != KVX_OK) {
        return fail("connect", st);
    }
    kvx_remote_mem_t mems[8];
    size_t nmem = 0;
    if ((st = kvx_engine_remote_mem(engine, remote, mems, 8, &nmem, 0)) != KVX_OK) {
        return fail("remote memory table", st);
    }
    uint64_t rsrc = 0, rdst = 0;
    for (size_t i = 0; i < nmem && i < 8; i++) {
        if (mems[i].tag == TAG_SRC) {
            rsrc = mems[i].address;
        } else if (mems[i].tag == TAG_DST) {
            rdst = mems[i].address;
        }
    }
    if (rsrc == 0 || rdst == 0) {
        fprintf(stderr, "kvx-demo: server did not register its regions\n");
        return 1;
    }
    uint8_t *buf = malloc(REGION);
    memset(buf, 0, REGION);
    kvx_mem_h mbuf;
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = buf,
                           .length = REGION};
    if ((st = kvx_mem_register(engine, &mp, &mbuf)) != KVX_OK) {
        return fail("register", st);
    }
    size_t nsmall = REGION / 4096;
    kvx_xfer_desc_t *descs = malloc(nsmall * sizeof(*descs));
    int rc = 0;
    for (size_t i = 0; i < 16; i++) {
        size_t off = i * (REGION / 16);
        descs[i] = (kvx_xfer_desc_t){buf + off, rsrc + off, REGION / 16};
    }
    for (int pass = 0; pass < 3; pass++) {
        if ((st = timed(engine, remote, KVX_OP_READ, descs, 16, "64 MiB as 4 MiB blocks")) !=
            KVX_OK) {
            return fail("read", st);
        }
    }
    size_t bad = 0;
    for (size_t i = 0; i < REGION; i++) {
        bad += buf[i] != pattern(i);
    }
    memset(buf, 0, REGION);
    /* Scattered: block i of the source lands in slot (i * 7919) mod n. */
    for (size_t i = 0; i < nsmall; i++) {
        size_t slot = (i * 7919) % nsmall;
        descs[i] = (kvx_xfer_desc_t){buf + slot * 4096, rsrc + i * 4096, 4096};
    }
    if ((st = timed(engine, remote, KVX_OP_READ, descs, nsmall, "64 MiB as 4 KiB scattered")) !=
        KVX_OK) {
        return fail("scattered read", st);
    }
    for (size_t i = 0; i < nsmall; i++) {
        size_t slot = (i * 7919) % nsmall;
        for (size_t j = 0; j < 4096; j++) {
            bad += buf[slot * 4096 + j] != pattern(i * 4096 + j);
        }
    }
    for (size_t i = 0; i < nsmall; i++) {
        descs[i].remote_addr = rdst + i * 4096;
    }
    if ((st = timed(engine, remote, KVX_OP_WRITE, descs, nsmall, "64 MiB as 4 KiB scattered")) !=
        KVX_OK) {
        return fail("scattered write", st);
    }
    printf("client: data read back %s (%zu bad bytes)\n", bad ? "is CORRUPT" : "is exact", bad);
    char msg[128];
    snprintf(msg, sizeof(msg), "client wrote %u bytes; %zu bad bytes seen", REGION, bad);
    if ((st = kvx_notify_send(engine, remote, "done", msg, strlen(msg), 0)) != KVX_OK) {
        rc = fail("notify", st);
    }
    kvx_engine_disconnect(engine, remote, 0);
    kvx_mem_deregister(engine, mbuf);
    kvx_engine_destroy(engine);
    free(descs);
    free(buf);
    return rc || bad;
}

/* ------------------------------------------------------------- KV demo */

/* The cache: 32 layers x (K, V), fp16, paged; a block holds 16 tokens of
 * 8 KV heads x 128 dims = 32 KiB per tensor. */
#define KV_LAYERS       32
#define KV_TENSORS      (2 * KV_LAYERS)
#define KV_BLOCK_TOKENS 16
#define KV_HEADS        8
#define KV_HEAD_DIM     128
#define KV_BLOCK_BYTES  ((size_t)KV_BLOCK_TOKENS * KV_HEADS * KV_HEAD_DIM * 2)
#define KV_POOL_BLOCKS  256 /* each side's pool: 64 x 8 MiB = 512 MiB */
#define KV_TENSOR_BYTES ((size_t)KV_POOL_BLOCKS * KV_BLOCK_BYTES)
#define KV_REQ_TOKENS   2048
#define KV_REQ_BLOCKS   (KV_REQ_TOKENS / KV_BLOCK_TOKENS) /* 128 */
#define KV_RUNS         6                                 /* 1 warm-up + 5 measured */
#define KV_POISON       0xEE                              /* decoder pool before each pull */

#define KV_PROMPT_CLUSTER  1001
#define KV_DECODER_CLUSTER 2002
/* The prompt's pool is its first cache, and cache ids start at 1. */
#define KV_PROMPT_CACHE 1
#define KV_DONE         "kv-done"

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Content of block @p block of tensor @p tensor on the prompt: every byte
 * depends on the tensor, the block and its offset. */
static void kv_fill_block(uint8_t *p, uint32_t tensor, uint64_t block)
{
    uint64_t base = mix64(((uint64_t)tensor << 32) | block);
    for (size_t i = 0; i < KV_BLOCK_BYTES / 8; i++) {
        uint64_t w = base + i * 0x9e3779b97f4a7c15ull;
        memcpy(p + i * 8, &w, 8);
    }
}

/* The request's block table on one side: @p n distinct blocks of a pool of
 * KV_POOL_BLOCKS, in the scattered order a paged allocator hands out after
 * some churn (a seeded shuffle). The decoder computes both sides' tables
 * here; in a serving system the prompt's table comes with the request. */
static void kv_block_table(uint64_t *table, size_t n, uint64_t seed)
{
    uint64_t pool[KV_POOL_BLOCKS];
    for (size_t i = 0; i < KV_POOL_BLOCKS; i++) {
        pool[i] = i;
    }
    for (size_t i = KV_POOL_BLOCKS - 1; i > 0; i--) {
        size_t j = (size_t)(mix64(seed + i) % (i + 1));
        uint64_t t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    memcpy(table, pool, n * sizeof(*table));
}

static kvx_kv_cache_desc_t kv_pool_desc(void)
{
    kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                              KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                              KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                                .placement = KVX_MEM_DEVICE,
                                .num_tensors = KV_TENSORS,
                                .dtype = KVX_DTYPE_FP16,
                                .ndims = 4,
                                .dims = {KV_POOL_BLOCKS, KV_BLOCK_TOKENS, KV_HEADS, KV_HEAD_DIM}};
    return desc;
}

static kvx_status_t kv_make(uint64_t cluster_id, kvx_kv_role_t role, const char *listen,
                            const char *local_ip, kvx_kv_h *kv_p)
{
    kvx_kv_params_t params = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID |
                                            KVX_KV_PARAM_FIELD_ROLE |
                                            KVX_KV_PARAM_FIELD_SYNC_TIMEOUT,
                              .cluster_id = cluster_id,
                              .role = role,
                              .sync_timeout_ms = 30000};
    if (listen != NULL) {
        params.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        params.listen = listen;
    }
    if (local_ip != NULL) {
        params.field_mask |= KVX_KV_PARAM_FIELD_LOCAL_IP;
        params.local_ip = local_ip;
    }
    return kvx_kv_create(&params, kv_p);
}

static int kv_prompt(const char *listen, const char *port_file)
{
    kvx_kv_h kv;
    kvx_status_t st = kv_make(KV_PROMPT_CLUSTER, KVX_KV_ROLE_PROMPT, listen, NULL, &kv);
    if (st != KVX_OK) {
        return fail("create prompt instance", st);
    }
    kvx_kv_cache_desc_t desc = kv_pool_desc();
    int64_t cache_id;
    void *tensors[KV_TENSORS];
    if ((st = kvx_kv_cache_allocate(kv, &desc, &cache_id, tensors)) != KVX_OK) {
        kvx_kv_destroy(kv);
        return fail("allocate the prompt's pool", st);
    }
    if (cache_id != KV_PROMPT_CACHE) {
        fprintf(stderr, "kvx-demo: first cache got id %lld, expected %d\n", (long long)cache_id,
                KV_PROMPT_CACHE);
        kvx_kv_destroy(kv);
        return 1;
    }
    /* Fill every block of every tensor through a host buffer, as one would
     * fill real device memory. */
    uint8_t *host = malloc(KV_TENSOR_BYTES);
    if (host == NULL) {
        kvx_kv_destroy(kv);
        return fail("host buffer", KVX_ERR_NO_MEMORY);
    }
    for (uint32_t t = 0; t < KV_TENSORS && st == KVX_OK; t++) {
        for (uint64_t b = 0; b < KV_POOL_BLOCKS; b++) {
            kv_fill_block(host + b * KV_BLOCK_BYTES, t, b);
        }
        st = kvx_device_memcpy(tensors[t], host, KV_TENSOR_BYTES, KVX_COPY_H2D, 0);
    }
    free(host);
    if (st != KVX_OK) {
        kvx_kv_destroy(kv);
        return fail("fill the pool", st);
    }

    const char *bound = kvx_kv_listen_name(kv);
    if (publish_port(bound, port_file) != 0) {
        kvx_kv_destroy(kv);
        return 1;
    }
    printf("kv-prompt %s: cluster %d, cache %lld = %d tensors [%d, %d, %d, %d] fp16, %zu MiB of "
           "device memory (%s backend); waiting for the decoder\n",
           bound, KV_PROMPT_CLUSTER, (long long)cache_id, KV_TENSORS, KV_POOL_BLOCKS,
           KV_BLOCK_TOKENS, KV_HEADS, KV_HEAD_DIM, KV_TENSORS * KV_TENSOR_BYTES >> 20,
           kvx_device_backend());
    fflush(stdout);

    /* The decoder reads the pool by itself; the prompt only waits for its
     * verdict. */
    int rc = 1, done = 0;
    double deadline = now_s() + 120;
    while (!done && now_s() < deadline) {
        kvx_notification_t *list = NULL;
        size_t count = 0;
        st = kvx_kv_notify_fetch(kv, 1000, &list, &count);
        if (st == KVX_ERR_TIMEOUT) {
            continue;
        }
        if (st != KVX_OK) {
            kvx_kv_destroy(kv);
            return fail("wait for the decoder", st);
        }
        for (size_t i = 0; i < count; i++) {
            if (strcmp(list[i].name, KV_DONE) == 0) {
                printf("kv-prompt: notification '%s' from %s: %s\n", list[i].name, list[i].sender,
                       list[i].msg);
                rc = strncmp(list[i].msg, "ok", 2) != 0;
                done = 1;
            }
        }
        kvx_notify_free(list, count);
    }
    if (!done) {
        fprintf(stderr, "kvx-demo: no word from the decoder\n");
    }
    /* Keep the pool until the decoder has unlinked. */
    size_t incoming = 1;
    deadline = now_s() + 10;
    while (done && kvx_kv_link_count(kv, NULL, &incoming) == KVX_OK && incoming > 0 &&
           now_s() < deadline) {
        usleep(10000);
    }
    if (done) {
        printf("kv-prompt: %s, exiting\n",
               incoming == 0 ? "decoder unlinked" : "decoder still linked after 10 s");
    }
    kvx_kv_destroy(kv);
    return rc;
}

/* Spans of consecutive blocks on both sides, as the pull moves them. */
typedef struct kv_run {
    uint64_t src, dst, len;
} kv_run_t;

static size_t kv_runs(const uint64_t *src, const uint64_t *dst, size_t n, kv_run_t *runs)
{
    size_t nruns = 0;
    for (size_t k = 0; k < n;) {
        size_t len = 1;
        while (k + len < n && src[k + len] == src[k] + len && dst[k + len] == dst[k] + len) {
            len++;
        }
        runs[nruns++] = (kv_run_t){src[k], dst[k], len};
        k += len;
    }
    return nruns;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best and median of the measured runs (the first is the warm-up). */
static void kv_stats(const double *times, double *best, double *median)
{
    double sorted[KV_RUNS - 1];
    memcpy(sorted, times + 1, sizeof(sorted));
    qsort(sorted, KV_RUNS - 1, sizeof(double), cmp_double);
    *best = sorted[0];
    size_t m = (KV_RUNS - 1) / 2;
    *median = (KV_RUNS - 1) % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/* Check every byte of the decoder's pool: block dst[k] holds the prompt's
 * block src[k]; every other block still holds the poison. */
static size_t kv_check(void *const *tensors, const uint64_t *src, const uint64_t *dst,
                       uint8_t *host, kvx_status_t *st)
{
    int64_t from[KV_POOL_BLOCKS];
    for (size_t b = 0; b < KV_POOL_BLOCKS; b++) {
        from[b] = -1;
    }
    for (size_t k = 0; k < KV_REQ_BLOCKS; k++) {
        from[dst[k]] = (int64_t)src[k];
    }
    uint8_t expect[KV_BLOCK_BYTES], poison[KV_BLOCK_BYTES];
    memset(poison, KV_POISON, sizeof(poison));
    size_t bad = 0;
    for (uint32_t t = 0; t < KV_TENSORS; t++) {
        *st = kvx_device_memcpy(host, tensors[t], KV_TENSOR_BYTES, KVX_COPY_D2H, 0);
        if (*st != KVX_OK) {
            return SIZE_MAX;
        }
        for (size_t b = 0; b < KV_POOL_BLOCKS; b++) {
            const uint8_t *want = poison;
            if (from[b] >= 0) {
                kv_fill_block(expect, t, (uint64_t)from[b]);
                want = expect;
            }
            const uint8_t *got = host + b * KV_BLOCK_BYTES;
            if (memcmp(got, want, KV_BLOCK_BYTES) != 0) {
                for (size_t i = 0; i < KV_BLOCK_BYTES; i++) {
                    bad += got[i] != want[i];
                }
            }
        }
    }
    return bad;
}

/* memcpy of the same spans between two local buffers shaped like the two
 * pools (tensor t of a pool at t * KV_TENSOR_BYTES). */
static double kv_memcpy_spans(uint8_t *dst_pool, const uint8_t *src_pool, const kv_run_t *runs,
                              size_t nruns)
{
    double t0 = now_s();
    for (size_t t = 0; t < KV_TENSORS; t++) {
        uint8_t *d = dst_pool + t * KV_TENSOR_BYTES;
        const uint8_t *s = src_pool + t * KV_TENSOR_BYTES;
        for (size_t r = 0; r < nruns; r++) {
            memcpy(d + runs[r].dst * KV_BLOCK_BYTES, s + runs[r].src * KV_BLOCK_BYTES,
                   runs[r].len * KV_BLOCK_BYTES);
        }
    }
    return now_s() - t0;
}

static int kv_decoder(const char *local_ip, const char *remote)
{
    kvx_kv_h kv;
    kvx_status_t st = kv_make(KV_DECODER_CLUSTER, KVX_KV_ROLE_DECODER, NULL, local_ip, &kv);
    if (st != KVX_OK) {
        return fail("create decoder instance", st);
    }
    kvx_kv_cache_desc_t desc = kv_pool_desc();
    int64_t cache_id;
    void *tensors[KV_TENSORS];
    if ((st = kvx_kv_cache_allocate(kv, &desc, &cache_id, tensors)) != KVX_OK) {
        kvx_kv_destroy(kv);
        return fail("allocate the decoder's pool", st);
    }

    /* Rendezvous: the prompt published its port once its pool was ready;
     * retry the link while it is refused or slow, within 10 s. */
    kvx_kv_cluster_t cluster = {.remote_cluster_id = KV_PROMPT_CLUSTER, .remote = remote};
    double deadline = now_s() + 10;
    int tries = 0;
    for (;;) {
        tries++;
        st = kvx_kv_link(kv, &cluster, 1, 1000, NULL);
        if ((st != KVX_ERR_CONNECTION_REFUSED && st != KVX_ERR_TIMEOUT) || now_s() > deadline) {
            break;
        }
        usleep(20000); /* back off before the next try */
    }
    if (st != KVX_OK) {
        kvx_kv_destroy(kv);
        return fail("link to the prompt", st);
    }
    printf("kv-decoder %s: linked to cluster %d at %s (%d %s)\n", kvx_kv_listen_name(kv),
           KV_PROMPT_CLUSTER, remote, tries, tries == 1 ? "try" : "tries");

    /* The request's blocks: scattered on the prompt, mapped to another
     * scattered list on the decoder. */
    uint64_t src[KV_REQ_BLOCKS], dst[KV_REQ_BLOCKS];
    kv_block_table(src, KV_REQ_BLOCKS, 0x5eed0001);
    kv_block_table(dst, KV_REQ_BLOCKS, 0x5eed0002);
    kv_run_t runs[KV_REQ_BLOCKS];
    size_t nruns = kv_runs(src, dst, KV_REQ_BLOCKS, runs);
    size_t bytes = (size_t)KV_REQ_BLOCKS * KV_TENSORS * KV_BLOCK_BYTES;
    printf("kv-decoder: request of %d tokens = %d blocks, prompt blocks %llu, %llu, %llu, ... -> "
           "decoder blocks %llu, %llu, %llu, ...\n",
           KV_REQ_TOKENS, KV_REQ_BLOCKS, (unsigned long long)src[0], (unsigned long long)src[1],
           (unsigned long long)src[2], (unsigned long long)dst[0], (unsigned long long)dst[1],
           (unsigned long long)dst[2]);
    printf("kv-decoder: each pull: %d blocks x %d tensors of %zu KiB = %.1f MiB in %zu spans\n",
           KV_REQ_BLOCKS, KV_TENSORS, KV_BLOCK_BYTES >> 10, (double)bytes / (1 << 20),
           nruns * KV_TENSORS);

    /* The memcpy baseline's buffers, faulted in and filled up front. */
    size_t pool_bytes = (size_t)KV_TENSORS * KV_TENSOR_BYTES;
    uint8_t *host = malloc(KV_TENSOR_BYTES);
    uint8_t *msrc = malloc(pool_bytes);
    uint8_t *mdst = malloc(pool_bytes);
    if (host == NULL || msrc == NULL || mdst == NULL) {
        kvx_kv_destroy(kv);
        return fail("host buffers", KVX_ERR_NO_MEMORY);
    }
    for (uint32_t t = 0; t < KV_TENSORS; t++) {
        for (uint64_t b = 0; b < KV_POOL_BLOCKS; b++) {
            kv_fill_block(msrc + t * KV_TENSOR_BYTES + b * KV_BLOCK_BYTES, t, b);
        }
    }
    memset(mdst, KV_POISON, pool_bytes);

    kvx_kv_remote_cache_t rc_src = {
        .cluster_id = KV_PROMPT_CLUSTER, .cache_id = KV_PROMPT_CACHE, .batch_index = 0};
    double kv_t[KV_RUNS], mc_t[KV_RUNS];
    size_t bad = 0;
    for (int r = 0; r < KV_RUNS && st == KVX_OK; r++) {
        for (uint32_t t = 0; t < KV_TENSORS && st == KVX_OK; t++) {
            st = kvx_device_memset(0, tensors[t], KV_POISON, KV_TENSOR_BYTES);
        }
        if (st != KVX_OK) {
            break;
        }
        double t0 = now_s();
        st =
            kvx_kv_pull_blocks(kv, &rc_src, cache_id, src, KV_REQ_BLOCKS, dst, KV_REQ_BLOCKS, NULL);
        kv_t[r] = now_s() - t0;
        if (st != KVX_OK) {
            break;
        }
        mc_t[r] = kv_memcpy_spans(mdst, msrc, runs, nruns);
        size_t run_bad = kv_check(tensors, src, dst, host, &st);
        if (st != KVX_OK) {
            break;
        }
        bad += run_bad;
        char label[16] = "warm-up";
        if (r > 0) {
            snprintf(label, sizeof(label), "pull %d", r);
        }
        printf("kv-decoder: %-8s %7.2f ms %6.2f GB/s   memcpy %7.2f ms %6.2f GB/s   %s\n", label,
               kv_t[r] * 1e3, (double)bytes / kv_t[r] / 1e9, mc_t[r] * 1e3,
               (double)bytes / mc_t[r] / 1e9, run_bad ? "BAD BYTES" : "every byte matches");
        fflush(stdout);
    }
    int rc = 0;
    if (st != KVX_OK) {
        rc = fail("pull", st);
    } else {
        double kv_best, kv_med, mc_best, mc_med;
        kv_stats(kv_t, &kv_best, &kv_med);
        kv_stats(mc_t, &mc_best, &mc_med);
        printf("kv-decoder: kv pull  best %7.2f ms %6.2f GB/s, median %7.2f ms %6.2f GB/s "
               "(%d runs after the warm-up)\n",
               kv_best * 1e3, (double)bytes / kv_best / 1e9, kv_med * 1e3,
               (double)bytes / kv_med / 1e9, KV_RUNS - 1);
        printf("kv-decoder: memcpy   best %7.2f ms %6.2f GB/s, median %7.2f ms %6.2f GB/s\n",
               mc_best * 1e3, (double)bytes / mc_best / 1e9, mc_med * 1e3,
               (double)bytes / mc_med / 1e9);
        printf("kv-decoder: kv pull / memcpy throughput: best %.2f, median %.2f\n",
               mc_best / kv_best, mc_med / kv_med);
        printf("kv-decoder: %d pulls checked, %zu bad bytes\n", KV_RUNS, bad);
    }

    char msg[160];
    if (rc == 0 && bad == 0) {
        snprintf(msg, sizeof(msg), "ok: %d pulls of %d blocks x %d tensors, every byte matched",
                 KV_RUNS, KV_REQ_BLOCKS, KV_TENSORS);
    } else {
        snprintf(msg, sizeof(msg), "bad: %zu bad bytes, last status %s", bad, kvx_status_name(st));
    }
    if ((st = kvx_kv_notify(kv, KV_PROMPT_CLUSTER, KV_DONE, msg, strlen(msg))) != KVX_OK) {
        rc = fail("notify the prompt", st);
    }
    if ((st = kvx_kv_unlink(kv, &cluster, 1, 5000, 0, NULL)) != KVX_OK) {
        rc = fail("unlink", st);
    }
    if ((st = kvx_kv_cache_deallocate(kv, cache_id)) != KVX_OK) {
        rc = fail("deallocate", st);
    }
    kvx_kv_destroy(kv);
    free(host);
    free(msrc);
    free(mdst);
    return rc || bad;
}

int main(int argc, char **argv)
{
    /* Line by line, so the output of two processes on one terminal or pipe
     * interleaves in the order things happen. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 5 && strcmp(argv[1], "server") == 0 && strcmp(argv[3], "--port-file") == 0) {
        return server(argv[2], argv[4]);
    }
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return client(argv[2], argv[3]);
    }
    if (argc >= 5 && strcmp(argv[1], "kv-prompt") == 0 && strcmp(argv[3], "--port-file") == 0) {
        return kv_prompt(argv[2], argv[4]);
    }
    if (argc == 4 && strcmp(argv[1], "kv-decoder") == 0) {
        return kv_decoder(argv[2], argv[3]);
    }
    fprintf(stderr, "usage: kvx-demo server IP:PORT --port-file FILE\n"
                    "       kvx-demo client IP REMOTE_IP:PORT\n"
                    "       kvx-demo kv-prompt IP:PORT --port-file FILE\n"
                    "       kvx-demo kv-decoder IP REMOTE_IP:PORT\n");
    return 2;
}

/*
 * kvx-test-peer: the second process of the integration and fault tests.
 *
 *   kvx-test-peer serve IP:PORT --port-file FILE [--peer-timeout MS]
 *
 * Registers the regions listed in harness.h, writes its port to FILE once
 * ready, then serves until SIGTERM or a "quit" command. Commands arrive as
 * notifications (name = command, message = "seq args"); the result goes to
 * the mailbox region as {seq, result}, which the test reads:
 *   check  tag off len seed -> number of bytes not matching the pattern
 *   fill   tag seed         -> 0
 *   reg    tag size         -> status of registering a new region
 *   dereg  tag              -> status of deregistering a region
 *   links                   -> number of incoming links
 *   notify-to addr count    -> connects to engine addr and sends it count
 *                              notifications "from-peer" ("<pid> <i>");
 *                              the number sent, or the connect status
 *   quit                    -> exits 0
 * --peer-timeout sets the engine's peer_timeout_ms.
 *
 *   kvx-test-peer initiate IP:PORT --port-file FILE [--rounds N] [--seed S]
 *                 [--result FILE]
 *
 * The other way round: an initiator that connects to the engine at IP:PORT,
 * which must register regions tagged PEER_TAG_SRC (pattern PEER_TAG_SRC at
 * every offset) and PEER_TAG_DST, both at least 32 MiB. Each round keeps 16
 * async transfers of 4 MiB in flight: READs of SRC, checked, and WRITEs of
 * the pattern of seed S (at the remote offset) to the first 32 MiB of DST.
 * It writes 0 to FILE after its first round (transfers flow), runs N rounds
 * (0: until killed), writes "bytes=B bad=N requests=R failed=F" to the
 * result file and exits 0 if every transfer completed with intact data.
 *
 *   kvx-test-peer kv-serve IP:PORT --port-file FILE --cluster ID --seed S
 *
 * A KV instance (cluster ID) listening on IP:PORT with one allocated cache
 * (id 1, see PEER_KV_* in harness.h), tensor i filled with the pattern of
 * seed S + i; writes its port to FILE and serves until SIGTERM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

typedef struct region {
    uint64_t tag;
    uint8_t *base;
    size_t len;
    int device;
    kvx_mem_h mem;
} region_t;

static volatile sig_atomic_t stop;
static region_t regions[32];
static int nregions;
static volatile uint64_t mailbox[2];

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static region_t *find(uint64_t tag)
{
    for (int i = 0; i < nregions; i++) {
        if (regions[i].tag == tag && regions[i].base != NULL) {
            return &regions[i];
        }
    }
    return NULL;
}

static kvx_status_t add_region(kvx_engine_h engine, uint64_t tag, size_t len, int device,
                               kvx_mem_access_t access, void *fixed)
{
    if (nregions == 32) {
        return KVX_ERR_RESOURCE_EXHAUSTED;
    }
    region_t *r = &regions[nregions];
    r->tag = tag;
    r->len = len;
    r->device = device;
    if (fixed != NULL) {
        r->base = fixed;
    } else if (device) {
        if (kvx_device_malloc(0, len, (void **)&r->base) != KVX_OK) {
            return KVX_ERR_NO_MEMORY;
        }
        kvx_device_memset(0, r->base, 0, len);
    } else {
        r->base = malloc(len);
        if (r->base == NULL) {
            return KVX_ERR_NO_MEMORY;
        }
        test_fill(r->base, len, tag, 0);
    }
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                         KVX_MEM_PARAM_FIELD_TYPE | KVX_MEM_PARAM_FIELD_TAG |
                                         KVX_MEM_PARAM_FIELD_ACCESS,
                           .address = r->base,
                           .length = len,
                           .mem_type = device ? KVX_MEM_DEVICE : KVX_MEM_HOST,
                           .tag = tag,
                           .access = access};
    kvx_status_t st = kvx_mem_register(engine, &mp, &r->mem);
    if (st != KVX_OK) {
        fprintf(stderr, "peer: register tag %llu: %s\n", (unsigned long long)tag, kvx_last_error());
        return st;
    }
    nregions++;
    return KVX_OK;
}

static int64_t run(kvx_engine_h engine, const char *cmd, const char *args)
{
    unsigned long long tag = 0, off = 0, len = 0, seed = 0;
    if (strcmp(cmd, "check") == 0 &&
        sscanf(args, "%llu %llu %llu %llu", &tag, &off, &len, &seed) == 4) {
        region_t *r = find(tag);
        if (r == NULL || off > r->len || len > r->len - off) {
            return -1;
        }
        return (int64_t)test_check(r->base + off, len, seed, off);
    }
    if (strcmp(cmd, "fill") == 0 && sscanf(args, "%llu %llu", &tag, &seed) == 2) {
        region_t *r = find(tag);
        if (r == NULL) {
            return -1;
        }
        test_fill(r->base, r->len, seed, 0);
        return 0;
    }
    if (strcmp(cmd, "reg") == 0 && sscanf(args, "%llu %llu", &tag, &len) == 2) {
        return add_region(engine, tag, len, 0, KVX_MEM_ACCESS_READ_WRITE, NULL);
    }
    if (strcmp(cmd, "dereg") == 0 && sscanf(args, "%llu", &tag) == 1) {
        region_t *r = find(tag);
        if (r == NULL) {
            return KVX_ERR_NOT_FOUND;
        }
        kvx_status_t st = kvx_mem_deregister(engine, r->mem);
        if (st == KVX_OK) {
            r->tag = 0; /* keep the memory: a late transfer must not hit freed pages */
        }
        return st;
    }
    if (strcmp(cmd, "links") == 0) {
        size_t count = 0;
        kvx_status_t st = kvx_engine_incoming_links(engine, &count);
        return st == KVX_OK ? (int64_t)count : st;
    }
    char addr[64];
    if (strcmp(cmd, "notify-to") == 0 && sscanf(args, "%63s %llu", addr, &len) == 2) {
        kvx_status_t st = kvx_engine_connect(engine, addr, 5000);
        if (st != KVX_OK && st != KVX_ERR_ALREADY_CONNECTED) {
            return st;
        }
        int64_t sent = 0;
        for (unsigned long long i = 0; i < len; i++) {
            char msg[64];
            int n = snprintf(msg, sizeof(msg), "%d %llu", (int)getpid(), i);
            if (kvx_notify_send(engine, addr, "from-peer", msg, (size_t)n, 5000) == KVX_OK) {
                sent++;
            }
        }
        return sent;
    }
    if (strcmp(cmd, "quit") == 0) {
        stop = 1;
        return 0;
    }
    return -2;
}

/* Atomically: FILE.tmp, then rename. */
static int write_file(const char *path, const char *text)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        perror("peer: write file");
        return -1;
    }
    return 0;
}

/* Value of option @p opt among argv[from..argc) ("--opt value"), or NULL. */
static const char *option(int argc, char **argv, int from, const char *opt)
{
    for (int i = from; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], opt) == 0) {
            return argv[i + 1];
        }
    }
    return NULL;
}

static int serve(const char *listen, const char *port_file, const char *peer_timeout)
{
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = listen};
    if (peer_timeout != NULL) {
        params.field_mask |= KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT;
        params.peer_timeout_ms = (unsigned)strtoul(peer_timeout, NULL, 10);
    }
    kvx_engine_h engine;
    if (kvx_engine_create(&params, &engine) != KVX_OK) {
        fprintf(stderr, "peer: %s\n", kvx_last_error());
        return 1;
    }
    if (add_region(engine, PEER_TAG_SRC, PEER_REGION, 0, KVX_MEM_ACCESS_READ_WRITE, NULL) ||
        add_region(engine, PEER_TAG_DST, PEER_REGION, 1, KVX_MEM_ACCESS_READ_WRITE, NULL) ||
        add_region(engine, PEER_TAG_RO, PEER_RO_REGION, 0, KVX_MEM_ACCESS_READ_ONLY, NULL) ||
        add_region(engine, PEER_TAG_MAILBOX, sizeof(mailbox), 0, KVX_MEM_ACCESS_READ_WRITE,
                   (void *)mailbox)) {
        return 1;
    }
    char port[32];
    snprintf(port, sizeof(port), "%s\n", strrchr(kvx_engine_name(engine), ':') + 1);
    if (write_file(port_file, port) != 0) {
        return 1;
    }
    while (!stop) {
        if (kvx_notify_wait(engine, 100) != KVX_OK) {
            continue;
        }
        kvx_notification_t *list;
        size_t count;
        if (kvx_notify_fetch(engine, &list, &count) != KVX_OK) {
            continue;
        }
        for (size_t i = 0; i < count; i++) {
            unsigned long long seq = 0;
            int used = 0;
            if (sscanf(list[i].msg, "%llu %n", &seq, &used) < 1) {
                continue;
            }
            int64_t result = run(engine, list[i].name, list[i].msg + used);
            /* Result first, then the sequence number the test polls for. */
            mailbox[1] = (uint64_t)result;
            __atomic_store_n(&mailbox[0], seq, __ATOMIC_RELEASE);
        }
        kvx_notify_free(list, count);
    }
    kvx_engine_destroy(engine);
    return 0;
}

#define INIT_CHUNK (4u << 20)
#define INIT_PAIRS 8 /* READs and WRITEs per round: 16 transfers in flight */

static int initiate(const char *target, const char *ready_file, unsigned rounds, uint64_t seed,
                    const char *result_file)
{
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = "127.0.0.1"};
    kvx_engine_h engine;
    if (kvx_engine_create(&params, &engine) != KVX_OK ||
        test_connect(engine, target, 10000) != KVX_OK) {
        fprintf(stderr, "peer: initiate: %s\n", kvx_last_error());
        return 1;
    }
    uint64_t src = test_remote_region(engine, target, PEER_TAG_SRC);
    uint64_t dst = test_remote_region(engine, target, PEER_TAG_DST);
    size_t len = 2 * INIT_PAIRS * (size_t)INIT_CHUNK;
    uint8_t *buf = malloc(len);
    kvx_mem_h mem;
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = buf,
                           .length = len};
    if (src == 0 || dst == 0 || buf == NULL || kvx_mem_register(engine, &mp, &mem) != KVX_OK) {
        fprintf(stderr, "peer: initiate: no SRC/DST regions at %s or no memory\n", target);
        return 1;
    }
    uint8_t *wbuf = buf + INIT_PAIRS * (size_t)INIT_CHUNK;
    test_fill(wbuf, INIT_PAIRS * (size_t)INIT_CHUNK, seed, 0);
    unsigned long long bytes = 0, bad = 0, requests = 0, failed = 0;
    for (unsigned r = 0; rounds == 0 || r < rounds; r++) {
        kvx_xfer_id_t ids[2 * INIT_PAIRS];
        memset(buf, 0, INIT_PAIRS * (size_t)INIT_CHUNK);
        for (int k = 0; k < 2 * INIT_PAIRS; k++) {
            size_t off = (size_t)(k / 2) * INIT_CHUNK;
            kvx_xfer_desc_t d = k % 2 ? (kvx_xfer_desc_t){wbuf + off, dst + off, INIT_CHUNK}
                                      : (kvx_xfer_desc_t){buf + off, src + off, INIT_CHUNK};
            requests++;
            if (kvx_xfer_submit(engine, target, k % 2 ? KVX_OP_WRITE : KVX_OP_READ, &d, 1, NULL,
                                &ids[k]) != KVX_OK) {
                ids[k] = 0;
                failed++;
            }
        }
        for (int k = 0; k < 2 * INIT_PAIRS; k++) {
            kvx_xfer_state_t st = KVX_XFER_WAITING;
            if (ids[k] == 0 || kvx_xfer_wait(engine, ids[k], 20000, &st, NULL) != KVX_OK ||
                st != KVX_XFER_COMPLETED) {
                failed += ids[k] != 0;
                continue;
            }
            if (k % 2 == 0) {
                size_t off = (size_t)(k / 2) * INIT_CHUNK;
                bad += test_check(buf + off, INIT_CHUNK, PEER_TAG_SRC, off);
                bytes += INIT_CHUNK;
            }
        }
        if (r == 0 && write_file(ready_file, "0\n") != 0) {
            return 1;
        }
        if (failed != 0) {
            break;
        }
    }
    if (result_file != NULL) {
        char text[256];
        snprintf(text, sizeof(text), "bytes=%llu bad=%llu requests=%llu failed=%llu\n", bytes, bad,
                 requests, failed);
        if (write_file(result_file, text) != 0) {
            return 1;
        }
    }
    kvx_engine_destroy(engine);
    free(buf);
    return bad == 0 && failed == 0 ? 0 : 1;
}

static int kv_serve(const char *listen, const char *port_file, uint64_t cluster, uint64_t seed)
{
    kvx_kv_params_t params = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID |
                                            KVX_KV_PARAM_FIELD_ROLE | KVX_KV_PARAM_FIELD_LISTEN,
                              .cluster_id = cluster,
                              .role = KVX_KV_ROLE_PROMPT,
                              .listen = listen};
    kvx_kv_h kv;
    if (kvx_kv_create(&params, &kv) != KVX_OK) {
        fprintf(stderr, "peer: kv-serve: %s\n", kvx_last_error());
        return 1;
    }
    kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                              KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                              KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                                .placement = KVX_MEM_DEVICE,
                                .num_tensors = PEER_KV_TENSORS,
                                .dtype = KVX_DTYPE_FP16,
                                .ndims = 4,
                                .dims = {PEER_KV_BLOCKS, 16, 8, 64}};
    int64_t id = 0;
    void *t[PEER_KV_TENSORS];
    if (kvx_kv_cache_allocate(kv, &desc, &id, t) != KVX_OK || id != 1) {
        fprintf(stderr, "peer: kv-serve: allocate: %s\n", kvx_last_error());
        return 1;
    }
    size_t tsize = (size_t)PEER_KV_BLOCKS * PEER_KV_BLOCK;
    uint8_t *tmp = malloc(tsize);
    if (tmp == NULL) {
        return 1;
    }
    for (int i = 0; i < PEER_KV_TENSORS; i++) {
        test_fill(tmp, tsize, seed + (uint64_t)i, 0);
        if (kvx_device_memcpy(t[i], tmp, tsize, KVX_COPY_H2D, 0) != KVX_OK) {
            return 1;
        }
    }
    free(tmp);
    char port[32];
    snprintf(port, sizeof(port), "%s\n", strrchr(kvx_kv_listen_name(kv), ':') + 1);
    if (write_file(port_file, port) != 0) {
        return 1;
    }
    while (!stop) {
        kvx_notification_t *list = NULL;
        size_t count = 0;
        if (kvx_kv_notify_fetch(kv, 100, &list, &count) == KVX_OK) {
            kvx_notify_free(list, count);
        }
    }
    kvx_kv_destroy(kv);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc % 2 == 0 || strcmp(argv[3], "--port-file") != 0) {
        fprintf(stderr, "usage: kvx-test-peer serve|initiate|kv-serve IP:PORT --port-file FILE "
                        "[--option value]... (see peer.c)\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    const char *v;
    if (strcmp(argv[1], "serve") == 0) {
        return serve(argv[2], argv[4], option(argc, argv, 5, "--peer-timeout"));
    }
    if (strcmp(argv[1], "initiate") == 0) {
        unsigned rounds = (v = option(argc, argv, 5, "--rounds")) ? (unsigned)atoi(v) : 0;
        uint64_t seed = (v = option(argc, argv, 5, "--seed")) ? strtoull(v, NULL, 10) : 1;
        return initiate(argv[2], argv[4], rounds, seed, option(argc, argv, 5, "--result"));
    }
    if (strcmp(argv[1], "kv-serve") == 0) {
        const char *cluster = option(argc, argv, 5, "--cluster");
        const char *seed = option(argc, argv, 5, "--seed");
        if (cluster == NULL || seed == NULL) {
            fprintf(stderr, "peer: kv-serve needs --cluster and --seed\n");
            return 2;
        }
        return kv_serve(argv[2], argv[4], strtoull(cluster, NULL, 10), strtoull(seed, NULL, 10));
    }
    fprintf(stderr, "peer: unknown mode %s\n", argv[1]);
    return 2;
}

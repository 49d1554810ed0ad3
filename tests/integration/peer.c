/*
 * kvx-test-peer: the second process of the integration tests.
 *
 *   kvx-test-peer serve 127.0.0.1:PORT --port-file FILE
 *
 * Registers the regions listed in harness.h, writes its port to FILE once
 * ready, then serves until SIGTERM or a "quit" command. Commands arrive as
 * notifications (name = command, message = "seq args"); the result goes to
 * the mailbox region as {seq, result}, which the test reads:
 *   check  tag off len seed -> number of bytes not matching the pattern
 *   fill   tag seed         -> 0
 *   reg    tag size         -> status of registering a new region
 *   dereg  tag              -> status of deregistering a region
 *   quit                    -> exits 0
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
    if (strcmp(cmd, "quit") == 0) {
        stop = 1;
        return 0;
    }
    return -2;
}

int main(int argc, char **argv)
{
    if (argc != 5 || strcmp(argv[1], "serve") != 0 || strcmp(argv[3], "--port-file") != 0) {
        fprintf(stderr, "usage: kvx-test-peer serve IP:PORT --port-file FILE\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = argv[2]};
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
    const char *port = strrchr(kvx_engine_name(engine), ':') + 1;
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[4]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", port) < 0 || fclose(f) != 0 || rename(tmp, argv[4])) {
        perror("peer: port file");
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

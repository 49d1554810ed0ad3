/*
 * kvx-demo: a server and a client process moving memory with the transfer
 * engine on one host.
 *
 *   kvx-demo server 127.0.0.1:0 --port-file FILE
 *   kvx-demo client 127.0.0.1 127.0.0.1:PORT
 *
 * The server puts a 64 MiB source (a known pattern) and a 64 MiB destination
 * in device memory (the host backend stands in for a GPU), registers both
 * and waits. The client finds them through the remote memory table, READs
 * the source as 16 x 4 MiB and as 16384 scattered 4 KiB pieces, WRITEs it
 * back into the destination, checks every byte it read, and tells the server
 * it is done; the server checks every byte it received.
 */
#include <kvx/kvx.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REGION (64u << 20)
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
    const char *port = strrchr(bound, ':') + 1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", port) < 0 || fclose(f) != 0 || rename(tmp, port_file)) {
        perror("kvx-demo: port file");
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
               op == KVX_OP_READ ? "READ" : "WRITE", what, n, (double)bytes / (1 << 20),
               dt * 1e3, (double)bytes / dt / 1e9);
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

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "server") == 0 && strcmp(argv[3], "--port-file") == 0) {
        return server(argv[2], argv[4]);
    }
    if (argc == 4 && strcmp(argv[1], "client") == 0) {
        return client(argv[2], argv[3]);
    }
    fprintf(stderr, "usage: kvx-demo server IP:PORT --port-file FILE\n"
                    "       kvx-demo client IP REMOTE_IP:PORT\n");
    return 2;
}

/*
 * client_server_h2d: a client READs an int32 from a server's device memory
 * into its own host memory, then WRITEs a new value back.
 *
 *   client_server_h2d DEVICE_ID IP:PORT              (server; port 0 = any)
 *   client_server_h2d DEVICE_ID IP REMOTE_IP:PORT    (client)
 *
 * The server puts an int32 holding 1 in device memory (the host backend
 * stands in for a GPU), registers it and waits for the client's "done"
 * notification; it succeeds only if the value is then 2. The client reads
 * the value (expects 1), writes 2 and sends "done". If the environment names
 * a file in KVX_EXAMPLE_PORT_FILE, the server writes its bound port there
 * once its memory is registered: a launcher waits for that file instead of
 * sleeping (see run_pair.sh).
 *
 * Re-creates the upstream example of the same name, with a handshake instead
 * of fixed sleeps and the server's address found by tag, not through a file.
 */
#include <kvx/kvx.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_example_common.h"

#define TAG_VALUE          0x6832640001ull /* "h2d" + 1: the server's int32 */
#define NOTIFY_DEADLINE_MS 30000

static kvx_status_t make_engine(const char *name, kvx_engine_h *engine_p)
{
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = name};
    return kvx_engine_create(&params, engine_p);
}

static kvx_status_t register_mem(kvx_engine_h engine, void *addr, size_t len, kvx_mem_type_t type,
                                 uint64_t tag, kvx_mem_h *mem_p)
{
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                         KVX_MEM_PARAM_FIELD_TYPE | KVX_MEM_PARAM_FIELD_TAG,
                           .address = addr,
                           .length = len,
                           .mem_type = type,
                           .tag = tag};
    return kvx_mem_register(engine, &mp, mem_p);
}

/*
 * Wait for the notification called @p name. kvx_notify_fetch() hands over
 * everything queued at once, so any others fetched on the way are freed here:
 * this example expects only one. Returns KVX_OK and the message (to free).
 */
static kvx_status_t wait_for(kvx_engine_h engine, const char *name, int timeout_ms, char **msg_p)
{
    int64_t deadline = ex_now_ms() + timeout_ms;
    for (;;) {
        kvx_status_t st = kvx_notify_wait(engine, ex_ms_left(deadline));
        if (st != KVX_OK) {
            return st;
        }
        kvx_notification_t *list;
        size_t count;
        if ((st = kvx_notify_fetch(engine, &list, &count)) != KVX_OK) {
            return st;
        }
        char *msg = NULL;
        for (size_t i = 0; i < count && msg == NULL; i++) {
            if (strcmp(list[i].name, name) == 0) {
                msg = strdup(list[i].msg);
            } else {
                printf("%s: ignoring notification '%s' from %s\n", ex_prog, list[i].name,
                       list[i].sender);
            }
        }
        kvx_notify_free(list, count);
        if (msg != NULL) {
            *msg_p = msg;
            return KVX_OK;
        }
    }
}

static int server(int dev, const char *name)
{
    kvx_engine_h engine = NULL;
    kvx_mem_h mem = NULL;
    int32_t *value = NULL;
    int rc = 1;
    kvx_status_t st;

    if ((st = make_engine(name, &engine)) != KVX_OK) {
        return ex_fail(st, "create engine");
    }
    const char *bound = kvx_engine_name(engine);
    printf("server: listening on %s\n", bound);

    int32_t one = 1;
    if ((st = kvx_device_malloc(dev, sizeof(*value), (void **)&value)) != KVX_OK) {
        ex_fail(st, "device malloc");
        goto out;
    }
    if ((st = kvx_device_memcpy(value, &one, sizeof(one), KVX_COPY_H2D, dev)) != KVX_OK) {
        ex_fail(st, "copy 1 to the device");
        goto out;
    }
    if ((st = register_mem(engine, value, sizeof(*value), KVX_MEM_DEVICE, TAG_VALUE, &mem)) !=
        KVX_OK) {
        ex_fail(st, "register device memory");
        goto out;
    }
    /* Only now may a client come: the value is registered. */
    if (ex_publish_port("KVX_EXAMPLE_PORT_FILE", bound) != 0) {
        goto out;
    }
    fflush(stdout);

    char *msg = NULL;
    if ((st = wait_for(engine, "done", NOTIFY_DEADLINE_MS, &msg)) != KVX_OK) {
        ex_fail(st, "wait for the client's \"done\"");
        goto out;
    }
    if (strcmp(msg, "ok") != 0) {
        printf("server: the client reports: %s\n", msg);
    }
    free(msg);

    int32_t got = 0;
    if ((st = kvx_device_memcpy(&got, value, sizeof(got), KVX_COPY_D2H, dev)) != KVX_OK) {
        ex_fail(st, "copy the value back");
        goto out;
    }
    printf("server: value is %" PRId32 "\n", got);
    rc = got == 2 ? 0 : 1;

out:
    if (mem != NULL && (st = kvx_mem_deregister(engine, mem)) != KVX_OK) {
        rc = ex_fail(st, "deregister");
    }
    kvx_engine_destroy(engine);
    if (value != NULL) {
        kvx_device_free(dev, value);
    }
    return rc;
}

/* Find the remote registration carrying @p tag. */
static kvx_status_t find_remote(kvx_engine_h engine, const char *remote, uint64_t tag,
                                kvx_remote_mem_t *out, int *found_p)
{
    kvx_remote_mem_t *mems = NULL;
    size_t count = 0;
    *found_p = 0;
    kvx_status_t st = ex_remote_mem(engine, remote, &mems, &count);
    for (size_t i = 0; st == KVX_OK && i < count; i++) {
        if (mems[i].tag == tag) {
            *out = mems[i];
            *found_p = 1;
            break;
        }
    }
    free(mems);
    return st;
}

static int client(int dev, const char *name, const char *remote)
{
    (void)dev; /* the client's int32 lives in host memory */
    kvx_engine_h engine = NULL;
    kvx_mem_h mem = NULL;
    int32_t value = 0;
    int connected = 0, told = 0;
    const char *why = "client failed";
    int rc = 1;
    kvx_status_t st;

    if ((st = make_engine(name, &engine)) != KVX_OK) {
        return ex_fail(st, "create engine");
    }
    if ((st = register_mem(engine, &value, sizeof(value), KVX_MEM_HOST, 0, &mem)) != KVX_OK) {
        ex_fail(st, "register host memory");
        goto out;
    }
    if ((st = ex_connect(engine, remote)) != KVX_OK) {
        ex_fail(st, "connect");
        goto out;
    }
    connected = 1;

    kvx_remote_mem_t rm;
    int found;
    if ((st = find_remote(engine, remote, TAG_VALUE, &rm, &found)) != KVX_OK) {
        ex_fail(st, "remote memory table");
        goto out;
    }
    if (!found || rm.length < sizeof(value)) {
        fprintf(stderr, "%s: the server has no int32 registered with tag %#" PRIx64 "\n", ex_prog,
                (uint64_t)TAG_VALUE);
        why = "client found no value";
        goto out;
    }

    kvx_xfer_desc_t desc = {.local_addr = &value, .remote_addr = rm.address, .length = 4};
    if ((st = kvx_xfer_sync(engine, remote, KVX_OP_READ, &desc, 1, NULL)) != KVX_OK) {
        ex_fail(st, "read");
        goto out;
    }
    printf("client: read %" PRId32 "\n", value);
    if (value != 1) {
        fprintf(stderr, "%s: expected 1\n", ex_prog);
        why = "client read a wrong value";
        goto out;
    }
    value = 2;
    if ((st = kvx_xfer_sync(engine, remote, KVX_OP_WRITE, &desc, 1, NULL)) != KVX_OK) {
        ex_fail(st, "write");
        goto out;
    }
    printf("client: wrote %" PRId32 "\n", value);
    why = "ok";
    told = 1;
    if ((st = kvx_notify_send(engine, remote, "done", why, strlen(why), 0)) != KVX_OK) {
        ex_fail(st, "notify \"done\"");
        goto out;
    }
    rc = 0;

out:
    if (rc != 0 && connected && !told) {
        /* Best effort: let the server stop waiting instead of timing out. */
        kvx_notify_send(engine, remote, "done", why, strlen(why), 0);
    }
    if (connected && (st = kvx_engine_disconnect(engine, remote, 0)) != KVX_OK) {
        rc = ex_fail(st, "disconnect");
    }
    if (mem != NULL && (st = kvx_mem_deregister(engine, mem)) != KVX_OK) {
        rc = ex_fail(st, "deregister");
    }
    kvx_engine_destroy(engine);
    return rc;
}

int main(int argc, char **argv)
{
    ex_prog = "client_server_h2d";
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    int dev = -1;
    if (argc < 3 || argc > 4 || ex_parse_device(argv[1], &dev) != 0) {
        fprintf(stderr,
                "usage: %s DEVICE_ID IP:PORT               (server; port 0 = any)\n"
                "       %s DEVICE_ID IP REMOTE_IP:PORT     (client)\n",
                ex_prog, ex_prog);
        return 2;
    }
    if (argc == 3) {
        if (!ex_has_port(argv[2])) {
            fprintf(stderr, "%s: the server's engine '%s' needs a port (0 = any)\n", ex_prog,
                    argv[2]);
            return 2;
        }
        return server(dev, argv[2]);
    }
    if (ex_has_port(argv[2])) {
        fprintf(stderr, "%s: the client's engine '%s' must not have a port\n", ex_prog, argv[2]);
        return 2;
    }
    return client(dev, argv[2], argv[3]);
}

/*
 * decoder_switch_roles: cluster 1 pulls from the prompt as a decoder, then
 * becomes a prompt, listens, and receives the former prompt's push.
 *
 *   decoder_switch_roles DEVICE_ID LOCAL_IP[:PORT] REMOTE_IP:PORT
 *
 * It starts as a client on LOCAL_IP and, after the switch, listens on
 * LOCAL_IP:PORT (default 26001, upstream's; port 0 = any). Its cache (4
 * int32 tensors [8, 16] in device memory, cache 1) starts as 0xFF bytes, so
 * data that did not come through a transfer shows.
 *
 * Steps: link to cluster 0 at REMOTE_IP:PORT (retrying until a 10 s
 * deadline); pull rows 0-3 as decoder_pull_cache_and_blocks does and check
 * them (rows 4-7 must be untouched); send "pulled" (message "ok" or what
 * went wrong); unlink; switch to PROMPT listening on LOCAL_IP:PORT; wait for
 * the former prompt's "pushed" and its unlink; check that rows 4-7 now hold
 * iota too. Exits 0 only if both checks passed.
 *
 * Second rendezvous: if KVX_EXAMPLE_PORT_FILE2 names a file, the port bound
 * after the switch is written there (atomically: FILE.tmp, then rename);
 * prompt_switch_roles waits for it. That lets both runs use port 0.
 *
 * Re-creates upstream's example of the same name, with notifications and
 * link retries instead of fixed sleeps.
 */
#include "kv_example_common.h"

#define DEFAULT_LISTEN_PORT "26001"

static int run(int dev, const char *local, const char *remote)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    char host[EX_ADDR_MAX], listen[EX_ADDR_MAX];
    const char *port = NULL;
    int rc = 1;
    kvx_status_t st;

    if (ex_split_host_port(local, host, sizeof(host), &port) != 0 ||
        (size_t)snprintf(listen, sizeof(listen), "%s:%s", host,
                         port != NULL ? port : DEFAULT_LISTEN_PORT) >= sizeof(listen)) {
        fprintf(stderr, "%s: address '%s' too long\n", ex_prog, local);
        return 2;
    }
    if (ex_create(EX_DECODER_CLUSTER, KVX_KV_ROLE_DECODER, NULL, host, dev, &kv) != 0) {
        return 1;
    }
    if (ex_make_cache(kv, dev, 0, tensors, &cache_id) != 0) {
        goto out;
    }

    /* Phase 1: decoder, pulls rows 0-3. */
    if (ex_pull_phase(kv, dev, tensors, cache_id, remote, "pulled") != 0) {
        goto out;
    }

    /* Phase 2: prompt, listens and receives rows 4-7. */
    if ((st = kvx_kv_set_role(kv, KVX_KV_ROLE_PROMPT, listen)) != KVX_OK) {
        ex_fail(st, "switch to prompt listening on %s", listen);
        goto out;
    }
    printf("%s: now a prompt, listening on %s\n", ex_prog, kvx_kv_listen_name(kv));
    if (ex_serve_phase(kv, "KVX_EXAMPLE_PORT_FILE2", "pushed") != 0) {
        goto out;
    }
    if (ex_check_rows(dev, tensors, 0, 7, 1) != 0) {
        goto out;
    }
    rc = 0;
out:
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "decoder_switch_roles";
    int dev = -1;
    if (argc != 4 || ex_parse_device(argv[1], &dev) != 0 || !ex_has_port(argv[3])) {
        fprintf(stderr,
                "usage: %s DEVICE_ID LOCAL_IP[:PORT] REMOTE_IP:PORT\n"
                "  PORT: where to listen after the switch (default %s; 0 = any)\n",
                ex_prog, DEFAULT_LISTEN_PORT);
        return 2;
    }
    return run(dev, argv[2], argv[3]);
}

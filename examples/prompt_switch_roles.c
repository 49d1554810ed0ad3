/*
 * prompt_switch_roles: cluster 0 serves a pull as the prompt, then becomes a
 * decoder and pushes into the instance that pulled from it.
 *
 *   prompt_switch_roles DEVICE_ID LOCAL_IP:PORT REMOTE_IP:PORT
 *
 * LOCAL_IP:PORT is where it listens first (port 0 = any; written to
 * KVX_EXAMPLE_PORT_FILE if set, once the cache is registered); REMOTE_IP:PORT
 * is where the decoder listens after its own switch. Its cache is 4 int32
 * tensors [8, 16] in device memory holding iota, cache 1.
 *
 * Steps: wait for the decoder's "pulled" (it pulled rows 0-3) and for its
 * unlink, since kvx_kv_set_role() is refused while links exist; switch to
 * DECODER without a listen address, which stops listening; link to the
 * decoder's new address (retrying until a 10 s deadline); push rows 4-7 as
 * prompt_push_cache_and_blocks does; send "pushed" (message "ok" or what
 * went wrong); unlink.
 *
 * Second rendezvous: if the environment names a file in
 * KVX_EXAMPLE_PORT_FILE2, the decoder listens on a port of its choice and
 * writes it there (atomically: FILE.tmp, then rename); this program waits
 * for the file and uses that port instead of REMOTE_IP:PORT's. Without the
 * variable REMOTE_IP:PORT is used as given.
 *
 * Re-creates upstream's example of the same name, with notifications and
 * link retries instead of fixed sleeps.
 */
#include "kv_example_common.h"

/* The decoder's address after its switch: REMOTE_IP:PORT, or its host with
 * the port published in KVX_EXAMPLE_PORT_FILE2. */
static int decoder_address(const char *remote, char *addr, size_t len)
{
    const char *path = getenv("KVX_EXAMPLE_PORT_FILE2");
    char host[EX_ADDR_MAX], port[16];
    const char *ignored = NULL;
    int n;
    if (path == NULL || path[0] == '\0') {
        n = snprintf(addr, len, "%s", remote);
    } else if (ex_split_host_port(remote, host, sizeof(host), &ignored) != 0 ||
               ex_read_port_file(path, EX_PORT_FILE_DEADLINE_MS, port, sizeof(port)) != 0) {
        return 1;
    } else {
        n = snprintf(addr, len, "%s:%s", host, port);
    }
    if (n < 0 || (size_t)n >= len) {
        fprintf(stderr, "%s: address '%s' too long\n", ex_prog, remote);
        return 1;
    }
    return 0;
}

static int run(int dev, const char *listen, const char *remote)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    char addr[EX_ADDR_MAX];
    int rc = 1;
    kvx_status_t st;

    /* A port file left by an earlier run must not be taken for the new
     * port. Safe to remove now: the decoder writes it only after it pulled
     * from us, and we do not listen yet. */
    const char *path2 = getenv("KVX_EXAMPLE_PORT_FILE2");
    if (path2 != NULL && path2[0] != '\0') {
        remove(path2);
    }

    /* Our IP also names the instance once it stops listening (else
     * 0.0.0.0). */
    char host[EX_ADDR_MAX];
    const char *port = NULL;
    if (ex_split_host_port(listen, host, sizeof(host), &port) != 0) {
        fprintf(stderr, "%s: address '%s' too long\n", ex_prog, listen);
        return 2;
    }
    if (ex_create(EX_PROMPT_CLUSTER, KVX_KV_ROLE_PROMPT, listen, host, dev, &kv) != 0) {
        return 1;
    }
    printf("%s: cluster %d, prompt, listening on %s\n", ex_prog, EX_PROMPT_CLUSTER,
           kvx_kv_listen_name(kv));
    if (ex_make_cache(kv, dev, 1, tensors, &cache_id) != 0 ||
        ex_serve_phase(kv, "KVX_EXAMPLE_PORT_FILE", "pulled") != 0) {
        goto out;
    }
    if ((st = kvx_kv_set_role(kv, KVX_KV_ROLE_DECODER, NULL)) != KVX_OK) {
        ex_fail(st, "switch to decoder");
        goto out;
    }
    printf("%s: now a decoder on %s, not listening\n", ex_prog, kvx_kv_listen_name(kv));

    if (decoder_address(remote, addr, sizeof(addr)) != 0) {
        goto out;
    }
    rc = ex_push_phase(kv, cache_id, addr, "pushed");
out:
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "prompt_switch_roles";
    int dev = -1;
    if (argc != 4 || ex_parse_device(argv[1], &dev) != 0 || !ex_has_port(argv[2]) ||
        !ex_has_port(argv[3])) {
        fprintf(stderr,
                "usage: %s DEVICE_ID LOCAL_IP:PORT REMOTE_IP:PORT   (port 0 = any)\n"
                "  REMOTE_IP:PORT: the decoder's address after its switch; with\n"
                "  KVX_EXAMPLE_PORT_FILE2 set, the port is read from that file\n",
                ex_prog);
        return 2;
    }
    return run(dev, argv[2], argv[3]);
}

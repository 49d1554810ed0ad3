/*
 * prompt_pull_cache_and_blocks: the prompt side (cluster 0) of a pull. It
 * listens, holds a cache that the decoder pulls from, and waits for the
 * decoder's "done".
 *
 *   prompt_pull_cache_and_blocks DEVICE_ID LOCAL_IP:PORT     (port 0 = any)
 *
 * The cache is 4 int32 tensors [8, 16] in device memory (the host backend
 * stands in for a GPU) holding iota: element k is k. It must be cache 1,
 * the id the decoder asks for. If KVX_EXAMPLE_PORT_FILE names a file, the
 * bound port is written there once the cache is registered (see
 * run_pair.sh). Exits 0 once the decoder reports "done" with "ok" and has
 * unlinked.
 *
 * Re-creates upstream's example of the same name, with notifications
 * instead of fixed sleeps and an out-of-band TCP byte.
 */
#include "kv_example_common.h"

static int run(int dev, const char *listen)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    int rc = 1;

    /* The port is published once the cache is registered: only then may the
     * decoder come. */
    if (ex_listen_with_cache(EX_PROMPT_CLUSTER, KVX_KV_ROLE_PROMPT, listen, dev, 1, &kv, tensors,
                             &cache_id) == 0 &&
        ex_serve_phase(kv, "KVX_EXAMPLE_PORT_FILE", "done") == 0) {
        rc = 0;
    }
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "prompt_pull_cache_and_blocks";
    int dev = -1;
    if (argc != 3 || ex_parse_device(argv[1], &dev) != 0 || !ex_has_port(argv[2])) {
        fprintf(stderr, "usage: %s DEVICE_ID LOCAL_IP:PORT   (port 0 = any)\n", ex_prog);
        return 2;
    }
    return run(dev, argv[2]);
}

/*
 * prompt_push_cache_and_blocks: the prompt side (cluster 0) of a push. It
 * links to the decoder and pushes rows 4-7 of its cache into the decoder's.
 *
 *   prompt_push_cache_and_blocks DEVICE_ID LOCAL_IP:PORT REMOTE_IP:PORT
 *
 * It listens on LOCAL_IP:PORT as upstream's does (port 0 = any; written to
 * KVX_EXAMPLE_PORT_FILE if set), though nothing links to it here. Its cache
 * is 4 int32 tensors [8, 16] in device memory holding iota. Steps: link to
 * cluster 1 (retrying until a 10 s deadline while nobody listens); for each
 * layer i in 0..3 push blocks {5,6,7} -> {5,6,7} with layers (i,i) -> (i,i)
 * and one tensor per layer; push batch entry 4 -> 4 with layers (0,0) ->
 * (0,0) and four tensors per layer; send "done" (message "ok" or what went
 * wrong); unlink. The decoder checks the data.
 *
 * Re-creates upstream's example of the same name, with link retries and a
 * notification instead of fixed sleeps and an out-of-band TCP byte.
 */
#include "kv_example_common.h"

static int run(int dev, const char *listen, const char *remote)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    int rc = 1;

    if (ex_listen_with_cache(EX_PROMPT_CLUSTER, KVX_KV_ROLE_PROMPT, listen, dev, 1, &kv, tensors,
                             &cache_id) != 0 ||
        ex_publish_port("KVX_EXAMPLE_PORT_FILE", kvx_kv_listen_name(kv)) != 0) {
        goto out;
    }
    rc = ex_push_phase(kv, cache_id, remote, "done");
out:
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "prompt_push_cache_and_blocks";
    int dev = -1;
    if (argc != 4 || ex_parse_device(argv[1], &dev) != 0 || !ex_has_port(argv[2]) ||
        !ex_has_port(argv[3])) {
        fprintf(stderr, "usage: %s DEVICE_ID LOCAL_IP:PORT REMOTE_IP:PORT   (port 0 = any)\n",
                ex_prog);
        return 2;
    }
    return run(dev, argv[2], argv[3]);
}

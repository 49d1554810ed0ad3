/*
 * decoder_push_cache_and_blocks: the decoder side (cluster 1) of a push. It
 * listens, holds a cache that the prompt pushes into, and checks it once the
 * prompt reports "done".
 *
 *   decoder_push_cache_and_blocks DEVICE_ID LOCAL_IP:PORT    (port 0 = any)
 *
 * Its cache (4 int32 tensors [8, 16] in device memory, cache 1, the id the
 * prompt pushes to) starts as 0xFF bytes, so data that did not come through
 * the transfer shows. If KVX_EXAMPLE_PORT_FILE names a file, the bound port
 * is written there once the cache is registered (see run_pair.sh). Exits 0
 * only if rows 4-7 of every tensor then hold iota (row r, column i =
 * 16r + i) and rows 0-3 are untouched.
 *
 * Re-creates upstream's example of the same name, with a notification
 * instead of fixed sleeps and an out-of-band TCP byte.
 */
#include "kv_example_common.h"

static int run(int dev, const char *listen)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    int rc = 1;

    if (ex_listen_with_cache(EX_DECODER_CLUSTER, KVX_KV_ROLE_DECODER, listen, dev, 0, &kv, tensors,
                             &cache_id) != 0) {
        goto out;
    }
    /* Only now may the prompt come: the cache is registered. "done" comes
     * after the data of every push (kvx_kv_notify()). */
    if (ex_serve_phase(kv, "KVX_EXAMPLE_PORT_FILE", "done") != 0) {
        goto out;
    }
    if (ex_check_rows(dev, tensors, 4, 7, 1) != 0 || ex_check_rows(dev, tensors, 0, 3, 0) != 0) {
        goto out;
    }
    rc = 0;
out:
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "decoder_push_cache_and_blocks";
    int dev = -1;
    if (argc != 3 || ex_parse_device(argv[1], &dev) != 0 || !ex_has_port(argv[2])) {
        fprintf(stderr, "usage: %s DEVICE_ID LOCAL_IP:PORT   (port 0 = any)\n", ex_prog);
        return 2;
    }
    return run(dev, argv[2]);
}

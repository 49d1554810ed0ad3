/*
 * decoder_pull_cache_and_blocks: the decoder side (cluster 1) of a pull. It
 * links to the prompt, pulls rows 0-3 of the prompt's cache into its own and
 * checks them.
 *
 *   decoder_pull_cache_and_blocks DEVICE_ID LOCAL_IP REMOTE_IP:PORT
 *
 * Its cache (4 int32 tensors [8, 16] in device memory, cache 1) starts as
 * 0xFF bytes, so data that did not come through the transfer shows. Steps:
 * link to cluster 0 (retrying until a 10 s deadline while nobody listens),
 * pull blocks {1,2,3} -> {1,2,3}, pull batch entry 0 -> 0, check that rows
 * 0-3 of every tensor hold iota (row r, column i = 16r + i) and rows 4-7 are
 * untouched, send "done" (message "ok" or what went wrong), unlink. Exits 0
 * only if the check passed.
 *
 * Re-creates upstream's example of the same name, with link retries and a
 * notification instead of fixed sleeps and an out-of-band TCP byte.
 */
#include "kv_example_common.h"

static int run(int dev, const char *local_ip, const char *remote)
{
    kvx_kv_h kv = NULL;
    void *tensors[EX_NUM_TENSORS] = {NULL};
    int64_t cache_id = 0;
    int rc = 1;

    if (ex_create(EX_DECODER_CLUSTER, KVX_KV_ROLE_DECODER, NULL, local_ip, dev, &kv) != 0) {
        return 1;
    }
    if (ex_make_cache(kv, dev, 0, tensors, &cache_id) != 0) {
        goto out;
    }
    rc = ex_pull_phase(kv, dev, tensors, cache_id, remote, "done");
out:
    return ex_finish(kv, dev, tensors, cache_id, rc);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    ex_prog = "decoder_pull_cache_and_blocks";
    int dev = -1;
    if (argc != 4 || ex_parse_device(argv[1], &dev) != 0 || ex_has_port(argv[2]) ||
        !ex_has_port(argv[3])) {
        fprintf(stderr, "usage: %s DEVICE_ID LOCAL_IP REMOTE_IP:PORT\n", ex_prog);
        return 2;
    }
    return run(dev, argv[2], argv[3]);
}

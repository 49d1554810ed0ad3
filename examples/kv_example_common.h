/*
 * Helpers shared by the KV cache examples (prompt_* and decoder_*): the cache
 * they all use and its contents, the pull and the push of upstream's
 * examples, rendezvous (port files, link with retry, notifications) and
 * error reporting. Header-only (static inline), so each example builds from
 * one .c file; set ex_prog in main() first. The generic part (ex_fail,
 * deadlines, names, port files) is engine_example_common.h.
 *
 * Notifications between the two sides are named after a step ("done",
 * "pulled", "pushed"); the message is "ok", or why the sender failed, so a
 * failing side ends its peer's wait at once instead of by timeout.
 */
#ifndef KVX_KV_EXAMPLE_COMMON_H
#define KVX_KV_EXAMPLE_COMMON_H

#include <kvx/kvx.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_example_common.h"

/* Upstream's cache: 4 tensors of int32 [8, 16]. One row (16 ints, 64 bytes)
 * is both a batch entry and a block. */
#define EX_NUM_TENSORS  4
#define EX_ROWS         8
#define EX_COLS         16
#define EX_TENSOR_BYTES (EX_ROWS * EX_COLS * sizeof(int32_t))
/* The first cache of an instance gets id 1; peers hard-code it. */
#define EX_CACHE_ID 1
/* Fill byte of caches that only receive: transferred rows must replace it. */
#define EX_UNSET_BYTE 0xFF

#define EX_PROMPT_CLUSTER  0
#define EX_DECODER_CLUSTER 1

#define EX_LINK_DEADLINE_MS      10000
#define EX_LINK_ATTEMPT_MS       1000
#define EX_NOTIFY_DEADLINE_MS    60000
#define EX_UNLINK_TIMEOUT_MS     5000
#define EX_UNLINKED_DEADLINE_MS  10000
#define EX_PORT_FILE_DEADLINE_MS 30000
#define EX_POLL_MS               20
#define EX_MAX_REPORTED          5 /* bad positions printed per check */

/* Create an instance: listening on @p listen if not NULL, else a client
 * with address @p local_ip. Returns 0 or 1 (reported). */
static inline int ex_create(uint64_t cluster_id, kvx_kv_role_t role, const char *listen,
                            const char *local_ip, int dev, kvx_kv_h *kv_p)
{
    kvx_kv_params_t p = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE |
                                       KVX_KV_PARAM_FIELD_DEVICE_ID,
                         .cluster_id = cluster_id,
                         .role = role,
                         .device_id = dev};
    if (listen != NULL) {
        p.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        p.listen = listen;
    }
    if (local_ip != NULL) {
        p.field_mask |= KVX_KV_PARAM_FIELD_LOCAL_IP;
        p.local_ip = local_ip;
    }
    kvx_status_t st = kvx_kv_create(&p, kv_p);
    if (st != KVX_OK) {
        *kv_p = NULL;
        return ex_fail(st, "create cluster %" PRIu64 " on '%s'", cluster_id,
                       listen != NULL ? listen : local_ip);
    }
    return 0;
}

/*
 * Allocate the example's tensors on @p dev, fill them with iota (element k
 * holds k) or with EX_UNSET_BYTE, and register them as one cache, which must
 * get id EX_CACHE_ID since the peer hard-codes it. *cache_id_p is set once
 * registered, also when the id is wrong, so ex_finish() unregisters it.
 */
static inline int ex_make_cache(kvx_kv_h kv, int dev, int iota, void **tensors, int64_t *cache_id_p)
{
    int32_t host[EX_ROWS * EX_COLS];
    kvx_status_t st;
    for (int k = 0; k < EX_ROWS * EX_COLS; k++) {
        host[k] = k;
    }
    for (int i = 0; i < EX_NUM_TENSORS; i++) {
        if ((st = kvx_device_malloc(dev, EX_TENSOR_BYTES, &tensors[i])) != KVX_OK) {
            tensors[i] = NULL;
            return ex_fail(st, "allocate tensor %d on device %d", i, dev);
        }
        st = iota ? kvx_device_memcpy(tensors[i], host, EX_TENSOR_BYTES, KVX_COPY_H2D, dev)
                  : kvx_device_memset(dev, tensors[i], EX_UNSET_BYTE, EX_TENSOR_BYTES);
        if (st != KVX_OK) {
            return ex_fail(st, "fill tensor %d", i);
        }
    }
    kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                              KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                              KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                                .placement = KVX_MEM_DEVICE,
                                .num_tensors = EX_NUM_TENSORS,
                                .dtype = KVX_DTYPE_INT32,
                                .ndims = 2,
                                .dims = {EX_ROWS, EX_COLS}};
    int64_t id = 0;
    if ((st = kvx_kv_cache_register(kv, &desc, tensors, &id)) != KVX_OK) {
        return ex_fail(st, "register the cache");
    }
    *cache_id_p = id;
    if (id != EX_CACHE_ID) {
        fprintf(stderr, "%s: the cache got id %" PRId64 ", the peer expects %d\n", ex_prog, id,
                EX_CACHE_ID);
        return 1;
    }
    printf("%s: cache %" PRId64 ": %d tensors int32 [%d, %d] on device %d, %s\n", ex_prog, id,
           EX_NUM_TENSORS, EX_ROWS, EX_COLS, dev, iota ? "iota" : "unset (0xFF)");
    return 0;
}

/* A listening instance of @p cluster_id on @p listen with the example's
 * cache (ex_make_cache()). On failure ex_finish() frees what was made.
 * Returns 0 or 1. */
static inline int ex_listen_with_cache(uint64_t cluster_id, kvx_kv_role_t role, const char *listen,
                                       int dev, int iota, kvx_kv_h *kv_p, void **tensors,
                                       int64_t *cache_id_p)
{
    if (ex_create(cluster_id, role, listen, NULL, dev, kv_p) != 0) {
        return 1;
    }
    printf("%s: cluster %" PRIu64 " listening on %s\n", ex_prog, cluster_id,
           kvx_kv_listen_name(*kv_p));
    return ex_make_cache(*kv_p, dev, iota, tensors, cache_id_p);
}

/* Unregister the cache, destroy the instance, free the tensors (in that
 * order: the memory must outlive its registration). Returns @p rc, or 1 if
 * unregistering failed. */
static inline int ex_finish(kvx_kv_h kv, int dev, void **tensors, int64_t cache_id, int rc)
{
    kvx_status_t st;
    if (kv != NULL && cache_id > 0 && (st = kvx_kv_cache_unregister(kv, cache_id)) != KVX_OK) {
        rc = ex_fail(st, "unregister cache %" PRId64, cache_id);
    }
    if (kv != NULL) {
        kvx_kv_destroy(kv);
    }
    for (int i = 0; i < EX_NUM_TENSORS; i++) {
        if (tensors[i] != NULL && (st = kvx_device_free(dev, tensors[i])) != KVX_OK) {
            rc = ex_fail(st, "free tensor %d", i);
        }
    }
    return rc;
}

/*
 * Check rows @p first..@p last of every tensor: iota (row r, column i holds
 * 16r + i) if @p iota, else still EX_UNSET_BYTE everywhere (nothing was
 * written there). Prints the first few bad positions. Returns 0 or 1.
 */
static inline int ex_check_rows(int dev, void *const *tensors, int first, int last, int iota)
{
    int32_t host[EX_ROWS * EX_COLS];
    int32_t unset;
    memset(&unset, EX_UNSET_BYTE, sizeof(unset));
    size_t bad = 0;
    for (int t = 0; t < EX_NUM_TENSORS; t++) {
        kvx_status_t st = kvx_device_memcpy(host, tensors[t], EX_TENSOR_BYTES, KVX_COPY_D2H, dev);
        if (st != KVX_OK) {
            return ex_fail(st, "copy tensor %d to the host", t);
        }
        for (int r = first; r <= last; r++) {
            for (int c = 0; c < EX_COLS; c++) {
                int32_t want = iota ? r * EX_COLS + c : unset;
                int32_t got = host[r * EX_COLS + c];
                if (got != want && bad++ < EX_MAX_REPORTED) {
                    fprintf(stderr,
                            "%s: tensor %d row %d col %d holds %" PRId32 ", expected %" PRId32 "\n",
                            ex_prog, t, r, c, got, want);
                }
            }
        }
    }
    if (bad != 0) {
        fprintf(stderr, "%s: rows %d-%d: %zu of %d values wrong\n", ex_prog, first, last, bad,
                EX_NUM_TENSORS * (last - first + 1) * EX_COLS);
        return 1;
    }
    printf("%s: rows %d-%d of all %d tensors %s\n", ex_prog, first, last, EX_NUM_TENSORS,
           iota ? "hold iota" : "are untouched");
    return 0;
}

/* Wait until @p path holds a port (it appears whole: see
 * ex_write_port_file()) and copy it to @p port. Returns 0 or 1. */
static inline int ex_read_port_file(const char *path, int timeout_ms, char *port, size_t len)
{
    int64_t deadline = ex_now_ms() + timeout_ms;
    for (;;) {
        FILE *f = fopen(path, "r");
        if (f != NULL) {
            char line[32] = "";
            int ok = fgets(line, sizeof(line), f) != NULL;
            fclose(f);
            char *end = NULL;
            long v = ok ? strtol(line, &end, 10) : 0;
            if (!ok || end == line || (*end != '\n' && *end != '\0') || v <= 0 || v > 65535) {
                fprintf(stderr, "%s: port file '%s' holds no port\n", ex_prog, path);
                return 1;
            }
            snprintf(port, len, "%ld", v);
            return 0;
        }
        if (errno != ENOENT) {
            fprintf(stderr, "%s: port file '%s': %s\n", ex_prog, path, strerror(errno));
            return 1;
        }
        if (ex_ms_left(deadline) == 0) {
            fprintf(stderr, "%s: no port in '%s' after %d ms\n", ex_prog, path, timeout_ms);
            return 1;
        }
        ex_sleep_ms(EX_POLL_MS);
    }
}

/*
 * Link to a cluster, retrying while nobody listens there yet (the peer may
 * still be starting) until EX_LINK_DEADLINE_MS; other errors are final at
 * once. This replaces upstream's fixed sleeps before linking.
 */
static inline kvx_status_t ex_link(kvx_kv_h kv, uint64_t cluster_id, const char *remote)
{
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster_id, .remote = remote};
    int64_t deadline = ex_now_ms() + EX_LINK_DEADLINE_MS;
    for (;;) {
        int left = ex_ms_left(deadline);
        int attempt = left < EX_LINK_ATTEMPT_MS ? left : EX_LINK_ATTEMPT_MS;
        kvx_status_t one = KVX_OK;
        /* A timeout of 0 could mean "the default", not "no time". */
        kvx_status_t st = kvx_kv_link(kv, &c, 1, attempt > 0 ? attempt : 1, &one);
        if (st == KVX_OK) {
            printf("%s: linked to cluster %" PRIu64 " at %s\n", ex_prog, cluster_id, remote);
            return KVX_OK;
        }
        if (!ex_transient(st) || ex_ms_left(deadline) <= EX_RETRY_PAUSE_MS) {
            return st;
        }
        ex_sleep_ms(EX_RETRY_PAUSE_MS);
    }
}

/* ex_link(), reporting a failure. Returns 0 or 1. */
static inline int ex_link_to(kvx_kv_h kv, uint64_t cluster_id, const char *remote)
{
    kvx_status_t st = ex_link(kv, cluster_id, remote);
    if (st != KVX_OK) {
        return ex_fail(st, "link to cluster %" PRIu64 " at %s", cluster_id, remote);
    }
    return 0;
}

/*
 * Wait for the notification called @p name and take its message (to free).
 * kvx_kv_notify_fetch() hands over everything queued at once; each example
 * expects one notification at a time, so others are reported and dropped.
 */
static inline kvx_status_t ex_wait_for(kvx_kv_h kv, const char *name, int timeout_ms, char **msg_p)
{
    int64_t deadline = ex_now_ms() + timeout_ms;
    for (;;) {
        int left = ex_ms_left(deadline);
        if (left == 0) {
            return KVX_ERR_TIMEOUT;
        }
        kvx_notification_t *list = NULL;
        size_t count = 0;
        kvx_status_t st = kvx_kv_notify_fetch(kv, left, &list, &count);
        if (st != KVX_OK) {
            return st;
        }
        int found = 0;
        char *msg = NULL;
        for (size_t i = 0; i < count; i++) {
            if (!found && strcmp(list[i].name, name) == 0) {
                found = 1;
                msg = strdup(list[i].msg != NULL ? list[i].msg : "");
            } else {
                printf("%s: ignoring notification '%s' from %s\n", ex_prog, list[i].name,
                       list[i].sender);
            }
        }
        kvx_notify_free(list, count);
        if (found) {
            if (msg == NULL) {
                return KVX_ERR_NO_MEMORY;
            }
            *msg_p = msg;
            return KVX_OK;
        }
    }
}

/* Wait for @p name and require its message to be "ok". Returns 0 or 1. */
static inline int ex_wait_ok(kvx_kv_h kv, const char *name)
{
    char *msg = NULL;
    kvx_status_t st = ex_wait_for(kv, name, EX_NOTIFY_DEADLINE_MS, &msg);
    if (st != KVX_OK) {
        return ex_fail(st, "wait for \"%s\"", name);
    }
    int ok = strcmp(msg, "ok") == 0;
    if (ok) {
        printf("%s: got \"%s\"\n", ex_prog, name);
    } else {
        fprintf(stderr, "%s: got \"%s\", but the peer reports: %s\n", ex_prog, name, msg);
    }
    free(msg);
    return ok ? 0 : 1;
}

/*
 * Wait until no other instance is linked to this one. The peer unlinks right
 * after its last notification: waiting for that keeps our teardown from
 * racing its unlink, and kvx_kv_set_role() needs it.
 */
static inline int ex_wait_unlinked(kvx_kv_h kv)
{
    int64_t deadline = ex_now_ms() + EX_UNLINKED_DEADLINE_MS;
    for (;;) {
        size_t incoming = 0;
        kvx_status_t st = kvx_kv_link_count(kv, NULL, &incoming);
        if (st != KVX_OK) {
            return ex_fail(st, "count links");
        }
        if (incoming == 0) {
            return 0;
        }
        if (ex_ms_left(deadline) == 0) {
            fprintf(stderr, "%s: %zu incoming link(s) left after %d ms\n", ex_prog, incoming,
                    EX_UNLINKED_DEADLINE_MS);
            return 1;
        }
        ex_sleep_ms(EX_POLL_MS);
    }
}

/* The listening side of a phase: publish our port in the file named by
 * environment variable @p port_env, wait for the peer's notification
 * @p name with "ok", then until it has unlinked. Returns 0 or 1. */
static inline int ex_serve_phase(kvx_kv_h kv, const char *port_env, const char *name)
{
    if (ex_publish_port(port_env, kvx_kv_listen_name(kv)) != 0 || ex_wait_ok(kv, name) != 0 ||
        ex_wait_unlinked(kv) != 0) {
        return 1;
    }
    return 0;
}

/* End of a linked phase: tell the peer how it went (notification @p name,
 * message "ok" or why not; sent after the data of our pushes), then unlink.
 * Returns @p rc, or 1 if either step failed. */
static inline int ex_notify_unlink(kvx_kv_h kv, uint64_t cluster_id, const char *name,
                                   const char *why, int rc)
{
    kvx_status_t st = kvx_kv_notify(kv, cluster_id, name, why, strlen(why));
    if (st != KVX_OK) {
        rc = ex_fail(st, "notify \"%s\" to cluster %" PRIu64, name, cluster_id);
    }
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster_id};
    kvx_status_t one = KVX_OK;
    if ((st = kvx_kv_unlink(kv, &c, 1, EX_UNLINK_TIMEOUT_MS, 0, &one)) != KVX_OK) {
        rc = ex_fail(st, "unlink cluster %" PRIu64, cluster_id);
    }
    return rc;
}

/* Upstream's pull: blocks {1,2,3} of the prompt's cache into the same blocks
 * of ours (one run, 192 bytes per tensor), then batch entry 0 into entry 0:
 * rows 0-3 of every tensor. Returns 0 or 1. */
static inline int ex_pull_rows_0_3(kvx_kv_h kv, int64_t cache_id)
{
    kvx_kv_remote_cache_t src = {
        .cluster_id = EX_PROMPT_CLUSTER, .cache_id = EX_CACHE_ID, .batch_index = 0};
    const uint64_t src_blocks[] = {1, 2, 3};
    const uint64_t dst_blocks[] = {1, 2, 3};
    kvx_status_t st = kvx_kv_pull_blocks(kv, &src, cache_id, src_blocks, 3, dst_blocks, 3, NULL);
    if (st != KVX_OK) {
        return ex_fail(st, "pull blocks {1,2,3} -> {1,2,3}");
    }
    printf("%s: pulled blocks {1,2,3} -> {1,2,3}\n", ex_prog);
    if ((st = kvx_kv_pull_cache(kv, &src, cache_id, 0, NULL)) != KVX_OK) {
        return ex_fail(st, "pull batch 0 -> 0");
    }
    printf("%s: pulled batch 0 -> 0\n", ex_prog);
    return 0;
}

/* Upstream's push: blocks {5,6,7} into the decoder's {5,6,7} one layer of
 * one tensor at a time (layers i -> i), then batch entry 4 into entry 4 with
 * all four tensors as layer 0: rows 4-7 of every tensor. Returns 0 or 1. */
static inline int ex_push_rows_4_7(kvx_kv_h kv, int64_t cache_id)
{
    kvx_kv_remote_cache_t dst = {
        .cluster_id = EX_DECODER_CLUSTER, .cache_id = EX_CACHE_ID, .batch_index = 0};
    const uint64_t src_blocks[] = {5, 6, 7};
    const uint64_t dst_blocks[] = {5, 6, 7};
    kvx_kv_xfer_params_t p = {.field_mask =
                                  KVX_KV_XFER_FIELD_LAYERS | KVX_KV_XFER_FIELD_TENSORS_PER_LAYER,
                              .tensors_per_layer = 1};
    kvx_status_t st;
    for (uint32_t layer = 0; layer < EX_NUM_TENSORS; layer++) {
        p.src_layer_first = p.src_layer_last = layer;
        p.dst_layer_first = p.dst_layer_last = layer;
        st = kvx_kv_push_blocks(kv, cache_id, &dst, src_blocks, 3, dst_blocks, 3, &p);
        if (st != KVX_OK) {
            return ex_fail(st, "push blocks {5,6,7} -> {5,6,7} of layer %" PRIu32, layer);
        }
    }
    printf("%s: pushed blocks {5,6,7} -> {5,6,7}, layer by layer\n", ex_prog);
    p.src_layer_first = p.src_layer_last = 0;
    p.dst_layer_first = p.dst_layer_last = 0;
    p.tensors_per_layer = EX_NUM_TENSORS;
    dst.batch_index = 4;
    if ((st = kvx_kv_push_cache(kv, cache_id, 4, &dst, &p)) != KVX_OK) {
        return ex_fail(st, "push batch 4 -> 4");
    }
    printf("%s: pushed batch 4 -> 4\n", ex_prog);
    return 0;
}

/* The decoder's pull phase: link to the prompt at @p remote, pull rows 0-3
 * (ex_pull_rows_0_3()), check that they hold iota and rows 4-7 are still
 * unset, then tell the prompt how it went (notification @p name) and
 * unlink. Returns 0 or 1. */
static inline int ex_pull_phase(kvx_kv_h kv, int dev, void *const *tensors, int64_t cache_id,
                                const char *remote, const char *name)
{
    if (ex_link_to(kv, EX_PROMPT_CLUSTER, remote) != 0) {
        return 1;
    }
    const char *why = "ok";
    if (ex_pull_rows_0_3(kv, cache_id) != 0) {
        why = "a pull failed";
    } else if (ex_check_rows(dev, tensors, 0, 3, 1) != 0 ||
               ex_check_rows(dev, tensors, 4, 7, 0) != 0) {
        why = "the decoder got wrong data";
    }
    return ex_notify_unlink(kv, EX_PROMPT_CLUSTER, name, why, strcmp(why, "ok") != 0);
}

/* The prompt's push phase: link to the decoder at @p remote, push rows 4-7
 * (ex_push_rows_4_7()), then tell the decoder how it went (notification
 * @p name, sent after the data) and unlink. Returns 0 or 1. */
static inline int ex_push_phase(kvx_kv_h kv, int64_t cache_id, const char *remote, const char *name)
{
    if (ex_link_to(kv, EX_DECODER_CLUSTER, remote) != 0) {
        return 1;
    }
    int rc = ex_push_rows_4_7(kv, cache_id);
    return ex_notify_unlink(kv, EX_DECODER_CLUSTER, name,
                            rc == 0 ? "ok" : "the prompt failed to push", rc);
}

#endif /* KVX_KV_EXAMPLE_COMMON_H */

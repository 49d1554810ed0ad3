/*
 * Fault 5: the target restarts (kill -9, a new process on the same port) and
 * the surviving initiator links again without restarting.
 *
 * Engine: this test is the initiator, and listens, so that the target can
 * send it notifications over a link of its own ("notify-to"). Asserted:
 * - kvx_engine_peer_epoch(): KVX_ERR_NOT_CONNECTED for a remote never
 *   linked; while linked, a non-zero epoch and remote instance id; after the
 *   restart and a new connect, a different epoch and a different instance
 *   id (the doc: the instance id changes when the remote process restarts);
 * - tcp: async transfers pending on the old link (the old target stopped,
 *   then killed) end FAILED with KVX_ERR_CONNECTION_LOST within
 *   KILL_BOUND_MS; over shm none can be pending (each copy ends in its
 *   call), which is said and skipped;
 * - new transfers work on the new link, both ways, byte-exact;
 * - notifications: the old target sends OLD_NOTES (each receipted), which we
 *   leave queued; once we have linked to the new process (same "ip:port",
 *   new instance), none of the old ones is fetched: they belong to the old
 *   epoch. The new target's NEW_NOTES are fetched exactly once, in order,
 *   each with the new instance id as sender_instance.
 *
 * KV: a decoder linked to a prompt cluster ("kvx-test-peer kv-serve") pulls
 * scattered blocks; the prompt process is killed and a new one (new
 * content, same port and cluster id) started; a pull fails with a peer
 * status within the deadline; kvx_kv_link() of the same cluster is
 * KVX_ERR_ALREADY_LINKED (the local link stays); kvx_kv_unlink() (force if
 * the plain one fails, which is printed) and a new link pull the new
 * content, every byte checked.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"
#include "kv_fixture.h"

/* What a test made, so that teardown also cleans up after a failed check (a
 * peer left running would hold ctest's output pipe open). */
static test_peer_t g_peer;
static kvx_engine_h g_engine;
static kvx_kv_h g_kv;

static int teardown(void **state)
{
    (void)state;
    if (g_engine != NULL) {
        kvx_engine_destroy(g_engine);
        g_engine = NULL;
    }
    if (g_kv != NULL) {
        kvx_kv_destroy(g_kv);
        g_kv = NULL;
    }
    if (g_peer.pid > 0) {
        test_peer_kill(&g_peer);
    }
    return 0;
}

#define KILL_BOUND_MS 5000
#define OLD_NOTES     5
#define NEW_NOTES     3
#define CH            (4u << 20)

static void test_engine_restart(void **state)
{
    (void)state;
    kvx_engine_h e = g_engine = fault_engine("127.0.0.1:0", 0, NULL);
    assert_non_null(e);
    const char *me = kvx_engine_name(e);
    uint8_t *buf = malloc(32u << 20);
    assert_non_null(buf);
    kvx_mem_h mem = fault_register(e, buf, 32u << 20, 0);
    (void)mem;

    uint64_t epoch = 1, inst = 1;
    assert_int_equal(kvx_engine_peer_epoch(e, "127.0.0.1:1", &epoch, &inst), KVX_ERR_NOT_CONNECTED);

    test_peer_t *peer = &g_peer;
    assert_int_equal(test_peer_start(peer, 0), 0);
    int port = peer->port;
    char name[sizeof(peer->name)];
    memcpy(name, peer->name, sizeof(name));
    assert_int_equal(test_connect(e, name, 10000), KVX_OK);
    uint64_t e1 = 0, i1 = 0;
    assert_int_equal(kvx_engine_peer_epoch(e, name, &e1, &i1), KVX_OK);
    assert_true(e1 != 0 && i1 != 0);
    uint64_t src = test_remote_region(e, name, PEER_TAG_SRC);
    assert_true(src != 0);

    /* The old target notifies us over its own link; we do not fetch yet. */
    int64_t sent = -1;
    assert_int_equal(test_peer_cmd(e, name, &sent, "notify-to", "%s %d", me, OLD_NOTES), 0);
    assert_int_equal(sent, OLD_NOTES);
    pid_t old_pid = peer->pid;

    /* Transfers pending on the old link when it dies (tcp only). */
    enum { N = 8 };
    kvx_xfer_id_t ids[N] = {0};
    int shm = test_transport_is_shm();
    if (shm) {
        print_message("  shm: no transfer can be pending on the old link (each copy ends in its "
                      "call): skipped that part\n");
    } else {
        assert_int_equal(test_peer_pause(peer), 0);
        kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = 20000};
        for (int k = 0; k < N; k++) {
            kvx_xfer_desc_t d = {buf + (size_t)k * CH, src + (size_t)k * CH, CH};
            FAULT_ADD(requests, 1);
            assert_int_equal(
                kvx_xfer_submit(e, name, k % 2 ? KVX_OP_WRITE : KVX_OP_READ, &d, 1, &xp, &ids[k]),
                KVX_OK);
        }
    }
    uint64_t t_kill = test_now_ms();
    test_peer_kill(peer);
    FAULT_ADD(faults, 1);
    for (int k = 0; k < N && !shm; k++) {
        int64_t left = (int64_t)(t_kill + KILL_BOUND_MS) - (int64_t)test_now_ms();
        kvx_status_t err = KVX_OK;
        kvx_xfer_state_t st = fault_wait(e, ids[k], left > 0 ? (int)left : 0, &err);
        if (st != KVX_XFER_FAILED || err != KVX_ERR_CONNECTION_LOST) {
            fail_msg("old transfer %d ended state %d (%s), expected FAILED with "
                     "KVX_ERR_CONNECTION_LOST",
                     k, (int)st, kvx_status_name(err));
        }
    }
    kvx_status_t why = KVX_OK;
    assert_int_equal(fault_wait_peer_state(e, name, KVX_PEER_BROKEN, KILL_BOUND_MS, &why),
                     KVX_PEER_BROKEN);
    uint64_t eb = 1, ib = 1;
    assert_int_equal(kvx_engine_peer_epoch(e, name, &eb, &ib), KVX_OK);
    print_message("  old target %d killed: link BROKEN (%s); epoch while broken %llu, instance "
                  "%016llx\n",
                  (int)old_pid, kvx_status_name(why), (unsigned long long)eb,
                  (unsigned long long)ib);

    /* A new process on the same port; we link again as we are. */
    assert_int_equal(test_peer_start(peer, port), 0);
    assert_string_equal(peer->name, name);
    assert_int_equal(test_connect(e, name, 10000), KVX_OK);
    uint64_t e2 = 0, i2 = 0;
    assert_int_equal(kvx_engine_peer_epoch(e, name, &e2, &i2), KVX_OK);
    print_message("  epochs %llu -> %llu, instances %016llx -> %016llx\n", (unsigned long long)e1,
                  (unsigned long long)e2, (unsigned long long)i1, (unsigned long long)i2);
    assert_true(e2 != 0 && e2 != e1);
    assert_true(i2 != 0 && i2 != i1);

    /* New transfers work, both ways. */
    src = test_remote_region(e, name, PEER_TAG_SRC);
    uint64_t dst = test_remote_region(e, name, PEER_TAG_DST);
    assert_true(src != 0 && dst != 0);
    memset(buf, 0, CH);
    kvx_xfer_desc_t d = {buf, src + 999, CH};
    FAULT_ADD(requests, 2);
    assert_int_equal(kvx_xfer_sync(e, name, KVX_OP_READ, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify(buf, CH, PEER_TAG_SRC, 999), 0);
    test_fill(buf, CH, 555, 0);
    d = (kvx_xfer_desc_t){buf, dst, CH};
    assert_int_equal(kvx_xfer_sync(e, name, KVX_OP_WRITE, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify_remote(peer->pid, dst, CH, 555, 0), 0);

    assert_int_equal(test_peer_cmd(e, name, &sent, "notify-to", "%s %d", me, NEW_NOTES), 0);
    assert_int_equal(sent, NEW_NOTES);
    /* The new one's, once, in order; none of the old one's. Wait a little
     * past the last of them, so that a stale one would be seen. */
    int got_old = 0, got_new = 0;
    uint64_t t0 = test_now_ms();
    while (test_now_ms() - t0 < (got_new < NEW_NOTES ? 5000u : 300u)) {
        if (kvx_notify_wait(e, 100) != KVX_OK) {
            continue;
        }
        kvx_notification_t *list = NULL;
        size_t n = 0;
        assert_int_equal(kvx_notify_fetch(e, &list, &n), KVX_OK);
        for (size_t i = 0; i < n; i++) {
            int pid = 0;
            unsigned idx = 0;
            assert_string_equal(list[i].name, "from-peer");
            assert_int_equal(sscanf(list[i].msg, "%d %u", &pid, &idx), 2);
            assert_string_equal(list[i].sender, name);
            if (pid == (int)old_pid) {
                got_old++;
                continue;
            }
            assert_int_equal(pid, (int)peer->pid);
            assert_int_equal(list[i].sender_instance, i2);
            assert_int_equal(idx, got_new++);
        }
        kvx_notify_free(list, n);
    }
    print_message("  notifications fetched after the restart: %d of %d from the old target "
                  "(old epoch), %d of %d from the new one\n",
                  got_old, OLD_NOTES, got_new, NEW_NOTES);
    assert_int_equal(got_old, 0);
    assert_int_equal(got_new, NEW_NOTES);

    kvx_engine_destroy(e);
    g_engine = NULL;
    assert_int_equal(test_peer_stop(peer), 0);
    free(buf);
}

/* ------------------------------------------------------------------ KV */

#define P_ID        11
#define D_ID        22
#define NBLK        24
#define KV_RESTARTS 3

static void start_prompt(test_peer_t *p, int port, uint64_t seed)
{
    char listen[64], cluster[16], s[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(cluster, sizeof(cluster), "%d", P_ID);
    snprintf(s, sizeof(s), "%llu", (unsigned long long)seed);
    const char *args[] = {"--cluster", cluster, "--seed", s, NULL};
    assert_int_equal(test_peer_spawn(p, NULL, "kv-serve", listen, args, NULL), 0);
}

/* Pull the scattered blocks and check each of them, every tensor. */
static kvx_status_t pull_and_check(kvx_kv_h kv, int64_t local, void **t, uint64_t seed, int check)
{
    uint64_t src[NBLK], dst[NBLK];
    for (size_t k = 0; k < NBLK; k++) {
        src[k] = (k * 37 + 5) % PEER_KV_BLOCKS;
        dst[k] = (k * 53 + 11) % PEER_KV_BLOCKS;
    }
    kvx_kv_remote_cache_t rc = {.cluster_id = P_ID, .cache_id = 1};
    FAULT_ADD(requests, 1);
    kvx_status_t st = kvx_kv_pull_blocks(kv, &rc, local, src, NBLK, dst, NBLK, NULL);
    if (st != KVX_OK || !check) {
        return st;
    }
    uint8_t *tmp = malloc(PEER_KV_BLOCK);
    assert_non_null(tmp);
    for (int i = 0; i < PEER_KV_TENSORS; i++) {
        for (size_t k = 0; k < NBLK; k++) {
            OK(kvx_device_memcpy(tmp, (uint8_t *)t[i] + dst[k] * PEER_KV_BLOCK, PEER_KV_BLOCK,
                                 KVX_COPY_D2H, 0));
            size_t bad =
                fault_verify(tmp, PEER_KV_BLOCK, seed + (uint64_t)i, src[k] * PEER_KV_BLOCK);
            if (bad != 0) {
                fail_msg("tensor %d block %zu (from remote block %llu): %zu bytes differ", i,
                         (size_t)dst[k], (unsigned long long)src[k], bad);
            }
        }
    }
    free(tmp);
    return KVX_OK;
}

static void test_kv_restart(void **state)
{
    (void)state;
    test_peer_t *p = &g_peer;
    start_prompt(p, 0, 5000);
    int port = p->port;
    kvx_kv_params_t kp = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE |
                                        KVX_KV_PARAM_FIELD_LOCAL_IP |
                                        KVX_KV_PARAM_FIELD_SYNC_TIMEOUT,
                          .cluster_id = D_ID,
                          .role = KVX_KV_ROLE_DECODER,
                          .local_ip = "127.0.0.1",
                          .sync_timeout_ms = 5000};
    kvx_kv_h kv;
    OK(kvx_kv_create(&kp, &kv));
    g_kv = kv;
    kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                              KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                              KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                                .placement = KVX_MEM_DEVICE,
                                .num_tensors = PEER_KV_TENSORS,
                                .dtype = KVX_DTYPE_FP16,
                                .ndims = 4,
                                .dims = {PEER_KV_BLOCKS, 16, 8, 64}};
    int64_t local = 0;
    void *t[PEER_KV_TENSORS];
    OK(kvx_kv_cache_allocate(kv, &desc, &local, t));
    kvx_kv_cluster_t cl = {.remote_cluster_id = P_ID, .remote = p->name};
    OK(kvx_kv_link(kv, &cl, 1, LINK_MS, NULL));
    OK(pull_and_check(kv, local, t, 5000, 1));

    for (int r = 1; r <= KV_RESTARTS; r++) {
        uint64_t seed = 5000 + 1000 * (uint64_t)r;
        pid_t old = p->pid;
        test_peer_kill(p);
        FAULT_ADD(faults, 1);
        start_prompt(p, port, seed);
        cl.remote = p->name;

        /* The link still points at the dead process: a pull fails, promptly. */
        uint64_t t0 = test_now_ms();
        kvx_status_t st = pull_and_check(kv, local, t, seed, 0);
        uint64_t took = test_now_ms() - t0;
        assert_true(took < 5000 + 2000);
        if (st == KVX_OK || !KVX_IS_PEER_ERROR(st)) {
            fail_msg("a pull over the link to the dead prompt process: %s, expected a peer error",
                     kvx_status_name(st));
        }
        kvx_status_t relink = KVX_OK;
        assert_int_equal(kvx_kv_link(kv, &cl, 1, LINK_MS, &relink), KVX_ERR_ALREADY_LINKED);
        kvx_status_t u = kvx_kv_unlink(kv, &cl, 1, LINK_MS, 0, NULL);
        int forced = 0;
        if (u != KVX_OK) {
            forced = 1;
            OK(kvx_kv_unlink(kv, &cl, 1, LINK_MS, 1, NULL));
        }
        OK(kvx_kv_link(kv, &cl, 1, LINK_MS, NULL));
        OK(pull_and_check(kv, local, t, seed, 1));
        print_message("  restart %d: prompt %d killed, %d started on the same port: pull %s in "
                      "%llu ms, link again %s, unlink %s%s, then linked and pulled the new "
                      "content\n",
                      r, (int)old, (int)p->pid, kvx_status_name(st), (unsigned long long)took,
                      kvx_status_name(relink), kvx_status_name(u), forced ? " (then forced)" : "");
    }
    kvx_kv_destroy(kv);
    g_kv = NULL;
    assert_int_equal(test_peer_stop(p), 0);
    assert_int_equal(fault_stats.hangs, 0);
    assert_int_equal(fault_stats.corrupted, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_engine_restart, teardown),
        cmocka_unit_test_teardown(test_kv_restart, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("restart");
    return rc;
}

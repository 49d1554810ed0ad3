/*
 * Fault 6: link churn. CYCLES cycles of an engine connect, one READ and one
 * WRITE of 64 KiB (both checked), disconnect; then CYCLES cycles of a KV
 * link to a prompt process, a pull of scattered blocks (checked), unlink.
 *
 * Asserted, on both sides (this process and the peer, via /proc/<pid>):
 * after a warm-up of WARMUP cycles, open file descriptors do not grow (the
 * peer closes a link's socket and pin memfd a little after the initiator
 * returned, so its count is polled for up to SETTLE_MS), and the resident
 * set grows by less than RSS_SLACK. Every cycle's calls succeed and every
 * byte moved is checked.
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

#define CYCLES    1000
#define WARMUP    50
#define RSS_SLACK (2l << 20)
#define SETTLE_MS 3000
#define LEN       (64u << 10)

/* AddressSanitizer keeps freed memory in quarantine, so there the resident
 * set grows by design (LeakSanitizer looks for leaks instead). */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#else
#define RSS_CHECKED 1
#endif

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

typedef struct usage {
    int fds, peer_fds;
    long rss, peer_rss;
} usage_t;

static usage_t measure(pid_t peer)
{
    usage_t u = {fault_fd_count(0), fault_fd_count(peer), fault_rss(0), fault_rss(peer)};
    assert_true(u.fds > 0 && u.peer_fds > 0 && u.rss > 0 && u.peer_rss > 0);
    return u;
}

/* After the cycles: descriptors back to the warm-up level (the peer's may
 * lag: polled), RSS within the slack. */
static void check_growth(const char *what, pid_t peer, const usage_t *base)
{
    uint64_t t0 = test_now_ms();
    usage_t now = measure(peer);
    while ((now.fds > base->fds || now.peer_fds > base->peer_fds) &&
           test_now_ms() - t0 < SETTLE_MS) {
        usleep(20000);
        now = measure(peer);
    }
    print_message("  %s: after %d cycles (baseline after %d): fds %d -> %d, peer fds %d -> %d, "
                  "RSS %+ld KiB, peer RSS %+ld KiB\n",
                  what, CYCLES, WARMUP, base->fds, now.fds, base->peer_fds, now.peer_fds,
                  (now.rss - base->rss) / 1024, (now.peer_rss - base->peer_rss) / 1024);
    assert_true(now.fds <= base->fds);
    assert_true(now.peer_fds <= base->peer_fds);
    if (!RSS_CHECKED) {
        print_message("  %s: RSS growth not checked: built with AddressSanitizer\n", what);
        return;
    }
    assert_true(now.rss - base->rss < RSS_SLACK);
    assert_true(now.peer_rss - base->peer_rss < RSS_SLACK);
}

static void test_engine_cycles(void **state)
{
    (void)state;
    test_peer_t *peer = &g_peer;
    assert_int_equal(test_peer_start(peer, 0), 0);
    kvx_engine_h e = g_engine = test_client(NULL);
    assert_non_null(e);
    uint8_t *buf = malloc(LEN);
    assert_non_null(buf);
    fault_register(e, buf, LEN, 0);
    assert_int_equal(test_connect(e, peer->name, 10000), KVX_OK);
    uint64_t src = test_remote_region(e, peer->name, PEER_TAG_SRC);
    uint64_t dst = test_remote_region(e, peer->name, PEER_TAG_DST);
    assert_true(src != 0 && dst != 0);
    assert_int_equal(kvx_engine_disconnect(e, peer->name, 5000), KVX_OK);

    usage_t base = {0};
    uint64_t t0 = test_now_ms();
    for (int i = 0; i < CYCLES; i++) {
        if (i == WARMUP) {
            base = measure(peer->pid);
        }
        kvx_status_t st = kvx_engine_connect(e, peer->name, 5000);
        if (st != KVX_OK) {
            fail_msg("cycle %d: connect: %s (%s)", i, kvx_status_name(st), kvx_last_error());
        }
        size_t off = ((size_t)i * 69632) % (32u << 20);
        memset(buf, 0, LEN);
        kvx_xfer_desc_t d = {buf, src + off, LEN};
        FAULT_ADD(requests, 4);
        OK(kvx_xfer_sync(e, peer->name, KVX_OP_READ, &d, 1, NULL));
        assert_int_equal(fault_verify(buf, LEN, PEER_TAG_SRC, off), 0);
        test_fill(buf, LEN, 3000 + (uint64_t)i, off);
        d.remote_addr = dst + off;
        OK(kvx_xfer_sync(e, peer->name, KVX_OP_WRITE, &d, 1, NULL));
        assert_int_equal(fault_verify_remote(peer->pid, dst + off, LEN, 3000 + (uint64_t)i, off),
                         0);
        st = kvx_engine_disconnect(e, peer->name, 5000);
        if (st != KVX_OK) {
            fail_msg("cycle %d: disconnect: %s (%s)", i, kvx_status_name(st), kvx_last_error());
        }
    }
    print_message("  engine: %d connect/transfer/disconnect cycles in %llu ms\n", CYCLES,
                  (unsigned long long)(test_now_ms() - t0));
    check_growth("engine", peer->pid, &base);
    kvx_engine_destroy(e);
    g_engine = NULL;
    assert_int_equal(test_peer_stop(peer), 0);
    free(buf);
}

#define P_ID 11
#define D_ID 22

static void test_kv_cycles(void **state)
{
    (void)state;
    test_peer_t *p = &g_peer;
    const char *args[] = {"--cluster", "11", "--seed", "700", NULL};
    assert_int_equal(test_peer_spawn(p, NULL, "kv-serve", "127.0.0.1:0", args, NULL), 0);
    kvx_kv_params_t kp = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID |
                                        KVX_KV_PARAM_FIELD_LOCAL_IP |
                                        KVX_KV_PARAM_FIELD_SYNC_TIMEOUT,
                          .cluster_id = D_ID,
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
    /* Touch every page of it now: pulls into blocks not yet used would
     * otherwise grow the resident set during the cycles. */
    for (int tn = 0; tn < PEER_KV_TENSORS; tn++) {
        OK(kvx_device_memset(0, t[tn], 0, (size_t)PEER_KV_BLOCKS * PEER_KV_BLOCK));
    }
    kvx_kv_cluster_t cl = {.remote_cluster_id = P_ID, .remote = p->name};
    kvx_kv_remote_cache_t rc = {.cluster_id = P_ID, .cache_id = 1};
    uint8_t *tmp = malloc(PEER_KV_BLOCK);
    assert_non_null(tmp);

    usage_t base = {0};
    uint64_t t0 = test_now_ms();
    for (int i = 0; i < CYCLES; i++) {
        if (i == WARMUP) {
            base = measure(p->pid);
        }
        kvx_status_t st = kvx_kv_link(kv, &cl, 1, LINK_MS, NULL);
        if (st != KVX_OK) {
            fail_msg("cycle %d: link: %s (%s)", i, kvx_status_name(st), kvx_last_error());
        }
        uint64_t sb[2] = {(uint64_t)i % PEER_KV_BLOCKS, ((uint64_t)i * 7 + 3) % PEER_KV_BLOCKS};
        uint64_t db[2] = {((uint64_t)i * 5 + 1) % PEER_KV_BLOCKS,
                          ((uint64_t)i * 5 + 2) % PEER_KV_BLOCKS};
        FAULT_ADD(requests, 3);
        OK(kvx_kv_pull_blocks(kv, &rc, local, sb, 2, db, 2, NULL));
        for (int tn = 0; tn < PEER_KV_TENSORS; tn++) {
            for (int k = 0; k < 2; k++) {
                OK(kvx_device_memcpy(tmp, (uint8_t *)t[tn] + db[k] * PEER_KV_BLOCK, PEER_KV_BLOCK,
                                     KVX_COPY_D2H, 0));
                assert_int_equal(
                    fault_verify(tmp, PEER_KV_BLOCK, 700 + (uint64_t)tn, sb[k] * PEER_KV_BLOCK), 0);
            }
        }
        st = kvx_kv_unlink(kv, &cl, 1, LINK_MS, 0, NULL);
        if (st != KVX_OK) {
            fail_msg("cycle %d: unlink: %s (%s)", i, kvx_status_name(st), kvx_last_error());
        }
    }
    print_message("  kv: %d link/pull/unlink cycles in %llu ms\n", CYCLES,
                  (unsigned long long)(test_now_ms() - t0));
    check_growth("kv", p->pid, &base);
    free(tmp);
    kvx_kv_destroy(kv);
    g_kv = NULL;
    assert_int_equal(test_peer_stop(p), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_engine_cycles, teardown),
        cmocka_unit_test_teardown(test_kv_cycles, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("cycles");
    return rc != 0 || fault_stats.hangs != 0 || fault_stats.corrupted != 0;
}

/*
 * Fault 2: kill -9 of the initiator mid-transfer.
 *
 * This test is the target: a listening engine with two registered regions,
 * SRC (malloc'ed, the pattern of PEER_TAG_SRC) and DST (kvx_host_malloc, so
 * over shm a same-host initiator maps it and memcpy's, while SRC goes
 * through process_vm_*). The initiator is a child, "kvx-test-peer initiate",
 * that keeps 16 transfers of 4 MiB in flight both ways; it says it is
 * running (port file) after its first round, and is killed with SIGKILL
 * during a later one, KILLS times.
 *
 * Asserted after each kill: this engine notices the link is gone (incoming
 * links back to 0) within NOTICE_BOUND_MS, and both regions can be
 * deregistered: kvx_mem_deregister() returns KVX_OK within DEREG_BOUND_MS of
 * retrying KVX_ERR_BUSY (over shm a dead initiator's pins count for a 5 s
 * grace, see docs/architecture.md), never BUSY for ever. Then a second
 * initiator runs four full rounds against the same engine and exits 0 (its
 * READs intact), and its WRITEs are checked here byte by byte; after it the
 * regions deregister at once.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"

#define KILLS           5
#define REGION          (64u << 20)
#define HALF            (32u << 20) /* what the initiator writes of DST */
#define NOTICE_BOUND_MS 5000
#define DEREG_BOUND_MS  10000

typedef struct fixture {
    kvx_engine_h engine;
    uint8_t *src, *dst;
    kvx_mem_h msrc, mdst;
    test_peer_t child;
    char dir[64];
} fixture_t;

static void register_regions(fixture_t *f)
{
    f->msrc = fault_register(f->engine, f->src, REGION, PEER_TAG_SRC);
    f->mdst = fault_register(f->engine, f->dst, REGION, PEER_TAG_DST);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->engine = fault_engine("127.0.0.1:0", 0, NULL);
    assert_non_null(f->engine);
    f->src = malloc(REGION);
    assert_non_null(f->src);
    test_fill(f->src, REGION, PEER_TAG_SRC, 0);
    /* Host memory from kvx_host_malloc() before any device call: the
     * device backend is then chosen with it alive (this used to fail). */
    assert_int_equal(kvx_host_malloc(REGION, (void **)&f->dst), KVX_OK);
    memset(f->dst, 0, REGION);
    register_regions(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/kvx-fault-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->child.pid > 0) {
        test_peer_kill(&f->child);
    }
    kvx_engine_destroy(f->engine);
    free(f->src);
    kvx_host_free(f->dst);
    char path[128];
    snprintf(path, sizeof(path), "%s/result", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static size_t incoming(fixture_t *f)
{
    size_t n = 0;
    assert_int_equal(kvx_engine_incoming_links(f->engine, &n), KVX_OK);
    return n;
}

/* Deregister @p mem, retrying BUSY for at most @p bound_ms. Returns the
 * milliseconds it took; fails the test if it never succeeds. */
static uint64_t deregister_bounded(fixture_t *f, kvx_mem_h mem, const char *what, int bound_ms,
                                   unsigned *busy_p)
{
    uint64_t t0 = test_now_ms();
    kvx_status_t st;
    unsigned busy = 0;
    while ((st = kvx_mem_deregister(f->engine, mem)) == KVX_ERR_BUSY &&
           test_now_ms() - t0 < (uint64_t)bound_ms) {
        busy++;
        usleep(5000);
    }
    FAULT_ADD(requests, 1);
    if (st != KVX_OK) {
        FAULT_ADD(hangs, st == KVX_ERR_BUSY);
        fail_msg("deregister %s: %s after %llu ms (%u BUSY replies)", what, kvx_status_name(st),
                 (unsigned long long)(test_now_ms() - t0), busy);
    }
    *busy_p += busy;
    return test_now_ms() - t0;
}

static void start_initiator(fixture_t *f, const char *const *args)
{
    assert_int_equal(
        test_peer_spawn(&f->child, NULL, "initiate", kvx_engine_name(f->engine), args, NULL), 0);
}

static void test_kill_initiator_mid_transfer(void **state)
{
    fixture_t *f = *state;
    for (int k = 0; k < KILLS; k++) {
        char seed[32];
        snprintf(seed, sizeof(seed), "%d", 100 + k);
        const char *args[] = {"--seed", seed, NULL};
        start_initiator(f, args);
        assert_int_equal(incoming(f), 1);
        /* It runs rounds back to back: whenever it dies, 16 transfers of
         * 4 MiB are in flight (over shm: one copy is). */
        pid_t pid = f->child.pid;
        usleep(20000 * (useconds_t)k); /* vary where in a round it dies */
        uint64_t t_kill = test_now_ms();
        test_peer_kill(&f->child);
        FAULT_ADD(faults, 1);

        while (incoming(f) != 0 && test_now_ms() - t_kill < NOTICE_BOUND_MS) {
            usleep(2000);
        }
        if (incoming(f) != 0) {
            FAULT_ADD(hangs, 1);
            fail_msg("kill %d: the dead initiator's link still counts after %d ms", k,
                     NOTICE_BOUND_MS);
        }
        uint64_t noticed = test_now_ms() - t_kill;
        unsigned busy = 0;
        uint64_t t_src = deregister_bounded(f, f->msrc, "SRC", DEREG_BOUND_MS, &busy);
        uint64_t t_dst = deregister_bounded(f, f->mdst, "DST", DEREG_BOUND_MS, &busy);
        print_message("  kill %d: initiator %d killed; link gone after %llu ms; deregistered SRC "
                      "in %llu ms, DST in %llu ms (%u BUSY replies)\n",
                      k, (int)pid, (unsigned long long)noticed, (unsigned long long)t_src,
                      (unsigned long long)t_dst, busy);
        register_regions(f);
    }

    /* The target still serves: another initiator, four full rounds. */
    memset(f->dst, 0, REGION);
    char result[128];
    snprintf(result, sizeof(result), "%s/result", f->dir);
    const char *args[] = {"--rounds", "4", "--seed", "999", "--result", result, NULL};
    start_initiator(f, args);
    uint64_t t0 = test_now_ms();
    int st = -1;
    while (test_now_ms() - t0 < 60000) {
        pid_t r = waitpid(f->child.pid, &st, WNOHANG);
        if (r == f->child.pid) {
            f->child.pid = 0;
            rmdir(f->child.dir);
            break;
        }
        usleep(5000);
    }
    if (f->child.pid != 0) {
        FAULT_ADD(hangs, 1);
        fail_msg("the second initiator did not finish within 60 s");
    }
    assert_true(WIFEXITED(st));
    FILE *rf = fopen(result, "r");
    assert_non_null(rf);
    unsigned long long bytes = 0, bad = 1, requests = 0, failed = 1;
    assert_int_equal(fscanf(rf, "bytes=%llu bad=%llu requests=%llu failed=%llu", &bytes, &bad,
                            &requests, &failed),
                     4);
    fclose(rf);
    FAULT_ADD(bytes, bytes);
    FAULT_ADD(corrupted, bad);
    FAULT_ADD(requests, requests);
    print_message("  second initiator: exit %d, %llu transfers, %llu bytes read back intact, %llu "
                  "bad, %llu failed\n",
                  WEXITSTATUS(st), requests, bytes, bad, failed);
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(bad, 0);
    assert_int_equal(failed, 0);
    /* Its WRITEs, here, and nothing beyond them. */
    assert_int_equal(fault_verify(f->dst, HALF, 999, 0), 0);
    for (size_t i = HALF; i < REGION; i++) {
        if (f->dst[i] != 0) {
            fail_msg("DST byte %zu beyond the written half is 0x%02x", i, f->dst[i]);
        }
    }
    assert_int_equal(test_check(f->src, REGION, PEER_TAG_SRC, 0), 0);
    unsigned busy = 0;
    deregister_bounded(f, f->msrc, "SRC", 1000, &busy);
    deregister_bounded(f, f->mdst, "DST", 1000, &busy);
    register_regions(f);
    assert_int_equal(fault_stats.hangs, 0);
    assert_int_equal(fault_stats.corrupted, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_initiator_mid_transfer, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("kill_initiator");
    return rc;
}

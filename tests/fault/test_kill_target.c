/*
 * Fault 1: kill -9 of the target while many transfers are in flight.
 *
 * This test is the initiator, kvx-test-peer the target. Each of ROUNDS rounds
 * starts a fresh target, keeps two threads in sync transfers of 4 MiB (a
 * READ loop and a WRITE loop), submits 8 async READs and 8 async WRITEs of
 * 4 MiB, then kills the target with SIGKILL: in even rounds after freezing
 * it with SIGSTOP (so that the WRITEs that completed can be checked in its
 * memory first, and a probe READ submitted to the frozen target is certainly
 * in flight over tcp), in odd rounds while it runs.
 *
 * Asserted: every pending transfer ends within KILL_BOUND_MS of the kill
 * (its own deadline is 20 s): async ones FAILED with KVX_ERR_CONNECTION_LOST
 * (or TIMEOUT), sync calls KVX_ERR_CONNECTION_LOST (KVX_ERR_NOT_CONNECTED
 * for a call made once the link was gone); the link is BROKEN with
 * KVX_ERR_CONNECTION_LOST and a new call is refused at once; every transfer
 * reported COMPLETED moved intact data (READs checked here, WRITEs in the
 * target's memory with process_vm_readv while it lives; WRITEs that
 * completed into a process already dead are counted as unverified); and the
 * same engine then links to a fresh target and moves data both ways.
 *
 * Over shm the initiator copies by itself and async submits copy before they
 * return: the transfers in flight at the kill are the sync loops' copies.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"

#define CH            (4u << 20) /* bytes per transfer */
#define ASYNC_PAIRS   8          /* async READs and WRITEs per round */
#define ROUNDS        8
#define DEADLINE_MS   20000 /* every transfer's own deadline */
#define KILL_BOUND_MS 5000  /* "promptly": all pending transfers end within this of the kill */
/* Async slots, then one for the probe READ submitted to a frozen target. */
#define ABUF_BYTES ((2 * ASYNC_PAIRS + 1) * (size_t)CH)

typedef struct syncer {
    kvx_engine_h engine;
    const char *remote;
    pid_t pid;
    kvx_op_t op;
    uint8_t *buf;   /* CH bytes, registered */
    uint64_t raddr; /* remote region base */
    size_t roff;    /* first of two CH slots used at the remote */
    uint64_t seed;
    int stop;
    int done;
    unsigned completed, unverified;
    kvx_status_t last; /* status of the call that ended the loop */
    uint64_t ended_ms, longest_ms;
} syncer_t;

static void *sync_loop(void *arg)
{
    syncer_t *s = arg;
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    for (unsigned i = 0; !__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE); i++) {
        size_t roff = s->roff + (i % 2) * (size_t)CH;
        uint64_t seed = s->seed + i;
        if (s->op == KVX_OP_WRITE) {
            test_fill(s->buf, CH, seed, roff);
        } else {
            memset(s->buf, 0, CH);
        }
        kvx_xfer_desc_t d = {s->buf, s->raddr + roff, CH};
        FAULT_ADD(requests, 1);
        uint64_t t0 = test_now_ms();
        kvx_status_t st = kvx_xfer_sync(s->engine, s->remote, s->op, &d, 1, &xp);
        uint64_t took = test_now_ms() - t0;
        s->longest_ms = took > s->longest_ms ? took : s->longest_ms;
        if (st != KVX_OK) {
            s->last = st;
            s->ended_ms = test_now_ms();
            break;
        }
        if (s->op == KVX_OP_READ) {
            fault_verify(s->buf, CH, PEER_TAG_SRC, roff);
        } else if (fault_verify_remote(s->pid, s->raddr + roff, CH, seed, roff) < 0) {
            s->unverified++; /* the target is gone: nothing left to check */
        }
        __atomic_add_fetch(&s->completed, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

typedef struct fixture {
    kvx_engine_h engine;
    test_peer_t peer;
    uint8_t *abuf; /* async: READs into [0, 32 MiB), WRITEs from [32, 64 MiB), probe after */
    uint8_t *sbuf; /* sync loops: CH each */
    kvx_mem_h amem, smem;
    char name[sizeof(((test_peer_t *)0)->name)]; /* the current target's */
    syncer_t sy_store[2];
    syncer_t *sy; /* running sync loops, stopped by teardown if a check fails */
    pthread_t th[2];
} fixture_t;

/* Stop and join the sync loops (bounded: a loop stuck in a call is a hang). */
static void stop_loops(fixture_t *f)
{
    if (f->sy == NULL) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        __atomic_store_n(&f->sy[i].stop, 1, __ATOMIC_RELEASE);
    }
    for (int i = 0; i < 2; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 30;
        if (pthread_timedjoin_np(f->th[i], NULL, &ts) != 0) {
            fprintf(stderr, "a sync transfer did not return within 30 s: giving up\n");
            fault_summary("kill_target");
            _exit(1);
        }
    }
    f->sy = NULL;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->engine = test_client(NULL);
    assert_non_null(f->engine);
    f->abuf = malloc(ABUF_BYTES);
    f->sbuf = malloc(2 * (size_t)CH);
    assert_true(f->abuf != NULL && f->sbuf != NULL);
    f->amem = fault_register(f->engine, f->abuf, ABUF_BYTES, 0);
    f->smem = fault_register(f->engine, f->sbuf, 2 * (size_t)CH, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    test_peer_resume(&f->peer);
    stop_loops(f);
    kvx_engine_destroy(f->engine);
    if (f->peer.pid > 0) {
        test_peer_kill(&f->peer);
    }
    free(f->abuf);
    free(f->sbuf);
    free(f);
    return 0;
}

/* Start a fresh target and link to it; its SRC and DST addresses. */
static void fresh_target(fixture_t *f, uint64_t *src, uint64_t *dst)
{
    assert_int_equal(test_peer_start(&f->peer, 0), 0);
    assert_int_equal(test_connect(f->engine, f->peer.name, 10000), KVX_OK);
    *src = test_remote_region(f->engine, f->peer.name, PEER_TAG_SRC);
    *dst = test_remote_region(f->engine, f->peer.name, PEER_TAG_DST);
    assert_true(*src != 0 && *dst != 0);
}

static void one_round(fixture_t *f, int round, int stop_first)
{
    uint64_t src, dst;
    fresh_target(f, &src, &dst);
    /* The loops use the name after the peer record is cleared by the kill. */
    char *name = f->name;
    memcpy(name, f->peer.name, sizeof(f->name));

    /* Sync loops use the remote slots behind the async ones. */
    syncer_t *sy = f->sy_store;
    syncer_t init[2] = {
        {.engine = f->engine,
         .remote = name,
         .pid = f->peer.pid,
         .op = KVX_OP_READ,
         .buf = f->sbuf,
         .raddr = src,
         .roff = ASYNC_PAIRS * (size_t)CH},
        {.engine = f->engine,
         .remote = name,
         .pid = f->peer.pid,
         .op = KVX_OP_WRITE,
         .buf = f->sbuf + CH,
         .raddr = dst,
         .roff = ASYNC_PAIRS * (size_t)CH,
         .seed = 10000 + (uint64_t)round * 1000},
    };
    memcpy(sy, init, sizeof(init));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&f->th[i], NULL, sync_loop, &sy[i]), 0);
    }
    f->sy = sy;
    /* Data flows in both loops before anything else happens. */
    uint64_t t0 = test_now_ms();
    while ((__atomic_load_n(&sy[0].completed, __ATOMIC_ACQUIRE) == 0 ||
            __atomic_load_n(&sy[1].completed, __ATOMIC_ACQUIRE) == 0) &&
           test_now_ms() - t0 < 10000) {
        usleep(1000);
    }
    for (int i = 0; i < 2; i++) {
        if (sy[i].completed == 0) {
            fail_msg("round %d: the sync %s loop completed nothing: %s", round,
                     sy[i].op == KVX_OP_READ ? "READ" : "WRITE", kvx_status_name(sy[i].last));
        }
    }

    /* Async: READs of SRC slot k into abuf[k], WRITEs of abuf[8 + k] to DST
     * slot k. */
    uint64_t wseed = 2000 + (uint64_t)round;
    uint8_t *wbuf = f->abuf + ASYNC_PAIRS * (size_t)CH;
    test_fill(wbuf, ASYNC_PAIRS * (size_t)CH, wseed, 0);
    memset(f->abuf, 0, ASYNC_PAIRS * (size_t)CH);
    kvx_xfer_id_t ids[2 * ASYNC_PAIRS];
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    for (int k = 0; k < 2 * ASYNC_PAIRS; k++) {
        size_t off = (size_t)(k / 2) * CH;
        int write = k % 2;
        kvx_xfer_desc_t d = write ? (kvx_xfer_desc_t){wbuf + off, dst + off, CH}
                                  : (kvx_xfer_desc_t){f->abuf + off, src + off, CH};
        FAULT_ADD(requests, 1);
        assert_int_equal(kvx_xfer_submit(f->engine, name, write ? KVX_OP_WRITE : KVX_OP_READ, &d, 1,
                                         &xp, &ids[k]),
                         KVX_OK);
    }

    /* The fault. Frozen first: WRITEs that completed can still be checked
     * in its memory, and over tcp nothing completes after this point. */
    int checked[2 * ASYNC_PAIRS] = {0};
    unsigned done_before = 0, unverified = 0;
    if (stop_first) {
        assert_int_equal(test_peer_pause(&f->peer), 0);
        for (int k = 0; k < 2 * ASYNC_PAIRS; k++) {
            kvx_xfer_state_t st;
            kvx_status_t err;
            assert_int_equal(kvx_xfer_status(f->engine, ids[k], &st, &err), KVX_OK);
            if (st != KVX_XFER_COMPLETED) {
                continue;
            }
            size_t off = (size_t)(k / 2) * CH;
            if (k % 2) {
                assert_int_equal(fault_verify_remote(f->peer.pid, dst + off, CH, wseed, off), 0);
            } else {
                assert_int_equal(fault_verify(f->abuf + off, CH, PEER_TAG_SRC, off), 0);
            }
            checked[k] = 1;
            done_before++;
            ids[k] = 0; /* reported: the id is released */
        }
    }
    /* A probe submitted once the target is frozen: over tcp it cannot
     * complete, whatever the async transfers did before the freeze (on a
     * slow machine they may all have). */
    kvx_xfer_id_t probe = 0;
    uint8_t *probe_buf = f->abuf + 2 * ASYNC_PAIRS * (size_t)CH;
    if (stop_first) {
        kvx_xfer_desc_t d = {probe_buf, src, CH};
        memset(probe_buf, 0, CH);
        FAULT_ADD(requests, 1);
        assert_int_equal(kvx_xfer_submit(f->engine, name, KVX_OP_READ, &d, 1, &xp, &probe), KVX_OK);
    }
    pid_t pid = f->peer.pid;
    uint64_t t_kill = test_now_ms();
    test_peer_kill(&f->peer);
    FAULT_ADD(faults, 1);

    /* Every async transfer ends, promptly. */
    fault_hist_t hist = {0};
    unsigned failed = 0;
    for (int k = 0; k < 2 * ASYNC_PAIRS; k++) {
        if (ids[k] == 0) {
            continue;
        }
        int64_t left = (int64_t)(t_kill + KILL_BOUND_MS) - (int64_t)test_now_ms();
        kvx_status_t err = KVX_OK;
        kvx_xfer_state_t st = fault_wait(f->engine, ids[k], left > 0 ? (int)left : 0, &err);
        size_t off = (size_t)(k / 2) * CH;
        if (st == KVX_XFER_WAITING) {
            fail_msg("round %d: transfer %d still WAITING %d ms after the kill", round, k,
                     KILL_BOUND_MS);
        }
        if (st == KVX_XFER_COMPLETED) {
            /* Its reply arrived before the kill. */
            done_before++;
            if (k % 2 == 0) {
                assert_int_equal(fault_verify(f->abuf + off, CH, PEER_TAG_SRC, off), 0);
            } else if (!checked[k]) {
                unverified++; /* written into a process that is gone */
            }
            continue;
        }
        failed++;
        fault_hist_add(&hist, err);
        if (st == KVX_XFER_FAILED && err != KVX_ERR_CONNECTION_LOST) {
            fail_msg("round %d: transfer %d FAILED with %s, expected KVX_ERR_CONNECTION_LOST",
                     round, k, kvx_status_name(err));
        }
        if (st == KVX_XFER_TIMEOUT && err != KVX_ERR_TIMEOUT) {
            fail_msg("round %d: transfer %d TIMEOUT with %s", round, k, kvx_status_name(err));
        }
    }
    if (probe != 0) {
        int64_t left = (int64_t)(t_kill + KILL_BOUND_MS) - (int64_t)test_now_ms();
        kvx_status_t err = KVX_OK;
        kvx_xfer_state_t st = fault_wait(f->engine, probe, left > 0 ? (int)left : 0, &err);
        if (st == KVX_XFER_WAITING) {
            FAULT_ADD(hangs, 1);
            fail_msg("round %d: the probe READ still WAITING %d ms after the kill", round,
                     KILL_BOUND_MS);
        } else if (st == KVX_XFER_COMPLETED) {
            /* Only the same-host path copies without the target's CPU. */
            assert_true(test_transport_is_shm());
            assert_int_equal(fault_verify(probe_buf, CH, PEER_TAG_SRC, 0), 0);
        } else {
            failed++;
            fault_hist_add(&hist, err);
            if (err != KVX_ERR_CONNECTION_LOST && err != KVX_ERR_TIMEOUT) {
                fail_msg("round %d: the probe READ ended with %s", round, kvx_status_name(err));
            }
        }
    }
    uint64_t async_ms = test_now_ms() - t_kill;

    /* The sync loops end too, with a peer status. */
    while ((!__atomic_load_n(&sy[0].done, __ATOMIC_ACQUIRE) ||
            !__atomic_load_n(&sy[1].done, __ATOMIC_ACQUIRE)) &&
           test_now_ms() - t_kill < KILL_BOUND_MS) {
        usleep(1000);
    }
    for (int i = 0; i < 2; i++) {
        if (!__atomic_load_n(&sy[i].done, __ATOMIC_ACQUIRE)) {
            FAULT_ADD(hangs, 1);
            fail_msg("round %d: a sync %s did not return within %d ms of the kill", round,
                     sy[i].op == KVX_OP_READ ? "READ" : "WRITE", KILL_BOUND_MS);
        }
        unverified += sy[i].unverified;
        fault_hist_add(&hist, sy[i].last);
        if (sy[i].last != KVX_ERR_CONNECTION_LOST && sy[i].last != KVX_ERR_NOT_CONNECTED) {
            fail_msg("round %d: sync %s ended with %s (%s), expected KVX_ERR_CONNECTION_LOST",
                     round, sy[i].op == KVX_OP_READ ? "READ" : "WRITE", kvx_status_name(sy[i].last),
                     kvx_last_error());
        }
        assert_true(sy[i].ended_ms <= t_kill + KILL_BOUND_MS);
    }

    stop_loops(f);
    kvx_status_t why = KVX_OK;
    assert_int_equal(fault_wait_peer_state(f->engine, name, KVX_PEER_BROKEN, KILL_BOUND_MS, &why),
                     KVX_PEER_BROKEN);
    assert_int_equal(why, KVX_ERR_CONNECTION_LOST);
    /* Refused at once, not queued for 20 s. */
    kvx_xfer_desc_t d = {f->abuf, src, 4096};
    uint64_t t1 = test_now_ms();
    FAULT_ADD(requests, 1);
    assert_int_equal(kvx_xfer_sync(f->engine, name, KVX_OP_READ, &d, 1, &xp),
                     KVX_ERR_CONNECTION_LOST);
    assert_true(test_now_ms() - t1 < 1000);

    char h[256];
    print_message("  round %d (%s): pid %d killed; async: %u completed before, %u ended in %llu "
                  "ms; sync loops: %u+%u completed; statuses: %s; unverified WRITEs: %u\n",
                  round, stop_first ? "stopped, then killed" : "killed running", (int)pid,
                  done_before, failed, (unsigned long long)async_ms, sy[0].completed,
                  sy[1].completed, fault_hist_str(&hist, h, sizeof(h)), unverified);
    if (!test_transport_is_shm() && stop_first) {
        /* Over tcp a frozen target completes nothing: the kill caught the
         * probe at least. */
        assert_true(failed > 0);
    }
}

static void test_kill_target_mid_transfer(void **state)
{
    fixture_t *f = *state;
    for (int round = 0; round < ROUNDS; round++) {
        one_round(f, round, round % 2 == 0);
    }
    /* The same engine links to a fresh target and moves data both ways. */
    uint64_t src, dst;
    fresh_target(f, &src, &dst);
    memset(f->abuf, 0, CH);
    kvx_xfer_desc_t d = {f->abuf, src + 12345, CH};
    FAULT_ADD(requests, 2);
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_READ, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify(f->abuf, CH, PEER_TAG_SRC, 12345), 0);
    test_fill(f->abuf, CH, 4242, 777);
    d = (kvx_xfer_desc_t){f->abuf, dst + 777, CH};
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_WRITE, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify_remote(f->peer.pid, dst + 777, CH, 4242, 777), 0);
    assert_int_equal(test_peer_stop(&f->peer), 0);
    assert_int_equal(fault_stats.hangs, 0);
    assert_int_equal(fault_stats.corrupted, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_target_mid_transfer, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("kill_target");
    return rc;
}

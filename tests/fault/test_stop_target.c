/*
 * Fault 3: SIGSTOP of the target (a process that hangs without dying).
 *
 * The initiator (this test) runs with peer_timeout_ms = 500, the target
 * ("kvx-test-peer serve") with the default of 5000: the link must use the
 * smaller of the two at both ends (the handshake states each end's), or the
 * target would read what waits in its socket after a 500 ms stop. The
 * target's DST region
 * holds a known pattern (OLD_SEED) before the stop. The contract
 * (kvx_engine_params_t::peer_timeout_ms): a link whose remote has sent
 * nothing for peer_timeout_ms is closed; pending transfers end FAILED with
 * KVX_ERR_PEER_UNRESPONSIVE (TIMEOUT only if their own deadline came first:
 * here it is 20 s, so the heartbeat must end them); a target never writes
 * data that reaches it after the link was declared dead.
 *
 * tcp: transfers submitted after the stop, async and sync, READ and WRITE,
 * all end FAILED / KVX_ERR_PEER_UNRESPONSIVE between 0.4 s (nothing was
 * heard for 500 ms yet) and STOP_BOUND_MS after the stop; the link is BROKEN
 * with that status. The target stays stopped well past its own limit, so
 * when it runs again it finds the link dead before it reads what waits in
 * its socket. Asserted after SIGCONT and once the target dropped the old
 * link: DST holds OLD_SEED everywhere, i.e. no byte of the failed WRITEs
 * landed (none can have landed before: the target was stopped before they
 * were submitted, so anything new would have been written after the
 * initiator declared the link dead).
 *
 * shm: the initiator copies by itself, so a stopped target does not stall
 * transfers; but it sends no heartbeat, so the link must still be declared
 * dead. A paced loop of 64 KiB WRITEs and READs runs from the stop until a
 * call fails: that happens between 0.4 s and STOP_BOUND_MS after the stop
 * with KVX_ERR_PEER_UNRESPONSIVE (the call, or the link's status if the link
 * died between two calls, in which case the call says
 * KVX_ERR_CONNECTION_LOST); every WRITE that completed is in the target's
 * memory, every READ is intact, and WRITEs refused after that never touch
 * it. What cannot apply over shm: transfers pending while the target is
 * stopped (each copy ends before its call returns).
 *
 * Both: after SIGCONT the target serves a new link, both ways, byte-exact.
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
#include <unistd.h>

#include <cmocka.h>

#include "fault.h"

#define PEER_TIMEOUT_MS 500
#define DEADLINE_MS     20000
#define STOP_BOUND_MS   5000 /* every transfer ended within this of the stop */
#define STOPPED_MS      2000 /* the stop lasts at least this */
/* Nothing heard for 500 ms cannot be seen sooner than this after the stop:
 * over tcp the frames sent after it count as signs of life, over shm the
 * target's last keepalive (100 ms apart) may come just before it. */
#define MIN_DEAD_TCP_MS 400
#define MIN_DEAD_SHM_MS 250
#define ROUNDS          3
#define OLD_SEED        (31 + 10 * (uint64_t)round) /* DST before the stop */
#define NEW_SEED        (32 + 10 * (uint64_t)round) /* what the WRITEs carry */
#define CH              (4u << 20)
#define SLICE           (64u << 10)
#define CHECK_LEN       (20u << 20) /* DST bytes the tcp case may touch */

typedef struct fixture {
    test_peer_t peer;
    kvx_engine_h engine;
    uint64_t src, dst;
    uint8_t *buf; /* 64 MiB, registered */
    kvx_mem_h mem;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    /* The target keeps the default peer timeout (5000 ms). */
    assert_int_equal(test_peer_spawn(&f->peer, NULL, "serve", "127.0.0.1:0", NULL, NULL), 0);
    kvx_status_t st;
    f->engine = fault_engine("127.0.0.1", PEER_TIMEOUT_MS, &st);
    assert_non_null(f->engine);
    assert_int_equal(test_connect(f->engine, f->peer.name, 10000), KVX_OK);
    f->src = test_remote_region(f->engine, f->peer.name, PEER_TAG_SRC);
    f->dst = test_remote_region(f->engine, f->peer.name, PEER_TAG_DST);
    assert_true(f->src != 0 && f->dst != 0);
    f->buf = malloc(64u << 20);
    assert_non_null(f->buf);
    f->mem = fault_register(f->engine, f->buf, 64u << 20, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    test_peer_resume(&f->peer);
    kvx_engine_destroy(f->engine);
    if (f->peer.pid > 0) {
        test_peer_kill(&f->peer);
    }
    free(f->buf);
    free(f);
    return 0;
}

typedef struct sync_call {
    fixture_t *f;
    kvx_op_t op;
    kvx_xfer_desc_t d;
    kvx_status_t st;
    uint64_t ended_ms;
    int done;
} sync_call_t;

static void *sync_thread(void *arg)
{
    sync_call_t *c = arg;
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    c->st = kvx_xfer_sync(c->f->engine, c->f->peer.name, c->op, &c->d, 1, &xp);
    c->ended_ms = test_now_ms();
    __atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Wait until the target has let go of the old link: a fresh link, then its
 * incoming count drops to that one. */
static void relink_and_settle(fixture_t *f)
{
    assert_int_equal(test_connect(f->engine, f->peer.name, 10000), KVX_OK);
    uint64_t t0 = test_now_ms();
    int64_t links = -1;
    do {
        assert_int_equal(test_peer_cmd(f->engine, f->peer.name, &links, "links", "%s", ""), 0);
    } while (links != 1 && test_now_ms() - t0 < 5000 && usleep(5000) == 0);
    if (links != 1) {
        FAULT_ADD(hangs, 1);
        fail_msg("the target still counts %lld links 5 s after SIGCONT", (long long)links);
    }
}

/* After SIGCONT: the target serves the new link, both ways. */
static void still_usable(fixture_t *f)
{
    memset(f->buf, 0, CH);
    kvx_xfer_desc_t d = {f->buf, f->src + 4321, CH};
    FAULT_ADD(requests, 2);
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_READ, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify(f->buf, CH, PEER_TAG_SRC, 4321), 0);
    size_t off = 40u << 20;
    test_fill(f->buf, CH, 77, off);
    d = (kvx_xfer_desc_t){f->buf, f->dst + off, CH};
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_WRITE, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify_remote(f->peer.pid, f->dst + off, CH, 77, off), 0);
}

static void stop_over_tcp(fixture_t *f, int round)
{
    assert_int_equal(test_peer_pause(&f->peer), 0);
    uint64_t t_stop = test_now_ms();
    FAULT_ADD(faults, 1);
    /* Async: WRITEs to DST [0, 16 MiB), READs of SRC [0, 16 MiB); a WRITE
     * first, so the target meets WRITE frames first when it runs again. */
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    uint8_t *wbuf = f->buf + (16u << 20);
    test_fill(wbuf, 16u << 20, NEW_SEED, 0);
    kvx_xfer_id_t ids[8];
    for (int k = 0; k < 8; k++) {
        size_t off = (size_t)(k / 2) * CH;
        int write = k % 2 == 0;
        kvx_xfer_desc_t d = write ? (kvx_xfer_desc_t){wbuf + off, f->dst + off, CH}
                                  : (kvx_xfer_desc_t){f->buf + off, f->src + off, CH};
        FAULT_ADD(requests, 1);
        assert_int_equal(kvx_xfer_submit(f->engine, f->peer.name,
                                         write ? KVX_OP_WRITE : KVX_OP_READ, &d, 1, &xp, &ids[k]),
                         KVX_OK);
    }
    /* Sync: a WRITE to DST [16, 20 MiB) and a READ of SRC [16, 20 MiB). */
    uint8_t *sbuf = f->buf + (32u << 20);
    test_fill(sbuf, CH, NEW_SEED, 16u << 20);
    sync_call_t calls[2] = {
        {.f = f, .op = KVX_OP_WRITE, .d = {sbuf, f->dst + (16u << 20), CH}},
        {.f = f, .op = KVX_OP_READ, .d = {sbuf + CH, f->src + (16u << 20), CH}},
    };
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        FAULT_ADD(requests, 1);
        assert_int_equal(pthread_create(&th[i], NULL, sync_thread, &calls[i]), 0);
    }

    fault_hist_t hist = {0};
    uint64_t first = UINT64_MAX, last = 0;
    for (int k = 0; k < 8; k++) {
        int64_t left = (int64_t)(t_stop + STOP_BOUND_MS) - (int64_t)test_now_ms();
        kvx_status_t err = KVX_OK;
        kvx_xfer_state_t st = fault_wait(f->engine, ids[k], left > 0 ? (int)left : 0, &err);
        uint64_t at = test_now_ms() - t_stop;
        first = at < first ? at : first;
        last = at > last ? at : last;
        fault_hist_add(&hist, err);
        if (st != KVX_XFER_FAILED || err != KVX_ERR_PEER_UNRESPONSIVE) {
            fail_msg("async %s %d to a stopped target ended state %d (%s) after %llu ms; expected "
                     "FAILED with KVX_ERR_PEER_UNRESPONSIVE",
                     k % 2 ? "READ" : "WRITE", k, (int)st, kvx_status_name(err),
                     (unsigned long long)at);
        }
    }
    for (int i = 0; i < 2; i++) {
        while (!__atomic_load_n(&calls[i].done, __ATOMIC_ACQUIRE) &&
               test_now_ms() < t_stop + STOP_BOUND_MS) {
            usleep(1000);
        }
        if (!__atomic_load_n(&calls[i].done, __ATOMIC_ACQUIRE)) {
            FAULT_ADD(hangs, 1);
            test_peer_resume(&f->peer); /* lets the call end, so the join does */
            pthread_join(th[i], NULL);
            fail_msg("a sync transfer to a stopped target still runs %d ms after the stop",
                     STOP_BOUND_MS);
        }
        pthread_join(th[i], NULL);
        uint64_t at = calls[i].ended_ms - t_stop;
        last = at > last ? at : last;
        first = at < first ? at : first;
        fault_hist_add(&hist, calls[i].st);
        if (calls[i].st != KVX_ERR_PEER_UNRESPONSIVE) {
            fail_msg("sync %s to a stopped target: %s, expected KVX_ERR_PEER_UNRESPONSIVE",
                     calls[i].op == KVX_OP_READ ? "READ" : "WRITE", kvx_status_name(calls[i].st));
        }
    }
    char h[256];
    print_message("  tcp round %d: 10 transfers to the stopped target ended %llu..%llu ms after "
                  "the stop: %s\n",
                  round, (unsigned long long)first, (unsigned long long)last,
                  fault_hist_str(&hist, h, sizeof(h)));
    assert_true(first >= MIN_DEAD_TCP_MS);
    kvx_status_t why = KVX_OK;
    assert_int_equal(fault_wait_peer_state(f->engine, f->peer.name, KVX_PEER_BROKEN, 1000, &why),
                     KVX_PEER_BROKEN);
    assert_int_equal(why, KVX_ERR_PEER_UNRESPONSIVE);

    /* Still stopped: nothing new in DST yet (it was stopped before the
     * WRITEs were submitted). */
    assert_int_equal(fault_verify_remote(f->peer.pid, f->dst, CHECK_LEN, OLD_SEED, 0), 0);
    while (test_now_ms() < t_stop + STOPPED_MS) {
        usleep(10000); /* stopped well past its own limit, on purpose */
    }
    uint64_t stopped = test_now_ms() - t_stop;
    test_peer_resume(&f->peer);
    relink_and_settle(f);
    /* The failed WRITEs' bytes waited in the target's socket: none landed. */
    int64_t bad = fault_verify_remote(f->peer.pid, f->dst, CHECK_LEN, OLD_SEED, 0);
    int64_t rc = -1;
    assert_int_equal(test_peer_cmd(f->engine, f->peer.name, &rc, "check", "%d %d %u %llu",
                                   PEER_TAG_DST, 0, CHECK_LEN, (unsigned long long)OLD_SEED),
                     0);
    print_message(
        "  tcp round %d: stopped %llu ms; after SIGCONT DST differs from the old pattern in %lld "
        "bytes (process_vm_readv) / %lld (the target's own check)\n",
        round, (unsigned long long)stopped, (long long)bad, (long long)rc);
    if (bad != 0 || rc != 0) {
        fail_msg("%lld bytes of WRITEs declared failed (KVX_ERR_PEER_UNRESPONSIVE) were written "
                 "into the target after it resumed",
                 (long long)(bad != 0 ? bad : rc));
    }
}

static void stop_over_shm(fixture_t *f, int round)
{
    enum { SLICES = (64u << 20) / SLICE };
    static uint8_t done_slice[SLICES]; /* 1: WRITE completed, 2: failed, 3: refused */
    memset(done_slice, 0, sizeof(done_slice));
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    assert_int_equal(test_peer_pause(&f->peer), 0);
    uint64_t t_stop = test_now_ms();
    FAULT_ADD(faults, 1);
    kvx_status_t first_err = KVX_OK;
    uint64_t failed_at = 0;
    unsigned writes = 0, reads = 0;
    size_t i = 0;
    for (; i < SLICES && test_now_ms() < t_stop + STOP_BOUND_MS; i++) {
        size_t off = i * SLICE;
        uint8_t *w = f->buf + off;
        test_fill(w, SLICE, NEW_SEED, off);
        kvx_xfer_desc_t d = {w, f->dst + off, SLICE};
        FAULT_ADD(requests, 1);
        kvx_status_t st = kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_WRITE, &d, 1, &xp);
        if (st != KVX_OK) {
            first_err = st;
            done_slice[i] = 2;
            failed_at = test_now_ms() - t_stop;
            break;
        }
        done_slice[i] = 1;
        writes++;
        uint8_t *r = f->buf + (64u << 20) - SLICE;
        memset(r, 0, SLICE);
        d = (kvx_xfer_desc_t){r, f->src + off, SLICE};
        FAULT_ADD(requests, 1);
        st = kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_READ, &d, 1, &xp);
        if (st != KVX_OK) {
            first_err = st;
            failed_at = test_now_ms() - t_stop;
            i++;
            break;
        }
        reads++;
        assert_int_equal(fault_verify(r, SLICE, PEER_TAG_SRC, off), 0);
        usleep(5000); /* pace: the heartbeat, not the loop, must end this */
    }
    if (first_err == KVX_OK) {
        FAULT_ADD(hangs, 1);
        fail_msg("over shm, transfers to a stopped target still complete %d ms after the stop: "
                 "the link was never declared dead (%u WRITEs, %u READs)",
                 STOP_BOUND_MS, writes, reads);
    }
    kvx_status_t why = KVX_OK;
    kvx_peer_state_t ps =
        fault_wait_peer_state(f->engine, f->peer.name, KVX_PEER_BROKEN, 1000, &why);
    print_message("  shm round %d: %u WRITEs and %u READs completed while stopped; then %s after "
                  "%llu ms; link %d (%s)\n",
                  round, writes, reads, kvx_status_name(first_err), (unsigned long long)failed_at,
                  (int)ps, kvx_status_name(why));
    assert_int_equal(ps, KVX_PEER_BROKEN);
    assert_int_equal(why, KVX_ERR_PEER_UNRESPONSIVE);
    if (first_err != KVX_ERR_PEER_UNRESPONSIVE && first_err != KVX_ERR_CONNECTION_LOST) {
        fail_msg("first failure %s, expected KVX_ERR_PEER_UNRESPONSIVE",
                 kvx_status_name(first_err));
    }
    assert_true(failed_at >= MIN_DEAD_SHM_MS && failed_at <= STOP_BOUND_MS);
    /* Refused now, both ways, and nothing lands. */
    for (int k = 0; k < 2 && i < SLICES; k++, i++) {
        size_t off = i * SLICE;
        test_fill(f->buf + off, SLICE, NEW_SEED, off);
        kvx_xfer_desc_t d = {f->buf + off, f->dst + off, SLICE};
        FAULT_ADD(requests, 1);
        kvx_status_t st = kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_WRITE, &d, 1, &xp);
        if (st != KVX_ERR_CONNECTION_LOST && st != KVX_ERR_PEER_UNRESPONSIVE) {
            fail_msg("a WRITE on the dead link: %s", kvx_status_name(st));
        }
        done_slice[i] = 3;
    }
    /* DST, slice by slice, now (still stopped) and after SIGCONT. */
    uint8_t *snap = malloc(SLICE);
    assert_non_null(snap);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            test_peer_resume(&f->peer);
            relink_and_settle(f);
        }
        for (size_t s = 0; s < SLICES; s++) {
            size_t off = s * SLICE;
            assert_int_equal(fault_peer_read(f->peer.pid, f->dst + off, snap, SLICE), 0);
            if (done_slice[s] == 1) {
                assert_int_equal(fault_verify(snap, SLICE, NEW_SEED, off), 0);
            } else if (done_slice[s] == 2) {
                /* The WRITE that failed: each byte old or new. */
                for (size_t b = 0; b < SLICE; b++) {
                    assert_true(snap[b] == test_pattern(OLD_SEED, off + b) ||
                                snap[b] == test_pattern(NEW_SEED, off + b));
                }
            } else {
                assert_int_equal(fault_verify(snap, SLICE, OLD_SEED, off), 0);
            }
        }
    }
    free(snap);
}

static void test_stopped_target(void **state)
{
    fixture_t *f = *state;
    if (test_transport_is_shm()) {
        print_message("  shm: transfers never wait for a stopped target (the initiator copies), "
                      "so none can be pending at the stop; the heartbeat is checked instead\n");
    }
    for (int round = 0; round < ROUNDS; round++) {
        int64_t rc = -1;
        assert_int_equal(test_peer_cmd(f->engine, f->peer.name, &rc, "fill", "%d %llu",
                                       PEER_TAG_DST, (unsigned long long)OLD_SEED),
                         0);
        assert_int_equal(rc, 0);
        if (test_transport_is_shm()) {
            stop_over_shm(f, round);
        } else {
            stop_over_tcp(f, round);
        }
        still_usable(f);
    }
    assert_int_equal(test_peer_stop(&f->peer), 0);
    assert_int_equal(fault_stats.hangs, 0);
    assert_int_equal(fault_stats.corrupted, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stopped_target, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("stop_target");
    return rc;
}

/*
 * Fault 4: the network link goes down between two network namespaces.
 *
 * The test makes two namespaces, kvxf<pid>a and kvxf<pid>b, joined by a veth
 * pair of the same names, with 10.231.0.1/24 and 10.231.0.2/24 (addresses
 * that exist only inside them). The target, "kvx-test-peer serve
 * --peer-timeout 500", runs in a (ip netns exec); this process enters b
 * (setns) and is the initiator, with peer_timeout_ms = 500. Each of ROUNDS
 * rounds: two threads keep sync READs and WRITEs of 4 MiB going, the veth
 * end in a is set down, then 8 async transfers of 4 MiB and a notification
 * are sent into the dead link. Asserted: every transfer ends FAILED
 * (KVX_ERR_PEER_UNRESPONSIVE, the link's keepalives stopped) or TIMEOUT,
 * and the notification fails, all within DOWN_BOUND_MS of the link going
 * down (their deadlines are 20 s); the link is BROKEN with
 * KVX_ERR_PEER_UNRESPONSIVE; every transfer reported COMPLETED moved intact
 * data (READs here, WRITEs in the target's memory, read with
 * process_vm_readv). Then the veth goes up, the same engine links again
 * (the target let the old link go: its incoming count is 1) and moves data
 * both ways.
 *
 * Over shm: namespaces split the network, not the host. Both processes see
 * one boot id, uid and pid namespace, so the same-host path is set up over
 * the TCP link's handshake as on loopback, and its copies need no network:
 * a link down does not stop them. What the doc promises still applies: the
 * link's keepalives go over TCP, so the link is declared dead
 * (KVX_ERR_PEER_UNRESPONSIVE) within the bound, and transfers fail from
 * then on; copies that completed before are checked like the others.
 *
 * The namespaces are always deleted (teardown; and ones left by a run that
 * was killed are found by their pid and deleted at the start). Without root,
 * `ip`, or permission to make namespaces, the test skips and says why.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
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

#define ROUNDS          3
#define PEER_TIMEOUT_MS 500
#define DEADLINE_MS     20000
#define DOWN_BOUND_MS   5000
#define CH              (4u << 20)
#define NET             "10.231.0"

typedef struct syncer {
    kvx_engine_h engine;
    const char *remote;
    pid_t pid;
    kvx_op_t op;
    uint8_t *buf;
    uint64_t raddr;
    size_t roff;
    uint64_t seed;
    int done;
    unsigned completed, unverified;
    kvx_status_t last;
    uint64_t ended_ms;
} syncer_t;

/* Transfers until one fails (the link died); each completed one checked. */
static void *sync_loop(void *arg)
{
    syncer_t *s = arg;
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    for (unsigned i = 0;; i++) {
        size_t roff = s->roff + (i % 2) * (size_t)CH;
        uint64_t seed = s->seed + i;
        if (s->op == KVX_OP_WRITE) {
            test_fill(s->buf, CH, seed, roff);
        } else {
            memset(s->buf, 0, CH);
        }
        kvx_xfer_desc_t d = {s->buf, s->raddr + roff, CH};
        FAULT_ADD(requests, 1);
        kvx_status_t st = kvx_xfer_sync(s->engine, s->remote, s->op, &d, 1, &xp);
        if (st != KVX_OK) {
            s->last = st;
            s->ended_ms = test_now_ms();
            break;
        }
        if (s->op == KVX_OP_READ) {
            fault_verify(s->buf, CH, PEER_TAG_SRC, roff);
        } else if (fault_verify_remote(s->pid, s->raddr + roff, CH, seed, roff) < 0) {
            s->unverified++;
        }
        __atomic_add_fetch(&s->completed, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

typedef struct fixture {
    char ns[2][32]; /* namespaces, and the veth end in each */
    int made;       /* namespaces to delete */
    int home_fd;    /* this process's own network namespace */
    int in_b;
    test_peer_t peer;
    kvx_engine_h engine;
    uint8_t *buf;
    syncer_t sy[2]; /* the sync loops of the running round */
    pthread_t th[2];
    int threads;
    char skip[256];
} fixture_t;

/* Delete namespaces kvxf<pid>[ab] whose pid is gone (a run that was killed
 * before its teardown), and the processes left in them. */
static void delete_stale(void)
{
    DIR *d = opendir("/run/netns");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        int pid = 0;
        char tail = 0;
        if (sscanf(e->d_name, "kvxf%d%c", &pid, &tail) != 2 || (tail != 'a' && tail != 'b') ||
            pid <= 0 || pid == (int)getpid() || kill(pid, 0) == 0 || errno != ESRCH) {
            continue;
        }
        fault_sh("sh -c 'ip netns pids %s | xargs -r kill -9'", e->d_name);
        fault_sh("ip netns del %s", e->d_name);
    }
    if (d != NULL) {
        closedir(d);
    }
}

static void delete_namespaces(fixture_t *f)
{
    for (int i = 0; i < f->made; i++) {
        /* A peer still inside would keep it alive: none should be left. */
        fault_sh("sh -c 'ip netns pids %s | xargs -r kill -9'", f->ns[i]);
        fault_sh("ip netns del %s", f->ns[i]);
    }
    f->made = 0;
}

static int make_namespaces(fixture_t *f)
{
    if (geteuid() != 0) {
        snprintf(f->skip, sizeof(f->skip), "not root (network namespaces need CAP_SYS_ADMIN)");
        return -1;
    }
    if (fault_sh("ip -V") != 0) {
        snprintf(f->skip, sizeof(f->skip), "no usable `ip` command (iproute2)");
        return -1;
    }
    delete_stale();
    for (int i = 0; i < 2; i++) {
        snprintf(f->ns[i], sizeof(f->ns[i]), "kvxf%d%c", (int)getpid(), 'a' + i);
        if (fault_sh("ip netns add %s", f->ns[i]) != 0) {
            snprintf(f->skip, sizeof(f->skip), "`ip netns add %s` failed (EPERM?)", f->ns[i]);
            return -1;
        }
        f->made = i + 1;
    }
    if (fault_sh("ip link add %s netns %s type veth peer name %s netns %s", f->ns[0], f->ns[0],
                 f->ns[1], f->ns[1]) != 0 ||
        fault_sh("ip -n %s addr add " NET ".1/24 dev %s", f->ns[0], f->ns[0]) != 0 ||
        fault_sh("ip -n %s addr add " NET ".2/24 dev %s", f->ns[1], f->ns[1]) != 0 ||
        fault_sh("ip -n %s link set lo up", f->ns[0]) != 0 ||
        fault_sh("ip -n %s link set lo up", f->ns[1]) != 0 ||
        fault_sh("ip -n %s link set %s up", f->ns[0], f->ns[0]) != 0 ||
        fault_sh("ip -n %s link set %s up", f->ns[1], f->ns[1]) != 0) {
        snprintf(f->skip, sizeof(f->skip), "could not set up the veth pair between %s and %s",
                 f->ns[0], f->ns[1]);
        return -1;
    }
    /* Enter b: threads made from now on (the engine's) live there too. */
    char path[64];
    snprintf(path, sizeof(path), "/run/netns/%s", f->ns[1]);
    f->home_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->home_fd < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        snprintf(f->skip, sizeof(f->skip), "cannot enter %s: %s", f->ns[1], strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    f->in_b = 1;
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->home_fd = -1;
    *state = f;
    if (make_namespaces(f) != 0) {
        return 0; /* the test skips, saying why */
    }
    char to[16];
    snprintf(to, sizeof(to), "%d", PEER_TIMEOUT_MS);
    const char *prefix[] = {"ip", "netns", "exec", f->ns[0], NULL};
    const char *args[] = {"--peer-timeout", to, NULL};
    assert_int_equal(test_peer_spawn(&f->peer, prefix, "serve", NET ".1:0", args, NULL), 0);
    f->engine = fault_engine(NET ".2", PEER_TIMEOUT_MS, NULL);
    assert_non_null(f->engine);
    f->buf = malloc(48u << 20);
    assert_non_null(f->buf);
    fault_register(f->engine, f->buf, 48u << 20, 0);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < f->threads; i++) {
        /* A check failed mid-round: the loops end once the link is dead. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 30;
        if (pthread_timedjoin_np(f->th[i], NULL, &ts) != 0) {
            fprintf(stderr, "a sync transfer did not return within 30 s: giving up\n");
            fault_summary("link_down");
            _exit(1);
        }
    }
    if (f->engine != NULL) {
        kvx_engine_destroy(f->engine);
    }
    if (f->peer.pid > 0) {
        test_peer_kill(&f->peer);
    }
    if (f->in_b) {
        setns(f->home_fd, CLONE_NEWNET);
    }
    if (f->home_fd >= 0) {
        close(f->home_fd);
    }
    delete_namespaces(f);
    free(f->buf);
    free(f);
    return 0;
}

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
        fail_msg("the target still counts %lld links 5 s after the link came back",
                 (long long)links);
    }
}

static void one_round(fixture_t *f, int round, uint64_t src, uint64_t dst)
{
    const char *name = f->peer.name;
    uint8_t *sbuf = f->buf + (32u << 20);
    syncer_t *sy = f->sy;
    syncer_t init[2] = {
        {.engine = f->engine,
         .remote = name,
         .pid = f->peer.pid,
         .op = KVX_OP_READ,
         .buf = sbuf,
         .raddr = src,
         .roff = 32u << 20},
        {.engine = f->engine,
         .remote = name,
         .pid = f->peer.pid,
         .op = KVX_OP_WRITE,
         .buf = sbuf + CH,
         .raddr = dst,
         .roff = 32u << 20,
         .seed = 5000 + (uint64_t)round * 1000},
    };
    memcpy(sy, init, sizeof(init));
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&f->th[i], NULL, sync_loop, &sy[i]), 0);
        f->threads = i + 1;
    }
    uint64_t t0 = test_now_ms();
    while ((__atomic_load_n(&sy[0].completed, __ATOMIC_ACQUIRE) == 0 ||
            __atomic_load_n(&sy[1].completed, __ATOMIC_ACQUIRE) == 0) &&
           !__atomic_load_n(&sy[0].done, __ATOMIC_ACQUIRE) &&
           !__atomic_load_n(&sy[1].done, __ATOMIC_ACQUIRE) && test_now_ms() - t0 < 10000) {
        usleep(1000);
    }
    assert_true(sy[0].completed > 0 && sy[1].completed > 0);

    /* The fault: the target's end of the veth goes down. */
    uint64_t t_down = test_now_ms();
    assert_int_equal(fault_sh("ip -n %s link set %s down", f->ns[0], f->ns[0]), 0);
    FAULT_ADD(faults, 1);

    /* Into the dead link: 4 WRITEs and 4 READs, and a notification. */
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = DEADLINE_MS};
    uint64_t wseed = 900 + (uint64_t)round;
    uint8_t *wbuf = f->buf + (16u << 20);
    test_fill(wbuf, 16u << 20, wseed, 0);
    kvx_xfer_id_t ids[8];
    for (int k = 0; k < 8; k++) {
        size_t off = (size_t)(k / 2) * CH;
        int write = k % 2 == 0;
        kvx_xfer_desc_t d = write ? (kvx_xfer_desc_t){wbuf + off, dst + off, CH}
                                  : (kvx_xfer_desc_t){f->buf + off, src + off, CH};
        if (!write) {
            memset(f->buf + off, 0, CH);
        }
        FAULT_ADD(requests, 1);
        kvx_status_t st = kvx_xfer_submit(f->engine, name, write ? KVX_OP_WRITE : KVX_OP_READ, &d,
                                          1, &xp, &ids[k]);
        if (st != KVX_OK) {
            /* The link was already declared dead: refused, as documented. */
            assert_true(st == KVX_ERR_CONNECTION_LOST || st == KVX_ERR_PEER_UNRESPONSIVE);
            ids[k] = 0;
        }
    }
    FAULT_ADD(requests, 1);
    kvx_status_t nst = kvx_notify_send(f->engine, name, "ping", "x", 1, DEADLINE_MS);
    uint64_t notify_ms = test_now_ms() - t_down;

    fault_hist_t hist = {0};
    unsigned completed = 0, failed = 0;
    for (int k = 0; k < 8; k++) {
        if (ids[k] == 0) {
            continue;
        }
        int64_t left = (int64_t)(t_down + DOWN_BOUND_MS) - (int64_t)test_now_ms();
        kvx_status_t err = KVX_OK;
        kvx_xfer_state_t st = fault_wait(f->engine, ids[k], left > 0 ? (int)left : 0, &err);
        size_t off = (size_t)(k / 2) * CH;
        if (st == KVX_XFER_WAITING) {
            fail_msg("round %d: transfer %d still WAITING %d ms after the link went down", round, k,
                     DOWN_BOUND_MS);
        }
        if (st == KVX_XFER_COMPLETED) {
            completed++;
            if (k % 2 == 0) {
                int64_t bad = fault_verify_remote(f->peer.pid, dst + off, CH, wseed, off);
                assert_true(bad == 0);
            } else {
                assert_int_equal(fault_verify(f->buf + off, CH, PEER_TAG_SRC, off), 0);
            }
            continue;
        }
        failed++;
        fault_hist_add(&hist, err);
        if (!(st == KVX_XFER_FAILED && err == KVX_ERR_PEER_UNRESPONSIVE) &&
            !(st == KVX_XFER_TIMEOUT && err == KVX_ERR_TIMEOUT)) {
            fail_msg("round %d: transfer %d ended state %d (%s), expected FAILED with "
                     "KVX_ERR_PEER_UNRESPONSIVE or TIMEOUT",
                     round, k, (int)st, kvx_status_name(err));
        }
    }
    uint64_t async_ms = test_now_ms() - t_down;
    while ((!__atomic_load_n(&sy[0].done, __ATOMIC_ACQUIRE) ||
            !__atomic_load_n(&sy[1].done, __ATOMIC_ACQUIRE)) &&
           test_now_ms() - t_down < DOWN_BOUND_MS) {
        usleep(1000);
    }
    for (int i = 0; i < 2; i++) {
        if (!__atomic_load_n(&sy[i].done, __ATOMIC_ACQUIRE)) {
            FAULT_ADD(hangs, 1);
            fail_msg("round %d: a sync transfer still runs %d ms after the link went down", round,
                     DOWN_BOUND_MS);
        }
        fault_hist_add(&hist, sy[i].last);
        /* A call made after the link died is refused: CONNECTION_LOST. */
        if (sy[i].last != KVX_ERR_PEER_UNRESPONSIVE && sy[i].last != KVX_ERR_CONNECTION_LOST &&
            sy[i].last != KVX_ERR_TIMEOUT) {
            fail_msg("round %d: sync %s ended with %s", round,
                     sy[i].op == KVX_OP_READ ? "READ" : "WRITE", kvx_status_name(sy[i].last));
        }
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(f->th[i], NULL);
    }
    f->threads = 0;
    if (nst == KVX_OK) {
        fail_msg("round %d: a notification was receipted over a link that is down", round);
    }
    assert_true(notify_ms <= DOWN_BOUND_MS);
    kvx_status_t why = KVX_OK;
    assert_int_equal(fault_wait_peer_state(f->engine, name, KVX_PEER_BROKEN, 1000, &why),
                     KVX_PEER_BROKEN);
    assert_int_equal(why, KVX_ERR_PEER_UNRESPONSIVE);
    char h[256];
    print_message("  round %d: link down; async: %u completed, %u ended within %llu ms; "
                  "notification %s after %llu ms; sync loops %u+%u completed; statuses: %s\n",
                  round, completed, failed, (unsigned long long)async_ms, kvx_status_name(nst),
                  (unsigned long long)notify_ms, sy[0].completed, sy[1].completed,
                  fault_hist_str(&hist, h, sizeof(h)));
    if (!test_transport_is_shm()) {
        assert_true(failed > 0); /* over tcp nothing moves while the link is down */
    }

    /* Up again: the same engine links again and moves data both ways. */
    assert_int_equal(fault_sh("ip -n %s link set %s up", f->ns[0], f->ns[0]), 0);
    relink_and_settle(f);
    memset(f->buf, 0, CH);
    kvx_xfer_desc_t d = {f->buf, src + 4099, CH};
    FAULT_ADD(requests, 2);
    assert_int_equal(kvx_xfer_sync(f->engine, name, KVX_OP_READ, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify(f->buf, CH, PEER_TAG_SRC, 4099), 0);
    test_fill(f->buf, CH, 1234, 48u << 20);
    d = (kvx_xfer_desc_t){f->buf, dst + (48u << 20), CH};
    assert_int_equal(kvx_xfer_sync(f->engine, name, KVX_OP_WRITE, &d, 1, NULL), KVX_OK);
    assert_int_equal(fault_verify_remote(f->peer.pid, dst + (48u << 20), CH, 1234, 48u << 20), 0);
}

static void test_link_down(void **state)
{
    fixture_t *f = *state;
    if (f->skip[0] != '\0') {
        print_message("[  SKIP    ] %s\n", f->skip);
        skip();
    }
    assert_int_equal(test_connect(f->engine, f->peer.name, 10000), KVX_OK);
    uint64_t src = test_remote_region(f->engine, f->peer.name, PEER_TAG_SRC);
    uint64_t dst = test_remote_region(f->engine, f->peer.name, PEER_TAG_DST);
    assert_true(src != 0 && dst != 0);
    print_message("  target %s in %s (pid %d), initiator %s in %s, transport %s\n", f->peer.name,
                  f->ns[0], (int)f->peer.pid, kvx_engine_name(f->engine), f->ns[1],
                  fault_transport());
    if (test_transport_is_shm()) {
        print_message("  shm: linked across the namespaces over the same-host path (with "
                      "KVX_TRANSPORT=shm a link is made only that way); its copies need no "
                      "network, its keepalives do\n");
    }
    for (int round = 0; round < ROUNDS; round++) {
        one_round(f, round, src, dst);
    }
    assert_int_equal(test_peer_stop(&f->peer), 0);
    assert_int_equal(fault_stats.hangs, 0);
    assert_int_equal(fault_stats.corrupted, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_down, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fault_summary("link_down");
    return rc;
}

/*
 * KV layer behaviour: byte-exact pulls, pushes and copies (layer ranges,
 * sizes, block lists) against a model the test computes itself; pull and
 * push agree; one prompt serving three decoders at once; role switches;
 * unlink while a pull is pending; caches registered or dropped after the
 * link; notifications; allocated caches.
 *
 * Every instance lives in this process on 127.0.0.1 (listeners on port 0).
 * A test cache keeps a model of its whole layout: its tensors back to back
 * between two guard zones. After each call the memory must equal the model,
 * guards included, on both sides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "kv_fixture.h"
#include "relay.h"

#define EXPECT_STATUS(call, want)                                                                  \
    do {                                                                                           \
        kvx_status_t s_ = (call), w_ = (want);                                                     \
        if (s_ != w_) {                                                                            \
            char d_[512];                                                                          \
            snprintf(d_, sizeof(d_), "%s", kvx_last_error());                                      \
            fail_msg("%s:%d: %s: %s (%s), want %s", __FILE__, __LINE__, #call,                     \
                     kvx_status_name(s_), d_, kvx_status_name(w_));                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------ test caches (kv_fixture.h) */

static void tc_check_at(tc_t *c, const char *name, int line)
{
    char why[160] = "";
    size_t bad = tc_diff_quiet(c, why, sizeof(why));
    if (bad != 0) {
        fail_msg("line %d: %s: %zu bytes differ from the model; first: %s", line, name, bad, why);
    }
}

#define CHECK(c) tc_check_at((c), #c, __LINE__)

/* Model of one piece: @p len bytes from entry @p se of tensor @p st. */
static void model_move(tc_t *dst, size_t dt, size_t de, tc_t *src, size_t st, size_t se, size_t len)
{
    memmove(tc_at(dst, dt, de), tc_at(src, st, se), len);
}

/* Model of a block list transfer over @p n tensors. */
static void model_blocks(tc_t *dst, size_t dt0, tc_t *src, size_t st0, size_t n, const uint64_t *sb,
                         const uint64_t *db, size_t count)
{
    for (size_t t = 0; t < n; t++) {
        for (size_t k = 0; k < count; k++) {
            model_move(dst, dt0 + t, db[k], src, st0 + t, sb[k], src->esize);
        }
    }
}

/* -------------------------------------------------------------- instances */

static kvx_kv_h kv_new_with(uint64_t cluster, kvx_kv_role_t role, int listen,
                            const kvx_kv_params_t *extra)
{
    kvx_kv_params_t p = {0};
    if (extra != NULL) {
        p = *extra;
    }
    p.field_mask |= KVX_KV_PARAM_FIELD_CLUSTER_ID | KVX_KV_PARAM_FIELD_ROLE |
                    KVX_KV_PARAM_FIELD_SYNC_TIMEOUT | KVX_KV_PARAM_FIELD_LOCAL_IP;
    p.cluster_id = cluster;
    p.role = role;
    p.sync_timeout_ms = 10000;
    p.local_ip = "127.0.0.1";
    if (listen) {
        p.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        p.listen = "127.0.0.1:0";
    }
    kvx_kv_h kv = NULL;
    OK(kvx_kv_create(&p, &kv));
    assert_non_null(kv);
    own_kv(kv);
    return kv;
}

static kvx_kv_h kv_new(uint64_t cluster, kvx_kv_role_t role, int listen)
{
    return kv_new_with(cluster, role, listen, NULL);
}

static kvx_status_t link_one(kvx_kv_h kv, uint64_t cluster, const char *remote)
{
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster, .remote = remote};
    kvx_status_t st = KVX_OK;
    kvx_status_t s = kvx_kv_link(kv, &c, 1, LINK_MS, &st);
    return s != KVX_OK ? s : st;
}

static kvx_status_t unlink_one(kvx_kv_h kv, uint64_t cluster)
{
    kvx_kv_cluster_t c = {.remote_cluster_id = cluster};
    return kvx_kv_unlink(kv, &c, 1, LINK_MS, 0, NULL);
}

static void wait_links_at(kvx_kv_h kv, size_t out, size_t in, int line)
{
    uint64_t deadline = test_now_ms() + WAIT_MS;
    size_t o = 0, i = 0;
    do {
        OK(kvx_kv_link_count(kv, &o, &i));
        if (o == out && i == in) {
            return;
        }
        usleep(2000);
    } while (test_now_ms() < deadline);
    fail_msg("line %d: %zu outgoing, %zu incoming links; want %zu, %zu", line, o, i, out, in);
}

#define WAIT_LINKS(kv, out, in) wait_links_at((kv), (out), (in), __LINE__)

/* A prompt (cluster 1, listening) and a decoder (cluster 2) linked to it. */
typedef struct pair {
    kvx_kv_h p, d;
    char p_name[KVX_ENGINE_NAME_MAX];
} pair_t;

static int setup(void **state)
{
    pair_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->p = kv_new(P_CLUSTER, KVX_KV_ROLE_PROMPT, 1);
    f->d = kv_new(D_CLUSTER, KVX_KV_ROLE_DECODER, 0);
    snprintf(f->p_name, sizeof(f->p_name), "%s", kvx_kv_listen_name(f->p));
    OK(link_one(f->d, P_CLUSTER, f->p_name));
    *state = f;
    return 0;
}

/* The relay of (e) (relay.h), freed here if its test fails. */
static proxy_t *g_relay;

static int teardown(void **state)
{
    if (g_relay != NULL) {
        proxy_free(g_relay);
        g_relay = NULL;
    }
    free_all();
    free(*state);
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    free_all();
    return 0;
}

/* Entry shape [3, 5] of fp16: 30 bytes, not a power of two. */
#define E1 3
#define E2 5

/* ------------------------------------------------------------------- (a) */

static void test_pull_push_exact(void **state)
{
    pair_t *f = *state;
    tc_t a, b, c, e;
    kvx_kv_cache_desc_t d;
    d = desc_of(6, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, (const int64_t[]){16, E1, E2});
    tc_register(&a, f->p, &d, 11); /* P: 3 layers, 16 entries */
    d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){10, E1, E2});
    tc_register(&b, f->d, &d, 12); /* D: 2 layers, 10 entries */
    d = desc_of(6, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, (const int64_t[]){16, E1, E2});
    tc_register(&c, f->d, &d, 13); /* D: like a */
    d = desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){10, E1, E2});
    tc_register(&e, f->p, &d, 14); /* P: like b */
    const size_t S = 2 * E1 * E2;
    assert_int_equal(a.esize, S);

    /* pull_cache: layers 1..2 of a into 0..1 of b, first 17 bytes. */
    kvx_kv_remote_cache_t ra = {.cluster_id = P_CLUSTER, .cache_id = a.id, .batch_index = 13};
    kvx_kv_xfer_params_t xp = layers(1, 2, 0, 1);
    xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
    xp.size = 17;
    OK(kvx_kv_pull_cache(f->d, &ra, b.id, 4, &xp));
    for (size_t t = 0; t < 4; t++) {
        model_move(&b, t, 4, &a, 2 + t, 13, 17);
    }
    CHECK(&b);
    CHECK(&a);

    /* pull_cache without params: every tensor, whole entry, last entries. */
    ra.batch_index = 15;
    OK(kvx_kv_pull_cache(f->d, &ra, c.id, 15, NULL));
    for (size_t t = 0; t < 6; t++) {
        model_move(&c, t, 15, &a, t, 15, S);
    }
    CHECK(&c);

    /* The same with an end-to-end checksum (it takes the socket on shm). */
    kvx_kv_xfer_params_t cx = {.field_mask = KVX_KV_XFER_FIELD_CHECKSUM, .checksum = 1};
    ra.batch_index = 14;
    OK(kvx_kv_pull_cache(f->d, &ra, c.id, 14, &cx));
    for (size_t t = 0; t < 6; t++) {
        model_move(&c, t, 14, &a, t, 14, S);
    }
    CHECK(&c);

    /* size == entry size, layer 0 into layer 1. */
    ra.batch_index = 5;
    xp = layers(0, 0, 1, 1);
    xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
    xp.size = S;
    OK(kvx_kv_pull_cache(f->d, &ra, b.id, 9, &xp));
    for (size_t t = 0; t < 2; t++) {
        model_move(&b, 2 + t, 9, &a, t, 5, S);
    }
    CHECK(&b);

    /* pull_blocks: layer 2 into layer 1, runs and single blocks. */
    ra.batch_index = 0;
    const uint64_t sb1[6] = {3, 4, 5, 9, 0, 15}, db1[6] = {7, 8, 9, 1, 2, 0};
    xp = layers(2, 2, 1, 1);
    OK(kvx_kv_pull_blocks(f->d, &ra, b.id, sb1, 6, db1, 6, &xp));
    model_blocks(&b, 2, &a, 4, 2, sb1, db1, 6);
    CHECK(&b);

    /* pull_blocks without params, every block reversed (no runs). */
    uint64_t sb2[16], db2[16];
    for (size_t k = 0; k < 16; k++) {
        sb2[k] = k;
        db2[k] = 15 - k;
    }
    OK(kvx_kv_pull_blocks(f->d, &ra, c.id, sb2, 16, db2, 16, NULL));
    model_blocks(&c, 0, &a, 0, 6, sb2, db2, 16);
    CHECK(&c);

    /* 3 tensors per layer: layer 1 of a (tensors 3..5) into layer 0 of c. */
    xp = layers(1, 1, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_TENSORS_PER_LAYER;
    xp.tensors_per_layer = 3;
    const uint64_t sb3[4] = {10, 11, 12, 2}, db3[4] = {4, 5, 6, 7};
    OK(kvx_kv_pull_blocks(f->d, &ra, c.id, sb3, 4, db3, 4, &xp));
    model_blocks(&c, 0, &a, 3, 3, sb3, db3, 4);
    CHECK(&c);

    /* push_cache: layer 1 of b into layer 0 of e, 7 bytes. */
    kvx_kv_remote_cache_t re = {.cluster_id = P_CLUSTER, .cache_id = e.id, .batch_index = 9};
    xp = layers(1, 1, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
    xp.size = 7;
    OK(kvx_kv_push_cache(f->d, b.id, 2, &re, &xp));
    for (size_t t = 0; t < 2; t++) {
        model_move(&e, t, 9, &b, 2 + t, 2, 7);
    }
    CHECK(&e);
    CHECK(&b);

    /* push_cache without params (equal tensor counts). */
    re.batch_index = 3;
    OK(kvx_kv_push_cache(f->d, b.id, 0, &re, NULL));
    for (size_t t = 0; t < 4; t++) {
        model_move(&e, t, 3, &b, t, 0, S);
    }
    CHECK(&e);

    /* push_blocks: layers 1..2 of c (3 layers) into 0..1 of e. */
    re.batch_index = 0;
    const uint64_t sb4[3] = {1, 2, 3}, db4[3] = {4, 5, 6};
    xp = layers(1, 2, 0, 1);
    OK(kvx_kv_push_blocks(f->d, c.id, &re, sb4, 3, db4, 3, &xp));
    model_blocks(&e, 0, &c, 2, 4, sb4, db4, 3);
    CHECK(&e);
    CHECK(&c);

    /* push_blocks of every block in one run. */
    uint64_t all[10];
    for (size_t k = 0; k < 10; k++) {
        all[k] = k;
    }
    OK(kvx_kv_push_blocks(f->d, b.id, &re, all, 10, all, 10, NULL));
    model_blocks(&e, 0, &b, 0, 4, all, all, 10);
    CHECK(&e);
    CHECK(&a);
    CHECK(&b);
    CHECK(&c);

    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&a);
    tc_release(&b);
    tc_release(&c);
    tc_release(&e);
}

/* ------------------------------------------------------------------- (b) */

/* The same copies as pulls by D into x1 and pushes by P into x2: both
 * destinations end byte-identical (and equal the model). */
static void test_pull_equals_push(void **state)
{
    pair_t *f = *state;
    /* D listens too, and P links to it. */
    kvx_kv_h d = kv_new(3, KVX_KV_ROLE_DECODER, 1);
    OK(link_one(d, P_CLUSTER, f->p_name));
    OK(link_one(f->p, 3, kvx_kv_listen_name(d)));
    tc_t s, x1, x2;
    kvx_kv_cache_desc_t desc;
    desc = desc_of(4, KVX_DTYPE_BF16, KVX_MEM_HOST, 3, (const int64_t[]){12, E1, E2});
    tc_register(&s, f->p, &desc, 21);
    tc_register(&x1, d, &desc, 22);
    desc.placement = KVX_MEM_DEVICE;
    tc_register(&x2, d, &desc, 22);

    kvx_kv_remote_cache_t rs = {.cluster_id = P_CLUSTER, .cache_id = s.id};
    kvx_kv_remote_cache_t rx = {.cluster_id = 3, .cache_id = x2.id};
    kvx_kv_xfer_params_t xp = layers(1, 1, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
    xp.size = 19;
    for (int round = 0; round < 3; round++) {
        uint32_t sbat = (uint32_t)(round * 5), dbat = (uint32_t)(11 - round * 3);
        const kvx_kv_xfer_params_t *p = round == 1 ? NULL : &xp;
        rs.batch_index = sbat;
        rx.batch_index = dbat;
        OK(kvx_kv_pull_cache(d, &rs, x1.id, dbat, p));
        OK(kvx_kv_push_cache(f->p, s.id, sbat, &rx, p));
        for (size_t t = 0; t < (p ? 2u : 4u); t++) {
            size_t st = p ? 2 + t : t;
            model_move(&x1, t, dbat, &s, st, sbat, p ? 19 : x1.esize);
            model_move(&x2, t, dbat, &s, st, sbat, p ? 19 : x2.esize);
        }
    }
    rs.batch_index = rx.batch_index = 0;
    const uint64_t sb[5] = {0, 1, 2, 7, 8}, db[5] = {11, 10, 3, 4, 5};
    OK(kvx_kv_pull_blocks(d, &rs, x1.id, sb, 5, db, 5, NULL));
    OK(kvx_kv_push_blocks(f->p, s.id, &rx, sb, 5, db, 5, NULL));
    model_blocks(&x1, 0, &s, 0, 4, sb, db, 5);
    model_blocks(&x2, 0, &s, 0, 4, sb, db, 5);
    xp = layers(0, 0, 1, 1);
    OK(kvx_kv_pull_blocks(d, &rs, x1.id, db, 5, sb, 5, &xp));
    OK(kvx_kv_push_blocks(f->p, s.id, &rx, db, 5, sb, 5, &xp));
    model_blocks(&x1, 2, &s, 0, 2, db, sb, 5);
    model_blocks(&x2, 2, &s, 0, 2, db, sb, 5);

    assert_int_equal(tc_read(&x1), KVX_OK);
    assert_int_equal(tc_read(&x2), KVX_OK);
    assert_memory_equal(x1.scratch, x2.scratch, x1.total);
    CHECK(&x1);
    CHECK(&x2);
    CHECK(&s);
    kv_free(d);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&s);
    tc_release(&x1);
    tc_release(&x2);
}

/* ------------------------------------------------------------------- (c) */

#define NDEC     3
#define DEC_ITER 400
#define C_BLOCKS 32

typedef struct dec_job {
    int idx;
    const char *p_name;
    kvx_kv_h kv;
    tc_t *src; /* the prompt's cache (read-only model) */
    tc_t dst;
    pthread_barrier_t *barrier;
    int iterations;
    char err[320];
} dec_job_t;

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

static void *decoder_main(void *arg)
{
    dec_job_t *j = arg;
    kvx_status_t s = link_one(j->kv, P_CLUSTER, j->p_name);
    if (s != KVX_OK) {
        snprintf(j->err, sizeof(j->err), "link: %s", kvx_status_name(s));
    }
    pthread_barrier_wait(j->barrier);
    uint64_t seed = 0x1234 + (uint64_t)j->idx;
    tc_t *src = j->src, *dst = &j->dst;
    const size_t layers_n = src->nt / 2;
    for (int it = 0; s == KVX_OK && it < DEC_ITER; it++) {
        kvx_kv_xfer_params_t xp = {0};
        size_t sl = 0, dl = 0, nl = layers_n;
        if (rnd(&seed) % 2) {
            sl = rnd(&seed) % layers_n;
            dl = rnd(&seed) % layers_n;
            size_t room = layers_n - (sl > dl ? sl : dl);
            nl = 1 + rnd(&seed) % room;
            xp = layers((uint32_t)sl, (uint32_t)(sl + nl - 1), (uint32_t)dl,
                        (uint32_t)(dl + nl - 1));
        }
        kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = src->id};
        if (rnd(&seed) % 2) {
            uint32_t sb = (uint32_t)(rnd(&seed) % C_BLOCKS), db = (uint32_t)(rnd(&seed) % C_BLOCKS);
            size_t len = src->esize;
            if (rnd(&seed) % 2) {
                len = 1 + rnd(&seed) % src->esize;
                xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
                xp.size = len;
            }
            r.batch_index = sb;
            s = kvx_kv_pull_cache(j->kv, &r, dst->id, db, &xp);
            for (size_t t = 0; s == KVX_OK && t < 2 * nl; t++) {
                model_move(dst, 2 * dl + t, db, src, 2 * sl + t, sb, len);
            }
        } else {
            /* A random slice of a permutation: distinct destination blocks. */
            uint64_t perm[C_BLOCKS], sbl[C_BLOCKS];
            for (size_t k = 0; k < C_BLOCKS; k++) {
                perm[k] = k;
            }
            for (size_t k = C_BLOCKS - 1; k > 0; k--) {
                size_t m = rnd(&seed) % (k + 1);
                uint64_t tmp = perm[k];
                perm[k] = perm[m];
                perm[m] = tmp;
            }
            size_t count = 1 + rnd(&seed) % C_BLOCKS;
            size_t start = rnd(&seed) % C_BLOCKS;
            for (size_t k = 0; k < count; k++) {
                sbl[k] = (start + k) % C_BLOCKS; /* runs, wrapping once */
            }
            s = kvx_kv_pull_blocks(j->kv, &r, dst->id, sbl, count, perm, count, &xp);
            if (s == KVX_OK) {
                model_blocks(dst, 2 * dl, src, 2 * sl, 2 * nl, sbl, perm, count);
            }
        }
        if (s != KVX_OK) {
            snprintf(j->err, sizeof(j->err), "iteration %d: %s (%s)", it, kvx_status_name(s),
                     kvx_last_error());
            break;
        }
        char why[160];
        size_t bad = tc_diff_quiet(dst, why, sizeof(why));
        if (bad != 0) {
            snprintf(j->err, sizeof(j->err), "iteration %d: %zu bytes wrong; %s", it, bad, why);
            break;
        }
        j->iterations = it + 1;
    }
    return NULL;
}

static void test_three_decoders(void **state)
{
    pair_t *f = *state;
    tc_t src;
    kvx_kv_cache_desc_t d = desc_of(8, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3,
                                    (const int64_t[]){C_BLOCKS, 8, 128}); /* 2 KiB entries */
    tc_register(&src, f->p, &d, 31);
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NDEC);
    dec_job_t jobs[NDEC];
    pthread_t tids[NDEC];
    for (int i = 0; i < NDEC; i++) {
        memset(&jobs[i], 0, sizeof(jobs[i]));
        jobs[i].idx = i;
        jobs[i].p_name = f->p_name;
        jobs[i].kv = kv_new(10 + (uint64_t)i, KVX_KV_ROLE_DECODER, 0);
        jobs[i].src = &src;
        jobs[i].barrier = &barrier;
        d.placement = i == 1 ? KVX_MEM_DEVICE : KVX_MEM_HOST;
        tc_register(&jobs[i].dst, jobs[i].kv, &d, 40 + (uint64_t)i);
    }
    for (int i = 0; i < NDEC; i++) {
        assert_int_equal(pthread_create(&tids[i], NULL, decoder_main, &jobs[i]), 0);
    }
    for (int i = 0; i < NDEC; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 120;
        if (pthread_timedjoin_np(tids[i], NULL, &ts) != 0) {
            fail_msg("decoder %d still running after 120 s (%d iterations)", i, jobs[i].iterations);
        }
    }
    pthread_barrier_destroy(&barrier);
    /* The prompt served all three links at once. */
    WAIT_LINKS(f->p, 0, NDEC + 1);
    for (int i = 0; i < NDEC; i++) {
        if (jobs[i].err[0] != '\0') {
            fail_msg("decoder %d: %s", i, jobs[i].err);
        }
        assert_int_equal(jobs[i].iterations, DEC_ITER);
    }
    CHECK(&src);
    for (int i = 0; i < NDEC; i++) {
        kv_free(jobs[i].kv);
        tc_release(&jobs[i].dst);
    }
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&src);
}

/* ------------------------------------------------------------------- (d) */

/* a and b swap roles twice; every time the decoder links to the prompt's
 * new address and pulls and pushes by the ids the caches kept. */
static void test_role_switch_cycle(void **state)
{
    (void)state;
    kvx_kv_h a = kv_new(21, KVX_KV_ROLE_PROMPT, 1);
    kvx_kv_h b = kv_new(22, KVX_KV_ROLE_DECODER, 0);
    assert_string_equal(kvx_kv_listen_name(b), "127.0.0.1");
    tc_t ca, cb;
    kvx_kv_cache_desc_t d = desc_of(4, KVX_DTYPE_FP32, KVX_MEM_DEVICE, 2, (const int64_t[]){8, 24});
    tc_register(&ca, a, &d, 51);
    d.placement = KVX_MEM_HOST;
    tc_register(&cb, b, &d, 52);
    const int64_t ida = ca.id, idb = cb.id;
    kvx_kv_h prompt = a, decoder = b;
    tc_t *pc = &ca, *dc = &cb;
    for (int step = 0; step < 5; step++) {
        char name[KVX_ENGINE_NAME_MAX];
        snprintf(name, sizeof(name), "%s", kvx_kv_listen_name(prompt));
        assert_non_null(strchr(name, ':'));
        uint64_t pid = kvx_kv_cluster_id(prompt);
        OK(link_one(decoder, pid, name));
        WAIT_LINKS(prompt, 0, 1);
        /* Pull entry step of the prompt's cache; push entry 7 back. */
        kvx_kv_remote_cache_t r = {.cluster_id = pid, .cache_id = pc->id, .batch_index = 0};
        r.batch_index = (uint32_t)step;
        OK(kvx_kv_pull_cache(decoder, &r, dc->id, (uint32_t)step, NULL));
        for (size_t t = 0; t < 4; t++) {
            model_move(dc, t, (size_t)step, pc, t, (size_t)step, dc->esize);
        }
        r.batch_index = 7;
        OK(kvx_kv_push_cache(decoder, dc->id, (uint32_t)(step + 1), &r, NULL));
        for (size_t t = 0; t < 4; t++) {
            model_move(pc, t, 7, dc, t, (size_t)step + 1, pc->esize);
        }
        CHECK(&ca);
        CHECK(&cb);
        if (step == 4) {
            break;
        }
        OK(unlink_one(decoder, pid));
        WAIT_LINKS(decoder, 0, 0);
        WAIT_LINKS(prompt, 0, 0);
        /* Swap: the prompt stops listening, the decoder starts. */
        OK(kvx_kv_set_role(prompt, KVX_KV_ROLE_DECODER, NULL));
        OK(kvx_kv_set_role(decoder, KVX_KV_ROLE_PROMPT, "127.0.0.1:0"));
        assert_int_equal(kvx_kv_role(prompt), KVX_KV_ROLE_DECODER);
        assert_int_equal(kvx_kv_role(decoder), KVX_KV_ROLE_PROMPT);
        assert_string_equal(kvx_kv_listen_name(prompt), "127.0.0.1");
        kvx_kv_h tmp = prompt;
        prompt = decoder;
        decoder = tmp;
        tc_t *tc = pc;
        pc = dc;
        dc = tc;
        /* Caches keep their ids and addresses. */
        void *addrs[4];
        OK(kvx_kv_cache_tensors(a, ida, addrs, 4));
        assert_memory_equal(addrs, ca.t, sizeof(addrs));
        OK(kvx_kv_cache_tensors(b, idb, addrs, 4));
        assert_memory_equal(addrs, cb.t, sizeof(addrs));
    }
    assert_ptr_equal(prompt, a); /* four swaps: back where it began */
    kv_free(b);
    kv_free(a);
    tc_release(&ca);
    tc_release(&cb);
}

/* ------------------------------------------------------------------- (e) */

typedef struct puller {
    kvx_kv_h kv;
    int64_t src_id, dst_id;
    uint64_t cluster;
    size_t count; /* blocks per pull */
    int loop;     /* pull until stop, else once */
    int stop;     /* set by the main thread */
    pthread_mutex_t lock;
    int in_call; /* a pull has begun and not returned */
    size_t n;    /* pulls finished */
    kvx_status_t st[4096];
    uint64_t began[4096], ended[4096];
} puller_t;

static void *puller_main(void *arg)
{
    puller_t *p = arg;
    uint64_t blocks[64];
    for (size_t k = 0; k < p->count; k++) {
        blocks[k] = k;
    }
    kvx_kv_remote_cache_t r = {.cluster_id = p->cluster, .cache_id = p->src_id};
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int stop = p->stop || p->n == 4096 || (!p->loop && p->n == 1);
        if (!stop) {
            p->in_call = 1;
            p->began[p->n] = test_now_ms();
        }
        pthread_mutex_unlock(&p->lock);
        if (stop) {
            break;
        }
        kvx_status_t s =
            kvx_kv_pull_blocks(p->kv, &r, p->dst_id, blocks, p->count, blocks, p->count, NULL);
        pthread_mutex_lock(&p->lock);
        p->st[p->n] = s;
        p->ended[p->n] = test_now_ms();
        p->n++;
        p->in_call = 0;
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

static void join_within(pthread_t tid, int seconds, const char *what)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += seconds;
    if (pthread_timedjoin_np(tid, NULL, &ts) != 0) {
        fail_msg("%s did not return within %d s", what, seconds);
    }
}

/* Deterministic: the pull's READ is held in the relay; unlink ends it with
 * KVX_ERR_CANCELED; relink and pull again byte-exact. */
static void test_unlink_cancels_pending_pull(void **state)
{
    TEST_SKIP_OVER_SHM("a paused relay does not hold the pull's same-host READ, so unlink has "
                       "nothing pending to cancel; covered over tcp");
    pair_t *f = *state;
    tc_t src, dst;
    kvx_kv_cache_desc_t d =
        desc_of(2, KVX_DTYPE_UINT8, KVX_MEM_HOST, 2, (const int64_t[]){16, 4096});
    tc_register(&src, f->p, &d, 61);
    tc_register(&dst, f->d, &d, 0);
    proxy_t *relay = g_relay = proxy_new(f->p_name);
    kvx_kv_h d2 = kv_new(5, KVX_KV_ROLE_DECODER, 0);
    tc_t dst2;
    tc_register(&dst2, d2, &d, 0);
    OK(link_one(d2, P_CLUSTER, relay->name));

    for (int round = 0; round < 2; round++) {
        puller_t *pl = calloc(1, sizeof(*pl));
        assert_non_null(pl);
        pthread_mutex_init(&pl->lock, NULL);
        pl->kv = d2;
        pl->src_id = src.id;
        pl->dst_id = dst2.id;
        pl->cluster = P_CLUSTER;
        pl->count = 16;
        proxy_ctl(relay, PX_FWD, 0);
        pthread_t tid;
        assert_int_equal(pthread_create(&tid, NULL, puller_main, pl), 0);
        /* The pull is under way and cannot finish: nothing reaches P. */
        uint64_t deadline = test_now_ms() + 5000;
        for (;;) {
            pthread_mutex_lock(&pl->lock);
            int in = pl->in_call;
            pthread_mutex_unlock(&pl->lock);
            if (in || test_now_ms() > deadline) {
                break;
            }
            usleep(1000);
        }
        usleep(200 * 1000);
        pthread_mutex_lock(&pl->lock);
        assert_int_equal(pl->in_call, 1);
        assert_int_equal(pl->n, 0);
        pthread_mutex_unlock(&pl->lock);
        uint64_t t0 = test_now_ms();
        OK(unlink_one(d2, P_CLUSTER));
        join_within(tid, 5, "the pending pull");
        assert_int_equal(pl->n, 1);
        if (pl->st[0] != KVX_ERR_CANCELED) {
            fail_msg("round %d: pending pull ended with %s, want KVX_ERR_CANCELED", round,
                     kvx_status_name(pl->st[0]));
        }
        assert_true(test_now_ms() - t0 < 4000); /* not by its 10 s deadline */
        pthread_mutex_destroy(&pl->lock);
        free(pl);
        proxy_ctl(relay, 0, 0);
        WAIT_LINKS(d2, 0, 0);
        /* Relink (through the relay) and pull byte-exact. */
        OK(link_one(d2, P_CLUSTER, relay->name));
        kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = src.id};
        const uint64_t blocks[3] = {15, 0, 7};
        OK(kvx_kv_pull_blocks(d2, &r, dst2.id, blocks, 3, blocks, 3, NULL));
        model_blocks(&dst2, 0, &src, 0, 2, blocks, blocks, 3);
        CHECK(&dst2);
        tc_fill(&dst2, 0);
    }
    CHECK(&src);
    kv_free(d2);
    proxy_free(relay);
    g_relay = NULL;
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&src);
    tc_release(&dst);
    tc_release(&dst2);
}

/* Free-running: large pulls in a loop, unlink from this thread at some
 * point of one of them. Every pull ends OK, CANCELED or NOT_LINKED (never
 * hangs); pulls that began after the unlink returned are NOT_LINKED; then
 * relink and pull work. */
static void test_unlink_during_pull_loop(void **state)
{
    pair_t *f = *state;
    tc_t src, dst;
    /* 2 tensors of 32 blocks of 256 KiB: 16 MiB a pull. */
    kvx_kv_cache_desc_t d =
        desc_of(2, KVX_DTYPE_UINT8, KVX_MEM_HOST, 2, (const int64_t[]){32, 256 * 1024});
    tc_register(&src, f->p, &d, 71);
    tc_register(&dst, f->d, &d, 0);
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = src.id};
    uint64_t all[32];
    for (size_t k = 0; k < 32; k++) {
        all[k] = k;
    }
    uint64_t t0 = test_now_ms();
    OK(kvx_kv_pull_blocks(f->d, &r, dst.id, all, 32, all, 32, NULL));
    uint64_t one = test_now_ms() - t0;
    model_blocks(&dst, 0, &src, 0, 2, all, all, 32);
    CHECK(&dst);
    int canceled = 0;
    for (int round = 0; round < 4; round++) {
        puller_t *pl = calloc(1, sizeof(*pl));
        assert_non_null(pl);
        pthread_mutex_init(&pl->lock, NULL);
        pl->kv = f->d;
        pl->src_id = src.id;
        pl->dst_id = dst.id;
        pl->cluster = P_CLUSTER;
        pl->count = 32;
        pl->loop = 1;
        pthread_t tid;
        assert_int_equal(pthread_create(&tid, NULL, puller_main, pl), 0);
        /* Wait for the second pull to begin, then unlink partway into it. */
        uint64_t deadline = test_now_ms() + 10000;
        for (;;) {
            pthread_mutex_lock(&pl->lock);
            int ready = pl->n >= 1 && pl->in_call;
            pthread_mutex_unlock(&pl->lock);
            if (ready || test_now_ms() > deadline) {
                break;
            }
            usleep(200);
        }
        usleep((useconds_t)(one * 1000 * (unsigned)(round + 1) / 5));
        uint64_t u0 = test_now_ms();
        kvx_status_t us = unlink_one(f->d, P_CLUSTER);
        uint64_t u1 = test_now_ms();
        usleep(20 * 1000);
        pthread_mutex_lock(&pl->lock);
        pl->stop = 1;
        pthread_mutex_unlock(&pl->lock);
        join_within(tid, 30, "the pull loop");
        OK(us);
        assert_true(pl->n >= 2);
        for (size_t i = 0; i < pl->n; i++) {
            kvx_status_t s = pl->st[i];
            if (s != KVX_OK && s != KVX_ERR_CANCELED && s != KVX_ERR_NOT_LINKED &&
                s != KVX_ERR_CONNECTION_LOST) {
                fail_msg("round %d pull %zu: %s", round, i, kvx_status_name(s));
            }
            if (pl->began[i] > u1 && s != KVX_ERR_NOT_LINKED) {
                fail_msg("round %d pull %zu began after unlink: %s", round, i, kvx_status_name(s));
            }
            if (pl->ended[i] < u0 && s != KVX_OK) {
                fail_msg("round %d pull %zu ended before unlink: %s", round, i, kvx_status_name(s));
            }
            canceled += s == KVX_ERR_CANCELED || s == KVX_ERR_CONNECTION_LOST;
        }
        pthread_mutex_destroy(&pl->lock);
        free(pl);
        WAIT_LINKS(f->p, 0, 0);
        OK(link_one(f->d, P_CLUSTER, f->p_name));
        tc_fill(&dst, 0);
        const uint64_t some[4] = {31, 30, 0, 1};
        OK(kvx_kv_pull_blocks(f->d, &r, dst.id, some, 4, some, 4, NULL));
        model_blocks(&dst, 0, &src, 0, 2, some, some, 4);
        CHECK(&dst);
    }
    print_message("  one 16 MiB pull took %llu ms; %d of 4 unlinks caught a pull in flight\n",
                  (unsigned long long)one, canceled);
    CHECK(&src);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&src);
    tc_release(&dst);
}

/* ------------------------------------------------------------------- (f) */

/* Caches registered (or allocated) on P after D linked are found by id
 * without any refresh; dropped ones give KVX_ERR_REMOTE_CACHE_NOT_FOUND. */
static void test_late_registration(void **state)
{
    pair_t *f = *state;
    tc_t dst, late, late2;
    kvx_kv_cache_desc_t d =
        desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){8, E1, E2});
    tc_register(&dst, f->d, &d, 0);
    /* D has read P's (empty) table by now: a first pull fails. */
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = 1, .batch_index = 2};
    EXPECT_STATUS(kvx_kv_pull_cache(f->d, &r, dst.id, 0, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    d.placement = KVX_MEM_DEVICE;
    tc_register(&late, f->p, &d, 81);
    r.cache_id = late.id;
    OK(kvx_kv_pull_cache(f->d, &r, dst.id, 0, NULL));
    for (size_t t = 0; t < 4; t++) {
        model_move(&dst, t, 0, &late, t, 2, dst.esize);
    }
    CHECK(&dst);
    /* Several more, and an allocated one, all after the link. */
    tc_t more[3];
    for (int i = 0; i < 3; i++) {
        tc_register(&more[i], f->p, &d, 90 + (uint64_t)i);
    }
    tc_allocate(&late2, f->p, &d, 0, 85);
    for (int i = 2; i >= 0; i--) {
        kvx_kv_remote_cache_t rm = {.cluster_id = P_CLUSTER, .cache_id = more[i].id};
        rm.batch_index = (uint32_t)i;
        OK(kvx_kv_pull_cache(f->d, &rm, dst.id, (uint32_t)(3 + i), NULL));
        for (size_t t = 0; t < 4; t++) {
            model_move(&dst, t, 3 + (size_t)i, &more[i], t, (size_t)i, dst.esize);
        }
    }
    kvx_kv_remote_cache_t ra = {.cluster_id = P_CLUSTER, .cache_id = late2.id};
    const uint64_t sb[2] = {6, 7}, db[2] = {6, 7};
    OK(kvx_kv_pull_blocks(f->d, &ra, dst.id, sb, 2, db, 2, NULL));
    model_blocks(&dst, 0, &late2, 0, 4, sb, db, 2);
    CHECK(&dst);

    /* Dropped on P: pulls and pushes by the old id fail, nothing moves. */
    OK(kvx_kv_cache_unregister(f->p, late.id));
    EXPECT_STATUS(kvx_kv_pull_cache(f->d, &r, dst.id, 1, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    EXPECT_STATUS(kvx_kv_push_cache(f->d, dst.id, 0, &r, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    OK(kvx_kv_cache_deallocate(f->p, late2.id));
    EXPECT_STATUS(kvx_kv_pull_blocks(f->d, &ra, dst.id, sb, 2, db, 2, NULL),
                  KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    EXPECT_STATUS(kvx_kv_push_blocks(f->d, dst.id, &ra, sb, 2, db, 2, NULL),
                  KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    CHECK(&dst);
    CHECK(&late);
    /* The others are still there. */
    kvx_kv_remote_cache_t rm = {.cluster_id = P_CLUSTER, .cache_id = more[1].id};
    OK(kvx_kv_pull_cache(f->d, &rm, dst.id, 1, NULL));
    for (size_t t = 0; t < 4; t++) {
        model_move(&dst, t, 1, &more[1], t, 0, dst.esize);
    }
    CHECK(&dst);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&dst);
    tc_release(&late);
    tc_release(&late2);
    for (int i = 0; i < 3; i++) {
        tc_release(&more[i]);
    }
}

/* An id dropped on P stays gone for D even when P registers the same memory
 * again under a new id (with another dtype): D must neither read the new
 * cache through the old id nor skip the dtype check. */
static void test_dropped_id_with_memory_reused(void **state)
{
    pair_t *f = *state;
    tc_t dst, old, dst16;
    kvx_kv_cache_desc_t d = desc_of(2, KVX_DTYPE_FP16, KVX_MEM_HOST, 2, (const int64_t[]){4, 64});
    tc_register(&dst, f->d, &d, 0);
    tc_register(&old, f->p, &d, 101);
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = old.id};
    OK(kvx_kv_pull_cache(f->d, &r, dst.id, 0, NULL)); /* D now knows the old id */
    for (size_t t = 0; t < 2; t++) {
        model_move(&dst, t, 0, &old, t, 0, dst.esize);
    }
    CHECK(&dst);
    OK(kvx_kv_cache_unregister(f->p, old.id));
    /* Same memory, other dtype (same bytes per entry), new content. */
    kvx_kv_cache_desc_t d8 = desc_of(2, KVX_DTYPE_INT8, KVX_MEM_HOST, 2, (const int64_t[]){4, 128});
    test_fill(old.model + GUARD, old.nt * old.tsize, 102, 0);
    tc_store(&old);
    int64_t new_id = 0;
    OK(kvx_kv_cache_register(f->p, &d8, old.t, &new_id));
    assert_true(new_id > old.id);
    r.batch_index = 1;
    EXPECT_STATUS(kvx_kv_pull_cache(f->d, &r, dst.id, 1, NULL), KVX_ERR_REMOTE_CACHE_NOT_FOUND);
    CHECK(&dst);
    /* By the new id: the dtype now differs from D's fp16 cache. */
    kvx_kv_remote_cache_t rn = {.cluster_id = P_CLUSTER, .cache_id = new_id};
    EXPECT_STATUS(kvx_kv_pull_cache(f->d, &rn, dst.id, 1, NULL), KVX_ERR_CACHE_MISMATCH);
    CHECK(&dst);
    tc_register(&dst16, f->d, &d8, 0);
    rn.batch_index = 3;
    OK(kvx_kv_pull_cache(f->d, &rn, dst16.id, 2, NULL));
    for (size_t t = 0; t < 2; t++) {
        model_move(&dst16, t, 2, &old, t, 3, dst16.esize);
    }
    CHECK(&dst16);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&dst);
    tc_release(&dst16);
    tc_release(&old);
}

/* ------------------------------------------------------------------- (g) */

static void test_copy_exact(void **state)
{
    pair_t *f = *state;
    kvx_kv_cache_desc_t d =
        desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){16, E1, E2});
    tc_t h1, h2, v1, v2;
    tc_register(&h1, f->d, &d, 111);
    tc_register(&h2, f->d, &d, 112);
    d.placement = KVX_MEM_DEVICE;
    tc_register(&v1, f->d, &d, 113);
    tc_register(&v2, f->d, &d, 114);
    const size_t S = h1.esize;
    tc_t *caches[4] = {&h1, &h2, &v1, &v2};

    /* copy_cache in all four directions, with and without layers/size. */
    kvx_kv_xfer_params_t xp = layers(1, 1, 0, 0);
    xp.field_mask |= KVX_KV_XFER_FIELD_SIZE;
    xp.size = 11;
    for (int s = 0; s < 4; s++) {
        for (int t = 0; t < 4; t++) {
            if (s == t) {
                continue;
            }
            tc_t *a = caches[s], *b = caches[t];
            uint32_t sb = (uint32_t)(s * 4 + t), db = (uint32_t)(15 - sb);
            OK(kvx_kv_copy_cache(f->d, a->id, sb, b->id, db, NULL));
            for (size_t k = 0; k < 4; k++) {
                model_move(b, k, db, a, k, sb, S);
            }
            OK(kvx_kv_copy_cache(f->d, a->id, db, b->id, sb, &xp));
            for (size_t k = 0; k < 2; k++) {
                model_move(b, k, sb, a, 2 + k, db, 11);
            }
        }
    }
    for (int i = 0; i < 4; i++) {
        CHECK(caches[i]);
    }

    /* copy_blocks: one source list to three destination lists. */
    const uint64_t src[3] = {0, 1, 2};
    const uint64_t l0[3] = {3, 4, 5}, l1[3] = {9, 10, 11}, l2[3] = {15, 14, 13};
    const uint64_t *lists[3] = {l0, l1, l2};
    const size_t counts[3] = {3, 3, 3};
    OK(kvx_kv_copy_blocks(f->d, h1.id, v2.id, src, 3, lists, counts, 3, NULL));
    for (int j = 0; j < 3; j++) {
        model_blocks(&v2, 0, &h1, 0, 4, src, lists[j], 3);
    }
    CHECK(&v2);
    xp = layers(0, 0, 1, 1);
    OK(kvx_kv_copy_blocks(f->d, v1.id, h2.id, src, 3, lists, counts, 3, &xp));
    for (int j = 0; j < 3; j++) {
        model_blocks(&h2, 2, &v1, 0, 2, src, lists[j], 3);
    }
    CHECK(&h2);
    /* Within one cache (a fork of a prefix): blocks 0..1 to 6..7 and 12, 8. */
    const uint64_t pre[2] = {0, 1}, f0[2] = {6, 7}, f1[2] = {12, 8};
    const uint64_t *forks[2] = {f0, f1};
    const size_t fc[2] = {2, 2};
    OK(kvx_kv_copy_blocks(f->d, v1.id, v1.id, pre, 2, forks, fc, 2, NULL));
    OK(kvx_kv_copy_blocks(f->d, h1.id, h1.id, pre, 2, forks, fc, 2, NULL));
    for (int j = 0; j < 2; j++) {
        model_blocks(&v1, 0, &v1, 0, 4, pre, forks[j], 2);
        model_blocks(&h1, 0, &h1, 0, 4, pre, forks[j], 2);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(caches[i]);
    }
    kv_free(f->d);
    f->d = NULL;
    for (int i = 0; i < 4; i++) {
        tc_release(caches[i]);
    }
}

/* ------------------------------------------------------------------- (h) */

static void test_notify_round_trip(void **state)
{
    pair_t *f = *state;
    kvx_notification_t *list = NULL;
    size_t count = 99;
    uint64_t t0 = test_now_ms();
    EXPECT_STATUS(kvx_kv_notify_fetch(f->p, 100, &list, &count), KVX_ERR_TIMEOUT);
    assert_true(test_now_ms() - t0 >= 90);
    assert_null(list);
    assert_int_equal(count, 0);

    /* A push, then a notification: the data is in place when it arrives. */
    tc_t src, dst;
    kvx_kv_cache_desc_t d =
        desc_of(4, KVX_DTYPE_FP16, KVX_MEM_HOST, 3, (const int64_t[]){8, E1, E2});
    tc_register(&dst, f->p, &d, 0);
    tc_register(&src, f->d, &d, 121);
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = dst.id, .batch_index = 6};
    OK(kvx_kv_push_cache(f->d, src.id, 3, &r, NULL));
    for (size_t t = 0; t < 4; t++) {
        model_move(&dst, t, 6, &src, t, 3, dst.esize);
    }
    uint8_t msg[300];
    for (size_t i = 0; i < sizeof(msg); i++) {
        msg[i] = (uint8_t)(i * 7); /* NUL bytes included */
    }
    OK(kvx_kv_notify(f->d, P_CLUSTER, "kv.ready", msg, sizeof(msg)));
    OK(kvx_kv_notify_fetch(f->p, 5000, &list, &count));
    assert_int_equal(count, 1);
    assert_string_equal(list[0].name, "kv.ready");
    assert_int_equal(list[0].msg_len, sizeof(msg));
    assert_memory_equal(list[0].msg, msg, sizeof(msg));
    assert_non_null(list[0].sender);
    kvx_notify_free(list, count);
    CHECK(&dst);

    /* Several, in order, possibly over several fetches. */
    for (int i = 0; i < 5; i++) {
        char name[16], body[16];
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(body, sizeof(body), "body-%d", i);
        OK(kvx_kv_notify(f->d, P_CLUSTER, name, body, strlen(body)));
    }
    int got = 0;
    uint64_t deadline = test_now_ms() + 5000;
    while (got < 5 && test_now_ms() < deadline) {
        list = NULL;
        count = 0;
        kvx_status_t s = kvx_kv_notify_fetch(f->p, 1000, &list, &count);
        if (s == KVX_ERR_TIMEOUT) {
            continue;
        }
        OK(s);
        for (size_t i = 0; i < count; i++, got++) {
            char name[16], body[16];
            snprintf(name, sizeof(name), "n%d", got);
            snprintf(body, sizeof(body), "body-%d", got);
            assert_string_equal(list[i].name, name);
            assert_int_equal(list[i].msg_len, strlen(body));
            assert_memory_equal(list[i].msg, body, strlen(body));
        }
        kvx_notify_free(list, count);
    }
    assert_int_equal(got, 5);
    EXPECT_STATUS(kvx_kv_notify_fetch(f->p, 10, &list, &count), KVX_ERR_TIMEOUT);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    tc_release(&src);
    tc_release(&dst);
}

/* ------------------------------------------------------------------- (i) */

static void test_allocated_caches(void **state)
{
    pair_t *f = *state;
    size_t used0 = 0, used2 = 0, now = 0;
    OK(kvx_device_used(0, &used0));
    OK(kvx_device_used(2, &used2));
    /* Device cache on P (device 0), host cache on D. */
    tc_t a, h;
    kvx_kv_cache_desc_t d =
        desc_of(4, KVX_DTYPE_FP16, KVX_MEM_DEVICE, 3, (const int64_t[]){8, E1, E2});
    tc_allocate(&a, f->p, &d, 0, 131);
    OK(kvx_device_used(0, &now));
    assert_true(now >= used0 + 4 * a.tsize);
    d.placement = KVX_MEM_HOST;
    tc_allocate(&h, f->d, &d, 0, 132);
    for (size_t i = 0; i < 4; i++) {
        int dev = 99;
        assert_non_null(a.t[i]);
        OK(kvx_device_locate(a.t[i], a.tsize, &dev));
        assert_int_equal(dev, 0);
        OK(kvx_device_locate(h.t[i], h.tsize, &dev));
        assert_int_equal(dev, -1);
        for (size_t j = 0; j < i; j++) {
            assert_true(a.t[i] != a.t[j]);
            assert_true(h.t[i] != h.t[j]);
        }
    }
    void *addrs[4];
    OK(kvx_kv_cache_tensors(f->p, a.id, addrs, 4));
    assert_memory_equal(addrs, a.t, sizeof(addrs));
    OK(kvx_kv_cache_tensors(f->d, h.id, addrs, 4));
    assert_memory_equal(addrs, h.t, sizeof(addrs));
    /* The memory holds what was written through the returned addresses, and
     * moves both ways. */
    CHECK(&a);
    CHECK(&h);
    kvx_kv_remote_cache_t r = {.cluster_id = P_CLUSTER, .cache_id = a.id, .batch_index = 7};
    OK(kvx_kv_pull_cache(f->d, &r, h.id, 0, NULL));
    for (size_t t = 0; t < 4; t++) {
        model_move(&h, t, 0, &a, t, 7, h.esize);
    }
    r.batch_index = 0;
    const uint64_t sb[3] = {5, 6, 7}, db[3] = {1, 2, 3};
    OK(kvx_kv_push_blocks(f->d, h.id, &r, sb, 3, db, 3, NULL));
    model_blocks(&a, 0, &h, 0, 4, sb, db, 3);
    CHECK(&a);
    CHECK(&h);

    /* An instance on device 2 allocates there. */
    kvx_kv_params_t extra = {.field_mask = KVX_KV_PARAM_FIELD_DEVICE_ID, .device_id = 2};
    kvx_kv_h x = kv_new_with(7, KVX_KV_ROLE_MIX, 0, &extra);
    tc_t b;
    d.placement = KVX_MEM_DEVICE;
    tc_allocate(&b, x, &d, 2, 133);
    int dev = 99;
    OK(kvx_device_locate(b.t[0], b.tsize, &dev));
    assert_int_equal(dev, 2);
    OK(kvx_device_used(2, &now));
    assert_true(now >= used2 + 4 * b.tsize);
    CHECK(&b);
    OK(kvx_kv_cache_deallocate(x, b.id));
    OK(kvx_device_used(2, &now));
    assert_int_equal(now, used2);
    /* destroy frees what is still allocated. */
    tc_t b2;
    tc_allocate(&b2, x, &d, 2, 134);
    kv_free(x);
    OK(kvx_device_used(2, &now));
    assert_int_equal(now, used2);

    OK(kvx_kv_cache_deallocate(f->p, a.id));
    OK(kvx_kv_cache_deallocate(f->d, h.id));
    OK(kvx_device_used(0, &now));
    assert_int_equal(now, used0);
    EXPECT_STATUS(kvx_kv_cache_tensors(f->p, a.id, addrs, 4), KVX_ERR_CACHE_NOT_FOUND);
    /* A freed id is not reused. */
    tc_t c;
    tc_allocate(&c, f->p, &d, 0, 135);
    assert_true(c.id > a.id);
    kv_free(f->d);
    kv_free(f->p);
    f->d = f->p = NULL;
    OK(kvx_device_used(0, &now));
    assert_int_equal(now, used0);
    tc_release(&a);
    tc_release(&h);
    tc_release(&b);
    tc_release(&b2);
    tc_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pull_push_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pull_equals_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_three_decoders, setup, teardown),
        cmocka_unit_test_teardown(test_role_switch_cycle, teardown_all),
        cmocka_unit_test_setup_teardown(test_unlink_cancels_pending_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_during_pull_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_late_registration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_id_with_memory_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocated_caches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

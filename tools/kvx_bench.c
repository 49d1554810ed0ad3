/*
 * kvx-bench: two-process benchmark of kvx on one host, with baselines
 * measured in the same run on the same sizes and access pattern.
 *
 *   kvx-bench [--mode engine|kv|all] [--transport tcp|shm|auto] [--quick]
 *             [--min SIZE] [--max SIZE] [--batch LIST] [--ops LIST]
 *             [--iters N] [--time S] [--kv-time S] [--blocks N] [--check] [--json]
 *             [--json-file FILE] [--max-seconds S]
 *
 * The parent process is the initiator (engine client / KV decoder). It
 * re-executes itself as the target (engine server / KV prompt) with the
 * hidden option --serve; the target binds port 0 for kvx and for a plain TCP
 * socket, publishes both ports in a port file (written atomically), and
 * serves a small control protocol on the plain socket: fill or check its
 * memory with a pattern (--check), and stream bytes for the raw-TCP baseline.
 *
 * engine mode: READ and WRITE of batches of 1 or 32 descriptors, each of
 * one block (4 KiB ... 64 MiB), at non-adjacent offsets scattered over one
 * registered region on each side (a seeded shuffle of block + 4 KiB slots).
 * kv mode: kvx_kv_pull_blocks / kvx_kv_push_blocks of N scattered blocks of
 * a model-shaped paged cache (32 layers x K, V = 64 fp16 tensors of
 * [pool, 16 tokens, 8 heads, 128 dims], 32 KiB per tensor per block), for
 * N/2 and N blocks so the cost can be checked to be linear in the data.
 *
 * Baselines, per point, same bytes:
 *   memcpy   the same scattered pieces between two local buffers (1 thread)
 *   raw-tcp  one plain blocking loopback TCP stream between the two
 *            processes, per operation: READ asks for the bytes with a
 *            24-byte request and receives them (one send() per <= 64 MiB,
 *            recv(MSG_WAITALL)); WRITE sends them and waits for an 8-byte
 *            acknowledgement; contiguous, TCP_NODELAY
 *   pvm      process_vm_readv (READ) / process_vm_writev (WRITE) of the
 *            same pieces straight from / into the target process, 1024
 *            iovecs per call; skipped with a note if not permitted
 * ratio = kvx GB/s / baseline GB/s, the baseline being raw-tcp for the tcp
 * transport and memcpy for shm and auto (auto takes the same-host path when
 * both ends are on one host, as they are here).
 *
 * Exit status: 0 if every transfer succeeded (and, with --check, every byte
 * matched); 1 on any failure; 2 on a usage error.
 */
#include <kvx/kvx.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

/* Engine mode. */
#define SLOT_GAP    (4 * KIB) /* bytes left between two slots of a region */
#define TAG_REGION  0x6b76786265ull
#define MAX_BATCHES 8

/* KV mode: the model-shaped cache. */
#define KV_LAYERS          32
#define KV_TENSORS         (2 * KV_LAYERS)
#define KV_BLOCK_TOKENS    16
#define KV_HEADS           8
#define KV_HEAD_DIM        128
#define KV_BLOCK_BYTES     ((size_t)KV_BLOCK_TOKENS * KV_HEADS * KV_HEAD_DIM * 2) /* fp16 */
#define KV_PROMPT_CLUSTER  1001
#define KV_DECODER_CLUSTER 2002

/* Baselines. */
#define RAW_BUF    (64 * MIB) /* largest single send() of the raw stream */
#define IOV_BATCH  1024       /* iovecs per process_vm_readv/writev call */
#define MIN_ITERS  3          /* samples per point, even past its time budget */
#define XFER_CAP_S 10.0       /* deadline of one transfer */

/* Control protocol on the plain TCP socket (both ends are this program). */
enum {
    CMD_INFO = 1,
    CMD_FILL = 2,
    CMD_CHECK = 3,
    CMD_RAW_READ = 4,
    CMD_RAW_WRITE = 5,
    CMD_QUIT = 6
};
#define CTL_MAX_OFFSETS (1u << 20)

typedef struct ctl_msg {
    uint32_t cmd;
    uint32_t n; /* offsets that follow (FILL, CHECK) */
    uint64_t key;
    uint64_t len;
} ctl_msg_t;

typedef struct ctl_reply {
    int64_t status; /* 0 or -1 */
    uint64_t value; /* CHECK: bad bytes; INFO: entries that follow */
} ctl_reply_t;

/* ------------------------------------------------------------- options */

/* What each point measures (--measure). */
enum { MEASURE_KVX = 1, MEASURE_MEMCPY = 2, MEASURE_RAW = 4, MEASURE_PVM = 8 };

typedef struct options {
    int engine, kv;
    char transport[16];
    size_t min_block, max_block;
    unsigned step; /* factor between block sizes */
    int do_read, do_write;
    size_t batches[MAX_BATCHES];
    size_t nbatches;
    unsigned iters;
    double point_s, base_s, kv_s;
    unsigned kv_blocks, kv_pool;
    size_t max_xfer;
    int json, check, quick, quiet;
    long busy_poll_us; /* < 0: kvx's default */
    unsigned measure;  /* MEASURE_* bits */
    const char *json_file;
    double max_seconds;
    /* target side (--serve) */
    const char *serve, *port_file;
    size_t region;
} options_t;

static options_t opt = {
    .engine = 1,
    .kv = 1,
    .busy_poll_us = -1,
    .transport = "",
    .min_block = 4 * KIB,
    .max_block = 64 * MIB,
    .step = 2,
    .do_read = 1,
    .do_write = 1,
    .batches = {1, 32},
    .nbatches = 2,
    .iters = 10000,
    .point_s = 0.3,
    .base_s = 0.2,
    .kv_s = 1.0,
    .kv_blocks = 128,
    .kv_pool = 256,
    .max_xfer = 256 * MIB,
    .measure = ~0u,
    .max_seconds = 120,
};

/* ------------------------------------------------------------ results */

typedef struct result {
    const char *mode; /* "engine" or "kv" */
    const char *op;   /* READ, WRITE (engine); pull, push (kv) */
    int write;        /* data goes initiator -> target */
    size_t block, batch, bytes, iters, kv_blocks;
    double gbps, ops_s, avg_us, p50_us, p99_us;
    double memcpy_gbps, rawtcp_gbps, pvm_gbps; /* < 0: not measured */
    double rawtcp_avg_us, rawtcp_p50_us;       /* latency of one raw-TCP op */
    const char *baseline;
    double baseline_gbps, ratio;
    long long bad; /* -1: not checked */
} result_t;

static result_t *g_results;
static size_t g_nresults, g_capresults;

static double g_t0, g_deadline;
static volatile pid_t g_child;
static char g_tmpdir[64];
static char g_port_file[128];
static FILE *g_json;
static FILE *g_info; /* stdout for tables, stderr with --json */
static size_t g_points_done, g_points_total;
static unsigned long long g_checked_xfers, g_checked_bytes, g_bad_bytes;
static int g_pvm_ok = -1; /* -1: not probed */
static char g_pvm_note[128];
static int g_progress_open;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int remaining_ms(void)
{
    double left = (g_deadline - now_s()) * 1e3;
    if (left < 1) {
        return 1;
    }
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int xfer_timeout_ms(void)
{
    int left = remaining_ms();
    return left < XFER_CAP_S * 1e3 ? left : (int)(XFER_CAP_S * 1e3);
}

static void progress_clear(void)
{
    if (g_progress_open) {
        fputs("\r\033[K", stderr);
        g_progress_open = 0;
    }
}

static void errf(const char *fmt, ...)
{
    progress_clear();
    va_list ap;
    va_start(ap, fmt);
    fputs(opt.serve ? "kvx-bench (target): " : "kvx-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int fail_kvx(const char *what, kvx_status_t st)
{
    errf("%s: %s (%s)\n  %s", what, kvx_status_string(st), kvx_status_name(st), kvx_last_error());
    return -1;
}

static int past_deadline(void)
{
    if (now_s() > g_deadline) {
        errf("ran past --max-seconds %.0f", opt.max_seconds);
        return 1;
    }
    return 0;
}

/* -------------------------------------------------------------- helpers */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ull

/* The --check pattern of piece @p i of tensor @p t in iteration @p key. */
static uint64_t pat_seed(uint64_t key, uint64_t t, uint64_t i)
{
    return mix64(key * GOLDEN ^ mix64((t << 40) ^ i));
}

static void pat_fill(uint8_t *p, size_t len, uint64_t seed)
{
    size_t w = 0;
    for (; w + 8 <= len; w += 8) {
        uint64_t v = seed + w * GOLDEN;
        memcpy(p + w, &v, 8);
    }
    for (; w < len; w++) {
        p[w] = (uint8_t)(seed >> (8 * (w & 7)));
    }
}

static size_t pat_bad(const uint8_t *p, size_t len, uint64_t seed)
{
    size_t bad = 0, w = 0;
    for (; w + 8 <= len; w += 8) {
        uint64_t v = seed + w * GOLDEN, got;
        memcpy(&got, p + w, 8);
        if (got != v) {
            for (int b = 0; b < 8; b++) {
                bad += ((got ^ v) >> (8 * b) & 0xff) != 0;
            }
        }
    }
    for (; w < len; w++) {
        bad += p[w] != (uint8_t)(seed >> (8 * (w & 7)));
    }
    return bad;
}

/* Anonymous memory, faulted in (so page faults are not measured). */
static void *map_region(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errf("mmap of %zu bytes: %s", len, strerror(errno));
        return NULL;
    }
    memset(p, 0x5a, len);
    return p;
}

static void unmap_region(void *p, size_t len)
{
    if (p != NULL) {
        munmap(p, len);
    }
}

/* "4K", "64KiB", "1M", "2G" or a number of bytes. */
static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) {
        return -1;
    }
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10;
        end++;
        break;
    case 'm':
    case 'M':
        shift = 20;
        end++;
        break;
    case 'g':
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (shift && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)) {
        end += strlen(end);
    }
    if (*end != '\0' || v == 0 || v > (SIZE_MAX >> shift)) {
        return -1;
    }
    *out = (size_t)(v << shift);
    return 0;
}

static const char *fmt_size(size_t v, char *buf, size_t len)
{
    if (v >= MIB && v % MIB == 0) {
        snprintf(buf, len, "%zuM", v / MIB);
    } else if (v >= KIB && v % KIB == 0) {
        snprintf(buf, len, "%zuK", v / KIB);
    } else {
        snprintf(buf, len, "%zu", v);
    }
    return buf;
}

/* ------------------------------------------------- sockets (blocking) */

static int send_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EPIPE;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* 0 on success, 1 on a clean EOF before any byte, -1 on error or timeout. */
static int recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, p + got, len - got, MSG_WAITALL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n == 0) {
            errno = ECONNRESET; /* closed by the peer */
            return got == 0 ? 1 : -1;
        }
        if (n < 0) {
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

static void sock_setup(int fd, double timeout_s)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = (time_t)timeout_s,
                         .tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int loopback_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        errf("raw socket: %s", strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

static int loopback_connect(int port, double timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0) {
        return -1;
    }
    sock_setup(fd, timeout_s); /* SO_SNDTIMEO also bounds connect() */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        errf("connect to the target's control port %d: %s", port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ============================================================= target */

/* What the target serves: nt bases of span bytes each (engine: its region;
 * kv: the 64 tensors of its pool). */
typedef struct target {
    size_t nt, span;
    uint8_t *bases[KV_TENSORS];
    uint64_t aux; /* engine: region length; kv: cache id */
} target_t;

static int publish_ports(const char *bound, int raw_port)
{
    const char *colon = strrchr(bound, ':');
    if (colon == NULL) {
        errf("engine name %s has no port", bound);
        return -1;
    }
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", opt.port_file);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s %d\n", colon + 1, raw_port) < 0 || fclose(f) != 0 ||
        rename(tmp, opt.port_file) != 0) {
        errf("port file %s: %s", opt.port_file, strerror(errno));
        return -1;
    }
    return 0;
}

/* FILL or CHECK: piece i of tensor t at bases[t] + offs[i], len bytes. */
static int target_pattern(const target_t *tg, const ctl_msg_t *m, const uint64_t *offs,
                          uint64_t *bad)
{
    *bad = 0;
    for (uint32_t i = 0; i < m->n; i++) {
        if (offs[i] > tg->span || m->len > tg->span - offs[i]) {
            errf("piece %u outside the served memory", i);
            return -1;
        }
    }
    for (size_t t = 0; t < tg->nt; t++) {
        for (uint32_t i = 0; i < m->n; i++) {
            uint8_t *p = tg->bases[t] + offs[i];
            uint64_t seed = pat_seed(m->key, t, i);
            if (m->cmd == CMD_FILL) {
                pat_fill(p, m->len, seed);
            } else {
                *bad += pat_bad(p, m->len, seed);
            }
        }
    }
    return 0;
}

static int target_loop(int fd, const target_t *tg)
{
    uint8_t *raw = map_region(RAW_BUF);
    uint64_t *offs = NULL;
    int rc = -1;
    if (raw == NULL) {
        return -1;
    }
    for (;;) {
        ctl_msg_t m;
        int r = recv_all(fd, &m, sizeof(m));
        if (r != 0) {
            errf("control connection %s before QUIT", r > 0 ? "closed" : "failed");
            break;
        }
        ctl_reply_t rep = {0, 0};
        if (m.cmd == CMD_RAW_READ) {
            size_t left = m.len;
            while (left > 0) {
                size_t n = left < RAW_BUF ? left : RAW_BUF;
                if (send_all(fd, raw, n) != 0) {
                    break;
                }
                left -= n;
            }
            if (left > 0) {
                errf("raw stream send: %s", strerror(errno));
                break;
            }
            continue;
        }
        if (m.cmd == CMD_RAW_WRITE) {
            size_t left = m.len;
            while (left > 0) {
                size_t n = left < RAW_BUF ? left : RAW_BUF;
                if (recv_all(fd, raw, n) != 0) {
                    break;
                }
                left -= n;
            }
            uint64_t ack = m.len;
            if (left > 0 || send_all(fd, &ack, sizeof(ack)) != 0) {
                errf("raw stream receive: %s", strerror(errno));
                break;
            }
            continue;
        }
        if (m.cmd == CMD_FILL || m.cmd == CMD_CHECK) {
            if (m.n == 0 || m.n > CTL_MAX_OFFSETS) {
                errf("bad piece count %u", m.n);
                break;
            }
            free(offs);
            offs = malloc(m.n * sizeof(*offs));
            if (offs == NULL || recv_all(fd, offs, m.n * sizeof(*offs)) != 0) {
                errf("control: short offsets");
                break;
            }
            if (target_pattern(tg, &m, offs, &rep.value) != 0) {
                rep.status = -1;
            }
            if (send_all(fd, &rep, sizeof(rep)) != 0) {
                break;
            }
            continue;
        }
        if (m.cmd == CMD_INFO) {
            uint64_t info[KV_TENSORS + 1];
            info[0] = tg->aux;
            for (size_t t = 0; t < tg->nt; t++) {
                info[t + 1] = (uint64_t)(uintptr_t)tg->bases[t];
            }
            rep.value = tg->nt;
            if (send_all(fd, &rep, sizeof(rep)) != 0 ||
                send_all(fd, info, (tg->nt + 1) * sizeof(uint64_t)) != 0) {
                break;
            }
            continue;
        }
        if (m.cmd == CMD_QUIT) {
            rc = send_all(fd, &rep, sizeof(rep));
            break;
        }
        errf("unknown control command %u", m.cmd);
        break;
    }
    free(offs);
    unmap_region(raw, RAW_BUF);
    return rc;
}

static int accept_control(int lfd)
{
    struct pollfd pfd = {.fd = lfd, .events = POLLIN};
    int r;
    do {
        r = poll(&pfd, 1, remaining_ms());
    } while (r < 0 && errno == EINTR);
    if (r <= 0) {
        errf("the initiator did not connect in time");
        return -1;
    }
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        errf("accept: %s", strerror(errno));
        return -1;
    }
    sock_setup(fd, opt.max_seconds);
    return fd;
}

static kvx_kv_cache_desc_t kv_pool_desc(unsigned pool)
{
    kvx_kv_cache_desc_t desc = {.field_mask = KVX_KV_CACHE_FIELD_PLACEMENT |
                                              KVX_KV_CACHE_FIELD_NUM_TENSORS |
                                              KVX_KV_CACHE_FIELD_DTYPE | KVX_KV_CACHE_FIELD_SHAPE,
                                .placement = KVX_MEM_HOST,
                                .num_tensors = KV_TENSORS,
                                .dtype = KVX_DTYPE_FP16,
                                .ndims = 4,
                                .dims = {pool, KV_BLOCK_TOKENS, KV_HEADS, KV_HEAD_DIM}};
    return desc;
}

static kvx_status_t kv_make(uint64_t cluster, kvx_kv_role_t role, const char *listen,
                            kvx_kv_h *kv_p)
{
    kvx_kv_params_t params = {.field_mask = KVX_KV_PARAM_FIELD_CLUSTER_ID |
                                            KVX_KV_PARAM_FIELD_ROLE |
                                            KVX_KV_PARAM_FIELD_SYNC_TIMEOUT,
                              .cluster_id = cluster,
                              .role = role,
                              .sync_timeout_ms = (unsigned)(XFER_CAP_S * 1e3)};
    if (listen != NULL) {
        params.field_mask |= KVX_KV_PARAM_FIELD_LISTEN;
        params.listen = listen;
    } else {
        params.field_mask |= KVX_KV_PARAM_FIELD_LOCAL_IP;
        params.local_ip = "127.0.0.1";
    }
    if (opt.busy_poll_us >= 0) {
        params.field_mask |= KVX_KV_PARAM_FIELD_BUSY_POLL;
        params.busy_poll_us = (unsigned)opt.busy_poll_us;
    }
    return kvx_kv_create(&params, kv_p);
}

static int serve(void)
{
    /* Bounded life: the initiator passes its remaining time (plus a margin);
     * SIGALRM's default action ends this process. */
    alarm((unsigned)opt.max_seconds + 1);
    int raw_port = 0, lfd = loopback_listen(&raw_port);
    if (lfd < 0) {
        return 1;
    }
    target_t tg = {0};
    kvx_engine_h engine = NULL;
    kvx_mem_h mem = NULL;
    kvx_kv_h kv = NULL;
    int64_t cache_id = 0;
    const char *bound = NULL;
    kvx_status_t st = KVX_OK;
    int rc = 1;

    if (strcmp(opt.serve, "engine") == 0) {
        kvx_engine_params_t ep = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = "127.0.0.1:0"};
        if ((st = kvx_engine_create(&ep, &engine)) != KVX_OK) {
            fail_kvx("create engine", st);
            goto out;
        }
        tg.nt = 1;
        tg.span = opt.region;
        tg.aux = opt.region;
        if ((tg.bases[0] = map_region(opt.region)) == NULL) {
            goto out;
        }
        kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS |
                                             KVX_MEM_PARAM_FIELD_LENGTH | KVX_MEM_PARAM_FIELD_TAG,
                               .address = tg.bases[0],
                               .length = opt.region,
                               .tag = TAG_REGION};
        if ((st = kvx_mem_register(engine, &mp, &mem)) != KVX_OK) {
            fail_kvx("register the region", st);
            goto out;
        }
        bound = kvx_engine_name(engine);
    } else {
        if ((st = kv_make(KV_PROMPT_CLUSTER, KVX_KV_ROLE_PROMPT, "127.0.0.1:0", &kv)) != KVX_OK) {
            fail_kvx("create the prompt instance", st);
            goto out;
        }
        kvx_kv_cache_desc_t desc = kv_pool_desc(opt.kv_pool);
        void *tensors[KV_TENSORS];
        if ((st = kvx_kv_cache_allocate(kv, &desc, &cache_id, tensors)) != KVX_OK) {
            fail_kvx("allocate the prompt's pool", st);
            goto out;
        }
        tg.nt = KV_TENSORS;
        tg.span = (size_t)opt.kv_pool * KV_BLOCK_BYTES;
        tg.aux = (uint64_t)cache_id;
        for (size_t t = 0; t < KV_TENSORS; t++) {
            tg.bases[t] = tensors[t];
            memset(tg.bases[t], 0x5a, tg.span);
        }
        bound = kvx_kv_listen_name(kv);
    }
    if (publish_ports(bound, raw_port) != 0) {
        goto out;
    }
    int cfd = accept_control(lfd);
    if (cfd < 0) {
        goto out;
    }
    rc = target_loop(cfd, &tg) == 0 ? 0 : 1;
    close(cfd);
out:
    close(lfd);
    if (engine != NULL) {
        if (mem != NULL) {
            /* A peer's READ can pin the memory a moment after it completed. */
            double until = now_s() + 2;
            while ((st = kvx_mem_deregister(engine, mem)) == KVX_ERR_BUSY && now_s() < until) {
                sleep_ms(2);
            }
        }
        kvx_engine_destroy(engine);
        unmap_region(tg.bases[0], opt.region);
    }
    if (kv != NULL) {
        size_t incoming = 1;
        double until = now_s() + 5;
        while (kvx_kv_link_count(kv, NULL, &incoming) == KVX_OK && incoming > 0 &&
               now_s() < until) {
            sleep_ms(2);
        }
        kvx_kv_destroy(kv);
    }
    return rc;
}

/* ========================================================== initiator */

static void on_fatal_signal(int sig)
{
    static const char msg[] = "kvx-bench: ran past --max-seconds (or interrupted); stopping\n";
    pid_t child = g_child;
    if (child > 0) {
        kill(child, SIGKILL);
    }
    if (g_port_file[0] != '\0') {
        unlink(g_port_file);
    }
    if (g_tmpdir[0] != '\0') {
        rmdir(g_tmpdir);
    }
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* nothing to do */
    }
    _exit(sig == SIGALRM ? 124 : 128 + sig);
}

/* A running target and the control connection to it. */
typedef struct peer {
    pid_t pid;
    int ctl;
    char remote[KVX_ENGINE_NAME_MAX];
    uint64_t aux;
    size_t nt;
    uint64_t bases[KV_TENSORS];
} peer_t;

static int wait_child(pid_t pid, double timeout_s)
{
    double until = now_s() + timeout_s;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            g_child = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                return 0;
            }
            if (WIFEXITED(status)) {
                errf("target exited with status %d", WEXITSTATUS(status));
            } else {
                errf("target killed by signal %d", WTERMSIG(status));
            }
            return -1;
        }
        if (r < 0 && errno != EINTR) {
            g_child = 0;
            errf("waitpid: %s", strerror(errno));
            return -1;
        }
        if (now_s() > until) {
            return 1;
        }
        sleep_ms(2);
    }
}

static void kill_child(pid_t pid)
{
    if (pid > 0 && g_child == pid) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g_child = 0;
    }
}

static int ctl_cmd(peer_t *p, uint32_t cmd, uint64_t key, uint64_t len, const uint64_t *offs,
                   uint32_t n, uint64_t *value)
{
    ctl_msg_t m = {.cmd = cmd, .n = n, .key = key, .len = len};
    ctl_reply_t rep;
    if (send_all(p->ctl, &m, sizeof(m)) != 0 ||
        (n > 0 && send_all(p->ctl, offs, n * sizeof(*offs)) != 0) ||
        recv_all(p->ctl, &rep, sizeof(rep)) != 0) {
        errf("control connection to the target: %s", strerror(errno));
        return -1;
    }
    if (rep.status != 0) {
        errf("target refused control command %u", cmd);
        return -1;
    }
    if (value != NULL) {
        *value = rep.value;
    }
    return 0;
}

/* Start the target and meet it: wait (with a deadline) for its port file,
 * then open the control connection. */
static int peer_start(peer_t *p, const char *mode, size_t region)
{
    memset(p, 0, sizeof(*p));
    p->ctl = -1;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        errf("readlink /proc/self/exe: %s", strerror(errno));
        return -1;
    }
    self[n] = '\0';
    char region_s[32], pool_s[32], secs_s[32];
    snprintf(region_s, sizeof(region_s), "%zu", region);
    snprintf(pool_s, sizeof(pool_s), "%u", opt.kv_pool);
    snprintf(secs_s, sizeof(secs_s), "%d", remaining_ms() / 1000 + 5);
    unlink(g_port_file);
    char *argv[] = {self,   "--serve",       (char *)mode, "--port-file", g_port_file, "--pool",
                    pool_s, "--max-seconds", secs_s,       "--region",    region_s,    NULL};
    if (region == 0) {
        argv[9] = NULL; /* kv: no region */
    }
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        errf("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        /* /proc/self/exe: this very binary, even if the file was rebuilt
         * (replaced) since this run started. */
        execv("/proc/self/exe", argv);
        execv(self, argv);
        _exit(127);
    }
    g_child = pid;
    p->pid = pid;

    /* Rendezvous: the file appears (renamed into place) once the target has
     * bound both ports and registered its memory. */
    double until = now_s() + 30;
    if (until > g_deadline) {
        until = g_deadline;
    }
    int kvx_port = 0, raw_port = 0;
    for (;;) {
        FILE *f = fopen(g_port_file, "r");
        if (f != NULL) {
            int ok = fscanf(f, "%d %d", &kvx_port, &raw_port) == 2;
            fclose(f);
            if (ok && kvx_port > 0 && kvx_port < 65536 && raw_port > 0 && raw_port < 65536) {
                break;
            }
        }
        int r = wait_child(pid, 0);
        if (r <= 0) {
            errf("target (%s) exited before publishing its ports", mode);
            return -1;
        }
        if (now_s() > until) {
            errf("target (%s) did not publish its ports in time", mode);
            kill_child(pid);
            return -1;
        }
        sleep_ms(2);
    }
    unlink(g_port_file);
    snprintf(p->remote, sizeof(p->remote), "127.0.0.1:%d", kvx_port);
    p->ctl = loopback_connect(raw_port, remaining_ms() / 1e3);
    if (p->ctl < 0) {
        kill_child(pid);
        return -1;
    }
    ctl_msg_t m = {.cmd = CMD_INFO};
    ctl_reply_t rep;
    uint64_t info[KV_TENSORS + 1];
    if (send_all(p->ctl, &m, sizeof(m)) != 0 || recv_all(p->ctl, &rep, sizeof(rep)) != 0 ||
        rep.value == 0 || rep.value > KV_TENSORS ||
        recv_all(p->ctl, info, (rep.value + 1) * sizeof(uint64_t)) != 0) {
        errf("no INFO from the target");
        kill_child(pid);
        return -1;
    }
    p->aux = info[0];
    p->nt = rep.value;
    memcpy(p->bases, info + 1, p->nt * sizeof(uint64_t));
    return 0;
}

/* Ask the target to quit and wait for it (bounded). */
static int peer_stop(peer_t *p)
{
    int rc = 0;
    if (p->pid <= 0) {
        return 0;
    }
    if (p->ctl >= 0) {
        rc = ctl_cmd(p, CMD_QUIT, 0, 0, NULL, 0, NULL);
        close(p->ctl);
        p->ctl = -1;
    }
    int r = wait_child(p->pid, 10);
    if (r > 0) {
        errf("target did not exit within 10 s; killing it");
        kill_child(p->pid);
        rc = -1;
    } else if (r < 0) {
        rc = -1;
    }
    p->pid = 0;
    return rc;
}

/* Whether process_vm_readv works on the target (once per run). */
static void pvm_probe(pid_t pid, uint64_t remote_addr)
{
    uint8_t byte;
    struct iovec l = {.iov_base = &byte, .iov_len = 1};
    struct iovec r = {.iov_base = (void *)(uintptr_t)remote_addr, .iov_len = 1};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) == 1) {
        g_pvm_ok = 1;
        return;
    }
    g_pvm_ok = 0;
    snprintf(g_pvm_note, sizeof(g_pvm_note), "pvm baseline skipped: process_vm_readv: %s%s",
             strerror(errno), errno == EPERM ? " (ptrace access to the target not permitted)" : "");
    fprintf(g_info, "# %s\n", g_pvm_note);
}

/* ------------------------------------------------------------ points */

/* The pieces of one point: piece i of tensor t moves between
 * lbase[t] + loff[i] (here) and rbase[t] + roff[i] (the target); the memcpy
 * baseline uses mbase[t] + roff[i] (a second local buffer) as the target. */
typedef struct layout {
    size_t nt, n, len;
    uint8_t *lbase[KV_TENSORS];
    uint8_t *mbase[KV_TENSORS];
    uint64_t rbase[KV_TENSORS];
    uint64_t *loff, *roff;
} layout_t;

typedef struct point {
    layout_t *lay;
    int write;
    peer_t *peer;
    /* engine */
    kvx_engine_h engine;
    kvx_xfer_desc_t *descs;
    /* kv */
    kvx_kv_h kv;
    int64_t cache_id;
    kvx_kv_remote_cache_t rcache;
    uint64_t *lblocks, *rblocks;
    /* baselines */
    uint8_t *raw;
    struct iovec *liov, *riov;
    size_t niov;
} point_t;

typedef int (*run_fn)(point_t *pt);

static int run_engine_xfer(point_t *pt)
{
    kvx_xfer_params_t xp = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT,
                            .timeout_ms = xfer_timeout_ms()};
    kvx_status_t st =
        kvx_xfer_sync(pt->engine, pt->peer->remote, pt->write ? KVX_OP_WRITE : KVX_OP_READ,
                      pt->descs, pt->lay->n, &xp);
    return st == KVX_OK ? 0 : fail_kvx(pt->write ? "WRITE" : "READ", st);
}

static int run_kv_xfer(point_t *pt)
{
    kvx_kv_xfer_params_t xp = {.field_mask = KVX_KV_XFER_FIELD_TIMEOUT,
                               .timeout_ms = xfer_timeout_ms()};
    size_t n = pt->lay->n;
    kvx_status_t st;
    if (pt->write) {
        st = kvx_kv_push_blocks(pt->kv, pt->cache_id, &pt->rcache, pt->lblocks, n, pt->rblocks, n,
                                &xp);
    } else {
        st = kvx_kv_pull_blocks(pt->kv, &pt->rcache, pt->cache_id, pt->rblocks, n, pt->lblocks, n,
                                &xp);
    }
    return st == KVX_OK ? 0 : fail_kvx(pt->write ? "push_blocks" : "pull_blocks", st);
}

static int run_memcpy(point_t *pt)
{
    const layout_t *l = pt->lay;
    for (size_t t = 0; t < l->nt; t++) {
        for (size_t i = 0; i < l->n; i++) {
            uint8_t *here = l->lbase[t] + l->loff[i], *there = l->mbase[t] + l->roff[i];
            if (pt->write) {
                memcpy(there, here, l->len);
            } else {
                memcpy(here, there, l->len);
            }
        }
    }
    return 0;
}

static int run_pvm(point_t *pt)
{
    for (size_t k = 0; k < pt->niov; k += IOV_BATCH) {
        size_t cnt = pt->niov - k < IOV_BATCH ? pt->niov - k : IOV_BATCH;
        ssize_t want = (ssize_t)(cnt * pt->lay->len), got;
        if (pt->write) {
            got = process_vm_writev(pt->peer->pid, pt->liov + k, cnt, pt->riov + k, cnt, 0);
        } else {
            got = process_vm_readv(pt->peer->pid, pt->liov + k, cnt, pt->riov + k, cnt, 0);
        }
        if (got != want) {
            errf("process_vm_%s: %zd of %zd bytes: %s", pt->write ? "writev" : "readv", got, want,
                 got < 0 ? strerror(errno) : "short");
            return -1;
        }
    }
    return 0;
}

static size_t layout_bytes(const layout_t *l)
{
    return l->nt * l->n * l->len;
}

static int run_raw(point_t *pt)
{
    size_t total = layout_bytes(pt->lay);
    ctl_msg_t m = {.cmd = pt->write ? CMD_RAW_WRITE : CMD_RAW_READ, .len = total};
    if (send_all(pt->peer->ctl, &m, sizeof(m)) != 0) {
        goto broken;
    }
    for (size_t left = total; left > 0;) {
        size_t n = left < RAW_BUF ? left : RAW_BUF;
        int r =
            pt->write ? send_all(pt->peer->ctl, pt->raw, n) : recv_all(pt->peer->ctl, pt->raw, n);
        if (r != 0) {
            goto broken;
        }
        left -= n;
    }
    if (pt->write) {
        uint64_t ack;
        if (recv_all(pt->peer->ctl, &ack, sizeof(ack)) != 0) {
            goto broken;
        }
        if (ack != total) {
            errno = EPROTO;
            goto broken;
        }
    }
    return 0;
broken:
    errf("raw TCP stream: %s", strerror(errno));
    return -1;
}

/* --check: fill the source of iteration @p key before the transfer. */
static int check_pre(point_t *pt, uint64_t key)
{
    const layout_t *l = pt->lay;
    if (!pt->write) {
        return ctl_cmd(pt->peer, CMD_FILL, key, l->len, l->roff, (uint32_t)l->n, NULL);
    }
    for (size_t t = 0; t < l->nt; t++) {
        for (size_t i = 0; i < l->n; i++) {
            pat_fill(l->lbase[t] + l->loff[i], l->len, pat_seed(key, t, i));
        }
    }
    return 0;
}

/* --check: count the bad bytes of the destination after the transfer. */
static int check_post(point_t *pt, uint64_t key, uint64_t *bad)
{
    const layout_t *l = pt->lay;
    *bad = 0;
    if (pt->write) {
        if (ctl_cmd(pt->peer, CMD_CHECK, key, l->len, l->roff, (uint32_t)l->n, bad) != 0) {
            return -1;
        }
    } else {
        for (size_t t = 0; t < l->nt; t++) {
            for (size_t i = 0; i < l->n; i++) {
                *bad += pat_bad(l->lbase[t] + l->loff[i], l->len, pat_seed(key, t, i));
            }
        }
    }
    g_checked_xfers++;
    g_checked_bytes += layout_bytes(l);
    g_bad_bytes += *bad;
    return 0;
}

typedef struct stats {
    size_t n;
    double total_s, avg_us, p50_us, p99_us;
    long long bad;
} stats_t;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double *g_samples;

/* One warm-up, then timed runs until the budget or --iters is reached. */
static int measure(point_t *pt, run_fn fn, double budget_s, int check, stats_t *out)
{
    static uint64_t key = 0x100;
    memset(out, 0, sizeof(*out));
    out->bad = check ? 0 : -1;
    size_t min_iters = opt.iters < MIN_ITERS ? opt.iters : MIN_ITERS;
    size_t n = 0;
    double start = 0;
    for (int warm = 1;; warm = 0) {
        if (!warm && n >= opt.iters) {
            break;
        }
        if (!warm && n >= min_iters && now_s() - start >= budget_s) {
            break;
        }
        if (past_deadline()) {
            return -1;
        }
        key++;
        if (check && check_pre(pt, key) != 0) {
            return -1;
        }
        double t0 = now_s();
        if (fn(pt) != 0) {
            return -1;
        }
        double dt = now_s() - t0;
        if (check) {
            uint64_t bad;
            if (check_post(pt, key, &bad) != 0) {
                return -1;
            }
            out->bad += (long long)bad;
        }
        if (warm) {
            start = now_s();
        } else {
            g_samples[n++] = dt;
        }
    }
    qsort(g_samples, n, sizeof(double), cmp_double);
    out->n = n;
    for (size_t i = 0; i < n; i++) {
        out->total_s += g_samples[i];
    }
    out->avg_us = out->total_s / (double)n * 1e6;
    /* nearest rank */
    size_t i50 = (n + 1) / 2, i99 = (size_t)((double)n * 0.99 + 0.999999);
    out->p50_us = g_samples[(i50 ? i50 : 1) - 1] * 1e6;
    out->p99_us = g_samples[(i99 ? i99 : 1) - 1] * 1e6;
    return 0;
}

/* raw-tcp for tcp; memcpy for shm and auto (auto takes the same-host path
 * when both ends are on one host, as here). */
static const char *baseline_name(void)
{
    return strcmp(opt.transport, "tcp") == 0 ? "raw-tcp" : "memcpy";
}

static void progress(const char *mode, const char *op, size_t block, size_t batch)
{
    if (opt.quiet) {
        return;
    }
    char b[24];
    int tty = isatty(2);
    fprintf(stderr, "%skvx-bench: [%zu/%zu] %s %s %s x%zu (%.0f s)%s", tty ? "\r\033[K" : "",
            g_points_done + 1, g_points_total, mode, op, fmt_size(block, b, sizeof(b)), batch,
            now_s() - g_t0, tty ? "" : "\n");
    g_progress_open = tty;
}

static void print_header(void)
{
    if (opt.json) {
        return;
    }
    printf("%-6s %-5s %-5s %6s %6s %7s %11s %9s %9s %9s %8s %8s %-8s %8s %6s\n", "mode", "trans",
           "op", "block", "batch", "GB/s", "ops/s", "avg_us", "p50_us", "p99_us", "memcpy", "pvm",
           "baseline", "base", "ratio");
}

static void json_num(char *buf, size_t len, double v)
{
    if (v < 0) {
        snprintf(buf, len, "null");
    } else {
        snprintf(buf, len, "%.6g", v);
    }
}

/* A table cell: the value, or "-" where it was not measured (< 0). */
static const char *cell(char *buf, size_t len, int width, int prec, double v)
{
    if (v < 0) {
        snprintf(buf, len, "%*s", width, "-");
    } else {
        snprintf(buf, len, "%*.*f", width, prec, v);
    }
    return buf;
}

static void emit(const result_t *r)
{
    char b[24], c[11][24];
    progress_clear();
    if (!opt.json) {
        printf("%-6s %-5s %-5s %6s %6zu %s %s %s %s %s %s %s %-8s %s %s%s\n", r->mode,
               opt.transport, r->op, fmt_size(r->block, b, sizeof(b)), r->batch,
               cell(c[0], 24, 7, 3, r->gbps), cell(c[1], 24, 11, 0, r->ops_s),
               cell(c[2], 24, 9, 1, r->avg_us), cell(c[3], 24, 9, 1, r->p50_us),
               cell(c[4], 24, 9, 1, r->p99_us), cell(c[5], 24, 8, 2, r->memcpy_gbps),
               cell(c[6], 24, 8, 2, r->pvm_gbps), r->baseline,
               cell(c[7], 24, 8, 3, r->baseline_gbps), cell(c[8], 24, 6, 2, r->ratio),
               r->bad > 0 ? "  BAD BYTES" : "");
        fflush(stdout);
    }
    const double nums[] = {r->gbps,        r->ops_s,         r->avg_us,        r->p50_us,
                           r->p99_us,      r->baseline_gbps, r->ratio,         r->memcpy_gbps,
                           r->rawtcp_gbps, r->pvm_gbps,      r->rawtcp_avg_us, r->rawtcp_p50_us};
    char js[12][24], bad[24], line[1024];
    for (size_t i = 0; i < 12; i++) {
        json_num(js[i], sizeof(js[i]), nums[i]);
    }
    if (r->bad < 0) {
        snprintf(bad, sizeof(bad), "null");
    } else {
        snprintf(bad, sizeof(bad), "%lld", r->bad);
    }
    int len = snprintf(
        line, sizeof(line),
        "{\"mode\":\"%s\",\"transport\":\"%s\",\"op\":\"%s\",\"block\":%zu,\"batch\":%zu,"
        "\"bytes\":%zu,\"iters\":%zu,\"gbps\":%s,\"ops_per_s\":%s,\"avg_us\":%s,\"p50_us\":%s,"
        "\"p99_us\":%s,\"baseline\":\"%s\",\"baseline_gbps\":%s,\"ratio\":%s,"
        "\"memcpy_gbps\":%s,\"rawtcp_gbps\":%s,\"pvm_gbps\":%s,\"rawtcp_avg_us\":%s,"
        "\"rawtcp_p50_us\":%s,\"bad_bytes\":%s",
        r->mode, opt.transport, r->op, r->block, r->batch, r->bytes, r->iters, js[0], js[1], js[2],
        js[3], js[4], r->baseline, js[5], js[6], js[7], js[8], js[9], js[10], js[11], bad);
    if (r->kv_blocks > 0 && len > 0 && (size_t)len < sizeof(line)) {
        len += snprintf(line + len, sizeof(line) - (size_t)len, ",\"kv_blocks\":%zu", r->kv_blocks);
    }
    if (len > 0 && (size_t)len < sizeof(line) - 2) {
        snprintf(line + len, sizeof(line) - (size_t)len, "}");
    }
    if (opt.json) {
        printf("%s\n", line);
        fflush(stdout);
    }
    if (g_json != NULL) {
        fprintf(g_json, "%s\n", line);
        fflush(g_json);
    }
}

static int add_result(const result_t *r)
{
    if (g_nresults == g_capresults) {
        size_t cap = g_capresults ? 2 * g_capresults : 64;
        result_t *p = realloc(g_results, cap * sizeof(*p));
        if (p == NULL) {
            errf("out of memory");
            return -1;
        }
        g_results = p;
        g_capresults = cap;
    }
    g_results[g_nresults++] = *r;
    return 0;
}

/* Measure kvx and the baselines on one point and print it. */
static int run_point(point_t *pt, run_fn kvx_fn, const char *mode, const char *op, size_t block,
                     size_t batch, size_t kv_blocks)
{
    const layout_t *l = pt->lay;
    size_t bytes = layout_bytes(l);
    progress(mode, op, block, batch);

    /* iovecs of the pvm baseline */
    pt->niov = l->nt * l->n;
    for (size_t t = 0, k = 0; t < l->nt; t++) {
        for (size_t i = 0; i < l->n; i++, k++) {
            pt->liov[k] = (struct iovec){l->lbase[t] + l->loff[i], l->len};
            pt->riov[k] = (struct iovec){(void *)(uintptr_t)(l->rbase[t] + l->roff[i]), l->len};
        }
    }

    result_t r = {.mode = mode,
                  .op = op,
                  .write = pt->write,
                  .block = block,
                  .batch = batch,
                  .bytes = bytes,
                  .kv_blocks = kv_blocks,
                  .gbps = -1,
                  .ops_s = -1,
                  .avg_us = -1,
                  .p50_us = -1,
                  .p99_us = -1,
                  .memcpy_gbps = -1,
                  .rawtcp_gbps = -1,
                  .pvm_gbps = -1,
                  .rawtcp_avg_us = -1,
                  .rawtcp_p50_us = -1,
                  .baseline = baseline_name(),
                  .baseline_gbps = -1,
                  .ratio = -1,
                  .bad = -1};
    stats_t s;
    if (opt.measure & MEASURE_KVX) {
        double budget = strcmp(mode, "kv") == 0 ? opt.kv_s : opt.point_s;
        if (measure(pt, kvx_fn, budget, opt.check, &s) != 0) {
            return -1;
        }
        r.iters = s.n;
        r.gbps = (double)bytes * (double)s.n / s.total_s / 1e9;
        r.ops_s = (double)batch * (double)s.n / s.total_s;
        r.avg_us = s.avg_us;
        r.p50_us = s.p50_us;
        r.p99_us = s.p99_us;
        r.bad = s.bad;
    }
    if (opt.measure & MEASURE_MEMCPY) {
        if (measure(pt, run_memcpy, opt.base_s, 0, &s) != 0) {
            return -1;
        }
        r.memcpy_gbps = (double)bytes * (double)s.n / s.total_s / 1e9;
    }
    if (opt.measure & MEASURE_RAW) {
        if (measure(pt, run_raw, opt.base_s, 0, &s) != 0) {
            return -1;
        }
        r.rawtcp_gbps = (double)bytes * (double)s.n / s.total_s / 1e9;
        r.rawtcp_avg_us = s.avg_us;
        r.rawtcp_p50_us = s.p50_us;
    }
    if ((opt.measure & MEASURE_PVM) && g_pvm_ok == 1) {
        if (measure(pt, run_pvm, opt.base_s, 0, &s) != 0) {
            return -1;
        }
        r.pvm_gbps = (double)bytes * (double)s.n / s.total_s / 1e9;
    }
    r.baseline_gbps = strcmp(r.baseline, "memcpy") == 0 ? r.memcpy_gbps : r.rawtcp_gbps;
    if (r.gbps >= 0 && r.baseline_gbps > 0) {
        r.ratio = r.gbps / r.baseline_gbps;
    }
    g_points_done++;
    emit(&r);
    if (r.bad > 0) {
        errf("%s %s block %zu batch %zu: %lld bad bytes", mode, op, block, batch, r.bad);
    }
    return add_result(&r);
}

/* n distinct slots out of nslots, in a seeded random order. */
static int pick_slots(uint64_t *out, size_t n, size_t nslots, size_t stride, uint64_t seed)
{
    uint32_t *idx = malloc(nslots * sizeof(*idx));
    if (idx == NULL || n > nslots) {
        free(idx);
        errf("cannot place %zu pieces in %zu slots", n, nslots);
        return -1;
    }
    for (size_t i = 0; i < nslots; i++) {
        idx[i] = (uint32_t)i;
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)(mix64(seed + i) % (nslots - i));
        uint32_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
        out[i] = (uint64_t)idx[i] * stride;
    }
    free(idx);
    return 0;
}

/* ------------------------------------------------------------- engine */

static int engine_point_fits(size_t block, size_t batch)
{
    return block <= opt.max_xfer / batch;
}

static int run_engine_mode(void)
{
    /* The region: large enough for the largest transfer of the sweep,
     * block + gap per piece. */
    size_t region = 0, npoints = 0, skipped = 0, max_batch = 1;
    for (size_t bi = 0; bi < opt.nbatches; bi++) {
        size_t batch = opt.batches[bi];
        for (size_t block = opt.min_block; block <= opt.max_block; block *= opt.step) {
            if (!engine_point_fits(block, batch)) {
                skipped++;
                continue;
            }
            size_t need = batch * (block + SLOT_GAP);
            region = need > region ? need : region;
            max_batch = batch > max_batch ? batch : max_batch;
            npoints++;
        }
    }
    if (skipped > 0) {
        fprintf(g_info,
                "# engine: %zu (block, batch) sizes skipped: one transfer would exceed "
                "--max-xfer %zu MiB\n",
                skipped, opt.max_xfer / MIB);
    }
    if (npoints == 0) {
        return 0;
    }
    region = (region + MIB - 1) / MIB * MIB;

    peer_t peer;
    if (peer_start(&peer, "engine", region) != 0) {
        return -1;
    }
    int rc = -1;
    kvx_engine_h engine = NULL;
    kvx_mem_h mem = NULL;
    uint8_t *local = NULL, *other = NULL, *raw = NULL;
    kvx_xfer_desc_t *descs = NULL;
    uint64_t *loff = NULL, *roff = NULL;
    struct iovec *liov = NULL, *riov = NULL;
    kvx_status_t st;

    kvx_engine_params_t ep = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = "127.0.0.1"};
    if (opt.busy_poll_us >= 0) {
        ep.field_mask |= KVX_ENGINE_PARAM_FIELD_BUSY_POLL;
        ep.busy_poll_us = (unsigned)opt.busy_poll_us;
    }
    if ((st = kvx_engine_create(&ep, &engine)) != KVX_OK) {
        fail_kvx("create engine", st);
        goto out;
    }
    double until = now_s() + 10;
    while ((st = kvx_engine_connect(engine, peer.remote, 1000)) != KVX_OK &&
           st != KVX_ERR_ALREADY_CONNECTED && now_s() < until && now_s() < g_deadline) {
        sleep_ms(20);
    }
    if (st != KVX_OK) {
        fail_kvx("connect", st);
        goto out;
    }
    kvx_remote_mem_t mems[16];
    size_t nmem = 0;
    if ((st = kvx_engine_remote_mem(engine, peer.remote, mems, 16, &nmem, 0)) != KVX_OK) {
        fail_kvx("remote memory table", st);
        goto out;
    }
    uint64_t rbase = 0;
    for (size_t i = 0; i < nmem && i < 16; i++) {
        if (mems[i].tag == TAG_REGION && mems[i].length >= region) {
            rbase = mems[i].address;
        }
    }
    if (rbase == 0 || rbase != peer.bases[0]) {
        errf("the target's region is not in its memory table");
        goto out;
    }
    if ((local = map_region(region)) == NULL || (other = map_region(region)) == NULL ||
        (raw = map_region(RAW_BUF)) == NULL) {
        goto out;
    }
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = local,
                           .length = region};
    if ((st = kvx_mem_register(engine, &mp, &mem)) != KVX_OK) {
        fail_kvx("register", st);
        goto out;
    }
    descs = calloc(max_batch, sizeof(*descs));
    loff = calloc(max_batch, sizeof(*loff));
    roff = calloc(max_batch, sizeof(*roff));
    liov = calloc(max_batch, sizeof(*liov));
    riov = calloc(max_batch, sizeof(*riov));
    if (descs == NULL || loff == NULL || roff == NULL || liov == NULL || riov == NULL) {
        errf("out of memory");
        goto out;
    }
    if ((opt.measure & MEASURE_PVM) && g_pvm_ok < 0) {
        pvm_probe(peer.pid, rbase);
    }

    layout_t lay = {.nt = 1, .loff = loff, .roff = roff};
    lay.lbase[0] = local;
    lay.mbase[0] = other;
    lay.rbase[0] = rbase;
    point_t pt = {.lay = &lay,
                  .peer = &peer,
                  .engine = engine,
                  .descs = descs,
                  .raw = raw,
                  .liov = liov,
                  .riov = riov};
    for (int w = 0; w < 2; w++) {
        if ((w == 0 && !opt.do_read) || (w == 1 && !opt.do_write)) {
            continue;
        }
        pt.write = w;
        for (size_t bi = 0; bi < opt.nbatches; bi++) {
            size_t batch = opt.batches[bi];
            for (size_t block = opt.min_block; block <= opt.max_block; block *= opt.step) {
                if (!engine_point_fits(block, batch)) {
                    continue;
                }
                size_t stride = block + SLOT_GAP, nslots = region / stride;
                uint64_t seed = mix64(block * 31 + batch);
                if (pick_slots(loff, batch, nslots, stride, seed) != 0 ||
                    pick_slots(roff, batch, nslots, stride, ~seed) != 0) {
                    goto out;
                }
                lay.n = batch;
                lay.len = block;
                for (size_t i = 0; i < batch; i++) {
                    descs[i] = (kvx_xfer_desc_t){local + loff[i], rbase + roff[i], block};
                }
                if (run_point(&pt, run_engine_xfer, "engine", w ? "WRITE" : "READ", block, batch,
                              0) != 0) {
                    goto out;
                }
            }
        }
    }
    rc = 0;
out:
    if (engine != NULL) {
        kvx_engine_disconnect(engine, peer.remote, 1000);
        if (mem != NULL) {
            kvx_mem_deregister(engine, mem);
        }
        kvx_engine_destroy(engine);
    }
    if (peer_stop(&peer) != 0) {
        rc = -1;
    }
    unmap_region(local, region);
    unmap_region(other, region);
    unmap_region(raw, RAW_BUF);
    free(descs);
    free(loff);
    free(roff);
    free(liov);
    free(riov);
    return rc;
}

/* ----------------------------------------------------------------- kv */

/* @p n distinct blocks of a pool, in the scattered order a paged allocator
 * hands out after some churn (a seeded shuffle), as kvx-demo does. */
static int kv_block_table(uint64_t *table, size_t n, size_t pool, uint64_t seed)
{
    uint64_t *all = malloc(pool * sizeof(*all));
    if (all == NULL) {
        return -1;
    }
    for (size_t i = 0; i < pool; i++) {
        all[i] = i;
    }
    for (size_t i = pool - 1; i > 0; i--) {
        size_t j = (size_t)(mix64(seed + i) % (i + 1));
        uint64_t t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    memcpy(table, all, n * sizeof(*table));
    free(all);
    return 0;
}

/* Spans the transfer moves per tensor: runs of consecutive blocks on both
 * sides move as one piece. */
static size_t kv_runs(const uint64_t *a, const uint64_t *b, size_t n)
{
    size_t runs = 0;
    for (size_t k = 0; k < n;) {
        size_t len = 1;
        while (k + len < n && a[k + len] == a[k] + len && b[k + len] == b[k] + len) {
            len++;
        }
        runs++;
        k += len;
    }
    return runs;
}

static int run_kv_mode(void)
{
    size_t pool = opt.kv_pool, n_max = opt.kv_blocks;
    size_t tensor_bytes = pool * KV_BLOCK_BYTES;
    peer_t peer;
    if (peer_start(&peer, "kv", 0) != 0) {
        return -1;
    }
    int rc = -1;
    kvx_kv_h kv = NULL;
    int64_t cache_id = 0;
    int linked = 0;
    void *tensors[KV_TENSORS];
    uint8_t *other = NULL, *raw = NULL;
    uint64_t *lblocks = NULL, *rblocks = NULL, *loff = NULL, *roff = NULL;
    struct iovec *liov = NULL, *riov = NULL;
    kvx_status_t st;
    kvx_kv_cluster_t cluster = {.remote_cluster_id = KV_PROMPT_CLUSTER, .remote = peer.remote};

    if (peer.nt != KV_TENSORS) {
        errf("the target serves %zu tensors, not %d", peer.nt, KV_TENSORS);
        goto out;
    }
    if ((st = kv_make(KV_DECODER_CLUSTER, KVX_KV_ROLE_DECODER, NULL, &kv)) != KVX_OK) {
        fail_kvx("create the decoder instance", st);
        goto out;
    }
    kvx_kv_cache_desc_t desc = kv_pool_desc(opt.kv_pool);
    if ((st = kvx_kv_cache_allocate(kv, &desc, &cache_id, tensors)) != KVX_OK) {
        fail_kvx("allocate the decoder's pool", st);
        cache_id = 0;
        goto out;
    }
    for (size_t t = 0; t < KV_TENSORS; t++) {
        memset(tensors[t], 0x5a, tensor_bytes);
    }
    if ((other = map_region(KV_TENSORS * tensor_bytes)) == NULL ||
        (raw = map_region(RAW_BUF)) == NULL) {
        goto out;
    }
    double until = now_s() + 10;
    for (;;) {
        st = kvx_kv_link(kv, &cluster, 1, 1000, NULL);
        if ((st != KVX_ERR_CONNECTION_REFUSED && st != KVX_ERR_TIMEOUT) || now_s() > until ||
            now_s() > g_deadline) {
            break;
        }
        sleep_ms(20);
    }
    if (st != KVX_OK) {
        fail_kvx("link to the prompt", st);
        goto out;
    }
    linked = 1;
    lblocks = calloc(n_max, sizeof(*lblocks));
    rblocks = calloc(n_max, sizeof(*rblocks));
    loff = calloc(n_max, sizeof(*loff));
    roff = calloc(n_max, sizeof(*roff));
    liov = calloc(n_max * KV_TENSORS, sizeof(*liov));
    riov = calloc(n_max * KV_TENSORS, sizeof(*riov));
    if (lblocks == NULL || rblocks == NULL || loff == NULL || roff == NULL || liov == NULL ||
        riov == NULL || kv_block_table(rblocks, n_max, pool, 0x5eed0001) != 0 ||
        kv_block_table(lblocks, n_max, pool, 0x5eed0002) != 0) {
        errf("out of memory");
        goto out;
    }
    for (size_t k = 0; k < n_max; k++) {
        loff[k] = lblocks[k] * KV_BLOCK_BYTES;
        roff[k] = rblocks[k] * KV_BLOCK_BYTES;
    }
    if ((opt.measure & MEASURE_PVM) && g_pvm_ok < 0) {
        pvm_probe(peer.pid, peer.bases[0]);
    }
    layout_t lay = {.nt = KV_TENSORS, .len = KV_BLOCK_BYTES, .loff = loff, .roff = roff};
    for (size_t t = 0; t < KV_TENSORS; t++) {
        lay.lbase[t] = tensors[t];
        lay.mbase[t] = other + t * tensor_bytes;
        lay.rbase[t] = peer.bases[t];
    }
    point_t pt = {.lay = &lay,
                  .peer = &peer,
                  .kv = kv,
                  .cache_id = cache_id,
                  .rcache = {.cluster_id = KV_PROMPT_CLUSTER,
                             .cache_id = (int64_t)peer.aux,
                             .batch_index = 0},
                  .lblocks = lblocks,
                  .rblocks = rblocks,
                  .raw = raw,
                  .liov = liov,
                  .riov = riov};
    size_t sizes[2] = {n_max / 2, n_max};
    for (int w = 0; w < 2; w++) {
        if ((w == 0 && !opt.do_read) || (w == 1 && !opt.do_write)) {
            continue;
        }
        pt.write = w;
        for (int si = 0; si < 2; si++) {
            size_t n = sizes[si];
            if (n == 0 || (si == 0 && n == n_max)) {
                continue;
            }
            lay.n = n;
            size_t spans = kv_runs(rblocks, lblocks, n) * KV_TENSORS;
            if (run_point(&pt, run_kv_xfer, "kv", w ? "push" : "pull", KV_BLOCK_BYTES, spans, n) !=
                0) {
                goto out;
            }
        }
    }
    rc = 0;
out:
    if (kv != NULL) {
        if (linked && (st = kvx_kv_unlink(kv, &cluster, 1, 5000, 0, NULL)) != KVX_OK) {
            rc = fail_kvx("unlink", st);
        }
        if (cache_id > 0 && (st = kvx_kv_cache_deallocate(kv, cache_id)) != KVX_OK) {
            rc = fail_kvx("deallocate", st);
        }
        kvx_kv_destroy(kv);
    }
    if (peer_stop(&peer) != 0) {
        rc = -1;
    }
    unmap_region(other, KV_TENSORS * tensor_bytes);
    unmap_region(raw, RAW_BUF);
    free(lblocks);
    free(rblocks);
    free(loff);
    free(roff);
    free(liov);
    free(riov);
    return rc;
}

/* ------------------------------------------------------------ targets */

static const result_t *find(const char *mode, const char *op, size_t block, size_t batch,
                            size_t kv_blocks)
{
    for (size_t i = 0; i < g_nresults; i++) {
        const result_t *r = &g_results[i];
        if (strcmp(r->mode, mode) == 0 && strcmp(r->op, op) == 0 &&
            (block == 0 || r->block == block) && (batch == 0 || r->batch == batch) &&
            (kv_blocks == 0 || r->kv_blocks == kv_blocks)) {
            return r;
        }
    }
    return NULL;
}

static const char *verdict(int ok)
{
    return ok ? "HOLDS" : "MISSES";
}

/* The goals of the project's issue, as ratios to the baselines of this run.
 * Informative: they do not change the exit status. */
static void print_targets(void)
{
    FILE *o = g_info;
    int tcp = strcmp(baseline_name(), "raw-tcp") == 0;
    char b[24];
    fprintf(o, "# targets (transport %s; ratios to baselines measured in this run):\n",
            opt.transport);

    /* shm KV pull >= 0.8 x memcpy */
    const result_t *kvp = find("kv", "pull", 0, 0, opt.kv_blocks);
    if (kvp != NULL && kvp->memcpy_gbps > 0) {
        double x = kvp->gbps / kvp->memcpy_gbps;
        if (tcp) {
            fprintf(o,
                    "#   kv pull %u blocks x %d tensors x 32K >= 0.8 x memcpy: shm target, n/a to "
                    "%s (here %.2f x memcpy)\n",
                    opt.kv_blocks, KV_TENSORS, opt.transport, x);
        } else {
            fprintf(o, "#   kv pull %u blocks >= 0.8 x memcpy: %s (%.3f x memcpy)\n", opt.kv_blocks,
                    verdict(x >= 0.8), x);
        }
    }
    if (tcp) {
        /* READ and WRITE at >= 256 KiB >= 0.8 x raw TCP */
        for (int w = 0; w < 2; w++) {
            size_t n = 0, miss = 0;
            const result_t *worst = NULL;
            for (size_t i = 0; i < g_nresults; i++) {
                const result_t *r = &g_results[i];
                if (strcmp(r->mode, "engine") != 0 || r->write != w || r->block < 256 * KIB ||
                    r->ratio < 0) {
                    continue;
                }
                n++;
                miss += r->ratio < 0.8;
                if (worst == NULL || r->ratio < worst->ratio) {
                    worst = r;
                }
            }
            if (worst != NULL) {
                fprintf(o,
                        "#   %-5s >= 256K >= 0.8 x raw TCP: %s (holds at %zu of %zu points; worst "
                        "%.2f at %s x%zu: %.2f vs %.2f GB/s)\n",
                        w ? "WRITE" : "READ", verdict(miss == 0), n - miss, n, worst->ratio,
                        fmt_size(worst->block, b, sizeof(b)), worst->batch, worst->gbps,
                        worst->baseline_gbps);
            }
        }
        for (int w = 0; w < 2; w++) {
            const char *op = w ? "WRITE" : "READ";
            const result_t *r = find("engine", op, 4 * KIB, 32, 0);
            if (r != NULL) {
                fprintf(o, "#   %-5s 4K x32 >= 150k ops/s: %s (%.0f ops/s = %.2f x target)\n", op,
                        verdict(r->ops_s >= 150e3), r->ops_s, r->ops_s / 150e3);
            }
        }
        for (int w = 0; w < 2; w++) {
            const char *op = w ? "WRITE" : "READ";
            const result_t *r = find("engine", op, 4 * KIB, 1, 0);
            if (r != NULL) {
                fprintf(o,
                        "#   %-5s 4K x1 avg <= 30 us: %s (avg %.1f us, p50 %.1f, p99 %.1f; raw "
                        "TCP 4K op: avg %.1f us, p50 %.1f)\n",
                        op, verdict(r->avg_us <= 30), r->avg_us, r->p50_us, r->p99_us,
                        r->rawtcp_avg_us, r->rawtcp_p50_us);
            }
        }
    }
    /* p99 <= 3 x avg everywhere */
    size_t miss = 0;
    const result_t *worst = NULL;
    for (size_t i = 0; i < g_nresults; i++) {
        const result_t *r = &g_results[i];
        miss += r->p99_us > 3 * r->avg_us;
        if (worst == NULL || r->p99_us / r->avg_us > worst->p99_us / worst->avg_us) {
            worst = r;
        }
    }
    if (worst != NULL) {
        fprintf(o,
                "#   p99 <= 3 x avg at every point: %s (holds at %zu of %zu points; worst %.2f x "
                "at %s %s %s x%zu)\n",
                verdict(miss == 0), g_nresults - miss, g_nresults, worst->p99_us / worst->avg_us,
                worst->mode, worst->op, fmt_size(worst->block, b, sizeof(b)), worst->batch);
    }
    /* Linear cost: time ratio over data ratio, by avg (the verdict) and by
     * p50 (less sensitive to a noisy host). kv: N/2 -> N blocks; engine:
     * each size step from 256K on. */
    for (int w = 0; w < 2; w++) {
        const char *op = w ? "push" : "pull";
        const result_t *a = find("kv", op, 0, 0, opt.kv_blocks / 2);
        const result_t *z = find("kv", op, 0, 0, opt.kv_blocks);
        if (a != NULL && z != NULL && a != z) {
            double k = (double)z->bytes / (double)a->bytes;
            double x = z->avg_us / a->avg_us / k, y = z->p50_us / a->p50_us / k;
            fprintf(o,
                    "#   kv %s %zu -> %zu blocks takes 2 x +-15%% the time: %s (avg %.2f x, p50 "
                    "%.2f x)\n",
                    op, a->kv_blocks, z->kv_blocks, verdict(x >= 0.85 && x <= 1.15), 2 * x, 2 * y);
        }
    }
    size_t lin_n = 0, lin_miss = 0, lin_miss50 = 0;
    double lin_worst = 1, lin_dev = 0;
    const result_t *lw = NULL;
    for (size_t i = 0; i < g_nresults; i++) {
        const result_t *a = &g_results[i];
        if (strcmp(a->mode, "engine") != 0 || a->block < 256 * KIB) {
            continue;
        }
        const result_t *z = find("engine", a->op, a->block * opt.step, a->batch, 0);
        if (z == NULL) {
            continue;
        }
        double x = z->avg_us / a->avg_us / (double)opt.step;
        double y = z->p50_us / a->p50_us / (double)opt.step;
        double dev = x > 1 ? x - 1 : 1 / x - 1;
        lin_n++;
        lin_miss += x < 0.85 || x > 1.15;
        lin_miss50 += y < 0.85 || y > 1.15;
        if (lw == NULL || dev > lin_dev) {
            lin_dev = dev;
            lin_worst = x;
            lw = a;
        }
    }
    if (lw != NULL) {
        fprintf(o,
                "#   engine x%u data (from 256K) takes x%u +-15%% the time: %s (by avg holds at "
                "%zu of %zu steps, by p50 at %zu; worst %.2f x at %s %s -> x%u, batch %zu)\n",
                opt.step, opt.step, verdict(lin_miss == 0), lin_n - lin_miss, lin_n,
                lin_n - lin_miss50, lin_worst * opt.step, lw->op, fmt_size(lw->block, b, sizeof(b)),
                opt.step, lw->batch);
    }
}

/* --------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: kvx-bench [options]\n"
           "  --mode engine|kv|all   what to measure (default all)\n"
           "  --transport tcp|shm|auto\n"
           "                         sets KVX_TRANSPORT for both processes (default: $KVX_TRANSPORT"
           " or tcp)\n"
           "  --min SIZE, --max SIZE engine block sizes, powers of two (default 4K .. 64M)\n"
           "  --batch LIST           engine descriptors per transfer (default 1,32)\n"
           "  --ops LIST             read,write (kv: pull,push) (default both)\n"
           "  --iters N              at most N timed runs per point (default 10000)\n"
           "  --time S               time per engine point (default 0.3)\n"
           "  --kv-time S            time per kv point (default 1.0)\n"
           "  --base-time S          time per baseline of a point (default 0.2)\n"
           "  --blocks N             kv request size in blocks (default 128; N/2 is measured "
           "too)\n"
           "  --pool N               kv pool blocks per side (default 256)\n"
           "  --max-xfer SIZE        largest engine transfer, block x batch (default 256M)\n"
           "  --quick                short subset: blocks x4 apart, 0.1 s per point (kv 0.3 s)\n"
           "  --check                verify every transfer's data (pattern keyed by iteration)\n"
           "  --no-baselines         measure kvx only (= --measure kvx)\n"
           "  --measure LIST         any of kvx,memcpy,raw-tcp,pvm (default all)\n"
           "  --json                 JSON lines on stdout instead of the table\n"
           "  --json-file FILE       also write JSON lines to FILE\n"
           "  --max-seconds S        bound of the whole run (default 120)\n"
           "  --quiet                no progress line on stderr\n"
           "  --busy-poll US         how long a sync transfer polls for its reply before it\n"
           "                         sleeps (kvx's busy_poll_us; default kvx's, 50)\n");
}

static int parse_list(const char *s, options_t *o, int ops)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    if (ops) {
        o->do_read = o->do_write = 0;
    } else {
        o->nbatches = 0;
    }
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (ops) {
            if (strcmp(tok, "read") == 0 || strcmp(tok, "pull") == 0) {
                o->do_read = 1;
            } else if (strcmp(tok, "write") == 0 || strcmp(tok, "push") == 0) {
                o->do_write = 1;
            } else {
                return -1;
            }
        } else {
            char *end;
            unsigned long v = strtoul(tok, &end, 10);
            if (*end != '\0' || v == 0 || v > 65536 || o->nbatches == MAX_BATCHES) {
                return -1;
            }
            o->batches[o->nbatches++] = v;
        }
    }
    return ops ? (o->do_read || o->do_write ? 0 : -1) : (o->nbatches ? 0 : -1);
}

/* --measure kvx,memcpy,raw-tcp,pvm */
static int parse_measure(const char *s)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    opt.measure = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "kvx") == 0) {
            opt.measure |= MEASURE_KVX;
        } else if (strcmp(tok, "memcpy") == 0) {
            opt.measure |= MEASURE_MEMCPY;
        } else if (strcmp(tok, "raw-tcp") == 0) {
            opt.measure |= MEASURE_RAW;
        } else if (strcmp(tok, "pvm") == 0) {
            opt.measure |= MEASURE_PVM;
        } else {
            return -1;
        }
    }
    return opt.measure ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
    int time_set = 0, base_set = 0, kv_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0, used = 1;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--quick") == 0) {
            opt.quick = 1, used = 0;
        } else if (strcmp(a, "--check") == 0) {
            opt.check = 1, used = 0;
        } else if (strcmp(a, "--json") == 0) {
            opt.json = 1, used = 0;
        } else if (strcmp(a, "--quiet") == 0) {
            opt.quiet = 1, used = 0;
        } else if (strcmp(a, "--no-baselines") == 0) {
            opt.measure = MEASURE_KVX, used = 0;
        } else if (v == NULL) {
            bad = 1;
        } else if (strcmp(a, "--mode") == 0) {
            opt.engine = strcmp(v, "engine") == 0 || strcmp(v, "all") == 0;
            opt.kv = strcmp(v, "kv") == 0 || strcmp(v, "all") == 0;
            bad = !opt.engine && !opt.kv;
        } else if (strcmp(a, "--transport") == 0) {
            bad = strcmp(v, "tcp") != 0 && strcmp(v, "shm") != 0 && strcmp(v, "auto") != 0;
            snprintf(opt.transport, sizeof(opt.transport), "%s", v);
        } else if (strcmp(a, "--min") == 0) {
            bad = parse_size(v, &opt.min_block) != 0;
        } else if (strcmp(a, "--max") == 0) {
            bad = parse_size(v, &opt.max_block) != 0;
        } else if (strcmp(a, "--max-xfer") == 0) {
            bad = parse_size(v, &opt.max_xfer) != 0;
        } else if (strcmp(a, "--batch") == 0) {
            bad = parse_list(v, &opt, 0) != 0;
        } else if (strcmp(a, "--measure") == 0) {
            bad = parse_measure(v) != 0;
        } else if (strcmp(a, "--ops") == 0) {
            bad = parse_list(v, &opt, 1) != 0;
        } else if (strcmp(a, "--iters") == 0) {
            opt.iters = (unsigned)strtoul(v, NULL, 10);
            bad = opt.iters == 0 || opt.iters > 10000000;
        } else if (strcmp(a, "--time") == 0) {
            opt.point_s = strtod(v, NULL);
            bad = !(opt.point_s > 0 && opt.point_s <= 60);
            time_set = 1;
        } else if (strcmp(a, "--base-time") == 0) {
            opt.base_s = strtod(v, NULL);
            bad = !(opt.base_s > 0 && opt.base_s <= 60);
            base_set = 1;
        } else if (strcmp(a, "--kv-time") == 0) {
            opt.kv_s = strtod(v, NULL);
            bad = !(opt.kv_s > 0 && opt.kv_s <= 60);
            kv_set = 1;
        } else if (strcmp(a, "--blocks") == 0) {
            opt.kv_blocks = (unsigned)strtoul(v, NULL, 10);
            bad = opt.kv_blocks == 0;
        } else if (strcmp(a, "--pool") == 0) {
            opt.kv_pool = (unsigned)strtoul(v, NULL, 10);
            bad = opt.kv_pool == 0 || opt.kv_pool > 65536;
        } else if (strcmp(a, "--max-seconds") == 0) {
            opt.max_seconds = strtod(v, NULL);
            bad = !(opt.max_seconds >= 1 && opt.max_seconds <= 86400);
        } else if (strcmp(a, "--busy-poll") == 0) {
            opt.busy_poll_us = strtol(v, NULL, 10);
            bad = opt.busy_poll_us < 0 || opt.busy_poll_us > 10000;
        } else if (strcmp(a, "--json-file") == 0) {
            opt.json_file = v;
        } else if (strcmp(a, "--serve") == 0) {
            opt.serve = v;
            bad = strcmp(v, "engine") != 0 && strcmp(v, "kv") != 0;
        } else if (strcmp(a, "--port-file") == 0) {
            opt.port_file = v;
        } else if (strcmp(a, "--region") == 0) {
            bad = parse_size(v, &opt.region) != 0;
        } else {
            bad = 1;
        }
        if (bad) {
            fprintf(stderr, "kvx-bench: bad option or value: %s%s%s\n", a, used && v ? " " : "",
                    used && v ? v : "");
            usage(stderr);
            return -1;
        }
        i += used;
    }
    if (opt.quick) {
        opt.step = 4;
        if (!time_set) {
            opt.point_s = 0.1;
        }
        if (!base_set) {
            opt.base_s = 0.05;
        }
        if (!kv_set) {
            opt.kv_s = 0.3;
        }
    }
    if ((opt.min_block & (opt.min_block - 1)) || (opt.max_block & (opt.max_block - 1)) ||
        opt.min_block > opt.max_block || opt.max_block > (size_t)1 << 34) {
        fprintf(stderr, "kvx-bench: --min and --max must be powers of two, min <= max <= 16G\n");
        return -1;
    }
    if (opt.kv_blocks > opt.kv_pool) {
        fprintf(stderr, "kvx-bench: --blocks %u exceeds the pool of %u blocks\n", opt.kv_blocks,
                opt.kv_pool);
        return -1;
    }
    if (opt.serve && (opt.port_file == NULL || (strcmp(opt.serve, "engine") == 0 && !opt.region))) {
        fprintf(stderr, "kvx-bench: --serve needs --port-file (and --region for engine)\n");
        return -1;
    }
    return 0;
}

static void print_machine_line(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256], model[128] = "?";
    if (f != NULL) {
        while (fgets(line, sizeof(line), f) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                char *c = strchr(line, ':');
                if (c != NULL) {
                    snprintf(model, sizeof(model), "%s", c + 2);
                    model[strcspn(model, "\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    fprintf(g_info,
            "# kvx-bench: %s, %ld cpus; kvx %s; transport %s (KVX_TRANSPORT=%s in both "
            "processes)\n",
            model, sysconf(_SC_NPROCESSORS_ONLN), KVX_VERSION_STRING, opt.transport, opt.transport);
    fprintf(g_info,
            "# baselines (same bytes per point): memcpy = the same scattered pieces between two "
            "local buffers, 1 thread;\n"
            "#   raw-tcp = plain blocking loopback TCP stream between the two processes, one "
            "request + <=64M send()s per op (WRITE: data + 8-byte ack);\n"
            "#   pvm = process_vm_readv/writev of the same pieces from/into the target, %d "
            "iovecs per call\n"
            "# ratio = kvx GB/s / %s GB/s. GB = 1e9 bytes; ops/s = descriptors (kv: spans) per "
            "second; block: K = KiB, M = MiB\n",
            IOV_BATCH, baseline_name());
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (parse_args(argc, argv) != 0) {
        return 2;
    }
    g_t0 = now_s();
    g_deadline = g_t0 + opt.max_seconds;
    if (opt.serve) {
        return serve();
    }

    /* The transport: passed to both processes through KVX_TRANSPORT. */
    if (opt.transport[0] == '\0') {
        const char *env = getenv("KVX_TRANSPORT");
        snprintf(opt.transport, sizeof(opt.transport), "%s", env && *env ? env : "tcp");
        if (strcmp(opt.transport, "tcp") != 0 && strcmp(opt.transport, "shm") != 0 &&
            strcmp(opt.transport, "auto") != 0) {
            fprintf(stderr, "kvx-bench: KVX_TRANSPORT=%s: not tcp, shm or auto\n", opt.transport);
            return 2;
        }
    }
    int shm_cap = 0;
    if (strcmp(opt.transport, "tcp") != 0 &&
        (kvx_capability(KVX_FEATURE_TRANSPORT_SHM, &shm_cap) != KVX_OK || !shm_cap)) {
        /* Passed through all the same: the library reads KVX_TRANSPORT
         * itself, and an older one ignores it (then this measures tcp). */
        fprintf(stderr,
                "kvx-bench: note: kvx_capability(KVX_FEATURE_TRANSPORT_SHM) = 0; "
                "KVX_TRANSPORT=%s is passed through anyway\n",
                opt.transport);
    }
    setenv("KVX_TRANSPORT", opt.transport, 1);
    g_info = opt.json ? stderr : stdout;

    struct sigaction sa = {.sa_handler = on_fatal_signal};
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Hard stop a little after the soft deadline, for the target's exit. */
    alarm((unsigned)opt.max_seconds + 3);

    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof(g_tmpdir), "%s/kvx-bench.XXXXXX",
             tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (mkdtemp(g_tmpdir) == NULL) {
        perror("kvx-bench: mkdtemp");
        return 1;
    }
    snprintf(g_port_file, sizeof(g_port_file), "%s/ports", g_tmpdir);
    if (opt.json_file != NULL && (g_json = fopen(opt.json_file, "w")) == NULL) {
        fprintf(stderr, "kvx-bench: %s: %s\n", opt.json_file, strerror(errno));
        rmdir(g_tmpdir);
        return 1;
    }
    g_samples = malloc((opt.iters + 1) * sizeof(double));
    if (g_samples == NULL) {
        fprintf(stderr, "kvx-bench: out of memory\n");
        return 1;
    }

    /* Points to run, for the progress line. */
    int nops = opt.do_read + opt.do_write;
    if (opt.engine) {
        for (size_t bi = 0; bi < opt.nbatches; bi++) {
            for (size_t block = opt.min_block; block <= opt.max_block; block *= opt.step) {
                g_points_total += (size_t)nops * engine_point_fits(block, opt.batches[bi]);
            }
        }
    }
    if (opt.kv) {
        g_points_total += (size_t)nops * (opt.kv_blocks >= 2 ? 2 : 1);
    }

    print_machine_line();
    if (opt.check) {
        fprintf(g_info, "# --check: every timed transfer is verified; the fills warm the caches, "
                        "so take numbers from runs without --check\n");
    }
    print_header();
    int rc = 0;
    if (opt.engine && run_engine_mode() != 0) {
        rc = 1;
    }
    if (rc == 0 && opt.kv && run_kv_mode() != 0) {
        rc = 1;
    }
    progress_clear();
    if (g_nresults > 0 && (opt.measure & MEASURE_KVX)) {
        print_targets();
    }
    if (opt.check) {
        fprintf(g_info, "# check: %llu transfers, %llu bytes verified, %llu bad bytes\n",
                g_checked_xfers, g_checked_bytes, g_bad_bytes);
        if (g_bad_bytes > 0) {
            rc = 1;
        }
    }
    fprintf(g_info, "# %s: %zu points in %.1f s\n", rc ? "FAILED" : "done", g_nresults,
            now_s() - g_t0);
    if (g_json != NULL && fclose(g_json) != 0) {
        rc = 1;
    }
    unlink(g_port_file);
    rmdir(g_tmpdir);
    free(g_samples);
    free(g_results);
    return rc;
}

/*
 * A hostile peer: this test speaks wire frames by hand over raw TCP sockets
 * to kvx-test-peer. Input from a peer is untrusted: the target checks every
 * length and address against what it registered, answers with a clear
 * status or closes that one connection, never crashes, and keeps serving
 * the others. A normal kvx client engine runs alongside to learn the peer's
 * region addresses and to prove after every case that the peer still works.
 *
 * Every socket read and write has a deadline (poll()), so nothing can hang.
 * What the target does for each malformed frame follows src/transport/tcp.c:
 * a frame it cannot parse closes the connection without a reply; only a
 * wrong version before the handshake and a self-connect get a HELLO_ACK
 * with an error status before the close; a well-formed request for memory
 * that is not registered (or read-only, for writes) gets its response with
 * KVX_ERR_REMOTE_ACCESS and the connection stays open.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "transport/wire.h"

#define IO_MS          5000                  /* any expected reply or close */
#define RAW_INSTANCE   0x686f7374696c6531ull /* "hostile1": never the peer's */
#define LOCAL_BUF      (4u << 20)
#define DST_ZERO_OFF   (1u << 20) /* DST bytes no hostile frame may change */
#define DST_ZERO_LEN   (64u << 10)
#define DST_VALID_OFF  (4u << 20) /* valid raw writes land here */
#define DST_HEALTH_OFF (32u << 20)
#define FLOOD_GARBAGE  25
#define FLOOD_IDLE     25
#define FLOOD_READS    5000
#define FLOOD_READ_LEN 4096

enum { RAW_TIMEOUT = -1, RAW_CLOSED = 0, RAW_OK = 1 };

typedef struct fixture {
    test_peer_t peer;
    kvx_engine_h engine;
    uint8_t *buf; /* local, registered, LOCAL_BUF bytes */
    kvx_mem_h mem;
    kvx_remote_mem_t mems[32];
    size_t nmems;
    uint64_t src, dst, ro, mailbox;
    uint64_t instance; /* the peer's, from its HELLO_ACK */
    int bystander;     /* a raw connection that lives through every case */
    uint64_t seq;
    unsigned health_round;
    int idle[FLOOD_IDLE]; /* flood sockets that never sent HELLO */
} fixture_t;

static fixture_t fx;

/* ------------------------------------------------------------ raw sockets */

static int remaining_ms(uint64_t deadline)
{
    uint64_t now = test_now_ms();
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* A non-blocking socket connected to the peer, or -1. */
static int raw_connect_to(const test_peer_t *peer)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)peer->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof(err);
        if (poll(&pfd, 1, IO_MS) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

static int raw_connect(const fixture_t *f)
{
    return raw_connect_to(&f->peer);
}

/* Send all of @p buf by the deadline. 0, or -1 (errno ETIMEDOUT on timeout). */
static int raw_send(int fd, const void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int left = remaining_ms(deadline);
            if (left == 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            poll(&pfd, 1, left);
            continue;
        }
        return -1;
    }
    return 0;
}

/* Receive exactly @p len bytes: RAW_OK, RAW_CLOSED (EOF or reset) or RAW_TIMEOUT. */
static int raw_recv(int fd, void *buf, size_t len, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            return RAW_CLOSED;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            return RAW_CLOSED; /* ECONNRESET: closed with our bytes unread */
        }
        int left = remaining_ms(deadline);
        if (left == 0) {
            return RAW_TIMEOUT;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        poll(&pfd, 1, left);
    }
    return RAW_OK;
}

/* Wait for the peer to close @p fd: RAW_CLOSED or RAW_TIMEOUT. *extra_p gets
 * the number of bytes that arrived first, not counting the keepalive frames
 * a target sends on a quiet link. */
static int raw_wait_closed(int fd, int timeout_ms, size_t *extra_p)
{
    uint8_t sink[4096];
    size_t extra = 0;
    int rc;
    for (;;) {
        rc = raw_recv(fd, sink, 1, timeout_ms);
        if (rc != RAW_OK) {
            break;
        }
        ssize_t n = recv(fd, sink + 1, KVX_WIRE_HDR_SIZE - 1, MSG_DONTWAIT);
        size_t got = 1 + (n > 0 ? (size_t)n : 0);
        kvx_wire_hdr_t hdr;
        if (got == KVX_WIRE_HDR_SIZE && kvx_wire_decode_hdr(sink, got, &hdr) == KVX_OK &&
            hdr.type == KVX_WIRE_KEEPALIVE_BACK) {
            continue;
        }
        extra += got;
        n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (n > 0) {
            extra += (size_t)n;
        }
    }
    if (extra_p != NULL) {
        *extra_p = extra;
    }
    return rc;
}

/* True if the peer has closed @p fd (non-blocking look). */
static int raw_is_closed(int fd)
{
    uint8_t b;
    ssize_t n = recv(fd, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* One frame from the peer, which must be well-formed: RAW_OK, RAW_CLOSED or
 * RAW_TIMEOUT. Keepalive frames (sent on a quiet link) are skipped. */
static int raw_recv_frame(int fd, kvx_wire_hdr_t *hdr, uint8_t *body, size_t cap, int timeout_ms)
{
    uint8_t h[KVX_WIRE_HDR_SIZE];
    int rc;
    do {
        rc = raw_recv(fd, h, sizeof(h), timeout_ms);
        if (rc != RAW_OK) {
            return rc;
        }
        assert_int_equal(kvx_wire_decode_hdr(h, sizeof(h), hdr), KVX_OK);
    } while (hdr->type == KVX_WIRE_KEEPALIVE_BACK);
    assert_true(hdr->body_len <= cap);
    if (hdr->body_len > 0) {
        assert_int_equal(raw_recv(fd, body, (size_t)hdr->body_len, timeout_ms), RAW_OK);
    }
    return RAW_OK;
}

/* ---------------------------------------------------------------- frames */

static void put_le(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static size_t frame_hello(uint8_t *out, uint64_t seq, uint64_t instance, const char *name)
{
    size_t name_len = strlen(name);
    kvx_wire_hdr_t hdr = {
        .type = KVX_WIRE_HELLO, .seq = seq, .body_len = kvx_wire_hello_size(name_len)};
    kvx_wire_encode_hdr(out, &hdr);
    kvx_wire_encode_hello(out + KVX_WIRE_HDR_SIZE, instance, name, name_len);
    return KVX_WIRE_HDR_SIZE + kvx_wire_hello_size(name_len);
}

/* A READ_REQ or WRITE_REQ frame without payload; malloc()ed, length in *len_p. */
static uint8_t *frame_descs(uint8_t type, uint64_t seq, const kvx_wire_desc_t *d, uint32_t n,
                            size_t *len_p, uint64_t *total_p)
{
    size_t body_len = kvx_wire_descs_size(n);
    uint8_t *out = malloc(KVX_WIRE_HDR_SIZE + body_len);
    assert_non_null(out);
    kvx_wire_hdr_t hdr = {.type = type, .seq = seq, .body_len = body_len};
    kvx_wire_encode_hdr(out, &hdr);
    kvx_wire_encode_descs_hdr(out + KVX_WIRE_HDR_SIZE, n);
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        kvx_wire_encode_desc(out + KVX_WIRE_HDR_SIZE + KVX_WIRE_DESCS_HDR_SIZE +
                                 (size_t)i * KVX_WIRE_DESC_SIZE,
                             d[i].addr, d[i].len);
        total += d[i].len;
    }
    *len_p = KVX_WIRE_HDR_SIZE + body_len;
    if (total_p != NULL) {
        *total_p = total;
    }
    return out;
}

/* Connect to @p peer and handshake by hand; returns the socket. */
static int raw_open_to(fixture_t *f, const test_peer_t *peer)
{
    int fd = raw_connect_to(peer);
    assert_true(fd >= 0);
    uint8_t buf[128];
    uint64_t seq = ++f->seq;
    size_t n = frame_hello(buf, seq, RAW_INSTANCE, "hostile");
    assert_int_equal(raw_send(fd, buf, n, IO_MS), 0);
    kvx_wire_hdr_t hdr;
    uint8_t body[128];
    assert_int_equal(raw_recv_frame(fd, &hdr, body, sizeof(body), IO_MS), RAW_OK);
    assert_int_equal(hdr.type, KVX_WIRE_HELLO_ACK);
    assert_int_equal(hdr.status, KVX_OK);
    assert_int_equal(hdr.seq, seq);
    uint64_t instance;
    char name[KVX_ENGINE_NAME_MAX];
    assert_int_equal(kvx_wire_decode_hello(body, (size_t)hdr.body_len, &instance, name), KVX_OK);
    assert_string_equal(name, peer->name);
    assert_true(instance != RAW_INSTANCE);
    if (peer == &f->peer) {
        f->instance = instance;
    }
    return fd;
}

static int raw_open(fixture_t *f)
{
    return raw_open_to(f, &f->peer);
}

/* READ_REQ by hand and its READ_RESP; returns the status. On KVX_OK the
 * payload lands in @p out (room for the total). */
static int32_t raw_read(fixture_t *f, int fd, const kvx_wire_desc_t *d, uint32_t n, uint8_t *out)
{
    uint64_t seq = ++f->seq, total;
    size_t len;
    uint8_t *req = frame_descs(KVX_WIRE_READ_REQ, seq, d, n, &len, &total);
    assert_int_equal(raw_send(fd, req, len, IO_MS), 0);
    free(req);
    kvx_wire_hdr_t hdr;
    uint8_t body[8];
    assert_int_equal(raw_recv_frame(fd, &hdr, body, sizeof(body), IO_MS), RAW_OK);
    assert_int_equal(hdr.type, KVX_WIRE_READ_RESP);
    assert_int_equal(hdr.seq, seq);
    uint64_t payload;
    assert_int_equal(kvx_wire_decode_read_resp(body, (size_t)hdr.body_len, &payload), KVX_OK);
    if (hdr.status != KVX_OK) {
        assert_int_equal(payload, 0);
        return hdr.status;
    }
    assert_int_equal(payload, total);
    assert_int_equal(raw_recv(fd, out, (size_t)total, IO_MS), RAW_OK);
    return KVX_OK;
}

/* WRITE_REQ by hand with its payload and the WRITE_ACK; returns the status.
 * @p split sends the payload in pieces after a pause, so that the target
 * reads it straight from the socket rather than from its buffer. */
static int32_t raw_write(fixture_t *f, int fd, const kvx_wire_desc_t *d, uint32_t n,
                         const uint8_t *payload, int split)
{
    uint64_t seq = ++f->seq, total;
    size_t len;
    uint8_t *req = frame_descs(KVX_WIRE_WRITE_REQ, seq, d, n, &len, &total);
    uint8_t *frame = realloc(req, len + (size_t)total);
    assert_non_null(frame);
    memcpy(frame + len, payload, (size_t)total);
    if (split) {
        assert_int_equal(raw_send(fd, frame, len, IO_MS), 0);
        size_t piece = (size_t)total / 3 + 1;
        for (size_t off = 0; off < total; off += piece) {
            usleep(10000);
            size_t k = total - off < piece ? (size_t)total - off : piece;
            assert_int_equal(raw_send(fd, frame + len + off, k, IO_MS), 0);
        }
    } else {
        assert_int_equal(raw_send(fd, frame, len + (size_t)total, IO_MS), 0);
    }
    free(frame);
    kvx_wire_hdr_t hdr;
    uint8_t body[8];
    assert_int_equal(raw_recv_frame(fd, &hdr, body, sizeof(body), IO_MS), RAW_OK);
    assert_int_equal(hdr.type, KVX_WIRE_WRITE_ACK);
    assert_int_equal(hdr.seq, seq);
    assert_int_equal(hdr.body_len, 0);
    return hdr.status;
}

/* ------------------------------------------------------------ the normal side */

static kvx_xfer_params_t xfer_deadline(int ms)
{
    kvx_xfer_params_t p = {.field_mask = KVX_XFER_PARAM_FIELD_TIMEOUT, .timeout_ms = ms};
    return p;
}

static int64_t peer_check(fixture_t *f, uint64_t tag, uint64_t off, uint64_t len, uint64_t seed)
{
    int64_t bad = -1;
    assert_int_equal(test_peer_cmd(f->engine, f->peer.name, &bad, "check", "%llu %llu %llu %llu",
                                   (unsigned long long)tag, (unsigned long long)off,
                                   (unsigned long long)len, (unsigned long long)seed),
                     0);
    return bad;
}

static int64_t peer_cmd(fixture_t *f, const char *cmd, const char *args)
{
    int64_t result = -999;
    assert_int_equal(test_peer_cmd(f->engine, f->peer.name, &result, cmd, "%s", args), 0);
    return result;
}

/* Read peer memory with the normal client. */
static void client_read(fixture_t *f, uint64_t remote, size_t len)
{
    assert_true(len <= LOCAL_BUF);
    memset(f->buf, 0xEE, len);
    kvx_xfer_desc_t d = {f->buf, remote, len};
    kvx_xfer_params_t p = xfer_deadline(IO_MS);
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_READ, &d, 1, &p), KVX_OK);
}

/* DST_ZERO_OFF.. must still hold the zeros the peer started with. */
static void assert_dst_zero(fixture_t *f)
{
    client_read(f, f->dst + DST_ZERO_OFF, DST_ZERO_LEN);
    for (size_t i = 0; i < DST_ZERO_LEN; i++) {
        if (f->buf[i] != 0) {
            fail_msg("DST+0x%zx changed to 0x%02x by a refused frame", DST_ZERO_OFF + i, f->buf[i]);
        }
    }
}

/* The peer process lives, the normal client can read and write, and the
 * bystander raw connection is still served. */
static void assert_healthy(fixture_t *f)
{
    int st;
    pid_t r = waitpid(f->peer.pid, &st, WNOHANG);
    if (r != 0) {
        f->peer.pid = 0;
        fail_msg("kvx-test-peer died (waitpid %d, status 0x%x)", (int)r, st);
    }
    unsigned round = ++f->health_round;
    size_t off = (round * 4099u) % (PEER_REGION - 8192);
    client_read(f, f->src + off, 4096);
    assert_int_equal(test_check(f->buf, 4096, PEER_TAG_SRC, off), 0);

    test_fill(f->buf, 4096, 1000 + round, 0);
    kvx_xfer_desc_t d = {f->buf, f->dst + DST_HEALTH_OFF, 4096};
    kvx_xfer_params_t p = xfer_deadline(IO_MS);
    assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_WRITE, &d, 1, &p), KVX_OK);
    client_read(f, f->dst + DST_HEALTH_OFF, 4096);
    assert_int_equal(test_check(f->buf, 4096, 1000 + round, 0), 0);

    uint8_t tmp[256];
    kvx_wire_desc_t rd = {f->ro + 1000 + round, sizeof(tmp)};
    assert_int_equal(raw_read(f, f->bystander, &rd, 1, tmp), KVX_OK);
    assert_int_equal(test_check(tmp, sizeof(tmp), PEER_TAG_RO, 1000 + round), 0);
}

/* ---------------------------------------------------------------- fixture */

static int group_setup(void **state)
{
    fixture_t *f = &fx;
    memset(f, 0, sizeof(*f));
    for (int i = 0; i < FLOOD_IDLE; i++) {
        f->idle[i] = -1;
    }
    f->bystander = -1;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(test_peer_start(&f->peer, 0), 0);
    f->engine = test_client(NULL);
    assert_non_null(f->engine);
    assert_int_equal(test_connect(f->engine, f->peer.name, 10000), KVX_OK);
    assert_int_equal(kvx_engine_remote_mem(f->engine, f->peer.name, f->mems, 32, &f->nmems, 0),
                     KVX_OK);
    assert_true(f->nmems >= 4 && f->nmems <= 32);
    for (size_t i = 0; i < f->nmems; i++) {
        uint64_t a = f->mems[i].address;
        switch (f->mems[i].tag) {
        case PEER_TAG_SRC:
            f->src = a;
            break;
        case PEER_TAG_DST:
            f->dst = a;
            break;
        case PEER_TAG_RO:
            f->ro = a;
            break;
        case PEER_TAG_MAILBOX:
            f->mailbox = a;
            break;
        default:
            break;
        }
        if (i > 0) {
            assert_true(a >= f->mems[i - 1].address + f->mems[i - 1].length);
        }
    }
    assert_true(f->src != 0 && f->dst != 0 && f->ro != 0 && f->mailbox != 0);
    f->buf = malloc(LOCAL_BUF);
    assert_non_null(f->buf);
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = f->buf,
                           .length = LOCAL_BUF};
    assert_int_equal(kvx_mem_register(f->engine, &mp, &f->mem), KVX_OK);
    f->bystander = raw_open(f);
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture_t *f = *state;
    if (f->bystander >= 0) {
        close(f->bystander);
    }
    for (int i = 0; i < FLOOD_IDLE; i++) {
        if (f->idle[i] >= 0) {
            close(f->idle[i]);
        }
    }
    kvx_engine_destroy(f->engine);
    int st = -1;
    if (f->peer.pid > 0) {
        st = test_peer_stop(&f->peer);
    }
    free(f->buf);
    /* A clean exit: no sanitizer report, no leak report at exit. */
    assert_int_equal(st, 0);
    return 0;
}

/* Two registrations next to each other by address with a gap between them
 * (a gap below 1 TiB, so that one descriptor can span it). */
static void find_gap(const fixture_t *f, uint64_t *end_p, uint64_t *next_p)
{
    uint64_t best = UINT64_MAX;
    for (size_t i = 0; i + 1 < f->nmems; i++) {
        uint64_t end = f->mems[i].address + f->mems[i].length;
        uint64_t gap = f->mems[i + 1].address - end;
        if (gap > 0 && gap < best && gap < (1ull << 39)) {
            best = gap;
            *end_p = end;
            *next_p = f->mems[i + 1].address;
        }
    }
    assert_true(best != UINT64_MAX);
}

/* Whether the peer would accept [addr, addr + len): inside its registrations
 * (touching ones may be spanned), and only read-write ones for a write. */
static int covered(const fixture_t *f, uint64_t addr, uint64_t len, int write)
{
    uint64_t at = addr, end = addr + len;
    for (size_t i = 0; i < f->nmems && at < end; i++) {
        const kvx_remote_mem_t *m = &f->mems[i];
        if (m->address <= at && at < m->address + m->length) {
            if (write && m->access == KVX_MEM_ACCESS_READ_ONLY) {
                return 0;
            }
            at = m->address + m->length;
        }
    }
    return at >= end;
}

/* ------------------------------------------------------------------ tests */

/* HELLO by hand, then reads: the exact bytes for registered ranges,
 * KVX_ERR_REMOTE_ACCESS with no payload for anything else, and the
 * connection keeps working after each refusal. */
static void test_read_checks(void **state)
{
    fixture_t *f = *state;
    int fd = raw_open(f);
    uint8_t *out = malloc(PEER_RO_REGION);
    assert_non_null(out);

    /* Registered: one range, the whole read-only region, the mailbox. */
    kvx_wire_desc_t d = {f->src + 12345, 10000};
    assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);
    assert_int_equal(test_check(out, 10000, PEER_TAG_SRC, 12345), 0);
    d = (kvx_wire_desc_t){f->ro, PEER_RO_REGION};
    assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);
    assert_int_equal(test_check(out, PEER_RO_REGION, PEER_TAG_RO, 0), 0);
    d = (kvx_wire_desc_t){f->mailbox, 16};
    assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);

    /* The most descriptors a frame may hold (more iovecs than one writev). */
    enum { N = KVX_WIRE_MAX_FRAME_DESCS, PIECE = 16 };
    kvx_wire_desc_t *many = malloc(N * sizeof(*many));
    assert_non_null(many);
    for (uint32_t i = 0; i < N; i++) {
        many[i] = (kvx_wire_desc_t){f->src + (uint64_t)i * 37 % (PEER_REGION - PIECE), PIECE};
    }
    assert_int_equal(raw_read(f, fd, many, N, out), KVX_OK);
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(
            test_check(out + (size_t)i * PIECE, PIECE, PEER_TAG_SRC, many[i].addr - f->src), 0);
    }

    uint64_t end, next;
    find_gap(f, &end, &next);
    uint64_t gap = next - end;
    uint64_t into_gap = gap < 8 ? gap : 8;
    const kvx_wire_desc_t refused[] = {
        {8, 4096},                              /* near NULL */
        {0xffff800000000000ull, 4096},          /* kernel space */
        {0xffffffffffff0000ull, 4096},          /* top of the address space */
        {end, 1},                               /* first byte after a region */
        {end - 8, 8 + into_gap},                /* runs past a region's end */
        {end - 8, gap + 16},                    /* spans the gap to the next */
        {f->src + PEER_REGION - 100, 101},      /* one byte past SRC */
        {f->ro - 1, 2},                         /* one byte before RO */
        {f->mailbox, 17},                       /* past the 16-byte mailbox */
        {f->src, (uint64_t)PEER_REGION + 4096}, /* longer than SRC */
        {f->src, 1ull << 40},                   /* the largest payload a frame may name */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        assert_false(covered(f, refused[i].addr, refused[i].len, 0));
        assert_int_equal(raw_read(f, fd, &refused[i], 1, out), KVX_ERR_REMOTE_ACCESS);
        /* still usable */
        d = (kvx_wire_desc_t){f->src + i, 64};
        assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);
        assert_int_equal(test_check(out, 64, PEER_TAG_SRC, i), 0);
    }
    /* One bad descriptor among many refuses the whole frame. */
    many[N / 2] = (kvx_wire_desc_t){end, 1};
    assert_int_equal(raw_read(f, fd, many, N, out), KVX_ERR_REMOTE_ACCESS);
    d = (kvx_wire_desc_t){f->dst + DST_ZERO_OFF, 64};
    assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);

    free(many);
    free(out);
    close(fd);
    assert_healthy(f);
}

/* MEM_QUERY and NOTIFY by hand: the table the normal client sees, and an ack. */
static void test_mem_query_and_notify(void **state)
{
    fixture_t *f = *state;
    int fd = raw_open(f);
    uint8_t frame[KVX_WIRE_HDR_SIZE + 64];
    kvx_wire_hdr_t hdr = {.type = KVX_WIRE_MEM_QUERY, .seq = ++f->seq};
    kvx_wire_encode_hdr(frame, &hdr);
    assert_int_equal(raw_send(fd, frame, KVX_WIRE_HDR_SIZE, IO_MS), 0);
    size_t cap = kvx_wire_mem_table_size(64);
    uint8_t *body = malloc(cap);
    assert_non_null(body);
    kvx_wire_hdr_t in;
    assert_int_equal(raw_recv_frame(fd, &in, body, cap, IO_MS), RAW_OK);
    assert_int_equal(in.type, KVX_WIRE_MEM_TABLE);
    assert_int_equal(in.status, KVX_OK);
    assert_int_equal(in.seq, hdr.seq);
    kvx_wire_mem_entry_t entries[64];
    uint32_t count = 0;
    assert_int_equal(kvx_wire_decode_mem_table(body, (size_t)in.body_len, entries, 64, &count),
                     KVX_OK);
    assert_int_equal(count, f->nmems);
    for (uint32_t i = 0; i < count; i++) {
        assert_int_equal(entries[i].addr, f->mems[i].address);
        assert_int_equal(entries[i].len, f->mems[i].length);
        assert_int_equal(entries[i].tag, f->mems[i].tag);
    }
    free(body);

    /* The peer ignores a notification whose message is not "seq args". */
    static const char name[] = "hostile", msg[] = "not a command";
    size_t body_len = kvx_wire_notify_size(strlen(name), strlen(msg));
    hdr = (kvx_wire_hdr_t){.type = KVX_WIRE_NOTIFY, .seq = ++f->seq, .body_len = body_len};
    kvx_wire_encode_hdr(frame, &hdr);
    kvx_wire_encode_notify(frame + KVX_WIRE_HDR_SIZE, name, strlen(name), msg, strlen(msg));
    assert_int_equal(raw_send(fd, frame, KVX_WIRE_HDR_SIZE + body_len, IO_MS), 0);
    uint8_t none[8];
    assert_int_equal(raw_recv_frame(fd, &in, none, 0, IO_MS), RAW_OK);
    assert_int_equal(in.type, KVX_WIRE_NOTIFY_ACK);
    assert_int_equal(in.status, KVX_OK);
    assert_int_equal(in.seq, hdr.seq);
    close(fd);
    assert_healthy(f);
}

/* Writes outside read-write registrations are refused after their payload
 * is drained; not one byte of the peer's memory changes. */
static void test_write_refused(void **state)
{
    fixture_t *f = *state;
    int fd = raw_open(f);
    size_t big = 1u << 20;
    uint8_t *payload = malloc(big);
    uint8_t *out = malloc(4096);
    assert_non_null(payload);
    assert_non_null(out);
    memset(payload, 0x5A, big);

    uint64_t end, next;
    find_gap(f, &end, &next);
    struct {
        kvx_wire_desc_t d;
        int split;
    } refused[] = {
        {{8, 64}, 0},                             /* unregistered, small */
        {{0xffff800000000000ull, 4096}, 0},       /* kernel space */
        {{end, 1}, 0},                            /* just after a region */
        {{end - 8, next - end + 16}, 0},          /* spans a gap */
        {{f->src + PEER_REGION - 32, 64}, 0},     /* straddles SRC's end */
        {{f->src + PEER_REGION - 32, 64}, 1},     /* same, payload trickling */
        {{f->ro + 100, 4096}, 0},                 /* read-only region */
        {{f->ro, PEER_RO_REGION}, 1},             /* all of it, 1 MiB, trickling */
        {{f->dst + PEER_REGION - 4096, 4097}, 0}, /* one byte past DST */
        {{0x10000, big}, 1},                      /* unregistered, 1 MiB */
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (refused[i].d.len > big) {
            continue; /* a gap too wide to send as payload */
        }
        assert_false(covered(f, refused[i].d.addr, refused[i].d.len, 1));
        assert_int_equal(raw_write(f, fd, &refused[i].d, 1, payload, refused[i].split),
                         KVX_ERR_REMOTE_ACCESS);
        /* The payload was drained: the next frame parses. */
        kvx_wire_desc_t d = {f->src + 4096 + i, 64};
        assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);
        assert_int_equal(test_check(out, 64, PEER_TAG_SRC, 4096 + i), 0);
    }
    /* A valid descriptor next to a bad one: nothing is written at all. */
    kvx_wire_desc_t two[] = {{f->dst + DST_ZERO_OFF, 4096}, {end, 16}};
    assert_int_equal(raw_write(f, fd, two, 2, payload, 0), KVX_ERR_REMOTE_ACCESS);
    kvx_wire_desc_t ro_mix[] = {{f->dst + DST_ZERO_OFF + 8192, 4096}, {f->ro, 16}};
    assert_int_equal(raw_write(f, fd, ro_mix, 2, payload, 0), KVX_ERR_REMOTE_ACCESS);

    /* Untouched: SRC's tail, all of RO, the DST bytes, the mailbox's neighbour. */
    assert_int_equal(peer_check(f, PEER_TAG_SRC, PEER_REGION - 4096, 4096, PEER_TAG_SRC), 0);
    assert_int_equal(peer_check(f, PEER_TAG_RO, 0, PEER_RO_REGION, PEER_TAG_RO), 0);
    assert_dst_zero(f);
    free(payload);
    free(out);
    close(fd);
    assert_healthy(f);
}

/* Valid writes by hand: through the receive buffer and straight from the
 * socket, several descriptors, checked by the peer itself. */
static void test_write_valid(void **state)
{
    fixture_t *f = *state;
    int fd = raw_open(f);
    size_t len = 300000;
    uint8_t *payload = malloc(len);
    assert_non_null(payload);

    test_fill(payload, 5000, 77, DST_VALID_OFF + 5);
    kvx_wire_desc_t d = {f->dst + DST_VALID_OFF + 5, 5000};
    assert_int_equal(raw_write(f, fd, &d, 1, payload, 0), KVX_OK);
    assert_int_equal(peer_check(f, PEER_TAG_DST, DST_VALID_OFF + 5, 5000, 77), 0);

    /* Three pieces of one pattern, written through three descriptors. */
    test_fill(payload, len, 78, DST_VALID_OFF + 65536);
    kvx_wire_desc_t three[] = {{f->dst + DST_VALID_OFF + 65536, 100000},
                               {f->dst + DST_VALID_OFF + 65536 + 100000, 1},
                               {f->dst + DST_VALID_OFF + 65536 + 100001, len - 100001}};
    assert_int_equal(raw_write(f, fd, three, 3, payload, 1), KVX_OK);
    assert_int_equal(peer_check(f, PEER_TAG_DST, DST_VALID_OFF + 65536, len, 78), 0);
    /* The bytes around it stayed zero. */
    client_read(f, f->dst + DST_VALID_OFF + 65535, 1);
    assert_int_equal(f->buf[0], 0);
    client_read(f, f->dst + DST_VALID_OFF + 65536 + len, 1);
    assert_int_equal(f->buf[0], 0);
    free(payload);
    close(fd);
    assert_healthy(f);
}

/* The responses a pipelined burst must get, in order. */
typedef struct expect {
    uint8_t type;
    int32_t status;
    uint64_t seq;
    uint64_t src_off; /* READ_RESP OK: the SRC offset of its payload */
    size_t len;
} expect_t;

static size_t burst_add(uint8_t *buf, size_t at, const uint8_t *frame, size_t len)
{
    memcpy(buf + at, frame, len);
    return at + len;
}

/* Requests of every kind back to back, good and refused, sent whole and
 * then in pieces of 1 to 13 bytes: the target parses across every
 * boundary, drains refused payloads and answers each one in order. */
static void test_pipelined_fragments(void **state)
{
    fixture_t *f = *state;
    enum { FRAMES = 42 };
    uint64_t end, next;
    find_gap(f, &end, &next);
    uint8_t *buf = malloc(1u << 20);
    uint8_t *payload = malloc(8192);
    uint8_t *out = malloc(1u << 16);
    assert_non_null(buf);
    assert_non_null(payload);
    assert_non_null(out);
    expect_t exp[FRAMES];

    for (int round = 0; round < 2; round++) {
        int fd = raw_open(f);
        size_t at = 0, len;
        uint8_t *fr;
        for (int k = 0; k < FRAMES; k++) {
            expect_t *e = &exp[k];
            uint64_t seq = ++f->seq;
            *e = (expect_t){.seq = seq, .status = KVX_OK};
            switch (k % 6) {
            case 0: { /* a good read */
                e->src_off = 1000 + (uint64_t)k * 4099 + (uint64_t)round * 7;
                e->len = 100 + (size_t)k * 37;
                kvx_wire_desc_t d = {f->src + e->src_off, e->len};
                fr = frame_descs(KVX_WIRE_READ_REQ, seq, &d, 1, &len, NULL);
                at = burst_add(buf, at, fr, len);
                free(fr);
                e->type = KVX_WIRE_READ_RESP;
                break;
            }
            case 1: { /* a refused read */
                kvx_wire_desc_t d = {end, 1};
                fr = frame_descs(KVX_WIRE_READ_REQ, seq, &d, 1, &len, NULL);
                at = burst_add(buf, at, fr, len);
                free(fr);
                e->type = KVX_WIRE_READ_RESP;
                e->status = KVX_ERR_REMOTE_ACCESS;
                break;
            }
            case 2: { /* a refused write: its payload must be drained */
                kvx_wire_desc_t d = {end, 5000};
                fr = frame_descs(KVX_WIRE_WRITE_REQ, seq, &d, 1, &len, NULL);
                at = burst_add(buf, at, fr, len);
                free(fr);
                memset(payload, 0x3C, 5000);
                at = burst_add(buf, at, payload, 5000);
                e->type = KVX_WIRE_WRITE_ACK;
                e->status = KVX_ERR_REMOTE_ACCESS;
                break;
            }
            case 3: { /* a good write */
                uint64_t off =
                    DST_VALID_OFF + (1u << 20) + (uint64_t)round * (1u << 20) + (uint64_t)k * 10000;
                kvx_wire_desc_t d = {f->dst + off, 6000};
                fr = frame_descs(KVX_WIRE_WRITE_REQ, seq, &d, 1, &len, NULL);
                at = burst_add(buf, at, fr, len);
                free(fr);
                test_fill(payload, 6000, 200 + (uint64_t)round * 100 + (uint64_t)k, off);
                at = burst_add(buf, at, payload, 6000);
                e->type = KVX_WIRE_WRITE_ACK;
                e->src_off = off; /* here: the DST offset, checked at the end */
                e->len = 6000;
                break;
            }
            case 4: { /* MEM_QUERY */
                uint8_t h[KVX_WIRE_HDR_SIZE];
                kvx_wire_hdr_t hdr = {.type = KVX_WIRE_MEM_QUERY, .seq = seq};
                kvx_wire_encode_hdr(h, &hdr);
                at = burst_add(buf, at, h, sizeof(h));
                e->type = KVX_WIRE_MEM_TABLE;
                break;
            }
            default: { /* NOTIFY, which the peer ignores */
                uint8_t nf[KVX_WIRE_HDR_SIZE + 64];
                size_t body_len = kvx_wire_notify_size(4, 9);
                kvx_wire_hdr_t hdr = {.type = KVX_WIRE_NOTIFY, .seq = seq, .body_len = body_len};
                kvx_wire_encode_hdr(nf, &hdr);
                kvx_wire_encode_notify(nf + KVX_WIRE_HDR_SIZE, "pipe", 4, "no number", 9);
                at = burst_add(buf, at, nf, KVX_WIRE_HDR_SIZE + body_len);
                e->type = KVX_WIRE_NOTIFY_ACK;
                break;
            }
            }
        }
        if (round == 0) {
            assert_int_equal(raw_send(fd, buf, at, IO_MS), 0);
        } else {
            for (size_t off = 0, i = 0; off < at; i++) {
                size_t n = 1 + (i * 7) % 13;
                n = n < at - off ? n : at - off;
                assert_int_equal(raw_send(fd, buf + off, n, IO_MS), 0);
                off += n;
                if (i % 256 == 0) {
                    usleep(1000); /* let the target see the pieces apart */
                }
            }
        }
        for (int k = 0; k < FRAMES; k++) {
            kvx_wire_hdr_t hdr;
            assert_int_equal(raw_recv_frame(fd, &hdr, out, 1u << 16, IO_MS), RAW_OK);
            assert_int_equal(hdr.type, exp[k].type);
            assert_int_equal(hdr.seq, exp[k].seq);
            assert_int_equal(hdr.status, exp[k].status);
            if (hdr.type == KVX_WIRE_READ_RESP) {
                uint64_t n;
                assert_int_equal(kvx_wire_decode_read_resp(out, (size_t)hdr.body_len, &n), KVX_OK);
                assert_int_equal(n, hdr.status == KVX_OK ? exp[k].len : 0);
                if (n > 0) {
                    assert_int_equal(raw_recv(fd, out, (size_t)n, IO_MS), RAW_OK);
                    assert_int_equal(test_check(out, (size_t)n, PEER_TAG_SRC, exp[k].src_off), 0);
                }
            } else if (hdr.type == KVX_WIRE_MEM_TABLE) {
                kvx_wire_mem_entry_t entries[64];
                uint32_t count;
                assert_int_equal(
                    kvx_wire_decode_mem_table(out, (size_t)hdr.body_len, entries, 64, &count),
                    KVX_OK);
                assert_int_equal(count, f->nmems);
            }
        }
        for (int k = 3; k < FRAMES; k += 6) {
            assert_int_equal(peer_check(f, PEER_TAG_DST, exp[k].src_off, exp[k].len,
                                        200 + (uint64_t)round * 100 + (uint64_t)k),
                             0);
        }
        close(fd);
    }
    free(buf);
    free(payload);
    free(out);
    assert_dst_zero(f);
    assert_healthy(f);
}

/* One malformed frame per connection: what tcp.c does with it. */
typedef struct patch {
    uint16_t off;  /* from the start of the frame */
    uint8_t width; /* bytes, little-endian; 0 = none */
    uint64_t value;
} patch_t;

typedef enum outcome {
    CLOSE,     /* closed without a reply */
    ACK_CLOSE, /* a HELLO_ACK with an error status, then closed */
    SERVED     /* answered as if it were well-formed */
} outcome_t;

typedef struct hostile_case {
    const char *what;
    int hello;    /* handshake first */
    uint8_t type; /* start from a valid frame of this type */
    patch_t patch[3];
    uint16_t append; /* zero bytes added after the frame */
    outcome_t outcome;
    int32_t status; /* ACK_CLOSE: the HELLO_ACK's status */
} hostile_case_t;

#define HDR_AT(x)  (x)
#define BODY_AT(x) (KVX_WIRE_HDR_SIZE + (x))

/* A valid frame of @p type (request or response), before patches. */
static size_t base_frame(const fixture_t *f, uint8_t type, uint8_t *out)
{
    uint8_t *body = out + KVX_WIRE_HDR_SIZE;
    size_t body_len = 0, payload = 0;
    switch (type) {
    case KVX_WIRE_HELLO:
    case KVX_WIRE_HELLO_ACK:
        body_len = kvx_wire_hello_size(7);
        kvx_wire_encode_hello(body, RAW_INSTANCE, "hostile", 7);
        break;
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ:
        body_len = kvx_wire_descs_size(1);
        kvx_wire_encode_descs_hdr(body, 1);
        if (type == KVX_WIRE_READ_REQ) {
            kvx_wire_encode_desc(body + KVX_WIRE_DESCS_HDR_SIZE, f->src + 64, 16);
        } else {
            kvx_wire_encode_desc(body + KVX_WIRE_DESCS_HDR_SIZE, f->dst + DST_ZERO_OFF + 256, 16);
            payload = 16;
            memset(body + body_len, 0xA5, payload);
        }
        break;
    case KVX_WIRE_READ_RESP:
        body_len = 8;
        kvx_wire_encode_u64(body, 0);
        break;
    case KVX_WIRE_NOTIFY:
        body_len = kvx_wire_notify_size(7, 13);
        kvx_wire_encode_notify(body, "hostile", 7, "not a command", 13);
        break;
    case KVX_WIRE_MEM_TABLE:
        body_len = kvx_wire_mem_table_size(0);
        kvx_wire_encode_mem_table(body, NULL, 0);
        break;
    default: /* WRITE_ACK, NOTIFY_ACK, MEM_QUERY: header only */
        break;
    }
    kvx_wire_hdr_t hdr = {.type = type, .seq = 99, .body_len = body_len};
    kvx_wire_encode_hdr(out, &hdr);
    return KVX_WIRE_HDR_SIZE + body_len + payload;
}

static const hostile_case_t hostile_cases[] = {
    /* before the handshake */
    {"READ_REQ before HELLO", 0, KVX_WIRE_READ_REQ, {{0}}, 0, CLOSE, 0},
    {"WRITE_REQ before HELLO", 0, KVX_WIRE_WRITE_REQ, {{0}}, 0, CLOSE, 0},
    {"NOTIFY before HELLO", 0, KVX_WIRE_NOTIFY, {{0}}, 0, CLOSE, 0},
    {"MEM_QUERY before HELLO", 0, KVX_WIRE_MEM_QUERY, {{0}}, 0, CLOSE, 0},
    {"HELLO_ACK sent to the server", 0, KVX_WIRE_HELLO_ACK, {{0}}, 0, CLOSE, 0},
    {"READ_RESP before HELLO", 0, KVX_WIRE_READ_RESP, {{0}}, 0, CLOSE, 0},
    {"bad magic on HELLO", 0, KVX_WIRE_HELLO, {{HDR_AT(0), 4, 0x3258564b}}, 0, CLOSE, 0},
    {"HELLO of version 1 (an older kvx)",
     0,
     KVX_WIRE_HELLO,
     {{HDR_AT(4), 1, 1}},
     0,
     ACK_CLOSE,
     KVX_ERR_VERSION_MISMATCH},
    {"HELLO of version 0",
     0,
     KVX_WIRE_HELLO,
     {{HDR_AT(4), 1, 0}},
     0,
     ACK_CLOSE,
     KVX_ERR_VERSION_MISMATCH},
    {"READ_REQ of version 255 first",
     0,
     KVX_WIRE_READ_REQ,
     {{HDR_AT(4), 1, 255}},
     0,
     ACK_CLOSE,
     KVX_ERR_VERSION_MISMATCH},
    {"unknown type 0 first", 0, KVX_WIRE_HELLO, {{HDR_AT(5), 1, 0}}, 0, CLOSE, 0},
    {"HELLO name with 0x01", 0, KVX_WIRE_HELLO, {{BODY_AT(16 + 3), 1, 0x01}}, 0, CLOSE, 0},
    {"HELLO name with 0x7f", 0, KVX_WIRE_HELLO, {{BODY_AT(16), 1, 0x7f}}, 0, CLOSE, 0},
    {"HELLO name with 0xff", 0, KVX_WIRE_HELLO, {{BODY_AT(16 + 6), 1, 0xff}}, 0, CLOSE, 0},
    {"HELLO name with NUL", 0, KVX_WIRE_HELLO, {{BODY_AT(16 + 2), 1, 0}}, 0, CLOSE, 0},
    {"HELLO name_len 0", 0, KVX_WIRE_HELLO, {{BODY_AT(8), 2, 0}}, 0, CLOSE, 0},
    {"HELLO name_len past the body", 0, KVX_WIRE_HELLO, {{BODY_AT(8), 2, 8}}, 0, CLOSE, 0},
    {"HELLO name_len 0xffff", 0, KVX_WIRE_HELLO, {{BODY_AT(8), 2, 0xffff}}, 0, CLOSE, 0},
    {"HELLO name_len short of the body", 0, KVX_WIRE_HELLO, {{BODY_AT(8), 2, 6}}, 0, CLOSE, 0},
    {"HELLO reserved u16", 0, KVX_WIRE_HELLO, {{BODY_AT(10), 2, 1}}, 0, CLOSE, 0},
    {"HELLO silence 2^31 ms", 0, KVX_WIRE_HELLO, {{BODY_AT(12), 4, 0x80000000u}}, 0, CLOSE, 0},
    {"HELLO silence 499 ms", 0, KVX_WIRE_HELLO, {{BODY_AT(12), 4, 499}}, 0, CLOSE, 0},
    {"HELLO body of 8 bytes", 0, KVX_WIRE_HELLO, {{HDR_AT(24), 8, 8}}, 0, CLOSE, 0},
    {"HELLO body_len over the max",
     0,
     KVX_WIRE_HELLO,
     {{HDR_AT(24), 8, 16 + KVX_ENGINE_NAME_MAX}},
     0,
     CLOSE,
     0},
    {"HELLO body_len 2^64-1", 0, KVX_WIRE_HELLO, {{HDR_AT(24), 8, UINT64_MAX}}, 0, CLOSE, 0},
    {"HELLO flags set", 0, KVX_WIRE_HELLO, {{HDR_AT(6), 2, 1}}, 0, CLOSE, 0},
    /* after the handshake */
    {"bad magic", 1, KVX_WIRE_READ_REQ, {{HDR_AT(3), 1, 'X'}}, 0, CLOSE, 0},
    {"version 3 after HELLO", 1, KVX_WIRE_READ_REQ, {{HDR_AT(4), 1, 3}}, 0, CLOSE, 0},
    {"unknown type 0", 1, KVX_WIRE_READ_REQ, {{HDR_AT(5), 1, 0}}, 0, CLOSE, 0},
    {"unknown type 11", 1, KVX_WIRE_READ_REQ, {{HDR_AT(5), 1, 11}}, 0, CLOSE, 0},
    {"unknown type 255", 1, KVX_WIRE_READ_REQ, {{HDR_AT(5), 1, 255}}, 0, CLOSE, 0},
    {"unknown flag set", 1, KVX_WIRE_READ_REQ, {{HDR_AT(6), 2, 8}}, 0, CLOSE, 0},
    {"checksum flag on a WRITE_REQ too short for it",
     1,
     KVX_WIRE_WRITE_REQ,
     {{HDR_AT(6), 2, 2}, {HDR_AT(24), 8, 4}},
     0,
     CLOSE,
     0},
    {"tag flag without room for the tag", 1, KVX_WIRE_READ_REQ, {{HDR_AT(6), 2, 1}}, 0, CLOSE, 0},
    {"flags high bit", 1, KVX_WIRE_READ_REQ, {{HDR_AT(7), 1, 0x80}}, 0, CLOSE, 0},
    {"reserved word set", 1, KVX_WIRE_READ_REQ, {{HDR_AT(12), 4, 1}}, 0, CLOSE, 0},
    {"status set in a request", 1, KVX_WIRE_MEM_QUERY, {{HDR_AT(8), 4, 0xffffff97u}}, 0, SERVED, 0},
    {"READ_REQ body_len over the max",
     1,
     KVX_WIRE_READ_REQ,
     {{HDR_AT(24), 8,
       16 + KVX_WIRE_DESCS_HDR_SIZE + KVX_WIRE_DESC_SIZE *KVX_WIRE_MAX_FRAME_DESCS + 1}},
     0,
     CLOSE,
     0},
    {"READ_REQ body_len 2^64-1", 1, KVX_WIRE_READ_REQ, {{HDR_AT(24), 8, UINT64_MAX}}, 0, CLOSE, 0},
    {"READ_REQ body_len 2^63", 1, KVX_WIRE_READ_REQ, {{HDR_AT(24), 8, 1ull << 63}}, 0, CLOSE, 0},
    {"MEM_QUERY with a body", 1, KVX_WIRE_MEM_QUERY, {{HDR_AT(24), 8, 1}}, 1, CLOSE, 0},
    {"READ_REQ body_len 0", 1, KVX_WIRE_READ_REQ, {{HDR_AT(24), 8, 0}}, 0, CLOSE, 0},
    {"count 2, one descriptor", 1, KVX_WIRE_READ_REQ, {{BODY_AT(0), 4, 2}}, 0, CLOSE, 0},
    {"count 1, two descriptors' body", 1, KVX_WIRE_READ_REQ, {{HDR_AT(24), 8, 40}}, 16, CLOSE, 0},
    {"count 1, body one byte short", 1, KVX_WIRE_READ_REQ, {{HDR_AT(24), 8, 23}}, 0, CLOSE, 0},
    {"count 0", 1, KVX_WIRE_READ_REQ, {{BODY_AT(0), 4, 0}}, 0, CLOSE, 0},
    {"count 4097",
     1,
     KVX_WIRE_READ_REQ,
     {{BODY_AT(0), 4, KVX_WIRE_MAX_FRAME_DESCS + 1}},
     0,
     CLOSE,
     0},
    {"count 0xffffffff", 1, KVX_WIRE_READ_REQ, {{BODY_AT(0), 4, 0xffffffffu}}, 0, CLOSE, 0},
    {"descriptor list reserved", 1, KVX_WIRE_READ_REQ, {{BODY_AT(4), 4, 1}}, 0, CLOSE, 0},
    {"zero-length READ descriptor", 1, KVX_WIRE_READ_REQ, {{BODY_AT(16), 8, 0}}, 0, CLOSE, 0},
    {"checksummed READ of 64 MiB + 1",
     1,
     KVX_WIRE_READ_REQ,
     {{HDR_AT(6), 2, 0x2}, {BODY_AT(16), 8, (64u << 20) + 1}},
     0,
     CLOSE,
     0},
    {"zero-length WRITE descriptor", 1, KVX_WIRE_WRITE_REQ, {{BODY_AT(16), 8, 0}}, 0, CLOSE, 0},
    {"READ address wraps",
     1,
     KVX_WIRE_READ_REQ,
     {{BODY_AT(8), 8, 0xfffffffffffff000ull}, {BODY_AT(16), 8, 0x1000}},
     0,
     CLOSE,
     0},
    {"WRITE address wraps",
     1,
     KVX_WIRE_WRITE_REQ,
     {{BODY_AT(8), 8, UINT64_MAX}, {BODY_AT(16), 8, 16}},
     0,
     CLOSE,
     0},
    {"READ length over 1 TiB",
     1,
     KVX_WIRE_READ_REQ,
     {{BODY_AT(16), 8, (1ull << 40) + 1}},
     0,
     CLOSE,
     0},
    {"WRITE length 2^64-1", 1, KVX_WIRE_WRITE_REQ, {{BODY_AT(16), 8, UINT64_MAX}}, 0, CLOSE, 0},
    {"READ_RESP sent to the server", 1, KVX_WIRE_READ_RESP, {{0}}, 0, CLOSE, 0},
    {"WRITE_ACK sent to the server", 1, KVX_WIRE_WRITE_ACK, {{0}}, 0, CLOSE, 0},
    {"HELLO_ACK after HELLO", 1, KVX_WIRE_HELLO_ACK, {{0}}, 0, CLOSE, 0},
    {"NOTIFY_ACK sent to the server", 1, KVX_WIRE_NOTIFY_ACK, {{0}}, 0, CLOSE, 0},
    {"MEM_TABLE sent to the server", 1, KVX_WIRE_MEM_TABLE, {{0}}, 0, CLOSE, 0},
    {"second HELLO", 1, KVX_WIRE_HELLO, {{0}}, 0, CLOSE, 0},
    {"NOTIFY msg_len past the body", 1, KVX_WIRE_NOTIFY, {{BODY_AT(4), 4, 100}}, 0, CLOSE, 0},
    {"NOTIFY msg_len 0xffffffff", 1, KVX_WIRE_NOTIFY, {{BODY_AT(4), 4, 0xffffffffu}}, 0, CLOSE, 0},
    {"NOTIFY name_len 0xffff", 1, KVX_WIRE_NOTIFY, {{BODY_AT(0), 2, 0xffff}}, 0, CLOSE, 0},
    {"NOTIFY name_len short", 1, KVX_WIRE_NOTIFY, {{BODY_AT(0), 2, 6}}, 0, CLOSE, 0},
    {"NOTIFY name_len and msg_len both 13",
     1,
     KVX_WIRE_NOTIFY,
     {{BODY_AT(0), 2, 13}, {BODY_AT(4), 4, 13}},
     0,
     CLOSE,
     0},
    {"NOTIFY NUL in the name", 1, KVX_WIRE_NOTIFY, {{BODY_AT(8 + 2), 1, 0}}, 0, CLOSE, 0},
    {"NOTIFY reserved", 1, KVX_WIRE_NOTIFY, {{BODY_AT(2), 2, 1}}, 0, CLOSE, 0},
    {"NOTIFY body of 4 bytes", 1, KVX_WIRE_NOTIFY, {{HDR_AT(24), 8, 4}}, 0, CLOSE, 0},
    {"NOTIFY body_len over the max",
     1,
     KVX_WIRE_NOTIFY,
     {{HDR_AT(24), 8, KVX_WIRE_NOTIFY_FIXED + KVX_NOTIFY_NAME_MAX + KVX_NOTIFY_MSG_MAX + 1}},
     0,
     CLOSE,
     0},
    {"NOTIFY message over KVX_NOTIFY_MSG_MAX",
     1,
     KVX_WIRE_NOTIFY,
     {{HDR_AT(24), 8, KVX_WIRE_NOTIFY_FIXED + KVX_NOTIFY_MSG_MAX + 1},
      {BODY_AT(0), 2, 0},
      {BODY_AT(4), 4, KVX_NOTIFY_MSG_MAX + 1}},
     KVX_NOTIFY_MSG_MAX + 1 - 20,
     CLOSE,
     0},
};

static void run_case(fixture_t *f, const hostile_case_t *c)
{
    uint8_t frame[4096] = {0};
    size_t len = base_frame(f, c->type, frame);
    for (int i = 0; i < 3 && c->patch[i].width != 0; i++) {
        put_le(frame + c->patch[i].off, c->patch[i].width, c->patch[i].value);
    }
    len += c->append;
    assert_true(len <= sizeof(frame));
    int fd = c->hello ? raw_open(f) : raw_connect(f);
    assert_true(fd >= 0);
    /* One send, so the target reads the frame whole. */
    if (raw_send(fd, frame, len, IO_MS) != 0) {
        fail_msg("%s: send failed: %s", c->what, strerror(errno));
    }
    if (c->outcome == SERVED) {
        kvx_wire_hdr_t hdr;
        size_t cap = kvx_wire_mem_table_size(64);
        uint8_t *body = malloc(cap);
        assert_non_null(body);
        assert_int_equal(raw_recv_frame(fd, &hdr, body, cap, IO_MS), RAW_OK);
        free(body);
        assert_int_equal(hdr.type, KVX_WIRE_MEM_TABLE);
        assert_int_equal(hdr.status, KVX_OK);
        assert_false(raw_is_closed(fd));
        close(fd);
        return;
    }
    if (c->outcome == ACK_CLOSE) {
        kvx_wire_hdr_t hdr;
        uint8_t body[128];
        int rc = raw_recv_frame(fd, &hdr, body, sizeof(body), IO_MS);
        if (rc != RAW_OK) {
            fail_msg("%s: expected a HELLO_ACK, got %s", c->what,
                     rc == RAW_CLOSED ? "a close" : "nothing");
        }
        assert_int_equal(hdr.type, KVX_WIRE_HELLO_ACK);
        assert_int_equal(hdr.status, c->status);
    }
    size_t extra = 0;
    int rc = raw_wait_closed(fd, IO_MS, &extra);
    if (rc != RAW_CLOSED || extra != 0) {
        fail_msg("%s: expected the target to close the connection%s; got %s, %zu bytes", c->what,
                 c->outcome == ACK_CLOSE ? " after its HELLO_ACK" : " without a reply",
                 rc == RAW_CLOSED ? "a close" : "no close", extra);
    }
    close(fd);
}

static void test_malformed_frames(void **state)
{
    fixture_t *f = *state;
    for (size_t i = 0; i < sizeof(hostile_cases) / sizeof(hostile_cases[0]); i++) {
        run_case(f, &hostile_cases[i]);
        assert_healthy(f);
    }
    /* No WRITE_REQ above, refused or malformed, changed a byte. */
    assert_dst_zero(f);
}

/* A HELLO that claims the target's own instance: refused with
 * KVX_ERR_INVALID_PARAM, then closed. */
static void test_self_connect(void **state)
{
    fixture_t *f = *state;
    assert_true(f->instance != 0);
    int fd = raw_connect(f);
    assert_true(fd >= 0);
    uint8_t buf[128];
    size_t n = frame_hello(buf, 5, f->instance, "impostor");
    assert_int_equal(raw_send(fd, buf, n, IO_MS), 0);
    kvx_wire_hdr_t hdr;
    uint8_t body[128];
    assert_int_equal(raw_recv_frame(fd, &hdr, body, sizeof(body), IO_MS), RAW_OK);
    assert_int_equal(hdr.type, KVX_WIRE_HELLO_ACK);
    assert_int_equal(hdr.status, KVX_ERR_INVALID_PARAM);
    assert_int_equal(hdr.seq, 5);
    size_t extra = 0;
    assert_int_equal(raw_wait_closed(fd, IO_MS, &extra), RAW_CLOSED);
    assert_int_equal(extra, 0);
    close(fd);
    assert_healthy(f);
}

/* Wait until the peer's "dereg" succeeds (pins dropped), up to 5 s. */
static void dereg_eventually(fixture_t *f, uint64_t tag)
{
    char args[32];
    snprintf(args, sizeof(args), "%llu", (unsigned long long)tag);
    uint64_t deadline = test_now_ms() + 5000;
    int64_t st;
    while ((st = peer_cmd(f, "dereg", args)) == KVX_ERR_BUSY && test_now_ms() < deadline) {
        usleep(20000);
    }
    if (st != KVX_OK) {
        fail_msg("dereg %llu: %lld (memory still pinned by a dead connection?)",
                 (unsigned long long)tag, (long long)st);
    }
}

/* Frames cut short by a close, in every stage; pinned memory is released. */
static void test_truncated_then_close(void **state)
{
    fixture_t *f = *state;
    uint8_t frame[4096];

    /* Half a header, before HELLO. */
    int fd = raw_connect(f);
    size_t len = base_frame(f, KVX_WIRE_HELLO, frame);
    assert_int_equal(raw_send(fd, frame, 10, IO_MS), 0);
    close(fd);
    /* A HELLO missing its last bytes. */
    fd = raw_connect(f);
    assert_int_equal(raw_send(fd, frame, len - 3, IO_MS), 0);
    close(fd);
    /* A READ_REQ header and part of its body, after HELLO. */
    fd = raw_open(f);
    len = base_frame(f, KVX_WIRE_READ_REQ, frame);
    assert_int_equal(raw_send(fd, frame, KVX_WIRE_HDR_SIZE + 10, IO_MS), 0);
    usleep(20000);
    close(fd);
    assert_healthy(f);

    /* A WRITE_REQ whose payload stops early: the target pinned the region
     * for it and must unpin it when the connection dies. */
    const uint64_t tag_w = 50, tag_r = 51;
    const size_t size_w = 1u << 20, size_r = 16u << 20;
    char args[64];
    snprintf(args, sizeof(args), "%llu %zu", (unsigned long long)tag_w, size_w);
    assert_int_equal(peer_cmd(f, "reg", args), KVX_OK);
    snprintf(args, sizeof(args), "%llu %zu", (unsigned long long)tag_r, size_r);
    assert_int_equal(peer_cmd(f, "reg", args), KVX_OK);
    uint64_t wa = test_remote_region(f->engine, f->peer.name, tag_w);
    uint64_t ra = test_remote_region(f->engine, f->peer.name, tag_r);
    assert_true(wa != 0 && ra != 0);

    for (int direct = 0; direct < 2; direct++) {
        fd = raw_open(f);
        kvx_wire_desc_t d = {wa, size_w};
        uint8_t *req = frame_descs(KVX_WIRE_WRITE_REQ, ++f->seq, &d, 1, &len, NULL);
        assert_int_equal(raw_send(fd, req, len, IO_MS), 0);
        free(req);
        /* 1000 bytes land in the receive buffer; 100 KiB go straight in. */
        size_t part = direct ? 100000 : 1000;
        uint8_t *payload = calloc(1, part);
        assert_non_null(payload);
        usleep(direct ? 20000 : 0);
        assert_int_equal(raw_send(fd, payload, part, IO_MS), 0);
        free(payload);
        usleep(20000);
        close(fd);
    }
    assert_healthy(f);
    dereg_eventually(f, tag_w);

    /* A 16 MiB READ_REQ whose reader leaves without reading the response. */
    fd = raw_open(f);
    kvx_wire_desc_t d = {ra, size_r};
    uint8_t *req = frame_descs(KVX_WIRE_READ_REQ, ++f->seq, &d, 1, &len, NULL);
    assert_int_equal(raw_send(fd, req, len, IO_MS), 0);
    free(req);
    uint8_t some[4096];
    assert_int_equal(raw_recv(fd, some, sizeof(some), IO_MS), RAW_OK);
    close(fd);
    assert_healthy(f);
    dereg_eventually(f, tag_r);
    assert_healthy(f);
}

/* CPU seconds a process has used, from /proc; -1 if unknown. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return -1;
    }
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    const char *p = strrchr(text, ')');
    unsigned long ut, st;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* More connections than the target has file descriptors: it keeps serving
 * the links it has and accepts again once the hostile ones go away. A
 * second peer with a low descriptor limit, so the main one stays intact. */
static void test_fd_exhaustion(void **state)
{
    fixture_t *f = *state;
    enum { CONNS = 80 };
    test_peer_t p2;
    /* Quiet: while it cannot accept, the peer warns about each attempt. */
    setenv("KVX_LOG_LEVEL", "error", 1);
    int rc = test_peer_start(&p2, 0);
    unsetenv("KVX_LOG_LEVEL");
    assert_int_equal(rc, 0);
    struct rlimit lim;
    assert_int_equal(prlimit(p2.pid, RLIMIT_NOFILE, NULL, &lim), 0);
    lim.rlim_cur = 40;
    assert_int_equal(prlimit(p2.pid, RLIMIT_NOFILE, &lim, NULL), 0);
    assert_int_equal(test_connect(f->engine, p2.name, 10000), KVX_OK);
    uint64_t src2 = test_remote_region(f->engine, p2.name, PEER_TAG_SRC);
    assert_true(src2 != 0);

    int fds[CONNS];
    for (int i = 0; i < CONNS; i++) {
        fds[i] = raw_connect_to(&p2); /* the kernel completes it, accepted or not */
        assert_true(fds[i] >= 0);
    }
    usleep(200000);
    double cpu0 = proc_cpu_s(p2.pid);
    uint64_t t0 = test_now_ms();
    for (int i = 0; i < 10; i++) {
        kvx_xfer_desc_t d = {f->buf, src2 + (uint64_t)i * 8192, 8192};
        kvx_xfer_params_t p = xfer_deadline(IO_MS);
        assert_int_equal(kvx_xfer_sync(f->engine, p2.name, KVX_OP_READ, &d, 1, &p), KVX_OK);
        assert_int_equal(test_check(f->buf, 8192, PEER_TAG_SRC, (uint64_t)i * 8192), 0);
        usleep(100000);
    }
    double busy = proc_cpu_s(p2.pid) - cpu0;
    double wall = (double)(test_now_ms() - t0) / 1000.0;
    if (cpu0 >= 0 && busy > wall / 2) {
        /* Not an assertion (yet): see the report on accept() and EMFILE. */
        print_message("note: out of descriptors, the peer burned %.2f s of CPU in %.2f s\n", busy,
                      wall);
    }
    int st;
    assert_int_equal(waitpid(p2.pid, &st, WNOHANG), 0);

    for (int i = 0; i < CONNS; i++) {
        close(fds[i]);
    }
    /* It accepts again: a fresh handshake within the deadline. */
    int fd = raw_open_to(f, &p2);
    uint8_t out[64];
    kvx_wire_desc_t d = {src2 + 99, sizeof(out)};
    assert_int_equal(raw_read(f, fd, &d, 1, out), KVX_OK);
    assert_int_equal(test_check(out, sizeof(out), PEER_TAG_SRC, 99), 0);
    close(fd);
    assert_int_equal(kvx_engine_disconnect(f->engine, p2.name, IO_MS), KVX_OK);
    assert_int_equal(test_peer_stop(&p2), 0);
    assert_healthy(f);
}

/* 25 connections of garbage, 25 that never say HELLO, and one that sends
 * thousands of small READ_REQs without reading: the normal client still
 * works within its deadline; garbage is closed, the reads are all served. */
static void test_flood(void **state)
{
    fixture_t *f = *state;
    int garbage[FLOOD_GARBAGE];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    uint8_t junk[4096];
    for (int i = 0; i < FLOOD_GARBAGE; i++) {
        garbage[i] = raw_connect(f);
        assert_true(garbage[i] >= 0);
        for (size_t k = 0; k < sizeof(junk); k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            junk[k] = (uint8_t)x;
        }
        junk[0] = (uint8_t)(i & 1 ? 0x00 : 'K'); /* never the magic: 'K' 'V' 'X' '1' */
        junk[1] = 'Z';
        assert_int_equal(raw_send(garbage[i], junk, sizeof(junk), IO_MS), 0);
    }
    for (int i = 0; i < FLOOD_IDLE; i++) {
        f->idle[i] = raw_connect(f);
        assert_true(f->idle[i] >= 0);
    }

    /* The flooder: FLOOD_READS requests in one burst, no reading yet. */
    int flood = raw_open(f);
    size_t one = KVX_WIRE_HDR_SIZE + kvx_wire_descs_size(1);
    uint8_t *burst = malloc(one * FLOOD_READS);
    assert_non_null(burst);
    uint64_t first_seq = f->seq + 1;
    for (uint32_t i = 0; i < FLOOD_READS; i++) {
        kvx_wire_desc_t d = {f->src + (uint64_t)i * 4093 % (PEER_REGION - FLOOD_READ_LEN),
                             FLOOD_READ_LEN};
        size_t len;
        uint8_t *req = frame_descs(KVX_WIRE_READ_REQ, ++f->seq, &d, 1, &len, NULL);
        memcpy(burst + (size_t)i * one, req, one);
        free(req);
    }
    assert_int_equal(raw_send(flood, burst, one * FLOOD_READS, 10000), 0);
    free(burst);
    usleep(200000);

    /* Meanwhile the normal client gets through, within its deadline. */
    uint64_t t0 = test_now_ms();
    for (int i = 0; i < 20; i++) {
        kvx_xfer_desc_t d = {f->buf, f->src + (uint64_t)i * 65536, 65536};
        kvx_xfer_params_t p = xfer_deadline(5000);
        assert_int_equal(kvx_xfer_sync(f->engine, f->peer.name, KVX_OP_READ, &d, 1, &p), KVX_OK);
        assert_int_equal(test_check(f->buf, 65536, PEER_TAG_SRC, (uint64_t)i * 65536), 0);
    }
    assert_int_equal(peer_check(f, PEER_TAG_RO, 0, 4096, PEER_TAG_RO), 0);
    uint64_t took = test_now_ms() - t0;
    assert_true(took < 5000);
    assert_healthy(f);

    /* Garbage: closed. */
    for (int i = 0; i < FLOOD_GARBAGE; i++) {
        if (raw_wait_closed(garbage[i], IO_MS, NULL) != RAW_CLOSED) {
            fail_msg("garbage connection %d was not closed", i);
        }
        close(garbage[i]);
    }
    /* The flooder: every request answered, in order, with the right bytes. */
    uint8_t *payload = malloc(FLOOD_READ_LEN);
    assert_non_null(payload);
    for (uint32_t i = 0; i < FLOOD_READS; i++) {
        kvx_wire_hdr_t hdr;
        uint8_t body[8];
        uint64_t n;
        assert_int_equal(raw_recv_frame(flood, &hdr, body, sizeof(body), IO_MS), RAW_OK);
        assert_int_equal(hdr.type, KVX_WIRE_READ_RESP);
        assert_int_equal(hdr.status, KVX_OK);
        assert_int_equal(hdr.seq, first_seq + i);
        assert_int_equal(kvx_wire_decode_read_resp(body, (size_t)hdr.body_len, &n), KVX_OK);
        assert_int_equal(n, FLOOD_READ_LEN);
        assert_int_equal(raw_recv(flood, payload, FLOOD_READ_LEN, IO_MS), RAW_OK);
        uint64_t off = (uint64_t)i * 4093 % (PEER_REGION - FLOOD_READ_LEN);
        assert_int_equal(test_check(payload, FLOOD_READ_LEN, PEER_TAG_SRC, off), 0);
    }
    free(payload);
    close(flood);
    /* The idle ones are the next test's: the handshake deadline drops them. */
    for (int i = 0; i < FLOOD_IDLE; i++) {
        assert_false(raw_is_closed(f->idle[i]));
    }
    assert_healthy(f);
}

/* A connection idle after HELLO blocks nobody and stays open; one that
 * never completes HELLO is dropped at the handshake deadline (10 s). */
static void test_handshake_deadline(void **state)
{
    fixture_t *f = *state;
    uint64_t t0 = test_now_ms();
    int nohello = raw_connect(f);
    int partial = raw_connect(f);
    assert_true(nohello >= 0 && partial >= 0);
    uint8_t frame[128];
    base_frame(f, KVX_WIRE_HELLO, frame);
    assert_int_equal(raw_send(partial, frame, 20, IO_MS), 0);
    int idle = raw_open(f);

    uint64_t closed_at[2] = {0, 0};
    int fds[2] = {nohello, partial};
    while ((closed_at[0] == 0 || closed_at[1] == 0) && test_now_ms() - t0 < 15000) {
        struct pollfd pfd[2];
        for (int i = 0; i < 2; i++) {
            pfd[i] = (struct pollfd){.fd = closed_at[i] ? -1 : fds[i], .events = POLLIN};
        }
        poll(pfd, 2, 250);
        for (int i = 0; i < 2; i++) {
            if (closed_at[i] == 0 && raw_is_closed(fds[i])) {
                closed_at[i] = test_now_ms();
            }
        }
        assert_healthy(f); /* others are served all along */
    }
    for (int i = 0; i < 2; i++) {
        if (closed_at[i] == 0) {
            fail_msg("connection without HELLO (%s) still open after 15 s",
                     i ? "partial" : "silent");
        }
        uint64_t after = closed_at[i] - t0;
        /* Not before the 10 s deadline (less the time to accept), not much after. */
        assert_true(after >= 9000 && after <= 15000);
        close(fds[i]);
    }
    /* The flood's idle connections are older: gone too. */
    for (int i = 0; i < FLOOD_IDLE; i++) {
        if (f->idle[i] < 0) {
            continue;
        }
        assert_int_equal(raw_wait_closed(f->idle[i], 1000, NULL), RAW_CLOSED);
        close(f->idle[i]);
        f->idle[i] = -1;
    }
    /* The one idle after HELLO sent no keepalive either: past half the
     * target's peer_timeout_ms (5 s by default) it is closed as dead. */
    assert_int_equal(raw_wait_closed(idle, 1000, NULL), RAW_CLOSED);
    close(idle);
    /* A link that is used now and then stays open across the same time. */
    int used = raw_open(f);
    for (int i = 0; i < 12; i++) {
        uint8_t out[64];
        kvx_wire_desc_t d = {f->src + 777, sizeof(out)};
        assert_int_equal(raw_read(f, used, &d, 1, out), KVX_OK);
        assert_int_equal(test_check(out, sizeof(out), PEER_TAG_SRC, 777), 0);
        usleep(250 * 1000);
        assert_healthy(f); /* the bystander link is used now and then too */
    }
    close(used);
    assert_healthy(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_checks),         cmocka_unit_test(test_mem_query_and_notify),
        cmocka_unit_test(test_write_refused),       cmocka_unit_test(test_write_valid),
        cmocka_unit_test(test_pipelined_fragments), cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_self_connect),        cmocka_unit_test(test_truncated_then_close),
        cmocka_unit_test(test_fd_exhaustion),       cmocka_unit_test(test_flood),
        cmocka_unit_test(test_handshake_deadline),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

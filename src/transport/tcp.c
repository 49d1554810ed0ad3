/*
 * The tcp transport: non-blocking sockets, one epoll loop per I/O thread.
 *
 * Each link is one TCP connection owned by one I/O thread. The initiator
 * sends request frames (docs/protocol.md) and the target answers them in
 * order. Payload never passes through a staging buffer on the send side:
 * writev() gathers headers and registered memory directly, packing many
 * small frames into one call. On the receive side a payload lands in its
 * destination with readv(); only bytes that arrived in the same read as a
 * header are copied out of the receive buffer.
 *
 * Locks: conn->lock guards a connection's send queue, pending frames, ops
 * and state. Upcalls and done() callbacks are never made while holding it,
 * so the engine may call close/connect/retain/release under its own lock.
 * Only the owning I/O thread closes a socket. It also reads from it, except
 * while a sync caller has borrowed the receive side (tcp_submit): the
 * caller then reads its own reply, which saves waking the I/O thread and
 * then the caller. rx_lock is held by whoever is reading (between reads a
 * borrower holds only rx_borrowed, which keeps the I/O thread off); conn_fail
 * waits for a borrow to end before it closes the socket.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "device/device_internal.h"
#include "transport/auth.h"
#include "transport/checksum.h"
#include "transport/shm.h"
#include "transport/transport.h"
#include "util/error.h"
#include "util/time.h"

#define RBUF_SIZE            (256 * 1024)
#define IOV_BATCH            1024                /* the kernel's IOV_MAX */
#define READ_BUDGET          (8u << 20)          /* bytes per connection per wakeup */
#define TICK_NS              (5ull * 1000000ull) /* deadline scan period */
#define HANDSHAKE_TIMEOUT_NS (10000ull * 1000000ull)
#define DIRECT_READ_MIN      4096 /* smaller payload goes via rbuf */

typedef struct tcp_thread tcp_thread_t;

/* Something to send: iovecs over a header buffer and, for payload, memory. */
typedef struct send_item {
    struct send_item *next;
    struct iovec *iov;
    int iovcnt;
    int iov_idx;
    void *pin;       /* target side: memory pinned until sent */
    int close_after; /* refuse-and-close replies */
    int keepalive;   /* sending it is no sign that the peer is alive */
    int started;     /* some of its bytes went out */
    kvx_tp_op_t *op; /* request frames: the op it belongs to, and its seq */
    uint64_t seq;
} send_item_t;

/* A request frame waiting for its response (initiator side). */
typedef struct frame {
    struct frame *next;
    uint64_t seq;
    uint8_t resp_type;
    kvx_tp_op_t *op; /* NULL once cancelled: its READ payload goes to the bin */
    size_t first;    /* READ: descriptors op->descs[first .. first+n) */
    size_t n;
    uint64_t payload; /* READ: bytes expected */
    int checksum;     /* sent with KVX_WIRE_FLAG_CSUM */
    uint64_t hash;    /* READ: the target's XXH3 of the payload */
} frame_t;

/* C_DRAINING: a disconnect stopped sending and waits for the target to
 * close its side, which says every byte sent has been handled there. */
enum conn_state { C_CONNECTING, C_HELLO, C_READY, C_DRAINING, C_CLOSED };
#define DRAIN_TIMEOUT_NS (1000ull * 1000000ull)
/* Handshake steps of authentication (both within C_HELLO). */
enum auth_step { A_NONE, A_WAIT_CHALLENGE, A_WAIT_OK, A_WAIT_PROOF };
enum recv_stage { R_HDR, R_BODY, R_PAYLOAD };

struct kvx_tp_conn {
    kvx_tp_t *tp;
    tcp_thread_t *th;
    int fd;
    int outgoing;
    int refs; /* atomic */
    void *peer_ctx;
    char peer_name[KVX_ENGINE_NAME_MAX]; /* remote's own name, from HELLO */
    uint64_t handshake_deadline;

    pthread_mutex_t lock;
    enum conn_state state;
    send_item_t *sq_head, *sq_tail;
    int want_out;    /* EPOLLOUT armed */
    size_t sq_items; /* queued items: replies wait here for a slow reader */
    int read_paused; /* too many replies queued: stop reading requests */
    frame_t *fr_head, *fr_tail;
    kvx_tp_op_t *ops; /* in flight, for deadlines */
    uint64_t next_seq;
    int close_requested;
    kvx_status_t close_reason;
    uint64_t drain_deadline;

    /* receive side: owning thread only */
    uint8_t *rbuf;
    size_t rcap, rstart, rend;
    enum recv_stage stage;
    kvx_wire_hdr_t rhdr;
    struct iovec *piov;
    int piovcnt, piov_idx;
    uint64_t premaining;
    int pdiscard;
    uint64_t last_live_ns; /* atomic: last sign of life (rx, or tx of frames) */
    uint64_t last_tx_ns;   /* under lock: the last write that sent bytes */
    frame_t *pframe;       /* initiator: READ_RESP being received */
    kvx_shm_link_t *shm;   /* initiator: same-host data path, once set up */
    kvx_shm_pins_t *pins;  /* target: this link's pins on our slot table */
    int shm_offered;
    int shm_answered;
    uint64_t peer_instance;  /* from HELLO / HELLO_ACK */
    uint64_t ready_instance; /* atomic: peer_instance while C_READY, else 0 */
    uint64_t silence_ns;     /* peer timeout: ours, or the remote's if smaller */
    enum auth_step auth;
    uint8_t nonce_mine[KVX_WIRE_AUTH_NONCE];
    uint8_t nonce_peer[KVX_WIRE_AUTH_NONCE];
    void *ppin;      /* target: WRITE_REQ memory pinned */
    int pcsum;       /* target: the WRITE_REQ carries a checksum */
    uint32_t pcount; /* ... over wdescs[0 .. pcount) */
    uint64_t phash;  /* ... this one */
    kvx_status_t pstatus;
    uint64_t pseq;
    kvx_wire_desc_t *wdescs;

    /* receive-side borrowing by a sync caller (see the top of the file) */
    pthread_mutex_t rx_lock; /* held by the reader of the socket */
    pthread_cond_t rx_cond;  /* with lock: a borrow ended */
    int rx_borrowed;         /* under lock */
    kvx_tp_op_t *borrow_op;  /* the borrower's op, done once borrow_done */
    int borrow_done;

    struct kvx_tp_conn *th_next, *th_prev;
};

typedef struct tcp_cmd {
    struct tcp_cmd *next;
    kvx_tp_conn_t *conn;
    kvx_status_t close_reason; /* KVX_OK: add the connection */
} tcp_cmd_t;

struct tcp_thread {
    kvx_tp_t *tp;
    pthread_t tid;
    int epfd;
    int evfd;
    pthread_mutex_t cmd_lock;
    tcp_cmd_t *cmds;
    int stop;
    kvx_tp_conn_t *conns;
    uint64_t next_tick;
};

enum shm_mode { SHM_OFF, SHM_AUTO, SHM_ONLY };

struct kvx_tp {
    kvx_tp_upcalls_t up;
    enum shm_mode shm_mode;     /* KVX_TRANSPORT: tcp, auto (default) or shm */
    kvx_shm_table_t *shm_table; /* our registrations, for same-host peers */
    uint64_t instance;
    unsigned nthreads;
    uint8_t *secret; /* shared secret, or NULL: no authentication */
    size_t secret_len;
    uint64_t busy_poll_ns;    /* sync callers poll for their reply this long */
    uint64_t peer_timeout_ns; /* outgoing links; incoming ones get half */
    uint32_t peer_timeout_ms; /* the same, as stated in our HELLO / HELLO_ACK */
    tcp_thread_t *threads;
    int listen_fd;
    uint64_t listen_paused_until; /* out of fds: accept again after this */
    kvx_addr_t bound;
    unsigned rr; /* atomic round robin */
};

static void conn_fail(kvx_tp_conn_t *conn, kvx_status_t reason, uint64_t expired_before);
static void conn_receive_own_reply(kvx_tp_conn_t *conn, kvx_tp_op_t *op);

/* ------------------------------------------------------------- helpers */

static void conn_retain(kvx_tp_conn_t *conn)
{
    __atomic_add_fetch(&conn->refs, 1, __ATOMIC_RELAXED);
}

static void conn_release(kvx_tp_conn_t *conn)
{
    if (__atomic_sub_fetch(&conn->refs, 1, __ATOMIC_ACQ_REL) != 0) {
        return;
    }
    kvx_shm_link_close(conn->shm);
    /* Only a link that never reached its thread still has items here. */
    for (send_item_t *it = conn->sq_head, *next; it != NULL; it = next) {
        next = it->next;
        free(it);
    }
    free(conn->rbuf);
    free(conn->piov);
    free(conn->wdescs);
    pthread_mutex_destroy(&conn->lock);
    pthread_mutex_destroy(&conn->rx_lock);
    pthread_cond_destroy(&conn->rx_cond);
    free(conn);
}

static kvx_status_t errno_status(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return KVX_ERR_CONNECTION_REFUSED;
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ENOTCONN:
        return KVX_ERR_CONNECTION_LOST;
    case ETIMEDOUT:
        return KVX_ERR_TIMEOUT;
    case ENOMEM:
    case ENOBUFS:
        return KVX_ERR_NO_MEMORY;
    default:
        return KVX_ERR_IO;
    }
}

static void thread_wake(tcp_thread_t *th)
{
    uint64_t one = 1;
    ssize_t n = write(th->evfd, &one, sizeof(one));
    (void)n; /* a full eventfd is already a pending wakeup */
}

static kvx_status_t thread_post(tcp_thread_t *th, kvx_tp_conn_t *conn, kvx_status_t reason)
{
    tcp_cmd_t *cmd = malloc(sizeof(*cmd));
    if (cmd == NULL) {
        return KVX_ERR_NO_MEMORY;
    }
    cmd->conn = conn;
    cmd->close_reason = reason;
    conn_retain(conn);
    pthread_mutex_lock(&th->cmd_lock);
    /* Commands run in order: push at the tail. */
    cmd->next = NULL;
    tcp_cmd_t **tail = &th->cmds;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *tail = cmd;
    pthread_mutex_unlock(&th->cmd_lock);
    thread_wake(th);
    return KVX_OK;
}

static void conn_set_events(kvx_tp_conn_t *conn, int op)
{
    struct epoll_event ev = {.events = (conn->read_paused || conn->rx_borrowed ? 0 : EPOLLIN) |
                                       (conn->want_out ? EPOLLOUT : 0),
                             .data.ptr = conn};
    if (epoll_ctl(conn->th->epfd, op, conn->fd, &ev) != 0 && op != EPOLL_CTL_DEL) {
        kvx_error("tcp: epoll_ctl on fd %d failed: %m", conn->fd);
    }
}

static send_item_t *item_new(size_t buf_len, int extra_iov, uint8_t **buf_p)
{
    size_t iov_bytes = (size_t)(1 + extra_iov) * sizeof(struct iovec);
    send_item_t *item = malloc(sizeof(*item) + iov_bytes + buf_len);
    if (item == NULL) {
        return NULL;
    }
    memset(item, 0, sizeof(*item));
    item->iov = (struct iovec *)(item + 1);
    uint8_t *buf = (uint8_t *)item->iov + iov_bytes;
    item->iov[0].iov_base = buf;
    item->iov[0].iov_len = buf_len;
    item->iovcnt = 1;
    *buf_p = buf;
    return item;
}

/* A header-plus-body frame with no payload. */
static send_item_t *item_frame(uint8_t type, int32_t status, uint64_t seq, size_t body_len,
                               uint8_t **body_p)
{
    uint8_t *buf;
    send_item_t *item = item_new(KVX_WIRE_HDR_SIZE + body_len, 0, &buf);
    if (item == NULL) {
        return NULL;
    }
    kvx_wire_hdr_t hdr = {.type = type, .status = status, .seq = seq, .body_len = body_len};
    kvx_wire_encode_hdr(buf, &hdr);
    if (body_p != NULL) {
        *body_p = buf + KVX_WIRE_HDR_SIZE;
    }
    return item;
}

/* A peer that sends requests but does not read the replies would make the
 * target queue without end: past SQ_HIGH items it stops reading that link
 * until the queue is back under SQ_LOW. */
#define SQ_HIGH 4096
#define SQ_LOW  1024

static void sq_push(kvx_tp_conn_t *conn, send_item_t *item)
{
    conn->sq_items++;
    item->next = NULL;
    if (conn->sq_tail != NULL) {
        conn->sq_tail->next = item;
    } else {
        conn->sq_head = item;
    }
    conn->sq_tail = item;
}

/* Write as much of the send queue as the socket takes. conn->lock held.
 * Finished items that pin memory go to *done_p, to unpin without the lock.
 * Returns 0, or -1 with errno on a socket error. */
static int conn_flush(kvx_tp_conn_t *conn, send_item_t **done_p, int *close_p)
{
    struct iovec iov[IOV_BATCH];
    while (conn->sq_head != NULL) {
        int n = 0;
        size_t asked = 0;
        for (send_item_t *it = conn->sq_head; it != NULL && n < IOV_BATCH; it = it->next) {
            for (int i = it->iov_idx; i < it->iovcnt && n < IOV_BATCH; i++) {
                asked += it->iov[i].iov_len;
                iov[n++] = it->iov[i];
            }
        }
        /* A keepalive on its own fits any socket buffer, even a dead peer's:
         * only the progress of other frames says the peer still reads. */
        int only_keepalive = conn->sq_head->keepalive && conn->sq_head->next == NULL;
        ssize_t sent = writev(conn->fd, iov, n);
        if (sent < 0) {
            if (errno == EINTR) {
                continue;
            }
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        if (sent > 0) {
            uint64_t now = kvx_now_ns();
            conn->last_tx_ns = now;
            if (!only_keepalive) {
                __atomic_store_n(&conn->last_live_ns, now, __ATOMIC_RELAXED);
            }
        }
        size_t left = (size_t)sent;
        while (conn->sq_head != NULL) {
            send_item_t *it = conn->sq_head;
            if (left > 0) {
                it->started = 1;
            }
            while (it->iov_idx < it->iovcnt && left >= it->iov[it->iov_idx].iov_len) {
                left -= it->iov[it->iov_idx].iov_len;
                it->iov_idx++;
            }
            if (it->iov_idx < it->iovcnt) {
                struct iovec *cur = &it->iov[it->iov_idx];
                cur->iov_base = (uint8_t *)cur->iov_base + left;
                cur->iov_len -= left;
                break;
            }
            conn->sq_head = it->next;
            conn->sq_items--;
            if (conn->sq_head == NULL) {
                conn->sq_tail = NULL;
            }
            if (it->close_after) {
                *close_p = 1;
            }
            if (it->pin != NULL) {
                it->next = *done_p;
                *done_p = it;
            } else {
                free(it);
            }
        }
        if ((size_t)sent < asked) {
            /* A short write means the socket buffer is full: wait for EPOLLOUT
             * instead of paying for a writev that returns EAGAIN. */
            break;
        }
    }
    return 0;
}

static void items_finish(kvx_tp_t *tp, send_item_t *items)
{
    for (send_item_t *it = items, *next; it != NULL; it = next) {
        next = it->next;
        if (it->pin != NULL) {
            tp->up.unpin(tp->up.ctx, it->pin);
        }
        free(it);
    }
}

/* Flush after queueing; arm EPOLLOUT for the rest. conn->lock held. */
static int conn_kick(kvx_tp_conn_t *conn, send_item_t **done_p, int *close_p)
{
    if (conn->state == C_CONNECTING) {
        return 0; /* the connect completion flushes */
    }
    if (conn->state == C_DRAINING || conn->state == C_CLOSED) {
        return 0; /* the write side is shut: nothing more leaves */
    }
    if (conn_flush(conn, done_p, close_p) != 0) {
        return -1;
    }
    int want = conn->sq_head != NULL;
    if (want != conn->want_out) {
        conn->want_out = want;
        conn_set_events(conn, EPOLL_CTL_MOD);
    }
    return 0;
}

/* --------------------------------------------------------- connections */

/* The handshake is done: silence and keepalives count from now. lock held. */
static void conn_mark_live(kvx_tp_conn_t *conn)
{
    uint64_t now = kvx_now_ns();
    conn->last_tx_ns = now;
    __atomic_store_n(&conn->last_live_ns, now, __ATOMIC_RELAXED);
}

/* The remote stated its peer timeout in its HELLO (0: none): the link
 * uses the smaller of the two. Owning thread, during the handshake. */
static void adopt_silence(kvx_tp_conn_t *conn, uint32_t stated_ms)
{
    uint64_t stated = (uint64_t)stated_ms * 1000000ull;
    if (stated != 0 && stated < conn->silence_ns) {
        conn->silence_ns = stated;
    }
}

static kvx_tp_conn_t *conn_new(kvx_tp_t *tp, int fd, int outgoing)
{
    kvx_tp_conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        return NULL;
    }
    conn->silence_ns = tp->peer_timeout_ns; /* until the handshake says more */
    conn->rbuf = malloc(RBUF_SIZE);
    conn->piov = malloc(KVX_WIRE_MAX_FRAME_DESCS * sizeof(*conn->piov));
    conn->wdescs = malloc(KVX_WIRE_MAX_FRAME_DESCS * sizeof(*conn->wdescs));
    if (conn->rbuf == NULL || conn->piov == NULL || conn->wdescs == NULL) {
        free(conn->rbuf);
        free(conn->piov);
        free(conn->wdescs);
        free(conn);
        return NULL;
    }
    conn->rcap = RBUF_SIZE;
    conn->tp = tp;
    conn->fd = fd;
    conn->outgoing = outgoing;
    conn->refs = 1;
    conn->next_seq = 1;
    pthread_mutex_init(&conn->lock, NULL);
    pthread_mutex_init(&conn->rx_lock, NULL);
    pthread_cond_init(&conn->rx_cond, NULL);
    unsigned idx = __atomic_fetch_add(&tp->rr, 1, __ATOMIC_RELAXED) % tp->nthreads;
    conn->th = &tp->threads[idx];
    return conn;
}

static void sock_tune(int fd)
{
    int one = 1;
    /* Small frames (acks, 4 KiB reads) must not wait for Nagle. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static kvx_status_t tcp_connect(kvx_tp_t *tp, const kvx_addr_t *remote, const char *local_name,
                                uint64_t deadline_ns, void *peer_ctx, kvx_tp_conn_t **conn_p)
{
    int fd = socket(remote->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return KVX_FAIL(errno_status(errno), "tcp: socket() failed: %s", strerror(errno));
    }
    sock_tune(fd);
    int rc = connect(fd, (const struct sockaddr *)&remote->sa, remote->sa_len);
    if (rc != 0 && errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return KVX_FAIL(errno_status(err), "tcp: connect failed: %s", strerror(err));
    }
    kvx_tp_conn_t *conn = conn_new(tp, fd, 1);
    if (conn == NULL) {
        close(fd);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: out of memory");
    }
    conn->peer_ctx = peer_ctx;
    conn->state = C_CONNECTING;
    conn->handshake_deadline = deadline_ns;
    size_t name_len = strlen(local_name);
    uint8_t *body;
    send_item_t *hello = item_frame(KVX_WIRE_HELLO, 0, 0, kvx_wire_hello_size(name_len), &body);
    if (hello == NULL) {
        close(fd);
        conn_release(conn);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: out of memory");
    }
    kvx_wire_encode_hello(body, tp->instance, local_name, name_len);
    kvx_wire_hello_set_silence(body, tp->peer_timeout_ms);
    sq_push(conn, hello);
    conn->want_out = 1; /* connect completion shows as writable */
    conn_retain(conn);  /* the caller's reference */
    kvx_status_t status = thread_post(conn->th, conn, KVX_OK);
    conn_release(conn); /* thread_post took the thread's own */
    if (status != KVX_OK) {
        close(fd);
        conn_release(conn);
        return KVX_FAIL(status, "tcp: out of memory");
    }
    *conn_p = conn;
    return KVX_OK;
}

static void tcp_close(kvx_tp_conn_t *conn, kvx_status_t reason)
{
    pthread_mutex_lock(&conn->lock);
    int first = !conn->close_requested;
    conn->close_requested = 1;
    if (first) {
        conn->close_reason = reason; /* the first reason is the one ops see */
    }
    pthread_mutex_unlock(&conn->lock);
    if (first && thread_post(conn->th, conn, reason) != KVX_OK) {
        /* No memory for a command: the next tick closes it instead. */
        thread_wake(conn->th);
    }
}

/* Queue the frames of one op. conn->lock held. */
static kvx_status_t queue_op(kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    send_item_t *items = NULL, **tail = &items;
    frame_t *frames = NULL, **ftail = &frames;
    size_t nframes = 0;
    kvx_status_t status = KVX_OK;
    uint64_t seq = conn->next_seq;

    if (op->kind == KVX_TP_OP_READ || op->kind == KVX_TP_OP_WRITE) {
        int write = op->kind == KVX_TP_OP_WRITE;
        size_t n = 0;
        for (size_t first = 0; first < op->count; first += n) {
            /* A frame holds at most KVX_WIRE_MAX_FRAME_DESCS descriptors and
             * KVX_WIRE_MAX_PAYLOAD bytes, KVX_WIRE_MAX_CSUM_PAYLOAD with a
             * checksum (a descriptor is below it: the engine refuses longer
             * ones, and splits them for checksummed transfers). */
            uint64_t bytes = 0,
                     max_bytes = op->checksum ? KVX_WIRE_MAX_CSUM_PAYLOAD : KVX_WIRE_MAX_PAYLOAD;
            n = 0;
            while (first + n < op->count && n < KVX_WIRE_MAX_FRAME_DESCS &&
                   (n == 0 || bytes + op->descs[first + n].length <= max_bytes)) {
                bytes += op->descs[first + n].length;
                n++;
            }
            uint8_t *buf;
            size_t tag_len = op->has_remote_tag ? 8 : 0;
            size_t csum_len = (op->checksum && write) ? 8 : 0;
            size_t body_len = tag_len + csum_len + kvx_wire_descs_size((uint32_t)n);
            send_item_t *item = item_new(KVX_WIRE_HDR_SIZE + body_len, write ? (int)n : 0, &buf);
            frame_t *fr = calloc(1, sizeof(*fr));
            if (item == NULL || fr == NULL) {
                free(item);
                free(fr);
                status = KVX_ERR_NO_MEMORY;
                goto fail;
            }
            kvx_wire_hdr_t hdr = {.type = write ? KVX_WIRE_WRITE_REQ : KVX_WIRE_READ_REQ,
                                  .flags = (op->has_remote_tag ? KVX_WIRE_FLAG_TAG : 0) |
                                           (op->checksum ? KVX_WIRE_FLAG_CSUM : 0),
                                  .seq = seq,
                                  .body_len = body_len};
            kvx_wire_encode_hdr(buf, &hdr);
            if (op->has_remote_tag) {
                kvx_wire_encode_u64(buf + KVX_WIRE_HDR_SIZE, op->remote_tag);
            }
            if (csum_len != 0) {
                /* Hashed now: the caller may not touch the source until done. */
                kvx_wire_encode_u64(buf + KVX_WIRE_HDR_SIZE + tag_len,
                                    kvx_checksum_local(op->descs + first, n));
            }
            kvx_wire_encode_descs_hdr(buf + KVX_WIRE_HDR_SIZE + tag_len + csum_len, (uint32_t)n);
            uint8_t *p = buf + KVX_WIRE_HDR_SIZE + tag_len + csum_len + KVX_WIRE_DESCS_HDR_SIZE;
            uint64_t total = 0;
            for (size_t i = 0; i < n; i++, p += KVX_WIRE_DESC_SIZE) {
                const kvx_xfer_desc_t *d = &op->descs[first + i];
                kvx_wire_encode_desc(p, d->remote_addr, d->length);
                total += d->length;
                if (write) {
                    item->iov[1 + i].iov_base = d->local_addr;
                    item->iov[1 + i].iov_len = d->length;
                }
            }
            item->iovcnt = write ? (int)n + 1 : 1;
            item->op = op;
            item->seq = seq;
            *fr = (frame_t){.seq = seq++,
                            .resp_type = write ? KVX_WIRE_WRITE_ACK : KVX_WIRE_READ_RESP,
                            .op = op,
                            .first = first,
                            .n = n,
                            .payload = total,
                            .checksum = op->checksum};
            *tail = item;
            tail = &item->next;
            *ftail = fr;
            ftail = &fr->next;
            nframes++;
        }
    } else {
        uint8_t *body = NULL;
        send_item_t *item;
        frame_t *fr = calloc(1, sizeof(*fr));
        if (op->kind == KVX_TP_OP_NOTIFY) {
            item = item_frame(KVX_WIRE_NOTIFY, 0, seq,
                              kvx_wire_notify_size(op->name_len, op->msg_len), &body);
            if (item != NULL) {
                kvx_wire_encode_notify(body, op->name, op->name_len, op->msg, op->msg_len);
            }
        } else {
            item = item_frame(KVX_WIRE_MEM_QUERY, 0, seq, 0, NULL);
        }
        if (item == NULL || fr == NULL) {
            free(item);
            free(fr);
            status = KVX_ERR_NO_MEMORY;
            goto fail;
        }
        fr->seq = seq++;
        fr->resp_type = (op->kind == KVX_TP_OP_NOTIFY) ? KVX_WIRE_NOTIFY_ACK : KVX_WIRE_MEM_TABLE;
        fr->op = op;
        *tail = item;
        *ftail = fr;
        nframes = 1;
    }

    conn->next_seq = seq;
    op->tp_frames_left = nframes;
    op->tp_status = KVX_OK;
    op->tp_prev = NULL;
    op->tp_next = conn->ops;
    if (conn->ops != NULL) {
        conn->ops->tp_prev = op;
    }
    conn->ops = op;
    for (send_item_t *it = items, *next; it != NULL; it = next) {
        next = it->next;
        sq_push(conn, it);
    }
    for (frame_t *fr = frames, *next; fr != NULL; fr = next) {
        next = fr->next;
        fr->next = NULL;
        if (conn->fr_tail != NULL) {
            conn->fr_tail->next = fr;
        } else {
            conn->fr_head = fr;
        }
        conn->fr_tail = fr;
    }
    return KVX_OK;

fail:
    for (send_item_t *it = items, *next; it != NULL; it = next) {
        next = it->next;
        free(it);
    }
    for (frame_t *fr = frames, *next; fr != NULL; fr = next) {
        next = fr->next;
        free(fr);
    }
    return KVX_FAIL(status, "tcp: out of memory queueing a request");
}

static kvx_status_t tcp_submit(kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    send_item_t *done = NULL;
    int close_now = 0;
    pthread_mutex_lock(&conn->lock);
    if (conn->state != C_READY || conn->close_requested) {
        pthread_mutex_unlock(&conn->lock);
        return KVX_FAIL(KVX_ERR_CONNECTION_LOST, "tcp: link to %s is not open", conn->peer_name);
    }
    if (conn->shm != NULL && !op->checksum &&
        (op->kind == KVX_TP_OP_READ || op->kind == KVX_TP_OP_WRITE)) {
        /* Same host: the caller's thread copies; the target does nothing.
         * The caller holds a reference, so the link outlives the copy. */
        pthread_mutex_unlock(&conn->lock);
        kvx_status_t st = kvx_shm_link_xfer(conn->shm, op->kind == KVX_TP_OP_WRITE, op->descs,
                                            op->count, op->has_remote_tag ? &op->remote_tag : NULL);
        if (st != KVX_ERR_REMOTE_ACCESS) {
            op->done(op, st);
            return KVX_OK;
        }
        /* Refused before any byte moved (memory without a slot, or changed
         * since our snapshot): let the target decide, over the socket. */
        pthread_mutex_lock(&conn->lock);
        if (conn->state != C_READY || conn->close_requested) {
            pthread_mutex_unlock(&conn->lock);
            return KVX_FAIL(KVX_ERR_CONNECTION_LOST, "tcp: link to %s is not open",
                            conn->peer_name);
        }
    }
    kvx_status_t status = queue_op(conn, op);
    if (status == KVX_OK && conn_kick(conn, &done, &close_now) != 0) {
        /* The owning thread sees the same error on its next event and
         * fails every op of the link, this one included. */
        shutdown(conn->fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&conn->lock);
    items_finish(conn->tp, done);
    if (status == KVX_OK && op->caller_waits) {
        conn_receive_own_reply(conn, op);
    }
    return status;
}

/* Lock-free: the engine asks under engine->lock, which must not take
 * conn->lock (see the lock order in docs/architecture.md). */
static uint64_t tcp_peer_instance(kvx_tp_conn_t *conn)
{
    return __atomic_load_n(&conn->ready_instance, __ATOMIC_ACQUIRE);
}

/* Take an ended op off the link's list. conn->lock held. */
static void op_unlink(kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    if (op->tp_prev != NULL) {
        op->tp_prev->tp_next = op->tp_next;
    } else {
        conn->ops = op->tp_next;
    }
    if (op->tp_next != NULL) {
        op->tp_next->tp_prev = op->tp_prev;
    }
}

/* Send a READ's reply payload to the bin from now on: of @p op, or of every
 * READ if @p op is NULL. Returns the frames orphaned. conn->lock and the
 * receive side (rx_lock, or the owning thread) held. */
static size_t orphan_reads(kvx_tp_conn_t *conn, const kvx_tp_op_t *op)
{
    size_t n = 0;
    for (frame_t *fr = conn->fr_head; fr != NULL; fr = fr->next) {
        if (fr->op != NULL && (op != NULL ? fr->op == op : fr->op->kind == KVX_TP_OP_READ)) {
            fr->op = NULL;
            n++;
        }
    }
    frame_t *cur = conn->pframe; /* its reply is being received */
    if (cur != NULL && cur->op != NULL && (op == NULL || cur->op == op)) {
        cur->op = NULL;
        conn->pdiscard = 1;
        n++;
    }
    return n;
}

static int op_is_live(const kvx_tp_conn_t *conn, const kvx_tp_op_t *op)
{
    for (const kvx_tp_op_t *o = conn->ops; o != NULL; o = o->tp_next) {
        if (o == op) {
            return 1;
        }
    }
    return 0;
}

/* Unlink the frame of @p seq from the pending list. conn->lock held. */
static void frame_unlink(kvx_tp_conn_t *conn, uint64_t seq)
{
    frame_t *prev = NULL;
    for (frame_t *fr = conn->fr_head; fr != NULL; prev = fr, fr = fr->next) {
        if (fr->seq != seq) {
            continue;
        }
        if (prev != NULL) {
            prev->next = fr->next;
        } else {
            conn->fr_head = fr->next;
        }
        if (conn->fr_tail == fr) {
            conn->fr_tail = prev;
        }
        free(fr);
        return;
    }
}

/* Frames of @p op not yet on the wire are dropped; a READ's other frames
 * are orphaned, so their payload goes to the bin; a WRITE's frames that
 * started must be acknowledged before the op ends, or the target could
 * still write their bytes after the caller reused its memory. */
static kvx_status_t tcp_cancel(kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    /* Holding rx_lock, no read is writing into the op's memory right now. */
    pthread_mutex_lock(&conn->rx_lock);
    pthread_mutex_lock(&conn->lock);
    if (conn->state == C_CLOSED || !op_is_live(conn, op)) {
        pthread_mutex_unlock(&conn->lock);
        pthread_mutex_unlock(&conn->rx_lock);
        return KVX_OK; /* ended already, or conn_fail is ending it */
    }
    op->tp_status = KVX_ERR_CANCELED;
    size_t dropped = 0;
    send_item_t *prev = NULL;
    for (send_item_t *it = conn->sq_head, *next; it != NULL; it = next) {
        next = it->next;
        if (it->op != op || it->started) {
            prev = it;
            continue;
        }
        if (prev != NULL) {
            prev->next = next;
        } else {
            conn->sq_head = next;
        }
        if (conn->sq_tail == it) {
            conn->sq_tail = prev;
        }
        conn->sq_items--;
        frame_unlink(conn, it->seq);
        free(it);
        dropped++;
    }
    if (op->kind == KVX_TP_OP_READ) {
        dropped += orphan_reads(conn, op);
    }
    op->tp_frames_left -= dropped;
    int ended = op->tp_frames_left == 0;
    if (ended) {
        op_unlink(conn, op);
    }
    pthread_mutex_unlock(&conn->lock);
    pthread_mutex_unlock(&conn->rx_lock);
    if (ended) {
        op->done(op, KVX_ERR_CANCELED);
        return KVX_OK;
    }
    return KVX_INPROGRESS;
}

/* --------------------------------------------------------- receiving */

/* An op's frame finished; returns the op if it is complete. conn->lock held. */
static kvx_tp_op_t *frame_finish(kvx_tp_conn_t *conn, frame_t *fr, kvx_status_t status)
{
    kvx_tp_op_t *op = fr->op;
    free(fr);
    if (op == NULL) {
        return NULL; /* its op was cancelled and has ended */
    }
    if (status != KVX_OK && op->tp_status == KVX_OK) {
        op->tp_status = status;
    }
    if (--op->tp_frames_left > 0) {
        return NULL;
    }
    op_unlink(conn, op);
    if (op == conn->borrow_op) {
        conn->borrow_done = 1;
    }
    return op;
}

static void frame_complete(kvx_tp_conn_t *conn, frame_t *fr, kvx_status_t status)
{
    pthread_mutex_lock(&conn->lock);
    kvx_tp_op_t *op = frame_finish(conn, fr, status);
    pthread_mutex_unlock(&conn->lock);
    if (op != NULL) {
        op->done(op, op->tp_status);
    }
}

/* Queue a reply from the owning thread and flush. */
static int conn_reply(kvx_tp_conn_t *conn, send_item_t *item)
{
    send_item_t *done = NULL;
    int close_now = 0;
    pthread_mutex_lock(&conn->lock);
    sq_push(conn, item);
    int rc = conn_kick(conn, &done, &close_now);
    pthread_mutex_unlock(&conn->lock);
    items_finish(conn->tp, done);
    if (close_now) {
        return -1;
    }
    return rc;
}

static int reply_status(kvx_tp_conn_t *conn, uint8_t type, uint64_t seq, kvx_status_t status)
{
    send_item_t *item = item_frame(type, status, seq, 0, NULL);
    if (item == NULL) {
        return -1;
    }
    return conn_reply(conn, item);
}

static void payload_begin(kvx_tp_conn_t *conn, const kvx_wire_desc_t *wd, const kvx_xfer_desc_t *ld,
                          size_t n, uint64_t total, int discard)
{
    conn->stage = R_PAYLOAD;
    conn->premaining = total;
    conn->pdiscard = discard;
    conn->piov_idx = 0;
    conn->piovcnt = 0;
    if (discard) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        conn->piov[i].iov_base = wd ? (void *)(uintptr_t)wd[i].addr : ld[i].local_addr;
        conn->piov[i].iov_len = wd ? wd[i].len : ld[i].length;
    }
    conn->piovcnt = (int)n;
}

/* Consume up to @p len payload bytes that are already in memory. */
static void payload_copy(kvx_tp_conn_t *conn, const uint8_t *src, size_t len)
{
    conn->premaining -= len;
    if (conn->pdiscard) {
        return;
    }
    while (len > 0) {
        struct iovec *cur = &conn->piov[conn->piov_idx];
        size_t n = len < cur->iov_len ? len : cur->iov_len;
        memcpy(cur->iov_base, src, n);
        cur->iov_base = (uint8_t *)cur->iov_base + n;
        cur->iov_len -= n;
        src += n;
        len -= n;
        if (cur->iov_len == 0) {
            conn->piov_idx++;
        }
    }
}

/* The payload of the current frame has fully arrived. Returns -1 to close. */
static int payload_end(kvx_tp_conn_t *conn)
{
    conn->stage = R_HDR;
    if (conn->outgoing) {
        frame_t *fr = conn->pframe;
        conn->pframe = NULL;
        kvx_status_t status = KVX_OK;
        if (fr->checksum && fr->op != NULL &&
            kvx_checksum_local(fr->op->descs + fr->first, fr->n) != fr->hash) {
            kvx_warn("tcp: data read from %s does not match its checksum", conn->peer_name);
            status = KVX_ERR_CHECKSUM;
        }
        frame_complete(conn, fr, status);
        return 0;
    }
    if (conn->pcsum && conn->pstatus == KVX_OK) {
        /* Before unpinning: the registration still holds these ranges. */
        if (kvx_checksum_wire(conn->wdescs, conn->pcount) != conn->phash) {
            kvx_warn("tcp: data written by %s does not match its checksum", conn->peer_name);
            conn->pstatus = KVX_ERR_CHECKSUM;
        }
    }
    if (conn->ppin != NULL) {
        conn->tp->up.unpin(conn->tp->up.ctx, conn->ppin);
        conn->ppin = NULL;
    }
    return reply_status(conn, KVX_WIRE_WRITE_ACK, conn->pseq, conn->pstatus);
}

static int is_request(uint8_t type)
{
    return type == KVX_WIRE_HELLO || type == KVX_WIRE_READ_REQ || type == KVX_WIRE_WRITE_REQ ||
           type == KVX_WIRE_NOTIFY || type == KVX_WIRE_MEM_QUERY || type == KVX_WIRE_SHM_OFFER ||
           type == KVX_WIRE_KEEPALIVE || type == KVX_WIRE_AUTH_PROOF;
}
/* Target: an initiator on this host asks for the same-host path. */
static int handle_shm_offer(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    kvx_wire_shm_t offer, reply = {0};
    if (kvx_wire_decode_shm(body, hdr->body_len, KVX_WIRE_SHM_OFFER, &offer) != KVX_OK) {
        kvx_warn("tcp: bad shm offer from %s: %s", conn->peer_name, kvx_last_error());
        return -1;
    }
    kvx_status_t status = KVX_OK;
    if (tp->shm_table == NULL || conn->pins != NULL) {
        status = KVX_ERR_UNSUPPORTED;
    } else if (offer.boot_id != kvx_shm_boot_id() || offer.uid != (uint32_t)getuid()) {
        status = KVX_ERR_UNSUPPORTED; /* another host, or another user */
    } else {
        status = kvx_shm_pins_create(tp->shm_table, &conn->pins);
    }
    if (status == KVX_OK) {
        reply = (kvx_wire_shm_t){.boot_id = offer.boot_id,
                                 .pid = (uint32_t)getpid(),
                                 .table_fd = (uint32_t)kvx_shm_table_fd(tp->shm_table),
                                 .pins_fd = (uint32_t)kvx_shm_pins_fd(conn->pins),
                                 .probe = kvx_shm_table_probe_addr(tp->shm_table)};
    }
    uint8_t *out;
    send_item_t *item =
        item_frame(KVX_WIRE_SHM_ACCEPT, status, hdr->seq, KVX_WIRE_SHM_ACCEPT_SIZE, &out);
    if (item == NULL) {
        return -1;
    }
    memset(out, 0, KVX_WIRE_SHM_ACCEPT_SIZE);
    if (status == KVX_OK) {
        kvx_wire_encode_shm(out, KVX_WIRE_SHM_ACCEPT, &reply);
    }
    return conn_reply(conn, item);
}

/* Initiator: the handshake is done; offer the same-host path, or go up. */
static int link_ready(kvx_tp_conn_t *conn)
{
    kvx_tp_t *tp = conn->tp;
    if (tp->shm_mode != SHM_OFF && !conn->shm_offered) {
        kvx_wire_shm_t offer = {
            .boot_id = kvx_shm_boot_id(), .pid = (uint32_t)getpid(), .uid = (uint32_t)getuid()};
        uint8_t *out;
        send_item_t *item = item_frame(KVX_WIRE_SHM_OFFER, 0, 0, KVX_WIRE_SHM_OFFER_SIZE, &out);
        if (item == NULL) {
            return -1;
        }
        kvx_wire_encode_shm(out, KVX_WIRE_SHM_OFFER, &offer);
        conn->shm_offered = 1;
        return conn_reply(conn, item);
    }
    pthread_mutex_lock(&conn->lock);
    conn->state = C_READY;
    __atomic_store_n(&conn->ready_instance, conn->peer_instance, __ATOMIC_RELEASE);
    conn_mark_live(conn);
    pthread_mutex_unlock(&conn->lock);
    tp->up.link_event(tp->up.ctx, conn->peer_ctx, conn, 1, KVX_OK);
    return 0;
}

/* Initiator: the target's answer to our offer. */
static int handle_shm_accept(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    pthread_mutex_lock(&conn->lock);
    int expected = conn->state == C_HELLO && conn->shm_offered && !conn->shm_answered;
    conn->shm_answered = 1;
    pthread_mutex_unlock(&conn->lock);
    if (!expected) {
        kvx_warn("tcp: unexpected shm reply from %s", conn->peer_name);
        return -1;
    }
    kvx_status_t status = (kvx_status_t)hdr->status;
    kvx_wire_shm_t acc = {0};
    kvx_shm_link_t *link = NULL;
    const char *why = "the target declined (another host or user, or shm off there)";
    if (status == KVX_OK) {
        if (kvx_wire_decode_shm(body, hdr->body_len, KVX_WIRE_SHM_ACCEPT, &acc) != KVX_OK) {
            kvx_warn("tcp: bad shm reply from %s: %s", conn->peer_name, kvx_last_error());
            return -1;
        }
        status = kvx_shm_link_open((pid_t)acc.pid, (int)acc.table_fd, (int)acc.pins_fd, acc.probe,
                                   conn->peer_instance, &link);
        why = kvx_last_error();
    }
    if (status != KVX_OK) {
        if (tp->shm_mode == SHM_ONLY) {
            kvx_warn("tcp: KVX_TRANSPORT=shm, but %s is not reachable that way: %s",
                     conn->peer_name, why);
            conn_fail(conn, KVX_ERR_UNSUPPORTED, 0);
            return 1;
        }
        kvx_info("tcp: same-host path to %s unavailable, data goes over tcp: %s", conn->peer_name,
                 why);
    } else {
        kvx_debug("tcp: same-host path to %s (pid %u)", conn->peer_name, acc.pid);
    }
    pthread_mutex_lock(&conn->lock);
    conn->shm = link;
    pthread_mutex_unlock(&conn->lock);
    return link_ready(conn);
}

/* Target: the handshake (and authentication, if any) is done. */
static void target_link_ready(kvx_tp_conn_t *conn)
{
    pthread_mutex_lock(&conn->lock);
    conn->state = C_READY;
    __atomic_store_n(&conn->ready_instance, conn->peer_instance, __ATOMIC_RELEASE);
    conn_mark_live(conn);
    pthread_mutex_unlock(&conn->lock);
    conn->tp->up.incoming_event(conn->tp->up.ctx, 1);
    kvx_debug("tcp: accepted link from %s", conn->peer_name);
}

/* Target with a secret: HELLO_ACK (flagged) and a challenge. */
static int send_challenge(kvx_tp_conn_t *conn, send_item_t *hello_ack, uint64_t seq)
{
    kvx_wire_hdr_t ack = {.type = KVX_WIRE_HELLO_ACK,
                          .flags = KVX_WIRE_FLAG_AUTH,
                          .seq = seq,
                          .body_len = hello_ack->iov[0].iov_len - KVX_WIRE_HDR_SIZE};
    kvx_wire_encode_hdr(hello_ack->iov[0].iov_base, &ack);
    uint8_t *out;
    send_item_t *challenge = item_frame(KVX_WIRE_AUTH_CHALLENGE, 0, seq, KVX_WIRE_AUTH_NONCE, &out);
    if (challenge == NULL || kvx_auth_nonce(conn->nonce_mine) != KVX_OK) {
        free(challenge);
        free(hello_ack);
        return -1;
    }
    memcpy(out, conn->nonce_mine, KVX_WIRE_AUTH_NONCE);
    conn->auth = A_WAIT_PROOF;
    pthread_mutex_lock(&conn->lock);
    sq_push(conn, hello_ack);
    pthread_mutex_unlock(&conn->lock);
    return conn_reply(conn, challenge);
}

/* Target: the initiator's proof. A wrong one is answered with a refusal
 * and the link is closed; the initiator learns nothing about the secret. */
static int handle_auth_proof(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    if (kvx_wire_check_auth(hdr->type, hdr->status, hdr->body_len) != KVX_OK) {
        kvx_warn("tcp: bad proof from %s: %s", conn->peer_name, kvx_last_error());
        return -1;
    }
    memcpy(conn->nonce_peer, body, KVX_WIRE_AUTH_NONCE);
    uint8_t want[KVX_WIRE_AUTH_MAC], mine[KVX_WIRE_AUTH_MAC];
    if (kvx_auth_mac(tp->secret, tp->secret_len, KVX_AUTH_INITIATOR, conn->nonce_mine,
                     conn->nonce_peer, conn->peer_instance, tp->instance, want) != KVX_OK) {
        return -1;
    }
    if (!kvx_auth_equal(want, body + KVX_WIRE_AUTH_NONCE)) {
        kvx_warn("tcp: %s failed authentication (another secret, or none); closing",
                 conn->peer_name);
        send_item_t *no = item_frame(KVX_WIRE_AUTH_OK, KVX_ERR_AUTH, hdr->seq, 0, NULL);
        if (no == NULL) {
            return -1;
        }
        no->close_after = 1;
        conn->auth = A_NONE;
        conn_reply(conn, no);
        return -1;
    }
    uint8_t *out;
    send_item_t *ok = item_frame(KVX_WIRE_AUTH_OK, 0, hdr->seq, KVX_WIRE_AUTH_MAC, &out);
    if (ok == NULL ||
        kvx_auth_mac(tp->secret, tp->secret_len, KVX_AUTH_TARGET, conn->nonce_peer,
                     conn->nonce_mine, tp->instance, conn->peer_instance, mine) != KVX_OK) {
        free(ok);
        return -1;
    }
    memcpy(out, mine, KVX_WIRE_AUTH_MAC);
    conn->auth = A_NONE;
    target_link_ready(conn);
    return conn_reply(conn, ok);
}

/* A full request frame on an incoming connection (target side). */
static int handle_request(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    kvx_status_t status;
    if (conn->state == C_HELLO && conn->auth == A_WAIT_PROOF) {
        if (hdr->type != KVX_WIRE_AUTH_PROOF) {
            kvx_warn("tcp: peer sent frame type %u instead of its proof; closing", hdr->type);
            return -1;
        }
        return handle_auth_proof(conn, hdr, body);
    }
    if (conn->state == C_HELLO) {
        if (hdr->type != KVX_WIRE_HELLO) {
            kvx_warn("tcp: peer sent frame type %u before hello; closing", hdr->type);
            return -1;
        }
        uint64_t instance;
        status = kvx_wire_decode_hello(body, hdr->body_len, &instance, conn->peer_name);
        if (status != KVX_OK) {
            kvx_warn("tcp: bad hello: %s", kvx_last_error());
            return -1;
        }
        conn->peer_instance = instance;
        adopt_silence(conn, kvx_wire_hello_silence(body));
        char name[KVX_ENGINE_NAME_MAX];
        kvx_addr_format(&tp->bound, name, sizeof(name));
        size_t name_len = strlen(name);
        uint8_t *out;
        int self = instance == tp->instance;
        send_item_t *item = item_frame(KVX_WIRE_HELLO_ACK, self ? KVX_ERR_INVALID_PARAM : KVX_OK,
                                       hdr->seq, kvx_wire_hello_size(name_len), &out);
        if (item == NULL) {
            return -1;
        }
        kvx_wire_encode_hello(out, tp->instance, name, name_len);
        kvx_wire_hello_set_silence(out, tp->peer_timeout_ms);
        if (self) {
            item->close_after = 1;
        } else if (tp->secret != NULL) {
            return send_challenge(conn, item, hdr->seq);
        } else {
            target_link_ready(conn);
        }
        return conn_reply(conn, item);
    }
    switch (hdr->type) {
    case KVX_WIRE_KEEPALIVE:
        return 0; /* reading it was the point */
    case KVX_WIRE_SHM_OFFER:
        return handle_shm_offer(conn, hdr, body);
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ: {
        uint32_t n;
        uint64_t total;
        int write = hdr->type == KVX_WIRE_WRITE_REQ;
        uint64_t tag = 0;
        size_t len = hdr->body_len;
        if (hdr->flags & KVX_WIRE_FLAG_TAG) {
            if (len < 8) {
                kvx_warn("tcp: request from %s too short for its tag", conn->peer_name);
                return -1;
            }
            tag = kvx_wire_decode_u64(body);
            body += 8;
            len -= 8;
        }
        int csum = (hdr->flags & KVX_WIRE_FLAG_CSUM) != 0;
        uint64_t want_hash = 0;
        if (csum && write) {
            if (len < 8) {
                kvx_warn("tcp: request from %s too short for its checksum", conn->peer_name);
                return -1;
            }
            want_hash = kvx_wire_decode_u64(body);
            body += 8;
            len -= 8;
        }
        status = kvx_wire_decode_descs(body, len, conn->wdescs, &n, &total);
        if (status != KVX_OK) {
            kvx_warn("tcp: bad request from %s: %s", conn->peer_name, kvx_last_error());
            return -1;
        }
        if (csum && total > KVX_WIRE_MAX_CSUM_PAYLOAD) {
            kvx_warn("tcp: checksummed request from %s for %llu bytes (at most %llu per frame)",
                     conn->peer_name, (unsigned long long)total,
                     (unsigned long long)KVX_WIRE_MAX_CSUM_PAYLOAD);
            return -1;
        }
        void *pin = NULL;
        status = tp->up.pin(tp->up.ctx, write, conn->wdescs, n,
                            (hdr->flags & KVX_WIRE_FLAG_TAG) ? &tag : NULL, &pin);
        if (write) {
            conn->ppin = pin;
            conn->pstatus = status;
            conn->pseq = hdr->seq;
            conn->pcsum = csum;
            conn->phash = want_hash;
            conn->pcount = n;
            payload_begin(conn, conn->wdescs, NULL, n, total, status != KVX_OK);
            return (total == 0) ? payload_end(conn) : 0;
        }
        uint8_t *buf;
        size_t body_len = csum ? 16 : 8;
        send_item_t *item =
            item_new(KVX_WIRE_HDR_SIZE + body_len, status == KVX_OK ? (int)n : 0, &buf);
        if (item == NULL) {
            if (pin != NULL) {
                tp->up.unpin(tp->up.ctx, pin);
            }
            return -1;
        }
        kvx_wire_hdr_t out = {.type = KVX_WIRE_READ_RESP,
                              .flags = csum ? KVX_WIRE_FLAG_CSUM : 0,
                              .status = status,
                              .seq = hdr->seq,
                              .body_len = body_len};
        kvx_wire_encode_hdr(buf, &out);
        kvx_wire_encode_u64(buf + KVX_WIRE_HDR_SIZE, status == KVX_OK ? total : 0);
        if (csum) {
            /* Of the bytes as they are now; they are sent from the same memory. */
            kvx_wire_encode_u64(buf + KVX_WIRE_HDR_SIZE + 8,
                                status == KVX_OK ? kvx_checksum_wire(conn->wdescs, n) : 0);
        }
        if (status == KVX_OK) {
            for (uint32_t i = 0; i < n; i++) {
                item->iov[1 + i].iov_base = (void *)(uintptr_t)conn->wdescs[i].addr;
                item->iov[1 + i].iov_len = conn->wdescs[i].len;
            }
            item->iovcnt = (int)n + 1;
            item->pin = pin;
        }
        return conn_reply(conn, item);
    }
    case KVX_WIRE_NOTIFY: {
        const char *name, *msg;
        size_t name_len, msg_len;
        status = kvx_wire_decode_notify(body, hdr->body_len, &name, &name_len, &msg, &msg_len);
        if (status != KVX_OK) {
            kvx_warn("tcp: bad notification from %s: %s", conn->peer_name, kvx_last_error());
            return -1;
        }
        status = tp->up.deliver_notify(tp->up.ctx, conn->peer_name, conn->peer_instance, name,
                                       name_len, msg, msg_len);
        return reply_status(conn, KVX_WIRE_NOTIFY_ACK, hdr->seq, status);
    }
    case KVX_WIRE_MEM_QUERY: {
        kvx_wire_mem_entry_t *entries = NULL;
        uint32_t count = 0;
        status = tp->up.mem_table(tp->up.ctx, &entries, &count);
        uint8_t *out;
        send_item_t *item = item_frame(KVX_WIRE_MEM_TABLE, status, hdr->seq,
                                       kvx_wire_mem_table_size(status == KVX_OK ? count : 0), &out);
        if (item != NULL) {
            kvx_wire_encode_mem_table(out, entries, status == KVX_OK ? count : 0);
        }
        free(entries);
        return item != NULL ? conn_reply(conn, item) : -1;
    }
    default:
        kvx_warn("tcp: unexpected frame type %u from %s", hdr->type, conn->peer_name);
        return -1;
    }
}

/* Initiator: the target's challenge, then its verdict and own proof. */
static int handle_auth_reply(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    int challenge = hdr->type == KVX_WIRE_AUTH_CHALLENGE;
    if (conn->state != C_HELLO || conn->auth != (challenge ? A_WAIT_CHALLENGE : A_WAIT_OK) ||
        kvx_wire_check_auth(hdr->type, hdr->status, hdr->body_len) != KVX_OK) {
        kvx_warn("tcp: unexpected or bad authentication frame from %s", conn->peer_name);
        return -1;
    }
    if (challenge) {
        memcpy(conn->nonce_peer, body, KVX_WIRE_AUTH_NONCE);
        uint8_t *out;
        send_item_t *proof = item_frame(KVX_WIRE_AUTH_PROOF, 0, hdr->seq,
                                        KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC, &out);
        if (proof == NULL || kvx_auth_nonce(conn->nonce_mine) != KVX_OK ||
            kvx_auth_mac(tp->secret, tp->secret_len, KVX_AUTH_INITIATOR, conn->nonce_peer,
                         conn->nonce_mine, tp->instance, conn->peer_instance,
                         out + KVX_WIRE_AUTH_NONCE) != KVX_OK) {
            free(proof);
            return -1;
        }
        memcpy(out, conn->nonce_mine, KVX_WIRE_AUTH_NONCE);
        conn->auth = A_WAIT_OK;
        return conn_reply(conn, proof);
    }
    uint8_t want[KVX_WIRE_AUTH_MAC];
    if (hdr->status != KVX_OK) {
        kvx_warn("tcp: %s refused our proof: the shared secrets differ", conn->peer_name);
        conn_fail(conn, KVX_ERR_AUTH, 0);
        return 1;
    }
    if (kvx_auth_mac(tp->secret, tp->secret_len, KVX_AUTH_TARGET, conn->nonce_mine,
                     conn->nonce_peer, conn->peer_instance, tp->instance, want) != KVX_OK ||
        !kvx_auth_equal(want, body)) {
        kvx_warn("tcp: %s could not prove the shared secret; refusing the link", conn->peer_name);
        conn_fail(conn, KVX_ERR_AUTH, 0);
        return 1;
    }
    conn->auth = A_NONE;
    return link_ready(conn);
}

/* A full response frame on an outgoing connection (initiator side). */
static int handle_response(kvx_tp_conn_t *conn, const kvx_wire_hdr_t *hdr, const uint8_t *body)
{
    kvx_tp_t *tp = conn->tp;
    kvx_status_t status;
    if (hdr->type == KVX_WIRE_HELLO_ACK) {
        pthread_mutex_lock(&conn->lock);
        int expected = conn->state == C_HELLO && !conn->shm_offered && conn->auth == A_NONE;
        pthread_mutex_unlock(&conn->lock);
        uint64_t instance;
        char name[KVX_ENGINE_NAME_MAX];
        if (expected && hdr->status != KVX_OK) {
            /* Refused (self-connect, version): the reply may carry no body. */
            status = (kvx_status_t)hdr->status;
            if (status != KVX_ERR_INVALID_PARAM && status != KVX_ERR_VERSION_MISMATCH) {
                status = KVX_ERR_CONNECTION_REFUSED;
            }
            conn_fail(conn, status, 0);
            return 1;
        }
        if (!expected || kvx_wire_decode_hello(body, hdr->body_len, &instance, name) != KVX_OK) {
            kvx_warn("tcp: bad or unexpected hello reply");
            return -1;
        }
        if (instance == tp->instance) {
            conn_fail(conn, KVX_ERR_INVALID_PARAM, 0);
            return 1;
        }
        memcpy(conn->peer_name, name, sizeof(name));
        conn->peer_instance = instance;
        adopt_silence(conn, kvx_wire_hello_silence(body));
        int asked = (hdr->flags & KVX_WIRE_FLAG_AUTH) != 0;
        if (asked != (tp->secret != NULL)) {
            kvx_warn("tcp: %s %s; refusing the link", conn->peer_name,
                     asked ? "requires a shared secret and this engine has none"
                           : "does not authenticate, and this engine requires it");
            conn_fail(conn, KVX_ERR_AUTH, 0);
            return 1;
        }
        if (asked) {
            conn->auth = A_WAIT_CHALLENGE;
            return 0;
        }
        return link_ready(conn);
    }
    if (hdr->type == KVX_WIRE_AUTH_CHALLENGE || hdr->type == KVX_WIRE_AUTH_OK) {
        return handle_auth_reply(conn, hdr, body);
    }
    if (hdr->type == KVX_WIRE_SHM_ACCEPT) {
        return handle_shm_accept(conn, hdr, body);
    }
    if (hdr->type == KVX_WIRE_KEEPALIVE_BACK) {
        return 0;
    }
    pthread_mutex_lock(&conn->lock);
    frame_t *fr = conn->fr_head;
    if (fr == NULL || fr->seq != hdr->seq || fr->resp_type != hdr->type) {
        pthread_mutex_unlock(&conn->lock);
        kvx_warn("tcp: response type %u seq %llu from %s matches no request", hdr->type,
                 (unsigned long long)hdr->seq, conn->peer_name);
        return -1;
    }
    conn->fr_head = fr->next;
    if (conn->fr_head == NULL) {
        conn->fr_tail = NULL;
    }
    pthread_mutex_unlock(&conn->lock);
    /* A target may refuse only in the ways a target can; anything else
     * (e.g. a TIMEOUT that would claim the link is broken) is a violation. */
    status = (kvx_status_t)hdr->status;
    if (status != KVX_OK && status != KVX_ERR_REMOTE_ACCESS && status != KVX_ERR_NO_MEMORY &&
        !(status == KVX_ERR_REMOTE_FULL && hdr->type == KVX_WIRE_NOTIFY_ACK) &&
        !(status == KVX_ERR_CHECKSUM && hdr->type == KVX_WIRE_WRITE_ACK)) {
        status = KVX_ERR_PROTOCOL;
    }

    switch (hdr->type) {
    case KVX_WIRE_READ_RESP: {
        uint64_t payload;
        if (kvx_wire_decode_read_resp(body, hdr->body_len, &payload) != KVX_OK ||
            payload != (status == KVX_OK ? fr->payload : 0)) {
            kvx_warn("tcp: read response from %s announces %llu bytes, expected %llu",
                     conn->peer_name, (unsigned long long)payload, (unsigned long long)fr->payload);
            frame_complete(conn, fr, KVX_ERR_PROTOCOL);
            return -1;
        }
        if (status != KVX_OK) {
            frame_complete(conn, fr, status);
            return 0;
        }
        if (fr->checksum != ((hdr->flags & KVX_WIRE_FLAG_CSUM) != 0) ||
            hdr->body_len != (fr->checksum ? 16u : 8u)) {
            kvx_warn("tcp: read response from %s %s a checksum", conn->peer_name,
                     fr->checksum ? "lacks" : "carries an unasked");
            frame_complete(conn, fr, KVX_ERR_PROTOCOL);
            return -1;
        }
        if (fr->checksum) {
            fr->hash = kvx_wire_decode_u64(body + 8);
        }
        conn->pframe = fr;
        if (fr->op == NULL) {
            payload_begin(conn, NULL, NULL, 0, payload, 1); /* cancelled */
        } else {
            payload_begin(conn, NULL, fr->op->descs + fr->first, fr->n, payload, 0);
        }
        return 0;
    }
    case KVX_WIRE_MEM_TABLE: {
        uint32_t count = 0;
        kvx_wire_mem_entry_t *entries = NULL;
        if (status == KVX_OK && hdr->body_len < 8) {
            status = KVX_ERR_PROTOCOL;
        } else if (status == KVX_OK) {
            uint32_t announced = (uint32_t)body[0] | ((uint32_t)body[1] << 8) |
                                 ((uint32_t)body[2] << 16) | ((uint32_t)body[3] << 24);
            /* The body must hold what it announces before room is made. */
            if (announced <= KVX_WIRE_MAX_MEM_ENTRIES &&
                hdr->body_len == kvx_wire_mem_table_size(announced)) {
                entries = malloc((announced ? announced : 1) * sizeof(*entries));
                if (entries == NULL) {
                    status = KVX_ERR_NO_MEMORY;
                } else if (kvx_wire_decode_mem_table(body, hdr->body_len, entries, announced,
                                                     &count) != KVX_OK) {
                    status = KVX_ERR_PROTOCOL;
                }
            } else {
                status = KVX_ERR_PROTOCOL;
            }
        }
        if (status == KVX_OK) {
            fr->op->mem_entries = entries;
            fr->op->mem_count = count;
        } else {
            free(entries);
        }
        frame_complete(conn, fr, status);
        return status == KVX_ERR_PROTOCOL ? -1 : 0;
    }
    default: /* WRITE_ACK, NOTIFY_ACK */
        frame_complete(conn, fr, status);
        return 0;
    }
}

/* Parse what is in rbuf. Returns -1 on a protocol error, 1 if the
 * connection was closed, else 0. */
static int conn_parse(kvx_tp_conn_t *conn)
{
    for (;;) {
        size_t avail = conn->rend - conn->rstart;
        uint8_t *p = conn->rbuf + conn->rstart;
        if (conn->stage == R_PAYLOAD) {
            if (avail == 0) {
                return 0;
            }
            size_t n = avail < conn->premaining ? avail : (size_t)conn->premaining;
            payload_copy(conn, p, n);
            conn->rstart += n;
            if (conn->premaining == 0) {
                int rc = payload_end(conn);
                if (rc != 0) {
                    return rc;
                }
            }
            continue;
        }
        if (conn->stage == R_HDR) {
            if (avail < KVX_WIRE_HDR_SIZE) {
                return 0;
            }
            if (!conn->outgoing && conn->sq_items >= SQ_HIGH) {
                /* Back-pressure: leave the rest in rbuf and the socket. */
                pthread_mutex_lock(&conn->lock);
                conn->read_paused = 1;
                conn_set_events(conn, EPOLL_CTL_MOD);
                pthread_mutex_unlock(&conn->lock);
                return 0;
            }
            kvx_status_t status = kvx_wire_decode_hdr(p, avail, &conn->rhdr);
            if (status != KVX_OK) {
                kvx_warn("tcp: bad frame from %s: %s",
                         conn->peer_name[0] ? conn->peer_name : "peer", kvx_last_error());
                if (status == KVX_ERR_VERSION_MISMATCH && !conn->outgoing &&
                    conn->state == C_HELLO) {
                    send_item_t *item =
                        item_frame(KVX_WIRE_HELLO_ACK, KVX_ERR_VERSION_MISMATCH, 0, 0, NULL);
                    if (item != NULL) {
                        item->close_after = 1;
                        conn_reply(conn, item);
                    }
                }
                return -1;
            }
            if (is_request(conn->rhdr.type) == conn->outgoing) {
                kvx_warn("tcp: frame type %u in the wrong direction", conn->rhdr.type);
                return -1;
            }
            conn->stage = R_BODY;
        }
        /* R_BODY: the whole header and body must be in rbuf. */
        size_t need = KVX_WIRE_HDR_SIZE + (size_t)conn->rhdr.body_len;
        if (avail < need) {
            if (need > conn->rcap) {
                uint8_t *grown = malloc(need);
                if (grown == NULL) {
                    return -1;
                }
                memcpy(grown, p, avail);
                free(conn->rbuf);
                conn->rbuf = grown;
                conn->rcap = need;
                conn->rstart = 0;
                conn->rend = avail;
            }
            return 0;
        }
        conn->stage = R_HDR;
        conn->rstart += need;
        int rc = conn->outgoing ? handle_response(conn, &conn->rhdr, p + KVX_WIRE_HDR_SIZE)
                                : handle_request(conn, &conn->rhdr, p + KVX_WIRE_HDR_SIZE);
        if (rc != 0) {
            return rc;
        }
    }
}

static void conn_note_rx(kvx_tp_conn_t *conn)
{
    __atomic_store_n(&conn->last_live_ns, kvx_now_ns(), __ATOMIC_RELAXED);
}

/* How long a link may be silent: an incoming link gets half of it, so that
 * a target that was stopped longer than its initiator waited before giving
 * up finds the link dead when it runs again, and drops what arrived. Both
 * ends use the smaller of their peer timeouts (adopt_silence), so this holds
 * whatever each was configured with. */
static uint64_t conn_silence_limit(const kvx_tp_conn_t *conn)
{
    return conn->outgoing ? conn->silence_ns : conn->silence_ns / 2;
}

/* The link is ready and its peer has been silent past the limit. */
static int conn_silent_too_long(kvx_tp_conn_t *conn, uint64_t now)
{
    uint64_t live = __atomic_load_n(&conn->last_live_ns, __ATOMIC_RELAXED);
    return conn->state == C_READY && now > live && now - live >= conn_silence_limit(conn);
}

/* Read what the socket has, within a budget. Returns -1 on error or EOF
 * (errno set, 0 for EOF), 1 if the connection was closed, else 0. */
static int conn_read(kvx_tp_conn_t *conn)
{
    size_t budget = READ_BUDGET;
    while (budget > 0 && !conn->read_paused) {
        ssize_t n;
        if (conn->stage == R_PAYLOAD && conn->rstart == conn->rend &&
            conn->premaining >= DIRECT_READ_MIN) {
            /* Straight into the destination memory (or the bin). */
            if (conn->pdiscard) {
                size_t want = conn->premaining < conn->rcap ? conn->premaining : conn->rcap;
                n = read(conn->fd, conn->rbuf, want);
                if (n > 0) {
                    conn->premaining -= (size_t)n;
                }
            } else {
                int cnt = conn->piovcnt - conn->piov_idx;
                if (cnt > IOV_BATCH) {
                    cnt = IOV_BATCH;
                }
                n = readv(conn->fd, conn->piov + conn->piov_idx, cnt);
                if (n > 0) {
                    size_t left = (size_t)n;
                    conn->premaining -= left;
                    while (left > 0) {
                        struct iovec *cur = &conn->piov[conn->piov_idx];
                        size_t k = left < cur->iov_len ? left : cur->iov_len;
                        cur->iov_base = (uint8_t *)cur->iov_base + k;
                        cur->iov_len -= k;
                        left -= k;
                        if (cur->iov_len == 0) {
                            conn->piov_idx++;
                        }
                    }
                }
            }
            if (n > 0) {
                conn_note_rx(conn);
                budget -= (size_t)n < budget ? (size_t)n : budget;
                if (conn->premaining == 0) {
                    int rc = payload_end(conn);
                    if (rc != 0) {
                        return rc;
                    }
                }
                continue;
            }
        } else {
            if (conn->rstart == conn->rend) {
                conn->rstart = conn->rend = 0;
            } else if (conn->rend == conn->rcap) {
                memmove(conn->rbuf, conn->rbuf + conn->rstart, conn->rend - conn->rstart);
                conn->rend -= conn->rstart;
                conn->rstart = 0;
            }
            size_t room = conn->rcap - conn->rend;
            n = read(conn->fd, conn->rbuf + conn->rend, room);
            if (n > 0) {
                conn_note_rx(conn);
                conn->rend += (size_t)n;
                budget -= (size_t)n < budget ? (size_t)n : budget;
                int rc = conn_parse(conn);
                if (rc != 0) {
                    if (rc < 0) {
                        errno = EPROTO;
                    }
                    return rc;
                }
                if ((size_t)n < room && conn->stage != R_PAYLOAD) {
                    /* The socket is drained: skip the read that would only
                     * say EAGAIN (epoll is level-triggered and calls again). */
                    return 0;
                }
                continue;
            }
        }
        if (n == 0) {
            errno = 0;
            return -1;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        }
        return -1;
    }
    return 0;
}

/* conn_read by a borrower: rx_lock is held only while reading, so that a
 * cancel can find the receive side between two reads. errno survives. */
static int conn_read_locked(kvx_tp_conn_t *conn)
{
    pthread_mutex_lock(&conn->rx_lock);
    int rc = conn_read(conn);
    int err = errno;
    pthread_mutex_unlock(&conn->rx_lock);
    errno = err;
    return rc;
}

/* A sync caller whose op is the only one in flight on the link reads the
 * reply on its own thread, until the op is done, its deadline passes or the
 * link fails. Whatever is left (a failure, a timeout) the I/O thread ends
 * as usual. The caller holds a reference on @p conn. */
static void conn_receive_own_reply(kvx_tp_conn_t *conn, kvx_tp_op_t *op)
{
    /* rx_lock first: the I/O thread may be reading (and even completing
     * this op) right now. It only ever try-locks it, so no lock order. */
    pthread_mutex_lock(&conn->rx_lock);
    pthread_mutex_lock(&conn->lock);
    int eligible = conn->state == C_READY && !conn->close_requested && !conn->rx_borrowed &&
                   conn->ops == op && op->tp_next == NULL;
    if (eligible) {
        conn->rx_borrowed = 1;
        conn->borrow_op = op;
        conn->borrow_done = 0;
        conn_set_events(conn, EPOLL_CTL_MOD);
    }
    pthread_mutex_unlock(&conn->lock);
    pthread_mutex_unlock(&conn->rx_lock);
    if (!eligible) {
        return;
    }
    int rc = 0;
    uint64_t spin_until = kvx_now_ns() + conn->tp->busy_poll_ns;
    while (!conn->borrow_done && rc == 0) {
        uint64_t now = kvx_now_ns();
        if (now >= op->deadline_ns) {
            break;
        }
        if (spin_until > now) {
            /* Poll first: the reply to a small op comes sooner than a
             * sleeping thread wakes. */
            uint64_t until = spin_until < op->deadline_ns ? spin_until : op->deadline_ns;
            while (!conn->borrow_done && rc == 0 && kvx_now_ns() < until) {
                rc = conn_read_locked(conn);
            }
            spin_until = 0;
            continue;
        }
        uint64_t wait_ms = (op->deadline_ns - now + 999999ull) / 1000000ull;
        struct pollfd pfd = {.fd = conn->fd, .events = POLLIN};
        int n = poll(&pfd, 1, wait_ms > INT32_MAX ? INT32_MAX : (int)wait_ms);
        if (n < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
        if (n > 0) {
            rc = conn_read_locked(conn);
        }
    }
    kvx_status_t why = KVX_OK;
    if (rc != 0) {
        why = (errno == EPROTO) ? KVX_ERR_PROTOCOL
              : (errno == 0)    ? KVX_ERR_CONNECTION_LOST
                                : errno_status(errno);
    }
    pthread_mutex_lock(&conn->lock);
    conn->rx_borrowed = 0;
    conn->borrow_op = NULL;
    if (conn->state != C_CLOSED) {
        conn_set_events(conn, EPOLL_CTL_MOD);
    }
    pthread_cond_broadcast(&conn->rx_cond);
    pthread_mutex_unlock(&conn->lock);
    if (rc != 0) {
        /* The I/O thread closes the link and ends its ops, this one too. */
        kvx_debug("tcp: link with %s closed: %s", conn->peer_name, kvx_status_string(why));
        tcp_close(conn, why);
    }
}

/* Close a connection and end everything on it. Owning thread only.
 * Ops whose deadline is at or before @p expired_before end TIMEOUT. */
static void conn_fail(kvx_tp_conn_t *conn, kvx_status_t reason, uint64_t expired_before)
{
    tcp_thread_t *th = conn->th;
    kvx_tp_t *tp = conn->tp;
    pthread_mutex_lock(&conn->lock);
    if (conn->rx_borrowed && conn->state != C_CLOSED) {
        /* A sync caller is reading: wake it and let it hand back first. */
        shutdown(conn->fd, SHUT_RDWR);
        while (conn->rx_borrowed) {
            pthread_cond_wait(&conn->rx_cond, &conn->lock);
        }
    }
    if (conn->state == C_CLOSED) {
        pthread_mutex_unlock(&conn->lock);
        return;
    }
    int was_ready = conn->state == C_READY || conn->state == C_DRAINING;
    if (conn->state == C_DRAINING) {
        reason = conn->close_reason; /* the drain ended (EOF, error or time) */
    }
    conn->state = C_CLOSED;
    __atomic_store_n(&conn->ready_instance, 0, __ATOMIC_RELEASE);
    epoll_ctl(th->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
    if (conn->ops != NULL || conn->sq_head != NULL) {
        /* Work is being abandoned: reset the connection, so that frames
         * still in our socket buffer are dropped instead of sent. */
        struct linger abort_close = {.l_onoff = 1, .l_linger = 0};
        setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &abort_close, sizeof(abort_close));
    }
    /* Under the lock, so no inline writev can still be using the fd. */
    close(conn->fd);
    conn->fd = -1;
    send_item_t *items = conn->sq_head;
    conn->sq_head = conn->sq_tail = NULL;
    frame_t *frames = conn->fr_head;
    conn->fr_head = conn->fr_tail = NULL;
    kvx_tp_op_t *ops = conn->ops;
    conn->ops = NULL;
    pthread_mutex_unlock(&conn->lock);

    if (conn->ppin != NULL) {
        tp->up.unpin(tp->up.ctx, conn->ppin);
        conn->ppin = NULL;
    }
    if (conn->pins != NULL) {
        /* Its pins go with it: a crashed initiator cannot hold memory. */
        kvx_shm_pins_release(tp->shm_table, conn->pins);
        conn->pins = NULL;
    }
    items_finish(tp, items);
    for (frame_t *fr = frames, *next; fr != NULL; fr = next) {
        next = fr->next;
        free(fr);
    }
    if (conn->pframe != NULL) {
        free(conn->pframe);
        conn->pframe = NULL;
    }
    int timed_out = 0;
    for (kvx_tp_op_t *op = ops; op != NULL; op = op->tp_next) {
        timed_out |= expired_before != 0 && op->deadline_ns <= expired_before;
    }
    if (!conn->outgoing && was_ready) {
        tp->up.incoming_event(tp->up.ctx, 0);
    }
    if (conn->outgoing) {
        /* The peer is BROKEN before any op reports: a caller told TIMEOUT
         * finds the link gone, as the API says. */
        kvx_status_t why = timed_out ? KVX_ERR_TIMEOUT : reason;
        if (!was_ready) {
            kvx_debug("tcp: link attempt ended: %s", kvx_status_string(why));
        }
        tp->up.link_event(tp->up.ctx, conn->peer_ctx, conn, 0, why);
    }
    for (kvx_tp_op_t *op = ops, *next; op != NULL; op = next) {
        next = op->tp_next;
        kvx_status_t st = op->tp_status == KVX_ERR_CANCELED ? KVX_ERR_CANCELED : reason;
        if (expired_before != 0 && op->deadline_ns <= expired_before) {
            st = KVX_ERR_TIMEOUT;
        }
        op->done(op, st);
    }
    /* Leave the thread's list and drop its reference. */
    if (conn->th_prev != NULL) {
        conn->th_prev->th_next = conn->th_next;
    } else {
        th->conns = conn->th_next;
    }
    if (conn->th_next != NULL) {
        conn->th_next->th_prev = conn->th_prev;
    }
    conn_release(conn);
}

static void conn_event(kvx_tp_conn_t *conn, uint32_t events)
{
    if (conn->state == C_CONNECTING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_fail(conn, errno_status(err), 0);
            return;
        }
        pthread_mutex_lock(&conn->lock);
        conn->state = C_HELLO;
        pthread_mutex_unlock(&conn->lock);
    }
    if (conn_silent_too_long(conn, kvx_now_ns())) {
        /* We were stopped (or starved) past the limit: the peer has given
         * up on this link, so what waits in the socket, or in rbuf behind
         * back-pressure (an EPOLLOUT would resume it), must not land. */
        kvx_warn("tcp: link with %s silent for longer than its limit; closing it unread",
                 conn->peer_name);
        conn_fail(conn, KVX_ERR_PEER_UNRESPONSIVE, 0);
        return;
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && pthread_mutex_trylock(&conn->rx_lock) == 0) {
        /* If the try fails, a sync caller is reading its own reply. */
        int borrowed = __atomic_load_n(&conn->rx_borrowed, __ATOMIC_ACQUIRE);
        conn_retain(conn); /* a close inside conn_read must not free rx_lock */
        int rc = borrowed ? 0 : conn_read(conn);
        int err = errno;
        pthread_mutex_unlock(&conn->rx_lock);
        conn_release(conn);
        if (rc == 1) {
            return; /* already closed */
        }
        errno = err;
        if (rc < 0) {
            kvx_status_t why = (errno == EPROTO) ? KVX_ERR_PROTOCOL
                               : (errno == 0)    ? KVX_ERR_CONNECTION_LOST
                                                 : errno_status(errno);
            if (conn->outgoing || conn->state == C_READY) {
                kvx_debug("tcp: link with %s closed: %s", conn->peer_name, kvx_status_string(why));
            }
            conn_fail(conn, why, 0);
            return;
        }
    }
    if (events & EPOLLOUT) {
        send_item_t *done = NULL;
        int close_now = 0;
        pthread_mutex_lock(&conn->lock);
        int rc = conn_kick(conn, &done, &close_now);
        int resume = conn->read_paused && conn->sq_items <= SQ_LOW;
        if (resume && rc == 0 && !close_now) {
            conn->read_paused = 0;
            conn_set_events(conn, EPOLL_CTL_MOD);
        }
        pthread_mutex_unlock(&conn->lock);
        items_finish(conn->tp, done);
        if (rc != 0 || close_now) {
            conn_fail(conn, rc != 0 ? errno_status(errno) : KVX_ERR_CONNECTION_LOST, 0);
            return;
        }
        if (resume) {
            /* Requests already buffered get no new EPOLLIN: parse them now. */
            rc = conn_parse(conn);
            if (rc < 0) {
                errno = EPROTO;
            } else if (rc == 0) {
                rc = conn_read(conn);
            }
            if (rc < 0) {
                conn_fail(conn,
                          errno == EPROTO ? KVX_ERR_PROTOCOL
                          : errno == 0    ? KVX_ERR_CONNECTION_LOST
                                          : errno_status(errno),
                          0);
            }
        }
    }
}

/* ------------------------------------------------------------- threads */

static void thread_add(tcp_thread_t *th, kvx_tp_conn_t *conn)
{
    conn->th_prev = NULL;
    conn->th_next = th->conns;
    if (th->conns != NULL) {
        th->conns->th_prev = conn;
    }
    th->conns = conn;
    pthread_mutex_lock(&conn->lock);
    conn_set_events(conn, EPOLL_CTL_ADD);
    pthread_mutex_unlock(&conn->lock);
}

/* Disconnect: send nothing more, throw away what replies still bring, and
 * wait (at most DRAIN_TIMEOUT_NS) until the target has closed its side: it
 * handles frames in order, so by then every byte that reached it has been
 * stored, and none can be after the caller learns the link is gone. */
static void conn_drain(kvx_tp_conn_t *conn)
{
    /* rx_lock first: a sync caller that borrowed the receive side may be
     * between two reads; it goes on reading (into the bin) until the end. */
    pthread_mutex_lock(&conn->rx_lock);
    pthread_mutex_lock(&conn->lock);
    if (conn->state == C_DRAINING || conn->state == C_CLOSED) {
        pthread_mutex_unlock(&conn->lock);
        pthread_mutex_unlock(&conn->rx_lock);
        return; /* the tick and the command both ask */
    }
    int drain =
        conn->state == C_READY && conn->outgoing && (conn->ops != NULL || conn->sq_head != NULL);
    if (!drain) {
        pthread_mutex_unlock(&conn->lock);
        pthread_mutex_unlock(&conn->rx_lock);
        conn_fail(conn, KVX_ERR_CANCELED, 0);
        return;
    }
    orphan_reads(conn, NULL); /* their ops end when the link does */
    conn->state = C_DRAINING;
    __atomic_store_n(&conn->ready_instance, 0, __ATOMIC_RELEASE);
    conn->close_reason = KVX_ERR_CANCELED;
    conn->drain_deadline = kvx_now_ns() + DRAIN_TIMEOUT_NS;
    conn->want_out = 0;
    if (!conn->rx_borrowed) {
        conn_set_events(conn, EPOLL_CTL_MOD); /* a borrower does it when it hands back */
    }
    shutdown(conn->fd, SHUT_WR);
    pthread_mutex_unlock(&conn->lock);
    pthread_mutex_unlock(&conn->rx_lock);
}

static void thread_commands(tcp_thread_t *th)
{
    pthread_mutex_lock(&th->cmd_lock);
    tcp_cmd_t *cmds = th->cmds;
    th->cmds = NULL;
    pthread_mutex_unlock(&th->cmd_lock);
    for (tcp_cmd_t *cmd = cmds, *next; cmd != NULL; cmd = next) {
        next = cmd->next;
        if (cmd->close_reason == KVX_OK) {
            conn_retain(cmd->conn); /* the thread's reference */
            thread_add(th, cmd->conn);
        } else if (cmd->close_reason == KVX_ERR_CANCELED) {
            conn_drain(cmd->conn);
        } else {
            conn_fail(cmd->conn, cmd->close_reason, 0);
        }
        conn_release(cmd->conn); /* the command's reference */
        free(cmd);
    }
}

static void thread_tick(tcp_thread_t *th, uint64_t now)
{
    kvx_tp_t *tp = th->tp;
    uint64_t paused = __atomic_load_n(&tp->listen_paused_until, __ATOMIC_RELAXED);
    if (th == &tp->threads[0] && paused != 0 && now >= paused) {
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = tp};
        if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, tp->listen_fd, &lev) != 0) {
            kvx_error("tcp: cannot resume accepting: %m; retrying in 100 ms");
            __atomic_store_n(&tp->listen_paused_until, now + 100ull * 1000000ull, __ATOMIC_RELAXED);
        } else {
            __atomic_store_n(&tp->listen_paused_until, 0, __ATOMIC_RELAXED);
        }
    }
    for (kvx_tp_conn_t *conn = th->conns, *next; conn != NULL; conn = next) {
        next = conn->th_next;
        pthread_mutex_lock(&conn->lock);
        int handshaking = conn->state == C_CONNECTING || conn->state == C_HELLO;
        int expired = handshaking && conn->handshake_deadline <= now;
        int draining = conn->state == C_DRAINING;
        int close_req = conn->close_requested && !draining;
        kvx_status_t close_reason = conn->close_reason;
        int drained = draining && now >= conn->drain_deadline;
        for (kvx_tp_op_t *op = conn->ops; op != NULL && !expired; op = op->tp_next) {
            expired = op->deadline_ns <= now;
        }
        int silent = !expired && !close_req && conn_silent_too_long(conn, now);
        if (!expired && !close_req && !silent && conn->state == C_READY &&
            now - conn->last_tx_ns >= KVX_WIRE_KEEPALIVE_MS * 1000000ull) {
            send_item_t *ka = item_frame(
                conn->outgoing ? KVX_WIRE_KEEPALIVE : KVX_WIRE_KEEPALIVE_BACK, 0, 0, 0, NULL);
            if (ka != NULL) {
                ka->keepalive = 1;
                conn->last_tx_ns = now; /* one at a time, even while it cannot leave */
                sq_push(conn, ka);
                send_item_t *done = NULL;
                int close_now = 0;
                if (conn_kick(conn, &done, &close_now) != 0 || close_now) {
                    shutdown(conn->fd, SHUT_RDWR); /* the next event fails the link */
                }
                pthread_mutex_unlock(&conn->lock);
                items_finish(tp, done);
                continue;
            }
        }
        pthread_mutex_unlock(&conn->lock);
        if (drained) {
            kvx_warn("tcp: %s did not confirm the end of the link in time; closing it",
                     conn->peer_name);
            conn_fail(conn, KVX_ERR_CANCELED, 0);
        } else if (silent) {
            kvx_warn("tcp: %s silent for %llu ms; closing the link",
                     conn->peer_name[0] ? conn->peer_name : "peer",
                     (unsigned long long)(conn_silence_limit(conn) / 1000000ull));
            conn_fail(conn, KVX_ERR_PEER_UNRESPONSIVE, 0);
        } else if (expired) {
            kvx_warn("tcp: %s with %s passed its deadline; closing the link",
                     handshaking ? "handshake" : "request",
                     conn->peer_name[0] ? conn->peer_name : "peer");
            conn_fail(conn, handshaking ? KVX_ERR_TIMEOUT : KVX_ERR_CONNECTION_LOST, now);
        } else if (close_req && close_reason == KVX_ERR_CANCELED) {
            conn_drain(conn); /* a disconnect whose command has not run yet */
        } else if (close_req) {
            conn_fail(conn, close_reason, 0);
        }
    }
}

static void accept_all(kvx_tp_t *tp)
{
    for (;;) {
        int fd = accept4(tp->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The listener stays readable: leave epoll for a while
                 * instead of spinning, and keep serving existing links. */
                kvx_warn("tcp: accept failed (%m); pausing accepts for 100 ms");
                epoll_ctl(tp->threads[0].epfd, EPOLL_CTL_DEL, tp->listen_fd, NULL);
                __atomic_store_n(&tp->listen_paused_until, kvx_now_ns() + 100ull * 1000000ull,
                                 __ATOMIC_RELAXED);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                kvx_warn("tcp: accept failed: %m");
            }
            return;
        }
        sock_tune(fd);
        kvx_tp_conn_t *conn = conn_new(tp, fd, 0);
        if (conn == NULL) {
            kvx_warn("tcp: out of memory accepting a connection");
            close(fd);
            continue;
        }
        conn->state = C_HELLO;
        conn->handshake_deadline = kvx_now_ns() + HANDSHAKE_TIMEOUT_NS;
        if (thread_post(conn->th, conn, KVX_OK) != KVX_OK) {
            close(fd);
        }
        conn_release(conn);
    }
}

static void *thread_main(void *arg)
{
    tcp_thread_t *th = arg;
    struct epoll_event events[64];
    th->next_tick = kvx_now_ns() + TICK_NS;
    while (!__atomic_load_n(&th->stop, __ATOMIC_ACQUIRE)) {
        int ticking = th->conns != NULL ||
                      __atomic_load_n(&th->tp->listen_paused_until, __ATOMIC_RELAXED) != 0;
        int timeout = ticking ? (int)(TICK_NS / 1000000ull) : -1;
        int n = epoll_wait(th->epfd, events, 64, timeout);
        if (n < 0 && errno != EINTR) {
            kvx_error("tcp: epoll_wait failed: %m");
            break;
        }
        int commands = 0;
        for (int i = 0; i < n; i++) {
            void *ptr = events[i].data.ptr;
            if (ptr == th) {
                uint64_t v;
                ssize_t r = read(th->evfd, &v, sizeof(v));
                (void)r;
                commands = 1;
            } else if (ptr == th->tp) {
                accept_all(th->tp);
            } else {
                conn_event(ptr, events[i].events);
            }
        }
        /* After the batch: a close command frees its connection, which may
         * still have an event later in events[]. */
        if (commands) {
            thread_commands(th);
        }
        uint64_t now = kvx_now_ns();
        if (now >= th->next_tick) {
            thread_tick(th, now);
            th->next_tick = now + TICK_NS;
        }
    }
    /* Shutting down: end every link this thread owns. */
    thread_commands(th);
    while (th->conns != NULL) {
        conn_fail(th->conns, KVX_ERR_SHUTDOWN, 0);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

static kvx_status_t listen_on(kvx_tp_t *tp, const kvx_addr_t *addr)
{
    int fd = socket(addr->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return KVX_FAIL(KVX_ERR_IO, "tcp: socket() failed: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (addr->sa.ss_family == AF_INET6) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    if (bind(fd, (const struct sockaddr *)&addr->sa, addr->sa_len) != 0 || listen(fd, 1024) != 0) {
        int err = errno;
        char name[KVX_ENGINE_NAME_MAX];
        kvx_addr_format(addr, name, sizeof(name));
        close(fd);
        return KVX_FAIL(KVX_ERR_IO, "tcp: cannot listen on %s: %s", name, strerror(err));
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &len);
    kvx_addr_from_sockaddr((struct sockaddr *)&ss, len, &tp->bound);
    tp->listen_fd = fd;
    return KVX_OK;
}

static void tcp_destroy(kvx_tp_t *tp);

/* What tcp_create() made before any thread ran (the secret is wiped). */
static void tp_free_unstarted(kvx_tp_t *tp)
{
    kvx_shm_table_destroy(tp->shm_table);
    kvx_auth_erase(tp->secret, tp->secret_len);
    free(tp->secret);
    free(tp->threads);
    free(tp);
}

static kvx_status_t tcp_create(const kvx_tp_params_t *params, const kvx_tp_upcalls_t *up,
                               kvx_tp_t **tp_p)
{
    kvx_tp_t *tp = calloc(1, sizeof(*tp));
    if (tp == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: out of memory");
    }
    tp->up = *up;
    tp->instance = params->instance;
    const char *mode = getenv("KVX_TRANSPORT");
    tp->shm_mode = SHM_AUTO;
    if (mode != NULL && strcmp(mode, "tcp") == 0) {
        tp->shm_mode = SHM_OFF;
    } else if (mode != NULL && strcmp(mode, "shm") == 0) {
        tp->shm_mode = SHM_ONLY;
    } else if (mode != NULL && *mode != '\0' && strcmp(mode, "auto") != 0) {
        kvx_warn("tcp: KVX_TRANSPORT=%s is not tcp, shm or auto; using auto", mode);
    }
    if (tp->shm_mode != SHM_OFF && kvx_shm_table_create(tp->instance, &tp->shm_table) != KVX_OK) {
        /* Peers then cannot reach us that way; we can still reach them. */
        kvx_warn("tcp: same-host peers will use tcp to reach this engine: %s", kvx_last_error());
    }
    if (params->secret != NULL) {
        tp->secret = malloc(params->secret_len);
        if (tp->secret == NULL) {
            tp_free_unstarted(tp);
            return KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: out of memory");
        }
        memcpy(tp->secret, params->secret, params->secret_len);
        tp->secret_len = params->secret_len;
    }
    tp->listen_fd = -1;
    tp->nthreads = params->io_threads;
    tp->busy_poll_ns = (uint64_t)params->busy_poll_us * 1000ull;
    tp->peer_timeout_ms =
        params->peer_timeout_ms ? params->peer_timeout_ms : KVX_DEFAULT_PEER_TIMEOUT_MS;
    tp->peer_timeout_ns = (uint64_t)tp->peer_timeout_ms * 1000000ull;
    tp->threads = calloc(tp->nthreads, sizeof(*tp->threads));
    if (tp->threads == NULL) {
        tp_free_unstarted(tp);
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: out of memory");
    }
    for (unsigned i = 0; i < tp->nthreads; i++) {
        tp->threads[i].epfd = -1;
        tp->threads[i].evfd = -1;
    }
    kvx_status_t status = KVX_OK;
    if (params->listen != NULL && (status = listen_on(tp, params->listen)) != KVX_OK) {
        tp_free_unstarted(tp);
        return status;
    }
    unsigned started = 0;
    for (; started < tp->nthreads; started++) {
        tcp_thread_t *th = &tp->threads[started];
        th->tp = tp;
        pthread_mutex_init(&th->cmd_lock, NULL);
        th->epfd = epoll_create1(EPOLL_CLOEXEC);
        th->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = th};
        if (th->epfd < 0 || th->evfd < 0 || epoll_ctl(th->epfd, EPOLL_CTL_ADD, th->evfd, &ev)) {
            status = KVX_FAIL(KVX_ERR_IO, "tcp: epoll setup failed: %s", strerror(errno));
            break;
        }
        if (started == 0 && tp->listen_fd >= 0) {
            struct epoll_event lev = {.events = EPOLLIN, .data.ptr = tp};
            epoll_ctl(th->epfd, EPOLL_CTL_ADD, tp->listen_fd, &lev);
        }
        if (pthread_create(&th->tid, NULL, thread_main, th) != 0) {
            status = KVX_FAIL(KVX_ERR_NO_MEMORY, "tcp: cannot start an I/O thread");
            break;
        }
    }
    if (status != KVX_OK) {
        tp->nthreads = started; /* only those have a thread to join */
        tcp_destroy(tp);
        return status;
    }
    *tp_p = tp;
    return KVX_OK;
}

static void tcp_destroy(kvx_tp_t *tp)
{
    if (tp == NULL) {
        return;
    }
    for (unsigned i = 0; i < tp->nthreads; i++) {
        __atomic_store_n(&tp->threads[i].stop, 1, __ATOMIC_RELEASE);
        thread_wake(&tp->threads[i]);
    }
    for (unsigned i = 0; i < tp->nthreads; i++) {
        pthread_join(tp->threads[i].tid, NULL);
    }
    /* Only now: thread 0 may have been accepting until it stopped. */
    if (tp->listen_fd >= 0) {
        close(tp->listen_fd);
        tp->listen_fd = -1;
    }
    for (unsigned i = 0; i < tp->nthreads; i++) {
        tcp_thread_t *th = &tp->threads[i];
        if (th->epfd >= 0) {
            close(th->epfd);
        }
        if (th->evfd >= 0) {
            close(th->evfd);
        }
        pthread_mutex_destroy(&th->cmd_lock);
    }
    kvx_shm_table_destroy(tp->shm_table);
    kvx_auth_erase(tp->secret, tp->secret_len);
    free(tp->secret);
    free(tp->threads);
    free(tp);
}

static uint32_t tcp_mem_add(kvx_tp_t *tp, uint64_t addr, uint64_t len, uint64_t tag, int read_only)
{
    if (tp->shm_table == NULL) {
        return 0;
    }
    int memfd = -1;
    uint64_t off = 0;
    if (!kvx_device_find_memfd((const void *)(uintptr_t)addr, len, &memfd, &off)) {
        memfd = -1;
    }
    return kvx_shm_table_add(tp->shm_table, addr, len, tag, read_only, memfd, off);
}

static kvx_status_t tcp_mem_remove(kvx_tp_t *tp, uint32_t handle)
{
    return tp->shm_table != NULL ? kvx_shm_table_remove(tp->shm_table, handle) : KVX_OK;
}

static kvx_status_t tcp_local_addr(kvx_tp_t *tp, kvx_addr_t *addr)
{
    if (tp->listen_fd < 0) {
        return KVX_ERR_NOT_FOUND;
    }
    *addr = tp->bound;
    return KVX_OK;
}

const kvx_transport_ops_t kvx_tcp_transport = {
    .name = "tcp",
    .create = tcp_create,
    .destroy = tcp_destroy,
    .local_addr = tcp_local_addr,
    .connect = tcp_connect,
    .close = tcp_close,
    .retain = conn_retain,
    .release = conn_release,
    .submit = tcp_submit,
    .cancel = tcp_cancel,
    .peer_instance = tcp_peer_instance,
    .mem_add = tcp_mem_add,
    .mem_remove = tcp_mem_remove,
};

/*
 * server_server_d2d: two listening engines move bytes between their device
 * memories in both directions.
 *
 *   server_server_d2d DEVICE_ID IP:PORT                   (waits for a peer)
 *   server_server_d2d DEVICE_ID IP:PORT REMOTE_IP:PORT    (starts the exchange)
 *
 * Each side holds two 30-byte device buffers (the host backend stands in for
 * a GPU): b1, which the peer WRITEs into, and b2, which the peer READs from.
 * Rendezvous is a handshake, not a sleep: the side given REMOTE connects and
 * sends "hello" carrying its own engine name; the other side connects back
 * to that name. If KVX_EXAMPLE_PORT_FILE names a file, the waiting side
 * writes its bound port there once its buffers are registered.
 *
 * Then each side puts its own name into its b2 and WRITEs it into the peer's
 * b1, and says "written". Once the peer's "written" arrives, each side
 * checks that its b1 holds the peer's name, READs the peer's b2 into a third
 * device buffer and checks that too. "finished" both ways ends the exchange,
 * so no side tears down while the other still reads. Either side that fails
 * sends "abort" so the other stops waiting.
 *
 * Re-creates the upstream example of the same name, with both sides doing
 * both transfers and handshakes instead of fixed sleeps.
 */
#include <kvx/kvx.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_example_common.h"

#define BUF_LEN            30
#define TAG_B1             0x6432640001ull /* "d2d" + 1: the peer writes here */
#define TAG_B2             0x6432640002ull /* the peer reads from here */
#define TAG_READ           0x6432640003ull /* our landing buffer for the READ */
#define NOTIFY_DEADLINE_MS 30000
#define ABORT_TIMEOUT_MS   1000

/* ------------------------------------------------------------ notifications */

/*
 * Notifications fetched but not yet used. kvx_notify_fetch() takes every
 * queued one at once, so the peer's "hello" and "written" (or "written" and
 * "finished") may come in one batch; keep the rest for later waits.
 */
typedef struct note {
    char *name;
    char *msg; /* NUL-terminated copy */
} note_t;

typedef struct inbox {
    note_t *notes;
    size_t count, cap;
    int aborted; /* the peer sent "abort" */
} inbox_t;

static void inbox_free(inbox_t *box)
{
    for (size_t i = 0; i < box->count; i++) {
        free(box->notes[i].name);
        free(box->notes[i].msg);
    }
    free(box->notes);
    box->notes = NULL;
    box->count = box->cap = 0;
}

static kvx_status_t inbox_fetch(kvx_engine_h engine, inbox_t *box)
{
    kvx_notification_t *list;
    size_t count;
    kvx_status_t st = kvx_notify_fetch(engine, &list, &count);
    if (st != KVX_OK) {
        return st;
    }
    for (size_t i = 0; i < count && st == KVX_OK; i++) {
        if (box->count == box->cap) {
            size_t cap = box->cap ? 2 * box->cap : 8;
            note_t *notes = realloc(box->notes, cap * sizeof(*notes));
            if (notes == NULL) {
                st = KVX_ERR_NO_MEMORY;
                break;
            }
            box->notes = notes;
            box->cap = cap;
        }
        note_t n = {strdup(list[i].name), malloc(list[i].msg_len + 1)};
        if (n.name == NULL || n.msg == NULL) {
            free(n.name);
            free(n.msg);
            st = KVX_ERR_NO_MEMORY;
            break;
        }
        memcpy(n.msg, list[i].msg, list[i].msg_len);
        n.msg[list[i].msg_len] = '\0';
        box->notes[box->count++] = n;
    }
    kvx_notify_free(list, count);
    if (st != KVX_OK) {
        fprintf(stderr, "%s: out of memory keeping notifications\n", ex_prog);
    }
    return st;
}

/* Remove the oldest note called @p name; its message goes to *msg_p. */
static int inbox_take(inbox_t *box, const char *name, char **msg_p)
{
    for (size_t i = 0; i < box->count; i++) {
        if (strcmp(box->notes[i].name, name) == 0) {
            free(box->notes[i].name);
            *msg_p = box->notes[i].msg;
            memmove(&box->notes[i], &box->notes[i + 1], (box->count - i - 1) * sizeof(note_t));
            box->count--;
            return 1;
        }
    }
    return 0;
}

/*
 * Wait up to @p timeout_ms for the notification @p name and return its
 * message (to free). An "abort" from the peer ends the wait at once with
 * KVX_ERR_CANCELED.
 */
static kvx_status_t wait_for(kvx_engine_h engine, inbox_t *box, const char *name, int timeout_ms,
                             char **msg_p)
{
    int64_t deadline = ex_now_ms() + timeout_ms;
    for (;;) {
        char *msg;
        if (inbox_take(box, "abort", &msg)) {
            fprintf(stderr, "%s: the peer aborted: %s\n", ex_prog, msg);
            free(msg);
            box->aborted = 1;
            return KVX_ERR_CANCELED;
        }
        if (inbox_take(box, name, msg_p)) {
            return KVX_OK;
        }
        kvx_status_t st = kvx_notify_wait(engine, ex_ms_left(deadline));
        if (st == KVX_OK) {
            st = inbox_fetch(engine, box);
        }
        if (st != KVX_OK) {
            return st;
        }
    }
}

/* ----------------------------------------------------------------- example */

typedef struct side {
    int dev;
    kvx_engine_h engine;
    const char *name; /* our bound name */
    char peer[KVX_ENGINE_NAME_MAX];
    int linked;   /* our link to the peer is up */
    char *buf[3]; /* b1, b2, landing buffer of the READ: device memory */
    kvx_mem_h mem[3];
    inbox_t inbox;
} side_t;

enum { B1, B2, LANDING };

static const uint64_t tags[3] = {TAG_B1, TAG_B2, TAG_READ};

/* Peers may write only into b1; the other two they may at most read. */
static const kvx_mem_access_t access_of[3] = {KVX_MEM_ACCESS_READ_WRITE, KVX_MEM_ACCESS_READ_ONLY,
                                              KVX_MEM_ACCESS_READ_ONLY};

static int setup_buffers(side_t *s)
{
    kvx_status_t st;
    for (int i = 0; i < 3; i++) {
        if ((st = kvx_device_malloc(s->dev, BUF_LEN, (void **)&s->buf[i])) != KVX_OK) {
            return ex_fail(st, "device malloc");
        }
        if ((st = kvx_device_memset(s->dev, s->buf[i], 0, BUF_LEN)) != KVX_OK) {
            return ex_fail(st, "device memset");
        }
        kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS |
                                             KVX_MEM_PARAM_FIELD_LENGTH | KVX_MEM_PARAM_FIELD_TYPE |
                                             KVX_MEM_PARAM_FIELD_TAG | KVX_MEM_PARAM_FIELD_ACCESS,
                               .address = s->buf[i],
                               .length = BUF_LEN,
                               .mem_type = KVX_MEM_DEVICE,
                               .tag = tags[i],
                               .access = access_of[i]};
        if ((st = kvx_mem_register(s->engine, &mp, &s->mem[i])) != KVX_OK) {
            return ex_fail(st, "register device memory");
        }
    }
    return 0;
}

/* Connect to @p remote and learn its canonical name, the one it calls itself
 * (the address we were given may be spelled differently). */
static int link_to(side_t *s, const char *remote)
{
    kvx_status_t st = ex_connect(s->engine, remote);
    if (st != KVX_OK) {
        return ex_fail(st, "connect");
    }
    s->linked = 1;
    kvx_peer_info_t info;
    size_t n = 0;
    if ((st = kvx_engine_peers(s->engine, &info, 1, &n)) != KVX_OK) {
        return ex_fail(st, "list peers");
    }
    if (n != 1) {
        fprintf(stderr, "%s: expected one peer, the engine has %zu\n", ex_prog, n);
        return 1;
    }
    memcpy(s->peer, info.name, sizeof(s->peer));
    printf("%s: connected to %s\n", s->name, s->peer);
    return 0;
}

static int rendezvous(side_t *s, const char *remote)
{
    kvx_status_t st;
    if (remote != NULL) {
        if (link_to(s, remote) != 0) {
            return 1;
        }
        if ((st = kvx_notify_send(s->engine, s->peer, "hello", s->name, strlen(s->name), 0)) !=
            KVX_OK) {
            return ex_fail(st, "send \"hello\"");
        }
        return 0;
    }
    /* Only now may a peer come: our buffers are registered. */
    if (ex_publish_port("KVX_EXAMPLE_PORT_FILE", s->name) != 0) {
        return 1;
    }
    printf("%s: waiting for a peer\n", s->name);
    fflush(stdout);
    char *hello;
    if ((st = wait_for(s->engine, &s->inbox, "hello", NOTIFY_DEADLINE_MS, &hello)) != KVX_OK) {
        return ex_fail(st, "wait for \"hello\"");
    }
    int rc = link_to(s, hello);
    free(hello);
    return rc;
}

/* Find the peer's registrations of b1 and b2 by tag. */
static int find_peer_buffers(side_t *s, kvx_remote_mem_t *b1, kvx_remote_mem_t *b2)
{
    kvx_remote_mem_t *mems = NULL;
    size_t count = 0;
    kvx_status_t st = ex_remote_mem(s->engine, s->peer, &mems, &count);
    if (st != KVX_OK) {
        return ex_fail(st, "remote memory table");
    }
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        if (mems[i].tag == TAG_B1 && mems[i].length >= BUF_LEN) {
            *b1 = mems[i];
            found |= 1;
        } else if (mems[i].tag == TAG_B2 && mems[i].length >= BUF_LEN) {
            *b2 = mems[i];
            found |= 2;
        }
    }
    free(mems);
    if (found != 3) {
        fprintf(stderr, "%s: %s has not registered both of its buffers\n", ex_prog, s->peer);
        return 1;
    }
    return 0;
}

/* Copy device buffer @p which to the host and compare it with the peer's name. */
static int check_buffer(side_t *s, int which, const char *what)
{
    char got[BUF_LEN + 1] = {0};
    kvx_status_t st = kvx_device_memcpy(got, s->buf[which], BUF_LEN, KVX_COPY_D2H, s->dev);
    if (st != KVX_OK) {
        return ex_fail(st, "copy to the host");
    }
    int ok = strcmp(got, s->peer) == 0;
    printf("%s: %s holds \"%s\": %s\n", s->name, what, got, ok ? "ok" : "WRONG");
    if (!ok) {
        fprintf(stderr, "%s: %s: expected \"%s\"\n", ex_prog, what, s->peer);
    }
    return ok ? 0 : 1;
}

static int exchange(side_t *s)
{
    kvx_remote_mem_t rb1 = {0}, rb2 = {0};
    kvx_status_t st;
    if (find_peer_buffers(s, &rb1, &rb2) != 0) {
        return 1;
    }
    size_t len = strlen(s->name) + 1;
    if ((st = kvx_device_memcpy(s->buf[B2], s->name, len, KVX_COPY_H2D, s->dev)) != KVX_OK) {
        return ex_fail(st, "copy our name into b2");
    }
    /* Device to remote device: our b2 into the peer's b1. */
    kvx_xfer_desc_t desc = {.local_addr = s->buf[B2], .remote_addr = rb1.address, .length = len};
    if ((st = kvx_xfer_sync(s->engine, s->peer, KVX_OP_WRITE, &desc, 1, NULL)) != KVX_OK) {
        return ex_fail(st, "write into the peer's b1");
    }
    if ((st = kvx_notify_send(s->engine, s->peer, "written", NULL, 0, 0)) != KVX_OK) {
        return ex_fail(st, "send \"written\"");
    }
    char *msg;
    if ((st = wait_for(s->engine, &s->inbox, "written", NOTIFY_DEADLINE_MS, &msg)) != KVX_OK) {
        return ex_fail(st, "wait for \"written\"");
    }
    free(msg);

    int bad = check_buffer(s, B1, "b1 (written by the peer)");
    /* Remote device to device: the peer's b2 into our landing buffer. */
    desc = (kvx_xfer_desc_t){
        .local_addr = s->buf[LANDING], .remote_addr = rb2.address, .length = BUF_LEN};
    if ((st = kvx_xfer_sync(s->engine, s->peer, KVX_OP_READ, &desc, 1, NULL)) != KVX_OK) {
        return ex_fail(st, "read the peer's b2");
    }
    bad |= check_buffer(s, LANDING, "the peer's b2 (read)");
    return bad;
}

/* Tell the peer we are done with its memory and wait until it is done with
 * ours; only then may either side tear down. */
static int finish(side_t *s)
{
    kvx_status_t st = kvx_notify_send(s->engine, s->peer, "finished", NULL, 0, 0);
    if (st != KVX_OK) {
        return ex_fail(st, "send \"finished\"");
    }
    char *msg;
    if ((st = wait_for(s->engine, &s->inbox, "finished", NOTIFY_DEADLINE_MS, &msg)) != KVX_OK) {
        return ex_fail(st, "wait for \"finished\"");
    }
    free(msg);
    return 0;
}

static int teardown(side_t *s)
{
    int rc = 0;
    kvx_status_t st;
    if (s->linked && (st = kvx_engine_disconnect(s->engine, s->peer, 0)) != KVX_OK) {
        rc = ex_fail(st, "disconnect");
    }
    for (int i = 0; i < 3; i++) {
        if (s->mem[i] != NULL && (st = kvx_mem_deregister(s->engine, s->mem[i])) != KVX_OK) {
            rc = ex_fail(st, "deregister");
        }
    }
    kvx_engine_destroy(s->engine);
    for (int i = 0; i < 3; i++) {
        if (s->buf[i] != NULL) {
            kvx_device_free(s->dev, s->buf[i]);
        }
    }
    inbox_free(&s->inbox);
    return rc;
}

static int run(int dev, const char *name, const char *remote)
{
    side_t s = {.dev = dev};
    kvx_engine_params_t params = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = name};
    kvx_status_t st = kvx_engine_create(&params, &s.engine);
    if (st != KVX_OK) {
        return ex_fail(st, "create engine");
    }
    s.name = kvx_engine_name(s.engine);
    printf("%s: listening\n", s.name);

    int rc;
    if (strlen(s.name) + 1 > BUF_LEN) {
        fprintf(stderr, "%s: engine name '%s' does not fit the %d-byte buffers\n", ex_prog, s.name,
                BUF_LEN);
        rc = 1;
    } else if ((rc = setup_buffers(&s)) == 0 && (rc = rendezvous(&s, remote)) == 0 &&
               (rc = exchange(&s)) == 0 && (rc = finish(&s)) == 0) {
        printf("%s: both checks passed\n", s.name);
    }
    if (rc != 0 && s.linked && !s.inbox.aborted) {
        /* Best effort: spare the peer a wait that could only time out. */
        const char *why = "its side of the exchange failed";
        kvx_notify_send(s.engine, s.peer, "abort", why, strlen(why), ABORT_TIMEOUT_MS);
    }
    return teardown(&s) | rc;
}

int main(int argc, char **argv)
{
    ex_prog = "server_server_d2d";
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the two processes' lines in order */
    int dev = -1;
    if (argc < 3 || argc > 4 || ex_parse_device(argv[1], &dev) != 0) {
        fprintf(stderr,
                "usage: %s DEVICE_ID IP:PORT                  (waits for a peer)\n"
                "       %s DEVICE_ID IP:PORT REMOTE_IP:PORT   (starts the exchange)\n",
                ex_prog, ex_prog);
        return 2;
    }
    if (!ex_has_port(argv[2])) {
        fprintf(stderr, "%s: engine '%s' needs a port (0 = any): both sides listen\n", ex_prog,
                argv[2]);
        return 2;
    }
    return run(dev, argv[2], argc == 4 ? argv[3] : NULL);
}

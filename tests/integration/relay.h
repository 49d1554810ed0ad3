/*
 * A pausable TCP relay for the integration tests (relay.c), and the loopback
 * sockets it is made of.
 *
 * The initiator connects to the relay, the relay to the target, and the test
 * can make it stop forwarding requests (PX_FWD) or replies (PX_BACK), which
 * holds them deterministically, then resume or drop the relayed connections.
 * Over shm a paused relay holds no data (the initiator copies by itself).
 *
 * Failures inside these helpers fail the running cmocka test.
 */
#ifndef KVX_TEST_RELAY_H
#define KVX_TEST_RELAY_H

#include <kvx/kvx.h>
#include <pthread.h>
#include <stdint.h>

#define PROXY_PAIRS 16
#define PX_FWD      1
#define PX_BACK     2

typedef struct proxy {
    int lfd;
    int wake[2];
    int target_port;
    char name[KVX_ENGINE_NAME_MAX]; /* "127.0.0.1:N": what the initiator connects to */
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int paused; /* PX_FWD: hold initiator -> target, PX_BACK: target -> initiator */
    int drop;   /* close every relayed connection */
    int stop;
    uint64_t iter;           /* loop iterations begun; each reads the flags above */
    uint64_t back_bytes;     /* forwarded target -> initiator */
    int corrupt_dir;         /* PX_FWD or PX_BACK: flip one byte going that way */
    uint64_t corrupt_skip;   /* ... after this many more bytes */
    uint64_t corrupted;      /* bytes flipped so far */
    int fd[PROXY_PAIRS][2];  /* [0] initiator side, [1] target side; -1: free */
    int eof[PROXY_PAIRS][2]; /* that side closed its write half: passed on */
} proxy_t;

/* A TCP socket bound to 127.0.0.1:0 (its port in *port_p); listening if
 * @p listening. */
int loopback_socket(int listening, int *port_p);
/* A TCP_NODELAY connection to 127.0.0.1:@p port, or -1. */
int connect_loopback(int port);

/* A relay from a fresh 127.0.0.1 port to @p target_name ("127.0.0.1:N"). */
proxy_t *proxy_new(const char *target_name);
/* Set the flags and return once the relay loop runs with them: after
 * proxy_ctl(p, PX_FWD, 0) returns, no byte sent by an initiator is forwarded
 * until the next proxy_ctl(). @p drop closes every relayed connection. */
void proxy_ctl(proxy_t *p, int paused, int drop);
/* Bytes forwarded target -> initiator so far. */
uint64_t proxy_back_bytes(proxy_t *p);
/* Wait (up to 5 s) until the relay forwarded more than @p seen bytes
 * target -> initiator. */
void proxy_wait_back(proxy_t *p, uint64_t seen);
/* Flip one byte (xor 0x5a) of what is forwarded in direction @p dir
 * (PX_FWD or PX_BACK), the one @p skip bytes after everything forwarded so
 * far that way: a fault the end-to-end checksum must catch. */
void proxy_corrupt(proxy_t *p, int dir, uint64_t skip);
/* Bytes flipped so far. */
uint64_t proxy_corrupted(proxy_t *p);
/* Stop the relay and close everything; NULL is a no-op. */
void proxy_free(proxy_t *p);

#endif

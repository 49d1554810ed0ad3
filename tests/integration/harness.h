/* Helpers for tests that run a second process (kvx-test-peer). */
#ifndef KVX_TEST_HARNESS_H
#define KVX_TEST_HARNESS_H

#include <kvx/kvx.h>
#include <stdint.h>
#include <sys/types.h>

/* Regions the peer registers, by tag. */
#define PEER_TAG_SRC     1   /* host, PEER_REGION bytes, pattern of seed 1 */
#define PEER_TAG_DST     2   /* device 0, PEER_REGION bytes, zeroed */
#define PEER_TAG_RO      3   /* host, read-only for peers, 1 MiB, pattern of seed 3 */
#define PEER_TAG_MAILBOX 100 /* 16 bytes: u64 seq, u64 result of the last command */
#define PEER_REGION      ((64u << 20) + 4096)
#define PEER_RO_REGION   (1u << 20)

/* The cache of "kvx-test-peer kv-serve": one cache (id 1), PEER_KV_TENSORS
 * device tensors of fp16 [PEER_KV_BLOCKS, 16, 8, 64], i.e. blocks of
 * PEER_KV_BLOCK bytes; tensor i holds the pattern of seed (--seed) + i. */
#define PEER_KV_TENSORS 4
#define PEER_KV_BLOCKS  128
#define PEER_KV_BLOCK   (16u * 8u * 64u * 2u)

/* Byte @p offset of the test pattern with @p seed. */
static inline uint8_t test_pattern(uint64_t seed, uint64_t offset)
{
    uint64_t x = (offset + 1) * 0x9E3779B97F4A7C15ull ^ (seed * 0xC2B2AE3D27D4EB4Full);
    return (uint8_t)(x >> 56);
}

void test_fill(void *buf, size_t len, uint64_t seed, uint64_t offset);
/* Number of bytes that differ from the pattern. */
size_t test_check(const void *buf, size_t len, uint64_t seed, uint64_t offset);

typedef struct test_peer {
    pid_t pid;
    int port;
    char name[64]; /* "127.0.0.1:port" */
    char dir[64];  /* scratch directory for the port file */
} test_peer_t;

/* Start kvx-test-peer on 127.0.0.1:@p port (0: any) and wait until it
 * listens with its regions registered. 0 on success. */
int test_peer_start(test_peer_t *peer, int port);
/* The same, with "NAME=VALUE" @p env (may be NULL) in the peer's
 * environment, replacing NAME if this process has it. */
int test_peer_start_env(test_peer_t *peer, int port, const char *env);
/* The general form: runs @p prefix (a NULL-terminated argv put before the
 * peer binary, e.g. {"ip", "netns", "exec", NS, NULL}; may be NULL), then
 * "kvx-test-peer @p mode @p listen --port-file FILE @p args..." (@p args
 * NULL-terminated, may be NULL), and waits until FILE holds a number. The
 * peer's name is @p listen's address with that number as port. */
int test_peer_spawn(test_peer_t *peer, const char *const *prefix, const char *mode,
                    const char *listen, const char *const *args, const char *env);
/* SIGSTOP, and return once every thread of the peer has stopped (a bare
 * kill() returns before that). 0 on success. */
int test_peer_pause(test_peer_t *peer);
/* SIGCONT. */
void test_peer_resume(test_peer_t *peer);
/* SIGKILL and reap. */
void test_peer_kill(test_peer_t *peer);
/* Ask it to quit (SIGTERM), reap within 10 s (then SIGKILL). Returns its
 * exit status, or -1. */
int test_peer_stop(test_peer_t *peer);

/* Create a client engine "127.0.0.1" with extra params (may be NULL). */
kvx_engine_h test_client(const kvx_engine_params_t *extra);
/* Connect, retrying until @p deadline_ms passes. */
kvx_status_t test_connect(kvx_engine_h engine, const char *remote, int deadline_ms);
/* Address of a peer region by tag (0 if absent); fetches the remote table. */
uint64_t test_remote_region(kvx_engine_h engine, const char *remote, uint64_t tag);

/* Run a peer command (see peer.c) and wait up to 10 s for its result.
 * Returns 0 and sets *result, or -1 on failure. */
int test_peer_cmd(kvx_engine_h engine, const char *remote, int64_t *result, const char *cmd,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* 1 when links between two processes of this host use the same-host path
 * (KVX_TRANSPORT=shm; also unset or "auto", which pick it between processes
 * of one host and user, as every test here has), 0 for KVX_TRANSPORT=tcp.
 * Over it the initiator copies by itself: a stopped or silent target, or a
 * paused TCP relay, does not hold READs and WRITEs. */
int test_transport_is_shm(void);

/* In a cmocka test that depends on a property only tcp has: over shm, print
 * "[  SKIP    ] skipped over shm: <why>" and skip() (returns from the test). */
#define TEST_SKIP_OVER_SHM(why)                                                                    \
    do {                                                                                           \
        if (test_transport_is_shm()) {                                                             \
            print_message("[  SKIP    ] skipped over shm: %s\n", why);                             \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t test_now_ms(void);

#endif

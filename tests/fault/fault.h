/*
 * Helpers of the fault suite (tests/fault), in fault.c, on top of the
 * integration harness (harness.h: the peer process, patterns).
 *
 * Every program counts what it did in fault_stats and prints one line at the
 * end with fault_summary():
 *
 *   FAULT-SUMMARY test=<name> transport=<t> faults=<n> requests=<n>
 *                 bytes=<n> hangs=<n> corrupted=<n>
 *
 * faults: faults injected (kills, stops, links taken down, restarts);
 * requests: transfers, KV pulls and cycles asked of the library; bytes: bytes
 * checked against their pattern (data a transfer reported COMPLETED);
 * hangs: calls or transfers that did not end within their bound; corrupted:
 * checked bytes that did not match. scripts/fault-report.sh adds them up.
 */
#ifndef KVX_TEST_FAULT_H
#define KVX_TEST_FAULT_H

#include <kvx/kvx.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

typedef struct fault_stats {
    uint64_t faults, requests, bytes, hangs, corrupted;
} fault_stats_t;

extern fault_stats_t fault_stats;

/* Thread-safe: FAULT_ADD(requests, 1). */
#define FAULT_ADD(field, n) __atomic_add_fetch(&fault_stats.field, (uint64_t)(n), __ATOMIC_RELAXED)

/* "tcp", "shm" or "auto" (KVX_TRANSPORT). */
const char *fault_transport(void);
/* Print the FAULT-SUMMARY line of @p test. */
void fault_summary(const char *test);

/* Check @p len bytes of @p buf against the pattern of @p seed at @p offset,
 * count them (bytes, corrupted) and return the number that differ. */
size_t fault_verify(const void *buf, size_t len, uint64_t seed, uint64_t offset);
/* Copy @p len bytes at @p addr of process @p pid (process_vm_readv; this
 * process is root or the parent). 0, or -1 with errno (ESRCH: gone). */
int fault_peer_read(pid_t pid, uint64_t addr, void *buf, size_t len);
/* fault_verify() of the memory of process @p pid; -1 if it cannot be read. */
int64_t fault_verify_remote(pid_t pid, uint64_t addr, size_t len, uint64_t seed, uint64_t offset);

/* Wait at most @p bound_ms for an async transfer. One still WAITING then
 * counts a hang. Returns its state; *err_p its error (may be NULL). */
kvx_xfer_state_t fault_wait(kvx_engine_h engine, kvx_xfer_id_t id, int bound_ms,
                            kvx_status_t *err_p);
/* Poll the state of the link to @p remote until it is @p want or
 * @p timeout_ms passed; returns the last state (and its error in *why_p). */
kvx_peer_state_t fault_wait_peer_state(kvx_engine_h engine, const char *remote,
                                       kvx_peer_state_t want, int timeout_ms, kvx_status_t *why_p);

/* An engine named @p name ("ip" or "ip:port") with peer_timeout_ms
 * @p peer_timeout_ms (0: the default). NULL if creation fails; *st_p gets the
 * status (KVX_ERR_UNSUPPORTED: this build has no peer_timeout_ms). */
kvx_engine_h fault_engine(const char *name, unsigned peer_timeout_ms, kvx_status_t *st_p);
/* Register @p len bytes at @p p with @p engine (tag @p tag), or fail the test. */
kvx_mem_h fault_register(kvx_engine_h engine, void *p, size_t len, uint64_t tag);

/* Open file descriptors of process @p pid (0: this one), or -1. */
int fault_fd_count(pid_t pid);
/* Resident set of process @p pid (0: this one) in bytes, or -1. */
long fault_rss(pid_t pid);

/* Run a shell command with a 20 s cap, output to stderr only if it fails.
 * Returns its exit status (0 = success). */
int fault_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Status histogram: add @p st, and print "NAME xN, ..." into @p out. */
typedef struct fault_hist {
    kvx_status_t st[16];
    unsigned n[16];
    unsigned used;
} fault_hist_t;
void fault_hist_add(fault_hist_t *h, kvx_status_t st);
const char *fault_hist_str(const fault_hist_t *h, char *out, size_t out_len);

#endif

/* Helpers of the fault suite: see fault.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"

fault_stats_t fault_stats;

const char *fault_transport(void)
{
    const char *t = getenv("KVX_TRANSPORT");
    return t != NULL && *t != '\0' ? t : "auto";
}

void fault_summary(const char *test)
{
    printf("FAULT-SUMMARY test=%s transport=%s faults=%llu requests=%llu bytes=%llu hangs=%llu "
           "corrupted=%llu\n",
           test, fault_transport(), (unsigned long long)fault_stats.faults,
           (unsigned long long)fault_stats.requests, (unsigned long long)fault_stats.bytes,
           (unsigned long long)fault_stats.hangs, (unsigned long long)fault_stats.corrupted);
    fflush(stdout);
}

size_t fault_verify(const void *buf, size_t len, uint64_t seed, uint64_t offset)
{
    size_t bad = test_check(buf, len, seed, offset);
    FAULT_ADD(bytes, len);
    FAULT_ADD(corrupted, bad);
    return bad;
}

int fault_peer_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        struct iovec l = {(uint8_t *)buf + done, len - done};
        struct iovec r = {(void *)(uintptr_t)(addr + done), len - done};
        ssize_t n = process_vm_readv(pid, &l, 1, &r, 1, 0);
        if (n <= 0) {
            if (n == 0) {
                errno = EFAULT;
            }
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

int64_t fault_verify_remote(pid_t pid, uint64_t addr, size_t len, uint64_t seed, uint64_t offset)
{
    uint8_t *tmp = malloc(len);
    if (tmp == NULL) {
        return -1;
    }
    int64_t bad = -1;
    if (fault_peer_read(pid, addr, tmp, len) == 0) {
        bad = (int64_t)fault_verify(tmp, len, seed, offset);
    }
    free(tmp);
    return bad;
}

kvx_xfer_state_t fault_wait(kvx_engine_h engine, kvx_xfer_id_t id, int bound_ms,
                            kvx_status_t *err_p)
{
    kvx_xfer_state_t st = KVX_XFER_WAITING;
    kvx_status_t err = KVX_OK;
    kvx_status_t rc = kvx_xfer_wait(engine, id, bound_ms, &st, &err);
    if (rc != KVX_OK) {
        fail_msg("kvx_xfer_wait(%llu): %s (%s)", (unsigned long long)id, kvx_status_name(rc),
                 kvx_last_error());
    }
    if (st == KVX_XFER_WAITING) {
        FAULT_ADD(hangs, 1);
    }
    if (err_p != NULL) {
        *err_p = err;
    }
    return st;
}

kvx_peer_state_t fault_wait_peer_state(kvx_engine_h engine, const char *remote,
                                       kvx_peer_state_t want, int timeout_ms, kvx_status_t *why_p)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    kvx_peer_state_t ps = KVX_PEER_NOT_CONNECTED;
    kvx_status_t why = KVX_OK;
    for (;;) {
        assert_int_equal(kvx_engine_peer_state(engine, remote, &ps, &why), KVX_OK);
        if (ps == want || test_now_ms() >= deadline) {
            break;
        }
        usleep(2000);
    }
    if (why_p != NULL) {
        *why_p = why;
    }
    return ps;
}

kvx_engine_h fault_engine(const char *name, unsigned peer_timeout_ms, kvx_status_t *st_p)
{
    kvx_engine_params_t p = {.field_mask = KVX_ENGINE_PARAM_FIELD_NAME, .name = name};
    if (peer_timeout_ms != 0) {
        p.field_mask |= KVX_ENGINE_PARAM_FIELD_PEER_TIMEOUT;
        p.peer_timeout_ms = peer_timeout_ms;
    }
    kvx_engine_h engine = NULL;
    kvx_status_t st = kvx_engine_create(&p, &engine);
    if (st_p != NULL) {
        *st_p = st;
    }
    if (st != KVX_OK) {
        print_message("  engine %s (peer_timeout_ms %u): %s: %s\n", name, peer_timeout_ms,
                      kvx_status_name(st), kvx_last_error());
        return NULL;
    }
    return engine;
}

kvx_mem_h fault_register(kvx_engine_h engine, void *p, size_t len, uint64_t tag)
{
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH |
                                         KVX_MEM_PARAM_FIELD_TAG,
                           .address = p,
                           .length = len,
                           .tag = tag};
    kvx_mem_h mem = NULL;
    kvx_status_t st = kvx_mem_register(engine, &mp, &mem);
    if (st != KVX_OK) {
        fail_msg("register %zu bytes: %s (%s)", len, kvx_status_name(st), kvx_last_error());
    }
    return mem;
}

int fault_fd_count(pid_t pid)
{
    char path[64];
    if (pid == 0) {
        snprintf(path, sizeof(path), "/proc/self/fd");
    } else {
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return pid == 0 ? n - 1 : n; /* not the directory stream itself */
}

long fault_rss(pid_t pid)
{
    char path[64];
    if (pid == 0) {
        snprintf(path, sizeof(path), "/proc/self/statm");
    } else {
        snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    long size = 0, resident = -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) {
        resident = -1;
    }
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

int fault_sh(const char *fmt, ...)
{
    char cmd[1024], full[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    char out[] = "/tmp/kvx-fault-sh-XXXXXX";
    int fd = mkstemp(out);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    snprintf(full, sizeof(full), "timeout 20 %s >%s 2>&1", cmd, out);
    int rc = system(full);
    rc = rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc));
    if (rc != 0) {
        fprintf(stderr, "fault: `%s` exited %d:\n", cmd, rc);
        FILE *f = fopen(out, "r");
        char line[256];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            fprintf(stderr, "  %s", line);
        }
        if (f != NULL) {
            fclose(f);
        }
    }
    unlink(out);
    return rc;
}

void fault_hist_add(fault_hist_t *h, kvx_status_t st)
{
    for (unsigned i = 0; i < h->used; i++) {
        if (h->st[i] == st) {
            h->n[i]++;
            return;
        }
    }
    if (h->used < 16) {
        h->st[h->used] = st;
        h->n[h->used++] = 1;
    }
}

const char *fault_hist_str(const fault_hist_t *h, char *out, size_t out_len)
{
    size_t used = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < h->used && used < out_len; i++) {
        int n = snprintf(out + used, out_len - used, "%s%s x%u", i ? ", " : "",
                         kvx_status_name(h->st[i]), h->n[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return out;
}

#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void test_fill(void *buf, size_t len, uint64_t seed, uint64_t offset)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < len; i++) {
        p[i] = test_pattern(seed, offset + i);
    }
}

size_t test_check(const void *buf, size_t len, uint64_t seed, uint64_t offset)
{
    const uint8_t *p = buf;
    size_t bad = 0;
    for (size_t i = 0; i < len; i++) {
        bad += p[i] != test_pattern(seed, offset + i);
    }
    return bad;
}

int test_transport_is_shm(void)
{
    const char *mode = getenv("KVX_TRANSPORT");
    return mode == NULL || strcmp(mode, "tcp") != 0;
}

/* This environment with @p env ("NAME=VALUE", may be NULL) put in place of
 * NAME. Built before fork: the child only calls execve. Free with free(). */
static char **peer_environ(const char *env)
{
    extern char **environ;
    size_t n = 0, name_len = 0;
    while (environ[n] != NULL) {
        n++;
    }
    char **envp = calloc(n + 2, sizeof(*envp));
    if (envp == NULL) {
        return NULL;
    }
    if (env != NULL) {
        const char *eq = strchr(env, '=');
        name_len = eq != NULL ? (size_t)(eq - env) : strlen(env);
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (env != NULL && strncmp(environ[i], env, name_len) == 0 && environ[i][name_len] == '=') {
            continue;
        }
        envp[k++] = environ[i];
    }
    if (env != NULL) {
        envp[k++] = (char *)(uintptr_t)env;
    }
    envp[k] = NULL;
    return envp;
}

int test_peer_start(test_peer_t *peer, int port)
{
    return test_peer_start_env(peer, port, NULL);
}

int test_peer_start_env(test_peer_t *peer, int port, const char *env)
{
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    return test_peer_spawn(peer, NULL, "serve", listen, NULL, env);
}

int test_peer_spawn(test_peer_t *peer, const char *const *prefix, const char *mode,
                    const char *listen, const char *const *args, const char *env)
{
    const char *bin = getenv("KVX_TEST_PEER");
    if (bin == NULL) {
        fprintf(stderr, "harness: KVX_TEST_PEER is not set\n");
        return -1;
    }
    memset(peer, 0, sizeof(*peer));
    const char *colon = strrchr(listen, ':');
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(peer->name) - 8) {
        fprintf(stderr, "harness: bad listen name %s\n", listen);
        return -1;
    }
    snprintf(peer->dir, sizeof(peer->dir), "/tmp/kvx-test-XXXXXX");
    if (mkdtemp(peer->dir) == NULL) {
        return -1;
    }
    char port_file[128];
    snprintf(port_file, sizeof(port_file), "%s/port", peer->dir);
    /* argv: prefix..., bin, mode, listen, --port-file, file, args..., NULL */
    const char *argv[64];
    size_t n = 0;
    for (size_t i = 0; prefix != NULL && prefix[i] != NULL && n < 48; i++) {
        argv[n++] = prefix[i];
    }
    argv[n++] = bin;
    argv[n++] = mode;
    argv[n++] = listen;
    argv[n++] = "--port-file";
    argv[n++] = port_file;
    for (size_t i = 0; args != NULL && args[i] != NULL && n < 63; i++) {
        argv[n++] = args[i];
    }
    argv[n] = NULL;
    char **envp = peer_environ(env);
    if (envp == NULL) {
        rmdir(peer->dir);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        /* execvpe: a prefix names a program on PATH ("ip"). */
        execvpe(argv[0], (char *const *)(uintptr_t)argv, envp);
        _exit(127);
    }
    free(envp);
    if (pid < 0) {
        rmdir(peer->dir);
        return -1;
    }
    peer->pid = pid;
    /* Handshake: the peer writes its port (atomically) once it is ready. */
    uint64_t deadline = test_now_ms() + 10000;
    while (test_now_ms() < deadline) {
        FILE *f = fopen(port_file, "r");
        if (f != NULL) {
            int got = fscanf(f, "%d", &peer->port);
            fclose(f);
            if (got == 1) {
                snprintf(peer->name, sizeof(peer->name), "%.*s:%d", (int)(colon - listen), listen,
                         peer->port);
                unlink(port_file);
                return 0;
            }
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "harness: peer exited before listening (status %d)\n", st);
            peer->pid = 0;
            rmdir(peer->dir);
            return -1;
        }
        usleep(20000);
    }
    test_peer_kill(peer);
    return -1;
}

static int reap(pid_t pid, int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    int st;
    while (test_now_ms() < deadline) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        usleep(10000);
    }
    return -2;
}

int test_peer_pause(test_peer_t *peer)
{
    if (peer->pid <= 0 || kill(peer->pid, SIGSTOP) != 0) {
        return -1;
    }
    /* The stop is reported to the parent once the whole group stopped. */
    uint64_t deadline = test_now_ms() + 5000;
    while (test_now_ms() < deadline) {
        int st;
        pid_t r = waitpid(peer->pid, &st, WUNTRACED | WNOHANG);
        if (r == peer->pid && WIFSTOPPED(st)) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        usleep(1000);
    }
    fprintf(stderr, "harness: peer %d did not stop within 5 s\n", (int)peer->pid);
    return -1;
}

void test_peer_resume(test_peer_t *peer)
{
    if (peer->pid > 0) {
        kill(peer->pid, SIGCONT);
    }
}

void test_peer_kill(test_peer_t *peer)
{
    if (peer->pid > 0) {
        kill(peer->pid, SIGKILL);
        reap(peer->pid, 10000);
        peer->pid = 0;
    }
    rmdir(peer->dir);
}

int test_peer_stop(test_peer_t *peer)
{
    if (peer->pid <= 0) {
        return -1;
    }
    kill(peer->pid, SIGTERM);
    int st = reap(peer->pid, 10000);
    if (st == -2) {
        kill(peer->pid, SIGKILL);
        reap(peer->pid, 10000);
        st = -1;
    }
    peer->pid = 0;
    rmdir(peer->dir);
    return st;
}

kvx_engine_h test_client(const kvx_engine_params_t *extra)
{
    kvx_engine_params_t params = {0};
    if (extra != NULL) {
        params = *extra;
    }
    params.field_mask |= KVX_ENGINE_PARAM_FIELD_NAME;
    params.name = "127.0.0.1";
    kvx_engine_h engine = NULL;
    if (kvx_engine_create(&params, &engine) != KVX_OK) {
        fprintf(stderr, "harness: engine_create: %s\n", kvx_last_error());
        return NULL;
    }
    return engine;
}

kvx_status_t test_connect(kvx_engine_h engine, const char *remote, int deadline_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)deadline_ms;
    kvx_status_t st;
    while ((st = kvx_engine_connect(engine, remote, 1000)) != KVX_OK &&
           st != KVX_ERR_ALREADY_CONNECTED && test_now_ms() < deadline) {
        usleep(20000);
    }
    return st == KVX_ERR_ALREADY_CONNECTED ? KVX_OK : st;
}

uint64_t test_remote_region(kvx_engine_h engine, const char *remote, uint64_t tag)
{
    kvx_remote_mem_t mems[64];
    size_t n = 0;
    if (kvx_engine_remote_mem(engine, remote, mems, 64, &n, 0) != KVX_OK) {
        return 0;
    }
    for (size_t i = 0; i < n && i < 64; i++) {
        if (mems[i].tag == tag) {
            return mems[i].address;
        }
    }
    return 0;
}

int test_peer_cmd(kvx_engine_h engine, const char *remote, int64_t *result, const char *cmd,
                  const char *fmt, ...)
{
    static uint64_t seq_counter;
    static __thread uint64_t mailbox[2];
    kvx_mem_h mailbox_mem = NULL;
    uint64_t seq = __atomic_add_fetch(&seq_counter, 1, __ATOMIC_RELAXED) + (uint64_t)getpid();
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "%llu ", (unsigned long long)seq);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);

    uint64_t remote_box = test_remote_region(engine, remote, PEER_TAG_MAILBOX);
    if (remote_box == 0) {
        return -1;
    }
    /* Registered per call: the same region again only counts a reference. */
    kvx_mem_params_t mp = {.field_mask = KVX_MEM_PARAM_FIELD_ADDRESS | KVX_MEM_PARAM_FIELD_LENGTH,
                           .address = mailbox,
                           .length = sizeof(mailbox)};
    if (kvx_mem_register(engine, &mp, &mailbox_mem) != KVX_OK) {
        fprintf(stderr, "harness: register mailbox: %s\n", kvx_last_error());
        return -1;
    }
    int rc = -1;
    if (kvx_notify_send(engine, remote, cmd, msg, strlen(msg), 0) != KVX_OK) {
        fprintf(stderr, "harness: notify %s: %s\n", cmd, kvx_last_error());
        goto out;
    }
    uint64_t deadline = test_now_ms() + 10000;
    kvx_xfer_desc_t d = {mailbox, remote_box, sizeof(mailbox)};
    while (test_now_ms() < deadline) {
        if (kvx_xfer_sync(engine, remote, KVX_OP_READ, &d, 1, NULL) != KVX_OK) {
            fprintf(stderr, "harness: read mailbox: %s\n", kvx_last_error());
            goto out;
        }
        if (mailbox[0] == seq) {
            *result = (int64_t)mailbox[1];
            rc = 0;
            goto out;
        }
        usleep(2000);
    }
    fprintf(stderr, "harness: no result for %s within 10 s\n", cmd);
out:
    kvx_mem_deregister(engine, mailbox_mem);
    return rc;
}

/*
 * The test relay: a TCP relay between an initiator and a target on
 * 127.0.0.1. The initiator connects to the relay, the relay to the target,
 * and the test can make it stop forwarding requests (PX_FWD) or replies
 * (PX_BACK), which holds them deterministically, then resume or drop the
 * relayed connections. Over shm a paused relay holds nothing: see
 * TEST_SKIP_OVER_SHM (harness.h).
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
#include <unistd.h>

#include "harness.h"
#include "relay.h"

#define PROXY_BUF (64 * 1024)

/* ------------------------------------------------------------ sockets */

/* A TCP socket bound to 127.0.0.1:0; listening if @p listening. */
int loopback_socket(int listening, int *port_p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (listening) {
        assert_int_equal(listen(fd, 16), 0);
    }
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port_p = ntohs(a.sin_port);
    assert_true(*port_p > 0);
    return fd;
}

int connect_loopback(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---------------------------------------------------------- the relay */

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static void proxy_close_pair(proxy_t *p, int i)
{
    if (p->fd[i][0] >= 0) {
        close(p->fd[i][0]);
        close(p->fd[i][1]);
        p->fd[i][0] = p->fd[i][1] = -1;
    }
    p->eof[i][0] = p->eof[i][1] = 0;
}

static void proxy_accept(proxy_t *p)
{
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
        return;
    }
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int tfd = connect_loopback(p->target_port);
    for (int i = 0; tfd >= 0 && i < PROXY_PAIRS; i++) {
        if (p->fd[i][0] < 0) {
            p->fd[i][0] = cfd;
            p->fd[i][1] = tfd;
            return;
        }
    }
    close(cfd);
    if (tfd >= 0) {
        close(tfd);
    }
}

/* Flip the byte proxy_corrupt() asked for, if it is in this chunk. */
static void corrupt_in_flight(proxy_t *p, int side, uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&p->lock);
    int dir = side == 0 ? PX_FWD : PX_BACK;
    if (p->corrupt_dir == dir) {
        if (p->corrupt_skip < len) {
            buf[p->corrupt_skip] ^= 0x5a;
            p->corrupt_dir = 0;
            p->corrupted++;
        } else {
            p->corrupt_skip -= len;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

void proxy_corrupt(proxy_t *p, int dir, uint64_t skip)
{
    pthread_mutex_lock(&p->lock);
    p->corrupt_dir = dir;
    p->corrupt_skip = skip;
    pthread_mutex_unlock(&p->lock);
}

uint64_t proxy_corrupted(proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->corrupted;
    pthread_mutex_unlock(&p->lock);
    return n;
}

static void *proxy_main(void *arg)
{
    proxy_t *p = arg;
    uint8_t *buf = malloc(PROXY_BUF);
    for (;;) {
        pthread_mutex_lock(&p->lock);
        if (p->drop) {
            for (int i = 0; i < PROXY_PAIRS; i++) {
                proxy_close_pair(p, i);
            }
            p->drop = 0;
        }
        int paused = p->paused;
        int stop = p->stop;
        p->iter++;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        if (stop || buf == NULL) {
            break;
        }
        struct pollfd pfd[2 + 2 * PROXY_PAIRS];
        int who[2 + 2 * PROXY_PAIRS];
        nfds_t n = 0;
        pfd[n] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        who[n++] = -1;
        pfd[n] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        who[n++] = -1;
        for (int i = 0; i < PROXY_PAIRS; i++) {
            if (p->fd[i][0] < 0) {
                continue;
            }
            if (!(paused & PX_FWD) && !p->eof[i][0]) {
                pfd[n] = (struct pollfd){.fd = p->fd[i][0], .events = POLLIN};
                who[n++] = 2 * i;
            }
            if (!(paused & PX_BACK) && !p->eof[i][1]) {
                pfd[n] = (struct pollfd){.fd = p->fd[i][1], .events = POLLIN};
                who[n++] = 2 * i + 1;
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (pfd[0].revents != 0) {
            char tmp[64];
            while (read(p->wake[0], tmp, sizeof(tmp)) > 0) {
            }
        }
        for (nfds_t k = 2; k < n; k++) {
            if (pfd[k].revents == 0) {
                continue;
            }
            int i = who[k] / 2, side = who[k] % 2;
            if (p->fd[i][side] != pfd[k].fd) {
                continue; /* closed earlier in this round */
            }
            ssize_t r = recv(pfd[k].fd, buf, PROXY_BUF, 0);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r > 0) {
                corrupt_in_flight(p, side, buf, (size_t)r);
            }
            if (r == 0) {
                /* Pass the half-close on, as a direct connection would: a
                 * peer that waits for the other side's EOF must see it only
                 * once the other side has closed too. */
                shutdown(p->fd[i][1 - side], SHUT_WR);
                p->eof[i][side] = 1;
                if (p->eof[i][1 - side]) {
                    proxy_close_pair(p, i);
                }
            } else if (r < 0 || send_all(p->fd[i][1 - side], buf, (size_t)r) != 0) {
                proxy_close_pair(p, i);
            } else if (side == 1) {
                pthread_mutex_lock(&p->lock);
                p->back_bytes += (uint64_t)r;
                pthread_mutex_unlock(&p->lock);
            }
        }
        if (pfd[1].revents != 0) {
            proxy_accept(p);
        }
    }
    free(buf);
    return NULL;
}

/* A relay from a fresh 127.0.0.1 port to @p target_name ("127.0.0.1:N"). */
proxy_t *proxy_new(const char *target_name)
{
    proxy_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    const char *colon = strrchr(target_name, ':');
    assert_non_null(colon);
    p->target_port = atoi(colon + 1);
    for (int i = 0; i < PROXY_PAIRS; i++) {
        p->fd[i][0] = p->fd[i][1] = -1;
    }
    int port = 0;
    p->lfd = loopback_socket(1, &port);
    snprintf(p->name, sizeof(p->name), "127.0.0.1:%d", port);
    assert_int_equal(pipe2(p->wake, O_NONBLOCK | O_CLOEXEC), 0);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    assert_int_equal(pthread_create(&p->tid, NULL, proxy_main, p), 0);
    return p;
}

/* Set the flags and return once the relay loop runs with them: after
 * proxy_ctl(p, PX_FWD, 0) returns, no byte sent by an initiator is forwarded
 * until the next proxy_ctl(). @p drop closes every relayed connection. */
void proxy_ctl(proxy_t *p, int paused, int drop)
{
    pthread_mutex_lock(&p->lock);
    p->paused = paused;
    p->drop |= drop;
    uint64_t seen = p->iter;
    ssize_t w = write(p->wake[1], "x", 1);
    (void)w;
    while (p->iter == seen) {
        pthread_cond_wait(&p->cond, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
}

uint64_t proxy_back_bytes(proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->back_bytes;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* Wait until the relay forwarded more than @p seen bytes target -> initiator. */
void proxy_wait_back(proxy_t *p, uint64_t seen)
{
    uint64_t deadline = test_now_ms() + 5000;
    while (proxy_back_bytes(p) <= seen) {
        if (test_now_ms() > deadline) {
            fail_msg("the relay forwarded nothing from the target in 5 s");
        }
        usleep(1000);
    }
}

void proxy_free(proxy_t *p)
{
    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    ssize_t w = write(p->wake[1], "x", 1);
    (void)w;
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->tid, NULL);
    for (int i = 0; i < PROXY_PAIRS; i++) {
        proxy_close_pair(p, i);
    }
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

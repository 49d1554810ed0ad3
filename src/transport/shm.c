#include "transport/shm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

#define IOV_BATCH 1024

/* One registration. gen: 0 never used, odd = changing or dead, even = live. */
typedef struct shm_slot {
    uint64_t addr;
    uint64_t len;
    uint64_t tag;
    uint32_t read_only;
    uint32_t gen;
    int32_t memfd; /* >= 0: the memory is this memfd of the target... */
    uint32_t pad0;
    uint64_t memfd_off; /* ...from this offset: peers map it and memcpy */
    uint8_t pad[16];
} shm_slot_t;

/* Slot 0 is the header: where the used slots end. */
typedef struct shm_header {
    uint64_t magic;
    uint64_t instance; /* the owning engine's, as in its HELLO_ACK */
    uint32_t high_water;
    uint32_t gen;
} shm_header_t;

#define SHM_MAGIC   0x314d48535856564bull
#define TABLE_BYTES ((size_t)KVX_SHM_SLOTS * sizeof(shm_slot_t))
#define PINS_BYTES  ((size_t)KVX_SHM_SLOTS * sizeof(uint32_t))

struct kvx_shm_pins {
    struct kvx_shm_pins *next;
    int fd;
    uint32_t *counts;
    uint64_t released_ns; /* link closed at; 0 while open */
};

struct kvx_shm_table {
    pthread_mutex_t lock;
    int fd;
    shm_slot_t *slots;
    kvx_shm_pins_t *pins; /* one per same-host link */
};

/* A closed link's pins still count for a while: a copy its initiator began
 * may still be running. After this grace they go, so a crashed initiator
 * cannot hold memory for ever. */
#define PINS_GRACE_NS (5ull * 1000000000ull)

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pins_idle(const kvx_shm_pins_t *p)
{
    for (size_t i = 0; i < KVX_SHM_SLOTS; i++) {
        if (__atomic_load_n(&p->counts[i], __ATOMIC_SEQ_CST) != 0) {
            return 0;
        }
    }
    return 1;
}

static void pins_free(kvx_shm_pins_t *p)
{
    munmap(p->counts, PINS_BYTES);
    close(p->fd);
    free(p);
}

/* Drop released pins that are idle or past their grace. t->lock held. */
static void reap_locked(kvx_shm_table_t *t)
{
    uint64_t now = mono_ns();
    for (kvx_shm_pins_t **pp = &t->pins; *pp != NULL;) {
        kvx_shm_pins_t *p = *pp;
        if (p->released_ns != 0 && (now - p->released_ns > PINS_GRACE_NS || pins_idle(p))) {
            *pp = p->next;
            pins_free(p);
        } else {
            pp = &p->next;
        }
    }
}

struct kvx_shm_link {
    pid_t pid;
    const shm_slot_t *slots;
    uint32_t *counts;
    /* sorted snapshot of live slots: rebuilt when a lookup misses */
    pthread_mutex_t lock;
    struct slot_ref {
        uint64_t addr, len, tag;
        uint32_t slot, gen, read_only;
        int32_t memfd;
        uint64_t memfd_off;
    } * index;
    size_t nindex;
    /* Target memfds mapped here, by slot (valid for that generation). */
    struct slot_map {
        uint32_t gen;
        uint8_t *base; /* where remote address slot.addr appears locally */
        void *map;
        size_t map_len;
    } * maps;
};

uint64_t kvx_shm_boot_id(void)
{
    char buf[64] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        (void)n;
        close(fd);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = buf; *p != '\0' && *p != '\n'; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    }
    return h;
}

static void *map_memfd(const char *name, size_t bytes, int *fd_p)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) {
        return NULL;
    }
    if (ftruncate(fd, (off_t)bytes) != 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    *fd_p = fd;
    return p;
}

kvx_status_t kvx_shm_table_create(uint64_t instance, kvx_shm_table_t **table_p)
{
    kvx_shm_table_t *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
    }
    t->slots = map_memfd("kvx-slots", TABLE_BYTES, &t->fd);
    if (t->slots == NULL) {
        kvx_status_t st =
            KVX_FAIL(KVX_ERR_IO, "shm: memfd for the slot table: %s", strerror(errno));
        free(t);
        return st;
    }
    shm_header_t *h = (shm_header_t *)&t->slots[0];
    h->magic = SHM_MAGIC;
    h->instance = instance;
    h->high_water = 1;
    pthread_mutex_init(&t->lock, NULL);
    *table_p = t;
    return KVX_OK;
}

void kvx_shm_table_destroy(kvx_shm_table_t *t)
{
    if (t == NULL) {
        return;
    }
    /* The application frees its memory once the engine is gone: mark every
     * slot dead, then wait (bounded) for copies already pinned to end. */
    shm_header_t *h = (shm_header_t *)&t->slots[0];
    for (uint32_t i = 1; i < h->high_water; i++) {
        uint32_t gen = t->slots[i].gen;
        if (gen != 0 && !(gen & 1)) {
            __atomic_store_n(&t->slots[i].gen, gen + 1, __ATOMIC_SEQ_CST);
        }
    }
    uint64_t deadline = mono_ns() + 2000000000ull;
    for (kvx_shm_pins_t *p = t->pins; p != NULL; p = p->next) {
        while (!pins_idle(p) && mono_ns() < deadline) {
            usleep(1000);
        }
        if (!pins_idle(p)) {
            kvx_error("shm: a same-host peer still copies after 2 s; destroying anyway");
            break;
        }
    }
    while (t->pins != NULL) {
        kvx_shm_pins_t *p = t->pins;
        t->pins = p->next;
        pins_free(p);
    }
    munmap(t->slots, TABLE_BYTES);
    close(t->fd);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

int kvx_shm_table_fd(const kvx_shm_table_t *t)
{
    return t->fd;
}

uint64_t kvx_shm_table_probe_addr(const kvx_shm_table_t *t)
{
    return (uint64_t)(uintptr_t)t->slots;
}

uint32_t kvx_shm_table_add(kvx_shm_table_t *t, uint64_t addr, uint64_t len, uint64_t tag,
                           int read_only, int memfd, uint64_t memfd_off)
{
    pthread_mutex_lock(&t->lock);
    reap_locked(t);
    shm_header_t *h = (shm_header_t *)&t->slots[0];
    uint32_t slot = 0;
    for (uint32_t i = 1; i < h->high_water; i++) {
        if (__atomic_load_n(&t->slots[i].gen, __ATOMIC_RELAXED) & 1 || t->slots[i].gen == 0) {
            slot = i;
            break;
        }
    }
    if (slot == 0 && h->high_water < KVX_SHM_SLOTS) {
        slot = h->high_water;
    }
    if (slot != 0) {
        shm_slot_t *s = &t->slots[slot];
        uint32_t gen = s->gen | 1; /* odd while it changes */
        __atomic_store_n(&s->gen, gen, __ATOMIC_SEQ_CST);
        s->addr = addr;
        s->len = len;
        s->tag = tag;
        s->read_only = (uint32_t)read_only;
        s->memfd = memfd;
        s->memfd_off = memfd_off;
        __atomic_store_n(&s->gen, gen + 1, __ATOMIC_SEQ_CST);
        if (slot == h->high_water) {
            __atomic_store_n(&h->high_water, slot + 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return slot;
}

kvx_status_t kvx_shm_table_remove(kvx_shm_table_t *t, uint32_t slot)
{
    if (slot == 0 || slot >= KVX_SHM_SLOTS) {
        return KVX_OK;
    }
    pthread_mutex_lock(&t->lock);
    reap_locked(t);
    shm_slot_t *s = &t->slots[slot];
    uint32_t gen = s->gen;
    /* Dead first, then look for pins: an initiator pins first, then checks
     * the generation, so either it sees dead or we see its pin. */
    __atomic_store_n(&s->gen, gen + 1, __ATOMIC_SEQ_CST);
    int busy = 0;
    for (kvx_shm_pins_t *p = t->pins; p != NULL && !busy; p = p->next) {
        busy = __atomic_load_n(&p->counts[slot], __ATOMIC_SEQ_CST) != 0;
    }
    if (busy) {
        /* Still in use: bring it back (the same content, a new generation,
         * so a check that saw it dead just retries). */
        __atomic_store_n(&s->gen, gen + 2, __ATOMIC_SEQ_CST);
    }
    pthread_mutex_unlock(&t->lock);
    return busy ? KVX_ERR_BUSY : KVX_OK;
}

kvx_status_t kvx_shm_pins_create(kvx_shm_table_t *t, kvx_shm_pins_t **pins_p)
{
    kvx_shm_pins_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
    }
    p->counts = map_memfd("kvx-pins", PINS_BYTES, &p->fd);
    if (p->counts == NULL) {
        kvx_status_t st = KVX_FAIL(KVX_ERR_IO, "shm: memfd for pins: %s", strerror(errno));
        free(p);
        return st;
    }
    pthread_mutex_lock(&t->lock);
    p->next = t->pins;
    t->pins = p;
    pthread_mutex_unlock(&t->lock);
    *pins_p = p;
    return KVX_OK;
}

void kvx_shm_pins_release(kvx_shm_table_t *t, kvx_shm_pins_t *pins)
{
    pthread_mutex_lock(&t->lock);
    pins->released_ns = mono_ns();
    reap_locked(t);
    pthread_mutex_unlock(&t->lock);
}

int kvx_shm_pins_fd(const kvx_shm_pins_t *pins)
{
    return pins->fd;
}

/* ----------------------------------------------------------- initiator */

static void *map_remote(pid_t pid, int fd, size_t bytes, int writable)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
    int local = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (local < 0) {
        return NULL;
    }
    void *p = mmap(NULL, bytes, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, local, 0);
    close(local);
    return p == MAP_FAILED ? NULL : p;
}

kvx_status_t kvx_shm_link_open(pid_t pid, int table_fd, int pins_fd, uint64_t probe_addr,
                               uint64_t instance, kvx_shm_link_t **link_p)
{
    kvx_shm_link_t *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
    }
    l->pid = pid;
    pthread_mutex_init(&l->lock, NULL);
    l->slots = map_remote(pid, table_fd, TABLE_BYTES, 0);
    l->counts = map_remote(pid, pins_fd, PINS_BYTES, 1);
    kvx_status_t status = KVX_OK;
    if (l->slots == NULL || l->counts == NULL) {
        status = KVX_FAIL(KVX_ERR_UNSUPPORTED, "shm: cannot map pid %d's tables: %s", (int)pid,
                          strerror(errno));
    } else if (((const shm_header_t *)l->slots)->magic != SHM_MAGIC ||
               ((const shm_header_t *)l->slots)->instance != instance) {
        /* Not the engine at the other end of our socket: never copy. */
        status = KVX_FAIL(KVX_ERR_UNSUPPORTED, "shm: pid %d's table is not our peer's", (int)pid);
    } else {
        /* Cross-memory attach needs ptrace rights over the target, and the
         * process must be the same one (magic and instance at that address). */
        uint64_t probe[2] = {0, 0};
        struct iovec lv = {probe, sizeof(probe)};
        struct iovec rv = {(void *)(uintptr_t)probe_addr, sizeof(probe)};
        if (process_vm_readv(pid, &lv, 1, &rv, 1, 0) != (ssize_t)sizeof(probe) ||
            probe[0] != SHM_MAGIC || probe[1] != instance) {
            status =
                KVX_FAIL(KVX_ERR_UNSUPPORTED, "shm: process_vm_readv on pid %d not permitted (%s)",
                         (int)pid, strerror(errno));
        }
    }
    if (status != KVX_OK) {
        kvx_shm_link_close(l);
        return status;
    }
    *link_p = l;
    return KVX_OK;
}

void kvx_shm_link_close(kvx_shm_link_t *l)
{
    if (l == NULL) {
        return;
    }
    if (l->slots != NULL) {
        munmap((void *)l->slots, TABLE_BYTES);
    }
    if (l->counts != NULL) {
        munmap(l->counts, PINS_BYTES);
    }
    for (size_t i = 0; l->maps != NULL && i < KVX_SHM_SLOTS; i++) {
        if (l->maps[i].map != NULL) {
            munmap(l->maps[i].map, l->maps[i].map_len);
        }
    }
    free(l->maps);
    pthread_mutex_destroy(&l->lock);
    free(l->index);
    free(l);
}

static int ref_cmp(const void *a, const void *b)
{
    const struct slot_ref *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Snapshot the live slots. link->lock held. */
static kvx_status_t rebuild_index(kvx_shm_link_t *l)
{
    const shm_header_t *h = (const shm_header_t *)l->slots;
    uint32_t hw = __atomic_load_n(&h->high_water, __ATOMIC_ACQUIRE);
    if (hw > KVX_SHM_SLOTS) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "shm: slot table corrupt");
    }
    struct slot_ref *idx = malloc(hw * sizeof(*idx));
    if (idx == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
    }
    size_t n = 0;
    for (uint32_t i = 1; i < hw; i++) {
        const shm_slot_t *s = &l->slots[i];
        uint32_t g1 = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
        struct slot_ref r = {s->addr, s->len, s->tag, i, g1, s->read_only, s->memfd, s->memfd_off};
        uint32_t g2 = __atomic_load_n(&s->gen, __ATOMIC_ACQUIRE);
        if (g1 == 0 || (g1 & 1) || g1 != g2 || r.len == 0 || r.addr + r.len < r.addr) {
            continue; /* free, changing or nonsense: the pin check decides */
        }
        idx[n++] = r;
    }
    qsort(idx, n, sizeof(*idx), ref_cmp);
    free(l->index);
    l->index = idx;
    l->nindex = n;
    return KVX_OK;
}

/* Index of the first live slot whose end is above @p addr (or nindex). */
static size_t index_lower_bound(const kvx_shm_link_t *l, uint64_t addr)
{
    size_t lo = 0, hi = l->nindex;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->index[mid].addr + l->index[mid].len <= addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static void unpin(kvx_shm_link_t *l, const uint32_t *slots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        __atomic_sub_fetch(&l->counts[slots[i]], 1, __ATOMIC_SEQ_CST);
    }
}

/* Resolve and pin every range. Returns the pinned slots (to unpin). */
static kvx_status_t pin_all(kvx_shm_link_t *l, int write, const kvx_xfer_desc_t *descs,
                            size_t count, const uint64_t *tag, uint32_t **slots_p, size_t *nslots_p)
{
    size_t cap = count + 4;
    uint32_t *slots = malloc(cap * sizeof(*slots));
    if (slots == NULL) {
        return KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
    }
    size_t n = 0;
    kvx_status_t status = KVX_OK;
    pthread_mutex_lock(&l->lock);
    for (int attempt = 0; attempt < 2; attempt++) {
        status = KVX_OK;
        n = 0;
        if (attempt > 0 || l->index == NULL) {
            if ((status = rebuild_index(l)) != KVX_OK) {
                break;
            }
        }
        for (size_t i = 0; i < count && status == KVX_OK; i++) {
            /* A range may span registrations that touch end to end. */
            uint64_t covered = descs[i].remote_addr;
            uint64_t end = covered + descs[i].length;
            size_t pos = index_lower_bound(l, covered);
            while (status == KVX_OK && covered < end) {
                const struct slot_ref *r = pos < l->nindex ? &l->index[pos] : NULL;
                if (r == NULL || r->addr > covered || (tag != NULL && r->tag != *tag) ||
                    (write && r->read_only)) {
                    status = KVX_FAIL(KVX_ERR_REMOTE_ACCESS,
                                      "descriptor %zu: remote range 0x%llx+%zu is not inside "
                                      "memory registered%s%s",
                                      i, (unsigned long long)descs[i].remote_addr, descs[i].length,
                                      write ? " writable by peers" : "",
                                      tag != NULL ? " with that tag" : "");
                    break;
                }
                covered = r->addr + r->len;
                pos++;
                if (n > 0 && slots[n - 1] == r->slot) {
                    continue;
                }
                if (n == cap) {
                    cap *= 2;
                    uint32_t *grown = realloc(slots, cap * sizeof(*slots));
                    if (grown == NULL) {
                        status = KVX_FAIL(KVX_ERR_NO_MEMORY, "shm: out of memory");
                        break;
                    }
                    slots = grown;
                }
                /* Pin, then check the generation (see the file comment). */
                __atomic_add_fetch(&l->counts[r->slot], 1, __ATOMIC_SEQ_CST);
                slots[n++] = r->slot;
                if (__atomic_load_n(&l->slots[r->slot].gen, __ATOMIC_SEQ_CST) != r->gen) {
                    status = KVX_ERR_REMOTE_ACCESS; /* changed since the snapshot */
                }
            }
        }
        if (status == KVX_OK) {
            break;
        }
        unpin(l, slots, n);
        n = 0;
    }
    pthread_mutex_unlock(&l->lock);
    if (status != KVX_OK) {
        free(slots);
        return status;
    }
    *slots_p = slots;
    *nslots_p = n;
    return KVX_OK;
}

/* Map a slot's memfd (once per generation). link->lock held; the slot is
 * pinned, so the target cannot have freed it and reused its fd number. */
static uint8_t *slot_base(kvx_shm_link_t *l, const struct slot_ref *r)
{
    if (r->memfd < 0) {
        return NULL;
    }
    if (l->maps == NULL && (l->maps = calloc(KVX_SHM_SLOTS, sizeof(*l->maps))) == NULL) {
        return NULL;
    }
    struct slot_map *m = &l->maps[r->slot];
    if (m->map != NULL && m->gen == r->gen) {
        return m->base;
    }
    if (m->map != NULL) {
        munmap(m->map, m->map_len);
        m->map = NULL;
    }
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)l->pid, r->memfd);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat st;
    /* The slot comes from the peer: check its offset and length against the
     * file without letting the sum wrap. */
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < 0 || r->memfd_off > (uint64_t)st.st_size ||
        r->len > (uint64_t)st.st_size - r->memfd_off) {
        if (fd >= 0) {
            close(fd);
        }
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        return NULL;
    }
    *m = (struct slot_map){.gen = r->gen,
                           .base = (uint8_t *)map + r->memfd_off,
                           .map = map,
                           .map_len = (size_t)st.st_size};
    return m->base;
}

/* Local addresses of every remote range, if each lies in one mapped memfd
 * slot; 0 otherwise (then process_vm_* does the copy). */
static int translate_mapped(kvx_shm_link_t *l, const kvx_xfer_desc_t *descs, size_t count,
                            uint8_t **local)
{
    int ok = 1;
    pthread_mutex_lock(&l->lock);
    for (size_t i = 0; i < count && ok; i++) {
        size_t pos = index_lower_bound(l, descs[i].remote_addr);
        const struct slot_ref *r = pos < l->nindex ? &l->index[pos] : NULL;
        uint8_t *base = NULL;
        ok = r != NULL && r->addr <= descs[i].remote_addr &&
             descs[i].remote_addr + descs[i].length <= r->addr + r->len &&
             (base = slot_base(l, r)) != NULL;
        if (ok) {
            local[i] = base + (descs[i].remote_addr - r->addr);
        }
    }
    pthread_mutex_unlock(&l->lock);
    return ok;
}

kvx_status_t kvx_shm_link_xfer(kvx_shm_link_t *l, int write, const kvx_xfer_desc_t *descs,
                               size_t count, const uint64_t *tag)
{
    uint32_t *slots;
    size_t nslots;
    kvx_status_t status = pin_all(l, write, descs, count, tag, &slots, &nslots);
    if (status != KVX_OK) {
        return status;
    }
    /* Memory the target keeps in memfds is mapped here: a plain memcpy. */
    uint8_t **mapped = malloc(count * sizeof(*mapped));
    if (mapped != NULL && translate_mapped(l, descs, count, mapped)) {
        for (size_t i = 0; i < count; i++) {
            if (write) {
                memcpy(mapped[i], descs[i].local_addr, descs[i].length);
            } else {
                memcpy(descs[i].local_addr, mapped[i], descs[i].length);
            }
        }
        free(mapped);
        unpin(l, slots, nslots);
        free(slots);
        return KVX_OK;
    }
    free(mapped);
    struct iovec lv[IOV_BATCH], rv[IOV_BATCH];
    for (size_t first = 0; first < count && status == KVX_OK; first += IOV_BATCH) {
        size_t n = count - first < IOV_BATCH ? count - first : IOV_BATCH;
        size_t want = 0;
        for (size_t i = 0; i < n; i++) {
            const kvx_xfer_desc_t *d = &descs[first + i];
            lv[i] = (struct iovec){d->local_addr, d->length};
            rv[i] = (struct iovec){(void *)(uintptr_t)d->remote_addr, d->length};
            want += d->length;
        }
        struct iovec *lp = lv, *rp = rv;
        size_t ln = n, rn = n;
        while (want > 0) {
            ssize_t got = write ? process_vm_writev(l->pid, lp, ln, rp, rn, 0)
                                : process_vm_readv(l->pid, lp, ln, rp, rn, 0);
            if (got <= 0) {
                status = (errno == ESRCH) ? KVX_ERR_CONNECTION_LOST : KVX_ERR_IO;
                status = KVX_FAIL(status, "shm: process_vm_%s on pid %d: %s",
                                  write ? "writev" : "readv", (int)l->pid, strerror(errno));
                break;
            }
            /* A short copy stops at an iovec boundary or inside one: skip
             * what was done on both sides (they hold the same lengths). */
            size_t done = (size_t)got;
            want -= done;
            while (done > 0) {
                size_t k = done < lp->iov_len ? done : lp->iov_len;
                lp->iov_base = (uint8_t *)lp->iov_base + k;
                lp->iov_len -= k;
                rp->iov_base = (uint8_t *)rp->iov_base + k;
                rp->iov_len -= k;
                done -= k;
                if (lp->iov_len == 0) {
                    lp++, rp++, ln--, rn--;
                }
            }
        }
    }
    unpin(l, slots, nslots);
    free(slots);
    return status;
}

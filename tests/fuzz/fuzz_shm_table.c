/*
 * The same-host path's reading of a peer's slot table (src/transport/shm.c):
 * the table lives in a memfd the target writes and the initiator maps, so
 * every field is untrusted. This target plays the target with its own
 * process: it lays the input over a slot table, opens a link to itself
 * (kvx_shm_link_open on getpid()), READs descriptors through it, and checks
 * the verdict against the table.
 *
 * Input: [0] flags (bit 0: ask for tag KVX_FUZZ_TAG), [1] descriptor count
 * (1 + value % 8), then per descriptor u32 offset and u32 length (taken
 * modulo 2 * WINDOW and WINDOW, plus 1), then u32 high_water, then raw
 * 64-byte slots from slot 1 on (addr, len, tag, read_only, gen, memfd, pad,
 * memfd_off, pad; see shm.c). Addresses are absolute: the window sits at a
 * fixed address where it can, so inputs mean the same in every run. A
 * slot's memfd of 1 stands for the harness's data memfd, any other value for
 * none (-1): other fds of this process are not the fuzzer's to map.
 *
 * Checked: the pin counters are all back to 0; a READ that succeeds covers
 * every byte by live slots (even, non-zero generation, non-empty, not
 * wrapping, below high_water, the tag if asked) and brought the window's
 * bytes or, for a range inside one slot backed by the data memfd, that
 * memfd's bytes; a table whose live slots do not overlap serves every range
 * they cover inside the window.
 */
/* fuzz.sh: -max_len=4096 */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "transport/shm.h"
#include "util/error.h"

#define WINDOW        (64u << 10) /* readable; the next WINDOW bytes are not */
#define WINDOW_AT     0x3f0000000000ull
#define MAX_DESCS     8
#define SLOT_SIZE     64
#define TABLE_BYTES   ((size_t)KVX_SHM_SLOTS * SLOT_SIZE)
#define PINS_BYTES    ((size_t)KVX_SHM_SLOTS * sizeof(uint32_t))
#define SHM_MAGIC     0x314d48535856564bull
#define INSTANCE      0x66757a7a73686d31ull /* "fuzzshm1" */
#define KVX_FUZZ_TAG  7
#define DATA_FD_TOKEN 1

static struct {
    uint8_t *window; /* 2 * WINDOW: readable, then PROT_NONE */
    int data_fd;     /* memfd of WINDOW bytes, another pattern */
    uint8_t *data;   /* its mapping */
    int table_fd, pins_fd;
    uint8_t *table;    /* TABLE_BYTES */
    uint32_t *pins;    /* KVX_SHM_SLOTS counters */
    uint8_t *local;    /* MAX_DESCS * WINDOW */
    size_t last_slots; /* slots the previous input wrote */
} h;

static int memfd_of(size_t bytes, void **map)
{
    int fd = memfd_create("kvx-fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0 && ftruncate(fd, (off_t)bytes) == 0);
    *map = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    FUZZ_CHECK(*map != MAP_FAILED);
    return fd;
}

static void setup_once(void)
{
    if (h.window != NULL) {
        return;
    }
    void *w = mmap((void *)(uintptr_t)WINDOW_AT, 2 * WINDOW, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (w == MAP_FAILED) {
        w = mmap(NULL, 2 * WINDOW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        FUZZ_CHECK(w != MAP_FAILED);
    }
    h.window = w;
    FUZZ_CHECK(mprotect(h.window + WINDOW, WINDOW, PROT_NONE) == 0);
    void *p;
    h.data_fd = memfd_of(WINDOW, &p);
    h.data = p;
    h.table_fd = memfd_of(TABLE_BYTES, &p);
    h.table = p;
    h.pins_fd = memfd_of(PINS_BYTES, &p);
    h.pins = p;
    h.local = malloc((size_t)MAX_DESCS * WINDOW);
    FUZZ_CHECK(h.local != NULL);
    for (size_t i = 0; i < WINDOW; i++) {
        h.window[i] = (uint8_t)(i * 31 + 1);
        h.data[i] = (uint8_t)(i * 7 + 3);
    }
}

typedef struct slot {
    uint64_t addr, len, tag, memfd_off;
    uint32_t gen;
    int32_t memfd;
} slot_t;

static slot_t slot_at(uint32_t i)
{
    const uint8_t *s = h.table + (size_t)i * SLOT_SIZE;
    return (slot_t){.addr = fuzz_le(s, 8),
                    .len = fuzz_le(s + 8, 8),
                    .tag = fuzz_le(s + 16, 8),
                    .gen = (uint32_t)fuzz_le(s + 28, 4),
                    .memfd = (int32_t)(uint32_t)fuzz_le(s + 32, 4),
                    .memfd_off = fuzz_le(s + 40, 8)};
}

/* What the initiator may use: live, sane and, if asked, of the tag. */
static int slot_usable(const slot_t *s, const uint64_t *tag)
{
    return s->gen != 0 && !(s->gen & 1) && s->len != 0 && s->addr + s->len > s->addr &&
           (tag == NULL || s->tag == *tag);
}

/* Is every byte of [addr, addr + len) in some usable slot below hw? */
static int covered(uint32_t hw, uint64_t addr, uint64_t len, const uint64_t *tag)
{
    uint64_t at = addr, end = addr + len;
    while (at < end) {
        uint64_t next = at;
        for (uint32_t i = 1; i < hw; i++) {
            slot_t s = slot_at(i);
            if (slot_usable(&s, tag) && s.addr <= at && at < s.addr + s.len) {
                next = s.addr + s.len > next ? s.addr + s.len : next;
            }
        }
        if (next == at) {
            return 0;
        }
        at = next;
    }
    return 1;
}

/* Do two live slots (of any tag) share a byte? Then which one a lookup
 * finds is up to the search order, and a refusal proves nothing. */
static int overlapping(uint32_t hw)
{
    for (uint32_t i = 1; i < hw; i++) {
        slot_t a = slot_at(i);
        for (uint32_t j = i + 1; j < hw && slot_usable(&a, NULL); j++) {
            slot_t b = slot_at(j);
            if (slot_usable(&b, NULL) && a.addr < b.addr + b.len && b.addr < a.addr + a.len) {
                return 1;
            }
        }
    }
    return 0;
}

/* The bytes a READ brought: the window's, or those of the data memfd
 * behind a usable slot that holds the whole range. */
static int bytes_ok(uint32_t hw, const uint8_t *got, uint64_t addr, uint64_t len,
                    const uint64_t *tag)
{
    uint64_t base = (uint64_t)(uintptr_t)h.window;
    if (addr >= base && addr + len <= base + WINDOW &&
        memcmp(got, h.window + (addr - base), len) == 0) {
        return 1;
    }
    for (uint32_t i = 1; i < hw; i++) {
        slot_t s = slot_at(i);
        if (slot_usable(&s, tag) && s.memfd == h.data_fd && s.addr <= addr &&
            addr + len <= s.addr + s.len && s.memfd_off <= WINDOW &&
            s.len <= WINDOW - s.memfd_off &&
            memcmp(got, h.data + s.memfd_off + (addr - s.addr), len) == 0) {
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup_once();
    if (size < 2) {
        return 0;
    }
    const uint64_t want_tag = KVX_FUZZ_TAG;
    const uint64_t *tag = (data[0] & 1) ? &want_tag : NULL;
    size_t ndesc = 1 + data[1] % MAX_DESCS;
    size_t at = 2;
    if (size < at + 8 * ndesc + 4) {
        return 0;
    }
    uint64_t base = (uint64_t)(uintptr_t)h.window;
    kvx_xfer_desc_t descs[MAX_DESCS];
    for (size_t i = 0; i < ndesc; i++, at += 8) {
        uint64_t off = fuzz_le(data + at, 4) % (2 * WINDOW);
        uint64_t len = 1 + fuzz_le(data + at + 4, 4) % WINDOW;
        descs[i] = (kvx_xfer_desc_t){h.local + i * (size_t)WINDOW, base + off, len};
    }
    uint32_t hw_raw = (uint32_t)fuzz_le(data + at, 4);
    at += 4;

    size_t nslots = (size - at) / SLOT_SIZE;
    if (nslots > KVX_SHM_SLOTS - 1) {
        nslots = KVX_SHM_SLOTS - 1;
    }
    /* Slots past the input stay zero (never used): clear what the last
     * input wrote. */
    memset(h.table, 0, (1 + (nslots > h.last_slots ? nslots : h.last_slots)) * SLOT_SIZE);
    h.last_slots = nslots;
    memset(h.local, 0, (size_t)MAX_DESCS * WINDOW);
    memcpy(h.table + SLOT_SIZE, data + at, nslots * SLOT_SIZE);
    for (size_t i = 1; i <= nslots; i++) {
        uint8_t *fd = h.table + i * SLOT_SIZE + 32;
        fuzz_put_le(fd, fuzz_le(fd, 4) == DATA_FD_TOKEN ? (uint32_t)h.data_fd : UINT32_MAX, 4);
    }
    fuzz_put_le(h.table, SHM_MAGIC, 8);
    fuzz_put_le(h.table + 8, INSTANCE, 8);
    fuzz_put_le(h.table + 16, hw_raw, 4);

    kvx_shm_link_t *link = NULL;
    FUZZ_CHECK(kvx_shm_link_open(getpid(), h.table_fd, h.pins_fd, (uint64_t)(uintptr_t)h.table,
                                 INSTANCE, &link) == KVX_OK);
    kvx_error_clear();
    kvx_status_t st = kvx_shm_link_xfer(link, 0, descs, ndesc, tag);
    kvx_shm_link_close(link);

    for (size_t i = 0; i < KVX_SHM_SLOTS; i++) {
        FUZZ_CHECK(h.pins[i] == 0); /* every pin taken was dropped */
    }
    uint32_t hw = hw_raw <= KVX_SHM_SLOTS ? hw_raw : 0; /* a larger one is refused */
    if (hw > nslots + 1) {
        hw = (uint32_t)nslots + 1; /* the slots past the input are zero: never usable */
    }
    if (st == KVX_OK) {
        FUZZ_CHECK(hw_raw <= KVX_SHM_SLOTS);
        for (size_t i = 0; i < ndesc; i++) {
            FUZZ_CHECK(covered(hw, descs[i].remote_addr, descs[i].length, tag));
            FUZZ_CHECK(
                bytes_ok(hw, descs[i].local_addr, descs[i].remote_addr, descs[i].length, tag));
        }
        return 0;
    }
    FUZZ_CHECK(st == KVX_ERR_REMOTE_ACCESS || st == KVX_ERR_IO || st == KVX_ERR_PROTOCOL);
    /* Refused only for a reason: a range not covered, or outside the window
     * (the kernel refuses the copy), or a table the check calls suspect. */
    if (hw_raw <= KVX_SHM_SLOTS && !overlapping(hw)) {
        int all_fine = 1;
        for (size_t i = 0; i < ndesc && all_fine; i++) {
            all_fine = descs[i].remote_addr + descs[i].length <= base + WINDOW &&
                       covered(hw, descs[i].remote_addr, descs[i].length, tag);
        }
        FUZZ_CHECK(!all_fine);
    }
    return 0;
}

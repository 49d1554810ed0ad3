/*
 * Writes the seed corpus of every fuzz target with the library's own
 * encoders: valid inputs and near-valid ones (one field off), named by what
 * they are. Run it once when a format changes and commit the result:
 *
 *   fuzz_make_seeds tests/fuzz/corpus
 *
 * Files found by fuzzing (named by hash) live next to these; this program
 * only adds or overwrites its own names.
 */
#include <errno.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "kv/table.h"
#include "transport/wire.h"

static const char *g_out;

static void seed(const char *target, const char *name, const void *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", g_out, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", g_out, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ------------------------------------------------------------ wire */

static size_t hdr(uint8_t *out, uint8_t type, uint16_t flags, int32_t status, uint64_t seq,
                  uint64_t body_len)
{
    kvx_wire_hdr_t h = {
        .type = type, .flags = flags, .status = status, .seq = seq, .body_len = body_len};
    kvx_wire_encode_hdr(out, &h);
    return KVX_WIRE_HDR_SIZE;
}

static void seeds_hdr(void)
{
    static const struct {
        const char *name;
        uint8_t type;
        uint16_t flags;
        uint64_t body_len;
    } ok[] = {
        {"ok-hello", KVX_WIRE_HELLO, 0, 29},
        {"ok-hello-ack", KVX_WIRE_HELLO_ACK, 0, 29},
        {"ok-hello-ack-auth", KVX_WIRE_HELLO_ACK, KVX_WIRE_FLAG_AUTH, 29},
        {"ok-read-req", KVX_WIRE_READ_REQ, 0, 24},
        {"ok-read-req-tag", KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_TAG, 32},
        {"ok-read-req-csum", KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_CSUM, 24},
        {"ok-read-resp", KVX_WIRE_READ_RESP, 0, 8},
        {"ok-read-resp-csum", KVX_WIRE_READ_RESP, KVX_WIRE_FLAG_CSUM, 16},
        {"ok-write-req-tag", KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG, 65552},
        {"ok-write-req-csum", KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_CSUM, 32},
        {"ok-write-req-tag-csum-max", KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM,
         65560},
        {"ok-write-ack", KVX_WIRE_WRITE_ACK, 0, 0},
        {"ok-notify", KVX_WIRE_NOTIFY, 0, 2056},
        {"ok-notify-ack", KVX_WIRE_NOTIFY_ACK, 0, 0},
        {"ok-mem-query", KVX_WIRE_MEM_QUERY, 0, 0},
        {"ok-mem-table-max", KVX_WIRE_MEM_TABLE, 0, KVX_WIRE_MAX_BODY},
        {"ok-shm-offer", KVX_WIRE_SHM_OFFER, 0, KVX_WIRE_SHM_OFFER_SIZE},
        {"ok-shm-accept", KVX_WIRE_SHM_ACCEPT, 0, KVX_WIRE_SHM_ACCEPT_SIZE},
        {"ok-keepalive", KVX_WIRE_KEEPALIVE, 0, 0},
        {"ok-keepalive-back", KVX_WIRE_KEEPALIVE_BACK, 0, 0},
        {"ok-auth-challenge", KVX_WIRE_AUTH_CHALLENGE, 0, KVX_WIRE_AUTH_NONCE},
        {"ok-auth-proof", KVX_WIRE_AUTH_PROOF, 0, KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC},
        {"ok-auth-ok", KVX_WIRE_AUTH_OK, 0, KVX_WIRE_AUTH_MAC},
        {"bad-flag-tag-on-notify", KVX_WIRE_NOTIFY, KVX_WIRE_FLAG_TAG, 8},
        {"bad-flag-tag-on-read-resp", KVX_WIRE_READ_RESP, KVX_WIRE_FLAG_TAG, 8},
        {"bad-flag-auth-on-hello", KVX_WIRE_HELLO, KVX_WIRE_FLAG_AUTH, 29},
        {"bad-flag-csum-on-keepalive", KVX_WIRE_KEEPALIVE, KVX_WIRE_FLAG_CSUM, 0},
        {"bad-flag-csum-on-write-ack", KVX_WIRE_WRITE_ACK, KVX_WIRE_FLAG_CSUM, 0},
        {"bad-flag-csum-on-hello-ack", KVX_WIRE_HELLO_ACK, KVX_WIRE_FLAG_CSUM, 29},
        {"bad-flag-auth-on-read-req", KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_AUTH, 24},
        {"bad-flag-unknown-bit", KVX_WIRE_READ_REQ, 0x8000, 24},
        {"bad-type-0", 0, 0, 0},
        {"bad-type-past-max", KVX_WIRE_TYPE_MAX + 1, 0, 0},
        {"bad-type-255", 255, 0, 0},
        {"bad-hello-over-max", KVX_WIRE_HELLO, 0, 80},
        {"bad-read-resp-over-max", KVX_WIRE_READ_RESP, 0, 17},
        {"bad-write-req-over-max", KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG, 65561},
        {"bad-mem-table-over-max", KVX_WIRE_MEM_TABLE, 0, KVX_WIRE_MAX_BODY + 1},
        {"bad-auth-proof-over-max", KVX_WIRE_AUTH_PROOF, 0, 65},
        {"bad-auth-ok-over-max", KVX_WIRE_AUTH_OK, 0, 33},
        /* Within the header's maximum; kvx_wire_check_auth refuses them. */
        {"auth-challenge-short", KVX_WIRE_AUTH_CHALLENGE, 0, KVX_WIRE_AUTH_NONCE - 1},
        {"auth-proof-nonce-only", KVX_WIRE_AUTH_PROOF, 0, KVX_WIRE_AUTH_NONCE},
        {"bad-write-ack-body", KVX_WIRE_WRITE_ACK, 0, 1},
        {"bad-keepalive-body", KVX_WIRE_KEEPALIVE_BACK, 0, 1},
    };
    uint8_t b[KVX_WIRE_HDR_SIZE + 8];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        hdr(b, ok[i].type, ok[i].flags, 0, 7, ok[i].body_len);
        seed("wire_hdr", ok[i].name, b, KVX_WIRE_HDR_SIZE);
    }
    hdr(b, KVX_WIRE_READ_RESP, 0, KVX_ERR_REMOTE_ACCESS, UINT64_MAX, 8);
    seed("wire_hdr", "ok-status-error-seq-max", b, KVX_WIRE_HDR_SIZE);
    /* AUTH_OK: a refusal has no mac, an answer with status OK has one. */
    hdr(b, KVX_WIRE_AUTH_OK, 0, KVX_ERR_AUTH, 0, 0);
    seed("wire_hdr", "ok-auth-ok-refused", b, KVX_WIRE_HDR_SIZE);
    hdr(b, KVX_WIRE_AUTH_OK, 0, KVX_ERR_AUTH, 0, KVX_WIRE_AUTH_MAC);
    seed("wire_hdr", "auth-ok-refused-with-mac", b, KVX_WIRE_HDR_SIZE);
    hdr(b, KVX_WIRE_AUTH_OK, 0, KVX_OK, 0, 0);
    seed("wire_hdr", "auth-ok-without-mac", b, KVX_WIRE_HDR_SIZE);
    hdr(b, KVX_WIRE_MEM_QUERY, 0, 0, 3, 0);
    memset(b + KVX_WIRE_HDR_SIZE, 0xee, 8);
    seed("wire_hdr", "ok-more-buffered", b, sizeof(b));
    seed("wire_hdr", "bad-truncated-31", b, KVX_WIRE_HDR_SIZE - 1);
    b[0] ^= 0x01;
    seed("wire_hdr", "bad-magic", b, KVX_WIRE_HDR_SIZE);
    /* Named by their distance to this version, so that a version change
     * rewrites them instead of leaving a stale name behind. */
    hdr(b, KVX_WIRE_HELLO, 0, 0, 0, 29);
    b[4] = KVX_WIRE_VERSION - 1;
    seed("wire_hdr", "bad-version-previous", b, KVX_WIRE_HDR_SIZE);
    b[4] = KVX_WIRE_VERSION + 1;
    seed("wire_hdr", "bad-version-next", b, KVX_WIRE_HDR_SIZE);
    hdr(b, KVX_WIRE_HELLO, 0, 0, 0, 29);
    b[13] = 1;
    seed("wire_hdr", "bad-reserved", b, KVX_WIRE_HDR_SIZE);
}

static size_t descs(uint8_t *out, const uint64_t *ranges, uint32_t count)
{
    kvx_wire_encode_descs_hdr(out, count);
    for (uint32_t i = 0; i < count; i++) {
        kvx_wire_encode_desc(out + KVX_WIRE_DESCS_HDR_SIZE + KVX_WIRE_DESC_SIZE * (size_t)i,
                             ranges[2 * i], ranges[2 * i + 1]);
    }
    return kvx_wire_descs_size(count);
}

static void seeds_descs(void)
{
    uint8_t b[KVX_WIRE_DESCS_HDR_SIZE + 4 * KVX_WIRE_DESC_SIZE];
    const uint64_t one[] = {0x7f0000001000, 4096};
    const uint64_t three[] = {0x7f0000001000, 4096, 0x7f0000000000, 16, 0x7f0000001000, 1};
    const uint64_t half = 1ull << 39;
    const uint64_t at_limit[] = {0x1000, half, 0x1000, half};
    const uint64_t over_limit[] = {0x1000, half, 0x1000, half + 1};
    const uint64_t top[] = {UINT64_MAX - 32, 16};
    const uint64_t to_end[] = {UINT64_MAX - 15, 16}; /* ends exactly at 2^64 */
    const uint64_t wrap[] = {UINT64_MAX - 7, 16};
    const uint64_t zero[] = {0x1000, 16, 0x2000, 0};
    seed("wire_descs", "ok-1", b, descs(b, one, 1));
    seed("wire_descs", "ok-3-overlapping", b, descs(b, three, 3));
    seed("wire_descs", "ok-total-2p40", b, descs(b, at_limit, 2));
    seed("wire_descs", "ok-near-top", b, descs(b, top, 1));
    seed("wire_descs", "bad-total-over-2p40", b, descs(b, over_limit, 2));
    seed("wire_descs", "bad-ends-at-2p64", b, descs(b, to_end, 1));
    seed("wire_descs", "bad-wrap", b, descs(b, wrap, 1));
    seed("wire_descs", "bad-zero-len", b, descs(b, zero, 2));
    size_t n = descs(b, three, 3);
    seed("wire_descs", "bad-short-by-1", b, n - 1);
    b[4] = 1;
    seed("wire_descs", "bad-reserved", b, n);
    kvx_wire_encode_descs_hdr(b, 0);
    seed("wire_descs", "bad-count-0", b, KVX_WIRE_DESCS_HDR_SIZE);
    kvx_wire_encode_descs_hdr(b, KVX_WIRE_MAX_FRAME_DESCS + 1);
    seed("wire_descs", "bad-count-4097", b, KVX_WIRE_DESCS_HDR_SIZE);
    seed("wire_descs", "bad-truncated-7", b, 7);
}

static void seeds_read_resp(void)
{
    uint8_t b[17] = {0};
    static const struct {
        const char *name;
        uint64_t v;
    } v[] = {{"ok-0", 0},
             {"ok-4096", 4096},
             {"ok-2p40", KVX_WIRE_MAX_PAYLOAD},
             {"bad-2p40-plus-1", KVX_WIRE_MAX_PAYLOAD + 1},
             {"bad-max", UINT64_MAX}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        kvx_wire_encode_u64(b, v[i].v);
        seed("wire_read_resp", v[i].name, b, 8);
    }
    seed("wire_read_resp", "bad-7-bytes", b, 7);
    seed("wire_read_resp", "bad-9-bytes", b, 9);
    kvx_wire_encode_u64(b, 4096);
    kvx_wire_encode_u64(b + 8, 0x9e3779b97f4a7c15ull); /* the checksum */
    seed("wire_read_resp", "ok-4096-csum", b, 16);
    seed("wire_read_resp", "bad-15-bytes", b, 15);
    seed("wire_read_resp", "bad-17-bytes", b, 17);
}

static size_t hello(uint8_t *out, uint64_t instance, const char *name)
{
    kvx_wire_encode_hello(out, instance, name, strlen(name));
    return kvx_wire_hello_size(strlen(name));
}

static void seeds_hello(void)
{
    uint8_t b[KVX_WIRE_HELLO_FIXED + 80];
    char name[80];
    seed("wire_hello", "ok-client", b, hello(b, 0x0123456789abcdefull, "10.0.0.1"));
    seed("wire_hello", "ok-server", b, hello(b, 1, "[::1]:5000"));
    memset(name, 'h', 63);
    name[63] = '\0';
    seed("wire_hello", "ok-name-63", b, hello(b, UINT64_MAX, name));
    name[63] = 'h';
    name[64] = '\0';
    seed("wire_hello", "bad-name-64", b, hello(b, 2, name));
    seed("wire_hello", "bad-name-0", b, hello(b, 2, ""));
    seed("wire_hello", "bad-name-del", b, hello(b, 2, "host\x7f"));
    seed("wire_hello", "bad-name-tab", b, hello(b, 2, "host\tname"));
    size_t n = hello(b, 3, "10.0.0.2:6000");
    seed("wire_hello", "bad-body-longer", b, n + 1);
    seed("wire_hello", "bad-body-shorter", b, n - 1);
    seed("wire_hello", "bad-truncated-15", b, KVX_WIRE_HELLO_FIXED - 1);
    b[10] = 1;
    seed("wire_hello", "bad-reserved", b, n);
    b[10] = 0;
    kvx_wire_hello_set_silence(b, 500);
    seed("wire_hello", "ok-silence-500", b, n);
    kvx_wire_hello_set_silence(b, 3600000);
    seed("wire_hello", "ok-silence-max", b, n);
    kvx_wire_hello_set_silence(b, 499);
    seed("wire_hello", "bad-silence-499", b, n);
    kvx_wire_hello_set_silence(b, 3600001);
    seed("wire_hello", "bad-silence-over-max", b, n);
}

static size_t notify(uint8_t *out, const char *name, size_t name_len, const void *msg,
                     size_t msg_len)
{
    kvx_wire_encode_notify(out, name, name_len, msg, msg_len);
    return kvx_wire_notify_size(name_len, msg_len);
}

static void seeds_notify(void)
{
    static uint8_t b[KVX_WIRE_NOTIFY_FIXED + KVX_NOTIFY_NAME_MAX + KVX_NOTIFY_MSG_MAX + 1];
    static char big[KVX_NOTIFY_NAME_MAX + 1];
    memset(big, 'n', sizeof(big));
    const uint8_t msg[] = {0, 1, 2, 0xff, 0, 'k', 'v'};
    seed("wire_notify", "ok-empty", b, notify(b, "", 0, NULL, 0));
    seed("wire_notify", "ok-name-msg", b, notify(b, "kv.ready", 8, msg, sizeof(msg)));
    seed("wire_notify", "ok-max", b, notify(b, big, KVX_NOTIFY_NAME_MAX, big, KVX_NOTIFY_MSG_MAX));
    seed("wire_notify", "bad-name-1025", b, notify(b, big, KVX_NOTIFY_NAME_MAX + 1, NULL, 0));
    seed("wire_notify", "bad-msg-1025", b, notify(b, "", 0, big, KVX_NOTIFY_MSG_MAX + 1));
    seed("wire_notify", "bad-nul-in-name", b, notify(b, "kv\0x", 4, msg, 2));
    size_t n = notify(b, "done", 4, msg, sizeof(msg));
    seed("wire_notify", "bad-body-longer", b, n + 1);
    seed("wire_notify", "bad-body-shorter", b, n - 1);
    seed("wire_notify", "bad-truncated-7", b, KVX_WIRE_NOTIFY_FIXED - 1);
    b[3] = 0x80;
    seed("wire_notify", "bad-reserved", b, n);
}

static void seeds_shm(void)
{
    uint8_t b[KVX_WIRE_SHM_ACCEPT_SIZE + 1] = {0};
    kvx_wire_shm_t offer = {.boot_id = 0xcbf29ce484222325ull, .pid = 4242, .uid = 1000};
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_OFFER, &offer);
    seed("wire_shm", "ok-offer", b, KVX_WIRE_SHM_OFFER_SIZE);
    seed("wire_shm", "bad-offer-15", b, KVX_WIRE_SHM_OFFER_SIZE - 1);
    kvx_wire_shm_t acc = {.boot_id = offer.boot_id,
                          .pid = 4243,
                          .table_fd = 7,
                          .pins_fd = 9,
                          .probe = 0x7f00deadb000};
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_ACCEPT, &acc);
    seed("wire_shm", "ok-accept", b, KVX_WIRE_SHM_ACCEPT_SIZE);
    seed("wire_shm", "bad-accept-33", b, KVX_WIRE_SHM_ACCEPT_SIZE + 1);
    acc.table_fd = INT32_MAX;
    acc.pins_fd = INT32_MAX;
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_ACCEPT, &acc);
    seed("wire_shm", "ok-accept-fd-max", b, KVX_WIRE_SHM_ACCEPT_SIZE);
    acc.pins_fd = (uint32_t)INT32_MAX + 1;
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_ACCEPT, &acc);
    seed("wire_shm", "bad-accept-fd-2p31", b, KVX_WIRE_SHM_ACCEPT_SIZE);
    acc.pins_fd = 9;
    acc.pid = 0;
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_ACCEPT, &acc);
    seed("wire_shm", "bad-accept-pid-0", b, KVX_WIRE_SHM_ACCEPT_SIZE);
    acc.pid = 1;
    kvx_wire_encode_shm(b, KVX_WIRE_SHM_ACCEPT, &acc);
    b[20] = 1;
    seed("wire_shm", "bad-accept-reserved", b, KVX_WIRE_SHM_ACCEPT_SIZE);
    memset(b, 0, sizeof(b));
    seed("wire_shm", "refused-zero-body", b, KVX_WIRE_SHM_ACCEPT_SIZE);
}

static size_t mem_table(uint8_t *out, const kvx_wire_mem_entry_t *e, uint32_t count)
{
    kvx_wire_encode_mem_table(out, e, count);
    return kvx_wire_mem_table_size(count);
}

static void seeds_mem_table(void)
{
    uint8_t b[8 + 4 * KVX_WIRE_MEM_ENTRY_SIZE];
    kvx_wire_mem_entry_t e[4] = {
        {.addr = 0x1000, .len = 0x1000, .tag = 0},
        {.addr = 0x2000, .len = 0x800, .tag = 0x454c42415458564bull, .access = 1},
        {.addr = 0x7f0000000000, .len = 1ull << 30, .tag = 5, .mem_type = 1},
        {.addr = UINT64_MAX - 0xfff, .len = 0xfff, .tag = UINT64_MAX, .mem_type = 1},
    };
    seed("wire_mem_table", "ok-empty", b, mem_table(b, e, 0));
    seed("wire_mem_table", "ok-4-touching", b, mem_table(b, e, 4));
    size_t n = mem_table(b, e, 4);
    b[8 + 32 + 26] = 1;
    seed("wire_mem_table", "bad-padding", b, n);
    kvx_wire_mem_entry_t bad[4];
    memcpy(bad, e, sizeof(bad));
    bad[1].addr = 0xfff;
    seed("wire_mem_table", "bad-overlap", b, mem_table(b, bad, 2));
    memcpy(bad, e, sizeof(bad));
    bad[0] = e[2];
    bad[2] = e[0];
    seed("wire_mem_table", "bad-unsorted", b, mem_table(b, bad, 3));
    memcpy(bad, e, sizeof(bad));
    bad[3].len = 0x1000; /* ends exactly at 2^64 */
    seed("wire_mem_table", "bad-ends-at-2p64", b, mem_table(b, bad, 4));
    bad[3].len = 0;
    seed("wire_mem_table", "bad-zero-len", b, mem_table(b, bad, 4));
    memcpy(bad, e, sizeof(bad));
    bad[2].mem_type = 2;
    seed("wire_mem_table", "bad-mem-type-2", b, mem_table(b, bad, 3));
    bad[2].mem_type = 0;
    bad[2].access = 2;
    seed("wire_mem_table", "bad-access-2", b, mem_table(b, bad, 3));
    n = mem_table(b, e, 2);
    seed("wire_mem_table", "bad-body-shorter", b, n - 1);
    b[0] = 3; /* announces more than the body holds */
    seed("wire_mem_table", "bad-count-3-body-2", b, n);
    mem_table(b, e, 1);
    b[5] = 1;
    seed("wire_mem_table", "bad-reserved", b, kvx_wire_mem_table_size(1));
    kvx_wire_encode_mem_table(b, e, 0);
    b[2] = 1;
    b[0] = 1; /* 65537 */
    seed("wire_mem_table", "bad-count-65537", b, 8);
    seed("wire_mem_table", "bad-truncated-7", b, 7);
}

/* Frame streams, as a connection carries them. */
typedef struct {
    uint8_t b[4096];
    size_t n;
} stream_t;

static uint8_t *frame(stream_t *s, uint8_t type, uint16_t flags, int32_t status, uint64_t seq,
                      size_t body_len)
{
    s->n += hdr(s->b + s->n, type, flags, status, seq, body_len);
    uint8_t *body = s->b + s->n;
    s->n += body_len;
    return body;
}

static void payload(stream_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s->b[s->n++] = (uint8_t)(i * 7);
    }
}

static void seeds_frame(void)
{
    const uint64_t two[] = {0x7f0000001000, 24, 0x7f0000003000, 8};
    uint8_t tmp[512];
    stream_t s = {.n = 0};
    /* Initiator to target. */
    const size_t hello_len = hello(tmp, 0x1111, "10.0.0.1");
    memcpy(frame(&s, KVX_WIRE_HELLO, 0, 0, 0, hello_len), tmp, hello_len);
    size_t n;
    kvx_wire_shm_t offer = {.boot_id = 0xabcdef, .pid = 100, .uid = 0};
    kvx_wire_encode_shm(frame(&s, KVX_WIRE_SHM_OFFER, 0, 0, 0, KVX_WIRE_SHM_OFFER_SIZE),
                        KVX_WIRE_SHM_OFFER, &offer);
    n = descs(tmp + 8, two, 2);
    kvx_wire_encode_u64(tmp, 0x454c42415458564bull);
    memcpy(frame(&s, KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_TAG, 0, 1, n + 8), tmp, n + 8);
    n = descs(tmp, two, 2);
    memcpy(frame(&s, KVX_WIRE_WRITE_REQ, 0, 0, 2, n), tmp, n);
    payload(&s, 32);
    n = notify(tmp, "kv.ready", 8, "req-17", 6);
    memcpy(frame(&s, KVX_WIRE_NOTIFY, 0, 0, 3, n), tmp, n);
    frame(&s, KVX_WIRE_MEM_QUERY, 0, 0, 4, 0);
    seed("wire_frame", "initiator-session", s.b, s.n);
    seed("wire_frame", "initiator-session-cut", s.b, s.n - 5);
    /* The first frames again, as the previous protocol version would
     * number them (the target tries such streams as this version's too). */
    stream_t old = s;
    size_t offer_at = KVX_WIRE_HDR_SIZE + hello_len;
    old.b[4] = KVX_WIRE_VERSION - 1;
    old.b[offer_at + 4] = KVX_WIRE_VERSION - 1;
    seed("wire_frame", "previous-version-session", old.b,
         offer_at + KVX_WIRE_HDR_SIZE + KVX_WIRE_SHM_OFFER_SIZE);

    /* Target to initiator. */
    s.n = 0;
    n = hello(tmp, 0x2222, "10.0.0.2:5000");
    memcpy(frame(&s, KVX_WIRE_HELLO_ACK, 0, 0, 0, n), tmp, n);
    kvx_wire_shm_t acc = {
        .boot_id = 0xabcdef, .pid = 101, .table_fd = 5, .pins_fd = 6, .probe = 64};
    kvx_wire_encode_shm(frame(&s, KVX_WIRE_SHM_ACCEPT, 0, 0, 0, KVX_WIRE_SHM_ACCEPT_SIZE),
                        KVX_WIRE_SHM_ACCEPT, &acc);
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, 0, 0, 1, 8), 32);
    payload(&s, 32);
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, 0, KVX_ERR_REMOTE_ACCESS, 2, 8), 0);
    frame(&s, KVX_WIRE_WRITE_ACK, 0, 0, 3, 0);
    frame(&s, KVX_WIRE_NOTIFY_ACK, 0, KVX_ERR_REMOTE_FULL, 4, 0);
    kvx_wire_mem_entry_t e[2] = {{.addr = 0x1000, .len = 64, .tag = 1},
                                 {.addr = 0x2000, .len = 64, .mem_type = 1, .access = 1}};
    n = mem_table(tmp, e, 2);
    memcpy(frame(&s, KVX_WIRE_MEM_TABLE, 0, 0, 5, n), tmp, n);
    seed("wire_frame", "target-session", s.b, s.n);
    seed("wire_frame", "target-session-cut", s.b, s.n - 5); /* in the last body */

    /* The same with authentication, checksums and keepalives. */
    uint8_t secret[KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC];
    for (size_t i = 0; i < sizeof(secret); i++) {
        secret[i] = (uint8_t)(0xa0 + i);
    }
    s.n = 0;
    n = hello(tmp, 0x1111, "10.0.0.1");
    memcpy(frame(&s, KVX_WIRE_HELLO, 0, 0, 0, n), tmp, n);
    memcpy(frame(&s, KVX_WIRE_AUTH_PROOF, 0, 0, 0, sizeof(secret)), secret, sizeof(secret));
    frame(&s, KVX_WIRE_KEEPALIVE, 0, 0, 0, 0);
    n = descs(tmp, two, 2);
    memcpy(frame(&s, KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_CSUM, 0, 1, n), tmp, n);
    kvx_wire_encode_u64(tmp, 0x454c42415458564bull);     /* tag */
    kvx_wire_encode_u64(tmp + 8, 0x0123456789abcdefull); /* checksum */
    n = 16 + descs(tmp + 16, two, 2);
    memcpy(frame(&s, KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM, 0, 2, n), tmp, n);
    payload(&s, 32);
    seed("wire_frame", "initiator-session-auth-csum", s.b, s.n);

    s.n = 0;
    n = hello(tmp, 0x2222, "10.0.0.2:5000");
    memcpy(frame(&s, KVX_WIRE_HELLO_ACK, KVX_WIRE_FLAG_AUTH, 0, 0, n), tmp, n);
    memcpy(frame(&s, KVX_WIRE_AUTH_CHALLENGE, 0, 0, 0, KVX_WIRE_AUTH_NONCE), secret,
           KVX_WIRE_AUTH_NONCE);
    memcpy(frame(&s, KVX_WIRE_AUTH_OK, 0, 0, 0, KVX_WIRE_AUTH_MAC), secret, KVX_WIRE_AUTH_MAC);
    uint8_t *rr = frame(&s, KVX_WIRE_READ_RESP, KVX_WIRE_FLAG_CSUM, 0, 1, 16);
    kvx_wire_encode_u64(rr, 32);
    kvx_wire_encode_u64(rr + 8, 0x0123456789abcdefull);
    payload(&s, 32);
    frame(&s, KVX_WIRE_KEEPALIVE_BACK, 0, 0, 0, 0);
    frame(&s, KVX_WIRE_WRITE_ACK, 0, KVX_ERR_CHECKSUM, 2, 0);
    seed("wire_frame", "target-session-auth-csum", s.b, s.n);

    s.n = 0;
    frame(&s, KVX_WIRE_AUTH_OK, 0, KVX_ERR_AUTH, 0, 0);
    seed("wire_frame", "auth-ok-refused", s.b, s.n);
    s.n = 0;
    memcpy(frame(&s, KVX_WIRE_AUTH_PROOF, 0, 0, 0, KVX_WIRE_AUTH_NONCE), secret,
           KVX_WIRE_AUTH_NONCE);
    seed("wire_frame", "bad-auth-proof-short", s.b, s.n);
    s.n = 0;
    memcpy(frame(&s, KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM, 0, 1, 12), tmp,
           12);
    seed("wire_frame", "bad-write-req-no-room-for-csum", s.b, s.n);
    s.n = 0;
    memcpy(frame(&s, KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_TAG, 0, 1, 4), tmp, 4);
    seed("wire_frame", "bad-read-req-no-room-for-tag", s.b, s.n);

    s.n = 0;
    frame(&s, KVX_WIRE_HELLO_ACK, 0, KVX_ERR_VERSION_MISMATCH, 0, 0);
    seed("wire_frame", "hello-ack-version-mismatch", s.b, s.n);
    s.n = 0;
    memset(frame(&s, KVX_WIRE_SHM_ACCEPT, 0, KVX_ERR_UNSUPPORTED, 0, KVX_WIRE_SHM_ACCEPT_SIZE), 0,
           KVX_WIRE_SHM_ACCEPT_SIZE);
    seed("wire_frame", "shm-accept-refused", s.b, s.n);
    s.n = 0;
    kvx_wire_encode_mem_table(frame(&s, KVX_WIRE_MEM_TABLE, 0, 0, 9, 8 + 32), e, 1);
    s.b[KVX_WIRE_HDR_SIZE] = 100; /* tcp.c allocates what is announced */
    seed("wire_frame", "mem-table-announces-100", s.b, s.n);
    s.n = 0;
    kvx_wire_encode_mem_table(frame(&s, KVX_WIRE_MEM_TABLE, 0, 0, 9, 8), e, 0);
    fuzz_put_le(s.b + KVX_WIRE_HDR_SIZE, KVX_WIRE_MAX_MEM_ENTRIES + 1, 4);
    seed("wire_frame", "bad-mem-table-announces-65537", s.b, s.n);
    s.n = 0;
    memset(frame(&s, KVX_WIRE_MEM_TABLE, 0, 0, 9, 4), 0, 4);
    seed("wire_frame", "bad-mem-table-short", s.b, s.n);
    s.n = 0;
    n = descs(tmp, two, 1);
    memcpy(frame(&s, KVX_WIRE_WRITE_REQ, KVX_WIRE_FLAG_TAG, 0, 1, n), tmp, n);
    seed("wire_frame", "write-req-flag-without-tag", s.b, s.n);

    /* One frame whose body its decoder refuses, per decoder. */
    s.n = 0;
    n = hello(tmp, 1, "bad\x01name");
    memcpy(frame(&s, KVX_WIRE_HELLO, 0, 0, 0, n), tmp, n);
    seed("wire_frame", "bad-hello-name", s.b, s.n);
    s.n = 0;
    n = hello(tmp, 1, "10.0.0.2:5000");
    memcpy(frame(&s, KVX_WIRE_HELLO_ACK, 0, 0, 0, n - 1), tmp, n - 1);
    seed("wire_frame", "bad-hello-ack-short", s.b, s.n);
    s.n = 0;
    const uint64_t wrap[] = {UINT64_MAX - 7, 16};
    n = descs(tmp + 8, wrap, 1);
    kvx_wire_encode_u64(tmp, 7);
    memcpy(frame(&s, KVX_WIRE_READ_REQ, KVX_WIRE_FLAG_TAG, 0, 1, n + 8), tmp, n + 8);
    seed("wire_frame", "bad-read-req-wrap", s.b, s.n);
    s.n = 0;
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, 0, 0, 1, 8), KVX_WIRE_MAX_PAYLOAD + 1);
    seed("wire_frame", "bad-read-resp-payload", s.b, s.n);
    s.n = 0;
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, 0, 0, 1, 8), KVX_WIRE_MAX_PAYLOAD);
    seed("wire_frame", "read-resp-payload-2p40-cut", s.b, s.n);
    s.n = 0;
    n = notify(tmp, "a\0b", 3, "m", 1);
    memcpy(frame(&s, KVX_WIRE_NOTIFY, 0, 0, 1, n), tmp, n);
    seed("wire_frame", "bad-notify-nul", s.b, s.n);
    s.n = 0;
    kvx_wire_mem_entry_t rev[2] = {e[1], e[0]};
    n = mem_table(tmp, rev, 2);
    memcpy(frame(&s, KVX_WIRE_MEM_TABLE, 0, 0, 1, n), tmp, n);
    seed("wire_frame", "bad-mem-table-unsorted", s.b, s.n);
    s.n = 0;
    memset(frame(&s, KVX_WIRE_SHM_OFFER, 0, 0, 0, 8), 0, 8);
    seed("wire_frame", "bad-shm-offer-short", s.b, s.n);
    s.n = 0;
    acc.pid = 0;
    kvx_wire_encode_shm(frame(&s, KVX_WIRE_SHM_ACCEPT, 0, 0, 0, KVX_WIRE_SHM_ACCEPT_SIZE),
                        KVX_WIRE_SHM_ACCEPT, &acc);
    seed("wire_frame", "bad-shm-accept-pid-0", s.b, s.n);
    s.n = 0;
    /* Keepalives, then a type past the last one (the header refuses it). */
    frame(&s, KVX_WIRE_KEEPALIVE, 0, 0, 0, 0);
    frame(&s, KVX_WIRE_KEEPALIVE_BACK, 0, 0, 0, 0);
    frame(&s, KVX_WIRE_TYPE_MAX + 1, 0, 0, 0, 0);
    seed("wire_frame", "bad-type-past-max", s.b, s.n);

    /* Where tcp.c closes on a response the decoder accepts. */
    s.n = 0;
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, 0, KVX_ERR_REMOTE_ACCESS, 1, 8), 32);
    payload(&s, 32);
    seed("wire_frame", "bad-read-resp-refused-with-payload", s.b, s.n);
    s.n = 0;
    kvx_wire_encode_u64(frame(&s, KVX_WIRE_READ_RESP, KVX_WIRE_FLAG_CSUM, 0, 1, 8), 32);
    payload(&s, 32);
    seed("wire_frame", "bad-read-resp-csum-flag-8-bytes", s.b, s.n);
    s.n = 0;
    rr = frame(&s, KVX_WIRE_READ_RESP, KVX_WIRE_FLAG_CSUM, KVX_ERR_REMOTE_ACCESS, 1, 16);
    kvx_wire_encode_u64(rr, 0);
    kvx_wire_encode_u64(rr + 8, 0); /* a refusal's checksum is 0 */
    frame(&s, KVX_WIRE_WRITE_ACK, 0, KVX_ERR_CHECKSUM, 2, 0);
    kvx_wire_encode_mem_table(frame(&s, KVX_WIRE_MEM_TABLE, 0, KVX_ERR_NO_MEMORY, 3, 8), e, 0);
    frame(&s, KVX_WIRE_NOTIFY_ACK, 0, KVX_ERR_REMOTE_FULL, 4, 0);
    seed("wire_frame", "refusals", s.b, s.n);
    s.n = 0;
    frame(&s, KVX_WIRE_MEM_TABLE, 0, KVX_ERR_TIMEOUT, 1, 0); /* not a target's status */
    frame(&s, KVX_WIRE_WRITE_ACK, 0, 0, 2, 0);
    seed("wire_frame", "bad-mem-table-status", s.b, s.n);

    /* What a version 1 initiator sends: refused at the header. */
    s.n = 0;
    n = hello(tmp, 0x1111, "10.0.0.1");
    memcpy(frame(&s, KVX_WIRE_HELLO, 0, 0, 0, n), tmp, n);
    s.b[4] = KVX_WIRE_VERSION - 1;
    seed("wire_frame", "bad-version-previous-hello", s.b, s.n);
}

/* ------------------------------------------------------------ kv table */

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

/* Sequence pair and checksum of a table edited by hand, as a stable one. */
static void table_fix(uint8_t *t)
{
    uint64_t payload = fuzz_le(t + 32, 8);
    fuzz_put_le(t + KVX_KV_TABLE_HDR + payload, fuzz_le(t + 8, 8), 8);
    fuzz_put_le(t + 40, fnv1a(t + KVX_KV_TABLE_HDR, payload), 8);
}

static size_t table_len(const uint8_t *t)
{
    return KVX_KV_TABLE_HDR + fuzz_le(t + 32, 8) + 8;
}

static void seeds_kv_table(void)
{
    static uint64_t region_[2048]; /* 8-byte aligned, as the library's region */
    uint8_t *t = (uint8_t *)region_;
    static uint64_t addrs[] = {0x7f0000000000, 0x7f0000100000, 0x7f0000200000, 0x7f0000300000};
    kvx_kv_table_entry_t e[3] = {
        {.cache_id = 1,
         .placement = KVX_MEM_DEVICE,
         .geom =
             {.num_tensors = 4, .dtype = KVX_DTYPE_FP16, .ndims = 4, .dims = {256, 16, 8, 128}}},
        {.cache_id = 2,
         .placement = KVX_MEM_HOST,
         .geom = {.num_tensors = 1, .dtype = KVX_DTYPE_FP8_E5M2, .ndims = 1, .dims = {4096}}},
        {.cache_id = INT64_MAX,
         .placement = KVX_MEM_HOST,
         .geom = {.num_tensors = 2,
                  .dtype = KVX_DTYPE_UINT64,
                  .ndims = 8,
                  .dims = {2, 3, 4, 5, 6, 7, 8, 9}}},
    };
    for (int i = 0; i < 3; i++) {
        e[i].addrs = addrs;
    }
    size_t cap = sizeof(region_);
    const uint64_t cluster = 0xc1u;
    memset(region_, 0, sizeof(region_));
    kvx_kv_table_publish(t, cap, cluster, e, 0);
    seed("kv_table", "ok-empty", t, table_len(t));
    kvx_kv_table_publish(t, cap, cluster, e, 1);
    seed("kv_table", "ok-1", t, table_len(t));
    kvx_kv_table_publish(t, cap, cluster, e, 3);
    size_t n = table_len(t);
    seed("kv_table", "ok-3", t, n);
    seed("kv_table", "need-more-bytes", t, 64);
    seed("kv_table", "too-short", t, KVX_KV_TABLE_HDR + 7);
    t[8] |= 1;
    seed("kv_table", "torn-odd-seq", t, n);
    t[8] &= (uint8_t)~1u;
    t[100] ^= 0x40;
    seed("kv_table", "torn-checksum", t, n);
    t[100] ^= 0x40;
    t[n - 8] ^= 2;
    seed("kv_table", "torn-seq-end", t, n);
    t[n - 8] ^= 2;
    fuzz_put_le(t + 32, (1ull << 32) + 8, 8);
    seed("kv_table", "torn-payload-huge", t, n);

    /* Edited entries (of the second cache), with a consistent sequence and
     * checksum so that they reach the entry parser. */
    static const struct {
        const char *name;
        size_t off;
        int width;
        uint64_t v;
    } bad[] = {
        {"bad-cache-id-0", 0, 8, 0},
        {"bad-cache-id-negative", 0, 8, (uint64_t)-5},
        {"bad-dtype-0", 8, 4, 0},
        {"bad-dtype-16", 8, 4, 16},
        {"bad-placement-2", 12, 4, 2},
        {"bad-tensors-0", 16, 4, 0},
        {"bad-tensors-4097", 16, 4, KVX_KV_MAX_TENSORS + 1},
        {"bad-tensors-past-payload", 16, 4, 40},
        {"bad-ndims-0", 20, 4, 0},
        {"bad-ndims-9", 20, 4, 9},
        {"bad-dim-0", 24, 8, 0},
        {"bad-dim-negative", 24, 8, (uint64_t)-1},
        {"ok-dim-past-ndims", 32, 8, (uint64_t)-1}, /* not looked at */
        {"bad-size-over-2p48", 24, 8, (1ull << 48) + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kvx_kv_table_publish(t, cap, cluster, e, 3);
        /* the second entry starts after the first (4 tensors) */
        size_t at = KVX_KV_TABLE_HDR + kvx_kv_table_entry_size(4) + bad[i].off;
        fuzz_put_le(t + at, bad[i].v, bad[i].width);
        table_fix(t);
        seed("kv_table", bad[i].name, t, table_len(t));
    }
    kvx_kv_table_publish(t, cap, cluster, e, 3);
    fuzz_put_le(t + 24, 4, 4);
    table_fix(t);
    seed("kv_table", "bad-count-4-of-3", t, table_len(t));
    kvx_kv_table_publish(t, cap, cluster, e, 3);
    fuzz_put_le(t + 24, 2, 4);
    table_fix(t);
    seed("kv_table", "ok-slack-after-entries", t, table_len(t));
    kvx_kv_table_publish(t, cap, cluster, e, 2);
    fuzz_put_le(t + 32, fuzz_le(t + 32, 8) - 3, 8);
    table_fix(t);
    seed("kv_table", "bad-payload-cuts-entry", t, table_len(t));
}

/* ------------------------------------------------------ shm slot table */

/* See fuzz_shm_table.c: flags, descriptors (offset and length - 1 in the
 * window at SHM_WINDOW), high_water, then 64-byte slots. */
#define SHM_WINDOW 0x3f0000000000ull
#define SHM_WIN    (64u << 10)

typedef struct shm_seed {
    uint8_t b[2 + 8 * 8 + 4 + 8 * 64];
    size_t len;
    size_t slots_at;
} shm_seed_t;

static void shm_begin(shm_seed_t *s, int tag, uint32_t hw, const uint32_t (*descs)[2], size_t ndesc)
{
    memset(s, 0, sizeof(*s));
    s->b[0] = (uint8_t)tag;
    s->b[1] = (uint8_t)(ndesc - 1);
    size_t at = 2;
    for (size_t i = 0; i < ndesc; i++, at += 8) {
        fuzz_put_le(s->b + at, descs[i][0], 4);
        fuzz_put_le(s->b + at + 4, descs[i][1] - 1, 4);
    }
    fuzz_put_le(s->b + at, hw, 4);
    s->len = s->slots_at = at + 4;
}

static void shm_slot(shm_seed_t *s, uint64_t addr, uint64_t len, uint64_t tag, uint32_t gen,
                     uint32_t memfd, uint64_t memfd_off)
{
    uint8_t *p = s->b + s->len;
    fuzz_put_le(p, addr, 8);
    fuzz_put_le(p + 8, len, 8);
    fuzz_put_le(p + 16, tag, 8);
    fuzz_put_le(p + 28, gen, 4);
    fuzz_put_le(p + 32, memfd, 4);
    fuzz_put_le(p + 40, memfd_off, 8);
    s->len += 64;
}

static void seeds_shm_table(void)
{
    static const uint32_t one[][2] = {{0, 4096}};
    static const uint32_t across[][2] = {{30u << 10, 4096}};
    static const uint32_t many[][2] = {{0, 100},          {4096, 8192}, {40000, 5}, {65535, 1},
                                       {1000, 64u << 10}, {70000, 10},  {12, 12},   {0, 1}};
    const uint64_t w = SHM_WINDOW;
    shm_seed_t s;
    shm_begin(&s, 0, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "ok-one-slot", s.b, s.len);
    shm_begin(&s, 0, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 2, 1, 0);
    seed("shm_table", "ok-memfd", s.b, s.len);
    shm_begin(&s, 0, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 2, 1, SHM_WIN);
    seed("shm_table", "ok-memfd-off-past-end", s.b, s.len);
    shm_begin(&s, 1, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 7, 4, UINT32_MAX, 0);
    seed("shm_table", "ok-tag", s.b, s.len);
    shm_begin(&s, 1, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 8, 4, UINT32_MAX, 0);
    seed("shm_table", "bad-tag", s.b, s.len);
    shm_begin(&s, 0, 3, across, 1);
    shm_slot(&s, w, 32u << 10, 0, 2, UINT32_MAX, 0);
    shm_slot(&s, w + (32u << 10), 32u << 10, 0, 2, 1, 0);
    seed("shm_table", "ok-two-slots-end-to-end", s.b, s.len);
    shm_begin(&s, 0, 3, across, 1);
    shm_slot(&s, w, 31u << 10, 0, 2, UINT32_MAX, 0);
    shm_slot(&s, w + (32u << 10), 32u << 10, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "bad-gap", s.b, s.len);
    shm_begin(&s, 1, 3, across, 1);
    shm_slot(&s, w, 40u << 10, 7, 2, UINT32_MAX, 0);
    shm_slot(&s, w + (20u << 10), 40u << 10, 9, 2, UINT32_MAX, 0);
    seed("shm_table", "ok-overlap-other-tag", s.b, s.len);
    shm_begin(&s, 0, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 3, UINT32_MAX, 0);
    seed("shm_table", "bad-gen-odd", s.b, s.len);
    shm_begin(&s, 0, 2, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 0, UINT32_MAX, 0);
    seed("shm_table", "bad-gen-zero", s.b, s.len);
    shm_begin(&s, 0, UINT32_MAX, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "bad-high-water", s.b, s.len);
    shm_begin(&s, 0, 1, one, 1);
    shm_slot(&s, w, SHM_WIN, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "bad-slot-above-high-water", s.b, s.len);
    shm_begin(&s, 0, 3, one, 1);
    shm_slot(&s, UINT64_MAX - 15, 32, 0, 2, UINT32_MAX, 0);
    shm_slot(&s, w, 2 * SHM_WIN, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "ok-wrapping-slot-skipped", s.b, s.len);
    shm_begin(&s, 0, 2, many, 8);
    shm_slot(&s, w, 2 * SHM_WIN, 0, 2, UINT32_MAX, 0);
    seed("shm_table", "bad-eight-past-window", s.b, s.len);
    shm_begin(&s, 0, 2, many, 4);
    shm_slot(&s, w, SHM_WIN, 0, 2, 1, 0);
    seed("shm_table", "ok-four-memfd", s.b, s.len);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
        return 2;
    }
    g_out = argv[1];
    if (mkdir(g_out, 0755) != 0 && errno != EEXIST) {
        perror(g_out);
        return 1;
    }
    seeds_hdr();
    seeds_descs();
    seeds_read_resp();
    seeds_hello();
    seeds_notify();
    seeds_shm();
    seeds_mem_table();
    seeds_frame();
    seeds_kv_table();
    seeds_shm_table();
    return 0;
}

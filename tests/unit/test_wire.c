/* Unit tests for the wire encoder/decoder (src/transport/wire.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "transport/wire.h"
#include "util/error.h"

/* ------------------------------------------------------------ helpers */

/* Heap copy of exactly @p n bytes, so that ASan flags any read past the end. */
static uint8_t *dup_exact(const void *src, size_t n)
{
    uint8_t *p = malloc(n);
    if (n > 0) {
        assert_non_null(p);
        memcpy(p, src, n);
    }
    return p;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/* Every decoder failure must leave a detail behind for kvx_last_error(). */
#define assert_fails_with(expected, call)                                                          \
    do {                                                                                           \
        kvx_error_clear();                                                                         \
        kvx_status_t st_ = (call);                                                                 \
        if (st_ != (expected)) {                                                                   \
            fail_msg("%s: got %s, expected %s", #call, kvx_status_name(st_),                       \
                     kvx_status_name(expected));                                                   \
        }                                                                                          \
        assert_true(kvx_last_error()[0] != '\0');                                                  \
        assert_non_null(strstr(kvx_last_error(), kvx_status_name(expected)));                      \
    } while (0)

#define assert_proto(call) assert_fails_with(KVX_ERR_PROTOCOL, call)

#define assert_ok(call)                                                                            \
    do {                                                                                           \
        kvx_status_t st_ = (call);                                                                 \
        if (st_ != KVX_OK) {                                                                       \
            fail_msg("%s: %s (%s)", #call, kvx_status_name(st_), kvx_last_error());                \
        }                                                                                          \
    } while (0)

static kvx_wire_desc_t g_descs[KVX_WIRE_MAX_FRAME_DESCS];

/* Decode from an exactly sized heap copy; outputs go where the caller says. */
static kvx_status_t hdr_dec(const uint8_t *buf, size_t len, kvx_wire_hdr_t *h)
{
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_hdr(c, len, h);
    free(c);
    return st;
}

static kvx_status_t descs_dec(const uint8_t *buf, size_t len, uint32_t *count, uint64_t *total)
{
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_descs(c, len, g_descs, count, total);
    free(c);
    return st;
}

static kvx_status_t descs_dec_status(const uint8_t *buf, size_t len)
{
    uint32_t count;
    uint64_t total;
    return descs_dec(buf, len, &count, &total);
}

static kvx_status_t read_resp_dec(const uint8_t *buf, size_t len)
{
    uint64_t payload;
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_read_resp(c, len, &payload);
    free(c);
    return st;
}

static kvx_status_t hello_dec(const uint8_t *buf, size_t len)
{
    uint64_t instance;
    char name[KVX_ENGINE_NAME_MAX];
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_hello(c, len, &instance, name);
    free(c);
    return st;
}

static kvx_status_t notify_dec(const uint8_t *buf, size_t len)
{
    const char *name, *msg;
    size_t name_len, msg_len;
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_notify(c, len, &name, &name_len, &msg, &msg_len);
    free(c);
    return st;
}

static kvx_status_t mem_dec(const uint8_t *buf, size_t len, kvx_wire_mem_entry_t *entries,
                            uint32_t max, uint32_t *count)
{
    uint8_t *c = dup_exact(buf, len);
    kvx_status_t st = kvx_wire_decode_mem_table(c, len, entries, max, count);
    free(c);
    return st;
}

static kvx_status_t mem_dec_status(const uint8_t *buf, size_t len)
{
    kvx_wire_mem_entry_t entries[8];
    uint32_t count;
    return mem_dec(buf, len, entries, 8, &count);
}

/* ------------------------------------------------------------ header */

static void make_hdr(uint8_t out[KVX_WIRE_HDR_SIZE], uint8_t type, uint64_t body_len)
{
    kvx_wire_hdr_t h = {.type = type, .status = 0, .seq = 42, .body_len = body_len};
    kvx_wire_encode_hdr(out, &h);
}

static void test_hdr_roundtrip(void **state)
{
    (void)state;
    static const int32_t statuses[] = {0,         KVX_ERR_PROTOCOL, KVX_ERR_VERSION_MISMATCH,
                                       INT32_MIN, INT32_MAX,        1};
    for (uint8_t type = 1; type <= KVX_WIRE_TYPE_MAX; type++) {
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            uint64_t lens[] = {0, kvx_wire_max_body(type) / 2, kvx_wire_max_body(type)};
            for (size_t l = 0; l < 3; l++) {
                kvx_wire_hdr_t in = {.type = type,
                                     .status = statuses[s],
                                     .seq = 0x0123456789abcdefull ^ (type * 0x1111ull) ^ s,
                                     .body_len = lens[l]};
                uint8_t buf[KVX_WIRE_HDR_SIZE + 8];
                memset(buf, 0xa5, sizeof(buf));
                kvx_wire_encode_hdr(buf, &in);

                /* Exactly 32 bytes, laid out as documented. */
                for (size_t i = KVX_WIRE_HDR_SIZE; i < sizeof(buf); i++) {
                    assert_int_equal(buf[i], 0xa5);
                }
                assert_memory_equal(buf, "KVX1", 4);
                assert_int_equal(buf[4], KVX_WIRE_VERSION);
                assert_int_equal(buf[5], type);
                assert_int_equal(get_le(buf + 6, 2), 0);
                assert_int_equal(get_le(buf + 8, 4), (uint32_t)in.status);
                assert_int_equal(get_le(buf + 12, 4), 0);
                assert_int_equal(get_le(buf + 16, 8), in.seq);
                assert_int_equal(get_le(buf + 24, 8), in.body_len);

                kvx_wire_hdr_t out;
                memset(&out, 0x5a, sizeof(out));
                assert_ok(hdr_dec(buf, KVX_WIRE_HDR_SIZE, &out));
                assert_int_equal(out.type, in.type);
                assert_int_equal(out.status, in.status);
                assert_int_equal(out.seq, in.seq);
                assert_int_equal(out.body_len, in.body_len);

                /* Bytes after the header are not its business. */
                memset(&out, 0, sizeof(out));
                assert_ok(kvx_wire_decode_hdr(buf, sizeof(buf), &out));
                assert_int_equal(out.seq, in.seq);
            }
        }
    }
}

static void test_hdr_max_body(void **state)
{
    (void)state;
    assert_int_equal(kvx_wire_max_body(0), 0);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_HELLO), 16 + KVX_ENGINE_NAME_MAX - 1);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_HELLO_ACK), 16 + KVX_ENGINE_NAME_MAX - 1);
    /* 16 more for the optional tag and checksum (KVX_WIRE_FLAG_TAG, _CSUM) */
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_READ_REQ), 24 + 16 * KVX_WIRE_MAX_FRAME_DESCS);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_WRITE_REQ), 24 + 16 * KVX_WIRE_MAX_FRAME_DESCS);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_READ_RESP), 16); /* with a checksum */
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_WRITE_ACK), 0);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_NOTIFY),
                     8 + KVX_NOTIFY_NAME_MAX + KVX_NOTIFY_MSG_MAX);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_NOTIFY_ACK), 0);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_MEM_QUERY), 0);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_MEM_TABLE), 8 + 32 * KVX_WIRE_MAX_MEM_ENTRIES);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_MEM_TABLE), KVX_WIRE_MAX_BODY);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_TYPE_MAX + 1), 0);
    assert_int_equal(kvx_wire_max_body(255), 0);
    for (int t = 0; t < 256; t++) {
        assert_true(kvx_wire_max_body((uint8_t)t) <= KVX_WIRE_MAX_BODY);
    }
}

static void test_hdr_truncated(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_HDR_SIZE];
    make_hdr(buf, KVX_WIRE_HELLO, 20);
    kvx_wire_hdr_t h;
    for (size_t n = 0; n < KVX_WIRE_HDR_SIZE; n++) {
        assert_proto(hdr_dec(buf, n, &h));
    }
    assert_ok(hdr_dec(buf, KVX_WIRE_HDR_SIZE, &h));
}

static void test_hdr_bad_magic(void **state)
{
    (void)state;
    uint8_t good[KVX_WIRE_HDR_SIZE], buf[KVX_WIRE_HDR_SIZE];
    kvx_wire_hdr_t h;
    make_hdr(good, KVX_WIRE_READ_REQ, 24);
    for (int i = 0; i < 4; i++) {
        static const uint8_t xors[] = {0x01, 0x20, 0x80, 0xff};
        for (size_t x = 0; x < sizeof(xors); x++) {
            memcpy(buf, good, sizeof(buf));
            buf[i] ^= xors[x];
            assert_proto(hdr_dec(buf, sizeof(buf), &h));
        }
    }
    /* Big-endian magic, and all zeros. */
    memcpy(buf, good, sizeof(buf));
    put_le(buf, 0x4b565831u, 4);
    assert_proto(hdr_dec(buf, sizeof(buf), &h));
    memset(buf, 0, 4);
    assert_proto(hdr_dec(buf, sizeof(buf), &h));
    /* A bad magic with a bad version is not a version mismatch. */
    memcpy(buf, good, sizeof(buf));
    buf[0] = 'k';
    buf[4] = 2;
    assert_proto(hdr_dec(buf, sizeof(buf), &h));
}

static void test_hdr_version(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_HDR_SIZE];
    kvx_wire_hdr_t h;
    static const uint8_t versions[] = {0, 1, 3, 0x81, 255}; /* 1: before keepalives */
    for (size_t i = 0; i < sizeof(versions); i++) {
        make_hdr(buf, KVX_WIRE_HELLO, 20);
        buf[4] = versions[i];
        assert_fails_with(KVX_ERR_VERSION_MISMATCH, hdr_dec(buf, sizeof(buf), &h));
    }
}

static void test_hdr_type(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_HDR_SIZE];
    kvx_wire_hdr_t h;
    static const uint8_t types[] = {0, KVX_WIRE_TYPE_MAX + 1, 0x80, 255};
    for (size_t i = 0; i < sizeof(types); i++) {
        make_hdr(buf, types[i], 0);
        assert_int_equal(buf[5], types[i]);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
    }
}

static void test_hdr_flags_reserved(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_HDR_SIZE];
    kvx_wire_hdr_t h;
    static const int offsets[] = {6, 7, 12, 13, 14, 15}; /* flags, reserved */
    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        for (int bit = 0; bit < 8; bit++) {
            make_hdr(buf, KVX_WIRE_NOTIFY, 10);
            buf[offsets[i]] = (uint8_t)(1u << bit);
            assert_proto(hdr_dec(buf, sizeof(buf), &h));
        }
    }
    /* Requests for memory may carry the tag and checksum flags, only those. */
    static const uint8_t req_types[] = {KVX_WIRE_READ_REQ, KVX_WIRE_WRITE_REQ};
    for (size_t i = 0; i < 2; i++) {
        make_hdr(buf, req_types[i], 24);
        buf[6] = KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM;
        assert_ok(hdr_dec(buf, sizeof(buf), &h));
        assert_int_equal(h.flags, KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM);
        for (int bit = 2; bit < 16; bit++) {
            make_hdr(buf, req_types[i], 24);
            buf[6 + bit / 8] = (uint8_t)(1u << (bit % 8));
            assert_proto(hdr_dec(buf, sizeof(buf), &h));
        }
    }
    kvx_wire_hdr_t in = {.type = KVX_WIRE_WRITE_REQ, .flags = KVX_WIRE_FLAG_TAG, .body_len = 24};
    kvx_wire_encode_hdr(buf, &in);
    assert_ok(hdr_dec(buf, sizeof(buf), &h));
    assert_int_equal(h.flags, KVX_WIRE_FLAG_TAG);
}

static void test_hdr_body_len(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_HDR_SIZE];
    kvx_wire_hdr_t h;
    for (uint8_t type = 1; type <= KVX_WIRE_TYPE_MAX; type++) {
        uint64_t max = kvx_wire_max_body(type);
        make_hdr(buf, type, max);
        assert_ok(hdr_dec(buf, sizeof(buf), &h));
        assert_int_equal(h.body_len, max);

        make_hdr(buf, type, max + 1);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
        make_hdr(buf, type, max + 4096);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
        make_hdr(buf, type, (uint64_t)UINT32_MAX + 1);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
        make_hdr(buf, type, 1ull << 63);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
        make_hdr(buf, type, UINT64_MAX);
        assert_proto(hdr_dec(buf, sizeof(buf), &h));
    }
}

/* ------------------------------------------------------------ descriptors */

static size_t build_descs(uint8_t *out, const kvx_wire_desc_t *d, uint32_t n)
{
    kvx_wire_encode_descs_hdr(out, n);
    for (uint32_t i = 0; i < n; i++) {
        kvx_wire_encode_desc(out + KVX_WIRE_DESCS_HDR_SIZE + (size_t)i * KVX_WIRE_DESC_SIZE,
                             d[i].addr, d[i].len);
    }
    return kvx_wire_descs_size(n);
}

static void check_descs_roundtrip(const kvx_wire_desc_t *d, uint32_t n)
{
    size_t size = kvx_wire_descs_size(n);
    assert_int_equal(size, 8 + 16 * (size_t)n);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, 0xa5, size);
    assert_int_equal(build_descs(buf, d, n), size);

    assert_int_equal(get_le(buf, 4), n);
    assert_int_equal(get_le(buf + 4, 4), 0);
    uint64_t want_total = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(get_le(buf + 8 + 16 * (size_t)i, 8), d[i].addr);
        assert_int_equal(get_le(buf + 16 + 16 * (size_t)i, 8), d[i].len);
        want_total += d[i].len;
    }

    uint32_t count = 0;
    uint64_t total = 0;
    memset(g_descs, 0, sizeof(g_descs));
    assert_ok(descs_dec(buf, size, &count, &total));
    assert_int_equal(count, n);
    assert_int_equal(total, want_total);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(g_descs[i].addr, d[i].addr);
        assert_int_equal(g_descs[i].len, d[i].len);
    }
    free(buf);
}

static void test_descs_roundtrip(void **state)
{
    (void)state;
    assert_int_equal(kvx_wire_descs_size(0), 8);
    assert_int_equal(kvx_wire_descs_size(1), 24);

    const kvx_wire_desc_t one[] = {{0x1000, 4096}};
    check_descs_roundtrip(one, 1);

    const kvx_wire_desc_t three[] = {
        {0x7f0000001000ull, 1}, {0, 1ull << 20}, {UINT64_MAX - 100, 100}};
    check_descs_roundtrip(three, 3);

    /* Whole payload bound in one descriptor and split over two. */
    const kvx_wire_desc_t max1[] = {{0x10000, KVX_WIRE_MAX_PAYLOAD}};
    check_descs_roundtrip(max1, 1);
    const kvx_wire_desc_t max2[] = {{0, KVX_WIRE_MAX_PAYLOAD / 2},
                                    {1ull << 60, KVX_WIRE_MAX_PAYLOAD / 2}};
    check_descs_roundtrip(max2, 2);

    kvx_wire_desc_t *many = calloc(KVX_WIRE_MAX_FRAME_DESCS, sizeof(*many));
    assert_non_null(many);
    for (uint32_t i = 0; i < KVX_WIRE_MAX_FRAME_DESCS; i++) {
        many[i].addr = 0x7f0000000000ull + (uint64_t)i * 0x100000 + (i % 13);
        many[i].len = 1 + (uint64_t)i * 977;
    }
    check_descs_roundtrip(many, KVX_WIRE_MAX_FRAME_DESCS);
    free(many);
}

static const kvx_wire_desc_t three_descs[] = {{0x1000, 0x100}, {0x8000, 0x2000}, {0x20000, 64}};

static void test_descs_truncated(void **state)
{
    (void)state;
    uint8_t buf[8 + 16 * 3 + 16];
    memset(buf, 0, sizeof(buf));
    size_t size = build_descs(buf, three_descs, 3);
    assert_ok(descs_dec_status(buf, size));
    for (size_t n = 0; n < size; n++) {
        assert_proto(descs_dec_status(buf, n));
    }
    for (size_t n = size + 1; n <= sizeof(buf); n++) {
        assert_proto(descs_dec_status(buf, n));
    }
}

static void test_descs_count(void **state)
{
    (void)state;
    uint8_t buf[8 + 16 * 3];
    size_t size = build_descs(buf, three_descs, 3);

    /* Count 0, with and without entries after it. */
    uint8_t empty[8];
    kvx_wire_encode_descs_hdr(empty, 0);
    assert_proto(descs_dec_status(empty, sizeof(empty)));
    put_le(buf, 0, 4);
    assert_proto(descs_dec_status(buf, size));

    /* Count disagreeing with the body, both ways. */
    put_le(buf, 4, 4);
    assert_proto(descs_dec_status(buf, size));
    put_le(buf, 2, 4);
    assert_proto(descs_dec_status(buf, size));

    /* Huge counts; 0x10000003 * 16 + 8 == 56 modulo 2^32. */
    static const uint32_t huge[] = {0xffffffffu, 0x80000000u, 0x10000003u,
                                    KVX_WIRE_MAX_FRAME_DESCS + 1};
    for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
        put_le(buf, huge[i], 4);
        assert_proto(descs_dec_status(buf, size));
        assert_proto(descs_dec_status(buf, 8));
    }

    /* One over the limit with a body that matches the count exactly. */
    uint32_t n = KVX_WIRE_MAX_FRAME_DESCS + 1;
    kvx_wire_desc_t *d = calloc(n, sizeof(*d));
    assert_non_null(d);
    for (uint32_t i = 0; i < n; i++) {
        d[i].addr = (uint64_t)i << 12;
        d[i].len = 1;
    }
    uint8_t *big = malloc(kvx_wire_descs_size(n));
    assert_non_null(big);
    size_t big_size = build_descs(big, d, n);
    assert_proto(descs_dec_status(big, big_size));
    /* ... and the same entries less one are fine. */
    big_size = build_descs(big, d, n - 1);
    assert_ok(descs_dec_status(big, big_size));
    free(big);
    free(d);
}

static void check_bad_entry(kvx_wire_desc_t bad, int index)
{
    kvx_wire_desc_t d[3];
    memcpy(d, three_descs, sizeof(d));
    d[index] = bad;
    uint8_t buf[8 + 16 * 3];
    size_t size = build_descs(buf, d, 3);
    assert_proto(descs_dec_status(buf, size));
}

static void test_descs_entries(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        /* Zero length. */
        check_bad_entry((kvx_wire_desc_t){0x1000, 0}, i);
        check_bad_entry((kvx_wire_desc_t){0, 0}, i);
        /* Wrapping past 2^64. */
        check_bad_entry((kvx_wire_desc_t){UINT64_MAX, 2}, i);
        check_bad_entry((kvx_wire_desc_t){UINT64_MAX - 9, 20}, i);
        check_bad_entry((kvx_wire_desc_t){UINT64_MAX - 4095, 8192}, i);
        /* Over the payload bound on its own. */
        check_bad_entry((kvx_wire_desc_t){0, KVX_WIRE_MAX_PAYLOAD + 1}, i);
        check_bad_entry((kvx_wire_desc_t){0, UINT64_MAX}, i);
        check_bad_entry((kvx_wire_desc_t){1, UINT64_MAX}, i);
    }

    /* The last byte of the address space is a valid end. */
    const kvx_wire_desc_t top[] = {{UINT64_MAX - 10, 10}, {UINT64_MAX - 1, 1}};
    check_descs_roundtrip(top, 2);

    uint8_t buf[8 + 16 * 3];
    size_t size;

    /* Total just over the bound, and a total that a naive sum wraps to 0. */
    const kvx_wire_desc_t over[] = {{0, KVX_WIRE_MAX_PAYLOAD / 2 + 1},
                                    {1ull << 50, KVX_WIRE_MAX_PAYLOAD / 2}};
    size = build_descs(buf, over, 2);
    assert_proto(descs_dec_status(buf, size));
    const kvx_wire_desc_t wrap_sum[] = {{0, 1ull << 63}, {0, 1ull << 63}};
    size = build_descs(buf, wrap_sum, 2);
    assert_proto(descs_dec_status(buf, size));
    const kvx_wire_desc_t many_small[] = {{0, KVX_WIRE_MAX_PAYLOAD - 1}, {0, 1}, {0, 1}};
    size = build_descs(buf, many_small, 3);
    assert_proto(descs_dec_status(buf, size));

    /* Reserved word. */
    for (int off = 4; off < 8; off++) {
        size = build_descs(buf, three_descs, 3);
        buf[off] = 0x01;
        assert_proto(descs_dec_status(buf, size));
        buf[off] = 0x80;
        assert_proto(descs_dec_status(buf, size));
    }
}

/* ------------------------------------------------------------ read response */

static void test_read_resp(void **state)
{
    (void)state;
    static const uint64_t good[] = {0, 1, 4096, 0x0102030405060708ull & (KVX_WIRE_MAX_PAYLOAD - 1),
                                    KVX_WIRE_MAX_PAYLOAD};
    uint8_t buf[16];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        memset(buf, 0xa5, sizeof(buf));
        kvx_wire_encode_u64(buf, good[i]);
        assert_int_equal(get_le(buf, 8), good[i]);
        assert_int_equal(buf[8], 0xa5);
        uint8_t *c = dup_exact(buf, 8);
        uint64_t payload = 12345;
        assert_ok(kvx_wire_decode_read_resp(c, 8, &payload));
        assert_int_equal(payload, good[i]);
        free(c);
    }

    kvx_wire_encode_u64(buf, 4096);
    for (size_t n = 0; n <= sizeof(buf); n++) {
        if (n != 8 && n != 16) { /* 16: with a checksum after the length */
            assert_proto(read_resp_dec(buf, n));
        }
    }

    static const uint64_t bad[] = {KVX_WIRE_MAX_PAYLOAD + 1, KVX_WIRE_MAX_PAYLOAD * 2, 1ull << 63,
                                   UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kvx_wire_encode_u64(buf, bad[i]);
        assert_proto(read_resp_dec(buf, 8));
    }
}

/* ------------------------------------------------------------ hello */

static size_t build_hello(uint8_t *out, uint64_t instance, const char *name)
{
    size_t n = strlen(name);
    kvx_wire_encode_hello(out, instance, name, n);
    return kvx_wire_hello_size(n);
}

static void check_hello_roundtrip(uint64_t instance, const char *name, size_t n)
{
    size_t size = kvx_wire_hello_size(n);
    assert_int_equal(size, 16 + n);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, 0xa5, size);
    kvx_wire_encode_hello(buf, instance, name, n);
    assert_int_equal(get_le(buf, 8), instance);
    assert_int_equal(get_le(buf + 8, 2), n);
    assert_true(all_zero(buf + 10, 6));
    assert_memory_equal(buf + 16, name, n);

    uint64_t got = ~instance;
    char out[KVX_ENGINE_NAME_MAX];
    memset(out, 'Z', sizeof(out));
    assert_ok(kvx_wire_decode_hello(buf, size, &got, out));
    assert_int_equal(got, instance);
    assert_memory_equal(out, name, n);
    assert_int_equal(out[n], '\0');
    assert_int_equal(strlen(out), n);
    free(buf);
}

static void test_hello_roundtrip(void **state)
{
    (void)state;
    check_hello_roundtrip(0, "a", 1);
    check_hello_roundtrip(UINT64_MAX, "prefill-0", 9);
    check_hello_roundtrip(0x0102030405060708ull, "127.0.0.1:26000", 15);
    check_hello_roundtrip(7, " ", 1);
    check_hello_roundtrip(7, "~", 1);
    /* Only name_len bytes of the source are sent. */
    check_hello_roundtrip(9, "abcdef", 3);

    char longest[KVX_ENGINE_NAME_MAX];
    for (size_t i = 0; i < KVX_ENGINE_NAME_MAX - 1; i++) {
        longest[i] = (char)(0x20 + (i * 7) % 95); /* every printable byte class */
    }
    longest[KVX_ENGINE_NAME_MAX - 1] = '\0';
    check_hello_roundtrip(0xfeedfacecafebeefull, longest, KVX_ENGINE_NAME_MAX - 1);

    char all[95];
    for (int i = 0; i < 95; i++) {
        all[i] = (char)(0x20 + i);
    }
    for (size_t off = 0; off + KVX_ENGINE_NAME_MAX - 1 <= sizeof(all); off += 31) {
        check_hello_roundtrip(off, all + off, KVX_ENGINE_NAME_MAX - 1);
    }
}

static void test_hello_bad(void **state)
{
    (void)state;
    uint8_t buf[16 + 65535 + 1];
    size_t size = build_hello(buf, 77, "engine-a");
    assert_ok(hello_dec(buf, size));

    /* Every truncation, and one byte too many. */
    for (size_t n = 0; n < size; n++) {
        assert_proto(hello_dec(buf, n));
    }
    buf[size] = 'x';
    assert_proto(hello_dec(buf, size + 1));

    /* name_len 0. */
    kvx_wire_encode_hello(buf, 1, "", 0);
    assert_proto(hello_dec(buf, 16));
    buf[16] = 'a';
    assert_proto(hello_dec(buf, 17));

    /* name_len at and beyond KVX_ENGINE_NAME_MAX; one less is fine. */
    memset(buf + 16, 'n', 65535);
    put_le(buf + 8, KVX_ENGINE_NAME_MAX - 1, 2);
    assert_ok(hello_dec(buf, 16 + KVX_ENGINE_NAME_MAX - 1));
    static const size_t too_long[] = {KVX_ENGINE_NAME_MAX, KVX_ENGINE_NAME_MAX + 1, 256, 65535};
    for (size_t i = 0; i < sizeof(too_long) / sizeof(too_long[0]); i++) {
        put_le(buf + 8, too_long[i], 2);
        assert_proto(hello_dec(buf, 16 + too_long[i]));
        assert_proto(hello_dec(buf, 16 + KVX_ENGINE_NAME_MAX - 1));
    }

    /* name_len disagreeing with the body. */
    memset(buf + 16, 'n', 8);
    put_le(buf + 8, 5, 2);
    assert_proto(hello_dec(buf, 16 + 6));
    assert_proto(hello_dec(buf, 16 + 4));
    put_le(buf + 8, 6, 2);
    assert_proto(hello_dec(buf, 16 + 5));

    /* Non-printable bytes anywhere in the name. */
    static const uint8_t nonprint[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b,
                                       0x1f, 0x7f, 0x80, 0xc3, 0xfe, 0xff};
    for (size_t i = 0; i < sizeof(nonprint); i++) {
        static const size_t pos[] = {0, 3, 7};
        for (size_t p = 0; p < 3; p++) {
            size = build_hello(buf, 77, "engine-a");
            buf[16 + pos[p]] = nonprint[i];
            assert_proto(hello_dec(buf, size));
        }
    }

    /* Reserved bits after name_len. */
    for (int off = 10; off < 12; off++) {
        size = build_hello(buf, 77, "engine-a");
        buf[off] = 0x01;
        assert_proto(hello_dec(buf, size));
        buf[off] = 0x80;
        assert_proto(hello_dec(buf, size));
    }

    /* silence_ms: 0 (not stated) or 500..3600000. */
    static const struct {
        uint32_t ms;
        int ok;
    } silence[] = {{0, 1},       {1, 0},       {499, 0},      {500, 1},       {5000, 1},
                   {3600000, 1}, {3600001, 0}, {1u << 31, 0}, {UINT32_MAX, 0}};
    for (size_t i = 0; i < sizeof(silence) / sizeof(silence[0]); i++) {
        size = build_hello(buf, 77, "engine-a");
        kvx_wire_hello_set_silence(buf, silence[i].ms);
        assert_int_equal(get_le(buf + 12, 4), silence[i].ms);
        if (silence[i].ok) {
            assert_ok(hello_dec(buf, size));
            assert_int_equal(kvx_wire_hello_silence(buf), silence[i].ms);
        } else {
            assert_proto(hello_dec(buf, size));
        }
    }
}

/* ------------------------------------------------------------ notify */

static void check_notify_roundtrip(const char *name, size_t name_len, const void *msg,
                                   size_t msg_len)
{
    size_t size = kvx_wire_notify_size(name_len, msg_len);
    assert_int_equal(size, 8 + name_len + msg_len);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    memset(buf, 0xa5, size);
    kvx_wire_encode_notify(buf, name, name_len, msg, msg_len);
    assert_int_equal(get_le(buf, 2), name_len);
    assert_int_equal(get_le(buf + 2, 2), 0);
    assert_int_equal(get_le(buf + 4, 4), msg_len);
    assert_memory_equal(buf + 8, name, name_len);
    if (msg_len > 0) {
        assert_memory_equal(buf + 8 + name_len, msg, msg_len);
    }

    const char *n = NULL, *m = NULL;
    size_t nl = 12345, ml = 12345;
    assert_ok(kvx_wire_decode_notify(buf, size, &n, &nl, &m, &ml));
    assert_ptr_equal(n, buf + 8);
    assert_int_equal(nl, name_len);
    assert_ptr_equal(m, buf + 8 + name_len);
    assert_int_equal(ml, msg_len);
    assert_memory_equal(n, name, name_len);
    if (msg_len > 0) {
        assert_memory_equal(m, msg, msg_len);
    }
    free(buf);
}

static void test_notify_roundtrip(void **state)
{
    (void)state;
    check_notify_roundtrip("kv.ready", 8, "a\0b\xff", 4);
    check_notify_roundtrip("done", 4, NULL, 0); /* empty message */
    check_notify_roundtrip("done", 4, "", 0);
    check_notify_roundtrip("x", 1, "hello", 5);

    char *name = malloc(KVX_NOTIFY_NAME_MAX);
    uint8_t *msg = malloc(KVX_NOTIFY_MSG_MAX);
    assert_non_null(name);
    assert_non_null(msg);
    for (size_t i = 0; i < KVX_NOTIFY_NAME_MAX; i++) {
        name[i] = (char)(1 + i % 255); /* anything but NUL */
    }
    for (size_t i = 0; i < KVX_NOTIFY_MSG_MAX; i++) {
        msg[i] = (uint8_t)i; /* NULs are fine in the message */
    }
    check_notify_roundtrip(name, KVX_NOTIFY_NAME_MAX, msg, KVX_NOTIFY_MSG_MAX);
    check_notify_roundtrip(name, KVX_NOTIFY_NAME_MAX, NULL, 0);
    check_notify_roundtrip("n", 1, msg, KVX_NOTIFY_MSG_MAX);
    free(name);
    free(msg);
}

static size_t build_notify(uint8_t *out, const char *name, const char *msg)
{
    kvx_wire_encode_notify(out, name, strlen(name), msg, strlen(msg));
    return kvx_wire_notify_size(strlen(name), strlen(msg));
}

static void test_notify_bad(void **state)
{
    (void)state;
    uint8_t buf[8 + KVX_NOTIFY_NAME_MAX + KVX_NOTIFY_MSG_MAX + 16];
    memset(buf, 'q', sizeof(buf));
    size_t size = build_notify(buf, "kv.ready", "hello");
    assert_ok(notify_dec(buf, size));

    /* Every truncation, and too many bytes. */
    for (size_t n = 0; n < size; n++) {
        assert_proto(notify_dec(buf, n));
    }
    assert_proto(notify_dec(buf, size + 1));
    assert_proto(notify_dec(buf, size + 8));

    /* Name and message one over their bounds, with bodies that match. */
    memset(buf, 'q', sizeof(buf));
    put_le(buf, KVX_NOTIFY_NAME_MAX + 1, 2);
    put_le(buf + 2, 0, 2);
    put_le(buf + 4, 0, 4);
    assert_proto(notify_dec(buf, 8 + KVX_NOTIFY_NAME_MAX + 1));
    put_le(buf, KVX_NOTIFY_NAME_MAX, 2);
    assert_ok(notify_dec(buf, 8 + KVX_NOTIFY_NAME_MAX));
    put_le(buf, 1, 2);
    put_le(buf + 4, KVX_NOTIFY_MSG_MAX + 1, 4);
    assert_proto(notify_dec(buf, 8 + 1 + KVX_NOTIFY_MSG_MAX + 1));
    put_le(buf + 4, KVX_NOTIFY_MSG_MAX, 4);
    assert_ok(notify_dec(buf, 8 + 1 + KVX_NOTIFY_MSG_MAX));
    put_le(buf, 0xffff, 2);
    put_le(buf + 4, 0, 4);
    assert_proto(notify_dec(buf, 8));
    assert_proto(notify_dec(buf, 8 + KVX_NOTIFY_NAME_MAX));

    /* msg_len = 0xFFFFFFFF, with small and large bodies. */
    size = build_notify(buf, "kv.ready", "hello");
    put_le(buf + 4, 0xffffffffu, 4);
    assert_proto(notify_dec(buf, size));
    assert_proto(notify_dec(buf, 8 + 8));
    assert_proto(notify_dec(buf, sizeof(buf)));
    put_le(buf + 4, 0x80000000u, 4);
    assert_proto(notify_dec(buf, size));

    /* Lengths disagreeing with the body both ways. */
    size = build_notify(buf, "kv.ready", "hello");
    put_le(buf, 9, 2);
    assert_proto(notify_dec(buf, size));
    put_le(buf, 7, 2);
    assert_proto(notify_dec(buf, size));
    size = build_notify(buf, "kv.ready", "hello");
    put_le(buf + 4, 6, 4);
    assert_proto(notify_dec(buf, size));
    put_le(buf + 4, 4, 4);
    assert_proto(notify_dec(buf, size));

    /* NUL inside the name, first, middle and last. */
    static const size_t pos[] = {0, 3, 7};
    for (size_t p = 0; p < 3; p++) {
        size = build_notify(buf, "kv.ready", "hello");
        buf[8 + pos[p]] = '\0';
        assert_proto(notify_dec(buf, size));
    }

    /* Reserved bits. */
    for (int off = 2; off < 4; off++) {
        size = build_notify(buf, "kv.ready", "hello");
        buf[off] = 0x01;
        assert_proto(notify_dec(buf, size));
        buf[off] = 0x80;
        assert_proto(notify_dec(buf, size));
    }
}

/* ------------------------------------------------------------ memory table */

static const kvx_wire_mem_entry_t four_entries[] = {
    {0x1000, 0x1000, 1, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_WRITE},
    {0x2000, 0x10, UINT64_MAX, KVX_MEM_DEVICE, KVX_MEM_ACCESS_READ_ONLY}, /* adjacent */
    {0x7f0000000000ull, 1ull << 30, 0, KVX_MEM_HOST, KVX_MEM_ACCESS_READ_ONLY},
    {UINT64_MAX - 0x1000, 0x1000, 0x55, KVX_MEM_DEVICE, KVX_MEM_ACCESS_READ_WRITE},
};

static int entry_equal(const kvx_wire_mem_entry_t *a, const kvx_wire_mem_entry_t *b)
{
    return a->addr == b->addr && a->len == b->len && a->tag == b->tag &&
           a->mem_type == b->mem_type && a->access == b->access;
}

static void test_mem_roundtrip(void **state)
{
    (void)state;
    assert_int_equal(kvx_wire_mem_table_size(0), 8);
    assert_int_equal(kvx_wire_mem_table_size(4), 8 + 4 * 32);

    kvx_wire_mem_entry_t out[8];
    kvx_wire_mem_entry_t sentinel;
    memset(&sentinel, 0xa5, sizeof(sentinel));
    uint32_t count;

    /* Zero entries. */
    uint8_t empty[8];
    memset(empty, 0xee, sizeof(empty));
    kvx_wire_encode_mem_table(empty, NULL, 0);
    assert_true(all_zero(empty, 8));
    for (int i = 0; i < 8; i++) {
        out[i] = sentinel;
    }
    count = 99;
    assert_ok(mem_dec(empty, 8, out, 8, &count));
    assert_int_equal(count, 0);
    assert_memory_equal(&out[0], &sentinel, sizeof(sentinel));

    /* Four entries, every type and access, adjacent and at the top of memory. */
    uint8_t buf[8 + 4 * 32];
    memset(buf, 0xee, sizeof(buf));
    kvx_wire_encode_mem_table(buf, four_entries, 4);
    assert_int_equal(get_le(buf, 4), 4);
    assert_int_equal(get_le(buf + 4, 4), 0);
    for (int i = 0; i < 4; i++) {
        const uint8_t *p = buf + 8 + 32 * i;
        assert_int_equal(get_le(p, 8), four_entries[i].addr);
        assert_int_equal(get_le(p + 8, 8), four_entries[i].len);
        assert_int_equal(get_le(p + 16, 8), four_entries[i].tag);
        assert_int_equal(p[24], four_entries[i].mem_type);
        assert_int_equal(p[25], four_entries[i].access);
        assert_true(all_zero(p + 26, 6));
    }
    for (int i = 0; i < 8; i++) {
        out[i] = sentinel;
    }
    assert_ok(mem_dec(buf, sizeof(buf), out, 8, &count));
    assert_int_equal(count, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(entry_equal(&out[i], &four_entries[i]));
    }
    assert_memory_equal(&out[4], &sentinel, sizeof(sentinel));

    /* The most entries a table may hold. */
    uint32_t n = KVX_WIRE_MAX_MEM_ENTRIES;
    kvx_wire_mem_entry_t *in = calloc(n, sizeof(*in));
    kvx_wire_mem_entry_t *got = calloc(n, sizeof(*got));
    uint8_t *big = malloc(kvx_wire_mem_table_size(n));
    assert_non_null(in);
    assert_non_null(got);
    assert_non_null(big);
    for (uint32_t i = 0; i < n; i++) {
        in[i].addr = 0x100000000ull + (uint64_t)i * 0x2000;
        in[i].len = (i % 2) ? 0x2000 : 0x1000; /* adjacent and gapped alternately */
        in[i].tag = (uint64_t)i * 0x9e3779b97f4a7c15ull;
        in[i].mem_type = (uint8_t)(i % 2);
        in[i].access = (uint8_t)((i / 2) % 2);
    }
    kvx_wire_encode_mem_table(big, in, n);
    assert_ok(mem_dec(big, kvx_wire_mem_table_size(n), got, n, &count));
    assert_int_equal(count, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_true(entry_equal(&got[i], &in[i]));
    }
    /* ... and one more is too many. */
    free(big);
    big = malloc(kvx_wire_mem_table_size(n + 1));
    assert_non_null(big);
    kvx_wire_mem_entry_t *in2 = realloc(in, (n + 1) * sizeof(*in));
    assert_non_null(in2);
    in = in2;
    in[n] = (kvx_wire_mem_entry_t){in[n - 1].addr + 0x10000, 1, 0, 0, 0};
    kvx_wire_encode_mem_table(big, in, n + 1);
    assert_proto(mem_dec(big, kvx_wire_mem_table_size(n + 1), got, n, &count));
    free(big);
    free(in);
    free(got);
}

static size_t build_mem(uint8_t *out, const kvx_wire_mem_entry_t *e, uint32_t n)
{
    kvx_wire_encode_mem_table(out, e, n);
    return kvx_wire_mem_table_size(n);
}

static void check_bad_mem(const kvx_wire_mem_entry_t *e, uint32_t n)
{
    uint8_t buf[8 + 8 * 32];
    assert_true(n <= 8);
    size_t size = build_mem(buf, e, n);
    assert_proto(mem_dec_status(buf, size));
}

static void test_mem_bad(void **state)
{
    (void)state;
    uint8_t buf[8 + 8 * 32];
    memset(buf, 0, sizeof(buf));
    size_t size = build_mem(buf, four_entries, 4);
    assert_ok(mem_dec_status(buf, size));

    /* Every truncation, and extra bytes. */
    for (size_t n = 0; n < size; n++) {
        assert_proto(mem_dec_status(buf, n));
    }
    for (size_t n = size + 1; n <= sizeof(buf); n++) {
        assert_proto(mem_dec_status(buf, n));
    }

    /* Count disagreeing with the body; count over the limit. */
    static const uint32_t counts[] = {0,           3,           5,
                                      0x08000004u, 0xffffffffu, KVX_WIRE_MAX_MEM_ENTRIES + 1};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        size = build_mem(buf, four_entries, 4);
        put_le(buf, counts[i], 4);
        assert_proto(mem_dec_status(buf, size));
    }

    /* Reserved word. */
    for (int off = 4; off < 8; off++) {
        size = build_mem(buf, four_entries, 4);
        buf[off] = 0x10;
        assert_proto(mem_dec_status(buf, size));
    }

    /* Padding of every entry. */
    for (int i = 0; i < 4; i++) {
        for (int off = 26; off < 32; off++) {
            size = build_mem(buf, four_entries, 4);
            buf[8 + 32 * i + off] = 0x01;
            assert_proto(mem_dec_status(buf, size));
        }
    }

    kvx_wire_mem_entry_t e[4];
    for (int i = 0; i < 4; i++) {
        /* Zero length, wrapping, bad type and access, in every position. */
        memcpy(e, four_entries, sizeof(e));
        e[i].len = 0;
        check_bad_mem(e, 4);

        memcpy(e, four_entries, sizeof(e));
        e[i].mem_type = KVX_MEM_DEVICE + 1;
        check_bad_mem(e, 4);
        e[i].mem_type = 255;
        check_bad_mem(e, 4);

        memcpy(e, four_entries, sizeof(e));
        e[i].access = KVX_MEM_ACCESS_READ_ONLY + 1;
        check_bad_mem(e, 4);
        e[i].access = 255;
        check_bad_mem(e, 4);
    }
    memcpy(e, four_entries, sizeof(e));
    e[3].addr = UINT64_MAX - 3;
    e[3].len = 8;
    check_bad_mem(e, 4);
    e[3].addr = UINT64_MAX;
    e[3].len = UINT64_MAX;
    check_bad_mem(e, 4);
    const kvx_wire_mem_entry_t wrap0[] = {{0x1000, UINT64_MAX, 0, 0, 0}};
    check_bad_mem(wrap0, 1);

    /* Unsorted, overlapping, duplicate; adjacent is fine. */
    const kvx_wire_mem_entry_t unsorted[] = {{0x2000, 0x100, 0, 0, 0}, {0x1000, 0x100, 0, 0, 0}};
    check_bad_mem(unsorted, 2);
    const kvx_wire_mem_entry_t overlap[] = {{0x1000, 0x200, 0, 0, 0}, {0x1100, 0x100, 0, 0, 0}};
    check_bad_mem(overlap, 2);
    const kvx_wire_mem_entry_t overlap1[] = {{0x1000, 0x1001, 0, 0, 0}, {0x2000, 0x10, 0, 0, 0}};
    check_bad_mem(overlap1, 2);
    const kvx_wire_mem_entry_t dup[] = {{0x1000, 0x100, 0, 0, 0}, {0x1000, 0x100, 0, 0, 0}};
    check_bad_mem(dup, 2);
    const kvx_wire_mem_entry_t inside[] = {
        {0x1000, 0x1000, 0, 0, 0}, {0x2000, 0x100, 0, 0, 0}, {0x1800, 0x10, 0, 0, 0}};
    check_bad_mem(inside, 3);
    /* An entry that ends exactly at 2^64 must not let a later one overlap it. */
    const kvx_wire_mem_entry_t top[] = {{UINT64_MAX - 0xfff, 0x1000, 0, 0, 0},
                                        {UINT64_MAX - 0x7ff, 0x10, 0, 0, 0}};
    check_bad_mem(top, 2);

    const kvx_wire_mem_entry_t adjacent[] = {
        {0x1000, 0x1000, 0, 0, 0}, {0x2000, 0x10, 0, 0, 0}, {0x2010, 1, 0, 0, 0}};
    size = build_mem(buf, adjacent, 3);
    assert_ok(mem_dec_status(buf, size));
}

static void test_mem_more_than_max(void **state)
{
    (void)state;
    kvx_wire_mem_entry_t in[5];
    for (int i = 0; i < 5; i++) {
        in[i] = (kvx_wire_mem_entry_t){0x10000 * (uint64_t)(i + 1), 0x100, (uint64_t)i,
                                       (uint8_t)(i % 2), (uint8_t)(i % 2)};
    }
    uint8_t buf[8 + 5 * 32];
    size_t size = build_mem(buf, in, 5);

    kvx_wire_mem_entry_t out[5], sentinel;
    memset(&sentinel, 0xa5, sizeof(sentinel));
    for (uint32_t max = 0; max <= 5; max++) {
        for (int i = 0; i < 5; i++) {
            out[i] = sentinel;
        }
        uint32_t count = 0;
        assert_ok(mem_dec(buf, size, out, max, &count));
        assert_int_equal(count, 5);
        for (uint32_t i = 0; i < 5; i++) {
            if (i < max) {
                assert_true(entry_equal(&out[i], &in[i]));
            } else {
                assert_memory_equal(&out[i], &sentinel, sizeof(sentinel));
            }
        }
    }

    /* Entries past max are still checked. */
    in[4].len = 0;
    size = build_mem(buf, in, 5);
    uint32_t count;
    assert_proto(mem_dec(buf, size, out, 2, &count));
    in[4].len = 0x100;
    in[4].addr = in[3].addr;
    size = build_mem(buf, in, 5);
    assert_proto(mem_dec(buf, size, out, 2, &count));
}

/* ------------------------------------------------------------ mutation loop */

enum { K_HDR, K_DESCS, K_READ_RESP, K_HELLO, K_NOTIFY, K_MEM, K_COUNT };

#define FUZZ_CAP        256
#define FUZZ_ITERATIONS 200000
#define FUZZ_MEM_MAX    16

static uint64_t rng_state;

static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Checks what a decoder said about @p buf; returns 1 if it was accepted. */
static int fuzz_hdr(const uint8_t *buf, size_t len)
{
    kvx_wire_hdr_t h;
    memset(&h, 0, sizeof(h));
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_hdr(buf, len, &h);
    if (st != KVX_OK) {
        assert_true(st == KVX_ERR_PROTOCOL || st == KVX_ERR_VERSION_MISMATCH);
        if (st == KVX_ERR_VERSION_MISMATCH) {
            assert_true(len >= KVX_WIRE_HDR_SIZE && buf[4] != KVX_WIRE_VERSION);
            assert_int_equal(get_le(buf, 4), KVX_WIRE_MAGIC);
        }
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    assert_true(len >= KVX_WIRE_HDR_SIZE);
    assert_int_equal(get_le(buf, 4), KVX_WIRE_MAGIC);
    assert_int_equal(buf[4], KVX_WIRE_VERSION);
    assert_true(h.type >= 1 && h.type <= KVX_WIRE_TYPE_MAX);
    assert_int_equal(h.type, buf[5]);
    /* Flags: the tag and checksum on requests for memory, the checksum on
     * READ_RESP, the auth request on HELLO_ACK; nothing else. */
    uint64_t flags = get_le(buf + 6, 2);
    if (h.type == KVX_WIRE_READ_REQ || h.type == KVX_WIRE_WRITE_REQ) {
        assert_true((flags & ~(uint64_t)(KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM)) == 0);
    } else if (h.type == KVX_WIRE_READ_RESP) {
        assert_true((flags & ~(uint64_t)KVX_WIRE_FLAG_CSUM) == 0);
    } else if (h.type == KVX_WIRE_HELLO_ACK) {
        assert_true((flags & ~(uint64_t)KVX_WIRE_FLAG_AUTH) == 0);
    } else {
        assert_int_equal(flags, 0);
    }
    assert_int_equal(h.flags, flags);
    assert_int_equal(get_le(buf + 12, 4), 0);
    assert_int_equal((uint32_t)h.status, get_le(buf + 8, 4));
    assert_int_equal(h.seq, get_le(buf + 16, 8));
    assert_int_equal(h.body_len, get_le(buf + 24, 8));
    assert_true(h.body_len <= kvx_wire_max_body(h.type));
    return 1;
}

static int fuzz_descs(const uint8_t *buf, size_t len)
{
    uint32_t count = 0;
    uint64_t total = 0;
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_descs(buf, len, g_descs, &count, &total);
    if (st != KVX_OK) {
        assert_int_equal(st, KVX_ERR_PROTOCOL);
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    assert_true(count >= 1 && count <= KVX_WIRE_MAX_FRAME_DESCS);
    assert_int_equal(len, kvx_wire_descs_size(count));
    assert_int_equal(get_le(buf, 4), count);
    assert_int_equal(get_le(buf + 4, 4), 0);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = buf + 8 + 16 * (size_t)i;
        assert_int_equal(g_descs[i].addr, get_le(p, 8));
        assert_int_equal(g_descs[i].len, get_le(p + 8, 8));
        assert_true(g_descs[i].len > 0);
        assert_true(g_descs[i].len <= KVX_WIRE_MAX_PAYLOAD);
        /* The last byte is addressable: no wrap. */
        assert_true(g_descs[i].addr + (g_descs[i].len - 1) >= g_descs[i].addr);
        sum += g_descs[i].len; /* at most 4096 * 2^40: cannot wrap */
    }
    assert_int_equal(total, sum);
    assert_true(total <= KVX_WIRE_MAX_PAYLOAD);
    return 1;
}

static int fuzz_read_resp(const uint8_t *buf, size_t len)
{
    uint64_t payload = 0;
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_read_resp(buf, len, &payload);
    if (st != KVX_OK) {
        assert_int_equal(st, KVX_ERR_PROTOCOL);
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    assert_true(len == 8 || len == 16);
    assert_int_equal(payload, get_le(buf, 8));
    assert_true(payload <= KVX_WIRE_MAX_PAYLOAD);
    return 1;
}

static int fuzz_hello(const uint8_t *buf, size_t len)
{
    uint64_t instance = 0;
    char name[KVX_ENGINE_NAME_MAX];
    memset(name, 'Z', sizeof(name));
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_hello(buf, len, &instance, name);
    if (st != KVX_OK) {
        assert_int_equal(st, KVX_ERR_PROTOCOL);
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    const char *nul = memchr(name, '\0', sizeof(name));
    assert_non_null(nul);
    size_t n = (size_t)(nul - name);
    assert_true(n >= 1 && n < KVX_ENGINE_NAME_MAX);
    assert_int_equal(len, 16 + n);
    assert_int_equal(get_le(buf + 8, 2), n);
    assert_true(all_zero(buf + 10, 2));
    uint32_t silence = kvx_wire_hello_silence(buf);
    assert_true(silence == 0 || (silence >= 500 && silence <= 3600000));
    assert_int_equal(silence, get_le(buf + 12, 4));
    assert_int_equal(instance, get_le(buf, 8));
    assert_memory_equal(name, buf + 16, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(name[i] >= 0x20 && name[i] <= 0x7e);
    }
    return 1;
}

static int fuzz_notify(const uint8_t *buf, size_t len)
{
    const char *name = NULL, *msg = NULL;
    size_t name_len = 0, msg_len = 0;
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_notify(buf, len, &name, &name_len, &msg, &msg_len);
    if (st != KVX_OK) {
        assert_int_equal(st, KVX_ERR_PROTOCOL);
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    assert_true(name_len <= KVX_NOTIFY_NAME_MAX);
    assert_true(msg_len <= KVX_NOTIFY_MSG_MAX);
    assert_int_equal(len, 8 + name_len + msg_len);
    assert_int_equal(get_le(buf, 2), name_len);
    assert_int_equal(get_le(buf + 2, 2), 0);
    assert_int_equal(get_le(buf + 4, 4), msg_len);
    assert_ptr_equal(name, buf + 8);
    assert_ptr_equal(msg, buf + 8 + name_len);
    assert_null(memchr(name, '\0', name_len));
    return 1;
}

static int fuzz_mem(const uint8_t *buf, size_t len, uint32_t max)
{
    kvx_wire_mem_entry_t e[FUZZ_MEM_MAX], sentinel;
    memset(&sentinel, 0xa5, sizeof(sentinel));
    for (int i = 0; i < FUZZ_MEM_MAX; i++) {
        e[i] = sentinel;
    }
    uint32_t count = 0;
    kvx_error_clear();
    kvx_status_t st = kvx_wire_decode_mem_table(buf, len, e, max, &count);
    if (st != KVX_OK) {
        assert_int_equal(st, KVX_ERR_PROTOCOL);
        assert_true(kvx_last_error()[0] != '\0');
        return 0;
    }
    assert_true(count <= KVX_WIRE_MAX_MEM_ENTRIES);
    assert_int_equal(len, kvx_wire_mem_table_size(count));
    assert_int_equal(get_le(buf, 4), count);
    assert_int_equal(get_le(buf + 4, 4), 0);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *p = buf + 8 + 32 * (size_t)i;
        uint64_t addr = get_le(p, 8), n = get_le(p + 8, 8);
        assert_true(n > 0);
        assert_true(addr + (n - 1) >= addr);
        assert_true(p[24] <= KVX_MEM_DEVICE);
        assert_true(p[25] <= KVX_MEM_ACCESS_READ_ONLY);
        assert_true(all_zero(p + 26, 6));
        if (i > 0) {
            /* Sorted and not overlapping: starts after the previous last byte. */
            const uint8_t *q = p - 32;
            assert_true(addr > get_le(q, 8) + (get_le(q + 8, 8) - 1));
        }
        if (i < max) {
            assert_int_equal(e[i].addr, addr);
            assert_int_equal(e[i].len, n);
            assert_int_equal(e[i].tag, get_le(p + 16, 8));
            assert_int_equal(e[i].mem_type, p[24]);
            assert_int_equal(e[i].access, p[25]);
        }
    }
    for (uint32_t i = count < max ? count : max; i < FUZZ_MEM_MAX; i++) {
        assert_memory_equal(&e[i], &sentinel, sizeof(sentinel));
    }
    return 1;
}

static void mutate(uint8_t *work, size_t *len_p)
{
    static const uint8_t bytes[] = {0x00, 0x01, 0x1f, 0x20, 0x7e, 0x7f, 0x80, 0xfe, 0xff};
    static const uint64_t words[] = {0,
                                     1,
                                     2,
                                     3,
                                     63,
                                     64,
                                     1024,
                                     1025,
                                     4096,
                                     4097,
                                     65536,
                                     65537,
                                     0x7fffffff,
                                     0x80000000u,
                                     0xffffffffu,
                                     KVX_WIRE_MAX_PAYLOAD - 1,
                                     KVX_WIRE_MAX_PAYLOAD,
                                     KVX_WIRE_MAX_PAYLOAD + 1,
                                     1ull << 63,
                                     UINT64_MAX - 1,
                                     UINT64_MAX};
    size_t len = *len_p;
    uint64_t r = rng();
    switch (r % 8) {
    case 0: /* flip a bit */
        if (len > 0) {
            work[(r >> 8) % len] ^= (uint8_t)(1u << ((r >> 40) % 8));
        }
        break;
    case 1: /* random byte */
        if (len > 0) {
            work[(r >> 8) % len] = (uint8_t)(r >> 48);
        }
        break;
    case 2: /* interesting byte */
        if (len > 0) {
            work[(r >> 8) % len] = bytes[(r >> 40) % sizeof(bytes)];
        }
        break;
    case 3:   /* interesting u16/u32/u64, often at a field offset */
    case 4: { /* (sizes 2, 4, 8) */
        if (len == 0) {
            break;
        }
        size_t off = (r >> 8) % len;
        if ((r >> 20) % 2) {
            off &= ~(size_t)1;
        }
        int size = 2 << ((r >> 24) % 3);
        uint64_t v = words[(r >> 32) % (sizeof(words) / sizeof(words[0]))];
        for (int i = 0; i < size && off + (size_t)i < len; i++) {
            work[off + (size_t)i] = (uint8_t)(v >> (8 * i));
        }
        break;
    }
    case 5: /* truncate */
        *len_p = (size_t)((r >> 8) % (len + 1));
        break;
    case 6: { /* extend with random bytes */
        size_t add = 1 + (size_t)((r >> 8) % 40);
        if (len + add > FUZZ_CAP) {
            add = FUZZ_CAP - len;
        }
        for (size_t i = 0; i < add; i++) {
            work[len + i] = (uint8_t)rng();
        }
        *len_p = len + add;
        break;
    }
    default: /* copy a block of the frame over another place in it */
        if (len > 1) {
            size_t from = (r >> 8) % len, to = (r >> 24) % len;
            size_t n = 1 + (size_t)((r >> 40) % 32);
            if (from + n > len) {
                n = len - from;
            }
            if (to + n > len) {
                n = len - to;
            }
            memmove(work + to, work + from, n);
        }
        break;
    }
}

/* ------------------------------------------------------------- shm frames */

static void test_shm_frames(void **state)
{
    (void)state;
    uint8_t buf[KVX_WIRE_SHM_ACCEPT_SIZE + 8];
    kvx_wire_shm_t in = {.boot_id = 0x1122334455667788ull, .pid = 4242, .uid = 1000};
    kvx_wire_shm_t out;
    /* offer: round trip, exact size only */
    kvx_wire_encode_shm(buf, KVX_WIRE_SHM_OFFER, &in);
    assert_int_equal(kvx_wire_decode_shm(buf, KVX_WIRE_SHM_OFFER_SIZE, KVX_WIRE_SHM_OFFER, &out),
                     KVX_OK);
    assert_true(out.boot_id == in.boot_id && out.pid == in.pid && out.uid == in.uid);
    for (size_t len = 0; len < sizeof(buf); len++) {
        if (len != KVX_WIRE_SHM_OFFER_SIZE) {
            assert_int_equal(kvx_wire_decode_shm(buf, len, KVX_WIRE_SHM_OFFER, &out),
                             KVX_ERR_PROTOCOL);
        }
    }
    /* accept: round trip; reserved word, pid 0 and fds past INT32_MAX refused */
    in = (kvx_wire_shm_t){.boot_id = 7, .pid = 99, .table_fd = 5, .pins_fd = 6, .probe = 0xabc0};
    kvx_wire_encode_shm(buf, KVX_WIRE_SHM_ACCEPT, &in);
    assert_int_equal(kvx_wire_decode_shm(buf, KVX_WIRE_SHM_ACCEPT_SIZE, KVX_WIRE_SHM_ACCEPT, &out),
                     KVX_OK);
    assert_true(out.boot_id == 7 && out.pid == 99 && out.table_fd == 5 && out.pins_fd == 6 &&
                out.probe == 0xabc0);
    for (size_t len = 0; len < sizeof(buf); len++) {
        if (len != KVX_WIRE_SHM_ACCEPT_SIZE) {
            assert_int_equal(kvx_wire_decode_shm(buf, len, KVX_WIRE_SHM_ACCEPT, &out),
                             KVX_ERR_PROTOCOL);
        }
    }
    uint8_t bad[KVX_WIRE_SHM_ACCEPT_SIZE];
    memcpy(bad, buf, sizeof(bad));
    bad[20] = 1; /* reserved */
    assert_int_equal(kvx_wire_decode_shm(bad, sizeof(bad), KVX_WIRE_SHM_ACCEPT, &out),
                     KVX_ERR_PROTOCOL);
    memcpy(bad, buf, sizeof(bad));
    memset(bad + 8, 0, 4); /* pid 0 */
    assert_int_equal(kvx_wire_decode_shm(bad, sizeof(bad), KVX_WIRE_SHM_ACCEPT, &out),
                     KVX_ERR_PROTOCOL);
    memcpy(bad, buf, sizeof(bad));
    bad[15] = 0x80; /* table fd 2^31 + 5 */
    assert_int_equal(kvx_wire_decode_shm(bad, sizeof(bad), KVX_WIRE_SHM_ACCEPT, &out),
                     KVX_ERR_PROTOCOL);
    /* header: both types exist with their exact body bounds */
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_SHM_OFFER), KVX_WIRE_SHM_OFFER_SIZE);
    assert_int_equal(kvx_wire_max_body(KVX_WIRE_SHM_ACCEPT), KVX_WIRE_SHM_ACCEPT_SIZE);
}

static void test_mutation(void **state)
{
    (void)state;
    uint8_t base[K_COUNT][FUZZ_CAP];
    size_t base_len[K_COUNT];

    make_hdr(base[K_HDR], KVX_WIRE_WRITE_REQ, kvx_wire_descs_size(3));
    base_len[K_HDR] = KVX_WIRE_HDR_SIZE;
    const kvx_wire_desc_t d[] = {
        {0x1000, 0x100}, {0x7f0000000000ull, 0x200000}, {UINT64_MAX - 0x10, 0x10}};
    base_len[K_DESCS] = build_descs(base[K_DESCS], d, 3);
    kvx_wire_encode_u64(base[K_READ_RESP], 0x200000);
    base_len[K_READ_RESP] = 8;
    base_len[K_HELLO] = build_hello(base[K_HELLO], 0x1122334455667788ull, "decode-1:10.0.0.2");
    base_len[K_NOTIFY] = build_notify(base[K_NOTIFY], "layer.17.done", "req-0042:\x01\x02");
    base_len[K_MEM] = build_mem(base[K_MEM], four_entries, 4);

    /* Every base frame is valid to start with. */
    assert_int_equal(fuzz_hdr(base[K_HDR], base_len[K_HDR]), 1);
    assert_int_equal(fuzz_descs(base[K_DESCS], base_len[K_DESCS]), 1);
    assert_int_equal(fuzz_read_resp(base[K_READ_RESP], base_len[K_READ_RESP]), 1);
    assert_int_equal(fuzz_hello(base[K_HELLO], base_len[K_HELLO]), 1);
    assert_int_equal(fuzz_notify(base[K_NOTIFY], base_len[K_NOTIFY]), 1);
    assert_int_equal(fuzz_mem(base[K_MEM], base_len[K_MEM], 4), 1);

    unsigned long ok[K_COUNT] = {0}, bad[K_COUNT] = {0};
    uint8_t work[FUZZ_CAP];
    rng_state = 0x9e3779b97f4a7c15ull;
    for (unsigned long it = 0; it < FUZZ_ITERATIONS; it++) {
        int kind = (int)(rng() % K_COUNT);
        size_t len = base_len[kind];
        memcpy(work, base[kind], len);
        int nmut = 1 + (int)(rng() % 4);
        for (int m = 0; m < nmut; m++) {
            mutate(work, &len);
        }
        uint8_t *buf = dup_exact(work, len);
        uint32_t max = (uint32_t)(rng() % (FUZZ_MEM_MAX + 1));
        int accepted = 0;
        switch (kind) {
        case K_HDR:
            accepted = fuzz_hdr(buf, len);
            break;
        case K_DESCS:
            accepted = fuzz_descs(buf, len);
            break;
        case K_READ_RESP:
            accepted = fuzz_read_resp(buf, len);
            break;
        case K_HELLO:
            accepted = fuzz_hello(buf, len);
            break;
        case K_NOTIFY:
            accepted = fuzz_notify(buf, len);
            break;
        default:
            accepted = fuzz_mem(buf, len, max);
            break;
        }
        if (accepted) {
            ok[kind]++;
        } else {
            bad[kind]++;
        }
        /* Every other decoder must cope with the same bytes too. */
        if (it % 4 == 0) {
            fuzz_hdr(buf, len);
            fuzz_descs(buf, len);
            fuzz_read_resp(buf, len);
            fuzz_hello(buf, len);
            fuzz_notify(buf, len);
            fuzz_mem(buf, len, max);
        }
        free(buf);
    }
    /* The mutations both keep some frames valid and break others. */
    for (int k = 0; k < K_COUNT; k++) {
        if (ok[k] == 0 || bad[k] == 0) {
            fail_msg("kind %d: %lu accepted, %lu refused", k, ok[k], bad[k]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_roundtrip),
        cmocka_unit_test(test_hdr_max_body),
        cmocka_unit_test(test_hdr_truncated),
        cmocka_unit_test(test_hdr_bad_magic),
        cmocka_unit_test(test_hdr_version),
        cmocka_unit_test(test_hdr_type),
        cmocka_unit_test(test_hdr_flags_reserved),
        cmocka_unit_test(test_hdr_body_len),
        cmocka_unit_test(test_descs_roundtrip),
        cmocka_unit_test(test_descs_truncated),
        cmocka_unit_test(test_descs_count),
        cmocka_unit_test(test_descs_entries),
        cmocka_unit_test(test_read_resp),
        cmocka_unit_test(test_hello_roundtrip),
        cmocka_unit_test(test_hello_bad),
        cmocka_unit_test(test_notify_roundtrip),
        cmocka_unit_test(test_notify_bad),
        cmocka_unit_test(test_mem_roundtrip),
        cmocka_unit_test(test_mem_bad),
        cmocka_unit_test(test_mem_more_than_max),
        cmocka_unit_test(test_shm_frames),
        cmocka_unit_test(test_mutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

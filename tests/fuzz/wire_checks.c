#include "wire_checks.h"

#include "fuzz.h"
#include "util/error.h"

/* Decoders must leave a detail for kvx_last_error() on every failure. */
static kvx_status_t verdict(kvx_status_t got, kvx_status_t want)
{
    if (got != want) {
        fprintf(stderr, "decoder returned %s, the protocol says %s (detail: %s)\n",
                kvx_status_name(got), kvx_status_name(want), kvx_last_error());
    }
    FUZZ_CHECK(got == want);
    if (got != KVX_OK) {
        FUZZ_CHECK(kvx_last_error()[0] != '\0');
    }
    return got;
}

/* ---------------------------------------------------------------------
 * The protocol as these checks know it: docs/protocol.md, version 2. The
 * values are written out rather than taken from wire.h, so that a change to
 * the protocol must be made here too; the replay ctests fail until it is.
 */

#define SPEC_VERSION     2
#define SPEC_TYPE_MAX    17 /* AUTH_OK */
#define SPEC_MAX_PAYLOAD (1ull << 40)

/* The checks below name types and flags by wire.h's names; these hold them
 * to the numbers of the protocol's tables. */
_Static_assert(KVX_WIRE_HELLO == 1 && KVX_WIRE_HELLO_ACK == 2 && KVX_WIRE_READ_REQ == 3 &&
                   KVX_WIRE_READ_RESP == 4 && KVX_WIRE_WRITE_REQ == 5 && KVX_WIRE_WRITE_ACK == 6 &&
                   KVX_WIRE_NOTIFY == 7 && KVX_WIRE_NOTIFY_ACK == 8 && KVX_WIRE_MEM_QUERY == 9 &&
                   KVX_WIRE_MEM_TABLE == 10 && KVX_WIRE_SHM_OFFER == 11 &&
                   KVX_WIRE_SHM_ACCEPT == 12 && KVX_WIRE_KEEPALIVE == 13 &&
                   KVX_WIRE_KEEPALIVE_BACK == 14 && KVX_WIRE_AUTH_CHALLENGE == 15 &&
                   KVX_WIRE_AUTH_PROOF == 16 && KVX_WIRE_AUTH_OK == 17,
               "frame type numbers differ from docs/protocol.md");
_Static_assert(KVX_WIRE_FLAG_TAG == 0x1 && KVX_WIRE_FLAG_CSUM == 0x2 && KVX_WIRE_FLAG_AUTH == 0x4,
               "flag bits differ from docs/protocol.md");

/* Header flags each type may carry. */
static uint64_t spec_flags(uint8_t type)
{
    switch (type) {
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ:
        return KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM;
    case KVX_WIRE_READ_RESP:
        return KVX_WIRE_FLAG_CSUM;
    case KVX_WIRE_HELLO_ACK:
        return KVX_WIRE_FLAG_AUTH;
    default:
        return 0;
    }
}

/* Largest body_len per type 1..SPEC_TYPE_MAX. */
static uint64_t spec_max_body(uint8_t type)
{
    switch (type) {
    case KVX_WIRE_HELLO:
    case KVX_WIRE_HELLO_ACK:
        return 16 + 63;
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ:
        return 8 + 8 + 8 + 16 * 4096; /* tag, checksum, count, descriptors */
    case KVX_WIRE_READ_RESP:
        return 16; /* payload length, checksum */
    case KVX_WIRE_WRITE_ACK:
    case KVX_WIRE_NOTIFY_ACK:
    case KVX_WIRE_MEM_QUERY:
    case KVX_WIRE_KEEPALIVE:
    case KVX_WIRE_KEEPALIVE_BACK:
        return 0;
    case KVX_WIRE_NOTIFY:
        return 8 + 1024 + 1024;
    case KVX_WIRE_MEM_TABLE:
        return 8 + 32 * 65536;
    case KVX_WIRE_SHM_OFFER:
        return 16;
    case KVX_WIRE_SHM_ACCEPT:
        return 32;
    case KVX_WIRE_AUTH_CHALLENGE: /* nonce */
    case KVX_WIRE_AUTH_OK:        /* mac */
        return 32;
    case KVX_WIRE_AUTH_PROOF: /* nonce, mac */
        return 64;
    default:
        return 0; /* not a type of this version */
    }
}

/* Exact body size of an AUTH_* frame; -1 for another type. */
static int64_t spec_auth_len(uint8_t type, int32_t status)
{
    switch (type) {
    case KVX_WIRE_AUTH_CHALLENGE:
        return 32;
    case KVX_WIRE_AUTH_PROOF:
        return 64;
    case KVX_WIRE_AUTH_OK:
        return status == 0 ? 32 : 0; /* a refusal has no mac */
    default:
        return -1;
    }
}

/* --------------------------------------------------------------------- */

kvx_status_t fuzz_check_hdr(const uint8_t *in, size_t len, kvx_wire_hdr_t *hdr)
{
    kvx_status_t want = KVX_OK;
    if (len < KVX_WIRE_HDR_SIZE || fuzz_le(in, 4) != KVX_WIRE_MAGIC) {
        want = KVX_ERR_PROTOCOL;
    } else if (in[4] != SPEC_VERSION) {
        want = KVX_ERR_VERSION_MISMATCH; /* later fields are not looked at */
    } else {
        uint8_t type = in[5];
        if (type < 1 || type > SPEC_TYPE_MAX || (fuzz_le(in + 6, 2) & ~spec_flags(type)) != 0 ||
            fuzz_le(in + 12, 4) != 0 || fuzz_le(in + 24, 8) > spec_max_body(type)) {
            want = KVX_ERR_PROTOCOL;
        }
    }
    uint8_t *buf = fuzz_dup(in, len);
    kvx_wire_hdr_t h;
    memset(&h, 0xa5, sizeof(h));
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_hdr(buf, len, &h), want);
    if (st == KVX_OK) {
        FUZZ_CHECK(h.type == buf[5]);
        FUZZ_CHECK(h.flags == fuzz_le(buf + 6, 2));
        FUZZ_CHECK((uint32_t)h.status == fuzz_le(buf + 8, 4));
        FUZZ_CHECK(h.seq == fuzz_le(buf + 16, 8));
        FUZZ_CHECK(h.body_len == fuzz_le(buf + 24, 8));
        FUZZ_CHECK(h.body_len <= kvx_wire_max_body(h.type));
        FUZZ_CHECK(kvx_wire_max_body(h.type) <= KVX_WIRE_MAX_BODY);
        uint8_t again[KVX_WIRE_HDR_SIZE];
        kvx_wire_encode_hdr(again, &h);
        FUZZ_CHECK(memcmp(again, buf, KVX_WIRE_HDR_SIZE) == 0);
        if (hdr != NULL) {
            *hdr = h;
        }
    }
    free(buf);
    return st;
}

kvx_status_t fuzz_check_descs(const uint8_t *in, size_t len, uint64_t *total_p)
{
    const uint64_t limit = SPEC_MAX_PAYLOAD;
    kvx_status_t want = KVX_OK;
    uint64_t count = len >= 8 ? fuzz_le(in, 4) : 0;
    if (len < 8 || count < 1 || count > 4096 || fuzz_le(in + 4, 4) != 0 || len != 8 + 16 * count) {
        want = KVX_ERR_PROTOCOL;
    } else {
        /* total stays <= 2^40, so total + n cannot overflow once n <= 2^40 */
        uint64_t total = 0;
        for (uint64_t i = 0; i < count && want == KVX_OK; i++) {
            uint64_t addr = fuzz_le(in + 8 + 16 * i, 8), n = fuzz_le(in + 16 + 16 * i, 8);
            if (n == 0 || addr > UINT64_MAX - n || n > limit || total + n > limit) {
                want = KVX_ERR_PROTOCOL;
            }
            total += n;
        }
    }
    uint8_t *buf = fuzz_dup(in, len);
    /* Room for exactly the most a frame may carry. */
    kvx_wire_desc_t *descs = malloc(KVX_WIRE_MAX_FRAME_DESCS * sizeof(*descs));
    FUZZ_CHECK(descs != NULL);
    uint32_t n = 0;
    uint64_t total = 0;
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_descs(buf, len, descs, &n, &total), want);
    if (st == KVX_OK) {
        FUZZ_CHECK(n == count && n >= 1 && n <= KVX_WIRE_MAX_FRAME_DESCS);
        FUZZ_CHECK(kvx_wire_descs_size(n) == len);
        uint64_t sum = 0;
        uint8_t *again = malloc(len);
        FUZZ_CHECK(again != NULL);
        kvx_wire_encode_descs_hdr(again, n);
        for (uint32_t i = 0; i < n; i++) {
            FUZZ_CHECK(descs[i].len > 0 && descs[i].addr + descs[i].len > descs[i].addr);
            sum += descs[i].len;
            kvx_wire_encode_desc(again + 8 + 16 * (size_t)i, descs[i].addr, descs[i].len);
        }
        FUZZ_CHECK(sum == total && total <= limit);
        FUZZ_CHECK(memcmp(again, buf, len) == 0);
        free(again);
        if (total_p != NULL) {
            *total_p = total;
        }
    }
    free(descs);
    free(buf);
    return st;
}

kvx_status_t fuzz_check_read_resp(const uint8_t *in, size_t len, uint64_t *payload_p)
{
    /* 16 bytes with a checksum after the length (the caller reads it). */
    kvx_status_t want =
        ((len == 8 || len == 16) && fuzz_le(in, 8) <= SPEC_MAX_PAYLOAD) ? KVX_OK : KVX_ERR_PROTOCOL;
    uint8_t *buf = fuzz_dup(in, len);
    uint64_t payload = 0;
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_read_resp(buf, len, &payload), want);
    if (st == KVX_OK) {
        FUZZ_CHECK(payload == fuzz_le(buf, 8) && payload <= KVX_WIRE_MAX_PAYLOAD);
        uint8_t again[8];
        kvx_wire_encode_u64(again, payload);
        FUZZ_CHECK(memcmp(again, buf, 8) == 0);
        FUZZ_CHECK(kvx_wire_decode_u64(buf) == payload);
        if (payload_p != NULL) {
            *payload_p = payload;
        }
    }
    free(buf);
    return st;
}

kvx_status_t fuzz_check_hello(const uint8_t *in, size_t len)
{
    kvx_status_t want = KVX_OK;
    size_t name_len = len >= 16 ? (size_t)fuzz_le(in + 8, 2) : 0;
    uint64_t silence = len >= 16 ? fuzz_le(in + 12, 4) : 0;
    if (len < 16 || fuzz_le(in + 10, 2) != 0 ||
        (silence != 0 && (silence < 500 || silence > 3600000)) || name_len < 1 || name_len > 63 ||
        len != 16 + name_len) {
        want = KVX_ERR_PROTOCOL;
    } else {
        for (size_t i = 0; i < name_len; i++) {
            if (in[16 + i] < 0x20 || in[16 + i] > 0x7e) {
                want = KVX_ERR_PROTOCOL;
            }
        }
    }
    uint8_t *buf = fuzz_dup(in, len);
    /* Exactly the room the decoder is promised; the fill shows what it wrote. */
    char *name = malloc(KVX_ENGINE_NAME_MAX);
    FUZZ_CHECK(name != NULL);
    memset(name, 0x5a, KVX_ENGINE_NAME_MAX);
    uint64_t instance = 0;
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_hello(buf, len, &instance, name), want);
    if (st == KVX_OK) {
        FUZZ_CHECK(strlen(name) == name_len);
        FUZZ_CHECK(memcmp(name, buf + 16, name_len) == 0);
        FUZZ_CHECK(instance == fuzz_le(buf, 8));
        FUZZ_CHECK(kvx_wire_hello_size(name_len) == len);
        uint8_t *again = malloc(len);
        FUZZ_CHECK(again != NULL);
        kvx_wire_encode_hello(again, instance, name, name_len);
        FUZZ_CHECK(fuzz_le(again + 12, 4) == 0); /* stated only on request */
        FUZZ_CHECK(kvx_wire_hello_silence(buf) == silence);
        kvx_wire_hello_set_silence(again, kvx_wire_hello_silence(buf));
        FUZZ_CHECK(memcmp(again, buf, len) == 0);
        free(again);
    }
    free(name);
    free(buf);
    return st;
}

kvx_status_t fuzz_check_notify(const uint8_t *in, size_t len)
{
    kvx_status_t want = KVX_OK;
    size_t nl = len >= 8 ? (size_t)fuzz_le(in, 2) : 0;
    size_t ml = len >= 8 ? (size_t)fuzz_le(in + 4, 4) : 0;
    if (len < 8 || fuzz_le(in + 2, 2) != 0 || nl > 1024 || ml > 1024 || len != 8 + nl + ml ||
        memchr(in + 8, '\0', nl) != NULL) {
        want = KVX_ERR_PROTOCOL;
    }
    uint8_t *buf = fuzz_dup(in, len);
    const char *name = NULL, *msg = NULL;
    size_t name_len = 0, msg_len = 0;
    kvx_error_clear();
    kvx_status_t st =
        verdict(kvx_wire_decode_notify(buf, len, &name, &name_len, &msg, &msg_len), want);
    if (st == KVX_OK) {
        /* Both point inside the body and together cover the rest of it. */
        FUZZ_CHECK(name == (const char *)buf + 8 && name_len == nl);
        FUZZ_CHECK(msg == name + name_len && msg_len == ml);
        FUZZ_CHECK(name_len <= KVX_NOTIFY_NAME_MAX && msg_len <= KVX_NOTIFY_MSG_MAX);
        FUZZ_CHECK(kvx_wire_notify_size(name_len, msg_len) == len);
        uint8_t *again = malloc(len);
        FUZZ_CHECK(again != NULL);
        kvx_wire_encode_notify(again, name, name_len, msg, msg_len);
        FUZZ_CHECK(memcmp(again, buf, len) == 0);
        free(again);
    }
    free(buf);
    return st;
}

kvx_status_t fuzz_check_shm(const uint8_t *in, size_t len, uint8_t type)
{
    kvx_status_t want = KVX_OK;
    if (type == KVX_WIRE_SHM_OFFER) {
        want = len == 16 ? KVX_OK : KVX_ERR_PROTOCOL;
    } else if (len != 32 || fuzz_le(in + 8, 4) == 0 || fuzz_le(in + 12, 4) > INT32_MAX ||
               fuzz_le(in + 16, 4) > INT32_MAX || fuzz_le(in + 20, 4) != 0) {
        want = KVX_ERR_PROTOCOL;
    }
    uint8_t *buf = fuzz_dup(in, len);
    kvx_wire_shm_t shm;
    memset(&shm, 0xa5, sizeof(shm));
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_shm(buf, len, type, &shm), want);
    if (st == KVX_OK) {
        FUZZ_CHECK(shm.boot_id == fuzz_le(buf, 8) && shm.pid == fuzz_le(buf + 8, 4));
        if (type == KVX_WIRE_SHM_OFFER) {
            FUZZ_CHECK(shm.uid == fuzz_le(buf + 12, 4));
            FUZZ_CHECK(shm.table_fd == 0 && shm.pins_fd == 0 && shm.probe == 0);
        } else {
            FUZZ_CHECK(shm.pid != 0 && shm.table_fd <= INT32_MAX && shm.pins_fd <= INT32_MAX);
            FUZZ_CHECK(shm.probe == fuzz_le(buf + 24, 8) && shm.uid == 0);
        }
        uint8_t again[KVX_WIRE_SHM_ACCEPT_SIZE];
        kvx_wire_encode_shm(again, type, &shm);
        FUZZ_CHECK(memcmp(again, buf, len) == 0);
    }
    free(buf);
    return st;
}

kvx_status_t fuzz_check_mem_table(const uint8_t *in, size_t len, uint32_t max)
{
    kvx_status_t want = KVX_OK;
    uint64_t count = len >= 8 ? fuzz_le(in, 4) : 0;
    if (len < 8 || count > 65536 || fuzz_le(in + 4, 4) != 0 || len != 8 + 32 * count) {
        want = KVX_ERR_PROTOCOL;
    } else {
        uint64_t prev_end = 0;
        for (uint64_t i = 0; i < count && want == KVX_OK; i++) {
            const uint8_t *e = in + 8 + 32 * i;
            uint64_t addr = fuzz_le(e, 8), n = fuzz_le(e + 8, 8);
            if (n == 0 || addr > UINT64_MAX - n || e[24] > 1 || e[25] > 1 ||
                fuzz_le(e + 26, 6) != 0 || (i > 0 && addr < prev_end)) {
                want = KVX_ERR_PROTOCOL;
            }
            prev_end = addr + n;
        }
    }
    uint8_t *buf = fuzz_dup(in, len);
    kvx_wire_mem_entry_t *entries = malloc(max ? max * sizeof(*entries) : 1);
    FUZZ_CHECK(entries != NULL);
    uint32_t got = 0;
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_decode_mem_table(buf, len, entries, max, &got), want);
    if (st == KVX_OK) {
        /* The count never claims more entries than the body holds. */
        FUZZ_CHECK(got == count && got <= KVX_WIRE_MAX_MEM_ENTRIES && 8 + 32 * (size_t)got == len);
        FUZZ_CHECK(kvx_wire_mem_table_size(got) == len);
        uint32_t kept = got < max ? got : max;
        for (uint32_t i = 0; i < kept; i++) {
            const uint8_t *e = buf + 8 + 32 * (size_t)i;
            FUZZ_CHECK(entries[i].addr == fuzz_le(e, 8) && entries[i].len == fuzz_le(e + 8, 8));
            FUZZ_CHECK(entries[i].tag == fuzz_le(e + 16, 8));
            FUZZ_CHECK(entries[i].mem_type == e[24] && entries[i].access == e[25]);
            FUZZ_CHECK(i == 0 || entries[i].addr >= entries[i - 1].addr + entries[i - 1].len);
        }
        if (kept == got) {
            uint8_t *again = malloc(len);
            FUZZ_CHECK(again != NULL);
            kvx_wire_encode_mem_table(again, entries, got);
            FUZZ_CHECK(memcmp(again, buf, len) == 0);
            free(again);
        }
    }
    free(entries);
    free(buf);
    return st;
}

kvx_status_t fuzz_check_auth(uint8_t type, int32_t status, size_t len)
{
    int64_t exact = spec_auth_len(type, status);
    kvx_status_t want = (exact >= 0 && len == (uint64_t)exact) ? KVX_OK : KVX_ERR_PROTOCOL;
    kvx_error_clear();
    kvx_status_t st = verdict(kvx_wire_check_auth(type, status, len), want);
    if (st == KVX_OK) {
        /* Every body the check accepts gets past the header check, and
         * holds what tcp.c then reads from it unchecked: the nonce of a
         * challenge, nonce and mac of a proof, the mac of an AUTH_OK. */
        FUZZ_CHECK(len <= kvx_wire_max_body(type));
        size_t reads = type == KVX_WIRE_AUTH_CHALLENGE ? KVX_WIRE_AUTH_NONCE
                       : type == KVX_WIRE_AUTH_PROOF   ? KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC
                       : status == 0                   ? KVX_WIRE_AUTH_MAC
                                                       : 0;
        FUZZ_CHECK(len >= reads);
    }
    return st;
}

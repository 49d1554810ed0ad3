#include "transport/wire.h"

#include <string.h>

#include "util/error.h"

static inline void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static inline uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* Header layout: magic u32 | version u8 | type u8 | flags u16 | status i32 |
 * reserved u32 | seq u64 | body_len u64 */
void kvx_wire_encode_hdr(uint8_t out[KVX_WIRE_HDR_SIZE], const kvx_wire_hdr_t *hdr)
{
    put_u32(out, KVX_WIRE_MAGIC);
    out[4] = KVX_WIRE_VERSION;
    out[5] = hdr->type;
    put_u16(out + 6, hdr->flags);
    put_u32(out + 8, (uint32_t)hdr->status);
    put_u32(out + 12, 0);
    put_u64(out + 16, hdr->seq);
    put_u64(out + 24, hdr->body_len);
}

size_t kvx_wire_max_body(uint8_t type)
{
    switch (type) {
    case KVX_WIRE_HELLO:
    case KVX_WIRE_HELLO_ACK:
        return KVX_WIRE_HELLO_FIXED + KVX_ENGINE_NAME_MAX - 1;
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ:
        return 16 + kvx_wire_descs_size(KVX_WIRE_MAX_FRAME_DESCS); /* tag, checksum */
    case KVX_WIRE_READ_RESP:
        return 16;
    case KVX_WIRE_WRITE_ACK:
    case KVX_WIRE_NOTIFY_ACK:
    case KVX_WIRE_MEM_QUERY:
    case KVX_WIRE_KEEPALIVE:
    case KVX_WIRE_KEEPALIVE_BACK:
        return 0;
    case KVX_WIRE_AUTH_CHALLENGE:
    case KVX_WIRE_AUTH_OK:
        return KVX_WIRE_AUTH_NONCE;
    case KVX_WIRE_AUTH_PROOF:
        return KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC;
    case KVX_WIRE_NOTIFY:
        return KVX_WIRE_NOTIFY_FIXED + KVX_NOTIFY_NAME_MAX + KVX_NOTIFY_MSG_MAX;
    case KVX_WIRE_MEM_TABLE:
        return KVX_WIRE_MAX_BODY;
    case KVX_WIRE_SHM_OFFER:
        return KVX_WIRE_SHM_OFFER_SIZE;
    case KVX_WIRE_SHM_ACCEPT:
        return KVX_WIRE_SHM_ACCEPT_SIZE;
    default:
        return 0;
    }
}

kvx_status_t kvx_wire_decode_hdr(const uint8_t *buf, size_t len, kvx_wire_hdr_t *hdr)
{
    if (len < KVX_WIRE_HDR_SIZE) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "frame header truncated: %zu of %d bytes", len,
                        KVX_WIRE_HDR_SIZE);
    }
    uint32_t magic = get_u32(buf);
    if (magic != KVX_WIRE_MAGIC) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "bad frame magic 0x%08x", magic);
    }
    if (buf[4] != KVX_WIRE_VERSION) {
        return KVX_FAIL(KVX_ERR_VERSION_MISMATCH, "frame version %u, expected %u", buf[4],
                        KVX_WIRE_VERSION);
    }
    uint8_t type = buf[5];
    if (type < 1 || type > KVX_WIRE_TYPE_MAX) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "unknown frame type %u", type);
    }
    uint16_t flags = get_u16(buf + 6);
    uint16_t allowed = 0;
    if (type == KVX_WIRE_READ_REQ || type == KVX_WIRE_WRITE_REQ) {
        allowed = KVX_WIRE_FLAG_TAG | KVX_WIRE_FLAG_CSUM;
    } else if (type == KVX_WIRE_READ_RESP) {
        allowed = KVX_WIRE_FLAG_CSUM;
    } else if (type == KVX_WIRE_HELLO_ACK) {
        allowed = KVX_WIRE_FLAG_AUTH;
    }
    if ((flags & ~allowed) != 0 || get_u32(buf + 12) != 0) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "frame type %u: reserved bits set", type);
    }
    uint64_t body_len = get_u64(buf + 24);
    if (body_len > kvx_wire_max_body(type)) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "frame type %u: body of %llu bytes exceeds %zu", type,
                        (unsigned long long)body_len, kvx_wire_max_body(type));
    }
    hdr->type = type;
    hdr->flags = flags;
    hdr->status = (int32_t)get_u32(buf + 8);
    hdr->seq = get_u64(buf + 16);
    hdr->body_len = body_len;
    return KVX_OK;
}

size_t kvx_wire_descs_size(uint32_t count)
{
    return KVX_WIRE_DESCS_HDR_SIZE + (size_t)count * KVX_WIRE_DESC_SIZE;
}

void kvx_wire_encode_descs_hdr(uint8_t *out, uint32_t count)
{
    put_u32(out, count);
    put_u32(out + 4, 0);
}

void kvx_wire_encode_desc(uint8_t *out, uint64_t addr, uint64_t len)
{
    put_u64(out, addr);
    put_u64(out + 8, len);
}

kvx_status_t kvx_wire_decode_descs(const uint8_t *body, size_t len, kvx_wire_desc_t *descs,
                                   uint32_t *count_p, uint64_t *total_p)
{
    if (len < KVX_WIRE_DESCS_HDR_SIZE) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor list truncated (%zu bytes)", len);
    }
    uint32_t count = get_u32(body);
    if (count == 0 || count > KVX_WIRE_MAX_FRAME_DESCS) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor count %u outside 1..%d", count,
                        KVX_WIRE_MAX_FRAME_DESCS);
    }
    if (get_u32(body + 4) != 0) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor list: reserved bits set");
    }
    if (len != kvx_wire_descs_size(count)) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor list: %u entries need %zu bytes, got %zu",
                        count, kvx_wire_descs_size(count), len);
    }
    uint64_t total = 0;
    const uint8_t *p = body + KVX_WIRE_DESCS_HDR_SIZE;
    for (uint32_t i = 0; i < count; i++, p += KVX_WIRE_DESC_SIZE) {
        uint64_t addr = get_u64(p);
        uint64_t n = get_u64(p + 8);
        if (n == 0 || addr + n < addr) {
            return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor %u: bad range 0x%llx+%llu", i,
                            (unsigned long long)addr, (unsigned long long)n);
        }
        if (n > KVX_WIRE_MAX_PAYLOAD - total) {
            return KVX_FAIL(KVX_ERR_PROTOCOL, "descriptor list: payload exceeds %llu bytes",
                            (unsigned long long)KVX_WIRE_MAX_PAYLOAD);
        }
        total += n;
        descs[i].addr = addr;
        descs[i].len = n;
    }
    *count_p = count;
    *total_p = total;
    return KVX_OK;
}

void kvx_wire_encode_u64(uint8_t *out, uint64_t v)
{
    put_u64(out, v);
}

uint64_t kvx_wire_decode_u64(const uint8_t *in)
{
    return get_u64(in);
}

kvx_status_t kvx_wire_decode_read_resp(const uint8_t *body, size_t len, uint64_t *payload_p)
{
    /* 16 with a checksum (KVX_WIRE_FLAG_CSUM); the caller reads it. */
    if (len != 8 && len != 16) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "read response body of %zu bytes, expected 8 or 16", len);
    }
    uint64_t payload = get_u64(body);
    if (payload > KVX_WIRE_MAX_PAYLOAD) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "read response payload %llu too large",
                        (unsigned long long)payload);
    }
    *payload_p = payload;
    return KVX_OK;
}

size_t kvx_wire_hello_size(size_t name_len)
{
    return KVX_WIRE_HELLO_FIXED + name_len;
}

void kvx_wire_encode_hello(uint8_t *out, uint64_t instance, const char *name, size_t name_len)
{
    put_u64(out, instance);
    put_u16(out + 8, (uint16_t)name_len);
    put_u16(out + 10, 0);
    put_u32(out + 12, 0);
    memcpy(out + KVX_WIRE_HELLO_FIXED, name, name_len);
}

void kvx_wire_hello_set_silence(uint8_t *body, uint32_t silence_ms)
{
    put_u32(body + 12, silence_ms);
}

uint32_t kvx_wire_hello_silence(const uint8_t *body)
{
    return get_u32(body + 12);
}

static int printable(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

kvx_status_t kvx_wire_decode_hello(const uint8_t *body, size_t len, uint64_t *instance_p,
                                   char name[KVX_ENGINE_NAME_MAX])
{
    if (len < KVX_WIRE_HELLO_FIXED) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "hello truncated (%zu bytes)", len);
    }
    size_t name_len = get_u16(body + 8);
    uint32_t silence = get_u32(body + 12);
    if (get_u16(body + 10) != 0) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "hello: reserved bits set");
    }
    if (silence != 0 && (silence < KVX_WIRE_SILENCE_MIN_MS || silence > KVX_WIRE_SILENCE_MAX_MS)) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "hello: silence limit %u ms outside %u..%u", silence,
                        KVX_WIRE_SILENCE_MIN_MS, KVX_WIRE_SILENCE_MAX_MS);
    }
    if (name_len == 0 || name_len >= KVX_ENGINE_NAME_MAX ||
        len != KVX_WIRE_HELLO_FIXED + name_len) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "hello: name length %zu does not fit body of %zu",
                        name_len, len);
    }
    const char *src = (const char *)body + KVX_WIRE_HELLO_FIXED;
    if (!printable(src, name_len)) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "hello: engine name is not printable text");
    }
    *instance_p = get_u64(body);
    memcpy(name, src, name_len);
    name[name_len] = '\0';
    return KVX_OK;
}

size_t kvx_wire_notify_size(size_t name_len, size_t msg_len)
{
    return KVX_WIRE_NOTIFY_FIXED + name_len + msg_len;
}

void kvx_wire_encode_notify(uint8_t *out, const char *name, size_t name_len, const void *msg,
                            size_t msg_len)
{
    put_u16(out, (uint16_t)name_len);
    put_u16(out + 2, 0);
    put_u32(out + 4, (uint32_t)msg_len);
    memcpy(out + KVX_WIRE_NOTIFY_FIXED, name, name_len);
    if (msg_len > 0) {
        memcpy(out + KVX_WIRE_NOTIFY_FIXED + name_len, msg, msg_len);
    }
}

kvx_status_t kvx_wire_decode_notify(const uint8_t *body, size_t len, const char **name_p,
                                    size_t *name_len_p, const char **msg_p, size_t *msg_len_p)
{
    if (len < KVX_WIRE_NOTIFY_FIXED) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "notification truncated (%zu bytes)", len);
    }
    size_t name_len = get_u16(body);
    size_t msg_len = get_u32(body + 4);
    if (get_u16(body + 2) != 0) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "notification: reserved bits set");
    }
    if (name_len > KVX_NOTIFY_NAME_MAX || msg_len > KVX_NOTIFY_MSG_MAX ||
        len != KVX_WIRE_NOTIFY_FIXED + name_len + msg_len) {
        return KVX_FAIL(KVX_ERR_PROTOCOL,
                        "notification: name %zu + message %zu bytes do not fit body of %zu",
                        name_len, msg_len, len);
    }
    const char *name = (const char *)body + KVX_WIRE_NOTIFY_FIXED;
    if (memchr(name, '\0', name_len) != NULL) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "notification: NUL inside the name");
    }
    *name_p = name;
    *name_len_p = name_len;
    *msg_p = name + name_len;
    *msg_len_p = msg_len;
    return KVX_OK;
}

void kvx_wire_encode_shm(uint8_t *out, uint8_t type, const kvx_wire_shm_t *shm)
{
    put_u64(out, shm->boot_id);
    put_u32(out + 8, shm->pid);
    if (type == KVX_WIRE_SHM_OFFER) {
        put_u32(out + 12, shm->uid);
        return;
    }
    put_u32(out + 12, shm->table_fd);
    put_u32(out + 16, shm->pins_fd);
    put_u32(out + 20, 0);
    put_u64(out + 24, shm->probe);
}

kvx_status_t kvx_wire_decode_shm(const uint8_t *body, size_t len, uint8_t type, kvx_wire_shm_t *shm)
{
    size_t want = (type == KVX_WIRE_SHM_OFFER) ? KVX_WIRE_SHM_OFFER_SIZE : KVX_WIRE_SHM_ACCEPT_SIZE;
    if (len != want) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "shm frame type %u: body of %zu bytes, expected %zu",
                        type, len, want);
    }
    memset(shm, 0, sizeof(*shm));
    shm->boot_id = get_u64(body);
    shm->pid = get_u32(body + 8);
    if (type == KVX_WIRE_SHM_OFFER) {
        shm->uid = get_u32(body + 12);
        return KVX_OK;
    }
    shm->table_fd = get_u32(body + 12);
    shm->pins_fd = get_u32(body + 16);
    shm->probe = get_u64(body + 24);
    if (get_u32(body + 20) != 0 || shm->pid == 0 || shm->table_fd > INT32_MAX ||
        shm->pins_fd > INT32_MAX) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "shm accept: malformed");
    }
    return KVX_OK;
}

size_t kvx_wire_mem_table_size(uint32_t count)
{
    return 8 + (size_t)count * KVX_WIRE_MEM_ENTRY_SIZE;
}

void kvx_wire_encode_mem_table(uint8_t *out, const kvx_wire_mem_entry_t *entries, uint32_t count)
{
    put_u32(out, count);
    put_u32(out + 4, 0);
    uint8_t *p = out + 8;
    for (uint32_t i = 0; i < count; i++, p += KVX_WIRE_MEM_ENTRY_SIZE) {
        put_u64(p, entries[i].addr);
        put_u64(p + 8, entries[i].len);
        put_u64(p + 16, entries[i].tag);
        p[24] = entries[i].mem_type;
        p[25] = entries[i].access;
        memset(p + 26, 0, 6);
    }
}

kvx_status_t kvx_wire_decode_mem_table(const uint8_t *body, size_t len,
                                       kvx_wire_mem_entry_t *entries, uint32_t max,
                                       uint32_t *count_p)
{
    if (len < 8) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "memory table truncated (%zu bytes)", len);
    }
    uint32_t count = get_u32(body);
    if (count > KVX_WIRE_MAX_MEM_ENTRIES || get_u32(body + 4) != 0 ||
        len != kvx_wire_mem_table_size(count)) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "memory table: %u entries do not fit body of %zu", count,
                        len);
    }
    const uint8_t *p = body + 8;
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < count; i++, p += KVX_WIRE_MEM_ENTRY_SIZE) {
        kvx_wire_mem_entry_t e = {.addr = get_u64(p),
                                  .len = get_u64(p + 8),
                                  .tag = get_u64(p + 16),
                                  .mem_type = p[24],
                                  .access = p[25]};
        static const uint8_t zero[6];
        if (e.len == 0 || e.addr + e.len < e.addr || e.mem_type > KVX_MEM_DEVICE ||
            e.access > KVX_MEM_ACCESS_READ_ONLY || memcmp(p + 26, zero, 6) != 0) {
            return KVX_FAIL(KVX_ERR_PROTOCOL, "memory table entry %u is malformed", i);
        }
        if (i > 0 && e.addr < prev_end) {
            return KVX_FAIL(KVX_ERR_PROTOCOL, "memory table entry %u unsorted or overlapping", i);
        }
        prev_end = e.addr + e.len;
        if (i < max) {
            entries[i] = e;
        }
    }
    *count_p = count;
    return KVX_OK;
}

kvx_status_t kvx_wire_check_auth(uint8_t type, int32_t status, size_t len)
{
    size_t want = 0;
    switch (type) {
    case KVX_WIRE_AUTH_CHALLENGE:
        want = KVX_WIRE_AUTH_NONCE;
        break;
    case KVX_WIRE_AUTH_PROOF:
        want = KVX_WIRE_AUTH_NONCE + KVX_WIRE_AUTH_MAC;
        break;
    case KVX_WIRE_AUTH_OK:
        want = status == 0 ? KVX_WIRE_AUTH_MAC : 0;
        break;
    default:
        return KVX_FAIL(KVX_ERR_PROTOCOL, "frame type %u is not an authentication frame", type);
    }
    if (len != want) {
        return KVX_FAIL(KVX_ERR_PROTOCOL, "auth frame type %u: body of %zu bytes, expected %zu",
                        type, len, want);
    }
    return KVX_OK;
}

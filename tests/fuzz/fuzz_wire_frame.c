/*
 * A byte stream of frames, as conn_parse() in src/transport/tcp.c reads it:
 * decode a header from what is buffered, take body_len bytes, hand them to
 * the check the type selects in handle_request() / handle_response() /
 * handle_auth_*() (the tag and the WRITE_REQ checksum of a READ_REQ /
 * WRITE_REQ first; MEM_TABLE with the room tcp.c allocates from the
 * announced count; kvx_wire_check_auth for AUTH_*), skip a WRITE_REQ or
 * READ_RESP payload, and go on with the next frame, until tcp.c would close
 * the connection. Both directions are accepted here, and no handshake state
 * is kept: the direction and order checks are tcp.c's own.
 */
/* fuzz.sh: -max_len=8192 */
#include "fuzz.h"
#include "wire_checks.h"

/* The status a response keeps on the initiator (tcp.c's whitelist); any
 * other becomes KVX_ERR_PROTOCOL. */
static int32_t kept_status(const kvx_wire_hdr_t *h)
{
    int32_t st = h->status;
    if (st == KVX_OK || st == KVX_ERR_REMOTE_ACCESS || st == KVX_ERR_NO_MEMORY ||
        (st == KVX_ERR_REMOTE_FULL && h->type == KVX_WIRE_NOTIFY_ACK) ||
        (st == KVX_ERR_CHECKSUM && h->type == KVX_WIRE_WRITE_ACK)) {
        return st;
    }
    return KVX_ERR_PROTOCOL;
}

/* READ_REQ / WRITE_REQ: [tag] [WRITE_REQ checksum] descriptors. */
static int request(const kvx_wire_hdr_t *h, const uint8_t *b, size_t len, uint64_t *payload_p)
{
    uint64_t total = 0;
    if (h->flags & KVX_WIRE_FLAG_TAG) {
        if (len < 8) {
            return -1; /* too short for its tag */
        }
        b += 8;
        len -= 8;
    }
    /* A READ_REQ with the flag only asks for a checksum. */
    if ((h->flags & KVX_WIRE_FLAG_CSUM) && h->type == KVX_WIRE_WRITE_REQ) {
        if (len < 8) {
            return -1; /* too short for its checksum */
        }
        b += 8;
        len -= 8;
    }
    if (fuzz_check_descs(b, len, &total) != KVX_OK) {
        return -1;
    }
    *payload_p = h->type == KVX_WIRE_WRITE_REQ ? total : 0;
    return 0;
}

static int read_resp(const kvx_wire_hdr_t *h, const uint8_t *b, size_t len, uint64_t *payload_p)
{
    uint64_t n = 0;
    if (fuzz_check_read_resp(b, len, &n) != KVX_OK) {
        return -1;
    }
    if (kept_status(h) != KVX_OK) {
        return n == 0 ? 0 : -1; /* a refusal announces no payload */
    }
    /* 16 bytes (the checksum after the length) exactly with the checksum
     * flag; tcp.c also wants the flag to match the request's. */
    if (len != ((h->flags & KVX_WIRE_FLAG_CSUM) ? 16u : 8u)) {
        return -1;
    }
    *payload_p = n;
    return 0;
}

static int mem_table(const kvx_wire_hdr_t *h, const uint8_t *b, size_t len)
{
    int32_t st = kept_status(h);
    if (st != KVX_OK) {
        return st == KVX_ERR_PROTOCOL ? -1 : 0; /* body not looked at */
    }
    if (len < 8) {
        return -1;
    }
    uint32_t announced = (uint32_t)fuzz_le(b, 4);
    if (announced > KVX_WIRE_MAX_MEM_ENTRIES) {
        return -1;
    }
    return fuzz_check_mem_table(b, len, announced) == KVX_OK ? 0 : -1;
}

/* AUTH_*: fuzz_check_auth also checks that an accepted body holds the
 * nonce and mac tcp.c copies out of it. */
static int auth(const kvx_wire_hdr_t *h, size_t len)
{
    if (fuzz_check_auth(h->type, h->status, len) != KVX_OK) {
        return -1;
    }
    /* A refused AUTH_OK ends the attempt. */
    return (h->type == KVX_WIRE_AUTH_OK && h->status != KVX_OK) ? -1 : 0;
}

/* One whole frame: -1 where tcp.c closes the connection, else 0 with the
 * length of the payload that follows in @p payload_p. */
static int frame(const kvx_wire_hdr_t *h, const uint8_t *b, size_t len, uint64_t *payload_p)
{
    *payload_p = 0;
    switch (h->type) {
    case KVX_WIRE_HELLO:
        return fuzz_check_hello(b, len) == KVX_OK ? 0 : -1;
    case KVX_WIRE_HELLO_ACK:
        /* A refusal ends the attempt without the body being looked at. */
        if (h->status != KVX_OK) {
            return -1;
        }
        return fuzz_check_hello(b, len) == KVX_OK ? 0 : -1;
    case KVX_WIRE_READ_REQ:
    case KVX_WIRE_WRITE_REQ:
        return request(h, b, len, payload_p);
    case KVX_WIRE_READ_RESP:
        return read_resp(h, b, len, payload_p);
    case KVX_WIRE_NOTIFY:
        return fuzz_check_notify(b, len) == KVX_OK ? 0 : -1;
    case KVX_WIRE_MEM_TABLE:
        return mem_table(h, b, len);
    case KVX_WIRE_SHM_OFFER:
        return fuzz_check_shm(b, len, h->type) == KVX_OK ? 0 : -1;
    case KVX_WIRE_SHM_ACCEPT:
        /* A refusal's (zero) body is not looked at. */
        if (h->status != KVX_OK) {
            return 0;
        }
        return fuzz_check_shm(b, len, h->type) == KVX_OK ? 0 : -1;
    case KVX_WIRE_AUTH_CHALLENGE:
    case KVX_WIRE_AUTH_PROOF:
    case KVX_WIRE_AUTH_OK:
        return auth(h, len);
    case KVX_WIRE_WRITE_ACK:
    case KVX_WIRE_NOTIFY_ACK:
    case KVX_WIRE_MEM_QUERY:
    case KVX_WIRE_KEEPALIVE:
    case KVX_WIRE_KEEPALIVE_BACK:
        FUZZ_CHECK(len == 0); /* the header check allows no body */
        return 0;
    default:
        /* The header check passes only the types of the protocol version
         * wire_checks.c knows; a new one needs its case above. */
        FUZZ_CHECK(!"header check passed a type with no body check");
        return -1;
    }
}

/* With @p writable (then @p data itself), every header's version byte is
 * first set to this version's. */
static void run(const uint8_t *data, size_t size, uint8_t *writable)
{
    size_t off = 0;
    while (size - off >= KVX_WIRE_HDR_SIZE) {
        kvx_wire_hdr_t h;
        if (writable != NULL) {
            writable[off + 4] = KVX_WIRE_VERSION;
        }
        if (fuzz_check_hdr(data + off, size - off, &h) != KVX_OK) {
            break; /* tcp.c closes the connection */
        }
        FUZZ_CHECK(h.type >= 1 && h.type <= KVX_WIRE_TYPE_MAX);
        FUZZ_CHECK(h.body_len <= KVX_WIRE_MAX_BODY);
        off += KVX_WIRE_HDR_SIZE;
        if (h.body_len > size - off) {
            break; /* tcp.c waits for the rest */
        }
        /* The checks decode exactly sized copies of the body. */
        uint64_t payload = 0;
        if (frame(&h, data + off, (size_t)h.body_len, &payload) != 0) {
            break;
        }
        off += (size_t)h.body_len;
        FUZZ_CHECK(payload <= KVX_WIRE_MAX_PAYLOAD);
        if (payload > size - off) {
            break;
        }
        off += (size_t)payload;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, NULL);
    /* Streams of another protocol version (the corpus after a version
     * change) are also tried as streams of this one. */
    if (size >= KVX_WIRE_HDR_SIZE && data[4] != KVX_WIRE_VERSION) {
        uint8_t *copy = fuzz_dup(data, size);
        run(copy, size, copy);
        free(copy);
    }
    return 0;
}

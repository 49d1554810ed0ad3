/*
 * The kvx wire protocol, version 2 (docs/protocol.md). Every frame is a
 * 32-byte header, a structured body of body_len bytes, and for WRITE_REQ and
 * READ_RESP a raw payload whose length follows from the body. All integers
 * are little-endian. These functions only encode and decode bytes: they
 * check every field of what a peer sent and never trust a length.
 */
#ifndef KVX_TRANSPORT_WIRE_H
#define KVX_TRANSPORT_WIRE_H

#include <kvx/engine.h>
#include <kvx/status.h>
#include <stddef.h>
#include <stdint.h>

#define KVX_WIRE_MAGIC    0x3158564bu /* "KVX1" */
#define KVX_WIRE_VERSION  2           /* 2: keepalives, authentication, checksums */
#define KVX_WIRE_HDR_SIZE 32

/* Most descriptors in one READ_REQ or WRITE_REQ frame; longer transfers
 * are split into several frames. */
#define KVX_WIRE_MAX_FRAME_DESCS 4096
/* Most registrations one MEM_TABLE reports. */
#define KVX_WIRE_MAX_MEM_ENTRIES 65536
/* A side that has sent nothing for this long sends a KEEPALIVE frame, so
 * that its peer can tell a quiet link from a dead one (peer_timeout_ms). */
#define KVX_WIRE_KEEPALIVE_MS 100
/* Largest payload of one frame (a sanity bound, 1 TiB). */
#define KVX_WIRE_MAX_PAYLOAD (1ull << 40)
/* Largest payload of a checksummed frame: each is hashed in one go on an
 * I/O thread, which must not stall for long (64 MiB: a few ms). */
#define KVX_WIRE_MAX_CSUM_PAYLOAD (64ull << 20)

typedef enum kvx_wire_type {
    KVX_WIRE_HELLO = 1,
    KVX_WIRE_HELLO_ACK = 2,
    KVX_WIRE_READ_REQ = 3,
    KVX_WIRE_READ_RESP = 4,
    KVX_WIRE_WRITE_REQ = 5,
    KVX_WIRE_WRITE_ACK = 6,
    KVX_WIRE_NOTIFY = 7,
    KVX_WIRE_NOTIFY_ACK = 8,
    KVX_WIRE_MEM_QUERY = 9,
    KVX_WIRE_MEM_TABLE = 10,
    KVX_WIRE_SHM_OFFER = 11,
    KVX_WIRE_SHM_ACCEPT = 12,
    KVX_WIRE_KEEPALIVE = 13,      /* initiator -> target, no answer */
    KVX_WIRE_KEEPALIVE_BACK = 14, /* target -> initiator, no answer */
    KVX_WIRE_AUTH_CHALLENGE = 15, /* target -> initiator: nonce */
    KVX_WIRE_AUTH_PROOF = 16,     /* initiator -> target: nonce, mac */
    KVX_WIRE_AUTH_OK = 17,        /* target -> initiator: mac, or a refusal */
    KVX_WIRE_TYPE_MAX = 17
} kvx_wire_type_t;

/* Header flag of READ_REQ/WRITE_REQ: the body starts with a u64 tag, and
 * every range must lie in registrations carrying that tag. */
#define KVX_WIRE_FLAG_TAG 0x1
/* Header flag of READ_REQ/WRITE_REQ/READ_RESP: an XXH3-64 of the payload
 * travels with it (WRITE_REQ: a u64 after the tag; READ_RESP: a u64 after
 * the payload length; READ_REQ: asks for it). */
#define KVX_WIRE_FLAG_CSUM 0x2
/* Header flag of HELLO_ACK: the target holds a shared secret, and an
 * AUTH_CHALLENGE follows; the link is usable only after AUTH_OK. */
#define KVX_WIRE_FLAG_AUTH 0x4

typedef struct kvx_wire_hdr {
    uint8_t type;
    uint16_t flags;
    int32_t status; /* kvx_status_t in responses, 0 in requests */
    uint64_t seq;   /* chosen by the requester, echoed in the response */
    uint64_t body_len;
} kvx_wire_hdr_t;

typedef struct kvx_wire_desc {
    uint64_t addr;
    uint64_t len;
} kvx_wire_desc_t;

typedef struct kvx_wire_mem_entry {
    uint64_t addr;
    uint64_t len;
    uint64_t tag;
    uint8_t mem_type; /* kvx_mem_type_t */
    uint8_t access;   /* kvx_mem_access_t */
} kvx_wire_mem_entry_t;

#define KVX_WIRE_DESC_SIZE      16
#define KVX_WIRE_DESCS_HDR_SIZE 8
#define KVX_WIRE_MEM_ENTRY_SIZE 32
#define KVX_WIRE_HELLO_FIXED    16
#define KVX_WIRE_NOTIFY_FIXED   8

/* Largest body any frame may carry (MEM_TABLE). */
#define KVX_WIRE_MAX_BODY (8 + (size_t)KVX_WIRE_MEM_ENTRY_SIZE * KVX_WIRE_MAX_MEM_ENTRIES)

/* Header */
void kvx_wire_encode_hdr(uint8_t out[KVX_WIRE_HDR_SIZE], const kvx_wire_hdr_t *hdr);
/* Checks magic, version, type, flags, reserved bits and body_len bounds
 * for the type. KVX_ERR_VERSION_MISMATCH if only the version is wrong. */
kvx_status_t kvx_wire_decode_hdr(const uint8_t *buf, size_t len, kvx_wire_hdr_t *hdr);
/* Largest body_len allowed for a frame type (0 for an unknown type). */
size_t kvx_wire_max_body(uint8_t type);

/* READ_REQ / WRITE_REQ body: [u64 tag if KVX_WIRE_FLAG_TAG], u32 count,
 * u32 zero, count x {u64 addr, u64 len}. The functions below handle the part
 * from count on. */
size_t kvx_wire_descs_size(uint32_t count);
void kvx_wire_encode_descs_hdr(uint8_t *out, uint32_t count);
void kvx_wire_encode_desc(uint8_t *out, uint64_t addr, uint64_t len);
/* Decodes into @p descs (room for KVX_WIRE_MAX_FRAME_DESCS); checks the count
 * against body_len, every len > 0, no address wrap, and the total. */
kvx_status_t kvx_wire_decode_descs(const uint8_t *body, size_t len, kvx_wire_desc_t *descs,
                                   uint32_t *count_p, uint64_t *total_p);

/* READ_RESP body: u64 payload_len */
void kvx_wire_encode_u64(uint8_t *out, uint64_t v);
uint64_t kvx_wire_decode_u64(const uint8_t *in);
kvx_status_t kvx_wire_decode_read_resp(const uint8_t *body, size_t len, uint64_t *payload_p);

/* HELLO / HELLO_ACK body: u64 instance, u16 name_len, u16 0, u32 silence_ms,
 * name. silence_ms: the sender's peer_timeout_ms, so that both ends of a link
 * use the smaller; 0 says nothing, else KVX_WIRE_SILENCE_MIN_MS..MAX_MS. */
#define KVX_WIRE_SILENCE_MIN_MS 500u
#define KVX_WIRE_SILENCE_MAX_MS 3600000u
size_t kvx_wire_hello_size(size_t name_len);
/* Writes silence_ms 0; kvx_wire_hello_set_silence() states one. */
void kvx_wire_encode_hello(uint8_t *out, uint64_t instance, const char *name, size_t name_len);
void kvx_wire_hello_set_silence(uint8_t *body, uint32_t silence_ms);
/* @p name gets a NUL-terminated copy (room for KVX_ENGINE_NAME_MAX). */
kvx_status_t kvx_wire_decode_hello(const uint8_t *body, size_t len, uint64_t *instance_p,
                                   char name[KVX_ENGINE_NAME_MAX]);
/* silence_ms of a body kvx_wire_decode_hello() accepted. */
uint32_t kvx_wire_hello_silence(const uint8_t *body);

/* NOTIFY body: u16 name_len, u16 0, u32 msg_len, name, msg */
size_t kvx_wire_notify_size(size_t name_len, size_t msg_len);
void kvx_wire_encode_notify(uint8_t *out, const char *name, size_t name_len, const void *msg,
                            size_t msg_len);
/* Pointers into @p body; name has no NUL inside it. */
kvx_status_t kvx_wire_decode_notify(const uint8_t *body, size_t len, const char **name_p,
                                    size_t *name_len_p, const char **msg_p, size_t *msg_len_p);

/* SHM_OFFER body (16): u64 boot id hash, u32 pid, u32 uid.
 * SHM_ACCEPT body (32): u64 boot id hash, u32 pid, u32 table fd, u32 pins fd,
 * u32 0, u64 probe address. The same-host path (shm.h) is used only if both
 * sides run on one boot of one kernel. */
#define KVX_WIRE_SHM_OFFER_SIZE  16
#define KVX_WIRE_SHM_ACCEPT_SIZE 32

typedef struct kvx_wire_shm {
    uint64_t boot_id;
    uint32_t pid;
    uint32_t uid;      /* offer */
    uint32_t table_fd; /* accept */
    uint32_t pins_fd;  /* accept */
    uint64_t probe;    /* accept */
} kvx_wire_shm_t;

void kvx_wire_encode_shm(uint8_t *out, uint8_t type, const kvx_wire_shm_t *shm);
kvx_status_t kvx_wire_decode_shm(const uint8_t *body, size_t len, uint8_t type,
                                 kvx_wire_shm_t *shm);

/* Authentication (docs/protocol.md): CHALLENGE body = 32-byte nonce;
 * PROOF body = 32-byte nonce, 32-byte HMAC-SHA256; AUTH_OK body = 32-byte
 * HMAC-SHA256, or empty with a non-OK status. */
#define KVX_WIRE_AUTH_NONCE 32
#define KVX_WIRE_AUTH_MAC   32

/* Checks the body size of an AUTH_* frame of @p type and @p status. */
kvx_status_t kvx_wire_check_auth(uint8_t type, int32_t status, size_t len);

/* MEM_TABLE body: u32 count, u32 0, count x 32-byte entries */
size_t kvx_wire_mem_table_size(uint32_t count);
void kvx_wire_encode_mem_table(uint8_t *out, const kvx_wire_mem_entry_t *entries, uint32_t count);
/* Decodes up to @p max entries; checks types, access, no wrap, sorted and
 * non-overlapping. @p count_p gets the number in the frame. */
kvx_status_t kvx_wire_decode_mem_table(const uint8_t *body, size_t len,
                                       kvx_wire_mem_entry_t *entries, uint32_t max,
                                       uint32_t *count_p);

#endif

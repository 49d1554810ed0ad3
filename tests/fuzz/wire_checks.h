/*
 * One checker per wire decoder, shared by the per-decoder targets and the
 * whole-frame target. Each runs the decoder on an exactly sized copy, compares
 * its verdict with a reference predicate written from docs/protocol.md, and on
 * success checks the outputs against the input bytes and that the encoder
 * gives the same bytes back (every version 2 body is canonical: reserved
 * fields must be 0 and every length is exact).
 */
#ifndef KVX_TESTS_FUZZ_WIRE_CHECKS_H
#define KVX_TESTS_FUZZ_WIRE_CHECKS_H

#include "transport/wire.h"

kvx_status_t fuzz_check_hdr(const uint8_t *buf, size_t len, kvx_wire_hdr_t *hdr);
/* The part of a READ_REQ / WRITE_REQ body from count on. */
kvx_status_t fuzz_check_descs(const uint8_t *body, size_t len, uint64_t *total_p);
kvx_status_t fuzz_check_read_resp(const uint8_t *body, size_t len, uint64_t *payload_p);
kvx_status_t fuzz_check_hello(const uint8_t *body, size_t len);
kvx_status_t fuzz_check_notify(const uint8_t *body, size_t len);
/* @p type: KVX_WIRE_SHM_OFFER or KVX_WIRE_SHM_ACCEPT. */
kvx_status_t fuzz_check_shm(const uint8_t *body, size_t len, uint8_t type);
/* Decodes into an array of exactly @p max entries (ASan sees a write past it). */
kvx_status_t fuzz_check_mem_table(const uint8_t *body, size_t len, uint32_t max);
/* kvx_wire_check_auth: the body size of an AUTH_* frame (its bytes, a nonce
 * and MACs, are not decoded). */
kvx_status_t fuzz_check_auth(uint8_t type, int32_t status, size_t len);

#endif

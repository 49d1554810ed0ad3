/*
 * Shared-secret authentication of a link (docs/protocol.md): both ends
 * prove they hold the secret with HMAC-SHA256 over fresh nonces and both
 * engine instance ids, so a proof is bound to one handshake between two
 * engines and cannot be replayed or reflected. The crypto is OpenSSL's.
 */
#ifndef KVX_TRANSPORT_AUTH_H
#define KVX_TRANSPORT_AUTH_H

#include <kvx/status.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/wire.h"

typedef enum kvx_auth_role { KVX_AUTH_INITIATOR = 0, KVX_AUTH_TARGET = 1 } kvx_auth_role_t;

/* Fill @p nonce from the system's CSPRNG. */
kvx_status_t kvx_auth_nonce(uint8_t nonce[KVX_WIRE_AUTH_NONCE]);

/* The proof of @p role: HMAC-SHA256(secret, label(role) | peer nonce |
 * own nonce | own instance | peer instance), integers little-endian. */
kvx_status_t kvx_auth_mac(const uint8_t *secret, size_t secret_len, kvx_auth_role_t role,
                          const uint8_t peer_nonce[KVX_WIRE_AUTH_NONCE],
                          const uint8_t own_nonce[KVX_WIRE_AUTH_NONCE], uint64_t own_instance,
                          uint64_t peer_instance, uint8_t mac[KVX_WIRE_AUTH_MAC]);

/* Constant-time comparison of two MACs: 1 if equal. */
int kvx_auth_equal(const uint8_t a[KVX_WIRE_AUTH_MAC], const uint8_t b[KVX_WIRE_AUTH_MAC]);

/* Erase a secret before freeing it. */
void kvx_auth_erase(void *p, size_t len);

#endif

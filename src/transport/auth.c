/* Shared-secret authentication: HMAC-SHA256 and nonces from OpenSSL. */
#include "transport/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <string.h>

#include "util/error.h"

kvx_status_t kvx_auth_nonce(uint8_t nonce[KVX_WIRE_AUTH_NONCE])
{
    if (RAND_bytes(nonce, KVX_WIRE_AUTH_NONCE) != 1) {
        return KVX_FAIL(KVX_ERR_INTERNAL, "auth: no random bytes for a nonce");
    }
    return KVX_OK;
}

static void put_u64_le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

kvx_status_t kvx_auth_mac(const uint8_t *secret, size_t secret_len, kvx_auth_role_t role,
                          const uint8_t peer_nonce[KVX_WIRE_AUTH_NONCE],
                          const uint8_t own_nonce[KVX_WIRE_AUTH_NONCE], uint64_t own_instance,
                          uint64_t peer_instance, uint8_t mac[KVX_WIRE_AUTH_MAC])
{
    /* Distinct labels: a target's proof is never a valid initiator proof. */
    static const char label_init[16] = "kvx-auth-v1-init";
    static const char label_target[16] = "kvx-auth-v1-targ";
    uint8_t msg[16 + 2 * KVX_WIRE_AUTH_NONCE + 16];
    memcpy(msg, role == KVX_AUTH_INITIATOR ? label_init : label_target, 16);
    memcpy(msg + 16, peer_nonce, KVX_WIRE_AUTH_NONCE);
    memcpy(msg + 16 + KVX_WIRE_AUTH_NONCE, own_nonce, KVX_WIRE_AUTH_NONCE);
    put_u64_le(msg + 16 + 2 * KVX_WIRE_AUTH_NONCE, own_instance);
    put_u64_le(msg + 24 + 2 * KVX_WIRE_AUTH_NONCE, peer_instance);
    unsigned int len = KVX_WIRE_AUTH_MAC;
    if (HMAC(EVP_sha256(), secret, (int)secret_len, msg, sizeof(msg), mac, &len) == NULL ||
        len != KVX_WIRE_AUTH_MAC) {
        return KVX_FAIL(KVX_ERR_INTERNAL, "auth: HMAC-SHA256 failed");
    }
    return KVX_OK;
}

int kvx_auth_equal(const uint8_t a[KVX_WIRE_AUTH_MAC], const uint8_t b[KVX_WIRE_AUTH_MAC])
{
    return CRYPTO_memcmp(a, b, KVX_WIRE_AUTH_MAC) == 0;
}

void kvx_auth_erase(void *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
    }
}

/* kvx_wire_decode_hdr on any bytes (the decoder is given all it has, as
 * tcp.c gives it whatever is buffered). An input of another protocol
 * version is also tried as one of this version, so that the corpus keeps
 * reaching past the version check after KVX_WIRE_VERSION changes.
 * kvx_wire_check_auth is fed the type, status and body_len fields of every
 * input of header size, whatever the header check says: it takes only those
 * three values, and so sees every type, status and length. */
/* fuzz.sh: -max_len=64 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_hdr(data, size, NULL);
    if (size > 4 && data[4] != KVX_WIRE_VERSION) {
        uint8_t *copy = fuzz_dup(data, size);
        copy[4] = KVX_WIRE_VERSION;
        fuzz_check_hdr(copy, size, NULL);
        free(copy);
    }
    if (size >= KVX_WIRE_HDR_SIZE) {
        fuzz_check_auth(data[5], (int32_t)fuzz_le(data + 8, 4), (size_t)fuzz_le(data + 24, 8));
    }
    return 0;
}

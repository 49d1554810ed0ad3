/* kvx_wire_decode_shm: the same bytes as an SHM_OFFER body and as an
 * SHM_ACCEPT body. */
/* fuzz.sh: -max_len=48 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_shm(data, size, KVX_WIRE_SHM_OFFER);
    fuzz_check_shm(data, size, KVX_WIRE_SHM_ACCEPT);
    return 0;
}

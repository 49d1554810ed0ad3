/* kvx_wire_decode_read_resp: the READ_RESP body. */
/* fuzz.sh: -max_len=16 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_read_resp(data, size, NULL);
    return 0;
}

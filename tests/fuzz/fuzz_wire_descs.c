/* kvx_wire_decode_descs: the descriptor list of READ_REQ / WRITE_REQ, from
 * count on. */
/* fuzz.sh: -max_len=8192 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_descs(data, size, NULL);
    return 0;
}

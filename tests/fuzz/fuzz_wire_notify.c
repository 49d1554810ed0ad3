/* kvx_wire_decode_notify: the NOTIFY body. */
/* fuzz.sh: -max_len=2100 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_notify(data, size);
    return 0;
}

/* kvx_wire_decode_hello: the HELLO / HELLO_ACK body. */
/* fuzz.sh: -max_len=128 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check_hello(data, size);
    return 0;
}

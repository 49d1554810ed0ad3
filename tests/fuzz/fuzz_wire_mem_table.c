/* kvx_wire_decode_mem_table: the MEM_TABLE body, once with room for every
 * entry the body can hold and once with room for only some (the decoder
 * must then store no more than it has room for). */
/* fuzz.sh: -max_len=4096 */
#include "fuzz.h"
#include "wire_checks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t room = size >= 8 ? (uint32_t)((size - 8) / KVX_WIRE_MEM_ENTRY_SIZE) : 0;
    fuzz_check_mem_table(data, size, room);
    fuzz_check_mem_table(data, size, room / 2);
    return 0;
}

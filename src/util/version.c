#include <kvx/version.h>

const char *kvx_version(void)
{
    return KVX_VERSION_STRING;
}

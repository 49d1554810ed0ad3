/* Consumer of an installed kvx: public headers, symbols and library agree. */
#include <kvx/kvx.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    int failures = 0;

    const char *version = kvx_version();
    if (version == NULL || strcmp(version, KVX_VERSION_STRING) != 0) {
        fprintf(stderr, "kvx_version() = \"%s\", headers say \"%s\"\n",
                version ? version : "(null)", KVX_VERSION_STRING);
        failures++;
    }

    const char *text = kvx_status_string(KVX_ERR_TIMEOUT);
    if (text == NULL || strcmp(text, "timed out") != 0) {
        fprintf(stderr, "kvx_status_string(KVX_ERR_TIMEOUT) = \"%s\", expected \"timed out\"\n",
                text ? text : "(null)");
        failures++;
    }

    if (failures != 0) {
        return 1;
    }
    printf("kvx %s: KVX_ERR_TIMEOUT -> \"%s\"\n", version, text);
    return 0;
}

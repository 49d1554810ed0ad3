#include <kvx/status.h>

#include <stdarg.h>
#include <stdio.h>

#include "util/error.h"

const char *kvx_status_string(kvx_status_t status)
{
    switch (status) {
#define KVX_STATUS_TEXT(name, value, text)                                                         \
    case KVX_##name:                                                                               \
        return text;
        KVX_STATUS_MAP(KVX_STATUS_TEXT)
#undef KVX_STATUS_TEXT
    }
    return "unknown status";
}

const char *kvx_status_name(kvx_status_t status)
{
    switch (status) {
#define KVX_STATUS_NAME(name, value, text)                                                         \
    case KVX_##name:                                                                               \
        return "KVX_" #name;
        KVX_STATUS_MAP(KVX_STATUS_NAME)
#undef KVX_STATUS_NAME
    }
    return "KVX_UNKNOWN";
}

int kvx_status_known(int status)
{
    switch (status) {
#define KVX_STATUS_KNOWN(name, value, text) case KVX_##name:
        KVX_STATUS_MAP(KVX_STATUS_KNOWN)
#undef KVX_STATUS_KNOWN
        return 1;
    }
    return 0;
}

static _Thread_local char last_error[512];

const char *kvx_last_error(void)
{
    return last_error;
}

void kvx_error_clear(void)
{
    last_error[0] = '\0';
}

void kvx_error_restore(const char *saved)
{
    snprintf(last_error, sizeof(last_error), "%s", saved);
}

kvx_status_t kvx_error_set(kvx_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(last_error) - 32) {
        snprintf(last_error + n, sizeof(last_error) - (size_t)n, " (%s)", kvx_status_name(status));
    }
    return status;
}

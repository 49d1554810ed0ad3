/* kvx: common definitions shared by every public header. */
#ifndef KVX_COMMON_H
#define KVX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define KVX_BEGIN_DECLS extern "C" {
#define KVX_END_DECLS   }
#else
#define KVX_BEGIN_DECLS
#define KVX_END_DECLS
#endif

/* Symbols are hidden by default; only KVX_API ones are exported. */
#if defined(KVX_BUILDING_LIBRARY) && defined(__GNUC__)
#define KVX_API __attribute__((visibility("default")))
#else
#define KVX_API
#endif

/** Bit n, for field masks and flags. */
#define KVX_BIT(n) (1ULL << (n))

/** Pass as a timeout to use the object's default timeout. */
#define KVX_TIMEOUT_DEFAULT 0

#endif /* KVX_COMMON_H */

/*
 * Shared bits of the fuzz targets (tests/fuzz). Each fuzz_<name>.c defines
 * LLVMFuzzerTestOneInput; with KVX_FUZZ it links libFuzzer, otherwise
 * replay.c feeds it every file of corpus/<name>/.
 */
#ifndef KVX_TESTS_FUZZ_H
#define KVX_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant that must hold for every input: abort() is what both
 * libFuzzer and the replay ctest report as a failure. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Heap copy of exactly @p n bytes, so that ASan flags any access past the
 * end (a slice of the fuzzer's buffer would hide reads into the next frame). */
static inline uint8_t *fuzz_dup(const uint8_t *src, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    FUZZ_CHECK(p != NULL);
    if (n > 0) {
        memcpy(p, src, n);
    }
    return p;
}

static inline uint64_t fuzz_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline void fuzz_put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

#endif

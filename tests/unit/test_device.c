/* Device API on the host backend: ownership checks, copies, limits, config.
 *
 * The backend is process-global. The first two tests run before anything
 * chooses it (environment selection); every later test starts from a fresh
 * kvx_device_init() with TEST_DEVICES devices and no capacity limit, and its
 * teardown checks nothing was left allocated. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <kvx/device.h>
#include <kvx/log.h>
#include <kvx/status.h>

#define TEST_DEVICES 4

static void assert_error_mentions(const char *needle)
{
    const char *detail = kvx_last_error();
    if (strstr(detail, needle) == NULL) {
        fail_msg("kvx_last_error() '%s' does not mention '%s'", detail, needle);
    }
}

static void init_host(int num_devices, size_t capacity)
{
    kvx_device_params_t params = {
        .field_mask = KVX_DEVICE_PARAM_FIELD_BACKEND | KVX_DEVICE_PARAM_FIELD_NUM_DEVICES |
                      KVX_DEVICE_PARAM_FIELD_CAPACITY,
        .backend = "host",
        .num_devices = num_devices,
        .capacity = capacity,
    };
    assert_int_equal(kvx_device_init(&params), KVX_OK);
}

static int setup_default(void **state)
{
    (void)state;
    init_host(TEST_DEVICES, 0);
    return 0;
}

/* Catches tests (or the backend) leaking device memory. */
static int teardown_check_empty(void **state)
{
    (void)state;
    int count = 0;
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    for (int device = 0; device < count; device++) {
        size_t used = 1;
        assert_int_equal(kvx_device_used(device, &used), KVX_OK);
        assert_int_equal(used, 0);
    }
    return 0;
}

static void *must_malloc(int device, size_t size)
{
    void *ptr = NULL;
    assert_int_equal(kvx_device_malloc(device, size, &ptr), KVX_OK);
    assert_non_null(ptr);
    return ptr;
}

static void fill_pattern(unsigned char *buf, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++) {
        buf[i] = (unsigned char)(i * 31u + seed);
    }
}

static void assert_pattern(const unsigned char *buf, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != (unsigned char)(i * 31u + seed)) {
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, buf[i],
                     (unsigned char)(i * 31u + seed));
        }
    }
}

static void assert_all_bytes(const unsigned char *buf, size_t size, unsigned char value)
{
    for (size_t i = 0; i < size; i++) {
        if (buf[i] != value) {
            fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, buf[i], value);
        }
    }
}

/* ------------------------------------------------- before any backend choice */

static int warnings_seen;

static void count_warnings(kvx_log_level_t level, const char *file, int line, const char *msg,
                           void *user_data)
{
    (void)file;
    (void)line;
    (void)user_data;
    if (level == KVX_LOG_WARN && strstr(msg, "cuda") != NULL) {
        warnings_seen++;
    }
}

static void test_env_unavailable_backend(void **state)
{
    (void)state;
    int count = -7;
    kvx_log_set_sink(count_warnings, NULL);

    assert_int_equal(setenv("KVX_DEVICE", "cuda", 1), 0);
    assert_int_equal(kvx_device_count(&count), KVX_ERR_UNSUPPORTED);
    assert_error_mentions("cuda");
    assert_int_equal(count, -7);
    assert_string_equal(kvx_device_backend(), "none");
    assert_int_equal(kvx_device_host_accessible(), 0);
    void *ptr = NULL;
    assert_int_equal(kvx_device_malloc(0, 64, &ptr), KVX_ERR_UNSUPPORTED);
    assert_null(ptr);
    /* init without a backend name honours the environment too */
    assert_int_equal(kvx_device_init(NULL), KVX_ERR_UNSUPPORTED);

    assert_int_equal(setenv("KVX_DEVICE", "tpu", 1), 0);
    assert_int_equal(kvx_device_count(&count), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("tpu");

    kvx_device_params_t params = {.field_mask = KVX_DEVICE_PARAM_FIELD_BACKEND, .backend = "cuda"};
    assert_int_equal(kvx_device_init(&params), KVX_ERR_UNSUPPORTED);
    assert_error_mentions("cuda");
    assert_int_equal(unsetenv("KVX_DEVICE"), 0);

    /* Told once why the backend is missing, not on every call. */
    kvx_log_set_sink(NULL, NULL);
    assert_int_equal(warnings_seen, 1);
}

static void test_default_is_host_with_8_devices(void **state)
{
    (void)state;
    int count = 0;
    /* The first call after the failures above picks the default. */
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 8);
    assert_string_equal(kvx_device_backend(), "host");
    assert_int_equal(kvx_device_host_accessible(), 1);
}

/* ------------------------------------------------------------- configuration */

static void test_init_params_checked(void **state)
{
    (void)state;
    kvx_device_params_t params = {.field_mask = KVX_BIT(3)};
    assert_int_equal(kvx_device_init(&params), KVX_ERR_UNSUPPORTED);
    assert_error_mentions("0x8");
    params.field_mask = KVX_DEVICE_PARAM_FIELD_CAPACITY | KVX_BIT(63);
    assert_int_equal(kvx_device_init(&params), KVX_ERR_UNSUPPORTED);

    params = (kvx_device_params_t){.field_mask = KVX_DEVICE_PARAM_FIELD_BACKEND};
    assert_int_equal(kvx_device_init(&params), KVX_ERR_INVALID_PARAM);
    params.backend = "rocm";
    assert_int_equal(kvx_device_init(&params), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("rocm");
    /* Not built in, so refused even though host is already chosen. */
    params.backend = "cuda";
    assert_int_equal(kvx_device_init(&params), KVX_ERR_UNSUPPORTED);
    assert_string_equal(kvx_device_backend(), "host");

    const int bad_counts[] = {0, -1, 1025};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        params = (kvx_device_params_t){.field_mask = KVX_DEVICE_PARAM_FIELD_NUM_DEVICES,
                                       .num_devices = bad_counts[i]};
        assert_int_equal(kvx_device_init(&params), KVX_ERR_INVALID_PARAM);
    }
    /* A refused init leaves the configuration alone. */
    int count = 0;
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, TEST_DEVICES);

    init_host(1, 0);
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 1);
    init_host(1024, 0);
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 1024);
    void *ptr = must_malloc(1023, 16);
    assert_int_equal(kvx_device_free(1023, ptr), KVX_OK);
}

static void test_init_from_environment(void **state)
{
    (void)state;
    kvx_device_params_t none = {.field_mask = 0};
    int count = 0;

    assert_int_equal(setenv("KVX_HOST_DEVICES", "3", 1), 0);
    assert_int_equal(kvx_device_init(&none), KVX_OK);
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 3);

    const char *bad_counts[] = {"0", "1025", "abc", "3x", "-2", " 3"};
    for (size_t i = 0; i < sizeof(bad_counts) / sizeof(bad_counts[0]); i++) {
        assert_int_equal(setenv("KVX_HOST_DEVICES", bad_counts[i], 1), 0);
        assert_int_equal(kvx_device_init(&none), KVX_ERR_INVALID_PARAM);
        assert_error_mentions("KVX_HOST_DEVICES");
    }
    /* An explicit parameter wins over a bad environment value. */
    init_host(2, 0);
    assert_int_equal(unsetenv("KVX_HOST_DEVICES"), 0);

    assert_int_equal(setenv("KVX_HOST_DEVICE_CAPACITY", "1k", 1), 0);
    assert_int_equal(kvx_device_init(NULL), KVX_OK);
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 8);
    void *ptr = must_malloc(7, 1024);
    void *extra = NULL;
    assert_int_equal(kvx_device_malloc(7, 1, &extra), KVX_ERR_DEVICE_OUT_OF_MEMORY);
    assert_int_equal(kvx_device_free(7, ptr), KVX_OK);

    const char *bad_sizes[] = {"12q", "1kk", "k", "99999999999999999999", "20000000T"};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        assert_int_equal(setenv("KVX_HOST_DEVICE_CAPACITY", bad_sizes[i], 1), 0);
        assert_int_equal(kvx_device_init(NULL), KVX_ERR_INVALID_PARAM);
        assert_error_mentions("KVX_HOST_DEVICE_CAPACITY");
    }
    assert_int_equal(unsetenv("KVX_HOST_DEVICE_CAPACITY"), 0);
}

static void test_init_while_allocated_is_busy(void **state)
{
    (void)state;
    void *ptr = must_malloc(2, 100);
    kvx_device_params_t params = {.field_mask = KVX_DEVICE_PARAM_FIELD_NUM_DEVICES,
                                  .num_devices = 2};
    assert_int_equal(kvx_device_init(&params), KVX_ERR_BUSY);
    assert_error_mentions("device 2");
    /* Still the old configuration: device 2 exists and holds the block. */
    int count = 0;
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, TEST_DEVICES);
    size_t used = 0;
    assert_int_equal(kvx_device_used(2, &used), KVX_OK);
    assert_int_equal(used, 100);

    assert_int_equal(kvx_device_free(2, ptr), KVX_OK);
    assert_int_equal(kvx_device_init(&params), KVX_OK);
    assert_int_equal(kvx_device_count(&count), KVX_OK);
    assert_int_equal(count, 2);
}

/* ---------------------------------------------------------- alloc and free */

static void test_alloc_free_per_device(void **state)
{
    (void)state;
    void *ptrs[TEST_DEVICES];
    for (int device = 0; device < TEST_DEVICES; device++) {
        size_t size = 1000 + (size_t)device;
        ptrs[device] = must_malloc(device, size);
        assert_int_equal((uintptr_t)ptrs[device] % 64, 0);
        size_t used = 0;
        assert_int_equal(kvx_device_used(device, &used), KVX_OK);
        assert_int_equal(used, size);
    }
    for (int device = 0; device < TEST_DEVICES; device++) {
        int owner = -5;
        assert_int_equal(kvx_device_locate(ptrs[device], 1000, &owner), KVX_OK);
        assert_int_equal(owner, device);
        /* Memory is plain host memory: the CPU may touch it. */
        memset(ptrs[device], device, 1000);
    }

    void *second = must_malloc(1, 24);
    size_t used = 0;
    assert_int_equal(kvx_device_used(1, &used), KVX_OK);
    assert_int_equal(used, 1001 + 24);
    assert_int_equal(kvx_device_free(1, second), KVX_OK);

    for (int device = 0; device < TEST_DEVICES; device++) {
        assert_int_equal(kvx_device_free(device, ptrs[device]), KVX_OK);
        assert_int_equal(kvx_device_used(device, &used), KVX_OK);
        assert_int_equal(used, 0);
    }
    /* NULL frees nothing but the id is still checked. */
    assert_int_equal(kvx_device_free(0, NULL), KVX_OK);
    assert_int_equal(kvx_device_free(TEST_DEVICES, NULL), KVX_ERR_INVALID_PARAM);
}

static void test_bad_frees_refused(void **state)
{
    (void)state;
    unsigned char *ptr = must_malloc(1, 256);

    assert_int_equal(kvx_device_free(0, ptr), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("device 1");
    assert_int_equal(kvx_device_free(2, ptr), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_free(1, ptr + 64), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("64 bytes into");
    int host_value = 0;
    assert_int_equal(kvx_device_free(1, &host_value), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_free(-1, ptr), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_free(TEST_DEVICES, ptr), KVX_ERR_INVALID_PARAM);

    /* The refused frees left the allocation intact. */
    size_t used = 0;
    assert_int_equal(kvx_device_used(1, &used), KVX_OK);
    assert_int_equal(used, 256);
    assert_int_equal(kvx_device_memset(1, ptr, 0x5a, 256), KVX_OK);
    assert_all_bytes(ptr, 256, 0x5a);

    assert_int_equal(kvx_device_free(1, ptr), KVX_OK);
    assert_int_equal(kvx_device_free(1, ptr), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("already freed");
}

static void test_bad_arguments(void **state)
{
    (void)state;
    void *ptr = NULL;
    size_t used = 0;
    int device = 0;
    const int bad_ids[] = {-1, TEST_DEVICES, 1 << 20};

    for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
        assert_int_equal(kvx_device_malloc(bad_ids[i], 64, &ptr), KVX_ERR_INVALID_PARAM);
        assert_null(ptr);
        assert_int_equal(kvx_device_used(bad_ids[i], &used), KVX_ERR_INVALID_PARAM);
    }
    assert_error_mentions("no such device");

    assert_int_equal(kvx_device_malloc(0, 0, &ptr), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("size is 0");
    assert_null(ptr);
    assert_int_equal(kvx_device_malloc(0, 64, NULL), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_count(NULL), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_used(0, NULL), KVX_ERR_INVALID_PARAM);

    unsigned char *mem = must_malloc(0, 128);
    assert_int_equal(kvx_device_locate(mem, 16, NULL), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_locate(NULL, 16, &device), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_locate(mem, 0, &device), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memset(0, NULL, 0, 16), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memset(0, mem, 0, 0), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memset(-1, mem, 0, 16), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memset(TEST_DEVICES, mem, 0, 16), KVX_ERR_INVALID_PARAM);

    /* No allocation happened through any of the refusals. */
    assert_int_equal(kvx_device_used(0, &used), KVX_OK);
    assert_int_equal(used, 128);
    assert_int_equal(kvx_device_free(0, mem), KVX_OK);
}

static void test_capacity_limit(void **state)
{
    (void)state;
    init_host(TEST_DEVICES, 4096);
    void *ptr = NULL;

    assert_int_equal(kvx_device_malloc(0, 4097, &ptr), KVX_ERR_DEVICE_OUT_OF_MEMORY);
    assert_error_mentions("device 0");
    assert_null(ptr);

    void *first = must_malloc(0, 3000);
    void *second = must_malloc(0, 1096);
    assert_int_equal(kvx_device_malloc(0, 1, &ptr), KVX_ERR_DEVICE_OUT_OF_MEMORY);
    assert_error_mentions("4096 of 4096");
    assert_null(ptr);

    /* Each device has its own budget. */
    void *other = must_malloc(1, 4096);

    assert_int_equal(kvx_device_free(0, first), KVX_OK);
    assert_int_equal(kvx_device_malloc(0, 3001, &ptr), KVX_ERR_DEVICE_OUT_OF_MEMORY);
    void *again = must_malloc(0, 3000);
    size_t used = 0;
    assert_int_equal(kvx_device_used(0, &used), KVX_OK);
    assert_int_equal(used, 4096);

    assert_int_equal(kvx_device_free(0, again), KVX_OK);
    assert_int_equal(kvx_device_free(0, second), KVX_OK);
    assert_int_equal(kvx_device_free(1, other), KVX_OK);
}

/* ---------------------------------------------------------- memset, memcpy */

static void test_memset(void **state)
{
    (void)state;
    unsigned char *mem = must_malloc(2, 300);

    assert_int_equal(kvx_device_memset(2, mem, 0x11, 300), KVX_OK);
    assert_all_bytes(mem, 300, 0x11);
    /* Only the low byte of the value counts, as with memset(). */
    assert_int_equal(kvx_device_memset(2, mem + 100, 0x1ab, 50), KVX_OK);
    assert_all_bytes(mem, 100, 0x11);
    assert_all_bytes(mem + 100, 50, 0xab);
    assert_all_bytes(mem + 150, 150, 0x11);
    assert_int_equal(kvx_device_memset(2, mem + 299, 0x22, 1), KVX_OK);
    assert_int_equal(mem[299], 0x22);

    /* Refusals write nothing. */
    assert_int_equal(kvx_device_memset(2, mem + 200, 0x33, 101), KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("past the end");
    assert_int_equal(kvx_device_memset(1, mem, 0x33, 16), KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("device 2");
    unsigned char host_buf[16] = {0};
    assert_int_equal(kvx_device_memset(2, host_buf, 0x33, 16), KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("host memory");
    assert_all_bytes(host_buf, 16, 0);
    assert_all_bytes(mem + 150, 149, 0x11);
    assert_int_equal(mem[299], 0x22);

    assert_int_equal(kvx_device_free(2, mem), KVX_OK);
}

static void test_memcpy_all_directions(void **state)
{
    (void)state;
    enum { SIZE = 4096 + 37 };
    unsigned char *src_host = malloc(SIZE);
    unsigned char *dst_host = malloc(SIZE);
    assert_non_null(src_host);
    assert_non_null(dst_host);
    unsigned char *dev0 = must_malloc(0, SIZE);
    unsigned char *dev0_b = must_malloc(0, SIZE);
    unsigned char *dev3 = must_malloc(3, SIZE);

    fill_pattern(src_host, SIZE, 7);
    memset(dst_host, 0, SIZE);
    assert_int_equal(kvx_device_memcpy(dst_host, src_host, SIZE, KVX_COPY_H2H, 0), KVX_OK);
    assert_pattern(dst_host, SIZE, 7);
    /* The device id plays no part in a host-to-host copy. */
    fill_pattern(src_host, SIZE, 8);
    assert_int_equal(kvx_device_memcpy(dst_host, src_host, SIZE, KVX_COPY_H2H, -1), KVX_OK);
    assert_pattern(dst_host, SIZE, 8);

    fill_pattern(src_host, SIZE, 9);
    assert_int_equal(kvx_device_memset(0, dev0, 0, SIZE), KVX_OK);
    assert_int_equal(kvx_device_memcpy(dev0, src_host, SIZE, KVX_COPY_H2D, 0), KVX_OK);
    assert_pattern(dev0, SIZE, 9);

    assert_int_equal(kvx_device_memset(0, dev0_b, 0, SIZE), KVX_OK);
    assert_int_equal(kvx_device_memcpy(dev0_b, dev0, SIZE, KVX_COPY_D2D, 0), KVX_OK);
    assert_pattern(dev0_b, SIZE, 9);

    /* Peer copy: destination on device 3, source on device 0. */
    assert_int_equal(kvx_device_memset(3, dev3, 0, SIZE), KVX_OK);
    assert_int_equal(kvx_device_memcpy(dev3, dev0_b, SIZE, KVX_COPY_D2D, 3), KVX_OK);
    assert_pattern(dev3, SIZE, 9);

    memset(dst_host, 0, SIZE);
    assert_int_equal(kvx_device_memcpy(dst_host, dev3, SIZE, KVX_COPY_D2H, 3), KVX_OK);
    assert_pattern(dst_host, SIZE, 9);

    /* A sub-range at an odd offset lands exactly where asked. */
    memset(dst_host, 0xee, SIZE);
    assert_int_equal(kvx_device_memcpy(dst_host + 5, dev0 + 100, 33, KVX_COPY_D2H, 0), KVX_OK);
    assert_all_bytes(dst_host, 5, 0xee);
    for (size_t i = 0; i < 33; i++) {
        assert_int_equal(dst_host[5 + i], (unsigned char)((100 + i) * 31u + 9));
    }
    assert_all_bytes(dst_host + 38, SIZE - 38, 0xee);

    assert_int_equal(kvx_device_free(0, dev0), KVX_OK);
    assert_int_equal(kvx_device_free(0, dev0_b), KVX_OK);
    assert_int_equal(kvx_device_free(3, dev3), KVX_OK);
    free(src_host);
    free(dst_host);
}

static void test_memcpy_refused(void **state)
{
    (void)state;
    enum { SIZE = 512 };
    unsigned char host_a[SIZE];
    unsigned char host_b[SIZE];
    unsigned char *dev0 = must_malloc(0, SIZE);
    unsigned char *dev1 = must_malloc(1, SIZE);
    memset(host_a, 0xaa, SIZE);
    memset(host_b, 0xbb, SIZE);
    assert_int_equal(kvx_device_memset(0, dev0, 0x00, SIZE), KVX_OK);
    assert_int_equal(kvx_device_memset(1, dev1, 0x01, SIZE), KVX_OK);

    /* Wrong side or wrong device. */
    assert_int_equal(kvx_device_memcpy(host_b, host_a, SIZE, KVX_COPY_H2D, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("destination");
    assert_int_equal(kvx_device_memcpy(dev1, host_a, SIZE, KVX_COPY_H2D, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("device 1");
    assert_int_equal(kvx_device_memcpy(host_b, host_a, SIZE, KVX_COPY_D2H, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("source");
    assert_int_equal(kvx_device_memcpy(host_b, dev1, SIZE, KVX_COPY_D2H, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(kvx_device_memcpy(dev1, dev0, SIZE, KVX_COPY_D2D, 0), KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(kvx_device_memcpy(dev0, host_a, SIZE, KVX_COPY_D2D, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(kvx_device_memcpy(host_b, dev0, SIZE, KVX_COPY_D2D, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(kvx_device_memcpy(dev0, host_a, SIZE, KVX_COPY_H2D, TEST_DEVICES),
                     KVX_ERR_INVALID_PARAM);

    /* Ranges running past the end of the allocation, on either side. */
    assert_int_equal(kvx_device_memcpy(dev0 + 1, host_a, SIZE, KVX_COPY_H2D, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("past the end of allocation");
    assert_error_mentions("device 0 by 1 bytes");
    assert_int_equal(kvx_device_memcpy(host_b, dev0 + SIZE - 10, 11, KVX_COPY_D2H, 0),
                     KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(kvx_device_memcpy(dev0 + 256, dev1 + 256, 257, KVX_COPY_D2D, 0),
                     KVX_ERR_INVALID_ADDRESS);

    /* Malformed calls. */
    assert_int_equal(kvx_device_memcpy(host_b, host_a, SIZE, (kvx_copy_kind_t)4, 0),
                     KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memcpy(host_b, host_a, SIZE, (kvx_copy_kind_t)-1, 0),
                     KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memcpy(NULL, host_a, SIZE, KVX_COPY_H2H, 0), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memcpy(host_b, NULL, SIZE, KVX_COPY_H2H, 0), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memcpy(host_b, host_a, 0, KVX_COPY_H2H, 0), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_device_memcpy(dev0 + 8, dev0, 16, KVX_COPY_D2D, 0), KVX_ERR_INVALID_PARAM);
    assert_error_mentions("overlap");

    /* None of the refused copies wrote anything. */
    assert_all_bytes(host_a, SIZE, 0xaa);
    assert_all_bytes(host_b, SIZE, 0xbb);
    assert_all_bytes(dev0, SIZE, 0x00);
    assert_all_bytes(dev1, SIZE, 0x01);

    assert_int_equal(kvx_device_free(0, dev0), KVX_OK);
    assert_int_equal(kvx_device_free(1, dev1), KVX_OK);
}

/* ---------------------------------------------------------------- locate */

static void test_locate(void **state)
{
    (void)state;
    unsigned char *mem = must_malloc(3, 1000);
    int device = -5;

    int host_value = 0;
    assert_int_equal(kvx_device_locate(&host_value, sizeof(host_value), &device), KVX_OK);
    assert_int_equal(device, -1);

    device = -5;
    assert_int_equal(kvx_device_locate(mem, 1000, &device), KVX_OK);
    assert_int_equal(device, 3);
    device = -5;
    assert_int_equal(kvx_device_locate(mem + 999, 1, &device), KVX_OK);
    assert_int_equal(device, 3);

    device = -5;
    assert_int_equal(kvx_device_locate(mem + 500, 501, &device), KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("past the end");
    assert_int_equal(device, -5);
    /* Starting just before the allocation and running into it. */
    assert_int_equal(kvx_device_locate(mem - 1, 2, &device), KVX_ERR_INVALID_ADDRESS);
    assert_error_mentions("runs into");
    assert_int_equal(kvx_device_locate((void *)(UINTPTR_MAX - 3), 8, &device),
                     KVX_ERR_INVALID_ADDRESS);
    assert_int_equal(device, -5);

    assert_int_equal(kvx_device_free(3, mem), KVX_OK);
    /* Freed memory is no longer device memory. */
    assert_int_equal(kvx_device_locate(mem, 1000, &device), KVX_OK);
    assert_int_equal(device, -1);
}

/* ---------------------------------------------------------------- threads */

enum { THREAD_ROUNDS = 200, THREAD_SIZE = 1024 };

typedef struct thread_job {
    int device;
    int failures;
} thread_job_t;

/* Each thread works on its own device while the others do the same, so the
 * shared table sees concurrent inserts, removals and lookups. */
static void *device_worker(void *arg)
{
    thread_job_t *job = arg;
    unsigned char host_buf[THREAD_SIZE];
    unsigned char back[THREAD_SIZE];
    for (int round = 0; round < THREAD_ROUNDS; round++) {
        void *mem = NULL;
        int owner = -5;
        fill_pattern(host_buf, THREAD_SIZE, (unsigned)(job->device * 1000 + round));
        if (kvx_device_malloc(job->device, THREAD_SIZE, &mem) != KVX_OK ||
            kvx_device_memcpy(mem, host_buf, THREAD_SIZE, KVX_COPY_H2D, job->device) != KVX_OK ||
            kvx_device_memcpy(back, mem, THREAD_SIZE, KVX_COPY_D2H, job->device) != KVX_OK ||
            kvx_device_locate(mem, THREAD_SIZE, &owner) != KVX_OK || owner != job->device ||
            memcmp(back, host_buf, THREAD_SIZE) != 0 ||
            kvx_device_free(job->device, mem) != KVX_OK) {
            job->failures++;
        }
    }
    return NULL;
}

static void test_concurrent_devices(void **state)
{
    (void)state;
    pthread_t threads[TEST_DEVICES];
    thread_job_t jobs[TEST_DEVICES];
    for (int i = 0; i < TEST_DEVICES; i++) {
        jobs[i] = (thread_job_t){.device = i, .failures = 0};
        assert_int_equal(pthread_create(&threads[i], NULL, device_worker, &jobs[i]), 0);
    }
    for (int i = 0; i < TEST_DEVICES; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].failures, 0);
    }
}

/* kvx_host_malloc: memfd-backed host memory, reported as host memory. */
static void test_host_malloc(void **state)
{
    (void)state;
    void *p = NULL;
    assert_int_equal(kvx_host_malloc(0, &p), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_host_malloc(4096, NULL), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_host_malloc(4u << 20, &p), KVX_OK);
    assert_non_null(p);
    memset(p, 0x5a, 4u << 20);
    assert_int_equal(((unsigned char *)p)[(4u << 20) - 1], 0x5a);
    int dev = 7;
    assert_int_equal(kvx_device_locate(p, 4u << 20, &dev), KVX_OK);
    assert_int_equal(dev, -1);
    /* Host memory does not hold the device configuration down: choosing it
     * again (as the first device call of a process does) still works. */
    assert_int_equal(kvx_device_init(NULL), KVX_OK);
    void *d = NULL;
    assert_int_equal(kvx_device_malloc(0, 4096, &d), KVX_OK);
    assert_int_equal(kvx_device_free(0, d), KVX_OK);
    void *other = malloc(64);
    assert_int_equal(kvx_host_free(other), KVX_ERR_INVALID_PARAM);
    free(other);
    assert_int_equal(kvx_host_free((char *)p + 64), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_host_free(p), KVX_OK);
    assert_int_equal(kvx_host_free(p), KVX_ERR_INVALID_PARAM);
    assert_int_equal(kvx_host_free(NULL), KVX_OK);
}

int main(void)
{
    /* The outside environment must not change what the tests expect. */
    unsetenv("KVX_DEVICE");
    unsetenv("KVX_HOST_DEVICES");
    unsetenv("KVX_HOST_DEVICE_CAPACITY");

    const struct CMUnitTest tests[] = {
        /* These two must come first: they see the backend not yet chosen. */
        cmocka_unit_test(test_env_unavailable_backend),
        cmocka_unit_test(test_default_is_host_with_8_devices),
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup_default, teardown_check_empty)
        TEST(test_init_params_checked),
        TEST(test_init_from_environment),
        TEST(test_init_while_allocated_is_busy),
        TEST(test_alloc_free_per_device),
        TEST(test_bad_frees_refused),
        TEST(test_bad_arguments),
        TEST(test_capacity_limit),
        TEST(test_memset),
        TEST(test_memcpy_all_directions),
        TEST(test_memcpy_refused),
        TEST(test_locate),
        TEST(test_concurrent_devices),
        TEST(test_host_malloc),
#undef TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

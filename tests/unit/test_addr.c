/* Unit tests for engine-name parsing and formatting (src/util/addr.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "util/addr.h"
#include "util/error.h"

/* Copy into an exactly sized heap buffer so that ASan flags any over-read. */
static char *dup_exact(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    assert_non_null(p);
    memcpy(p, s, n);
    return p;
}

typedef struct valid_case {
    const char *in;
    int family;
    int has_port;
    int port;
    const char *host; /* address text for inet_pton, to compare the bytes */
    const char *canonical;
} valid_case_t;

static const valid_case_t valid_cases[] = {
    {"127.0.0.1", AF_INET, 0, 0, "127.0.0.1", "127.0.0.1"},
    {"127.0.0.1:0", AF_INET, 1, 0, "127.0.0.1", "127.0.0.1:0"},
    {"127.0.0.1:65535", AF_INET, 1, 65535, "127.0.0.1", "127.0.0.1:65535"},
    {"10.1.2.3:26000", AF_INET, 1, 26000, "10.1.2.3", "10.1.2.3:26000"},
    {"0.0.0.0", AF_INET, 0, 0, "0.0.0.0", "0.0.0.0"},
    {"255.255.255.255:1", AF_INET, 1, 1, "255.255.255.255", "255.255.255.255:1"},
    {"[::1]", AF_INET6, 0, 0, "::1", "[::1]"},
    {"[::1]:80", AF_INET6, 1, 80, "::1", "[::1]:80"},
    {"[::]", AF_INET6, 0, 0, "::", "[::]"},
    {"[::]:0", AF_INET6, 1, 0, "::", "[::]:0"},
    {"[2001:db8::1]:5", AF_INET6, 1, 5, "2001:db8::1", "[2001:db8::1]:5"},
    {"[2001:0db8:0:0::1]:5", AF_INET6, 1, 5, "2001:db8::1", "[2001:db8::1]:5"},
    {"[2001:0DB8:0000:0000:0000:0000:0000:0001]", AF_INET6, 0, 0, "2001:db8::1", "[2001:db8::1]"},
    {"[FE80::ABCD]:65535", AF_INET6, 1, 65535, "fe80::abcd", "[fe80::abcd]:65535"},
    {"[::ffff:1.2.3.4]:9", AF_INET6, 1, 9, "::ffff:1.2.3.4", "[::ffff:1.2.3.4]:9"},
};

static void check_valid(const valid_case_t *c)
{
    char *in = dup_exact(c->in);
    kvx_addr_t a;
    memset(&a, 0xa5, sizeof(a));
    kvx_status_t st = kvx_addr_parse(in, &a);
    if (st != KVX_OK) {
        print_error("'%s' was refused: %s\n", c->in, kvx_last_error());
    }
    assert_int_equal(st, KVX_OK);
    assert_int_equal(a.sa.ss_family, c->family);
    assert_int_equal(a.has_port, c->has_port);
    assert_int_equal(a.port, c->port);

    if (c->family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a.sa;
        struct in_addr want;
        assert_int_equal(inet_pton(AF_INET, c->host, &want), 1);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in));
        assert_memory_equal(&s4->sin_addr, &want, sizeof(want));
        assert_int_equal(ntohs(s4->sin_port), c->port);
    } else {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a.sa;
        struct in6_addr want;
        assert_int_equal(inet_pton(AF_INET6, c->host, &want), 1);
        assert_int_equal(a.sa_len, sizeof(struct sockaddr_in6));
        assert_memory_equal(&s6->sin6_addr, &want, sizeof(want));
        assert_int_equal(ntohs(s6->sin6_port), c->port);
        assert_int_equal(s6->sin6_scope_id, 0);
        assert_int_equal(s6->sin6_flowinfo, 0);
    }

    char buf[KVX_ENGINE_NAME_MAX];
    kvx_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, c->canonical);

    /* The canonical form parses back to the same address and formats the same. */
    kvx_addr_t b;
    assert_int_equal(kvx_addr_parse(buf, &b), KVX_OK);
    assert_int_equal(b.sa_len, a.sa_len);
    assert_int_equal(b.has_port, a.has_port);
    assert_int_equal(b.port, a.port);
    assert_memory_equal(&b.sa, &a.sa, a.sa_len);
    char buf2[KVX_ENGINE_NAME_MAX];
    kvx_addr_format(&b, buf2, sizeof(buf2));
    assert_string_equal(buf2, buf);
    free(in);
}

static void test_valid_names(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        check_valid(&valid_cases[i]);
    }
}

static void check_invalid(const char *name)
{
    kvx_error_clear();
    assert_string_equal(kvx_last_error(), "");
    kvx_addr_t a;
    kvx_status_t st = kvx_addr_parse(name, &a);
    if (st != KVX_ERR_INVALID_PARAM) {
        print_error("'%s' was not refused (status %s)\n", name ? name : "(null)",
                    kvx_status_name(st));
    }
    assert_int_equal(st, KVX_ERR_INVALID_PARAM);
    assert_true(strlen(kvx_last_error()) > 0);
    assert_non_null(strstr(kvx_last_error(), "KVX_ERR_INVALID_PARAM"));
}

static const char *const invalid_names[] = {
    "",
    ":",
    ":80",
    "127.0.0.1:",
    "127.0.0.1:65536",
    "127.0.0.1:99999",
    "127.0.0.1:-1",
    "127.0.0.1:+80",
    "127.0.0.1:8x",
    "127.0.0.1:0x50",
    "127.0.0.1:080000",
    "127.0.0.1:80 ",
    "256.0.0.1",
    "1.2.3",
    "1",
    "1.2.3.4.5",
    "0x7f.0.0.1",
    "127.0.0.01",
    "localhost",
    "localhost:80",
    "::1",
    "::1:80",
    "fe80::1",
    "[::1",
    "[::1]x",
    "[::1]:",
    "[::1]:65536",
    "[::1]:-1",
    "[::1]:80:",
    "[::1] ",
    "[::1]]",
    "[[::1]]",
    "[ ::1]",
    "[]",
    "[]:80",
    "[127.0.0.1]",
    "[127.0.0.1]:80",
    "[::g]",
    "[1:2:3:4:5:6:7:8:9]",
    /* inet_pton does not take scope ids, and names carry none. */
    "[fe80::1%eth0]",
    "[fe80::1%1]:80",
    " 127.0.0.1",
    "127.0.0.1 ",
    "127.0.0.1\n",
    "1.2.3.4:5:6",
    "1.2.3.4::5",
    "]",
    "]:80",
};

static void test_invalid_names(void **state)
{
    (void)state;
    check_invalid(NULL);
    for (size_t i = 0; i < sizeof(invalid_names) / sizeof(invalid_names[0]); i++) {
        char *in = dup_exact(invalid_names[i]);
        check_invalid(in);
        free(in);
    }
}

static void test_null_addr(void **state)
{
    (void)state;
    kvx_error_clear();
    assert_int_equal(kvx_addr_parse("127.0.0.1", NULL), KVX_ERR_INVALID_PARAM);
    assert_true(strlen(kvx_last_error()) > 0);
}

static void test_long_names(void **state)
{
    (void)state;
    /* The longest valid name is far below the limit, so a 63-byte name (the
     * longest the length check lets through) is refused for its content. */
    char name63[KVX_ENGINE_NAME_MAX];
    memset(name63, '1', sizeof(name63) - 1);
    name63[sizeof(name63) - 1] = '\0';
    assert_int_equal(strlen(name63), 63);
    check_invalid(name63);

    /* 63 bytes that begin like a valid name. */
    char v63[KVX_ENGINE_NAME_MAX];
    memset(v63, '0', sizeof(v63) - 1);
    v63[sizeof(v63) - 1] = '\0';
    memcpy(v63, "127.0.0.1:", 10);
    check_invalid(v63);
    memset(v63, ']', sizeof(v63) - 1);
    memcpy(v63, "[::1]", 5);
    check_invalid(v63);

    /* Exactly 64 bytes and much longer. */
    char *name64 = malloc(KVX_ENGINE_NAME_MAX + 1);
    assert_non_null(name64);
    memset(name64, '1', KVX_ENGINE_NAME_MAX);
    name64[KVX_ENGINE_NAME_MAX] = '\0';
    check_invalid(name64);
    memcpy(name64, "127.0.0.1", 9); /* a valid prefix does not help */
    check_invalid(name64);
    free(name64);

    char *big = malloc(4097);
    assert_non_null(big);
    memset(big, 'a', 4096);
    big[4096] = '\0';
    check_invalid(big);
    free(big);

    /* Not even NUL-terminated within the limit: must stop reading at 64 bytes
     * (ASan would flag a read past the buffer). */
    char *raw = malloc(KVX_ENGINE_NAME_MAX);
    assert_non_null(raw);
    memset(raw, '1', KVX_ENGINE_NAME_MAX);
    check_invalid(raw);
    free(raw);
}

static void test_format_truncates(void **state)
{
    (void)state;
    kvx_addr_t a;
    assert_int_equal(kvx_addr_parse("[2001:db8::1]:65535", &a), KVX_OK);
    char buf[8];
    memset(buf, 'z', sizeof(buf));
    kvx_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[2001:d");

    assert_int_equal(kvx_addr_parse("10.1.2.3:26000", &a), KVX_OK);
    memset(buf, 'z', sizeof(buf));
    kvx_addr_format(&a, buf, 4);
    assert_string_equal(buf, "10.");
    assert_int_equal(buf[4], 'z');
}

static void test_from_sockaddr(void **state)
{
    (void)state;
    char buf[KVX_ENGINE_NAME_MAX];
    kvx_addr_t a;

    struct sockaddr_in s4;
    memset(&s4, 0, sizeof(s4));
    s4.sin_family = AF_INET;
    s4.sin_port = htons(8080);
    assert_int_equal(inet_pton(AF_INET, "192.168.0.7", &s4.sin_addr), 1);
    kvx_addr_from_sockaddr((const struct sockaddr *)&s4, sizeof(s4), &a);
    assert_int_equal(a.has_port, 1);
    assert_int_equal(a.port, 8080);
    assert_int_equal(a.sa_len, sizeof(s4));
    kvx_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "192.168.0.7:8080");

    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    s6.sin6_port = htons(0);
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::42", &s6.sin6_addr), 1);
    kvx_addr_from_sockaddr((const struct sockaddr *)&s6, sizeof(s6), &a);
    assert_int_equal(a.has_port, 1);
    assert_int_equal(a.port, 0);
    assert_int_equal(a.sa_len, sizeof(s6));
    kvx_addr_format(&a, buf, sizeof(buf));
    assert_string_equal(buf, "[2001:db8::42]:0");

    /* Agrees with parsing the formatted text. */
    kvx_addr_t b;
    assert_int_equal(kvx_addr_parse(buf, &b), KVX_OK);
    assert_int_equal(b.sa_len, a.sa_len);
    assert_memory_equal(&b.sa, &a.sa, a.sa_len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_names),      cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_null_addr),        cmocka_unit_test(test_long_names),
        cmocka_unit_test(test_format_truncates), cmocka_unit_test(test_from_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

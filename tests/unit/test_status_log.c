/* Unit tests for status codes, per-thread error detail and logging. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kvx/log.h>
#include <kvx/status.h>

#include "util/error.h"
#include "util/log.h"

/* ---- capture sink ---------------------------------------------------------------------- */

typedef struct capture {
    int calls;
    kvx_log_level_t level;
    char file[256];
    int line;
    char msg[2048];
    void *user_data;
} capture_t;

static capture_t cap;

static void capture_sink(kvx_log_level_t level, const char *file, int line, const char *msg,
                         void *user_data)
{
    cap.calls++;
    cap.level = level;
    snprintf(cap.file, sizeof(cap.file), "%s", file);
    cap.line = line;
    snprintf(cap.msg, sizeof(cap.msg), "%s", msg);
    cap.user_data = user_data;
}

static int side_effects;

static int bump(void)
{
    return ++side_effects;
}

static int log_setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof(cap));
    side_effects = 0;
    kvx_log_set_sink(capture_sink, &cap);
    return 0;
}

static int log_teardown(void **state)
{
    (void)state;
    kvx_log_set_sink(NULL, NULL);
    kvx_log_set_level(KVX_LOG_WARN);
    return 0;
}

/* ---- KVX_LOG_LEVEL at first use, checked in fresh forked children ----------------------- */

enum { CHILD_NO_SET = -100 };

/* Runs in the child: returns 0 on success, a distinct code per failed check. */
static int child_check_env(const char *env, int set_before, int want_level)
{
    if (__atomic_load_n(&kvx_log_level_current, __ATOMIC_RELAXED) != -2) {
        return 10; /* level already initialised: the check would prove nothing */
    }
    if (env == NULL) {
        unsetenv("KVX_LOG_LEVEL");
    } else {
        setenv("KVX_LOG_LEVEL", env, 1);
    }
    if (set_before != CHILD_NO_SET) {
        kvx_log_set_level((kvx_log_level_t)set_before);
    }
    memset(&cap, 0, sizeof(cap));
    side_effects = 0;
    kvx_log_set_sink(capture_sink, &cap);

    /* First use goes through the macro's lazy init. */
    kvx_debug("env probe %d", bump());
    int debug_on = want_level >= KVX_LOG_DEBUG;
    if (side_effects != debug_on) {
        return 11;
    }
    if (cap.calls != debug_on) {
        return 12;
    }
    if (debug_on && (strcmp(cap.msg, "env probe 1") != 0 || cap.level != KVX_LOG_DEBUG)) {
        return 13;
    }
    if ((int)kvx_log_get_level() != want_level) {
        return 14;
    }
    /* The environment is read once: changing it later has no effect. */
    setenv("KVX_LOG_LEVEL", want_level == KVX_LOG_TRACE ? "error" : "trace", 1);
    if ((int)kvx_log_get_level() != want_level) {
        return 15;
    }
    return 0;
}

static void run_env_child(const char *env, int set_before, int want_level)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        _exit(child_check_env(env, set_before, want_level));
    }
    int wstatus = 0;
    assert_int_equal(waitpid(pid, &wstatus, 0), pid);
    assert_true(WIFEXITED(wstatus));
    if (WEXITSTATUS(wstatus) != 0) {
        print_error("KVX_LOG_LEVEL=%s (set_before %d): child check %d failed\n",
                    env ? env : "(unset)", set_before, WEXITSTATUS(wstatus));
    }
    assert_int_equal(WEXITSTATUS(wstatus), 0);
}

/* Must run first: nothing in this process may have touched the level yet. */
static void test_env_level_at_first_use(void **state)
{
    (void)state;
    assert_int_equal(__atomic_load_n(&kvx_log_level_current, __ATOMIC_RELAXED), -2);

    run_env_child("debug", CHILD_NO_SET, KVX_LOG_DEBUG);
    run_env_child("DEBUG", CHILD_NO_SET, KVX_LOG_DEBUG);
    run_env_child("3", CHILD_NO_SET, KVX_LOG_DEBUG);
    run_env_child("trace", CHILD_NO_SET, KVX_LOG_TRACE);
    run_env_child("data", CHILD_NO_SET, KVX_LOG_DATA);
    run_env_child("5", CHILD_NO_SET, KVX_LOG_DATA);
    run_env_child("info", CHILD_NO_SET, KVX_LOG_INFO);
    run_env_child("warn", CHILD_NO_SET, KVX_LOG_WARN);
    run_env_child("error", CHILD_NO_SET, KVX_LOG_ERROR);
    run_env_child("0", CHILD_NO_SET, KVX_LOG_ERROR);
    run_env_child("off", CHILD_NO_SET, KVX_LOG_OFF);
    run_env_child("none", CHILD_NO_SET, KVX_LOG_OFF);
    run_env_child("-1", CHILD_NO_SET, KVX_LOG_OFF);
    /* Unset, empty or unparsable: the default, warn. */
    run_env_child(NULL, CHILD_NO_SET, KVX_LOG_WARN);
    run_env_child("", CHILD_NO_SET, KVX_LOG_WARN);
    run_env_child("bogus", CHILD_NO_SET, KVX_LOG_WARN);
    run_env_child("6", CHILD_NO_SET, KVX_LOG_WARN);
    run_env_child("3x", CHILD_NO_SET, KVX_LOG_WARN);
    /* A level set explicitly before first use wins over the environment. */
    run_env_child("debug", KVX_LOG_ERROR, KVX_LOG_ERROR);
    run_env_child("error", KVX_LOG_DEBUG, KVX_LOG_DEBUG);

    /* The children did not touch this process. */
    assert_int_equal(__atomic_load_n(&kvx_log_level_current, __ATOMIC_RELAXED), -2);
}

/* ---- status codes ----------------------------------------------------------------------- */

typedef struct status_entry {
    int value;
    const char *name;
    const char *text;
} status_entry_t;

#define STATUS_ENTRY(name, value, text) {(value), "KVX_" #name, (text)},
static const status_entry_t status_table[] = {KVX_STATUS_MAP(STATUS_ENTRY)};
#undef STATUS_ENTRY
#define STATUS_COUNT (sizeof(status_table) / sizeof(status_table[0]))

static void test_status_strings(void **state)
{
    (void)state;
    assert_true(STATUS_COUNT >= 2);
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        kvx_status_t s = (kvx_status_t)status_table[i].value;
        const char *name = kvx_status_name(s);
        const char *text = kvx_status_string(s);
        assert_non_null(name);
        assert_non_null(text);
        assert_true(name[0] != '\0');
        assert_true(text[0] != '\0');
        assert_string_equal(name, status_table[i].name);
        assert_string_equal(text, status_table[i].text);
        assert_true(kvx_status_known(status_table[i].value));
        assert_string_not_equal(name, "KVX_UNKNOWN");
        assert_string_not_equal(text, "unknown status");
        for (size_t j = i + 1; j < STATUS_COUNT; j++) {
            assert_int_not_equal(status_table[i].value, status_table[j].value);
            assert_string_not_equal(status_table[i].name, status_table[j].name);
            assert_string_not_equal(kvx_status_name((kvx_status_t)status_table[j].value), name);
        }
    }
    assert_int_equal(KVX_OK, 0);
    assert_int_equal(KVX_INPROGRESS, 1);
    assert_string_equal(kvx_status_name(KVX_ERR_TIMEOUT), "KVX_ERR_TIMEOUT");
    assert_string_equal(kvx_status_string(KVX_OK), "success");
}

static int status_known(int v)
{
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        if (status_table[i].value == v) {
            return 1;
        }
    }
    return 0;
}

static void test_status_unknown(void **state)
{
    (void)state;
    const int unknown[] = {2, 3, -17, -50, -99, -111, -199, -213, -299, 12345, -12345, INT32_MIN};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_false(status_known(unknown[i]));
        assert_false(kvx_status_known(unknown[i]));
        kvx_status_t s = (kvx_status_t)unknown[i];
        assert_string_equal(kvx_status_string(s), "unknown status");
        assert_string_equal(kvx_status_name(s), "KVX_UNKNOWN");
    }
}

static void test_peer_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        int v = status_table[i].value;
        int want = v <= -100 && v >= -199;
        assert_int_equal(!!KVX_IS_PEER_ERROR(v), want);
        assert_int_equal(!!KVX_IS_PEER_ERROR((kvx_status_t)v), want);
    }
    assert_true(KVX_IS_PEER_ERROR(KVX_ERR_NOT_CONNECTED));
    assert_true(KVX_IS_PEER_ERROR(KVX_ERR_CONNECTION_LOST));
    assert_true(KVX_IS_PEER_ERROR(KVX_ERR_VERSION_MISMATCH));
    assert_false(KVX_IS_PEER_ERROR(KVX_OK));
    assert_false(KVX_IS_PEER_ERROR(KVX_INPROGRESS));
    assert_false(KVX_IS_PEER_ERROR(KVX_ERR_TIMEOUT));
    assert_false(KVX_IS_PEER_ERROR(KVX_ERR_DEVICE_OUT_OF_MEMORY));
    assert_false(KVX_IS_PEER_ERROR(-99));
    assert_true(KVX_IS_PEER_ERROR(-100));
    assert_true(KVX_IS_PEER_ERROR(-199));
    assert_false(KVX_IS_PEER_ERROR(-200));
    assert_false(KVX_IS_PEER_ERROR(100));
}

/* ---- per-thread error detail ------------------------------------------------------------ */

static void test_last_error_set_clear(void **state)
{
    (void)state;
    kvx_error_clear();
    assert_string_equal(kvx_last_error(), "");

    kvx_status_t r =
        kvx_error_set(KVX_ERR_TIMEOUT, "waiting for peer %s took %d ms", "10.0.0.1", 1500);
    assert_int_equal(r, KVX_ERR_TIMEOUT);
    assert_non_null(strstr(kvx_last_error(), "waiting for peer 10.0.0.1 took 1500 ms"));
    assert_non_null(strstr(kvx_last_error(), "KVX_ERR_TIMEOUT"));

    /* A new failure replaces the previous detail. */
    kvx_error_set(KVX_ERR_BUSY, "second");
    assert_non_null(strstr(kvx_last_error(), "second"));
    assert_non_null(strstr(kvx_last_error(), "KVX_ERR_BUSY"));
    assert_null(strstr(kvx_last_error(), "waiting"));
    assert_null(strstr(kvx_last_error(), "KVX_ERR_TIMEOUT"));

    kvx_error_clear();
    assert_string_equal(kvx_last_error(), "");
}

static void test_last_error_long_detail(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kvx_error_set(KVX_ERR_IO, "%s", big);
    size_t len = strlen(kvx_last_error());
    assert_true(len > 0);
    assert_true(len < sizeof(big) - 1); /* truncated, not overflowed */
    assert_int_equal(kvx_last_error()[0], 'x');
    kvx_error_clear();
    assert_string_equal(kvx_last_error(), "");
}

typedef struct thread_result {
    int empty_at_start;
    int own_detail_ok;
    const char *ptr;
} thread_result_t;

static void *error_thread(void *arg)
{
    thread_result_t *r = arg;
    r->empty_at_start = strcmp(kvx_last_error(), "") == 0;
    r->ptr = kvx_last_error();
    kvx_error_set(KVX_ERR_PROTOCOL, "thread detail");
    r->own_detail_ok = strstr(kvx_last_error(), "thread detail") != NULL &&
                       strstr(kvx_last_error(), "KVX_ERR_PROTOCOL") != NULL;
    return NULL;
}

static void test_last_error_per_thread(void **state)
{
    (void)state;
    kvx_error_set(KVX_ERR_NOT_FOUND, "main detail");
    thread_result_t r = {0, 0, NULL};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, error_thread, &r), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.empty_at_start);
    assert_true(r.own_detail_ok);
    assert_ptr_not_equal(r.ptr, kvx_last_error());
    /* The other thread's failure did not touch this thread's detail. */
    assert_non_null(strstr(kvx_last_error(), "main detail"));
    assert_non_null(strstr(kvx_last_error(), "KVX_ERR_NOT_FOUND"));
    assert_null(strstr(kvx_last_error(), "thread detail"));
    kvx_error_clear();
}

/* ---- logging ---------------------------------------------------------------------------- */

static void test_log_level_names(void **state)
{
    (void)state;
    assert_string_equal(kvx_log_level_name(KVX_LOG_ERROR), "error");
    assert_string_equal(kvx_log_level_name(KVX_LOG_WARN), "warn");
    assert_string_equal(kvx_log_level_name(KVX_LOG_INFO), "info");
    assert_string_equal(kvx_log_level_name(KVX_LOG_DEBUG), "debug");
    assert_string_equal(kvx_log_level_name(KVX_LOG_TRACE), "trace");
    assert_string_equal(kvx_log_level_name(KVX_LOG_DATA), "data");
    assert_string_equal(kvx_log_level_name(KVX_LOG_OFF), "off");
    assert_string_equal(kvx_log_level_name((kvx_log_level_t)6), "off");
    assert_string_equal(kvx_log_level_name((kvx_log_level_t)-7), "off");
}

static void test_log_set_get_level(void **state)
{
    (void)state;
    for (int l = KVX_LOG_OFF; l <= KVX_LOG_DATA; l++) {
        kvx_log_set_level((kvx_log_level_t)l);
        assert_int_equal(kvx_log_get_level(), l);
    }
    kvx_log_set_level((kvx_log_level_t)42);
    assert_int_equal(kvx_log_get_level(), KVX_LOG_DATA);
    kvx_log_set_level((kvx_log_level_t)-5);
    assert_int_equal(kvx_log_get_level(), KVX_LOG_OFF);
}

static void test_log_filtering(void **state)
{
    (void)state;
    kvx_log_set_level(KVX_LOG_INFO);
    kvx_error("e");
    assert_int_equal(cap.calls, 1);
    assert_int_equal(cap.level, KVX_LOG_ERROR);
    assert_string_equal(cap.msg, "e");
    kvx_warn("w %d", 2);
    assert_int_equal(cap.calls, 2);
    assert_int_equal(cap.level, KVX_LOG_WARN);
    assert_string_equal(cap.msg, "w 2");
    kvx_info("i %s", "three");
    int info_line = __LINE__ - 1;
    assert_int_equal(cap.calls, 3);
    assert_int_equal(cap.level, KVX_LOG_INFO);
    assert_string_equal(cap.msg, "i three");
    assert_string_equal(cap.file, "test_status_log.c"); /* base name only */
    assert_int_equal(cap.line, info_line);
    assert_ptr_equal(cap.user_data, &cap);
    kvx_debug("d");
    kvx_trace("t");
    KVX_LOG(KVX_LOG_DATA, "data");
    assert_int_equal(cap.calls, 3);
    assert_string_equal(cap.msg, "i three");

    kvx_log_set_level(KVX_LOG_OFF);
    kvx_error("nothing");
    assert_int_equal(cap.calls, 3);

    kvx_log_set_level(KVX_LOG_DATA);
    kvx_trace("t");
    KVX_LOG(KVX_LOG_DATA, "d%c", 'x');
    assert_int_equal(cap.calls, 5);
    assert_int_equal(cap.level, KVX_LOG_DATA);
    assert_string_equal(cap.msg, "dx");
}

static void test_log_args_not_evaluated(void **state)
{
    (void)state;
    kvx_log_set_level(KVX_LOG_WARN);
    kvx_debug("value %d", bump());
    kvx_info("value %d", bump());
    kvx_trace("value %d", bump());
    assert_int_equal(side_effects, 0);
    assert_int_equal(cap.calls, 0);

    kvx_log_set_level(KVX_LOG_DEBUG);
    kvx_debug("value %d", bump());
    assert_int_equal(side_effects, 1);
    assert_int_equal(cap.calls, 1);
    assert_int_equal(cap.level, KVX_LOG_DEBUG);
    assert_string_equal(cap.msg, "value 1");
    kvx_trace("value %d", bump());
    assert_int_equal(side_effects, 1);
    assert_int_equal(cap.calls, 1);
}

static void test_log_long_message_truncated(void **state)
{
    (void)state;
    kvx_log_set_level(KVX_LOG_WARN);
    char big[3000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kvx_warn("%s", big);
    assert_int_equal(cap.calls, 1);
    size_t len = strlen(cap.msg);
    assert_true(len > 0);
    assert_true(len < sizeof(big) - 1);
    assert_int_equal(cap.msg[0], 'm');
}

static void test_fail_macro(void **state)
{
    (void)state;
    kvx_log_set_level(KVX_LOG_WARN);
    kvx_error_clear();
    side_effects = 0;
    kvx_status_t s = KVX_FAIL(KVX_ERR_NOT_CONNECTED, "peer %s gone", "10.0.0.9:1");
    assert_int_equal(s, KVX_ERR_NOT_CONNECTED);
    assert_non_null(strstr(kvx_last_error(), "peer 10.0.0.9:1 gone"));
    assert_non_null(strstr(kvx_last_error(), "KVX_ERR_NOT_CONNECTED"));
    assert_int_equal(cap.calls, 0); /* logged at debug, which is off */

    kvx_log_set_level(KVX_LOG_DEBUG);
    s = KVX_FAIL(KVX_ERR_REMOTE_FULL, "queue of %d", bump());
    assert_int_equal(s, KVX_ERR_REMOTE_FULL);
    assert_int_equal(side_effects, 1); /* the detail is formatted exactly once */
    assert_int_equal(cap.calls, 1);
    assert_int_equal(cap.level, KVX_LOG_DEBUG);
    assert_string_equal(cap.msg, kvx_last_error());
    assert_non_null(strstr(cap.msg, "queue of 1"));
    kvx_error_clear();
}

static void test_log_default_sink_restored(void **state)
{
    (void)state;
    kvx_log_set_level(KVX_LOG_WARN);
    kvx_log_set_sink(NULL, NULL);

    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    kvx_warn("default-sink-marker %d", 42);
    kvx_debug("filtered-marker");
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);

    char out[4096];
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);

    assert_int_equal(cap.calls, 0); /* the capture sink is gone */
    assert_non_null(strstr(out, "default-sink-marker 42"));
    assert_non_null(strstr(out, "kvx warn"));
    assert_non_null(strstr(out, "test_status_log.c:"));
    assert_null(strstr(out, "filtered-marker"));
    assert_non_null(strchr(out, '\n'));

    /* And a sink can be installed again afterwards. */
    kvx_log_set_sink(capture_sink, NULL);
    kvx_warn("back");
    assert_int_equal(cap.calls, 1);
    assert_null(cap.user_data);
    assert_string_equal(cap.msg, "back");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: relies on the log level not being initialised yet. */
        cmocka_unit_test(test_env_level_at_first_use),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_status_unknown),
        cmocka_unit_test(test_peer_errors),
        cmocka_unit_test(test_last_error_set_clear),
        cmocka_unit_test(test_last_error_long_detail),
        cmocka_unit_test(test_last_error_per_thread),
        cmocka_unit_test(test_log_level_names),
        cmocka_unit_test_setup_teardown(test_log_set_get_level, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_log_filtering, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_log_args_not_evaluated, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_log_long_message_truncated, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_fail_macro, log_setup, log_teardown),
        cmocka_unit_test_setup_teardown(test_log_default_sink_restored, log_setup, log_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

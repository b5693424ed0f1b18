/* test_capi.c -- the public C API end to end: each test starts a local
 * cluster, runs C tasks in worker processes (this very program, re-run by
 * the node), and shuts down.  Library mode is tested with capi_lib.so. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "manta.h"

static int echo(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    for (size_t i = 0; i < nargs; i++) manta_result_set(res, i, args[i].data, args[i].size);
    return 0;
}

static int concat(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    size_t total = 0;
    for (size_t i = 0; i < nargs; i++) total += args[i].size;
    char *out = manta_result_alloc(res, 0, total);
    for (size_t i = 0; i < nargs; i++) {
        memcpy(out, args[i].data, args[i].size);
        out += args[i].size;
    }
    return 0;
}

static int fail_task(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)args, (void)nargs;
    return manta_result_error(res, "failing on purpose (%d)", 42);
}

static int sleepy(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)args, (void)nargs;
    usleep(300000);
    return manta_result_set(res, 0, "slept", 5);
}

static int crash(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)args, (void)nargs, (void)res;
    _exit(3);
}

/* Submits a child task and returns its result: tasks may call the API. */
static int nested(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    manta_ref *r;
    manta_arg a = manta_arg_bytes("inner", 5);
    if (manta_submit("echo", &a, 1, NULL, &r)) return manta_result_error(res, "submit failed");
    manta_value *v;
    if (manta_get(r, 30, &v)) return manta_result_error(res, "get failed");
    manta_result_set(res, 0, manta_value_data(v), manta_value_size(v));
    manta_value_release(v);
    manta_ref_release(r);
    (void)args, (void)nargs;
    return 0;
}

static void setup(void)
{
    manta_config cfg;
    manta_config_init(&cfg);
    cfg.num_cpus = 2;
    cfg.resources_json = "{\"widget\": 1}";
    ck_assert_int_eq(manta_init(&cfg), 0);
}

static void teardown(void) { ck_assert_int_eq(manta_shutdown(), 0); }

static char *get_str(manta_ref *r)
{
    manta_value *v;
    int rc = manta_get(r, 30, &v);
    ck_assert_msg(rc == 0, "get: %s (%s)", manta_strerror(rc), manta_last_error());
    char *s = strndup(manta_value_data(v), manta_value_size(v));
    manta_value_release(v);
    return s;
}

START_TEST(put_get)
{
    manta_ref *r;
    ck_assert_int_eq(manta_put("hello", 5, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, "hello");
    free(s);
    /* A large value goes through shared memory and reads in place. */
    size_t n = 8 << 20;
    char *big = malloc(n);
    memset(big, 'x', n);
    manta_ref *b;
    ck_assert_int_eq(manta_put(big, n, &b), 0);
    manta_value *v;
    ck_assert_int_eq(manta_get(b, 10, &v), 0);
    ck_assert_uint_eq(manta_value_size(v), n);
    ck_assert(memcmp(manta_value_data(v), big, n) == 0);
    manta_value_release(v);
    manta_ref_release(b);
    manta_ref_release(r);
    free(big);
}
END_TEST

START_TEST(task_by_value_and_by_ref)
{
    manta_ref *x, *out;
    ck_assert_int_eq(manta_put("world", 5, &x), 0);
    manta_arg args[2] = {manta_arg_bytes("hello ", 6), manta_arg_ref(x)};
    ck_assert_int_eq(manta_submit("concat", args, 2, NULL, &out), 0);
    char *s = get_str(out);
    ck_assert_str_eq(s, "hello world");
    free(s);
    /* A chain: the output of one task feeds the next. */
    manta_ref *again;
    manta_arg a2[2] = {manta_arg_ref(out), manta_arg_bytes("!", 1)};
    ck_assert_int_eq(manta_submit("concat", a2, 2, NULL, &again), 0);
    s = get_str(again);
    ck_assert_str_eq(s, "hello world!");
    free(s);
    manta_ref_release(again);
    manta_ref_release(out);
    manta_ref_release(x);
}
END_TEST

START_TEST(multiple_returns)
{
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.num_returns = 3;
    manta_arg args[3] = {manta_arg_bytes("a", 1), manta_arg_bytes("bb", 2),
                         manta_arg_bytes("ccc", 3)};
    manta_ref *out[3];
    ck_assert_int_eq(manta_submit("echo", args, 3, &o, out), 0);
    const char *want[3] = {"a", "bb", "ccc"};
    for (int i = 0; i < 3; i++) {
        char *s = get_str(out[i]);
        ck_assert_str_eq(s, want[i]);
        free(s);
        manta_ref_release(out[i]);
    }
}
END_TEST

START_TEST(errors)
{
    manta_ref *r;
    ck_assert_int_eq(manta_submit("fail", NULL, 0, NULL, &r), 0);
    manta_value *v;
    ck_assert_int_eq(manta_get(r, 30, &v), MANTA_ETASK);
    ck_assert(strstr(manta_last_error(), "failing on purpose (42)") != NULL);
    manta_ref_release(r);
    /* An unknown function fails the task, not the caller. */
    ck_assert_int_eq(manta_submit("no_such_function", NULL, 0, NULL, &r), 0);
    ck_assert_int_eq(manta_get(r, 30, &v), MANTA_ETASK);
    ck_assert(strstr(manta_last_error(), "no_such_function") != NULL);
    manta_ref_release(r);
    /* Bad input is refused with a clear code. */
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.num_cpus = -1;
    ck_assert_int_eq(manta_submit("echo", NULL, 0, &o, &r), MANTA_EINVAL);
    ck_assert(strstr(manta_last_error(), "num_cpus") != NULL);
    manta_task_opts_init(&o);
    o.resources_json = "{\"widget\": }";
    ck_assert_int_eq(manta_submit("echo", NULL, 0, &o, &r), MANTA_EINVAL);
    ck_assert_int_eq(manta_submit(NULL, NULL, 0, NULL, &r), MANTA_EINVAL);
    ck_assert_int_eq(manta_put(NULL, 5, &r), MANTA_EINVAL);
}
END_TEST

START_TEST(timeouts_and_wait)
{
    manta_ref *slow, *fast;
    ck_assert_int_eq(manta_submit("sleepy", NULL, 0, NULL, &slow), 0);
    ck_assert_int_eq(manta_put("now", 3, &fast), 0);
    manta_value *v;
    ck_assert_int_eq(manta_get(slow, 0.05, &v), MANTA_ETIMEDOUT);
    manta_ref *both[2] = {slow, fast};
    int ready[2];
    ck_assert_int_eq(manta_wait(both, 2, 1, 10, ready), 1);
    ck_assert_int_eq(ready[0], 0);
    ck_assert_int_eq(ready[1], 1);
    ck_assert_int_eq(manta_wait(both, 2, 2, 10, ready), 2);
    ck_assert_int_eq(manta_wait(both, 2, 3, 10, ready), MANTA_EINVAL);
    manta_ref_release(slow);
    manta_ref_release(fast);
}
END_TEST

START_TEST(crash_and_retry)
{
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.max_retries = 0;
    manta_ref *r;
    ck_assert_int_eq(manta_submit("crash", NULL, 0, &o, &r), 0);
    manta_value *v;
    ck_assert_int_eq(manta_get(r, 30, &v), MANTA_EWORKERDIED);
    manta_ref_release(r);
    /* The node replaces the worker: later tasks run. */
    manta_arg a = manta_arg_bytes("ok", 2);
    ck_assert_int_eq(manta_submit("echo", &a, 1, NULL, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, "ok");
    free(s);
    manta_ref_release(r);
}
END_TEST

START_TEST(resources_and_nesting)
{
    ck_assert(manta_cluster_resource("CPU") == 2.0);
    ck_assert(manta_cluster_resource("widget") == 1.0);
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.resources_json = "{\"widget\": 1}";
    manta_ref *r;
    ck_assert_int_eq(manta_submit("nested", NULL, 0, &o, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, "inner");
    free(s);
    manta_ref_release(r);
}
END_TEST

START_TEST(refs_and_init_rules)
{
    manta_ref *r;
    ck_assert_int_eq(manta_put("a", 1, &r), 0);
    manta_ref *d = manta_ref_dup(r);
    manta_ref_release(r);
    char *s = get_str(d);
    ck_assert_str_eq(s, "a");
    free(s);
    char hex[41];
    ck_assert_uint_eq(strlen(manta_ref_hex(d, hex, sizeof hex)), 40);
    manta_ref_release(d);
    ck_assert_int_eq(manta_init(NULL), MANTA_EEXIST);
    ck_assert_str_eq(manta_err_name(MANTA_ETIMEDOUT), "MANTA_ETIMEDOUT");
}
END_TEST

START_TEST(library_mode)
{
    /* A second process: drivers that name a library use manta-worker. */
    const char *lib = getenv("CAPI_LIB");
    ck_assert_ptr_nonnull(lib);
    manta_config cfg;
    manta_config_init(&cfg);
    cfg.num_cpus = 1;
    cfg.library = lib;
    ck_assert_int_eq(manta_init(&cfg), 0);
    manta_arg a = manta_arg_bytes("lib", 3);
    manta_ref *r;
    ck_assert_int_eq(manta_submit("lib_reverse", &a, 1, NULL, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, "bil");
    free(s);
    manta_ref_release(r);
    ck_assert_int_eq(manta_shutdown(), 0);
}
END_TEST

START_TEST(not_initialized)
{
    manta_ref *r;
    ck_assert_int_eq(manta_put("x", 1, &r), MANTA_ENOTINIT);
    ck_assert_int_eq(manta_submit("echo", NULL, 0, NULL, &r), MANTA_ENOTINIT);
    ck_assert_int_eq(manta_is_initialized(), 0);
}
END_TEST

int main(void)
{
    manta_register("echo", echo);
    manta_register("concat", concat);
    manta_register("fail", fail_task);
    manta_register("sleepy", sleepy);
    manta_register("crash", crash);
    manta_register("nested", nested);
    if (getenv("MANTA_WORKER")) return manta_init(NULL); /* serves tasks, never returns */

    Suite *s = suite_create("capi");
    TCase *tc = tcase_create("cluster");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, put_get);
    tcase_add_test(tc, task_by_value_and_by_ref);
    tcase_add_test(tc, multiple_returns);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, timeouts_and_wait);
    tcase_add_test(tc, crash_and_retry);
    tcase_add_test(tc, resources_and_nesting);
    tcase_add_test(tc, refs_and_init_rules);
    suite_add_tcase(s, tc);
    TCase *solo = tcase_create("solo");
    tcase_set_timeout(solo, 60);
    tcase_add_test(solo, library_mode);
    tcase_add_test(solo, not_initialized);
    suite_add_tcase(s, solo);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

/* test_capi.c -- the public C API end to end: each test starts a local
 * cluster, runs C tasks in worker processes (this very program, re-run by
 * the node), and shuts down.  Library mode is tested with capi_lib.so. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* Crashes its worker the first time (when the file named by its argument
 * does not exist yet), then succeeds: shows that a crashed task is retried. */
static int crash_once(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    char path[512];
    if (nargs != 1 || args[0].size >= sizeof path) return manta_result_error(res, "bad args");
    memcpy(path, args[0].data, args[0].size);
    path[args[0].size] = 0;
    if (access(path, F_OK) != 0) {
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        _exit(3);
    }
    return manta_result_set(res, 0, "retried", 7);
}

/* tree(depth): the number of leaves of a binary tree of tasks, each level
 * waiting in manta_get() for its two children. */
static int tree(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    int depth = 0;
    if (nargs != 1 || args[0].size != sizeof depth) return manta_result_error(res, "bad args");
    memcpy(&depth, args[0].data, sizeof depth);
    long leaves = 1;
    if (depth > 0) {
        int d = depth - 1;
        manta_arg a = manta_arg_bytes(&d, sizeof d);
        manta_ref *kids[2];
        leaves = 0;
        for (int i = 0; i < 2; i++) {
            if (manta_submit("tree", &a, 1, NULL, &kids[i]))
                return manta_result_error(res, "submit failed");
        }
        for (int i = 0; i < 2; i++) {
            manta_value *v;
            long n = 0;
            if (manta_get(kids[i], 60, &v)) return manta_result_error(res, "get failed");
            memcpy(&n, manta_value_data(v), sizeof n);
            leaves += n;
            manta_value_release(v);
            manta_ref_release(kids[i]);
        }
    }
    return manta_result_set(res, 0, &leaves, sizeof leaves);
}

/* ------------------------------------------------------------------ actors */

typedef struct acc {
    long total;
    long calls;
} acc;

static void *acc_new(const manta_arg_view *args, size_t nargs, char *err, size_t cap)
{
    acc *a = calloc(1, sizeof *a);
    if (nargs == 1 && args[0].size == sizeof(long)) memcpy(&a->total, args[0].data, sizeof(long));
    if (a->total < 0) {
        snprintf(err, cap, "a negative start (%ld) is refused", a->total);
        free(a);
        return NULL;
    }
    return a;
}

/* add(x): returns the running total; calls in order see increasing totals. */
static int acc_add(void *self, const manta_arg_view *args, size_t nargs, manta_result *res)
{
    acc *a = self;
    long x = 0;
    if (nargs == 1 && args[0].size == sizeof x) memcpy(&x, args[0].data, sizeof x);
    a->total += x;
    a->calls++;
    return manta_result_set(res, 0, &a->total, sizeof a->total);
}

static int acc_pid(void *self, const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)self, (void)args, (void)nargs;
    long pid = getpid();
    return manta_result_set(res, 0, &pid, sizeof pid);
}

static int acc_nap(void *self, const manta_arg_view *args, size_t nargs, manta_result *res)
{
    (void)self, (void)args, (void)nargs;
    usleep(300000);
    return manta_result_set(res, 0, "z", 1);
}

/* A task that adds through a handle it was given. */
static int add_via(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    manta_actor *a;
    if (nargs != 2 || manta_actor_from_arg(&args[0], &a)) return manta_result_error(res, "bad args");
    manta_arg x = manta_arg_bytes(args[1].data, args[1].size);
    manta_ref *r;
    manta_value *v;
    if (manta_actor_call(a, "add", &x, 1, 1, &r) || manta_get(r, 30, &v))
        return manta_result_error(res, "call failed: %s", manta_last_error());
    manta_result_set(res, 0, manta_value_data(v), manta_value_size(v));
    manta_value_release(v);
    manta_ref_release(r);
    manta_actor_release(a);
    return 0;
}

static long long_of(manta_ref *r)
{
    manta_value *v;
    int rc = manta_get(r, 30, &v);
    ck_assert_msg(rc == 0, "get: %s (%s)", manta_strerror(rc), manta_last_error());
    long x = 0;
    ck_assert_uint_eq(manta_value_size(v), sizeof x);
    memcpy(&x, manta_value_data(v), sizeof x);
    manta_value_release(v);
    return x;
}

START_TEST(actor_calls_in_order)
{
    manta_actor *a;
    long start = 10;
    manta_arg s = manta_arg_bytes(&start, sizeof start);
    ck_assert_int_eq(manta_actor_create("Acc", &s, 1, NULL, &a), 0);
    enum { N = 500 };
    manta_ref *r[N];
    long one = 1;
    manta_arg x = manta_arg_bytes(&one, sizeof one);
    for (int i = 0; i < N; i++) ck_assert_int_eq(manta_actor_call(a, "add", &x, 1, 1, &r[i]), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(long_of(r[i]), start + i + 1);
        manta_ref_release(r[i]);
    }
    manta_actor_release(a);
}
END_TEST

START_TEST(actor_handle_to_a_task)
{
    manta_actor *a;
    ck_assert_int_eq(manta_actor_create("Acc", NULL, 0, NULL, &a), 0);
    long five = 5;
    manta_arg args[2] = {manta_arg_actor(a), manta_arg_bytes(&five, sizeof five)};
    manta_ref *r1, *r2;
    ck_assert_int_eq(manta_submit("add_via", args, 2, NULL, &r1), 0);
    ck_assert_int_eq(long_of(r1), 5);
    ck_assert_int_eq(manta_actor_call(a, "add", &args[1], 1, 1, &r2), 0);
    ck_assert_int_eq(long_of(r2), 10);
    manta_ref_release(r1);
    manta_ref_release(r2);
    manta_actor_release(a);
}
END_TEST

START_TEST(actor_errors_and_kill)
{
    /* A constructor that fails: every call fails with MANTA_EACTORINIT. */
    manta_actor *bad;
    long neg = -1;
    manta_arg s = manta_arg_bytes(&neg, sizeof neg);
    ck_assert_int_eq(manta_actor_create("Acc", &s, 1, NULL, &bad), 0);
    manta_ref *r;
    manta_value *v;
    ck_assert_int_eq(manta_actor_call(bad, "add", NULL, 0, 1, &r), 0);
    int rc = manta_get(r, 30, &v);
    ck_assert_msg(rc == MANTA_EACTORINIT || rc == MANTA_EACTORDIED, "got %s", manta_err_name(rc));
    ck_assert_msg(strstr(manta_last_error(), "negative start") != NULL, "%s", manta_last_error());
    manta_ref_release(r);
    manta_actor_release(bad);
    /* kill: later calls fail with MANTA_EACTORDIED. */
    manta_actor *a;
    ck_assert_int_eq(manta_actor_create("Acc", NULL, 0, NULL, &a), 0);
    ck_assert_int_eq(manta_actor_call(a, "pid", NULL, 0, 1, &r), 0);
    ck_assert_int_gt(long_of(r), 0);
    manta_ref_release(r);
    ck_assert_int_eq(manta_actor_kill(a), 0);
    ck_assert_int_eq(manta_actor_call(a, "pid", NULL, 0, 1, &r), 0);
    ck_assert_int_eq(manta_get(r, 30, &v), MANTA_EACTORDIED);
    /* The detail names the actor, then the cause. */
    ck_assert_msg(!strncmp(manta_last_error(), "actor_id=", 9), "%s", manta_last_error());
    ck_assert_msg(strstr(manta_last_error(), "killed"), "%s", manta_last_error());
    manta_ref_release(r);
    manta_actor_release(a);
    /* Unknown class or method. */
    ck_assert_int_eq(manta_actor_create("NoSuchClass", NULL, 0, NULL, &a), 0);
    ck_assert_int_eq(manta_actor_call(a, "x", NULL, 0, 1, &r), 0);
    ck_assert_int_ne(manta_get(r, 30, &v), 0);
    manta_ref_release(r);
    manta_actor_release(a);
}
END_TEST

START_TEST(actor_names_and_concurrency)
{
    manta_actor_opts o;
    manta_actor_opts_init(&o);
    o.name = "only-one";
    manta_actor *a, *b;
    ck_assert_int_eq(manta_actor_create("Acc", NULL, 0, &o, &a), 0);
    ck_assert_int_eq(manta_actor_create("Acc", NULL, 0, &o, &b), MANTA_EEXIST);
    manta_actor_release(a);
    /* max_concurrency = 4: four naps of 0.3 s overlap. */
    manta_actor_opts_init(&o);
    o.max_concurrency = 4;
    ck_assert_int_eq(manta_actor_create("Acc", NULL, 0, &o, &a), 0);
    manta_ref *r[4];
    manta_value *v;
    ck_assert_int_eq(manta_actor_call(a, "pid", NULL, 0, 1, &r[0]), 0); /* wait until it runs */
    ck_assert_int_eq(manta_get(r[0], 30, &v), 0);
    manta_value_release(v);
    manta_ref_release(r[0]);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 4; i++) ck_assert_int_eq(manta_actor_call(a, "nap", NULL, 0, 1, &r[i]), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(manta_get(r[i], 30, &v), 0);
        manta_value_release(v);
        manta_ref_release(r[i]);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(dt < 0.9, "4 naps of 0.3 s took %.2f s: not concurrent", dt);
    manta_actor_release(a);
}
END_TEST

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

/* Submit fn(arg) and check that it returns `want`. */
static void expect_call(const char *fn, const char *arg, const char *want)
{
    manta_arg a = manta_arg_bytes(arg, strlen(arg));
    manta_ref *r;
    ck_assert_int_eq(manta_submit(fn, &a, 1, NULL, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, want);
    free(s);
    manta_ref_release(r);
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

/* Out-of-range amounts are refused at the call, naming the resource. */
static void refused(const manta_task_opts *to, const manta_actor_opts *ao, const char *name)
{
    manta_ref *r = NULL;
    manta_actor *a = NULL;
    int rc = to ? manta_submit("echo", NULL, 0, to, &r) : manta_actor_create("Acc", NULL, 0, ao, &a);
    ck_assert_msg(rc == MANTA_EINVAL, "%s: got %s", name, manta_err_name(rc));
    ck_assert_msg(strstr(manta_last_error(), name) != NULL, "%s", manta_last_error());
}

START_TEST(resource_amounts_out_of_range)
{
    double bad[] = {1e15, NAN, INFINITY, 1e-7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        manta_task_opts o;
        manta_task_opts_init(&o);
        o.num_cpus = bad[i];
        refused(&o, NULL, "num_cpus");
        manta_task_opts_init(&o);
        o.num_gpus = bad[i];
        refused(&o, NULL, "num_gpus");
        manta_actor_opts ao;
        manta_actor_opts_init(&ao);
        ao.num_cpus = bad[i];
        refused(NULL, &ao, "num_cpus");
    }
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.resources_json = "{\"x\": 1e15}";
    refused(&o, NULL, "'x'");
    expect_call("echo", "ok", "ok"); /* the caller goes on */
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
    /* A timeout that passes first returns what is ready by then. */
    ck_assert_int_eq(manta_wait(both, 2, 2, 0.01, ready), 1);
    ck_assert_int_eq(ready[0], 0);
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

START_TEST(retried_after_a_crash)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/manta-capi-retry-%d", (int)getpid());
    unlink(path);
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.max_retries = 1;
    manta_arg a = manta_arg_bytes(path, strlen(path));
    manta_ref *r;
    ck_assert_int_eq(manta_submit("crash_once", &a, 1, &o, &r), 0);
    char *s = get_str(r);
    ck_assert_str_eq(s, "retried");
    free(s);
    manta_ref_release(r);
    unlink(path);
}
END_TEST

START_TEST(tree_deeper_than_num_cpus)
{
    /* Two CPUs, and tasks three levels deep that wait for their children:
     * only CPUs lent back by blocked tasks let the leaves run. */
    int depth = 3;
    manta_arg a = manta_arg_bytes(&depth, sizeof depth);
    manta_ref *r;
    ck_assert_int_eq(manta_submit("tree", &a, 1, NULL, &r), 0);
    ck_assert_int_eq(long_of(r), 8);
    manta_ref_release(r);
}
END_TEST

static int wait_available(const char *name, double want)
{
    for (int i = 0; i < 1000; i++) {
        if (manta_available_resource(name) == want) return 1;
        usleep(10000);
    }
    return 0;
}

START_TEST(available_resources)
{
    ck_assert(wait_available("CPU", 2.0));
    ck_assert(wait_available("widget", 1.0));
    manta_task_opts o;
    manta_task_opts_init(&o);
    o.resources_json = "{\"widget\": 1}";
    manta_ref *r;
    ck_assert_int_eq(manta_submit("sleepy", NULL, 0, &o, &r), 0);
    ck_assert(wait_available("widget", 0.0));
    char *s = get_str(r);
    ck_assert_str_eq(s, "slept");
    free(s);
    manta_ref_release(r);
    ck_assert(wait_available("widget", 1.0));
}
END_TEST

START_TEST(released_objects_are_freed)
{
    /* 40 objects of 16 MiB through a 64 MiB store: each put fits only if
     * the objects released before it were freed. */
    manta_config cfg;
    manta_config_init(&cfg);
    cfg.num_cpus = 1;
    cfg.object_store_memory = 64 << 20;
    ck_assert_int_eq(manta_init(&cfg), 0);
    size_t n = 16 << 20;
    char *big = malloc(n);
    for (int i = 0; i < 40; i++) {
        memset(big, 'a' + i % 26, n);
        manta_ref *r;
        int rc = manta_put(big, n, &r);
        ck_assert_msg(rc == 0, "put %d: %s (%s)", i, manta_strerror(rc), manta_last_error());
        manta_value *v;
        ck_assert_int_eq(manta_get(r, 10, &v), 0);
        ck_assert_int_eq(((const char *)manta_value_data(v))[n - 1], 'a' + i % 26);
        manta_value_release(v);
        manta_ref_release(r);
    }
    free(big);
    ck_assert_int_eq(manta_shutdown(), 0);
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
    expect_call("lib_reverse", "lib", "bil");
    ck_assert_int_eq(manta_shutdown(), 0);
}
END_TEST

START_TEST(a_value_larger_than_a_frame_goes_by_the_store)
{
    /* By value, a large argument would be a task message no worker takes
     * (here anything over 1 MiB): it must go through the store. */
    setenv("MANTA_MAX_FRAME_BYTES", "1048576", 1);
    manta_config cfg;
    manta_config_init(&cfg);
    cfg.num_cpus = 1;
    ck_assert_int_eq(manta_init(&cfg), 0);
    size_t n = 2 << 20;
    char *big = malloc(n);
    memset(big, 'y', n);
    manta_arg args[2] = {manta_arg_bytes(big, n), manta_arg_bytes("!", 1)};
    manta_ref *out;
    ck_assert_int_eq(manta_submit("concat", args, 2, NULL, &out), 0);
    manta_value *v;
    int rc = manta_get(out, 30, &v);
    ck_assert_msg(rc == 0, "get: %s (%s)", manta_strerror(rc), manta_last_error());
    ck_assert_uint_eq(manta_value_size(v), n + 1);
    ck_assert(memcmp(manta_value_data(v), big, n) == 0);
    manta_value_release(v);
    manta_ref_release(out);
    free(big);
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

/* manta_init(address) honours the host, and refuses a session root that is
 * a link (the checks of src/common/priv.c and mt_start_same_host). */
START_TEST(address_host_and_root_checked)
{
    manta_config cfg;
    manta_config_init(&cfg);
    cfg.address = "db-server.invalid:6400";
    ck_assert_int_eq(manta_init(&cfg), MANTA_ECONN);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "cannot resolve host db-server.invalid"));
    cfg.address = "192.0.2.1:6400"; /* TEST-NET-1: never this machine's */
    ck_assert_int_eq(manta_init(&cfg), MANTA_ECONN);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "not an address of this machine"));
    char real[64], link[64];
    snprintf(real, sizeof real, "/tmp/manta-capi-root-%d", (int)getpid());
    snprintf(link, sizeof link, "%s-link", real);
    ck_assert_int_eq(mkdir(real, 0700), 0);
    ck_assert_int_eq(symlink(real, link), 0);
    setenv("MANTA_TEMP_DIR", link, 1);
    cfg.address = "auto";
    int rc = manta_init(&cfg);
    unlink(link);
    rmdir(real);
    ck_assert_int_eq(rc, MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "symbolic link"));
    ck_assert_int_eq(manta_is_initialized(), 0);
}
END_TEST

/* manta_init("host:port") finds the head of this user that listens there
 * by the info file of its session, and only that one. */
START_TEST(address_finds_the_head_by_its_session)
{
    char root[64], session[128], fd[16], port_s[16];
    snprintf(root, sizeof root, "/tmp/manta-capi-find-%d", (int)getpid());
    snprintf(session, sizeof session, "%s/s-capi-head", root);
    ck_assert_int_eq(mkdir(root, 0700), 0);
    setenv("MANTA_TEMP_DIR", root, 1);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t head = fork();
    if (head == 0) {
        close(p[0]);
        snprintf(fd, sizeof fd, "%d", p[1]);
        const char *d = getenv("MANTA_DAEMON");
        execl(d, d, "--session-dir", session, "--head", "--port", "0", "--host", "127.0.0.1",
              "--num-cpus", "1", "--ready-fd", fd, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64] = {0};
    ck_assert_int_gt(read(p[0], line, sizeof line - 1), 0); /* "ready <port>\n" */
    close(p[0]);
    int port = atoi(line + 6);
    ck_assert_int_gt(port, 0);
    char address[64];
    manta_config cfg;
    manta_config_init(&cfg);
    snprintf(address, sizeof address, "127.0.0.1:%d", port == 65535 ? 65534 : port + 1);
    cfg.address = address;
    ck_assert_int_eq(manta_init(&cfg), MANTA_ECONN);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "no cluster of this user"));
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(address, sizeof address, "127.0.0.1:%s", port_s);
    int rc = manta_init(&cfg);
    ck_assert_msg(rc == 0, "%s", manta_last_error());
    ck_assert_int_eq(manta_is_initialized(), 1);
    manta_shutdown();
    kill(head, SIGTERM);
    ck_assert_int_eq(waitpid(head, NULL, 0), head);
    ck_assert_int_eq(rmdir(root), 0); /* the daemon removed its session */
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
    manta_register("add_via", add_via);
    manta_register("crash_once", crash_once);
    manta_register("tree", tree);
    manta_register_actor("Acc", acc_new);
    manta_register_method("Acc", "add", acc_add);
    manta_register_method("Acc", "pid", acc_pid);
    manta_register_method("Acc", "nap", acc_nap);
    if (getenv("MANTA_WORKER")) return manta_init(NULL); /* serves tasks, never returns */

    Suite *s = suite_create("capi");
    TCase *tc = tcase_create("cluster");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, put_get);
    tcase_add_test(tc, task_by_value_and_by_ref);
    tcase_add_test(tc, multiple_returns);
    tcase_add_test(tc, errors);
    tcase_add_test(tc, resource_amounts_out_of_range);
    tcase_add_test(tc, timeouts_and_wait);
    tcase_add_test(tc, crash_and_retry);
    tcase_add_test(tc, resources_and_nesting);
    tcase_add_test(tc, refs_and_init_rules);
    tcase_add_test(tc, retried_after_a_crash);
    tcase_add_test(tc, tree_deeper_than_num_cpus);
    tcase_add_test(tc, available_resources);
    tcase_add_test(tc, actor_calls_in_order);
    tcase_add_test(tc, actor_handle_to_a_task);
    tcase_add_test(tc, actor_errors_and_kill);
    tcase_add_test(tc, actor_names_and_concurrency);
    suite_add_tcase(s, tc);
    TCase *solo = tcase_create("solo");
    tcase_set_timeout(solo, 60);
    tcase_add_test(solo, library_mode);
    tcase_add_test(solo, not_initialized);
    tcase_add_test(solo, address_host_and_root_checked);
    tcase_add_test(solo, address_finds_the_head_by_its_session);
    tcase_add_test(solo, released_objects_are_freed);
    tcase_add_test(solo, a_value_larger_than_a_frame_goes_by_the_store);
    suite_add_tcase(s, solo);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

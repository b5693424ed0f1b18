/* read_add.c -- the seeds' read_array/add task graph in C:
 *
 *   id1 = read_array.remote(file1)
 *   id2 = read_array.remote(file2)
 *   id  = add.remote(id1, id2)
 *   sum = ray.get(id)
 *
 * Workers run this same program: functions are registered before
 * manta_init(), which never returns in a worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manta.h"

#define N 1000

/* Read an array of doubles from the file named by the argument. */
static int read_array(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    if (nargs != 1) return manta_result_error(res, "read_array takes a file name");
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)args[0].size, (const char *)args[0].data);
    FILE *f = fopen(path, "rb");
    if (!f) return manta_result_error(res, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *dst = manta_result_alloc(res, 0, (size_t)size);
    size_t got = dst ? fread(dst, 1, (size_t)size, f) : 0;
    fclose(f);
    if (got != (size_t)size) return manta_result_error(res, "short read from %s", path);
    return 0;
}

/* Element-wise sum of two arrays of doubles. */
static int add(const manta_arg_view *args, size_t nargs, manta_result *res)
{
    if (nargs != 2 || args[0].size != args[1].size)
        return manta_result_error(res, "add takes two arrays of the same length");
    size_t n = args[0].size / sizeof(double);
    double *out = manta_result_alloc(res, 0, n * sizeof(double));
    const double *a = args[0].data, *b = args[1].data;
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
    return 0;
}

static int write_array(const char *path, double scale)
{
    double v[N];
    for (int i = 0; i < N; i++) v[i] = scale * i;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(v, sizeof v[0], N, f);
    fclose(f);
    return w == N ? 0 : -1;
}

static int check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s (%s)\n", what, manta_strerror(rc), manta_last_error());
        exit(1);
    }
    return rc;
}

int main(void)
{
    manta_register("read_array", read_array);
    manta_register("add", add);
    check(manta_init(NULL), "manta_init");

    char file1[64], file2[64];
    snprintf(file1, sizeof file1, "/tmp/manta-example-%d-1.bin", (int)getpid());
    snprintf(file2, sizeof file2, "/tmp/manta-example-%d-2.bin", (int)getpid());
    if (write_array(file1, 1.0) || write_array(file2, 2.0)) return 1;

    manta_ref *id1, *id2, *id;
    manta_arg a1 = manta_arg_bytes(file1, strlen(file1));
    manta_arg a2 = manta_arg_bytes(file2, strlen(file2));
    check(manta_submit("read_array", &a1, 1, NULL, &id1), "submit read_array");
    check(manta_submit("read_array", &a2, 1, NULL, &id2), "submit read_array");
    manta_arg refs[2] = {manta_arg_ref(id1), manta_arg_ref(id2)};
    check(manta_submit("add", refs, 2, NULL, &id), "submit add");

    manta_value *sum;
    check(manta_get(id, 30, &sum), "get");
    const double *s = manta_value_data(sum);
    int bad = manta_value_size(sum) != N * sizeof(double);
    for (int i = 0; !bad && i < N; i++) bad = s[i] != 3.0 * i;
    printf("sum[%d] = %g (%s)\n", N - 1, bad ? -1.0 : s[N - 1], bad ? "WRONG" : "ok");

    manta_value_release(sum);
    manta_ref_release(id1);
    manta_ref_release(id2);
    manta_ref_release(id);
    unlink(file1);
    unlink(file2);
    manta_shutdown();
    return bad;
}

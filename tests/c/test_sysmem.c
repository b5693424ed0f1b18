/* test_sysmem.c -- unit tests of src/common/sysmem.c: the memory a node
 * may use under a cgroup limit (v2 memory.max, v1 memory.limit_in_bytes,
 * read from a fake cgroup tree named by MANTA_CGROUP_ROOT) and the default
 * object store size that follows (Ray's 30% of what is available). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysmem.h"

#define GIB (1024ll * 1024 * 1024)

static char root[256];

static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Each test case starts from an empty tree. */
static void fresh_tree(void)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", root, root);
    ck_assert_int_eq(system(cmd), 0);
}

static int64_t meminfo_total(void)
{
    unsetenv("MANTA_CGROUP_ROOT");
    int64_t t = mt_mem_total();
    setenv("MANTA_CGROUP_ROOT", root, 1);
    return t;
}

START_TEST(test_v2_limit)
{
    put("memory.max", "1610612736\n"); /* 1.5 GiB */
    put("memory.current", "536870912\n");
    put("memory.stat", "anon 1\ninactive_file 104857600\nactive_file 2\n");
    ck_assert_int_eq(mt_mem_total(), 3 * GIB / 2);
    /* 1.5 GiB - (512 MiB - 100 MiB of dropable cache) */
    int64_t avail = 3 * GIB / 2 - (512ll << 20) + (100ll << 20);
    ck_assert_int_eq(mt_mem_available(), avail);
    ck_assert_int_eq(mt_mem_default_store(), (int64_t)((double)avail * 0.3));
}
END_TEST

START_TEST(test_v1_limit)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/memory", root);
    mkdir(dir, 0700);
    put("memory/memory.limit_in_bytes", "1073741824\n");
    put("memory/memory.usage_in_bytes", "0\n");
    ck_assert_int_eq(mt_mem_total(), GIB);
    ck_assert_int_eq(mt_mem_available(), GIB);
    ck_assert_int_eq(mt_mem_default_store(), (int64_t)(GIB * 0.3));
}
END_TEST

START_TEST(test_no_limit)
{
    int64_t machine = meminfo_total();
    ck_assert_int_gt(machine, 0);
    put("memory.max", "max\n"); /* v2 without a limit */
    ck_assert_int_eq(mt_mem_total(), machine);
    put("memory.max", "9223372036854771712\n"); /* v1's "unlimited": above the machine */
    ck_assert_int_eq(mt_mem_total(), machine);
}
END_TEST

START_TEST(test_store_floor)
{
    put("memory.max", "104857600\n"); /* 100 MiB: 30% is below the minimum */
    put("memory.current", "0\n");
    ck_assert_int_eq(mt_mem_default_store(), MT_STORE_MIN_BYTES);
    put("memory.current", "209715200\n"); /* over the limit: nothing available */
    ck_assert_int_eq(mt_mem_available(), 0);
}
END_TEST

static Suite *sysmem_suite(void)
{
    Suite *s = suite_create("sysmem");
    TCase *tc = tcase_create("cgroup");
    tcase_add_checked_fixture(tc, fresh_tree, NULL);
    tcase_add_test(tc, test_v2_limit);
    tcase_add_test(tc, test_v1_limit);
    tcase_add_test(tc, test_no_limit);
    tcase_add_test(tc, test_store_floor);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/mt-test-sysmem-%d", (int)getpid());
    setenv("MANTA_CGROUP_ROOT", root, 1);
    SRunner *sr = srunner_create(sysmem_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    char cmd[300];
    srunner_free(sr);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0) failed++;
    return failed != 0;
}

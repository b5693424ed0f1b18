/* test_priv.c -- unit tests of src/common/priv.c: the session root, session
 * and `latest` checks (links, owners, modes) and pid identity (a process
 * whose start time or program differs from the record is never signalled). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mt.h"
#include "priv.h"

static char base[256];

/* `base` is named in main, so that every forked test case uses (and main
 * removes) the same directory. */
static void make_base(void)
{
    mkdir(base, 0700);
    setenv("MANTA_TEMP_DIR", base, 1);
}

static void path(char *out, const char *name)
{
    snprintf(out, 512, "%s/%s", base, name);
}

/* A child that sleeps until killed. */
static pid_t sleeper(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        pause();
        _exit(0);
    }
    ck_assert_int_gt(pid, 0);
    return pid;
}

static bool alive(pid_t pid)
{
    return waitpid(pid, NULL, WNOHANG) == 0;
}

START_TEST(test_root_created_private)
{
    make_base();
    chmod(base, 0755);
    char root[4096];
    ck_assert_int_eq(mt_priv_root(root, sizeof root), 0);
    ck_assert_str_eq(root, base);
    char slashed[300];
    snprintf(slashed, sizeof slashed, "%s//", base); /* the same root, spelled otherwise */
    setenv("MANTA_TEMP_DIR", slashed, 1);
    ck_assert_int_eq(mt_priv_root(root, sizeof root), 0);
    ck_assert_str_eq(root, base);
    ck_assert_int_eq(chdir("/tmp"), 0); /* a relative root is made absolute */
    setenv("MANTA_TEMP_DIR", base + strlen("/tmp/"), 1);
    ck_assert_int_eq(mt_priv_root(root, sizeof root), 0);
    ck_assert_str_eq(root, base);
    struct stat st;
    ck_assert_int_eq(stat(root, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
}
END_TEST

START_TEST(test_root_link_refused)
{
    make_base();
    char link[512];
    path(link, "root-link");
    ck_assert_int_eq(symlink(base, link), 0);
    setenv("MANTA_TEMP_DIR", link, 1);
    char root[4096];
    ck_assert_int_eq(mt_priv_root(root, sizeof root), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "symbolic link"));
}
END_TEST

START_TEST(test_root_foreign_refused)
{
    if (geteuid() != 0) return; /* only root can give a directory away */
    make_base();
    char other[512];
    path(other, "other");
    ck_assert_int_eq(mkdir(other, 0700), 0);
    ck_assert_int_eq(chown(other, 65534, 65534), 0);
    setenv("MANTA_TEMP_DIR", other, 1);
    char root[4096];
    ck_assert_int_eq(mt_priv_root(root, sizeof root), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "owned by uid 65534"));
    ck_assert_int_eq(mt_priv_check_dir(other), MANTA_EINVAL);
}
END_TEST

START_TEST(test_session_mode_refused)
{
    make_base();
    char s[512];
    path(s, "s-wide");
    ck_assert_int_eq(mkdir(s, 0700), 0);
    ck_assert_int_eq(mt_priv_check_dir(s), 0);
    chmod(s, 0755);
    ck_assert_int_eq(mt_priv_check_dir(s), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "0755"));
    path(s, "s-missing");
    ck_assert_int_eq(mt_priv_check_dir(s), MANTA_ENOENT);
}
END_TEST

START_TEST(test_latest)
{
    make_base();
    char s[512], link[512], out[4200];
    path(s, "s-1");
    path(link, "latest");
    ck_assert_int_eq(mt_priv_latest(base, out, sizeof out), MANTA_ENOENT);
    mkdir(s, 0700);
    ck_assert_int_eq(symlink(s, link), 0); /* absolute, inside the root */
    ck_assert_int_eq(mt_priv_latest(base, out, sizeof out), 0);
    ck_assert_str_eq(out, s);
    unlink(link);
    ck_assert_int_eq(symlink("s-1", link), 0); /* relative */
    ck_assert_int_eq(mt_priv_latest(base, out, sizeof out), 0);
    ck_assert_str_eq(out, s);
    const char *bad[] = {"/tmp", "../s-1", "s-1/..", "/tmp/s-1", "x-1", "s-"};
    for (size_t i = 0; i < MT_ARRAY_LEN(bad); i++) {
        unlink(link);
        ck_assert_int_eq(symlink(bad[i], link), 0);
        ck_assert_msg(mt_priv_latest(base, out, sizeof out) == MANTA_EINVAL, "%s", bad[i]);
    }
}
END_TEST

START_TEST(test_start_time)
{
    int64_t me = mt_proc_start_time(getpid());
    ck_assert_int_gt(me, 0);
    ck_assert_int_eq(mt_proc_start_time(getpid()), me);
    pid_t child = sleeper();
    ck_assert_int_ge(mt_proc_start_time(child), me);
    kill(child, SIGKILL);
    while (mt_proc_start_time(child) >= 0) usleep(1000); /* a zombie has none */
    waitpid(child, NULL, 0);
    ck_assert_int_eq(mt_proc_start_time(child), -1);
}
END_TEST

START_TEST(test_signal_checks_identity)
{
    pid_t child = sleeper();
    int64_t start = mt_proc_start_time(child);
    char exe[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(l, 0);
    exe[l] = '\0';
    /* Wrong start time, wrong program, wrong session: left alone. */
    ck_assert_int_eq(mt_proc_signal(child, start + 1, NULL, NULL, SIGKILL), MANTA_ENOENT);
    ck_assert_int_eq(mt_proc_signal(child, -1, NULL, NULL, SIGKILL), MANTA_ENOENT);
    ck_assert_int_eq(mt_proc_signal(child, start, "/bin/sleep", NULL, SIGKILL), MANTA_ENOENT);
    ck_assert_int_eq(mt_proc_signal(child, start, NULL, "/nowhere", SIGKILL), MANTA_ENOENT);
    ck_assert(alive(child));
    ck_assert(mt_proc_is(child, start, exe, NULL));
    ck_assert_int_eq(mt_proc_signal(child, start, exe, NULL, SIGKILL), 0);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
}
END_TEST

START_TEST(test_signal_listed)
{
    make_base();
    pid_t a = sleeper(), b = sleeper();
    char file[512], text[256];
    path(file, "workers.pid");
    snprintf(text, sizeof text, "%d %lld\n%d\n%d %lld\n", (int)a,
             (long long)mt_proc_start_time(a) + 7 /* not a */, (int)a /* no start time */,
             (int)b, (long long)mt_proc_start_time(b));
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(mt_proc_signal_listed(file, NULL, NULL, SIGKILL), 1);
    ck_assert_int_eq(waitpid(b, NULL, 0), b);
    ck_assert(alive(a));
    kill(a, SIGKILL);
    waitpid(a, NULL, 0);
}
END_TEST

/* A line longer than a reader's buffer is one line: its tail, though it
 * reads "<pid> <start>", is not an entry of its own. */
START_TEST(test_signal_listed_long_line)
{
    make_base();
    pid_t c = sleeper();
    char file[512], text[512];
    path(file, "workers.pid");
    snprintf(text, sizeof text, "1%200s%d %lld\n", "", (int)c, (long long)mt_proc_start_time(c));
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(mt_proc_signal_listed(file, NULL, NULL, SIGKILL), 0);
    ck_assert(alive(c));
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
}
END_TEST

static Suite *priv_suite(void)
{
    Suite *s = suite_create("priv");
    TCase *tc = tcase_create("dirs");
    tcase_add_test(tc, test_root_created_private);
    tcase_add_test(tc, test_root_link_refused);
    tcase_add_test(tc, test_root_foreign_refused);
    tcase_add_test(tc, test_session_mode_refused);
    tcase_add_test(tc, test_latest);
    suite_add_tcase(s, tc);
    tc = tcase_create("procs");
    tcase_add_test(tc, test_start_time);
    tcase_add_test(tc, test_signal_checks_identity);
    tcase_add_test(tc, test_signal_listed);
    tcase_add_test(tc, test_signal_listed_long_line);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/mt-test-priv-%d", (int)getpid());
    SRunner *sr = srunner_create(priv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0) failed++;
    return failed != 0;
}

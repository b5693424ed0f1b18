/* test_layout.c -- unit tests of src/common/layout.c: session paths, and
 * info, pid and token files written and read back, including hostile ones
 * (long lines, missing or repeated keys, numbers out of range). */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"
#include "mt.h"

static char base[256];

/* A fresh session directory under `base` (named in main). */
static void session(char *out)
{
    mkdir(base, 0700);
    snprintf(out, 512, "%s/s-test-%d", base, (int)getpid());
    mkdir(out, 0700);
}

static void put(const char *dir, const char *name, const char *text)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const mt_layout_info sample = {
    .node_id = "00ff", .socket = "/tmp/x/s-1/daemon.sock", .host = "127.0.0.1", .port = 6379,
    .head = true, .pid = 4242, .start = 123456789012LL, .exe = "/opt/manta/_bin/mantad"};

/* A good info file's text with `line` in place of the one for `key`
 * (NULL: drop it). */
static void info_with(char *out, size_t cap, const char *key, const char *line)
{
    const char *lines[] = {"node_id=00ff", "socket=/s/daemon.sock", "host=h", "port=-1",
                           "head=0",       "pid=99",                "start=0", "exe=/bin/x"};
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < MT_ARRAY_LEN(lines); i++) {
        const char *l = lines[i];
        if (!strncmp(l, key, strlen(key)) && l[strlen(key)] == '=') l = line;
        if (l) len += (size_t)snprintf(out + len, cap - len, "%s\n", l);
    }
}

static int parse(const char *text, mt_layout_info *out)
{
    return mt_layout_info_parse(text, strlen(text), out);
}

START_TEST(test_paths)
{
    char p[MT_LAYOUT_PATH_MAX];
    ck_assert_int_eq(mt_layout_path("/r/s-1", MT_LAYOUT_SOCKET, p, sizeof p), 0);
    ck_assert_str_eq(p, "/r/s-1/daemon.sock");
    ck_assert_int_eq(mt_layout_path("/r/s-1", MT_LAYOUT_LOG, p, sizeof p), 0);
    ck_assert_str_eq(p, "/r/s-1/logs/mantad.log");
    ck_assert_int_eq(mt_layout_worker_socket("/r/s-1", "ab", p, sizeof p), 0);
    ck_assert_str_eq(p, "/r/s-1/w/ab");
    ck_assert_int_eq(mt_layout_session_of("/r/s-1/daemon.sock", p, sizeof p), 0);
    ck_assert_str_eq(p, "/r/s-1");
    ck_assert_int_eq(mt_layout_session_of("/r/s-1/other.sock", p, sizeof p), MANTA_EINVAL);
    ck_assert_int_eq(mt_layout_path("/r/s-1", MT_LAYOUT_NFILES, p, sizeof p), MANTA_EINVAL);
    ck_assert_str_eq(mt_layout_key(MT_LAYOUT_WORKERS_PID), "workers_pid");
    /* A path that does not fit is an error, never a truncated path. */
    char small[12];
    ck_assert_int_eq(mt_layout_path("/r/s-1", MT_LAYOUT_SOCKET, small, sizeof small), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "too long"));
    /* Two new sessions of one process within a second differ. */
    char a[MT_LAYOUT_PATH_MAX], b[MT_LAYOUT_PATH_MAX];
    ck_assert_int_eq(mt_layout_new_session("/r", a, sizeof a), 0);
    ck_assert_int_eq(mt_layout_new_session("/r", b, sizeof b), 0);
    ck_assert_str_ne(a, b);
    ck_assert(!strncmp(a, "/r/s-", 5) && mt_layout_is_session(a + 3));
    ck_assert(!mt_layout_is_session("s-") && !mt_layout_is_session("latest") &&
              !mt_layout_is_session("s-a/b"));
}
END_TEST

START_TEST(test_info_round_trip)
{
    char dir[512];
    session(dir);
    mt_layout_info back;
    ck_assert_int_eq(mt_layout_info_read(dir, &back), MANTA_ENOENT);
    ck_assert_int_eq(mt_layout_info_write(dir, &sample), 0);
    ck_assert_int_eq(mt_layout_info_read(dir, &back), 0);
    ck_assert_str_eq(back.node_id, sample.node_id);
    ck_assert_str_eq(back.socket, sample.socket);
    ck_assert_str_eq(back.host, sample.host);
    ck_assert_str_eq(back.exe, sample.exe);
    ck_assert_int_eq(back.port, 6379);
    ck_assert(back.head);
    ck_assert_int_eq(back.pid, 4242);
    ck_assert_int_eq(back.start, 123456789012LL);
    /* Unknown keys (a newer writer's) are ignored; the order is free. */
    char text[1024];
    info_with(text, sizeof text, "head", "head=1\nzone=b");
    ck_assert_int_eq(parse(text, &back), 0);
    ck_assert(back.head);
    struct stat st;
    char p[600];
    snprintf(p, sizeof p, "%s/info", dir);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    /* A leftover temporary file open to all does not lend the new file its
     * mode. */
    snprintf(p, sizeof p, "%s/info.tmp", dir);
    put(dir, "info.tmp", "x");
    ck_assert_int_eq(chmod(p, 0666), 0);
    ck_assert_int_eq(mt_layout_info_write(dir, &sample), 0);
    snprintf(p, sizeof p, "%s/info", dir);
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

/* Each of these is refused, naming what is wrong. */
START_TEST(test_info_malformed)
{
    static const struct {
        const char *key, *line, *says;
    } cases[] = {
        {"pid", NULL, "no pid"},
        {"exe", NULL, "no exe"},
        {"pid", "pid=99\npid=98", "pid given twice"},
        {"pid", "pid=1", "pid=1"},
        {"pid", "pid=2147483648", "pid=2147483648"},
        {"pid", "pid=99999999999999999999999", "pid="},
        {"pid", "pid= 99", "pid= 99"},
        {"pid", "pid=99x", "pid=99x"},
        {"start", "start=-1", "start=-1"},
        {"start", "start=9223372036854775808", "start="},
        {"port", "port=65536", "port=65536"},
        {"head", "head=2", "head=2"},
        {"node_id", "node_id=zz", "node_id must be hex"},
        {"node_id", "node_id=000000000000000000000000000000000", "node_id is 33 bytes"},
        {"host", "just words", "line 3 is not key=value"},
    };
    for (size_t i = 0; i < MT_ARRAY_LEN(cases); i++) {
        char text[1024];
        mt_layout_info out;
        info_with(text, sizeof text, cases[i].key, cases[i].line);
        ck_assert_msg(parse(text, &out) == MANTA_EINVAL, "accepted: %s", text);
        ck_assert_msg(strstr(manta_last_error(), cases[i].says), "%s: said \"%s\"", cases[i].says,
                      manta_last_error());
    }
    mt_layout_info out;
    ck_assert_int_eq(parse("", &out), MANTA_EINVAL);
    ck_assert_int_eq(mt_layout_info_parse("pid=9\0", 6, &out), MANTA_EINVAL);
}
END_TEST

/* A value longer than its field is refused, never cut (a cut value would
 * name another socket or program); a file over 64 KiB is not read. */
START_TEST(test_info_long_lines)
{
    size_t big = MT_LAYOUT_PATH_MAX + 100;
    char *line = malloc(big + 16), *text = malloc(big + 1024);
    memcpy(line, "exe=/", 5);
    memset(line + 5, 'a', big);
    line[5 + big] = '\0';
    mt_layout_info out;
    info_with(text, big + 1024, "exe", line);
    ck_assert_int_eq(parse(text, &out), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "exe is"));
    /* A line longer than any reader's buffer: what follows it in the same
     * line is not taken for a key of its own. */
    snprintf(line, big + 16, "host=%0*d", (int)(sizeof out.host) - 2, 0);
    size_t hl = strlen(line);
    snprintf(line + hl, big + 16 - hl, "pid=77");
    info_with(text, big + 1024, "host", line);
    ck_assert_int_eq(parse(text, &out), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "host is"));

    char dir[512], p[600];
    session(dir);
    snprintf(p, sizeof p, "%s/info", dir);
    FILE *f = fopen(p, "w");
    for (int i = 0; i < 70; i++) fprintf(f, "pad=%01019d\n", 0);
    fclose(f);
    ck_assert_int_eq(mt_layout_info_read(dir, &out), MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "larger than"));
    free(line);
    free(text);
}
END_TEST

START_TEST(test_pids_round_trip)
{
    char dir[512], p[600];
    session(dir);
    mt_layout_pid in[3] = {{2, 0}, {4242, 77}, {INT32_MAX, INT64_MAX}}, *out;
    size_t n;
    ck_assert_int_eq(mt_layout_pids_write(dir, MT_LAYOUT_WORKERS_PID, in, 3), 0);
    snprintf(p, sizeof p, "%s/workers.pid", dir);
    ck_assert_int_eq(mt_layout_pids_read(p, &out, &n), 0);
    ck_assert_uint_eq(n, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(out[i].pid, in[i].pid);
        ck_assert_int_eq(out[i].start, in[i].start);
    }
    free(out);
    /* An empty list is an empty file, read back as no entries. */
    ck_assert_int_eq(mt_layout_pids_write(dir, MT_LAYOUT_WORKERS_PID, in, 0), 0);
    ck_assert_int_eq(mt_layout_pids_read(p, &out, &n), 0);
    ck_assert_uint_eq(n, 0);
    free(out);
    snprintf(p, sizeof p, "%s/none.pid", dir);
    ck_assert_int_eq(mt_layout_pids_read(p, &out, &n), MANTA_ENOENT);
}
END_TEST

/* Lines that are not exactly "<pid> <start>" are skipped; the others are
 * kept.  A long line is one line: its tail never becomes an entry. */
START_TEST(test_pids_malformed)
{
    char text[2048];
    int len = snprintf(text, sizeof text,
                       "10 20\n"
                       "11\n"                        /* no start time */
                       "1 5\n"                       /* pid 1 is never ours */
                       "2147483648 5\n"              /* pid out of range */
                       "12 -3\n"                     /* negative start */
                       "13 99999999999999999999\n"   /* start out of range */
                       "14 5 6\n"                    /* trailing field */
                       "x15 5\n"
                       "16  5\n"                     /* two spaces */
                       "%0300d 17 18\n"              /* a long line ending like an entry */
                       "19 20",                      /* no final newline: still a line */
                       0);
    mt_layout_pid *out;
    size_t n;
    mt_layout_pids_parse(text, (size_t)len, &out, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(out[0].pid, 10);
    ck_assert_int_eq(out[0].start, 20);
    ck_assert_int_eq(out[1].pid, 19);
    ck_assert_int_eq(out[1].start, 20);
    free(out);
}
END_TEST

START_TEST(test_token)
{
    char dir[512], tok[65];
    session(dir);
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    ck_assert_int_eq(mt_layout_token_read(dir, tok), MANTA_ENOENT);
    ck_assert_int_eq(mt_layout_token_write(dir, good), 0);
    ck_assert_int_eq(mt_layout_token_read(dir, tok), 0);
    ck_assert_str_eq(tok, good);
    ck_assert_int_eq(mt_layout_token_write(dir, "abc"), MANTA_EINVAL);
    char text[200];
    snprintf(text, sizeof text, "%s\n", good);
    put(dir, "token", text);
    ck_assert_int_eq(mt_layout_token_read(dir, tok), 0);
    snprintf(text, sizeof text, "%s0\n", good);
    put(dir, "token", text);
    ck_assert_int_eq(mt_layout_token_read(dir, tok), MANTA_EINVAL);
    put(dir, "token", "zz");
    ck_assert_int_eq(mt_layout_token_read(dir, tok), MANTA_EINVAL);
}
END_TEST

START_TEST(test_latest)
{
    char dir[512], link[MT_LAYOUT_PATH_MAX], target[MT_LAYOUT_PATH_MAX];
    session(dir);
    ck_assert_int_eq(mt_layout_latest_set(base, dir), 0);
    ck_assert_int_eq(mt_layout_latest_path(base, link, sizeof link), 0);
    ssize_t l = readlink(link, target, sizeof target - 1);
    ck_assert_int_gt(l, 0);
    target[l] = '\0';
    ck_assert_str_eq(target, dir);
    mt_layout_latest_drop(base, NULL); /* names a live directory: kept */
    ck_assert_int_eq(access(link, F_OK), 0);
    mt_layout_latest_drop(base, "/elsewhere/s-other"); /* not ours: kept */
    ck_assert_int_eq(access(link, F_OK), 0);
    mt_layout_latest_drop(base, dir);
    ck_assert_int_ne(access(link, F_OK), 0);
    /* A dangling link goes with NULL. */
    ck_assert_int_eq(mt_layout_latest_set(base, "s-gone"), 0);
    mt_layout_latest_drop(base, NULL);
    ck_assert_int_lt(readlink(link, target, sizeof target), 0);
}
END_TEST

static Suite *layout_suite(void)
{
    Suite *s = suite_create("layout");
    TCase *tc = tcase_create("layout");
    tcase_add_test(tc, test_paths);
    tcase_add_test(tc, test_info_round_trip);
    tcase_add_test(tc, test_info_malformed);
    tcase_add_test(tc, test_info_long_lines);
    tcase_add_test(tc, test_pids_round_trip);
    tcase_add_test(tc, test_pids_malformed);
    tcase_add_test(tc, test_token);
    tcase_add_test(tc, test_latest);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(base, sizeof base, "/tmp/mt-test-layout-%d", (int)getpid());
    SRunner *sr = srunner_create(layout_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd)) {
    }
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

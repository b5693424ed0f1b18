/* test_gate.c -- unit tests of src/net/gate.c on a real loop and a unix
 * listener: the cap on peers waiting for their Hello (the listener pauses,
 * then the oldest silent peer gives way), the deadline, the small frame limit before Hello and its
 * lifting for frames read behind the Hello, and accept() out of descriptors
 * (the backlog is drained, or without a reserve descriptor the listener
 * backs off: never spun on). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "gate.h"
#include "mt.h"
#include "sock.h"
#include "wire.h"

/* ---------------------------------------------------------------- fixture */

static uv_loop_t loop;
static mt_conn_loop cl;
static mt_gate gate;
static int lfd = -1;
static char path[108];
static int accepted, closed, frames, last_close;
static size_t last_len;

static int on_frame(mt_conn *c, const mt_frame *f, void *ud)
{
    MT_UNUSED(ud);
    if (f->type == MANTA__MSG_TYPE__MSG_HELLO) {
        mt_gate_pass(c);
        return 0;
    }
    frames++;
    last_len = f->len;
    return 0;
}

static void on_close(mt_conn *c, int reason, void *ud)
{
    MT_UNUSED(ud);
    closed++;
    last_close = reason;
    mt_conn_unref(c); /* the creation reference */
}

static mt_conn *on_accept(mt_gate *g, int fd, void *ud)
{
    MT_UNUSED(g), MT_UNUSED(ud);
    accepted++;
    return mt_conn_new(&cl, fd, on_frame, on_close, NULL);
}

/* Set the gate's tunables, then listen on a fresh unix socket. */
static void setup(const char *hello_bytes, const char *timeout_ms, const char *max_waiting)
{
    setenv("MANTA_HELLO_FRAME_BYTES", hello_bytes, 1);
    setenv("MANTA_HELLO_TIMEOUT_MS", timeout_ms, 1);
    setenv("MANTA_MAX_HELLO_CONNS", max_waiting, 1);
    mt_config_load();
    accepted = closed = frames = last_close = 0;
    snprintf(path, sizeof path, "/tmp/mt-gate-test-%d.sock", (int)getpid());
    ck_assert_int_eq(mt_sock_listen_unix(path, &lfd), 0);
    uv_loop_init(&loop);
    ck_assert_int_eq(mt_conn_loop_init(&cl, &loop), 0);
    ck_assert_int_eq(mt_gate_start(&gate, &cl, lfd, on_accept, NULL), 0);
}

static int client(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_frame(int fd, uint16_t type, const ProtobufCMessage *m)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, type, m);
    ck_assert_int_eq(mt_sock_write_all(fd, b.data, b.len, 5), 0);
    mt_buf_free(&b);
}

static void send_hello(int fd)
{
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    send_frame(fd, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
}

/* Run the loop until *counter reaches want (or 5 s pass). */
static bool run_until(const int *counter, int want)
{
    double deadline = mt_now_s() + 5;
    while (*counter < want && mt_now_s() < deadline) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    return *counter >= want;
}

/* Run the loop for `s` seconds (to see that something does NOT happen). */
static void run_for(double s)
{
    double until = mt_now_s() + s;
    while (mt_now_s() < until) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
}

/* Whether the gate hung up on client fd (EOF or reset). */
static bool hung_up(int fd)
{
    char c;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t r = recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_cap_pauses_then_the_oldest_silent_peer_gives_way)
{
    setup("65536", "60000", "3");
    int fds[5];
    for (int i = 0; i < 5; i++) fds[i] = client();
    ck_assert(run_until(&accepted, 3));
    ck_assert_int_eq(accepted, 3); /* young peers keep their place: the rest wait */
    ck_assert_uint_eq(gate.waiting, 3);
    send_hello(fds[0]); /* one passes: room for one more */
    ck_assert(run_until(&accepted, 4));
    ck_assert_uint_eq(gate.waiting, 3);
    /* The last one gets in once the oldest silent peer has had its grace
     * (not at the 60 s deadline): that one is hung up on. */
    ck_assert(run_until(&accepted, 5));
    ck_assert_int_eq(closed, 1);
    ck_assert(hung_up(fds[1]));
    ck_assert_uint_eq(gate.waiting, 3);
    for (int i = 0; i < 5; i++) close(fds[i]);
}
END_TEST

START_TEST(test_deadline_closes_a_silent_peer)
{
    setup("65536", "100", "64");
    int quiet = client(), talker = client();
    send_hello(talker);
    double t0 = mt_now_s();
    ck_assert(run_until(&closed, 1));
    ck_assert(mt_now_s() - t0 >= 0.09);
    ck_assert_int_eq(last_close, MANTA_ETIMEDOUT);
    ck_assert(hung_up(quiet));
    run_for(0.2);
    ck_assert_int_eq(closed, 1); /* the one that said Hello stays */
    ck_assert_uint_eq(gate.waiting, 0);
    close(quiet);
    close(talker);
}
END_TEST

START_TEST(test_frame_limit_before_and_after_hello)
{
    setup("1024", "60000", "64");
    static uint8_t big[100 * 1024];
    Manta__KvPut kv = MANTA__KV_PUT__INIT;
    kv.value = MT_BIN(big, sizeof big);
    /* Hello and a large frame in one write: the frame is read with the
     * limit of a peer that passed. */
    int ok = client();
    mt_buf b;
    mt_buf_init(&b);
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_KV_PUT, &kv.base);
    ck_assert_int_eq(mt_sock_write_all(ok, b.data, b.len, 5), 0);
    mt_buf_free(&b);
    ck_assert(run_until(&frames, 1));
    ck_assert_uint_gt(last_len, sizeof big);
    ck_assert_int_eq(closed, 0);
    /* The same frame before a Hello: refused by its header. */
    int bad = client();
    uint8_t hdr[MT_FRAME_HDR] = {0, 0, 0, 0x40, MANTA__MSG_TYPE__MSG_KV_PUT, 0, MT_WIRE_VERSION, 0};
    ck_assert_int_eq(mt_sock_write_all(bad, hdr, sizeof hdr, 5), 0);
    ck_assert(run_until(&closed, 1));
    ck_assert_int_eq(last_close, MANTA_ETOOBIG);
    ck_assert(hung_up(bad));
    close(ok);
    close(bad);
}
END_TEST

START_TEST(test_out_of_descriptors_drains_the_backlog)
{
    setup("65536", "60000", "64");
    int fds[4];
    for (int i = 0; i < 4; i++) fds[i] = client();
    /* No descriptor left to accept with (all numbers below the limit are
     * taken), so accept() fails with EMFILE. */
    int lowest = dup(0);
    close(lowest);
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    run_for(0.1);
    ck_assert_int_eq(accepted, 0);
    /* Each peer was taken off the backlog and hung up on: the listener is
     * not left readable for the loop to spin on. */
    for (int i = 0; i < 4; i++) ck_assert(hung_up(fds[i]));
    ck_assert_int_ge(cl.reserve_fd, 0);
    for (int i = 0; i < 4; i++) close(fds[i]);
}
END_TEST

START_TEST(test_out_of_descriptors_without_reserve_backs_off)
{
    setup("65536", "60000", "64");
    int fd = client();
    /* Another thread took the reserve's number: nothing to refuse with. */
    close(cl.reserve_fd);
    cl.reserve_fd = -1;
    int lowest = dup(0);
    close(lowest);
    struct rlimit rl, was;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    was = rl;
    rl.rlim_cur = (rlim_t)lowest;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    /* The listener stays readable: it must stop watching it, not spin. */
    double until = mt_now_s() + 2;
    while (!gate.paused && mt_now_s() < until) uv_run(&loop, UV_RUN_NOWAIT);
    ck_assert(gate.paused);
    ck_assert_int_eq(accepted, 0);
    /* Descriptors again: it resumes, takes a reserve and the peer. */
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &was), 0);
    ck_assert(run_until(&accepted, 1));
    ck_assert_int_ge(cl.reserve_fd, 0);
    close(fd);
}
END_TEST

/* ---------------------------------------------------------------- main */

static void teardown(void)
{
    if (path[0]) unlink(path);
}

static Suite *gate_suite(void)
{
    Suite *s = suite_create("gate");
    TCase *tc = tcase_create("gate");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_add_test(tc, test_cap_pauses_then_the_oldest_silent_peer_gives_way);
    tcase_add_test(tc, test_deadline_closes_a_silent_peer);
    tcase_add_test(tc, test_frame_limit_before_and_after_hello);
    tcase_add_test(tc, test_out_of_descriptors_drains_the_backlog);
    tcase_add_test(tc, test_out_of_descriptors_without_reserve_backs_off);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

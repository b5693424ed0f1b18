/* test_sock.c -- unit tests of src/net/sock.c on loopback only: connects
 * that do not wait (refused, unanswered within their timeout, answered),
 * a TCP port bound for later that nothing can reach until it listens, and
 * the wildcard host and default-route address helpers. */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mt.h"
#include "sock.h"

/* A loopback listener with a full backlog that never accepts: SYNs to it
 * are dropped, as by a host that black-holes its packets.  fill[] holds
 * the connections that filled it. */
static int black_hole(int fill[2], int *port)
{
    int l;
    ck_assert_int_eq(mt_sock_bind_tcp("127.0.0.1", 0, &l, port), 0);
    ck_assert_int_eq(listen(l, 0), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", *port);
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(mt_sock_connect_start(ep, 60000, &fill[i]), 0);
    return l;
}

/* Wait for fd to report an error or writability; returns SO_ERROR. */
static int wait_result(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    ck_assert_int_eq(poll(&p, 1, timeout_ms), 1);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
    return soerr;
}

START_TEST(test_connect_start_never_waits_and_times_out)
{
    int fill[2], port;
    int l = black_hole(fill, &port);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    int fd;
    double t0 = mt_now_s();
    ck_assert_int_eq(mt_sock_connect_start(ep, 300, &fd), 0);
    ck_assert(mt_now_s() - t0 < 0.1);
    ck_assert_int_eq(wait_result(fd, 5000), ETIMEDOUT);
    double took = mt_now_s() - t0;
    ck_assert_msg(took >= 0.25 && took < 3.0, "gave up after %.2f s", took);
    close(fd);
    close(fill[0]);
    close(fill[1]);
    close(l);
}
END_TEST

START_TEST(test_connect_start_connects_and_fails_fast)
{
    int l, port, fd;
    ck_assert_int_eq(mt_sock_listen_tcp("127.0.0.1", 0, &l, &port), 0);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    ck_assert_int_eq(mt_sock_connect_start(ep, 1000, &fd), 0);
    ck_assert_int_eq(wait_result(fd, 5000), 0);
    mt_sock_connected(fd);
    ck_assert_int_eq(write(fd, "x", 1), 1);
    close(fd);
    close(l);
    /* Nothing listens there now: refused, not timed out. */
    ck_assert_int_eq(mt_sock_connect_start(ep, 60000, &fd), 0);
    ck_assert_int_eq(wait_result(fd, 5000), ECONNREFUSED);
    close(fd);
    /* A unix socket that is not there fails at once. */
    mt_err_clear();
    ck_assert_int_eq(mt_sock_connect_start("unix:/nonexistent/manta.sock", 1000, &fd), MANTA_ECONN);
    ck_assert_ptr_nonnull(strstr(manta_last_error(), "unix:/nonexistent/manta.sock"));
    ck_assert_int_eq(mt_sock_connect_start("tcp:nohostport", 1000, &fd), MANTA_EINVAL);
}
END_TEST

START_TEST(test_bound_port_answers_only_once_listening)
{
    int b, port, fd;
    ck_assert_int_eq(mt_sock_bind_tcp("127.0.0.1", 0, &b, &port), 0);
    ck_assert_int_gt(port, 0);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp:127.0.0.1:%d", port);
    /* Ours, yet refused. */
    int other;
    ck_assert_int_ne(mt_sock_bind_tcp("127.0.0.1", port, &other, NULL), 0);
    ck_assert_int_eq(mt_sock_connect_start(ep, 1000, &fd), 0);
    ck_assert_int_eq(wait_result(fd, 5000), ECONNREFUSED);
    close(fd);
    ck_assert_int_eq(mt_sock_listen_bound(b), 0);
    ck_assert_int_eq(mt_sock_connect_start(ep, 1000, &fd), 0);
    ck_assert_int_eq(wait_result(fd, 5000), 0);
    close(fd);
    close(b);
}
END_TEST

START_TEST(test_wildcard_and_route_address)
{
    ck_assert(mt_sock_host_is_any("0.0.0.0"));
    ck_assert(mt_sock_host_is_any("::"));
    ck_assert(mt_sock_host_is_any("0:0::0"));
    ck_assert(!mt_sock_host_is_any("127.0.0.1"));
    ck_assert(!mt_sock_host_is_any("::1"));
    ck_assert(!mt_sock_host_is_any("localhost"));
    ck_assert(!mt_sock_host_is_any(""));
    char addr[64];
    mt_sock_route_address(false, addr, sizeof addr);
    ck_assert(!mt_sock_host_is_any(addr));
    /* An address of this machine: we can listen on it (nothing is sent). */
    int fd, port;
    ck_assert_msg(mt_sock_bind_tcp(addr, 0, &fd, &port) == 0, "cannot bind %s", addr);
    close(fd);
    /* Too small a buffer still gives a terminated string. */
    char tiny[4];
    mt_sock_route_address(false, tiny, sizeof tiny);
    ck_assert_uint_lt(strlen(tiny), sizeof tiny);
}
END_TEST

static Suite *sock_suite(void)
{
    Suite *s = suite_create("sock");
    TCase *tc = tcase_create("connect");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_connect_start_never_waits_and_times_out);
    tcase_add_test(tc, test_connect_start_connects_and_fails_fast);
    tcase_add_test(tc, test_bound_port_answers_only_once_listening);
    suite_add_tcase(s, tc);
    tc = tcase_create("addresses");
    tcase_add_test(tc, test_wildcard_and_route_address);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sock_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}

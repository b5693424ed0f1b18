/* test_cluster.c -- unit tests of node membership, the head's node table
 * (src/node/cluster.c): a head built in memory (tests/support/memnode.c),
 * nodes and a command that speak to it over socketpairs, and a clock the
 * test moves (mt_now_s is wrapped at link time).  Covered: a node joins
 * with Hello (role NODE) and is answered; its ResourceReports show in the
 * head's status and in the ClusterView sent to nodes; a node silent for
 * node_timeout_ms is declared dead, the others hear Event NODE_DIED and see
 * it dead in the view, and its id is refused if it says Hello again; a node
 * whose connection closes is declared dead too. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "memnode.h"
#include "mt.h"
#include "wire.h"

#define HEAD_ID 0x48
#define NODE_A 0x31
#define NODE_B 0x32
#define NODE_C 0x33
#define T(t) MANTA__MSG_TYPE__MSG_##t

static mt_node N;
static uv_loop_t L;
static mt_arena A;
static char dir[256];

/* ---------------------------------------------------------------- clock */

/* Seconds added to the real clock: the test moves time forward. */
static double skew;

double __real_mt_now_s(void);
double __wrap_mt_now_s(void);
double __wrap_mt_now_s(void) { return __real_mt_now_s() + skew; }

/* ---------------------------------------------------------------- peers */

/* The test's end of a connection to the head, and what it read of it. */
typedef struct peer {
    int fd;
    bool closed; /* the head closed its end */
    mt_buf in;
} peer;

static void pump(void)
{
    for (int i = 0; i < 4; i++) uv_run(N.loop, UV_RUN_NOWAIT);
}

static void peer_connect(peer *p)
{
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    mt_node_add_client(&N, sv[0]);
    p->fd = sv[1];
    p->closed = false;
    mt_buf_init(&p->in);
}

static void peer_close(peer *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    mt_buf_free(&p->in);
}

static void peer_send(peer *p, uint16_t type, const ProtobufCMessage *m)
{
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, type, m);
    ck_assert_int_eq(send(p->fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL), (ssize_t)b.len);
    mt_buf_free(&b);
    pump();
}

static void peer_read(peer *p)
{
    uint8_t buf[1 << 16];
    for (;;) {
        ssize_t r = recv(p->fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            mt_buf_append(&p->in, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) p->closed = true;
        return;
    }
}

/* The next message of `type` the head sent to p, decoded into A (frames of
 * other types before it are skipped); NULL if the head closed the
 * connection first or none came within two seconds. */
static ProtobufCMessage *expect(peer *p, uint16_t type)
{
    double deadline = __real_mt_now_s() + 2;
    while (__real_mt_now_s() < deadline) {
        pump();
        peer_read(p);
        mt_frame f;
        while (mt_wire_peek(mt_buf_head(&p->in), mt_buf_avail(&p->in), SIZE_MAX, &f) == 1) {
            size_t whole = MT_FRAME_HDR + (size_t)f.len;
            ProtobufCMessage *m = NULL;
            char err[256];
            if (f.type == type)
                ck_assert_msg(mt_wire_decode(f.type, f.payload, f.len, &A, &m, err, sizeof err) == 0,
                              "%s", err);
            mt_buf_consume(&p->in, whole);
            if (m) return m;
        }
        if (p->closed) return NULL;
    }
    return NULL;
}

/* Drop what the head has sent p so far. */
static void peer_skip(peer *p)
{
    pump();
    peer_read(p);
    mt_buf_consume(&p->in, mt_buf_avail(&p->in));
}

/* Whether the head closes p within two seconds. */
static bool closed_by_head(peer *p)
{
    double deadline = __real_mt_now_s() + 2;
    while (!p->closed && __real_mt_now_s() < deadline) {
        pump();
        peer_read(p);
        mt_buf_consume(&p->in, mt_buf_avail(&p->in));
    }
    return p->closed;
}

/* ---------------------------------------------------------------- messages */

static void put_res(Manta__Resource *r, const char *name, int64_t units)
{
    manta__resource__init(r);
    r->name = (char *)name;
    r->amount = units * MT_RES_UNIT;
}

/* A node's status as it reports it, with the storage it points into. */
typedef struct node_status {
    Manta__NodeStatus ns;
    uint8_t nid[MT_NODE_ID_LEN];
    char ep[32];
    Manta__Resource res[2], *total[1], *avail[1];
} node_status;

/* Node `id`'s status: CPU `cpus` in all, `free_cpus` of them free. */
static void status_of(node_status *s, uint8_t id, int cpus, int free_cpus)
{
    Manta__NodeStatus *ns = &s->ns;
    manta__node_status__init(ns);
    memset(s->nid, id, MT_NODE_ID_LEN);
    snprintf(s->ep, sizeof s->ep, "tcp:127.0.0.1:%d", 1000 + id);
    put_res(&s->res[0], "CPU", cpus);
    put_res(&s->res[1], "CPU", free_cpus);
    s->total[0] = &s->res[0];
    s->avail[0] = &s->res[1];
    ns->node_id = MT_BIN(s->nid, MT_NODE_ID_LEN);
    ns->endpoint = ns->address = s->ep;
    ns->alive = true;
    ns->total = s->total;
    ns->n_total = 1;
    ns->available = s->avail;
    ns->n_available = 1;
}

/* Node `id` says Hello (role NODE) on p. */
static void node_hello(peer *p, uint8_t id, int cpus)
{
    node_status s;
    status_of(&s, id, cpus, cpus);
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    h.token = MT_BIN(N.token, strlen(N.token));
    h.role = MANTA__ROLE__ROLE_NODE;
    h.pid = 1000u + id;
    h.node_id = s.ns.node_id;
    h.node = &s.ns;
    peer_send(p, T(HELLO), &h.base);
}

/* Node `id` reports its resources (its heartbeat). */
static void node_report(peer *p, uint8_t id, int cpus, int free_cpus)
{
    node_status s;
    status_of(&s, id, cpus, free_cpus);
    Manta__ResourceReport rep = MANTA__RESOURCE_REPORT__INIT;
    rep.node = &s.ns;
    peer_send(p, T(RESOURCE_REPORT), &rep.base);
}

/* A node joins as `id`: the head answers with its own id. */
static void join(peer *p, uint8_t id, int cpus)
{
    peer_connect(p);
    node_hello(p, id, cpus);
    Manta__HelloReply *r = (Manta__HelloReply *)expect(p, T(HELLO_REPLY));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->status, 0);
    ck_assert_uint_eq(r->node_id.len, MT_NODE_ID_LEN);
    ck_assert_uint_eq(r->node_id.data[0], HEAD_ID);
    mt_arena_reset(&A);
}

static const Manta__NodeStatus *find_node(Manta__NodeStatus **v, size_t n, uint8_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i]->node_id.len == MT_NODE_ID_LEN && v[i]->node_id.data[0] == id) return v[i];
    return NULL;
}

static int64_t cpus_in(Manta__Resource **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i]->name, "CPU")) return v[i]->amount / MT_RES_UNIT;
    return -1;
}

/* The head's status as a command sees it (`manta status`). */
static Manta__StatusReply *status(void)
{
    static uint64_t next_id = 1;
    peer cli;
    peer_connect(&cli);
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    h.role = MANTA__ROLE__ROLE_CLI;
    peer_send(&cli, T(HELLO), &h.base);
    Manta__HelloReply *hr = (Manta__HelloReply *)expect(&cli, T(HELLO_REPLY));
    ck_assert_ptr_nonnull(hr);
    ck_assert_int_eq(hr->status, 0);
    Manta__StatusRequest req = MANTA__STATUS_REQUEST__INIT;
    req.request_id = next_id++;
    peer_send(&cli, T(STATUS_REQUEST), &req.base);
    Manta__StatusReply *rep = (Manta__StatusReply *)expect(&cli, T(STATUS_REPLY));
    ck_assert_ptr_nonnull(rep);
    ck_assert_uint_eq(rep->request_id, req.request_id);
    peer_close(&cli);
    pump();
    return rep;
}

/* Whether the head's status lists node `id` alive (-1: not listed). */
static int alive_in_status(uint8_t id)
{
    Manta__StatusReply *s = status();
    const Manta__NodeStatus *ns = find_node(s->nodes, s->n_nodes, id);
    int alive = ns ? ns->alive : -1;
    mt_arena_reset(&A);
    return alive;
}

/* Whether p hears Event NODE_DIED for `id`. */
static bool hears_death(peer *p, uint8_t id)
{
    Manta__Event *ev;
    while ((ev = (Manta__Event *)expect(p, T(EVENT)))) {
        bool it = ev->kind == MANTA__EVENT_KIND__EVENT_NODE_DIED &&
                  ev->id.len == MT_NODE_ID_LEN && ev->id.data[0] == id;
        mt_arena_reset(&A);
        if (it) return true;
    }
    return false;
}

/* Node `id` says Hello again on a new connection: the head answers with
 * an error and closes it. */
static void refused(uint8_t id)
{
    peer again;
    peer_connect(&again);
    node_hello(&again, id, 1);
    Manta__HelloReply *r = (Manta__HelloReply *)expect(&again, T(HELLO_REPLY));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_ne(r->status, 0);
    mt_arena_reset(&A);
    ck_assert(closed_by_head(&again));
    peer_close(&again);
}

/* ---------------------------------------------------------------- fixture */

static peer pa, pb, pc;

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    mt_config_load();
    mt_log_init("test_cluster", 2);
    mt_log_set_level(getenv("TEST_LOG") ? 0 : 9);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/mt-test-cluster-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    skew = 0;
    mt_arena_init(&A);
    ck_assert_int_eq(memnode_new(&N, &L, true, HEAD_ID, dir), 0);
    pa.fd = pb.fd = pc.fd = -1;
    join(&pa, NODE_A, 8);
    join(&pb, NODE_B, 2);
    join(&pc, NODE_C, 1);
}

static void teardown(void)
{
    peer_close(&pa);
    peer_close(&pb);
    peer_close(&pc);
    pump();
    memnode_free(&N);
    mt_arena_free(&A);
    rmdir(dir);
}

/* ---------------------------------------------------------------- tests */

START_TEST(test_reports_in_status_and_view)
{
    node_report(&pa, NODE_A, 8, 5);
    Manta__StatusReply *s = status();
    ck_assert_uint_eq(s->n_nodes, 4);
    ck_assert_uint_eq(s->nodes[0]->node_id.data[0], HEAD_ID); /* the head first */
    ck_assert(s->nodes[0]->is_head);
    const Manta__NodeStatus *a = find_node(s->nodes, s->n_nodes, NODE_A);
    ck_assert_ptr_nonnull(a);
    ck_assert(a->alive);
    ck_assert(!a->is_head);
    ck_assert_str_eq(a->endpoint, "tcp:127.0.0.1:1049");
    ck_assert_int_eq(cpus_in(a->total, a->n_total), 8);
    ck_assert_int_eq(cpus_in(a->available, a->n_available), 5);
    const Manta__NodeStatus *b = find_node(s->nodes, s->n_nodes, NODE_B);
    ck_assert_ptr_nonnull(b);
    ck_assert(b->alive);
    ck_assert_int_eq(cpus_in(b->available, b->n_available), 2);
    mt_arena_reset(&A);

    /* Every node gets the view of all nodes, itself included. */
    memnode_tick(&N);
    Manta__ClusterView *v = (Manta__ClusterView *)expect(&pb, T(CLUSTER_VIEW));
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(v->n_nodes, 4);
    a = find_node(v->nodes, v->n_nodes, NODE_A);
    ck_assert_ptr_nonnull(a);
    ck_assert(a->alive);
    ck_assert_int_eq(cpus_in(a->available, a->n_available), 5);
    ck_assert_ptr_nonnull(find_node(v->nodes, v->n_nodes, HEAD_ID));
    mt_arena_reset(&A);
}
END_TEST

START_TEST(test_silent_node_dies)
{
    double half = (double)mt_cfg.node_timeout_ms / 1000.0 * 0.6;
    /* Within the timeout: nobody dies. */
    skew += half;
    node_report(&pb, NODE_B, 2, 2);
    node_report(&pc, NODE_C, 1, 1);
    memnode_tick(&N);
    ck_assert_int_eq(alive_in_status(NODE_A), 1);
    peer_skip(&pb);
    peer_skip(&pc);
    /* A has been silent longer than node_timeout_ms, B and C have not. */
    skew += half;
    memnode_tick(&N);
    ck_assert(closed_by_head(&pa));
    ck_assert(hears_death(&pb, NODE_A));
    Manta__ClusterView *v = (Manta__ClusterView *)expect(&pc, T(CLUSTER_VIEW));
    ck_assert_ptr_nonnull(v);
    const Manta__NodeStatus *a = find_node(v->nodes, v->n_nodes, NODE_A);
    ck_assert(a == NULL || !a->alive);
    const Manta__NodeStatus *b = find_node(v->nodes, v->n_nodes, NODE_B);
    ck_assert(b && b->alive);
    mt_arena_reset(&A);
    ck_assert_int_eq(alive_in_status(NODE_A), 0);
    ck_assert_int_eq(alive_in_status(NODE_B), 1);

    /* A dead node never comes back: its id is refused. */
    refused(NODE_A);
    ck_assert_int_eq(alive_in_status(NODE_A), 0);
}
END_TEST

START_TEST(test_closed_node_dies)
{
    peer_close(&pb);
    pump();
    ck_assert(hears_death(&pc, NODE_B));
    ck_assert(hears_death(&pa, NODE_B));
    ck_assert_int_eq(alive_in_status(NODE_B), 0);
    ck_assert_int_eq(alive_in_status(NODE_A), 1);
    /* Nor does a node that hung up come back. */
    refused(NODE_B);
    ck_assert_int_eq(alive_in_status(NODE_B), 0);
}
END_TEST

static Suite *cluster_suite(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("membership");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_reports_in_status_and_view);
    tcase_add_test(tc, test_silent_node_dies);
    tcase_add_test(tc, test_closed_node_dies);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(cluster_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

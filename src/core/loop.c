/* loop.c -- the floor of the client runtime: connecting to the node, the
 * I/O thread and its loop, waiting, peers and direct connections, and
 * request/reply calls.  What arrives goes up through the hooks the router
 * (router.c) set at connect; nothing here calls a module above it. */
#include "loop.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "layout.h"
#include "mt.h"
#include "sock.h"

_Thread_local const uint8_t *mt_loop_tl_task;

/* ---------------------------------------------------------------- waiting */

void do_loop_notify(mt_core *c)
{
    __atomic_add_fetch(&c->gen, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&c->cv);
    if (c->task_efd >= 0 && (c->xq_head || c->stopping || c->daemon_lost)) do_loop_task_signal(c);
}

/* Wake the event loop that watches task_efd (once until it drains it). */
void do_loop_task_signal(mt_core *c)
{
    if (c->task_efd < 0 || c->task_efd_armed) return;
    c->task_efd_armed = true;
    uint64_t one = 1;
    ssize_t w = write(c->task_efd, &one, sizeof one);
    MT_UNUSED(w); /* EAGAIN: the counter is full, so it is readable anyway */
}

/* Leader/follower over the one libuv loop: a thread that must wait runs the
 * loop itself, so the event it waits for wakes it directly instead of
 * waking the background thread, which would then wake it (two hops). */

static void deadline_cb(uv_timer_t *t) { MT_UNUSED(t); }

/* Run one loop iteration on this thread.  mu held on entry and exit. */
static void lead(mt_core *c, double deadline)
{
    c->loop_busy = true;
    c->loop_bg = false;
    c->cl.thread = pthread_self();
    if (deadline >= 0) {
        double left = deadline - mt_now_s();
        uv_timer_start(&c->deadline_timer, deadline_cb, left > 0 ? (uint64_t)(left * 1000) + 1 : 0,
                       0);
    }
    uint64_t gen = c->gen;
    pthread_mutex_unlock(&c->mu);
    /* Poll without sleeping for a short while first: a reply that lands
     * within microseconds then costs no sleep/wake pair on either side.
     * Not after a turn that nothing woke but a timer (an idle process
     * would spin at every tick). */
    static _Thread_local bool timer_only;
    uint64_t start = mt_now_ns(), until = start + (uint64_t)mt_cfg.spin_us * 1000;
    bool got = false;
    if (timer_only) until = start;
    for (uint64_t now = start; mt_cfg.spin_us > 0 && now < until; now = mt_now_ns()) {
        uv_run(&c->loop, UV_RUN_NOWAIT);
        if (__atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) != gen || c->stopping) {
            got = true;
            break;
        }
        /* After the first stretch, let a runnable thread have this core
         * between polls: on a small machine the thread we wait for may be
         * the one that needs it. */
        if (mt_cfg.spin_yield && now - start > 20000) sched_yield();
    }
    if (!got) uv_run(&c->loop, UV_RUN_ONCE);
    timer_only = !got && __atomic_load_n(&c->gen, __ATOMIC_ACQUIRE) == gen;
    pthread_mutex_lock(&c->mu);
    uv_timer_stop(&c->deadline_timer);
    c->loop_busy = false;
    c->last_active = mt_now_coarse();
    pthread_cond_broadcast(&c->cv);
    /* No signal to the background thread: it looks again within the grace
     * period (see io_main), and by then this thread may be leading again. */
}

/* Handle whatever has arrived, without waiting, if the loop is free.  A
 * thread that submits in a tight loop calls this now and then, so replies
 * are read in batches by the busy thread instead of waking another. */
void do_loop_poll_now(mt_core *c)
{
    if (!c->io_running || c->loop_busy || c->stopping) return;
    c->loop_busy = true;
    c->loop_bg = false;
    c->cl.thread = pthread_self();
    pthread_mutex_unlock(&c->mu);
    uv_run(&c->loop, UV_RUN_NOWAIT);
    pthread_mutex_lock(&c->mu);
    c->loop_busy = false;
    c->last_active = mt_now_coarse();
    pthread_cond_broadcast(&c->cv);
}

int mt_loop_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline)
{
    if (deadline < 0) {
        pthread_cond_wait(cv, mu);
        return 0;
    }
    double now = mt_now_s();
    if (now >= deadline) return MANTA_ETIMEDOUT;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double wake = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (deadline - now);
    ts.tv_sec = (time_t)wake;
    ts.tv_nsec = (long)((wake - (double)ts.tv_sec) * 1e9);
    pthread_cond_timedwait(cv, mu, &ts);
    return 0;
}

int do_loop_wait(mt_core *c, double deadline)
{
    uint64_t gen = c->gen;
    if (c->nheld) c->hooks->flush_held(c); /* never sleep on replies held back */
    for (;;) {
        if (c->gen != gen || c->stopping) return 0;
        if (deadline >= 0 && mt_now_s() >= deadline) return MANTA_ETIMEDOUT;
        if (c->io_running && !c->loop_busy) {
            lead(c, deadline);
            return 0;
        }
        if (c->io_running && c->loop_bg) {
            /* Ask the background thread to leave the loop to us. */
            c->want_loop++;
            if (!c->stop_sent) {
                c->stop_sent = true;
                mt_conn_loop_wake(&c->cl);
            }
            mt_loop_cond_wait_until(&c->cv, &c->mu, deadline);
            c->want_loop--;
            continue;
        }
        /* Another user thread runs the loop: it will broadcast. */
        mt_loop_cond_wait_until(&c->cv, &c->mu, deadline);
    }
}

/* ---------------------------------------------------------------- ids */

mt_tid do_loop_new_task_id(mt_core *c)
{
    mt_tid t;
    uint64_t n = ++c->task_counter;
    memcpy(t.b, c->task_prefix, 8);
    for (int i = 0; i < 8; i++) t.b[8 + i] = (uint8_t)(n >> (8 * i));
    return t;
}

void do_loop_address(mt_core *c, Manta__Address *a, char *buf, size_t cap)
{
    manta__address__init(a);
    a->worker_id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
    a->node_id = MT_BIN(c->nid.b, MT_NODE_ID_LEN);
    snprintf(buf, cap, "%s", c->endpoint);
    a->endpoint = buf;
    a->tcp_endpoint = c->tcp_endpoint ? c->tcp_endpoint : "";
}

void mt_loop_peer_address(const mt_peer *p, Manta__Address *a)
{
    manta__address__init(a);
    a->worker_id = MT_BIN(p->wid.b, MT_WORKER_ID_LEN);
    a->node_id = MT_BIN(p->nid.b, MT_NODE_ID_LEN);
    a->endpoint = p->endpoint ? p->endpoint : "";
    a->tcp_endpoint = p->tcp_endpoint ? p->tcp_endpoint : "";
}

ProtobufCBinaryData do_loop_node_bin(mt_core *c, const mt_nid *nid)
{
    static const mt_nid zero;
    if (MT_ID_EQ(*nid, zero) || MT_ID_EQ(*nid, c->nid)) return (ProtobufCBinaryData){0, NULL};
    return MT_BIN(nid->b, MT_NODE_ID_LEN);
}

/* The Hello this process sends on a connection it opens. */
static void fill_hello(mt_core *c, Manta__Hello *h, Manta__Address *a, char *ep, size_t cap,
                       int role, bool tcp)
{
    manta__hello__init(h);
    do_loop_address(c, a, ep, cap);
    h->version = MT_WIRE_VERSION;
    h->role = role;
    h->worker_id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
    h->pid = (uint32_t)c->pid;
    h->job_id = c->job_id;
    h->address = a;
    h->language = c->lang;
    h->node_id = MT_BIN(c->nid.b, MT_NODE_ID_LEN);
    if (tcp) h->token = MT_BIN(c->token, strlen(c->token));
}

/* ---------------------------------------------------------------- peers */

static int on_peer_frame(mt_conn *conn, const mt_frame *f, void *ud);
static void on_peer_close(mt_conn *conn, int reason, void *ud);

mt_peer *do_loop_peer(mt_core *c, const mt_wid *wid, const mt_nid *nid, const char *endpoint)
{
    mt_peer *p = mt_map_get(&c->peers, wid->b);
    if (p) {
        if (!p->endpoint && endpoint && endpoint[0]) p->endpoint = mt_strdup(endpoint);
        return p;
    }
    p = mt_calloc(1, sizeof *p);
    p->wid = *wid;
    if (nid) p->nid = *nid;
    p->endpoint = endpoint && endpoint[0] ? mt_strdup(endpoint) : NULL;
    mt_map_put(&c->peers, p);
    return p;
}

mt_peer *do_loop_peer_from_proto(mt_core *c, const Manta__Address *a)
{
    if (!a || a->worker_id.len != MT_WORKER_ID_LEN) return NULL;
    mt_wid wid;
    mt_nid nid = {{0}};
    memcpy(wid.b, a->worker_id.data, MT_WORKER_ID_LEN);
    if (a->node_id.len == MT_NODE_ID_LEN) memcpy(nid.b, a->node_id.data, MT_NODE_ID_LEN);
    mt_peer *p = do_loop_peer(c, &wid, &nid, a->endpoint);
    if (!p->tcp_endpoint && a->tcp_endpoint && a->tcp_endpoint[0])
        p->tcp_endpoint = mt_strdup(a->tcp_endpoint);
    return p;
}

void do_loop_start_conn(mt_core *c, mt_conn *conn)
{
    if (mt_conn_loop_is_mine(&c->cl)) {
        if (mt_conn_start(conn)) mt_conn_close(conn, MANTA_ESYS);
        return;
    }
    c->to_start = mt_realloc(c->to_start, (c->nto_start + 1) * sizeof *c->to_start);
    c->to_start[c->nto_start++] = conn;
    mt_conn_ref(conn);
    mt_conn_loop_wake(&c->cl);
}

void do_loop_flush_later(mt_core *c, mt_conn *conn)
{
    if (c->nto_flush && c->to_flush[c->nto_flush - 1] == conn) return;
    if (c->nto_flush == c->cap_to_flush) {
        c->cap_to_flush = c->cap_to_flush ? 2 * c->cap_to_flush : 8;
        c->to_flush = mt_realloc(c->to_flush, c->cap_to_flush * sizeof *c->to_flush);
    }
    c->to_flush[c->nto_flush++] = conn;
    mt_conn_ref(conn);
    if (c->nto_flush == 1) mt_conn_loop_wake(&c->cl);
}

static void flush_later_conns(mt_core *c)
{
    for (size_t i = 0; i < c->nto_flush; i++) {
        if (!c->to_flush[i]->closing) mt_conn_flush(c->to_flush[i]);
        mt_conn_unref(c->to_flush[i]);
    }
    c->nto_flush = 0;
}

mt_conn *do_loop_peer_conn(mt_core *c, mt_peer *p)
{
    if (p->conn) return p->conn;
    if (p->dead || c->stopping) return NULL;
    /* Same node: its unix socket; another node: TCP. */
    bool same_node = MT_ID_EQ(p->nid, c->nid) || !p->tcp_endpoint;
    const char *ep_to = same_node ? p->endpoint : p->tcp_endpoint;
    if (!ep_to) return NULL;
    /* Without waiting: the caller may be the I/O thread, or hold the
     * runtime's lock; a connection that cannot be made closes later. */
    mt_conn *conn;
    if (mt_conn_connect(&c->cl, ep_to, on_peer_frame, on_peer_close, c, &conn)) {
        mt_debug("cannot reach %s: %s", ep_to, manta_last_error());
        p->dead = true;
        return NULL;
    }
    snprintf(conn->desc, sizeof conn->desc, "peer %.40s", ep_to);
    p->conn = conn;
    Manta__Hello h;
    Manta__Address a;
    char ep[256];
    fill_hello(c, &h, &a, ep, sizeof ep, MANTA__ROLE__ROLE_PEER, !conn->is_unix);
    mt_conn_send(conn, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    do_loop_start_conn(c, conn);
    return conn;
}

/* Peers introduce themselves (over TCP with the cluster token); replies go
 * back on the connection they spoke on. */
int do_loop_decode(mt_core *c, const mt_frame *f, ProtobufCMessage **m)
{
    char err[256];
    int rc = mt_wire_decode(f->type, f->payload, f->len, &c->arena, m, err, sizeof err);
    if (!rc) return 0;
    mt_arena_reset(&c->arena);
    return mt_err(rc, "%s", err);
}

static int peer_hello(mt_core *c, mt_conn *conn, const mt_frame *f)
{
    ProtobufCMessage *m;
    int rc = do_loop_decode(c, f, &m);
    if (rc) return rc;
    const Manta__Hello *h = (const Manta__Hello *)m;
    if (h->version != MT_WIRE_VERSION) rc = mt_err(MANTA_EVERSION, "peer protocol mismatch");
    else if (!conn->is_unix && !mt_token_eq(c->token, h->token.data, h->token.len))
        rc = mt_err(MANTA_EAUTH, "a TCP peer with a wrong cluster token");
    else if (!conn->tag) conn->tag = do_loop_peer_from_proto(c, h->address);
    if (!rc && !conn->tag) rc = mt_err(MANTA_EPROTO, "peer Hello without an address");
    if (!rc) mt_gate_pass(conn);
    mt_arena_reset(&c->arena);
    return rc;
}

static int on_peer_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    mt_core *c = ud;
    /* An accepted peer speaks first with a Hello (over TCP with the token). */
    if (mt_gate_waiting(conn) && f->type != MANTA__MSG_TYPE__MSG_HELLO)
        return mt_err(MANTA_EAUTH, "a peer spoke before its Hello");
    if (f->type == MANTA__MSG_TYPE__MSG_HELLO) return peer_hello(c, conn, f);
    return c->hooks->peer_frame(c, conn, f);
}

static void on_peer_close(mt_conn *conn, int reason, void *ud)
{
    mt_core *c = ud;
    MT_UNUSED(reason);
    /* An outgoing connection: its peer is unreachable now -- for a leased
     * worker or an owner on this node that means the process died. */
    size_t it = 0;
    mt_peer *p;
    while ((p = mt_map_next(&c->peers, &it))) {
        if (p->conn != conn) continue;
        p->conn = NULL;
        mt_conn_unref(conn); /* the peer's reference */
        if (!c->stopping) {
            p->dead = true;
            c->hooks->peer_died(c, p);
        }
    }
    do_loop_notify(c);
}

/* ---------------------------------------------------------------- rpc */

mt_rpc *do_loop_rpc_new(mt_core *c)
{
    mt_rpc *r = mt_calloc(1, sizeof *r);
    r->id = ++c->next_req;
    mt_map_put(&c->rpcs, r);
    return r;
}

int do_loop_node_lost(mt_core *c)
{
    if (!c->daemon_lost) return mt_err(MANTA_ECONN, "this process is disconnecting from its node");
    return mt_err(MANTA_ECONN, "lost the connection to the manta node at %s (session %s): the "
                               "node daemon has stopped or died",
                  c->node_address, c->session_dir ? c->session_dir : "?");
}

int do_loop_rpc_wait(mt_core *c, mt_rpc *r, double deadline)
{
    while (!r->done) {
        if (c->daemon_lost || c->stopping) return do_loop_node_lost(c);
        if (do_loop_wait(c, deadline) == MANTA_ETIMEDOUT && !r->done) return MANTA_ETIMEDOUT;
    }
    return r->status;
}

void do_loop_rpc_free(mt_core *c, mt_rpc *r)
{
    mt_map_del(&c->rpcs, &r->id);
    free(r->payload);
    free(r);
}

int do_loop_rpc_call_raw(mt_core *c, mt_conn *to, uint16_t type, ProtobufCMessage *m,
                    uint64_t *req_field, double deadline, uint8_t **payload, size_t *len)
{
    mt_rpc *r = do_loop_rpc_new(c);
    *req_field = r->id;
    if (to) mt_conn_send_now(to, type, m);
    int rc = do_loop_rpc_wait(c, r, deadline);
    if (rc == 0) {
        *payload = r->payload;
        *len = r->len;
        r->payload = NULL;
    }
    do_loop_rpc_free(c, r);
    return rc;
}

int do_loop_rpc_call(mt_core *c, mt_conn *to, uint16_t type, ProtobufCMessage *m, uint64_t *req_field,
                double deadline, const ProtobufCMessageDescriptor *reply, void *out)
{
    uint8_t *p;
    size_t n;
    int rc = do_loop_rpc_call_raw(c, to, type, m, req_field, deadline, &p, &n);
    if (rc) return rc;
    ProtobufCMessage *rep = protobuf_c_message_unpack(reply, NULL, n, p);
    free(p);
    memcpy(out, &rep, sizeof rep); /* out: the address of a pointer to the reply's type */
    if (!rep) return mt_err(MANTA_EPROTO, "bad %s from the node", reply->short_name);
    return 0;
}

/* A reply for a waiting caller: keep the raw payload for it to decode. */
void do_loop_rpc_complete(mt_core *c, uint64_t id, uint16_t type, const void *payload, size_t len,
                     int status)
{
    mt_rpc *r = mt_map_get(&c->rpcs, &id);
    if (!r || r->done) return; /* the caller gave up (timeout) */
    r->type = type;
    r->payload = len ? mt_memdup(payload, len) : NULL;
    r->len = len;
    r->status = status;
    r->done = true;
    do_loop_notify(c);
}

/* Fail the calls waiting on a peer that is gone. */
void do_loop_rpc_fail_peer(mt_core *c, const mt_peer *p)
{
    size_t it = 0;
    mt_rpc *r;
    while ((r = mt_map_next(&c->rpcs, &it)))
        if (r->peer == p && !r->done) do_loop_rpc_complete(c, r->id, 0, NULL, 0, MANTA_ECONN);
}

void do_loop_send_daemon(mt_core *c, uint16_t type, const ProtobufCMessage *m)
{
    if (!c->daemon) return;
    mt_conn_send_now(c->daemon, type, m);
}

void do_loop_send_gcs(mt_core *c, uint16_t type, const ProtobufCMessage *m)
{
    if (!c->gcs) return;
    mt_conn_send_now(c->gcs, type, m);
}

/* ---------------------------------------------------------------- daemon messages */

static mt_conn *on_accept(mt_gate *g, int fd, void *ud);

/* Start taking connections from processes of other nodes.  Our TCP port was
 * bound (and is in our address) since we connected, but on one node nothing
 * needs it: we listen once our node says the cluster spans nodes. */
void do_loop_listen_tcp(mt_core *c)
{
    if (c->tcp_fd < 0 || c->tcp_listening) return;
    if (mt_sock_listen_bound(c->tcp_fd)) {
        mt_warn("processes of other nodes cannot reach us: %s", manta_last_error());
        return;
    }
    if (mt_gate_start(&c->tcp_gate, &c->cl, c->tcp_fd, on_accept, c)) {
        mt_warn("processes of other nodes cannot reach us: %s", manta_last_error());
        return;
    }
    c->tcp_listening = true;
}

static int on_daemon_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    mt_core *c = ud;
    return c->hooks->node_frame(c, conn, f);
}

/* A connection to a node other than through our daemon (the control store,
 * another node's daemon): its Hello reply, then the node's frames. */
int do_loop_node_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    if (f->type == MANTA__MSG_TYPE__MSG_HELLO_REPLY) {
        Manta__HelloReply *rep = manta__hello_reply__unpack(NULL, f->len, f->payload);
        int rc = !rep ? MANTA_EPROTO : rep->status;
        if (rep && rep->status) mt_err(rep->status, "the control store refused us: %s", rep->error);
        if (rep) manta__hello_reply__free_unpacked(rep, NULL);
        return rc;
    }
    return on_daemon_frame(conn, f, ud);
}

static void on_daemon_close(mt_conn *conn, int reason, void *ud)
{
    mt_core *c = ud;
    if (c->gcs == conn) {
        c->gcs = NULL;
        c->hooks->gcs_lost(c);
    }
    c->daemon = NULL;
    c->daemon_lost = true;
    mt_conn_unref(conn); /* the runtime's reference, taken at mt_conn_new */
    if (!c->stopping && !c->node_stop_requested) {
        if (c->role == MANTA__ROLE__ROLE_WORKER) {
            /* Our node is gone: a worker has nothing left to do. */
            _exit(0);
        }
        fprintf(stderr, "manta: lost the connection to the node (%s: %s)\n",
                manta_strerror(reason), manta_last_error());
    }
    do_loop_notify(c);
    pthread_cond_broadcast(&c->xcv);
}

/* ---------------------------------------------------------------- listener */

/* A connection a peer opened closed: drop it from c->incoming (the list's
 * reference), so stop_io closes only those still open. */
static void on_incoming_close(mt_conn *conn, int reason, void *ud)
{
    mt_core *c = ud;
    MT_UNUSED(reason);
    for (size_t i = 0; i < c->nincoming; i++) {
        if (c->incoming[i] != conn) continue;
        c->incoming[i] = c->incoming[--c->nincoming];
        mt_conn_unref(conn);
        break;
    }
}

/* Runs with c->mu held (the loop's guard). */
static mt_conn *on_accept(mt_gate *g, int fd, void *ud)
{
    mt_core *c = ud;
    uid_t uid;
    if (g == &c->listen_gate && mt_sock_peer_uid(fd, &uid, NULL) == 0 && uid != getuid()) {
        close(fd);
        return NULL;
    }
    mt_conn *conn = mt_conn_new(&c->cl, fd, on_peer_frame, on_incoming_close, c);
    snprintf(conn->desc, sizeof conn->desc, "incoming fd %d", fd);
    if (c->nincoming == c->cap_incoming) {
        c->cap_incoming = c->cap_incoming ? 2 * c->cap_incoming : 8;
        c->incoming = mt_realloc(c->incoming, c->cap_incoming * sizeof *c->incoming);
    }
    c->incoming[c->nincoming++] = conn; /* the creation reference */
    return conn;
}

/* ---------------------------------------------------------------- I/O thread */

static void on_wake(mt_conn_loop *l)
{
    mt_core *c = l->data;
    for (size_t i = 0; i < c->nto_start; i++) {
        mt_conn *conn = c->to_start[i];
        if (!conn->closing && mt_conn_start(conn)) mt_conn_close(conn, MANTA_ESYS);
        mt_conn_unref(conn);
    }
    free(c->to_start);
    c->to_start = NULL;
    c->nto_start = 0;
    c->hooks->flush(c);
    flush_later_conns(c);
    if (c->stopping || (c->loop_bg && c->want_loop > 0)) uv_stop(&c->loop);
}

static void on_tick(uv_timer_t *t)
{
    mt_core *c = t->data;
    pthread_mutex_lock(&c->mu);
    c->hooks->flush(c);
    flush_later_conns(c);
    c->hooks->tick(c);
    pthread_mutex_unlock(&c->mu);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    MT_UNUSED(arg);
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

/* The background thread runs the loop whenever no user thread does, so
 * that requests are served while user code runs.  After a user thread's
 * turn it waits a grace period first: a thread that loops between short
 * work and waiting (a worker running tiny tasks) keeps the loop without a
 * hand-off each time. */
static void *io_main(void *arg)
{
    mt_core *c = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals belong to the user's threads */
    double grace = (double)mt_cfg.loop_handoff_us / 1e6;
    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        if (c->loop_busy || c->want_loop > 0) {
            /* A user thread has the loop: look again now and then (not
             * every grace period: an idle process would wake hundreds of
             * times a second). */
            mt_loop_cond_wait_until(&c->bg_cv, &c->mu, mt_now_s() + 10 * grace);
            continue;
        }
        double idle = mt_now_coarse() - c->last_active;
        if (idle < grace) {
            mt_loop_cond_wait_until(&c->bg_cv, &c->mu, c->last_active + grace);
            continue;
        }
        c->loop_busy = true;
        c->loop_bg = true;
        c->stop_sent = false;
        c->cl.thread = pthread_self();
        pthread_mutex_unlock(&c->mu);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        pthread_mutex_lock(&c->mu);
        c->loop_busy = false;
        c->loop_bg = false;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---------------------------------------------------------------- connect */

static int hello(mt_core *c, int fd, const mt_core_opts *o, int *shm_fd, Manta__HelloReply **rep)
{
    Manta__Hello h;
    Manta__Address a;
    char ep[256];
    fill_hello(c, &h, &a, ep, sizeof ep, o->role, false);
    h.owns_cluster = o->owns_cluster;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    int rc = mt_sock_write_all(fd, b.data, b.len, 10);
    mt_buf_free(&b);
    if (rc) return mt_err(MANTA_ECONN, "cannot greet the node: %s", manta_last_error());
    /* The reply carries the store's memfd; read exactly one frame. */
    uint8_t hdr[MT_FRAME_HDR];
    *shm_fd = -1;
    double deadline = mt_now_s() + 30;
    size_t got = 0;
    while (got < MT_FRAME_HDR) {
        int xfd = -1;
        ssize_t r = mt_sock_recv_fd(fd, hdr + got, MT_FRAME_HDR - got, &xfd);
        if (xfd >= 0) {
            if (*shm_fd >= 0) close(*shm_fd);
            *shm_fd = xfd;
        }
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0) return mt_err(MANTA_ECONN, "the node closed the connection");
        if (errno != EAGAIN && errno != EINTR) return mt_err_sys("recvmsg");
        if (mt_now_s() > deadline) return mt_err(MANTA_ECONN, "the node did not answer");
        usleep(200);
    }
    mt_frame f;
    rc = mt_wire_peek(hdr, MT_FRAME_HDR, 1 << 20, &f);
    if (rc < 0) return rc;
    uint8_t *payload = mt_malloc(f.len + 1);
    rc = mt_sock_read_all(fd, payload, f.len, 30);
    if (rc) {
        free(payload);
        return rc;
    }
    *rep = manta__hello_reply__unpack(NULL, f.len, payload);
    free(payload);
    if (!*rep || f.type != MANTA__MSG_TYPE__MSG_HELLO_REPLY)
        return mt_err(MANTA_EPROTO, "bad Hello reply from the node");
    if ((*rep)->status)
        return mt_err((*rep)->status, "the node refused us: %s", (*rep)->error);
    return 0;
}

static int setup_identity(mt_core *c, const mt_core_opts *o)
{
    c->role = o->role;
    c->lang = o->lang;
    c->pid = getpid();
    c->daemon_pid = o->daemon_pid;
    if (o->worker_id) {
        if (mt_unhex(o->worker_id, c->wid.b, MT_WORKER_ID_LEN))
            return mt_err(MANTA_EINVAL, "bad worker id %s", o->worker_id);
    } else {
        mt_random_bytes(c->wid.b, MT_WORKER_ID_LEN);
    }
    mt_random_bytes(c->task_prefix, sizeof c->task_prefix);
    c->runtime = mt_strdup(o->runtime ? o->runtime : "");
    char addr[4200];
    snprintf(addr, sizeof addr, "%s%s", o->address && o->address[0] ? "" : "unix:",
             o->address && o->address[0] ? o->address : o->node_socket);
    c->node_address = mt_strdup(addr);
    /* Our listening socket sits in the node's session: <session>/w/<id>. */
    char hex[2 * MT_WORKER_ID_LEN + 1], session[MT_LAYOUT_PATH_MAX], path[MT_LAYOUT_PATH_MAX];
    int rc = mt_layout_session_of(o->node_socket, session, sizeof session);
    if (!rc)
        rc = mt_layout_worker_socket(session, mt_hex(c->wid.b, MT_WORKER_ID_LEN, hex), path,
                                     sizeof path);
    if (rc) return rc;
    c->listen_path = mt_strdup(path);
    char ep[4200];
    snprintf(ep, sizeof ep, "unix:%s", path);
    c->endpoint = mt_strdup(ep);
    return 0;
}

static void core_init_tables(mt_core *c)
{
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->xcv, NULL);
    pthread_cond_init(&c->bg_cv, NULL);
    mt_map_init(&c->peers, offsetof(mt_peer, wid), sizeof(mt_wid));
    mt_map_init(&c->objs, offsetof(mt_obj, id), sizeof(mt_oid));
    mt_map_init(&c->tasks, offsetof(mt_task, id), sizeof(mt_tid));
    mt_map_init(&c->classes, offsetof(mt_class, key), 16);
    mt_map_init(&c->lease_reqs, 0, sizeof(uint64_t));
    mt_map_init(&c->actors, offsetof(mt_actor, id), sizeof(mt_aid));
    mt_map_init(&c->actor_lookups, 0, sizeof(uint64_t));
    mt_map_init(&c->rpcs, offsetof(mt_rpc, id), sizeof(uint64_t));
    mt_map_init(&c->rdaemons, offsetof(mt_rdaemon, nid), sizeof(mt_nid));
    mt_map_init(&c->lineage, offsetof(mt_task, id), sizeof(mt_tid));
    mt_arena_init(&c->arena);
    c->listen_fd = -1;
    c->tcp_fd = -1;
}



static void on_gcs_close(mt_conn *conn, int reason, void *ud)
{
    mt_core *c = ud;
    MT_UNUSED(reason);
    if (c->gcs == conn) {
        c->gcs = NULL;
        c->hooks->gcs_lost(c);
    }
    mt_conn_unref(conn);
    if (!c->stopping && c->role == MANTA__ROLE__ROLE_WORKER) {
        /* The head is gone, and with it the cluster. */
        _exit(0);
    }
    do_loop_rpc_fail_peer(c, NULL);
    do_loop_notify(c);
}

/* Our connection to the control store on the head node (TCP, token). */
static int connect_gcs(mt_core *c, const char *ep)
{
    int fd;
    int rc = mt_sock_connect(ep, 10, &fd);
    if (rc) return mt_err(rc, "cannot reach the control store at %s: %s", ep, manta_last_error());
    mt_conn *conn = mt_conn_new(&c->cl, fd, do_loop_node_frame, on_gcs_close, c);
    snprintf(conn->desc, sizeof conn->desc, "control store");
    Manta__Hello h;
    Manta__Address a;
    char buf[256];
    fill_hello(c, &h, &a, buf, sizeof buf, MANTA__ROLE__ROLE_GCS_CLIENT, true);
    mt_conn_send(conn, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    rc = mt_conn_start(conn);
    if (rc) {
        mt_conn_close(conn, rc);
        return rc;
    }
    mt_conn_flush(conn);
    c->gcs = conn;
    return 0;
}

static int start_io(mt_core *c, int daemon_fd, const char *gcs_ep, bool multi_node)
{
    uv_loop_init(&c->loop);
    c->loop_open = true;
    mt_conn_loop_init(&c->cl, &c->loop);
    c->cl.guard = &c->mu;
    c->cl.data = c;
    c->cl.on_wake = on_wake;
    c->daemon = mt_conn_new(&c->cl, daemon_fd, on_daemon_frame, on_daemon_close, c);
    snprintf(c->daemon->desc, sizeof c->daemon->desc, "node");
    int rc = mt_conn_start(c->daemon);
    if (rc) return rc;
    if ((rc = mt_gate_start(&c->listen_gate, &c->cl, c->listen_fd, on_accept, c))) return rc;
    if (multi_node) do_loop_listen_tcp(c);
    c->gcs = c->daemon;
    if (gcs_ep && gcs_ep[0] && (rc = connect_gcs(c, gcs_ep))) return rc;
    uv_timer_init(&c->loop, &c->tick);
    uv_timer_init(&c->loop, &c->deadline_timer);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, 50, 50);
    if (pthread_create(&c->io_thread, NULL, io_main, c)) return mt_err_sys("pthread_create");
    c->io_running = true;
    return 0;
}

int mt_loop_open(const mt_core_opts *o, const mt_hooks *hooks, mt_core **out)
{
    mt_config_load();
    mt_log_set_level((int)mt_cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    mt_core *c = mt_calloc(1, sizeof *c);
    c->hooks = hooks;
    c->task_efd = -1;
    core_init_tables(c);
    int rc = setup_identity(c, o);
    if (!rc) rc = mt_sock_listen_unix(c->listen_path, &c->listen_fd);
    int fd = -1, shm_fd = -1;
    Manta__HelloReply *rep = NULL;
    char node_ep[4200];
    snprintf(node_ep, sizeof node_ep, "unix:%s", o->node_socket);
    if (!rc) rc = mt_sock_connect(node_ep, 10, &fd);
    if (!rc) rc = hello(c, fd, o, &shm_fd, &rep);
    char gcs_ep[320] = "";
    bool multi_node = false;
    if (!rc) {
        c->job_id = rep->job_id;
        if (rep->node_id.len == MT_NODE_ID_LEN) memcpy(c->nid.b, rep->node_id.data, MT_NODE_ID_LEN);
        c->session_dir = mt_strdup(rep->session_dir ? rep->session_dir : "");
        if (rep->token.len < sizeof c->token) memcpy(c->token, rep->token.data, rep->token.len);
        snprintf(gcs_ep, sizeof gcs_ep, "%s", rep->gcs_endpoint ? rep->gcs_endpoint : "");
        rc = c->hooks->map_store(c, shm_fd, rep->store_size);
        shm_fd = -1;
        /* In a cluster, processes of other nodes reach us over TCP (from
         * when it spans nodes: listen_tcp). */
        multi_node = rep->multi_node;
        if (!rc && rep->tcp_host && rep->tcp_host[0]) {
            int port = 0;
            rc = mt_sock_bind_tcp(rep->tcp_host, 0, &c->tcp_fd, &port);
            char ep[320];
            snprintf(ep, sizeof ep, "tcp:%s:%d", rep->tcp_host, port);
            if (!rc) c->tcp_endpoint = mt_strdup(ep);
        }
    }
    if (rep) manta__hello_reply__free_unpacked(rep, NULL);
    if (shm_fd >= 0) close(shm_fd);
    if (!rc) rc = start_io(c, fd, gcs_ep, multi_node);
    if (rc) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", manta_last_error());
        if (!c->daemon && fd >= 0) close(fd);
        mt_core_disconnect(c);
        return mt_err(rc, "%s", keep);
    }
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------- calls */

void mt_core_request_shutdown(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    c->node_stop_requested = true;
    Manta__Shutdown m = MANTA__SHUTDOWN__INIT;
    do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_SHUTDOWN, &m.base);
    pthread_mutex_unlock(&c->mu);
}

/* A value stored in the control store travels in a request and comes back
 * in a reply: both must fit in a frame, or the peer that receives it closes
 * the connection.  0, or MANTA_ETOOBIG saying which value is too large. */
static int check_fits(const ProtobufCMessage *req, const ProtobufCMessage *reply,
                      const char *what, size_t len)
{
    size_t limit = (size_t)mt_cfg_max_frame();
    size_t need = protobuf_c_message_get_packed_size(req);
    size_t back = protobuf_c_message_get_packed_size(reply);
    if (back > need) need = back;
    if (need <= limit) return 0;
    return mt_err(MANTA_ETOOBIG,
                  "%s is too large (%zu bytes, more than the %zu a message can carry under "
                  "max_frame_bytes=%zu). Check "
                  "that its definition is not implicitly capturing a large array or other object "
                  "in scope. Tip: use put() to put large objects in the object store.",
                  what, len, limit > need - len ? limit - (need - len) : 0, limit);
}

int mt_core_fn_register(mt_core *c, const uint8_t *fn_id, const void *body, size_t len,
                        const char *name)
{
    Manta__FnRegister m = MANTA__FN_REGISTER__INIT;
    m.function_id = MT_BIN(fn_id, MT_FN_ID_LEN);
    m.body = MT_BIN(body, len);
    m.name = (char *)(name ? name : "");
    /* The largest reply that hands it to a worker. */
    Manta__FnGetReply back = MANTA__FN_GET_REPLY__INIT;
    back.request_id = UINT64_MAX;
    back.status = INT32_MIN;
    back.body = m.body;
    back.name = m.name;
    char what[160];
    snprintf(what, sizeof what, "The function or class %.100s", m.name);
    int rc = check_fits(&m.base, &back.base, what, len);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_FN_REGISTER, &m.base);
    rc = c->daemon ? 0 : do_loop_node_lost(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* A control-store read whose reply carries a `status` and one bytes field
 * named `field`, copied out for the caller (who frees it).  The node answers
 * by `wait_s`; the call gives it a little slack. */
static int gcs_read(mt_core *c, uint16_t type, ProtobufCMessage *m, uint64_t *req_field,
                    double wait_s, const ProtobufCMessageDescriptor *reply, const char *field,
                    uint8_t **out, size_t *len)
{
    double timeout = wait_s + 5;
    ProtobufCMessage *rep;
    pthread_mutex_lock(&c->mu);
    int rc = do_loop_rpc_call(c, c->gcs, type, m, req_field, timeout < 0 ? -1 : mt_now_s() + timeout,
                         reply, &rep);
    pthread_mutex_unlock(&c->mu);
    if (rc) return rc;
    const ProtobufCFieldDescriptor *st = protobuf_c_message_descriptor_get_field_by_name(reply, "status");
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(reply, field);
    rc = *(const int32_t *)(const void *)((const char *)rep + st->offset);
    if (!rc) {
        const ProtobufCBinaryData *b = (const void *)((const char *)rep + fd->offset);
        *out = mt_memdup(b->data, b->len);
        *len = b->len;
    }
    protobuf_c_message_free_unpacked(rep, NULL);
    return rc;
}

int mt_core_fn_get(mt_core *c, const uint8_t *fn_id, double timeout, uint8_t **body, size_t *len)
{
    Manta__FnGet m = MANTA__FN_GET__INIT;
    m.function_id = MT_BIN(fn_id, MT_FN_ID_LEN);
    m.wait_ms = (int64_t)(timeout * 1000);
    return gcs_read(c, MANTA__MSG_TYPE__MSG_FN_GET, &m.base, &m.request_id, timeout,
                    &manta__fn_get_reply__descriptor, "body", body, len);
}

int mt_core_kv_put(mt_core *c, const char *ns, const void *key, size_t klen, const void *val,
                   size_t vlen, bool overwrite)
{
    Manta__KvPut m = MANTA__KV_PUT__INIT;
    m.ns = (char *)ns;
    m.key = MT_BIN(key, klen);
    m.value = MT_BIN(val, vlen);
    m.overwrite = overwrite;
    Manta__KvGetReply back = MANTA__KV_GET_REPLY__INIT;
    back.request_id = UINT64_MAX;
    back.status = INT32_MIN;
    back.value = m.value;
    int rc = check_fits(&m.base, &back.base, "The value", vlen);
    if (rc) return rc;
    pthread_mutex_lock(&c->mu);
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_KV_PUT, &m.base);
    rc = c->daemon ? 0 : do_loop_node_lost(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int mt_core_kv_get(mt_core *c, const char *ns, const void *key, size_t klen, double wait_s,
                   uint8_t **val, size_t *vlen)
{
    Manta__KvGet m = MANTA__KV_GET__INIT;
    m.ns = (char *)ns;
    m.key = MT_BIN(key, klen);
    m.wait_ms = (int64_t)(wait_s * 1000);
    return gcs_read(c, MANTA__MSG_TYPE__MSG_KV_GET, &m.base, &m.request_id, wait_s,
                    &manta__kv_get_reply__descriptor, "value", val, vlen);
}

int mt_core_status(mt_core *c, uint8_t **payload, size_t *len)
{
    Manta__StatusRequest m = MANTA__STATUS_REQUEST__INIT;
    pthread_mutex_lock(&c->mu);
    int rc = do_loop_rpc_call_raw(c, c->daemon, MANTA__MSG_TYPE__MSG_STATUS_REQUEST, &m.base,
                             &m.request_id, mt_now_s() + 10, payload, len);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---------------------------------------------------------------- disconnect */

static void free_tables(mt_core *c)
{
    if (c->task_efd >= 0) close(c->task_efd);
    c->task_efd = -1;
    if (c->hooks) c->hooks->free_tables(c);
    size_t n;
    void **items;
    items = mt_map_items(&c->peers, &n);
    for (size_t i = 0; i < n; i++) {
        mt_peer *p = items[i];
        free(p->endpoint);
        free(p->tcp_endpoint);
        free(p);
    }
    free(items);
    items = mt_map_items(&c->rpcs, &n);
    for (size_t i = 0; i < n; i++) {
        free(((mt_rpc *)items[i])->payload);
        free(items[i]);
    }
    free(items);
    mt_map_free(&c->peers);
    mt_map_free(&c->rpcs);
}

static void stop_io(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    do_loop_notify(c);
    pthread_cond_broadcast(&c->xcv);
    pthread_cond_broadcast(&c->bg_cv);
    pthread_mutex_unlock(&c->mu);
    mt_conn_loop_wake(&c->cl);
    if (c->io_running) pthread_join(c->io_thread, NULL);
    /* A user thread may still be leading: wait until the loop is free. */
    pthread_mutex_lock(&c->mu);
    while (c->loop_busy) {
        mt_conn_loop_wake(&c->cl);
        mt_loop_cond_wait_until(&c->cv, &c->mu, mt_now_s() + 0.05);
    }
    pthread_mutex_unlock(&c->mu);
    c->io_running = false;
    /* Close every handle on this thread, now that the loop is ours. */
    pthread_mutex_lock(&c->mu);
    c->cl.thread = pthread_self();
    flush_later_conns(c); /* before their connections close */
    free(c->to_flush);
    c->to_flush = NULL;
    c->cap_to_flush = 0;
    size_t it = 0;
    mt_peer *p;
    while ((p = mt_map_next(&c->peers, &it)))
        if (p->conn) mt_conn_close(p->conn, 0);
    if (c->gcs && c->gcs != c->daemon) mt_conn_close(c->gcs, 0);
    if (c->daemon) mt_conn_close(c->daemon, 0);
    mt_gate_stop(&c->listen_gate);
    mt_gate_stop(&c->tcp_gate);
    while (c->nincoming) mt_conn_close(c->incoming[c->nincoming - 1], 0);
    free(c->incoming);
    c->incoming = NULL;
    c->cap_incoming = 0;
    size_t nd;
    void **rds = mt_map_items(&c->rdaemons, &nd);
    for (size_t i = 0; i < nd; i++) mt_conn_close(((mt_rdaemon *)rds[i])->conn, 0);
    free(rds);
    for (size_t i = 0; i < c->nto_start; i++) {
        mt_conn_close(c->to_start[i], 0);
        mt_conn_unref(c->to_start[i]);
    }
    c->nto_start = 0;
    pthread_mutex_unlock(&c->mu);
    uv_walk(&c->loop, close_walk, NULL);
    c->cl.guard = NULL; /* callbacks below run with the lock taken here */
    pthread_mutex_lock(&c->mu);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    pthread_mutex_unlock(&c->mu);
    mt_conn_loop_close(&c->cl);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    c->loop_open = false;
}

void mt_core_disconnect(mt_core *c)
{
    if (!c) return;
    /* Also after a connect that failed half-way: its loop holds the node's
     * connection and the loop's own descriptors. */
    if (c->loop_open) stop_io(c);
    free_tables(c);
    if (c->listen_fd >= 0) close(c->listen_fd);
    if (c->tcp_fd >= 0) close(c->tcp_fd);
    free(c->tcp_endpoint);
    if (c->listen_path) unlink(c->listen_path);
    if (c->daemon_pid > 0) {
        /* We started the node: wait (bounded) for it to finish stopping. */
        for (int i = 0; i < 500; i++) {
            int st;
            pid_t r = waitpid(c->daemon_pid, &st, WNOHANG);
            if (r == c->daemon_pid || (r < 0 && errno == ECHILD)) break;
            usleep(10000);
        }
    }
    mt_arena_free(&c->arena);
    free(c->endpoint);
    free(c->listen_path);
    free(c->session_dir);
    free(c->node_address);
    free(c->runtime);
    free(c);
}

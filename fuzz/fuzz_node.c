/* fuzz_node.c -- the node daemon's message handlers: a head node (or a node
 * that joined one) is built in memory, with its store, scheduler, pool,
 * control store and cluster tables, and the input is a script of steps that
 * connect clients of every role over socketpairs, send them frames, hang
 * them up and run the daemon's periodic work.  Frames go through the real
 * reader (the daemon's loop reads them from the socket), so what is covered
 * is what a peer can reach.
 *
 * No process is started and no network is used: uv_spawn, mt_sock_connect
 * and kill are wrapped at link time (-Wl,--wrap).  Spawning fails; a
 * connect to another node gets a socketpair whose far end the script may
 * write to (a node's replies to our pulls, the head's view); kill aborts,
 * since no step makes a process the daemon may signal.  Workers the script
 * needs are entries made in the pool as if started, which register with a
 * Hello carrying their id.
 *
 * Input: the script of fuzz_script.h, after one byte that picks the node:
 * even a head, odd a node that joined one (slot 0: its link to the head). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "fuzz_script.h"
#include "node.h"
#include "sock.h"

#define MAX_STEPS 64

static mt_node *cur; /* the node of the input being run (for the wraps) */

/* ---------------------------------------------------------------- wraps */

int __wrap_uv_spawn(uv_loop_t *loop, uv_process_t *p, const uv_process_options_t *o);
int __wrap_uv_spawn(uv_loop_t *loop, uv_process_t *p, const uv_process_options_t *o)
{
    MT_UNUSED(loop), MT_UNUSED(p), MT_UNUSED(o);
    return UV_EPERM;
}

int __real_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig);
int __wrap_kill(pid_t pid, int sig)
{
    if (pid == getpid()) return __real_kill(pid, sig);
    fprintf(stderr, "fuzz_node: the daemon signalled pid %d (signal %d)\n", (int)pid, sig);
    abort();
}

/* The node's own Hello/HelloReply exchange when it joins the head is
 * blocking: the reply waits in the socket before the node reads it. */
static void head_reply(int far)
{
    Manta__HelloReply rep = MANTA__HELLO_REPLY__INIT;
    uint8_t hid[MT_NODE_ID_LEN];
    memset(hid, FUZZ_HEAD_NID, sizeof hid);
    rep.node_id = MT_BIN(hid, sizeof hid);
    fuzz_write_msg(far, MANTA__MSG_TYPE__MSG_HELLO_REPLY, &rep.base);
}

int __wrap_mt_sock_connect(const char *endpoint, double timeout_s, int *fd);
int __wrap_mt_sock_connect(const char *endpoint, double timeout_s, int *fd)
{
    MT_UNUSED(timeout_s);
    int near, far;
    if (strncmp(endpoint, "tcp:127.0.0.1:", 14) || fuzz_pair(&near, &far))
        return mt_err(MANTA_ECONN, "cannot connect to %s", endpoint);
    if (cur && cur->join && !cur->head) head_reply(far);
    fuzz_add_slot(far);
    *fd = near;
    return 0;
}

/* Connections started from the loop (to other nodes and processes) take
 * the same path: no connect ever leaves this process. */
int __wrap_mt_sock_connect_start(const char *endpoint, int64_t timeout_ms, int *fd);
int __wrap_mt_sock_connect_start(const char *endpoint, int64_t timeout_ms, int *fd)
{
    return __wrap_mt_sock_connect(endpoint, (double)timeout_ms / 1000.0, fd);
}

/* ---------------------------------------------------------------- the node */

static char session_dir[256];
static int listen_pipe[2];
static uint16_t known[256];
static size_t nknown;

static void once(void)
{
    if (nknown) return;
    mt_config_load();
    mt_log_init("fuzz_node", 2);
    fuzz_logging = getenv("FUZZ_LOG") != NULL;
    mt_log_set_level(fuzz_logging ? 0 : 9);
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(session_dir, sizeof session_dir, "%s/mt-fuzz-node-%d", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    nknown = fuzz_msg_types(known, MT_ARRAY_LEN(known));
    FUZZ_CHECK(nknown > 0);
}

static void put_res(mt_res_set *s, const char *name, int64_t units)
{
    mt_res_put(s, name, units * MT_RES_UNIT);
}

static void node_new(mt_node *n, uv_loop_t *loop, bool head)
{
    memset(n, 0, sizeof *n);
    uv_loop_init(loop);
    loop->data = n;
    n->loop = loop;
    n->is_head = head;
    memset(n->node_id.b, head ? FUZZ_HEAD_NID : FUZZ_SELF_NID, sizeof n->node_id.b);
    mkdir(session_dir, 0700);
    n->session_dir = mt_strdup(session_dir);
    n->tcp_fd = n->listen_fd = -1;
    n->tcp_host = mt_strdup("127.0.0.1");
    n->sock_path = mt_strdup("/nonexistent/daemon.sock");
    n->bin_dir = mt_strdup("/nonexistent");
    n->python = mt_strdup("/nonexistent/python3");
    n->log_fd = 2;
    mt_session_set_token(n, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
    FUZZ_CHECK(mt_store_new(1u << 20, &n->store) == 0);
    mt_res_set total;
    mt_res_init(&total);
    put_res(&total, "CPU", 4);
    put_res(&total, "GPU", 2);
    put_res(&total, "memory", 1 << 20);
    put_res(&total, "object_store_memory", 1 << 20);
    put_res(&total, "node:127.0.0.1", 1);
    put_res(&total, "custom", 3);
    if (head) put_res(&total, "node:__internal_head__", 1);
    mt_conn_loop_init(&n->cl, loop);
    mt_pool_init(n);
    n->sched = mt_lease_sched_new(n, &total);
    mt_res_free(&total);
    mt_cluster_init(n);
    if (head) n->gcs = mt_node_gcs_new(n);
    mt_node_conns_init(n);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    /* No listener is watched (its gate is never started): the steps hand
     * clients in themselves, through mt_node_add_client. */
    FUZZ_CHECK(pipe2(listen_pipe, O_CLOEXEC | O_NONBLOCK) == 0);
    n->listen_fd = listen_pipe[0];
    cur = n;
    if (!head) {
        n->join = mt_strdup("127.0.0.1:7");
        FUZZ_CHECK(mt_cluster_join(n) == 0);
    }
}

static void pump(mt_node *n)
{
    for (int i = 0; i < 4; i++) {
        uv_run(n->loop, UV_RUN_NOWAIT);
        fuzz_drain();
    }
}

static void close_walk(uv_handle_t *h, void *arg)
{
    MT_UNUSED(arg);
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void node_free(mt_node *n)
{
    fuzz_close_slots();
    pump(n);
    mt_node_stop(n, 0);
    uv_run(n->loop, UV_RUN_NOWAIT);
    /* The workers this script made (spawning fails, so there are no others). */
    for (mt_worker *w = n->worker_list, *next; w; w = next) {
        next = w->next;
        mt_map_del(&n->workers, w->wid.b);
        free(w->runtime);
        free(w->outbuf[0]);
        free(w->outbuf[1]);
        mt_res_free(&w->lease.held);
        free(w);
    }
    n->worker_list = NULL;
    FUZZ_CHECK(n->dead_list == NULL);
    uv_walk(n->loop, close_walk, NULL);
    uv_run(n->loop, UV_RUN_DEFAULT);
    mt_conn_loop_close(&n->cl);
    uv_run(n->loop, UV_RUN_DEFAULT);
    FUZZ_CHECK(uv_loop_close(n->loop) == 0);
    close(listen_pipe[0]);
    close(listen_pipe[1]);
    mt_node_conns_free(n);
    mt_sched_destroy(n->sched);
    mt_xfer_free_all(n);
    mt_cluster_free(n);
    mt_gcs_destroy(n->gcs);
    mt_store_destroy(n->store);
    mt_map_free(&n->workers);
    free(n->session_dir);
    free(n->tcp_host);
    free(n->sock_path);
    free(n->bin_dir);
    free(n->python);
    free(n->join);
    cur = NULL;
}

/* ---------------------------------------------------------------- steps */

static const char *const runtimes[] = {"", "exe:/fuzz/driver", "lib:/fuzz/lib.so"};

/* A worker as the pool would have started it (id FUZZ_WORKER_WID). */
static mt_worker *fake_worker(mt_node *n, uint8_t arg)
{
    mt_worker *w = mt_calloc(1, sizeof *w);
    memset(w->wid.b, FUZZ_WORKER_WID(arg), sizeof w->wid.b);
    if (mt_map_get(&n->workers, w->wid.b)) {
        free(w);
        return NULL;
    }
    size_t r = (size_t)(arg >> 4) % MT_ARRAY_LEN(runtimes);
    w->runtime = mt_strdup(runtimes[r]);
    w->lang = r ? MANTA__LANGUAGE__LANG_C : MANTA__LANGUAGE__LANG_PYTHON;
    w->state = MT_W_STARTING;
    w->started_at = mt_now_s();
    mt_res_init(&w->lease.held);
    mt_map_put(&n->workers, w);
    w->next = n->worker_list;
    if (n->worker_list) n->worker_list->prev = w;
    n->worker_list = w;
    return w;
}

static void step_connect(mt_node *n, uint8_t role_b, uint8_t arg, bool hello)
{
    int near, far;
    if (fuzz_nslots >= FUZZ_MAX_SLOTS || fuzz_pair(&near, &far)) return;
    fuzz_add_slot(far);
    mt_node_add_client(n, near);
    if (!hello) return;
    Manta__Hello h = MANTA__HELLO__INIT;
    Manta__Address addr = MANTA__ADDRESS__INIT;
    Manta__NodeStatus ns = MANTA__NODE_STATUS__INIT;
    Manta__Resource cpu = MANTA__RESOURCE__INIT, custom = MANTA__RESOURCE__INIT;
    Manta__Resource *res[2] = {&cpu, &custom};
    uint8_t wid[MT_WORKER_ID_LEN], nid[MT_NODE_ID_LEN];
    char ep[64], uep[64];
    int role = fuzz_roles[role_b % MT_ARRAY_LEN(fuzz_roles)];
    h.version = MT_WIRE_VERSION;
    h.role = (Manta__Role)role;
    h.pid = 0;
    h.job_id = arg & 3;
    memset(wid, FUZZ_CLIENT_WID(arg), sizeof wid);
    memset(nid, FUZZ_NODE_NID(arg), sizeof nid);
    if (role == MANTA__ROLE__ROLE_WORKER) {
        mt_worker *w = fake_worker(n, arg);
        if (w) memcpy(wid, w->wid.b, sizeof wid);
        h.runtime = w ? w->runtime : "";
    }
    h.worker_id = MT_BIN(wid, sizeof wid);
    snprintf(uep, sizeof uep, "unix:/nonexistent/w/%u", arg);
    addr.worker_id = h.worker_id;
    addr.endpoint = uep;
    h.address = &addr;
    h.node_id = MT_BIN(nid, sizeof nid);
    if (role == MANTA__ROLE__ROLE_NODE) {
        snprintf(ep, sizeof ep, "tcp:127.0.0.1:%u", 1000 + (arg & 0x0f));
        cpu.name = "CPU";
        cpu.amount = (int64_t)(1 + (arg >> 4)) * MT_RES_UNIT;
        custom.name = "custom";
        custom.amount = MT_RES_UNIT;
        ns.node_id = h.node_id;
        ns.endpoint = ep;
        ns.alive = true;
        ns.n_total = ns.n_available = 2;
        ns.total = ns.available = res;
        ns.store_capacity = 1u << 20;
        h.node = &ns;
    }
    fuzz_write_msg(fuzz_slots[fuzz_nslots - 1], MANTA__MSG_TYPE__MSG_HELLO, &h.base);
}

static void step_tick(mt_node *n)
{
    if (n->stopping) return;
    mt_sched_dispatch(n->sched);
    if (n->gcs) mt_gcs_tick(n->gcs);
    mt_cluster_tick(n);
    mt_xfer_tick(n);
}

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    once();
    fuzz_random_reset();
    fuzz_input in = {data, size};
    static mt_node node;
    static uv_loop_t loop;
    node_new(&node, &loop, (fuzz_take8(&in) & 1) == 0);
    pump(&node);
    for (int steps = 0; in.n && steps < MAX_STEPS && !node.stopping; steps++) {
        uint8_t kind = fuzz_take8(&in) % FUZZ_STEP_KINDS;
        switch (kind) {
        case FUZZ_STEP_CONNECT: {
            uint8_t role = fuzz_take8(&in);
            step_connect(&node, role, fuzz_take8(&in), true);
            break;
        }
        case FUZZ_STEP_RAW:
            step_connect(&node, 0, 0, false);
            break;
        case FUZZ_STEP_FRAME:
        case FUZZ_STEP_FRAME2:
        case FUZZ_STEP_FRAME3:
            fuzz_step_frame(&in, known, nknown);
            break;
        case FUZZ_STEP_HANGUP:
            fuzz_step_hangup(&in, 0);
            break;
        case FUZZ_STEP_TICK:
            step_tick(&node);
            break;
        }
        pump(&node);
    }
    node_free(&node);
    return 0;
}

/* fuzz_node.c -- the node daemon's message handlers: a head node (or a node
 * that joined one) is built in memory, with its store, scheduler, pool,
 * control store and cluster tables, and the input is a script of steps that
 * connect clients of every role over socketpairs, send them frames, hang
 * them up and run the daemon's periodic work.  Frames go through the real
 * reader (the daemon's loop reads them from the socket), so what is covered
 * is what a peer can reach.
 *
 * The node is tests/support/memnode.c's.  No process is started and no
 * network is used: uv_spawn, mt_sock_connect and kill are wrapped at link
 * time (-Wl,--wrap).  Spawning fails; a connect to another node gets a socketpair whose far end the script may
 * write to (a node's replies to our pulls, the head's view); kill aborts,
 * since no step makes a process the daemon may signal.  Workers the script
 * needs are entries made in the pool as if started, which register with a
 * Hello carrying their id.
 *
 * Input: the script of fuzz_script.h, after one byte that picks the node:
 * even a head, odd a node that joined one (slot 0: its link to the head). */
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "fuzz_script.h"
#include "memnode.h"
#include "node.h"
#include "sock.h"

#define MAX_STEPS 64

static mt_node *cur; /* the node of the input being run (for the wraps) */

/* ---------------------------------------------------------------- wraps */

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

/* ---------------------------------------------------------------- the node */

static char session_dir[256];
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

static void node_new(mt_node *n, uv_loop_t *loop, bool head)
{
    cur = n;
    n->join = head ? NULL : mt_strdup("127.0.0.1:7");
    FUZZ_CHECK(memnode_new(n, loop, head, head ? FUZZ_HEAD_NID : FUZZ_SELF_NID, session_dir) == 0);
}

static void pump(mt_node *n)
{
    for (int i = 0; i < 4; i++) {
        uv_run(n->loop, UV_RUN_NOWAIT);
        fuzz_drain();
    }
}

static void node_free(mt_node *n)
{
    fuzz_close_slots();
    pump(n);
    memnode_free(n);
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
            memnode_tick(&node);
            break;
        }
        pump(&node);
    }
    node_free(&node);
    return 0;
}

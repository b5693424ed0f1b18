/* fuzz_core.c -- the client runtime's message handlers: a runtime (driver,
 * or worker) connects to a node that is the script itself, and the input
 * is a script of steps that send it frames as its node, its control store,
 * workers it leased and peers that call it, interleaved with calls of its
 * API (submit, put, get, actors, cancel, running a pushed task) that give
 * those frames something to answer.
 *
 * The runtime is the real one (mt_core_connect): its node connection gets
 * a HelloReply with a store memfd from this file, its listening socket is
 * real (peers connect to it), and its background thread never takes the
 * loop (MANTA_LOOP_HANDOFF_US is huge): the script's thread reads every
 * frame (do_poll_now), so a run repeats.  mt_sock_connect is wrapped at
 * link time: every connection the runtime opens is a socketpair whose far
 * end is a slot of the script.
 *
 * Input: one byte (bit 0: a worker, else a driver; bit 1, drivers: the
 * control store is on another node, reached over its own connection, slot
 * 1), then the script of fuzz_script.h with the FUZZ_CORE_* calls.  Slot 0
 * is the node. */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "router.h"
#include "fuzz.h"
#include "fuzz_script.h"
#include "sock.h"
#include "value.h"

#define MAX_STEPS 64
#define MAX_REFS 32
#define STORE_BYTES (1u << 20)

static char session[256], node_socket[300];
static uint16_t known[256];
static size_t nknown;
static int store_fd = -1;
static bool remote_gcs;
static bool connecting; /* the next connect is to the node */

static bool answerable(uint16_t type);

/* ---------------------------------------------------------------- wraps */

/* The node's answer to Hello, with the store, waits in the socket before
 * the runtime reads it. */
static void node_hello_reply(int far)
{
    Manta__HelloReply rep = MANTA__HELLO_REPLY__INIT;
    uint8_t nid[MT_NODE_ID_LEN];
    memset(nid, FUZZ_HEAD_NID, sizeof nid);
    rep.node_id = MT_BIN(nid, sizeof nid);
    rep.job_id = 1;
    rep.store_size = STORE_BYTES;
    rep.session_dir = session;
    rep.token = MT_BIN((const uint8_t *)"fuzztoken", 9);
    rep.gcs_endpoint = remote_gcs ? "tcp:127.0.0.1:7" : "";
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO_REPLY, &rep.base);
    FUZZ_CHECK(mt_sock_send_fd(far, b.data, b.len, store_fd) == 0);
    mt_buf_free(&b);
}

int __wrap_mt_sock_connect(const char *endpoint, double timeout_s, int *fd);
int __wrap_mt_sock_connect(const char *endpoint, double timeout_s, int *fd)
{
    MT_UNUSED(timeout_s);
    int near, far;
    if (fuzz_nslots >= FUZZ_MAX_SLOTS || fuzz_pair(&near, &far))
        return mt_err(MANTA_ECONN, "cannot connect to %s", endpoint);
    if (connecting) node_hello_reply(far);
    connecting = false;
    fuzz_add_slot(far);
    *fd = near;
    return 0;
}

/* A process of the cluster leaves with _exit where its role says so (a
 * worker whose node is gone, a forced cancel); the script avoids those
 * cases, so one that happens is reported, not silently ended. */
void __wrap__exit(int code);
void __wrap__exit(int code)
{
    fprintf(stderr, "fuzz_core: the runtime called _exit(%d)\n", code);
    abort();
}

/* ---------------------------------------------------------------- setup */

static void remove_session(void)
{
    char w[320];
    snprintf(w, sizeof w, "%s/w", session);
    rmdir(w);
    rmdir(session);
}

static void once(void)
{
    if (nknown) return;
    atexit(remove_session);
    /* The script's thread runs the loop; the background thread never. */
    setenv("MANTA_LOOP_HANDOFF_US", "1000000000000000", 1);
    setenv("MANTA_SPIN_US", "0", 1);
    mt_config_load();
    fuzz_logging = getenv("FUZZ_LOG") != NULL;
    mt_log_init("fuzz_core", 2);
    signal(SIGPIPE, SIG_IGN);
    const char *tmp = getenv("TMPDIR");
    snprintf(session, sizeof session, "%s/mt-fuzz-core-%d", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    snprintf(node_socket, sizeof node_socket, "%s/daemon.sock", session);
    store_fd = memfd_create("fuzz-store", MFD_CLOEXEC);
    FUZZ_CHECK(store_fd >= 0 && ftruncate(store_fd, STORE_BYTES) == 0);
    nknown = fuzz_msg_types(known, MT_ARRAY_LEN(known));
    fuzz_keep_type = answerable;
}

static mt_core *runtime_new(uint8_t how)
{
    char w[320];
    mkdir(session, 0700);
    snprintf(w, sizeof w, "%s/w", session);
    mkdir(w, 0700);
    bool worker = how & 1;
    remote_gcs = !worker && (how & 2);
    mt_core_opts o = {0};
    o.role = worker ? MANTA__ROLE__ROLE_WORKER : MANTA__ROLE__ROLE_DRIVER;
    o.lang = MANTA__LANGUAGE__LANG_C;
    o.node_socket = node_socket;
    o.runtime = "exe:/fuzz/driver";
    connecting = true;
    mt_core *c = NULL;
    int rc = mt_core_connect(&o, &c);
    if (rc) fprintf(stderr, "fuzz_core: cannot connect: %s\n", manta_last_error());
    FUZZ_CHECK(rc == 0);
    mt_log_set_level(fuzz_logging ? 0 : 9);
    /* A worker whose node connection closes exits (_exit) by design; here
     * the script may close it (a bad frame does), so the worker is told
     * its node is stopping, as `manta stop` would. */
    if (worker) c->node_stop_requested = true;
    return c;
}

static void pump(mt_core *c)
{
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&c->mu);
        do_loop_poll_now(c);
        pthread_mutex_unlock(&c->mu);
        fuzz_drain();
    }
}

/* ---------------------------------------------------------------- calls */

static mt_obj *refs[MAX_REFS];
static size_t nrefs;
static mt_aid actor;
static mt_obj *anchor;
static bool have_actor;

static void keep(mt_obj *o)
{
    if (!o) return;
    if (nrefs < MAX_REFS) refs[nrefs++] = o;
}

static mt_obj *pick(uint8_t arg) { return nrefs ? refs[arg % nrefs] : NULL; }

static const uint8_t fn_id[MT_FN_ID_LEN] = "fuzz-function-1";
static const char *const res_names[] = {"CPU", "GPU", "custom"};
static const int64_t res_amounts[] = {10000, 5000, 20000};

/* One argument: a small value, or a held ref (bit 3 of arg); the caller
 * frees t->data after the call (the runtime copies it). */
static uint32_t one_arg(uint8_t arg, mt_targ *t)
{
    memset(t, 0, sizeof *t);
    mt_obj *r = pick(arg >> 4);
    if ((arg & 8) && r) {
        t->kind = MT_ARG_REF;
        t->ref = r;
        return 1;
    }
    t->kind = MT_ARG_VALUE;
    t->size = mt_valfmt_size(3, NULL, 0);
    t->data = mt_malloc(t->size);
    uint64_t off = mt_valfmt_write(t->data, MT_FMT_RAW, 0, 3, NULL, 0);
    memcpy(t->data + off, "arg", 3);
    return 1;
}

static void call_submit(mt_core *c, uint8_t arg)
{
    mt_task_desc d = {0};
    mt_targ a;
    d.kind = MANTA__TASK_KIND__TASK_NORMAL;
    d.fn_id = fn_id;
    d.name = "f";
    d.lang = MANTA__LANGUAGE__LANG_C;
    d.nargs = one_arg(arg, &a);
    d.args = &a;
    d.num_returns = 1 + (arg & 1);
    d.res_names = res_names;
    d.res_amounts = res_amounts;
    d.nres = 1 + (arg >> 1 & 3) % 3;
    d.max_retries = arg & 4 ? 1 : 0;
    mt_obj *ret[2] = {NULL, NULL};
    if (mt_core_submit(c, &d, ret) == 0) {
        keep(ret[0]);
        keep(ret[1]);
    }
    free(a.data);
}

static void call_put(mt_core *c, uint8_t arg)
{
    mt_put p;
    uint8_t *data;
    uint64_t size = mt_valfmt_size(arg, NULL, 0);
    if (mt_core_put_begin(c, size, &p, &data)) return;
    mt_valfmt_write(data, MT_FMT_RAW, 0, arg, NULL, 0);
    mt_obj *o = NULL;
    if (mt_core_put_end(c, &p, NULL, 0, &o) == 0) keep(o);
}

static void call_get(mt_core *c, uint8_t arg)
{
    mt_obj *o = pick(arg);
    if (!o) return;
    mt_value *v = NULL;
    if (mt_core_get(c, &o, 1, 0, &v) == 0 && v) mt_value_unref(v);
}

static void call_actor(mt_core *c, uint8_t arg)
{
    if (have_actor) return;
    mt_actor_desc d = {0};
    mt_targ a;
    d.class_name = "Fuzz";
    d.lang = MANTA__LANGUAGE__LANG_C;
    d.nargs = one_arg(arg, &a);
    d.args = &a;
    d.res_names = res_names;
    d.res_amounts = res_amounts;
    d.nres = 1;
    d.max_concurrency = 1 + (arg & 3);
    d.max_restarts = arg & 4 ? 1 : 0;
    d.max_task_retries = arg & 4 ? 1 : 0;
    uint8_t *existing = NULL;
    size_t elen = 0;
    if (mt_core_actor_create(c, &d, &actor, &anchor, &existing, &elen) == 0) have_actor = true;
    free(existing);
    free(a.data);
}

static void call_method(mt_core *c, uint8_t arg)
{
    if (!have_actor) return;
    mt_targ a;
    uint32_t na = one_arg(arg, &a);
    mt_obj *ret = NULL;
    if (mt_core_actor_call(c, &actor, "m", &a, na, 1, anchor, &ret) == 0) keep(ret);
    free(a.data);
}

static void call_cancel(mt_core *c, uint8_t arg)
{
    mt_obj *o = pick(arg);
    if (o) mt_core_cancel(c, o, arg & 1, arg & 2);
}

static void call_drop(mt_core *c, uint8_t arg)
{
    if (!nrefs) return;
    size_t i = arg % nrefs;
    mt_obj_decref(c, refs[i]);
    refs[i] = refs[--nrefs];
}

/* A worker runs what was pushed to it: ok with a return, an error, or a
 * system error. */
static void call_exec(mt_core *c, uint8_t arg)
{
    mt_exec_task *t = NULL;
    if (mt_exec_try_next(c, &t) || !t) return;
    const Manta__TaskSpec *spec = mt_exec_spec(t);
    for (size_t i = 0; spec && i < spec->n_args; i++) {
        mt_value *v = mt_exec_arg(t, i);
        MT_UNUSED(v);
    }
    int how = arg % 3;
    if (how == 0 && spec) {
        for (uint32_t i = 0; i < spec->num_returns && i < 4; i++) {
            uint8_t *p = mt_exec_return_alloc(c, t, i, mt_valfmt_size(2, NULL, 0), NULL, 0);
            if (p) mt_valfmt_write(p, MT_FMT_RAW, 0, 2, NULL, 0);
        }
        mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_OK, NULL);
    } else {
        mt_exec_finish(c, t,
                       how == 1 ? MANTA__TASK_STATUS__TASK_APP_ERROR
                                : MANTA__TASK_STATUS__TASK_SYSTEM_ERROR,
                       "fuzz");
    }
}

/* ---------------------------------------------------------------- answers
 *
 * The script's slots answer what the runtime asked them last, the way a
 * node, a leased worker or the control store would; `arg` picks among
 * the answers (granted, spilled to another node, refused; a task's
 * status).  Ids in the answers are the runtime's own, so the replies
 * reach the code that matches them. */

static bool answerable(uint16_t type)
{
    switch (type) {
    case MANTA__MSG_TYPE__MSG_LEASE_REQUEST:
    case MANTA__MSG_TYPE__MSG_PUSH_TASK:
    case MANTA__MSG_TYPE__MSG_OBJ_CREATE:
    case MANTA__MSG_TYPE__MSG_OBJ_GET:
    case MANTA__MSG_TYPE__MSG_ACTOR_REGISTER:
    case MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP:
    case MANTA__MSG_TYPE__MSG_ADD_BORROWER:
        return true;
    }
    return false;
}

static void answer_lease(int fd, const Manta__LeaseRequest *r, uint8_t arg)
{
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    Manta__Address w = MANTA__ADDRESS__INIT;
    uint8_t wid[MT_WORKER_ID_LEN], nid[MT_NODE_ID_LEN];
    char ep[64];
    memset(wid, FUZZ_WORKER_WID(arg >> 2), sizeof wid);
    memset(nid, FUZZ_NODE_NID(1), sizeof nid);
    snprintf(ep, sizeof ep, "unix:/nonexistent/w/%u", (arg >> 2) & 15);
    g.request_id = r->request_id;
    switch (arg & 3) {
    case 0:
    case 1:
        w.worker_id = MT_BIN(wid, sizeof wid);
        w.endpoint = ep;
        g.worker = &w;
        g.worker_pid = 1;
        g.n_assigned = r->n_demand;
        g.assigned = r->demand;
        break;
    case 2:
        g.spill_node = MT_BIN(nid, sizeof nid);
        g.spill_endpoint = "tcp:127.0.0.1:1001";
        break;
    default:
        g.status = MANTA_EINVAL;
        g.error = "refused by the fuzz script";
    }
    fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
}

static void answer_push(int fd, const Manta__PushTask *p, uint8_t arg)
{
    for (size_t i = 0; i < p->n_tasks; i++) {
        const Manta__TaskSpec *t = p->tasks[i];
        Manta__TaskReply r = MANTA__TASK_REPLY__INIT;
        Manta__ReturnObject ro[4], *rop[4];
        uint8_t val[64];
        uint64_t off = mt_valfmt_write(val, MT_FMT_RAW, 0, 2, NULL, 0);
        memcpy(val + off, "ok", 2);
        r.task_id = t->task_id;
        r.attempt = t->attempt;
        r.exec_ns = 1000u * arg;
        r.status = (Manta__TaskStatus)(arg % 7);
        for (uint32_t k = 0; k < t->num_returns && k < 4; k++) {
            manta__return_object__init(&ro[k]);
            ro[k].kind = MANTA__RETURN_KIND__RET_INLINE;
            ro[k].data = MT_BIN(val, off + 2);
            rop[k] = &ro[k];
        }
        r.n_returns = MT_MIN(t->num_returns, 4);
        r.returns = rop;
        if (r.status == MANTA__TASK_STATUS__TASK_SYSTEM_ERROR) r.error = "fuzz";
        fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_TASK_REPLY, &r.base);
    }
}

static void answer_get(int fd, const Manta__ObjGet *g, uint8_t arg)
{
    Manta__ObjGetReply r = MANTA__OBJ_GET_REPLY__INIT;
    Manta__ObjLocation loc[8], *lp[8];
    r.request_id = g->request_id;
    r.n_objects = MT_MIN(g->n_object_ids, 8);
    for (size_t i = 0; i < r.n_objects; i++) {
        manta__obj_location__init(&loc[i]);
        loc[i].object_id = g->object_ids[i];
        loc[i].status = arg & 1 ? 0 : MANTA_ETIMEDOUT;
        loc[i].offset = 4096u * (arg >> 1);
        loc[i].size = 64;
        lp[i] = &loc[i];
    }
    r.objects = lp;
    fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_OBJ_GET_REPLY, &r.base);
}

static void answer_actor(int fd, uint16_t type, const ProtobufCMessage *m, uint8_t arg)
{
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT, *infos[1] = {&info};
    Manta__Address w = MANTA__ADDRESS__INIT;
    uint8_t wid[MT_WORKER_ID_LEN];
    memset(wid, FUZZ_WORKER_WID(arg >> 2), sizeof wid);
    w.worker_id = MT_BIN(wid, sizeof wid);
    w.endpoint = "unix:/nonexistent/w/actor";
    if (type == MANTA__MSG_TYPE__MSG_ACTOR_REGISTER) {
        const Manta__ActorRegister *ar = (const Manta__ActorRegister *)m;
        Manta__ActorRegisterReply r = MANTA__ACTOR_REGISTER_REPLY__INIT;
        r.request_id = ar->request_id;
        r.status = arg & 1 ? MANTA_EEXIST : 0;
        r.info = ar->info;
        fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY, &r.base);
        return;
    }
    const Manta__ActorLookup *al = (const Manta__ActorLookup *)m;
    Manta__ActorLookupReply r = MANTA__ACTOR_LOOKUP_REPLY__INIT;
    r.request_id = al->request_id;
    info.actor_id = al->actor_id;
    info.name = al->name;
    info.ns = al->ns;
    info.state = (Manta__ActorState)(1 + arg % 4);
    info.address = &w;
    r.status = arg & 0x80 ? MANTA_ENOENT : 0;
    r.n_actors = 1;
    r.actors = infos;
    fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY, &r.base);
}

static void step_answer(fuzz_input *in)
{
    uint8_t slot = fuzz_take8(in), arg = fuzz_take8(in);
    if (!fuzz_nslots) return;
    size_t i = slot % fuzz_nslots;
    fuzz_said *l = &fuzz_last[i];
    if (fuzz_slots[i] < 0 || !l->type) return;
    mt_arena a;
    mt_arena_init(&a);
    ProtobufCMessage *m = NULL;
    char err[256];
    if (mt_wire_decode(l->type, mt_buf_head(&l->payload), mt_buf_avail(&l->payload), &a, &m, err,
                       sizeof err) == 0) {
        int fd = fuzz_slots[i];
        switch (l->type) {
        case MANTA__MSG_TYPE__MSG_LEASE_REQUEST:
            answer_lease(fd, (const Manta__LeaseRequest *)m, arg);
            break;
        case MANTA__MSG_TYPE__MSG_PUSH_TASK:
            answer_push(fd, (const Manta__PushTask *)m, arg);
            break;
        case MANTA__MSG_TYPE__MSG_OBJ_CREATE: {
            Manta__ObjCreateReply r = MANTA__OBJ_CREATE_REPLY__INIT;
            r.request_id = ((const Manta__ObjCreate *)m)->request_id;
            r.status = arg & 1 ? MANTA_ESTOREFULL : 0;
            r.offset = 4096u * (arg >> 1);
            fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_OBJ_CREATE_REPLY, &r.base);
            break;
        }
        case MANTA__MSG_TYPE__MSG_OBJ_GET:
            answer_get(fd, (const Manta__ObjGet *)m, arg);
            break;
        case MANTA__MSG_TYPE__MSG_ADD_BORROWER: {
            Manta__AddBorrowerAck r = MANTA__ADD_BORROWER_ACK__INIT;
            r.request_id = ((const Manta__AddBorrower *)m)->request_id;
            r.status = arg & 1 ? MANTA_ENOENT : 0;
            fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_ADD_BORROWER_ACK, &r.base);
            break;
        }
        default:
            answer_actor(fd, l->type, m, arg);
        }
    }
    mt_arena_free(&a);
}

/* ---------------------------------------------------------------- steps */

/* A peer calls us: it connects to our socket and (unless raw) says Hello. */
static void step_peer(mt_core *c, uint8_t arg, bool hello)
{
    if (fuzz_nslots >= FUZZ_MAX_SLOTS) return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", c->listen_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
        if (fd >= 0) close(fd);
        return;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    fuzz_add_slot(fd);
    if (!hello) return;
    Manta__Hello h = MANTA__HELLO__INIT;
    Manta__Address a = MANTA__ADDRESS__INIT;
    uint8_t wid[MT_WORKER_ID_LEN];
    char ep[64];
    memset(wid, FUZZ_CLIENT_WID(arg), sizeof wid);
    snprintf(ep, sizeof ep, "unix:/nonexistent/w/%u", arg & 15);
    a.worker_id = MT_BIN(wid, sizeof wid);
    a.endpoint = ep;
    h.version = MT_WIRE_VERSION;
    h.role = MANTA__ROLE__ROLE_PEER;
    h.worker_id = a.worker_id;
    h.address = &a;
    fuzz_write_msg(fd, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
}

static void step_tick(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    c->hooks->tick(c); /* what the loop's timer runs */
    pthread_mutex_unlock(&c->mu);
}

static void step(mt_core *c, fuzz_input *in)
{
    uint8_t kind = fuzz_take8(in) % FUZZ_CORE_KINDS;
    if (kind == FUZZ_STEP_FRAME || kind == FUZZ_STEP_FRAME2 || kind == FUZZ_STEP_FRAME3) {
        fuzz_step_frame(in, known, nknown);
        return;
    }
    if (kind == FUZZ_STEP_TICK) {
        step_tick(c);
        return;
    }
    if (kind == FUZZ_STEP_HANGUP) {
        fuzz_step_hangup(in, 0);
        return;
    }
    if (kind == FUZZ_CORE_ANSWER) {
        step_answer(in);
        return;
    }
    uint8_t arg = fuzz_take8(in);
    switch (kind) {
    case FUZZ_STEP_CONNECT: step_peer(c, arg, true); break;
    case FUZZ_STEP_RAW: step_peer(c, arg, false); break;
    case FUZZ_CORE_SUBMIT: call_submit(c, arg); break;
    case FUZZ_CORE_PUT: call_put(c, arg); break;
    case FUZZ_CORE_GET: call_get(c, arg); break;
    case FUZZ_CORE_ACTOR: call_actor(c, arg); break;
    case FUZZ_CORE_CALL: call_method(c, arg); break;
    case FUZZ_CORE_CANCEL: call_cancel(c, arg); break;
    case FUZZ_CORE_DROP: call_drop(c, arg); break;
    case FUZZ_CORE_EXEC: call_exec(c, arg); break;
    }
}

FUZZ_EXPORT int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    once();
    fuzz_random_reset();
    fuzz_input in = {data, size};
    uint8_t how = fuzz_take8(&in);
    mt_core *c = runtime_new(how);
    pump(c);
    for (int i = 0; in.n && i < MAX_STEPS; i++) {
        step(c, &in);
        pump(c);
    }
    while (nrefs) mt_obj_decref(c, refs[--nrefs]);
    if (have_actor && anchor) mt_obj_decref(c, anchor);
    have_actor = false;
    anchor = NULL;
    pump(c);
    mt_core_disconnect(c);
    fuzz_close_slots();
    return 0;
}

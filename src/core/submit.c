/* submit.c -- the submitter side of tasks: dependency waiting, scheduling
 * classes, worker leases from the node, direct pushes to leased workers,
 * replies, retries when a worker dies, and returning idle leases. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "submit.h"
#include "mt.h"

typedef struct lease_req {
    uint64_t id; /* key (offset 0) */
    mt_class *cls;
    struct mt_actor *actor; /* a lease for an actor's life */
    bool cancelled;
    uint8_t *req;           /* the packed LeaseRequest, to send again after a spill */
    size_t req_len;
    uint32_t spills;
    mt_conn *daemon;        /* where it waits, if not our node (not held) */
} lease_req;

static void lease_req_free(lease_req *r)
{
    free(r->req);
    free(r);
}

/* Send (again) to our node, or to `r->daemon` after a spill. */
static void send_request(mt_core *c, lease_req *r)
{
    Manta__LeaseRequest *m = manta__lease_request__unpack(NULL, r->req_len, r->req);
    if (!m) return;
    m->spills = r->spills;
    if (r->daemon) mt_conn_send_now(r->daemon, MANTA__MSG_TYPE__MSG_LEASE_REQUEST, &m->base);
    else do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_LEASE_REQUEST, &m->base);
    manta__lease_request__free_unpacked(m, NULL);
}

static lease_req *new_request(mt_core *c, Manta__LeaseRequest *m)
{
    lease_req *r = mt_calloc(1, sizeof *r);
    r->id = ++c->next_req;
    m->request_id = r->id;
    r->req_len = manta__lease_request__get_packed_size(m);
    r->req = mt_malloc(r->req_len + 1);
    manta__lease_request__pack(m, r->req);
    mt_map_put(&c->lease_reqs, r);
    do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_LEASE_REQUEST, &m->base);
    return r;
}

/* Ask the node for a worker dedicated to an actor (see actor.c). */
uint64_t do_sub_actor_lease(mt_core *c, struct mt_actor *a, const Manta__LeaseRequest *tmpl)
{
    Manta__LeaseRequest m = *tmpl;
    lease_req *r = new_request(c, &m);
    r->actor = a;
    return r->id;
}

/* ---------------------------------------------------------------- other nodes */

static void on_rdaemon_close(mt_conn *conn, int reason, void *ud)
{
    mt_core *c = ud;
    MT_UNUSED(reason);
    size_t it = 0;
    mt_rdaemon *d;
    while ((d = mt_map_next(&c->rdaemons, &it))) {
        if (d->conn != conn) continue;
        mt_map_del(&c->rdaemons, d->nid.b);
        free(d);
        break;
    }
    if (!c->stopping) c->hooks->rdaemon_closed(c, conn);
    mt_conn_unref(conn);
}

/* Our connection to another node's daemon (a lessee of its workers). */
static mt_conn *rdaemon_conn(mt_core *c, const mt_nid *nid, const char *endpoint)
{
    mt_rdaemon *d = mt_map_get(&c->rdaemons, nid->b);
    if (d) return d->conn;
    if (do_obj_node_is_dead(c, nid) || !endpoint || !endpoint[0]) return NULL;
    mt_conn *conn; /* made without waiting, like every connection of the I/O loop */
    if (mt_conn_connect(&c->cl, endpoint, do_loop_node_frame, on_rdaemon_close, c, &conn)) {
        mt_debug("cannot reach node %s: %s", endpoint, manta_last_error());
        return NULL;
    }
    snprintf(conn->desc, sizeof conn->desc, "node %.50s", endpoint);
    Manta__Hello h = MANTA__HELLO__INIT;
    Manta__Address a;
    char ep[256];
    do_loop_address(c, &a, ep, sizeof ep);
    h.version = MT_WIRE_VERSION;
    h.token = MT_BIN(c->token, strlen(c->token));
    h.role = MANTA__ROLE__ROLE_LESSEE;
    h.worker_id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
    h.pid = (uint32_t)c->pid;
    h.job_id = c->job_id;
    h.address = &a;
    h.language = c->lang;
    h.node_id = MT_BIN(c->nid.b, MT_NODE_ID_LEN);
    mt_conn_send(conn, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    do_loop_start_conn(c, conn);
    d = mt_calloc(1, sizeof *d);
    d->nid = *nid;
    d->conn = conn;
    mt_map_put(&c->rdaemons, d);
    return conn;
}

static void class_pump(mt_core *c, mt_class *cls);
static void enqueue(mt_core *c, mt_task *t, bool front);

/* ---------------------------------------------------------------- classes */

/* Two independent 64-bit hashes of everything that picks a worker kind. */
static void mix(uint64_t *h, const void *p, size_t n, uint64_t prime)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) *h = (*h ^ b[i]) * prime;
}

static void mix2(uint64_t h[2], const void *p, size_t n)
{
    mix(&h[0], p, n, 1099511628211ULL);
    mix(&h[1], p, n, 0x100000001B5ULL);
}

static void class_key(const mt_task_desc *d, const char *runtime, const mt_nid *preferred,
                      uint8_t key[16])
{
    uint64_t h[2] = {1469598103934665603ULL, 0x9E3779B97F4A7C15ULL};
    int head[4] = {d->lang, d->kind, d->strategy, d->soft};
    mix2(h, head, sizeof head);
    if (d->node) mix2(h, d->node, MT_NODE_ID_LEN);
    mix2(h, preferred->b, MT_NODE_ID_LEN);
    mix2(h, runtime, strlen(runtime) + 1);
    for (uint32_t i = 0; i < d->nres; i++) {
        mix2(h, d->res_names[i], strlen(d->res_names[i]) + 1);
        mix2(h, &d->res_amounts[i], sizeof d->res_amounts[i]);
    }
    memcpy(key, h, 16);
}

/* Locality: the node that holds most of the bytes of the arguments that
 * sit in a store (zero: ours, or none worth moving for). */
static mt_nid preferred_node(mt_core *c, const mt_task_desc *d)
{
    mt_nid best = {{0}};
    uint64_t best_bytes = 0, here = 0;
    for (uint32_t i = 0; i < d->nargs; i++) {
        const mt_obj *o = d->args[i].ref;
        if (!o || !o->in_plasma || o->state != MT_OBJ_READY) continue;
        static const mt_nid zero;
        if (MT_ID_EQ(o->loc, zero) || MT_ID_EQ(o->loc, c->nid)) {
            here += o->size;
            continue;
        }
        uint64_t sum = 0;
        for (uint32_t j = 0; j < d->nargs; j++) {
            const mt_obj *q = d->args[j].ref;
            if (q && q->in_plasma && MT_ID_EQ(q->loc, o->loc)) sum += q->size;
        }
        if (sum > best_bytes) {
            best_bytes = sum;
            best = o->loc;
        }
    }
    if (best_bytes <= here) memset(&best, 0, sizeof best);
    return best;
}

static mt_class *class_for(mt_core *c, const mt_task_desc *d)
{
    const char *runtime = d->runtime ? d->runtime : c->runtime;
    if (d->lang == MANTA__LANGUAGE__LANG_PYTHON) runtime = "";
    uint8_t key[16];
    mt_nid pref = d->strategy == MANTA__SCHED_STRATEGY__SCHED_DEFAULT ? preferred_node(c, d)
                                                                      : (mt_nid){{0}};
    class_key(d, runtime, &pref, key);
    mt_class *cls = mt_map_get(&c->classes, key);
    if (cls) return cls;
    cls = mt_calloc(1, sizeof *cls);
    memcpy(cls->key, key, 16);
    cls->nres = d->nres;
    cls->res_names = mt_calloc(d->nres + 1, sizeof *cls->res_names);
    cls->res_amounts = mt_calloc(d->nres + 1, sizeof *cls->res_amounts);
    for (uint32_t i = 0; i < d->nres; i++) {
        cls->res_names[i] = mt_strdup(d->res_names[i]);
        cls->res_amounts[i] = d->res_amounts[i];
    }
    cls->lang = d->lang;
    cls->runtime = mt_strdup(runtime);
    cls->avg_exec_us = -1;
    cls->strategy = d->strategy;
    if (d->node) memcpy(cls->node.b, d->node, MT_NODE_ID_LEN);
    cls->soft = d->soft;
    cls->preferred = pref;
    mt_map_put(&c->classes, cls);
    return cls;
}

/* ---------------------------------------------------------------- task lifetime */

/* Run t again once its arguments are ready; arguments whose copies went
 * with a dead node are rebuilt (or fail) first. */
static void wait_for_args(mt_core *c, mt_task *t, bool front)
{
    for (uint32_t i = 0; i < t->nargs; i++) {
        mt_obj *a = t->args[i].ref;
        if (a && a->in_plasma && do_obj_node_is_dead(c, &a->loc)) do_obj_lost(c, a, &a->loc);
    }
    t->state = MT_TASK_WAITING;
    if (do_task_watch_deps(c, t) == 0) enqueue(c, t, front);
}

bool do_sub_reconstruct(mt_core *c, mt_obj *o)
{
    mt_task *t = o->lineage;
    if (!t) return false;
    if (t->state != MT_TASK_DONE) {
        o->producing = true;
        return true; /* already running again */
    }
    if (t->retries_left == 0) return false;
    if (t->retries_left > 0) t->retries_left--;
    t->attempt++;
    mt_map_del(&c->lineage, &t->id);
    /* The returns lost with it are made again; the others stay as they are
     * (a reply never overwrites a ready object). */
    for (uint32_t i = 0; i < t->num_returns; i++) {
        mt_obj *r = t->returns[i];
        if (!r) continue;
        if (r == o || (r->in_plasma && !r->value && MT_ID_EQ(r->loc, o->loc))) {
            r->in_plasma = false;
            r->state = MT_OBJ_PENDING;
        }
        r->producing = r->state != MT_OBJ_READY;
    }
    o->producing = true;
    mt_map_put(&c->tasks, t);
    t->lease = NULL;
    wait_for_args(c, t, false);
    return true;
}

static void enqueue(mt_core *c, mt_task *t, bool front)
{
    mt_class *cls = t->cls;
    if (do_task_fail_on_error_arg(c, t)) return;
    t->state = MT_TASK_QUEUED;
    t->lease = NULL;
    if (front) {
        t->qnext = cls->qhead;
        cls->qhead = t;
        if (!cls->qtail) cls->qtail = t;
    } else {
        t->qnext = NULL;
        if (cls->qtail) cls->qtail->qnext = t;
        else cls->qhead = t;
        cls->qtail = t;
    }
    cls->qlen++;
    class_pump(c, cls);
}

void do_sub_task_ready(mt_core *c, mt_task *t) { enqueue(c, t, false); }

int mt_core_submit(mt_core *c, const mt_task_desc *d, mt_obj **returns)
{
    if (d->num_returns > 1000000) return mt_err(MANTA_EINVAL, "num_returns too large");
    if (do_check_name("task name", d->name)) return MANTA_EINVAL;
    pthread_mutex_lock(&c->mu);
    if (c->daemon_lost) {
        pthread_mutex_unlock(&c->mu);
        return do_loop_node_lost(c);
    }
    int rc = do_obj_args_fit(c, d->args, d->nargs);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    mt_task *t = do_task_new(c, d->kind, d->args, d->nargs, d->num_returns, returns);
    if (d->fn_id) memcpy(t->fn_id, d->fn_id, MT_FN_ID_LEN);
    t->name = mt_strdup(d->name ? d->name : "");
    t->cls = class_for(c, d);
    t->retries_left = d->max_retries;
    if (d->retry_exc_len) {
        t->retry_exc = mt_memdup(d->retry_exc, d->retry_exc_len);
        t->retry_exc_len = d->retry_exc_len;
    }
    if (mt_loop_tl_task) memcpy(t->parent.b, mt_loop_tl_task, MT_TASK_ID_LEN);
    do_task_watch_deps(c, t);
    t->state = MT_TASK_WAITING;
    if (t->ndeps == 0) enqueue(c, t, false);
    c->last_active = mt_now_coarse();
    if (++c->since_poll >= 8) {
        c->since_poll = 0;
        do_loop_poll_now(c);
    }
    pthread_mutex_unlock(&c->mu);
    return 0;
}

/* ---------------------------------------------------------------- leases */

static void request_lease(mt_core *c, mt_class *cls)
{
    static const mt_nid zero;
    Manta__LeaseRequest m = MANTA__LEASE_REQUEST__INIT;
    Manta__Resource *rs = mt_calloc(cls->nres + 1, sizeof *rs);
    Manta__Resource **rp = mt_calloc(cls->nres + 1, sizeof *rp);
    mt_task_res_wire(cls->res_names, cls->res_amounts, cls->nres, rs, rp);
    m.demand = rp;
    m.n_demand = cls->nres;
    m.language = cls->lang;
    m.runtime = cls->runtime;
    m.name = cls->qhead ? cls->qhead->name : "";
    m.strategy = cls->strategy;
    if (cls->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY)
        m.node_id = MT_BIN(cls->node.b, MT_NODE_ID_LEN);
    m.soft = cls->soft;
    if (!MT_ID_EQ(cls->preferred, zero)) m.preferred_node = MT_BIN(cls->preferred.b, MT_NODE_ID_LEN);
    lease_req *r = new_request(c, &m);
    r->cls = cls;
    free(rs);
    free(rp);
    cls->pending_requests++;
}

static void cancel_requests(mt_core *c, mt_class *cls)
{
    size_t it = 0;
    lease_req *r;
    while ((r = mt_map_next(&c->lease_reqs, &it))) {
        if (r->actor || r->cls != cls || r->cancelled) continue;
        r->cancelled = true;
        Manta__LeaseCancel m = MANTA__LEASE_CANCEL__INIT;
        m.request_id = r->id;
        if (r->daemon) mt_conn_send_now(r->daemon, MANTA__MSG_TYPE__MSG_LEASE_CANCEL, &m.base);
        else do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_LEASE_CANCEL, &m.base);
    }
}

static void return_lease(mt_core *c, mt_lease *l, bool failed)
{
    mt_class *cls = l->cls;
    for (mt_lease **pp = &cls->leases; *pp; pp = &(*pp)->next) {
        if (*pp == l) {
            *pp = l->next;
            cls->nleases--;
            break;
        }
    }
    do_sub_lease_return(c, l->daemon, &l->worker->wid, failed);
    if (l->daemon) mt_conn_unref(l->daemon);
    free(l->gpu_ids);
    free(l);
}

void do_sub_lease_return(mt_core *c, mt_conn *daemon, const mt_wid *wid, bool failed)
{
    Manta__LeaseReturn m = MANTA__LEASE_RETURN__INIT;
    m.worker_id = MT_BIN(wid->b, MT_WORKER_ID_LEN);
    m.worker_failed = failed;
    if (daemon) mt_conn_send_now(daemon, MANTA__MSG_TYPE__MSG_LEASE_RETURN, &m.base);
    else do_loop_send_daemon(c, MANTA__MSG_TYPE__MSG_LEASE_RETURN, &m.base);
}

/* A class whose tasks are known to run shorter than 1 ms. */
static bool short_class(const mt_class *cls)
{
    return cls->avg_exec_us >= 0 && cls->avg_exec_us < 1000;
}

static uint32_t pipeline_depth(const mt_class *cls)
{
    /* Pipeline only short tasks (a long task would hold the ones queued
     * behind it while other workers may be free), and only about
     * `pipeline_us` of them per worker: deep enough that a worker of tiny
     * tasks replies in large batches, shallow enough that the last tasks of
     * a batch do not wait behind one worker while another is idle. */
    if (!short_class(cls)) return 1;
    double d = (double)mt_cfg.pipeline_us / (cls->avg_exec_us > 1 ? cls->avg_exec_us : 1);
    return (uint32_t)MT_MAX(1.0, MT_MIN(MT_MAX(2.0, d), (double)mt_cfg.max_tasks_in_flight));
}

/* A worker with tasks in flight that has not replied for far longer than
 * its pipeline should take: one of them runs long.  It gets no more tasks,
 * and does not count as a worker that will clear the backlog soon. */
static bool lease_stalled(const mt_lease *l, double now)
{
    return l->in_flight && now - l->progress_at > (double)mt_cfg.stall_ms / 1000.0;
}

static mt_lease *pick_lease(mt_class *cls, double now)
{
    mt_lease *best = NULL;
    uint32_t depth = pipeline_depth(cls);
    for (mt_lease *l = cls->leases; l; l = l->next) {
        if (l->dead || l->in_flight >= depth || lease_stalled(l, now)) continue;
        if (!best || l->in_flight < best->in_flight) best = l;
    }
    return best;
}

/* Whether a worker we hold runs this class's tasks as they come. */
static bool has_moving_lease(const mt_class *cls, double now)
{
    for (const mt_lease *l = cls->leases; l; l = l->next)
        if (!l->dead && !lease_stalled(l, now)) return true;
    return false;
}

static void push_task(mt_core *c, mt_lease *l, mt_task *t)
{
    t->state = MT_TASK_RUNNING;
    t->lease = l;
    t->lprev = NULL;
    t->lnext = l->tasks;
    if (l->tasks) l->tasks->lprev = t;
    l->tasks = t;
    if (l->in_flight++ == 0) l->progress_at = mt_now_s();
    mt_conn *conn = l->worker->conn;
    if (!conn) return;
    do_task_send(c, conn, t, l->gpu_ids, l->ngpu, l->cls->res_names, l->cls->res_amounts,
                 l->cls->nres);
    /* An idle worker gets the task now; one with work queued gets it with
     * the flush that follows its next reply (batching). */
    if (l->in_flight == 1) mt_conn_flush(conn);
}

static void class_pump(mt_core *c, mt_class *cls)
{
    double now = mt_now_s();
    while (cls->qhead) {
        mt_lease *l = pick_lease(cls, now);
        if (!l) break;
        mt_task *t = cls->qhead;
        cls->qhead = t->qnext;
        if (!cls->qhead) cls->qtail = NULL;
        cls->qlen--;
        push_task(c, l, t);
    }
    size_t want = MT_MIN(cls->qlen, (size_t)mt_cfg.max_pending_leases);
    /* Short tasks: another worker only when the backlog is more work than
     * the workers we hold clear soon (a worker's tiny tasks are done before
     * a new one could start, and it would take a core from this one). */
    if (want && short_class(cls) &&
        (double)cls->qlen * cls->avg_exec_us < (double)mt_cfg.pipeline_us &&
        has_moving_lease(cls, now))
        want = 0;
    while (cls->pending_requests < want && !c->daemon_lost) request_lease(c, cls);
    if (cls->qlen == 0 && cls->pending_requests) cancel_requests(c, cls);
}

/* The node says another node should run it: ask that one (at most a few
 * hops; then our own node keeps it). */
static void spill(mt_core *c, lease_req *r, const Manta__LeaseGrant *g)
{
    mt_nid nid;
    memcpy(nid.b, g->spill_node.data, MT_NODE_ID_LEN);
    r->spills++;
    mt_conn *d = MT_ID_EQ(nid, c->nid) || r->spills > 3 ? NULL
                                                         : rdaemon_conn(c, &nid, g->spill_endpoint);
    if (!d && !r->daemon && r->spills <= 3) r->spills = 4; /* unreachable: stay here */
    r->daemon = d;
    send_request(c, r);
}

int do_sub_grant(mt_core *c, mt_conn *conn, const Manta__LeaseGrant *g)
{
    lease_req *r = mt_map_get(&c->lease_reqs, &g->request_id);
    if (!r) return 0;
    int status = g->status;
    if (status == 0 && g->spill_node.len == MT_NODE_ID_LEN) {
        if (!r->cancelled) {
            spill(c, r, g);
            return 0;
        }
        /* The node forwarded it before our cancel arrived, so the cancel
         * found nothing there and no other answer will come: it ends here. */
        status = MANTA_ECANCELLED;
    }
    mt_map_del(&c->lease_reqs, &g->request_id);
    mt_conn *granted_by = conn != c->daemon ? conn : NULL;
    if (r->actor) {
        struct mt_actor *a = r->actor;
        lease_req_free(r);
        return c->hooks->actor_granted(c, a, g, granted_by);
    }
    mt_class *cls = r->cls;
    cls->pending_requests--;
    lease_req_free(r);
    if (status) {
        if (status != MANTA_ECANCELLED) {
            /* The node can never run this class: fail what waits for it. */
            mt_value *err = mt_value_error(status, "%s",
                                           g->error && g->error[0] ? g->error
                                                                   : manta_strerror(status));
            while (cls->qhead) {
                mt_task *t = cls->qhead;
                cls->qhead = t->qnext;
                cls->qlen--;
                mt_value_ref(err);
                do_task_fail(c, t, err);
            }
            cls->qtail = NULL;
            mt_value_unref(err);
        }
        class_pump(c, cls);
        return 0;
    }
    mt_peer *p = do_loop_peer_from_proto(c, g->worker);
    if (!p) return mt_err(MANTA_EPROTO, "lease grant without a worker");
    p->dead = false;
    mt_lease *l = mt_calloc(1, sizeof *l);
    l->worker = p;
    if (granted_by) {
        l->daemon = granted_by;
        mt_conn_ref(granted_by);
    }
    l->pid = (pid_t)g->worker_pid;
    l->cls = cls;
    l->idle_since = mt_now_s();
    l->ngpu = g->n_gpu_ids;
    l->gpu_ids = mt_calloc(g->n_gpu_ids + 1, sizeof *l->gpu_ids);
    if (g->n_gpu_ids) memcpy(l->gpu_ids, g->gpu_ids, g->n_gpu_ids * sizeof *g->gpu_ids);
    l->next = cls->leases;
    cls->leases = l;
    cls->nleases++;
    if (!do_loop_peer_conn(c, p)) {
        l->dead = true;
        return_lease(c, l, true);
        class_pump(c, cls);
        return 0;
    }
    class_pump(c, cls);
    return 0;
}

/* ---------------------------------------------------------------- replies */

/* `progress`: the worker answered the task (a task handed back is not
 * progress: its worker stays stalled). */
static void lease_unlink_task(mt_lease *l, mt_task *t, bool progress)
{
    if (t->lprev) t->lprev->lnext = t->lnext;
    else l->tasks = t->lnext;
    if (t->lnext) t->lnext->lprev = t->lprev;
    t->lprev = t->lnext = NULL;
    l->in_flight--;
    double now = mt_now_s();
    if (progress) {
        l->progress_at = now;
        l->handing_back = false;
    }
    if (l->in_flight == 0) l->idle_since = now;
}

static void note_exec_time(mt_class *cls, uint64_t exec_ns)
{
    double us = (double)exec_ns / 1000.0;
    cls->avg_exec_us = cls->avg_exec_us < 0 ? us : 0.8 * cls->avg_exec_us + 0.2 * us;
}

/* The worker could not fetch an argument: its node is gone.  Rebuild the
 * arguments lost (or learn they cannot be), then run the task again. */
static void args_lost(mt_core *c, mt_task *t, const char *why)
{
    if (t->retries_left == 0 || t->cancelled) {
        do_task_fail(c, t, t->cancelled ? mt_task_cancelled_error(t)
                                        : mt_value_error(MANTA_EOBJLOST, "%s", why ? why : ""));
        return;
    }
    if (t->retries_left > 0) t->retries_left--;
    t->attempt++;
    wait_for_args(c, t, true);
}

int do_sub_reply(mt_core *c, mt_conn *conn, mt_task *t, const Manta__TaskReply *r)
{
    if (!t || t->state != MT_TASK_RUNNING || !t->lease || t->lease->worker->conn != conn ||
        r->attempt != t->attempt)
        return 0; /* a stale reply (the task was retried elsewhere) */
    mt_lease *l = t->lease;
    mt_class *cls = t->cls;
    bool requeue = r->status == MANTA__TASK_STATUS__TASK_REQUEUE;
    lease_unlink_task(l, t, !requeue);
    if (!requeue) note_exec_time(cls, r->exec_ns);
    if (requeue) {
        /* Not started there; cancelled meanwhile, it never starts. */
        if (t->cancelled) do_task_fail(c, t, mt_task_cancelled_error(t));
        else enqueue(c, t, true);
    } else if (r->status == MANTA__TASK_STATUS__TASK_ARG_LOST) {
        args_lost(c, t, r->error);
    } else if (t->cancelled || r->status == MANTA__TASK_STATUS__TASK_CANCELLED) {
        do_task_fail(c, t, mt_task_cancelled_error(t));
    } else if (r->status == MANTA__TASK_STATUS__TASK_APP_ERROR && r->retryable &&
               t->retries_left != 0) {
        /* retry_exceptions: the exception is one the task may retry on. */
        if (t->retries_left > 0) t->retries_left--;
        t->attempt++;
        enqueue(c, t, true);
    } else if (r->status == MANTA__TASK_STATUS__TASK_OK ||
               r->status == MANTA__TASK_STATUS__TASK_APP_ERROR) {
        for (uint32_t i = 0; i < t->num_returns; i++) {
            if (!t->returns[i]) continue; /* freed while it ran again */
            if (i < r->n_returns) do_obj_set_return(c, t->returns[i], r->returns[i], &l->worker->nid);
            else
                do_obj_fail(c, t->returns[i],
                            mt_value_error(MANTA_EPROTO, "the worker sent %zu of %u returns",
                                           r->n_returns, t->num_returns));
        }
        do_task_finish(c, t);
    } else {
        do_task_fail(c, t, mt_value_error(MANTA_ETASK, "%s", r->error ? r->error : "task failed"));
    }
    class_pump(c, cls);
    mt_conn_flush(conn);
    return 0;
}

/* ---------------------------------------------------------------- failures */

/* A task out of retries whose worker died: its error depends on why, which
 * the node tells us (Event WORKER_DIED) shortly after the connection closes. */
typedef struct mt_dying {
    mt_task *task;
    mt_peer *peer;
    pid_t pid;
    double deadline;
    struct mt_dying *next;
} mt_dying;

static mt_value *death_error(const mt_task *t, pid_t pid, const mt_peer *p)
{
    if (p->death_reason == MANTA__DEATH_REASON__DEATH_OOM)
        return mt_value_error(MANTA_EOOM,
                              "Task %s was killed because the node was running low on memory "
                              "(worker pid=%d). It ran out of retries.",
                              t->name, (int)pid);
    return mt_value_error(MANTA_EWORKERDIED,
                          "The worker (pid=%d) running task %s died unexpectedly%s. It ran out of "
                          "retries.",
                          (int)pid, t->name, p->exit_code < 0 ? " from a signal" : "");
}

static void dying_add(mt_core *c, mt_task *t, mt_peer *p, pid_t pid)
{
    if (p->death_reason) {
        do_task_fail(c, t, death_error(t, pid, p));
        return;
    }
    mt_dying *d = mt_calloc(1, sizeof *d);
    d->task = t;
    d->peer = p;
    d->pid = pid;
    d->deadline = mt_now_s() + 1.0;
    d->next = c->dying;
    c->dying = d;
}

/* The node told us why `p` died (or time is up: p NULL, `now` given). */
void do_sub_death_reason(mt_core *c, mt_peer *p, double now)
{
    for (mt_dying **pp = &c->dying; *pp;) {
        mt_dying *d = *pp;
        if (d->peer != p && !(p == NULL && now >= d->deadline)) {
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        do_task_fail(c, d->task, death_error(d->task, d->pid, d->peer));
        free(d);
    }
}

/* A leased worker is gone: retry its tasks or fail them. */
static void lease_died(mt_core *c, mt_lease *l)
{
    l->dead = true;
    mt_task *t = l->tasks;
    l->tasks = NULL;
    l->in_flight = 0;
    while (t) {
        mt_task *next = t->lnext;
        t->lprev = t->lnext = NULL;
        t->lease = NULL;
        if (t->cancelled) {
            do_task_fail(c, t, mt_task_cancelled_error(t));
        } else if (t->retries_left != 0) {
            if (t->retries_left > 0) t->retries_left--;
            t->attempt++;
            enqueue(c, t, true);
        } else {
            dying_add(c, t, l->worker, l->pid);
        }
        t = next;
    }
}

void do_sub_peer_died(mt_core *c, mt_peer *p)
{
    size_t it = 0;
    mt_class *cls;
    while ((cls = mt_map_next(&c->classes, &it))) {
        for (mt_lease *l = cls->leases, *next; l; l = next) {
            next = l->next;
            if (l->worker != p) continue;
            lease_died(c, l);
            return_lease(c, l, true);
        }
        class_pump(c, cls);
    }
}

/* ---------------------------------------------------------------- cancel */

static bool unlink_queue(mt_task **head, mt_task **tail, mt_task *t)
{
    mt_task *prev = NULL;
    for (mt_task *x = *head; x; prev = x, x = x->qnext) {
        if (x != t) continue;
        if (prev) prev->qnext = x->qnext;
        else *head = x->qnext;
        if (*tail == x) *tail = prev;
        return true;
    }
    return false;
}

static void send_cancel(mt_core *c, mt_conn *conn, mt_task *t, bool force, bool recursive)
{
    MT_UNUSED(c);
    Manta__CancelTask m = MANTA__CANCEL_TASK__INIT;
    m.task_id = MT_BIN(t->id.b, MT_TASK_ID_LEN);
    m.force = force;
    m.recursive = recursive;
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_CANCEL_TASK, &m.base);
}

/* A worker that stalled on a long task hands back the tasks queued behind
 * it, which then run elsewhere (the one it runs stays; it ignores that
 * request).  Asked once per stall. */
static void hand_back(mt_lease *l)
{
    if (l->handing_back || l->in_flight < 2 || !l->worker->conn) return;
    l->handing_back = true;
    Manta__CancelTask m = MANTA__CANCEL_TASK__INIT;
    m.requeue = true;
    for (mt_task *t = l->tasks; t; t = t->lnext) {
        m.task_id = MT_BIN(t->id.b, MT_TASK_ID_LEN);
        mt_conn_send(l->worker->conn, MANTA__MSG_TYPE__MSG_CANCEL_TASK, &m.base);
    }
    mt_conn_flush(l->worker->conn);
}

/* Cancel one task of ours; lock held. */
static int cancel_task(mt_core *c, mt_task *t, bool force, bool recursive)
{
    if (t->actor && force)
        return mt_err(MANTA_EINVAL, "force=True is not supported for actor tasks");
    if (t->cancelled) return 0;
    t->cancelled = true;
    if (t->state == MT_TASK_WAITING || t->state == MT_TASK_QUEUED) {
        if (t->actor) {
            unlink_queue(&t->actor->qhead, &t->actor->qtail, t);
        } else if (t->state == MT_TASK_QUEUED && unlink_queue(&t->cls->qhead, &t->cls->qtail, t)) {
            t->cls->qlen--;
        }
        do_task_fail(c, t, mt_task_cancelled_error(t));
        return 0;
    }
    if (t->state != MT_TASK_RUNNING) return 0;
    mt_peer *w = t->actor ? t->actor->worker : t->lease ? t->lease->worker : NULL;
    mt_conn *conn = w ? w->conn : NULL;
    if (conn) send_cancel(c, conn, t, force, recursive);
    return 0;
}

int mt_core_cancel(mt_core *c, mt_obj *o, bool force, bool recursive)
{
    pthread_mutex_lock(&c->mu);
    if (force && o->actor_ret) {
        pthread_mutex_unlock(&c->mu);
        return mt_err(MANTA_EINVAL, "force=True is not supported for actor tasks");
    }
    mt_tid tid = mt_oid_task(&o->id);
    mt_task *t = o->owner ? NULL : mt_map_get(&c->tasks, tid.b);
    int rc = 0;
    if (!o->owner && t) rc = cancel_task(c, t, force, recursive);
    pthread_mutex_unlock(&c->mu);
    if (o->owner)
        return mt_err(MANTA_EINVAL, "only the process that submitted a task can cancel it");
    return rc;
}

/* Worker side, recursive cancel: the tasks this process submitted while it
 * ran task `parent`. */
void do_sub_cancel_children(mt_core *c, const mt_tid *parent)
{
    size_t n;
    void **items = mt_map_items(&c->tasks, &n);
    for (size_t i = 0; i < n; i++) {
        mt_task *t = items[i];
        if (MT_ID_EQ(t->parent, *parent) && mt_map_get(&c->tasks, t->id.b) == t)
            cancel_task(c, t, false, true);
    }
    free(items);
}

/* ---------------------------------------------------------------- idle leases */

static void return_idle(mt_core *c, double older_than)
{
    double now = mt_now_s();
    size_t it = 0;
    mt_class *cls;
    while ((cls = mt_map_next(&c->classes, &it))) {
        if (cls->qlen) continue;
        for (mt_lease *l = cls->leases, *next; l; l = next) {
            next = l->next;
            if (l->in_flight == 0 && now - l->idle_since >= older_than) return_lease(c, l, false);
        }
    }
}

void do_sub_tick(mt_core *c)
{
    /* Tasks waiting behind a worker that stalled (a long task) may now
     * need another worker. */
    double now = mt_now_s();
    size_t it = 0;
    mt_class *cls;
    while ((cls = mt_map_next(&c->classes, &it))) {
        for (mt_lease *l = cls->leases; l; l = l->next)
            if (!l->dead && lease_stalled(l, now)) hand_back(l);
        if (cls->qlen) class_pump(c, cls);
    }
    return_idle(c, (double)mt_cfg.idle_lease_ms / 1000.0);
    if (c->dying) do_sub_death_reason(c, NULL, mt_now_s());
}

void do_sub_reclaim(mt_core *c) { return_idle(c, 0); }

void do_sub_free_all(mt_core *c)
{
    for (mt_dying *d = c->dying, *next; d; d = next) {
        next = d->next;
        free(d);
    }
    c->dying = NULL;
    size_t n;
    void **items = mt_map_items(&c->classes, &n);
    for (size_t i = 0; i < n; i++) {
        mt_class *cls = items[i];
        for (mt_lease *l = cls->leases, *next; l; l = next) {
            next = l->next;
            if (l->daemon) mt_conn_unref(l->daemon);
            free(l->gpu_ids);
            free(l);
        }
        for (uint32_t j = 0; j < cls->nres; j++) free(cls->res_names[j]);
        free(cls->res_names);
        free(cls->res_amounts);
        free(cls->runtime);
        free(cls);
    }
    free(items);
    items = mt_map_items(&c->lease_reqs, &n);
    for (size_t i = 0; i < n; i++) lease_req_free(items[i]);
    free(items);
    items = mt_map_items(&c->rdaemons, &n);
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
    mt_map_free(&c->classes);
    mt_map_free(&c->lease_reqs);
    mt_map_free(&c->rdaemons);
}

void do_sub_rdaemon_closed(mt_core *c, mt_conn *conn)
{
    /* Requests that waited there go back to our node, which keeps them;
     * cancelled ones will get no answer now: they end here. */
    size_t n;
    void **items = mt_map_items(&c->lease_reqs, &n);
    for (size_t i = 0; i < n; i++) {
        lease_req *r = items[i];
        if (r->daemon != conn) continue;
        r->daemon = NULL;
        r->spills = 4;
        if (!r->cancelled) {
            send_request(c, r);
            continue;
        }
        mt_map_del(&c->lease_reqs, &r->id);
        mt_class *rc = r->actor ? NULL : r->cls;
        lease_req_free(r);
        if (rc) {
            rc->pending_requests--;
            class_pump(c, rc);
        }
    }
    free(items);
    size_t it = 0;
    mt_class *cls;
    while ((cls = mt_map_next(&c->classes, &it))) {
        for (mt_lease *l = cls->leases; l; l = l->next) {
            if (l->daemon != conn) continue;
            mt_conn_unref(conn);
            l->daemon = NULL;
            l->dead = true; /* its node is gone; its worker's connection will say so too */
        }
    }
}

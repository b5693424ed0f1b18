/* sched.c -- the node's local scheduler: a FIFO of lease requests, granted
 * when the demand fits the available resources and a worker of the right
 * runtime is idle; workers are started for requests that fit but have none.
 * Requests that can never fit this node stay queued with a warning. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mt.h"
#include "node.h"

typedef struct lease_req {
    mt_client *client;
    uint64_t request_id;
    mt_res_set demand;     /* held while leased */
    mt_res_set placement;  /* must fit to place (actors: at least 1 CPU) */
    int lang;
    char *runtime;
    char *name;
    bool for_actor;
    bool detached;
    bool warned;
    bool waiting_worker;
    int strategy;          /* MANTA__SCHED_STRATEGY__* */
    mt_nid node;           /* NODE_AFFINITY */
    bool has_node, soft;
    mt_nid preferred;      /* locality */
    bool has_preferred;
    uint32_t spills;
    bool spread_here;      /* SPREAD took its turn here: it stays */
    struct lease_req *next, *prev;
} lease_req;

struct mt_sched {
    lease_req *head, *tail;
    uint32_t count;
    bool warned_cap; /* said that blocked workers fill the node */
};

void mt_sched_init(mt_node *n) { n->sched = mt_calloc(1, sizeof *n->sched); }

static void req_free(lease_req *r)
{
    mt_res_free(&r->demand);
    mt_res_free(&r->placement);
    free(r->runtime);
    free(r->name);
    free(r);
}

static void req_unlink(mt_sched *s, lease_req *r)
{
    if (r->prev) r->prev->next = r->next;
    else s->head = r->next;
    if (r->next) r->next->prev = r->prev;
    else s->tail = r->prev;
    s->count--;
}

void mt_sched_free(mt_node *n)
{
    mt_sched *s = n->sched;
    if (!s) return;
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        req_free(r);
    }
    free(s);
    n->sched = NULL;
}

uint32_t mt_sched_pending(mt_node *n) { return n->sched->count; }

/* A resource list of a request into `out`; amounts of a name given twice
 * add up, within the same limit.  0 or MANTA_EINVAL with `why`. */
static int res_from_proto(mt_res_set *out, Manta__Resource **v, size_t nv, char *why, size_t cap)
{
    for (size_t i = 0; i < nv; i++) {
        int64_t sum;
        if (mt_res_check_frac(v[i]->name, v[i]->amount, why, cap)) return MANTA_EINVAL;
        if (__builtin_add_overflow(mt_res_get(out, v[i]->name), v[i]->amount, &sum) ||
            mt_res_check_frac(v[i]->name, sum, why, cap))
            return MANTA_EINVAL;
        mt_res_put(out, v[i]->name, sum);
    }
    return 0;
}

/* Everything the scheduler needs of a request, checked (the wire layer
 * checked the ids' lengths).  0, or MANTA_EINVAL with `why` (r may hold
 * part of the request). */
static int req_from_proto(lease_req *r, const Manta__LeaseRequest *m, char *why, size_t cap)
{
    const char *runtime = m->runtime ? m->runtime : "";
    if (res_from_proto(&r->demand, m->demand, m->n_demand, why, cap) ||
        res_from_proto(&r->placement, m->placement, m->n_placement, why, cap))
        return MANTA_EINVAL;
    if (m->language != MANTA__LANGUAGE__LANG_PYTHON && m->language != MANTA__LANGUAGE__LANG_C)
        return snprintf(why, cap, "unknown language %d", (int)m->language), MANTA_EINVAL;
    if (runtime[0] && strncmp(runtime, "exe:", 4) && strncmp(runtime, "lib:", 4))
        return snprintf(why, cap, "unknown runtime '%.64s'", runtime), MANTA_EINVAL;
    if (m->strategy != MANTA__SCHED_STRATEGY__SCHED_DEFAULT &&
        m->strategy != MANTA__SCHED_STRATEGY__SCHED_SPREAD &&
        m->strategy != MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY)
        return snprintf(why, cap, "unknown scheduling strategy %d", (int)m->strategy), MANTA_EINVAL;
    if (m->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY && m->node_id.len == 0)
        return snprintf(why, cap, "node affinity without a node"), MANTA_EINVAL;
    if (m->n_placement == 0) mt_res_copy(&r->placement, &r->demand);
    r->request_id = m->request_id;
    r->lang = m->language;
    r->runtime = mt_strdup(runtime);
    r->name = mt_strdup(m->name ? m->name : "");
    r->for_actor = m->for_actor;
    r->detached = m->detached;
    r->strategy = m->strategy;
    r->soft = m->soft;
    r->spills = m->spills;
    r->has_node = m->node_id.len == MT_NODE_ID_LEN;
    if (r->has_node) memcpy(r->node.b, m->node_id.data, MT_NODE_ID_LEN);
    r->has_preferred = m->preferred_node.len == MT_NODE_ID_LEN;
    if (r->has_preferred) memcpy(r->preferred.b, m->preferred_node.data, MT_NODE_ID_LEN);
    return 0;
}

static void send_grant(mt_client *c, uint64_t req, int status, mt_worker *w, const char *err);

int mt_sched_request(mt_node *n, mt_client *c, const Manta__LeaseRequest *m)
{
    if (c->role != MANTA__ROLE__ROLE_DRIVER && c->role != MANTA__ROLE__ROLE_WORKER &&
        c->role != MANTA__ROLE__ROLE_LESSEE)
        return mt_err(MANTA_EPROTO, "lease request from a non-client");
    lease_req *r = mt_calloc(1, sizeof *r);
    mt_res_init(&r->demand);
    mt_res_init(&r->placement);
    char why[400], msg[440];
    if (req_from_proto(r, m, why, sizeof why)) {
        /* This request fails; the client's other work goes on. */
        mt_warn("refusing a lease request of %s: %s", c->conn->desc, why);
        snprintf(msg, sizeof msg, "bad lease request: %s", why);
        send_grant(c, m->request_id, MANTA_EINVAL, NULL, msg);
        req_free(r);
        return 0;
    }
    r->client = c;
    mt_sched *s = n->sched;
    r->prev = s->tail;
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->count++;
    mt_sched_dispatch(n);
    return 0;
}

static void send_grant(mt_client *c, uint64_t req, int status, mt_worker *w, const char *err)
{
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    Manta__Address a = MANTA__ADDRESS__INIT;
    Manta__Resource *rs = NULL, **rp = NULL;
    g.request_id = req;
    g.status = status;
    g.error = (char *)(err ? err : "");
    if (w) {
        a.worker_id = MT_BIN(w->wid.b, MT_WORKER_ID_LEN);
        a.node_id = MT_BIN(w->client->node->node_id.b, MT_NODE_ID_LEN);
        a.endpoint = w->client->endpoint ? w->client->endpoint : "";
        g.worker = &a;
        g.worker_pid = (uint32_t)w->pid;
        rs = mt_calloc(w->held.n + 1, sizeof *rs);
        rp = mt_calloc(w->held.n + 1, sizeof *rp);
        for (uint32_t i = 0; i < w->held.n; i++) {
            manta__resource__init(&rs[i]);
            rs[i].name = w->held.v[i].name;
            rs[i].amount = w->held.v[i].amount;
            rp[i] = &rs[i];
        }
        g.assigned = rp;
        g.n_assigned = w->held.n;
        g.gpu_ids = w->gpu_ids;
        g.n_gpu_ids = w->ngpu;
    }
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
    free(rs);
    free(rp);
}

void mt_sched_cancel(mt_node *n, mt_client *c, uint64_t request_id)
{
    mt_sched *s = n->sched;
    for (lease_req *r = s->head; r; r = r->next) {
        if (r->client != c || r->request_id != request_id) continue;
        req_unlink(s, r);
        send_grant(c, request_id, MANTA_ECANCELLED, NULL, "cancelled");
        req_free(r);
        return;
    }
}

/* The part of a worker's lease that is lent back while it blocks. */
static int64_t cpu_of(const mt_worker *w) { return mt_res_get(&w->held, "CPU"); }

static void lend_cpu(mt_node *n, mt_worker *w, int sign)
{
    int64_t cpu = cpu_of(w);
    if (cpu) mt_res_put(&n->avail, "CPU", mt_res_get(&n->avail, "CPU") + sign * cpu);
}

static void release_lease(mt_node *n, mt_worker *w)
{
    if (w->blocked) lend_cpu(n, w, -1); /* take the lent CPU back first */
    w->blocked = false;
    mt_res_add(&n->avail, &w->held);
    if (w->ngpu) mt_gpu_release(n->gpus, w->gpu_amount, w->gpu_ids, w->ngpu);
    w->ngpu = 0;
    w->gpu_amount = 0;
    mt_res_free(&w->held);
    mt_res_init(&w->held);
    w->lessee = NULL;
    w->for_actor = false;
}

static int grant(mt_node *n, lease_req *r, mt_worker *w)
{
    int64_t gpu = mt_res_get(&r->demand, "GPU");
    size_t ngpu = 0;
    if (gpu > 0 && mt_gpu_acquire(n->gpus, gpu, w->gpu_ids, MT_ARRAY_LEN(w->gpu_ids), &ngpu))
        return MANTA_ENOMEM;
    w->ngpu = ngpu;
    w->gpu_amount = gpu;
    mt_res_copy(&w->held, &r->demand);
    mt_res_sub(&n->avail, &r->demand);
    w->state = MT_W_LEASED;
    w->leased_at = mt_now_s();
    w->lessee = r->client;
    w->for_actor = r->for_actor;
    w->detached = r->for_actor && r->detached;
    if (!w->job_id) {
        w->job_id = r->client->job_id;
        if (w->client) w->client->job_id = w->job_id;
    }
    mt_debug("granted worker pid %d to %s (%s)", (int)w->pid, r->client->conn->desc, r->name);
    send_grant(r->client, r->request_id, 0, w, NULL);
    return 0;
}

/* Tell the requester to ask node `to` instead. */
static void send_spill(mt_client *c, uint64_t req, const mt_rnode *to)
{
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    g.request_id = req;
    g.spill_node = MT_BIN(to->nid.b, MT_NODE_ID_LEN);
    g.spill_endpoint = to->endpoint;
    g.error = "";
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
}

static bool fits_node(const mt_rnode *x, const lease_req *r, bool now)
{
    const mt_res_set *have = now ? &x->avail : &x->total;
    return x->alive && x->endpoint[0] && mt_res_fits(have, &r->placement) &&
           mt_res_fits(have, &r->demand);
}

/* Another live node for r: one with room now, else (if `or_total`) one
 * whose totals fit.  Nodes are tried starting after the last pick, so
 * that work spreads. */
static mt_rnode *pick_node(mt_node *n, const lease_req *r, bool or_total)
{
    size_t count;
    void **items = mt_map_items(&n->rnodes, &count);
    mt_rnode *found = NULL;
    for (int pass = 0; pass < (or_total ? 2 : 1) && !found; pass++) {
        for (size_t k = 0; k < count && !found; k++) {
            mt_rnode *x = items[(n->spread_next + k) % count];
            if (fits_node(x, r, pass == 0)) found = x;
        }
    }
    if (found) n->spread_next++;
    free(items);
    return found;
}

/* Forward r to `to`, counting its demand against what we know of `to`
 * until its next report. */
static void spill_to(mt_node *n, lease_req *r, mt_rnode *to)
{
    mt_sched *s = n->sched;
    if (mt_res_fits(&to->avail, &r->demand)) mt_res_sub(&to->avail, &r->demand);
    send_spill(r->client, r->request_id, to);
    req_unlink(s, r);
    req_free(r);
}

/* Where a request that is not for here goes.  Returns true if it left
 * (spilled or failed), false to keep it in our queue. */
static bool route_elsewhere(mt_node *n, lease_req *r, bool fits_here_now, bool fits_here)
{
    mt_sched *s = n->sched;
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY &&
        !MT_ID_EQ(r->node, n->node_id)) {
        mt_rnode *to = mt_cluster_node(n, &r->node);
        if (to && to->alive && r->spills == 0) {
            spill_to(n, r, to);
            return true;
        }
        if (!r->soft) {
            char hex[2 * MT_NODE_ID_LEN + 1];
            char why[200];
            snprintf(why, sizeof why, "node %s, which the task must run on, is %s",
                     mt_hex(r->node.b, MT_NODE_ID_LEN, hex), to ? "dead" : "not in the cluster");
            send_grant(r->client, r->request_id, MANTA_EUNSCHEDULABLE, NULL, why);
            req_unlink(s, r);
            req_free(r);
            return true;
        }
        /* soft: wherever it fits */
    }
    if (r->spills > 0 && fits_here) return false; /* forwarded once: it waits here */
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY && fits_here) return false;
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_SPREAD && r->spills == 0 && n->rnodes.size) {
        /* Take turns over the nodes that fit (this one is turn 0), starting
         * with one that has room now.  The turn is taken once: a request
         * that waits here for a worker is not routed again on each pass. */
        if (r->spread_here) return false;
        size_t count;
        void **items = mt_map_items(&n->rnodes, &count);
        mt_rnode *pick = NULL;
        bool here = false;
        for (int pass = 0; pass < 2 && !pick && !here; pass++) {
            for (size_t k = 0; k <= count && !pick && !here; k++) {
                size_t turn = (n->spread_next + k) % (count + 1);
                bool now = pass == 0;
                if (turn == 0) here = now ? fits_here_now : fits_here;
                else if (fits_node(items[turn - 1], r, now)) pick = items[turn - 1];
                if (pick || here) n->spread_next = (uint32_t)(turn + 1);
            }
        }
        free(items);
        if (pick) {
            spill_to(n, r, pick);
            return true;
        }
        r->spread_here = here;
        return false;
    }
    if (r->has_preferred && r->spills == 0 && !MT_ID_EQ(r->preferred, n->node_id)) {
        /* Moving the task is cheaper than moving its arguments: go there even
         * if it is busy right now. */
        mt_rnode *to = mt_cluster_node(n, &r->preferred);
        if (to && fits_node(to, r, false)) {
            spill_to(n, r, to);
            return true;
        }
    }
    if (fits_here_now) return false;
    mt_rnode *to = pick_node(n, r, !fits_here);
    if (to) {
        spill_to(n, r, to);
        return true;
    }
    return false;
}

static void warn_infeasible(lease_req *r)
{
    if (r->warned) return;
    r->warned = true;
    char *want = mt_res_to_json(&r->placement);
    mt_node_warn_client(r->client,
                        "The resource request %s%s%s cannot be scheduled: no node in the cluster "
                        "has that many resources. It stays pending until a node that fits joins.",
                        want, r->name[0] ? " of " : "", r->name);
    free(want);
}

static int max_workers(mt_node *n)
{
    int cpus = (int)(mt_res_get(&n->total, "CPU") / MT_RES_UNIT);
    int m = cpus * (int)mt_cfg.max_workers_factor;
    return m < 16 ? 16 : m;
}

/* An idle worker's resident size: what each blocked worker costs. */
#define WORKER_RSS_BYTES (20LL << 20)

/* Workers blocked in get()/wait() do not count against max_workers(): each
 * lent its CPU back, and the work it waits for needs a worker to run (a
 * tree of tasks deeper than the cap would deadlock).  They are bounded by
 * memory instead, and by the max_blocked_workers tunable. */
static int max_blocked(mt_node *n)
{
    int64_t by_memory = mt_res_get(&n->total, "memory") / MT_RES_UNIT / WORKER_RSS_BYTES;
    int64_t cap = mt_cfg.max_blocked_workers >= 0 ? MT_MIN(mt_cfg.max_blocked_workers, by_memory)
                                                  : by_memory;
    return (int)MT_MIN(cap, INT32_MAX);
}

static int blocked_task_workers(mt_node *n)
{
    int k = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next)
        k += w->state == MT_W_LEASED && w->blocked && !w->for_actor;
    return k;
}

/* Whether another task worker may start; warns the requester once while
 * blocked workers hold the node at its cap (it waits until one resumes). */
static bool task_worker_room(mt_node *n, lease_req *r)
{
    int all = mt_pool_task_workers(n), blocked = blocked_task_workers(n);
    if (all - blocked >= max_workers(n)) return false;
    if (all < max_workers(n) + max_blocked(n)) {
        n->sched->warned_cap = false;
        return true;
    }
    if (!n->sched->warned_cap) {
        n->sched->warned_cap = true;
        mt_node_warn_client(r->client,
                            "%d of this node's %d task workers are blocked in get() or wait(), and "
                            "no more may start (%d, plus %d blocked ones by its memory and "
                            "max_blocked_workers): tasks that need a new worker wait until one of "
                            "them resumes. Deep trees of tasks that wait for their children cause "
                            "this.",
                            blocked, all, max_workers(n), max_blocked(n));
    }
    return false;
}

/* Workers starting at once: more only thrash a small machine (Ray's
 * maximum_startup_concurrency is the number of CPUs too). */
static int max_starting(mt_node *n)
{
    int cpus = (int)(mt_res_get(&n->total, "CPU") / MT_RES_UNIT);
    return mt_cfg.max_starting_workers > 0 ? (int)mt_cfg.max_starting_workers : MT_MAX(cpus, 2);
}

/* Start workers for requests that fit but found none idle. */
static void start_needed(mt_node *n)
{
    mt_sched *s = n->sched;
    int all_starting = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next) all_starting += w->state == MT_W_STARTING;
    for (lease_req *r = s->head; r; r = r->next) {
        if (!r->waiting_worker) continue;
        if (all_starting >= max_starting(n)) return;
        int waiting = 0;
        for (lease_req *q = s->head; q; q = q->next)
            if (q->waiting_worker && !strcmp(q->runtime, r->runtime)) waiting++;
        int starting = mt_pool_count(n, r->runtime, MT_W_STARTING);
        if (starting >= waiting) continue;
        /* The cap is for task workers; each actor has a process of its own. */
        if (!r->for_actor && !task_worker_room(n, r)) continue;
        if (mt_pool_start(n, r->runtime, r->lang)) all_starting++;
    }
}

/* Requests wait for a worker or for resources: ask the clients that hold
 * task leases to return the idle ones now rather than after idle_lease_ms
 * (a tree of tasks leaves many, each held by a parent that waits).  Once
 * per client until it returns a lease or the next tick. */
static void reclaim_idle(mt_node *n)
{
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        mt_client *c = w->lessee;
        if (w->state != MT_W_LEASED || w->for_actor || !c || c->reclaim_asked) continue;
        c->reclaim_asked = true;
        Manta__Event ev = MANTA__EVENT__INIT;
        ev.kind = MANTA__EVENT_KIND__EVENT_RECLAIM_LEASES;
        mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
    }
}

void mt_sched_tick(mt_node *n)
{
    for (mt_client *c = n->clients; c; c = c->next) c->reclaim_asked = false;
    if (n->sched->count) mt_sched_dispatch(n);
}

void mt_sched_dispatch(mt_node *n)
{
    mt_sched *s = n->sched;
    if (n->stopping) return;
    /* `room`: what is left once earlier requests are served, including those
     * still waiting for a worker to start -- so that each worker started
     * has a request that can use it. */
    mt_res_set room;
    mt_res_init(&room);
    mt_res_copy(&room, &n->avail);
    bool waiting = false;
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        r->waiting_worker = false;
        bool fits_here = mt_res_fits(&n->total, &r->placement) && mt_res_fits(&n->total, &r->demand);
        bool fits_now = fits_here && mt_res_fits(&room, &r->placement) &&
                        mt_res_fits(&room, &r->demand);
        bool pinned_here = r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY &&
                           MT_ID_EQ(r->node, n->node_id) && !r->soft;
        if (!pinned_here && n->rnodes.size && route_elsewhere(n, r, fits_now, fits_here)) continue;
        if (!fits_here) {
            warn_infeasible(r);
            continue;
        }
        if (!fits_now) {
            waiting = true;
            continue;
        }
        if (!r->runtime[0] && !n->python) {
            /* Python tasks on a node a C program started: no interpreter. */
            send_grant(r->client, r->request_id, MANTA_EINVAL, NULL,
                       "this node cannot start Python workers (it was not started from Python)");
            req_unlink(s, r);
            req_free(r);
            continue;
        }
        mt_res_sub(&room, &r->demand);
        mt_worker *w = mt_pool_take_idle(n, r->runtime, r->client->job_id);
        if (!w) {
            r->waiting_worker = true;
            waiting = true;
            continue;
        }
        if (grant(n, r, w)) {
            w->state = MT_W_IDLE;
            continue;
        }
        req_unlink(s, r);
        req_free(r);
    }
    mt_res_free(&room);
    start_needed(n);
    if (waiting) reclaim_idle(n);
}

void mt_sched_return(mt_node *n, mt_client *c, const mt_wid *wid, bool failed)
{
    mt_worker *w = mt_map_get(&n->workers, wid->b);
    if (!w || w->state != MT_W_LEASED || w->lessee != c) {
        mt_debug("ignoring return of a worker not leased by %s", c->conn->desc);
        return;
    }
    release_lease(n, w);
    c->reclaim_asked = false;
    if (failed) {
        mt_pool_kill(n, w, SIGKILL);
    } else {
        w->state = MT_W_IDLE;
        w->idle_since = mt_now_s();
    }
    mt_sched_dispatch(n);
}

void mt_sched_blocked(mt_node *n, mt_worker *w, bool blocked)
{
    if (w->state != MT_W_LEASED || w->blocked == blocked) return;
    w->blocked = blocked;
    lend_cpu(n, w, blocked ? 1 : -1);
    if (blocked) mt_sched_dispatch(n);
}

void mt_sched_client_gone(mt_node *n, mt_client *c)
{
    mt_sched *s = n->sched;
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        if (r->client != c) continue;
        req_unlink(s, r);
        req_free(r);
    }
    /* Workers leased by a process that is gone run work nobody will read:
     * stop them (Ray does the same for a dead owner's leases). */
    for (mt_worker *w = n->worker_list; w; w = w->next) {
        if (w->state != MT_W_LEASED || w->lessee != c) continue;
        if (w->detached) {
            w->lessee = NULL; /* a detached actor outlives its creator, resources and all */
            continue;
        }
        release_lease(n, w);
        mt_pool_kill(n, w, SIGKILL);
    }
}

void mt_sched_worker_gone(mt_node *n, mt_worker *w)
{
    /* Leases this worker held as a submitter end with its connection
     * (mt_sched_client_gone); here only its own lease. */
    if (w->state == MT_W_LEASED) release_lease(n, w);
}

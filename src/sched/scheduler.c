/* scheduler.c -- the node's local scheduler (scheduler.h): a FIFO of lease requests,
 * granted when the demand fits the available resources and a worker of the
 * right runtime is idle; workers are started for requests that fit but have
 * none.  Requests that can never fit this node stay queued with a warning. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mt.h"
#include "scheduler.h"

typedef struct lease_req {
    mt_sched_client *client;
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
    mt_sched_env env;
    mt_res_set total, avail;
    mt_res_gpu_pool *gpus;
    lease_req *head, *tail;
    uint32_t count;
    mt_sched_lease *leases; /* granted, newest first */
    uint32_t spread_next;   /* SPREAD and spills: where the last request went */
    bool stopping;
    bool warned_cap; /* said that blocked workers fill the node */
};

mt_sched *mt_sched_new(const mt_sched_env *env, const mt_res_set *total)
{
    mt_sched *s = mt_calloc(1, sizeof *s);
    s->env = *env;
    mt_res_init(&s->total);
    mt_res_init(&s->avail);
    mt_res_copy(&s->total, total);
    mt_res_copy(&s->avail, total);
    s->gpus = mt_res_gpu_pool_new((int)(mt_res_get(total, "GPU") / MT_RES_UNIT));
    return s;
}

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

void mt_sched_destroy(mt_sched *s)
{
    if (!s) return;
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        req_free(r);
    }
    mt_res_free(&s->total);
    mt_res_free(&s->avail);
    mt_res_gpu_pool_free(s->gpus);
    free(s);
}

const mt_res_set *mt_sched_total(const mt_sched *s) { return &s->total; }
const mt_res_set *mt_sched_avail(const mt_sched *s) { return &s->avail; }
uint32_t mt_sched_pending(const mt_sched *s) { return s->count; }
void mt_sched_stop(mt_sched *s) { s->stopping = true; }

/* env->warn with a formatted message. */
static void warn_client(mt_sched *s, mt_sched_client *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void warn_client(mt_sched *s, mt_sched_client *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->env.warn(s->env.ud, c, msg);
}

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

int mt_sched_request(mt_sched *s, mt_sched_client *c, const Manta__LeaseRequest *m)
{
    lease_req *r = mt_calloc(1, sizeof *r);
    mt_res_init(&r->demand);
    mt_res_init(&r->placement);
    char why[400], msg[440];
    if (req_from_proto(r, m, why, sizeof why)) {
        /* This request fails; the client's other work goes on. */
        snprintf(msg, sizeof msg, "bad lease request: %s", why);
        s->env.refuse(s->env.ud, c, m->request_id, MANTA_EINVAL, msg);
        req_free(r);
        return mt_err(MANTA_EINVAL, "%s", why);
    }
    r->client = c;
    r->prev = s->tail;
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->count++;
    mt_sched_dispatch(s);
    return 0;
}

void mt_sched_cancel(mt_sched *s, mt_sched_client *c, uint64_t request_id)
{
    for (lease_req *r = s->head; r; r = r->next) {
        if (r->client != c || r->request_id != request_id) continue;
        req_unlink(s, r);
        s->env.refuse(s->env.ud, c, request_id, MANTA_ECANCELLED, "cancelled");
        req_free(r);
        return;
    }
}

/* Answer r without a worker and drop it. */
static void refuse(mt_sched *s, lease_req *r, int status, const char *why)
{
    s->env.refuse(s->env.ud, r->client, r->request_id, status, why);
    req_unlink(s, r);
    req_free(r);
}

/* ---------------------------------------------------------------- leases */

/* The part of a worker's lease that is lent back while it blocks. */
static void lend_cpu(mt_sched *s, const mt_sched_lease *l, int sign)
{
    int64_t cpu = mt_res_get(&l->held, "CPU");
    if (cpu) mt_res_put(&s->avail, "CPU", mt_res_get(&s->avail, "CPU") + sign * cpu);
}

/* End l's lease: its resources are free again. */
static void release_lease(mt_sched *s, mt_sched_lease *l)
{
    if (l->blocked) lend_cpu(s, l, -1); /* take the lent CPU back first */
    mt_res_add(&s->avail, &l->held);
    if (l->ngpu) mt_res_gpu_release(s->gpus, l->gpu_amount, l->gpu_ids, l->ngpu);
    mt_res_free(&l->held);
    if (l->prev) l->prev->next = l->next;
    else s->leases = l->next;
    if (l->next) l->next->prev = l->prev;
    /* A client that gives a lease back may be asked for idle ones again. */
    if (l->lessee) l->lessee->reclaim_asked = false;
    l->lessee = NULL;
    l->ngpu = 0;
    l->gpu_amount = 0;
    l->leased = l->blocked = l->for_actor = l->detached = false;
}

static int grant(mt_sched *s, lease_req *r, mt_sched_lease *l)
{
    int64_t gpu = mt_res_get(&r->demand, "GPU");
    size_t ngpu = 0;
    if (gpu > 0 && mt_res_gpu_acquire(s->gpus, gpu, l->gpu_ids, MT_ARRAY_LEN(l->gpu_ids), &ngpu))
        return MANTA_ENOMEM;
    l->ngpu = ngpu;
    l->gpu_amount = gpu;
    mt_res_copy(&l->held, &r->demand);
    mt_res_sub(&s->avail, &r->demand);
    l->leased = true;
    l->blocked = false;
    l->lessee = r->client;
    l->for_actor = r->for_actor;
    l->detached = r->for_actor && r->detached;
    l->prev = NULL;
    l->next = s->leases;
    if (s->leases) s->leases->prev = l;
    s->leases = l;
    s->env.granted(s->env.ud, l, r->client, r->request_id, r->name);
    return 0;
}

/* ---------------------------------------------------------------- other nodes */

static bool fits_node(const mt_sched_peer *x, const lease_req *r, bool now)
{
    const mt_res_set *have = now ? x->avail : x->total;
    return x->alive && x->endpoint[0] && mt_res_fits(have, &r->placement) &&
           mt_res_fits(have, &r->demand);
}

/* Another live node for r: one with room now, else (if `or_total`) one
 * whose totals fit.  Nodes are tried starting after the last pick, so
 * that work spreads.  Returns whether it found one (into *out). */
static bool pick_node(mt_sched *s, const lease_req *r, bool or_total, mt_sched_peer *out)
{
    size_t count;
    mt_sched_peer *v = s->env.peers(s->env.ud, &count);
    const mt_sched_peer *found = NULL;
    for (int pass = 0; pass < (or_total ? 2 : 1) && !found; pass++) {
        for (size_t k = 0; k < count && !found; k++) {
            const mt_sched_peer *x = &v[(s->spread_next + k) % count];
            if (fits_node(x, r, pass == 0)) found = x;
        }
    }
    if (found) {
        s->spread_next++;
        *out = *found;
    }
    free(v);
    return found != NULL;
}

/* Forward r to `to`, counting its demand against what we know of `to`
 * until its next report. */
static void spill_to(mt_sched *s, lease_req *r, const mt_sched_peer *to)
{
    if (mt_res_fits(to->avail, &r->demand)) mt_res_sub(to->avail, &r->demand);
    s->env.spill(s->env.ud, r->client, r->request_id, to);
    req_unlink(s, r);
    req_free(r);
}

/* SPREAD: take turns over the nodes that fit (this one is turn 0),
 * starting with one that has room now.  The turn is taken once: a request
 * that waits here for a worker is not routed again on each pass.  Returns
 * true if r left. */
static bool spread(mt_sched *s, lease_req *r, bool fits_here_now, bool fits_here)
{
    if (r->spread_here) return false;
    size_t count;
    mt_sched_peer *v = s->env.peers(s->env.ud, &count);
    const mt_sched_peer *pick = NULL;
    bool here = false;
    for (int pass = 0; pass < 2 && !pick && !here; pass++) {
        for (size_t k = 0; k <= count && !pick && !here; k++) {
            size_t turn = (s->spread_next + k) % (count + 1);
            bool now = pass == 0;
            if (turn == 0) here = now ? fits_here_now : fits_here;
            else if (fits_node(&v[turn - 1], r, now)) pick = &v[turn - 1];
            if (pick || here) s->spread_next = (uint32_t)(turn + 1);
        }
    }
    if (pick) spill_to(s, r, pick);
    else r->spread_here = here;
    free(v);
    return pick != NULL;
}

/* Where a request that is not for here goes.  Returns true if it left
 * (spilled or failed), false to keep it in our queue. */
static bool route_elsewhere(mt_sched *s, lease_req *r, bool fits_here_now, bool fits_here)
{
    mt_sched_peer to;
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY &&
        !MT_ID_EQ(r->node, s->env.self)) {
        bool known = s->env.peer(s->env.ud, &r->node, &to);
        if (known && to.alive && r->spills == 0) {
            spill_to(s, r, &to);
            return true;
        }
        if (!r->soft) {
            char hex[2 * MT_NODE_ID_LEN + 1];
            char why[200];
            snprintf(why, sizeof why, "node %s, which the task must run on, is %s",
                     mt_hex(r->node.b, MT_NODE_ID_LEN, hex), known ? "dead" : "not in the cluster");
            refuse(s, r, MANTA_EUNSCHEDULABLE, why);
            return true;
        }
        /* soft: wherever it fits */
    }
    if (r->spills > 0 && fits_here) return false; /* forwarded once: it waits here */
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY && fits_here) return false;
    if (r->strategy == MANTA__SCHED_STRATEGY__SCHED_SPREAD && r->spills == 0)
        return spread(s, r, fits_here_now, fits_here);
    if (r->has_preferred && r->spills == 0 && !MT_ID_EQ(r->preferred, s->env.self)) {
        /* Moving the task is cheaper than moving its arguments: go there even
         * if it is busy right now. */
        if (s->env.peer(s->env.ud, &r->preferred, &to) && fits_node(&to, r, false)) {
            spill_to(s, r, &to);
            return true;
        }
    }
    if (fits_here_now) return false;
    if (pick_node(s, r, !fits_here, &to)) {
        spill_to(s, r, &to);
        return true;
    }
    return false;
}

static void warn_infeasible(mt_sched *s, lease_req *r)
{
    if (r->warned) return;
    r->warned = true;
    char *want = mt_res_to_json(&r->placement);
    warn_client(s, r->client,
                "The resource request %s%s%s cannot be scheduled: no node in the cluster "
                "has that many resources. It stays pending until a node that fits joins.",
                want, r->name[0] ? " of " : "", r->name);
    free(want);
}

/* ---------------------------------------------------------------- workers */

static int max_workers(mt_sched *s)
{
    int cpus = (int)(mt_res_get(&s->total, "CPU") / MT_RES_UNIT);
    int m = cpus * (int)mt_cfg.max_workers_factor;
    return m < 16 ? 16 : m;
}

/* An idle worker's resident size: what each blocked worker costs. */
#define WORKER_RSS_BYTES (20LL << 20)

/* Workers blocked in get()/wait() do not count against max_workers(): each
 * lent its CPU back, and the work it waits for needs a worker to run (a
 * tree of tasks deeper than the cap would deadlock).  They are bounded by
 * memory instead, and by the max_blocked_workers tunable. */
static int max_blocked(mt_sched *s)
{
    int64_t by_memory = mt_res_get(&s->total, "memory") / MT_RES_UNIT / WORKER_RSS_BYTES;
    int64_t cap = mt_cfg.max_blocked_workers >= 0 ? MT_MIN(mt_cfg.max_blocked_workers, by_memory)
                                                  : by_memory;
    return (int)MT_MIN(cap, INT32_MAX);
}

static int blocked_task_workers(mt_sched *s)
{
    int k = 0;
    for (mt_sched_lease *l = s->leases; l; l = l->next) k += l->blocked && !l->for_actor;
    return k;
}

/* Whether another task worker may start; warns the requester once while
 * blocked workers hold the node at its cap (it waits until one resumes). */
static bool task_worker_room(mt_sched *s, lease_req *r)
{
    int all = s->env.task_workers(s->env.ud), blocked = blocked_task_workers(s);
    if (all - blocked >= max_workers(s)) return false;
    if (all < max_workers(s) + max_blocked(s)) {
        s->warned_cap = false;
        return true;
    }
    if (!s->warned_cap) {
        s->warned_cap = true;
        warn_client(s, r->client,
                    "%d of this node's %d task workers are blocked in get() or wait(), and "
                    "no more may start (%d, plus %d blocked ones by its memory and "
                    "max_blocked_workers): tasks that need a new worker wait until one of "
                    "them resumes. Deep trees of tasks that wait for their children cause "
                    "this.",
                    blocked, all, max_workers(s), max_blocked(s));
    }
    return false;
}

/* Workers starting at once: more only thrash a small machine (Ray's
 * maximum_startup_concurrency is the number of CPUs too). */
static int max_starting(mt_sched *s)
{
    int cpus = (int)(mt_res_get(&s->total, "CPU") / MT_RES_UNIT);
    return mt_cfg.max_starting_workers > 0 ? (int)mt_cfg.max_starting_workers : MT_MAX(cpus, 2);
}

/* Start workers for requests that fit but found none idle. */
static void start_needed(mt_sched *s)
{
    int all_starting = s->env.starting(s->env.ud, NULL);
    for (lease_req *r = s->head; r; r = r->next) {
        if (!r->waiting_worker) continue;
        if (all_starting >= max_starting(s)) return;
        int waiting = 0;
        for (lease_req *q = s->head; q; q = q->next)
            if (q->waiting_worker && !strcmp(q->runtime, r->runtime)) waiting++;
        if (s->env.starting(s->env.ud, r->runtime) >= waiting) continue;
        /* The cap is for task workers; each actor has a process of its own. */
        if (!r->for_actor && !task_worker_room(s, r)) continue;
        if (s->env.start_worker(s->env.ud, r->runtime, r->lang)) all_starting++;
    }
}

/* Requests wait for a worker or for resources: ask the clients that hold
 * task leases to return the idle ones now rather than after idle_lease_ms
 * (a tree of tasks leaves many, each held by a parent that waits).  Once
 * per client until it returns a lease or the next tick. */
static void reclaim_idle(mt_sched *s)
{
    for (mt_sched_lease *l = s->leases; l; l = l->next) {
        mt_sched_client *c = l->lessee;
        if (l->for_actor || !c || c->reclaim_asked) continue;
        c->reclaim_asked = true;
        s->env.reclaim(s->env.ud, c);
    }
}

/* ---------------------------------------------------------------- dispatch */

void mt_sched_tick(mt_sched *s)
{
    /* Only lessees are ever asked (reclaim_idle), and a lease's end clears
     * its lessee's flag: so these are all the flags that may be set. */
    for (mt_sched_lease *l = s->leases; l; l = l->next)
        if (l->lessee) l->lessee->reclaim_asked = false;
    if (s->count) mt_sched_dispatch(s);
}

void mt_sched_dispatch(mt_sched *s)
{
    if (s->stopping) return;
    /* `room`: what is left once earlier requests are served, including those
     * still waiting for a worker to start -- so that each worker started
     * has a request that can use it. */
    mt_res_set room;
    mt_res_init(&room);
    mt_res_copy(&room, &s->avail);
    bool waiting = false;
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        r->waiting_worker = false;
        bool fits_here =
            mt_res_fits(&s->total, &r->placement) && mt_res_fits(&s->total, &r->demand);
        bool fits_now = fits_here && mt_res_fits(&room, &r->placement) &&
                        mt_res_fits(&room, &r->demand);
        bool pinned_here = r->strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY &&
                           MT_ID_EQ(r->node, s->env.self) && !r->soft;
        if (!pinned_here && s->env.npeers(s->env.ud) &&
            route_elsewhere(s, r, fits_now, fits_here))
            continue;
        if (!fits_here) {
            warn_infeasible(s, r);
            continue;
        }
        if (!fits_now) {
            waiting = true;
            continue;
        }
        if (!r->runtime[0] && !s->env.python) {
            /* Python tasks on a node a C program started: no interpreter. */
            refuse(s, r, MANTA_EINVAL,
                   "this node cannot start Python workers (it was not started from Python)");
            continue;
        }
        mt_res_sub(&room, &r->demand);
        mt_sched_lease *l = s->env.take_idle(s->env.ud, r->runtime, r->client);
        if (!l) {
            r->waiting_worker = true;
            waiting = true;
            continue;
        }
        if (grant(s, r, l)) continue;
        req_unlink(s, r);
        req_free(r);
    }
    mt_res_free(&room);
    start_needed(s);
    if (waiting) reclaim_idle(s);
}

/* ---------------------------------------------------------------- lease ends */

int mt_sched_return(mt_sched *s, mt_sched_client *c, mt_sched_lease *l, bool failed)
{
    if (!l || !l->leased || l->lessee != c) return MANTA_ENOENT;
    release_lease(s, l);
    s->env.released(s->env.ud, l, failed);
    mt_sched_dispatch(s);
    return 0;
}

void mt_sched_blocked(mt_sched *s, mt_sched_lease *l, bool blocked)
{
    if (!l->leased || l->blocked == blocked) return;
    l->blocked = blocked;
    lend_cpu(s, l, blocked ? 1 : -1);
    if (blocked) mt_sched_dispatch(s);
}

void mt_sched_client_gone(mt_sched *s, mt_sched_client *c)
{
    for (lease_req *r = s->head, *next; r; r = next) {
        next = r->next;
        if (r->client != c) continue;
        req_unlink(s, r);
        req_free(r);
    }
    /* Workers leased by a process that is gone run work nobody will read:
     * stop them (Ray does the same for a dead owner's leases). */
    for (mt_sched_lease *l = s->leases, *next; l; l = next) {
        next = l->next;
        if (l->lessee != c) continue;
        if (l->detached) {
            l->lessee = NULL; /* a detached actor outlives its creator, resources and all */
            continue;
        }
        release_lease(s, l);
        s->env.released(s->env.ud, l, true);
    }
}

void mt_sched_worker_gone(mt_sched *s, mt_sched_lease *l)
{
    /* Leases this worker held as a submitter end with its connection
     * (mt_sched_client_gone); here only its own lease. */
    if (l->leased) release_lease(s, l);
}

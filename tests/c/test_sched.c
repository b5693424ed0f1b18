/* test_sched.c -- unit tests of src/sched/scheduler.c without a node: a fake
 * environment plays the worker pool, the clients and the cluster view, and
 * records every answer the scheduler gives (grants, refusals, spills,
 * warnings, reclaims, workers started and killed). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "mt.h"
#include "sched/scheduler.h"

#define U MT_RES_UNIT

/* ---------------------------------------------------------------- the fake node */

enum { W_STARTING, W_IDLE, W_LEASED, W_DEAD };

typedef struct fworker {
    mt_sched_lease lease; /* first: the scheduler's handle is the worker */
    char runtime[32];
    int state;
    uint32_t job;
} fworker;

typedef struct fclient {
    mt_sched_client sc; /* first, likewise */
    uint32_t job;
} fclient;

typedef struct fpeer {
    mt_nid nid;
    char endpoint[32];
    bool alive;
    mt_res_set total, avail;
} fpeer;

enum { EV_GRANT, EV_REFUSE, EV_SPILL, EV_WARN, EV_RECLAIM, EV_KILL, EV_IDLE, EV_START };

typedef struct event {
    int kind;
    fclient *client;
    uint64_t request_id;
    int status;
    fworker *worker;
    mt_nid to;
    char text[1100];
} event;

#define MAX_W 64
#define MAX_EV 256

static struct {
    fworker w[MAX_W];
    int nw;
    fpeer p[4];
    int np;
    event ev[MAX_EV];
    int nev;
} F;

static mt_sched *S;
static fclient A = {.job = 1}, A2 = {.job = 1}, B = {.job = 2};

static event *record(int kind, fclient *c, uint64_t req)
{
    ck_assert_int_lt(F.nev, MAX_EV);
    event *e = &F.ev[F.nev++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->client = c;
    e->request_id = req;
    return e;
}

static mt_sched_lease *take_idle(void *ud, const char *runtime, mt_sched_client *sc)
{
    fclient *c = (fclient *)sc;
    fworker *unbound = NULL;
    for (int i = 0; i < F.nw; i++) {
        fworker *w = &F.w[i];
        if (w->state != W_IDLE || strcmp(w->runtime, runtime)) continue;
        if (w->job == c->job) return &w->lease;
        if (!w->job && !unbound) unbound = w;
    }
    return unbound ? &unbound->lease : NULL;
}

static fworker *add_worker(const char *runtime, int state)
{
    ck_assert_int_lt(F.nw, MAX_W);
    fworker *w = &F.w[F.nw++];
    memset(w, 0, sizeof *w);
    snprintf(w->runtime, sizeof w->runtime, "%s", runtime);
    w->state = state;
    return w;
}

static bool start_worker(void *ud, const char *runtime, int lang)
{
    record(EV_START, NULL, 0)->worker = add_worker(runtime, W_STARTING);
    return true;
}

static int starting(void *ud, const char *runtime)
{
    int k = 0;
    for (int i = 0; i < F.nw; i++)
        k += F.w[i].state == W_STARTING && (!runtime || !strcmp(F.w[i].runtime, runtime));
    return k;
}

static int task_workers(void *ud)
{
    int k = 0;
    for (int i = 0; i < F.nw; i++)
        k += F.w[i].state != W_DEAD && !(F.w[i].state == W_LEASED && F.w[i].lease.for_actor);
    return k;
}

static void granted(void *ud, mt_sched_lease *l, mt_sched_client *sc, uint64_t req,
                    const char *name)
{
    fworker *w = (fworker *)l;
    ck_assert_int_eq(w->state, W_IDLE);
    ck_assert(l->leased);
    ck_assert_ptr_eq(l->lessee, sc);
    w->state = W_LEASED;
    if (!w->job) w->job = ((fclient *)sc)->job;
    record(EV_GRANT, (fclient *)sc, req)->worker = w;
}

static void released(void *ud, mt_sched_lease *l, bool kill)
{
    fworker *w = (fworker *)l;
    ck_assert(!l->leased);
    w->state = kill ? W_DEAD : W_IDLE;
    record(kill ? EV_KILL : EV_IDLE, NULL, 0)->worker = w;
}

static void refuse(void *ud, mt_sched_client *sc, uint64_t req, int status, const char *why)
{
    event *e = record(EV_REFUSE, (fclient *)sc, req);
    e->status = status;
    snprintf(e->text, sizeof e->text, "%s", why);
}

static void spill(void *ud, mt_sched_client *sc, uint64_t req, const mt_sched_peer *to)
{
    event *e = record(EV_SPILL, (fclient *)sc, req);
    e->to = to->nid;
    ck_assert_str_ne(to->endpoint, "");
}

static void warn(void *ud, mt_sched_client *sc, const char *msg)
{
    snprintf(record(EV_WARN, (fclient *)sc, 0)->text, sizeof F.ev[0].text, "%s", msg);
}

static void reclaim(void *ud, mt_sched_client *sc) { record(EV_RECLAIM, (fclient *)sc, 0); }

static size_t npeers(void *ud) { return (size_t)F.np; }

static void peer_of(fpeer *p, mt_sched_peer *out)
{
    out->nid = p->nid;
    out->endpoint = p->endpoint;
    out->alive = p->alive;
    out->total = &p->total;
    out->avail = &p->avail;
}

static mt_sched_peer *peers(void *ud, size_t *count)
{
    *count = (size_t)F.np;
    if (!F.np) return NULL;
    mt_sched_peer *v = mt_calloc((size_t)F.np, sizeof *v);
    for (int i = 0; i < F.np; i++) peer_of(&F.p[i], &v[i]);
    return v;
}

static bool peer(void *ud, const mt_nid *nid, mt_sched_peer *out)
{
    for (int i = 0; i < F.np; i++) {
        if (!MT_ID_EQ(F.p[i].nid, *nid)) continue;
        peer_of(&F.p[i], out);
        return true;
    }
    return false;
}

static mt_nid nid_of(uint8_t k)
{
    mt_nid n;
    memset(n.b, k, sizeof n.b);
    return n;
}

#define SELF 0x11

/* A node with `cpus` CPUs (and `mem_mb` MB of memory, 0: none); Python
 * workers can start on it if `python`. */
static void node_py(int cpus, int64_t mem_mb, bool python)
{
    memset(&F, 0, sizeof F);
    A.sc.reclaim_asked = A2.sc.reclaim_asked = B.sc.reclaim_asked = false;
    mt_res_set total;
    mt_res_init(&total);
    mt_res_put(&total, "CPU", cpus * U);
    if (mem_mb) mt_res_put(&total, "memory", mem_mb * (1LL << 20) * U);
    mt_sched_env env = {
        .self = nid_of(SELF), .python = python,
        .take_idle = take_idle, .start_worker = start_worker, .starting = starting,
        .task_workers = task_workers, .granted = granted, .released = released,
        .refuse = refuse, .spill = spill, .warn = warn, .reclaim = reclaim,
        .npeers = npeers, .peers = peers, .peer = peer,
    };
    S = mt_sched_new(&env, &total);
    mt_res_free(&total);
}

static void node(int cpus, int64_t mem_mb) { node_py(cpus, mem_mb, true); }

/* Another node: `k` names it; CPUs in total and free now. */
static fpeer *add_peer(uint8_t k, int total_cpus, int avail_cpus, bool alive)
{
    fpeer *p = &F.p[F.np++];
    p->nid = nid_of(k);
    snprintf(p->endpoint, sizeof p->endpoint, "tcp:127.0.0.%d:1", k);
    p->alive = alive;
    mt_res_init(&p->total);
    mt_res_init(&p->avail);
    mt_res_put(&p->total, "CPU", total_cpus * U);
    mt_res_put(&p->avail, "CPU", avail_cpus * U);
    return p;
}

static void teardown(void)
{
    mt_sched_destroy(S);
    S = NULL;
    for (int i = 0; i < F.nw; i++) mt_res_free(&F.w[i].lease.held);
    for (int i = 0; i < F.np; i++) {
        mt_res_free(&F.p[i].total);
        mt_res_free(&F.p[i].avail);
    }
}

/* A request: `cpu` CPUs (in hundredths), Python, default strategy. */
typedef struct req {
    Manta__LeaseRequest m;
    Manta__Resource res[2], *resp[2], pl, *plp;
    uint8_t node[MT_NODE_ID_LEN], pref[MT_NODE_ID_LEN];
} req;

static req *mkreq(uint64_t id, int cpu_hundredths)
{
    static req pool[64];
    static int next;
    req *r = &pool[next++ % 64];
    memset(r, 0, sizeof *r);
    manta__lease_request__init(&r->m);
    r->m.request_id = id;
    r->m.language = MANTA__LANGUAGE__LANG_PYTHON;
    r->m.runtime = "";
    r->m.name = "f";
    if (cpu_hundredths) {
        manta__resource__init(&r->res[0]);
        r->res[0].name = "CPU";
        r->res[0].amount = cpu_hundredths * (U / 100);
        r->resp[0] = &r->res[0];
        r->m.demand = r->resp;
        r->m.n_demand = 1;
    }
    return r;
}

static void affinity(req *r, uint8_t k, bool soft)
{
    memset(r->node, k, sizeof r->node);
    r->m.strategy = MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY;
    r->m.node_id.data = r->node;
    r->m.node_id.len = MT_NODE_ID_LEN;
    r->m.soft = soft;
}

static int ask(fclient *c, req *r) { return mt_sched_request(S, &c->sc, &r->m); }

static int count(int kind)
{
    int k = 0;
    for (int i = 0; i < F.nev; i++) k += F.ev[i].kind == kind;
    return k;
}

static event *last(int kind)
{
    for (int i = F.nev - 1; i >= 0; i--)
        if (F.ev[i].kind == kind) return &F.ev[i];
    return NULL;
}

/* The answer of `kind` to request `req_id`, or NULL. */
static event *answer(int kind, uint64_t req_id)
{
    for (int i = 0; i < F.nev; i++)
        if (F.ev[i].kind == kind && F.ev[i].request_id == req_id) return &F.ev[i];
    return NULL;
}

#define grant_of(id) answer(EV_GRANT, (id))
#define spill_of(id) answer(EV_SPILL, (id))

static int64_t avail_cpu(void) { return mt_res_get(mt_sched_avail(S), "CPU"); }

/* ---------------------------------------------------------------- here */

START_TEST(test_fit_here)
{
    node(2, 0);
    fworker *w = add_worker("", W_IDLE);
    ck_assert_int_eq(ask(&A, mkreq(1, 100)), 0);
    event *g = grant_of(1);
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_eq(g->worker, w);
    ck_assert_ptr_eq(g->client, &A);
    ck_assert_int_eq(mt_res_get(&w->lease.held, "CPU"), U);
    ck_assert_int_eq(avail_cpu(), U);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    ck_assert_int_eq(w->job, 1);
    /* Back: the CPU is free again and the worker idle. */
    ck_assert_int_eq(mt_sched_return(S, &A.sc, &w->lease, false), 0);
    ck_assert_int_eq(avail_cpu(), 2 * U);
    ck_assert_int_eq(w->state, W_IDLE);
    ck_assert(!w->lease.leased);
    /* Not B's to return, nor returned twice. */
    ck_assert_int_eq(mt_sched_return(S, &B.sc, &w->lease, false), MANTA_ENOENT);
    ck_assert_int_eq(mt_sched_return(S, &A.sc, NULL, false), MANTA_ENOENT);
    teardown();
}
END_TEST

START_TEST(test_queue_when_full)
{
    node(1, 0);
    fworker *w1 = add_worker("", W_IDLE);
    add_worker("", W_IDLE);
    ask(&A, mkreq(1, 100));
    ask(&A, mkreq(2, 100));
    ck_assert_ptr_nonnull(grant_of(1));
    ck_assert_ptr_null(grant_of(2));
    ck_assert_int_eq(mt_sched_pending(S), 1);
    ck_assert_int_eq(count(EV_START), 0); /* a worker would not help: no CPU */
    ck_assert_int_eq(count(EV_WARN), 0);  /* it fits the node, just not now */
    mt_sched_return(S, &A.sc, &w1->lease, false);
    ck_assert_ptr_nonnull(grant_of(2));
    ck_assert_int_eq(mt_sched_pending(S), 0);
    teardown();
}
END_TEST

START_TEST(test_start_worker_when_none_idle)
{
    node(4, 0);
    ask(&A, mkreq(1, 100));
    ask(&A, mkreq(2, 100));
    ck_assert_int_eq(count(EV_START), 2); /* one per waiting request */
    mt_sched_dispatch(S);
    ck_assert_int_eq(count(EV_START), 2); /* not again while they start */
    F.w[0].state = W_IDLE;                /* registered */
    mt_sched_dispatch(S);
    ck_assert_ptr_eq(grant_of(1)->worker, &F.w[0]);
    ck_assert_int_eq(mt_sched_pending(S), 1);
    teardown();
}
END_TEST

START_TEST(test_worker_of_other_job_not_taken)
{
    node(4, 0);
    fworker *w = add_worker("", W_IDLE);
    w->job = 2;
    ask(&A, mkreq(1, 100));
    ck_assert_ptr_null(grant_of(1));
    ck_assert_int_eq(count(EV_START), 1);
    ask(&B, mkreq(2, 100));
    ck_assert_ptr_eq(grant_of(2)->worker, w);
    teardown();
}
END_TEST

START_TEST(test_bad_requests_refused)
{
    node(1, 0);
    req *r = mkreq(1, 100);
    r->m.strategy = 7;
    ck_assert_int_eq(mt_sched_request(S, &A.sc, &r->m), MANTA_EINVAL);
    ck_assert_str_eq(manta_last_error(), "unknown scheduling strategy 7");
    event *e = last(EV_REFUSE);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->status, MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(e->text, "unknown scheduling strategy 7"));
    r = mkreq(2, 100);
    r->m.runtime = "jar:/x";
    ask(&A, r);
    ck_assert_ptr_nonnull(strstr(last(EV_REFUSE)->text, "unknown runtime 'jar:/x'"));
    r = mkreq(3, 100);
    r->res[0].amount = -1;
    ask(&A, r);
    ck_assert_int_eq(last(EV_REFUSE)->request_id, 3);
    ck_assert_int_eq(count(EV_REFUSE), 3);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    teardown();
}
END_TEST

START_TEST(test_no_python_here)
{
    node_py(1, 0, false);
    ask(&A, mkreq(1, 100));
    ck_assert_int_eq(last(EV_REFUSE)->status, MANTA_EINVAL);
    ck_assert_ptr_nonnull(strstr(last(EV_REFUSE)->text, "cannot start Python workers"));
    req *c = mkreq(2, 100);
    c->m.language = MANTA__LANGUAGE__LANG_C;
    c->m.runtime = "lib:/x.so";
    ask(&A, c);
    ck_assert_int_eq(count(EV_REFUSE), 1);
    ck_assert_int_eq(count(EV_START), 1);
    teardown();
}
END_TEST

START_TEST(test_cancel)
{
    node(1, 0);
    ask(&A, mkreq(1, 200)); /* never fits here: queued */
    ck_assert_int_eq(mt_sched_pending(S), 1);
    mt_sched_cancel(S, &B.sc, 1); /* not B's */
    ck_assert_int_eq(mt_sched_pending(S), 1);
    mt_sched_cancel(S, &A.sc, 1);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    ck_assert_int_eq(last(EV_REFUSE)->status, MANTA_ECANCELLED);
    ck_assert_int_eq(last(EV_REFUSE)->request_id, 1);
    mt_sched_cancel(S, &A.sc, 1); /* answered already: nothing more */
    ck_assert_int_eq(count(EV_REFUSE), 1);
    teardown();
}
END_TEST

START_TEST(test_spill_then_cancel)
{
    /* The request was spilled; the cancel that crossed it finds nothing,
     * and the spill is the only answer. */
    node(1, 0);
    add_peer(0x22, 4, 4, true);
    ask(&A, mkreq(1, 200));
    ck_assert_ptr_nonnull(spill_of(1));
    mt_sched_cancel(S, &A.sc, 1);
    ck_assert_int_eq(count(EV_REFUSE), 0);
    ck_assert_int_eq(F.nev, 1);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    teardown();
}
END_TEST

START_TEST(test_client_gone)
{
    node(4, 0);
    fworker *w1 = add_worker("", W_IDLE), *w2 = add_worker("", W_IDLE);
    ask(&A, mkreq(1, 100));
    req *actor = mkreq(2, 100);
    actor->m.for_actor = true;
    actor->m.detached = true;
    ask(&A, actor);
    ask(&A, mkreq(3, 500)); /* infeasible: queued */
    ck_assert_int_eq(mt_sched_pending(S), 1);
    ck_assert(w2->lease.detached);
    mt_sched_client_gone(S, &A.sc);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    ck_assert_int_eq(w1->state, W_DEAD); /* its work has no reader */
    ck_assert(!w1->lease.leased);
    ck_assert_int_eq(w2->state, W_LEASED); /* a detached actor outlives it */
    ck_assert(w2->lease.leased);
    ck_assert_ptr_null(w2->lease.lessee);
    ck_assert_int_eq(avail_cpu(), 3 * U);
    /* Its worker's death frees the rest. */
    mt_sched_worker_gone(S, &w2->lease);
    ck_assert_int_eq(avail_cpu(), 4 * U);
    teardown();
}
END_TEST

/* ---------------------------------------------------------------- actors */

START_TEST(test_actor_placement_vs_demand)
{
    /* An actor places on 1 CPU and holds none while it lives (Ray's
     * default): placement must fit, only the demand is held. */
    node(1, 0);
    fworker *w1 = add_worker("", W_IDLE);
    add_worker("", W_IDLE);
    req *r = mkreq(1, 0);
    Manta__Resource pl = MANTA__RESOURCE__INIT, *plp = &pl;
    pl.name = "CPU";
    pl.amount = U;
    r->m.placement = &plp;
    r->m.n_placement = 1;
    r->m.for_actor = true;
    ask(&A, r);
    ck_assert_ptr_eq(grant_of(1)->worker, w1);
    ck_assert(w1->lease.for_actor);
    ck_assert_int_eq(avail_cpu(), U); /* nothing held */
    ck_assert_int_eq(w1->lease.held.n, 0);
    /* A task takes the CPU; the next actor cannot place now and waits. */
    ask(&A, mkreq(2, 100));
    ck_assert_ptr_nonnull(grant_of(2));
    req *r3 = mkreq(3, 0);
    r3->m.placement = &plp;
    r3->m.n_placement = 1;
    r3->m.for_actor = true;
    ask(&A, r3);
    ck_assert_ptr_null(grant_of(3));
    ck_assert_int_eq(count(EV_WARN), 0);
    /* Placement beyond the node's totals: infeasible. */
    Manta__Resource big = MANTA__RESOURCE__INIT, *bigp = &big;
    big.name = "CPU";
    big.amount = 2 * U;
    req *r4 = mkreq(4, 0);
    r4->m.placement = &bigp;
    r4->m.n_placement = 1;
    r4->m.for_actor = true;
    ask(&A, r4);
    ck_assert_int_eq(count(EV_WARN), 1);
    teardown();
}
END_TEST

/* ---------------------------------------------------------------- other nodes */

START_TEST(test_spill_to_node_with_room)
{
    node(1, 0);
    fworker *w = add_worker("", W_IDLE);
    add_peer(0x22, 4, 0, true);  /* full now */
    fpeer *dead = add_peer(0x33, 4, 4, false);
    fpeer *noaddr = add_peer(0x44, 4, 4, true);
    noaddr->endpoint[0] = '\0';  /* not reachable yet */
    fpeer *room = add_peer(0x55, 4, 2, true);
    ask(&A, mkreq(1, 100));
    ck_assert_ptr_eq(grant_of(1)->worker, w); /* fits here now: stays */
    ask(&A, mkreq(2, 100));
    event *s = spill_of(2);
    ck_assert_ptr_nonnull(s);
    ck_assert(MT_ID_EQ(s->to, room->nid));
    ck_assert_ptr_eq(s->client, &A);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    /* Counted against that node until it reports again. */
    ck_assert_int_eq(mt_res_get(&room->avail, "CPU"), U);
    ck_assert_int_eq(mt_res_get(&dead->avail, "CPU"), 4 * U);
    /* Once forwarded, a request waits where it landed. */
    req *r = mkreq(3, 100);
    r->m.spills = 1;
    ask(&A, r);
    ck_assert_ptr_null(spill_of(3));
    ck_assert_int_eq(mt_sched_pending(S), 1);
    teardown();
}
END_TEST

START_TEST(test_spills_take_turns)
{
    /* Spills start after the last pick, so that work spreads over the
     * nodes with room instead of piling on the first one. */
    node(1, 0);
    add_peer(0x22, 4, 4, true);
    add_peer(0x33, 4, 4, true);
    for (uint64_t id = 1; id <= 4; id++) ask(&A, mkreq(id, 200));
    ck_assert(MT_ID_EQ(spill_of(1)->to, nid_of(0x22)));
    ck_assert(MT_ID_EQ(spill_of(2)->to, nid_of(0x33)));
    ck_assert(MT_ID_EQ(spill_of(3)->to, nid_of(0x22)));
    ck_assert(MT_ID_EQ(spill_of(4)->to, nid_of(0x33)));
    teardown();
}
END_TEST

START_TEST(test_no_room_anywhere_waits_here)
{
    node(1, 0);
    add_worker("", W_IDLE);
    add_peer(0x22, 4, 0, true);
    ask(&A, mkreq(1, 100));
    ask(&A, mkreq(2, 100));
    ck_assert_int_eq(count(EV_SPILL), 0);
    ck_assert_int_eq(mt_sched_pending(S), 1);
    /* The other node reports room: the next pass sends it there. */
    mt_res_put(&F.p[0].avail, "CPU", 2 * U);
    mt_sched_dispatch(S);
    ck_assert_ptr_nonnull(spill_of(2));
    teardown();
}
END_TEST

START_TEST(test_infeasible_spills_to_totals)
{
    node(2, 0);
    add_peer(0x22, 4, 2, true);     /* too small */
    fpeer *big = add_peer(0x33, 8, 0, true); /* busy, but big enough */
    ask(&A, mkreq(1, 600));
    event *s = spill_of(1);
    ck_assert_ptr_nonnull(s);
    ck_assert(MT_ID_EQ(s->to, big->nid));
    ck_assert_int_eq(count(EV_WARN), 0);
    teardown();
}
END_TEST

START_TEST(test_infeasible_waits_and_warns_once)
{
    node(2, 0);
    add_peer(0x22, 4, 4, true);
    ask(&A, mkreq(1, 600));
    ck_assert_int_eq(count(EV_SPILL), 0);
    ck_assert_int_eq(mt_sched_pending(S), 1);
    ck_assert_int_eq(count(EV_WARN), 1);
    event *w = last(EV_WARN);
    ck_assert_ptr_eq(w->client, &A);
    ck_assert_ptr_nonnull(strstr(w->text, "cannot be scheduled"));
    ck_assert_ptr_nonnull(strstr(w->text, "\"CPU\": 6"));
    ck_assert_ptr_nonnull(strstr(w->text, " of f"));
    mt_sched_dispatch(S);
    mt_sched_tick(S);
    ck_assert_int_eq(count(EV_WARN), 1);
    ck_assert_int_eq(count(EV_START), 0);
    /* A node that fits joins: it goes there. */
    fpeer *big = add_peer(0x33, 8, 8, true);
    mt_sched_dispatch(S);
    ck_assert(MT_ID_EQ(spill_of(1)->to, big->nid));
    ck_assert_int_eq(mt_sched_pending(S), 0);
    teardown();
}
END_TEST

START_TEST(test_spread_takes_turns)
{
    node(4, 0);
    for (int i = 0; i < 4; i++) add_worker("", W_IDLE);
    add_peer(0x22, 4, 4, true);
    add_peer(0x33, 4, 4, true);
    add_peer(0x44, 1, 0, true); /* no room now: skipped while others have room */
    /* Turns: this node, then each node that fits, one turn per request. */
    const uint8_t expect[6] = {SELF, 0x22, 0x33, SELF, 0x22, 0x33};
    for (uint64_t id = 1; id <= 6; id++) {
        req *r = mkreq(id, 50);
        r->m.strategy = MANTA__SCHED_STRATEGY__SCHED_SPREAD;
        ask(&A, r);
        event *s = spill_of(id);
        if (expect[id - 1] == SELF) {
            ck_assert_msg(grant_of(id) != NULL, "request %d not granted here", (int)id);
        } else {
            ck_assert_msg(s && MT_ID_EQ(s->to, nid_of(expect[id - 1])),
                          "request %d not spilled to node %x", (int)id, expect[id - 1]);
        }
    }
    ck_assert_int_eq(count(EV_GRANT) + count(EV_SPILL), 6);
    ck_assert_int_eq(mt_sched_pending(S), 0);
    teardown();
}
END_TEST

START_TEST(test_spread_turn_taken_once)
{
    /* A SPREAD request whose turn is here waits for a worker here: later
     * passes do not send it elsewhere. */
    node(4, 0);
    add_peer(0x22, 4, 4, true);
    req *r = mkreq(1, 100);
    r->m.strategy = MANTA__SCHED_STRATEGY__SCHED_SPREAD;
    ask(&A, r);
    ck_assert_int_eq(count(EV_SPILL), 0);
    ck_assert_int_eq(count(EV_START), 1);
    for (int i = 0; i < 3; i++) mt_sched_dispatch(S);
    ck_assert_int_eq(count(EV_SPILL), 0);
    F.w[0].state = W_IDLE;
    mt_sched_dispatch(S);
    ck_assert_ptr_nonnull(grant_of(1));
    teardown();
}
END_TEST

START_TEST(test_affinity_hard)
{
    node(1, 0);
    add_worker("", W_IDLE);
    fpeer *p = add_peer(0x22, 4, 0, true);
    add_peer(0x33, 4, 4, false);
    /* To a live node, busy or not. */
    req *r = mkreq(1, 100);
    affinity(r, 0x22, false);
    ask(&A, r);
    ck_assert(MT_ID_EQ(spill_of(1)->to, p->nid));
    /* To a dead node: unschedulable. */
    r = mkreq(2, 100);
    affinity(r, 0x33, false);
    ask(&A, r);
    event *e = last(EV_REFUSE);
    ck_assert_int_eq(e->request_id, 2);
    ck_assert_int_eq(e->status, MANTA_EUNSCHEDULABLE);
    ck_assert_ptr_nonnull(strstr(e->text, "is dead"));
    /* To a node never seen. */
    r = mkreq(3, 100);
    affinity(r, 0x99, false);
    ask(&A, r);
    ck_assert_ptr_nonnull(strstr(last(EV_REFUSE)->text, "not in the cluster"));
    /* To this node: here, waiting if need be, never elsewhere. */
    ask(&A, mkreq(4, 100));
    ck_assert_ptr_nonnull(grant_of(4));
    r = mkreq(5, 100);
    affinity(r, SELF, false);
    mt_res_put(&F.p[0].avail, "CPU", 4 * U);
    ask(&A, r);
    ck_assert_ptr_null(spill_of(5));
    ck_assert_int_eq(mt_sched_pending(S), 1);
    ck_assert_int_eq(count(EV_REFUSE), 2);
    teardown();
}
END_TEST

START_TEST(test_affinity_soft)
{
    node(1, 0);
    fworker *w = add_worker("", W_IDLE);
    add_peer(0x33, 4, 4, false);
    add_peer(0x22, 4, 4, true);
    /* Its node is dead: wherever it fits, here first. */
    req *r = mkreq(1, 100);
    affinity(r, 0x33, true);
    ask(&A, r);
    ck_assert_ptr_eq(grant_of(1)->worker, w);
    /* Here is full now, but it fits here: it waits here. */
    r = mkreq(2, 100);
    affinity(r, 0x33, true);
    ask(&A, r);
    ck_assert_ptr_null(spill_of(2));
    ck_assert_int_eq(mt_sched_pending(S), 1);
    /* Too big for here: a node that fits. */
    r = mkreq(3, 300);
    affinity(r, 0x33, true);
    ask(&A, r);
    ck_assert(MT_ID_EQ(spill_of(3)->to, nid_of(0x22)));
    ck_assert_int_eq(count(EV_REFUSE), 0);
    teardown();
}
END_TEST

START_TEST(test_preferred_node)
{
    /* Its arguments live on another node: it goes there even though it
     * fits here now, and even if that node is busy. */
    node(4, 0);
    add_worker("", W_IDLE);
    add_peer(0x22, 4, 0, true);
    req *r = mkreq(1, 100);
    memset(r->pref, 0x22, sizeof r->pref);
    r->m.preferred_node.data = r->pref;
    r->m.preferred_node.len = MT_NODE_ID_LEN;
    ask(&A, r);
    ck_assert(MT_ID_EQ(spill_of(1)->to, nid_of(0x22)));
    /* Preferring this node: here. */
    r = mkreq(2, 100);
    memset(r->pref, SELF, sizeof r->pref);
    r->m.preferred_node.data = r->pref;
    r->m.preferred_node.len = MT_NODE_ID_LEN;
    ask(&A, r);
    ck_assert_ptr_nonnull(grant_of(2));
    teardown();
}
END_TEST

/* ---------------------------------------------------------------- blocked workers */

START_TEST(test_blocked_lends_cpu)
{
    node(1, 0);
    fworker *w1 = add_worker("", W_IDLE), *w2 = add_worker("", W_IDLE);
    ask(&A, mkreq(1, 100));
    ask(&A, mkreq(2, 100));
    ck_assert_ptr_null(grant_of(2));
    mt_sched_blocked(S, &w1->lease, true); /* in get(): its CPU is lent */
    ck_assert_ptr_eq(grant_of(2)->worker, w2);
    ck_assert_int_eq(avail_cpu(), 0);
    mt_sched_blocked(S, &w1->lease, true); /* said twice: lent once */
    ck_assert_int_eq(avail_cpu(), 0);
    mt_sched_blocked(S, &w1->lease, false); /* resumes: takes it back, even below 0 */
    ck_assert_int_eq(avail_cpu(), -U);
    mt_sched_return(S, &A.sc, &w2->lease, false);
    ck_assert_int_eq(avail_cpu(), 0);
    /* Ending a lease while blocked takes the lent CPU back first. */
    mt_sched_blocked(S, &w1->lease, true);
    ck_assert_int_eq(avail_cpu(), U);
    mt_sched_return(S, &A.sc, &w1->lease, false);
    ck_assert_int_eq(avail_cpu(), U);
    /* Not leased: nothing to lend. */
    mt_sched_blocked(S, &w1->lease, true);
    ck_assert_int_eq(avail_cpu(), U);
    teardown();
}
END_TEST

/* `k` leases of no resources, on workers made for them. */
static void lease_many(int k, uint64_t first_id)
{
    for (int i = 0; i < k; i++) {
        add_worker("", W_IDLE);
        ask(&A, mkreq(first_id + (uint64_t)i, 0));
        ck_assert_ptr_nonnull(grant_of(first_id + (uint64_t)i));
    }
}

START_TEST(test_worker_cap_counts_unblocked)
{
    /* 1 CPU: at most 16 task workers (max(16, 1 * 4)). */
    node(1, 1024);
    lease_many(16, 1);
    ask(&A, mkreq(100, 0));
    ck_assert_int_eq(count(EV_START), 0); /* at the cap */
    ck_assert_int_eq(count(EV_WARN), 0);
    /* Blocked workers do not count: one blocks, one may start. */
    mt_sched_blocked(S, &F.w[0].lease, true);
    ck_assert_int_eq(count(EV_START), 1);
    teardown();
}
END_TEST

START_TEST(test_blocked_worker_cap)
{
    /* Memory for 2 blocked workers (20 MB each) beyond the cap of 16. */
    node(1, 40);
    lease_many(18, 1);
    for (int i = 0; i < 18; i++) mt_sched_blocked(S, &F.w[i].lease, true);
    ask(&A, mkreq(100, 0));
    ck_assert_int_eq(count(EV_START), 0);
    ck_assert_int_eq(count(EV_WARN), 1);
    ck_assert_ptr_nonnull(strstr(last(EV_WARN)->text, "18 of this node's 18 task workers"));
    mt_sched_dispatch(S);
    ck_assert_int_eq(count(EV_WARN), 1); /* once */
    /* One of them goes: room for one more. */
    F.w[0].state = W_DEAD;
    mt_sched_worker_gone(S, &F.w[0].lease);
    mt_sched_dispatch(S);
    ck_assert_int_eq(count(EV_START), 1);
    teardown();
}
END_TEST

START_TEST(test_blocked_cap_tunable)
{
    int64_t saved = mt_cfg.max_blocked_workers;
    mt_cfg.max_blocked_workers = 1; /* below what memory allows */
    node(1, 1024);
    lease_many(17, 1);
    for (int i = 0; i < 17; i++) mt_sched_blocked(S, &F.w[i].lease, true);
    ask(&A, mkreq(100, 0));
    ck_assert_int_eq(count(EV_START), 0);
    ck_assert_int_eq(count(EV_WARN), 1);
    mt_cfg.max_blocked_workers = saved;
    teardown();
}
END_TEST

START_TEST(test_actor_workers_not_capped)
{
    node(1, 40);
    lease_many(18, 1);
    for (int i = 0; i < 18; i++) mt_sched_blocked(S, &F.w[i].lease, true);
    req *r = mkreq(100, 0);
    r->m.for_actor = true;
    ask(&A, r);
    ck_assert_int_eq(count(EV_START), 1); /* each actor has a process of its own */
    teardown();
}
END_TEST

/* ---------------------------------------------------------------- reclaim */

START_TEST(test_reclaim_idle_leases)
{
    node(1, 0);
    fworker *w = add_worker("", W_IDLE);
    ask(&A2, mkreq(1, 100)); /* A2 holds the only CPU */
    ask(&A, mkreq(2, 100));  /* A waits: A2 is asked once */
    ck_assert_int_eq(count(EV_RECLAIM), 1);
    ck_assert_ptr_eq(last(EV_RECLAIM)->client, &A2);
    mt_sched_dispatch(S);
    ck_assert_int_eq(count(EV_RECLAIM), 1);
    mt_sched_tick(S); /* a new tick: asked again */
    ck_assert_int_eq(count(EV_RECLAIM), 2);
    mt_sched_return(S, &A2.sc, &w->lease, false);
    ck_assert_ptr_eq(grant_of(2)->worker, w);
    /* An actor's lease is not idle work to reclaim; A's task lease is. */
    req *r = mkreq(3, 0);
    r->m.for_actor = true;
    add_worker("", W_IDLE);
    ask(&A2, r);
    ck_assert_ptr_nonnull(grant_of(3));
    ask(&A2, mkreq(4, 100));
    ck_assert_int_eq(count(EV_RECLAIM), 3);
    ck_assert_ptr_eq(last(EV_RECLAIM)->client, &A);
    teardown();
}
END_TEST

START_TEST(test_stop)
{
    node(1, 0);
    add_worker("", W_IDLE);
    mt_sched_stop(S);
    ask(&A, mkreq(1, 100));
    ck_assert_int_eq(F.nev, 0);
    ck_assert_int_eq(mt_sched_pending(S), 1);
    teardown();
}
END_TEST

/* ---------------------------------------------------------------- main */

static Suite *suite(void)
{
    Suite *s = suite_create("sched");
    TCase *t = tcase_create("here");
    tcase_add_test(t, test_fit_here);
    tcase_add_test(t, test_queue_when_full);
    tcase_add_test(t, test_start_worker_when_none_idle);
    tcase_add_test(t, test_worker_of_other_job_not_taken);
    tcase_add_test(t, test_bad_requests_refused);
    tcase_add_test(t, test_no_python_here);
    tcase_add_test(t, test_cancel);
    tcase_add_test(t, test_client_gone);
    tcase_add_test(t, test_actor_placement_vs_demand);
    tcase_add_test(t, test_stop);
    suite_add_tcase(s, t);
    t = tcase_create("cluster");
    tcase_add_test(t, test_spill_to_node_with_room);
    tcase_add_test(t, test_spills_take_turns);
    tcase_add_test(t, test_no_room_anywhere_waits_here);
    tcase_add_test(t, test_spill_then_cancel);
    tcase_add_test(t, test_infeasible_spills_to_totals);
    tcase_add_test(t, test_infeasible_waits_and_warns_once);
    tcase_add_test(t, test_spread_takes_turns);
    tcase_add_test(t, test_spread_turn_taken_once);
    tcase_add_test(t, test_affinity_hard);
    tcase_add_test(t, test_affinity_soft);
    tcase_add_test(t, test_preferred_node);
    suite_add_tcase(s, t);
    t = tcase_create("workers");
    tcase_add_test(t, test_blocked_lends_cpu);
    tcase_add_test(t, test_worker_cap_counts_unblocked);
    tcase_add_test(t, test_blocked_worker_cap);
    tcase_add_test(t, test_blocked_cap_tunable);
    tcase_add_test(t, test_actor_workers_not_capped);
    tcase_add_test(t, test_reclaim_idle_leases);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    mt_config_load();
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* lease.c -- the node's side of its scheduler (src/sched/scheduler.h): the
 * mt_sched_env callbacks that find and start workers in the pool, turn the
 * scheduler's answers into LeaseGrant frames, and show it the cluster view. */
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>

#include "mt.h"
#include "node.h"

static mt_worker *worker_of(mt_sched_lease *l)
{
    return (mt_worker *)((char *)l - offsetof(mt_worker, lease));
}

static mt_client *client_of(mt_sched_client *sc)
{
    return (mt_client *)((char *)sc - offsetof(mt_client, sc));
}

static mt_sched_lease *take_idle(void *ud, const char *runtime, mt_sched_client *sc)
{
    mt_worker *w = mt_pool_take_idle(ud, runtime, client_of(sc)->job_id);
    return w ? &w->lease : NULL;
}

static bool start_worker(void *ud, const char *runtime, int lang)
{
    return mt_pool_start(ud, runtime, lang) != NULL;
}

static int starting(void *ud, const char *runtime)
{
    mt_node *n = ud;
    if (runtime) return mt_pool_count(n, runtime, MT_W_STARTING);
    int k = 0;
    for (mt_worker *w = n->worker_list; w; w = w->next) k += w->state == MT_W_STARTING;
    return k;
}

static int task_workers(void *ud) { return mt_pool_task_workers(ud); }

/* A LeaseGrant to `c`: an error (w NULL, status != 0) or worker w. */
static void send_grant(mt_client *c, uint64_t req, int status, mt_worker *w, const char *err)
{
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    Manta__Address a = MANTA__ADDRESS__INIT;
    Manta__Resource *rs = NULL, **rp = NULL;
    g.request_id = req;
    g.status = status;
    g.error = (char *)(err ? err : "");
    if (w) {
        const mt_sched_lease *l = &w->lease;
        a.worker_id = MT_BIN(w->wid.b, MT_WORKER_ID_LEN);
        a.node_id = MT_BIN(w->client->node->node_id.b, MT_NODE_ID_LEN);
        a.endpoint = w->client->endpoint ? w->client->endpoint : "";
        g.worker = &a;
        g.worker_pid = (uint32_t)w->pid;
        rs = mt_calloc(l->held.n + 1, sizeof *rs);
        rp = mt_calloc(l->held.n + 1, sizeof *rp);
        for (uint32_t i = 0; i < l->held.n; i++) {
            manta__resource__init(&rs[i]);
            rs[i].name = l->held.v[i].name;
            rs[i].amount = l->held.v[i].amount;
            rp[i] = &rs[i];
        }
        g.assigned = rp;
        g.n_assigned = l->held.n;
        g.gpu_ids = (int32_t *)l->gpu_ids;
        g.n_gpu_ids = l->ngpu;
    }
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
    free(rs);
    free(rp);
}

static void granted(void *ud, mt_sched_lease *l, mt_sched_client *sc, uint64_t request_id,
                    const char *name)
{
    MT_UNUSED(ud);
    mt_worker *w = worker_of(l);
    mt_client *c = client_of(sc);
    w->state = MT_W_LEASED;
    w->leased_at = mt_now_s();
    if (!w->job_id) {
        w->job_id = c->job_id;
        if (w->client) w->client->job_id = w->job_id;
    }
    mt_debug("granted worker pid %d to %s (%s)", (int)w->pid, c->conn->desc, name);
    send_grant(c, request_id, 0, w, NULL);
}

static void released(void *ud, mt_sched_lease *l, bool kill)
{
    mt_worker *w = worker_of(l);
    if (kill) {
        mt_pool_kill(ud, w, SIGKILL);
    } else {
        w->state = MT_W_IDLE;
        w->idle_since = mt_now_s();
    }
}

static void refuse(void *ud, mt_sched_client *sc, uint64_t request_id, int status, const char *why)
{
    MT_UNUSED(ud);
    send_grant(client_of(sc), request_id, status, NULL, why);
}

static void spill(void *ud, mt_sched_client *sc, uint64_t request_id, const mt_sched_peer *to)
{
    MT_UNUSED(ud);
    Manta__LeaseGrant g = MANTA__LEASE_GRANT__INIT;
    g.request_id = request_id;
    g.spill_node = MT_BIN(to->nid.b, MT_NODE_ID_LEN);
    g.spill_endpoint = (char *)to->endpoint;
    g.error = "";
    mt_conn_send_now(client_of(sc)->conn, MANTA__MSG_TYPE__MSG_LEASE_GRANT, &g.base);
}

static void warn(void *ud, mt_sched_client *sc, const char *msg)
{
    MT_UNUSED(ud);
    mt_node_warn_client(client_of(sc), "%s", msg);
}

static void reclaim(void *ud, mt_sched_client *sc)
{
    MT_UNUSED(ud);
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_RECLAIM_LEASES;
    mt_conn_send_now(client_of(sc)->conn, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
}

static void peer_of(mt_rnode *r, mt_sched_peer *out)
{
    out->nid = r->nid;
    out->endpoint = r->endpoint;
    out->alive = r->alive;
    out->total = &r->total;
    out->avail = &r->avail;
}

static size_t npeers(void *ud) { return ((mt_node *)ud)->rnodes.size; }

static mt_sched_peer *peers(void *ud, size_t *count)
{
    mt_node *n = ud;
    void **items = mt_map_items(&n->rnodes, count);
    mt_sched_peer *v = *count ? mt_calloc(*count, sizeof *v) : NULL;
    for (size_t i = 0; i < *count; i++) peer_of(items[i], &v[i]);
    free(items);
    return v;
}

static bool peer(void *ud, const mt_nid *nid, mt_sched_peer *out)
{
    mt_rnode *r = mt_cluster_node(ud, nid);
    if (r) peer_of(r, out);
    return r != NULL;
}

mt_sched *mt_lease_sched_new(mt_node *n, const mt_res_set *total)
{
    mt_sched_env env = {
        .ud = n,
        .self = n->node_id,
        .python = n->python != NULL,
        .take_idle = take_idle,
        .start_worker = start_worker,
        .starting = starting,
        .task_workers = task_workers,
        .granted = granted,
        .released = released,
        .refuse = refuse,
        .spill = spill,
        .warn = warn,
        .reclaim = reclaim,
        .npeers = npeers,
        .peers = peers,
        .peer = peer,
    };
    return mt_sched_new(&env, total);
}

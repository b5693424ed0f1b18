/* cluster.c -- the nodes of a cluster.
 *
 * The head keeps the node table.  A node joins with Hello (role NODE and
 * the cluster token), then reports its resources every report_ms: that
 * report is its heartbeat.  It is declared dead when its connection closes
 * or when it stays silent for node_timeout_ms; a dead node never comes back
 * (its connection is closed, and a node that loses the head stops).  At
 * most once per tick the head sends every node the view of all nodes
 * (ClusterView), from which each node's scheduler picks where to forward
 * work; and the head relays deaths and job ends between nodes (Event). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mt.h"
#include "node.h"
#include "sock.h"
#include "wire.h"

static mt_arena arena;

void mt_cluster_init(mt_node *n)
{
    mt_map_init(&n->rnodes, offsetof(mt_rnode, nid), sizeof(mt_nid));
    mt_arena_init(&arena);
}

static void rnode_free(mt_rnode *r)
{
    free(r->endpoint);
    free(r->session_dir);
    mt_res_free(&r->total);
    mt_res_free(&r->avail);
    free(r);
}

void mt_cluster_free(mt_node *n)
{
    size_t count;
    void **items = mt_map_items(&n->rnodes, &count);
    for (size_t i = 0; i < count; i++) rnode_free(items[i]);
    free(items);
    mt_map_free(&n->rnodes);
    mt_arena_free(&arena);
}

mt_rnode *mt_cluster_node(mt_node *n, const mt_nid *nid) { return mt_map_get(&n->rnodes, nid->b); }

static mt_rnode *rnode_get(mt_node *n, const mt_nid *nid)
{
    mt_rnode *r = mt_map_get(&n->rnodes, nid->b);
    if (r) return r;
    r = mt_calloc(1, sizeof *r);
    r->nid = *nid;
    r->endpoint = mt_strdup("");
    r->session_dir = mt_strdup("");
    mt_res_init(&r->total);
    mt_res_init(&r->avail);
    mt_map_put(&n->rnodes, r);
    return r;
}

static const char *nid_hex(const mt_nid *nid, char *buf)
{
    return mt_hex(nid->b, MT_NODE_ID_LEN, buf);
}

/* ---------------------------------------------------------------- status */

static void res_from(mt_res_set *s, Manta__Resource **v, size_t nv)
{
    mt_res_free(s);
    mt_res_init(s);
    for (size_t i = 0; i < nv; i++)
        if (v[i]->name && v[i]->name[0] && v[i]->amount >= 0) mt_res_put(s, v[i]->name, v[i]->amount);
}

static void rnode_update(mt_rnode *r, const Manta__NodeStatus *ns)
{
    if (ns->endpoint && ns->endpoint[0] && strcmp(r->endpoint, ns->endpoint)) {
        free(r->endpoint);
        r->endpoint = mt_strdup(ns->endpoint);
    }
    if (ns->session_dir && strcmp(r->session_dir, ns->session_dir)) {
        free(r->session_dir);
        r->session_dir = mt_strdup(ns->session_dir);
    }
    r->is_head = ns->is_head;
    res_from(&r->total, ns->total, ns->n_total);
    res_from(&r->avail, ns->available, ns->n_available);
    r->store_used = ns->store_used;
    r->store_capacity = ns->store_capacity;
    r->num_objects = ns->num_objects;
    r->num_workers = ns->num_workers;
    r->num_drivers = ns->num_drivers;
    r->pending = ns->pending_leases;
}

static Manta__Resource **res_proto(const mt_res_set *s, Manta__Resource **store)
{
    *store = mt_calloc(s->n + 1, sizeof **store);
    Manta__Resource **v = mt_calloc(s->n + 1, sizeof *v);
    for (uint32_t i = 0; i < s->n; i++) {
        manta__resource__init(&(*store)[i]);
        (*store)[i].name = s->v[i].name;
        (*store)[i].amount = s->v[i].amount;
        v[i] = &(*store)[i];
    }
    return v;
}

void mt_cluster_fill_status(const mt_rnode *r, Manta__NodeStatus *ns, Manta__Resource **store)
{
    manta__node_status__init(ns);
    ns->node_id = MT_BIN(r->nid.b, MT_NODE_ID_LEN);
    ns->address = r->endpoint;
    ns->endpoint = r->endpoint;
    ns->session_dir = r->session_dir;
    ns->alive = r->alive;
    ns->is_head = r->is_head;
    ns->total = res_proto(&r->total, &store[0]);
    ns->n_total = r->total.n;
    ns->available = res_proto(&r->avail, &store[1]);
    ns->n_available = r->avail.n;
    ns->store_used = r->store_used;
    ns->store_capacity = r->store_capacity;
    ns->num_objects = r->num_objects;
    ns->num_workers = r->num_workers;
    ns->num_drivers = r->num_drivers;
    ns->pending_leases = r->pending;
    ns->last_report_s = r->last_report > 0 ? mt_now_s() - r->last_report : 0;
}

void mt_node_fill_status(mt_node *n, Manta__NodeStatus *ns, Manta__Resource **store)
{
    manta__node_status__init(ns);
    ns->node_id = MT_BIN(n->node_id.b, MT_NODE_ID_LEN);
    ns->endpoint = (char *)mt_node_endpoint(n);
    ns->address = ns->endpoint[0] ? ns->endpoint : n->sock_path;
    ns->session_dir = n->session_dir;
    ns->alive = true;
    ns->is_head = n->is_head;
    const mt_res_set *total = mt_sched_total(n->sched), *avail = mt_sched_avail(n->sched);
    ns->total = res_proto(total, &store[0]);
    ns->n_total = total->n;
    ns->available = res_proto(avail, &store[1]);
    ns->n_available = avail->n;
    ns->store_capacity = mt_store_capacity(n->store);
    ns->store_used = mt_store_used(n->store);
    ns->num_objects = mt_store_count(n->store);
    ns->num_workers = (uint32_t)mt_pool_total(n);
    for (mt_client *x = n->clients; x; x = x->next)
        if (x->role == MANTA__ROLE__ROLE_DRIVER) ns->num_drivers++;
    ns->pending_leases = mt_sched_pending(n->sched);
}

static void status_free(Manta__NodeStatus *ns, Manta__Resource **store)
{
    free(ns->total);
    free(ns->available);
    free(store[0]);
    free(store[1]);
}

const char *mt_node_endpoint(mt_node *n)
{
    static char ep[320];
    if (n->tcp_fd < 0) return "";
    snprintf(ep, sizeof ep, "tcp:%s:%d", n->tcp_host, n->tcp_port);
    return ep;
}

mt_client *mt_node_client_by_role_nid(mt_node *n, int role, const mt_nid *nid)
{
    for (mt_client *c = n->clients; c; c = c->next)
        if (c->role == role && MT_ID_EQ(c->nid, *nid)) return c;
    return NULL;
}

/* ---------------------------------------------------------------- sending */

/* Head: send to every live node. */
static void to_nodes(mt_node *n, uint16_t type, const ProtobufCMessage *m, const mt_nid *except)
{
    size_t it = 0;
    mt_rnode *r;
    while ((r = mt_map_next(&n->rnodes, &it))) {
        if (!r->alive || !r->client) continue;
        if (except && MT_ID_EQ(r->nid, *except)) continue;
        mt_conn_send_now(r->client->conn, type, m);
    }
}

void mt_cluster_statuses(mt_node *n, mt_statuses *s)
{
    size_t cap = n->rnodes.size + 1;
    s->ptrs = mt_calloc(cap, sizeof *s->ptrs);
    s->ns = mt_calloc(cap, sizeof *s->ns);
    s->stores = mt_calloc(2 * cap, sizeof *s->stores);
    s->n = 0;
    mt_node_fill_status(n, &s->ns[0], &s->stores[0]);
    s->ptrs[s->n++] = &s->ns[0];
    size_t it = 0;
    mt_rnode *r;
    while ((r = mt_map_next(&n->rnodes, &it))) {
        mt_cluster_fill_status(r, &s->ns[s->n], &s->stores[2 * s->n]);
        s->ptrs[s->n] = &s->ns[s->n];
        s->n++;
    }
}

void mt_cluster_statuses_free(mt_statuses *s)
{
    for (size_t i = 0; i < s->n; i++) status_free(&s->ns[i], &s->stores[2 * i]);
    free(s->ptrs);
    free(s->ns);
    free(s->stores);
}

static void broadcast_view(mt_node *n)
{
    mt_statuses s;
    mt_cluster_statuses(n, &s);
    Manta__ClusterView v = MANTA__CLUSTER_VIEW__INIT;
    v.nodes = s.ptrs;
    v.n_nodes = s.n;
    to_nodes(n, MANTA__MSG_TYPE__MSG_CLUSTER_VIEW, &v.base, NULL);
    mt_cluster_statuses_free(&s);
}

static void send_event(mt_node *n, int kind, const void *id, size_t idlen, int code)
{
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = kind;
    ev.id = MT_BIN(id, idlen);
    ev.code = code;
    if (kind != MANTA__EVENT_KIND__EVENT_JOB_ENDED) mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
    if (n->is_head) to_nodes(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base, NULL);
}

/* ---------------------------------------------------------------- deaths */

/* Every node: what follows from another node's death here. */
static void node_gone(mt_node *n, mt_rnode *r)
{
    char hex[2 * MT_NODE_ID_LEN + 1];
    mt_warn("node %s (%s) is dead", nid_hex(&r->nid, hex), r->endpoint);
    if (r->link) mt_conn_close(r->link, MANTA_ECONN);
    /* Its processes' connections to us are of no use any more. */
    for (mt_client *c = n->clients, *next; c; c = next) {
        next = c->next;
        if ((c->role == MANTA__ROLE__ROLE_GCS_CLIENT || c->role == MANTA__ROLE__ROLE_LESSEE ||
             c->role == MANTA__ROLE__ROLE_NODE_PEER) &&
            MT_ID_EQ(c->nid, r->nid))
            mt_conn_close(c->conn, MANTA_ECONN);
    }
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_NODE_DIED;
    ev.id = MT_BIN(r->nid.b, MT_NODE_ID_LEN);
    mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
    mt_xfer_node_dead(n, &r->nid);
    mt_sched_dispatch(n->sched);
}

/* Head: declare a node dead. */
static void node_dead(mt_node *n, mt_rnode *r, const char *why)
{
    if (!r->alive) return;
    r->alive = false;
    mt_info("declaring node %s dead: %s", r->endpoint, why);
    if (r->client) {
        mt_client *c = r->client;
        r->client = NULL;
        mt_conn_close(c->conn, MANTA_ECONN);
    }
    node_gone(n, r);
    if (n->gcs) mt_gcs_node_died(n->gcs, &r->nid);
    Manta__Event ev = MANTA__EVENT__INIT;
    ev.kind = MANTA__EVENT_KIND__EVENT_NODE_DIED;
    ev.id = MT_BIN(r->nid.b, MT_NODE_ID_LEN);
    to_nodes(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base, NULL);
    n->view_dirty = true;
}

void mt_cluster_client_gone(mt_node *n, mt_client *c)
{
    if (c->role != MANTA__ROLE__ROLE_NODE) return;
    mt_rnode *r = mt_cluster_node(n, &c->nid);
    if (!r || r->client != c) return;
    r->client = NULL;
    node_dead(n, r, "its connection closed");
}

void mt_cluster_worker_died(mt_node *n, const Manta__Event *ev)
{
    if (n->is_head) to_nodes(n, MANTA__MSG_TYPE__MSG_EVENT, &ev->base, NULL);
    else if (n->head) mt_conn_send_now(n->head, MANTA__MSG_TYPE__MSG_EVENT, &ev->base);
}

void mt_cluster_job_ended(mt_node *n, uint32_t job)
{
    send_event(n, MANTA__EVENT_KIND__EVENT_JOB_ENDED, "", 0, (int)job);
}

/* Kill worker `wid` of this node; false if it is not one of ours. */
static bool kill_local(mt_node *n, const mt_wid *wid, int reason)
{
    mt_worker *w = mt_map_get(&n->workers, wid->b);
    if (!w) return false;
    w->death_reason = reason;
    mt_pool_kill(n, w, SIGKILL);
    return true;
}

void mt_cluster_kill_worker(mt_node *n, const mt_nid *nid, const mt_wid *wid, int reason)
{
    if (kill_local(n, wid, reason)) return;
    mt_rnode *r = mt_cluster_node(n, nid);
    if (!r || !r->alive || !r->client) return;
    Manta__KillWorker k = MANTA__KILL_WORKER__INIT;
    k.worker_id = MT_BIN(wid->b, MT_WORKER_ID_LEN);
    k.reason = reason;
    mt_conn_send_now(r->client->conn, MANTA__MSG_TYPE__MSG_KILL_WORKER, &k.base);
}

static void kill_worker(mt_node *n, const Manta__KillWorker *k)
{
    if (k->worker_id.len != MT_WORKER_ID_LEN) return;
    mt_wid wid;
    memcpy(wid.b, k->worker_id.data, MT_WORKER_ID_LEN);
    kill_local(n, &wid, k->reason ? (int)k->reason : MANTA__DEATH_REASON__DEATH_KILLED);
}

/* ---------------------------------------------------------------- head side */

int mt_cluster_node_hello(mt_node *n, mt_client *c, const Manta__Hello *h)
{
    if (!n->is_head) return mt_err(MANTA_EPROTO, "a node tried to join a node that is not the head");
    if (h->node_id.len != MT_NODE_ID_LEN || !h->node)
        return mt_err(MANTA_EPROTO, "node Hello without its id and status");
    memcpy(c->nid.b, h->node_id.data, MT_NODE_ID_LEN);
    mt_rnode *r = mt_cluster_node(n, &c->nid);
    if (r && (r->alive || r->last_report > 0))
        return mt_err(MANTA_EPROTO, "node id already known to the cluster");
    r = rnode_get(n, &c->nid);
    rnode_update(r, h->node);
    r->client = c;
    r->alive = true;
    r->last_report = mt_now_s();
    n->view_dirty = true;
    snprintf(c->conn->desc, sizeof c->conn->desc, "node %.50s", r->endpoint);
    mt_info("node %s joined (pid %d)", r->endpoint, (int)c->pid);
    if (!n->multi_node) {
        /* Our clients start listening for processes of other nodes: the
         * event leaves before the node's HelloReply, ahead of anything the
         * new node can start. */
        n->multi_node = true;
        Manta__Event ev = MANTA__EVENT__INIT;
        ev.kind = MANTA__EVENT_KIND__EVENT_MULTI_NODE;
        mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
    }
    mt_sched_dispatch(n->sched); /* what waited for a node like it */
    return 0;
}

int mt_cluster_handle(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    mt_rnode *r = mt_cluster_node(n, &c->nid);
    if (!r || r->client != c) return mt_err(MANTA_EPROTO, "message from a node that is not in the cluster");
    switch (type) {
    case MANTA__MSG_TYPE__MSG_RESOURCE_REPORT: {
        const Manta__ResourceReport *rep = (const Manta__ResourceReport *)m;
        if (rep->node) rnode_update(r, rep->node);
        r->last_report = mt_now_s();
        n->view_dirty = true;
        mt_sched_dispatch(n->sched);
        return 0;
    }
    case MANTA__MSG_TYPE__MSG_EVENT: {
        /* A worker of that node died: the control store and the other
         * nodes' clients need to know (owners, borrowers, actors). */
        const Manta__Event *ev = (const Manta__Event *)m;
        if (ev->kind != MANTA__EVENT_KIND__EVENT_WORKER_DIED || ev->id.len != MT_WORKER_ID_LEN)
            return 0;
        mt_wid wid;
        memcpy(wid.b, ev->id.data, MT_WORKER_ID_LEN);
        if (n->gcs) mt_gcs_actor_worker_died(n->gcs, &wid, ev->code);
        mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev->base);
        mt_store_owner_gone(n->store, &wid);
        to_nodes(n, MANTA__MSG_TYPE__MSG_EVENT, &ev->base, &r->nid);
        return 0;
    }
    }
    return mt_err(MANTA_EPROTO, "unexpected %s from a node", mt_wire_name(type));
}

/* ---------------------------------------------------------------- node side */

static void apply_view(mt_node *n, const Manta__ClusterView *v)
{
    size_t it = 0;
    mt_rnode *r;
    /* A node missing from the view is gone. */
    while ((r = mt_map_next(&n->rnodes, &it))) r->seen = false;
    for (size_t i = 0; i < v->n_nodes; i++) {
        const Manta__NodeStatus *ns = v->nodes[i];
        if (ns->node_id.len != MT_NODE_ID_LEN) continue;
        mt_nid nid;
        memcpy(nid.b, ns->node_id.data, MT_NODE_ID_LEN);
        if (MT_ID_EQ(nid, n->node_id)) continue;
        r = rnode_get(n, &nid);
        r->seen = true;
        bool was = r->alive;
        rnode_update(r, ns);
        r->last_report = mt_now_s();
        r->alive = ns->alive;
        if (was && !r->alive) node_gone(n, r);
    }
    it = 0;
    while ((r = mt_map_next(&n->rnodes, &it))) {
        if (r->seen) continue;
        if (r->alive) {
            r->alive = false;
            node_gone(n, r);
        }
    }
    mt_sched_dispatch(n->sched);
}

static int on_head_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    mt_node *n = ud;
    char err[256];
    ProtobufCMessage *m;
    MT_UNUSED(conn);
    int rc = mt_wire_decode(f->type, f->payload, f->len, &arena, &m, err, sizeof err);
    if (rc) {
        mt_arena_reset(&arena);
        return mt_err(rc, "from the head: %s", err);
    }
    switch (f->type) {
    case MANTA__MSG_TYPE__MSG_CLUSTER_VIEW:
        apply_view(n, (const Manta__ClusterView *)m);
        break;
    case MANTA__MSG_TYPE__MSG_KILL_WORKER:
        kill_worker(n, (const Manta__KillWorker *)m);
        break;
    case MANTA__MSG_TYPE__MSG_EVENT: {
        const Manta__Event *ev = (const Manta__Event *)m;
        if (ev->kind == MANTA__EVENT_KIND__EVENT_JOB_ENDED) {
            mt_pool_kill_job(n, (uint32_t)ev->code);
        } else if (ev->kind == MANTA__EVENT_KIND__EVENT_NODE_DIED && ev->id.len == MT_NODE_ID_LEN) {
            mt_nid nid;
            memcpy(nid.b, ev->id.data, MT_NODE_ID_LEN);
            mt_rnode *r = mt_cluster_node(n, &nid);
            if (r && r->alive) {
                r->alive = false;
                node_gone(n, r);
            }
        } else {
            if (ev->kind == MANTA__EVENT_KIND__EVENT_WORKER_DIED && ev->id.len == MT_WORKER_ID_LEN) {
                mt_wid wid;
                memcpy(wid.b, ev->id.data, MT_WORKER_ID_LEN);
                mt_store_owner_gone(n->store, &wid);
            }
            mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev->base);
        }
        break;
    }
    default:
        rc = mt_err(MANTA_EPROTO, "unexpected %s from the head", mt_wire_name(f->type));
    }
    mt_arena_reset(&arena);
    return rc;
}

static void on_head_close(mt_conn *conn, int reason, void *ud)
{
    mt_node *n = ud;
    MT_UNUSED(reason);
    n->head = NULL;
    mt_conn_unref(conn);
    if (!n->stopping) {
        mt_error("lost the connection to the head node; stopping");
        mt_node_stop(n, 1);
    }
}

int mt_cluster_join(mt_node *n)
{
    char ep[320];
    snprintf(ep, sizeof ep, "tcp:%s", n->join);
    int fd;
    if (mt_sock_connect(ep, 10, &fd))
        return mt_err(MANTA_ECONN, "cannot reach the head node at %s: %s", n->join,
                      manta_last_error());
    Manta__Hello h = MANTA__HELLO__INIT;
    Manta__NodeStatus ns;
    Manta__Resource *store[2];
    mt_node_fill_status(n, &ns, store);
    h.version = MT_WIRE_VERSION;
    h.token = MT_BIN(n->token, strlen(n->token));
    h.role = MANTA__ROLE__ROLE_NODE;
    h.pid = (uint32_t)getpid();
    h.node_id = MT_BIN(n->node_id.b, MT_NODE_ID_LEN);
    h.node = &ns;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    status_free(&ns, store);
    int rc = mt_sock_write_all(fd, b.data, b.len, 10);
    mt_buf_free(&b);
    uint8_t hdr[MT_FRAME_HDR];
    mt_frame f;
    if (!rc) rc = mt_sock_read_all(fd, hdr, sizeof hdr, 10);
    if (!rc) rc = mt_wire_peek(hdr, sizeof hdr, 1 << 20, &f) < 0 ? MANTA_EPROTO : 0;
    Manta__HelloReply *rep = NULL;
    if (!rc) {
        uint8_t *payload = mt_malloc(f.len + 1);
        rc = mt_sock_read_all(fd, payload, f.len, 10);
        if (!rc) rep = manta__hello_reply__unpack(NULL, f.len, payload);
        free(payload);
        if (!rc && (!rep || f.type != MANTA__MSG_TYPE__MSG_HELLO_REPLY)) rc = MANTA_EPROTO;
    }
    if (rc) {
        close(fd);
        if (rep) manta__hello_reply__free_unpacked(rep, NULL);
        return mt_err(MANTA_EAUTH, "the head node at %s refused this node (wrong cluster token?)",
                      n->join);
    }
    if (rep->status) {
        close(fd);
        rc = mt_err(rep->status, "the head node refused this node: %s", rep->error);
        manta__hello_reply__free_unpacked(rep, NULL);
        return rc;
    }
    if (rep->node_id.len == MT_NODE_ID_LEN) {
        mt_nid hn;
        memcpy(hn.b, rep->node_id.data, MT_NODE_ID_LEN);
        mt_rnode *r = rnode_get(n, &hn);
        r->alive = r->is_head = true;
        free(r->endpoint);
        r->endpoint = mt_strdup(ep);
    }
    manta__hello_reply__free_unpacked(rep, NULL);
    mt_sock_nonblock(fd, 1);
    n->head = mt_conn_new(&n->cl, fd, on_head_frame, on_head_close, n);
    snprintf(n->head->desc, sizeof n->head->desc, "head %.50s", n->join);
    if (mt_conn_start(n->head)) return mt_err(MANTA_ESYS, "cannot watch the head connection");
    mt_info("joined the cluster at %s", n->join);
    return 0;
}

/* ---------------------------------------------------------------- tick */

void mt_cluster_tick(mt_node *n)
{
    double now = mt_now_s();
    if (n->is_head) {
        double limit = (double)mt_cfg.node_timeout_ms / 1000.0;
        size_t it = 0;
        mt_rnode *r;
        while ((r = mt_map_next(&n->rnodes, &it))) {
            if (r->alive && now - r->last_report > limit) {
                char why[80];
                snprintf(why, sizeof why, "no heartbeat for %.1f s", now - r->last_report);
                node_dead(n, r, why);
            }
        }
        /* The head's own resources change too: send the view while there
         * are nodes to tell. */
        if (n->rnodes.size && (n->view_dirty || now - n->last_report >= 0.1)) {
            broadcast_view(n);
            n->view_dirty = false;
            n->last_report = now;
        }
        return;
    }
    if (n->head && now - n->last_report >= (double)mt_cfg.report_ms / 1000.0) {
        Manta__ResourceReport rep = MANTA__RESOURCE_REPORT__INIT;
        Manta__NodeStatus ns;
        Manta__Resource *store[2];
        mt_node_fill_status(n, &ns, store);
        rep.node = &ns;
        mt_conn_send_now(n->head, MANTA__MSG_TYPE__MSG_RESOURCE_REPORT, &rep.base);
        status_free(&ns, store);
        n->last_report = now;
    }
}

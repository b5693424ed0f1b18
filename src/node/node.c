/* node.c -- the node daemon's connections: accepting clients, the Hello
 * handshake, and one table that gives each client message, by type and
 * sender's role, to the scheduler, the object store, the control store,
 * the cluster tables or object transfers. */
#include "node.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "mt.h"
#include "sock.h"
#include "wire.h"

/* A get that waits for objects to be sealed. */
typedef struct pending_get {
    mt_node *node;
    mt_client *client;
    uint64_t request_id;
    size_t n, remaining;
    mt_oid *ids;
    int *status;           /* per object: set when it cannot come (a failed pull) */
    bool pin;
    uv_timer_t timer;
    bool has_timer;
    struct pending_get *next, *prev;
} pending_get;

/* A create that waits for room in the store. */
typedef struct pending_create {
    mt_client *client;
    uint64_t request_id;
    mt_oid id;
    uint64_t size;
    mt_wid owner;
    double deadline;
    struct pending_create *next;
} pending_create;

static pending_get *gets;
static pending_create *creates;
static mt_arena arena;

#define LIST_PUSH(head, x)                                                                         \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if (head) (head)->prev = (x);                                                              \
        (head) = (x);                                                                              \
    } while (0)
#define LIST_DEL(head, x)                                                                          \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next) (x)->next->prev = (x)->prev;                                                \
    } while (0)

/* ---------------------------------------------------------------- helpers */

mt_client *mt_node_driver_of_job(mt_node *n, uint32_t job_id)
{
    for (mt_client *c = n->clients; c; c = c->next)
        if (c->role == MANTA__ROLE__ROLE_DRIVER && c->job_id == job_id) return c;
    return NULL;
}

void mt_node_broadcast(mt_node *n, uint16_t type, const ProtobufCMessage *msg)
{
    for (mt_client *c = n->clients; c; c = c->next) {
        if (c->role != MANTA__ROLE__ROLE_DRIVER && c->role != MANTA__ROLE__ROLE_WORKER &&
            c->role != MANTA__ROLE__ROLE_LESSEE)
            continue;
        mt_conn_send_now(c->conn, type, msg);
    }
}

void mt_node_warn_client(mt_client *c, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    Manta__Warning w = MANTA__WARNING__INIT;
    w.text = text;
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_WARNING, &w.base);
}

static void retry_creates(mt_node *n);

/* ---------------------------------------------------------------- control store */

/* What the control store (gcs.h) needs of the node: `ud` is the node, a
 * client is an mt_client. */

static void gcs_send(void *ud, void *client, uint16_t type, const ProtobufCMessage *msg)
{
    mt_client *c = client;
    mt_conn_send_now(c->conn, type, msg);
    MT_UNUSED(ud);
}

static void gcs_kill_worker(void *ud, const mt_nid *nid, const mt_wid *wid, int reason)
{
    mt_cluster_kill_worker(ud, nid, wid, reason);
}

static bool gcs_connected(void *ud, const mt_wid *wid)
{
    mt_node *n = ud;
    for (mt_client *c = n->clients; c; c = c->next)
        if (c->role && MT_ID_EQ(c->wid, *wid)) return true;
    return false;
}

static double gcs_now(void *ud)
{
    MT_UNUSED(ud);
    return mt_now_s();
}

mt_gcs *mt_node_gcs_new(mt_node *n)
{
    mt_gcs_env env = {
        .ud = n, .send = gcs_send, .kill_worker = gcs_kill_worker,
        .connected = gcs_connected, .now = gcs_now,
    };
    return mt_gcs_new(&env);
}

/* ---------------------------------------------------------------- store: get */

static void get_reply(pending_get *g)
{
    mt_node *n = g->node;
    Manta__ObjGetReply rep = MANTA__OBJ_GET_REPLY__INIT;
    Manta__ObjLocation *locs = mt_calloc(g->n, sizeof *locs);
    Manta__ObjLocation **ptrs = mt_calloc(g->n, sizeof *ptrs);
    for (size_t i = 0; i < g->n; i++) {
        Manta__ObjLocation *l = &locs[i];
        manta__obj_location__init(l);
        l->object_id = MT_BIN(g->ids[i].b, MT_OBJECT_ID_LEN);
        mt_store_obj *o = mt_store_find(n->store, &g->ids[i]);
        if (g->status[i]) {
            l->status = g->status[i];
        } else if (o && o->sealed) {
            l->offset = o->offset;
            l->size = o->size;
            if (g->pin) mt_store_pin(n->store, o, g->client->cid);
        } else {
            l->status = MANTA_ETIMEDOUT;
        }
        ptrs[i] = l;
    }
    rep.request_id = g->request_id;
    rep.n_objects = g->n;
    rep.objects = ptrs;
    mt_conn_send_now(g->client->conn, MANTA__MSG_TYPE__MSG_OBJ_GET_REPLY, &rep.base);
    free(locs);
    free(ptrs);
}

static void get_free(pending_get *g)
{
    free(g->ids);
    free(g->status);
    free(g);
}

static void get_timer_closed(uv_handle_t *h) { get_free(h->data); }

static void get_finish(pending_get *g, bool reply)
{
    if (reply) get_reply(g);
    LIST_DEL(gets, g);
    if (g->has_timer) {
        uv_timer_stop(&g->timer);
        uv_close((uv_handle_t *)&g->timer, get_timer_closed);
    } else {
        get_free(g);
    }
}

static void get_timeout(uv_timer_t *t) { get_finish(t->data, true); }

static bool is_sealed(mt_node *n, const mt_oid *id)
{
    mt_store_obj *o = mt_store_find(n->store, id);
    return o && o->sealed;
}

static int on_obj_get(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *msg)
{
    const Manta__ObjGet *m = (const Manta__ObjGet *)msg;
    MT_UNUSED(type);
    pending_get *g = mt_calloc(1, sizeof *g);
    g->node = n;
    g->client = c;
    g->request_id = m->request_id;
    g->n = m->n_object_ids;
    g->pin = m->pin;
    g->ids = mt_calloc(g->n ? g->n : 1, sizeof *g->ids);
    g->status = mt_calloc(g->n ? g->n : 1, sizeof *g->status);
    /* A malformed get is answered MANTA_EINVAL, object by object; the
     * client's other work goes on. */
    bool bad = m->n_locations && m->n_locations != g->n;
    if (bad)
        mt_warn("ObjGet of %s with %zu locations for %zu objects", c->conn->desc, m->n_locations,
                m->n_object_ids);
    for (size_t i = 0; i < g->n; i++) {
        if (bad || m->object_ids[i].len != MT_OBJECT_ID_LEN) {
            g->status[i] = MANTA_EINVAL;
            continue;
        }
        memcpy(g->ids[i].b, m->object_ids[i].data, MT_OBJECT_ID_LEN);
        if (is_sealed(n, &g->ids[i])) continue;
        /* Held by another node: fetch it (or learn that it is lost). */
        if (m->pin && m->n_locations && m->locations[i].len == MT_NODE_ID_LEN &&
            memcmp(m->locations[i].data, n->node_id.b, MT_NODE_ID_LEN)) {
            mt_nid from;
            memcpy(from.b, m->locations[i].data, MT_NODE_ID_LEN);
            g->status[i] = mt_xfer_want(n, &g->ids[i], &from);
            if (g->status[i]) continue;
        }
        g->remaining++;
    }
    LIST_PUSH(gets, g);
    if (g->remaining == 0 || m->timeout_ms == 0) {
        get_finish(g, true);
        return 0;
    }
    if (m->timeout_ms > 0) {
        uv_timer_init(n->loop, &g->timer);
        g->timer.data = g;
        g->has_timer = true;
        uv_timer_start(&g->timer, get_timeout, (uint64_t)m->timeout_ms, 0);
    }
    return 0;
}

/* `id` was sealed, or cannot come (status != 0): answer the gets that
 * have nothing left to wait for. */
static void obj_settled(mt_node *n, const mt_oid *id, int status)
{
    for (pending_get *g = gets, *next; g; g = next) {
        next = g->next;
        bool hit = false;
        for (size_t i = 0; i < g->n; i++) {
            if (!MT_ID_EQ(g->ids[i], *id)) continue;
            hit = true;
            if (status) g->status[i] = status;
        }
        if (!hit) continue;
        g->remaining = 0;
        for (size_t i = 0; i < g->n; i++)
            if (!g->status[i] && !is_sealed(n, &g->ids[i])) g->remaining++;
        if (g->remaining == 0) get_finish(g, true);
    }
}

static void on_sealed(mt_node *n, const mt_oid *id) { obj_settled(n, id, 0); }

void mt_node_obj_sealed(mt_node *n, const mt_oid *id)
{
    on_sealed(n, id);
    retry_creates(n);
}

void mt_node_obj_failed(mt_node *n, const mt_oid *id, int status)
{
    obj_settled(n, id, status);
    retry_creates(n);
}

/* ---------------------------------------------------------------- store: create */

static void create_reply(mt_client *c, uint64_t req, int status, uint64_t offset)
{
    Manta__ObjCreateReply rep = MANTA__OBJ_CREATE_REPLY__INIT;
    rep.request_id = req;
    rep.status = status;
    rep.offset = offset;
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_OBJ_CREATE_REPLY, &rep.base);
}

static int try_create(mt_node *n, mt_client *c, uint64_t req, const mt_oid *id, uint64_t size,
                      const mt_wid *owner)
{
    uint64_t off = 0;
    int rc = mt_store_create(n->store, id, size, owner, c->cid, &off);
    if (rc == MANTA_ENOMEM) return rc;
    create_reply(c, req, rc, off);
    return 0;
}

static int on_obj_create(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *msg)
{
    const Manta__ObjCreate *m = (const Manta__ObjCreate *)msg;
    MT_UNUSED(type);
    if (m->object_id.len != MT_OBJECT_ID_LEN || !m->owner ||
        m->owner->worker_id.len != MT_WORKER_ID_LEN) {
        mt_warn("ObjCreate of %s without object id or owner", c->conn->desc);
        create_reply(c, m->request_id, MANTA_EINVAL, 0);
        return 0;
    }
    mt_oid id;
    mt_wid owner;
    memcpy(id.b, m->object_id.data, sizeof id.b);
    memcpy(owner.b, m->owner->worker_id.data, sizeof owner.b);
    if (try_create(n, c, m->request_id, &id, m->size, &owner) == 0) return 0;
    /* No room now: wait for frees, up to store_full_wait_ms. */
    pending_create *p = mt_calloc(1, sizeof *p);
    p->client = c;
    p->request_id = m->request_id;
    p->id = id;
    p->size = m->size;
    p->owner = owner;
    p->deadline = mt_now_s() + (double)mt_cfg.store_full_wait_ms / 1000.0;
    pending_create **tail = &creates;
    while (*tail) tail = &(*tail)->next;
    *tail = p; /* FIFO: the oldest create gets room first */
    return 0;
}

static void retry_creates(mt_node *n)
{
    double now = mt_now_s();
    pending_create **pp = &creates;
    while (*pp) {
        pending_create *p = *pp;
        int rc = try_create(n, p->client, p->request_id, &p->id, p->size, &p->owner);
        if (rc == MANTA_ENOMEM && now < p->deadline) break; /* keep FIFO order */
        if (rc == MANTA_ENOMEM)
            create_reply(p->client, p->request_id, MANTA_ESTOREFULL, 0);
        *pp = p->next;
        free(p);
    }
}

static int ids_each(const ProtobufCBinaryData *ids, size_t n, mt_oid *out)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i].len != MT_OBJECT_ID_LEN) return mt_err(MANTA_EPROTO, "bad object id");
        memcpy(out[i].b, ids[i].data, MT_OBJECT_ID_LEN);
    }
    return 0;
}

/* A message without a reply that lacks `what`: the sender hears why it was
 * ignored and keeps its connection.  Returns 0. */
static int ignored(mt_client *c, uint16_t type, const char *what)
{
    mt_warn("ignored a %s of %s without %s", mt_wire_name(type), c->conn->desc, what);
    mt_node_warn_client(c, "ignored a %s without %s", mt_wire_name(type), what);
    return 0;
}

/* ObjSeal and ObjAbort share their message. */
static int on_obj_seal(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    const Manta__ObjSeal *s = (const Manta__ObjSeal *)m;
    mt_oid id;
    if (ids_each(&s->object_id, 1, &id)) return ignored(c, type, "an object id");
    if (type == MANTA__MSG_TYPE__MSG_OBJ_ABORT) {
        mt_store_abort(n->store, &id, c->cid);
        retry_creates(n);
    } else if (mt_store_seal(n->store, &id, c->cid) == 0) {
        on_sealed(n, &id);
        retry_creates(n);
    }
    return 0;
}

static int on_obj_release(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    const Manta__ObjRelease *r = (const Manta__ObjRelease *)m;
    for (size_t i = 0; i < r->n_object_ids; i++) {
        mt_oid id;
        if (ids_each(&r->object_ids[i], 1, &id)) return ignored(c, type, "an object id");
        mt_store_unpin(n->store, &id, c->cid);
    }
    retry_creates(n);
    return 0;
}

/* An owner's free goes here or to its node; a node peer's (the copy it
 * made) is freed here by transfer.c. */
static int on_obj_free(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    if (c->role == MANTA__ROLE__ROLE_NODE_PEER) return mt_xfer_handle(n, c, type, m);
    mt_xfer_free(n, (const Manta__ObjFree *)m);
    retry_creates(n);
    return 0;
}

/* ---------------------------------------------------------------- status */

/* This node first, then every other node it knows of. */
static int on_status(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *msg)
{
    const Manta__StatusRequest *m = (const Manta__StatusRequest *)msg;
    MT_UNUSED(type);
    mt_statuses s;
    mt_cluster_statuses(n, &s);
    Manta__StatusReply rep = MANTA__STATUS_REPLY__INIT;
    rep.request_id = m->request_id;
    rep.n_nodes = s.n;
    rep.nodes = s.ptrs;
    rep.session_dir = n->session_dir;
    rep.gcs_messages = n->gcs_messages;
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_STATUS_REPLY, &rep.base);
    mt_cluster_statuses_free(&s);
    return 0;
}

/* ---------------------------------------------------------------- hello */

static int hello_reply(mt_node *n, mt_client *c, int status, const char *error, int pass_fd)
{
    Manta__HelloReply rep = MANTA__HELLO_REPLY__INIT;
    rep.status = status;
    rep.error = (char *)(error ? error : "");
    rep.node_id = MT_BIN(n->node_id.b, MT_NODE_ID_LEN);
    rep.job_id = c->job_id;
    rep.store_size = mt_store_capacity(n->store);
    rep.session_dir = n->session_dir;
    Manta__NodeStatus self;
    Manta__Resource *store[2];
    mt_node_fill_status(n, &self, store);
    rep.total = self.total;
    rep.n_total = self.n_total;
    bool local = c->role == MANTA__ROLE__ROLE_DRIVER || c->role == MANTA__ROLE__ROLE_WORKER;
    char gcs_ep[320] = "";
    if (local) {
        /* Our own processes learn the token and where the control store is. */
        rep.token = MT_BIN(n->token, strlen(n->token));
        if (n->join) snprintf(gcs_ep, sizeof gcs_ep, "tcp:%s", n->join);
        rep.tcp_host = n->tcp_fd >= 0 ? n->tcp_host : "";
        rep.multi_node = n->multi_node;
    }
    rep.gcs_endpoint = gcs_ep;
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO_REPLY, &rep.base);
    int rc = mt_sock_send_fd(c->conn->fd, b.data, b.len, pass_fd);
    mt_buf_free(&b);
    free(self.total);
    free(self.available);
    free(store[0]);
    free(store[1]);
    return rc;
}

static int handle_hello(mt_node *n, mt_client *c, const Manta__Hello *h)
{
    if (!c->conn->is_unix && !mt_token_eq(n->token, h->token.data, h->token.len))
        return mt_err(MANTA_EAUTH, "wrong cluster token");
    if (h->version != MT_WIRE_VERSION) {
        hello_reply(n, c, MANTA_EVERSION, "protocol version mismatch", -1);
        return mt_err(MANTA_EVERSION, "peer speaks protocol %u", h->version);
    }
    bool needs_wid = h->role != MANTA__ROLE__ROLE_CLI && h->role != MANTA__ROLE__ROLE_NODE &&
                     h->role != MANTA__ROLE__ROLE_NODE_PEER;
    if (h->worker_id.len != MT_WORKER_ID_LEN && needs_wid)
        return mt_err(MANTA_EPROTO, "Hello without a worker id");
    c->authed = true;
    /* The frames that follow (already read, maybe) may be as large as any. */
    mt_gate_pass(c->conn);
    c->role = h->role;
    c->pid = (pid_t)h->pid;
    if (h->worker_id.len == MT_WORKER_ID_LEN) memcpy(c->wid.b, h->worker_id.data, MT_WORKER_ID_LEN);
    if (h->address && h->address->endpoint) c->endpoint = mt_strdup(h->address->endpoint);
    snprintf(c->conn->desc, sizeof c->conn->desc, "%s pid %d",
             h->role == MANTA__ROLE__ROLE_DRIVER       ? "driver"
             : h->role == MANTA__ROLE__ROLE_WORKER     ? "worker"
             : h->role == MANTA__ROLE__ROLE_LESSEE     ? "remote lessee"
             : h->role == MANTA__ROLE__ROLE_GCS_CLIENT ? "remote client"
             : h->role == MANTA__ROLE__ROLE_NODE_PEER  ? "node peer"
                                                       : "client",
             (int)c->pid);
    int pass_fd = mt_store_fd(n->store);
    if (h->node_id.len == MT_NODE_ID_LEN) memcpy(c->nid.b, h->node_id.data, MT_NODE_ID_LEN);
    switch (h->role) {
    case MANTA__ROLE__ROLE_DRIVER:
        if (!n->gcs) {
            hello_reply(n, c, MANTA_EINVAL,
                        "drivers connect to the head node of a cluster, not to a node that joined it",
                        -1);
            return mt_err(MANTA_EINVAL, "a driver connected to a node that is not the head");
        }
        c->job_id = mt_gcs_new_job(n->gcs);
        c->owns_cluster = h->owns_cluster && n->embedded;
        mt_info("driver pid %d connected: job %u", (int)c->pid, c->job_id);
        break;
    case MANTA__ROLE__ROLE_WORKER: {
        mt_worker *w = mt_map_get(&n->workers, c->wid.b);
        if (!w || w->state != MT_W_STARTING) {
            hello_reply(n, c, MANTA_EINVAL, "unknown worker", -1);
            return mt_err(MANTA_EPROTO, "worker pid %d is not one this node started", c->pid);
        }
        c->worker = w;
        c->job_id = w->job_id;
        if (w->forked && w->pid <= 0) w->pid = c->pid; /* before the zygote said so */
        mt_pool_worker_registered(n, w, c);
        break;
    }
    case MANTA__ROLE__ROLE_CLI:
        pass_fd = -1;
        break;
    case MANTA__ROLE__ROLE_NODE: {
        int rc = mt_cluster_node_hello(n, c, h);
        if (rc) {
            hello_reply(n, c, rc, manta_last_error(), -1);
            return rc;
        }
        break;
    }
    case MANTA__ROLE__ROLE_GCS_CLIENT:
        if (!n->gcs) return mt_err(MANTA_EPROTO, "control-store client on a node that is not the head");
        break;
    case MANTA__ROLE__ROLE_LESSEE:
        c->job_id = h->job_id;
        break;
    case MANTA__ROLE__ROLE_NODE_PEER:
        break;
    default:
        return mt_err(MANTA_EPROTO, "unexpected role %d", h->role);
    }
    if (!c->conn->is_unix) pass_fd = -1; /* shared memory is node-local */
    int rc = hello_reply(n, c, 0, NULL, pass_fd);
    if (rc) return rc;
    if (c->role == MANTA__ROLE__ROLE_WORKER) mt_sched_dispatch(n->sched);
    return 0;
}

/* ---------------------------------------------------------------- dispatch */

/* The sender as an error names it: by role for the connections of other
 * nodes and commands, by name for this node's own processes. */
static const char *sender(const mt_client *c)
{
    switch (c->role) {
    case MANTA__ROLE__ROLE_NODE: return "a node";
    case MANTA__ROLE__ROLE_NODE_PEER: return "a node peer";
    case MANTA__ROLE__ROLE_GCS_CLIENT: return "a control-store client";
    case MANTA__ROLE__ROLE_LESSEE: return "a remote lessee";
    case MANTA__ROLE__ROLE_CLI: return "a command";
    default: return c->conn->desc;
    }
}

/* A message the sender may not send: its connection closes. */
static int unexpected(mt_client *c, uint16_t type)
{
    return mt_err(MANTA_EPROTO, "unexpected %s from %s", mt_wire_name(type), sender(c));
}

/* Drivers and workers on a node that joined a head reach the control store
 * there, not here. */
static int on_gcs(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    if (!n->gcs) return unexpected(c, type);
    n->gcs_messages++;
    return mt_gcs_handle(n->gcs, c, type, m);
}

static int on_cluster(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    return mt_cluster_handle(n, c, type, m);
}

static int on_xfer(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    return mt_xfer_handle(n, c, type, m);
}

static int on_lease_request(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    MT_UNUSED(type);
    if (mt_sched_request(n->sched, &c->sc, (const Manta__LeaseRequest *)m))
        mt_warn("refusing a lease request of %s: %s", c->conn->desc, manta_last_error());
    return 0;
}

static int on_lease_cancel(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    MT_UNUSED(type);
    mt_sched_cancel(n->sched, &c->sc, ((const Manta__LeaseCancel *)m)->request_id);
    return 0;
}

static int on_lease_return(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    const Manta__LeaseReturn *r = (const Manta__LeaseReturn *)m;
    if (r->worker_id.len != MT_WORKER_ID_LEN) return ignored(c, type, "a worker id");
    mt_wid wid;
    memcpy(wid.b, r->worker_id.data, sizeof wid.b);
    mt_worker *w = mt_map_get(&n->workers, wid.b);
    if (mt_sched_return(n->sched, &c->sc, w ? &w->lease : NULL, r->worker_failed))
        mt_debug("ignoring return of a worker not leased by %s", c->conn->desc);
    return 0;
}

/* A driver has no lease to lend back: its Blocked is ignored. */
static int on_blocked(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    MT_UNUSED(m);
    if (c->worker)
        mt_sched_blocked(n->sched, &c->worker->lease, type == MANTA__MSG_TYPE__MSG_WORKER_BLOCKED);
    return 0;
}

/* `manta stop`, or the driver that started this node; others are ignored. */
static int on_shutdown(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    MT_UNUSED(type), MT_UNUSED(m);
    if (c->role == MANTA__ROLE__ROLE_CLI || c->owns_cluster) {
        mt_info("shutdown requested by %s", c->conn->desc);
        mt_node_stop(n, 0);
    }
    return 0;
}

typedef int (*node_route_fn)(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m);

/* Per message type after Hello: the roles that may send it (ROLE(r) bits)
 * and the handler, which is only called for its own types.  A message from
 * any other role, or of a type not here, closes the connection. */
typedef struct node_route {
    uint32_t roles;
    node_route_fn fn;
} node_route;

#define ROLE(r) (1u << MANTA__ROLE__ROLE_##r)
#define PROCS (ROLE(DRIVER) | ROLE(WORKER)) /* this node's own processes */
#define MSG(t) [MANTA__MSG_TYPE__MSG_##t]

static const node_route routes[] = {
    MSG(LEASE_REQUEST) = {PROCS | ROLE(LESSEE), on_lease_request},
    MSG(LEASE_CANCEL) = {PROCS | ROLE(LESSEE), on_lease_cancel},
    MSG(LEASE_RETURN) = {PROCS | ROLE(LESSEE), on_lease_return},
    MSG(WORKER_BLOCKED) = {PROCS, on_blocked},
    MSG(WORKER_UNBLOCKED) = {PROCS, on_blocked},
    MSG(OBJ_CREATE) = {PROCS, on_obj_create},
    MSG(OBJ_SEAL) = {PROCS, on_obj_seal},
    MSG(OBJ_ABORT) = {PROCS, on_obj_seal},
    MSG(OBJ_GET) = {PROCS, on_obj_get},
    MSG(OBJ_RELEASE) = {PROCS, on_obj_release},
    MSG(OBJ_FREE) = {PROCS | ROLE(NODE_PEER), on_obj_free},
    MSG(STATUS_REQUEST) = {PROCS | ROLE(LESSEE) | ROLE(CLI), on_status},
    MSG(SHUTDOWN) = {PROCS | ROLE(CLI), on_shutdown},
    MSG(RESOURCE_REPORT) = {ROLE(NODE), on_cluster},
    MSG(EVENT) = {ROLE(NODE), on_cluster},
    MSG(OBJ_PULL) = {ROLE(NODE_PEER), on_xfer},
    MSG(FN_REGISTER) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(FN_GET) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(KV_PUT) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(KV_GET) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(ACTOR_REGISTER) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(ACTOR_UPDATE) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(ACTOR_LOOKUP) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
    MSG(ACTOR_KILL) = {PROCS | ROLE(GCS_CLIENT), on_gcs},
};

#undef MSG
#undef PROCS
#undef ROLE

bool mt_node_may_send(int role, uint16_t type)
{
    if (type >= MT_ARRAY_LEN(routes) || role < 0 || role > 31) return false;
    return (routes[type].roles >> role) & 1u;
}

static int dispatch(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    if (!mt_node_may_send(c->role, type)) return unexpected(c, type);
    return routes[type].fn(n, c, type, m);
}

static int on_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    mt_client *c = ud;
    mt_node *n = c->node;
    char err[256];
    ProtobufCMessage *m;
    if (!c->authed && f->type != MANTA__MSG_TYPE__MSG_HELLO)
        return mt_err(MANTA_EPROTO, "first message must be Hello, got %s", mt_wire_name(f->type));
    int rc = mt_wire_decode(f->type, f->payload, f->len, &arena, &m, err, sizeof err);
    if (rc) {
        mt_arena_reset(&arena);
        return mt_err(rc, "%s", err);
    }
    if (f->type == MANTA__MSG_TYPE__MSG_HELLO) {
        rc = c->authed ? mt_err(MANTA_EPROTO, "second Hello")
                       : handle_hello(n, c, (const Manta__Hello *)m);
    } else {
        rc = dispatch(n, c, f->type, m);
    }
    mt_arena_reset(&arena);
    MT_UNUSED(conn);
    return rc;
}

static void client_gone(mt_node *n, mt_client *c)
{
    for (pending_get *g = gets, *next; g; g = next) {
        next = g->next;
        if (g->client == c) get_finish(g, false);
    }
    for (pending_create **pp = &creates; *pp;) {
        pending_create *p = *pp;
        if (p->client == c) {
            *pp = p->next;
            free(p);
        } else {
            pp = &p->next;
        }
    }
    mt_sched_client_gone(n->sched, &c->sc);
    if (n->gcs) {
        bool has_wid = c->role == MANTA__ROLE__ROLE_DRIVER ||
                       c->role == MANTA__ROLE__ROLE_WORKER ||
                       c->role == MANTA__ROLE__ROLE_GCS_CLIENT;
        mt_gcs_client_gone(n->gcs, c, has_wid ? &c->wid : NULL);
    }
    mt_cluster_client_gone(n, c);
    mt_xfer_client_gone(n, c);
    bool has_id = c->role == MANTA__ROLE__ROLE_DRIVER || c->role == MANTA__ROLE__ROLE_WORKER;
    mt_store_client_gone(n->store, c->cid, has_id ? &c->wid : NULL);
    retry_creates(n);
    if (c->role == MANTA__ROLE__ROLE_DRIVER) {
        mt_info("driver pid %d (job %u) left", (int)c->pid, c->job_id);
        mt_pool_kill_job(n, c->job_id);
        mt_cluster_job_ended(n, c->job_id);
    }
    if (c->worker) {
        /* A worker that hangs up is useless: make sure it is gone. */
        c->worker->client = NULL;
        if (c->worker->state != MT_W_DEAD) mt_pool_kill(n, c->worker, SIGKILL);
    }
    if (c->role == MANTA__ROLE__ROLE_DRIVER) {
        /* Workers are announced when their process exits (pool.c), with
         * the reason; drivers when they hang up. */
        Manta__Event ev = MANTA__EVENT__INIT;
        ev.kind = MANTA__EVENT_KIND__EVENT_WORKER_DIED;
        ev.id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
        ev.reason = MANTA__DEATH_REASON__DEATH_EXITED;
        mt_node_broadcast(n, MANTA__MSG_TYPE__MSG_EVENT, &ev.base);
        mt_cluster_worker_died(n, &ev);
    }
    mt_sched_dispatch(n->sched);
}

static void on_close(mt_conn *conn, int reason, void *ud)
{
    mt_client *c = ud;
    mt_node *n = c->node;
    LIST_DEL(n->clients, c);
    if (c->role) client_gone(n, c);
    bool owner_left = c->owns_cluster;
    free(c->endpoint);
    free(c);
    mt_conn_unref(conn); /* the client's reference; the poll handle drops its own */
    MT_UNUSED(reason);
    if (owner_left && !n->stopping) {
        mt_info("the driver that started this node left; stopping");
        mt_node_stop(n, 0);
    }
}

/* A client for accepted socket fd: its connection is not started yet. */
static mt_client *new_client(mt_node *n, int fd)
{
    mt_client *c = mt_calloc(1, sizeof *c);
    c->node = n;
    c->cid = ++n->next_cid;
    c->conn = mt_conn_new(&n->cl, fd, on_frame, on_close, c);
    LIST_PUSH(n->clients, c);
    return c;
}

static mt_conn *on_accept(mt_gate *g, int fd, void *ud)
{
    mt_node *n = ud;
    if (n->stopping) {
        close(fd);
        return NULL;
    }
    uid_t uid;
    if (g == &n->listen_gate && mt_sock_peer_uid(fd, &uid, NULL) == 0 && uid != getuid()) {
        char desc[64];
        snprintf(desc, sizeof desc, "a unix connection from uid %d", (int)uid);
        mt_gate_log_drop(g->cl, desc, "another user");
        close(fd);
        return NULL;
    }
    return new_client(n, fd)->conn;
}

void mt_node_add_client(mt_node *n, int fd)
{
    mt_client *c = new_client(n, fd);
    /* As at a gate: before Hello a peer gets one small frame, nothing more. */
    c->conn->max_frame = mt_cfg.hello_frame_bytes > 0 ? (size_t)mt_cfg.hello_frame_bytes : 0;
    if (mt_conn_start(c->conn)) mt_conn_close(c->conn, MANTA_ESYS);
}

void mt_node_conns_init(mt_node *n)
{
    MT_UNUSED(n);
    mt_arena_init(&arena);
}

void mt_node_conns_free(mt_node *n)
{
    MT_UNUSED(n);
    mt_arena_free(&arena);
}

/* ---------------------------------------------------------------- lifecycle */

static void on_signal(uv_signal_t *s, int signum)
{
    mt_node *n = s->data;
    mt_info("signal %d: stopping", signum);
    mt_node_stop(n, 0);
}

static void on_tick(uv_timer_t *t)
{
    mt_node *n = t->data;
    if (n->stopping) {
        if (mt_pool_all_closed(n)) uv_stop(n->loop);
        return;
    }
    mt_pool_tick(n);
    mt_sched_tick(n->sched);
    retry_creates(n);
    static double last_mem;
    double now = mt_now_s();
    if (mt_cfg.memory_monitor_ms > 0 && now - last_mem >= (double)mt_cfg.memory_monitor_ms / 1000.0) {
        last_mem = now;
        mt_pool_memory_check(n);
    }
    if (n->gcs) mt_gcs_tick(n->gcs);
    mt_cluster_tick(n);
    mt_xfer_tick(n);
    if (n->embedded && getppid() != n->parent_pid) {
        mt_info("parent process %d is gone; stopping", (int)n->parent_pid);
        mt_node_stop(n, 0);
        return;
    }
}

void mt_node_stop(mt_node *n, int code)
{
    if (n->stopping) return;
    n->stopping = true;
    if (n->sched) mt_sched_stop(n->sched);
    n->exit_code = code;
    mt_pool_kill_all(n);
    mt_gate_stop(&n->listen_gate);
    mt_gate_stop(&n->tcp_gate);
    /* Closing one client can close others (a node's connection takes its
     * processes' connections with it), so start from the head each time. */
    while (n->clients && !n->clients->conn->closing) mt_conn_close(n->clients->conn, 0);
    mt_session_remove(n);
    /* The tick timer ends the loop once every worker has been reaped. */
    uv_timer_start(&n->tick, on_tick, 5, 20);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    MT_UNUSED(arg);
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

int mt_node_run(mt_node *n)
{
    mt_node_conns_init(n);
    if (mt_gate_start(&n->listen_gate, &n->cl, n->listen_fd, on_accept, n) ||
        (n->tcp_fd >= 0 && mt_gate_start(&n->tcp_gate, &n->cl, n->tcp_fd, on_accept, n))) {
        mt_error("cannot listen: %s", manta_last_error());
        mt_session_remove(n);
        return 1;
    }
    uv_signal_init(n->loop, &n->sigterm);
    uv_signal_init(n->loop, &n->sigint);
    n->sigterm.data = n->sigint.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGINT);
    sigprocmask(SIG_UNBLOCK, &stops, NULL); /* blocked by main until now */
    uv_timer_init(n->loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, 100, 100);
    mt_pool_prestart(n);
    uv_run(n->loop, UV_RUN_DEFAULT);
    /* Drain: close every handle so no callback is left pending. */
    uv_walk(n->loop, close_walk, NULL);
    uv_run(n->loop, UV_RUN_DEFAULT);
    mt_node_conns_free(n);
    return n->exit_code;
}

/* objects.c -- ownership and reference counting of objects, and get/wait/
 * put.  See docs/architecture.md, "Reference counting": an owner frees an
 * object once its local refs, pending-task refs, borrowers and credits are
 * all zero; a borrower registers with the owner and leaves when its last
 * local ref goes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "objects.h"
#include "mt.h"

/* ---------------------------------------------------------------- entries */

static mt_obj *obj_new(mt_core *c, const mt_oid *id, mt_peer *owner)
{
    mt_obj *o = mt_calloc(1, sizeof *o);
    o->id = *id;
    o->owner = owner;
    mt_map_put(&c->objs, o);
    return o;
}

mt_obj *do_obj_new_owned(mt_core *c, const mt_oid *id) { return obj_new(c, id, NULL); }

mt_obj *do_obj_find(mt_core *c, const mt_oid *id) { return mt_map_get(&c->objs, id); }

static void obj_destroy(mt_core *c, mt_obj *o)
{
    if (o->lineage) c->hooks->lineage_release(c, o);
    mt_map_del(&c->objs, &o->id);
    if (o->value) mt_value_unref(o->value);
    for (mt_obj_waiter *w = o->waiters, *next; w; w = next) {
        next = w->next;
        mt_conn_unref(w->conn);
        free(w);
    }
    free(o->borrowers);
    free(o->contained);
    free(o->dependents);
    free(o);
}

static bool obj_unused(const mt_obj *o)
{
    if (o->local || o->submitted || o->producing || o->ndependents) return false;
    if (o->owner) return true;
    return o->credits == 0 && o->nborrowers == 0;
}

/* `later`: not urgent; a burst of such frames (a dropped list of refs)
 * leaves together at the loop's next turn. */
static void send_to_owner(mt_core *c, mt_obj *o, uint16_t type, const ProtobufCMessage *m,
                          bool later)
{
    mt_conn *conn = do_loop_peer_conn(c, o->owner);
    if (!conn) return;
    mt_conn_send(conn, type, m);
    if (later) do_loop_flush_later(c, conn);
    else mt_conn_flush(conn);
}

void do_obj_maybe_free(mt_core *c, mt_obj *o)
{
    if (!obj_unused(o)) return;
    if (o->owner) {
        if (o->borrow_queued) do_obj_borrow_send(c); /* its AddBorrower goes first */
        if (o->borrow_state && !o->owner->dead) {
            Manta__RemoveBorrower m = MANTA__REMOVE_BORROWER__INIT;
            m.object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
            m.borrower_id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
            send_to_owner(c, o, MANTA__MSG_TYPE__MSG_REMOVE_BORROWER, &m.base, true);
        }
        obj_destroy(c, o);
        return;
    }
    if (o->in_plasma) do_plasma_free(c, &o->id, &o->loc);
    uint32_t n = o->ncontained;
    mt_refinfo *inner = o->contained;
    o->contained = NULL;
    o->ncontained = 0;
    bool anchor = o->anchor;
    mt_oid id = o->id;
    obj_destroy(c, o);
    if (anchor) c->hooks->anchor_freed(c, &id);
    /* The value held credits on the refs inside it. */
    for (uint32_t i = 0; i < n; i++) do_obj_credit_ref(c, &inner[i], -1);
    free(inner);
}

void mt_obj_incref(mt_core *c, mt_obj *o)
{
    pthread_mutex_lock(&c->mu);
    o->local++;
    pthread_mutex_unlock(&c->mu);
}

void mt_obj_decref(mt_core *c, mt_obj *o)
{
    pthread_mutex_lock(&c->mu);
    mt_assert(o->local > 0);
    if (--o->local == 0) do_obj_maybe_free(c, o);
    pthread_mutex_unlock(&c->mu);
}

/* ---------------------------------------------------------------- credits */

void do_obj_credit(mt_core *c, mt_obj *o, int delta)
{
    if (!o->owner) {
        o->credits += delta;
        do_obj_maybe_free(c, o);
        return;
    }
    Manta__Credit m = MANTA__CREDIT__INIT;
    m.object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
    m.delta = delta;
    send_to_owner(c, o, MANTA__MSG_TYPE__MSG_CREDIT, &m.base, false);
}

void do_obj_credit_ref(mt_core *c, const mt_refinfo *r, int delta)
{
    if (!r->owner) {
        mt_obj *o = do_obj_find(c, &r->id);
        if (o) do_obj_credit(c, o, delta);
        return;
    }
    if (r->owner->dead) return;
    mt_conn *conn = do_loop_peer_conn(c, r->owner);
    if (!conn) return;
    Manta__Credit m = MANTA__CREDIT__INIT;
    m.object_id = MT_BIN(r->id.b, MT_OBJECT_ID_LEN);
    m.delta = delta;
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_CREDIT, &m.base);
}

/* Record the refs inside o's value and take a credit on each. */
static void set_contained(mt_core *c, mt_obj *o, mt_obj *const *inner, size_t n, bool add_credit)
{
    if (!n) return;
    o->contained = mt_calloc(n, sizeof *o->contained);
    o->ncontained = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        o->contained[i].id = inner[i]->id;
        o->contained[i].owner = inner[i]->owner;
        if (add_credit) do_obj_credit(c, inner[i], +1);
    }
}

/* ---------------------------------------------------------------- futures */

typedef struct mt_watch {
    mt_getter g; /* first: the object's link points here */
    mt_glink link;
    uint64_t token;
} mt_watch;

static void push_token(mt_core *c, uint64_t token)
{
    if (c->nready == c->ready_cap) {
        c->ready_cap = c->ready_cap ? c->ready_cap * 2 : 64;
        c->ready_tokens = mt_realloc(c->ready_tokens, c->ready_cap * sizeof *c->ready_tokens);
    }
    c->ready_tokens[c->nready++] = token;
    do_loop_notify(c);
}

static void watch_fired(mt_core *c, mt_watch *w)
{
    push_token(c, w->token);
    free(w);
}

void mt_core_watch(mt_core *c, mt_obj *o, uint64_t token)
{
    pthread_mutex_lock(&c->mu);
    if (o->state != MT_OBJ_READY) do_obj_want(c, o);
    if (o->state == MT_OBJ_READY) {
        push_token(c, token);
    } else {
        mt_watch *w = mt_calloc(1, sizeof *w);
        w->g.remaining = 1;
        w->g.watch = true;
        w->token = token;
        w->link.g = &w->g;
        w->link.next = o->getters;
        o->getters = &w->link;
    }
    pthread_mutex_unlock(&c->mu);
}

int mt_core_next_ready(mt_core *c, double timeout, uint64_t *tokens, size_t cap)
{
    double deadline = timeout < 0 ? -1 : mt_now_s() + timeout;
    pthread_mutex_lock(&c->mu);
    while (!c->nready && !c->stopping && !c->daemon_lost)
        if (do_loop_wait(c, deadline) == MANTA_ETIMEDOUT) break;
    int n = -1;
    if (c->nready || (!c->stopping && !c->daemon_lost)) {
        n = (int)MT_MIN(cap, c->nready);
        memcpy(tokens, c->ready_tokens, (size_t)n * sizeof *tokens);
        memmove(c->ready_tokens, c->ready_tokens + n, (c->nready - (size_t)n) * sizeof *tokens);
        c->nready -= (size_t)n;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---------------------------------------------------------------- readiness */

static void fill_return(const mt_obj *o, Manta__ReturnObject *r)
{
    manta__return_object__init(r);
    if (o->in_plasma) {
        r->kind = MANTA__RETURN_KIND__RET_PLASMA;
    } else if (o->value) {
        r->kind = MANTA__RETURN_KIND__RET_INLINE;
        r->data = MT_BIN(o->value->data, o->value->size);
    }
}

static void reply_wait(mt_core *c, mt_obj *o, mt_conn *conn, uint64_t req, int status)
{
    Manta__ObjWaitReply m = MANTA__OBJ_WAIT_REPLY__INIT;
    Manta__ReturnObject r;
    Manta__Address loc;
    char ep[256];
    m.request_id = req;
    m.object_id = MT_BIN(o ? o->id.b : (uint8_t *)"", o ? MT_OBJECT_ID_LEN : 0);
    m.status = status;
    if (o && !status) {
        fill_return(o, &r);
        m.value = &r;
        if (o->in_plasma) {
            /* Where the copy is: a node id (zero: ours, the owner's). */
            do_loop_address(c, &loc, ep, sizeof ep);
            if (o->loc.b[0] || memcmp(o->loc.b, o->loc.b + 1, MT_NODE_ID_LEN - 1))
                loc.node_id = MT_BIN(o->loc.b, MT_NODE_ID_LEN);
            r.size = o->size;
            m.location = &loc;
        }
    }
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_OBJ_WAIT_REPLY, &m.base);
}

void do_obj_set_ready(mt_core *c, mt_obj *o)
{
    o->state = MT_OBJ_READY;
    for (mt_glink *l = o->getters, *next; l; l = next) {
        next = l->next;
        if (l->g->remaining && --l->g->remaining == 0 && l->g->watch)
            watch_fired(c, (mt_watch *)l->g);
    }
    o->getters = NULL;
    for (mt_obj_waiter *w = o->waiters, *next; w; w = next) {
        next = w->next;
        reply_wait(c, o, w->conn, w->request_id, 0);
        mt_conn_unref(w->conn);
        free(w);
    }
    o->waiters = NULL;
    c->hooks->obj_ready(c, o);
    do_loop_notify(c);
}

/* Ask the owner of a borrowed object to tell us when it is ready
 * (`lost_at`: the copy we were told of, on that node, is gone). */
static void ask_owner(mt_core *c, mt_obj *o, const mt_nid *lost_at)
{
    if (o->wait_sent || o->state == MT_OBJ_READY || !o->owner) return;
    mt_conn *conn = o->owner->dead ? NULL : do_loop_peer_conn(c, o->owner);
    if (!conn) {
        o->value = mt_value_error(MANTA_EOWNERDIED, "the owner of object %s died", "");
        do_obj_set_ready(c, o);
        return;
    }
    Manta__ObjWait m = MANTA__OBJ_WAIT__INIT;
    m.object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
    if (lost_at) m.lost_at = MT_BIN(lost_at->b, MT_NODE_ID_LEN);
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_OBJ_WAIT, &m.base);
    o->wait_sent = true;
}

static void request_from_owner(mt_core *c, mt_obj *o) { ask_owner(c, o, NULL); }

/* Where o's store copy is (our node when unset). */
static mt_nid obj_loc(const mt_core *c, const mt_obj *o)
{
    static const mt_nid zero;
    return MT_ID_EQ(o->loc, zero) ? c->nid : o->loc;
}

void do_obj_lost(mt_core *c, mt_obj *o, const mt_nid *at)
{
    if (!o->in_plasma || o->value || o->state != MT_OBJ_READY) return;
    mt_nid loc = obj_loc(c, o);
    if (!MT_ID_EQ(loc, *at)) return; /* we know of another copy already */
    char hex[2 * MT_OBJECT_ID_LEN + 1];
    mt_hex(o->id.b, MT_OBJECT_ID_LEN, hex);
    o->in_plasma = false;
    o->state = MT_OBJ_PENDING;
    if (o->owner) {
        /* The owner rebuilds it, or tells us it cannot. */
        o->wait_sent = false;
        ask_owner(c, o, at);
        return;
    }
    if (c->hooks->obj_rebuild(c, o)) {
        mt_debug("object %s was lost with its node; running its task again", hex);
        return;
    }
    if (o->lineage)
        o->value = mt_value_error(MANTA_ERECONSTRUCT,
                                  "Object %s was lost with the node that held it, and the task "
                                  "that made it has no retries left to make it again.",
                                  hex);
    else
        o->value = mt_value_error(MANTA_EOBJLOST,
                                  "Object %s was lost: the node that held its only copy died, and "
                                  "it was put rather than made by a task, so it cannot be rebuilt.",
                                  hex);
    do_obj_set_ready(c, o);
}

bool do_obj_node_is_dead(const mt_core *c, const mt_nid *nid)
{
    for (size_t i = 0; i < c->ndead_nodes; i++)
        if (MT_ID_EQ(c->dead_nodes[i], *nid)) return true;
    return false;
}

void do_obj_node_died(mt_core *c, const mt_nid *nid)
{
    if (do_obj_node_is_dead(c, nid) || MT_ID_EQ(*nid, c->nid)) return;
    c->dead_nodes = mt_realloc(c->dead_nodes, (c->ndead_nodes + 1) * sizeof *c->dead_nodes);
    c->dead_nodes[c->ndead_nodes++] = *nid;
    /* Its processes are gone. */
    size_t it = 0;
    mt_peer *p;
    while ((p = mt_map_next(&c->peers, &it))) {
        if (p->dead || !MT_ID_EQ(p->nid, *nid)) continue;
        p->dead = true;
        if (!p->death_reason) p->death_reason = MANTA__DEATH_REASON__DEATH_EXITED;
        c->hooks->peer_died(c, p);
    }
    mt_rdaemon *d = mt_map_get(&c->rdaemons, nid->b);
    if (d) mt_conn_close(d->conn, MANTA_ECONN);
    /* And the copies it held. */
    size_t n;
    void **items = mt_map_items(&c->objs, &n);
    for (size_t i = 0; i < n; i++) {
        mt_obj *o = items[i];
        if (mt_map_get(&c->objs, o->id.b) != o) continue; /* freed meanwhile */
        do_obj_lost(c, o, nid);
    }
    free(items);
}

/* Start whatever makes `o` ready; called before waiting for it. */
void do_obj_want(mt_core *c, mt_obj *o) { request_from_owner(c, o); }

static void owner_died_error(mt_obj *o)
{
    char hex[2 * MT_OBJECT_ID_LEN + 1];
    if (o->value) return;
    o->value = mt_value_error(MANTA_EOWNERDIED,
                              "The owner of object %s died before the object could be fetched",
                              mt_hex(o->id.b, MT_OBJECT_ID_LEN, hex));
}

void do_obj_peer_died(mt_core *c, mt_peer *p)
{
    do_loop_rpc_fail_peer(c, p);
    size_t n;
    void **items = mt_map_items(&c->objs, &n);
    for (size_t i = 0; i < n; i++) {
        mt_obj *o = items[i];
        if (o->owner == p) {
            /* We borrowed it: the owner is gone, the value with it. */
            if (o->state != MT_OBJ_READY) {
                owner_died_error(o);
                o->in_plasma = false;
                do_obj_set_ready(c, o);
            }
            o->borrow_state = false;
            continue;
        }
        if (o->owner) continue;
        for (uint32_t j = 0; j < o->nborrowers; j++) {
            if (!MT_ID_EQ(o->borrowers[j], p->wid)) continue;
            o->borrowers[j] = o->borrowers[--o->nborrowers];
            do_obj_maybe_free(c, o);
            break;
        }
    }
    free(items);
}

/* ---------------------------------------------------------------- messages */

static int read_oid(const ProtobufCBinaryData *b, mt_oid *out)
{
    if (b->len != MT_OBJECT_ID_LEN) return mt_err(MANTA_EPROTO, "missing object id");
    memcpy(out->b, b->data, MT_OBJECT_ID_LEN);
    return 0;
}

int do_obj_on_wait(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__ObjWait *m = (const Manta__ObjWait *)msg;
    mt_oid id;
    if (read_oid(&m->object_id, &id)) return MANTA_EPROTO;
    mt_obj *o = do_obj_find(c, &id);
    if (!o || o->owner) {
        reply_wait(c, NULL, conn, m->request_id, MANTA_EOBJLOST);
        return 0;
    }
    if (m->lost_at.len == MT_NODE_ID_LEN) {
        /* A borrower found the copy gone: rebuild it (or fail it) first. */
        mt_nid at;
        memcpy(at.b, m->lost_at.data, MT_NODE_ID_LEN);
        do_obj_lost(c, o, &at);
    }
    if (o->state == MT_OBJ_READY) {
        reply_wait(c, o, conn, m->request_id, 0);
        return 0;
    }
    mt_obj_waiter *w = mt_calloc(1, sizeof *w);
    w->conn = conn;
    mt_conn_ref(conn);
    w->request_id = m->request_id;
    w->next = o->waiters;
    o->waiters = w;
    return 0;
}

int do_obj_on_wait_reply(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__ObjWaitReply *m = (const Manta__ObjWaitReply *)msg;
    MT_UNUSED(conn);
    mt_oid id;
    if (m->object_id.len != MT_OBJECT_ID_LEN) return 0; /* a lost object we no longer track */
    memcpy(id.b, m->object_id.data, MT_OBJECT_ID_LEN);
    mt_obj *o = do_obj_find(c, &id);
    if (!o || o->state == MT_OBJ_READY) return 0;
    if (m->status || !m->value) {
        char hex[2 * MT_OBJECT_ID_LEN + 1];
        o->value = mt_value_error(MANTA_EOBJLOST, "object %s was lost: its owner no longer has it",
                                  mt_hex(id.b, MT_OBJECT_ID_LEN, hex));
    } else if (m->value->kind == MANTA__RETURN_KIND__RET_PLASMA) {
        o->in_plasma = true;
        o->size = m->value->size;
        if (m->location && m->location->node_id.len == MT_NODE_ID_LEN)
            memcpy(o->loc.b, m->location->node_id.data, MT_NODE_ID_LEN);
    } else {
        o->value = mt_value_copy(m->value->data.data, m->value->data.len);
    }
    do_obj_set_ready(c, o);
    return 0;
}

static void add_borrower(mt_obj *o, const mt_wid *w)
{
    for (uint32_t i = 0; i < o->nborrowers; i++)
        if (MT_ID_EQ(o->borrowers[i], *w)) return;
    o->borrowers = mt_realloc(o->borrowers, (o->nborrowers + 1) * sizeof *o->borrowers);
    o->borrowers[o->nborrowers++] = *w;
}

static int borrow_one(mt_core *c, const ProtobufCBinaryData *b, const mt_wid *w)
{
    mt_oid id;
    if (read_oid(b, &id)) return MANTA_EPROTO;
    mt_obj *o = do_obj_find(c, &id);
    if (!o || o->owner) return MANTA_EOBJLOST;
    add_borrower(o, w);
    return 0;
}

int do_obj_on_add_borrower(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__AddBorrower *m = (const Manta__AddBorrower *)msg;
    if (!m->borrower || m->borrower->worker_id.len != MT_WORKER_ID_LEN)
        return mt_err(MANTA_EPROTO, "AddBorrower without a borrower");
    mt_wid w;
    memcpy(w.b, m->borrower->worker_id.data, MT_WORKER_ID_LEN);
    do_loop_peer_from_proto(c, m->borrower); /* know where it lives */
    Manta__AddBorrowerAck ack = MANTA__ADD_BORROWER_ACK__INIT;
    ack.request_id = m->request_id;
    int32_t *st = NULL;
    if (m->object_id.len) {
        ack.status = borrow_one(c, &m->object_id, &w);
        if (ack.status == MANTA_EPROTO) return mt_err(MANTA_EPROTO, "AddBorrower: bad object id");
    }
    if (m->n_object_ids) {
        st = mt_calloc(m->n_object_ids, sizeof *st);
        for (size_t i = 0; i < m->n_object_ids; i++) {
            st[i] = borrow_one(c, &m->object_ids[i], &w);
            if (st[i] == MANTA_EPROTO) {
                free(st);
                return mt_err(MANTA_EPROTO, "AddBorrower: bad object id");
            }
        }
        ack.statuses = st;
        ack.n_statuses = m->n_object_ids;
    }
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_ADD_BORROWER_ACK, &ack.base);
    free(st);
    return 0;
}

int do_obj_on_remove_borrower(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__RemoveBorrower *m = (const Manta__RemoveBorrower *)msg;
    MT_UNUSED(conn);
    mt_oid id;
    if (read_oid(&m->object_id, &id) || m->borrower_id.len != MT_WORKER_ID_LEN)
        return mt_err(MANTA_EPROTO, "bad RemoveBorrower");
    mt_obj *o = do_obj_find(c, &id);
    if (!o || o->owner) return 0;
    for (uint32_t i = 0; i < o->nborrowers; i++) {
        if (memcmp(o->borrowers[i].b, m->borrower_id.data, MT_WORKER_ID_LEN)) continue;
        o->borrowers[i] = o->borrowers[--o->nborrowers];
        do_obj_maybe_free(c, o);
        break;
    }
    return 0;
}

int do_obj_on_credit(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__Credit *m = (const Manta__Credit *)msg;
    MT_UNUSED(conn);
    mt_oid id;
    if (read_oid(&m->object_id, &id)) return MANTA_EPROTO;
    if (m->delta < -1000000 || m->delta > 1000000) return mt_err(MANTA_EPROTO, "absurd credit");
    mt_obj *o = do_obj_find(c, &id);
    if (o && !o->owner) do_obj_credit(c, o, m->delta);
    return 0;
}

int do_obj_on_borrower_ack(mt_core *c, mt_conn *conn, const ProtobufCMessage *msg)
{
    const Manta__AddBorrowerAck *a = (const Manta__AddBorrowerAck *)msg;
    MT_UNUSED(conn);
    do_loop_rpc_complete(c, a->request_id, MANTA__MSG_TYPE__MSG_ADD_BORROWER_ACK, NULL, 0, a->status);
    return 0;
}

/* ---------------------------------------------------------------- refs on the wire */

void mt_core_ref_owner(mt_core *c, const mt_obj *o, Manta__Address *a, char *buf, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    if (!o->owner) {
        do_loop_address(c, a, buf, cap);
    } else {
        mt_loop_peer_address(o->owner, a);
        snprintf(buf, cap, "%s", a->endpoint);
        a->endpoint = buf;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Register as a borrower and wait for the owner's answer. */
static int register_borrow(mt_core *c, mt_obj *o)
{
    mt_conn *conn = do_loop_peer_conn(c, o->owner);
    if (!conn) return MANTA_EOWNERDIED;
    mt_rpc *r = do_loop_rpc_new(c);
    r->peer = o->owner;
    Manta__AddBorrower m = MANTA__ADD_BORROWER__INIT;
    Manta__Address a;
    char ep[256];
    do_loop_address(c, &a, ep, sizeof ep);
    m.request_id = r->id;
    m.object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
    m.borrower = &a;
    mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_ADD_BORROWER, &m.base);
    int rc = do_loop_rpc_wait(c, r, mt_now_s() + 60);
    do_loop_rpc_free(c, r);
    return rc == MANTA_ECONN ? MANTA_EOWNERDIED : rc;
}

mt_obj *mt_core_ref_from_wire(mt_core *c, const mt_oid *id, const Manta__Address *owner, int *err)
{
    *err = 0;
    pthread_mutex_lock(&c->mu);
    bool ours = !owner || owner->worker_id.len != MT_WORKER_ID_LEN ||
                !memcmp(owner->worker_id.data, c->wid.b, MT_WORKER_ID_LEN);
    mt_obj *o = do_obj_find(c, id);
    if (o) {
        o->local++;
        pthread_mutex_unlock(&c->mu);
        return o;
    }
    if (ours) {
        /* Our own object, but we no longer have it: it was freed. */
        o = obj_new(c, id, NULL);
        char hex[2 * MT_OBJECT_ID_LEN + 1];
        o->value = mt_value_error(MANTA_EOBJLOST, "object %s was already freed",
                                  mt_hex(id->b, MT_OBJECT_ID_LEN, hex));
        o->state = MT_OBJ_READY;
        o->local = 1;
        pthread_mutex_unlock(&c->mu);
        return o;
    }
    o = obj_new(c, id, do_loop_peer_from_proto(c, owner));
    o->local = 1;
    int rc = register_borrow(c, o);
    if (rc == 0) {
        o->borrow_state = true;
    } else if (o->state != MT_OBJ_READY) {
        if (rc == MANTA_EOWNERDIED) owner_died_error(o);
        else
            o->value = mt_value_error(MANTA_EOBJLOST, "the owner no longer has this object");
        do_obj_set_ready(c, o);
    }
    pthread_mutex_unlock(&c->mu);
    return o;
}

/* ---------------------------------------------------------------- deferred borrows */

mt_obj *mt_core_ref_from_wire_deferred(mt_core *c, const mt_oid *id, const Manta__Address *owner)
{
    pthread_mutex_lock(&c->mu);
    bool ours = !owner || owner->worker_id.len != MT_WORKER_ID_LEN ||
                !memcmp(owner->worker_id.data, c->wid.b, MT_WORKER_ID_LEN);
    mt_obj *o = do_obj_find(c, id);
    if (o || ours) {
        pthread_mutex_unlock(&c->mu);
        int err;
        return mt_core_ref_from_wire(c, id, owner, &err);
    }
    o = obj_new(c, id, do_loop_peer_from_proto(c, owner));
    o->local = 1;
    o->borrow_state = true; /* on its way: a later RemoveBorrower follows it */
    o->borrow_queued = true;
    if (c->bq_n == c->bq_cap) {
        c->bq_cap = c->bq_cap ? 2 * c->bq_cap : 64;
        c->bq = mt_realloc(c->bq, c->bq_cap * sizeof *c->bq);
    }
    c->bq[c->bq_n++] = o;
    pthread_mutex_unlock(&c->mu);
    return o;
}

/* Send the queued registrations: one AddBorrower per owner. */
void do_obj_borrow_send(mt_core *c)
{
    Manta__Address self;
    char ep[256];
    do_loop_address(c, &self, ep, sizeof ep);
    for (size_t i = 0; i < c->bq_n; i++) {
        mt_obj *o = c->bq[i];
        if (!o || !o->borrow_queued) continue;
        mt_peer *owner = o->owner;
        mt_borrow_batch *b = mt_calloc(1, sizeof *b);
        b->ids = mt_calloc(c->bq_n - i, sizeof *b->ids);
        ProtobufCBinaryData *bins = mt_calloc(c->bq_n - i, sizeof *bins);
        for (size_t j = i; j < c->bq_n; j++) {
            mt_obj *q = c->bq[j];
            if (!q || !q->borrow_queued || q->owner != owner) continue;
            q->borrow_queued = false;
            b->ids[b->n] = q->id;
            bins[b->n] = MT_BIN(b->ids[b->n].b, MT_OBJECT_ID_LEN);
            b->n++;
            c->bq[j] = NULL;
        }
        mt_conn *conn = owner->dead ? NULL : do_loop_peer_conn(c, owner);
        if (conn) {
            b->rpc = do_loop_rpc_new(c);
            b->rpc->peer = owner;
            Manta__AddBorrower m = MANTA__ADD_BORROWER__INIT;
            m.request_id = b->rpc->id;
            m.object_ids = bins;
            m.n_object_ids = b->n;
            m.borrower = &self;
            mt_conn_send_now(conn, MANTA__MSG_TYPE__MSG_ADD_BORROWER, &m.base);
        }
        free(bins);
        b->next = c->batches;
        c->batches = b;
    }
    c->bq_n = 0;
}

void mt_core_borrow_sync(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    do_obj_borrow_send(c);
    mt_borrow_batch *list = c->batches;
    c->batches = NULL;
    double deadline = mt_now_s() + 60;
    while (list) {
        mt_borrow_batch *b = list;
        list = b->next;
        Manta__AddBorrowerAck *ack = NULL;
        int rc = b->rpc ? do_loop_rpc_wait(c, b->rpc, deadline) : MANTA_EOWNERDIED;
        if (!rc) ack = manta__add_borrower_ack__unpack(NULL, b->rpc->len, b->rpc->payload);
        if (b->rpc) do_loop_rpc_free(c, b->rpc);
        for (size_t i = 0; i < b->n; i++) {
            int st = !ack ? MANTA_EOWNERDIED : i < ack->n_statuses ? ack->statuses[i] : ack->status;
            if (!st) continue;
            mt_obj *o = do_obj_find(c, &b->ids[i]);
            if (!o || !o->owner) continue;
            o->borrow_state = false;
            if (o->state == MT_OBJ_READY) continue;
            if (st == MANTA_EOWNERDIED || st == MANTA_ECONN) owner_died_error(o);
            else o->value = mt_value_error(MANTA_EOBJLOST, "the owner no longer has this object");
            do_obj_set_ready(c, o);
        }
        if (ack) manta__add_borrower_ack__free_unpacked(ack, NULL);
        free(b->ids);
        free(b);
    }
    pthread_mutex_unlock(&c->mu);
}

/* The worker is about to sleep in get()/wait(): its node lends its CPU to
 * another worker meanwhile (and takes it back). */
static void set_blocked(mt_core *c, bool blocked)
{
    if (c->role != MANTA__ROLE__ROLE_WORKER || c->blocked_sent == blocked) return;
    c->blocked_sent = blocked;
    Manta__WorkerBlocked m = MANTA__WORKER_BLOCKED__INIT;
    m.blocked = blocked;
    do_loop_send_daemon(c, blocked ? MANTA__MSG_TYPE__MSG_WORKER_BLOCKED
                              : MANTA__MSG_TYPE__MSG_WORKER_UNBLOCKED,
                   &m.base);
}

/* ---------------------------------------------------------------- get / wait */

static bool obj_ready(const mt_obj *o) { return o->state == MT_OBJ_READY; }

/* Map the store objects among `objs` that we have not pinned yet. */
static int fetch_plasma(mt_core *c, mt_obj *const *objs, size_t n, double deadline)
{
    mt_oid *ids = mt_calloc(n, sizeof *ids);
    mt_obj **which = mt_calloc(n, sizeof *which);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        mt_obj *o = objs[i];
        if (!o->in_plasma || o->value) continue;
        bool dup = false;
        for (size_t j = 0; j < k; j++) dup |= which[j] == o;
        if (dup) continue;
        which[k] = o;
        ids[k++] = o->id;
    }
    int rc = 0;
    if (k) {
        mt_value **vals = mt_calloc(k, sizeof *vals);
        mt_nid *locs = mt_calloc(k, sizeof *locs);
        int *status = mt_calloc(k, sizeof *status);
        for (size_t j = 0; j < k; j++) locs[j] = which[j]->loc;
        rc = do_plasma_get(c, ids, locs, k, deadline, vals, status);
        bool only_lost = rc == MANTA_EOBJLOST;
        for (size_t j = 0; j < k; j++) {
            if (status[j] == MANTA_EOBJLOST) {
                do_obj_lost(c, which[j], &locs[j]); /* rebuilt, or an error value */
                continue;
            }
            if (status[j]) only_lost = false;
            if (!vals[j]) continue;
            if (which[j]->value) mt_value_unref(vals[j]); /* raced with another getter */
            else which[j]->value = vals[j];
        }
        free(vals);
        free(locs);
        free(status);
        if (only_lost) rc = 0; /* the caller waits for them again */
    }
    free(ids);
    free(which);
    return rc;
}

/* Link a getter to every object of `objs` that is not ready yet. */
static mt_glink *watch(mt_core *c, mt_obj *const *objs, size_t n, mt_getter *g)
{
    mt_glink *links = mt_calloc(n + 1, sizeof *links);
    g->remaining = 0;
    for (size_t i = 0; i < n; i++) {
        mt_obj *o = objs[i];
        if (o->state == MT_OBJ_READY) continue;
        do_obj_want(c, o);
        if (o->state == MT_OBJ_READY) continue;
        links[i].g = g;
        links[i].next = o->getters;
        o->getters = &links[i];
        g->remaining++;
    }
    return links;
}

static void unwatch(mt_obj *const *objs, size_t n, mt_glink *links)
{
    for (size_t i = 0; i < n; i++) {
        if (!links[i].g || objs[i]->state == MT_OBJ_READY) continue;
        for (mt_glink **pp = &objs[i]->getters; *pp; pp = &(*pp)->next) {
            if (*pp == &links[i]) {
                *pp = links[i].next;
                break;
            }
        }
    }
    free(links);
}

int mt_core_get(mt_core *c, mt_obj *const *objs, size_t n, double timeout, mt_value **values)
{
    double deadline = timeout < 0 ? -1 : mt_now_s() + timeout;
    int rc = 0;
    bool blocked = false;
    mt_getter g = {0};
    pthread_mutex_lock(&c->mu);
    for (;;) {
        mt_glink *links = watch(c, objs, n, &g);
        while (g.remaining) {
            if (c->daemon_lost) {
                rc = do_loop_node_lost(c);
                break;
            }
            if (!blocked && mt_loop_tl_task) {
                set_blocked(c, true);
                blocked = true;
            }
            if (do_loop_wait(c, deadline) == MANTA_ETIMEDOUT && g.remaining) {
                rc = MANTA_ETIMEDOUT;
                break;
            }
        }
        unwatch(objs, n, links);
        if (!rc) rc = fetch_plasma(c, objs, n, deadline);
        /* A copy lost with its node is being made again: wait for it. */
        bool again = false;
        for (size_t i = 0; !rc && i < n; i++) again |= objs[i]->state != MT_OBJ_READY;
        if (!again) break;
    }
    if (blocked) set_blocked(c, false);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!objs[i]->value) {
            rc = mt_err(MANTA_EOBJLOST, "object has no value");
            break;
        }
        values[i] = objs[i]->value;
        mt_value_ref(values[i]);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            if (values[i]) mt_value_unref(values[i]);
            values[i] = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int mt_core_wait(mt_core *c, mt_obj *const *objs, size_t n, size_t num_ready, double timeout,
                 bool fetch_local, uint8_t *ready)
{
    double deadline = timeout < 0 ? -1 : mt_now_s() + timeout;
    bool blocked = false;
    mt_getter g = {0};
    MT_UNUSED(fetch_local); /* one node: every object is local once ready */
    pthread_mutex_lock(&c->mu);
    mt_glink *links = watch(c, objs, n, &g);
    size_t need = n - MT_MIN(num_ready, n);
    while (g.remaining > need && !c->daemon_lost) {
        if (!blocked && mt_loop_tl_task) {
            set_blocked(c, true);
            blocked = true;
        }
        if (do_loop_wait(c, deadline) == MANTA_ETIMEDOUT) break;
    }
    unwatch(objs, n, links);
    size_t count = 0;
    for (size_t i = 0; i < n; i++) {
        ready[i] = obj_ready(objs[i]);
        count += ready[i];
    }
    if (blocked) set_blocked(c, false);
    pthread_mutex_unlock(&c->mu);
    return (int)count;
}

/* ---------------------------------------------------------------- put */

int mt_core_put_begin(mt_core *c, uint64_t size, mt_put *p, uint8_t **data)
{
    memset(p, 0, sizeof *p);
    p->size = size;
    pthread_mutex_lock(&c->mu);
    mt_tid t = do_loop_new_task_id(c);
    p->id = mt_oid_for(&t, 0);
    int rc = 0;
    if (size <= (uint64_t)mt_cfg.max_inline_bytes) {
        p->value = mt_value_new(size);
        *data = p->value->data;
    } else {
        p->plasma = true;
        rc = do_plasma_create(c, &p->id, size, &c->wid, &c->nid, c->endpoint, data);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void mt_core_put_abort(mt_core *c, mt_put *p)
{
    pthread_mutex_lock(&c->mu);
    if (p->plasma) do_plasma_abort(c, &p->id);
    pthread_mutex_unlock(&c->mu);
    if (p->value) mt_value_unref(p->value);
    p->value = NULL;
}

int mt_core_put_end(mt_core *c, mt_put *p, mt_obj *const *contained, size_t ncontained,
                    mt_obj **out)
{
    pthread_mutex_lock(&c->mu);
    mt_obj *o = obj_new(c, &p->id, NULL);
    if (p->plasma) {
        do_plasma_seal(c, &p->id);
        o->in_plasma = true;
        o->loc = c->nid;
        o->size = p->size;
    } else {
        o->value = p->value;
        p->value = NULL;
    }
    set_contained(c, o, contained, ncontained, true);
    o->local = 1;
    o->state = MT_OBJ_READY;
    pthread_mutex_unlock(&c->mu);
    *out = o;
    return 0;
}

/* Copy our in-line value of o into the store (it stays in memory too).
 * Lock held; it is let go while the store answers. */
static int copy_to_store(mt_core *c, mt_obj *o)
{
    mt_value *v = o->value;
    mt_value_ref(v);
    o->copying = true;
    uint8_t *dst;
    int rc = do_plasma_create(c, &o->id, v->size, &c->wid, &c->nid, c->endpoint, &dst);
    o->copying = false;
    if (!rc) {
        memcpy(dst, v->data, v->size);
        do_plasma_seal(c, &o->id);
        o->in_plasma = true;
        o->loc = c->nid;
        o->size = v->size;
    }
    mt_value_unref(v);
    return rc;
}

int do_obj_args_fit(mt_core *c, const mt_targ *args, uint32_t nargs)
{
    uint64_t budget = mt_cfg_inline_task_bytes(), used = 0;
    for (uint32_t i = 0; i < nargs; i++) {
        mt_obj *o = args[i].ref;
        uint64_t size = o ? (o->value ? o->value->size : 0) : args[i].size;
        if (o && (o->state != MT_OBJ_READY || o->in_plasma || !o->value)) continue;
        if (used <= budget && size <= budget - used) {
            used += size;
            continue;
        }
        /* Only what we own can be stored under its id by us; one copied
         * by another thread right now will be in the store by send time. */
        if (!o || o->owner || o->copying || mt_value_is_error(o->value, NULL)) continue;
        int rc = copy_to_store(c, o);
        if (rc) return rc;
    }
    return 0;
}

/* Store a task's return (owner side), from a reply. */
void do_obj_set_return(mt_core *c, mt_obj *o, const Manta__ReturnObject *r, const mt_nid *loc)
{
    if (o->state == MT_OBJ_READY) return;
    if (r->kind == MANTA__RETURN_KIND__RET_PLASMA) {
        o->in_plasma = true;
        o->size = r->size;
        o->loc = *loc;
    } else {
        o->value = mt_value_copy(r->data.data, r->data.len);
    }
    if (r->n_contained) {
        o->contained = mt_calloc(r->n_contained, sizeof *o->contained);
        for (size_t i = 0; i < r->n_contained; i++) {
            const Manta__RefInfo *ri = r->contained[i];
            if (ri->object_id.len != MT_OBJECT_ID_LEN) continue;
            mt_refinfo *dst = &o->contained[o->ncontained++];
            memcpy(dst->id.b, ri->object_id.data, MT_OBJECT_ID_LEN);
            bool ours = !ri->owner || ri->owner->worker_id.len != MT_WORKER_ID_LEN ||
                        !memcmp(ri->owner->worker_id.data, c->wid.b, MT_WORKER_ID_LEN);
            dst->owner = ours ? NULL : do_loop_peer_from_proto(c, ri->owner);
        }
    }
    do_obj_set_ready(c, o);
}

/* Fail an object of ours (owner side) with a system error value. */
void do_obj_fail(mt_core *c, mt_obj *o, mt_value *err)
{
    if (o->state == MT_OBJ_READY) {
        mt_value_unref(err);
        return;
    }
    o->value = err;
    do_obj_set_ready(c, o);
}

/* ---------------------------------------------------------------- disconnect */

void do_obj_free_all(mt_core *c)
{
    size_t n;
    void **items = mt_map_items(&c->objs, &n);
    for (size_t i = 0; i < n; i++) {
        mt_obj *o = items[i];
        for (mt_glink *l = o->getters, *next; l; l = next) {
            next = l->next;
            if (l->g->watch) free(l->g); /* an unfired future's watch */
        }
        if (o->value) mt_value_unref(o->value);
        free(o->borrowers);
        free(o->contained);
        free(o->dependents);
        for (mt_obj_waiter *w = o->waiters, *next; w; w = next) {
            next = w->next;
            free(w);
        }
        free(o);
    }
    free(items);
    free(c->ready_tokens);
    mt_map_free(&c->objs);
    free(c->dead_nodes);
    free(c->bq);
    while (c->batches) {
        struct mt_borrow_batch *b = c->batches;
        c->batches = b->next;
        free(b->ids);
        free(b);
    }
}

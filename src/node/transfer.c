/* transfer.c -- objects between nodes.
 *
 * A get on this node for an object that another node holds starts a pull:
 * this daemon asks that node's daemon (over a NODE_PEER connection, one per
 * node) for the object in chunks of transfer_chunk_bytes, keeping up to
 * transfer_window requests in flight, and writes each chunk straight into
 * its own store.  Once every byte is in, the copy is sealed and the gets
 * waiting for it are answered like gets of any local object.  Concurrent
 * gets of one object share one pull.
 *
 * The serving node remembers which nodes copied an object, so that when
 * the owner frees it the copies go too (ObjFree is forwarded); a copy is
 * also dropped when its owner dies.  A pull whose source node dies, or
 * that finds the object gone, fails the waiting gets with MANTA_EOBJLOST:
 * the client asks the owner, which rebuilds the object if it can. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "config.h"
#include "mt.h"
#include "node.h"
#include "wire.h"

/* The store's creator id of copies being written by transfers. */
#define XFER_CID UINT32_MAX

typedef struct pull {
    mt_oid id; /* key */
    mt_nid from;
    uint64_t size, next_off, received;
    uint32_t inflight;
    bool created;
    double deadline;   /* waiting for room in the store until then */
    mt_wid owner;
} pull;

/* Nodes that copied an object from us. */
typedef struct copies {
    mt_oid id; /* key */
    mt_nid *nodes;
    uint32_t n;
} copies;

static mt_map pulls, copied;
static bool ready;
static mt_arena arena;

static void init_once(void)
{
    if (ready) return;
    mt_map_init(&pulls, offsetof(pull, id), sizeof(mt_oid));
    mt_map_init(&copied, offsetof(copies, id), sizeof(mt_oid));
    mt_arena_init(&arena);
    ready = true;
}

static uint64_t chunk_bytes(void) { return (uint64_t)MT_MAX(mt_cfg.transfer_chunk_bytes, 4096); }

/* ---------------------------------------------------------------- links */

static void pull_fail(mt_node *n, pull *p, int status);
static int on_link_frame(mt_conn *conn, const mt_frame *f, void *ud);

static void on_link_close(mt_conn *conn, int reason, void *ud)
{
    mt_node *n = ud;
    MT_UNUSED(reason);
    mt_rnode *r = conn->tag;
    if (r && r->link == conn) r->link = NULL;
    mt_conn_unref(conn);
    if (!r || n->stopping) return;
    /* Pulls from that node cannot finish. */
    size_t count;
    void **items = mt_map_items(&pulls, &count);
    for (size_t i = 0; i < count; i++) {
        pull *p = items[i];
        if (MT_ID_EQ(p->from, r->nid)) pull_fail(n, p, MANTA_EOBJLOST);
    }
    free(items);
}

/* Our connection to another node's daemon, opened on first use. */
static mt_conn *link_to(mt_node *n, mt_rnode *r)
{
    if (r->link) return r->link;
    if (!r->alive || !r->endpoint[0]) return NULL;
    /* Never wait here: this runs on the daemon's only thread, and a node
     * that drops our packets would stall every client of this one. */
    mt_conn *c;
    if (mt_conn_connect(&n->cl, r->endpoint, on_link_frame, on_link_close, n, &c)) {
        mt_warn("cannot reach node %s: %s", r->endpoint, manta_last_error());
        return NULL;
    }
    c->tag = r;
    snprintf(c->desc, sizeof c->desc, "link %.50s", r->endpoint);
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    h.token = MT_BIN(n->token, strlen(n->token));
    h.role = MANTA__ROLE__ROLE_NODE_PEER;
    h.pid = (uint32_t)getpid();
    h.node_id = MT_BIN(n->node_id.b, MT_NODE_ID_LEN);
    mt_conn_send(c, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    if (mt_conn_start(c)) {
        mt_conn_close(c, MANTA_ESYS);
        return NULL;
    }
    r->link = c;
    return c;
}

/* ---------------------------------------------------------------- pulling */

static void pull_free(pull *p)
{
    mt_map_del(&pulls, p->id.b);
    free(p);
}

static void pull_fail(mt_node *n, pull *p, int status)
{
    char hex[2 * MT_OBJECT_ID_LEN + 1];
    mt_debug("pull of %s failed: %s", mt_hex(p->id.b, MT_OBJECT_ID_LEN, hex), manta_strerror(status));
    if (p->created) mt_store_abort(n->store, &p->id, XFER_CID);
    mt_oid id = p->id;
    pull_free(p);
    mt_node_obj_failed(n, &id, status);
}

static void request_more(mt_node *n, pull *p)
{
    mt_rnode *r = mt_cluster_node(n, &p->from);
    mt_conn *c = r ? link_to(n, r) : NULL;
    if (!c) {
        pull_fail(n, p, MANTA_EOBJLOST);
        return;
    }
    while (p->inflight < (uint32_t)MT_MAX(mt_cfg.transfer_window, 1) && p->next_off < p->size) {
        Manta__ObjPull m = MANTA__OBJ_PULL__INIT;
        m.object_id = MT_BIN(p->id.b, MT_OBJECT_ID_LEN);
        m.offset = p->next_off;
        m.length = MT_MIN(chunk_bytes(), p->size - p->next_off);
        p->next_off += m.length;
        p->inflight++;
        mt_conn_send(c, MANTA__MSG_TYPE__MSG_OBJ_PULL, &m.base);
    }
    mt_conn_flush(c);
}

int mt_xfer_want(mt_node *n, const mt_oid *id, const mt_nid *from)
{
    init_once();
    if (mt_map_get(&pulls, id->b)) return 0; /* on its way */
    mt_rnode *r = mt_cluster_node(n, from);
    if (!r || !r->alive) return MANTA_EOBJLOST;
    mt_conn *c = link_to(n, r);
    if (!c) return MANTA_EOBJLOST;
    pull *p = mt_calloc(1, sizeof *p);
    p->id = *id;
    p->from = *from;
    mt_map_put(&pulls, p);
    /* The first chunk tells the size; the rest follow once room is made. */
    Manta__ObjPull m = MANTA__OBJ_PULL__INIT;
    m.object_id = MT_BIN(id->b, MT_OBJECT_ID_LEN);
    m.length = chunk_bytes();
    p->inflight = 1;
    mt_conn_send_now(c, MANTA__MSG_TYPE__MSG_OBJ_PULL, &m.base);
    return 0;
}

/* Room for the copy; MANTA_ENOMEM: not yet. */
static int pull_create(mt_node *n, pull *p)
{
    uint64_t off;
    int rc = mt_store_create(n->store, &p->id, p->size, &p->owner, XFER_CID, &off);
    if (rc == MANTA_EEXIST) {
        /* Someone put it here meanwhile (a local copy): nothing to fetch. */
        mt_oid id = p->id;
        pull_free(p);
        mt_node_obj_sealed(n, &id);
        return MANTA_EEXIST;
    }
    if (rc) return rc;
    p->created = true;
    return 0;
}

static void pull_finish(mt_node *n, pull *p)
{
    mt_oid id = p->id;
    mt_store_seal(n->store, &id, XFER_CID);
    pull_free(p);
    mt_node_obj_sealed(n, &id);
}

static void on_chunk(mt_node *n, const Manta__ObjChunk *m)
{
    if (m->object_id.len != MT_OBJECT_ID_LEN) return;
    pull *p = mt_map_get(&pulls, m->object_id.data);
    if (!p) return; /* failed or done meanwhile */
    if (p->inflight == 0) {
        pull_fail(n, p, MANTA_EOBJLOST); /* a chunk nobody asked for */
        return;
    }
    p->inflight--;
    if (m->status) {
        pull_fail(n, p, MANTA_EOBJLOST);
        return;
    }
    if (!p->created && p->received == 0 && m->offset == 0) {
        p->size = m->total_size;
        if (m->owner && m->owner->worker_id.len == MT_WORKER_ID_LEN)
            memcpy(p->owner.b, m->owner->worker_id.data, MT_WORKER_ID_LEN);
        p->next_off = m->data.len;
        int rc = pull_create(n, p);
        if (rc == MANTA_EEXIST) return;
        if (rc == MANTA_ENOMEM) {
            /* Wait for room (the tick retries); the first chunk is fetched again. */
            p->next_off = 0;
            p->deadline = mt_now_s() + (double)mt_cfg.store_full_wait_ms / 1000.0;
            return;
        }
        if (rc) {
            pull_fail(n, p, rc);
            return;
        }
    }
    /* Chunks come back in the order they were asked for, one link per
     * node: anything else (a repeat, a gap, a range past the end) is a
     * broken or hostile peer, and would leave holes or write out of the
     * object. */
    if (!p->created || m->offset != p->received || !mt_span_ok(m->offset, m->data.len, p->size)) {
        pull_fail(n, p, MANTA_EOBJLOST);
        return;
    }
    mt_store_obj *o = mt_store_find(n->store, &p->id);
    if (!o) {
        pull_fail(n, p, MANTA_EOBJLOST);
        return;
    }
    if (m->data.len) memcpy(mt_store_base(n->store) + o->offset + m->offset, m->data.data, m->data.len);
    p->received += m->data.len;
    if (p->received >= p->size) {
        pull_finish(n, p);
        return;
    }
    request_more(n, p);
}

static int on_link_frame(mt_conn *conn, const mt_frame *f, void *ud)
{
    mt_node *n = ud;
    char err[256];
    ProtobufCMessage *m;
    MT_UNUSED(conn);
    if (f->type == MANTA__MSG_TYPE__MSG_HELLO_REPLY) return 0;
    int rc = mt_wire_decode(f->type, f->payload, f->len, &arena, &m, err, sizeof err);
    if (rc) {
        mt_arena_reset(&arena);
        return mt_err(rc, "from a node: %s", err);
    }
    if (f->type == MANTA__MSG_TYPE__MSG_OBJ_CHUNK)
        on_chunk(n, (const Manta__ObjChunk *)m);
    else
        rc = mt_err(MANTA_EPROTO, "unexpected %s on a node link", mt_wire_name(f->type));
    mt_arena_reset(&arena);
    return rc;
}

/* ---------------------------------------------------------------- serving */

static void note_copy(const mt_oid *id, const mt_nid *nid)
{
    copies *cp = mt_map_get(&copied, id->b);
    if (!cp) {
        cp = mt_calloc(1, sizeof *cp);
        cp->id = *id;
        mt_map_put(&copied, cp);
    }
    for (uint32_t i = 0; i < cp->n; i++)
        if (MT_ID_EQ(cp->nodes[i], *nid)) return;
    cp->nodes = mt_realloc(cp->nodes, (cp->n + 1) * sizeof *cp->nodes);
    cp->nodes[cp->n++] = *nid;
}

static void serve_pull(mt_node *n, mt_client *c, const Manta__ObjPull *m)
{
    Manta__ObjChunk ch = MANTA__OBJ_CHUNK__INIT;
    ch.object_id = m->object_id;
    mt_oid id;
    if (m->object_id.len != MT_OBJECT_ID_LEN) return;
    memcpy(id.b, m->object_id.data, MT_OBJECT_ID_LEN);
    mt_store_obj *o = mt_store_find(n->store, &id);
    Manta__Address owner = MANTA__ADDRESS__INIT;
    if (!o || !o->sealed || m->offset > o->size) {
        ch.status = MANTA_ENOENT;
    } else {
        uint64_t len = MT_MIN(m->length, o->size - m->offset);
        ch.total_size = o->size;
        ch.offset = m->offset;
        ch.data = MT_BIN(mt_store_base(n->store) + o->offset + m->offset, len);
        owner.worker_id = MT_BIN(o->owner.b, MT_WORKER_ID_LEN);
        ch.owner = &owner;
        if (m->offset == 0) note_copy(&id, &c->nid);
    }
    mt_conn_send_now(c->conn, MANTA__MSG_TYPE__MSG_OBJ_CHUNK, &ch.base);
}

/* Free our copies of `ids` and tell the nodes that copied them. */
static void free_here(mt_node *n, const ProtobufCBinaryData *ids, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (ids[i].len != MT_OBJECT_ID_LEN) continue;
        mt_oid id;
        memcpy(id.b, ids[i].data, MT_OBJECT_ID_LEN);
        mt_store_free_primary(n->store, &id);
        copies *cp = ready ? mt_map_get(&copied, id.b) : NULL;
        if (!cp) continue;
        Manta__ObjFree f = MANTA__OBJ_FREE__INIT;
        ProtobufCBinaryData one = ids[i];
        f.object_ids = &one;
        f.n_object_ids = 1;
        for (uint32_t k = 0; k < cp->n; k++) {
            mt_rnode *r = mt_cluster_node(n, &cp->nodes[k]);
            mt_conn *c = r ? link_to(n, r) : NULL;
            if (c) mt_conn_send_now(c, MANTA__MSG_TYPE__MSG_OBJ_FREE, &f.base);
        }
        mt_map_del(&copied, id.b);
        free(cp->nodes);
        free(cp);
    }
}

int mt_xfer_free(mt_node *n, const Manta__ObjFree *m)
{
    init_once();
    if (m->location.len == MT_NODE_ID_LEN && memcmp(m->location.data, n->node_id.b, MT_NODE_ID_LEN)) {
        /* The objects sit on another node: pass the free on. */
        mt_nid nid;
        memcpy(nid.b, m->location.data, MT_NODE_ID_LEN);
        mt_rnode *r = mt_cluster_node(n, &nid);
        mt_conn *c = r ? link_to(n, r) : NULL;
        if (c) {
            Manta__ObjFree f = *m;
            f.location.len = 0;
            mt_conn_send_now(c, MANTA__MSG_TYPE__MSG_OBJ_FREE, &f.base);
        }
        return 0;
    }
    free_here(n, m->object_ids, m->n_object_ids);
    return 0;
}

int mt_xfer_handle(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m)
{
    init_once();
    switch (type) {
    case MANTA__MSG_TYPE__MSG_OBJ_PULL:
        serve_pull(n, c, (const Manta__ObjPull *)m);
        return 0;
    case MANTA__MSG_TYPE__MSG_OBJ_FREE: {
        const Manta__ObjFree *f = (const Manta__ObjFree *)m;
        free_here(n, f->object_ids, f->n_object_ids);
        return 0;
    }
    }
    return mt_err(MANTA_EPROTO, "unexpected %s from a node peer", mt_wire_name(type));
}

/* ---------------------------------------------------------------- events */

void mt_xfer_client_gone(mt_node *n, mt_client *c)
{
    MT_UNUSED(n), MT_UNUSED(c);
    /* A peer node's pulls hold no state here: every chunk is copied out
     * while its request is handled. */
}

void mt_xfer_node_dead(mt_node *n, const mt_nid *nid)
{
    if (!ready) return;
    size_t count;
    void **items = mt_map_items(&pulls, &count);
    for (size_t i = 0; i < count; i++) {
        pull *p = items[i];
        if (MT_ID_EQ(p->from, *nid)) pull_fail(n, p, MANTA_EOBJLOST);
    }
    free(items);
}

void mt_xfer_tick(mt_node *n)
{
    if (!ready) return;
    double now = mt_now_s();
    size_t count;
    void **items = mt_map_items(&pulls, &count);
    for (size_t i = 0; i < count; i++) {
        pull *p = items[i];
        if (p->created || p->deadline == 0 || p->inflight) continue;
        int rc = pull_create(n, p);
        if (rc == MANTA_EEXIST) continue;
        if (rc == MANTA_ENOMEM && now < p->deadline) continue;
        if (rc) {
            pull_fail(n, p, rc == MANTA_ENOMEM ? MANTA_ESTOREFULL : rc);
            continue;
        }
        request_more(n, p);
    }
    free(items);
}

void mt_xfer_free_all(mt_node *n)
{
    MT_UNUSED(n);
    if (!ready) return;
    size_t count;
    void **items = mt_map_items(&pulls, &count);
    for (size_t i = 0; i < count; i++) free(items[i]);
    free(items);
    items = mt_map_items(&copied, &count);
    for (size_t i = 0; i < count; i++) {
        copies *cp = items[i];
        free(cp->nodes);
        free(cp);
    }
    free(items);
    mt_map_free(&pulls);
    mt_map_free(&copied);
    mt_arena_free(&arena);
    ready = false;
}

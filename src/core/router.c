/* router.c -- the top of the client runtime: every frame that arrives goes
 * to its module through one table (message type -> handler), and the news
 * the lower layers raise through their hooks (a peer died, an object is
 * ready or was freed, a lease for an actor was granted, the tick) reaches
 * the modules above them here.  It also connects and sets those hooks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "router.h"
#include "mt.h"

/* ---------------------------------------------------------------- hooks */

static void on_peer_died(mt_core *c, mt_peer *p)
{
    do_actor_peer_died(c, p);
    do_sub_peer_died(c, p);
    do_obj_peer_died(c, p);
}

/* An object became ready: the tasks that waited only for it go -- a call
 * to its actor's queue (in submission order), a task to its class. */
static void on_obj_ready(mt_core *c, mt_obj *o)
{
    uint32_t n;
    mt_task **deps = do_task_take_dependents(o, &n);
    for (uint32_t i = 0; i < n; i++) {
        mt_task *t = deps[i];
        if (--t->ndeps) continue;
        if (t->actor) do_actor_pump(c, t->actor);
        else do_sub_task_ready(c, t);
    }
    free(deps);
}

static int on_actor_granted(mt_core *c, mt_actor *a, const Manta__LeaseGrant *g,
                            mt_conn *granted_by)
{
    if (g->status == 0) do_actor_set_daemon(c, a, granted_by);
    return do_actor_granted(c, a, g);
}

static void on_rdaemon_closed(mt_core *c, mt_conn *conn)
{
    do_sub_rdaemon_closed(c, conn);
    do_actor_daemon_closed(c, conn);
}

/* The store, mapped at connect: pins dropped from now on queue up for us. */
static int on_map_store(mt_core *c, int shm_fd, uint64_t size)
{
    int rc = mt_plasma_map(c, shm_fd, size);
    if (!rc) mt_plasma_start_releases(c);
    return rc;
}

static void on_tick(mt_core *c)
{
    do_exec_flush_held(c);
    do_sub_tick(c);
    do_actor_tick(c);
}

static void free_tables(mt_core *c)
{
    mt_plasma_stop_releases(c);
    do_exec_free_all(c);
    do_sub_free_all(c);
    do_task_free_all(c);
    do_actor_free_all(c);
    do_obj_free_all(c);
    mt_plasma_unmap(c);
}

/* ---------------------------------------------------------------- peer frames */

/* A PushTask outlives the frame: decode it with the default allocator and
 * hand it to exec.c, which frees it when its tasks are done. */
static int take_push(mt_core *c, mt_conn *conn, const mt_frame *f)
{
    ProtobufCMessage *m =
        protobuf_c_message_unpack(&manta__push_task__descriptor, NULL, f->len, f->payload);
    char err[256];
    if (!m) return mt_err(MANTA_EPROTO, "cannot decode PushTask");
    if (mt_wire_validate(m, err, sizeof err)) {
        protobuf_c_message_free_unpacked(m, NULL);
        return mt_err(MANTA_EPROTO, "%s", err);
    }
    return do_exec_push(c, conn, conn->tag, (Manta__PushTask *)m);
}

/* A task's reply: to the actor submitter for actor calls, else the task
 * submitter. */
static int route_task_reply(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    const Manta__TaskReply *r = (const Manta__TaskReply *)m;
    if (r->task_id.len != MT_TASK_ID_LEN) return mt_err(MANTA_EPROTO, "reply without task id");
    mt_task *t = mt_map_get(&c->tasks, r->task_id.data);
    if (t && t->actor) return do_actor_reply(c, conn, t, r);
    return do_sub_reply(c, conn, t, r);
}

static int route_cancel(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    return do_exec_cancel(c, conn, (const Manta__CancelTask *)m);
}

/* ---------------------------------------------------------------- node frames */

static int route_grant(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    return do_sub_grant(c, conn, (const Manta__LeaseGrant *)m);
}

static void handle_event(mt_core *c, const Manta__Event *ev)
{
    if (ev->kind == MANTA__EVENT_KIND__EVENT_MULTI_NODE) do_loop_listen_tcp(c);
    if (ev->kind == MANTA__EVENT_KIND__EVENT_RECLAIM_LEASES) do_sub_reclaim(c);
    if (ev->kind == MANTA__EVENT_KIND__EVENT_NODE_DIED && ev->id.len == MT_NODE_ID_LEN) {
        mt_nid nid;
        memcpy(nid.b, ev->id.data, MT_NODE_ID_LEN);
        do_obj_node_died(c, &nid);
    }
    if (ev->kind == MANTA__EVENT_KIND__EVENT_WORKER_DIED && ev->id.len == MT_WORKER_ID_LEN) {
        mt_peer *p = mt_map_get(&c->peers, ev->id.data);
        if (p) {
            p->exit_code = ev->code;
            p->death_reason = ev->reason ? (int)ev->reason : MANTA__DEATH_REASON__DEATH_EXITED;
        }
        if (p && !p->dead) {
            p->dead = true;
            on_peer_died(c, p);
        }
        if (p) do_sub_death_reason(c, p, 0);
        if (!p) {
            /* It may have been a borrower of ours without a peer entry. */
            mt_wid wid;
            memcpy(wid.b, ev->id.data, MT_WORKER_ID_LEN);
            mt_peer tmp = {.wid = wid, .dead = true};
            do_obj_peer_died(c, &tmp);
        }
    }
    do_loop_notify(c);
}

static int route_event(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    MT_UNUSED(conn);
    handle_event(c, (const Manta__Event *)m);
    return 0;
}

static void print_lines(const Manta__LogLines *m)
{
    /* "(pid=1234) text" per line, as Ray prints worker output. */
    const char *p = m->text ? m->text : "";
    int fd = m->is_err ? 2 : 1;
    char head[48];
    int hl = snprintf(head, sizeof head, "(pid=%u) ", m->pid);
    mt_buf b;
    mt_buf_init(&b);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        mt_buf_append(&b, head, (size_t)hl);
        mt_buf_append(&b, p, len);
        if (!nl) mt_buf_append(&b, "\n", 1);
        p += len;
    }
    if (b.len && write(fd, b.data, b.len) < 0) {
    }
    mt_buf_free(&b);
}

static int route_log_lines(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    MT_UNUSED(c);
    MT_UNUSED(conn);
    print_lines((const Manta__LogLines *)m);
    return 0;
}

static int route_warning(mt_core *c, mt_conn *conn, const ProtobufCMessage *m)
{
    MT_UNUSED(c);
    MT_UNUSED(conn);
    const char *t = ((const Manta__Warning *)m)->text;
    fprintf(stderr, "manta: warning: %s\n", t ? t : "");
    return 0;
}

/* ---------------------------------------------------------------- the table */

typedef int (*route_fn)(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);

/* Per message type: its handler when a peer sends it, and when a node (our
 * daemon, the control store, another node's daemon) sends it.  `reply`: an
 * answer to a call of ours (mt_rpc), matched by its request_id. */
typedef struct route {
    route_fn peer;
    route_fn node;
    bool reply;
} route;

static const route routes[] = {
    [MANTA__MSG_TYPE__MSG_TASK_REPLY] = {.peer = route_task_reply},
    [MANTA__MSG_TYPE__MSG_CANCEL_TASK] = {.peer = route_cancel},
    [MANTA__MSG_TYPE__MSG_OBJ_WAIT] = {.peer = do_obj_on_wait},
    [MANTA__MSG_TYPE__MSG_OBJ_WAIT_REPLY] = {.peer = do_obj_on_wait_reply},
    [MANTA__MSG_TYPE__MSG_ADD_BORROWER] = {.peer = do_obj_on_add_borrower},
    [MANTA__MSG_TYPE__MSG_ADD_BORROWER_ACK] = {.peer = do_obj_on_borrower_ack, .reply = true},
    [MANTA__MSG_TYPE__MSG_REMOVE_BORROWER] = {.peer = do_obj_on_remove_borrower},
    [MANTA__MSG_TYPE__MSG_CREDIT] = {.peer = do_obj_on_credit},
    [MANTA__MSG_TYPE__MSG_LEASE_GRANT] = {.node = route_grant},
    [MANTA__MSG_TYPE__MSG_EVENT] = {.node = route_event},
    [MANTA__MSG_TYPE__MSG_LOG_LINES] = {.node = route_log_lines},
    [MANTA__MSG_TYPE__MSG_WARNING] = {.node = route_warning},
    [MANTA__MSG_TYPE__MSG_OBJ_CREATE_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_OBJ_GET_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_FN_GET_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_KV_GET_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_STATUS_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_ACTOR_REGISTER_REPLY] = {.reply = true},
    [MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY] = {.reply = true},
};

static const route *route_of(uint16_t type)
{
    return type < sizeof routes / sizeof routes[0] ? &routes[type] : NULL;
}

/* The request id of a reply: every reply message names it `request_id`. */
static uint64_t reply_request_id(const ProtobufCMessage *m)
{
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "request_id");
    return fd ? *(const uint64_t *)(const void *)((const char *)m + fd->offset) : 0;
}

static int route_peer_frame(mt_core *c, mt_conn *conn, const mt_frame *f)
{
    if (f->type == MANTA__MSG_TYPE__MSG_PUSH_TASK) return take_push(c, conn, f);
    ProtobufCMessage *m;
    int rc = do_loop_decode(c, f, &m);
    if (rc) return rc;
    const route *r = route_of(f->type);
    if (r && r->peer) rc = r->peer(c, conn, m);
    else rc = mt_err(MANTA_EPROTO, "unexpected %s from a peer", mt_wire_name(f->type));
    mt_arena_reset(&c->arena);
    return rc;
}

static int route_node_frame(mt_core *c, mt_conn *conn, const mt_frame *f)
{
    ProtobufCMessage *m;
    int rc = do_loop_decode(c, f, &m);
    if (rc) return rc;
    const route *r = route_of(f->type);
    uint64_t rid = r && r->reply ? reply_request_id(m) : 0;
    if (f->type == MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP_REPLY && mt_map_get(&c->actor_lookups, &rid))
        do_actor_lookup_reply(c, (const Manta__ActorLookupReply *)m);
    else if (rid) do_loop_rpc_complete(c, rid, f->type, f->payload, f->len, 0);
    else if (r && r->node) rc = r->node(c, conn, m);
    else rc = mt_err(MANTA_EPROTO, "unexpected %s from the node", mt_wire_name(f->type));
    mt_arena_reset(&c->arena);
    return rc;
}

/* ---------------------------------------------------------------- connect */

static const mt_hooks router_hooks = {
    .peer_frame = route_peer_frame,
    .node_frame = route_node_frame,
    .peer_died = on_peer_died,
    .gcs_lost = do_actor_gcs_lost,
    .map_store = on_map_store,
    .flush = do_plasma_flush_releases,
    .tick = on_tick,
    .flush_held = do_exec_flush_held,
    .free_tables = free_tables,
    .obj_ready = on_obj_ready,
    .obj_rebuild = do_sub_reconstruct,
    .lineage_release = do_task_lineage_release,
    .anchor_freed = do_actor_out_of_scope,
    .actor_granted = on_actor_granted,
    .rdaemon_closed = on_rdaemon_closed,
};

int mt_core_connect(const mt_core_opts *o, mt_core **out)
{
    return mt_loop_open(o, &router_hooks, out);
}

/* actor.c -- actors from a caller's side: creating one (registration in
 * the control store, a worker leased for the actor's life, the constructor
 * task) and method calls, which go straight to the actor's worker in the
 * order they were made.  Handles count as refs of the actor's "anchor"
 * object, owned by the creator: when the anchor is freed (every handle is
 * gone and no call of any process is pending) the actor goes out of scope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "actor.h"
#include "mt.h"

typedef struct actor_lookup {
    uint64_t id; /* request id: key */
    mt_aid actor;
} actor_lookup;

mt_oid mt_actor_anchor_id(const mt_aid *a)
{
    mt_tid t;
    memcpy(t.b, a->b, MT_TASK_ID_LEN);
    return mt_oid_for(&t, 0xFFFFFFFFu);
}

static mt_actor *actor_get(mt_core *c, const mt_aid *id, bool create)
{
    mt_actor *a = mt_map_get(&c->actors, id->b);
    if (a || !create) return a;
    a = mt_calloc(1, sizeof *a);
    a->id = *id;
    mt_map_put(&c->actors, a);
    return a;
}

static void actor_free(mt_actor *a)
{
    free(a->lease_tmpl);
    if (a->daemon) mt_conn_unref(a->daemon);
    if (a->death) mt_value_unref(a->death);
    for (uint32_t i = 0; i < a->nres; i++) free(a->res_names[i]);
    free(a->res_names);
    free(a->res_amounts);
    free(a->gpu_ids);
    free(a->class_name);
    free(a);
}

void do_actor_free_all(mt_core *c)
{
    size_t n;
    void **items = mt_map_items(&c->actors, &n);
    for (size_t i = 0; i < n; i++) actor_free(items[i]);
    free(items);
    items = mt_map_items(&c->actor_lookups, &n);
    for (size_t i = 0; i < n; i++) free(items[i]);
    free(items);
    mt_map_free(&c->actors);
    mt_map_free(&c->actor_lookups);
}

/* ---------------------------------------------------------------- control store */

/* Tell the control store what the owner decided (restarting, dead); the
 * actor's worker reports it alive itself (exec.c). */
static void gcs_update(mt_core *c, mt_actor *a, int state, const char *cause, bool intentional)
{
    Manta__ActorUpdate u = MANTA__ACTOR_UPDATE__INIT;
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    info.actor_id = MT_BIN(a->id.b, MT_ACTOR_ID_LEN);
    info.state = state;
    info.death_cause = (char *)(cause ? cause : "");
    info.intentional = intentional;
    info.num_restarts = a->num_restarts;
    u.info = &info;
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_UPDATE, &u.base);
}

/* ---------------------------------------------------------------- death */

/* What the calls of a dead actor get: a first line naming the actor
 * ("actor_id=<hex> class_name=<name>", which the Python layer turns into the
 * fields of ActorDiedError), then why it died. */
static mt_value *died_value(int code, const mt_actor *a, const char *why)
{
    char hex[2 * MT_ACTOR_ID_LEN + 1];
    mt_hex(a->id.b, MT_ACTOR_ID_LEN, hex);
    return mt_value_error(code, "actor_id=%s class_name=%s\n%s", hex,
                          a->class_name ? a->class_name : "", why);
}

/* Fail every call that can fail now: sent, queued and ready, the
 * constructor.  Calls still waiting for arguments fail once those arrive. */
static void fail_calls(mt_core *c, mt_actor *a)
{
    /* Detach the list first: failing a call can ready another call of this
     * actor (it took the first one's return), which fails the calls again
     * from inside this loop. */
    mt_task *list = a->inflight;
    a->inflight = NULL;
    a->ninflight = 0;
    for (mt_task *t = list, *next; t; t = next) {
        next = t->lnext;
        t->lprev = t->lnext = NULL;
        mt_value_ref(a->death);
        do_task_fail(c, t, a->death);
    }
    while (a->qhead && a->qhead->ndeps == 0) {
        mt_task *t = a->qhead;
        a->qhead = t->qnext;
        if (!a->qhead) a->qtail = NULL;
        mt_value_ref(a->death);
        do_task_fail(c, t, a->death);
    }
    if (a->create && a->create->ndeps == 0) {
        mt_task *t = a->create;
        a->create = NULL;
        mt_value_ref(a->death);
        do_task_fail(c, t, a->death);
    }
}

static void actor_dies(mt_core *c, mt_actor *a, mt_value *death, const char *cause,
                       bool intentional)
{
    if (a->state == MT_ACTOR_DEAD) {
        mt_value_unref(death);
        fail_calls(c, a);
        return;
    }
    a->state = MT_ACTOR_DEAD;
    if (a->death) mt_value_unref(a->death);
    a->death = death;
    if (a->ctor) {
        mt_task *t = a->ctor;
        a->ctor = NULL;
        do_task_finish(c, t); /* its arguments are no longer needed */
    }
    if (a->owned) gcs_update(c, a, MANTA__ACTOR_STATE__ACTOR_DEAD, cause, intentional);
    fail_calls(c, a);
    do_loop_notify(c);
}

/* ---------------------------------------------------------------- sending */

/* How many calls the actor runs at once (Ray's default for an async actor
 * is 1000). */
static void set_concurrency(mt_actor *a, uint32_t max_concurrency, bool is_async)
{
    a->concurrency = max_concurrency ? max_concurrency : is_async ? 1000 : 1;
}

static void link_inflight(mt_actor *a, mt_task *t)
{
    a->ninflight++;
    t->state = MT_TASK_RUNNING;
    t->lprev = NULL;
    t->lnext = a->inflight;
    if (a->inflight) a->inflight->lprev = t;
    a->inflight = t;
}

static void unlink_inflight(mt_actor *a, mt_task *t)
{
    if ((t->lprev || a->inflight == t) && a->ninflight) a->ninflight--;
    if (t->lprev) t->lprev->lnext = t->lnext;
    else if (a->inflight == t) a->inflight = t->lnext;
    if (t->lnext) t->lnext->lprev = t->lprev;
    t->lprev = t->lnext = NULL;
}

static void send_create(mt_core *c, mt_actor *a)
{
    mt_task *t = a->create;
    mt_conn *conn = do_loop_peer_conn(c, a->worker);
    if (!conn) return;
    if (do_task_fail_on_error_arg(c, t)) {
        /* A constructor argument failed: the actor can never start. */
        a->create = NULL;
        actor_dies(c, a, died_value(MANTA_EACTORINIT, a, "an argument of the constructor failed"),
                   "an argument of the constructor failed", false);
        return;
    }
    t->state = MT_TASK_RUNNING;
    do_task_send(c, conn, t, a->gpu_ids, a->ngpu, a->res_names, a->res_amounts, a->nres);
    mt_conn_flush(conn);
}

/* Ask the control store where the actor lives (waiting until it is alive),
 * or, for the owner of an actor whose worker is gone, what it knows now. */
static void request_lookup(mt_core *c, mt_actor *a)
{
    if (a->lookup_sent || (a->owned && !a->lost_check)) return;
    a->lookup_sent = true;
    actor_lookup *l = mt_calloc(1, sizeof *l);
    l->id = ++c->next_req;
    l->actor = a->id;
    mt_map_put(&c->actor_lookups, l);
    Manta__ActorLookup m = MANTA__ACTOR_LOOKUP__INIT;
    m.request_id = l->id;
    m.actor_id = MT_BIN(a->id.b, MT_ACTOR_ID_LEN);
    m.wait_alive = !a->owned;
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP, &m.base);
}

static void actor_lost(mt_core *c, mt_actor *a);

void do_actor_pump(mt_core *c, mt_actor *a)
{
    if (a->create && a->create->state != MT_TASK_RUNNING && a->create->ndeps == 0 && a->worker &&
        a->state != MT_ACTOR_DEAD)
        send_create(c, a);
    if (a->state == MT_ACTOR_DEAD) {
        fail_calls(c, a);
        return;
    }
    if (a->state != MT_ACTOR_ALIVE) {
        request_lookup(c, a);
        return;
    }
    mt_conn *conn = do_loop_peer_conn(c, a->worker);
    if (!conn) {
        /* Its worker is gone: the owner restarts it or it is dead; ask. */
        actor_lost(c, a);
        return;
    }
    bool sent = false;
    /* An actor running as many calls as it can at once runs the new ones
     * after them anyway: they wait in the connection's buffer and leave
     * together with the flush that follows its next reply (one write for
     * many calls). */
    bool hold = a->concurrency && a->ninflight >= a->concurrency;
    while (a->qhead && a->qhead->ndeps == 0) {
        mt_task *t = a->qhead;
        a->qhead = t->qnext;
        if (!a->qhead) a->qtail = NULL;
        if (do_task_fail_on_error_arg(c, t)) continue;
        if (t->attempt == 0) t->retries_left = a->max_task_retries;
        link_inflight(a, t);
        do_task_send(c, conn, t, a->gpu_ids, a->ngpu, NULL, NULL, 0);
        sent = true;
    }
    if (sent && !hold) mt_conn_flush(conn);
}

/* ---------------------------------------------------------------- creation */

static Manta__Resource **res_list(const char *const *names, const int64_t *amounts, uint32_t n,
                                  Manta__Resource *store)
{
    Manta__Resource **v = mt_calloc(n + 1, sizeof *v);
    mt_task_res_wire((char *const *)names, amounts, n, store, v);
    return v;
}

static int register_actor(mt_core *c, const mt_actor_desc *d, const mt_aid *id, uint8_t **existing,
                          size_t *existing_len)
{
    Manta__ActorRegister m = MANTA__ACTOR_REGISTER__INIT;
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    Manta__Address owner;
    char ep[256];
    do_loop_address(c, &owner, ep, sizeof ep);
    info.actor_id = MT_BIN(id->b, MT_ACTOR_ID_LEN);
    info.name = (char *)(d->name ? d->name : "");
    info.ns = (char *)(d->ns ? d->ns : "");
    info.state = MANTA__ACTOR_STATE__ACTOR_PENDING;
    info.owner = &owner;
    info.detached = d->detached;
    info.class_name = (char *)(d->class_name ? d->class_name : "");
    info.max_restarts = d->max_restarts;
    info.max_task_retries = d->max_task_retries;
    info.max_concurrency = d->max_concurrency;
    info.is_async = d->is_async;
    info.language = d->lang;
    info.job_id = c->job_id;
    info.handle = MT_BIN(d->handle, d->handle_len);
    m.info = &info;
    if (!info.name[0]) {
        /* Nothing to check for an unnamed actor: no need to wait (request
         * id 0 asks for no reply).  Later messages about it follow this
         * one on the same connection. */
        do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &m.base);
        return 0;
    }
    Manta__ActorRegisterReply *rep;
    int rc = do_loop_rpc_call(c, c->gcs, MANTA__MSG_TYPE__MSG_ACTOR_REGISTER, &m.base, &m.request_id,
                         mt_now_s() + 30, &manta__actor_register_reply__descriptor,
                         &rep);
    if (rc) return mt_err(rc, "cannot register the actor with the control store");
    rc = rep->status;
    if (rc == MANTA_EEXIST && rep->info && existing) {
        *existing_len = manta__actor_info__get_packed_size(rep->info);
        *existing = mt_malloc(*existing_len + 1);
        manta__actor_info__pack(rep->info, *existing);
    }
    manta__actor_register_reply__free_unpacked(rep, NULL);
    return rc;
}

int mt_core_actor_create(mt_core *c, const mt_actor_desc *d, mt_aid *id, mt_obj **anchor,
                         uint8_t **existing, size_t *existing_len)
{
    if (do_check_name("actor class name", d->class_name) || do_check_name("actor name", d->name) ||
        do_check_name("actor namespace", d->ns))
        return MANTA_EINVAL;
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
    mt_random_bytes(id->b, MT_ACTOR_ID_LEN);
    rc = register_actor(c, d, id, existing, existing_len);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    mt_actor *a = actor_get(c, id, true);
    a->owned = true;
    a->detached = d->detached;
    set_concurrency(a, d->max_concurrency, d->is_async);
    a->max_restarts = d->max_restarts;
    a->max_task_retries = d->max_task_retries;
    a->class_name = mt_strdup(d->class_name ? d->class_name : "");
    a->nres = d->nres;
    a->res_names = mt_calloc(d->nres + 1, sizeof *a->res_names);
    a->res_amounts = mt_calloc(d->nres + 1, sizeof *a->res_amounts);
    for (uint32_t i = 0; i < d->nres; i++) {
        a->res_names[i] = mt_strdup(d->res_names[i]);
        a->res_amounts[i] = d->res_amounts[i];
    }
    *anchor = NULL;
    if (!d->detached) {
        mt_oid aid = mt_actor_anchor_id(id);
        mt_obj *o = do_obj_new_owned(c, &aid);
        o->anchor = true;
        o->value = mt_value_raw("", 0);
        o->state = MT_OBJ_READY;
        o->local = 1;
        *anchor = o;
    }
    mt_task *t = do_task_new(c, MANTA__TASK_KIND__TASK_ACTOR_CREATE, d->args, d->nargs, 1, NULL);
    if (d->fn_id) memcpy(t->fn_id, d->fn_id, MT_FN_ID_LEN);
    t->name = mt_strdup(d->class_name ? d->class_name : "");
    t->actor = a;
    t->actor_id = *id;
    t->max_concurrency = d->max_concurrency;
    t->is_async = d->is_async;
    a->create = t;
    t->state = MT_TASK_WAITING;
    do_task_watch_deps(c, t);
    Manta__LeaseRequest lr = MANTA__LEASE_REQUEST__INIT;
    Manta__Resource *rs = mt_calloc(d->nres + 1, sizeof *rs);
    Manta__Resource *ps = mt_calloc(d->nplace + 1, sizeof *ps);
    lr.demand = res_list(d->res_names, d->res_amounts, d->nres, rs);
    lr.n_demand = d->nres;
    lr.placement = res_list(d->place_names, d->place_amounts, d->nplace, ps);
    lr.n_placement = d->nplace;
    lr.language = d->lang;
    lr.runtime = (char *)(d->lang == MANTA__LANGUAGE__LANG_PYTHON ? ""
                          : d->runtime                          ? d->runtime
                                                                : c->runtime);
    lr.for_actor = true;
    lr.detached = d->detached;
    lr.actor_id = MT_BIN(id->b, MT_ACTOR_ID_LEN);
    lr.name = a->class_name;
    lr.strategy = d->strategy;
    if (d->node) lr.node_id = MT_BIN(d->node, MT_NODE_ID_LEN);
    lr.soft = d->soft;
    a->lease_len = manta__lease_request__get_packed_size(&lr);
    a->lease_tmpl = mt_malloc(a->lease_len + 1);
    manta__lease_request__pack(&lr, a->lease_tmpl);
    do_sub_actor_lease(c, a, &lr);
    free(lr.demand);
    free(lr.placement);
    free(rs);
    free(ps);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void do_actor_set_daemon(mt_core *c, mt_actor *a, mt_conn *daemon)
{
    MT_UNUSED(c);
    if (a->daemon) mt_conn_unref(a->daemon);
    a->daemon = daemon;
    if (daemon) mt_conn_ref(daemon);
}

void do_actor_daemon_closed(mt_core *c, mt_conn *conn)
{
    size_t it = 0;
    mt_actor *a;
    while ((a = mt_map_next(&c->actors, &it)))
        if (a->daemon == conn) do_actor_set_daemon(c, a, NULL);
}

int do_actor_granted(mt_core *c, mt_actor *a, const Manta__LeaseGrant *g)
{
    if (g->status) {
        char why[600];
        snprintf(why, sizeof why, "The actor could not be placed: %s",
                 g->error && g->error[0] ? g->error : manta_strerror(g->status));
        int code = g->status == MANTA_EUNSCHEDULABLE ? MANTA_EUNSCHEDULABLE : MANTA_EACTORDIED;
        actor_dies(c, a, died_value(code, a, why), why, false);
        return 0;
    }
    mt_peer *p = do_loop_peer_from_proto(c, g->worker);
    if (!p) return mt_err(MANTA_EPROTO, "lease grant without a worker");
    p->dead = false;
    a->worker = p;
    free(a->gpu_ids);
    a->ngpu = g->n_gpu_ids;
    a->gpu_ids = mt_calloc(g->n_gpu_ids + 1, sizeof *a->gpu_ids);
    if (g->n_gpu_ids) memcpy(a->gpu_ids, g->gpu_ids, g->n_gpu_ids * sizeof *g->gpu_ids);
    if (a->state == MT_ACTOR_DEAD) {
        /* Killed while it waited for a worker: give the worker back. */
        do_sub_lease_return(c, a->daemon, &p->wid, true);
        return 0;
    }
    do_actor_pump(c, a);
    return 0;
}

/* The constructor replied: the actor lives, or died in __init__. */
static void created(mt_core *c, mt_actor *a, mt_task *t, const Manta__TaskReply *r)
{
    a->create = NULL;
    if (r->status == MANTA__TASK_STATUS__TASK_OK) {
        /* Keep the constructor: a restart runs it again. */
        a->ctor = t;
        t->state = MT_TASK_DONE;
        if (a->state == MT_ACTOR_DEAD) return;
        a->state = MT_ACTOR_ALIVE; /* the worker told the control store (exec.c) */
        do_actor_pump(c, a);
        do_loop_notify(c);
        return;
    }
    mt_value *death;
    if (r->n_returns && r->returns[0]->kind == MANTA__RETURN_KIND__RET_INLINE) {
        /* The constructor's exception, marked as an init failure. */
        death = mt_value_copy(r->returns[0]->data.data, r->returns[0]->data.len);
        if (death->size >= MT_VAL_HDR) {
            int32_t code = MANTA_EACTORINIT;
            memcpy(death->data + 12, &code, sizeof code);
        }
    } else {
        death = died_value(MANTA_EACTORINIT, a, r->error && r->error[0] ? r->error
                                                                      : "the constructor failed");
    }
    do_task_finish(c, t);
    /* Its worker is of no use now: the node kills it. */
    do_sub_lease_return(c, a->daemon, &a->worker->wid, true);
    actor_dies(c, a, death, "The actor died because of an error raised in its creation task.",
               false);
}

int do_actor_reply(mt_core *c, mt_conn *conn, mt_task *t, const Manta__TaskReply *r)
{
    mt_actor *a = t->actor;
    if (t->state != MT_TASK_RUNNING || !a->worker || a->worker->conn != conn) return 0;
    if (t == a->create) {
        created(c, a, t, r);
        return 0;
    }
    unlink_inflight(a, t);
    switch (r->status) {
    case MANTA__TASK_STATUS__TASK_OK:
    case MANTA__TASK_STATUS__TASK_APP_ERROR:
        for (uint32_t i = 0; i < t->num_returns; i++) {
            if (i < r->n_returns)
                do_obj_set_return(c, t->returns[i], r->returns[i], &a->worker->nid);
            else
                do_obj_fail(c, t->returns[i],
                            mt_value_error(MANTA_EPROTO, "the actor sent %zu of %u returns",
                                           r->n_returns, t->num_returns));
        }
        do_task_finish(c, t);
        break;
    case MANTA__TASK_STATUS__TASK_CANCELLED:
        do_task_fail(c, t, mt_task_cancelled_error(t));
        break;
    case MANTA__TASK_STATUS__TASK_ACTOR_DEAD:
        do_task_fail(c, t, died_value(MANTA_EACTORDIED, a, r->error && r->error[0]
                                                            ? r->error
                                                            : "The actor exited."));
        break;
    default:
        do_task_fail(c, t, mt_value_error(MANTA_ETASK, "%s", r->error ? r->error : "call failed"));
    }
    mt_conn_flush(conn); /* the calls held back meanwhile (do_actor_pump) */
    return 0;
}

/* ---------------------------------------------------------------- calls */

int mt_core_actor_call(mt_core *c, const mt_aid *id, const char *method, const mt_targ *args,
                       uint32_t nargs, uint32_t num_returns, mt_obj *anchor, mt_obj **returns)
{
    if (num_returns > 1000000) return mt_err(MANTA_EINVAL, "num_returns too large");
    if (do_check_name("method name", method)) return MANTA_EINVAL;
    pthread_mutex_lock(&c->mu);
    if (c->daemon_lost) {
        pthread_mutex_unlock(&c->mu);
        return do_loop_node_lost(c);
    }
    int rc = do_obj_args_fit(c, args, nargs);
    if (rc) {
        pthread_mutex_unlock(&c->mu);
        return rc;
    }
    mt_actor *a = actor_get(c, id, true);
    mt_task *t = do_task_new(c, MANTA__TASK_KIND__TASK_ACTOR_CALL, args, nargs, num_returns, returns);
    t->name = mt_strdup(method);
    t->method = mt_strdup(method);
    t->actor = a;
    t->actor_id = *id;
    t->seq = ++a->next_seq;
    if (anchor) {
        t->anchor = anchor;
        anchor->submitted++;
    }
    t->state = MT_TASK_QUEUED;
    do_task_watch_deps(c, t);
    if (a->qtail) a->qtail->qnext = t;
    else a->qhead = t;
    a->qtail = t;
    do_actor_pump(c, a);
    c->last_active = mt_now_coarse();
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int mt_core_actor_kill(mt_core *c, const mt_aid *id, bool no_restart)
{
    pthread_mutex_lock(&c->mu);
    Manta__ActorKill m = MANTA__ACTOR_KILL__INIT;
    m.actor_id = MT_BIN(id->b, MT_ACTOR_ID_LEN);
    m.no_restart = no_restart;
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &m.base);
    mt_actor *a = actor_get(c, id, true);
    if (no_restart)
        actor_dies(c, a, died_value(MANTA_EACTORDIED, a, "The actor was killed by ray.kill()."),
                   "The actor was killed by ray.kill().", true);
    else if (a->owned && a->state == MT_ACTOR_ALIVE && a->worker)
        /* Its worker is about to die and we restart it: later calls wait
         * for the new one instead of racing the kill to the old one. */
        a->state = MT_ACTOR_PENDING;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

void do_actor_out_of_scope(mt_core *c, const mt_oid *anchor)
{
    mt_aid id;
    memcpy(id.b, anchor->b, MT_ACTOR_ID_LEN);
    mt_actor *a = actor_get(c, &id, false);
    if (!a || !a->owned || a->detached || a->state == MT_ACTOR_DEAD) return;
    Manta__ActorKill m = MANTA__ACTOR_KILL__INIT;
    m.actor_id = MT_BIN(id.b, MT_ACTOR_ID_LEN);
    m.no_restart = true;
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_KILL, &m.base);
    actor_dies(c, a, died_value(MANTA_EACTORDIED, a, "The actor went out of scope."),
               "All handles to the actor went out of scope.", true);
}

static bool restartable(const mt_actor *a)
{
    return a->max_restarts < 0 || a->num_restarts < (uint32_t)a->max_restarts;
}

/* In-flight calls of a lost worker: retried (max_task_retries) at the head
 * of the queue in their original order, or failed. */
static void requeue_inflight(mt_core *c, mt_actor *a, mt_value *why)
{
    size_t n = 0;
    for (mt_task *t = a->inflight; t; t = t->lnext) n++;
    mt_task **v = mt_calloc(n + 1, sizeof *v);
    size_t k = 0;
    for (mt_task *t = a->inflight, *next; t; t = next) {
        next = t->lnext;
        t->lprev = t->lnext = NULL;
        v[k++] = t;
    }
    a->inflight = NULL;
    a->ninflight = 0;
    /* Oldest first: sort by submission order. */
    for (size_t i = 1; i < k; i++)
        for (size_t j = i; j > 0 && v[j - 1]->seq > v[j]->seq; j--) {
            mt_task *x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    for (size_t i = k; i-- > 0;) {
        mt_task *t = v[i];
        if (t->retries_left != 0 && !t->cancelled) {
            if (t->retries_left > 0) t->retries_left--;
            t->attempt++;
            t->state = MT_TASK_QUEUED;
            t->qnext = a->qhead;
            a->qhead = t;
            if (!a->qtail) a->qtail = t;
        } else {
            mt_value_ref(why);
            do_task_fail(c, t, why);
        }
    }
    free(v);
    mt_value_unref(why);
}

/* Owner: run the constructor again on a new worker. */
static void restart(mt_core *c, mt_actor *a)
{
    a->num_restarts++;
    a->state = MT_ACTOR_PENDING;
    a->worker = NULL;
    gcs_update(c, a, MANTA__ACTOR_STATE__ACTOR_RESTARTING, NULL, false);
    mt_task *t = a->ctor;
    a->ctor = NULL;
    a->create = t;
    t->attempt++;
    t->state = MT_TASK_WAITING;
    Manta__LeaseRequest *lr = manta__lease_request__unpack(NULL, a->lease_len, a->lease_tmpl);
    if (lr) {
        do_sub_actor_lease(c, a, lr);
        manta__lease_request__free_unpacked(lr, NULL);
    }
}

/* The control store has the actor dead: its calls fail with the cause it
 * recorded. */
static void dies_as_recorded(mt_core *c, mt_actor *a, const Manta__ActorInfo *info)
{
    const char *why = info->death_cause && info->death_cause[0] ? info->death_cause
                                                                 : "The actor is dead.";
    actor_dies(c, a, died_value(MANTA_EACTORDIED, a, why), why, info->intentional);
}

static void lost_why(char *why, size_t n, bool signal)
{
    snprintf(why, n, "The actor died unexpectedly before finishing this task (its worker exited%s).",
             signal ? " from a signal" : "");
}

/* The owner learnt from the control store what became of an actor whose
 * worker is gone: killed for good (ray.kill() from any process, exit_actor())
 * is final; otherwise the owner restarts it while max_restarts allows. */
static void owner_lost(mt_core *c, mt_actor *a, const Manta__ActorInfo *info)
{
    a->lost_check = false;
    if (info && info->state == MANTA__ACTOR_STATE__ACTOR_DEAD) {
        dies_as_recorded(c, a, info);
        return;
    }
    char why[200];
    lost_why(why, sizeof why, a->lost_signal);
    if (!a->ctor && a->create && a->create->state == MT_TASK_RUNNING && restartable(a)) {
        /* The worker died while it ran the constructor: as in Ray, that
         * counts as a restart and the constructor runs again. */
        a->ctor = a->create;
        a->create = NULL;
    }
    if (!a->ctor || !restartable(a)) {
        actor_dies(c, a, died_value(MANTA_EACTORDIED, a, why), why, false);
        return;
    }
    requeue_inflight(c, a, died_value(MANTA_EACTORDIED, a, why));
    /* Failing a call without retries may have dropped the last handle: the
     * actor is then dead and its constructor gone. */
    if (a->state == MT_ACTOR_DEAD || !a->ctor) return;
    restart(c, a);
}

/* Our connection to the actor's worker is gone. */
static void actor_lost(mt_core *c, mt_actor *a)
{
    if (a->state == MT_ACTOR_DEAD) return;
    char why[200];
    bool signal = a->worker && a->worker->exit_code < 0;
    if (a->owned) {
        /* Ask first: another process may have killed it for good.  The calls
         * in flight wait for the answer (retried on a restart, or failed). */
        a->state = MT_ACTOR_PENDING;
        a->worker = NULL;
        a->lost_check = true;
        a->lost_signal = signal;
        if (c->gcs) request_lookup(c, a);
        else owner_lost(c, a, NULL); /* no one to ask: we decide */
        return;
    }
    lost_why(why, sizeof why, signal);
    requeue_inflight(c, a, died_value(MANTA_EACTORDIED, a, why));
    /* Not ours: the control store knows whether it restarts. */
    a->state = MT_ACTOR_PENDING;
    a->worker = NULL;
    a->relookup_at = mt_now_s() + 0.02;
}

void do_actor_peer_died(mt_core *c, mt_peer *p)
{
    size_t n;
    void **items = mt_map_items(&c->actors, &n);
    for (size_t i = 0; i < n; i++) {
        mt_actor *a = items[i];
        if (a->worker == p && a->state != MT_ACTOR_DEAD) actor_lost(c, a);
    }
    free(items);
}

/* The control store is gone: owners that were asking it about a lost
 * worker decide by themselves (restart while they may, or dead). */
void do_actor_gcs_lost(mt_core *c)
{
    size_t n;
    void **items = mt_map_items(&c->actors, &n);
    for (size_t i = 0; i < n; i++) {
        mt_actor *a = items[i];
        if (!a->owned || !a->lost_check || a->state == MT_ACTOR_DEAD) continue;
        a->lookup_sent = false;
        owner_lost(c, a, NULL);
    }
    free(items);
}

/* Look up again actors whose worker was lost (not too eagerly: the node may
 * not have seen the death yet, and would answer with the old address). */
void do_actor_tick(mt_core *c)
{
    double now = mt_now_s();
    size_t n;
    void **items = mt_map_items(&c->actors, &n);
    for (size_t i = 0; i < n; i++) {
        mt_actor *a = items[i];
        if (!a->relookup_at || now < a->relookup_at || a->state != MT_ACTOR_PENDING) continue;
        a->relookup_at = 0;
        request_lookup(c, a);
    }
    free(items);
}

void do_actor_lookup_reply(mt_core *c, const Manta__ActorLookupReply *r)
{
    actor_lookup *l = mt_map_del(&c->actor_lookups, &r->request_id);
    if (!l) return;
    mt_actor *a = actor_get(c, &l->actor, false);
    free(l);
    if (!a || a->state == MT_ACTOR_DEAD) return;
    a->lookup_sent = false;
    const Manta__ActorInfo *info = r->n_actors ? r->actors[0] : NULL;
    if (info && !a->class_name && info->class_name) a->class_name = mt_strdup(info->class_name);
    if (a->owned) {
        if (a->lost_check) owner_lost(c, a, r->status ? NULL : info);
        return;
    }
    if (r->status || !info) {
        actor_dies(c, a, died_value(MANTA_EACTORDIED, a, "No such actor."), "unknown actor", false);
        return;
    }
    if (info->state == MANTA__ACTOR_STATE__ACTOR_DEAD) {
        dies_as_recorded(c, a, info);
        return;
    }
    a->max_task_retries = info->max_task_retries;
    set_concurrency(a, info->max_concurrency, info->is_async);
    mt_peer *p = do_loop_peer_from_proto(c, info->address);
    if (!p || p->dead) {
        /* Restarting, or the node has not yet seen its worker die. */
        a->relookup_at = mt_now_s() + 0.05;
        return;
    }
    a->worker = p;
    a->state = MT_ACTOR_ALIVE;
    do_actor_pump(c, a);
}

int mt_core_actor_lookup(mt_core *c, const char *name, const char *ns, const mt_aid *id,
                         uint8_t **info, size_t *len)
{
    Manta__ActorLookup m = MANTA__ACTOR_LOOKUP__INIT;
    m.name = (char *)(name ? name : "");
    m.ns = (char *)(ns ? ns : "");
    if (id) m.actor_id = MT_BIN(id->b, MT_ACTOR_ID_LEN);
    pthread_mutex_lock(&c->mu);
    Manta__ActorLookupReply *rep;
    int rc = do_loop_rpc_call(c, c->gcs, MANTA__MSG_TYPE__MSG_ACTOR_LOOKUP, &m.base, &m.request_id,
                         mt_now_s() + 30, &manta__actor_lookup_reply__descriptor,
                         &rep);
    pthread_mutex_unlock(&c->mu);
    if (rc) return rc;
    rc = rep->status ? rep->status : rep->n_actors ? 0 : MANTA_ENOENT;
    if (!rc) {
        *len = manta__actor_info__get_packed_size(rep->actors[0]);
        *info = mt_malloc(*len + 1);
        manta__actor_info__pack(rep->actors[0], *info);
    }
    manta__actor_lookup_reply__free_unpacked(rep, NULL);
    return rc;
}

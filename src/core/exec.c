/* exec.c -- the worker side of tasks: pushed tasks wait in a queue, the
 * language layer takes them (mt_exec_next), writes their returns (in line
 * or straight into the store) and finishes them, which sends the reply on
 * the connection the task came in on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>
#include <unistd.h>
#include <errno.h>
#include <sys/eventfd.h>

#include "config.h"
#include "exec.h"
#include "mt.h"

/* The task the calling thread executes, if any. */
static _Thread_local mt_exec_task *mt_exec_tl_current;

/* ---------------------------------------------------------------- the actor this worker runs */

/* The actor's worker tells the control store where the actor lives, so
 * that it does not depend on its owner for that (a detached actor outlives
 * its creator): PENDING with its address when the constructor arrives (the
 * control store then knows that the creation reached a worker), ALIVE when
 * the constructor returned, before the reply leaves.  `attempt` counts the
 * constructor's runs: the owner's restarts. */
static void report_actor(mt_core *c, const uint8_t *actor_id, int state, uint32_t attempt)
{
    Manta__ActorUpdate u = MANTA__ACTOR_UPDATE__INIT;
    Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
    Manta__Address addr;
    char ep[256];
    do_loop_address(c, &addr, ep, sizeof ep);
    info.actor_id = MT_BIN(actor_id, MT_ACTOR_ID_LEN);
    info.state = state;
    info.address = &addr;
    info.pid = (uint32_t)getpid();
    info.num_restarts = attempt;
    u.info = &info;
    do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_UPDATE, &u.base);
}


/* One PushTask message, shared by the tasks it carried. */
typedef struct exec_batch {
    Manta__PushTask *msg;
    uint32_t remaining;
} exec_batch;

typedef struct exec_ret {
    mt_value *value;      /* inline */
    bool plasma;
    uint64_t size;
    mt_oid id;
    Manta__RefInfo **contained;
    Manta__Address *owners;
    char (*eps)[256];
    size_t ncontained;
} exec_ret;

struct mt_exec_task {
    exec_batch *batch;
    Manta__TaskSpec *spec;
    mt_conn *conn;        /* reply path */
    mt_peer *caller;      /* owner of the returns */
    mt_value **args;
    exec_ret *rets;
    uint64_t start_ns;
    uint64_t inlined;     /* bytes of returns that travel in the reply */
    bool retryable;       /* the language layer: retry_exceptions matched */
    bool cancel;          /* cancel() asked to interrupt it */
    mt_exec_task *next;
    mt_exec_task *rprev, *rnext; /* running list */
};

/* ---------------------------------------------------------------- queue */

static void running_add(mt_core *c, mt_exec_task *t);

int do_exec_push(mt_core *c, mt_conn *conn, mt_peer *peer, Manta__PushTask *m)
{
    if (!m->n_tasks) {
        manta__push_task__free_unpacked(m, NULL);
        return 0;
    }
    for (size_t i = 0; i < m->n_tasks; i++) {
        if (m->tasks[i]->task_id.len != MT_TASK_ID_LEN) {
            manta__push_task__free_unpacked(m, NULL);
            return mt_err(MANTA_EPROTO, "a pushed task has no task id");
        }
    }
    exec_batch *b = mt_calloc(1, sizeof *b);
    b->msg = m;
    b->remaining = (uint32_t)m->n_tasks;
    for (size_t i = 0; i < m->n_tasks; i++) {
        Manta__TaskSpec *s = m->tasks[i];
        if (s->kind == MANTA__TASK_KIND__TASK_ACTOR_CREATE && s->actor_id.len == MT_ACTOR_ID_LEN)
            report_actor(c, s->actor_id.data,
                            s->attempt ? MANTA__ACTOR_STATE__ACTOR_RESTARTING
                                       : MANTA__ACTOR_STATE__ACTOR_PENDING,
                            s->attempt);
        mt_exec_task *t = mt_calloc(1, sizeof *t);
        t->batch = b;
        t->spec = s;
        t->conn = conn;
        mt_conn_ref(conn);
        t->caller = peer;
        t->args = mt_calloc((size_t)s->n_args + 1, sizeof *t->args);
        t->rets = mt_calloc((size_t)s->num_returns + 1, sizeof *t->rets);
        if (c->xq_tail) c->xq_tail->next = t;
        else c->xq_head = t;
        c->xq_tail = t;
        c->xq_len++;
    }
    do_loop_notify(c);
    return 0;
}

static void task_free(mt_exec_task *t)
{
    for (size_t i = 0; i < t->spec->n_args; i++)
        if (t->args[i]) mt_value_unref(t->args[i]);
    for (size_t i = 0; i < t->spec->num_returns; i++) {
        exec_ret *r = &t->rets[i];
        if (r->value) mt_value_unref(r->value);
        for (size_t j = 0; j < r->ncontained; j++) free(r->contained[j]);
        free(r->contained);
        free(r->owners);
        free(r->eps);
    }
    free(t->args);
    free(t->rets);
    mt_conn_unref(t->conn);
    if (--t->batch->remaining == 0) {
        manta__push_task__free_unpacked(t->batch->msg, NULL);
        free(t->batch);
    }
    free(t);
}

void do_exec_free_all(mt_core *c)
{
    for (size_t i = 0; i < c->nheld; i++) mt_conn_unref(c->held[i]);
    free(c->held);
    c->held = NULL;
    c->nheld = 0;
    for (mt_exec_task *t = c->xq_head, *next; t; t = next) {
        next = t->next;
        task_free(t);
    }
    c->xq_head = c->xq_tail = NULL;
    c->xq_len = 0;
}

/* Turn the task's arguments into values: in line ones are copied, store
 * ones are pinned and mapped. */
static int resolve_args(mt_core *c, mt_exec_task *t)
{
    const Manta__TaskSpec *s = t->spec;
    size_t np = 0;
    for (size_t i = 0; i < s->n_args; i++) {
        const Manta__TaskArg *a = s->args[i];
        if (a->kind == MANTA__ARG_KIND__ARG_PLASMA) {
            if (a->object_id.len != MT_OBJECT_ID_LEN) return mt_err(MANTA_EPROTO, "bad arg id");
            np++;
        } else {
            t->args[i] = mt_value_copy(a->data.data, a->data.len);
        }
    }
    if (!np) return 0;
    mt_oid *ids = mt_calloc(np, sizeof *ids);
    mt_nid *locs = mt_calloc(np, sizeof *locs);
    size_t *idx = mt_calloc(np, sizeof *idx);
    size_t k = 0;
    for (size_t i = 0; i < s->n_args; i++) {
        const Manta__TaskArg *a = s->args[i];
        if (a->kind != MANTA__ARG_KIND__ARG_PLASMA) continue;
        memcpy(ids[k].b, a->object_id.data, MT_OBJECT_ID_LEN);
        if (a->location.len == MT_NODE_ID_LEN) memcpy(locs[k].b, a->location.data, MT_NODE_ID_LEN);
        idx[k++] = i;
    }
    mt_value **vals = mt_calloc(np, sizeof *vals);
    int rc = do_plasma_get(c, ids, locs, np, mt_now_s() + 60, vals, NULL);
    for (size_t j = 0; j < np; j++) t->args[idx[j]] = vals[j];
    free(vals);
    free(ids);
    free(locs);
    free(idx);
    if (rc) return mt_err(MANTA_EOBJLOST, "an argument of the task is not in the object store");
    return 0;
}

/* Replies held back while more tasks were queued. */
void do_exec_hold(mt_core *c, mt_conn *conn)
{
    for (size_t i = 0; i < c->nheld; i++)
        if (c->held[i] == conn) return;
    c->held = mt_realloc(c->held, (c->nheld + 1) * sizeof *c->held);
    c->held[c->nheld++] = conn;
    mt_conn_ref(conn);
}

void do_exec_flush_held(mt_core *c)
{
    for (size_t i = 0; i < c->nheld; i++) {
        mt_conn_flush(c->held[i]);
        mt_conn_unref(c->held[i]);
    }
    c->nheld = 0;
}

/* Unlink the first queued task; mu held. */
static void take_head(mt_core *c)
{
    mt_exec_task *t = c->xq_head;
    c->xq_head = t->next;
    if (!c->xq_head) c->xq_tail = NULL;
    c->xq_len--;
    t->next = NULL;
    if (c->xq_idle && !c->xq_waiter) pthread_cond_signal(&c->xcv); /* the next one waits */
    if (!c->job_id) c->job_id = t->spec->job_id;
    if (t->spec->kind == MANTA__TASK_KIND__TASK_ACTOR_CREATE &&
        t->spec->actor_id.len == MT_ACTOR_ID_LEN)
        memcpy(c->my_actor.b, t->spec->actor_id.data, MT_ACTOR_ID_LEN);
}

/* Mark t running and resolve its arguments; if they cannot be had, reply
 * with the error and return it.  mu held on entry and on return. */
static int start_task(mt_core *c, mt_exec_task *t)
{
    t->start_ns = mt_now_ns();
    mt_exec_tl_current = t;
    mt_loop_tl_task = t->spec->task_id.data;
    running_add(c, t);
    int rc = resolve_args(c, t);
    if (!rc) return 0;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", manta_last_error());
    pthread_mutex_unlock(&c->mu);
    mt_exec_finish(c, t,
                   rc == MANTA_EOBJLOST ? MANTA__TASK_STATUS__TASK_ARG_LOST
                                        : MANTA__TASK_STATUS__TASK_SYSTEM_ERROR,
                   msg);
    pthread_mutex_lock(&c->mu);
    return rc;
}

int mt_exec_try_next(mt_core *c, mt_exec_task **out)
{
    pthread_mutex_lock(&c->mu);
    mt_exec_task *t = c->xq_head;
    bool ok = t && !c->stopping && !c->daemon_lost && !c->actor_exiting;
    for (size_t i = 0; ok && i < t->spec->n_args; i++)
        ok = t->spec->args[i]->kind != MANTA__ARG_KIND__ARG_PLASMA;
    if (!ok) {
        pthread_mutex_unlock(&c->mu);
        return MANTA_ETIMEDOUT;
    }
    take_head(c);
    int rc = start_task(c, t); /* in line arguments only: copies */
    pthread_mutex_unlock(&c->mu);
    if (rc) return MANTA_ETIMEDOUT;
    *out = t;
    return 0;
}

int mt_exec_next(mt_core *c, double timeout, mt_exec_task **out)
{
    double deadline = timeout < 0 ? -1 : mt_now_s() + timeout;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->stopping || c->daemon_lost) {
            pthread_mutex_unlock(&c->mu);
            return MANTA_ESHUTDOWN;
        }
        mt_exec_task *t = c->xq_head;
        if (!t) {
            do_exec_flush_held(c);
            int rc;
            if (c->xq_waiter) {
                /* Threads of a threaded actor: one waits for tasks, the
                 * others sleep until it leaves with one, so that a task
                 * wakes one thread, not all. */
                c->xq_idle++;
                rc = mt_loop_cond_wait_until(&c->xcv, &c->mu, deadline);
                c->xq_idle--;
            } else {
                c->xq_waiter = true;
                rc = do_loop_wait(c, deadline);
                c->xq_waiter = false;
            }
            if (rc == MANTA_ETIMEDOUT || (deadline >= 0 && !c->xq_head && mt_now_s() >= deadline)) {
                pthread_mutex_unlock(&c->mu);
                return MANTA_ETIMEDOUT;
            }
            continue;
        }
        take_head(c);
        if (c->actor_exiting) {
            pthread_mutex_unlock(&c->mu);
            mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_ACTOR_DEAD,
                           "The actor exited by calling exit_actor() before running this call.");
            pthread_mutex_lock(&c->mu);
            continue;
        }
        if (start_task(c, t)) continue;
        pthread_mutex_unlock(&c->mu);
        *out = t;
        return 0;
    }
}

int mt_exec_notify_fd(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    if (c->task_efd < 0) {
        c->task_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (c->task_efd < 0) {
            pthread_mutex_unlock(&c->mu);
            return mt_err(MANTA_ESYS, "eventfd: %s", strerror(errno));
        }
        c->task_efd_armed = false;
        if (c->xq_head || c->stopping) do_loop_task_signal(c);
    }
    int fd = c->task_efd;
    pthread_mutex_unlock(&c->mu);
    return fd;
}

void mt_exec_ready(mt_core *c, bool *stop, uint64_t *cancels)
{
    pthread_mutex_lock(&c->mu);
    if (c->task_efd >= 0 && c->task_efd_armed) {
        uint64_t n;
        ssize_t r = read(c->task_efd, &n, sizeof n);
        MT_UNUSED(r);
        c->task_efd_armed = false;
    }
    *stop = c->stopping || c->daemon_lost;
    *cancels = c->async_cancels;
    pthread_mutex_unlock(&c->mu);
}

const Manta__TaskSpec *mt_exec_spec(const mt_exec_task *t) { return t->spec; }

mt_value *mt_exec_arg(const mt_exec_task *t, size_t i)
{
    return i < t->spec->n_args ? t->args[i] : NULL;
}

/* ---------------------------------------------------------------- returns */

static void record_contained(mt_core *c, exec_ret *r, mt_obj *const *inner, size_t n)
{
    r->contained = mt_calloc(n + 1, sizeof *r->contained);
    r->owners = mt_calloc(n + 1, sizeof *r->owners);
    r->eps = mt_calloc(n + 1, sizeof *r->eps);
    r->ncontained = n;
    for (size_t i = 0; i < n; i++) {
        Manta__RefInfo *ri = mt_calloc(1, sizeof *ri);
        manta__ref_info__init(ri);
        mt_obj *o = inner[i];
        ri->object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
        if (!o->owner) {
            do_loop_address(c, &r->owners[i], r->eps[i], sizeof r->eps[i]);
        } else {
            manta__address__init(&r->owners[i]);
            r->owners[i].worker_id = MT_BIN(o->owner->wid.b, MT_WORKER_ID_LEN);
            r->owners[i].node_id = MT_BIN(o->owner->nid.b, MT_NODE_ID_LEN);
            snprintf(r->eps[i], sizeof r->eps[i], "%s", o->owner->endpoint ? o->owner->endpoint : "");
            r->owners[i].endpoint = r->eps[i];
        }
        ri->owner = &r->owners[i];
        r->contained[i] = ri;
        /* The reply is a serialized copy of the ref: credit it now, before
         * the reply leaves, so the owner cannot free it in between. */
        do_obj_credit(c, o, +1);
    }
}

uint8_t *mt_exec_return_alloc(mt_core *c, mt_exec_task *t, uint32_t index, uint64_t size,
                              mt_obj *const *contained, size_t ncontained)
{
    if (index >= t->spec->num_returns) {
        mt_err(MANTA_EINVAL, "return index %u out of range (num_returns=%u)", index,
               t->spec->num_returns);
        return NULL;
    }
    exec_ret *r = &t->rets[index];
    if (r->value || r->plasma) {
        mt_err(MANTA_EINVAL, "return %u already set", index);
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    uint8_t *data = NULL;
    if (ncontained) record_contained(c, r, contained, ncontained);
    /* The reply carries small returns while they fit its budget, as Ray
     * does: past it they go to the store, or many would not fit a frame. */
    if (!t->caller || (size <= (uint64_t)mt_cfg.max_inline_bytes &&
                       size <= mt_cfg_inline_task_bytes() - t->inlined)) {
        t->inlined += size;
        r->value = mt_value_new(size);
        data = r->value->data;
    } else {
        mt_tid tid;
        memcpy(tid.b, t->spec->task_id.data, MT_TASK_ID_LEN);
        r->id = mt_oid_for(&tid, index + 1);
        if (do_plasma_create(c, &r->id, size, &t->caller->wid, &t->caller->nid,
                             t->caller->endpoint, &data) == 0) {
            r->plasma = true;
            r->size = size;
        } else {
            data = NULL;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return data;
}

static void running_add(mt_core *c, mt_exec_task *t)
{
    t->rprev = NULL;
    t->rnext = c->running;
    if (c->running) c->running->rprev = t;
    c->running = t;
}

static void running_del(mt_core *c, mt_exec_task *t)
{
    if (t->rprev) t->rprev->rnext = t->rnext;
    else if (c->running == t) c->running = t->rnext;
    if (t->rnext) t->rnext->rprev = t->rprev;
    t->rprev = t->rnext = NULL;
}

/* Send the reply and free the task; lock held. */
static void do_exec_finish(mt_core *c, mt_exec_task *t, int status, const char *error)
{
    const Manta__TaskSpec *s = t->spec;
    Manta__TaskReply rep = MANTA__TASK_REPLY__INIT;
    Manta__ReturnObject ro_s[4], *ro = ro_s;
    Manta__ReturnObject *rp_s[4], **rp = rp_s;
    if (s->num_returns > 4) {
        ro = mt_calloc((size_t)s->num_returns, sizeof *ro);
        rp = mt_calloc((size_t)s->num_returns, sizeof *rp);
    }
    for (uint32_t i = 0; i < s->num_returns; i++) {
        exec_ret *r = &t->rets[i];
        manta__return_object__init(&ro[i]);
        if (r->plasma) {
            do_plasma_seal(c, &r->id);
            ro[i].kind = MANTA__RETURN_KIND__RET_PLASMA;
            ro[i].size = r->size;
        } else if (r->value) {
            ro[i].kind = MANTA__RETURN_KIND__RET_INLINE;
            ro[i].data = MT_BIN(r->value->data, r->value->size);
        }
        ro[i].contained = r->contained;
        ro[i].n_contained = r->ncontained;
        rp[i] = &ro[i];
    }
    rep.task_id = s->task_id;
    rep.status = status;
    rep.error = (char *)(error ? error : "");
    rep.attempt = s->attempt;
    rep.exec_ns = t->start_ns ? mt_now_ns() - t->start_ns : 0;
    rep.retryable = t->retryable;
    if (status == MANTA__TASK_STATUS__TASK_OK && s->kind == MANTA__TASK_KIND__TASK_ACTOR_CREATE &&
        s->actor_id.len == MT_ACTOR_ID_LEN)
        report_actor(c, s->actor_id.data, MANTA__ACTOR_STATE__ACTOR_ALIVE, s->attempt);
    if (status == MANTA__TASK_STATUS__TASK_OK || status == MANTA__TASK_STATUS__TASK_APP_ERROR) {
        rep.returns = rp;
        rep.n_returns = s->num_returns;
    }
    mt_conn_send(t->conn, MANTA__MSG_TYPE__MSG_TASK_REPLY, &rep.base);
    /* With more tasks queued, replies are batched: they leave when the
     * queue runs dry (mt_exec_next) or at the next tick, at the latest. */
    if (c->xq_len == 0) mt_conn_flush(t->conn);
    else do_exec_hold(c, t->conn);
    if (mt_exec_tl_current == t) {
        mt_exec_tl_current = NULL;
        mt_loop_tl_task = NULL;
    }
    running_del(c, t);
    task_free(t);
    if (ro != ro_s) {
        free(ro);
        free(rp);
    }
}

void mt_exec_finish(mt_core *c, mt_exec_task *t, int status, const char *error)
{
    pthread_mutex_lock(&c->mu);
    do_exec_finish(c, t, status, error);
    pthread_mutex_unlock(&c->mu);
}

void mt_exec_set_retryable(mt_exec_task *t, bool retryable) { t->retryable = retryable; }

bool mt_exec_cancel_requested(const mt_exec_task *t) { return t->cancel; }

/* CancelTask from the task's submitter. */
int do_exec_cancel(mt_core *c, mt_conn *conn, const Manta__CancelTask *m)
{
    MT_UNUSED(conn);
    if (m->task_id.len != MT_TASK_ID_LEN) return mt_err(MANTA_EPROTO, "CancelTask without a task id");
    /* Not started: it never runs. */
    mt_exec_task *prev = NULL;
    for (mt_exec_task *t = c->xq_head; t; prev = t, t = t->next) {
        if (memcmp(t->spec->task_id.data, m->task_id.data, MT_TASK_ID_LEN)) continue;
        if (prev) prev->next = t->next;
        else c->xq_head = t->next;
        if (c->xq_tail == t) c->xq_tail = prev;
        c->xq_len--;
        if (m->requeue) do_exec_finish(c, t, MANTA__TASK_STATUS__TASK_REQUEUE, "handed back");
        else do_exec_finish(c, t, MANTA__TASK_STATUS__TASK_CANCELLED, "cancelled before it ran");
        return 0;
    }
    if (m->requeue) return 0; /* started, or done: it stays */
    for (mt_exec_task *t = c->running; t; t = t->rnext) {
        if (memcmp(t->spec->task_id.data, m->task_id.data, MT_TASK_ID_LEN)) continue;
        if (t->spec->kind == MANTA__TASK_KIND__TASK_ACTOR_CALL && c->task_efd >= 0) {
            /* An async actor (it watches task_efd): its event loop cancels
             * the call's coroutine. */
            t->cancel = true;
            c->async_cancels++;
            do_loop_task_signal(c);
            return 0;
        }
        if (t->spec->kind != MANTA__TASK_KIND__TASK_NORMAL) return 0; /* running actor calls go on */
        if (m->recursive) {
            mt_tid tid;
            memcpy(tid.b, t->spec->task_id.data, MT_TASK_ID_LEN);
            do_sub_cancel_children(c, &tid);
        }
        if (m->force) {
            /* The submitter sees the worker die and reports the task cancelled. */
            mt_debug("cancel(force=True): worker pid %d exits", (int)getpid());
            _exit(1);
        }
        t->cancel = true;
        /* Python tasks get KeyboardInterrupt from the worker's SIGINT handler. */
        if (c->lang == MANTA__LANGUAGE__LANG_PYTHON) kill(getpid(), SIGINT);
        return 0;
    }
    return 0;
}

void mt_exec_drain(mt_core *c, int status, const char *error)
{
    pthread_mutex_lock(&c->mu);
    for (;;) {
        mt_exec_task *t = c->xq_head;
        if (!t) break;
        c->xq_head = t->next;
        if (!c->xq_head) c->xq_tail = NULL;
        c->xq_len--;
        pthread_mutex_unlock(&c->mu);
        mt_exec_finish(c, t, status, error);
        pthread_mutex_lock(&c->mu);
    }
    do_exec_flush_held(c);
    pthread_mutex_unlock(&c->mu);
}

void mt_exec_actor_exit(mt_core *c)
{
    pthread_mutex_lock(&c->mu);
    if (!MT_ID_IS_NIL(c->my_actor)) {
        Manta__ActorUpdate u = MANTA__ACTOR_UPDATE__INIT;
        Manta__ActorInfo info = MANTA__ACTOR_INFO__INIT;
        info.actor_id = MT_BIN(c->my_actor.b, MT_ACTOR_ID_LEN);
        info.state = MANTA__ACTOR_STATE__ACTOR_DEAD;
        info.death_cause = "The actor exited intentionally by calling exit_actor().";
        info.intentional = true;
        u.info = &info;
        do_loop_send_gcs(c, MANTA__MSG_TYPE__MSG_ACTOR_UPDATE, &u.base);
    }
    c->actor_exiting = true;
    pthread_mutex_unlock(&c->mu);
}

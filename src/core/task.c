/* task.c -- one task from its owner's side, for the task submitter
 * (submit.c) and the actor submitter (actor.c) alike: building it (copies
 * of its arguments, counts on the refs it takes, its pending returns),
 * watching its dependencies, its message to a worker, and its end (finish,
 * failure, lineage kept to rebuild lost returns). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task.h"
#include "config.h"
#include "mt.h"

/* ---------------------------------------------------------------- building */

mt_task *do_task_new(mt_core *c, int kind, const mt_targ *args, uint32_t nargs,
                     uint32_t num_returns, mt_obj **returns)
{
    mt_task *t = mt_calloc(1, sizeof *t);
    t->id = do_loop_new_task_id(c);
    t->kind = kind;
    t->nargs = nargs;
    t->args = mt_calloc(nargs + 1, sizeof *t->args);
    for (uint32_t i = 0; i < nargs; i++) {
        const mt_targ *s = &args[i];
        mt_targ *a = &t->args[i];
        a->kind = s->kind;
        a->keyword = s->keyword ? mt_strdup(s->keyword) : NULL;
        if (s->ref) {
            a->ref = s->ref;
            a->ref->submitted++;
        } else {
            a->data = mt_memdup(s->data, s->size);
            a->size = s->size;
        }
        if (s->ncontained) {
            a->contained = mt_calloc(s->ncontained, sizeof *a->contained);
            a->ncontained = s->ncontained;
            for (uint32_t j = 0; j < s->ncontained; j++) {
                a->contained[j] = s->contained[j];
                a->contained[j]->submitted++;
            }
        }
    }
    t->num_returns = num_returns;
    t->returns = mt_calloc(num_returns + 1, sizeof *t->returns);
    for (uint32_t i = 0; i < num_returns; i++) {
        mt_oid id = mt_oid_for(&t->id, i + 1);
        mt_obj *o = do_obj_new_owned(c, &id);
        o->producing = true;
        o->actor_ret = kind == MANTA__TASK_KIND__TASK_ACTOR_CALL;
        t->returns[i] = o;
        if (returns) {
            o->local = 1;
            returns[i] = o;
        }
    }
    mt_map_put(&c->tasks, t);
    c->tasks_submitted++;
    return t;
}

void mt_task_res_wire(char *const *names, const int64_t *amounts, uint32_t n, Manta__Resource *rs,
                      Manta__Resource **rp)
{
    for (uint32_t i = 0; i < n; i++) {
        manta__resource__init(&rs[i]);
        rs[i].name = names[i];
        rs[i].amount = amounts[i];
        rp[i] = &rs[i];
    }
}

/* ---------------------------------------------------------------- dependencies */

static void add_dependent(mt_obj *o, mt_task *t)
{
    o->dependents = mt_realloc(o->dependents, (o->ndependents + 1) * sizeof *o->dependents);
    o->dependents[o->ndependents++] = t;
}

uint32_t do_task_watch_deps(mt_core *c, mt_task *t)
{
    t->ndeps = 0;
    for (uint32_t i = 0; i < t->nargs; i++) {
        mt_obj *o = t->args[i].ref;
        if (!o || o->state == MT_OBJ_READY) continue;
        add_dependent(o, t);
        t->ndeps++;
        do_obj_want(c, o);
    }
    return t->ndeps;
}

static void drop_dependent(mt_obj *o, mt_task *t)
{
    for (uint32_t i = 0; i < o->ndependents; i++) {
        if (o->dependents[i] != t) continue;
        o->dependents[i] = o->dependents[--o->ndependents];
        return;
    }
}

mt_task **do_task_take_dependents(mt_obj *o, uint32_t *n)
{
    mt_task **deps = o->dependents;
    *n = o->ndependents;
    o->dependents = NULL;
    o->ndependents = 0;
    return deps;
}

void do_task_unwatch_deps(mt_task *t)
{
    for (uint32_t i = 0; i < t->nargs; i++)
        if (t->args[i].ref) drop_dependent(t->args[i].ref, t);
}

/* ---------------------------------------------------------------- the message */

static Manta__TaskArg *build_arg(mt_core *c, const mt_targ *a, Manta__TaskArg *pa,
                                 Manta__Address *owner, char *ep, size_t cap)
{
    manta__task_arg__init(pa);
    if (a->keyword) pa->keyword = MT_BIN(a->keyword, strlen(a->keyword));
    if (!a->ref) {
        pa->kind = MANTA__ARG_KIND__ARG_INLINE;
        pa->data = MT_BIN(a->data, a->size);
        return pa;
    }
    mt_obj *o = a->ref;
    pa->is_ref = true;
    if (o->in_plasma) {
        pa->kind = MANTA__ARG_KIND__ARG_PLASMA;
        pa->object_id = MT_BIN(o->id.b, MT_OBJECT_ID_LEN);
        if (!o->owner) do_loop_address(c, owner, ep, cap);
        else mt_loop_peer_address(o->owner, owner);
        pa->owner = owner;
        /* The worker's node fetches it from there; the worker is on some
         * node, so say which even when it is ours. */
        static const mt_nid zero;
        const mt_nid *loc = MT_ID_EQ(o->loc, zero) ? &c->nid : &o->loc;
        pa->location = MT_BIN(loc->b, MT_NODE_ID_LEN);
    } else {
        pa->kind = MANTA__ARG_KIND__ARG_INLINE;
        pa->data = MT_BIN(o->value->data, o->value->size);
    }
    return pa;
}

#define PUSH_STACK 8

/* Write the task's message to `conn` (not flushed).  Small tasks (nearly
 * all) build their message on the stack. */
void do_task_send(mt_core *c, mt_conn *conn, mt_task *t, const int32_t *gpus, size_t ngpu,
                  char *const *res_names, const int64_t *res_amounts, uint32_t nres)
{
    Manta__TaskSpec s = MANTA__TASK_SPEC__INIT;
    Manta__TaskSpec *sp = &s;
    Manta__PushTask m = MANTA__PUSH_TASK__INIT;
    Manta__TaskArg pa_s[PUSH_STACK], *pa = pa_s;
    Manta__TaskArg *pp_s[PUSH_STACK], **pp = pp_s;
    Manta__Address owners_s[PUSH_STACK], *owners = owners_s;
    char eps_s[PUSH_STACK][256], (*eps)[256] = eps_s;
    Manta__Resource rs_s[PUSH_STACK], *rs = rs_s;
    Manta__Resource *rp_s[PUSH_STACK], **rp = rp_s;
    bool big_args = t->nargs > PUSH_STACK, big_res = nres > PUSH_STACK;
    if (big_args) {
        pa = mt_calloc(t->nargs, sizeof *pa);
        pp = mt_calloc(t->nargs, sizeof *pp);
        owners = mt_calloc(t->nargs, sizeof *owners);
        eps = mt_calloc(t->nargs, sizeof *eps);
    }
    if (big_res) {
        rs = mt_calloc(nres, sizeof *rs);
        rp = mt_calloc(nres, sizeof *rp);
    }
    for (uint32_t i = 0; i < t->nargs; i++)
        pp[i] = build_arg(c, &t->args[i], &pa[i], &owners[i], eps[i], sizeof eps[i]);
    mt_task_res_wire(res_names, res_amounts, nres, rs, rp);
    s.task_id = MT_BIN(t->id.b, MT_TASK_ID_LEN);
    s.job_id = c->job_id;
    s.kind = t->kind;
    s.function_id = MT_BIN(t->fn_id, MT_FN_ID_LEN);
    s.name = t->name;
    s.args = pp;
    s.n_args = t->nargs;
    s.num_returns = t->num_returns;
    s.attempt = t->attempt;
    s.gpu_ids = (int32_t *)gpus;
    s.n_gpu_ids = ngpu;
    s.resources = rp;
    s.n_resources = nres;
    s.retry_exceptions = MT_BIN(t->retry_exc, t->retry_exc_len);
    if (t->actor) {
        s.actor_id = MT_BIN(t->actor_id.b, MT_ACTOR_ID_LEN);
        s.seq = t->seq;
        s.method = t->method ? t->method : "";
        s.max_concurrency = t->max_concurrency;
        s.is_async = t->is_async;
        s.caller_id = MT_BIN(c->wid.b, MT_WORKER_ID_LEN);
    }
    m.tasks = &sp;
    m.n_tasks = 1;
    mt_conn_send(conn, MANTA__MSG_TYPE__MSG_PUSH_TASK, &m.base);
    if (big_args) {
        free(pa);
        free(pp);
        free(owners);
        free(eps);
    }
    if (big_res) {
        free(rs);
        free(rp);
    }
}

/* ---------------------------------------------------------------- the end */

/* Free the task's own memory (not the objects it counts). */
static void task_release(mt_task *t)
{
    for (uint32_t i = 0; i < t->nargs; i++) {
        free(t->args[i].contained);
        free(t->args[i].data);
        free(t->args[i].keyword);
    }
    free(t->args);
    free(t->returns);
    free(t->name);
    free(t->method);
    free(t->retry_exc);
    free(t);
}

/* Release what a task holds (its arguments) and free it. */
static void task_free(mt_core *c, mt_task *t)
{
    for (uint32_t i = 0; i < t->nargs; i++) {
        mt_targ *a = &t->args[i];
        if (a->ref) {
            a->ref->submitted--;
            do_obj_maybe_free(c, a->ref);
        }
        for (uint32_t j = 0; j < a->ncontained; j++) {
            a->contained[j]->submitted--;
            do_obj_maybe_free(c, a->contained[j]);
        }
    }
    if (t->anchor) {
        t->anchor->submitted--;
        do_obj_maybe_free(c, t->anchor);
    }
    task_release(t);
}

/* Lineage: a finished plain task whose returns sit in a store stays (with
 * its arguments) while any of those returns lives and retries are left,
 * so that a return lost with its node can be made again. */
static bool keep_lineage(const mt_task *t)
{
    if (t->kind != MANTA__TASK_KIND__TASK_NORMAL || t->retries_left == 0 || t->cancelled)
        return false;
    for (uint32_t i = 0; i < t->num_returns; i++)
        if (t->returns[i] && t->returns[i]->in_plasma) return true;
    return false;
}

static void lineage_drop(mt_core *c, mt_task *t)
{
    mt_map_del(&c->lineage, &t->id);
    for (uint32_t i = 0; i < t->num_returns; i++) {
        mt_obj *o = t->returns[i];
        if (o && o->lineage == t) o->lineage = NULL;
    }
    task_free(c, t);
}

void do_task_lineage_release(mt_core *c, mt_obj *o)
{
    mt_task *t = o->lineage;
    o->lineage = NULL;
    for (uint32_t i = 0; i < t->num_returns; i++)
        if (t->returns[i] == o) t->returns[i] = NULL;
    if (--t->lineage_refs == 0 && t->state == MT_TASK_DONE) lineage_drop(c, t);
}

void do_task_finish(mt_core *c, mt_task *t)
{
    /* One that ends while it still waits for arguments (cancelled, or its
     * actor died) must not stay listed on those objects. */
    if (t->ndeps) {
        do_task_unwatch_deps(t);
        t->ndeps = 0;
    }
    t->state = MT_TASK_DONE;
    mt_map_del(&c->tasks, &t->id);
    c->tasks_done++;
    uint32_t n = t->num_returns;
    mt_obj **rets = mt_memdup(t->returns, (n + 1) * sizeof *rets);
    if (keep_lineage(t)) {
        mt_map_put(&c->lineage, t);
        for (uint32_t i = 0; i < n; i++) {
            mt_obj *o = t->returns[i];
            if (!o) continue;
            o->producing = false;
            if (!o->in_plasma) {
                t->returns[i] = NULL; /* lives on its own: nothing to rebuild */
            } else if (o->lineage != t) {
                o->lineage = t;
                t->lineage_refs++;
            }
        }
        t->lineage_refs++; /* while we let go of the returns below */
        for (uint32_t i = 0; i < n; i++)
            if (rets[i]) do_obj_maybe_free(c, rets[i]);
        if (--t->lineage_refs == 0) lineage_drop(c, t);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            mt_obj *o = t->returns[i];
            if (!o) continue;
            o->producing = false;
            if (o->lineage == t) o->lineage = NULL;
        }
        mt_map_del(&c->lineage, &t->id);
        task_free(c, t);
        for (uint32_t i = 0; i < n; i++)
            if (rets[i]) do_obj_maybe_free(c, rets[i]);
    }
    free(rets);
}

/* Every return of `t` becomes `err` (shared); the task is over. */
void do_task_fail(mt_core *c, mt_task *t, mt_value *err)
{
    for (uint32_t i = 0; i < t->num_returns; i++) {
        if (!t->returns[i]) continue;
        mt_value_ref(err);
        do_obj_fail(c, t->returns[i], err);
    }
    mt_value_unref(err);
    do_task_finish(c, t);
}

/* A dependency failed: the task fails with the same error, without running
 * (a RayTaskError flows through the graph).  Or its in-line arguments are
 * more than its message can carry (refs resolved after do_obj_args_fit,
 * or not ours): it fails with a clear error instead of being sent to a
 * worker that would refuse it. */
bool do_task_fail_on_error_arg(mt_core *c, mt_task *t)
{
    uint64_t inline_bytes = 0;
    for (uint32_t i = 0; i < t->nargs; i++) {
        mt_obj *o = t->args[i].ref;
        if (!o) inline_bytes += t->args[i].size;
        if (!o || !o->value) continue;
        if (!o->in_plasma) inline_bytes += o->value->size;
        if (!mt_value_is_error(o->value, NULL)) continue;
        mt_value_ref(o->value);
        do_task_fail(c, t, o->value);
        return true;
    }
    /* Room for the rest of the message: names, resources, ids. */
    uint64_t frame = mt_cfg_max_frame();
    if (inline_bytes + 64 * 1024 <= frame) return false;
    do_task_fail(c, t,
                 mt_value_error(MANTA_ETOOBIG,
                                "%s: its %u arguments carry %llu bytes in line, more than a task "
                                "message may (max_frame_bytes=%llu). Pass large values by "
                                "ref (put them first) and fewer refs to small values in one "
                                "call (or a list of them).",
                                t->name, t->nargs, (unsigned long long)inline_bytes,
                                (unsigned long long)frame));
    return true;
}

int do_check_name(const char *what, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n <= MT_NAME_MAX) return 0;
    return mt_err(MANTA_EINVAL, "the %s is %zu bytes long, more than the %d a name may have", what,
                  n, MT_NAME_MAX);
}

mt_value *mt_task_cancelled_error(const mt_task *t)
{
    char hex[2 * MT_TASK_ID_LEN + 1];
    return mt_value_error(MANTA_ECANCELLED, "Task %s (%s) was cancelled.",
                          mt_hex(t->id.b, MT_TASK_ID_LEN, hex), t->name);
}

/* At disconnect: free every task, pending or kept for lineage, without
 * touching the objects (freed with them). */
void do_task_free_all(mt_core *c)
{
    size_t n;
    void **items = mt_map_items(&c->tasks, &n);
    for (size_t i = 0; i < n; i++) task_release(items[i]);
    free(items);
    items = mt_map_items(&c->lineage, &n);
    for (size_t i = 0; i < n; i++) task_release(items[i]);
    free(items);
    mt_map_free(&c->tasks);
    mt_map_free(&c->lineage);
}

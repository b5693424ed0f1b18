/* capi_actor.c -- actors in the C API: classes registered by name,
 * handles, calls, and the worker side that runs constructors and methods.
 *
 * A handle passed as an argument travels as bytes:
 *   "MTAH" | u8 version (1) | u8 detached | 16-byte actor id | packed owner Address
 * and its anchor ref rides along as a contained ref, so the receiver can
 * register as a borrower before the sender lets go. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi.h"
#include "mt.h"
#include "resources.h"

#define MANTA_API MANTA_EXPORT
#define HANDLE_MAGIC "MTAH"
#define HANDLE_HDR (4 + 1 + 1 + MT_ACTOR_ID_LEN)

typedef struct reg_class {
    char *name;
    manta_ctor_fn ctor;
} reg_class;

typedef struct reg_method {
    char *key; /* "<class>_<method>" */
    manta_method_fn fn;
} reg_method;

static pthread_mutex_t r_mu = PTHREAD_MUTEX_INITIALIZER;
static reg_class *classes;
static size_t nclasses;
static reg_method *methods;
static size_t nmethods;

/* The actor this worker runs. */
static void *self_state;
static char *self_class;

/* ---------------------------------------------------------------- registry */

MANTA_API int manta_register_actor(const char *class_name, manta_ctor_fn ctor)
{
    if (!class_name || !class_name[0] || !ctor)
        return mt_err(MANTA_EINVAL, "manta_register_actor needs a class name and a constructor");
    pthread_mutex_lock(&r_mu);
    classes = mt_realloc(classes, (nclasses + 1) * sizeof *classes);
    classes[nclasses++] = (reg_class){mt_strdup(class_name), ctor};
    pthread_mutex_unlock(&r_mu);
    return 0;
}

MANTA_API int manta_register_method(const char *class_name, const char *method,
                                    manta_method_fn fn)
{
    if (!class_name || !class_name[0] || !method || !method[0] || !fn)
        return mt_err(MANTA_EINVAL, "manta_register_method needs a class, a method and a function");
    size_t len = strlen(class_name) + strlen(method) + 2;
    char *key = mt_malloc(len);
    snprintf(key, len, "%s_%s", class_name, method);
    pthread_mutex_lock(&r_mu);
    methods = mt_realloc(methods, (nmethods + 1) * sizeof *methods);
    methods[nmethods++] = (reg_method){key, fn};
    pthread_mutex_unlock(&r_mu);
    return 0;
}

static manta_ctor_fn find_ctor(const char *name)
{
    manta_ctor_fn f = NULL;
    pthread_mutex_lock(&r_mu);
    for (size_t i = nclasses; i-- > 0 && !f;)
        if (!strcmp(classes[i].name, name)) f = classes[i].ctor;
    pthread_mutex_unlock(&r_mu);
    return f ? f : (manta_ctor_fn)(uintptr_t)capi_dlsym(name);
}

static manta_method_fn find_method(const char *cls, const char *method)
{
    char key[512];
    snprintf(key, sizeof key, "%s_%s", cls, method);
    manta_method_fn f = NULL;
    pthread_mutex_lock(&r_mu);
    for (size_t i = nmethods; i-- > 0 && !f;)
        if (!strcmp(methods[i].key, key)) f = methods[i].fn;
    pthread_mutex_unlock(&r_mu);
    return f ? f : (manta_method_fn)(uintptr_t)capi_dlsym(key);
}

/* ---------------------------------------------------------------- handles */

static manta_actor *handle_new(mt_core *c, const mt_aid *id, mt_obj *anchor, bool detached)
{
    manta_actor *a = mt_calloc(1, sizeof *a);
    a->id = *id;
    a->anchor = anchor;
    a->detached = detached;
    Manta__Address owner;
    char ep[512];
    if (anchor) {
        mt_core_ref_owner(c, anchor, &owner, ep, sizeof ep);
    } else {
        manta__address__init(&owner);
    }
    size_t alen = manta__address__get_packed_size(&owner);
    a->wire_len = HANDLE_HDR + alen;
    a->wire = mt_malloc(a->wire_len);
    memcpy(a->wire, HANDLE_MAGIC, 4);
    a->wire[4] = 1;
    a->wire[5] = detached;
    memcpy(a->wire + 6, id->b, MT_ACTOR_ID_LEN);
    manta__address__pack(&owner, a->wire + HANDLE_HDR);
    return a;
}

MANTA_API void manta_actor_opts_init(manta_actor_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_cpus = -1;
    o->max_concurrency = 1;
}

MANTA_API manta_arg manta_arg_actor(const manta_actor *a)
{
    return (manta_arg){.data = a ? a->wire : NULL, .size = a ? a->wire_len : 0, .actor = a};
}

MANTA_API int manta_actor_from_arg(const manta_arg_view *arg, manta_actor **out)
{
    mt_core *c = capi_core();
    if (!c) return mt_err(MANTA_ENOTINIT, "call manta_init() first");
    if (!arg || !out || arg->size < HANDLE_HDR || memcmp(arg->data, HANDLE_MAGIC, 4) ||
        ((const uint8_t *)arg->data)[4] != 1)
        return mt_err(MANTA_EINVAL, "the argument is not an actor handle");
    const uint8_t *p = arg->data;
    mt_aid id;
    memcpy(id.b, p + 6, MT_ACTOR_ID_LEN);
    bool detached = p[5];
    mt_obj *anchor = NULL;
    if (!detached) {
        Manta__Address *owner =
            manta__address__unpack(NULL, arg->size - HANDLE_HDR, p + HANDLE_HDR);
        if (!owner) return mt_err(MANTA_EINVAL, "corrupt actor handle");
        mt_oid aid = mt_actor_anchor_id(&id);
        int err;
        anchor = mt_core_ref_from_wire(c, &aid, owner, &err);
        manta__address__free_unpacked(owner, NULL);
    }
    *out = handle_new(c, &id, anchor, detached);
    return 0;
}

MANTA_API void manta_actor_release(manta_actor *a)
{
    if (!a) return;
    mt_core *c = capi_core();
    if (a->anchor && c) mt_obj_decref(c, a->anchor);
    free(a->wire);
    free(a);
}

/* ---------------------------------------------------------------- create / call */

static int actor_resources(const manta_actor_opts *o, mt_res_set *held, mt_res_set *place)
{
    char err[256];
    if (o->resources_json && o->resources_json[0] &&
        mt_res_parse_json(o->resources_json, held, err, sizeof err))
        return mt_err(MANTA_EINVAL, "resources: %s", err);
    if (mt_res_get(held, "CPU") || mt_res_get(held, "GPU"))
        return mt_err(MANTA_EINVAL, "resources: use num_cpus/num_gpus for CPU and GPU");
    int64_t gpu = 0, cpu = 0;
    if (o->num_gpus != 0 && mt_res_from_double("num_gpus", o->num_gpus, &gpu, err, sizeof err))
        return mt_err(MANTA_EINVAL, "%s", err);
    mt_res_put(held, "GPU", gpu);
    /* Below 0 means "not given"; NaN is no amount at all, not a default. */
    bool given = o->num_cpus >= 0 || isnan(o->num_cpus);
    bool asked = held->n > 0 || given;
    if (given && mt_res_from_double("num_cpus", o->num_cpus, &cpu, err, sizeof err))
        return mt_err(MANTA_EINVAL, "%s", err);
    /* Ray's rule: an actor that asks for nothing needs 1 CPU to be placed
     * and holds none; one that asks for something holds what it asked. */
    mt_res_copy(place, held);
    if (!asked) {
        mt_res_put(place, "CPU", MT_RES_UNIT);
    } else {
        mt_res_put(held, "CPU", given ? cpu : MT_RES_UNIT);
        mt_res_put(place, "CPU", given ? cpu : MT_RES_UNIT);
    }
    return 0;
}

static void res_arrays(const mt_res_set *s, const char ***names, int64_t **amounts)
{
    *names = mt_calloc(s->n + 1, sizeof **names);
    *amounts = mt_calloc(s->n + 1, sizeof **amounts);
    for (uint32_t i = 0; i < s->n; i++) {
        (*names)[i] = s->v[i].name;
        (*amounts)[i] = s->v[i].amount;
    }
}

MANTA_API int manta_actor_create(const char *class_name, const manta_arg *args, size_t nargs,
                                 const manta_actor_opts *opts, manta_actor **out)
{
    mt_core *c = capi_core();
    if (!c) return mt_err(MANTA_ENOTINIT, "call manta_init() first");
    manta_actor_opts dflt;
    if (!opts) {
        manta_actor_opts_init(&dflt);
        opts = &dflt;
    }
    if (!class_name || !class_name[0] || !out || (nargs && !args))
        return mt_err(MANTA_EINVAL, "manta_actor_create: bad arguments");
    if (opts->max_concurrency < 1) return mt_err(MANTA_EINVAL, "max_concurrency must be >= 1");
    mt_res_set held, place;
    mt_res_init(&held);
    mt_res_init(&place);
    int rc = actor_resources(opts, &held, &place);
    if (rc) {
        mt_res_free(&held);
        mt_res_free(&place);
        return rc;
    }
    const char **hn, **pn;
    int64_t *ha, *pa;
    res_arrays(&held, &hn, &ha);
    res_arrays(&place, &pn, &pa);
    mt_targ *targs;
    rc = capi_targs(args, nargs, &targs);
    mt_actor_desc d = {.class_name = class_name, .lang = MANTA__LANGUAGE__LANG_C, .args = targs,
                       .nargs = (uint32_t)nargs, .res_names = hn, .res_amounts = ha,
                       .nres = held.n, .place_names = pn, .place_amounts = pa, .nplace = place.n,
                       .name = opts->name, .detached = opts->detached,
                       .max_concurrency = (uint32_t)opts->max_concurrency};
    mt_aid id;
    mt_obj *anchor = NULL;
    uint8_t *existing = NULL;
    size_t elen = 0;
    if (!rc) rc = mt_core_actor_create(c, &d, &id, &anchor, &existing, &elen);
    free(existing);
    if (rc == MANTA_EEXIST) rc = mt_err(rc, "an actor named '%s' exists already", opts->name);
    if (!rc) *out = handle_new(c, &id, anchor, opts->detached);
    capi_targs_free(targs, args, nargs);
    free(hn);
    free(ha);
    free(pn);
    free(pa);
    mt_res_free(&held);
    mt_res_free(&place);
    return rc;
}

MANTA_API int manta_actor_call(const manta_actor *a, const char *method, const manta_arg *args,
                               size_t nargs, int num_returns, manta_ref **out)
{
    mt_core *c = capi_core();
    if (!c) return mt_err(MANTA_ENOTINIT, "call manta_init() first");
    if (!a || !method || !method[0] || num_returns < 0 || (num_returns && !out) ||
        (nargs && !args))
        return mt_err(MANTA_EINVAL, "manta_actor_call: bad arguments");
    mt_targ *targs;
    int rc = capi_targs(args, nargs, &targs);
    mt_obj **rets = mt_calloc((size_t)num_returns + 1, sizeof *rets);
    if (!rc)
        rc = mt_core_actor_call(c, &a->id, method, targs, (uint32_t)nargs, (uint32_t)num_returns,
                                a->anchor, rets);
    for (int i = 0; !rc && i < num_returns; i++) out[i] = capi_wrap(rets[i]);
    capi_targs_free(targs, args, nargs);
    free(rets);
    return rc;
}

MANTA_API int manta_actor_kill(const manta_actor *a)
{
    mt_core *c = capi_core();
    if (!c) return mt_err(MANTA_ENOTINIT, "call manta_init() first");
    if (!a) return mt_err(MANTA_EINVAL, "manta_actor_kill: no actor");
    return mt_core_actor_kill(c, &a->id, true);
}

/* ---------------------------------------------------------------- worker side */

static void *serve(void *arg)
{
    mt_core *c = arg;
    for (;;) {
        mt_exec_task *t;
        int rc = mt_exec_next(c, -1, &t);
        if (rc == MANTA_ESHUTDOWN) break;
        if (!rc) capi_run_actor(c, t);
    }
    return NULL;
}

static void run_ctor(mt_core *c, mt_exec_task *t)
{
    const Manta__TaskSpec *s = mt_exec_spec(t);
    manta_ctor_fn ctor = find_ctor(s->name ? s->name : "");
    char err[1024] = "";
    if (!ctor) snprintf(err, sizeof err, "no C actor class named '%s' in worker pid %d", s->name,
                        (int)getpid());
    void *state = NULL;
    if (ctor) {
        manta_arg_view *views = capi_views(t);
        state = ctor(views, s->n_args, err, sizeof err);
        free(views);
        if (!state && !err[0]) snprintf(err, sizeof err, "the constructor of %s failed", s->name);
    }
    if (!state) {
        capi_fail(c, t, err);
        return;
    }
    self_state = state;
    free(self_class);
    self_class = mt_strdup(s->name);
    uint32_t conc = s->max_concurrency;
    manta_result res = {.task = t};
    for (uint32_t i = 0; i < s->num_returns; i++) manta_result_set(&res, i, "", 0);
    mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_OK, NULL);
    /* max_concurrency > 1: more threads take calls from the same queue. */
    for (uint32_t i = 1; i < conc; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, serve, c) == 0) pthread_detach(th);
    }
}

void capi_run_actor(mt_core *c, mt_exec_task *t)
{
    const Manta__TaskSpec *s = mt_exec_spec(t);
    if (s->kind == MANTA__TASK_KIND__TASK_ACTOR_CREATE) {
        run_ctor(c, t);
        return;
    }
    manta_method_fn fn = self_class ? find_method(self_class, s->method ? s->method : "") : NULL;
    if (!fn) {
        char msg[512];
        snprintf(msg, sizeof msg, "actor class %s has no method '%s'",
                 self_class ? self_class : "(none)", s->method ? s->method : "");
        capi_fail(c, t, msg);
        return;
    }
    manta_arg_view *views = capi_views(t);
    manta_result res = {.task = t};
    int rc = fn(self_state, views, s->n_args, &res);
    free(views);
    if (rc || res.failed) {
        if (!res.failed) snprintf(res.error, sizeof res.error, "%s.%s returned %d", self_class,
                                  s->method, rc);
        capi_fail(c, t, res.error);
        return;
    }
    for (uint32_t i = 0; i < s->num_returns; i++) manta_result_set(&res, i, "", 0);
    mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_OK, NULL);
}

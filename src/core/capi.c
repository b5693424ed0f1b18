/* capi.c -- the public C API (include/manta.h) over the client runtime:
 * one runtime per process, C functions registered by name, C workers that
 * serve tasks inside manta_init(). */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capi.h"
#include "config.h"
#include "router.h"
#include "mt.h"
#include "resources.h"
#include "start.h"

#define MANTA_API MANTA_EXPORT

struct manta_value {
    mt_value *v;
    const uint8_t *data;
    size_t size;
};


typedef struct reg_fn {
    char *name;
    manta_task_fn fn;
} reg_fn;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static mt_core *G;
static reg_fn *g_fns;
static size_t g_nfns;
static void *g_lib; /* library mode: dlopen()ed in workers and drivers */

/* ---------------------------------------------------------------- registry */

MANTA_API int manta_register(const char *name, manta_task_fn fn)
{
    if (!name || !name[0] || !fn) return mt_err(MANTA_EINVAL, "manta_register needs a name and a function");
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nfns; i++) {
        if (!strcmp(g_fns[i].name, name)) {
            g_fns[i].fn = fn;
            pthread_mutex_unlock(&g_mu);
            return 0;
        }
    }
    g_fns = mt_realloc(g_fns, (g_nfns + 1) * sizeof *g_fns);
    g_fns[g_nfns].name = mt_strdup(name);
    g_fns[g_nfns].fn = fn;
    g_nfns++;
    pthread_mutex_unlock(&g_mu);
    return 0;
}

mt_core *capi_core(void) { return G; }

void *capi_dlsym(const char *name) { return g_lib ? dlsym(g_lib, name) : NULL; }

static manta_task_fn lookup_fn(const char *name)
{
    manta_task_fn fn = NULL;
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < g_nfns && !fn; i++)
        if (!strcmp(g_fns[i].name, name)) fn = g_fns[i].fn;
    pthread_mutex_unlock(&g_mu);
    if (!fn && g_lib) fn = (manta_task_fn)(uintptr_t)dlsym(g_lib, name);
    return fn;
}

/* ---------------------------------------------------------------- config */

MANTA_API void manta_config_init(manta_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->num_cpus = -1;
    cfg->num_gpus = -1;
}

MANTA_API void manta_task_opts_init(manta_task_opts *o)
{
    memset(o, 0, sizeof *o);
    o->num_cpus = 1;
    o->num_returns = 1;
    o->max_retries = 3;
}

MANTA_API manta_arg manta_arg_bytes(const void *data, size_t size)
{
    return (manta_arg){.data = data, .size = size};
}

MANTA_API manta_arg manta_arg_ref(const manta_ref *ref) { return (manta_arg){.ref = ref}; }

/* ---------------------------------------------------------------- worker loop */

manta_arg_view *capi_views(mt_exec_task *t)
{
    const Manta__TaskSpec *s = mt_exec_spec(t);
    manta_arg_view *views = mt_calloc(s->n_args + 1, sizeof *views);
    for (size_t i = 0; i < s->n_args; i++) {
        mt_value *v = mt_exec_arg(t, i);
        mt_valview vv;
        if (v && mt_valfmt_parse(v->data, v->size, &vv) == 0) {
            views[i].data = vv.meta;
            views[i].size = vv.meta_len;
        }
    }
    return views;
}

void capi_fail(mt_core *c, mt_exec_task *t, const char *msg)
{
    /* Every return carries the error, so get() reports it. */
    const Manta__TaskSpec *s = mt_exec_spec(t);
    size_t len = strlen(msg);
    for (uint32_t i = 0; i < s->num_returns; i++) {
        uint8_t *p = mt_exec_return_alloc(c, t, i, mt_valfmt_size(len, NULL, 0), NULL, 0);
        if (!p) continue;
        uint64_t off = mt_valfmt_write(p, MT_FMT_C_ERROR, MANTA_ETASK, len, NULL, 0);
        memcpy(p + off, msg, len);
    }
    mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_APP_ERROR, NULL);
}

static int run_one(mt_core *c, mt_exec_task *t)
{
    const Manta__TaskSpec *s = mt_exec_spec(t);
    if (s->kind != MANTA__TASK_KIND__TASK_NORMAL) {
        capi_run_actor(c, t);
        return 0;
    }
    manta_task_fn fn = lookup_fn(s->name ? s->name : "");
    if (!fn) {
        char msg[512];
        snprintf(msg, sizeof msg, "no C function named '%s' in worker pid %d", s->name,
                 (int)getpid());
        mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_SYSTEM_ERROR, msg);
        return 0;
    }
    manta_arg_view *views = capi_views(t);
    manta_result res = {.task = t};
    int rc = fn(views, s->n_args, &res);
    free(views);
    if (rc || res.failed) {
        if (!res.failed) snprintf(res.error, sizeof res.error, "%s returned %d", s->name, rc);
        capi_fail(c, t, res.error);
        return 0;
    }
    /* Returns the function did not set are empty byte strings. */
    for (uint32_t i = 0; i < s->num_returns; i++) manta_result_set(&res, i, "", 0);
    mt_exec_finish(c, t, MANTA__TASK_STATUS__TASK_OK, NULL);
    return 0;
}

static _Noreturn void worker_loop(mt_core *c)
{
    for (;;) {
        mt_exec_task *t;
        int rc = mt_exec_next(c, -1, &t);
        if (rc == MANTA_ESHUTDOWN) break;
        if (rc) continue;
        run_one(c, t);
    }
    mt_core_disconnect(c);
    _exit(0);
}

static int worker_connect(void)
{
    mt_core_opts o = {.role = MANTA__ROLE__ROLE_WORKER, .lang = MANTA__LANGUAGE__LANG_C};
    o.node_socket = getenv("MANTA_NODE_SOCKET");
    o.runtime = getenv("MANTA_WORKER_RUNTIME"); /* nested C tasks use our kind of worker */
    o.worker_id = getenv("MANTA_WORKER_ID");
    if (!o.node_socket || !o.worker_id) return mt_err(MANTA_EINVAL, "worker without node info");
    mt_core *c;
    int rc = mt_core_connect(&o, &c);
    if (rc) {
        fprintf(stderr, "manta worker: %s\n", manta_last_error());
        _exit(1);
    }
    G = c; /* tasks may submit, put and get too */
    worker_loop(c);
}

/* ---------------------------------------------------------------- init */

static int find_mantad(char *out, size_t cap)
{
    const char *env = getenv("MANTA_DAEMON");
    if (env && env[0]) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    Dl_info info;
    if (dladdr((void *)manta_init, &info) && info.dli_fname) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", info.dli_fname);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        const char *cands[] = {"%s/mantad", "%s/../_bin/mantad", "%s/../libexec/manta/mantad"};
        for (size_t i = 0; i < MT_ARRAY_LEN(cands); i++) {
            snprintf(out, cap, cands[i], slash ? dir : ".");
            if (access(out, X_OK) == 0) return 0;
        }
    }
    return mt_err(MANTA_ENOENT, "cannot find the mantad program; set MANTA_DAEMON to its path");
}

static char *default_runtime(const manta_config *cfg)
{
    char buf[PATH_MAX + 8], exe[PATH_MAX];
    if (cfg && cfg->library) {
        char *real = realpath(cfg->library, NULL);
        snprintf(buf, sizeof buf, "lib:%s", real ? real : cfg->library);
        free(real);
        return mt_strdup(buf);
    }
    ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (l <= 0) return mt_strdup("");
    exe[l] = '\0';
    snprintf(buf, sizeof buf, "exe:%s", exe);
    return mt_strdup(buf);
}

MANTA_API int manta_init(const manta_config *cfg)
{
    mt_err_clear();
    if (getenv("MANTA_WORKER") && !strcmp(getenv("MANTA_WORKER"), "1")) {
        if (cfg && cfg->library && !(g_lib = dlopen(cfg->library, RTLD_NOW | RTLD_LOCAL))) {
            fprintf(stderr, "manta worker: cannot load %s: %s\n", cfg->library, dlerror());
            _exit(1);
        }
        return worker_connect();
    }
    manta_config dflt;
    if (!cfg) {
        manta_config_init(&dflt);
        cfg = &dflt;
    }
    pthread_mutex_lock(&g_mu);
    if (G) {
        pthread_mutex_unlock(&g_mu);
        return mt_err(MANTA_EEXIST, "manta_init was already called");
    }
    if (cfg->library && !(g_lib = dlopen(cfg->library, RTLD_NOW | RTLD_LOCAL))) {
        pthread_mutex_unlock(&g_mu);
        return mt_err(MANTA_EINVAL, "cannot load %s: %s", cfg->library, dlerror());
    }
    char sock[4096], mantad[PATH_MAX];
    pid_t pid = 0;
    int rc;
    if (cfg->address && cfg->address[0]) {
        rc = mt_start_find(cfg->address, sock, sizeof sock);
    } else {
        rc = find_mantad(mantad, sizeof mantad);
        if (!rc)
            rc = mt_start_local(mantad, cfg->num_cpus, cfg->num_gpus, cfg->resources_json,
                                (long long)cfg->object_store_memory, sock, sizeof sock, &pid);
    }
    char *runtime = default_runtime(cfg);
    if (!rc) {
        mt_core_opts o = {.role = MANTA__ROLE__ROLE_DRIVER, .lang = MANTA__LANGUAGE__LANG_C,
                          .node_socket = sock, .owns_cluster = pid > 0, .runtime = runtime,
                          .daemon_pid = pid,
                          .address = pid > 0 || !strcmp(cfg->address, "auto") ? NULL : cfg->address};
        rc = mt_core_connect(&o, &G);
    }
    free(runtime);
    pthread_mutex_unlock(&g_mu);
    return rc;
}

MANTA_API int manta_is_initialized(void) { return G != NULL; }

MANTA_API int manta_shutdown(void)
{
    pthread_mutex_lock(&g_mu);
    mt_core *c = G;
    G = NULL;
    pthread_mutex_unlock(&g_mu);
    if (!c) return 0;
    if (c->daemon_pid > 0) mt_core_request_shutdown(c);
    mt_core_disconnect(c);
    return 0;
}

#define NEED_INIT()                                                                                \
    do {                                                                                           \
        if (!G) return mt_err(MANTA_ENOTINIT, "call manta_init() first");                         \
    } while (0)

/* ---------------------------------------------------------------- objects */

manta_ref *capi_wrap(mt_obj *o)
{
    manta_ref *r = mt_malloc(sizeof *r);
    r->o = o;
    return r;
}

/* Put raw bytes holding `ncontained` refs; *o is a new local ref. */
static int put_raw(const void *data, size_t len, mt_obj *const *contained, size_t ncontained,
                   mt_obj **o)
{
    mt_put p;
    uint8_t *dst;
    int rc = mt_core_put_begin(G, mt_valfmt_size(len, NULL, 0), &p, &dst);
    if (rc) return rc;
    uint64_t off = mt_valfmt_write(dst, MT_FMT_RAW, 0, len, NULL, 0);
    if (len) mt_copy(dst + off, data, len);
    return mt_core_put_end(G, &p, contained, ncontained, o);
}

MANTA_API int manta_put(const void *data, size_t len, manta_ref **out)
{
    NEED_INIT();
    if (!out || (!data && len)) return mt_err(MANTA_EINVAL, "manta_put: bad arguments");
    mt_obj *o;
    int rc = put_raw(data, len, NULL, 0, &o);
    if (rc) return rc;
    *out = capi_wrap(o);
    return 0;
}

static int value_error(const mt_valview *vv)
{
    if (vv->fmt == MT_FMT_ERROR)
        return mt_err(vv->code ? vv->code : MANTA_ETASK, "%.*s", (int)MT_MIN(vv->meta_len, 4000),
                      (const char *)vv->meta);
    /* The code says whose failure it was: a task's, or an actor's constructor. */
    int code = vv->code ? vv->code : MANTA_ETASK;
    if (vv->fmt == MT_FMT_C_ERROR)
        return mt_err(code, "%.*s", (int)MT_MIN(vv->meta_len, 4000), (const char *)vv->meta);
    if (vv->fmt == MT_FMT_PY_ERROR) return mt_err(code, "the Python task raised an exception");
    return 0;
}

MANTA_API int manta_get(const manta_ref *ref, double timeout_s, manta_value **out)
{
    NEED_INIT();
    if (!ref || !out) return mt_err(MANTA_EINVAL, "manta_get: bad arguments");
    mt_value *v = NULL;
    mt_obj *o = ref->o;
    int rc = mt_core_get(G, &o, 1, timeout_s, &v);
    if (rc == MANTA_ETIMEDOUT) return mt_err(rc, "manta_get timed out after %g s", timeout_s);
    if (rc) return rc;
    mt_valview vv;
    rc = mt_valfmt_parse(v->data, v->size, &vv);
    if (!rc) rc = value_error(&vv);
    if (rc) {
        mt_value_unref(v);
        return rc;
    }
    manta_value *mv = mt_malloc(sizeof *mv);
    mv->v = v;
    mv->data = vv.meta;
    mv->size = vv.meta_len;
    *out = mv;
    return 0;
}

MANTA_API const void *manta_value_data(const manta_value *v) { return v ? v->data : NULL; }
MANTA_API size_t manta_value_size(const manta_value *v) { return v ? v->size : 0; }

MANTA_API void manta_value_release(manta_value *v)
{
    if (!v) return;
    mt_value_unref(v->v);
    free(v);
}

MANTA_API int manta_wait(manta_ref *const *refs, size_t n, size_t num_ready, double timeout_s,
                         int *ready)
{
    NEED_INIT();
    if ((!refs && n) || num_ready > n || (!ready && n))
        return mt_err(MANTA_EINVAL, "manta_wait: num_ready must be between 0 and n");
    mt_obj **objs = mt_calloc(n + 1, sizeof *objs);
    uint8_t *r = mt_calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++) {
        if (!refs[i]) {
            free(objs);
            free(r);
            return mt_err(MANTA_EINVAL, "manta_wait: ref %zu is NULL", i);
        }
        objs[i] = refs[i]->o;
    }
    int count = mt_core_wait(G, objs, n, num_ready, timeout_s, true, r);
    for (size_t i = 0; i < n; i++) ready[i] = r[i];
    free(objs);
    free(r);
    return count;
}

MANTA_API manta_ref *manta_ref_dup(const manta_ref *ref)
{
    if (!ref || !G) return NULL;
    mt_obj_incref(G, ref->o);
    return capi_wrap(ref->o);
}

MANTA_API void manta_ref_release(manta_ref *ref)
{
    if (!ref) return;
    if (G) mt_obj_decref(G, ref->o);
    free(ref);
}

MANTA_API const char *manta_ref_hex(const manta_ref *ref, char *buf, size_t cap)
{
    if (!buf || cap < 2 * MT_OBJECT_ID_LEN + 1) return "";
    if (!ref) {
        buf[0] = '\0';
        return buf;
    }
    return mt_hex(ref->o->id.b, MT_OBJECT_ID_LEN, buf);
}

/* ---------------------------------------------------------------- results */

MANTA_API void *manta_result_alloc(manta_result *res, size_t index, size_t len)
{
    if (!res || !G) return NULL;
    uint8_t *p = mt_exec_return_alloc(G, res->task, (uint32_t)index,
                                      mt_valfmt_size(len, NULL, 0), NULL, 0);
    if (!p) return NULL;
    return p + mt_valfmt_write(p, MT_FMT_RAW, 0, len, NULL, 0);
}

MANTA_API int manta_result_set(manta_result *res, size_t index, const void *data, size_t len)
{
    if (!res) return mt_err(MANTA_EINVAL, "manta_result_set: no result");
    void *p = manta_result_alloc(res, index, len);
    if (!p) return MANTA_EINVAL; /* out of range, already set, or no room */
    if (len) mt_copy(p, data, len);
    return 0;
}

MANTA_API int manta_result_error(manta_result *res, const char *fmt, ...)
{
    if (!res) return MANTA_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    res->failed = 1;
    return MANTA_ETASK;
}

/* ---------------------------------------------------------------- submit */

int capi_targs(const manta_arg *args, size_t nargs, mt_targ **out)
{
    mt_targ *targs = *out = mt_calloc(nargs + 1, sizeof *targs);
    for (size_t i = 0; i < nargs; i++) {
        if (args[i].ref) {
            targs[i].kind = MT_ARG_REF;
            targs[i].ref = args[i].ref->o;
            continue;
        }
        const manta_actor *a = args[i].actor;
        mt_obj *anchor = a && a->anchor ? a->anchor : NULL;
        uint64_t size = mt_valfmt_size(args[i].size, NULL, 0);
        if (size > (uint64_t)mt_cfg.max_inline_bytes) {
            /* Too large to travel in line (a task message carries at most
             * max_frame_bytes): it goes by the store, as Python's do. */
            targs[i].kind = MT_ARG_REF;
            int rc = put_raw(args[i].data, args[i].size, &anchor, anchor ? 1 : 0, &targs[i].ref);
            if (rc) return rc;
            continue;
        }
        targs[i].kind = MT_ARG_VALUE;
        targs[i].size = size;
        targs[i].data = mt_malloc(targs[i].size);
        uint64_t off = mt_valfmt_write(targs[i].data, MT_FMT_RAW, 0, args[i].size, NULL, 0);
        if (args[i].size) memcpy(targs[i].data + off, args[i].data, args[i].size);
        if (anchor) {
            /* The handle's anchor is held until the receiver borrowed it. */
            targs[i].contained = mt_calloc(1, sizeof *targs[i].contained);
            targs[i].contained[0] = anchor;
            targs[i].ncontained = 1;
        }
    }
    return 0;
}

void capi_targs_free(mt_targ *t, const manta_arg *args, size_t nargs)
{
    for (size_t i = 0; i < nargs; i++) {
        free(t[i].data);
        free(t[i].contained);
        /* A value we put: the task holds it now, if it was submitted. */
        if (!args[i].ref && t[i].ref) mt_obj_decref(G, t[i].ref);
    }
    free(t);
}

static int parse_resources(const manta_task_opts *o, mt_res_set *rs)
{
    char err[256];
    if (o->resources_json && o->resources_json[0] &&
        mt_res_parse_json(o->resources_json, rs, err, sizeof err))
        return mt_err(MANTA_EINVAL, "resources: %s", err);
    if (mt_res_get(rs, "CPU") || mt_res_get(rs, "GPU"))
        return mt_err(MANTA_EINVAL, "resources: use num_cpus/num_gpus for CPU and GPU");
    int64_t cpu, gpu;
    if (mt_res_from_double("num_cpus", o->num_cpus, &cpu, err, sizeof err) ||
        mt_res_from_double("num_gpus", o->num_gpus, &gpu, err, sizeof err))
        return mt_err(MANTA_EINVAL, "%s", err);
    mt_res_put(rs, "CPU", cpu);
    mt_res_put(rs, "GPU", gpu);
    return 0;
}

MANTA_API int manta_submit(const char *fn_name, const manta_arg *args, size_t nargs,
                           const manta_task_opts *opts, manta_ref **out)
{
    NEED_INIT();
    manta_task_opts dflt;
    if (!opts) {
        manta_task_opts_init(&dflt);
        opts = &dflt;
    }
    if (!fn_name || !fn_name[0]) return mt_err(MANTA_EINVAL, "manta_submit: no function name");
    if (opts->num_returns < 0) return mt_err(MANTA_EINVAL, "num_returns must be >= 0");
    if (opts->max_retries < -1) return mt_err(MANTA_EINVAL, "max_retries must be >= -1");
    if ((nargs && !args) || (opts->num_returns && !out)) return mt_err(MANTA_EINVAL, "manta_submit: bad arguments");
    mt_res_set rs;
    mt_res_init(&rs);
    int rc = parse_resources(opts, &rs);
    if (rc) {
        mt_res_free(&rs);
        return rc;
    }
    mt_targ *targs;
    if ((rc = capi_targs(args, nargs, &targs))) {
        capi_targs_free(targs, args, nargs);
        mt_res_free(&rs);
        return rc;
    }
    const char **names = mt_calloc(rs.n + 1, sizeof *names);
    int64_t *amounts = mt_calloc(rs.n + 1, sizeof *amounts);
    for (uint32_t i = 0; i < rs.n; i++) {
        names[i] = rs.v[i].name;
        amounts[i] = rs.v[i].amount;
    }
    mt_task_desc d = {.kind = MANTA__TASK_KIND__TASK_NORMAL, .name = fn_name,
                      .lang = MANTA__LANGUAGE__LANG_C, .args = targs, .nargs = (uint32_t)nargs,
                      .num_returns = (uint32_t)opts->num_returns, .res_names = names,
                      .res_amounts = amounts, .nres = rs.n, .max_retries = opts->max_retries};
    mt_obj **rets = mt_calloc((size_t)opts->num_returns + 1, sizeof *rets);
    rc = mt_core_submit(G, &d, rets);
    for (int i = 0; !rc && i < opts->num_returns; i++) out[i] = capi_wrap(rets[i]);
    capi_targs_free(targs, args, nargs);
    free(rets);
    free(names);
    free(amounts);
    mt_res_free(&rs);
    return rc;
}

/* ---------------------------------------------------------------- cluster */

static double status_amount(const char *name, bool avail)
{
    if (!G) return 0;
    uint8_t *p;
    size_t n;
    if (mt_core_status(G, &p, &n)) return 0;
    Manta__StatusReply *rep = manta__status_reply__unpack(NULL, n, p);
    free(p);
    if (!rep) return 0;
    int64_t sum = 0;
    for (size_t i = 0; i < rep->n_nodes; i++) {
        Manta__NodeStatus *ns = rep->nodes[i];
        Manta__Resource **v = avail ? ns->available : ns->total;
        size_t nv = avail ? ns->n_available : ns->n_total;
        for (size_t j = 0; j < nv; j++)
            if (!strcmp(v[j]->name, name)) sum += v[j]->amount;
    }
    manta__status_reply__free_unpacked(rep, NULL);
    return mt_res_to_double(sum);
}

MANTA_API double manta_cluster_resource(const char *name) { return status_amount(name, false); }
MANTA_API double manta_available_resource(const char *name) { return status_amount(name, true); }

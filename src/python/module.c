/* module.c -- the _manta extension: connecting this process to a node and
 * the driver-side calls (submit, put, get, wait, control store). */
#include "mpy.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "mt.h"
#include "resources.h"
#include "sock.h"
#include "start.h"
#include "sysmem.h"
#include <unistd.h>

mt_core *mpy_core;
uint64_t mpy_gen = 1;
mpy_hooks mpy_h;

/* Raise the exception Ray raises for `rc` (the table _setup installed:
 * ObjectStoreFullError, RaySystemError, ...; RuntimeError for the rest),
 * saying `what` failed and why. */
PyObject *mpy_raise(int rc, const char *what)
{
    const char *detail = manta_last_error();
    PyObject *code = PyLong_FromLong(rc);
    PyObject *type = code && mpy_h.error_types ? PyDict_GetItemWithError(mpy_h.error_types, code)
                                               : NULL;
    Py_XDECREF(code);
    if (PyErr_Occurred()) return NULL;
    if (rc == MANTA_ETIMEDOUT && type) {
        PyErr_Format(type, "%s", what);
        return NULL;
    }
    if (!type) type = rc == MANTA_EINVAL   ? PyExc_ValueError
                      : rc == MANTA_ENOMEM ? PyExc_MemoryError
                                           : PyExc_RuntimeError;
    /* A detail that starts with the code's text need not repeat it. */
    const char *text = manta_strerror(rc);
    if (!strncmp(detail, text, strlen(text))) text = "";
    PyErr_Format(type, "%s: %s%s%s", what, text, text[0] && detail[0] ? ": " : "", detail);
    return NULL;
}

/* ---------------------------------------------------------------- setup */

static PyObject *py_setup(PyObject *self, PyObject *args)
{
    mpy_hooks h = {0};
    if (!PyArg_ParseTuple(args, "OOOOOO", &h.pickle_dumps, &h.pickle_loads, &h.cloud_dumps,
                          &h.error_value, &h.ref_reducer, &h.error_types))
        return NULL;
    Py_XINCREF(h.pickle_dumps);
    Py_XINCREF(h.pickle_loads);
    Py_XINCREF(h.cloud_dumps);
    Py_XINCREF(h.error_value);
    Py_XINCREF(h.ref_reducer);
    if (!PyDict_Check(h.error_types)) {
        PyErr_SetString(PyExc_TypeError, "_setup: the error types must be a dict");
        return NULL;
    }
    Py_XINCREF(h.error_types);
    h.make_future = mpy_h.make_future; /* installed by _setup_futures */
    h.await_ref = mpy_h.await_ref;
    mpy_h = h;
    Py_RETURN_NONE;
}

static PyObject *py_setup_futures(PyObject *self, PyObject *args)
{
    PyObject *mk, *aw;
    if (!PyArg_ParseTuple(args, "OO", &mk, &aw)) return NULL;
    Py_INCREF(mk);
    Py_INCREF(aw);
    Py_XSETREF(mpy_h.make_future, mk);
    Py_XSETREF(mpy_h.await_ref, aw);
    Py_RETURN_NONE;
}

/* watch(ref, token): token comes out of next_ready() once ref is ready. */
static PyObject *py_watch(PyObject *self, PyObject *args)
{
    PyObject *r;
    unsigned long long token;
    if (!PyArg_ParseTuple(args, "OK", &r, &token)) return NULL;
    MPY_NEED_CORE(NULL);
    if (!MPY_IS_REF(r) || ((mpy_ref *)r)->gen != mpy_gen) {
        PyErr_SetString(PyExc_TypeError, "watch() needs an ObjectRef of this session");
        return NULL;
    }
    mt_core_watch(mpy_core, ((mpy_ref *)r)->obj, token);
    Py_RETURN_NONE;
}

/* next_ready(timeout) -> list of tokens, or None once disconnected */
static PyObject *py_next_ready(PyObject *self, PyObject *args)
{
    double timeout = -1;
    if (!PyArg_ParseTuple(args, "|d", &timeout)) return NULL;
    mt_core *c = mpy_core;
    if (!c) Py_RETURN_NONE;
    uint64_t tokens[256];
    int n;
    Py_BEGIN_ALLOW_THREADS n = mt_core_next_ready(c, timeout, tokens, 256);
    Py_END_ALLOW_THREADS if (n < 0) Py_RETURN_NONE;
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) PyList_SET_ITEM(l, i, PyLong_FromUnsignedLongLong(tokens[i]));
    return l;
}

static PyObject *py_connect(PyObject *self, PyObject *args, PyObject *kw)
{
    static char *names[] = {"node_socket", "role", "worker_id", "owns_cluster", "daemon_pid",
                            "address", NULL};
    const char *sock, *role, *wid = NULL, *address = NULL;
    int owns = 0, dpid = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|zpiz", names, &sock, &role, &wid, &owns, &dpid,
                                     &address))
        return NULL;
    if (mpy_core) {
        PyErr_SetString(PyExc_RuntimeError, "already connected");
        return NULL;
    }
    mt_core_opts o = {.role = !strcmp(role, "worker") ? MANTA__ROLE__ROLE_WORKER
                                                      : MANTA__ROLE__ROLE_DRIVER,
                      .lang = MANTA__LANGUAGE__LANG_PYTHON, .node_socket = sock, .worker_id = wid,
                      .owns_cluster = owns, .daemon_pid = dpid, .address = address};
    mt_core *c = NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_connect(&o, &c);
    Py_END_ALLOW_THREADS if (rc == MANTA_ECONN) return PyErr_Format(
        PyExc_ConnectionError, "cannot connect to the manta node at %s: %s", address ? address : sock,
        manta_last_error());
    if (rc) return mpy_raise(rc, "cannot connect to the node");
    mpy_core = c;
    mpy_gen++;
    Py_RETURN_NONE;
}

static PyObject *py_disconnect(PyObject *self, PyObject *args)
{
    int stop = 0;
    if (!PyArg_ParseTuple(args, "|p", &stop)) return NULL;
    mt_core *c = mpy_core;
    if (!c) Py_RETURN_NONE;
    mpy_core = NULL;
    mpy_gen++;
    Py_BEGIN_ALLOW_THREADS if (stop) mt_core_request_shutdown(c);
    mt_core_disconnect(c);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

static PyObject *py_info(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    char w[2 * MT_WORKER_ID_LEN + 1], n[2 * MT_NODE_ID_LEN + 1];
    mt_core *c = mpy_core;
    return Py_BuildValue("{s:s,s:s,s:I,s:s,s:s,s:i}", "worker_id",
                         mt_hex(c->wid.b, MT_WORKER_ID_LEN, w), "node_id",
                         mt_hex(c->nid.b, MT_NODE_ID_LEN, n), "job_id", c->job_id, "session_dir",
                         c->session_dir, "endpoint", c->endpoint, "pid", (int)c->pid);
}

/* ---------------------------------------------------------------- resources */

int mpy_res_from_dict(PyObject *d, mpy_res *r)
{
    memset(r, 0, sizeof *r);
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "resources must be a dict");
        return -1;
    }
    PyObject *keys = PyDict_Keys(d);
    if (!keys || PyList_Sort(keys) < 0) {
        Py_XDECREF(keys);
        return -1;
    }
    Py_ssize_t n = PyList_GET_SIZE(keys);
    r->names = PyMem_Calloc((size_t)n + 1, sizeof *r->names);
    r->amounts = PyMem_Calloc((size_t)n + 1, sizeof *r->amounts);
    int rc = r->names && r->amounts ? 0 : (PyErr_NoMemory(), -1);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        PyObject *k = PyList_GET_ITEM(keys, i);
        const char *name = PyUnicode_AsUTF8(k);
        double v = name ? PyFloat_AsDouble(PyDict_GetItem(d, k)) : 0;
        char err[400];
        int64_t fixed = 0;
        if (!name || PyErr_Occurred()) {
            rc = -1;
        } else if (mt_res_check_name(name, err, sizeof err) ||
                   mt_res_from_double_frac(name, v, &fixed, err, sizeof err)) {
            PyErr_SetString(PyExc_ValueError, err);
            rc = -1;
        } else if (fixed) {
            size_t len = strlen(name) + 1;
            r->names[r->n] = PyMem_Malloc(len);
            memcpy(r->names[r->n], name, len);
            r->amounts[r->n++] = fixed;
        }
    }
    Py_DECREF(keys);
    return rc;
}

void mpy_res_free(mpy_res *r)
{
    for (uint32_t i = 0; i < r->n; i++) PyMem_Free(r->names[i]);
    PyMem_Free(r->names);
    PyMem_Free(r->amounts);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- options */

/* Scheduling options of a remote function, parsed once and reused. */

static void opts_dealloc(mpy_opts *o)
{
    Py_XDECREF(o->retry_exc);
    mpy_res_free(&o->res);
    Py_TYPE(o)->tp_free((PyObject *)o);
}

/* TaskOptions(resources: dict[str, float], num_returns: int, max_retries: int) */
static int opts_init(mpy_opts *o, PyObject *args, PyObject *kw)
{
    PyObject *res, *rexc = NULL;
    unsigned int nret;
    int retries, strategy = 0, soft = 0;
    Py_buffer node = {0};
    MT_UNUSED(kw);
    if (!PyArg_ParseTuple(args, "O!Ii|O!iy*p", &PyDict_Type, &res, &nret, &retries, &PyBytes_Type,
                          &rexc, &strategy, &node, &soft))
        return -1;
    o->strategy = strategy;
    o->soft = soft;
    if (node.buf && node.len == MT_NODE_ID_LEN) {
        memcpy(o->node, node.buf, MT_NODE_ID_LEN);
        o->has_node = true;
    }
    if (node.buf) PyBuffer_Release(&node);
    if (strategy == MANTA__SCHED_STRATEGY__SCHED_NODE_AFFINITY && !o->has_node) {
        PyErr_SetString(PyExc_ValueError, "node affinity needs a node id of 16 bytes");
        return -1;
    }
    Py_XINCREF(rexc);
    Py_XSETREF(o->retry_exc, rexc);
    mpy_res_free(&o->res);
    if (mpy_res_from_dict(res, &o->res) < 0) return -1;
    o->num_returns = nret;
    o->max_retries = retries;
    return 0;
}

PyTypeObject mpy_opts_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "manta._manta.TaskOptions",
    .tp_basicsize = sizeof(mpy_opts),
    .tp_dealloc = (destructor)opts_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_init = (initproc)opts_init,
    .tp_new = PyType_GenericNew,
};

/* ---------------------------------------------------------------- submit */

/* Serialize `obj` as a task argument value: in line if small, else put in
 * the store (the task then holds it by reference). */
static int make_value_arg(PyObject *obj, mt_targ *a, mpy_ser *s, mt_obj **tmp_ref)
{
    if (mpy_serialize(obj, s) < 0) return -1;
    size_t n;
    mt_obj **inner = mpy_ser_objs(s, &n);
    a->contained = inner;
    a->ncontained = (uint32_t)n;
    if (s->size <= (uint64_t)mt_cfg.max_inline_bytes) {
        a->kind = MT_ARG_VALUE;
        a->data = PyMem_Malloc(s->size ? s->size : 1);
        a->size = s->size;
        mpy_ser_write(s, a->data, MT_FMT_PICKLE);
        return 0;
    }
    mt_put p;
    uint8_t *dst;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_put_begin(mpy_core, s->size, &p, &dst);
    if (!rc) mpy_ser_write(s, dst, MT_FMT_PICKLE);
    Py_END_ALLOW_THREADS if (rc) {
        mpy_raise(rc, "cannot store a task argument");
        return -1;
    }
    rc = mt_core_put_end(mpy_core, &p, inner, n, tmp_ref);
    a->kind = MT_ARG_REF;
    a->ref = *tmp_ref;
    a->contained = NULL;
    a->ncontained = 0;
    PyMem_Free(inner);
    return rc ? (mpy_raise(rc, "cannot store a task argument"), -1) : 0;
}

/* Top-level refs of args/kwargs become reference arguments 1..k; argument
 * 0 is the pickled (args, kwargs, slots) with those places left None. */
static PyObject *split_refs(PyObject *args, PyObject *kwargs, PyObject **refs, PyObject **tmpl)
{
    *refs = PyList_New(0);
    PyObject *slots = PyList_New(0);
    PyObject *a2 = PySequence_List(args);
    PyObject *k2 = kwargs && kwargs != Py_None ? PyDict_Copy(kwargs) : Py_NewRef(Py_None);
    if (!*refs || !slots || !a2 || !k2) goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(a2); i++) {
        PyObject *x = PyList_GET_ITEM(a2, i);
        if (!MPY_IS_REF(x)) continue;
        PyObject *pos = PyLong_FromSsize_t(i);
        if (!pos || PyList_Append(*refs, x) < 0 || PyList_Append(slots, pos) < 0) goto fail;
        Py_DECREF(pos);
        Py_INCREF(Py_None);
        PyList_SetItem(a2, i, Py_None);
    }
    if (k2 != Py_None) {
        PyObject *k, *v;
        Py_ssize_t pos = 0;
        PyObject *items = PyDict_Items(k2);
        for (Py_ssize_t i = 0; items && i < PyList_GET_SIZE(items); i++) {
            PyObject *it = PyList_GET_ITEM(items, i);
            k = PyTuple_GET_ITEM(it, 0);
            v = PyTuple_GET_ITEM(it, 1);
            if (!MPY_IS_REF(v)) continue;
            if (PyList_Append(*refs, v) < 0 || PyList_Append(slots, k) < 0 ||
                PyDict_SetItem(k2, k, Py_None) < 0) {
                Py_DECREF(items);
                goto fail;
            }
        }
        Py_XDECREF(items);
        MT_UNUSED(pos);
    }
    if (PyList_GET_SIZE(*refs) == 0) {
        *tmpl = Py_BuildValue("(OOO)", args, kwargs ? kwargs : Py_None, Py_None);
    } else {
        PyObject *at = PyList_AsTuple(a2);
        PyObject *st = PyList_AsTuple(slots);
        *tmpl = at && st ? Py_BuildValue("(OOO)", at, k2, st) : NULL;
        Py_XDECREF(at);
        Py_XDECREF(st);
    }
    Py_DECREF(slots);
    Py_DECREF(a2);
    Py_DECREF(k2);
    return *tmpl;
fail:
    Py_XDECREF(slots);
    Py_XDECREF(a2);
    Py_XDECREF(k2);
    Py_CLEAR(*refs);
    return NULL;
}

static PyObject *wrap_returns(mt_obj **rets, uint32_t n, bool single)
{
    if (single && n == 1) return mpy_ref_new(rets[0]);
    PyObject *list = PyList_New(n);
    for (uint32_t i = 0; list && i < n; i++) {
        PyObject *r = mpy_ref_new(rets[i]);
        if (!r) {
            for (uint32_t j = i + 1; j < n; j++) mt_obj_decref(mpy_core, rets[j]);
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, r);
    }
    return list;
}

int mpy_args_build(PyObject *args, PyObject *kwargs, mpy_args *a)
{
    memset(a, 0, sizeof *a);
    if (!split_refs(args, kwargs, &a->refs, &a->tmpl)) return -1;
    Py_ssize_t nref = PyList_GET_SIZE(a->refs);
    a->targs = PyMem_Calloc((size_t)nref + 1, sizeof *a->targs);
    if (!a->targs) {
        PyErr_NoMemory();
        return -1;
    }
    if (make_value_arg(a->tmpl, &a->targs[0], &a->ser, &a->tmp_ref) < 0) return -1;
    for (Py_ssize_t i = 0; i < nref; i++) {
        mpy_ref *r = (mpy_ref *)PyList_GET_ITEM(a->refs, i);
        if (r->gen != mpy_gen) {
            PyErr_SetString(PyExc_ValueError, "an ObjectRef argument belongs to a previous session");
            return -1;
        }
        a->targs[i + 1].kind = MT_ARG_REF;
        a->targs[i + 1].ref = r->obj;
    }
    a->n = (uint32_t)nref + 1;
    return 0;
}

void mpy_args_free(mpy_args *a)
{
    if (a->tmp_ref && mpy_core) mt_obj_decref(mpy_core, a->tmp_ref); /* the task holds it now */
    if (a->targs) {
        PyMem_Free(a->targs[0].data);
        PyMem_Free(a->targs[0].contained);
        PyMem_Free(a->targs);
    }
    mpy_ser_free(&a->ser);
    Py_XDECREF(a->refs);
    Py_XDECREF(a->tmpl);
    memset(a, 0, sizeof *a);
}

PyObject *mpy_wrap_returns(mt_obj **rets, uint32_t n)
{
    if (n == 1) return mpy_ref_new(rets[0]);
    if (n == 0) Py_RETURN_NONE;
    return wrap_returns(rets, n, false);
}

/* submit(kind, fn_id: bytes, name: str, args: tuple, kwargs: dict|None, opts) */
static PyObject *py_submit(PyObject *self, PyObject *a)
{
    int kind;
    Py_buffer fn_id;
    const char *name;
    PyObject *args, *kwargs;
    mpy_opts *opts;
    if (!PyArg_ParseTuple(a, "iy*sO!OO!", &kind, &fn_id, &name, &PyTuple_Type, &args, &kwargs,
                          &mpy_opts_type, &opts))
        return NULL;
    PyObject *result = NULL;
    mt_obj **rets = NULL;
    mpy_args ar = {0};
    if (!mpy_core) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not initialized");
        goto out;
    }
    if (fn_id.len != MT_FN_ID_LEN) {
        PyErr_SetString(PyExc_ValueError, "bad function id");
        goto out;
    }
    if (mpy_args_build(args, kwargs, &ar) < 0) goto out;
    mt_task_desc d = {.kind = kind, .fn_id = fn_id.buf, .name = name,
                      .lang = MANTA__LANGUAGE__LANG_PYTHON, .args = ar.targs, .nargs = ar.n,
                      .num_returns = opts->num_returns,
                      .res_names = (const char *const *)opts->res.names,
                      .res_amounts = opts->res.amounts, .nres = opts->res.n, .max_retries = opts->max_retries,
                      .retry_exc = opts->retry_exc ? (const uint8_t *)PyBytes_AS_STRING(opts->retry_exc)
                                                   : NULL,
                      .retry_exc_len = opts->retry_exc ? (size_t)PyBytes_GET_SIZE(opts->retry_exc) : 0,
                      .strategy = opts->strategy, .node = opts->has_node ? opts->node : NULL,
                      .soft = opts->soft};
    rets = PyMem_Calloc(opts->num_returns + 1, sizeof *rets);
    int rc = mt_core_submit(mpy_core, &d, rets);
    if (rc) {
        mpy_raise(rc, "cannot submit the task");
        goto out;
    }
    result = wrap_returns(rets, opts->num_returns, opts->num_returns == 1);
out:
    mpy_args_free(&ar);
    PyMem_Free(rets);
    PyBuffer_Release(&fn_id);
    return result;
}

/* cancel(ref, force, recursive) */
static PyObject *py_cancel(PyObject *self, PyObject *args)
{
    PyObject *r;
    int force = 0, recursive = 1;
    if (!PyArg_ParseTuple(args, "O|pp", &r, &force, &recursive)) return NULL;
    MPY_NEED_CORE(NULL);
    if (!MPY_IS_REF(r) || ((mpy_ref *)r)->gen != mpy_gen) {
        PyErr_SetString(PyExc_TypeError, "cancel() needs an ObjectRef of this session");
        return NULL;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_cancel(mpy_core, ((mpy_ref *)r)->obj, force, recursive);
    Py_END_ALLOW_THREADS if (rc == MANTA_EINVAL)
    {
        PyErr_SetString(PyExc_ValueError, manta_last_error());
        return NULL;
    }
    if (rc) return mpy_raise(rc, "cancel failed");
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------- put / get / wait */

static PyObject *py_put(PyObject *self, PyObject *obj)
{
    MPY_NEED_CORE(NULL);
    if (MPY_IS_REF(obj)) {
        PyErr_SetString(PyExc_TypeError,
                        "Calling 'put' on an ObjectRef is not allowed. If you really want to do "
                        "this, you can wrap the ObjectRef in a list and call 'put' on it.");
        return NULL;
    }
    mpy_ser s;
    if (mpy_serialize(obj, &s) < 0) return NULL;
    mt_put p;
    uint8_t *dst;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_put_begin(mpy_core, s.size, &p, &dst);
    if (!rc) mpy_ser_write(&s, dst, MT_FMT_PICKLE);
    Py_END_ALLOW_THREADS if (rc) {
        mpy_ser_free(&s);
        return mpy_raise(rc, "put failed");
    }
    size_t n;
    mt_obj **inner = mpy_ser_objs(&s, &n), *o;
    rc = mt_core_put_end(mpy_core, &p, inner, n, &o);
    PyMem_Free(inner);
    mpy_ser_free(&s);
    if (rc) return mpy_raise(rc, "put failed");
    return mpy_ref_new(o);
}

static mt_obj **refs_of(PyObject *list, Py_ssize_t *n)
{
    *n = PyList_GET_SIZE(list);
    mt_obj **objs = PyMem_Calloc((size_t)*n + 1, sizeof *objs);
    for (Py_ssize_t i = 0; objs && i < *n; i++) {
        PyObject *x = PyList_GET_ITEM(list, i);
        if (!MPY_IS_REF(x) || ((mpy_ref *)x)->gen != mpy_gen) {
            PyErr_Format(PyExc_TypeError, "expected ObjectRefs of this session, got %.100s",
                         Py_TYPE(x)->tp_name);
            PyMem_Free(objs);
            return NULL;
        }
        objs[i] = ((mpy_ref *)x)->obj;
    }
    return objs;
}

/* get(refs: list, timeout: float (<0 forever)) -> list of values */
static PyObject *py_get(PyObject *self, PyObject *args)
{
    PyObject *list;
    double timeout;
    if (!PyArg_ParseTuple(args, "O!d", &PyList_Type, &list, &timeout)) return NULL;
    MPY_NEED_CORE(NULL);
    Py_ssize_t n;
    mt_obj **objs = refs_of(list, &n);
    if (!objs) return NULL;
    mt_value **vals = PyMem_Calloc((size_t)n + 1, sizeof *vals);
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_get(mpy_core, objs, (size_t)n, timeout, vals);
    Py_END_ALLOW_THREADS PyMem_Free(objs);
    if (rc) {
        PyMem_Free(vals);
        if (rc == MANTA_ETIMEDOUT)
            return mpy_raise(rc, "Get timed out: some object(s) not ready.");
        return mpy_raise(rc, "get failed");
    }
    PyObject *out = PyList_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = out ? mpy_deserialize(vals[i]) : NULL;
        mt_value_unref(vals[i]);
        if (!v) {
            Py_CLEAR(out);
            continue;
        }
        PyList_SET_ITEM(out, i, v);
    }
    PyMem_Free(vals);
    return out;
}

/* Whether `objs` holds a pointer twice (an open-addressing set of them). */
static int has_duplicates(mt_obj *const *objs, Py_ssize_t n)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap <<= 1;
    uintptr_t *set = PyMem_Calloc(cap, sizeof *set);
    if (!set) return -1;
    int dup = 0;
    for (Py_ssize_t i = 0; i < n && !dup; i++) {
        uintptr_t x = (uintptr_t)objs[i];
        size_t h = (size_t)(((uint64_t)x >> 4) * 0x9E3779B97F4A7C15ull >> 20) & (cap - 1);
        while (set[h] && set[h] != x) h = (h + 1) & (cap - 1);
        dup = set[h] == x;
        set[h] = x;
    }
    PyMem_Free(set);
    return dup;
}

/* wait(refs, num_returns, timeout (<0 forever), fetch_local) -> (ready, not_ready)
 * Checks what ray.wait checks of the list itself: ObjectRefs only, no
 * duplicates (a ref's object is unique per process, so equal refs share
 * one mt_obj); the first num_returns ready refs in list order are ready. */
static PyObject *py_wait(PyObject *self, PyObject *args)
{
    PyObject *list;
    Py_ssize_t num;
    double timeout;
    int fetch = 1;
    if (!PyArg_ParseTuple(args, "O!nd|p", &PyList_Type, &list, &num, &timeout, &fetch)) return NULL;
    MPY_NEED_CORE(NULL);
    Py_ssize_t n = PyList_GET_SIZE(list);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyList_GET_ITEM(list, i);
        if (!MPY_IS_REF(x)) {
            PyErr_Format(PyExc_TypeError,
                         "wait() expected a list of ray.ObjectRef, got list containing %R",
                         (PyObject *)Py_TYPE(x));
            return NULL;
        }
    }
    mt_obj **objs = refs_of(list, &n);
    if (!objs) return NULL;
    int dup = has_duplicates(objs, n);
    if (dup) {
        PyMem_Free(objs);
        if (dup < 0) return PyErr_NoMemory();
        PyErr_SetString(PyExc_ValueError, "Wait requires a list of unique object refs.");
        return NULL;
    }
    if (num > n) {
        PyMem_Free(objs);
        PyErr_SetString(PyExc_ValueError,
                        "num_returns cannot be greater than the number of objects provided to "
                        "ray.wait.");
        return NULL;
    }
    uint8_t *ready = PyMem_Calloc((size_t)n + 1, 1);
    if (!ready) {
        PyMem_Free(objs);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS mt_core_wait(mpy_core, objs, (size_t)n, (size_t)num, timeout, fetch,
                                        ready);
    Py_END_ALLOW_THREADS PyMem_Free(objs);
    Py_ssize_t nready = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (ready[i] && nready < num) nready++;
        else ready[i] = 0;
    PyObject *r = PyList_New(nready), *nr = PyList_New(n - nready);
    if (r && nr) {
        for (Py_ssize_t i = 0, a = 0, b = 0; i < n; i++) {
            PyObject *x = PyList_GET_ITEM(list, i);
            Py_INCREF(x);
            if (ready[i]) PyList_SET_ITEM(r, a++, x);
            else PyList_SET_ITEM(nr, b++, x);
        }
    }
    PyMem_Free(ready);
    if (!r || !nr) {
        Py_XDECREF(r);
        Py_XDECREF(nr);
        return NULL;
    }
    return Py_BuildValue("(NN)", r, nr);
}

/* _rebuild_ref(id: bytes, owner: bytes) -> ObjectRef (a borrowed ref) */
static PyObject *py_ref_from_wire(PyObject *self, PyObject *args)
{
    Py_buffer id, owner;
    if (!PyArg_ParseTuple(args, "y*y*", &id, &owner)) return NULL;
    PyObject *res = NULL;
    Manta__Address *a = NULL;
    if (!mpy_core) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not initialized: cannot load an ObjectRef");
        goto out;
    }
    if (id.len != MT_OBJECT_ID_LEN ||
        !(a = manta__address__unpack(NULL, (size_t)owner.len, owner.buf))) {
        PyErr_SetString(PyExc_ValueError, "malformed ObjectRef");
        goto out;
    }
    mt_oid oid;
    memcpy(oid.b, id.buf, MT_OBJECT_ID_LEN);
    int err;
    mt_obj *o;
    if (mpy_deser_depth > 0) {
        /* Inside a value being read: registered with the owner, batched,
         * when the read ends (mpy_deserialize). */
        o = mt_core_ref_from_wire_deferred(mpy_core, &oid, a);
    } else {
        Py_BEGIN_ALLOW_THREADS o = mt_core_ref_from_wire(mpy_core, &oid, a, &err);
        Py_END_ALLOW_THREADS
    }
    res = mpy_ref_new(o);
out:
    if (a) manta__address__free_unpacked(a, NULL);
    PyBuffer_Release(&id);
    PyBuffer_Release(&owner);
    return res;
}

/* ---------------------------------------------------------------- control store */

/* A value too large for the control store is the caller's mistake
 * (ValueError, as Ray's check of a pickled function's size); the rest as
 * any failure. */
static PyObject *raise_put(int rc, const char *what)
{
    if (rc != MANTA_ETOOBIG) return mpy_raise(rc, what);
    PyErr_SetString(PyExc_ValueError, manta_last_error());
    return NULL;
}

static PyObject *py_fn_register(PyObject *self, PyObject *args)
{
    Py_buffer id, body;
    const char *name;
    if (!PyArg_ParseTuple(args, "y*y*s", &id, &body, &name)) return NULL;
    int rc = MANTA_ENOTINIT;
    if (mpy_core && id.len == MT_FN_ID_LEN)
        rc = mt_core_fn_register(mpy_core, id.buf, body.buf, (size_t)body.len, name);
    PyBuffer_Release(&id);
    PyBuffer_Release(&body);
    if (rc) return raise_put(rc, "cannot register the function");
    Py_RETURN_NONE;
}

static PyObject *py_fn_get(PyObject *self, PyObject *args)
{
    Py_buffer id;
    double timeout;
    if (!PyArg_ParseTuple(args, "y*d", &id, &timeout)) return NULL;
    uint8_t *body = NULL;
    size_t len = 0;
    int rc = MANTA_ENOTINIT;
    if (mpy_core && id.len == MT_FN_ID_LEN) {
        Py_BEGIN_ALLOW_THREADS rc = mt_core_fn_get(mpy_core, id.buf, timeout, &body, &len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&id);
    if (rc == MANTA_ENOENT) Py_RETURN_NONE;
    if (rc) return mpy_raise(rc, "cannot fetch the function");
    PyObject *r = PyBytes_FromStringAndSize((const char *)body, (Py_ssize_t)len);
    free(body);
    return r;
}

static PyObject *py_kv_put(PyObject *self, PyObject *args)
{
    const char *ns;
    Py_buffer key, val;
    int overwrite = 1;
    if (!PyArg_ParseTuple(args, "sy*y*|p", &ns, &key, &val, &overwrite)) return NULL;
    int rc = MANTA_ENOTINIT;
    if (mpy_core)
        rc = mt_core_kv_put(mpy_core, ns, key.buf, (size_t)key.len, val.buf, (size_t)val.len,
                            overwrite);
    PyBuffer_Release(&key);
    PyBuffer_Release(&val);
    if (rc) return raise_put(rc, "cannot put the key");
    Py_RETURN_NONE;
}

static PyObject *py_kv_get(PyObject *self, PyObject *args)
{
    const char *ns;
    Py_buffer key;
    double wait = 0;
    if (!PyArg_ParseTuple(args, "sy*|d", &ns, &key, &wait)) return NULL;
    uint8_t *val = NULL;
    size_t len = 0;
    int rc = MANTA_ENOTINIT;
    if (mpy_core) {
        Py_BEGIN_ALLOW_THREADS rc =
            mt_core_kv_get(mpy_core, ns, key.buf, (size_t)key.len, wait, &val, &len);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&key);
    if (rc == MANTA_ENOENT) Py_RETURN_NONE;
    if (rc) return mpy_raise(rc, "kv_get failed");
    PyObject *r = PyBytes_FromStringAndSize((const char *)val, (Py_ssize_t)len);
    free(val);
    return r;
}

PyObject *mpy_res_dict(Manta__Resource *const *v, size_t n)
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < n; i++) {
        PyObject *x = PyFloat_FromDouble(mt_res_to_double(v[i]->amount));
        if (!x || PyDict_SetItemString(d, v[i]->name, x) < 0) Py_CLEAR(d);
        Py_XDECREF(x);
    }
    return d;
}

static PyObject *status_dict(const uint8_t *p, size_t n);

static PyObject *py_status(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    uint8_t *p;
    size_t n;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_status(mpy_core, &p, &n);
    Py_END_ALLOW_THREADS if (rc) return mpy_raise(rc, "status failed");
    PyObject *r = status_dict(p, n);
    free(p);
    return r;
}

/* status_from_bytes(payload) -> dict, for the CLI. */
static PyObject *py_status_from_bytes(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    if (!PyArg_Parse(arg, "y*", &b)) return NULL;
    PyObject *r = status_dict(b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return r;
}

static PyObject *status_dict(const uint8_t *p, size_t n)
{
    Manta__StatusReply *rep = manta__status_reply__unpack(NULL, n, p);
    if (!rep) return mpy_raise(MANTA_EPROTO, "bad status reply");
    PyObject *nodes = PyList_New(0);
    for (size_t i = 0; nodes && i < rep->n_nodes; i++) {
        Manta__NodeStatus *s = rep->nodes[i];
        char hex[2 * MT_NODE_ID_LEN + 1] = "";
        if (s->node_id.len == MT_NODE_ID_LEN) mt_hex(s->node_id.data, MT_NODE_ID_LEN, hex);
        PyObject *d = Py_BuildValue(
            "{s:s,s:s,s:O,s:N,s:N,s:K,s:K,s:I,s:I,s:I,s:I,s:O}", "node_id", hex, "address",
            s->address, "alive", s->alive ? Py_True : Py_False, "total",
            mpy_res_dict(s->total, s->n_total), "available", mpy_res_dict(s->available, s->n_available),
            "store_capacity", (unsigned long long)s->store_capacity, "store_used",
            (unsigned long long)s->store_used, "num_objects", s->num_objects, "num_workers",
            s->num_workers, "num_drivers", s->num_drivers, "pending_leases", s->pending_leases,
            "is_head", s->is_head ? Py_True : Py_False);
        if (d) {
            PyObject *ep = PyUnicode_FromString(s->endpoint ? s->endpoint : "");
            PyObject *sd = PyUnicode_FromString(s->session_dir ? s->session_dir : "");
            PyObject *age = PyFloat_FromDouble(s->last_report_s);
            if (!ep || !sd || !age || PyDict_SetItemString(d, "endpoint", ep) < 0 ||
                PyDict_SetItemString(d, "session_dir", sd) < 0 ||
                PyDict_SetItemString(d, "last_report_s", age) < 0)
                Py_CLEAR(d);
            Py_XDECREF(ep);
            Py_XDECREF(sd);
            Py_XDECREF(age);
        }
        if (!d || PyList_Append(nodes, d) < 0) Py_CLEAR(nodes);
        Py_XDECREF(d);
    }
    PyObject *r = nodes ? Py_BuildValue("{s:N,s:s,s:K}", "nodes", nodes, "session_dir",
                                        rep->session_dir ? rep->session_dir : "", "gcs_messages",
                                        (unsigned long long)rep->gcs_messages)
                        : NULL;
    manta__status_reply__free_unpacked(rep, NULL);
    return r;
}

static PyObject *py_stats(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    mt_core *c = mpy_core;
    pthread_mutex_lock(&c->mu);
    PyObject *r = Py_BuildValue("{s:K,s:K,s:n,s:n,s:n}", "tasks_submitted",
                                (unsigned long long)c->tasks_submitted, "tasks_done",
                                (unsigned long long)c->tasks_done, "objects", (Py_ssize_t)c->objs.size,
                                "pending_tasks", (Py_ssize_t)c->tasks.size, "peers",
                                (Py_ssize_t)c->peers.size);
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---------------------------------------------------------------- CLI */

/* One request/reply with a node as a CLI client (no job, no store). */
static PyObject *cli_call(const char *sock, uint16_t type, ProtobufCMessage *req,
                          uint16_t want, double timeout)
{
    char ep[4200];
    snprintf(ep, sizeof ep, "unix:%s", sock);
    int fd, rc;
    Manta__Hello h = MANTA__HELLO__INIT;
    h.version = MT_WIRE_VERSION;
    h.role = MANTA__ROLE__ROLE_CLI;
    h.pid = (uint32_t)getpid();
    mt_buf b;
    mt_buf_init(&b);
    mt_wire_append(&b, MANTA__MSG_TYPE__MSG_HELLO, &h.base);
    mt_wire_append(&b, type, req);
    uint8_t *payload = NULL;
    mt_frame f = {0};
    Py_BEGIN_ALLOW_THREADS rc = mt_sock_connect(ep, timeout, &fd);
    if (!rc) {
        rc = mt_sock_write_all(fd, b.data, b.len, timeout);
        /* Skip frames until the wanted one (the Hello reply comes first). */
        while (!rc) {
            uint8_t hdr[MT_FRAME_HDR];
            rc = mt_sock_read_all(fd, hdr, sizeof hdr, timeout);
            if (rc) break;
            rc = mt_wire_peek(hdr, sizeof hdr, 64u << 20, &f);
            if (rc < 0) break;
            free(payload);
            payload = malloc(f.len + 1);
            rc = mt_sock_read_all(fd, payload, f.len, timeout);
            if (!rc && (f.type == want || want == 0)) break;
        }
        close(fd);
    }
    Py_END_ALLOW_THREADS mt_buf_free(&b);
    if (rc) {
        free(payload);
        return mpy_raise(rc, "cannot reach the node");
    }
    PyObject *r = PyBytes_FromStringAndSize((const char *)payload, f.len);
    free(payload);
    return r;
}

static PyObject *py_cli_status(PyObject *self, PyObject *args)
{
    const char *sock;
    if (!PyArg_ParseTuple(args, "s", &sock)) return NULL;
    Manta__StatusRequest m = MANTA__STATUS_REQUEST__INIT;
    m.request_id = 1;
    return cli_call(sock, MANTA__MSG_TYPE__MSG_STATUS_REQUEST, &m.base,
                    MANTA__MSG_TYPE__MSG_STATUS_REPLY, 10);
}

/* same_host(listen_host, host) -> whether a listener on `listen_host` is
 * reached at `host` (listen_host None: whether `host` is this machine's);
 * ConnectionError if `host` does not resolve. */
static PyObject *py_same_host(PyObject *self, PyObject *args)
{
    const char *listen_host, *host;
    if (!PyArg_ParseTuple(args, "zs", &listen_host, &host)) return NULL;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_start_same_host(listen_host, host);
    Py_END_ALLOW_THREADS if (rc < 0) return PyErr_Format(PyExc_ConnectionError, "%s",
                                                           manta_last_error());
    return PyBool_FromLong(rc);
}

/* memory() -> (total, available, default store size) in bytes (sysmem.h):
 * what a node started now would see. */
static PyObject *py_memory(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(LLL)", (long long)mt_mem_total(), (long long)mt_mem_available(),
                         (long long)mt_mem_default_store());
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"_setup", py_setup, METH_VARARGS, "Install the Python hooks the extension calls."},
    {"_setup_futures", py_setup_futures, METH_VARARGS, "Install the future/await hooks."},
    {"watch", py_watch, METH_VARARGS, "Watch a ref for futures."},
    {"next_ready", py_next_ready, METH_VARARGS, "Tokens of watched refs that became ready."},
    {"connect", (PyCFunction)(void (*)(void))py_connect, METH_VARARGS | METH_KEYWORDS,
     "Connect this process to a node."},
    {"disconnect", py_disconnect, METH_VARARGS, "Disconnect (and stop the node if asked)."},
    {"info", py_info, METH_NOARGS, "Ids of this process, its node and job."},
    {"submit", py_submit, METH_VARARGS, "Submit a task."},
    {"put", py_put, METH_O, "Store a value; returns an ObjectRef."},
    {"cancel", py_cancel, METH_VARARGS, "Cancel the task that makes a ref."},
    {"get", py_get, METH_VARARGS, "Values of a list of refs."},
    {"wait", py_wait, METH_VARARGS, "Ready flags of a list of refs."},
    {"ref_from_wire", py_ref_from_wire, METH_VARARGS, "Rebuild a pickled ObjectRef."},
    {"fn_register", py_fn_register, METH_VARARGS, "Register a pickled function."},
    {"fn_get", py_fn_get, METH_VARARGS, "Fetch a pickled function."},
    {"kv_put", py_kv_put, METH_VARARGS, "Put a key in the control store."},
    {"kv_get", py_kv_get, METH_VARARGS, "Get a key from the control store."},
    {"status", py_status, METH_NOARGS, "Status of the cluster's nodes."},
    {"stats", py_stats, METH_NOARGS, "Counters of this process's runtime."},
    {"cli_status", py_cli_status, METH_VARARGS, "Raw status reply of the node at a socket."},
    {"status_from_bytes", py_status_from_bytes, METH_O, "Decode a raw status reply."},
    {"memory", py_memory, METH_NOARGS, "(total, available, default store) bytes."},
    {"same_host", py_same_host, METH_VARARGS, "Whether a listener's host is reached at a host."},
    {"next_task", mpy_next_task, METH_VARARGS, "Worker: the next task to run."},
    {"task_fd", mpy_task_fd, METH_NOARGS, "Worker: an fd readable when tasks wait."},
    {"task_ready", mpy_task_ready, METH_NOARGS, "Worker: drain task_fd; (stop, cancels)."},
    MPY_ACTOR_METHODS
    MPY_PRIV_METHODS
    MPY_LAYOUT_METHODS
    {NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_manta",
                                    "The C core of manta.", -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__manta(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (mpy_ref_init_type(m) < 0 || mpy_task_init_type(m) < 0) return NULL;
    if (PyType_Ready(&mpy_opts_type) < 0) return NULL;
    Py_INCREF(&mpy_opts_type);
    PyModule_AddObject(m, "TaskOptions", (PyObject *)&mpy_opts_type);
    PyModule_AddIntConstant(m, "TASK_NORMAL", MANTA__TASK_KIND__TASK_NORMAL);
    PyModule_AddIntConstant(m, "TASK_ACTOR_CREATE", MANTA__TASK_KIND__TASK_ACTOR_CREATE);
    PyModule_AddIntConstant(m, "TASK_ACTOR_CALL", MANTA__TASK_KIND__TASK_ACTOR_CALL);
#define ERRC(name, val, text) PyModule_AddIntConstant(m, #name, val);
    MANTA_ERRNO_MAP(ERRC)
#undef ERRC
    PyModule_AddIntConstant(m, "STORE_MIN_BYTES", MT_STORE_MIN_BYTES);
    mt_config_load();
    return m;
}

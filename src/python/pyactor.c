/* pyactor.c -- actors in the _manta extension: create, call, kill, look
 * up, and exit (for the actor's own worker). */
#include "mpy.h"

#include <string.h>

#include "mt.h"

/* A packed ActorInfo as a dict. */
static PyObject *info_dict(const uint8_t *p, size_t n)
{
    Manta__ActorInfo *i = manta__actor_info__unpack(NULL, n, p);
    if (!i) return mpy_raise(MANTA_EPROTO, "bad actor info");
    PyObject *owner = Py_None;
    Py_INCREF(owner);
    if (i->owner) {
        size_t len = manta__address__get_packed_size(i->owner);
        Py_DECREF(owner);
        owner = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)len);
        if (owner) manta__address__pack(i->owner, (uint8_t *)PyBytes_AS_STRING(owner));
    }
    PyObject *d = owner ? Py_BuildValue(
        "{s:y#,s:s,s:s,s:i,s:N,s:O,s:s,s:s,s:y#,s:i,s:I,s:O,s:I}", "actor_id",
        (const char *)i->actor_id.data, (Py_ssize_t)i->actor_id.len, "name", i->name, "namespace",
        i->ns, "state", i->state, "owner", owner, "detached", i->detached ? Py_True : Py_False,
        "class_name", i->class_name, "death_cause", i->death_cause, "handle",
        (const char *)i->handle.data, (Py_ssize_t)i->handle.len, "max_restarts", i->max_restarts,
        "pid", i->pid, "is_async", i->is_async ? Py_True : Py_False, "max_concurrency",
        i->max_concurrency) : NULL;
    manta__actor_info__free_unpacked(i, NULL);
    return d;
}

static int read_aid(Py_buffer *b, mt_aid *id)
{
    if (b->len != MT_ACTOR_ID_LEN) {
        PyErr_SetString(PyExc_ValueError, "bad actor id");
        return -1;
    }
    memcpy(id->b, b->buf, MT_ACTOR_ID_LEN);
    return 0;
}

/* actor_create(fn_id, class_name, args, kwargs, held, placement, name, namespace, detached,
 *              max_concurrency, is_async, max_restarts, max_task_retries, handle)
 *   -> (actor_id, anchor ObjectRef or None)      created
 *   -> dict of the existing actor                 the name is taken */
PyObject *mpy_actor_create(PyObject *self, PyObject *a, PyObject *kw)
{
    static char *names[] = {"fn_id", "class_name", "args", "kwargs", "held", "placement", "name",
                            "namespace", "detached", "max_concurrency", "is_async",
                            "max_restarts", "max_task_retries", "handle", "strategy", "node",
                            "soft", NULL};
    Py_buffer fn_id, handle, node = {0};
    const char *cls, *name, *ns;
    PyObject *args, *kwargs, *held, *place;
    int detached, is_async, max_restarts, max_task_retries, strategy = 0, soft = 0;
    unsigned int max_conc;
    if (!PyArg_ParseTupleAndKeywords(a, kw, "y*sO!OO!O!zzpIpiiy*|iy*p", names, &fn_id, &cls,
                                     &PyTuple_Type, &args, &kwargs, &PyDict_Type, &held,
                                     &PyDict_Type, &place, &name, &ns, &detached, &max_conc,
                                     &is_async, &max_restarts, &max_task_retries, &handle,
                                     &strategy, &node, &soft))
        return NULL;
    PyObject *result = NULL;
    mpy_args ar = {0};
    mpy_res rh = {0}, rp = {0};
    if (!mpy_core) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not initialized");
        goto out;
    }
    if (fn_id.len != MT_FN_ID_LEN) {
        PyErr_SetString(PyExc_ValueError, "bad class id");
        goto out;
    }
    if (mpy_args_build(args, kwargs, &ar) < 0 || mpy_res_from_dict(held, &rh) < 0 ||
        mpy_res_from_dict(place, &rp) < 0)
        goto out;
    mt_actor_desc d = {.fn_id = fn_id.buf, .class_name = cls, .lang = MANTA__LANGUAGE__LANG_PYTHON,
                       .args = ar.targs, .nargs = ar.n,
                       .res_names = (const char *const *)rh.names, .res_amounts = rh.amounts,
                       .nres = rh.n, .place_names = (const char *const *)rp.names,
                       .place_amounts = rp.amounts, .nplace = rp.n, .name = name, .ns = ns,
                       .detached = detached, .max_concurrency = max_conc, .is_async = is_async,
                       .max_restarts = max_restarts, .max_task_retries = max_task_retries,
                       .handle = handle.buf, .handle_len = (size_t)handle.len,
                       .strategy = strategy,
                       .node = node.buf && node.len == MT_NODE_ID_LEN ? node.buf : NULL,
                       .soft = soft};
    mt_aid id;
    mt_obj *anchor = NULL;
    uint8_t *existing = NULL;
    size_t elen = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_actor_create(mpy_core, &d, &id, &anchor, &existing, &elen);
    Py_END_ALLOW_THREADS if (rc == MANTA_EEXIST && existing)
    {
        result = info_dict(existing, elen);
        free(existing);
        goto out;
    }
    if (rc) {
        mpy_raise(rc, "cannot create the actor");
        goto out;
    }
    PyObject *ref = anchor ? mpy_ref_new(anchor) : Py_NewRef(Py_None);
    result = ref ? Py_BuildValue("(y#N)", (const char *)id.b, (Py_ssize_t)MT_ACTOR_ID_LEN, ref)
                 : NULL;
out:
    mpy_args_free(&ar);
    mpy_res_free(&rh);
    mpy_res_free(&rp);
    PyBuffer_Release(&fn_id);
    PyBuffer_Release(&handle);
    if (node.buf) PyBuffer_Release(&node);
    return result;
}

/* actor_call(actor_id, method, args, kwargs, num_returns, anchor) -> refs */
PyObject *mpy_actor_call(PyObject *self, PyObject *a)
{
    Py_buffer aid;
    const char *method;
    PyObject *args, *kwargs, *anchor;
    unsigned int nret;
    if (!PyArg_ParseTuple(a, "y*sO!OIO", &aid, &method, &PyTuple_Type, &args, &kwargs, &nret,
                          &anchor))
        return NULL;
    PyObject *result = NULL;
    mpy_args ar = {0};
    mt_obj **rets = NULL;
    mt_aid id;
    if (!mpy_core) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not initialized");
        goto out;
    }
    if (read_aid(&aid, &id) < 0) goto out;
    mt_obj *anc = NULL;
    if (anchor != Py_None) {
        if (!MPY_IS_REF(anchor) || ((mpy_ref *)anchor)->gen != mpy_gen) {
            PyErr_SetString(PyExc_ValueError, "this actor handle belongs to a previous session");
            goto out;
        }
        anc = ((mpy_ref *)anchor)->obj;
    }
    if (mpy_args_build(args, kwargs, &ar) < 0) goto out;
    rets = PyMem_Calloc(nret + 1, sizeof *rets);
    int rc = mt_core_actor_call(mpy_core, &id, method, ar.targs, ar.n, nret, anc, rets);
    if (rc) {
        mpy_raise(rc, "cannot call the actor");
        goto out;
    }
    result = mpy_wrap_returns(rets, nret);
out:
    mpy_args_free(&ar);
    PyMem_Free(rets);
    PyBuffer_Release(&aid);
    return result;
}

/* actor_kill(actor_id, no_restart) */
PyObject *mpy_actor_kill(PyObject *self, PyObject *a)
{
    Py_buffer aid;
    int no_restart = 1;
    if (!PyArg_ParseTuple(a, "y*|p", &aid, &no_restart)) return NULL;
    mt_aid id;
    int ok = read_aid(&aid, &id);
    PyBuffer_Release(&aid);
    if (ok < 0) return NULL;
    MPY_NEED_CORE(NULL);
    Py_BEGIN_ALLOW_THREADS mt_core_actor_kill(mpy_core, &id, no_restart);
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

/* actor_lookup(name, namespace) or actor_lookup(None, None, actor_id) -> dict or None */
PyObject *mpy_actor_lookup(PyObject *self, PyObject *a)
{
    const char *name, *ns;
    Py_buffer aid = {0};
    if (!PyArg_ParseTuple(a, "zz|y*", &name, &ns, &aid)) return NULL;
    mt_aid id, *idp = NULL;
    if (aid.buf) {
        int ok = read_aid(&aid, &id);
        PyBuffer_Release(&aid);
        if (ok < 0) return NULL;
        idp = &id;
    }
    MPY_NEED_CORE(NULL);
    uint8_t *info = NULL;
    size_t len = 0;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_core_actor_lookup(mpy_core, name, ns, idp, &info, &len);
    Py_END_ALLOW_THREADS if (rc == MANTA_ENOENT) Py_RETURN_NONE;
    if (rc) return mpy_raise(rc, "actor lookup failed");
    PyObject *d = info_dict(info, len);
    free(info);
    return d;
}

/* actor_exit(): tell the control store this actor exits and fail the calls
 * still queued; the caller then ends the process. */
PyObject *mpy_actor_exit(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    Py_BEGIN_ALLOW_THREADS mt_exec_actor_exit(mpy_core);
    mt_exec_drain(mpy_core, MANTA__TASK_STATUS__TASK_ACTOR_DEAD,
                  "The actor exited by calling exit_actor() before running this call.");
    Py_END_ALLOW_THREADS Py_RETURN_NONE;
}

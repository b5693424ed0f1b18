/* serial.c -- Python values to manta values and back.
 *
 * Pickle protocol 5 with out-of-band buffers.  The C pickler is tried
 * first (fast); when it fails, or when its output names __main__ (a class
 * or function of the driver script, which a worker cannot import by
 * reference), cloudpickle serializes by value instead. */
#include "mpy.h"

#include <string.h>

#include "mt.h"

_Thread_local PyObject *mpy_collect;

static PyObject *str_buffer_callback;

static int dumps_with(PyObject *dumps, PyObject *obj, PyObject *buffers, PyObject **meta)
{
    if (!str_buffer_callback) str_buffer_callback = PyUnicode_InternFromString("buffer_callback");
    PyObject *cb = PyObject_GetAttrString(buffers, "append");
    if (!cb) return -1;
    PyObject *args = Py_BuildValue("(Oi)", obj, 5);
    PyObject *kw = PyDict_New();
    if (!args || !kw || PyDict_SetItem(kw, str_buffer_callback, cb) < 0) {
        Py_XDECREF(args);
        Py_XDECREF(kw);
        Py_DECREF(cb);
        return -1;
    }
    *meta = PyObject_Call(dumps, args, kw);
    Py_DECREF(args);
    Py_DECREF(kw);
    Py_DECREF(cb);
    return *meta ? 0 : -1;
}

static bool names_main(PyObject *meta)
{
    return memmem(PyBytes_AS_STRING(meta), (size_t)PyBytes_GET_SIZE(meta), "__main__", 8) != NULL;
}

/* Atoms the C pickler always handles by value. */
static bool is_atom(PyObject *o)
{
    return o == Py_None || PyLong_CheckExact(o) || PyFloat_CheckExact(o) ||
           PyUnicode_CheckExact(o) || PyBytes_CheckExact(o) || PyBool_Check(o);
}

static int pickle_both(PyObject *obj, mpy_ser *s)
{
    PyObject *meta = NULL;
    if (dumps_with(mpy_h.pickle_dumps, obj, s->buffers, &meta) == 0 && !names_main(meta)) {
        s->meta = meta;
        return 0;
    }
    /* Start over with cloudpickle: fresh buffer and ref lists. */
    Py_XDECREF(meta);
    PyErr_Clear();
    PyList_SetSlice(s->buffers, 0, PY_SSIZE_T_MAX, NULL);
    PyList_SetSlice(s->refs, 0, PY_SSIZE_T_MAX, NULL);
    if (dumps_with(mpy_h.cloud_dumps, obj, s->buffers, &meta) < 0) return -1;
    s->meta = meta;
    return 0;
}

int mpy_serialize(PyObject *obj, mpy_ser *s)
{
    memset(s, 0, sizeof *s);
    s->buffers = PyList_New(0);
    s->refs = PyList_New(0);
    if (!s->buffers || !s->refs) goto fail;
    PyObject *saved = mpy_collect;
    mpy_collect = s->refs;
    int rc;
    if (is_atom(obj)) {
        PyObject *meta = NULL;
        rc = dumps_with(mpy_h.pickle_dumps, obj, s->buffers, &meta);
        s->meta = meta;
    } else {
        rc = pickle_both(obj, s);
    }
    mpy_collect = saved;
    if (rc < 0) goto fail;
    Py_ssize_t nb = PyList_GET_SIZE(s->buffers);
    s->views = PyMem_Calloc((size_t)nb + 1, sizeof *s->views);
    s->lens = PyMem_Calloc((size_t)nb + 1, sizeof *s->lens);
    if (!s->views || !s->lens) goto fail;
    for (Py_ssize_t i = 0; i < nb; i++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(s->buffers, i), &s->views[i], PyBUF_CONTIG_RO) < 0)
            goto fail;
        s->nviews++;
        s->lens[i] = (uint64_t)s->views[i].len;
    }
    s->size = mt_valfmt_size((uint64_t)PyBytes_GET_SIZE(s->meta), s->lens, (uint32_t)nb);
    return 0;
fail:
    if (!PyErr_Occurred()) PyErr_NoMemory();
    mpy_ser_free(s);
    return -1;
}

void mpy_ser_write(const mpy_ser *s, uint8_t *dst, uint8_t fmt)
{
    uint64_t mlen = (uint64_t)PyBytes_GET_SIZE(s->meta);
    uint64_t off = mt_valfmt_write(dst, fmt, 0, mlen, s->lens, (uint32_t)s->nviews);
    mt_copy(dst + off, PyBytes_AS_STRING(s->meta), mlen);
    for (Py_ssize_t i = 0; i < s->nviews; i++)
        mt_copy(dst + mt_valfmt_buf_off(dst, (uint32_t)i), s->views[i].buf, s->lens[i]);
}

void mpy_ser_free(mpy_ser *s)
{
    for (Py_ssize_t i = 0; i < s->nviews; i++) PyBuffer_Release(&s->views[i]);
    PyMem_Free(s->views);
    PyMem_Free(s->lens);
    Py_XDECREF(s->meta);
    Py_XDECREF(s->buffers);
    Py_XDECREF(s->refs);
    memset(s, 0, sizeof *s);
}

mt_obj **mpy_ser_objs(const mpy_ser *s, size_t *n)
{
    Py_ssize_t k = s->refs ? PyList_GET_SIZE(s->refs) : 0;
    mt_obj **objs = PyMem_Calloc((size_t)k + 1, sizeof *objs);
    size_t m = 0;
    for (Py_ssize_t i = 0; objs && i < k; i++) {
        mpy_ref *r = (mpy_ref *)PyList_GET_ITEM(s->refs, i);
        bool dup = false;
        for (size_t j = 0; j < m; j++) dup |= objs[j] == r->obj;
        if (!dup) objs[m++] = r->obj;
    }
    *n = m;
    return objs;
}

/* ---------------------------------------------------------------- deserialize */

static PyObject *error_value(int code, const char *text, Py_ssize_t len, PyObject *exc)
{
    PyObject *t = PyUnicode_DecodeUTF8(text, len, "replace");
    if (!t) return NULL;
    PyObject *r = PyObject_CallFunction(mpy_h.error_value, "iNO", code, t, exc ? exc : Py_None);
    return r;
}

/* pickle.loads over the value's bytes, zero-copy for large values. */
static PyObject *loads_value(mt_value *v, const mt_valview *vv)
{
    PyObject *meta, *bufs = NULL, *res;
    if (vv->nbufs == 0 && vv->meta_len < 65536) {
        meta = PyBytes_FromStringAndSize((const char *)vv->meta, (Py_ssize_t)vv->meta_len);
        if (!meta) return NULL;
        res = PyObject_CallFunctionObjArgs(mpy_h.pickle_loads, meta, NULL);
        Py_DECREF(meta);
        return res;
    }
    mt_value_ref(v);
    PyObject *owner = mpy_buf_new(v);
    if (!owner) return NULL;
    PyObject *all = PyMemoryView_FromObject(owner);
    Py_DECREF(owner);
    if (!all) return NULL;
    Py_ssize_t moff = (Py_ssize_t)(vv->meta - v->data);
    meta = PySequence_GetSlice(all, moff, moff + (Py_ssize_t)vv->meta_len);
    bufs = PyList_New(0);
    for (uint32_t i = 0; meta && bufs && i < vv->nbufs; i++) {
        const uint8_t *p;
        uint64_t len;
        if (mt_valview_buf(vv, i, &p, &len)) {
            PyErr_Format(PyExc_ValueError, "malformed value: %s", manta_last_error());
            Py_CLEAR(bufs);
            break;
        }
        Py_ssize_t off = (Py_ssize_t)(p - v->data);
        PyObject *slice = PySequence_GetSlice(all, off, off + (Py_ssize_t)len);
        if (!slice || PyList_Append(bufs, slice) < 0) {
            Py_XDECREF(slice);
            Py_CLEAR(bufs);
            break;
        }
        Py_DECREF(slice);
    }
    Py_DECREF(all);
    if (!meta || !bufs) {
        Py_XDECREF(meta);
        Py_XDECREF(bufs);
        return NULL;
    }
    PyObject *args = PyTuple_Pack(1, meta);
    PyObject *kw = Py_BuildValue("{s:O}", "buffers", bufs);
    res = args && kw ? PyObject_Call(mpy_h.pickle_loads, args, kw) : NULL;
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_DECREF(meta);
    Py_DECREF(bufs);
    return res;
}

_Thread_local int mpy_deser_depth;

static PyObject *deserialize(mt_value *v);

PyObject *mpy_deserialize(mt_value *v)
{
    mpy_deser_depth++;
    PyObject *r = deserialize(v);
    if (--mpy_deser_depth == 0 && mpy_core && mpy_core->bq_n) {
        /* The refs read from v are registered with their owners while v is
         * still held, so no owner frees one in between. */
        mt_core *c = mpy_core;
        Py_BEGIN_ALLOW_THREADS mt_core_borrow_sync(c);
        Py_END_ALLOW_THREADS
    }
    return r;
}

static PyObject *deserialize(mt_value *v)
{
    mt_valview vv;
    if (mt_valfmt_parse(v->data, v->size, &vv)) {
        const char *msg = "malformed value";
        return error_value(MANTA_EPROTO, msg, (Py_ssize_t)strlen(msg), NULL);
    }
    switch (vv.fmt) {
    case MT_FMT_PICKLE:
        return loads_value(v, &vv);
    case MT_FMT_RAW:
        return PyBytes_FromStringAndSize((const char *)vv.meta, (Py_ssize_t)vv.meta_len);
    case MT_FMT_PY_ERROR: {
        PyObject *exc = loads_value(v, &vv);
        if (!exc) {
            /* The exception cannot be rebuilt here (its class is missing):
             * report that instead of failing the get. */
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            PyObject *s = ev ? PyObject_Str(ev) : NULL;
            const char *txt = s ? PyUnicode_AsUTF8(s) : "unknown";
            PyObject *r = error_value(MANTA_ETASK, txt ? txt : "", txt ? (Py_ssize_t)strlen(txt) : 0, NULL);
            Py_XDECREF(s);
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
            return r;
        }
        /* The code says why: a task's exception, or an actor's constructor. */
        PyObject *r = error_value(vv.code ? vv.code : MANTA_ETASK, "", 0, exc);
        Py_DECREF(exc);
        return r;
    }
    case MT_FMT_ERROR:
        return error_value(vv.code, (const char *)vv.meta, (Py_ssize_t)vv.meta_len, NULL);
    case MT_FMT_C_ERROR:
        return error_value(MANTA_ETASK, (const char *)vv.meta, (Py_ssize_t)vv.meta_len, NULL);
    }
    return error_value(MANTA_EPROTO, "unknown format", 14, NULL);
}

/* objref.c -- the ObjectRef type (a counted handle on a runtime object)
 * and Buffer (a read-only view of a value that keeps it alive). */
#include "mpy.h"

#include "mt.h"

/* ---------------------------------------------------------------- ObjectRef */

PyObject *mpy_ref_new(mt_obj *o)
{
    mpy_ref *r = PyObject_New(mpy_ref, &mpy_ref_type);
    if (!r) {
        if (mpy_core) mt_obj_decref(mpy_core, o);
        return NULL;
    }
    r->obj = o;
    r->gen = mpy_gen;
    r->weakrefs = NULL;
    return (PyObject *)r;
}

static void ref_dealloc(mpy_ref *r)
{
    if (r->weakrefs) PyObject_ClearWeakRefs((PyObject *)r);
    if (r->obj && mpy_core && r->gen == mpy_gen) mt_obj_decref(mpy_core, r->obj);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *ref_hex(mpy_ref *r, PyObject *unused)
{
    char hex[2 * MT_OBJECT_ID_LEN + 1];
    return PyUnicode_FromString(mt_hex(r->obj->id.b, MT_OBJECT_ID_LEN, hex));
}

static PyObject *ref_binary(mpy_ref *r, PyObject *unused)
{
    return PyBytes_FromStringAndSize((const char *)r->obj->id.b, MT_OBJECT_ID_LEN);
}

static PyObject *ref_task_id(mpy_ref *r, PyObject *unused)
{
    char hex[2 * MT_TASK_ID_LEN + 1];
    return PyUnicode_FromString(mt_hex(r->obj->id.b, MT_TASK_ID_LEN, hex));
}

static PyObject *ref_repr(mpy_ref *r)
{
    char hex[2 * MT_OBJECT_ID_LEN + 1];
    return PyUnicode_FromFormat("ObjectRef(%s)", mt_hex(r->obj->id.b, MT_OBJECT_ID_LEN, hex));
}

static Py_hash_t ref_hash(mpy_ref *r)
{
    Py_hash_t h = (Py_hash_t)mt_hash_bytes(r->obj->id.b, MT_OBJECT_ID_LEN);
    return h == -1 ? -2 : h;
}

static PyObject *ref_richcmp(PyObject *a, PyObject *b, int op)
{
    if (!MPY_IS_REF(a) || !MPY_IS_REF(b) || (op != Py_EQ && op != Py_NE)) Py_RETURN_NOTIMPLEMENTED;
    int eq = !memcmp(((mpy_ref *)a)->obj->id.b, ((mpy_ref *)b)->obj->id.b, MT_OBJECT_ID_LEN);
    if ((op == Py_EQ) == eq) Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

/* Thread-local collector of refs met while pickling (see serial.c). */
extern _Thread_local PyObject *mpy_collect;

/* Pickling a ref: record it (the value that holds it takes a credit) and
 * reduce to (rebuild, (id, packed owner address)). */
static PyObject *ref_reduce(mpy_ref *r, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    if (r->gen != mpy_gen) {
        PyErr_SetString(PyExc_RuntimeError, "this ObjectRef belongs to a previous session");
        return NULL;
    }
    if (mpy_collect && PyList_Append(mpy_collect, (PyObject *)r) < 0) return NULL;
    Manta__Address a;
    char ep[512];
    mt_core_ref_owner(mpy_core, r->obj, &a, ep, sizeof ep);
    size_t n = manta__address__get_packed_size(&a);
    PyObject *addr = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    if (!addr) return NULL;
    manta__address__pack(&a, (uint8_t *)PyBytes_AS_STRING(addr));
    PyObject *id = PyBytes_FromStringAndSize((const char *)r->obj->id.b, MT_OBJECT_ID_LEN);
    if (!id) {
        Py_DECREF(addr);
        return NULL;
    }
    return Py_BuildValue("O(NN)", mpy_h.ref_reducer, id, addr);
}

static PyObject *ref_is_nil(mpy_ref *r, PyObject *unused) { Py_RETURN_FALSE; }

/* future(): a concurrent.futures.Future resolved with the value. */
static PyObject *ref_future(PyObject *self, PyObject *unused)
{
    if (!mpy_h.make_future) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not set up");
        return NULL;
    }
    return PyObject_CallOneArg(mpy_h.make_future, self);
}

static PyObject *ref_await(PyObject *self)
{
    if (!mpy_h.await_ref) {
        PyErr_SetString(PyExc_RuntimeError, "manta is not set up");
        return NULL;
    }
    return PyObject_CallOneArg(mpy_h.await_ref, self);
}

static PyAsyncMethods ref_async = {.am_await = ref_await};

static PyObject *ref_copy(PyObject *self, PyObject *unused)
{
    Py_INCREF(self);
    return self;
}

static PyMethodDef ref_methods[] = {
    {"hex", (PyCFunction)ref_hex, METH_NOARGS, "The object id in hex."},
    {"binary", (PyCFunction)ref_binary, METH_NOARGS, "The object id as bytes."},
    {"task_id", (PyCFunction)ref_task_id, METH_NOARGS, "Id of the task that made the object."},
    {"is_nil", (PyCFunction)ref_is_nil, METH_NOARGS, "Always False."},
    {"future", (PyCFunction)ref_future, METH_NOARGS, "A concurrent.futures.Future of the value."},
    {"__reduce__", (PyCFunction)ref_reduce, METH_NOARGS, NULL},
    {"__copy__", ref_copy, METH_NOARGS, NULL},
    {"__deepcopy__", ref_copy, METH_O, NULL},
    {NULL},
};

PyTypeObject mpy_ref_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "manta._manta.ObjectRef",
    .tp_basicsize = sizeof(mpy_ref),
    .tp_dealloc = (destructor)ref_dealloc,
    .tp_repr = (reprfunc)ref_repr,
    .tp_hash = (hashfunc)ref_hash,
    .tp_as_async = &ref_async,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "A reference to an object in the cluster (a distributed future).",
    .tp_richcompare = ref_richcmp,
    .tp_weaklistoffset = offsetof(mpy_ref, weakrefs),
    .tp_methods = ref_methods,
};

/* ---------------------------------------------------------------- Buffer */

PyObject *mpy_buf_new(mt_value *v)
{
    mpy_buf *b = PyObject_New(mpy_buf, &mpy_buf_type);
    if (!b) {
        mt_value_unref(v);
        return NULL;
    }
    b->v = v;
    b->exports = 0;
    return (PyObject *)b;
}

static void buf_dealloc(mpy_buf *b)
{
    mt_value_unref(b->v);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static int buf_getbuffer(mpy_buf *b, Py_buffer *view, int flags)
{
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "objects from the store are read-only");
        view->obj = NULL;
        return -1;
    }
    int rc = PyBuffer_FillInfo(view, (PyObject *)b, b->v->data, (Py_ssize_t)b->v->size, 1, flags);
    if (rc == 0) b->exports++;
    return rc;
}

static void buf_releasebuffer(mpy_buf *b, Py_buffer *view) { b->exports--; }

static PyBufferProcs buf_procs = {
    .bf_getbuffer = (getbufferproc)buf_getbuffer,
    .bf_releasebuffer = (releasebufferproc)buf_releasebuffer,
};

static Py_ssize_t buf_len(mpy_buf *b) { return (Py_ssize_t)b->v->size; }

static PySequenceMethods buf_seq = {.sq_length = (lenfunc)buf_len};

PyTypeObject mpy_buf_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "manta._manta.Buffer",
    .tp_basicsize = sizeof(mpy_buf),
    .tp_dealloc = (destructor)buf_dealloc,
    .tp_as_buffer = &buf_procs,
    .tp_as_sequence = &buf_seq,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only bytes of a value, in process memory or the node's shared memory.",
};

int mpy_ref_init_type(PyObject *m)
{
    if (PyType_Ready(&mpy_ref_type) < 0 || PyType_Ready(&mpy_buf_type) < 0) return -1;
    Py_INCREF(&mpy_ref_type);
    Py_INCREF(&mpy_buf_type);
    if (PyModule_AddObject(m, "ObjectRef", (PyObject *)&mpy_ref_type) < 0) return -1;
    return PyModule_AddObject(m, "Buffer", (PyObject *)&mpy_buf_type);
}

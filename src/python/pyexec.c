/* pyexec.c -- the worker side of the extension: the Task type handed to
 * the Python worker loop (arguments in, returns out). */
#include "mpy.h"

#include <string.h>

#include "mt.h"

typedef struct {
    PyObject_HEAD
    mt_exec_task *t;
} mpy_task;

static PyTypeObject mpy_task_type;

static void task_dealloc(mpy_task *k)
{
    /* A task dropped without finish(): fail it so its caller hears back. */
    if (k->t && mpy_core) mt_exec_finish(mpy_core, k->t, MANTA__TASK_STATUS__TASK_SYSTEM_ERROR,
                                         "the worker dropped the task");
    Py_TYPE(k)->tp_free((PyObject *)k);
}

#define SPEC(k) mt_exec_spec((k)->t)
#define NEED_TASK(k)                                                                               \
    do {                                                                                           \
        if (!(k)->t) {                                                                             \
            PyErr_SetString(PyExc_RuntimeError, "the task is finished");                          \
            return NULL;                                                                           \
        }                                                                                          \
    } while (0)

static PyObject *task_get(mpy_task *k, void *which)
{
    NEED_TASK(k);
    const Manta__TaskSpec *s = SPEC(k);
    char hex[64];
    switch ((intptr_t)which) {
    case 0: return PyBytes_FromStringAndSize((const char *)s->function_id.data, (Py_ssize_t)s->function_id.len);
    case 1: return PyUnicode_FromString(s->name ? s->name : "");
    case 2: return PyLong_FromUnsignedLong(s->job_id);
    case 3: return PyUnicode_FromString(mt_hex(s->task_id.data, s->task_id.len, hex));
    case 4: return PyLong_FromUnsignedLong(s->attempt);
    case 5: return PyLong_FromUnsignedLong(s->num_returns);
    case 6: return PyLong_FromLong(s->kind);
    case 7: return PyLong_FromSize_t(s->n_args);
    case 8: {
        PyObject *l = PyList_New((Py_ssize_t)s->n_gpu_ids);
        for (size_t i = 0; l && i < s->n_gpu_ids; i++)
            PyList_SET_ITEM(l, (Py_ssize_t)i, PyLong_FromLong(s->gpu_ids[i]));
        return l;
    }
    case 10: return PyUnicode_FromString(s->method ? s->method : "");
    case 11: return PyBytes_FromStringAndSize((const char *)s->actor_id.data, (Py_ssize_t)s->actor_id.len);
    case 12: return PyLong_FromUnsignedLong(s->max_concurrency);
    case 13: return PyBool_FromLong(s->is_async);
    case 14: return PyLong_FromUnsignedLongLong(s->seq);
    case 15: return PyBytes_FromStringAndSize((const char *)s->retry_exceptions.data,
                                              (Py_ssize_t)s->retry_exceptions.len);
    case 16: return PyBool_FromLong(mt_exec_cancel_requested(k->t));
    case 9: return mpy_res_dict(s->resources, s->n_resources);
    }
    Py_RETURN_NONE;
}

static PyGetSetDef task_getset[] = {
    {"fn_id", (getter)task_get, NULL, NULL, (void *)0},
    {"name", (getter)task_get, NULL, NULL, (void *)1},
    {"job_id", (getter)task_get, NULL, NULL, (void *)2},
    {"task_id", (getter)task_get, NULL, NULL, (void *)3},
    {"attempt", (getter)task_get, NULL, NULL, (void *)4},
    {"num_returns", (getter)task_get, NULL, NULL, (void *)5},
    {"kind", (getter)task_get, NULL, NULL, (void *)6},
    {"nargs", (getter)task_get, NULL, NULL, (void *)7},
    {"gpu_ids", (getter)task_get, NULL, NULL, (void *)8},
    {"resources", (getter)task_get, NULL, NULL, (void *)9},
    {"method", (getter)task_get, NULL, NULL, (void *)10},
    {"actor_id", (getter)task_get, NULL, NULL, (void *)11},
    {"max_concurrency", (getter)task_get, NULL, NULL, (void *)12},
    {"is_async", (getter)task_get, NULL, NULL, (void *)13},
    {"seq", (getter)task_get, NULL, NULL, (void *)14},
    {"retry_exceptions", (getter)task_get, NULL, NULL, (void *)15},
    {"cancel_requested", (getter)task_get, NULL, NULL, (void *)16},
    {NULL},
};

/* arg(i) -> the deserialized argument (an ErrorValue if it failed) */
static PyObject *task_arg(mpy_task *k, PyObject *idx)
{
    NEED_TASK(k);
    Py_ssize_t i = PyLong_AsSsize_t(idx);
    if (i < 0 && PyErr_Occurred()) return NULL;
    mt_value *v = mt_exec_arg(k->t, (size_t)i);
    if (!v) {
        PyErr_SetString(PyExc_IndexError, "no such argument");
        return NULL;
    }
    return mpy_deserialize(v);
}

static int write_return(mpy_task *k, uint32_t i, PyObject *obj, uint8_t fmt)
{
    mpy_ser s;
    if (mpy_serialize(obj, &s) < 0) return -1;
    size_t n;
    mt_obj **inner = mpy_ser_objs(&s, &n);
    uint8_t *dst;
    Py_BEGIN_ALLOW_THREADS dst = mt_exec_return_alloc(mpy_core, k->t, i, s.size, inner, n);
    if (dst) mpy_ser_write(&s, dst, fmt);
    Py_END_ALLOW_THREADS PyMem_Free(inner);
    mpy_ser_free(&s);
    if (!dst) {
        mpy_raise(MANTA_ESTOREFULL, "cannot store the task's return value");
        return -1;
    }
    return 0;
}

/* set_return(i, value) */
static PyObject *task_set_return(mpy_task *k, PyObject *args)
{
    NEED_TASK(k);
    unsigned int i;
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "IO", &i, &obj)) return NULL;
    if (write_return(k, i, obj, MT_FMT_PICKLE) < 0) return NULL;
    Py_RETURN_NONE;
}

/* set_error(exc): every return becomes the pickled exception. */
static PyObject *task_set_error(mpy_task *k, PyObject *exc)
{
    NEED_TASK(k);
    for (uint32_t i = 0; i < SPEC(k)->num_returns; i++)
        if (write_return(k, i, exc, MT_FMT_PY_ERROR) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *task_set_retryable(mpy_task *k, PyObject *unused)
{
    NEED_TASK(k);
    mt_exec_set_retryable(k->t, true);
    Py_RETURN_NONE;
}

/* finish(status, error=None) */
static PyObject *task_finish(mpy_task *k, PyObject *args)
{
    NEED_TASK(k);
    int status;
    const char *err = NULL;
    if (!PyArg_ParseTuple(args, "i|z", &status, &err)) return NULL;
    mt_exec_task *t = k->t;
    k->t = NULL;
    /* Sending the reply does not block (what the socket does not take now
     * leaves later); keeping the GIL saves a hand-off to another thread. */
    mt_exec_finish(mpy_core, t, status, err);
    Py_RETURN_NONE;
}

static PyMethodDef task_methods[] = {
    {"arg", (PyCFunction)task_arg, METH_O, "Argument i, deserialized."},
    {"set_return", (PyCFunction)task_set_return, METH_VARARGS, "Set return i."},
    {"set_error", (PyCFunction)task_set_error, METH_O, "Fail every return with an exception."},
    {"finish", (PyCFunction)task_finish, METH_VARARGS, "Send the reply."},
    {"set_retryable", (PyCFunction)task_set_retryable, METH_NOARGS,
     "The exception raised is one retry_exceptions allows to retry."},
    {NULL},
};

static PyTypeObject mpy_task_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "manta._manta.Task",
    .tp_basicsize = sizeof(mpy_task),
    .tp_dealloc = (destructor)task_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_getset = task_getset,
    .tp_methods = task_methods,
};

/* next_task(timeout) -> Task, or None when the worker should exit */
PyObject *mpy_next_task(PyObject *self, PyObject *args)
{
    double timeout = -1;
    if (!PyArg_ParseTuple(args, "|d", &timeout)) return NULL;
    MPY_NEED_CORE(NULL);
    mt_exec_task *t = NULL;
    /* A task already queued is taken without letting go of the GIL: each
     * release hands the GIL to another thread (a threaded actor's), and
     * each hand-off wakes one. */
    int rc = mt_exec_try_next(mpy_core, &t);
    if (rc) {
        Py_BEGIN_ALLOW_THREADS rc = mt_exec_next(mpy_core, timeout, &t);
        Py_END_ALLOW_THREADS if (rc) Py_RETURN_NONE;
    }
    mpy_task *k = PyObject_New(mpy_task, &mpy_task_type);
    if (!k) {
        mt_exec_finish(mpy_core, t, MANTA__TASK_STATUS__TASK_SYSTEM_ERROR, "out of memory");
        return NULL;
    }
    k->t = t;
    return (PyObject *)k;
}

/* task_fd() -> an fd that turns readable when tasks wait (see ready()) */
PyObject *mpy_task_fd(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    int fd = mt_exec_notify_fd(mpy_core);
    if (fd < 0) return mpy_raise(fd, "cannot watch for tasks");
    return PyLong_FromLong(fd);
}

/* ready() -> (stop, cancels): drains task_fd; `stop` when the worker must
 * exit, `cancels` counts the cancel() calls of running async calls so far. */
PyObject *mpy_task_ready(PyObject *self, PyObject *unused)
{
    MPY_NEED_CORE(NULL);
    bool stop;
    uint64_t cancels;
    mt_exec_ready(mpy_core, &stop, &cancels);
    return Py_BuildValue("(OK)", stop ? Py_True : Py_False, (unsigned long long)cancels);
}

int mpy_task_init_type(PyObject *m)
{
    if (PyType_Ready(&mpy_task_type) < 0) return -1;
    Py_INCREF(&mpy_task_type);
    return PyModule_AddObject(m, "Task", (PyObject *)&mpy_task_type);
}

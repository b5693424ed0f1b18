/* mpy.h -- shared declarations of the _manta extension module: the runtime
 * it wraps, the ObjectRef and Buffer types, and serialization helpers. */
#ifndef MPY_H
#define MPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "core.h"

/* The runtime of this process (NULL when not connected) and a generation
 * number, so refs that outlive a shutdown do not touch a freed runtime. */
extern mt_core *mpy_core;
extern uint64_t mpy_gen;

/* Python callables installed by manta at import (mpy_setup). */
typedef struct mpy_hooks {
    PyObject *pickle_dumps, *pickle_loads, *cloud_dumps;
    PyObject *error_value;  /* class ErrorValue(code, text, exc) */
    PyObject *rebuild_ref;  /* not used from C; kept for pickling refs */
    PyObject *get_timeout_error;
    PyObject *ref_reducer;  /* manta._private.serialization._rebuild_ref */
} mpy_hooks;
extern mpy_hooks mpy_h;

/* ---------------------------------------------------------------- ObjectRef */
typedef struct {
    PyObject_HEAD
    mt_obj *obj;
    uint64_t gen;
    PyObject *weakrefs;
} mpy_ref;

extern PyTypeObject mpy_ref_type;
#define MPY_IS_REF(o) (Py_TYPE(o) == &mpy_ref_type)
/* Wrap a counted ref (takes the count). */
PyObject *mpy_ref_new(mt_obj *o);
int mpy_ref_init_type(PyObject *m);

/* ---------------------------------------------------------------- Buffer */
/* A read-only buffer over a value; keeps the value (and its store pin). */
typedef struct {
    PyObject_HEAD
    mt_value *v;
    Py_ssize_t exports;
} mpy_buf;

extern PyTypeObject mpy_buf_type;
PyObject *mpy_buf_new(mt_value *v); /* takes a reference of v */

/* ---------------------------------------------------------------- serialization */
/* The result of pickling one object. */
typedef struct mpy_ser {
    PyObject *meta;      /* bytes */
    PyObject *buffers;   /* list of PickleBuffer */
    PyObject *refs;      /* list of ObjectRef found inside */
    Py_buffer *views;
    Py_ssize_t nviews;
    uint64_t *lens;
    uint64_t size;       /* total bytes of the serialized value */
} mpy_ser;

int mpy_serialize(PyObject *obj, mpy_ser *s);
/* Write the value (header, meta, buffers) into dst (s->size bytes). */
void mpy_ser_write(const mpy_ser *s, uint8_t *dst, uint8_t fmt);
void mpy_ser_free(mpy_ser *s);
/* Contained refs as runtime objects (borrowed pointers, valid while the
 * list in s->refs lives). Caller frees the array. */
mt_obj **mpy_ser_objs(const mpy_ser *s, size_t *n);
/* Value -> Python object (an ErrorValue for errors). */
PyObject *mpy_deserialize(mt_value *v);

/* Raise the Python exception for a runtime error code. */
PyObject *mpy_raise(int rc, const char *what);
#define MPY_NEED_CORE(ret)                                                                         \
    do {                                                                                           \
        if (!mpy_core) {                                                                           \
            PyErr_SetString(PyExc_RuntimeError, "manta is not initialized");                      \
            return ret;                                                                            \
        }                                                                                          \
    } while (0)

/* pyexec.c: the worker-side Task type. */
int mpy_task_init_type(PyObject *m);
PyObject *mpy_next_task(PyObject *self, PyObject *args);

#endif

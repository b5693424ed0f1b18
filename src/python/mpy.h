/* mpy.h -- shared declarations of the _manta extension module: the runtime
 * it wraps, the ObjectRef and Buffer types, and serialization helpers. */
#ifndef MPY_H
#define MPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "router.h"

/* The runtime of this process (NULL when not connected) and a generation
 * number, so refs that outlive a shutdown do not touch a freed runtime. */
extern mt_core *mpy_core;
extern uint64_t mpy_gen;

/* Python callables installed by manta at import (mpy_setup). */
typedef struct mpy_hooks {
    PyObject *pickle_dumps, *pickle_loads, *cloud_dumps;
    PyObject *error_value;  /* class ErrorValue(code, text, exc) */
    PyObject *rebuild_ref;  /* not used from C; kept for pickling refs */
    PyObject *error_types;    /* {manta error code: exception class} (Ray's types) */
    PyObject *ref_reducer;  /* manta._private.serialization._rebuild_ref */
    PyObject *make_future; /* ref -> concurrent.futures.Future */
    PyObject *await_ref;   /* ref -> iterator for __await__ */
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
/* Depth of mpy_deserialize calls on this thread (refs read inside one are
 * registered with their owners in a batch at the end). */
extern _Thread_local int mpy_deser_depth;

/* Raise the Python exception for a runtime error code. */
PyObject *mpy_raise(int rc, const char *what);
/* A resource list of the wire as {name: amount} (amounts in the scheduler's
 * units turned back by mt_res_to_double); NULL with an exception set. */
PyObject *mpy_res_dict(Manta__Resource *const *v, size_t n);
#define MPY_NEED_CORE(ret)                                                                         \
    do {                                                                                           \
        if (!mpy_core) {                                                                           \
            PyErr_SetString(PyExc_RuntimeError, "manta is not initialized");                      \
            return ret;                                                                            \
        }                                                                                          \
    } while (0)

/* A resource dict as sorted names and fixed-point amounts (zero amounts
 * left out). */
typedef struct mpy_res {
    char **names;
    int64_t *amounts;
    uint32_t n;
} mpy_res;
/* Fill `r` from dict `d` ({"CPU": 1.0, "x": 2}).  -1 with TypeError for a
 * value that is not a number, ValueError naming the resource for a bad name
 * or an amount that is NaN, infinite, negative, above the maximum or below
 * 0.0001.  Free `r` with mpy_res_free() either way. */
int mpy_res_from_dict(PyObject *d, mpy_res *r);
void mpy_res_free(mpy_res *r);

/* Scheduling options of a remote function (TaskOptions), parsed once. */
typedef struct {
    PyObject_HEAD
    mpy_res res;
    uint32_t num_returns;
    int max_retries;
    PyObject *retry_exc; /* bytes */
    int strategy;        /* MANTA__SCHED_STRATEGY__* */
    uint8_t node[16];    /* NODE_AFFINITY */
    bool has_node, soft;
} mpy_opts;
extern PyTypeObject mpy_opts_type;

/* Task arguments: argument 0 is the pickled (args, kwargs, slots); the
 * top-level refs follow as reference arguments. */
typedef struct mpy_args {
    mt_targ *targs;
    uint32_t n;
    mpy_ser ser;
    mt_obj *tmp_ref;
    PyObject *refs, *tmpl;
} mpy_args;
int mpy_args_build(PyObject *args, PyObject *kwargs, mpy_args *a);
void mpy_args_free(mpy_args *a);
/* n refs as Python: one ObjectRef, None for 0, else a list. */
PyObject *mpy_wrap_returns(mt_obj **rets, uint32_t n);

/* pypriv.c */
PyObject *mpy_session_root(PyObject *self, PyObject *unused);
PyObject *mpy_check_session(PyObject *self, PyObject *args);
PyObject *mpy_latest_session(PyObject *self, PyObject *args);
PyObject *mpy_proc_start_time(PyObject *self, PyObject *args);
PyObject *mpy_proc_is(PyObject *self, PyObject *args);
PyObject *mpy_signal_process(PyObject *self, PyObject *args);
PyObject *mpy_signal_listed(PyObject *self, PyObject *args);
#define MPY_PRIV_METHODS                                                                           \
    {"session_root", mpy_session_root, METH_NOARGS, "The session root, created and checked."},    \
        {"check_session", mpy_check_session, METH_VARARGS, "Refuse a session dir not ours."},     \
        {"latest_session", mpy_latest_session, METH_VARARGS, "The checked `latest` session."},    \
        {"proc_start_time", mpy_proc_start_time, METH_VARARGS, "A process's start time."},        \
        {"proc_is", mpy_proc_is, METH_VARARGS, "Whether a pid is the recorded process."},         \
        {"signal_process", mpy_signal_process, METH_VARARGS, "Signal a recorded process."},       \
        {"signal_listed", mpy_signal_listed, METH_VARARGS, "Signal the processes of a pid file."},

/* pylayout.c */
PyObject *mpy_session_paths(PyObject *self, PyObject *args);
PyObject *mpy_worker_socket(PyObject *self, PyObject *args);
PyObject *mpy_session_of(PyObject *self, PyObject *args);
PyObject *mpy_new_session_dir(PyObject *self, PyObject *args);
PyObject *mpy_root_paths(PyObject *self, PyObject *args);
PyObject *mpy_list_sessions(PyObject *self, PyObject *args);
PyObject *mpy_read_info(PyObject *self, PyObject *args);
PyObject *mpy_read_pids(PyObject *self, PyObject *args);
PyObject *mpy_read_token(PyObject *self, PyObject *args);
PyObject *mpy_set_latest(PyObject *self, PyObject *args);
PyObject *mpy_drop_latest(PyObject *self, PyObject *args);
#define MPY_LAYOUT_METHODS                                                                         \
    {"session_paths", mpy_session_paths, METH_VARARGS, "The paths of a session directory."},      \
        {"worker_socket", mpy_worker_socket, METH_VARARGS, "A worker's socket in a session."},    \
        {"session_of", mpy_session_of, METH_VARARGS, "The session dir of a daemon socket."},     \
        {"new_session_dir", mpy_new_session_dir, METH_VARARGS, "A new session's path."},          \
        {"root_paths", mpy_root_paths, METH_VARARGS, "The paths of a session root."},            \
        {"list_sessions", mpy_list_sessions, METH_VARARGS, "Session dirs of a root, newest first."}, \
        {"read_info", mpy_read_info, METH_VARARGS, "A session's info file, parsed."},             \
        {"read_pids", mpy_read_pids, METH_VARARGS, "A pid file's (pid, start) entries."},         \
        {"read_token", mpy_read_token, METH_VARARGS, "A session's cluster token."},               \
        {"set_latest", mpy_set_latest, METH_VARARGS, "Point the root's latest link at a session."}, \
        {"drop_latest", mpy_drop_latest, METH_VARARGS, "Remove a stale latest link."},

/* pyactor.c */
PyObject *mpy_actor_create(PyObject *self, PyObject *args, PyObject *kw);
PyObject *mpy_actor_call(PyObject *self, PyObject *args);
PyObject *mpy_actor_kill(PyObject *self, PyObject *args);
PyObject *mpy_actor_lookup(PyObject *self, PyObject *args);
PyObject *mpy_actor_exit(PyObject *self, PyObject *args);
#define MPY_ACTOR_METHODS                                                                          \
    {"actor_create", (PyCFunction)(void (*)(void))mpy_actor_create, METH_VARARGS | METH_KEYWORDS,  \
     "Create an actor."},                                                                          \
        {"actor_call", mpy_actor_call, METH_VARARGS, "Call an actor's method."},                   \
        {"actor_kill", mpy_actor_kill, METH_VARARGS, "Kill an actor."},                            \
        {"actor_lookup", mpy_actor_lookup, METH_VARARGS, "Find an actor by name or id."},          \
        {"actor_exit", mpy_actor_exit, METH_VARARGS, "This actor exits (exit_actor)."},

/* pyexec.c: the worker-side Task type. */
int mpy_task_init_type(PyObject *m);
PyObject *mpy_next_task(PyObject *self, PyObject *args);
PyObject *mpy_task_fd(PyObject *self, PyObject *unused);
PyObject *mpy_task_ready(PyObject *self, PyObject *unused);

#endif

/* pypriv.c -- the _manta side of priv.h: the session root, session and
 * `latest` checks and the pid identity checks, so Python's node and CLI
 * code runs the very checks the daemon and the C API run. */
#include "mpy.h"

#include "mt.h"
#include "priv.h"

/* A refused directory is a PermissionError; a missing one FileNotFoundError. */
static PyObject *priv_raise(int rc)
{
    PyErr_SetString(rc == MANTA_ENOENT ? PyExc_FileNotFoundError : PyExc_PermissionError,
                    manta_last_error());
    return NULL;
}

/* session_root() -> the session root, created and checked. */
PyObject *mpy_session_root(PyObject *self, PyObject *unused)
{
    char root[4096];
    int rc = mt_priv_root(root, sizeof root);
    return rc ? priv_raise(rc) : PyUnicode_DecodeFSDefault(root);
}

/* check_session(dir): raise unless `dir` is a private directory of ours. */
PyObject *mpy_check_session(PyObject *self, PyObject *args)
{
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    int rc = mt_priv_check_dir(dir);
    if (rc) return priv_raise(rc);
    Py_RETURN_NONE;
}

/* latest_session(root) -> the checked session `latest` names, or None. */
PyObject *mpy_latest_session(PyObject *self, PyObject *args)
{
    const char *root;
    char dir[8400];
    if (!PyArg_ParseTuple(args, "s", &root)) return NULL;
    int rc = mt_priv_latest(root, dir, sizeof dir);
    if (rc == MANTA_ENOENT) Py_RETURN_NONE;
    return rc ? priv_raise(rc) : PyUnicode_DecodeFSDefault(dir);
}

/* proc_start_time(pid) -> start time, -1 if there is no such process. */
PyObject *mpy_proc_start_time(PyObject *self, PyObject *args)
{
    int pid;
    if (!PyArg_ParseTuple(args, "i", &pid)) return NULL;
    return PyLong_FromLongLong(mt_proc_start_time((pid_t)pid));
}

/* proc_is(pid, start, exe=None, session=None) -> bool */
PyObject *mpy_proc_is(PyObject *self, PyObject *args)
{
    int pid;
    long long start;
    const char *exe = NULL, *session = NULL;
    if (!PyArg_ParseTuple(args, "iL|zz", &pid, &start, &exe, &session)) return NULL;
    return PyBool_FromLong(mt_proc_is((pid_t)pid, start, exe, session));
}

/* signal_process(pid, start, sig, exe=None, session=None) -> whether signalled */
PyObject *mpy_signal_process(PyObject *self, PyObject *args)
{
    int pid, sig;
    long long start;
    const char *exe = NULL, *session = NULL;
    if (!PyArg_ParseTuple(args, "iLi|zz", &pid, &start, &sig, &exe, &session)) return NULL;
    return PyBool_FromLong(mt_proc_signal((pid_t)pid, start, exe, session, sig) == 0);
}

/* signal_listed(path, sig, exe=None, session=None) -> how many were signalled */
PyObject *mpy_signal_listed(PyObject *self, PyObject *args)
{
    const char *path, *exe = NULL, *session = NULL;
    int sig;
    if (!PyArg_ParseTuple(args, "si|zz", &path, &sig, &exe, &session)) return NULL;
    return PyLong_FromLong(mt_proc_signal_listed(path, exe, session, sig));
}

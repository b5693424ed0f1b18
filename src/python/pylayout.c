/* pylayout.c -- the _manta side of layout.h: session paths, and the info,
 * pid and token files, so Python's node, CLI and cluster code names and
 * reads a session directory exactly as the daemon and the C API do. */
#include "mpy.h"

#include "layout.h"
#include "mt.h"

/* A missing file is FileNotFoundError; a malformed one ValueError. */
static PyObject *layout_raise(int rc)
{
    PyObject *type = rc == MANTA_ENOENT   ? PyExc_FileNotFoundError
                     : rc == MANTA_EINVAL ? PyExc_ValueError
                                          : PyExc_OSError;
    PyErr_SetString(type, manta_last_error());
    return NULL;
}

/* session_paths(dir) -> {key: path} of every file of the layout. */
PyObject *mpy_session_paths(PyObject *self, PyObject *args)
{
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    PyObject *d = PyDict_New();
    char p[MT_LAYOUT_PATH_MAX];
    for (int f = 0; d && f < MT_LAYOUT_NFILES; f++) {
        int rc = mt_layout_path(dir, (mt_layout_file)f, p, sizeof p);
        PyObject *v = rc ? layout_raise(rc) : PyUnicode_DecodeFSDefault(p);
        if (!v || PyDict_SetItemString(d, mt_layout_key((mt_layout_file)f), v) < 0) Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* worker_socket(dir, worker_id_hex) -> where that driver or worker listens. */
PyObject *mpy_worker_socket(PyObject *self, PyObject *args)
{
    const char *dir, *wid;
    char p[MT_LAYOUT_PATH_MAX];
    if (!PyArg_ParseTuple(args, "ss", &dir, &wid)) return NULL;
    int rc = mt_layout_worker_socket(dir, wid, p, sizeof p);
    return rc ? layout_raise(rc) : PyUnicode_DecodeFSDefault(p);
}

/* `fn`(the one string argument) as a str: the functions below. */
static PyObject *path_of(PyObject *args, int (*fn)(const char *, char *, size_t))
{
    const char *arg;
    char p[MT_LAYOUT_PATH_MAX];
    if (!PyArg_ParseTuple(args, "s", &arg)) return NULL;
    int rc = fn(arg, p, sizeof p);
    return rc ? layout_raise(rc) : PyUnicode_DecodeFSDefault(p);
}

/* session_of(socket) -> the session directory of a daemon socket. */
PyObject *mpy_session_of(PyObject *self, PyObject *args)
{
    return path_of(args, mt_layout_session_of);
}

/* new_session_dir(root) -> the path of a new session directory (not made). */
PyObject *mpy_new_session_dir(PyObject *self, PyObject *args)
{
    return path_of(args, mt_layout_new_session);
}

/* root_paths(root) -> {"latest": the link to the newest session,
 * "start_output": where `manta start` keeps a starting daemon's output}. */
PyObject *mpy_root_paths(PyObject *self, PyObject *args)
{
    const char *root;
    char latest[MT_LAYOUT_PATH_MAX], out[MT_LAYOUT_PATH_MAX];
    if (!PyArg_ParseTuple(args, "s", &root)) return NULL;
    int rc = mt_layout_latest_path(root, latest, sizeof latest);
    if (!rc) rc = mt_layout_start_output(root, out, sizeof out);
    if (rc) return layout_raise(rc);
    return Py_BuildValue("{s:N,s:N}", "latest", PyUnicode_DecodeFSDefault(latest), "start_output",
                         PyUnicode_DecodeFSDefault(out));
}

static int add_session(const char *dir, void *arg)
{
    PyObject *v = PyUnicode_DecodeFSDefault(dir);
    int rc = v ? PyList_Append(arg, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* list_sessions(root) -> the session directories in `root`, newest first
 * (not checked: see check_session). */
PyObject *mpy_list_sessions(PyObject *self, PyObject *args)
{
    const char *root;
    if (!PyArg_ParseTuple(args, "s", &root)) return NULL;
    PyObject *l = PyList_New(0);
    if (!l) return NULL;
    if (mt_layout_each_session(root, add_session, l) || PyList_Sort(l) < 0 ||
        PyList_Reverse(l) < 0)
        Py_CLEAR(l);
    return l;
}

/* read_info(dir) -> {node_id, socket, host, port, head, pid, start, exe}. */
PyObject *mpy_read_info(PyObject *self, PyObject *args)
{
    const char *dir;
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    mt_layout_info i;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = mt_layout_info_read(dir, &i);
    Py_END_ALLOW_THREADS if (rc) return layout_raise(rc);
    return Py_BuildValue("{s:s,s:N,s:s,s:i,s:N,s:i,s:L,s:N}", "node_id", i.node_id, "socket",
                         PyUnicode_DecodeFSDefault(i.socket), "host", i.host, "port", i.port,
                         "head", PyBool_FromLong(i.head), "pid", (int)i.pid, "start",
                         (long long)i.start, "exe", PyUnicode_DecodeFSDefault(i.exe));
}

/* read_pids(path) -> [(pid, start)] of a pid file, [] if there is none. */
PyObject *mpy_read_pids(PyObject *self, PyObject *args)
{
    const char *path;
    if (!PyArg_ParseTuple(args, "s", &path)) return NULL;
    mt_layout_pid *pids;
    size_t n;
    int rc = mt_layout_pids_read(path, &pids, &n);
    if (rc == MANTA_ENOENT) return PyList_New(0);
    if (rc) return layout_raise(rc);
    PyObject *l = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; l && i < n; i++) {
        PyObject *t = Py_BuildValue("(iL)", (int)pids[i].pid, (long long)pids[i].start);
        if (!t) Py_CLEAR(l);
        else PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    free(pids);
    return l;
}

/* read_token(dir) -> the cluster token of the session. */
PyObject *mpy_read_token(PyObject *self, PyObject *args)
{
    const char *dir;
    char tok[65];
    if (!PyArg_ParseTuple(args, "s", &dir)) return NULL;
    int rc = mt_layout_token_read(dir, tok);
    return rc ? layout_raise(rc) : PyUnicode_FromString(tok);
}

/* set_latest(root, dir): point `root`/latest at `dir`. */
PyObject *mpy_set_latest(PyObject *self, PyObject *args)
{
    const char *root, *dir;
    if (!PyArg_ParseTuple(args, "ss", &root, &dir)) return NULL;
    int rc = mt_layout_latest_set(root, dir);
    if (rc) return layout_raise(rc);
    Py_RETURN_NONE;
}

/* drop_latest(root, dir=None): remove `root`/latest if it names `dir`, or
 * with None, if it names nothing that exists. */
PyObject *mpy_drop_latest(PyObject *self, PyObject *args)
{
    const char *root, *dir = NULL;
    if (!PyArg_ParseTuple(args, "s|z", &root, &dir)) return NULL;
    mt_layout_latest_drop(root, dir);
    Py_RETURN_NONE;
}

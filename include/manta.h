/* manta.h -- the C API of manta, a distributed task and actor runtime.
 *
 * One process calls manta_init() to start a local cluster (or join a running
 * one), then submits functions as tasks, puts and gets objects, and waits on
 * futures.  Every call is thread-safe.  Errors are negative MANTA_E* codes;
 * manta_strerror() names them and manta_last_error() gives the detail of the
 * last failure on the calling thread.
 *
 * How workers find C functions
 * ----------------------------
 * A C task names a function registered with manta_register().  A worker
 * process must have the same registrations, and manta offers two ways:
 *
 *  - Driver binary (default): the node daemon starts workers by running the
 *    driver's own executable again with MANTA_WORKER set in the environment.
 *    The program registers its functions and calls manta_init() exactly as
 *    the driver does; in a worker, manta_init() never returns: it serves
 *    tasks until the node stops it, then exits the process.  So register
 *    every function before manta_init(), and do no work before it that a
 *    worker must not do.
 *  - Shared library: set manta_config.library to a .so path.  Workers are the
 *    generic `manta-worker` program, which dlopen()s the library and finds
 *    each function by its registered name with dlsym().  A function in the
 *    library must therefore be exported under the name the driver uses.
 *
 * Ownership
 * ---------
 * A manta_ref is a counted reference to a distributed object.  Functions that
 * return a manta_ref* hand the caller one reference, which the caller drops
 * with manta_ref_release().  Passing a ref to a function never takes the
 * caller's reference.  The object is freed once no process holds a reference.
 * A manta_value returned by manta_get() stays valid until manta_value_release().
 */
#ifndef MANTA_H
#define MANTA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MANTA_EXPORT __attribute__((visibility("default")))
#else
#define MANTA_EXPORT
#endif

#define MANTA_VERSION_MAJOR 0
#define MANTA_VERSION_MINOR 1
#define MANTA_VERSION_PATCH 0

/* Error codes: one table, negative values, 0 is success.  X(name, value, text). */
#define MANTA_ERRNO_MAP(X)                                                                         \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ETIMEDOUT, -3, "timed out")                                                                  \
    X(ENOENT, -4, "no such object, function or actor")                                             \
    X(EEXIST, -5, "already exists")                                                                \
    X(ECONN, -6, "connection to the cluster failed")                                               \
    X(EPROTO, -7, "malformed or unexpected message")                                               \
    X(ENOTINIT, -8, "manta is not initialized")                                                    \
    X(ETASK, -9, "the task raised an error")                                                       \
    X(EWORKERDIED, -10, "the worker running the task died")                                        \
    X(ESTOREFULL, -11, "the object store is full")                                                 \
    X(EOWNERDIED, -12, "the owner of the object died")                                             \
    X(EOBJLOST, -13, "the object was lost")                                                        \
    X(ECANCELLED, -14, "the task was cancelled")                                                   \
    X(EACTORDIED, -15, "the actor died")                                                           \
    X(EAUTH, -16, "authentication failed")                                                         \
    X(EVERSION, -17, "protocol version mismatch")                                                  \
    X(EINFEASIBLE, -18, "no node can ever satisfy the resource demand")                            \
    X(ESYS, -19, "system call failed")                                                             \
    X(ETOOBIG, -20, "message or value too large")                                                  \
    X(ESHUTDOWN, -21, "the cluster is shutting down")                                              \
    X(EOOM, -22, "the task was killed because the node ran out of memory")                        \
    X(EACTORINIT, -23, "the actor's constructor failed")                                           \
    X(EUNAVAILABLE, -24, "the actor is temporarily unavailable")                                   \
    X(ERECONSTRUCT, -25, "the object was lost and its task ran out of retries to rebuild it")     \
    X(EUNSCHEDULABLE, -26, "the task can never be scheduled (its node is gone)")

enum manta_errno {
#define MANTA_ERR_ENUM_(name, val, text) MANTA_##name = (val),
    MANTA_OK = 0,
    MANTA_ERRNO_MAP(MANTA_ERR_ENUM_)
#undef MANTA_ERR_ENUM_
};

/* The text of an error code; never NULL. */
MANTA_EXPORT const char *manta_strerror(int err);
/* The name of an error code ("MANTA_ETIMEDOUT"); never NULL. */
MANTA_EXPORT const char *manta_err_name(int err);
/* Detail of the last error on this thread ("" if none).  Owned by manta. */
MANTA_EXPORT const char *manta_last_error(void);

/* ------------------------------------------------------------------ init */

typedef struct manta_config {
    /* NULL: start a local cluster owned by this process and stopped when it
     * exits.  "auto": the newest cluster of this user on this machine.
     * "host:port": the cluster whose head listens there, on this machine
     * (MANTA_ECONN if host does not resolve or is not this machine's). */
    const char *address;
    double num_cpus;        /* <0: the machine's cores (default) */
    double num_gpus;        /* <0: detected (0 here) */
    /* Custom resources as a JSON object, e.g. "{\"fpga\": 2}", or NULL. */
    const char *resources_json;
    /* bytes; <=0: 30% of the memory available to the node (within its
     * container's limit); more than the node's memory is refused. */
    int64_t object_store_memory;
    /* NULL: workers run this program again (see above).  Else a shared
     * library that workers dlopen(). */
    const char *library;
} manta_config;

/* Fill `cfg` with the defaults above. */
MANTA_EXPORT void manta_config_init(manta_config *cfg);

/* Start or join a cluster.  `cfg` may be NULL for the defaults.  In a worker
 * process this call serves tasks and exits the process; it never returns. */
MANTA_EXPORT int manta_init(const manta_config *cfg);
/* Disconnect; stops the local cluster if manta_init() started it.  Refs and
 * values still held become invalid.  Safe to call twice. */
MANTA_EXPORT int manta_shutdown(void);
MANTA_EXPORT int manta_is_initialized(void);

/* ------------------------------------------------------------------ objects */

typedef struct manta_ref manta_ref;
typedef struct manta_value manta_value;

/* Store `len` bytes; `*out` receives a new ref. */
MANTA_EXPORT int manta_put(const void *data, size_t len, manta_ref **out);

/* Wait up to `timeout_s` seconds (<0: forever) for the object and hand back
 * its value.  A task that failed yields MANTA_ETASK (or the code of the
 * system failure, e.g. MANTA_EWORKERDIED), with the message in
 * manta_last_error(). */
MANTA_EXPORT int manta_get(const manta_ref *ref, double timeout_s, manta_value **out);

/* The bytes of a value; valid until manta_value_release().  Large values are
 * read in place from the node's shared memory (no copy). */
MANTA_EXPORT const void *manta_value_data(const manta_value *v);
MANTA_EXPORT size_t manta_value_size(const manta_value *v);
MANTA_EXPORT void manta_value_release(manta_value *v);

/* Wait until `num_ready` of the `n` refs are ready or `timeout_s` passes.
 * ready[i] is set to 1 for each ready ref, 0 otherwise.  Returns the number
 * of ready refs (>= 0) or an error. */
MANTA_EXPORT int manta_wait(manta_ref *const *refs, size_t n, size_t num_ready, double timeout_s,
                            int *ready);

/* Another reference to the same object. */
MANTA_EXPORT manta_ref *manta_ref_dup(const manta_ref *ref);
MANTA_EXPORT void manta_ref_release(manta_ref *ref);
/* Hex form of the object id into buf (at least 41 bytes). */
MANTA_EXPORT const char *manta_ref_hex(const manta_ref *ref, char *buf, size_t cap);

/* ------------------------------------------------------------------ tasks */

/* One argument as a task sees it: bytes, whether passed by value or as a ref
 * (refs are resolved before the task runs). */
typedef struct manta_arg_view {
    const void *data;
    size_t size;
} manta_arg_view;

typedef struct manta_result manta_result;

/* A task function.  It reads `nargs` arguments and sets its results with
 * manta_result_set()/manta_result_alloc() (result index 0 .. num_returns-1).
 * It returns 0, or nonzero after manta_result_error() to fail the task. */
typedef int (*manta_task_fn)(const manta_arg_view *args, size_t nargs, manta_result *res);

/* Register `fn` under `name` in this process.  Call before manta_init(). */
MANTA_EXPORT int manta_register(const char *name, manta_task_fn fn);

MANTA_EXPORT int manta_result_set(manta_result *res, size_t index, const void *data, size_t len);
/* Room for `len` bytes of result `index`, written by the task in place
 * (large results go straight into shared memory). */
MANTA_EXPORT void *manta_result_alloc(manta_result *res, size_t index, size_t len);
MANTA_EXPORT int manta_result_error(manta_result *res, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

typedef struct manta_actor manta_actor;

/* An argument for submission: by value (data/size), by reference, or an
 * actor handle (made with manta_arg_actor). */
typedef struct manta_arg {
    const manta_ref *ref; /* non-NULL: pass this object */
    const void *data;     /* else: copy these bytes (past max_inline_bytes, into the store) */
    size_t size;
    const manta_actor *actor; /* set by manta_arg_actor */
} manta_arg;

MANTA_EXPORT manta_arg manta_arg_bytes(const void *data, size_t size);
MANTA_EXPORT manta_arg manta_arg_ref(const manta_ref *ref);

typedef struct manta_task_opts {
    double num_cpus;          /* default 1 */
    double num_gpus;          /* default 0 */
    const char *resources_json; /* custom resources, e.g. "{\"fpga\": 1}" */
    /* Amounts: negative, NaN, infinite, above 1e9 or below 0.0001 (not 0),
     * or above 1 and not whole, are refused with MANTA_EINVAL naming the
     * resource. */
    int num_returns;          /* default 1 */
    int max_retries;          /* default 3; -1: forever */
    const char *name;         /* shown in status and errors; default: function name */
} manta_task_opts;

MANTA_EXPORT void manta_task_opts_init(manta_task_opts *o);

/* Submit the registered function `fn_name`.  `opts` may be NULL.  `out`
 * receives opts->num_returns new refs (the caller releases each). */
MANTA_EXPORT int manta_submit(const char *fn_name, const manta_arg *args, size_t nargs,
                              const manta_task_opts *opts, manta_ref **out);

/* ------------------------------------------------------------------ actors */

/* An actor is a worker process of its own holding state that its methods
 * use.  A class is a constructor and methods registered under its name
 * (before manta_init(), like task functions); in library mode workers find
 * them with dlsym(): the constructor under the class name, each method as
 * "<class>_<method>".  Calls from one caller run in the order they were
 * made, one at a time (unless max_concurrency > 1). */

/* Build the actor's state from the constructor's arguments.  Return the
 * state, or NULL after writing a reason into err (the actor then dies and
 * every call fails with MANTA_EACTORINIT). */
typedef void *(*manta_ctor_fn)(const manta_arg_view *args, size_t nargs, char *err, size_t errcap);
/* A method: `self` is the state the constructor returned.  Same contract
 * as manta_task_fn. */
typedef int (*manta_method_fn)(void *self, const manta_arg_view *args, size_t nargs,
                               manta_result *res);

MANTA_EXPORT int manta_register_actor(const char *class_name, manta_ctor_fn ctor);
MANTA_EXPORT int manta_register_method(const char *class_name, const char *method,
                                       manta_method_fn fn);

typedef struct manta_actor_opts {
    double num_cpus;            /* <0 (default): needs 1 CPU to be placed, holds none */
    double num_gpus;            /* default 0 */
    const char *resources_json; /* custom resources held for the actor's life */
    /* Amounts as for manta_task_opts (num_cpus: NaN is refused too). */
    const char *name;           /* a named actor (NULL: none) */
    int max_concurrency;        /* calls run at once; default 1 */
    int detached;               /* outlives its creator until killed */
} manta_actor_opts;

MANTA_EXPORT void manta_actor_opts_init(manta_actor_opts *o);

/* Create an actor of `class_name`; *out receives a handle (release it with
 * manta_actor_release; the actor ends when every handle of every process is
 * released and its calls are done, unless detached). */
MANTA_EXPORT int manta_actor_create(const char *class_name, const manta_arg *args, size_t nargs,
                                    const manta_actor_opts *opts, manta_actor **out);
/* Call a method; `out` receives num_returns new refs. */
MANTA_EXPORT int manta_actor_call(const manta_actor *a, const char *method, const manta_arg *args,
                                  size_t nargs, int num_returns, manta_ref **out);
/* Kill the actor now: its calls in flight and later ones fail with
 * MANTA_EACTORDIED.  The detail of a dead actor's error (manta_last_error()
 * after manta_get) is two lines: "actor_id=<32 hex> class_name=<name>", then
 * why it died. */
MANTA_EXPORT int manta_actor_kill(const manta_actor *a);
MANTA_EXPORT void manta_actor_release(manta_actor *a);
/* Pass a handle to a task or actor (the argument refers to `a`, which must
 * stay valid until the submission returns). */
MANTA_EXPORT manta_arg manta_arg_actor(const manta_actor *a);
/* In a task or method: the handle an argument carries (release it). */
MANTA_EXPORT int manta_actor_from_arg(const manta_arg_view *arg, manta_actor **out);

/* ------------------------------------------------------------------ cluster */

/* Total or currently available amount of a resource ("CPU", "GPU", custom)
 * on the cluster; 0 if unknown. */
MANTA_EXPORT double manta_cluster_resource(const char *name);
MANTA_EXPORT double manta_available_resource(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* MANTA_H */

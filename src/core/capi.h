/* capi.h -- what the C API's files share (capi.c: tasks and objects,
 * capi_actor.c: actors).  Not part of the public API. */
#ifndef MT_CAPI_H
#define MT_CAPI_H

#include "router.h"
#include "manta.h"

struct manta_ref {
    mt_obj *o;
};

/* A handle; `wire` is its form as an argument (see capi_actor.c). */
struct manta_actor {
    mt_aid id;
    mt_obj *anchor; /* counted; NULL for detached actors */
    bool detached;
    uint8_t *wire;
    size_t wire_len;
};

struct manta_result {
    mt_exec_task *task;
    int failed;
    char error[1024];
};

/* The runtime of this process (NULL before manta_init). */
mt_core *capi_core(void);
manta_ref *capi_wrap(mt_obj *o);
/* Runtime arguments for C arguments: by value (raw values), by ref, or an
 * actor handle (its anchor travels as a contained ref). */
/* The core's arguments for the user's; a value too large to travel in line
 * is put in the store first.  *out is set even on error: free it with
 * capi_targs_free (which also drops the refs of the values put). */
int capi_targs(const manta_arg *args, size_t nargs, mt_targ **out);
void capi_targs_free(mt_targ *t, const manta_arg *args, size_t nargs);
/* The argument views of a task being run (caller frees). */
manta_arg_view *capi_views(mt_exec_task *t);
/* Finish `t` as failed with `msg` in every return. */
void capi_fail(mt_core *c, mt_exec_task *t, const char *msg);
/* Run an actor constructor or method in this worker. */
void capi_run_actor(mt_core *c, mt_exec_task *t);
/* Look a symbol up in the library of library mode (NULL if none). */
void *capi_dlsym(const char *name);

#endif

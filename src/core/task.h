/* task.h -- one task from its owner's side (task.c), shared by the task
 * submitter and the actor submitter. */
#ifndef MT_TASK_H
#define MT_TASK_H

#include "objects.h"

/* A task of ours, pending: arguments copied (`args`' data; its refs and
 * their contained refs counted in ->submitted), `num_returns` pending
 * objects made (ours; with `returns`, each also handed to the caller as a
 * counted ref), put in the task table.  The caller sets the rest. */
mt_task *do_task_new(mt_core *c, int kind, const mt_targ *args, uint32_t nargs,
                     uint32_t num_returns, mt_obj **returns);
/* Count the task's unready ref arguments into ->ndeps (returned), make it
 * their dependent and ask for them; unwatch undoes it (cancel). */
uint32_t do_task_watch_deps(mt_core *c, mt_task *t);
void do_task_unwatch_deps(mt_task *t);
/* `o` is ready: its dependents (n of them; caller frees the array) each
 * have one dependency fewer to wait for (the caller counts ->ndeps down). */
mt_task **do_task_take_dependents(mt_obj *o, uint32_t *n);
/* A resource set in the wire form: rs[i]/rp[i] for i < n (names shared). */
void mt_task_res_wire(char *const *names, const int64_t *amounts, uint32_t n, Manta__Resource *rs,
                      Manta__Resource **rp);
/* Write the task's PushTask to `conn` (not flushed). */
void do_task_send(mt_core *c, mt_conn *conn, mt_task *t, const int32_t *gpus, size_t ngpu,
                  char *const *res_names, const int64_t *res_amounts, uint32_t nres);
/* The task is over: returns handed over, lineage kept or the task freed. */
void do_task_finish(mt_core *c, mt_task *t);
/* Every return becomes `err` (reference taken over); the task is over. */
void do_task_fail(mt_core *c, mt_task *t, mt_value *err);
/* A ref argument holds an error: fail with it (true) or not (false). */
bool do_task_fail_on_error_arg(mt_core *c, mt_task *t);
/* Names (of tasks, actors, their methods and namespaces) travel in several
 * messages beside the values; one longer than MT_NAME_MAX would make a
 * message the peer refuses (losing the connection), so it is the caller's
 * error: 0 or MANTA_EINVAL saying which name.  NULL is fine. */
#define MT_NAME_MAX (64 * 1024)
int do_check_name(const char *what, const char *name);
mt_value *mt_task_cancelled_error(const mt_task *t);
/* A lineage task's return is gone for good. */
void do_task_lineage_release(mt_core *c, mt_obj *o);
/* Disconnect: free every task (pending or lineage), objects untouched. */
void do_task_free_all(mt_core *c);

#endif

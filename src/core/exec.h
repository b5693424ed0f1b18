/* exec.h -- the worker side (exec.c): tasks pushed to this process, run by
 * the language layer, their replies; the actor this worker runs. */
#ifndef MT_EXEC_H
#define MT_EXEC_H

#include "actor.h"

/* Worker side: a cancel request for a running task (language layers poll
 * it to raise KeyboardInterrupt in the right task). */
bool mt_exec_cancel_requested(const mt_exec_task *t);
/* Queue the tasks of a PushTask decoded with the default allocator; takes
 * ownership of `m`.  `peer`: who pushed them (owner of their returns). */
int do_exec_push(mt_core *c, mt_conn *conn, mt_peer *peer, Manta__PushTask *m);
/* Take the next task to run; blocks up to `timeout` (<0 forever).
 * Returns 0, MANTA_ETIMEDOUT or MANTA_ESHUTDOWN. */
int mt_exec_next(mt_core *c, double timeout, mt_exec_task **out);
/* The next task if one is queued that can start without waiting (its
 * arguments are all in line), else MANTA_ETIMEDOUT; never blocks. */
int mt_exec_try_next(mt_core *c, mt_exec_task **out);
/* For workers that run their own event loop (async actors): an fd that
 * turns readable when tasks are queued, a cancel arrives or the worker must
 * stop; mt_exec_ready() drains it.  Tasks are then taken with a timeout of 0. */
int mt_exec_notify_fd(mt_core *c);
void mt_exec_ready(mt_core *c, bool *stop, uint64_t *cancels);
const Manta__TaskSpec *mt_exec_spec(const mt_exec_task *t);
/* The value of argument i (resolved; counted by the task). */
mt_value *mt_exec_arg(const mt_exec_task *t, size_t i);
/* Room for return `index`; contained refs add credits now. */
uint8_t *mt_exec_return_alloc(mt_core *c, mt_exec_task *t, uint32_t index, uint64_t size,
                              mt_obj *const *contained, size_t ncontained);
/* Send the reply and free the task.  status: MANTA__TASK_STATUS__*. */
void mt_exec_finish(mt_core *c, mt_exec_task *t, int status, const char *error);
void do_exec_free_all(mt_core *c);
void do_exec_hold(mt_core *c, mt_conn *conn);
/* Fail every queued task with `status` (exit_actor: TASK_ACTOR_DEAD). */
void mt_exec_drain(mt_core *c, int status, const char *error);
/* The task raised an exception retry_exceptions allows to retry. */
void mt_exec_set_retryable(mt_exec_task *t, bool retryable);
int do_exec_cancel(mt_core *c, mt_conn *conn, const Manta__CancelTask *m);
void do_exec_flush_held(mt_core *c);
/* This process is the actor and its code called exit_actor(). */
void mt_exec_actor_exit(mt_core *c);

#endif

/* submit.h -- the task submitter (submit.c): scheduling classes, leases,
 * pushes to leased workers, replies, retries, cancel. */
#ifndef MT_SUBMIT_H
#define MT_SUBMIT_H

#include "task.h"

typedef struct mt_task_desc {
    int kind;
    const uint8_t *fn_id;     /* MT_FN_ID_LEN bytes or NULL */
    const char *name;
    int lang;
    const char *runtime;      /* NULL: the process default */
    const mt_targ *args;      /* data copied; refs counted */
    uint32_t nargs;
    uint32_t num_returns;
    const char *const *res_names;
    const int64_t *res_amounts;
    uint32_t nres;
    int max_retries;
    const uint8_t *retry_exc;  /* see mt_task.retry_exc */
    size_t retry_exc_len;
    int strategy;              /* MANTA__SCHED_STRATEGY__*; 0 default */
    const uint8_t *node;       /* NODE_AFFINITY: MT_NODE_ID_LEN bytes */
    bool soft;
} mt_task_desc;

int mt_core_submit(mt_core *c, const mt_task_desc *d, mt_obj **returns);
/* Cancel the task that makes `o` (see manta.cancel): a waiting task never
 * runs, a running one is interrupted (force: its worker is killed); its
 * returns become MANTA_ECANCELLED. */
int mt_core_cancel(mt_core *c, mt_obj *o, bool force, bool recursive);
/* A TaskReply for `t` (NULL: not ours, or no longer pending). */
int do_sub_reply(mt_core *c, mt_conn *conn, mt_task *t, const Manta__TaskReply *r);
/* The task's arguments are ready: queue it in its class. */
void do_sub_task_ready(mt_core *c, mt_task *t);
void do_sub_peer_died(mt_core *c, mt_peer *p);
void do_sub_tick(mt_core *c);
void do_sub_reclaim(mt_core *c);
void do_sub_free_all(mt_core *c);
void do_sub_death_reason(mt_core *c, mt_peer *p, double now);
void do_sub_cancel_children(mt_core *c, const mt_tid *parent);
/* Run the task that made `o` again (it was lost); false if it cannot be. */
bool do_sub_reconstruct(mt_core *c, mt_obj *o);
/* Our connection to another node's daemon closed. */
void do_sub_rdaemon_closed(mt_core *c, mt_conn *conn);
int do_sub_grant(mt_core *c, mt_conn *conn, const Manta__LeaseGrant *g);

uint64_t do_sub_actor_lease(mt_core *c, mt_actor *a, const Manta__LeaseRequest *tmpl);

#endif

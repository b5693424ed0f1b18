/* actor.h -- the actor submitter (actor.c): creating actors, calls in
 * order, restarts, lookups. */
#ifndef MT_ACTOR_H
#define MT_ACTOR_H

#include "submit.h"

/* The anchor object of an actor: owned by its creator, held by every
 * handle; when it is freed the actor goes out of scope. */
mt_oid mt_actor_anchor_id(const mt_aid *a);

typedef struct mt_actor_desc {
    const uint8_t *fn_id;     /* the pickled class (python) */
    const char *class_name;   /* C: the constructor's registered name */
    int lang;
    const char *runtime;
    const mt_targ *args;
    uint32_t nargs;
    const char *const *res_names; /* held for life */
    const int64_t *res_amounts;
    uint32_t nres;
    const char *const *place_names; /* needed to place it */
    const int64_t *place_amounts;
    uint32_t nplace;
    const char *name, *ns;    /* named actors */
    bool detached;
    uint32_t max_concurrency;
    bool is_async;
    int max_restarts, max_task_retries;
    const uint8_t *handle;    /* language data for get_actor() */
    size_t handle_len;
    int strategy;             /* MANTA__SCHED_STRATEGY__* */
    const uint8_t *node;      /* NODE_AFFINITY: MT_NODE_ID_LEN bytes */
    bool soft;
} mt_actor_desc;

/* Create an actor: 0 with *id set and *anchor a counted ref of its anchor
 * (NULL for detached actors); MANTA_EEXIST when the name is taken, with
 * the existing actor's packed ActorInfo in *existing (caller frees). */
int mt_core_actor_create(mt_core *c, const mt_actor_desc *d, mt_aid *id, mt_obj **anchor,
                         uint8_t **existing, size_t *existing_len);
/* Call a method.  `anchor`: the handle's anchor ref (held while it runs). */
int mt_core_actor_call(mt_core *c, const mt_aid *id, const char *method, const mt_targ *args,
                       uint32_t nargs, uint32_t num_returns, mt_obj *anchor, mt_obj **returns);
int mt_core_actor_kill(mt_core *c, const mt_aid *id, bool no_restart);
/* Look an actor up by name (packed ActorInfo in *info, caller frees) or by
 * id; returns 0, MANTA_ENOENT. */
int mt_core_actor_lookup(mt_core *c, const char *name, const char *ns, const mt_aid *id,
                         uint8_t **info, size_t *len);
void do_actor_pump(mt_core *c, mt_actor *a);
int do_actor_reply(mt_core *c, mt_conn *conn, mt_task *t, const Manta__TaskReply *r);
int do_actor_granted(mt_core *c, mt_actor *a, const Manta__LeaseGrant *g);
void do_actor_peer_died(mt_core *c, mt_peer *p);
/* The actor's worker was granted by `daemon` (NULL: our node). */
void do_actor_set_daemon(mt_core *c, mt_actor *a, mt_conn *daemon);
void do_actor_daemon_closed(mt_core *c, mt_conn *conn);
void do_actor_lookup_reply(mt_core *c, const Manta__ActorLookupReply *r);
void do_actor_gcs_lost(mt_core *c);
void do_actor_out_of_scope(mt_core *c, const mt_oid *anchor);
void do_actor_free_all(mt_core *c);
void do_actor_tick(mt_core *c);

#endif

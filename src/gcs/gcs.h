/* gcs.h -- the control store of the head node: job ids, the function table,
 * the namespaced key-value table and the actor table.  It knows nothing of
 * the daemon around it: what it needs from the node (sending a reply,
 * killing a worker, whether a process is connected, the time) comes through
 * mt_gcs_env, so it is built and unit-tested on its own.
 *
 * Single-threaded: every call runs on the node's loop. */
#ifndef MT_GCS_H
#define MT_GCS_H

#include <stdbool.h>
#include <stdint.h>

#include "ids.h"
#include "manta.pb-c.h"

typedef struct mt_gcs mt_gcs;

/* What the control store asks of the node.  A `client` is the node's handle
 * for a connection: the store only keeps it (for replies it owes), compares
 * it and passes it back; it is valid until mt_gcs_client_gone(). */
typedef struct mt_gcs_env {
    void *ud; /* passed to every callback */
    /* Send `msg` (of wire type `type`) to `client` now. */
    void (*send)(void *ud, void *client, uint16_t type, const ProtobufCMessage *msg);
    /* Kill worker `wid`: on this node if it is one of ours, else on node
     * `nid` (may name no known node: then nothing happens).  `reason` is a
     * MANTA__DEATH_REASON__*; the death comes back as
     * mt_gcs_actor_worker_died() once the process is gone. */
    void (*kill_worker)(void *ud, const mt_nid *nid, const mt_wid *wid, int reason);
    /* Whether process `wid` (an actor's owner) is connected to the node. */
    bool (*connected)(void *ud, const mt_wid *wid);
    /* Monotonic seconds (mt_now_s in the daemon). */
    double (*now)(void *ud);
} mt_gcs_env;

/* A new, empty store; `env` is copied.  Free with mt_gcs_destroy. */
mt_gcs *mt_gcs_new(const mt_gcs_env *env);
/* Frees the tables and drops the replies still owed (NULL: nothing). */
void mt_gcs_destroy(mt_gcs *g);

/* The next job id (1, 2, ...). */
uint32_t mt_gcs_new_job(mt_gcs *g);

/* Handle control-store message `m` of `type` from `client`: 0 (replies, if
 * any, went through env->send) or a negative MANTA_E* with the error set
 * (the node closes the connection); MANTA_EPROTO for a `type` that is not
 * a control-store message (the node sends it only those). */
int mt_gcs_handle(mt_gcs *g, void *client, uint16_t type, const ProtobufCMessage *m);
/* `client` closed: forget the replies owed to it.  `wid` is its process's
 * id when it has one (driver, worker, remote client; NULL otherwise): the
 * actors it owns die with it, except detached ones that reached a worker. */
void mt_gcs_client_gone(mt_gcs *g, void *client, const mt_wid *wid);
/* Answer the reads whose wait for a write ran out (call every tick). */
void mt_gcs_tick(mt_gcs *g);
/* Worker `wid` (of any node) exited with `code`: the actor it held
 * restarts (its owner runs the restart) or dies, and later reports from
 * that worker are ignored. */
void mt_gcs_actor_worker_died(mt_gcs *g, const mt_wid *wid, int code);
/* A node died: its actors restart elsewhere or die; actors its processes
 * owned die. */
void mt_gcs_node_died(mt_gcs *g, const mt_nid *nid);

#endif

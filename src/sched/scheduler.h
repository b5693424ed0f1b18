/* scheduler.h -- the node's local scheduler: a FIFO of lease requests, granted
 * when the demand fits the node's available resources and a worker of the
 * right runtime is idle, forwarded (spilled) to another node by the cluster
 * view, or kept waiting.  It knows nothing of the daemon around it: workers,
 * clients and other nodes reach it as the small structs below, and what it
 * asks of the node (an idle worker, a new worker, sending a grant, a spill
 * or a warning) goes through mt_sched_env, so it is built and unit-tested
 * on its own.
 *
 * Single-threaded: every call runs on the node's loop.  No callback calls
 * back into the scheduler. */
#ifndef MT_SCHEDULER_H
#define MT_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "manta.pb-c.h"
#include "resources.h"

typedef struct mt_sched mt_sched;

/* A client of the node as the scheduler sees it (a driver, a worker that
 * submits, a lessee of another node).  The node embeds one in each client
 * and gets its own struct back from the pointer; the scheduler keeps it for
 * the requests and leases of that client until mt_sched_client_gone(). */
typedef struct mt_sched_client {
    bool reclaim_asked; /* sent a reclaim since its last return (or tick) */
} mt_sched_client;

/* A worker's lease.  The node embeds one, zeroed, in each of its workers
 * and hands it to the scheduler through env->take_idle; the scheduler sets
 * it when it grants the worker and clears it when the lease ends.  The node
 * reads the fields, never writes them. */
typedef struct mt_sched_lease {
    bool leased;
    bool blocked;          /* lent its CPU back while waiting in get() */
    bool for_actor;
    bool detached;         /* a detached actor: outlives its creator */
    mt_sched_client *lessee; /* NULL once a detached actor's creator is gone */
    mt_res_set held;       /* resources held by the lease */
    int32_t gpu_ids[16];
    size_t ngpu;
    int64_t gpu_amount;
    struct mt_sched_lease *next, *prev; /* the scheduler's list of leases */
} mt_sched_lease;

/* Another node, by this node's cluster view. */
typedef struct mt_sched_peer {
    mt_nid nid;
    const char *endpoint;  /* its daemon; "" not known yet (not a target) */
    bool alive;
    const mt_res_set *total;
    mt_res_set *avail;     /* the scheduler counts what it spills to the node
                            * against this, until the node's next report */
} mt_sched_peer;

/* What the scheduler asks of the node; `ud` is passed to every callback. */
typedef struct mt_sched_env {
    void *ud;
    mt_nid self;           /* this node's id */
    bool python;           /* Python workers can start here */
    /* An idle, registered worker of `runtime` usable by `c`'s job (bound to
     * it, or to no job yet), or NULL.  The worker stays idle until granted. */
    mt_sched_lease *(*take_idle)(void *ud, const char *runtime, mt_sched_client *c);
    /* Start a worker of `runtime` in `lang` (MANTA__LANGUAGE__*); whether
     * one is starting. */
    bool (*start_worker)(void *ud, const char *runtime, int lang);
    /* Workers starting now: of `runtime`, or of any runtime if NULL. */
    int (*starting)(void *ud, const char *runtime);
    /* Live workers not held by actors (the cap counts these). */
    int (*task_workers)(void *ud);
    /* `l` (filled: held resources, GPU ids, for_actor) was just leased to
     * `c` for request `request_id` (`name`: what it is for): mark the worker
     * leased and send the grant. */
    void (*granted)(void *ud, mt_sched_lease *l, mt_sched_client *c, uint64_t request_id,
                    const char *name);
    /* `l`'s lease ended (already cleared): the worker is idle again, or is
     * to be killed if `kill`. */
    void (*released)(void *ud, mt_sched_lease *l, bool kill);
    /* Answer `c`'s request `request_id` without a worker: `status` is a
     * MANTA_E* code, `why` says why. */
    void (*refuse)(void *ud, mt_sched_client *c, uint64_t request_id, int status,
                   const char *why);
    /* Tell `c` to ask node `to` for request `request_id` instead. */
    void (*spill)(void *ud, mt_sched_client *c, uint64_t request_id, const mt_sched_peer *to);
    /* Show `msg` to `c`'s user. */
    void (*warn)(void *ud, mt_sched_client *c, const char *msg);
    /* Ask `c` to return the idle task leases it holds now. */
    void (*reclaim)(void *ud, mt_sched_client *c);
    /* How many other nodes the cluster view holds (0: a node alone, whose
     * requests are never routed elsewhere).  Called once per request and
     * pass: keep it cheap. */
    size_t (*npeers)(void *ud);
    /* The cluster view: every other node this node knows of (in a stable
     * order), as a new array of *count peers (free() it; NULL when none).
     * The peers' pointers stay valid until the scheduler returns. */
    mt_sched_peer *(*peers)(void *ud, size_t *count);
    /* One node of the view; false if it is not in it. */
    bool (*peer)(void *ud, const mt_nid *nid, mt_sched_peer *out);
} mt_sched_env;

/* A scheduler for a node whose resources are `total` (copied; all of it
 * available, GPUs numbered 0..GPU-1).  `env` is copied.  Free with
 * mt_sched_destroy. */
mt_sched *mt_sched_new(const mt_sched_env *env, const mt_res_set *total);
/* Frees the queue (requests are dropped unanswered); leases are forgotten,
 * not released.  NULL: nothing. */
void mt_sched_destroy(mt_sched *s);

/* The node's totals, and what is free now (both owned by the scheduler). */
const mt_res_set *mt_sched_total(const mt_sched *s);
const mt_res_set *mt_sched_avail(const mt_sched *s);
/* Requests queued. */
uint32_t mt_sched_pending(const mt_sched *s);

/* Queue `c`'s request `m` and dispatch; 0.  A request the node cannot take
 * (an amount out of range, an unknown strategy, language or runtime) is
 * refused through env->refuse and returns MANTA_EINVAL, the error (why)
 * set; `c`'s other work goes on. */
int mt_sched_request(mt_sched *s, mt_sched_client *c, const Manta__LeaseRequest *m);
/* Cancel `c`'s queued request: answered MANTA_ECANCELLED.  Nothing if it
 * is not queued (granted or spilled already). */
void mt_sched_cancel(mt_sched *s, mt_sched_client *c, uint64_t request_id);
/* `c` returns lease `l` (kill the worker if `failed`), then dispatch.
 * MANTA_ENOENT (nothing done) if `l` is NULL or not leased to `c`. */
int mt_sched_return(mt_sched *s, mt_sched_client *c, mt_sched_lease *l, bool failed);
/* The worker of lease `l` blocks in get()/wait() (or resumes): its CPU is
 * lent back meanwhile.  Nothing if it is not leased. */
void mt_sched_blocked(mt_sched *s, mt_sched_lease *l, bool blocked);
/* `c` is gone: its requests are dropped, its leases end and their workers
 * are killed -- but a detached actor keeps its lease, without a lessee. */
void mt_sched_client_gone(mt_sched *s, mt_sched_client *c);
/* The worker of `l` is gone: its lease (if any) ends, without a callback. */
void mt_sched_worker_gone(mt_sched *s, mt_sched_lease *l);
/* Grant, spill or start workers for what waits (after anything that may
 * have made room: a worker registered or died, a node's report). */
void mt_sched_dispatch(mt_sched *s);
/* Once per tick: clients asked to return idle leases may be asked again,
 * and waiting requests are dispatched. */
void mt_sched_tick(mt_sched *s);
/* The node is stopping: nothing is granted from now on. */
void mt_sched_stop(mt_sched *s);

#endif

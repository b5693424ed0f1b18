/* core.h -- the types of the client runtime linked into every driver and
 * worker (the paper's "core worker"): the runtime, its tables' entries and
 * the hooks between its layers.  Private to manta: the C API (capi.c) and
 * the Python extension (src/python) are its only users, through router.h.
 *
 * The runtime is a stack of files, each calling only the ones below it:
 * loop.c (the floor), plasma.c, objects.c, task.c, submit.c, actor.c,
 * exec.c, router.c (the top); each declares its calls in its own header,
 * which includes the header below it.  Names say where they live:
 * do_<file>_* / mt_<file>_* (loop, plasma, obj, task, sub, actor, exec);
 * mt_core_* are the runtime's entry points for the C API and the
 * extension, declared in the header of the file that defines them.
 *
 * Threads: the caller's threads plus one I/O thread running a libuv loop.
 * `mu` guards every field below unless noted; the I/O thread holds it while
 * it handles a socket event, other threads while they call in.  Functions
 * named mt_core_* take the lock themselves; functions named do_* (and the
 * file-private helpers) expect it held. */
#ifndef MT_CORE_H
#define MT_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "conn.h"
#include "gate.h"
#include "ids.h"
#include "map.h"
#include "value.h"
#include "wire.h"

typedef struct mt_core mt_core;
typedef struct mt_obj mt_obj;
typedef struct mt_task mt_task;
typedef struct mt_class mt_class;
typedef struct mt_lease mt_lease;
typedef struct mt_exec_task mt_exec_task;

/* ---------------------------------------------------------------- peers */

/* Another client process we talk to directly (an owner, a leased worker). */
typedef struct mt_peer {
    mt_wid wid; /* key */
    mt_nid nid;
    char *endpoint;     /* on its node: unix socket */
    char *tcp_endpoint; /* from other nodes ("" or NULL single-node) */
    mt_conn *conn;  /* our outgoing connection, NULL until needed */
    bool dead;      /* its node said it died, or we failed to reach it */
    int exit_code;
    int death_reason; /* MANTA__DEATH_REASON__*, once the node told us */
} mt_peer;

/* ---------------------------------------------------------------- objects */

enum { MT_OBJ_PENDING = 0, MT_OBJ_READY = 1 };

typedef struct mt_refinfo {
    mt_oid id;
    mt_peer *owner; /* NULL: this process */
} mt_refinfo;

/* A thread waiting in get()/wait() for some objects: each object it waits
 * for links to it, and readiness counts it down, so a wait over n objects
 * costs O(n) in all rather than O(n) per wake-up. */
typedef struct mt_getter {
    uint32_t remaining;
    bool watch;      /* an mt_watch (futures): fire when remaining hits 0 */
} mt_getter;

typedef struct mt_glink {
    mt_getter *g;
    struct mt_glink *next;
} mt_glink;

typedef struct mt_obj_waiter {
    mt_conn *conn;       /* who asked (ObjWait) */
    uint64_t request_id;
    struct mt_obj_waiter *next;
} mt_obj_waiter;

struct mt_obj {
    mt_oid id;           /* key */
    mt_peer *owner;      /* NULL: we own it */
    uint32_t local;      /* language handles in this process */
    uint32_t submitted;  /* our pending tasks that take it as an argument */
    int32_t credits;     /* owner: serialized copies alive elsewhere */
    uint32_t nborrowers;
    mt_wid *borrowers;   /* owner: processes that hold it */
    uint8_t state;
    bool in_plasma;      /* the value sits in a node's store ... */
    mt_nid loc;          /* ... this one (zero: ours) */
    uint64_t size;       /* in_plasma: its size */
    mt_task *lineage;    /* owner: the finished task that made it, kept to make it again */
    bool producing;      /* owner: a task of ours will produce it */
    bool wait_sent;      /* borrower: ObjWait on its way to the owner */
    bool borrow_state;   /* borrower: registered with the owner (or on its way) */
    bool borrow_queued;  /* borrower: registration not sent yet (mt_core_borrow_sync) */
    bool anchor;         /* owner: stands for an actor's handles (actor.c) */
    bool actor_ret;      /* owner: returned by an actor call */
    bool copying;        /* owner: being copied into the store (do_obj_args_fit) */
    mt_value *value;     /* inline value, or a pinned view of the store */
    uint32_t ncontained; /* owner: refs inside the value (credits we hold) */
    mt_refinfo *contained;
    mt_task **dependents;/* tasks waiting for it as an argument */
    uint32_t ndependents;
    mt_obj_waiter *waiters;
    mt_glink *getters;
};

/* ---------------------------------------------------------------- tasks */

enum { MT_ARG_VALUE = 0, MT_ARG_REF = 1 };

typedef struct mt_targ {
    uint8_t kind;
    uint8_t *data;       /* VALUE: serialized bytes (owned) */
    size_t size;
    mt_obj *ref;         /* REF: the object; we count it in ref->submitted */
    mt_obj **contained;  /* VALUE: refs nested in it, counted in ->submitted */
    uint32_t ncontained;
    char *keyword;
} mt_targ;

enum { MT_TASK_WAITING = 0, MT_TASK_QUEUED, MT_TASK_RUNNING, MT_TASK_DONE };

struct mt_task {
    mt_tid id;           /* key */
    int kind;            /* MANTA__TASK_KIND__* */
    uint8_t fn_id[MT_FN_ID_LEN];
    char *name;
    mt_targ *args;
    uint32_t nargs;
    uint32_t num_returns;
    mt_obj **returns;
    mt_class *cls;
    int retries_left;    /* -1: forever */
    uint32_t attempt;
    int state;
    uint32_t ndeps;
    mt_lease *lease;
    mt_task *qnext;      /* class queue / lease in-flight list */
    mt_task *lprev, *lnext;
    bool cancelled;      /* cancel() was called: never retry, fail as cancelled */
    uint32_t lineage_refs; /* DONE, kept: returns that may need it to be rebuilt */
    mt_tid parent;       /* the task that submitted it (recursive cancel) */
    uint8_t *retry_exc;  /* python retry_exceptions ("" none, "*" any, pickled types) */
    size_t retry_exc_len;
    /* actor tasks */
    struct mt_actor *actor;
    mt_aid actor_id;
    char *method;
    uint64_t seq;
    mt_obj *anchor;      /* the actor's anchor object, held while the call runs */
    uint32_t max_concurrency;
    bool is_async;
};

/* An actor as one process sees it (actor.c).  Calls wait in `q` until
 * their arguments are ready and the actor's worker is known, and leave in
 * submission order. */
enum { MT_ACTOR_PENDING = 0, MT_ACTOR_ALIVE = 1, MT_ACTOR_DEAD = 2 };

typedef struct mt_actor {
    mt_aid id;           /* key */
    int state;
    mt_peer *worker;
    bool owned;          /* we created it */
    bool detached;
    bool lookup_sent;
    bool lost_check;     /* owner: its worker is gone; asking the control store why */
    bool lost_signal;    /* owner: that worker died from a signal */
    bool exiting;        /* this process is the actor and exit_actor() was called */
    uint64_t next_seq;
    mt_task *qhead, *qtail;
    mt_task *inflight;   /* sent, linked by lprev/lnext */
    uint32_t concurrency; /* calls it runs at once (1: sequential) */
    uint32_t ninflight;  /* calls in `inflight` */
    mt_value *death;     /* what calls get once it is dead */
    mt_task *create;     /* owner: the constructor task until it replied */
    int32_t *gpu_ids;
    size_t ngpu;
    char **res_names;    /* held resources, reported to the worker */
    int64_t *res_amounts;
    uint32_t nres;
    char *class_name;
    /* restarts (owner) */
    int max_restarts;    /* -1: forever */
    int max_task_retries;
    uint32_t num_restarts;
    mt_task *ctor;       /* the constructor task, kept to run again */
    uint8_t *lease_tmpl; /* packed LeaseRequest to ask again */
    size_t lease_len;
    double relookup_at;  /* non-owner: look up again (a stale address) */
    mt_conn *daemon;     /* owner: the node that leased its worker, if not ours (held) */
} mt_actor;

/* A scheduling class: tasks that need the same kind of worker. */
struct mt_class {
    uint8_t key[16];
    char **res_names;
    int64_t *res_amounts;
    uint32_t nres;
    int lang;
    char *runtime;
    int strategy;       /* MANTA__SCHED_STRATEGY__* */
    mt_nid node;        /* NODE_AFFINITY: the node */
    bool soft;
    mt_nid preferred;   /* locality: where the arguments' bytes are (zero: none) */
    mt_task *qhead, *qtail;
    size_t qlen;
    mt_lease *leases;
    uint32_t nleases;
    uint32_t pending_requests;
    double avg_exec_us; /* <0: unknown */
};

struct mt_lease {
    mt_peer *worker;
    mt_conn *daemon;    /* the node that granted it, if not ours (held) */
    pid_t pid;
    mt_class *cls;
    uint32_t in_flight;
    mt_task *tasks;     /* in flight, linked by lprev/lnext */
    double idle_since;
    double progress_at; /* when it last replied, or took a task while idle */
    bool handing_back;  /* stalled: asked to hand back the tasks it has not started */
    bool dead;
    int32_t *gpu_ids;
    size_t ngpu;
    mt_lease *next;
};

/* Another node's daemon, for leases it granted after a spill (submit.c). */
typedef struct mt_rdaemon {
    mt_nid nid; /* key */
    mt_conn *conn;
} mt_rdaemon;

/* ---------------------------------------------------------------- rpc */

typedef struct mt_rpc {
    uint64_t id;        /* key */
    mt_peer *peer;      /* set when the answer comes from a peer */
    bool done;
    int status;
    uint16_t type;
    uint8_t *payload;
    size_t len;
} mt_rpc;

/* Borrower registrations sent together to one owner (objects.c). */
typedef struct mt_borrow_batch {
    mt_rpc *rpc;        /* NULL: the owner could not be reached */
    mt_oid *ids;
    size_t n;
    struct mt_borrow_batch *next;
} mt_borrow_batch;

/* ---------------------------------------------------------------- hooks */

/* What the lower layers raise for the layers above them.  Calls in src/core
 * run downward only (loop.c, plasma.c, objects.c, task.c, the submitters
 * submit.c and actor.c, exec.c, router.c); news goes up through these,
 * which the router (router.c) sets at connect.  All run with `mu` held. */
typedef struct mt_hooks {
    /* loop.c: a frame from a peer (after its Hello) / from a node */
    int (*peer_frame)(mt_core *c, mt_conn *conn, const mt_frame *f);
    int (*node_frame)(mt_core *c, mt_conn *conn, const mt_frame *f);
    /* a process we talk to is gone (also raised by objects.c for a dead node) */
    void (*peer_died)(mt_core *c, mt_peer *p);
    void (*gcs_lost)(mt_core *c);
    int (*map_store)(mt_core *c, int shm_fd, uint64_t size); /* at connect; takes shm_fd */
    void (*flush)(mt_core *c); /* each loop wake-up and tick: send what other threads queued */
    void (*tick)(mt_core *c);
    void (*flush_held)(mt_core *c);  /* before sleeping: send replies held back */
    void (*free_tables)(mt_core *c); /* disconnect: free every module's tables, unmap the store */
    /* objects.c */
    void (*obj_ready)(mt_core *c, mt_obj *o);
    bool (*obj_rebuild)(mt_core *c, mt_obj *o); /* run its task again (lineage) */
    void (*lineage_release)(mt_core *c, mt_obj *o);
    void (*anchor_freed)(mt_core *c, const mt_oid *anchor); /* an actor left scope */
    /* submit.c */
    int (*actor_granted)(mt_core *c, mt_actor *a, const Manta__LeaseGrant *g, mt_conn *granted_by);
    void (*rdaemon_closed)(mt_core *c, mt_conn *conn);
} mt_hooks;

/* ---------------------------------------------------------------- runtime */

typedef struct mt_core_opts {
    int role;                 /* MANTA__ROLE__ROLE_DRIVER / _WORKER */
    int lang;                 /* MANTA__LANGUAGE__LANG_* */
    const char *node_socket;  /* the node daemon's unix socket */
    const char *worker_id;    /* workers: hex id from the daemon; NULL: random */
    bool owns_cluster;        /* stop the node when this driver leaves */
    const char *runtime;      /* default runtime for C tasks */
    pid_t daemon_pid;         /* the node we started, if any (to wait for) */
    const char *address;      /* the node as the user named it ("host:port"), for
                               * messages; NULL: its socket */
} mt_core_opts;

struct mt_core {
    const mt_hooks *hooks;    /* set at connect (router.c) */
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* any state change a waiter may care about */
    uint64_t gen;             /* bumped with every cv broadcast (spinners watch it) */
    /* identity (immutable after connect) */
    int role, lang;
    mt_wid wid;
    mt_nid nid;
    uint32_t job_id;
    pid_t pid;
    char *endpoint;
    char *tcp_endpoint;       /* "tcp:host:port" when our node's daemon has TCP (a cluster), else NULL */
    char token[65];           /* the cluster token (from our node) */
    char *listen_path;
    char *session_dir;
    char *node_address;       /* the node as errors name it (mt_core_opts.address) */
    char *runtime;
    uint8_t task_prefix[8];
    uint64_t task_counter;
    pid_t daemon_pid;
    /* I/O */
    uv_loop_t loop;
    mt_conn_loop cl;
    pthread_t io_thread;
    bool io_running;
    bool loop_open;           /* the loop was initialized: stop_io closes it */
    int listen_fd, tcp_fd;    /* tcp_fd: bound at connect, listening once tcp_listening */
    bool tcp_listening;       /* only while the cluster spans nodes: one node needs no TCP */
    mt_gate listen_gate, tcp_gate;
    uv_timer_t tick;
    uv_timer_t deadline_timer;
    pthread_cond_t bg_cv;     /* the background thread waits here while a user thread leads */
    bool loop_busy;           /* some thread is inside uv_run */
    bool loop_bg;             /* ... and it is the background thread */
    bool stop_sent;           /* asked the background thread to leave the loop */
    int want_loop;            /* user threads waiting to lead */
    bool bg_parked;           /* the background thread waits for the loop to be free */
    double last_active;       /* when a user thread last called in or left the loop */
    uint32_t since_poll;      /* submissions since the submitting thread polled */
    mt_conn *daemon;
    mt_conn *gcs;             /* the control store: `daemon` on the head, else a TCP connection */
    mt_conn **to_start;       /* created off the loop thread, started by it */
    mt_conn **to_flush;       /* frames queued to go at the loop's next turn */
    size_t nto_flush, cap_to_flush;
    size_t nto_start;
    mt_conn **incoming;       /* accepted connections (each holds a reference) */
    size_t nincoming, cap_incoming;
    mt_arena arena;           /* decode arena of the I/O thread */
    bool stopping, stopped, daemon_lost, node_stop_requested;
    /* tables */
    mt_map peers;             /* wid -> mt_peer */
    mt_map objs;              /* oid -> mt_obj */
    mt_map tasks;             /* tid -> mt_task (submitted, not finished) */
    mt_map classes;           /* key -> mt_class */
    mt_map lease_reqs;        /* request id -> mt_lease_req */
    mt_map actors;            /* aid -> mt_actor */
    mt_map actor_lookups;     /* request id -> pending lookup (actor.c) */
    mt_map rpcs;              /* request id -> mt_rpc */
    mt_map rdaemons;          /* nid -> mt_rdaemon: other nodes' daemons we lease from */
    mt_map lineage;           /* tid -> finished mt_task kept to rebuild its returns */
    mt_obj **bq;              /* borrowed refs read but not yet registered with their owners */
    size_t bq_n, bq_cap;
    struct mt_borrow_batch *batches; /* registrations sent, acks not yet seen */
    mt_nid *dead_nodes;       /* nodes the cluster declared dead */
    size_t ndead_nodes;
    uint64_t next_req;
    /* store mapping */
    uint8_t *shm;
    uint64_t shm_size;
    /* worker side */
    mt_exec_task *xq_head, *xq_tail;
    size_t xq_len;
    pthread_cond_t xcv;
    bool xq_waiter;           /* a thread waits for tasks (and leads the loop) */
    int xq_idle;              /* other threads waiting for tasks, on xcv */
    int task_efd;             /* eventfd an event loop watches for tasks, or -1 */
    bool task_efd_armed;      /* written and not yet drained */
    uint64_t async_cancels;   /* cancel() of running async actor calls so far */
    bool blocked_sent;
    mt_exec_task *running;    /* tasks being run, by any thread */
    mt_conn **held;           /* connections with replies held back */
    size_t nheld;
    mt_aid my_actor;          /* the actor this worker runs, if any */
    struct mt_dying *dying;   /* tasks out of retries, waiting to learn why their worker died */
    uint64_t *ready_tokens;   /* futures: watched objects that became ready */
    size_t nready, ready_cap;
    bool actor_exiting;       /* exit_actor() was called */
    /* statistics */
    uint64_t tasks_submitted, tasks_done;
};

#endif

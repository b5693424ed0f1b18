/* node.h -- the node daemon's shared state: clients, workers, jobs, and the
 * hooks between its modules (scheduler, pool, store, control store). */
#ifndef MT_NODE_H
#define MT_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "conn.h"
#include "gate.h"
#include "gcs/gcs.h"
#include "ids.h"
#include "map.h"
#include "resources.h"
#include "scheduler.h"
#include "store.h"

typedef struct mt_node mt_node;
typedef struct mt_worker mt_worker;
typedef struct mt_sched mt_sched;
typedef struct mt_gcs mt_gcs;

/* A connected process: driver, worker, CLI or another node. */
typedef struct mt_client {
    uint32_t cid;          /* node-local id, used for store pins */
    mt_conn *conn;
    mt_node *node;
    int role;              /* MANTA__ROLE__* ; 0 until Hello */
    mt_wid wid;
    pid_t pid;
    uint32_t job_id;
    char *endpoint;        /* where it accepts direct connections */
    mt_worker *worker;     /* role worker: its pool entry */
    bool owns_cluster;
    bool authed;
    mt_nid nid;            /* clients of other nodes (TCP roles): their node */
    mt_sched_client sc;    /* what the scheduler keeps of it (lease.c) */
    struct mt_client *next, *prev;
} mt_client;

enum { MT_W_STARTING, MT_W_IDLE, MT_W_LEASED, MT_W_DEAD };

struct mt_worker {
    mt_wid wid;            /* key */
    pid_t pid;
    int64_t start;         /* its start time (priv.h), read once; 0 until then */
    uv_process_t proc;
    uv_pipe_t out, err;
    char *outbuf[2];
    size_t outlen[2];
    int open_handles;      /* proc + pipes not yet closed */
    char *runtime;         /* "" python; "exe:/path"; "lib:/path" */
    int lang;
    int state;
    uint32_t job_id;       /* 0 until first leased */
    mt_client *client;     /* once registered */
    mt_sched_lease lease;  /* set by the scheduler while leased (lessee: c->sc) */
    double leased_at;      /* when the current lease began (memory monitor: newest first) */
    double started_at, idle_since, died_at;
    int exit_code;         /* >=0 exit status, <0 -signal */
    int death_reason;      /* MANTA__DEATH_REASON__*, set before the node kills it */
    bool forked;           /* forked by the zygote: no uv_process, exit reported by it */
    int kill_sig;          /* forked, pid not known yet: signal to send once it is */
    struct mt_worker *next, *prev;
};

/* A node of the cluster as this node knows it (cluster.c): on the head,
 * from its registration and heartbeats; elsewhere, from the head's view. */
typedef struct mt_rnode {
    mt_nid nid;            /* key */
    char *endpoint;        /* its daemon, "tcp:host:port" */
    char *session_dir;
    bool alive, is_head;
    bool seen;             /* in the latest view */
    mt_res_set total, avail;
    uint64_t store_used, store_capacity;
    uint32_t num_objects, num_workers, num_drivers, pending;
    double last_report;    /* head: when it last reported */
    mt_client *client;     /* head: the node's own connection */
    mt_conn *link;         /* our connection to it for object pulls (transfer.c) */
} mt_rnode;

/* The fork server of Python workers (pool.c): a Python process that has
 * imported manta and forks a worker per request, so a worker starts in a
 * few milliseconds instead of a full interpreter start. */
typedef struct mt_zygote {
    uv_process_t proc;
    uv_poll_t poll;
    int fd;                /* our end of the control socket (seqpacket) */
    bool running;          /* proc is alive (exit not yet seen) */
    bool open;             /* proc handle not yet closed */
    bool poll_open;
    pid_t pid;
    int64_t start;         /* its start time (priv.h), read once; 0 until then */
    int quick_deaths;      /* died soon after starting: stop using it after 3 */
    double started_at;
} mt_zygote;

struct mt_node {
    uv_loop_t *loop;
    mt_conn_loop cl;
    mt_nid node_id;
    bool is_head;
    bool embedded;         /* stop when the owning driver leaves */
    bool stopping;
    char *session_dir;
    char *sock_path;
    char *python;          /* interpreter for python workers */
    bool python_no_site;   /* run them with -S: PYTHONPATH already holds sys.path */
    char *bin_dir;         /* where mantad and manta-worker live */
    char token[65];
    int listen_fd, tcp_fd, tcp_port;
    char *tcp_host;
    mt_gate listen_gate, tcp_gate;
    uv_signal_t sigterm, sigint;
    uv_timer_t tick;
    mt_store *store;
    mt_sched *sched;
    mt_gcs *gcs;
    mt_client *clients;    /* all connected clients */
    uint32_t next_cid;
    mt_map workers;        /* wid -> mt_worker */
    mt_worker *worker_list;
    mt_worker *dead_list;  /* exited, handles still closing */
    mt_zygote zyg;
    /* cluster (cluster.c) */
    char *join;            /* non-head: the head's "host:port" */
    bool multi_node;       /* the cluster spans nodes: clients listen on TCP (never reset) */
    mt_conn *head;         /* non-head: our connection to the head */
    mt_map rnodes;         /* nid -> mt_rnode; every other node (the head) / all (elsewhere) */
    bool view_dirty;       /* head: broadcast the view at the next tick */
    double last_report;
    uint64_t gcs_messages; /* head: control-store messages handled */
    int num_starting_python;
    uint32_t next_job;
    int log_fd;
    int exit_code;
    pid_t parent_pid;      /* embedded: stop if the parent goes */
};

/* node.c */
mt_client *mt_node_driver_of_job(mt_node *n, uint32_t job_id);
void mt_node_broadcast(mt_node *n, uint16_t type, const ProtobufCMessage *msg);
void mt_node_warn_client(mt_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mt_node_stop(mt_node *n, int code);
/* The head's control store, reaching this node through its mt_gcs_env. */
mt_gcs *mt_node_gcs_new(mt_node *n);
int mt_node_run(mt_node *n);
/* Serve a connected, non-blocking socket as a client (what accepting one
 * does; the fuzz target hands in one end of a socketpair).  The node owns
 * fd from here on.  mt_node_run calls mt_node_conns_init/free around its
 * loop; code that drives a node without it calls them itself. */
void mt_node_add_client(mt_node *n, int fd);
void mt_node_conns_init(mt_node *n);
void mt_node_conns_free(mt_node *n);
/* Whether a client that said Hello as `role` (MANTA__ROLE__*) may send
 * message `type`: the daemon's dispatch table, which closes the connection
 * of a client that sends anything else. */
bool mt_node_may_send(int role, uint16_t type);

/* pool.c */
void mt_pool_init(mt_node *n);
mt_worker *mt_pool_start(mt_node *n, const char *runtime, int lang);
/* An idle worker of `runtime` usable by `job` (bound to it or unbound). */
mt_worker *mt_pool_take_idle(mt_node *n, const char *runtime, uint32_t job);
int mt_pool_count(mt_node *n, const char *runtime, int state);
int mt_pool_total(mt_node *n);
/* Workers not held by actors (the pool's cap counts these). */
int mt_pool_task_workers(mt_node *n);
void mt_pool_kill(mt_node *n, mt_worker *w, int sig);
void mt_pool_kill_job(mt_node *n, uint32_t job);
void mt_pool_kill_all(mt_node *n);
void mt_pool_worker_registered(mt_node *n, mt_worker *w, mt_client *c);
void mt_pool_tick(mt_node *n);
void mt_pool_prestart(mt_node *n);
/* Memory pressure: kill the newest task worker if memory use is above the
 * threshold (Ray's memory monitor).  Returns whether it killed one. */
bool mt_pool_memory_check(mt_node *n);
bool mt_pool_all_closed(mt_node *n);

/* lease.c: the scheduler's callbacks */
/* The node's scheduler for resources `total` (copied), reaching the node
 * through its mt_sched_env. */
mt_sched *mt_lease_sched_new(mt_node *n, const mt_res_set *total);

/* cluster.c */
void mt_cluster_init(mt_node *n);
void mt_cluster_free(mt_node *n);
/* Non-head: connect to the head at n->join and register (blocking). */
int mt_cluster_join(mt_node *n);
void mt_cluster_tick(mt_node *n);
/* Head: a node's Hello.  0 or an error (close). */
int mt_cluster_node_hello(mt_node *n, mt_client *c, const Manta__Hello *h);
/* A message of a node connection (ResourceReport, Event): 0, or an error
 * (close) for a node not in the cluster or another type. */
int mt_cluster_handle(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m);
void mt_cluster_client_gone(mt_node *n, mt_client *c);
/* A worker or driver of this node is gone: tell the rest of the cluster. */
void mt_cluster_worker_died(mt_node *n, const Manta__Event *ev);
/* Head: a job's driver left; every node stops its workers. */
void mt_cluster_job_ended(mt_node *n, uint32_t job);
/* Kill worker `wid` with `reason`: here if it is one of this node's, else
 * (head) on node `nid`, if that node is alive. */
void mt_cluster_kill_worker(mt_node *n, const mt_nid *nid, const mt_wid *wid, int reason);
mt_rnode *mt_cluster_node(mt_node *n, const mt_nid *nid);
/* This node's status (strings and arrays point into n and `store`; free
 * ns->total and ns->available and `store` after use). */
void mt_node_fill_status(mt_node *n, Manta__NodeStatus *ns, Manta__Resource **store);
/* Every node's status, this one first. */
typedef struct mt_statuses {
    size_t n;
    Manta__NodeStatus **ptrs;
    Manta__NodeStatus *ns;
    Manta__Resource **stores;
} mt_statuses;
void mt_cluster_statuses(mt_node *n, mt_statuses *s);
void mt_cluster_statuses_free(mt_statuses *s);
/* mt_rnode's status, the same way. */
void mt_cluster_fill_status(const mt_rnode *r, Manta__NodeStatus *ns, Manta__Resource **store);
/* The endpoint of this node's daemon for other nodes ("" single-node). */
const char *mt_node_endpoint(mt_node *n);
mt_client *mt_node_client_by_role_nid(mt_node *n, int role, const mt_nid *nid);

/* node.c: store events from transfers */
void mt_node_obj_sealed(mt_node *n, const mt_oid *id);
void mt_node_obj_failed(mt_node *n, const mt_oid *id, int status);

/* transfer.c */
/* Fetch `id` from node `from` into this node's store; MANTA_EOBJLOST if
 * that node is gone. */
int mt_xfer_want(mt_node *n, const mt_oid *id, const mt_nid *from);
int mt_xfer_free(mt_node *n, const Manta__ObjFree *m);
/* A message of a node peer (ObjPull, ObjFree): 0, or an error (close) for
 * another type. */
int mt_xfer_handle(mt_node *n, mt_client *c, uint16_t type, const ProtobufCMessage *m);
void mt_xfer_client_gone(mt_node *n, mt_client *c);
void mt_xfer_node_dead(mt_node *n, const mt_nid *nid);
void mt_xfer_tick(mt_node *n);
void mt_xfer_free_all(mt_node *n);

/* session.c */
void mt_session_set_token(mt_node *n, const char *token);
int mt_session_create(mt_node *n, const char *dir);
void mt_session_write_pids(mt_node *n);
void mt_session_remove(mt_node *n);
void mt_session_reap_stale(const char *root);

#endif

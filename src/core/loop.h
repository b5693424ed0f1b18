/* loop.h -- the floor of the client runtime (loop.c): connecting, the I/O
 * thread and its loop, waiting, peers and direct connections, request/reply
 * calls, and the control-store calls built on them. */
#ifndef MT_LOOP_H
#define MT_LOOP_H

#include "core.h"

/* Connect to the node with `hooks` for what arrives (mt_core_connect in
 * router.c passes the router's). */
int mt_loop_open(const mt_core_opts *o, const mt_hooks *hooks, mt_core **out);
/* The id of the task this thread runs (MT_TASK_ID_LEN bytes), or NULL. */
extern _Thread_local const uint8_t *mt_loop_tl_task;
/* Take connections from processes of other nodes (the cluster spans nodes). */
void do_loop_listen_tcp(mt_core *c);
/* Decode a frame into the I/O thread's arena (the caller resets it when
 * done); on failure the arena is reset and the error set and returned. */
int do_loop_decode(mt_core *c, const mt_frame *f, ProtobufCMessage **m);
/* Frame callback of a connection to a node other than through our daemon
 * (the control store, another node's daemon): its Hello reply, then the
 * node's frames (hooks->node_frame). */
int do_loop_node_frame(mt_conn *conn, const mt_frame *f, void *ud);
/* Stop the I/O thread, close every connection, free everything.  Values
 * and refs still held by the language layer must not be used afterwards. */
void mt_core_disconnect(mt_core *c);
/* Wait on `cv` until woken or `deadline` (mt_now_s scale; <0 forever):
 * spins first.  Lock held on entry and exit.  Returns MANTA_ETIMEDOUT when
 * the deadline passed, 0 otherwise. */
int do_loop_wait(mt_core *c, double deadline);
void do_loop_notify(mt_core *c);
void do_loop_task_signal(mt_core *c);
int mt_loop_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, double deadline);
void do_loop_poll_now(mt_core *c);
mt_peer *do_loop_peer(mt_core *c, const mt_wid *wid, const mt_nid *nid, const char *endpoint);
mt_peer *do_loop_peer_from_proto(mt_core *c, const Manta__Address *a);
/* Fill `a` with p's address (strings point into p). */
void mt_loop_peer_address(const mt_peer *p, Manta__Address *a);
/* Set a bytes field to a node id, or leave it empty for our own node. */
ProtobufCBinaryData do_loop_node_bin(mt_core *c, const mt_nid *nid);
/* Our outgoing connection to a peer (connected on demand); NULL if it
 * cannot be reached (the peer is then marked dead). */
mt_conn *do_loop_peer_conn(mt_core *c, mt_peer *p);
void do_loop_send_daemon(mt_core *c, uint16_t type, const ProtobufCMessage *m);
void do_loop_send_gcs(mt_core *c, uint16_t type, const ProtobufCMessage *m);
/* Start reading a connection (from any thread). */
void do_loop_start_conn(mt_core *c, mt_conn *conn);
/* Write what `conn` has queued at the loop's next turn (frames sent in a
 * burst from user threads leave in a few writes). */
void do_loop_flush_later(mt_core *c, mt_conn *conn);
/* LeaseReturn to `daemon` (NULL: our node). */
void do_sub_lease_return(mt_core *c, mt_conn *daemon, const mt_wid *wid, bool failed);
/* Connect to `endpoint` and say Hello as `role` (token on TCP). */
int do_dial(mt_core *c, const char *endpoint, int role, int *fd_out, mt_buf *hello);
mt_rpc *do_loop_rpc_new(mt_core *c);
/* Wait for the reply of an rpc; returns 0, MANTA_ETIMEDOUT or MANTA_ECONN. */
int do_loop_rpc_wait(mt_core *c, mt_rpc *r, double deadline);
/* MANTA_ECONN for a call made once the node is gone, naming the node. */
int do_loop_node_lost(mt_core *c);
void do_loop_rpc_free(mt_core *c, mt_rpc *r);
/* Send `m` on `to` (NULL: the connection is gone, nothing is sent) with a
 * fresh request id in *req_field, and wait until `deadline` (<0 forever)
 * for the reply: its raw payload in *payload (caller frees), or decoded as
 * `reply` into `out`, the address of a pointer to the reply's type (caller
 * frees it with protobuf_c_message_free_unpacked).
 * Returns 0, MANTA_ETIMEDOUT, MANTA_ECONN (node lost) or MANTA_EPROTO. */
int do_loop_rpc_call_raw(mt_core *c, mt_conn *to, uint16_t type, ProtobufCMessage *m,
                    uint64_t *req_field, double deadline, uint8_t **payload, size_t *len);
int do_loop_rpc_call(mt_core *c, mt_conn *to, uint16_t type, ProtobufCMessage *m, uint64_t *req_field,
                double deadline, const ProtobufCMessageDescriptor *reply, void *out);
void do_loop_rpc_complete(mt_core *c, uint64_t id, uint16_t type, const void *payload, size_t len,
                     int status);
void do_loop_rpc_fail_peer(mt_core *c, const mt_peer *p);
void do_loop_address(mt_core *c, Manta__Address *a, char *endpoint_buf, size_t cap);
mt_tid do_loop_new_task_id(mt_core *c);

/* Register a function body in the control store / fetch one; a put fails
 * with MANTA_ETOOBIG (nothing sent) when the value cannot fit in a frame. */
int mt_core_fn_register(mt_core *c, const uint8_t *fn_id, const void *body, size_t len,
                        const char *name);
int mt_core_fn_get(mt_core *c, const uint8_t *fn_id, double timeout, uint8_t **body, size_t *len);
int mt_core_kv_put(mt_core *c, const char *ns, const void *key, size_t klen, const void *val,
                   size_t vlen, bool overwrite);
int mt_core_kv_get(mt_core *c, const char *ns, const void *key, size_t klen, double wait_s,
                   uint8_t **val, size_t *vlen);
/* Node status (for cluster_resources & co): returns the decoded reply's
 * raw payload (caller frees) to unpack with manta__status_reply__unpack. */
int mt_core_status(mt_core *c, uint8_t **payload, size_t *len);
/* Ask the node to stop (drivers that own it). */
void mt_core_request_shutdown(mt_core *c);

#endif

/* objects.h -- ownership and refs (objects.c): objects we own or borrow, their
 * counts, get/wait/put, and the owner/borrower protocol. */
#ifndef MT_OBJECTS_H
#define MT_OBJECTS_H

#include "plasma.h"

/* A new object owned by us, pending (task return) or ready (put). */
mt_obj *do_obj_new_owned(mt_core *c, const mt_oid *id);
mt_obj *do_obj_find(mt_core *c, const mt_oid *id);
void do_obj_set_ready(mt_core *c, mt_obj *o);
/* Free the object if nothing holds it any more. */
void do_obj_maybe_free(mt_core *c, mt_obj *o);
/* Ask whoever can make `o` ready (its owner) to tell us. */
void do_obj_want(mt_core *c, mt_obj *o);
/* Keep a task's in-line arguments within max_inline_task_bytes: past it,
 * a ready ref we own whose value sits in our memory is copied into the
 * store and goes by reference (as Ray's inlined-bytes limit does), or the
 * task's message could not fit in a frame.  Lock held.  0 or an error
 * from the store. */
int do_obj_args_fit(mt_core *c, const mt_targ *args, uint32_t nargs);
/* Owner side: a task's return arrived / the task failed for good. */
/* `loc`: the node of the worker that ran the task. */
void do_obj_set_return(mt_core *c, mt_obj *o, const Manta__ReturnObject *r, const mt_nid *loc);
void do_obj_fail(mt_core *c, mt_obj *o, mt_value *err);
/* Incoming owner/borrower protocol messages (router.c's table). */
int do_obj_on_wait(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
int do_obj_on_wait_reply(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
int do_obj_on_add_borrower(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
int do_obj_on_borrower_ack(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
int do_obj_on_remove_borrower(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
int do_obj_on_credit(mt_core *c, mt_conn *conn, const ProtobufCMessage *m);
/* Disconnect: free every object and the tables of objects.c. */
void do_obj_free_all(mt_core *c);
/* The copy of `o` on node `at` is gone: the owner rebuilds it (lineage) or
 * gives it an error value; a borrower asks the owner again. */
void do_obj_lost(mt_core *c, mt_obj *o, const mt_nid *at);
/* A node died: its processes are dead, and the copies it held lost. */
void do_obj_node_died(mt_core *c, const mt_nid *nid);
bool do_obj_node_is_dead(const mt_core *c, const mt_nid *nid);
void do_obj_peer_died(mt_core *c, mt_peer *p);
/* Give a ref to the language layer / take it back. */
void mt_obj_incref(mt_core *c, mt_obj *o);
void mt_obj_decref(mt_core *c, mt_obj *o);
/* A ref read from a serialized value: `owner` is the owner's address
 * (NULL or our own id: ours).  Registers us as a borrower with the owner
 * and waits for its answer.  Returns a counted ref, or NULL with the error
 * in *err (MANTA_EOWNERDIED, MANTA_EOBJLOST). */
mt_obj *mt_core_ref_from_wire(mt_core *c, const mt_oid *id, const Manta__Address *owner,
                              int *err);
/* The same, but the registration with the owner waits (batched, one
 * message per owner) until mt_core_borrow_sync, which the caller must call
 * while it still holds the value the refs were read from. */
mt_obj *mt_core_ref_from_wire_deferred(mt_core *c, const mt_oid *id, const Manta__Address *owner);
/* Register every deferred borrowed ref and wait for the owners' answers;
 * a ref whose owner no longer has the object gets an error value. */
void mt_core_borrow_sync(mt_core *c);
void do_obj_borrow_send(mt_core *c);
/* Fill `a` with the owner's address of o (endpoint_buf: storage). */
void mt_core_ref_owner(mt_core *c, const mt_obj *o, Manta__Address *a, char *buf, size_t cap);
/* Get values: returns 0 with every values[i] set (counted; an error value
 * for failed objects), or MANTA_ETIMEDOUT. */
int mt_core_get(mt_core *c, mt_obj *const *objs, size_t n, double timeout, mt_value **values);
/* ready[i] = 1 for ready objects; returns the count or an error. */
int mt_core_wait(mt_core *c, mt_obj *const *objs, size_t n, size_t num_ready, double timeout,
                 bool fetch_local, uint8_t *ready);
/* Put: allocate room for a value of `size` bytes (in memory or the store),
 * write it at *data, then commit.  `contained`: refs the value holds. */
typedef struct mt_put {
    mt_oid id;
    mt_value *value;
    bool plasma;
    uint64_t size;
} mt_put;
int mt_core_put_begin(mt_core *c, uint64_t size, mt_put *p, uint8_t **data);
int mt_core_put_end(mt_core *c, mt_put *p, mt_obj *const *contained, size_t ncontained,
                    mt_obj **out);
void mt_core_put_abort(mt_core *c, mt_put *p);
/* Futures: when `o` is ready, `token` shows up in mt_core_next_ready. */
void mt_core_watch(mt_core *c, mt_obj *o, uint64_t token);
/* Tokens of watched objects that became ready (up to cap); waits up to
 * `timeout` (<0 forever) for one.  Returns the count, or -1 when stopping. */
int mt_core_next_ready(mt_core *c, double timeout, uint64_t *tokens, size_t cap);
/* Add a credit on a ref because a serialized copy of it now exists. */
void do_obj_credit(mt_core *c, mt_obj *o, int delta);
void do_obj_credit_ref(mt_core *c, const mt_refinfo *r, int delta);

#endif

/* plasma.h -- the store client (plasma.c): the mapping of the node's store, create,
 * seal, get, free, and the queue of pins to release. */
#ifndef MT_PLASMA_H
#define MT_PLASMA_H

#include "loop.h"

/* Map the store the node passed (takes `shm_fd`); unmap it at disconnect
 * unless values still point into it. */
int mt_plasma_map(mt_core *c, int shm_fd, uint64_t size);
void mt_plasma_unmap(mt_core *c);
/* Pins dropped by mt_value_unref (any thread, any lock) queue up for this
 * runtime from start to stop; the loop sends them with flush. */
void mt_plasma_start_releases(mt_core *c);
void mt_plasma_stop_releases(mt_core *c);
void do_plasma_flush_releases(mt_core *c);
int do_plasma_create(mt_core *c, const mt_oid *id, uint64_t size, const mt_wid *owner,
                     const mt_nid *owner_node, const char *owner_ep, uint8_t **data);
void do_plasma_seal(mt_core *c, const mt_oid *id);
void do_plasma_abort(mt_core *c, const mt_oid *id);
/* Pin and map objects of the local store (waits until sealed). */
/* `locs` (may be NULL): per object the node holding it (zero: ours); the
 * node fetches the others.  `status` (may be NULL): per object, 0 or why
 * it has no value (MANTA_EOBJLOST: its node is gone). */
int do_plasma_get(mt_core *c, const mt_oid *ids, const mt_nid *locs, size_t n, double deadline,
                  mt_value **out, int *status);
void do_plasma_free(mt_core *c, const mt_oid *id, const mt_nid *loc);
mt_value *do_plasma_value(mt_core *c, const mt_oid *id, uint64_t offset, uint64_t size);
/* Values that point into the store, alive in this process. */
extern int mt_plasma_live_values;

#endif
